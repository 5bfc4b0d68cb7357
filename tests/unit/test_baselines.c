/*
 * test_baselines - item-kNN and iALS (models/baselines.h), and the SPD
 * solve under iALS (nn_spd_solve).
 *
 * kNN: similarities and neighbour lists against a brute-force cosine in
 * double over random interactions (negatives ignored, k cut, ties to the
 * lower id); scores of a profile against the sum over its neighbourhoods;
 * unreached items below every reached one, by popularity.
 * iALS: the folded-in factors solve the normal equations (residual in
 * double); the training objective falls with iterations; on planted
 * two-block data the fitted model ranks a user's held-out block items
 * above the other block's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "models/baselines.h"
#include "models/nn/nn.h"

/* Random interactions: n_users x n_items, each pair present with p, label 1 with q. */
static void random_x(struct interactions *x, uint32_t n_users, uint32_t n_items, double p, double q,
		     uint64_t seed)
{
	uint32_t cap = n_users * n_items, n = 0;
	uint32_t *u = malloc(cap * sizeof(uint32_t)), *it = malloc(cap * sizeof(uint32_t));
	uint8_t *lab = malloc(cap);
	struct rng r;

	rng_seed(&r, seed, 7);
	for (uint32_t a = 1; a < n_users; a++)
		for (uint32_t b = 1; b < n_items; b++)
			if (rng_uniform(&r) < p) {
				u[n] = a;
				it[n] = b;
				lab[n++] = rng_uniform(&r) < q;
			}
	assert_int_equal(interactions_build(x, u, it, NULL, lab, n, n_users, n_items), 0);
	free(u);
	free(it);
	free(lab);
}

static int has(const struct interactions *x, uint32_t u, uint32_t i)
{
	for (uint64_t e = x->user_off[u]; e < x->user_off[u + 1]; e++)
		if (x->user_item[e] == i && x->user_label[e] == 1)
			return 1;
	return 0;
}

static void test_knn_against_brute_force(void **state)
{
	struct interactions x;
	struct knn m;
	const uint32_t NU = 40, NI = 30, K = 5;
	(void)state;

	random_x(&x, NU, NI, 0.3, 0.7, 1);
	assert_int_equal(knn_fit(&m, &x, K), 0);
	double cnt[30] = {0};
	for (uint32_t i = 1; i < NI; i++)
		for (uint32_t u = 1; u < NU; u++)
			cnt[i] += has(&x, u, i);
	for (uint32_t i = 1; i < NI; i++) {
		double sim[30] = {0};
		uint32_t n = 0;
		for (uint32_t j = 1; j < NI; j++) {
			double co = 0;
			if (j == i || !cnt[i] || !cnt[j])
				continue;
			for (uint32_t u = 1; u < NU; u++)
				co += has(&x, u, i) && has(&x, u, j);
			sim[j] = co / sqrt(cnt[i] * cnt[j]);
		}
		/* the K largest positive (equal ones in either order: float rounding decides) */
		double bf[30];
		memcpy(bf, sim, sizeof(bf));
		for (uint32_t t = 0; t < K; t++) {
			uint32_t best = 0;
			for (uint32_t j = 1; j < NI; j++)
				if (sim[j] > 0 && (best == 0 || sim[j] > sim[best]))
					best = j;
			if (best == 0)
				break;
			uint32_t got = m.nbr[i * K + t];
			assert_true(fabs(m.sim[i * K + t] - sim[best]) < 1e-6);
			assert_true(got != i && fabs(bf[got] - sim[best]) < 1e-6);
			for (uint32_t s2 = 0; s2 < t; s2++)
				assert_int_not_equal(m.nbr[i * K + s2], got);
			sim[best] = 0;
			n++;
		}
		for (uint32_t t = n; t < K; t++)
			assert_true(m.sim[i * K + t] == 0);
	}
	/* a profile's scores: the sum over its neighbourhoods; unreached below, by popularity */
	uint32_t prof[3] = {2, 5, 11};
	float score[30];
	knn_score(&m, prof, 3, score);
	for (uint32_t j = 1; j < NI; j++) {
		double want = 0;
		for (int p = 0; p < 3; p++)
			for (uint32_t t = 0; t < K; t++)
				if (m.nbr[prof[p] * K + t] == j && m.sim[prof[p] * K + t] > 0)
					want += m.sim[prof[p] * K + t];
		if (want > 0)
			assert_true(fabs(score[j] - want) < 1e-5);
		else
			assert_true(score[j] < -0.4f && score[j] >= -1.0f);
		for (uint32_t k = 1; k < NI; k++)
			if (want == 0 && score[k] < 0 && cnt[k] > cnt[j])
				assert_true(score[k] > score[j]);
	}
	knn_release(&m);
	assert_int_not_equal(knn_fit(&m, &x, 0), 0); /* m owns nothing on failure */
	interactions_release(&x);
}

static void test_spd_solve(void **state)
{
	enum { N = 7 };
	float A[N * N], L[N * N], b[2 * N], x[2 * N];
	struct rng r;
	(void)state;

	rng_seed(&r, 3, 1);
	for (int i = 0; i < N * N; i++)
		L[i] = (float)rng_normal(&r);
	for (int i = 0; i < N; i++) /* A = L L' + I */
		for (int j = 0; j < N; j++) {
			double s = i == j;
			for (int k = 0; k < N; k++)
				s += (double)L[i * N + k] * L[j * N + k];
			A[i * N + j] = (float)s;
		}
	for (int i = 0; i < 2 * N; i++)
		b[i] = x[i] = (float)rng_normal(&r);
	float A2[N * N];
	memcpy(A2, A, sizeof(A));
	assert_int_equal(nn_spd_solve(N, 2, A2, x), 0);
	for (int q = 0; q < 2; q++)
		for (int i = 0; i < N; i++) {
			double s = 0;
			for (int j = 0; j < N; j++)
				s += (double)A[i * N + j] * x[q * N + j];
			assert_true(fabs(s - b[q * N + i]) < 1e-3 * (1 + fabs(b[q * N + i])));
		}
	/* not positive definite: an error, not garbage */
	memset(A2, 0, sizeof(A2));
	A2[0] = -1;
	assert_int_not_equal(nn_spd_solve(N, 1, A2, x), 0);
}

