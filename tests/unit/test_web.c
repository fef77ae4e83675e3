/*
 * test_web.c - unit tests for milter/web.c: code normalisation and keyed
 * hashing, cookie and form parsing, the callback's state checks, request
 * size checks, the wrong-code limiter, HTML escaping, origins; the
 * enrollment rows of the store (single use, one-time verifier); and the
 * server itself on a free loopback port (routes, headers, 413, a port in
 * use, HTTPS with a generated certificate).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fixture.h"
#include "conf.h"
#include "crypto.h"
#include "metrics.h"
#include "oauth.h"
#include "store.h"
#include "web.h"
#include "web_int.h"

#define ENROLL_TYPED_MAX_TEST 64     /* what web.c reads of a typed code */

static const uint8_t KEY1[CRYPTO_KEY_LEN] = { 1, 2, 3 };
static const uint8_t KEY2[CRYPTO_KEY_LEN] = { 9, 8, 7 };

/* ------------------------------------------------------------ hashing */

/* Codes are compared after normalisation, by a keyed hash. */
static void
test_code_hash(void **state)
{
	char key1[65], key2[65], a[65], b[65], c[65];
	static const char *const same[] = {
		"BCDFGHJK", "bcdf-ghjk", "BCDF-GHJK", " bcdf ghjk ", "bCdF-gHjK"
	};
	static const char *const bad[] = {
		"", "BCDFGHJ", "BCDFGHJKL", "ABCDEFGH", "BCDF-GHJ1", "BCDF_GHJK",
		"BCDF-GHJK-BCDF"
	};
	char padded[ENROLL_TYPED_MAX_TEST + 2];
	size_t i;

	(void)state;
	assert_int_equal(enroll_hash_key(KEY1, key1), 0);
	assert_int_equal(enroll_hash_key(KEY2, key2), 0);
	assert_int_equal(strlen(key1), 64);
	assert_string_not_equal(key1, key2);
	assert_int_equal(enroll_code_hash(key1, same[0], a), 0);
	assert_int_equal(strlen(a), 64);
	for (i = 0; i < strlen(a); i++)
		assert_true(strchr("0123456789abcdef", a[i]) != NULL);
	for (i = 1; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(enroll_code_hash(key1, same[i], b), 0);
		assert_string_equal(a, b);
	}
	/* another code, another key: another hash; never the code itself */
	assert_int_equal(enroll_code_hash(key1, "BCDFGHJL", b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(enroll_code_hash(key2, "BCDFGHJK", c), 0);
	assert_string_not_equal(a, c);
	assert_null(strstr(a, "BCDFGHJK"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(enroll_code_hash(key1, bad[i], b), -1);
	assert_int_equal(enroll_code_hash(key1, NULL, b), -1);
	/* 8 good letters, but more typed than a code can be: refused */
	memset(padded, ' ', sizeof(padded) - 1);
	padded[sizeof(padded) - 1] = '\0';
	memcpy(padded, "BCDFGHJK", 8);
	assert_int_equal(enroll_code_hash(key1, padded, b), -1);
	padded[ENROLL_TYPED_MAX_TEST] = '\0';
	assert_int_equal(enroll_code_hash(key1, padded, b), 0);
}

/* States hash under their own label; empty and huge ones are refused. */
static void
test_state_hash(void **state)
{
	char key[65], a[65], b[65], big[ENROLL_STATE_MAX + 2];

	(void)state;
	assert_int_equal(enroll_hash_key(KEY1, key), 0);
	assert_int_equal(enroll_state_hash(key, "BCDFGHJK", a), 0);
	assert_int_equal(enroll_code_hash(key, "BCDFGHJK", b), 0);
	assert_string_not_equal(a, b);      /* a state is not a code */
	assert_int_equal(enroll_state_hash(key, "", a), -1);
	assert_int_equal(enroll_state_hash(key, NULL, a), -1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(enroll_state_hash(key, big, a), -1);
	big[ENROLL_STATE_MAX] = '\0';
	assert_int_equal(enroll_state_hash(key, big, a), 0);
}

/* Codes are shown as XXXX-XXXX, and crypto_user_code's output fits. */
static void
test_code_format(void **state)
{
	char code[9], shown[10], norm[9];
	int i;

	(void)state;
	enroll_code_format("BCDFGHJK", shown);
	assert_string_equal(shown, "BCDF-GHJK");
	for (i = 0; i < 50; i++) {
		assert_int_equal(crypto_user_code(code), 0);
		enroll_code_format(code, shown);
		assert_true(crypto_user_code_normalize(shown, norm));
		assert_string_equal(norm, code);
	}
}

/* ------------------------------------------------------------ parsing */

struct cookie_case {
	const char *header, *name;
	size_t outsz;
	const char *want;           /* NULL: not found */
};

/* The Cookie header parser. */
static void
test_cookie_get(void **state)
{
	static const struct cookie_case cases[] = {
		{ "halo_enroll=abc", "halo_enroll", 64, "abc" },
		{ "a=1; halo_enroll=abc; b=2", "halo_enroll", 64, "abc" },
		{ "a=1;halo_enroll=abc", "halo_enroll", 64, "abc" },
		{ "  halo_enroll=abc  ", "halo_enroll", 64, "abc" },
		{ "halo_enroll=\"abc\"", "halo_enroll", 64, "abc" },
		{ "xhalo_enroll=abc", "halo_enroll", 64, NULL },
		{ "halo_enroll_x=abc", "halo_enroll", 64, NULL },
		{ "halo_enrollabc", "halo_enroll", 64, NULL },
		{ "halo_enroll=", "halo_enroll", 64, NULL },
		{ "halo_enroll=; other=1", "halo_enroll", 64, NULL },
		{ "", "halo_enroll", 64, NULL },
		{ NULL, "halo_enroll", 64, NULL },
		{ "halo_enroll=abcd", "halo_enroll", 4, NULL },   /* never cut */
		{ "halo_enroll=abc", "halo_enroll", 4, "abc" },
		{ "halo_enroll=first; halo_enroll=second", "halo_enroll", 64,
		  "first" },
		{ "__Host-halo_enroll=s1; halo_enroll=s2", "__Host-halo_enroll",
		  64, "s1" },
		{ "__Host-halo_enroll=s1; halo_enroll=s2", "halo_enroll", 64,
		  "s2" },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool found = web_cookie_get(cases[i].header, cases[i].name, out,
		    cases[i].outsz);
		if (cases[i].want == NULL) {
			if (found)
				fail_msg("case %zu: found '%s'", i, out);
		} else {
			if (!found)
				fail_msg("case %zu: not found", i);
			assert_string_equal(out, cases[i].want);
		}
	}
}

struct form_case {
	const char *body, *name;
	size_t outsz;
	const char *want;
};

/* The form body parser. */
static void
test_form_get(void **state)
{
	static const struct form_case cases[] = {
		{ "code=BCDF-GHJK", "code", 64, "BCDF-GHJK" },
		{ "a=1&code=BCDF-GHJK&b=2", "code", 64, "BCDF-GHJK" },
		{ "code=bcdf+ghjk", "code", 64, "bcdf ghjk" },
		{ "code=BCDF%2dGHJK", "code", 64, "BCDF-GHJK" },
		{ "c%6fde=x", "code", 64, "x" },
		{ "code=", "code", 64, "" },
		{ "codex=1", "code", 64, NULL },
		{ "xcode=1", "code", 64, NULL },
		{ "code", "code", 64, NULL },
		{ "code=1&code=2", "code", 64, NULL },       /* repeated */
		{ "code=%zz", "code", 64, NULL },            /* bad escape */
		{ "code=%4", "code", 64, NULL },             /* cut escape */
		{ "code=%", "code", 64, NULL },
		{ "code=a%00b", "code", 64, NULL },          /* NUL */
		{ "code=a%0Ab", "code", 64, NULL },          /* control */
		{ "code=abcd", "code", 4, NULL },            /* too long */
		{ "code=abc", "code", 4, "abc" },
		{ "", "code", 64, NULL },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool found = web_form_get(cases[i].body, strlen(cases[i].body),
		    cases[i].name, out, cases[i].outsz);
		if (cases[i].want == NULL) {
			if (found)
				fail_msg("case %zu: found '%s'", i, out);
		} else {
			if (!found)
				fail_msg("case %zu (%s): not found", i, cases[i].body);
			assert_string_equal(out, cases[i].want);
		}
	}
	/* the length bounds the parse: nothing past LEN is read */
	assert_false(web_form_get("code=AB&x", 4, "code", out, sizeof(out)));
	assert_true(web_form_get("code=AB&x", 7, "code", out, sizeof(out)));
	assert_string_equal(out, "AB");
	/* an embedded NUL in the body is refused */
	assert_false(web_form_get("code=A\0B", 8, "code", out, sizeof(out)));
}

/* ------------------------------------------------------------ state */

/* The callback's checks, in order. */
static void
test_state_check(void **state)
{
	struct store_enroll e;
	char sealed[] = "sealed-verifier";
	time_t now = 1000000;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.verifier_sealed = sealed;
	e.state_expires = now + 60;
	e.used = true;
	assert_int_equal(web_state_check("s1", "s1", &e, now), WEB_STATE_OK);
	assert_int_equal(web_state_check(NULL, "s1", &e, now),
	    WEB_STATE_NO_COOKIE);
	assert_int_equal(web_state_check("", "s1", &e, now),
	    WEB_STATE_NO_COOKIE);
	assert_int_equal(web_state_check("s1", "s2", &e, now),
	    WEB_STATE_MISMATCH);
	assert_int_equal(web_state_check("s1", "s1x", &e, now),
	    WEB_STATE_MISMATCH);
	assert_int_equal(web_state_check("s1", NULL, &e, now),
	    WEB_STATE_MISMATCH);
	assert_int_equal(web_state_check("s1", "s1", NULL, now),
	    WEB_STATE_UNKNOWN);
	e.state_expires = now;
	assert_int_equal(web_state_check("s1", "s1", &e, now),
	    WEB_STATE_EXPIRED);
	e.state_expires = now + 60;
	e.verifier_sealed = NULL;           /* taken by an earlier callback */
	assert_int_equal(web_state_check("s1", "s1", &e, now), WEB_STATE_USED);
	e.verifier_sealed = sealed;
	e.result = (char *)"denied";
	assert_int_equal(web_state_check("s1", "s1", &e, now), WEB_STATE_USED);
	assert_string_equal(web_state_name(WEB_STATE_MISMATCH), "mismatch");
	assert_string_equal(web_state_name((enum web_state)99), "invalid");
}

/* ------------------------------------------------------------ limits */

/* POST bodies: Content-Length checked before reading. */
static void
test_body_check(void **state)
{
	(void)state;
	assert_int_equal(web_body_check(NULL, 4096), 0);    /* chunked */
	assert_int_equal(web_body_check("0", 4096), 0);
	assert_int_equal(web_body_check("4096", 4096), 0);
	assert_int_equal(web_body_check("4097", 4096), 413);
	assert_int_equal(web_body_check("99999999999999999999999999", 4096), 413);
	assert_int_equal(web_body_check("", 4096), 400);
	assert_int_equal(web_body_check("-1", 4096), 400);
	assert_int_equal(web_body_check("12a", 4096), 400);
	assert_int_equal(web_body_check(" 12", 4096), 400);
	assert_int_equal(web_body_check("99999999999999999999999999x", 4096),
	    400);
}

/* Wrong codes: per client, in all, per window; IPv6 counts by /64. */
static void
test_limiter(void **state)
{
	struct web_limiter *l = web_limiter_new(3, 5, 600);
	time_t t = 5000;
	char key[64];
	int i;

	(void)state;
	assert_non_null(l);
	for (i = 0; i < 3; i++) {
		assert_false(web_limiter_blocked(l, "192.0.2.1", t));
		web_limiter_fail(l, "192.0.2.1", t);
	}
	assert_true(web_limiter_blocked(l, "192.0.2.1", t));
	assert_false(web_limiter_blocked(l, "192.0.2.2", t));
	/* the window passes: allowed again */
	assert_false(web_limiter_blocked(l, "192.0.2.1", t + 600));
	/* the global cap: five failures from five clients block everyone */
	l = web_limiter_free(l);
	l = web_limiter_new(3, 5, 600);
	for (i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		web_limiter_fail(l, ip, t);
	}
	assert_true(web_limiter_blocked(l, "203.0.113.9", t));
	assert_false(web_limiter_blocked(l, "203.0.113.9", t + 601));
	l = web_limiter_free(l);

	/* keys: IPv4 as is, IPv6 by /64, v4-mapped as IPv4 */
	web_client_key("192.0.2.1", key, sizeof(key));
	assert_string_equal(key, "192.0.2.1");
	web_client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key, sizeof(key));
	assert_string_equal(key, "2001:db8:1:2::/64");
	web_client_key("::ffff:192.0.2.7", key, sizeof(key));
	assert_string_equal(key, "192.0.2.7");
	l = web_limiter_new(2, 100, 600);
	web_client_key("2001:db8::1", key, sizeof(key));
	web_limiter_fail(l, key, t);
	web_client_key("2001:db8::2", key, sizeof(key));
	web_limiter_fail(l, key, t);
	web_client_key("2001:db8::3", key, sizeof(key));
	assert_true(web_limiter_blocked(l, key, t));
	l = web_limiter_free(l);
}

/* With no limit in all (GLOBAL 0), no number of wrong codes from other
 * addresses blocks a client that has not failed: a flood from many
 * addresses cannot lock a valid code out. */
static void
test_limiter_no_global(void **state)
{
	struct web_limiter *l = web_limiter_new(10, 0, 600);
	time_t t = 7000;
	char ip[32];
	int i, j;

	(void)state;
	assert_non_null(l);
	for (i = 0; i < 200; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		for (j = 0; j < 12; j++)
			web_limiter_fail(l, ip, t);
	}
	assert_true(web_limiter_blocked(l, "198.51.100.7", t));
	assert_false(web_limiter_blocked(l, "203.0.113.9", t));
	assert_false(web_limiter_blocked(l, "2001:db8:1::/64", t));
	l = web_limiter_free(l);
}

/* The web server's keys: defaults, values, and out-of-range values refused. */
static void
test_conf_web_keys(void **state)
{
	static const char tenant[] = "[tenant acme]\nhalo_url ="
	    " https://acme.example\nclient_id = x\nticket_type_id = 1\n";
	static const char *const bad[] = { "web_max_connections = 7\n",
	    "web_max_connections = 5000\n", "web_connections_per_ip = 0\n",
	    "web_request_timeout = 0\n", "web_request_timeout = 301\n",
	    "web_request_timeout = ten\n" };
	char path[] = "/tmp/halo-test-web-conf.XXXXXX", text[512], errs[1024];
	struct conf *c;
	FILE *fp, *ef;
	size_t i;
	int fd, n;

	(void)state;
	for (i = 0; i <= sizeof(bad) / sizeof(bad[0]) + 1; i++) {
		snprintf(text, sizeof(text), "state_dir = /tmp\n%s%s",
		    i == 0 ? "" : i == 1 ? "web_max_connections = 64\n"
		    "web_connections_per_ip = 2\nweb_request_timeout = 30\n" :
		    bad[i - 2], tenant);
		fd = mkstemp(path);
		assert_true(fd >= 0);
		fp = fdopen(fd, "w");
		assert_non_null(fp);
		fputs(text, fp);
		fclose(fp);
		ef = fmemopen(errs, sizeof(errs), "w");
		n = 0;
		c = conf_load(path, ef, &n);
		fclose(ef);
		unlink(path);
		memcpy(path + strlen(path) - 6, "XXXXXX", 6);
		if (i == 0) {
			assert_non_null(c);
			assert_int_equal(c->web_max_connections, 256);
			assert_int_equal(c->web_connections_per_ip, 8);
			assert_int_equal(c->web_request_timeout, 10);
		} else if (i == 1) {
			assert_non_null(c);
			assert_int_equal(c->web_max_connections, 64);
			assert_int_equal(c->web_connections_per_ip, 2);
			assert_int_equal(c->web_request_timeout, 30);
		} else {
			if (c != NULL || n == 0)
				fail_msg("accepted: %s", bad[i - 2]);
			assert_non_null(strstr(errs, "web_"));
		}
		conf_free(c);
	}
}

/* /metrics: admin_networks when set, else loopback only. */
static void
test_metrics_allowed(void **state)
{
	struct conf_net nets[1];
	struct conf c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_true(web_metrics_allowed(&c, "127.0.0.1"));
	assert_true(web_metrics_allowed(&c, "127.3.4.5"));
	assert_true(web_metrics_allowed(&c, "::1"));
	assert_true(web_metrics_allowed(&c, "::ffff:127.0.0.1"));
	assert_false(web_metrics_allowed(&c, "192.0.2.10"));
	assert_false(web_metrics_allowed(&c, "2001:db8::1"));
	assert_int_equal(conf_net_parse("192.0.2.0/24", &nets[0]), 0);
	c.admin_networks = nets;
	c.n_admin_networks = 1;
	assert_true(web_metrics_allowed(&c, "192.0.2.10"));
	assert_false(web_metrics_allowed(&c, "127.0.0.1"));
	assert_false(web_metrics_allowed(&c, "198.51.100.1"));
}

/* A full table forgets the client whose window began first. */
static void
test_limiter_eviction(void **state)
{
	struct web_limiter *l = web_limiter_new(1, 100000, 600);
	char ip[32];
	int i;

	(void)state;
	web_limiter_fail(l, "10.0.0.1", 100);
	assert_true(web_limiter_blocked(l, "10.0.0.1", 100));
	for (i = 0; i < 1024; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
		web_limiter_fail(l, ip, 200);
	}
	assert_false(web_limiter_blocked(l, "10.0.0.1", 200));
	assert_true(web_limiter_blocked(l, "10.1.3.255", 200));
	l = web_limiter_free(l);
}

/* ------------------------------------------------------------ html */

/* Everything printed is escaped; control characters are dropped. */
static void
test_escape(void **state)
{
	struct web_buf b = { 0 };
	char *out;
	size_t len = 0;

	(void)state;
	web_buf_add(&b, "<p>");
	web_buf_escape(&b, "<script>alert('x')</script> & \"q\"\x01\x7f é");
	web_buf_escape(&b, NULL);
	web_buf_printf(&b, "</p>%d", 42);
	out = web_buf_take(&b, &len);
	assert_non_null(out);
	assert_string_equal(out, "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script"
	    "&gt; &amp; &quot;q&quot; é</p>42");
	assert_int_equal(len, strlen(out));
	free(out);
	assert_null(b.u.s);
	/* a failed buffer gives nothing */
	b.u.oom = true;
	web_buf_add(&b, "x");
	assert_null(web_buf_take(&b, &len));
}

/* Origins for the CSP's form-action. */
static void
test_origin(void **state)
{
	static const char *const cases[][2] = {
		{ "https://acme.halopsa.com", "https://acme.halopsa.com" },
		{ "https://acme.halopsa.com/auth", "https://acme.halopsa.com" },
		{ "HTTP://127.0.0.1:8123/auth?x#y", "http://127.0.0.1:8123" },
		{ "https://user@host.example:444/", "https://host.example:444" },
		{ "https:///x", NULL },
		{ "no-scheme", NULL },
		{ "https://a'b.example", NULL },
		{ "https://a;b.example", NULL },
	};
	size_t i;
	char *o;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = web_origin(cases[i][0]);
		if (cases[i][1] == NULL)
			assert_null(o);
		else
			assert_string_equal(o, cases[i][1]);
		free(o);
	}
}

/* ------------------------------------------------------------ store */

struct dir_fixture {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];
	struct store *st;
};

static int
dir_setup(void **state)
{
	struct dir_fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	if (fixture_dir_make(f->dir, "test_web") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "%s/halo-milter.db", f->dir);
	f->st = store_open(f->db, err, sizeof(err));
	if (f->st == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
dir_teardown(void **state)
{
	struct dir_fixture *f = *state;

	f->st = store_close(f->st);
	if (fixture_dir_remove(f->dir) != 0)
		return -1;
	free(f);
	return 0;
}

/* store_enroll_list callback: count rows. */
static void
count_row(const struct store_enroll *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
}

/* A code is used once; a verifier is taken once; results are kept. */
static void
test_store_enroll(void **state)
{
	struct dir_fixture *f = *state;
	struct store_enroll *e = NULL;
	char *sealed = NULL;
	time_t now = time(NULL);
	int64_t id = 0, id2 = 0;
	int n = 0;
	unsigned purged = 0;

	assert_true(store_schema_version(f->st) >= 4);   /* enrollments */
	assert_int_equal(store_enroll_add(f->st, "sim", "alice@msp.example",
	    "hash-1", now, now + 600, &id), STORE_OK);
	assert_int_equal(store_enroll_add(f->st, "sim", "bob@msp.example",
	    "hash-1", now, now + 600, &id2), STORE_DUPLICATE);
	assert_int_equal(store_enroll_by_code(f->st, "hash-2", &e),
	    STORE_NOT_FOUND);
	assert_int_equal(store_enroll_by_code(f->st, "hash-1", &e), STORE_OK);
	assert_int_equal(e->id, id);
	assert_string_equal(e->agent, "alice@msp.example");
	assert_false(e->used);
	assert_null(e->verifier_sealed);
	assert_null(e->result);
	e = store_enroll_free(e);

	/* two starts: only the first wins */
	assert_int_equal(store_enroll_start(f->st, id, now, "state-1", "sv-1",
	    now + 600), STORE_OK);
	assert_int_equal(store_enroll_start(f->st, id, now, "state-2", "sv-2",
	    now + 600), STORE_NOT_FOUND);
	assert_int_equal(store_enroll_by_state(f->st, "state-2", &e),
	    STORE_NOT_FOUND);
	assert_int_equal(store_enroll_by_state(f->st, "state-1", &e), STORE_OK);
	assert_true(e->used);
	assert_string_equal(e->verifier_sealed, "sv-1");
	e = store_enroll_free(e);

	/* the verifier is handed out once, and not after the sign-in expired */
	assert_int_equal(store_enroll_take(f->st, id, now + 600, &sealed),
	    STORE_NOT_FOUND);
	assert_null(sealed);
	assert_int_equal(store_enroll_take(f->st, id, now, &sealed), STORE_OK);
	assert_string_equal(sealed, "sv-1");
	free(sealed);
	assert_int_equal(store_enroll_take(f->st, id, now, &sealed),
	    STORE_NOT_FOUND);
	assert_int_equal(store_enroll_finish(f->st, id, "ok"), STORE_OK);
	assert_int_equal(store_enroll_by_state(f->st, "state-1", &e), STORE_OK);
	assert_string_equal(e->result, "ok");
	assert_null(e->verifier_sealed);
	e = store_enroll_free(e);

	/* an expired code cannot start */
	assert_int_equal(store_enroll_add(f->st, "sim", "bob@msp.example",
	    "hash-3", now - 700, now - 100, &id2), STORE_OK);
	assert_int_equal(store_enroll_start(f->st, id2, now, "state-3", "sv-3",
	    now + 600), STORE_NOT_FOUND);
	/* finishing clears a verifier never taken */
	assert_int_equal(store_enroll_add(f->st, "sim", "carol@msp.example",
	    "hash-4", now, now + 600, &id2), STORE_OK);
	assert_int_equal(store_enroll_start(f->st, id2, now, "state-4", "sv-4",
	    now + 600), STORE_OK);
	assert_int_equal(store_enroll_finish(f->st, id2, "denied"), STORE_OK);
	assert_int_equal(store_enroll_take(f->st, id2, now, &sealed),
	    STORE_NOT_FOUND);

	assert_int_equal(store_enroll_list(f->st, "sim", count_row, &n), STORE_OK);
	assert_int_equal(n, 3);
	n = 0;
	assert_int_equal(store_enroll_list(f->st, "other", count_row, &n),
	    STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_enroll_purge(f->st, now - 600, &purged), STORE_OK);
	assert_int_equal(purged, 1);

	/* revoke */
	assert_int_equal(store_token_put(f->st, "sim", "alice@msp.example",
	    "sealed", "ok"), STORE_OK);
	assert_int_equal(store_token_delete(f->st, "sim", "alice@msp.example"),
	    STORE_OK);
	assert_int_equal(store_token_delete(f->st, "sim", "alice@msp.example"),
	    STORE_NOT_FOUND);
}

/* ------------------------------------------------------------ server */

/* A port that was free a moment ago. */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Connect to 127.0.0.1:PORT. */
static int
connect_to(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send REQ over plain HTTP; the whole answer into OUT; its status. */
static int
http_raw(int port, const char *req, size_t req_len, char *out, size_t outsz)
{
	int fd = connect_to(port), status = 0;
	size_t got = 0;
	ssize_t n;

	if (req_len == 0)
		req_len = strlen(req);
	assert_int_equal(send(fd, req, req_len, MSG_NOSIGNAL), (ssize_t)req_len);
	while (got + 1 < outsz && (n = recv(fd, out + got, outsz - 1 - got,
	    0)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

struct server {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];
	char listen[64];
	char url[64];
	int port;
	struct conf conf;
	struct store *st;
	struct oauth *oa;
	struct web *web;
	struct statedir sd;
	struct statedir_keys keys;
};

/* A store, a token manager and a configuration in a temporary dir. */
static void
server_init(struct server *s)
{
	char err[256];

	memset(s, 0, sizeof(*s));
	assert_int_equal(fixture_dir_make(s->dir, "test_web_srv"), 0);
	snprintf(s->db, sizeof(s->db), "%s/halo-milter.db", s->dir);
	s->st = store_open(s->db, err, sizeof(err));
	assert_non_null(s->st);
	s->oa = oauth_new(s->st, KEY1);
	s->port = free_port();
	snprintf(s->listen, sizeof(s->listen), "127.0.0.1:%d", s->port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	s->conf.state_dir = s->dir;
	assert_int_equal(statedir_init(&s->sd, s->dir, NULL, err, sizeof(err)),
	    0);
	memcpy(s->keys.seal, KEY1, sizeof(s->keys.seal));
	memset(s->keys.status, 0x5a, sizeof(s->keys.status));
	s->conf.web_listen = s->listen;
	s->conf.public_url = s->url;
}

/* Stop and remove everything. */
static void
server_done(struct server *s)
{
	s->web = web_stop(s->web);
	s->oa = oauth_free(s->oa);
	s->st = store_close(s->st);
	assert_int_equal(fixture_dir_remove(s->dir), 0);
}

/* Routes, security headers, bounded bodies, a port in use. */
static void
test_server(void **state)
{
	static const char chunked[] = "POST /enroll/start HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1400\r\n";
	struct server s;
	char err[256], *out = malloc(65536), big[6000];
	size_t hlen;
	struct web *second;
	struct conf off;
	int status;

	(void)state;
	server_init(&s);
	s.web = web_start(&s.conf, s.st, s.oa, &s.sd, &s.keys, err, sizeof(err));
	if (s.web == NULL)
		fail_msg("web_start: %s", err);

	status = http_raw(s.port, "GET /healthz HTTP/1.0\r\n\r\n", 0, out, 65536);
	assert_int_equal(status, 200);
	assert_non_null(strstr(out, "\r\n\r\nok\n"));
	assert_non_null(strstr(out, "Content-Security-Policy: default-src 'none';"
	    " style-src 'self'; form-action 'self'; frame-ancestors 'none';"
	    " base-uri 'none'\r\n"));
	assert_non_null(strstr(out, "X-Content-Type-Options: nosniff\r\n"));
	assert_non_null(strstr(out, "Referrer-Policy: no-referrer\r\n"));
	assert_non_null(strstr(out, "Cache-Control: no-store\r\n"));

	status = http_raw(s.port, "GET /metrics HTTP/1.0\r\n\r\n", 0, out, 65536);
	assert_int_equal(status, 200);
	assert_non_null(strstr(out, "halo_milter_jobs{state=\"queued\"} 0\n"));
	assert_non_null(strstr(out, "halo_milter_halo_requests_total{result="
	    "\"server-error\"} "));
	assert_non_null(strstr(out, "halo_milter_token_refreshes_total 0\n"));
	assert_non_null(strstr(out,
	    "halo_milter_enrollments_total{result=\"ok\"} 0\n"));
	assert_non_null(strstr(out, "halo_milter_build_info{version=\""));
	assert_non_null(strstr(out,
	    "halo_milter_oldest_queued_job_age_seconds 0\n"));
	assert_non_null(strstr(out, "# TYPE halo_milter_eom_seconds histogram\n"));
	assert_non_null(strstr(out, "halo_milter_mail_to_halo_seconds_count "));

	/* a tenant label escaped; a histogram's buckets cumulative */
	{
		struct store_job_new j;
		enum store_status res;
		int64_t id;
		char *line;

		memset(&j, 0, sizeof(j));
		j.tenant = "a\"b\\c\nd";
		j.message_id = "<m@x>";
		j.state = STORE_QUEUED;
		assert_int_equal(store_jobs_add(s.st, &j, 1, &res, &id, NULL,
		    NULL), STORE_OK);
		metrics_reset();
		metrics_observe(METRICS_EOM, 0.002);
		metrics_observe(METRICS_EOM, 7);
		status = http_raw(s.port, "GET /metrics HTTP/1.0\r\n\r\n", 0,
		    out, 65536);
		assert_int_equal(status, 200);
		assert_non_null(strstr(out, "halo_milter_tenant_jobs{tenant="
		    "\"a\\\"b\\\\c\\nd\",state=\"queued\"} 1\n"));
		assert_non_null(strstr(out,
		    "halo_milter_eom_seconds_bucket{le=\"0.001\"} 0\n"
		    "halo_milter_eom_seconds_bucket{le=\"0.0025\"} 1\n"));
		assert_non_null(strstr(out,
		    "halo_milter_eom_seconds_bucket{le=\"1\"} 1\n"
		    "halo_milter_eom_seconds_bucket{le=\"+Inf\"} 2\n"
		    "halo_milter_eom_seconds_sum 7.002000\n"
		    "halo_milter_eom_seconds_count 2\n"));
		line = strstr(out, "halo_milter_oldest_queued_job_age_seconds ");
		assert_non_null(line);
		assert_true(atoi(line + strlen("halo_milter_oldest_queued_job_"
		    "age_seconds ")) <= 2);
	}

	status = http_raw(s.port, "GET /enroll HTTP/1.0\r\n\r\n", 0, out, 65536);
	assert_int_equal(status, 200);
	assert_null(strstr(out, "<script"));
	status = http_raw(s.port, "GET /enroll?code=%3Cscript%3E HTTP/1.0\r\n\r\n",
	    0, out, 65536);
	assert_int_equal(status, 400);
	assert_null(strstr(out, "<script"));
	status = http_raw(s.port, "GET /enroll?code=BCDF-GHJK HTTP/1.0\r\n\r\n",
	    0, out, 65536);
	assert_int_equal(status, 404);
	status = http_raw(s.port, "GET /x HTTP/1.0\r\n\r\n", 0, out, 65536);
	assert_int_equal(status, 404);
	status = http_raw(s.port, "PUT /enroll HTTP/1.0\r\n\r\n", 0, out, 65536);
	assert_int_equal(status, 405);

	/* bodies: refused by Content-Length before reading, or while read */
	status = http_raw(s.port, "POST /enroll/start HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 4097\r\nConnection: close\r\n\r\n", 0, out, 65536);
	assert_int_equal(status, 413);
	hlen = strlen(chunked);
	memcpy(big, chunked, hlen);
	memset(big + hlen, 'a', 5120);      /* one chunk of 0x1400 bytes */
	memcpy(big + hlen + 5120, "\r\n0\r\n\r\n", 7);
	status = http_raw(s.port, big, hlen + 5120 + 7, out, 65536);
	assert_int_equal(status, 413);
	status = http_raw(s.port, "POST /enroll/start HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "Content-Length: 12\r\nConnection: close\r\n\r\ncode=BCDFGHJ", 0,
	    out, 65536);
	assert_int_equal(status, 400);

	/* the port is taken: a clear error */
	second = web_start(&s.conf, s.st, s.oa, &s.sd, &s.keys, err, sizeof(err));
	assert_null(second);
	assert_non_null(strstr(err, "Address already in use"));
	/* web_listen = off */
	off = s.conf;
	off.web_listen = NULL;
	assert_null(web_start(&off, s.st, s.oa, &s.sd, &s.keys, err, sizeof(err)));
	free(out);
	server_done(&s);
}

/* Without public_url the pages say enrollment is not set up. */
static void
test_server_no_public_url(void **state)
{
	struct server s;
	char err[256], out[8192];

	(void)state;
	server_init(&s);
	s.conf.public_url = NULL;
	s.web = web_start(&s.conf, s.st, s.oa, &s.sd, &s.keys, err, sizeof(err));
	assert_non_null(s.web);
	assert_int_equal(http_raw(s.port, "GET /enroll HTTP/1.0\r\n\r\n", 0, out,
	    sizeof(out)), 503);
	assert_non_null(strstr(out, "public_url"));
	assert_int_equal(http_raw(s.port, "GET /healthz HTTP/1.0\r\n\r\n", 0, out,
	    sizeof(out)), 200);
	server_done(&s);
}

/* Write a self-signed EC certificate and its key as PEM files. */
static void
write_cert(const char *cert_path, const char *key_path)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *fp;

	assert_non_null(pkey);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"127.0.0.1", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	fp = fopen(cert_path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	fp = fopen(key_path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(fp);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

/* tls_cert/tls_key: the server speaks HTTPS; a bad PEM stops the start. */
static void
test_server_tls(void **state)
{
	struct server s;
	char err[256], cert[PATH_MAX + 16], key[PATH_MAX + 16], out[8192];
	SSL_CTX *ctx;
	SSL *ssl;
	FILE *fp;
	int fd, n, got = 0;

	(void)state;
	server_init(&s);
	snprintf(cert, sizeof(cert), "%s/cert.pem", s.dir);
	snprintf(key, sizeof(key), "%s/key.pem", s.dir);
	write_cert(cert, key);
	s.conf.tls_cert = cert;
	s.conf.tls_key = key;
	s.web = web_start(&s.conf, s.st, s.oa, &s.sd, &s.keys, err, sizeof(err));
	if (s.web == NULL)
		fail_msg("web_start with TLS: %s", err);
	ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(ctx);
	fd = connect_to(s.port);
	SSL_set_fd(ssl, fd);
	assert_int_equal(SSL_connect(ssl), 1);
	assert_true(SSL_write(ssl, "GET /healthz HTTP/1.0\r\n\r\n", 25) == 25);
	while ((n = SSL_read(ssl, out + got, (int)sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	assert_int_equal(strncmp(out, "HTTP/1.", 7), 0);
	assert_int_equal(strncmp(out + 8, " 200 ", 5), 0);
	assert_non_null(strstr(out, "Strict-Transport-Security: max-age="));
	assert_non_null(strstr(out, "\r\n\r\nok\n"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	s.web = web_stop(s.web);

	/* a key file that is not PEM */
	fp = fopen(key, "w");
	assert_non_null(fp);
	fputs("not a key\n", fp);
	fclose(fp);
	assert_null(web_start(&s.conf, s.st, s.oa, &s.sd, &s.keys, err, sizeof(err)));
	assert_non_null(strstr(err, "not a PEM file"));
	server_done(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_hash),
		cmocka_unit_test(test_state_hash),
		cmocka_unit_test(test_code_format),
		cmocka_unit_test(test_cookie_get),
		cmocka_unit_test(test_form_get),
		cmocka_unit_test(test_state_check),
		cmocka_unit_test(test_body_check),
		cmocka_unit_test(test_limiter),
		cmocka_unit_test(test_limiter_eviction),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_limiter_no_global),
		cmocka_unit_test(test_metrics_allowed),
		cmocka_unit_test(test_conf_web_keys),
		cmocka_unit_test_setup_teardown(test_store_enroll, dir_setup,
		    dir_teardown),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_server_no_public_url),
		cmocka_unit_test(test_server_tls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
