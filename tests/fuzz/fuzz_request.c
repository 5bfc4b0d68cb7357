/*
 * libFuzzer target: serve/request.c, the server's own reading of a
 * request (libmicrohttpd has already split and decoded it).  The input is
 * lines: a method, a path, then one "key=value" (or bare "key") parameter
 * per line; bytes are passed as they are, NULs included, each part
 * NUL-terminated at its length as libmicrohttpd gives them.  Checked
 * beyond "no crash": the status is 0, 400, 404 or 405; a valid /recommend
 * has 1 <= k <= REC_K_MAX; the message is printable ASCII; the JSON error
 * body parses and carries the status.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/recommender.h"
#include "serve/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

/* The next line of data[*at .. size) into a fresh NUL-terminated copy; its length in *len. */
static char *next_line(const uint8_t *data, size_t size, size_t *at, size_t *len)
{
	const uint8_t *nl;
	size_t n;
	char *s;

	if (*at >= size)
		return NULL;
	nl = memchr(data + *at, '\n', size - *at);
	n = nl ? (size_t)(nl - (data + *at)) : size - *at;
	s = malloc(n + 1);
	if (s) {
		memcpy(s, data + *at, n);
		s[n] = 0;
	}
	*at += n + 1;
	*len = n;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request r;
	size_t at = 0, n;
	char *method = next_line(data, size, &at, &n), *path = next_line(data, size, &at, &n),
	     *line;
	char body[320];
	int status;

	request_begin(&r, method, path);
	while ((line = next_line(data, size, &at, &n))) {
		char *eq = memchr(line, '=', n);
		if (eq) {
			*eq = 0;
			request_arg(&r, line, (size_t)(eq - line), eq + 1,
				    n - (size_t)(eq - line) - 1);
		} else {
			request_arg(&r, line, n, NULL, 0);
		}
		free(line);
	}
	status = request_end(&r);
	CHECK(status == 0 || status == 400 || status == 404 || status == 405);
	if (status == 0) {
		CHECK(r.route != ROUTE_NONE);
		CHECK(r.route != ROUTE_RECOMMEND || (r.k >= 1 && r.k <= REC_K_MAX));
		CHECK(r.exclude_rated == 0 || r.exclude_rated == 1);
	} else {
		json_t *j;
		for (const char *p = r.error; *p; p++)
			CHECK(*p >= 0x20 && *p < 0x7f);
		request_error_json(body, sizeof(body), status, r.error);
		j = json_loads(body, 0, NULL);
		CHECK(j && json_integer_value(json_object_get(j, "status")) == status &&
		      json_is_string(json_object_get(j, "error")));
		json_decref(j);
	}
	free(method);
	free(path);
	return 0;
}
