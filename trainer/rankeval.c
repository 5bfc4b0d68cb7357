/* rankeval.c - full-catalogue ranking metrics (rankeval.h). */
#include "rankeval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/progress.h"
#include "common/rng.h"
#include "models/baselines.h"
#include "models/interact.h"
#include "models/nn/nn.h"

/* One record of the split: who, what, where. */
struct entry {
	uint32_t user_raw, item, pos;
	uint8_t label;
};

static int by_user_pos(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->user_raw != y->user_raw)
		return x->user_raw < y->user_raw ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The users to rank: each one's query position and positives (ascending, distinct). */
struct users {
	uint32_t n;
	uint64_t *query;   /* (n) the user's first position in the split */
	uint32_t *first;   /* (n) the user's first positive in the split (leave-one-out) */
	uint32_t *raw;     /* (n) raw user id (the leave-one-out draws) */
	uint64_t *pos_off; /* (n + 1) */
	uint32_t *pos;     /* positives, by user */
};

static void users_release(struct users *u)
{
	free(u->query);
	free(u->first);
	free(u->raw);
	free(u->pos_off);
	free(u->pos);
	memset(u, 0, sizeof(*u));
}

/* Reads db's records (user, item, label) and groups them by raw user. */
static int collect_users(struct evaluator *e, const struct batch_source *src, struct users *u)
{
	struct batch *b = &e->b;
	struct entry *ent = malloc((src->n ? src->n : 1) * sizeof(*ent));
	int rc = ent ? 0 : hr_error(HR_ENOMEM, "out of memory for the ranking's users");

	memset(u, 0, sizeof(*u));
	for (uint64_t first = 0; !rc && first < src->n; first += b->n) {
		uint64_t left = src->n - first;
		rc = batch_fill(b, src, first, left < b->cap ? (uint32_t)left : b->cap);
		for (uint32_t i = 0; !rc && i < b->n; i++)
			ent[first + i] = (struct entry){b->user_raw[i], b->item[i],
							(uint32_t)(first + i), b->label[i] == 1.0f};
	}
	if (!rc) {
		qsort(ent, src->n, sizeof(*ent), by_user_pos);
		u->query = malloc((src->n ? src->n : 1) * sizeof(uint64_t));
		u->first = malloc((src->n ? src->n : 1) * sizeof(uint32_t));
		u->raw = malloc((src->n ? src->n : 1) * sizeof(uint32_t));
		u->pos_off = malloc((src->n + 1) * sizeof(uint64_t));
		u->pos = malloc((src->n ? src->n : 1) * sizeof(uint32_t));
		if (!u->query || !u->first || !u->raw || !u->pos_off || !u->pos)
			rc = hr_error(HR_ENOMEM, "out of memory for the ranking's users");
	}
	uint64_t np = 0;
	for (uint64_t g = 0; !rc && g < src->n;) {
		uint64_t end = g, start = np;
		while (end < src->n && ent[end].user_raw == ent[g].user_raw) {
			if (ent[end].label && ent[end].item > 0)
				u->pos[np++] = ent[end].item;
			end++;
		}
		if (np > start) {
			uint32_t *p = u->pos + start, k = 0;
			u->first[u->n] = p[0]; /* in time order until sorted */
			u->raw[u->n] = ent[g].user_raw;
			qsort(p, np - start, sizeof(*p), by_u32);
			for (uint64_t j = 0; j < np - start; j++) /* distinct */
				if (k == 0 || p[j] != p[k - 1])
					p[k++] = p[j];
			np = start + k;
			u->query[u->n] = ent[g].pos;
			u->pos_off[u->n++] = start;
		}
		g = end;
	}
	if (!rc)
		u->pos_off[u->n] = np;
	free(ent);
	return rc;
}

/*
 * Keeps `keep` of u's users (keep < u->n), evenly spaced in raw-id order:
 * user floor(i n / keep) for i = 0 .. keep - 1, arrays compacted in place.
 */