/* sum over users and items of c (p - x.y)^2 + reg (|x|^2 + |y|^2), users folded in. */
static double objective(const struct ials *m, const struct interactions *x, float *scratch)
{
	uint32_t f = m->f, prof[64];
	float *xu = malloc(f * sizeof(float));
	double loss = 0;

	for (size_t k = 0; k < (size_t)m->n_items * f; k++)
		loss += m->reg * (double)m->Y[k] * m->Y[k];
	for (uint32_t u = 0; u < x->n_users; u++) {
		uint32_t n = 0;
		for (uint64_t e = x->user_off[u]; e < x->user_off[u + 1]; e++)
			if (x->user_label[e] == 1)
				prof[n++] = x->user_item[e];
		assert_int_equal(ials_fold_in(m, prof, n, scratch, xu), 0);
		for (uint32_t c = 0; c < f; c++)
			loss += m->reg * (double)xu[c] * xu[c];
		for (uint32_t i = 0; i < m->n_items; i++) {
			double s = 0;
			int p = 0;
			for (uint32_t c = 0; c < f; c++)
				s += (double)xu[c] * m->Y[(size_t)i * f + c];
			for (uint32_t k = 0; k < n; k++)
				p |= prof[k] == i;
			loss += (p ? 1 + m->alpha : 1) * (p - s) * (p - s);
		}
	}
	free(xu);
	return loss;
}

static void test_ials(void **state)
{
	struct interactions x;
	struct ials m;
	struct ials_opts o = {.factors = 4, .iters = 1, .alpha = 5, .reg = 0.5f, .seed = 2};
	(void)state;

	random_x(&x, 30, 25, 0.4, 0.8, 4);
	float *scratch = malloc(1 << 16);
	/* the objective falls with iterations (the user side is solved exactly each time) */
	double prev = INFINITY;
	for (uint32_t it = 1; it <= 8; it *= 2) {
		o.iters = it;
		assert_int_equal(ials_fit(&m, &x, &o), 0);
		double l = objective(&m, &x, scratch);
		assert_true(l < prev + 1e-3 * fabs(prev));
		prev = l;
		ials_release(&m);
	}
	/* a fold-in solves its normal equations */
	o.iters = 3;
	assert_int_equal(ials_fit(&m, &x, &o), 0);
	uint32_t prof[4] = {1, 4, 9, 20}, f = m.f;
	float xu[4];
	assert_int_equal(ials_fold_in(&m, prof, 4, scratch, xu), 0);
	for (uint32_t a = 0; a < f; a++) {
		double lhs = m.reg * xu[a], rhs = 0;
		for (uint32_t i = 0; i < m.n_items; i++) {
			int p = 0;
			for (int k = 0; k < 4; k++)
				p |= prof[k] == i;
			double s = 0;
			for (uint32_t c = 0; c < f; c++)
				s += (double)m.Y[i * f + c] * xu[c];
			lhs += (p ? 1 + m.alpha : 1) * s * m.Y[i * f + a];
			rhs += p ? (1 + m.alpha) * m.Y[i * f + a] : 0;
		}
		assert_true(fabs(lhs - rhs) < 1e-3 * (1 + fabs(rhs)));
	}
	ials_release(&m);
	interactions_release(&x);
	o.factors = 0;
	assert_int_not_equal(ials_fit(&m, &x, &o), 0);
	free(scratch);
}

/* Two blocks of users and items: a user's held-out items of its block rank above the other's. */
static void test_ials_blocks(void **state)
{
	enum { NU = 41, NI = 41 };
	uint32_t u[NU * NI], it[NU * NI], n = 0;
	uint8_t lab[NU * NI];
	struct interactions x;
	struct ials m;
	struct ials_opts o = ials_defaults;
	struct rng r;
	(void)state;

	rng_seed(&r, 9, 1);
	for (uint32_t a = 1; a < NU; a++)
		for (uint32_t b = 1; b < NI; b++)
			if ((a % 2 == b % 2) && rng_uniform(&r) < 0.5) {
				u[n] = a;
				it[n] = b;
				lab[n++] = 1;
			}
	assert_int_equal(interactions_build(&x, u, it, NULL, lab, n, NU, NI), 0);
	o.factors = 4;
	o.reg = 1;
	assert_int_equal(ials_fit(&m, &x, &o), 0);
	float *scratch = malloc(ials_scratch_floats(&m, NI) * sizeof(float)), xu[4], S[NI];
	uint32_t prof[3] = {2, 4, 6}; /* an even user */
	assert_int_equal(ials_fold_in(&m, prof, 3, scratch, xu), 0);
	ials_score(&m, xu, 1, S);
	for (uint32_t a = 8; a < NI; a += 2)
		for (uint32_t b = 1; b < NI; b += 2)
			assert_true(S[a] > S[b]);
	free(scratch);
	ials_release(&m);
	interactions_release(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_knn_against_brute_force),
		cmocka_unit_test(test_spd_solve),
		cmocka_unit_test(test_ials),
		cmocka_unit_test(test_ials_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
