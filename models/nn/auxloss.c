/* auxloss.c - DIEN's auxiliary loss over packed sequences (seq.h). */
#include "models/nn/seq.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"
#include "models/nn/fastmath.h"
#include "models/nn/internal.h"
#include "models/nn/nn.h"

/*
 * Pair j < M is (state at position h, item at position q = bs[0] + j),
 * q the position after h in the same row; pair M + j is its negative.
 * The positive pairs' item rows are the contiguous positions bs[0] .. N-1
 * (every position but the first step's), so their projections are one GEMM.
 */
static int pairs(const struct nn_pack *p)
{
	return p->T > 0 ? p->N - p->bs[0] : 0;
}

struct aux_cache {
	int *hpos;   /* (M) pair j's state position */
	float *mneg; /* (M) 1 where pair j has a negative, else 0 */
	float *hw;   /* (N, A1) W1h h */
	float *z1;   /* (2M, A1) first layer's output */
	float *z2;   /* (2M, A2) second layer's output */
	float *s;    /* (2M) logits */
	float *ew;   /* (2N, A1) indexed items: W1e e of each distinct row */
};

/* The layout for N positions and M pairs (M < N). */
static long aux_layout(long N, long M, int A1, int A2, float *base, struct aux_cache *c)
{
	long P = 2 * M, o = 0;
#define PUT(f, n) (c->f = base ? base + o : NULL, o += (n))
	c->hpos = base ? (int *)(void *)base : NULL; /* an int per float */
	o += P / 2;
	PUT(mneg, P / 2);
	PUT(hw, N * A1);
	PUT(z1, P * A1);
	PUT(z2, P * A2);
	PUT(s, P);
	PUT(ew, 2 * N * A1);
#undef PUT
	return o;
}

long nn_aux_cache_floats(int N, int A1, int A2)
{
	struct aux_cache c;

	return aux_layout(N, N, A1, A2, NULL, &c);
}

long nn_aux_scratch_floats(int N, int A1, int A2)
{
	return nn_aux_cache_floats(N, A1, A2); /* a gradient for each cached array */
}

/* One row of the first layer: z = sigmoid(e + h + b1), e NULL: zero. */
static inline void first_row(float *restrict z, const float *restrict e, const float *restrict h,
			     const float *restrict b1, int A1)
{
	if (e)
		for (int a = 0; a < A1; a++) /* one sigmoid per loop: vectorises */
			z[a] = nn_sigmoidf_vec(e[a] + h[a] + b1[a]);
	else
		for (int a = 0; a < A1; a++)
			z[a] = nn_sigmoidf_vec(h[a] + b1[a]);
}

/*
 * z1 (2M, A1): pair j's first layer, sigmoid(W1e e + hw[hpos[j]] + b1)
 * (the negatives' at M + j), the item part in z1 already (ew NULL) or in
 * the distinct rows' ew at eidx[q] / nidx[q] (-1: none), q = b0 + j.
 */
HR_MULTIVERSION
static void first_layer(float *z1, const float *hw, const int *hpos, const float *b1,
			const float *ew, const int *eidx, const int *nidx, int b0, int M, int A1)
{
	for (int j = 0; j < M; j++) {
		const float *h = hw + (size_t)hpos[j] * A1;
		float *zp = z1 + (size_t)j * A1, *zn = z1 + (size_t)(M + j) * A1;
		const float *ep = ew ? ew + (size_t)eidx[b0 + j] * A1 : zp;
		const float *en = !ew               ? zn :
				  nidx[b0 + j] >= 0 ? ew + (size_t)nidx[b0 + j] * A1 :
						      NULL;
		first_row(zp, ep, h, b1, A1);
		first_row(zn, en, h, b1, A1);
	}
}

HR_MULTIVERSION
static void sigmoid_inplace(float *x, long n)
{
	for (long i = 0; i < n; i++)
		x[i] = nn_sigmoidf_vec(x[i]);
}

/* dz (P, A) = ds[j] * w[a] * z (1 - z), the gradient before a sigmoid layer's
 * output z, from a per-row scale ds (NULL: 1) and a per-column one w (NULL: 1)
 * applied to g (P, A) (NULL: 1). */
HR_MULTIVERSION
static void sigmoid_back(float *dz, const float *z, const float *g, const float *ds, const float *w,
			 int P, int A)
{
	for (int j = 0; j < P; j++) {
		float sj = ds ? ds[j] : 1.0f;
		const float *zj = z + (size_t)j * A, *gj = g ? g + (size_t)j * A : NULL;
		float *dj = dz + (size_t)j * A;
		for (int a = 0; a < A; a++)
			dj[a] = sj * (w ? w[a] : 1.0f) * (gj ? gj[a] : 1.0f) * zj[a] *
				(1.0f - zj[a]);
	}
}

