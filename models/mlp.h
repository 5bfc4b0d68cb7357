/*
 * mlp.h - a stack of linear layers with ReLU between them, the building
 * block of NCF's MLP and of each two-tower tower.
 *
 * Layer i maps width[i-1] (or `in`) to width[i]; ReLU follows every layer
 * except, when relu_last is 0, the last.  Weights are (out, in) like
 * PyTorch's nn.Linear, Kaiming-uniform for ReLU layers and Xavier-uniform
 * for a final linear one, biases zero.
 *
 * Workspace (floats, mlp_ws_floats): every layer's output (B, width[i]),
 * then two (B, max width) gradient buffers.  mlp_forward keeps there what
 * mlp_backward needs; the caller passes the same ws and x to both.
 */
#ifndef HR_MLP_H
#define HR_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

#define MLP_MAX_LAYERS 8

struct mlp {
	int n;
	uint32_t in;
	uint32_t width[MLP_MAX_LAYERS];
	int w[MLP_MAX_LAYERS], b[MLP_MAX_LAYERS]; /* tensor indices */
	int relu_last;
	uint32_t max_width;
};

/* Declares the layers' tensors as "<prefix>.<i>.w" / ".b".  HR_EINVAL. */
int mlp_declare(struct mlp *m, struct params *p, const char *prefix, uint32_t in,
		const uint32_t *widths, int n, int relu_last);
size_t mlp_ws_floats(const struct mlp *m, uint32_t B);
/* Output width. */
static inline uint32_t mlp_out_width(const struct mlp *m)
{
	return m->width[m->n - 1];
}
/* The output (B, out width) that the last mlp_forward left in ws. */
float *mlp_output(const struct mlp *m, float *ws, uint32_t B);
/* Forward of x (B, in); returns the output (B, out width) inside ws. */
float *mlp_forward(const struct mlp *m, const struct params *p, float *ws, const float *x,
		   uint32_t B);
/*
 * Backward from dout (B, out width): accumulates the weight gradients into
 * grad (the dense gradient block) and, when dx is not NULL, the input
 * gradient into dx (B, in).  dout may not point into ws.
 */
void mlp_backward(const struct mlp *m, const struct params *p, float *ws, const float *x,
		  const float *dout, float *dx, float *grad, uint32_t B);
/* Multiply-adds times two of one sample's forward pass. */
double mlp_flops(const struct mlp *m);

#endif
