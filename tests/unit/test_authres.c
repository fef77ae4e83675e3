/*
 * test_authres.c - unit tests for Authentication-Results parsing and the
 * From: authenticity decision (authres.c): a table of header values with
 * what must be kept of them, and a table of decisions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "authres.h"

struct parse_case {
	const char *value;
	int rc;                     /* authres_parse's answer */
	const char *id;
	size_t n;                   /* results kept */
	/* the first three results: method, pass, domain */
	enum authres_method m[3];
	bool pass[3];
	const char *d[3];
};

static const struct parse_case parse_cases[] = {
	/* OpenDKIM + OpenDMARC style, one header each merged */
	{ "mx.example.net; dkim=pass (2048-bit key; unprotected) header.d=Example.COM"
	  " header.i=@example.com header.a=rsa-sha256 header.s=s1 header.b=AbC",
	  0, "mx.example.net", 1, { AUTHRES_DKIM }, { true }, { "example.com" } },
	{ "mx.example.net; dmarc=pass (p=reject dis=none) header.from=example.com",
	  0, "mx.example.net", 1, { AUTHRES_DMARC }, { true }, { "example.com" } },
	/* rspamd: several results, folded, comments, quoted reason */
	{ "rspamd.example.net;\r\n\tdkim=pass header.d=a.example header.s=x;\r\n"
	  "\tspf=pass (rspamd: domain of b@b.example designates 192.0.2.1)"
	  " smtp.mailfrom=b@b.example;\r\n\tdmarc=fail reason=\"policy (x; y)\""
	  " header.from=c.example (policy=reject)",
	  0, "rspamd.example.net", 3, { AUTHRES_DKIM, AUTHRES_SPF, AUTHRES_DMARC },
	  { true, true, false }, { "a.example", "b.example", "c.example" } },
	/* version after the authserv-id; "none" */
	{ "mx.example.net 1; none", 0, "mx.example.net", 0, { 0 }, { 0 }, { 0 } },
	/* quoted authserv-id, method version, quoted local part */
	{ "\"MX.Example.Net\"; spf/1=pass smtp.mailfrom=\"a b\"@Spf.Example",
	  0, "mx.example.net", 1, { AUTHRES_SPF }, { true }, { "spf.example" } },
	/* header.i only: its domain */
	{ "mx; dkim=pass header.i=user@sub.example.org", 0, "mx", 1,
	  { AUTHRES_DKIM }, { true }, { "sub.example.org" } },
	/* a broken resinfo is dropped, the next one kept */
	{ "mx; dkim=pass header.d; spf=fail smtp.mailfrom=x.example", 0, "mx", 1,
	  { AUTHRES_SPF }, { false }, { "x.example" } },
	{ "mx; dkim pass header.d=x.example; dmarc=pass header.from=y.example",
	  0, "mx", 1, { AUTHRES_DMARC }, { true }, { "y.example" } },
	/* an unterminated quoted string or comment ends the header */
	{ "mx; dkim=pass header.d=\"x.example", 0, "mx", 0, { 0 }, { 0 }, { 0 } },
	{ "mx; dmarc=pass header.from=x.example (unterminated", 0, "mx", 1,
	  { AUTHRES_DMARC }, { true }, { "x.example" } },
	/* a comment hiding a result is not a result */
	{ "mx; (dmarc=pass header.from=x.example) spf=none", 0, "mx", 1,
	  { AUTHRES_SPF }, { false }, { "" } },
	/* a ';' ends the value: what follows is another (broken) result */
	{ "mx; dkim=pass header.d=ex;ample.com", 0, "mx", 1, { AUTHRES_DKIM },
	  { true }, { "ex" } },
	/* a domain that is not one is not kept */
	{ "mx; dkim=pass header.d=exa%mple.com", 0, "mx", 1, { AUTHRES_DKIM },
	  { true }, { "" } },
	/* unusable values */
	{ "", -1, NULL, 0, { 0 }, { 0 }, { 0 } },
	{ "   (only a comment)", -1, NULL, 0, { 0 }, { 0 }, { 0 } },
	{ "; dkim=pass header.d=x.example", -1, NULL, 0, { 0 }, { 0 }, { 0 } },
};

static void
test_parse_table(void **state)
{
	struct authres res;
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		int rc = authres_parse(c->value, strlen(c->value), &res);
		if (rc != c->rc)
			fail_msg("case %zu: rc %d, want %d", i, rc, c->rc);
		if (rc != 0)
			continue;
		if (strcmp(res.authserv_id, c->id) != 0 || res.n_results != c->n)
			fail_msg("case %zu: id '%s' n %zu, want '%s' %zu", i,
			    res.authserv_id, res.n_results, c->id, c->n);
		for (k = 0; k < c->n && k < 3; k++)
			if (res.results[k].method != c->m[k] ||
			    res.results[k].pass != c->pass[k] ||
			    strcmp(res.results[k].domain, c->d[k]) != 0)
				fail_msg("case %zu result %zu: %d %d '%s'", i, k,
				    res.results[k].method, res.results[k].pass,
				    res.results[k].domain);
	}
}

