/*
 * nn.h - neural-network layer kernels: forward/backward pairs over explicit,
 * caller-owned float32 buffers, with one GEMM call site over OpenBLAS.
 *
 * Conventions (docs: shared/STYLE.md guidelines 6-8; modelled on llm.c):
 *
 *   nn_x_forward(out, cache..., in..., params..., dims)
 *   nn_x_backward(dinp, dparams..., dout, cache/in/params..., dims)
 *
 * - Row-major everywhere.  "(B, D)" means B rows of D contiguous floats;
 *   every buffer's shape is given next to its parameter.
 * - Backward ACCUMULATES: it adds (+=) into dinp and dparams and never
 *   zeroes them; zeroing gradients is the caller's separate memset.  So a
 *   tensor used twice (shared weights, a residual) just gets both backward
 *   calls.  Any gradient pointer may be NULL to skip that gradient (an input
 *   that needs none, a frozen parameter); the work for it is then not done.
 * - Layers never allocate and never fail: bad dimensions or an id outside
 *   the table are programmer errors and abort through HR_ASSERT.  Caches
 *   ("what the forward keeps for the backward") are caller buffers whose
 *   shape is documented; no layer needs other scratch.
 * - Buffers must not overlap unless a function says so (several elementwise
 *   forwards allow out == in).
 * - Dimensions are int (as cblas); each must be >= 0; B == 0 is a no-op.
 *
 * Thread-safety: every function here is a pure function of its arguments
 * (no globals, no hidden state, no RNG state: dropout takes a seed), so
 * they may run concurrently from many threads on distinct outputs.  Reads
 * of shared parameters racing with Hogwild writes are the trainer's
 * documented business, not these kernels'.  nn_sgemm is as thread-safe as
 * OpenBLAS; call nn_blas_single_thread() (blas.h) before workers start.
 *
 * Sparse embeddings: a lookup's gradient is the matching row of dout, so
 * the embedding layers expose per-lookup gradient rows and let the caller
 * apply the sparse (Hogwild) update to the touched table rows; the _scatter
 * / _backward helpers that accumulate into a dense (V, D) gradient exist for
 * tests and for small tables.
 */
#ifndef HR_NN_H
#define HR_NN_H

#include <stdbool.h>
#include <stdint.h>

/* ------------------------------------------------------------------ GEMM */

/*
 * C = alpha * op(A) * op(B) + beta * C, row-major; the one call site of
 * cblas_sgemm in hogrec.  On AVX-512 CPUs the models' tall-skinny shapes
 * (alpha 1, beta 0 or 1, N a multiple of 16, a small B or a small C:
 * gemm.c's sg_takes) go to hand-written register tiles instead, three
 * times OpenBLAS's rate on them; sums run in another order there (results
 * differ by rounding).
 *
 *   ta, tb   false: op(X) = X; true: op(X) = X^T
 *   M, N, K  op(A) is (M, K), op(B) is (K, N), C is (M, N)
 *   A        stored (M, K) with row stride lda >= K when !ta,
 *            stored (K, M) with row stride lda >= M when ta
 *   B        stored (K, N) with ldb >= N when !tb, (N, K) with ldb >= K when tb
 *   C        (M, N) with row stride ldc >= N
 *
 * As in BLAS, beta == 0 means C is written without being read (NaN in C
 * does not propagate).  K == 0 gives C = beta * C.  Leading dimensions of
 * 0 are accepted when the matrix is empty.
 */
void nn_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
	      const float *B, int ldb, float beta, float *C, int ldc);

/*
 * C = A B + beta C for row-major A (M, K), B (K, N), C (M, N), beta 0 or
 * 1: the small products of a recurrence's steps (M <= a batch, K and N a
 * few hundred), where OpenBLAS spends more time packing its operands and
 * zeroing C than multiplying.  nn_sgemm's register tiles, whatever the
 * size of B, when N is a multiple of 16 and the CPU has AVX-512; nn_sgemm
 * otherwise.  Same shape rules as nn_sgemm.
 */
void nn_sgemm_small(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
		    float beta, float *C, int ldc);

/*
 * Solves A x = b for a symmetric positive definite A (n, n; both
 * triangles filled, row or column major alike) and nrhs right-hand sides,
 * b (nrhs, n) one per row, which on return hold the solutions; A is
 * overwritten by its Cholesky factor.  LAPACK's sposv from OpenBLAS.  0,
 * or HR_EFORMAT when A is not positive definite.
 */
