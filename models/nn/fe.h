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

#define NN_MAXSIM_MAX_NU 1024 /* query vectors per row, over every layer */
#define NN_MAXSIM_MAX_D 512   /* vector width */

/*
 * Max-sim late interaction (IntTower's FE-Block score, summed over the
 * user layers; ColBERT's MaxSim), per row b:
 *
 *   out[b] = sum over l < NL, h < NU of max over k < NV of <U[l][b][h], V[b][k]>
 *
 *   out   (B)            written
 *   arg   (NL, B, NU)    cache, written: the k of each max, the lowest k on ties
 *   U     NL pointers to (B, NU, D): the query vectors of each layer (a
 *                        user layer's heads)
 *   V     (B, NV, D)     the key vectors (the item's last-layer heads)
 *   NL, NU >= 1, NL * NU <= NN_MAXSIM_MAX_NU, NV >= 1, 1 <= D <= NN_MAXSIM_MAX_D
 *
 * Dot products and their sums are float (contracted to FMAs).  A
 * non-finite dot product anywhere in a row makes out[b] NaN, even where it
 * would not win a max: bad weights surface as a non-finite loss instead of
 * hiding behind the max.  The gradient is the max's: at a tie (measure
 * zero) it goes to the lowest k.
 */
void nn_maxsim_forward(float *out, int32_t *arg, const float *const *U, int NL, const float *V,
		       int B, int NU, int NV, int D);

/*
 *   dU    NL pointers to (B, NU, D), or NULL (no dU at all); a NULL pointer
 *         skips that layer's:  dU[l][b][h] += dout[b] V[b][arg[l][b][h]]
 *   dV    (B, NV, D) or NULL:  dV[b][k] += sum over l, h with
 *         arg[l][b][h] = k of dout[b] U[l][b][h]
 *   dout (B); arg, U, NL, V as in the forward (one layer l alone is the
 *   call with NL = 1, &U[l], &dU[l] and arg + l B NU)
 */
void nn_maxsim_backward(float *const *dU, float *dV, const float *dout, const int32_t *arg,
			const float *const *U, int NL, const float *V, int B, int NU, int NV,
			int D);

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
