/*
 * Unit tests of trainer/ckpt: the safetensors round trip, header layout,
 * every class of corrupt file, latest and its fallback, retention, failed
 * and faulted saves (nothing under a final name, the old latest survives),
 * saving while another thread writes the tensors, and a watcher that sees
 * only complete files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <math.h>
#include <zlib.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "trainer/ckpt.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	umask(022);
	snprintf(dir, sizeof(dir), "/tmp/hogrec-test-ckpt-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	ckpt_fault_inject(CKPT_FAULT_NONE, 0);
	return remove_tree(dir);
}

/* ---- helpers ---- */

#define NT 4
static float buf_a[3 * 5], buf_b[7], buf_emb[100 * 16];

static void fill(uint64_t step)
{
	for (int i = 0; i < 15; i++)
		buf_a[i] = (float)i * 0.5f - 3.0f + (float)step;
	for (int i = 0; i < 7; i++)
		buf_b[i] = -(float)i / 3.0f + (float)step;
	for (int i = 0; i < 1600; i++)
		buf_emb[i] = (float)((i * 37) % 101) / 7.0f + (float)step;
}

static void tensors(struct ckpt_tensor t[NT])
{
	t[0] = (struct ckpt_tensor){"a", buf_a, 3, 5};
	t[1] = (struct ckpt_tensor){"b", buf_b, 1, 7};
	t[2] = (struct ckpt_tensor){"emb.user", buf_emb, 100, 16};
	t[3] = (struct ckpt_tensor){"empty", NULL, 0, 4};
}

static void info_for(struct ckpt_info *in, uint64_t step)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->model, sizeof(in->model), "dssm");
	snprintf(in->schema_hash, sizeof(in->schema_hash), "0123456789abcdef");
	in->epoch = step / 10;
	in->step = step;
	in->samples = step * 256;
}

static const char *extra_json =
	"{\"lr\": 0.001, \"rng\": \"9e3779b97f4a7c15\", \"metrics\": {\"auc\": 0.73}}";

static int save_step(uint64_t step, char *path, size_t cap)
{
	struct ckpt_tensor t[NT];
	struct ckpt_info in;

	fill(step);
	tensors(t);
	info_for(&in, step);
	return ckpt_save(dir, &in, extra_json, t, NT, path, cap);
}

static void file_of(char *out, size_t n, uint64_t step)
{
	snprintf(out, n, "%s/ckpt-%012llu.safetensors", dir, (unsigned long long)step);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	struct mapped_file m;
	unsigned char *b;

	assert_int_equal(mapped_file_open(&m, path), 0);
	b = malloc(m.len ? m.len : 1);
	assert_non_null(b);
	if (m.len)
		memcpy(b, m.data, m.len);
	*len = m.len;
	mapped_file_release(&m);
	return b;
}

