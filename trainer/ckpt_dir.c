/*
 * ckpt_dir.c - the checkpoint directory: listing, the latest valid
 * checkpoint, retention.
 */
#include "ckpt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/fsutil.h"
#include "common/log.h"

static int by_step(const void *a, const void *b)
{
	const struct ckpt_entry *x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return strcmp(x->name, y->name);
}

int ckpt_list(const char *dir, struct ckpt_entry **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct ckpt_entry *v = NULL;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return hr_error(errno == ENOENT || errno == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot open directory '%s': %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		uint64_t step;
		if (!ckpt_parse_name(e->d_name, &step) || strlen(e->d_name) >= sizeof(v->name))
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct ckpt_entry *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				closedir(d);
				free(v);
				*n = 0;
				return hr_error(HR_ENOMEM, "out of memory listing '%s'", dir);
			}
			v = nv;
			cap = nc;
		}
		v[*n].step = step;
		memcpy(v[*n].name, e->d_name, strlen(e->d_name) + 1);
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), by_step);
	*out = v;
	return 0;
}

/* 0 if path opens and validates; otherwise the error, message set. */
static int validate(const char *path)
{
	struct ckpt *c;
	int rc = ckpt_open(&c, path);

	ckpt_close(c);
	return rc;
}

int ckpt_read_latest(const char *dir, char *name, size_t cap)
{
	char link[PATH_MAX];
	struct stat st;
	ssize_t k;
	int rc = path_join(link, sizeof(link), dir, LATEST);

	if (rc)
		return rc;
	if (lstat(link, &st) < 0)
		return hr_error(errno == ENOENT || errno == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot read '%s': %s", link, strerror(errno));
	if (!S_ISLNK(st.st_mode))
		return hr_error(HR_EFORMAT, "'%s' is not a symbolic link", link);
	k = readlink(link, name, cap);
	if (k < 0)
		return hr_error(errno == ENOENT ? HR_ENOENT : HR_EIO, "cannot read '%s': %s", link,
				strerror(errno));
	if ((size_t)k >= cap)
		return hr_error(HR_EFORMAT, "'%s' points to a name longer than %zu bytes", link,
				cap - 1);
	name[k] = '\0';
	if (k == 0 || memchr(name, '/', (size_t)k) || name[0] == '.')
		return hr_error(HR_EFORMAT,
				"'%s' points to '%s', not to a file name in '%s' (refused: a "
				"checkpoint's latest is a bare name, no '/', no leading '.')",
				link, name, dir);
	return 0;
}

/* Keeps the first damage message (up to cap bytes) of a failed directory scan. */
static void note_damage(char *first, size_t cap, int *damaged)
{
	if (!(*damaged)++)
		snprintf(first, cap, "%s", hr_errmsg());
}

int ckpt_latest(const char *dir, char *path, size_t cap)
{
	char target[256], p[PATH_MAX], first[1024] = "";
	struct ckpt_entry *v;
	size_t n;
	int damaged = 0, rc = ckpt_read_latest(dir, target, sizeof(target));
	int have = rc == 0;

	if (rc == HR_EFORMAT) {
		note_damage(first, sizeof(first), &damaged);
		log_warn("%s; looking for the newest valid checkpoint", hr_errmsg());
	} else if (rc == HR_EIO || rc == HR_EINVAL) {
		return rc;
	}
	if (have) {
		rc = path_join(p, sizeof(p), dir, target);
		if (!rc && (rc = validate(p)) == 0)
			return path_join(path, cap, dir, target);
		if (rc == HR_ENOMEM || rc == HR_EINVAL)
			return rc;
		if (rc != HR_ENOENT)
			note_damage(first, sizeof(first), &damaged);
		log_warn("%s; looking for an older checkpoint", hr_errmsg());
	}
	rc = ckpt_list(dir, &v, &n);
	if (rc)
		return rc;
	for (size_t i = n; i-- > 0;) {
		if (have && !strcmp(v[i].name, target))
			continue; /* already tried */
		rc = path_join(p, sizeof(p), dir, v[i].name);
		if (!rc && (rc = validate(p)) == 0) {
			if (have || damaged)
				log_warn("using the older checkpoint '%s'", p);
			else
				log_warn("'%s/" LATEST "' is missing; using '%s'", dir, p);
			rc = path_join(path, cap, dir, v[i].name);
			free(v);
			return rc;
		}
		if (rc == HR_ENOMEM) {
			free(v);
			return rc;
		}
		if (rc != HR_ENOENT) /* removed meanwhile: not damage */
			note_damage(first, sizeof(first), &damaged);
		log_warn("%s; skipping it", hr_errmsg());
	}
	free(v);
	if (damaged)
		return hr_error(HR_EFORMAT, "'%s' holds no valid checkpoint: %s", dir, first);
	return hr_error(HR_ENOENT, "no checkpoint in '%s'", dir);
}

/* "<prefix><anything>.tmp-<pid>" or ".latest.tmp-<pid>" whose pid is gone. */
static int stale_tmp(const char *name)
{
	const char *p;
	uint64_t pid;

	if (strncmp(name, ".ckpt-", 6) && strncmp(name, ".latest.tmp-", 12))
		return 0;
	p = strstr(name + 1, ".tmp-");
	if (!p || ckpt_parse_dec(p + 5, strlen(p + 5), &pid) || pid == 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char p[PATH_MAX];
		if (!stale_tmp(e->d_name) || path_join(p, sizeof(p), dir, e->d_name))
			continue;
		if (unlink(p) == 0)
			log_info("removed '%s' left by an interrupted save", p);
	}
	closedir(d);
}

/*
 * 0 if retention may count (and delete) dir's entry e: a canonical name, a
 * file that validates, its step in the name, of ref's model and schema
 * (ref NULL: any).  Otherwise the code, with the message set.
 */
static int retention_counts(const char *p, const struct ckpt_entry *e, const struct ckpt_info *ref)
{
	char canon[48];
	struct ckpt *c;
	const struct ckpt_info *in;
	int rc;

	ckpt_file_name(canon, sizeof(canon), e->step);
	if (strcmp(canon, e->name))
		return hr_error(HR_EFORMAT, "'%s' is not a name a save writes ('%s')", p, canon);
	rc = ckpt_open(&c, p);
	if (rc)
		return rc;
	in = ckpt_get_info(c);
	if (in->step != e->step)
		rc = hr_error(HR_EFORMAT, "'%s': its metadata says step %" PRIu64, p, in->step);
	else if (ref &&
		 (strcmp(in->model, ref->model) || strcmp(in->schema_hash, ref->schema_hash)))
		rc = hr_error(HR_EFORMAT,
			      "'%s' is of model '%s' and schema '%s', not this run's '%s' and '%s'",
			      p, in->model, in->schema_hash, ref->model, ref->schema_hash);
	ckpt_close(c);
	return rc;
}

/* The validated info of dir/latest's target into ref; 0 if there is none. */
static int retention_reference(const char *dir, const char *latest, struct ckpt_info *ref)
{
	char p[PATH_MAX];
	struct ckpt *c;

	if (path_join(p, sizeof(p), dir, latest) || ckpt_open(&c, p))
		return 0;
	*ref = *ckpt_get_info(c);
	ckpt_close(c);
	return 1;
}

int ckpt_retain(const char *dir, int keep_last, uint64_t best_step)
{
	char latest[256], err[PATH_MAX + 256] = "";
	struct ckpt_entry *v;
	struct ckpt_info ref;
	size_t n, removed = 0, counted = 0, keep;
	int have, has_ref = 0, rc, lrc;

	if (keep_last < 0)
		return hr_error(HR_EINVAL, "retention: keep_last must be >= 0 (got %d)", keep_last);
	keep = keep_last > 0 ? (size_t)keep_last : 1; /* never the newest valid one */
	rc = ckpt_list(dir, &v, &n);
	if (rc)
		return rc;
	lrc = ckpt_read_latest(dir, latest, sizeof(latest));
	have = lrc == 0;
	if (lrc == HR_EFORMAT)
		log_warn("%s; it protects no checkpoint from retention", hr_errmsg());
	if (have)
		has_ref = retention_reference(dir, latest, &ref);
	fault_point("ckpt.retention");
	for (size_t i = n; i-- > 0;) {
		char p[PATH_MAX];
		int why;
		if (path_join(p, sizeof(p), dir, v[i].name))
			continue;
		why = retention_counts(p, &v[i], has_ref ? &ref : NULL);
		if (why == HR_ENOMEM) {
			rc = why;
			snprintf(err, sizeof(err), "%s", hr_errmsg());
			break;
		}
		if (why == HR_ENOENT)
			continue; /* removed meanwhile */
		if (why) {
			log_warn("%s; retention leaves it alone", hr_errmsg());
			continue;
		}
		if (++counted <= keep || (best_step && v[i].step == best_step))
			continue;
		if (have && !strcmp(latest, v[i].name))
			continue; /* never the one latest names */
		if (unlink(p) < 0 && errno != ENOENT) {
			if (!rc) {
				rc = HR_EIO;
				snprintf(err, sizeof(err), "cannot remove '%s': %s", p,
					 strerror(errno));
			}
			continue;
		}
		removed++;
		log_debug("removed '%s' (retention)", p);
	}
	free(v);
	remove_stale(dir);
	if (removed)
		ckpt_sync_dir_quiet(dir);
	return rc ? hr_error(rc, "%s", err) : 0;
}
