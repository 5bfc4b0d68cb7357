#include "batch.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/codec.h"
#include "store/items.h"

int batch_alloc(struct batch *b, uint32_t cap, uint32_t hist_cap, uint32_t n_dense)
{
	size_t B = cap, L = hist_cap, D = n_dense;
	size_t words = 6 * B + B * BATCH_GENRES + B + B * D + 2 * (B * L + B) + 2 * B + 3 * B;
	uint32_t *p;

	memset(b, 0, sizeof(*b));
	if (cap == 0 || hist_cap == 0)
		return hr_error(HR_EINVAL, "batch of %u rows, history %u", cap, hist_cap);
	b->mem = calloc(words, sizeof(uint32_t));
	if (!b->mem)
		return hr_error(HR_ENOMEM, "out of memory for a batch of %u rows", cap);
	b->cap = cap;
	b->hist_cap = hist_cap;
	b->n_dense = n_dense;
	p = b->mem;
#define TAKE(field, count) (b->field = (void *)p, p += (count))
	TAKE(user, B);
	TAKE(item, B);
	TAKE(gender, B);
	TAKE(age, B);
	TAKE(occupation, B);
	TAKE(zip, B);
	TAKE(genres, B * BATCH_GENRES);
	TAKE(n_genres, B);
	TAKE(dense, B * D);
	TAKE(hist, B * L);
	TAKE(n_hist, B);
	TAKE(neg, B * L);
	TAKE(n_neg, B);
	TAKE(label, B);
	TAKE(rating, B);
	TAKE(user_raw, B);
	TAKE(item_raw, B);
	TAKE(ts, B);
#undef TAKE
	for (int f = 0; f < SF_NFIELDS; f++)
		b->vocab[f] = UINT32_MAX;
	return 0;
}

void batch_release(struct batch *b)
{
	free(b->mem);
	memset(b, 0, sizeof(*b));
}

void batch_set_decode(struct batch *b, unsigned flags)
{
	size_t B = b->cap, L = b->hist_cap;

	b->decode = flags;
	if (flags & (REC_SKIP_SEQUENCES | REC_SKIP_FEATURES)) {
		memset(b->hist, 0, B * L * sizeof(*b->hist));
		memset(b->neg, 0, B * L * sizeof(*b->neg));
		memset(b->n_hist, 0, B * sizeof(*b->n_hist));
		memset(b->n_neg, 0, B * sizeof(*b->n_neg));
	}
	if (flags & REC_SKIP_FEATURES) {
		memset(b->genres, 0, B * BATCH_GENRES * sizeof(*b->genres));
		memset(b->n_genres, 0, B * sizeof(*b->n_genres));
		memset(b->dense, 0, B * b->n_dense * sizeof(*b->dense));
	}
}

void batch_set_vocab(struct batch *b, const uint32_t vocab[SF_NFIELDS])
{
	memcpy(b->vocab, vocab, sizeof(b->vocab));
}

static const char *const vocab_names[SF_NFIELDS] = {
	"user", "item", "gender", "age", "occupation", "zip", "genre",
};

/* How many of ids[0..n) are >= limit, without a branch per id. */
static inline uint32_t count_over(const uint32_t *ids, uint32_t n, uint32_t limit)
{
	uint32_t over = 0;

	for (uint32_t i = 0; i < n; i++)
		over += ids[i] >= limit;
	return over;
}

static int bad_element(const char *field, const uint32_t *ids, uint32_t n, enum store_field f,
		       uint32_t limit)
{
	uint32_t i = 0;

	while (i < n && ids[i] < limit)
		i++;
	HR_ASSERT(i < n);
	return hr_error(HR_EFORMAT, "field '%s' element %u is %u, the '%s' vocabulary has %u ids",
			field, i, ids[i], vocab_names[f], limit);
}

/*
 * The checks batch_set_row() promises, on r as decoded with b->decode: one
 * compare per value on the common path, the search for the culprit only
 * when something is wrong.
 */
