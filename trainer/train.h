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
 * trainer_run() returns 0 or a negative HR_E* code with the message set;
 * a non-finite loss stops training with HR_EFORMAT naming the step.
 */
#ifndef HR_TRAIN_H
#define HR_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "models/model.h"
#include "models/optim.h"

struct train_opts {
	const char *data;   /* store directory */
	const char *out;    /* output directory (metrics.jsonl) */
	const char *model;  /* model name */
	int epochs;
	int threads;        /* workers */
	int loaders;        /* loader threads */
	uint32_t batch;
	uint64_t seed;
	struct optim optim;
	struct model_config mcfg;
	int progress;       /* progress bar on a TTY */
	int loader_only;    /* benchmark: decode every epoch, train and evaluate nothing */
};

/* Set from a signal handler: training stops after the batches in flight. */
extern volatile sig_atomic_t train_stop;

void train_opts_defaults(struct train_opts *o);
int trainer_run(const struct train_opts *o);

#endif
