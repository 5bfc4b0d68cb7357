#include "pretrain.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt.h"
#include "common/err.h"
#include "common/log.h"

_Static_assert(MODEL_MAX_SOURCES <= CKPT_SOURCES_MAX, "a record of every source fits a checkpoint");

int pretrain_list_parse(struct pretrain_list *l, const char *text)
{
	char *s;

	memset(l, 0, sizeof(*l));
	l->text = strdup(text);
	if (!l->text)
		return hr_error(HR_ENOMEM, "out of memory");
	s = l->text;
	for (;;) {
		char *comma = strchr(s, ',');
		if (comma)
			*comma = '\0';
		if (!*s || l->n == MODEL_MAX_SOURCES) {
			pretrain_list_release(l);
			return hr_error(HR_EINVAL,
					"'init_from' must be 1 to %d checkpoint paths separated by "
					"commas, not '%s'",
					MODEL_MAX_SOURCES, text);
		}
		l->path[l->n++] = s;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

void pretrain_list_release(struct pretrain_list *l)
{
	free(l->text);
	memset(l, 0, sizeof(*l));
}

/* model_source.tensor over an open checkpoint. */
static const float *ckpt_lookup(const void *ctx, const char *name, uint64_t *rows, uint64_t *cols)
{
	return ckpt_tensor(ctx, name, rows, cols);
}

/* Opens the checkpoint `given` names (a file, or a directory's latest valid one). */
static int open_source(const char *given, struct ckpt **c)
{
	char file[PATH_MAX];
	struct stat st;
	int rc;

	*c = NULL;
	if (stat(given, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR ?
			       hr_error(HR_ENOENT, "'%s' does not exist", given) :
			       hr_error(hr_errno_code(errno), "cannot read '%s': %s", given,
					strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ckpt_open(c, given);
	rc = ckpt_latest(given, file, sizeof(file));
	return rc ? rc : ckpt_open(c, file);
}

/* Appends {"path", "file", "model", "step"} of checkpoint c to the record. */
static int record_add(json_t *record, const char *given, const struct ckpt *c)
{
	const struct ckpt_info *ci = ckpt_get_info(c);
	char step[24];
	json_t *e;

	snprintf(step, sizeof(step), "%" PRIu64, ci->step);
	e = json_pack("{s:s, s:s, s:s, s:s}", "path", given, "file", ckpt_path(c), "model",
		      ci->model, "step", step);
	if (!e || json_array_append_new(record, e))
		return hr_error(HR_ENOMEM, "out of memory");
	return 0;
}

int pretrain_apply(const struct train_opts *o, struct model *m, char **record)
{
	struct pretrain_list l;
	struct ckpt *c[MODEL_MAX_SOURCES] = {0};
	struct model_source src[MODEL_MAX_SOURCES];
	json_t *rec = json_array();
	int rc = pretrain_list_parse(&l, o->init_from);

	*record = NULL;
	if (!rc && !rec)
		rc = hr_error(HR_ENOMEM, "out of memory");
	for (int i = 0; !rc && i < l.n; i++) {
		const struct ckpt_info *ci;
		rc = open_source(l.path[i], &c[i]);
		if (rc)
			break;
		ci = ckpt_get_info(c[i]);
		if (strcmp(ci->schema_hash, m->info.schema_hash)) {
			rc = hr_error(HR_EINVAL,
				      "checkpoint '%s' was trained on a store with schema %s; '%s' "
				      "has schema %s",
				      ckpt_path(c[i]), ci->schema_hash, o->data,
				      m->info.schema_hash);
			break;
		}
		src[i] = (struct model_source){ci->model, ckpt_path(c[i]), ckpt_lookup, c[i]};
		rc = record_add(rec, l.path[i], c[i]);
	}
	if (!rc)
		rc = model_init_from(m, src, l.n);
	if (!rc) {
		for (int i = 0; i < l.n; i++)
			log_info("initialised from %s (model %s, step %" PRIu64 ")",
				 ckpt_path(c[i]), ckpt_get_info(c[i])->model,
				 ckpt_get_info(c[i])->step);
		*record = json_dumps(rec, JSON_COMPACT);
		if (!*record)
			rc = hr_error(HR_ENOMEM, "out of memory");
	}
	if (rc && rc != HR_ENOMEM)
		hr_error_prefix(rc, "--init-from");
	for (int i = 0; i < MODEL_MAX_SOURCES; i++)
		ckpt_close(c[i]);
	json_decref(rec);
	if (l.text)
		pretrain_list_release(&l);
	return rc;
}

/* The "path" values of a record as one comma-separated list, into buf. */
static void record_paths(const char *record, char *buf, size_t cap)
{
	json_t *a = record ? json_loads(record, 0, NULL) : NULL, *e;
	size_t i, n = 0;

	buf[0] = '\0';
	json_array_foreach(a, i, e)
	{
		const char *p = json_string_value(json_object_get(e, "path"));
		if (n < cap)
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", p ? p : "?");
	}
	json_decref(a);
}

int pretrain_check_resume(const struct train_opts *o, const char *record, const char *path)
{
	char had[2048];

	record_paths(record, had, sizeof(had));
	if (record && !strcmp(had, o->init_from))
		return 0;
	if (!record)
		return hr_error(
			HR_EINVAL,
			"--init-from %s: '%s' holds a run to resume (%s) that did not start "
			"from checkpoints: --no-resume starts it over from them (replacing its "
			"checkpoints as it saves), or choose another --out",
			o->init_from, o->out, path);
	return hr_error(
		HR_EINVAL,
		"--init-from %s: '%s' holds a run to resume (%s) that started from %s: "
		"--no-resume starts it over from the new list (replacing its checkpoints as "
		"it saves), or choose another --out",
		o->init_from, o->out, path, had);
}
