/*
 * gmf - Generalized Matrix Factorization, NCF's GMF branch (He et al.
 * 2017, §3.2): the element-wise product of a user and an item embedding
 * through one linear output.
 *
 *   g     = E_user[u] * E_item[i]        (B, E)  element-wise
 *   logit = g w + b                      (B)     w (1, E), b (1, 1)
 *
 * The tables are N(0, 0.05^2) with row 0 zero (as ncf's and neumf's), the
 * output layer Xavier-uniform.  Trained alone it is a model of its own;
 * its tensors are also what neumf's GMF branch starts from (--init-from,
 * models/neumf.c).  No hidden layers: --hidden must be empty.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "mlp.h"
#include "model.h"
#include "nn/nn.h"

struct gmf {
	uint32_t E;
	int user_t, item_t;
	struct mlp out; /* E -> 1, linear */
};

static const uint32_t gmf_hidden[] = {0};

static int gmf_init(struct model *m, const struct store_info *info)
{
	static const uint32_t one[] = {1};
	struct gmf *g = calloc(1, sizeof(*g));

	if (!g)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = g;
	if (m->cfg.n_hidden)
		return hr_error(HR_EINVAL,
				"model 'gmf' has no hidden layers: leave out --hidden (%d width%s "
				"given)",
				m->cfg.n_hidden, m->cfg.n_hidden == 1 ? "" : "s");
	g->E = m->cfg.emb_dim;
	g->user_t = params_add(&m->params, "user_emb", info->vocab[SF_USER], g->E, 1, INIT_NORMAL,
			       0.05f);
	g->item_t = params_add(&m->params, "item_emb", info->vocab[SF_ITEM], g->E, 1, INIT_NORMAL,
			       0.05f);
	if (g->user_t < 0 || g->item_t < 0)
		return g->user_t < 0 ? g->user_t : g->item_t;
	m->params.t[g->user_t].lookups = 1;
	m->params.t[g->item_t].lookups = 1;
	m->params.t[g->user_t].vocab = SF_USER;
	m->params.t[g->item_t].vocab = SF_ITEM;
	return mlp_declare(&g->out, &m->params, "out", g->E, one, 1, 0);
}

static void gmf_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

/* Workspace layout, in floats. */
struct gmf_ws {
	float *g, *dg; /* (B, E) the product and its gradient */
	float *row;    /* (E) one table row's gradient */
	float *ows;    /* the output layer's */
};

static size_t gmf_layout(const struct gmf *g, uint32_t B, float *base, struct gmf_ws *w)
{
	size_t o = 0;
#define PUT(f, k) (w->f = base ? base + o : NULL, o += (k))
	PUT(g, (size_t)B * g->E);
	PUT(dg, (size_t)B * g->E);
	PUT(row, g->E);
	PUT(ows, mlp_ws_floats(&g->out, B));
#undef PUT
	return o;
}

static size_t gmf_ws_floats(const struct model *m, uint32_t B)
{
	struct gmf_ws w;

	return gmf_layout(m->impl, B, NULL, &w);
}

static void gmf_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
			int train)
{
	const struct gmf *g = m->impl;
	const struct params *p = &m->params;
	const float *U = p->t[g->user_t].w, *I = p->t[g->item_t].w, *out;
	uint32_t B = b->n, E = g->E;
	struct gmf_ws w;

	(void)train;
	gmf_layout(g, B, ws, &w);
	for (uint32_t r = 0; r < B; r++) {
		const float *u = U + (size_t)b->user[r] * E, *i = I + (size_t)b->item[r] * E;
		float *z = w.g + (size_t)r * E;
		for (uint32_t e = 0; e < E; e++)
			z[e] = u[e] * i[e];
	}
	out = mlp_forward(&g->out, p, w.ows, w.g, B);
	memcpy(logits, out, B * sizeof(float));
}

static void gmf_backward(const struct model *m, float *ws, const struct batch *b,
			 const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const struct gmf *g = m->impl;
	const struct params *p = &m->params;
	const float *U = p->t[g->user_t].w, *I = p->t[g->item_t].w;
	uint32_t B = b->n, E = g->E;
	struct gmf_ws w;

	gmf_layout(g, B, ws, &w);
	memset(w.dg, 0, (size_t)B * E * sizeof(float));
	mlp_backward(&g->out, p, w.ows, w.g, dlogits, w.dg, grad, B);
	for (uint32_t r = 0; r < B; r++) {
		const float *dg = w.dg + (size_t)r * E;
		const float *u = U + (size_t)b->user[r] * E, *i = I + (size_t)b->item[r] * E;
		for (uint32_t e = 0; e < E; e++) /* d(u * i)/du = i */
			w.row[e] = dg[e] * i[e];
		sparse_grad_add(&sg[g->user_t], b->user[r], w.row);
		for (uint32_t e = 0; e < E; e++)
			w.row[e] = dg[e] * u[e];
		sparse_grad_add(&sg[g->item_t], b->item[r], w.row);
	}
}

static double gmf_flops(const struct model *m)
{
	const struct gmf *g = m->impl;

	return mlp_flops(&g->out) + (double)g->E;
}

const struct model_ops model_gmf = {
	.name = "gmf",
	.summary = "GMF: the element-wise product of user and item embeddings, one linear layer",
	.needs = 0,
	.default_hidden = gmf_hidden,
	.options = model_negative_options,
	.n_options = 2,
	.wants = model_negative_wants,
	.init = gmf_init,
	.release = gmf_release,
	.workspace_floats = gmf_ws_floats,
	.forward = gmf_forward,
	.backward = gmf_backward,
	.flops_forward = gmf_flops,
};
