/*
 * test_nn_fe.c - IntTower's layers (models/nn/fe.h): LightSE, max-sim,
 * row L2 normalisation, and the CIR term they make with the in-batch
 * softmax of nn.h.
 *
 * Each goes through the gradient-check harness of gradcheck.h (forward
 * against a double reference written here, backward against central
 * differences of the reference and of the float forward, accumulation);
 * edge cases and hand-computed values follow.  The max-sim check excludes
 * the points where a perturbation of 2h could change which key wins a max
 * (a tie, measure zero, but a random draw can come within h of one).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/nn/fe.h"
#include "models/nn/nn.h"
#include "tests/unit/gradcheck.h"

/* ---------------------------------------------------------------- LightSE */

struct se_ctx {
	int B, F, E;
	float *z, *a; // (B, F) caches
};

static void se_fwd(struct gc *g)
{
	struct se_ctx *c = g->ctx;
	nn_lightse_forward(g->out, c->z, c->a, X(0), X(1), c->B, c->F, c->E);
}

/* out[f] = in[f] (1 + softmax(z W^T)[f]), z the means over e, in double. */
static void se_ref(struct gc *g)
{
	struct se_ctx *c = g->ctx;
	int F = c->F, E = c->E;

	for (int b = 0; b < c->B; b++) {
		const double *x = XD(0) + (size_t)b * F * E;
		double z[NN_LIGHTSE_MAX_F], s[NN_LIGHTSE_MAX_F], m = -INFINITY, sum = 0.0;
		for (int f = 0; f < F; f++) {
			z[f] = 0.0;
			for (int e = 0; e < E; e++)
				z[f] += x[f * E + e] / E;
		}
		for (int f = 0; f < F; f++) {
			s[f] = 0.0;
			for (int h = 0; h < F; h++)
				s[f] += XD(1)[f * F + h] * z[h];
			m = fmax(m, s[f]);
		}
		for (int f = 0; f < F; f++)
			sum += exp(s[f] - m);
		for (int f = 0; f < F; f++)
			for (int e = 0; e < E; e++)
				g->outd[(size_t)b * F * E + f * E + e] =
					x[f * E + e] * (1.0 + exp(s[f] - m) / sum);
	}
}

static void se_bwd(struct gc *g)
{
	struct se_ctx *c = g->ctx;
	se_fwd(g);
	nn_lightse_backward(GR(0), GR(1), g->R, X(0), X(1), c->z, c->a, c->B, c->F, c->E);
}

static void check_lightse(const char *name, int B, int F, int E, uint64_t seed)
{
	struct se_ctx c = {B, F, E, NULL, NULL};
	struct gc g;

	gc_init(&g, name, B * F * E, seed);
	c.z = gc_alloc(&g, sizeof(float) * (size_t)B * F);
	c.a = gc_alloc(&g, sizeof(float) * (size_t)B * F);
	gc_tensor(&g, "in", B * F * E, -1.5, 1.5);
	gc_tensor(&g, "W", F * F, -1.5, 1.5);
	g.ctx = &c;
	g.fwd = se_fwd;
	g.ref = se_ref;
	g.bwd = se_bwd;
	gc_run(&g);
}

static void test_gc_lightse(void **state)
{
	(void)state;
	check_lightse("lightse", 3, 4, 5, 301);
	check_lightse("lightse user", 2, 6, 3, 302); /* the user tower's 6 fields */
	check_lightse("lightse item", 4, 2, 4, 303); /* the item tower's 2 */
	check_lightse("lightse E=1", 3, 5, 1, 304);
	check_lightse("lightse F=1", 2, 1, 3, 305); /* a = 1: out = 2 in, dW = 0 */
}

