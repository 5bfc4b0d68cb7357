/*
 * ckpt_watch.c - watching a checkpoint directory (inotify) for newly
 * published checkpoints.
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

struct ckpt_watch {
	int fd;
	char dir[PATH_MAX];
	uint64_t max_step; /* highest step reported (overflow rescans) */
	int any;
};

int ckpt_watch_open(struct ckpt_watch **out, const char *dir)
{
	struct ckpt_watch *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return hr_error(HR_ENOMEM, "out of memory watching '%s'", dir);
	if ((size_t)snprintf(w->dir, sizeof(w->dir), "%s", dir) >= sizeof(w->dir)) {
		free(w);
		return hr_error(HR_EINVAL, "path too long: '%s'", dir);
	}
	w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->fd < 0) {
		free(w);
		return hr_error(HR_EIO, "cannot watch '%s': inotify: %s", dir, strerror(errno));
	}
	if (inotify_add_watch(w->fd, dir,
			      IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		int e = errno;
		close(w->fd);
		free(w);
		return hr_error(e == ENOENT || e == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot watch '%s': %s", dir, strerror(e));
	}
	*out = w;
	return 0;
}

void ckpt_watch_close(struct ckpt_watch *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w);
}

/* Opens name and hands it to fn; fn's code, or 0 after a skipped file. */
static int announce(struct ckpt_watch *w, const char *name, uint64_t step, ckpt_watch_fn fn,
		    void *ctx)
{
	char path[PATH_MAX];
	struct ckpt *c;
	int rc;

	if (!w->any || step > w->max_step)
		w->max_step = step;
	w->any = 1;
	if (path_join(path, sizeof(path), w->dir, name))
		return 0;
	rc = ckpt_open(&c, path);
	if (rc == HR_ENOENT) {
		log_warn("'%s' was removed before it could be read", path);
		return 0;
	}
	if (rc == HR_ENOMEM)
		return rc;
	if (rc) {
		log_warn("%s; skipping it", hr_errmsg());
		return 0;
	}
	rc = fn(path, c, ctx);
	ckpt_close(c);
	return rc;
}

static int rescan(struct ckpt_watch *w, ckpt_watch_fn fn, void *ctx)
{
	struct ckpt_entry *v;
	size_t n;
	int rc, any = w->any;
	uint64_t floor = w->max_step;

	log_warn("events on '%s' were lost (inotify queue overflow); rescanning", w->dir);
	rc = ckpt_list(w->dir, &v, &n);
	for (size_t i = 0; !rc && i < n; i++)
		if (!any || v[i].step > floor)
			rc = announce(w, v[i].name, v[i].step, fn, ctx);
	free(v);
	return rc;
}

int ckpt_watch_run(struct ckpt_watch *w, int stop_fd, ckpt_watch_fn fn, void *ctx)
{
	_Alignas(struct inotify_event) char buf[64 * 1024];

	for (;;) {
		struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN},
				      {.fd = stop_fd, .events = POLLIN}};
		nfds_t np = stop_fd >= 0 ? 2 : 1;
		ssize_t len;

		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return hr_error(HR_EIO, "cannot watch '%s': poll: %s", w->dir,
					strerror(errno));
		}
		if (np == 2 && p[1].revents)
			return 0;
		if (!p[0].revents)
			continue;
		len = read(w->fd, buf, sizeof(buf));
		if (len < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return hr_error(HR_EIO, "cannot watch '%s': read: %s", w->dir,
					strerror(errno));
		}
		for (char *q = buf; q < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)q;
			uint64_t step;
			int rc = 0;
			q += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				rc = rescan(w, fn, ctx);
			else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				return hr_error(HR_ENOENT,
						"'%s' was removed or moved while watched", w->dir);
			else if ((ev->mask & IN_MOVED_TO) && ev->len &&
				 ckpt_parse_name(ev->name, &step))
				rc = announce(w, ev->name, step, fn, ctx);
			if (rc)
				return rc > 0 ? 0 : rc;
		}
	}
}
