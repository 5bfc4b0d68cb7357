/*
 * test_fspub.c - common/fspub: publishing a file, a directory and a
 * symlink; replacing a directory by exchange; NOREPLACE refusing an
 * existing target; and every failure (injected rename and directory-sync
 * failures, a cancel flag, a failed write) leaving no temporary and the old
 * target intact.  Each case runs with renameat2 and with the fallback.
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
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fspub.h"
#include "common/fsutil.h"
#include "common/log.h"

static char dir[256];
static char target[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hogrec-test-fspub-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(target, sizeof(target), "%s/out", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fspub_force_fallback(0);
	return remove_tree(dir);
}

/* ---- helpers ---- */

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* path's contents (at most 255 bytes) into a static buffer; "" if missing. */
static const char *get(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static const char *in(const char *d, const char *name)
{
	static char p[PATH_MAX];

	assert_int_equal(path_join(p, sizeof(p), d, name), 0);
	return p;
}

/* Number of entries in the test directory (only the target, when clean). */
static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static int write_file(struct fspub *p, const char *text)
{
	size_t n = strlen(text);

	return write(p->fd, text, n) == (ssize_t)n ? 0 : -1;
}

/* An old directory store at target holding old.txt. */
static void old_dir(void)
{
	assert_int_equal(mkdir(target, 0755), 0);
	put(in(target, "old.txt"), "old");
}

static void begin_new_dir(struct fspub *p)
{
	assert_int_equal(fspub_begin_dir(p, target, NULL), 0);
	assert_true(path_is_dir(p->tmp));
	put(in(p->tmp, "new.txt"), "new");
}

/* Runs a case with renameat2 and again with the fallback. */
#define BOTH(body)                        \
	for (int fb = 0; fb < 2; fb++) {  \
		fspub_force_fallback(fb); \
		remove_tree(target);      \
		body;                     \
	}

/* ---- cases ---- */

static void test_file(void **state)
{
	struct fspub p;
	char tmp[PATH_MAX];
	(void)state;

	BOTH({
		snprintf(tmp, sizeof(tmp), "%s/.out.tmp", dir);
		assert_int_equal(fspub_begin_file(&p, target, tmp), 0);
		assert_string_equal(p.tmp, tmp);
		assert_int_equal(write_file(&p, "one"), 0);
		assert_int_equal(fspub_commit(&p, FSPUB_NOREPLACE), 0);
		assert_int_equal(p.created, 1);
		assert_string_equal(get(target), "one");
		assert_int_equal(entries(), 1);
		fspub_abort(&p); /* harmless after a commit */
		assert_string_equal(get(target), "one");

		/* Replace: the default temporary name, rename over the old file. */
		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		assert_non_null(strstr(p.tmp, "/out.tmp-"));
		assert_int_equal(write_file(&p, "two"), 0);
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), 0);
		assert_int_equal(p.created, 0);
		assert_string_equal(get(target), "two");
		assert_int_equal(entries(), 1);
	});
}

static void test_dir(void **state)
{
	struct fspub p;
	(void)state;

	BOTH({
		begin_new_dir(&p);
		assert_int_equal(fspub_commit(&p, FSPUB_NOREPLACE), 0);
		assert_int_equal(p.created, 1);
		assert_string_equal(get(in(target, "new.txt")), "new");
		assert_int_equal(entries(), 1);
	});
}

static void test_dir_exchange(void **state)
{
	struct fspub p;
	(void)state;

	BOTH({
		old_dir();
		begin_new_dir(&p);
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), 0);
		assert_int_equal(p.created, 0);
		assert_string_equal(get(in(target, "new.txt")), "new");
		assert_false(path_exists(in(target, "old.txt")));
		assert_int_equal(entries(), 1); /* the old directory is gone */
	});
}

static void test_noreplace_refuses(void **state)
{
	struct fspub p;
	(void)state;

	BOTH({
		put(target, "old");
		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		assert_int_equal(write_file(&p, "new"), 0);
		assert_int_equal(fspub_commit(&p, FSPUB_NOREPLACE), HR_EEXIST);
		assert_non_null(strstr(hr_errmsg(), target));
		assert_string_equal(get(target), "old");
		assert_int_equal(entries(), 1);
		unlink(target);

		old_dir();
		begin_new_dir(&p);
		assert_int_equal(fspub_commit(&p, FSPUB_NOREPLACE), HR_EEXIST);
		assert_string_equal(get(in(target, "old.txt")), "old");
		assert_int_equal(entries(), 1);
	});
}

static void test_symlink(void **state)
{
	struct fspub p;
	char buf[64];
	ssize_t k;
	(void)state;

	BOTH({
		assert_int_equal(fspub_begin_symlink(&p, target, NULL, "a"), 0);
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), 0);
		assert_int_equal(p.created, 1);
		assert_int_equal(fspub_begin_symlink(&p, target, NULL, "b"), 0);
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), 0);
		assert_int_equal(p.created, 0);
		k = readlink(target, buf, sizeof(buf) - 1);
		assert_int_equal(k, 1);
		assert_int_equal(buf[0], 'b');
		assert_int_equal(entries(), 1);
	});
}

