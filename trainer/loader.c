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

int loader_init(struct loader *l, struct store *st, enum store_db db, uint64_t n,
		uint64_t seed, struct ring *free_q, struct ring *full_q, const _Atomic int *stop)
{
	memset(l, 0, sizeof(*l));
	l->st = st;
	l->db = db;
	l->n = n;
	l->seed = seed;
	l->free_q = free_q;
	l->full_q = full_q;
	l->stop = stop;
	l->perm = malloc((n ? n : 1) * sizeof(*l->perm));
	return l->perm ? 0 : hr_error(HR_ENOMEM, "out of memory for a permutation of %llu keys",
				      (unsigned long long)n);
}

void loader_release(struct loader *l)
{
	free(l->perm);
	l->perm = NULL;
}

/* Fills b from perm[*k...]; advances *k. */
static int fill(struct loader *l, struct store_reader *r, struct batch *b, uint64_t *k)
{
	for (; *k < l->n && b->n < b->cap; (*k)++) {
		const void *v;
		size_t len;
		uint64_t key = l->perm[*k];
		int rc = store_get_u64(r, l->db, key, &v, &len);
		if (rc == HR_ENOENT)
			rc = hr_error(HR_ESTORE, "record is missing");
		if (!rc)
			rc = batch_set_row(b, b->n, v, len);
		if (rc)
			return hr_error_prefix(rc, "store '%s': %s record %llu", store_path(l->st),
					       store_db_name(l->db), (unsigned long long)key);
		b->n++;
	}
	return 0;
}

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	struct store_reader *r = NULL;
	uint64_t k = 0;
	int rc;

	loader_permutation(l->seed, l->epoch, l->perm, l->n);
	rc = store_reader_begin(l->st, &r);
	while (!rc && k < l->n) {
		void *item;
		/* Relaxed: `stop` only ends the epoch early; no data rides on it. */
		if (atomic_load_explicit(l->stop, memory_order_relaxed))
			break;
		if (ring_pop(l->free_q, &item) != 0)
			break;
		struct batch *b = item;
		b->n = 0;
		b->seq = l->batches;
		b->epoch = l->epoch;
		rc = fill(l, r, b, &k);
		if (rc || ring_push(l->full_q, b) != 0) {
			ring_push(l->free_q, b);
			break;
		}
		l->batches++;
	}
	if (rc) {
		l->rc = rc;
		snprintf(l->msg, sizeof(l->msg), "%s", hr_errmsg());
	}
	store_reader_end(r);
	/* R4: release pairs with loader_finished()'s acquire (A4): batches,
	 * rc and msg are written before. */
	atomic_store_explicit(&l->finished, 1, memory_order_release);
	return NULL;
}

int loader_start(struct loader *l, int epoch)
{
	l->epoch = epoch;
	l->batches = 0;
	l->rc = 0;
	l->msg[0] = '\0';
	atomic_store_explicit(&l->finished, 0, memory_order_relaxed);
	if (pthread_create(&l->thread, NULL, loader_main, l))
		return hr_error(HR_EIO, "cannot start the loader thread");
	return 0;
}

int loader_join(struct loader *l)
{
	pthread_join(l->thread, NULL);
	return l->rc ? hr_error(l->rc, "%s", l->msg) : 0;
}
