/*
 * test_nn.c - the layer kernels of models/nn: a central finite-difference
 * gradient check of every layer (harness and tolerances: gradcheck.h),
 * accumulate semantics, edge cases.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/nn/nn.h"
#include "tests/unit/gradcheck.h"

/* ---------------------------------------------------------------- linear */

struct lin_ctx {
	int B, IC, OC;
	bool bias;
};

static void lin_fwd(struct gc *g)
{
	struct lin_ctx *c = g->ctx;
	nn_linear_forward(g->out, X(0), X(1), c->bias ? X(2) : NULL, c->B, c->IC, c->OC);
}

static void lin_ref(struct gc *g)
{
	struct lin_ctx *c = g->ctx;
	for (int b = 0; b < c->B; b++)
		for (int o = 0; o < c->OC; o++) {
			double s = c->bias ? XD(2)[o] : 0.0;
			for (int i = 0; i < c->IC; i++)
				s += XD(0)[b * c->IC + i] * XD(1)[o * c->IC + i];
			g->outd[b * c->OC + o] = s;
		}
}

static void lin_bwd(struct gc *g)
{
	struct lin_ctx *c = g->ctx;
	lin_fwd(g);
	nn_linear_backward(GR(0), GR(1), c->bias ? GR(2) : NULL, g->R, X(0), X(1), c->B, c->IC,
			   c->OC);
}

static void check_linear(int B, int IC, int OC, bool bias)
{
	struct lin_ctx c = {B, IC, OC, bias};
	struct gc g;

	gc_init(&g, bias ? "linear" : "linear (no bias)", B * OC, 11 + (uint64_t)B);
	gc_tensor(&g, "in", B * IC, -1, 1);
	gc_tensor(&g, "W", OC * IC, -1, 1);
	if (bias)
		gc_tensor(&g, "b", OC, -1, 1);
	g.ctx = &c;
	g.fwd = lin_fwd;
	g.ref = lin_ref;
	g.bwd = lin_bwd;
	gc_run(&g);
}

static void test_gc_linear(void **state)
{
	(void)state;
	check_linear(4, 5, 3, true);
	check_linear(1, 7, 2, true);
	check_linear(3, 4, 6, false);
}

/* W is (OC, IC), PyTorch's layout: out = in W^T + b, by hand. */
static void test_linear_layout(void **state)
{
	const float W[3 * 2] = {1, 2, 3, 4, 5, 6}; // (3, 2)
	const float in[2 * 2] = {1, 1, 1, -1};     // (2, 2)
	const float b[3] = {0.5f, 0, -1};
	const float want[2 * 3] = {3.5f, 7, 10, -0.5f, -1, -2};
	float out[6], dinp[4] = {0}, dW[6] = {0};
	const float dout[6] = {1, 0, 0, 0, 0, 1};

	(void)state;
	nn_linear_forward(out, in, W, b, 2, 2, 3);
	for (int i = 0; i < 6; i++)
		assert_true(out[i] == want[i]);
	/* NULL gradients are skipped; dinp = dout W, dW = dout^T in. */
	nn_linear_backward(dinp, dW, NULL, dout, in, W, 2, 2, 3);
	const float wdinp[4] = {1, 2, 5, 6}, wdW[6] = {1, 1, 0, 0, 1, -1};
	for (int i = 0; i < 4; i++)
		assert_true(dinp[i] == wdinp[i]);
	for (int i = 0; i < 6; i++)
		assert_true(dW[i] == wdW[i]);
	/* B == 0 is a no-op. */
	nn_linear_forward(out, in, W, b, 0, 2, 3);
	nn_linear_backward(dinp, dW, NULL, dout, in, W, 0, 2, 3);
	assert_true(dinp[0] == 1 && dW[0] == 1);
}

/* ------------------------------------------------------------- embedding */

struct emb_ctx {
	int B, V, D;
	const uint32_t *ids;
};

static void emb_fwd(struct gc *g)
{
	struct emb_ctx *c = g->ctx;
	nn_embedding_forward(g->out, c->ids, X(0), c->B, c->V, c->D);
}

static void emb_ref(struct gc *g)
{
	struct emb_ctx *c = g->ctx;
	for (int b = 0; b < c->B; b++)
		for (int d = 0; d < c->D; d++)
			g->outd[b * c->D + d] = XD(0)[c->ids[b] * (size_t)c->D + d];
}

static void emb_bwd(struct gc *g)
{
	struct emb_ctx *c = g->ctx;
	emb_fwd(g);
	nn_embedding_backward(GR(0), g->R, c->ids, c->B, c->V, c->D);
}

static void test_gc_embedding(void **state)
{
	const uint32_t ids[5] = {2, 0, 2, 5, 3}; /* id 2 twice, 1 and 4 unused */
	struct emb_ctx c = {5, 6, 4, ids};
	struct gc g;

	(void)state;
	gc_init(&g, "embedding", c.B * c.D, 21);
	gc_tensor(&g, "table", c.V * c.D, -1, 1);
	g.ctx = &c;
	g.fwd = emb_fwd;
	g.ref = emb_ref;
	g.bwd = emb_bwd;
	gc_run(&g);
}

/* ------------------------------------------------------------------- bag */

enum { BAG_B = 5, BAG_L = 4, BAG_V = 7, BAG_D = 5 };

struct bag_ctx {
	enum nn_pool mode;
	const uint32_t *ids; // (B, L)
	const uint32_t *lens;
	int32_t argmax[BAG_B * BAG_D];
	float dslots[BAG_B * BAG_L * BAG_D];
};

