/*
 * test_nn_loss.c - the losses of models/nn/loss.c: in-batch softmax,
 * max-margin, sampled softmax, masked MSE.
 *
 * Each loss goes through the gradient-check harness of gradcheck.h with
 * the loss as its one output (dloss = R[0]): forward against a double
 * reference written here, backward against central differences of the
 * reference and of the float forward for every input element (and the
 * temperature), accumulation.  Edge cases follow each check.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/nn/nn.h"
#include "tests/unit/gradcheck.h"

/* ------------------------------------------------------ in-batch softmax */

struct ib_ctx {
	int B;
	const float *logq;   // (B) or NULL
	const uint32_t *ids; // (B) or NULL
	float *prob;         // (B, B) cache
};

static void ib_fwd(struct gc *g)
{
	struct ib_ctx *c = g->ctx;
	g->out[0] =
		(float)nn_inbatch_softmax_forward(c->prob, X(0), c->logq, c->ids, X(1)[0], c->B);
}

/* -log softmax of the diagonal over the unmasked entries, in double. */
static void ib_ref(struct gc *g)
{
	struct ib_ctx *c = g->ctx;
	double tau = XD(1)[0], total = 0.0;

	for (int i = 0; i < c->B; i++) {
		double z[16] = {0}, m = -INFINITY, s = 0.0;
		bool on[16] = {0};
		assert_true(c->B <= 16);
		for (int j = 0; j < c->B; j++) {
			z[j] = XD(0)[i * c->B + j] / tau - (c->logq ? c->logq[j] : 0.0);
			on[j] = !c->ids || j == i || c->ids[j] != c->ids[i];
			if (on[j])
				m = fmax(m, z[j]);
		}
		for (int j = 0; j < c->B; j++)
			if (on[j])
				s += exp(z[j] - m);
		total += m + log(s) - z[i];
	}
	g->outd[0] = total / c->B;
}

static void ib_bwd(struct gc *g)
{
	struct ib_ctx *c = g->ctx;
	ib_fwd(g);
	nn_inbatch_softmax_backward(GR(0), GR(1), g->R[0], c->prob, X(0), X(1)[0], c->B);
}

static void check_inbatch(const char *name, int B, bool logq, const uint32_t *ids, uint64_t seed)
{
	struct ib_ctx c = {B, NULL, ids, NULL};
	struct gc g;

	gc_init(&g, name, 1, seed);
	c.prob = gc_alloc(&g, sizeof(float) * (size_t)B * B);
	if (logq) {
		/* log of sampling probabilities between 1e-3 and 0.5 */
		float *lq = gc_alloc(&g, sizeof(float) * (size_t)B);
		for (int j = 0; j < B; j++)
			lq[j] = (float)log(unif(&g.rng, 1e-3, 0.5));
		c.logq = lq;
	}
	gc_tensor(&g, "scores", B * B, -2, 2);
	gc_tensor(&g, "tau", 1, 0.3, 1.2);
	g.ctx = &c;
	g.fwd = ib_fwd;
	g.ref = ib_ref;
	g.bwd = ib_bwd;
	gc_run(&g);
}

static void test_gc_inbatch_softmax(void **state)
{
	/* Rows 0, 2, 5 share id 3 and rows 1, 4 id 7: each has accidental hits. */
	static const uint32_t hits[7] = {3, 7, 3, 1, 7, 3, 9};
	static const uint32_t same[5] = {4, 4, 4, 4, 4};

	(void)state;
	check_inbatch("inbatch", 6, false, NULL, 201);
	check_inbatch("inbatch logq", 6, true, NULL, 202);
	check_inbatch("inbatch logq hits", 7, true, hits, 203);
	check_inbatch("inbatch hits", 7, false, hits, 204);
	check_inbatch("inbatch B=1", 1, true, NULL, 205);
	check_inbatch("inbatch all hits", 5, true, same, 206);
}

