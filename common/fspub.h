/*
 * fspub.h - atomic, durable publication of a file, a directory or a symlink.
 *
 * Whatever hogrec writes for others to read (a store directory, a
 * checkpoint file, the `latest` symlink, mlgen's data files) is built under
 * a temporary name beside its final name (same directory, so the same file
 * system) and published in one step:
 *
 *     begin     create the temporary (file, directory or symlink)
 *     ...       the caller fills it
 *     commit    fsync the temporary (a file; a directory's regular files and
 *               the directory itself), rename it to the target, fsync the
 *               parent directory; an old directory target is removed only
 *               after that
 *     abort     remove the temporary (after any failure; safe to repeat)
 *
 * so a reader sees the old target or the complete new one, never a partial
 * one, and a target reported published survives a crash.  A process killed
 * outright leaves its temporary behind; recognising and removing such
 * leftovers is the caller's (their names carry the caller's conventions).
 *
 * Replacing: a file or symlink is replaced by rename(2), atomically.  A
 * directory is swapped with renameat2(RENAME_EXCHANGE), so the target path
 * always names a complete directory, and the old one is then deleted.  Where
 * the kernel or file system lacks renameat2 (ENOSYS, EINVAL, EOPNOTSUPP)
 * fspub_rename() falls back to plain renames: a check then rename for
 * RENAME_NOREPLACE (not atomic against a concurrent writer), three renames
 * for RENAME_EXCHANGE (the target is briefly missing).
 *
 * Fault points (common/faultpoint.h), hit by file and directory publishes
 * (a symlink has no data to sync and hits none):
 *
 *     publish.begun     the temporary was just created, nothing written
 *     publish.synced    the temporary is complete and synced, not renamed
 *     publish.renamed   renamed to the target, parent directory not synced
 *
 * Errors: functions return 0 or a negative HR_E* code and set the thread's
 * message (common/err.h) naming the paths and the system's reason.
 *
 * Threading: a struct fspub belongs to one thread.  Different publishes
 * may run concurrently as long as their names differ.
 */
#ifndef HR_FSPUB_H
#define HR_FSPUB_H

#include <limits.h>
#include <signal.h>

enum fspub_kind { FSPUB_FILE, FSPUB_DIR, FSPUB_SYMLINK };

/* What commit does when the target exists. */
enum fspub_mode {
	FSPUB_NOREPLACE, /* refuse: HR_EEXIST, the temporary is removed */
	FSPUB_REPLACE,   /* replace it atomically (see above) */
};

/* Failures tests can inject into a commit (field `inject`). */
enum fspub_inject {
	FSPUB_INJECT_NONE,
	FSPUB_INJECT_RENAME,  /* the rename fails with EIO */
	FSPUB_INJECT_DIRSYNC, /* the parent directory's fsync after the rename fails */
};

struct fspub {
	char target[PATH_MAX];
	char tmp[PATH_MAX];
	char parent[PATH_MAX]; /* the directory that holds both */
	enum fspub_kind kind;
	int fd;      /* FSPUB_FILE: open for writing until commit or abort; else -1 */
	int active;  /* tmp exists and is ours */
	int created; /* after a successful commit: the target did not exist before */
	/*
	 * Optional (NULL: none): checked after the temporary is synced, just
	 * before the rename; when set, commit fails with HR_ECANCEL and
	 * removes the temporary, so an interrupted run leaves the old target.
	 */
	const volatile sig_atomic_t *cancel;
	enum fspub_inject inject; /* tests only; FSPUB_INJECT_NONE after begin */
};

/*
 * Starts publishing target, a path whose parent directory exists.  tmp is
 * the temporary's path, in the same directory; NULL means
 * "<target>.tmp-<pid>".  An existing file or symlink at tmp is replaced (it
 * can only be a leftover of this process or of a dead one of the same
 * pid).  The target is not examined here: commit decides.
 *
 * fspub_begin_file creates tmp (mode 0644 before umask, O_NOFOLLOW) and
 * leaves it open in p->fd for the caller to write; the caller may take the
 * descriptor (fdopen, say) but must then set p->fd to -1 after closing it
 * and before commit, which then syncs the file by path.
 * fspub_begin_dir creates tmp as a directory (mode 0755 before umask);
 * HR_EEXIST when something is already there.
 * fspub_begin_symlink creates tmp as a symlink holding contents.
 *
 * Errors: HR_EINVAL (a path too long, target empty), HR_EEXIST (dir only),
 * HR_EIO (cannot create).  On failure nothing was created and p is inert
 * (fspub_abort is a no-op).
 */
int fspub_begin_file(struct fspub *p, const char *target, const char *tmp);
int fspub_begin_dir(struct fspub *p, const char *target, const char *tmp);
int fspub_begin_symlink(struct fspub *p, const char *target, const char *tmp, const char *contents);

/*
 * Publishes p's temporary at its target (sync, rename, sync the parent;
 * see the overview) according to mode.  On success p->created says whether
 * the target is new, and p is inert.
 *
 * Errors: HR_EEXIST (FSPUB_NOREPLACE and the target exists), HR_ECANCEL
 * (*p->cancel was set), HR_EIO (a sync, the rename or the parent's sync
 * failed; fspub_rename's codes for the rename).  On any failure the
 * temporary is removed and the target is left
 * as it was, with one exception: when the parent's sync fails after a
 * file or symlink replaced an existing target, the old one cannot be
 * brought back and the new one stays (p->created is then 0; the caller may
 * restore what it knew), and likewise when undoing the rename fails in turn
 * (an exchanged-back directory: the old one is then left under the
 * temporary name).  A failed removal of a replaced old directory
 * only logs a warning: the new one is published; the old one is left under
 * the temporary name, for the caller's leftover cleanup.
 */
int fspub_commit(struct fspub *p, enum fspub_mode mode);

/* Closes p->fd and removes the temporary (a tree, for a directory), if any. */
void fspub_abort(struct fspub *p);

/* Flags for fspub_rename (the kernel's RENAME_* values). */
#define FSPUB_RENAME_NOREPLACE 1u
#define FSPUB_RENAME_EXCHANGE 2u

/*
 * renameat2(AT_FDCWD, from, AT_FDCWD, to, flags) with the fallback above
 * when the kernel or file system lacks it.  flags: 0 (a plain rename),
 * FSPUB_RENAME_NOREPLACE or FSPUB_RENAME_EXCHANGE.
 * Errors: HR_EEXIST (NOREPLACE and to exists), HR_ENOENT (from, or for
 * EXCHANGE to, does not exist), HR_EIO (anything else); the message names
 * both paths.
 */
int fspub_rename(const char *from, const char *to, unsigned flags);

/* Tests only: 1 makes fspub_rename behave as if renameat2 were missing. */
void fspub_force_fallback(int on);

#endif
