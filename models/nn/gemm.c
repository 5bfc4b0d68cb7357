/* gemm.c - the one cblas_sgemm call site, the register tiles beside it, the
 * reference, the linear layer. */
#include "models/nn/nn.h"

#include <cblas.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"

/* Shape checks shared by nn_sgemm and nn_sgemm_ref (BLAS's own rules). */
static void sgemm_check(bool ta, bool tb, int M, int N, int K, const float *A, int lda,
			const float *B, int ldb, const float *C, int ldc)
{
	int acols = ta ? M : K, bcols = tb ? K : N;

	HR_ASSERT(M >= 0 && N >= 0 && K >= 0);
	HR_ASSERT(lda >= acols && ldb >= bcols && ldc >= N);
	HR_ASSERT((M == 0 || N == 0) || C != NULL);
	HR_ASSERT(M == 0 || N == 0 || K == 0 || (A != NULL && B != NULL));
}

/* C = beta * C over (M, N); beta == 0 writes zeros without reading C. */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++) {
		float *c = C + (size_t)i * ldc;
		if (beta == 0.0f)
			memset(c, 0, (size_t)N * sizeof(float));
		else if (beta != 1.0f)
			for (int j = 0; j < N; j++)
				c[j] *= beta;
	}
}

/*
 * The register tiles: 4 rows x 64 columns of C (16 AVX-512 accumulators),
 * k innermost: each k loads 4 vectors of B's row k and broadcasts 4
 * elements of A.  No packing: B's rows are read in place (a layer's
 * weights, or a recurrence's, stay in L1/L2 while A's rows stream past),
 * and C is written once, without BLAS's zeroing pass.
 */
typedef float sg_v16 __attribute__((vector_size(64)));
#define SG_LOAD(v, p) memcpy(&(v), (p), sizeof(sg_v16))
#define SG_STORE(p, v) memcpy((p), &(v), sizeof(sg_v16))

/*
 * AVX-512 only: the tiles' 16 accumulators of 16 floats are half the
 * register file there; narrower ISAs would spill them (AVX2: 3 GFLOP/s,
 * where OpenBLAS's Haswell kernel does 40), so there nn_sgemm keeps
 * OpenBLAS.  Built for AVX-512F whatever the build's baseline, called
 * only where the CPU has it.
 */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SG_TARGET __attribute__((target("avx512f")))
static bool sg_cpu(void)
{
	return __builtin_cpu_supports("avx512f");
}
#else
#define SG_TARGET
static bool sg_cpu(void)
{
	return false;
}
#endif

/* Rows [0, R) and V vectors of columns of C += or = A B, A's element (r, k)
 * at A[r sa + k sk] (sa = lda, sk = 1, or transposed: sa = 1, sk = lda).
 * R, V and the strides' form are constants where this is inlined, so the
 * accumulators are registers. */
static inline __attribute__((always_inline)) void sg_tile(int R, int V, int K, const float *A,
							  int sa, int sk, const float *B, int ldb,
							  float beta, float *C, int ldc)
{
	sg_v16 acc[4][4], b[4];

	for (int r = 0; r < R; r++)
		for (int v = 0; v < V; v++)
			acc[r][v] = (sg_v16){0};
	for (int k = 0; k < K; k++) {
		const float *bk = B + (size_t)k * ldb;
		for (int v = 0; v < V; v++)
			SG_LOAD(b[v], bk + 16 * v);
		for (int r = 0; r < R; r++) {
			float a = A[(size_t)r * sa + (size_t)k * sk];
			for (int v = 0; v < V; v++)
				acc[r][v] += a * b[v];
		}
	}
	for (int r = 0; r < R; r++)
		for (int v = 0; v < V; v++) {
			float *c = C + (size_t)r * ldc + 16 * v;
			if (beta != 0.0f) {
				sg_v16 old;
				SG_LOAD(old, c);
				acc[r][v] += old;
			}
			SG_STORE(c, acc[r][v]);
		}
}

/* Every row of one column tile of V vectors. */
static inline __attribute__((always_inline)) void sg_cols(int V, int M, int K, const float *A,
							  int sa, int sk, const float *B, int ldb,
							  float beta, float *C, int ldc)
{
	int i = 0;

	for (; i + 4 <= M; i += 4)
		sg_tile(4, V, K, A + (size_t)i * sa, sa, sk, B, ldb, beta, C + (size_t)i * ldc,
			ldc);
	for (; i < M; i++)
		sg_tile(1, V, K, A + (size_t)i * sa, sa, sk, B, ldb, beta, C + (size_t)i * ldc,
			ldc);
}

