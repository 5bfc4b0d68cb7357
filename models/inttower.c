/*
 * inttower - IntTower (Li et al., CIKM 2022), after the official PyTorch
 * code (archersama/IntTower: model/IntTower.py; layers/core.py User_Fe_DNN,
 * Item_Fe_DNN; layers/interaction.py LightSE; preprocessing/utils.py
 * fe_score, contrast_loss; model/base_tower.py the training step).
 *
 * Fields, each an E-wide embedding (models/fields.c's tables; the history
 * shares the item table, as in dssm):
 *   user tower: user, gender, age, occupation, zip, mean of item[h] over the
 *               history (Fu = 6), then user_log_count, user_pos_rate raw
 *   item tower: item, mean of genre[g] over the item's genres (Fi = 2), then
 *               item_log_count, item_pos_rate raw
 * LightSE on each tower's (B, F, E) field embeddings (nn_lightse_*), then
 *   x = [flatten(LightSE(e)) | dense]       user (B, 6E + 2), item (B, 2E + 2)
 * Tower DNN layer l (width w_l = --hidden[l]):
 *   h_l = dropout(ReLU(BN(Linear_l(in_l))))  in_0 = x, in_{l+1} = h_l
 * (BN with use_bn, PyTorch's BatchNorm1d: eps 1e-5, momentum 0.1; dropout
 * in training only.)  FE-Block, H heads of width d (HD = H d):
 *   user: U_l = FE_l(in_l)  (B, HD) for every layer l < n: the projection
 *         of each layer's INPUT (fe_input inputs, the official code), so
 *         the user tower's last Linear feeds nothing (it is dead in the
 *         official code) and is not built here; with fe_input outputs (the
 *         paper's formula) U_l = FE_l(h_l) and the user tower has n layers
 *   item: V = FE(h_{n-1})   (B, HD): only the item tower's output
 * FE projections are Linear layers of their own (not the tower's weights).
 *   S        = sum_l sum_h max_k <U_l[h], V[k]>     (nn_maxsim_*)
 *   logit    = c S + b      c = 1 / (n H) (fe_score mean, the default) or
 *                           1 (sum, the official); b PredictionLayer's bias
 * Loss: mean BCE on the labels, plus cir_weight times the CIR term: over
 * the batch's positive rows, u = U_{n-1}, v = V L2-normalised, the
 * in-batch softmax of <u_i, v_j> / cir_tau with the diagonal as targets
 * (nn_inbatch_softmax_*; the official code indexes the label column
 * instead, docs/models.md).
 *
 * Initialisation: tables N(0, 0.05^2) (as dssm; the official 1e-4);
 * every Linear weight (towers, FE, LightSE) and the FE biases N(0, 1 / (3
 * fan_in)), the variance of PyTorch's default U(+-1/sqrt(fan_in)) (the
 * official draws the towers' N(0, 1e-4)); the output bias 0.  Why the
 * mean and this initialisation: docs/models.md (the official's logits
 * reach the thousands within a hundred steps).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fields.h"
#include "model.h"
#include "nn/fe.h"
#include "nn/nn.h"

#define IT_BN_EPS 1e-5f     /* torch.nn.BatchNorm1d */
#define IT_BN_MOMENTUM 0.1f /* torch.nn.BatchNorm1d */
#define IT_NORM_EPS 1e-12f  /* torch.nn.functional.normalize */
#define IT_EMB_STD 0.05f    /* tables, as dssm's (the official: 1e-4, docs/models.md) */
#define IT_MAX_LAYERS 4     /* 12 n + 7 tensors with BN: PARAMS_MAX 64 */
#define IT_FU 6             /* user fields */
#define IT_FI 2             /* item fields */

enum {
	OPT_HEADS,
	OPT_HEAD_DIM,
	OPT_FE_SCORE,
	OPT_USE_BN,
	OPT_DROPOUT,
	OPT_CIR_WEIGHT,
	OPT_CIR_TAU,
	OPT_FE_INPUT,
	OPT_N
};
enum { FE_MEAN, FE_SUM };
static const char *const fe_names[] = {"mean", "sum", NULL};
enum { FE_INPUTS, FE_OUTPUTS };
static const char *const fe_input_names[] = {"inputs", "outputs", NULL};
static const struct model_option it_options[OPT_N] = {
	[OPT_HEADS] = {"heads", MOPT_INT, 1, 256, 32, NULL,
		       "FE-Block heads of each user layer and of the item's last layer"},
	[OPT_HEAD_DIM] = {"head_dim", MOPT_INT, 1, NN_MAXSIM_MAX_D, 32, NULL,
			  "width of each FE-Block head"},
	[OPT_FE_SCORE] = {"fe_score", MOPT_ENUM, 0, 0, FE_MEAN, fe_names,
			  "the FE-Block's maxima over every (user layer, head), mean or sum (the "
			  "official)"},
	[OPT_USE_BN] = {"use_bn", MOPT_BOOL, 0, 1, 1, NULL,
			"BatchNorm after the Linear of each tower layer"},
	[OPT_DROPOUT] = {"dropout", MOPT_FLOAT, 0, 0.9, 0, NULL,
			 "dropout rate after each hidden layer of both towers (training only)"},
	[OPT_CIR_WEIGHT] = {"cir_weight", MOPT_FLOAT, 0, 100, 0, NULL,
			    "weight of the contrastive interaction term (CIR: in-batch InfoNCE "
			    "over the positives); 0: none"},
	[OPT_CIR_TAU] = {"cir_tau", MOPT_FLOAT, 0.01, 100, 0.07, NULL,
			 "temperature of the CIR term's softmax"},
	[OPT_FE_INPUT] = {"fe_input", MOPT_ENUM, 0, 0, FE_INPUTS, fe_input_names,
			  "what each user layer's FE-Block projects: its input (the official "
			  "code) or its output (the paper)"},
};
static const char *const it_losses[] = {"train_loss", "cir_loss", NULL};
static const uint32_t it_hidden[] = {300, 300, 128, 0};

