/*
 * twotower - LibRecommender's TwoTower (libreco/algorithms/two_tower.py):
 * a user tower and an item tower over every feature the store has, trained
 * with an in-batch softmax over the train positives (Yi et al. 2019: the
 * other rows' items are the negatives, their sampling bias corrected by
 * log q, q an item's share of the train positives).
 *
 * User tower input (B, 8E):
 *   [user | gender | age | occupation | zip | mean of item[h] over the history
 *    | dense0 * D[0] | dense1 * D[1]]
 * Item tower input (B, 4E):
 *   [item | mean of genre[g] over the item's genres | dense2 * D[2] | dense3 * D[3]]
 * where D is a (4, E) table: each dense feature is a learned vector scaled
 * by its value.  History items share the item table with the item tower.
 * Each tower is LibRecommender's dense_nn(use_bn, bn_after_activation):
 *   BN(x) -> Linear -> ReLU -> BN [-> dropout] -> ... -> Linear (the last layer linear)
 * BatchNorm: eps 1e-3, running statistics with momentum 0.01 (TF's 0.99),
 * non-trainable tensors (params_add_state) used when scoring.  Dropout
 * (option dropout, training only, inverted scaling) follows each hidden
 * layer's BN, as dense_nn places it; its masks come from the batch's random
 * stream.  With norm_embed the tower outputs are L2-normalised.
 * Score = <u, v>.
 *
 * Loss (training, on a batch of positive records; the view hands it only
 * those): logits z_ij = <u_i, v_j> / tau - log q_j, cross entropy with the
 * diagonal as targets (models/nn: nn_inbatch_softmax_*).  tau is the option
 * temperature, or a learned scalar (initialised to 1) when it is <= 0.
 *
 * Self-supervised term (option ssl_pattern, softmax only; Yao et al. 2020,
 * LibRecommender's libreco/feature/ssl.py and tfops/loss.py): B items drawn
 * uniformly from the item ids 1 .. n_items-1 (without replacement when B is
 * smaller), each with its genres and dense values from the items table, go
 * through the item tower twice, as a left and a right view in which some of
 * the item's sparse fields (the id, the genre bag) are masked: the field's
 * slot of the tower input is zero (LibRecommender's non-trainable zero
 * "default" embedding); the dense fields are never masked.  One mask per
 * view and batch, the same for every row:
 *   rfm                each view masks half the fields (rounded down), drawn
 *                      independently;
 *   rfm-complementary  a random half masked on the left, the rest on the right;
 *   cfm                a random seed field; the left view masks the half of
 *                      the other fields with the highest mutual information
 *                      with it (over the train positives, computed once,
 *                      when the data is attached), the right view the rest.
 * ssl_loss = alpha * mean_i -log softmax_j(<l_i, r_j> / tau)[i], the same
 * temperature, no log q, no accidental-hit removal.  Each view is its own
 * BatchNorm batch and updates the running statistics, as TF's update ops
 * for every call of the shared tower do.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fields.h"
#include "interact.h"
#include "model.h"
#include "nn/nn.h"
#include "sampler.h"
#include "store/items.h"

#define TT_EPS 1e-3f      /* BatchNorm epsilon (TF's default) */
#define TT_MOMENTUM 0.01f /* running statistics (TF's momentum 0.99) */
#define TT_TAU_MIN 1e-2f  /* a learned temperature is used from here up */

enum {
	OPT_LOSS,
	OPT_TEMPERATURE,
	OPT_NORM,
	OPT_HITS,
	OPT_CORRECTION,
	OPT_NUM_NEG,
	OPT_SAMPLER,
	OPT_MARGIN,
	OPT_SSL,
	OPT_ALPHA,
	OPT_DROPOUT,
	OPT_N
};
enum { LOSS_SOFTMAX, LOSS_CE, LOSS_MARGIN };
static const char *const loss_names[] = {"softmax", "cross_entropy", "max_margin", NULL};
enum { SSL_NONE, SSL_RFM, SSL_RFM_COMPLEMENTARY, SSL_CFM };
static const char *const ssl_names[] = {"none", "rfm", "rfm-complementary", "cfm", NULL};
static const struct model_option tt_options[OPT_N] = {
	[OPT_LOSS] = {"loss", MOPT_ENUM, 0, 0, LOSS_SOFTMAX, loss_names,
		      "softmax (in-batch, positives only), cross_entropy (BCE over positives and "
		      "sampled negatives) or max_margin (hinge over positive/negative pairs)"},
	[OPT_TEMPERATURE] = {"temperature", MOPT_FLOAT, -1, 100, 1.0, NULL,
			     "softmax: logits divided by it; <= 0: learned, starting at 1"},
	[OPT_NORM] = {"norm_embed", MOPT_BOOL, 0, 1, 0, NULL, "L2-normalise the tower outputs"},
	[OPT_HITS] = {"remove_accidental_hits", MOPT_BOOL, 0, 1, 0, NULL,
		      "softmax: leave out in-batch negatives that are the row's own item"},
	[OPT_CORRECTION] = {"use_correction", MOPT_BOOL, 0, 1, 1, NULL,
			    "softmax: subtract log q, q the item's share of train positives"},
	[OPT_NUM_NEG] = {"num_neg", MOPT_INT, 0, 100, 1, NULL,
			 "cross_entropy, max_margin: negatives sampled per positive"},
	[OPT_SAMPLER] = {"sampler", MOPT_ENUM, 0, 0, 0, model_sampler_names,
			 "cross_entropy, max_margin: how negatives are drawn"},
	[OPT_MARGIN] = {"margin", MOPT_FLOAT, 0, 100, 1.0, NULL,
			"max_margin: the margin a positive must beat each negative by"},
	[OPT_SSL] = {"ssl_pattern", MOPT_ENUM, 0, 0, SSL_NONE, ssl_names,
		     "softmax: self-supervised loss over two feature-masked views of random "
		     "items: random (rfm), complementary (rfm-complementary) or correlated "
		     "(cfm) masking"},
	[OPT_ALPHA] = {"alpha", MOPT_FLOAT, 0, 100, 0.2, NULL,
		       "ssl_pattern: the weight of the self-supervised loss"},
	[OPT_DROPOUT] = {"dropout", MOPT_FLOAT, 0, 0.9, 0, NULL,
			 "dropout rate after each hidden layer of both towers (training only)"},
};

static const char *const tt_losses[] = {"train_loss", "ssl_loss", NULL};

