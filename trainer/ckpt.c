/*
 * Checkpoint files (safetensors + hogrec metadata): writing and publishing,
 * reading and validating, the directory (latest, retention) and watching.
 * The format is specified in docs/FORMAT.md ("Checkpoints").
 */
#include "ckpt.h"

#include <dirent.h>
#include <float.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/fspub.h"
#include "common/fsutil.h"
#include "common/log.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoints hold little-endian floats; a big-endian port must byte-swap them"
#endif

/* The reference safetensors reader refuses larger headers; so do we. */
#define HEADER_MAX 100000000ULL
/* Tensor bytes are copied through a buffer of this size (see ckpt_save). */
#define CHUNK ((size_t)1 << 20)
#define META "__metadata__"
#define LATEST "latest"
/* Version 2 checksums the file with these bytes' 8 hex digits as "00000000". */
#define CRC_KEY "\"crc32\":\""
#define CRC_ZERO "00000000"

_Static_assert(sizeof(z_off_t) >= 8, "crc32_combine must take 64-bit lengths");

/* ---- fault injection (tests) ---- */

static _Atomic int fault_where = CKPT_FAULT_NONE;
static _Atomic uint64_t fault_arg;

void ckpt_fault_inject(enum ckpt_fault where, uint64_t arg)
{
	/* Tests set this between saves; no ordering with other memory needed. */
	atomic_store_explicit(&fault_arg, arg, memory_order_relaxed);
	atomic_store_explicit(&fault_where, (int)where, memory_order_relaxed);
}

static int fault_at(enum ckpt_fault where)
{
	return atomic_load_explicit(&fault_where, memory_order_relaxed) == (int)where;
}

/* ---- names ---- */

static void ckpt_file_name(char *out, size_t n, uint64_t step)
{
	snprintf(out, n, "ckpt-%012" PRIu64 ".safetensors", step);
}

/* Strict decimal: digits only, no sign or space, no overflow. */
static int parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* 1 and the step if name is "ckpt-<digits>.safetensors", else 0. */
static int parse_ckpt_name(const char *name, uint64_t *step)
{
	static const char suffix[] = ".safetensors";
	size_t len = strlen(name);

	if (strncmp(name, "ckpt-", 5) || len < 5 + sizeof(suffix))
		return 0;
	if (strcmp(name + len - (sizeof(suffix) - 1), suffix))
		return 0;
	return parse_dec(name + 5, len - 5 - (sizeof(suffix) - 1), step) == 0;
}

/* ---- metadata rules, shared by writing and reading ---- */

