/*
 * test_nn_attn.c - DIN's local activation unit (models/nn/attn.h) with its
 * softmax and pooling: central finite-difference checks (harness and
 * tolerances: gradcheck.h) of the composition
 *
 *   score = unit(q, keys); w = score or softmax(score); out = [w | pool(w, keys)]
 *
 * against a double-precision reference written here the plain way (each
 * position's [q | k | q - k | q * k] times the whole W_1, no hoisting), for
 * Dice (batch and running statistics), PReLU and ReLU, raw and
 * softmax-normalised weights, one and two hidden layers, on sequences of
 * every length 0 .. T packed from a padded tensor whose padding holds NaN
 * (never read).  Also: the running statistics are those of the valid
 * positions only, and packing round-trips.
 *
 * Tolerances are the harness's.  The float check (step 5e-3) is the
 * tightest here: Dice's batch statistics add truncation error, worst seen
 * 3.9e-3 over 16 seeds with these 19 positions and weights in [-0.5, 0.5]
 * (with 10 positions, 1.1e-2: the statistics of few positions are more
 * curved).  Broken backwards (the q - k block's sign, the q * k path into
 * dq) fail the reference check with errors of 0.4 .. 1.3.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/nn/attn.h"
#include "models/nn/nn.h"
#include "tests/unit/gradcheck.h"

#define AB 6 /* examples */
#define AT 6 /* padded length */
#define AD 3 /* query / key width */
#define L NN_ATTN_MAX_LAYERS

/* Lengths 0 .. AT: an empty sequence, a full one, the rest between. */
static const uint32_t lens[AB] = {4, 0, 6, 1, 3, 5};

struct at_ctx {
	struct nn_attn_shape s;
	bool training, softmax, bias_out;
	int B;         /* examples */
	uint32_t *off; /* (B + 1) */
	int N;
	float *ws, *score, *prob, *dw, *dscore;
	float *run_mean[L], *run_var[L];
	int oW[L], ob[L], oa[L], owo, obo, np; /* offsets into the params tensor */
	double *pre;                           /* (N, sum H) the reference's pre-activations */
	int npre;
};

/* The params tensor's layout: per layer W, b, alpha (not for ReLU); w_out; b_out. */
static int layout(struct at_ctx *c)
{
	int o = 0, in = 4 * AD;

	for (int l = 0; l < c->s.n; l++) {
		c->oW[l] = o;
		o += c->s.H[l] * in;
		c->ob[l] = o;
		o += c->s.H[l];
		c->oa[l] = o;
		if (c->s.act != NN_ATTN_RELU)
			o += c->s.H[l];
		in = c->s.H[l];
	}
	c->owo = o;
	o += in;
	c->obo = o;
	if (c->bias_out)
		o++;
	return o;
}

static void params_of(const struct at_ctx *c, float *x, struct nn_attn_params *p)
{
	memset(p, 0, sizeof(*p));
	for (int l = 0; l < c->s.n; l++) {
		p->W[l] = x + c->oW[l];
		p->b[l] = x + c->ob[l];
		p->alpha[l] = c->s.act != NN_ATTN_RELU ? x + c->oa[l] : NULL;
		p->run_mean[l] = c->run_mean[l];
		p->run_var[l] = c->run_var[l];
	}
	p->w_out = x + c->owo;
	p->b_out = c->bias_out ? x + c->obo : NULL;
}

static void grads_of(const struct at_ctx *c, float *x, struct nn_attn_grads *g)
{
	memset(g, 0, sizeof(*g));
	for (int l = 0; l < c->s.n; l++) {
		g->W[l] = x + c->oW[l];
		g->b[l] = x + c->ob[l];
		g->alpha[l] = c->s.act != NN_ATTN_RELU ? x + c->oa[l] : NULL;
	}
	g->w_out = x + c->owo;
	g->b_out = c->bias_out ? x + c->obo : NULL;
}

/* out = [w (N) | pool (B, D)] */
static void at_fwd(struct gc *g)
{
	struct at_ctx *c = g->ctx;
	struct nn_attn_params p;
	const float *w = c->score;

	params_of(c, X(2), &p);
	nn_attn_forward(c->score, c->ws, X(0), X(1), c->off, &p, &c->s, c->training, c->B);
	if (c->softmax) {
		nn_attn_softmax_forward(c->prob, c->score, c->off, c->B);
		w = c->prob;
	}
	memcpy(g->out, w, (size_t)c->N * sizeof(float));
	nn_attn_pool_forward(g->out + c->N, w, X(1), c->off, c->B, AD);
}

