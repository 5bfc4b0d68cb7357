/*
 * notify.h - telling systemd how the trainer is doing (Type=notify).
 *
 * Thin wrappers over libsystemd's sd_notify: READY=1 once the store and
 * model are loaded, STATUS= lines with epoch, step and throughput,
 * WATCHDOG=1 while the main loop is alive (only when the unit sets
 * WatchdogSec, at half its interval), STOPPING=1 when a signal starts the
 * clean shutdown.  Every call is a cheap no-op when NOTIFY_SOCKET is not
 * set (not under systemd).  Main thread only.
 */
#ifndef HR_NOTIFY_H
#define HR_NOTIFY_H

void notify_ready(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_stopping(void);
/* Sends WATCHDOG=1 if the watchdog is on and half its interval has passed. */
void notify_watchdog(void);

#endif
