#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/rng.h"
#include "rankeval.h"
#include "models/interact.h"
#include "store/codec.h"
#include "store/items.h"

/* Per item code: train positive rate from the items table (docs/FORMAT.md). */
static int load_item_base(struct evaluator *e)
{
	const struct store_info *info = &e->m->info;
	float lo = info->scaler_min[3], hi = info->scaler_max[3];
	int rc = store_items_load(e->st, info->vocab[SF_ITEM], info->vocab[SF_GENRE], &e->items);

	if (rc)
		return rc;
	e->n_items = info->vocab[SF_ITEM];
	e->item_base = malloc(e->n_items * sizeof(float));
	if (!e->item_base)
		return hr_error(HR_ENOMEM, "out of memory for the baseline");
	e->item_base[0] = (float)info->positive_rate[0];
	for (uint32_t c = 1; c < e->n_items; c++) /* item_pos_rate, unscaled */
		e->item_base[c] = lo + e->items.dense[(size_t)c * 2 + 1] * (hi - lo);
	return 0;
}

/* The mean train rating of row r of a CSR view (off, ratings), or mean. */
static double row_mean(const uint64_t *off, const float *ratings, uint32_t n_rows, uint32_t r,
		       double mean)
{
	double s = 0;

	if (r == 0 || r >= n_rows || off[r + 1] == off[r])
		return mean;
	for (uint64_t k = off[r]; k < off[r + 1]; k++)
		s += ratings[k];
	return s / (double)(off[r + 1] - off[r]);
}

/* Every row's mean train rating (mean for an empty or unknown row); NULL on ENOMEM. */
static float *row_means(const uint64_t *off, const float *ratings, uint32_t n_rows, double mean)
{
	float *m = malloc((n_rows ? n_rows : 1) * sizeof(float));

	for (uint32_t r = 0; m && r < n_rows; r++)
		m[r] = (float)row_mean(off, ratings, n_rows, r, mean);
	return m;
}

int evaluator_init(struct evaluator *e, struct store *st, const struct model *m,
		   uint32_t batch_size)
{
	const struct store_info *info = &m->info;
	size_t ws = m->ops->workspace_floats(m, batch_size);
	uint64_t cap = info->count[1] > info->count[2] ? info->count[1] : info->count[2];
	int rc;

	memset(e, 0, sizeof(*e));
	e->st = st;
	e->m = m;
	e->batch_size = batch_size;
	e->cap = cap ? cap : 1;
	rc = batch_alloc(&e->b, batch_size, info->hist_len, info->n_dense);
	if (rc)
		return rc;
	batch_set_decode(&e->b, model_decode_flags(m));
	e->ws = aligned_alloc(64, ((ws ? ws : 1) * sizeof(float) + 63) & ~(size_t)63);
	e->logits = malloc(batch_size * sizeof(float));
	e->score = malloc(e->cap * sizeof(float));
	e->prob = malloc(e->cap * sizeof(float));
	e->label = malloc(e->cap * sizeof(float));
	e->base = malloc(e->cap * sizeof(float));
	e->user = malloc(e->cap * sizeof(uint32_t));
	e->s_score = malloc(2 * e->cap * sizeof(float));
	e->s_label = malloc(2 * e->cap * sizeof(float));
	e->s_base = malloc(2 * e->cap * sizeof(float));
	if (!e->ws || !e->logits || !e->score || !e->prob || !e->label || !e->base || !e->user ||
	    !e->s_score || !e->s_label || !e->s_base) {
		evaluator_release(e);
		return hr_error(HR_ENOMEM, "out of memory for evaluation of %llu rows",
				(unsigned long long)cap);
	}
	rc = load_item_base(e);
	if (!rc && m->ops->target == TARGET_RATING) {
		const struct interactions *x = m->data->train;
		e->item_mean =
			row_means(x->item_off, x->item_rating, x->n_items, m->data->rating_mean);
		e->user_mean =
			row_means(x->user_off, x->user_rating, x->n_users, m->data->rating_mean);
		if (!e->item_mean || !e->user_mean)
			rc = hr_error(HR_ENOMEM, "out of memory for the mean ratings");
	}
	if (rc)
		evaluator_release(e);
	return rc;
}

