/*
 * request.h - what a request to the server asks for: the project's own
 * reading of a method, a path and query parameters that libmicrohttpd has
 * already split and percent-decoded (serve/http.c).  Pure functions over
 * strings, so that a fuzz target (tests/fuzz/fuzz_request.c) drives them
 * without a socket.
 *
 *   GET /recommend?user=ID[&k=N][&exclude_rated=yes|no]
 *   GET /healthz
 *   GET /metrics
 *
 * (HEAD is accepted wherever GET is.)  user is a raw user id, decimal
 * digits only (at most 4294967295); k 1 .. REC_K_MAX (default 10);
 * exclude_rated yes/no/true/false/1/0 (default yes).  Anything else is
 * refused with a status and a message: 404 an unknown path, 405 another
 * method, 400 a missing or malformed user, a k out of range, an unknown
 * or repeated parameter, a NUL byte in a key or value, more than
 * REQUEST_MAX_ARGS parameters.  The
 * message quotes at most 64 bytes of what was given, every byte outside
 * printable ASCII replaced by '?', so it is always valid UTF-8 and JSON
 * can carry it.
 *
 * Threading: a struct request belongs to one request (one thread).
 */
#ifndef HR_SERVE_REQUEST_H
#define HR_SERVE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define REQUEST_MAX_ARGS 16

enum request_route { ROUTE_NONE, ROUTE_RECOMMEND, ROUTE_HEALTHZ, ROUTE_METRICS };

struct request {
	enum request_route route;
	int head;      /* HEAD: the same headers, no body */
	uint32_t user; /* ROUTE_RECOMMEND */
	uint32_t k;
	int exclude_rated;
	int status; /* 0 while valid, else the 4xx to answer with */
	char error[192];
	/* parameters seen (bits: user, k, exclude_rated) and counted */
	unsigned seen;
	int n_args;
};

/* Starts a request: its method and path (the URL without the query). */
void request_begin(struct request *r, const char *method, const char *path);

/*
 * One query parameter, in order, as decoded: key_len bytes at key,
 * value_len at value (value NULL for a bare "?key").  Both must also be
 * NUL-terminated at their length; a NUL byte inside either (a decoded
 * "%00") is refused.
 */
void request_arg(struct request *r, const char *key, size_t key_len, const char *value,
		 size_t value_len);

/*
 * Finishes reading: checks what is required.  Returns 0 for a valid
 * request, else its status (400, 404, 405) with r->error set.
 */
int request_end(struct request *r);

/*
 * The JSON body of an error answer, {"error": MESSAGE, "status": STATUS},
 * into buf (cap bytes; truncated messages stay valid JSON).  MESSAGE must
 * be printable ASCII (request_* and the server's own messages are).
 */
void request_error_json(char *buf, unsigned cap, int status, const char *message);

#endif
