#include "interact.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/codec.h"

/* Rows per batch_fill() while loading: the touched columns stay in L2. */
#define LOAD_CHUNK 1024

/* Carves every array out of one zeroed block. */
static int interactions_alloc(struct interactions *x, uint64_t n, uint32_t n_users,
			      uint32_t n_items)
{
	size_t U = (size_t)n_users + 1, I = (size_t)n_items + 1, N = n;
	size_t bytes = 8 * (U + I) + 4 * 7 * N + 3 * N;
	char *p;

	memset(x, 0, sizeof(*x));
	x->mem = calloc(1, bytes ? bytes : 1);
	if (!x->mem)
		return hr_error(HR_ENOMEM, "out of memory for %llu interactions",
				(unsigned long long)n);
	x->n = n;
	x->n_users = n_users;
	x->n_items = n_items;
	p = x->mem;
	/* Widest first: every array stays aligned to its type. */
#define TAKE(field, count) (x->field = (void *)p, p += (count) * sizeof(*x->field))
	TAKE(user_off, U);
	TAKE(item_off, I);
	TAKE(user, N);
	TAKE(item, N);
	TAKE(rating, N);
	TAKE(user_item, N);
	TAKE(user_rating, N);
	TAKE(item_user, N);
	TAKE(item_rating, N);
	TAKE(label, N);
	TAKE(user_label, N);
	TAKE(item_label, N);
#undef TAKE
	return 0;
}

/* off[0..rows] from the row of each of the n entries: counts, then prefix sums. */
static void count_rows(uint64_t *off, uint32_t rows, const uint32_t *row, uint64_t n)
{
	for (uint64_t e = 0; e < n; e++)
		off[row[e] + 1]++;
	for (uint32_t r = 0; r < rows; r++)
		off[r + 1] += off[r];
}

/*
 * The two views by three stable scatters through cur (one cursor per row
 * of the larger view): the entries by user in input order; those by item,
 * walking the users in order (so each item's users ascend); and the users
 * again, walking the items in order (so each user's items ascend).  Ties
 * keep input order throughout.
 */
static void build_views(struct interactions *x, uint64_t *cur)
{
	const uint64_t n = x->n;

	count_rows(x->user_off, x->n_users, x->user, n);
	count_rows(x->item_off, x->n_items, x->item, n);
	memcpy(cur, x->user_off, x->n_users * sizeof(*cur));
	for (uint64_t e = 0; e < n; e++) {
		uint64_t p = cur[x->user[e]]++;
		x->user_item[p] = x->item[e];
		x->user_rating[p] = x->rating[e];
		x->user_label[p] = x->label[e];
	}
	memcpy(cur, x->item_off, x->n_items * sizeof(*cur));
	for (uint32_t u = 0; u < x->n_users; u++)
		for (uint64_t q = x->user_off[u]; q < x->user_off[u + 1]; q++) {
			uint64_t p = cur[x->user_item[q]]++;
			x->item_user[p] = u;
			x->item_rating[p] = x->user_rating[q];
			x->item_label[p] = x->user_label[q];
		}
	memcpy(cur, x->user_off, x->n_users * sizeof(*cur));
	for (uint32_t i = 0; i < x->n_items; i++)
		for (uint64_t q = x->item_off[i]; q < x->item_off[i + 1]; q++) {
			uint64_t p = cur[x->item_user[q]]++;
			x->user_item[p] = i;
			x->user_rating[p] = x->item_rating[q];
			x->user_label[p] = x->item_label[q];
		}
}

static int check_entries(const uint32_t *user, const uint32_t *item, const uint8_t *label,
			 uint64_t n, uint32_t n_users, uint32_t n_items)
{
	if (n > UINT32_MAX)
		return hr_error(HR_EINVAL, "%llu interactions, more than %u", (unsigned long long)n,
				UINT32_MAX);
	for (uint64_t e = 0; e < n; e++) {
		if (user[e] >= n_users)
			return hr_error(HR_EINVAL, "entry %llu: user %u, the vocabulary has %u ids",
					(unsigned long long)e, user[e], n_users);
		if (item[e] >= n_items)
			return hr_error(HR_EINVAL, "entry %llu: item %u, the vocabulary has %u ids",
					(unsigned long long)e, item[e], n_items);
		if (label && label[e] > 1)
			return hr_error(HR_EINVAL, "entry %llu: label %u, not 0 or 1",
					(unsigned long long)e, label[e]);
	}
	return 0;
}

