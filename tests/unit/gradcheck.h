/*
 * gradcheck.h - the central finite-difference gradient-check harness ("gc")
 * shared by the layer tests (test_nn.c, test_nn_loss.c).  Test code only:
 * everything is static inline, so a test that includes it and leaves a
 * helper unused still compiles warning-free.
 *
 * A test describes a layer by a struct gc: gc_init() with the number of
 * outputs, one gc_tensor() per differentiable input or parameter (at most
 * GC_MAXT), then fwd (float layer), ref (double reference), bwd (float
 * forward and backward with dout = R), an optional kink predicate and a
 * ctx for everything else; gc_run() checks it and frees it.  X(k), XD(k)
 * and GR(k) name tensor k's float input, double input and gradient inside
 * those callbacks.  NN_GC_VERBOSE=1 in the environment prints the worst
 * error of each check.
 *
 * The check works on a scalar objective L = sum_i out_i R_i with a fixed
 * random R in [-1, 1], so dout = R, and checks, for every input and every
 * parameter element (the "worst seen" figures are test_nn.c's layers):
 *
 *  1. forward: the float layer against a double-precision reference
 *     implementation written independently in the test, element by element,
 *     |f - d| / max(|d|, 1) <= GC_TOL_FWD = 1e-5 (a few float ulps of sums
 *     of <= 20 terms; worst seen 3.4e-7).
 *  2. backward vs the reference: the analytic float gradient against
 *     (Lref(x + h) - Lref(x - h)) / 2h of the DOUBLE reference, h = 1e-6.
 *     Truncation (h^2 f''' / 6 ~ 1e-11) and rounding (1e-16 |L| / h ~ 1e-9)
 *     of this numeric gradient are negligible, so the error measured is the
 *     float backward's own rounding: a few ulps of the terms it sums, worst
 *     seen 8.5e-6 (BatchNorm, where dx is a small difference of O(rstd)
 *     terms).  GC_TOL_REF = 1e-4 leaves a >10x margin and is still three
 *     orders below the smallest error any deliberately broken backward
 *     produced (0.15: softmax without its dot term).
 *  3. backward vs the float layer itself (ggml / llm.c style): the same
 *     central difference on the float forward, L summed in double, step
 *     h = 5e-3 measured as fl(x + h) - fl(x - h).  Two errors compete:
 *     rounding of the float outputs (~6e-8 |out| each, <= 76 outputs of
 *     magnitude <= 3) over 2h is ~1e-4 typically, ~1e-3 if all add up;
 *     truncation h^2 f''' / 6 = 4e-6 f''' reaches ~4e-4 for the
 *     batch-statistics layers at B = 3..5.  h = 5e-3 balances the two
 *     (h = 1e-2 gave 3.8e-3 on Dice, truncation; h = 2e-3 gave 3.2e-3 on
 *     BatchNorm, rounding).  Worst seen 9e-4; GC_TOL_FLT = 1e-2.  This
 *     check does not depend on the reference code at all.
 *
 * Errors are normalised: |a - n| / max(|a|, |n|, GC_TINY).  GC_TINY = 1e-2
 * (gradients here are O(0.1..10)) makes near-zero gradients compare
 * absolutely, at 1e-6 for check 2, instead of dividing noise by noise.
 * Kinks (ReLU/PReLU at 0, a MAX-pool winner within 2h of the runner-up, a
 * cosine norm crossing its clamp) are excluded explicitly by a per-layer
 * predicate; the harness counts them.  Non-finite inputs (softmax -inf,
 * masked NaN) must get an exactly zero gradient.
 *
 * Accumulation: backward from a random starting gradient G0 must give
 * G0 + g, and two backward calls from zero 2 g (to 1e-5 relative: only the
 * rounding of the additions differs).
 */
#ifndef HR_TEST_GRADCHECK_H
#define HR_TEST_GRADCHECK_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"

#define GC_TOL_FWD 1e-5
#define GC_TOL_REF 1e-4
#define GC_TOL_FLT 1e-2
#define GC_TOL_ACC 1e-5
#define GC_TINY 1e-2
#define GC_H_REF 1e-6
#define GC_H_FLT 5e-3

/* ------------------------------------------------------------- harness */

enum { GC_MAXT = 4, GC_MAXMEM = 64 };

struct gc_tensor {
	const char *name;
	float *x;   // (n) what the float layer reads
	double *xd; // (n) what the double reference reads
	float *g;   // (n) analytic gradient (backward accumulates here)
	int n;
};

