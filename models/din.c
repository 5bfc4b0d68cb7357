/*
 * din - Deep Interest Network (Zhou et al. 2018; DeepCTR-Torch's DIN):
 * the user's history pooled by attention against the candidate, then an
 * MLP over every feature to one logit, trained with BCE on the labels.
 *
 * Embeddings (width E): user, gender, age, occupation, zip, item, genre.
 * An item's representation is [E_item[i] | mean of E_genre over i's
 * genres] (2E): the candidate's genres come from its record, a history
 * item's from the items table (store/items.h, by id; records do not copy
 * them).  History items share the item and genre tables with the
 * candidate.
 *
 *   q     = the candidate's representation                     (B, 2E)
 *   k_t   = history item t's representation, for the last hist_window items
 *           of the history (all with 0)                        (N, 2E) packed
 *   s_t   = attention unit (models/nn/attn.h) of (q, k_t)
 *   w_t   = s_t, or the softmax of s over the row's history (att_softmax)
 *   pool  = sum_t w_t k_t                                        (B, 2E)
 *   x     = [user | gender | age | occupation | zip | pool | q | dense]
 *                                                                (B, 9E + n_dense)
 *   logit = DNN(x): per --hidden width Linear -> [BatchNorm] -> activation,
 *           then a linear output unit (models/blocks.h)
 *
 * Dense features enter as their (scaled) values, as DeepCTR's
 * combined_dnn_input.  Padding never enters the attention (packed
 * positions); an empty history pools to zeros.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "common/err.h"
#include "common/simd.h"
#include "fields.h"
#include "model.h"
#include "nn/attn.h"
#include "nn/nn.h"
#include "store/items.h"

enum {
	OPT_ATT_ACT,
	OPT_ATT_SOFTMAX,
	OPT_ATT_H,
	OPT_ATT_H_SECOND,
	OPT_DNN_ACT,
	OPT_DNN_BN,
	OPT_WINDOW,
	OPT_N
};

/* In enum nn_attn_act's order. */
static const char *const act_names[] = {"dice", "prelu", "relu", NULL};

static const struct model_option din_options[OPT_N] = {
	[OPT_ATT_ACT] = {"att_activation", MOPT_ENUM, 0, 0, NN_ATTN_DICE, act_names,
			 "activation of the attention unit's hidden layers"},
	[OPT_ATT_SOFTMAX] = {"att_softmax", MOPT_BOOL, 0, 1, 0, NULL,
			     "normalise the attention scores by a softmax over the history "
			     "(DeepCTR's weight_normalization); no: raw scores"},
	[OPT_ATT_H] = {"att_hidden", MOPT_INT, 1, 1024, 64, NULL,
		       "the attention unit's first hidden width"},
	[OPT_ATT_H_SECOND] = {"att_hidden_second", MOPT_INT, 0, 1024, 16, NULL,
			      "the attention unit's second hidden width (0: one hidden layer)"},
	[OPT_DNN_ACT] = {"dnn_activation", MOPT_ENUM, 0, 0, NN_ATTN_DICE, act_names,
			 "activation of the MLP's hidden layers"},
	[OPT_DNN_BN] = {"dnn_bn", MOPT_BOOL, 0, 1, 0, NULL,
			"BatchNorm after each MLP layer's Linear, before its activation"},
	[OPT_WINDOW] = {"hist_window", MOPT_INT, 0, 1000, 0, NULL,
			"the most recent history items attended (0: the whole history)"},
};

struct din {
	uint32_t E, L, D, xin, n_dense;
	uint32_t window;   /* history items attended, the most recent; <= L */
	uint32_t n_genres; /* the genre vocabulary */
	int t[F_N];
	int softmax;
	struct attn_block att;
	struct dnn mlp;
	/* training positions and rows seen: the mean history length for flops */
	_Atomic uint64_t pos_seen, rows_seen;
};

static const uint32_t din_hidden[] = {256, 128, 0};