static void at_bwd(struct gc *g)
{
	struct at_ctx *c = g->ctx;
	struct nn_attn_params p;
	struct nn_attn_grads gr;
	const float *w;

	at_fwd(g);
	params_of(c, X(2), &p);
	grads_of(c, GR(2), &gr);
	w = c->softmax ? c->prob : c->score;
	memcpy(c->dw, g->R, (size_t)c->N * sizeof(float));
	nn_attn_pool_backward(c->dw, GR(1), g->R + c->N, w, X(1), c->off, c->B, AD);
	if (c->softmax) {
		memset(c->dscore, 0, (size_t)c->N * sizeof(float));
		nn_attn_softmax_backward(c->dscore, c->dw, c->prob, c->off, c->B);
	} else {
		memcpy(c->dscore, c->dw, (size_t)c->N * sizeof(float));
	}
	nn_attn_backward(GR(0), GR(1), &gr, c->dscore, c->ws, X(0), X(1), c->off, &p, &c->s,
			 c->training, c->B);
}

/* The double reference: every position's full input row times W_1. */
static void at_ref(struct gc *g)
{
	struct at_ctx *c = g->ctx;
	const double *q = XD(0), *k = XD(1), *x = XD(2);
	int N = c->N, in = 4 * AD, pre = 0;
	double *h = calloc((size_t)N * 64 + 1, sizeof(double));
	double *z = calloc((size_t)N * 64 + 1, sizeof(double));
	double *s = calloc((size_t)N + 1, sizeof(double)),
	       *w = calloc((size_t)N + 1, sizeof(double));

	assert_true(h && z && s && w);
	for (int b = 0; b < c->B; b++)
		for (uint32_t t = c->off[b]; t < c->off[b + 1]; t++)
			for (int d = 0; d < AD; d++) {
				double qd = q[b * AD + d], kd = k[t * AD + d];
				h[t * in + d] = qd;
				h[t * in + AD + d] = kd;
				h[t * in + 2 * AD + d] = qd - kd;
				h[t * in + 3 * AD + d] = qd * kd;
			}
	for (int l = 0; l < c->s.n; l++) {
		int H = c->s.H[l];
		for (int t = 0; t < N; t++)
			for (int o = 0; o < H; o++) {
				double a = x[c->ob[l] + o];
				for (int i = 0; i < in; i++)
					a += x[c->oW[l] + o * in + i] * h[t * in + i];
				z[t * H + o] = a;
				c->pre[t * c->npre + pre + o] = a;
			}
		for (int o = 0; o < H; o++) {
			double m = 0, v = 0, al = c->s.act != NN_ATTN_RELU ? x[c->oa[l] + o] : 0;
			if (c->s.act == NN_ATTN_DICE) {
				if (c->training) {
					for (int t = 0; t < N; t++)
						m += z[t * H + o];
					m /= N;
					for (int t = 0; t < N; t++)
						v += (z[t * H + o] - m) * (z[t * H + o] - m);
					v /= N;
				} else {
					m = c->run_mean[l][o];
					v = c->run_var[l][o];
				}
			}
			for (int t = 0; t < N; t++) {
				double y = z[t * H + o], r;
				if (c->s.act == NN_ATTN_DICE) {
					double p = sigmoid_d((y - m) / sqrt(v + (double)c->s.eps));
					r = p * y + (1 - p) * al * y;
				} else if (c->s.act == NN_ATTN_PRELU) {
					r = y > 0 ? y : al * y;
				} else {
					r = y > 0 ? y : 0;
				}
				h[t * H + o] = r;
			}
		}
		pre += H;
		in = H;
	}
	for (int t = 0; t < N; t++) {
		s[t] = c->bias_out ? x[c->obo] : 0;
		for (int i = 0; i < in; i++)
			s[t] += x[c->owo + i] * h[t * in + i];
		w[t] = s[t];
	}
	if (c->softmax)
		for (int b = 0; b < c->B; b++) {
			double mx = -INFINITY, sum = 0;
			for (uint32_t t = c->off[b]; t < c->off[b + 1]; t++)
				mx = fmax(mx, s[t]);
			for (uint32_t t = c->off[b]; t < c->off[b + 1]; t++)
				sum += exp(s[t] - mx);
			for (uint32_t t = c->off[b]; t < c->off[b + 1]; t++)
				w[t] = exp(s[t] - mx) / sum;
		}
	for (int t = 0; t < N; t++)
		g->outd[t] = w[t];
	for (int b = 0; b < c->B; b++)
		for (int d = 0; d < AD; d++) {
			double o = 0;
			for (uint32_t t = c->off[b]; t < c->off[b + 1]; t++)
				o += w[t] * k[t * AD + d];
			g->outd[N + b * AD + d] = o;
		}
	free(h);
	free(z);
	free(s);
	free(w);
}

