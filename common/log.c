#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *log_prog = "hogrec";
static _Atomic int log_level = LOG_INFO;
static int log_journal; /* stderr is journald's: prefix syslog priorities */

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *prog, enum log_level level)
{
	/* systemd sets JOURNAL_STREAM for a service whose stderr is the journal;
	 * "<N>" prefixes then carry each line's priority (sd-daemon(3)). */
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;
	log_journal = js && sscanf(js, "%lu:%lu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
		      (unsigned long)st.st_dev == dev && (unsigned long)st.st_ino == ino;
	log_prog = prog;
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	static const int syslog_prio[] = {3, 4, 6, 7}; /* err, warning, info, debug */
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: %s: ", syslog_prio[level], log_prog,
			     level_names[level]);
	else
		n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, level_names[level]);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line so concurrent threads do not interleave lines. */
	fputs(line, stderr);
	fputc('\n', stderr);
}