struct gc;
typedef void (*gc_fn)(struct gc *);
/* True when element i of tensor t is within h of a kink of the layer. */
typedef bool (*gc_kink_fn)(struct gc *, int t, int i, double h);

struct gc {
	const char *name;
	struct gc_tensor t[GC_MAXT];
	int nt;
	int nout;
	float *out;   // (nout) float forward output
	double *outd; // (nout) reference output
	float *R;     // (nout) dout
	gc_fn fwd;    // float forward from t[].x into out
	gc_fn ref;    // double reference from t[].xd into outd
	gc_fn bwd;    // float forward, then backward with dout = R into t[].g
	gc_kink_fn kink;
	void *ctx;
	struct rng rng;
	void *mem[GC_MAXMEM];
	int nmem;
};

static inline void *gc_alloc(struct gc *g, size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);

	assert_non_null(p);
	assert_true(g->nmem < GC_MAXMEM);
	g->mem[g->nmem++] = p;
	return p;
}

static inline double unif(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_uniform(r);
}

static inline void gc_init(struct gc *g, const char *name, int nout, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->name = name;
	g->nout = nout;
	rng_seed(&g->rng, seed, 0);
	g->out = gc_alloc(g, sizeof(float) * (size_t)nout);
	g->outd = gc_alloc(g, sizeof(double) * (size_t)nout);
	g->R = gc_alloc(g, sizeof(float) * (size_t)nout);
	for (int i = 0; i < nout; i++)
		g->R[i] = (float)unif(&g->rng, -1.0, 1.0);
}

/* Adds a differentiable tensor of n elements uniform in [lo, hi). */
static inline float *gc_tensor(struct gc *g, const char *name, int n, double lo, double hi)
{
	struct gc_tensor *t = &g->t[g->nt++];

	assert_true(g->nt <= GC_MAXT);
	t->name = name;
	t->n = n;
	t->x = gc_alloc(g, sizeof(float) * (size_t)n);
	t->xd = gc_alloc(g, sizeof(double) * (size_t)n);
	t->g = gc_alloc(g, sizeof(float) * (size_t)n);
	for (int i = 0; i < n; i++)
		t->x[i] = (float)unif(&g->rng, lo, hi);
	return t->x;
}

static inline void gc_free(struct gc *g)
{
	while (g->nmem > 0)
		free(g->mem[--g->nmem]);
}

static inline double gc_objective(const struct gc *g, bool ref)
{
	double L = 0.0;

	for (int i = 0; i < g->nout; i++)
		L += (ref ? g->outd[i] : (double)g->out[i]) * g->R[i];
	return L;
}

static inline double gc_err(double a, double n)
{
	return fabs(a - n) / fmax(fmax(fabs(a), fabs(n)), GC_TINY);
}

static inline bool gc_verbose(void)
{
	const char *v = getenv("NN_GC_VERBOSE");
	return v && *v && strcmp(v, "0") != 0;
}

static inline void gc_zero_grads(struct gc *g)
{
	for (int t = 0; t < g->nt; t++)
		memset(g->t[t].g, 0, sizeof(float) * (size_t)g->t[t].n);
}

static inline void gc_check_forward(struct gc *g)
{
	double worst = 0.0;
	int wi = 0;

	g->fwd(g);
	g->ref(g);
	for (int i = 0; i < g->nout; i++) {
		if (!isfinite(g->out[i]))
			fail_msg("%s: out[%d] = %g is not finite", g->name, i, g->out[i]);
		double e = fabs(g->out[i] - g->outd[i]) / fmax(fabs(g->outd[i]), 1.0);
		if (e > worst) {
			worst = e;
			wi = i;
		}
	}
	if (worst > GC_TOL_FWD)
		fail_msg("%s: forward out[%d] = %.9g, reference %.9g", g->name, wi, g->out[wi],
			 g->outd[wi]);
	if (gc_verbose())
		print_message("gc %-22s forward  %.2e\n", g->name, worst);
}

/*
 * Accumulation: from G0 the backward gives G0 + g1; twice from zero, 2 g1.
 * Errors are scaled by 1 + |G0| + |g1|: only the rounding of the sums
 * differs, a missing or overwriting accumulation is off by O(|G0|).
 */
