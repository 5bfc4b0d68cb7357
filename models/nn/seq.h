/*
 * seq.h - layers over variable-length sequences: the packed layout, the GRU
 * family of DIEN (Zhou et al. 2019: GRU, AUGRU, AGRU, AIGRU) and DIEN's
 * auxiliary loss.  Conventions as nn.h (row-major, backward accumulates,
 * NULL gradients skipped, nothing allocates, bad dimensions abort).
 *
 * Packed sequences.  A batch of B sequences of lengths len[b] <= T is
 * stored as PyTorch's PackedSequence stores it: rows sorted by length,
 * longest first, and time-major, so that at step t the rows still alive
 * are the first bs[t] of that order and sit in one contiguous block:
 *
 *   position of (row b, step t) = off[t] + rank[b],   valid iff t < len[b]
 *
 * N = sum of the lengths positions in all; nothing is stored or computed
 * for padding.  A recurrent step then multiplies one (bs[t], H) block of
 * states by the recurrent weights (one GEMM across the alive rows), and the
 * input projections of all N positions are one GEMM up front.  Because the
 * rows alive at t + 1 are a prefix of those alive at t, row k's previous
 * state is at off[t - 1] + k: no index arrays inside the steps.
 */
#ifndef HR_NN_SEQ_H
#define HR_NN_SEQ_H

#include <stdint.h>

/* ---------------------------------------------------------------- Packing */

struct nn_pack {
	int B, T;   /* rows, steps (the padded length) */
	int N;      /* positions: the sum of the lengths */
	int *len;   /* (B) len[b], by row */
	int *order; /* (B) order[k]: the row with the k-th longest sequence (ties: lower row first) */
	int *rank; /* (B) rank[order[k]] = k */
	int *bs;   /* (T) rows alive at step t: those with len > t, the first bs[t] of order */
	int *off;  /* (T + 1) position of step t's first row; off[T] = N */
};

/* The ints nn_pack_init needs in mem: 3B + 2T + 1. */
static inline int nn_pack_ints(int B, int T)
{
	return 3 * B + 2 * T + 1;
}

/*
 * Builds the packing of lens (B), each <= T (asserted), in mem (caller's,
 * nn_pack_ints(B, T) ints, kept by p).  A counting sort: O(B + T).
 */
void nn_pack_init(struct nn_pack *p, int *mem, const uint32_t *lens, int B, int T);

/* The position of (row b, step t); t < p->len[b]. */
static inline int nn_pack_pos(const struct nn_pack *p, int b, int t)
{
	return p->off[t] + p->rank[b];
}

/*
 * Each row's last element: last[b] = seq[position of (b, len[b] - 1)], or
 * h0[b] (zeros when h0 is NULL) for an empty row - a recurrent layer's
 * final state.
 *   last (B, D) written; seq (N, D) packed; h0 (B, D) or NULL
 * Backward: dseq (N, D) and dh0 (B, D) (either may be NULL) += dlast, at
 * the element each row's last came from.
 */
void nn_pack_last_forward(float *last, const float *seq, const float *h0, const struct nn_pack *p,
			  int D);
void nn_pack_last_backward(float *dseq, float *dh0, const float *dlast, const struct nn_pack *p,
			   int D);

/* ------------------------------------------------------------ GRU family */

/*
 * One gated recurrent layer over packed sequences, in the paper's
 * notation (u the update gate):
 *
 *   r  = sigmoid(Wx_r x + bx_r + Wh_r h + bh_r)
 *   u  = sigmoid(Wx_u x + bx_u + Wh_u h + bh_u)
 *   n  = tanh(Wx_n x + bx_n + r * (Wh_n h + bh_n))
 *   h' = (1 - u') * h + u' * n
 *
 * with, by kind, a_t the attention score of the position (DIEN, eq. 6-9):
 *   NN_GRU        u' = u                 (the interest extractor)
 *   NN_AUGRU      u' = a_t * u           (attentional update gate: the
 *                                        paper's eq. 7; a zero score keeps
 *                                        the state)
 *   NN_AGRU       u' = a_t               (no update gate: G = 2 gate blocks)
 *   NN_AIGRU      u' = u, x replaced by a_t * x
 *   NN_AUGRU_KEEP 1 - u' = (1 - a_t) * (1 - u)   (the authors' code,
 *                                        mouna99/dien VecAttGRUCell: the
 *                                        score scales the keep gate 1 - u;
 *                                        a zero score is a plain GRU step,
 *                                        a score of 1 takes the candidate)
 * (PyTorch's nn.GRU is the same family with z = 1 - u.)  Weights are
 * (out, in) like nn.Linear, the gate blocks stacked r, [u,] n - the
 * candidate n last, u absent for AGRU:
 *   Wx (G*H, I), Wh (G*H, H), bx (G*H), bh (G*H),  G = nn_gru_gates(kind)
 */
