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
 * The max over lanes k < kn of s (MS_W) and its lowest index; probe[k] +=
 * 0 * s[k] over those lanes (NaN exactly where one is not finite), summed
 * by the caller once a row.  The lanes are folded to 16 in one vector
 * step, then to 1 through scalars (a loop over an array here made every
 * step a store and a reload that could not be forwarded).
 */
static inline float lane_max(const float *s, int kn, int32_t *at, float *probe)
{
	float h[MS_W / 2], m;
	uint32_t bits = 0, live = kn < MS_W ? (1u << kn) - 1u : ~0u;

	for (int k = 0; k < MS_W; k++)
		probe[k] += (k < kn ? s[k] : 0.0f) * 0.0f;
	for (int k = 0; k < MS_W / 2; k++) {
		float x = k < kn ? s[k] : -INFINITY,
		      y = k + MS_W / 2 < kn ? s[k + MS_W / 2] : -INFINITY;
		h[k] = x > y ? x : y;
	}
#define MX(a, b) ((a) > (b) ? (a) : (b))
	float a0 = MX(h[0], h[8]), a1 = MX(h[1], h[9]), a2 = MX(h[2], h[10]), a3 = MX(h[3], h[11]);
	float a4 = MX(h[4], h[12]), a5 = MX(h[5], h[13]), a6 = MX(h[6], h[14]),
	      a7 = MX(h[7], h[15]);
	float b0 = MX(a0, a4), b1 = MX(a1, a5), b2 = MX(a2, a6), b3 = MX(a3, a7);
	m = MX(MX(b0, b2), MX(b1, b3));
#undef MX
	for (int k = 0; k < MS_W; k++)
		bits |= (uint32_t)(s[k] == m) << k;
	bits &= live;
	*at = bits ? __builtin_ctz(bits) : 0; /* no lane equal: a NaN, caught by the probe */
	return m;
}

/*
 * 16 floats as one value (GNU vector extension, also clang's): the kernel's
 * accumulators, so that the compiler keeps them in registers (as plain
 * arrays they went through the stack on every step).  One AVX-512
 * register; two AVX2, four SSE2 ones in the other clones.
 */
typedef float v16f __attribute__((vector_size(64)));

/* v = p[0..15]; a macro, since passing or returning a v16f by value changes
 * the ABI between the clones. */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16f))

/*
 * GCC contracts a * b + c into one FMA only with -ffp-contract=fast, which
 * -std=c11 turns off; this kernel asks for it (clang contracts within an
 * expression by default).  Rounding then differs from separate multiply
 * and add, within what fe.h promises (float sums).
 */
#if defined(__GNUC__) && !defined(__clang__)
#define MS_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define MS_CONTRACT
#endif

/* s[r][k] = <U[r], key k of the chunk> for r < MS_R, from vt (D, MS_W). */
MS_CONTRACT static inline void block4(float s[MS_R][MS_W], const float *u, const float *vt, int D)
{
	v16f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, c0 = {0}, c1 = {0}, d0 = {0}, d1 = {0};

	for (int t = 0; t < D; t++) {
		v16f v0, v1;
		LOAD16(v0, vt + t * MS_W);
		LOAD16(v1, vt + t * MS_W + 16);
		float u0 = u[t], u1 = u[D + t], u2 = u[2 * D + t], u3 = u[3 * D + t];
		a0 += u0 * v0;
		a1 += u0 * v1;
		b0 += u1 * v0;
		b1 += u1 * v1;
		c0 += u2 * v0;
		c1 += u2 * v1;
		d0 += u3 * v0;
		d1 += u3 * v1;
	}
	memcpy(s[0], &a0, sizeof(a0));
	memcpy(s[0] + 16, &a1, sizeof(a1));
	memcpy(s[1], &b0, sizeof(b0));
	memcpy(s[1] + 16, &b1, sizeof(b1));
	memcpy(s[2], &c0, sizeof(c0));
	memcpy(s[2] + 16, &c1, sizeof(c1));
	memcpy(s[3], &d0, sizeof(d0));
	memcpy(s[3] + 16, &d1, sizeof(d1));
}

/* The same for one row. */
MS_CONTRACT static inline void block1(float *s, const float *u, const float *vt, int D)
{
	v16f a0 = {0}, a1 = {0};

	for (int t = 0; t < D; t++) {
		v16f v0, v1;
		LOAD16(v0, vt + t * MS_W);
		LOAD16(v1, vt + t * MS_W + 16);
		a0 += u[t] * v0;
		a1 += u[t] * v1;
	}
	memcpy(s, &a0, sizeof(a0));
	memcpy(s + 16, &a1, sizeof(a1));
}

