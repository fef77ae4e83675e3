/*
 * test_admin.c - unit tests for the admin page's pieces: admin password
 * hashes (round trip, wrong password, malformed stored text), the
 * admin_networks matcher (IPv4, IPv6, /0, /32, /128, mapped addresses,
 * bad input, the config key with its FILE:LINE errors), the CSRF compare
 * and the session table (idle and absolute expiry, sign-out, a new
 * password ends sessions).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "crypto.h"
#include "web_int.h"

/* ---- password hashes ---- */

static void
test_password_round_trip(void **state)
{
	char hash[CRYPTO_PW_HASH_MAX + 1], again[CRYPTO_PW_HASH_MAX + 1];
	char with_nl[CRYPTO_PW_HASH_MAX + 2];

	(void)state;
	assert_int_equal(crypto_password_hash("correct horse battery", 0, hash,
	    sizeof(hash)), 0);
	assert_true(strncmp(hash, "pbkdf2-sha256$600000$", 21) == 0);
	assert_int_equal(crypto_password_verify(hash, "correct horse battery"), 1);
	assert_int_equal(crypto_password_verify(hash, "correct horse batterY"), 0);
	assert_int_equal(crypto_password_verify(hash, ""), 0);
	assert_int_equal(crypto_password_verify(hash, "correct horse battery "),
	    0);
	/* the file ends with one newline */
	snprintf(with_nl, sizeof(with_nl), "%s\n", hash);
	assert_int_equal(crypto_password_verify(with_nl,
	    "correct horse battery"), 1);
	/* a fresh salt each time */
	assert_int_equal(crypto_password_hash("correct horse battery", 0, again,
	    sizeof(again)), 0);
	assert_string_not_equal(hash, again);
	assert_int_equal(crypto_password_verify(again, "correct horse battery"),
	    1);
}

