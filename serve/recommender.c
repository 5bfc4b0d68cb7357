/* recommender.c - a model loaded for serving, scoring one user at a time (recommender.h). */
#include "recommender.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/rank.h"
#include "models/model.h"
#include "models/nn/nn.h"
#include "trainer/ckpt_model.h"

#define SCORE_ROWS 256 /* rows of one forward pass over candidates */

/* One request's buffers; a recommender keeps a pool of them. */
struct scratch {
	struct scratch *next;
	struct batch q;  /* (1) the user's query record */
	struct batch sb; /* (SCORE_ROWS) copies of it, each with a candidate's item side */
	float *ws;       /* the model's workspace for SCORE_ROWS rows */
	float *score;    /* (n_items) */
	float *user_vec; /* (vector_dim) two-tower */
	float *heap_s;   /* (REC_K_MAX) */
	uint32_t *heap_i;
};

struct recommender {
	struct swap_item ref;
	const struct serve_data *d;
	struct model m;
	struct model_data data;
	int two_tower;
	uint32_t dim; /* two-tower vector width */
	float *V;     /* (n_items, dim) two-tower item vectors */
	size_t ws_floats;
	pthread_mutex_t pool_mu;
	struct scratch *pool; /* guarded by pool_mu */
	uint64_t step;
	char model[CKPT_MODEL_MAX];
	char path[CKPT_PATH_MAX];
};

int serve_data_open(struct serve_data *d, const char *path)
{
	float *counts = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	rc = store_open(&d->st, path);
	if (!rc)
		rc = store_info_load(d->st, &d->info);
	if (!rc)
		rc = store_items_load(d->st, d->info.vocab[SF_ITEM], d->info.vocab[SF_GENRE],
				      &d->items);
	if (!rc)
		rc = catalog_load(&d->cat, d->st, d->info.vocab[SF_ITEM]);
	if (!rc) {
		counts = malloc(d->info.vocab[SF_ITEM] * sizeof(float));
		if (!counts)
			rc = hr_error(HR_ENOMEM, "out of memory for the items of '%s'", path);
	}
	if (!rc)
		rc = users_load(&d->users, d->st, &d->info, counts);
	if (!rc) {
		counts[0] = NAN; /* padding: never recommended (rank_topk skips NaN) */
		rc = catalog_set_popularity(&d->cat, counts);
	}
	free(counts);
	if (rc)
		serve_data_close(d);
	return rc;
}

void serve_data_close(struct serve_data *d)
{
	users_release(&d->users);
	catalog_release(&d->cat);
	store_items_release(&d->items);
	store_close(d->st);
	memset(d, 0, sizeof(*d));
}

static void scratch_free(struct scratch *s)
{
	if (!s)
		return;
	batch_release(&s->q);
	batch_release(&s->sb);
	free(s->ws);
	free(s->score);
	free(s->user_vec);
	free(s->heap_s);
	free(s->heap_i);
	free(s);
}

static struct scratch *scratch_new(const struct recommender *r)
{
	const struct store_info *info = &r->d->info;
	struct scratch *s = calloc(1, sizeof(*s));
	size_t wsb = ((r->ws_floats ? r->ws_floats : 1) * sizeof(float) + 63) & ~(size_t)63;

	if (!s)
		return NULL;
	if (batch_alloc(&s->q, 1, info->hist_len, info->n_dense) ||
	    batch_alloc(&s->sb, SCORE_ROWS, info->hist_len, info->n_dense)) {
		scratch_free(s);
		return NULL;
	}
	batch_set_vocab(&s->q, info->vocab);
	batch_set_decode(&s->q, model_decode_flags(&r->m));
	batch_set_decode(&s->sb, model_decode_flags(&r->m));
	s->ws = aligned_alloc(64, wsb);
	s->score = malloc(info->vocab[SF_ITEM] * sizeof(float));
	s->user_vec = malloc((r->dim ? r->dim : 1) * sizeof(float));
	s->heap_s = malloc(REC_K_MAX * sizeof(float));
	s->heap_i = malloc(REC_K_MAX * sizeof(uint32_t));
	if (!s->ws || !s->score || !s->user_vec || !s->heap_s || !s->heap_i) {
		scratch_free(s);
		return NULL;
	}
	return s;
}

static struct scratch *scratch_get(struct recommender *r)
{
	struct scratch *s;

	pthread_mutex_lock(&r->pool_mu);
	s = r->pool;
	if (s)
		r->pool = s->next;
	pthread_mutex_unlock(&r->pool_mu);
	return s ? s : scratch_new(r);
}