static double bce(float s, float y)
{
	return fmax(s, 0.0) - (double)s * y + log1p(exp(-fabs((double)s)));
}

double nn_aux_forward(float *cache, const float *hs, const float *e, const float *eneg,
		      const uint32_t *nneg, const struct nn_aux_params *w, const struct nn_pack *p,
		      int H, int D, int A1, int A2)
{
	return nn_aux_forward_idx(cache, hs, e, eneg, nneg, NULL, NULL, 0, w, p, H, D, A1, A2);
}

/* The distinct rows' W1e e (ne, A1) into c->ew, which first_layer reads
 * through the pairs' indices. */
static void item_rows(const struct aux_cache *c, const float *e, const int *eidx, const int *nidx,
		      int ne, const float *W1e, int b0, int M, int D, int A1)
{
	for (int j = 0; j < M; j++)
		HR_ASSERT(eidx[b0 + j] >= 0 && eidx[b0 + j] < ne && nidx[b0 + j] < ne);
	nn_sgemm(false, true, ne, A1, D, 1.0f, e, D, W1e, D, 0.0f, c->ew, A1);
}

double nn_aux_forward_idx(float *cache, const float *hs, const float *e, const float *eneg,
			  const uint32_t *nneg, const int *eidx, const int *nidx, int ne,
			  const struct nn_aux_params *w, const struct nn_pack *p, int H, int D,
			  int A1, int A2)
{
	int M = pairs(p), N = p->N, b0 = p->T > 0 ? p->bs[0] : 0;
	double loss = 0.0;
	long count = 0;
	struct aux_cache c;

	HR_ASSERT(H > 0 && D > 0 && A1 > 0 && A2 > 0);
	HR_ASSERT(!eidx || (nidx && ne >= 0 && ne <= 2 * N));
	aux_layout(N, M, A1, A2, cache, &c);
	if (M == 0)
		return 0.0;
	nn_sgemm(false, true, N, A1, H, 1.0f, hs, H, w->W1h, H, 0.0f, c.hw, A1);
	if (eidx) {
		item_rows(&c, e, eidx, nidx, ne, w->W1e, b0, M, D, A1);
	} else {
		nn_sgemm(false, true, M, A1, D, 1.0f, e + (size_t)b0 * D, D, w->W1e, D, 0.0f, c.z1,
			 A1);
		nn_sgemm(false, true, M, A1, D, 1.0f, eneg + (size_t)b0 * D, D, w->W1e, D, 0.0f,
			 c.z1 + (size_t)M * A1, A1);
	}
	for (int t = 0; t + 1 < p->T; t++) /* pair j: the state before position b0 + j */
		for (int k = 0; k < p->bs[t + 1]; k++) {
			int j = p->off[t + 1] - b0 + k;
			c.hpos[j] = p->off[t] + k;
			c.mneg[j] = eidx ? (nidx[b0 + j] >= 0 ? 1.0f : 0.0f) :
				    !nneg || (uint32_t)(t + 1) < nneg[p->order[k]] ? 1.0f :
										     0.0f;
		}
	first_layer(c.z1, c.hw, c.hpos, w->b1, eidx ? c.ew : NULL, eidx, nidx, b0, M, A1);
	nn_linear_forward(c.z2, c.z1, w->W2, w->b2, 2 * M, A1, A2);
	sigmoid_inplace(c.z2, 2L * M * A2);
	nn_sgemm(false, false, 2 * M, 1, A2, 1.0f, c.z2, A2, w->w3, 1, 0.0f, c.s, 1);
	for (int j = 0; j < M; j++) {
		c.s[j] += w->b3[0];
		c.s[M + j] += w->b3[0];
		loss += bce(c.s[j], 1.0f) + (c.mneg[j] != 0.0f ? bce(c.s[M + j], 0.0f) : 0.0);
		count += 1 + (c.mneg[j] != 0.0f);
	}
	return loss / (double)count;
}

void nn_aux_backward(float *dhs, float *de, float *deneg, const struct nn_aux_params *dw,
		     float *scratch, float dloss, const float *cache, const float *hs,
		     const float *e, const float *eneg, const struct nn_aux_params *w,
		     const struct nn_pack *p, int H, int D, int A1, int A2)
{
	nn_aux_backward_idx(dhs, de, deneg, dw, scratch, dloss, cache, hs, e, eneg, NULL, NULL, 0,
			    w, p, H, D, A1, A2);
}

/* The item sides' gradients dzp, dzn (M, A1) summed per distinct row into
 * dew (ne, A1), then the weights' and the rows' gradients over ne rows. */
