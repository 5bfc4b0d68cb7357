#include "blocks.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "nn/nn.h"

/* params_add / params_add_state with the name "<prefix>.<what>". */
static int add(struct params *p, const char *prefix, const char *what, uint32_t rows, uint32_t cols,
	       enum param_init init, float scale, int state)
{
	char name[PARAM_NAME_MAX];

	if ((size_t)snprintf(name, sizeof(name), "%s.%s", prefix, what) >= sizeof(name))
		return hr_error(HR_EINVAL, "tensor name '%s.%s' too long", prefix, what);
	return state ? params_add_state(p, name, rows, cols, init) :
		       params_add(p, name, rows, cols, 0, init, scale);
}

/* Declares an activation's tensors for width w at "<prefix>.<l>": alpha, and
 * Dice's running statistics. */
static int add_act(struct params *p, const char *prefix, int l, uint32_t w, enum nn_attn_act act,
		   int *alpha, int *mean, int *var)
{
	char what[32];

	*alpha = *mean = *var = -1;
	if (act == NN_ATTN_RELU)
		return 0;
	snprintf(what, sizeof(what), "%d.alpha", l);
	*alpha = act == NN_ATTN_DICE ? add(p, prefix, what, 1, w, INIT_ZERO, 0, 0) :
				       add(p, prefix, what, 1, w, INIT_CONST, 0.25f, 0);
	if (*alpha < 0 || act != NN_ATTN_DICE)
		return *alpha < 0 ? *alpha : 0;
	snprintf(what, sizeof(what), "%d.dice.mean", l);
	*mean = add(p, prefix, what, 1, w, INIT_ZERO, 0, 1);
	snprintf(what, sizeof(what), "%d.dice.var", l);
	*var = add(p, prefix, what, 1, w, INIT_ONE, 0, 1);
	return *mean < 0 ? *mean : *var < 0 ? *var : 0;
}

/* ---- DNN ---------------------------------------------------------------- */

int dnn_declare(struct dnn *d, struct params *p, const char *prefix, uint32_t in,
		const uint32_t *widths, int n, enum nn_attn_act act, int bn)
{
	uint32_t prev = in;
	char what[32];
	int rc;

	memset(d, 0, sizeof(*d));
	if (n < 1 || n > DNN_MAX_LAYERS || in == 0)
		return hr_error(HR_EINVAL, "%s: %d hidden layers on %u inputs (1 .. %d layers)",
				prefix, n, in, DNN_MAX_LAYERS);
	d->in = d->maxw = in;
	d->n = (uint32_t)n;
	d->act = act;
	d->bn = bn;
	for (int l = 0; l < n; l++) {
		uint32_t w = widths[l];
		d->width[l] = w;
		if (w > d->maxw)
			d->maxw = w;
		snprintf(what, sizeof(what), "%d.w", l);
		d->w[l] = add(p, prefix, what, w, prev, INIT_XAVIER, 0, 0);
		/* no bias before a BatchNorm: its shift would cancel it */
		snprintf(what, sizeof(what), "%d.b", l);
		d->b[l] = bn ? -1 : add(p, prefix, what, 1, w, INIT_ZERO, 0, 0);
		if (d->w[l] < 0 || (!bn && d->b[l] < 0))
			return d->w[l] < 0 ? d->w[l] : d->b[l];
		d->gamma[l] = d->beta[l] = d->bn_mean[l] = d->bn_var[l] = -1;
		if (bn) {
			snprintf(what, sizeof(what), "%d.bn.gamma", l);
			d->gamma[l] = add(p, prefix, what, 1, w, INIT_ONE, 0, 0);
			snprintf(what, sizeof(what), "%d.bn.beta", l);
			d->beta[l] = add(p, prefix, what, 1, w, INIT_ZERO, 0, 0);
			snprintf(what, sizeof(what), "%d.bn.mean", l);
			d->bn_mean[l] = add(p, prefix, what, 1, w, INIT_ZERO, 0, 1);
			snprintf(what, sizeof(what), "%d.bn.var", l);
			d->bn_var[l] = add(p, prefix, what, 1, w, INIT_ONE, 0, 1);
			if (d->gamma[l] < 0 || d->beta[l] < 0 || d->bn_mean[l] < 0 ||
			    d->bn_var[l] < 0)
				return HR_EINVAL;
		}
		rc = add_act(p, prefix, l, w, act, &d->alpha[l], &d->act_mean[l], &d->act_var[l]);
		if (rc)
			return rc;
		prev = w;
	}
	d->wo = add(p, prefix, "out.w", 1, prev, INIT_XAVIER, 0, 0);
	d->bo = add(p, prefix, "out.b", 1, 1, INIT_ZERO, 0, 0);
	return d->wo < 0 ? d->wo : d->bo < 0 ? d->bo : 0;
}

