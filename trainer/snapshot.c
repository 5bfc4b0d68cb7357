#include "snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "common/err.h"
#include "common/log.h"

#define SNAP_MAX_TENSORS (3 * PARAMS_MAX)

/* The tensors of m: weights, then optimizer state; names in names[]. */
static int collect(const struct model *m, struct ckpt_tensor *t,
		   char names[][PARAM_NAME_MAX + 16])
{
	const struct params *p = &m->params;
	int n = 0;

	for (int i = 0; i < p->n; i++) {
		const struct tensor *x = &p->t[i];
		t[n++] = (struct ckpt_tensor){x->name, x->w, x->rows, x->cols};
		if (x->s1) {
			snprintf(names[n], sizeof(names[n]), "optim.%s.s1", x->name);
			t[n] = (struct ckpt_tensor){names[n], x->s1, x->rows, x->cols};
			n++;
		}
		if (x->s2) {
			snprintf(names[n], sizeof(names[n]), "optim.%s.s2", x->name);
			t[n] = (struct ckpt_tensor){names[n], x->s2, x->rows, x->cols};
			n++;
		}
	}
	return n;
}

/* The options that shape the model, as JSON, for the metadata and for comparing. */
static void shape_json(const struct train_opts *o, const struct model *m, char *buf, size_t cap)
{
	size_t k = (size_t)snprintf(buf, cap, "{\"emb_dim\":%u,\"hidden\":[", m->cfg.emb_dim);

	for (int i = 0; i < m->cfg.n_hidden && k < cap; i++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%u", i ? "," : "", m->cfg.hidden[i]);
	if (k < cap)
		snprintf(buf + k, cap - k, "],\"optimizer\":\"%s\"}", optim_name(o->optim.kind));
}

int snapshot_save(const struct train_opts *o, const struct model *m,
		  const struct snapshot_state *st, const char *metrics_json, char *path,
		  size_t cap)
{
	static char names[SNAP_MAX_TENSORS][PARAM_NAME_MAX + 16];
	struct ckpt_tensor t[SNAP_MAX_TENSORS];
	struct ckpt_info info;
	char shape[512], extra[4096];
	int n = collect(m, t, names), rc;

	memset(&info, 0, sizeof(info));
	snprintf(info.model, sizeof(info.model), "%s", m->ops->name);
	snprintf(info.schema_hash, sizeof(info.schema_hash), "%s", m->info.schema_hash);
	info.epoch = (uint64_t)st->epoch;
	info.step = st->step;
	info.samples = st->samples;
	shape_json(o, m, shape, sizeof(shape));
	snprintf(extra, sizeof(extra),
		 "{\"next_batch\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"batch\":%u,\"shape\":%s,"
		 "\"lr\":%g,\"lr_sparse\":%g,\"l2\":%g,\"metrics\":%s}",
		 st->next_batch, o->seed, o->batch, shape, (double)o->optim.lr,
		 (double)o->optim.lr_sparse, (double)o->optim.l2, metrics_json ? metrics_json : "null");
	rc = ckpt_save(o->out, &info, extra, t, n, path, cap);
	if (!rc)
		rc = ckpt_retain(o->out, o->keep, 0);
	return rc;
}

/* The unsigned integer after "key": in a JSON text we wrote ourselves. */
static int json_u64(const char *json, const char *key, uint64_t *v)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return -1;
	*v = strtoull(p + strlen(pat), NULL, 10);
	return 0;
}

int snapshot_resume(const struct train_opts *o, struct model *m, struct snapshot_state *st,
		    int *found, char *path, size_t cap)
{
	struct ckpt *c;
	const struct ckpt_info *info;
	char shape[512];
	const char *extra;
	int rc = ckpt_latest(o->out, path, cap);

	*found = 0;
	if (rc == HR_ENOENT) {
		hr_error_clear();
		return 0;
	}
	if (rc)
		return rc;
	rc = ckpt_open(&c, path);
	if (rc)
		return rc;
	info = ckpt_get_info(c);
	extra = ckpt_extra_json(c);
	shape_json(o, m, shape, sizeof(shape));
	if (strcmp(info->model, m->ops->name)) {
		rc = hr_error(HR_EINVAL, "checkpoint '%s' is of model '%s', not '%s' (use another --out)",
			      path, info->model, m->ops->name);
	} else if (strcmp(info->schema_hash, m->info.schema_hash)) {
		rc = hr_error(HR_EINVAL, "checkpoint '%s' was trained on a store with schema %s; "
			      "'%s' has schema %s", path, info->schema_hash, o->data,
			      m->info.schema_hash);
	} else if (!extra || !strstr(extra, shape)) {
		rc = hr_error(HR_EINVAL, "checkpoint '%s' has other model options (%s) than this run (%s)",
			      path, extra ? extra : "none", shape);
	}
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
				rc = hr_error(HR_EINVAL, "checkpoint '%s' lacks tensor '%s' (another "
					      "optimizer?)", path, name);
			else if (rows != x->rows || cols != x->cols)
				rc = hr_error(HR_EINVAL, "checkpoint '%s': tensor '%s' is %" PRIu64 "x%" PRIu64
					      ", the model has %ux%u", path, name, rows, cols, x->rows, x->cols);
			else
				memcpy(dst[k], src, (size_t)rows * cols * sizeof(float));
		}
	}
	if (!rc) {
		uint64_t next = 0;
		json_u64(extra, "next_batch", &next);
		st->epoch = (int)info->epoch;
		st->next_batch = next;
		st->step = info->step;
		st->samples = info->samples;
		*found = 1;
	}
	ckpt_close(c);
	return rc;
}
