/*
 * neumf - NeuMF (He et al. 2017, "Neural Collaborative Filtering"): a GMF
 * branch and an MLP branch, each with its own user and item embeddings,
 * fused by one output layer.
 *
 *   g   = Eg_user[u] * Eg_item[i]                   (B, E)  elementwise
 *   h   = MLP([Em_user[u] | Em_item[i]])            (B, H)  ReLU after every layer
 *   z   = [g | h]                                   (B, E + H)
 *   logit = z w + b                                 (B)
 *
 * The output layer is Xavier-initialised, the MLP Kaiming (mlp.h), the
 * four tables N(0, 0.05^2) with row 0 zero.
 *
 * Pre-training (the paper's §3.4.1; init_from, bin/trainer --init-from):
 * from a trained gmf, the GMF tables and w's first E columns times alpha;
 * from a trained ncf (the same --emb-dim and --hidden), the MLP tables and
 * hidden layers as they are and w's last H columns, ncf's output layer,
 * times 1 - alpha; b = alpha b_gmf + (1 - alpha) b_ncf.  alpha is the
 * option pretrain_alpha (the paper's 0.5; its Keras code halves the sum
 * of the biases, the same at 0.5).  The logit then starts as alpha
 * logit_gmf + (1 - alpha) logit_ncf.  A branch no checkpoint is given for
 * keeps its initialisation (and its columns of w); its bias term is 0.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "mlp.h"
#include "model.h"
#include "nn/nn.h"

enum { T_UG, T_IG, T_UM, T_IM, T_N };
enum { OPT_NUM_NEG, OPT_SAMPLER, OPT_ALPHA, OPT_N };

static const struct model_option neumf_options[OPT_N] = {
	[OPT_NUM_NEG] = MODEL_OPTION_NUM_NEG,
	[OPT_SAMPLER] = MODEL_OPTION_SAMPLER,
	[OPT_ALPHA] =
		{"pretrain_alpha", MOPT_FLOAT, 0, 1, 0.5, NULL,
		 "--init-from: the pre-trained GMF's share alpha of neumf's output layer (the MLP's "
		 "1 - alpha)"},
};

struct neumf {
	uint32_t E, H; /* embedding width; the MLP's output width */
	int t[T_N];
	struct mlp mlp; /* 2E -> hidden..., ReLU after each */
	struct mlp out; /* E + H -> 1, linear */
};

static const uint32_t neumf_hidden[] = {64, 32, 16, 0};

static int neumf_init(struct model *m, const struct store_info *info)
{
	static const char *const names[T_N] = {"user_gmf", "item_gmf", "user_mlp", "item_mlp"};
	static const enum store_field fields[T_N] = {SF_USER, SF_ITEM, SF_USER, SF_ITEM};
	static const uint32_t one[] = {1};
	struct neumf *n = calloc(1, sizeof(*n));
	int rc;

	if (!n)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = n;
	n->E = m->cfg.emb_dim;
	for (int k = 0; k < T_N; k++) {
		n->t[k] = params_add(&m->params, names[k], info->vocab[fields[k]], n->E, 1,
				     INIT_NORMAL, 0.05f);
		if (n->t[k] < 0)
			return n->t[k];
		m->params.t[n->t[k]].lookups = 1;
		m->params.t[n->t[k]].vocab = (int)fields[k];
	}
	rc = mlp_declare(&n->mlp, &m->params, "mlp", 2 * n->E, m->cfg.hidden, m->cfg.n_hidden, 1);
	if (rc)
		return rc;
	n->H = mlp_out_width(&n->mlp);
	return mlp_declare(&n->out, &m->params, "out", n->E + n->H, one, 1, 0);
}

static void neumf_release(struct model *m)
{
	free(m->impl);
	m->impl = NULL;
}

/* Workspace layout, in floats. */
struct neumf_ws {
	float *x, *dx; /* (B, 2E) the MLP branch's input and its gradient */
	float *z, *dz; /* (B, E + H) the fused vector and its gradient */
	float *dh;     /* (B, H) */
	float *row;    /* (E) one GMF row gradient */
	float *mws, *ows;
};

