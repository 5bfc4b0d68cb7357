#include "carry.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/info.h"

static const struct store_vocab *sort_vocab;

static int cmp_raw(const void *a, const void *b)
{
	return strcmp(sort_vocab->raw[*(const uint32_t *)a], sort_vocab->raw[*(const uint32_t *)b]);
}

/* map[new id] = old id of the same raw value, or UINT32_MAX. */
static int build_map(const struct store_vocab *nv, const struct store_vocab *ov, uint32_t *map)
{
	uint32_t *order = malloc((ov->n ? ov->n : 1) * sizeof(*order));

	if (!order)
		return hr_error(HR_ENOMEM, "out of memory remapping a vocabulary");
	for (uint32_t i = 0; i < ov->n; i++)
		order[i] = i;
	sort_vocab = ov; /* single-threaded: only the trainer's main thread carries over */
	qsort(order, ov->n, sizeof(*order), cmp_raw);
	map[0] = 0;
	for (uint32_t k = 1; k < nv->n; k++) {
		uint32_t lo = 0, hi = ov->n;
		map[k] = UINT32_MAX;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (strcmp(ov->raw[order[mid]], nv->raw[k]) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < ov->n && order[lo] != 0 && !strcmp(ov->raw[order[lo]], nv->raw[k]))
			map[k] = order[lo];
	}
	free(order);
	return 0;
}

static int carry_table(struct tensor *d, const struct tensor *s, struct store *dst_store,
		       struct store *src_store)
{
	struct store_vocab nv, ov;
	uint32_t *map = NULL;
	size_t c = d->cols;
	int rc = store_vocab_load(dst_store, (enum store_field)d->vocab, &nv);

	if (rc)
		return rc;
	rc = store_vocab_load(src_store, (enum store_field)s->vocab, &ov);
	if (rc) {
		store_vocab_release(&nv);
		return rc;
	}
	if (nv.n != d->rows || ov.n != s->rows)
		rc = hr_error(HR_EINVAL, "tensor '%s' does not match its vocabulary", d->name);
	if (!rc) {
		map = malloc(nv.n * sizeof(*map));
		rc = map ? build_map(&nv, &ov, map) : hr_error(HR_ENOMEM, "out of memory");
	}
	for (uint32_t k = 1; !rc && k < nv.n; k++) {
		size_t from = (size_t)map[k] * c, to = (size_t)k * c;
		if (map[k] == UINT32_MAX)
			continue; /* a value the old store did not know: fresh row */
		memcpy(d->w + to, s->w + from, c * sizeof(float));
		if (d->s1 && s->s1)
			memcpy(d->s1 + to, s->s1 + from, c * sizeof(float));
		if (d->s2 && s->s2)
			memcpy(d->s2 + to, s->s2 + from, c * sizeof(float));
	}
	free(map);
	store_vocab_release(&nv);
	store_vocab_release(&ov);
	return rc;
}

int model_carry_over(struct model *dst, struct store *dst_store, const struct model *src,
		     struct store *src_store)
{
	const struct params *sp = &src->params;
	struct params *dp = &dst->params;
	int rc = 0;

	if (dst->ops != src->ops || dp->n != sp->n || dp->dense_n != sp->dense_n)
		return hr_error(HR_EINVAL, "cannot carry model '%s' over to a different model",
				src->ops->name);
	for (int i = 0; i < dp->n && !rc; i++) {
		struct tensor *d = &dp->t[i];
		const struct tensor *s = &sp->t[i];
		if (strcmp(d->name, s->name) || d->sparse != s->sparse || d->cols != s->cols ||
		    (!d->sparse && d->rows != s->rows))
			return hr_error(HR_EINVAL, "tensor '%s' changed shape (%ux%u, was %ux%u)",
					d->name, d->rows, d->cols, s->rows, s->cols);
		if (d->sparse && d->vocab >= 0)
			rc = carry_table(d, s, dst_store, src_store);
		else if (d->frozen)
			memcpy(d->w, s->w, (size_t)d->rows * d->cols * sizeof(float));
	}
	if (!rc) {
		memcpy(dp->dense, sp->dense, dp->dense_n * sizeof(float));
		if (dp->dense_s1 && sp->dense_s1)
			memcpy(dp->dense_s1, sp->dense_s1, dp->dense_n * sizeof(float));
		if (dp->dense_s2 && sp->dense_s2)
			memcpy(dp->dense_s2, sp->dense_s2, dp->dense_n * sizeof(float));
	}
	return rc;
}