/*
 * A tower's n layers: Linear, BN (when bn), ReLU, dropout.  Before a BN the
 * Linear has no bias: the batch mean cancels it, its gradient is exactly 0
 * and it never moves from its initial value (the official keeps an inert
 * one).
 */
struct tower {
	uint32_t in, n, width[IT_MAX_LAYERS];
	int lw[IT_MAX_LAYERS], lb[IT_MAX_LAYERS]; /* Linear; lb -1 with BN */
	int g[IT_MAX_LAYERS], b[IT_MAX_LAYERS];   /* BN affine, -1 without BN */
	int rm[IT_MAX_LAYERS], rv[IT_MAX_LAYERS]; /* BN running statistics */
};

struct inttower {
	uint32_t E, L, H, Dh, HD, n;       /* emb width, history, heads, head width, H Dh, layers */
	uint32_t uin, iin, maxw;           /* tower inputs, widest of everything a tower passes */
	int bn, outputs;                   /* outputs: FE_l projects user layer l's output */
	float scale, drop, cir_w, cir_tau; /* scale: 1 / (n H) for the mean, 1 for the sum */
	int t[F_N], use_w, ise_w;          /* tables, LightSE weights */
	int ufw[IT_MAX_LAYERS], ufb[IT_MAX_LAYERS], ifw, ifb, out_b; /* FE, output bias */
	struct tower ut, it; /* the user tower has n - 1 layers, the item tower n */
};

static int tower_declare(struct tower *tw, struct params *p, const char *pre, uint32_t in,
			 const uint32_t *widths, uint32_t n, int bn)
{
	char name[PARAM_NAME_MAX];
	uint32_t prev = in;

	tw->in = in;
	tw->n = n;
	for (uint32_t l = 0; l < n; l++) {
		tw->width[l] = widths[l];
		snprintf(name, sizeof(name), "%s.%u.w", pre, l);
		tw->lw[l] = params_add(p, name, widths[l], prev, 0, INIT_NORMAL,
				       (float)(1.0 / sqrt(3.0 * prev)));
		if (tw->lw[l] < 0)
			return HR_EINVAL;
		tw->lb[l] = tw->g[l] = tw->b[l] = tw->rm[l] = tw->rv[l] = -1;
		if (!bn) {
			snprintf(name, sizeof(name), "%s.%u.b", pre, l);
			tw->lb[l] = params_add(p, name, 1, widths[l], 0, INIT_ZERO, 0);
			if (tw->lb[l] < 0)
				return HR_EINVAL;
		} else {
			snprintf(name, sizeof(name), "%s.bn%u.gamma", pre, l);
			tw->g[l] = params_add(p, name, 1, widths[l], 0, INIT_ONE, 0);
			snprintf(name, sizeof(name), "%s.bn%u.beta", pre, l);
			tw->b[l] = params_add(p, name, 1, widths[l], 0, INIT_ZERO, 0);
			snprintf(name, sizeof(name), "%s.bn%u.mean", pre, l);
			tw->rm[l] = params_add_state(p, name, 1, widths[l], INIT_ZERO);
			snprintf(name, sizeof(name), "%s.bn%u.var", pre, l);
			tw->rv[l] = params_add_state(p, name, 1, widths[l], INIT_ONE);
			if (tw->g[l] < 0 || tw->b[l] < 0 || tw->rm[l] < 0 || tw->rv[l] < 0)
				return HR_EINVAL;
		}
		prev = widths[l];
	}
	return 0;
}

/* A Linear layer with PyTorch's default variance (see the file comment). */
static int add_linear(struct params *p, const char *name, uint32_t in, uint32_t out, int *w, int *b)
{
	char n[PARAM_NAME_MAX];
	float sd = (float)(1.0 / sqrt(3.0 * in));

	snprintf(n, sizeof(n), "%s.w", name);
	*w = params_add(p, n, out, in, 0, INIT_NORMAL, sd);
	snprintf(n, sizeof(n), "%s.b", name);
	*b = params_add(p, n, 1, out, 0, INIT_NORMAL, sd);
	return *w < 0 || *b < 0 ? HR_EINVAL : 0;
}

