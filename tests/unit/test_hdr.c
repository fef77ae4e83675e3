/*
 * test_hdr.c - unit tests for common/hdr.c: Message-ID lists and
 * normalisation, generated Message-IDs, addr-spec extraction, DSN detection,
 * RFC 2047 decoding and the X-Halo-* prefix test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "hdr.h"

#define MAX_WANT 5

struct msgids_case {
	const char *name;
	const char *value;
	size_t max;
	size_t n;
	const char *want[MAX_WANT];
};

static const struct msgids_case msgids_cases[] = {
	{ "two ids in order", "<a@b> <c@d>", 10, 2, { "<a@b>", "<c@d>" } },
	{ "folded", "<a@b>\r\n\t<c@d>\n <e@f>", 10, 3,
	    { "<a@b>", "<c@d>", "<e@f>" } },
	{ "no separator", "<a@b><c@d>", 10, 2, { "<a@b>", "<c@d>" } },
	{ "comment skipped", "(x <no@t>) <a@b>", 10, 1, { "<a@b>" } },
	{ "nested comment", "(x (y <no@t>) <no2@t>) <a@b> (<no3@t>)", 10, 1,
	    { "<a@b>" } },
	{ "stray close paren", ") <a@b>", 10, 1, { "<a@b>" } },
	{ "junk around", "junk <a@b> more junk, <c@d> tail", 10, 2,
	    { "<a@b>", "<c@d>" } },
	{ "blanks inside brackets", "< a@b >", 10, 1, { "<a@b>" } },
	{ "unterminated last", "<a@b> <c@d", 10, 1, { "<a@b>" } },
	{ "empty brackets", "<> <  > <a@b>", 10, 1, { "<a@b>" } },
	{ "bracket inside id", "<a<b@c>", 10, 0, { NULL } },
	{ "no ids", "no ids here", 10, 0, { NULL } },
	{ "empty", "", 10, 0, { NULL } },
	{ "cap 3 over 5: root + last 2",
	    "<1@x> <2@x> <3@x> <4@x> <5@x>", 3, 3, { "<1@x>", "<4@x>", "<5@x>" } },
	{ "cap 2 over 5", "<1@x> <2@x> <3@x> <4@x> <5@x>", 2, 2,
	    { "<1@x>", "<5@x>" } },
	{ "cap 1 keeps the first", "<1@x> <2@x> <3@x>", 1, 1, { "<1@x>" } },
	{ "cap equals count", "<1@x> <2@x> <3@x>", 3, 3,
	    { "<1@x>", "<2@x>", "<3@x>" } },
	{ "cap 0", "<1@x>", 0, 0, { NULL } },
};

/* Every row of the hdr_msgids table. */
static void
test_msgids_table(void **state)
{
	size_t i, j, n;
	char **ids;

	(void)state;
	for (i = 0; i < sizeof(msgids_cases) / sizeof(msgids_cases[0]); i++) {
		const struct msgids_case *c = &msgids_cases[i];
		ids = (char **)&ids;     /* must be reset by the call */
		n = hdr_msgids(c->value, c->max, &ids);
		if (n != c->n)
			fail_msg("%s: %zu ids, want %zu", c->name, n, c->n);
		if (n == 0 && ids != NULL)
			fail_msg("%s: non-NULL list for no ids", c->name);
		for (j = 0; j < n; j++)
			if (strcmp(ids[j], c->want[j]) != 0)
				fail_msg("%s: id %zu is '%s', want '%s'", c->name, j,
				    ids[j], c->want[j]);
		hdr_msgids_free(ids, n);
	}
}

