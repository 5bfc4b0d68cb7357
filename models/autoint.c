/*
 * autoint - AutoInt (Song et al. 2019) as FuxiCTR builds it
 * (model_zoo/AutoInt/src/AutoInt.py): self-attention over the feature
 * fields, with optional DNN and wide (LR) parts added to the logit.
 *
 * Fields (F = 8 + n_dense tokens of width E = --emb-dim), X (B, F E):
 *   user | item | gender | age | occupation | zip
 *   | mean of genre[g] over the item's genres | mean of item[h] over the history
 *   | dense_k * Dn[k] for each dense feature k (a learned vector scaled by its value)
 * (history items share the item table; models/fields.h).
 *
 * Interacting layers l = 0 .. attention_layers - 1 (models/nn/mhsa.h):
 *   Z_l = relu(LN?(MHSA_l(Z_{l-1}) + residual)),  Z_{-1} = X viewed as (B F, E)
 * with attention_dim A, num_heads H, W_res on layer 0 when E != A.  The
 * layers keep Z in lane layout (A, F, B), the batch innermost; the first
 * reads X's rows, the fc reads Z_last transposed back to (B, F A).
 *
 *   logit = fc([Z_last flattened (B, F A)])               Linear(F A -> 1), bias
 *         + dnn(X)      (use_dnn: Linear, ReLU, dropout per --hidden width,
 *                        then Linear(-> 1), bias)
 *         + wide        (use_wide: sum of one scalar weight per id, the
 *                        genres and history summed, plus w_k dense_k; no bias)
 * Loss: mean BCE of the logit against the label (trained through
 * train_forward only to reach the worker's random stream for dropout:
 * net_dropout on the attention weights and after each DNN ReLU).
 *
 * Initialisation as FuxiCTR's: tables N(0, 1e-4^2) (its embedding
 * initializer), every Linear Xavier-normal N(0, 2 / (fan_in + fan_out))
 * with zero bias (BaseModel.reset_parameters), the projections
 * W_q, W_k, W_v, W_res each as an (A, D) Linear; dense vectors as FuxiCTR's
 * numeric fields, a Linear(1 -> E): N(0, 2 / (1 + E)); LayerNorm gain 1,
 * shift 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fields.h"
#include "model.h"
#include "nn/mhsa.h"
#include "nn/nn.h"

#define AI_MAX_LAYERS 6
#define AI_TABLE_STD 1e-4f /* FuxiCTR's embedding_initializer */
#define AI_SLOTS 8         /* fields before the dense ones */

enum {
	OPT_LAYERS,
	OPT_HEADS,
	OPT_ADIM,
	OPT_RESIDUAL,
	OPT_LN,
	OPT_SCALE,
	OPT_DNN,
	OPT_WIDE,
	OPT_DROPOUT,
	OPT_N
};
static const struct model_option ai_options[OPT_N] = {
	[OPT_LAYERS] = {"attention_layers", MOPT_INT, 1, AI_MAX_LAYERS, 2, NULL,
			"interacting (self-attention) layers"},
	[OPT_HEADS] = {"num_heads", MOPT_INT, 1, 64, 1, NULL,
		       "attention heads; must divide attention_dim"},
	[OPT_ADIM] = {"attention_dim", MOPT_INT, 1, 1024, 8, NULL,
		      "width of each attention layer's output, all heads together"},
	[OPT_RESIDUAL] = {"use_residual", MOPT_BOOL, 0, 1, 1, NULL,
			  "add each attention layer's input (projected when its width differs)"},
	[OPT_LN] = {"layer_norm", MOPT_BOOL, 0, 1, 0, NULL,
		    "LayerNorm in each attention layer, before its ReLU"},
	[OPT_SCALE] = {"use_scale", MOPT_BOOL, 0, 1, 0, NULL,
		       "attention scores divided by sqrt(attention_dim / num_heads)"},
	[OPT_DNN] = {"use_dnn", MOPT_BOOL, 0, 1, 1, NULL,
		     "add an MLP over the field embeddings (--hidden widths) to the logit"},
	[OPT_WIDE] = {"use_wide", MOPT_BOOL, 0, 1, 0, NULL,
		      "add a logistic regression (a weight per id and dense feature) to the logit"},
	[OPT_DROPOUT] = {"net_dropout", MOPT_FLOAT, 0, 0.9, 0, NULL,
			 "dropout rate on the attention weights and the MLP's hidden layers "
			 "(training only)"},
};

