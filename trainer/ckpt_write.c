/*
 * ckpt_write.c - writing and publishing a checkpoint (ckpt_save) and
 * pointing `latest` at it.
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/fspub.h"
#include "common/log.h"

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
		if (ckpt_fault_at(CKPT_FAULT_WRITE)) {
			uint64_t lim = atomic_load_explicit(&ckpt_fault_arg, memory_order_relaxed);
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
		int rc = ckpt_check_hogrec(j, &scratch, why, sizeof(why));
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
			bad = ckpt_first_nonfinite(buf, k / 4);
			if (bad < k / 4) {
				uint64_t at = done / 4 + bad;
				rc = hr_error(
					HR_EFORMAT,
					"tensor '%s' holds a non-finite value (%s) at index %" PRIu64
					" (row %" PRIu64 ", col %" PRIu64 "): not saving '%s'",
					t[i].name, ckpt_nonfinite_name(buf + 4 * bad), at,
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
	return ckpt_fault_at(CKPT_FAULT_PUBLISH) ? FSPUB_INJECT_DIRSYNC : FSPUB_INJECT_NONE;
}

static enum fspub_inject latest_fault(void)
{
	if (ckpt_fault_at(CKPT_FAULT_LATEST))
		return FSPUB_INJECT_RENAME;
	return ckpt_fault_at(CKPT_FAULT_FINAL) ? FSPUB_INJECT_DIRSYNC : FSPUB_INJECT_NONE;
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
	ckpt_sync_dir_quiet(dir);
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
	HR_ASSERT(ckpt_crc_digits(zero, head_len, &at) == 1 && !memcmp(zero + at, CRC_ZERO, 8));

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