static size_t neumf_layout(const struct neumf *n, uint32_t B, float *base, struct neumf_ws *w)
{
	size_t o = 0;
#define PUT(f, k) (w->f = base ? base + o : NULL, o += (k))
	PUT(x, (size_t)B * 2 * n->E);
	PUT(dx, (size_t)B * 2 * n->E);
	PUT(z, (size_t)B * (n->E + n->H));
	PUT(dz, (size_t)B * (n->E + n->H));
	PUT(dh, (size_t)B * n->H);
	PUT(row, n->E);
	PUT(mws, mlp_ws_floats(&n->mlp, B));
	PUT(ows, mlp_ws_floats(&n->out, B));
#undef PUT
	return o;
}

static size_t neumf_ws_floats(const struct model *m, uint32_t B)
{
	struct neumf_ws w;

	return neumf_layout(m->impl, B, NULL, &w);
}

static void neumf_forward(const struct model *m, float *ws, const struct batch *b, float *logits,
			  int train)
{
	const struct neumf *n = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = n->E, Z = n->E + n->H;
	const float *Ug = p->t[n->t[T_UG]].w, *Ig = p->t[n->t[T_IG]].w;
	const float *Um = p->t[n->t[T_UM]].w, *Im = p->t[n->t[T_IM]].w, *h, *out;
	struct neumf_ws w;

	(void)train;
	neumf_layout(n, B, ws, &w);
	for (uint32_t r = 0; r < B; r++) {
		const float *ug = Ug + (size_t)b->user[r] * E, *ig = Ig + (size_t)b->item[r] * E;
		float *z = w.z + (size_t)r * Z;
		memcpy(w.x + (size_t)r * 2 * E, Um + (size_t)b->user[r] * E, E * sizeof(float));
		memcpy(w.x + (size_t)r * 2 * E + E, Im + (size_t)b->item[r] * E, E * sizeof(float));
		for (uint32_t e = 0; e < E; e++)
			z[e] = ug[e] * ig[e];
	}
	h = mlp_forward(&n->mlp, p, w.mws, w.x, B);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w.z + (size_t)r * Z + E, h + (size_t)r * n->H, n->H * sizeof(float));
	out = mlp_forward(&n->out, p, w.ows, w.z, B);
	memcpy(logits, out, B * sizeof(float));
}

static void neumf_backward(const struct model *m, float *ws, const struct batch *b,
			   const float *dlogits, float *grad, struct sparse_grad *sg)
{
	const struct neumf *n = m->impl;
	const struct params *p = &m->params;
	uint32_t B = b->n, E = n->E, Z = n->E + n->H;
	const float *Ug = p->t[n->t[T_UG]].w, *Ig = p->t[n->t[T_IG]].w;
	struct neumf_ws w;

	neumf_layout(n, B, ws, &w);
	memset(w.dz, 0, (size_t)B * Z * sizeof(float));
	mlp_backward(&n->out, p, w.ows, w.z, dlogits, w.dz, grad, B);
	for (uint32_t r = 0; r < B; r++)
		memcpy(w.dh + (size_t)r * n->H, w.dz + (size_t)r * Z + E, n->H * sizeof(float));
	memset(w.dx, 0, (size_t)B * 2 * E * sizeof(float));
	mlp_backward(&n->mlp, p, w.mws, w.x, w.dh, w.dx, grad, B);
	for (uint32_t r = 0; r < B; r++) {
		const float *dg = w.dz + (size_t)r * Z;
		const float *ug = Ug + (size_t)b->user[r] * E, *ig = Ig + (size_t)b->item[r] * E;
		sparse_grad_add(&sg[n->t[T_UM]], b->user[r], w.dx + (size_t)r * 2 * E);
		sparse_grad_add(&sg[n->t[T_IM]], b->item[r], w.dx + (size_t)r * 2 * E + E);
		for (uint32_t e = 0; e < E; e++)
			w.row[e] = dg[e] * ig[e];
		sparse_grad_add(&sg[n->t[T_UG]], b->user[r], w.row);
		for (uint32_t e = 0; e < E; e++)
			w.row[e] = dg[e] * ug[e];
		sparse_grad_add(&sg[n->t[T_IG]], b->item[r], w.row);
	}
}

