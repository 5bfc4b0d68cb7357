/* common/err: the per-thread message and the exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"

/* Adding context to the current message by passing it back in. */
static void test_message_of_itself(void **state)
{
	(void)state;
	assert_int_equal(hr_error(HR_EFORMAT, "'%s' is damaged", "ckpt-1"), HR_EFORMAT);
	assert_int_equal(hr_error(HR_EFORMAT, "%s; not starting over", hr_errmsg()), HR_EFORMAT);
	assert_string_equal(hr_errmsg(), "'ckpt-1' is damaged; not starting over");
	assert_int_equal(hr_error_prefix(HR_EIO, "store '%s'", "s"), HR_EIO);
	assert_string_equal(hr_errmsg(), "store 's': 'ckpt-1' is damaged; not starting over");
}

static void test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(hr_exit_code(HR_OK), 0);
	assert_int_equal(hr_exit_code(HR_EINVAL), 64);
	assert_int_equal(hr_exit_code(HR_ESTORE), 65);
	assert_int_equal(hr_exit_code(HR_ENOENT), 66);
	assert_int_equal(hr_exit_code(HR_EEXIST), 73);
	assert_int_equal(hr_exit_code(HR_EIO), 74);
	assert_int_equal(hr_exit_code(HR_EPERM), 77);
	assert_int_equal(hr_exit_code(HR_ECANCEL), 130);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_of_itself),
		cmocka_unit_test(test_exit_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
