/*
 * struct interactions: the entries of a split read through batch_fill()
 * agree with the records decoded one by one (all rows, and positives
 * only); both CSR views hold exactly those entries, rows ascending; a
 * hand-built case gives the exact arrays; bad entries and a bad record
 * are refused with a message naming them.
 */
#include <limits.h>
#include <math.h>
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
#include "ingest/ingest.h"
#include "ingest/mlgen.h"
#include "models/interact.h"
#include "store/codec.h"
#include "store/info.h"
#include "genstore.h"

static int setup(void **state)
{
	(void)state;
	return genstore_setup("interact", 50, 70, 2500, 9);
}

static int teardown(void **state)
{
	(void)state;
	return genstore_teardown();
}

/* An entry as one sortable key: user, item, label, rating bits. */
struct tuple {
	uint32_t user, item, label, rating;
};

static int cmp_tuple(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct tuple)); /* only equality and a total order matter */
}

static struct tuple tuple_of(uint32_t u, uint32_t i, uint8_t label, float rating)
{
	struct tuple t = {u, i, label, 0};
	memcpy(&t.rating, &rating, sizeof(rating));
	return t;
}

/*
 * Every view of x holds the same multiset of entries as want[0..n), rows
 * are ascending, the offsets partition 0..n.
 */
static void check_views(const struct interactions *x, struct tuple *want, uint64_t n)
{
	struct tuple *got = malloc((n ? n : 1) * sizeof(*got));

	assert_int_equal(x->n, n);
	qsort(want, n, sizeof(*want), cmp_tuple);
	for (uint64_t e = 0; e < n; e++)
		got[e] = tuple_of(x->user[e], x->item[e], x->label[e], x->rating[e]);
	qsort(got, n, sizeof(*got), cmp_tuple);
	assert_memory_equal(got, want, n * sizeof(*got));

	assert_int_equal(x->user_off[0], 0);
	assert_int_equal(x->user_off[x->n_users], n);
	for (uint32_t u = 0; u < x->n_users; u++) {
		assert_true(x->user_off[u] <= x->user_off[u + 1]);
		for (uint64_t p = x->user_off[u]; p < x->user_off[u + 1]; p++) {
			if (p > x->user_off[u])
				assert_true(x->user_item[p - 1] <= x->user_item[p]);
			got[p] = tuple_of(u, x->user_item[p], x->user_label[p], x->user_rating[p]);
		}
	}
	qsort(got, n, sizeof(*got), cmp_tuple);
	assert_memory_equal(got, want, n * sizeof(*got));

	assert_int_equal(x->item_off[0], 0);
	assert_int_equal(x->item_off[x->n_items], n);
	for (uint32_t i = 0; i < x->n_items; i++) {
		assert_true(x->item_off[i] <= x->item_off[i + 1]);
		for (uint64_t p = x->item_off[i]; p < x->item_off[i + 1]; p++) {
			if (p > x->item_off[i])
				assert_true(x->item_user[p - 1] <= x->item_user[p]);
			got[p] = tuple_of(x->item_user[p], i, x->item_label[p], x->item_rating[p]);
		}
	}
	qsort(got, n, sizeof(*got), cmp_tuple);
	assert_memory_equal(got, want, n * sizeof(*got));
	free(got);
}

/* The records of db decoded one by one, kept by flags, in key order. */
static uint64_t records_of(struct store_reader *r, enum store_db db, uint64_t n, unsigned flags,
			   struct tuple *out)
{
	uint32_t hist[512], neg[512];
	struct record rec = {.hist = hist, .neg = neg, .hist_cap = 512};
	uint64_t m = 0;

	for (uint64_t k = 0; k < n; k++) {
		const void *v;
		size_t len;
		assert_int_equal(store_get_u64(r, db, k, &v, &len), 0);
		assert_int_equal(record_unpack(v, len, &rec), 0);
		if ((flags & INTERACT_POSITIVES) && rec.label != 1)
			continue;
		out[m++] = tuple_of(rec.user, rec.item, (uint8_t)rec.label, rec.rating);
	}
	return m;
}

static void test_load_matches_records(void **state)
{
	static const enum store_db dbs[] = {STORE_TRAIN, STORE_TEST};
	struct store *st;
	struct store_info info;
	struct store_reader *r;
	(void)state;
	assert_int_equal(store_open(&st, storep), 0);
	assert_int_equal(store_info_load(st, &info), 0);
	assert_int_equal(store_reader_begin(st, &r), 0);
	for (int d = 0; d < 2; d++)
		for (unsigned flags = 0; flags <= INTERACT_POSITIVES; flags++) {
			struct store_index ix;
			struct interactions x;
			assert_int_equal(store_index_build(r, dbs[d], &ix), 0);
			struct tuple *want = malloc(ix.n * sizeof(*want));
			uint64_t m = records_of(r, dbs[d], ix.n, flags, want);
			const struct batch_source src = {
				.ix = &ix, .n = ix.n, .store = storep, .db = store_db_name(dbs[d])};
			assert_int_equal(interactions_load(&x, &src, flags), 0);
			assert_int_equal(x.n_users, info.vocab[SF_USER]);
			assert_int_equal(x.n_items, info.vocab[SF_ITEM]);
			/* Input order is key order: the entries match record for record. */
			for (uint64_t e = 0; e < m; e++) {
				struct tuple t =
					tuple_of(x.user[e], x.item[e], x.label[e], x.rating[e]);
				assert_memory_equal(&t, &want[e], sizeof(t));
			}
			if (flags)
				assert_true(m < ix.n); /* the explicit labels drop some */
			/* train knows every user and item: its row 0 is empty */
			if (dbs[d] == STORE_TRAIN)
				assert_true(x.user_off[1] == 0 && x.item_off[1] == 0);
			check_views(&x, want, m);
			interactions_release(&x);
			assert_null(x.mem);
			free(want);
			store_index_release(&ix);
		}
	store_reader_end(r);
	store_close(st);
}