static int din_init(struct model *m, const struct store_info *info)
{
	struct din *d = calloc(1, sizeof(*d));
	uint32_t H[2];
	int rc;

	if (!d)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = d;
	if (m->cfg.n_hidden > DNN_MAX_LAYERS)
		return hr_error(HR_EINVAL, "model 'din': at most %d hidden widths", DNN_MAX_LAYERS);
	d->E = m->cfg.emb_dim;
	d->D = 2 * d->E;
	d->L = info->hist_len;
	d->window = (uint32_t)m->opt[OPT_WINDOW];
	d->n_genres = info->vocab[SF_GENRE];
	if (d->window == 0 || d->window > d->L)
		d->window = d->L;
	d->n_dense = info->n_dense;
	d->xin = 9 * d->E + d->n_dense;
	d->softmax = m->opt[OPT_ATT_SOFTMAX] != 0;
	rc = fields_declare(&m->params, info, d->E, INIT_NORMAL, 0.05f, d->t);
	if (rc)
		return rc;
	/* the candidate's genres and each history item's */
	m->params.t[d->t[F_GENRE]].lookups = BATCH_GENRES * (1 + d->L);
	H[0] = (uint32_t)m->opt[OPT_ATT_H];
	H[1] = (uint32_t)m->opt[OPT_ATT_H_SECOND];
	rc = attn_block_declare(&d->att, &m->params, "att", (int)d->D, H, H[1] ? 2 : 1,
				(enum nn_attn_act)m->opt[OPT_ATT_ACT], !d->softmax);
	if (!rc)
		rc = dnn_declare(&d->mlp, &m->params, "dnn", d->xin, m->cfg.hidden, m->cfg.n_hidden,
				 (enum nn_attn_act)m->opt[OPT_DNN_ACT], m->opt[OPT_DNN_BN] != 0);
	return rc;
}

static void din_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

static unsigned din_wants(const struct model *m)
{
	(void)m;
	return WANTS_ITEMS; /* the history items' genres */
}

/* Workspace layout, in floats, for B rows (at most B L positions). */
struct din_ws {
	uint32_t *off;       /* (B + 1) the packing */
	float *q, *dq;       /* (B, 2E) */
	float *keys, *dkeys; /* (B L, 2E) packed */
	float *score, *prob; /* (B L) */
	float *dw, *dscore;  /* (B L) */
	float *pool;         /* (B, 2E); its gradient in the backward */
	float *x, *dx;       /* (B, xin) */
	float *dgenre;       /* (genres, E) the genre table's gradient, summed before the sparse
			* update, then (genres) flags of the rows read */
	float *att, *mlp;    /* the blocks' workspaces */
};

static size_t din_layout(const struct din *d, uint32_t B, float *base, struct din_ws *w)
{
	size_t o = 0, N = (size_t)B * d->window;
	struct nn_attn_shape s = d->att.s;
#define PUT(f, k) (w->f = base ? base + o : NULL, o += ((k) + 15) & ~(size_t)15)
	w->off = base ? (uint32_t *)(void *)base : NULL;
	o += ((size_t)B + 1 + 15) & ~(size_t)15;
	PUT(q, (size_t)B * d->D);
	PUT(dq, (size_t)B * d->D);
	PUT(keys, N * d->D);
	PUT(dkeys, N * d->D);
	PUT(score, N);
	PUT(prob, N);
	PUT(dw, N);
	PUT(dscore, N);
	PUT(pool, (size_t)B * d->D);
	PUT(x, (size_t)B * d->xin);
	PUT(dx, (size_t)B * d->xin);
	PUT(dgenre, (size_t)d->n_genres * (d->E + 1));
	PUT(att, nn_attn_ws_floats(&s, (int)B, (int)N));
	PUT(mlp, dnn_ws_floats(&d->mlp, B));
#undef PUT
	return o;
}

static size_t din_ws_floats(const struct model *m, uint32_t B)
{
	struct din_ws w;

	return din_layout(m->impl, B, NULL, &w);
}

/* y (n) += a x: the per-row loops of the representations and their gradients */
HR_MULTIVERSION
static void axpy(float *restrict y, float a, const float *restrict x, uint32_t n)
{
	for (uint32_t e = 0; e < n; e++)
		y[e] += a * x[e];
}

/* out (E) = mean of table's rows ids[0 .. n); zeros when n == 0. */
static void mean_rows(float *out, const float *table, const uint32_t *ids, uint32_t n, uint32_t E)
{
	memset(out, 0, E * sizeof(float));
	for (uint32_t k = 0; k < n; k++)
		axpy(out, 1.0f / (float)n, table + (size_t)ids[k] * E, E);
}

/* The first history slot attended of a row with n items: the last `window` are. */
static uint32_t first_slot(const struct din *d, uint32_t n)
{
	return n > d->window ? n - d->window : 0;
}