static inline void gc_check_accumulate(struct gc *g, float *const *g1)
{
	for (int pass = 0; pass < 2; pass++) {
		float *g0[GC_MAXT];
		for (int t = 0; t < g->nt; t++) {
			g0[t] = gc_alloc(g, sizeof(float) * (size_t)g->t[t].n);
			for (int i = 0; i < g->t[t].n; i++)
				g0[t][i] = pass == 0 ? (float)unif(&g->rng, -1.0, 1.0) : 0.0f;
			memcpy(g->t[t].g, g0[t], sizeof(float) * (size_t)g->t[t].n);
		}
		g->bwd(g);
		if (pass == 1)
			g->bwd(g);
		for (int t = 0; t < g->nt; t++)
			for (int i = 0; i < g->t[t].n; i++) {
				double want = pass == 0 ? (double)g0[t][i] + g1[t][i] :
							  2.0 * g1[t][i];
				double scale = 1.0 + fabs(g0[t][i]) + 2.0 * fabs(g1[t][i]);
				if (fabs(g->t[t].g[i] - want) > GC_TOL_ACC * scale)
					fail_msg("%s: d%s[%d] %s: %.9g, want %.9g", g->name,
						 g->t[t].name, i,
						 pass == 0 ? "does not accumulate onto G0" :
							     "after two backward calls",
						 g->t[t].g[i], want);
			}
	}
}

/* Central differences of the reference (ref) or float (!ref) objective. */
static inline void gc_check_fd(struct gc *g, float *const *ga, bool ref)
{
	double h = ref ? GC_H_REF : GC_H_FLT, tol = ref ? GC_TOL_REF : GC_TOL_FLT;
	double worst = 0.0;
	int skipped = 0;

	for (int t = 0; t < g->nt; t++) {
		struct gc_tensor *T = &g->t[t];
		for (int i = 0; i < T->n; i++) {
			double num;
			if (!isfinite(T->x[i])) {
				if (ga[t][i] != 0.0f)
					fail_msg("%s: d%s[%d] = %g at a non-finite input, want 0",
						 g->name, T->name, i, ga[t][i]);
				continue;
			}
			if (g->kink && g->kink(g, t, i, h)) {
				skipped++;
				continue;
			}
			if (ref) {
				double v = T->xd[i];
				T->xd[i] = v + h;
				g->ref(g);
				double Lp = gc_objective(g, true);
				T->xd[i] = v - h;
				g->ref(g);
				double Lm = gc_objective(g, true);
				T->xd[i] = v;
				num = (Lp - Lm) / (2.0 * h);
			} else {
				float v = T->x[i];
				float xp = (float)(v + h), xm = (float)(v - h);
				T->x[i] = xp;
				g->fwd(g);
				double Lp = gc_objective(g, false);
				T->x[i] = xm;
				g->fwd(g);
				double Lm = gc_objective(g, false);
				T->x[i] = v;
				num = (Lp - Lm) / ((double)xp - (double)xm);
			}
			double e = gc_err(ga[t][i], num);
			if (!(e <= tol))
				fail_msg("%s: d%s[%d]: backward %.9g, %s central difference %.9g "
					 "(normalised error %.3g > %.3g)",
					 g->name, T->name, i, ga[t][i], ref ? "reference" : "float",
					 num, e, tol);
			if (e > worst)
				worst = e;
		}
	}
	if (gc_verbose())
		print_message("gc %-22s %s %.2e (%d kinks skipped)\n", g->name,
			      ref ? "vs ref  " : "vs float", worst, skipped);
}

/* Runs every check of the harness on a set-up gc, then frees it. */
static inline void gc_run(struct gc *g)
{
	float *g1[GC_MAXT];

	for (int t = 0; t < g->nt; t++)
		for (int i = 0; i < g->t[t].n; i++)
			g->t[t].xd[i] = g->t[t].x[i];
	gc_check_forward(g);
	gc_zero_grads(g);
	g->bwd(g);
	for (int t = 0; t < g->nt; t++) {
		g1[t] = gc_alloc(g, sizeof(float) * (size_t)g->t[t].n);
		memcpy(g1[t], g->t[t].g, sizeof(float) * (size_t)g->t[t].n);
	}
	gc_check_accumulate(g, g1);
	gc_check_fd(g, g1, true);
	gc_check_fd(g, g1, false);
	gc_free(g);
}

#define X(k) (g->t[k].x)
#define XD(k) (g->t[k].xd)
#define GR(k) (g->t[k].g)

static inline double sigmoid_d(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

#endif