/* PReLU and ReLU: a pre-activation changes sign between x - h and x + h. */
static bool at_kink(struct gc *g, int ti, int i, double h)
{
	struct at_ctx *c = g->ctx;
	double keep = g->t[ti].xd[i];
	size_t n = (size_t)c->N * c->npre;
	double *lo = malloc(n * sizeof(double));
	bool kink = false;

	if (c->s.act == NN_ATTN_DICE) {
		free(lo);
		return false;
	}
	assert_non_null(lo);
	g->t[ti].xd[i] = keep - h;
	g->ref(g);
	memcpy(lo, c->pre, n * sizeof(double));
	g->t[ti].xd[i] = keep + h;
	g->ref(g);
	g->t[ti].xd[i] = keep;
	for (size_t j = 0; j < n; j++)
		if ((lo[j] > 0) != (c->pre[j] > 0))
			kink = true;
	g->ref(g);
	free(lo);
	return kink;
}

/* Sets up g and c for the composition on B examples of lengths lens (padded to T). */
static void setup(struct gc *g, struct at_ctx *c, enum nn_attn_act act, int n_layers, bool softmax,
		  bool training, const char *name, uint64_t seed, int B, int T, const uint32_t *len)
{
	float *padded;

	memset(c, 0, sizeof(*c));
	c->s.D = AD;
	c->s.n = n_layers;
	c->s.H[0] = 5;
	c->s.H[1] = 4;
	c->s.act = act;
	c->s.eps = 1e-5f;
	c->training = training;
	c->softmax = softmax;
	c->bias_out = !softmax; /* under a softmax b_out has no effect (attn.h) */
	c->B = B;
	gc_init(g, name, 1, seed); /* nout set below, once N is known */
	c->off = gc_alloc(g, (size_t)(B + 1) * sizeof(uint32_t));
	c->N = (int)nn_attn_pack(NULL, c->off, NULL, len, B, T, AD);
	c->np = layout(c);
	for (int l = 0; l < n_layers; l++)
		c->npre += c->s.H[l];
	g->nout = c->N + B * AD;
	g->out = gc_alloc(g, sizeof(float) * (size_t)g->nout);
	g->outd = gc_alloc(g, sizeof(double) * (size_t)g->nout);
	g->R = gc_alloc(g, sizeof(float) * (size_t)g->nout);
	for (int i = 0; i < g->nout; i++)
		g->R[i] = (float)unif(&g->rng, -1.0, 1.0);
	c->ws = gc_alloc(g, nn_attn_ws_floats(&c->s, B, c->N) * sizeof(float));
	c->score = gc_alloc(g, (size_t)c->N * sizeof(float));
	c->prob = gc_alloc(g, (size_t)c->N * sizeof(float));
	c->dw = gc_alloc(g, (size_t)c->N * sizeof(float));
	c->dscore = gc_alloc(g, (size_t)c->N * sizeof(float));
	c->pre = gc_alloc(g, (size_t)c->N * c->npre * sizeof(double));
	for (int l = 0; l < n_layers; l++) {
		c->run_mean[l] = gc_alloc(g, (size_t)c->s.H[l] * sizeof(float));
		c->run_var[l] = gc_alloc(g, (size_t)c->s.H[l] * sizeof(float));
		for (int o = 0; o < c->s.H[l]; o++) {
			c->run_mean[l][o] = (float)unif(&g->rng, -0.5, 0.5);
			c->run_var[l][o] = (float)unif(&g->rng, 0.2, 2.0);
		}
	}
	gc_tensor(g, "q", B * AD, -1, 1);
	/* keys: packed from a padded tensor whose padding is NaN */
	padded = gc_alloc(g, (size_t)B * T * AD * sizeof(float));
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int d = 0; d < AD; d++)
				padded[(b * T + t) * AD + d] =
					(uint32_t)t < len[b] ? (float)unif(&g->rng, -1, 1) : NAN;
	float *keys = gc_tensor(g, "keys", c->N * AD, 0, 0); /* (N, D), packed: */
	assert_int_equal(nn_attn_pack(keys, c->off, padded, len, B, T, AD), c->N);
	gc_tensor(g, "params", c->np, -0.5, 0.5);
	g->ctx = c;
	g->fwd = at_fwd;
	g->ref = at_ref;
	g->bwd = at_bwd;
	g->kink = at_kink;
}

