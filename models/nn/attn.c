/*
 * attn.c - DIN's local activation unit over packed positions (attn.h), its
 * per-example softmax, weighted-sum pooling, Dice and packing.
 *
 * The first layer is the unit's cost: per position 2D x H_1 multiply-adds
 * in a GEMM (x W_1^T with the q terms hoisted per example, attn.h), then
 * the remaining layers as linear layers over the positions.
 *
 * Tiles.  The activations are (N, H) arrays of a few MB (N ~ 9k positions
 * in a batch of 256 histories of 50), and the elementwise work between
 * the GEMMs (Dice, its statistics and their gradients, packing, the
 * per-example sums) is bound by memory traffic: done over whole arrays it
 * took half of the unit's time.  So every pass runs over tiles of
 * ATTN_TILE positions, each GEMM on a tile followed at once by the
 * elementwise work that reads its output while it is in L2.  Dice's batch
 * statistics still need the whole batch: the statistics of layer l are
 * summed tile by tile (around a per-channel shift, in double) while the
 * tiles of layer l are produced, and applied in the next sweep.  Dice's
 * gate (its sigmoid) is kept for the backward's two sweeps (measured: 8%
 * faster than computing it again in each).  The first layer reads the
 * keys in place: only q * k is stored (the GEMMs take [W_k - W_d] and W_p
 * as the two column blocks of one (H_1, 2D) matrix).
 */
#include "models/nn/attn.h"

#include <math.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"
#include "models/nn/nn.h"

#define ATTN_TILE 512 /* positions per tile: a (512, 128) float tile is 256 KB */
#define DICE_CHUNK 64 /* channels per pass of the whole-array Dice calls */

/* Where each region of the workspace lies, for B examples and N positions. */
struct attn_ws {
	/* cache: written by the forward, read by the backward */
	float *Wkp;                                           /* (H_1, 2D) [W_k - W_d | W_p] */
	float *Wq;                                            /* (H_1, D) W_q + W_d */
	float *P;                                             /* (N, D) q * k */
	float *Qp;                                            /* (B, H_1) q (W_q + W_d)^T + b_1 */
	float *z[NN_ATTN_MAX_LAYERS], *a[NN_ATTN_MAX_LAYERS]; /* (N, H_l) */
	float *mean[NN_ATTN_MAX_LAYERS], *rstd[NN_ATTN_MAX_LAYERS]; /* (H_l) Dice */
	float *gate[NN_ATTN_MAX_LAYERS];                            /* (N, H_l) Dice's p */
	/* scratch */
	float *da[NN_ATTN_MAX_LAYERS];                           /* (N, H_l) d/d a_l */
	float *mg[NN_ATTN_MAX_LAYERS], *mgz[NN_ATTN_MAX_LAYERS]; /* (H_l) Dice backward means */
	float *dz;               /* (ATTN_TILE, max H) a tile of d/dz */
	float *dP;               /* (ATTN_TILE, D) a tile of d/d (q * k) */
	float *dWkp, *dWq, *dQp; /* (H_1, 2D), (H_1, D), (B, H_1) */
	float *shift;            /* (max H) Dice statistics' shift */
	double *s1, *s2, *s3;    /* (max H) Dice sums */
};

static size_t attn_layout(const struct nn_attn_shape *s, int B, int N, float *base,
			  struct attn_ws *w)
{
	size_t o = 0, n = (size_t)N, D = (size_t)s->D, H1 = (size_t)s->H[0], maxh = 0;
	size_t tile = n < ATTN_TILE ? n : ATTN_TILE;

	for (int l = 0; l < s->n; l++)
		if ((size_t)s->H[l] > maxh)
			maxh = (size_t)s->H[l];
#define PUT(f, k) (w->f = base ? base + o : NULL, o += ((k) + 15) & ~(size_t)15)
#define PUTD(f, k) \
	(w->f = base ? (double *)(void *)(base + o) : NULL, o += (2 * (k) + 15) & ~(size_t)15)
	PUT(Wkp, H1 * 2 * D);
	PUT(Wq, H1 * D);
	PUT(P, n * D);
	PUT(Qp, (size_t)B * H1);
	for (int l = 0; l < s->n; l++) {
		PUT(z[l], n * (size_t)s->H[l]);
		PUT(a[l], n * (size_t)s->H[l]);
		PUT(mean[l], (size_t)s->H[l]);
		PUT(rstd[l], (size_t)s->H[l]);
		PUT(gate[l], s->act == NN_ATTN_DICE ? n * (size_t)s->H[l] : 0);
	}
	for (int l = 0; l < s->n; l++) {
		PUT(da[l], n * (size_t)s->H[l]);
		PUT(mg[l], (size_t)s->H[l]);
		PUT(mgz[l], (size_t)s->H[l]);
	}
	PUT(dz, tile * maxh);
	PUT(dP, tile * D);
	PUT(dWkp, H1 * 2 * D);
	PUT(dWq, H1 * D);
	PUT(dQp, (size_t)B * H1);
	PUT(shift, maxh);
	PUTD(s1, maxh);
	PUTD(s2, maxh);
	PUTD(s3, maxh);
#undef PUTD
#undef PUT
	return o;
}

