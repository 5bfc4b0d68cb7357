/* request.c - reading a request's method, path and parameters (request.h). */
#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "recommender.h"

enum { SEEN_USER = 1, SEEN_K = 2, SEEN_EXCLUDE = 4 };

#define QUOTE_MAX 64

/* s as printable ASCII, at most QUOTE_MAX bytes ("..." after a cut), into out. */
static void quote(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; s && *s && n + 4 < cap && n < QUOTE_MAX; s++)
		out[n++] = *s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\' ? *s : '?';
	if (s && *s && n + 4 <= cap) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = 0;
}

static void refuse(struct request *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct request *r, int status, const char *fmt, ...)
{
	va_list ap;

	if (r->status) /* the first problem is the one reported */
		return;
	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

void request_begin(struct request *r, const char *method, const char *path)
{
	char q[QUOTE_MAX + 4];

	memset(r, 0, sizeof(*r));
	r->k = 10;
	r->exclude_rated = 1;
	if (!path || !strcmp(path, "/"))
		r->route = ROUTE_NONE;
	else if (!strcmp(path, "/recommend"))
		r->route = ROUTE_RECOMMEND;
	else if (!strcmp(path, "/healthz"))
		r->route = ROUTE_HEALTHZ;
	else if (!strcmp(path, "/metrics"))
		r->route = ROUTE_METRICS;
	if (r->route == ROUTE_NONE) {
		quote(q, sizeof(q), path);
		refuse(r, 404,
		       "unknown path '%s' (the server answers /recommend, /healthz, /metrics)", q);
		return;
	}
	r->head = method && !strcmp(method, "HEAD");
	if (!method || (strcmp(method, "GET") && !r->head)) {
		quote(q, sizeof(q), method);
		refuse(r, 405, "method '%s' not allowed (GET or HEAD)", q);
	}
}

/* A strict decimal below or at max: digits only, no sign, no spaces. */
static int decimal(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

void request_arg(struct request *r, const char *key, size_t key_len, const char *value,
		 size_t value_len)
{
	char q[QUOTE_MAX + 4], qk[QUOTE_MAX + 4];
	unsigned bit = 0;
	uint64_t v;
	int b;

	if (r->status)
		return;
	if (++r->n_args > REQUEST_MAX_ARGS) {
		refuse(r, 400, "more than %d query parameters", REQUEST_MAX_ARGS);
		return;
	}
	quote(qk, sizeof(qk), key);
	quote(q, sizeof(q), value);
	if (!key || strlen(key) != key_len || (value && strlen(value) != value_len)) {
		refuse(r, 400, "parameter '%s' holds a NUL byte", qk);
		return;
	}
	if (r->route == ROUTE_RECOMMEND && key) {
		if (!strcmp(key, "user"))
			bit = SEEN_USER;
		else if (!strcmp(key, "k"))
			bit = SEEN_K;
		else if (!strcmp(key, "exclude_rated"))
			bit = SEEN_EXCLUDE;
	}
	if (!bit) {
		refuse(r, 400, "unknown parameter '%s'", qk);
		return;
	}
	if (r->seen & bit) {
		refuse(r, 400, "parameter '%s' given twice", qk);
		return;
	}
	r->seen |= bit;
	if (bit == SEEN_USER) {
		if (decimal(value, UINT32_MAX, &v))
			refuse(r, 400,
			       "'user' must be a user id (decimal digits, at most 4294967295), not '%s'",
			       q);
		else
			r->user = (uint32_t)v;
	} else if (bit == SEEN_K) {
		if (decimal(value, REC_K_MAX, &v) || v < 1)
			refuse(r, 400, "'k' must be an integer from 1 to %d, not '%s'", REC_K_MAX,
			       q);
		else
			r->k = (uint32_t)v;
	} else {
		if (!value || (b = parse_bool(value)) < 0)
			refuse(r, 400, "'exclude_rated' must be yes or no, not '%s'", q);
		else
			r->exclude_rated = b;
	}
}

int request_end(struct request *r)
{
	if (!r->status && r->route == ROUTE_RECOMMEND && !(r->seen & SEEN_USER))
		refuse(r, 400, "'user' is required (/recommend?user=ID)");
	return r->status;
}

void request_error_json(char *buf, unsigned cap, int status, const char *message)
{
	char q[sizeof(((struct request *)0)->error)];
	size_t n = 0;

	for (const char *s = message; s && *s && n + 1 < sizeof(q); s++) /* stays JSON-safe */
		q[n++] = *s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\' ? *s : '?';
	q[n] = 0;
	snprintf(buf, cap, "{\"error\":\"%.*s\",\"status\":%d}", (int)(cap > 40 ? cap - 40 : 0), q,
		 status);
}
