/*
 * dense.h - stage 5: dense features and their min-max scaler.
 *
 * Four raw features per record (docs/FORMAT.md): user and item log-count
 * and Laplace-smoothed positive rate, counted over labelled TRAIN events
 * strictly before the record's timestamp.  The caller guarantees "strictly
 * before" by reading features for a whole same-second run of events before
 * applying that run's updates.  The scaler is fitted on train records only
 * and clamps everything else to [0, 1].
 */
#ifndef HR_DENSE_H
#define HR_DENSE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

#define DENSE_N 4
#define DENSE_USER_N 2 /* the first two features describe the user */

extern const char *const dense_names[DENSE_N];

struct dense_state {
	uint32_t *u_cnt, *u_pos; /* per dataset user */
	uint32_t *i_cnt, *i_pos; /* per dataset item */
};

struct scaler {
	float min[DENSE_N], max[DENSE_N];
};

int dense_init(struct dense_state *d, size_t n_users, size_t n_items);
void dense_release(struct dense_state *d);

static inline void dense_user_raw(const struct dense_state *d, uint32_t user, float *out)
{
	out[0] = (float)log1p((double)d->u_cnt[user]);
	out[1] = (float)((d->u_pos[user] + 1.0) / (d->u_cnt[user] + 2.0));
}

static inline void dense_item_raw(const struct dense_state *d, uint32_t item, float *out)
{
	out[0] = (float)log1p((double)d->i_cnt[item]);
	out[1] = (float)((d->i_pos[item] + 1.0) / (d->i_cnt[item] + 2.0));
}

/* The four raw features of (user, item) given the events applied so far. */
static inline void dense_raw(const struct dense_state *d, uint32_t user, uint32_t item,
			     float out[DENSE_N])
{
	dense_user_raw(d, user, out);
	dense_item_raw(d, item, out + DENSE_USER_N);
}

/* Counts e if it is a labelled train event; other events change nothing. */
static inline void dense_apply(struct dense_state *d, const struct event *e)
{
	if (e->split != SPLIT_TRAIN)
		return;
	d->u_cnt[e->user]++;
	d->u_pos[e->user] += e->label == 1;
	d->i_cnt[e->item]++;
	d->i_pos[e->item] += e->label == 1;
}

/*
 * Fits the scaler: min and max of the raw features over the train records
 * of time-sorted ev.  With no train record the scaler maps everything to 0.
 * HR_ENOMEM on failure.
 */
int dense_fit(struct scaler *sc, const struct event *ev, size_t n, size_t n_users, size_t n_items);

/* Scales features [first, first+count) of raw into out, clamped to [0, 1]. */
void scaler_apply(const struct scaler *sc, const float *raw, float *out, int first, int count);

#endif
