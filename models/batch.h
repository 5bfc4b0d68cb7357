/*
 * batch.h - a minibatch as models read it: struct of arrays, one block.
 *
 * Store records (docs/FORMAT.md) are decoded straight into batch rows:
 * batch_fill() fills a batch from a split's index (the loader, evaluation
 * and --predict all read records that way), batch_set_row() decodes one
 * row; nothing is allocated after batch_alloc().
 * Variable-length fields are padded: genres to BATCH_GENRES, histories to
 * hist_cap, with their lengths alongside; padding ids are 0.
 */
#ifndef HR_BATCH_H
#define HR_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define BATCH_GENRES 32

struct batch {
	uint32_t cap;               /* rows allocated (B) */
	uint32_t n;                 /* rows filled */
	uint32_t hist_cap;          /* L */
	uint32_t n_dense;           /* D */
	unsigned decode;            /* record_unpack_fields() flags; set with batch_set_decode() */
	uint32_t vocab[SF_NFIELDS]; /* ids must be below these; batch_fill() sets them */
	uint64_t seq;               /* position in the epoch's batch order */
	int epoch;

	uint32_t *user, *item, *gender, *age, *occupation, *zip; /* (B) encoded ids */
	uint32_t *genres;                                        /* (B, BATCH_GENRES) */
	uint32_t *n_genres;                                      /* (B) */
	float *dense;                                            /* (B, D) */
	uint32_t *hist;                                          /* (B, L) most recent last */
	uint32_t *n_hist;                                        /* (B) */
	uint32_t *neg;                                           /* (B, L) */
	uint32_t *n_neg;                                         /* (B) */
	float *label;                                            /* (B) 0 or 1 */
	float *rating;                                           /* (B) the raw rating */
	uint32_t *user_raw, *item_raw, *ts; /* (B) for evaluation and reports */

	void *mem;
};

struct store_items;

/* One allocation for every array.  HR_ENOMEM. */
int batch_alloc(struct batch *b, uint32_t cap, uint32_t hist_cap, uint32_t n_dense);
void batch_release(struct batch *b);

/*
 * Which fields batch_set_row() decodes: record_unpack_fields() flags
 * (REC_SKIP_SEQUENCES for models without histories, REC_SKIP_FEATURES for
 * models of ids only).  The skipped arrays are zeroed here, once, and rows
 * leave them alone, so a skipped field costs nothing per record.
 */
void batch_set_decode(struct batch *b, unsigned flags);

/*
 * The vocabulary sizes (store_index.vocab, meta["vocab_sizes"]) that
 * batch_set_row() checks ids against.  batch_fill() sets them from its
 * source's index, so every batch it fills is checked; after batch_alloc()
 * they are UINT32_MAX (nothing refused), which suits only a caller of
 * batch_set_row() that reads no id (a search by ts).
 */
void batch_set_vocab(struct batch *b, const uint32_t vocab[SF_NFIELDS]);

/*
 * Decodes the record rec[0..len) into row (< cap), skipping what b->decode
 * says to skip (see batch_set_decode()), and checks what it decoded, so
 * that no value of a foreign store can index past an embedding table:
 * every id (user, item, gender, age, occupation, zip, each genre, each
 * hist and neg_hist item) below its vocabulary's size in b->vocab, the
 * label 0 or 1, the rating and every dense value finite.  The rating is
 * one of the scalar fields every decode mode reads.  HR_EFORMAT when the bytes are
 * not a record of this layout or do not fit (longer history than
 * hist_cap, more dense values than n_dense; message from the decoder), or
 * a value fails those checks ("field 'item' is 4000, the vocabulary has
 * 3707 ids", "field 'rating' is nan, not finite").  The row is then partly written.  Costs one compare per
 * decoded value.
 */
int batch_set_row(struct batch *b, uint32_t row, const void *rec, size_t len);

/*
 * Where batch_fill() reads records: a record database's index (store.h),
 * walked through positions 0..n-1.  The record at position p has key
 * base + order[p] - a shuffled epoch - or, with order NULL, base + p:
 * the split in key order.  store and db only name the records in messages.
 */
struct batch_source {
	const struct store_index *ix; /* the records by key; outlives the fills */
	const uint64_t *order;        /* (n) keys relative to base, or NULL */
	uint64_t n;                   /* positions */
	uint64_t base;                /* key of position 0 (order NULL) / added to order[p] */
	const char *store;            /* the store's path */
	const char *db;               /* the database's name: "train", "valid", "test" */
};

/*
 * Fills b with the records of positions [first, first + count) of src,
 * rows 0..count-1 in position order; b->n is the rows filled (count on
 * success).  Records are read in the order's random pattern from a large
 * map, each a cache and often TLB miss: the index entry 16 positions ahead
 * and the record 8 ahead are prefetched, across the end of this batch into
 * the next.  count <= b->cap and first + count <= src->n (asserted); every
 * key must be below src->ix->n (the caller's order guarantees it).
 * HR_EFORMAT from batch_set_row(), the message prefixed with
 * "store 'STORE': DB record KEY".  Thread-safe for distinct batches.
 */
int batch_fill(struct batch *b, const struct batch_source *src, uint64_t first, uint32_t count);

/*
 * Row r of dst becomes row k of src (every field; dst and src of the same
 * hist_cap and n_dense, asserted).  Scoring one user's record against many
 * items starts from copies of it.
 */
void batch_copy_row(struct batch *dst, uint32_t r, const struct batch *src, uint32_t k);

/*
 * Row r's item side becomes item i of the items table (store/items.h): the
 * id, its genres, and with the four dense values of docs/FORMAT.md its two
 * (item_log_count, item_pos_rate as of the end of train).  i < it->n.
 */
void batch_set_item(struct batch *b, uint32_t r, const struct store_items *it, uint32_t i);

#endif
