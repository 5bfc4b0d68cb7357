/* gru.c - packed sequences and the GRU family (GRU, AUGRU, AGRU, AIGRU). */
#include "models/nn/seq.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"
#include "models/nn/internal.h"
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
	HR_ASSERT(kind == NN_GRU || kind == NN_AUGRU || kind == NN_AGRU || kind == NN_AIGRU);
	HR_ASSERT(kind == NN_GRU || att != NULL || p->N == 0);
}

/*
 * The elementwise part of step t for its n alive rows.  g (n, G*H) holds
 * the gate pre-activations without biases (the r and u blocks with the
 * recurrent part added), gn (n, H) Wh_n h; both become the cache.  Writes
 * h_t into o (n, H).
 */
static void step_forward(float *g, float *gn, float *o, const float *hp, const float *a,
			 const float *bx, const float *bh, enum nn_gru_kind kind, int n, int H)
{
	int G = nn_gru_gates(kind), GH = G * H, c = (G - 1) * H; /* the candidate's column */

	for (int k = 0; k < n; k++) {
		float *gk = g + (size_t)k * GH, *hn = gn + (size_t)k * H, *ok = o + (size_t)k * H;
		const float *h = hp + (size_t)k * H;
		float ak = a ? a[k] : 1.0f;
		for (int j = 0; j < H; j++) {
			float r = nn_sigmoidf(gk[j] + bx[j] + bh[j]);
			float m = hn[j] + bh[c + j];
			float cand = tanhf(gk[c + j] + bx[c + j] + r * m);
			float up = ak; /* AGRU: the score is the update */
			if (G == 3) {
				float u = nn_sigmoidf(gk[H + j] + bx[H + j] + bh[H + j]);
				gk[H + j] = u;
				up = kind == NN_AUGRU ? ak * u : u;
			}
			gk[j] = r;
			gk[c + j] = cand;
			hn[j] = m;
			ok[j] = h[j] + up * (cand - h[j]);
		}
	}
}

void nn_gru_forward(float *out, float *gates, float *ghn, float *hprev, const float *x,
		    const float *att, const float *h0, const float *Wx, const float *Wh,
		    const float *bx, const float *bh, const struct nn_pack *p,
		    enum nn_gru_kind kind, int I, int H)
{
	int G = nn_gru_gates(kind), GH = G * H;

	gru_check(p, kind, att, I, H);
	/* the input projections of every position at once (biases come in the steps) */
	nn_sgemm(false, true, p->N, GH, I, 1.0f, x, I, Wx, I, 0.0f, gates, GH);
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
		/* r [and u]: += h Wh^T;  the candidate's recurrent part apart */
		nn_sgemm(false, true, n, (G - 1) * H, H, 1.0f, hp, H, Wh, H, 1.0f, g, GH);
		nn_sgemm(false, true, n, H, H, 1.0f, hp, H, Wh + (size_t)(G - 1) * H * H, H, 0.0f,
			 ghn + (size_t)q * H, H);
		step_forward(g, ghn + (size_t)q * H, out + (size_t)q * H, hp,
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

	return n * nn_gru_gates(kind) * H + n * H + (long)B * H + (kind == NN_AIGRU ? n * I : 0);
}

/*
 * The elementwise backward of step t's n rows: from dh = dout + dcarry,
 * the pre-activation gradients dg (n, G*H) (the same for the input and the
 * recurrent projections but for the candidate's), dgn (n, H) the
 * candidate's recurrent one, da (n) the scores', and dcarry = dh (1 - u'),
 * the direct part of d h_{t-1}.  dcarry's rows at or past the rows alive
 * at t + 1 are zero on entry.
 */
static void step_backward(float *dg, float *dgn, float *dcarry, float *da, const float *dout,
			  const float *g, const float *gn, const float *hp, const float *a,
			  enum nn_gru_kind kind, int n, int H)
{
	int G = nn_gru_gates(kind), GH = G * H, c = (G - 1) * H;