/* Writes why a value breaks the rules into why (cap bytes); returns -1. */
static int whyf(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int whyf(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

/* 1 if v is a JSON number (integer or real) in [lo, hi], integral if asked. */
static int num_in(const json_t *v, double lo, double hi, int integral)
{
	double x;

	if (json_is_integer(v))
		x = (double)json_integer_value(v);
	else if (json_is_real(v))
		x = json_real_value(v);
	else
		return 0;
	if (!isfinite(x) || x < lo || x > hi)
		return 0;
	return !integral || x == (double)(int64_t)x;
}

/* A JSON string holding a strict decimal integer <= max, into *out. */
static int dec_str(const json_t *v, uint64_t max, uint64_t *out)
{
	const char *s = json_string_value(v);

	return s && !parse_dec(s, json_string_length(v), out) && *out <= max;
}

/* 1 if v is a string of 1 to max bytes, none of them a control character. */
static int short_text(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s || n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The "shape" object: what must match to resume. */
static int check_shape(const json_t *shape, char *why, size_t cap)
{
	const json_t *hidden = json_object_get(shape, "hidden"), *v;
	size_t i;

	if (!json_is_object(shape))
		return whyf(why, cap, "'shape' is not an object");
	if (!num_in(json_object_get(shape, "emb_dim"), 1, 4096, 1))
		return whyf(why, cap, "'shape.emb_dim' is not an integer from 1 to 4096");
	if (!json_is_array(hidden) || json_array_size(hidden) > 8)
		return whyf(why, cap, "'shape.hidden' is not a list of at most 8 widths");
	json_array_foreach(hidden, i, v) if (!num_in(v, 1, 65536, 1)) return whyf(
		why, cap, "'shape.hidden[%zu]' is not an integer from 1 to 65536", i);
	if (!short_text(json_object_get(shape, "optimizer"), 15))
		return whyf(why, cap, "'shape.optimizer' is not a name of 1 to 15 characters");
	return 0;
}

/* "metrics": null, or an object of null or finite numbers (AUCs in [0, 1]). */
static int check_metrics(const json_t *m, char *why, size_t cap)
{
	const char *key;
	json_t *v;

	if (json_is_null(m))
		return 0;
	if (!json_is_object(m))
		return whyf(why, cap, "'metrics' is neither null nor an object");
	json_object_foreach((json_t *)m, key, v)
	{
		int auc = strstr(key, "auc") != NULL;
		if (!json_is_null(v) && !num_in(v, auc ? 0 : -DBL_MAX, auc ? 1 : DBL_MAX, 0))
			return whyf(why, cap, "'metrics.%.64s' is not null or a %s", key,
				    auc ? "number from 0 to 1" : "finite number");
	}
	return 0;
}

/*
 * Early stopping's state (snapshot.h): best_auc a number from 0 to 1,
 * best_rmse a number from 0 to 1e6,
 * best_step a decimal string like next_batch, best_epoch and bad_epochs
 * integers up to CKPT_EPOCH_MAX, final a boolean.
 */
static int check_early_stop(const json_t *doc, char *why, size_t cap)
{
	static const char *const epochs[] = {"best_epoch", "bad_epochs"};
	const json_t *v;
	uint64_t u;

	if ((v = json_object_get(doc, "best_auc")) && !num_in(v, 0, 1, 0))
		return whyf(why, cap, "'best_auc' is not a number from 0 to 1");
	if ((v = json_object_get(doc, "best_rmse")) && !num_in(v, 0, 1e6, 0))
		return whyf(why, cap, "'best_rmse' is not a number from 0 to 1000000");
	if ((v = json_object_get(doc, "early_stop_metric")) &&
	    (!json_is_string(v) || json_string_length(v) >= 24))
		return whyf(why, cap, "'early_stop_metric' is not a string of at most 23 bytes");
	if ((v = json_object_get(doc, "best_step")) && !dec_str(v, CKPT_COUNT_MAX, &u))
		return whyf(why, cap, "'best_step' is not a decimal string from 0 to %" PRIu64,
			    CKPT_COUNT_MAX);
	for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++)
		if ((v = json_object_get(doc, epochs[i])) && !num_in(v, 0, CKPT_EPOCH_MAX, 1))
			return whyf(why, cap, "'%s' is not an integer from 0 to %d", epochs[i],
				    CKPT_EPOCH_MAX);
	if ((v = json_object_get(doc, "final")) && !json_is_boolean(v))
		return whyf(why, cap, "'final' is not true or false");
	return 0;
}

/*
 * "init_from" (trainer/pretrain.h): a list of at most CKPT_SOURCES_MAX
 * objects, each with "path" and "file" (1 to CKPT_PATH_MAX bytes), "model"
 * (1 to 63) and "step" (a decimal string like next_batch).
 */
static int check_init_from(const json_t *a, char *why, size_t cap)
{
	static const struct {
		const char *key;
		size_t max;
	} text[] = {
		{"path", CKPT_PATH_MAX}, {"file", CKPT_PATH_MAX}, {"model", CKPT_MODEL_MAX - 1}};
	const json_t *e;
	size_t i;
	uint64_t u;

	if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > CKPT_SOURCES_MAX)
		return whyf(why, cap, "'init_from' is not a list of 1 to %d checkpoints",
			    CKPT_SOURCES_MAX);
	json_array_foreach(a, i, e)
	{
		if (!json_is_object(e))
			return whyf(why, cap, "'init_from[%zu]' is not an object", i);
		for (size_t k = 0; k < sizeof(text) / sizeof(text[0]); k++)
			if (!short_text(json_object_get(e, text[k].key), text[k].max))
				return whyf(why, cap,
					    "'init_from[%zu].%s' is not a string of 1 to %zu "
					    "characters",
					    i, text[k].key, text[k].max);
		if (!dec_str(json_object_get(e, "step"), CKPT_COUNT_MAX, &u))
			return whyf(
				why, cap,
				"'init_from[%zu].step' is not a decimal string from 0 to %" PRIu64,
				i, CKPT_COUNT_MAX);
	}
	return 0;
}

/*
 * The keys of the "hogrec" document that the trainer reads, each checked
 * for its type and range when present (other keys are the writer's own);
 * next_batch and seed go into in.  -1 with the reason in why if one fails.
 */
static int check_hogrec(const json_t *doc, struct ckpt_info *in, char *why, size_t cap)
{
	static const struct {
		const char *key;
		double max;
	} rates[] = {{"lr", 100}, {"lr_sparse", 100}, {"l2", 10}};
	const json_t *v;

	if (!json_is_object(doc))
		return whyf(why, cap, "is not a JSON object");
	if ((v = json_object_get(doc, "next_batch"))) {
		if (!dec_str(v, CKPT_COUNT_MAX, &in->next_batch))
			return whyf(why, cap,
				    "'next_batch' is not a decimal string from 0 to %" PRIu64,
				    CKPT_COUNT_MAX);
		in->has_next_batch = 1;
	}
	if ((v = json_object_get(doc, "seed"))) {
		if (!dec_str(v, UINT64_MAX, &in->seed))
			return whyf(why, cap, "'seed' is not a decimal string from 0 to 2^64-1");
		in->has_seed = 1;
	}
	if ((v = json_object_get(doc, "batch")) && !num_in(v, 1, 65536, 1))
		return whyf(why, cap, "'batch' is not an integer from 1 to 65536");
	if ((v = json_object_get(doc, "shape")) && check_shape(v, why, cap))
		return -1;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if ((v = json_object_get(doc, rates[i].key)) && !num_in(v, 0, rates[i].max, 0))
			return whyf(why, cap, "'%s' is not a number from 0 to %g", rates[i].key,
				    rates[i].max);
	if ((v = json_object_get(doc, "metrics")) && check_metrics(v, why, cap))
		return -1;
	if ((v = json_object_get(doc, "init_from")) && check_init_from(v, why, cap))
		return -1;
	return check_early_stop(doc, why, cap);
}

/*
 * The offset in hdr (n bytes) of the crc32's 8 digits just after CRC_KEY,
 * and the number of times CRC_KEY occurs (version 2 wants exactly one).
 */
static size_t crc_digits(const char *hdr, size_t n, size_t *at)
{
	const size_t k = sizeof(CRC_KEY) - 1;
	size_t count = 0;

	for (const char *p = hdr; (p = memmem(p, n - (size_t)(p - hdr), CRC_KEY, k)) != NULL; p++) {
		*at = (size_t)(p - hdr) + k;
		count++;
	}
	return count;
}

/* Index of the first NaN or infinity of the n floats at p (any alignment), or n. */
static uint64_t first_nonfinite(const unsigned char *p, uint64_t n)
{
	const uint32_t exp = 0x7f800000u;

	for (uint64_t i = 0; i < n;) {
		uint64_t m = n - i < 4096 ? n - i : 4096;
		unsigned any = 0;
		for (uint64_t k = 0; k < m; k++) { /* a branch-free pass the compiler vectorises */
			uint32_t w;
			memcpy(&w, p + 4 * (i + k), 4);
			any |= (w & exp) == exp;
		}
		if (any)
			for (uint64_t k = 0; k < m; k++) {
				uint32_t w;
				memcpy(&w, p + 4 * (i + k), 4);
				if ((w & exp) == exp)
					return i + k;
			}
		i += m;
	}
	return n;
}

/* "nan" or "inf" / "-inf" for the float at p. */
static const char *nonfinite_name(const unsigned char *p)
{
	uint32_t w;

	memcpy(&w, p, 4);
	if (w & 0x007fffffu)
		return "nan";
	return w >> 31 ? "-inf" : "inf";
}

/* ---- writing ---- */

struct writer {
	struct fspub pub; /* the temporary file: pub.tmp, open in pub.fd */
	uint64_t written; /* file bytes written so far (fault injection) */
};

static int write_at(struct writer *w, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len > 0) {
		size_t k = len;
		ssize_t got;
		if (fault_at(CKPT_FAULT_WRITE)) {
			uint64_t lim = atomic_load_explicit(&fault_arg, memory_order_relaxed);
			if (w->written >= lim) {
				errno = ENOSPC;
				goto fail;
			}
			if (k > lim - w->written)
				k = (size_t)(lim - w->written);
		}
		got = pwrite(w->pub.fd, p, k, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = ENOSPC;
			goto fail;
		}
		p += got;
		off += (uint64_t)got;
		len -= (size_t)got;
		w->written += (uint64_t)got;
	}
	return 0;
fail:
	return hr_error(HR_EIO, "cannot write '%s': %s", w->pub.tmp, strerror(errno));
}

