/*
 * split.h - stage 3: train/valid/test split of time-sorted events.
 *
 * global: the first (1 - valid - test) share of labelled events in time
 *         order is train, the next valid share is valid, the rest test;
 *         each cut moves forward past events sharing the boundary second,
 *         so every train event is strictly earlier than every valid event,
 *         and valid than test.
 * user:   per user, the latest test share of their labelled events is test
 *         and the valid share before it is valid (floor of the share).
 * loo:    per user, the last labelled event is test and the one before it
 *         valid (users with fewer than 3 keep everything in train).
 * In the user split, a user's events of the same second are never
 * separated: they all take the split of the first of them.  loo takes
 * exactly the last event and the one before, even within one second
 * (features are strictly earlier in any case).
 * Dropped events stay SPLIT_NONE.
 */
#ifndef HR_SPLIT_H
#define HR_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

enum split_kind { SPLIT_GLOBAL = 0, SPLIT_USER = 1, SPLIT_LOO = 2 };

struct split_opts {
	enum split_kind kind;
	double valid_frac, test_frac;
};

struct split_info {
	uint32_t train_end_ts; /* largest train timestamp */
	uint32_t valid_end_ts; /* largest valid timestamp (train_end_ts if none) */
	size_t n[3];           /* events per split */
};

/* "global", "user", "loo"; -1 for an unknown name. */
int split_kind_parse(const char *name);
const char *split_kind_name(enum split_kind k);

/* HR_EINVAL unless both shares are in [0, 1) and sum below 1. */
int split_opts_check(const struct split_opts *o);

/*
 * Assigns ev[i].split for events sorted by time (events_sort).  n_users is
 * the dataset's user count (per-user splits index by user).  HR_ENOMEM.
 */
int split_assign(struct event *ev, size_t n, size_t n_users, const struct split_opts *o,
		 struct split_info *info);

#endif
