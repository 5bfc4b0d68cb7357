/*
 * eval.h - scoring a split: model AUC, logloss and gAUC, beside the
 * item-popularity baseline on the same rows.
 *
 * The baseline scores a row by its item's positive rate over the train
 * split (the items table's item_pos_rate, unscaled; items unseen in train
 * get the train positive rate), which is what a model must beat to have
 * learnt anything beyond popularity.  gAUC groups rows by raw user id.
 *
 * A rating model (TARGET_RATING) is scored by RMSE against the records'
 * ratings instead, beside the train means' RMSE (struct eval_result).
 *
 * An evaluator owns its batch, workspace and score buffers; it runs in one
 * thread and reads the shared weights (a concurrent Hogwild update may be
 * in flight only if the caller allows it; the trainer evaluates between
 * epochs).
 */
#ifndef HR_EVAL_H
#define HR_EVAL_H

#include <stdint.h>

#include "common/rank.h"
#include "models/model.h"
#include "store/items.h"
#include "store/store.h"

struct eval_result {
	uint64_t n;
	double auc, logloss, gauc;
	double base_auc, base_logloss;
	size_t gauc_users;
	double positive_rate;
	/* label models: AUC of each positive against one random item of the same
	 * user (uniform over the catalogue but the positive, its genres and dense
	 * values from the items table, seeded): what a model ranks, also where
	 * labels are all 1 (implicit stores) */
	double sampled_auc;
	double base_sampled_auc; /* the same rows scored by item popularity (items table) */
	/* rating models (TARGET_RATING): RMSE of the model and of the train
	 * split's global, item and user mean ratings (a user or item without
	 * train ratings gets the global mean) */
	double rmse, rmse_global_mean, rmse_item_mean, rmse_user_mean;
	/* with evaluator.rank: full-catalogue ranking (trainer/rankeval.h) of the
	 * model and of the baselines (most popular, item-kNN, iALS); rank.users 0
	 * otherwise */
	struct rank_result rank, rank_popular, rank_knn, rank_ials;
	double rank_seconds;      /* the ranking's share of seconds */
	double rank_base_seconds; /* the baselines' share of that (fitted, ranked once per split) */
	double seconds;
};

struct evaluator {
	struct store *st;
	const struct model *m;
	uint32_t batch_size;
	struct batch b;
	float *ws;
	float *logits;
	float *item_base;             /* per encoded item: baseline probability */
	float *item_mean, *user_mean; /* rating models: per encoded id, the mean train rating */
	struct store_items items;     /* the items table: the sampled AUC's random items */
	float *s_score, *s_label;     /* (2 cap) the sampled AUC's rows */
	float *s_base;                /* (2 cap) their popularity scores */
	uint32_t n_items;
	uint64_t cap; /* rows the score buffers hold */
	float *score, *prob, *label, *base;
	uint32_t *user;
	int rank;            /* also rank the catalogue (rankeval.h); set after init */
	int exclude_train;   /* ranking leaves out the user's train items */
	uint32_t rank_users; /* ranking: at most this many users, evenly spaced (0: all) */
	struct rank_baselines *baselines; /* rankeval's, kept between evaluations */
};

/*
 * A metric of an eval_result by name, as early stopping selects on it:
 * "auc", "gauc", "sampled_auc", "rmse", "recall@K", "ndcg@K", "hit@K",
 * "mrr@K" (K 10, 20, 50, 100; rank metrics: evaluator.rank), "loo_hr@10",
 * "loo_ndcg@10".
 */
struct eval_metric {
	char name[24];
	enum {
		EM_AUC,
		EM_GAUC,
		EM_SAMPLED_AUC,
		EM_RMSE,
		EM_RECALL,
		EM_NDCG,
		EM_HIT,
		EM_MRR,
		EM_LOO_HR,
		EM_LOO_NDCG
	} kind;
	int q;     /* rank metrics: the index of K in rank_k */
	int lower; /* lower is better (rmse) */
};

/* 0, or HR_EINVAL naming the metric and listing the valid names. */
int eval_metric_parse(const char *name, struct eval_metric *m);
/* Whether m needs the ranking (evaluator.rank): the rank and leave-one-out metrics. */
int eval_metric_ranked(const struct eval_metric *m);
/* m's value in r (NaN when r lacks it). */
double eval_metric_value(const struct eval_metric *m, const struct eval_result *r);

int evaluator_init(struct evaluator *e, struct store *st, const struct model *m,
		   uint32_t batch_size);
void evaluator_release(struct evaluator *e);

/* Scores every record of db (STORE_VALID or STORE_TEST).  HR_EINVAL if the split is empty. */
int evaluate(struct evaluator *e, enum store_db db, struct eval_result *res);

#endif