static int tensor_bytes(const struct ckpt_tensor *t, uint64_t *bytes)
{
	/* Offsets are JSON integers (int64 in jansson), so stay below 2^62. */
	const uint64_t limit = (uint64_t)1 << 62;

	*bytes = 0;
	if (t->cols != 0 && t->rows > limit / 4 / t->cols)
		return hr_error(HR_EINVAL,
				"tensor '%s': shape [%" PRIu64 ", %" PRIu64 "] is too large",
				t->name, t->rows, t->cols);
	*bytes = t->rows * t->cols * 4;
	return 0;
}

static int set_str(json_t *obj, const char *key, const char *val)
{
	return json_object_set_new(obj, key, json_string(val)) ? HR_ENOMEM : 0;
}

static int set_u64(json_t *obj, const char *key, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	return set_str(obj, key, s);
}

/* Checks the caller's arguments; everything here is HR_EINVAL. */
static int check_args(const char *dir, const struct ckpt_info *info, const char *extra,
		      const struct ckpt_tensor *t, int n)
{
	json_error_t je;
	json_t *j, *s;

	if (!dir || !*dir || !info || n < 0 || (n > 0 && !t))
		return hr_error(HR_EINVAL, "ckpt_save: missing directory, info or tensors");
	if (!info->model[0] || strnlen(info->model, CKPT_MODEL_MAX) == CKPT_MODEL_MAX)
		return hr_error(HR_EINVAL, "checkpoint model name is empty or longer than %d bytes",
				CKPT_MODEL_MAX - 1);
	for (const char *m = info->model; *m; m++)
		if ((unsigned char)*m < 0x20 || *m == 0x7f)
			return hr_error(HR_EINVAL, "checkpoint model name has a control character");
	if (strnlen(info->schema_hash, CKPT_HASH_MAX) == CKPT_HASH_MAX ||
	    strspn(info->schema_hash, "0123456789abcdefABCDEF") != strlen(info->schema_hash))
		return hr_error(HR_EINVAL, "checkpoint schema hash is not at most %d hex digits",
				CKPT_HASH_MAX - 1);
	if (!(s = json_string(info->model)))
		return hr_error(HR_EINVAL, "checkpoint model name is not valid UTF-8");
	json_decref(s);
	if (!(s = json_string(info->schema_hash)))
		return hr_error(HR_EINVAL, "checkpoint schema hash is not valid UTF-8");
	json_decref(s);
	if (info->epoch > CKPT_EPOCH_MAX || info->step > CKPT_COUNT_MAX ||
	    info->samples > CKPT_COUNT_MAX)
		return hr_error(HR_EINVAL,
				"checkpoint epoch %" PRIu64 ", step %" PRIu64 " or samples %" PRIu64
				" is out of range (epoch <= %d, the others <= %" PRIu64 ")",
				info->epoch, info->step, info->samples, CKPT_EPOCH_MAX,
				CKPT_COUNT_MAX);
	if (extra) {
		struct ckpt_info scratch;
		char why[256];
		/* Integers as reals: a uint64 above INT64_MAX is still valid JSON. */
		j = json_loads(extra, JSON_DECODE_INT_AS_REAL, &je);
		if (!j)
			return hr_error(HR_EINVAL, "checkpoint extra JSON is invalid: %s (byte %d)",
					je.text, je.position);
		int rc = check_hogrec(j, &scratch, why, sizeof(why));
		json_decref(j);
		if (rc)
			return hr_error(HR_EINVAL, "checkpoint extra JSON: %s", why);
	}
	for (int i = 0; i < n; i++) {
		uint64_t bytes;
		if (!t[i].name || !t[i].name[0] || !strcmp(t[i].name, META))
			return hr_error(HR_EINVAL, "tensor %d: name is empty or reserved", i);
		if (!(s = json_string(t[i].name)))
			return hr_error(HR_EINVAL, "tensor %d: name is not valid UTF-8", i);
		json_decref(s);
		for (int k = 0; k < i; k++)
			if (!strcmp(t[k].name, t[i].name))
				return hr_error(HR_EINVAL, "tensor name '%s' appears twice",
						t[i].name);
		int rc = tensor_bytes(&t[i], &bytes);
		if (rc)
			return rc;
		if (bytes && !t[i].data)
			return hr_error(HR_EINVAL, "tensor '%s': no data", t[i].name);
	}
	return 0;
}

