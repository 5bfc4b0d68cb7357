/*
 * ckpt_read.c - reading and validating a checkpoint file (ckpt_open and
 * its accessors).
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

struct view {
	const char *name; /* owned by root */
	uint64_t rows, cols, begin, end;
};

struct ckpt {
	char *path;
	struct mapped_file map;
	json_t *root;
	const unsigned char *payload; /* 4-byte aligned: the map, or copy */
	void *copy;                   /* when the map's payload is misaligned */
	size_t payload_len;
	struct ckpt_info info;
	const char *extra;
	int n;
	struct view *t; /* n, in offset order */
};

/* An EFORMAT message "'path': ..." */
static int bad(const struct ckpt *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const struct ckpt *c, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hr_error(HR_EFORMAT, "'%s': %s", c->path, msg);
}

/*
 * Maps c->path read-only.  The open does not block (O_NONBLOCK: a FIFO
 * would wait for a writer), and anything but a regular file is refused
 * before it is read.
 */
static int map_file(struct ckpt *c)
{
	struct stat st;
	int fd = open(c->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), e;
	void *p;

	if (fd < 0)
		return hr_error(errno == ENOENT || errno == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot open '%s': %s", c->path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return hr_error(HR_EIO, "cannot read '%s': %s", c->path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return hr_error(HR_EIO, "cannot read '%s': not a regular file (%s)", c->path,
				S_ISDIR(st.st_mode)  ? "a directory" :
				S_ISFIFO(st.st_mode) ? "a FIFO" :
				S_ISSOCK(st.st_mode) ? "a socket" :
				S_ISCHR(st.st_mode)  ? "a character device" :
				S_ISBLK(st.st_mode)  ? "a block device" :
						       "not a file");
	}
	if (st.st_size > 0) {
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			e = errno;
			close(fd);
			return hr_error(HR_EIO, "cannot map '%s': %s", c->path, strerror(e));
		}
		madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
		c->map.data = p;
		c->map.len = (size_t)st.st_size;
	}
	close(fd);
	return 0;
}

static int parse_layout(struct ckpt *c)
{
	const unsigned char *b = (const unsigned char *)c->map.data;
	size_t len = c->map.len;
	uint64_t nh = 0;
	json_error_t je;

	if (len < 8)
		return bad(c, "truncated: %zu bytes, less than the 8-byte header length", len);
	for (int i = 7; i >= 0; i--)
		nh = nh << 8 | b[i];
	if (nh == 0)
		return bad(c, "header length is 0");
	if (nh > len - 8) {
		/* Not a cut-off checkpoint: 8 arbitrary bytes make a huge length. */
		if (nh > HEADER_MAX)
			return bad(c,
				   "not a safetensors file: its header length %" PRIu64
				   " is larger than the file (%zu bytes)",
				   nh, len);
		return bad(c,
			   "truncated: header says %" PRIu64
			   " bytes, file has %zu after the length",
			   nh, len - 8);
	}
	if (nh > HEADER_MAX)
		return bad(c, "header length %" PRIu64 " is over the %llu-byte limit", nh,
			   HEADER_MAX);
	if (b[8] != '{')
		return bad(c, "header does not start with '{': not a safetensors file");
	c->root = json_loadb((const char *)b + 8, (size_t)nh, JSON_REJECT_DUPLICATES, &je);
	if (!c->root)
		return bad(c, "header is not valid JSON: %s (byte %d)", je.text, je.position);
	if (!json_is_object(c->root))
		return bad(c, "header is not a JSON object");
	c->info.header_bytes = nh;
	c->payload = b + 8 + nh;
	c->payload_len = len - 8 - (size_t)nh;
	c->info.payload_bytes = c->payload_len;
	c->info.file_bytes = len;
	return 0;
}

static const char *meta_str(const struct ckpt *c, const json_t *meta, const char *key, int *rc)
{
	const json_t *v = json_object_get(meta, key);
	const char *s = json_string_value(v);

	if (!s && !*rc)
		*rc = bad(c, "metadata has no '%s'", key);
	else if (s && strlen(s) != json_string_length(v) && !*rc)
		*rc = bad(c, "metadata '%s' holds a NUL character", key);
	return *rc ? NULL : s;
}