/* NULL value, an over-long id and many ids under a cap. */
static void
test_msgids_bounds(void **state)
{
	char **ids = NULL;
	char *big;
	size_t n, i, len;

	(void)state;
	assert_int_equal(hdr_msgids(NULL, 5, &ids), 0);
	assert_null(ids);
	hdr_msgids_free(NULL, 0);

	/* an id longer than HDR_MSGID_MAX is dropped, the next one kept */
	len = HDR_MSGID_MAX + 20;
	big = malloc(len + 16);
	assert_non_null(big);
	big[0] = '<';
	memset(big + 1, 'a', HDR_MSGID_MAX);
	strcpy(big + 1 + HDR_MSGID_MAX, "@x> <k@x>");
	n = hdr_msgids(big, 4, &ids);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "<k@x>");
	hdr_msgids_free(ids, n);
	free(big);

	/* 1000 ids, cap 32: the root and the nearest 31 */
	big = malloc(1000 * 12 + 1);
	assert_non_null(big);
	big[0] = '\0';
	for (i = 0, len = 0; i < 1000; i++)
		len += (size_t)sprintf(big + len, "<%zu@x> ", i);
	n = hdr_msgids(big, 32, &ids);
	assert_int_equal(n, 32);
	assert_string_equal(ids[0], "<0@x>");
	assert_string_equal(ids[1], "<969@x>");
	assert_string_equal(ids[31], "<999@x>");
	hdr_msgids_free(ids, n);
	free(big);
}

struct one_case {
	const char *value;
	bool ok;
	const char *want;
};

static const struct one_case one_cases[] = {
	{ "<a@b.example>", true, "<a@b.example>" },
	{ "  <a@b.example>  ", true, "<a@b.example>" },
	{ "a@b.example", true, "<a@b.example>" },
	{ "\t a@b.example \r\n", true, "<a@b.example>" },
	{ "<a@b> (comment)", true, "<a@b>" },
	{ "(c <x@y>) <a@b>", true, "<a@b>" },
	{ "<first@x> <second@x>", true, "<first@x>" },
	{ "two words", false, NULL },
	{ "<>", false, NULL },
	{ "<unterminated@x", false, NULL },
	{ "a>b@c", false, NULL },
	{ "", false, NULL },
	{ "   ", false, NULL },
};

/* hdr_msgid_one normalises to "<id>" or refuses. */
static void
test_msgid_one(void **state)
{
	char out[HDR_MSGID_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(one_cases) / sizeof(one_cases[0]); i++) {
		const struct one_case *c = &one_cases[i];
		bool ok;

		strcpy(out, "untouched");
		ok = hdr_msgid_one(c->value, out);
		if (ok != c->ok)
			fail_msg("'%s': got %d, want %d", c->value, ok, c->ok);
		if (ok && strcmp(out, c->want) != 0)
			fail_msg("'%s': got '%s', want '%s'", c->value, out, c->want);
	}
	assert_false(hdr_msgid_one(NULL, out));
}

/* An unbracketed id too long to bracket is refused. */
static void
test_msgid_one_long(void **state)
{
	char out[HDR_MSGID_MAX + 1];
	char v[HDR_MSGID_MAX + 1];

	(void)state;
	memset(v, 'a', HDR_MSGID_MAX - 2);      /* fits exactly with <> */
	v[HDR_MSGID_MAX - 2] = '\0';
	assert_true(hdr_msgid_one(v, out));
	assert_int_equal(strlen(out), HDR_MSGID_MAX);
	assert_int_equal(out[0], '<');
	assert_int_equal(out[HDR_MSGID_MAX - 1], '>');
	memset(v, 'a', HDR_MSGID_MAX - 1);
	v[HDR_MSGID_MAX - 1] = '\0';
	assert_false(hdr_msgid_one(v, out));
}