/* Fills dS and dtau from zero after a forward; returns the loss. */
static double ib_grads(float *prob, float *dS, float *dtau, const float *S, const float *logq,
		       const uint32_t *ids, float tau, int B)
{
	double loss = nn_inbatch_softmax_forward(prob, S, logq, ids, tau, B);

	memset(dS, 0, sizeof(float) * (size_t)B * B);
	*dtau = 0.0f;
	nn_inbatch_softmax_backward(dS, dtau, 1.0f, prob, S, tau, B);
	return loss;
}

/* B = 1 and rows whose every off-diagonal is an accidental hit: loss 0,
 * probability 1 on the diagonal, exactly zero gradients. */
static void test_inbatch_degenerate(void **state)
{
	enum { B = 4 };
	const float S[B * B] = {1, 5, -2, 3, 0.5f, -1, 4, 2, 7, 1, 0, -3, 2, 2, 2, 2};
	const float logq[B] = {-1, -2, -0.5f, -4};
	const uint32_t ids[B] = {8, 8, 8, 8};
	float prob[B * B], dS[B * B], dtau;

	(void)state;
	assert_true(ib_grads(prob, dS, &dtau, S, logq, ids, 0.2f, B) == 0.0);
	for (int i = 0; i < B; i++)
		for (int j = 0; j < B; j++) {
			assert_true(prob[i * B + j] == (i == j ? 1.0f : 0.0f));
			assert_true(dS[i * B + j] == 0.0f);
		}
	assert_true(dtau == 0.0f);

	assert_true(ib_grads(prob, dS, &dtau, S, NULL, NULL, 0.7f, 1) == 0.0);
	assert_true(prob[0] == 1.0f && dS[0] == 0.0f && dtau == 0.0f);

	/* B == 0 is a no-op; NULL gradients are skipped. */
	assert_true(nn_inbatch_softmax_forward(prob, S, NULL, NULL, 1.0f, 0) == 0.0);
	nn_inbatch_softmax_backward(NULL, NULL, 1.0f, prob, S, 1.0f, 0);
	nn_inbatch_softmax_backward(NULL, NULL, 1.0f, prob, S, 1.0f, 1);
}

/*
 * Masking by hand: with ids {1, 2, 1} row 0 loses column 2 and row 2
 * column 0, so row 0 is a softmax over {0, 1} only.  A constant logq
 * changes nothing (softmax is shift-invariant); a per-column logq is
 * subtracted after the division by tau.
 */
static void test_inbatch_by_hand(void **state)
{
	enum { B = 3 };
	const float S[B * B] = {1, 0, 3, 0.5f, 2, -1, 4, 1, 1};
	const uint32_t ids[B] = {1, 2, 1};
	const float lq_const[B] = {-2, -2, -2}, lq[B] = {-1, 0, -3};
	float prob[B * B], p2[B * B];

	(void)state;
	double l = nn_inbatch_softmax_forward(prob, S, NULL, ids, 0.5f, B);
	/* z / tau: row 0 {2, 0, -}, row 1 {1, 4, -2}, row 2 {-, 2, 2} */
	double want =
		(log(1 + exp(-2.0)) + (log(exp(1.0) + exp(4.0) + exp(-2.0)) - 4.0) + log(2.0)) /
		3.0;
	assert_true(fabs(l - want) < 1e-6);
	assert_true(prob[2] == 0.0f && prob[6] == 0.0f);
	assert_true(fabsf(prob[0] - (float)(1.0 / (1.0 + exp(-2.0)))) < 1e-6f);
	assert_true(fabsf(prob[7] - 0.5f) < 1e-6f && fabsf(prob[8] - 0.5f) < 1e-6f);

	double lc = nn_inbatch_softmax_forward(p2, S, lq_const, ids, 0.5f, B);
	assert_true(fabs(lc - l) < 1e-6);
	for (int i = 0; i < B * B; i++)
		assert_true(fabsf(p2[i] - prob[i]) < 1e-6f);

	/* logq {-1, 0, -3}, no ids: row 1 is {1 + 1, 4 - 0, -2 + 3}. */
	double lb = nn_inbatch_softmax_forward(p2, S, lq, NULL, 0.5f, B);
	double r0 = log(exp(3.0) + exp(0.0) + exp(9.0)) - 3.0;
	double r1 = log(exp(2.0) + exp(4.0) + exp(1.0)) - 4.0;
	double r2 = log(exp(9.0) + exp(2.0) + exp(5.0)) - 5.0;
	assert_true(fabs(lb - (r0 + r1 + r2) / 3.0) < 1e-5);
}

