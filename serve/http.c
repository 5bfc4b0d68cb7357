/* http.c - libmicrohttpd glue for the server (http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "output.h"
#include "request.h"

struct http_server {
	struct MHD_Daemon *daemon;
	uint16_t port;
};

/* Queues body (len bytes, copied) with status and content type. */
static enum MHD_Result answer(struct http_state *st, struct MHD_Connection *conn, unsigned status,
			      const char *type, const char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
								    MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	atomic_fetch_add_explicit(&st->requests, 1, memory_order_relaxed); /* counters only */
	if (status >= 400)
		atomic_fetch_add_explicit(&st->errors, 1, memory_order_relaxed);
	if (!resp)
		return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (status == 405)
		MHD_add_response_header(resp, "Allow", "GET, HEAD");
	ok = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result answer_error(struct http_state *st, struct MHD_Connection *conn,
				    unsigned status, const char *message)
{
	char body[320];

	request_error_json(body, sizeof(body), (int)status, message);
	return answer(st, conn, status, "application/json", body, strlen(body));
}

/* Per request: the parameters as request.h reads them, and their size. */
struct arg_ctx {
	struct request *r;
	size_t bytes;
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				size_t key_size, const char *value, size_t value_size)
{
	struct arg_ctx *a = cls;

	(void)kind;
	a->bytes += key_size + value_size + 2;
	request_arg(a->r, key, key_size, value, value_size);
	return MHD_YES;
}

static enum MHD_Result do_recommend(struct http_state *st, struct MHD_Connection *conn,
				    const struct request *q)
{
	struct swap_item *it = swap_acquire(st->swap);
	struct rec_list *l;
	struct recommender *r;
	enum MHD_Result ok;
	char *text;
	int rc;

	if (!it)
		return answer_error(st, conn, 503, "no model loaded yet");
	r = recommender_of(it);
	l = malloc(sizeof(*l));
	rc = l ? recommender_top(r, q->user, q->k, q->exclude_rated, l) :
		 hr_error(HR_ENOMEM, "out of memory");
	if (rc == HR_ENOENT) {
		char msg[64];
		snprintf(msg, sizeof(msg), "user %u is not in the store", q->user);
		ok = answer_error(st, conn, 404, msg);
	} else if (rc) {
		log_warn("/recommend?user=%u: %s", q->user, hr_errmsg());
		ok = answer_error(st, conn, 500, "the request could not be scored (see the log)");
	} else if (!(text = output_json(r, &st->d->cat, l, q->exclude_rated))) {
		ok = answer_error(st, conn, 500, "out of memory");
	} else {
		ok = answer(st, conn, 200, "application/json", text, strlen(text));
		free(text);
	}
	free(l);
	swap_release(it); /* the model may be freed here, after the answer is copied */
	return ok;
}

static enum MHD_Result do_healthz(struct http_state *st, struct MHD_Connection *conn)
{
	struct swap_item *it = swap_acquire(st->swap);
	char body[256];

	if (!it) {
		snprintf(body, sizeof(body), "{\"status\":\"loading\"}");
		return answer(st, conn, 503, "application/json", body, strlen(body));
	}
	snprintf(body, sizeof(body), "{\"status\":\"ok\",\"model\":\"%s\",\"step\":%llu}",
		 recommender_model(recommender_of(it)),
		 (unsigned long long)recommender_step(recommender_of(it)));
	swap_release(it);
	return answer(st, conn, 200, "application/json", body, strlen(body));
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[n++] = '\\';
			out[n++] = *s == '\n' ? 'n' : *s;
		} else {
			out[n++] = *s;
		}
	}
	out[n] = 0;
}

static enum MHD_Result do_metrics(struct http_state *st, struct MHD_Connection *conn)
{
	struct swap_item *it = swap_acquire(st->swap);
	char body[2 * CKPT_PATH_MAX + 1024], path[2 * CKPT_PATH_MAX], model[2 * CKPT_MODEL_MAX];
	uint64_t requests = atomic_load_explicit(&st->requests, memory_order_relaxed) + 1;
	int n;