/* A decimal string from 0 to max. */
static int meta_u64(const struct ckpt *c, const json_t *meta, const char *key, uint64_t max,
		    uint64_t *out)
{
	int rc = 0;
	const char *s = meta_str(c, meta, key, &rc);

	if (rc)
		return rc;
	if (ckpt_parse_dec(s, strlen(s), out))
		return bad(c, "metadata '%s' is not an unsigned integer: '%.40s'", key, s);
	if (*out > max)
		return bad(c, "metadata '%s' is %" PRIu64 ", above its limit %" PRIu64, key, *out,
			   max);
	return 0;
}

/* The model name and schema hash: bounded, no control characters. */
static int meta_names(struct ckpt *c, const json_t *meta)
{
	const char *s;
	int rc = 0;

	if (!ckpt_short_text(json_object_get(meta, "model"), CKPT_MODEL_MAX - 1))
		return bad(c,
			   "metadata 'model' is not a name of 1 to %d bytes without control "
			   "characters",
			   CKPT_MODEL_MAX - 1);
	memcpy(c->info.model, json_string_value(json_object_get(meta, "model")),
	       json_string_length(json_object_get(meta, "model")) + 1);
	s = meta_str(c, meta, "schema_hash", &rc);
	if (rc)
		return rc;
	if (strlen(s) >= CKPT_HASH_MAX || strspn(s, "0123456789abcdefABCDEF") != strlen(s))
		return bad(c, "metadata 'schema_hash' is not at most %d hex digits",
			   CKPT_HASH_MAX - 1);
	memcpy(c->info.schema_hash, s, strlen(s) + 1);
	return 0;
}

static int parse_meta(struct ckpt *c)
{
	const json_t *meta = json_object_get(c->root, META);
	const char *key, *s;
	json_t *v;
	json_error_t je;
	char why[256];
	uint64_t u;
	int rc = 0;

	if (!meta)
		return bad(c, "no " META " in the header: not a hogrec checkpoint");
	if (!json_is_object(meta))
		return bad(c, META " is not an object");
	json_object_foreach((json_t *)meta, key, v) if (!json_is_string(v)) return bad(
		c, META " value '%s' is not a string", key);
	s = meta_str(c, meta, "format", &rc);
	if (rc)
		return rc;
	if (strcmp(s, CKPT_FORMAT))
		return bad(c, "not a hogrec checkpoint (format '%.40s')", s);
	s = meta_str(c, meta, "version", &rc);
	if (rc)
		return rc;
	if (strcmp(s, "1") && strcmp(s, "2"))
		return hr_error(
			HR_EVERSION,
			"'%s': checkpoint format version '%.40s' is not supported (this build reads "
			"versions 1 and 2)",
			c->path, s);
	c->info.version = (unsigned)(s[0] - '0');
	if ((rc = meta_names(c, meta)) != 0)
		return rc;
	if ((rc = meta_u64(c, meta, "epoch", CKPT_EPOCH_MAX, &c->info.epoch)) ||
	    (rc = meta_u64(c, meta, "step", CKPT_COUNT_MAX, &c->info.step)) ||
	    (rc = meta_u64(c, meta, "samples", CKPT_COUNT_MAX, &c->info.samples)) ||
	    (rc = meta_u64(c, meta, "created", (uint64_t)CKPT_CREATED_MAX, &u)))
		return rc;
	c->info.created = (int64_t)u;
	s = meta_str(c, meta, "crc32", &rc);
	if (rc)
		return rc;
	if (strlen(s) != 8 || strspn(s, "0123456789abcdefABCDEF") != 8)
		return bad(c, "metadata 'crc32' is not 8 hex digits: '%.40s'", s);
	c->info.crc32 = (uint32_t)strtoul(s, NULL, 16);
	c->extra = meta_str(c, meta, "hogrec", &rc);
	if (rc)
		return rc;
	v = json_loads(c->extra, JSON_DECODE_INT_AS_REAL, &je);
	if (!v)
		return bad(c, "metadata 'hogrec' is not valid JSON: %s (byte %d)", je.text,
			   je.position);
	if (!json_is_object(v)) {
		json_decref(v);
		return bad(c, "metadata 'hogrec' is not a JSON object");
	}
	rc = ckpt_check_hogrec(v, &c->info, why, sizeof(why));
	json_decref(v);
	if (rc)
		return bad(c, "metadata 'hogrec': %s", why);
	/* A trainer's checkpoint (it has a resume position) counts epochs from 1. */
	if (c->info.has_next_batch && c->info.epoch == 0)
		return bad(c, "metadata 'epoch' is 0, but a trainer's epochs start at 1");
	return 0;
}

