/*
 * The negative samplers, on interactions built by hand and on a small
 * generated store: random never draws 0 or the positive and is uniform;
 * unconsumed never draws a consumed item, stays uniform through its exact
 * fallback, and falls back to random for a user who consumed everything;
 * popular follows the train counts, without the positive; the logQ share;
 * the same (seed, stream) gives the same draws.
 *
 * Distributions are checked by Pearson's chi-square with a fixed seed, so
 * each test is deterministic: it passes when the statistic is below the
 * 1 - 1e-5 quantile of its distribution (Wilson-Hilferty).  A right
 * sampler fails one check in 100,000 seeds (about 57 checks here: 60
 * seeds at the 0.999 quantile failed 5 times, as expected), which the
 * fixed seed rules out once and for all; one item 10% off its weight
 * exceeds it in expectation at these sample sizes, and a forbidden item
 * fails at its first draw.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"
#include "ingest/ingest.h"
#include "ingest/mlgen.h"
#include "models/interact.h"
#include "models/sampler.h"
#include "genstore.h"

#ifndef SEED
#define SEED 20240601ULL
#endif
#define NI 11 /* items 1..10 */
#define NU 5

static int setup(void **state)
{
	(void)state;
	return genstore_setup("sampler", 60, 40, 2000, 3);
}

static int teardown(void **state)
{
	(void)state;
	return genstore_teardown();
}

/* The 1 - 1e-5 quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
static double chi2_crit(int df)
{
	const double z = 4.2649; /* the standard normal's 1 - 1e-5 quantile */
	double a = 2.0 / (9.0 * df);
	return df * pow(1.0 - a + z * sqrt(a), 3);
}

/*
 * Pearson's statistic of observed counts seen[0..n) against weights
 * want[0..n) (any scale; 0 = never), failing at once on a draw of weight
 * 0; checks it against the 1 - 1e-5 quantile.
 */
static void check_chi2(const char *what, const uint64_t *seen, const double *want, int n)
{
	double total = 0, W = 0, stat = 0;
	int cells = 0;

	for (int i = 0; i < n; i++) {
		total += (double)seen[i];
		W += want[i];
	}
	for (int i = 0; i < n; i++) {
		if (want[i] == 0) {
			if (seen[i])
				fail_msg("%s: %llu draws of %d, which has weight 0", what,
					 (unsigned long long)seen[i], i);
			continue;
		}
		double e = total * want[i] / W;
		stat += ((double)seen[i] - e) * ((double)seen[i] - e) / e;
		cells++;
	}
	assert_true(cells >= 2);
	if (stat > chi2_crit(cells - 1))
		fail_msg("%s: chi-square %.1f over %d cells, above %.1f", what, stat, cells,
			 chi2_crit(cells - 1));
}

/* Interactions from a user x item list of counts (each count = that many entries). */
static void build_counts(struct interactions *x, const uint8_t counts[NU][NI])
{
	uint32_t user[NU * NI * 32], item[NU * NI * 32];
	uint64_t n = 0;

	for (uint32_t u = 0; u < NU; u++)
		for (uint32_t i = 0; i < NI; i++)
			for (uint8_t k = 0; k < counts[u][i]; k++) {
				assert_true(n < NU * NI * 32);
				user[n] = u, item[n++] = i;
			}
	assert_int_equal(interactions_build(x, user, item, NULL, NULL, n, NU, NI), 0);
}

/*
 * User 1 consumed 1, 2, 3, 5, 8; user 2 consumed 1 .. 8 (a heavy user: 10
 * rejections fail one time in nine, so the exact fallback runs); user 3
 * every item; user 4 every item but 6; user 0 nothing.  Item 4 twice by
 * user 1 (a repeat counts twice for popular, once for consumed).
 */