static const uint32_t ai_hidden[] = {64, 64, 64, 0};

struct autoint {
	uint32_t E, L, F, nd; /* embedding width, history length, fields, dense fields */
	uint32_t nl, A;       /* interacting layers, their width */
	struct nn_mhsa at[AI_MAX_LAYERS];
	int t[F_N], dense_t; /* field tables, dense vectors (nd, E) */
	int aw[AI_MAX_LAYERS], ag[AI_MAX_LAYERS], ab[AI_MAX_LAYERS]; /* W, LN gain, shift */
	int fc_w, fc_b;                                              /* (1, F A), (1) */
	int dnn, wide;                                               /* parts on */
	uint32_t nh, width[MODEL_MAX_HIDDEN + 1];                    /* DNN widths, the last 1 */
	int dw[MODEL_MAX_HIDDEN + 1], db[MODEL_MAX_HIDDEN + 1];
	int lr[AI_SLOTS], lr_dense; /* wide: width-1 tables per id slot, (1, nd) */
	float dropout;
};

/* Xavier-normal std of an (out, in) Linear. */
static float xavier_std(uint32_t in, uint32_t out)
{
	return sqrtf(2.0f / (float)(in + out));
}

/* The wide part's tables: one scalar per id (FuxiCTR's LogisticRegression:
 * its own width-1 embeddings, no sharing, so the history has its own). */
static int declare_wide(struct autoint *ai, struct params *p, const struct store_info *info)
{
	static const char *const names[AI_SLOTS] = {
		"user_lr",       "item_lr", "gender_lr", "age_lr",
		"occupation_lr", "zip_lr",  "genre_lr",  "hist_lr",
	};
	static const enum store_field fields[AI_SLOTS] = {
		SF_USER, SF_ITEM, SF_GENDER, SF_AGE, SF_OCCUPATION, SF_ZIP, SF_GENRE, SF_ITEM,
	};

	for (int k = 0; k < AI_SLOTS; k++) {
		int i = params_add(p, names[k], info->vocab[fields[k]], 1, 1, INIT_NORMAL,
				   AI_TABLE_STD);
		if (i < 0)
			return i;
		p->t[i].lookups = k == 6 ? BATCH_GENRES : k == 7 ? info->hist_len : 1;
		p->t[i].vocab = (int)fields[k];
		ai->lr[k] = i;
	}
	/* a numeric field's Linear(1 -> 1), Xavier-normal: N(0, 1) */
	ai->lr_dense = params_add(p, "dense_lr", 1, ai->nd, 0, INIT_NORMAL, 1.0f);
	return ai->lr_dense < 0 ? ai->lr_dense : 0;
}

static int declare_attention(struct autoint *ai, struct params *p, const struct model *m)
{
	char name[PARAM_NAME_MAX];
	uint32_t in = ai->E;

	for (uint32_t l = 0; l < ai->nl; l++) {
		struct nn_mhsa *a = &ai->at[l];
		*a = (struct nn_mhsa){
			.F = (int)ai->F,
			.D = (int)in,
			.A = (int)ai->A,
			.H = (int)m->opt[OPT_HEADS],
			.residual = m->opt[OPT_RESIDUAL] != 0,
			.scale = m->opt[OPT_SCALE] != 0,
			.layer_norm = m->opt[OPT_LN] != 0,
			.dropout = ai->dropout,
			.in_rows = l == 0, /* X (B F, E); then lane layout */
		};
		snprintf(name, sizeof(name), "attn%u.w", l);
		ai->aw[l] = params_add(p, name, (uint32_t)nn_mhsa_proj(a) * ai->A, in, 0,
				       INIT_NORMAL, xavier_std(in, ai->A));
		if (ai->aw[l] < 0)
			return ai->aw[l];
		ai->ag[l] = ai->ab[l] = -1;
		if (a->layer_norm) {
			snprintf(name, sizeof(name), "attn%u.ln.gamma", l);
			ai->ag[l] = params_add(p, name, 1, ai->A, 0, INIT_ONE, 0);
			snprintf(name, sizeof(name), "attn%u.ln.beta", l);
			ai->ab[l] = params_add(p, name, 1, ai->A, 0, INIT_ZERO, 0);
			if (ai->ag[l] < 0 || ai->ab[l] < 0)
				return HR_EINVAL;
		}
		in = ai->A;
	}
	ai->fc_w = params_add(p, "fc.w", 1, ai->F * ai->A, 0, INIT_NORMAL,
			      xavier_std(ai->F * ai->A, 1));
	ai->fc_b = params_add(p, "fc.b", 1, 1, 0, INIT_ZERO, 0);
	return ai->fc_w < 0 || ai->fc_b < 0 ? HR_EINVAL : 0;
}

