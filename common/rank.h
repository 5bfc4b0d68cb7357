/*
 * rank.h - top-K selection over a catalogue's scores and the ranking
 * metrics retrieval is judged by (Recall, NDCG, HitRate, MRR at several
 * K, catalogue coverage, the popularity of what is recommended), plus the
 * NCF paper's leave-one-out protocol (one held-out item against sampled
 * negatives).
 *
 * Definitions (RecBole's, per user, then averaged over users with at least
 * one held-out positive):
 *   hits@K    held-out positives among the top K
 *   Recall@K  hits@K / |positives|
 *   HitRate@K 1 when hits@K > 0
 *   NDCG@K    sum over the top K's positives at rank j (0-based) of
 *             1 / log2(j + 2), over the same sum for the ideal list
 *             (min(|positives|, K) positives first)
 *   MRR@K     1 / (j + 1) for the first positive at rank j < K, else 0
 *   coverage@K  distinct items in any user's top K / catalogue size
 *   popularity@K mean over every recommended slot of the item's weight
 *             (the caller's: e.g. its train interactions)
 * A list shorter than K (a catalogue with fewer unexcluded items) counts
 * what it has.
 *
 * Thread-safety: no shared state; a rank_acc belongs to one thread (merge
 * per-thread accumulators with rank_acc_merge).
 */
#ifndef HR_RANK_H
#define HR_RANK_H

#include <stddef.h>
#include <stdint.h>

#define RANK_NK 4
#define RANK_KMAX 100
extern const uint32_t rank_k[RANK_NK]; /* 10, 20, 50, 100 */

/*
 * The k highest scores of score[0 .. n), leaving out the indices in
 * skip[0 .. n_skip) (ascending; duplicates and indices >= n allowed),
 * best first, ties broken by the lower index, into idx; returns how many
 * (min(k, the items not skipped)).  NaN scores are never selected.
 * heap: the caller's scratch of k floats and k uint32_t (heap_s, heap_i).
 * O(n log k); the catalogue is not sorted.
 */
uint32_t rank_topk(const float *score, uint32_t n, const uint32_t *skip, uint32_t n_skip,
		   uint32_t k, uint32_t *idx, float *heap_s, uint32_t *heap_i);

/* Whether x is in v[0 .. n) (ascending; duplicates allowed): a binary search. */
int rank_contains(const uint32_t *v, uint32_t n, uint32_t x);

struct rank_acc {
	uint64_t users; /* users added (each with >= 1 positive) */
	double recall[RANK_NK], ndcg[RANK_NK], hit[RANK_NK], mrr[RANK_NK];
	double pop[RANK_NK]; /* sum of the weights of recommended items */
	uint64_t loo_users;  /* leave-one-out ranks added */
	double loo_hr, loo_ndcg;
	uint64_t slots[RANK_NK];
	uint32_t n_items;
	uint8_t *seen;       /* (n_items) bit j: in some top rank_k[j] */
	const float *weight; /* (n_items) or NULL: popularity not reported */
};

/* HR_ENOMEM; weight (n_items, may be NULL) is read, not copied. */
int rank_acc_init(struct rank_acc *a, uint32_t n_items, const float *weight);
void rank_acc_release(struct rank_acc *a);

/*
 * Adds one user: top[0 .. n_top) a ranked list (rank_topk's), pos[0 ..
 * n_pos) its held-out positives, ascending, distinct.  n_pos == 0: nothing
 * is added.
 */
void rank_acc_add(struct rank_acc *a, const uint32_t *top, uint32_t n_top, const uint32_t *pos,
		  uint32_t n_pos);

/* a += b (the same n_items); HR_EINVAL when they differ. */
int rank_acc_merge(struct rank_acc *a, const struct rank_acc *b);

struct rank_result {
	uint64_t users;
	double recall[RANK_NK], ndcg[RANK_NK], hit[RANK_NK], mrr[RANK_NK];
	double coverage[RANK_NK];
	double popularity[RANK_NK]; /* NaN without weights */
	uint64_t loo_users;
	double loo_hr, loo_ndcg; /* HR@10, NDCG@10 of the leave-one-out ranks; NaN without */
};

/* The means; every field NaN when no user was added. */
void rank_acc_result(const struct rank_acc *a, struct rank_result *r);

/*
 * Leave-one-out (the NCF paper's protocol): the held-out item's score
 * against its sampled negatives' scores; returns its 0-based rank, counting
 * every negative that scores higher or the same (a tie ranks the positive
 * below it: a constant scorer earns nothing).  HR@k = rank < k,
 * NDCG@k = 1 / log2(rank + 2) when rank < k.  A NaN positive ranks last.
 */
uint32_t rank_loo(float pos_score, const float *neg_scores, uint32_t n_neg);

/* Adds one leave-one-out rank (rank_loo's) to a's HR@10 and NDCG@10. */
void rank_acc_add_loo(struct rank_acc *a, uint32_t rank);

#endif