/* The item fields SSL masks (bits of a mask): the item tower's sparse slots. */
enum { FM_ITEM = 1u << 0, FM_GENRES = 1u << 1 };
#define SSL_FIELDS 2

#define TT_MAX_LAYERS MODEL_MAX_HIDDEN

/* One tower: BN over the input, then Linear (ReLU, BN) ... Linear. */
struct tower {
	uint32_t in, n, width[TT_MAX_LAYERS], maxw;
	int lw[TT_MAX_LAYERS], lb[TT_MAX_LAYERS];
	/* BN k: k = 0 on the input, k = l + 1 after layer l < n - 1 */
	int g[TT_MAX_LAYERS], b[TT_MAX_LAYERS], rm[TT_MAX_LAYERS], rv[TT_MAX_LAYERS];
};

struct twotower {
	uint32_t E, L, D; /* embedding width, history length, output width */
	int t[F_N], dense_t, tau_t;
	struct tower ut, it;
	/*
	 * cfm: cfm_left[s] is the mask of the left view when field s is the
	 * seed, from mi, the fields' pairwise mutual information over the train
	 * positives (nats).  Computed when the data is attached (tt_data_ready).
	 */
	unsigned cfm_left[SSL_FIELDS];
	double mi[SSL_FIELDS][SSL_FIELDS];
};

/* One item's values of two fields (keys a, b) and its weight (train positives). */
struct mi_row {
	uint64_t a, b, w;
};

static const uint32_t tt_hidden[] = {128, 64, 32, 0};

static int tower_declare(struct tower *tw, struct params *p, const char *pre, uint32_t in,
			 const uint32_t *widths, int n)
{
	char name[PARAM_NAME_MAX];
	uint32_t prev = in;

	tw->in = tw->maxw = in;
	tw->n = (uint32_t)n;
	for (int k = 0; k < n; k++) { /* BN k normalises width prev */
		snprintf(name, sizeof(name), "%s.bn%d.gamma", pre, k);
		tw->g[k] = params_add(p, name, 1, prev, 0, INIT_ONE, 0);
		snprintf(name, sizeof(name), "%s.bn%d.beta", pre, k);
		tw->b[k] = params_add(p, name, 1, prev, 0, INIT_ZERO, 0);
		snprintf(name, sizeof(name), "%s.bn%d.mean", pre, k);
		tw->rm[k] = params_add_state(p, name, 1, prev, INIT_ZERO);
		snprintf(name, sizeof(name), "%s.bn%d.var", pre, k);
		tw->rv[k] = params_add_state(p, name, 1, prev, INIT_ONE);
		snprintf(name, sizeof(name), "%s.%d.w", pre, k);
		tw->lw[k] = params_add(p, name, widths[k], prev, 0, INIT_XAVIER, 0);
		snprintf(name, sizeof(name), "%s.%d.b", pre, k);
		tw->lb[k] = params_add(p, name, 1, widths[k], 0, INIT_ZERO, 0);
		if (tw->g[k] < 0 || tw->b[k] < 0 || tw->rm[k] < 0 || tw->rv[k] < 0 ||
		    tw->lw[k] < 0 || tw->lb[k] < 0)
			return HR_EINVAL;
		tw->width[k] = widths[k];
		prev = widths[k];
		if (prev > tw->maxw)
			tw->maxw = prev;
	}
	return 0;
}

/* Layout of a tower's workspace for B rows. */
struct tower_ws {
	float *x;                                         /* (B, in), the caller's */
	float *y[TT_MAX_LAYERS];                          /* BN k output (B, width) */
	float *mean[TT_MAX_LAYERS], *rstd[TT_MAX_LAYERS]; /* BN k cache */
	float *drop[TT_MAX_LAYERS];                       /* dropout mask of y[k], k >= 1 */
	float *z[TT_MAX_LAYERS], *a[TT_MAX_LAYERS];       /* layer l output, ReLU of it */
	float *out, *nrm;                                 /* (B, D) output (normalised), (B) */
	float *g1, *g2;                                   /* (B, maxw) gradients */
	float *dx;                                        /* (B, in) */
};

/* With dropout, a mask per BN output after a hidden layer (k >= 1). */
static size_t tower_layout(const struct tower *tw, uint32_t B, int dropout, float *base,
			   struct tower_ws *w)
{
	size_t o = 0;
	uint32_t prev = tw->in;
#define PUT(f, k) (w->f = base ? base + o : NULL, o += (k))
	PUT(x, (size_t)B * tw->in);
	for (uint32_t k = 0; k < tw->n; k++) {
		PUT(y[k], (size_t)B * prev);
		PUT(mean[k], prev);
		PUT(rstd[k], prev);
		PUT(drop[k], k && dropout ? (size_t)B * prev : 0);
		PUT(z[k], (size_t)B * tw->width[k]);
		PUT(a[k], (size_t)B * tw->width[k]);
		prev = tw->width[k];
	}
	PUT(out, (size_t)B * prev);
	PUT(nrm, B);
	PUT(g1, (size_t)B * tw->maxw);
	PUT(g2, (size_t)B * tw->maxw);
	PUT(dx, (size_t)B * tw->in);
#undef PUT
	return o;
}

/*
 * Runs the tower on w->x; the output (normalised with norm) lands in w->out.
 * Training with rng and dropout > 0 drops elements of each hidden layer's
 * BN output (seeds from rng, masks kept in w->drop for the backward).
 */
static void tower_forward(const struct tower *tw, const struct params *p, struct tower_ws *w,
			  uint32_t B, int train, int norm, float dropout, struct rng *rng)
{
	const float *in = w->x;
	uint32_t prev = tw->in, D = tw->width[tw->n - 1];

	for (uint32_t k = 0; k < tw->n; k++) {
		float *rm = p->t[tw->rm[k]].w, *rv = p->t[tw->rv[k]].w;
		nn_batchnorm_forward(w->y[k], w->mean[k], w->rstd[k], in, p->t[tw->g[k]].w,
				     p->t[tw->b[k]].w, rm, rv, TT_EPS, train, (int)B, (int)prev);
		if (train) /* shared state, written racily by the workers (nn.h) */
			nn_running_stats_update(rm, rv, w->mean[k], w->rstd[k], TT_EPS, TT_MOMENTUM,
						(int)B, (int)prev);
		if (k && train && dropout > 0 && rng) /* in place: backward reads y as dropped */
			nn_dropout_forward(w->y[k], w->drop[k], w->y[k], dropout, rng_next(rng),
					   true, (int)(B * prev));
		nn_linear_forward(w->z[k], w->y[k], p->t[tw->lw[k]].w, p->t[tw->lb[k]].w, (int)B,
				  (int)prev, (int)tw->width[k]);
		if (k + 1 < tw->n) {
			nn_relu_forward(w->a[k], w->z[k], (int)(B * tw->width[k]));
			in = w->a[k];
		}
		prev = tw->width[k];
	}
	memcpy(w->out, w->z[tw->n - 1], (size_t)B * D * sizeof(float));
	if (!norm)
		return;
	for (uint32_t r = 0; r < B; r++) {
		float *o = w->out + (size_t)r * D;
		double s = 0;
		for (uint32_t d = 0; d < D; d++)
			s += (double)o[d] * o[d];
		w->nrm[r] = (float)sqrt(s) + 1e-12f;
		for (uint32_t d = 0; d < D; d++)
			o[d] /= w->nrm[r];
	}
}

