/* server.c - bin/recommend --serve: store, watcher, HTTP, signals, systemd (server.h). */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "http.h"
#include "recommender.h"
#include "reload.h"
#include "swap.h"
#include "trainer/notify.h"

/* The step now served (0: none); the model's name into model (cap bytes). */
static uint64_t current_step(struct swap *s, char *model, size_t cap)
{
	struct swap_item *it = swap_acquire(s);
	uint64_t step = 0;

	model[0] = 0;
	if (it) {
		step = recommender_step(recommender_of(it));
		snprintf(model, cap, "%s", recommender_model(recommender_of(it)));
	}
	swap_release(it);
	return step;
}

/* Waits for SIGINT/SIGTERM, keeping systemd informed; returns the signal. */
static int main_loop(struct swap *s, const sigset_t *set, const char *where)
{
	int ready = 0;
	uint64_t shown = UINT64_MAX;

	for (;;) {
		struct timespec tick = {1, 0};
		char model[CKPT_MODEL_MAX];
		uint64_t step = current_step(s, model, sizeof(model));
		int sig;
		if (step != shown && model[0]) {
			notify_status("serving %s step %llu on %s", model, (unsigned long long)step,
				      where);
			if (!ready++)
				notify_ready();
			shown = step;
		}
		notify_watchdog();
		sig = sigtimedwait(set, NULL, &tick);
		if (sig > 0)
			return sig;
		if (errno != EAGAIN && errno != EINTR) {
			log_error("sigtimedwait: %s", strerror(errno));
			return SIGTERM;
		}
	}
}

int server_run(const struct server_opts *o)
{
	struct serve_data d;
	struct swap s;
	struct reloader rl;
	struct http_state hs = {0};
	struct http_server *h = NULL;
	sigset_t set;
	char where[96];
	int rc, sig, status = 0, usage = 0;

	/* before any thread exists, so that every thread inherits the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	swap_init(&s);
	rc = serve_data_open(&d, o->data);
	if (rc) {
		log_error("%s", hr_errmsg());
		swap_release_all(&s);
		return hr_exit_code(rc);
	}
	rc = reloader_open(&rl, o->ckpt_dir, &s, &d);
	if (!rc) {
		rc = reloader_load_latest(&rl);
		if (rc ==
		    HR_ENOENT) { /* a directory without checkpoints yet: the watch loads the first */
			log_info("no checkpoint in '%s' yet: waiting for the first", o->ckpt_dir);
			hr_error_clear();
			rc = 0;
		}
	}
	if (!rc)
		rc = reloader_start(&rl);
	if (!rc) {
		hs.swap = &s;
		hs.d = &d;
		hs.rl = &rl;
		atomic_init(&hs.requests, 0);
		atomic_init(&hs.errors, 0);
		rc = http_start(&h, o->host, o->port, o->threads, &hs);
		if (rc ==
		    HR_EINVAL) /* the address: bad usage, not a checkpoint that does not fit */
			rc = HR_EPARSE, usage = 1;
	}
	if (rc) {
		log_error("%s", hr_errmsg());
		status = usage ? 64 : rc == HR_EINVAL ? 65 : hr_exit_code(rc);
	} else {
		snprintf(where, sizeof(where), "%s:%u", o->host, http_port(h));
		printf("listening on %s\n", where);
		fflush(stdout);
		log_info("listening on %s (%u threads), watching '%s'", where, o->threads,
			 o->ckpt_dir);
		sig = main_loop(&s, &set, where);
		notify_stopping();
		log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	}
	http_stop(h);       /* the requests in flight are answered first */
	reloader_stop(&rl); /* then no reload can start */
	swap_release_all(&s);
	serve_data_close(&d);
	return status;
}
