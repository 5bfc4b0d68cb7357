/*
 * metrics.h - exact binary-classification metrics: ROC AUC and logloss.
 *
 * Both take parallel arrays of n predictions and n labels (label 0 or 1).
 * metric_auc() is exact (no binning): it sorts the scores in O(n) with a
 * radix sort and gives tied scores their average rank (Mann-Whitney U), so
 * a constant predictor scores 0.5.  Used by the trainer's eval and by the
 * synthetic generator's oracle.
 *
 * Thread-safety: no shared state; safe to call from many threads at once.
 */
#ifndef HR_METRICS_H
#define HR_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Exact area under the ROC curve of score against label.
 *
 *   score  n scores, higher means "more likely positive"; not NaN
 *   label  n labels, each exactly 0.0f or 1.0f
 *   n      number of examples
 *   auc    receives the AUC in [0, 1] on success; untouched on failure
 *
 * The result equals the probability that a random positive scores higher
 * than a random negative, counting ties as one half.  -0.0 and +0.0 tie.
 *
 * Returns 0, or
 *   HR_EINVAL  n == 0, only one class present, a label other than 0/1, or
 *              a NaN score (the message names the index)
 *   HR_ENOMEM  the O(n) sort buffers (16 bytes per example) cannot be
 *              allocated
 * The arrays are not modified; nothing is retained after the call.
 */
int metric_auc(const float *score, const float *label, size_t n, double *auc);

/*
 * Mean binary cross-entropy (natural log) of prob against label:
 * -mean(y log p + (1 - y) log(1 - p)), with p clipped to [1e-7, 1 - 1e-7]
 * so a confident mistake costs at most about 16.1 per example.  Labels may
 * be any value in [0, 1] (soft labels); NaN probabilities propagate.
 * Returns NaN when n == 0.  Never fails otherwise.
 */
double metric_logloss(const float *prob, const float *label, size_t n);

/*
 * Group AUC: the AUC of each group (e.g. user) that has both classes,
 * averaged with weights equal to the group's number of examples.  Groups
 * with one class only are left out; *groups_used (may be NULL) receives
 * the number of groups that counted.
 * Returns 0; HR_EINVAL when no group has both classes; HR_ENOMEM.
 */
int metric_gauc(const float *score, const float *label, const uint32_t *group, size_t n,
		double *gauc, size_t *groups_used);

#endif
