/* mhsa.c - multi-head self-attention in lane layout (mhsa.h). */
#include "models/nn/mhsa.h"

#include <math.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"
#include "models/nn/nn.h"

/* Examples per chunk of the per-head kernels: one AVX-512 vector, two AVX2. */
#define LW 16

/*
 * The per-head kernels must be inlined into their multiversioned callers
 * (common/simd.h): a separate function would be built for the baseline
 * ISA (GCC kept them out of line until told), and inlining makes nl = LW a
 * constant for whole chunks.
 */
#if defined(__GNUC__) || defined(__clang__)
#define KERNEL static inline __attribute__((always_inline))
#else
#define KERNEL static inline
#endif

int nn_mhsa_proj(const struct nn_mhsa *a)
{
	return a->residual && a->D != a->A ? 4 : 3;
}

/*
 * Cache layout for B examples (floats); every tensor in lane layout
 * (C, F, B):
 *   ct    (P A, F, B)     the projections Q, K, V (and R)
 *   prob  (H, F, F, B)    the softmax weights P: [h][i][j][b]
 *   mask  (H, F, F, B)    dropout mask (only when a->dropout > 0)
 *   pre   (A, F, B)       Y before LayerNorm and ReLU
 *   mean, rstd (F, B)     LayerNorm statistics (only with layer_norm)
 * then the backward's:
 *   dct   (P A, F, B)
 *   dy    (A, F, B)       d/dY after the ReLU (and the LayerNorm's output side)
 *   dpre  (A, F, B)       d/dY before LayerNorm (only with layer_norm)
 *   t     scratch: the per-head kernels' 3 F F LW (as vectors, so
 *         aligned to 64 bytes inside LW spare floats), the LayerNorm
 *         backward's 2 F B
 */
struct mhsa_cache {
	float *ct, *prob, *mask, *pre, *mean, *rstd, *dct, *dy, *dpre, *t;
};

static size_t mhsa_layout(const struct nn_mhsa *a, int B, float *base, struct mhsa_cache *c)
{
	size_t T = (size_t)B * a->F, PA = (size_t)nn_mhsa_proj(a) * a->A, o = 0;
	size_t W = (size_t)a->H * a->F * a->F * B;
	bool drop = a->dropout > 0.0f, ln = a->layer_norm;
#define PUT(f, n) (c->f = base ? base + o : NULL, o += (n))
	PUT(ct, PA * T);
	PUT(prob, W);
	PUT(mask, drop ? W : 0);
	PUT(pre, (size_t)a->A * T);
	PUT(mean, ln ? T : 0);
	PUT(rstd, ln ? T : 0);
	PUT(dct, PA * T);
	PUT(dy, (size_t)a->A * T);
	PUT(dpre, ln ? (size_t)a->A * T : 0);
	PUT(t, (3 * (size_t)a->F * a->F * LW > 2 * T ? 3 * (size_t)a->F * a->F * LW : 2 * T) + LW);
#undef PUT
	return o;
}

size_t nn_mhsa_cache_floats(const struct nn_mhsa *a, int B)
{
	struct mhsa_cache c;

	return mhsa_layout(a, B, NULL, &c);
}

static void mhsa_check(const struct nn_mhsa *a, int B)
{
	HR_ASSERT(B >= 0 && a->F >= 1 && a->F <= NN_MHSA_MAX_TOKENS && a->D >= 1 && a->H >= 1);
	HR_ASSERT(a->A >= a->H);
	HR_ASSERT(a->A % a->H == 0);
	HR_ASSERT(a->dropout >= 0.0f && a->dropout < 1.0f);
}

/*
 * The per-head kernels compute LW examples at once with GCC/clang vector
 * types (one AVX-512 register, two AVX2 or four SSE2 ones, whichever clone
 * runs): the auto-vectoriser fully unrolled some of these loops into
 * scalars instead.  ld/st move the first nl lanes (nl < LW only in a
 * batch's last chunk; the other lanes load as 0 and are never stored).
 */
