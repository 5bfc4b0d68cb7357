/*
 * baselines.h - the non-neural recommenders a neural model's ranking is
 * judged beside (issue 12): item-kNN with cosine similarity and implicit
 * matrix factorisation by alternating least squares (iALS).  Both are
 * fitted on the positives (label 1) of one split's interactions
 * (interact.h) and score the whole catalogue for a user given as a
 * *profile*: a set of items the user is known to like.  A profile is not
 * tied to the training users, so a user train never saw (most test users
 * of a global time split) is scored from whatever history its record
 * carries (trainer/rankeval.c builds profiles from the user's train
 * positives and the query record's history).
 *
 * item-kNN (RecBole's ItemKNN, shrink 0): sim(i, j) = |U_i ∩ U_j| /
 *   sqrt(|U_i| |U_j|), U_i the users with a positive of item i; each item
 *   keeps its k most similar other items (ties to the lower id); a user's
 *   score of item j is the sum of sim(i, j) over the profile's items i
 *   having j among their neighbours.  Items no neighbourhood reaches score
 *   below every reached item, ordered by their train positives.
 *
 * iALS (Hu, Koren, Volinsky, ICDM 2008): confidence 1 + alpha on the
 *   positives, 1 elsewhere, preference 1 on the positives; minimises
 *   sum c_ui (p_ui - x_u.y_i)^2 + reg (|x|^2 + |y|^2) by alternating exact
 *   solves, each a Cholesky solve (LAPACK sposv from OpenBLAS) of
 *     (Y'Y + alpha sum_{i in P} y_i y_i' + reg I) x = (1 + alpha) sum_{i in P} y_i.
 *   A profile is scored by folding it in: the same solve against the
 *   fitted item factors, then x.y_j for every item (one GEMV).
 *
 * Cost: kNN's fit is sum over users of (positives)^2 counter increments
 * (the synthetic ml-1m: ~10^8, well under a second), its memory n_items
 * k (id, float) pairs; scoring a profile, |profile| k adds.  iALS's fit
 * is iters x 2 f^2 (2 positives + n_users + n_items) flops plus a
 * Cholesky per row (f = 64, 10 iterations on the synthetic ml-1m: about a
 * second); scoring, one f x f solve and n_items f multiply-adds.
 *
 * Thread-safety: a fitted model is read-only; scoring functions take the
 * caller's scratch and may run in any number of threads at once.
 */
#ifndef HR_BASELINES_H
#define HR_BASELINES_H

#include <stdint.h>

#include "interact.h"

#define KNN_K_DEFAULT 100 /* RecBole's ItemKNN k */

struct knn {
	uint32_t n_items, k;
	uint32_t *nbr; /* (n_items, k) neighbour ids, most similar first; 0 past the last */
	float *sim;    /* (n_items, k) their similarities; 0 past the last */
	float *floor;  /* (n_items) an unreached item's score: below 0, by train positives */
};

/* Fits on x's positives.  HR_EINVAL when k is 0; HR_ENOMEM.  On failure m owns nothing. */
int knn_fit(struct knn *m, const struct interactions *x, uint32_t k);
/*
 * The catalogue's scores (n_items) for the profile items[0 .. n) (ids below
 * n_items; duplicates count once only when the caller removes them).
 */
void knn_score(const struct knn *m, const uint32_t *items, uint32_t n, float *score);
void knn_release(struct knn *m);

struct ials_opts {
	uint32_t factors, iters;
	float alpha, reg;
	uint64_t seed;
};
/* factors 64, 10 iterations, alpha 3, reg 100 (docs/models.md: how they were chosen). */
extern const struct ials_opts ials_defaults;

struct ials {
	uint32_t n_items, f;
	float alpha, reg;
	float *Y;  /* (n_items, f) item factors */
	float *YY; /* (f, f) Y'Y */
};

/* Fits on x's positives.  HR_EINVAL for factors 0 or over 1024, negative alpha or reg; HR_ENOMEM. */
int ials_fit(struct ials *m, const struct interactions *x, const struct ials_opts *o);
/* Floats of scratch ials_fold_in needs for profiles of up to max_items items. */
uint64_t ials_scratch_floats(const struct ials *m, uint32_t max_items);
/*
 * The factors x (f) of the profile items[0 .. n) (ids below n_items):
 * the row's solve against the fitted item factors.  An empty profile
 * gets x = 0.  HR_EFORMAT when the solve fails (reg 0 and a degenerate
 * profile: not positive definite).
 */
int ials_fold_in(const struct ials *m, const uint32_t *items, uint32_t n, float *scratch, float *x);
/* S (n_users, n_items) = X Y' for folded-in factors X (n_users, f): one GEMM. */
void ials_score(const struct ials *m, const float *X, uint32_t n_users, float *S);
void ials_release(struct ials *m);

#endif