static void spill(const char *path, const void *b, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static uint64_t header_len(const unsigned char *b)
{
	uint64_t n = 0;

	for (int i = 7; i >= 0; i--)
		n = n << 8 | b[i];
	return n;
}

/* Offset of the crc32's 8 hex digits in the file image b. */
static size_t crc_at(const unsigned char *b)
{
	const unsigned char *k = memmem(b + 8, (size_t)header_len(b), "\"crc32\":\"", 9);

	assert_non_null(k);
	return (size_t)(k - b) + 9;
}

/* The version 2 crc32 of the file image b: its crc digits read as zeros. */
static uint32_t file_crc(const unsigned char *b, size_t len)
{
	size_t at = crc_at(b);
	uLong crc = crc32(0, b, (uInt)at);

	crc = crc32(crc, (const Bytef *)"00000000", 8);
	return (uint32_t)crc32(crc, b + at + 8, (uInt)(len - at - 8));
}

/* Writes the right version 2 crc into the file image b after a patch. */
static void reseal(unsigned char *b, size_t len)
{
	char hex[9];

	snprintf(hex, sizeof(hex), "%08lx", (unsigned long)file_crc(b, len));
	memcpy(b + crc_at(b), hex, 8);
}

/*
 * Copies the checkpoint src to dst with metadata key set to the string val
 * (the header re-laid out as ckpt_save does, the crc recomputed): a file
 * that differs from a valid one only in that value.
 */
static void remeta(const char *src, const char *dst, const char *key, const char *val)
{
	size_t len, hl, pad;
	unsigned char *b = slurp(src, &len), *o;
	uint64_t h = header_len(b);
	json_t *root = json_loadb((const char *)b + 8, (size_t)h, 0, NULL);
	char *text;

	assert_non_null(root);
	json_object_set_new(json_object_get(root, "__metadata__"), key, json_string(val));
	text = json_dumps(root, JSON_COMPACT);
	assert_non_null(text);
	hl = strlen(text);
	pad = (8 - hl % 8) % 8;
	o = malloc(8 + hl + pad + len - 8 - h);
	assert_non_null(o);
	for (int i = 0; i < 8; i++)
		o[i] = (unsigned char)((hl + pad) >> (8 * i));
	memcpy(o + 8, text, hl);
	memset(o + 8 + hl, ' ', pad);
	memcpy(o + 8 + hl + pad, b + 8 + h, len - 8 - h);
	reseal(o, 8 + hl + pad + len - 8 - h);
	spill(dst, o, 8 + hl + pad + len - 8 - h);
	free(o);
	free(text);
	json_decref(root);
	free(b);
}

/* ckpt_open(path) must fail with code and a message containing want. */
static void expect_bad(const char *path, int code, const char *want)
{
	struct ckpt *c = (struct ckpt *)1;
	int rc = ckpt_open(&c, path);

	if (rc != code || !strstr(hr_errmsg(), want) || !strstr(hr_errmsg(), path))
		fail_msg("ckpt_open: rc %d (want %d), message '%s' (want '%s' and the path)", rc,
			 code, hr_errmsg(), want);
	assert_null(c);
}

/* Number of entries in dir whose name starts with prefix. */
static int count_prefix(const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

static void latest_is(uint64_t step)
{
	char p[PATH_MAX], want[64], got[PATH_MAX];
	ssize_t k;

	snprintf(p, sizeof(p), "%s/latest", dir);
	k = readlink(p, got, sizeof(got) - 1);
	assert_true(k > 0);
	got[k] = '\0';
	snprintf(want, sizeof(want), "ckpt-%012llu.safetensors", (unsigned long long)step);
	assert_string_equal(got, want);
}

/* ---- round trip and layout ---- */

static void check_contents(const struct ckpt *c, uint64_t step)
{
	uint64_t r = 0, k = 0;
	const float *d;

	fill(step);
	assert_int_equal(ckpt_ntensors(c), NT);
	assert_string_equal(ckpt_tensor_name(c, 0), "a");
	assert_string_equal(ckpt_tensor_name(c, 1), "b");
	assert_string_equal(ckpt_tensor_name(c, 2), "emb.user");
	assert_string_equal(ckpt_tensor_name(c, 3), "empty");
	d = ckpt_tensor(c, "a", &r, &k);
	assert_non_null(d);
	assert_true(r == 3 && k == 5);
	assert_memory_equal(d, buf_a, sizeof(buf_a));
	d = ckpt_tensor(c, "b", &r, &k);
	assert_true(d && r == 1 && k == 7);
	assert_memory_equal(d, buf_b, sizeof(buf_b));
	d = ckpt_tensor(c, "emb.user", &r, &k);
	assert_true(d && r == 100 && k == 16);
	assert_memory_equal(d, buf_emb, sizeof(buf_emb));
	assert_non_null(ckpt_tensor(c, "empty", &r, &k));
	assert_true(r == 0 && k == 4);
	assert_null(ckpt_tensor(c, "nope", &r, &k));
}

static void test_roundtrip(void **state)
{
	char path[PATH_MAX], want[PATH_MAX];
	struct ckpt *c;
	struct stat st;
	time_t before = time(NULL);
	(void)state;

	assert_int_equal(save_step(12345, path, sizeof(path)), 0);
	file_of(want, sizeof(want), 12345);
	assert_string_equal(path, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	latest_is(12345);
	assert_int_equal(count_prefix("."), 2); /* "." and "..": no temporary file left */

	assert_int_equal(ckpt_open(&c, path), 0);
	check_contents(c, 12345);
	const struct ckpt_info *in = ckpt_get_info(c);
	assert_string_equal(in->model, "dssm");
	assert_string_equal(in->schema_hash, "0123456789abcdef");
	assert_true(in->epoch == 1234 && in->step == 12345 && in->samples == 12345 * 256);
	assert_true(in->created >= before && in->created <= time(NULL));
	assert_true(in->file_bytes == (uint64_t)st.st_size);
	assert_true(in->file_bytes == 8 + in->header_bytes + in->payload_bytes);
	assert_true(in->payload_bytes == (15 + 7 + 1600) * 4);
	assert_string_equal(ckpt_extra_json(c), extra_json);
	assert_string_equal(ckpt_path(c), path);
	uint32_t crc = in->crc32;
	assert_int_equal(in->version, 2);
	ckpt_close(c);

	/* The payload is the tensors' bytes, in order, nothing else. */
	size_t len;
	unsigned char *b = slurp(path, &len);
	const unsigned char *p = b + 8 + header_len(b);
	fill(12345);
	assert_memory_equal(p, buf_a, sizeof(buf_a));
	assert_memory_equal(p + sizeof(buf_a), buf_b, sizeof(buf_b));
	assert_memory_equal(p + sizeof(buf_a) + sizeof(buf_b), buf_emb, sizeof(buf_emb));
	/* Version 2: the crc of the whole file with its own 8 digits as zeros. */
	assert_true(file_crc(b, len) == crc);
	free(b);

	/* DIR/latest opens the same file; NULL extra JSON is "{}". */
	struct ckpt_tensor t[NT];
	struct ckpt_info i2;
	tensors(t);
	info_for(&i2, 7);
	assert_int_equal(ckpt_save(dir, &i2, NULL, t, NT, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/latest", dir);
	assert_int_equal(ckpt_open(&c, path), 0);
	assert_true(ckpt_get_info(c)->step == 7);
	assert_string_equal(ckpt_extra_json(c), "{}");
	ckpt_close(c);
}

/* The header is JSON padded with spaces so the payload starts 8-aligned. */
static void test_header_alignment(void **state)
{
	(void)state;
	for (int len = 1; len <= 24; len++) {
		struct ckpt_tensor t[NT];
		struct ckpt_info in;
		char path[PATH_MAX];
		size_t n;
		fill(1);
		tensors(t);
		info_for(&in, (uint64_t)len);
		memset(in.model, 'm', (size_t)len); /* moves the header length by one each time */
		in.model[len] = '\0';
		assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, path, sizeof(path)), 0);
		unsigned char *b = slurp(path, &n);
		uint64_t h = header_len(b);
		assert_int_equal((8 + h) % 8, 0);
		assert_int_equal(b[8], '{');
		/* JSON ends at the last '}', then only spaces (at most 7). */
		uint64_t end = h;
		while (end > 0 && b[8 + end - 1] == ' ')
			end--;
		assert_true(h - end < 8);
		assert_int_equal(b[8 + end - 1], '}');
		free(b);
	}
}

static void test_truncated(void **state)
{
	char path[PATH_MAX], cut[PATH_MAX];
	size_t len;
	(void)state;

	assert_int_equal(save_step(3, path, sizeof(path)), 0);
	unsigned char *b = slurp(path, &len);
	size_t h = (size_t)header_len(b);
	size_t at[] = {0,         1,     7,         8,          9,       8 + h / 2,
		       8 + h - 1, 8 + h, 8 + h + 1, 8 + h + 60, len - 4, len - 1};
	snprintf(cut, sizeof(cut), "%s/ckpt-000000000004.safetensors", dir);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		spill(cut, b, at[i]);
		expect_bad(cut, HR_EFORMAT, "truncated");
	}
	/* The message gives both sizes. */
	spill(cut, b, 8 + h + 60);
	char want[128];
	snprintf(want, sizeof(want), "header says %zu bytes of tensor data, file has 60",
		 len - 8 - h);
	expect_bad(cut, HR_EFORMAT, want);
	spill(cut, b, 100);
	snprintf(want, sizeof(want), "truncated: header says %zu bytes, file has 92", h);
	expect_bad(cut, HR_EFORMAT, want);
	/* One byte too many is not accepted either. */
	unsigned char *more = malloc(len + 1);
	memcpy(more, b, len);
	more[len] = 0;
	spill(cut, more, len + 1);
	expect_bad(cut, HR_EFORMAT, "1 bytes after the last tensor");
	free(more);
	free(b);
}

static void test_flipped_payload(void **state)
{
	char path[PATH_MAX];
	size_t len;
	(void)state;

	assert_int_equal(save_step(5, path, sizeof(path)), 0);
	unsigned char *b = slurp(path, &len);
	size_t h = (size_t)header_len(b);
	size_t at[] = {8 + h, 8 + h + 61, len - 1};
	for (size_t i = 0; i < 3; i++) {
		b[at[i]] ^= 0x10;
		spill(path, b, len);
		expect_bad(path, HR_EFORMAT, "checksum mismatch");
		b[at[i]] ^= 0x10;
	}
	spill(path, b, len);
	struct ckpt *c;
	assert_int_equal(ckpt_open(&c, path), 0);
	ckpt_close(c);
	free(b);
}

/* Replaces the first occurrence of from (in the header) by to, same length. */
static void patch(unsigned char *b, const char *from, const char *to)
{
	size_t h = (size_t)header_len(b), n = strlen(from);

	assert_int_equal(strlen(to), n);
	for (size_t i = 8; i + n <= 8 + h; i++)
		if (!memcmp(b + i, from, n)) {
			memcpy(b + i, to, n);
			return;
		}
	fail_msg("'%s' not in the header", from);
}

static void test_flipped_header(void **state)
{
	char path[PATH_MAX], bad[PATH_MAX];
	size_t len;
	(void)state;

	unsigned char *b, *w;
	size_t h;
	snprintf(bad, sizeof(bad), "%s/bad.safetensors", dir);

	static const struct {
		const char *from, *to, *want;
		int code;
	} cases[] = {
		{"{\"__", "[\"__", "does not start with '{'", HR_EFORMAT},
		{"\"dtype\":\"F32\"", "\"dtype\":\"F16\"", "dtype 'F16' is not supported",
		 HR_EFORMAT},
		{"\"dtype\":\"F32\"", "\"dtype\":\"I32\"", "dtype 'I32'", HR_EFORMAT},
		{"\"dtype\":\"F32\"", "\"dtypf\":\"F32\"", "unexpected key 'dtypf'", HR_EFORMAT},
		{"\"shape\":[3,5]", "\"shape\":[3,6]", "shape [3, 6] of F32 needs 72", HR_EFORMAT},
		{"\"shape\":[3,5]", "\"shape\":[-3,5", "not valid JSON", HR_EFORMAT},
		{"\"shape\":[3,5]", "\"shape\":[15] ", "shape is not [rows, cols]", HR_EFORMAT},
		{"\"shape\":[3,5]", "\"shape\":[\"3\"]", "shape is not [rows, cols]", HR_EFORMAT},
		{"[0,60]", "[4,60]", "needs 60", HR_EFORMAT},
		{"[60,88]", "[56,84]", "overlap", HR_EFORMAT},
		{"[60,88]", "[64,92]", "belong to no tensor", HR_EFORMAT},
		{"[60,88]", "[88,60]", "end before they begin", HR_EFORMAT},
		{"\"version\":\"2\"", "\"version\":\"3\"", "version '3' is not supported",
		 HR_EVERSION},
		{"\"format\":\"hogrec-ckpt\"", "\"format\":\"hogrec-ckpx\"",
		 "not a hogrec checkpoint", HR_EFORMAT},
		{"\"crc32\":\"", "\"crc33\":\"", "metadata has no 'crc32'", HR_EFORMAT},
		{"\"epoch\":\"0\"", "\"epoch\":\"x\"", "'epoch' is not an unsigned integer",
		 HR_EFORMAT},
		{"\"epoch\":\"0\"", "\"epoch\": 0 ", "value 'epoch' is not a string", HR_EFORMAT},
		{"\"__metadata__\"", "\"__metadata_x\"", "no __metadata__", HR_EFORMAT},
		{"\"b\":{", "\"a\":{", "duplicate object key", HR_EFORMAT},
		{"\"hogrec\":\"{}\"", "\"hogrec\":\"[]\"", "'hogrec' is not a JSON object",
		 HR_EFORMAT},
		{"\"hogrec\":\"{}\"", "\"hogrec\":\"{,\"", "'hogrec' is not valid JSON",
		 HR_EFORMAT},
	};
	/* Extra JSON "{}" keeps the patches simple. */
	struct ckpt_tensor t[NT];
	struct ckpt_info in;
	fill(6);
	tensors(t);
	info_for(&in, 6);
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, path, sizeof(path)), 0);
	b = slurp(path, &len);
	w = malloc(len);
	h = (size_t)header_len(b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(w, b, len);
		patch(w, cases[i].from, cases[i].to);
		spill(bad, w, len);
		expect_bad(bad, cases[i].code, cases[i].want);
	}
	/* Not JSON at all, same length. */
	memcpy(w, b, len);
	memset(w + 8, 'x', h);
	w[8] = '{';
	spill(bad, w, len);
	expect_bad(bad, HR_EFORMAT, "header is not valid JSON");
	/* A header length far beyond the file. */
	memcpy(w, b, len);
	w[5] = 1;
	spill(bad, w, len);
	expect_bad(bad, HR_EFORMAT, "not a safetensors file: its header length");
	expect_bad(bad, HR_EFORMAT, "is larger than the file");
	memcpy(w, b, len);
	memset(w, 0, 8);
	spill(bad, w, len);
	expect_bad(bad, HR_EFORMAT, "header length is 0");

	/* A metadata digit or a name's letter: caught by the version 2 crc. */
	memcpy(w, b, len);
	patch(w, "\"step\":\"6\"", "\"step\":\"7\"");
	spill(bad, w, len);
	expect_bad(bad, HR_EFORMAT, "checksum mismatch");
	memcpy(w, b, len);
	patch(w, "\"emb.user\"", "\"emb.usex\"");
	spill(bad, w, len);
	expect_bad(bad, HR_EFORMAT, "checksum mismatch");

	/*
	 * Every single-bit and whole-byte flip anywhere in the header: never a
	 * crash or an out-of-bounds read (the asan build checks that), and
	 * never a file that opens (the crc covers the header too).
	 */
	for (size_t i = 0; i < 8 + h; i++) {
		for (int f = 0; f < 2; f++) {
			struct ckpt *c;
			memcpy(w, b, len);
			w[i] ^= f ? 0xff : 0x01;
			spill(bad, w, len);
			int rc = ckpt_open(&c, bad);
			if (rc != HR_EFORMAT && rc != HR_EVERSION)
				fail_msg("flip of byte %zu: rc %d", i, rc);
		}
	}
	free(w);
	free(b);
}