/* Injected rename failures, a set cancel flag, an abort mid-write. */
static void test_failures_keep_old(void **state)
{
	static const volatile sig_atomic_t cancelled = 1;
	struct fspub p;
	(void)state;

	BOTH({
		put(target, "old");
		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		assert_int_equal(write_file(&p, "new"), 0);
		p.inject = FSPUB_INJECT_RENAME;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_EIO);
		assert_non_null(strstr(hr_errmsg(), "(injected)"));
		assert_string_equal(get(target), "old");
		assert_int_equal(entries(), 1);

		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		assert_int_equal(write_file(&p, "new"), 0);
		p.cancel = &cancelled;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_ECANCEL);
		assert_string_equal(get(target), "old");
		assert_int_equal(entries(), 1);

		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		assert_int_equal(write_file(&p, "ne"), 0);
		fspub_abort(&p);
		fspub_abort(&p);
		assert_string_equal(get(target), "old");
		assert_int_equal(entries(), 1);
		unlink(target);

		old_dir();
		begin_new_dir(&p);
		p.inject = FSPUB_INJECT_RENAME;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_EIO);
		assert_string_equal(get(in(target, "old.txt")), "old");
		assert_int_equal(entries(), 1);
		begin_new_dir(&p);
		fspub_abort(&p);
		assert_string_equal(get(in(target, "old.txt")), "old");
		assert_int_equal(entries(), 1);
	});
}

/* The parent's sync fails after the rename: undone where possible. */
static void test_dirsync_failure(void **state)
{
	struct fspub p;
	(void)state;

	BOTH({
		/* A new file, then a new directory: removed again. */
		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		p.inject = FSPUB_INJECT_DIRSYNC;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_EIO);
		if (!strstr(hr_errmsg(), "cannot sync"))
			fail_msg("message: %s", hr_errmsg());
		assert_int_equal(entries(), 0);
		begin_new_dir(&p);
		p.inject = FSPUB_INJECT_DIRSYNC;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_EIO);
		assert_int_equal(entries(), 0);

		/* A replaced directory: swapped back, the old one intact. */
		old_dir();
		begin_new_dir(&p);
		p.inject = FSPUB_INJECT_DIRSYNC;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_EIO);
		assert_string_equal(get(in(target, "old.txt")), "old");
		assert_false(path_exists(in(target, "new.txt")));
		assert_int_equal(entries(), 1);
		remove_tree(target);

		/* A replaced file cannot come back: the new one stays, created 0. */
		put(target, "old");
		assert_int_equal(fspub_begin_file(&p, target, NULL), 0);
		assert_int_equal(write_file(&p, "new"), 0);
		p.inject = FSPUB_INJECT_DIRSYNC;
		assert_int_equal(fspub_commit(&p, FSPUB_REPLACE), HR_EIO);
		assert_int_equal(p.created, 0);
		assert_string_equal(get(target), "new");
		assert_int_equal(entries(), 1);
	});
}

static void test_rename(void **state)
{
	char a[PATH_MAX], b[PATH_MAX];
	(void)state;

	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	BOTH({
		put(a, "A");
		put(b, "B");
		assert_int_equal(fspub_rename(a, b, FSPUB_RENAME_NOREPLACE), HR_EEXIST);
		assert_int_equal(fspub_rename(a, b, FSPUB_RENAME_EXCHANGE), 0);
		assert_string_equal(get(a), "B");
		assert_string_equal(get(b), "A");
		unlink(b);
		assert_int_equal(fspub_rename(a, b, FSPUB_RENAME_EXCHANGE), HR_ENOENT);
		assert_string_equal(get(a), "B");
		assert_int_equal(fspub_rename(a, b, FSPUB_RENAME_NOREPLACE), 0);
		assert_string_equal(get(b), "B");
		assert_int_equal(fspub_rename(a, b, 0), HR_ENOENT);
		unlink(b);
		assert_int_equal(entries(), 0);
	});
}

static void test_bad_paths(void **state)
{
	struct fspub p;
	char tmp[PATH_MAX];
	(void)state;

	assert_int_equal(fspub_begin_file(&p, "", NULL), HR_EINVAL);
	fspub_abort(&p);
	snprintf(tmp, sizeof(tmp), "%s/missing/out", dir);
	assert_int_equal(fspub_begin_file(&p, tmp, NULL), HR_EIO);
	assert_non_null(strstr(hr_errmsg(), "missing/out.tmp-"));
	fspub_abort(&p);
	assert_int_equal(fspub_begin_dir(&p, tmp, NULL), HR_EIO);
	assert_int_equal(entries(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noreplace_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_keep_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirsync_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
	};
	log_init("test_fspub", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
