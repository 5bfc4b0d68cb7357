/* Unit tests of the record codec, the LMDB store wrapper and atomic publishing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "ingest/publish.h"
#include "store/codec.h"
#include "store/store.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hogrec-test-store-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return remove_tree(tmpdir);
}

static void sample_record(struct record *r, uint32_t *hist, uint32_t *neg, uint32_t n)
{
	memset(r, 0, sizeof(*r));
	r->user_raw = 6040;
	r->item_raw = 100000; /* needs the 32-bit encoding */
	r->rating = 4.5f;
	r->ts = 978300760;
	r->label = 1;
	r->user = 200;
	r->item = 3000;
	r->gender = 2;
	r->age = 7;
	r->occupation = 20;
	r->zip = 65535;
	r->n_genres = 3;
	r->genres[0] = 1;
	r->genres[1] = 5;
	r->genres[2] = 18;
	r->n_dense = 4;
	r->dense[0] = 0.0f;
	r->dense[1] = 0.25f;
	r->dense[2] = 1.0f;
	r->dense[3] = 0.123456f;
	for (uint32_t i = 0; i < n; i++) {
		hist[i] = i * 97 % 70000;
		neg[i] = i * 31 + 1;
	}
	r->hist = hist;
	r->neg = neg;
	r->n_hist = r->n_neg = n;
}

static void test_codec_roundtrip(void **state)
{
	uint32_t hist[300], neg[300], h2[300], n2[300];
	struct record r, back;
	msgpack_sbuffer buf;
	(void)state;
	msgpack_sbuffer_init(&buf);
	for (uint32_t n = 0; n < 300; n += 13) {
		sample_record(&r, hist, neg, n);
		msgpack_sbuffer_clear(&buf);
		assert_int_equal(record_pack(&buf, &r), 0);
		memset(&back, 0xff, sizeof(back));
		back.hist = h2;
		back.neg = n2;
		back.hist_cap = 300;
		assert_int_equal(record_unpack(buf.data, buf.size, &back), 0);
		assert_int_equal(back.user_raw, r.user_raw);
		assert_int_equal(back.item_raw, r.item_raw);
		assert_float_equal(back.rating, r.rating, 0);
		assert_int_equal(back.ts, r.ts);
		assert_int_equal(back.zip, 65535);
		assert_int_equal(back.n_genres, 3);
		assert_int_equal(back.genres[2], 18);
		assert_int_equal(back.n_dense, 4);
		assert_float_equal(back.dense[3], r.dense[3], 0);
		assert_int_equal(back.n_hist, n);
		assert_int_equal(back.n_neg, n);
		assert_memory_equal(h2, hist, n * sizeof(uint32_t));
		assert_memory_equal(n2, neg, n * sizeof(uint32_t));
	}
	msgpack_sbuffer_destroy(&buf);
}

static void test_codec_rejects_bad_bytes(void **state)
{
	uint32_t hist[64], neg[64], h2[8], n2[8];
	struct record r, back = {.hist = h2, .neg = n2, .hist_cap = 8};
	msgpack_sbuffer buf;
	(void)state;
	msgpack_sbuffer_init(&buf);
	sample_record(&r, hist, neg, 20);
	assert_int_equal(record_pack(&buf, &r), 0);
	/* Longer history than the caller's buffer. */
	assert_int_equal(record_unpack(buf.data, buf.size, &back), HR_EFORMAT);
	assert_non_null(strstr(hr_errmsg(), "hist"));
	/* Every truncation is rejected, never read past the end. */
	back.hist_cap = 8;
	r.n_hist = r.n_neg = 5;
	msgpack_sbuffer_clear(&buf);
	assert_int_equal(record_pack(&buf, &r), 0);
	for (size_t cut = 0; cut < buf.size; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, buf.data, cut);
		assert_int_equal(record_unpack(copy, cut, &back), HR_EFORMAT);
		free(copy);
	}
	/* A map instead of an array; a string where an int belongs. */
	const char map[] = "\x81\xa1"
			   "a\x01";
	assert_int_equal(record_unpack(map, sizeof(map) - 1, &back), HR_EFORMAT);
	buf.data[1] = (char)0xa1; /* user_raw becomes a 1-byte string */
	assert_int_equal(record_unpack(buf.data, buf.size, &back), HR_EFORMAT);
	msgpack_sbuffer_destroy(&buf);
}

