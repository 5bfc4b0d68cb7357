/*
 * dien - Deep Interest Evolution Network (Zhou et al. 2019; the authors'
 * code mouna99/dien, DeepCTR-Torch's DIEN, seed write-up 004).
 *
 * Embeddings (width E): user, gender, age, occupation, zip, item, genre.
 * An item's representation is [E_item[i] | mean of E_genre over i's
 * genres] (D = 2E), as in din: the candidate's genres from its record, a
 * history or negative item's from the items table.  H = D throughout (the
 * reference's hidden size is the history position's width).
 *
 *   e_t   = representation of history item t, t < n_hist        (N, D) packed
 *   h_t   = GRU(e_1 .. e_t)                  the interest extractor
 *   aux   = DIEN's auxiliary loss of (h_t, e_{t+1}, e^neg_{t+1}) (training)
 *   s_t   = DIN's attention unit of (q, h_t), q the candidate   (models/nn/attn.h)
 *   a_t   = softmax of s over the row's history
 *   h'_T  = AUGRU / AGRU / AIGRU (gru_type) over h_t gated by a_t: the last state
 *   x     = [user | gender | age | occupation | zip | dense | q | h'_T | sum_t e_t
 *            | q * sum_t e_t]   (B, 5E + n_dense + 4D = 13E + n_dense); the sum and
 *           the product are the authors' item_his_eb_sum and item_eb * item_his_eb_sum
 *   logit = DNN(x): per --hidden width Linear -> [BatchNorm] -> Dice/PReLU/ReLU,
 *           then a linear output unit (models/blocks.h)
 *   loss  = BCE(logit, label) + aux_weight * aux
 *
 * Sequences are packed (models/nn/seq.h): time-major for the recurrent
 * layers, example-major for the attention unit (its softmax and its q
 * terms run per example); states and scores are permuted between the two.
 * Nothing is computed past a sequence's end; an empty history has no
 * states, a zero final state and a zero sum.
 *
 * Items are represented once per batch: the distinct items of the
 * histories (then, training, of the negatives) form a table whose rows the
 * positions index.  The extractor's input projections and the auxiliary
 * network's item projections are GEMMs over the table's rows (on the bench
 * data ~2,160 history and ~3,540 items in all for ~9,100 positions), their
 * gradients summed per row before the weights' GEMMs, and each item's
 * embedding rows get one sparse gradient add per batch.
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
#include "nn/seq.h"
#include "store/items.h"

enum { OPT_GRU, OPT_AUX, OPT_ATT_ACT, OPT_ATT_H, OPT_ATT_H_SECOND, OPT_DNN_ACT, OPT_DNN_BN, OPT_N };

/* augru: the authors' cell (the score scales the keep gate); augru_paper:
 * the paper's eq. 7 (the score scales the update gate), as DeepCTR-Torch
 * and the seed write-up build it */
static const char *const gru_names[] = {"augru", "augru_paper", "agru", "aigru", NULL};
static const enum nn_gru_kind gru_kinds[] = {NN_AUGRU_KEEP, NN_AUGRU, NN_AGRU, NN_AIGRU};
/* In enum nn_attn_act's order, as din's. */
static const char *const act_names[] = {"dice", "prelu", "relu", NULL};

static const struct model_option dien_options[OPT_N] = {
	[OPT_GRU] = {"gru_type", MOPT_ENUM, 0, 0, 0, gru_names,
		     "the interest evolution layer: augru (the authors' attentional GRU: the "
		     "score opens the update gate), augru_paper (the paper's: the score scales "
		     "it), agru (the score is the update) or aigru (inputs scaled by the score)"},
	[OPT_AUX] = {"aux_weight", MOPT_FLOAT, 0, 100, 1.0, NULL,
		     "weight of DIEN's auxiliary loss (the extractor's states against the next "
		     "clicked and a sampled item); 0 leaves it out"},
	/* as din's (an option means the same in every model) */
	[OPT_ATT_ACT] = {"att_activation", MOPT_ENUM, 0, 0, NN_ATTN_DICE, act_names,
			 "activation of the attention unit's hidden layers"},
	[OPT_ATT_H] = {"att_hidden", MOPT_INT, 1, 1024, 64, NULL,
		       "the attention unit's first hidden width"},
	[OPT_ATT_H_SECOND] = {"att_hidden_second", MOPT_INT, 0, 1024, 16, NULL,
			      "the attention unit's second hidden width (0: one hidden layer)"},
	[OPT_DNN_ACT] = {"dnn_activation", MOPT_ENUM, 0, 0, NN_ATTN_DICE, act_names,
			 "activation of the MLP's hidden layers"},
	[OPT_DNN_BN] = {"dnn_bn", MOPT_BOOL, 0, 1, 0, NULL,
			"BatchNorm after each MLP layer's Linear, before its activation"},
};