/*
 * From dout (B, D), which it may overwrite: w->dx = d/dx; dense grads into
 * grad.  dropout as the training forward's (its masks in w->drop).
 */
static void tower_backward(const struct tower *tw, const struct params *p, struct tower_ws *w,
			   float *dout, float *grad, uint32_t B, int norm, float dropout)
{
	uint32_t D = tw->width[tw->n - 1];
	float *d = dout, *bufs[2] = {w->g1, w->g2};
	int k2 = 0;

	if (norm) /* y = x / |x|: dx = (dy - y <y, dy>) / |x| */
		for (uint32_t r = 0; r < B; r++) {
			const float *y = w->out + (size_t)r * D;
			float *dy = dout + (size_t)r * D;
			double s = 0;
			for (uint32_t j = 0; j < D; j++)
				s += (double)y[j] * dy[j];
			for (uint32_t j = 0; j < D; j++)
				dy[j] = (dy[j] - y[j] * (float)s) / w->nrm[r];
		}
	for (int k = (int)tw->n - 1; k >= 0; k--) {
		uint32_t O = tw->width[k], I = k ? tw->width[k - 1] : tw->in;
		const float *in_k = k ? w->a[k - 1] : w->x; /* BN k's input */
		float *dy = bufs[k2], *dprev;
		k2 ^= 1;
		memset(dy, 0, (size_t)B * I * sizeof(float));
		nn_linear_backward(dy, grad + p->t[tw->lw[k]].offset, grad + p->t[tw->lb[k]].offset,
				   d, w->y[k], p->t[tw->lw[k]].w, (int)B, (int)I, (int)O);
		if (k && dropout > 0) /* through the dropout of BN k's output */
			for (size_t i = 0; i < (size_t)B * I; i++)
				dy[i] *= w->drop[k][i];
		dprev = k ? bufs[k2] : w->dx;
		memset(dprev, 0, (size_t)B * I * sizeof(float));
		nn_batchnorm_backward(dprev, grad + p->t[tw->g[k]].offset,
				      grad + p->t[tw->b[k]].offset, dy, in_k, w->mean[k],
				      w->rstd[k], p->t[tw->g[k]].w, true, (int)B, (int)I);
		if (k) { /* through the ReLU of layer k - 1, in place */
			float *dz = bufs[k2 ^ 1];
			memset(dz, 0, (size_t)B * I * sizeof(float));
			nn_relu_backward(dz, dprev, w->a[k - 1], (int)(B * I));
			d = dz; /* the next layer's dy goes to the other buffer, bufs[k2] */
		}
	}
}

static int tt_init(struct model *m, const struct store_info *info)
{
	struct twotower *t = calloc(1, sizeof(*t));
	int ssl = (int)m->opt[OPT_SSL], rc;

	if (!t)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = t;
	if (info->n_dense != 4)
		return hr_error(HR_EINVAL,
				"model 'twotower' expects the 4 dense fields of format 1, the "
				"store has %u",
				info->n_dense);
	if (m->cfg.n_hidden > TT_MAX_LAYERS)
		return hr_error(HR_EINVAL, "model 'twotower': at most %d hidden widths",
				TT_MAX_LAYERS);
	if (ssl != SSL_NONE && m->opt[OPT_LOSS] != LOSS_SOFTMAX)
		return hr_error(HR_EINVAL,
				"model 'twotower': ssl_pattern %s needs loss softmax (its term is "
				"an in-batch softmax), not loss %s; use --loss softmax or "
				"--ssl-pattern none",
				ssl_names[ssl], loss_names[(int)m->opt[OPT_LOSS]]);
	if (ssl != SSL_NONE && info->vocab[SF_ITEM] < 2)
		return hr_error(HR_EINVAL,
				"model 'twotower': ssl_pattern %s needs items, the "
				"store has none",
				ssl_names[ssl]);
	t->E = m->cfg.emb_dim;
	t->L = info->hist_len;
	rc = fields_declare(&m->params, info, t->E, INIT_XAVIER, 0, t->t);
	if (rc)
		return rc;
	/* Rows one sample reads beyond fields_declare's: its negatives, its two
	 * SSL views' items (each view one item and its genres). */
	if (m->opt[OPT_LOSS] != LOSS_SOFTMAX) {
		m->params.t[t->t[F_ITEM]].lookups += (uint32_t)m->opt[OPT_NUM_NEG];
		m->params.t[t->t[F_GENRE]].lookups *= 1 + (uint32_t)m->opt[OPT_NUM_NEG];
	}
	if (ssl != SSL_NONE) {
		m->params.t[t->t[F_ITEM]].lookups += 2;
		m->params.t[t->t[F_GENRE]].lookups *= 3;
	}
	t->dense_t = params_add(&m->params, "dense_emb", 4, t->E, 0, INIT_XAVIER, 0);
	t->tau_t = -1;
	if (m->opt[OPT_TEMPERATURE] <= 0)
		t->tau_t = params_add(&m->params, "temperature", 1, 1, 0, INIT_ONE, 0);
	if (t->dense_t < 0 || (m->opt[OPT_TEMPERATURE] <= 0 && t->tau_t < 0))
		return HR_EINVAL;
	rc = tower_declare(&t->ut, &m->params, "user_tower", 8 * t->E, m->cfg.hidden,
			   m->cfg.n_hidden);
	if (!rc)
		rc = tower_declare(&t->it, &m->params, "item_tower", 4 * t->E, m->cfg.hidden,
				   m->cfg.n_hidden);
	t->D = m->cfg.hidden[m->cfg.n_hidden - 1];
	return rc;
}