static void bag_fwd(struct gc *g)
{
	struct bag_ctx *c = g->ctx;
	nn_bag_forward(g->out, c->argmax, c->ids, c->lens, X(0), c->mode, BAG_B, BAG_L, BAG_V,
		       BAG_D);
}

static void bag_ref(struct gc *g)
{
	struct bag_ctx *c = g->ctx;
	for (int b = 0; b < BAG_B; b++)
		for (int d = 0; d < BAG_D; d++) {
			int n = (int)c->lens[b];
			double acc = c->mode == NN_POOL_MAX ? -INFINITY : 0.0;
			for (int l = 0; l < n; l++) {
				double v = XD(0)[c->ids[b * BAG_L + l] * BAG_D + d];
				acc = c->mode == NN_POOL_MAX ? fmax(acc, v) : acc + v;
			}
			if (n == 0)
				acc = 0.0;
			else if (c->mode == NN_POOL_MEAN)
				acc /= n;
			g->outd[b * BAG_D + d] = acc;
		}
}

static void bag_bwd(struct gc *g)
{
	struct bag_ctx *c = g->ctx;
	bag_fwd(g);
	memset(c->dslots, 0, sizeof(c->dslots));
	nn_bag_backward(c->dslots, g->R, c->argmax, c->lens, c->mode, BAG_B, BAG_L, BAG_D);
	nn_bag_scatter(GR(0), c->dslots, c->ids, c->lens, BAG_B, BAG_L, BAG_V, BAG_D);
}

/*
 * MAX: table element (v, d) is at a kink when, in a bag holding row v, it
 * is within 2h of the largest channel-d value of the bag's OTHER rows (a
 * row repeated in one bag ties with itself, but moves as one: no kink).
 */
static bool bag_kink(struct gc *g, int t, int i, double h)
{
	struct bag_ctx *c = g->ctx;
	uint32_t v = (uint32_t)(i / BAG_D);
	int d = i % BAG_D;

	(void)t;
	if (c->mode != NN_POOL_MAX)
		return false;
	for (int b = 0; b < BAG_B; b++) {
		bool has = false;
		double other = -INFINITY;
		for (int l = 0; l < (int)c->lens[b]; l++) {
			uint32_t id = c->ids[b * BAG_L + l];
			if (id == v)
				has = true;
			else
				other = fmax(other, X(0)[id * BAG_D + d]);
		}
		if (has && fabs(X(0)[i] - other) < 2.0 * h)
			return true;
	}
	return false;
}

static void check_bag(enum nn_pool mode, const char *name)
{
	/* Bag 1 is empty; bag 2 repeats row 3; padding holds ids far outside
	 * the table, which must never be read (ASan would see it). */
	static const uint32_t P = 0xfffffff0u;
	static const uint32_t ids[BAG_B * BAG_L] = {1, 4, 6, P, P, P, P, P, 3, 0,
						    3, 5, 2, P, P, P, 6, 1, P, P};
	static const uint32_t lens[BAG_B] = {3, 0, 4, 1, 2};
	static struct bag_ctx c;
	struct gc g;

	memset(&c, 0, sizeof(c));
	c.mode = mode;
	c.ids = ids;
	c.lens = lens;
	gc_init(&g, name, BAG_B * BAG_D, 31 + (uint64_t)mode);
	gc_tensor(&g, "table", BAG_V * BAG_D, -1, 1);
	g.ctx = &c;
	g.fwd = bag_fwd;
	g.ref = bag_ref;
	g.bwd = bag_bwd;
	g.kink = bag_kink;
	gc_run(&g);
	/* The last backward (harness) left padding slots and the empty bag
	 * untouched; for MAX each channel has exactly one nonzero slot. */
	for (int b = 0; b < BAG_B; b++)
		for (int l = (int)lens[b]; l < BAG_L; l++)
			for (int d = 0; d < BAG_D; d++)
				assert_true(c.dslots[(b * BAG_L + l) * BAG_D + d] == 0.0f);
	if (mode == NN_POOL_MAX)
		for (int b = 0; b < BAG_B; b++)
			for (int d = 0; d < BAG_D; d++) {
				int nz = 0;
				for (int l = 0; l < BAG_L; l++)
					nz += c.dslots[(b * BAG_L + l) * BAG_D + d] != 0.0f;
				assert_int_equal(nz, lens[b] > 0 ? 1 : 0);
				assert_int_equal(c.argmax[b * BAG_D + d] < 0, lens[b] == 0);
			}
}

static void test_gc_bag(void **state)
{
	(void)state;
	check_bag(NN_POOL_SUM, "bag sum");
	check_bag(NN_POOL_MEAN, "bag mean");
	check_bag(NN_POOL_MAX, "bag max");
}