/* ---- hand-made files (another writer's layout, edge cases) ---- */

static void craft(const char *path, const char *tensors_json, const void *payload, size_t plen,
		  size_t pad)
{
	char head[2048];
	unsigned char *b;
	int n = snprintf(
		head, sizeof(head),
		"{\"__metadata__\":{\"format\":\"hogrec-ckpt\",\"version\":\"1\",\"model\":"
		"\"m\",\"schema_hash\":\"\",\"epoch\":\"0\",\"step\":\"1\",\"samples\":"
		"\"0\",\"created\":\"0\",\"crc32\":\"%08lx\",\"hogrec\":\"{}\"}%s%s}",
		crc32(0, payload, (uInt)plen), *tensors_json ? "," : "", tensors_json);
	size_t h = (size_t)n + pad;

	assert_true(n > 0 && (size_t)n + pad < sizeof(head));
	memset(head + n, ' ', pad);
	b = malloc(8 + h + plen + 1);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)h >> (8 * i));
	memcpy(b + 8, head, h);
	memcpy(b + 8 + h, payload, plen);
	spill(path, b, 8 + h + plen);
	free(b);
}

static void test_crafted(void **state)
{
	char p[PATH_MAX];
	const float v[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};
	const char *ok = "\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}";
	struct ckpt *c;
	uint64_t r, k;
	(void)state;

	snprintf(p, sizeof(p), "%s/crafted.safetensors", dir);
	/* Unpadded header: the payload is misaligned in the map; data still aligned. */
	for (size_t pad = 0; pad < 8; pad++) {
		craft(p, ok, v, sizeof(v), pad);
		assert_int_equal(ckpt_open(&c, p), 0);
		const float *d = ckpt_tensor(c, "x", &r, &k);
		assert_true(d && r == 2 && k == 3);
		assert_int_equal((uintptr_t)d % _Alignof(float), 0);
		assert_memory_equal(d, v, sizeof(v));
		ckpt_close(c);
	}
	/* Tensors listed out of offset order are fine; the index is offset order. */
	craft(p,
	      "\"late\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[16,24]},"
	      "\"early\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}",
	      v, sizeof(v), 0);
	assert_int_equal(ckpt_open(&c, p), 0);
	assert_string_equal(ckpt_tensor_name(c, 0), "early");
	assert_memory_equal(ckpt_tensor(c, "late", &r, &k), v + 4, 8);
	ckpt_close(c);
	/* No tensors, empty payload: valid. */
	craft(p, "", v, 0, 3);
	assert_int_equal(ckpt_open(&c, p), 0);
	assert_int_equal(ckpt_ntensors(c), 0);
	ckpt_close(c);

	static const struct {
		const char *json, *want;
	} bad[] = {
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[2,3,1],\"data_offsets\":[0,24]}",
		 "shape is not [rows, cols]"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}",
		 "shape is not [rows, cols]"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}",
		 "truncated: header says 32 bytes of tensor data, file has 24"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[9999999992,10000000000]}",
		 "belong to no tensor"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[0,16]},"
		 "\"y\":{\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[8,24]}",
		 "tensors 'x' and 'y' overlap"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[0,16]},"
		 "\"y\":{\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[0,16]}",
		 "overlap"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[0,16]}",
		 "8 bytes after the last tensor"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[1,6],\"data_offsets\":[0,-24]}",
		 "data_offsets is not [begin, end]"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
		 "\"data_offsets\":[0,24]}",
		 "shape is too large"},
		{"\"x\":{\"shape\":[2,3],\"data_offsets\":[0,24]}", "no dtype"},
		{"\"x\":[1,2]", "entry is not an object"},
		{"\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"x\":{}",
		 "duplicate object key"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		craft(p, bad[i].json, v, sizeof(v), 0);
		expect_bad(p, HR_EFORMAT, bad[i].want);
	}
	/* A missing file and a directory are not format errors. */
	struct ckpt *c2;
	snprintf(p, sizeof(p), "%s/missing.safetensors", dir);
	assert_int_equal(ckpt_open(&c2, p), HR_ENOENT);
	assert_int_equal(ckpt_open(&c2, dir), HR_EIO);
}