static int check_row(const struct batch *b, const struct record *r)
{
	const uint32_t *V = b->vocab;
	const uint32_t ids[6] = {r->user, r->item, r->gender, r->age, r->occupation, r->zip};
	uint32_t over = (r->label > 1) + !isfinite(r->rating);

	for (int f = 0; f < 6; f++)
		over += ids[f] >= V[f];
	if (!(b->decode & REC_SKIP_FEATURES)) {
		over += count_over(r->genres, r->n_genres, V[SF_GENRE]);
		for (uint32_t i = 0; i < r->n_dense; i++)
			over += !isfinite(r->dense[i]);
	}
	if (!(b->decode & (REC_SKIP_SEQUENCES | REC_SKIP_FEATURES))) {
		over += count_over(r->hist, r->n_hist, V[SF_ITEM]);
		over += count_over(r->neg, r->n_neg, V[SF_ITEM]);
	}
	if (!over)
		return 0;
	if (r->label > 1)
		return hr_error(HR_EFORMAT, "field 'label' is %u, not 0 or 1", r->label);
	if (!isfinite(r->rating))
		return hr_error(HR_EFORMAT, "field 'rating' is %g, not finite", (double)r->rating);
	for (int f = 0; f < 6; f++)
		if (ids[f] >= V[f])
			return hr_error(HR_EFORMAT, "field '%s' is %u, the vocabulary has %u ids",
					vocab_names[f], ids[f], V[f]);
	if (count_over(r->genres, r->n_genres, V[SF_GENRE]))
		return bad_element("genres", r->genres, r->n_genres, SF_GENRE, V[SF_GENRE]);
	for (uint32_t i = 0; i < r->n_dense; i++)
		if (!isfinite(r->dense[i]))
			return hr_error(HR_EFORMAT, "field 'dense' element %u is %g, not finite", i,
					(double)r->dense[i]);
	if (count_over(r->hist, r->n_hist, V[SF_ITEM]))
		return bad_element("hist", r->hist, r->n_hist, SF_ITEM, V[SF_ITEM]);
	return bad_element("neg_hist", r->neg, r->n_neg, SF_ITEM, V[SF_ITEM]);
}

int batch_set_row(struct batch *b, uint32_t row, const void *rec, size_t len)
{
	size_t L = b->hist_cap;
	struct record r;
	int rc;

	r.hist = b->hist + row * L;
	r.neg = b->neg + row * L;
	r.hist_cap = b->hist_cap;
	rc = record_unpack_fields(rec, len, &r, b->decode);
	if (!rc)
		rc = check_row(b, &r);
	if (rc)
		return rc;
	b->user[row] = r.user;
	b->item[row] = r.item;
	b->gender[row] = r.gender;
	b->age[row] = r.age;
	b->occupation[row] = r.occupation;
	b->zip[row] = r.zip;
	if (!(b->decode & REC_SKIP_FEATURES)) {
		if (r.n_dense != b->n_dense)
			return hr_error(HR_EFORMAT, "record has %u dense values, the store says %u",
					r.n_dense, b->n_dense);
		if (r.n_genres > BATCH_GENRES)
			return hr_error(HR_EFORMAT, "record has %u genres, more than %d",
					r.n_genres, BATCH_GENRES);
		memcpy(b->genres + row * BATCH_GENRES, r.genres, r.n_genres * sizeof(uint32_t));
		memset(b->genres + row * BATCH_GENRES + r.n_genres, 0,
		       (BATCH_GENRES - r.n_genres) * sizeof(uint32_t));
		b->n_genres[row] = r.n_genres;
		memcpy(b->dense + row * b->n_dense, r.dense, r.n_dense * sizeof(float));
	}
	if (!(b->decode & (REC_SKIP_SEQUENCES | REC_SKIP_FEATURES))) {
		memset(r.hist + r.n_hist, 0, (L - r.n_hist) * sizeof(uint32_t));
		memset(r.neg + r.n_neg, 0, (L - r.n_neg) * sizeof(uint32_t));
		b->n_hist[row] = r.n_hist;
		b->n_neg[row] = r.n_neg;
	}
	b->label[row] = (float)r.label;
	b->rating[row] = r.rating;
	b->user_raw[row] = r.user_raw;
	b->item_raw[row] = r.item_raw;
	b->ts[row] = r.ts;
	return 0;
}

