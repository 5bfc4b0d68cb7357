/*
 * rankeval.h - full-catalogue ranking metrics of a model on a split
 * (common/rank.h: Recall, NDCG, HitRate, MRR at 10/20/50/100, coverage,
 * the popularity of what is recommended), beside the most-popular
 * recommender on the same users.
 *
 * The users: every user (raw id) with a positive of a known item (code >
 * 0: an item train never saw cannot be recommended) in the split.  Their
 * query: the user's first record in the split (its demographics, history
 * and dense values as of then), scored against every item of the
 * catalogue (codes 1 .. n_items - 1, each item's side from the items
 * table).  With exclude_train, the items the user has a train record of
 * are left out (a user unknown to train has none).  The positives: the
 * user's distinct positive items in the split.
 *
 * The baselines (most popular, item-kNN, iALS: models/baselines.h) are
 * fitted on the train split's positives at the first call, ranked on a
 * split's users at its first call and kept in e->baselines for the later
 * ones (they do not change between epochs).  A user's profile for kNN and
 * iALS: its train positives and the items of its query record's history.
 *
 * Scoring: a model with user and item vectors (two-tower) scores a block
 * of users against the whole item matrix with one sgemm; any other model
 * scores copies of the user's query with each item through its forward
 * pass, a batch at a time.  The top K without sorting the catalogue.
 *
 * Cost: users x items scores (the synthetic ml-1m's test: ~6,000 x 3,706);
 * memory: one batch of users' scores (batch x items floats) and the train
 * interactions (interact.h).  One thread; reads the weights as evaluate()
 * does.
 */
#ifndef HR_RANKEVAL_H
#define HR_RANKEVAL_H

#include "common/rank.h"
#include "eval.h"

struct rank_eval_result {
	struct rank_result model;
	/* the baselines on the same users (models/baselines.h): most popular
	 * (train records), item-kNN and iALS over the user's profile (its train
	 * positives and the query record's history) */
	struct rank_result popular, knn, ials;
	double seconds;          /* all of it */
	double baseline_seconds; /* the baselines' share: fitted and ranked once per split */
};

/* The baselines' fitted models and results, kept by the evaluator between calls. */
struct rank_baselines;
void rank_baselines_free(struct rank_baselines *b);

/*
 * Ranks the catalogue for every user of db (STORE_VALID or STORE_TEST)
 * with e's model.  HR_EINVAL when the split has no user with a known
 * positive; HR_EFORMAT when the model scores an item NaN; store errors as
 * evaluate()'s; HR_ENOMEM.
 */
int rank_evaluate(struct evaluator *e, enum store_db db, int exclude_train,
		  struct rank_eval_result *res);

#endif