int interactions_build(struct interactions *x, const uint32_t *user, const uint32_t *item,
		       const float *rating, const uint8_t *label, uint64_t n, uint32_t n_users,
		       uint32_t n_items)
{
	uint32_t rows = n_users > n_items ? n_users : n_items;
	uint64_t *cur;
	int rc;

	memset(x, 0, sizeof(*x));
	rc = check_entries(user, item, label, n, n_users, n_items);
	if (rc)
		return rc;
	cur = malloc((rows ? rows : 1) * sizeof(*cur));
	if (!cur)
		return hr_error(HR_ENOMEM, "out of memory for %u row cursors", rows);
	rc = interactions_alloc(x, n, n_users, n_items);
	if (rc)
		goto fail;
	if (n) {
		memcpy(x->user, user, n * sizeof(*user));
		memcpy(x->item, item, n * sizeof(*item));
		if (rating)
			memcpy(x->rating, rating, n * sizeof(*rating));
		if (label)
			memcpy(x->label, label, n * sizeof(*label));
	}
	build_views(x, cur);
fail:
	free(cur);
	return rc;
}

void interactions_release(struct interactions *x)
{
	free(x->mem);
	memset(x, 0, sizeof(*x));
}

/* The entries of src in position order, kept by flags, into arrays of src->n. */
struct entries {
	uint32_t *user, *item;
	float *rating;
	uint8_t *label;
	uint64_t n;
};

static int read_entries(struct entries *en, struct batch *b, const struct batch_source *src,
			unsigned flags)
{
	const int positives = !!(flags & INTERACT_POSITIVES);

	for (uint64_t first = 0; first < src->n; first += b->n) {
		uint64_t left = src->n - first;
		int rc = batch_fill(b, src, first, left < b->cap ? (uint32_t)left : b->cap);
		if (rc)
			return rc;
		for (uint32_t r = 0; r < b->n; r++) {
			uint64_t k = en->n;
			if (positives && b->label[r] != 1.0f)
				continue;
			en->user[k] = b->user[r];
			en->item[k] = b->item[r];
			en->rating[k] = b->rating[r];
			en->label[k] = (uint8_t)(b->label[r] == 1.0f);
			en->n = k + 1;
		}
	}
	return 0;
}

int interactions_load(struct interactions *x, const struct batch_source *src, unsigned flags)
{
	size_t cap = src->n ? (size_t)src->n : 1;
	struct entries en = {0};
	struct batch b;
	int rc;

	memset(x, 0, sizeof(*x));
	if (src->n > UINT32_MAX)
		return hr_error(HR_EINVAL, "store '%s': %s has %llu records, more than %u",
				src->store, src->db, (unsigned long long)src->n, UINT32_MAX);
	rc = batch_alloc(&b, LOAD_CHUNK, 1, 0);
	if (rc)
		return hr_error_prefix(rc, "store '%s': %s", src->store, src->db);
	batch_set_decode(&b, REC_SKIP_SEQUENCES | REC_SKIP_FEATURES);
	en.user = malloc(cap * sizeof(*en.user));
	en.item = malloc(cap * sizeof(*en.item));
	en.rating = malloc(cap * sizeof(*en.rating));
	en.label = malloc(cap * sizeof(*en.label));
	if (!en.user || !en.item || !en.rating || !en.label) {
		rc = hr_error(HR_ENOMEM, "store '%s': out of memory for the %llu records of %s",
			      src->store, (unsigned long long)src->n, src->db);
		goto fail;
	}
	rc = read_entries(&en, &b, src, flags);
	if (rc)
		goto fail; /* batch_fill's message names the store and record */
	rc = interactions_build(x, en.user, en.item, en.rating, en.label, en.n,
				src->ix->vocab[SF_USER], src->ix->vocab[SF_ITEM]);
	if (rc)
		rc = hr_error_prefix(rc, "store '%s': %s", src->store, src->db);
fail:
	free(en.label);
	free(en.rating);
	free(en.item);
	free(en.user);
	batch_release(&b);
	return rc;
}