int nn_spd_solve(int n, int nrhs, float *A, float *b);

/*
 * The same contract as nn_sgemm, computed by a naive triple loop with
 * double accumulation, rounded to float once per element.  Slow; for tests
 * and for verifying the OpenBLAS kernel at start-up.
 */
void nn_sgemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
		  const float *B, int ldb, float beta, float *C, int ldc);

/* ---------------------------------------------------------------- Linear */

/*
 * out = in W^T + b   (PyTorch nn.Linear layout: W is (out, in)).
 *
 *   out  (B, OC)        written
 *   in   (B, IC)
 *   W    (OC, IC)       row o holds the weights of output unit o
 *   b    (OC) or NULL   no bias when NULL
 *
 * (IC/OC, not I/O: <complex.h>, pulled in by cblas.h, defines I.)
 * Cache: nothing beyond in (the backward needs in and W).
 */
void nn_linear_forward(float *out, const float *in, const float *W, const float *b, int B, int IC,
		       int OC);

/*
 *   dinp (B, IC)  += dout W         (NULL: skip)
 *   dW   (OC, IC) += dout^T in      (NULL: skip)
 *   db   (OC)     += sum_b dout[b]  (NULL: skip, e.g. when there is no bias)
 *   dout (B, OC), in (B, IC), W (OC, IC) as in the forward
 */
void nn_linear_backward(float *dinp, float *dW, float *db, const float *dout, const float *in,
			const float *W, int B, int IC, int OC);

/* ------------------------------------------------------------- Embedding */

/*
 * out[b] = table[ids[b]].
 *
 *   out    (B, D)  written
 *   ids    (B)     each < V (asserted)
 *   table  (V, D)
 *
 * Backward: the gradient for table row ids[b] is dout[b] (B, D), exactly;
 * there is nothing to compute, so the caller applies dout rows as the
 * sparse update of rows ids[].  nn_embedding_backward() is the dense form.
 */
void nn_embedding_forward(float *out, const uint32_t *ids, const float *table, int B, int V, int D);

/*
 * Dense form of the embedding backward (tests, small tables):
 * dtable[ids[b]] += dout[b] for every b; repeated ids accumulate.
 *
 *   dtable (V, D), dout (B, D), ids (B)
 */
void nn_embedding_backward(float *dtable, const float *dout, const uint32_t *ids, int B, int V,
			   int D);

/* Pooling of a bag of ids (multi-hot field, history sequence). */
enum nn_pool {
	NN_POOL_SUM = 0,
	NN_POOL_MEAN = 1,
	NN_POOL_MAX = 2,
};

/*
 * out[b] = pool over l < lens[b] of table[ids[b][l]]   (per channel d).
 *
 *   out     (B, D)     written; an empty bag (lens[b] == 0) gives zeros in
 *                      every mode (MEAN does not divide by zero)
 *   argmax  (B, D)     MAX cache: the slot l whose row won channel d, -1 for
 *                      an empty bag; ties go to the lowest l.  May be NULL
 *                      unless mode == NN_POOL_MAX
 *   ids     (B, L)     padded; only ids[b][l] with l < lens[b] are read
 *                      (padding may hold anything), each < V (asserted)
 *   lens    (B)        each <= L (asserted)
 *   table   (V, D)
 */
void nn_bag_forward(float *out, int32_t *argmax, const uint32_t *ids, const uint32_t *lens,
		    const float *table, enum nn_pool mode, int B, int L, int V, int D);

/*
 * Per-slot gradients: dslots[b][l] += d out[b] / d table[ids[b][l]] . dout[b].
 *
 *   dslots  (B, L, D)  accumulated; slots l >= lens[b] (padding) and, for
 *                      MAX, channels a slot did not win are left untouched
 *                      (so they stay zero if the caller zeroed them)
 *   dout    (B, D)
 *   argmax  (B, D)     the forward's MAX cache; NULL for SUM/MEAN
 *   lens    (B)
 *
 * SUM: dout[b] to every used slot.  MEAN: dout[b] / lens[b].  MAX: channel
 * d of dout[b] to the winning slot only.  The sparse update is then: for
 * each b and l < lens[b], apply dslots[b][l] to table row ids[b][l] (a row
 * that appears in several slots gets each of them).
 */
void nn_bag_backward(float *dslots, const float *dout, const int32_t *argmax, const uint32_t *lens,
		     enum nn_pool mode, int B, int L, int D);