/*
 * The header as JSON: __metadata__ first, then the tensors in order with
 * contiguous offsets.  Only crc changes between the two calls per save, and
 * it is always 8 hex digits, so the header's length does not.
 */
static int build_header(json_t **out, const struct ckpt_info *info, const char *extra,
			int64_t created, uint32_t crc, const struct ckpt_tensor *t, int n,
			uint64_t *payload)
{
	json_t *root = json_object(), *meta = json_object();
	char s[24];
	uint64_t off = 0;
	int rc = 0;

	if (!root || !meta || json_object_set(root, META, meta))
		goto nomem;
	snprintf(s, sizeof(s), "%08" PRIx32, crc);
	rc |= set_str(meta, "format", CKPT_FORMAT);
	rc |= set_str(meta, "version", CKPT_VERSION);
	rc |= set_str(meta, "model", info->model);
	rc |= set_str(meta, "schema_hash", info->schema_hash);
	rc |= set_u64(meta, "epoch", info->epoch);
	rc |= set_u64(meta, "step", info->step);
	rc |= set_u64(meta, "samples", info->samples);
	rc |= set_u64(meta, "created", (uint64_t)(created < 0 ? 0 : created));
	rc |= set_str(meta, "crc32", s);
	rc |= set_str(meta, "hogrec", extra ? extra : "{}");
	if (rc)
		goto nomem;
	for (int i = 0; i < n; i++) {
		uint64_t bytes;
		tensor_bytes(&t[i], &bytes); /* checked by check_args */
		json_t *e = json_pack("{s:s, s:[I, I], s:[I, I]}", "dtype", "F32", "shape",
				      (json_int_t)t[i].rows, (json_int_t)t[i].cols, "data_offsets",
				      (json_int_t)off, (json_int_t)(off + bytes));
		if (!e || json_object_set_new(root, t[i].name, e))
			goto nomem;
		off += bytes;
	}
	json_decref(meta);
	*out = root;
	*payload = off;
	return 0;
nomem:
	json_decref(meta);
	json_decref(root);
	return hr_error(HR_ENOMEM, "out of memory building a checkpoint header");
}

/* Tensor bytes at base, through one buffer that is checksummed and written. */
static int write_payload(struct writer *w, const struct ckpt_tensor *t, int n, uint64_t base,
			 uint32_t *crc_out)
{
	unsigned char *buf = malloc(CHUNK);
	uLong crc = crc32_z(0, Z_NULL, 0);
	uint64_t off = base;
	int rc = 0;

	if (!buf)
		return hr_error(HR_ENOMEM, "out of memory writing '%s'", w->pub.tmp);
	for (int i = 0; i < n && !rc; i++) {
		const unsigned char *src = (const unsigned char *)t[i].data;
		uint64_t bytes, done = 0;
		tensor_bytes(&t[i], &bytes);
		while (done < bytes && !rc) {
			size_t k = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
			uint64_t bad;
			memcpy(buf, src + done, k); /* the one read of these bytes */
			/* CHUNK and every tensor are whole floats: k / 4 of them. */
			bad = first_nonfinite(buf, k / 4);
			if (bad < k / 4) {
				uint64_t at = done / 4 + bad;
				rc = hr_error(
					HR_EFORMAT,
					"tensor '%s' holds a non-finite value (%s) at index %" PRIu64
					" (row %" PRIu64 ", col %" PRIu64 "): not saving '%s'",
					t[i].name, nonfinite_name(buf + 4 * bad), at,
					at / t[i].cols, at % t[i].cols, w->pub.target);
				break;
			}
			crc = crc32_z(crc, buf, k);
			rc = write_at(w, buf, k, off);
			off += k;
			done += k;
		}
	}
	free(buf);
	*crc_out = (uint32_t)crc;
	return rc;
}