static void check_shape(const struct nn_attn_shape *s, int B)
{
	HR_ASSERT(B >= 0 && s->D > 0 && s->n >= 1 && s->n <= NN_ATTN_MAX_LAYERS);
	for (int l = 0; l < s->n; l++)
		HR_ASSERT(s->H[l] > 0);
	HR_ASSERT(s->act == NN_ATTN_DICE || s->act == NN_ATTN_PRELU || s->act == NN_ATTN_RELU);
}

size_t nn_attn_ws_floats(const struct nn_attn_shape *s, int B, int N)
{
	struct attn_ws w;

	check_shape(s, B);
	HR_ASSERT(N >= 0);
	return attn_layout(s, B, N, NULL, &w);
}

/* ---- elementwise kernels, built per CPU -------------------------------------- */

/*
 * GCC keeps a float select followed by arithmetic as a branch under
 * -ftrapping-math (its default), and a loop with a branch does not
 * vectorise: vexpf's clamp would leave the Dice loops scalar in the AVX2
 * and baseline clones (measured with -fopt-info-vec).  Nothing here relies
 * on floating-point exceptions.  Clang if-converts them anyway.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

/*
 * e^x without a call: x = n ln 2 + r (Cody-Waite, |r| <= ln 2 / 2), e^r by
 * its degree-7 Taylor polynomial (truncation < 6e-9), 2^n by the exponent
 * bits.  x is clamped to [-87, 87], where the result is a normal float;
 * NaN gives e^-87 (quiet comparisons: no exception, and no NaN reaches the
 * int conversion; Dice's output keeps the NaN through its factor x).
 * Branch-free, so that loops over it vectorise.
 */
static inline float vexpf(float x)
{
	float c = __builtin_isgreater(x, -87.0f) ? (__builtin_isless(x, 87.0f) ? x : 87.0f) :
						   -87.0f;
	float fn = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(c / ln 2) */
	float r = (c - fn * 0.693145751953125f) - fn * 1.42860682030941723e-6f;
	float p = 1.0f / 5040;
	uint32_t bits = (uint32_t)((int32_t)fn + 127) << 23; /* n + 127 in [1, 253] */
	float scale;

	p = p * r + 1.0f / 720;
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	memcpy(&scale, &bits, sizeof(scale));
	return p * scale;
}

/*
 * 1 / x for x >= 1 without a division (a vector division is the slowest
 * instruction in these loops): the exponent-flipping estimate, error
 * under 1/8, then three Newton steps (error squared each: < 6e-8).
 */
static inline float vrecipf(float x)
{
	uint32_t i;
	float r;

	memcpy(&i, &x, sizeof(i));
	i = 0x7ef311c7u - i;
	memcpy(&r, &i, sizeof(r));
	r = r * (2.0f - x * r);
	r = r * (2.0f - x * r);
	return r * (2.0f - x * r);
}

/* Dice's gate p = sigmoid((x - mean) rstd). */
static inline float dice_gate(float x, float m, float r)
{
	return vrecipf(1.0f + vexpf((m - x) * r));
}

/*
 * Rows [0, rows) of width w, row stride ld (the Dice kernels below).
 * s1 += x - K, s2 += (x - K)^2 per channel: the statistics around a shift
 * K near the mean (a value of the channel) do not cancel in double.
 */
HR_MULTIVERSION
static void dice_sum_stats(double *restrict s1, double *restrict s2, const float *restrict K,
			   const float *restrict x, int rows, int w, int ld)
{
	for (int t = 0; t < rows; t++) {
		const float *xt = x + (size_t)t * ld;
		for (int h = 0; h < w; h++) {
			double c = xt[h] - K[h];
			s1[h] += c;
			s2[h] += c * c;
		}
	}
}

/* mean, rstd from the sums of n values around K. */
static void dice_finish_stats(float *mean, float *rstd, const double *s1, const double *s2,
			      const float *K, float eps, int n, int w)
{
	for (int h = 0; h < w; h++) {
		double m = n > 0 ? s1[h] / n : 0.0, v = n > 0 ? s2[h] / n - m * m : 0.0;
		mean[h] = (float)(K[h] + m);
		rstd[h] = (float)(1.0 / sqrt((v > 0 ? v : 0.0) + eps));
	}
}

/* y = x (alpha + (1 - alpha) p) */
HR_MULTIVERSION
static void dice_apply(float *restrict y, const float *restrict x, const float *restrict mean,
		       const float *restrict rstd, const float *restrict alpha, int rows, int w,
		       int ld)
{
	for (int t = 0; t < rows; t++) {
		const float *xt = x + (size_t)t * ld;
		float *yt = y + (size_t)t * ld;
		for (int h = 0; h < w; h++)
			yt[h] = xt[h] *
				(alpha[h] + (1.0f - alpha[h]) * dice_gate(xt[h], mean[h], rstd[h]));
	}
}

/*
 * The backward's sums per channel, with one = dy x (1 - p) and
 * gz = one (1 - alpha) p (= dL/dz, z = (x - mean) rstd):
 * sa += one (dL/dalpha), sg += gz, sgz += gz z.
 */