static void users_sample(struct users *u, uint32_t keep)
{
	uint64_t np = 0;

	for (uint32_t i = 0; i < keep; i++) {
		uint32_t w = (uint32_t)((uint64_t)i * u->n / keep);
		uint64_t lo = u->pos_off[w], hi = u->pos_off[w + 1];
		u->query[i] = u->query[w];
		u->first[i] = u->first[w];
		u->raw[i] = u->raw[w];
		memmove(u->pos + np, u->pos + lo, (hi - lo) * sizeof(uint32_t));
		u->pos_off[i] = np;
		np += hi - lo;
	}
	u->pos_off[keep] = np;
	u->n = keep;
}

/* Per item: its train records (the popular recommender's score, popularity's weight). */
static float *train_counts(const struct interactions *x)
{
	float *c = malloc((x->n_items ? x->n_items : 1) * sizeof(float));

	for (uint32_t j = 0; c && j < x->n_items; j++)
		c[j] = (float)(x->item_off[j + 1] - x->item_off[j]);
	return c;
}

#define LOO_NEGATIVES 100 /* the NCF paper's protocol: the held-out item among 100 */

enum { BASE_POP, BASE_KNN, BASE_IALS, N_BASE };

struct rank_baselines {
	struct knn knn;
	struct ials ials;
	int fitted;
	int done[2];                       /* valid, test: ranked */
	struct rank_result res[2][N_BASE]; /* their results */
	double seconds[2];                 /* fitting (the first split's) and ranking */
};

void rank_baselines_free(struct rank_baselines *b)
{
	if (!b)
		return;
	knn_release(&b->knn);
	ials_release(&b->ials);
	free(b);
}

struct ranker {
	struct evaluator *e;
	enum store_db db;
	uint32_t neg[LOO_NEGATIVES], n_neg;
	float neg_score[LOO_NEGATIVES];
	const struct interactions *train;
	int exclude;
	uint32_t n_items, k, n_skip;
	float *heap_s;
	uint32_t *heap_i, *top, *skip;
	const float *popular;
	struct rank_acc model, base[N_BASE];
};

/*
 * The leave-one-out negatives of user raw: up to LOO_NEGATIVES distinct
 * items drawn uniformly from those neither skipped (the user's train items,
 * the padding id) nor positive in the split; the same for the user every
 * evaluation.  Fewer only when the catalogue has too few.
 */
static uint32_t loo_negatives(struct ranker *k, uint32_t raw, uint32_t n_skip, const uint32_t *pos,
			      uint32_t n_pos)
{
	struct rng r;
	uint32_t n = 0;

	rng_seed(&r, 0x100e, (uint64_t)k->db << 32 | raw);
	for (uint32_t tries = 0; n < LOO_NEGATIVES && tries < 100 * LOO_NEGATIVES; tries++) {
		uint32_t j = 1 + rng_below(&r, k->n_items - 1), dup = 0;
		if (rank_contains(k->skip, n_skip, j) || rank_contains(pos, n_pos, j))
			continue;
		for (uint32_t i = 0; i < n && !dup; i++)
			dup = k->neg[i] == j;
		if (!dup)
			k->neg[n++] = j;
	}
	return n;
}

/* The leave-one-out rank of item `first` under score against the drawn negatives. */
static uint32_t loo_rank(struct ranker *k, const float *score, uint32_t first, uint32_t n_neg)
{
	for (uint32_t i = 0; i < n_neg; i++)
		k->neg_score[i] = score[k->neg[i]];
	return rank_loo(score[first], k->neg_score, n_neg);
}

/*
 * Starts one user: its skip list (the padding id, then its train items,
 * ascending; only the padding without exclusion) and its leave-one-out
 * negatives (never a train item, whatever exclusion says).
 */
static void user_begin(struct ranker *k, uint32_t user_code, uint32_t raw, const uint32_t *pos,
		       uint32_t n_pos)
{
	uint32_t n_train = 1;

	k->skip[0] = 0;
	if (user_code > 0 && user_code < k->train->n_users) {
		uint64_t lo = k->train->user_off[user_code], hi = k->train->user_off[user_code + 1];
		memcpy(k->skip + 1, k->train->user_item + lo, (hi - lo) * sizeof(uint32_t));
		n_train += (uint32_t)(hi - lo);
	}
	k->n_skip = k->exclude ? n_train : 1;
	k->n_neg = k->n_items > 2 ? loo_negatives(k, raw, n_train, pos, n_pos) : 0;
}

/*
 * Adds one recommender's scores (n_items) of the current user to a: the
 * catalogue's top K against the positives, the first positive against
 * the sampled negatives.
 */
