/*
 * attn.c - DIN's local activation unit over packed positions (attn.h), its
 * per-example softmax, weighted-sum pooling and packing.
 *
 * The first layer is the unit's cost: per position 2D x H_1 multiply-adds
 * in one GEMM over all N positions (x W_1^T with the q terms hoisted per
 * example, attn.h), then the remaining layers as plain linear layers over
 * the N rows.
 */
#include "models/nn/attn.h"

#include <string.h>

#include "common/err.h"
#include "models/nn/nn.h"

/* Where each region of the workspace lies, for B examples and N positions. */
struct attn_ws {
	/* cache: written by the forward, read by the backward */
	float *Wkp;                                           /* (H_1, 2D) [W_k - W_d | W_p] */
	float *Wq;                                            /* (H_1, D) W_q + W_d */
	float *Xp;                                            /* (N, 2D) [k | q * k] */
	float *Qp;                                            /* (B, H_1) q (W_q + W_d)^T + b_1 */
	float *z[NN_ATTN_MAX_LAYERS], *a[NN_ATTN_MAX_LAYERS]; /* (N, H_l) */
	float *mean[NN_ATTN_MAX_LAYERS], *rstd[NN_ATTN_MAX_LAYERS]; /* (H_l) Dice */
	/* scratch of the backward */
	float *g1, *g2; /* (N, max H) */
	float *dXp;     /* (N, 2D) */
	float *dWkp;    /* (H_1, 2D) */
	float *dWq;     /* (H_1, D) */
	float *dQp;     /* (B, H_1) */
};

static size_t attn_layout(const struct nn_attn_shape *s, int B, int N, float *base,
			  struct attn_ws *w)
{
	size_t o = 0, n = (size_t)N, D = (size_t)s->D, H1 = (size_t)s->H[0], maxh = 0;

	for (int l = 0; l < s->n; l++)
		if ((size_t)s->H[l] > maxh)
			maxh = (size_t)s->H[l];
#define PUT(f, k) (w->f = base ? base + o : NULL, o += ((k) + 15) & ~(size_t)15)
	PUT(Wkp, H1 * 2 * D);
	PUT(Wq, H1 * D);
	PUT(Xp, n * 2 * D);
	PUT(Qp, (size_t)B * H1);
	for (int l = 0; l < s->n; l++) {
		PUT(z[l], n * (size_t)s->H[l]);
		PUT(a[l], n * (size_t)s->H[l]);
		PUT(mean[l], (size_t)s->H[l]);
		PUT(rstd[l], (size_t)s->H[l]);
	}
	PUT(g1, n * maxh);
	PUT(g2, n * maxh);
	PUT(dXp, n * 2 * D);
	PUT(dWkp, H1 * 2 * D);
	PUT(dWq, H1 * D);
	PUT(dQp, (size_t)B * H1);
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

static void act_forward(const struct nn_attn_shape *s, const struct nn_attn_params *p,
			struct attn_ws *w, int l, bool training, int N)
{
	int H = s->H[l];

	switch (s->act) {
	case NN_ATTN_DICE:
		nn_dice_forward(w->a[l], w->mean[l], w->rstd[l], w->z[l], p->alpha[l],
				p->run_mean[l], p->run_var[l], s->eps, training, N, H);
		break;
	case NN_ATTN_PRELU: nn_prelu_forward(w->a[l], w->z[l], p->alpha[l], N, H); break;
	case NN_ATTN_RELU: nn_relu_forward(w->a[l], w->z[l], N * H); break;
	}
}

/* dz (N, H_l) += d/dz from da (N, H_l); dalpha as the activation has one. */
static void act_backward(const struct nn_attn_shape *s, const struct nn_attn_params *p,
			 const struct nn_attn_grads *g, struct attn_ws *w, int l, float *dz,
			 const float *da, bool training, int N)
{
	int H = s->H[l];

	switch (s->act) {
	case NN_ATTN_DICE:
		nn_dice_backward(dz, g->alpha[l], da, w->z[l], w->mean[l], w->rstd[l], p->alpha[l],
				 training, N, H);
		break;
	case NN_ATTN_PRELU:
		nn_prelu_backward(dz, g->alpha[l], da, w->z[l], p->alpha[l], N, H);
		break;
	case NN_ATTN_RELU: nn_relu_backward(dz, da, w->a[l], N * H); break;
	}
}

void nn_attn_forward(float *score, float *ws, const float *q, const float *keys,
		     const uint32_t *off, const struct nn_attn_params *p,
		     const struct nn_attn_shape *s, bool training, int B)
{
	struct attn_ws w;
	int D = s->D, H1, N, Hn;

	check_shape(s, B);
	HR_ASSERT(off[0] == 0);
	N = (int)off[B];
	H1 = s->H[0];
	Hn = s->H[s->n - 1];
	attn_layout(s, B, N, ws, &w);

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
	for (int b = 0; b < B; b++) {
		const float *qb = q + (size_t)b * D;
		HR_ASSERT(off[b + 1] >= off[b]);
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			const float *k = keys + (size_t)t * D;
			float *x = w.Xp + (size_t)t * 2 * D;
			for (int d = 0; d < D; d++) {
				x[d] = k[d];
				x[D + d] = qb[d] * k[d];
			}
		}
	}
	nn_sgemm(false, true, N, H1, 2 * D, 1.0f, w.Xp, 2 * D, w.Wkp, 2 * D, 0.0f, w.z[0], H1);
	for (int b = 0; b < B; b++) {
		const float *qp = w.Qp + (size_t)b * H1;
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			float *z = w.z[0] + (size_t)t * H1;
			for (int h = 0; h < H1; h++)
				z[h] += qp[h];
		}
	}
	act_forward(s, p, &w, 0, training, N);
	for (int l = 1; l < s->n; l++) {
		nn_linear_forward(w.z[l], w.a[l - 1], p->W[l], p->b[l], N, s->H[l - 1], s->H[l]);
		act_forward(s, p, &w, l, training, N);
	}
	for (int t = 0; t < N; t++)
		score[t] = nn_dotf(w.a[s->n - 1] + (size_t)t * Hn, p->w_out, Hn) +
			   (p->b_out ? p->b_out[0] : 0.0f);
}

