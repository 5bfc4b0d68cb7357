/*
 * autorec - AutoRec (Sedhain et al. 2015): an autoencoder over rows of the
 * train rating matrix, item-based (I-AutoRec, the default: one row per
 * item, its ratings by users) or user-based (U-AutoRec).
 *
 * For a row i whose observed entries are O(i) = {(j, r_ij)} (j a user for
 * item rows, an item for user rows):
 *   h_i    = sigmoid(b_enc + sum over (j, r) in O(i) of r * V[j])   (H)
 *   r^_ij  = W[j] . h_i + c[j]                                     (identity decoder)
 * trained on the observed entries only: loss = mean over the batch's
 * observed entries of (r^_ij - r_ij)^2; L2 comes from the optimizer (--l2,
 * on the rows a batch touches).  V and W are (n_in, H) embedding tables
 * (Xavier), c an (n_in, 1) table, b_enc a dense vector: the encoder reads
 * and the decoder writes only the rows of observed entries, so a row costs
 * O(|O(i)| H), not O(n_in H) as the dense formulation of the reference
 * write-up (which multiplies the whole matrix row, zeros included).
 *
 * Scoring a record (u, i) for evaluation: h of the record's row (item i's
 * train ratings, or user u's) and the decoder entry of its column.  A
 * column the train split does not know (encoded id 0: a user or item first
 * seen after the train cut) has no decoder row: the prediction is then the
 * row's mean train rating (the global mean for an empty row).  Predictions
 * are clamped to the train ratings' range.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"
#include "interact.h"
#include "model.h"
#include "nn/nn.h"

enum { OPT_KIND };
static const char *const kind_names[] = {"item", "user", NULL};
static const struct model_option autorec_options[] = {
	[OPT_KIND] = {"kind", MOPT_ENUM, 0, 0, 0, kind_names,
		      "rows of the rating matrix: item (I-AutoRec, each item's ratings by users) or "
		      "user (U-AutoRec)"},
};

static const uint32_t autorec_hidden[] = {500, 0};

struct autorec {
	int by_user;      /* rows are users (U-AutoRec) */
	uint32_t H, n_in; /* hidden width; columns (users for item rows) */
	int enc, enc_b, dec, dec_b;
	float *h; /* (rows, H) every row's code, filled by score_prepare */
	uint32_t h_rows;
};

static int autorec_init(struct model *m, const struct store_info *info)
{
	struct autorec *a = calloc(1, sizeof(*a));

	if (!a)
		return hr_error(HR_ENOMEM, "out of memory");
	m->impl = a;
	if (m->cfg.n_hidden != 1)
		return hr_error(HR_EINVAL,
				"model 'autorec' has one hidden layer: --hidden N, not %d "
				"widths",
				m->cfg.n_hidden);
	a->by_user = m->opt[OPT_KIND] == 1;
	a->H = m->cfg.hidden[0];
	enum store_field col = a->by_user ? SF_ITEM : SF_USER;
	a->n_in = info->vocab[col];
	a->enc = params_add(&m->params, "enc", a->n_in, a->H, 1, INIT_XAVIER, 0);
	a->dec = params_add(&m->params, "dec", a->n_in, a->H, 1, INIT_XAVIER, 0);
	a->dec_b = params_add(&m->params, "dec_b", a->n_in, 1, 1, INIT_ZERO, 0);
	a->enc_b = params_add(&m->params, "enc_b", 1, a->H, 0, INIT_ZERO, 0);
	if (a->enc < 0 || a->dec < 0 || a->dec_b < 0 || a->enc_b < 0)
		return HR_EINVAL;
	for (int t = 0; t < 3; t++) {
		struct tensor *x = &m->params.t[t == 0 ? a->enc : t == 1 ? a->dec : a->dec_b];
		x->vocab = (int)col;
		x->lookups = a->n_in; /* a row reads up to every column */
	}
	return 0;
}

static unsigned autorec_wants(const struct model *m)
{
	(void)m;
	return WANTS_RATINGS;
}

static void autorec_release(struct model *m)
{
	struct autorec *a = m->impl;

	if (a)
		free(a->h);
	free(m->impl);
	m->impl = NULL;
}

static enum model_view autorec_view(const struct model *m)
{
	return ((const struct autorec *)m->impl)->by_user ? VIEW_USER_ROWS : VIEW_ITEM_ROWS;
}

/* A bound on a batch's observed entries: B times the longest row (a batch
 * may repeat a row). */