/*
 * Dense scatter of per-slot gradients (tests, small tables):
 * dtable[ids[b][l]] += dslots[b][l] for l < lens[b].
 *
 *   dtable (V, D), dslots (B, L, D), ids (B, L), lens (B)
 */
void nn_bag_scatter(float *dtable, const float *dslots, const uint32_t *ids, const uint32_t *lens,
		    int B, int L, int V, int D);

/* ----------------------------------------------------------- Activations */

/*
 * out = max(in, 0), N elements; out may equal in.  NaN propagates.
 * Backward: dinp += dout * (out > 0), using the forward OUTPUT so that the
 * in-place forward still has what it needs.  The gradient at 0 is 0.
 */
void nn_relu_forward(float *out, const float *in, int N);
void nn_relu_backward(float *dinp, const float *dout, const float *out, int N);

/*
 * PReLU with one learnable slope per channel:
 * out[b][d] = in > 0 ? in : alpha[d] * in.
 *
 *   out (B, D), in (B, D), alpha (D)
 *
 * A single shared slope is the case D = 1 with the tensor viewed as
 * (B * D, 1).  Backward (needs in, not out):
 *   dinp   (B, D) += dout * (in > 0 ? 1 : alpha[d])
 *   dalpha (D)    += sum_b dout * (in > 0 ? 0 : in)
 */
void nn_prelu_forward(float *out, const float *in, const float *alpha, int B, int D);
void nn_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in,
		       const float *alpha, int B, int D);

/*
 * out = 1 / (1 + exp(-in)), N elements, evaluated without overflow; out
 * may equal in.  Backward: dinp += dout * out * (1 - out).
 */
void nn_sigmoid_forward(float *out, const float *in, int N);
void nn_sigmoid_backward(float *dinp, const float *dout, const float *out, int N);

/* out = tanh(in); out may equal in.  Backward: dinp += dout * (1 - out^2). */
void nn_tanh_forward(float *out, const float *in, int N);
void nn_tanh_backward(float *dinp, const float *dout, const float *out, int N);

/*
 * Dice (DIN, Zhou et al. 2018), per channel d:
 *   z   = (x - mean[d]) * rstd[d]
 *   p   = sigmoid(z)
 *   out = p * x + (1 - p) * alpha[d] * x
 *
 *   out       (B, D)  written
 *   mean      (D)     cache, written: the batch mean (training) or run_mean
 *   rstd      (D)     cache, written: 1 / sqrt(var + eps), var the biased
 *                     batch variance (training) or run_var
 *   in        (B, D)  (a (B, T, H) tensor is passed as (B * T, H))
 *   alpha     (D)     learnable
 *   run_mean  (D)     read only when !training (may be NULL when training)
 *   run_var   (D)     read only when !training (may be NULL when training)
 *
 * The normalisation has no affine part (as in the paper and DeepCTR's TF
 * version).  The forward never updates running statistics: call
 * nn_running_stats_update() with the cache, once, where that is safe.
 */
void nn_dice_forward(float *out, float *mean, float *rstd, const float *in, const float *alpha,
		     const float *run_mean, const float *run_var, float eps, bool training, int B,
		     int D);

/*
 *   dinp   (B, D) += d/d in, through the batch statistics when training
 *                    (statistics are constants when !training)
 *   dalpha (D)    += sum_b dout * (1 - p) * x
 *   dout (B, D); in, mean, rstd, alpha and training as in the forward
 */
void nn_dice_backward(float *dinp, float *dalpha, const float *dout, const float *in,
		      const float *mean, const float *rstd, const float *alpha, bool training,
		      int B, int D);

/*
 * Inverted dropout.  Training: each element is dropped with probability p
 * (0 <= p < 1, asserted) and kept ones are scaled by 1 / (1 - p), so eval
 * is the identity.  The draw for element i is a hash of (seed, i): the same
 * seed gives the same mask on any thread; derive a fresh seed per step and
 * per layer (e.g. rng_next() of the worker's rng).  p is resolved to a
 * multiple of 2^-24.
 *
 *   out   (N)          written; may equal in
 *   mask  (N)          cache, written: 0 or 1 / (1 - p); all 1 when
 *                      !training or p == 0.  May be NULL when !training
 *   in    (N)
 *
 * Backward: dinp += dout * mask (mask NULL: dinp += dout).
 */