static const uint8_t consumed[NU][NI] = {
	{0},
	{0, 1, 1, 1, 0, 2, 0, 0, 1, 0, 0},
	{0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
	{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	{0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1},
};

static void test_kind_names(void **state)
{
	(void)state;
	for (int k = SAMPLER_RANDOM; k <= SAMPLER_POPULAR; k++)
		assert_int_equal(sampler_kind_parse(sampler_kind_name(k)), k);
	assert_string_equal(sampler_kind_name(SAMPLER_UNCONSUMED), "unconsumed");
	assert_int_equal(sampler_kind_parse("uniform"), -1);
	assert_int_equal(sampler_kind_parse(""), -1);
}

static void test_init_refuses(void **state)
{
	const uint32_t user[] = {1, 1}, item[] = {1, 0};
	struct interactions x;
	struct sampler s;
	(void)state;
	assert_int_equal(interactions_build(&x, user, item, NULL, NULL, 2, 2, 2), 0);
	assert_int_equal(sampler_init(&s, SAMPLER_RANDOM, &x), HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "vocabulary of 2 ids leaves no negative"));
	assert_null(s.mem);
	interactions_release(&x);
	/* popular with nothing but item 0 to weigh; the others do not care */
	assert_int_equal(interactions_build(&x, user + 1, item + 1, NULL, NULL, 1, 2, 5), 0);
	assert_int_equal(sampler_init(&s, SAMPLER_POPULAR, &x), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "popular sampler: no item has a train count");
	assert_null(s.mem);
	assert_int_equal(sampler_init(&s, SAMPLER_UNCONSUMED, &x), 0);
	sampler_release(&s);
	assert_int_equal(sampler_init(&s, (enum sampler_kind)7, &x), HR_EINVAL);
	interactions_release(&x);
}

/* Draws n negatives for (user, pos) into a histogram over the items. */
static void histogram(const struct sampler *s, uint64_t stream, uint32_t user, uint32_t pos,
		      uint32_t n, uint64_t seen[NI])
{
	struct rng r;

	memset(seen, 0, NI * sizeof(*seen));
	rng_seed(&r, SEED, stream);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = sampler_draw(s, &r, user, pos);
		assert_true(i >= 1 && i < NI);
		assert_int_not_equal(i, pos);
		seen[i]++;
	}
}

static void test_random(void **state)
{
	struct interactions x;
	struct sampler s;
	uint64_t seen[NI];
	double want[NI];
	char what[64];
	(void)state;
	build_counts(&x, consumed);
	assert_int_equal(sampler_init(&s, SAMPLER_RANDOM, &x), 0);
	interactions_release(&x); /* the sampler keeps what it needs */
	for (uint32_t pos = 0; pos < NI; pos++) {
		histogram(&s, pos, 3, pos, 50000, seen); /* users are ignored */
		for (int i = 0; i < NI; i++)
			want[i] = i != 0 && i != (int)pos;
		snprintf(what, sizeof(what), "random, positive %u", pos);
		check_chi2(what, seen, want, NI);
	}
	sampler_release(&s);
	assert_null(s.mem);
}

static void test_unconsumed(void **state)
{
	struct interactions x;
	struct sampler s;
	uint64_t seen[NI];
	double want[NI];
	char what[64];
	(void)state;
	build_counts(&x, consumed);
	assert_int_equal(sampler_init(&s, SAMPLER_UNCONSUMED, &x), 0);
	for (uint32_t u = 0; u < 3; u++)
		for (uint32_t pos = 0; pos < NI; pos++) {
			histogram(&s, 100 + u * NI + pos, u, pos, 40000, seen);
			for (int i = 0; i < NI; i++)
				want[i] = i != 0 && i != (int)pos && !consumed[u][i];
			snprintf(what, sizeof(what), "unconsumed, user %u, positive %u", u, pos);
			if (u == 2 && pos >= 9)
				continue; /* one candidate left: nothing to compare, checked below */
			check_chi2(what, seen, want, NI);
		}
	/* User 2 with positive 9 has only item 10 left, and the reverse. */
	histogram(&s, 7, 2, 9, 1000, seen);
	assert_int_equal(seen[10], 1000);
	histogram(&s, 8, 2, 10, 1000, seen);
	assert_int_equal(seen[9], 1000);
	sampler_release(&s);
	interactions_release(&x);
}

/*
 * User 3 consumed every item, user 4 every item but 6: with positive 6
 * neither has an unconsumed item, so both get the fallback, random's
 * draw (uniform over every item but the positive); user 4 with another
 * positive still gets 6 and only 6.
 */