static void item_rows_backward(float *de, float *dW1e, float *dew, const float *dzp,
			       const float *dzn, const float *e, const int *eidx, const int *nidx,
			       int ne, const float *W1e, int b0, int M, int D, int A1)
{
	memset(dew, 0, (size_t)ne * A1 * sizeof(float));
	for (int j = 0; j < M; j++) {
		int q = b0 + j;
		float *d = dew + (size_t)eidx[q] * A1;
		const float *g = dzp + (size_t)j * A1;
		for (int a = 0; a < A1; a++)
			d[a] += g[a];
		if (nidx[q] < 0)
			continue;
		d = dew + (size_t)nidx[q] * A1;
		g = dzn + (size_t)j * A1;
		for (int a = 0; a < A1; a++)
			d[a] += g[a];
	}
	if (dW1e)
		nn_sgemm(true, false, A1, D, ne, 1.0f, dew, A1, e, D, 1.0f, dW1e, D);
	if (de)
		nn_sgemm(false, false, ne, D, A1, 1.0f, dew, A1, W1e, D, 1.0f, de, D);
}

void nn_aux_backward_idx(float *dhs, float *de, float *deneg, const struct nn_aux_params *dw,
			 float *scratch, float dloss, const float *cache, const float *hs,
			 const float *e, const float *eneg, const int *eidx, const int *nidx,
			 int ne, const struct nn_aux_params *w, const struct nn_pack *p, int H,
			 int D, int A1, int A2)
{
	int M = pairs(p), N = p->N, P = 2 * M, b0 = p->T > 0 ? p->bs[0] : 0;
	long count = 0;
	struct aux_cache c, d; /* the forward's arrays and their gradients */

	aux_layout(N, M, A1, A2, (float *)cache, &c);
	aux_layout(N, M, A1, A2, scratch, &d);
	if (M == 0)
		return;
	for (int j = 0; j < M; j++)
		count += 1 + (c.mneg[j] != 0.0f);
	float g = dloss / (float)count;
	for (int j = 0; j < M; j++) {
		d.s[j] = g * (nn_sigmoidf(c.s[j]) - 1.0f);
		d.s[M + j] = g * c.mneg[j] * nn_sigmoidf(c.s[M + j]);
	}
	if (dw->b3)
		for (int j = 0; j < P; j++)
			dw->b3[0] += d.s[j];
	if (dw->w3) /* w3 += z2^T ds */
		nn_sgemm(true, false, A2, 1, P, 1.0f, c.z2, A2, d.s, 1, 1.0f, dw->w3, 1);
	sigmoid_back(d.z2, c.z2, NULL, d.s, w->w3, P, A2); /* through w3 and the sigmoid */
	memset(d.z1, 0, (size_t)P * A1 * sizeof(float));
	nn_linear_backward(d.z1, dw->W2, dw->b2, d.z2, c.z1, w->W2, P, A1, A2);
	sigmoid_back(d.z1, c.z1, d.z1, NULL, NULL, P, A1);
	if (dw->b1)
		for (int j = 0; j < P; j++)
			for (int a = 0; a < A1; a++)
				dw->b1[a] += d.z1[(size_t)j * A1 + a];
	/* the item side: rows bs[0] .. N-1 of e and eneg, or the distinct rows */
	const float *dzp = d.z1, *dzn = d.z1 + (size_t)M * A1;
	if (eidx) {
		HR_ASSERT(!deneg);
		item_rows_backward(de, dw->W1e, d.ew, dzp, dzn, e, eidx, nidx, ne, w->W1e, b0, M, D,
				   A1);
	} else {
		const float *ep = e + (size_t)b0 * D, *en = eneg + (size_t)b0 * D;
		if (dw->W1e) {
			nn_sgemm(true, false, A1, D, M, 1.0f, dzp, A1, ep, D, 1.0f, dw->W1e, D);
			nn_sgemm(true, false, A1, D, M, 1.0f, dzn, A1, en, D, 1.0f, dw->W1e, D);
		}
		if (de)
			nn_sgemm(false, false, M, D, A1, 1.0f, dzp, A1, w->W1e, D, 1.0f,
				 de + (size_t)b0 * D, D);
		if (deneg)
			nn_sgemm(false, false, M, D, A1, 1.0f, dzn, A1, w->W1e, D, 1.0f,
				 deneg + (size_t)b0 * D, D);
	}
	/* the state side: each state's two pairs, then one GEMM over the states */
	if (!dhs && !dw->W1h)
		return;
	memset(d.hw, 0, (size_t)N * A1 * sizeof(float));
	for (int j = 0; j < M; j++) {
		float *dh = d.hw + (size_t)c.hpos[j] * A1;
		for (int a = 0; a < A1; a++)
			dh[a] += dzp[(size_t)j * A1 + a] + dzn[(size_t)j * A1 + a];
	}
	if (dw->W1h)
		nn_sgemm(true, false, A1, H, N, 1.0f, d.hw, A1, hs, H, 1.0f, dw->W1h, H);
	if (dhs)
		nn_sgemm(false, false, N, H, A1, 1.0f, d.hw, A1, w->W1h, H, 1.0f, dhs, H);
}
