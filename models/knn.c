/* knn.c - item-kNN with cosine similarity over train positives (baselines.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "common/err.h"
#include "common/rank.h"

/* Item i's positives: how many users rated it positively. */
static uint32_t positives_of(const struct interactions *x, uint32_t i)
{
	uint32_t n = 0;

	for (uint64_t e = x->item_off[i]; e < x->item_off[i + 1]; e++)
		n += x->item_label[e] == 1;
	return n;
}

int knn_fit(struct knn *m, const struct interactions *x, uint32_t k)
{
	uint32_t N = x->n_items, *cnt = NULL, *touched = NULL, *heap_i = NULL;
	float *co = NULL, *heap_s = NULL, maxc = 1;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if (k == 0)
		return hr_error(HR_EINVAL, "item-kNN: k must be at least 1");
	m->n_items = N;
	m->k = k;
	m->nbr = calloc((size_t)N * k + 1, sizeof(uint32_t));
	m->sim = calloc((size_t)N * k + 1, sizeof(float));
	m->floor = malloc(((size_t)N + 1) * sizeof(float));
	cnt = malloc(((size_t)N + 1) * sizeof(uint32_t));
	touched = malloc(((size_t)N + 1) * sizeof(uint32_t));
	co = calloc((size_t)N + 1, sizeof(float));
	heap_s = malloc(k * sizeof(float));
	heap_i = malloc(k * sizeof(uint32_t));
	if (!m->nbr || !m->sim || !m->floor || !cnt || !touched || !co || !heap_s || !heap_i) {
		rc = hr_error(HR_ENOMEM, "out of memory for item-kNN over %u items", N);
		goto out;
	}
	for (uint32_t i = 0; i < N; i++) {
		cnt[i] = positives_of(x, i);
		if (cnt[i] > maxc)
			maxc = (float)cnt[i];
	}
	/* unreached items: in (-1, -0.5], more train positives higher */
	for (uint32_t i = 0; i < N; i++)
		m->floor[i] = -1.0f + 0.5f * (float)cnt[i] / maxc;
	for (uint32_t i = 1; i < N; i++) {
		uint32_t nt = 0;
		if (cnt[i] == 0)
			continue;
		/* co[j] = users with positives of both i and j */
		for (uint64_t e = x->item_off[i]; e < x->item_off[i + 1]; e++) {
			if (x->item_label[e] != 1)
				continue;
			uint32_t u = x->item_user[e];
			for (uint64_t f = x->user_off[u]; f < x->user_off[u + 1]; f++) {
				uint32_t j = x->user_item[f];
				if (x->user_label[f] != 1 || j == i)
					continue;
				if (co[j] == 0)
					touched[nt++] = j;
				co[j] += 1;
			}
		}
		for (uint32_t t = 0; t < nt; t++) {
			uint32_t j = touched[t];
			co[j] = co[j] / sqrtf((float)cnt[i] * (float)cnt[j]);
		}
		/* the k largest (ties to the lower id), the item itself and the padding left out */
		uint32_t *nb = m->nbr + (size_t)i * k, skip[2] = {0, i};
		float *sv = m->sim + (size_t)i * k;
		uint32_t got = nt ? rank_topk(co, N, skip, 2, k < nt ? k : nt, nb, heap_s, heap_i) :
				    0;
		for (uint32_t t = 0; t < got; t++)
			sv[t] = co[nb[t]];
		for (uint32_t t = 0; t < nt; t++)
			co[touched[t]] = 0;
	}
out:
	free(cnt);
	free(touched);
	free(co);
	free(heap_s);
	free(heap_i);
	if (rc)
		knn_release(m);
	return rc;
}

void knn_score(const struct knn *m, const uint32_t *items, uint32_t n, float *score)
{
	memset(score, 0, m->n_items * sizeof(float));
	for (uint32_t p = 0; p < n; p++) {
		uint32_t i = items[p];
		if (i == 0 || i >= m->n_items)
			continue;
		const uint32_t *nb = m->nbr + (size_t)i * m->k;
		const float *sv = m->sim + (size_t)i * m->k;
		for (uint32_t t = 0; t < m->k && sv[t] > 0; t++)
			score[nb[t]] += sv[t];
	}
	for (uint32_t j = 0; j < m->n_items; j++)
		if (score[j] == 0)
			score[j] = m->floor[j];
}

void knn_release(struct knn *m)
{
	free(m->nbr);
	free(m->sim);
	free(m->floor);
	memset(m, 0, sizeof(*m));
}
