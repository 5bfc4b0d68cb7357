/*
 * snapshot.h - a trainer's state as a checkpoint (trainer/ckpt.h) and back.
 *
 * A snapshot holds every parameter tensor by its name, the optimizer state
 * beside it ("optim.<name>.s1": Adam's first moment or Adagrad's
 * accumulator; "optim.<name>.s2": Adam's second moment), and in the
 * metadata the model, the store's schema hash, the epoch, the batch index
 * to resume from, the optimizer step, the samples seen, the options that
 * shape the model, the metrics at save time, early stopping's state
 * (best valid AUC, its step and epoch, the patience count, whether this is
 * the run's closing checkpoint) and the checkpoints the run started from
 * (--init-from; docs/FORMAT.md).
 *
 * Saving and loading need the workers idle: the trainer snapshots between
 * loader segments, when every batch in flight has been applied.
 */
#ifndef HR_SNAPSHOT_H
#define HR_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "models/model.h"
#include "train.h"

struct snapshot_state {
	int epoch;           /* epoch in progress (1-based) */
	uint64_t next_batch; /* first batch index of that epoch not yet trained */
	uint64_t step;       /* optimizer steps so far */
	uint64_t samples;    /* training samples seen so far */
	/* Early stopping (train.h), kept so that a restarted run stops where
	 * an uninterrupted one does and retention keeps the true best. */
	double best_auc;    /* best valid AUC at an epoch end so far (0: none) */
	double best_rmse;   /* rating models: the best (lowest) valid RMSE (0: none) */
	uint64_t best_step; /* the step of that epoch's checkpoint (0: none) */
	int best_epoch;     /* that epoch (0: none) */
	int bad_epochs;     /* epochs since, without a better valid AUC */
	/* the metric best_* are of (trainer/eval.h names); "" from a
	 * checkpoint that does not say (auc, or rmse for a rating model) */
	char early_stop_metric[24];
	int final; /* the run's closing checkpoint: the best epoch's parameters
			     * restored, the closing metrics written */
	/* What the run's parameters started from (--init-from, trainer/pretrain.h):
	 * a JSON array as text, or NULL.  snapshot_save writes it as is;
	 * snapshot_resume sets it from the checkpoint, malloc()ed, the caller's
	 * to free (NULL when the checkpoint has none). */
	char *init_from;
};

/*
 * Publishes a checkpoint of m into o->out (atomically; see ckpt.h), then
 * applies the retention policy: the o->keep newest, plus the checkpoint of
 * step st->best_step (the best validation AUC so far; 0 for none).
 * metrics_json is a JSON object or NULL.  path (cap bytes) receives the
 * file written.
 */
int snapshot_save(const struct train_opts *o, const struct model *m,
		  const struct snapshot_state *st, const char *metrics_json, char *path,
		  size_t cap);

/*
 * Loads the newest valid checkpoint of o->out into m (created with the same
 * options) and fills st (st->init_from: see above; NULL on failure).  *found is 0 when the directory has none (not an
 * error).  HR_EINVAL when the checkpoint belongs to another model, store
 * schema or shape, saying what differs; HR_EFORMAT for a damaged file, and
 * when the directory holds checkpoints but none of them is valid (the run
 * is not started over silently: --no-resume does that).
 */
int snapshot_resume(const struct train_opts *o, struct model *m, struct snapshot_state *st,
		    int *found, char *path, size_t cap);

/*
 * Early stopping's restore: loads the parameters and optimizer state of
 * o->out's checkpoint of step `step` (ckpt-<step>.safetensors, kept by
 * retention as the best) into m, checked like a resume (same model, store
 * schema and shape).  path (cap bytes) receives the file read.
 * Errors: HR_ENOENT when the file is gone, ckpt_open's errors (HR_EFORMAT
 * for a damaged one), HR_EINVAL when it belongs to another model, schema
 * or shape.  On failure m's parameters may be partly overwritten.
 */
int snapshot_restore(const struct train_opts *o, struct model *m, uint64_t step, char *path,
		     size_t cap);

/*
 * For --predict: builds in m the model of the checkpoint at path for the
 * store described by info - the model name, emb_dim and hidden widths come
 * from the checkpoint's metadata, not from o - and loads its weights (no
 * optimizer state: m has none).  o->model, when set, must name the
 * checkpoint's model; o->data names the store in messages.
 * Errors: HR_EINVAL when o->model differs ("checkpoint 'P' is of model
 * 'X', not 'Y'"), the store's schema differs, or the store cannot feed the
 * model (model_create); HR_EFORMAT for metadata without a valid shape;
 * ckpt_open's errors.  On failure m holds nothing to release.
 */
int snapshot_load_model(const struct train_opts *o, const struct store_info *info, const char *path,
			struct model *m);

#endif