/* By hand: F = 2, E = 2, W = [[0, 1], [0, 0]]: z = (1, 3), s = (3, 0). */
static void test_lightse_by_hand(void **state)
{
	const float in[4] = {0, 2, 3, 3}, W[4] = {0, 1, 0, 0};
	float out[4], z[2], a[2], dx[4] = {0}, dW[4] = {0};
	const float dout[4] = {1, 1, 1, 1};
	double a0 = 1.0 / (1.0 + exp(-3.0)), a1 = 1.0 - a0;

	(void)state;
	nn_lightse_forward(out, z, a, in, W, 1, 2, 2);
	assert_true(z[0] == 1.0f && z[1] == 3.0f);
	assert_true(fabs(a[0] - a0) < 1e-7 && fabs(a[1] - a1) < 1e-7);
	assert_true(out[0] == 0.0f && fabs(out[1] - 2.0 * (1.0 + a0)) < 1e-6);
	assert_true(fabs(out[2] - 3.0 * (1.0 + a1)) < 1e-6);
	/* ga = (2, 6); gs = a (ga - <ga, a>) = a0 a1 (-4, 4); dW = gs^T z */
	nn_lightse_backward(dx, dW, dout, in, W, z, a, 1, 2, 2);
	double gs0 = -4.0 * a0 * a1;
	assert_true(fabs(dW[0] - gs0 * 1.0) < 1e-6 && fabs(dW[1] - gs0 * 3.0) < 1e-6);
	assert_true(fabs(dW[2] + gs0 * 1.0) < 1e-6 && fabs(dW[3] + gs0 * 3.0) < 1e-6);
	/* dz = gs W = (0, gs0) -> dx[1][e] gets gs0 / 2 on top of 1 + a1 */
	assert_true(fabs(dx[0] - (1.0 + a0)) < 1e-6 && fabs(dx[2] - (1.0 + a1 + gs0 / 2)) < 1e-6);
	nn_lightse_backward(NULL, NULL, dout, in, W, z, a, 1, 2, 2); /* a no-op */
}

/* ----------------------------------------------------------------- max-sim */

struct ms_ctx {
	int B, NL, NU, NV, D;
	int32_t *arg; // (NL, B, NU) cache
};

/* The NL layer pointers into tensor t (NL blocks of (B, n, D)). */
static void ms_layers(const struct gc *g, int t, int n, const float **L)
{
	const struct ms_ctx *c = g->ctx;
	for (int l = 0; l < c->NL; l++)
		L[l] = g->t[t].x + (size_t)l * c->B * n * c->D;
}

static void ms_fwd(struct gc *g)
{
	struct ms_ctx *c = g->ctx;
	const float *U[4];
	ms_layers(g, 0, c->NU, U);
	nn_maxsim_forward(g->out, c->arg, U, c->NL, X(1), c->B, c->NU, c->NV, c->D);
}

/* Index of element e of query h of row b of layer l in tensor 0. */
static size_t ms_iu(const struct ms_ctx *c, int l, int b, int h, int e)
{
	return (((size_t)l * c->B + b) * c->NU + h) * c->D + e;
}

/*
 * The winning key of query h of row b of layer l in double, with element i
 * of tensor t shifted by d (t = -1: nothing shifted).
 */
static int ms_argmax(const struct gc *g, int l, int b, int h, int t, int i, double d)
{
	const struct ms_ctx *c = g->ctx;
	int best = 0, D = c->D;
	double m = -INFINITY;

	for (int k = 0; k < c->NV; k++) {
		double s = 0.0;
		for (int e = 0; e < D; e++) {
			size_t iu = ms_iu(c, l, b, h, e), iv = ((size_t)b * c->NV + k) * D + e;
			double u = XD(0)[iu] + (t == 0 && (size_t)i == iu ? d : 0.0);
			double v = XD(1)[iv] + (t == 1 && (size_t)i == iv ? d : 0.0);
			s += u * v;
		}
		if (s > m) {
			m = s;
			best = k;
		}
	}
	return best;
}

/* sum over l, h of max over k of <U[l][b][h], V[b][k]>, in double. */
static void ms_ref(struct gc *g)
{
	struct ms_ctx *c = g->ctx;

	for (int b = 0; b < c->B; b++) {
		double total = 0.0;
		for (int l = 0; l < c->NL; l++)
			for (int h = 0; h < c->NU; h++) {
				int k = ms_argmax(g, l, b, h, -1, 0, 0.0);
				for (int e = 0; e < c->D; e++)
					total += XD(0)[ms_iu(c, l, b, h, e)] *
						 XD(1)[((size_t)b * c->NV + k) * c->D + e];
			}
		g->outd[b] = total;
	}
}

static void ms_bwd(struct gc *g)
{
	struct ms_ctx *c = g->ctx;
	const float *U[4];
	float *dU[4];

	ms_fwd(g);
	ms_layers(g, 0, c->NU, U);
	for (int l = 0; l < c->NL; l++)
		dU[l] = GR(0) + (size_t)l * c->B * c->NU * c->D;
	nn_maxsim_backward(dU, GR(1), g->R, c->arg, U, c->NL, X(1), c->B, c->NU, c->NV, c->D);
}