/* Limits: too long, NUL bytes, too many results. */
static void
test_parse_limits(void **state)
{
	static char big[AUTHRES_INPUT_MAX + 2];
	struct authres res;
	size_t n = 0;
	int i;

	(void)state;
	assert_int_equal(authres_parse("mx\0; dkim=pass", 14, &res), -1);
	assert_int_equal(authres_parse(NULL, 3, &res), -1);
	memset(big, 'a', sizeof(big) - 1);
	assert_int_equal(authres_parse(big, sizeof(big) - 1, &res), -1);
	n = (size_t)snprintf(big, sizeof(big), "mx");
	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		    "; spf=pass smtp.mailfrom=d%d.example", i);
	assert_int_equal(authres_parse(big, n, &res), 0);
	assert_int_equal(res.n_results, AUTHRES_RESULTS_MAX);
	assert_string_equal(res.results[0].domain, "d0.example");
	/* an over-long authserv-id */
	memset(big, 'b', 300);
	memcpy(big + 300, "; none", 7);
	assert_int_equal(authres_parse(big, strlen(big), &res), -1);
}

static void
test_aligned(void **state)
{
	(void)state;
	assert_true(authres_aligned("example.com", "EXAMPLE.com"));
	assert_true(authres_aligned("mail.example.com", "example.com"));
	assert_true(authres_aligned("example.com", "a.b.example.com"));
	assert_false(authres_aligned("example.com", "com"));
	assert_false(authres_aligned("badexample.com", "example.com"));
	assert_false(authres_aligned("example.com", "example.org"));
	assert_false(authres_aligned("", "example.com"));
	assert_false(authres_aligned(NULL, "example.com"));
	assert_false(authres_aligned("example.com.evil.net", "example.com"));
}

struct sender_case {
	const char *from, *env;
	const char *header;         /* one A-R value, or NULL */
	enum authres_sender want;
};

static const struct sender_case sender_cases[] = {
	/* no headers: only the envelope */
	{ "client.example", "client.example", NULL, AUTHRES_SENDER_ALIGNED },
	{ "client.example", "bounce.client.example", NULL, AUTHRES_SENDER_ALIGNED },
	{ "client.example", "evil.example", NULL, AUTHRES_SENDER_NONE },
	{ "client.example", NULL, NULL, AUTHRES_SENDER_NONE },
	{ "", "client.example", NULL, AUTHRES_SENDER_NONE },
	/* a trusted header vouches */
	{ "client.example", "esp.example",
	  "mx.msp.example; dmarc=pass header.from=client.example",
	  AUTHRES_SENDER_DMARC },
	{ "client.example", "esp.example",
	  "mx.msp.example; dkim=pass header.d=mail.client.example",
	  AUTHRES_SENDER_DKIM },
	{ "client.example", "esp.example",
	  "mx.msp.example; spf=pass smtp.mailfrom=b@client.example",
	  AUTHRES_SENDER_SPF },
	/* the strongest wins */
	{ "client.example", "client.example",
	  "mx.msp.example; spf=pass smtp.mailfrom=client.example;"
	  " dmarc=pass header.from=client.example", AUTHRES_SENDER_DMARC },
	/* passes for another domain, or failures, vouch for nothing */
	{ "client.example", "evil.example",
	  "mx.msp.example; dmarc=pass header.from=evil.example;"
	  " dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=evil.example",
	  AUTHRES_SENDER_NONE },
	{ "client.example", "evil.example",
	  "mx.msp.example; dmarc=fail header.from=client.example;"
	  " dkim=neutral header.d=client.example", AUTHRES_SENDER_NONE },
	{ "client.example", "evil.example",
	  "mx.msp.example; dmarc=pass", AUTHRES_SENDER_NONE },
	/* an authserv-id the operator does not name is ignored */
	{ "client.example", "evil.example",
	  "mx.evil.example; dmarc=pass header.from=client.example",
	  AUTHRES_SENDER_NONE },
	/* a result inside a comment is not a result */
	{ "client.example", "evil.example",
	  "mx.msp.example; spf=fail (dmarc=pass header.from=client.example)"
	  " smtp.mailfrom=evil.example", AUTHRES_SENDER_NONE },
};

static void
test_sender_table(void **state)
{
	char *ids[] = { "other.example", "mx.msp.example" };
	struct authres res;
	enum authres_sender got;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(sender_cases) / sizeof(sender_cases[0]); i++) {
		const struct sender_case *c = &sender_cases[i];
		n = 0;
		if (c->header != NULL) {
			assert_int_equal(authres_parse(c->header,
			    strlen(c->header), &res), 0);
			n = 1;
		}
		got = authres_sender(c->from, c->env, &res, n, ids, 2);
		if (got != c->want)
			fail_msg("case %zu: %s, want %s", i,
			    authres_sender_name(got), authres_sender_name(c->want));
	}
	/* no trusted ids: headers count for nothing */
	assert_int_equal(authres_parse(sender_cases[5].header,
	    strlen(sender_cases[5].header), &res), 0);
	assert_int_equal(authres_sender("client.example", "esp.example", &res, 1,
	    ids, 0), AUTHRES_SENDER_NONE);
	assert_string_equal(authres_sender_name(AUTHRES_SENDER_DMARC), "dmarc");
	assert_string_equal(authres_sender_name(AUTHRES_SENDER_NONE), "none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_sender_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
