/*
 * carry.h - carrying a trained model over to a newer store.
 *
 * A new ingest refits every vocabulary, so the same user or item may get a
 * different id and the embedding tables a different number of rows.
 * model_carry_over() copies a trained model's parameters and optimizer
 * state into a model built (model_create) for the new store: dense tensors
 * as they are (their shapes must match), embedding rows by raw value
 * through both stores' vocabularies; rows of values the old store did not
 * know keep their fresh initialisation.
 */
#ifndef HR_CARRY_H
#define HR_CARRY_H

#include "model.h"
#include "store/store.h"

/* HR_EINVAL (saying which tensor) when the models differ in kind or shape. */
int model_carry_over(struct model *dst, struct store *dst_store, const struct model *src,
		     struct store *src_store);

#endif
