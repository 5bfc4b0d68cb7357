/*
 * label.h - stage 1: turning ratings into binary labels.
 *
 * Explicit mode (default): rating >= pos_min is positive, rating <= neg_max
 * negative, anything strictly between is dropped (MovieLens convention:
 * 4-5 positive, 1-2 negative, 3 dropped).  Implicit mode: every rating is a
 * positive (the event itself is the signal).
 */
#ifndef HR_LABEL_H
#define HR_LABEL_H

#include <stddef.h>

#include "events.h"

enum label_mode { LABEL_EXPLICIT = 0, LABEL_IMPLICIT = 1 };

struct label_rule {
	enum label_mode mode;
	double pos_min, neg_max;     /* in stars */
	uint16_t pos_min2, neg_max2; /* the same, times two (half stars) */
};

/*
 * Validates and fills rule.  HR_EINVAL (with a message) when the thresholds
 * are not multiples of 0.5 in [0.5, 5], or neg_max >= pos_min.
 */
int label_rule_init(struct label_rule *rule, enum label_mode mode, double pos_min, double neg_max);

/* 1, 0 or LABEL_DROP for a rating given in half stars. */
static inline int label_of(const struct label_rule *rule, uint16_t stars2)
{
	if (rule->mode == LABEL_IMPLICIT || stars2 >= rule->pos_min2)
		return 1;
	return stars2 <= rule->neg_max2 ? 0 : LABEL_DROP;
}

/*
 * Builds one event per rating of ds (same order), labelled by rule.
 * *out is malloc'd, owned by the caller (free()).  *dropped receives the
 * number of LABEL_DROP events.  HR_ENOMEM on failure.
 */
int label_events(const struct dataset *ds, const struct label_rule *rule, struct event **out,
		 size_t *dropped);

#endif
