/*
 * users.h - what the store knows of each user, for serving: the query a
 * recommendation for them starts from, and the items they have rated.
 *
 * The query is the user's most recent record in the store (train, valid
 * or test: the latest by timestamp, then split, then key; docs/ARCHITECTURE.md,
 * "Serving"): their demographics, their history and dense values as of
 * that event (the event itself not included, as in every record).  Its
 * item side is replaced by each candidate's.  A user only in valid or test
 * has encoded id 0 (train never saw them) but still their demographics and
 * history.  The rated items: every item of a record of the user in any
 * split (encoded ids > 0, ascending, distinct), what --exclude-rated
 * leaves out.
 *
 * Loaded once by one scan of the three splits (scalar fields only), which
 * also counts each item's train records (the popular list's scores).
 * Read-only afterwards: any number of threads.  The latest records are
 * copied out of the store (one per user), so nothing points into it.
 */
#ifndef HR_SERVE_USERS_H
#define HR_SERVE_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/idmap.h"
#include "store/info.h"
#include "store/store.h"

struct users {
	uint32_t n;          /* distinct raw users with a record */
	struct idmap by_raw; /* raw user id -> index 0 .. n - 1 */
	uint64_t *rec_off;   /* (n + 1) user i's latest record is recs[rec_off[i] .. [i + 1]) */
	uint8_t *recs;
	uint64_t *rated_off; /* (n + 1) user i's rated items are rated[rated_off[i] .. [i + 1]) */
	uint32_t *rated;
};

/*
 * Scans s's train, valid and test records (info: its meta) into u, and
 * writes each item's train record count into counts (info->vocab[SF_ITEM]
 * floats).  HR_EFORMAT from batch_fill (a malformed record, named by store,
 * split and key); HR_ESTORE; HR_EINVAL when the store has no records;
 * HR_ENOMEM.  On failure *u owns nothing.
 */
int users_load(struct users *u, struct store *s, const struct store_info *info, float *counts);
void users_release(struct users *u);

/* The index of raw user id raw, or -1 when the store has no record of them. */
int64_t users_find(const struct users *u, uint32_t raw);

#endif
