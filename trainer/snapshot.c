#include "snapshot.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "ckpt_model.h"
#include "common/err.h"
#include "common/log.h"

#define SNAP_MAX_TENSORS (3 * PARAMS_MAX)

/* The tensors of m: weights, then optimizer state; names in names[]. */
static int collect(const struct model *m, struct ckpt_tensor *t, char names[][PARAM_NAME_MAX + 16])
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

/*
 * The options that shape the model; a checkpoint must match them to resume.
 * The model's own options (model.h) go in "options" as their text ("4",
 * "popular"), for models that have any.
 */
static json_t *shape_json(const struct train_opts *o, const struct model *m)
{
	json_t *hidden = json_array(), *shape, *opts;
	char text[64];

	for (int i = 0; i < m->cfg.n_hidden; i++)
		json_array_append_new(hidden, json_integer(m->cfg.hidden[i]));
	shape = json_pack("{s:I, s:o, s:s}", "emb_dim", (json_int_t)m->cfg.emb_dim, "hidden",
			  hidden, "optimizer", optim_name(o->optim.kind));
	if (!shape || !m->ops->n_options)
		return shape;
	opts = json_object();
	for (int i = 0; opts && i < m->ops->n_options; i++) {
		model_option_format(&m->ops->options[i], m->opt[i], text, sizeof(text));
		json_object_set_new(opts, m->ops->options[i].name, json_string(text));
	}
	json_object_set_new(shape, "options", opts);
	return shape;
}

/* Appends "key (checkpoint A, this run B)" for each key of have/want that differs. */
static void shape_diff(const json_t *have, const json_t *want, const char *prefix, char *buf,
		       size_t cap)
{
	const json_t *objs[2] = {have, want};

	for (int side = 0; side < 2; side++) {
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)objs[side], key, v)
		{
			const json_t *a = json_object_get(have, key),
				     *b = json_object_get(want, key);
			size_t n = strlen(buf);
			char *ta, *tb;
			if (side == 1 && a) /* seen from have's side */
				continue;
			if (json_equal(a, b))
				continue;
			if (json_is_object(a) && json_is_object(b)) {
				shape_diff(a, b, key, buf, cap);
				continue;
			}
			ta = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
			tb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
			snprintf(buf + n, cap - n, "%s%s%s%s (checkpoint %s, this run %s)",
				 n ? "; " : "", prefix ? prefix : "", prefix ? "." : "", key,
				 ta ? ta : "unset", tb ? tb : "unset");
			free(ta);
			free(tb);
		}
	}
}

/*
 * A copy of a checkpoint's shape in which each option of m's model that the
 * checkpoint does not name has its default: a checkpoint written before
 * the model gained an option trained as the default does (NULL stays NULL).
 */
static json_t *with_new_options(const json_t *have, const struct model *m)
{
	json_t *c = have ? json_deep_copy(have) : NULL, *opts;
	char text[64];

	if (!json_is_object(c) || !m->ops->n_options)
		return c;
	opts = json_object_get(c, "options");
	if (!opts) {
		opts = json_object();
		json_object_set_new(c, "options", opts);
	}
	for (int i = 0; json_is_object(opts) && i < m->ops->n_options; i++) {
		const struct model_option *mo = &m->ops->options[i];
		if (json_object_get(opts, mo->name))
			continue;
		model_option_format(mo, mo->def, text, sizeof(text));
		json_object_set_new(opts, mo->name, json_string(text));
	}
	return c;
}

/* Adds the early-stopping state of st to the "hogrec" document extra. */
static int early_stop_json(json_t *extra, const struct snapshot_state *st)
{
	char best[24];

	snprintf(best, sizeof(best), "%" PRIu64, st->best_step);
	return json_object_set_new(extra, "best_auc", json_real(st->best_auc)) ||
	       json_object_set_new(extra, "best_rmse", json_real(st->best_rmse)) ||
	       json_object_set_new(extra, "best_step", json_string(best)) ||
	       json_object_set_new(extra, "best_epoch", json_integer(st->best_epoch)) ||
	       json_object_set_new(extra, "bad_epochs", json_integer(st->bad_epochs)) ||
	       json_object_set_new(extra, "final", json_boolean(st->final)) ||
	       json_object_set_new(extra, "early_stop_metric", json_string(st->early_stop_metric));
}