/*
 * dL/dtau = mean_i (S_ii - E_p[S_i]) / tau^2: positive when each positive
 * outscores its negatives (sharpening helps), negative when the positives
 * score lowest (flattening helps); a small step against it lowers the loss.
 */
static void test_inbatch_tau_sign(void **state)
{
	enum { B = 4 };
	float right[B * B], wrong[B * B], prob[B * B], dS[B * B], dtau;

	(void)state;
	for (int i = 0; i < B; i++)
		for (int j = 0; j < B; j++) {
			float off = 0.3f * (float)((i + 2 * j) % 3) - 0.5f;
			right[i * B + j] = i == j ? 1.0f : off;
			wrong[i * B + j] = i == j ? -1.0f : off;
		}
	for (int w = 0; w < 2; w++) {
		const float *S = w ? wrong : right;
		float tau = 0.5f;
		double l = ib_grads(prob, dS, &dtau, S, NULL, NULL, tau, B);
		assert_true(w ? dtau < 0.0f : dtau > 0.0f);
		double l2 = nn_inbatch_softmax_forward(prob, S, NULL, NULL, tau - 0.01f * dtau, B);
		assert_true(l2 < l);
	}
}

/* Scores of +-1e4 at tau = 0.05 (logits +-2e5): finite loss and gradients;
 * confidently right is loss 0, confidently wrong the logit gap. */
static void test_inbatch_huge(void **state)
{
	enum { B = 3 };
	float S[B * B], prob[B * B], dS[B * B], dtau;

	(void)state;
	for (int i = 0; i < B * B; i++)
		S[i] = i % (B + 1) == 0 ? 1e4f : -1e4f;
	double l = ib_grads(prob, dS, &dtau, S, NULL, NULL, 0.05f, B);
	assert_true(l == 0.0 && dtau == 0.0f);
	for (int i = 0; i < B * B; i++)
		assert_true(dS[i] == 0.0f);

	S[0] = -1e4f; /* row 0: the positive 4e5 below its negatives */
	S[1] = 1e4f;
	l = ib_grads(prob, dS, &dtau, S, NULL, NULL, 0.05f, B);
	assert_true(isfinite(l) && fabs(l - 4e5 / B) < 1.0);
	assert_true(isfinite(dtau));
	for (int i = 0; i < B * B; i++)
		assert_true(isfinite(dS[i]) && isfinite(prob[i]));
	/* row 0: p = {0, 1, 0}, so dS = {-1, 1, 0} / (B tau) */
	assert_true(fabsf(dS[0] + 1.0f / (B * 0.05f)) < 1e-4f);
	assert_true(fabsf(dS[1] - 1.0f / (B * 0.05f)) < 1e-4f);
}

/* ------------------------------------------------------------ max margin */

struct mm_ctx {
	int B, N;
	float margin;
};

static void mm_fwd(struct gc *g)
{
	struct mm_ctx *c = g->ctx;
	g->out[0] = (float)nn_max_margin_forward(X(0), X(1), c->margin, c->B, c->N);
}

static void mm_ref(struct gc *g)
{
	struct mm_ctx *c = g->ctx;
	double s = 0.0;

	for (int b = 0; b < c->B; b++)
		for (int k = 0; k < c->N; k++)
			s += fmax(0.0, XD(1)[b * c->N + k] - XD(0)[b] + c->margin);
	g->outd[0] = s / (c->B * c->N);
}

static void mm_bwd(struct gc *g)
{
	struct mm_ctx *c = g->ctx;
	nn_max_margin_backward(GR(0), GR(1), g->R[0], X(0), X(1), c->margin, c->B, c->N);
}

