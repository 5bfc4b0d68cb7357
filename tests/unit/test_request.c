/*
 * test_request.c - serve/request.h, the server's reading of a request:
 * a table of (method, path, parameters) against the status, the values
 * read and a fragment of the message; messages quote at most 64 bytes and
 * only printable ASCII; the JSON error body escapes nothing it cannot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "serve/request.h"

struct row {
	const char *method, *path;
	const char *args[6]; /* "key=value" or "key" (NULL value), NULL-terminated */
	int status;
	uint32_t user, k;
	int exclude;
	const char *msg; /* a fragment of r.error, or NULL */
};

static int read_row(const struct row *w, struct request *r)
{
	request_begin(r, w->method, w->path);
	for (int i = 0; w->args[i]; i++) {
		char key[128];
		const char *eq = strchr(w->args[i], '=');
		size_t kl = eq ? (size_t)(eq - w->args[i]) : strlen(w->args[i]);
		memcpy(key, w->args[i], kl);
		key[kl] = 0;
		request_arg(r, key, kl, eq ? eq + 1 : NULL, eq ? strlen(eq + 1) : 0);
	}
	return request_end(r);
}

static void test_table(void **state)
{
	static const struct row rows[] = {
		{"GET", "/recommend", {"user=12", NULL}, 0, 12, 10, 1, NULL},
		{"HEAD", "/recommend", {"user=0", "k=1", "exclude_rated=no", NULL}, 0, 0, 1, 0, NULL},
		{"GET", "/recommend", {"k=5", "user=4294967295", NULL}, 0, 4294967295u, 5, 1, NULL},
		{"GET",
		 "/recommend",
		 {"user=1", "k=1000", "exclude_rated=yes", NULL},
		 0,
		 1,
		 1000,
		 1,
		 NULL},
		{"GET", "/healthz", {NULL}, 0, 0, 10, 1, NULL},
		{"GET", "/metrics", {NULL}, 0, 0, 10, 1, NULL},
		{"GET", "/recommend", {NULL}, 400, 0, 0, 0, "'user' is required"},
		{"GET", "/recommend", {"user=4294967296", NULL}, 400, 0, 0, 0, "not '4294967296'"},
		{"GET", "/recommend", {"user=-1", NULL}, 400, 0, 0, 0, "must be a user id"},
		{"GET", "/recommend", {"user=+1", NULL}, 400, 0, 0, 0, "must be a user id"},
		{"GET", "/recommend", {"user= 1", NULL}, 400, 0, 0, 0, "must be a user id"},
		{"GET", "/recommend", {"user=", NULL}, 400, 0, 0, 0, "must be a user id"},
		{"GET", "/recommend", {"user", NULL}, 400, 0, 0, 0, "must be a user id"},
		{"GET",
		 "/recommend",
		 {"user=1", "k=0", NULL},
		 400,
		 0,
		 0,
		 0,
		 "from 1 to 1000, not '0'"},
		{"GET", "/recommend", {"user=1", "k=1001", NULL}, 400, 0, 0, 0, "not '1001'"},
		{"GET",
		 "/recommend",
		 {"user=1", "k=99999999999999999999999", NULL},
		 400,
		 0,
		 0,
		 0,
		 "'k'"},
		{"GET", "/recommend", {"user=1", "exclude_rated=2", NULL}, 400, 0, 0, 0, "yes or no"},
		{"GET", "/recommend", {"user=1", "user=2", NULL}, 400, 0, 0, 0, "'user' given twice"},
		{"GET",
		 "/recommend",
		 {"user=1", "kk=2", NULL},
		 400,
		 0,
		 0,
		 0,
		 "unknown parameter 'kk'"},
		{"GET", "/healthz", {"user=1", NULL}, 400, 0, 0, 0, "unknown parameter 'user'"},
		{"GET", "/", {NULL}, 404, 0, 0, 0, "unknown path '/'"},
		{"GET", "/recommend/", {NULL}, 404, 0, 0, 0, "unknown path"},
		{"GET", "/Recommend", {NULL}, 404, 0, 0, 0, "unknown path"},
		{"POST", "/recommend", {"user=1", NULL}, 405, 0, 0, 0, "method 'POST'"},
		{"get", "/healthz", {NULL}, 405, 0, 0, 0, "(GET or HEAD)"},
		{"GET", "/nothing", {"x=1", NULL}, 404, 0, 0, 0, "unknown path"}, /* first problem */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		struct request r;
		int st = read_row(w, &r);
		if (st != w->status)
			fail_msg("row %zu (%s %s): status %d, want %d (%s)", i, w->method, w->path,
				 st, w->status, r.error);
		if (!st && r.route == ROUTE_RECOMMEND) {
			assert_int_equal(r.user, w->user);
			assert_int_equal(r.k, w->k);
			assert_int_equal(r.exclude_rated, w->exclude);
		}
		if (w->msg && !strstr(r.error, w->msg))
			fail_msg("row %zu: '%s' lacks '%s'", i, r.error, w->msg);
	}
}

static void test_nul_and_quoting(void **state)
{
	struct request r;
	char big[300], body[320];

	(void)state;
	request_begin(&r, "GET", "/recommend");
	request_arg(&r, "user", 4, "1\0x", 3); /* a decoded %00 */
	assert_int_equal(request_end(&r), 400);
	assert_non_null(strstr(r.error, "NUL byte"));

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	big[3] = '"';
	big[4] = (char)0xff;
	request_begin(&r, "GET", "/recommend");
	request_arg(&r, "user", 4, big, strlen(big));
	assert_int_equal(request_end(&r), 400);
	assert_non_null(strstr(r.error, "'aaa??aaa")); /* quote and non-ASCII replaced */
	assert_non_null(strstr(r.error, "...'"));      /* cut at 64 bytes */
	for (const char *p = r.error; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);

	request_error_json(body, sizeof(body), 400, "say \"hi\" \\ \x01 done");
	assert_string_equal(body, "{\"error\":\"say ?hi? ? ? done\",\"status\":400}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul_and_quoting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
