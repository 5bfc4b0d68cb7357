/*
 * The loader and the rings: every train record exactly once per epoch, a
 * different order each epoch, the same order for the same seed, and a
 * corrupt record reported with its key; batch_fill() in key order and in
 * a given order.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/ring.h"
#include "ingest/ingest.h"
#include "ingest/mlgen.h"
#include "models/batch.h"
#include "store/codec.h"
#include "store/info.h"
#include "trainer/loader.h"
#include "genstore.h"

static int copy_records; /* run_segment: load from store_index_copy()'s copy */

static int setup(void **state)
{
	(void)state;
	return genstore_setup("loader", 60, 80, 3000, 4);
}

static int teardown(void **state)
{
	(void)state;
	return genstore_teardown();
}

static void test_permutation(void **state)
{
	enum { N = 1000 };
	static uint64_t a[N], b[N], c[N];
	uint8_t seen[N] = {0};
	(void)state;
	loader_permutation(7, 1, a, N);
	for (int i = 0; i < N; i++) {
		assert_true(a[i] < N);
		assert_false(seen[a[i]]);
		seen[a[i]] = 1;
	}
	loader_permutation(7, 1, b, N);
	assert_memory_equal(a, b, sizeof(a));
	loader_permutation(7, 2, c, N);
	assert_memory_not_equal(a, c, sizeof(a));
	loader_permutation(8, 1, c, N);
	assert_memory_not_equal(a, c, sizeof(a));
}

static size_t run_segment(struct store *st, const struct store_info *info, int epoch, uint64_t seed,
			  int loaders, uint64_t first, uint64_t end, uint64_t *keys, size_t cap);

struct consumer {
	struct ring *full, *free;
	uint64_t *keys; /* (user_raw << 32 | item_raw) per row seen */
	size_t n, cap;
	pthread_mutex_t *mu;
};

static void *consume(void *arg)
{
	struct consumer *c = arg;
	void *item;

	while (ring_pop(c->full, &item) == 0) {
		struct batch *b = item;
		pthread_mutex_lock(c->mu);
		for (uint32_t r = 0; r < b->n && c->n < c->cap; r++)
			c->keys[c->n++] = (uint64_t)b->user_raw[r] << 32 | b->item_raw[r];
		pthread_mutex_unlock(c->mu);
		ring_push(c->free, b);
	}
	return NULL;
}

static size_t run_epoch(struct store *st, const struct store_info *info, int epoch, uint64_t seed,
			int loaders, uint64_t *keys, size_t cap)
{
	return run_segment(st, info, epoch, seed, loaders, 0, UINT64_MAX, keys, cap);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Runs one epoch through two consumer threads; returns the keys in arrival order. */
static size_t run_segment(struct store *st, const struct store_info *info, int epoch, uint64_t seed,
			  int loaders, uint64_t first, uint64_t end, uint64_t *keys, size_t cap)
{
	struct ring full, free_q;
	struct batch batches[6];
	struct loader l;
	_Atomic int stop = 0;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct consumer c = {&full, &free_q, keys, 0, cap, &mu};
	pthread_t th[2];

	assert_int_equal(ring_init(&full, 8), 0);
	assert_int_equal(ring_init(&free_q, 8), 0);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(batch_alloc(&batches[i], 37, info->hist_len, info->n_dense), 0);
		assert_int_equal(ring_push(&free_q, &batches[i]), 0);
	}
	struct store_reader *r;
	struct store_index ix;
	assert_int_equal(store_reader_begin(st, &r), 0);
	assert_int_equal(store_index_build(r, STORE_TRAIN, &ix), 0);
	assert_int_equal(ix.n, info->count[0]);
	if (copy_records) {
		assert_int_equal(store_index_copy(&ix), 0);
		store_reader_end(r); /* the copy does not need the reader */
		r = NULL;
	}
	assert_int_equal(
		loader_init(&l, st, STORE_TRAIN, &ix, 37, loaders, seed, &free_q, &full, &stop), 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, consume, &c);
	assert_int_equal(loader_start(&l, epoch, first, end), 0);
	assert_int_equal(loader_join(&l), 0);
	assert_true(loader_finished(&l));
	uint64_t all = (info->count[0] + 36) / 37;
	assert_int_equal(loader_batches(&l), (end < all ? end : all) - first);
	ring_close(&full);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	loader_release(&l);
	store_index_release(&ix);
	if (r)
		store_reader_end(r);
	for (int i = 0; i < 6; i++)
		batch_release(&batches[i]);
	ring_release(&full);
	ring_release(&free_q);
	return c.n;
}

