/*
 * test_nn_mhsa.c - the multi-head self-attention layer
 * (models/nn/mhsa.h): central finite-difference checks against an
 * independent double-precision reference (harness and tolerances:
 * gradcheck.h) over every switch (W_res or identity residual or none,
 * scaled or not, LayerNorm, heads, masked keys, dropout, row or lane-layout
 * input) and batch sizes that take whole 16-example chunks, a partial one
 * or both, and the edge cases: masked keys are exactly ignored, a fully masked example keeps its
 * residual, eval ignores the dropout rate, the dropout draws are one
 * nn_dropout_forward over all attention weights.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/nn/mhsa.h"
#include "models/nn/nn.h"
#include "tests/unit/gradcheck.h"

#define SEED 0xa77e2u

struct at_ctx {
	struct nn_mhsa a;
	int B;
	const uint8_t *valid; /* (B, F) or NULL */
	bool training;
	float *cache;
	float *mask;   /* (B, H, F, F): the dropout mask the reference applies, or NULL */
	double *y;     /* (B F, A): the reference's Y before the ReLU */
	double *work;  /* reference scratch: (B F, P A) projections */
	double *ykink; /* (2, B F, A): Y at x - 2h and x + 2h (kink test) */
};

static void at_fwd(struct gc *g)
{
	struct at_ctx *c = g->ctx;
	bool ln = c->a.layer_norm;

	nn_mhsa_forward(g->out, c->cache, X(0), X(1), ln ? X(2) : NULL, ln ? X(3) : NULL, c->valid,
			SEED, c->training, &c->a, c->B);
}

/* Input feature k of token i of example b: rows (B F, D) or lane layout (D, F, B). */
static int in_at(const struct at_ctx *c, int b, int i, int k)
{
	int F = c->a.F;

	return c->a.in_rows ? (b * F + i) * c->a.D + k : (k * F + i) * c->B + b;
}

/* Output feature o of token i of example b: lane layout (A, F, B). */
static int out_at(const struct at_ctx *c, int b, int i, int o)
{
	return (o * c->a.F + i) * c->B + b;
}

/* The layer by the formula in mhsa.h, in double, one (b, h, i) at a
 * time; y (B F, A) and the projections (B F, P A) in rows. */
static void at_ref(struct gc *g)
{
	struct at_ctx *c = g->ctx;
	const struct nn_mhsa *a = &c->a;
	int F = a->F, D = a->D, A = a->A, H = a->H, d = A / H, P = nn_mhsa_proj(a);
	double s = a->scale ? 1.0 / sqrt((double)d) : 1.0;
	double *qkv = c->work;

	for (int b = 0; b < c->B; b++)
		for (int i = 0; i < F; i++)
			for (int o = 0; o < P * A; o++) {
				double acc = 0.0;
				for (int k = 0; k < D; k++)
					acc += XD(0)[in_at(c, b, i, k)] * XD(1)[o * D + k];
				qkv[(b * F + i) * P * A + o] = acc;
			}
	for (int b = 0; b < c->B; b++)
		for (int i = 0; i < F; i++) {
			int r = b * F + i;
			for (int o = 0; o < A; o++) {
				double res = 0.0;
				if (a->residual)
					res = P == 4 ? qkv[r * P * A + 3 * A + o] :
						       XD(0)[in_at(c, b, i, o)];
				c->y[r * A + o] = res;
			}
			for (int h = 0; h < H; h++) {
				double sc[64], m = -INFINITY, sum = 0.0;
				for (int j = 0; j < F; j++) {
					double acc = 0.0;
					for (int e = 0; e < d; e++)
						acc += qkv[r * P * A + h * d + e] *
						       qkv[(b * F + j) * P * A + A + h * d + e];
					bool on = !c->valid || c->valid[b * F + j];
					sc[j] = on ? s * acc : -INFINITY;
					m = fmax(m, sc[j]);
				}
				for (int j = 0; j < F; j++) {
					sc[j] = m == -INFINITY ? 0.0 : exp(sc[j] - m);
					sum += sc[j];
				}
				for (int j = 0; j < F; j++) {
					double w = sum > 0 ? sc[j] / sum : 0.0;
					if (c->mask) /* element ((h F + i) F + j) B + b */
						w *= c->mask[((h * F + i) * F + j) * c->B + b];
					for (int e = 0; e < d; e++)
						c->y[r * A + h * d + e] +=
							w *
							qkv[(b * F + j) * P * A + 2 * A + h * d + e];
				}
			}
			if (a->layer_norm) {
				double mu = 0.0, var = 0.0;
				for (int o = 0; o < A; o++)
					mu += c->y[r * A + o];
				mu /= A;
				for (int o = 0; o < A; o++)
					var += (c->y[r * A + o] - mu) * (c->y[r * A + o] - mu);
				var /= A;
				for (int o = 0; o < A; o++)
					c->y[r * A + o] = (c->y[r * A + o] - mu) /
								  sqrt(var + NN_MHSA_LN_EPS) *
								  XD(2)[o] +
							  XD(3)[o];
			}
			for (int o = 0; o < A; o++)
				g->outd[out_at(c, b, i, o)] = fmax(c->y[r * A + o], 0.0);
		}
}