/* Width of what FE_l projects: user layer l's output, or its input. */
static uint32_t user_in(const struct inttower *it, uint32_t l)
{
	if (it->outputs)
		return it->ut.width[l];
	return l ? it->ut.width[l - 1] : it->uin;
}

static int it_init(struct model *m, const struct store_info *info)
{
	struct inttower *it = calloc(1, sizeof(*it));
	struct params *p = &m->params;
	int rc;

	if (!it)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = it;
	if (info->n_dense != 4)
		return hr_error(HR_EINVAL,
				"model 'inttower' expects the 4 dense fields of format 1, the "
				"store has %u",
				info->n_dense);
	if (m->cfg.n_hidden < 1 || m->cfg.n_hidden > IT_MAX_LAYERS)
		return hr_error(HR_EINVAL, "model 'inttower': 1 to %d hidden widths, not %d",
				IT_MAX_LAYERS, m->cfg.n_hidden);
	it->E = m->cfg.emb_dim;
	it->L = info->hist_len;
	it->H = (uint32_t)m->opt[OPT_HEADS];
	it->Dh = (uint32_t)m->opt[OPT_HEAD_DIM];
	it->HD = it->H * it->Dh;
	it->n = (uint32_t)m->cfg.n_hidden;
	it->bn = m->opt[OPT_USE_BN] != 0;
	it->outputs = m->opt[OPT_FE_INPUT] == FE_OUTPUTS;
	it->scale = m->opt[OPT_FE_SCORE] == FE_SUM ? 1.0f : 1.0f / (float)(it->n * it->H);
	it->drop = (float)m->opt[OPT_DROPOUT];
	it->cir_w = (float)m->opt[OPT_CIR_WEIGHT];
	it->cir_tau = (float)m->opt[OPT_CIR_TAU];
	it->uin = IT_FU * it->E + 2;
	it->iin = IT_FI * it->E + 2;
	it->maxw = it->uin > it->iin ? it->uin : it->iin;
	for (uint32_t l = 0; l < it->n; l++)
		if (m->cfg.hidden[l] > it->maxw)
			it->maxw = m->cfg.hidden[l];
	rc = fields_declare(p, info, it->E, INIT_NORMAL, IT_EMB_STD, it->t);
	if (rc)
		return rc;
	it->use_w = params_add(p, "user_se.w", IT_FU, IT_FU, 0, INIT_NORMAL,
			       (float)(1.0 / sqrt(3.0 * IT_FU)));
	it->ise_w = params_add(p, "item_se.w", IT_FI, IT_FI, 0, INIT_NORMAL,
			       (float)(1.0 / sqrt(3.0 * IT_FI)));
	if (it->use_w < 0 || it->ise_w < 0)
		return HR_EINVAL;
	rc = tower_declare(&it->ut, p, "user_tower", it->uin, m->cfg.hidden,
			   it->outputs ? it->n : it->n - 1, it->bn);
	if (!rc)
		rc = tower_declare(&it->it, p, "item_tower", it->iin, m->cfg.hidden, it->n, it->bn);
	for (uint32_t l = 0; !rc && l < it->n; l++) {
		char name[PARAM_NAME_MAX];
		snprintf(name, sizeof(name), "user_fe.%u", l);
		rc = add_linear(p, name, user_in(it, l), it->HD, &it->ufw[l], &it->ufb[l]);
	}
	if (!rc)
		rc = add_linear(p, "item_fe", it->it.width[it->n - 1], it->HD, &it->ifw, &it->ifb);
	if (!rc) {
		it->out_b = params_add(p, "out.b", 1, 1, 0, INIT_ZERO, 0);
		rc = it->out_b < 0 ? it->out_b : 0;
	}
	return rc;
}

static void it_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

/* ---- workspace ----------------------------------------------------------- */

/* One tower's activations: layer l's Linear output z, BN output y (= z
 * without BN), ReLU output a, dropout output h (= a without dropout). */
struct tower_ws {
	float *z[IT_MAX_LAYERS], *y[IT_MAX_LAYERS], *mean[IT_MAX_LAYERS], *rstd[IT_MAX_LAYERS];
	float *a[IT_MAX_LAYERS], *mask[IT_MAX_LAYERS], *h[IT_MAX_LAYERS];
};

struct it_ws {
	float *ue, *ie, *uz, *ua, *iz, *ia; /* (B, Fu E), (B, Fi E); LightSE caches (B, F) */
	float *uo, *io;                     /* LightSE outputs (B, Fu E), (B, Fi E) */
	float *xu, *xi;                     /* tower inputs (B, uin), (B, iin) */
	struct tower_ws u, v;
	float *U[IT_MAX_LAYERS], *V;        /* FE heads (B, HD) */
	int32_t *arg;                       /* (n, B, H) max-sim winners */
	float *logits, *dlogits, *ds;       /* (B); ds = d/d fe_score */
	float *dU, *dV;                     /* (B, HD) */
	float *g[4];                        /* (B, maxw) tower gradients */
	float *dxu, *dxi, *due, *die, *dse; /* as xu, xi, ue, ie; dse (B, Fu E) */
	float *pool, *dpool, *dslots;       /* (B, E), (B, E), (B, max(L, genres), E) */
	/* CIR, with cir_weight > 0 */
	uint32_t *pos;              /* (B) the positive rows */
	float *cu, *cv, *cnu, *cnv; /* (B, HD) normalised vectors, (B) norms */
	float *S, *P, *dS;          /* (B, B) */
	float *cg, *cdu, *cdv;      /* (B, HD) */
};

