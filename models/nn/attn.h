/*
 * attn.h - DIN's local activation unit (Zhou et al. 2018, "Deep Interest
 * Network"; DeepCTR-Torch LocalActivationUnit / AttentionSequencePooling,
 * FuxiCTR DIN_Attention): one score per history position from a small MLP
 * over the candidate (query) and that position's key, over a batch of
 * variable-length sequences, with the softmax and the weighted-sum pooling
 * as separate calls, so that a model can use the scores on their own (DIEN
 * gates its AUGRU/AGRU with them) or pool with them (DIN).
 *
 * Positions are PACKED: example b's n_b valid positions are rows
 * off[b] .. off[b + 1] - 1 of every per-position buffer, off (B + 1) with
 * off[0] = 0 and off[B] = N = sum of n_b.  Padding never enters any
 * computation (no work past a sequence's end, nothing read there, and
 * Dice's batch statistics are over the N valid positions only).
 * nn_attn_pack() builds off and packs a padded (B, T, D) tensor;
 * nn_attn_unpack() scatters per-position values back to (B, T).
 *
 * The unit, for position t of example b (query q = q_b, key k = k_t, both
 * of width D):
 *
 *   x_t  = [q | k | q - k | q * k]                               (4D)
 *   h1_t = act_1(W_1 x_t + b_1)                                  (H_1)
 *   hl_t = act_l(W_l h(l-1)_t + b_l),  l = 2 .. n                (H_l)
 *   s_t  = w_out . hn_t + b_out                                  the raw score
 *
 * W_1 is (H_1, 4D) with the PyTorch nn.Linear layout: columns [0, D) act on
 * q, [D, 2D) on k, [2D, 3D) on q - k, [3D, 4D) on q * k.  It is computed
 * as x_t W_1^T = q (W_q + W_d)^T + k (W_k - W_d)^T + (q * k) W_p^T: the
 * q term once per example, not per position, and GEMMs over the
 * positions with inner dimension 2D (k and q * k) instead of 4D, in tiles
 * of a few hundred positions whose elementwise work follows each GEMM
 * while its output is in cache (attn.c).
 *
 * act is one of (the same in every layer):
 *   NN_ATTN_DICE   Dice (nn_attn_dice_forward) with per-channel alpha; training
 *                  normalises with the statistics of the N positions of
 *                  the batch (biased variance), evaluation with the
 *                  running statistics (non-trainable state, updated by
 *                  nn_attn_update_stats, never by the forward)
 *   NN_ATTN_PRELU  nn_prelu_forward with per-channel alpha
 *   NN_ATTN_RELU   max(x, 0), no parameters
 *
 * Softmax-normalised scores (DeepCTR's weight_normalization, FuxiCTR's
 * use_softmax, DIEN's attention): p_t = exp(s_t) / sum over the example's
 * positions of exp(s_u): nn_attn_softmax_forward.  Without it the raw
 * scores are the weights (DeepCTR's DIN default: no sigmoid, no softmax;
 * padded positions weigh 0 because they are not there).  A softmax makes
 * b_out irrelevant (every score of an example shifts alike): pass NULL.
 *
 * Pooling: out_b = sum over the example's positions of w_t v_t
 * (nn_attn_pool_forward), with w the raw or normalised scores and v the
 * keys (DIN) or any per-position values.  An example without positions
 * pools to zeros.
 *
 * A model calls, in training:
 *   nn_attn_forward(score, ws, q, keys, off, &p, &s, true, B)
 *   [nn_attn_softmax_forward(prob, score, off, B)]
 *   nn_attn_pool_forward(out, prob or score, keys, off, B, D)
 *   ... loss ...
 *   nn_attn_pool_backward(dw, dkeys, dout, w, keys, off, B, D)
 *   [nn_attn_softmax_backward(dscore, dw, prob, off, B)]
 *   nn_attn_backward(dq, dkeys, &g, dscore, ws, q, keys, off, &p, &s, true, B)
 *   nn_attn_update_stats(...) (Dice: once per batch, racily under Hogwild)
 *
 * Conventions as nn.h: row-major, shapes beside every parameter, backward
 * ACCUMULATES into every gradient it is given (NULL skips one), nothing
 * allocates, bad dimensions abort through HR_ASSERT, pure functions of the
 * arguments (thread-safe on distinct outputs and workspaces).
 */
#ifndef HR_NN_ATTN_H
#define HR_NN_ATTN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NN_ATTN_MAX_LAYERS 4

enum nn_attn_act {
	NN_ATTN_DICE = 0,
	NN_ATTN_PRELU = 1,
	NN_ATTN_RELU = 2,
};

/* The unit's shape. */
struct nn_attn_shape {
	int D;                     /* query and key width, > 0 */
	int n;                     /* hidden layers, 1 .. NN_ATTN_MAX_LAYERS */
	int H[NN_ATTN_MAX_LAYERS]; /* their widths, each > 0 */
	enum nn_attn_act act;      /* every hidden layer's activation */
	float eps;                 /* Dice: variance epsilon (DeepCTR-Torch 1e-8) */
};

/* The unit's parameters (read only).  in_1 = 4D, in_l = H_(l-1). */
struct nn_attn_params {
	const float *W[NN_ATTN_MAX_LAYERS];        /* (H_l, in_l) */
	const float *b[NN_ATTN_MAX_LAYERS];        /* (H_l) or NULL: no bias */
	const float *alpha[NN_ATTN_MAX_LAYERS];    /* (H_l) Dice, PReLU; unused for ReLU */
	const float *run_mean[NN_ATTN_MAX_LAYERS]; /* (H_l) Dice, read when !training */
	const float *run_var[NN_ATTN_MAX_LAYERS];  /* (H_l) Dice, read when !training */
	const float *w_out;                        /* (H_n) */
	const float *b_out;                        /* (1) or NULL */
};

