/* blas.c - OpenBLAS kernel choice, verification, threads, GFLOP/s probe. */
#include "models/nn/blas.h"

#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/rng.h"
#include "models/nn/nn.h"

unsigned nn_cpu_features(void)
{
	unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
	/* libgcc / compiler-rt also check that the OS saves the AVX state. */
	__builtin_cpu_init();
	f |= __builtin_cpu_supports("avx2") ? NN_CPU_AVX2 : 0;
	f |= __builtin_cpu_supports("fma") ? NN_CPU_FMA : 0;
	f |= __builtin_cpu_supports("avx512f") ? NN_CPU_AVX512F : 0;
	f |= __builtin_cpu_supports("avx512bw") ? NN_CPU_AVX512BW : 0;
	f |= __builtin_cpu_supports("avx512dq") ? NN_CPU_AVX512DQ : 0;
	f |= __builtin_cpu_supports("avx512vl") ? NN_CPU_AVX512VL : 0;
	f |= __builtin_cpu_supports("avx512cd") ? NN_CPU_AVX512CD : 0;
#endif
	return f;
}

const char *nn_blas_corename(void)
{
	return openblas_get_corename();
}

void nn_blas_single_thread(void)
{
	openblas_set_num_threads(1);
}

/* Kernel classes: 2 AVX-512, 1 AVX2+FMA, 0 anything older or unknown. */
static int core_class(const char *core)
{
	static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
	static const char *const avx2[] = {"Haswell", "Zen"};

	if (!core)
		return 0;
	for (size_t i = 0; i < sizeof(avx512) / sizeof(avx512[0]); i++)
		if (strcmp(core, avx512[i]) == 0)
			return 2;
	for (size_t i = 0; i < sizeof(avx2) / sizeof(avx2[0]); i++)
		if (strcmp(core, avx2[i]) == 0)
			return 1;
	return 0;
}

static int cpu_class(unsigned cpu)
{
	if ((cpu & NN_CPU_SKYLAKEX) == NN_CPU_SKYLAKEX)
		return 2;
	if ((cpu & NN_CPU_HASWELL) == NN_CPU_HASWELL)
		return 1;
	return 0;
}

const char *nn_blas_pick(const char *corename, unsigned cpu, const char *env)
{
	static const char *const best[] = {NULL, "Haswell", "SkylakeX"};

	if (env && *env)
		return NULL;
	int want = cpu_class(cpu);
	if (core_class(corename) >= want)
		return NULL;
	return best[want];
}

const char *nn_blas_fallback(const char *corename, unsigned cpu)
{
	switch (core_class(corename)) {
	case 2: return cpu_class(cpu) >= 1 ? "Haswell" : "Prescott";
	case 1: return "Prescott";
	default: return NULL;
	}
}

static void fill_uniform(float *x, size_t n, struct rng *r)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(2.0 * rng_uniform(r) - 1.0);
}

/* One shape and transpose case; A, B, C hold random data of enough size. */
static int verify_one(bool ta, bool tb, int M, int N, int K, const float *A, const float *B,
		      const float *C0, float *C, float *R)
{
	const float alpha = 1.25f, beta = -0.5f;
	int lda = ta ? M : K, ldb = tb ? K : N;

	memcpy(C, C0, (size_t)M * N * sizeof(float));
	memcpy(R, C0, (size_t)M * N * sizeof(float));
	nn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
	nn_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, N);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double mag = fabs((double)beta * C0[(size_t)i * N + j]);
			for (int k = 0; k < K; k++) {
				float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
				float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
				mag += fabs((double)alpha * a * b);
			}
			double c = C[(size_t)i * N + j], r = R[(size_t)i * N + j];
			double bound = (K + 4) * (double)FLT_EPSILON * mag;
			if (!isfinite(c) || fabs(c - r) > bound)
				return hr_error(
					HR_EINVAL,
					"openblas core '%s': sgemm%s%s %dx%dx%d gives %g at "
					"(%d,%d), reference %g (bound %.3g)",
					nn_blas_corename(), ta ? " A^T" : "", tb ? " B^T" : "", M,
					N, K, c, i, j, r, bound);
		}
	return 0;
}

