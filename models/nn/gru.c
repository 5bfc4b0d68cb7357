/* gru.c - packed sequences and the GRU family (GRU, AUGRU, AGRU, AIGRU). */
#include "models/nn/seq.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"
#include "models/nn/fastmath.h"
#include "models/nn/nn.h"

void nn_pack_init(struct nn_pack *p, int *mem, const uint32_t *lens, int B, int T)
{
	HR_ASSERT(B >= 0 && T >= 0);
	p->B = B;
	p->T = T;
	p->len = mem;
	p->order = mem + B;
	p->rank = mem + 2 * B;
	p->bs = mem + 3 * B;
	p->off = mem + 3 * B + T;
	/* a counting sort by length, longest first, stable: off[] is first the
	 * histogram of lengths, then each length's next slot in order[] */
	for (int l = 0; l <= T; l++)
		p->off[l] = 0;
	for (int b = 0; b < B; b++) {
		HR_ASSERT(lens[b] <= (uint32_t)T);
		p->len[b] = (int)lens[b];
		p->off[lens[b]]++;
	}
	for (int t = T - 1, s = 0; t >= 0; t--) {
		s += p->off[t + 1];
		p->bs[t] = s; /* rows with len > t */
	}
	for (int l = 0; l <= T; l++)
		p->off[l] = l == T ? 0 : p->bs[l]; /* rows longer than l come first */
	for (int b = 0; b < B; b++)
		p->order[p->off[p->len[b]]++] = b;
	for (int k = 0; k < B; k++)
		p->rank[p->order[k]] = k;
	p->off[0] = 0;
	for (int t = 0; t < T; t++)
		p->off[t + 1] = p->off[t] + p->bs[t];
	p->N = p->off[T];
}

void nn_pack_last_forward(float *last, const float *seq, const float *h0, const struct nn_pack *p,
			  int D)
{
	for (int b = 0; b < p->B; b++) {
		float *o = last + (size_t)b * D;
		int l = p->len[b];
		if (l > 0)
			memcpy(o, seq + (size_t)nn_pack_pos(p, b, l - 1) * D,
			       (size_t)D * sizeof(float));
		else if (h0)
			memcpy(o, h0 + (size_t)b * D, (size_t)D * sizeof(float));
		else
			memset(o, 0, (size_t)D * sizeof(float));
	}
}

void nn_pack_last_backward(float *dseq, float *dh0, const float *dlast, const struct nn_pack *p,
			   int D)
{
	for (int b = 0; b < p->B; b++) {
		const float *g = dlast + (size_t)b * D;
		int l = p->len[b];
		float *d = l > 0 ? (dseq ? dseq + (size_t)nn_pack_pos(p, b, l - 1) * D : NULL) :
				   (dh0 ? dh0 + (size_t)b * D : NULL);
		for (int j = 0; d && j < D; j++)
			d[j] += g[j];
	}
}

/* ------------------------------------------------------------------ GRU */

static void gru_check(const struct nn_pack *p, enum nn_gru_kind kind, const float *att, int I,
		      int H)
{
	HR_ASSERT(I > 0 && H > 0);
	HR_ASSERT(kind == NN_GRU || kind == NN_AUGRU || kind == NN_AGRU || kind == NN_AIGRU ||
		  kind == NN_AUGRU_KEEP);
	HR_ASSERT(kind == NN_GRU || att != NULL || p->N == 0);
}

/*
 * The update u' = off + sc * u of a row with score a (u the update gate):
 * GRU and AIGRU (0, 1), AUGRU (0, a), AUGRU_KEEP (a, 1 - a): 1 - u' =
 * (1 - a)(1 - u).  (AGRU has no u: u' = a.)
 */
static inline void gate_coef(enum nn_gru_kind kind, float a, float *off, float *sc)
{
	*off = kind == NN_AUGRU_KEEP ? a : 0.0f;
	*sc = kind == NN_AUGRU ? a : kind == NN_AUGRU_KEEP ? 1.0f - a : 1.0f;
}

/*
 * The elementwise part of step t for its n alive rows.  g (n, G*H) holds
 * the input projections without bias, gh (n, G*H) the recurrent ones
 * without bias; g becomes the activations, gh gets its biases (the
 * candidate's block is what the backward reads).  Writes h_t into o (n, H).
 * a: the n rows' scores (AUGRU, AGRU, AUGRU_KEEP), else NULL.  The
 * activations are in-place passes of their own (fastmath.h: the form
 * that vectorises in every target clone).
 */