/* FuxiCTR's MLP_Block: Linear, ReLU, dropout per width, then Linear(-> 1). */
static int declare_dnn(struct autoint *ai, struct params *p, const struct model *m)
{
	char name[PARAM_NAME_MAX];
	uint32_t in = ai->F * ai->E;

	ai->nh = (uint32_t)m->cfg.n_hidden;
	for (uint32_t k = 0; k <= ai->nh; k++) {
		uint32_t out = k < ai->nh ? m->cfg.hidden[k] : 1;
		ai->width[k] = out;
		snprintf(name, sizeof(name), "dnn.%u.w", k);
		ai->dw[k] = params_add(p, name, out, in, 0, INIT_NORMAL, xavier_std(in, out));
		snprintf(name, sizeof(name), "dnn.%u.b", k);
		ai->db[k] = params_add(p, name, 1, out, 0, INIT_ZERO, 0);
		if (ai->dw[k] < 0 || ai->db[k] < 0)
			return HR_EINVAL;
		in = out;
	}
	return 0;
}

static int ai_init(struct model *m, const struct store_info *info)
{
	struct autoint *ai = calloc(1, sizeof(*ai));
	struct params *p = &m->params;
	int rc;

	if (!ai)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = ai;
	ai->E = m->cfg.emb_dim;
	ai->L = info->hist_len;
	ai->nd = info->n_dense;
	ai->F = AI_SLOTS + ai->nd;
	ai->nl = (uint32_t)m->opt[OPT_LAYERS];
	ai->A = (uint32_t)m->opt[OPT_ADIM];
	ai->dnn = m->opt[OPT_DNN] != 0;
	ai->wide = m->opt[OPT_WIDE] != 0;
	ai->dropout = (float)m->opt[OPT_DROPOUT];
	if (ai->A % (uint32_t)m->opt[OPT_HEADS])
		return hr_error(HR_EINVAL,
				"model 'autoint': attention_dim %u is not a multiple of num_heads "
				"%.0f",
				ai->A, m->opt[OPT_HEADS]);
	if (m->cfg.n_hidden > MODEL_MAX_HIDDEN)
		return hr_error(HR_EINVAL, "model 'autoint': at most %d hidden widths",
				MODEL_MAX_HIDDEN);
	rc = fields_declare(p, info, ai->E, INIT_NORMAL, AI_TABLE_STD, ai->t);
	if (rc)
		return rc;
	ai->dense_t =
		params_add(p, "dense_emb", ai->nd, ai->E, 0, INIT_NORMAL, xavier_std(1, ai->E));
	if (ai->dense_t < 0)
		return ai->dense_t;
	rc = declare_attention(ai, p, m);
	if (!rc && ai->dnn)
		rc = declare_dnn(ai, p, m);
	if (!rc && ai->wide)
		rc = declare_wide(ai, p, info);
	return rc;
}

static void ai_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

/* Workspace layout, in floats, for B rows. */
struct ai_ws {
	float *x, *dx;                  /* (B, F E) the fields and their gradient */
	float *pool;                    /* (B, E) a pooled bag, or its gradient */
	float *z[AI_MAX_LAYERS];        /* (A, F, B) interacting layer outputs, lane layout */
	float *cache[AI_MAX_LAYERS];    /* nn_mhsa caches */
	float *zr, *dzr;                /* (B, F A) the last layer's output as rows, its gradient */
	float *g1, *g2;                 /* (B F max(E, A)) layer gradients */
	float *h[MODEL_MAX_HIDDEN + 1]; /* (B, width) DNN activations (the last (B)) */
	float *hm[MODEL_MAX_HIDDEN];    /* (B, width) DNN dropout masks */
	float *d1, *d2;                 /* (B, max width) DNN gradients */
};

