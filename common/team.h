/*
 * team.h - a fork-join group: one caller and a few helper threads that each
 * run a part of the same job, then wait for the next.
 *
 * team_run(t, fn, arg) calls fn(arg, k, parts) once for every k in
 * [0, parts), parts = helpers + 1: part 0 on the caller's thread, the others
 * on the helpers, and returns when every part has returned.  Everything the
 * caller wrote before team_run is visible to the parts, and everything the
 * parts wrote is visible to the caller after it (the mutex orders both).
 * One caller at a time: team_run is not reentrant and not for several
 * threads at once.
 *
 * The trainer uses it to lend the threads a model cannot use as Hogwild
 * workers (model_ops.max_workers) to the worker's optimizer step.
 */
#ifndef HR_TEAM_H
#define HR_TEAM_H

typedef void (*team_fn)(void *arg, int part, int parts);

struct team;

/* Starts `helpers` (>= 0) threads, each calling thread_init (if not NULL)
 * first, e.g. to set the floating-point mode the caller's thread has; *out
 * is NULL on failure (HR_EIO, HR_ENOMEM). */
int team_start(struct team **out, int helpers, void (*thread_init)(void));
/* Parts of a job: helpers + 1. */
int team_parts(const struct team *t);
/* Runs fn(arg, k, parts) for every part k and waits for all of them. */
void team_run(struct team *t, team_fn fn, void *arg);
/* Stops and joins the helpers and frees t (NULL is fine). */
void team_stop(struct team *t);

#endif