/* Empty bags give zeros in every mode; MAX ties go to the lowest slot. */
static void test_bag_edges(void **state)
{
	const float table[3 * 2] = {1, -2, 1, 5, -3, -2}; // (3, 2)
	const uint32_t ids[2 * 3] = {0, 1, 2, 9, 9, 9};   // bag 1 is all padding
	const uint32_t lens[2] = {3, 0};
	float out[2 * 2], dslots[2 * 3 * 2];
	int32_t am[2 * 2];
	const float dout[2 * 2] = {1, 1, 1, 1};

	(void)state;
	for (int m = NN_POOL_SUM; m <= NN_POOL_MAX; m++) {
		memset(out, 0x7f, sizeof(out)); /* garbage to be overwritten */
		nn_bag_forward(out, am, ids, lens, table, (enum nn_pool)m, 2, 3, 3, 2);
		assert_true(out[2] == 0.0f && out[3] == 0.0f);
		memset(dslots, 0, sizeof(dslots));
		nn_bag_backward(dslots, dout, am, lens, (enum nn_pool)m, 2, 3, 2);
		for (int i = 6; i < 12; i++)
			assert_true(dslots[i] == 0.0f);
	}
	/* MAX: channel 0 ties (1, 1) between slots 0 and 1: slot 0 wins;
	 * channel 1: max 5 at slot 1. */
	nn_bag_forward(out, am, ids, lens, table, NN_POOL_MAX, 2, 3, 3, 2);
	assert_true(out[0] == 1.0f && out[1] == 5.0f);
	assert_int_equal(am[0], 0);
	assert_int_equal(am[1], 1);
	assert_int_equal(am[2], -1);
	assert_int_equal(am[3], -1);
	/* MEAN and SUM of bag 0 by hand; argmax may be NULL for them. */
	nn_bag_forward(out, NULL, ids, lens, table, NN_POOL_MEAN, 2, 3, 3, 2);
	assert_true(fabsf(out[0] - (-1.0f / 3)) < 1e-7f && fabsf(out[1] - (1.0f / 3)) < 1e-7f);
	nn_bag_forward(out, NULL, ids, lens, table, NN_POOL_SUM, 2, 3, 3, 2);
	assert_true(out[0] == -1.0f && out[1] == 1.0f);
}

/* ------------------------------------------------------- elementwise acts */

struct act_ctx {
	int kind; /* 0 relu, 1 sigmoid, 2 tanh */
	int N;
};

static void act_fwd(struct gc *g)
{
	struct act_ctx *c = g->ctx;
	if (c->kind == 0)
		nn_relu_forward(g->out, X(0), c->N);
	else if (c->kind == 1)
		nn_sigmoid_forward(g->out, X(0), c->N);
	else
		nn_tanh_forward(g->out, X(0), c->N);
}

static void act_ref(struct gc *g)
{
	struct act_ctx *c = g->ctx;
	for (int i = 0; i < c->N; i++) {
		double x = XD(0)[i];
		g->outd[i] = c->kind == 0 ? fmax(x, 0.0) : c->kind == 1 ? sigmoid_d(x) : tanh(x);
	}
}

static void act_bwd(struct gc *g)
{
	struct act_ctx *c = g->ctx;
	act_fwd(g);
	if (c->kind == 0)
		nn_relu_backward(GR(0), g->R, g->out, c->N);
	else if (c->kind == 1)
		nn_sigmoid_backward(GR(0), g->R, g->out, c->N);
	else
		nn_tanh_backward(GR(0), g->R, g->out, c->N);
}

/* ReLU and PReLU: the kink at 0. */
static bool zero_kink(struct gc *g, int t, int i, double h)
{
	return t == 0 && fabs(X(0)[i]) < 2.0 * h;
}

static void test_gc_activations(void **state)
{
	static const char *const names[] = {"relu", "sigmoid", "tanh"};

	(void)state;
	for (int k = 0; k < 3; k++) {
		struct act_ctx c = {k, 24};
		struct gc g;
		gc_init(&g, names[k], c.N, 41 + (uint64_t)k);
		float *x = gc_tensor(&g, "in", c.N, -3, 3);
		if (k == 0) {
			x[0] = 0.0f; /* exactly at the kink: skipped, gradient 0 */
			x[1] = 0.005f;
		}
		g.ctx = &c;
		g.fwd = act_fwd;
		g.ref = act_ref;
		g.bwd = act_bwd;
		g.kink = k == 0 ? zero_kink : NULL;
		gc_run(&g);
	}
}

/* In place, extremes: sigmoid(+-100) is 1 / 0 without inf or NaN. */
static void test_activation_edges(void **state)
{
	float x[6] = {-100, -1, 0, 1, 100, -0.0f}, d[6] = {0};
	const float ones[6] = {1, 1, 1, 1, 1, 1};

	(void)state;
	nn_sigmoid_forward(x, x, 6);
	assert_true(x[0] >= 0.0f && x[0] < 1e-40f && x[4] == 1.0f && x[2] == 0.5f);
	nn_sigmoid_backward(d, ones, x, 6);
	for (int i = 0; i < 6; i++)
		assert_true(isfinite(d[i]) && d[i] >= 0.0f);
	float r[4] = {-2, 0, 3, -0.0f}, dr[4] = {0};
	nn_relu_forward(r, r, 4);
	assert_true(r[0] == 0 && r[1] == 0 && r[2] == 3 && r[3] == 0);
	nn_relu_backward(dr, ones, r, 4);
	assert_true(dr[0] == 0 && dr[1] == 0 && dr[2] == 1 && dr[3] == 0);
	float t[2] = {-50, 50};
	nn_tanh_forward(t, t, 2);
	assert_true(t[0] == -1.0f && t[1] == 1.0f);
}

/* ----------------------------------------------------------------- prelu */

struct prelu_ctx {
	int B, D;
};

static void prelu_fwd(struct gc *g)
{
	struct prelu_ctx *c = g->ctx;
	nn_prelu_forward(g->out, X(0), X(1), c->B, c->D);
}