static uint64_t batch_entries_max(const struct model *m, uint32_t B)
{
	const struct autorec *a = m->impl;
	const struct interactions *x = m->data ? m->data->train : NULL;
	const uint64_t *off;
	uint64_t longest = 0;
	uint32_t rows;

	if (!x)
		return 0;
	rows = a->by_user ? x->n_users : x->n_items;
	off = a->by_user ? x->user_off : x->item_off;
	for (uint32_t r = 0; r < rows; r++)
		if (off[r + 1] - off[r] > longest)
			longest = off[r + 1] - off[r];
	return (uint64_t)B * longest;
}

/*
 * Workspace of a training batch of B rows:
 *   h (B, H)       the codes (pre-activations first)
 *   dh (B, H)      their gradient
 *   off (n_in + 1) the batch's entries sorted by column (counting sort):
 *                  column c's are ent[off[c] .. off[c + 1])
 *   ent            each entry's row in the batch, rating and prediction,
 *                  as many as the batch has (autorec_ws bounds them)
 * The column order lets a batch read each V and W row once and find each
 * gradient row once, however many of the batch's rows share the column.
 * Scoring records uses h alone.
 */
struct ar_entry {
	uint32_t row;
	float val, pred;
};

struct ar_ws {
	float *h, *dh;
	uint32_t *off;
	struct ar_entry *ent;
};

/* The layout at base (sizes only with base NULL); returns the floats before ent. */
static size_t ar_layout(const struct autorec *a, uint32_t B, float *base, struct ar_ws *w)
{
	size_t o = 0;

	w->h = base ? base : NULL;
	o += (size_t)B * a->H;
	w->dh = base ? base + o : NULL;
	o += (size_t)B * a->H;
	w->off = base ? (uint32_t *)(void *)(base + o) : NULL;
	o += (size_t)a->n_in + 1;
	w->ent = base ? (struct ar_entry *)(void *)(base + o) : NULL;
	return o;
}

static size_t autorec_ws(const struct model *m, uint32_t B)
{
	struct ar_ws w;

	return ar_layout(m->impl, B, NULL, &w) +
	       batch_entries_max(m, B) * (sizeof(struct ar_entry) / sizeof(float));
}

/* The observed entries of row `row`: columns, ratings, count. */
static uint64_t row_entries(const struct model *m, uint32_t row, const uint32_t **cols,
			    const float **ratings)
{
	const struct autorec *a = m->impl;
	const struct interactions *x = m->data->train;
	uint64_t lo, hi;

	if (a->by_user) {
		if (row >= x->n_users)
			return 0;
		lo = x->user_off[row], hi = x->user_off[row + 1];
		*cols = x->user_item + lo;
		*ratings = x->user_rating + lo;
	} else {
		if (row >= x->n_items)
			return 0;
		lo = x->item_off[row], hi = x->item_off[row + 1];
		*cols = x->item_user + lo;
		*ratings = x->item_rating + lo;
	}
	return hi - lo;
}

/* h = sigmoid(b_enc + sum r * V[col]) over the row's entries. */
HR_MULTIVERSION
static void encode(const struct model *m, uint32_t row, float *h)
{
	const struct autorec *a = m->impl;
	const float *V = m->params.t[a->enc].w;
	const uint32_t *cols = NULL;
	const float *r = NULL;
	uint64_t n = row_entries(m, row, &cols, &r);
	uint32_t H = a->H;

	memcpy(h, m->params.t[a->enc_b].w, H * sizeof(float));
	for (uint64_t k = 0; k < n; k++) {
		const float *v = V + (size_t)cols[k] * H, rk = r[k];
		for (uint32_t e = 0; e < H; e++)
			h[e] += rk * v[e];
	}
	for (uint32_t e = 0; e < H; e++)
		h[e] = 1.0f / (1.0f + expf(-h[e]));
}

static float decode(const struct model *m, const float *h, uint32_t col)
{
	const struct autorec *a = m->impl;
	const float *w = m->params.t[a->dec].w + (size_t)col * a->H;
	return m->params.t[a->dec_b].w[col] + nn_dotf(w, h, (int)a->H);
}

static uint32_t batch_row(const struct autorec *a, const struct batch *b, uint32_t r)
{
	return a->by_user ? b->user[r] : b->item[r];
}