/* The hinge's kink: a pair with |neg - pos + margin| < 2h.  A positive is
 * at a kink when any of its pairs is. */
static bool mm_kink(struct gc *g, int t, int i, double h)
{
	struct mm_ctx *c = g->ctx;
	int b = t == 0 ? i : i / c->N;

	for (int k = 0; k < c->N; k++) {
		if (t == 1 && b * c->N + k != i)
			continue;
		double z = (double)X(1)[b * c->N + k] - X(0)[b] + c->margin;
		if (fabs(z) < 2.0 * h)
			return true;
	}
	return false;
}

static void check_max_margin(const char *name, int B, int N, float margin, bool at_kink,
			     uint64_t seed)
{
	struct mm_ctx c = {B, N, margin};
	struct gc g;

	gc_init(&g, name, 1, seed);
	float *pos = gc_tensor(&g, "pos", B, -1, 1);
	float *neg = gc_tensor(&g, "neg", B * N, -1, 1);
	if (at_kink) { /* exactly at the kink: 0.5 - 1.5 + 1 == 0 in float */
		pos[1] = 1.5f;
		neg[1 * N + 2] = 0.5f;
	}
	g.ctx = &c;
	g.fwd = mm_fwd;
	g.ref = mm_ref;
	g.bwd = mm_bwd;
	g.kink = mm_kink;
	gc_run(&g);
}

static void test_gc_max_margin(void **state)
{
	(void)state;
	check_max_margin("max margin", 5, 4, 1.0f, true, 301);
	check_max_margin("max margin 0.3", 6, 3, 0.3f, false, 302);
	check_max_margin("max margin B=1 N=1", 1, 1, 0.5f, false, 303);
}

/* By hand, the kink's zero gradient, and N == 0 / B == 0. */
static void test_max_margin_by_hand(void **state)
{
	const float pos[2] = {1.5f, 0.0f};
	const float neg[2 * 3] = {0.5f, 2.0f, -3.0f, 0.25f, -2.0f, 1.0f}; // (2, 3)
	float dpos[2] = {0}, dneg[6] = {0};

	(void)state;
	/* hinges: row 0 {0 (kink), 1.5, 0}, row 1 {1.25, 0, 2} */
	double l = nn_max_margin_forward(pos, neg, 1.0f, 2, 3);
	assert_true(fabs(l - 4.75 / 6.0) < 1e-7);
	nn_max_margin_backward(dpos, dneg, 6.0f, pos, neg, 1.0f, 2, 3);
	const float wpos[2] = {-1, -2}, wneg[6] = {0, 1, 0, 1, 0, 1};
	for (int i = 0; i < 2; i++)
		assert_true(dpos[i] == wpos[i]);
	for (int i = 0; i < 6; i++)
		assert_true(dneg[i] == wneg[i]);
	assert_true(nn_max_margin_forward(pos, neg, 1.0f, 2, 0) == 0.0);
	assert_true(nn_max_margin_forward(pos, neg, 1.0f, 0, 3) == 0.0);
	nn_max_margin_backward(dpos, dneg, 1.0f, pos, neg, 1.0f, 2, 0);
	assert_true(dpos[0] == -1.0f && dpos[1] == -2.0f);
	/* Huge scores: the hinge is linear, finite. */
	const float hp[1] = {-1e30f}, hn[1] = {1e30f};
	assert_true(fabs(nn_max_margin_forward(hp, hn, 1.0f, 1, 1) - 2e30) < 1e24);
}

/* ------------------------------------------------------- sampled softmax */

struct ss_ctx {
	int B, N;
};

static void ss_fwd(struct gc *g)
{
	struct ss_ctx *c = g->ctx;
	g->out[0] = (float)nn_sampled_softmax_forward(X(0), X(1), c->B, c->N);
}