static void scratch_put(struct recommender *r, struct scratch *s)
{
	pthread_mutex_lock(&r->pool_mu);
	s->next = r->pool;
	r->pool = s;
	pthread_mutex_unlock(&r->pool_mu);
}

/* Decodes user i's query record into row 0 of q. */
static int query_row(const struct recommender *r, struct batch *q, int64_t i)
{
	const struct users *u = &r->d->users;
	uint64_t lo = u->rec_off[i], hi = u->rec_off[i + 1];
	int rc = batch_set_row(q, 0, u->recs + lo, hi - lo);

	q->n = 1;
	if (rc)
		return hr_error(rc, "store '%s': the latest record of a user: %s",
				store_path(r->d->st), hr_errmsg());
	return 0;
}

/* Two-tower: every item's vector into r->V, from rows that copy any user's query. */
static int item_matrix(struct recommender *r)
{
	const struct serve_data *d = r->d;
	uint32_t n_items = d->info.vocab[SF_ITEM];
	struct scratch *s = scratch_new(r);
	int rc = s ? 0 : hr_error(HR_ENOMEM, "out of memory for the item vectors");

	r->V = malloc((size_t)n_items * r->dim * sizeof(float));
	if (!rc && !r->V)
		rc = hr_error(HR_ENOMEM, "out of memory for %u item vectors", n_items);
	if (!rc) /* the item towers read none of the user side */
		rc = query_row(r, &s->q, 0);
	for (uint32_t j0 = 0; !rc && j0 < n_items; j0 += SCORE_ROWS) {
		uint32_t n = n_items - j0 < SCORE_ROWS ? n_items - j0 : SCORE_ROWS;
		for (uint32_t k = 0; k < n; k++) {
			batch_copy_row(&s->sb, k, &s->q, 0);
			batch_set_item(&s->sb, k, &d->items, j0 + k);
		}
		s->sb.n = n;
		r->m.ops->item_vectors(&r->m, s->ws, &s->sb, r->V + (size_t)j0 * r->dim);
	}
	scratch_free(s);
	return rc;
}

/* What the model reads beyond records (model_data_load), from the train split. */
static int load_data(struct recommender *r)
{
	struct store *st = r->d->st;
	struct store_reader *sr = NULL;
	struct store_index ix = {0};
	int rc;

	if (!r->m.ops->wants || !r->m.ops->wants(&r->m))
		return 0;
	rc = store_reader_begin(st, &sr);
	if (!rc)
		rc = store_index_build(sr, STORE_TRAIN, &ix);
	if (!rc) {
		const struct batch_source src = {
			.ix = &ix, .n = ix.n, .store = store_path(st), .db = "train"};
		rc = model_data_load(&r->data, &r->m, &src, st); /* copies: the index may go */
	}
	store_index_release(&ix);
	store_reader_end(sr);
	if (!rc)
		rc = model_attach(&r->m, &r->data);
	return rc;
}

static void destroy(struct swap_item *it)
{
	recommender_free(recommender_of(it));
}