int snapshot_save(const struct train_opts *o, const struct model *m,
		  const struct snapshot_state *st, const char *metrics_json, char *path, size_t cap)
{
	static char names[SNAP_MAX_TENSORS][PARAM_NAME_MAX + 16];
	struct ckpt_tensor t[SNAP_MAX_TENSORS];
	struct ckpt_info info;
	json_t *extra, *metrics = metrics_json ? json_loads(metrics_json, 0, NULL) : NULL;
	char next[24], seed[24], *text;
	int n = collect(m, t, names), rc;

	memset(&info, 0, sizeof(info));
	snprintf(info.model, sizeof(info.model), "%s", m->ops->name);
	snprintf(info.schema_hash, sizeof(info.schema_hash), "%s", m->info.schema_hash);
	info.epoch = (uint64_t)st->epoch;
	info.step = st->step;
	info.samples = st->samples;
	/* 64-bit values as strings: JSON readers keep only 53 bits of a number. */
	snprintf(next, sizeof(next), "%" PRIu64, st->next_batch);
	snprintf(seed, sizeof(seed), "%" PRIu64, o->seed);
	extra = json_pack("{s:s, s:s, s:I, s:o, s:f, s:f, s:f, s:o}", "next_batch", next, "seed",
			  seed, "batch", (json_int_t)o->batch, "shape", shape_json(o, m), "lr",
			  (double)o->optim.lr, "lr_sparse", (double)o->optim.lr_sparse, "l2",
			  (double)o->optim.l2, "metrics", metrics ? metrics : json_null());
	if (extra && st->init_from) {
		json_t *rec = json_loads(st->init_from, 0, NULL);
		if (!rec || json_object_set_new(extra, "init_from", rec)) {
			json_decref(extra);
			extra = NULL;
		}
	}
	text = extra && !early_stop_json(extra, st) ? json_dumps(extra, JSON_COMPACT) : NULL;
	json_decref(extra);
	if (!text)
		return hr_error(HR_ENOMEM, "out of memory for checkpoint metadata");
	rc = ckpt_save(o->out, &info, text, t, n, path, cap);
	free(text);
	if (!rc)
		rc = ckpt_retain(o->out, o->keep, st->best_step);
	return rc;
}

/*
 * Whether the open checkpoint c (at path; extra its "hogrec" document) can
 * be loaded into m: written by this trainer, same model, store schema and
 * shape.  HR_EFORMAT or HR_EINVAL saying what differs.
 */
static int check_match(const struct train_opts *o, const struct model *m, const struct ckpt *c,
		       const json_t *extra, const char *path)
{
	const struct ckpt_info *info = ckpt_get_info(c);
	json_t *shape = shape_json(o, m);
	int rc = 0;

	if (!extra || !info->has_next_batch) {
		rc = hr_error(HR_EFORMAT,
			      "checkpoint '%s' was not written by this trainer "
			      "(no resume position in its metadata)",
			      path);
	} else if (strcmp(info->model, m->ops->name)) {
		rc = hr_error(HR_EINVAL,
			      "checkpoint '%s' is of model '%s', not '%s' (use another --out)",
			      path, info->model, m->ops->name);
	} else if (strcmp(info->schema_hash, m->info.schema_hash)) {
		rc = hr_error(HR_EINVAL,
			      "checkpoint '%s' was trained on a store with schema %s; "
			      "'%s' has schema %s",
			      path, info->schema_hash, o->data, m->info.schema_hash);
	} else {
		json_t *have = with_new_options(json_object_get(extra, "shape"), m);
		char diff[768] = "";
		if (!json_equal(have, shape)) {
			if (json_is_object(have))
				shape_diff(have, shape, NULL, diff, sizeof(diff));
			rc = hr_error(HR_EINVAL,
				      "checkpoint '%s' has other model options than this run: %s",
				      path, diff[0] ? diff : "no shape in its metadata");
		}
		json_decref(have);
	}
	json_decref(shape);
	return rc;
}

/*
 * The early-stopping state of a checkpoint's "hogrec" document into st
 * (ckpt_open range-checked each key; absent keys, as in checkpoints written
 * before early stopping, leave zeros), checked against its step and epoch.
 */
static int early_stop_state(const json_t *extra, const struct ckpt_info *info,
			    struct snapshot_state *st, const char *path)
{
	const json_t *v;