/* Dumps the header, pads it with spaces to a multiple of 8 and prefixes N. */
static char *header_bytes(const json_t *hdr, size_t *total)
{
	char *text = json_dumps(hdr, JSON_COMPACT);
	size_t hlen, pad;
	char *buf;

	if (!text)
		return NULL;
	hlen = strlen(text);
	pad = (8 - hlen % 8) % 8; /* the payload then starts at a multiple of 8 */
	buf = malloc(8 + hlen + pad);
	if (buf) {
		uint64_t nh = hlen + pad;
		for (int i = 0; i < 8; i++)
			buf[i] = (char)(nh >> (8 * i) & 0xff);
		memcpy(buf + 8, text, hlen);
		memset(buf + 8 + hlen, ' ', pad);
		*total = 8 + hlen + pad;
	}
	free(text);
	return buf;
}

/* fsync of a directory without touching the error message (rollback). */
static void sync_dir_quiet(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/*
 * Points dir/latest at target (a name in dir) through a temporary symlink
 * published over it (common/fspub.h); target NULL removes latest.  inject
 * is a test's failure (FSPUB_INJECT_*).  Sets the message on failure:
 * latest then still names what it named before, except after a failed
 * directory sync (see fspub_commit), which the caller undoes.
 */
static int point_latest(const char *dir, const char *target, enum fspub_inject inject)
{
	char tmp[PATH_MAX], latest[PATH_MAX];
	struct fspub pub;
	int rc;

	snprintf(latest, sizeof(latest), "%s/" LATEST, dir);
	if (!target) {
		if (unlink(latest) < 0 && errno != ENOENT)
			return hr_error(HR_EIO, "cannot remove '%s': %s", latest, strerror(errno));
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s/.latest.tmp-%ld", dir, (long)getpid());
	rc = fspub_begin_symlink(&pub, latest, tmp, target);
	if (rc)
		return rc;
	pub.inject = inject;
	return fspub_commit(&pub, FSPUB_REPLACE);
}

/* latest's target into out (a name); 0 if latest is missing or no symlink. */
static int read_latest(const char *dir, char *out, size_t n)
{
	char latest[PATH_MAX];
	ssize_t k;

	snprintf(latest, sizeof(latest), "%s/" LATEST, dir);
	k = readlink(latest, out, n - 1);
	if (k <= 0)
		return 0;
	out[k] = '\0';
	return 1;
}

/* The failure a test injected into the publishing of the file or `latest`. */
static enum fspub_inject file_fault(void)
{
	return fault_at(CKPT_FAULT_PUBLISH) ? FSPUB_INJECT_DIRSYNC : FSPUB_INJECT_NONE;
}

static enum fspub_inject latest_fault(void)
{
	if (fault_at(CKPT_FAULT_LATEST))
		return FSPUB_INJECT_RENAME;
	return fault_at(CKPT_FAULT_FINAL) ? FSPUB_INJECT_DIRSYNC : FSPUB_INJECT_NONE;
}

/*
 * Undoes a published checkpoint after a later failure: `latest` back to
 * old (had_old 0: removed) if it names the new file, the new file removed
 * if it did not exist before.  Keeps the thread's message.
 */
static void unpublish(int rc, const char *dir, const char *name, const char *final, int created,
		      int had_old, const char *old)
{
	char msg[1024], cur[PATH_MAX];

	snprintf(msg, sizeof(msg), "%s", hr_errmsg());
	if (read_latest(dir, cur, sizeof(cur)) && !strcmp(cur, name) &&
	    !(had_old && !strcmp(old, name)))
		point_latest(dir, had_old ? old : NULL, FSPUB_INJECT_NONE);
	if (created)
		unlink(final);
	sync_dir_quiet(dir);
	hr_error(rc, "%s", msg);
}

int ckpt_save(const char *dir, const struct ckpt_info *info, const char *extra_json,
	      const struct ckpt_tensor *t, int n, char *path_out, size_t cap)
{
	struct writer w = {.pub = {.fd = -1}};
	char name[48], final[PATH_MAX], tmp[PATH_MAX], old[PATH_MAX];
	json_t *hdr = NULL;
	char *head = NULL, *zero = NULL;
	size_t head_len = 0, head_len2 = 0, at = 0;
	uint64_t payload = 0;
	uint32_t crc = 0;
	int had_old = 0, rc;
	int64_t now = (int64_t)time(NULL);
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = check_args(dir, info, extra_json, t, n);
	if (rc)
		return rc;
	ckpt_file_name(name, sizeof(name), info->step);
	if ((size_t)snprintf(final, sizeof(final), "%s/%s", dir, name) >= sizeof(final) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.ckpt-%012" PRIu64 ".tmp-%ld", dir, info->step,
			     (long)getpid()) >= sizeof(tmp))
		return hr_error(HR_EINVAL, "checkpoint directory path too long: '%s'", dir);
	if (path_out && strlen(final) >= cap)
		return hr_error(HR_EINVAL, "checkpoint path does not fit %zu bytes: '%s'", cap,
				final);

	/*
	 * Layout with the crc digits "00000000" (same length): exactly the
	 * bytes the version 2 crc covers in their place.  Then the payload,
	 * whose crc is combined with the header's.
	 */
	rc = build_header(&hdr, info, extra_json, now, 0, t, n, &payload);
	if (rc)
		return rc;
	zero = header_bytes(hdr, &head_len);
	json_decref(hdr);
	hdr = NULL;
	if (!zero)
		return hr_error(HR_ENOMEM, "out of memory building a checkpoint header");
	HR_ASSERT(crc_digits(zero, head_len, &at) == 1 && !memcmp(zero + at, CRC_ZERO, 8));

	rc = fspub_begin_file(&w.pub, final, tmp);
	if (rc)
		goto fail;
	rc = write_payload(&w, t, n, head_len, &crc);
	if (rc)
		goto fail;
	crc = (uint32_t)crc32_combine(crc32_z(crc32_z(0, Z_NULL, 0), (const Bytef *)zero, head_len),
				      crc, (z_off_t)payload);
	rc = build_header(&hdr, info, extra_json, now, crc, t, n, &payload);
	if (rc)
		goto fail;
	head = header_bytes(hdr, &head_len2);
	if (!head) {
		rc = hr_error(HR_ENOMEM, "out of memory building a checkpoint header");
		goto fail;
	}
	/* Only the 8 digits differ from what the crc covered. */
	HR_ASSERT(head_len2 == head_len && !memcmp(head, zero, at) &&
		  !memcmp(head + at + 8, zero + at + 8, head_len - at - 8));
	rc = write_at(&w, head, head_len, 0);
	if (rc)
		goto fail;

	/* Publish: the final name appears complete, or not at all. */
	w.pub.inject = file_fault();
	rc = fspub_commit(&w.pub, FSPUB_REPLACE);
	if (rc)
		goto fail;
	fault_point("ckpt.published");
	had_old = read_latest(dir, old, sizeof(old));
	rc = point_latest(dir, name, latest_fault());
	if (rc) {
		hr_error_prefix(rc, "cannot point '%s/" LATEST "' at '%s'", dir, name);
		unpublish(rc, dir, name, final, w.pub.created, had_old, old);
		goto fail;
	}

	json_decref(hdr);
	free(head);
	free(zero);
	if (path_out)
		snprintf(path_out, cap, "%s", final);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("saved '%s': %d tensors, %" PRIu64 " bytes in %.1f ms", final, n,
		  (uint64_t)head_len + payload,
		  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return 0;

fail:
	/* The temporary (if any) goes; the message of the first failure stays. */
	fspub_abort(&w.pub);
	json_decref(hdr);
	free(head);
	free(zero);
	return rc;
}

/* ---- reading ---- */

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
	if (parse_dec(s, strlen(s), out))
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

	if (!short_text(json_object_get(meta, "model"), CKPT_MODEL_MAX - 1))
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
	rc = check_hogrec(v, &c->info, why, sizeof(why));
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
		if (crc_digits(c->map.data + 8, nh, &at) != 1 || at + 9 > nh ||
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
		uint64_t n = t->rows * t->cols, k = first_nonfinite(p, n);
		if (k < n)
			return bad(c,
				   "tensor '%s' holds a non-finite value (%s) at index %" PRIu64
				   " (row %" PRIu64 ", col %" PRIu64 ")",
				   t->name, nonfinite_name(p + 4 * k), k, k / t->cols, k % t->cols);
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

/* ---- the directory ---- */

static int by_step(const void *a, const void *b)
{
	const struct ckpt_entry *x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return strcmp(x->name, y->name);
}

int ckpt_list(const char *dir, struct ckpt_entry **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct ckpt_entry *v = NULL;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return hr_error(errno == ENOENT || errno == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot open directory '%s': %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		uint64_t step;
		if (!parse_ckpt_name(e->d_name, &step) || strlen(e->d_name) >= sizeof(v->name))
			continue;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct ckpt_entry *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				closedir(d);
				free(v);
				*n = 0;
				return hr_error(HR_ENOMEM, "out of memory listing '%s'", dir);
			}
			v = nv;
			cap = nc;
		}
		v[*n].step = step;
		memcpy(v[*n].name, e->d_name, strlen(e->d_name) + 1);
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), by_step);
	*out = v;
	return 0;
}

