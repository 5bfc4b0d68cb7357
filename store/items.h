/*
 * items.h - the items table (docs/FORMAT.md, `items`) as arrays by encoded
 * item id: side information a model reads by id (a sampled negative's
 * genres and dense features, DIN/DIEN's category sequence), loaded once.
 *
 * Row 0 (padding/unknown) and the ids the table lacks have no genres and
 * zero dense values.  The dense values are the table's, scaled as in
 * records (item_log_count, item_pos_rate as of the end of the train
 * split).
 * Ownership: one allocation (mem), freed by store_items_release(); nothing
 * points into the store.  Read-only after loading: any number of threads.
 */
#ifndef HR_STORE_ITEMS_H
#define HR_STORE_ITEMS_H

#include <stdint.h>

#include "store.h"

struct store_items {
	uint32_t n;          /* rows: the item vocabulary's size */
	uint32_t *genre_off; /* (n + 1): item i's genres are genre[genre_off[i] .. [i + 1]) */
	uint32_t *genre;     /* encoded genre ids, each below vocab[SF_GENRE] */
	float *dense;        /* (n, 2) */
	void *mem;
};

/*
 * Reads every item 1 .. n_items - 1 of s's items table, checking each
 * genre against n_genres.  HR_ESTORE naming the store and the item when a
 * row is missing or malformed; HR_ENOMEM.  On failure *out owns nothing.
 */
int store_items_load(struct store *s, uint32_t n_items, uint32_t n_genres, struct store_items *out);
void store_items_release(struct store_items *it);

#endif