static void test_each_record_once_per_epoch(void **state)
{
	struct store *st;
	struct store_info info;
	struct store_reader *r;
	(void)state;
	assert_int_equal(store_open(&st, storep), 0);
	assert_int_equal(store_info_load(st, &info), 0);
	size_t n = info.count[0];
	uint64_t *want = malloc(n * sizeof(*want)), *e1 = malloc(n * sizeof(*e1));
	uint64_t *e2 = malloc(n * sizeof(*e2)), *e1b = malloc(n * sizeof(*e1b));
	uint32_t hist[512], neg[512];
	struct record rec = {.hist = hist, .neg = neg, .hist_cap = 512};
	assert_int_equal(store_reader_begin(st, &r), 0);
	for (size_t k = 0; k < n; k++) {
		const void *v;
		size_t len;
		assert_int_equal(store_get_u64(r, STORE_TRAIN, k, &v, &len), 0);
		assert_int_equal(record_unpack(v, len, &rec), 0);
		want[k] = (uint64_t)rec.user_raw << 32 | rec.item_raw;
	}
	store_reader_end(r);

	assert_int_equal(run_epoch(st, &info, 1, 5, 1, e1, n), n);
	assert_int_equal(run_epoch(st, &info, 2, 5, 2, e2, n), n);
	assert_int_equal(run_epoch(st, &info, 1, 5, 3, e1b, n), n);
	/* Different order each epoch (consumers may reorder batches, but not
	 * by this much: compare sorted-position agreement instead of bytes). */
	size_t same = 0;
	for (size_t k = 0; k < n; k++)
		same += e1[k] == e2[k];
	assert_true(same < n / 10);
	qsort(want, n, sizeof(*want), cmp_u64);
	qsort(e1, n, sizeof(*e1), cmp_u64);
	qsort(e2, n, sizeof(*e2), cmp_u64);
	qsort(e1b, n, sizeof(*e1b), cmp_u64);
	assert_memory_equal(e1, want, n * sizeof(*want));
	assert_memory_equal(e2, want, n * sizeof(*want));
	assert_memory_equal(e1b, want, n * sizeof(*want));
	/* The same epoch in two segments (as around a checkpoint) covers it once. */
	size_t first = run_segment(st, &info, 3, 5, 2, 0, 5, e2, n);
	assert_int_equal(first, 5 * 37);
	assert_int_equal(run_segment(st, &info, 3, 5, 2, 5, UINT64_MAX, e2 + first, n - first),
			 n - first);
	qsort(e2, n, sizeof(*e2), cmp_u64);
	assert_memory_equal(e2, want, n * sizeof(*want));
	/* From the in-memory copy: every record once, as from the map. */
	copy_records = 1;
	assert_int_equal(run_epoch(st, &info, 1, 5, 1, e2, n), n);
	copy_records = 0;
	qsort(e2, n, sizeof(*e2), cmp_u64);
	assert_memory_equal(e2, want, n * sizeof(*want));
	free(want);
	free(e1);
	free(e2);
	free(e1b);
	store_close(st);
}

