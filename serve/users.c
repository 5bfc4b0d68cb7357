/* users.c - each user's latest record and rated items (users.h). */
#include "users.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "models/batch.h"
#include "store/codec.h"

/* One record: whose, of what, when, where. */
struct entry {
	uint32_t raw, item, ts;
	uint8_t split; /* 0 train, 1 valid, 2 test */
	uint64_t key;
};

/* By user, then time order (ts, split, key): a user's latest record is last. */
static int by_user_time(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->raw != y->raw)
		return x->raw < y->raw ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->split != y->split)
		return x->split < y->split ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Appends split db's records (scalar fields) to ent at *n; counts train items. */
static int scan_split(struct store *s, const struct store_index *ix, int split, struct batch *b,
		      struct entry *ent, uint64_t *n, float *counts)
{
	static const char *const names[3] = {"train", "valid", "test"};
	const struct batch_source src = {
		.ix = ix, .n = ix->n, .store = store_path(s), .db = names[split]};
	int rc = 0;

	for (uint64_t first = 0; !rc && first < ix->n; first += b->n) {
		uint64_t left = ix->n - first;
		rc = batch_fill(b, &src, first, left < b->cap ? (uint32_t)left : b->cap);
		for (uint32_t i = 0; !rc && i < b->n; i++) {
			ent[(*n)++] = (struct entry){b->user_raw[i], b->item[i], b->ts[i],
						     (uint8_t)split, first + i};
			if (split == 0)
				counts[b->item[i]] += 1;
		}
	}
	return rc;
}

/* Groups the sorted entries into users: latest records copied, rated items. */
static int group(struct users *u, const struct entry *ent, uint64_t n,
		 const struct store_index ix[3])
{
	uint64_t bytes = 0, nr = 0;
	uint32_t nu = 0;
	int rc;

	for (uint64_t g = 0; g < n; g++)
		if (g + 1 == n || ent[g + 1].raw != ent[g].raw) {
			bytes += ix[ent[g].split].rec[ent[g].key].len;
			nu++;
		}
	u->rec_off = malloc(((size_t)nu + 1) * sizeof(uint64_t));
	u->recs = malloc(bytes ? bytes : 1);
	u->rated_off = malloc(((size_t)nu + 1) * sizeof(uint64_t));
	u->rated = malloc((n ? n : 1) * sizeof(uint32_t));
	rc = idmap_init(&u->by_raw, nu);
	if (!rc && (!u->rec_off || !u->recs || !u->rated_off || !u->rated))
		rc = hr_error(HR_ENOMEM, "out of memory for %u users", nu);
	bytes = 0;
	for (uint64_t g = 0; !rc && g < n;) {
		uint64_t end = g, start = nr;
		while (end < n && ent[end].raw == ent[g].raw) {
			if (ent[end].item > 0)
				u->rated[nr++] = ent[end].item;
			end++;
		}
		qsort(u->rated + start, nr - start, sizeof(uint32_t), by_u32);
		uint64_t k = start;
		for (uint64_t j = start; j < nr; j++) /* distinct */
			if (k == start || u->rated[j] != u->rated[k - 1])
				u->rated[k++] = u->rated[j];
		nr = k;
		const struct entry *last = &ent[end - 1];
		const struct store_ref *ref = &ix[last->split].rec[last->key];
		u->rec_off[u->n] = bytes;
		memcpy(u->recs + bytes, ref->data, ref->len);
		bytes += ref->len;
		u->rated_off[u->n] = start;
		if (idmap_put(&u->by_raw, ent[g].raw, u->n, NULL) < 0)
			rc = hr_error(HR_ENOMEM, "out of memory for %u users", nu);
		u->n++;
		g = end;
	}
	if (!rc) {
		u->rec_off[u->n] = bytes;
		u->rated_off[u->n] = nr;
	}
	return rc;
}

int users_load(struct users *u, struct store *s, const struct store_info *info, float *counts)
{
	static const enum store_db dbs[3] = {STORE_TRAIN, STORE_VALID, STORE_TEST};
	struct store_index ix[3] = {{0}};
	struct store_reader *r = NULL;
	struct batch b = {0};
	struct entry *ent = NULL;
	uint64_t total = 0, n = 0;
	int rc;

	memset(u, 0, sizeof(*u));
	memset(counts, 0, info->vocab[SF_ITEM] * sizeof(float));
	rc = store_reader_begin(s, &r);
	for (int i = 0; !rc && i < 3; i++) {
		rc = store_index_build(r, dbs[i], &ix[i]);
		total += ix[i].n;
	}
	if (!rc && total == 0)
		rc = hr_error(HR_EINVAL, "store '%s' has no records", store_path(s));
	if (!rc)
		rc = batch_alloc(&b, 4096, info->hist_len, info->n_dense);
	if (!rc) {
		batch_set_decode(&b, REC_SKIP_SEQUENCES | REC_SKIP_FEATURES);
		ent = malloc(total * sizeof(*ent));
		if (!ent)
			rc = hr_error(HR_ENOMEM, "out of memory for the records of '%s'",
				      store_path(s));
	}
	for (int i = 0; !rc && i < 3; i++)
		rc = scan_split(s, &ix[i], i, &b, ent, &n, counts);
	if (!rc) {
		qsort(ent, n, sizeof(*ent), by_user_time);
		rc = group(u, ent, n, ix);
	}
	free(ent);
	batch_release(&b);
	for (int i = 0; i < 3; i++)
		store_index_release(&ix[i]);
	store_reader_end(r);
	if (rc)
		users_release(u);
	return rc;
}

void users_release(struct users *u)
{
	idmap_release(&u->by_raw);
	free(u->rec_off);
	free(u->recs);
	free(u->rated_off);
	free(u->rated);
	memset(u, 0, sizeof(*u));
}

int64_t users_find(const struct users *u, uint32_t raw)
{
	uint32_t i = u->n ? idmap_get(&u->by_raw, raw) : IDMAP_NONE;

	return i == IDMAP_NONE ? -1 : (int64_t)i;
}
