#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static const char *log_prog = "hogrec";
static _Atomic int log_level = LOG_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *prog, enum log_level level)
{
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
	n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, level_names[level]);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line so concurrent threads do not interleave lines. */
	fputs(line, stderr);
	fputc('\n', stderr);
}