HR_MULTIVERSION
static void dice_sum_back(double *restrict sa, double *restrict sg, double *restrict sgz,
			  const float *restrict dy, const float *restrict x,
			  const float *restrict mean, const float *restrict rstd,
			  const float *restrict alpha, int rows, int w, int ld)
{
	/* float sums over blocks of 64 rows (full-width vectors), then into double */
	for (int h0 = 0; h0 < w; h0 += DICE_CHUNK) {
		int cw = w - h0 < DICE_CHUNK ? w - h0 : DICE_CHUNK;
		const float *m = mean + h0, *r = rstd + h0, *al = alpha + h0;
		for (int t0 = 0; t0 < rows; t0 += 64) {
			float fa[DICE_CHUNK] = {0}, fg[DICE_CHUNK] = {0}, fz[DICE_CHUNK] = {0};
			int t1 = rows - t0 < 64 ? rows : t0 + 64;
			for (int t = t0; t < t1; t++) {
				const float *xt = x + (size_t)t * ld + h0,
					    *g = dy + (size_t)t * ld + h0;
				for (int h = 0; h < cw; h++) {
					float p = dice_gate(xt[h], m[h], r[h]);
					float one = g[h] * xt[h] * (1.0f - p);
					float gz = one * (1.0f - al[h]) * p;
					fa[h] += one;
					fg[h] += gz;
					fz[h] += gz * ((xt[h] - m[h]) * r[h]);
				}
			}
			for (int h = 0; h < cw; h++) {
				sa[h0 + h] += fa[h];
				sg[h0 + h] += fg[h];
				sgz[h0 + h] += fz[h];
			}
		}
	}
}

static inline float dice_dx1(float g, float x, float m, float r, float al, float mg, float mgz)
{
	float p = dice_gate(x, m, r), gz = g * x * (1.0f - p) * (1.0f - al) * p;

	return g * (al + (1.0f - al) * p) + r * (gz - mg - (x - m) * r * mgz);
}

HR_MULTIVERSION
static void dice_dx(float *restrict dx, const float *restrict dy, const float *restrict x,
		    const float *restrict mean, const float *restrict rstd,
		    const float *restrict alpha, const float *restrict mg,
		    const float *restrict mgz, bool acc, int rows, int w, int ld)
{
	for (int t = 0; t < rows; t++) {
		const float *xt = x + (size_t)t * ld, *g = dy + (size_t)t * ld;
		float *d = dx + (size_t)t * ld;
		if (acc) /* two loops: a load under a condition would keep them scalar */
			for (int h = 0; h < w; h++)
				d[h] += dice_dx1(g[h], xt[h], mean[h], rstd[h], alpha[h], mg[h],
						 mgz[h]);
		else
			for (int h = 0; h < w; h++)
				d[h] = dice_dx1(g[h], xt[h], mean[h], rstd[h], alpha[h], mg[h],
						mgz[h]);
	}
}

HR_MULTIVERSION
static void dice_apply_g(float *restrict y, float *restrict gate, const float *restrict x,
			 const float *restrict mean, const float *restrict rstd,
			 const float *restrict alpha, int rows, int w)
{
	for (int t = 0; t < rows; t++) {
		const float *xt = x + (size_t)t * w;
		float *yt = y + (size_t)t * w, *g = gate + (size_t)t * w;
		for (int h = 0; h < w; h++) {
			float p = dice_gate(xt[h], mean[h], rstd[h]);
			g[h] = p;
			yt[h] = xt[h] * (alpha[h] + (1.0f - alpha[h]) * p);
		}
	}
}

HR_MULTIVERSION
static void dice_sum_back_g(double *restrict sa, double *restrict sg, double *restrict sgz,
			    const float *restrict dy, const float *restrict x,
			    const float *restrict gate, const float *restrict mean,
			    const float *restrict rstd, const float *restrict alpha, int rows,
			    int w)
{
	for (int h0 = 0; h0 < w; h0 += DICE_CHUNK) {
		int cw = w - h0 < DICE_CHUNK ? w - h0 : DICE_CHUNK;
		const float *m = mean + h0, *r = rstd + h0, *al = alpha + h0;
		for (int t0 = 0; t0 < rows; t0 += 64) {
			float fa[DICE_CHUNK] = {0}, fg[DICE_CHUNK] = {0}, fz[DICE_CHUNK] = {0};
			int t1 = rows - t0 < 64 ? rows : t0 + 64;
			for (int t = t0; t < t1; t++) {
				const float *xt = x + (size_t)t * w + h0,
					    *g = dy + (size_t)t * w + h0;
				const float *pt = gate + (size_t)t * w + h0;
				for (int h = 0; h < cw; h++) {
					float p = pt[h];
					float one = g[h] * xt[h] * (1.0f - p);
					float gz = one * (1.0f - al[h]) * p;
					fa[h] += one;
					fg[h] += gz;
					fz[h] += gz * ((xt[h] - m[h]) * r[h]);
				}
			}
			for (int h = 0; h < cw; h++) {
				sa[h0 + h] += fa[h];
				sg[h0 + h] += fg[h];
				sgz[h0 + h] += fz[h];
			}
		}
	}
}