static void test_store_write_read(void **state)
{
	char dir[512];
	struct store *st;
	struct store_reader *rd;
	const void *v;
	size_t len;
	uint64_t n;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/s1", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(store_create(&st, dir, 1 << 24), 0);
	for (uint64_t k = 0; k < 1000; k++) {
		uint8_t key[8];
		char val[32];
		int vl = snprintf(val, sizeof(val), "value-%llu", (unsigned long long)k);
		store_key(key, k);
		assert_int_equal(store_put(st, STORE_TRAIN, key, 8, val, (size_t)vl, 1), 0);
	}
	/* Appending a smaller key is refused by LMDB. */
	uint8_t key0[8];
	store_key(key0, 5);
	assert_int_equal(store_put(st, STORE_TRAIN, key0, 8, "x", 1, 1), HR_ESTORE);
	store_close(st); /* aborts the transaction: nothing was committed */

	remove_tree(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(store_create(&st, dir, 1 << 24), 0);
	assert_int_equal(store_put(st, STORE_META, "meta", 4, "\x80", 1, 0), 0);
	for (uint64_t k = 0; k < 1000; k++) {
		uint8_t key[8];
		store_key(key, k);
		assert_int_equal(store_key_decode(key), k);
		assert_int_equal(store_put(st, STORE_VALID, key, 8, &k, sizeof(k), 1), 0);
	}
	assert_int_equal(store_commit(st, 1), 0);
	store_close(st);

	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_reader_begin(st, &rd), 0);
	assert_int_equal(store_count(rd, STORE_VALID, &n), 0);
	assert_int_equal(n, 1000);
	assert_int_equal(store_get_u64(rd, STORE_VALID, 999, &v, &len), 0);
	assert_int_equal(len, 8);
	assert_int_equal(*(const uint64_t *)v, 999);
	assert_int_equal(store_get_u64(rd, STORE_VALID, 1000, &v, &len), HR_ENOENT);
	assert_int_equal(store_count(rd, STORE_TEST, &n), 0);
	assert_int_equal(n, 0);
	store_reader_end(rd);
	store_close(st);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int read_bytes(const char *path, char **buf, long *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	*n = ftell(f);
	rewind(f);
	*buf = malloc((size_t)*n);
	size_t got = fread(*buf, 1, (size_t)*n, f);
	fclose(f);
	return got == (size_t)*n ? 0 : -1;
}

static int write_bytes(const char *path, const char *buf, long n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t put = fwrite(buf, 1, (size_t)n, f);
	return fclose(f) || put != (size_t)n ? -1 : 0;
}

/* store_open() expecting code and a message containing text. */
static void open_fails(const char *dir, int code, const char *text)
{
	struct store *st = NULL;
	assert_int_equal(store_open(&st, dir), code);
	assert_null(st);
	if (!strstr(hr_errmsg(), text))
		fail_msg("'%s' lacks '%s'", hr_errmsg(), text);
}

/*
 * The seal: store_commit(s, 1) writes data.crc; store_open() refuses a
 * store whose data.mdb was damaged, truncated, replaced by a FIFO, or whose
 * seal is missing or malformed, before LMDB maps anything.
 */
static void test_store_seal(void **state)
{
	char dir[512], data[600], seal[600], lock[600];
	struct store *st;
	char *orig = NULL, *bad;
	long n = 0;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/sealed", tmpdir);
	snprintf(data, sizeof(data), "%s/data.mdb", dir);
	snprintf(seal, sizeof(seal), "%s/data.crc", dir);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(store_create(&st, dir, 1 << 24), 0);
	for (uint64_t k = 0; k < 2000; k++) {
		uint8_t key[8];
		char val[64];
		int vl = snprintf(val, sizeof(val), "a value long enough to fill pages %llu",
				  (unsigned long long)k);
		store_key(key, k);
		assert_int_equal(store_put(st, STORE_TRAIN, key, 8, val, (size_t)vl, 1), 0);
	}
	assert_int_equal(store_commit(st, 1), 0);
	store_close(st);
	assert_int_equal(read_bytes(data, &orig, &n), 0);
	assert_true(n > 8 * 4096);
	assert_int_equal(store_open(&st, dir), 0);
	store_close(st);

	/* A flipped byte anywhere (a meta page, a branch or leaf page). */
	bad = malloc((size_t)n);
	const long offsets[] = {20, 4096 + 150, n / 2, n - 1};
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		memcpy(bad, orig, (size_t)n);
		bad[offsets[i]] ^= 0x40;
		assert_int_equal(write_bytes(data, bad, n), 0);
		open_fails(dir, HR_ESTORE, offsets[i] == 20 ? "meta page 0" : "is damaged");
	}
	/* Truncated: caught from the meta pages, before the crc. */
	assert_int_equal(write_bytes(data, orig, n - 4096), 0);
	open_fails(dir, HR_ESTORE, "data.mdb is truncated");
	assert_int_equal(write_bytes(data, orig, 4096 + 100), 0);
	open_fails(dir, HR_ESTORE, "truncated");
	assert_int_equal(write_bytes(data, orig, 100), 0);
	open_fails(dir, HR_ESTORE, "too few for an LMDB file");
	/* Grown: the size differs from the seal's. */
	memcpy(bad, orig, (size_t)n);
	assert_int_equal(write_bytes(data, orig, n), 0);
	FILE *f = fopen(data, "ab");
	fputs("x", f);
	fclose(f);
	open_fails(dir, HR_ESTORE, "its seal (data.crc) says");
	assert_int_equal(write_bytes(data, orig, n), 0);
	assert_int_equal(store_open(&st, dir), 0);
	store_close(st);

	/* The seal: malformed, missing. */
	char *text = NULL;
	long tn = 0;
	assert_int_equal(read_bytes(seal, &text, &tn), 0);
	assert_int_equal(write_file(seal, "hogrec-crc32 0000zz00 12\n"), 0);
	open_fails(dir, HR_ESTORE, "data.crc is not 'hogrec-crc32");
	assert_int_equal(write_file(seal, ""), 0);
	open_fails(dir, HR_ESTORE, "data.crc is not");
	assert_int_equal(unlink(seal), 0);
	open_fails(dir, HR_ESTORE, "has no seal");
	assert_int_equal(mkfifo(seal, 0644), 0);
	open_fails(dir, HR_ESTORE, "data.crc' is a FIFO");
	assert_int_equal(unlink(seal), 0);
	assert_int_equal(write_bytes(seal, text, tn), 0);

	/* FIFOs where the files should be: refused by type, never opened. */
	assert_int_equal(unlink(data), 0);
	assert_int_equal(mkfifo(data, 0644), 0);
	open_fails(dir, HR_ESTORE, "data.mdb' is a FIFO, not a regular file");
	assert_int_equal(unlink(data), 0);
	assert_int_equal(write_bytes(data, orig, n), 0);
	unlink(lock);
	assert_int_equal(mkfifo(lock, 0644), 0);
	open_fails(dir, HR_ESTORE, "lock.mdb' is a FIFO");
	assert_int_equal(unlink(lock), 0);
	assert_int_equal(store_open(&st, dir), 0); /* lock.mdb is optional */
	store_close(st);
	free(text);
	free(bad);
	free(orig);
}

