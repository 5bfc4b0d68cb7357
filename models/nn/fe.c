/*
 * fe.c - IntTower's layers: LightSE, the FE-Block's max-sim score, row L2
 * normalisation (fe.h).
 *
 * The max-sim score is a batch of small products, (NU, D) x (D, NV) per
 * row (32 x 32 x 32 at IntTower's defaults), too small for one sgemm call
 * each: the kernel transposes 32 key vectors at a time into columns and
 * computes a block of 4 query rows against them with the 4 x 32
 * accumulators in registers (8 AVX-512 registers), then takes each row's
 * max and its index without a branch per element.
 */
#include "models/nn/fe.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"

/* ---------------------------------------------------------------- LightSE */

void nn_lightse_forward(float *out, float *z, float *a, const float *in, const float *W, int B,
			int F, int E)
{
	HR_ASSERT(B >= 0 && F >= 1 && F <= NN_LIGHTSE_MAX_F && E >= 1);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * F * E;
		float *y = out + (size_t)b * F * E, *zb = z + (size_t)b * F,
		      *ab = a + (size_t)b * F;
		double m = -INFINITY, sum = 0.0;

		for (int f = 0; f < F; f++) {
			double s = 0.0;
			for (int e = 0; e < E; e++)
				s += x[f * E + e];
			zb[f] = (float)(s / E);
		}
		for (int f = 0; f < F; f++) { /* excitation: (z W^T)[f] */
			double s = 0.0;
			for (int g = 0; g < F; g++)
				s += (double)W[f * F + g] * zb[g];
			ab[f] = (float)s;
			m = fmax(m, s);
		}
		for (int f = 0; f < F; f++) {
			ab[f] = (float)exp(ab[f] - m);
			sum += ab[f];
		}
		for (int f = 0; f < F; f++) {
			ab[f] = (float)(ab[f] / sum);
			float k = 1.0f + ab[f];
			for (int e = 0; e < E; e++)
				y[f * E + e] = x[f * E + e] * k;
		}
	}
}

void nn_lightse_backward(float *dinp, float *dW, const float *dout, const float *in, const float *W,
			 const float *z, const float *a, int B, int F, int E)
{
	HR_ASSERT(B >= 0 && F >= 1 && F <= NN_LIGHTSE_MAX_F && E >= 1);
	if (!dinp && !dW)
		return;
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * F * E, *g = dout + (size_t)b * F * E;
		const float *zb = z + (size_t)b * F, *ab = a + (size_t)b * F;
		float gs[NN_LIGHTSE_MAX_F];
		double dot = 0.0;

		for (int f = 0; f < F; f++) { /* ga[f] = <dout[f], in[f]>, kept in gs */
			double s = 0.0;
			for (int e = 0; e < E; e++)
				s += (double)g[f * E + e] * x[f * E + e];
			gs[f] = (float)s;
			dot += s * ab[f];
		}
		for (int f = 0; f < F; f++) /* through the softmax */
			gs[f] = ab[f] * (float)(gs[f] - dot);
		if (dW)
			for (int f = 0; f < F; f++)
				for (int h = 0; h < F; h++)
					dW[f * F + h] += gs[f] * zb[h];
		if (!dinp)
			continue;
		float *dx = dinp + (size_t)b * F * E;
		for (int h = 0; h < F; h++) {
			double s = 0.0; /* (gs W)[h], through the mean over e */
			for (int f = 0; f < F; f++)
				s += (double)gs[f] * W[f * F + h];
			float gz = (float)(s / E), k = 1.0f + ab[h];
			for (int e = 0; e < E; e++)
				dx[h * E + e] += g[h * E + e] * k + gz;
		}
	}
}

/* ----------------------------------------------------------------- max-sim */

#define MS_W 32 /* key vectors per chunk */
#define MS_R 4  /* query rows per block */

/*
 * The max over lanes k < kn of s (MS_W) and its lowest index; *probe +=
 * 0 * s[k] over those lanes, which is NaN exactly when one of them is not
 * finite.  Fixed-width loops with selects: they vectorise.
 */
static inline float lane_max(const float *s, int kn, int32_t *at, float *probe)
{
	float mx[MS_W], p = 0.0f;
	uint32_t bits = 0, live = kn < MS_W ? (1u << kn) - 1u : ~0u;

	for (int k = 0; k < MS_W; k++) {
		mx[k] = k < kn ? s[k] : -INFINITY;
		p += (k < kn ? s[k] : 0.0f) * 0.0f;
	}
	for (int w = MS_W / 2; w >= 1; w /= 2)
		for (int k = 0; k < w; k++)
			mx[k] = mx[k] > mx[k + w] ? mx[k] : mx[k + w];
	for (int k = 0; k < MS_W; k++)
		bits |= (uint32_t)(s[k] == mx[0]) << k;
	bits &= live;
	*at = bits ? __builtin_ctz(bits) : 0; /* no lane equal: a NaN, caught by the probe */
	*probe += p;
	return mx[0];
}

