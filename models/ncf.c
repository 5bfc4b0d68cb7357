/*
 * ncf - NCF's MLP branch (He et al. 2017): user and item embeddings,
 * concatenated, through an MLP with ReLU to one logit.
 *
 *   x   = [E_user[u] | E_item[i]]        (B, 2E)
 *   h   = MLP(x), widths hidden..., 1    (B, 1) = logits
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "mlp.h"
#include "model.h"
#include "nn/nn.h"

struct ncf {
	uint32_t E;
	int user_t, item_t;
	struct mlp mlp;
};

static const uint32_t ncf_hidden[] = {64, 32, 16, 0};

static int ncf_init(struct model *m, const struct store_info *info)
{
	struct ncf *n = calloc(1, sizeof(*n));
	uint32_t widths[MODEL_MAX_HIDDEN + 1];
	int rc;

	if (!n)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = n;
	n->E = m->cfg.emb_dim;
	n->user_t = params_add(&m->params, "user_emb", info->vocab[SF_USER], n->E, 1, INIT_NORMAL,
			       0.05f);
	n->item_t = params_add(&m->params, "item_emb", info->vocab[SF_ITEM], n->E, 1, INIT_NORMAL,
			       0.05f);
	if (n->user_t < 0 || n->item_t < 0)
		return n->user_t < 0 ? n->user_t : n->item_t;
	m->params.t[n->user_t].lookups = 1;
	m->params.t[n->item_t].lookups = 1;
	m->params.t[n->user_t].vocab = SF_USER;
	m->params.t[n->item_t].vocab = SF_ITEM;
	memcpy(widths, m->cfg.hidden, (size_t)m->cfg.n_hidden * sizeof(uint32_t));
	widths[m->cfg.n_hidden] = 1;
	rc = mlp_declare(&n->mlp, &m->params, "mlp", 2 * n->E, widths, m->cfg.n_hidden + 1, 0);
	return rc;
}

static void ncf_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

/* ws: x (B, 2E) | dx (B, 2E) | mlp workspace */
static size_t ncf_ws(const struct model *m, uint32_t B)
{
	const struct ncf *n = m->impl;

	return 4 * (size_t)B * n->E + mlp_ws_floats(&n->mlp, B);
}

static void ncf_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
			int train)
{
	const struct ncf *n = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = n->E;
	float *x = ws, *out;
	const float *U = p->t[n->user_t].w, *I = p->t[n->item_t].w;

	(void)train;
	for (uint32_t r = 0; r < B; r++) {
		memcpy(x + (size_t)r * 2 * E, U + (size_t)b->user[r] * E, E * sizeof(float));
		memcpy(x + (size_t)r * 2 * E + E, I + (size_t)b->item[r] * E, E * sizeof(float));
	}
	out = mlp_forward(&n->mlp, p, ws + 4 * (size_t)B * E, x, B);
	memcpy(logits, out, B * sizeof(float));
}

static void ncf_backward(const struct model *m, float *ws, const struct batch *b,
			 const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const struct ncf *n = m->impl;
	uint32_t B = b->n, E = n->E;
	float *x = ws, *dx = ws + 2 * (size_t)B * E;

	memset(dx, 0, 2 * (size_t)B * E * sizeof(float));
	mlp_backward(&n->mlp, &m->params, ws + 4 * (size_t)B * E, x, dlogits, dx, grad, B);
	for (uint32_t r = 0; r < B; r++) {
		sparse_grad_add(&sg[n->user_t], b->user[r], dx + (size_t)r * 2 * E);
		sparse_grad_add(&sg[n->item_t], b->item[r], dx + (size_t)r * 2 * E + E);
	}
}

static double ncf_flops(const struct model *m)
{
	return mlp_flops(&((const struct ncf *)m->impl)->mlp);
}

const struct model_ops model_ncf = {
	.name = "ncf",
	.summary = "NCF-MLP: user and item embeddings concatenated into an MLP",
	.needs = 0,
	.default_hidden = ncf_hidden,
	.options = model_negative_options,
	.n_options = 2,
	.wants = model_negative_wants,
	.init = ncf_init,
	.release = ncf_release,
	.workspace_floats = ncf_ws,
	.forward = ncf_forward,
	.backward = ncf_backward,
	.flops_forward = ncf_flops,
};
