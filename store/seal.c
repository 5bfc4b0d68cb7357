#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/err.h"
#include "common/fsutil.h"

/*
 * LMDB's meta page (liblmdb mdb.c: MDB_page header, then MDB_meta), for the
 * 64-bit builds we run on (pgno_t and size_t are 8 bytes):
 *   10 mp_flags (u16, P_META 0x08)     16 mm_magic (u32, 0xBEEFC0DE)
 *   20 mm_version (u32, 1)             40 mm_psize = mm_dbs[FREE_DBI].md_pad (u32)
 *  136 mm_last_pg (u64)               144 mm_txnid (u64)
 * Pages 0 and 1 are the two meta pages; LMDB reads the page size from page
 * 0 and uses the meta with the larger txnid.  Little-endian like the host.
 */
#define META_FLAGS 10
#define META_MAGIC 16
#define META_VERSION 20
#define META_PSIZE 40
#define META_LAST_PG 136
#define META_TXNID 144
#define META_BYTES 152
#define P_META 0x08
#define MDB_MAGIC 0xBEEFC0DEu
#define MDB_DATA_VERSION 1
_Static_assert(sizeof(size_t) == 8, "the meta page offsets are those of 64-bit LMDB");

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static const char *file_kind(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" :
	       S_ISDIR(m)  ? "a directory" :
	       S_ISSOCK(m) ? "a socket" :
	       S_ISCHR(m)  ? "a character device" :
	       S_ISBLK(m)  ? "a block device" :
			     "not a regular file";
}

/*
 * Opens dir/name for reading without blocking (O_NONBLOCK: a FIFO with no
 * writer would block a plain open for ever) once stat says it is a regular
 * file, and checks again on the descriptor.  Returns the descriptor, or a
 * negative code; HR_ENOENT without a message when the file is absent.
 */
static int open_regular(const char *dir, const char *name, struct stat *st)
{
	char path[4096];
	int rc = path_join(path, sizeof(path), dir, name), fd;

	if (rc)
		return rc;
	if (stat(path, st) < 0) {
		if (errno == ENOENT)
			return HR_ENOENT;
		return hr_error(hr_errno_code(errno), "store '%s': cannot read '%s': %s", dir, path,
				strerror(errno));
	}
	if (!S_ISREG(st->st_mode))
		return hr_error(HR_ESTORE, "store '%s': '%s' is %s, not a regular file", dir, path,
				file_kind(st->st_mode));
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return hr_error(hr_errno_code(errno), "store '%s': cannot open '%s': %s", dir, path,
				strerror(errno));
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return hr_error(HR_ESTORE, "store '%s': '%s' is not a regular file", dir, path);
	}
	return fd;
}

/* Reads exactly n bytes at off, or fails naming the file. */
static int read_at(int fd, void *buf, size_t n, uint64_t off, const char *dir, const char *name)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return hr_error(HR_EIO, "store '%s': cannot read %s: %s", dir, name,
					strerror(errno));
		if (k == 0)
			return hr_error(HR_ESTORE, "store '%s': %s ends at byte %llu", dir, name,
					(unsigned long long)(off + done));
		done += (size_t)k;
	}
	return 0;
}

/* One meta page: valid magic, version and flags; its txnid and last page. */
static int read_meta(int fd, uint64_t off, int which, const char *dir, uint64_t *txnid,
		     uint64_t *last_pg, uint32_t *psize)
{
	unsigned char m[META_BYTES];
	int rc = read_at(fd, m, sizeof(m), off, dir, "data.mdb");

	if (rc)
		return rc;
	if (le(m + META_MAGIC, 4) != MDB_MAGIC || !(le(m + META_FLAGS, 2) & P_META))
		return hr_error(HR_ESTORE,
				"'%s' is not a hogrec store (data.mdb: meta page %d is not an "
				"LMDB meta page)",
				dir, which);
	if (le(m + META_VERSION, 4) != MDB_DATA_VERSION)
		return hr_error(HR_ESTORE,
				"store '%s': data.mdb: meta page %d has LMDB data version %u, "
				"not %d",
				dir, which, (unsigned)le(m + META_VERSION, 4), MDB_DATA_VERSION);
	*txnid = le(m + META_TXNID, 8);
	*last_pg = le(m + META_LAST_PG, 8);
	*psize = (uint32_t)le(m + META_PSIZE, 4);
	return 0;
}