/* ---- the directory ---- */

static void test_latest(void **state)
{
	char p[PATH_MAX], got[PATH_MAX], want[PATH_MAX], link[PATH_MAX];
	size_t len;
	(void)state;

	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), HR_ENOENT);
	assert_int_equal(ckpt_latest("/nonexistent/hogrec", got, sizeof(got)), HR_ENOENT);
	for (uint64_t s = 1; s <= 3; s++)
		assert_int_equal(save_step(s, p, sizeof(p)), 0);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	file_of(want, sizeof(want), 3);
	assert_string_equal(got, want);

	/* latest -> a truncated file: the newest file that validates. */
	unsigned char *b = slurp(want, &len);
	spill(want, b, len / 2);
	free(b);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	file_of(want, sizeof(want), 2);
	assert_string_equal(got, want);

	/* latest missing, or dangling: the same. */
	snprintf(link, sizeof(link), "%s/latest", dir);
	unlink(link);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	assert_string_equal(got, want);
	assert_int_equal(symlink("ckpt-000000000099.safetensors", link), 0);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	assert_string_equal(got, want);

	/* latest may point to an older step than the newest file: it wins. */
	unlink(link);
	assert_int_equal(symlink("ckpt-000000000001.safetensors", link), 0);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	file_of(want, sizeof(want), 1);
	assert_string_equal(got, want);

	/* Nothing valid left: HR_EFORMAT, saying so and why (the newest one's problem). */
	for (uint64_t s = 1; s <= 2; s++) {
		file_of(p, sizeof(p), s);
		spill(p, "xx", 2);
	}
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), HR_EFORMAT);
	snprintf(want, sizeof(want), "'%s' holds no valid checkpoint: '%s/ckpt-000000000001", dir,
		 dir);
	if (!strstr(hr_errmsg(), want) || !strstr(hr_errmsg(), "truncated"))
		fail_msg("message '%s'", hr_errmsg());
	/* Only a dangling latest, no file: no checkpoint at all. */
	for (uint64_t s = 1; s <= 3; s++) {
		file_of(p, sizeof(p), s);
		unlink(p);
	}
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), HR_ENOENT);
	assert_non_null(strstr(hr_errmsg(), "no checkpoint in"));
	/* A buffer too small. */
	assert_int_equal(save_step(4, p, sizeof(p)), 0);
	assert_int_equal(ckpt_latest(dir, got, 8), HR_EINVAL);
}

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void test_retain(void **state)
{
	char p[PATH_MAX];
	struct ckpt_entry *v;
	size_t n;
	(void)state;

	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(save_step(s * 100, p, sizeof(p)), 0);
	/* Re-saving step 300 makes it latest again (same step, replaced atomically). */
	assert_int_equal(save_step(300, p, sizeof(p)), 0);
	latest_is(300);
	/* Leftovers of a dead writer, and our own (alive) temporary files. */
	pid_t dead = dead_pid();
	char stale1[PATH_MAX], stale2[PATH_MAX], mine[PATH_MAX], other[PATH_MAX];
	snprintf(stale1, sizeof(stale1), "%s/.ckpt-000000001100.tmp-%ld", dir, (long)dead);
	snprintf(stale2, sizeof(stale2), "%s/.latest.tmp-%ld", dir, (long)dead);
	snprintf(mine, sizeof(mine), "%s/.ckpt-000000001200.tmp-%ld", dir, (long)getpid());
	snprintf(other, sizeof(other), "%s/notes.txt", dir);
	spill(stale1, "x", 1);
	assert_int_equal(symlink("ckpt-000000001100.safetensors", stale2), 0);
	spill(mine, "x", 1);
	spill(other, "x", 1);

	assert_int_equal(ckpt_retain(dir, -1, 0), HR_EINVAL);
	assert_int_equal(ckpt_retain(dir, 2, 500), 0);
	assert_int_equal(ckpt_list(dir, &v, &n), 0);
	assert_int_equal(n, 4);
	assert_true(v[0].step == 300 && v[1].step == 500 && v[2].step == 900 && v[3].step == 1000);
	free(v);
	assert_false(path_exists(stale1));
	assert_false(path_exists(stale2));
	assert_true(path_exists(mine));
	assert_true(path_exists(other));
	latest_is(300);

	/* keep_last 0, no best: what latest names and the newest valid one survive. */
	assert_int_equal(ckpt_retain(dir, 0, 0), 0);
	assert_int_equal(ckpt_list(dir, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_true(v[0].step == 300 && v[1].step == 1000);
	free(v);
	struct ckpt *c;
	assert_int_equal(ckpt_open(&c, p), 0);
	ckpt_close(c);
	assert_int_equal(ckpt_retain("/nonexistent/hogrec", 1, 0), HR_ENOENT);
}

/* ---- hostile files: metadata ranges, non-finite floats, latest, FIFOs ---- */

static const char *trainer_doc =
	"{\"next_batch\":\"3\",\"seed\":\"18446744073709551615\",\"batch\":64,"
	"\"shape\":{\"emb_dim\":32,\"hidden\":[64,32],\"optimizer\":\"adam\"},\"lr\":0.001,"
	"\"lr_sparse\":0.01,\"l2\":0,\"metrics\":{\"valid_auc\":0.7,\"test_auc\":null},"
	"\"init_from\":[{\"path\":\"runs/gmf\",\"file\":\"runs/gmf/ckpt-000000000012.safetensors\","
	"\"model\":\"gmf\",\"step\":\"12\"}]}";

static void test_metadata_ranges(void **state)
{
	char path[PATH_MAX], bad[PATH_MAX];
	struct ckpt *c;
	(void)state;

	static const struct {
		const char *key, *val, *want;
	} cases[] = {
		{"step", "18446744073709551615", "'step' is 18446744073709551615, above its limit"},
		{"step", "9007199254740992", "above its limit 9007199254740991"},
		{"epoch", "18446744073709551615", "'epoch' is 18446744073709551615, above"},
		{"epoch", "1000001", "'epoch' is 1000001, above its limit 1000000"},
		{"samples", "9007199254740992", "'samples' is 9007199254740992, above"},
		{"created", "253402300800", "'created' is 253402300800, above"},
		{"step", "99999999999999999999999", "'step' is not an unsigned integer"},
		{"step", "+5", "'step' is not an unsigned integer"},
		{"step", " 5", "'step' is not an unsigned integer"},
		{"step", "5x", "'step' is not an unsigned integer"},
		{"step", "", "'step' is not an unsigned integer"},
		{"epoch", "-1", "'epoch' is not an unsigned integer"},
		{"model", "", "'model' is not a name"},
		{"model", "a\033[2Jb", "'model' is not a name"},
		{"schema_hash", "../../etc", "'schema_hash' is not at most 16 hex digits"},
		{"version", "3", "version '3' is not supported"},
		{"hogrec", "{\"next_batch\":\"abc\"}", "'next_batch' is not a decimal string"},
		{"hogrec", "{\"next_batch\":5}", "'next_batch' is not a decimal string"},
		{"hogrec", "{\"next_batch\":\"9007199254740992\"}",
		 "'next_batch' is not a decimal"},
		{"hogrec", "{\"seed\":\"-1\"}", "'seed' is not a decimal string"},
		{"hogrec", "{\"seed\":\"18446744073709551616\"}", "'seed' is not a decimal string"},
		{"hogrec", "{\"batch\":0}", "'batch' is not an integer from 1 to 65536"},
		{"hogrec", "{\"batch\":1.5}", "'batch' is not an integer"},
		{"hogrec", "{\"batch\":\"64\"}", "'batch' is not an integer"},
		{"hogrec", "{\"batch\":1e300}", "'batch' is not an integer"},
		{"hogrec", "{\"lr\":-1}", "'lr' is not a number from 0 to 100"},
		{"hogrec", "{\"lr_sparse\":1e300}", "'lr_sparse' is not a number from 0 to 100"},
		{"hogrec", "{\"l2\":\"0\"}", "'l2' is not a number from 0 to 10"},
		{"hogrec", "{\"best_auc\":1.5}", "'best_auc' is not a number from 0 to 1"},
		{"hogrec", "{\"best_step\":12}", "'best_step' is not a decimal string"},
		{"hogrec", "{\"best_step\":\"9007199254740992\"}", "'best_step' is not a decimal"},
		{"hogrec", "{\"best_epoch\":-1}",
		 "'best_epoch' is not an integer from 0 to 1000000"},
		{"hogrec", "{\"bad_epochs\":2.5}", "'bad_epochs' is not an integer"},
		{"hogrec", "{\"final\":1}", "'final' is not true or false"},
		{"hogrec", "{\"shape\":[]}", "'shape' is not an object"},
		{"hogrec", "{\"shape\":{\"emb_dim\":0,\"hidden\":[],\"optimizer\":\"adam\"}}",
		 "'shape.emb_dim' is not an integer from 1 to 4096"},
		{"hogrec",
		 "{\"shape\":{\"emb_dim\":8,\"hidden\":[1,2,3,4,5,6,7,8,9],\"optimizer\":\"adam\"}}",
		 "'shape.hidden' is not a list of at most 8"},
		{"hogrec", "{\"shape\":{\"emb_dim\":8,\"hidden\":[4,-1],\"optimizer\":\"adam\"}}",
		 "'shape.hidden[1]' is not an integer"},
		{"hogrec", "{\"shape\":{\"emb_dim\":8,\"hidden\":[4],\"optimizer\":\"\"}}",
		 "'shape.optimizer' is not a name"},
		{"hogrec", "{\"metrics\":5}", "'metrics' is neither null nor an object"},
		{"hogrec", "{\"metrics\":{\"valid_auc\":1.5}}",
		 "'metrics.valid_auc' is not null or a number from 0 to 1"},
		{"hogrec", "{\"metrics\":{\"loss\":\"x\"}}",
		 "'metrics.loss' is not null or a finite"},
		{"hogrec", "{\"next_batch\":\"1\"}",
		 "'epoch' is 0, but a trainer's epochs start at 1"},
		{"hogrec", "{\"init_from\":[]}", "'init_from' is not a list of 1 to 8 checkpoints"},
		{"hogrec", "{\"init_from\":{}}", "'init_from' is not a list of 1 to 8"},
		{"hogrec", "{\"init_from\":[1,2,3,4,5,6,7,8,9]}", "'init_from' is not a list of 1"},
		{"hogrec", "{\"init_from\":[\"runs/gmf\"]}", "'init_from[0]' is not an object"},
		{"hogrec", "{\"init_from\":[{\"path\":\"a\",\"model\":\"gmf\",\"step\":\"1\"}]}",
		 "'init_from[0].file' is not a string of 1 to 4096 characters"},
		{"hogrec",
		 "{\"init_from\":[{\"path\":\"a\\u001b[2J\",\"file\":\"f\",\"model\":\"gmf\","
		 "\"step\":\"1\"}]}",
		 "'init_from[0].path' is not a string of 1 to 4096 characters"},
		{"hogrec",
		 "{\"init_from\":[{\"path\":\"a\",\"file\":\"f\",\"model\":\"gmf\",\"step\":1}]}",
		 "'init_from[0].step' is not a decimal string"},
	};
	assert_int_equal(save_step(6, path, sizeof(path)), 0); /* epoch 0 */
	snprintf(bad, sizeof(bad), "%s/ranges.safetensors", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		remeta(path, bad, cases[i].key, cases[i].val);
		expect_bad(bad, strcmp(cases[i].key, "version") ? HR_EFORMAT : HR_EVERSION,
			   cases[i].want);
	}
	/* The limits themselves and a trainer's whole document are fine. */
	remeta(path, bad, "step", "9007199254740991");
	assert_int_equal(ckpt_open(&c, bad), 0);
	assert_true(ckpt_get_info(c)->step == CKPT_COUNT_MAX);
	assert_false(ckpt_get_info(c)->has_next_batch);
	ckpt_close(c);
	remeta(path, bad, "epoch", "1");
	remeta(bad, bad, "hogrec", trainer_doc);
	assert_int_equal(ckpt_open(&c, bad), 0);
	assert_true(ckpt_get_info(c)->has_next_batch && ckpt_get_info(c)->next_batch == 3);
	assert_true(ckpt_get_info(c)->has_seed && ckpt_get_info(c)->seed == UINT64_MAX);
	ckpt_close(c);
	/* The same through ckpt_save. */
	struct ckpt_tensor t[NT];
	struct ckpt_info in;
	fill(7);
	tensors(t);
	info_for(&in, 7);
	in.epoch = 1;
	assert_int_equal(ckpt_save(dir, &in, trainer_doc, t, NT, path, sizeof(path)), 0);
	assert_int_equal(ckpt_open(&c, path), 0);
	assert_true(ckpt_get_info(c)->next_batch == 3);
	ckpt_close(c);
	/* A version 2 header whose crc is not written as "crc32":"<8 digits>" once. */
	size_t len;
	unsigned char *b = slurp(path, &len);
	uint64_t h = header_len(b);
	unsigned char *o = malloc(len + 8);
	size_t at = crc_at(b) - 1; /* the value's opening quote */
	memcpy(o, b, at);
	o[at] = ' '; /* "crc32": "...": still JSON, not the form the crc is defined on */
	memcpy(o + at + 1, b + at, 8 + h - at);
	memset(o + 8 + h + 1, ' ', 7);
	memcpy(o + 8 + h + 8, b + 8 + h, len - 8 - h);
	for (int i = 0; i < 8; i++)
		o[i] = (unsigned char)((h + 8) >> (8 * i));
	spill(bad, o, len + 8);
	expect_bad(bad, HR_EFORMAT, "does not hold '\"crc32\":\"' exactly once");
	free(o);
	free(b);
}

/* A hand-made version 1 file (crc of the payload only) still opens. */
static void test_version1(void **state)
{
	char p[PATH_MAX];
	const float v[2] = {1.0f, 2.0f};
	struct ckpt *c;
	(void)state;

	snprintf(p, sizeof(p), "%s/v1.safetensors", dir);
	craft(p, "\"x\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}", v, sizeof(v),
	      0);
	assert_int_equal(ckpt_open(&c, p), 0);
	assert_int_equal(ckpt_get_info(c)->version, 1);
	ckpt_close(c);
	/* Its payload is still checked. */
	const float w[2] = {1.0f, 3.0f};
	size_t len;
	unsigned char *b;
	craft(p, "\"x\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}", v, sizeof(v),
	      0);
	b = slurp(p, &len);
	memcpy(b + len - 8, w, 8);
	spill(p, b, len);
	expect_bad(p, HR_EFORMAT, "checksum mismatch: header says");
	free(b);
}

static void test_nonfinite(void **state)
{
	char path[PATH_MAX], bad[PATH_MAX], want[256];
	struct ckpt_tensor t[NT];
	struct ckpt_info in;
	size_t len;
	(void)state;

	/* Saving refuses it: nothing written, latest untouched. */
	assert_int_equal(save_step(1, path, sizeof(path)), 0);
	fill(2);
	tensors(t);
	info_for(&in, 2);
	buf_emb[16 * 7 + 3] = NAN;
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, NULL, 0), HR_EFORMAT);
	if (!strstr(hr_errmsg(),
		    "tensor 'emb.user' holds a non-finite value (nan) at index 115 (row 7, col 3)"))
		fail_msg("message '%s'", hr_errmsg());
	buf_emb[16 * 7 + 3] = 0;
	buf_b[6] = -INFINITY;
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, NULL, 0), HR_EFORMAT);
	assert_non_null(
		strstr(hr_errmsg(), "tensor 'b' holds a non-finite value (-inf) at index 6"));
	assert_int_equal(count_prefix("ckpt-"), 1);
	assert_int_equal(count_prefix(".ckpt"), 0);
	latest_is(1);

	/* Reading refuses it, even under a correct crc. */
	unsigned char *b = slurp(path, &len);
	size_t payload = 8 + (size_t)header_len(b);
	const uint32_t bits[] = {0x7fc00000u, 0x7f800000u, 0xff800001u};
	const char *names[] = {"nan", "inf", "nan"};
	snprintf(bad, sizeof(bad), "%s/nan.safetensors", dir);
	for (int i = 0; i < 3; i++) {
		unsigned char *w = malloc(len);
		memcpy(w, b, len);
		memcpy(w + payload + sizeof(buf_a) + 4 * 2, &bits[i], 4); /* b[2] */
		reseal(w, len);
		spill(bad, w, len);
		snprintf(want, sizeof(want),
			 "tensor 'b' holds a non-finite value (%s) at index 2 (row 0, col 2)",
			 names[i]);
		expect_bad(bad, HR_EFORMAT, want);
		free(w);
	}
	/* The largest finite float is fine. */
	const float big = 3.4028235e38f;
	memcpy(b + payload, &big, 4);
	reseal(b, len);
	spill(bad, b, len);
	struct ckpt *c;
	assert_int_equal(ckpt_open(&c, bad), 0);
	ckpt_close(c);
	free(b);
}