/* "<32hex.hm@domain>" from the first 16 digest bytes. */
static void
test_msgid_generate(void **state)
{
	uint8_t digest[32];
	char out[HDR_MSGID_MAX + 1];
	char longdom[300];
	int i;

	(void)state;
	for (i = 0; i < 32; i++)
		digest[i] = (uint8_t)(i * 17);
	hdr_msgid_generate(digest, "mx.example.org", out);
	assert_string_equal(out,
	    "<00112233445566778899aabbccddeeff.hm@mx.example.org>");
	hdr_msgid_generate(digest, NULL, out);
	assert_string_equal(out,
	    "<00112233445566778899aabbccddeeff.hm@localhost>");
	hdr_msgid_generate(digest, "", out);
	assert_string_equal(out,
	    "<00112233445566778899aabbccddeeff.hm@localhost>");
	memset(longdom, 'd', sizeof(longdom) - 1);
	longdom[sizeof(longdom) - 1] = '\0';
	hdr_msgid_generate(digest, longdom, out);
	assert_string_equal(out,
	    "<00112233445566778899aabbccddeeff.hm@localhost>");
	/* the rest of the digest does not matter */
	digest[31] ^= 0xff;
	hdr_msgid_generate(digest, "h", out);
	assert_string_equal(out, "<00112233445566778899aabbccddeeff.hm@h>");
	digest[0] = 0xab;
	hdr_msgid_generate(digest, "h", out);
	assert_string_equal(out, "<ab112233445566778899aabbccddeeff.hm@h>");
}

struct addr_case {
	const char *value;
	bool ok;
	const char *want;
};

static const struct addr_case addr_cases[] = {
	{ "John Doe <John.Doe@Example.COM>", true, "john.doe@example.com" },
	{ "\"Doe, John\" <jd@example.com>", true, "jd@example.com" },
	{ "\"j.d\"@Example.com", true, "\"j.d\"@example.com" },
	{ "=?utf-8?q?J=C3=B6rg?= <Jorg@Example.de>", true, "jorg@example.de" },
	{ "=?iso-8859-1?b?SvZyZw==?= <jorg@example.de>", true, "jorg@example.de" },
	{ "bob@example.com (Bob)", true, "bob@example.com" },
	{ "A <b@c.example>, D <e@f.example>", true, "b@c.example" },
	{ "<a@B.example>", true, "a@b.example" },
	{ "  <MAILER-DAEMON@X.example>  ", true, "mailer-daemon@x.example" },
	{ "a@b.example", true, "a@b.example" },
	{ "joe@[192.0.2.1]", true, "joe@[192.0.2.1]" },
	{ "Team: a@b.example, c@d.example;", true, "a@b.example" },
	{ "Friends: Alice <Alice@A.example>;", true, "alice@a.example" },
	{ "undisclosed-recipients:; <z@x.example>", true, "z@x.example" },
	{ "undisclosed-recipients:;", false, NULL },
	{ "<>", false, NULL },
	{ "", false, NULL },
	{ "garbage", false, NULL },
	{ "no at sign <foo>", false, NULL },
	{ "two words@x y", false, NULL },
	{ "\"john doe\"@example.com", false, NULL },  /* blank in addr-spec */
	{ "user@", false, NULL },
	{ "@example.com", false, NULL },
	{ "<@example.com>", false, NULL },
	{ "@", false, NULL },
};

/* hdr_addr_spec over header and envelope forms. */
static void
test_addr_spec(void **state)
{
	char out[HDR_ADDR_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		bool ok;

		out[0] = '\0';
		ok = hdr_addr_spec(c->value, out);
		if (ok != c->ok)
			fail_msg("'%s': got %d ('%s'), want %d", c->value, ok,
			    ok ? out : "", c->ok);
		if (ok && strcmp(out, c->want) != 0)
			fail_msg("'%s': got '%s', want '%s'", c->value, out, c->want);
	}
	assert_false(hdr_addr_spec(NULL, out));
}

