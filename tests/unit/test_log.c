/*
 * test_log.c - log_clean(): error text from Halo or its auth server made
 * fit for a job reason, a log line or a page (printable, bounded, one line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct clean_case {
	const char *in;
	size_t outsz;
	const char *want;
};

static void
test_clean_table(void **state)
{
	static const struct clean_case cases[] = {
		{ "invalid_grant", 64, "invalid_grant" },
		/* forged log lines: newlines become one space */
		{ "bad\r\nFeb 30 halo-milter: enrolled admin", 128,
		    "bad Feb 30 halo-milter: enrolled admin" },
		{ "  lead\t\ttabs  and trail  ", 64, "lead tabs and trail" },
		/* escapes, NUL-free controls, DEL, non-ASCII */
		{ "\x1b[31mred\x1b[0m", 64, "?[31mred?[0m" },
		{ "caf\xc3\xa9\x7f", 64, "caf???" },
		/* <script> stays text (pages escape it), but bounded */
		{ "<script>alert(1)</script>", 12, "<script>..." },
		{ "abcdef", 4, "..." },
		{ "abcdef", 7, "abcdef" },
		{ "", 8, "" },
		{ NULL, 8, "-" },
	};
	char out[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 'Z', sizeof(out));
		log_clean(cases[i].in, cases[i].in ? strlen(cases[i].in) : 0, out,
		    cases[i].outsz);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, out,
			    cases[i].want);
		assert_true(strlen(out) < cases[i].outsz);
	}
}

/* A long body is cut at LOG_CLEAN_MAX, whatever room the caller has, and
 * only LEN bytes are read. */
static void
test_clean_bounds(void **state)
{
	char big[5000], out[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	log_clean(big, sizeof(big), out, sizeof(out));
	assert_int_equal(strlen(out), LOG_CLEAN_MAX);
	assert_string_equal(out + LOG_CLEAN_MAX - 3, "...");
	for (i = 0; out[i] != '\0'; i++)
		assert_true(out[i] >= 0x20 && out[i] < 0x7f);
	log_clean(big, 5, out, sizeof(out));
	assert_string_equal(out, "abcde");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_table),
		cmocka_unit_test(test_clean_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
