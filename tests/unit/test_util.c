/*
 * test_util.c - the shared byte-level helpers (common/util.c): digit
 * values, UTF-8 sequence validation, the growable buffer, full reads and
 * writes and directory fsync.
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
	n = util_read_full(fd, back, sizeof(back));
	close(fd);
	assert_int_equal(n, 12);
	assert_memory_equal(back, "hello, world", 12);
	/* a bound shorter than the file reads just that much */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(util_read_full(fd, back, 5), 5);
	assert_int_equal(util_read_full(fd, back + 5, 64), 7);
	assert_int_equal(util_read_full(fd, back, 64), 0);
	close(fd);
	assert_memory_equal(back, "hello, world", 12);
	/* reading from a pipe in short pieces gathers them all */
	{
		int pfd[2];

		assert_int_equal(pipe(pfd), 0);
		assert_int_equal(write(pfd[1], "ab", 2), 2);
		assert_int_equal(write(pfd[1], "cd", 2), 2);
		close(pfd[1]);
		assert_int_equal(util_read_full(pfd[0], back, sizeof(back)), 4);
		assert_memory_equal(back, "abcd", 4);
		close(pfd[0]);
	}
	errno = 0;
	assert_int_equal(util_read_full(fd, back, 1), -1);
	assert_int_equal(errno, EBADF);
	/* a closed descriptor and a missing directory are errors, with errno */
	errno = 0;
	assert_int_equal(util_write_full(fd, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	snprintf(path, sizeof(path), "%s/none/file", dir);
	assert_int_equal(util_fsync_parent(path), -1);
	assert_int_equal(errno, ENOENT);
	fixture_dir_remove(dir);
}

/* The growable buffer: NUL-terminated, bounded by MAX, sticky failure. */
static void
test_buf(void **state)
{
	struct util_buf b = { 0 };
	char big[1000];
	size_t i;

	(void)state;

	/* an empty reservation still gives a string */
	assert_true(util_buf_reserve(&b, 0));
	assert_non_null(b.s);
	assert_string_equal(b.s, "");
	assert_int_equal(b.len, 0);
	util_buf_clear(&b);
	assert_null(b.s);

	memset(big, 'x', sizeof(big));
	for (i = 0; i < 100; i++)
		assert_true(util_buf_add(&b, big, sizeof(big)));
	assert_int_equal(b.len, 100000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.s[b.len], '\0');
	assert_int_equal(strspn(b.s, "x"), 100000);
	assert_true(util_buf_add(&b, "yz", 2));
	assert_string_equal(b.s + 100000, "yz");
	util_buf_clear(&b);

	/* MAX bounds the length and the memory; a refusal sticks */
	b.max = 10;
	assert_true(util_buf_add(&b, "0123456789", 10));
	assert_true(b.cap <= 11);
	assert_false(util_buf_add(&b, "a", 1));
	assert_true(b.oom);
	assert_false(util_buf_reserve(&b, 0));
	assert_string_equal(b.s, "0123456789");
	util_buf_clear(&b);
	assert_int_equal(b.max, 10);
	assert_false(b.oom);
	/* a length that would overflow is refused, not wrapped */
	b.max = 0;
	assert_true(util_buf_add(&b, "ab", 2));
	assert_false(util_buf_reserve(&b, SIZE_MAX - 1));
	assert_true(b.oom);
	util_buf_clear(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digits),
		cmocka_unit_test(test_utf8_seq),
		cmocka_unit_test(test_write_and_fsync),
		cmocka_unit_test(test_buf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
