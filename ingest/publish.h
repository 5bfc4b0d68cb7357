/*
 * publish.h - atomic output of a store directory.
 *
 * The store is built in "<target>.tmp-<pid>" beside the target (same file
 * system) and published with common/fspub.h: every file and the directory
 * synced, then moved into place with renameat2's RENAME_EXCHANGE when
 * replacing an old store (the target path always names a complete store;
 * the old one is deleted once the swap is durable), with a plain rename
 * otherwise, and the parent directory synced.  A SIGTERM (ingest_cancel)
 * seen before the rename keeps the old store.  A failed or interrupted run
 * removes its temporary directory; one killed outright leaves it behind
 * under that recognisable name, and the next run for the same target
 * removes every "<target>.tmp-<pid>" whose process is gone.
 *
 * Fault points (common/faultpoint.h): fspub's publish.begun (the temporary
 * directory exists, empty), publish.synced and publish.renamed.
 */
#ifndef HR_PUBLISH_H
#define HR_PUBLISH_H

#include <limits.h>

#include "common/fspub.h"

struct publish {
	char target[PATH_MAX];
	char tmp[PATH_MAX]; /* where the caller builds the store */
	int active;         /* tmp exists and is ours */
	int force;          /* a store found at the target on commit may be replaced */
	struct fspub fs;
};

/*
 * Checks the target, removes leftovers of dead runs and creates the
 * temporary directory p->tmp.  HR_EEXIST when the target exists and force
 * is 0; HR_EINVAL when force is set but the target is not a store (hogrec
 * never deletes a directory it did not write); HR_EIO when the directory
 * cannot be created.  On failure nothing needs releasing.
 */
int publish_begin(struct publish *p, const char *target, int force);

/*
 * Syncs the temporary store and moves it to the target (see above).
 * HR_ECANCEL when ingest_cancel was set before the rename, HR_EEXIST when
 * the target appeared since publish_begin and force is not set (another
 * run published there meanwhile: its store stays), HR_EIO when a sync or
 * the rename failed: the temporary is then removed and the store in place
 * (if any) is untouched.  After return p holds nothing to release.
 */
int publish_commit(struct publish *p);

/* Removes the temporary directory (if any).  Safe to call twice. */
void publish_abort(struct publish *p);

/* 1 if dir looks like a store written by hogrec (data.mdb, lock.mdb, data.crc only). */
int publish_is_store(const char *dir);

#endif
