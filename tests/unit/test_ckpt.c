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
	ckpt_close(c);

	/* The payload is the tensors' bytes, in order, nothing else. */
	size_t len;
	unsigned char *b = slurp(path, &len);
	const unsigned char *p = b + 8 + header_len(b);
	fill(12345);
	assert_memory_equal(p, buf_a, sizeof(buf_a));
	assert_memory_equal(p + sizeof(buf_a), buf_b, sizeof(buf_b));
	assert_memory_equal(p + sizeof(buf_a) + sizeof(buf_b), buf_emb, sizeof(buf_emb));
	assert_true(crc32(0, p, (uInt)(b + len - p)) == crc);
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
		{"\"version\":\"1\"", "\"version\":\"2\"", "version '2' is not supported",
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

	/*
	 * Every single-bit and whole-byte flip anywhere in the header: never a
	 * crash or an out-of-bounds read (the asan build checks that), and a
	 * file that still opens has the same tensor layout and bytes (the flip
	 * hit free text such as a name's letter or a metadata digit: the crc
	 * covers the tensor bytes only, as FORMAT.md says).
	 */
	for (size_t i = 0; i < 8 + h; i++) {
		for (int f = 0; f < 2; f++) {
			struct ckpt *c;
			memcpy(w, b, len);
			w[i] ^= f ? 0xff : 0x01;
			spill(bad, w, len);
			int rc = ckpt_open(&c, bad);
			if (rc) {
				assert_true(rc == HR_EFORMAT || rc == HR_EVERSION);
				continue;
			}
			assert_int_equal(ckpt_ntensors(c), NT);
			for (int k = 0; k < NT; k++) {
				uint64_t r, q, r0 = t[k].rows, q0 = t[k].cols;
				const float *d = ckpt_tensor_at(c, k, &r, &q);
				/* An empty tensor's other dimension is not covered by anything. */
				if (r0 * q0 == 0)
					assert_true(r * q == 0);
				else if (r != r0 || q != q0)
					fail_msg("flip of byte %zu: tensor %d is now [%llu, %llu]",
						 i, k, (unsigned long long)r,
						 (unsigned long long)q);
				if (r0 * q0 != 0)
					assert_memory_equal(d, t[k].data, r0 * q0 * 4);
			}
			ckpt_close(c);
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

	/* Nothing valid left: HR_ENOENT. */
	for (uint64_t s = 1; s <= 2; s++) {
		file_of(p, sizeof(p), s);
		spill(p, "xx", 2);
	}
	assert_int_equal(ckpt_latest(dir, got, sizeof(got)), HR_ENOENT);
	assert_non_null(strstr(hr_errmsg(), "no valid checkpoint"));
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

	/* keep_last 0, no best: only what latest names survives. */
	assert_int_equal(ckpt_retain(dir, 0, 0), 0);
	assert_int_equal(ckpt_list(dir, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].step == 300);
	free(v);
	struct ckpt *c;
	assert_int_equal(ckpt_open(&c, p), 0);
	ckpt_close(c);
	assert_int_equal(ckpt_retain("/nonexistent/hogrec", 1, 0), HR_ENOENT);
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
	/* A uint64 beyond int64 in the extra JSON is valid JSON: accepted. */
	assert_int_equal(
		ckpt_save(dir, &in, "{\"seed\": 18446744073709551615}", t, NT, p, sizeof(p)), 0);
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
		cmocka_unit_test_setup_teardown(test_save_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_while_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
	};
	log_init("test_ckpt", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