static void at_bwd(struct gc *g)
{
	struct at_ctx *c = g->ctx;
	bool ln = c->a.layer_norm;

	at_fwd(g);
	nn_mhsa_backward(GR(0), GR(1), ln ? GR(2) : NULL, ln ? GR(3) : NULL, g->R, c->cache, g->out,
			 X(0), X(1), ln ? X(2) : NULL, &c->a, c->B);
}

/*
 * A kink: some Y before the ReLU changes sign when element i of tensor t
 * moves by +-2h (the reference recomputed at both ends), so the central
 * difference straddles ReLU's corner.
 */
static bool at_kink(struct gc *g, int t, int i, double h)
{
	struct at_ctx *c = g->ctx;
	size_t n = (size_t)c->B * c->a.F * c->a.A;
	double keep = XD(t)[i];
	bool kink = false;

	for (int side = 0; side < 2; side++) {
		XD(t)[i] = keep + (side ? 2 * h : -2 * h);
		at_ref(g);
		memcpy(c->ykink + side * n, c->y, n * sizeof(double));
	}
	XD(t)[i] = keep;
	at_ref(g);
	for (size_t e = 0; e < n && !kink; e++)
		kink = (c->ykink[e] > 0) != (c->ykink[n + e] > 0);
	return kink;
}

static void check_attention(const char *name, struct nn_mhsa a, int B, const uint8_t *valid,
			    bool training, uint64_t seed)
{
	struct at_ctx c = {.a = a, .B = B, .valid = valid, .training = training};
	int N = B * a.F, P = nn_mhsa_proj(&a);
	size_t W = (size_t)B * a.H * a.F * a.F;
	struct gc g;

	gc_init(&g, name, N * a.A, seed);
	c.cache = gc_alloc(&g, sizeof(float) * nn_mhsa_cache_floats(&a, B));
	c.y = gc_alloc(&g, sizeof(double) * (size_t)N * a.A);
	c.ykink = gc_alloc(&g, sizeof(double) * 2 * (size_t)N * a.A);
	c.work = gc_alloc(&g, sizeof(double) * (size_t)N * P * a.A);
	if (a.dropout > 0 && training) {
		/* mhsa.h: the draws of one nn_dropout_forward over the (B, H, F, F) weights */
		float *ones = gc_alloc(&g, sizeof(float) * W),
		      *tmp = gc_alloc(&g, sizeof(float) * W);
		c.mask = gc_alloc(&g, sizeof(float) * W);
		for (size_t e = 0; e < W; e++)
			ones[e] = 1.0f;
		nn_dropout_forward(tmp, c.mask, ones, a.dropout, SEED, true, (int)W);
	}
	gc_tensor(&g, "in", N * a.D, -1, 1);
	gc_tensor(&g, "W", P * a.A * a.D, -0.8, 0.8);
	if (a.layer_norm) {
		gc_tensor(&g, "gamma", a.A, 0.5, 1.5);
		gc_tensor(&g, "beta", a.A, -0.5, 0.5);
	}
	g.ctx = &c;
	g.fwd = at_fwd;
	g.ref = at_ref;
	g.bwd = at_bwd;
	g.kink = at_kink;
	gc_run(&g);
}

