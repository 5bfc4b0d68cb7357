#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#define HR_ERRMSG_MAX 1024

static _Thread_local char errmsg[HR_ERRMSG_MAX];
static _Thread_local int errcode;

int hr_error(int code, const char *fmt, ...)
{
	char msg[HR_ERRMSG_MAX];
	va_list ap;

	/* Through a copy: an argument may be hr_errmsg() itself (adding context). */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(errmsg, msg, sizeof(errmsg));
	errcode = code;
	return code;
}

int hr_error_prefix(int code, const char *fmt, ...)
{
	char prefix[HR_ERRMSG_MAX], old[HR_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (errcode == 0 || errmsg[0] == '\0')
		snprintf(old, sizeof(old), "%s", hr_strerror(code));
	else
		memcpy(old, errmsg, sizeof(old));
	/* Both parts fit the buffer alone; the joined message may be cut. */
	size_t n = strnlen(prefix, sizeof(errmsg) - 3);
	memcpy(errmsg, prefix, n);
	memcpy(errmsg + n, ": ", 2);
	n += 2;
	size_t m = strnlen(old, sizeof(errmsg) - n - 1);
	memcpy(errmsg + n, old, m);
	errmsg[n + m] = '\0';
	errcode = code;
	return code;
}

const char *hr_errmsg(void)
{
	if (errmsg[0] == '\0')
		return hr_strerror(errcode);
	return errmsg;
}

void hr_error_clear(void)
{
	errmsg[0] = '\0';
	errcode = 0;
}

const char *hr_strerror(int code)
{
	switch (code) {
	case HR_OK: return "success";
	case HR_ENOMEM: return "out of memory";
	case HR_EIO: return "input/output error";
	case HR_ENOENT: return "no such file or directory";
	case HR_EPARSE: return "malformed input";
	case HR_EFORMAT: return "unknown or inconsistent input format";
	case HR_EEXIST: return "output already exists";
	case HR_ESTORE: return "store error";
	case HR_EINVAL: return "invalid argument";
	case HR_EVERSION: return "unsupported store format version";
	case HR_ECANCEL: return "interrupted";
	case HR_EPERM: return "permission denied";
	}
	return "unknown error";
}

int hr_errno_code(int e)
{
	switch (e) {
	case ENOENT: return HR_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS: return HR_EPERM;
	case ENOMEM: return HR_ENOMEM;
	}
	return HR_EIO;
}

int hr_exit_code(int code)
{
	switch (code) {
	case HR_OK: return 0;
	case HR_EPARSE:
	case HR_EFORMAT:
	case HR_EVERSION:
	case HR_ESTORE: return 65;
	case HR_ENOENT: return 66;
	case HR_EEXIST: return 73;
	case HR_EIO: return 74;
	case HR_EINVAL: return 64;
	case HR_ECANCEL: return 130;
	case HR_EPERM: return 77;
	}
	return 70;
}
