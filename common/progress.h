/*
 * progress.h - a one-line progress bar on stderr.
 *
 * Draws only when enabled and stderr is a TTY; otherwise every call is a
 * no-op, so callers never branch on it.  Redraws at most ~10 times a second.
 * One bar is used by one thread at a time.
 */
#ifndef HR_PROGRESS_H
#define HR_PROGRESS_H

#include <stdint.h>

struct progress {
	const char *label;
	uint64_t total;
	uint64_t done;
	double start;
	double last_draw;
	int active;
};

/* Monotonic clock in seconds. */
double now_seconds(void);

/* Global switch (e.g. -q); bars are also off when stderr is not a TTY. */
void progress_enable(int on);

void progress_begin(struct progress *p, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* Draws the final state and moves to a new line. */
void progress_end(struct progress *p);

/* A completed bar for a short stage that needed no live updates. */
void progress_done(const char *label, uint64_t items, double seconds);

#endif