static void test_gc_attention(void **state)
{
	/* F = 4 tokens: example 0 masks token 2, example 1 masks every token,
	 * example 2 masks none */
	static const uint8_t valid[3 * 4] = {1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1};
	uint8_t valid19[19 * 3];
	(void)state;

	for (int e = 0; e < 19 * 3; e++) /* 2 of 3 masked here and there, all of example 17 */
		valid19[e] = e / 3 == 17 ? 0 : (e * 7) % 5 != 0;

	/* AutoInt's first layer: D != A, W_res, two heads */
	/* {F, D, A, H, residual, scale, layer_norm, dropout, in_rows} */
	/* AutoInt's first layer: row input, D != A (W_res), two heads */
	check_attention("mhsa W_res 2 heads",
			(struct nn_mhsa){5, 6, 4, 2, true, false, false, 0, true}, 3, NULL, true,
			201);
	check_attention("mhsa W_res scaled ln",
			(struct nn_mhsa){5, 6, 4, 2, true, true, true, 0, true}, 3, NULL, true,
			202);
	/* later layers: lane-layout input, D == A, the identity residual */
	check_attention("mhsa identity residual",
			(struct nn_mhsa){4, 4, 4, 1, true, false, false, 0, false}, 3, NULL, true,
			203);
	check_attention("mhsa identity residual rows",
			(struct nn_mhsa){4, 4, 4, 2, true, true, false, 0, true}, 3, NULL, true,
			211);
	check_attention("mhsa no residual ln",
			(struct nn_mhsa){4, 3, 6, 3, false, true, true, 0, false}, 2, NULL, true,
			204);
	check_attention("mhsa masked", (struct nn_mhsa){4, 4, 4, 2, true, true, false, 0, false}, 3,
			valid, true, 205);
	check_attention("mhsa masked W_res ln",
			(struct nn_mhsa){4, 5, 4, 1, true, false, true, 0, true}, 3, valid, true,
			206);
	check_attention("mhsa dropout", (struct nn_mhsa){5, 4, 4, 2, true, true, false, 0.3f, true},
			3, NULL, true, 207);
	check_attention("mhsa dropout masked ln",
			(struct nn_mhsa){4, 6, 4, 2, true, false, true, 0.4f, false}, 3, valid,
			true, 208);
	check_attention("mhsa dropout eval",
			(struct nn_mhsa){4, 6, 4, 2, true, false, false, 0.5f, true}, 2, NULL,
			false, 209);
	check_attention("mhsa one token", (struct nn_mhsa){1, 3, 4, 2, true, true, false, 0, false},
			2, NULL, true, 210);
	/* whole 16-example chunks (32), and one with a partial chunk after it (19) */
	check_attention("mhsa B=32 rows W_res ln",
			(struct nn_mhsa){3, 4, 4, 2, true, true, true, 0, true}, 32, NULL, true,
			212);
	check_attention("mhsa B=40 lanes ln", /* the LayerNorm's scratch outgrows the kernels' */
			(struct nn_mhsa){3, 2, 4, 2, false, false, true, 0, false}, 40, NULL, true,
			215);
	check_attention("mhsa B=19 lanes dropout",
			(struct nn_mhsa){3, 2, 2, 2, true, false, false, 0.3f, false}, 19, NULL,
			true, 213);
	check_attention("mhsa B=19 rows masked",
			(struct nn_mhsa){3, 3, 2, 1, true, true, false, 0, true}, 19, valid19, true,
			214);
}

/* Fills n floats with a fixed pseudo-random pattern in [-1, 1). */
static void fill(float *x, size_t n, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed, 0);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(2.0 * rng_uniform(&r) - 1.0);
}

/*
 * A masked key has weight exactly 0 (-inf before the softmax): changing the
 * masked token's input changes only its own output row (its own query and
 * residual), not the others'.  An example with no valid key keeps only its
 * residual.
 */
static void test_attention_mask(void **state)
{
	enum { B = 2, F = 4, D = 4, A = 4 };
	struct nn_mhsa a = {F, D, A, 2, true, false, false, 0, true};
	const uint8_t valid[B * F] = {1, 0, 1, 1, 0, 0, 0, 0};
	float in[B * F * D], W[3 * A * D], out1[B * F * A], out2[B * F * A];
	float *cache = malloc(sizeof(float) * nn_mhsa_cache_floats(&a, B));

	(void)state;
	assert_non_null(cache);
	fill(in, B * F * D, 1);
	fill(W, 3 * A * D, 2);
	nn_mhsa_forward(out1, cache, in, W, NULL, NULL, valid, 0, true, &a, B);
	for (int k = 0; k < D; k++)
		in[1 * D + k] += 0.7f; /* example 0, token 1: masked */
	nn_mhsa_forward(out2, cache, in, W, NULL, NULL, valid, 0, true, &a, B);
	/* out (A, F, B): example 0's other tokens are unchanged */
	for (int i = 0; i < F; i++)
		for (int o = 0; o < A; o++)
			if (i != 1)
				assert_true(out1[(o * F + i) * B] == out2[(o * F + i) * B]);
	/* example 1: Y = the input (identity residual), out = relu(in) */
	for (int i = 0; i < F; i++)
		for (int o = 0; o < A; o++) {
			float x = in[(F + i) * D + o];
			assert_true(out2[(o * F + i) * B + 1] == (x > 0 ? x : 0.0f));
		}
	free(cache);
}

/* With training off the rate is ignored: the output of rate 0. */
static void test_attention_dropout_eval(void **state)
{
	enum { B = 3, F = 5, D = 6, A = 4 };
	struct nn_mhsa a0 = {F, D, A, 2, true, true, false, 0, true};
	struct nn_mhsa a5 = {F, D, A, 2, true, true, false, 0.5f, true};
	float in[B * F * D], W[4 * A * D], out0[B * F * A], out5[B * F * A], outt[B * F * A];
	float *cache = malloc(sizeof(float) * nn_mhsa_cache_floats(&a5, B));

	(void)state;
	assert_non_null(cache);
	fill(in, B * F * D, 3);
	fill(W, 4 * A * D, 4);
	nn_mhsa_forward(out0, cache, in, W, NULL, NULL, NULL, 7, true, &a0, B);
	nn_mhsa_forward(out5, cache, in, W, NULL, NULL, NULL, 7, false, &a5, B);
	assert_memory_equal(out0, out5, sizeof(out0));
	nn_mhsa_forward(outt, cache, in, W, NULL, NULL, NULL, 7, true, &a5, B);
	assert_memory_not_equal(out0, outt, sizeof(out0));
	free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gc_attention),
		cmocka_unit_test(test_attention_mask),
		cmocka_unit_test(test_attention_dropout_eval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
