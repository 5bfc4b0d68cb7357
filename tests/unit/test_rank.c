/*
 * test_rank.c - top-K selection and the ranking metrics (common/rank.h):
 * rank_topk against a full sort (ties, skips, NaNs, k beyond the
 * catalogue); each metric on lists worked by hand; merged accumulators
 * equal one; the leave-one-out rank counts ties against the positive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "common/err.h"
#include "common/rank.h"
#include "common/rng.h"

static const float *g_score;

/* best first, ties: the lower index */
static int by_score(const void *a, const void *b)
{
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	float si = g_score[i], sj = g_score[j];

	if (si != sj)
		return si > sj ? -1 : 1;
	return i < j ? -1 : i > j;
}

static void test_topk_matches_sort(void **state)
{
	enum { N = 5000 }; /* catalogues past 4 k: the threshold path of rank_topk */
	static float score[N];
	float hs[RANK_KMAX + 7];
	static uint32_t all[N];
	uint32_t idx[RANK_KMAX + 7], hi[RANK_KMAX + 7], skip[60];
	struct rng r;
	(void)state;

	for (uint64_t seed = 1; seed <= 200; seed++) {
		uint32_t n = 1 + (uint32_t)(seed * (seed % 2 ? 37 : 379) % N), n_skip = 0, m = 0;
		uint32_t k = 1 + (uint32_t)(seed * 13 % (RANK_KMAX + 7));
		rng_seed(&r, seed, 1);
		for (uint32_t i = 0; i < n; i++) /* few distinct values: many ties */
			score[i] = seed % 3 ? (float)rng_below(&r, 20) : (float)rng_uniform(&r);
		if (seed % 5 == 0)
			score[rng_below(&r, n)] = NAN;
		for (uint32_t i = 0; i < n + 10 && n_skip < 60; i += 1 + rng_below(&r, 12)) {
			skip[n_skip++] = i; /* may run past n */
			if (n_skip < 60 && seed % 2)
				skip[n_skip++] = i; /* a duplicate */
		}
		for (uint32_t i = 0, s = 0; i < n; i++) {
			while (s < n_skip && skip[s] < i)
				s++;
			if ((s < n_skip && skip[s] == i) || isnan(score[i]))
				continue;
			all[m++] = i;
		}
		g_score = score;
		qsort(all, m, sizeof(all[0]), by_score);
		uint32_t got = rank_topk(score, n, skip, n_skip, k, idx, hs, hi);
		assert_int_equal(got, k < m ? k : m);
		for (uint32_t j = 0; j < got; j++)
			if (idx[j] != all[j])
				fail_msg("seed %llu: rank %u is item %u, the sort says %u",
					 (unsigned long long)seed, j, idx[j], all[j]);
	}
	assert_int_equal(rank_topk(score, 10, NULL, 0, 0, idx, hs, hi), 0);
}

static void expect(double got, double want, const char *what)
{
	if (fabs(got - want) > 1e-12)
		fail_msg("%s: %.15g, expected %.15g", what, got, want);
}

/*
 * One user, positives {3, 7, 40} among 200 items; the list puts 7 at rank
 * 0, 3 at rank 12 and 40 at rank 60.
 */
static void test_metrics_by_hand(void **state)
{
	uint32_t top[RANK_KMAX], pos[] = {3, 7, 40};
	float w[200];
	struct rank_acc a;
	struct rank_result r;
	double l2 = log(2);
	(void)state;

	for (uint32_t j = 0; j < RANK_KMAX; j++) /* filler items 100 .. 199 */
		top[j] = 100 + j;
	top[0] = 7;
	top[12] = 3;
	top[60] = 40;
	for (int i = 0; i < 200; i++)
		w[i] = (float)i;
	assert_int_equal(rank_acc_init(&a, 200, w), 0);
	rank_acc_add(&a, top, RANK_KMAX, pos, 3);
	rank_acc_add(&a, top, RANK_KMAX, pos, 0); /* no positives: not a user */
	rank_acc_result(&a, &r);
	assert_int_equal(r.users, 1);
	/* K = 10: one hit at rank 0 */
	expect(r.recall[0], 1.0 / 3, "recall@10");
	expect(r.hit[0], 1, "hit@10");
	expect(r.mrr[0], 1, "mrr@10");
	expect(r.ndcg[0], 1 / (1 + l2 / log(3) + l2 / log(4)), "ndcg@10");
	/* K = 20: rank 12 too */
	expect(r.recall[1], 2.0 / 3, "recall@20");
	expect(r.ndcg[1], (1 + l2 / log(14)) / (1 + l2 / log(3) + l2 / log(4)), "ndcg@20");
	/* K = 50 as 20; K = 100 all three */
	expect(r.recall[2], 2.0 / 3, "recall@50");
	expect(r.recall[3], 1, "recall@100");
	expect(r.ndcg[3], (1 + l2 / log(14) + l2 / log(62)) / (1 + l2 / log(3) + l2 / log(4)),
	       "ndcg@100");
	expect(r.mrr[3], 1, "mrr@100");
	/* coverage: K distinct items of 200 */
	expect(r.coverage[0], 10.0 / 200, "coverage@10");
	expect(r.coverage[3], 100.0 / 200, "coverage@100");
	/* popularity@10: the weights (= ids) of 7, 101 .. 109 */
	expect(r.popularity[0], (7 + (101 + 109) * 9 / 2.0) / 10, "popularity@10");
	rank_acc_release(&a);

	/* A list shorter than K, and a first hit at rank 4: MRR 1/5. */
	uint32_t short_top[] = {9, 8, 6, 5, 3}, p2[] = {3};
	assert_int_equal(rank_acc_init(&a, 10, NULL), 0);
	rank_acc_add(&a, short_top, 5, p2, 1);
	rank_acc_result(&a, &r);
	expect(r.mrr[0], 0.2, "mrr@10, short list");
	expect(r.ndcg[0], l2 / log(6), "ndcg@10, short list");
	expect(r.coverage[3], 0.5, "coverage@100, short list");
	assert_true(isnan(r.popularity[0]));
	rank_acc_release(&a);

	assert_int_equal(rank_acc_init(&a, 10, NULL), 0);
	rank_acc_result(&a, &r);
	assert_true(isnan(r.recall[0]) && isnan(r.ndcg[3]) && r.users == 0);
	rank_acc_release(&a);
}

