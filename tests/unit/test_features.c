/* Unit tests of dense features, the scaler, histories and the negative sampler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/dense.h"
#include "ingest/seq.h"

static void test_dense_strictly_before(void **state)
{
	/* user 0 / item 0: train +, train - in the same second, then a valid +, then train. */
	struct event ev[] = {
		{.user = 0, .item = 0, .ts = 10, .label = 1, .split = SPLIT_TRAIN},
		{.user = 0, .item = 1, .ts = 20, .label = 0, .split = SPLIT_TRAIN},
		{.user = 1, .item = 0, .ts = 20, .label = 1, .split = SPLIT_TRAIN},
		{.user = 0, .item = 0, .ts = 30, .label = 1, .split = SPLIT_VALID},
		{.user = 0, .item = 0, .ts = 40, .label = 1, .split = SPLIT_TRAIN},
	};
	struct dense_state d;
	float raw[DENSE_N];
	struct scaler sc;
	(void)state;
	assert_int_equal(dense_init(&d, 2, 2), 0);
	dense_raw(&d, 0, 0, raw);
	assert_float_equal(raw[0], 0.0f, 1e-7);
	assert_float_equal(raw[1], 0.5f, 1e-7);
	dense_apply(&d, &ev[0]);
	dense_apply(&d, &ev[3]); /* valid: never counted */
	dense_raw(&d, 0, 0, raw);
	assert_float_equal(raw[0], (float)log1p(1.0), 1e-6);
	assert_float_equal(raw[1], 2.0f / 3.0f, 1e-6);
	assert_float_equal(raw[2], (float)log1p(1.0), 1e-6);
	assert_float_equal(raw[3], 2.0f / 3.0f, 1e-6);
	dense_release(&d);

	/*
	 * Train records and the counts before each: ev0 (u0:0, i0:0), ev1 (u0:1+,
	 * i1:0), ev2 (u1:0, i0:1+; same second as ev1, so ev1 is not counted),
	 * ev4 (u0: 2 train events 1 positive, i0: 2 events 2 positive).
	 */
	assert_int_equal(dense_fit(&sc, ev, 5, 2, 2), 0);
	assert_float_equal(sc.min[0], 0.0f, 1e-7);
	assert_float_equal(sc.max[0], (float)log1p(2.0), 1e-6);
	assert_float_equal(sc.min[1], 0.5f, 1e-6);
	assert_float_equal(sc.max[1], 2.0f / 3.0f, 1e-6);
	assert_float_equal(sc.max[3], 3.0f / 4.0f, 1e-6);

	float in[DENSE_N] = {-1.0f, 0.6f, 100.0f, 0.5f}, out[DENSE_N];
	scaler_apply(&sc, in, out, 0, DENSE_N);
	assert_float_equal(out[0], 0.0f, 1e-7); /* clamped */
	assert_float_equal(out[1], (0.6f - 0.5f) / (2.0f / 3.0f - 0.5f), 1e-5);
	assert_float_equal(out[2], 1.0f, 1e-7); /* clamped */
	/* A constant feature scales to 0. */
	sc.min[3] = sc.max[3] = 0.5f;
	scaler_apply(&sc, in, out, 0, DENSE_N);
	assert_float_equal(out[3], 0.0f, 1e-7);
}

static void test_hist_ring_order(void **state)
{
	struct hist h;
	uint32_t out[4];
	(void)state;
	assert_int_equal(hist_init(&h, 2, 4), 0);
	assert_int_equal(hist_get(&h, 0, out), 0);
	for (uint32_t i = 1; i <= 3; i++)
		hist_push(&h, 0, i);
	assert_int_equal(hist_get(&h, 0, out), 3);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[2], 3);
	for (uint32_t i = 4; i <= 10; i++)
		hist_push(&h, 0, i);
	assert_int_equal(hist_get(&h, 0, out), 4);
	for (int k = 0; k < 4; k++)
		assert_int_equal(out[k], 7 + k); /* the last four, oldest first */
	assert_int_equal(hist_get(&h, 1, out), 0);
	hist_release(&h);
}

static void test_neg_sampler_rules(void **state)
{
	enum { ITEMS = 50, USERS = 2 };
	struct event ev[ITEMS];
	struct neg_sampler s;
	struct rng r;
	uint32_t out[ITEMS];
	(void)state;
	for (int i = 0; i < ITEMS; i++)
		ev[i] = (struct event){.user = 0, .item = (uint32_t)i};
	assert_int_equal(neg_init(&s, ev, ITEMS, USERS, ITEMS), 0);
	rng_seed(&r, 1, 0);
	assert_int_equal(neg_sample(&s, &r, 0, 0, 5, out), 0); /* empty pool */
	for (uint32_t i = 0; i < 40; i++)
		neg_pool_add(&s, i);
	neg_pool_add(&s, 3); /* no duplicates in the pool */
	assert_int_equal(s.pool_len, 40);
	for (uint32_t i = 0; i < 30; i++)
		neg_mark_rated(&s, 0, i);
	assert_true(neg_rated(&s, 0, 29));
	assert_false(neg_rated(&s, 0, 30));
	assert_false(neg_rated(&s, 1, 0));
	/* Candidates for user 0, own item 35: 30..39 minus 35 = 9 items. */
	for (int rep = 0; rep < 200; rep++) {
		uint32_t n = neg_sample(&s, &r, 0, 35, 5, out);
		uint8_t seen[ITEMS] = {0};
		assert_int_equal(n, 5);
		for (uint32_t k = 0; k < n; k++) {
			assert_true(out[k] >= 30 && out[k] < 40 && out[k] != 35);
			assert_false(seen[out[k]]);
			seen[out[k]] = 1;
		}
	}
	/* Asking for more than exist returns every candidate once. */
	uint32_t n = neg_sample(&s, &r, 0, 35, 20, out);
	assert_int_equal(n, 9);
	uint32_t sum = 0;
	for (uint32_t k = 0; k < n; k++)
		sum += out[k];
	assert_int_equal(sum, 30 + 31 + 32 + 33 + 34 + 36 + 37 + 38 + 39);
	neg_release(&s);
}

static void test_neg_sampler_uniform(void **state)
{
	enum { ITEMS = 20, DRAWS = 20000 };
	struct event ev[1] = {{.user = 0, .item = 0}};
	struct neg_sampler s;
	struct rng r;
	uint32_t out[3], hits[ITEMS] = {0};
	(void)state;
	assert_int_equal(neg_init(&s, ev, 1, 1, ITEMS), 0);
	for (uint32_t i = 0; i < ITEMS; i++)
		neg_pool_add(&s, i);
	neg_mark_rated(&s, 0, 7);
	rng_seed(&r, 42, 0);
	for (int d = 0; d < DRAWS; d++) {
		uint32_t n = neg_sample(&s, &r, 0, 0, 3, out);
		assert_int_equal(n, 3);
		for (uint32_t k = 0; k < n; k++)
			hits[out[k]]++;
	}
	assert_int_equal(hits[0], 0);
	assert_int_equal(hits[7], 0);
	/* 18 candidates, 3 of them per draw: expected 3333 each; chi-square, 17 dof. */
	double expect = 3.0 * DRAWS / 18.0, chi = 0;
	for (int i = 0; i < ITEMS; i++)
		if (i != 0 && i != 7)
			chi += (hits[i] - expect) * (hits[i] - expect) / expect;
	assert_true(chi < 40.8); /* p = 0.001 */
	neg_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dense_strictly_before),
		cmocka_unit_test(test_hist_ring_order),
		cmocka_unit_test(test_neg_sampler_rules),
		cmocka_unit_test(test_neg_sampler_uniform),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