	for (int k = 0; k < n; k++) {
		const float *gk = g + (size_t)k * GH, *hn = gn + (size_t)k * H;
		const float *h = hp + (size_t)k * H, *dok = dout + (size_t)k * H;
		float *dgk = dg + (size_t)k * GH, *dgnk = dgn + (size_t)k * H;
		float *dc = dcarry + (size_t)k * H;
		float ak = a ? a[k] : 1.0f, dak = 0.0f;
		for (int j = 0; j < H; j++) {
			float dh = dok[j] + dc[j];
			float r = gk[j], cand = gk[c + j];
			float u = G == 3 ? gk[H + j] : 0.0f;
			float up = G == 2 ? ak : kind == NN_AUGRU ? ak * u : u;
			float dup = dh * (cand - h[j]); /* d h / d u' */
			float dcp = dh * up * (1.0f - cand * cand);
			dc[j] = dh * (1.0f - up);
			dgk[c + j] = dcp;
			dgnk[j] = dcp * r;
			dgk[j] = dcp * hn[j] * r * (1.0f - r);
			if (G == 3) {
				float du = dup;
				if (kind == NN_AUGRU) {
					dak += dup * u;
					du = dup * ak;
				}
				dgk[H + j] = du * u * (1.0f - u);
			} else {
				dak += dup;
			}
		}
		if (da)
			da[k] += dak;
	}
}

/* col[j] += sum over the n rows of m (row stride ld) of m[.][j], j < w. */
static void colsum(float *col, const float *m, int n, int w, int ld)
{
	for (int k = 0; k < n; k++)
		for (int j = 0; j < w; j++)
			col[j] += m[(size_t)k * ld + j];
}

void nn_gru_backward(float *dx, float *datt, float *dh0, float *dWx, float *dWh, float *dbx,
		     float *dbh, float *scratch, const float *dout, const float *gates,
		     const float *ghn, const float *hprev, const float *x, const float *att,
		     const float *Wx, const float *Wh, const struct nn_pack *p,
		     enum nn_gru_kind kind, int I, int H)
{
	int G = nn_gru_gates(kind), GH = G * H, c = (G - 1) * H, N = p->N;
	float *dg = scratch, *dgn = dg + (size_t)N * GH, *dcarry = dgn + (size_t)N * H;
	float *dxw = dcarry + (size_t)p->B * H; /* AIGRU */
	const float *Whn = Wh + (size_t)c * H;
	int scored = kind == NN_AUGRU || kind == NN_AGRU;

	gru_check(p, kind, att, I, H);
	memset(dcarry, 0, (size_t)p->B * H * sizeof(float));
	for (int t = p->T - 1; t >= 0; t--) {
		int n = p->bs[t], q = p->off[t];
		if (n == 0)
			continue;
		step_backward(dg + (size_t)q * GH, dgn + (size_t)q * H, dcarry,
			      scored && datt ? datt + q : NULL, dout + (size_t)q * H,
			      gates + (size_t)q * GH, ghn + (size_t)q * H, hprev + (size_t)q * H,
			      scored ? att + q : NULL, kind, n, H);
		/* d h_{t-1} += dg_r,u Wh_r,u + dgn Wh_n */
		nn_sgemm(false, false, n, H, c, 1.0f, dg + (size_t)q * GH, GH, Wh, H, 1.0f, dcarry,
			 H);
		nn_sgemm(false, false, n, H, H, 1.0f, dgn + (size_t)q * H, H, Whn, H, 1.0f, dcarry,
			 H);
	}
	for (int k = 0; dh0 && p->T > 0 && k < p->bs[0]; k++)
		for (int j = 0; j < H; j++)
			dh0[(size_t)p->order[k] * H + j] += dcarry[(size_t)k * H + j];
	/* the recurrent weights, over every position at once */
	if (dWh) {
		nn_sgemm(true, false, c, H, N, 1.0f, dg, GH, hprev, H, 1.0f, dWh, H);
		nn_sgemm(true, false, H, H, N, 1.0f, dgn, H, hprev, H, 1.0f, dWh + (size_t)c * H,
			 H);
	}
	if (dbh) {
		colsum(dbh, dg, N, c, GH);
		colsum(dbh + c, dgn, N, H, H);
	}
	if (dbx)
		colsum(dbx, dg, N, GH, GH);
	if (kind == NN_AIGRU) { /* the input was a x: d a = <x, dg Wx>, d x = a dg Wx */
		nn_sgemm(false, false, N, I, GH, 1.0f, dg, GH, Wx, I, 0.0f, dxw, I);
		for (int k = 0; k < N; k++) {
			const float *xk = x + (size_t)k * I, *dk = dxw + (size_t)k * I;
			double s = 0.0;
			for (int i = 0; i < I; i++)
				s += (double)xk[i] * dk[i];
			if (datt)
				datt[k] += (float)s;
			for (int i = 0; dx && i < I; i++)
				dx[(size_t)k * I + i] += att[k] * dk[i];
			for (int j = 0; j < GH; j++)
				dg[(size_t)k * GH + j] *= att[k];
		}
	} else if (dx) {
		nn_sgemm(false, false, N, I, GH, 1.0f, dg, GH, Wx, I, 1.0f, dx, I);
	}
	if (dWx)
		nn_sgemm(true, false, GH, I, N, 1.0f, dg, GH, x, I, 1.0f, dWx, I);
}