int batch_fill(struct batch *b, const struct batch_source *src, uint64_t first, uint32_t count)
{
	/* Locals: batch_set_row's stores could alias *src, so the compiler
	 * would reload every field each row. */
	const struct store_ref *rec = src->ix->rec;
	const uint64_t *order = src->order;
	uint64_t n = src->n, base = src->base, end = first + count;

	HR_ASSERT(count <= b->cap && first <= n && count <= n - first);
	HR_ASSERT(order || base + n <= src->ix->n);
	batch_set_vocab(b, src->ix->vocab);
	b->n = 0;
	for (uint64_t p = first; p < end; p++) {
		uint64_t key = base + (order ? order[p] : p);
		/* Two steps ahead: the index entry, then the record it points to. */
		if (p + 16 < n)
			__builtin_prefetch(&rec[base + (order ? order[p + 16] : p + 16)]);
		if (p + 8 < n)
			__builtin_prefetch(rec[base + (order ? order[p + 8] : p + 8)].data);
		int rc = batch_set_row(b, b->n, rec[key].data, rec[key].len);
		if (rc)
			return hr_error_prefix(rc, "store '%s': %s record %llu", src->store,
					       src->db, (unsigned long long)key);
		b->n++;
	}
	return 0;
}

void batch_copy_row(struct batch *dst, uint32_t r, const struct batch *src, uint32_t k)
{
	size_t L = src->hist_cap, D = src->n_dense;

	assert(dst->hist_cap == src->hist_cap && dst->n_dense == src->n_dense);
	dst->user[r] = src->user[k];
	dst->item[r] = src->item[k];
	dst->gender[r] = src->gender[k];
	dst->age[r] = src->age[k];
	dst->occupation[r] = src->occupation[k];
	dst->zip[r] = src->zip[k];
	memcpy(dst->genres + r * (size_t)BATCH_GENRES, src->genres + k * (size_t)BATCH_GENRES,
	       BATCH_GENRES * sizeof(uint32_t));
	dst->n_genres[r] = src->n_genres[k];
	memcpy(dst->dense + r * D, src->dense + k * D, D * sizeof(float));
	memcpy(dst->hist + r * L, src->hist + k * L, L * sizeof(uint32_t));
	dst->n_hist[r] = src->n_hist[k];
	memcpy(dst->neg + r * L, src->neg + k * L, L * sizeof(uint32_t));
	dst->n_neg[r] = src->n_neg[k];
	dst->label[r] = src->label[k];
	dst->rating[r] = src->rating[k];
	dst->user_raw[r] = src->user_raw[k];
	dst->item_raw[r] = src->item_raw[k];
	dst->ts[r] = src->ts[k];
}

void batch_set_item(struct batch *b, uint32_t r, const struct store_items *it, uint32_t i)
{
	uint32_t lo = it->genre_off[i], n = it->genre_off[i + 1] - lo;

	if (n > BATCH_GENRES)
		n = BATCH_GENRES;
	b->item[r] = i;
	memset(b->genres + (size_t)r * BATCH_GENRES, 0, BATCH_GENRES * sizeof(uint32_t));
	memcpy(b->genres + (size_t)r * BATCH_GENRES, it->genre + lo, n * sizeof(uint32_t));
	b->n_genres[r] = n;
	if (b->n_dense == 4) { /* item_log_count, item_pos_rate (docs/FORMAT.md) */
		b->dense[(size_t)r * 4 + 2] = it->dense[2 * (size_t)i];
		b->dense[(size_t)r * 4 + 3] = it->dense[2 * (size_t)i + 1];
	}
}
