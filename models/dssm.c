/*
 * dssm - the DNN two-tower model: a user tower and an item tower, each an
 * MLP, scored by the dot product of their outputs.
 *
 * User tower input (B, 6E + 2):
 *   [E_user[u] | E_gender | E_age | E_occupation | E_zip
 *    | mean over the history of E_item[h] | user_log_count, user_pos_rate]
 * Item tower input (B, 2E + 2):
 *   [E_item[i] | mean over the item's genres of E_genre | item_log_count, item_pos_rate]
 * logit = <tower_u(x_u), tower_i(x_i)>
 *
 * History items share the item embedding table with the item tower.  The
 * towers' last layers are linear (no ReLU).
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fields.h"
#include "mlp.h"
#include "model.h"
#include "nn/nn.h"

struct dssm {
	uint32_t E, L, uin, iin;
	int t[F_N];
	struct mlp ut, it;
};

static const uint32_t dssm_hidden[] = {300, 300, 128, 0};

static int dssm_init(struct model *m, const struct store_info *info)
{
	struct dssm *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = d;
	if (info->n_dense != 4)
		return hr_error(HR_EINVAL,
				"model 'dssm' expects the 4 dense fields of format 1, "
				"the store has %u",
				info->n_dense);
	d->E = m->cfg.emb_dim;
	d->L = info->hist_len;
	rc = fields_declare(&m->params, info, d->E, INIT_NORMAL, 0.05f, d->t);
	if (rc)
		return rc;
	d->uin = 6 * d->E + 2;
	d->iin = 2 * d->E + 2;
	rc = mlp_declare(&d->ut, &m->params, "user_tower", d->uin, m->cfg.hidden, m->cfg.n_hidden,
			 0);
	if (!rc)
		rc = mlp_declare(&d->it, &m->params, "item_tower", d->iin, m->cfg.hidden,
				 m->cfg.n_hidden, 0);
	return rc;
}

static void dssm_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

/* Workspace layout, in floats. */
struct dssm_ws {
	float *xu, *xi, *dxu, *dxi; /* (B, uin), (B, iin) and their gradients */
	float *pool, *dpool;        /* (B, E) pooled bag and its gradient */
	float *dslots;              /* (B, max(L, BATCH_GENRES), E) */
	float *du, *dv;             /* (B, D) tower output gradients */
	float *uws, *iws;           /* tower workspaces */
};

static size_t dssm_layout(const struct dssm *d, uint32_t B, float *base, struct dssm_ws *w)
{
	size_t o = 0, S = d->L > BATCH_GENRES ? d->L : BATCH_GENRES;
	uint32_t D = mlp_out_width(&d->ut);
#define PUT(f, n) (w->f = base ? base + o : NULL, o += (n))
	PUT(xu, (size_t)B * d->uin);
	PUT(xi, (size_t)B * d->iin);
	PUT(dxu, (size_t)B * d->uin);
	PUT(dxi, (size_t)B * d->iin);
	PUT(pool, (size_t)B * d->E);
	PUT(dpool, (size_t)B * d->E);
	PUT(dslots, (size_t)B * S * d->E);
	PUT(du, (size_t)B * D);
	PUT(dv, (size_t)B * D);
	PUT(uws, mlp_ws_floats(&d->ut, B));
	PUT(iws, mlp_ws_floats(&d->it, B));
#undef PUT
	return o;
}

static size_t dssm_ws_floats(const struct model *m, uint32_t B)
{
	struct dssm_ws w;

	return dssm_layout(m->impl, B, NULL, &w);
}

static void put_cols(float *x, size_t s, size_t col, const float *src, uint32_t B, uint32_t E)
{
	for (uint32_t r = 0; r < B; r++)
		memcpy(x + r * s + col, src + (size_t)r * E, E * sizeof(float));
}

static void get_cols(float *dst, const float *x, size_t s, size_t col, uint32_t B, uint32_t E)
{
	for (uint32_t r = 0; r < B; r++)
		memcpy(dst + (size_t)r * E, x + r * s + col, E * sizeof(float));
}

/* The user tower's input rows into w->xu and its output (B, D). */
static const float *user_tower(const struct model *m, const struct dssm_ws *w,
			       const struct batch *b)
{
	const struct dssm *d = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = d->E, L = d->L;

	fields_gather(w->xu, d->uin, 0, p->t[d->t[F_USER]].w, b->user, B, E);
	fields_gather(w->xu, d->uin, E, p->t[d->t[F_GENDER]].w, b->gender, B, E);
	fields_gather(w->xu, d->uin, 2 * E, p->t[d->t[F_AGE]].w, b->age, B, E);
	fields_gather(w->xu, d->uin, 3 * E, p->t[d->t[F_OCC]].w, b->occupation, B, E);
	fields_gather(w->xu, d->uin, 4 * E, p->t[d->t[F_ZIP]].w, b->zip, B, E);
	nn_bag_forward(w->pool, NULL, b->hist, b->n_hist, p->t[d->t[F_ITEM]].w, NN_POOL_MEAN,
		       (int)B, (int)L, (int)p->t[d->t[F_ITEM]].rows, (int)E);
	put_cols(w->xu, d->uin, 5 * E, w->pool, B, E);
	for (uint32_t r = 0; r < B; r++) {
		const float *dn = b->dense + (size_t)r * b->n_dense;
		w->xu[(size_t)r * d->uin + 6 * E] = dn[0];
		w->xu[(size_t)r * d->uin + 6 * E + 1] = dn[1];
	}
	return mlp_forward(&d->ut, p, w->uws, w->xu, B);
}