/*
 * One row: out = sum_h max_k <U[h], V[k]> into arg (NU); best (NU) and vt
 * (D * MS_W) are the caller's stack scratch.
 */
HR_MULTIVERSION
static float maxsim_row(int32_t *arg, float *best, float *vt, const float *U, const float *V,
			int NU, int NV, int D)
{
	float probe = 0.0f, total = 0.0f;

	for (int k0 = 0; k0 < NV; k0 += MS_W) {
		int kn = NV - k0 < MS_W ? NV - k0 : MS_W;
		/* vt (D, MS_W): this chunk's key vectors as columns, zero past kn */
		for (int t = 0; t < D; t++)
			for (int k = 0; k < MS_W; k++)
				vt[t * MS_W + k] = k < kn ? V[(size_t)(k0 + k) * D + t] : 0.0f;
		for (int h0 = 0; h0 < NU; h0 += MS_R) {
			float s[MS_R][MS_W] = {{0}};
			int nr = NU - h0 < MS_R ? NU - h0 : MS_R;
			const float *u = U + (size_t)h0 * D;

			if (nr == MS_R) {
				for (int t = 0; t < D; t++) {
					const float *v = vt + t * MS_W;
					float u0 = u[t], u1 = u[D + t], u2 = u[2 * D + t],
					      u3 = u[3 * D + t];
					for (int k = 0; k < MS_W; k++) {
						s[0][k] += u0 * v[k];
						s[1][k] += u1 * v[k];
						s[2][k] += u2 * v[k];
						s[3][k] += u3 * v[k];
					}
				}
			} else {
				for (int r = 0; r < nr; r++)
					for (int t = 0; t < D; t++) {
						const float *v = vt + t * MS_W;
						float ur = u[r * D + t];
						for (int k = 0; k < MS_W; k++)
							s[r][k] += ur * v[k];
					}
			}
			for (int r = 0; r < nr; r++) {
				int32_t at;
				float m = lane_max(s[r], kn, &at, &probe);
				/* strictly greater: an earlier chunk keeps a tie (lowest k) */
				if (k0 == 0 || m > best[h0 + r]) {
					best[h0 + r] = m;
					arg[h0 + r] = k0 + at;
				}
			}
		}
	}
	for (int h = 0; h < NU; h++)
		total += best[h];
	return total + probe;
}

void nn_maxsim_forward(float *out, int32_t *arg, const float *U, const float *V, int B, int NU,
		       int NV, int D)
{
	HR_ASSERT(B >= 0 && NU >= 1 && NU <= NN_MAXSIM_MAX_NU && NV >= 1 && D >= 1 &&
		  D <= NN_MAXSIM_MAX_D);
	float best[NN_MAXSIM_MAX_NU], vt[NN_MAXSIM_MAX_D * MS_W];

	for (int b = 0; b < B; b++)
		out[b] = maxsim_row(arg + (size_t)b * NU, best, vt, U + (size_t)b * NU * D,
				    V + (size_t)b * NV * D, NU, NV, D);
}

void nn_maxsim_backward(float *dU, float *dV, const float *dout, const int32_t *arg, const float *U,
			const float *V, int B, int NU, int NV, int D)
{
	HR_ASSERT(B >= 0 && NU >= 1 && NV >= 1 && D >= 1);
	for (int b = 0; b < B; b++) {
		float g = dout[b];
		for (int h = 0; h < NU; h++) {
			int32_t k = arg[(size_t)b * NU + h];
			size_t ou = ((size_t)b * NU + h) * D, ov = ((size_t)b * NV + k) * D;
			HR_ASSERT(k >= 0 && k < NV);
			if (dU)
				for (int t = 0; t < D; t++)
					dU[ou + t] += g * V[ov + t];
			if (dV)
				for (int t = 0; t < D; t++)
					dV[ov + t] += g * U[ou + t];
		}
	}
}

/* --------------------------------------------------------- L2 normalisation */

void nn_l2norm_forward(float *out, float *norm, const float *in, float eps, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps > 0.0f);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		float *y = out + (size_t)b * D;
		double q = 0.0;
		for (int d = 0; d < D; d++)
			q += (double)x[d] * x[d];
		double n = sqrt(q);
		float inv = (float)(1.0 / fmax(n, eps));
		norm[b] = (float)n;
		for (int d = 0; d < D; d++)
			y[d] = x[d] * inv;
	}
}

void nn_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm,
			float eps, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps > 0.0f);
	if (!dinp)
		return;
	for (int b = 0; b < B; b++) {
		const float *y = out + (size_t)b * D, *g = dout + (size_t)b * D;
		float *dx = dinp + (size_t)b * D;
		if (!(norm[b] > eps)) { /* clamped: out = in / eps, a constant scale */
			for (int d = 0; d < D; d++)
				dx[d] += g[d] / eps;
			continue;
		}
		double s = 0.0;
		for (int d = 0; d < D; d++)
			s += (double)y[d] * g[d];
		float inv = 1.0f / norm[b], fs = (float)s;
		for (int d = 0; d < D; d++)
			dx[d] += (g[d] - y[d] * fs) * inv;
	}
}