static size_t tower_layout(const struct tower *tw, uint32_t B, int bn, int drop, float *base,
			   size_t o, struct tower_ws *w)
{
#define PUT(f, k) (f = base ? base + o : NULL, o += (k))
	for (uint32_t l = 0; l < tw->n; l++) {
		size_t n = (size_t)B * tw->width[l];
		PUT(w->z[l], n);
		w->y[l] = w->z[l];
		w->mean[l] = w->rstd[l] = NULL;
		if (bn) {
			PUT(w->y[l], n);
			PUT(w->mean[l], tw->width[l]);
			PUT(w->rstd[l], tw->width[l]);
		}
		PUT(w->a[l], n);
		w->h[l] = w->a[l];
		w->mask[l] = NULL;
		if (drop) {
			PUT(w->mask[l], n);
			PUT(w->h[l], n);
		}
	}
#undef PUT
	return o;
}

static size_t it_layout(const struct inttower *it, uint32_t B, float *base, struct it_ws *w)
{
	size_t o = 0, S = it->L > BATCH_GENRES ? it->L : BATCH_GENRES;
	size_t BHD = (size_t)B * it->HD;
	int drop = it->drop > 0;
#define PUT(f, k) (w->f = base ? base + o : NULL, o += (k))
#define PUTI(f, k) (w->f = base ? (void *)(base + o) : NULL, o += (k))
	PUT(ue, (size_t)B * IT_FU * it->E);
	PUT(ie, (size_t)B * IT_FI * it->E);
	PUT(uz, (size_t)B * IT_FU);
	PUT(ua, (size_t)B * IT_FU);
	PUT(iz, (size_t)B * IT_FI);
	PUT(ia, (size_t)B * IT_FI);
	PUT(uo, (size_t)B * IT_FU * it->E);
	PUT(io, (size_t)B * IT_FI * it->E);
	PUT(xu, (size_t)B * it->uin);
	PUT(xi, (size_t)B * it->iin);
	o = tower_layout(&it->ut, B, it->bn, drop, base, o, &w->u);
	o = tower_layout(&it->it, B, it->bn, drop, base, o, &w->v);
	for (uint32_t l = 0; l < it->n; l++)
		PUT(U[l], BHD);
	PUTI(arg, (size_t)it->n * B * it->H);
	PUT(V, BHD);
	PUT(logits, B);
	PUT(dlogits, B);
	PUT(ds, B);
	PUT(dU, BHD);
	PUT(dV, BHD);
	for (int k = 0; k < 4; k++)
		PUT(g[k], (size_t)B * it->maxw);
	PUT(dxu, (size_t)B * it->uin);
	PUT(dxi, (size_t)B * it->iin);
	PUT(due, (size_t)B * IT_FU * it->E);
	PUT(die, (size_t)B * IT_FI * it->E);
	PUT(dse, (size_t)B * IT_FU * it->E);
	PUT(pool, (size_t)B * it->E);
	PUT(dpool, (size_t)B * it->E);
	PUT(dslots, (size_t)B * S * it->E);
	if (it->cir_w > 0) {
		PUTI(pos, B);
		PUT(cu, BHD);
		PUT(cv, BHD);
		PUT(cnu, B);
		PUT(cnv, B);
		PUT(S, (size_t)B * B);
		PUT(P, (size_t)B * B);
		PUT(dS, (size_t)B * B);
		PUT(cg, BHD);
		PUT(cdu, BHD);
		PUT(cdv, BHD);
	}
#undef PUTI
#undef PUT
	return o;
}

static size_t it_ws_floats(const struct model *m, uint32_t B)
{
	struct it_ws w;

	return it_layout(m->impl, B, NULL, &w);
}

/* ---- forward ------------------------------------------------------------- */

/* Layers of tw from x; dropout seeds from rng (NULL: fixed ones). */
static void tower_forward(const struct tower *tw, const struct params *p, struct tower_ws *w,
			  const float *x, uint32_t B, int train, float drop, struct rng *rng)
{
	const float *in = x;
	uint32_t prev = tw->in;

	for (uint32_t l = 0; l < tw->n; l++) {
		int N = (int)(B * tw->width[l]), W = (int)tw->width[l];
		nn_linear_forward(w->z[l], in, p->t[tw->lw[l]].w,
				  tw->lb[l] >= 0 ? p->t[tw->lb[l]].w : NULL, (int)B, (int)prev, W);
		if (tw->g[l] >= 0) {
			float *rm = p->t[tw->rm[l]].w, *rv = p->t[tw->rv[l]].w;
			nn_batchnorm_forward(w->y[l], w->mean[l], w->rstd[l], w->z[l],
					     p->t[tw->g[l]].w, p->t[tw->b[l]].w, rm, rv, IT_BN_EPS,
					     train, (int)B, W);
			if (train) /* shared state, written racily by the workers (nn.h) */
				nn_running_stats_update(rm, rv, w->mean[l], w->rstd[l], IT_BN_EPS,
							IT_BN_MOMENTUM, (int)B, W);
		}
		nn_relu_forward(w->a[l], w->y[l], N);
		if (w->mask[l]) {
			uint64_t seed = rng ? rng_next(rng) : 0x1d5e5eedULL + l;
			nn_dropout_forward(w->h[l], w->mask[l], w->a[l], drop, seed, train, N);
		}
		in = w->h[l];
		prev = tw->width[l];
	}
}