static size_t ai_layout(const struct autoint *ai, uint32_t B, float *base, struct ai_ws *w)
{
	size_t o = 0, FE = (size_t)ai->F * ai->E, N = (size_t)B * ai->F;
	size_t wmax = ai->E > ai->A ? ai->E : ai->A, dmax = FE;
#define PUT(f, n) (w->f = base ? base + o : NULL, o += (n))
	PUT(x, B * FE);
	PUT(dx, B * FE);
	PUT(pool, (size_t)B * ai->E);
	for (uint32_t l = 0; l < ai->nl; l++) {
		PUT(z[l], N * ai->A);
		PUT(cache[l], nn_mhsa_cache_floats(&ai->at[l], (int)B));
	}
	PUT(zr, N * ai->A);
	PUT(dzr, N * ai->A);
	PUT(g1, N * wmax);
	PUT(g2, N * wmax);
	for (uint32_t k = 0; ai->dnn && k <= ai->nh; k++) {
		PUT(h[k], (size_t)B * ai->width[k]);
		if (k < ai->nh)
			PUT(hm[k], ai->dropout > 0 ? (size_t)B * ai->width[k] : 0);
		if (ai->width[k] > dmax)
			dmax = ai->width[k];
	}
	PUT(d1, ai->dnn ? (size_t)B * dmax : 0);
	PUT(d2, ai->dnn ? (size_t)B * dmax : 0);
#undef PUT
	return o;
}

static size_t ai_ws_floats(const struct model *m, uint32_t B)
{
	struct ai_ws w;

	return ai_layout(m->impl, B, NULL, &w);
}

/* Copies rows of src (B, E) into column col of x (row stride s). */
static void put_cols(float *x, size_t s, size_t col, const float *src, uint32_t B, uint32_t E)
{
	for (uint32_t r = 0; r < B; r++)
		memcpy(x + r * s + col, src + (size_t)r * E, E * sizeof(float));
}

/* The dropout seed of layer k from the batch's: independent draws per layer. */
static uint64_t layer_seed(uint64_t seed, uint64_t k)
{
	uint64_t x = seed + (k + 1) * 0xd1b54a32d192ed03ULL;

	return splitmix64(&x);
}