/* The first layer's backward from dz (N, H_1). */
static void first_backward(float *dq, float *dkeys, const struct nn_attn_grads *g,
			   struct attn_ws *w, const float *dz, const float *q, const float *keys,
			   const uint32_t *off, const struct nn_attn_shape *s, int B, int N)
{
	int D = s->D, H1 = s->H[0];

	/* Qp[b] entered every position of example b */
	memset(w->dQp, 0, (size_t)B * H1 * sizeof(float));
	for (int b = 0; b < B; b++) {
		float *dqp = w->dQp + (size_t)b * H1;
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			const float *g1 = dz + (size_t)t * H1;
			for (int h = 0; h < H1; h++)
				dqp[h] += g1[h];
		}
		if (g->b[0])
			for (int h = 0; h < H1; h++)
				g->b[0][h] += dqp[h];
	}
	if (g->W[0]) {
		/* dWkp (H_1, 2D) = dz^T Xp; dWq (H_1, D) = dQp^T q; then back to W_1's blocks */
		nn_sgemm(true, false, H1, 2 * D, N, 1.0f, dz, H1, w->Xp, 2 * D, 0.0f, w->dWkp,
			 2 * D);
		nn_sgemm(true, false, H1, D, B, 1.0f, w->dQp, H1, q, D, 0.0f, w->dWq, D);
		for (int h = 0; h < H1; h++) {
			float *gw = g->W[0] + (size_t)h * 4 * D;
			const float *dwq = w->dWq + (size_t)h * D,
				    *dwk = w->dWkp + (size_t)h * 2 * D;
			for (int d = 0; d < D; d++) {
				gw[d] += dwq[d];
				gw[D + d] += dwk[d];
				gw[2 * D + d] += dwq[d] - dwk[d];
				gw[3 * D + d] += dwk[D + d];
			}
		}
	}
	if (!dq && !dkeys)
		return;
	if (dq) /* dq (B, D) += dQp Wq */
		nn_sgemm(false, false, B, D, H1, 1.0f, w->dQp, H1, w->Wq, D, 1.0f, dq, D);
	/* dXp (N, 2D) = dz Wkp: [dk | d(q * k)] */
	nn_sgemm(false, false, N, 2 * D, H1, 1.0f, dz, H1, w->Wkp, 2 * D, 0.0f, w->dXp, 2 * D);
	for (int b = 0; b < B; b++) {
		const float *qb = q + (size_t)b * D;
		float *dqb = dq ? dq + (size_t)b * D : NULL;
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			const float *dx = w->dXp + (size_t)t * 2 * D, *k = keys + (size_t)t * D;
			if (dkeys) {
				float *dk = dkeys + (size_t)t * D;
				for (int d = 0; d < D; d++)
					dk[d] += dx[d] + dx[D + d] * qb[d];
			}
			if (dqb)
				for (int d = 0; d < D; d++)
					dqb[d] += dx[D + d] * k[d];
		}
	}
}

void nn_attn_backward(float *dq, float *dkeys, const struct nn_attn_grads *g, const float *dscore,
		      float *ws, const float *q, const float *keys, const uint32_t *off,
		      const struct nn_attn_params *p, const struct nn_attn_shape *s, bool training,
		      int B)
{
	struct attn_ws w;
	int N, n = s->n, Hn;
	float *da, *dz;

	check_shape(s, B);
	N = (int)off[B];
	Hn = s->H[n - 1];
	attn_layout(s, B, N, ws, &w);
	da = w.g1;
	dz = w.g2;
	/* s_t = w_out . a_t + b_out */
	for (int t = 0; t < N; t++) {
		const float *a = w.a[n - 1] + (size_t)t * Hn;
		float *d = da + (size_t)t * Hn, gs = dscore[t];
		for (int h = 0; h < Hn; h++)
			d[h] = gs * p->w_out[h];
		if (g->w_out)
			for (int h = 0; h < Hn; h++)
				g->w_out[h] += gs * a[h];
		if (g->b_out)
			g->b_out[0] += gs;
	}
	for (int l = n - 1; l >= 0; l--) {
		memset(dz, 0, (size_t)N * s->H[l] * sizeof(float));
		act_backward(s, p, g, &w, l, dz, da, training, N);
		if (l == 0)
			break;
		memset(da, 0, (size_t)N * s->H[l - 1] * sizeof(float));
		nn_linear_backward(da, g->W[l], g->b[l], dz, w.a[l - 1], p->W[l], N, s->H[l - 1],
				   s->H[l]);
	}
	first_backward(dq, dkeys, g, &w, dz, q, keys, off, s, B, N);
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

void nn_attn_pool_forward(float *out, const float *w, const float *v, const uint32_t *off, int B,
			  int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * D;
		memset(o, 0, (size_t)D * sizeof(float));
		for (uint32_t t = off[b]; t < off[b + 1]; t++) {
			const float *x = v + (size_t)t * D;
			for (int d = 0; d < D; d++)
				o[d] += w[t] * x[d];
		}
	}
}

void nn_attn_pool_backward(float *dw, float *dv, const float *dout, const float *w, const float *v,
			   const uint32_t *off, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
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
