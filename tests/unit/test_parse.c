/* common/parse: the one strict number parser of options and config values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/parse.h"

static void test_u64(void **state)
{
	static const char *const bad[] = {
		"",
		" 1",
		"1 ",
		"+1",
		"-1",
		"0x10",
		"1e3",
		"12abc",
		"1.0",
		"18446744073709551616",
		"99999999999999999999999",
	};
	uint64_t v = 7;
	(void)state;

	assert_int_equal(parse_u64_quiet("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64_quiet("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_u64_quiet("007", &v), 0);
	assert_int_equal(v, 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		assert_int_equal(parse_u64_quiet(bad[i], &v), -1);
		assert_int_equal(v, 42); /* untouched on failure */
	}
}

static void test_u64_range_message(void **state)
{
	uint64_t v = 0;
	(void)state;

	assert_int_equal(parse_u64("4096", "--hist-len", 1, 4096, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_u64("4097", "--hist-len", 1, 4096, &v), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "--hist-len: '4097' is not an integer between 1 and 4096");
	assert_int_equal(parse_u64("0", "--hist-len", 1, 4096, &v), HR_EINVAL);
	assert_int_equal(parse_u64("4294967296", "--hist-len", 1, 4096, &v), HR_EINVAL);
	assert_int_equal(v, 4096);
}

static void test_f64(void **state)
{
	static const char *const bad[] = {"",    " 1",   "1 ",    "nan",  "NaN",
					  "inf", "-inf", "1e999", "0.5x", "--1"};
	double x = 3;
	(void)state;

	assert_int_equal(parse_f64_quiet("1e3", &x), 0);
	assert_true(x == 1000.0);
	assert_int_equal(parse_f64_quiet("-0.25", &x), 0);
	assert_true(x == -0.25);
	assert_int_equal(parse_f64_quiet("1e-320", &x), 0); /* subnormal: a number */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		x = 3;
		assert_int_equal(parse_f64_quiet(bad[i], &x), -1);
		assert_true(x == 3);
	}
	assert_int_equal(parse_f64("1", "--valid-frac", 0, 1, &x), 0);
	assert_int_equal(parse_f64("1.5", "--valid-frac", 0, 1, &x), HR_EINVAL);
	assert_string_equal(hr_errmsg(), "--valid-frac: '1.5' is not a number between 0 and 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_u64_range_message),
		cmocka_unit_test(test_f64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
