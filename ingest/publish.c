#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/fspub.h"
#include "common/log.h"
#include "ingest.h"
#include "store/store.h"

int publish_is_store(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int has_data = 0, other = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strcmp(e->d_name, "data.mdb"))
			has_data = 1;
		else if (strcmp(e->d_name, "lock.mdb") && strcmp(e->d_name, STORE_SEAL_FILE))
			other = 1;
	}
	closedir(d);
	return has_data && !other;
}

static void parent_of(const char *path, char *out, size_t n)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(out, n, "%s", dirname(tmp));
}

/* Removes "<target>.tmp-<pid>" directories left by processes that are gone. */
static void clean_stale(const char *target)
{
	char parent[PATH_MAX], base[PATH_MAX], tmp[PATH_MAX], prefix[PATH_MAX + 16];
	DIR *d;
	struct dirent *e;

	parent_of(target, parent, sizeof(parent));
	snprintf(tmp, sizeof(tmp), "%s", target);
	snprintf(base, sizeof(base), "%s", basename(tmp));
	snprintf(prefix, sizeof(prefix), "%s.tmp-", base);
	d = opendir(parent);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid;
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		pid = strtol(e->d_name + strlen(prefix), &end, 10);
		if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue; /* not ours, or its process still runs */
		char stale[PATH_MAX * 2];
		snprintf(stale, sizeof(stale), "%s/%s", parent, e->d_name);
		if (remove_tree(stale) == 0)
			log_info("removed '%s' left by an interrupted run", stale);
	}
	closedir(d);
}

int publish_begin(struct publish *p, const char *target, int force)
{
	char parent[PATH_MAX];
	size_t n = strlen(target);
	int rc;

	memset(p, 0, sizeof(*p));
	while (n > 1 && target[n - 1] == '/')
		n--;
	if (n == 0 || n + 32 >= sizeof(p->target))
		return hr_error(HR_EINVAL, "bad output path '%s'", target);
	memcpy(p->target, target, n);
	p->target[n] = '\0';
	if (path_exists(p->target)) {
		if (!force)
			return hr_error(HR_EEXIST,
					"'%s' already exists (use --force to replace it)",
					p->target);
		if (!path_is_dir(p->target) || !publish_is_store(p->target))
			return hr_error(HR_EINVAL,
					"refusing to replace '%s': it is not a hogrec store",
					p->target);
	}
	parent_of(p->target, parent, sizeof(parent));
	if (!path_is_dir(parent))
		return hr_error(HR_EIO, "cannot create '%s': '%s' is not a directory%s", p->target,
				parent, path_exists(parent) ? "" : " (it does not exist)");
	clean_stale(p->target);
	rc = fspub_begin_dir(&p->fs, p->target, NULL);
	if (rc)
		return rc;
	snprintf(p->tmp, sizeof(p->tmp), "%s", p->fs.tmp);
	p->active = 1;
	p->force = force;
	return 0;
}

int publish_commit(struct publish *p)
{
	int rc;

	HR_ASSERT(p->active);
	/* A SIGTERM that arrives before the rename keeps the old store. */
	p->fs.cancel = &ingest_cancel;
	/*
	 * Without --force, a target that appeared while this run built its
	 * store (another ingest to the same output) is not replaced: the
	 * check in publish_begin was minutes ago.
	 */
	rc = fspub_commit(&p->fs, p->force ? FSPUB_REPLACE : FSPUB_NOREPLACE);
	p->active = 0; /* published, or removed by the failed commit */
	if (rc == HR_EEXIST)
		rc = hr_error(HR_EEXIST,
			      "'%s' appeared while this run was building it (another ingest to the "
			      "same output?): not replaced without --force",
			      p->target);
	return rc;
}

void publish_abort(struct publish *p)
{
	if (p->active)
		fspub_abort(&p->fs);
	p->active = 0;
}