static void ss_ref(struct gc *g)
{
	struct ss_ctx *c = g->ctx;
	double total = 0.0;

	for (int b = 0; b < c->B; b++) {
		double s = exp(XD(0)[b]);
		for (int k = 0; k < c->N; k++)
			s += exp(XD(1)[b * c->N + k]);
		total += log(s) - XD(0)[b];
	}
	g->outd[0] = total / c->B;
}

static void ss_bwd(struct gc *g)
{
	struct ss_ctx *c = g->ctx;
	nn_sampled_softmax_backward(GR(0), GR(1), g->R[0], X(0), X(1), c->B, c->N);
}

static void check_sampled(const char *name, int B, int N, uint64_t seed)
{
	struct ss_ctx c = {B, N};
	struct gc g;

	gc_init(&g, name, 1, seed);
	gc_tensor(&g, "pos", B, -3, 3);
	gc_tensor(&g, "neg", B * N, -3, 3);
	g.ctx = &c;
	g.fwd = ss_fwd;
	g.ref = ss_ref;
	g.bwd = ss_bwd;
	gc_run(&g);
}

static void test_gc_sampled_softmax(void **state)
{
	(void)state;
	check_sampled("sampled softmax", 5, 4, 401);
	check_sampled("sampled softmax B=1 N=1", 1, 1, 402);
	check_sampled("sampled softmax N=0", 3, 0, 403);
}

/*
 * With the other rows' positives as its negatives, tau = 1 and no logq,
 * the sampled softmax is the in-batch softmax: same loss, same gradients.
 */
static void test_sampled_is_inbatch(void **state)
{
	enum { B = 4, N = B - 1 };
	float S[B * B], pos[B], neg[B * N], prob[B * B], dS[B * B], dtau;
	float dpos[B] = {0}, dneg[B * N] = {0};

	(void)state;
	for (int i = 0; i < B * B; i++)
		S[i] = (float)sin(1.7 * i);
	for (int i = 0, n = 0; i < B; i++)
		for (int j = 0; j < B; j++) {
			if (j == i)
				pos[i] = S[i * B + j];
			else
				neg[n++] = S[i * B + j];
		}
	double l1 = ib_grads(prob, dS, &dtau, S, NULL, NULL, 1.0f, B);
	double l2 = nn_sampled_softmax_forward(pos, neg, B, N);
	assert_true(fabs(l1 - l2) < 1e-6);
	nn_sampled_softmax_backward(dpos, dneg, 1.0f, pos, neg, B, N);
	for (int i = 0, n = 0; i < B; i++)
		for (int j = 0; j < B; j++) {
			float want = j == i ? dpos[i] : dneg[n++];
			assert_true(fabsf(dS[i * B + j] - want) < 1e-6f);
		}
}

/* +-1e4 logits: finite; right is loss 0, wrong the gap; N == 0, B == 0. */
static void test_sampled_edges(void **state)
{
	const float pos[2] = {1e4f, -1e4f};
	const float neg[2 * 2] = {-1e4f, 0, 1e4f, 0};
	float dpos[2] = {0}, dneg[4] = {0};

	(void)state;
	double l = nn_sampled_softmax_forward(pos, neg, 2, 2);
	assert_true(fabs(l - 2e4 / 2) < 1e-3);
	nn_sampled_softmax_backward(dpos, dneg, 1.0f, pos, neg, 2, 2);
	const float wpos[2] = {0, -0.5f}, wneg[4] = {0, 0, 0.5f, 0};
	for (int i = 0; i < 2; i++)
		assert_true(fabsf(dpos[i] - wpos[i]) < 1e-7f);
	for (int i = 0; i < 4; i++)
		assert_true(fabsf(dneg[i] - wneg[i]) < 1e-7f);
	assert_true(nn_sampled_softmax_forward(pos, neg, 2, 0) == 0.0);
	assert_true(nn_sampled_softmax_forward(pos, neg, 0, 2) == 0.0);
	nn_sampled_softmax_backward(dpos, dneg, 1.0f, pos, neg, 2, 0);
	assert_true(dpos[0] == 0.0f && dpos[1] == -0.5f);
}

/* ------------------------------------------------------------ masked MSE */

