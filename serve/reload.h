/*
 * reload.h - keeping the served model current: a thread that watches a
 * checkpoint directory (trainer/ckpt.h, ckpt_watch_*: inotify, each new
 * checkpoint fully verified before it is handed over) and swaps every
 * newly published checkpoint that loads into the server's struct swap.
 *
 * A checkpoint that fails verification is skipped by the watch (a
 * log_warn naming it); one that verifies but does not load for the store
 * (another schema, an unknown model) is logged, counted as a failure and
 * skipped; either way the current model keeps serving.  Loading (weights,
 * the model's train data, two-tower item vectors) happens on the watcher
 * thread, off the request path; the swap itself is a pointer exchange
 * (swap.h).
 *
 * Threading: reloader_open, _load_latest, _start and _stop from one
 * thread (the main one); the counters may be read from any thread.
 */
#ifndef HR_SERVE_RELOAD_H
#define HR_SERVE_RELOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "recommender.h"
#include "swap.h"
#include "trainer/ckpt.h"

struct reloader {
	struct swap *swap;
	const struct serve_data *d;
	struct ckpt_watch *w;
	int stop[2]; /* a pipe: the watch ends when stop[0] becomes readable */
	pthread_t th;
	int running;
	atomic_uint_fast64_t reloads;  /* checkpoints swapped in by the watch */
	atomic_uint_fast64_t failures; /* verified checkpoints that did not load */
	atomic_int watching;           /* 0 once the watch ended (directory gone) */
	char dir[CKPT_PATH_MAX];
};

/*
 * Starts watching dir (before the first load, so that nothing published
 * in between is missed).  Errors: ckpt_watch_open's (HR_ENOENT for a
 * missing directory), HR_EIO (pipe), HR_EINVAL (dir too long).
 */
int reloader_open(struct reloader *rl, const char *dir, struct swap *s, const struct serve_data *d);

/*
 * Loads dir's newest valid checkpoint (ckpt_latest) and publishes it.
 * Returns 0, or HR_ENOENT without a message-worthy failure when dir holds
 * no checkpoint yet (the watch will load the first); else ckpt_latest's,
 * ckpt_open's or recommender_load's error.
 */
int reloader_load_latest(struct reloader *rl);

/* Runs the watch on its own thread.  HR_EIO when the thread cannot start. */
int reloader_start(struct reloader *rl);

/* Stops the watch and its thread (if started) and closes everything. */
void reloader_stop(struct reloader *rl);

#endif
