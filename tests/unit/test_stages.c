/* Unit tests of the ingest stages on hand-made datasets: label, sort, split, encode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "ingest/encode.h"
#include "ingest/label.h"
#include "ingest/order.h"
#include "ingest/split.h"

/* A small dataset: users 10,20,30 (30 only in the future), items 100..103. */
static void make_ds(struct dataset *ds)
{
	static const struct ds_user users[] = {
		{.raw_id = 20, .gender = 'F', .age = 25, .occupation = "4", .zip = "55455"},
		{.raw_id = 10, .gender = 'M', .age = 18, .occupation = "12", .zip = "90210-1234"},
		{.raw_id = 30, .gender = 'M', .age = 56, .occupation = "7", .zip = "02139"},
	};
	uint32_t idx;

	assert_int_equal(dataset_init(ds), 0);
	ds->has_demographics = 1;
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(dataset_add_user(ds, &users[i], &idx), 1);
	int g_drama = dataset_genre(ds, "Drama", 5), g_com = dataset_genre(ds, "Comedy", 6);
	int g_war = dataset_genre(ds, "War", 3);
	assert_int_equal(dataset_add_item(ds, 103, "D (2000)", 8, 2000, 1u << g_war, &idx), 1);
	assert_int_equal(
		dataset_add_item(ds, 101, "B", 1, 0, (1u << g_drama) | (1u << g_com), &idx), 1);
	assert_int_equal(dataset_add_item(ds, 100, "A", 1, 0, 1u << g_drama, &idx), 1);
	assert_int_equal(dataset_add_item(ds, 102, "C", 1, 0, 1u << g_com, &idx), 1);
}

static void add(struct dataset *ds, uint32_t u, uint32_t i, uint32_t ts, uint16_t stars2)
{
	struct ds_rating r = {.user = u, .item = i, .ts = ts, .stars2 = stars2};
	assert_int_equal(dataset_add_rating(ds, &r), 0);
}

static void test_label_rule(void **state)
{
	struct label_rule r;
	(void)state;
	assert_int_equal(label_rule_init(&r, LABEL_EXPLICIT, 4, 2), 0);
	assert_int_equal(label_of(&r, 10), 1);
	assert_int_equal(label_of(&r, 8), 1);
	assert_int_equal(label_of(&r, 7), LABEL_DROP); /* 3.5 */
	assert_int_equal(label_of(&r, 6), LABEL_DROP);
	assert_int_equal(label_of(&r, 4), 0);
	assert_int_equal(label_of(&r, 1), 0);
	assert_int_equal(label_rule_init(&r, LABEL_EXPLICIT, 3.5, 3), 0);
	assert_int_equal(label_of(&r, 7), 1);
	assert_int_equal(label_of(&r, 6), 0);
	assert_int_equal(label_rule_init(&r, LABEL_IMPLICIT, 4, 2), 0);
	assert_int_equal(label_of(&r, 2), 1);
	assert_int_equal(label_rule_init(&r, LABEL_EXPLICIT, 3, 3), HR_EINVAL);
	assert_int_equal(label_rule_init(&r, LABEL_EXPLICIT, 4.2, 2), HR_EINVAL);
	assert_int_equal(label_rule_init(&r, LABEL_EXPLICIT, 6, 2), HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "--pos-min"));
}

static void test_sort_stable_by_ts_user_item(void **state)
{
	struct dataset ds;
	struct label_rule rule;
	struct event *ev;
	size_t dropped;
	(void)state;
	make_ds(&ds);
	/* users: idx0=20, idx1=10; items: idx0=103, idx1=101, idx2=100 */
	add(&ds, 0, 0, 500, 10);
	add(&ds, 1, 0, 500, 10);
	add(&ds, 0, 2, 500, 10);
	add(&ds, 1, 1, 70000, 2); /* ts > 65535 exercises the high digit */
	add(&ds, 1, 1, 100, 6);   /* duplicate pair keeps input order */
	add(&ds, 1, 1, 100, 8);
	assert_int_equal(label_rule_init(&rule, LABEL_EXPLICIT, 4, 2), 0);
	assert_int_equal(label_events(&ds, &rule, &ev, &dropped), 0);
	assert_int_equal(dropped, 1);
	assert_int_equal(events_sort(ev, ds.n_ratings, &ds), 0);
	uint32_t want_ts[] = {100, 100, 500, 500, 500, 70000};
	uint32_t want_user[] = {10, 10, 10, 20, 20, 10};
	uint32_t want_item[] = {101, 101, 103, 100, 103, 101};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(ev[i].ts, want_ts[i]);
		assert_int_equal(ds.users[ev[i].user].raw_id, want_user[i]);
		assert_int_equal(ds.items[ev[i].item].raw_id, want_item[i]);
	}
	assert_int_equal(ev[0].stars2, 6);
	assert_int_equal(ev[1].stars2, 8);
	assert_int_equal(ev[0].label, LABEL_DROP);
	free(ev);
	dataset_release(&ds);
}

