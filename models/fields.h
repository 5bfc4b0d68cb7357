/*
 * fields.h - the per-field embedding tables of the tower models (dssm,
 * twotower): one table per store field, looked up, mean-pooled and given
 * their sparse gradients the same way in each.
 */
#ifndef HR_FIELDS_H
#define HR_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "optim.h"
#include "params.h"
#include "store/info.h"

/* The tables, in this order: user, item, gender, age, occupation, zip, genre. */
enum { F_USER, F_ITEM, F_GENDER, F_AGE, F_OCC, F_ZIP, F_GENRE, F_N };

/*
 * Declares the F_N tables ("user_emb", ...) of width E with init/scale into
 * p, their indices into t[F_N]: one lookup per sample, the item table
 * 1 + hist_len (candidate and history), the genre table BATCH_GENRES.
 * Returns 0 or params_add's error.
 */
int fields_declare(struct params *p, const struct store_info *info, uint32_t E,
		   enum param_init init, float scale, int t[F_N]);

/* Copies row ids[r] of table (width E) into column col of x (row stride s), r < B. */
void fields_gather(float *x, size_t s, size_t col, const float *table, const uint32_t *ids,
		   uint32_t B, uint32_t E);

/*
 * The sparse gradients of a mean-pooled bag (nn_bag_forward, NN_POOL_MEAN):
 * dpool (B, E) to each slot's row of sg; dslots (B, L, E) is scratch.
 */
void fields_bag_grads(struct sparse_grad *sg, float *dslots, const float *dpool,
		      const uint32_t *ids, const uint32_t *lens, uint32_t B, uint32_t L,
		      uint32_t E);

#endif