/* The queries and the packed keys of b. */
static void represent(const struct model *m, struct din_ws *w, const struct batch *b)
{
	const struct din *d = m->impl;
	const struct params *p = &m->params;
	const struct store_items *it = m->data->items;
	const float *item = p->t[d->t[F_ITEM]].w, *genre = p->t[d->t[F_GENRE]].w;
	uint32_t E = d->E, D = d->D;

	w->off[0] = 0;
	for (uint32_t r = 0; r < b->n; r++) {
		float *q = w->q + (size_t)r * D;
		memcpy(q, item + (size_t)b->item[r] * E, E * sizeof(float));
		mean_rows(q + E, genre, b->genres + (size_t)r * BATCH_GENRES, b->n_genres[r], E);
		uint32_t j0 = first_slot(d, b->n_hist[r]);
		w->off[r + 1] = w->off[r] + b->n_hist[r] - j0;
		for (uint32_t j = j0; j < b->n_hist[r]; j++) {
			uint32_t h = b->hist[(size_t)r * d->L + j], lo = it->genre_off[h];
			float *k = w->keys + (size_t)(w->off[r] + j - j0) * D;
			memcpy(k, item + (size_t)h * E, E * sizeof(float));
			mean_rows(k + E, genre, it->genre + lo, it->genre_off[h + 1] - lo, E);
		}
	}
}

static void din_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
			int train)
{
	const struct din *d = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = d->E, D = d->D;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	struct nn_attn_params ap;
	struct din_ws w;
	const float *wt;

	HR_ASSERT(m->data && m->data->items && b->hist_cap == d->L);
	din_layout(d, B, ws, &w);
	represent(m, &w, b);
	attn_block_params(&d->att, p, &ap);
	nn_attn_forward(w.score, w.att, w.q, w.keys, w.off, &ap, &d->att.s, train, (int)B);
	if (train) {
		attn_block_update_stats(&d->att, p, w.att, (int)B, (int)w.off[B]);
		struct din *dm = m->impl; /* counters only: the mean history length */
		atomic_fetch_add_explicit(&dm->pos_seen, w.off[B], memory_order_relaxed);
		atomic_fetch_add_explicit(&dm->rows_seen, B, memory_order_relaxed);
	}
	wt = w.score;
	if (d->softmax) {
		nn_attn_softmax_forward(w.prob, w.score, w.off, (int)B);
		wt = w.prob;
	}
	nn_attn_pool_forward(w.pool, wt, w.keys, w.off, (int)B, (int)D);
	for (int k = 0; k < 5; k++)
		fields_gather(w.x, d->xin, (size_t)k * E, p->t[d->t[tabs[k]]].w, ids[k], B, E);
	for (uint32_t r = 0; r < B; r++) {
		float *x = w.x + (size_t)r * d->xin;
		memcpy(x + 5 * E, w.pool + (size_t)r * D, D * sizeof(float));
		memcpy(x + 7 * E, w.q + (size_t)r * D, D * sizeof(float));
		memcpy(x + 9 * E, b->dense + (size_t)r * b->n_dense, d->n_dense * sizeof(float));
	}
	dnn_forward(&d->mlp, p, w.mlp, w.x, logits, B, train);
}

/*
 * A representation's gradient g (2E) to its item row (sparse) and, 1/n
 * each, to its genres' rows: summed in dgen (genres, E), the genre table
 * being small, and handed to the sparse update once per row (genre_grads);
 * read[] flags the rows.
 */
static void represent_grads(struct sparse_grad *sg_item, float *dgen, float *read, const float *g,
			    uint32_t item, const uint32_t *genres, uint32_t n, uint32_t E)
{
	sparse_grad_add(sg_item, item, g);
	for (uint32_t k = 0; k < n; k++) {
		axpy(dgen + (size_t)genres[k] * E, 1.0f / (float)n, g + E, E);
		read[genres[k]] = 1;
	}
}