/* C = A B + beta C over whole column tiles (N a multiple of 16). */
static inline __attribute__((always_inline)) void sg_block(int M, int N, int K, const float *A,
							   int sa, int sk, const float *B, int ldb,
							   float beta, float *C, int ldc)
{
	int j = 0;

	for (; j + 64 <= N; j += 64)
		sg_cols(4, M, K, A, sa, sk, B + j, ldb, beta, C + j, ldc);
	switch ((N - j) / 16) {
	case 3: sg_cols(3, M, K, A, sa, sk, B + j, ldb, beta, C + j, ldc); break;
	case 2: sg_cols(2, M, K, A, sa, sk, B + j, ldb, beta, C + j, ldc); break;
	case 1: sg_cols(1, M, K, A, sa, sk, B + j, ldb, beta, C + j, ldc); break;
	default: break;
	}
}

enum { SG_KC = 256 }; /* A^T B: the k-block whose rows of B stay in L2 */

/*
 * C = op(A) B + beta C, beta 0 or 1.  op(A) = A: the tall-skinny products
 * (many rows of A by a small B).  op(A) = A^T, A stored (K, M): the
 * weights' gradients (a small C summed over many rows), K in blocks of
 * SG_KC rows of A and B, C accumulating from the second block on.
 */
SG_TARGET
static void sgemm_tiles(bool ta, int M, int N, int K, const float *A, int lda, const float *B,
			int ldb, float beta, float *C, int ldc)
{
	if (!ta) {
		sg_block(M, N, K, A, lda, 1, B, ldb, beta, C, ldc);
		return;
	}
	for (int k0 = 0; k0 < K; k0 += SG_KC) {
		int kc = K - k0 < SG_KC ? K - k0 : SG_KC;
		sg_block(M, N, kc, A + (size_t)k0 * lda, 1, lda, B + (size_t)k0 * ldb, ldb,
			 k0 == 0 ? beta : 1.0f, C, ldc);
	}
}

enum { SG_MAX_B = 16384 }; /* floats of B (or C) the tiles take; their stack copies */
enum { SG_ROWS = 32 };     /* rows of C per pass of the padded path */

/* The padded width of N: whole vectors. */
static int sg_pad(int N)
{
	return (N + 15) / 16 * 16;
}

/*
 * The products nn_sgemm gives the tiles instead of OpenBLAS: alpha 1, beta
 * 0 or 1, and
 * - A B or A B^T with B at most SG_MAX_B floats (it stays in L2; B^T is
 *   copied to the stack first, worth it from a few rows of A; N not a
 *   multiple of 16: padded, sg_run), or
 * - A^T B with N a multiple of 16 and C at most SG_MAX_B floats.
 * On the models' shapes (a batch's or a sequence's rows by a layer's
 * weights, and the weights' gradients over those rows) OpenBLAS 0.3.21
 * packs both operands and zeroes C on every call: 20-30 GFLOP/s on one
 * SkylakeX core where the tiles reach 70-145 (issue 11's DIEN profile).
 * Only on AVX-512 CPUs (sg_cpu).
 */
static bool sg_takes(bool ta, bool tb, int M, int N, int K, float alpha, float beta)
{
	if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f) || K <= 0 || N <= 0 || !sg_cpu())
		return false;
	if (ta)
		return !tb && N % 16 == 0 && (long)M * N <= SG_MAX_B;
	if (N % 16 == 0)
		return (long)N * K <= SG_MAX_B && (!tb || M >= 8);
	/* other widths: B copied with zero columns to whole vectors, C through
	 * a stack block of SG_ROWS rows (worth the copies from a few blocks) */
	return (long)sg_pad(N) * K <= SG_MAX_B && sg_pad(N) * SG_ROWS <= SG_MAX_B &&
	       M >= 2 * SG_ROWS;
}

/* op(B) (K, N) into bt (K, Np), columns N .. Np - 1 zero. */
static void sg_copy_b(bool tb, int N, int K, const float *B, int ldb, int Np, float *bt)
{
	for (int k = 0; k < K; k++) {
		float *row = bt + (size_t)k * Np;
		for (int n = 0; n < N; n++)
			row[n] = tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
		for (int n = N; n < Np; n++)
			row[n] = 0.0f;
	}
}

/*
 * A call sg_takes accepted.  Its own function, not inlined, so that the
 * stack copies (up to 128 KB) are set up only for the tiles' calls, not
 * for every nn_sgemm.  N not a multiple of 16: B copied to bt with zero
 * columns, each block of SG_ROWS rows of C computed into ct, then its N
 * columns stored (or added).
 */