/* What FE_l projects: h_l, or layer l's input (in_0 = xu, in_l = h_{l-1}). */
static const float *user_input(const struct inttower *it, const struct it_ws *w, uint32_t l)
{
	if (it->outputs)
		return w->u.h[l];
	return l ? w->u.h[l - 1] : w->xu;
}

/* Everything up to the logits (B) in w->logits. */
static void run(const struct model *m, struct it_ws *w, const struct batch *b, int train,
		struct rng *rng)
{
	const struct inttower *it = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = it->E, su = IT_FU * E, si = IT_FI * E, n = it->n;
	const struct tensor *items = &p->t[it->t[F_ITEM]], *genres = &p->t[it->t[F_GENRE]];

	/* fields: (B, 6, E) and (B, 2, E) */
	fields_gather(w->ue, su, 0, p->t[it->t[F_USER]].w, b->user, B, E);
	fields_gather(w->ue, su, E, p->t[it->t[F_GENDER]].w, b->gender, B, E);
	fields_gather(w->ue, su, 2 * E, p->t[it->t[F_AGE]].w, b->age, B, E);
	fields_gather(w->ue, su, 3 * E, p->t[it->t[F_OCC]].w, b->occupation, B, E);
	fields_gather(w->ue, su, 4 * E, p->t[it->t[F_ZIP]].w, b->zip, B, E);
	nn_bag_forward(w->pool, NULL, b->hist, b->n_hist, items->w, NN_POOL_MEAN, (int)B,
		       (int)it->L, (int)items->rows, (int)E);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->ue + (size_t)r * su + 5 * E, w->pool + (size_t)r * E, E * sizeof(float));
	fields_gather(w->ie, si, 0, items->w, b->item, B, E);
	nn_bag_forward(w->pool, NULL, b->genres, b->n_genres, genres->w, NN_POOL_MEAN, (int)B,
		       BATCH_GENRES, (int)genres->rows, (int)E);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->ie + (size_t)r * si + E, w->pool + (size_t)r * E, E * sizeof(float));

	nn_lightse_forward(w->uo, w->uz, w->ua, w->ue, p->t[it->use_w].w, (int)B, IT_FU, (int)E);
	nn_lightse_forward(w->io, w->iz, w->ia, w->ie, p->t[it->ise_w].w, (int)B, IT_FI, (int)E);
	for (uint32_t r = 0; r < B; r++) {
		const float *dn = b->dense + (size_t)r * b->n_dense;
		float *xu = w->xu + (size_t)r * it->uin, *xi = w->xi + (size_t)r * it->iin;
		memcpy(xu, w->uo + (size_t)r * su, su * sizeof(float));
		xu[su] = dn[0];
		xu[su + 1] = dn[1];
		memcpy(xi, w->io + (size_t)r * si, si * sizeof(float));
		xi[si] = dn[2];
		xi[si + 1] = dn[3];
	}

	tower_forward(&it->ut, p, &w->u, w->xu, B, train, it->drop, rng);
	tower_forward(&it->it, p, &w->v, w->xi, B, train, it->drop, rng);
	for (uint32_t l = 0; l < n; l++)
		nn_linear_forward(w->U[l], user_input(it, w, l), p->t[it->ufw[l]].w,
				  p->t[it->ufb[l]].w, (int)B, (int)user_in(it, l), (int)it->HD);
	nn_linear_forward(w->V, w->v.h[n - 1], p->t[it->ifw].w, p->t[it->ifb].w, (int)B,
			  (int)it->it.width[n - 1], (int)it->HD);

	const float *U[IT_MAX_LAYERS];
	for (uint32_t l = 0; l < n; l++)
		U[l] = w->U[l];
	nn_maxsim_forward(w->logits, w->arg, U, (int)n, w->V, (int)B, (int)it->H, (int)it->H,
			  (int)it->Dh);
	float bias = p->t[it->out_b].w[0];
	for (uint32_t r = 0; r < B; r++)
		w->logits[r] = w->logits[r] * it->scale + bias;
}

static void it_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
		       int train)
{
	struct it_ws w;

	it_layout(m->impl, b->n, ws, &w);
	run(m, &w, b, train, NULL);
	memcpy(logits, w.logits, b->n * sizeof(float));
}

/* ---- backward ------------------------------------------------------------ */

