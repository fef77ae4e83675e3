/*
 * test_thread.c - unit tests for common/thread.c: Thread-Index decoding and
 * encoding, FILETIME conversion, conversation keys and topic stripping.
 *
 * The base64 literals were computed outside this file (python3 base64) from
 * a header block 01 da 17 47 c6 6d (FILETIME of 2023-11-14T22:13:20Z, high
 * six bytes) followed by the GUID below.
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

#include "thread.h"

static const uint8_t test_guid[THREAD_GUID_LEN] = {
	0x3f, 0x25, 0x04, 0xe0, 0x4f, 0x89, 0x41, 0xd3,
	0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01
};
#define TEST_GUID_HEX "3f2504e04f8941d39a0c0305e82c3301"
#define TEST_FILETIME 0x01da1747c66d0000ULL   /* unix 1700000000 */

/* Header block only. */
#define TI_HEADER   "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQ=="
/* Header block + one child block 00 00 a1 b2 c3. */
#define TI_CHILD1   "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQAAobLD"
/* Header block + three child blocks. */
#define TI_CHILD3   "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQAAobLDAAECAwQKCwwNDg=="

struct decode_case {
	const char *name;
	const char *value;
	enum thread_index_status status;
	unsigned n_children;
};

static const struct decode_case decode_cases[] = {
	{ "header only", TI_HEADER, THREAD_INDEX_OK, 0 },
	{ "one child", TI_CHILD1, THREAD_INDEX_OK, 1 },
	{ "three children", TI_CHILD3, THREAD_INDEX_OK, 3 },
	{ "leading/trailing blanks", "  " TI_HEADER " \r\n", THREAD_INDEX_OK, 0 },
	{ "folded CRLF+TAB", "AdoXR8ZtPyUE4E+J\r\n\tQdOaDAMF6CwzAQ==",
	    THREAD_INDEX_OK, 0 },
	{ "folded LF+space", "AdoXR8ZtPyUE\n 4E+JQdOaDAMF6CwzAQAAobLD",
	    THREAD_INDEX_OK, 1 },
	{ "21 bytes", "AdoXR8ZtPyUE4E+JQdOaDAMF6Cwz", THREAD_INDEX_TRUNCATED, 0 },
	{ "3 bytes", "AdoX", THREAD_INDEX_TRUNCATED, 0 },
	{ "illegal character", "AdoXR8Zt!yUE4E+JQdOaDAMF6CwzAQ==",
	    THREAD_INDEX_BAD_BASE64, 0 },
	{ "url-safe alphabet", "AdoXR8ZtPyUE4E-JQdOaDAMF6CwzAQ==",
	    THREAD_INDEX_BAD_BASE64, 0 },
	{ "data after padding", TI_HEADER "AAAA", THREAD_INDEX_BAD_BASE64, 0 },
	{ "padding inside", "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQ=A",
	    THREAD_INDEX_BAD_BASE64, 0 },
	{ "three pad chars", "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzA===",
	    THREAD_INDEX_BAD_BASE64, 0 },
	{ "length not a multiple of 4", "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQ=",
	    THREAD_INDEX_BAD_BASE64, 0 },
	{ "padding only", "====", THREAD_INDEX_BAD_BASE64, 0 },
	{ "first byte 0x02", "AtoXR8ZtPyUE4E+JQdOaDAMF6CwzAQ==",
	    THREAD_INDEX_BAD_FIRST_BYTE, 0 },
	{ "partial child block", "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQABAg==",
	    THREAD_INDEX_BAD_CHILDREN, 0 },
	{ "empty", "", THREAD_INDEX_EMPTY, 0 },
	{ "whitespace only", " \t\r\n ", THREAD_INDEX_EMPTY, 0 },
};

/* Every row of the decode table. */
static void
test_decode_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		const struct decode_case *c = &decode_cases[i];
		struct thread_index ti;
		enum thread_index_status got;

		memset(&ti, 0xa5, sizeof(ti));
		got = thread_index_decode(c->value, strlen(c->value), &ti);
		if (got != c->status)
			fail_msg("%s: got %s, want %s", c->name,
			    thread_index_strerror(got), thread_index_strerror(c->status));
		if (c->status == THREAD_INDEX_OK) {
			if (ti.n_children != c->n_children)
				fail_msg("%s: %u children, want %u", c->name,
				    ti.n_children, c->n_children);
			assert_memory_equal(ti.guid, test_guid, THREAD_GUID_LEN);
			assert_true(ti.filetime == TEST_FILETIME);
		}
	}
}