/*
 * data.mdb holds every page its current meta page counts: LMDB maps the
 * file and would fault (SIGBUS) on a page past its end.
 */
static int check_meta_pages(int fd, uint64_t size, const char *dir)
{
	uint64_t t0, t1, last0, last1, last;
	uint32_t psize, ps1;
	int rc;

	if (size < META_BYTES)
		return hr_error(HR_ESTORE,
				"'%s' is not a hogrec store (data.mdb has %llu bytes, too few "
				"for an LMDB file)",
				dir, (unsigned long long)size);
	rc = read_meta(fd, 0, 0, dir, &t0, &last0, &psize);
	if (rc)
		return rc;
	if (psize < 512 || psize > 65536 || (psize & (psize - 1)))
		return hr_error(HR_ESTORE, "store '%s': data.mdb: meta page 0 has page size %u",
				dir, psize);
	if (size < (uint64_t)psize + META_BYTES)
		return hr_error(HR_ESTORE,
				"store '%s': data.mdb is truncated: %llu bytes, not even its two "
				"meta pages",
				dir, (unsigned long long)size);
	rc = read_meta(fd, psize, 1, dir, &t1, &last1, &ps1);
	if (rc)
		return rc;
	last = t1 > t0 ? last1 : last0;
	if (last >= (UINT64_MAX >> 17) || size < (last + 1) * psize)
		return hr_error(HR_ESTORE,
				"store '%s': data.mdb is truncated: %llu bytes, its meta page "
				"counts %llu pages of %u",
				dir, (unsigned long long)size, (unsigned long long)last + 1, psize);
	return 0;
}

static int crc_fd(int fd, const char *dir, const char *name, uint32_t *crc, uint64_t *size)
{
	const size_t chunk = (size_t)1 << 20;
	unsigned char *buf = malloc(chunk);
	uLong c = crc32(0L, Z_NULL, 0);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return hr_error(HR_ENOMEM, "out of memory checking store '%s'", dir);
	for (;;) {
		ssize_t k = pread(fd, buf, chunk, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = hr_error(HR_EIO, "store '%s': cannot read %s: %s", dir, name,
				      strerror(errno));
			break;
		}
		if (k == 0)
			break;
		c = crc32(c, buf, (uInt)k);
		off += (uint64_t)k;
	}
	free(buf);
	*crc = (uint32_t)c;
	*size = off;
	return rc;
}

int store_file_crc32(const char *path, uint32_t *crc, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc;
	struct stat st;

	if (fd < 0)
		return hr_error(HR_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hr_error(HR_EIO, "'%s' is not a regular file", path);
	}
	rc = crc_fd(fd, path, "it", crc, size);
	close(fd);
	return rc;
}