/*
 * Layer l of tw backward from dh (B, w_l) = d/d h_l: accumulates d/d in_l
 * into din (B, in_l) and the layer's parameter gradients into grad.  s1,
 * s2 (B, maxw) are scratch; dh is only read.
 */
static void layer_backward(const struct tower *tw, const struct params *p, const struct tower_ws *w,
			   uint32_t l, const float *in, const float *dh, float *din, float *grad,
			   uint32_t B, float *s1, float *s2)
{
	uint32_t W = tw->width[l], I = l ? tw->width[l - 1] : tw->in;
	size_t N = (size_t)B * W;
	const float *da = dh, *dz;

	if (w->mask[l]) {
		memset(s1, 0, N * sizeof(float));
		nn_dropout_backward(s1, dh, w->mask[l], (int)N);
		da = s1;
	}
	memset(s2, 0, N * sizeof(float));
	nn_relu_backward(s2, da, w->a[l], (int)N);
	dz = s2;
	if (tw->g[l] >= 0) {
		memset(s1, 0, N * sizeof(float));
		nn_batchnorm_backward(s1, grad + p->t[tw->g[l]].offset,
				      grad + p->t[tw->b[l]].offset, s2, w->z[l], w->mean[l],
				      w->rstd[l], p->t[tw->g[l]].w, true, (int)B, (int)W);
		dz = s1;
	}
	nn_linear_backward(din, grad + p->t[tw->lw[l]].offset,
			   tw->lb[l] >= 0 ? grad + p->t[tw->lb[l]].offset : NULL, dz, in,
			   p->t[tw->lw[l]].w, (int)B, (int)I, (int)W);
}

/* dst rows pos[k] += src rows k, k < P (width n). */
static void scatter_add(float *dst, const float *src, const uint32_t *pos, uint32_t P, uint32_t n)
{
	for (uint32_t k = 0; k < P; k++) {
		float *d = dst + (size_t)pos[k] * n;
		const float *s = src + (size_t)k * n;
		for (uint32_t j = 0; j < n; j++)
			d[j] += s[j];
	}
}

/* The buffer of d/d a_l, a_l what FE_l projects: dxu when that is xu. */
static float *ua_grad(const struct inttower *it, struct it_ws *w, uint32_t l)
{
	return !it->outputs && !l ? w->dxu : w->g[l & 1];
}

/*
 * From w->dlogits (B): every gradient into grad and sg.  With P > 0 the
 * CIR term's gradients w->cdu, w->cdv (P, HD) of the rows w->pos are added
 * to the last user layer's heads and the item heads.
 */
