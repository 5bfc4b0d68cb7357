/*
 * train.h - the training engine behind bin/trainer.
 *
 *   loader thread: per-epoch seeded permutation of the train keys, records
 *     read in one LMDB read transaction and decoded straight into
 *     preallocated batches, popped from the `free` ring, pushed to `full`
 *   N worker threads: pop a batch, forward, loss, backward, Hogwild updates
 *     of the shared parameters, push the batch back to `free`
 *   main thread: starts each epoch, waits for its last batch, evaluates on
 *     valid and test (model and item-popularity baseline), writes metrics
 *
 * Checkpoints (trainer/snapshot.h) are published into `out` at the end of
 * every epoch, every ckpt_every_steps steps / ckpt_every_secs seconds, and
 * when a signal stops training; a run whose `out` holds a checkpoint
 * resumes from it (same model, store schema and shape, or an error).
 *
 * trainer_run() returns 0 (also after a clean stop on a signal, with the
 * final checkpoint written) or a negative HR_E* code with the message set;
 * a non-finite loss stops training with HR_EFORMAT naming the step.
 *
 * With `predict` set it trains nothing and writes nothing: it loads the
 * model that out's latest checkpoint names (with the checkpoint's shape)
 * and prints the logits of the split's first predict_n records on stdout.
 * HR_ENOENT when out does not exist or holds no valid checkpoint (checked
 * before the store is opened); HR_EINVAL when `model` is set and the
 * checkpoint is of another model, or its store schema differs.
 */
#ifndef HR_TRAIN_H
#define HR_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "models/model.h"
#include "models/optim.h"

struct train_opts {
	const char *data;  /* store directory */
	const char *out;   /* output directory (metrics.jsonl) */
	const char *model; /* model name */
	int epochs;        /* at most this many epochs (per store under --follow) */
	int early_stop;    /* patience: stop when the valid AUC has not improved for this
			 * many epochs, then restore the best epoch's parameters; 0: off
			 * (also off under --follow and without a valid split) */
	int threads;       /* workers */
	int loaders;       /* loader threads */
	enum train_records {
		RECORDS_AUTO,
		RECORDS_MAP,
		RECORDS_MEMORY
	} records; /* where
			     the loader reads train records (auto: memory if it fits) */
	uint32_t batch;
	uint64_t seed;
	struct optim optim;
	struct model_config mcfg;
	int progress;              /* progress bar on a TTY */
	int loader_only;           /* benchmark: decode every epoch, train and evaluate nothing */
	uint64_t ckpt_every_steps; /* checkpoint every N optimizer steps (0: off) */
	double ckpt_every_secs;    /* checkpoint every T seconds (0: off) */
	int keep;                  /* checkpoints kept (the newest K) */
	int resume;                /* continue from OUT's latest checkpoint if any */
	const char *init_from;     /* a fresh run's parameters from these checkpoints, comma
				    * separated (trainer/pretrain.h), or NULL */
	const char *early_stop_metric; /* the valid metric early stopping selects on
					* (eval_metric_parse), or "auto": the model's */
	int rank_metrics;    /* also rank the catalogue on valid/test (trainer/rankeval.h) */
	int rank_exclude;    /* ranking leaves out each user's train items */
	uint32_t rank_users; /* ranking: at most this many users per split (0: all) */
	int follow;          /* after the epochs, wait for a new store and train on it */
	double follow_poll;  /* seconds between checks of the store path */
	const char *predict; /* "train"/"valid"/"test": print the logits of out's latest
			      * checkpoint (its model: `model` may be NULL); train nothing */
	uint64_t predict_n;  /* how many records --predict scores */
	/* SIGHUP: re-reads what can change while training (log level,
	 * checkpoint cadence and retention) into the options; main thread. */
	int (*reload)(void *ctx);
	void *reload_ctx;
};

/* Set from a signal handler: training stops after the batches in flight. */
extern volatile sig_atomic_t train_stop;
/* Set from a SIGHUP handler: the trainer calls opts->reload between batches. */
extern volatile sig_atomic_t train_reload;

void train_opts_defaults(struct train_opts *o);
int trainer_run(const struct train_opts *o);

#endif
