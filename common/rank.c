/* rank.c - top-K selection and ranking metrics (rank.h). */
#include "rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const uint32_t rank_k[RANK_NK] = {10, 20, 50, 100};

/* a ranks below b: a lower score, or the same score and a higher index. */
static int worse(float sa, uint32_t ia, float sb, uint32_t ib)
{
	return sa < sb || (sa == sb && ia > ib);
}

/* Restores the min-heap (root: the worst kept) below position i. */
static void sift_down(float *s, uint32_t *ix, uint32_t n, uint32_t i)
{
	float ks = s[i];
	uint32_t ki = ix[i];

	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && worse(s[c + 1], ix[c + 1], s[c], ix[c]))
			c++;
		if (!worse(s[c], ix[c], ks, ki))
			break;
		s[i] = s[c];
		ix[i] = ix[c];
		i = c;
	}
	s[i] = ks;
	ix[i] = ki;
}

static void sift_up(float *s, uint32_t *ix, uint32_t i)
{
	float ks = s[i];
	uint32_t ki = ix[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!worse(ks, ki, s[p], ix[p]))
			break;
		s[i] = s[p];
		ix[i] = ix[p];
		i = p;
	}
	s[i] = ks;
	ix[i] = ki;
}

uint32_t rank_topk(const float *score, uint32_t n, const uint32_t *skip, uint32_t n_skip,
		   uint32_t k, uint32_t *idx, float *heap_s, uint32_t *heap_i)
{
	uint32_t h = 0, next = 0;

	if (k == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		float s = score[i];
		while (next < n_skip && skip[next] < i)
			next++;
		if ((next < n_skip && skip[next] == i) || s != s)
			continue;
		if (h < k) {
			heap_s[h] = s;
			heap_i[h] = i;
			sift_up(heap_s, heap_i, h++);
		} else if (worse(heap_s[0], heap_i[0], s, i)) {
			heap_s[0] = s;
			heap_i[0] = i;
			sift_down(heap_s, heap_i, h, 0);
		}
	}
	/* pop the worst to the back: idx best first */
	for (uint32_t m = h; m > 0; m--) {
		idx[m - 1] = heap_i[0];
		heap_s[0] = heap_s[m - 1];
		heap_i[0] = heap_i[m - 1];
		sift_down(heap_s, heap_i, m - 1, 0);
	}
	return h;
}

int rank_acc_init(struct rank_acc *a, uint32_t n_items, const float *weight)
{
	memset(a, 0, sizeof(*a));
	a->n_items = n_items;
	a->weight = weight;
	a->seen = calloc(n_items ? n_items : 1, 1);
	return a->seen ? 0 : hr_error(HR_ENOMEM, "out of memory for the ranking metrics");
}

void rank_acc_release(struct rank_acc *a)
{
	free(a->seen);
	memset(a, 0, sizeof(*a));
}

int rank_contains(const uint32_t *v, uint32_t n, uint32_t x)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] == x;
}

void rank_acc_add(struct rank_acc *a, const uint32_t *top, uint32_t n_top, const uint32_t *pos,
		  uint32_t n_pos)
{
	double dcg = 0, idcg = 0, first = 0, pop = 0;
	uint32_t hits = 0, j = 0, i = 0;

	if (n_pos == 0)
		return;
	a->users++;
	/* one pass over the list: each K's sums are those of the smaller K plus its own slots */
	for (int q = 0; q < RANK_NK; q++) {
		uint32_t K = rank_k[q], end = n_top < K ? n_top : K;
		uint8_t in_top =
			(uint8_t)(((1u << RANK_NK) - 1) & ~((1u << q) - 1)); /* K >= rank_k[q] */
		for (; j < end; j++) {
			uint32_t it = top[j];
			if (it < a->n_items) {
				a->seen[it] |= in_top;
				if (a->weight)
					pop += a->weight[it];
			}
			if (rank_contains(pos, n_pos, it)) {
				hits++;
				dcg += 1.0 / log2((double)j + 2);
				if (first == 0)
					first = 1.0 / (j + 1);
			}
		}
		for (; i < K && i < n_pos; i++)
			idcg += 1.0 / log2((double)i + 2);
		a->slots[q] += end;
		a->pop[q] += pop;
		a->recall[q] += (double)hits / n_pos;
		a->hit[q] += hits > 0;
		a->ndcg[q] += dcg / idcg;
		a->mrr[q] += first;
	}
}

int rank_acc_merge(struct rank_acc *a, const struct rank_acc *b)
{
	if (a->n_items != b->n_items)
		return hr_error(HR_EINVAL, "ranking metrics over %u and %u items", a->n_items,
				b->n_items);
	a->users += b->users;
	a->loo_users += b->loo_users;
	a->loo_hr += b->loo_hr;
	a->loo_ndcg += b->loo_ndcg;
	for (int q = 0; q < RANK_NK; q++) {
		a->recall[q] += b->recall[q];
		a->ndcg[q] += b->ndcg[q];
		a->hit[q] += b->hit[q];
		a->mrr[q] += b->mrr[q];
		a->pop[q] += b->pop[q];
		a->slots[q] += b->slots[q];
	}
	for (uint32_t i = 0; i < a->n_items; i++)
		a->seen[i] |= b->seen[i];
	return 0;
}

void rank_acc_result(const struct rank_acc *a, struct rank_result *r)
{
	double u = (double)a->users;

	memset(r, 0, sizeof(*r));
	r->users = a->users;
	r->loo_users = a->loo_users;
	r->loo_hr = a->loo_users ? a->loo_hr / (double)a->loo_users : NAN;
	r->loo_ndcg = a->loo_users ? a->loo_ndcg / (double)a->loo_users : NAN;
	for (int q = 0; q < RANK_NK; q++) {
		uint32_t covered = 0;
		for (uint32_t i = 0; i < a->n_items; i++)
			covered += (a->seen[i] >> q) & 1u;
		r->recall[q] = a->users ? a->recall[q] / u : NAN;
		r->ndcg[q] = a->users ? a->ndcg[q] / u : NAN;
		r->hit[q] = a->users ? a->hit[q] / u : NAN;
		r->mrr[q] = a->users ? a->mrr[q] / u : NAN;
		r->coverage[q] = a->users && a->n_items ? (double)covered / a->n_items : NAN;
		r->popularity[q] = a->weight && a->slots[q] ? a->pop[q] / (double)a->slots[q] : NAN;
	}
}

uint32_t rank_loo(float pos_score, const float *neg_scores, uint32_t n_neg)
{
	uint32_t r = 0;

	if (pos_score != pos_score)
		return n_neg;
	for (uint32_t i = 0; i < n_neg; i++)
		r += !(neg_scores[i] < pos_score); /* higher, tied or NaN */
	return r;
}

void rank_acc_add_loo(struct rank_acc *a, uint32_t rank)
{
	a->loo_users++;
	if (rank < 10) {
		a->loo_hr += 1;
		a->loo_ndcg += 1.0 / log2((double)rank + 2);
	}
}