static void add_ranked(struct ranker *k, struct rank_acc *a, const float *score, uint32_t first,
		       const uint32_t *pos, uint32_t n_pos)
{
	uint32_t n = rank_topk(score, k->n_items, k->skip, k->n_skip, k->k, k->top, k->heap_s,
			       k->heap_i);
	rank_acc_add(a, k->top, n, pos, n_pos);
	if (k->n_neg)
		rank_acc_add_loo(a, loo_rank(k, score, first, k->n_neg));
}

/*
 * A user's profile for the baselines: its train positives and the items
 * of the query record's history (row i of hb), ascending, distinct, into
 * out; returns how many.
 */
static uint32_t profile(const struct interactions *train, uint32_t user_code,
			const struct batch *hb, uint32_t i, uint32_t *out)
{
	uint32_t n = 0, k = 0;

	if (user_code > 0 && user_code < train->n_users)
		for (uint64_t e = train->user_off[user_code]; e < train->user_off[user_code + 1];
		     e++)
			if (train->user_label[e] == 1)
				out[n++] = train->user_item[e];
	for (uint32_t h = 0; h < hb->n_hist[i]; h++)
		if (hb->hist[(size_t)i * hb->hist_cap + h] > 0)
			out[n++] = hb->hist[(size_t)i * hb->hist_cap + h];
	qsort(out, n, sizeof(*out), by_u32);
	for (uint32_t j = 0; j < n; j++)
		if (k == 0 || out[j] != out[k - 1])
			out[k++] = out[j];
	return k;
}

/* Two-tower: the item matrix (n_items, d), every item from the items table. */
static int item_matrix(struct evaluator *e, struct batch *sb, float *V, uint32_t n_items)
{
	const struct model *m = e->m;
	uint32_t d = m->ops->vector_dim(m);

	for (uint32_t j0 = 0; j0 < n_items; j0 += sb->cap) {
		uint32_t n = n_items - j0 < sb->cap ? n_items - j0 : sb->cap;
		for (uint32_t r = 0; r < n; r++)
			batch_set_item(sb, r, &e->items, j0 + r);
		sb->n = n;
		m->ops->item_vectors(m, e->ws, sb, V + (size_t)j0 * d);
	}
	return 0;
}

/* Any model: row i of b against every item, through forward, into score (n_items). */
static void score_items(struct evaluator *e, struct batch *sb, const struct batch *b, uint32_t i,
			float *score, uint32_t n_items)
{
	const struct model *m = e->m;

	score[0] = 0;
	for (uint32_t j0 = 1; j0 < n_items; j0 += sb->cap) {
		uint32_t n = n_items - j0 < sb->cap ? n_items - j0 : sb->cap;
		for (uint32_t r = 0; r < n; r++) {
			batch_copy_row(sb, r, b, i);
			batch_set_item(sb, r, &e->items, j0 + r);
		}
		sb->n = n;
		m->ops->forward(m, e->ws, sb, score + j0, 0);
	}
}

/* Fits the kNN and iALS baselines on the train split's positives (once per evaluator). */
static int fit_baselines(struct rank_baselines *bl, const struct interactions *train)
{
	double t0 = now_seconds();
	int rc = knn_fit(&bl->knn, train, KNN_K_DEFAULT);

	if (!rc)
		rc = ials_fit(&bl->ials, train, &ials_defaults);
	bl->fitted = !rc;
	bl->seconds[0] = now_seconds() - t0;
	return rc;
}

int rank_evaluate(struct evaluator *e, enum store_db db, int exclude_train,
		  struct rank_eval_result *res)
{
	const struct model *m = e->m;
	const struct store_info *info = &m->info;
	struct store_reader *r;
	struct store_index ix = {0}, tix = {0};
	struct interactions train = {0};
	struct users u = {0};
	struct batch *b = &e->b, sb = {0}, hb = {0};
	struct ranker k = {
		.e = e, .db = db, .train = &train, .exclude = exclude_train, .k = RANK_KMAX};
	/* HOGREC_RANK_SCORING=forward (tests): score every model through its forward pass */
	const char *how = getenv("HOGREC_RANK_SCORING");
	int two_tower = m->ops->user_vectors && m->ops->item_vectors && m->ops->vector_dim &&
			!(how && !strcmp(how, "forward"));
	uint32_t n_items = e->n_items, d = two_tower ? m->ops->vector_dim(m) : 0, *prof = NULL;
	float *S = NULL, *V = NULL, *U = NULL, *popular = NULL;
	float *Sk = NULL, *Si = NULL, *Xi = NULL, *iscratch = NULL;
	int split = db == STORE_TEST, with_base;
	double t0 = now_seconds(), tb = 0;
	int rc = store_reader_begin(e->st, &r);