	st->best_auc = st->best_rmse = 0;
	st->best_step = 0;
	st->best_epoch = st->bad_epochs = st->final = 0;
	if ((v = json_object_get(extra, "best_auc")))
		st->best_auc = json_number_value(v);
	if ((v = json_object_get(extra, "best_rmse")))
		st->best_rmse = json_number_value(v);
	if ((v = json_object_get(extra, "best_step")))
		st->best_step = strtoull(json_string_value(v), NULL, 10);
	if ((v = json_object_get(extra, "best_epoch")))
		st->best_epoch = (int)json_number_value(v);
	if ((v = json_object_get(extra, "bad_epochs")))
		st->bad_epochs = (int)json_number_value(v);
	st->final = json_is_true(json_object_get(extra, "final"));
	st->early_stop_metric[0] = 0;
	if ((v = json_object_get(extra, "early_stop_metric")) && json_is_string(v))
		snprintf(st->early_stop_metric, sizeof(st->early_stop_metric), "%s",
			 json_string_value(v));
	if (st->best_step > info->step || (uint64_t)st->best_epoch > info->epoch ||
	    (uint64_t)st->bad_epochs > info->epoch)
		return hr_error(HR_EFORMAT,
				"checkpoint '%s': its best epoch (%d, step %" PRIu64
				") or epochs without improvement (%d) lie beyond its epoch %" PRIu64
				", step %" PRIu64,
				path, st->best_epoch, st->best_step, st->bad_epochs, info->epoch,
				info->step);
	return 0;
}

int snapshot_resume(const struct train_opts *o, struct model *m, struct snapshot_state *st,
		    int *found, char *path, size_t cap)
{
	struct ckpt *c;
	const struct ckpt_info *info;
	json_t *extra = NULL;
	int rc = ckpt_latest(o->out, path, cap);

	*found = 0;
	st->init_from = NULL;
	if (rc == HR_ENOENT) {
		hr_error_clear();
		return 0;
	}
	if (rc == HR_EFORMAT) /* every checkpoint there is damaged: never start over silently */
		return hr_error(rc,
				"%s; not starting over (--no-resume trains from scratch, replacing "
				"them as it saves)",
				hr_errmsg());
	if (rc)
		return rc;
	rc = ckpt_open(&c, path);
	if (rc)
		return rc;
	info = ckpt_get_info(c);
	extra = json_loads(ckpt_extra_json(c) ? ckpt_extra_json(c) : "{}", 0, NULL);
	rc = check_match(o, m, c, extra, path);
	if (!rc)
		rc = early_stop_state(extra, info, st, path);
	if (!rc)
		rc = ckpt_model_load_tensors(c, m, path);
	if (!rc && json_object_get(extra, "init_from")) { /* type-checked by ckpt_open */
		st->init_from = json_dumps(json_object_get(extra, "init_from"), JSON_COMPACT);
		if (!st->init_from)
			rc = hr_error(HR_ENOMEM, "out of memory");
	}
	if (!rc) {
		st->epoch = (int)info->epoch;
		st->next_batch = info->next_batch; /* range-checked by ckpt_open */
		st->step = info->step;
		st->samples = info->samples;
		*found = 1;
	}
	json_decref(extra);
	ckpt_close(c);
	return rc;
}

int snapshot_restore(const struct train_opts *o, struct model *m, uint64_t step, char *path,
		     size_t cap)
{
	struct ckpt *c;
	json_t *extra;
	int rc;

	if (snprintf(path, cap, "%s/ckpt-%012" PRIu64 ".safetensors", o->out, step) >= (int)cap)
		return hr_error(HR_EINVAL, "output path too long: '%s'", o->out);
	rc = ckpt_open(&c, path);
	if (rc)
		return rc;
	extra = json_loads(ckpt_extra_json(c) ? ckpt_extra_json(c) : "{}", 0, NULL);
	rc = check_match(o, m, c, extra, path);
	if (!rc && ckpt_get_info(c)->step != step)
		rc = hr_error(HR_EFORMAT, "checkpoint '%s' holds step %" PRIu64 ", not %" PRIu64,
			      path, ckpt_get_info(c)->step, step);
	if (!rc)
		rc = ckpt_model_load_tensors(c, m, path);
	json_decref(extra);
	ckpt_close(c);
	return rc;
}

int snapshot_load_model(const struct train_opts *o, const struct store_info *info, const char *path,
			struct model *m)
{
	struct ckpt *c;
	const struct ckpt_info *ci;
	int rc = ckpt_open(&c, path);

	memset(m, 0, sizeof(*m));
	if (rc)
		return rc;
	ci = ckpt_get_info(c);
	if (o->mcfg.n_opt)
		rc = hr_error(HR_EINVAL,
			      "--predict takes the model's options from checkpoint '%s'; leave out "
			      "--%s",
			      path, o->mcfg.opt[0].name);
	else if (o->model && strcmp(ci->model, o->model))
		rc = hr_error(HR_EINVAL,
			      "checkpoint '%s' is of model '%s', not '%s' (--predict takes the "
			      "model from the checkpoint: --model is not needed)",
			      path, ci->model, o->model);
	else
		rc = ckpt_model_load(c, info, o->data, o->seed, m);
	ckpt_close(c);
	return rc;
}