enum nn_gru_kind { NN_GRU, NN_AUGRU, NN_AGRU, NN_AIGRU, NN_AUGRU_KEEP };

static inline int nn_gru_gates(enum nn_gru_kind kind)
{
	return kind == NN_AGRU ? 2 : 3;
}

/*
 *   out    (N, H)    written: h_t at each position
 *   gates  (N, G*H)  cache, written: r, [u,] n after their activations
 *   gh     (N, G*H)  cache, written: Wh h_{t-1} + bh, every gate block
 *   hprev  (N, H)    cache, written: h_{t-1} of each position (h0 at t = 0)
 *   wt     (H, G*H)  scratch: Wh transposed, for the steps' products by
 *                    nn_sgemm_small (no packing copies); NULL: by nn_sgemm
 *   x      (N, I)    packed inputs
 *   att    (N)       packed scores a_t; NULL for NN_GRU (not read then)
 *   h0     (B, H)    initial state by row; NULL: zeros
 *   p                the packing of x, att and out
 *
 * Cost: one (N, I) x (I, G*H) GEMM, then per step t one GEMM of the bs[t]
 * alive states by Wh and O(bs[t] H) elementwise work; nothing past a
 * sequence's end.  The backward's per-step products are nn_sgemm_small's.  A row's final state: nn_pack_last_forward(out, h0).
 */
void nn_gru_forward(float *out, float *gates, float *gh, float *hprev, float *wt, const float *x,
		    const float *att, const float *h0, const float *Wx, const float *Wh,
		    const float *bx, const float *bh, const struct nn_pack *p,
		    enum nn_gru_kind kind, int I, int H);

/*
 * The same with the inputs given as distinct rows: x (nx, I), nx <= N, and
 * position q's input is row xidx[q] (N ints).  The input projections are
 * one (nx, I) x (I, G*H) GEMM, gathered to the positions (DIEN: a batch's
 * history holds a few thousand distinct items over ten thousand
 * positions).  Not for NN_AIGRU (asserted).
 */
void nn_gru_forward_idx(float *out, float *gates, float *gh, float *hprev, float *wt,
			const float *x, const int *xidx, int nx, const float *att, const float *h0,
			const float *Wx, const float *Wh, const float *bx, const float *bh,
			const struct nn_pack *p, enum nn_gru_kind kind, int I, int H);

/* The floats of nn_gru_backward's scratch for B rows and at most N
 * positions: N*G*H + N*H + B*H + N*I (AIGRU) or N*G*H (the others). */
long nn_gru_scratch_floats(int B, int N, enum nn_gru_kind kind, int I, int H);

/*
 * Backward through time from dout (N, H), the gradient of the loss with
 * respect to every h_t (a final state's gradient is added there with
 * nn_pack_last_backward first).  Accumulates (each may be NULL):
 *   dx (N, I), datt (N), dh0 (B, H), dWx (G*H, I), dWh (G*H, H),
 *   dbx (G*H), dbh (G*H)
 * scratch: nn_gru_scratch_floats() floats, overwritten.  The weight and
 * input gradients are GEMMs over all N positions; per step one GEMM of the
 * alive rows' gate gradients by Wh.  The other arguments are the forward's.
 */
void nn_gru_backward(float *dx, float *datt, float *dh0, float *dWx, float *dWh, float *dbx,
		     float *dbh, float *scratch, const float *dout, const float *gates,
		     const float *gh, const float *hprev, const float *x, const float *att,
		     const float *Wx, const float *Wh, const struct nn_pack *p,
		     enum nn_gru_kind kind, int I, int H);

/*
 * The backward of nn_gru_forward_idx: dx (nx, I) accumulates the distinct
 * rows' gradients; the position gradients are summed per row first, so the
 * input weights' and the rows' gradients are GEMMs over nx rows.
 */