static void tt_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

static unsigned tt_wants(const struct model *m)
{
	(void)m;
	/* the positives' keys; item shares and negatives; negatives' and SSL items' genres */
	return WANTS_RATINGS | WANTS_NEGATIVES | WANTS_ITEMS;
}

static enum model_view tt_view(const struct model *m)
{
	(void)m;
	return VIEW_POSITIVES;
}

/* Item rows per batch row: 1, or 1 + num_neg for the sampled losses. */
static uint32_t item_factor(const struct model *m)
{
	return m->opt[OPT_LOSS] == LOSS_SOFTMAX ? 1 : 1 + (uint32_t)m->opt[OPT_NUM_NEG];
}

/*
 * Workspace for B batch rows: the user tower over B rows, the item tower
 * over Bi = B * item_factor rows (the batch's items, then each row's
 * negatives), the item side of those rows (ids, padded genres, lengths,
 * the two item dense values), pooling scratch, the loss's buffers; with
 * SSL the item tower twice more over B rows (the left and right views),
 * the views' items, their masks and the SSL softmax's buffers.
 */
struct tt_ws {
	struct tower_ws u, v, sl, sr;
	uint32_t *item, *genres, *n_genres; /* (Bi), (Bi, BATCH_GENRES), (Bi) */
	float *idense;                      /* (Bi, 2) */
	float *pool, *dpool, *dslots, *logq, *S, *P, *dS, *du, *dv;
	float *pos, *neg, *dpos, *dneg; /* (B), (B, N): the sampled losses' scores */
	float *lab, *lg, *dlg;          /* (Bi): cross_entropy's labels, logits, grads */
	/* SSL: the views' items (B) and their genres and dense values, the two
	 * masks (left, right), a bitset over the item ids (drawing without
	 * replacement), scores (B, B) of left against right, their softmax and
	 * gradient, the views' output gradients (B, D). */
	uint32_t *sitem, *sgenres, *sn_genres, *smask, *seen;
	float *sidense, *S2, *P2, *dS2, *dl, *dr;
};

static size_t tt_layout(const struct model *m, uint32_t B, float *base, struct tt_ws *w)
{
	const struct twotower *t = m->impl;
	int drop = m->opt[OPT_DROPOUT] > 0, ssl = m->opt[OPT_SSL] != SSL_NONE;
	size_t o = 0, S = t->L > BATCH_GENRES ? t->L : BATCH_GENRES,
	       Bi = (size_t)B * item_factor(m);
	size_t Bs = ssl ? B : 0, words = ssl ? (m->info.vocab[SF_ITEM] + 31) / 32 : 0;

	o += tower_layout(&t->ut, B, drop, base, &w->u);
	o += tower_layout(&t->it, (uint32_t)Bi, drop, base ? base + o : NULL, &w->v);
	o += tower_layout(&t->it, (uint32_t)Bs, drop, base ? base + o : NULL, &w->sl);
	o += tower_layout(&t->it, (uint32_t)Bs, drop, base ? base + o : NULL, &w->sr);
#define PUT(f, k) (w->f = base ? base + o : NULL, o += (k))
#define PUTU(f, k) (w->f = base ? (uint32_t *)(void *)(base + o) : NULL, o += (k))
	PUTU(item, Bi);
	PUTU(genres, Bi * BATCH_GENRES);
	PUTU(n_genres, Bi);
	PUT(idense, Bi * 2);
	PUT(pool, Bi * t->E);
	PUT(dpool, Bi * t->E);
	PUT(dslots, Bi * S * t->E);
	PUT(logq, B);
	PUT(S, (size_t)B * B);
	PUT(P, (size_t)B * B);
	PUT(dS, (size_t)B * B);
	PUT(du, (size_t)B * t->D);
	PUT(dv, Bi * t->D);
	PUT(pos, B);
	PUT(neg, Bi);
	PUT(dpos, B);
	PUT(dneg, Bi);
	PUT(lab, Bi);
	PUT(lg, Bi);
	PUT(dlg, Bi);
	PUTU(sitem, Bs);
	PUTU(sgenres, Bs * BATCH_GENRES);
	PUTU(sn_genres, Bs);
	PUTU(smask, 2);
	PUTU(seen, words);
	PUT(sidense, Bs * 2);
	PUT(S2, Bs * Bs);
	PUT(P2, Bs * Bs);
	PUT(dS2, Bs * Bs);
	PUT(dl, Bs * t->D);
	PUT(dr, Bs * t->D);
#undef PUTU
#undef PUT
	return o;
}

static size_t tt_ws_floats(const struct model *m, uint32_t B)
{
	struct tt_ws w;

	return tt_layout(m, B, NULL, &w);
}

/* Item i's genres (into a BATCH_GENRES row, zero-padded) and dense values from the items table. */
static void item_from_table(const struct store_items *it, uint32_t i, uint32_t *genres,
			    uint32_t *n_genres, float *dense)
{
	uint32_t lo = it->genre_off[i], n = it->genre_off[i + 1] - lo;

	memset(genres, 0, BATCH_GENRES * sizeof(uint32_t));
	memcpy(genres, it->genre + lo, n * sizeof(uint32_t));
	*n_genres = n;
	dense[0] = it->dense[2 * (size_t)i];
	dense[1] = it->dense[2 * (size_t)i + 1];
}

/*
 * The item side of the item tower's rows: the batch's own items (genres and
 * dense values from their records), then, with negatives, row r's num_neg
 * sampled items at Bi rows B + r * N + j, their genres and dense values
 * from the items table (store/items.h: the item as of the end of train).
 */
static uint32_t item_side(const struct model *m, struct tt_ws *w, const struct batch *b,
			  struct model_ctx *ctx, uint32_t F)
{
	uint32_t B = b->n, N = F - 1, k = B;
	const struct store_items *it = m->data ? m->data->items : NULL;

	memcpy(w->item, b->item, B * sizeof(uint32_t));
	memcpy(w->genres, b->genres, (size_t)B * BATCH_GENRES * sizeof(uint32_t));
	memcpy(w->n_genres, b->n_genres, B * sizeof(uint32_t));
	for (uint32_t r = 0; r < B; r++) {
		w->idense[2 * r] = b->dense[(size_t)r * b->n_dense + 2];
		w->idense[2 * r + 1] = b->dense[(size_t)r * b->n_dense + 3];
	}
	for (uint32_t r = 0; N && r < B; r++)
		for (uint32_t j = 0; j < N; j++, k++) {
			uint32_t i =
				sampler_draw(m->data->sampler, &ctx->rng, b->user[r], b->item[r]);
			w->item[k] = i;
			item_from_table(it, i, w->genres + (size_t)k * BATCH_GENRES,
					&w->n_genres[k], &w->idense[2 * k]);
		}
	return k;
}

