#include "mlp.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "nn/nn.h"

int mlp_declare(struct mlp *m, struct params *p, const char *prefix, uint32_t in,
		const uint32_t *widths, int n, int relu_last)
{
	uint32_t prev = in;

	memset(m, 0, sizeof(*m));
	if (n < 1 || n > MLP_MAX_LAYERS || in == 0)
		return hr_error(HR_EINVAL, "%s: %d layers on %u inputs", prefix, n, in);
	m->n = n;
	m->in = in;
	m->relu_last = relu_last;
	for (int i = 0; i < n; i++) {
		char name[PARAM_NAME_MAX];
		int relu = i < n - 1 || relu_last;
		m->width[i] = widths[i];
		if (widths[i] > m->max_width)
			m->max_width = widths[i];
		snprintf(name, sizeof(name), "%s.%d.w", prefix, i);
		m->w[i] = params_add(p, name, widths[i], prev, 0, relu ? INIT_KAIMING : INIT_XAVIER,
				     0);
		snprintf(name, sizeof(name), "%s.%d.b", prefix, i);
		m->b[i] = params_add(p, name, 1, widths[i], 0, INIT_ZERO, 0);
		if (m->w[i] < 0 || m->b[i] < 0)
			return m->w[i] < 0 ? m->w[i] : m->b[i];
		prev = widths[i];
	}
	if (in > m->max_width)
		m->max_width = in;
	return 0;
}

size_t mlp_ws_floats(const struct mlp *m, uint32_t B)
{
	size_t n = 0;

	for (int i = 0; i < m->n; i++)
		n += (size_t)B * m->width[i];
	return n + 2 * (size_t)B * m->max_width;
}

/* Output of layer i inside ws. */
static float *act(const struct mlp *m, float *ws, int i, uint32_t B)
{
	for (int k = 0; k < i; k++)
		ws += (size_t)B * m->width[k];
	return ws;
}

float *mlp_output(const struct mlp *m, float *ws, uint32_t B)
{
	return act(m, ws, m->n - 1, B);
}

float *mlp_forward(const struct mlp *m, const struct params *p, float *ws, const float *x,
		   uint32_t B)
{
	const float *in = x;
	uint32_t I = m->in;
	float *out = ws;

	for (int i = 0; i < m->n; i++) {
		uint32_t O = m->width[i];
		out = act(m, ws, i, B);
		nn_linear_forward(out, in, p->t[m->w[i]].w, p->t[m->b[i]].w, (int)B, (int)I,
				  (int)O);
		if (i < m->n - 1 || m->relu_last)
			nn_relu_forward(out, out, (int)(B * O));
		in = out;
		I = O;
	}
	return out;
}

void mlp_backward(const struct mlp *m, const struct params *p, float *ws, const float *x,
		  const float *dout, float *dx, float *grad, uint32_t B)
{
	float *scratch = act(m, ws, m->n, B);
	float *bufs[2] = {scratch, scratch + (size_t)B * m->max_width};
	const float *d = dout; /* gradient w.r.t. the output of layer i */
	int k = 0;             /* bufs[k] never holds d: writes alternate */

	for (int i = m->n - 1; i >= 0; i--) {
		uint32_t O = m->width[i], I = i ? m->width[i - 1] : m->in;
		const float *out = act(m, ws, i, B);
		const float *in = i ? act(m, ws, i - 1, B) : x;
		const struct tensor *W = &p->t[m->w[i]], *b = &p->t[m->b[i]];
		float *dinp = dx; /* the first layer accumulates into the caller's dx */

		if (i < m->n - 1 || m->relu_last) {
			float *dpre = bufs[k];
			k ^= 1;
			memset(dpre, 0, (size_t)B * O * sizeof(float));
			nn_relu_backward(dpre, d, out, (int)(B * O));
			d = dpre;
		}
		if (i > 0) {
			dinp = bufs[k];
			k ^= 1;
			memset(dinp, 0, (size_t)B * I * sizeof(float));
		}
		nn_linear_backward(dinp, grad + W->offset, grad + b->offset, d, in, W->w, (int)B,
				   (int)I, (int)O);
		d = dinp;
	}
}

double mlp_flops(const struct mlp *m)
{
	double f = 0;
	uint32_t I = m->in;

	for (int i = 0; i < m->n; i++) {
		f += 2.0 * I * m->width[i];
		I = m->width[i];
	}
	return f;
}
