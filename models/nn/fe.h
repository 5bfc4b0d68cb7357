/*
 * fe.h - the layers of IntTower (Li et al., CIKM 2022): LightSE field
 * attention, the FE-Block's max-sim score, and the row L2 normalisation of
 * its contrastive term (CIR), whose InfoNCE is nn_inbatch_softmax_* (nn.h).
 *
 * The conventions are nn.h's: row-major buffers with their shapes beside
 * each parameter, forward writes, backward ACCUMULATES (+=) and skips a
 * NULL gradient, no layer allocates or fails (bad dimensions abort through
 * HR_ASSERT), every function is a pure function of its arguments and safe
 * to call from many threads on distinct outputs.
 */
#ifndef HR_NN_FE_H
#define HR_NN_FE_H

#include <stdint.h>

/* ---------------------------------------------------------------- LightSE */

#define NN_LIGHTSE_MAX_F 64 /* fields; the backward keeps (F) rows on the stack */

/*
 * LightSE over F field embeddings of width E (IntTower's
 * layers/interaction.py LightSE), per row b:
 *
 *   z[f]   = mean over e of in[f][e]                  squeeze    (F)
 *   a      = softmax over f of (z W^T)                excitation (F), no bias
 *   out[f] = in[f] + in[f] * a[f] = in[f] (1 + a[f])
 *
 *   out  (B, F, E)  written; must not overlap in
 *   z    (B, F)     cache, written
 *   a    (B, F)     cache, written: the softmax weights
 *   in   (B, F, E)
 *   W    (F, F)     nn.Linear(F, F, bias=False) layout: row f weighs z for field f
 *   1 <= F <= NN_LIGHTSE_MAX_F, E >= 1
 */
void nn_lightse_forward(float *out, float *z, float *a, const float *in, const float *W, int B,
			int F, int E);

/*
 * With ga[f] = <dout[f], in[f]> and gs = a * (ga - <ga, a>) (the softmax's
 * backward):
 *
 *   dinp (B, F, E) += dout (1 + a) + (gs W)[f] / E   (NULL: skip)
 *   dW   (F, F)    += gs^T z                         (NULL: skip)
 *   dout (B, F, E); in, W, z, a as in the forward
 */
void nn_lightse_backward(float *dinp, float *dW, const float *dout, const float *in, const float *W,
			 const float *z, const float *a, int B, int F, int E);

/* ----------------------------------------------------------------- max-sim */

#define NN_MAXSIM_MAX_NU 1024 /* query vectors per row */
#define NN_MAXSIM_MAX_D 512   /* vector width */

/*
 * Max-sim late interaction (the FE-Block score of one user layer; ColBERT's
 * MaxSim), per row b:
 *
 *   out[b] = sum over h < NU of max over k < NV of <U[b][h], V[b][k]>
 *
 *   out  (B)        written
 *   arg  (B, NU)    cache, written: the k of each max, the lowest k on ties
 *   U    (B, NU, D) the query vectors (a user layer's heads)
 *   V    (B, NV, D) the key vectors (the item's last-layer heads)
 *   1 <= NU <= NN_MAXSIM_MAX_NU, NV >= 1, 1 <= D <= NN_MAXSIM_MAX_D
 *
 * Dot products and their sum are float.  A non-finite dot product anywhere
 * in a row makes out[b] NaN, even where it would not win a max: bad weights
 * surface as a non-finite loss instead of hiding behind the max.  The
 * gradient is the max's: at a tie (measure zero) it goes to the lowest k.
 */
void nn_maxsim_forward(float *out, int32_t *arg, const float *U, const float *V, int B, int NU,
		       int NV, int D);

/*
 *   dU (B, NU, D) += dout[b] V[b][arg[b][h]]                 (NULL: skip)
 *   dV (B, NV, D) += sum over h with arg[b][h] = k of
 *                    dout[b] U[b][h], at k                    (NULL: skip)
 *   dout (B); arg, U, V as in the forward
 */
void nn_maxsim_backward(float *dU, float *dV, const float *dout, const int32_t *arg, const float *U,
			const float *V, int B, int NU, int NV, int D);

/* --------------------------------------------------------- L2 normalisation */

/*
 * Each row scaled to unit length (torch.nn.functional.normalize):
 * out[b] = in[b] / max(|in[b]|, eps).
 *
 *   out   (B, D)  written; may equal in
 *   norm  (B)     cache, written: |in[b]| (unclamped)
 *   in    (B, D)
 *   eps   > 0 (PyTorch's default is 1e-12)
 *
 * Backward, with n = norm[b] and y = out[b]:
 *   dinp (B, D) += (dout - y <y, dout>) / n   where n > eps
 *                 dout / eps                  where the norm was clamped
 *   dout (B, D); out, norm, eps as in the forward (the backward reads out,
 *   not in, so the in-place forward keeps what it needs)
 */
void nn_l2norm_forward(float *out, float *norm, const float *in, float eps, int B, int D);
void nn_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norm,
			float eps, int B, int D);

#endif