/* X: the F field embeddings of every row. */
static void gather_fields(const struct autoint *ai, const struct params *p, struct ai_ws *w,
			  const struct batch *b)
{
	uint32_t B = b->n, E = ai->E;
	size_t s = (size_t)ai->F * E;
	const uint32_t *ids[6] = {b->user, b->item, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[6] = {F_USER, F_ITEM, F_GENDER, F_AGE, F_OCC, F_ZIP};
	const float *Dn = p->t[ai->dense_t].w;

	for (int k = 0; k < 6; k++)
		fields_gather(w->x, s, (size_t)k * E, p->t[ai->t[tabs[k]]].w, ids[k], B, E);
	nn_bag_forward(w->pool, NULL, b->genres, b->n_genres, p->t[ai->t[F_GENRE]].w, NN_POOL_MEAN,
		       (int)B, BATCH_GENRES, (int)p->t[ai->t[F_GENRE]].rows, (int)E);
	put_cols(w->x, s, 6 * (size_t)E, w->pool, B, E);
	nn_bag_forward(w->pool, NULL, b->hist, b->n_hist, p->t[ai->t[F_ITEM]].w, NN_POOL_MEAN,
		       (int)B, (int)ai->L, (int)p->t[ai->t[F_ITEM]].rows, (int)E);
	put_cols(w->x, s, 7 * (size_t)E, w->pool, B, E);
	for (uint32_t r = 0; r < B; r++) {
		const float *dn = b->dense + (size_t)r * b->n_dense;
		float *x = w->x + r * s + (size_t)AI_SLOTS * E;
		for (uint32_t k = 0; k < ai->nd; k++)
			for (uint32_t e = 0; e < E; e++)
				x[(size_t)k * E + e] = dn[k] * Dn[(size_t)k * E + e];
	}
}

/* The wide part's logit, added to logits (B). */
static void wide_forward(const struct autoint *ai, const struct params *p, const struct batch *b,
			 float *logits)
{
	const uint32_t *ids[6] = {b->user, b->item, b->gender, b->age, b->occupation, b->zip};
	const float *wd = p->t[ai->lr_dense].w;

	for (uint32_t r = 0; r < b->n; r++) {
		float s = 0.0f;
		for (int k = 0; k < 6; k++)
			s += p->t[ai->lr[k]].w[ids[k][r]];
		for (uint32_t g = 0; g < b->n_genres[r]; g++)
			s += p->t[ai->lr[6]].w[b->genres[(size_t)r * BATCH_GENRES + g]];
		for (uint32_t l = 0; l < b->n_hist[r]; l++)
			s += p->t[ai->lr[7]].w[b->hist[(size_t)r * ai->L + l]];
		for (uint32_t k = 0; k < ai->nd; k++)
			s += wd[k] * b->dense[(size_t)r * b->n_dense + k];
		logits[r] += s;
	}
}

/* The DNN's logit over X, added to logits (B). */
static void dnn_forward(const struct autoint *ai, const struct params *p, struct ai_ws *w,
			uint32_t B, uint64_t seed, int train, float *logits)
{
	const float *in = w->x;
	uint32_t I = ai->F * ai->E;

	for (uint32_t k = 0; k <= ai->nh; k++) {
		uint32_t O = ai->width[k];
		nn_linear_forward(w->h[k], in, p->t[ai->dw[k]].w, p->t[ai->db[k]].w, (int)B, (int)I,
				  (int)O);
		if (k < ai->nh) {
			nn_relu_forward(w->h[k], w->h[k], (int)(B * O));
			if (ai->dropout > 0)
				nn_dropout_forward(w->h[k], w->hm[k], w->h[k], ai->dropout,
						   layer_seed(seed, AI_MAX_LAYERS + k), train != 0,
						   (int)(B * O));
		}
		in = w->h[k];
		I = O;
	}
	for (uint32_t r = 0; r < B; r++)
		logits[r] += w->h[ai->nh][r];
}

/*
 * The forward pass, keeping in ws what the backward needs; with drop,
 * dropout drawn from seed (forward() runs without: the trainer's training
 * path is train_forward, which has the worker's random stream).
 */
static void ai_run(const struct model *m, float *ws, const struct batch *b, float *logits, int drop,
		   uint64_t seed)
{
	const struct autoint *ai = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n;
	struct ai_ws w;
	const float *in = NULL;

	ai_layout(ai, B, ws, &w);
	gather_fields(ai, p, &w, b);
	in = w.x;
	for (uint32_t l = 0; l < ai->nl; l++) {
		const float *g = ai->ag[l] >= 0 ? p->t[ai->ag[l]].w : NULL;
		const float *be = ai->ab[l] >= 0 ? p->t[ai->ab[l]].w : NULL;
		nn_mhsa_forward(w.z[l], w.cache[l], in, p->t[ai->aw[l]].w, g, be, NULL,
				layer_seed(seed, l), drop != 0, &ai->at[l], (int)B);
		in = w.z[l];
	}
	nn_lanes_to_rows(w.zr, in, (int)ai->A, (int)ai->F, (int)B);
	nn_linear_forward(logits, w.zr, p->t[ai->fc_w].w, p->t[ai->fc_b].w, (int)B,
			  (int)(ai->F * ai->A), 1);
	if (ai->dnn)
		dnn_forward(ai, p, &w, B, seed, drop, logits);
	if (ai->wide)
		wide_forward(ai, p, b, logits);
}

static void ai_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
		       int train)
{
	(void)train;
	ai_run(m, ws, b, logits, 0, 0);
}

/* The sparse gradients of a mean-pooled bag from dpool (B, E): dpool[r] /
 * lens[r] to each slot's row (nn_bag_backward's NN_POOL_MEAN, without the
 * (B, L, E) slot array). */
static void bag_mean_grads(struct sparse_grad *sg, float *scaled, const float *dpool,
			   const uint32_t *ids, const uint32_t *lens, uint32_t B, uint32_t L,
			   uint32_t E)
{
	for (uint32_t r = 0; r < B; r++) {
		if (!lens[r])
			continue;
		float inv = 1.0f / (float)lens[r];
		for (uint32_t e = 0; e < E; e++)
			scaled[e] = dpool[(size_t)r * E + e] * inv;
		for (uint32_t l = 0; l < lens[r]; l++)
			sparse_grad_add(sg, ids[(size_t)r * L + l], scaled);
	}
}