static void test_latest_outside(void **state)
{
	char p[PATH_MAX + 64], got[PATH_MAX], want[PATH_MAX], lnk[PATH_MAX], other[PATH_MAX],
		name[256];
	(void)state;

	for (uint64_t s = 1; s <= 2; s++)
		assert_int_equal(save_step(s, p, sizeof(p)), 0);
	/* A valid checkpoint elsewhere: latest must not lead there. */
	snprintf(other, sizeof(other), "%s/sub", dir);
	assert_int_equal(mkdir(other, 0755), 0);
	file_of(want, sizeof(want), 1);
	snprintf(p, sizeof(p), "%s/ckpt-000000000009.safetensors", other);
	assert_int_equal(link(want, p), 0);
	snprintf(lnk, sizeof(lnk), "%s/latest", dir);
	const char *targets[] = {p,
				 "sub/ckpt-000000000009.safetensors",
				 "../sub/ckpt-000000000009.safetensors",
				 "..",
				 ".",
				 ".ckpt-x"};
	file_of(want, sizeof(want), 2);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		unlink(lnk);
		assert_int_equal(symlink(targets[i], lnk), 0);
		assert_int_equal(ckpt_read_latest(dir, name, sizeof(name)), HR_EFORMAT);
		assert_non_null(strstr(hr_errmsg(), lnk));
		assert_non_null(strstr(hr_errmsg(), targets[i]));
		assert_non_null(strstr(hr_errmsg(), "not to a file name in"));
		/* Falls back to the newest valid checkpoint in dir, as for damage. */
		assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
		assert_string_equal(got, want);
		/* Retention takes no protection from it, and deletes nothing outside. */
		assert_int_equal(ckpt_retain(dir, 1, 0), 0);
		assert_true(path_exists(p));
		assert_true(path_exists(want));
		assert_int_equal(save_step(1, got, sizeof(got)), 0);
	}
	/* latest a regular file, not a link. */
	unlink(lnk);
	spill(lnk, "ckpt-000000000002.safetensors", 29);
	assert_int_equal(ckpt_read_latest(dir, name, sizeof(name)), HR_EFORMAT);
	assert_non_null(strstr(hr_errmsg(), "is not a symbolic link"));
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	assert_string_equal(got, want);
	unlink(lnk);
	assert_int_equal(ckpt_read_latest(dir, name, sizeof(name)), HR_ENOENT);
}