/* A non-negative JSON integer pair, e.g. shape or data_offsets. */
static int int_pair(const json_t *a, uint64_t *x, uint64_t *y)
{
	const json_t *u = json_array_get(a, 0), *v = json_array_get(a, 1);

	if (!json_is_array(a) || json_array_size(a) != 2 || !json_is_integer(u) ||
	    !json_is_integer(v) || json_integer_value(u) < 0 || json_integer_value(v) < 0)
		return -1;
	*x = (uint64_t)json_integer_value(u);
	*y = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_entry(struct ckpt *c, const char *name, const json_t *e, struct view *t)
{
	const char *key, *dtype;
	json_t *v;
	uint64_t bytes;

	if (!json_is_object(e))
		return bad(c, "tensor '%s': entry is not an object", name);
	json_object_foreach(
		(json_t *)e, key,
		v) if (strcmp(key, "dtype") && strcmp(key, "shape") &&
		       strcmp(key, "data_offsets")) return bad(c,
							       "tensor '%s': unexpected key '%s'",
							       name, key);
	dtype = json_string_value(json_object_get(e, "dtype"));
	if (!dtype)
		return bad(c, "tensor '%s': no dtype", name);
	if (strcmp(dtype, "F32"))
		return bad(c,
			   "tensor '%s': dtype '%s' is not supported (hogrec checkpoints hold F32)",
			   name, dtype);
	v = json_object_get(e, "shape");
	if (int_pair(v, &t->rows, &t->cols))
		return bad(c, "tensor '%s': shape is not [rows, cols] (2-D, non-negative)", name);
	if (int_pair(json_object_get(e, "data_offsets"), &t->begin, &t->end))
		return bad(c, "tensor '%s': data_offsets is not [begin, end]", name);
	if (t->begin > t->end)
		return bad(c,
			   "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
			   "] end before they begin",
			   name, t->begin, t->end);
	if (t->cols != 0 && t->rows > UINT64_MAX / 4 / t->cols)
		return bad(c, "tensor '%s': shape is too large", name);
	bytes = t->rows * t->cols * 4;
	if (t->end - t->begin != bytes)
		return bad(c,
			   "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
			   " bytes, shape [%" PRIu64 ", %" PRIu64 "] of F32 needs %" PRIu64,
			   name, t->begin, t->end, t->end - t->begin, t->rows, t->cols, bytes);
	t->name = name;
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct view *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

static int parse_tensors(struct ckpt *c)
{
	const char *key;
	json_t *v;
	uint64_t pos = 0;
	size_t n = json_object_size(c->root) - 1; /* minus __metadata__ */
	int rc;

	if (n > INT_MAX)
		return bad(c, "too many tensors");
	c->t = calloc(n ? n : 1, sizeof(*c->t));
	if (!c->t)
		return hr_error(HR_ENOMEM, "out of memory reading '%s'", c->path);
	json_object_foreach(c->root, key, v)
	{
		if (!strcmp(key, META))
			continue;
		rc = parse_entry(c, key, v, &c->t[c->n]);
		if (rc)
			return rc;
		c->n++;
	}
	qsort(c->t, (size_t)c->n, sizeof(*c->t), by_offset);
	for (int i = 0; i < c->n; i++) {
		if (c->t[i].begin < pos)
			return bad(c, "tensors '%s' and '%s' overlap", c->t[i - 1].name,
				   c->t[i].name);
		if (c->t[i].begin > pos)
			return bad(c,
				   "tensor data bytes %" PRIu64 "..%" PRIu64 " belong to no tensor",
				   pos, c->t[i].begin);
		pos = c->t[i].end;
	}
	if (pos > c->payload_len)
		return bad(c,
			   "truncated: header says %" PRIu64 " bytes of tensor data, file has %zu",
			   pos, c->payload_len);
	if (pos < c->payload_len)
		return bad(c, "%zu bytes after the last tensor's data",
			   (size_t)(c->payload_len - pos));
	return 0;
}

/*
 * Version 1: the crc32 of the payload.  Version 2: of the whole file with
 * the crc's own 8 digits (after the one CRC_KEY of the header) read as
 * CRC_ZERO.
 */
static int check_crc(struct ckpt *c)
{
	const Bytef *b = (const Bytef *)c->map.data;
	uLong crc = crc32_z(0, Z_NULL, 0);
	size_t at = 0, nh = (size_t)c->info.header_bytes;

	if (c->info.version == 1) {
		crc = crc32_z(crc, c->payload, c->payload_len);
	} else {
		if (ckpt_crc_digits(c->map.data + 8, nh, &at) != 1 || at + 9 > nh ||
		    c->map.data[8 + at + 8] != '"')
			return bad(c, "the header does not hold '" CRC_KEY
				      "' exactly once, followed by the 8 digits "
				      "(version 2 checksums the file with those as " CRC_ZERO ")");
		at += 8;
		crc = crc32_z(crc, b, at);
		crc = crc32_z(crc, (const Bytef *)CRC_ZERO, 8);
		crc = crc32_z(crc, b + at + 8, c->map.len - at - 8);
	}
	if ((uint32_t)crc != c->info.crc32)
		return bad(c, "checksum mismatch: header says %08" PRIx32 ", %s has %08" PRIx32,
			   c->info.crc32, c->info.version == 1 ? "tensor data" : "the file",
			   (uint32_t)crc);
	return 0;
}

/* Every float of every tensor is finite. */
static int check_finite(const struct ckpt *c)
{
	for (int i = 0; i < c->n; i++) {
		const struct view *t = &c->t[i];
		const unsigned char *p = c->payload + t->begin;
		uint64_t n = t->rows * t->cols, k = ckpt_first_nonfinite(p, n);
		if (k < n)
			return bad(c,
				   "tensor '%s' holds a non-finite value (%s) at index %" PRIu64
				   " (row %" PRIu64 ", col %" PRIu64 ")",
				   t->name, ckpt_nonfinite_name(p + 4 * k), k, k / t->cols,
				   k % t->cols);
	}
	return 0;
}

int ckpt_open(struct ckpt **out, const char *path)
{
	struct ckpt *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c || !(c->path = strdup(path))) {
		free(c);
		return hr_error(HR_ENOMEM, "out of memory opening '%s'", path);
	}
	rc = map_file(c);
	if (!rc)
		rc = parse_layout(c);
	if (!rc)
		rc = parse_meta(c);
	if (!rc)
		rc = parse_tensors(c);
	if (!rc)
		rc = check_crc(c);
	if (rc)
		goto fail;
	if ((uintptr_t)c->payload % _Alignof(float)) {
		/* Another writer's unpadded header: give floats their alignment. */
		c->copy = malloc(c->payload_len ? c->payload_len : 1);
		if (!c->copy) {
			rc = hr_error(HR_ENOMEM, "out of memory reading '%s'", path);
			goto fail;
		}
		memcpy(c->copy, c->payload, c->payload_len);
		c->payload = c->copy;
	}
	rc = check_finite(c);
	if (rc)
		goto fail;
	if (c->info.version == 1)
		log_info("'%s' is a version 1 checkpoint: its metadata is not covered by its "
			 "checksum (only range-checked)",
			 path);
	*out = c;
	return 0;
fail:
	ckpt_close(c);
	return rc;
}

void ckpt_close(struct ckpt *c)
{
	if (!c)
		return;
	free(c->t);
	free(c->copy);
	json_decref(c->root);
	if (c->map.data)
		munmap((void *)c->map.data, c->map.len);
	free(c->path);
	free(c);
}

const char *ckpt_path(const struct ckpt *c)
{
	return c->path;
}

int ckpt_ntensors(const struct ckpt *c)
{
	return c->n;
}

const char *ckpt_tensor_name(const struct ckpt *c, int i)
{
	HR_ASSERT(i >= 0 && i < c->n);
	return c->t[i].name;
}

const float *ckpt_tensor_at(const struct ckpt *c, int i, uint64_t *rows, uint64_t *cols)
{
	HR_ASSERT(i >= 0 && i < c->n);
	if (rows)
		*rows = c->t[i].rows;
	if (cols)
		*cols = c->t[i].cols;
	return (const float *)(const void *)(c->payload + c->t[i].begin);
}

const float *ckpt_tensor(const struct ckpt *c, const char *name, uint64_t *rows, uint64_t *cols)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->t[i].name, name))
			return ckpt_tensor_at(c, i, rows, cols);
	return NULL;
}

const struct ckpt_info *ckpt_get_info(const struct ckpt *c)
{
	return &c->info;
}

const char *ckpt_extra_json(const struct ckpt *c)
{
	return c->extra;
}