static void prelu_ref(struct gc *g)
{
	struct prelu_ctx *c = g->ctx;
	for (int b = 0; b < c->B; b++)
		for (int d = 0; d < c->D; d++) {
			double x = XD(0)[b * c->D + d];
			g->outd[b * c->D + d] = x > 0 ? x : XD(1)[d] * x;
		}
}

static void prelu_bwd(struct gc *g)
{
	struct prelu_ctx *c = g->ctx;
	prelu_fwd(g);
	nn_prelu_backward(GR(0), GR(1), g->R, X(0), X(1), c->B, c->D);
}

static void test_gc_prelu(void **state)
{
	struct prelu_ctx c = {4, 5};
	struct gc g;

	(void)state;
	gc_init(&g, "prelu", c.B * c.D, 51);
	gc_tensor(&g, "in", c.B * c.D, -2, 2);
	gc_tensor(&g, "alpha", c.D, 0, 0.5);
	g.ctx = &c;
	g.fwd = prelu_fwd;
	g.ref = prelu_ref;
	g.bwd = prelu_bwd;
	g.kink = zero_kink;
	gc_run(&g);
}

/* ------------------------------------------------------ dice, batchnorm */

struct bn_ctx {
	int B, D;
	bool training, dice;
	float eps;
	float *mean, *rstd; // (D) cache
	float *run_mean, *run_var;
};

static void bn_fwd(struct gc *g)
{
	struct bn_ctx *c = g->ctx;
	if (c->dice)
		nn_dice_forward(g->out, c->mean, c->rstd, X(0), X(1), c->run_mean, c->run_var,
				c->eps, c->training, c->B, c->D);
	else
		nn_batchnorm_forward(g->out, c->mean, c->rstd, X(0), X(1), X(2), c->run_mean,
				     c->run_var, c->eps, c->training, c->B, c->D);
}

static void bn_ref(struct gc *g)
{
	struct bn_ctx *c = g->ctx;
	for (int d = 0; d < c->D; d++) {
		double m = 0.0, v = 0.0;
		if (c->training) {
			for (int b = 0; b < c->B; b++)
				m += XD(0)[b * c->D + d];
			m /= c->B;
			for (int b = 0; b < c->B; b++)
				v += (XD(0)[b * c->D + d] - m) * (XD(0)[b * c->D + d] - m);
			v /= c->B;
		} else {
			m = c->run_mean[d];
			v = c->run_var[d];
		}
		for (int b = 0; b < c->B; b++) {
			double x = XD(0)[b * c->D + d];
			double z = (x - m) / sqrt(v + (double)c->eps);
			if (c->dice) {
				double p = sigmoid_d(z), a = XD(1)[d];
				g->outd[b * c->D + d] = p * x + (1.0 - p) * a * x;
			} else {
				g->outd[b * c->D + d] = z * XD(1)[d] + XD(2)[d];
			}
		}
	}
}

static void bn_bwd(struct gc *g)
{
	struct bn_ctx *c = g->ctx;
	bn_fwd(g);
	if (c->dice)
		nn_dice_backward(GR(0), GR(1), g->R, X(0), c->mean, c->rstd, X(1), c->training,
				 c->B, c->D);
	else
		nn_batchnorm_backward(GR(0), GR(1), GR(2), g->R, X(0), c->mean, c->rstd, X(1),
				      c->training, c->B, c->D);
}

static void check_bn(bool dice, bool training, int B, int D, const char *name)
{
	struct bn_ctx c = {B, D, training, dice, 1e-5f, NULL, NULL, NULL, NULL};
	struct gc g;

	gc_init(&g, name, B * D, 61 + (uint64_t)D + (training ? 100u : 0u));
	c.mean = gc_alloc(&g, sizeof(float) * (size_t)D);
	c.rstd = gc_alloc(&g, sizeof(float) * (size_t)D);
	c.run_mean = gc_alloc(&g, sizeof(float) * (size_t)D);
	c.run_var = gc_alloc(&g, sizeof(float) * (size_t)D);
	for (int d = 0; d < D; d++) {
		c.run_mean[d] = (float)unif(&g.rng, -0.5, 0.5);
		c.run_var[d] = (float)unif(&g.rng, 0.2, 2.0);
	}
	/* Per-channel offsets and scales so channels differ. */
	float *x = gc_tensor(&g, "in", B * D, -1, 1);
	for (int d = 0; d < D; d++) {
		double off = unif(&g.rng, -1, 1), sc = unif(&g.rng, 0.5, 2);
		for (int b = 0; b < B; b++)
			x[b * D + d] = (float)(off + sc * x[b * D + d]);
	}
	if (dice) {
		gc_tensor(&g, "alpha", D, -0.5, 0.5);
	} else {
		gc_tensor(&g, "gamma", D, 0.5, 1.5);
		gc_tensor(&g, "beta", D, -0.5, 0.5);
	}
	g.ctx = &c;
	g.fwd = bn_fwd;
	g.ref = bn_ref;
	g.bwd = bn_bwd;
	gc_run(&g);
}

static void test_gc_dice(void **state)
{
	(void)state;
	check_bn(true, true, 5, 4, "dice train");
	check_bn(true, true, 4, 19, "dice train D>16"); /* crosses a 16-channel chunk */
	check_bn(true, false, 5, 4, "dice eval");
}

static void test_gc_batchnorm(void **state)
{
	(void)state;
	check_bn(false, true, 5, 4, "batchnorm train");
	check_bn(false, true, 3, 19, "batchnorm train D>16");
	check_bn(false, false, 4, 19, "batchnorm eval");
}

