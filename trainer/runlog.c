#include "runlog.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fspub.h"
#include "common/fsutil.h"

/* 1 when the line [s, s + n) is to be kept (see runlog.h). */
static int keep(const char *s, size_t n, int epoch)
{
	json_t *o = json_loadb(s, n, 0, NULL), *e;
	int k;

	if (!o)
		return 0;
	e = json_is_object(o) ? json_object_get(o, "epoch") : NULL;
	k = !json_is_integer(e) || json_integer_value(e) < epoch;
	json_decref(o);
	return k;
}

static int write_all(int fd, const char *s, size_t n, const char *path)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return hr_error(HR_EIO, "cannot write '%s': %s", path, strerror(errno));
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int runlog_keep_before(const char *path, int epoch, size_t *dropped)
{
	struct mapped_file f;
	struct fspub p;
	const char *s, *end;
	int rc;

	*dropped = 0;
	rc = mapped_file_open(&f, path);
	if (rc == HR_ENOENT) {
		hr_error_clear();
		return 0;
	}
	if (rc)
		return rc;
	if (f.len == 0) /* an empty file: data is NULL, nothing to keep or drop */
		goto out;
	end = f.data + f.len;
	/* First pass: anything to drop?  (Usually not: then nothing is written.) */
	for (s = f.data; s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (!nl || !keep(s, n, epoch)) /* no newline: torn by a kill */
			(*dropped)++;
		s += n + (nl != NULL);
	}
	if (*dropped == 0)
		goto out;
	rc = fspub_begin_file(&p, path, NULL);
	for (s = f.data; !rc && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (nl && keep(s, n, epoch))
			rc = write_all(p.fd, s, n + 1, p.tmp);
		s += n + (nl != NULL);
	}
	if (!rc)
		rc = fspub_commit(&p, FSPUB_REPLACE);
	fspub_abort(&p);
out:
	mapped_file_release(&f);
	return rc;
}
