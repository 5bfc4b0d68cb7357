/*
 * test_nn_blas.c - nn_sgemm (the OpenBLAS call site) against nn_sgemm_ref,
 * the kernel-choice decision functions, and verification of whatever
 * OpenBLAS kernel is active.  Never re-executes and never changes
 * OPENBLAS_CORETYPE (the sandbox sets it; a user may too).
 */
#include <cblas.h>
#include <pthread.h>
#include <float.h>
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
#include "common/log.h"
#include "common/rng.h"
#include "models/nn/blas.h"
#include "models/nn/nn.h"

#define SENTINEL 12345.0f

static void fill(float *x, size_t n, struct rng *r)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(2.0 * rng_uniform(r) - 1.0);
}

/*
 * One case, with padded leading dimensions: C from nn_sgemm and from the
 * reference agree within (K + 4) FLT_EPSILON (|alpha| sum |a b| + |beta c|),
 * twice the classic rounding bound of a length-K float dot product, and the
 * padding columns of C are untouched.  small: nn_sgemm_small instead of
 * nn_sgemm (no transposes, alpha 1); beta 0 then starts from NaN in C,
 * which must not be read.
 */
static void check_case_of(bool small, bool ta, bool tb, int M, int N, int K, float alpha,
			  float beta, int pad, struct rng *r)
{
	int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
	size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
	size_t nc = (size_t)M * ldc;
	float *A = malloc(sizeof(float) * (na + 1)), *B = malloc(sizeof(float) * (nb + 1));
	float *C = malloc(sizeof(float) * (nc + 1)), *R = malloc(sizeof(float) * (nc + 1));
	float *C0 = malloc(sizeof(float) * (nc + 1));

	assert_non_null(A);
	assert_non_null(B);
	assert_non_null(C);
	assert_non_null(R);
	assert_non_null(C0);
	fill(A, na, r);
	fill(B, nb, r);
	fill(C0, nc, r);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < ldc; j++)
			if (j >= N)
				C0[(size_t)i * ldc + j] = SENTINEL;
			else if (small && beta == 0.0f)
				C0[(size_t)i * ldc + j] = NAN;
	memcpy(C, C0, sizeof(float) * nc);
	memcpy(R, C0, sizeof(float) * nc);
	if (small) {
		assert_true(!ta && !tb && alpha == 1.0f);
		nn_sgemm_small(M, N, K, A, lda, B, ldb, beta, C, ldc);
	} else {
		nn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
	}
	nn_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++) {
			double mag = beta == 0.0f ? 0.0 :
						    fabs((double)beta * C0[(size_t)i * ldc + j]);
			for (int k = 0; k < K; k++) {
				double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
				double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
				mag += fabs(alpha * a * b);
			}
			double c = C[(size_t)i * ldc + j], ref = R[(size_t)i * ldc + j];
			if (!(fabs(c - ref) <= (K + 4) * (double)FLT_EPSILON * mag))
				fail_msg("sgemm ta=%d tb=%d %dx%dx%d alpha=%g beta=%g: C[%d][%d] = "
					 "%.9g, reference %.9g",
					 ta, tb, M, N, K, alpha, beta, i, j, c, ref);
		}
		for (int j = N; j < ldc; j++) {
			assert_true(C[(size_t)i * ldc + j] == SENTINEL);
			assert_true(R[(size_t)i * ldc + j] == SENTINEL);
		}
	}
	free(C0);
	free(R);
	free(C);
	free(B);
	free(A);
}

static void check_case(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int pad,
		       struct rng *r)
{
	check_case_of(false, ta, tb, M, N, K, alpha, beta, pad, r);
}

static void test_sgemm_matches_reference(void **state)
{
	/* the last rows: shapes of nn_sgemm's register tiles (gemm.c), A^T B
	 * across its k-blocks of 256, widths padded to whole vectors */
	static const int sizes[][3] = {{1, 1, 1},     {1, 7, 3},    {5, 1, 9},    {3, 4, 1},
				       {7, 5, 3},     {17, 16, 33}, {33, 65, 17}, {64, 31, 128},
				       {2, 300, 300}, {9, 48, 600}, {70, 64, 40}, {5, 208, 257},
				       {70, 50, 33},  {130, 100, 7}};
	static const float ab[][2] = {{1, 0}, {1, 1}, {-0.5f, 0.25f}};
	struct rng r;

	(void)state;
	rng_seed(&r, 2024, 0);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (int t = 0; t < 4; t++)
			for (size_t k = 0; k < sizeof(ab) / sizeof(ab[0]); k++)
				check_case(t & 1, t & 2, sizes[s][0], sizes[s][1], sizes[s][2],
					   ab[k][0], ab[k][1], (int)(s % 3) * 2, &r);
}

/*
 * nn_sgemm_small: every tile shape (4 rows and the 1-row remainder; 4, 3,
 * 2 and 1 vectors of columns), the recurrences' shapes, padded strides,
 * and N not a multiple of 16 (nn_sgemm's path).
 */