static void test_fifo(void **state)
{
	char p[PATH_MAX], fifo[PATH_MAX], got[PATH_MAX], want[PATH_MAX], link[PATH_MAX];
	struct ckpt *c;
	(void)state;

	/* A watchdog: a blocking open would hang the test, not fail it. */
	alarm(20);
	assert_int_equal(save_step(1, p, sizeof(p)), 0);
	file_of(want, sizeof(want), 1);
	file_of(fifo, sizeof(fifo), 5);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(ckpt_open(&c, fifo), HR_EIO);
	assert_non_null(strstr(hr_errmsg(), "not a regular file (a FIFO)"));
	assert_non_null(strstr(hr_errmsg(), fifo));
	/* latest -> the FIFO: the newest valid file instead. */
	snprintf(link, sizeof(link), "%s/latest", dir);
	unlink(link);
	assert_int_equal(symlink("ckpt-000000000005.safetensors", link), 0);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	assert_string_equal(got, want);
	/* Retention leaves it alone. */
	assert_int_equal(ckpt_retain(dir, 1, 0), 0);
	assert_true(path_exists(fifo));
	assert_true(path_exists(want));
	/* A FIFO as latest itself. */
	unlink(link);
	assert_int_equal(mkfifo(link, 0644), 0);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	assert_string_equal(got, want);
	/* Nothing else: damaged, not missing. */
	unlink(want);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), HR_EFORMAT);
	assert_non_null(strstr(hr_errmsg(), "holds no valid checkpoint"));
	alarm(0);
}