/* Addresses over HDR_ADDR_MAX and values over HDR_VALUE_MAX are refused. */
static void
test_addr_spec_long(void **state)
{
	char out[HDR_ADDR_MAX + 1];
	char *v;
	size_t len;

	(void)state;
	len = HDR_ADDR_MAX + 10;
	v = malloc(len + 1);
	assert_non_null(v);
	memset(v, 'a', len);
	memcpy(v + len - 10, "@x.example", 10);
	v[len] = '\0';
	assert_false(hdr_addr_spec(v, out));
	/* exactly HDR_ADDR_MAX is fine */
	assert_true(hdr_addr_spec(v + 10, out));
	assert_int_equal(strlen(out), HDR_ADDR_MAX);
	free(v);

	v = malloc(HDR_VALUE_MAX + 2);
	assert_non_null(v);
	memset(v, ' ', HDR_VALUE_MAX + 1);
	memcpy(v, "a@b.example", 11);
	v[HDR_VALUE_MAX + 1] = '\0';
	assert_false(hdr_addr_spec(v, out));
	free(v);
}

struct dsn_case {
	const char *value;
	bool dsn;
};

static const struct dsn_case dsn_cases[] = {
	{ "multipart/report; report-type=delivery-status; boundary=x", true },
	{ "multipart/report; report-type=\"delivery-status\"", true },
	{ "Multipart/Report; Report-Type=Delivery-Status", true },
	{ "MULTIPART/REPORT;REPORT-TYPE=\"DELIVERY-STATUS\"", true },
	{ "multipart/report;\r\n\tboundary=\"a;b\"; report-type=delivery-status",
	    true },
	{ "multipart/report (why) ; report-type = delivery-status", true },
	{ "multipart/report; report-type=disposition-notification", false },
	{ "multipart/report; report-type=delivery-status-x", false },
	{ "multipart/mixed; report-type=delivery-status", false },
	{ "message/delivery-status", false },
	{ "multipart/report", false },
	{ "text/plain", false },
	{ "", false },
	{ ";;;===", false },
};

/* Only delivery-status reports are DSNs. */
static void
test_is_dsn(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dsn_cases) / sizeof(dsn_cases[0]); i++)
		if (hdr_is_dsn(dsn_cases[i].value) != dsn_cases[i].dsn)
			fail_msg("'%s': want %d", dsn_cases[i].value,
			    dsn_cases[i].dsn);
	assert_false(hdr_is_dsn(NULL));
}

struct decode_case {
	const char *value;
	const char *want;
};