/* Their gradients, shaped alike; any may be NULL (skipped). */
struct nn_attn_grads {
	float *W[NN_ATTN_MAX_LAYERS];
	float *b[NN_ATTN_MAX_LAYERS];
	float *alpha[NN_ATTN_MAX_LAYERS];
	float *w_out;
	float *b_out;
};

/*
 * Floats of the workspace for B examples and at most N positions: the
 * forward's cache (derived first-layer weights, the packed [k | q * k]
 * rows, every layer's pre- and post-activation, Dice's statistics) and
 * the backward's scratch (every layer's output gradient, tile buffers),
 * each region 64-byte aligned when ws is.
 */
size_t nn_attn_ws_floats(const struct nn_attn_shape *s, int B, int N);

/*
 *   score  (N)     written: the raw scores s_t
 *   ws             the workspace (nn_attn_ws_floats(s, B, >= N)), written;
 *                  the backward reads what this forward left there
 *   q      (B, D)  the queries
 *   keys   (N, D)  the packed keys
 *   off    (B + 1) the packing (above); N = off[B]
 *   training       Dice: batch statistics (true) or running ones
 */
void nn_attn_forward(float *score, float *ws, const float *q, const float *keys,
		     const uint32_t *off, const struct nn_attn_params *p,
		     const struct nn_attn_shape *s, bool training, int B);

/*
 * From dscore (N), d loss / d s_t, after the forward with the same
 * arguments (ws as it left it):
 *   dq     (B, D) or NULL  += d/d q
 *   dkeys  (N, D) or NULL  += d/d keys
 *   g                      += the parameter gradients (NULL members skipped)
 * ws is the forward's; its scratch part is overwritten (the cache part is
 * not: the backward may be called again).  Through Dice's batch statistics
 * when training.
 */
void nn_attn_backward(float *dq, float *dkeys, const struct nn_attn_grads *g, const float *dscore,
		      float *ws, const float *q, const float *keys, const uint32_t *off,
		      const struct nn_attn_params *p, const struct nn_attn_shape *s, bool training,
		      int B);

/*
 * Dice's running statistics from the last training forward's cache in ws
 * (nn_running_stats_update over the N = off[B] positions, layer by layer):
 *   run_mean[l], run_var[l] (H_l) updated in place; no-op unless act is
 *   Dice.  The one write to shared state: call it once per batch (Hogwild
 *   workers race on it, as on BatchNorm's, models/nn/nn.h).
 */
void nn_attn_update_stats(float *const run_mean[NN_ATTN_MAX_LAYERS],
			  float *const run_var[NN_ATTN_MAX_LAYERS], const float *ws,
			  const struct nn_attn_shape *s, float momentum, int B, int N);

/*
 * Softmax of the scores over each example's positions:
 *   prob  (N)  written; may equal score; an example without positions has
 *              none (nothing written)
 *   score (N), off (B + 1)
 * Backward: dscore (N) += prob * (dprob - <dprob, prob>_example).
 */
void nn_attn_softmax_forward(float *prob, const float *score, const uint32_t *off, int B);
void nn_attn_softmax_backward(float *dscore, const float *dprob, const float *prob,
			      const uint32_t *off, int B);

/*
 * out_b = sum over t in [off[b], off[b + 1]) of w_t v_t.
 *   out (B, D) written (zeros for an empty example); w (N); v (N, D)
 * Backward:
 *   dw (N) or NULL     += <dout_b, v_t>
 *   dv (N, D) or NULL  += w_t dout_b
 */
void nn_attn_pool_forward(float *out, const float *w, const float *v, const uint32_t *off, int B,
			  int D);
void nn_attn_pool_backward(float *dw, float *dv, const float *dout, const float *w, const float *v,
			   const uint32_t *off, int B, int D);

/*
 * Dice with nn_dice_forward / nn_dice_backward's contract (nn.h: the same
 * arguments, caches and semantics), built for the unit's activations: the
 * sigmoid is a vectorisable polynomial exp (relative error < 4e-7; a NaN
 * input still gives a NaN output), the statistics are summed in double,
 * and the loops are built per CPU (common/simd.h).  The unit uses its own
 * tiled form of the same kernels; models use these for their other Dice
 * layers (models/blocks.c).
 */
void nn_attn_dice_forward(float *out, float *mean, float *rstd, const float *in, const float *alpha,
			  const float *run_mean, const float *run_var, float eps, bool training,
			  int B, int D);
void nn_attn_dice_backward(float *dinp, float *dalpha, const float *dout, const float *in,
			   const float *mean, const float *rstd, const float *alpha, bool training,
			   int B, int D);

/*
 * Packs the first lens[b] rows of each example of a padded tensor:
 *   packed  (N, D) written, N = sum of lens; NULL: only off is written
 *   off     (B + 1) written
 *   padded  (B, T, D); rows past lens[b] are not read (may hold anything)
 *   lens    (B), each <= T (asserted)
 * Returns N.
 */
uint32_t nn_attn_pack(float *packed, uint32_t *off, const float *padded, const uint32_t *lens,
		      int B, int T, int D);

/*
 * The inverse for one value per position: out (B, T) gets v[off[b] + t] at
 * t < n_b and fill at the padding (0 for weights, -INFINITY for logits).
 */
void nn_attn_unpack(float *out, const float *v, const uint32_t *off, float fill, int B, int T);

#endif