/* 0 if path opens and validates; otherwise the error, message set. */
static int validate(const char *path)
{
	struct ckpt *c;
	int rc = ckpt_open(&c, path);

	ckpt_close(c);
	return rc;
}

int ckpt_read_latest(const char *dir, char *name, size_t cap)
{
	char link[PATH_MAX];
	struct stat st;
	ssize_t k;
	int rc = path_join(link, sizeof(link), dir, LATEST);

	if (rc)
		return rc;
	if (lstat(link, &st) < 0)
		return hr_error(errno == ENOENT || errno == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot read '%s': %s", link, strerror(errno));
	if (!S_ISLNK(st.st_mode))
		return hr_error(HR_EFORMAT, "'%s' is not a symbolic link", link);
	k = readlink(link, name, cap);
	if (k < 0)
		return hr_error(errno == ENOENT ? HR_ENOENT : HR_EIO, "cannot read '%s': %s", link,
				strerror(errno));
	if ((size_t)k >= cap)
		return hr_error(HR_EFORMAT, "'%s' points to a name longer than %zu bytes", link,
				cap - 1);
	name[k] = '\0';
	if (k == 0 || memchr(name, '/', (size_t)k) || name[0] == '.')
		return hr_error(HR_EFORMAT,
				"'%s' points to '%s', not to a file name in '%s' (refused: a "
				"checkpoint's latest is a bare name, no '/', no leading '.')",
				link, name, dir);
	return 0;
}

/* Keeps the first damage message (up to cap bytes) of a failed directory scan. */
static void note_damage(char *first, size_t cap, int *damaged)
{
	if (!(*damaged)++)
		snprintf(first, cap, "%s", hr_errmsg());
}

int ckpt_latest(const char *dir, char *path, size_t cap)
{
	char target[256], p[PATH_MAX], first[1024] = "";
	struct ckpt_entry *v;
	size_t n;
	int damaged = 0, rc = ckpt_read_latest(dir, target, sizeof(target));
	int have = rc == 0;

	if (rc == HR_EFORMAT) {
		note_damage(first, sizeof(first), &damaged);
		log_warn("%s; looking for the newest valid checkpoint", hr_errmsg());
	} else if (rc == HR_EIO || rc == HR_EINVAL) {
		return rc;
	}
	if (have) {
		rc = path_join(p, sizeof(p), dir, target);
		if (!rc && (rc = validate(p)) == 0)
			return path_join(path, cap, dir, target);
		if (rc == HR_ENOMEM || rc == HR_EINVAL)
			return rc;
		if (rc != HR_ENOENT)
			note_damage(first, sizeof(first), &damaged);
		log_warn("%s; looking for an older checkpoint", hr_errmsg());
	}
	rc = ckpt_list(dir, &v, &n);
	if (rc)
		return rc;
	for (size_t i = n; i-- > 0;) {
		if (have && !strcmp(v[i].name, target))
			continue; /* already tried */
		rc = path_join(p, sizeof(p), dir, v[i].name);
		if (!rc && (rc = validate(p)) == 0) {
			if (have || damaged)
				log_warn("using the older checkpoint '%s'", p);
			else
				log_warn("'%s/" LATEST "' is missing; using '%s'", dir, p);
			rc = path_join(path, cap, dir, v[i].name);
			free(v);
			return rc;
		}
		if (rc == HR_ENOMEM) {
			free(v);
			return rc;
		}
		if (rc != HR_ENOENT) /* removed meanwhile: not damage */
			note_damage(first, sizeof(first), &damaged);
		log_warn("%s; skipping it", hr_errmsg());
	}
	free(v);
	if (damaged)
		return hr_error(HR_EFORMAT, "'%s' holds no valid checkpoint: %s", dir, first);
	return hr_error(HR_ENOENT, "no checkpoint in '%s'", dir);
}

/* "<prefix><anything>.tmp-<pid>" or ".latest.tmp-<pid>" whose pid is gone. */
static int stale_tmp(const char *name)
{
	const char *p;
	uint64_t pid;

	if (strncmp(name, ".ckpt-", 6) && strncmp(name, ".latest.tmp-", 12))
		return 0;
	p = strstr(name + 1, ".tmp-");
	if (!p || parse_dec(p + 5, strlen(p + 5), &pid) || pid == 0 || pid > INT_MAX)
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char p[PATH_MAX];
		if (!stale_tmp(e->d_name) || path_join(p, sizeof(p), dir, e->d_name))
			continue;
		if (unlink(p) == 0)
			log_info("removed '%s' left by an interrupted save", p);
	}
	closedir(d);
}