static const struct decode_case decode_cases[] = {
	{ "=?utf-8?q?J=C3=B6rg_M?=", "J\xc3\xb6rg M" },
	{ "=?UTF-8?Q?J=C3=B6rg?=", "J\xc3\xb6rg" },
	{ "=?iso-8859-1?b?SvZyZw==?=", "J\xc3\xb6rg" },
	{ "=?utf-8?B?w6k=?=", "\xc3\xa9" },
	{ "=?utf-8?q?a?= =?utf-8?q?b?=", "ab" },   /* blank between words dropped */
	{ "Re: =?utf-8?q?caf=C3=A9?= menu", "Re: caf\xc3\xa9 menu" },
	{ "plain text", "plain text" },
	{ "", "" },
	/* issue 17: each word decoded on its own (GMime 3.2.13 stops at the
	 * first word's padding when the next has the same charset) */
	{ "=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=", "\xc3\xa9\xc3\xa9" },
	{ "=?UTF-8?B?w6k=?=\r\n =?UTF-8?B?w6k=?=\r\n =?UTF-8?B?IFtJRDoxMjM0XQ==?=",
	    "\xc3\xa9\xc3\xa9 [ID:1234]" },
	/* a character split across two words of one charset */
	{ "=?UTF-8?B?4oK=?= =?UTF-8?B?rA==?=", "\xe2\x82\xac" },
	{ "=?utf-8?q?=E2=82?= =?utf-8?q?=AC_?=", "\xe2\x82\xac " },
	/* base64 without its padding */
	{ "=?UTF-8?B?w6k?=", "\xc3\xa9" },
	{ "=?UTF-8?B?w6nDqQ?=", "\xc3\xa9\xc3\xa9" },
	/* adjacent words of two charsets, blanks between them dropped */
	{ "=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "\xc3\xa9\xc3\xa9" },
	/* RFC 2231 language in an encoded word */
	{ "=?utf-8*en?q?hi?=", "hi" },
	/* a word and text: the blank between them kept */
	{ "=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c" },
	{ "x=?utf-8?q?a?=", "xa" },
	/* folded: one space, not two */
	{ "a long subject \r\n that was folded", "a long subject that was folded" },
	{ "a long subject\r\n\tthat was folded", "a long subject that was folded" },
	{ "  padded  ", "padded" },
	/* malformed words stay as they are */
	{ "=?utf-8?x?abc?=", "=?utf-8?x?abc?=" },
	{ "=?utf-8?q?a b?=", "=?utf-8?q?a b?=" },
	{ "=??q?a?=", "=??q?a?=" },
	{ "=?utf-8?q?unterminated", "=?utf-8?q?unterminated" },
	/* an unknown charset: UTF-8 when it is, else Windows-1252 */
	{ "=?x-unknown?q?=C3=A9?=", "\xc3\xa9" },
	{ "=?x-unknown?q?=E9?=", "\xc3\xa9" },
	/* raw 8-bit Latin-1 in a header */
	{ "caf\xe9", "caf\xc3\xa9" },
	/* a line break inside a word: one line */
	{ "=?utf-8?q?a=0D=0Ab=09c?=", "a  b c" },
	/* ISO-2022-JP with an NEC extension (No. sign, row 13) */
	{ "=?ISO-2022-JP?B?GyRCLWIbKEI=?=", "\xe2\x84\x96" },
};

/* RFC 2047 decoding to UTF-8. */
static void
test_decode_text(void **state)
{
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		s = hdr_decode_text(decode_cases[i].value);
		assert_non_null(s);
		if (strcmp(s, decode_cases[i].want) != 0)
			fail_msg("'%s': got '%s', want '%s'", decode_cases[i].value, s,
			    decode_cases[i].want);
		free(s);
	}
	s = hdr_decode_text(NULL);
	assert_string_equal(s, "");
	free(s);
}

/* Encoding round-trips through decoding. */
static void
test_encode_text(void **state)
{
	char *e, *d;

	(void)state;
	e = hdr_encode_text("plain");
	assert_string_equal(e, "plain");
	free(e);
	e = hdr_encode_text("caf\xc3\xa9 au lait");
	assert_non_null(strstr(e, "=?"));
	d = hdr_decode_text(e);
	assert_string_equal(d, "caf\xc3\xa9 au lait");
	free(e);
	free(d);
}

/* X-Halo-* in any case, nothing else. */
static void
test_is_ours(void **state)
{
	(void)state;
	assert_true(hdr_is_ours("X-Halo-Status"));
	assert_true(hdr_is_ours("x-halo-conversation-id"));
	assert_true(hdr_is_ours("X-HALO-"));
	assert_false(hdr_is_ours("X-Halo"));
	assert_false(hdr_is_ours("X-Halos-Status"));
	assert_false(hdr_is_ours("Subject"));
	assert_false(hdr_is_ours(""));
}

/* Everything goes through GMime: initialise it once up front. */
/* Spooled headers: the first of each name, unfolded and trimmed, any
 * case, LF or CRLF; none read from the body; a block cut at the bound. */
