#include "dense.h"

#include <stdlib.h>

#include "common/err.h"

const char *const dense_names[DENSE_N] = {
	"user_log_count",
	"user_pos_rate",
	"item_log_count",
	"item_pos_rate",
};

int dense_init(struct dense_state *d, size_t n_users, size_t n_items)
{
	d->u_cnt = calloc(n_users + 1, sizeof(uint32_t));
	d->u_pos = calloc(n_users + 1, sizeof(uint32_t));
	d->i_cnt = calloc(n_items + 1, sizeof(uint32_t));
	d->i_pos = calloc(n_items + 1, sizeof(uint32_t));
	if (!d->u_cnt || !d->u_pos || !d->i_cnt || !d->i_pos) {
		dense_release(d);
		return hr_error(HR_ENOMEM, "out of memory for dense statistics");
	}
	return 0;
}

void dense_release(struct dense_state *d)
{
	free(d->u_cnt);
	free(d->u_pos);
	free(d->i_cnt);
	free(d->i_pos);
	d->u_cnt = d->u_pos = d->i_cnt = d->i_pos = NULL;
}

int dense_fit(struct scaler *sc, const struct event *ev, size_t n, size_t n_users, size_t n_items)
{
	struct dense_state d;
	int any = 0, rc = dense_init(&d, n_users, n_items);

	if (rc)
		return rc;
	for (int f = 0; f < DENSE_N; f++) {
		sc->min[f] = INFINITY;
		sc->max[f] = -INFINITY;
	}
	for (size_t a = 0, b; a < n; a = b) {
		for (b = a; b < n && ev[b].ts == ev[a].ts; b++) {
			float raw[DENSE_N];
			if (ev[b].split != SPLIT_TRAIN)
				continue;
			dense_raw(&d, ev[b].user, ev[b].item, raw);
			for (int f = 0; f < DENSE_N; f++) {
				sc->min[f] = fminf(sc->min[f], raw[f]);
				sc->max[f] = fmaxf(sc->max[f], raw[f]);
			}
			any = 1;
		}
		/* Updates only after the whole second: same-second events are not "before". */
		for (size_t i = a; i < b; i++)
			dense_apply(&d, &ev[i]);
	}
	if (!any)
		for (int f = 0; f < DENSE_N; f++)
			sc->min[f] = sc->max[f] = 0;
	dense_release(&d);
	return 0;
}

void scaler_apply(const struct scaler *sc, const float *raw, float *out, int first, int count)
{
	for (int k = 0; k < count; k++) {
		int f = first + k;
		float span = sc->max[f] - sc->min[f];
		float v = span > 0 ? (raw[k] - sc->min[f]) / span : 0.0f;
		out[k] = v < 0 ? 0 : v > 1 ? 1 : v;
	}
}
