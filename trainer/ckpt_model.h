/*
 * ckpt_model.h - a model built from a checkpoint the trainer wrote: the
 * model name and shape (emb_dim, hidden widths, the model's own options)
 * from its metadata, the weights from its tensors (docs/FORMAT.md,
 * "Checkpoints").  Shared by the trainer (--predict, resume) and the
 * serving side (bin/recommend), which must link no checkpoint writer: this
 * file reads only (trainer/ckpt_read.c).
 *
 * Threading: no shared state; distinct models may be built concurrently.
 */
#ifndef HR_CKPT_MODEL_H
#define HR_CKPT_MODEL_H

#include <stdint.h>

#include "ckpt.h"
#include "models/model.h"

/*
 * Builds in m the model of the open checkpoint c for the store described
 * by info (store names it in messages) and loads its weights (no
 * optimizer state: m has none).  seed only feeds the initialisation the
 * weights then overwrite.
 * Errors: HR_EINVAL when the store's schema hash differs from the
 * checkpoint's ("checkpoint 'P' was trained on a store with schema A;
 * 'S' has schema B"), the model is unknown to this build or the store
 * cannot feed it (model_create), or a tensor is missing or of another
 * shape; HR_EFORMAT for metadata without a valid shape (a checkpoint not
 * written by bin/trainer); HR_ENOMEM.  On failure m holds nothing to
 * release.
 */
int ckpt_model_load(const struct ckpt *c, const struct store_info *info, const char *store,
		    uint64_t seed, struct model *m);

/*
 * Copies c's tensors into m's weights and whichever optimizer state m has
 * ("optim.<name>.s1", ".s2").  path names c in messages.  HR_EINVAL naming
 * a missing tensor or a shape that differs.  On failure m's parameters may
 * be partly overwritten.
 */
int ckpt_model_load_tensors(const struct ckpt *c, struct model *m, const char *path);

#endif