/* B == 1 in training: variance 0, no NaN; BN gives beta, Dice 0.5 x (1 + alpha). */
static void test_norm_batch_of_one(void **state)
{
	const float x[3] = {2, -1, 0.5f}, gamma[3] = {1, 2, 3}, beta[3] = {0.1f, 0.2f, 0.3f};
	const float alpha[3] = {0.2f, 0, -1}, dout[3] = {1, 1, 1};
	float out[3], mean[3], rstd[3], dx[3] = {0}, dg[3] = {0}, db[3] = {0}, da[3] = {0};

	(void)state;
	nn_batchnorm_forward(out, mean, rstd, x, gamma, beta, NULL, NULL, 1e-5f, true, 1, 3);
	for (int d = 0; d < 3; d++)
		assert_true(out[d] == beta[d]);
	nn_batchnorm_backward(dx, dg, db, dout, x, mean, rstd, gamma, true, 1, 3);
	for (int d = 0; d < 3; d++)
		assert_true(dx[d] == 0.0f && dg[d] == 0.0f && db[d] == 1.0f);
	nn_dice_forward(out, mean, rstd, x, alpha, NULL, NULL, 1e-8f, true, 1, 3);
	for (int d = 0; d < 3; d++)
		assert_true(fabsf(out[d] - 0.5f * x[d] * (1 + alpha[d])) < 1e-6f);
	memset(dx, 0, sizeof(dx));
	nn_dice_backward(dx, da, dout, x, mean, rstd, alpha, true, 1, 3);
	for (int d = 0; d < 3; d++)
		assert_true(isfinite(dx[d]) && isfinite(da[d]));
}

/* PyTorch's update: momentum 0.1, unbiased variance, by hand. */
static void test_running_stats(void **state)
{
	const float x[4 * 2] = {1, 10, 2, 10, 3, 10, 6, 10}; // (4, 2)
	const float gamma[2] = {1, 1}, beta[2] = {0, 0};
	float out[8], mean[2], rstd[2], rm[2] = {0, 1}, rv[2] = {1, 1};

	(void)state;
	nn_batchnorm_forward(out, mean, rstd, x, gamma, beta, NULL, NULL, 1e-5f, true, 4, 2);
	nn_running_stats_update(rm, rv, mean, rstd, 1e-5f, 0.1f, 4, 2);
	/* channel 0: mean 3, biased var 3.5, unbiased 14/3; channel 1: 10, 0 */
	assert_true(fabsf(rm[0] - 0.3f) < 1e-6f && fabsf(rm[1] - (0.9f + 1.0f)) < 1e-6f);
	assert_true(fabsf(rv[0] - (0.9f + 0.1f * 14.0f / 3.0f)) < 1e-5f);
	assert_true(fabsf(rv[1] - 0.9f) < 1e-6f);
}

/* ------------------------------------------------------------- layernorm */

struct ln_ctx {
	int B, D;
	float eps;
	float *mean, *rstd; // (B) cache
};

static void ln_fwd(struct gc *g)
{
	struct ln_ctx *c = g->ctx;
	nn_layernorm_forward(g->out, c->mean, c->rstd, X(0), X(1), X(2), c->eps, c->B, c->D);
}

static void ln_ref(struct gc *g)
{
	struct ln_ctx *c = g->ctx;
	for (int b = 0; b < c->B; b++) {
		const double *x = XD(0) + b * c->D;
		double m = 0.0, v = 0.0;
		for (int d = 0; d < c->D; d++)
			m += x[d];
		m /= c->D;
		for (int d = 0; d < c->D; d++)
			v += (x[d] - m) * (x[d] - m);
		v /= c->D;
		for (int d = 0; d < c->D; d++)
			g->outd[b * c->D + d] = (x[d] - m) / sqrt(v + c->eps) * XD(1)[d] + XD(2)[d];
	}
}

static void ln_bwd(struct gc *g)
{
	struct ln_ctx *c = g->ctx;
	ln_fwd(g);
	nn_layernorm_backward(GR(0), GR(1), GR(2), g->R, X(0), c->mean, c->rstd, X(1), c->B, c->D);
}

static void check_layernorm(int B, int D)
{
	struct ln_ctx c = {B, D, 1e-5f, NULL, NULL};
	struct gc g;

	gc_init(&g, B == 1 ? "layernorm B=1" : "layernorm", B * D, 71 + (uint64_t)B);
	c.mean = gc_alloc(&g, sizeof(float) * (size_t)B);
	c.rstd = gc_alloc(&g, sizeof(float) * (size_t)B);
	gc_tensor(&g, "in", B * D, -2, 2);
	gc_tensor(&g, "gamma", D, 0.5, 1.5);
	gc_tensor(&g, "beta", D, -0.5, 0.5);
	g.ctx = &c;
	g.fwd = ln_fwd;
	g.ref = ln_ref;
	g.bwd = ln_bwd;
	gc_run(&g);
}

static void test_gc_layernorm(void **state)
{
	(void)state;
	check_layernorm(4, 7);
	check_layernorm(1, 5);
}