	path[0] = model[0] = 0;
	if (it) {
		label(path, sizeof(path), recommender_path(recommender_of(it)));
		label(model, sizeof(model), recommender_model(recommender_of(it)));
	}
	n = snprintf(
		body, sizeof(body),
		"# HELP hogrec_requests_total HTTP requests answered (this one included).\n"
		"# TYPE hogrec_requests_total counter\n"
		"hogrec_requests_total %llu\n"
		"# HELP hogrec_request_errors_total Requests answered with a status >= 400.\n"
		"# TYPE hogrec_request_errors_total counter\n"
		"hogrec_request_errors_total %llu\n"
		"# HELP hogrec_reloads_total Checkpoints the watch swapped in (not the one loaded at start).\n"
		"# TYPE hogrec_reloads_total counter\n"
		"hogrec_reloads_total %llu\n"
		"# HELP hogrec_reload_failures_total Verified checkpoints that did not load.\n"
		"# TYPE hogrec_reload_failures_total counter\n"
		"hogrec_reload_failures_total %llu\n"
		"# HELP hogrec_watching Whether the checkpoint directory is still watched.\n"
		"# TYPE hogrec_watching gauge\n"
		"hogrec_watching %d\n"
		"# HELP hogrec_checkpoint_step Step of the checkpoint being served (0: none).\n"
		"# TYPE hogrec_checkpoint_step gauge\n"
		"hogrec_checkpoint_step %llu\n"
		"# HELP hogrec_checkpoint_info The checkpoint being served.\n"
		"# TYPE hogrec_checkpoint_info gauge\n"
		"hogrec_checkpoint_info{model=\"%s\",path=\"%s\"} %d\n",
		(unsigned long long)requests,
		(unsigned long long)atomic_load_explicit(&st->errors, memory_order_relaxed),
		(unsigned long long)atomic_load_explicit(&st->rl->reloads, memory_order_relaxed),
		(unsigned long long)atomic_load_explicit(&st->rl->failures, memory_order_relaxed),
		atomic_load_explicit(&st->rl->watching, memory_order_relaxed),
		(unsigned long long)(it ? recommender_step(recommender_of(it)) : 0), model, path,
		it ? 1 : 0);
	swap_release(it);
	return answer(st, conn, 200, "text/plain; version=0.0.4", body,
		      n < (int)sizeof(body) ? (size_t)n : sizeof(body) - 1);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct http_state *st = cls;
	struct request q;
	struct arg_ctx a = {&q, 0};
	const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length"),
		   *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
	int status;

	(void)version;
	(void)upload_data;
	if (*con_cls) { /* a body arriving after the answer was queued: drop it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	*con_cls = st; /* answered on the first call, with the headers */
	request_begin(&q, method, url);
	if (q.status) /* an unknown path or method: say so before anything else */
		return answer_error(st, conn, (unsigned)q.status, q.error);
	if (te || (len && strcmp(len, "0")))
		return answer_error(st, conn, 413, "a request to this server has no body");
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, each_arg, &a);
	if (a.bytes > HTTP_MAX_QUERY)
		return answer_error(st, conn, 414, "the query is too long");
	if ((status = request_end(&q)))
		return answer_error(st, conn, (unsigned)status, q.error);
	switch (q.route) {
	case ROUTE_RECOMMEND: return do_recommend(st, conn, &q);
	case ROUTE_HEALTHZ: return do_healthz(st, conn);
	case ROUTE_METRICS: return do_metrics(st, conn);
	case ROUTE_NONE: break;
	}
	return answer_error(st, conn, 404, "unknown path");
}

/* libmicrohttpd's own messages (a client that misbehaves, a socket error) as warnings. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	log_debug("http: %s", msg);
}

int http_start(struct http_server **out, const char *host, uint16_t port, unsigned threads,
	       struct http_state *st)
{
	struct sockaddr_in a4 = {0};
	struct sockaddr_in6 a6 = {0};
	struct sockaddr *sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			 MHD_USE_ITC;
	struct http_server *h;
	char h6[64];
	size_t hl = strlen(host);

	*out = NULL;
	HR_ASSERT(threads >= 1 && threads <= HTTP_MAX_THREADS);
	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(port);
		sa = (struct sockaddr *)&a4;
	} else if (hl >= 2 && hl - 2 < sizeof(h6) && host[0] == '[' && host[hl - 1] == ']' &&
		   (memcpy(h6, host + 1, hl - 2), h6[hl - 2] = 0,
		    inet_pton(AF_INET6, h6, &a6.sin6_addr) == 1)) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(port);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		return hr_error(HR_EINVAL,
				"'%s' is not a numeric IPv4 address or a bracketed IPv6 one "
				"(e.g. 127.0.0.1, [::1])",
				host);
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return hr_error(HR_ENOMEM, "out of memory");
	h->daemon = MHD_start_daemon(flags, port, NULL, NULL, handle, st, MHD_OPTION_SOCK_ADDR, sa,
				     MHD_OPTION_THREAD_POOL_SIZE, threads,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
				     MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				     MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_EXTERNAL_LOGGER,
				     mhd_log, NULL, MHD_OPTION_END);
	if (!h->daemon) {
		free(h);
		return hr_error(
			HR_EIO,
			"cannot listen on %s:%u (in use, or not an address of this machine)", host,
			port);
	}
	h->port = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
	*out = h;
	return 0;
}

uint16_t http_port(const struct http_server *h)
{
	return h->port;
}

void http_stop(struct http_server *h)
{
	if (!h)
		return;
	MHD_quiesce_daemon(h->daemon); /* no new connections */
	MHD_stop_daemon(h->daemon);    /* joins the pool: the requests in flight finish */
	free(h);
}