#if defined(__GNUC__) /* gcc and clang */
/* "vector return without AVX512F changes the ABI": these helpers are
 * always inlined, so no call (and no ABI) is ever involved. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float vf __attribute__((vector_size(LW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(LW * sizeof(float))));
typedef uint32_t vu __attribute__((vector_size(LW * sizeof(float))));

KERNEL vf ld(const float *p, int nl)
{
	vf v = {0};

	memcpy(&v, p, (size_t)nl * sizeof(float));
	return v;
}

#define st(p, v, nl)                                              \
	do {                                                      \
		vf st_v = (v);                                    \
		memcpy((p), &st_v, (size_t)(nl) * sizeof(float)); \
	} while (0)

/* m ? a : b lane by lane (m from a comparison: all ones or zero).  st and
 * sel are macros: a function taking vectors by value draws GCC's psABI
 * note. */
#define sel(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))

/*
 * e^x for x <= 0 (softmax arguments, x - max), lane by lane (glibc's expf
 * is a call per element without -ffast-math): Cephes' expf, e^x = 2^n e^f
 * with n = round(x / ln 2), |f| <= ln 2 / 2, e^f a degree-6 polynomial
 * (relative error ~2e-7).  Exactly 1 at 0; exactly 0 below -87 (and at
 * -inf, a masked key); NaN stays NaN.  The integer n comes from the bits
 * of the rounding sum, never from a float-to-int conversion.
 */
KERNEL void exp_nonpos(vf *xp)
{
	const vf zero = {0};
	vf x = *xp;
	vi small = x < -87.0f; /* false for NaN */
	vf v = sel(small, zero - 87.0f, x);
	vf t = v * 1.44269504088896341f + 0x1.8p23f; /* round(v / ln 2) + 1.5 2^23 */
	vf n = t - 0x1.8p23f;
	vf f = v - n * 0.693359375f - n * -2.12194440e-4f;
	vf p = f * 1.9875691500e-4f + 1.3981999507e-3f;
	vu e;

	p = p * f + 8.3334519073e-3f;
	p = p * f + 4.1665795894e-2f;
	p = p * f + 1.6666665459e-1f;
	p = p * f + 5.0000001201e-1f;
	p = p * f * f + f + 1.0f;
	e = ((vu)t - 0x4b400000u + 127u) << 23; /* 2^n from t's low mantissa bits */
	*xp = sel(small, zero, p * (vf)e);
}

/*
 * What the per-head kernels share.  A lane-layout tensor's feature row r,
 * token i, starts at (r F + i) B; the chunk's examples b0 .. b0 + nl - 1
 * follow.  The (H, F, F, B) weights are rows h F + i with tokens j.
 */
struct head {
	int F, d, B, b0;
	int q, k, v; /* rows of the head's first Q, K, V feature in ct (and dct) */
	int o;       /* row of its first output feature in pre (and dY) */
	int w;       /* row h F of its weights in prob and mask */
	float s;     /* score scale */
};

KERNEL size_t at(const struct head *g, int r, int i)
{
	return ((size_t)r * g->F + i) * g->B + g->b0;
}

/*
 * The kernels read every Q, K, V (and dO) row of a chunk once per pass,
 * feature by feature, and keep the (F, F) blocks of scores and weights in
 * scratch: lane-layout rows are B floats apart (1 KiB at B = 256), so the
 * rows of a chunk share a few L1 sets, and loops that re-read K and V for
 * every query thrashed them.
 */

/*
 * The forward of one head on the nl <= LW examples from g->b0: P into
 * prob, the dropout mask into mask (drop), O added into pre.  madd (F):
 * 0 or -inf per key and example.  t: 2 F F vectors of scratch.
 */