#define AUX_H1 100 /* the reference's auxiliary network: 100, 50, sigmoid */
#define AUX_H2 50

enum { GRU_WX, GRU_WH, GRU_BX, GRU_BH, GRU_T };
enum { AUX_W1H, AUX_W1E, AUX_B1, AUX_W2, AUX_B2, AUX_W3, AUX_B3, AUX_T };

struct dien {
	uint32_t E, D, L, xin, n_dense;
	uint32_t n_items, n_genres; /* the vocabularies */
	enum nn_gru_kind kind;
	int t[F_N];
	int ext[GRU_T], evo[GRU_T]; /* the extractor's and the evolution layer's tensors */
	int aux[AUX_T];
	struct attn_block att;
	struct dnn mlp;
	/* training positions and rows seen: the mean history length for flops */
	_Atomic uint64_t pos_seen, rows_seen;
};

static const uint32_t dien_hidden[] = {200, 80, 0};

static int declare_gru(struct params *p, const char *pre, int G, uint32_t D, int t[GRU_T])
{
	static const char *const what[GRU_T] = {"wx", "wh", "bx", "bh"};
	char name[PARAM_NAME_MAX];

	for (int k = 0; k < GRU_T; k++) {
		snprintf(name, sizeof(name), "%s.%s", pre, what[k]);
		t[k] = k < GRU_BX ? params_add(p, name, (uint32_t)G * D, D, 0, INIT_XAVIER, 0) :
				    params_add(p, name, 1, (uint32_t)G * D, 0, INIT_ZERO, 0);
		if (t[k] < 0)
			return t[k];
	}
	return 0;
}

static int declare_aux(struct params *p, uint32_t D, int t[AUX_T])
{
	static const char *const names[AUX_T] = {"aux.w1h", "aux.w1e", "aux.b1", "aux.w2",
						 "aux.b2",  "aux.w3",  "aux.b3"};
	static const uint32_t rows[AUX_T] = {AUX_H1, AUX_H1, 1, AUX_H2, 1, 1, 1};
	const uint32_t cols[AUX_T] = {D, D, AUX_H1, AUX_H1, AUX_H2, AUX_H2, 1};

	for (int k = 0; k < AUX_T; k++) {
		t[k] = params_add(p, names[k], rows[k], cols[k], 0,
				  rows[k] > 1 || k == AUX_W3 ? INIT_XAVIER : INIT_ZERO, 0);
		if (t[k] < 0)
			return t[k];
	}
	return 0;
}