/* A meta of vocabulary sizes only (what store_index_build() reads). */
static void put_vocab_meta(struct store *st, const uint32_t vocab[SF_NFIELDS])
{
	msgpack_sbuffer buf;
	msgpack_packer pk;

	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	pack_cstr(&pk, "vocab_sizes");
	msgpack_pack_map(&pk, SF_NFIELDS);
	for (int f = 0; f < SF_NFIELDS; f++) {
		pack_cstr(&pk, store_field_name(f));
		msgpack_pack_uint32(&pk, vocab[f]);
	}
	assert_int_equal(store_put(st, STORE_META, "meta", 4, buf.data, buf.size, 0), 0);
	msgpack_sbuffer_destroy(&buf);
}

static void test_corrupt_record(void **state)
{
	char path[PATH_MAX];
	struct store *st;
	struct record rec;
	uint32_t h[3] = {1, 2, 3};
	msgpack_sbuffer buf;
	(void)state;
	snprintf(path, sizeof(path), "%s/bad.lmdb", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(store_create(&st, path, 1 << 22), 0);
	memset(&rec, 0, sizeof(rec));
	rec.hist = rec.neg = h;
	rec.n_hist = rec.n_neg = 3;
	rec.n_dense = 4;
	msgpack_sbuffer_init(&buf);
	assert_int_equal(record_pack(&buf, &rec), 0);
	for (uint64_t k = 0; k < 5; k++) {
		uint8_t key[8];
		store_key(key, k);
		if (k == 3)
			assert_int_equal(store_put(st, STORE_TRAIN, key, 8, "\xc1junk", 5, 1), 0);
		else
			assert_int_equal(store_put(st, STORE_TRAIN, key, 8, buf.data, buf.size, 1),
					 0);
	}
	msgpack_sbuffer_destroy(&buf);
	put_vocab_meta(st, (const uint32_t[SF_NFIELDS]){1, 4, 1, 1, 1, 1, 1});
	assert_int_equal(store_commit(st, 1), 0);
	store_close(st);

	struct ring full, free_q;
	struct batch b;
	struct loader l;
	_Atomic int stop = 0;
	void *item;
	assert_int_equal(store_open(&st, path), 0);
	assert_int_equal(ring_init(&full, 2), 0);
	assert_int_equal(ring_init(&free_q, 2), 0);
	assert_int_equal(batch_alloc(&b, 8, 8, 4), 0);
	assert_int_equal(ring_push(&free_q, &b), 0);
	struct store_reader *r;
	struct store_index ix;
	assert_int_equal(store_reader_begin(st, &r), 0);
	assert_int_equal(store_index_build(r, STORE_TRAIN, &ix), 0);
	assert_int_equal(loader_init(&l, st, STORE_TRAIN, &ix, 8, 1, 1, &free_q, &full, &stop), 0);
	assert_int_equal(loader_start(&l, 1, 0, UINT64_MAX), 0);
	assert_int_equal(loader_join(&l), HR_EFORMAT);
	assert_non_null(strstr(hr_errmsg(), "train record 3"));
	assert_non_null(strstr(hr_errmsg(), "bad.lmdb"));
	/* The batch went back to the free ring, none reached the workers. */
	assert_int_equal(ring_try_pop(&full, &item), RING_EMPTY);
	assert_int_equal(ring_try_pop(&free_q, &item), 0);
	loader_release(&l);
	/* batch_fill in key order (evaluation, --predict) names the record too,
	 * and leaves the rows before it filled. */
	const struct batch_source src = {.ix = &ix, .n = ix.n, .store = path, .db = "train"};
	assert_int_equal(batch_fill(&b, &src, 0, 5), HR_EFORMAT);
	assert_int_equal(b.n, 3);
	assert_non_null(strstr(hr_errmsg(), "train record 3"));
	assert_int_equal(batch_fill(&b, &src, 1, 2), 0);
	assert_int_equal(b.n, 2);
	store_index_release(&ix);
	store_reader_end(r);
	batch_release(&b);
	ring_release(&full);
	ring_release(&free_q);
	store_close(st);
}

/* The record of key k as (user_raw << 32 | item_raw), decoded on its own. */
static uint64_t record_id(struct store_reader *r, enum store_db db, uint64_t k)
{
	uint32_t hist[512], neg[512];
	struct record rec = {.hist = hist, .neg = neg, .hist_cap = 512};
	const void *v;
	size_t len;

	assert_int_equal(store_get_u64(r, db, k, &v, &len), 0);
	assert_int_equal(record_unpack(v, len, &rec), 0);
	return (uint64_t)rec.user_raw << 32 | rec.item_raw;
}

/* batch_fill: key order from a position, and an order with a base. */
static void test_batch_fill(void **state)
{
	struct store *st;
	struct store_info info;
	struct store_reader *r;
	struct store_index ix;
	struct batch b;
	uint64_t order[10];
	(void)state;
	assert_int_equal(store_open(&st, storep), 0);
	assert_int_equal(store_info_load(st, &info), 0);
	assert_int_equal(store_reader_begin(st, &r), 0);
	assert_int_equal(store_index_build(r, STORE_VALID, &ix), 0);
	assert_true(ix.n > 40);
	assert_int_equal(batch_alloc(&b, 16, info.hist_len, info.n_dense), 0);
	/* Key order, a short last batch as evaluation makes it. */
	struct batch_source src = {.ix = &ix, .n = ix.n, .store = storep, .db = "valid"};
	assert_int_equal(batch_fill(&b, &src, ix.n - 5, 5), 0);
	assert_int_equal(b.n, 5);
	for (uint32_t i = 0; i < b.n; i++)
		assert_int_equal((uint64_t)b.user_raw[i] << 32 | b.item_raw[i],
				 record_id(r, STORE_VALID, ix.n - 5 + i));
	/* A shuffled order over keys base..base+9, read from position 3. */
	for (int p = 0; p < 10; p++)
		order[p] = (uint64_t)(7 * p + 3) % 10;
	src = (struct batch_source){
		.ix = &ix, .order = order, .n = 10, .base = 20, .store = storep, .db = "valid"};
	assert_int_equal(batch_fill(&b, &src, 3, 7), 0);
	assert_int_equal(b.n, 7);
	for (uint32_t i = 0; i < b.n; i++)
		assert_int_equal((uint64_t)b.user_raw[i] << 32 | b.item_raw[i],
				 record_id(r, STORE_VALID, 20 + order[3 + i]));
	batch_release(&b);
	store_index_release(&ix);
	store_reader_end(r);
	store_close(st);
}

/* store_index_copy: every record byte for byte, away from the map. */
static void test_index_copy(void **state)
{
	struct store *st;
	struct store_reader *r;
	struct store_index ix;
	(void)state;
	assert_int_equal(store_open(&st, storep), 0);
	assert_int_equal(store_reader_begin(st, &r), 0);
	assert_int_equal(store_index_build(r, STORE_TRAIN, &ix), 0);
	assert_true(ix.n > 0);
	struct store_ref *map = malloc(ix.n * sizeof(*map));
	uint64_t bytes = 0;
	memcpy(map, ix.rec, ix.n * sizeof(*map));
	for (uint64_t k = 0; k < ix.n; k++)
		bytes += map[k].len;
	assert_int_equal(ix.bytes, bytes);
	assert_null(ix.copy);
	assert_int_equal(store_index_copy(&ix), 0);
	assert_non_null(ix.copy);
	for (uint64_t k = 0; k < ix.n; k++) {
		assert_int_equal(ix.rec[k].len, map[k].len);
		assert_ptr_not_equal(ix.rec[k].data, map[k].data);
		assert_memory_equal(ix.rec[k].data, map[k].data, map[k].len);
		assert_int_equal((uintptr_t)ix.rec[k].data % 16, 0);
	}
	free(map);
	store_index_release(&ix);
	store_reader_end(r);
	store_close(st);
}

/* A record with every field set, decoded in each mode: the fields a mode
 * decodes are exact, the ones it skips read as zero even after a full
 * decode of the same batch. */
static void test_decode_modes(void **state)
{
	uint32_t h[3] = {7, 8, 9}, n[3] = {4, 5, 6};
	struct record rec;
	struct batch b;
	msgpack_sbuffer buf;
	const unsigned modes[] = {0, REC_SKIP_SEQUENCES, REC_SKIP_SEQUENCES | REC_SKIP_FEATURES};
	(void)state;
	memset(&rec, 0, sizeof(rec));
	rec.user = 11, rec.item = 12, rec.label = 1, rec.zip = 13, rec.rating = 4.5f;
	rec.genres[0] = 2, rec.genres[1] = 5, rec.n_genres = 2;
	rec.n_dense = 4;
	for (int i = 0; i < 4; i++)
		rec.dense[i] = 0.25f * (float)(i + 1);
	rec.hist = h, rec.neg = n, rec.n_hist = rec.n_neg = 3;
	msgpack_sbuffer_init(&buf);
	assert_int_equal(record_pack(&buf, &rec), 0);
	assert_int_equal(batch_alloc(&b, 2, 8, 4), 0);
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		unsigned f = modes[m];
		batch_set_decode(&b, 0);
		assert_int_equal(batch_set_row(&b, 1, buf.data, buf.size), 0);
		batch_set_decode(&b, f);
		assert_int_equal(batch_set_row(&b, 1, buf.data, buf.size), 0);
		assert_int_equal(b.user[1], 11);
		assert_int_equal(b.item[1], 12);
		assert_int_equal(b.zip[1], 13);
		assert_true(b.label[1] == 1.0f);
		assert_true(b.rating[1] == 4.5f); /* a scalar: every mode decodes it */
		int feat = !(f & REC_SKIP_FEATURES), seq = !f;
		assert_int_equal(b.n_genres[1], feat ? 2 : 0);
		assert_int_equal(b.genres[BATCH_GENRES + 1], feat ? 5 : 0);
		assert_true(b.dense[4 + 3] == (feat ? 1.0f : 0.0f));
		assert_int_equal(b.n_hist[1], seq ? 3 : 0);
		assert_int_equal(b.n_neg[1], seq ? 3 : 0);
		assert_int_equal(b.hist[8 + 2], seq ? 9 : 0);
		assert_int_equal(b.neg[8 + 0], seq ? 4 : 0);
	}
	batch_release(&b);
	msgpack_sbuffer_destroy(&buf);
}

