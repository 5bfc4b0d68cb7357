/*
 * err.h - project-wide status codes and the per-thread error message.
 *
 * Library code returns an int: 0 on success, a negative HR_E* code on
 * failure.  The function that detects a failure records a human-readable
 * message with hr_error(), which also returns the code, so the usual idiom is
 *
 *     if (n < 0)
 *             return hr_error(HR_EPARSE, "%s:%zu: bad rating '%s'", f, line, s);
 *
 * Callers that only propagate a failure return the code unchanged; the
 * message stays.  Programs print hr_errmsg() and choose an exit status with
 * hr_exit_code().  Messages follow git's style: lowercase, no trailing full
 * stop, subjects quoted.
 *
 * Thread-safety: the message buffer is thread-local; each thread sees only
 * the messages it set.
 */
#ifndef HR_ERR_H
#define HR_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum hr_status {
	HR_OK = 0,
	HR_ENOMEM = -1,   /* allocation failed */
	HR_EIO = -2,      /* read/write/fsync/rename failed */
	HR_ENOENT = -3,   /* a required file or directory does not exist */
	HR_EPARSE = -4,   /* malformed input line or value */
	HR_EFORMAT = -5,  /* input format unknown or inconsistent */
	HR_EEXIST = -6,   /* output exists and overwriting was not allowed */
	HR_ESTORE = -7,   /* LMDB error, or not a hogrec store */
	HR_EINVAL = -8,   /* invalid argument or option value */
	HR_EVERSION = -9, /* store format version not supported */
	HR_ECANCEL = -10, /* interrupted (signal) */
	HR_EPERM = -11,   /* permission denied */
};

/*
 * Records a printf-style message for the calling thread; returns code.  An
 * argument may be hr_errmsg() (to add context to the current message).
 */
int hr_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "prefix: " (e.g. a file name). */
int hr_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message set by this thread, or hr_strerror(code) if none. */
const char *hr_errmsg(void);

/* Clears this thread's message. */
void hr_error_clear(void);

/* A short fixed description of a status code. */
const char *hr_strerror(int code);

/*
 * The status code for a failed system call's errno: HR_ENOENT, HR_EPERM
 * (EACCES, EPERM, EROFS), HR_ENOMEM, else HR_EIO (ENOSPC and EDQUOT
 * included: a full disk is an I/O error, not bad data).
 */
int hr_errno_code(int e);

/*
 * Exit status for a program that failed with code, following sysexits(3):
 * 65 data error, 66 missing input, 73 cannot create output, 74 I/O error,
 * 77 permission denied, 64 usage, 70 internal.
 */
int hr_exit_code(int code);

/* Programmer errors: abort with file:line.  Never used for bad input. */
#define HR_ASSERT(cond)                                                                      \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#endif