/* LEN bounds the read: a valid value cut short is not valid. */
static void
test_decode_honours_len(void)
{
	struct thread_index ti;
	const char *v = TI_CHILD1 "garbage!";

	assert_int_equal(thread_index_decode(v, strlen(TI_CHILD1), &ti),
	    THREAD_INDEX_OK);
	assert_int_equal(ti.n_children, 1);
	assert_int_equal(thread_index_decode(v, 28, &ti), THREAD_INDEX_TRUNCATED);
}

/* Values over THREAD_INDEX_MAX non-blank characters are refused. */
static void
test_decode_too_long(void **state)
{
	struct thread_index ti;
	size_t len = THREAD_INDEX_MAX + 4;
	char *v = malloc(len + 1);

	(void)state;
	assert_non_null(v);
	memset(v, 'A', len);
	v[0] = 'A'; v[1] = 'Q';     /* first byte 0x01 if it were decoded */
	v[len] = '\0';
	assert_int_equal(thread_index_decode(v, len, &ti), THREAD_INDEX_TOO_LONG);

	/* exactly the maximum is decoded: 3072 bytes = 22 + 610 * 5 */
	assert_int_equal(thread_index_decode(v, THREAD_INDEX_MAX, &ti),
	    THREAD_INDEX_OK);
	assert_int_equal(ti.n_children, 610);

	/* blanks do not count towards the limit */
	free(v);
	len = THREAD_INDEX_MAX * 2;
	v = malloc(len + 1);
	assert_non_null(v);
	memset(v, ' ', len);
	memcpy(v + 100, TI_HEADER, strlen(TI_HEADER));
	v[len] = '\0';
	assert_int_equal(thread_index_decode(v, len, &ti), THREAD_INDEX_OK);
	assert_memory_equal(ti.guid, test_guid, THREAD_GUID_LEN);
	free(v);
	test_decode_honours_len();
}

/* Every status has its own description. */
static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(thread_index_strerror(THREAD_INDEX_OK), "ok");
	assert_string_equal(thread_index_strerror(THREAD_INDEX_BAD_CHILDREN),
	    "partial child block");
	assert_string_equal(thread_index_strerror(THREAD_INDEX_TRUNCATED),
	    "truncated header block");
	assert_string_equal(thread_index_strerror((enum thread_index_status)99),
	    "unknown");
}

/* The key is the lower-case hex of the GUID. */
static void
test_key_hex(void **state)
{
	char key[THREAD_KEY_LEN + 1];
	struct thread_index ti;
	static const uint8_t ff[THREAD_GUID_LEN] = {
		0xff, 0xee, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0xd
	};

	(void)state;
	memset(key, 'x', sizeof(key));
	thread_key_hex(test_guid, key);
	assert_string_equal(key, TEST_GUID_HEX);
	thread_key_hex(ff, key);
	assert_string_equal(key, "ffee000102030405060708090a0b0c0d");

	assert_int_equal(thread_index_decode(TI_CHILD3, strlen(TI_CHILD3), &ti),
	    THREAD_INDEX_OK);
	thread_key_hex(ti.guid, key);
	assert_string_equal(key, TEST_GUID_HEX);
}

/* Encoding gives the known literal, and decodes back to the same GUID. */
static void
test_encode_round_trip(void **state)
{
	struct {
		char b64[THREAD_INDEX_B64_LEN];
		char canary;     /* catches a write past THREAD_INDEX_B64_LEN */
	} buf;
	char *b64 = buf.b64;
	struct thread_index ti;
	uint64_t ft;
	uint8_t guid[THREAD_GUID_LEN];
	int i;

	(void)state;
	buf.canary = 'Z';
	thread_index_encode(TEST_FILETIME, test_guid, b64);
	assert_int_equal(buf.canary, 'Z');
	assert_string_equal(b64, TI_HEADER);

	/* a time whose low 16 bits are not zero: they are dropped */
	ft = thread_filetime_from_unix(1234567891);
	assert_true((ft & 0xffff) != 0);
	for (i = 0; i < THREAD_GUID_LEN; i++)
		guid[i] = (uint8_t)(0xf0 - 7 * i);
	thread_index_encode(ft, guid, b64);
	assert_int_equal(strlen(b64), 32);
	assert_int_equal(thread_index_decode(b64, strlen(b64), &ti),
	    THREAD_INDEX_OK);
	assert_memory_equal(ti.guid, guid, THREAD_GUID_LEN);
	assert_true(ti.filetime == (ft & ~(uint64_t)0xffff));
	assert_int_equal(ti.n_children, 0);
}