/* Encodes every row once for the records forward(train = 0) will score. */
static int autorec_score_prepare(const struct model *m)
{
	struct autorec *a = m->impl;
	const struct interactions *x = m->data->train;
	uint32_t rows = a->by_user ? x->n_users : x->n_items;

	if (a->h_rows != rows) {
		free(a->h);
		a->h = malloc((size_t)rows * a->H * sizeof(float));
		a->h_rows = a->h ? rows : 0;
		if (!a->h)
			return hr_error(HR_ENOMEM, "out of memory for %u AutoRec codes", rows);
	}
	for (uint32_t r = 0; r < rows; r++)
		encode(m, r, a->h + (size_t)r * a->H);
	return 0;
}

/* Scoring records: predicted ratings. */
HR_MULTIVERSION
static void autorec_forward(const struct model *m, float *ws, const struct batch *b, float *scores,
			    int train)
{
	const struct autorec *a = m->impl;
	const struct model_data *d = m->data;

	(void)train;
	for (uint32_t r = 0; r < b->n; r++) {
		uint32_t row = a->by_user ? b->user[r] : b->item[r];
		uint32_t col = a->by_user ? b->item[r] : b->user[r];
		const uint32_t *cols;
		const float *ratings;
		uint64_t n = row_entries(m, row, &cols, &ratings);
		float p;
		if (col == 0) { /* no decoder row: the row's mean, or the global mean */
			double s = 0;
			for (uint64_t k = 0; k < n; k++)
				s += ratings[k];
			p = n ? (float)(s / (double)n) : d->rating_mean;
		} else if (row < a->h_rows) { /* score_prepare's code */
			p = decode(m, a->h + (size_t)row * a->H, col);
		} else {
			encode(m, row, ws);
			p = decode(m, ws, col);
		}
		scores[r] = fminf(fmaxf(p, d->rating_min), d->rating_max);
	}
}

/* Sorts batch b's observed entries by column into w (see struct ar_ws); returns how many. */
static uint32_t by_column(const struct model *m, const struct batch *b, struct ar_ws *w)
{
	const struct autorec *a = m->impl;

	memset(w->off, 0, ((size_t)a->n_in + 1) * sizeof(uint32_t));
	for (uint32_t r = 0; r < b->n; r++) {
		const uint32_t *cols;
		const float *ratings;
		uint64_t n = row_entries(m, batch_row(a, b, r), &cols, &ratings);
		for (uint64_t k = 0; k < n; k++)
			w->off[cols[k] + 1]++;
	}
	for (uint32_t c = 0; c < a->n_in; c++)
		w->off[c + 1] += w->off[c];
	for (uint32_t r = 0; r < b->n; r++) { /* off[c] advances to the column's end */
		const uint32_t *cols;
		const float *ratings;
		uint64_t n = row_entries(m, batch_row(a, b, r), &cols, &ratings);
		for (uint64_t k = 0; k < n; k++)
			w->ent[w->off[cols[k]]++] = (struct ar_entry){r, ratings[k], 0};
	}
	for (uint32_t c = a->n_in; c > 0; c--) /* back to the starts */
		w->off[c] = w->off[c - 1];
	w->off[0] = 0;
	return w->off[a->n_in];
}

/* Training on rows: the batch's observed entries' mean squared error. */
HR_MULTIVERSION
static double autorec_train_forward(const struct model *m, float *ws, const struct batch *b,
				    struct model_ctx *ctx, double *terms)
{
	const struct autorec *a = m->impl;
	const float *V = m->params.t[a->enc].w, *W = m->params.t[a->dec].w;
	const float *c = m->params.t[a->dec_b].w, *b_enc = m->params.t[a->enc_b].w;
	uint32_t H = a->H, count;
	struct ar_ws w;
	double sse = 0;

	(void)ctx;
	ar_layout(a, b->n, ws, &w);
	count = by_column(m, b, &w);
	for (uint32_t r = 0; r < b->n; r++)
		memcpy(w.h + (size_t)r * H, b_enc, H * sizeof(float));
	for (uint32_t col = 0; col < a->n_in; col++) { /* encoder: each V row read once */
		const float *v = V + (size_t)col * H;
		for (uint32_t e = w.off[col]; e < w.off[col + 1]; e++) {
			float *h = w.h + (size_t)w.ent[e].row * H, x = w.ent[e].val;
			for (uint32_t d = 0; d < H; d++)
				h[d] += x * v[d];
		}
	}
	for (size_t k = 0; k < (size_t)b->n * H; k++)
		w.h[k] = 1.0f / (1.0f + expf(-w.h[k]));
	for (uint32_t col = 0; col < a->n_in; col++) { /* decoder at the observed entries */
		const float *wr = W + (size_t)col * H;
		for (uint32_t e = w.off[col]; e < w.off[col + 1]; e++) {
			struct ar_entry *x = &w.ent[e];
			x->pred = c[col] + nn_dotf(wr, w.h + (size_t)x->row * H, (int)H);
			sse += ((double)x->pred - x->val) * ((double)x->pred - x->val);
		}
	}
	terms[0] = count ? sse / (double)count : 0;
	return terms[0];
}

