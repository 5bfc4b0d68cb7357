#include "split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int split_kind_parse(const char *name)
{
	if (!strcmp(name, "global"))
		return SPLIT_GLOBAL;
	if (!strcmp(name, "user"))
		return SPLIT_USER;
	if (!strcmp(name, "loo"))
		return SPLIT_LOO;
	return -1;
}

const char *split_kind_name(enum split_kind k)
{
	return k == SPLIT_USER ? "user" : k == SPLIT_LOO ? "loo" : "global";
}

int split_opts_check(const struct split_opts *o)
{
	if (!(o->valid_frac >= 0 && o->valid_frac < 1 && o->test_frac >= 0 && o->test_frac < 1 &&
	      o->valid_frac + o->test_frac < 1))
		return hr_error(
			HR_EINVAL,
			"split shares must be in [0, 1) and sum below 1 (valid %g, test %g)",
			o->valid_frac, o->test_frac);
	return 0;
}

/* Moves cut forward past kept events sharing the timestamp just before it. */
static size_t cut_after_ties(const struct event *ev, size_t n, const size_t *kept, size_t nk,
			     size_t cut)
{
	(void)n;
	if (cut == 0 || cut >= nk)
		return cut;
	while (cut < nk && ev[kept[cut]].ts == ev[kept[cut - 1]].ts)
		cut++;
	return cut;
}

static int split_global(struct event *ev, size_t n, const struct split_opts *o)
{
	size_t nk = 0, *kept = malloc((n ? n : 1) * sizeof(*kept));

	if (!kept)
		return hr_error(HR_ENOMEM, "out of memory splitting %zu events", n);
	for (size_t i = 0; i < n; i++)
		if (ev[i].label != LABEL_DROP)
			kept[nk++] = i;
	size_t c1 = (size_t)floor((double)nk * (1.0 - o->valid_frac - o->test_frac));
	size_t c2 = (size_t)floor((double)nk * (1.0 - o->test_frac));
	c1 = cut_after_ties(ev, n, kept, nk, c1);
	if (c2 < c1)
		c2 = c1;
	c2 = cut_after_ties(ev, n, kept, nk, c2);
	for (size_t j = 0; j < nk; j++)
		ev[kept[j]].split = j < c1 ? SPLIT_TRAIN : j < c2 ? SPLIT_VALID : SPLIT_TEST;
	free(kept);
	return 0;
}

static int split_per_user(struct event *ev, size_t n, size_t n_users, const struct split_opts *o)
{
	uint32_t *total = calloc(n_users ? n_users : 1, sizeof(*total));
	uint32_t *seen = calloc(n_users ? n_users : 1, sizeof(*seen));
	uint32_t *last_ts = calloc(n_users ? n_users : 1, sizeof(*last_ts));
	uint8_t *last_split = calloc(n_users ? n_users : 1, sizeof(*last_split));

	if (!total || !seen || !last_ts || !last_split) {
		free(total);
		free(seen);
		free(last_ts);
		free(last_split);
		return hr_error(HR_ENOMEM, "out of memory splitting %zu events", n);
	}
	for (size_t i = 0; i < n; i++)
		if (ev[i].label != LABEL_DROP)
			total[ev[i].user]++;
	for (size_t i = 0; i < n; i++) {
		struct event *e = &ev[i];
		if (e->label == LABEL_DROP)
			continue;
		uint32_t t = total[e->user], k = seen[e->user]++, nt, nv;
		if (o->kind == SPLIT_LOO) {
			nt = t >= 3;
			nv = t >= 3;
		} else {
			nt = (uint32_t)floor(t * o->test_frac);
			nv = (uint32_t)floor(t * o->valid_frac);
		}
		e->split = k >= t - nt ? SPLIT_TEST : k >= t - nt - nv ? SPLIT_VALID : SPLIT_TRAIN;
		/* user: a user's events of one second stay together, on the earlier
		 * side.  loo keeps its definition (exactly the last event, ties in
		 * the documented sort order). */
		if (o->kind == SPLIT_USER && k > 0 && e->ts == last_ts[e->user])
			e->split = last_split[e->user];
		last_ts[e->user] = e->ts;
		last_split[e->user] = e->split;
	}
	free(total);
	free(seen);
	free(last_ts);
	free(last_split);
	return 0;
}

int split_assign(struct event *ev, size_t n, size_t n_users, const struct split_opts *o,
		 struct split_info *info)
{
	int rc = o->kind == SPLIT_GLOBAL ? split_global(ev, n, o) :
					   split_per_user(ev, n, n_users, o);

	if (rc)
		return rc;
	memset(info, 0, sizeof(*info));
	for (size_t i = 0; i < n; i++) {
		int s = ev[i].split;
		if (s == SPLIT_NONE)
			continue;
		info->n[s]++;
		if (s == SPLIT_TRAIN && ev[i].ts > info->train_end_ts)
			info->train_end_ts = ev[i].ts;
		if (s == SPLIT_VALID && ev[i].ts > info->valid_end_ts)
			info->valid_end_ts = ev[i].ts;
	}
	if (info->valid_end_ts < info->train_end_ts)
		info->valid_end_ts = info->train_end_ts;
	return 0;
}
