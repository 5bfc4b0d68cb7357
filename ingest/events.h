/*
 * events.h - the ingest stages' working representation of ratings.
 *
 * One struct event per rating read, in one array that the stages transform
 * in place: label (label.h) -> sort by time (order.h) -> split (split.h).
 * Neutral ratings dropped by the label rule stay in the array with
 * label = LABEL_DROP and split = SPLIT_NONE: they produce no record, but the
 * negative sampler must still know the user rated the item.
 */
#ifndef HR_EVENTS_H
#define HR_EVENTS_H

#include <stdint.h>

#include "dataset.h"

enum { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_TEST = 2, SPLIT_NONE = 3 };
#define LABEL_DROP (-1)

struct event {
	uint32_t user;   /* index into dataset users */
	uint32_t item;   /* index into dataset items */
	uint32_t ts;     /* unix seconds */
	uint16_t stars2; /* rating times two */
	int8_t label;    /* 1, 0 or LABEL_DROP */
	uint8_t split;   /* SPLIT_* */
};

/* Name of a split: "train", "valid", "test". */
const char *split_name(int split);

#endif