/*
 * The item tower's input x (n, 4E) for items with their genres and dense
 * values; a field in masked (FM_* bits) has a zero slot.
 */
static void item_input(const struct model *m, struct tt_ws *w, float *x, const uint32_t *item,
		       const uint32_t *genres, const uint32_t *n_genres, const float *idense,
		       uint32_t n, unsigned masked)
{
	const struct twotower *t = m->impl;
	const struct params *p = &m->params;
	const float *Dt = p->t[t->dense_t].w;
	uint32_t E = t->E, si = 4 * E;

	if (!(masked & FM_ITEM))
		fields_gather(x, si, 0, p->t[t->t[F_ITEM]].w, item, n, E);
	if (!(masked & FM_GENRES))
		nn_bag_forward(w->pool, NULL, genres, n_genres, p->t[t->t[F_GENRE]].w, NN_POOL_MEAN,
			       (int)n, BATCH_GENRES, (int)p->t[t->t[F_GENRE]].rows, (int)E);
	for (uint32_t r = 0; r < n; r++) {
		float *xi = x + (size_t)r * si;
		if (masked & FM_ITEM)
			memset(xi, 0, E * sizeof(float));
		if (masked & FM_GENRES)
			memset(xi + E, 0, E * sizeof(float));
		else
			memcpy(xi + E, w->pool + (size_t)r * E, E * sizeof(float));
		for (uint32_t e = 0; e < E; e++) {
			xi[2 * E + e] = idense[2 * r] * Dt[2 * E + e];
			xi[3 * E + e] = idense[2 * r + 1] * Dt[3 * E + e];
		}
	}
}

/* The gradients of item_input's tables from dx (n, 4E): the unmasked
 * fields' rows into sg, the dense vectors' into dD (4, E). */
static void item_input_backward(const struct model *m, struct tt_ws *w, const float *dx,
				const uint32_t *item, const uint32_t *genres,
				const uint32_t *n_genres, const float *idense, uint32_t n,
				unsigned masked, float *dD, struct sparse_grad *sg)
{
	const struct twotower *t = m->impl;
	uint32_t E = t->E, si = 4 * E;

	for (uint32_t r = 0; r < n; r++) {
		const float *dv = dx + (size_t)r * si;
		if (!(masked & FM_ITEM))
			sparse_grad_add(&sg[t->t[F_ITEM]], item[r], dv);
		memcpy(w->dpool + (size_t)r * E, dv + E, E * sizeof(float));
		for (uint32_t e = 0; e < E; e++) {
			dD[2 * E + e] += idense[2 * r] * dv[2 * E + e];
			dD[3 * E + e] += idense[2 * r + 1] * dv[3 * E + e];
		}
	}
	if (!(masked & FM_GENRES))
		fields_bag_grads(&sg[t->t[F_GENRE]], w->dslots, w->dpool, genres, n_genres, n,
				 BATCH_GENRES, E);
}

static float tt_dropout(const struct model *m)
{
	return (float)m->opt[OPT_DROPOUT];
}

/* Fills the user tower's input from b, the item tower's from w's item side
 * (Bi rows), and runs both (dropout when training with rng). */
static void towers(const struct model *m, struct tt_ws *w, const struct batch *b, uint32_t Bi,
		   int train, struct rng *rng)
{
	const struct twotower *t = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = t->E, su = 8 * E;
	const float *Dt = p->t[t->dense_t].w;
	int norm = m->opt[OPT_NORM] != 0;

	fields_gather(w->u.x, su, 0, p->t[t->t[F_USER]].w, b->user, B, E);
	fields_gather(w->u.x, su, E, p->t[t->t[F_GENDER]].w, b->gender, B, E);
	fields_gather(w->u.x, su, 2 * E, p->t[t->t[F_AGE]].w, b->age, B, E);
	fields_gather(w->u.x, su, 3 * E, p->t[t->t[F_OCC]].w, b->occupation, B, E);
	fields_gather(w->u.x, su, 4 * E, p->t[t->t[F_ZIP]].w, b->zip, B, E);
	nn_bag_forward(w->pool, NULL, b->hist, b->n_hist, p->t[t->t[F_ITEM]].w, NN_POOL_MEAN,
		       (int)B, (int)t->L, (int)p->t[t->t[F_ITEM]].rows, (int)E);
	for (uint32_t r = 0; r < B; r++) {
		const float *dn = b->dense + (size_t)r * b->n_dense;
		float *xu = w->u.x + r * su;
		memcpy(xu + 5 * E, w->pool + (size_t)r * E, E * sizeof(float));
		for (uint32_t e = 0; e < E; e++) {
			xu[6 * E + e] = dn[0] * Dt[e];
			xu[7 * E + e] = dn[1] * Dt[E + e];
		}
	}
	item_input(m, w, w->v.x, w->item, w->genres, w->n_genres, w->idense, Bi, 0);
	tower_forward(&t->ut, p, &w->u, B, train, norm, tt_dropout(m), rng);
	tower_forward(&t->it, p, &w->v, Bi, train, norm, tt_dropout(m), rng);
}

static void tt_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
		       int train)
{
	const struct twotower *t = m->impl;
	struct tt_ws w;

	tt_layout(m, b->n, ws, &w);
	item_side(m, &w, b, NULL, 1);
	towers(m, &w, b, b->n, train, NULL);
	nn_dot_forward(logits, w.u.out, w.v.out, (int)b->n, (int)t->D);
}

static float tt_tau(const struct model *m)
{
	const struct twotower *t = m->impl;

	if (t->tau_t < 0)
		return (float)m->opt[OPT_TEMPERATURE];
	return fmaxf(m->params.t[t->tau_t].w[0], TT_TAU_MIN);
}

/* ------------------------------------------------------------------ SSL */

/* H of the keys (a, or (a, b) with pair) of rows sorted by them, weighted by w over total. */
static double entropy_sorted(const struct mi_row *r, size_t n, int pair, double total)
{
	double h = 0, g = 0;

	for (size_t k = 0; k < n; k++) {
		g += (double)r[k].w;
		if (k + 1 == n || r[k + 1].a != r[k].a || (pair && r[k + 1].b != r[k].b)) {
			h -= g / total * log(g / total);
			g = 0;
		}
	}
	return h;
}