static void test_retain_garbage(void **state)
{
	char p[PATH_MAX], g1[PATH_MAX], g2[PATH_MAX], g3[PATH_MAX], g4[PATH_MAX];
	struct ckpt_entry *v;
	size_t n;
	(void)state;

	/* Garbage and strangers at higher steps than the run's checkpoints. */
	snprintf(g1, sizeof(g1), "%s/ckpt-999999999999.safetensors", dir);
	spill(g1, "garbage", 7);
	snprintf(g2, sizeof(g2), "%s/ckpt-999999999998.safetensors", dir);
	snprintf(g3, sizeof(g3), "%s/ckpt-77.safetensors", dir);
	snprintf(g4, sizeof(g4), "%s/ckpt-999999999997.safetensors", dir);
	assert_int_equal(save_step(50, p, sizeof(p)), 0);
	assert_int_equal(rename(p, g2), 0); /* a valid file whose name says another step */
	assert_int_equal(save_step(77, p, sizeof(p)), 0);
	assert_int_equal(rename(p, g3), 0); /* not a name a save writes */
	{
		struct ckpt_tensor t[NT];
		struct ckpt_info in;
		fill(999999999997);
		tensors(t);
		info_for(&in, 999999999997);
		in.epoch = 1;
		snprintf(in.model, sizeof(in.model), "ncf"); /* another run's */
		assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, NULL, 0), 0);
	}
	for (uint64_t s = 1; s <= 3; s++)
		assert_int_equal(save_step(s, p, sizeof(p)), 0);
	assert_int_equal(ckpt_retain(dir, 1, 0), 0);
	assert_true(path_exists(g1) && path_exists(g2) && path_exists(g3) && path_exists(g4));
	assert_int_equal(ckpt_list(dir, &v, &n), 0);
	/* Of the run's valid ones only step 3 (newest, latest) is left. */
	assert_int_equal(n, 5);
	assert_true(v[0].step == 3);
	free(v);
	latest_is(3);
	/* An empty or all-garbage directory deletes nothing. */
	file_of(p, sizeof(p), 3);
	unlink(p);
	assert_int_equal(ckpt_retain(dir, 1, 0), 0);
	assert_true(path_exists(g1) && path_exists(g2) && path_exists(g3) && path_exists(g4));
}

/* ---- failing saves ---- */

static void test_save_errors(void **state)
{
	char file[PATH_MAX], sub[PATH_MAX], p[PATH_MAX];
	struct ckpt_tensor t[NT];
	struct ckpt_info in;
	(void)state;

	fill(1);
	tensors(t);
	info_for(&in, 1);
	/* A "directory" that is a regular file: fails for root too. */
	snprintf(file, sizeof(file), "%s/plainfile", dir);
	spill(file, "x", 1);
	assert_int_equal(ckpt_save(file, &in, NULL, t, NT, p, sizeof(p)), HR_EIO);
	assert_non_null(strstr(hr_errmsg(), file));
	assert_non_null(strstr(hr_errmsg(), "Not a directory"));
	/* A directory that does not exist. */
	snprintf(sub, sizeof(sub), "%s/missing/deeper", dir);
	assert_int_equal(ckpt_save(sub, &in, NULL, t, NT, p, sizeof(p)), HR_EIO);
	assert_non_null(strstr(hr_errmsg(), "No such file or directory"));
	assert_int_equal(count_prefix("ckpt-") + count_prefix(".ckpt") + count_prefix("latest"), 0);

	/* Bad arguments: HR_EINVAL before anything is written. */
	struct ckpt_tensor dup[2] = {t[0], t[0]};
	assert_int_equal(ckpt_save(dir, &in, NULL, dup, 2, p, sizeof(p)), HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "appears twice"));
	assert_int_equal(ckpt_save(dir, &in, "[1, 2]", t, NT, p, sizeof(p)), HR_EINVAL);
	assert_int_equal(ckpt_save(dir, &in, "{\"a\": ", t, NT, p, sizeof(p)), HR_EINVAL);
	struct ckpt_tensor meta = {"__metadata__", buf_a, 1, 1};
	assert_int_equal(ckpt_save(dir, &in, NULL, &meta, 1, p, sizeof(p)), HR_EINVAL);
	struct ckpt_tensor nodata = {"x", NULL, 2, 2};
	assert_int_equal(ckpt_save(dir, &in, NULL, &nodata, 1, p, sizeof(p)), HR_EINVAL);
	struct ckpt_tensor utf = {"bad\xff", buf_a, 1, 1};
	assert_int_equal(ckpt_save(dir, &in, NULL, &utf, 1, p, sizeof(p)), HR_EINVAL);
	in.model[0] = '\0';
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, p, sizeof(p)), HR_EINVAL);
	info_for(&in, 1);
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, p, 10), HR_EINVAL);
	/* What a reader would refuse is not written either. */
	assert_int_equal(ckpt_save(dir, &in, "{\"next_batch\": \"abc\"}", t, NT, p, sizeof(p)),
			 HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "'next_batch'"));
	assert_int_equal(ckpt_save(dir, &in, "{\"seed\": 5}", t, NT, p, sizeof(p)), HR_EINVAL);
	in.step = (uint64_t)1 << 53;
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, p, sizeof(p)), HR_EINVAL);
	info_for(&in, 1);
	in.epoch = CKPT_EPOCH_MAX + 1;
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, p, sizeof(p)), HR_EINVAL);
	info_for(&in, 1);
	snprintf(in.schema_hash, sizeof(in.schema_hash), "not hex");
	assert_int_equal(ckpt_save(dir, &in, NULL, t, NT, p, sizeof(p)), HR_EINVAL);
	info_for(&in, 1);
	/* A uint64 beyond int64 in the extra JSON is valid JSON: accepted. */
	assert_int_equal(
		ckpt_save(dir, &in, "{\"rng\": 18446744073709551615}", t, NT, p, sizeof(p)), 0);
	assert_int_equal(count_prefix("ckpt-"), 1);
	assert_int_equal(count_prefix(".ckpt"), 0);
}

/* After a failed save of step 2: no trace of it, latest -> step 1, which opens. */
static void after_failed_save(int rc, const char *want)
{
	char p[PATH_MAX], got[PATH_MAX];
	struct ckpt *c;

	assert_int_equal(rc, HR_EIO);
	if (!strstr(hr_errmsg(), want))
		fail_msg("message '%s' lacks '%s'", hr_errmsg(), want);
	file_of(p, sizeof(p), 2);
	assert_false(path_exists(p));
	assert_int_equal(count_prefix(".ckpt"), 0);
	assert_int_equal(count_prefix(".latest"), 0);
	latest_is(1);
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), 0);
	file_of(p, sizeof(p), 1);
	assert_string_equal(got, p);
	assert_int_equal(ckpt_open(&c, got), 0);
	check_contents(c, 1);
	ckpt_close(c);
}