/* Element i of U or V is near a kink when +-2h changes a winner it takes part in. */
static bool ms_kink(struct gc *g, int t, int i, double h)
{
	struct ms_ctx *c = g->ctx;
	int per = c->NU * c->D; /* elements of one row of one layer */
	int b = t == 0 ? (i / per) % c->B : i / (c->NV * c->D);

	for (int l = 0; l < c->NL; l++)
		for (int q = 0; q < c->NU; q++) {
			/* a query element moves its own layer's row only */
			if (t == 0 && (l != i / (c->B * per) || q != (i / c->D) % c->NU))
				continue;
			int k0 = ms_argmax(g, l, b, q, -1, 0, 0.0);
			if (ms_argmax(g, l, b, q, t, i, 2 * h) != k0 ||
			    ms_argmax(g, l, b, q, t, i, -2 * h) != k0)
				return true;
		}
	return false;
}

static void check_maxsim(const char *name, int B, int NL, int NU, int NV, int D, uint64_t seed)
{
	struct ms_ctx c = {B, NL, NU, NV, D, NULL};
	struct gc g;

	assert_true(NL <= 4);
	gc_init(&g, name, B, seed);
	c.arg = gc_alloc(&g, sizeof(int32_t) * (size_t)NL * B * NU);
	gc_tensor(&g, "U", NL * B * NU * D, -1, 1);
	gc_tensor(&g, "V", B * NV * D, -1, 1);
	g.ctx = &c;
	g.fwd = ms_fwd;
	g.ref = ms_ref;
	g.bwd = ms_bwd;
	g.kink = ms_kink;
	gc_run(&g);
}

static void test_gc_maxsim(void **state)
{
	(void)state;
	check_maxsim("maxsim", 3, 1, 4, 5, 6, 401);
	check_maxsim("maxsim 3 layers", 3, 3, 4, 5, 6, 409);    /* IntTower's user layers */
	check_maxsim("maxsim tail rows", 2, 2, 7, 3, 4, 402);   /* a block of 4 and one of 3 */
	check_maxsim("maxsim two chunks", 2, 2, 5, 40, 3, 403); /* keys 0..31 and 32..39 */
	check_maxsim("maxsim 33 keys", 2, 1, 3, 33, 2, 404);
	check_maxsim("maxsim D=1", 3, 2, 2, 4, 1, 405);
	check_maxsim("maxsim one key", 2, 1, 3, 1, 5, 406); /* the max of one: a sum of dots */
	check_maxsim("maxsim 32x32", 1, 1, 8, 32, 8, 407);
	check_maxsim("maxsim 20 queries", 2, 2, 20, 9, 3, 410); /* 5 blocks of 4; 9 keys */
	check_maxsim("maxsim 37 queries", 1, 1, 37, 8, 4, 411); /* 9 blocks of 4 and 1 */
	check_maxsim("maxsim 32 queries, 32 keys", 1, 1, 32, 32, 2, 412); /* full blocks only */
}

/*
 * Forward only, at IntTower's shapes (3 layers of 32 heads of 32 against
 * 32 heads): the blocked kernel against the double reference, and the
 * winners against the reference's.
 */
static void test_maxsim_defaults(void **state)
{
	enum { B = 3, NL = 3, N = 32, D = 32 };
	struct ms_ctx c = {B, NL, N, N, D, NULL};
	struct gc g;

	(void)state;
	gc_init(&g, "maxsim defaults", B, 408);
	c.arg = gc_alloc(&g, sizeof(int32_t) * NL * B * N);
	gc_tensor(&g, "U", NL * B * N * D, -1, 1);
	gc_tensor(&g, "V", B * N * D, -1, 1);
	g.ctx = &c;
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < g.t[t].n; i++)
			g.t[t].xd[i] = g.t[t].x[i];
	ms_fwd(&g);
	ms_ref(&g);
	for (int b = 0; b < B; b++) {
		assert_true(fabs(g.out[b] - g.outd[b]) <= 1e-5 * fmax(fabs(g.outd[b]), 1.0));
		for (int l = 0; l < NL; l++)
			for (int h = 0; h < N; h++)
				assert_int_equal(c.arg[(l * B + b) * N + h],
						 ms_argmax(&g, l, b, h, -1, 0, 0.0));
	}
	gc_free(&g);
}

