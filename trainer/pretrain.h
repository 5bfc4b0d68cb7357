/*
 * pretrain.h - `--init-from`: a fresh run's parameters from trained
 * checkpoints of other models (pre-training, as the NCF paper starts
 * NeuMF from a trained GMF and MLP).
 *
 * The option is a comma-separated list of checkpoints, each a file or a
 * run directory (its `latest`, or the newest valid one: ckpt_latest).
 * Each is validated as completely as a resume validates (ckpt_open), must
 * come from a store of the run's schema, and is handed to the model's
 * init_from hook (models/model.h), which knows what maps where; the
 * trainer knows no model's tensors.
 *
 * What the run started from is recorded in every checkpoint of the run,
 * the key `init_from` of the "hogrec" metadata (docs/FORMAT.md): a JSON
 * array of {"path": as given, "file": the checkpoint read, "model",
 * "step"}.  A run directory that holds a checkpoint to resume resumes only
 * when that record names the same paths, in the same order, as
 * --init-from (the restart of a pre-trained run); otherwise the run is
 * refused (HR_EINVAL) rather than either source silently winning.
 *
 * Threading: start-up only, one thread.
 */
#ifndef HR_PRETRAIN_H
#define HR_PRETRAIN_H

#include "models/model.h"
#include "trainer/train.h"

/* The paths of an --init-from list. */
struct pretrain_list {
	char *text; /* a copy of the list, commas replaced by NULs (owned) */
	const char *path[MODEL_MAX_SOURCES];
	int n;
};

/*
 * Splits text ("runs/gmf,runs/ncf") into l.  HR_EINVAL "'init_from' must be
 * 1 to 8 checkpoint paths separated by commas, not 'TEXT'" for an empty
 * path (",a", "a,,b", "a,") or more than MODEL_MAX_SOURCES; HR_ENOMEM.  On
 * success release with pretrain_list_release (on failure l owns nothing).
 */
int pretrain_list_parse(struct pretrain_list *l, const char *text);
void pretrain_list_release(struct pretrain_list *l);

/*
 * Initialises m (fresh from model_create for o's store) from the
 * checkpoints of o->init_from and sets *record to the run's record, a JSON
 * array as text (malloc()ed; the caller frees it).  Every message starts
 * with "--init-from: " and names the path or checkpoint.
 * Errors: HR_ENOENT (a path that does not exist, a directory without a
 * checkpoint); HR_EFORMAT (a damaged checkpoint, or a directory whose
 * checkpoints all are: ckpt_open's message); HR_EIO; HR_EINVAL (a store of
 * another schema, a model m's init_from does not start from, two
 * checkpoints of one model, a tensor missing or of another shape, a model
 * without init_from); HR_ENOMEM.  On failure *record is NULL and m's
 * parameters may be partly overwritten.
 */
int pretrain_apply(const struct train_opts *o, struct model *m, char **record);

/*
 * Whether a run that resumes from checkpoint `path`, whose init_from
 * record is `record` (NULL: none), may go on under o->init_from (set): 0
 * when the record names o's paths in o's order, else HR_EINVAL saying
 * what each names and what to do (--no-resume, another --out).
 */
int pretrain_check_resume(const struct train_opts *o, const char *record, const char *path);

#endif
