/* reload.c - the checkpoint watcher thread and its swaps (reload.h). */
#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

int reloader_open(struct reloader *rl, const char *dir, struct swap *s, const struct serve_data *d)
{
	int rc;

	memset(rl, 0, sizeof(*rl));
	rl->stop[0] = rl->stop[1] = -1;
	rl->swap = s;
	rl->d = d;
	atomic_init(&rl->reloads, 0);
	atomic_init(&rl->failures, 0);
	atomic_init(&rl->watching, 0);
	if ((size_t)snprintf(rl->dir, sizeof(rl->dir), "%s", dir) >= sizeof(rl->dir))
		return hr_error(HR_EINVAL, "path too long: '%s'", dir);
	if (pipe2(rl->stop, O_CLOEXEC) < 0)
		return hr_error(HR_EIO, "cannot make a pipe: %s", strerror(errno));
	rc = ckpt_watch_open(&rl->w, dir);
	if (rc) {
		close(rl->stop[0]);
		close(rl->stop[1]);
		rl->stop[0] = rl->stop[1] = -1;
	}
	return rc;
}

/* Loads c and swaps it in; 0 or recommender_load's error (nothing swapped). */
static int swap_in(struct reloader *rl, const struct ckpt *c)
{
	struct recommender *r;
	int rc = recommender_load(&r, rl->d, c);

	if (rc)
		return rc;
	swap_publish(rl->swap, recommender_item(r));
	log_info("serving model %s, step %llu, from '%s'", recommender_model(r),
		 (unsigned long long)recommender_step(r), recommender_path(r));
	return 0;
}

int reloader_load_latest(struct reloader *rl)
{
	char path[CKPT_PATH_MAX];
	struct ckpt *c;
	int rc = ckpt_latest(rl->dir, path, sizeof(path));

	if (rc)
		return rc;
	rc = ckpt_open(&c, path);
	if (!rc) {
		rc = swap_in(rl, c);
		ckpt_close(c);
	}
	return rc;
}

/* ckpt_watch_fn: every verified checkpoint the watch reports. */
static int on_checkpoint(const char *path, const struct ckpt *c, void *ctx)
{
	struct reloader *rl = ctx;
	int rc = swap_in(rl, c);

	if (rc == HR_ENOMEM)
		log_error("%s; keeping the current model", hr_errmsg());
	else if (rc)
		log_warn("%s; skipping '%s', keeping the current model", hr_errmsg(), path);
	if (rc)
		atomic_fetch_add_explicit(&rl->failures, 1,
					  memory_order_relaxed); /* counters only */
	else
		atomic_fetch_add_explicit(&rl->reloads, 1, memory_order_relaxed);
	return 0; /* never stop watching for a bad checkpoint */
}

static void *watch_main(void *arg)
{
	struct reloader *rl = arg;
	int rc = ckpt_watch_run(rl->w, rl->stop[0], on_checkpoint, rl);

	if (rc)
		log_error("%s; no more reloads: the current model keeps serving", hr_errmsg());
	atomic_store_explicit(&rl->watching, 0, memory_order_relaxed); /* a gauge only */
	return NULL;
}

int reloader_start(struct reloader *rl)
{
	int e;

	atomic_store_explicit(&rl->watching, 1, memory_order_relaxed);
	e = pthread_create(&rl->th, NULL, watch_main, rl);
	if (e) {
		atomic_store_explicit(&rl->watching, 0, memory_order_relaxed);
		return hr_error(HR_EIO, "cannot start the watcher thread: %s", strerror(e));
	}
	rl->running = 1;
	return 0;
}

void reloader_stop(struct reloader *rl)
{
	if (rl->running) {
		ssize_t n;
		do
			n = write(rl->stop[1], "x", 1);
		while (n < 0 && errno == EINTR);
		pthread_join(rl->th, NULL);
		rl->running = 0;
	}
	ckpt_watch_close(rl->w);
	rl->w = NULL;
	if (rl->stop[0] >= 0) {
		close(rl->stop[0]);
		close(rl->stop[1]);
	}
	rl->stop[0] = rl->stop[1] = -1;
}