/* From a trained gmf: the GMF tables, w's GMF columns and bias term, times alpha. */
static int from_gmf(struct model *m, const struct model_source *src, float alpha, float *bias)
{
	const struct neumf *n = m->impl;
	const float *b;
	int rc = model_source_copy(m, n->t[T_UG], 0, n->E, src, "user_emb", 1.0f);

	if (!rc)
		rc = model_source_copy(m, n->t[T_IG], 0, n->E, src, "item_emb", 1.0f);
	if (!rc)
		rc = model_source_copy(m, n->out.w[0], 0, n->E, src, "out.0.w", alpha);
	if (!rc)
		rc = model_source_tensor(m, src, "out.0.b", 1, 1, "'out.0.b'", &b);
	if (!rc)
		*bias += alpha * b[0];
	return rc;
}

/*
 * From a trained ncf (hidden layers mlp.0 .. mlp.L-1, output mlp.L): the
 * MLP tables and hidden layers, w's MLP columns and bias term times beta.
 */
static int from_ncf(struct model *m, const struct model_source *src, float beta, float *bias)
{
	const struct neumf *n = m->impl;
	int L = n->mlp.n, have = 0, rc; /* have: ncf's layers, its output included */
	char name[PARAM_NAME_MAX];
	uint64_t rows, cols;
	const float *b;

	for (;;) {
		snprintf(name, sizeof(name), "mlp.%d.w", have);
		if (have > MODEL_MAX_HIDDEN || !src->tensor(src->ctx, name, &rows, &cols))
			break;
		have++;
	}
	if (have != L + 1)
		return hr_error(HR_EINVAL,
				"'%s' (model ncf) has %d hidden layer%s, neumf's --hidden %d: the "
				"pre-trained model's --hidden must be this run's",
				src->where, have ? have - 1 : 0, have == 2 ? "" : "s", L);
	rc = model_source_copy(m, n->t[T_UM], 0, n->E, src, "user_emb", 1.0f);
	if (!rc)
		rc = model_source_copy(m, n->t[T_IM], 0, n->E, src, "item_emb", 1.0f);
	for (int k = 0; !rc && k < L; k++) {
		snprintf(name, sizeof(name), "mlp.%d.w", k);
		rc = model_source_copy(m, n->mlp.w[k], 0, m->params.t[n->mlp.w[k]].cols, src, name,
				       1.0f);
		snprintf(name, sizeof(name), "mlp.%d.b", k);
		if (!rc)
			rc = model_source_copy(m, n->mlp.b[k], 0, n->mlp.width[k], src, name, 1.0f);
	}
	snprintf(name, sizeof(name), "mlp.%d.w", L);
	if (!rc)
		rc = model_source_copy(m, n->out.w[0], n->E, n->H, src, name, beta);
	snprintf(name, sizeof(name), "mlp.%d.b", L);
	if (!rc)
		rc = model_source_tensor(m, src, name, 1, 1, "'out.0.b'", &b);
	if (!rc)
		*bias += beta * b[0];
	return rc;
}

static int neumf_init_from(struct model *m, const struct model_source *src, int n_src)
{
	const struct neumf *n = m->impl;
	float alpha = (float)m->opt[OPT_ALPHA], bias = 0;
	int rc = 0;

	for (int s = 0; !rc && s < n_src; s++) {
		if (!strcmp(src[s].model, "gmf"))
			rc = from_gmf(m, &src[s], alpha, &bias);
		else if (!strcmp(src[s].model, "ncf"))
			rc = from_ncf(m, &src[s], 1.0f - alpha, &bias);
		else
			rc = hr_error(HR_EINVAL,
				      "'%s' is a %s checkpoint: neumf starts from gmf and ncf "
				      "checkpoints (its GMF and MLP branches)",
				      src[s].where, src[s].model);
	}
	if (!rc)
		m->params.t[n->out.b[0]].w[0] = bias;
	return rc;
}

static double neumf_flops(const struct model *m)
{
	const struct neumf *n = m->impl;

	return mlp_flops(&n->mlp) + mlp_flops(&n->out) + (double)n->E;
}

const struct model_ops model_neumf = {
	.name = "neumf",
	.summary = "NeuMF: a GMF and an MLP branch with their own embeddings, fused by one layer",
	.needs = 0,
	.default_hidden = neumf_hidden,
	.options = neumf_options,
	.n_options = OPT_N,
	.wants = model_negative_wants,
	.init = neumf_init,
	.release = neumf_release,
	.workspace_floats = neumf_ws_floats,
	.forward = neumf_forward,
	.backward = neumf_backward,
	.flops_forward = neumf_flops,
	.init_from = neumf_init_from,
};