/* Field gradients dx (B, F E) to the tables and the dense vectors. */
static void scatter_fields(const struct autoint *ai, const struct params *p, struct ai_ws *w,
			   const struct batch *b, float *grad, struct sparse_grad *sg)
{
	uint32_t B = b->n, E = ai->E;
	size_t s = (size_t)ai->F * E;
	const uint32_t *ids[6] = {b->user, b->item, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[6] = {F_USER, F_ITEM, F_GENDER, F_AGE, F_OCC, F_ZIP};
	float *dD = grad + p->t[ai->dense_t].offset;

	for (uint32_t r = 0; r < B; r++) {
		const float *dx = w->dx + r * s;
		const float *dn = b->dense + (size_t)r * b->n_dense;
		for (int k = 0; k < 6; k++)
			sparse_grad_add(&sg[ai->t[tabs[k]]], ids[k][r], dx + (size_t)k * E);
		for (uint32_t k = 0; k < ai->nd; k++)
			for (uint32_t e = 0; e < E; e++)
				dD[(size_t)k * E + e] += dn[k] * dx[(AI_SLOTS + k) * (size_t)E + e];
	}
	/* the genres' and the history's pooled gradients, one column block each */
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->g1 + (size_t)r * E, w->dx + r * s + 6 * (size_t)E, E * sizeof(float));
	bag_mean_grads(&sg[ai->t[F_GENRE]], w->pool, w->g1, b->genres, b->n_genres, B, BATCH_GENRES,
		       E);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->g1 + (size_t)r * E, w->dx + r * s + 7 * (size_t)E, E * sizeof(float));
	bag_mean_grads(&sg[ai->t[F_ITEM]], w->pool, w->g1, b->hist, b->n_hist, B, ai->L, E);
}

static void wide_backward(const struct autoint *ai, const struct params *p, const struct batch *b,
			  const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const uint32_t *ids[6] = {b->user, b->item, b->gender, b->age, b->occupation, b->zip};
	float *dw = grad + p->t[ai->lr_dense].offset;

	for (uint32_t r = 0; r < b->n; r++) {
		const float *g = dlogits + r;
		for (int k = 0; k < 6; k++)
			sparse_grad_add(&sg[ai->lr[k]], ids[k][r], g);
		for (uint32_t j = 0; j < b->n_genres[r]; j++)
			sparse_grad_add(&sg[ai->lr[6]], b->genres[(size_t)r * BATCH_GENRES + j], g);
		for (uint32_t l = 0; l < b->n_hist[r]; l++)
			sparse_grad_add(&sg[ai->lr[7]], b->hist[(size_t)r * ai->L + l], g);
		for (uint32_t k = 0; k < ai->nd; k++)
			dw[k] += *g * b->dense[(size_t)r * b->n_dense + k];
	}
}

/* DNN backward from dlogits: weight gradients into grad, d/dX added to w->dx. */
static void dnn_backward(const struct autoint *ai, const struct params *p, struct ai_ws *w,
			 uint32_t B, const float *dlogits, float *grad)
{
	const float *d = dlogits; /* d/d h[k] */
	float *bufs[2] = {w->d1, w->d2};
	int t = 0;

	for (int k = (int)ai->nh; k >= 0; k--) {
		uint32_t O = ai->width[k], I = k ? ai->width[k - 1] : ai->F * ai->E;
		const float *in = k ? w->h[k - 1] : w->x;
		float *dinp = w->dx;

		if (k < (int)ai->nh) { /* h = dropout(relu(z)): dz = dh * mask where h > 0 */
			float *dz = bufs[t];
			t ^= 1;
			memset(dz, 0, (size_t)B * O * sizeof(float));
			if (ai->dropout > 0) { /* a dropped unit has h = 0 too */
				nn_dropout_backward(dz, d, w->hm[k], (int)(B * O));
				for (size_t i = 0; i < (size_t)B * O; i++)
					dz[i] = w->h[k][i] > 0.0f ? dz[i] : 0.0f;
			} else {
				nn_relu_backward(dz, d, w->h[k], (int)(B * O));
			}
			d = dz;
		}
		if (k > 0) {
			dinp = bufs[t];
			t ^= 1;
			memset(dinp, 0, (size_t)B * I * sizeof(float));
		}
		nn_linear_backward(dinp, grad + p->t[ai->dw[k]].offset,
				   grad + p->t[ai->db[k]].offset, d, in, p->t[ai->dw[k]].w, (int)B,
				   (int)I, (int)O);
		d = dinp;
	}
}