/* A constant row has variance 0: out = beta, finite gradients. */
static void test_layernorm_constant_row(void **state)
{
	const float x[4] = {3, 3, 3, 3}, gamma[4] = {1, 2, 3, 4}, beta[4] = {1, 2, 3, 4};
	const float dout[4] = {1, -1, 2, 0.5f};
	float out[4], mean[1], rstd[1], dx[4] = {0};

	(void)state;
	nn_layernorm_forward(out, mean, rstd, x, gamma, beta, 1e-5f, 1, 4);
	for (int d = 0; d < 4; d++)
		assert_true(out[d] == beta[d]);
	nn_layernorm_backward(dx, NULL, NULL, dout, x, mean, rstd, gamma, 1, 4);
	for (int d = 0; d < 4; d++)
		assert_true(isfinite(dx[d]));
}

/* --------------------------------------------------------------- dropout */

struct drop_ctx {
	int N;
	float *mask;
};

static void drop_fwd(struct gc *g)
{
	struct drop_ctx *c = g->ctx;
	nn_dropout_forward(g->out, c->mask, X(0), 0.3f, 12345, true, c->N);
}

/* The mask is a function of the seed alone; the reference reuses it. */
static void drop_ref(struct gc *g)
{
	struct drop_ctx *c = g->ctx;
	for (int i = 0; i < c->N; i++)
		g->outd[i] = XD(0)[i] * c->mask[i];
}

static void drop_bwd(struct gc *g)
{
	struct drop_ctx *c = g->ctx;
	drop_fwd(g);
	nn_dropout_backward(GR(0), g->R, c->mask, c->N);
}

static void test_gc_dropout(void **state)
{
	struct drop_ctx c = {30, NULL};
	struct gc g;

	(void)state;
	gc_init(&g, "dropout", c.N, 81);
	c.mask = gc_alloc(&g, sizeof(float) * (size_t)c.N);
	gc_tensor(&g, "in", c.N, -1, 1);
	g.ctx = &c;
	g.fwd = drop_fwd;
	g.ref = drop_ref;
	g.bwd = drop_bwd;
	gc_run(&g);
}

/* Rate, scaling, determinism, eval identity, in place. */
static void test_dropout_mask(void **state)
{
	enum { N = 100000 };
	float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
	float *m = malloc(sizeof(float) * N), *m2 = malloc(sizeof(float) * N);
	const float p = 0.25f;
	int dropped = 0, differ = 0;

	(void)state;
	assert_non_null(x);
	assert_non_null(y);
	assert_non_null(m);
	assert_non_null(m2);
	for (int i = 0; i < N; i++)
		x[i] = (float)(i % 13) - 6.0f;
	nn_dropout_forward(y, m, x, p, 7, true, N);
	for (int i = 0; i < N; i++) {
		assert_true(m[i] == 0.0f || m[i] == 1.0f / 0.75f);
		assert_true(y[i] == x[i] * m[i]);
		dropped += m[i] == 0.0f;
	}
	/* Binomial(1e5, 0.25): sd 137; 6 sd is 822. */
	assert_true(abs(dropped - N / 4) < 822);
	nn_dropout_forward(y, m2, x, p, 7, true, N);
	assert_memory_equal(m, m2, sizeof(float) * N);
	nn_dropout_forward(y, m2, x, p, 8, true, N);
	for (int i = 0; i < N; i++)
		differ += m[i] != m2[i];
	assert_true(differ > N / 10);
	/* Eval and p == 0: identity, mask of ones (or no mask at all). */
	nn_dropout_forward(y, m, x, p, 7, false, N);
	assert_memory_equal(y, x, sizeof(float) * N);
	assert_true(m[0] == 1.0f && m[N - 1] == 1.0f);
	nn_dropout_forward(y, NULL, x, p, 7, false, N);
	nn_dropout_forward(y, m, x, 0.0f, 7, true, N);
	assert_memory_equal(y, x, sizeof(float) * N);
	/* In place, then backward without a mask is the identity. */
	memcpy(y, x, sizeof(float) * N);
	nn_dropout_forward(y, m, y, 0.5f, 3, true, N);
	for (int i = 0; i < N; i++)
		assert_true(y[i] == x[i] * m[i]);
	memset(y, 0, sizeof(float) * N);
	nn_dropout_backward(y, x, NULL, N);
	assert_memory_equal(y, x, sizeof(float) * N);
	free(m2);
	free(m);
	free(y);
	free(x);
}

/* ------------------------------------------------------------ dot, cosine */

struct pair_ctx {
	int B, D;
	bool cosine;
	float eps;
	float *na, *nb; // (B) cosine cache
};

static void pair_fwd(struct gc *g)
{
	struct pair_ctx *c = g->ctx;
	if (c->cosine)
		nn_cosine_forward(g->out, c->na, c->nb, X(0), X(1), c->eps, c->B, c->D);
	else
		nn_dot_forward(g->out, X(0), X(1), c->B, c->D);
}

static void pair_ref(struct gc *g)
{
	struct pair_ctx *c = g->ctx;
	for (int b = 0; b < c->B; b++) {
		double s = 0.0, qa = 0.0, qb = 0.0;
		for (int d = 0; d < c->D; d++) {
			double x = XD(0)[b * c->D + d], y = XD(1)[b * c->D + d];
			s += x * y;
			qa += x * x;
			qb += y * y;
		}
		g->outd[b] = c->cosine ? s / (fmax(sqrt(qa), c->eps) * fmax(sqrt(qb), c->eps)) : s;
	}
}

static void pair_bwd(struct gc *g)
{
	struct pair_ctx *c = g->ctx;
	pair_fwd(g);
	if (c->cosine)
		nn_cosine_backward(GR(0), GR(1), g->R, X(0), X(1), g->out, c->na, c->nb, c->eps,
				   c->B, c->D);
	else
		nn_dot_backward(GR(0), GR(1), g->R, X(0), X(1), c->B, c->D);
}