static int dien_init(struct model *m, const struct store_info *info)
{
	struct dien *d = calloc(1, sizeof(*d));
	uint32_t H[2];
	int rc;

	if (!d)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = d;
	if (m->cfg.n_hidden > DNN_MAX_LAYERS)
		return hr_error(HR_EINVAL, "model 'dien': at most %d hidden widths",
				DNN_MAX_LAYERS);
	d->E = m->cfg.emb_dim;
	d->D = 2 * d->E;
	d->L = info->hist_len;
	d->n_dense = info->n_dense;
	d->n_items = info->vocab[SF_ITEM];
	d->n_genres = info->vocab[SF_GENRE];
	d->xin = 13 * d->E + d->n_dense;
	d->kind = gru_kinds[(int)m->opt[OPT_GRU]];
	rc = fields_declare(&m->params, info, d->E, INIT_NORMAL, 0.05f, d->t);
	if (rc)
		return rc;
	/* the candidate, each history item and each negative, with their genres */
	m->params.t[d->t[F_ITEM]].lookups = 1 + 2 * d->L;
	m->params.t[d->t[F_GENRE]].lookups = BATCH_GENRES * (1 + 2 * d->L);
	rc = declare_gru(&m->params, "extractor", 3, d->D, d->ext);
	if (!rc)
		rc = declare_gru(&m->params, "evolution", nn_gru_gates(d->kind), d->D, d->evo);
	if (!rc && m->opt[OPT_AUX] > 0) /* no auxiliary network without its loss */
		rc = declare_aux(&m->params, d->D, d->aux);
	H[0] = (uint32_t)m->opt[OPT_ATT_H];
	H[1] = (uint32_t)m->opt[OPT_ATT_H_SECOND];
	if (!rc) /* softmax-normalised: no output bias */
		rc = attn_block_declare(&d->att, &m->params, "att", (int)d->D, H, H[1] ? 2 : 1,
					(enum nn_attn_act)m->opt[OPT_ATT_ACT], 0);
	if (!rc)
		rc = dnn_declare(&d->mlp, &m->params, "dnn", d->xin, m->cfg.hidden, m->cfg.n_hidden,
				 (enum nn_attn_act)m->opt[OPT_DNN_ACT], m->opt[OPT_DNN_BN] != 0);
	return rc;
}

static void dien_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

static unsigned dien_wants(const struct model *m)
{
	(void)m;
	return WANTS_ITEMS; /* the history and negative items' genres */
}

/* Workspace layout, in floats, for B rows (at most N = B L positions). */
struct dien_ws {
	int *pack;                       /* nn_pack_ints(B, L) */
	uint32_t *off;                   /* (B + 1) example-major packing */
	uint32_t *lens;                  /* (B) the history lengths */
	uint32_t *rows;                  /* (2) the table's history rows, all its rows */
	int *slot;                       /* (items) an item's table row, -1: none */
	uint32_t *uniq;                  /* (2N) the table's items: the histories' first */
	int *eidx, *nidx;                /* (N) each position's item and negative rows (-1) */
	float *q, *dq;                   /* (B, D) the candidates */
	float *r, *dr;                   /* (2N, D) the table: representations, gradients */
	float *h, *gh, *rh, *ph, *dh;    /* extractor: states, gates, Wh h, h_{t-1}, d states */
	float *k, *dk;                   /* (N, D) the states example-major: the keys */
	float *s, *pr, *dpr, *ds;        /* (N) scores, probabilities, their gradients */
	float *a, *da;                   /* (N) probabilities time-major */
	float *v, *gv, *rv, *pv, *dv;    /* evolution: as the extractor's */
	float *last, *dlast, *sum;       /* (B, D) */
	float *x, *dx;                   /* (B, xin) */
	float *dgenre;                   /* (genres, E) the genre table's gradient, then
					  * (genres) flags of the rows read */
	float *gs, *ac, *as, *att, *mlp; /* GRU scratch, aux cache and scratch, blocks' ws */
	float *wt;                       /* (D, 3 D) a GRU's Wh transposed */
};