/* Layout of a DNN's workspace for B rows. */
struct dnn_ws {
	float *z[DNN_MAX_LAYERS];                       /* (B, w_l) Linear out */
	float *y[DNN_MAX_LAYERS];                       /* (B, w_l) BatchNorm out (= z without) */
	float *a[DNN_MAX_LAYERS];                       /* (B, w_l) activation out */
	float *bm[DNN_MAX_LAYERS], *br[DNN_MAX_LAYERS]; /* (w_l) BatchNorm cache */
	float *am[DNN_MAX_LAYERS], *ar[DNN_MAX_LAYERS]; /* (w_l) Dice cache */
	float *g1, *g2, *g3;                            /* (B, maxw) backward scratch */
};

static size_t dnn_layout(const struct dnn *d, uint32_t B, float *base, struct dnn_ws *w)
{
	size_t o = 0;
#define PUT(f, k) (w->f = base ? base + o : NULL, o += ((k) + 15) & ~(size_t)15)
	for (uint32_t l = 0; l < d->n; l++) {
		size_t n = (size_t)B * d->width[l];
		PUT(z[l], n);
		if (d->bn)
			PUT(y[l], n);
		else
			w->y[l] = w->z[l];
		PUT(a[l], n);
		PUT(bm[l], d->width[l]);
		PUT(br[l], d->width[l]);
		PUT(am[l], d->width[l]);
		PUT(ar[l], d->width[l]);
	}
	PUT(g1, (size_t)B * d->maxw);
	PUT(g2, (size_t)B * d->maxw);
	PUT(g3, (size_t)B * d->maxw);
#undef PUT
	return o;
}

size_t dnn_ws_floats(const struct dnn *d, uint32_t B)
{
	struct dnn_ws w;

	return dnn_layout(d, B, NULL, &w);
}

static float *tw(const struct params *p, int i)
{
	return i >= 0 ? p->t[i].w : NULL;
}

static float *gw(const struct params *p, float *grad, int i)
{
	return i >= 0 ? grad + p->t[i].offset : NULL;
}

