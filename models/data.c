/*
 * data.c - what a model reads beyond its batch (model.h, struct
 * model_data): the train split's interactions and a negative sampler,
 * loaded once before training.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "interact.h"
#include "model.h"
#include "sampler.h"
#include "store/items.h"

/* The sampler kind m's option "sampler" selects (random without one). */
static enum sampler_kind sampler_of(const struct model *m)
{
	int i = model_option_index(m->ops, "sampler");

	return i < 0 ? SAMPLER_RANDOM : (enum sampler_kind)(int)m->opt[i];
}

static int load_ratings(struct model_data *d, const struct batch_source *src)
{
	struct interactions *x = calloc(1, sizeof(*x));
	double sum = 0;
	int rc;

	if (!x)
		return hr_error(HR_ENOMEM, "out of memory");
	d->train = x;
	rc = interactions_load(x, src, 0);
	if (rc)
		return rc;
	if (x->n == 0)
		return hr_error(HR_EINVAL, "store '%s': the train split has no ratings",
				src->store);
	d->rating_min = d->rating_max = x->rating[0];
	for (uint64_t k = 0; k < x->n; k++) {
		sum += x->rating[k];
		d->rating_min = fminf(d->rating_min, x->rating[k]);
		d->rating_max = fmaxf(d->rating_max, x->rating[k]);
	}
	d->rating_mean = (float)(sum / (double)x->n);
	return 0;
}

static int load_negatives(struct model_data *d, const struct model *m,
			  const struct batch_source *src)
{
	int rc;

	d->pos = calloc(1, sizeof(*d->pos));
	d->sampler = calloc(1, sizeof(*d->sampler));
	if (!d->pos || !d->sampler)
		return hr_error(HR_ENOMEM, "out of memory");
	rc = interactions_load(d->pos, src, INTERACT_POSITIVES);
	if (!rc && d->pos->n == 0)
		rc = hr_error(HR_EINVAL,
			      "store '%s': the train split has no positives to sample "
			      "negatives against",
			      src->store);
	if (!rc)
		rc = sampler_init(d->sampler, sampler_of(m), d->pos);
	return rc;
}

int model_data_load(struct model_data *d, const struct model *m, const struct batch_source *src,
		    struct store *st)
{
	unsigned wants = m->ops->wants ? m->ops->wants(m) : 0;
	int rc = 0;

	memset(d, 0, sizeof(*d));
	if (wants & WANTS_RATINGS)
		rc = load_ratings(d, src);
	if (!rc && (wants & WANTS_NEGATIVES))
		rc = load_negatives(d, m, src);
	if (!rc && (wants & WANTS_ITEMS)) {
		d->items = calloc(1, sizeof(*d->items));
		rc = d->items ? store_items_load(st, m->info.vocab[SF_ITEM],
						 m->info.vocab[SF_GENRE], d->items) :
				hr_error(HR_ENOMEM, "out of memory");
	}
	if (rc)
		model_data_release(d);
	return rc;
}

void model_data_release(struct model_data *d)
{
	if (d->train)
		interactions_release(d->train);
	if (d->pos)
		interactions_release(d->pos);
	if (d->sampler)
		sampler_release(d->sampler);
	if (d->items)
		store_items_release(d->items);
	free(d->items);
	free(d->train);
	free(d->pos);
	free(d->sampler);
	memset(d, 0, sizeof(*d));
}