static void check_attn(enum nn_attn_act act, int n_layers, bool softmax, bool training,
		       const char *name, uint64_t seed)
{
	struct at_ctx c;
	struct gc g;

	setup(&g, &c, act, n_layers, softmax, training, name, seed, AB, AT, lens);
	gc_run(&g);
}

static void test_gc_attn_dice(void **state)
{
	(void)state;
	check_attn(NN_ATTN_DICE, 2, false, true, "attn dice", 301);
	check_attn(NN_ATTN_DICE, 2, true, true, "attn dice softmax", 302);
	check_attn(NN_ATTN_DICE, 1, false, true, "attn dice 1 layer", 303);
	check_attn(NN_ATTN_DICE, 2, false, false, "attn dice eval", 304);
	check_attn(NN_ATTN_DICE, 2, true, false, "attn dice eval softmax", 305);
}

static void test_gc_attn_prelu(void **state)
{
	(void)state;
	check_attn(NN_ATTN_PRELU, 2, false, true, "attn prelu", 311);
	check_attn(NN_ATTN_PRELU, 2, true, true, "attn prelu softmax", 312);
	check_attn(NN_ATTN_PRELU, 1, true, true, "attn prelu 1 layer", 313);
}

static void test_gc_attn_relu(void **state)
{
	(void)state;
	check_attn(NN_ATTN_RELU, 2, false, true, "attn relu", 321);
	check_attn(NN_ATTN_RELU, 2, true, true, "attn relu softmax", 322);
}

/*
 * Many positions (about 1200 over 48 histories of up to 50): the unit
 * works in tiles of 512 positions, with tile boundaries inside histories
 * and Dice's statistics summed across tiles.  The forward against the
 * reference at every output; the backward against the reference's
 * central differences at 60 random elements of each input.
 */
static void check_tiles(enum nn_attn_act act, bool softmax, bool training, const char *name,
			uint64_t seed)
{
	enum { TB = 48, TT = 50 };
	uint32_t tl[TB];
	struct at_ctx c;
	struct gc g;
	struct rng r;

	rng_seed(&r, seed, 9);
	for (int b = 0; b < TB; b++)
		tl[b] = b % 7 == 3 ? 0 : (uint32_t)rng_below(&r, TT + 1);
	setup(&g, &c, act, 2, softmax, training, name, seed, TB, TT, tl);
	assert_true(c.N > 2 * 512);
	for (int t = 0; t < g.nt; t++)
		for (int i = 0; i < g.t[t].n; i++)
			g.t[t].xd[i] = g.t[t].x[i];
	gc_check_forward(&g);
	gc_zero_grads(&g);
	g.bwd(&g);
	for (int t = 0; t < g.nt; t++)
		for (int k = 0; k < 60; k++) {
			int i = (int)rng_below(&r, (uint64_t)g.t[t].n);
			double v = g.t[t].xd[i], num;
			if (at_kink(&g, t, i, GC_H_REF))
				continue;
			g.t[t].xd[i] = v + GC_H_REF;
			g.ref(&g);
			num = gc_objective(&g, true);
			g.t[t].xd[i] = v - GC_H_REF;
			g.ref(&g);
			num = (num - gc_objective(&g, true)) / (2 * GC_H_REF);
			g.t[t].xd[i] = v;
			if (!(gc_err(g.t[t].g[i], num) <= GC_TOL_REF))
				fail_msg(
					"%s: d%s[%d]: backward %.9g, reference central difference %.9g",
					name, g.t[t].name, i, g.t[t].g[i], num);
		}
	gc_free(&g);
}

static void test_attn_tiles(void **state)
{
	(void)state;
	check_tiles(NN_ATTN_DICE, false, true, "tiles dice", 331);
	check_tiles(NN_ATTN_DICE, true, true, "tiles dice softmax", 332);
	check_tiles(NN_ATTN_DICE, false, false, "tiles dice eval", 333);
	check_tiles(NN_ATTN_PRELU, false, true, "tiles prelu", 334);
}

/*
 * Dice's statistics are over the valid positions only: with momentum 1 the
 * running mean and variance become the mean and the unbiased variance of
 * the first layer's pre-activations at those positions, whatever the
 * padding holds (here NaN, never packed).
 */