HR_MULTIVERSION
static void step_forward(float *g, float *gh, float *o, const float *hp, const float *a,
			 const float *bx, const float *bh, enum nn_gru_kind kind, int n, int H)
{
	int G = nn_gru_gates(kind), GH = G * H, c = (G - 1) * H; /* the candidate's column */

	for (int k = 0; k < n; k++) {
		float *gk = g + (size_t)k * GH, *hk = gh + (size_t)k * GH, *ok = o + (size_t)k * H;
		float *gu = gk + H, *gc = gk + c, *hn = hk + c;
		const float *h = hp + (size_t)k * H;
		float s = a ? a[k] : 1.0f, off, sc;
		for (int j = 0; j < c; j++) /* r [and u] */
			gk[j] += bx[j] + hk[j] + bh[j];
		nn_sigmoid_vec(gk, c);
		for (int j = 0; j < H; j++) {
			hn[j] += bh[c + j];
			gc[j] += bx[c + j] + gk[j] * hn[j];
		}
		nn_tanh_vec(gc, H);
		gate_coef(kind, s, &off, &sc);
		if (G == 3)
			for (int j = 0; j < H; j++)
				ok[j] = h[j] + (off + sc * gu[j]) * (gc[j] - h[j]);
		else /* AGRU: u' = a */
			for (int j = 0; j < H; j++)
				ok[j] = h[j] + s * (gc[j] - h[j]);
	}
}

void nn_gru_forward(float *out, float *gates, float *gh, float *hprev, float *wt, const float *x,
		    const float *att, const float *h0, const float *Wx, const float *Wh,
		    const float *bx, const float *bh, const struct nn_pack *p,
		    enum nn_gru_kind kind, int I, int H)
{
	nn_gru_forward_idx(out, gates, gh, hprev, wt, x, NULL, 0, att, h0, Wx, Wh, bx, bh, p, kind,
			   I, H);
}

void nn_gru_forward_idx(float *out, float *gates, float *gh, float *hprev, float *wt,
			const float *x, const int *xidx, int nx, const float *att, const float *h0,
			const float *Wx, const float *Wh, const float *bx, const float *bh,
			const struct nn_pack *p, enum nn_gru_kind kind, int I, int H)
{
	int G = nn_gru_gates(kind), GH = G * H;

	gru_check(p, kind, att, I, H);
	/* the input projections (biases come in the steps): of every position at
	 * once, or of the nx distinct rows (into gh, free until the steps) and
	 * gathered */
	if (xidx) {
		HR_ASSERT(kind != NN_AIGRU && nx >= 0 && nx <= p->N);
		nn_sgemm(false, true, nx, GH, I, 1.0f, x, I, Wx, I, 0.0f, gh, GH);
		for (int q = 0; q < p->N; q++) {
			HR_ASSERT(xidx[q] >= 0 && xidx[q] < nx);
			memcpy(gates + (size_t)q * GH, gh + (size_t)xidx[q] * GH,
			       (size_t)GH * sizeof(float));
		}
	} else {
		nn_sgemm(false, true, p->N, GH, I, 1.0f, x, I, Wx, I, 0.0f, gates, GH);
	}
	/* Wh^T (H, G*H): the steps' products without OpenBLAS's packing */
	for (int j = 0; wt && p->N > 0 && j < GH; j++)
		for (int i = 0; i < H; i++)
			wt[(size_t)i * GH + j] = Wh[(size_t)j * H + i];
	for (int k = 0; p->T > 0 && k < p->bs[0]; k++) {
		float *hp = hprev + (size_t)k * H;
		if (h0)
			memcpy(hp, h0 + (size_t)p->order[k] * H, (size_t)H * sizeof(float));
		else
			memset(hp, 0, (size_t)H * sizeof(float));
	}
	for (int t = 0; t < p->T && p->bs[t] > 0; t++) {
		int n = p->bs[t], q = p->off[t], n1 = t + 1 < p->T ? p->bs[t + 1] : 0;
		float *g = gates + (size_t)q * GH, *hp = hprev + (size_t)q * H;
		const float *a = att ? att + q : NULL;
		if (kind == NN_AIGRU) /* (a x) Wx^T = a (x Wx^T) */
			for (int k = 0; k < n; k++)
				for (int j = 0; j < GH; j++)
					g[(size_t)k * GH + j] *= a[k];
		/* every gate's recurrent part: one GEMM of the alive rows */
		if (wt)
			nn_sgemm_small(n, GH, H, hp, H, wt, GH, 0.0f, gh + (size_t)q * GH, GH);
		else
			nn_sgemm(false, true, n, GH, H, 1.0f, hp, H, Wh, H, 0.0f,
				 gh + (size_t)q * GH, GH);
		step_forward(g, gh + (size_t)q * GH, out + (size_t)q * H, hp,
			     kind == NN_GRU || kind == NN_AIGRU ? NULL : a, bx, bh, kind, n, H);
		/* the rows alive at t + 1 are the first n1: their previous state */
		if (n1)
			memcpy(hprev + (size_t)p->off[t + 1] * H, out + (size_t)q * H,
			       (size_t)n1 * H * sizeof(float));
	}
}