/*
 * 0 if retention may count (and delete) dir's entry e: a canonical name, a
 * file that validates, its step in the name, of ref's model and schema
 * (ref NULL: any).  Otherwise the code, with the message set.
 */
static int retention_counts(const char *p, const struct ckpt_entry *e, const struct ckpt_info *ref)
{
	char canon[48];
	struct ckpt *c;
	const struct ckpt_info *in;
	int rc;

	ckpt_file_name(canon, sizeof(canon), e->step);
	if (strcmp(canon, e->name))
		return hr_error(HR_EFORMAT, "'%s' is not a name a save writes ('%s')", p, canon);
	rc = ckpt_open(&c, p);
	if (rc)
		return rc;
	in = ckpt_get_info(c);
	if (in->step != e->step)
		rc = hr_error(HR_EFORMAT, "'%s': its metadata says step %" PRIu64, p, in->step);
	else if (ref &&
		 (strcmp(in->model, ref->model) || strcmp(in->schema_hash, ref->schema_hash)))
		rc = hr_error(HR_EFORMAT,
			      "'%s' is of model '%s' and schema '%s', not this run's '%s' and '%s'",
			      p, in->model, in->schema_hash, ref->model, ref->schema_hash);
	ckpt_close(c);
	return rc;
}

/* The validated info of dir/latest's target into ref; 0 if there is none. */
static int retention_reference(const char *dir, const char *latest, struct ckpt_info *ref)
{
	char p[PATH_MAX];
	struct ckpt *c;

	if (path_join(p, sizeof(p), dir, latest) || ckpt_open(&c, p))
		return 0;
	*ref = *ckpt_get_info(c);
	ckpt_close(c);
	return 1;
}