/*
 * By hand: user 2 rated item 3 twice (ties keep input order), user 0 and
 * item 0 (the unknown id) hold entries, user 1 and item 4 none.
 */
static void test_build_by_hand(void **state)
{
	const uint32_t user[] = {2, 0, 2, 3, 2, 3};
	const uint32_t item[] = {3, 1, 0, 1, 3, 2};
	const float rating[] = {5, 1, 2, 4, 3, 4.5f};
	const uint8_t label[] = {1, 0, 0, 1, 0, 1};
	const uint64_t user_off[] = {0, 1, 1, 4, 6};
	const uint32_t user_item[] = {1, 0, 3, 3, 1, 2};
	const float user_rating[] = {1, 2, 5, 3, 4, 4.5f};
	const uint64_t item_off[] = {0, 1, 3, 4, 6, 6};
	const uint32_t item_user[] = {2, 0, 3, 3, 2, 2};
	const uint8_t item_label[] = {0, 0, 1, 1, 1, 0};
	struct interactions x;
	(void)state;
	assert_int_equal(interactions_build(&x, user, item, rating, label, 6, 4, 5), 0);
	assert_memory_equal(x.user_off, user_off, sizeof(user_off));
	assert_memory_equal(x.user_item, user_item, sizeof(user_item));
	assert_memory_equal(x.user_rating, user_rating, sizeof(user_rating));
	assert_memory_equal(x.item_off, item_off, sizeof(item_off));
	assert_memory_equal(x.item_user, item_user, sizeof(item_user));
	assert_memory_equal(x.item_label, item_label, sizeof(item_label));
	assert_memory_equal(x.rating, rating, sizeof(rating));
	interactions_release(&x);
	/* No ratings or labels: zeros.  No entries: empty rows. */
	assert_int_equal(interactions_build(&x, user, item, NULL, NULL, 6, 4, 5), 0);
	assert_true(x.rating[5] == 0.0f && x.user_label[0] == 0);
	interactions_release(&x);
	assert_int_equal(interactions_build(&x, NULL, NULL, NULL, NULL, 0, 3, 2), 0);
	assert_int_equal(x.user_off[3], 0);
	assert_int_equal(x.item_off[2], 0);
	interactions_release(&x);
}

static void test_build_refuses(void **state)
{
	const uint32_t user[] = {1, 2, 3};
	const uint32_t item[] = {1, 2, 5};
	const uint8_t label[] = {1, 2, 0};
	struct interactions x;
	(void)state;
	assert_int_equal(interactions_build(&x, user, item, NULL, NULL, 3, 4, 5), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "entry 2: item 5, the vocabulary has 5 ids");
	assert_null(x.mem);
	assert_int_equal(interactions_build(&x, user, item, NULL, NULL, 3, 3, 6), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "entry 2: user 3, the vocabulary has 3 ids");
	assert_int_equal(interactions_build(&x, user, item, NULL, label, 3, 4, 6), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "entry 1: label 2, not 0 or 1");
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

/* A record with a NaN rating, record 2 of 4: the load stops there and says so. */
static void test_load_refuses_bad_record(void **state)
{
	char path[PATH_MAX];
	struct store *st;
	struct store_reader *r;
	struct store_index ix;
	struct interactions x;
	struct record rec;
	uint32_t h[1] = {0};
	msgpack_sbuffer buf;
	(void)state;
	snprintf(path, sizeof(path), "%s/nan.lmdb", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(store_create(&st, path, 1 << 22), 0);
	msgpack_sbuffer_init(&buf);
	for (uint64_t k = 0; k < 4; k++) {
		uint8_t key[8];
		memset(&rec, 0, sizeof(rec));
		rec.hist = rec.neg = h;
		rec.user = 1, rec.item = 2, rec.label = 1;
		rec.rating = k == 2 ? NAN : 4.0f;
		buf.size = 0;
		assert_int_equal(record_pack(&buf, &rec), 0);
		store_key(key, k);
		assert_int_equal(store_put(st, STORE_TRAIN, key, 8, buf.data, buf.size, 1), 0);
	}
	msgpack_sbuffer_destroy(&buf);
	put_vocab_meta(st, (const uint32_t[SF_NFIELDS]){2, 3, 1, 1, 1, 1, 1});
	assert_int_equal(store_commit(st, 1), 0);
	store_close(st);

	assert_int_equal(store_open(&st, path), 0);
	assert_int_equal(store_reader_begin(st, &r), 0);
	assert_int_equal(store_index_build(r, STORE_TRAIN, &ix), 0);
	struct batch_source src = {.ix = &ix, .n = ix.n, .store = path, .db = "train"};
	assert_int_equal(interactions_load(&x, &src, 0), HR_EFORMAT);
	assert_non_null(strstr(hr_errmsg(), "nan.lmdb': train record 2: field 'rating' is nan"));
	assert_null(x.mem);
	src.n = 2; /* the records before it are fine */
	assert_int_equal(interactions_load(&x, &src, INTERACT_POSITIVES), 0);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.user_off[2] - x.user_off[1], 2);
	interactions_release(&x);
	store_index_release(&ix);
	store_reader_end(r);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_matches_records),
		cmocka_unit_test(test_build_by_hand),
		cmocka_unit_test(test_build_refuses),
		cmocka_unit_test(test_load_refuses_bad_record),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