	memset(res, 0, sizeof(*res));
	if (rc)
		return rc;
	if (!e->baselines && !(e->baselines = calloc(1, sizeof(*e->baselines))))
		rc = hr_error(HR_ENOMEM, "out of memory for the ranking's baselines");
	struct rank_baselines *bl = e->baselines;
	with_base = bl && !bl->done[split];
	if (!rc)
		rc = model_score_prepare(m);
	if (!rc)
		rc = store_index_build(r, db, &ix);
	if (!rc)
		rc = store_index_build(r, STORE_TRAIN, &tix);
	const struct batch_source src = {
		.ix = &ix, .n = ix.n, .store = store_path(e->st), .db = store_db_name(db)};
	const struct batch_source tsrc = {.ix = &tix,
					  .n = tix.n,
					  .store = store_path(e->st),
					  .db = store_db_name(STORE_TRAIN)};
	if (!rc)
		rc = interactions_load(&train, &tsrc, 0);
	if (!rc && with_base && !bl->fitted)
		rc = fit_baselines(bl, &train);
	if (!rc)
		rc = collect_users(e, &src, &u);
	if (!rc && e->rank_users && u.n > e->rank_users)
		users_sample(&u, e->rank_users);
	if (!rc && u.n == 0)
		rc = hr_error(HR_EINVAL, "the %s split has no user with a positive of a train item",
			      store_db_name(db));
	if (!rc)
		rc = batch_alloc(&sb, b->cap, info->hist_len, info->n_dense);
	if (!rc && with_base)
		rc = batch_alloc(&hb, b->cap, info->hist_len, info->n_dense); /* every field */
	uint64_t most = 0; /* the most train items of one user */
	for (uint32_t c = 0; !rc && c < train.n_users; c++)
		if (train.user_off[c + 1] - train.user_off[c] > most)
			most = train.user_off[c + 1] - train.user_off[c];
	if (!rc) {
		batch_set_decode(&sb, b->decode);
		popular = train_counts(&train);
		S = malloc((size_t)b->cap * n_items * sizeof(float));
		k.heap_s = malloc(RANK_KMAX * sizeof(float));
		k.heap_i = malloc(RANK_KMAX * sizeof(uint32_t));
		k.top = malloc(RANK_KMAX * sizeof(uint32_t));
		k.skip = malloc((size_t)(most + 1) * sizeof(uint32_t));
		if (two_tower) {
			V = malloc((size_t)n_items * d * sizeof(float));
			U = malloc((size_t)b->cap * d * sizeof(float));
		}
		if (with_base) {
			uint64_t pmax = most + info->hist_len + 1;
			prof = malloc(pmax * sizeof(uint32_t));
			Sk = malloc((size_t)n_items * sizeof(float));
			Si = malloc((size_t)b->cap * n_items * sizeof(float));
			Xi = malloc((size_t)b->cap * bl->ials.f * sizeof(float));
			iscratch = malloc(ials_scratch_floats(&bl->ials, (uint32_t)pmax) *
					  sizeof(float));
		}
		if (!popular || !S || !k.heap_s || !k.heap_i || !k.top || !k.skip ||
		    (two_tower && (!V || !U)) ||
		    (with_base && (!prof || !Sk || !Si || !Xi || !iscratch)))
			rc = hr_error(HR_ENOMEM, "out of memory for ranking %u items", n_items);
	}
	k.n_items = n_items;
	k.popular = popular;
	if (!rc)
		rc = rank_acc_init(&k.model, n_items, popular);
	for (int q = 0; !rc && q < N_BASE; q++)
		rc = rank_acc_init(&k.base[q], n_items, popular);
	if (!rc && two_tower) {
		/* any record gives the rows their user side; the item towers read none of it */
		rc = batch_fill(b, &src, 0, 1);
		for (uint32_t i = 0; !rc && i < sb.cap; i++)
			batch_copy_row(&sb, i, b, 0);
		if (!rc)
			rc = item_matrix(e, &sb, V, n_items);
	}
	const struct batch_source qsrc = {.ix = &ix,
					  .order = u.query,
					  .n = u.n,
					  .store = store_path(e->st),
					  .db = store_db_name(db)};
	for (uint64_t first = 0; !rc && first < u.n; first += b->n) {
		uint64_t left = u.n - first;
		uint32_t nb = left < b->cap ? (uint32_t)left : b->cap;
		rc = batch_fill(b, &qsrc, first, nb);
		if (rc)
			break;
		if (two_tower) {
			m->ops->user_vectors(m, e->ws, b, U);
			nn_sgemm(false, true, (int)b->n, (int)n_items, (int)d, 1.0f, U, (int)d, V,
				 (int)d, 0.0f, S, (int)n_items);
		} else {
			for (uint32_t i = 0; i < b->n; i++)
				score_items(e, &sb, b, i, S + (size_t)i * n_items, n_items);
		}
		double t1 = now_seconds();
		if (with_base) { /* iALS: every profile folded in, then one GEMM */
			rc = batch_fill(&hb, &qsrc, first, nb);
			for (uint32_t i = 0; !rc && i < nb; i++) {
				uint32_t np = profile(&train, b->user[i], &hb, i, prof);
				rc = ials_fold_in(&bl->ials, prof, np, iscratch,
						  Xi + (size_t)i * bl->ials.f);
			}
			if (!rc)
				ials_score(&bl->ials, Xi, nb, Si);
		}
		tb += now_seconds() - t1;
		for (uint32_t i = 0; !rc && i < b->n; i++) {
			uint64_t w = first + i;
			const uint32_t *pos = u.pos + u.pos_off[w];
			uint32_t n_pos = (uint32_t)(u.pos_off[w + 1] - u.pos_off[w]);
			const float *score = S + (size_t)i * n_items;
			for (uint32_t j = 1; !rc && j < n_items; j++)
				if (!isfinite(score[j]))
					rc = hr_error(HR_EFORMAT, "the model scored item %u as %g",
						      j, score[j]);
			if (rc)
				break;
			user_begin(&k, b->user[i], u.raw[w], pos, n_pos);
			add_ranked(&k, &k.model, score, u.first[w], pos, n_pos);
			if (!with_base)
				continue;
			t1 = now_seconds();
			uint32_t np = profile(&train, b->user[i], &hb, i, prof);
			knn_score(&bl->knn, prof, np, Sk);
			add_ranked(&k, &k.base[BASE_POP], popular, u.first[w], pos, n_pos);
			add_ranked(&k, &k.base[BASE_KNN], Sk, u.first[w], pos, n_pos);
			add_ranked(&k, &k.base[BASE_IALS], Si + (size_t)i * n_items, u.first[w],
				   pos, n_pos);
			tb += now_seconds() - t1;
		}
	}
	if (!rc) {
		rank_acc_result(&k.model, &res->model);
		if (with_base) {
			for (int q = 0; q < N_BASE; q++)
				rank_acc_result(&k.base[q], &bl->res[split][q]);
			bl->seconds[1] = tb;
			bl->done[split] = 1;
		}
		res->popular = bl->res[split][BASE_POP];
		res->knn = bl->res[split][BASE_KNN];
		res->ials = bl->res[split][BASE_IALS];
		res->baseline_seconds = with_base ? bl->seconds[0] * !split + tb : 0;
	}
	res->seconds = now_seconds() - t0;
	rank_acc_release(&k.model);
	for (int q = 0; q < N_BASE; q++)
		rank_acc_release(&k.base[q]);
	free(k.heap_s);
	free(k.heap_i);
	free(k.top);
	free(k.skip);
	free(S);
	free(V);
	free(U);
	free(popular);
	free(prof);
	free(Sk);
	free(Si);
	free(Xi);
	free(iscratch);
	batch_release(&sb);
	batch_release(&hb);
	users_release(&u);
	interactions_release(&train);
	store_index_release(&tix);
	store_index_release(&ix);
	store_reader_end(r);
	return rc;
}