/* n events one second apart, user i % users, all positive. */
static struct event *series(size_t n, uint32_t users, const uint32_t *ts)
{
	struct event *ev = calloc(n, sizeof(*ev));
	for (size_t i = 0; i < n; i++) {
		ev[i].user = (uint32_t)(i % users);
		ev[i].item = (uint32_t)i;
		ev[i].ts = ts ? ts[i] : (uint32_t)(1000 + i);
		ev[i].label = 1;
		ev[i].split = SPLIT_NONE;
	}
	return ev;
}

static void test_split_global_ties(void **state)
{
	/* 10 events; the 80% cut falls inside a run of equal timestamps. */
	uint32_t ts[10] = {1, 2, 3, 4, 5, 6, 7, 7, 7, 9};
	struct event *ev = series(10, 2, ts);
	struct split_opts o = {SPLIT_GLOBAL, 0.1, 0.1};
	struct split_info info;
	(void)state;
	ev[2].label = LABEL_DROP;
	assert_int_equal(split_assign(ev, 10, 2, &o, &info), 0);
	/* 9 kept: cut1 = floor(7.2) = 7 -> kept index 7 is ts 7 as is 6: moves to 8. */
	assert_int_equal(ev[2].split, SPLIT_NONE);
	for (int i = 0; i < 9; i++)
		if (i != 2)
			assert_int_equal(ev[i].split, SPLIT_TRAIN);
	assert_int_equal(ev[9].split, SPLIT_TEST);
	assert_int_equal(info.n[SPLIT_TRAIN], 8);
	assert_int_equal(info.n[SPLIT_VALID], 0);
	assert_int_equal(info.n[SPLIT_TEST], 1);
	assert_int_equal(info.train_end_ts, 7);
	free(ev);
}

static void test_split_global_ordered(void **state)
{
	struct event *ev = series(1000, 7, NULL);
	struct split_opts o = {SPLIT_GLOBAL, 0.1, 0.2};
	struct split_info info;
	(void)state;
	assert_int_equal(split_assign(ev, 1000, 7, &o, &info), 0);
	assert_int_equal(info.n[0], 700);
	assert_int_equal(info.n[1], 100);
	assert_int_equal(info.n[2], 200);
	for (int i = 1; i < 1000; i++)
		assert_true(ev[i].split >= ev[i - 1].split);
	free(ev);
}

static void test_split_user_and_loo(void **state)
{
	struct event *ev = series(100, 4, NULL); /* 25 events per user */
	struct split_opts o = {SPLIT_USER, 0.1, 0.2};
	struct split_info info;
	(void)state;
	assert_int_equal(split_assign(ev, 100, 4, &o, &info), 0);
	assert_int_equal(info.n[SPLIT_TEST], 4 * 5);
	assert_int_equal(info.n[SPLIT_VALID], 4 * 2);
	for (uint32_t u = 0; u < 4; u++) {
		int last = SPLIT_TRAIN;
		for (int i = 0; i < 100; i++)
			if (ev[i].user == u) {
				assert_true(ev[i].split >= last);
				last = ev[i].split;
			}
		assert_int_equal(last, SPLIT_TEST);
	}
	o.kind = SPLIT_LOO;
	assert_int_equal(split_assign(ev, 100, 4, &o, &info), 0);
	assert_int_equal(info.n[SPLIT_TEST], 4);
	assert_int_equal(info.n[SPLIT_VALID], 4);
	for (int i = 96; i < 100; i++)
		assert_int_equal(ev[i].split, SPLIT_TEST);
	for (int i = 92; i < 96; i++)
		assert_int_equal(ev[i].split, SPLIT_VALID);
	o.valid_frac = 0.6;
	o.test_frac = 0.5;
	assert_int_equal(split_opts_check(&o), HR_EINVAL);
	free(ev);

	/* One user, 10 events; the last three share a second: with 10%/20% the
	 * user split would cut inside that second, so all three stay in valid. */
	uint32_t ts[10] = {1, 2, 3, 4, 5, 6, 7, 9, 9, 9};
	ev = series(10, 1, ts);
	o = (struct split_opts){SPLIT_USER, 0.1, 0.2};
	assert_int_equal(split_assign(ev, 10, 1, &o, &info), 0);
	assert_int_equal(ev[6].split, SPLIT_TRAIN);
	for (int i = 7; i < 10; i++)
		assert_int_equal(ev[i].split, SPLIT_VALID);
	/* loo keeps exactly one test event even inside a second. */
	o.kind = SPLIT_LOO;
	assert_int_equal(split_assign(ev, 10, 1, &o, &info), 0);
	assert_int_equal(ev[9].split, SPLIT_TEST);
	assert_int_equal(ev[8].split, SPLIT_VALID);
	assert_int_equal(ev[7].split, SPLIT_TRAIN);
	free(ev);
}