long nn_gru_scratch_floats(int B, int N, enum nn_gru_kind kind, int I, int H)
{
	long n = N;

	/* dg, dgc, dcarry, then AIGRU's d(a x) Wx or the distinct rows' dg */
	return n * nn_gru_gates(kind) * H + n * H + (long)B * H +
	       (kind == NN_AIGRU ? n * I : n * nn_gru_gates(kind) * H);
}

/*
 * d loss / d a_t of one row: sum over j of dh_j (n_j - h_j) d u'_j / d a_t,
 * which is u_j (AUGRU), 1 - u_j (AUGRU_KEEP, keep set) or 1 (AGRU, u
 * NULL), dh = dout + dcarry; in 16 lanes, so that it vectorises without
 * reassociation.
 */
static inline float score_grad(const float *dout, const float *dcar, const float *cand,
			       const float *h, const float *u, int keep, int H)
{
	float acc[16] = {0};
	int j = 0;

#define DU(i) (u ? (keep ? 1.0f - u[i] : u[i]) : 1.0f)
	for (; j + 16 <= H; j += 16)
		for (int l = 0; l < 16; l++)
			acc[l] +=
				(dout[j + l] + dcar[j + l]) * (cand[j + l] - h[j + l]) * DU(j + l);
	for (int l = 0; j < H; j++, l++)
		acc[l] += (dout[j] + dcar[j]) * (cand[j] - h[j]) * DU(j);
#undef DU
	for (int w = 8; w > 0; w /= 2)
		for (int l = 0; l < w; l++)
			acc[l] += acc[l + w];
	return acc[0];
}

/*
 * The elementwise backward of step t's n rows, from dh = dout + dcarry:
 * dgh (n, G*H) the gradients of the recurrent pre-activations (r, [u,] and
 * the candidate's Wh_n h part), dgc (n, H) the candidate's input
 * pre-activation (for r and u the input and recurrent gradients are the
 * same: dgh), da (n) the scores', and dcarry = dh (1 - u'), the direct
 * part of d h_{t-1}.  dcarry's rows at or past the rows alive at t + 1 are
 * zero on entry.
 */
/*
 * One row of step_backward, three gates (GRU, AUGRU, AIGRU, AUGRU_KEEP:
 * u' = off + sc u, gate_coef) or two (AGRU: u' = sc, du NULL).  Every
 * block a restrict parameter: with the blocks addressed off one row
 * pointer gcc saw a "complicated access pattern" and left the loop scalar.
 */
static inline void row_backward(float *restrict dcar, float *restrict dc, float *restrict dr,
				float *restrict du, float *restrict dn, const float *restrict dout,
				const float *restrict gr, const float *restrict gu,
				const float *restrict gc, const float *restrict hn,
				const float *restrict h, float off, float sc, int H)
{
	if (du) {
		for (int j = 0; j < H; j++) {
			float dh = dout[j] + dcar[j], r = gr[j], cand = gc[j], u = gu[j];
			float up = off + sc * u, dcp = dh * up * (1.0f - cand * cand);
			dcar[j] = dh * (1.0f - up);
			dc[j] = dcp;
			dn[j] = dcp * r;
			dr[j] = dcp * hn[j] * r * (1.0f - r);
			du[j] = dh * (cand - h[j]) * sc * u * (1.0f - u);
		}
	} else {
		for (int j = 0; j < H; j++) {
			float dh = dout[j] + dcar[j], r = gr[j], cand = gc[j], s = sc;
			float dcp = dh * s * (1.0f - cand * cand);
			dcar[j] = dh * (1.0f - s);
			dc[j] = dcp;
			dn[j] = dcp * r;
			dr[j] = dcp * hn[j] * r * (1.0f - r);
		}
	}
}

