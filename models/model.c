#include "model.h"

#include <string.h>

#include "common/err.h"
#include "store/codec.h"

extern const struct model_ops model_ncf, model_dssm;

static const struct model_ops *const models[] = {
	&model_ncf,
	&model_dssm,
};
#define N_MODELS (sizeof(models) / sizeof(models[0]))

const struct model_ops *model_find(const char *name)
{
	for (size_t i = 0; i < N_MODELS; i++)
		if (!strcmp(models[i]->name, name))
			return models[i];
	return NULL;
}

const struct model_ops *model_at(size_t i)
{
	return i < N_MODELS ? models[i] : NULL;
}

void model_list(FILE *out)
{
	for (size_t i = 0; i < N_MODELS; i++)
		fprintf(out, "  %-10s %s\n", models[i]->name, models[i]->summary);
}

static int check_needs(const struct model_ops *ops, const struct store_info *info)
{
	if ((ops->needs & NEEDS_DEMOGRAPHICS) && !info->has_demographics)
		return hr_error(
			HR_EINVAL,
			"model '%s' needs user demographics (gender, age, occupation, zip), "
			"which this store lacks (CSV-family input)",
			ops->name);
	if ((ops->needs & NEEDS_HISTORY) && info->hist_len == 0)
		return hr_error(HR_EINVAL, "model '%s' needs histories; the store has none",
				ops->name);
	if ((ops->needs & NEEDS_DENSE) && info->n_dense == 0)
		return hr_error(HR_EINVAL, "model '%s' needs dense features; the store has none",
				ops->name);
	if (info->vocab[SF_USER] < 2 || info->vocab[SF_ITEM] < 2)
		return hr_error(HR_EINVAL, "the store's train split has no users or items");
	return 0;
}

int model_create(struct model *m, const char *name, const struct model_config *cfg,
		 const struct store_info *info, int state)
{
	const struct model_ops *ops = model_find(name);
	int rc;

	memset(m, 0, sizeof(*m));
	if (!ops)
		return hr_error(HR_EINVAL, "unknown model '%s' (see --help for the list)", name);
	rc = check_needs(ops, info);
	if (rc)
		return rc;
	m->ops = ops;
	m->cfg = *cfg;
	if (m->cfg.emb_dim == 0)
		m->cfg.emb_dim = 32;
	if (m->cfg.n_hidden == 0)
		for (const uint32_t *h = ops->default_hidden;
		     *h && m->cfg.n_hidden < MODEL_MAX_HIDDEN; h++)
			m->cfg.hidden[m->cfg.n_hidden++] = *h;
	m->info = *info;
	params_init(&m->params);
	rc = ops->init(m, info);
	if (!rc)
		rc = params_finalize(&m->params, state, m->cfg.seed);
	if (rc)
		model_release(m);
	return rc;
}

void model_release(struct model *m)
{
	if (m->ops && m->ops->release)
		m->ops->release(m);
	params_release(&m->params);
	m->ops = NULL;
}

unsigned model_decode_flags(const struct model *m)
{
	unsigned needs = m->ops->needs, flags = 0;

	if (!(needs & NEEDS_HISTORY))
		flags |= REC_SKIP_SEQUENCES;
	if (!(needs & (NEEDS_HISTORY | NEEDS_GENRES | NEEDS_DENSE)))
		flags |= REC_SKIP_FEATURES;
	return flags;
}