int recommender_load(struct recommender **out, const struct serve_data *d, const struct ckpt *c)
{
	const struct ckpt_info *ci = ckpt_get_info(c);
	struct recommender *r = calloc(1, sizeof(*r));
	const struct model_ops *ops;
	int rc;

	*out = NULL;
	if (!r)
		return hr_error(HR_ENOMEM, "out of memory");
	r->d = d;
	pthread_mutex_init(&r->pool_mu, NULL);
	swap_item_init(&r->ref, destroy);
	r->step = ci->step;
	snprintf(r->model, sizeof(r->model), "%s", ci->model);
	snprintf(r->path, sizeof(r->path), "%s", ckpt_path(c));
	if (!(ops = model_find(ci->model))) {
		free(r);
		return hr_error(HR_EINVAL,
				"checkpoint '%s' is of model '%s', which this build does not know "
				"and cannot rank items with",
				ckpt_path(c), ci->model);
	}
	rc = ckpt_model_load(c, &d->info, store_path(d->st), 1, &r->m);
	if (rc) {
		free(r);
		return rc;
	}
	/* HOGREC_RANK_SCORING=forward (tests, as trainer/rankeval.c): every model through forward */
	const char *how = getenv("HOGREC_RANK_SCORING");
	r->two_tower = ops->user_vectors && ops->item_vectors && ops->vector_dim &&
		       !(how && !strcmp(how, "forward"));
	if (!r->two_tower && !ops->forward)
		rc = hr_error(HR_EINVAL,
			      "checkpoint '%s' is of model '%s', which cannot rank items (it "
			      "has neither user and item vectors nor a forward pass)",
			      ckpt_path(c), ci->model);
	if (!rc)
		rc = load_data(r);
	if (!rc)
		rc = model_score_prepare(&r->m);
	if (!rc) {
		r->dim = r->two_tower ? ops->vector_dim(&r->m) : 0;
		r->ws_floats = ops->workspace_floats(&r->m, SCORE_ROWS);
	}
	if (!rc && r->two_tower)
		rc = item_matrix(r);
	if (rc) {
		recommender_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void recommender_free(struct recommender *r)
{
	if (!r)
		return;
	while (r->pool) {
		struct scratch *s = r->pool;
		r->pool = s->next;
		scratch_free(s);
	}
	pthread_mutex_destroy(&r->pool_mu);
	free(r->V);
	if (r->m.ops)
		model_release(&r->m);
	model_data_release(&r->data);
	free(r);
}

struct swap_item *recommender_item(struct recommender *r)
{
	return &r->ref;
}

struct recommender *recommender_of(struct swap_item *it)
{
	return (struct recommender *)((char *)it - offsetof(struct recommender, ref));
}

const char *recommender_model(const struct recommender *r)
{
	return r->model;
}

const char *recommender_path(const struct recommender *r)
{
	return r->path;
}

uint64_t recommender_step(const struct recommender *r)
{
	return r->step;
}

/* Whether the model can answer for the user of query row q (recommender.h). */
static int model_answers(const struct recommender *r, const struct batch *q)
{
	unsigned needs = r->m.ops->needs;

	if (q->user[0] > 0)
		return 1;
	return ((needs & NEEDS_DEMOGRAPHICS) && r->d->info.has_demographics) ||
	       ((needs & NEEDS_HISTORY) && q->n_hist[0] > 0);
}

/* The model's score of every item into s->score (item 0: NaN). */
static void score_all(const struct recommender *r, struct scratch *s)
{
	const struct model *m = &r->m;
	uint32_t n_items = r->d->info.vocab[SF_ITEM];

	if (r->two_tower) {
		m->ops->user_vectors(m, s->ws, &s->q, s->user_vec);
		nn_sgemm(false, true, 1, (int)n_items, (int)r->dim, 1.0f, s->user_vec, (int)r->dim,
			 r->V, (int)r->dim, 0.0f, s->score, (int)n_items);
	} else {
		for (uint32_t j0 = 1; j0 < n_items; j0 += SCORE_ROWS) {
			uint32_t n = n_items - j0 < SCORE_ROWS ? n_items - j0 : SCORE_ROWS;
			for (uint32_t k = 0; k < n; k++) {
				batch_copy_row(&s->sb, k, &s->q, 0);
				batch_set_item(&s->sb, k, &r->d->items, j0 + k);
			}
			s->sb.n = n;
			m->ops->forward(m, s->ws, &s->sb, s->score + j0, 0);
		}
	}
	s->score[0] = NAN;
}

int recommender_top(struct recommender *r, uint32_t user_raw, uint32_t k, int exclude_rated,
		    struct rec_list *out)
{
	const struct serve_data *d = r->d;
	const struct users *u = &d->users;
	int64_t i = users_find(u, user_raw);
	struct scratch *s;
	const float *score;
	const uint32_t *skip;
	uint32_t n_skip;
	int rc;

	HR_ASSERT(k >= 1 && k <= REC_K_MAX);
	out->user_raw = user_raw;
	out->n = 0;
	if (i < 0)
		return hr_error(HR_ENOENT, "user %u is not in store '%s'", user_raw,
				store_path(d->st));
	s = scratch_get(r);
	if (!s)
		return hr_error(HR_ENOMEM, "out of memory for scoring");
	rc = query_row(r, &s->q, i);
	if (!rc) {
		out->source = model_answers(r, &s->q) ? REC_MODEL : REC_POPULAR;
		if (out->source == REC_MODEL) {
			score_all(r, s);
			score = s->score;
		} else {
			score = d->cat.popularity;
		}
		skip = u->rated + u->rated_off[i];
		n_skip = exclude_rated ? (uint32_t)(u->rated_off[i + 1] - u->rated_off[i]) : 0;
		out->n = rank_topk(score, d->info.vocab[SF_ITEM], skip, n_skip, k, out->item,
				   s->heap_s, s->heap_i);
		for (uint32_t j = 0; j < out->n; j++)
			out->score[j] = score[out->item[j]];
	}
	scratch_put(r, s);
	return rc;
}