static int mi_row_cmp(const void *x, const void *y)
{
	const struct mi_row *a = x, *b = y;

	if (a->a != b->a)
		return a->a < b->a ? -1 : 1;
	return a->b < b->b ? -1 : a->b > b->b;
}

/* Item i's value of SSL field f as a category: the id, or its genre set (a
 * hash of the set, independent of the order of its genres). */
static uint64_t field_value(const struct store_items *it, uint32_t i, int f)
{
	uint64_t h;

	if (f == 0)
		return i;
	h = it->genre_off[i + 1] - it->genre_off[i];
	for (uint32_t k = it->genre_off[i]; k < it->genre_off[i + 1]; k++) {
		uint64_t x = it->genre[k];
		h += splitmix64(&x);
	}
	return h;
}

/*
 * The fields' pairwise mutual information over the train positives (as
 * LibRecommender's get_mutual_info over its train rows, sklearn's
 * mutual_info_score in nats): every field is a function of the item, so a
 * positive counts as its item's values.  MI = H(X) + H(Y) - H(X, Y).
 * Then cfm_left[s]: the SSL_FIELDS / 2 other fields of highest MI with s
 * (ties: the lower field).
 */
static int tt_data_ready(struct model *m)
{
	struct twotower *t = m->impl;
	const struct interactions *pos = m->data->pos;
	const struct store_items *it = m->data->items;
	uint32_t n_items = m->info.vocab[SF_ITEM];
	double h[SSL_FIELDS], total = (double)pos->n;
	struct mi_row *r;
	size_t n;

	if (m->opt[OPT_SSL] != SSL_CFM)
		return 0;
	r = malloc(n_items * sizeof(*r));
	if (!r)
		return hr_error(HR_ENOMEM, "out of memory for cfm's mutual information");

	for (int f = 0; f < SSL_FIELDS; f++)
		for (int g = f; g < SSL_FIELDS; g++) {
			n = 0;
			for (uint32_t i = 1; i < n_items; i++) {
				uint64_t c = pos->item_off[i + 1] - pos->item_off[i];
				if (!c)
					continue;
				r[n].a = field_value(it, i, f);
				r[n].b = g == f ? 0 : field_value(it, i, g);
				r[n++].w = c;
			}
			qsort(r, n, sizeof(*r), mi_row_cmp);
			if (g == f)
				h[f] = entropy_sorted(r, n, 0, total);
			else
				t->mi[f][g] = entropy_sorted(r, n, 1, total); /* H(f, g) for now */
		}
	for (int f = 0; f < SSL_FIELDS; f++) {
		t->mi[f][f] = -1; /* never its own partner */
		for (int g = f + 1; g < SSL_FIELDS; g++)
			t->mi[f][g] = t->mi[g][f] = fmax(0.0, h[f] + h[g] - t->mi[f][g]);
	}
	for (int s = 0; s < SSL_FIELDS; s++) {
		unsigned left = 0;
		for (int k = 0; k < SSL_FIELDS / 2; k++) {
			int best = -1;
			for (int f = 0; f < SSL_FIELDS; f++)
				if (f != s && !(left & (1u << f)) &&
				    (best < 0 || t->mi[s][f] > t->mi[s][best]))
					best = f;
			left |= 1u << best;
		}
		t->cfm_left[s] = left;
	}
	free(r);
	return 0;
}

/* A random order of the SSL fields (Fisher-Yates). */
static void shuffle_fields(struct rng *rng, int *perm)
{
	for (int f = 0; f < SSL_FIELDS; f++)
		perm[f] = f;
	for (int f = SSL_FIELDS - 1; f > 0; f--) {
		int j = (int)rng_below(rng, (uint32_t)f + 1), x = perm[f];
		perm[f] = perm[j];
		perm[j] = x;
	}
}

/* The batch's masks (FM_* bits) of the left and right views. */
static void ssl_masks(const struct model *m, struct rng *rng, uint32_t *left, uint32_t *right)
{
	const struct twotower *t = m->impl;
	int perm[SSL_FIELDS], half = SSL_FIELDS / 2;

	*left = *right = 0;
	switch ((int)m->opt[OPT_SSL]) {
	case SSL_CFM: {
		uint32_t s = rng_below(rng, SSL_FIELDS);
		*left = t->cfm_left[s];
		*right = ((1u << SSL_FIELDS) - 1) & ~*left;
		break;
	}
	case SSL_RFM_COMPLEMENTARY:
		shuffle_fields(rng, perm);
		for (int k = 0; k < SSL_FIELDS; k++)
			*(k < half ? left : right) |= 1u << perm[k];
		break;
	default: /* rfm: two independent halves */
		shuffle_fields(rng, perm);
		for (int k = 0; k < half; k++)
			*left |= 1u << perm[k];
		shuffle_fields(rng, perm);
		for (int k = 0; k < half; k++)
			*right |= 1u << perm[k];
	}
}

/*
 * B item ids uniform over 1 .. n_items-1, distinct when B < n_items - 1
 * (Floyd's algorithm over a bitset), else independent draws.
 */
static void ssl_items(uint32_t *out, uint32_t *seen, uint32_t n_items, uint32_t B, struct rng *rng)
{
	uint32_t n = n_items - 1, k = 0;

	if (B >= n) {
		for (uint32_t r = 0; r < B; r++)
			out[r] = 1 + rng_below(rng, n);
		return;
	}
	memset(seen, 0, (n_items + 31) / 32 * sizeof(uint32_t));
	for (uint32_t j = n - B; j < n; j++) {
		uint32_t x = rng_below(rng, j + 1);
		if (seen[x / 32] & (1u << (x % 32)))
			x = j;
		seen[x / 32] |= 1u << (x % 32);
		out[k++] = 1 + x;
	}
}

/* The SSL views of B random items through the item tower and alpha times
 * their in-batch softmax (what terms[1] reports). */
