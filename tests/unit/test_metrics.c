/* test_metrics.c - exact AUC (ties, errors) and logloss against hand values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/rng.h"

static double auc_of(const float *s, const float *y, size_t n)
{
	double auc = -1.0;

	assert_int_equal(metric_auc(s, y, n, &auc), 0);
	return auc;
}

static void test_auc_perfect_reversed_tied(void **state)
{
	const float s[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
	const float up[] = {0, 0, 1, 1, 1};
	const float down[] = {1, 1, 0, 0, 0};
	const float flat[] = {0.7f, 0.7f, 0.7f, 0.7f, 0.7f};

	(void)state;
	assert_true(auc_of(s, up, 5) == 1.0);
	assert_true(auc_of(s, down, 5) == 0.0);
	assert_true(auc_of(flat, up, 5) == 0.5);
}

/*
 * Positives 0.4 and 0.8, negatives 0.1 and 0.4: pairs score
 * (0.4>0.1)=1 + (0.4=0.4)=0.5 + (0.8>0.1)=1 + (0.8>0.4)=1 -> 3.5/4.
 */
static void test_auc_one_tie_by_hand(void **state)
{
	const float s[] = {0.1f, 0.4f, 0.4f, 0.8f};
	const float y[] = {0, 1, 0, 1};
	/* Positives 0.2, 0.3; negatives 0.2, 0.6: 0.5 + 0 + 1 + 0 -> 1.5/4. */
	const float s2[] = {0.2f, 0.2f, 0.6f, 0.3f};
	const float y2[] = {1, 0, 0, 1};

	(void)state;
	assert_true(fabs(auc_of(s, y, 4) - 0.875) < 1e-12);
	assert_true(fabs(auc_of(s2, y2, 4) - 0.375) < 1e-12);
}

/* Negative scores, infinities and signed zeros order like the reals. */
static void test_auc_signs_and_zeros(void **state)
{
	const float s[] = {-INFINITY, -3.0f, -0.0f, 0.0f, 2.0f, INFINITY};
	const float y[] = {0, 0, 1, 0, 1, 1};

	(void)state;
	/* Positives -0, 2, inf vs negatives -inf, -3, +0: 8 wins + 1 tie. */
	assert_true(fabs(auc_of(s, y, 6) - 8.5 / 9.0) < 1e-12);
}

/* Random scores on a coarse grid (many ties) against the O(n^2) count. */
static void test_auc_matches_brute_force(void **state)
{
	enum { N = 1500 };
	static float s[N], y[N];
	struct rng r;
	double num = 0.0, np = 0.0, nn = 0.0;

	(void)state;
	rng_seed(&r, 7, 0);
	for (int i = 0; i < N; i++) {
		s[i] = (float)((int)rng_below(&r, 40) - 20) / 8.0f;
		y[i] = rng_uniform(&r) < 0.3 + 0.02 * s[i] ? 1.0f : 0.0f;
	}
	for (int i = 0; i < N; i++) {
		if (y[i] != 1.0f)
			continue;
		np += 1.0;
		for (int j = 0; j < N; j++) {
			if (y[j] != 0.0f)
				continue;
			num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
		}
	}
	nn = N - np;
	assert_true(fabs(auc_of(s, y, N) - num / (np * nn)) < 1e-12);
}

static void test_auc_errors(void **state)
{
	const float s[] = {0.1f, 0.2f, 0.3f};
	const float ones[] = {1, 1, 1};
	const float zeros[] = {0, 0, 0};
	const float bad[] = {0, 0.5f, 1};
	const float nan_s[] = {0.1f, NAN, 0.3f};
	const float mixed[] = {0, 1, 1};
	double auc = 42.0;

	(void)state;
	assert_int_equal(metric_auc(s, ones, 3, &auc), HR_EINVAL);
	assert_int_equal(metric_auc(s, zeros, 3, &auc), HR_EINVAL);
	assert_int_equal(metric_auc(s, ones, 0, &auc), HR_EINVAL);
	assert_int_equal(metric_auc(s, bad, 3, &auc), HR_EINVAL);
	assert_int_equal(metric_auc(nan_s, mixed, 3, &auc), HR_EINVAL);
	assert_true(auc == 42.0);
	assert_non_null(hr_errmsg());
}

static void test_logloss(void **state)
{
	const float p[] = {0.9f, 0.2f};
	const float y[] = {1, 0};
	const float p_clip[] = {0.0f, 1.0f};
	const float y_clip[] = {1, 1};
	/* -(ln 0.9 + ln 0.8) / 2 */
	double want = (0.105360515657826 + 0.22314355131421) / 2.0;
	/* ln(1e-7) for the miss; -ln(1 - 1e-7) for the clipped hit */
	double want_clip = (16.11809565095832 + 1.00000005e-7) / 2.0;

	(void)state;
	assert_true(fabs(metric_logloss(p, y, 2) - want) < 1e-6);
	assert_true(fabs(metric_logloss(p_clip, y_clip, 2) - want_clip) < 1e-6);
	assert_true(isnan(metric_logloss(p, y, 0)));
}

static void test_gauc(void **state)
{
	/* user 1: perfect (auc 1, 3 rows); user 2: reversed (auc 0, 2 rows);
	 * user 3: one class only, left out.  Weighted: (3 * 1 + 2 * 0) / 5. */
	const float score[] = {0.9f, 0.1f, 0.8f, 0.2f, 0.7f, 0.5f, 0.4f};
	const float label[] = {1, 0, 1, 1, 0, 1, 1};
	const uint32_t user[] = {1, 1, 1, 2, 2, 3, 3};
	double g = -1;
	size_t used = 0;
	(void)state;
	assert_int_equal(metric_gauc(score, label, user, 7, &g, &used), 0);
	assert_int_equal(used, 2);
	assert_float_equal(g, 0.6, 1e-12);
	assert_int_equal(metric_gauc(score + 5, label + 5, user + 5, 2, &g, &used), HR_EINVAL);
	assert_int_equal(used, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gauc),
		cmocka_unit_test(test_auc_perfect_reversed_tied),
		cmocka_unit_test(test_auc_one_tie_by_hand),
		cmocka_unit_test(test_auc_signs_and_zeros),
		cmocka_unit_test(test_auc_matches_brute_force),
		cmocka_unit_test(test_auc_errors),
		cmocka_unit_test(test_logloss),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