void dnn_forward(const struct dnn *d, const struct params *p, float *ws, const float *x,
		 float *logits, uint32_t B, int train)
{
	struct dnn_ws w;
	const float *in = x;
	uint32_t prev = d->in, wn = d->width[d->n - 1];
	const float *wo = tw(p, d->wo), bo = tw(p, d->bo)[0];

	dnn_layout(d, B, ws, &w);
	for (uint32_t l = 0; l < d->n; l++) {
		int W = (int)d->width[l];
		nn_linear_forward(w.z[l], in, tw(p, d->w[l]), tw(p, d->b[l]), (int)B, (int)prev, W);
		if (d->bn) {
			float *rm = tw(p, d->bn_mean[l]), *rv = tw(p, d->bn_var[l]);
			nn_batchnorm_forward(w.y[l], w.bm[l], w.br[l], w.z[l], tw(p, d->gamma[l]),
					     tw(p, d->beta[l]), rm, rv, DNN_BN_EPS, train, (int)B,
					     W);
			if (train) /* shared state, written racily by the workers (nn.h) */
				nn_running_stats_update(rm, rv, w.bm[l], w.br[l], DNN_BN_EPS,
							DNN_MOMENTUM, (int)B, W);
		}
		switch (d->act) {
		case NN_ATTN_DICE: {
			float *rm = tw(p, d->act_mean[l]), *rv = tw(p, d->act_var[l]);
			nn_attn_dice_forward(w.a[l], w.am[l], w.ar[l], w.y[l], tw(p, d->alpha[l]),
					     rm, rv, DNN_DICE_EPS, train, (int)B, W);
			if (train)
				nn_running_stats_update(rm, rv, w.am[l], w.ar[l], DNN_DICE_EPS,
							DNN_MOMENTUM, (int)B, W);
			break;
		}
		case NN_ATTN_PRELU:
			nn_prelu_forward(w.a[l], w.y[l], tw(p, d->alpha[l]), (int)B, W);
			break;
		case NN_ATTN_RELU: nn_relu_forward(w.a[l], w.y[l], (int)B * W); break;
		}
		in = w.a[l];
		prev = d->width[l];
	}
	for (uint32_t r = 0; r < B; r++)
		logits[r] = nn_dotf(in + (size_t)r * wn, wo, (int)wn) + bo;
}

void dnn_backward(const struct dnn *d, const struct params *p, float *ws, const float *x,
		  const float *dlogits, float *dx, float *grad, uint32_t B, int train)
{
	struct dnn_ws w;
	uint32_t wn = d->width[d->n - 1];
	const float *wo = tw(p, d->wo);
	float *gwo = grad + p->t[d->wo].offset, *gbo = grad + p->t[d->bo].offset;
	float *da, *dy, *dz;

	dnn_layout(d, B, ws, &w);
	da = w.g1;
	dy = w.g2;
	dz = d->bn ? w.g3 : w.g2;
	for (uint32_t r = 0; r < B; r++) {
		const float *a = w.a[d->n - 1] + (size_t)r * wn;
		float *g = da + (size_t)r * wn, gl = dlogits[r];
		for (uint32_t h = 0; h < wn; h++) {
			g[h] = gl * wo[h];
			gwo[h] += gl * a[h];
		}
		gbo[0] += gl;
	}
	for (int l = (int)d->n - 1; l >= 0; l--) {
		int W = (int)d->width[l];
		uint32_t I = l ? d->width[l - 1] : d->in;
		size_t n = (size_t)B * (size_t)W;
		float *galpha = d->alpha[l] >= 0 ? grad + p->t[d->alpha[l]].offset : NULL;

		memset(dy, 0, n * sizeof(float));
		switch (d->act) {
		case NN_ATTN_DICE:
			nn_attn_dice_backward(dy, galpha, da, w.y[l], w.am[l], w.ar[l],
					      tw(p, d->alpha[l]), train, (int)B, W);
			break;
		case NN_ATTN_PRELU:
			nn_prelu_backward(dy, galpha, da, w.y[l], tw(p, d->alpha[l]), (int)B, W);
			break;
		case NN_ATTN_RELU: nn_relu_backward(dy, da, w.a[l], (int)B * W); break;
		}
		if (d->bn) {
			memset(dz, 0, n * sizeof(float));
			nn_batchnorm_backward(dz, grad + p->t[d->gamma[l]].offset,
					      grad + p->t[d->beta[l]].offset, dy, w.z[l], w.bm[l],
					      w.br[l], tw(p, d->gamma[l]), train, (int)B, W);
		}
		float *din = l ? da : dx;
		if (l)
			memset(da, 0, (size_t)B * I * sizeof(float));
		nn_linear_backward(din, grad + p->t[d->w[l]].offset, gw(p, grad, d->b[l]), dz,
				   l ? w.a[l - 1] : x, tw(p, d->w[l]), (int)B, (int)I, W);
	}
}

double dnn_flops(const struct dnn *d)
{
	double f = 0;
	uint32_t prev = d->in;

	for (uint32_t l = 0; l < d->n; l++) {
		f += 2.0 * prev * d->width[l];
		prev = d->width[l];
	}
	return f + 2.0 * prev;
}

