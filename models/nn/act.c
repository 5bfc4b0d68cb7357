/* act.c - elementwise activations, PReLU, dropout, masked row softmax. */
#include "models/nn/nn.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"
#include "models/nn/internal.h"

void nn_relu_forward(float *out, const float *in, int N)
{
	HR_ASSERT(N >= 0);
	/* "in < 0 ? 0 : in" lets a NaN through (as PyTorch does), so a bad input
	 * surfaces as a non-finite loss instead of being silently zeroed. */
	for (int i = 0; i < N; i++)
		out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

void nn_relu_backward(float *dinp, const float *dout, const float *out, int N)
{
	HR_ASSERT(N >= 0);
	if (!dinp)
		return;
	/* Unconditional loads so that the loop vectorises (a select, no branch). */
	for (int i = 0; i < N; i++) {
		float d = dout[i];
		dinp[i] += out[i] > 0.0f ? d : 0.0f;
	}
}

void nn_prelu_forward(float *out, const float *in, const float *alpha, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		float *y = out + (size_t)b * D;
		for (int d = 0; d < D; d++)
			y[d] = x[d] > 0.0f ? x[d] : alpha[d] * x[d];
	}
}

void nn_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in,
		       const float *alpha, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		const float *g = dout + (size_t)b * D;
		if (dinp) {
			float *dx = dinp + (size_t)b * D;
			for (int d = 0; d < D; d++)
				dx[d] += x[d] > 0.0f ? g[d] : alpha[d] * g[d];
		}
		if (dalpha)
			for (int d = 0; d < D; d++)
				dalpha[d] += x[d] > 0.0f ? 0.0f : x[d] * g[d];
	}
}

void nn_sigmoid_forward(float *out, const float *in, int N)
{
	HR_ASSERT(N >= 0);
	for (int i = 0; i < N; i++)
		out[i] = nn_sigmoidf(in[i]);
}

void nn_sigmoid_backward(float *dinp, const float *dout, const float *out, int N)
{
	HR_ASSERT(N >= 0);
	if (!dinp)
		return;
	for (int i = 0; i < N; i++)
		dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void nn_tanh_forward(float *out, const float *in, int N)
{
	HR_ASSERT(N >= 0);
	for (int i = 0; i < N; i++)
		out[i] = tanhf(in[i]);
}

void nn_tanh_backward(float *dinp, const float *dout, const float *out, int N)
{
	HR_ASSERT(N >= 0);
	if (!dinp)
		return;
	for (int i = 0; i < N; i++)
		dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* splitmix64's output function: counter-based, so element i needs no state. */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void nn_dropout_forward(float *out, float *mask, const float *in, float p, uint64_t seed,
			bool training, int N)
{
	HR_ASSERT(N >= 0);
	HR_ASSERT(p >= 0.0f && p < 1.0f);
	/* Drop when a 24-bit uniform draw is below thr: P(drop) = thr / 2^24. */
	uint32_t thr = (uint32_t)((double)p * 16777216.0 + 0.5);

	if (!training || thr == 0) {
		if (out != in)
			memmove(out, in, (size_t)N * sizeof(float));
		if (mask)
			for (int i = 0; i < N; i++)
				mask[i] = 1.0f;
		return;
	}
	HR_ASSERT(mask != NULL && thr < 16777216u);
	float scale = (float)(16777216.0 / (double)(16777216u - thr));
	for (int i = 0; i < N; i++) {
		uint64_t h = mix64(seed + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
		mask[i] = (uint32_t)(h >> 40) < thr ? 0.0f : scale;
		out[i] = in[i] * mask[i];
	}
}

void nn_dropout_backward(float *dinp, const float *dout, const float *mask, int N)
{
	HR_ASSERT(N >= 0);
	if (!dinp)
		return;
	if (!mask) {
		for (int i = 0; i < N; i++)
			dinp[i] += dout[i];
		return;
	}
	for (int i = 0; i < N; i++)
		dinp[i] += dout[i] * mask[i];
}

void nn_softmax_forward(float *out, const float *in, const uint8_t *valid, int B, int N)
{
	HR_ASSERT(B >= 0 && N >= 0);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * N;
		const uint8_t *v = valid ? valid + (size_t)b * N : NULL;
		float *y = out + (size_t)b * N;
		float max = -INFINITY;
		double sum = 0.0;

		for (int n = 0; n < N; n++)
			if ((!v || v[n]) && x[n] > max)
				max = x[n];
		if (max == -INFINITY) { /* nothing valid, or every valid x is -inf */
			memset(y, 0, (size_t)N * sizeof(float));
			continue;
		}
		for (int n = 0; n < N; n++) {
			/* in == out is allowed: read x[n] before writing y[n] */
			float e = !v || v[n] ? expf(x[n] - max) : 0.0f;
			y[n] = e;
			sum += e;
		}
		/* sum >= 1: the maximum contributes exp(0) */
		float inv = (float)(1.0 / sum);
		for (int n = 0; n < N; n++)
			y[n] *= inv;
	}
}

void nn_softmax_backward(float *dinp, const float *dout, const float *out, int B, int N)
{
	HR_ASSERT(B >= 0 && N >= 0);
	if (!dinp)
		return;
	for (int b = 0; b < B; b++) {
		const float *g = dout + (size_t)b * N;
		const float *y = out + (size_t)b * N;
		float *dx = dinp + (size_t)b * N;
		double dot = 0.0;

		for (int n = 0; n < N; n++)
			dot += (double)g[n] * y[n];
		for (int n = 0; n < N; n++)
			dx[n] += y[n] * (g[n] - (float)dot);
	}
}