static double ssl_forward(const struct model *m, struct tt_ws *w, uint32_t B, struct rng *rng)
{
	const struct twotower *t = m->impl;
	const struct params *p = &m->params;
	const struct store_items *it = m->data->items;
	int norm = m->opt[OPT_NORM] != 0;

	ssl_items(w->sitem, w->seen, m->info.vocab[SF_ITEM], B, rng);
	for (uint32_t r = 0; r < B; r++)
		item_from_table(it, w->sitem[r], w->sgenres + (size_t)r * BATCH_GENRES,
				&w->sn_genres[r], &w->sidense[2 * r]);
	ssl_masks(m, rng, &w->smask[0], &w->smask[1]);
	item_input(m, w, w->sl.x, w->sitem, w->sgenres, w->sn_genres, w->sidense, B, w->smask[0]);
	tower_forward(&t->it, p, &w->sl, B, 1, norm, tt_dropout(m), rng);
	item_input(m, w, w->sr.x, w->sitem, w->sgenres, w->sn_genres, w->sidense, B, w->smask[1]);
	tower_forward(&t->it, p, &w->sr, B, 1, norm, tt_dropout(m), rng);
	nn_sgemm(false, true, (int)B, (int)B, (int)t->D, 1.0f, w->sl.out, (int)t->D, w->sr.out,
		 (int)t->D, 0.0f, w->S2, (int)B);
	return m->opt[OPT_ALPHA] *
	       nn_inbatch_softmax_forward(w->P2, w->S2, NULL, NULL, tt_tau(m), (int)B);
}

/* The gradient of ssl_forward's term: into grad, sg and *dtau. */
static void ssl_backward(const struct model *m, struct tt_ws *w, uint32_t B, float *grad,
			 struct sparse_grad *sg, float *dtau)
{
	const struct twotower *t = m->impl;
	const struct params *p = &m->params;
	float *dD = grad + p->t[t->dense_t].offset;
	int norm = m->opt[OPT_NORM] != 0;
	uint32_t D = t->D;

	memset(w->dS2, 0, (size_t)B * B * sizeof(float));
	nn_inbatch_softmax_backward(w->dS2, dtau, (float)m->opt[OPT_ALPHA], w->P2, w->S2, tt_tau(m),
				    (int)B);
	/* S2 = L R^T: dL = dS2 R, dR = dS2^T L */
	nn_sgemm(false, false, (int)B, (int)D, (int)B, 1.0f, w->dS2, (int)B, w->sr.out, (int)D,
		 0.0f, w->dl, (int)D);
	nn_sgemm(true, false, (int)B, (int)D, (int)B, 1.0f, w->dS2, (int)B, w->sl.out, (int)D, 0.0f,
		 w->dr, (int)D);
	tower_backward(&t->it, p, &w->sl, w->dl, grad, B, norm, tt_dropout(m));
	tower_backward(&t->it, p, &w->sr, w->dr, grad, B, norm, tt_dropout(m));
	item_input_backward(m, w, w->sl.dx, w->sitem, w->sgenres, w->sn_genres, w->sidense, B,
			    w->smask[0], dD, sg);
	item_input_backward(m, w, w->sr.dx, w->sitem, w->sgenres, w->sn_genres, w->sidense, B,
			    w->smask[1], dD, sg);
}

/* ------------------------------------------------------------- training */

/* <u_r, v_k> for the item rows k of batch row r: pos (B) and neg (B, N). */
static void pair_scores(const struct twotower *t, struct tt_ws *w, uint32_t B, uint32_t N)
{
	uint32_t D = t->D;

	for (uint32_t r = 0; r < B; r++) {
		const float *u = w->u.out + (size_t)r * D;
		float s = 0;
		for (uint32_t d = 0; d < D; d++)
			s += u[d] * w->v.out[(size_t)r * D + d];
		w->pos[r] = s;
		for (uint32_t j = 0; j < N; j++) {
			const float *v = w->v.out + ((size_t)B + (size_t)r * N + j) * D;
			s = 0;
			for (uint32_t d = 0; d < D; d++)
				s += u[d] * v[d];
			w->neg[(size_t)r * N + j] = s;
		}
	}
}

static double tt_train_forward(const struct model *m, float *ws, const struct batch *b,
			       struct model_ctx *ctx, double *terms)
{
	const struct twotower *t = m->impl;
	uint32_t B = b->n, F = item_factor(m), N = F - 1;
	struct tt_ws w;
	int correct = m->opt[OPT_CORRECTION] != 0;

	tt_layout(m, B, ws, &w);
	uint32_t Bi = item_side(m, &w, b, ctx, F);
	towers(m, &w, b, Bi, 1, &ctx->rng);
	switch ((int)m->opt[OPT_LOSS]) {
	case LOSS_CE: /* LibRecommender: BCE over the positive and its negatives */
		pair_scores(t, &w, B, N);
		for (uint32_t r = 0; r < B; r++) {
			w.lg[r * F] = w.pos[r];
			w.lab[r * F] = 1;
			for (uint32_t j = 0; j < N; j++) {
				w.lg[r * F + 1 + j] = w.neg[(size_t)r * N + j];
				w.lab[r * F + 1 + j] = 0;
			}
		}
		terms[0] = nn_bce_logits_forward(NULL, w.lg, w.lab, (int)Bi);
		break;
	case LOSS_MARGIN:
		pair_scores(t, &w, B, N);
		terms[0] = nn_max_margin_forward(w.pos, w.neg, (float)m->opt[OPT_MARGIN], (int)B,
						 (int)N);
		break;
	default:
		nn_sgemm(false, true, (int)B, (int)B, (int)t->D, 1.0f, w.u.out, (int)t->D, w.v.out,
			 (int)t->D, 0.0f, w.S, (int)B);
		for (uint32_t r = 0; correct && r < B; r++)
			w.logq[r] = logf(sampler_item_prob(m->data->sampler, b->item[r]));
		terms[0] = nn_inbatch_softmax_forward(w.P, w.S, correct ? w.logq : NULL,
						      m->opt[OPT_HITS] != 0 ? b->item : NULL,
						      tt_tau(m), (int)B);
	}
	terms[1] = m->opt[OPT_SSL] != SSL_NONE ? ssl_forward(m, &w, B, &ctx->rng) : 0.0;
	return terms[0] + terms[1];
}

/* du, dv from the sampled losses' dpos (B), dneg (B, N). */
static void pair_backward(const struct twotower *t, struct tt_ws *w, uint32_t B, uint32_t N)
{
	uint32_t D = t->D;

	memset(w->du, 0, (size_t)B * D * sizeof(float));
	for (uint32_t r = 0; r < B; r++) {
		const float *u = w->u.out + (size_t)r * D;
		float *du = w->du + (size_t)r * D;
		for (uint32_t j = 0; j <= N; j++) {
			size_t k = j ? (size_t)B + (size_t)r * N + j - 1 : r;
			float g = j ? w->dneg[(size_t)r * N + j - 1] : w->dpos[r];
			const float *v = w->v.out + k * D;
			float *dv = w->dv + k * D;
			for (uint32_t d = 0; d < D; d++) {
				du[d] += g * v[d];
				dv[d] = g * u[d];
			}
		}
	}
}