/*
 * One row: sum over l, h of max_k <U[l][h], V[k]>, the winners into
 * arg[l * ldarg + h].  best (NL * NU) and vt (D * MS_W) are the caller's
 * stack scratch; each chunk of keys is transposed once for every layer.
 */
HR_MULTIVERSION MS_CONTRACT static float maxsim_row(int32_t *arg, size_t ldarg, float *best,
						    float *vt, const float *const *U, size_t ldu,
						    int NL, const float *V, int NU, int NV, int D)
{
	float probe[MS_W] = {0}, total = 0.0f;

	for (int k0 = 0; k0 < NV; k0 += MS_W) {
		int kn = NV - k0 < MS_W ? NV - k0 : MS_W;
		/* vt (D, MS_W): this chunk's key vectors as columns, zero past kn */
		if (kn < MS_W) {
			memset(vt, 0, (size_t)D * MS_W * sizeof(float));
			for (int k = 0; k < kn; k++)
				for (int t = 0; t < D; t++)
					vt[t * MS_W + k] = V[(size_t)(k0 + k) * D + t];
		} else {
			const float *v = V + (size_t)k0 * D;
			for (int t = 0; t < D; t++)
				for (int k = 0; k < MS_W; k++)
					vt[t * MS_W + k] = v[(size_t)k * D + t];
		}
		for (int l = 0; l < NL; l++)
			for (int h0 = 0; h0 < NU; h0 += MS_R) {
				float s[MS_R][MS_W];
				int nr = NU - h0 < MS_R ? NU - h0 : MS_R;
				const float *u = U[l] + ldu + (size_t)h0 * D;

				if (nr == MS_R)
					block4(s, u, vt, D);
				else
					for (int r = 0; r < nr; r++)
						block1(s[r], u + (size_t)r * D, vt, D);
				for (int r = 0; r < nr; r++) {
					int32_t at;
					float m = lane_max(s[r], kn, &at, probe);
					size_t i = (size_t)l * NU + h0 + r;
					/* strictly greater: an earlier chunk keeps a tie (lowest k) */
					if (k0 == 0 || m > best[i]) {
						best[i] = m;
						arg[l * ldarg + h0 + r] = k0 + at;
					}
				}
			}
	}
	for (int i = 0; i < NL * NU; i++)
		total += best[i];
	for (int k = 0; k < MS_W; k++)
		total += probe[k];
	return total;
}

void nn_maxsim_forward(float *out, int32_t *arg, const float *const *U, int NL, const float *V,
		       int B, int NU, int NV, int D)
{
	HR_ASSERT(B >= 0 && NL >= 1 && NU >= 1 && NL * NU <= NN_MAXSIM_MAX_NU && NV >= 1 &&
		  D >= 1 && D <= NN_MAXSIM_MAX_D);
	float best[NN_MAXSIM_MAX_NU], vt[NN_MAXSIM_MAX_D * MS_W];
	size_t ldarg = (size_t)B * NU;

	for (int b = 0; b < B; b++)
		out[b] = maxsim_row(arg + (size_t)b * NU, ldarg, best, vt, U, (size_t)b * NU * D,
				    NL, V + (size_t)b * NV * D, NU, NV, D);
}

/* One row of one layer of nn_maxsim_backward. */
HR_MULTIVERSION
static void maxsim_row_backward(float *dU, float *dV, float g, const int32_t *arg, const float *U,
				const float *V, int NU, int NV, int D)
{
	for (int h = 0; h < NU; h++) {
		int32_t k = arg[h];
		HR_ASSERT(k >= 0 && k < NV);
		const float *v = V + (size_t)k * D, *u = U + (size_t)h * D;
		if (dU)
			for (int t = 0; t < D; t++)
				dU[(size_t)h * D + t] += g * v[t];
		if (dV)
			for (int t = 0; t < D; t++)
				dV[(size_t)k * D + t] += g * u[t];
	}
}

void nn_maxsim_backward(float *const *dU, float *dV, const float *dout, const int32_t *arg,
			const float *const *U, int NL, const float *V, int B, int NU, int NV, int D)
{
	HR_ASSERT(B >= 0 && NL >= 1 && NU >= 1 && NV >= 1 && D >= 1);
	for (int l = 0; l < NL; l++) {
		float *du = dU ? dU[l] : NULL;
		if (!du && !dV)
			continue;
		for (int b = 0; b < B; b++) {
			size_t ou = (size_t)b * NU * D, ov = (size_t)b * NV * D;
			maxsim_row_backward(du ? du + ou : NULL, dV ? dV + ov : NULL, dout[b],
					    arg + ((size_t)l * B + b) * NU, U[l] + ou, V + ov, NU,
					    NV, D);
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