void nn_dropout_forward(float *out, float *mask, const float *in, float p, uint64_t seed,
			bool training, int N);
void nn_dropout_backward(float *dinp, const float *dout, const float *mask, int N);

/*
 * Softmax over each row of N, with an optional mask.
 *
 *   out    (B, N)         written; masked positions are exactly 0
 *   in     (B, N)         values at masked positions are not read; -inf at
 *                         an unmasked position is allowed (weight 0)
 *   valid  (B, N) or NULL nonzero = position takes part; NULL = all do
 *
 * A row with no valid position, or whose valid inputs are all -inf, gives
 * all zeros (never NaN).  out may equal in.
 *
 * Backward: dinp[b] += out[b] * (dout[b] - <dout[b], out[b]>), which is 0
 * at masked positions and for all-zero rows, so it needs no mask.
 *   dinp (B, N), dout (B, N), out (B, N)
 */
void nn_softmax_forward(float *out, const float *in, const uint8_t *valid, int B, int N);
void nn_softmax_backward(float *dinp, const float *dout, const float *out, int B, int N);

/* --------------------------------------------------------- Normalisation */

/*
 * LayerNorm over each row:
 * out[b] = (in[b] - mean[b]) * rstd[b] * gamma + beta,
 * rstd[b] = 1 / sqrt(var[b] + eps) with the biased variance.  D > 0.
 *
 *   out    (B, D)  written
 *   mean   (B)     cache, written
 *   rstd   (B)     cache, written
 *   in     (B, D)
 *   gamma  (D), beta (D)
 *
 * Backward:
 *   dinp   (B, D) += d/d in (through mean and rstd)
 *   dgamma (D)    += sum_b dout * xhat
 *   dbeta  (D)    += sum_b dout
 */
void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
			  const float *beta, float eps, int B, int D);
void nn_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
			   const float *in, const float *mean, const float *rstd,
			   const float *gamma, int B, int D);

/*
 * BatchNorm over the batch, per channel (BatchNorm1d):
 * out[b][d] = (in[b][d] - mean[d]) * rstd[d] * gamma[d] + beta[d].
 *
 *   out       (B, D)  written
 *   mean      (D)     cache, written: batch mean, or run_mean when !training
 *   rstd      (D)     cache, written: 1 / sqrt(var + eps), var the biased
 *                     batch variance, or run_var when !training
 *   in        (B, D)
 *   gamma (D), beta (D)
 *   run_mean, run_var (D)  read only when !training (may be NULL otherwise)
 *
 * B == 1 in training gives var = 0 and out = beta (no NaN), as PyTorch
 * would refuse to do.  The forward never writes running statistics (see
 * nn_running_stats_update).
 *
 * Backward (training: through the batch statistics; else plain affine):
 *   dinp (B, D), dgamma (D), dbeta (D) accumulated
 */
void nn_batchnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
			  const float *beta, const float *run_mean, const float *run_var, float eps,
			  bool training, int B, int D);
void nn_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
			   const float *in, const float *mean, const float *rstd,
			   const float *gamma, bool training, int B, int D);

/*
 * PyTorch's running-statistics update from a training forward's cache:
 *   run_mean = (1 - momentum) * run_mean + momentum * mean
 *   run_var  = (1 - momentum) * run_var  + momentum * var * B / (B - 1)
 * (unbiased variance; B == 1 uses var as is), var = 1 / rstd^2 - eps.
 *
 *   run_mean, run_var (D) updated in place; mean, rstd (D) the cache of
 *   nn_batchnorm_forward / nn_dice_forward with training; B its batch size
 *
 * This is the one place a normalisation layer writes shared state: with
 * Hogwild workers, call it from one thread or accept racy averages.
 */
void nn_running_stats_update(float *run_mean, float *run_var, const float *mean, const float *rstd,
			     float eps, float momentum, int B, int D);

/* --------------------------------------------------------------- Scoring */

/*
 * <a, b> over n floats, summed in 16 independent lanes (vectorised without
 * -ffast-math; the order differs from a sequential sum by rounding only).
 * Inline, so that a multiversioned caller (common/simd.h) gets it at its
 * width.
 */