int ckpt_retain(const char *dir, int keep_last, uint64_t best_step)
{
	char latest[256], err[PATH_MAX + 256] = "";
	struct ckpt_entry *v;
	struct ckpt_info ref;
	size_t n, removed = 0, counted = 0, keep;
	int have, has_ref = 0, rc, lrc;

	if (keep_last < 0)
		return hr_error(HR_EINVAL, "retention: keep_last must be >= 0 (got %d)", keep_last);
	keep = keep_last > 0 ? (size_t)keep_last : 1; /* never the newest valid one */
	rc = ckpt_list(dir, &v, &n);
	if (rc)
		return rc;
	lrc = ckpt_read_latest(dir, latest, sizeof(latest));
	have = lrc == 0;
	if (lrc == HR_EFORMAT)
		log_warn("%s; it protects no checkpoint from retention", hr_errmsg());
	if (have)
		has_ref = retention_reference(dir, latest, &ref);
	fault_point("ckpt.retention");
	for (size_t i = n; i-- > 0;) {
		char p[PATH_MAX];
		int why;
		if (path_join(p, sizeof(p), dir, v[i].name))
			continue;
		why = retention_counts(p, &v[i], has_ref ? &ref : NULL);
		if (why == HR_ENOMEM) {
			rc = why;
			snprintf(err, sizeof(err), "%s", hr_errmsg());
			break;
		}
		if (why == HR_ENOENT)
			continue; /* removed meanwhile */
		if (why) {
			log_warn("%s; retention leaves it alone", hr_errmsg());
			continue;
		}
		if (++counted <= keep || (best_step && v[i].step == best_step))
			continue;
		if (have && !strcmp(latest, v[i].name))
			continue; /* never the one latest names */
		if (unlink(p) < 0 && errno != ENOENT) {
			if (!rc) {
				rc = HR_EIO;
				snprintf(err, sizeof(err), "cannot remove '%s': %s", p,
					 strerror(errno));
			}
			continue;
		}
		removed++;
		log_debug("removed '%s' (retention)", p);
	}
	free(v);
	remove_stale(dir);
	if (removed)
		sync_dir_quiet(dir);
	return rc ? hr_error(rc, "%s", err) : 0;
}

/* ---- watching ---- */

struct ckpt_watch {
	int fd;
	char dir[PATH_MAX];
	uint64_t max_step; /* highest step reported (overflow rescans) */
	int any;
};

int ckpt_watch_open(struct ckpt_watch **out, const char *dir)
{
	struct ckpt_watch *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return hr_error(HR_ENOMEM, "out of memory watching '%s'", dir);
	if ((size_t)snprintf(w->dir, sizeof(w->dir), "%s", dir) >= sizeof(w->dir)) {
		free(w);
		return hr_error(HR_EINVAL, "path too long: '%s'", dir);
	}
	w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->fd < 0) {
		free(w);
		return hr_error(HR_EIO, "cannot watch '%s': inotify: %s", dir, strerror(errno));
	}
	if (inotify_add_watch(w->fd, dir,
			      IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		int e = errno;
		close(w->fd);
		free(w);
		return hr_error(e == ENOENT || e == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot watch '%s': %s", dir, strerror(e));
	}
	*out = w;
	return 0;
}

void ckpt_watch_close(struct ckpt_watch *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w);
}

/* Opens name and hands it to fn; fn's code, or 0 after a skipped file. */
static int announce(struct ckpt_watch *w, const char *name, uint64_t step, ckpt_watch_fn fn,
		    void *ctx)
{
	char path[PATH_MAX];
	struct ckpt *c;
	int rc;

	if (!w->any || step > w->max_step)
		w->max_step = step;
	w->any = 1;
	if (path_join(path, sizeof(path), w->dir, name))
		return 0;
	rc = ckpt_open(&c, path);
	if (rc == HR_ENOENT) {
		log_warn("'%s' was removed before it could be read", path);
		return 0;
	}
	if (rc == HR_ENOMEM)
		return rc;
	if (rc) {
		log_warn("%s; skipping it", hr_errmsg());
		return 0;
	}
	rc = fn(path, c, ctx);
	ckpt_close(c);
	return rc;
}

static int rescan(struct ckpt_watch *w, ckpt_watch_fn fn, void *ctx)
{
	struct ckpt_entry *v;
	size_t n;
	int rc, any = w->any;
	uint64_t floor = w->max_step;

	log_warn("events on '%s' were lost (inotify queue overflow); rescanning", w->dir);
	rc = ckpt_list(w->dir, &v, &n);
	for (size_t i = 0; !rc && i < n; i++)
		if (!any || v[i].step > floor)
			rc = announce(w, v[i].name, v[i].step, fn, ctx);
	free(v);
	return rc;
}

int ckpt_watch_run(struct ckpt_watch *w, int stop_fd, ckpt_watch_fn fn, void *ctx)
{
	_Alignas(struct inotify_event) char buf[64 * 1024];

	for (;;) {
		struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN},
				      {.fd = stop_fd, .events = POLLIN}};
		nfds_t np = stop_fd >= 0 ? 2 : 1;
		ssize_t len;

		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return hr_error(HR_EIO, "cannot watch '%s': poll: %s", w->dir,
					strerror(errno));
		}
		if (np == 2 && p[1].revents)
			return 0;
		if (!p[0].revents)
			continue;
		len = read(w->fd, buf, sizeof(buf));
		if (len < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return hr_error(HR_EIO, "cannot watch '%s': read: %s", w->dir,
					strerror(errno));
		}
		for (char *q = buf; q < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)q;
			uint64_t step;
			int rc = 0;
			q += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				rc = rescan(w, fn, ctx);
			else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				return hr_error(HR_ENOENT,
						"'%s' was removed or moved while watched", w->dir);
			else if ((ev->mask & IN_MOVED_TO) && ev->len &&
				 parse_ckpt_name(ev->name, &step))
				rc = announce(w, ev->name, step, fn, ctx);
			if (rc)
				return rc > 0 ? 0 : rc;
		}
	}
}