static void test_sgemm_small_matches_reference(void **state)
{
	static const int M[] = {1, 3, 4, 9, 64}, N[] = {16, 32, 48, 64, 80, 112, 192, 20},
			 K[] = {1, 7, 64, 192};
	struct rng r;
	int n = 0;

	(void)state;
	rng_seed(&r, 2025, 0);
	for (size_t i = 0; i < sizeof(M) / sizeof(M[0]); i++)
		for (size_t j = 0; j < sizeof(N) / sizeof(N[0]); j++)
			for (size_t k = 0; k < sizeof(K) / sizeof(K[0]); k++, n++)
				check_case_of(true, false, false, M[i], N[j], K[k], 1.0f,
					      (float)(n & 1), n % 3 * 5, &r);
	check_case_of(true, false, false, 0, 16, 8, 1.0f, 0.0f, 0, &r);
	check_case_of(true, false, false, 256, 192, 64, 1.0f, 1.0f, 0, &r);
}

/* BLAS semantics at the edges: beta 0 ignores C, alpha 0 / K 0 ignore A, B. */
static void test_sgemm_edges(void **state)
{
	float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1};
	float C[4], R[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		C[i] = R[i] = NAN;
	nn_sgemm(false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
	nn_sgemm_ref(false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, R, 2);
	/* A (2,3) = [1 2 3; 4 5 6], B (3,2) = [1 0; 0 1; 1 1] */
	const float want[4] = {4, 5, 10, 11};
	for (int i = 0; i < 4; i++)
		assert_true(C[i] == want[i] && R[i] == want[i]);
	/* K == 0: C = beta C, with lda = ldb = 0 accepted. */
	nn_sgemm(false, false, 2, 2, 0, 1.0f, NULL, 0, NULL, 2, 0.5f, C, 2);
	nn_sgemm_ref(false, false, 2, 2, 0, 1.0f, NULL, 0, NULL, 2, 0.5f, R, 2);
	for (int i = 0; i < 4; i++)
		assert_true(C[i] == want[i] * 0.5f && R[i] == C[i]);
	nn_sgemm(false, false, 2, 2, 0, 1.0f, NULL, 0, NULL, 2, 0.0f, C, 2);
	for (int i = 0; i < 4; i++)
		assert_true(C[i] == 0.0f);
	/* alpha == 0: A and B are not read (NaN there does not propagate). */
	A[0] = NAN;
	C[0] = 2.0f;
	R[0] = 2.0f;
	nn_sgemm(false, false, 1, 1, 3, 0.0f, A, 3, B, 2, 1.0f, C, 2);
	nn_sgemm_ref(false, false, 1, 1, 3, 0.0f, A, 3, B, 2, 1.0f, R, 2);
	assert_true(C[0] == 2.0f && R[0] == 2.0f);
	/* M == 0 or N == 0: nothing is touched. */
	nn_sgemm(false, false, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, NULL, 2);
	nn_sgemm(false, false, 2, 0, 3, 1.0f, A, 3, B, 0, 0.0f, C, 0);
	assert_true(C[0] == 2.0f);
}

/* The active kernel (whatever OPENBLAS_CORETYPE or OpenBLAS chose). */
static void test_active_kernel_verifies(void **state)
{
	const char *core = nn_blas_corename();

	(void)state;
	assert_non_null(core);
	assert_true(core[0] != '\0');
	print_message("openblas core '%s', cpu features 0x%x\n", core, nn_cpu_features());
	for (uint64_t seed = 1; seed <= 3; seed++)
		if (nn_blas_verify(seed) != 0)
			fail_msg("%s", hr_errmsg());
	nn_blas_single_thread();
	assert_int_equal(openblas_get_num_threads(), 1);
	/* Single-threaded after the call; still correct. */
	assert_int_equal(nn_blas_verify(4), 0);
	assert_true(nn_sgemm_gflops(48, 0.005) > 0.0);
	assert_true(nn_sgemm_gflops_mnk(8, 12, 5, 0.001) > 0.0);
}

/* Workers call nn_sgemm concurrently (single-threaded OpenBLAS each). */
static void *verify_thread(void *arg)
{
	uintptr_t seed = (uintptr_t)arg;
	int rc = 0;

	for (int i = 0; i < 3 && rc == 0; i++)
		rc = nn_blas_verify(seed * 10 + (uintptr_t)i);
	return (void *)(intptr_t)rc;
}

static void test_sgemm_concurrent(void **state)
{
	enum { T = 4 };
	pthread_t th[T];

	(void)state;
	nn_blas_single_thread();
	for (uintptr_t t = 0; t < T; t++)
		assert_int_equal(pthread_create(&th[t], NULL, verify_thread, (void *)(t + 1)), 0);
	for (int t = 0; t < T; t++) {
		void *rc;
		assert_int_equal(pthread_join(th[t], &rc), 0);
		assert_int_equal((intptr_t)rc, 0);
	}
}

/* A copy of getenv(name), or NULL. */
static char *env_copy(const char *name)
{
	const char *v = getenv(name);
	return v ? strdup(v) : NULL;
}

static void assert_env_is(const char *name, const char *want)
{
	const char *v = getenv(name);

	if (want == NULL)
		assert_null(v);
	else
		assert_string_equal(v ? v : "(unset)", want);
}

/* With argv NULL the start-up call decides and verifies but never execs,
 * and leaves the environment as it found it. */
static void test_choose_kernel_without_reexec(void **state)
{
	char *core = env_copy("OPENBLAS_CORETYPE"), *marker = env_copy(NN_BLAS_MARKER);

	(void)state;
	log_init("test_nn_blas", LOG_WARN);
	assert_int_equal(nn_blas_choose_kernel(NULL), 0);
	assert_env_is("OPENBLAS_CORETYPE", core);
	assert_env_is(NN_BLAS_MARKER, marker);
	free(marker);
	free(core);
}

#define SKX NN_CPU_SKYLAKEX
#define HSW NN_CPU_HASWELL

static void expect_pick(const char *core, unsigned cpu, const char *env, const char *want)
{
	const char *got = nn_blas_pick(core, cpu, env);

	if (want == NULL ? got != NULL : got == NULL || strcmp(got, want) != 0)
		fail_msg("nn_blas_pick('%s', 0x%x, '%s') = '%s', want '%s'", core ? core : "(null)",
			 cpu, env ? env : "(null)", got ? got : "(null)", want ? want : "(null)");
}

static void test_pick(void **state)
{
	(void)state;
	/* Generic kernels on capable CPUs: the best class the CPU runs. */
	expect_pick("Prescott", SKX, NULL, "SkylakeX");
	expect_pick("Core2", HSW, NULL, "Haswell");
	expect_pick("Nehalem", HSW, NULL, "Haswell");
	expect_pick("Sandybridge", SKX, NULL, "SkylakeX");
	expect_pick("Unknown", HSW, NULL, "Haswell");
	expect_pick(NULL, SKX, NULL, "SkylakeX");
	/* An AVX2 kernel on an AVX-512 CPU: SkylakeX measured ~1.9x Haswell. */
	expect_pick("Haswell", SKX, NULL, "SkylakeX");
	expect_pick("Zen", SKX, NULL, "SkylakeX");
	/* Already the best class. */
	expect_pick("Haswell", HSW, NULL, NULL);
	expect_pick("Zen", HSW, NULL, NULL);
	expect_pick("SkylakeX", SKX, NULL, NULL);
	expect_pick("Cooperlake", SKX, NULL, NULL);
	expect_pick("SapphireRapids", SKX, NULL, NULL);
	/* The user's OPENBLAS_CORETYPE wins, whatever it is; empty = unset. */
	expect_pick("Prescott", SKX, "Prescott", NULL);
	expect_pick("Haswell", SKX, "Haswell", NULL);
	expect_pick("Prescott", SKX, "", "SkylakeX");
	/* CPUs without the features: nothing better to pick. */
	expect_pick("Prescott", 0, NULL, NULL);
	expect_pick("Prescott", NN_CPU_AVX2, NULL, NULL); /* no FMA */
	expect_pick("Prescott", NN_CPU_FMA, NULL, NULL);
	/* AVX-512 foundation without VL/BW/DQ (Knights Landing) is Haswell class. */
	expect_pick("Prescott", HSW | NN_CPU_AVX512F | NN_CPU_AVX512CD, NULL, "Haswell");
	expect_pick("Haswell", SKX & ~(unsigned)NN_CPU_AVX512VL, NULL, NULL);
}

static void test_fallback(void **state)
{
	(void)state;
	assert_string_equal(nn_blas_fallback("SkylakeX", SKX), "Haswell");
	assert_string_equal(nn_blas_fallback("Cooperlake", SKX), "Haswell");
	assert_string_equal(nn_blas_fallback("SkylakeX", 0), "Prescott");
	assert_string_equal(nn_blas_fallback("Haswell", HSW), "Prescott");
	assert_string_equal(nn_blas_fallback("Zen", SKX), "Prescott");
	assert_null(nn_blas_fallback("Prescott", SKX));
	assert_null(nn_blas_fallback(NULL, SKX));
}

/* Feature bits are consistent with what this binary can ask the CPU. */
static void test_cpu_features(void **state)
{
	unsigned f = nn_cpu_features();

	(void)state;
	assert_true((f & ~(unsigned)(SKX)) == 0);
	if (f & NN_CPU_AVX512VL)
		assert_true(f & NN_CPU_AVX512F);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sgemm_matches_reference),
		cmocka_unit_test(test_sgemm_edges),
		cmocka_unit_test(test_sgemm_small_matches_reference),
		cmocka_unit_test(test_active_kernel_verifies),
		cmocka_unit_test(test_sgemm_concurrent),
		cmocka_unit_test(test_choose_kernel_without_reexec),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_cpu_features),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