KERNEL void head_forward(const struct head *g, float *prob, float *mask, float *pre,
			 const float *ct, const vf *madd, vf *t, int nl, float rate, uint64_t seed,
			 bool drop, bool training)
{
	int F = g->F, d = g->d;
	vf *S = t, *Pd = t + (size_t)F * F; /* [i F + j] */
	vf x[NN_MHSA_MAX_TOKENS], y[NN_MHSA_MAX_TOKENS];
	const vf zero = {0};

	for (int e = 0; e < F * F; e++)
		S[e] = zero;
	for (int c = 0; c < d; c++) { /* S += q_c k_c^T */
		for (int i = 0; i < F; i++) {
			x[i] = ld(ct + at(g, g->q + c, i), nl);
			y[i] = ld(ct + at(g, g->k + c, i), nl);
		}
		for (int i = 0; i < F; i++)
			for (int j = 0; j < F; j++)
				S[i * F + j] += x[i] * y[j];
	}
	for (int i = 0; i < F; i++) {
		vf *Si = S + (size_t)i * F, mx = zero - INFINITY, sum = zero;
		for (int j = 0; j < F; j++) {
			Si[j] = Si[j] * g->s + madd[j];
			mx = sel(Si[j] > mx, Si[j], mx);
		}
		mx = sel(mx == -INFINITY, zero, mx); /* no valid key: weights 0 */
		for (int j = 0; j < F; j++) {
			Si[j] -= mx;
			exp_nonpos(&Si[j]); /* -inf: 0, masked keys */
			sum += Si[j];
		}
		vf inv = sel(sum > 0.0f, 1.0f / sum, zero);
		for (int j = 0; j < F; j++) {
			size_t e0 = at(g, g->w + i, j);
			Si[j] *= inv;
			st(prob + e0, Si[j], nl);
			if (drop) /* elements e0 .. of one nn_dropout_forward over prob */
				nn_dropout_forward((float *)&Pd[i * F + j], mask + e0,
						   (const float *)&Si[j], rate,
						   seed + e0 * 0x9e3779b97f4a7c15ULL, training, nl);
		}
	}
	const vf *P = drop ? Pd : S;
	for (int c = 0; c < d; c++) { /* O_c += P v_c */
		for (int j = 0; j < F; j++)
			y[j] = ld(ct + at(g, g->v + c, j), nl);
		for (int i = 0; i < F; i++) {
			float *o = pre + at(g, g->o + c, i);
			vf acc = ld(o, nl);
			for (int j = 0; j < F; j++)
				acc += P[i * F + j] * y[j];
			st(o, acc, nl);
		}
	}
}

/*
 * The backward of one head on the nl <= LW examples from g->b0, from dY:
 * dV = Pd^T dO, dP = (dO V^T) * mask, dS = P * (dP - rowdot(P, dP)),
 * dQ = s dS K, dK = s dS^T Q, written into dct (each row once: nothing to
 * zero first).  mask NULL without dropout.  t: 3 F F vectors of scratch.
 */