HR_MULTIVERSION
static void dice_dx_g(float *restrict dx, const float *restrict dy, const float *restrict x,
		      const float *restrict gate, const float *restrict mean,
		      const float *restrict rstd, const float *restrict alpha,
		      const float *restrict mg, const float *restrict mgz, int rows, int w)
{
	for (int t = 0; t < rows; t++) {
		const float *xt = x + (size_t)t * w, *g = dy + (size_t)t * w,
			    *pt = gate + (size_t)t * w;
		float *d = dx + (size_t)t * w;
		for (int h = 0; h < w; h++) {
			float p = pt[h], al = alpha[h], r = rstd[h];
			float gz = g[h] * xt[h] * (1.0f - p) * (1.0f - al) * p;
			d[h] = g[h] * (al + (1.0f - al) * p) +
			       r * (gz - mg[h] - (xt[h] - mean[h]) * r * mgz[h]);
		}
	}
}

/* P[t] = q_b * k_t and z1[t] = Qp[b], positions [t0, t1) (the GEMMs add to z1). */
HR_MULTIVERSION
static void pack_rows(float *restrict P, float *restrict z1, const float *restrict q,
		      const float *restrict Qp, const float *restrict keys, const uint32_t *off,
		      int b, uint32_t t0, uint32_t t1, int D, int H1)
{
	for (; t0 < t1; b++) {
		const float *qb = q + (size_t)b * D, *qp = Qp + (size_t)b * H1;
		uint32_t end = off[b + 1] < t1 ? off[b + 1] : t1;
		for (uint32_t t = t0; t < end; t++) {
			const float *k = keys + (size_t)t * D;
			float *x = P + (size_t)t * D, *z = z1 + (size_t)t * H1;
			for (int d = 0; d < D; d++)
				x[d] = qb[d] * k[d];
			for (int h = 0; h < H1; h++)
				z[h] = qp[h];
		}
		t0 = end;
	}
}

/* score[t] = <a[t], w_out> + b_out */
HR_MULTIVERSION
static void out_scores(float *restrict score, const float *restrict a, const float *restrict w_out,
		       float b_out, int N, int H)
{
	for (int t = 0; t < N; t++)
		score[t] = nn_dotf(a + (size_t)t * H, w_out, H) + b_out;
}

/* da[t] = ds[t] w_out; gw_out += sum_t ds[t] a[t]; gb_out += sum_t ds[t] */
HR_MULTIVERSION
static void out_back(float *restrict da, float *restrict gwo, float *restrict gbo,
		     const float *restrict ds, const float *restrict a, const float *restrict w_out,
		     int N, int H)
{
	float sum = 0;

	for (int t = 0; t < N; t++) {
		const float *at = a + (size_t)t * H;
		float *d = da + (size_t)t * H, gs = ds[t];
		for (int h = 0; h < H; h++)
			d[h] = gs * w_out[h];
		if (gwo)
			for (int h = 0; h < H; h++)
				gwo[h] += gs * at[h];
		sum += gs;
	}
	if (gbo)
		gbo[0] += sum;
}

/*
 * Positions [t0, t1) of example b on: dQp[b] += dz[t] (dz a tile starting
 * at t0), and from dP (the tile's d(q * k)): dkeys[t] += dP q_b,
 * dq_b += dP k_t (the GEMM added dz (W_k - W_d) to dkeys already).
 */