static __attribute__((noinline)) void sg_run(bool ta, bool tb, int M, int N, int K, const float *A,
					     int lda, const float *B, int ldb, float beta, float *C,
					     int ldc)
{
	float bt[SG_MAX_B], ct[SG_MAX_B];
	int Np = sg_pad(N);

	if (Np == N) {
		if (tb) { /* B^T (K, N), dense */
			sg_copy_b(true, N, K, B, ldb, N, bt);
			B = bt;
			ldb = N;
		}
		sgemm_tiles(ta, M, N, K, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	sg_copy_b(tb, N, K, B, ldb, Np, bt);
	for (int i0 = 0; i0 < M; i0 += SG_ROWS) {
		int m = M - i0 < SG_ROWS ? M - i0 : SG_ROWS;
		sgemm_tiles(false, m, Np, K, A + (size_t)i0 * lda, lda, bt, Np, 0.0f, ct, Np);
		for (int i = 0; i < m; i++) {
			float *c = C + (size_t)(i0 + i) * ldc;
			const float *t = ct + (size_t)i * Np;
			if (beta == 0.0f)
				memcpy(c, t, (size_t)N * sizeof(float));
			else
				for (int n = 0; n < N; n++)
					c[n] += t[n];
		}
	}
}

void nn_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
	      const float *B, int ldb, float beta, float *C, int ldc)
{
	sgemm_check(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
	if (M == 0 || N == 0)
		return;
	if (K == 0 || alpha == 0.0f) {
		/* cblas rejects lda = 0, and there is no product to add. */
		scale_c(M, N, beta, C, ldc);
		return;
	}
	if (sg_takes(ta, tb, M, N, K, alpha, beta)) {
		sg_run(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
		    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nn_sgemm_small(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
		    float beta, float *C, int ldc)
{
	sgemm_check(false, false, M, N, K, A, lda, B, ldb, C, ldc);
	HR_ASSERT(beta == 0.0f || beta == 1.0f);
	if (M == 0 || N % 16 != 0 || K == 0 || !sg_cpu()) { /* whole vectors, AVX-512 */
		nn_sgemm(false, false, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	sgemm_tiles(false, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* LAPACK (Fortran ABI, in libopenblas): the trailing length of the uplo string. */
void sposv_(const char *uplo, const int *n, const int *nrhs, float *a, const int *lda, float *b,
	    const int *ldb, int *info, size_t uplo_len);

int nn_spd_solve(int n, int nrhs, float *A, float *b)
{
	int info = 0, ld = n > 0 ? n : 1;

	if (n <= 0 || nrhs <= 0)
		return 0;
	sposv_("U", &n, &nrhs, A, &ld, b, &ld, &info, 1);
	if (info > 0)
		return hr_error(HR_EFORMAT, "a %dx%d system is not positive definite (minor %d)", n,
				n, info);
	return info ? hr_error(HR_EINVAL, "sposv: argument %d is invalid", -info) : 0;
}

void nn_sgemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
		  const float *B, int ldb, float beta, float *C, int ldc)
{
	sgemm_check(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
	if (K == 0 || alpha == 0.0f) { /* BLAS reads neither A nor B then */
		scale_c(M, N, beta, C, ldc);
		return;
	}
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++) {
			double acc = 0.0;
			float *c = C + (size_t)i * ldc + j;
			for (int k = 0; k < K; k++) {
				float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
				float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
				acc += (double)a * b;
			}
			acc *= alpha;
			if (beta != 0.0f)
				acc += (double)beta * *c;
			*c = (float)acc;
		}
	}
}

void nn_linear_forward(float *out, const float *in, const float *W, const float *b, int B, int IC,
		       int OC)
{
	HR_ASSERT(B >= 0 && IC >= 0 && OC >= 0);
	if (b)
		for (int r = 0; r < B; r++)
			memcpy(out + (size_t)r * OC, b, (size_t)OC * sizeof(float));
	// out (B, OC) = in (B, IC) . W^T (IC, OC) [+ out holding the bias]
	nn_sgemm(false, true, B, OC, IC, 1.0f, in, IC, W, IC, b ? 1.0f : 0.0f, out, OC);
}

void nn_linear_backward(float *dinp, float *dW, float *db, const float *dout, const float *in,
			const float *W, int B, int IC, int OC)
{
	HR_ASSERT(B >= 0 && IC >= 0 && OC >= 0);
	if (dinp) // dinp (B, IC) += dout (B, OC) . W (OC, IC)
		nn_sgemm(false, false, B, IC, OC, 1.0f, dout, OC, W, IC, 1.0f, dinp, IC);
	if (dW) // dW (OC, IC) += dout^T (OC, B) . in (B, IC)
		nn_sgemm(true, false, OC, IC, B, 1.0f, dout, OC, in, IC, 1.0f, dW, IC);
	if (db)
		for (int r = 0; r < B; r++) {
			const float *g = dout + (size_t)r * OC;
			for (int o = 0; o < OC; o++)
				db[o] += g[o];
		}
}