/*
 * Every id a record carries is checked against its vocabulary's size, the
 * label is 0 or 1, the rating and dense values are finite; each decode mode checks what
 * it decodes.  batch_fill() takes the sizes from the index.
 */
static void test_row_checks(void **state)
{
	const uint32_t vocab[SF_NFIELDS] = {10, 20, 3, 8, 21, 100, 18};
	uint32_t h[3], n[3];
	struct record rec, good;
	struct batch b;
	msgpack_sbuffer buf;
	(void)state;
	memset(&good, 0, sizeof(good));
	good.user = 9, good.item = 19, good.gender = 2, good.age = 7, good.occupation = 20;
	good.zip = 99, good.label = 1;
	good.genres[0] = 17, good.n_genres = 1;
	good.n_dense = 4;
	good.n_hist = good.n_neg = 3;
	assert_int_equal(batch_alloc(&b, 2, 8, 4), 0);
	batch_set_vocab(&b, vocab);
	msgpack_sbuffer_init(&buf);
	/* case: which field to break (-1 none), the value, the message, whether
	 * the ids-only decode (NCF) still sees it */
	static const struct {
		int field;
		uint32_t value;
		const char *msg;
		int scalar;
	} cases[] = {
		{-1, 0, NULL, 0},
		{0, 10, "field 'user' is 10, the vocabulary has 10 ids", 1},
		{1, 20, "field 'item' is 20, the vocabulary has 20 ids", 1},
		{1, UINT32_MAX, "field 'item' is 4294967295", 1},
		{2, 3, "field 'gender' is 3", 1},
		{3, 8, "field 'age' is 8", 1},
		{4, 21, "field 'occupation' is 21", 1},
		{5, 100, "field 'zip' is 100", 1},
		{6, 18, "field 'genres' element 0 is 18, the 'genre' vocabulary has 18 ids", 0},
		{7, 20, "field 'hist' element 2 is 20, the 'item' vocabulary has 20 ids", 0},
		{8, 1u << 31, "field 'neg_hist' element 2 is 2147483648", 0},
		{9, 2, "field 'label' is 2, not 0 or 1", 1},
		{10, 0x7fc00000, "field 'dense' element 3 is nan", 0},
		{10, 0x7f800000, "field 'dense' element 3 is inf", 0},
		{11, 0x7fc00000, "field 'rating' is nan, not finite", 1},
		{11, 0xff800000, "field 'rating' is -inf, not finite", 1},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		rec = good;
		for (int i = 0; i < 3; i++)
			h[i] = n[i] = (uint32_t)(i + 1);
		for (int i = 0; i < 4; i++)
			rec.dense[i] = 0.5f;
		rec.hist = h, rec.neg = n;
		uint32_t v = cases[c].value;
		switch (cases[c].field) {
		case 0: rec.user = v; break;
		case 1: rec.item = v; break;
		case 2: rec.gender = v; break;
		case 3: rec.age = v; break;
		case 4: rec.occupation = v; break;
		case 5: rec.zip = v; break;
		case 6: rec.genres[0] = v; break;
		case 7: h[2] = v; break;
		case 8: n[2] = v; break;
		case 9: rec.label = v; break;
		case 10: memcpy(&rec.dense[3], &v, sizeof(v)); break;
		case 11: memcpy(&rec.rating, &v, sizeof(v)); break;
		}
		buf.size = 0;
		assert_int_equal(record_pack(&buf, &rec), 0);
		batch_set_decode(&b, 0);
		int rc = batch_set_row(&b, 1, buf.data, buf.size);
		if (!cases[c].msg) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, HR_EFORMAT);
		if (!strstr(hr_errmsg(), cases[c].msg))
			fail_msg("case %zu: '%s' lacks '%s'", c, hr_errmsg(), cases[c].msg);
		/* What a decode mode skips is not read, so not checked. */
		batch_set_decode(&b, REC_SKIP_SEQUENCES | REC_SKIP_FEATURES);
		assert_int_equal(batch_set_row(&b, 1, buf.data, buf.size),
				 cases[c].scalar ? HR_EFORMAT : 0);
	}
	msgpack_sbuffer_destroy(&buf);
	batch_release(&b);

	/* batch_fill() checks against the store's sizes, from its index. */
	struct store *st;
	struct store_info info;
	struct store_reader *r;
	struct store_index ix;
	assert_int_equal(store_open(&st, storep), 0);
	assert_int_equal(store_info_load(st, &info), 0);
	assert_int_equal(store_reader_begin(st, &r), 0);
	assert_int_equal(store_index_build(r, STORE_TRAIN, &ix), 0);
	assert_memory_equal(ix.vocab, info.vocab, sizeof(ix.vocab));
	assert_int_equal(batch_alloc(&b, 4, info.hist_len, info.n_dense), 0);
	ix.vocab[SF_ITEM] = 1; /* as if the store's records were foreign */
	const struct batch_source src = {.ix = &ix, .n = ix.n, .store = storep, .db = "train"};
	assert_int_equal(batch_fill(&b, &src, 0, 4), HR_EFORMAT);
	assert_non_null(strstr(hr_errmsg(), "train record 0: field 'item' is"));
	assert_non_null(strstr(hr_errmsg(), "the vocabulary has 1 ids"));
	batch_release(&b);
	store_index_release(&ix);
	store_reader_end(r);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_permutation),
		cmocka_unit_test(test_each_record_once_per_epoch),
		cmocka_unit_test(test_corrupt_record),
		cmocka_unit_test(test_batch_fill),
		cmocka_unit_test(test_decode_modes),
		cmocka_unit_test(test_row_checks),
		cmocka_unit_test(test_index_copy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
