/*
 * blocks.h - building blocks of the DIN family over named tensors
 * (params.h), shared by din and the models that reuse its parts (DIEN):
 *
 *  - struct dnn: DeepCTR's DNN, per hidden layer Linear -> [BatchNorm] ->
 *    activation (Dice, PReLU or ReLU, as models/nn/attn.h's enum), then a
 *    linear output unit: one logit per row;
 *  - struct attn_block: the tensors of the local activation unit
 *    (models/nn/attn.h) and the parameter/gradient pointer tables the nn
 *    calls take.
 *
 * Declaration (dnn_declare, attn_block_declare) adds the tensors to a
 * model's params before params_finalize; afterwards the blocks only hold
 * tensor indices.  Non-trainable state (BatchNorm and Dice running
 * statistics) is declared with params_add_state: checkpointed, never moved
 * by the optimizer.  Initialisation: Linear weights Xavier-uniform, biases
 * 0, BatchNorm gamma 1 / beta 0, Dice alpha 0 (DeepCTR), PReLU alpha 0.25
 * (PyTorch), running means 0 and variances 1.
 *
 * Threading: forward/backward read the weights and write the caller's
 * workspace and gradient block only, except the running statistics, which
 * a training forward updates in place (racily under Hogwild, as
 * twotower's BatchNorm; nn.h, nn_running_stats_update).
 */
#ifndef HR_BLOCKS_H
#define HR_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/attn.h"
#include "params.h"

#define DNN_MAX_LAYERS 8
#define DNN_BN_EPS 1e-5f   /* BatchNorm1d's default */
#define DNN_MOMENTUM 0.1f  /* BatchNorm and Dice running statistics (PyTorch's) */
#define DNN_DICE_EPS 1e-8f /* DeepCTR-Torch's Dice */

struct dnn {
	uint32_t in, n, width[DNN_MAX_LAYERS], maxw;
	enum nn_attn_act act;
	int bn;
	/* tensor indices per hidden layer (-1: not declared) */
	int w[DNN_MAX_LAYERS], b[DNN_MAX_LAYERS];
	int gamma[DNN_MAX_LAYERS], beta[DNN_MAX_LAYERS], bn_mean[DNN_MAX_LAYERS],
		bn_var[DNN_MAX_LAYERS];
	int alpha[DNN_MAX_LAYERS], act_mean[DNN_MAX_LAYERS], act_var[DNN_MAX_LAYERS];
	int wo, bo; /* the output unit */
};

/*
 * Declares "<prefix>.<l>.w" / ".b" (and ".bn.*", ".alpha", ".dice.*" as
 * act and bn ask) for n hidden layers of widths[] on `in` inputs, then
 * "<prefix>.out.w" / ".out.b".  HR_EINVAL (too many layers or tensors).
 */
int dnn_declare(struct dnn *d, struct params *p, const char *prefix, uint32_t in,
		const uint32_t *widths, int n, enum nn_attn_act act, int bn);
size_t dnn_ws_floats(const struct dnn *d, uint32_t B);

/*
 * logits (B) = the DNN of x (B, in).  With train: batch statistics, and
 * the running statistics updated; else the running statistics.  Keeps in
 * ws (dnn_ws_floats) what dnn_backward needs.
 */
void dnn_forward(const struct dnn *d, const struct params *p, float *ws, const float *x,
		 float *logits, uint32_t B, int train);

/*
 * From dlogits (B): weight gradients += into grad (the dense block), and
 * dx (B, in) += d/dx when not NULL.  ws and x as the forward left them;
 * train as in the forward.
 */
void dnn_backward(const struct dnn *d, const struct params *p, float *ws, const float *x,
		  const float *dlogits, float *dx, float *grad, uint32_t B, int train);

/* Multiply-adds times two of one row's forward pass. */
double dnn_flops(const struct dnn *d);

struct attn_block {
	struct nn_attn_shape s;
	int W[NN_ATTN_MAX_LAYERS], b[NN_ATTN_MAX_LAYERS], alpha[NN_ATTN_MAX_LAYERS];
	int mean[NN_ATTN_MAX_LAYERS], var[NN_ATTN_MAX_LAYERS]; /* Dice, else -1 */
	int wo, bo;                                            /* bo -1 without an output bias */
};

/*
 * Declares the unit's tensors "<prefix>.<l>.w" (H_l, in_l), ".b", ".alpha"
 * (Dice, PReLU), ".mean" / ".var" (Dice: state), "<prefix>.out.w" (1, H_n)
 * and, with out_bias, "<prefix>.out.b" (leave it out under a softmax:
 * it has no effect there).  n hidden layers of widths H on keys of width D.
 * HR_EINVAL.
 */
int attn_block_declare(struct attn_block *a, struct params *p, const char *prefix, int D,
		       const uint32_t *H, int n, enum nn_attn_act act, int out_bias);

/* The nn call's parameter and gradient tables (grad: the dense block). */
void attn_block_params(const struct attn_block *a, const struct params *p,
		       struct nn_attn_params *out);
void attn_block_grads(const struct attn_block *a, const struct params *p, float *grad,
		      struct nn_attn_grads *out);

/* After a training forward (nn_attn_forward's ws, N positions): Dice's
 * running statistics, momentum DNN_MOMENTUM. */
void attn_block_update_stats(const struct attn_block *a, const struct params *p, const float *ws,
			     int B, int N);

/* Multiply-adds times two of the unit's forward at one position (first
 * layer as computed: 2D inputs per position, the q part per example aside). */
double attn_block_flops(const struct attn_block *a);

#endif
