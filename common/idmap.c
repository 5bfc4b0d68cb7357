#include "idmap.h"

#include <stdlib.h>

#include "err.h"

#define IDMAP_EMPTY UINT64_MAX /* value IDMAP_NONE is never stored */

static size_t slot_of(uint32_t key, size_t cap)
{
	/* Fibonacci hashing spreads sequential MovieLens ids. */
	return (size_t)(((uint64_t)key * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static int alloc_slots(struct idmap *m, size_t cap)
{
	m->slots = malloc(cap * sizeof(*m->slots));
	if (!m->slots)
		return hr_error(HR_ENOMEM, "out of memory for an id map of %zu slots", cap);
	for (size_t i = 0; i < cap; i++)
		m->slots[i] = IDMAP_EMPTY;
	m->cap = cap;
	m->len = 0;
	return 0;
}

int idmap_init(struct idmap *m, size_t hint)
{
	size_t cap = 16;

	while (cap < 2 * hint)
		cap *= 2;
	return alloc_slots(m, cap);
}

void idmap_release(struct idmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

uint32_t idmap_get(const struct idmap *m, uint32_t key)
{
	size_t i = slot_of(key, m->cap);

	for (;;) {
		uint64_t s = m->slots[i];
		if (s == IDMAP_EMPTY)
			return IDMAP_NONE;
		if ((uint32_t)(s >> 32) == key)
			return (uint32_t)s;
		i = (i + 1) & (m->cap - 1);
	}
}

static int grow(struct idmap *m)
{
	struct idmap bigger;
	int rc = alloc_slots(&bigger, m->cap * 2);

	if (rc)
		return rc;
	for (size_t i = 0; i < m->cap; i++) {
		uint64_t s = m->slots[i];
		if (s == IDMAP_EMPTY)
			continue;
		size_t j = slot_of((uint32_t)(s >> 32), bigger.cap);
		while (bigger.slots[j] != IDMAP_EMPTY)
			j = (j + 1) & (bigger.cap - 1);
		bigger.slots[j] = s;
		bigger.len++;
	}
	free(m->slots);
	*m = bigger;
	return 0;
}

int idmap_put(struct idmap *m, uint32_t key, uint32_t value, uint32_t *existing)
{
	size_t i;

	HR_ASSERT(value != IDMAP_NONE);
	if (2 * (m->len + 1) > m->cap) {
		int rc = grow(m);
		if (rc)
			return rc;
	}
	i = slot_of(key, m->cap);
	for (;;) {
		uint64_t s = m->slots[i];
		if (s == IDMAP_EMPTY) {
			m->slots[i] = ((uint64_t)key << 32) | value;
			m->len++;
			if (existing)
				*existing = value;
			return 1;
		}
		if ((uint32_t)(s >> 32) == key) {
			if (existing)
				*existing = (uint32_t)s;
			return 0;
		}
		i = (i + 1) & (m->cap - 1);
	}
}