/* FILETIME from Unix time. */
static void
test_filetime(void **state)
{
	(void)state;
	assert_true(thread_filetime_from_unix(0) == 116444736000000000ULL);
	assert_true(thread_filetime_from_unix(1) == 116444736010000000ULL);
	assert_true(thread_filetime_from_unix(1700000000) == TEST_FILETIME);
	/* before 1970 clamps to the epoch */
	assert_true(thread_filetime_from_unix(-5) == 116444736000000000ULL);
}

/* Derived GUIDs are stable and ignore brackets and blanks around the id. */
static void
test_guid_derive(void **state)
{
	uint8_t a[THREAD_GUID_LEN], b[THREAD_GUID_LEN], c[THREAD_GUID_LEN];
	uint8_t d[THREAD_GUID_LEN], e[THREAD_GUID_LEN], zero[THREAD_GUID_LEN];

	(void)state;
	memset(zero, 0, sizeof(zero));
	thread_guid_derive("<a@b>", a);
	thread_guid_derive("a@b", b);
	thread_guid_derive(" <a@b> ", c);
	assert_memory_equal(a, b, THREAD_GUID_LEN);
	assert_memory_equal(a, c, THREAD_GUID_LEN);
	assert_memory_not_equal(a, zero, THREAD_GUID_LEN);

	thread_guid_derive("<a@b>", d);
	assert_memory_equal(a, d, THREAD_GUID_LEN);   /* stable */

	thread_guid_derive("<a@c>", e);
	assert_memory_not_equal(a, e, THREAD_GUID_LEN);
	thread_guid_derive("<A@b>", e);               /* local part is case-sensitive */
	assert_memory_not_equal(a, e, THREAD_GUID_LEN);
	thread_guid_derive("", e);
	assert_memory_not_equal(a, e, THREAD_GUID_LEN);
}

struct topic_case {
	const char *subject;
	const char *topic;
};

static const struct topic_case topic_cases[] = {
	{ "Re: Printer down", "Printer down" },
	{ "RE: FW: Fwd: Printer down", "Printer down" },
	{ "AW: Drucker", "Drucker" },
	{ "Re[2]: Printer", "Printer" },
	{ "re[12]:Printer", "Printer" },
	{ "SV: VS: WG: x", "x" },
	{ "Regarding x", "Regarding x" },
	{ "Re", "Re" },
	{ "Re Printer", "Re Printer" },
	{ "Re[]: x", "Re[]: x" },
	{ "Re[2] x", "Re[2] x" },
	{ "Fwd", "Fwd" },
	{ "  Re:   spaced out  \t", "spaced out" },
	{ "[EXTERNAL] Re: x", "[EXTERNAL] Re: x" },
	{ "Re: [EXTERNAL] x", "[EXTERNAL] x" },
	{ "Re:", "" },
	{ "", "" },
};

/* Reply and forward prefixes are stripped, nothing else. */
static void
test_topic_table(void **state)
{
	char out[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(topic_cases) / sizeof(topic_cases[0]); i++) {
		thread_topic(topic_cases[i].subject, out, sizeof(out));
		if (strcmp(out, topic_cases[i].topic) != 0)
			fail_msg("topic of '%s': got '%s', want '%s'",
			    topic_cases[i].subject, out, topic_cases[i].topic);
	}
}

/* NULL subject, a small buffer and a zero-size buffer. */
static void
test_topic_bounds(void **state)
{
	char out[8];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_ptr_equal(thread_topic(NULL, out, sizeof(out)), out);
	assert_string_equal(out, "");
	thread_topic("Re: abcdefghij", out, 4);
	assert_string_equal(out, "abc");
	memset(out, 'x', sizeof(out));
	thread_topic("Re: abc", out, 0);
	assert_int_equal(out[0], 'x');     /* untouched */
	thread_topic("Re: abcdefghij", out, 1);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_decode_too_long),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_key_hex),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_filetime),
		cmocka_unit_test(test_guid_derive),
		cmocka_unit_test(test_topic_table),
		cmocka_unit_test(test_topic_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