static void test_unconsumed_fallback(void **state)
{
	struct interactions x;
	struct sampler s, rnd;
	uint64_t seen[NI], seen_rnd[NI];
	double want[NI];
	(void)state;
	build_counts(&x, consumed);
	assert_int_equal(sampler_init(&s, SAMPLER_UNCONSUMED, &x), 0);
	assert_int_equal(sampler_init(&rnd, SAMPLER_RANDOM, &x), 0);
	for (int i = 0; i < NI; i++)
		want[i] = i != 0 && i != 6;
	histogram(&s, 1, 3, 6, 50000, seen);
	check_chi2("unconsumed fallback, user 3", seen, want, NI);
	histogram(&s, 2, 4, 6, 50000, seen);
	check_chi2("unconsumed fallback, user 4", seen, want, NI);
	histogram(&s, 3, 4, 2, 1000, seen);
	assert_int_equal(seen[6], 1000);
	/* The fallback is random's draw itself, after the bounded rejections. */
	histogram(&s, 4, 3, 6, 2000, seen);
	struct rng r;
	rng_seed(&r, SEED, 4);
	memset(seen_rnd, 0, sizeof(seen_rnd));
	for (int k = 0; k < 2000; k++) {
		for (int t = 0; t < SAMPLER_TRIES; t++)
			(void)sampler_draw(&rnd, &r, 3, 6); /* the rejected tries */
		seen_rnd[sampler_draw(&rnd, &r, 3, 6)]++;
	}
	assert_memory_equal(seen, seen_rnd, sizeof(seen));
	sampler_release(&rnd);
	sampler_release(&s);
	interactions_release(&x);
}

static void test_popular(void **state)
{
	/* item counts (user 1 holds them): 0 for items 3 and 7 */
	static const uint8_t counts[NU][NI] = {
		{0},
		{0, 5, 1, 0, 10, 3, 12, 0, 30, 4, 8},
	};
	static const uint8_t one[NU][NI] = {{0}, {0, 0, 0, 4}};
	struct interactions x;
	struct sampler s;
	uint64_t seen[NI];
	double want[NI];
	char what[64];
	(void)state;
	build_counts(&x, counts);
	assert_int_equal(sampler_init(&s, SAMPLER_POPULAR, &x), 0);
	for (uint32_t pos = 0; pos < NI; pos++) {
		histogram(&s, 300 + pos, 0, pos, 100000, seen);
		for (int i = 0; i < NI; i++)
			want[i] = i == (int)pos ? 0 : counts[1][i];
		snprintf(what, sizeof(what), "popular, positive %u", pos);
		check_chi2(what, seen, want, NI);
	}
	sampler_release(&s);
	interactions_release(&x);
	/* Every count on one item: with it as the positive, random's draw. */
	build_counts(&x, one);
	assert_int_equal(sampler_init(&s, SAMPLER_POPULAR, &x), 0);
	histogram(&s, 1, 0, 0, 1000, seen);
	assert_int_equal(seen[3], 1000);
	histogram(&s, 2, 0, 3, 50000, seen);
	for (int i = 0; i < NI; i++)
		want[i] = i != 0 && i != 3;
	check_chi2("popular, all count on the positive", seen, want, NI);
	sampler_release(&s);
	interactions_release(&x);
}

/* count / n, clipped to [1e-8, 1]; every kind has it. */
static void test_item_prob(void **state)
{
	static const uint8_t counts[NU][NI] = {{0}, {0, 5, 1, 0, 10, 3, 12, 0, 30, 4, 8}};
	static const uint8_t one[NU][NI] = {{0}, {0, 0, 0, 4}};
	struct interactions x;
	struct sampler s;
	(void)state;
	build_counts(&x, counts);
	for (int k = SAMPLER_RANDOM; k <= SAMPLER_POPULAR; k++) {
		assert_int_equal(sampler_init(&s, k, &x), 0);
		assert_true(sampler_item_prob(&s, 8) == (float)(30.0 / 73.0));
		assert_true(sampler_item_prob(&s, 2) == (float)(1.0 / 73.0));
		assert_true(sampler_item_prob(&s, 3) == 1e-8f);
		assert_true(sampler_item_prob(&s, 0) == 1e-8f);
		assert_true(s.item_prob[4] == (float)(10.0 / 73.0));
		sampler_release(&s);
	}
	interactions_release(&x);
	build_counts(&x, one);
	assert_int_equal(sampler_init(&s, SAMPLER_RANDOM, &x), 0);
	assert_true(sampler_item_prob(&s, 3) == 1.0f);
	sampler_release(&s);
	interactions_release(&x);
}

