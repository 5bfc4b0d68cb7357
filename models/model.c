#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/parse.h"
#include "nn/nn.h"
#include "sampler.h"
#include "store/codec.h"

extern const struct model_ops model_ncf, model_gmf, model_dssm, model_neumf, model_autorec,
	model_twotower, model_autoint, model_din, model_inttower, model_dien;

static const struct model_ops *const models[] = {
	&model_ncf,      &model_gmf,     &model_dssm, &model_neumf,    &model_autorec,
	&model_twotower, &model_autoint, &model_din,  &model_inttower, &model_dien,
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
	rc = model_options_resolve(ops, cfg, m->opt);
	if (rc)
		return rc;
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

int model_attach(struct model *m, const struct model_data *d)
{
	m->data = d;
	return m->ops->data_ready ? m->ops->data_ready(m) : 0;
}

int model_score_prepare(const struct model *m)
{
	return m->ops->score_prepare ? m->ops->score_prepare(m) : 0;
}

enum model_view model_view(const struct model *m)
{
	return m->ops->view ? m->ops->view(m) : VIEW_RECORDS;
}

const char *const *model_losses(const struct model *m, int *n)
{
	static const char *const plain[] = {"train_loss", NULL};
	const char *const *l = m->ops->losses ? m->ops->losses : plain;

	for (*n = 0; l[*n]; (*n)++)
		;
	return l;
}

uint32_t model_num_neg(const struct model *m)
{
	int i = model_option_index(m->ops, "num_neg");

	return i < 0 ? 0 : (uint32_t)m->opt[i];
}

const char *const model_sampler_names[] = {"random", "unconsumed", "popular", NULL};

const struct model_option model_negative_options[2] = {
	MODEL_OPTION_NUM_NEG,
	MODEL_OPTION_SAMPLER,
};

unsigned model_negative_wants(const struct model *m)
{
	return model_train_factor(m) > 1 ? WANTS_NEGATIVES : 0;
}

/* A store whose train records are all positives (bin/ingest --label implicit). */
static int implicit_store(const struct model *m)
{
	return m->info.positive_rate[0] >= 1.0;
}

uint32_t model_train_factor(const struct model *m)
{
	if (m->ops->train_forward || !implicit_store(m))
		return 1;
	return 1 + model_num_neg(m);
}

double model_flops_train(const struct model *m)
{
	return m->ops->flops_train ? m->ops->flops_train(m) : 3.0 * m->ops->flops_forward(m);
}

/*
 * The default loss's batch on an implicit store: each record's (user,
 * item) with label 1, then num_neg sampled items of the same user with
 * label 0 (LibRecommender's and the NCF paper's pointwise negatives).
 * Only the ids the pointwise models read (user, item) are filled.
 */
static const struct batch *with_negatives(const struct model *m, const struct batch *b,
					  struct model_ctx *ctx)
{
	uint32_t N = model_num_neg(m), k = 0;
	struct batch *x = ctx->neg;

	HR_ASSERT(x && m->data && m->data->sampler && b->n * (1 + N) <= x->cap);
	for (uint32_t r = 0; r < b->n; r++) {
		x->user[k] = b->user[r];
		x->item[k] = b->item[r];
		x->label[k++] = 1.0f;
		for (uint32_t j = 0; j < N; j++) {
			x->user[k] = b->user[r];
			x->item[k] =
				sampler_draw(m->data->sampler, &ctx->rng, b->user[r], b->item[r]);
			x->label[k++] = 0.0f;
		}
	}
	x->n = k;
	return x;
}

double model_train_forward(const struct model *m, float *ws, const struct batch *b,
			   struct model_ctx *ctx, double *terms)
{
	if (m->ops->train_forward)
		return m->ops->train_forward(m, ws, b, ctx, terms);
	if (model_train_factor(m) > 1)
		b = with_negatives(m, b, ctx);
	m->ops->forward(m, ws, b, ctx->logits, 1);
	terms[0] = nn_bce_logits_forward(NULL, ctx->logits, b->label, (int)b->n);
	return terms[0];
}

void model_train_backward(const struct model *m, float *ws, const struct batch *b,
			  struct model_ctx *ctx, float *grad, struct sparse_grad *sg)
{
	if (m->ops->train_backward) {
		m->ops->train_backward(m, ws, b, ctx, grad, sg);
		return;
	}
	if (model_train_factor(m) > 1)
		b = ctx->neg; /* as model_train_forward left it */
	memset(ctx->dlogits, 0, b->n * sizeof(float));
	nn_bce_logits_backward(ctx->dlogits, 1.0f, ctx->logits, b->label, (int)b->n);
	m->ops->backward(m, ws, b, ctx->dlogits, grad, sg);
}

/* ---- pre-training ------------------------------------------------------ */

void model_init_from_list(char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_MODELS && n < size; i++)
		if (models[i]->init_from)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "",
					      models[i]->name);
}

