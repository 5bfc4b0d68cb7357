#include "label.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"

const char *split_name(int split)
{
	static const char *const names[] = {"train", "valid", "test", "none"};

	return names[split >= 0 && split <= SPLIT_NONE ? split : SPLIT_NONE];
}

static int half_stars(double v, const char *what, uint16_t *out)
{
	double h = v * 2.0;

	if (!(v >= 0.5 && v <= 5.0) || fabs(h - floor(h + 0.5)) > 1e-9)
		return hr_error(HR_EINVAL, "%s must be a multiple of 0.5 between 0.5 and 5, not %g",
				what, v);
	*out = (uint16_t)floor(h + 0.5);
	return 0;
}

int label_rule_init(struct label_rule *rule, enum label_mode mode, double pos_min, double neg_max)
{
	int rc;

	rule->mode = mode;
	rule->pos_min = pos_min;
	rule->neg_max = neg_max;
	rc = half_stars(pos_min, "--pos-min", &rule->pos_min2);
	if (!rc)
		rc = half_stars(neg_max, "--neg-max", &rule->neg_max2);
	if (!rc && mode == LABEL_EXPLICIT && rule->neg_max2 >= rule->pos_min2)
		rc = hr_error(HR_EINVAL, "--neg-max (%g) must be below --pos-min (%g)", neg_max,
			      pos_min);
	return rc;
}

int label_events(const struct dataset *ds, const struct label_rule *rule, struct event **out,
		 size_t *dropped)
{
	struct event *ev = malloc((ds->n_ratings ? ds->n_ratings : 1) * sizeof(*ev));
	size_t nd = 0;

	*out = NULL;
	if (!ev)
		return hr_error(HR_ENOMEM, "out of memory for %zu events", ds->n_ratings);
	for (size_t i = 0; i < ds->n_ratings; i++) {
		const struct ds_rating *r = &ds->ratings[i];
		int l = label_of(rule, r->stars2);
		ev[i] = (struct event){
			.user = r->user,
			.item = r->item,
			.ts = r->ts,
			.stars2 = r->stars2,
			.label = (int8_t)l,
			.split = SPLIT_NONE,
		};
		nd += l == LABEL_DROP;
	}
	*out = ev;
	*dropped = nd;
	return 0;
}