KERNEL void head_backward(const struct head *g, float *dct, const float *dY, const float *ct,
			  const float *prob, const float *mask, vf *t, int nl)
{
	int F = g->F, d = g->d;
	size_t FF = (size_t)F * F;
	vf *P = t, *Pd = t + FF, *dS = t + 2 * FF; /* [i F + j]; dS holds dP first */
	vf x[NN_MHSA_MAX_TOKENS], y[NN_MHSA_MAX_TOKENS];
	const vf zero = {0};

	for (int i = 0; i < F; i++)
		for (int j = 0; j < F; j++) {
			P[i * F + j] = ld(prob + at(g, g->w + i, j), nl);
			Pd[i * F + j] = mask ? P[i * F + j] * ld(mask + at(g, g->w + i, j), nl) :
					       P[i * F + j];
			dS[i * F + j] = zero;
		}
	for (int c = 0; c < d; c++) { /* dPd += dO_c v_c^T; dV_c += Pd^T dO_c */
		for (int i = 0; i < F; i++) {
			x[i] = ld(dY + at(g, g->o + c, i), nl);
			y[i] = ld(ct + at(g, g->v + c, i), nl);
		}
		for (int i = 0; i < F; i++)
			for (int j = 0; j < F; j++)
				dS[i * F + j] += x[i] * y[j];
		for (int j = 0; j < F; j++) {
			vf acc = zero;
			for (int i = 0; i < F; i++)
				acc += Pd[i * F + j] * x[i];
			st(dct + at(g, g->v + c, j), acc, nl);
		}
	}
	for (int i = 0; i < F; i++) {
		vf *dSi = dS + (size_t)i * F, *Pi = P + (size_t)i * F, dot = zero;
		for (int j = 0; j < F; j++) {
			if (mask)
				dSi[j] *= ld(mask + at(g, g->w + i, j), nl);
			dot += Pi[j] * dSi[j];
		}
		for (int j = 0; j < F; j++) /* 0 at masked keys: P = 0 */
			dSi[j] = g->s * Pi[j] * (dSi[j] - dot);
	}
	for (int c = 0; c < d; c++) { /* dQ_c += dS k_c; dK_c += dS^T q_c */
		for (int i = 0; i < F; i++) {
			x[i] = ld(ct + at(g, g->q + c, i), nl);
			y[i] = ld(ct + at(g, g->k + c, i), nl);
		}
		for (int i = 0; i < F; i++) {
			vf acc = zero;
			for (int j = 0; j < F; j++)
				acc += dS[i * F + j] * y[j];
			st(dct + at(g, g->q + c, i), acc, nl);
		}
		for (int j = 0; j < F; j++) {
			vf acc = zero;
			for (int i = 0; i < F; i++)
				acc += dS[i * F + j] * x[i];
			st(dct + at(g, g->k + c, j), acc, nl);
		}
	}
}

static struct head head_of(const struct nn_mhsa *a, int B, int h)
{
	int d = a->A / a->H;

	return (struct head){
		.F = a->F,
		.d = d,
		.B = B,
		.q = h * d,
		.k = a->A + h * d,
		.v = 2 * a->A + h * d,
		.o = h * d,
		.w = h * a->F,
		.s = a->scale ? 1.0f / sqrtf((float)d) : 1.0f,
	};
}

/* The kernels' vectors in c->t, aligned (the cache may not be). */
static vf *scratch(const struct mhsa_cache *c)
{
	return (vf *)(void *)(((uintptr_t)c->t + sizeof(vf) - 1) & ~(uintptr_t)(sizeof(vf) - 1));
}

/* madd (F): 0 for a valid key, -inf for a masked one (lanes < nl). */
static void key_mask(vf *madd, const uint8_t *valid, int F, int b0, int nl)
{
	for (int j = 0; j < F; j++) {
		float m[LW] = {0};
		for (int l = 0; valid && l < nl; l++)
			m[l] = valid[(size_t)(b0 + l) * F + j] ? 0.0f : -INFINITY;
		memcpy(&madd[j], m, sizeof(m));
	}
}

/* Every head on every example: whole chunks of LW, then the rest. */
HR_MULTIVERSION
static void attend_forward(struct mhsa_cache *c, const struct nn_mhsa *a, const uint8_t *valid,
			   uint64_t seed, bool training, int B)
{
	vf madd[NN_MHSA_MAX_TOKENS], *t = scratch(c);
	bool drop = a->dropout > 0.0f;

	for (int b0 = 0; b0 < B; b0 += LW) {
		int nl = B - b0 < LW ? B - b0 : LW;
		key_mask(madd, valid, a->F, b0, nl);
		for (int h = 0; h < a->H; h++) {
			struct head g = head_of(a, B, h);
			g.b0 = b0;
			if (nl == LW)
				head_forward(&g, c->prob, c->mask, c->pre, c->ct, madd, t, LW,
					     a->dropout, seed, drop, training);
			else
				head_forward(&g, c->prob, c->mask, c->pre, c->ct, madd, t, nl,
					     a->dropout, seed, drop, training);
		}
	}
}