/* "hogrec-crc32 XXXXXXXX SIZE\n", exactly (docs/FORMAT.md). */
static int parse_seal(const char *text, size_t n, uint32_t *crc, uint64_t *size)
{
	static const char prefix[] = "hogrec-crc32 ";
	const size_t pl = sizeof(prefix) - 1;
	uint64_t v = 0;
	size_t i;

	if (n < pl + 8 + 3 || memcmp(text, prefix, pl) || text[n - 1] != '\n')
		return -1;
	*crc = 0;
	for (i = pl; i < pl + 8; i++) {
		char ch = text[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' :
			ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
						 -1;
		if (d < 0)
			return -1;
		*crc = *crc << 4 | (uint32_t)d;
	}
	if (text[i++] != ' ' || i >= n - 1)
		return -1;
	for (; i < n - 1; i++) {
		if (text[i] < '0' || text[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	*size = v;
	return 0;
}

static int read_seal(const char *dir, uint32_t *crc, uint64_t *size)
{
	char text[64];
	struct stat st;
	int fd = open_regular(dir, STORE_SEAL_FILE, &st), rc;

	if (fd == HR_ENOENT)
		return hr_error(HR_ESTORE,
				"store '%s' has no seal (%s: the crc32 bin/ingest writes beside "
				"data.mdb; stores made before it, or by another writer, lack it): "
				"make the store again with bin/ingest",
				dir, STORE_SEAL_FILE);
	if (fd < 0)
		return fd;
	rc = st.st_size <= 0 || st.st_size >= (off_t)sizeof(text) ?
		     HR_ESTORE :
		     read_at(fd, text, (size_t)st.st_size, 0, dir, STORE_SEAL_FILE);
	close(fd);
	if (rc == 0 && parse_seal(text, (size_t)st.st_size, crc, size) == 0)
		return 0;
	if (rc == HR_EIO)
		return rc;
	return hr_error(HR_ESTORE, "store '%s': %s is not 'hogrec-crc32 <8 hex digits> <size>'",
			dir, STORE_SEAL_FILE);
}

int store_seal_verify(const char *dir)
{
	struct stat st;
	uint32_t want_crc = 0, crc = 0;
	uint64_t want_size = 0, size = 0;
	int fd, rc;

	fd = open_regular(dir, "lock.mdb", &st); /* unused (MDB_NOLOCK), but never a FIFO */
	if (fd >= 0)
		close(fd);
	else if (fd != HR_ENOENT)
		return fd;
	fd = open_regular(dir, "data.mdb", &st);
	if (fd == HR_ENOENT)
		return hr_error(HR_ESTORE, "'%s' is not a hogrec store (no data.mdb)", dir);
	if (fd < 0)
		return fd;
	rc = check_meta_pages(fd, (uint64_t)st.st_size, dir);
	if (!rc)
		rc = read_seal(dir, &want_crc, &want_size);
	if (!rc && want_size != (uint64_t)st.st_size)
		rc = hr_error(HR_ESTORE,
			      "store '%s' is damaged: data.mdb has %llu bytes, its seal (%s) "
			      "says %llu",
			      dir, (unsigned long long)st.st_size, STORE_SEAL_FILE,
			      (unsigned long long)want_size);
	if (!rc)
		rc = crc_fd(fd, dir, "data.mdb", &crc, &size);
	if (!rc && (crc != want_crc || size != want_size))
		rc = hr_error(HR_ESTORE,
			      "store '%s' is damaged: data.mdb's crc32 is %08x, its seal (%s) "
			      "says %08x",
			      dir, crc, STORE_SEAL_FILE, want_crc);
	close(fd);
	return rc;
}

int store_seal_write(const char *dir)
{
	char data[4096], seal[4096], text[64];
	uint32_t crc;
	uint64_t size;
	int rc = path_join(data, sizeof(data), dir, "data.mdb");

	if (!rc)
		rc = path_join(seal, sizeof(seal), dir, STORE_SEAL_FILE);
	if (!rc)
		rc = store_file_crc32(data, &crc, &size);
	if (rc)
		return rc;
	int n = snprintf(text, sizeof(text), "hogrec-crc32 %08x %" PRIu64 "\n", crc, size);
	int fd = open(seal, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return hr_error(HR_EIO, "cannot create '%s': %s", seal, strerror(errno));
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0) {
		rc = hr_error(HR_EIO, "cannot write '%s': %s", seal, strerror(errno));
		close(fd);
		return rc;
	}
	if (close(fd) < 0)
		return hr_error(HR_EIO, "cannot write '%s': %s", seal, strerror(errno));
	return fsync_path(dir);
}