static size_t dien_layout(const struct dien *d, uint32_t B, float *base, struct dien_ws *w)
{
	size_t o = 0, N = (size_t)B * d->L, D = d->D, G2 = (size_t)nn_gru_gates(d->kind);
	long gs1 = nn_gru_scratch_floats((int)B, (int)N, NN_GRU, (int)D, (int)D);
	long gs2 = nn_gru_scratch_floats((int)B, (int)N, d->kind, (int)D, (int)D);
	struct nn_attn_shape s = d->att.s;
#define PUT(f, k) (w->f = base ? (void *)(base + o) : NULL, o += ((size_t)(k) + 15) & ~(size_t)15)
	PUT(pack, nn_pack_ints((int)B, (int)d->L));
	PUT(off, B + 1);
	PUT(lens, B);
	PUT(rows, 2);
	PUT(slot, d->n_items);
	PUT(uniq, 2 * N);
	PUT(eidx, N);
	PUT(nidx, N);
	PUT(q, B * D);
	PUT(dq, B * D);
	PUT(r, 2 * N * D);
	PUT(dr, 2 * N * D);
	PUT(h, N * D);
	PUT(gh, 3 * N * D);
	PUT(rh, 3 * N * D);
	PUT(ph, N * D);
	PUT(dh, N * D);
	PUT(k, N * D);
	PUT(dk, N * D);
	PUT(s, N);
	PUT(pr, N);
	PUT(dpr, N);
	PUT(ds, N);
	PUT(a, N);
	PUT(da, N);
	PUT(v, N * D);
	PUT(gv, G2 * N * D);
	PUT(rv, G2 * N * D);
	PUT(pv, N * D);
	PUT(dv, N * D);
	PUT(last, B * D);
	PUT(dlast, B * D);
	PUT(sum, B * D);
	PUT(x, (size_t)B * d->xin);
	PUT(dx, (size_t)B * d->xin);
	PUT(dgenre, (size_t)d->n_genres * (d->E + 1));
	PUT(gs, gs1 > gs2 ? gs1 : gs2);
	PUT(wt, 3 * D * D);
	PUT(ac, nn_aux_cache_floats((int)N, AUX_H1, AUX_H2));
	PUT(as, nn_aux_scratch_floats((int)N, AUX_H1, AUX_H2));
	PUT(att, nn_attn_ws_floats(&s, (int)B, (int)N));
	PUT(mlp, dnn_ws_floats(&d->mlp, B));
#undef PUT
	return o;
}

static size_t dien_ws_floats(const struct model *m, uint32_t B)
{
	struct dien_ws w;

	return dien_layout(m->impl, B, NULL, &w);
}

static const float *tw(const struct params *p, int i)
{
	return p->t[i].w;
}

static float *gw(const struct params *p, float *grad, int i)
{
	return grad + p->t[i].offset;
}

/* y (n) += a x (a name of its own: clang gives a multiversioned static
 * function a global resolver symbol, which din.c's axpy would clash with) */
HR_MULTIVERSION
static void dien_axpy(float *restrict y, float a, const float *restrict x, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++)
		y[j] += a * x[j];
}

/* out (2E) = [item row | mean of the genre rows]; zeros for the genres when there are none. */
static void represent(float *out, const float *item, const float *genre, uint32_t id,
		      const uint32_t *genres, uint32_t n, uint32_t E)
{
	memcpy(out, item + (size_t)id * E, E * sizeof(float));
	memset(out + E, 0, E * sizeof(float));
	for (uint32_t k = 0; k < n; k++)
		dien_axpy(out + E, 1.0f / (float)n, genre + (size_t)genres[k] * E, E);
}

/*
 * The gradient g (2E) of a representation to its item's row (sparse) and,
 * 1/n each, its genres': summed in dgen (genres, E), the genre table being
 * small, and handed to the sparse update once per row (genre_grads); read[]
 * flags the rows.
 */
static void represent_grads(struct sparse_grad *sgi, float *dgen, float *read, const float *g,
			    uint32_t id, const uint32_t *genres, uint32_t n, uint32_t E)
{
	sparse_grad_add(sgi, id, g);
	for (uint32_t k = 0; k < n; k++) {
		dien_axpy(dgen + (size_t)genres[k] * E, 1.0f / (float)n, g + E, E);
		read[genres[k]] = 1;
	}
}

/* The table row of item i, added (its representation too) when new. */
static int table_row(const struct model *m, struct dien_ws *w, uint32_t *n, uint32_t i)
{
	const struct dien *d = m->impl;
	const struct params *pa = &m->params;
	const struct store_items *it = m->data->items;
	uint32_t lo = it->genre_off[i];

	if (w->slot[i] >= 0)
		return w->slot[i];
	w->slot[i] = (int)*n;
	w->uniq[*n] = i;
	represent(w->r + (size_t)*n * d->D, tw(pa, d->t[F_ITEM]), tw(pa, d->t[F_GENRE]), i,
		  it->genre + lo, it->genre_off[i + 1] - lo, d->E);
	return (int)(*n)++;
}

/*
 * The packings, the candidates and the table of distinct items: the
 * histories' (rows 0 .. *nh - 1), then with negatives the negatives' not
 * among them (up to *nt); eidx and nidx index it by position.
 */
