#include "loader.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "models/batch.h"

void loader_permutation(uint64_t seed, int epoch, uint64_t *perm, uint64_t n)
{
	struct rng r;

	rng_seed(&r, seed, 0x10ad0000u + (uint64_t)epoch);
	for (uint64_t i = 0; i < n; i++)
		perm[i] = i;
	/* Fisher-Yates; j uniform in [0, i) without modulo bias for i < 2^32. */
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = i <= UINT32_MAX ? rng_below(&r, (uint32_t)i) : rng_next(&r) % i;
		uint64_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

int loader_init(struct loader *l, struct store *st, enum store_db db, const struct store_index *ix,
		uint32_t batch, int threads, uint64_t seed, struct ring *free_q,
		struct ring *full_q, const _Atomic int *stop)
{
	memset(l, 0, sizeof(*l));
	if (threads < 1 || threads > LOADER_MAX_THREADS || batch == 0)
		return hr_error(HR_EINVAL, "--loaders must be between 1 and %d, not %d",
				LOADER_MAX_THREADS, threads);
	uint64_t n = ix->n;

	l->st = st;
	l->db = db;
	l->ix = ix;
	l->n = n;
	l->batch = batch;
	l->threads = threads;
	l->seed = seed;
	l->free_q = free_q;
	l->full_q = full_q;
	l->stop = stop;
	pthread_mutex_init(&l->mu, NULL);
	l->perm = malloc((n ? n : 1) * sizeof(*l->perm));
	return l->perm ? 0 :
			 hr_error(HR_ENOMEM, "out of memory for a permutation of %llu keys",
				  (unsigned long long)n);
}

void loader_set_range(struct loader *l, uint64_t base, uint64_t n)
{
	HR_ASSERT(base <= l->ix->n && n <= l->ix->n - base);
	l->base = base;
	l->n = n;
}

void loader_set_rows(struct loader *l, const uint32_t *rows, uint64_t n, int field)
{
	HR_ASSERT(n <= l->ix->n && (field == SF_USER || field == SF_ITEM));
	l->rows = rows;
	l->row_field = field;
	l->base = 0;
	l->n = n;
}

void loader_set_keys(struct loader *l, const uint64_t *keys, uint64_t n)
{
	HR_ASSERT(n <= l->ix->n && (n == 0 || keys[n - 1] < l->ix->n));
	l->keys = keys;
	l->base = 0;
	l->n = n;
}

void loader_release(struct loader *l)
{
	free(l->perm);
	l->perm = NULL;
	pthread_mutex_destroy(&l->mu);
}

/* Fills b with the records of batch index idx. */
static int fill(struct loader *l, struct batch *b, uint64_t idx)
{
	const struct batch_source src = {
		.ix = l->ix,
		.order = l->perm,
		.n = l->n,
		.base = l->base,
		.store = store_path(l->st),
		.db = store_db_name(l->db),
	};
	uint64_t first = idx * l->batch, end = first + l->batch < l->n ? first + l->batch : l->n;

	b->seq = idx;
	b->epoch = l->epoch;
	if (l->rows) {
		uint32_t *ids = l->row_field == SF_USER ? b->user : b->item;
		HR_ASSERT(end - first <= b->cap);
		for (uint64_t p = first; p < end; p++)
			ids[p - first] = l->rows[l->perm[p]];
		b->n = (uint32_t)(end - first);
		return 0;
	}
	return batch_fill(b, &src, first, (uint32_t)(end - first));
}

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	int rc = 0;

	while (!rc) {
		void *item;
		/* Relaxed: `stop` only ends the segment early; no data rides on it.
		 * Checked before claiming, so every claimed index is loaded and
		 * `next` is where a stopped segment resumes. */
		if (atomic_load_explicit(l->stop, memory_order_relaxed))
			break;
		/* Relaxed: claiming an index orders nothing; the rings carry the data. */
		uint64_t idx = atomic_fetch_add_explicit(&l->next, 1, memory_order_relaxed);
		if (idx >= l->end)
			break;
		if (ring_pop(l->free_q, &item) != 0)
			break;
		rc = fill(l, item, idx);
		if (rc || ring_push(l->full_q, item) != 0) {
			ring_push(l->free_q, item);
			break;
		}
		atomic_fetch_add_explicit(&l->batches, 1, memory_order_relaxed);
	}
	if (rc) {
		pthread_mutex_lock(&l->mu);
		if (!l->rc) {
			l->rc = rc;
			snprintf(l->msg, sizeof(l->msg), "%s", hr_errmsg());
		}
		pthread_mutex_unlock(&l->mu);
	}
	/* R4: the last thread out releases (pairs with loader_finished's A4):
	 * every thread's batches count and error are then visible.  The
	 * acq_rel decrement chains the other threads' writes to the last one. */
	if (atomic_fetch_sub_explicit(&l->running, 1, memory_order_acq_rel) == 1)
		atomic_store_explicit(&l->finished, 1, memory_order_release);
	return NULL;
}

int loader_start(struct loader *l, int epoch, uint64_t first, uint64_t end)
{
	uint64_t all = loader_epoch_batches(l);

	l->end = end < all ? end : all;
	l->epoch = epoch;
	l->rc = 0;
	l->msg[0] = '\0';
	atomic_store_explicit(&l->next, first, memory_order_relaxed);
	atomic_store_explicit(&l->batches, 0, memory_order_relaxed);
	atomic_store_explicit(&l->finished, 0, memory_order_relaxed);
	atomic_store_explicit(&l->running, l->threads, memory_order_relaxed);
	loader_permutation(l->seed, epoch, l->perm, l->n);
	if (l->keys) /* a permutation of the chosen keys */
		for (uint64_t i = 0; i < l->n; i++)
			l->perm[i] = l->keys[l->perm[i]];
	/* pthread_create orders everything above before the threads start. */
	for (int i = 0; i < l->threads; i++)
		if (pthread_create(&l->thread[i], NULL, loader_main, l)) {
			/* The threads already started see stop only via the rings; let
			 * them run the epoch out, then report. */
			atomic_fetch_sub_explicit(&l->running, l->threads - i,
						  memory_order_relaxed);
			for (int k = 0; k < i; k++)
				pthread_join(l->thread[k], NULL);
			return hr_error(HR_EIO, "cannot start loader thread %d", i);
		}
	return 0;
}

int loader_join(struct loader *l)
{
	for (int i = 0; i < l->threads; i++)
		pthread_join(l->thread[i], NULL);
	return l->rc ? hr_error(l->rc, "%s", l->msg) : 0;
}
