/*
 * faultpoint.h - named pause points for deterministic signal and crash tests.
 *
 * A test that must deliver a signal (SIGTERM, SIGKILL) while a process is in
 * a given phase cannot rely on timing: on a loaded machine, or under a
 * sanitizer, a sleep lands anywhere.  Instead the code marks its phases with
 * fault_point("name"), and the test sets
 *
 *     HOGREC_PAUSE_AT=name        pause the first time the point is reached
 *     HOGREC_PAUSE_AT=name@N      pause the N-th time (N >= 1)
 *
 * On reaching it the process writes one line to stderr,
 *
 *     hogrec: paused at name (pid 1234)
 *
 * and waits.  The test waits for that line and then signals the process, so
 * the signal provably arrives in that phase.  The wait ends when the
 * program's signal handler calls fault_point_release() (after a SIGTERM,
 * say, the phase then sees the stop flag the handler set), on SIGUSR1
 * (installed only while a point is armed: the program goes on as if it had
 * never paused, e.g. after the test ran a competing process), or after 60 s
 * (a line "hogrec: pause at name timed out" says a test forgot its signal).
 *
 * Without HOGREC_PAUSE_AT (production) a fault point costs a pthread_once
 * check and one byte test, and no signal disposition changes.  Only one point is armed
 * per process; the environment is read at the first fault_point() call.
 *
 * Thread-safety: fault_point() may be called from any thread;
 * fault_point_release() is async-signal-safe.
 */
#ifndef HR_FAULTPOINT_H
#define HR_FAULTPOINT_H

/* Pauses here if HOGREC_PAUSE_AT names this point (see above). */
void fault_point(const char *name);

/* Ends a pause in progress (or the next one): call from signal handlers. */
void fault_point_release(void);

#endif
