#include "notify.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "common/progress.h"

static double watchdog_every = -1; /* seconds between pings; 0 = off; -1 = not asked yet */
static double watchdog_last;

void notify_ready(void)
{
	sd_notify(0, "READY=1");
}

void notify_status(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", msg);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void notify_watchdog(void)
{
	double now = now_seconds();

	if (watchdog_every < 0) {
		uint64_t usec = 0;
		watchdog_every = sd_watchdog_enabled(0, &usec) > 0 ? (double)usec * 1e-6 / 2 : 0;
	}
	if (watchdog_every > 0 && now - watchdog_last >= watchdog_every) {
		sd_notify(0, "WATCHDOG=1");
		watchdog_last = now;
	}
}
