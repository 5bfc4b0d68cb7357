/* npy.c - numpy .npy files (npy.h). */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

int npy_write(const char *out, enum npy_dtype dtype, const void *data, uint64_t rows, uint64_t cols)
{
	static const char *const descr[] = {"<f4", "<u4", "<u8"};
	static const size_t size[] = {4, 4, 8};
	char head[160], tmp[PATH_MAX];
	int dict = snprintf(head + 10, sizeof(head) - 10,
			    "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRIu64
			    ", %" PRIu64 "), }",
			    descr[dtype], rows, cols);
	size_t len = 10 + (size_t)dict + 1, pad = (64 - len % 64) % 64, hlen;
	FILE *f;
	int e = 0;

	/* magic, version 1.0, little-endian header length; header ends in '\n' */
	memcpy(head, "\x93NUMPY\x01\x00", 8);
	hlen = (size_t)dict + pad + 1;
	head[8] = (char)(hlen & 0xff);
	head[9] = (char)(hlen >> 8);
	memset(head + 10 + dict, ' ', pad);
	head[len + pad - 1] = '\n';
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", out, (long)getpid()) >= sizeof(tmp))
		return hr_error(HR_EINVAL, "path too long: '%s'", out);
	f = fopen(tmp, "wb");
	if (!f)
		return hr_error(HR_EIO, "cannot create '%s': %s", tmp, strerror(errno));
	if (fwrite(head, 1, len + pad, f) != len + pad ||
	    (rows * cols != 0 && fwrite(data, size[dtype], rows * cols, f) != rows * cols))
		e = errno ? errno : EIO;
	if (fclose(f) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, out) < 0)
		e = errno;
	if (e) {
		unlink(tmp);
		return hr_error(HR_EIO, "cannot write '%s': %s", out, strerror(e));
	}
	return 0;
}
