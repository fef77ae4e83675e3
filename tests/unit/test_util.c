/*
 * test_util.c - the shared byte-level helpers (common/util.c): digit
 * values, UTF-8 sequence validation, full writes and directory fsync.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fixture.h"
#include "util.h"

static void
test_digits(void **state)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	int i;

	(void)state;
	for (i = 0; i < 64; i++) {
		assert_int_equal(util_b64_digit((unsigned char)b64[i]), i);
		assert_int_equal(util_b64url_digit((unsigned char)b64url[i]), i);
	}
	/* each alphabet refuses the other's two digits, padding and bytes
	 * outside ASCII */
	assert_int_equal(util_b64_digit('-'), -1);
	assert_int_equal(util_b64_digit('_'), -1);
	assert_int_equal(util_b64url_digit('+'), -1);
	assert_int_equal(util_b64url_digit('/'), -1);
	assert_int_equal(util_b64_digit('='), -1);
	assert_int_equal(util_b64_digit(0xc3), -1);
	assert_int_equal(util_hex_digit('0'), 0);
	assert_int_equal(util_hex_digit('9'), 9);
	assert_int_equal(util_hex_digit('a'), 10);
	assert_int_equal(util_hex_digit('F'), 15);
	assert_int_equal(util_hex_digit('g'), -1);
	assert_int_equal(util_hex_digit('/'), -1);
	assert_int_equal(util_hex_digit(-1), -1);
}

struct utf8_case {
	const char *s;
	size_t avail;
	size_t want;
};

static void
test_utf8_seq(void **state)
{
	static const struct utf8_case cases[] = {
		{ "a", 1, 1 },
		{ "\xc3\xa9", 2, 2 },                 /* é */
		{ "\xe2\x82\xac", 3, 3 },             /* € */
		{ "\xf0\x9f\x98\x80", 4, 4 },         /* U+1F600 */
		{ "\xf4\x8f\xbf\xbf", 4, 4 },         /* U+10FFFF */
		{ "\xc3\xa9", 1, 0 },                 /* cut short */
		{ "\xe2\x82", 2, 0 },
		{ "\xc0\xaf", 2, 0 },                 /* overlong '/' */
		{ "\xc1\xbf", 2, 0 },
		{ "\xe0\x80\xaf", 3, 0 },             /* overlong, 3 bytes */
		{ "\xf0\x80\x80\xaf", 4, 0 },         /* overlong, 4 bytes */
		{ "\xed\xa0\x80", 3, 0 },             /* surrogate U+D800 */
		{ "\xf4\x90\x80\x80", 4, 0 },         /* beyond U+10FFFF */
		{ "\xf5\x80\x80\x80", 4, 0 },         /* bad lead */
		{ "\x80", 1, 0 },                     /* lone continuation */
		{ "\xc3(", 2, 0 },                    /* bad continuation */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = util_utf8_seq((const unsigned char *)cases[i].s,
		    cases[i].avail);
		if (got != cases[i].want)
			fail_msg("case %zu: got %zu, want %zu", i, got,
			    cases[i].want);
	}
}

static void
test_write_and_fsync(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], back[64];
	int fd;
	ssize_t n;

	(void)state;
	assert_int_equal(fixture_dir_make(dir, "test_util"), 0);
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(util_write_full(fd, "hello, world", 12), 0);
	close(fd);
	assert_int_equal(util_fsync_parent(path), 0);
	assert_int_equal(util_fsync_dir(dir), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, back, sizeof(back));
	close(fd);
	assert_int_equal(n, 12);
	assert_memory_equal(back, "hello, world", 12);
	/* a closed descriptor and a missing directory are errors, with errno */
	errno = 0;
	assert_int_equal(util_write_full(fd, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	snprintf(path, sizeof(path), "%s/none/file", dir);
	assert_int_equal(util_fsync_parent(path), -1);
	assert_int_equal(errno, ENOENT);
	fixture_dir_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digits),
		cmocka_unit_test(test_utf8_seq),
		cmocka_unit_test(test_write_and_fsync),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