void evaluator_release(struct evaluator *e)
{
	batch_release(&e->b);
	free(e->ws);
	free(e->logits);
	free(e->item_base);
	free(e->score);
	free(e->prob);
	free(e->label);
	free(e->base);
	free(e->user);
	free(e->item_mean);
	free(e->user_mean);
	free(e->s_score);
	free(e->s_label);
	free(e->s_base);
	store_items_release(&e->items);
	rank_baselines_free(e->baselines);
	memset(e, 0, sizeof(*e));
}

/*
 * The sampled AUC's rows of batch b (just scored into e->logits): each
 * positive's score, then b's positives rewritten to a random other item
 * (id, genres, item dense values from the items table) and scored again.
 * Appends to e->s_score/s_label at *ns.  Rewrites b.
 */
static void sampled_rows(struct evaluator *e, struct batch *b, struct rng *rng, uint64_t *ns)
{
	const struct store_items *it = &e->items;
	uint64_t k = *ns;

	if (e->n_items < 3)
		return;
	for (uint32_t i = 0; i < b->n; i++) {
		if (b->label[i] != 1.0f)
			continue;
		e->s_score[k] = e->logits[i];
		e->s_base[k] = b->item[i] < e->n_items ? it->dense[2 * (size_t)b->item[i]] : 0;
		e->s_label[k++] = 1;
		uint32_t j = 1 + (uint32_t)rng_below(rng, e->n_items - 2); /* 1 .. n-2 */
		if (j >= b->item[i] && b->item[i] > 0)
			j++; /* skip the positive: uniform over the others */
		batch_set_item(b, i, it, j);
	}
	if (k == *ns)
		return;
	e->m->ops->forward(e->m, e->ws, b, e->logits, 0);
	for (uint32_t i = 0; i < b->n; i++)
		if (b->label[i] == 1.0f) {
			e->s_score[k] = e->logits[i];
			e->s_base[k] = it->dense[2 * (size_t)b->item[i]];
			e->s_label[k++] = 0;
		}
	*ns = k;
}

/* ---- test-only history shuffles (din) ------------------------------------- */

/*
 * HOGREC_EVAL_SHUFFLE=order: every scored record's history is permuted
 * (seeded by its position in the split); =rows: every record gets the
 * history of the record half a batch away (the batch rotated by half:
 * neighbours in time are often the same user's).
 * Evaluation only, deterministic; unset (or anything else): nothing.  The
 * test that a model reads its history's content and order
 * (tests/integration/zoo_models.sh) compares the AUCs with and without.
 */
enum { SHUFFLE_NONE, SHUFFLE_ORDER, SHUFFLE_ROWS };

static int shuffle_mode(void)
{
	const char *v = getenv("HOGREC_EVAL_SHUFFLE");

	if (!v)
		return SHUFFLE_NONE;
	return !strcmp(v, "order") ? SHUFFLE_ORDER :
	       !strcmp(v, "rows")  ? SHUFFLE_ROWS :
				     SHUFFLE_NONE;
}

/* Reverses the order of the histories of rows [lo, hi). */
static void reverse_rows(struct batch *b, uint32_t lo, uint32_t hi)
{
	uint32_t L = b->hist_cap;

	for (; hi > lo + 1; lo++, hi--) {
		uint32_t *x = b->hist + (size_t)lo * L, *y = b->hist + (size_t)(hi - 1) * L, t;
		for (uint32_t k = 0; k < L; k++) {
			t = x[k];
			x[k] = y[k];
			y[k] = t;
		}
		t = b->n_hist[lo];
		b->n_hist[lo] = b->n_hist[hi - 1];
		b->n_hist[hi - 1] = t;
	}
}

static void shuffle_histories(struct batch *b, int mode, uint64_t first)
{
	uint32_t L = b->hist_cap;
	struct rng r;

	if (mode == SHUFFLE_ORDER) {
		for (uint32_t i = 0; i < b->n; i++) {
			uint32_t *h = b->hist + (size_t)i * L;
			rng_seed(&r, 0x5f1e, first + i);
			for (uint32_t k = b->n_hist[i]; k > 1; k--) {
				uint32_t j = (uint32_t)rng_below(&r, k), t = h[k - 1];
				h[k - 1] = h[j];
				h[j] = t;
			}
		}
		return;
	}
	/* rows: rotate by half the batch, by three reversals (in place) */
	reverse_rows(b, 0, b->n / 2);
	reverse_rows(b, b->n / 2, b->n);
	reverse_rows(b, 0, b->n);
}