static void ai_backward(const struct model *m, float *ws, const struct batch *b,
			const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const struct autoint *ai = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, FA = ai->F * ai->A;
	size_t N = (size_t)B * ai->F;
	struct ai_ws w;
	float *dz, *bufs[2];
	int t = 0;

	ai_layout(ai, B, ws, &w);
	bufs[0] = w.g1;
	bufs[1] = w.g2;
	memset(w.dx, 0, (size_t)B * ai->F * ai->E * sizeof(float));
	/* fc: logits = Z_last as rows (B, F A) fc_w^T + fc_b */
	memset(w.dzr, 0, N * ai->A * sizeof(float));
	nn_linear_backward(w.dzr, grad + p->t[ai->fc_w].offset, grad + p->t[ai->fc_b].offset,
			   dlogits, w.zr, p->t[ai->fc_w].w, (int)B, (int)FA, 1);
	dz = bufs[t];
	t ^= 1;
	memset(dz, 0, N * ai->A * sizeof(float));
	nn_rows_to_lanes_add(dz, w.dzr, (int)ai->A, (int)ai->F, (int)B);
	for (int l = (int)ai->nl - 1; l >= 0; l--) {
		const struct nn_mhsa *a = &ai->at[l];
		float *dinp = w.dx;
		if (l > 0) {
			dinp = bufs[t];
			t ^= 1;
			memset(dinp, 0, N * ai->A * sizeof(float));
		}
		nn_mhsa_backward(dinp, grad + p->t[ai->aw[l]].offset,
				 ai->ag[l] >= 0 ? grad + p->t[ai->ag[l]].offset : NULL,
				 ai->ab[l] >= 0 ? grad + p->t[ai->ab[l]].offset : NULL, dz,
				 w.cache[l], w.z[l], l ? w.z[l - 1] : w.x, p->t[ai->aw[l]].w,
				 ai->ag[l] >= 0 ? p->t[ai->ag[l]].w : NULL, a, (int)B);
		dz = dinp;
	}
	if (ai->dnn)
		dnn_backward(ai, p, &w, B, dlogits, grad);
	if (ai->wide)
		wide_backward(ai, p, b, dlogits, grad, sg);
	scatter_fields(ai, p, &w, b, grad, sg);
}

/* The training pass: mean BCE, with dropout from the worker's random stream. */
static double ai_train_forward(const struct model *m, float *ws, const struct batch *b,
			       struct model_ctx *ctx, double *terms)
{
	const struct autoint *ai = m->impl;
	uint64_t seed = ai->dropout > 0 ? rng_next(&ctx->rng) : 0;

	ai_run(m, ws, b, ctx->logits, 1, seed);
	terms[0] = nn_bce_logits_forward(NULL, ctx->logits, b->label, (int)b->n);
	return terms[0];
}

static void ai_train_backward(const struct model *m, float *ws, const struct batch *b,
			      struct model_ctx *ctx, float *grad, struct sparse_grad *sg)
{
	memset(ctx->dlogits, 0, b->n * sizeof(float));
	nn_bce_logits_backward(ctx->dlogits, 1.0f, ctx->logits, b->label, (int)b->n);
	ai_backward(m, ws, b, ctx->dlogits, grad, sg);
}

static double ai_flops(const struct model *m)
{
	const struct autoint *ai = m->impl;
	double f = 2.0 * ai->F * ai->A;
	uint32_t in = ai->F * ai->E;

	for (uint32_t l = 0; l < ai->nl; l++)
		f += nn_mhsa_flops(&ai->at[l]);
	for (uint32_t k = 0; ai->dnn && k <= ai->nh; k++) {
		f += 2.0 * in * ai->width[k];
		in = ai->width[k];
	}
	return f;
}

const struct model_ops model_autoint = {
	.name = "autoint",
	.summary = "AutoInt (FuxiCTR): multi-head self-attention over the feature fields, "
		   "optional DNN and wide parts",
	.needs = NEEDS_DEMOGRAPHICS | NEEDS_HISTORY | NEEDS_DENSE | NEEDS_GENRES,
	.default_hidden = ai_hidden,
	.options = ai_options,
	.n_options = OPT_N,
	.init = ai_init,
	.release = ai_release,
	.workspace_floats = ai_ws_floats,
	.forward = ai_forward,
	.backward = ai_backward,
	.train_forward = ai_train_forward,
	.train_backward = ai_train_backward,
	.flops_forward = ai_flops,
};