/* Ties go to the lowest key, across chunks too; the gradient follows the winner. */
static void test_maxsim_ties(void **state)
{
	enum { NV = 40 };
	float U[2] = {1, 0}, V[NV * 2] = {0}, out, dU[2] = {0}, dV[NV * 2] = {0};
	int32_t arg;

	(void)state;
	V[2 * 3] = 2;  /* key 3: <U, V> = 2 */
	V[2 * 35] = 2; /* key 35, another chunk: the same */
	V[2 * 36] = 1;
	nn_maxsim_forward(&out, &arg, &(const float *){U}, 1, V, 1, 1, NV, 2);
	assert_true(out == 2.0f && arg == 3);
	nn_maxsim_backward(&(float *){dU}, dV, &(float){0.5f}, &arg, &(const float *){U}, 1, V, 1,
			   1, NV, 2);
	assert_true(dU[0] == 1.0f && dU[1] == 0.0f);
	for (int i = 0; i < NV * 2; i++)
		assert_true(dV[i] == (i == 6 ? 0.5f : 0.0f));
	/* every key scores 0 against a zero query: key 0 */
	nn_maxsim_forward(&out, &arg, &(const float *){(float[2]){0, 0}}, 1, V, 1, 1, NV, 2);
	assert_true(out == 0.0f && arg == 0);
	/* the later chunk wins when strictly greater */
	V[2 * 37] = 2.5f;
	nn_maxsim_forward(&out, &arg, &(const float *){U}, 1, V, 1, 1, NV, 2);
	assert_true(out == 2.5f && arg == 37);
}

/* A non-finite key that wins no max still makes the score NaN; B = 0 is a no-op. */
static void test_maxsim_nonfinite(void **state)
{
	float U[4] = {1, 0, 0, 1}, V[6] = {1, 0, 0, 1, 0, 0}, out[2] = {7, 7};
	const float *Ul[2] = {U, U};
	int32_t arg[4];

	(void)state;
	nn_maxsim_forward(out, arg, Ul, 1, V, 1, 2, 3, 2);
	assert_true(out[0] == 2.0f && arg[0] == 0 && arg[1] == 1);
	nn_maxsim_forward(out, arg, Ul, 2, V, 1, 2, 3, 2); /* the same layer twice */
	assert_true(out[0] == 4.0f && arg[2] == 0 && arg[3] == 1);
	V[5] = NAN; /* key 2 of query 1: 0 * 0 + 1 * NaN */
	nn_maxsim_forward(out, arg, Ul, 1, V, 1, 2, 3, 2);
	assert_true(isnan(out[0]));
	V[5] = -INFINITY; /* would lose every max */
	nn_maxsim_forward(out, arg, Ul, 1, V, 1, 2, 3, 2);
	assert_true(isnan(out[0]));
	nn_maxsim_forward(out, arg, Ul, 1, V, 0, 2, 3, 2);
	assert_true(out[0] != 7.0f && out[1] == 7.0f);
	nn_maxsim_backward(NULL, NULL, out, arg, Ul, 1, V, 1, 2, 3, 2);
}

/* --------------------------------------------------------- L2 normalisation */

struct l2_ctx {
	int B, D;
	float eps;
	float *norm; // (B) cache
};

static void l2_fwd(struct gc *g)
{
	struct l2_ctx *c = g->ctx;
	nn_l2norm_forward(g->out, c->norm, X(0), c->eps, c->B, c->D);
}

static void l2_ref(struct gc *g)
{
	struct l2_ctx *c = g->ctx;

	for (int b = 0; b < c->B; b++) {
		double q = 0.0;
		for (int d = 0; d < c->D; d++)
			q += XD(0)[b * c->D + d] * XD(0)[b * c->D + d];
		double n = fmax(sqrt(q), c->eps);
		for (int d = 0; d < c->D; d++)
			g->outd[b * c->D + d] = XD(0)[b * c->D + d] / n;
	}
}

static void l2_bwd(struct gc *g)
{
	struct l2_ctx *c = g->ctx;
	l2_fwd(g);
	nn_l2norm_backward(GR(0), g->R, g->out, c->norm, c->eps, c->B, c->D);
}