static void backward_core(const struct model *m, struct it_ws *w, const struct batch *b,
			  float *grad, struct sparse_grad *sg, uint32_t P)
{
	const struct inttower *it = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = it->E, n = it->n, su = IT_FU * E, si = IT_FI * E;
	size_t BHD = (size_t)B * it->HD;
	const uint32_t *ids[5] = {b->user, b->gender, b->age, b->occupation, b->zip};
	static const int tabs[5] = {F_USER, F_GENDER, F_AGE, F_OCC, F_ZIP};
	float db = 0.0f;

	for (uint32_t r = 0; r < B; r++) {
		db += w->dlogits[r];
		w->ds[r] = w->dlogits[r] * it->scale;
	}
	grad[p->t[it->out_b].offset] += db;

	/*
	 * User side, top down.  d/d a_l (a_l what FE_l projects) collects FE_l's
	 * input gradient and the gradient of the tower above a_l; the tower
	 * layer below a_l (layer l - 1 when FE projects inputs, layer l when
	 * outputs) takes it to a_{l-1}, or to the tower input xu.  g[0], g[1]
	 * alternate (ua_grad), g[2], g[3] are scratch.
	 */
	memset(w->dV, 0, BHD * sizeof(float));
	if (P)
		scatter_add(w->dV, w->cdv, w->pos, P, it->HD);
	memset(ua_grad(it, w, n - 1), 0, (size_t)B * user_in(it, n - 1) * sizeof(float));
	for (uint32_t l = n; l-- > 0;) {
		float *dA = ua_grad(it, w, l);
		memset(w->dU, 0, BHD * sizeof(float));
		if (P && l == n - 1)
			scatter_add(w->dU, w->cdu, w->pos, P, it->HD);
		const float *Ul = w->U[l];
		nn_maxsim_backward(&w->dU, w->dV, w->ds, w->arg + (size_t)l * B * it->H, &Ul, 1,
				   w->V, (int)B, (int)it->H, (int)it->H, (int)it->Dh);
		nn_linear_backward(dA, grad + p->t[it->ufw[l]].offset,
				   grad + p->t[it->ufb[l]].offset, w->dU, user_input(it, w, l),
				   p->t[it->ufw[l]].w, (int)B, (int)user_in(it, l), (int)it->HD);
		if (!it->outputs && !l) /* a_0 is xu itself */
			break;
		uint32_t k = it->outputs ? l : l - 1; /* the tower layer below a_l */
		float *below = it->outputs && !l ? w->dxu : ua_grad(it, w, l - 1);
		memset(below, 0, (size_t)B * (k ? it->ut.width[k - 1] : it->uin) * sizeof(float));
		layer_backward(&it->ut, p, &w->u, k, k ? w->u.h[k - 1] : w->xu, dA, below, grad, B,
			       w->g[2], w->g[3]);
	}

	/* Item side: FE, then the tower's layers top down. */
	{
		float *dh = w->g[(n - 1) & 1];
		memset(dh, 0, (size_t)B * it->it.width[n - 1] * sizeof(float));
		nn_linear_backward(dh, grad + p->t[it->ifw].offset, grad + p->t[it->ifb].offset,
				   w->dV, w->v.h[n - 1], p->t[it->ifw].w, (int)B,
				   (int)it->it.width[n - 1], (int)it->HD);
		for (uint32_t l = n; l-- > 0;) {
			float *din = l ? w->g[(l - 1) & 1] : w->dxi;
			memset(din, 0,
			       (size_t)B * (l ? it->it.width[l - 1] : it->iin) * sizeof(float));
			layer_backward(&it->it, p, &w->v, l, l ? w->v.h[l - 1] : w->xi, w->g[l & 1],
				       din, grad, B, w->g[2], w->g[3]);
		}
	}

	/* LightSE, then the tables (the dense inputs have no parameters). */
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->dse + (size_t)r * su, w->dxu + (size_t)r * it->uin, su * sizeof(float));
	memset(w->due, 0, (size_t)B * su * sizeof(float));
	nn_lightse_backward(w->due, grad + p->t[it->use_w].offset, w->dse, w->ue, p->t[it->use_w].w,
			    w->uz, w->ua, (int)B, IT_FU, (int)E);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->dse + (size_t)r * si, w->dxi + (size_t)r * it->iin, si * sizeof(float));
	memset(w->die, 0, (size_t)B * si * sizeof(float));
	nn_lightse_backward(w->die, grad + p->t[it->ise_w].offset, w->dse, w->ie, p->t[it->ise_w].w,
			    w->iz, w->ia, (int)B, IT_FI, (int)E);

	for (int k = 0; k < 5; k++)
		for (uint32_t r = 0; r < B; r++)
			sparse_grad_add(&sg[it->t[tabs[k]]], ids[k][r],
					w->due + (size_t)r * su + (size_t)k * E);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w->dpool + (size_t)r * E, w->due + (size_t)r * su + 5 * E,
		       E * sizeof(float));
	fields_bag_grads(&sg[it->t[F_ITEM]], w->dslots, w->dpool, b->hist, b->n_hist, B, it->L, E);
	for (uint32_t r = 0; r < B; r++) {
		sparse_grad_add(&sg[it->t[F_ITEM]], b->item[r], w->die + (size_t)r * si);
		memcpy(w->dpool + (size_t)r * E, w->die + (size_t)r * si + E, E * sizeof(float));
	}
	fields_bag_grads(&sg[it->t[F_GENRE]], w->dslots, w->dpool, b->genres, b->n_genres, B,
			 BATCH_GENRES, E);
}

static void it_backward(const struct model *m, float *ws, const struct batch *b,
			const float *dlogits, float *grad, struct sparse_grad *sg)
{
	struct it_ws w;

	it_layout(m->impl, b->n, ws, &w);
	memcpy(w.dlogits, dlogits, b->n * sizeof(float));
	backward_core(m, &w, b, grad, sg, 0);
}

/* ---- training: BCE + cir_weight * CIR -------------------------------------- */

/* The batch's positive rows into w->pos; their count. */
static uint32_t positives(struct it_ws *w, const struct batch *b)
{
	uint32_t P = 0;

	for (uint32_t r = 0; r < b->n; r++)
		if (b->label[r] > 0.5f)
			w->pos[P++] = r;
	return P;
}

static double it_train_forward(const struct model *m, float *ws, const struct batch *b,
			       struct model_ctx *ctx, double *terms)
{
	const struct inttower *it = m->impl;
	uint32_t B = b->n, HD = it->HD, P;
	struct it_ws w;

	it_layout(it, B, ws, &w);
	run(m, &w, b, 1, &ctx->rng);
	terms[0] = nn_bce_logits_forward(NULL, w.logits, b->label, (int)B);
	terms[1] = 0.0;
	if (it->cir_w > 0 && (P = positives(&w, b)) > 1) {
		for (uint32_t k = 0; k < P; k++) {
			memcpy(w.cu + (size_t)k * HD, w.U[it->n - 1] + (size_t)w.pos[k] * HD,
			       HD * sizeof(float));
			memcpy(w.cv + (size_t)k * HD, w.V + (size_t)w.pos[k] * HD,
			       HD * sizeof(float));
		}
		nn_l2norm_forward(w.cu, w.cnu, w.cu, IT_NORM_EPS, (int)P, (int)HD);
		nn_l2norm_forward(w.cv, w.cnv, w.cv, IT_NORM_EPS, (int)P, (int)HD);
		nn_sgemm(false, true, (int)P, (int)P, (int)HD, 1.0f, w.cu, (int)HD, w.cv, (int)HD,
			 0.0f, w.S, (int)P);
		terms[1] = it->cir_w *
			   nn_inbatch_softmax_forward(w.P, w.S, NULL, NULL, it->cir_tau, (int)P);
	}
	return terms[0] + terms[1];
}