static inline float nn_dotf(const float *a, const float *b, int n)
{
	float acc[16] = {0};
	int d = 0;

	for (; d + 16 <= n; d += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += a[d + j] * b[d + j];
	for (int j = 0; d < n; d++, j++)
		acc[j] += a[d] * b[d];
	for (int j = 8; j > 0; j /= 2)
		for (int k = 0; k < j; k++)
			acc[k] += acc[k + j];
	return acc[0];
}

/*
 * out[b] = <a[b], b[b]>.
 *   out (B), a (B, D), b (B, D)
 * Backward: da[b] += dout[b] * b[b];  db[b] += dout[b] * a[b]
 */
void nn_dot_forward(float *out, const float *a, const float *b, int B, int D);
void nn_dot_backward(float *da, float *db, const float *dout, const float *a, const float *b, int B,
		     int D);

/*
 * Cosine similarity with each norm clamped below at eps (as PyTorch's
 * cosine_similarity):  out[b] = <a, b> / (max(|a|, eps) * max(|b|, eps)).
 *
 *   out  (B)     written
 *   na   (B)     cache, written: |a[b]| (unclamped)
 *   nb   (B)     cache, written: |b[b]| (unclamped)
 *   a, b (B, D)
 *
 * Backward: da, db (B, D) accumulated; where a norm was clamped it is a
 * constant (the gradient then has no radial term).  Needs the forward's
 * out, na, nb and the same eps.
 */
void nn_cosine_forward(float *out, float *na, float *nb, const float *a, const float *b, float eps,
		       int B, int D);
void nn_cosine_backward(float *da, float *db, const float *dout, const float *a, const float *b,
			const float *out, const float *na, const float *nb, float eps, int B,
			int D);

/* ------------------------------------------------------------------ Loss */

/*
 * Binary cross-entropy on logits, numerically stable for any finite x:
 *   loss[b] = max(x, 0) - x * y + log1p(exp(-|x|))
 *
 *   losses  (B) or NULL   per-row losses, written when not NULL
 *   logits  (B)
 *   labels  (B)           in [0, 1] (soft labels allowed)
 *
 * Returns the mean loss (summed in double); 0 when B == 0.
 */
double nn_bce_logits_forward(float *losses, const float *logits, const float *labels, int B);

/*
 * Gradient of dloss * MEAN loss:
 *   dlogits[b] += dloss * (sigmoid(x[b]) - y[b]) / B
 * The 1/B is the mean's; pass dloss = 1 for a plain mean-loss objective
 * (or a loss weight / the upstream gradient of the scalar).
 *
 *   dlogits (B) accumulated; logits (B), labels (B)
 */
void nn_bce_logits_backward(float *dlogits, float dloss, const float *logits, const float *labels,
			    int B);

/*
 * In-batch softmax (sampled softmax with the batch's own candidates as
 * negatives; Yi et al. 2019; LibRecommender TwoTower loss "softmax", also
 * the InfoNCE of contrastive and self-supervised terms).  Row i is query i,
 * column j candidate j, and candidate i is query i's positive:
 *
 *   z[i][j] = S[i][j] / tau - logq[j]
 *   loss    = mean_i -log( e^z[i][i] / sum_{j unmasked} e^z[i][j] )
 *
 * where j != i is masked (left out of the sum) when ids[j] == ids[i]: an
 * "accidental hit", the positive itself appearing again as a negative.
 * The diagonal is never masked, so every row has at least one term.
 *
 *   prob    (B, B)        cache, written: the row softmax of z, exactly 0 at
 *                         masked positions; read by the backward
 *   scores  (B, B)        S, row-major (e.g. user tower x item tower^T)
 *   logq    (B) or NULL   log of the sampling probability of candidate j
 *                         (sampling-bias correction; clamp the probability
 *                         away from 0 before the log, as LibRecommender
 *                         clips it to 1e-8); NULL: no correction
 *   ids     (B) or NULL   candidate ids for accidental-hit removal; NULL:
 *                         nothing is masked
 *   tau     temperature, > 0 and finite (asserted).  A learned temperature
 *           (LibRecommender: a scalar initialised to 1 when temperature <= 0)
 *           is passed as its current value; the model keeps it positive
 *
 * Stable for any finite z (max subtraction); B == 1 gives loss 0.
 * Returns the mean loss (summed in double); 0 when B == 0.
 */
double nn_inbatch_softmax_forward(float *prob, const float *scores, const float *logq,
				  const uint32_t *ids, float tau, int B);

/*
 * Gradient of dloss * the mean loss of nn_inbatch_softmax_forward, with
 * g[i][j] = (prob[i][j] - [i == j]) / B:
 *
 *   dscores (B, B) or NULL  += dloss * g[i][j] / tau
 *   dtau    (1) or NULL     += dloss * sum_ij g[i][j] * (-S[i][j] / tau^2)
 *   prob    (B, B)          the forward's cache (it carries logq and the
 *                           mask: masked positions have g = 0, so neither
 *                           logq nor ids is needed here)
 *   scores  (B, B), tau     as in the forward
 *
 * dloss as in nn_bce_logits_backward (1 for a plain mean-loss objective).
 * logq is a constant: it has no gradient.
 */
void nn_inbatch_softmax_backward(float *dscores, float *dtau, float dloss, const float *prob,
				 const float *scores, float tau, int B);

/*
 * Max-margin (hinge) loss over sampled negatives (LibRecommender loss
 * "max_margin"): each positive is paired with each of its N negatives,
 *
 *   loss = 1 / (B N) * sum_{b, k} max(0, neg[b][k] - pos[b] + margin)
 *
 *   pos  (B)      score of row b's positive
 *   neg  (B, N)   scores of row b's N sampled negatives
 *   margin        any finite value (LibRecommender's default is 1)
 *
 * Returns the mean over the B * N pairs (summed in double); 0 when
 * B * N == 0.
 */
double nn_max_margin_forward(const float *pos, const float *neg, float margin, int B, int N);

/*
 * Gradient of dloss * the mean hinge loss; a pair is active when
 * h = neg[b][k] - pos[b] + margin > 0 (strictly: at h == 0 the gradient is
 * 0, as ReLU's), and then, with c = dloss / (B N):
 *
 *   dpos (B) or NULL     += -c * (number of active pairs of row b)
 *   dneg (B, N) or NULL  += c where the pair is active, += 0 elsewhere
 *   pos (B), neg (B, N), margin as in the forward
 */
void nn_max_margin_backward(float *dpos, float *dneg, float dloss, const float *pos,
			    const float *neg, float margin, int B, int N);

/*
 * Softmax cross-entropy of each positive against its own N sampled
 * negatives:
 *
 *   loss = mean_b -log( e^pos[b] / (e^pos[b] + sum_k e^neg[b][k]) )
 *
 *   pos  (B)      logit of row b's positive
 *   neg  (B, N)   logits of row b's N sampled negatives (N == 0: loss 0)
 *
 * Stable for any finite logits (max subtraction).  Returns the mean loss
 * (summed in double); 0 when B == 0.  No cache: the backward recomputes
 * the row softmax from pos and neg.
 *
 * (LibRecommender's "cross_entropy" with sampled negatives is NOT this: it
 * is pointwise sigmoid BCE with label 1 for the positive and 0 for each
 * negative, one mean over all B (1 + N) rows: nn_bce_logits_forward.)
 */
double nn_sampled_softmax_forward(const float *pos, const float *neg, int B, int N);

/*
 * Gradient of dloss * the mean loss, with p the row softmax over
 * (pos[b], neg[b][0..N-1]) and c = dloss / B:
 *
 *   dpos (B) or NULL     += c * (p_pos - 1)   (= -c * sum_k p_k, so computed)
 *   dneg (B, N) or NULL  += c * p_k
 *   pos (B), neg (B, N) as in the forward
 */
void nn_sampled_softmax_backward(float *dpos, float *dneg, float dloss, const float *pos,
				 const float *neg, int B, int N);

/*
 * Mean squared error over the observed entries only (AutoRec's loss on
 * the observed ratings of a row):
 *
 *   loss = sum_{i observed} (pred[i] - target[i])^2 / (number observed)
 *
 *   pred    (N)
 *   target  (N)
 *   mask    (N) or NULL   nonzero = observed; NULL = all observed.  pred and
 *                         target are not read where mask is 0 (they may hold
 *                         anything, NaN included)
 *
 * Returns the mean over the observed entries (summed in double); 0 when
 * nothing is observed (or N == 0), never NaN.
 */
double nn_masked_mse_forward(const float *pred, const float *target, const uint8_t *mask, int N);

/*
 *   dpred (N) or NULL  += dloss * 2 (pred[i] - target[i]) / (number
 *                         observed) at observed i; unobserved entries are
 *                         left untouched (nothing at all when none is
 *                         observed)
 *   pred (N), target (N), mask (N) or NULL as in the forward
 */
void nn_masked_mse_backward(float *dpred, float dloss, const float *pred, const float *target,
			    const uint8_t *mask, int N);

#endif