/* Rows with an odd index are scaled to a norm below eps: the clamped branch. */
static void check_l2norm(const char *name, int B, int D, float eps, uint64_t seed)
{
	struct l2_ctx c = {B, D, eps, NULL};
	struct gc g;

	gc_init(&g, name, B * D, seed);
	c.norm = gc_alloc(&g, sizeof(float) * (size_t)B);
	float *x = gc_tensor(&g, "in", B * D, -1, 1);
	for (int b = 0; b < B; b++) {
		double q = 0.0;
		for (int d = 0; d < D; d++)
			q += (double)x[b * D + d] * x[b * D + d];
		/* odd rows to half of eps or less, even rows to 0.3 or more */
		float k = b % 2 ? eps / (2.0f * (float)sqrt(D)) : (float)fmax(1.0, 0.3 / sqrt(q));
		for (int d = 0; d < D; d++)
			x[b * D + d] *= k;
	}
	g.ctx = &c;
	g.fwd = l2_fwd;
	g.ref = l2_ref;
	g.bwd = l2_bwd;
	gc_run(&g);
}

static void test_gc_l2norm(void **state)
{
	(void)state;
	check_l2norm("l2norm", 4, 5, 0.05f, 501);
	check_l2norm("l2norm D=1", 3, 1, 0.05f, 502);
	check_l2norm("l2norm wide", 2, 40, 0.05f, 503);
}

/* In place; a zero row stays zero with the gradient dout / eps. */
static void test_l2norm_edges(void **state)
{
	float x[4] = {3, 4, 0, 0}, norm[2], dx[4] = {0};
	const float dout[4] = {1, 0, 2, -1};

	(void)state;
	nn_l2norm_forward(x, norm, x, 1e-12f, 2, 2);
	assert_true(norm[0] == 5.0f && norm[1] == 0.0f);
	assert_true(fabsf(x[0] - 0.6f) < 1e-7f && fabsf(x[1] - 0.8f) < 1e-7f);
	assert_true(x[2] == 0.0f && x[3] == 0.0f);
	nn_l2norm_backward(dx, dout, x, norm, 1e-12f, 2, 2);
	/* (dout - y <y, dout>) / |x| = ((1, 0) - 0.6 (0.6, 0.8)) / 5 */
	assert_true(fabsf(dx[0] - 0.64f / 5) < 1e-7f && fabsf(dx[1] + 0.48f / 5) < 1e-7f);
	assert_true(dx[2] == 2.0f / 1e-12f && dx[3] == -1.0f / 1e-12f);
	nn_l2norm_backward(NULL, dout, x, norm, 1e-12f, 2, 2);
}

/* ------------------------------------------------------------------- CIR */

/*
 * IntTower's contrastive interaction regularisation done right: over P
 * positive (user, item) pairs, with u, v their L2-normalised vectors,
 *   loss = mean_i -log( e^(<u_i, v_i> / tau) / sum_j e^(<u_i, v_j> / tau) )
 * (the diagonal as targets; the official code indexes the columns by the
 * labels instead).  Composed as the model composes it: nn_l2norm on each
 * side, S = Un Vn^T by nn_sgemm, nn_inbatch_softmax; checked against the
 * formula in double.
 */
struct cir_ctx {
	int P, D;
	float tau;
	float *un, *vn, *nu, *nv, *S, *prob, *dS, *dun, *dvn;
};

static void cir_fwd(struct gc *g)
{
	struct cir_ctx *c = g->ctx;
	nn_l2norm_forward(c->un, c->nu, X(0), 1e-12f, c->P, c->D);
	nn_l2norm_forward(c->vn, c->nv, X(1), 1e-12f, c->P, c->D);
	nn_sgemm(false, true, c->P, c->P, c->D, 1.0f, c->un, c->D, c->vn, c->D, 0.0f, c->S, c->P);
	g->out[0] = (float)nn_inbatch_softmax_forward(c->prob, c->S, NULL, NULL, c->tau, c->P);
}

static void cir_ref(struct gc *g)
{
	struct cir_ctx *c = g->ctx;
	int P = c->P, D = c->D;
	double total = 0.0;

	for (int i = 0; i < P; i++) {
		double z[16], m = -INFINITY, s = 0.0;
		assert_true(P <= 16);
		for (int j = 0; j < P; j++) {
			double uv = 0.0, uu = 0.0, vv = 0.0;
			for (int d = 0; d < D; d++) {
				double u = XD(0)[i * D + d], v = XD(1)[j * D + d];
				uv += u * v;
				uu += u * u;
				vv += v * v;
			}
			z[j] = uv / (sqrt(uu) * sqrt(vv)) / c->tau;
			m = fmax(m, z[j]);
		}
		for (int j = 0; j < P; j++)
			s += exp(z[j] - m);
		total += m + log(s) - z[i];
	}
	g->outd[0] = total / P;
}