int model_init_from(struct model *m, const struct model_source *src, int n)
{
	char can[128];

	if (!m->ops->init_from) {
		model_init_from_list(can, sizeof(can));
		return hr_error(HR_EINVAL,
				"model '%s' cannot start from other models' checkpoints (%s can)",
				m->ops->name, can[0] ? can : "no model");
	}
	if (n < 1 || n > MODEL_MAX_SOURCES)
		return hr_error(HR_EINVAL, "%d checkpoints to start from: 1 to %d can be given", n,
				MODEL_MAX_SOURCES);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			if (!strcmp(src[i].model, src[j].model))
				return hr_error(HR_EINVAL,
						"'%s' and '%s' are both %s checkpoints: give one",
						src[j].where, src[i].where, src[i].model);
	return m->ops->init_from(m, src, n);
}

int model_source_tensor(const struct model *m, const struct model_source *src, const char *name,
			uint32_t rows, uint32_t cols, const char *to, const float **out)
{
	static const char hint[] = "the pre-trained model's --emb-dim, --hidden and store must be "
				   "this run's";
	uint64_t r = 0, c = 0;

	*out = src->tensor(src->ctx, name, &r, &c);
	if (!*out)
		return hr_error(HR_EINVAL, "'%s' (model %s) has no tensor '%s' for %s's %s",
				src->where, src->model, name, m->ops->name, to);
	if (r != rows || c != cols)
		return hr_error(
			HR_EINVAL,
			"'%s' (model %s): tensor '%s' is %llux%llu; %s's %s wants %ux%u (%s)",
			src->where, src->model, name, (unsigned long long)r, (unsigned long long)c,
			m->ops->name, to, rows, cols, hint);
	return 0;
}

int model_source_copy(struct model *m, int dst, uint32_t col, uint32_t cols,
		      const struct model_source *src, const char *name, float scale)
{
	struct tensor *t = &m->params.t[dst];
	const float *x;
	char to[PARAM_NAME_MAX + 64];
	int rc;

	HR_ASSERT(col + cols <= t->cols);
	if (col == 0 && cols == t->cols)
		snprintf(to, sizeof(to), "'%s'", t->name);
	else
		snprintf(to, sizeof(to), "'%s' columns %u..%u", t->name, col, col + cols - 1);
	rc = model_source_tensor(m, src, name, t->rows, cols, to, &x);
	for (uint32_t r = 0; !rc && r < t->rows; r++)
		for (uint32_t c = 0; c < cols; c++)
			t->w[(size_t)r * t->cols + col + c] = scale * x[(size_t)r * cols + c];
	return rc;
}

/* ---- options ----------------------------------------------------------- */

/* name equals key, with '-' in name standing for '_' in key. */
static int same_name(const char *key, const char *name)
{
	for (; *key && *name; key++, name++)
		if (*key != *name && !(*key == '_' && *name == '-'))
			return 0;
	return *key == *name;
}

int model_option_index(const struct model_ops *ops, const char *name)
{
	for (int i = 0; i < ops->n_options; i++)
		if (same_name(ops->options[i].name, name))
			return i;
	return -1;
}

const struct model_option *model_option_any(const char *name)
{
	for (size_t k = 0; k < N_MODELS; k++) {
		int i = model_option_index(models[k], name);
		if (i >= 0)
			return &models[k]->options[i];
	}
	return NULL;
}

/* Whether option j of model k was declared, by name, by an earlier model or row. */
static int seen_before(size_t k, int j)
{
	const char *name = models[k]->options[j].name;

	for (size_t k2 = 0; k2 <= k; k2++)
		for (int j2 = 0; j2 < (k2 == k ? j : models[k2]->n_options); j2++)
			if (!strcmp(models[k2]->options[j2].name, name))
				return 1;
	return 0;
}

const struct model_option *model_option_at(size_t i)
{
	for (size_t k = 0; k < N_MODELS; k++)
		for (int j = 0; j < models[k]->n_options; j++) {
			if (seen_before(k, j))
				continue;
			if (i-- == 0)
				return &models[k]->options[j];
		}
	return NULL;
}