/* Cosine: a row whose norm is within h of eps may cross the clamp. */
static bool cos_kink(struct gc *g, int t, int i, double h)
{
	struct pair_ctx *c = g->ctx;
	int b = i / c->D;
	double q = 0.0;

	for (int d = 0; d < c->D; d++)
		q += (double)X(t)[b * c->D + d] * X(t)[b * c->D + d];
	return fabs(sqrt(q) - c->eps) < 2.0 * h;
}

static void check_pair(bool cosine, float eps, bool clamped_row, const char *name)
{
	struct pair_ctx c = {4, 6, cosine, eps, NULL, NULL};
	struct gc g;

	gc_init(&g, name, c.B, 91 + (uint64_t)cosine + (clamped_row ? 2u : 0u));
	c.na = gc_alloc(&g, sizeof(float) * (size_t)c.B);
	c.nb = gc_alloc(&g, sizeof(float) * (size_t)c.B);
	float *a = gc_tensor(&g, "a", c.B * c.D, -1, 1);
	gc_tensor(&g, "b", c.B * c.D, -1, 1);
	if (clamped_row) /* row 3 of a has norm ~1e-4 < eps = 1e-3: clamped */
		for (int d = 0; d < c.D; d++)
			a[3 * c.D + d] *= 1e-4f;
	g.ctx = &c;
	g.fwd = pair_fwd;
	g.ref = pair_ref;
	g.bwd = pair_bwd;
	g.kink = cosine ? cos_kink : NULL;
	gc_run(&g);
}

static void test_gc_dot_cosine(void **state)
{
	(void)state;
	check_pair(false, 0, false, "dot");
	check_pair(true, 1e-8f, false, "cosine");
	check_pair(true, 1e-3f, true, "cosine clamped");
}

/* A zero vector: cosine 0 and finite gradients; parallel vectors: 1. */
static void test_cosine_edges(void **state)
{
	const float a[2 * 3] = {0, 0, 0, 1, 2, 3}, b[2 * 3] = {1, 2, 3, 2, 4, 6};
	const float dout[2] = {1, 1};
	float out[2], na[2], nb[2], da[6] = {0}, db[6] = {0};

	(void)state;
	nn_cosine_forward(out, na, nb, a, b, 1e-8f, 2, 3);
	assert_true(out[0] == 0.0f && fabsf(out[1] - 1.0f) < 1e-6f);
	nn_cosine_backward(da, db, dout, a, b, out, na, nb, 1e-8f, 2, 3);
	for (int i = 0; i < 6; i++)
		assert_true(isfinite(da[i]) && isfinite(db[i]));
	/* At the maximum the gradient is (nearly) zero. */
	for (int i = 3; i < 6; i++)
		assert_true(fabsf(da[i]) < 1e-6f && fabsf(db[i]) < 1e-6f);
}

/* ------------------------------------------------------------------ bce */

struct bce_ctx {
	int B;
	const float *labels;
};

static void bce_fwd(struct gc *g)
{
	struct bce_ctx *c = g->ctx;
	g->out[0] = (float)nn_bce_logits_forward(NULL, X(0), c->labels, c->B);
}

static void bce_ref(struct gc *g)
{
	struct bce_ctx *c = g->ctx;
	double s = 0.0;
	for (int b = 0; b < c->B; b++) {
		double p = sigmoid_d(XD(0)[b]), y = c->labels[b];
		s -= y * log(p) + (1.0 - y) * log1p(-p);
	}
	g->outd[0] = s / c->B;
}

static void bce_bwd(struct gc *g)
{
	struct bce_ctx *c = g->ctx;
	nn_bce_logits_backward(GR(0), g->R[0], X(0), c->labels, c->B);
}

static void test_gc_bce(void **state)
{
	static const float labels[7] = {0, 1, 1, 0, 0.3f, 1, 0};
	struct bce_ctx c = {7, labels};
	struct gc g;

	(void)state;
	gc_init(&g, "bce logits", 1, 101);
	float *x = gc_tensor(&g, "logits", c.B, -4, 4);
	x[5] = 12.0f; /* confident and right */
	x[6] = 9.0f;  /* confident and wrong */
	g.ctx = &c;
	g.fwd = bce_fwd;
	g.ref = bce_ref;
	g.bwd = bce_bwd;
	gc_run(&g);
}

/* Extreme logits: finite, and equal to |x| when confidently wrong. */
static void test_bce_extremes(void **state)
{
	const float x[6] = {100, -100, 1e4f, -1e4f, 0, 88.8f};
	const float y[6] = {0, 1, 1, 0, 1, 1};
	float loss[6], d[6] = {0};

	(void)state;
	double mean = nn_bce_logits_forward(loss, x, y, 6);
	assert_true(fabsf(loss[0] - 100.0f) < 1e-4f && fabsf(loss[1] - 100.0f) < 1e-4f);
	assert_true(loss[2] == 0.0f && loss[3] == 0.0f);
	assert_true(fabsf(loss[4] - (float)log(2.0)) < 1e-7f);
	assert_true(loss[5] >= 0.0f && loss[5] < 1e-37f);
	assert_true(fabs(mean - (200.0 + log(2.0)) / 6.0) < 1e-5);
	nn_bce_logits_backward(d, 1.0f, x, y, 6);
	const float want[6] = {1.0f / 6, -1.0f / 6, 0, 0, -0.5f / 6, 0};
	for (int i = 0; i < 6; i++)
		assert_true(fabsf(d[i] - want[i]) < 1e-7f);
	assert_true(nn_bce_logits_forward(NULL, x, y, 0) == 0.0);
}