static void tt_train_backward(const struct model *m, float *ws, const struct batch *b,
			      struct model_ctx *ctx, float *grad, struct sparse_grad *sg)
{
	const struct twotower *t = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = t->E, D = t->D, su = 8 * E;
	uint32_t F = item_factor(m), N = F - 1, Bi = B * F;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	float dtau = 0, *dD = grad + p->t[t->dense_t].offset;
	int norm = m->opt[OPT_NORM] != 0;
	struct tt_ws w;

	(void)ctx;
	tt_layout(m, B, ws, &w);
	switch ((int)m->opt[OPT_LOSS]) {
	case LOSS_CE:
		memset(w.dlg, 0, Bi * sizeof(float));
		nn_bce_logits_backward(w.dlg, 1.0f, w.lg, w.lab, (int)Bi);
		for (uint32_t r = 0; r < B; r++) {
			w.dpos[r] = w.dlg[r * F];
			for (uint32_t j = 0; j < N; j++)
				w.dneg[(size_t)r * N + j] = w.dlg[r * F + 1 + j];
		}
		pair_backward(t, &w, B, N);
		break;
	case LOSS_MARGIN:
		memset(w.dpos, 0, B * sizeof(float));
		memset(w.dneg, 0, (size_t)B * N * sizeof(float));
		nn_max_margin_backward(w.dpos, w.dneg, 1.0f, w.pos, w.neg,
				       (float)m->opt[OPT_MARGIN], (int)B, (int)N);
		pair_backward(t, &w, B, N);
		break;
	default:
		memset(w.dS, 0, (size_t)B * B * sizeof(float));
		nn_inbatch_softmax_backward(w.dS, &dtau, 1.0f, w.P, w.S, tt_tau(m), (int)B);
		/* S = U V^T: dU = dS V, dV = dS^T U */
		nn_sgemm(false, false, (int)B, (int)D, (int)B, 1.0f, w.dS, (int)B, w.v.out, (int)D,
			 0.0f, w.du, (int)D);
		nn_sgemm(true, false, (int)B, (int)D, (int)B, 1.0f, w.dS, (int)B, w.u.out, (int)D,
			 0.0f, w.dv, (int)D);
	}
	tower_backward(&t->ut, p, &w.u, w.du, grad, B, norm, tt_dropout(m));
	tower_backward(&t->it, p, &w.v, w.dv, grad, Bi, norm, tt_dropout(m));
	for (int k = 0; k < 5; k++)
		for (uint32_t r = 0; r < B; r++)
			sparse_grad_add(&sg[t->t[tabs[k]]], ids[k][r],
					w.u.dx + (size_t)r * su + (size_t)k * E);
	for (uint32_t r = 0; r < B; r++) {
		const float *dn = b->dense + (size_t)r * b->n_dense, *du = w.u.dx + (size_t)r * su;
		memcpy(w.dpool + (size_t)r * E, du + 5 * E, E * sizeof(float));
		for (uint32_t e = 0; e < E; e++) {
			dD[e] += dn[0] * du[6 * E + e];
			dD[E + e] += dn[1] * du[7 * E + e];
		}
	}
	fields_bag_grads(&sg[t->t[F_ITEM]], w.dslots, w.dpool, b->hist, b->n_hist, B, t->L, E);
	item_input_backward(m, &w, w.v.dx, w.item, w.genres, w.n_genres, w.idense, Bi, 0, dD, sg);
	if (m->opt[OPT_SSL] != SSL_NONE)
		ssl_backward(m, &w, B, grad, sg, &dtau);
	if (t->tau_t >= 0 && p->t[t->tau_t].w[0] > TT_TAU_MIN)
		grad[p->t[t->tau_t].offset] += dtau;
}

static uint32_t tt_dim(const struct model *m)
{
	return ((const struct twotower *)m->impl)->D;
}

static void tt_user_vectors(const struct model *m, float *ws, const struct batch *b, float *out)
{
	const struct twotower *t = m->impl;
	struct tt_ws w;

	tt_layout(m, b->n, ws, &w);
	item_side(m, &w, b, NULL, 1);
	towers(m, &w, b, b->n, 0, NULL);
	memcpy(out, w.u.out, (size_t)b->n * t->D * sizeof(float));
}

static void tt_item_vectors(const struct model *m, float *ws, const struct batch *b, float *out)
{
	const struct twotower *t = m->impl;
	struct tt_ws w;

	tt_layout(m, b->n, ws, &w);
	item_side(m, &w, b, NULL, 1);
	towers(m, &w, b, b->n, 0, NULL);
	memcpy(out, w.v.out, (size_t)b->n * t->D * sizeof(float));
}

static double tower_flops(const struct tower *tw)
{
	double f = 0;
	uint32_t I = tw->in;

	for (uint32_t k = 0; k < tw->n; k++) {
		f += 2.0 * I * tw->width[k];
		I = tw->width[k];
	}
	return f;
}

static double tt_flops(const struct model *m)
{
	const struct twotower *t = m->impl;

	return tower_flops(&t->ut) + tower_flops(&t->it) + 2.0 * t->D;
}

const struct model_ops model_twotower = {
	.name = "twotower",
	.summary = "TwoTower (LibRecommender): BatchNorm towers, in-batch softmax with logQ "
		   "correction, SSL feature masking",
	.needs = NEEDS_DEMOGRAPHICS | NEEDS_HISTORY | NEEDS_DENSE | NEEDS_GENRES,
	.default_hidden = tt_hidden,
	.options = tt_options,
	.n_options = OPT_N,
	.losses = tt_losses,
	.select_metric = "sampled_auc", /* trained on positives: label AUC is near chance */
	.wants = tt_wants,
	.init = tt_init,
	.release = tt_release,
	.data_ready = tt_data_ready,
	.view = tt_view,
	.workspace_floats = tt_ws_floats,
	.forward = tt_forward,
	.train_forward = tt_train_forward,
	.train_backward = tt_train_backward,
	.vector_dim = tt_dim,
	.user_vectors = tt_user_vectors,
	.item_vectors = tt_item_vectors,
	.flops_forward = tt_flops,
};