/* Forged container sizes are refused before msgpack-c allocates for them. */
static void test_msgpack_well_sized(void **state)
{
	msgpack_sbuffer buf;
	msgpack_packer pk;
	(void)state;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	pack_cstr(&pk, "a");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint32(&pk, 70000);
	msgpack_pack_double(&pk, 0.5);
	msgpack_pack_nil(&pk);
	pack_cstr(&pk, "b");
	msgpack_pack_bin(&pk, 2);
	msgpack_pack_bin_body(&pk, "xy", 2);
	assert_int_equal(msgpack_well_sized(buf.data, buf.size), 0);
	for (size_t cut = 0; cut < buf.size; cut++)
		assert_int_equal(msgpack_well_sized(buf.data, cut), -1);
	msgpack_sbuffer_destroy(&buf);
	assert_int_equal(msgpack_well_sized("\xdd\x0f\xff\xff\xff\x01\x02", 7), -1);
	assert_int_equal(msgpack_well_sized("\xdf\x00\x00\x00\x02\x01\x02\x03", 8), -1);
	assert_int_equal(msgpack_well_sized("\xdb\xff\xff\xff\xff"
					    "abc",
					    8),
			 -1);
	assert_int_equal(msgpack_well_sized("\x92\x01\xc1", 3), -1);
	assert_int_equal(msgpack_well_sized("\x92\x01\x02", 3), 0);
}