/* ---- attention unit ------------------------------------------------------ */

int attn_block_declare(struct attn_block *a, struct params *p, const char *prefix, int D,
		       const uint32_t *H, int n, enum nn_attn_act act, int out_bias)
{
	uint32_t prev = 4 * (uint32_t)D;
	char what[32];
	int rc;

	memset(a, 0, sizeof(*a));
	if (n < 1 || n > NN_ATTN_MAX_LAYERS || D < 1)
		return hr_error(HR_EINVAL, "%s: %d hidden layers (1 .. %d) on width %d", prefix, n,
				NN_ATTN_MAX_LAYERS, D);
	a->s.D = D;
	a->s.n = n;
	a->s.act = act;
	a->s.eps = DNN_DICE_EPS;
	for (int l = 0; l < n; l++) {
		a->s.H[l] = (int)H[l];
		snprintf(what, sizeof(what), "%d.w", l);
		a->W[l] = add(p, prefix, what, H[l], prev, INIT_XAVIER, 0, 0);
		snprintf(what, sizeof(what), "%d.b", l);
		a->b[l] = add(p, prefix, what, 1, H[l], INIT_ZERO, 0, 0);
		if (a->W[l] < 0 || a->b[l] < 0)
			return a->W[l] < 0 ? a->W[l] : a->b[l];
		rc = add_act(p, prefix, l, H[l], act, &a->alpha[l], &a->mean[l], &a->var[l]);
		if (rc)
			return rc;
		prev = H[l];
	}
	a->wo = add(p, prefix, "out.w", 1, prev, INIT_XAVIER, 0, 0);
	a->bo = out_bias ? add(p, prefix, "out.b", 1, 1, INIT_ZERO, 0, 0) : -1;
	return a->wo < 0 ? a->wo : (out_bias && a->bo < 0) ? a->bo : 0;
}

void attn_block_params(const struct attn_block *a, const struct params *p,
		       struct nn_attn_params *out)
{
	memset(out, 0, sizeof(*out));
	for (int l = 0; l < a->s.n; l++) {
		out->W[l] = tw(p, a->W[l]);
		out->b[l] = tw(p, a->b[l]);
		out->alpha[l] = tw(p, a->alpha[l]);
		out->run_mean[l] = tw(p, a->mean[l]);
		out->run_var[l] = tw(p, a->var[l]);
	}
	out->w_out = tw(p, a->wo);
	out->b_out = tw(p, a->bo);
}

void attn_block_grads(const struct attn_block *a, const struct params *p, float *grad,
		      struct nn_attn_grads *out)
{
	memset(out, 0, sizeof(*out));
	for (int l = 0; l < a->s.n; l++) {
		out->W[l] = gw(p, grad, a->W[l]);
		out->b[l] = gw(p, grad, a->b[l]);
		out->alpha[l] = gw(p, grad, a->alpha[l]);
	}
	out->w_out = gw(p, grad, a->wo);
	out->b_out = gw(p, grad, a->bo);
}

void attn_block_update_stats(const struct attn_block *a, const struct params *p, const float *ws,
			     int B, int N)
{
	float *rm[NN_ATTN_MAX_LAYERS] = {0}, *rv[NN_ATTN_MAX_LAYERS] = {0};

	if (a->s.act != NN_ATTN_DICE)
		return;
	for (int l = 0; l < a->s.n; l++) {
		rm[l] = tw(p, a->mean[l]);
		rv[l] = tw(p, a->var[l]);
	}
	nn_attn_update_stats(rm, rv, ws, &a->s, DNN_MOMENTUM, B, N);
}

double attn_block_flops(const struct attn_block *a)
{
	double f = 2.0 * 2 * a->s.D * a->s.H[0];

	for (int l = 1; l < a->s.n; l++)
		f += 2.0 * a->s.H[l - 1] * a->s.H[l];
	return f + 2.0 * a->s.H[a->s.n - 1];
}