HR_MULTIVERSION
static void attend_backward(struct mhsa_cache *c, const struct nn_mhsa *a, const float *dY, int B)
{
	const float *mask = a->dropout > 0.0f ? c->mask : NULL;
	vf *t = scratch(c);

	for (int b0 = 0; b0 < B; b0 += LW) {
		int nl = B - b0 < LW ? B - b0 : LW;
		for (int h = 0; h < a->H; h++) {
			struct head g = head_of(a, B, h);
			g.b0 = b0;
			if (nl == LW)
				head_backward(&g, c->dct, dY, c->ct, c->prob, mask, t, LW);
			else
				head_backward(&g, c->dct, dY, c->ct, c->prob, mask, t, nl);
		}
	}
}

/*
 * LayerNorm over the A features of every token, lane layout: out (A, F, B)
 * from pre; mean and rstd (F, B).  Float sums over A (a few dozen).
 */
HR_MULTIVERSION
static void ln_forward(float *out, float *mean, float *rstd, const float *pre, const float *gamma,
		       const float *beta, int A, int T)
{
	memset(mean, 0, (size_t)T * sizeof(float));
	memset(rstd, 0, (size_t)T * sizeof(float));
	for (int c = 0; c < A; c++)
		for (int e = 0; e < T; e++)
			mean[e] += pre[(size_t)c * T + e];
	for (int e = 0; e < T; e++)
		mean[e] /= (float)A;
	for (int c = 0; c < A; c++)
		for (int e = 0; e < T; e++) {
			float x = pre[(size_t)c * T + e] - mean[e];
			rstd[e] += x * x;
		}
	for (int e = 0; e < T; e++)
		rstd[e] = 1.0f / sqrtf(rstd[e] / (float)A + NN_MHSA_LN_EPS);
	for (int c = 0; c < A; c++)
		for (int e = 0; e < T; e++)
			out[(size_t)c * T + e] =
				(pre[(size_t)c * T + e] - mean[e]) * rstd[e] * gamma[c] + beta[c];
}

/*
 * dx (A, F, B) = d/d pre from dy; dgamma, dbeta (A) accumulated (NULL:
 * skipped).  sg, sgx: T floats of scratch.  With dn = dy gamma and xhat
 * the normalised input: dx = rstd (dn - mean(dn) - xhat mean(dn xhat)).
 */
HR_MULTIVERSION
static void ln_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *pre,
			const float *mean, const float *rstd, const float *gamma, float *sg,
			float *sgx, int A, int T)
{
	memset(sg, 0, (size_t)T * sizeof(float));
	memset(sgx, 0, (size_t)T * sizeof(float));
	for (int c = 0; c < A; c++) {
		const float *g = dy + (size_t)c * T, *x = pre + (size_t)c * T;
		float dgc = 0.0f, dbc = 0.0f;
		for (int e = 0; e < T; e++) {
			float xh = (x[e] - mean[e]) * rstd[e], dn = g[e] * gamma[c];
			sg[e] += dn;
			sgx[e] += dn * xh;
			dgc += g[e] * xh;
			dbc += g[e];
		}
		if (dgamma)
			dgamma[c] += dgc;
		if (dbeta)
			dbeta[c] += dbc;
	}
	for (int c = 0; c < A; c++) {
		const float *g = dy + (size_t)c * T, *x = pre + (size_t)c * T;
		float *o = dx + (size_t)c * T;
		for (int e = 0; e < T; e++) {
			float xh = (x[e] - mean[e]) * rstd[e];
			o[e] = rstd[e] * (g[e] * gamma[c] - (sg[e] + xh * sgx[e]) / (float)A);
		}
	}
}

