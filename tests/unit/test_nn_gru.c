/*
 * test_nn_gru.c - the sequence layers of models/nn/seq.h: the packed
 * layout, the GRU family (GRU, AUGRU, AGRU, AIGRU) and DIEN's auxiliary
 * loss, each against a double-precision reference written here over
 * padded sequences, row by row, with central finite differences of the
 * reference and of the float layer itself (harness and tolerances:
 * gradcheck.h).
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/nn/fastmath.h"
#include "models/nn/nn.h"
#include "models/nn/seq.h"
#include "tests/unit/gradcheck.h"

/* ---------------------------------------------------------------- packing */

static void test_pack_layout(void **state)
{
	const uint32_t lens[5] = {2, 0, 3, 3, 1};
	int mem[64];
	struct nn_pack p;

	(void)state;
	assert_true(nn_pack_ints(5, 3) <= 64);
	nn_pack_init(&p, mem, lens, 5, 3);
	/* longest first, ties by row: 2, 3 (len 3), 0 (2), 4 (1), 1 (0) */
	const int order[5] = {2, 3, 0, 4, 1}, bs[3] = {4, 3, 2}, off[4] = {0, 4, 7, 9};
	for (int k = 0; k < 5; k++) {
		assert_int_equal(p.order[k], order[k]);
		assert_int_equal(p.rank[order[k]], k);
		assert_int_equal(p.len[k], (int)lens[k]);
	}
	for (int t = 0; t < 3; t++)
		assert_int_equal(p.bs[t], bs[t]);
	for (int t = 0; t <= 3; t++)
		assert_int_equal(p.off[t], off[t]);
	assert_int_equal(p.N, 9);
	/* every valid (row, step) has its own position, 0 .. N-1 */
	int seen[9] = {0};
	for (int b = 0; b < 5; b++)
		for (int t = 0; t < (int)lens[b]; t++)
			seen[nn_pack_pos(&p, b, t)]++;
	for (int i = 0; i < 9; i++)
		assert_int_equal(seen[i], 1);
	/* all empty, and no steps at all */
	const uint32_t zero[3] = {0, 0, 0};
	nn_pack_init(&p, mem, zero, 3, 4);
	assert_int_equal(p.N, 0);
	assert_int_equal(p.bs[0], 0);
	nn_pack_init(&p, mem, zero, 3, 0);
	assert_int_equal(p.N, 0);
}

/* -------------------------------------------------------------------- GRU */

#define GB 5 /* rows */
#define GT 4 /* steps */

struct gru_ctx {
	enum nn_gru_kind kind;
	int I, H, G;
	bool h0;        /* an initial state tensor */
	const int *idx; /* (GB GT) with distinct rows: each slot's row of x (nx, I); else NULL */
	int nx;
	int xidx[GB * GT]; /* packed */
	int ta, th, tw;    /* tensor indices of att, h0 and W (-1: none) */
	uint32_t lens[GB]; /* one empty row, one full, ties */
	struct nn_pack p;
	int pmem[64];
	float *xp, *ap, *out, *gates, *gh, *hprev, *last, *scratch, *dout, *dx, *da;
	float *wt; /* Wh^T scratch: the steps by nn_sgemm_small; NULL: nn_sgemm */
};

/* Slices of the one weight tensor: Wx (G H, I), Wh (G H, H), bx, bh (G H). */
static void gru_weights(const struct gru_ctx *c, float *w, float **Wx, float **Wh, float **bx,
			float **bh)
{
	int GH = c->G * c->H;

	*Wx = w;
	*Wh = w + GH * c->I;
	*bx = *Wh + GH * c->H;
	*bh = *bx + GH;
}