HR_MULTIVERSION
static void first_back_rows(float *restrict dQp, float *restrict dq, float *restrict dkeys,
			    const float *restrict dz, const float *restrict dP,
			    const float *restrict q, const float *restrict keys,
			    const uint32_t *off, int b, uint32_t t0, uint32_t t1, int D, int H1)
{
	uint32_t base = t0;

	for (; t0 < t1; b++) {
		const float *qb = q + (size_t)b * D;
		float *qp = dQp + (size_t)b * H1, *dqb = dq ? dq + (size_t)b * D : NULL;
		uint32_t end = off[b + 1] < t1 ? off[b + 1] : t1;
		for (uint32_t t = t0; t < end; t++) {
			const float *g = dz + (size_t)(t - base) * H1, *dx,
				    *k = keys + (size_t)t * D;
			for (int h = 0; h < H1; h++)
				qp[h] += g[h];
			if (!dP)
				continue;
			dx = dP + (size_t)(t - base) * D;
			if (dkeys) {
				float *dk = dkeys + (size_t)t * D;
				for (int d = 0; d < D; d++)
					dk[d] += dx[d] * qb[d];
			}
			if (dqb)
				for (int d = 0; d < D; d++)
					dqb[d] += dx[d] * k[d];
		}
		t0 = end;
	}
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* The example holding position t < N, from example b on. */
static int example_of(const uint32_t *off, int b, uint32_t t)
{
	while (off[b + 1] <= t)
		b++;
	return b;
}

/* Layer l's mean and rstd: from the sums (Dice in training), the running
 * statistics (Dice otherwise); nothing for the other activations. */
static void finish_stats(const struct nn_attn_shape *s, const struct nn_attn_params *p,
			 struct attn_ws *w, int l, bool training, int N)
{
	if (s->act != NN_ATTN_DICE)
		return;
	if (training) {
		dice_finish_stats(w->mean[l], w->rstd[l], w->s1, w->s2, w->shift, s->eps, N,
				  s->H[l]);
		return;
	}
	HR_ASSERT(p->run_mean[l] != NULL && p->run_var[l] != NULL);
	for (int h = 0; h < s->H[l]; h++) {
		w->mean[l][h] = p->run_mean[l][h];
		w->rstd[l][h] = (float)(1.0 / sqrt((double)p->run_var[l][h] + s->eps));
	}
}

/* Adds the rows of z (rows, H) to Dice's training statistics; the first tile sets the shift. */
static void add_stats(const struct nn_attn_shape *s, struct attn_ws *w, const float *z, uint32_t t0,
		      int rows, int H, bool training)
{
	if (s->act != NN_ATTN_DICE || !training)
		return;
	if (t0 == 0) {
		memcpy(w->shift, z, (size_t)H * sizeof(float));
		memset(w->s1, 0, (size_t)H * sizeof(double));
		memset(w->s2, 0, (size_t)H * sizeof(double));
	}
	dice_sum_stats(w->s1, w->s2, w->shift, z, rows, H, H);
}

/* Layer l's activation on positions [t0, t0 + rows). */
static void act_rows(const struct nn_attn_shape *s, const struct nn_attn_params *p,
		     struct attn_ws *w, int l, uint32_t t0, int rows)
{
	int H = s->H[l];
	const float *z = w->z[l] + (size_t)t0 * H;
	float *a = w->a[l] + (size_t)t0 * H;

	switch (s->act) {
	case NN_ATTN_DICE:
		dice_apply_g(a, w->gate[l] + (size_t)t0 * H, z, w->mean[l], w->rstd[l], p->alpha[l],
			     rows, H);
		break;
	case NN_ATTN_PRELU: nn_prelu_forward(a, z, p->alpha[l], rows, H); break;
	case NN_ATTN_RELU: nn_relu_forward(a, z, rows * H); break;
	}
}

static int tile_rows(int N, uint32_t t0)
{
	return N - (int)t0 < ATTN_TILE ? N - (int)t0 : ATTN_TILE;
}

void nn_attn_forward(float *score, float *ws, const float *q, const float *keys,
		     const uint32_t *off, const struct nn_attn_params *p,
		     const struct nn_attn_shape *s, bool training, int B)
{
	struct attn_ws w;
	int D = s->D, H1, N, Hn, b = 0;

	check_shape(s, B);
	HR_ASSERT(off[0] == 0);
	for (int k = 0; k < B; k++)
		HR_ASSERT(off[k + 1] >= off[k]);
	N = (int)off[B];
	H1 = s->H[0];
	Hn = s->H[s->n - 1];
	attn_layout(s, B, N, ws, &w);
	if (N == 0 && s->act == NN_ATTN_DICE && training) { /* no positions: stats of nothing */
		memset(w.shift, 0, (size_t)H1 * sizeof(float));
		for (int l = 0; l < s->n; l++) {
			memset(w.s1, 0, (size_t)s->H[l] * sizeof(double));
			finish_stats(s, p, &w, l, training, 0);
		}
		return;
	}

	/* x W_1^T = q (W_q + W_d)^T + [k | q * k] [W_k - W_d | W_p]^T */
	for (int h = 0; h < H1; h++) {
		const float *W = p->W[0] + (size_t)h * 4 * D;
		float *wq = w.Wq + (size_t)h * D, *wkp = w.Wkp + (size_t)h * 2 * D;
		for (int d = 0; d < D; d++) {
			wq[d] = W[d] + W[2 * D + d];
			wkp[d] = W[D + d] - W[2 * D + d];
			wkp[D + d] = W[3 * D + d];
		}
	}
	nn_linear_forward(w.Qp, q, w.Wq, p->b[0], B, D, H1);
	for (uint32_t t0 = 0; t0 < (uint32_t)N; t0 += ATTN_TILE) {
		int rows = tile_rows(N, t0);
		float *z = w.z[0] + (size_t)t0 * H1;
		b = example_of(off, b, t0);
		pack_rows(w.P, w.z[0], q, w.Qp, keys, off, b, t0, t0 + (uint32_t)rows, D, H1);
		/* z1 += k (W_k - W_d)^T + (q * k) W_p^T: the keys read in place */
		nn_sgemm(false, true, rows, H1, D, 1.0f, keys + (size_t)t0 * D, D, w.Wkp, 2 * D,
			 1.0f, z, H1);
		nn_sgemm(false, true, rows, H1, D, 1.0f, w.P + (size_t)t0 * D, D, w.Wkp + D, 2 * D,
			 1.0f, z, H1);
		add_stats(s, &w, z, t0, rows, H1, training);
	}
	finish_stats(s, p, &w, 0, training, N);
	for (int l = 1; l < s->n; l++) {
		int I = s->H[l - 1], O = s->H[l];
		for (uint32_t t0 = 0; t0 < (uint32_t)N; t0 += ATTN_TILE) {
			int rows = tile_rows(N, t0);
			float *z = w.z[l] + (size_t)t0 * O;
			act_rows(s, p, &w, l - 1, t0, rows);
			nn_linear_forward(z, w.a[l - 1] + (size_t)t0 * I, p->W[l], p->b[l], rows, I,
					  O);
			add_stats(s, &w, z, t0, rows, O, training);
		}
		finish_stats(s, p, &w, l, training, N);
	}
	for (uint32_t t0 = 0; t0 < (uint32_t)N; t0 += ATTN_TILE) {
		int rows = tile_rows(N, t0);
		act_rows(s, p, &w, s->n - 1, t0, rows);
		out_scores(score + t0, w.a[s->n - 1] + (size_t)t0 * Hn, p->w_out,
			   p->b_out ? p->b_out[0] : 0.0f, rows, Hn);
	}
}

/* Adds Dice's backward sums of layer l over positions [t0, t0 + rows) (da_l there). */
static void add_back_sums(const struct nn_attn_shape *s, struct attn_ws *w, int l, uint32_t t0,
			  int rows, const float *p_alpha)
{
	int H = s->H[l];

	if (s->act != NN_ATTN_DICE)
		return;
	if (t0 == 0) {
		memset(w->s1, 0, (size_t)H * sizeof(double));
		memset(w->s2, 0, (size_t)H * sizeof(double));
		memset(w->s3, 0, (size_t)H * sizeof(double));
	}
	dice_sum_back_g(w->s1, w->s2, w->s3, w->da[l] + (size_t)t0 * H, w->z[l] + (size_t)t0 * H,
			w->gate[l] + (size_t)t0 * H, w->mean[l], w->rstd[l], p_alpha, rows, H);
}

/* Layer l's backward sums done: dalpha, and the means mg, mgz (0 without batch statistics). */
static void finish_back(const struct nn_attn_shape *s, const struct nn_attn_grads *g,
			struct attn_ws *w, int l, bool training, int N)
{
	int H = s->H[l];

	if (s->act != NN_ATTN_DICE)
		return;
	for (int h = 0; h < H; h++) {
		if (g->alpha[l])
			g->alpha[l][h] += (float)w->s1[h];
		w->mg[l][h] = training && N > 0 ? (float)(w->s2[h] / N) : 0.0f;
		w->mgz[l][h] = training && N > 0 ? (float)(w->s3[h] / N) : 0.0f;
	}
}

/* dz (rows, H_l) = d/dz_l at positions [t0, t0 + rows) (written); PReLU's dalpha +=. */
static void act_back_rows(const struct nn_attn_shape *s, const struct nn_attn_params *p,
			  const struct nn_attn_grads *g, struct attn_ws *w, int l, float *dz,
			  uint32_t t0, int rows)
{
	int H = s->H[l];
	const float *da = w->da[l] + (size_t)t0 * H, *z = w->z[l] + (size_t)t0 * H;

	if (s->act == NN_ATTN_DICE) {
		dice_dx_g(dz, da, z, w->gate[l] + (size_t)t0 * H, w->mean[l], w->rstd[l],
			  p->alpha[l], w->mg[l], w->mgz[l], rows, H);
		return;
	}
	memset(dz, 0, (size_t)rows * H * sizeof(float));
	if (s->act == NN_ATTN_PRELU)
		nn_prelu_backward(dz, g->alpha[l], da, z, p->alpha[l], rows, H);
	else
		nn_relu_backward(dz, da, w->a[l] + (size_t)t0 * H, rows * H);
}

void nn_attn_backward(float *dq, float *dkeys, const struct nn_attn_grads *g, const float *dscore,
		      float *ws, const float *q, const float *keys, const uint32_t *off,
		      const struct nn_attn_params *p, const struct nn_attn_shape *s, bool training,
		      int B)
{
	struct attn_ws w;
	int N, n = s->n, Hn, D = s->D, H1 = s->H[0], b = 0;

	check_shape(s, B);
	N = (int)off[B];
	Hn = s->H[n - 1];
	attn_layout(s, B, N, ws, &w);
	if (N == 0)
		return;
	/* s_t = w_out . a_t + b_out, with layer n - 1's sums */
	for (uint32_t t0 = 0; t0 < (uint32_t)N; t0 += ATTN_TILE) {
		int rows = tile_rows(N, t0);
		out_back(w.da[n - 1] + (size_t)t0 * Hn, g->w_out, g->b_out, dscore + t0,
			 w.a[n - 1] + (size_t)t0 * Hn, p->w_out, rows, Hn);
		add_back_sums(s, &w, n - 1, t0, rows, p->alpha[n - 1]);
	}
	finish_back(s, g, &w, n - 1, training, N);
	for (int l = n - 1; l >= 1; l--) {
		int I = s->H[l - 1], O = s->H[l];
		for (uint32_t t0 = 0; t0 < (uint32_t)N; t0 += ATTN_TILE) {
			int rows = tile_rows(N, t0);
			const float *a = w.a[l - 1] + (size_t)t0 * I;
			act_back_rows(s, p, g, &w, l, w.dz, t0, rows);
			if (g->W[l]) /* dW_l (O, I) += dz^T a_(l-1) */
				nn_sgemm(true, false, O, I, rows, 1.0f, w.dz, O, a, I, 1.0f,
					 g->W[l], I);
			if (g->b[l])
				for (int r = 0; r < rows; r++)
					for (int o = 0; o < O; o++)
						g->b[l][o] += w.dz[(size_t)r * O + o];
			/* da_(l-1) (rows, I) = dz W_l */
			nn_sgemm(false, false, rows, I, O, 1.0f, w.dz, O, p->W[l], I, 0.0f,
				 w.da[l - 1] + (size_t)t0 * I, I);
			add_back_sums(s, &w, l - 1, t0, rows, p->alpha[l - 1]);
		}
		finish_back(s, g, &w, l - 1, training, N);
	}
	/* the first layer: W_1 through Wkp and Wq, q through Qp and P, keys through P and W_k */
	memset(w.dQp, 0, (size_t)B * H1 * sizeof(float));
	memset(w.dWkp, 0, (size_t)H1 * 2 * D * sizeof(float));
	for (uint32_t t0 = 0; t0 < (uint32_t)N; t0 += ATTN_TILE) {
		int rows = tile_rows(N, t0);
		b = example_of(off, b, t0);
		act_back_rows(s, p, g, &w, 0, w.dz, t0, rows);
		if (g->W[0]) { /* dWkp (H_1, 2D) += dz^T [k | q * k] */
			nn_sgemm(true, false, H1, D, rows, 1.0f, w.dz, H1, keys + (size_t)t0 * D, D,
				 1.0f, w.dWkp, 2 * D);
			nn_sgemm(true, false, H1, D, rows, 1.0f, w.dz, H1, w.P + (size_t)t0 * D, D,
				 1.0f, w.dWkp + D, 2 * D);
		}
		if (dkeys) /* dkeys += dz (W_k - W_d) */
			nn_sgemm(false, false, rows, D, H1, 1.0f, w.dz, H1, w.Wkp, 2 * D, 1.0f,
				 dkeys + (size_t)t0 * D, D);
		if (dq || dkeys) /* dP (rows, D) = dz W_p */
			nn_sgemm(false, false, rows, D, H1, 1.0f, w.dz, H1, w.Wkp + D, 2 * D, 0.0f,
				 w.dP, D);
		first_back_rows(w.dQp, dq, dkeys, w.dz, dq || dkeys ? w.dP : NULL, q, keys, off, b,
				t0, t0 + (uint32_t)rows, D, H1);
	}
	if (g->b[0])
		for (int k = 0; k < B; k++)
			for (int h = 0; h < H1; h++)
				g->b[0][h] += w.dQp[(size_t)k * H1 + h];
	if (g->W[0]) { /* dWq (H_1, D) = dQp^T q; then back to W_1's blocks */
		nn_sgemm(true, false, H1, D, B, 1.0f, w.dQp, H1, q, D, 0.0f, w.dWq, D);
		for (int h = 0; h < H1; h++) {
			float *gw = g->W[0] + (size_t)h * 4 * D;
			const float *dwq = w.dWq + (size_t)h * D, *dwk = w.dWkp + (size_t)h * 2 * D;
			for (int d = 0; d < D; d++) {
				gw[d] += dwq[d];
				gw[D + d] += dwk[d];
				gw[2 * D + d] += dwq[d] - dwk[d];
				gw[3 * D + d] += dwk[D + d];
			}
		}
	}
	if (dq) /* dq (B, D) += dQp Wq */
		nn_sgemm(false, false, B, D, H1, 1.0f, w.dQp, H1, w.Wq, D, 1.0f, dq, D);
}

void nn_attn_update_stats(float *const run_mean[NN_ATTN_MAX_LAYERS],
			  float *const run_var[NN_ATTN_MAX_LAYERS], const float *ws,
			  const struct nn_attn_shape *s, float momentum, int B, int N)
{
	struct attn_ws w;

	check_shape(s, B);
	if (s->act != NN_ATTN_DICE)
		return;
	attn_layout(s, B, N, (float *)ws, &w); /* only read */
	for (int l = 0; l < s->n; l++)
		nn_running_stats_update(run_mean[l], run_var[l], w.mean[l], w.rstd[l], s->eps,
					momentum, N, s->H[l]);
}

/* ---- Dice over a whole array (the DNN's) ------------------------------------ */

void nn_attn_dice_forward(float *out, float *mean, float *rstd, const float *in, const float *alpha,
			  const float *run_mean, const float *run_var, float eps, bool training,
			  int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps >= 0.0f);
	for (int h0 = 0; h0 < D; h0 += DICE_CHUNK) {
		int w = D - h0 < DICE_CHUNK ? D - h0 : DICE_CHUNK;
		if (training) {
			double s1[DICE_CHUNK] = {0}, s2[DICE_CHUNK] = {0};
			float K[DICE_CHUNK] = {0};
			if (B > 0)
				memcpy(K, in + h0, (size_t)w * sizeof(float));
			dice_sum_stats(s1, s2, K, in + h0, B, w, D);
			dice_finish_stats(mean + h0, rstd + h0, s1, s2, K, eps, B, w);
		} else {
			HR_ASSERT(run_mean != NULL && run_var != NULL);
			for (int h = h0; h < h0 + w; h++) {
				mean[h] = run_mean[h];
				rstd[h] = (float)(1.0 / sqrt((double)run_var[h] + eps));
			}
		}
	}
	for (int h0 = 0; h0 < D; h0 += DICE_CHUNK) {
		int w = D - h0 < DICE_CHUNK ? D - h0 : DICE_CHUNK;
		dice_apply(out + h0, in + h0, mean + h0, rstd + h0, alpha + h0, B, w, D);
	}
}