static void inputs(const struct model *m, struct dien_ws *w, struct nn_pack *p,
		   const struct batch *b, int negatives, uint32_t *nh, uint32_t *nt)
{
	const struct dien *d = m->impl;
	const struct params *pa = &m->params;
	const float *item = tw(pa, d->t[F_ITEM]), *genre = tw(pa, d->t[F_GENRE]);
	uint32_t B = b->n, E = d->E, D = d->D, L = d->L, n = 0;

	memcpy(w->lens, b->n_hist, B * sizeof(uint32_t));
	nn_pack_init(p, w->pack, w->lens, (int)B, (int)L);
	memset(w->slot, 0xff, d->n_items * sizeof(int)); /* -1: no row yet */
	w->off[0] = 0;
	for (uint32_t r = 0; r < B; r++) {
		represent(w->q + (size_t)r * D, item, genre, b->item[r],
			  b->genres + (size_t)r * BATCH_GENRES, b->n_genres[r], E);
		w->off[r + 1] = w->off[r] + w->lens[r];
		for (uint32_t t = 0; t < w->lens[r]; t++)
			w->eidx[nn_pack_pos(p, (int)r, (int)t)] =
				table_row(m, w, &n, b->hist[(size_t)r * L + t]);
	}
	*nh = w->rows[0] = n;
	for (uint32_t r = 0; negatives && r < B; r++)
		for (uint32_t t = 0; t < w->lens[r]; t++)
			w->nidx[nn_pack_pos(p, (int)r, (int)t)] =
				t < b->n_neg[r] ? table_row(m, w, &n, b->neg[(size_t)r * L + t]) :
						  -1;
	*nt = w->rows[1] = n;
}

/* Time-major packed rows (N, W) to example-major (to = 1), or the gradient
 * back (to = 0: added). */
static void permute(float *em, float *tm, const struct nn_pack *p, const uint32_t *off, int W,
		    int to)
{
	for (int b = 0; b < p->B; b++)
		for (int t = 0; t < p->len[b]; t++) {
			float *x = em + ((size_t)off[b] + (size_t)t) * W;
			float *y = tm + (size_t)nn_pack_pos(p, b, t) * W;
			for (int j = 0; j < W; j++) {
				if (to)
					x[j] = y[j];
				else
					y[j] += x[j];
			}
		}
}

static const float *gru_w(const struct params *p, const int t[GRU_T], int k)
{
	return p->t[t[k]].w;
}

static struct nn_aux_params aux_params(const struct dien *d, const struct params *p, float *grad)
{
	float *v[AUX_T];

