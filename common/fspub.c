/*
 * Atomic, durable publication (see fspub.h): one renameat2 wrapper with a
 * fallback, fsync of the temporary and of the parent directory, rollback.
 */
#include "fspub.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/fsutil.h"
#include "common/log.h"

static atomic_int force_fallback;

void fspub_force_fallback(int on)
{
	/* Tests flip it between calls; no ordering with other memory needed. */
	atomic_store_explicit(&force_fallback, on, memory_order_relaxed);
}

/* ---- renaming ---- */

static int renameat2_raw(const char *from, const char *to, unsigned flags)
{
	if (atomic_load_explicit(&force_fallback, memory_order_relaxed)) {
		errno = ENOSYS;
		return -1;
	}
#ifdef SYS_renameat2
	return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int rename_error(const char *from, const char *to, int e)
{
	int code = e == EEXIST || e == ENOTEMPTY ? HR_EEXIST : e == ENOENT ? HR_ENOENT : HR_EIO;

	return hr_error(code, "cannot rename '%s' to '%s': %s", from, to, strerror(e));
}

/* The three-rename stand-in for RENAME_EXCHANGE (to is briefly missing). */
static int exchange_fallback(const char *from, const char *to)
{
	char aside[PATH_MAX + 32];
	int e;

	if ((size_t)snprintf(aside, sizeof(aside), "%s.xchg-%ld", to, (long)getpid()) >=
	    sizeof(aside))
		return hr_error(HR_EINVAL, "path too long: '%s'", to);
	if (rename(to, aside) < 0)
		return rename_error(to, aside, errno);
	if (rename(from, to) < 0) {
		e = errno;
		rename(aside, to);
		return rename_error(from, to, e);
	}
	if (rename(aside, from) < 0) {
		/* The exchange's new half is in place; put the old half back too. */
		e = errno;
		rename(to, from);
		rename(aside, to);
		return rename_error(aside, from, e);
	}
	return 0;
}

int fspub_rename(const char *from, const char *to, unsigned flags)
{
	if (flags == 0)
		return rename(from, to) == 0 ? 0 : rename_error(from, to, errno);
	if (renameat2_raw(from, to, flags) == 0)
		return 0;
	if ((errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP))
		return rename_error(from, to, errno);
	/* No renameat2 (or not for these flags) here. */
	if (flags == FSPUB_RENAME_NOREPLACE) {
		if (path_exists(to))
			return rename_error(from, to, EEXIST);
	} else if (flags == FSPUB_RENAME_EXCHANGE) {
		if (!path_exists(from) || !path_exists(to))
			return rename_error(from, to, ENOENT);
		return exchange_fallback(from, to);
	} else {
		return hr_error(HR_EINVAL, "fspub_rename: bad flags %u", flags);
	}
	return rename(from, to) == 0 ? 0 : rename_error(from, to, errno);
}

/* ---- begin ---- */

static int setup(struct fspub *p, enum fspub_kind kind, const char *target, const char *tmp)
{
	size_t n = strlen(target), k;
	const char *slash;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->kind = kind;
	while (n > 1 && target[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(p->target))
		return hr_error(HR_EINVAL, "bad output path '%s'", target);
	memcpy(p->target, target, n);
	p->target[n] = '\0';
	k = tmp ? (size_t)snprintf(p->tmp, sizeof(p->tmp), "%s", tmp) :
		  (size_t)snprintf(p->tmp, sizeof(p->tmp), "%s.tmp-%ld", p->target, (long)getpid());
	if (k >= sizeof(p->tmp))
		return hr_error(HR_EINVAL, "output path too long: '%s'", p->target);
	slash = strrchr(p->target, '/');
	if (!slash)
		snprintf(p->parent, sizeof(p->parent), ".");
	else if (slash == p->target)
		snprintf(p->parent, sizeof(p->parent), "/");
	else
		snprintf(p->parent, sizeof(p->parent), "%.*s", (int)(slash - p->target), p->target);
	return 0;
}

int fspub_begin_file(struct fspub *p, const char *target, const char *tmp)
{
	int rc = setup(p, FSPUB_FILE, target, tmp);

	if (rc)
		return rc;
	p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (p->fd < 0 && errno == ELOOP && unlink(p->tmp) == 0) /* a stale symlink */
		p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (p->fd < 0)
		return hr_error(HR_EIO, "cannot create '%s': %s", p->tmp, strerror(errno));
	p->active = 1;
	fault_point("publish.begun");
	return 0;
}

int fspub_begin_dir(struct fspub *p, const char *target, const char *tmp)
{
	int rc = setup(p, FSPUB_DIR, target, tmp);

	if (rc)
		return rc;
	if (mkdir(p->tmp, 0755) < 0)
		return hr_error(errno == EEXIST ? HR_EEXIST : HR_EIO, "cannot create '%s': %s",
				p->tmp, strerror(errno));
	p->active = 1;
	fault_point("publish.begun");
	return 0;
}

int fspub_begin_symlink(struct fspub *p, const char *target, const char *tmp, const char *contents)
{
	int rc = setup(p, FSPUB_SYMLINK, target, tmp);

	if (rc)
		return rc;
	unlink(p->tmp);
	if (symlink(contents, p->tmp) < 0)
		return hr_error(HR_EIO, "cannot create symlink '%s': %s", p->tmp, strerror(errno));
	p->active = 1;
	return 0;
}

/* ---- commit ---- */

/* The regular files directly inside dir, then dir itself. */
static int sync_dir_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return hr_error(HR_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
	while (!rc && (e = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		rc = path_join(path, sizeof(path), dir, e->d_name);
		if (!rc && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = fsync_path(path);
	}
	closedir(d);
	return rc ? rc : fsync_path(dir);
}

static int sync_tmp(struct fspub *p)
{
	int rc = 0;

	switch (p->kind) {
	case FSPUB_FILE:
		if (p->fd < 0)
			return fsync_path(p->tmp);
		if (fsync(p->fd) < 0)
			rc = hr_error(HR_EIO, "cannot sync '%s': %s", p->tmp, strerror(errno));
		if (close(p->fd) < 0 && !rc)
			rc = hr_error(HR_EIO, "cannot close '%s': %s", p->tmp, strerror(errno));
		p->fd = -1;
		return rc;
	case FSPUB_DIR: return sync_dir_tree(p->tmp);
	case FSPUB_SYMLINK: return 0; /* no data; the parent's sync covers it */
	}
	return 0;
}

static int sync_parent(const struct fspub *p)
{
	if (p->inject == FSPUB_INJECT_DIRSYNC)
		return hr_error(HR_EIO, "cannot sync '%s': %s (injected)", p->parent,
				strerror(EIO));
	return fsync_path(p->parent);
}

static void sync_parent_quiet(const struct fspub *p)
{
	int fd = open(p->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Moves tmp to target; *exchanged when tmp now holds the old directory. */
static int move(struct fspub *p, enum fspub_mode mode, int existed, int *exchanged)
{
	if (p->inject == FSPUB_INJECT_RENAME)
		return hr_error(HR_EIO, "cannot rename '%s' to '%s': %s (injected)", p->tmp,
				p->target, strerror(EIO));
	if (mode == FSPUB_NOREPLACE)
		return fspub_rename(p->tmp, p->target, FSPUB_RENAME_NOREPLACE);
	if (p->kind == FSPUB_DIR && existed) {
		*exchanged = 1;
		return fspub_rename(p->tmp, p->target, FSPUB_RENAME_EXCHANGE);
	}
	return fspub_rename(p->tmp, p->target, 0);
}

/* The parent's sync failed after the move: undo it where that is possible. */
static void unmove(struct fspub *p, int exchanged)
{
	if (exchanged) {
		/* Swap back: tmp holds the new directory again (else the old one). */
		p->active = fspub_rename(p->tmp, p->target, FSPUB_RENAME_EXCHANGE) == 0;
	} else if (p->created && rename(p->target, p->tmp) == 0) {
		p->active = 1;
		p->created = 0;
	}
	sync_parent_quiet(p);
}

int fspub_commit(struct fspub *p, enum fspub_mode mode)
{
	char msg[1024];
	struct stat st;
	int existed, exchanged = 0, rc;

	HR_ASSERT(p->active);
	rc = sync_tmp(p);
	if (rc)
		goto fail;
	if (p->kind != FSPUB_SYMLINK)
		fault_point("publish.synced");
	if (p->cancel && *p->cancel) {
		rc = hr_error(HR_ECANCEL, "interrupted before publishing '%s'", p->target);
		goto fail;
	}
	existed = lstat(p->target, &st) == 0; /* a dangling symlink exists too */
	rc = move(p, mode, existed, &exchanged);
	if (rc)
		goto fail;
	p->created = !existed;
	p->active = exchanged; /* tmp now holds the old directory, or nothing */
	if (p->kind != FSPUB_SYMLINK)
		fault_point("publish.renamed");
	rc = sync_parent(p);
	if (rc) {
		unmove(p, exchanged);
		goto fail;
	}
	if (exchanged) {
		/* Only now, with the swap durable, is the old directory garbage. */
		if (remove_tree(p->tmp) == 0)
			sync_parent_quiet(p);
		else
			log_warn("%s (the new '%s' is in place)", hr_errmsg(), p->target);
		p->active = 0;
	}
	return 0;

fail:
	/* Clean up without losing the first failure's message. */
	snprintf(msg, sizeof(msg), "%s", hr_errmsg());
	fspub_abort(p);
	return hr_error(rc, "%s", msg);
}

void fspub_abort(struct fspub *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (!p->active)
		return;
	if (p->kind == FSPUB_DIR)
		remove_tree(p->tmp);
	else
		unlink(p->tmp);
	p->active = 0;
}