static void din_backward(const struct model *m, float *ws, const struct batch *b,
			 const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const struct din *d = m->impl;
	const struct params *p = &m->params;
	const struct store_items *it = m->data->items;
	uint32_t B = b->n, E = d->E, D = d->D, N;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	struct sparse_grad *sgi = &sg[d->t[F_ITEM]], *sgg = &sg[d->t[F_GENRE]];
	struct nn_attn_params ap;
	struct nn_attn_grads ag;
	struct din_ws w;
	const float *ds, *wt;

	din_layout(d, B, ws, &w);
	N = w.off[B];
	memset(w.dx, 0, (size_t)B * d->xin * sizeof(float));
	dnn_backward(&d->mlp, p, w.mlp, w.x, dlogits, w.dx, grad, B, 1);
	for (int k = 0; k < 5; k++)
		for (uint32_t r = 0; r < B; r++)
			sparse_grad_add(&sg[d->t[tabs[k]]], ids[k][r],
					w.dx + (size_t)r * d->xin + (size_t)k * E);
	for (uint32_t r = 0; r < B; r++) { /* pool's and q's columns */
		const float *dx = w.dx + (size_t)r * d->xin;
		memcpy(w.pool + (size_t)r * D, dx + 5 * E, D * sizeof(float));
		memcpy(w.dq + (size_t)r * D, dx + 7 * E, D * sizeof(float));
	}
	/* the pooling's gradient: dw, and dkeys = w_t dpool (written: no zeroing pass) */
	wt = d->softmax ? w.prob : w.score;
	memset(w.dw, 0, N * sizeof(float));
	nn_attn_pool_backward(w.dw, NULL, w.pool, wt, w.keys, w.off, (int)B, (int)D);
	for (uint32_t r = 0; r < B; r++)
		for (uint32_t t = w.off[r]; t < w.off[r + 1]; t++) {
			memset(w.dkeys + (size_t)t * D, 0, D * sizeof(float));
			axpy(w.dkeys + (size_t)t * D, wt[t], w.pool + (size_t)r * D, D);
		}
	ds = w.dw;
	if (d->softmax) {
		memset(w.dscore, 0, N * sizeof(float));
		nn_attn_softmax_backward(w.dscore, w.dw, w.prob, w.off, (int)B);
		ds = w.dscore;
	}
	attn_block_params(&d->att, p, &ap);
	attn_block_grads(&d->att, p, grad, &ag);
	nn_attn_backward(w.dq, w.dkeys, &ag, ds, w.att, w.q, w.keys, w.off, &ap, &d->att.s, true,
			 (int)B);
	float *read = w.dgenre + (size_t)d->n_genres * E;
	memset(w.dgenre, 0, (size_t)d->n_genres * (E + 1) * sizeof(float));
	for (uint32_t r = 0; r < B; r++) {
		represent_grads(sgi, w.dgenre, read, w.dq + (size_t)r * D, b->item[r],
				b->genres + (size_t)r * BATCH_GENRES, b->n_genres[r], E);
		uint32_t j0 = first_slot(d, b->n_hist[r]);
		for (uint32_t j = j0; j < b->n_hist[r]; j++) {
			uint32_t h = b->hist[(size_t)r * d->L + j], lo = it->genre_off[h];
			represent_grads(sgi, w.dgenre, read,
					w.dkeys + (size_t)(w.off[r] + j - j0) * D, h,
					it->genre + lo, it->genre_off[h + 1] - lo, E);
		}
	}
	for (uint32_t gi = 0; gi < d->n_genres; gi++)
		if (read[gi] != 0)
			sparse_grad_add(sgg, gi, w.dgenre + (size_t)gi * E);
}

static double din_flops(const struct model *m)
{
	const struct din *d = m->impl;
	uint64_t rows = atomic_load_explicit(&d->rows_seen, memory_order_relaxed);
	double len = rows ? (double)atomic_load_explicit(&d->pos_seen, memory_order_relaxed) /
				     (double)rows :
			    d->L;

	/* per position: the unit and the pooling; per row: the q terms and the MLP */
	return len * (attn_block_flops(&d->att) + 2.0 * d->D) + 2.0 * d->D * d->att.s.H[0] +
	       dnn_flops(&d->mlp);
}

const struct model_ops model_din = {
	.name = "din",
	.summary = "Deep Interest Network: the history pooled by attention against the "
		   "candidate, then an MLP",
	.needs = NEEDS_DEMOGRAPHICS | NEEDS_HISTORY | NEEDS_DENSE | NEEDS_GENRES,
	.default_hidden = din_hidden,
	.options = din_options,
	.n_options = OPT_N,
	.wants = din_wants,
	.init = din_init,
	.release = din_release,
	.workspace_floats = din_ws_floats,
	.forward = din_forward,
	.backward = din_backward,
	.flops_forward = din_flops,
};
