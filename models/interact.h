/*
 * interact.h - one split's interactions, as arrays and as two sparse
 * matrices: what a model needs beyond one record (a negative sampler's
 * consumed items and item frequencies, AutoRec's rows of ratings).
 *
 * struct interactions holds (user, item, label, rating) for the records of
 * one split, read once from the store (interactions_load) or built from
 * arrays (interactions_build), plus two CSR views of the same entries:
 *
 *   by user: user u's entries are [user_off[u], user_off[u + 1]) of
 *            user_item, user_rating, user_label; ascending item
 *   by item: item i's entries are [item_off[i], item_off[i + 1]) of
 *            item_user, item_rating, item_label; ascending user
 *
 * with ties (a pair rated twice, which MovieLens never does) in input
 * order.  Rows are the encoded ids 0 .. n_users-1 and 0 .. n_items-1, the
 * store's vocabulary sizes, so a row indexes an embedding table.  Row 0 is
 * the padding id: empty for train; for valid and test it collects the users
 * and items train did not know (docs/FORMAT.md, encoded ids).
 *
 * Ownership: the struct owns one block (mem) holding every array;
 * interactions_release() frees it.  Nothing points into the store, so the
 * store and its index may be closed once loaded.  After loading the struct
 * is read-only: any number of threads may read it at once.
 *
 * Memory: 31 bytes per entry plus 8 per user and per item (the synthetic
 * ml-1m's 467,463 train positives: 14.6 MB; ml-25m's ~20 M train records:
 * about 0.6 GB).
 */
#ifndef HR_INTERACT_H
#define HR_INTERACT_H

#include <stdint.h>

#include "batch.h"

struct interactions {
	uint64_t n;                /* entries */
	uint32_t n_users, n_items; /* rows of the two views (vocabulary sizes) */

	/* The entries in input order (a split's key order when read by key). */
	uint32_t *user, *item; /* (n) encoded ids */
	float *rating;         /* (n) the raw rating */
	uint8_t *label;        /* (n) 0 or 1 */

	uint64_t *user_off;  /* (n_users + 1) */
	uint32_t *user_item; /* (n) */
	float *user_rating;  /* (n) */
	uint8_t *user_label; /* (n) */

	uint64_t *item_off;  /* (n_items + 1) */
	uint32_t *item_user; /* (n) */
	float *item_rating;  /* (n) */
	uint8_t *item_label; /* (n) */

	void *mem;
};

/* interactions_load() flags. */
#define INTERACT_POSITIVES 1u /* keep only records with label 1 */

/*
 * Reads every position of src (its order, or key order) through
 * batch_fill() in chunks, decoding only the scalar fields
 * (REC_SKIP_FEATURES: no genres, dense values or histories), so the ids,
 * labels and ratings are checked as batch_fill() checks them, and builds
 * the two views.  n_users and n_items are src->ix->vocab[SF_USER] and
 * [SF_ITEM].  With INTERACT_POSITIVES only label-1 records become entries
 * (a sampler's "consumed"); with 0 every record does.  Cost on the
 * synthetic ml-1m's train (598,821 records, store in the page cache, one
 * core): 85-125 ns a record, 50-75 ms in all; about half is decoding, a
 * third building the views.  Peak memory: the result plus 13 bytes a
 * record of src.
 *
 * On success *x owns its memory (interactions_release()); on failure *x
 * is zeroed and owns nothing.  Errors: HR_EFORMAT from batch_fill(), its
 * message naming the store, the split and the record ("store 'S': train
 * record 12: field 'rating' is nan, not finite"); HR_EINVAL when the split
 * has 2^32 records or more ("store 'S': ..."); HR_ENOMEM naming the store
 * and split.  Thread-safe for distinct x (src is only read).
 */
int interactions_load(struct interactions *x, const struct batch_source *src, unsigned flags);

/*
 * Builds *x from n entries given as arrays (copied; the caller keeps
 * them): for tests, and for interactions that come from elsewhere than a
 * split.  rating and label may be NULL (read as 0).  Every user must be
 * below n_users, every item below n_items and every label 0 or 1, else
 * HR_EINVAL naming the entry ("entry 3: item 9, the vocabulary has 5
 * ids"); n below 2^32 (HR_EINVAL); HR_ENOMEM.  On failure *x is zeroed.
 */
int interactions_build(struct interactions *x, const uint32_t *user, const uint32_t *item,
		       const float *rating, const uint8_t *label, uint64_t n, uint32_t n_users,
		       uint32_t n_items);

/* Frees x's memory and zeroes it; a zeroed x is fine. */
void interactions_release(struct interactions *x);

#endif
