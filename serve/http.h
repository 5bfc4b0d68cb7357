/*
 * http.h - the HTTP side of `bin/recommend --serve`: libmicrohttpd (a
 * well-kept HTTP/1.1 server library, Debian's libmicrohttpd-dev) parses
 * the protocol and runs a pool of worker threads; this file routes each
 * request through request.h's reading of it and answers with JSON.
 *
 *   GET /recommend?user=ID&k=N   200 the list (output.h's JSON; the step of
 *                                the checkpoint it came from); 404 an unknown
 *                                user; 503 while no model is loaded
 *   GET /healthz                 200 {"status":"ok","model":..,"step":..};
 *                                503 {"status":"loading"} before the first model
 *   GET /metrics                 Prometheus text: requests, error answers,
 *                                reloads, reload failures, the current step
 *                                and checkpoint
 *
 * Every refusal is a JSON body {"error": ..., "status": ...}: 400 a
 * malformed parameter, 404 an unknown path or user, 405 a method other
 * than GET/HEAD, 413 a request with a body, 414 a query longer than
 * HTTP_MAX_QUERY bytes.  (A request line and headers over
 * HTTP_MEMORY_LIMIT never reach this file: libmicrohttpd answers 414 or
 * 431 itself, without a JSON body.)
 *
 * Each request borrows the current model (swap.h) for its whole duration,
 * so a reload in between never mixes two models in one answer.
 *
 * Threading: http_start and http_stop from the main thread; the handler
 * runs on the pool's threads.
 */
#ifndef HR_SERVE_HTTP_H
#define HR_SERVE_HTTP_H

#include <stdatomic.h>
#include <stdint.h>

#include "recommender.h"
#include "reload.h"
#include "swap.h"

#define HTTP_MAX_QUERY 2048           /* bytes of parameters a request may send */
#define HTTP_MEMORY_LIMIT (32 * 1024) /* per connection: request line and headers */
#define HTTP_MAX_THREADS 64

struct http_server;

/* What the handler reads: the shared model slot, the store, the watcher's counters. */
struct http_state {
	struct swap *swap;
	const struct serve_data *d;
	struct reloader *rl;
	atomic_uint_fast64_t requests; /* answered, any status */
	atomic_uint_fast64_t errors;   /* answered with a status >= 400 */
};

/*
 * Listens on host:port (host a numeric IPv4 address, or IPv6 in
 * brackets: "[::1]"; port 0: any free port, see http_port) with a pool of
 * threads (1 .. HTTP_MAX_THREADS) serving st.  Errors: HR_EINVAL a host
 * that is not a numeric address; HR_EIO when the daemon cannot start (the
 * port in use, ...: the message says which address).
 */
int http_start(struct http_server **out, const char *host, uint16_t port, unsigned threads,
	       struct http_state *st);

/* The port actually bound. */
uint16_t http_port(const struct http_server *h);

/* Stops accepting, finishes the requests in flight, joins the pool, frees h. */
void http_stop(struct http_server *h);

#endif
