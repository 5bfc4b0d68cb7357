/* rank.c - top-K selection and ranking metrics (rank.h). */
#include "rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "simd.h"

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

static uint32_t topk_heap(const float *score, uint32_t n, const uint32_t *skip, uint32_t n_skip,
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

/*
 * An item as one integer that orders as rank_topk does: higher for a
 * higher score, then for a lower index.  The score's bits are mapped so
 * that unsigned order is float order (-0 taken as +0: equal scores tie);
 * the index is complemented below them.  NaN never gets here.
 */
static inline uint64_t topk_key(float s, uint32_t j)
{
	uint32_t u;

	if (s == 0)
		s = 0;
	memcpy(&u, &s, sizeof(u));
	u = u & 0x80000000u ? ~u : u | 0x80000000u;
	return (uint64_t)u << 32 | (UINT32_MAX - j);
}

/* Moves the k largest of key[0 .. n) (n > k) to the front, in no order (quickselect). */
static void keys_select(uint64_t *key, uint32_t n, uint32_t k)
{
	uint32_t lo = 0, hi = n - 1;

	while (lo < hi) {
		uint64_t a = key[lo], b = key[lo + (hi - lo) / 2], c = key[hi];
		uint64_t p = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
		uint32_t i = lo, j = hi;
		while (i <= j) { /* Hoare, descending: [lo, j] >= p >= [i, hi] */
			while (key[i] > p)
				i++;
			while (key[j] < p)
				j--;
			if (i <= j) {
				uint64_t t = key[i];
				key[i++] = key[j];
				key[j] = t;
				if (j-- == 0)
					break;
			}
		}
		/* the first k are [0, k): done once the split falls at k */
		if (k - 1 <= j)
			hi = j;
		else if (k - 1 >= i)
			lo = i;
		else
			return;
	}
}

/* Sorts key[0 .. n) descending (bottom-up merges, branch-free steps), tmp of n. */
static void keys_sort(uint64_t *key, uint64_t *tmp, uint32_t n)
{
	uint64_t *a = key, *b = tmp;

	for (uint32_t w = 1; w < n; w *= 2) {
		for (uint32_t lo = 0; lo < n; lo += 2 * w) {
			uint32_t mid = lo + w < n ? lo + w : n,
				 hi = lo + 2 * w < n ? lo + 2 * w : n;
			uint32_t i = lo, j = mid, o = lo;
			while (i < mid && j < hi) {
				uint64_t x = a[i], y = a[j];
				int take = x >= y;
				b[o++] = take ? x : y;
				i += take;
				j += !take;
			}
			while (i < mid)
				b[o++] = a[i++];
			while (j < hi)
				b[o++] = a[j++];
		}
		uint64_t *t = a;
		a = b;
		b = t;
	}
	if (a != key)
		memcpy(key, a, n * sizeof(*key));
}

/* 16 floats (one AVX-512 register; two AVX2, four SSE registers in the other clones). */
typedef float topk_v16 __attribute__((vector_size(64)));
typedef int32_t topk_m16 __attribute__((vector_size(64)));

/* (Helpers of vector type would change the ABI between clones: macros.) */
#define V16_LOAD(v, p) memcpy(&(v), (p), sizeof(topk_v16))
/* lane-wise m = x where x > m (a NaN lane of x keeps m) */
#define V16_MAX_INTO(m, x)                                                      \
	do {                                                                    \
		topk_m16 g_ = (x) > (m);                                        \
		(m) = (topk_v16)((g_ & (topk_m16)(x)) | (~g_ & (topk_m16)(m))); \
	} while (0)

/* The mask's lanes as bits (lane j: bit j). */
static inline uint32_t m16_bits(const topk_m16 *g)
{
	static const topk_m16 bit = {1,   2,   4,    8,    16,   32,   64,    128,
				     256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
	topk_m16 b = *g & bit;
	uint64_t w[8];

	memcpy(w, &b, sizeof(w));
	w[0] |= w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
	return (uint32_t)(w[0] | w[0] >> 32);
}

/* The r-th largest (0-based) of v[0 .. n) (n > r), v reordered: quickselect. */
static float nth_largest(float *v, uint32_t n, uint32_t r)
{
	uint32_t lo = 0, hi = n - 1;

	while (lo < hi) {
		float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
		float p = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
		uint32_t i = lo, j = hi;
		while (i <= j) { /* Hoare: [lo, j] >= p >= [i, hi] */
			while (v[i] > p)
				i++;
			while (v[j] < p)
				j--;
			if (i <= j) {
				float t = v[i];
				v[i++] = v[j];
				v[j] = t;
				if (j-- == 0)
					break;
			}
		}
		if (r <= j)
			hi = j;
		else if (r >= i)
			lo = i;
		else
			return p;
	}
	return v[r];
}

#define TOPK_BUF (4 * RANK_KMAX)

/*
 * A threshold first, then the few items that reach it.  The catalogue is
 * cut into ~2.5 k groups (lane j of each run of R consecutive 16-float
 * vectors), and one vectorised pass takes each group's maximum over the
 * items not skipped; the k-th largest of those maxima, t, is at most the
 * k-th best score (k groups hold an item at least t).  A second vectorised
 * pass collects the items at or above t (random scores: ~1.2 k), and the
 * k best of them are selected and ordered exactly (score, then index: one
 * integer key each, so that the selection and the merge sort compare
 * integers).
 * Where the groups are too few or the candidates too many (many equal
 * scores), the heap does it.  No allocation; ~n / 16 vector operations
 * plus O(k log k).
 */
HR_MULTIVERSION
static uint32_t topk_fast(const float *score, uint32_t n, const uint32_t *skip, uint32_t n_skip,
			  uint32_t k, uint32_t *idx, float *heap_s, uint32_t *heap_i)
{
	float gmax[TOPK_BUF + 32];
	uint64_t key[TOPK_BUF], tmp[TOPK_BUF];
	uint32_t nb = 0, next = 0;
	uint32_t nvec = n / 16, R = nvec / (5 * k / 2 / 16 + 1), G;

	if (k == 0)
		return 0;
	if (R == 0)
		R = 1;
	G = 16 * ((nvec + R - 1) / R);
	if (k > RANK_KMAX || nvec == 0 || G < 2 * k || G > TOPK_BUF + 32)
		return topk_heap(score, n, skip, n_skip, k, idx, heap_s, heap_i);
	/* pass 1: the groups' maxima over the items not skipped (the tail past nvec aside) */
	const topk_v16 ninf = (topk_v16){0} - INFINITY;
	for (uint32_t c = 0, g = 0; c < nvec; c += R, g += 16) {
		topk_v16 m = ninf;
		uint32_t end = c + R < nvec ? c + R : nvec;
		for (uint32_t v = c; v < end; v++) {
			topk_v16 x;
			V16_LOAD(x, score + 16 * (size_t)v);
			while (next < n_skip && skip[next] < 16 * v)
				next++;
			if (next < n_skip && skip[next] < 16 * v + 16) {
				float lane[16];
				memcpy(lane, &x, sizeof(lane));
				for (; next < n_skip && skip[next] < 16 * v + 16; next++)
					lane[skip[next] - 16 * v] = -INFINITY;
				memcpy(&x, lane, sizeof(lane));
			}
			V16_MAX_INTO(m, x);
		}
		memcpy(gmax + g, &m, sizeof(m));
	}
	float t = nth_largest(gmax, G, k - 1);
	if (t == -INFINITY) /* fewer than k groups with an item: -inf scores or skips */
		return topk_heap(score, n, skip, n_skip, k, idx, heap_s, heap_i);
	/* pass 2: the items at or above t, not skipped, in index order */
	const topk_v16 tv = (topk_v16){0} + t;
	next = 0;
	for (uint32_t v = 0; v <= nvec; v++) {
		uint32_t lo = 16 * v, bits;
		if (v < nvec) {
			topk_v16 x;
			V16_LOAD(x, score + lo);
			topk_m16 ge = x >= tv;
			bits = m16_bits(&ge);
		} else { /* the tail */
			bits = 0;
			for (uint32_t j = lo; j < n; j++)
				bits |= (uint32_t)(score[j] >= t) << (j - lo);
		}
		for (; bits; bits &= bits - 1) {
			uint32_t j = lo + (uint32_t)__builtin_ctz(bits);
			while (next < n_skip && skip[next] < j)
				next++;
			if (next < n_skip && skip[next] == j)
				continue;
			if (nb == TOPK_BUF) /* too many equal to t */
				return topk_heap(score, n, skip, n_skip, k, idx, heap_s, heap_i);
			key[nb++] = topk_key(score[j], j);
		}
	}
	if (nb > k) {
		keys_select(key, nb, k);
		nb = k;
	}
	keys_sort(key, tmp, nb);
	for (uint32_t r = 0; r < nb; r++)
		idx[r] = UINT32_MAX - (uint32_t)key[r];
	return nb;
}

/* (The clones are internal: clang wants target_clones on every declaration of an exported function.) */
uint32_t rank_topk(const float *score, uint32_t n, const uint32_t *skip, uint32_t n_skip,
		   uint32_t k, uint32_t *idx, float *heap_s, uint32_t *heap_i)
{
	return topk_fast(score, n, skip, n_skip, k, idx, heap_s, heap_i);
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