void nn_attn_dice_backward(float *dinp, float *dalpha, const float *dout, const float *in,
			   const float *mean, const float *rstd, const float *alpha, bool training,
			   int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	if (B == 0)
		return;
	for (int h0 = 0; h0 < D; h0 += DICE_CHUNK) {
		int w = D - h0 < DICE_CHUNK ? D - h0 : DICE_CHUNK;
		double sa[DICE_CHUNK] = {0}, sg[DICE_CHUNK] = {0}, sgz[DICE_CHUNK] = {0};
		float mg[DICE_CHUNK], mgz[DICE_CHUNK];
		dice_sum_back(sa, sg, sgz, dout + h0, in + h0, mean + h0, rstd + h0, alpha + h0, B,
			      w, D);
		for (int j = 0; j < w; j++) {
			if (dalpha)
				dalpha[h0 + j] += (float)sa[j];
			mg[j] = training ? (float)(sg[j] / B) : 0.0f;
			mgz[j] = training ? (float)(sgz[j] / B) : 0.0f;
		}
		if (dinp)
			dice_dx(dinp + h0, dout + h0, in + h0, mean + h0, rstd + h0, alpha + h0, mg,
				mgz, true, B, w, D);
	}
}

void nn_attn_softmax_forward(float *prob, const float *score, const uint32_t *off, int B)
{
	HR_ASSERT(B >= 0);
	for (int b = 0; b < B; b++) {
		int n = (int)(off[b + 1] - off[b]);
		if (n > 0)
			nn_softmax_forward(prob + off[b], score + off[b], NULL, 1, n);
	}
}

