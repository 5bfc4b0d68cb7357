/*
 * loader.h - loader threads: one epoch of shuffled train batches.
 *
 * For epoch e the permutation of the record keys 0..n-1 is drawn from
 * (seed, e) - a fresh order every epoch, the same order for the same seed.
 * The epoch is cut into batches of `batch` consecutive permutation entries;
 * each of the loader's threads claims the next batch index, pops an empty
 * batch from `free`, decodes its records into it (straight from the memory
 * map, found through the store's key index: batch_fill(), models/batch.h) and
 * pushes it to `full`.  The last batch may be short.  Nothing is allocated
 * per batch.  With several threads, batches reach `full` in roughly, not
 * exactly, their index order; batch->seq is the index.
 *
 * The epoch ends early, without error, when *stop becomes non-zero or a
 * ring is closed.  A corrupt or missing record ends it with an error that
 * loader_join() returns (the message names the store and the key); the
 * batch being filled goes back to `free`.
 */
#ifndef HR_LOADER_H
#define HR_LOADER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/ring.h"
#include "store/store.h"

#define LOADER_MAX_THREADS 8

struct loader {
	struct store *st;
	enum store_db db;
	const struct store_index *ix; /* db's records by key (store.h) */
	uint64_t n;                   /* records an epoch covers: keys base .. base + n - 1 */
	uint64_t base;                /* first key (0 unless loader_set_range) */
	uint32_t batch;               /* records per batch */
	uint64_t seed;
	struct ring *free_q, *full_q;
	const _Atomic int *stop;
	int threads;
	int epoch;
	uint64_t *perm;       /* n keys, allocated once */
	const uint32_t *rows; /* loader_set_rows: the row ids an epoch shuffles, or NULL */
	int row_field;        /* SF_USER or SF_ITEM: where a batch gets its row ids */
	const uint64_t *keys; /* loader_set_keys: the record keys an epoch shuffles, or NULL */
	pthread_t thread[LOADER_MAX_THREADS];

	_Atomic uint64_t next;    /* next batch index to claim */
	uint64_t end;             /* one past the last batch index of the segment */
	_Atomic uint64_t batches; /* pushed this epoch; final once `finished` */
	_Atomic int running;      /* threads still working on the epoch */
	_Atomic int finished;     /* set (release) by the last thread to finish */
	pthread_mutex_t mu;       /* guards rc and msg */
	int rc;
	char msg[512];
};

/*
 * Sets up `threads` loader threads over db of st, whose records ix indexes
 * (the index and its reader must outlive the loader).  HR_ENOMEM, HR_EINVAL.
 */
int loader_init(struct loader *l, struct store *st, enum store_db db, const struct store_index *ix,
		uint32_t batch, int threads, uint64_t seed, struct ring *free_q,
		struct ring *full_q, const _Atomic int *stop);
void loader_release(struct loader *l);

/*
 * Restricts epochs to the keys base .. base + n - 1 (n <= the index's
 * count - base): training on the records a newer store added.
 */
void loader_set_range(struct loader *l, uint64_t base, uint64_t n);

/*
 * Another view of the train split (model.h, enum model_view): epochs
 * shuffle the n row ids rows[0..n) (n <= the index's count; rows outlives
 * the loader) instead of records, and a batch carries them in b->user
 * (field SF_USER) or b->item (SF_ITEM), b->n of them; nothing is decoded.
 */
void loader_set_rows(struct loader *l, const uint32_t *rows, uint64_t n, int field);

/*
 * Restricts epochs to the records keys[0..n) (ascending keys below the
 * index's count; keys outlives the loader): the epoch's order is a
 * permutation of them (the positives, for in-batch softmax models).
 */
void loader_set_keys(struct loader *l, const uint64_t *keys, uint64_t n);

/* Batches in an epoch: ceil(n / batch). */
static inline uint64_t loader_epoch_batches(const struct loader *l)
{
	return (l->n + l->batch - 1) / l->batch;
}

/*
 * Starts the threads on batches [first, end) of epoch `epoch` (end is
 * clamped to the epoch's batch count), drawing the epoch's permutation.
 * A whole epoch is [0, loader_epoch_batches()); running it in segments
 * lets the caller stop between segments (to checkpoint) and resume at a
 * batch index - the order is the same either way.  HR_EIO.
 */
int loader_start(struct loader *l, int epoch, uint64_t first, uint64_t end);

/* 1 once every thread of the epoch is done pushing (l->batches is then final). */
static inline int loader_finished(struct loader *l)
{
	/* A4: acquire pairs with the last thread's release (R4). */
	return atomic_load_explicit(&l->finished, memory_order_acquire);
}

/* Batches pushed this epoch (final once loader_finished()). */
static inline uint64_t loader_batches(struct loader *l)
{
	return atomic_load_explicit(&l->batches, memory_order_relaxed);
}

/*
 * Where a segment that ended (normally or through *stop) resumes: every
 * batch index below it was loaded.  Valid after loader_join().
 */
static inline uint64_t loader_resume_index(struct loader *l)
{
	uint64_t next = atomic_load_explicit(&l->next, memory_order_relaxed);
	return next < l->end ? next : l->end;
}

/* Waits for the epoch's threads; returns the first error (message set). */
int loader_join(struct loader *l);

/* The epoch's order: a uniform permutation of 0..n-1 drawn from (seed, epoch). */
void loader_permutation(uint64_t seed, int epoch, uint64_t *perm, uint64_t n);

#endif