	for (int k = 0; k < AUX_T; k++)
		v[k] = grad ? gw(p, grad, d->aux[k]) : p->t[d->aux[k]].w;
	return (struct nn_aux_params){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
}

/*
 * The forward pass; with aux (training) also the auxiliary loss, returned
 * unweighted (0 without).
 */
static double dien_run(const struct model *m, float *ws, const struct batch *b, float *logits,
		       int train, int aux)
{
	struct dien *d = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = d->E, D = d->D, N;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	struct nn_attn_params ap;
	struct nn_aux_params xp;
	struct nn_pack pk;
	struct dien_ws w;
	double aux_loss = 0.0;
	uint32_t nh, nt;

	HR_ASSERT(m->data && m->data->items && b->hist_cap == d->L);
	dien_layout(d, B, ws, &w);
	inputs(m, &w, &pk, b, aux, &nh, &nt);
	N = (uint32_t)pk.N;
	nn_gru_forward_idx(w.h, w.gh, w.rh, w.ph, w.wt, w.r, w.eidx, (int)nh, NULL, NULL,
			   gru_w(p, d->ext, GRU_WX), gru_w(p, d->ext, GRU_WH),
			   gru_w(p, d->ext, GRU_BX), gru_w(p, d->ext, GRU_BH), &pk, NN_GRU, (int)D,
			   (int)D);
	if (aux) {
		xp = aux_params(d, p, NULL);
		aux_loss = nn_aux_forward_idx(w.ac, w.h, w.r, NULL, NULL, w.eidx, w.nidx, (int)nt,
					      &xp, &pk, (int)D, (int)D, AUX_H1, AUX_H2);
	}
	permute(w.k, w.h, &pk, w.off, (int)D, 1);
	attn_block_params(&d->att, p, &ap);
	nn_attn_forward(w.s, w.att, w.q, w.k, w.off, &ap, &d->att.s, train, (int)B);
	if (train) {
		attn_block_update_stats(&d->att, p, w.att, (int)B, (int)N);
		atomic_fetch_add_explicit(&d->pos_seen, N, memory_order_relaxed);
		atomic_fetch_add_explicit(&d->rows_seen, B, memory_order_relaxed);
	}
	nn_attn_softmax_forward(w.pr, w.s, w.off, (int)B);
	for (int r = 0; r < (int)B; r++)
		for (int t = 0; t < pk.len[r]; t++)
			w.a[nn_pack_pos(&pk, r, t)] = w.pr[w.off[r] + (uint32_t)t];
	nn_gru_forward(w.v, w.gv, w.rv, w.pv, w.wt, w.h, w.a, NULL, gru_w(p, d->evo, GRU_WX),
		       gru_w(p, d->evo, GRU_WH), gru_w(p, d->evo, GRU_BX), gru_w(p, d->evo, GRU_BH),
		       &pk, d->kind, (int)D, (int)D);
	nn_pack_last_forward(w.last, w.v, NULL, &pk, (int)D);
	memset(w.sum, 0, (size_t)B * D * sizeof(float));
	for (int r = 0; r < (int)B; r++)
		for (int t = 0; t < pk.len[r]; t++)
			dien_axpy(w.sum + (size_t)r * D, 1.0f,
				  w.r + (size_t)w.eidx[nn_pack_pos(&pk, r, t)] * D, D);
	for (int k = 0; k < 5; k++)
		fields_gather(w.x, d->xin, (size_t)k * E, tw(p, d->t[tabs[k]]), ids[k], B, E);
	for (uint32_t r = 0; r < B; r++) {
		float *x = w.x + (size_t)r * d->xin;
		memcpy(x + 5 * E, b->dense + (size_t)r * b->n_dense, d->n_dense * sizeof(float));
		x += 5 * E + d->n_dense;
		memcpy(x, w.q + (size_t)r * D, D * sizeof(float));
		memcpy(x + D, w.last + (size_t)r * D, D * sizeof(float));
		memcpy(x + 2 * D, w.sum + (size_t)r * D, D * sizeof(float));
		for (uint32_t j = 0; j < D; j++) /* the authors' item_eb * item_his_eb_sum */
			x[3 * D + j] = w.q[(size_t)r * D + j] * w.sum[(size_t)r * D + j];
	}
	dnn_forward(&d->mlp, p, w.mlp, w.x, logits, B, train);
	return aux_loss;
}

static void dien_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
			 int train)
{
	dien_run(m, ws, b, logits, train, 0);
}

