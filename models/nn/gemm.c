/* gemm.c - the one cblas_sgemm call site, its reference, the linear layer. */
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
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
		    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