void nn_attn_softmax_backward(float *dscore, const float *dprob, const float *prob,
			      const uint32_t *off, int B)
{
	HR_ASSERT(B >= 0);
	for (int b = 0; b < B; b++) {
		int n = (int)(off[b + 1] - off[b]);
		if (n > 0)
			nn_softmax_backward(dscore + off[b], dprob + off[b], prob + off[b], 1, n);
	}
}

HR_MULTIVERSION
static void pool_fwd(float *restrict out, const float *restrict w, const float *restrict v,
		     const uint32_t *off, int B, int D)
{
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * D;
		for (int d = 0; d < D; d++)
			o[d] = 0;
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			const float *x = v + (size_t)t * D;
			for (int d = 0; d < D; d++)
				o[d] += w[t] * x[d];
		}
	}
}

void nn_attn_pool_forward(float *out, const float *w, const float *v, const uint32_t *off, int B,
			  int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	pool_fwd(out, w, v, off, B, D);
}

HR_MULTIVERSION
static void pool_back(float *restrict dw, float *restrict dv, const float *restrict dout,
		      const float *restrict w, const float *restrict v, const uint32_t *off, int B,
		      int D)
{
	for (int b = 0; b < B; b++) {
		const float *g = dout + (size_t)b * D;
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			if (dw)
				dw[t] += nn_dotf(g, v + (size_t)t * D, D);
			if (dv) {
				float *x = dv + (size_t)t * D;
				for (int d = 0; d < D; d++)
					x[d] += w[t] * g[d];
			}
		}
	}
}