void model_option_describe(const struct model_option *o, char *buf, size_t size)
{
	size_t n;

	switch (o->type) {
	case MOPT_INT:
		snprintf(buf, size, "an integer between %.0f and %.0f", o->min, o->max);
		break;
	case MOPT_FLOAT: snprintf(buf, size, "a number between %g and %g", o->min, o->max); break;
	case MOPT_BOOL: snprintf(buf, size, "yes or no"); break;
	case MOPT_ENUM:
		n = (size_t)snprintf(buf, size, "one of");
		for (int k = 0; o->choices[k] && n < size; k++)
			n += (size_t)snprintf(buf + n, size - n, "%s %s", k ? "," : "",
					      o->choices[k]);
		break;
	}
}

void model_option_format(const struct model_option *o, double v, char *buf, size_t size)
{
	switch (o->type) {
	case MOPT_INT: snprintf(buf, size, "%.0f", v); break;
	case MOPT_FLOAT: snprintf(buf, size, "%g", v); break;
	case MOPT_BOOL: snprintf(buf, size, "%s", v != 0 ? "yes" : "no"); break;
	case MOPT_ENUM: snprintf(buf, size, "%s", o->choices[(int)v]); break;
	}
}

static int in_range(const struct model_option *o, double v)
{
	int k = 0;

	switch (o->type) {
	case MOPT_INT: return v == floor(v) && v >= o->min && v <= o->max;
	case MOPT_FLOAT: return v >= o->min && v <= o->max;
	case MOPT_BOOL: return v == 0 || v == 1;
	case MOPT_ENUM:
		while (o->choices[k])
			k++;
		return v == floor(v) && v >= 0 && v < k;
	}
	return 0;
}

int model_option_parse(const struct model_option *o, const char *text, double *v)
{
	char want[160];
	uint64_t u;
	double x = NAN;
	int k = 0;

	switch (o->type) {
	case MOPT_INT:
		if (!parse_u64_quiet(text, &u) && u <= (uint64_t)1e15)
			x = (double)u;
		break;
	case MOPT_FLOAT:
		if (parse_f64_quiet(text, &x))
			x = NAN;
		break;
	case MOPT_BOOL:
		k = parse_bool(text);
		x = k < 0 ? NAN : k;
		break;
	case MOPT_ENUM:
		while (o->choices[k] && strcmp(o->choices[k], text))
			k++;
		x = o->choices[k] ? k : NAN;
		break;
	}
	if (!isfinite(x) || !in_range(o, x)) {
		model_option_describe(o, want, sizeof(want));
		return hr_error(HR_EINVAL, "must be %s, not '%s'", want, text);
	}
	*v = x;
	return 0;
}

int model_options_resolve(const struct model_ops *ops, const struct model_config *cfg,
			  double *values)
{
	char list[512], want[160], text[64];
	size_t n = 0;

	for (int i = 0; i < ops->n_options; i++)
		values[i] = ops->options[i].def;
	for (int k = 0; k < cfg->n_opt; k++) {
		const char *name = cfg->opt[k].name;
		int i = model_option_index(ops, name);
		if (i < 0) {
			list[0] = '\0';
			for (int j = 0; j < ops->n_options && n < sizeof(list); j++)
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
						      j ? ", " : "", ops->options[j].name);
			return hr_error(HR_EINVAL, "model '%s' has no option '%s' (%s%s)",
					ops->name, name,
					ops->n_options ? "its options: " : "it has none",
					ops->n_options ? list : "");
		}
		if (!in_range(&ops->options[i], cfg->opt[k].v)) {
			model_option_describe(&ops->options[i], want, sizeof(want));
			snprintf(text, sizeof(text), "%g", cfg->opt[k].v);
			return hr_error(HR_EINVAL, "model '%s': option '%s' must be %s, not %s",
					ops->name, name, want, text);
		}
		values[i] = cfg->opt[k].v;
	}
	return 0;
}

int model_config_set(struct model_config *cfg, const char *name, double v)
{
	const struct model_option *o = model_option_any(name);

	if (!o)
		return hr_error(HR_EINVAL, "no model has an option '%s'", name);
	for (int k = 0; k < cfg->n_opt; k++)
		if (!strcmp(cfg->opt[k].name, o->name)) {
			cfg->opt[k].v = v;
			return 0;
		}
	if (cfg->n_opt >= MODEL_MAX_OPTIONS)
		return hr_error(HR_EINVAL, "too many model options");
	cfg->opt[cfg->n_opt++] = (struct model_opt_value){o->name, v};
	return 0;
}