/* --------------------------------------------------------------- softmax */

struct sm_ctx {
	int B, N;
	const uint8_t *valid;
};

static void sm_fwd(struct gc *g)
{
	struct sm_ctx *c = g->ctx;
	nn_softmax_forward(g->out, X(0), c->valid, c->B, c->N);
}

static void sm_ref(struct gc *g)
{
	struct sm_ctx *c = g->ctx;
	for (int b = 0; b < c->B; b++) {
		const double *x = XD(0) + b * c->N;
		double *y = g->outd + b * c->N, m = -INFINITY, s = 0.0;
		for (int n = 0; n < c->N; n++)
			if (!c->valid || c->valid[b * c->N + n])
				m = fmax(m, x[n]);
		for (int n = 0; n < c->N; n++) {
			bool on = (!c->valid || c->valid[b * c->N + n]) && m > -INFINITY;
			y[n] = on ? exp(x[n] - m) : 0.0;
			s += y[n];
		}
		for (int n = 0; n < c->N; n++)
			y[n] = s > 0 ? y[n] / s : 0.0;
	}
}

static void sm_bwd(struct gc *g)
{
	struct sm_ctx *c = g->ctx;
	sm_fwd(g);
	nn_softmax_backward(GR(0), g->R, g->out, c->B, c->N);
}

static void test_gc_softmax(void **state)
{
	enum { B = 5, N = 6 };
	/* Row 0 all valid; row 1 two masked (holding NaN, never read); row 2
	 * nothing valid; row 3 valid with a -inf; row 4 every valid one -inf. */
	static const uint8_t valid[B * N] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0,
					     0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0};
	struct sm_ctx c = {B, N, valid};
	struct gc g;

	(void)state;
	gc_init(&g, "softmax masked", B * N, 111);
	float *x = gc_tensor(&g, "in", B * N, -3, 3);
	x[1 * N + 1] = NAN;
	x[1 * N + 4] = NAN;
	x[3 * N + 2] = -INFINITY;
	x[4 * N + 1] = -INFINITY;
	x[4 * N + 3] = -INFINITY;
	g.ctx = &c;
	g.fwd = sm_fwd;
	g.ref = sm_ref;
	g.bwd = sm_bwd;
	gc_run(&g);

	struct sm_ctx c1 = {1, 7, NULL};
	gc_init(&g, "softmax B=1 no mask", 7, 112);
	gc_tensor(&g, "in", 7, -3, 3);
	g.ctx = &c1;
	g.fwd = sm_fwd;
	g.ref = sm_ref;
	g.bwd = sm_bwd;
	gc_run(&g);
}

/* Rows sum to 1, huge inputs do not overflow, masked rows are zero, in place. */
static void test_softmax_edges(void **state)
{
	float x[3 * 4] = {1e4f, 1e4f, -1e4f, 0, 1, 2, 3, 4, 5, 5, 5, 5};
	const uint8_t valid[3 * 4] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
	float d[12] = {0};
	const float ones[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

	(void)state;
	nn_softmax_forward(x, x, valid, 3, 4);
	assert_true(x[0] == 0.5f && x[1] == 0.5f && x[2] == 0.0f && x[3] == 0.0f);
	assert_true(fabsf(x[4] + x[5] + x[6] + x[7] - 1.0f) < 1e-6f);
	for (int i = 8; i < 12; i++)
		assert_true(x[i] == 0.0f);
	/* A constant dout has zero gradient through a softmax. */
	nn_softmax_backward(d, ones, x, 3, 4);
	for (int i = 0; i < 12; i++)
		assert_true(fabsf(d[i]) < 1e-7f);
}

static void test_relu_propagates_nan(void **state)
{
	float in[3] = {NAN, -1.0f, 2.0f}, out[3];
	(void)state;
	nn_relu_forward(out, in, 3);
	assert_true(isnan(out[0]));
	assert_true(out[1] == 0.0f && out[2] == 2.0f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relu_propagates_nan),
		cmocka_unit_test(test_gc_linear),
		cmocka_unit_test(test_linear_layout),
		cmocka_unit_test(test_gc_embedding),
		cmocka_unit_test(test_gc_bag),
		cmocka_unit_test(test_bag_edges),
		cmocka_unit_test(test_gc_activations),
		cmocka_unit_test(test_activation_edges),
		cmocka_unit_test(test_gc_prelu),
		cmocka_unit_test(test_gc_dice),
		cmocka_unit_test(test_gc_batchnorm),
		cmocka_unit_test(test_norm_batch_of_one),
		cmocka_unit_test(test_running_stats),
		cmocka_unit_test(test_gc_layernorm),
		cmocka_unit_test(test_layernorm_constant_row),
		cmocka_unit_test(test_gc_dropout),
		cmocka_unit_test(test_dropout_mask),
		cmocka_unit_test(test_gc_dot_cosine),
		cmocka_unit_test(test_cosine_edges),
		cmocka_unit_test(test_gc_bce),
		cmocka_unit_test(test_bce_extremes),
		cmocka_unit_test(test_gc_softmax),
		cmocka_unit_test(test_softmax_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
