#include "seq.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int hist_init(struct hist *h, size_t n_users, uint32_t len_max)
{
	h->len_max = len_max ? len_max : 1;
	h->ring = malloc((n_users + 1) * h->len_max * sizeof(uint32_t));
	h->count = calloc(n_users + 1, sizeof(uint32_t));
	if (!h->ring || !h->count) {
		hist_release(h);
		return hr_error(HR_ENOMEM, "out of memory for histories of %zu users", n_users);
	}
	return 0;
}

void hist_release(struct hist *h)
{
	free(h->ring);
	free(h->count);
	h->ring = h->count = NULL;
}

uint32_t hist_get(const struct hist *h, uint32_t user, uint32_t *out)
{
	uint32_t c = h->count[user], L = h->len_max;
	const uint32_t *ring = h->ring + (size_t)user * L;

	if (c <= L) {
		memcpy(out, ring, c * sizeof(*out));
		return c;
	}
	/* Full ring: the oldest entry sits where the next push goes. */
	uint32_t start = c % L;
	memcpy(out, ring + start, (L - start) * sizeof(*out));
	memcpy(out + (L - start), ring, start * sizeof(*out));
	return L;
}

int neg_init(struct neg_sampler *s, const struct event *ev, size_t n, size_t n_users,
	     size_t n_items)
{
	size_t total = 0;

	memset(s, 0, sizeof(*s));
	s->n_items = n_items;
	s->set_off = calloc(n_users + 1, sizeof(uint32_t));
	s->set_mask = calloc(n_users + 1, sizeof(uint32_t));
	s->pool = malloc((n_items + 1) * sizeof(uint32_t));
	s->in_pool = calloc(n_items + 1, 1);
	s->mark = calloc(n_items + 1, sizeof(uint32_t));
	s->scratch = malloc((n_items + 1) * sizeof(uint32_t));
	if (!s->set_off || !s->set_mask || !s->pool || !s->in_pool || !s->mark || !s->scratch)
		goto oom;
	/* set_mask temporarily holds each user's event count. */
	for (size_t i = 0; i < n; i++)
		s->set_mask[ev[i].user]++;
	for (size_t u = 0; u < n_users; u++) {
		uint32_t cap = 4;
		while (cap < 2 * s->set_mask[u])
			cap *= 2;
		if (total + cap > UINT32_MAX)
			goto oom;
		s->set_off[u] = (uint32_t)total;
		s->set_mask[u] = cap - 1;
		total += cap;
	}
	s->slots = calloc(total ? total : 1, sizeof(uint32_t));
	if (!s->slots)
		goto oom;
	return 0;
oom:
	neg_release(s);
	return hr_error(HR_ENOMEM, "out of memory for the negative sampler");
}

void neg_release(struct neg_sampler *s)
{
	free(s->set_off);
	free(s->set_mask);
	free(s->slots);
	free(s->pool);
	free(s->in_pool);
	free(s->mark);
	free(s->scratch);
	memset(s, 0, sizeof(*s));
}

static inline uint32_t hash_item(uint32_t item)
{
	return (uint32_t)(((uint64_t)item * 0x9e3779b97f4a7c15ULL) >> 32);
}

void neg_mark_rated(struct neg_sampler *s, uint32_t user, uint32_t item)
{
	uint32_t *set = s->slots + s->set_off[user], mask = s->set_mask[user];

	for (uint32_t i = hash_item(item) & mask;; i = (i + 1) & mask) {
		if (set[i] == item + 1)
			return;
		if (set[i] == 0) {
			set[i] = item + 1;
			return;
		}
	}
}

int neg_rated(const struct neg_sampler *s, uint32_t user, uint32_t item)
{
	const uint32_t *set = s->slots + s->set_off[user];
	uint32_t mask = s->set_mask[user];

	for (uint32_t i = hash_item(item) & mask;; i = (i + 1) & mask) {
		if (set[i] == item + 1)
			return 1;
		if (set[i] == 0)
			return 0;
	}
}

void neg_pool_add(struct neg_sampler *s, uint32_t item)
{
	if (s->in_pool[item])
		return;
	s->in_pool[item] = 1;
	s->pool[s->pool_len++] = item;
}

/* Enumerates every candidate, then draws a partial Fisher-Yates shuffle. */
static uint32_t sample_enumerate(struct neg_sampler *s, struct rng *r, uint32_t user, uint32_t own,
				 uint32_t want, uint32_t *out)
{
	uint32_t m = 0;

	for (size_t i = 0; i < s->pool_len; i++) {
		uint32_t it = s->pool[i];
		if (it != own && !neg_rated(s, user, it))
			s->scratch[m++] = it;
	}
	if (want > m)
		want = m;
	for (uint32_t k = 0; k < want; k++) {
		uint32_t j = k + rng_below(r, m - k);
		uint32_t t = s->scratch[k];
		s->scratch[k] = s->scratch[j];
		s->scratch[j] = t;
		out[k] = s->scratch[k];
	}
	return want;
}

uint32_t neg_sample(struct neg_sampler *s, struct rng *r, uint32_t user, uint32_t own_item,
		    uint32_t want, uint32_t *out)
{
	uint32_t got = 0, tries = 0, limit = 8 * want + 32;

	if (want == 0 || s->pool_len == 0)
		return 0;
	if (++s->stamp == 0) { /* wrapped: forget every old mark */
		memset(s->mark, 0, (s->n_items + 1) * sizeof(*s->mark));
		s->stamp = 1;
	}
	while (got < want) {
		if (++tries > limit)
			return sample_enumerate(s, r, user, own_item, want, out);
		uint32_t it = s->pool[rng_below(r, (uint32_t)s->pool_len)];
		if (it == own_item || s->mark[it] == s->stamp || neg_rated(s, user, it))
			continue;
		s->mark[it] = s->stamp;
		out[got++] = it;
	}
	return got;
}