/* Adds a rating model's squared errors (and its baselines') of batch b into res's sums. */
static void rating_rows(struct evaluator *e, const struct batch *b, uint64_t first,
			struct eval_result *res)
{
	const struct model_data *d = e->m->data;
	const struct interactions *x = d->train;

	(void)first;
	for (uint32_t i = 0; i < b->n; i++) {
		double r = b->rating[i], g = d->rating_mean;
		double it = b->item[i] < x->n_items ? e->item_mean[b->item[i]] : g;
		double us = b->user[i] < x->n_users ? e->user_mean[b->user[i]] : g;
		res->rmse += ((double)e->logits[i] - r) * ((double)e->logits[i] - r);
		res->rmse_global_mean += (g - r) * (g - r);
		res->rmse_item_mean += (it - r) * (it - r);
		res->rmse_user_mean += (us - r) * (us - r);
	}
}

static void rating_finish(struct eval_result *res, uint64_t n)
{
	res->rmse = sqrt(res->rmse / (double)n);
	res->rmse_global_mean = sqrt(res->rmse_global_mean / (double)n);
	res->rmse_item_mean = sqrt(res->rmse_item_mean / (double)n);
	res->rmse_user_mean = sqrt(res->rmse_user_mean / (double)n);
	res->auc = res->logloss = res->gauc = res->base_auc = res->base_logloss = NAN;
	res->positive_rate = NAN;
}

int eval_metric_parse(const char *name, struct eval_metric *m)
{
	static const struct {
		const char *name;
		int kind, lower;
	} plain[] = {
		{"auc", EM_AUC, 0},
		{"gauc", EM_GAUC, 0},
		{"sampled_auc", EM_SAMPLED_AUC, 0},
		{"rmse", EM_RMSE, 1},
		{"loo_hr@10", EM_LOO_HR, 0},
		{"loo_ndcg@10", EM_LOO_NDCG, 0},
	};
	static const char *const ranked[] = {"recall", "ndcg", "hit", "mrr"};
	char buf[32];

	memset(m, 0, sizeof(*m));
	if (strlen(name) >= sizeof(m->name))
		goto bad;
	snprintf(m->name, sizeof(m->name), "%s", name);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (!strcmp(name, plain[i].name)) {
			m->kind = plain[i].kind;
			m->lower = plain[i].lower;
			return 0;
		}
	for (int f = 0; f < 4; f++)
		for (int q = 0; q < RANK_NK; q++) {
			snprintf(buf, sizeof(buf), "%s@%u", ranked[f], rank_k[q]);
			if (!strcmp(name, buf)) {
				m->kind = EM_RECALL + f;
				m->q = q;
				return 0;
			}
		}
bad:
	return hr_error(
		HR_EINVAL,
		"'%s' is not a metric early stopping can select on: auc, gauc, sampled_auc, "
		"rmse, recall@K, ndcg@K, hit@K, mrr@K (K 10, 20, 50, 100), loo_hr@10, "
		"loo_ndcg@10",
		name);
}

int eval_metric_ranked(const struct eval_metric *m)
{
	return m->kind >= EM_RECALL;
}

double eval_metric_value(const struct eval_metric *m, const struct eval_result *r)
{
	int ranked = r->rank.users > 0;

	switch (m->kind) {
	case EM_AUC: return r->auc;
	case EM_GAUC: return r->gauc;
	case EM_SAMPLED_AUC: return r->sampled_auc;
	case EM_RMSE: return r->rmse;
	case EM_RECALL: return ranked ? r->rank.recall[m->q] : NAN;
	case EM_NDCG: return ranked ? r->rank.ndcg[m->q] : NAN;
	case EM_HIT: return ranked ? r->rank.hit[m->q] : NAN;
	case EM_MRR: return ranked ? r->rank.mrr[m->q] : NAN;
	case EM_LOO_HR: return ranked ? r->rank.loo_hr : NAN;
	case EM_LOO_NDCG: return ranked ? r->rank.loo_ndcg : NAN;
	}
	return NAN;
}