static void test_encode_train_only(void **state)
{
	struct dataset ds;
	struct encoding enc;
	struct event ev[3] = {
		/* user 20 (idx 0) rates item 100 (idx 2) in train; user 30 (idx 2) only in test */
		{.user = 0, .item = 2, .ts = 1, .label = 1, .split = SPLIT_TRAIN},
		{.user = 1, .item = 1, .ts = 2, .label = 0, .split = SPLIT_TRAIN},
		{.user = 2, .item = 0, .ts = 3, .label = 1, .split = SPLIT_TEST},
	};
	(void)state;
	make_ds(&ds);
	assert_int_equal(encoding_fit(&enc, &ds, ev, 3, 3), 0);
	/* Users: train has raw 10 and 20 -> ids 1, 2 in sorted order; 30 unseen -> 0. */
	assert_int_equal(enc.vocab[ENC_USER].n, 3);
	assert_int_equal(enc.user_code[1], 1);
	assert_int_equal(enc.user_code[0], 2);
	assert_int_equal(enc.user_code[2], 0);
	/* Items 100, 101 seen; 103 only in test. */
	assert_int_equal(enc.vocab[ENC_ITEM].n, 3);
	assert_int_equal(enc.item_code[2], 1);
	assert_int_equal(enc.item_code[1], 2);
	assert_int_equal(enc.item_code[0], 0);
	/* Ages 18, 25 (56 only in test); genders F, M; zips "554", "902". */
	assert_int_equal(enc.vocab[ENC_AGE].n, 3);
	assert_int_equal(enc.age_code[2], 0);
	assert_int_equal(enc.vocab[ENC_GENDER].n, 3);
	assert_string_equal(enc.vocab[ENC_GENDER].strs[1], "F");
	assert_int_equal(enc.gender_code[2], 2); /* "M" is known from user 10 */
	assert_string_equal(enc.vocab[ENC_ZIP].strs[1], "554");
	assert_string_equal(enc.vocab[ENC_ZIP].strs[2], "902");
	assert_int_equal(enc.zip_code[2], 0);
	assert_int_equal(enc.vocab[ENC_OCC].n, 3);
	assert_string_equal(enc.vocab[ENC_OCC].strs[1], "12");
	/* Genres of train items: Comedy, Drama (War only on a test item). */
	assert_int_equal(enc.vocab[ENC_GENRE].n, 3);
	assert_string_equal(enc.vocab[ENC_GENRE].strs[1], "Comedy");
	assert_int_equal(enc.n_item_genres[1], 2);
	assert_int_equal(enc.item_genres[1][0], 1);
	assert_int_equal(enc.item_genres[1][1], 2);
	assert_int_equal(enc.n_item_genres[0], 0); /* War is unknown */
	encoding_release(&enc);
	dataset_release(&ds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_rule),
		cmocka_unit_test(test_sort_stable_by_ts_user_item),
		cmocka_unit_test(test_split_global_ties),
		cmocka_unit_test(test_split_global_ordered),
		cmocka_unit_test(test_split_user_and_loo),
		cmocka_unit_test(test_encode_train_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