/*
 * dst[j ds + k] = src[k ss + j] (add: +=) for j < nj, k < nk, both <= LW:
 * one tile of a transpose, each dst row written whole from a column of
 * src (gathers).  Inlined with constant bounds for whole tiles.  (Through
 * a local tile, written scalar by scalar and read back as vectors, it was
 * 4x slower: store forwarding fails.)
 */
KERNEL void tile_move(float *dst, size_t ds, const float *src, size_t ss, int nj, int nk, bool add)
{
	for (int j = 0; j < nj; j++) {
		float *o = dst + j * ds;
		const float *col = src + j;
		if (add)
			for (int k = 0; k < nk; k++)
				o[k] += col[k * ss];
		else
			for (int k = 0; k < nk; k++)
				o[k] = col[k * ss];
	}
}

HR_MULTIVERSION
static void transpose_tile(float *dst, size_t ds, const float *src, size_t ss, int nj, int nk,
			   bool add)
{
	if (nj == LW && nk == LW && add)
		tile_move(dst, ds, src, ss, LW, LW, true);
	else if (nj == LW && nk == LW)
		tile_move(dst, ds, src, ss, LW, LW, false);
	else
		tile_move(dst, ds, src, ss, nj, nk, add);
}

/* lanes (C, F, B), rows ld floats apart, = rows (B, F, C) transposed (add:
 * +=), in LW x LW tiles. */
static void rows_to_lanes(float *lanes, size_t ld, const float *rows, int C, int F, int B, bool add)
{
	size_t R = (size_t)F * C;

	for (int i = 0; i < F; i++)
		for (int b0 = 0; b0 < B; b0 += LW)
			for (int c0 = 0; c0 < C; c0 += LW)
				transpose_tile(lanes + (size_t)c0 * ld + (size_t)i * B + b0, ld,
					       rows + ((size_t)b0 * F + i) * C + c0, R,
					       C - c0 < LW ? C - c0 : LW, B - b0 < LW ? B - b0 : LW,
					       add);
}

/* rows (B, F, C) = lanes (C, F, B), rows ld floats apart, transposed (add:
 * +=), in LW x LW tiles. */
static void lanes_to_rows(float *rows, const float *lanes, size_t ld, int C, int F, int B, bool add)
{
	size_t R = (size_t)F * C;

	for (int i = 0; i < F; i++)
		for (int b0 = 0; b0 < B; b0 += LW)
			for (int c0 = 0; c0 < C; c0 += LW)
				transpose_tile(rows + ((size_t)b0 * F + i) * C + c0, R,
					       lanes + (size_t)c0 * ld + (size_t)i * B + b0, ld,
					       B - b0 < LW ? B - b0 : LW, C - c0 < LW ? C - c0 : LW,
					       add);
}

void nn_mhsa_forward(float *out, float *cache, const float *in, const float *W, const float *gamma,
		     const float *beta, const uint8_t *valid, uint64_t seed, bool training,
		     const struct nn_mhsa *a, int B)
{
	struct mhsa_cache c;
	int F = a->F, A = a->A, D = a->D, P = nn_mhsa_proj(a), T = B * F;

	mhsa_check(a, B);
	HR_ASSERT(!a->layer_norm || (gamma && beta));
	if (B == 0)
		return;
	mhsa_layout(a, B, cache, &c);
	/* the projections of every token: ct (P A, F, B) = W in^T */
	if (a->in_rows) /* F GEMMs: field i's B rows, F D floats apart */
		for (int i = 0; i < F; i++)
			nn_sgemm(false, true, P * A, B, D, 1.0f, W, D, in + (size_t)i * D, F * D,
				 0.0f, c.ct + (size_t)i * B, T);
	else
		nn_sgemm(false, false, P * A, T, D, 1.0f, W, D, in, T, 0.0f, c.ct, T);
	/* Y starts as the residual */
	if (!a->residual)
		memset(c.pre, 0, (size_t)A * T * sizeof(float));
	else if (P == 4)
		memcpy(c.pre, c.ct + (size_t)3 * A * T, (size_t)A * T * sizeof(float));
	else if (!a->in_rows)
		memcpy(c.pre, in, (size_t)A * T * sizeof(float));
	else /* D == A */
		rows_to_lanes(c.pre, (size_t)T, in, A, F, B, false);
	attend_forward(&c, a, valid, seed, training, B);
	if (a->layer_norm) {
		ln_forward(out, c.mean, c.rstd, c.pre, gamma, beta, A, T);
		nn_relu_forward(out, out, A * T);
	} else {
		nn_relu_forward(out, c.pre, A * T);
	}
}