static void test_disk_full(void **state)
{
	char p[PATH_MAX];
	size_t len;
	(void)state;

	assert_int_equal(save_step(1, p, sizeof(p)), 0);
	unsigned char *b = slurp(p, &len);
	uint64_t h = header_len(b);
	free(b);
	/* Failures in the payload, in the header (written last), at the very end. */
	uint64_t at[] = {0,      1, 100, 4096, 5000, len - 8 - h - 1, len - 8 - h, len - 8 - h + 5,
			 len - 1};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		ckpt_fault_inject(CKPT_FAULT_WRITE, at[i]);
		after_failed_save(save_step(2, p, sizeof(p)), "No space left on device");
	}
	ckpt_fault_inject(CKPT_FAULT_WRITE, len);
	assert_int_equal(save_step(2, p, sizeof(p)), 0); /* exactly enough room */
	unlink(p);
	snprintf(p, sizeof(p), "%s/latest", dir);
	unlink(p);
	assert_int_equal(symlink("ckpt-000000000001.safetensors", p), 0);

	/* Failures after the rename: rolled back. */
	ckpt_fault_inject(CKPT_FAULT_PUBLISH, 0);
	after_failed_save(save_step(2, p, sizeof(p)), "cannot sync");
	ckpt_fault_inject(CKPT_FAULT_LATEST, 0);
	after_failed_save(save_step(2, p, sizeof(p)), "cannot point");
	ckpt_fault_inject(CKPT_FAULT_FINAL, 0);
	after_failed_save(save_step(2, p, sizeof(p)), "cannot sync");
	ckpt_fault_inject(CKPT_FAULT_NONE, 0);
	assert_int_equal(save_step(2, p, sizeof(p)), 0);
	latest_is(2);
}

/* ---- concurrency ---- */

struct scribbler {
	float *w;
	size_t n;
	atomic_int stop;
};

/* Stands in for Hogwild workers: rewrites the weights while they are saved. */
static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	float x = 0;

	while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
		for (size_t i = 0; i < s->n; i++)
			s->w[i] = x += 1.0f;
	return NULL;
}

static void test_save_while_written(void **state)
{
	const char *san = getenv("HOGREC_SANITIZER");
	struct scribbler s = {.n = 1 << 20};
	struct ckpt_tensor t;
	struct ckpt_info in;
	pthread_t th;
	(void)state;

	/* The race is the point (as in training); ThreadSanitizer would report it. */
	if (san && !strcmp(san, "thread"))
		skip();
	s.w = calloc(s.n, sizeof(float));
	assert_non_null(s.w);
	t = (struct ckpt_tensor){"w", s.w, 1024, 1024};
	assert_int_equal(pthread_create(&th, NULL, scribble, &s), 0);
	for (uint64_t step = 1; step <= 10; step++) {
		char p[PATH_MAX];
		struct ckpt *c;
		info_for(&in, step);
		assert_int_equal(ckpt_save(dir, &in, NULL, &t, 1, p, sizeof(p)), 0);
		assert_int_equal(ckpt_open(&c, p), 0); /* the crc matches what was written */
		ckpt_close(c);
	}
	atomic_store_explicit(&s.stop, 1, memory_order_relaxed);
	pthread_join(th, NULL);
	free(s.w);
}

#define WATCH_N 20

struct saver {
	int stop_fd;
	atomic_int seen; /* checkpoints the watcher has verified */
	atomic_int failed;
};

static void *save_many(void *arg)
{
	struct saver *s = arg;
	char p[PATH_MAX];

	for (uint64_t step = 1; step <= WATCH_N; step++) {
		struct ckpt_tensor t[NT];
		struct ckpt_info in;
		float a[15], b[7], emb[1600];
		for (int i = 0; i < 15; i++)
			a[i] = (float)i * 0.5f - 3.0f + (float)step;
		for (int i = 0; i < 7; i++)
			b[i] = -(float)i / 3.0f + (float)step;
		for (int i = 0; i < 1600; i++)
			emb[i] = (float)((i * 37) % 101) / 7.0f + (float)step;
		t[0] = (struct ckpt_tensor){"a", a, 3, 5};
		t[1] = (struct ckpt_tensor){"b", b, 1, 7};
		t[2] = (struct ckpt_tensor){"emb.user", emb, 100, 16};
		t[3] = (struct ckpt_tensor){"empty", NULL, 0, 4};
		info_for(&in, step);
		if (ckpt_save(dir, &in, extra_json, t, NT, p, sizeof(p)))
			atomic_store(&s->failed, 1);
	}
	/* Give the watcher up to 10 s to see the last one, then stop it regardless. */
	for (int i = 0; i < 1000 && atomic_load(&s->seen) < WATCH_N; i++)
		usleep(10000);
	if (write(s->stop_fd, "x", 1) != 1)
		atomic_store(&s->failed, 1);
	return NULL;
}

struct seen {
	struct saver *s;
	uint64_t last;
};

static int on_ckpt(const char *path, const struct ckpt *c, void *ctx)
{
	struct seen *w = ctx;
	struct ckpt *again;
	uint64_t step = ckpt_get_info(c)->step, r, k;
	float want[15];

	/* Every announced file opens on its own and holds that step's data. */
	if (ckpt_open(&again, path)) {
		atomic_store(&w->s->failed, 1);
		return -1;
	}
	for (int i = 0; i < 15; i++)
		want[i] = (float)i * 0.5f - 3.0f + (float)step;
	const float *a = ckpt_tensor(again, "a", &r, &k);
	if (!a || r != 3 || memcmp(a, want, sizeof(want)) || step != w->last + 1)
		atomic_store(&w->s->failed, 1);
	ckpt_close(again);
	w->last = step;
	return atomic_fetch_add(&w->s->seen, 1) + 1 == WATCH_N ? 1 : 0;
}

static void test_watch(void **state)
{
	struct ckpt_watch *w;
	struct saver s = {0};
	struct seen seen = {&s, 0};
	int fds[2];
	pthread_t th;
	(void)state;

	assert_int_equal(ckpt_watch_open(&w, "/nonexistent/hogrec"), HR_ENOENT);
	assert_int_equal(pipe(fds), 0);
	s.stop_fd = fds[1];
	assert_int_equal(ckpt_watch_open(&w, dir), 0);
	assert_int_equal(pthread_create(&th, NULL, save_many, &s), 0);
	assert_int_equal(ckpt_watch_run(w, fds[0], on_ckpt, &seen), 0);
	pthread_join(th, NULL);
	ckpt_watch_close(w);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(atomic_load(&s.failed), 0);
	assert_int_equal(atomic_load(&s.seen), WATCH_N);

	/* The stop fd ends a watch that sees nothing; a removed directory ends it with ENOENT. */
	char sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(ckpt_watch_open(&w, sub), 0);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(ckpt_watch_run(w, fds[0], on_ckpt, &seen), 0);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(ckpt_watch_run(w, -1, on_ckpt, &seen), HR_ENOENT);
	ckpt_watch_close(w);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_alignment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crafted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonfinite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_while_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
	};
	log_init("test_ckpt", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
