/*
 * order.h - stage 2: timestamp ordering.
 *
 * Sorts events by (timestamp, raw user id, raw item id), stably, with an
 * LSD radix sort (16-bit digits; passes whose digit is constant are
 * skipped), so ties keep input order and the cost is linear.
 */
#ifndef HR_ORDER_H
#define HR_ORDER_H

#include <stddef.h>

#include "events.h"

/* Sorts ev[0..n) in place.  HR_ENOMEM if the scratch buffer cannot be had. */
int events_sort(struct event *ev, size_t n, const struct dataset *ds);

#endif