static void cir_bwd(struct gc *g)
{
	struct cir_ctx *c = g->ctx;
	int P = c->P, D = c->D;

	cir_fwd(g);
	memset(c->dS, 0, sizeof(float) * (size_t)P * P);
	nn_inbatch_softmax_backward(c->dS, NULL, g->R[0], c->prob, c->S, c->tau, P);
	/* S = Un Vn^T: dUn = dS Vn, dVn = dS^T Un */
	nn_sgemm(false, false, P, D, P, 1.0f, c->dS, P, c->vn, D, 0.0f, c->dun, D);
	nn_sgemm(true, false, P, D, P, 1.0f, c->dS, P, c->un, D, 0.0f, c->dvn, D);
	nn_l2norm_backward(GR(0), c->dun, c->un, c->nu, 1e-12f, P, D);
	nn_l2norm_backward(GR(1), c->dvn, c->vn, c->nv, 1e-12f, P, D);
}

static void check_cir(const char *name, int P, int D, float tau, uint64_t seed)
{
	struct cir_ctx c = {P, D, tau, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	struct gc g;
	size_t pd = sizeof(float) * (size_t)P * D, pp = sizeof(float) * (size_t)P * P;

	gc_init(&g, name, 1, seed);
	c.un = gc_alloc(&g, pd);
	c.vn = gc_alloc(&g, pd);
	c.dun = gc_alloc(&g, pd);
	c.dvn = gc_alloc(&g, pd);
	c.nu = gc_alloc(&g, sizeof(float) * (size_t)P);
	c.nv = gc_alloc(&g, sizeof(float) * (size_t)P);
	c.S = gc_alloc(&g, pp);
	c.prob = gc_alloc(&g, pp);
	c.dS = gc_alloc(&g, pp);
	gc_tensor(&g, "U", P * D, -1, 1);
	gc_tensor(&g, "V", P * D, -1, 1);
	g.ctx = &c;
	g.fwd = cir_fwd;
	g.ref = cir_ref;
	g.bwd = cir_bwd;
	gc_run(&g);
}

static void test_gc_cir(void **state)
{
	(void)state;
	check_cir("cir", 5, 6, 0.5f, 601);
	check_cir("cir tau 1", 4, 8, 1.0f, 602);
	check_cir("cir tau 0.07", 3, 4, 0.07f, 603); /* the official temperature */
	check_cir("cir P=1", 1, 3, 0.07f, 604);      /* one positive: loss 0 */
}

/*
 * The diagonal is the target: pairs whose vectors match each other and no
 * other row give a loss near 0; the same pairs matched off the diagonal
 * (row i's user with row i+1's item) a large one.
 */
static void test_cir_targets(void **state)
{
	enum { P = 3, D = 3 };
	float U[P * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, V[P * D], shifted[P * D];
	float un[P * D], vn[P * D], nu[P], nv[P], S[P * P], prob[P * P];

	(void)state;
	memcpy(V, U, sizeof(V));
	for (int i = 0; i < P; i++)
		memcpy(shifted + i * D, U + ((i + 1) % P) * D, D * sizeof(float));
	nn_l2norm_forward(un, nu, U, 1e-12f, P, D);
	nn_l2norm_forward(vn, nv, V, 1e-12f, P, D);
	nn_sgemm(false, true, P, P, D, 1.0f, un, D, vn, D, 0.0f, S, P);
	double right = nn_inbatch_softmax_forward(prob, S, NULL, NULL, 0.07f, P);
	nn_l2norm_forward(vn, nv, shifted, 1e-12f, P, D);
	nn_sgemm(false, true, P, P, D, 1.0f, un, D, vn, D, 0.0f, S, P);
	double wrong = nn_inbatch_softmax_forward(prob, S, NULL, NULL, 0.07f, P);
	assert_true(right < 1e-5);
	assert_true(fabs(wrong - 1.0 / 0.07) < 1e-3); /* -log e^0 / e^(1/tau): 1/tau */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gc_lightse),  cmocka_unit_test(test_lightse_by_hand),
		cmocka_unit_test(test_gc_maxsim),   cmocka_unit_test(test_maxsim_defaults),
		cmocka_unit_test(test_maxsim_ties), cmocka_unit_test(test_maxsim_nonfinite),
		cmocka_unit_test(test_gc_l2norm),   cmocka_unit_test(test_l2norm_edges),
		cmocka_unit_test(test_gc_cir),      cmocka_unit_test(test_cir_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
