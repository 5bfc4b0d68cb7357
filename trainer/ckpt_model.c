/*
 * ckpt_model.c - a model built from a checkpoint (ckpt_model.h): its shape
 * from the metadata, its weights from the tensors.  Reads only: links no
 * checkpoint writer.
 */
#include "ckpt_model.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

/*
 * Copies the checkpoint's tensors into m's weights and whichever optimizer
 * state m has (none for --predict).  HR_EINVAL naming a missing tensor or
 * a shape that differs.
 */
int ckpt_model_load_tensors(const struct ckpt *c, struct model *m, const char *path)
{
	int rc = 0;

	for (int i = 0; !rc && i < m->params.n; i++) {
		struct tensor *x = &m->params.t[i];
		float *dst[3] = {x->w, x->s1, x->s2};
		for (int k = 0; k < 3 && !rc; k++) {
			char name[PARAM_NAME_MAX + 16];
			uint64_t rows, cols;
			const float *src;
			if (!dst[k])
				continue;
			if (k == 0)
				snprintf(name, sizeof(name), "%s", x->name);
			else
				snprintf(name, sizeof(name), "optim.%s.s%d", x->name, k);
			src = ckpt_tensor(c, name, &rows, &cols);
			if (!src)
				rc = hr_error(HR_EINVAL,
					      "checkpoint '%s' lacks tensor '%s' (another "
					      "optimizer?)",
					      path, name);
			else if (rows != x->rows || cols != x->cols)
				rc = hr_error(HR_EINVAL,
					      "checkpoint '%s': tensor '%s' is %" PRIu64 "x%" PRIu64
					      ", the model has %ux%u",
					      path, name, rows, cols, x->rows, x->cols);
			else
				memcpy(dst[k], src, (size_t)rows * cols * sizeof(float));
		}
	}
	return rc;
}

/* The model options of a checkpoint's shape into cfg (NULL: none given). */
static int shape_options(const json_t *opts, const char *path, struct model_config *cfg)
{
	const char *key;
	json_t *v;
	double x;

	if (!opts)
		return 0;
	if (!json_is_object(opts))
		return hr_error(HR_EFORMAT, "checkpoint '%s': its model options are not an object",
				path);
	json_object_foreach((json_t *)opts, key, v)
	{
		const struct model_option *mo = model_option_any(key);
		if (!mo || !json_is_string(v))
			return hr_error(HR_EFORMAT, "checkpoint '%s': unknown model option '%s'",
					path, key);
		if (model_option_parse(mo, json_string_value(v), &x) ||
		    model_config_set(cfg, mo->name, x))
			return hr_error(HR_EFORMAT, "checkpoint '%s': model option '%s' %s", path,
					key, hr_errmsg());
	}
	return 0;
}

/*
 * The model configuration a checkpoint's "shape" metadata (shape_json)
 * describes, within the option table's ranges (config.c): a checkpoint
 * names no absurd allocation.
 */
static int shape_config(const json_t *shape, const char *path, struct model_config *cfg)
{
	const json_t *emb = json_object_get(shape, "emb_dim"),
		     *hidden = json_object_get(shape, "hidden");
	size_t i;
	const json_t *h;

	memset(cfg, 0, sizeof(*cfg));
	if (!json_is_integer(emb) || json_integer_value(emb) < 1 ||
	    json_integer_value(emb) > 4096 || !json_is_array(hidden) ||
	    json_array_size(hidden) > MODEL_MAX_HIDDEN) /* gmf has none */
		return hr_error(HR_EFORMAT, "checkpoint '%s': no valid model shape in its metadata",
				path);
	cfg->emb_dim = (uint32_t)json_integer_value(emb);
	json_array_foreach(hidden, i, h)
	{
		if (!json_is_integer(h) || json_integer_value(h) < 1 ||
		    json_integer_value(h) > 65536)
			return hr_error(HR_EFORMAT,
					"checkpoint '%s': no valid model shape in its metadata",
					path);
		cfg->hidden[cfg->n_hidden++] = (uint32_t)json_integer_value(h);
	}
	return shape_options(json_object_get(shape, "options"), path, cfg);
}

int ckpt_model_load(const struct ckpt *c, const struct store_info *info, const char *store,
		    uint64_t seed, struct model *m)
{
	const struct ckpt_info *ci = ckpt_get_info(c);
	const char *path = ckpt_path(c);
	struct model_config cfg;
	json_t *extra;
	int rc;

	memset(m, 0, sizeof(*m));
	if (strcmp(ci->schema_hash, info->schema_hash))
		return hr_error(HR_EINVAL,
				"checkpoint '%s' was trained on a store with schema %s; "
				"'%s' has schema %s",
				path, ci->schema_hash, store, info->schema_hash);
	extra = json_loads(ckpt_extra_json(c) ? ckpt_extra_json(c) : "{}", 0, NULL);
	rc = shape_config(extra ? json_object_get(extra, "shape") : NULL, path, &cfg);
	json_decref(extra);
	if (!rc) {
		cfg.seed = seed; /* the weights are all overwritten */
		rc = model_create(m, ci->model, &cfg, info, 0);
	}
	if (!rc) {
		rc = ckpt_model_load_tensors(c, m, path);
		if (rc)
			model_release(m);
	}
	return rc;
}
