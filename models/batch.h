/*
 * batch.h - a minibatch as models read it: struct of arrays, one block.
 *
 * The loader decodes store records (docs/FORMAT.md) straight into a batch
 * row with batch_set_row(); nothing is allocated after batch_alloc().
 * Variable-length fields are padded: genres to BATCH_GENRES, histories to
 * hist_cap, with their lengths alongside; padding ids are 0.
 */
#ifndef HR_BATCH_H
#define HR_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_GENRES 32

struct batch {
	uint32_t cap;      /* rows allocated (B) */
	uint32_t n;        /* rows filled */
	uint32_t hist_cap; /* L */
	uint32_t n_dense;  /* D */
	unsigned decode;   /* record_unpack_fields() flags; set with batch_set_decode() */
	uint64_t seq;      /* position in the epoch's batch order */
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
	uint32_t *user_raw, *item_raw, *ts; /* (B) for evaluation and reports */

	void *mem;
};

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
 * Decodes the record rec[0..len) into row (< cap), skipping what b->decode
 * says to skip (see batch_set_decode()).  HR_EFORMAT (message
 * from the decoder) when the bytes are not a record of this layout or do
 * not fit (longer history than hist_cap, more dense values than n_dense).
 */
int batch_set_row(struct batch *b, uint32_t row, const void *rec, size_t len);

#endif
