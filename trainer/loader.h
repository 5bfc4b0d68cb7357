/*
 * loader.h - the loader thread: one epoch of shuffled train batches.
 *
 * For epoch e the loader draws a permutation of the record keys 0..n-1 from
 * (seed, e) - a fresh order every epoch, the same order for the same seed -
 * and walks it: it pops an empty batch from `free`, decodes the next
 * records into it (one LMDB read transaction for the whole epoch, values
 * decoded straight from the memory map), and pushes it to `full`.  The
 * last batch of an epoch may be short.  Nothing is allocated per batch.
 *
 * The loader stops early, without error, when *stop becomes non-zero or a
 * ring is closed.  A corrupt or missing record ends the epoch with an error
 * that loader_join() returns (the message names the store and the key);
 * the batch being filled goes back to `free`.
 */
#ifndef HR_LOADER_H
#define HR_LOADER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/ring.h"
#include "store/store.h"

struct loader {
	struct store *st;
	enum store_db db;
	uint64_t n;           /* records in db */
	uint64_t seed;
	struct ring *free_q, *full_q;
	const _Atomic int *stop;
	int epoch;
	uint64_t batches;     /* pushed this epoch; read it after `finished` */
	_Atomic int finished; /* set (release) when the epoch's thread is done */
	int rc;
	char msg[512];
	pthread_t thread;
	uint64_t *perm;       /* n keys, allocated once */
};

/* Sets up a loader over db of st (n records).  HR_ENOMEM. */
int loader_init(struct loader *l, struct store *st, enum store_db db, uint64_t n,
		uint64_t seed, struct ring *free_q, struct ring *full_q, const _Atomic int *stop);
void loader_release(struct loader *l);

/* Starts the thread for one epoch.  HR_EIO if the thread cannot start. */
int loader_start(struct loader *l, int epoch);
/* 1 once the epoch's thread is done pushing (then l->batches is final). */
static inline int loader_finished(struct loader *l)
{
	/* A4: acquire pairs with loader_main's release (R4). */
	return atomic_load_explicit(&l->finished, memory_order_acquire);
}

/* Waits for the epoch's thread; returns its status (message set on error). */
int loader_join(struct loader *l);

/* The epoch's order: a uniform permutation of 0..n-1 drawn from (seed, epoch). */
void loader_permutation(uint64_t seed, int epoch, uint64_t *perm, uint64_t n);

#endif
