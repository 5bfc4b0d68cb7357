/*
 * sampler.h - negative items for a (user, positive item) pair, as the
 * pairwise and pointwise retrieval models (NCF, TwoTower) draw them.
 *
 * Three kinds, over the item vocabulary 1 .. n_items-1 (id 0 is padding
 * and never drawn), the positive item never returned:
 *
 *   random      uniform over every item but the positive: one draw, exact.
 *   unconsumed  uniform over the items the user has not consumed in
 *               train_pos (and not the positive): up to SAMPLER_TRIES
 *               uniform draws, each rejected when a binary search finds it
 *               in the user's sorted consumed list; then an exact fallback,
 *               the k-th unconsumed item found by a binary search over the
 *               same list (so the draw stays exactly uniform, whatever the
 *               user's history).  A user who consumed every item but the
 *               positive has no unconsumed item: the draw is then `random`'s.
 *   popular     proportional to the item's count in train_pos: an alias
 *               table (one draw, O(1)); when it lands on the positive, one
 *               exact draw from the counts without the positive, by binary
 *               search over their running sums.  So the result is exactly
 *               proportional to the counts of the items other than the
 *               positive; if every count belongs to the positive, the draw
 *               is `random`'s.  Items of count 0 are never drawn.
 *
 * What this matches of LibRecommender (massquantity/LibRecommender:
 * libreco/sampling/negatives.py, the samplers; libreco/batch/collators.py,
 * which calls them; libreco/algorithms/two_tower.py, the correction): the
 * three kinds and their names, "consumed" = the user's items in the train
 * data, "popular" weighted by the item's train frequency, draws equal to
 * the positive rejected, a bounded number of rejections (its tolerance=10;
 * ours is SAMPLER_TRIES), and the logQ share item_count / len(train)
 * clipped to [1e-8, 1] (TwoTower's use_correction, subtracted from the
 * in-batch logits as log q).  Where it differs:
 *   - LibRecommender's random redraws a positive at most 10 times, its
 *     popular once; its unconsumed, after 10 draws that avoid the consumed
 *     items, makes 10 that only avoid the positive, then takes any item.
 *     So each may return the positive (or a consumed item).  Ours never
 *     does: each fallback is exact instead.
 *   - Its item ids run 0 .. n_items-1 (no padding id); ours 1 .. n_items-1.
 *   - Its popular weighs an item by its distinct users to the power
 *     temperature=0.75; ours by its entries in train_pos, power 1.  (In
 *     MovieLens a user rates an item once, so the counts agree.)
 *   - Its random draws a batch without replacement when the batch is
 *     smaller than the vocabulary, its unconsumed avoids repeating a
 *     negative within one positive's num_neg; ours are independent draws
 *     (with replacement), so sampler_fill() is sampler_draw() in a loop.
 *   - Its TwoTower gives an item absent from train a correction of 1
 *     (log 0, no correction); sampler_item_prob() gives it 1e-8.  Such an
 *     item never is an in-batch positive, so the value is not used there.
 *
 * Ownership and threads: sampler_init() copies what it needs from
 * train_pos, which may be released afterwards; the sampler owns one block
 * until sampler_release().  After init it is read-only: any number of
 * threads may draw at once, each with its own struct rng (common/rng.h),
 * and a (seed, stream) gives the same draws on every run.
 */
#ifndef HR_SAMPLER_H
#define HR_SAMPLER_H

#include <stdint.h>

#include "common/rng.h"
#include "interact.h"

enum sampler_kind { SAMPLER_RANDOM = 0, SAMPLER_UNCONSUMED = 1, SAMPLER_POPULAR = 2 };

/* Uniform draws `unconsumed` rejects before its exact fallback. */
#define SAMPLER_TRIES 10

/* The logQ share's bounds (LibRecommender's TwoTower). */
#define SAMPLER_PROB_MIN 1e-8f
#define SAMPLER_PROB_MAX 1.0f

struct sampler {
	enum sampler_kind kind;
	uint32_t n_users, n_items; /* train_pos's rows: the vocabulary sizes */
	uint64_t n_pos;            /* train_pos->n, the share's denominator */
	float *item_prob;          /* (n_items) count / n_pos, clipped */

	/* unconsumed: user u's distinct items, ascending, none 0 */
	uint64_t *cons_off; /* (n_users + 1) */
	uint32_t *cons;     /* (distinct pairs) */

	/* popular, over the K = n_items - 1 items 1 .. K */
	uint32_t *alias; /* (K, 2) column j keeps item j + 1 when 32 random bits are below
			  * alias[2j], else draws item alias[2j + 1]: one cache line */
	uint64_t *cum;   /* (n_items) cum[i] = the counts of items 1 .. i; cum[0] = 0 */

	void *mem;
};

/* "random", "unconsumed", "popular"; -1 otherwise. */
int sampler_kind_parse(const char *name);
const char *sampler_kind_name(enum sampler_kind kind);

/*
 * Prepares a sampler of kind over train_pos's vocabulary: every kind
 * counts each item's entries (sampler_item_prob()); `unconsumed` copies
 * each user's distinct items, `popular` builds its alias table.
 * train_pos is usually a train split loaded with INTERACT_POSITIVES; with
 * every row, "consumed" and the counts include the negatives.
 * Errors (*s zeroed, owning nothing): HR_EINVAL when n_items < 3 (no item
 * other than a positive to draw), when kind is not a sampler_kind, or for
 * `popular` when no entry has an item above 0 ("no item has a train
 * count"); HR_ENOMEM.
 */
int sampler_init(struct sampler *s, enum sampler_kind kind, const struct interactions *train_pos);
/* Frees s's memory and zeroes it; a zeroed s is fine. */
void sampler_release(struct sampler *s);

/*
 * One negative item for (user, pos_item): in 1 .. n_items-1, never
 * pos_item, drawn as s->kind says.  user < n_users (read by `unconsumed`
 * only) and pos_item < n_items are asserted; a pos_item of 0 (an item
 * train does not know) excludes nothing.  Advances r; thread-safe for
 * distinct r.  Cost for the pairs of the synthetic ml-1m's train positives
 * (3,685 items, one core, best of 5 x 20 M draws; up to 1.5x more on a
 * busy machine): random 4 ns, unconsumed 18 ns (its binary searches over
 * the user's list; the k-th search alone, without rejection, is 21 ns),
 * popular 10 ns (the running-sum search alone is 14 ns, and grows with
 * log n_items where the alias table does not).
 */
uint32_t sampler_draw(const struct sampler *s, struct rng *r, uint32_t user, uint32_t pos_item);

/*
 * num_neg negatives for each of the B pairs (users[b], pos_items[b]):
 * out (B, num_neg), row b drawn by sampler_draw() in order, so the same
 * rng state gives the same out.  users may be NULL for `random` and
 * `popular`.
 */
void sampler_fill(const struct sampler *s, struct rng *r, const uint32_t *users,
		  const uint32_t *pos_items, uint32_t B, uint32_t num_neg, uint32_t *out);

/*
 * The item's share of train_pos, count / n_pos, clipped to [1e-8, 1]: the
 * q of the logQ correction (logit - log q).  item < n_items (asserted);
 * s->item_prob is the whole array.
 */
float sampler_item_prob(const struct sampler *s, uint32_t item);

#endif
