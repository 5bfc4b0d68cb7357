/*
 * log.h - leveled logging to stderr, one line per message.
 *
 * Lines look like "ingest: info: read 1000209 ratings"; under systemd with
 * stderr connected to the journal (JOURNAL_STREAM names stderr's device and
 * inode) each line starts
 * with its syslog priority, "<6>ingest: info: ...", which journald strips
 * and records as the priority.  The level and program name are process-wide and set once at
 * start-up, before threads exist.
 */
#ifndef HR_LOG_H
#define HR_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