HR_MULTIVERSION
static void autorec_train_backward(const struct model *m, float *ws, const struct batch *b,
				   struct model_ctx *ctx, float *grad, struct sparse_grad *sg)
{
	const struct autorec *a = m->impl;
	const float *W = m->params.t[a->dec].w;
	float *db_enc = grad + m->params.t[a->enc_b].offset;
	uint32_t H = a->H, count;
	struct ar_ws w;

	(void)ctx;
	ar_layout(a, b->n, ws, &w); /* as the forward left it */
	count = w.off[a->n_in];
	if (!count)
		return;
	memset(w.dh, 0, (size_t)b->n * H * sizeof(float));
	for (uint32_t col = 0; col < a->n_in; col++) { /* decoder: one gradient row per column */
		if (w.off[col + 1] == w.off[col])
			continue;
		const float *wr = W + (size_t)col * H;
		float *gw = sparse_grad_row(&sg[a->dec], col);
		float *gc = sparse_grad_row(&sg[a->dec_b], col);
		for (uint32_t e = w.off[col]; e < w.off[col + 1]; e++) {
			const float *h = w.h + (size_t)w.ent[e].row * H;
			float *dh = w.dh + (size_t)w.ent[e].row * H;
			float dp = 2.0f * (w.ent[e].pred - w.ent[e].val) / (float)count;
			for (uint32_t d = 0; d < H; d++)
				dh[d] += dp * wr[d];
			if (gw)
				for (uint32_t d = 0; d < H; d++)
					gw[d] += dp * h[d];
			if (gc)
				*gc += dp;
		}
	}
	for (uint32_t r = 0; r < b->n; r++) { /* through the sigmoid */
		const float *h = w.h + (size_t)r * H;
		float *dh = w.dh + (size_t)r * H;
		for (uint32_t d = 0; d < H; d++) {
			dh[d] *= h[d] * (1.0f - h[d]);
			db_enc[d] += dh[d];
		}
	}
	for (uint32_t col = 0; col < a->n_in; col++) { /* encoder: one gradient row per column */
		if (w.off[col + 1] == w.off[col])
			continue;
		float *gv = sparse_grad_row(&sg[a->enc], col);
		if (!gv)
			continue;
		for (uint32_t e = w.off[col]; e < w.off[col + 1]; e++) {
			const float *dh = w.dh + (size_t)w.ent[e].row * H;
			float x = w.ent[e].val;
			for (uint32_t d = 0; d < H; d++)
				gv[d] += x * dh[d];
		}
	}
}

static double autorec_flops(const struct model *m)
{
	/* per training row of the mean length: encoder and decoder, H each per entry */
	const struct autorec *a = m->impl;
	const struct interactions *x = m->data ? m->data->train : NULL;
	uint32_t rows = x ? (a->by_user ? x->n_users : x->n_items) : 1;

	return x && rows ? 4.0 * a->H * (double)x->n / rows : 0;
}

const struct model_ops model_autorec = {
	.name = "autorec",
	.summary = "AutoRec: an autoencoder over rows of the train rating matrix (RMSE)",
	.needs = 0,
	.wants = autorec_wants,
	.max_workers = 1,
	.max_workers_why = "each batch updates nearly every row of its tables, so Hogwild "
			   "workers overwrite each other's updates (2 workers: test RMSE 1.020 "
			   "against 0.988 with one, synthetic ml-1m)",
	.default_hidden = autorec_hidden,
	.options = autorec_options,
	.n_options = sizeof(autorec_options) / sizeof(autorec_options[0]),
	.target = TARGET_RATING,
	.init = autorec_init,
	.release = autorec_release,
	.view = autorec_view,
	.score_prepare = autorec_score_prepare,
	.workspace_floats = autorec_ws,
	.forward = autorec_forward,
	.train_forward = autorec_train_forward,
	.train_backward = autorec_train_backward,
	.flops_forward = autorec_flops,
};