void nn_gru_backward_idx(float *dx, float *datt, float *dh0, float *dWx, float *dWh, float *dbx,
			 float *dbh, float *scratch, const float *dout, const float *gates,
			 const float *gh, const float *hprev, const float *x, const int *xidx,
			 int nx, const float *att, const float *Wx, const float *Wh,
			 const struct nn_pack *p, enum nn_gru_kind kind, int I, int H);

/* ------------------------------------------------------ DIEN's aux loss */

/*
 * DIEN's auxiliary loss (Zhou et al. 2019, eq. 4-5; the auxiliary network
 * of the reference code, mouna99/dien and DeepCTR-Torch): each state h_t
 * of the interest extractor, t + 1 < len, must tell the next clicked
 * item's embedding e_{t+1} from a sampled unclicked one e^neg_{t+1}.  A
 * small network scores a pair:
 *
 *   s(h, e) = w3 . sigmoid(W2 sigmoid(W1h h + W1e e + b1) + b2) + b3   (a logit)
 *
 *   loss = mean over the pairs of BCE(s(h_t, e_{t+1}), 1) and
 *          BCE(s(h_t, e^neg_{t+1}), 0)
 *
 * one mean over the positive and the negative terms together (the
 * reference's F.binary_cross_entropy over both).  A negative exists where
 * t + 1 < nneg[b] (a store may hold fewer negatives than history items);
 * positions at or past a row's end take no part.  With M = N - bs[0] the
 * positive pairs (a position with a successor), the network runs on 2M
 * rows; W1h h is computed once per state and shared by its two pairs.
 *
 * Weights (out, in): W1h (A1, H), W1e (A1, D), b1 (A1), W2 (A2, A1),
 * b2 (A2), w3 (A2), b3 (1); the same struct carries their gradients.
 */
struct nn_aux_params {
	float *W1h, *W1e, *b1, *W2, *b2, *w3, *b3;
};

/* The floats of the cache and of the backward's scratch for at most N positions. */
long nn_aux_cache_floats(int N, int A1, int A2);
long nn_aux_scratch_floats(int N, int A1, int A2);

/*
 *   cache  nn_aux_cache_floats() floats, written: what the backward reads
 *   hs     (N, H) packed states
 *   e      (N, D) packed embeddings of the clicked items (row t is e_t)
 *   eneg   (N, D) packed embeddings of the negatives; rows without one are
 *          read (one GEMM over all) and must be finite, e.g. zero
 *   nneg   (B) negatives per row, or NULL: every position has one
 * Returns the mean loss (summed in double); 0 when there is no pair.
 */
double nn_aux_forward(float *cache, const float *hs, const float *e, const float *eneg,
		      const uint32_t *nneg, const struct nn_aux_params *w, const struct nn_pack *p,
		      int H, int D, int A1, int A2);

/*
 * The same with the items given as distinct rows: e (ne, D), ne <= 2N, the
 * clicked item of position q is row eidx[q] and its negative row nidx[q]
 * (-1: none); eneg and nneg are not read (pass NULL).  W1e e is one GEMM
 * over the ne rows instead of two over the pairs.
 */
double nn_aux_forward_idx(float *cache, const float *hs, const float *e, const float *eneg,
			  const uint32_t *nneg, const int *eidx, const int *nidx, int ne,
			  const struct nn_aux_params *w, const struct nn_pack *p, int H, int D,
			  int A1, int A2);

/*
 * Gradient of dloss * the mean loss; accumulates into dhs (N, H), de (N, D),
 * deneg (N, D) (each may be NULL) and the non-NULL members of dw.  scratch:
 * nn_aux_scratch_floats() floats, overwritten.  The other arguments are the
 * forward's (which negatives exist is in the cache).
 */
void nn_aux_backward(float *dhs, float *de, float *deneg, const struct nn_aux_params *dw,
		     float *scratch, float dloss, const float *cache, const float *hs,
		     const float *e, const float *eneg, const struct nn_aux_params *w,
		     const struct nn_pack *p, int H, int D, int A1, int A2);

/* The backward of nn_aux_forward_idx: de (ne, D) accumulates the distinct
 * rows' gradients (each pair's summed into its rows first); deneg NULL. */
void nn_aux_backward_idx(float *dhs, float *de, float *deneg, const struct nn_aux_params *dw,
			 float *scratch, float dloss, const float *cache, const float *hs,
			 const float *e, const float *eneg, const int *eidx, const int *nidx,
			 int ne, const struct nn_aux_params *w, const struct nn_pack *p, int H,
			 int D, int A1, int A2);

#endif