static void gru_fwd(struct gc *g)
{
	struct gru_ctx *c = g->ctx;
	int I = c->I, H = c->H;
	float *Wx, *Wh, *bx, *bh;

	gru_weights(c, X(c->tw), &Wx, &Wh, &bx, &bh);
	for (int b = 0; b < GB; b++)
		for (int t = 0; t < (int)c->lens[b]; t++) {
			int q = nn_pack_pos(&c->p, b, t);
			if (c->idx)
				c->xidx[q] = c->idx[b * GT + t];
			else
				memcpy(c->xp + q * I, X(0) + (b * GT + t) * I,
				       (size_t)I * sizeof(float));
			if (c->ta >= 0)
				c->ap[q] = X(c->ta)[b * GT + t];
		}
	nn_gru_forward_idx(c->out, c->gates, c->gh, c->hprev, c->wt, c->idx ? X(0) : c->xp,
			   c->idx ? c->xidx : NULL, c->nx, c->ta >= 0 ? c->ap : NULL,
			   c->h0 ? X(c->th) : NULL, Wx, Wh, bx, bh, &c->p, c->kind, I, H);
	nn_pack_last_forward(c->last, c->out, c->h0 ? X(c->th) : NULL, &c->p, H);
	/* g->out: the padded outputs (zeros past each end), then the final states */
	memset(g->out, 0, sizeof(float) * (size_t)g->nout);
	for (int b = 0; b < GB; b++)
		for (int t = 0; t < (int)c->lens[b]; t++)
			memcpy(g->out + (b * GT + t) * H, c->out + nn_pack_pos(&c->p, b, t) * H,
			       (size_t)H * sizeof(float));
	memcpy(g->out + GB * GT * H, c->last, (size_t)GB * H * sizeof(float));
}