static void
test_read_file(void **state)
{
	static const char *const names[] = { "References", "to", "Cc", "X-Body" };
	static const char *const mails[] = {
		"From: a@b.example\nTO: <x@y.example>,\n\t<z@y.example>\n"
		"References: <1@a>\n <2@a>\nReferences: <3@a>\n\nX-Body: no\n",
		"From: a@b.example\r\nTO: <x@y.example>,\r\n\t<z@y.example>\r\n"
		"References: <1@a>\r\n <2@a>\r\nReferences: <3@a>\r\n\r\n"
		"X-Body: no\r\n",
	};
	char path[] = "/tmp/test_hdr.XXXXXX", *v[4];
	size_t i;
	FILE *fp;
	int fd;

	(void)state;
	for (i = 0; i < 2; i++) {
		assert_true((fd = mkstemp(path)) >= 0);
		assert_non_null(fp = fdopen(fd, "w"));
		fputs(mails[i], fp);
		fclose(fp);
		assert_int_equal(hdr_read_file(path, 4096, names, 4, v), 0);
		assert_string_equal(v[0], "<1@a> <2@a>");
		assert_non_null(v[1]);
		assert_non_null(strstr(v[1], "<x@y.example>,"));
		assert_non_null(strstr(v[1], "<z@y.example>"));
		assert_null(strchr(v[1], '\n'));
		assert_null(v[2]);
		assert_null(v[3]);
		free(v[0]);
		free(v[1]);
		/* cut after the From line: nothing else is read */
		assert_int_equal(hdr_read_file(path, 20, names, 4, v), 0);
		assert_null(v[0]);
		assert_null(v[1]);
		unlink(path);
		strcpy(path, "/tmp/test_hdr.XXXXXX");
	}
	assert_int_equal(hdr_read_file("/nonexistent/spool", 4096, names, 4, v),
	    -1);
}

static int
setup(void **state)
{
	(void)state;
	hdr_init();
	hdr_init();     /* idempotent */
	return 0;
}

/* Display names: decoded word by word, quotes and comments removed. */
static void
test_display_name(void **state)
{
	static const struct { const char *value, *want; } cases[] = {
		{ "=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?= Dupont <e@x.example>",
		    "\xc3\xa9\xc3\xa9 Dupont" },
		{ "\"Doe, Jane\" <jane@x.example>", "Doe, Jane" },
		{ "\"=?utf-8?q?J=C3=B6rg?=\" <j@x.example>", "J\xc3\xb6rg" },
		{ "Jane (work) Doe <jane@x.example>", "Jane Doe" },
		{ "\"a \\\"q\\\" b\" <a@x.example>", "a \"q\" b" },
		{ "jane@x.example", "" },
		{ "<jane@x.example>", "" },
		{ "a@x.example, B <b@x.example>", "" },
		{ "Team: a@x.example;", "" },
		{ "  Jane\r\n Doe  <j@x.example>", "Jane Doe" },
		{ "", "" },
	};
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = hdr_display_name(cases[i].value);
		assert_non_null(s);
		if (strcmp(s, cases[i].want) != 0)
			fail_msg("'%s': got '%s', want '%s'", cases[i].value, s,
			    cases[i].want);
		free(s);
	}
	s = hdr_display_name(NULL);
	assert_string_equal(s, "");
	free(s);
}

/* multipart/report of a given report-type. */
static void
test_is_report(void **state)
{
	(void)state;
	assert_true(hdr_is_report("multipart/report; report-type="
	    "disposition-notification; boundary=b", "disposition-notification"));
	assert_true(hdr_is_report("Multipart/Report; Report-Type=\"Feedback-Report\"",
	    "feedback-report"));
	assert_false(hdr_is_report("multipart/mixed; report-type=feedback-report",
	    "feedback-report"));
	assert_false(hdr_is_report("multipart/report", "feedback-report"));
	assert_false(hdr_is_report(NULL, "feedback-report"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgids_table),
		cmocka_unit_test(test_msgids_bounds),
		cmocka_unit_test(test_msgid_one),
		cmocka_unit_test(test_msgid_one_long),
		cmocka_unit_test(test_msgid_generate),
		cmocka_unit_test(test_addr_spec),
		cmocka_unit_test(test_addr_spec_long),
		cmocka_unit_test(test_is_dsn),
		cmocka_unit_test(test_decode_text),
		cmocka_unit_test(test_encode_text),
		cmocka_unit_test(test_is_ours),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_display_name),
		cmocka_unit_test(test_is_report),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
