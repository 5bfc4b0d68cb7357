/*
 * fastmath.h - exp, sigmoid and tanh for loops that must vectorise.
 *
 * libm's expf and tanhf are calls the compiler cannot vectorise (without
 * -ffast-math and libmvec), and in DIEN's layers, which evaluate some 800
 * sigmoids and tanhs per history position, they were a quarter of the
 * training time (perf, the bench data).  These are branch-free inline
 * functions of float arithmetic and integer bit operations only, so a loop
 * over them vectorises (16 lanes in an HR_MULTIVERSION AVX-512 clone).
 *
 * Not for -ffast-math builds (reassociation would undo the rounding trick).
 *
 * nn_expf_vec: exp(x) = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 in
 * two steps (Cody-Waite: ln 2 split into a part exact in float and the
 * rest), e^r by its degree-7 Taylor polynomial on |r| <= ln2 / 2 (the
 * truncation, 5e-9 relative, is below float rounding), 2^n put in the
 * exponent bits.  x is clamped to [-87, 87]: no overflow, no denormals
 * (beyond, the result is e^-87 = 1.6e-38 or e^87 = 6.1e37).  Relative error <= 2e-7
 * (a few ulp) over the range, checked against expf in test_nn_gru.c.
 * NaN in, NaN out is not guaranteed (the clamp may swallow it).
 *
 * nn_sigmoidf_vec(x) = 1 / (1 + e^-x): relative error <= 3e-7.
 * nn_tanhf_vec(x) = 1 - 2 / (e^2x + 1): absolute error <= 3e-7 (relative
 * error grows near 0, where tanh x ~ x; gradients see absolute errors).
 */
#ifndef HR_NN_FASTMATH_H
#define HR_NN_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float nn_expf_vec(float x)
{
	const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
	const int32_t lim = 0x42ae0000; /* 87.0f */
	float n, r, p;
	int32_t k, bits, mag;

	/* |x| <= 87 by an integer compare on the bits (a positive float's bits
	 * order as integers): a float compare under -ftrapping-math (the
	 * default) stops gcc if-converting the loop for AVX2 and SSE2 */
	memcpy(&bits, &x, sizeof(x));
	mag = bits & 0x7fffffff;
	mag = mag < lim ? mag : lim;
	bits = (int32_t)((uint32_t)bits & 0x80000000u) | mag;
	memcpy(&x, &bits, sizeof(x));
	/* round to nearest by 1.5 * 2^23 (the default rounding mode; |v| < 2^22) */
	n = (x * log2e + 12582912.0f) - 12582912.0f;
	r = x - n * ln2_hi - n * ln2_lo;
	p = 1.0f / 5040;
	p = 1.0f / 720 + r * p;
	p = 1.0f / 120 + r * p;
	p = 1.0f / 24 + r * p;
	p = 1.0f / 6 + r * p;
	p = 0.5f + r * p;
	p = 1.0f + r * p;
	p = 1.0f + r * p;
	k = (int32_t)n;
	bits = (k + 127) * (1 << 23); /* 2^k: k in [-126, 126] after the clamp */
	memcpy(&n, &bits, sizeof(n));
	return p * n;
}

static inline float nn_sigmoidf_vec(float x)
{
	return 1.0f / (1.0f + nn_expf_vec(-x));
}

static inline float nn_tanhf_vec(float x)
{
	return 1.0f - 2.0f / (nn_expf_vec(2.0f * x) + 1.0f);
}

/*
 * In place over n floats.  A loop of nothing but x[i] = f(x[i]) is the form
 * gcc vectorises reliably: with more work in the same loop its
 * if-conversion of the clamps failed in some target clones.  Inline, so
 * that a multiversioned caller gets them at its width.
 */
static inline void nn_sigmoid_vec(float *x, int n)
{
	for (int i = 0; i < n; i++)
		x[i] = nn_sigmoidf_vec(x[i]);
}

static inline void nn_tanh_vec(float *x, int n)
{
	for (int i = 0; i < n; i++)
		x[i] = nn_tanhf_vec(x[i]);
}

#endif