/* The ranking metrics when e->rank asks for them. */
static int rank_split(struct evaluator *e, enum store_db db, struct eval_result *res)
{
	struct rank_eval_result rr;
	int rc;

	if (!e->rank)
		return 0;
	rc = rank_evaluate(e, db, e->exclude_train, &rr);
	if (!rc) {
		res->rank = rr.model;
		res->rank_popular = rr.popular;
		res->rank_knn = rr.knn;
		res->rank_ials = rr.ials;
		res->rank_seconds = rr.seconds;
		res->rank_base_seconds = rr.baseline_seconds;
	}
	return rc;
}

int evaluate(struct evaluator *e, enum store_db db, struct eval_result *res)
{
	struct store_reader *r;
	struct store_index ix = {0};
	struct batch *b = &e->b;
	uint64_t total = 0, ns = 0;
	double t0 = now_seconds(), pos = 0;
	struct rng rng;
	int rc = store_reader_begin(e->st, &r), shuffle = shuffle_mode();

	rng_seed(&rng, 0x5a3d, (uint64_t)db); /* the same random items every epoch */

	memset(res, 0, sizeof(*res));
	if (!rc)
		rc = model_score_prepare(e->m);
	if (!rc)
		rc = store_index_build(r, db, &ix);
	total = ix.n;
	if (!rc && total == 0)
		rc = hr_error(HR_EINVAL, "the %s split is empty", store_db_name(db));
	if (!rc && total > e->cap)
		rc = hr_error(HR_ESTORE, "store '%s': %s holds more records than its meta says",
			      store_path(e->st), store_db_name(db));
	const struct batch_source src = {
		.ix = &ix,
		.n = total,
		.store = store_path(e->st),
		.db = store_db_name(db),
	};
	for (uint64_t first = 0; !rc && first < total; first += b->n) {
		uint64_t left = total - first;
		rc = batch_fill(b, &src, first, left < b->cap ? (uint32_t)left : b->cap);
		if (rc)
			break;
		if (shuffle)
			shuffle_histories(b, shuffle, first);
		e->m->ops->forward(e->m, e->ws, b, e->logits, 0);
		if (e->m->ops->target == TARGET_RATING) {
			rating_rows(e, b, first, res);
			continue;
		}
		for (uint32_t i = 0; i < b->n; i++) {
			uint64_t k = first + i;
			e->score[k] = e->logits[i];
			e->prob[k] = 1.0f / (1.0f + expf(-e->logits[i]));
			e->label[k] = b->label[i];
			e->user[k] = b->user_raw[i];
			e->base[k] = b->item[i] < e->n_items ? e->item_base[b->item[i]] : 0.5f;
			pos += b->label[i];
		}
		sampled_rows(e, b, &rng, &ns);
	}
	store_index_release(&ix);
	store_reader_end(r);
	if (rc)
		return rc;
	res->n = total;
	if (e->m->ops->target == TARGET_RATING) {
		rating_finish(res, total);
		if (!isfinite(res->rmse))
			return hr_error(HR_EFORMAT, "the model's %s RMSE is %g", store_db_name(db),
					res->rmse);
		rc = rank_split(e, db, res);
		res->seconds = now_seconds() - t0;
		return rc;
	}
	res->positive_rate = pos / (double)total;
	for (uint64_t k = 0; k < total; k++)
		if (!isfinite(e->score[k]))
			return hr_error(HR_EFORMAT, "the model scored a %s row as %g",
					store_db_name(db), e->score[k]);
	if (res->positive_rate == 0 || res->positive_rate == 1) {
		res->auc = res->base_auc = res->gauc = NAN; /* AUC is undefined with one class */
	} else {
		rc = metric_auc(e->score, e->label, total, &res->auc);
		if (!rc)
			rc = metric_auc(e->base, e->label, total, &res->base_auc);
		if (!rc &&
		    metric_gauc(e->score, e->label, e->user, total, &res->gauc, &res->gauc_users))
			res->gauc = NAN;
	}
	res->sampled_auc = res->base_sampled_auc = NAN;
	if (!rc && ns > 0 && metric_auc(e->s_score, e->s_label, ns, &res->sampled_auc))
		res->sampled_auc = NAN;
	if (!rc && ns > 0 && metric_auc(e->s_base, e->s_label, ns, &res->base_sampled_auc))
		res->base_sampled_auc = NAN;
	res->logloss = metric_logloss(e->prob, e->label, total);
	res->base_logloss = metric_logloss(e->base, e->label, total);
	if (!rc)
		rc = rank_split(e, db, res);
	res->seconds = now_seconds() - t0;
	return rc;
}