/* sampler_fill is sampler_draw in row order; (seed, stream) fixes the draws. */
static void test_same_stream_same_draws(void **state)
{
	enum { B = 64, NEG = 5 };
	uint32_t users[B], pos[B], a[B * NEG], b[B * NEG], c[B * NEG];
	struct interactions x;
	struct sampler s;
	struct rng r;
	(void)state;
	build_counts(&x, consumed);
	for (uint32_t i = 0; i < B; i++)
		users[i] = i % NU, pos[i] = (i * 7) % NI;
	for (int k = SAMPLER_RANDOM; k <= SAMPLER_POPULAR; k++) {
		assert_int_equal(sampler_init(&s, k, &x), 0);
		rng_seed(&r, SEED, 5);
		sampler_fill(&s, &r, users, pos, B, NEG, a);
		rng_seed(&r, SEED, 5);
		sampler_fill(&s, &r, users, pos, B, NEG, b);
		assert_memory_equal(a, b, sizeof(a));
		rng_seed(&r, SEED, 5);
		for (uint32_t i = 0; i < B; i++)
			for (uint32_t j = 0; j < NEG; j++)
				c[i * NEG + j] = sampler_draw(&s, &r, users[i], pos[i]);
		assert_memory_equal(a, c, sizeof(a));
		rng_seed(&r, SEED, 6);
		sampler_fill(&s, &r, k == SAMPLER_UNCONSUMED ? users : NULL, pos, B, NEG, b);
		assert_memory_not_equal(a, b, sizeof(a));
		sampler_release(&s);
	}
	interactions_release(&x);
}

/* Whether item is among user u's entries of x, by a linear scan. */
static int in_row(const struct interactions *x, uint32_t u, uint32_t item)
{
	for (uint64_t p = x->user_off[u]; p < x->user_off[u + 1]; p++)
		if (x->user_item[p] == item)
			return 1;
	return 0;
}

/*
 * From a store: the train positives of a generated data set.  For every
 * positive pair, unconsumed's negatives are never among the user's
 * positives; popular's frequencies over all pairs follow the counts.
 */
static void test_from_store(void **state)
{
	struct store *st;
	struct store_reader *rd;
	struct store_index ix;
	struct interactions x;
	struct sampler s;
	struct rng r;
	(void)state;
	assert_int_equal(store_open(&st, storep), 0);
	assert_int_equal(store_reader_begin(st, &rd), 0);
	assert_int_equal(store_index_build(rd, STORE_TRAIN, &ix), 0);
	const struct batch_source src = {.ix = &ix, .n = ix.n, .store = storep, .db = "train"};
	assert_int_equal(interactions_load(&x, &src, INTERACT_POSITIVES), 0);
	store_index_release(&ix);
	store_reader_end(rd);
	store_close(st);
	assert_true(x.n > 500);

	uint32_t *neg = malloc(x.n * 4 * sizeof(*neg));
	assert_int_equal(sampler_init(&s, SAMPLER_UNCONSUMED, &x), 0);
	rng_seed(&r, SEED, 9);
	sampler_fill(&s, &r, x.user, x.item, (uint32_t)x.n, 4, neg);
	for (uint64_t e = 0; e < x.n; e++)
		for (int k = 0; k < 4; k++) {
			uint32_t i = neg[e * 4 + k];
			assert_true(i >= 1 && i < x.n_items && i != x.item[e]);
			if (in_row(&x, x.user[e], i))
				fail_msg("user %u consumed item %u, drawn as a negative", x.user[e],
					 i);
		}
	sampler_release(&s);

	uint64_t *seen = calloc(x.n_items, sizeof(*seen));
	double *want = calloc(x.n_items, sizeof(*want));
	assert_int_equal(sampler_init(&s, SAMPLER_POPULAR, &x), 0);
	rng_seed(&r, SEED, 10);
	for (int k = 0; k < 200000; k++)
		seen[sampler_draw(&s, &r, 0, 0)]++;
	for (uint32_t i = 1; i < x.n_items; i++)
		want[i] = (double)(x.item_off[i + 1] - x.item_off[i]);
	check_chi2("popular from the store", seen, want, (int)x.n_items);
	sampler_release(&s);
	free(want);
	free(seen);
	free(neg);
	interactions_release(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_init_refuses),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_unconsumed),
		cmocka_unit_test(test_unconsumed_fallback),
		cmocka_unit_test(test_popular),
		cmocka_unit_test(test_item_prob),
		cmocka_unit_test(test_same_stream_same_draws),
		cmocka_unit_test(test_from_store),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