HR_MULTIVERSION
static void step_backward(float *dgh, float *dgc, float *dcarry, float *da, const float *dout,
			  const float *g, const float *gh, const float *hp, const float *a,
			  enum nn_gru_kind kind, int n, int H)
{
	int G = nn_gru_gates(kind), GH = G * H, c = (G - 1) * H;

	for (int k = 0; k < n; k++) {
		const float *gk = g + (size_t)k * GH, *h = hp + (size_t)k * H;
		const float *dok = dout + (size_t)k * H;
		float *dk = dgh + (size_t)k * GH, *dcar = dcarry + (size_t)k * H;
		float ak = a ? a[k] : 1.0f, off, sc;
		if (da && (kind == NN_AUGRU || kind == NN_AUGRU_KEEP))
			da[k] += score_grad(dok, dcar, gk + c, h, gk + H, kind == NN_AUGRU_KEEP, H);
		else if (da && kind == NN_AGRU)
			da[k] += score_grad(dok, dcar, gk + c, h, NULL, 0, H);
		/* u' = off + sc u (gate_coef) or, AGRU, u' = a */
		gate_coef(kind, ak, &off, &sc);
		if (kind == NN_AGRU)
			off = 0.0f, sc = ak;
		row_backward(dcar, dgc + (size_t)k * H, dk, G == 3 ? dk + H : NULL, dk + c, dok, gk,
			     gk + H, gk + c, gh + (size_t)k * GH + c, h, off, sc, H);
	}
}

/* col[j] += sum over the n rows of m (row stride ld) of m[.][j], j < w
 * (restrict and per CPU: the scalar loop was 4% of DIEN's training). */
HR_MULTIVERSION
static void colsum(float *restrict col, const float *restrict m, int n, int w, int ld)
{
	for (int k = 0; k < n; k++)
		for (int j = 0; j < w; j++)
			col[j] += m[(size_t)k * ld + j];
}

void nn_gru_backward(float *dx, float *datt, float *dh0, float *dWx, float *dWh, float *dbx,
		     float *dbh, float *scratch, const float *dout, const float *gates,
		     const float *gh, const float *hprev, const float *x, const float *att,
		     const float *Wx, const float *Wh, const struct nn_pack *p,
		     enum nn_gru_kind kind, int I, int H)
{
	nn_gru_backward_idx(dx, datt, dh0, dWx, dWh, dbx, dbh, scratch, dout, gates, gh, hprev, x,
			    NULL, 0, att, Wx, Wh, p, kind, I, H);
}

/*
 * The input side of the backward for distinct input rows: every position's
 * gradient of its projection ([dg's r, u blocks | dgc], summed per row into
 * du (nx, G*H)), then the weights' and the rows' gradients as GEMMs over
 * the nx rows.
 */
static void input_rows_backward(float *dx, float *dWx, float *du, const float *dg, const float *dgc,
				const float *x, const int *xidx, int nx, const float *Wx, int N,
				int c, int I, int H)
{
	int GH = c + H;

	memset(du, 0, (size_t)nx * GH * sizeof(float));
	for (int q = 0; q < N; q++) {
		float *d = du + (size_t)xidx[q] * GH;
		const float *g = dg + (size_t)q * GH, *gc = dgc + (size_t)q * H;
		for (int j = 0; j < c; j++)
			d[j] += g[j];
		for (int j = 0; j < H; j++)
			d[c + j] += gc[j];
	}
	if (dx)
		nn_sgemm(false, false, nx, I, GH, 1.0f, du, GH, Wx, I, 1.0f, dx, I);
	if (dWx)
		nn_sgemm(true, false, GH, I, nx, 1.0f, du, GH, x, I, 1.0f, dWx, I);
}