/* Two accumulators merged give what one gets from every user. */
static void test_merge(void **state)
{
	enum { N = 300, U = 40 };
	struct rank_acc one, part[2];
	struct rank_result r1, r2;
	float score[N], w[N], hs[RANK_KMAX];
	uint32_t top[RANK_KMAX], hi[RANK_KMAX], pos[8];
	struct rng r;
	(void)state;

	for (int i = 0; i < N; i++)
		w[i] = (float)(i % 17);
	assert_int_equal(rank_acc_init(&one, N, w), 0);
	assert_int_equal(rank_acc_init(&part[0], N, w), 0);
	assert_int_equal(rank_acc_init(&part[1], N, w), 0);
	rng_seed(&r, 3, 0);
	for (int u = 0; u < U; u++) {
		uint32_t np = 1 + rng_below(&r, 8), n;
		for (int i = 0; i < N; i++)
			score[i] = (float)rng_uniform(&r);
		for (uint32_t k = 0; k < np; k++) /* ascending, distinct */
			pos[k] = k * 37 + rng_below(&r, 30);
		n = rank_topk(score, N, pos, 1, RANK_KMAX, top, hs, hi);
		rank_acc_add(&one, top, n, pos, np);
		rank_acc_add(&part[u % 2], top, n, pos, np);
	}
	assert_int_equal(rank_acc_merge(&part[0], &part[1]), 0);
	rank_acc_result(&one, &r1);
	rank_acc_result(&part[0], &r2);
	assert_int_equal(r1.users, U);
	for (int q = 0; q < RANK_NK; q++) {
		expect(r2.recall[q], r1.recall[q], "merged recall");
		expect(r2.ndcg[q], r1.ndcg[q], "merged ndcg");
		expect(r2.coverage[q], r1.coverage[q], "merged coverage");
		expect(r2.popularity[q], r1.popularity[q], "merged popularity");
		assert_true(r1.recall[q] > 0 && r1.recall[q] < 1);
	}
	rank_acc_release(&one);
	rank_acc_release(&part[1]);
	assert_int_equal(rank_acc_init(&part[1], N + 1, NULL), 0);
	assert_int_equal(rank_acc_merge(&part[0], &part[1]), HR_EINVAL);
	rank_acc_release(&part[0]);
	rank_acc_release(&part[1]);
}

static void test_loo(void **state)
{
	float neg[] = {0.1f, 0.9f, 0.5f, 0.5f, NAN};
	(void)state;

	assert_int_equal(rank_loo(0.95f, neg, 4), 0);
	assert_int_equal(rank_loo(0.6f, neg, 4), 1);
	assert_int_equal(rank_loo(0.5f, neg, 4), 3); /* ties rank it below */
	assert_int_equal(rank_loo(0.0f, neg, 4), 4);
	assert_int_equal(rank_loo(0.95f, neg, 5), 1); /* a NaN negative counts against */
	assert_int_equal(rank_loo(NAN, neg, 4), 4);
	/* a constant scorer ranks last */
	float same[100];
	for (int i = 0; i < 100; i++)
		same[i] = 0.25f;
	assert_int_equal(rank_loo(0.25f, same, 100), 100);

	struct rank_acc a;
	struct rank_result r;
	assert_int_equal(rank_acc_init(&a, 4, NULL), 0);
	rank_acc_add_loo(&a, 0);   /* HR 1, NDCG 1 */
	rank_acc_add_loo(&a, 3);   /* HR 1, NDCG 1 / log2(5) */
	rank_acc_add_loo(&a, 10);  /* outside the top 10 */
	rank_acc_add_loo(&a, 100); /* last */
	rank_acc_result(&a, &r);
	assert_int_equal(r.loo_users, 4);
	expect(r.loo_hr, 0.5, "loo HR@10");
	expect(r.loo_ndcg, (1 + 1 / log2(5.0)) / 4, "loo NDCG@10");
	assert_true(isnan(r.recall[0])); /* no catalogue ranking added */
	rank_acc_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topk_matches_sort),
		cmocka_unit_test(test_metrics_by_hand),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_loo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