void nn_attn_pool_backward(float *dw, float *dv, const float *dout, const float *w, const float *v,
			   const uint32_t *off, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	pool_back(dw, dv, dout, w, v, off, B, D);
}

/* ---- packing ------------------------------------------------------------- */

uint32_t nn_attn_pack(float *packed, uint32_t *off, const float *padded, const uint32_t *lens,
		      int B, int T, int D)
{
	HR_ASSERT(B >= 0 && T >= 0 && D >= 0);
	off[0] = 0;
	for (int b = 0; b < B; b++) {
		HR_ASSERT(lens[b] <= (uint32_t)T);
		if (packed)
			memcpy(packed + (size_t)off[b] * D, padded + (size_t)b * T * D,
			       (size_t)lens[b] * D * sizeof(float));
		off[b + 1] = off[b] + lens[b];
	}
	return off[B];
}

void nn_attn_unpack(float *out, const float *v, const uint32_t *off, float fill, int B, int T)
{
	HR_ASSERT(B >= 0 && T >= 0);
	for (int b = 0; b < B; b++) {
		uint32_t n = off[b + 1] - off[b];
		HR_ASSERT(n <= (uint32_t)T);
		for (int t = 0; t < T; t++)
			out[(size_t)b * T + t] = (uint32_t)t < n ? v[off[b] + (uint32_t)t] : fill;
	}
}