void nn_gru_backward_idx(float *dx, float *datt, float *dh0, float *dWx, float *dWh, float *dbx,
			 float *dbh, float *scratch, const float *dout, const float *gates,
			 const float *gh, const float *hprev, const float *x, const int *xidx,
			 int nx, const float *att, const float *Wx, const float *Wh,
			 const struct nn_pack *p, enum nn_gru_kind kind, int I, int H)
{
	int G = nn_gru_gates(kind), GH = G * H, c = (G - 1) * H, N = p->N;
	float *dg = scratch, *dgc = dg + (size_t)N * GH, *dcarry = dgc + (size_t)N * H;
	float *dxw = dcarry + (size_t)p->B * H; /* AIGRU; the distinct rows' dg otherwise */
	const float *Wxc = Wx + (size_t)c * I;
	int scored = kind == NN_AUGRU || kind == NN_AGRU || kind == NN_AUGRU_KEEP;

	gru_check(p, kind, att, I, H);
	HR_ASSERT(!xidx || (kind != NN_AIGRU && nx >= 0 && nx <= N));
	memset(dcarry, 0, (size_t)p->B * H * sizeof(float));
	for (int t = p->T - 1; t >= 0; t--) {
		int n = p->bs[t], q = p->off[t];
		if (n == 0)
			continue;
		step_backward(dg + (size_t)q * GH, dgc + (size_t)q * H, dcarry,
			      scored && datt ? datt + q : NULL, dout + (size_t)q * H,
			      gates + (size_t)q * GH, gh + (size_t)q * GH, hprev + (size_t)q * H,
			      scored ? att + q : NULL, kind, n, H);
		/* d h_{t-1} += dgh Wh: one GEMM of the alive rows */
		nn_sgemm_small(n, H, GH, dg + (size_t)q * GH, GH, Wh, H, 1.0f, dcarry, H);
	}
	for (int k = 0; dh0 && p->T > 0 && k < p->bs[0]; k++)
		for (int j = 0; j < H; j++)
			dh0[(size_t)p->order[k] * H + j] += dcarry[(size_t)k * H + j];
	/* the recurrent weights, over every position at once */
	if (dWh)
		nn_sgemm(true, false, GH, H, N, 1.0f, dg, GH, hprev, H, 1.0f, dWh, H);
	if (dbh)
		colsum(dbh, dg, N, GH, GH);
	if (dbx) { /* the input pre-activations: dg for r and u, dgc for the candidate */
		colsum(dbx, dg, N, c, GH);
		colsum(dbx + c, dgc, N, H, H);
	}
	if (xidx) {
		input_rows_backward(dx, dWx, dxw, dg, dgc, x, xidx, nx, Wx, N, c, I, H);
		return;
	}
	if (kind == NN_AIGRU) { /* the input was a x: d a = <x, dg Wx>, d x = a dg Wx */
		nn_sgemm(false, false, N, I, c, 1.0f, dg, GH, Wx, I, 0.0f, dxw, I);
		nn_sgemm(false, false, N, I, H, 1.0f, dgc, H, Wxc, I, 1.0f, dxw, I);
		for (int k = 0; k < N; k++) {
			const float *xk = x + (size_t)k * I, *dk = dxw + (size_t)k * I;
			double s = 0.0;
			for (int i = 0; i < I; i++)
				s += (double)xk[i] * dk[i];
			if (datt)
				datt[k] += (float)s;
			for (int i = 0; dx && i < I; i++)
				dx[(size_t)k * I + i] += att[k] * dk[i];
			/* for the input weights below: the gradients times a */
			for (int j = 0; j < c; j++)
				dg[(size_t)k * GH + j] *= att[k];
			for (int j = 0; j < H; j++)
				dgc[(size_t)k * H + j] *= att[k];
		}
	} else if (dx) {
		nn_sgemm(false, false, N, I, c, 1.0f, dg, GH, Wx, I, 1.0f, dx, I);
		nn_sgemm(false, false, N, I, H, 1.0f, dgc, H, Wxc, I, 1.0f, dx, I);
	}
	if (dWx) {
		nn_sgemm(true, false, c, I, N, 1.0f, dg, GH, x, I, 1.0f, dWx, I);
		nn_sgemm(true, false, H, I, N, 1.0f, dgc, H, x, I, 1.0f, dWx + (size_t)c * I, I);
	}
}
