/*
 * mhsa.h - multi-head self-attention over a small set of tokens per
 * example (AutoInt's interacting layer: the tokens are an example's feature
 * fields), as a forward/backward pair in the conventions of nn.h.
 *
 * For each example b, with X_b the (F, D) input rows of its F tokens:
 *
 *   [Q | K | V | R] = X_b W^T            W (P A, D): W_q, W_k, W_v (and W_res)
 *   for each head h (columns h d .. h d + d - 1 of Q, K, V; d = A / H):
 *     S   = s Q_h K_h^T                    (F, F), s = 1/sqrt(d) or 1
 *     S[i][j] = -inf where key j is masked
 *     P   = softmax over each row of S     (a row with every key masked: 0)
 *     Pd  = dropout(P)                     (training, rate p; else P)
 *     O_h = Pd V_h                         (F, d)
 *   Y   = [O_1 | ... | O_H] + res          res = R (W_res) or X_b (identity)
 *                                          or 0 (no residual)
 *   Y   = LayerNorm(Y)                     (optional; eps 1e-5, gamma, beta (A))
 *   out = relu(Y)                          (F, A)
 *
 * This is FuxiCTR's MultiHeadSelfAttention (model_zoo/AutoInt): no biases,
 * the residual projected by W_res only when use_residual and D != A, dropout
 * on the attention weights, ReLU always.  Masked keys get -inf before the
 * softmax (exactly weight 0), not a large negative number.
 *
 * Layouts.  Per-example work is tiny (F is a handful of fields, d a few
 * floats), so the layer keeps EXAMPLES IN THE SIMD LANES: its output, its
 * cache and (after the first layer) its input are "lane layout" tensors
 * (C, F, B), element [c][i][b] at (c F + i) B + b: feature c of token i of
 * example b, the batch innermost.  Every score, softmax, weighted sum and
 * their gradients is then a loop over consecutive examples, a whole vector
 * at any SIMD width, without padding, broadcasts or horizontal sums.  The
 * first layer reads the gathered fields as rows instead (a->in_rows: (B F,
 * D), row b F + i).  The Q/K/V/residual projections are GEMMs over all B F
 * tokens: one for lane-layout input, F (one per field, its rows strided)
 * for row input; the backward's are the same again.  (Transposing row
 * input once and using one GEMM was 5% faster at D = 10 and 15-20% slower
 * at D = 32.)
 * docs/ARCHITECTURE.md ("AutoInt") has the measurements.
 *
 * Thread-safety and ownership as in nn.h: pure functions of their
 * arguments, caller-owned buffers, nothing allocated.
 */
#ifndef HR_NN_MHSA_H
#define HR_NN_MHSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NN_MHSA_LN_EPS 1e-5f  /* PyTorch's nn.LayerNorm default */
#define NN_MHSA_MAX_TOKENS 64 /* F: the kernels keep per-token rows on the stack */

/* One layer's shape and switches. */
struct nn_mhsa {
	int F;           /* tokens (fields) per example, 1 .. NN_MHSA_MAX_TOKENS */
	int D;           /* input width, >= 1 */
	int A;           /* attention (output) width, a multiple of H */
	int H;           /* heads, >= 1 */
	bool residual;   /* add the input: projected by W_res when D != A, else as is */
	bool scale;      /* scores times 1/sqrt(A / H) */
	bool layer_norm; /* LayerNorm(A) before the ReLU */
	float dropout;   /* rate on the attention weights when training, 0 <= p < 1 */
	bool in_rows;    /* input (B F, D) rows, example-major; else lane layout (D, F, B) */
};

/* Projections stacked in W: 3 (Q, K, V), 4 with W_res (residual, D != A). */
int nn_mhsa_proj(const struct nn_mhsa *a);

/*
 * Floats of the cache for B examples: what the forward keeps for the
 * backward (projections, attention weights, dropout mask, the pre-ReLU sum,
 * LayerNorm statistics) and room the backward works in.
 */
size_t nn_mhsa_cache_floats(const struct nn_mhsa *a, int B);

/*
 *   out      (A, F, B)      written: relu(Y), lane layout
 *   cache    (nn_mhsa_cache_floats) written
 *   in       (B F, D) rows when a->in_rows, else (D, F, B) lane layout
 *   W        (P A, D)       rows [W_q; W_k; W_v; W_res], PyTorch's
 *                           nn.Linear layout (out = in W^T); P = nn_mhsa_proj
 *   gamma, beta (A)         LayerNorm's; NULL unless a->layer_norm
 *   valid    (B, F) or NULL nonzero = token j of example b takes part as a
 *                           key (every query still gets an output);
 *                           NULL = all do
 *   seed                    dropout draws: the draws of one
 *                           nn_dropout_forward(seed) over the (H, F, F, B)
 *                           attention weights, element ((h F + i) F + j) B + b;
 *                           derive a fresh seed per step and per layer
 *   training                dropout on (the rate > 0) or off
 */
void nn_mhsa_forward(float *out, float *cache, const float *in, const float *W, const float *gamma,
		     const float *beta, const uint8_t *valid, uint64_t seed, bool training,
		     const struct nn_mhsa *a, int B);

/*
 *   dinp           as in, or NULL    += d/d in
 *   dW             (P A, D) or NULL  += d/d W
 *   dgamma, dbeta  (A) or NULL       += (layer_norm only)
 *   dout           (A, F, B)
 *   cache          the forward's; its backward part is overwritten (the
 *                  forward's part is kept: backward may run twice)
 *   out, in, W, gamma as given to (out: written by) the forward
 *
 * The gradient at ReLU's kink (Y = 0) is 0, as nn_relu_backward's.
 */
void nn_mhsa_backward(float *dinp, float *dW, float *dgamma, float *dbeta, const float *dout,
		      float *cache, const float *out, const float *in, const float *W,
		      const float *gamma, const struct nn_mhsa *a, int B);

/*
 * Layout changes: rows (B, F, C) = lanes (C, F, B) transposed (row b holds
 * tokens i = 0 .. F - 1 of C features each: PyTorch's flatten of a
 * (B, F, C) tensor), and its backward, lanes += rows transposed.
 */
void nn_lanes_to_rows(float *rows, const float *lanes, int C, int F, int B);
void nn_rows_to_lanes_add(float *lanes, const float *rows, int C, int F, int B);

/* Multiply-adds times two of one example's forward pass. */
double nn_mhsa_flops(const struct nn_mhsa *a);

#endif