static double sigd(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* The reference: each row on its own, step by step, in double. */
static void gru_ref(struct gc *g)
{
	struct gru_ctx *c = g->ctx;
	int I = c->I, H = c->H, G = c->G, GH = G * H, cn = (G - 1) * H;
	const double *w = XD(c->tw), *Wx = w, *Wh = w + GH * I, *bx = Wh + GH * H, *bh = bx + GH;
	double h[16], hn[16], gx[48], gh[48];

	for (int i = 0; i < g->nout; i++)
		g->outd[i] = 0.0;
	for (int b = 0; b < GB; b++) {
		for (int j = 0; j < H; j++)
			h[j] = c->h0 ? XD(c->th)[b * H + j] : 0.0;
		for (int t = 0; t < (int)c->lens[b]; t++) {
			const double *x = XD(0) + (c->idx ? c->idx[b * GT + t] : b * GT + t) * I;
			double a = c->ta >= 0 ? XD(c->ta)[b * GT + t] : 1.0;
			for (int o = 0; o < GH; o++) {
				double sx = 0.0, sh = bh[o];
				for (int i = 0; i < I; i++)
					sx += Wx[o * I + i] * x[i];
				for (int i = 0; i < H; i++)
					sh += Wh[o * H + i] * h[i];
				gx[o] = (c->kind == NN_AIGRU ? a * sx : sx) + bx[o];
				gh[o] = sh;
			}
			for (int j = 0; j < H; j++) {
				double r = sigd(gx[j] + gh[j]);
				double n = tanh(gx[cn + j] + r * gh[cn + j]);
				double u = G == 3 ? sigd(gx[H + j] + gh[H + j]) : 0.0;
				double up = c->kind == NN_AGRU       ? a :
					    c->kind == NN_AUGRU      ? a * u :
					    c->kind == NN_AUGRU_KEEP ? 1.0 - (1.0 - a) * (1.0 - u) :
								       u;
				hn[j] = (1.0 - up) * h[j] + up * n;
			}
			for (int j = 0; j < H; j++) {
				h[j] = hn[j];
				g->outd[(b * GT + t) * H + j] = h[j];
			}
		}
		for (int j = 0; j < H; j++)
			g->outd[GB * GT * H + b * H + j] = h[j];
	}
}

static void gru_bwd(struct gc *g)
{
	struct gru_ctx *c = g->ctx;
	int I = c->I, H = c->H, N = c->p.N;
	float *Wx, *Wh, *bx, *bh, *dWx, *dWh, *dbx, *dbh;

	gru_fwd(g);
	gru_weights(c, X(c->tw), &Wx, &Wh, &bx, &bh);
	gru_weights(c, GR(c->tw), &dWx, &dWh, &dbx, &dbh);
	for (int b = 0; b < GB; b++)
		for (int t = 0; t < (int)c->lens[b]; t++)
			memcpy(c->dout + nn_pack_pos(&c->p, b, t) * H, g->R + (b * GT + t) * H,
			       (size_t)H * sizeof(float));
	nn_pack_last_backward(c->dout, c->h0 ? GR(c->th) : NULL, g->R + GB * GT * H, &c->p, H);
	memset(c->dx, 0, sizeof(float) * (size_t)N * I);
	memset(c->da, 0, sizeof(float) * (size_t)N);
	nn_gru_backward_idx(c->idx ? GR(0) : c->dx, c->ta >= 0 ? c->da : NULL,
			    c->h0 ? GR(c->th) : NULL, dWx, dWh, dbx, dbh, c->scratch, c->dout,
			    c->gates, c->gh, c->hprev, c->idx ? X(0) : c->xp,
			    c->idx ? c->xidx : NULL, c->nx, c->ta >= 0 ? c->ap : NULL, Wx, Wh,
			    &c->p, c->kind, I, H);
	for (int b = 0; b < GB; b++)
		for (int t = 0; t < (int)c->lens[b]; t++) {
			int q = nn_pack_pos(&c->p, b, t);
			for (int i = 0; !c->idx && i < I; i++)
				GR(0)[(b * GT + t) * I + i] += c->dx[q * I + i];
			if (c->ta >= 0)
				GR(c->ta)[b * GT + t] += c->da[q];
		}
}

/* idx: each padded slot's row of a table of nx rows (distinct inputs), or NULL */
static void check_gru_shape(const char *name, enum nn_gru_kind kind, bool h0, const int *idx,
			    int nx, int I, int H, bool wt, uint64_t seed)
{
	struct gru_ctx c = {.kind = kind,
			    .I = I,
			    .H = H,
			    .h0 = h0,
			    .lens = {4, 0, 2, 4, 1},
			    .idx = idx,
			    .nx = nx};
	struct gc g;
	int N, GH;

	c.G = nn_gru_gates(kind);
	GH = c.G * c.H;
	nn_pack_init(&c.p, c.pmem, c.lens, GB, GT);
	N = c.p.N;
	gc_init(&g, name, GB * GT * c.H + GB * c.H, seed);
	gc_tensor(&g, "x", (idx ? nx : GB * GT) * c.I, -1, 1);
	c.ta = c.th = -1;
	if (kind != NN_GRU) {
		c.ta = g.nt;
		gc_tensor(&g, "att", GB * GT, 0.05, 0.95);
	}
	if (h0) {
		c.th = g.nt;
		gc_tensor(&g, "h0", GB * c.H, -1, 1);
	}
	c.tw = g.nt;
	gc_tensor(&g, "W", GH * (c.I + c.H + 2), -0.8, 0.8);
	c.xp = gc_alloc(&g, sizeof(float) * (size_t)N * c.I);
	c.ap = gc_alloc(&g, sizeof(float) * (size_t)N);
	c.out = gc_alloc(&g, sizeof(float) * (size_t)N * c.H);
	c.gates = gc_alloc(&g, sizeof(float) * (size_t)N * GH);
	c.gh = gc_alloc(&g, sizeof(float) * (size_t)N * GH);
	c.hprev = gc_alloc(&g, sizeof(float) * (size_t)N * c.H);
	c.last = gc_alloc(&g, sizeof(float) * GB * (size_t)c.H);
	c.scratch =
		gc_alloc(&g, sizeof(float) * (size_t)nn_gru_scratch_floats(GB, N, kind, c.I, c.H));
	c.dout = gc_alloc(&g, sizeof(float) * (size_t)N * c.H);
	c.dx = gc_alloc(&g, sizeof(float) * (size_t)N * c.I);
	c.da = gc_alloc(&g, sizeof(float) * (size_t)N);
	c.wt = wt ? gc_alloc(&g, sizeof(float) * (size_t)GH * c.H) : NULL;
	/* Wider than 4: only the final states get a gradient (they carry every
	 * step's through the recurrence); with all 400 outputs the rounding
	 * the harness's float check sums is above its floor (gradcheck.h). */
	for (int i = 0; c.H > 4 && i < GB * GT * c.H; i++)
		g.R[i] = 0.0f;
	g.ctx = &c;
	g.fwd = gru_fwd;
	g.ref = gru_ref;
	g.bwd = gru_bwd;
	gc_run(&g);
}

static void check_gru_rows(const char *name, enum nn_gru_kind kind, bool h0, const int *idx, int nx,
			   uint64_t seed)
{
	check_gru_shape(name, kind, h0, idx, nx, 3, 4, true, seed);
}

static void check_gru(const char *name, enum nn_gru_kind kind, bool h0, uint64_t seed)
{
	check_gru_rows(name, kind, h0, NULL, 0, seed);
}

/*
 * Inputs as rows of a table of 5 (row 4 never used: no gradient), shared
 * across rows and steps: each row's gradient is the sum of its positions'.
 * Padding slots (-1) are never read.
 */
static const int gru_rows[GB * GT] = {0,  1,  0, 2, -1, -1, -1, -1, 3,  3,
				      -1, -1, 2, 1, 0,  3,  1,  -1, -1, -1};

static void test_gc_gru_rows(void **state)
{
	(void)state;
	check_gru_rows("gru (distinct rows)", NN_GRU, false, gru_rows, 5, 51);
	check_gru_rows("augru_keep (distinct rows)", NN_AUGRU_KEEP, true, gru_rows, 5, 52);
	check_gru_rows("agru (distinct rows)", NN_AGRU, false, gru_rows, 5, 53);
}

static void test_gc_gru(void **state)
{
	(void)state;
	check_gru("gru", NN_GRU, true, 31);
	check_gru("gru (h0 zero)", NN_GRU, false, 32);
}

/* H = 16: the steps' products by nn_sgemm_small's register tiles (at H = 4
 * it hands them to nn_sgemm), and without wt by nn_sgemm. */
static void test_gc_gru_tiles(void **state)
{
	(void)state;
	check_gru_shape("gru (H 16)", NN_GRU, true, NULL, 0, 5, 16, true, 41);
	check_gru_shape("augru (H 16)", NN_AUGRU, false, NULL, 0, 5, 16, true, 42);
	check_gru_shape("agru (H 16, distinct rows)", NN_AGRU, true, gru_rows, 5, 5, 16, true, 43);
	check_gru_shape("augru (H 16, nn_sgemm)", NN_AUGRU, true, NULL, 0, 5, 16, false, 44);
}

static void test_gc_augru(void **state)
{
	(void)state;
	check_gru("augru", NN_AUGRU, true, 33);
	check_gru("augru (h0 zero)", NN_AUGRU, false, 34);
}

static void test_gc_augru_keep(void **state)
{
	(void)state;
	check_gru("augru_keep", NN_AUGRU_KEEP, true, 39);
	check_gru("augru_keep (h0 zero)", NN_AUGRU_KEEP, false, 40);
}

static void test_gc_agru(void **state)
{
	(void)state;
	check_gru("agru", NN_AGRU, true, 35);
	check_gru("agru (h0 zero)", NN_AGRU, false, 36);
}

static void test_gc_aigru(void **state)
{
	(void)state;
	check_gru("aigru", NN_AIGRU, true, 37);
	check_gru("aigru (h0 zero)", NN_AIGRU, false, 38);
}

/*
 * The attention score's meaning at its ends: with a_t = 0 an AUGRU or AGRU
 * step keeps the state exactly (the position is skipped), with a_t = 1 an
 * AGRU step is the candidate and an AUGRU step a plain GRU step; an AIGRU
 * step with a_t = 0 sees a zero input; an AUGRU_KEEP step (the authors'
 * cell) is a plain GRU step at a_t = 0 and the candidate at a_t = 1.
 */
static void test_gru_score_ends(void **state)
{
	enum { I = 3, H = 4 };
	const uint32_t lens[1] = {1};
	float x[I] = {0.3f, -0.7f, 0.5f}, h0[H] = {0.2f, -0.1f, 0.4f, 0.9f}, zero[I] = {0};
	float W[3 * H * (I + H + 2)], out[H], ref[H], gates[3 * H], gh[3 * H], hprev[H];
	float a0 = 0.0f, a1 = 1.0f;
	int mem[8];
	struct nn_pack p;
	struct rng r;

	(void)state;
	rng_seed(&r, 5, 0);
	for (size_t i = 0; i < sizeof(W) / sizeof(W[0]); i++)
		W[i] = (float)unif(&r, -0.8, 0.8);
	nn_pack_init(&p, mem, lens, 1, 1);
	const float *Wx = W, *Wh = W + 3 * H * I, *bx = Wh + 3 * H * H, *bh = bx + 3 * H;
	for (int kind = NN_AUGRU; kind <= NN_AGRU; kind++) {
		nn_gru_forward(out, gates, gh, hprev, NULL, x, &a0, h0, Wx, Wh, bx, bh, &p, kind, I,
			       H);
		for (int j = 0; j < H; j++)
			assert_true(out[j] == h0[j]);
	}
	nn_gru_forward(out, gates, gh, hprev, NULL, x, &a1, h0, Wx, Wh, bx, bh, &p, NN_AUGRU, I, H);
	nn_gru_forward(ref, gates, gh, hprev, NULL, x, NULL, h0, Wx, Wh, bx, bh, &p, NN_GRU, I, H);
	for (int j = 0; j < H; j++)
		assert_true(out[j] == ref[j]);
	nn_gru_forward(out, gates, gh, hprev, NULL, x, &a0, h0, Wx, Wh, bx, bh, &p, NN_AIGRU, I, H);
	nn_gru_forward(ref, gates, gh, hprev, NULL, zero, NULL, h0, Wx, Wh, bx, bh, &p, NN_GRU, I,
		       H);
	for (int j = 0; j < H; j++)
		assert_true(fabsf(out[j] - ref[j]) <= 1e-7f);
	nn_gru_forward(out, gates, gh, hprev, NULL, x, &a0, h0, Wx, Wh, bx, bh, &p, NN_AUGRU_KEEP,
		       I, H);
	nn_gru_forward(ref, gates, gh, hprev, NULL, x, NULL, h0, Wx, Wh, bx, bh, &p, NN_GRU, I, H);
	for (int j = 0; j < H; j++)
		assert_true(out[j] == ref[j]);
	nn_gru_forward(out, gates, gh, hprev, NULL, x, &a1, h0, Wx, Wh, bx, bh, &p, NN_AUGRU_KEEP,
		       I, H);
	for (int j = 0; j < H; j++) /* the candidate: gates' last block */
		assert_true(fabsf(out[j] - gates[2 * H + j]) <= 1e-7f);
}

/* ------------------------------------------------------------- aux loss */

struct aux_ctx {
	int H, D, A1, A2;
	uint32_t lens[GB], nneg[GB];
	const int *idx, *nid; /* (GB GT) with distinct rows: slot -> row of e (ne, D), or NULL */
	int ne, eidx[GB * GT], nidx[GB * GT];
	struct nn_pack p;
	int pmem[64];
	float *hp, *ep, *np, *cache, *scratch, *dh, *de, *dn;
};

static struct nn_aux_params aux_slices(const struct aux_ctx *c, float *w)
{
	struct nn_aux_params a;

	a.W1h = w;
	a.W1e = a.W1h + c->A1 * c->H;
	a.b1 = a.W1e + c->A1 * c->D;
	a.W2 = a.b1 + c->A1;
	a.b2 = a.W2 + c->A2 * c->A1;
	a.w3 = a.b2 + c->A2;
	a.b3 = a.w3 + c->A2;
	return a;
}

/* padded (B, T, W) tensor x into packed rows */
static void aux_pack(const struct aux_ctx *c, float *dst, const float *x, int W)
{
	for (int b = 0; b < GB; b++)
		for (int t = 0; t < (int)c->lens[b]; t++)
			memcpy(dst + nn_pack_pos(&c->p, b, t) * W, x + (b * GT + t) * W,
			       (size_t)W * sizeof(float));
}

static void aux_unpack_add(const struct aux_ctx *c, float *x, const float *src, int W)
{
	for (int b = 0; b < GB; b++)
		for (int t = 0; t < (int)c->lens[b]; t++)
			for (int i = 0; i < W; i++)
				x[(b * GT + t) * W + i] += src[nn_pack_pos(&c->p, b, t) * W + i];
}

static void aux_fwd(struct gc *g)
{
	struct aux_ctx *c = g->ctx;
	struct nn_aux_params w = aux_slices(c, X(3));

	aux_pack(c, c->hp, X(0), c->H);
	if (c->idx) {
		for (int b = 0; b < GB; b++)
			for (int t = 0; t < (int)c->lens[b]; t++) {
				int q = nn_pack_pos(&c->p, b, t);
				c->eidx[q] = c->idx[b * GT + t];
				c->nidx[q] = c->nid[b * GT + t];
			}
		g->out[0] = (float)nn_aux_forward_idx(c->cache, c->hp, X(1), NULL, NULL, c->eidx,
						      c->nidx, c->ne, &w, &c->p, c->H, c->D, c->A1,
						      c->A2);
		return;
	}
	aux_pack(c, c->ep, X(1), c->D);
	aux_pack(c, c->np, X(2), c->D);
	g->out[0] = (float)nn_aux_forward(c->cache, c->hp, c->ep, c->np, c->nneg, &w, &c->p, c->H,
					  c->D, c->A1, c->A2);
}

/* s(h, e) of the header, in double */
static double aux_score(const struct aux_ctx *c, const double *w, const double *h, const double *e)
{
	const double *W1h = w, *W1e = W1h + c->A1 * c->H, *b1 = W1e + c->A1 * c->D;
	const double *W2 = b1 + c->A1, *b2 = W2 + c->A2 * c->A1, *w3 = b2 + c->A2;
	double z1[16], s = w3[c->A2];

	for (int a = 0; a < c->A1; a++) {
		double v = b1[a];
		for (int i = 0; i < c->H; i++)
			v += W1h[a * c->H + i] * h[i];
		for (int i = 0; i < c->D; i++)
			v += W1e[a * c->D + i] * e[i];
		z1[a] = sigd(v);
	}
	for (int a = 0; a < c->A2; a++) {
		double v = b2[a];
		for (int i = 0; i < c->A1; i++)
			v += W2[a * c->A1 + i] * z1[i];
		s += w3[a] * sigd(v);
	}
	return s;
}

static void aux_ref(struct gc *g)
{
	struct aux_ctx *c = g->ctx;
	double loss = 0.0;
	int n = 0;

	for (int b = 0; b < GB; b++)
		for (int t = 0; t + 1 < (int)c->lens[b]; t++) {
			const double *h = XD(0) + (b * GT + t) * c->H;
			int s1 = b * GT + t + 1, pos = c->idx ? c->idx[s1] : s1;
			int neg = c->idx ? c->nid[s1] : t + 1 < (int)c->nneg[b] ? s1 : -1;
			double sp = aux_score(c, XD(3), h, XD(1) + pos * c->D);
			loss += log1p(exp(-sp)); /* -log sigmoid(sp) */
			n++;
			if (neg >= 0) {
				double sn = aux_score(c, XD(3), h,
						      (c->idx ? XD(1) : XD(2)) + neg * c->D);
				loss += log1p(exp(sn)); /* -log(1 - sigmoid(sn)) */
				n++;
			}
		}
	g->outd[0] = n ? loss / n : 0.0;
}

static void aux_bwd(struct gc *g)
{
	struct aux_ctx *c = g->ctx;
	struct nn_aux_params w = aux_slices(c, X(3)), dw = aux_slices(c, GR(3));
	int N = c->p.N;

	aux_fwd(g);
	memset(c->dh, 0, sizeof(float) * (size_t)N * c->H);
	memset(c->de, 0, sizeof(float) * (size_t)N * c->D);
	memset(c->dn, 0, sizeof(float) * (size_t)N * c->D);
	if (c->idx) {
		nn_aux_backward_idx(c->dh, GR(1), NULL, &dw, c->scratch, g->R[0], c->cache, c->hp,
				    X(1), NULL, c->eidx, c->nidx, c->ne, &w, &c->p, c->H, c->D,
				    c->A1, c->A2);
		aux_unpack_add(c, GR(0), c->dh, c->H);
		return;
	}
	nn_aux_backward(c->dh, c->de, c->dn, &dw, c->scratch, g->R[0], c->cache, c->hp, c->ep,
			c->np, &w, &c->p, c->H, c->D, c->A1, c->A2);
	aux_unpack_add(c, GR(0), c->dh, c->H);
	aux_unpack_add(c, GR(1), c->de, c->D);
	aux_unpack_add(c, GR(2), c->dn, c->D);
}

/* idx, nid: each slot's item and negative rows of a table of ne (e), or NULL */
static void check_aux_rows(const char *name, const uint32_t *nneg, const int *idx, const int *nid,
			   int ne, uint64_t seed)
{
	struct aux_ctx c = {.H = 3,
			    .D = 4,
			    .A1 = 5,
			    .A2 = 3,
			    .lens = {4, 0, 2, 4, 1},
			    .idx = idx,
			    .nid = nid,
			    .ne = ne};
	struct gc g;
	int N;

	memcpy(c.nneg, nneg, sizeof(c.nneg));
	nn_pack_init(&c.p, c.pmem, c.lens, GB, GT);
	N = c.p.N;
	gc_init(&g, name, 1, seed);
	gc_tensor(&g, "h", GB * GT * c.H, -1, 1);
	gc_tensor(&g, "e", (idx ? ne : GB * GT) * c.D, -1, 1);
	gc_tensor(&g, "eneg", idx ? 1 : GB * GT * c.D, -1, 1); /* not read with idx */
	gc_tensor(&g, "W", c.A1 * (c.H + c.D + 1) + c.A2 * (c.A1 + 2) + 1, -1, 1);
	c.hp = gc_alloc(&g, sizeof(float) * (size_t)N * c.H);
	c.ep = gc_alloc(&g, sizeof(float) * (size_t)N * c.D);
	c.np = gc_alloc(&g, sizeof(float) * (size_t)N * c.D);
	c.cache = gc_alloc(&g, sizeof(float) * (size_t)nn_aux_cache_floats(N, c.A1, c.A2));
	c.scratch = gc_alloc(&g, sizeof(float) * (size_t)nn_aux_scratch_floats(N, c.A1, c.A2));
	c.dh = gc_alloc(&g, sizeof(float) * (size_t)N * c.H);
	c.de = gc_alloc(&g, sizeof(float) * (size_t)N * c.D);
	c.dn = gc_alloc(&g, sizeof(float) * (size_t)N * c.D);
	g.ctx = &c;
	g.fwd = aux_fwd;
	g.ref = aux_ref;
	g.bwd = aux_bwd;
	gc_run(&g);
}

static void check_aux(const char *name, const uint32_t *nneg, uint64_t seed)
{
	check_aux_rows(name, nneg, NULL, NULL, 0, seed);
}

/*
 * Items and negatives as rows of one table of 6 (row 5 unused), shared
 * between positions, rows and the two sides (row 2 is a clicked item and
 * another position's negative); -1: no negative.
 */
static const int aux_items[GB * GT] = {0,  1,  2, 1, -1, -1, -1, -1, 3,  0,
				       -1, -1, 1, 1, 4,  0,  2,  -1, -1, -1};
static const int aux_negs[GB * GT] = {4,  2,  -1, 3,  -1, -1, -1, -1, 1,  2,
				      -1, -1, 0,  -1, 2,  2,  4,  -1, -1, -1};

static void test_gc_aux(void **state)
{
	/* every negative there; then fewer negatives than history items in two rows */
	const uint32_t all[GB] = {4, 0, 2, 4, 1}, some[GB] = {4, 0, 1, 3, 1};

	(void)state;
	check_aux("aux loss", all, 41);
	check_aux("aux loss (missing negatives)", some, 42);
	check_aux_rows("aux loss (distinct rows)", all, aux_items, aux_negs, 6, 43);
}

/* No pair (every history shorter than 2): loss 0, no gradient, no NaN. */
static void test_aux_no_pairs(void **state)
{
	const uint32_t lens[3] = {1, 0, 1};
	float w[64], dw[64] = {0}, cache[64], scratch[64], hs[2] = {1, 2}, e[2] = {3, 4};
	int mem[16];
	struct nn_pack p;

	(void)state;
	for (int i = 0; i < 64; i++)
		w[i] = 0.5f;
	nn_pack_init(&p, mem, lens, 3, 2);
	struct nn_aux_params a = aux_slices(&(struct aux_ctx){.H = 1, .D = 1, .A1 = 2, .A2 = 2}, w);
	struct nn_aux_params d =
		aux_slices(&(struct aux_ctx){.H = 1, .D = 1, .A1 = 2, .A2 = 2}, dw);
	assert_true(nn_aux_cache_floats(p.N, 2, 2) <= 64);
	assert_true(nn_aux_forward(cache, hs, e, e, NULL, &a, &p, 1, 1, 2, 2) == 0.0);
	nn_aux_backward(hs, e, e, &d, scratch, 1.0f, cache, hs, e, e, &a, &p, 1, 1, 2, 2);
	for (int i = 0; i < 64; i++)
		assert_true(dw[i] == 0.0f);
	assert_true(hs[0] == 1 && hs[1] == 2 && e[0] == 3 && e[1] == 4);
}

/* ------------------------------------------------------------- fastmath */

/* fastmath.h's bounds, on a fine grid and at the clamp's ends. */
static void test_fastmath(void **state)
{
	double worst_e = 0, worst_s = 0, worst_t = 0;

	(void)state;
	for (int i = -200000; i <= 200000; i++) {
		float x = (float)i * 4.4e-4f; /* -88 .. 88 */
		double e = exp(x), fe = nn_expf_vec(x);
		if (x >= -87.0f && x <= 87.0f)
			worst_e = fmax(worst_e, fabs(fe - e) / e);
		if (x >= -87.0f) /* below: ~1e-38, a denormal the workers flush to 0 */
			worst_s = fmax(worst_s,
				       fabs(nn_sigmoidf_vec(x) - 1.0 / (1.0 + exp(-(double)x))) /
					       (1.0 / (1.0 + exp(-(double)x))));
		worst_t = fmax(worst_t, fabs(nn_tanhf_vec(x) - tanh((double)x)));
	}
	if (gc_verbose())
		print_message("fastmath: exp %.3g, sigmoid %.3g (relative), tanh %.3g (absolute)\n",
			      worst_e, worst_s, worst_t);
	assert_true(worst_e <= 2e-7);
	assert_true(worst_s <= 3e-7);
	assert_true(worst_t <= 3e-7);
	/* clamped, never inf or a denormal */
	assert_true(nn_expf_vec(1000.0f) == nn_expf_vec(87.0f) && isfinite(nn_expf_vec(1000.0f)));
	assert_true(nn_expf_vec(-1000.0f) == nn_expf_vec(-87.0f));
	assert_true(nn_expf_vec(-1000.0f) >= FLT_MIN);
	assert_true(nn_sigmoidf_vec(-1000.0f) >= 0.0f && nn_sigmoidf_vec(1000.0f) == 1.0f);
	assert_true(nn_tanhf_vec(-1000.0f) == -1.0f && nn_tanhf_vec(1000.0f) == 1.0f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_layout),    cmocka_unit_test(test_gc_gru),
		cmocka_unit_test(test_gc_gru_tiles),   cmocka_unit_test(test_gc_gru_rows),
		cmocka_unit_test(test_gc_augru),       cmocka_unit_test(test_gc_augru_keep),
		cmocka_unit_test(test_gc_agru),        cmocka_unit_test(test_gc_aigru),
		cmocka_unit_test(test_gru_score_ends), cmocka_unit_test(test_fastmath),
		cmocka_unit_test(test_gc_aux),         cmocka_unit_test(test_aux_no_pairs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