static void
test_password_hash_refuses(void **state)
{
	char hash[CRYPTO_PW_HASH_MAX + 1], *big;

	(void)state;
	assert_int_equal(crypto_password_hash("", 0, hash, sizeof(hash)), -1);
	assert_int_equal(crypto_password_hash(NULL, 0, hash, sizeof(hash)), -1);
	assert_int_equal(crypto_password_hash("long enough pw", 1000, hash,
	    sizeof(hash)), -1);         /* too few iterations */
	assert_int_equal(crypto_password_hash("long enough pw", 0, hash, 20),
	    -1);                        /* no room */
	big = malloc(CRYPTO_PW_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', CRYPTO_PW_MAX + 1);
	big[CRYPTO_PW_MAX + 1] = '\0';
	assert_int_equal(crypto_password_hash(big, 0, hash, sizeof(hash)), -1);
	/* longer than anything we hash never matches */
	assert_int_equal(crypto_password_hash("long enough pw", 0, hash,
	    sizeof(hash)), 0);
	assert_int_equal(crypto_password_verify(hash, big), 0);
	free(big);
}

static void
test_password_malformed(void **state)
{
	/* salt "c2FsdHNhbHRzYWx0c2FsdA" (16 bytes), hash 43 characters */
	static const char *const bad[] = {
		"",
		"\n",
		"plain-text-password",
		"pbkdf2-sha1$600000$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$99999999999$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$-600000$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$600000x$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$600000$c2FsdHNhbHRzYWx0c2FsdA",
		"pbkdf2-sha256$600000$c2FsdHNhbHRzYWx0c2FsdA$",
		"pbkdf2-sha256$600000$c2FsdHNhbHRzYWx0c2FsdA$AAAA",
		"pbkdf2-sha256$600000$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"pbkdf2-sha256$600000$$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$600000$!!!!$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pbkdf2-sha256$600000$c2FsdHNhbHRzYWx0c2FsdA$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$extra",
	};
	char huge[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(crypto_password_verify(bad[i],
		    "correct horse battery"), -1);
	assert_int_equal(crypto_password_verify(NULL, "x"), -1);
	memset(huge, 'A', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	memcpy(huge, "pbkdf2-sha256$600000$", 21);
	assert_int_equal(crypto_password_verify(huge, "x"), -1);
}

/* ---- admin_networks ---- */

static void
test_net_parse(void **state)
{
	struct conf_net n;

	(void)state;
	assert_int_equal(conf_net_parse("192.0.2.0/24", &n), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 24);
	assert_int_equal(conf_net_parse("10.1.2.3", &n), 0);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(conf_net_parse("0.0.0.0/0", &n), 0);
	assert_int_equal(n.prefix, 0);
	assert_int_equal(conf_net_parse("2001:db8::/32", &n), 0);
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(conf_net_parse("::1", &n), 0);
	assert_int_equal(n.prefix, 128);
	assert_int_equal(conf_net_parse("::/0", &n), 0);
	/* bad input */
	assert_int_equal(conf_net_parse("", &n), -1);
	assert_int_equal(conf_net_parse("/24", &n), -1);
	assert_int_equal(conf_net_parse("192.0.2.0/", &n), -1);
	assert_int_equal(conf_net_parse("192.0.2.0/33", &n), -1);
	assert_int_equal(conf_net_parse("192.0.2.0/-1", &n), -1);
	assert_int_equal(conf_net_parse("192.0.2.0/2x", &n), -1);
	assert_int_equal(conf_net_parse("192.0.2.0/0024", &n), -1);
	assert_int_equal(conf_net_parse("2001:db8::/129", &n), -1);
	assert_int_equal(conf_net_parse("256.0.0.0/8", &n), -1);
	assert_int_equal(conf_net_parse("10.0.0/8", &n), -1);
	assert_int_equal(conf_net_parse("example.com/24", &n), -1);
	assert_int_equal(conf_net_parse("fe80::1%eth0", &n), -1);
	assert_int_equal(conf_net_parse(NULL, &n), -1);
	/* host bits beyond the prefix */
	assert_int_equal(conf_net_parse("10.0.0.1/8", &n), -2);
	assert_int_equal(conf_net_parse("192.0.2.128/24", &n), -2);
	assert_int_equal(conf_net_parse("2001:db8::1/64", &n), -2);
	assert_int_equal(conf_net_parse("192.0.2.128/25", &n), 0);
}

static void
test_net_match(void **state)
{
	struct conf_net nets[4];

	(void)state;
	assert_int_equal(conf_net_parse("192.0.2.0/24", &nets[0]), 0);
	assert_int_equal(conf_net_parse("10.9.8.7/32", &nets[1]), 0);
	assert_int_equal(conf_net_parse("2001:db8:1::/48", &nets[2]), 0);
	assert_int_equal(conf_net_parse("::1/128", &nets[3]), 0);
	assert_true(conf_net_match(nets, 4, "192.0.2.1"));
	assert_true(conf_net_match(nets, 4, "192.0.2.255"));
	assert_false(conf_net_match(nets, 4, "192.0.3.1"));
	assert_true(conf_net_match(nets, 4, "10.9.8.7"));
	assert_false(conf_net_match(nets, 4, "10.9.8.6"));
	assert_true(conf_net_match(nets, 4, "2001:db8:1:ffff::5"));
	assert_false(conf_net_match(nets, 4, "2001:db8:2::5"));
	assert_true(conf_net_match(nets, 4, "::1"));
	assert_false(conf_net_match(nets, 4, "::2"));
	/* an IPv4 client of a dual-stack socket */
	assert_true(conf_net_match(nets, 4, "::ffff:192.0.2.9"));
	assert_false(conf_net_match(nets, 4, "::ffff:192.0.3.9"));
	/* families never mix otherwise */
	assert_false(conf_net_match(nets, 4, "127.0.0.1"));
	/* not an address */
	assert_false(conf_net_match(nets, 4, "?"));
	assert_false(conf_net_match(nets, 4, ""));
	assert_false(conf_net_match(nets, 4, NULL));
	assert_false(conf_net_match(nets, 0, "192.0.2.1"));
	/* /0 takes its whole family */
	assert_int_equal(conf_net_parse("0.0.0.0/0", &nets[0]), 0);
	assert_true(conf_net_match(nets, 1, "203.0.113.77"));
	assert_false(conf_net_match(nets, 1, "2001:db8::1"));
	assert_int_equal(conf_net_parse("::/0", &nets[0]), 0);
	assert_true(conf_net_match(nets, 1, "2001:db8::1"));
	assert_false(conf_net_match(nets, 1, "203.0.113.77"));
	/* odd prefixes: /25, /63 */
	assert_int_equal(conf_net_parse("192.0.2.128/25", &nets[0]), 0);
	assert_true(conf_net_match(nets, 1, "192.0.2.200"));
	assert_false(conf_net_match(nets, 1, "192.0.2.127"));
	assert_int_equal(conf_net_parse("2001:db8:0:2::/63", &nets[0]), 0);
	assert_true(conf_net_match(nets, 1, "2001:db8:0:3::1"));
	assert_false(conf_net_match(nets, 1, "2001:db8:0:4::1"));
}

/* Write TEXT to a temp config file and load it. */
static struct conf *
load_text(const char *text, char *errs, size_t errsz, int *nerrors)
{
	char path[] = "/tmp/halo-test-admin-conf.XXXXXX";
	FILE *fp, *ef;
	struct conf *c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	ef = fmemopen(errs, errsz, "w");
	assert_non_null(ef);
	*nerrors = 0;
	c = conf_load(path, ef, nerrors);
	fclose(ef);
	unlink(path);
	return c;
}

#define TENANT_PART "[tenant acme]\nhalo_url = https://acme.example\n" \
	"client_id = x\nticket_type_id = 1\n"

static void
test_conf_admin_networks(void **state)
{
	char errs[2048];
	struct conf *c;
	int n;

	(void)state;
	memset(errs, 0, sizeof(errs));
	c = load_text("state_dir = /tmp\nadmin_networks = 192.0.2.0/24,"
	    " 2001:db8::/32\nadmin_networks = 127.0.0.1\n" TENANT_PART, errs,
	    sizeof(errs), &n);
	assert_non_null(c);
	assert_int_equal(c->n_admin_networks, 3);
	assert_true(conf_admin_allowed(c, "192.0.2.7"));
	assert_true(conf_admin_allowed(c, "127.0.0.1"));
	assert_true(conf_admin_allowed(c, "2001:db8::99"));
	assert_false(conf_admin_allowed(c, "127.0.0.2"));
	assert_false(conf_admin_allowed(c, "?"));
	conf_free(c);
	/* absent: anyone */
	c = load_text("state_dir = /tmp\n" TENANT_PART, errs, sizeof(errs), &n);
	assert_non_null(c);
	assert_int_equal(c->n_admin_networks, 0);
	assert_true(conf_admin_allowed(c, "198.51.100.1"));
	conf_free(c);
	/* bad networks: FILE:LINE errors, the file is refused */
	memset(errs, 0, sizeof(errs));
	c = load_text("state_dir = /tmp\nadmin_networks = 192.0.2.0/24\n"
	    "admin_networks = 10.0.0.0/33, bogus\nadmin_networks = 10.0.0.1/8\n"
	    TENANT_PART, errs, sizeof(errs), &n);
	assert_null(c);
	assert_int_equal(n, 3);
	assert_non_null(strstr(errs, ":3: admin_networks: invalid network"
	    " '10.0.0.0/33'"));
	assert_non_null(strstr(errs, ":3: admin_networks: invalid network"
	    " 'bogus'"));
	assert_non_null(strstr(errs, ":4: admin_networks: '10.0.0.1/8' has"
	    " host bits set"));
	/* a tenant key, not a global one */
	memset(errs, 0, sizeof(errs));
	c = load_text("state_dir = /tmp\n" TENANT_PART
	    "admin_networks = 10.0.0.0/8\n", errs, sizeof(errs), &n);
	assert_null(c);
	assert_non_null(strstr(errs, ":6: "));
}

/* ---- CSRF and sessions ---- */

static void
test_csrf_compare(void **state)
{
	(void)state;
	assert_true(web_admin_csrf_ok("abc123", "abc123"));
	assert_false(web_admin_csrf_ok("abc123", "abc124"));
	assert_false(web_admin_csrf_ok("abc123", "abc12"));
	assert_false(web_admin_csrf_ok("abc123", "abc1234"));
	assert_false(web_admin_csrf_ok("abc123", ""));
	assert_false(web_admin_csrf_ok("abc123", NULL));
	assert_false(web_admin_csrf_ok("", ""));
	assert_false(web_admin_csrf_ok(NULL, NULL));
}

static void
test_sessions(void **state)
{
	char sid[WEB_ADMIN_SID_LEN + 1], other[WEB_ADMIN_SID_LEN + 1];
	char csrf[65], csrf2[65], csrf_other[65], forged[WEB_ADMIN_SID_LEN + 1];
	time_t t0 = 1700000000, t;

	(void)state;
	assert_true(web_admin_session_new(t0, 7, sid));
	assert_int_equal(strlen(sid), WEB_ADMIN_SID_LEN);
	assert_true(web_admin_session_check(sid, t0 + 1, 7, csrf));
	assert_int_equal(strlen(csrf), 64);
	/* the CSRF token is stable within a session, differs across */
	assert_true(web_admin_session_check(sid, t0 + 2, 7, csrf2));
	assert_string_equal(csrf, csrf2);
	assert_true(web_admin_session_new(t0, 7, other));
	assert_string_not_equal(sid, other);
	assert_true(web_admin_session_check(other, t0 + 2, 7, csrf_other));
	assert_string_not_equal(csrf, csrf_other);
	assert_false(web_admin_csrf_ok(csrf, csrf_other));
	/* unknown, malformed and empty ids */
	memcpy(forged, sid, sizeof(forged));
	forged[0] = forged[0] == 'A' ? 'B' : 'A';
	assert_false(web_admin_session_check(forged, t0 + 3, 7, csrf2));
	assert_string_equal(csrf2, "");
	assert_false(web_admin_session_check("short", t0 + 3, 7, NULL));
	assert_false(web_admin_session_check("", t0 + 3, 7, NULL));
	assert_false(web_admin_session_check(NULL, t0 + 3, 7, NULL));
	/* a new password file (another stamp) ends the session */
	assert_false(web_admin_session_check(other, t0 + 3, 8, NULL));
	assert_false(web_admin_session_check(other, t0 + 4, 7, NULL));
	/* idle expiry: used within 30 minutes keeps it, not after */
	assert_true(web_admin_session_check(sid, t0 + WEB_ADMIN_IDLE - 1, 7,
	    NULL));
	t = t0 + WEB_ADMIN_IDLE - 1;
	assert_false(web_admin_session_check(sid, t + WEB_ADMIN_IDLE, 7, NULL));
	assert_false(web_admin_session_check(sid, t + 1, 7, NULL));
	/* absolute expiry: kept busy, it still ends after 8 hours */
	assert_true(web_admin_session_new(t0, 7, sid));
	for (t = t0; t < t0 + WEB_ADMIN_MAX_AGE - 60; t += 600)
		assert_true(web_admin_session_check(sid, t, 7, NULL));
	assert_false(web_admin_session_check(sid, t0 + WEB_ADMIN_MAX_AGE, 7,
	    NULL));
	/* sign-out */
	assert_true(web_admin_session_new(t0, 7, sid));
	assert_true(web_admin_session_check(sid, t0 + 5, 7, NULL));
	web_admin_session_end(sid);
	assert_false(web_admin_session_check(sid, t0 + 6, 7, NULL));
	web_admin_session_end(sid);         /* twice is harmless */
}

static void
test_sessions_table_full(void **state)
{
	char first[WEB_ADMIN_SID_LEN + 1], sid[WEB_ADMIN_SID_LEN + 1];
	time_t t0 = 1800000000;
	int i;

	(void)state;
	assert_true(web_admin_session_new(t0, 9, first));
	/* filling the table pushes out the least recently used one */
	for (i = 1; i <= WEB_ADMIN_SESSIONS; i++)
		assert_true(web_admin_session_new(t0 + i, 9, sid));
	assert_false(web_admin_session_check(first, t0 + 100, 9, NULL));
	assert_true(web_admin_session_check(sid, t0 + 100, 9, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_round_trip),
		cmocka_unit_test(test_password_hash_refuses),
		cmocka_unit_test(test_password_malformed),
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_conf_admin_networks),
		cmocka_unit_test(test_csrf_compare),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_sessions_table_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