int nn_blas_verify(uint64_t seed)
{
	static const int shapes[][3] = {
		{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {16, 64, 64}, {67, 75, 301}};
	enum { MAXD = 301 };
	float *A = malloc(sizeof(float) * MAXD * MAXD), *B = malloc(sizeof(float) * MAXD * MAXD);
	float *C0 = malloc(sizeof(float) * MAXD * MAXD), *C = malloc(sizeof(float) * MAXD * MAXD);
	float *R = malloc(sizeof(float) * MAXD * MAXD);
	struct rng r;
	int rc = 0;

	if (!A || !B || !C0 || !C || !R) {
		rc = hr_error(HR_ENOMEM, "cannot allocate the sgemm verification matrices");
		goto fail;
	}
	rng_seed(&r, seed, 0);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]) && rc == 0; s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		fill_uniform(A, (size_t)M * K, &r);
		fill_uniform(B, (size_t)K * N, &r);
		fill_uniform(C0, (size_t)M * N, &r);
		for (int t = 0; t < 4 && rc == 0; t++)
			rc = verify_one(t & 1, t & 2, M, N, K, A, B, C0, C, R);
	}
fail:
	free(R);
	free(C);
	free(C0);
	free(B);
	free(A);
	return rc;
}

/* Re-executes this program with OPENBLAS_CORETYPE=core; returns on failure. */
static void reexec(char **argv, const char *core, const char *marker)
{
	if (!argv || !argv[0])
		return;
	if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv(NN_BLAS_MARKER, marker, 1) != 0)
		return;
	fflush(NULL);
	execv("/proc/self/exe", argv);
	log_warn("openblas: cannot re-execute '/proc/self/exe': %s; keeping core '%s'",
		 strerror(errno), nn_blas_corename());
	unsetenv("OPENBLAS_CORETYPE");
	unsetenv(NN_BLAS_MARKER);
}

int nn_blas_choose_kernel(char **argv)
{
	const char *core = nn_blas_corename();
	const char *env = getenv("OPENBLAS_CORETYPE");
	const char *marker = getenv(NN_BLAS_MARKER);
	unsigned cpu = nn_cpu_features();
	bool set = env && *env;
	bool ours = set && marker;  /* our re-exec: the variable is hogrec's choice */
	bool user = set && !marker; /* the user's choice: never overridden */
	int rc;

	if (!set) {
		const char *pick = nn_blas_pick(core, cpu, NULL);
		if (pick && argv) {
			log_info("openblas: core '%s' is a generic fallback on this cpu; "
				 "re-executing with OPENBLAS_CORETYPE=%s",
				 core, pick);
			reexec(argv, pick, "1");
		} else if (pick) {
			log_info("openblas: core '%s' is a generic fallback on this cpu; "
				 "OPENBLAS_CORETYPE=%s would be faster",
				 core, pick);
		}
	}
	rc = nn_blas_verify(0x6e6e626c6173ULL);
	if (rc == 0) {
		log_info("openblas: core '%s' (%s), sgemm verified", core,
			 ours ? "chosen by hogrec" :
			 user ? "OPENBLAS_CORETYPE from the environment" :
				"openblas's own choice");
		return 0;
	}
	if (rc != HR_EINVAL)
		return rc;
	log_error("%s", hr_errmsg());
	const char *fb = nn_blas_fallback(core, cpu);
	if (fb && argv && !user && !(ours && strcmp(marker, "2") == 0)) {
		log_warn("openblas: core '%s' failed verification; re-executing with "
			 "OPENBLAS_CORETYPE=%s",
			 core, fb);
		reexec(argv, fb, "2");
	}
	return rc;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double nn_sgemm_gflops_mnk(int M, int N, int K, double seconds)
{
	float *A = malloc(sizeof(float) * (size_t)M * K);
	float *B = malloc(sizeof(float) * (size_t)K * N);
	float *C = malloc(sizeof(float) * (size_t)M * N);
	double gflops = -1.0;
	struct rng r;

	if (!A || !B || !C)
		goto fail;
	rng_seed(&r, 1, 0);
	fill_uniform(A, (size_t)M * K, &r);
	fill_uniform(B, (size_t)K * N, &r);
	nn_sgemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N); /* warm-up */
	long calls = 0;
	double t0 = now_seconds(), t;
	do {
		nn_sgemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
		calls++;
		t = now_seconds() - t0;
	} while (t < seconds);
	gflops = 2.0 * M * N * K * (double)calls / t * 1e-9;
fail:
	free(C);
	free(B);
	free(A);
	return gflops;
}

double nn_sgemm_gflops(int n, double seconds)
{
	return nn_sgemm_gflops_mnk(n, n, n, seconds);
}
