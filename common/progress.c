#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int progress_on = 1;

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_enable(int on)
{
	progress_on = on;
}

static void draw(struct progress *p, double t)
{
	double frac = p->total ? (double)p->done / (double)p->total : 1.0;
	double el = t - p->start;
	double rate = el > 0 ? (double)p->done / el : 0;
	double eta = (rate > 0 && p->total > p->done) ? (double)(p->total - p->done) / rate : 0;
	char bar[31];
	int fill = (int)(frac * 30.0);

	if (fill > 30)
		fill = 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r%-10s [%s] %5.1f%% %10.0f/s eta %4.0fs", p->label, bar, 100.0 * frac,
		rate, eta);
	fflush(stderr);
	p->last_draw = t;
}

void progress_begin(struct progress *p, const char *label, uint64_t total)
{
	p->label = label;
	p->total = total;
	p->done = 0;
	p->start = now_seconds();
	p->last_draw = 0;
	p->active = progress_on && isatty(STDERR_FILENO);
}

void progress_update(struct progress *p, uint64_t done)
{
	double t;

	p->done = done;
	if (!p->active)
		return;
	t = now_seconds();
	if (t - p->last_draw >= 0.1)
		draw(p, t);
}

void progress_end(struct progress *p)
{
	if (!p->active)
		return;
	p->done = p->total;
	draw(p, now_seconds());
	fputc('\n', stderr);
	p->active = 0;
}

void progress_done(const char *label, uint64_t items, double seconds)
{
	struct progress p;

	progress_begin(&p, label, items);
	if (!p.active)
		return;
	p.start -= seconds; /* the rate shown is items over the stage's time */
	progress_end(&p);
}