static void test_attn_running_stats(void **state)
{
	enum { H = 3 };
	struct nn_attn_shape s = {.D = AD, .n = 1, .H = {H}, .act = NN_ATTN_DICE, .eps = 1e-5f};
	float W[H * 4 * AD], bias[H] = {0.1f, -0.2f, 0.3f}, alpha[H] = {0}, wo[H] = {1, 1, 1};
	float q[AB * AD], padded[AB * AT * AD], keys[AB * AT * AD], score[AB * AT];
	float rm[H] = {5, 5, 5}, rv[H] = {5, 5, 5};
	float *rms[L] = {rm}, *rvs[L] = {rv};
	uint32_t off[AB + 1];
	struct rng r;

	(void)state;
	rng_seed(&r, 7, 0);
	for (int i = 0; i < H * 4 * AD; i++)
		W[i] = (float)unif(&r, -1, 1);
	for (int i = 0; i < AB * AD; i++)
		q[i] = (float)unif(&r, -1, 1);
	for (int b = 0; b < AB; b++)
		for (int t = 0; t < AT; t++)
			for (int d = 0; d < AD; d++)
				padded[(b * AT + t) * AD + d] =
					(uint32_t)t < lens[b] ? (float)unif(&r, -1, 1) : NAN;
	int N = (int)nn_attn_pack(keys, off, padded, lens, AB, AT, AD);
	struct nn_attn_params p = {.W = {W}, .b = {bias}, .alpha = {alpha}, .w_out = wo};
	float *ws = calloc(nn_attn_ws_floats(&s, AB, N), sizeof(float));

	assert_non_null(ws);
	nn_attn_forward(score, ws, q, keys, off, &p, &s, true, AB);
	nn_attn_update_stats(rms, rvs, ws, &s, 1.0f, AB, N);
	for (int h = 0; h < H; h++) {
		double z[AB * AT], m = 0, v = 0;
		for (int b = 0; b < AB; b++)
			for (uint32_t t = off[b]; t < off[b + 1]; t++) {
				double a = bias[h];
				for (int d = 0; d < AD; d++) {
					double qd = q[b * AD + d], kd = keys[t * AD + d];
					a += W[h * 4 * AD + d] * qd + W[h * 4 * AD + AD + d] * kd +
					     W[h * 4 * AD + 2 * AD + d] * (qd - kd) +
					     W[h * 4 * AD + 3 * AD + d] * qd * kd;
				}
				z[t] = a;
				m += a;
			}
		m /= N;
		for (int t = 0; t < N; t++)
			v += (z[t] - m) * (z[t] - m);
		v /= N - 1;
		assert_true(fabs(rm[h] - m) < 1e-5);
		assert_true(fabs(rv[h] - v) < 1e-4 * fmax(1, v));
		assert_true(isfinite(score[0]));
	}
	free(ws);
}

/* Packing: offsets, copied rows; unpacking: values then the fill. */
static void test_attn_pack(void **state)
{
	float padded[AB * AT * 2], packed[AB * AT * 2], v[AB * AT], out[AB * AT];
	uint32_t off[AB + 1];

	(void)state;
	for (int i = 0; i < AB * AT * 2; i++)
		padded[i] = (float)i;
	assert_int_equal(nn_attn_pack(packed, off, padded, lens, AB, AT, 2), 19);
	const uint32_t want_off[AB + 1] = {0, 4, 4, 10, 11, 14, 19};
	assert_memory_equal(off, want_off, sizeof(want_off));
	for (int b = 0; b < AB; b++)
		for (uint32_t t = 0; t < lens[b]; t++)
			for (int d = 0; d < 2; d++)
				assert_true(packed[(off[b] + t) * 2 + d] ==
					    padded[(b * AT + t) * 2 + d]);
	for (int t = 0; t < 19; t++)
		v[t] = (float)(t + 1);
	nn_attn_unpack(out, v, off, -INFINITY, AB, AT);
	for (int b = 0; b < AB; b++)
		for (int t = 0; t < AT; t++)
			assert_true(out[b * AT + t] ==
				    ((uint32_t)t < lens[b] ? v[off[b] + (uint32_t)t] : -INFINITY));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gc_attn_dice),       cmocka_unit_test(test_gc_attn_prelu),
		cmocka_unit_test(test_gc_attn_relu),       cmocka_unit_test(test_attn_tiles),
		cmocka_unit_test(test_attn_running_stats), cmocka_unit_test(test_attn_pack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
