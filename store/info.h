/*
 * info.h - what a reader of a store needs from its meta (docs/FORMAT.md):
 * sizes of every vocabulary, record counts, history length, dense width.
 *
 * store_info_load() validates the meta (format name, version, field lists)
 * so that a consumer can trust the numbers: HR_ESTORE with a message naming
 * the store and the key when something is missing or malformed,
 * HR_EVERSION for another format version.
 */
#ifndef HR_STORE_INFO_H
#define HR_STORE_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct store_info {
	char schema_hash[17];
	int has_demographics;
	uint32_t vocab[SF_NFIELDS]; /* vocabulary sizes, id 0 included */
	uint64_t count[3];          /* train, valid, test records */
	uint32_t hist_len;          /* L */
	uint32_t n_dense;
	uint32_t train_end_ts, valid_end_ts;
	double positive_rate[3];
	float scaler_min[16], scaler_max[16]; /* meta["scaler"], n_dense entries */
};

/* Name of a field as in meta["vocab_sizes"]: "user", "item", ... */
const char *store_field_name(enum store_field f);

/* Reads and validates the meta of an open store. */
int store_info_load(struct store *s, struct store_info *info);

/*
 * Only meta["vocab_sizes"] from the meta bytes v[0..n): for
 * store_index_build(), which reads them in its own transaction.  HR_ESTORE
 * naming the store and key when they are missing or malformed.
 */
int store_meta_vocab(const struct store *s, const void *v, size_t n, uint32_t vocab[SF_NFIELDS]);

/*
 * A vocabulary as raw values in id order, each rendered as text (numbers
 * in decimal): raw[i] is the value encoded as id i; raw[0] is "" (id 0).
 */
struct store_vocab {
	uint32_t n;
	char **raw;
};

/* Loads vocabulary f of an open store.  HR_ESTORE if missing or malformed. */
int store_vocab_load(struct store *s, enum store_field f, struct store_vocab *v);
void store_vocab_release(struct store_vocab *v);

#endif