void nn_mhsa_backward(float *dinp, float *dW, float *dgamma, float *dbeta, const float *dout,
		      float *cache, const float *out, const float *in, const float *W,
		      const float *gamma, const struct nn_mhsa *a, int B)
{
	struct mhsa_cache c;
	int F = a->F, A = a->A, D = a->D, P = nn_mhsa_proj(a), T = B * F;
	const float *dY;

	mhsa_check(a, B);
	if (B == 0 || (!dinp && !dW && !dgamma && !dbeta))
		return;
	mhsa_layout(a, B, cache, &c);
	memset(c.dy, 0, (size_t)A * T * sizeof(float));
	nn_relu_backward(c.dy, dout, out, A * T);
	dY = c.dy;
	if (a->layer_norm) {
		ln_backward(c.dpre, dgamma, dbeta, c.dy, c.pre, c.mean, c.rstd, gamma, c.t, c.t + T,
			    A, T);
		dY = c.dpre;
	}
	if (!dinp && !dW)
		return;
	/* the residual's share: through W_res, or straight to the input */
	if (a->residual && P == 4)
		memcpy(c.dct + (size_t)3 * A * T, dY, (size_t)A * T * sizeof(float));
	else if (a->residual && dinp && !a->in_rows)
		for (size_t e = 0; e < (size_t)A * T; e++)
			dinp[e] += dY[e];
	else if (a->residual && dinp) /* D == A */
		lanes_to_rows(dinp, dY, (size_t)T, A, F, B, true);
	attend_backward(&c, a, dY, B);
	if (a->in_rows) { /* per field, as the forward */
		for (int i = 0; i < F; i++) {
			const float *dci = c.dct + (size_t)i * B;
			if (dW)
				nn_sgemm(false, false, P * A, D, B, 1.0f, dci, T,
					 in + (size_t)i * D, F * D, 1.0f, dW, D);
			if (dinp)
				nn_sgemm(true, false, B, D, P * A, 1.0f, dci, T, W, D, 1.0f,
					 dinp + (size_t)i * D, F * D);
		}
		return;
	}
	if (dW)
		nn_sgemm(false, true, P * A, D, T, 1.0f, c.dct, T, in, T, 1.0f, dW, D);
	if (dinp)
		nn_sgemm(true, false, D, T, P * A, 1.0f, W, D, c.dct, T, 1.0f, dinp, T);
}

void nn_lanes_to_rows(float *rows, const float *lanes, int C, int F, int B)
{
	HR_ASSERT(C >= 0 && F >= 0 && B >= 0);
	lanes_to_rows(rows, lanes, (size_t)F * B, C, F, B, false);
}

void nn_rows_to_lanes_add(float *lanes, const float *rows, int C, int F, int B)
{
	HR_ASSERT(C >= 0 && F >= 0 && B >= 0);
	rows_to_lanes(lanes, (size_t)F * B, rows, C, F, B, true);
}

double nn_mhsa_flops(const struct nn_mhsa *a)
{
	double F = a->F, A = a->A;

	/* projections, scores, weighted sums (the norm and ReLU are not counted) */
	return 2.0 * F * a->D * nn_mhsa_proj(a) * A + 2.0 * 2.0 * F * F * A;
}