/* The backward of dien_run(train = 1, aux); aux_w weighs the auxiliary loss. */
static void dien_back(const struct model *m, float *ws, const struct batch *b, const float *dlogits,
		      float *grad, struct sparse_grad *sg, int aux, float aux_w)
{
	const struct dien *d = m->impl;
	const struct params *p = &m->params;
	const struct store_items *it = m->data->items;
	uint32_t B = b->n, E = d->E, D = d->D, L = d->L, N, nh, nt;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	struct sparse_grad *sgi = &sg[d->t[F_ITEM]], *sgg = &sg[d->t[F_GENRE]];
	struct nn_attn_params ap;
	struct nn_attn_grads ag;
	struct nn_pack pk;
	struct dien_ws w;

	dien_layout(d, B, ws, &w);
	nn_pack_init(&pk, w.pack, w.lens, (int)B, (int)L); /* as the forward built it */
	N = (uint32_t)pk.N;
	nh = w.rows[0];
	nt = w.rows[1];
	memset(w.dx, 0, (size_t)B * d->xin * sizeof(float));
	dnn_backward(&d->mlp, p, w.mlp, w.x, dlogits, w.dx, grad, B, 1);
	for (int k = 0; k < 5; k++)
		for (uint32_t r = 0; r < B; r++)
			sparse_grad_add(&sg[d->t[tabs[k]]], ids[k][r],
					w.dx + (size_t)r * d->xin + (size_t)k * E);
	for (uint32_t r = 0; r < B; r++) {
		float *dx = w.dx + (size_t)r * d->xin + 5 * E + d->n_dense,
		      *dq = w.dq + (size_t)r * D;
		const float *q = w.q + (size_t)r * D, *sum = w.sum + (size_t)r * D;
		memcpy(dq, dx, D * sizeof(float));
		memcpy(w.dlast + (size_t)r * D, dx + D, D * sizeof(float));
		for (uint32_t j = 0; j < D; j++) { /* q * sum: into q's and the sum's columns */
			dq[j] += dx[3 * D + j] * sum[j];
			dx[2 * D + j] += dx[3 * D + j] * q[j];
		}
	}
	/* the evolution layer, from its last states */
	memset(w.dv, 0, (size_t)N * D * sizeof(float));
	nn_pack_last_backward(w.dv, NULL, w.dlast, &pk, (int)D);
	memset(w.dh, 0, (size_t)N * D * sizeof(float));
	memset(w.da, 0, N * sizeof(float));
	nn_gru_backward(w.dh, w.da, NULL, gw(p, grad, d->evo[GRU_WX]), gw(p, grad, d->evo[GRU_WH]),
			gw(p, grad, d->evo[GRU_BX]), gw(p, grad, d->evo[GRU_BH]), w.gs, w.dv, w.gv,
			w.rv, w.pv, w.h, w.a, gru_w(p, d->evo, GRU_WX), gru_w(p, d->evo, GRU_WH),
			&pk, d->kind, (int)D, (int)D);
	/* the attention: scores through the softmax to the unit, keys back to the states */
	for (int r = 0; r < (int)B; r++)
		for (int t = 0; t < pk.len[r]; t++)
			w.dpr[w.off[r] + (uint32_t)t] = w.da[nn_pack_pos(&pk, r, t)];
	memset(w.ds, 0, N * sizeof(float));
	nn_attn_softmax_backward(w.ds, w.dpr, w.pr, w.off, (int)B);
	memset(w.dk, 0, (size_t)N * D * sizeof(float));
	attn_block_params(&d->att, p, &ap);
	attn_block_grads(&d->att, p, grad, &ag);
	nn_attn_backward(w.dq, w.dk, &ag, w.ds, w.att, w.q, w.k, w.off, &ap, &d->att.s, true,
			 (int)B);
	permute(w.dk, w.dh, &pk, w.off, (int)D, 0);
	/* the auxiliary loss, then the extractor, into the table's gradients */
	memset(w.dr, 0, (size_t)nt * D * sizeof(float));
	if (aux) {
		struct nn_aux_params xp = aux_params(d, p, NULL), xg = aux_params(d, p, grad);
		nn_aux_backward_idx(w.dh, w.dr, NULL, &xg, w.as, aux_w, w.ac, w.h, w.r, NULL,
				    w.eidx, w.nidx, (int)nt, &xp, &pk, (int)D, (int)D, AUX_H1,
				    AUX_H2);
	}
	nn_gru_backward_idx(w.dr, NULL, NULL, gw(p, grad, d->ext[GRU_WX]),
			    gw(p, grad, d->ext[GRU_WH]), gw(p, grad, d->ext[GRU_BX]),
			    gw(p, grad, d->ext[GRU_BH]), w.gs, w.dh, w.gh, w.rh, w.ph, w.r, w.eidx,
			    (int)nh, NULL, gru_w(p, d->ext, GRU_WX), gru_w(p, d->ext, GRU_WH), &pk,
			    NN_GRU, (int)D, (int)D);
	/* the sum of the history's representations */
	for (int r = 0; r < (int)B; r++) {
		const float *dsum = w.dx + (size_t)r * d->xin + 5 * E + d->n_dense + 2 * D;
		for (int t = 0; t < pk.len[r]; t++)
			dien_axpy(w.dr + (size_t)w.eidx[nn_pack_pos(&pk, r, t)] * D, 1.0f, dsum, D);
	}
	/* every representation's rows: the candidates', then the table's once each */
	float *read = w.dgenre + (size_t)d->n_genres * E;
	memset(w.dgenre, 0, (size_t)d->n_genres * (E + 1) * sizeof(float));
	for (uint32_t r = 0; r < B; r++)
		represent_grads(sgi, w.dgenre, read, w.dq + (size_t)r * D, b->item[r],
				b->genres + (size_t)r * BATCH_GENRES, b->n_genres[r], E);
	for (uint32_t u = 0; u < nt; u++) {
		uint32_t i = w.uniq[u], lo = it->genre_off[i];
		represent_grads(sgi, w.dgenre, read, w.dr + (size_t)u * D, i, it->genre + lo,
				it->genre_off[i + 1] - lo, E);
	}
	for (uint32_t gi = 0; gi < d->n_genres; gi++)
		if (read[gi] != 0)
			sparse_grad_add(sgg, gi, w.dgenre + (size_t)gi * E);
}

