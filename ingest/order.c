#include "order.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

enum sort_key { KEY_ITEM, KEY_USER, KEY_TS };

static uint32_t key_of(const struct event *e, enum sort_key k, const struct dataset *ds)
{
	switch (k) {
	case KEY_ITEM: return ds->items[e->item].raw_id;
	case KEY_USER: return ds->users[e->user].raw_id;
	case KEY_TS: break;
	}
	return e->ts;
}

/* One stable counting-sort pass on bits [shift, shift+16) of key k. */
static void pass(struct event *dst, const struct event *src, size_t n, enum sort_key k, int shift,
		 const struct dataset *ds, size_t *count)
{
	memset(count, 0, 65536 * sizeof(*count));
	for (size_t i = 0; i < n; i++)
		count[(key_of(&src[i], k, ds) >> shift) & 0xffff]++;
	size_t sum = 0;
	for (size_t d = 0; d < 65536; d++) {
		size_t c = count[d];
		count[d] = sum;
		sum += c;
	}
	for (size_t i = 0; i < n; i++)
		dst[count[(key_of(&src[i], k, ds) >> shift) & 0xffff]++] = src[i];
}

/* 1 if every event has the same digit, so the pass would not move anything. */
static int digit_constant(const struct event *ev, size_t n, enum sort_key k, int shift,
			  const struct dataset *ds)
{
	uint32_t d0 = (key_of(&ev[0], k, ds) >> shift) & 0xffff;

	for (size_t i = 1; i < n; i++)
		if (((key_of(&ev[i], k, ds) >> shift) & 0xffff) != d0)
			return 0;
	return 1;
}

int events_sort(struct event *ev, size_t n, const struct dataset *ds)
{
	static const enum sort_key keys[3] = {KEY_ITEM, KEY_USER, KEY_TS};
	struct event *tmp, *src = ev, *dst;
	size_t *count;

	if (n < 2)
		return 0;
	tmp = malloc(n * sizeof(*tmp));
	count = malloc(65536 * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return hr_error(HR_ENOMEM, "out of memory sorting %zu events", n);
	}
	dst = tmp;
	/* Least significant key first: item, then user, then timestamp. */
	for (int k = 0; k < 3; k++) {
		for (int shift = 0; shift < 32; shift += 16) {
			if (digit_constant(src, n, keys[k], shift, ds))
				continue;
			pass(dst, src, n, keys[k], shift, ds, count);
			struct event *t = src;
			src = dst;
			dst = t;
		}
	}
	if (src != ev)
		memcpy(ev, src, n * sizeof(*ev));
	free(tmp);
	free(count);
	return 0;
}
