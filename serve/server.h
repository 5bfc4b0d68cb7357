/*
 * server.h - `bin/recommend --serve`: the process around http.h and
 * reload.h.  Loads the store, watches the checkpoint directory, serves
 * the newest model, and tells systemd how it goes (trainer/notify.h:
 * READY=1 once the first model is loaded and the port is open, STATUS=
 * with the step served, WATCHDOG=1 while the main loop runs, STOPPING=1).
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread and taken by the
 * main loop with sigtimedwait (no handler runs): the first stops the
 * server cleanly (no new connections, the requests in flight answered,
 * the watcher joined, everything freed, exit 0); the main loop waits at
 * most a second between looks.
 */
#ifndef HR_SERVE_SERVER_H
#define HR_SERVE_SERVER_H

#include <stdint.h>

struct server_opts {
	const char *ckpt_dir; /* watched; its latest valid checkpoint served first */
	const char *data;     /* the store */
	const char *host;     /* numeric address */
	uint16_t port;        /* 0: any free port */
	unsigned threads;     /* HTTP worker threads */
};

/*
 * Runs the server until SIGINT or SIGTERM; returns the exit status (0 a
 * clean stop; 65 a store or first checkpoint that is damaged or does not
 * fit; 66 a missing store or directory; 74 the port cannot be opened; 70
 * other).  Prints "listening on HOST:PORT" on stdout (flushed) once the
 * port is open: with port 0, the port the system chose.
 */
int server_run(const struct server_opts *o);

#endif