struct mse_ctx {
	int N;
	const float *target; // (N)
	const uint8_t *mask; // (N) or NULL
};

static void mse_fwd(struct gc *g)
{
	struct mse_ctx *c = g->ctx;
	g->out[0] = (float)nn_masked_mse_forward(X(0), c->target, c->mask, c->N);
}

static void mse_ref(struct gc *g)
{
	struct mse_ctx *c = g->ctx;
	double s = 0.0;
	int n = 0;

	for (int i = 0; i < c->N; i++)
		if (!c->mask || c->mask[i]) {
			s += (XD(0)[i] - c->target[i]) * (XD(0)[i] - c->target[i]);
			n++;
		}
	g->outd[0] = n ? s / n : 0.0;
}

static void mse_bwd(struct gc *g)
{
	struct mse_ctx *c = g->ctx;
	nn_masked_mse_backward(GR(0), g->R[0], X(0), c->target, c->mask, c->N);
}

static void check_mse(const char *name, const uint8_t *mask, uint64_t seed)
{
	enum { N = 9 };
	static float target[N];
	struct mse_ctx c = {N, target, mask};
	struct gc g;

	gc_init(&g, name, 1, seed);
	float *pred = gc_tensor(&g, "pred", N, 0, 5);
	for (int i = 0; i < N; i++) {
		target[i] = (float)(1 + i % 5);
		/* unobserved: never read, so NaN must not leak (and the
		 * harness wants an exactly zero gradient there) */
		if (mask && !mask[i])
			target[i] = pred[i] = NAN;
	}
	g.ctx = &c;
	g.fwd = mse_fwd;
	g.ref = mse_ref;
	g.bwd = mse_bwd;
	gc_run(&g);
}

static void test_gc_masked_mse(void **state)
{
	static const uint8_t some[9] = {1, 0, 1, 1, 0, 0, 1, 2, 1};
	static const uint8_t none[9] = {0};

	(void)state;
	check_mse("masked mse", some, 501);
	check_mse("masked mse all", NULL, 502);
	check_mse("masked mse empty", none, 503);
}

/* By hand; nothing observed gives 0, not NaN, and leaves dpred alone. */
static void test_masked_mse_edges(void **state)
{
	const float pred[4] = {1, 2, NAN, 4}, target[4] = {2, 2, 1, 1};
	const uint8_t mask[4] = {1, 1, 0, 1}, none[4] = {0};
	float d[4] = {0.5f, 0.5f, 0.5f, 0.5f};

	(void)state;
	assert_true(fabs(nn_masked_mse_forward(pred, target, mask, 4) - 10.0 / 3.0) < 1e-12);
	nn_masked_mse_backward(d, 3.0f, pred, target, mask, 4);
	assert_true(d[0] == -1.5f && d[1] == 0.5f && d[2] == 0.5f && d[3] == 6.5f);
	assert_true(nn_masked_mse_forward(pred, target, none, 4) == 0.0);
	nn_masked_mse_backward(d, 1.0f, pred, target, none, 4);
	assert_true(d[0] == -1.5f && d[1] == 0.5f && d[2] == 0.5f && d[3] == 6.5f);
	assert_true(nn_masked_mse_forward(pred, target, NULL, 0) == 0.0);
	nn_masked_mse_backward(NULL, 1.0f, pred, target, mask, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gc_inbatch_softmax),
		cmocka_unit_test(test_inbatch_degenerate),
		cmocka_unit_test(test_inbatch_by_hand),
		cmocka_unit_test(test_inbatch_tau_sign),
		cmocka_unit_test(test_inbatch_huge),
		cmocka_unit_test(test_gc_max_margin),
		cmocka_unit_test(test_max_margin_by_hand),
		cmocka_unit_test(test_gc_sampled_softmax),
		cmocka_unit_test(test_sampled_is_inbatch),
		cmocka_unit_test(test_sampled_edges),
		cmocka_unit_test(test_gc_masked_mse),
		cmocka_unit_test(test_masked_mse_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