static void it_train_backward(const struct model *m, float *ws, const struct batch *b,
			      struct model_ctx *ctx, float *grad, struct sparse_grad *sg)
{
	const struct inttower *it = m->impl;
	uint32_t B = b->n, HD = it->HD, P = 0;
	struct it_ws w;

	(void)ctx;
	it_layout(it, B, ws, &w);
	memset(w.dlogits, 0, B * sizeof(float));
	nn_bce_logits_backward(w.dlogits, 1.0f, w.logits, b->label, (int)B);
	if (it->cir_w > 0 && (P = positives(&w, b)) > 1) {
		size_t PH = (size_t)P * HD;
		memset(w.dS, 0, (size_t)P * P * sizeof(float));
		nn_inbatch_softmax_backward(w.dS, NULL, it->cir_w, w.P, w.S, it->cir_tau, (int)P);
		/* S = Cu Cv^T: dCu = dS Cv, dCv = dS^T Cu; then through the normalisation */
		nn_sgemm(false, false, (int)P, (int)HD, (int)P, 1.0f, w.dS, (int)P, w.cv, (int)HD,
			 0.0f, w.cg, (int)HD);
		memset(w.cdu, 0, PH * sizeof(float));
		nn_l2norm_backward(w.cdu, w.cg, w.cu, w.cnu, IT_NORM_EPS, (int)P, (int)HD);
		nn_sgemm(true, false, (int)P, (int)HD, (int)P, 1.0f, w.dS, (int)P, w.cu, (int)HD,
			 0.0f, w.cg, (int)HD);
		memset(w.cdv, 0, PH * sizeof(float));
		nn_l2norm_backward(w.cdv, w.cg, w.cv, w.cnv, IT_NORM_EPS, (int)P, (int)HD);
	} else {
		P = 0;
	}
	backward_core(m, &w, b, grad, sg, P);
}

/* ---- cost ------------------------------------------------------------------ */

/*
 * Multiply-adds times two of one sample, counted as dssm counts (the
 * products: GEMMs, max-sim, LightSE; not the elementwise BatchNorm, ReLU,
 * biases), by part: g the GEMMs' forward (each Linear, towers and FE),
 * ms the max-sim's forward, se LightSE's forward.  The CIR term, a
 * training-only cost that depends on the batch's positives, is not
 * counted.
 */
static void it_cost(const struct inttower *it, double *g, double *ms, double *se)
{
	uint32_t prev = it->iin;

	*g = 0;
	for (uint32_t l = 0; l < it->ut.n; l++) /* the user tower's layers */
		*g += 2.0 * (l ? it->ut.width[l - 1] : it->uin) * it->ut.width[l];
	for (uint32_t l = 0; l < it->n; l++) {
		*g += 2.0 * prev * it->it.width[l];
		prev = it->it.width[l];
		*g += 2.0 * user_in(it, l) * it->HD; /* user FE_l */
	}
	*g += 2.0 * prev * it->HD;                          /* item FE */
	*ms = 2.0 * it->n * it->H * (double)it->H * it->Dh; /* every (layer, head, key) dot */
	/* the excitation's F x F product, the mean over E and the scaling */
	*se = 2.0 * (IT_FU * IT_FU + IT_FI * IT_FI) + 2.0 * (IT_FU + IT_FI) * it->E;
}

static double it_flops(const struct model *m)
{
	double g, ms, se;

	it_cost(m->impl, &g, &ms, &se);
	return g + ms + se;
}

/*
 * Forward and backward.  Every Linear's backward is two products of its
 * forward's size (dX, also for the first layers, whose input gradient
 * reaches LightSE; dW).  Max-sim's backward is no product: each (layer,
 * head) adds its winning key to dU and itself to dV, 4 d flops against the
 * forward's 2 H d.  LightSE's is twice its forward (dW, dz; dx and the
 * softmax's dot).
 */
static double it_flops_train(const struct model *m)
{
	const struct inttower *it = m->impl;
	double g, ms, se;

	it_cost(it, &g, &ms, &se);
	return 3.0 * g + ms + 4.0 * it->n * it->H * (double)it->Dh + 3.0 * se;
}

const struct model_ops model_inttower = {
	.name = "inttower",
	.summary = "IntTower: LightSE towers, FE-Block max-sim score over every user layer, "
		   "optional contrastive (CIR) term",
	.needs = NEEDS_DEMOGRAPHICS | NEEDS_HISTORY | NEEDS_DENSE | NEEDS_GENRES,
	.default_hidden = it_hidden,
	.options = it_options,
	.n_options = OPT_N,
	.losses = it_losses,
	.init = it_init,
	.release = it_release,
	.workspace_floats = it_ws_floats,
	.forward = it_forward,
	.backward = it_backward,
	.train_forward = it_train_forward,
	.train_backward = it_train_backward,
	.flops_forward = it_flops,
	.flops_train = it_flops_train,
};
