/*
 * recommender.h - top-K items for a user from a trained model: the
 * serving side of retrieval (bin/recommend).
 *
 * struct serve_data is what serving reads from a store once, shared by
 * every model loaded from it: the store's meta, its items table (each
 * candidate's side), titles and popularity (catalog.h), and each user's
 * query record and rated items (users.h).
 *
 * struct recommender is one model loaded from one checkpoint, ready to
 * score: weights, the data the model reads beyond records, and for a
 * two-tower model its item vectors, computed once at load.  Scoring a
 * user: a model with user and item vectors scores the whole catalogue by
 * one product of the user's vector with the item matrix; any other model
 * scores copies of the user's query record, each with a candidate's item
 * side, through its forward pass (trainer/rankeval.h ranks the same way).
 * The top K without sorting the catalogue (common/rank.h), ties to the
 * lower item code.
 *
 * Who the model can answer for: a user known to train (encoded id > 0);
 * a cold user (only in valid or test: encoded id 0) when the model reads
 * what such a user still has, their demographics (when the store has them)
 * or a non-empty history.  Otherwise, e.g. an id-only model (ncf, gmf,
 * neumf, autorec) for a cold user, the list is the most popular items
 * (train records), and says so (source REC_POPULAR).
 *
 * Threading: a loaded recommender is read-only; any number of threads
 * may call recommender_top at once (each call borrows its own scratch from
 * a pool).  It embeds a swap_item (swap.h) so that a server can replace it
 * while requests use it.
 */
#ifndef HR_SERVE_RECOMMENDER_H
#define HR_SERVE_RECOMMENDER_H

#include <stdint.h>

#include "catalog.h"
#include "store/info.h"
#include "store/items.h"
#include "swap.h"
#include "trainer/ckpt.h"
#include "users.h"

#define REC_K_MAX 1000 /* most items one list may ask for */

struct serve_data {
	struct store *st;
	struct store_info info;
	struct store_items items;
	struct catalog cat;
	struct users users;
};

/*
 * Opens the store at path (store_open: HR_ENOENT, HR_ESTORE for a damaged
 * or foreign one) and loads what serving reads from it.  Errors as
 * store_open, store_info_load, catalog_load, users_load.  On failure d
 * owns nothing.
 */
int serve_data_open(struct serve_data *d, const char *path);
void serve_data_close(struct serve_data *d);

struct recommender;

/*
 * Builds a recommender from the open checkpoint c for d's store.
 * Errors: HR_EINVAL when the checkpoint does not fit the store (another
 * schema; ckpt_model_load's message), is of a model this build does not
 * know or cannot rank with ("checkpoint 'P' is of model 'X', which cannot
 * rank items (...)"); HR_EFORMAT for a checkpoint not written by
 * bin/trainer (no model shape); errors of loading the model's train data;
 * HR_ENOMEM.  d must outlive the recommender.
 */
int recommender_load(struct recommender **out, const struct serve_data *d, const struct ckpt *c);

/* Frees r at once (not for one published in a swap: release that). */
void recommender_free(struct recommender *r);

/* r's reference-counted part, and back from it (swap.h). */
struct swap_item *recommender_item(struct recommender *r);
struct recommender *recommender_of(struct swap_item *it);

const char *recommender_model(const struct recommender *r);
const char *recommender_path(const struct recommender *r); /* the checkpoint file */
uint64_t recommender_step(const struct recommender *r);

enum rec_source { REC_MODEL, REC_POPULAR };

/* One user's list: items[0 .. n) best first, their scores (the model's
 * logits or predicted ratings; the popular list's train record counts). */
struct rec_list {
	uint32_t user_raw;
	enum rec_source source;
	uint32_t n;
	uint32_t item[REC_K_MAX]; /* encoded item ids (catalog.h: raw ids, titles) */
	float score[REC_K_MAX];
};

/*
 * The k (1 .. REC_K_MAX, asserted) best items for raw user id user_raw,
 * leaving out the items they have rated when exclude_rated; fewer when the
 * catalogue has fewer left.  Items the model scores NaN are left out.
 * Errors: HR_ENOENT "user U is not in store 'S'" (no record of them);
 * HR_EFORMAT when the user's record does not decode for this model;
 * HR_ENOMEM.
 */
int recommender_top(struct recommender *r, uint32_t user_raw, uint32_t k, int exclude_rated,
		    struct rec_list *out);

#endif