static void dien_backward(const struct model *m, float *ws, const struct batch *b,
			  const float *dlogits, float *grad, struct sparse_grad *sg)
{
	dien_back(m, ws, b, dlogits, grad, sg, 0, 0.0f);
}

static double dien_train_forward(const struct model *m, float *ws, const struct batch *b,
				 struct model_ctx *ctx, double *terms)
{
	double aux_w = m->opt[OPT_AUX];

	terms[1] = aux_w * dien_run(m, ws, b, ctx->logits, 1, aux_w > 0);
	terms[0] = nn_bce_logits_forward(NULL, ctx->logits, b->label, (int)b->n);
	return terms[0] + terms[1];
}

static void dien_train_backward(const struct model *m, float *ws, const struct batch *b,
				struct model_ctx *ctx, float *grad, struct sparse_grad *sg)
{
	double aux_w = m->opt[OPT_AUX];

	memset(ctx->dlogits, 0, b->n * sizeof(float));
	nn_bce_logits_backward(ctx->dlogits, 1.0f, ctx->logits, b->label, (int)b->n);
	dien_back(m, ws, b, ctx->dlogits, grad, sg, aux_w > 0, (float)aux_w);
}

static double gru_flops(int G, uint32_t D)
{
	return 2.0 * G * D * (2.0 * D) + 10.0 * D; /* input and recurrent projections, gates */
}

/* The auxiliary network per pair position: the state's first layer once,
 * the item's, the second and third layers for the positive and the negative. */
static double aux_flops(uint32_t D)
{
	return 2.0 * D * AUX_H1 * 3 + 2 * (2.0 * AUX_H1 * AUX_H2 + 2.0 * AUX_H2);
}

static double dien_flops(const struct model *m)
{
	const struct dien *d = m->impl;
	uint64_t rows = atomic_load_explicit(&d->rows_seen, memory_order_relaxed);
	double len = rows ? (double)atomic_load_explicit(&d->pos_seen, memory_order_relaxed) /
				     (double)rows :
			    d->L;

	/* per position: two recurrent steps, the attention unit and (training
	 * with it, as the trainer's gflops count) the auxiliary network; per
	 * row: the unit's q terms and the MLP */
	return len * (gru_flops(3, d->D) + gru_flops(nn_gru_gates(d->kind), d->D) +
		      attn_block_flops(&d->att) + (m->opt[OPT_AUX] > 0 ? aux_flops(d->D) : 0)) +
	       2.0 * d->D * d->att.s.H[0] + dnn_flops(&d->mlp);
}

static const char *const dien_losses[] = {"train_loss", "aux_loss", NULL};

const struct model_ops model_dien = {
	.name = "dien",
	.summary = "Deep Interest Evolution Network: a GRU over the history, attention "
		   "against the candidate, an AUGRU, an auxiliary loss",
	.needs = NEEDS_DEMOGRAPHICS | NEEDS_HISTORY | NEEDS_DENSE | NEEDS_GENRES,
	.default_hidden = dien_hidden,
	.options = dien_options,
	.n_options = OPT_N,
	.losses = dien_losses,
	.wants = dien_wants,
	.init = dien_init,
	.release = dien_release,
	.workspace_floats = dien_ws_floats,
	.forward = dien_forward,
	.backward = dien_backward,
	.train_forward = dien_train_forward,
	.train_backward = dien_train_backward,
	.flops_forward = dien_flops,
};
