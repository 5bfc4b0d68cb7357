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
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

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
		else if (strcmp(e->d_name, "lock.mdb"))
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
	size_t n = strlen(target);

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
	clean_stale(p->target);
	snprintf(p->tmp, sizeof(p->tmp), "%s.tmp-%ld", p->target, (long)getpid());
	if (mkdir(p->tmp, 0755) < 0)
		return hr_error(HR_EIO, "cannot create '%s': %s", p->tmp, strerror(errno));
	p->active = 1;
	return 0;
}

static int exchange(const char *a, const char *b)
{
#ifdef SYS_renameat2
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
#else
	(void)a;
	(void)b;
	errno = ENOSYS;
	return -1;
#endif
}

int publish_commit(struct publish *p)
{
	char parent[PATH_MAX], data[PATH_MAX + 16];
	int rc;

	HR_ASSERT(p->active);
	rc = path_join(data, sizeof(data), p->tmp, "data.mdb");
	if (!rc)
		rc = fsync_path(data);
	if (!rc)
		rc = fsync_path(p->tmp);
	if (rc)
		return rc;
	if (path_exists(p->target)) {
		if (exchange(p->tmp, p->target) == 0) {
			/* p->tmp now holds the old store. */
			rc = remove_tree(p->tmp);
			p->active = 0;
		} else if (errno == EINVAL || errno == ENOSYS) {
			/* No RENAME_EXCHANGE here: move the old store aside first. */
			char old[PATH_MAX + 16];
			snprintf(old, sizeof(old), "%s.old-%ld", p->target, (long)getpid());
			if (rename(p->target, old) < 0)
				return hr_error(HR_EIO, "cannot move '%s' aside: %s", p->target,
						strerror(errno));
			if (rename(p->tmp, p->target) < 0) {
				int e = errno;
				rename(old, p->target);
				return hr_error(HR_EIO, "cannot rename '%s' to '%s': %s", p->tmp,
						p->target, strerror(e));
			}
			p->active = 0;
			rc = remove_tree(old);
		} else {
			return hr_error(HR_EIO, "cannot replace '%s': %s", p->target,
					strerror(errno));
		}
	} else {
		if (rename(p->tmp, p->target) < 0)
			return hr_error(HR_EIO, "cannot rename '%s' to '%s': %s", p->tmp, p->target,
					strerror(errno));
		p->active = 0;
	}
	parent_of(p->target, parent, sizeof(parent));
	if (!rc)
		rc = fsync_path(parent);
	return rc;
}

void publish_abort(struct publish *p)
{
	if (p->active)
		remove_tree(p->tmp);
	p->active = 0;
}