static void test_store_open_errors(void **state)
{
	char dir[512], file[600];
	struct store *st;
	FILE *f;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/missing", tmpdir);
	assert_int_equal(store_open(&st, dir), HR_ENOENT);
	assert_non_null(strstr(hr_errmsg(), "missing"));
	snprintf(dir, sizeof(dir), "%s/plain", tmpdir);
	mkdir(dir, 0755);
	assert_int_equal(store_open(&st, dir), HR_ESTORE);
	assert_non_null(strstr(hr_errmsg(), "not a hogrec store"));
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	f = fopen(file, "w");
	fputs("this is not an lmdb file, just text of some length ...............", f);
	fclose(f);
	assert_int_equal(store_open(&st, dir), HR_ESTORE);
	assert_non_null(strstr(hr_errmsg(), "not a hogrec store"));
	assert_int_equal(store_open(&st, file), HR_ESTORE);
}

static void test_publish(void **state)
{
	char target[512], file[PATH_MAX + 64], stale[600];
	struct publish p;
	struct mapped_file m;
	(void)state;
	snprintf(target, sizeof(target), "%s/out.lmdb", tmpdir);
	/* Fresh target: tmp created, then renamed into place. */
	assert_int_equal(publish_begin(&p, target, 0), 0);
	snprintf(file, sizeof(file), "%s/data.mdb", p.tmp);
	assert_int_equal(write_file(file, "one"), 0);
	assert_int_equal(publish_commit(&p), 0);
	assert_false(path_exists(p.tmp));
	snprintf(file, sizeof(file), "%s/data.mdb", target);
	assert_int_equal(mapped_file_open(&m, file), 0);
	assert_memory_equal(m.data, "one", 3);
	mapped_file_release(&m);

	/* Existing target without force: refused, nothing created. */
	assert_int_equal(publish_begin(&p, target, 0), HR_EEXIST);
	assert_non_null(strstr(hr_errmsg(), "--force"));

	/* Aborted replacement leaves the old store as it was. */
	assert_int_equal(publish_begin(&p, target, 1), 0);
	char tmpfile[PATH_MAX + 64];
	snprintf(tmpfile, sizeof(tmpfile), "%s/data.mdb", p.tmp);
	assert_int_equal(write_file(tmpfile, "two"), 0);
	publish_abort(&p);
	assert_false(path_exists(p.tmp));
	assert_int_equal(mapped_file_open(&m, file), 0);
	assert_memory_equal(m.data, "one", 3);
	mapped_file_release(&m);

	/* A stale temp dir of a dead process is removed by the next run. */
	snprintf(stale, sizeof(stale), "%s.tmp-999999999", target);
	assert_int_equal(mkdir(stale, 0755), 0);
	assert_int_equal(publish_begin(&p, target, 1), 0);
	assert_false(path_exists(stale));
	assert_int_equal(write_file(tmpfile, "two"), 0);
	assert_int_equal(publish_commit(&p), 0);
	assert_int_equal(mapped_file_open(&m, file), 0);
	assert_memory_equal(m.data, "two", 3);
	mapped_file_release(&m);

	/* --force never deletes a directory that is not a store. */
	char other[600];
	snprintf(other, sizeof(other), "%s/home", tmpdir);
	mkdir(other, 0755);
	snprintf(file, sizeof(file), "%s/notes.txt", other);
	write_file(file, "precious");
	assert_int_equal(publish_begin(&p, other, 1), HR_EINVAL);
	assert_true(path_exists(file));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_roundtrip),
		cmocka_unit_test(test_codec_rejects_bad_bytes),
		cmocka_unit_test(test_store_write_read),
		cmocka_unit_test(test_store_open_errors),
		cmocka_unit_test(test_store_seal),
		cmocka_unit_test(test_msgpack_well_sized),
		cmocka_unit_test(test_publish),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
