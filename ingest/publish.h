/*
 * publish.h - atomic output of a store directory.
 *
 * The store is built in "<target>.tmp-<pid>" beside the target (same file
 * system), synced, and only then moved into place: with renameat2's
 * RENAME_EXCHANGE when replacing an old store (the target path always names
 * a complete store), with a plain rename otherwise.  The parent directory
 * is synced after the move.  A failed or interrupted run removes its
 * temporary directory; one killed outright leaves it behind under that
 * recognisable name, and the next run for the same target removes every
 * "<target>.tmp-<pid>" whose process is gone.
 */
#ifndef HR_PUBLISH_H
#define HR_PUBLISH_H

#include <limits.h>

struct publish {
	char target[PATH_MAX];
	char tmp[PATH_MAX + 32];
	int active; /* tmp exists and is ours */
};

/*
 * Checks the target and creates the temporary directory.  HR_EEXIST when
 * the target exists and force is 0; HR_EINVAL when force is set but the
 * target is not a store (hogrec never deletes a directory it did not
 * write); HR_EIO when the directory cannot be created.
 */
int publish_begin(struct publish *p, const char *target, int force);

/* Syncs the temporary store and moves it to the target. */
int publish_commit(struct publish *p);

/* Removes the temporary directory (if any).  Safe to call twice. */
void publish_abort(struct publish *p);

/* 1 if dir looks like an LMDB store written by hogrec (only *.mdb files). */
int publish_is_store(const char *dir);

#endif