/* The item tower's input rows into w->xi and its output (B, D). */
static const float *item_tower(const struct model *m, const struct dssm_ws *w,
			       const struct batch *b)
{
	const struct dssm *d = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = d->E;

	fields_gather(w->xi, d->iin, 0, p->t[d->t[F_ITEM]].w, b->item, B, E);
	nn_bag_forward(w->pool, NULL, b->genres, b->n_genres, p->t[d->t[F_GENRE]].w, NN_POOL_MEAN,
		       (int)B, BATCH_GENRES, (int)p->t[d->t[F_GENRE]].rows, (int)E);
	put_cols(w->xi, d->iin, E, w->pool, B, E);
	for (uint32_t r = 0; r < B; r++) {
		const float *dn = b->dense + (size_t)r * b->n_dense;
		w->xi[(size_t)r * d->iin + 2 * E] = dn[2];
		w->xi[(size_t)r * d->iin + 2 * E + 1] = dn[3];
	}
	return mlp_forward(&d->it, p, w->iws, w->xi, B);
}

static void dssm_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
			 int train)
{
	const struct dssm *d = m->impl;
	struct dssm_ws w;

	(void)train;
	dssm_layout(d, b->n, ws, &w);
	const float *u = user_tower(m, &w, b), *v = item_tower(m, &w, b);
	nn_dot_forward(logits, u, v, (int)b->n, (int)mlp_out_width(&d->ut));
}

/* Retrieval (model_ops.user_vectors, item_vectors): the towers' outputs alone. */
static uint32_t dssm_dim(const struct model *m)
{
	return mlp_out_width(&((const struct dssm *)m->impl)->ut);
}

static void dssm_user_vectors(const struct model *m, float *ws, const struct batch *b, float *out)
{
	struct dssm_ws w;

	dssm_layout(m->impl, b->n, ws, &w);
	memcpy(out, user_tower(m, &w, b), (size_t)b->n * dssm_dim(m) * sizeof(float));
}

static void dssm_item_vectors(const struct model *m, float *ws, const struct batch *b, float *out)
{
	struct dssm_ws w;

	dssm_layout(m->impl, b->n, ws, &w);
	memcpy(out, item_tower(m, &w, b), (size_t)b->n * dssm_dim(m) * sizeof(float));
}

static void dssm_backward(const struct model *m, float *ws, const struct batch *b,
			  const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const struct dssm *d = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = d->E, D = mlp_out_width(&d->ut);
	struct dssm_ws w;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	const float *u, *v; /* the towers' outputs, where the forward left them */

	dssm_layout(d, B, ws, &w);
	u = mlp_output(&d->ut, w.uws, B);
	v = mlp_output(&d->it, w.iws, B);
	memset(w.du, 0, (size_t)B * D * sizeof(float));
	memset(w.dv, 0, (size_t)B * D * sizeof(float));
	nn_dot_backward(w.du, w.dv, dlogits, u, v, (int)B, (int)D);
	memset(w.dxu, 0, (size_t)B * d->uin * sizeof(float));
	memset(w.dxi, 0, (size_t)B * d->iin * sizeof(float));
	mlp_backward(&d->ut, p, w.uws, w.xu, w.du, w.dxu, grad, B);
	mlp_backward(&d->it, p, w.iws, w.xi, w.dv, w.dxi, grad, B);
	for (int k = 0; k < 5; k++)
		for (uint32_t r = 0; r < B; r++)
			sparse_grad_add(&sg[d->t[tabs[k]]], ids[k][r],
					w.dxu + (size_t)r * d->uin + (size_t)k * E);
	get_cols(w.dpool, w.dxu, d->uin, 5 * E, B, E);
	fields_bag_grads(&sg[d->t[F_ITEM]], w.dslots, w.dpool, b->hist, b->n_hist, B, d->L, E);
	for (uint32_t r = 0; r < B; r++)
		sparse_grad_add(&sg[d->t[F_ITEM]], b->item[r], w.dxi + (size_t)r * d->iin);
	get_cols(w.dpool, w.dxi, d->iin, E, B, E);
	fields_bag_grads(&sg[d->t[F_GENRE]], w.dslots, w.dpool, b->genres, b->n_genres, B,
			 BATCH_GENRES, E);
}

static double dssm_flops(const struct model *m)
{
	const struct dssm *d = m->impl;

	return mlp_flops(&d->ut) + mlp_flops(&d->it) + 2.0 * mlp_out_width(&d->ut);
}

const struct model_ops model_dssm = {
	.name = "dssm",
	.summary = "DNN two-tower: user and item MLP towers scored by a dot product",
	.needs = NEEDS_DEMOGRAPHICS | NEEDS_HISTORY | NEEDS_DENSE | NEEDS_GENRES,
	.default_hidden = dssm_hidden,
	.init = dssm_init,
	.release = dssm_release,
	.workspace_floats = dssm_ws_floats,
	.forward = dssm_forward,
	.backward = dssm_backward,
	.flops_forward = dssm_flops,
	.vector_dim = dssm_dim,
	.user_vectors = dssm_user_vectors,
	.item_vectors = dssm_item_vectors,
};
