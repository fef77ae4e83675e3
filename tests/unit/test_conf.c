/*
 * test_conf.c - unit tests for common/conf.c: values, defaults, route lookup,
 * and the "FILE:LINE: message" report of every class of configuration error.
 *
 * Run from the repository root (or set HALO_SRCDIR to it): one test loads the
 * shipped conf/halo-milter.conf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"

/* A minimal valid tenant: 4 lines. */
#define TENANT_ACME \
	"[tenant acme]\n" \
	"halo_url = https://acme.example\n" \
	"client_id = id\n" \
	"ticket_type_id = 1\n"
#define TENANT_GLOBEX \
	"[tenant globex]\n" \
	"halo_url = https://globex.example\n" \
	"client_id = id2\n" \
	"ticket_type_id = 2\n"

/* The result of loading one temporary configuration file. */
struct loaded {
	char path[PATH_MAX];
	struct conf *conf;
	char *errs;
	size_t errs_len;
	int nerrors;
};

/* Write LEN bytes of DATA to a new temporary file; its name goes to PATH. */
static void write_tmp(char *path, size_t size, const void *data, size_t len)
{
	const char *dir = getenv("TMPDIR");
	FILE *fp;
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	assert_true((size_t)snprintf(path, size, "%s/test_conf.XXXXXX", dir) <
	    size);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* Load PATH, capturing the error stream in L. */
static void load_path(struct loaded *l, const char *path)
{
	FILE *errs = open_memstream(&l->errs, &l->errs_len);

	assert_non_null(errs);
	l->conf = conf_load(path, errs, &l->nerrors);
	assert_int_equal(fclose(errs), 0);
}

/* Write TEXT (LEN bytes) to a temporary file and load it into L. */
static void load_bytes(struct loaded *l, const void *text, size_t len)
{
	memset(l, 0, sizeof(*l));
	write_tmp(l->path, sizeof(l->path), text, len);
	load_path(l, l->path);
}

/* Write the string TEXT to a temporary file and load it into L. */
static void load_text(struct loaded *l, const char *text)
{
	load_bytes(l, text, strlen(text));
}

/* Free everything in L and remove its file. */
static void unload(struct loaded *l)
{
	l->conf = conf_free(l->conf);
	free(l->errs);
	l->errs = NULL;
	if (l->path[0] != '\0')
		unlink(l->path);
}

/* True when ERRS has a line "PATH:LINE: ...MSG...". */
static bool has_error(const char *errs, const char *path, int line,
    const char *msg)
{
	char prefix[PATH_MAX + 32];
	const char *s = errs;
	size_t plen;

	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	plen = strlen(prefix);
	while (s != NULL && *s != '\0') {
		const char *eol = strchr(s, '\n');
		size_t len = eol != NULL ? (size_t)(eol - s) : strlen(s);
		const char *found;

		if (len >= plen && strncmp(s, prefix, plen) == 0) {
			found = strstr(s + plen, msg);
			if (found != NULL && found + strlen(msg) <= s + len)
				return true;
		}
		s = eol != NULL ? eol + 1 : NULL;
	}
	return false;
}

/* Assert that L failed with an error "PATH:LINE: ...MSG..." and NERR errors. */
static void expect_error(struct loaded *l, int line, const char *msg, int nerr)
{
	if (!has_error(l->errs, l->path, line, msg))
		fail_msg("expected '%s:%d: ...%s...' in:\n%s", l->path, line, msg,
		    l->errs);
	assert_null(l->conf);
	if (nerr > 0 && l->nerrors != nerr)
		fail_msg("expected %d error(s), got %d:\n%s", nerr, l->nerrors,
		    l->errs);
	assert_true(l->nerrors >= 1);
}

/* Assert that L loaded without errors. */
static void expect_ok(struct loaded *l)
{
	if (l->conf == NULL || l->nerrors != 0)
		fail_msg("expected no errors, got %d:\n%s", l->nerrors, l->errs);
	assert_int_equal(l->errs_len, 0);
}

/* One error class: a file, the line of the error, a message substring. */
struct error_case {
	const char *name;
	const char *text;
	int line;
	const char *msg;
	int nerr;
};

static const struct error_case error_cases[] = {
	/* syntax */
	{ "no_equals", "socket unix:/x\n", 1,
	  "expected 'key = value' or '[tenant NAME]'", 1 },
	{ "no_equals_in_tenant", TENANT_ACME "route\n", 5,
	  "expected 'key = value'", 1 },
	{ "missing_key", "\n= value\n", 2, "missing key before '='", 1 },
	{ "empty_value", "socket =\n", 1, "empty value for 'socket'", 1 },
	{ "empty_value_after_comment", "socket = # none\n", 1,
	  "empty value for 'socket'", 1 },
	{ "unknown_section", "[global]\nsocket = unix:/x\nbogus = 1\n", 1,
	  "unknown section '[global]'", 1 },
	{ "unterminated_header", "[tenant acme\n", 1,
	  "unterminated section header", 1 },
	{ "text_after_header", "[tenant acme] extra\n", 1,
	  "unexpected text after section header", 1 },
	{ "missing_tenant_name", "[tenant]\n", 1, "missing tenant name", 1 },
	{ "bad_tenant_name",
	  "[tenant bad/name]\nhalo_url = https://x.example\nclient_id = i\n"
	  "ticket_type_id = 1\n", 1, "invalid tenant name 'bad/name'", 1 },
	{ "duplicate_tenant",
	  TENANT_ACME "\n[tenant acme]\nhalo_url = https://b.example\n"
	  "client_id = b\nticket_type_id = 2\n", 6,
	  "duplicate tenant 'acme' (first defined at line 1)", 1 },
	/* keys and scopes */
	{ "unknown_global_key", "xyz = 1\n", 1, "unknown key 'xyz'", 1 },
	{ "tenant_key_in_global", "halo_url = https://x.example\n", 1,
	  "unknown global key 'halo_url'", 1 },
	{ "unknown_tenant_key", TENANT_ACME "colour = blue\n", 5,
	  "unknown key 'colour' in tenant 'acme'", 1 },
	{ "global_key_in_tenant", TENANT_ACME "socket = unix:/x\n", 5,
	  "unknown tenant key 'socket' in tenant 'acme'", 1 },
	{ "duplicate_global_key", "log_level = info\nlog_level = debug\n", 2,
	  "duplicate key 'log_level' (first set at line 1)", 1 },
	{ "duplicate_tenant_key", TENANT_ACME "client_id = other\n", 5,
	  "duplicate key 'client_id' (first set at line 3)", 1 },
	/* global values */
	{ "socket_relative", "socket = unix:run/m.sock\n", 1,
	  "unix socket path must be absolute", 1 },
	{ "socket_local_relative", "socket = local:m.sock\n", 1,
	  "must be absolute", 1 },
	{ "socket_port_zero", "socket = inet:0@127.0.0.1\n", 1,
	  "port must be a number from 1 to 65535", 1 },
	{ "socket_port_big", "socket = inet6:65536@::1\n", 1,
	  "port must be a number from 1 to 65535", 1 },
	{ "socket_no_host", "socket = inet:8891@\n", 1, "host", 1 },
	{ "socket_no_at", "socket = inet:8891\n", 1, "PORT@HOST", 1 },
	{ "socket_scheme", "socket = tcp:8891@localhost\n", 1,
	  "socket: invalid 'tcp:8891@localhost'", 1 },
	{ "state_dir_relative", "state_dir = var/lib/halo\n", 1,
	  "state_dir: 'var/lib/halo' is not an absolute path", 1 },
	{ "web_listen_no_port", "web_listen = localhost\n", 1,
	  "expected HOST:PORT", 1 },
	{ "web_listen_bad_port", "web_listen = 127.0.0.1:99999\n", 1,
	  "port must be a number from 1 to 65535", 1 },
	{ "web_listen_empty_host", "web_listen = :8025\n", 1, "empty host", 1 },
	{ "web_listen_v6_bare", "web_listen = ::1:8025\n", 1,
	  "malformed host", 1 },
	{ "web_listen_v6_unclosed", "web_listen = [::1:8025\n", 1,
	  "missing ']'", 1 },
	{ "web_listen_v6_no_port", "web_listen = [::1]\n", 1,
	  "expected [ADDRESS]:PORT", 1 },
	{ "public_url_scheme", "public_url = ftp://x.example\n", 1,
	  "public_url: 'ftp://x.example' is not an http:// or https:// URL", 1 },
	{ "public_url_no_host", "public_url = https:///x\n", 1, "has no host",
	  1 },
	{ "tls_cert_alone", "tls_cert = /etc/ssl/c.pem\n", 1,
	  "tls_cert and tls_key must be set together (or neither)", 1 },
	{ "tls_key_alone", "log_level = info\ntls_key = /etc/ssl/k.pem\n", 2,
	  "tls_cert and tls_key must be set together", 1 },
	{ "tls_cert_relative", "tls_cert = c.pem\ntls_key = /k.pem\n", 1,
	  "tls_cert: 'c.pem' is not an absolute path", 1 },
	{ "user_upper", "user = Root\n", 1, "user: invalid user name 'Root'",
	  1 },
	{ "user_digit_first", "user = 1abc\n", 1, "invalid user name", 1 },
	{ "user_too_long", "user = abcdefghijklmnopqrstuvwxyzabcdefg\n", 1,
	  "invalid user name", 1 },
	{ "on_spool_error", "on_spool_error = reject\n", 1,
	  "expected tempfail or accept", 1 },
	{ "size_suffix", "max_message_size = 10X\n", 1,
	  "max_message_size: invalid size '10X'", 1 },
	{ "size_two_suffixes", "max_message_size = 10KM\n", 1,
	  "invalid size", 1 },
	{ "size_overflow", "max_message_size = 99999999999999999999\n", 1,
	  "invalid size", 1 },
	{ "size_overflow_suffix", "max_message_size = 17179869184G\n", 1,
	  "invalid size", 1 },
	{ "size_negative", "max_message_size = -1\n", 1, "invalid size", 1 },
	{ "bool_bad", "add_thread_index = maybe\n", 1,
	  "add_thread_index: invalid boolean 'maybe'", 1 },
	{ "log_level_bad", "log_level = verbose\n", 1,
	  "log_level: invalid 'verbose'", 1 },
	/* required tenant keys */
	{ "missing_halo_url",
	  "[tenant acme]\nclient_id = id\nticket_type_id = 1\n", 1,
	  "tenant 'acme': missing required key 'halo_url'", 1 },
	{ "missing_client_id",
	  "\n[tenant acme]\nhalo_url = https://a.example\nticket_type_id = 1\n",
	  2, "tenant 'acme': missing required key 'client_id'", 1 },
	{ "missing_ticket_type_id",
	  TENANT_ACME "[tenant b]\nhalo_url = https://b.example\n"
	  "client_id = id\n", 5,
	  "tenant 'b': missing required key 'ticket_type_id'", 1 },
	{ "missing_everything", "[tenant empty]\n", 1,
	  "missing required key 'client_id'", 3 },
	/* tenant values */
	{ "halo_url_bad",
	  "[tenant acme]\nhalo_url = acme.example\nclient_id = id\n"
	  "ticket_type_id = 1\n", 2,
	  "halo_url: 'acme.example' is not an http:// or https:// URL", 1 },
	{ "halo_url_space",
	  "[tenant acme]\nhalo_url = https://a b\nclient_id = id\n"
	  "ticket_type_id = 1\n", 2, "whitespace", 1 },
	{ "auth_url_bad", TENANT_ACME "auth_url = mailto:x@y\n", 5,
	  "auth_url: 'mailto:x@y' is not an http:// or https:// URL", 1 },
	{ "halo_tenant_space", TENANT_ACME "halo_tenant = a b\n", 5,
	  "halo_tenant: 'a b' contains whitespace", 1 },
	{ "client_id_space",
	  "[tenant acme]\nhalo_url = https://a.example\nclient_id = a b\n"
	  "ticket_type_id = 1\n", 3, "client_id: 'a b' contains whitespace", 1 },
	{ "ticket_type_zero",
	  "[tenant acme]\nhalo_url = https://a.example\nclient_id = id\n"
	  "ticket_type_id = 0\n", 4, "ticket_type_id: invalid '0'", 1 },
	{ "ticket_type_negative",
	  "[tenant acme]\nhalo_url = https://a.example\nclient_id = id\n"
	  "ticket_type_id = -3\n", 4, "expected an integer > 0", 1 },
	{ "ticket_type_junk",
	  "[tenant acme]\nhalo_url = https://a.example\nclient_id = id\n"
	  "ticket_type_id = 12abc\n", 4, "expected an integer > 0", 1 },
	{ "ticket_type_overflow",
	  "[tenant acme]\nhalo_url = https://a.example\nclient_id = id\n"
	  "ticket_type_id = 99999999999999999999999\n", 4,
	  "expected an integer > 0", 1 },
	{ "secret_both",
	  TENANT_ACME "client_secret = s3cret\n"
	  "client_secret_file = /nonexistent/x\n", 6,
	  "give only one of client_secret and client_secret_file "
	  "(the other is at line 5)", 1 },
	{ "secret_both_reversed",
	  TENANT_ACME "client_secret_file = /nonexistent/x\n"
	  "client_secret = s3cret\n", 6, "give only one of client_secret", 2 },
	{ "secret_file_missing",
	  TENANT_ACME "client_secret_file = /nonexistent/halo-test.secret\n", 5,
	  "cannot read client_secret_file '/nonexistent/halo-test.secret': "
	  "No such file or directory", 1 },
	{ "secret_file_directory", TENANT_ACME "client_secret_file = /\n", 5,
	  "cannot read client_secret_file '/': Is a directory", 1 },
	{ "subject_tag_none", TENANT_ACME "subject_tag = [ID]\n", 5,
	  "subject_tag: invalid '[ID]' (must contain exactly one {n}", 1 },
	{ "subject_tag_two", TENANT_ACME "subject_tag = [{n}:{n}]\n", 5,
	  "exactly one {n}", 1 },
	{ "subject_tag_front", TENANT_ACME "subject_tag = {n}]\n", 5,
	  "with text before it", 1 },
	{ "default_agent_no_at", TENANT_ACME "default_agent = agent\n", 5,
	  "default_agent: invalid email address 'agent'", 1 },
	{ "default_agent_two_at", TENANT_ACME "default_agent = a@b@c\n", 5,
	  "exactly one '@'", 1 },
	{ "default_agent_empty_domain", TENANT_ACME "default_agent = a@\n", 5,
	  "empty local part or domain", 1 },
	{ "halo_senders_bad",
	  TENANT_ACME "halo_senders = a@x.example, bogus\n", 5,
	  "halo_senders: invalid email address 'bogus'", 1 },
	{ "halo_senders_empty_item",
	  TENANT_ACME "halo_senders = a@x.example,,b@x.example\n", 5,
	  "halo_senders: empty address in list", 1 },
	{ "loop_max_creates_zero", TENANT_ACME "loop_max_creates = 0\n", 5,
	  "loop_max_creates: invalid '0'", 1 },
	{ "loop_max_creates_big", TENANT_ACME "loop_max_creates = 100001\n", 5,
	  "from 1 to 100000", 1 },
	{ "loop_window_small", TENANT_ACME "loop_window = 59\n", 5,
	  "loop_window: invalid '59'", 1 },
	{ "loop_window_big", TENANT_ACME "loop_window = 604801\n", 5,
	  "from 60 to 604800", 1 },
	/* routes */
	{ "route_too_few", TENANT_ACME "route = a@x.example\n", 5,
	  "route: expected PATTERN MODE", 1 },
	{ "route_too_many",
	  TENANT_ACME "route = a@x.example intake agent=r@x.example extra\n", 5,
	  "route: unexpected 'extra'", 1 },
	{ "route_bad_third", TENANT_ACME "route = a@x.example intake b@x\n", 5,
	  "route: unexpected 'b@x' (expected agent=, type=", 1 },
	{ "route_bad_mode",
	  TENANT_ACME "route = a@x.example create agent=r@x.example\n", 5,
	  "route: unknown mode 'create'", 1 },
	{ "route_no_at", TENANT_ACME "route = support intake agent=a@x.example\n",
	  5, "route: invalid pattern 'support': pattern must contain exactly "
	  "one '@'", 1 },
	{ "route_two_at", TENANT_ACME "route = a@b@x.example off\n", 5,
	  "exactly one '@'", 1 },
	{ "route_empty_local", TENANT_ACME "route = @x.example off\n", 5,
	  "empty local part or domain", 1 },
	{ "route_bad_domain", TENANT_ACME "route = a@x_y.example off\n", 5,
	  "domain may contain only letters, digits", 1 },
	{ "route_star_inside", TENANT_ACME "route = sup*@x.example off\n", 5,
	  "'*' is only allowed as the whole local part", 1 },
	{ "route_double_dot", TENANT_ACME "route = a@x..example off\n", 5,
	  "malformed domain", 1 },
	{ "route_agent_missing",
	  TENANT_ACME "route = a@x.example intake\n"
	  "route = b@x.example thread-only\n", 6,
	  "route 'b@x.example' needs agent=EMAIL or agent=recipient "
	  "(tenant 'acme' has no default_agent)", 2 },
	{ "route_agent_with_off",
	  TENANT_ACME "route = a@x.example off agent=b@x.example\n", 5,
	  "route: mode 'off' takes no agent=", 1 },
	{ "route_agent_bad",
	  TENANT_ACME "route = a@x.example intake agent=nobody\n", 5,
	  "route agent: invalid email address 'nobody'", 1 },
	{ "route_dup_same_tenant",
	  TENANT_ACME "route = a@x.example off\nroute = A@X.example off\n", 6,
	  "duplicate route 'a@x.example' (first defined at line 5 in tenant "
	  "'acme')", 1 },
	{ "route_dup_other_tenant",
	  TENANT_ACME "route = *@x.example off\n" TENANT_GLOBEX
	  "route = *@x.example off\n", 10,
	  "duplicate route '*@x.example' (first defined at line 5 in tenant "
	  "'acme')", 1 },
	{ "route_exact_under_other_wildcard",
	  TENANT_ACME "route = *@x.example off\n" TENANT_GLOBEX
	  "route = bob@x.example off\n", 10,
	  "route 'bob@x.example' overlaps '*@x.example' in tenant 'acme' at "
	  "line 5", 1 },
	{ "route_wildcard_over_other_exact",
	  TENANT_ACME "route = bob@x.example off\n" TENANT_GLOBEX
	  "route = *@X.example off\n", 10,
	  "route '*@x.example' overlaps 'bob@x.example' in tenant 'acme' at "
	  "line 5", 1 },
};

/* Table-driven: one error class per row (see error_cases). */
static void test_error_case(void **state)
{
	const struct error_case *c = *state;
	struct loaded l;

	load_text(&l, c->text);
	expect_error(&l, c->line, c->msg, c->nerr);
	unload(&l);
}

/* conf_tenant_find(): by exact name, NULL for another, a case variant or
 * NULL. */
static void test_tenant_find(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, TENANT_ACME TENANT_GLOBEX);
	expect_ok(&l);
	assert_ptr_equal(conf_tenant_find(l.conf, "acme"), l.conf->tenants[0]);
	assert_ptr_equal(conf_tenant_find(l.conf, "globex"),
	    l.conf->tenants[1]);
	assert_null(conf_tenant_find(l.conf, "ACME"));
	assert_null(conf_tenant_find(l.conf, "acm"));
	assert_null(conf_tenant_find(l.conf, NULL));
	unload(&l);
}

/* An empty file is valid: every global default, no tenant, no routes. */
static void test_empty_file_defaults(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "");
	expect_ok(&l);
	assert_string_equal(l.conf->path, l.path);
	assert_string_equal(l.conf->socket, "unix:/run/halo-milter/milter.sock");
	assert_string_equal(l.conf->state_dir, "/var/lib/halo-milter");
	assert_string_equal(l.conf->web_listen, "127.0.0.1:8025");
	assert_null(l.conf->public_url);
	assert_null(l.conf->user);
	assert_int_equal(l.conf->on_spool_error, CONF_SPOOL_TEMPFAIL);
	assert_int_equal(l.conf->max_message_size, 50ULL * 1024 * 1024);
	assert_false(l.conf->add_thread_index);
	assert_int_equal(l.conf->log_level, LOG_INFO);
	assert_int_equal(l.conf->n_tenants, 0);
	assert_null(conf_route_lookup(l.conf, "anyone@example.com"));
	unload(&l);
}

/* web_listen = off turns the web server off; TLS files come as a pair. */
static void test_web_keys(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l, "web_listen = off\n");
	expect_ok(&l);
	assert_null(l.conf->web_listen);
	assert_null(l.conf->tls_cert);
	assert_null(l.conf->tls_key);
	unload(&l);
	load_text(&l, "web_listen = OFF\ntls_cert = /etc/halo/cert.pem\n"
	    "tls_key = /etc/halo/key.pem\n");
	expect_ok(&l);
	assert_null(l.conf->web_listen);
	assert_string_equal(l.conf->tls_cert, "/etc/halo/cert.pem");
	assert_string_equal(l.conf->tls_key, "/etc/halo/key.pem");
	unload(&l);
}

/* Every global key with a non-default value. */
static void test_globals(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l,
	    "socket = inet:8891@127.0.0.1\n"
	    "state_dir = /srv/halo\n"
	    "web_listen = [::1]:9000\n"
	    "public_url = https://halo.example.net/milter//\n"
	    "user = halo-milter\n"
	    "on_spool_error = accept\n"
	    "max_message_size = 10m\n"
	    "add_thread_index = yes\n"
	    "log_level = debug\n");
	expect_ok(&l);
	assert_string_equal(l.conf->socket, "inet:8891@127.0.0.1");
	assert_string_equal(l.conf->state_dir, "/srv/halo");
	assert_string_equal(l.conf->web_listen, "[::1]:9000");
	assert_string_equal(l.conf->public_url, "https://halo.example.net/milter");
	assert_string_equal(l.conf->user, "halo-milter");
	assert_int_equal(l.conf->on_spool_error, CONF_SPOOL_ACCEPT);
	assert_int_equal(l.conf->max_message_size, 10ULL * 1024 * 1024);
	assert_true(l.conf->add_thread_index);
	assert_int_equal(l.conf->log_level, LOG_DEBUG);
	unload(&l);
}

/* The accepted socket forms and log levels. */
static void test_socket_and_log_level_forms(void **state)
{
	static const char *const sockets[] = {
		"unix:/run/m.sock", "local:/var/spool/postfix/halo/m.sock",
		"inet:1@localhost", "inet6:65535@::1",
	};
	static const struct { const char *word; int level; } levels[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
		{ "notice", LOG_NOTICE }, { "warning", LOG_WARNING },
		{ "err", LOG_ERR },
	};
	char text[256];
	struct loaded l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sockets) / sizeof(sockets[0]); i++) {
		snprintf(text, sizeof(text), "socket = %s\n", sockets[i]);
		load_text(&l, text);
		expect_ok(&l);
		assert_string_equal(l.conf->socket, sockets[i]);
		unload(&l);
	}
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(text, sizeof(text), "log_level = %s\n", levels[i].word);
		load_text(&l, text);
		expect_ok(&l);
		assert_int_equal(l.conf->log_level, levels[i].level);
		unload(&l);
	}
}

/* Every boolean spelling, on a global and on tenant keys. */
static void test_booleans(void **state)
{
	static const struct { const char *word; bool value; } words[] = {
		{ "yes", true }, { "no", false }, { "true", true },
		{ "false", false }, { "on", true }, { "off", false },
		{ "1", true }, { "0", false }, { "YES", true }, { "Off", false },
	};
	char text[512];
	struct loaded l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		snprintf(text, sizeof(text), "add_thread_index = %s\n"
		    TENANT_ACME "internal_note = %s\nattachments = %s\n",
		    words[i].word, words[i].word, words[i].word);
		load_text(&l, text);
		expect_ok(&l);
		assert_int_equal(l.conf->add_thread_index, words[i].value);
		assert_int_equal(l.conf->tenants[0]->internal_note, words[i].value);
		assert_int_equal(l.conf->tenants[0]->attachments, words[i].value);
		unload(&l);
	}
}

/* A minimal tenant gets every tenant default. */
static void test_tenant_defaults(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l, TENANT_ACME);
	expect_ok(&l);
	assert_int_equal(l.conf->n_tenants, 1);
	t = l.conf->tenants[0];
	assert_string_equal(t->name, "acme");
	assert_int_equal(t->line, 1);
	assert_string_equal(t->halo_url, "https://acme.example");
	assert_null(t->auth_url);
	assert_null(t->halo_tenant);
	assert_string_equal(t->client_id, "id");
	assert_null(t->client_secret);
	assert_int_equal(t->ticket_type_id, 1);
	assert_string_equal(t->append_outcome, "Email Received");
	assert_string_equal(t->create_outcome, "Email Received");
	assert_false(t->internal_note);
	assert_true(t->attachments);
	assert_string_equal(t->subject_tag, "[ID:{n}]");
	assert_null(t->default_agent);
	assert_int_equal(t->n_halo_senders, 0);
	assert_int_equal(t->loop_max_creates, 20);
	assert_int_equal(t->loop_window, 3600);
	assert_int_equal(t->n_routes, 0);
	/* the worker's keys */
	assert_int_equal(t->fallback_client_id, 0);
	assert_string_equal(t->cf_conversation_id, "CFOutlookConversationId");
	assert_string_equal(t->cf_message_id, "CFOutlookInternetMessageId");
	assert_true(t->trim_quotes);
	assert_int_equal(t->rate_limit, 250);
	assert_int_equal(t->rate_window, 300);
	assert_int_equal(t->max_attachment_size, 10 << 20);
	assert_int_equal(t->max_attachments_total, 25 << 20);
	assert_int_equal(t->halo_request_max, 10 << 20);
	assert_int_equal(t->sender_cache_ttl, 3600);
	assert_true(t->log_outbound);
	assert_string_equal(t->outbound_outcome, "Email Sent");
	assert_int_equal(t->closed_tickets, CONF_CLOSED_REOPEN);
	assert_int_equal(t->reopen_status_id, 0);
	assert_int_equal(t->ticket_status_ttl, 300);
	assert_int_equal(l.conf->workers, 8);
	assert_int_equal(l.conf->retry_base, 15);
	assert_int_equal(l.conf->job_lease, 300);
	assert_int_equal(l.conf->job_retention, 30);
	assert_null(l.conf->store);
	assert_false(l.conf->insecure_http);
	unload(&l);
}

/* The worker's keys with non-default values, and their errors. */
static void test_worker_keys(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l, "workers = 0\nretry_base = 2\ninsecure_http = yes\n"
	    TENANT_ACME "fallback_client_id = 15\ncf_conversation_id = CFConv\n"
	    "cf_message_id = none\ntrim_quotes = no\nrate_limit = 8\n"
	    "rate_window = 5\nmax_attachment_size = 1K\n"
	    "max_attachments_total = 2M\nsender_cache_ttl = 0\n"
	    "halo_request_max = 30M\n"
	    "log_outbound = no\noutbound_outcome = Email User\n"
	    "closed_tickets = new\nreopen_status_id = 4\nticket_status_ttl = 0\n");
	expect_ok(&l);
	t = l.conf->tenants[0];
	assert_int_equal(l.conf->workers, 0);
	assert_int_equal(l.conf->retry_base, 2);
	assert_true(l.conf->insecure_http);
	assert_int_equal(t->fallback_client_id, 15);
	assert_string_equal(t->cf_conversation_id, "CFConv");
	assert_string_equal(t->cf_message_id, "");
	assert_false(t->trim_quotes);
	assert_int_equal(t->rate_limit, 8);
	assert_int_equal(t->rate_window, 5);
	assert_int_equal(t->max_attachment_size, 1024);
	assert_int_equal(t->max_attachments_total, 2 << 20);
	assert_int_equal(t->halo_request_max, 30 << 20);
	assert_int_equal(t->sender_cache_ttl, 0);
	assert_false(t->log_outbound);
	assert_string_equal(t->outbound_outcome, "Email User");
	assert_int_equal(t->closed_tickets, CONF_CLOSED_NEW);
	assert_int_equal(t->reopen_status_id, 4);
	assert_int_equal(t->ticket_status_ttl, 0);
	unload(&l);
	load_text(&l, TENANT_ACME "closed_tickets = append\n");
	expect_ok(&l);
	assert_int_equal(l.conf->tenants[0]->closed_tickets, CONF_CLOSED_APPEND);
	unload(&l);
	load_text(&l, TENANT_ACME "closed_tickets = ignore\n");
	expect_error(&l, 5, "closed_tickets: invalid 'ignore'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "reopen_status_id = x\n");
	expect_error(&l, 5, "reopen_status_id: invalid 'x'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "ticket_status_ttl = 86401\n");
	expect_error(&l, 5, "ticket_status_ttl: invalid '86401'", 1);
	unload(&l);

	load_text(&l, "workers = 65\n");
	expect_error(&l, 1, "workers: invalid '65'", 1);
	unload(&l);
	load_text(&l, "retry_base = 0\n");
	expect_error(&l, 1, "retry_base: invalid '0'", 1);
	unload(&l);
	load_text(&l, "job_retention = 0\n" TENANT_ACME);
	expect_ok(&l);
	assert_int_equal(l.conf->job_retention, 0);
	unload(&l);
	load_text(&l, "job_retention = 36501\n");
	expect_error(&l, 1, "job_retention: invalid '36501'", 1);
	unload(&l);
	/* several nodes: a shared store and a shorter lease */
	load_text(&l, "job_lease = 20\nstore = postgresql://mx@db.example/halo\n"
	    TENANT_ACME);
	expect_ok(&l);
	assert_int_equal(l.conf->job_lease, 20);
	assert_string_equal(l.conf->store, "postgresql://mx@db.example/halo");
	unload(&l);
	load_text(&l, "store = host=/run/postgresql dbname=halo\n" TENANT_ACME);
	expect_ok(&l);
	unload(&l);
	load_text(&l, "job_lease = 4\n");
	expect_error(&l, 1, "job_lease: invalid '4'", 1);
	unload(&l);
	load_text(&l, "store = halo.db\n");
	expect_error(&l, 1, "store: 'halo.db' is neither", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "rate_limit = 0\n");
	expect_error(&l, 5, "rate_limit: invalid '0'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "halo_request_max = 512K\n");
	expect_error(&l, 5, "halo_request_max: invalid size '512K' (expected"
	    " 1M to 1G)", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "halo_request_max = 2G\n");
	expect_error(&l, 5, "halo_request_max: invalid size '2G'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "cf_message_id = two words\n");
	expect_error(&l, 5, "cf_message_id: invalid custom field name", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "fallback_client_id = -1\n");
	expect_error(&l, 5, "fallback_client_id: invalid '-1'", 1);
	unload(&l);
}

/* Issue 12's keys: create_contacts (yes), dont_do_rules (no), halo_scope
 * (the scope asked at sign-in), and a route's ticket options. */
static void test_fidelity_keys(void **state)
{
	const struct conf_route *r;
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l, TENANT_ACME "route = a@msp.example intake agent=x@msp.example\n");
	expect_ok(&l);
	t = l.conf->tenants[0];
	assert_true(t->create_contacts);
	assert_false(t->dont_do_rules);
	assert_string_equal(t->halo_scope, "all offline_access");
	r = t->routes[0];
	assert_int_equal(r->ticket_type_id, 0);
	assert_null(r->team);
	assert_int_equal(r->priority_id, 0);
	assert_int_equal(r->assign_agent_id, 0);
	unload(&l);

	load_text(&l, TENANT_ACME "create_contacts = no\ndont_do_rules = yes\n"
	    "halo_scope = all:standard offline_access\n"
	    "route = a@msp.example intake agent=x@msp.example type=4 team=Sales"
	    " priority=2 assign=17\n"
	    "route = b@msp.example thread-only team=Desk agent=recipient\n");
	expect_ok(&l);
	t = l.conf->tenants[0];
	assert_false(t->create_contacts);
	assert_true(t->dont_do_rules);
	assert_string_equal(t->halo_scope, "all:standard offline_access");
	r = conf_route_lookup(l.conf, "A@msp.example");
	assert_non_null(r);
	assert_int_equal(r->ticket_type_id, 4);
	assert_string_equal(r->team, "Sales");
	assert_int_equal(r->priority_id, 2);
	assert_int_equal(r->assign_agent_id, 17);
	assert_string_equal(r->agent, "x@msp.example");
	r = conf_route_lookup(l.conf, "b@msp.example");
	assert_non_null(r);
	assert_string_equal(r->team, "Desk");
	assert_null(r->agent);
	unload(&l);

	load_text(&l, TENANT_ACME "create_contacts = maybe\n");
	expect_error(&l, 5, "create_contacts: invalid boolean 'maybe'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "dont_do_rules = 2\n");
	expect_error(&l, 5, "dont_do_rules: invalid boolean '2'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME
	    "route = a@msp.example intake agent=x@msp.example type=0\n");
	expect_error(&l, 5, "route: invalid 'type=0'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME
	    "route = a@msp.example intake agent=x@msp.example priority=1 priority=2\n");
	expect_error(&l, 5, "route: invalid 'priority=2'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "route = a@msp.example off team=Sales\n");
	expect_error(&l, 5, "route: mode 'off' takes no options", 1);
	unload(&l);
	load_text(&l, TENANT_ACME
	    "route = a@msp.example intake agent=x@msp.example agent=y@msp.example\n");
	expect_error(&l, 5, "route: agent= given twice", 1);
	unload(&l);
}

/* Operator overrides: parse, look up (exact beats domain), errors. */
static void test_overrides(void **state)
{
	const struct conf_override *o;
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l, TENANT_ACME
	    "override = *@Partner.example client=12 site=120\n"
	    "override = vip@partner.example contact=1005 site=120 client=12\n");
	expect_ok(&l);
	t = l.conf->tenants[0];
	assert_int_equal(t->n_overrides, 2);
	o = conf_override_lookup(t, "VIP@partner.example");
	assert_non_null(o);
	assert_int_equal(o->contact_id, 1005);
	assert_int_equal(o->site_id, 120);
	assert_int_equal(o->client_id, 12);
	o = conf_override_lookup(t, "other@partner.example");
	assert_non_null(o);
	assert_int_equal(o->contact_id, 0);
	assert_int_equal(o->client_id, 12);
	assert_null(conf_override_lookup(t, "x@elsewhere.example"));
	assert_null(conf_override_lookup(t, "no-at-sign"));
	unload(&l);

	load_text(&l, TENANT_ACME "override = a@b.example contact=5 client=1\n");
	expect_error(&l, 5, "contact=ID needs its site=ID", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "override = a@b.example site=5\n");
	expect_error(&l, 5, "client=ID is required", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "override = a@b.example client=x\n");
	expect_error(&l, 5, "override: invalid 'client=x'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "override = a@b.example client=1 client=2\n");
	expect_error(&l, 5, "override: invalid 'client=2'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "override = a@b.example client=1\n"
	    "override = A@b.example client=2\n");
	expect_error(&l, 6, "already overridden at line 5", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "override = nope client=1\n");
	expect_error(&l, 5, "override: invalid pattern 'nope'", 1);
	unload(&l);
	load_text(&l, "override = a@b.example client=1\n");
	expect_error(&l, 1, "override", 1);
	unload(&l);
}

/* Every tenant key with a non-default value; two tenants. */
static void test_tenant_values(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l,
	    "log_level = notice\n"
	    "\n"
	    "[tenant Acme.EU-1]\n"
	    "halo_url = https://acme.halopsa.com/\n"
	    "auth_url = http://auth.acme.example/auth/\n"
	    "halo_tenant = acme\n"
	    "client_id = abc-123\n"
	    "client_secret = p@ss word!\n"
	    "ticket_type_id = 31\n"
	    "append_outcome = Customer Reply\n"
	    "create_outcome = New Email\n"
	    "internal_note = yes\n"
	    "attachments = no\n"
	    "subject_tag = Ticket:#{n}#\n"
	    "default_agent = Desk@Acme.Example\n"
	    "halo_senders = A@Halo.example , b@halo.example\n"
	    "halo_senders = c@halo.example\n"
	    "loop_max_creates = 100000\n"
	    "loop_window = 604800\n"
	    "route = Support@Acme.Example intake\n"
	    "route = *@acme.example thread-only agent=recipient\n"
	    "route = ceo@acme.example off\n"
	    "route = sales@acme.example intake agent=Boss@Acme.Example\n"
	    TENANT_GLOBEX
	    "loop_max_creates = 1\n"
	    "loop_window = 60\n");
	expect_ok(&l);
	assert_int_equal(l.conf->log_level, LOG_NOTICE);
	assert_int_equal(l.conf->n_tenants, 2);
	t = l.conf->tenants[0];
	assert_string_equal(t->name, "Acme.EU-1");
	assert_int_equal(t->line, 3);
	assert_string_equal(t->halo_url, "https://acme.halopsa.com");
	assert_string_equal(t->auth_url, "http://auth.acme.example/auth");
	assert_string_equal(t->halo_tenant, "acme");
	assert_string_equal(t->client_id, "abc-123");
	assert_string_equal(t->client_secret, "p@ss word!");
	assert_int_equal(t->ticket_type_id, 31);
	assert_string_equal(t->append_outcome, "Customer Reply");
	assert_string_equal(t->create_outcome, "New Email");
	assert_true(t->internal_note);
	assert_false(t->attachments);
	assert_string_equal(t->subject_tag, "Ticket:#{n}#");
	assert_string_equal(t->default_agent, "desk@acme.example");
	assert_int_equal(t->n_halo_senders, 3);
	assert_string_equal(t->halo_senders[0], "a@halo.example");
	assert_string_equal(t->halo_senders[1], "b@halo.example");
	assert_string_equal(t->halo_senders[2], "c@halo.example");
	assert_int_equal(t->loop_max_creates, 100000);
	assert_int_equal(t->loop_window, 604800);
	assert_int_equal(t->n_routes, 4);
	assert_string_equal(t->routes[0]->pattern, "support@acme.example");
	assert_int_equal(t->routes[0]->mode, CONF_MODE_INTAKE);
	assert_string_equal(t->routes[0]->agent, "desk@acme.example");
	assert_int_equal(t->routes[0]->line, 20);
	assert_ptr_equal(t->routes[0]->tenant, t);
	assert_string_equal(t->routes[1]->pattern, "*@acme.example");
	assert_int_equal(t->routes[1]->mode, CONF_MODE_THREAD_ONLY);
	assert_null(t->routes[1]->agent);
	assert_int_equal(t->routes[2]->mode, CONF_MODE_OFF);
	assert_null(t->routes[2]->agent);
	assert_string_equal(t->routes[3]->agent, "boss@acme.example");
	t = l.conf->tenants[1];
	assert_string_equal(t->name, "globex");
	assert_int_equal(t->line, 24);
	assert_int_equal(t->loop_max_creates, 1);
	assert_int_equal(t->loop_window, 60);
	unload(&l);
}

/* Comments, blank lines, whitespace and '#' inside values. */
static void test_comments_and_whitespace(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l,
	    "# leading comment\n"
	    "   # indented comment\n"
	    "\n"
	    "\t\n"
	    "  log_level\t=\twarning   # trailing comment\n"
	    "state_dir = /srv/halo#1\r\n"
	    "[tenant acme]   # the first tenant\n"
	    "halo_url = https://acme.example/#frag\n"
	    "client_id = id#2\t# comment after a tab\n"
	    "client_secret = s#cret\n"
	    "ticket_type_id=7\n"
	    "route =  A@X.example    off   # never logged\n");
	expect_ok(&l);
	assert_int_equal(l.conf->log_level, LOG_WARNING);
	assert_string_equal(l.conf->state_dir, "/srv/halo#1");
	t = l.conf->tenants[0];
	assert_string_equal(t->halo_url, "https://acme.example/#frag");
	assert_string_equal(t->client_id, "id#2");
	assert_string_equal(t->client_secret, "s#cret");
	assert_int_equal(t->ticket_type_id, 7);
	assert_int_equal(t->n_routes, 1);
	assert_string_equal(t->routes[0]->pattern, "a@x.example");
	assert_int_equal(t->routes[0]->line, 12);
	unload(&l);
}

/* conf_parse_size: digits with optional K/M/G, binary units, overflow. */
static void test_parse_size(void **state)
{
	static const struct { const char *text; int rc; uint64_t value; } cases[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "1024", 0, 1024 },
		{ "1k", 0, 1024 },
		{ "1K", 0, 1024 },
		{ "50M", 0, 50ULL << 20 },
		{ "50m", 0, 50ULL << 20 },
		{ "2G", 0, 2ULL << 30 },
		{ "0G", 0, 0 },
		{ "17179869183G", 0, 17179869183ULL << 30 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -1, 0 },
		{ "17179869184G", -1, 0 },
		{ "18014398509481984K", -1, 0 },
		{ "", -1, 0 },
		{ "K", -1, 0 },
		{ "-1", -1, 0 },
		{ "+1", -1, 0 },
		{ " 1", -1, 0 },
		{ "1 K", -1, 0 },
		{ "1KB", -1, 0 },
		{ "1T", -1, 0 },
		{ "1.5M", -1, 0 },
	};
	uint64_t value;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		value = 12345;
		if (conf_parse_size(cases[i].text, &value) != cases[i].rc)
			fail_msg("conf_parse_size(\"%s\") should return %d",
			    cases[i].text, cases[i].rc);
		if (cases[i].rc == 0 && value != cases[i].value)
			fail_msg("conf_parse_size(\"%s\") gave %llu", cases[i].text,
			    (unsigned long long)value);
	}
	assert_int_equal(conf_parse_size(NULL, &value), -1);
}

/* Lookup: exact beats wildcard, case and <> ignored, bounded, NULL on miss. */
static void test_route_lookup(void **state)
{
	const struct conf_route *r;
	char longaddr[400];
	struct loaded l;

	(void)state;
	load_text(&l,
	    TENANT_ACME
	    "default_agent = desk@acme.example\n"
	    "route = *@acme.example thread-only agent=recipient\n"
	    "route = support@acme.example intake\n"
	    "route = ceo@acme.example off\n"
	    TENANT_GLOBEX
	    "route = help@globex.example intake agent=Dispatch@Globex.example\n"
	    "route = *@labs.globex.example intake agent=recipient\n");
	expect_ok(&l);

	r = conf_route_lookup(l.conf, "support@acme.example");
	assert_non_null(r);
	assert_string_equal(r->pattern, "support@acme.example");
	assert_int_equal(r->mode, CONF_MODE_INTAKE);
	assert_string_equal(r->agent, "desk@acme.example");
	assert_int_equal(r->line, 7);
	assert_string_equal(r->tenant->name, "acme");

	r = conf_route_lookup(l.conf, "  <SUPPORT@Acme.Example>  ");
	assert_non_null(r);
	assert_string_equal(r->pattern, "support@acme.example");

	r = conf_route_lookup(l.conf, "<anyone@acme.example>");
	assert_non_null(r);
	assert_string_equal(r->pattern, "*@acme.example");
	assert_int_equal(r->mode, CONF_MODE_THREAD_ONLY);
	assert_null(r->agent);

	r = conf_route_lookup(l.conf, "CEO@acme.example");
	assert_non_null(r);
	assert_int_equal(r->mode, CONF_MODE_OFF);

	r = conf_route_lookup(l.conf, "help@globex.example");
	assert_non_null(r);
	assert_string_equal(r->tenant->name, "globex");
	assert_string_equal(r->agent, "dispatch@globex.example");

	r = conf_route_lookup(l.conf, "x@labs.globex.example");
	assert_non_null(r);
	assert_string_equal(r->pattern, "*@labs.globex.example");

	assert_null(conf_route_lookup(l.conf, "other@globex.example"));
	assert_null(conf_route_lookup(l.conf, "x@sub.acme.example"));
	assert_null(conf_route_lookup(l.conf, "support@acme.example.org"));
	assert_null(conf_route_lookup(l.conf, "support"));
	assert_null(conf_route_lookup(l.conf, "<>"));
	assert_null(conf_route_lookup(l.conf, ""));
	assert_null(conf_route_lookup(l.conf, "@acme.example"));
	assert_null(conf_route_lookup(l.conf, "support@"));
	assert_null(conf_route_lookup(l.conf, NULL));
	assert_null(conf_route_lookup(NULL, "support@acme.example"));

	/* 320 bytes is the longest address routed; 321 is refused */
	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr + 320 - strlen("@acme.example"), "@acme.example",
	    strlen("@acme.example") + 1);
	assert_int_equal(strlen(longaddr), 320);
	r = conf_route_lookup(l.conf, longaddr);
	assert_non_null(r);
	assert_string_equal(r->pattern, "*@acme.example");
	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr + 321 - strlen("@acme.example"), "@acme.example",
	    strlen("@acme.example") + 1);
	assert_null(conf_route_lookup(l.conf, longaddr));
	unload(&l);
}

/* Within one tenant, an exact rule may sit under the tenant's own wildcard. */
static void test_exact_over_own_wildcard(void **state)
{
	const struct conf_route *r;
	struct loaded l;

	(void)state;
	load_text(&l,
	    TENANT_ACME
	    "route = bob@x.example off\n"
	    "route = *@x.example intake agent=recipient\n"
	    "route = alice@x.example intake agent=alice@x.example\n");
	expect_ok(&l);
	r = conf_route_lookup(l.conf, "bob@x.example");
	assert_int_equal(r->mode, CONF_MODE_OFF);
	r = conf_route_lookup(l.conf, "alice@x.example");
	assert_string_equal(r->agent, "alice@x.example");
	r = conf_route_lookup(l.conf, "carol@x.example");
	assert_string_equal(r->pattern, "*@x.example");
	unload(&l);
}

/* default_agent given after the routes still fills their agent. */
static void test_default_agent_after_routes(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l,
	    TENANT_ACME
	    "route = a@x.example intake\n"
	    "route = b@x.example thread-only\n"
	    "route = c@x.example intake agent=recipient\n"
	    "default_agent = Desk@X.example\n"
	    TENANT_GLOBEX
	    "default_agent = other@y.example\n");
	expect_ok(&l);
	t = l.conf->tenants[0];
	assert_string_equal(t->routes[0]->agent, "desk@x.example");
	assert_string_equal(t->routes[1]->agent, "desk@x.example");
	assert_null(t->routes[2]->agent);
	unload(&l);
}

/* client_secret_file: read, trailing newline and whitespace stripped. */
static void test_secret_file(void **state)
{
	char secret_path[PATH_MAX], text[PATH_MAX + 256];
	struct loaded l;

	(void)state;
	write_tmp(secret_path, sizeof(secret_path), "s3cr#t value \t\n\n", 16);
	snprintf(text, sizeof(text), TENANT_ACME "client_secret_file = %s\n",
	    secret_path);
	load_text(&l, text);
	expect_ok(&l);
	assert_string_equal(l.conf->tenants[0]->client_secret, "s3cr#t value");
	unload(&l);
	unlink(secret_path);
}

/* An empty (or whitespace-only) client_secret_file is an error. */
static void test_secret_file_empty(void **state)
{
	char secret_path[PATH_MAX], text[PATH_MAX + 256], msg[PATH_MAX + 64];
	struct loaded l;

	(void)state;
	write_tmp(secret_path, sizeof(secret_path), " \n", 2);
	snprintf(text, sizeof(text), TENANT_ACME "client_secret_file = %s\n",
	    secret_path);
	snprintf(msg, sizeof(msg), "cannot read client_secret_file '%s': "
	    "file is empty", secret_path);
	load_text(&l, text);
	expect_error(&l, 5, msg, 1);
	unload(&l);
	unlink(secret_path);
}

/* Lines over 4096 bytes are errors; exactly 4096 is fine; parsing goes on. */
static void test_line_too_long(void **state)
{
	size_t size = 3 * 5000;
	char *text = malloc(size);
	struct loaded l;
	size_t n = 0;

	(void)state;
	assert_non_null(text);
	n += (size_t)sprintf(text + n, "log_level = info\n");
	memset(text + n, '#', 4096);    /* line 2: 4096 bytes, a comment */
	n += 4096;
	text[n++] = '\n';
	n += (size_t)sprintf(text + n, "state_dir = /");
	memset(text + n, 'd', 4097 - strlen("state_dir = /"));
	n += 4097 - strlen("state_dir = /");   /* line 3: 4097 bytes */
	text[n++] = '\n';
	n += (size_t)sprintf(text + n, "bogus = 1\n");   /* line 4 */
	load_bytes(&l, text, n);
	expect_error(&l, 3, "line too long", 2);
	assert_true(has_error(l.errs, l.path, 4, "unknown key 'bogus'"));
	unload(&l);
	free(text);
}

/* A NUL byte in a line is an error. */
static void test_nul_byte(void **state)
{
	static const char text[] = "log_level = info\nstate_dir = /a\0b\n";
	struct loaded l;

	(void)state;
	load_bytes(&l, text, sizeof(text) - 1);
	expect_error(&l, 2, "NUL byte in line", 1);
	unload(&l);
}

/* Tenant names: 64 characters are fine, 65 are not. */
static void test_tenant_name_length(void **state)
{
	char name[66], text[256];
	struct loaded l;

	(void)state;
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), "[tenant %s]\nhalo_url = https://x.example\n"
	    "client_id = id\nticket_type_id = 1\n", name);
	load_text(&l, text);
	expect_ok(&l);
	assert_string_equal(l.conf->tenants[0]->name, name);
	unload(&l);

	name[64] = 'n';
	name[65] = '\0';
	snprintf(text, sizeof(text), "[tenant %s]\nhalo_url = https://x.example\n"
	    "client_id = id\nticket_type_id = 1\n", name);
	load_text(&l, text);
	expect_error(&l, 1, "invalid tenant name", 1);
	unload(&l);
}

/* A unix socket path must fit in sockaddr_un. */
static void test_socket_path_too_long(void **state)
{
	char path[200], text[256];
	struct loaded l;

	(void)state;
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	snprintf(text, sizeof(text), "socket = unix:%s\n", path);
	load_text(&l, text);
	expect_error(&l, 1, "unix socket path is too long", 1);
	unload(&l);
}

/* An unreadable file is one error at line 0. */
static void test_open_missing(void **state)
{
	struct loaded l;

	(void)state;
	memset(&l, 0, sizeof(l));
	snprintf(l.path, sizeof(l.path), "/nonexistent/halo-milter.conf");
	load_path(&l, l.path);
	expect_error(&l, 0, "cannot open: No such file or directory", 1);
	assert_int_equal(l.nerrors, 1);
	l.path[0] = '\0';
	unload(&l);
}

/* A directory is not a configuration file. */
static void test_open_directory(void **state)
{
	struct loaded l;

	(void)state;
	memset(&l, 0, sizeof(l));
	snprintf(l.path, sizeof(l.path), "/");
	load_path(&l, l.path);
	expect_error(&l, 0, "cannot open: Is a directory", 1);
	l.path[0] = '\0';
	unload(&l);
}

/* Every error in a file is reported, not only the first. */
static void test_all_errors_reported(void **state)
{
	struct loaded l;

	(void)state;
	load_text(&l,
	    "log_level = loud\n"               /* 1 */
	    "nonsense\n"                       /* 2 */
	    "[tenant acme]\n"                  /* 3: missing ticket_type_id */
	    "halo_url = https://a.example\n"   /* 4 */
	    "client_id = id\n"                 /* 5 */
	    "loop_window = 1\n"                /* 6 */
	    "route = a@x.example intake\n"     /* 7: no agent */
	    "[other]\n");                      /* 8 */
	expect_error(&l, 1, "log_level: invalid 'loud'", 6);
	assert_true(has_error(l.errs, l.path, 2, "expected 'key = value'"));
	assert_true(has_error(l.errs, l.path, 3,
	    "missing required key 'ticket_type_id'"));
	assert_true(has_error(l.errs, l.path, 6, "loop_window: invalid '1'"));
	assert_true(has_error(l.errs, l.path, 7, "needs agent="));
	assert_true(has_error(l.errs, l.path, 8, "unknown section '[other]'"));
	unload(&l);
}

/* conf_load tolerates a NULL error count; conf_free tolerates NULL. */
static void test_null_arguments(void **state)
{
	struct loaded l;
	FILE *errs;

	(void)state;
	memset(&l, 0, sizeof(l));
	write_tmp(l.path, sizeof(l.path), "log_level = err\n", 16);
	errs = open_memstream(&l.errs, &l.errs_len);
	assert_non_null(errs);
	l.conf = conf_load(l.path, errs, NULL);
	fclose(errs);
	assert_non_null(l.conf);
	assert_int_equal(l.conf->log_level, LOG_ERR);
	assert_null(conf_free(NULL));
	unload(&l);
}

/* The shipped example configuration loads with no error. */
static void test_example_config(void **state)
{
	const char *srcdir = getenv("HALO_SRCDIR");
	const struct conf_route *r;
	struct loaded l;

	(void)state;
	memset(&l, 0, sizeof(l));
	if (srcdir == NULL || *srcdir == '\0')
		srcdir = ".";
	snprintf(l.path, sizeof(l.path), "%s/conf/halo-milter.conf", srcdir);
	load_path(&l, l.path);
	expect_ok(&l);
	assert_int_equal(l.conf->n_tenants, 2);
	assert_string_equal(l.conf->tenants[0]->name, "acme");
	assert_string_equal(l.conf->tenants[1]->name, "globex");
	assert_true(l.conf->tenants[0]->n_routes >= 3);
	assert_true(l.conf->tenants[1]->n_routes >= 3);
	r = conf_route_lookup(l.conf, "<Support@ACME.example>");
	assert_non_null(r);
	assert_string_equal(r->tenant->name, "acme");
	l.path[0] = '\0';
	unload(&l);
}

/* Issue 11: authserv_ids, submission_networks, agent_login. */
static void test_trust_keys(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l, "authserv_ids = MX.msp.example, mx2.msp.example\n"
	    "authserv_ids = rspamd\n"
	    "submission_networks = 192.0.2.0/24 2001:db8::/32\n"
	    TENANT_ACME "agent_login = jdoe Agent@MSP.example\n"
	    "agent_login = DOMAIN\\jdoe agent@msp.example\n");
	expect_ok(&l);
	assert_int_equal(l.conf->n_authserv_ids, 3);
	assert_string_equal(l.conf->authserv_ids[0], "mx.msp.example");
	assert_string_equal(l.conf->authserv_ids[2], "rspamd");
	assert_int_equal(l.conf->n_submission_networks, 2);
	assert_true(conf_net_match(l.conf->submission_networks,
	    l.conf->n_submission_networks, "192.0.2.77"));
	assert_true(conf_net_match(l.conf->submission_networks,
	    l.conf->n_submission_networks, "::ffff:192.0.2.1"));
	assert_false(conf_net_match(l.conf->submission_networks,
	    l.conf->n_submission_networks, "198.51.100.1"));
	t = l.conf->tenants[0];
	assert_int_equal(t->n_logins, 2);
	assert_string_equal(t->logins[0]->agent, "agent@msp.example");
	assert_true(conf_login_may_send_as(t, "jdoe", "agent@msp.example"));
	assert_true(conf_login_may_send_as(t, "JDOE", "agent@msp.example"));
	assert_true(conf_login_may_send_as(t, "DOMAIN\\jdoe",
	    "agent@msp.example"));
	assert_true(conf_login_may_send_as(t, "Agent@msp.example",
	    "agent@msp.example"));
	assert_false(conf_login_may_send_as(t, "jdoe", "other@msp.example"));
	assert_false(conf_login_may_send_as(t, "mallory", "agent@msp.example"));
	assert_false(conf_login_may_send_as(t, "", "agent@msp.example"));
	assert_false(conf_login_may_send_as(t, NULL, "agent@msp.example"));
	unload(&l);

	/* defaults: none of them */
	load_text(&l, TENANT_ACME);
	expect_ok(&l);
	assert_int_equal(l.conf->n_authserv_ids, 0);
	assert_int_equal(l.conf->n_submission_networks, 0);
	assert_int_equal(l.conf->tenants[0]->n_logins, 0);
	unload(&l);

	load_text(&l, "submission_networks = 10.0.0.1/8\n" TENANT_ACME);
	expect_error(&l, 1, "submission_networks: '10.0.0.1/8' has host bits", 1);
	unload(&l);
	load_text(&l, "submission_networks = nonsense\n" TENANT_ACME);
	expect_error(&l, 1, "submission_networks: invalid network 'nonsense'", 1);
	unload(&l);
	load_text(&l, "authserv_ids = mx;evil\n" TENANT_ACME);
	expect_error(&l, 1, "authserv_ids: invalid authserv-id 'mx;evil'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "agent_login = jdoe\n");
	expect_error(&l, 5, "agent_login: expected 'LOGIN AGENT-EMAIL'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "agent_login = jdoe a@b c\n");
	expect_error(&l, 5, "agent_login: expected 'LOGIN AGENT-EMAIL'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "agent_login = jdoe not-an-address\n");
	expect_error(&l, 5, "agent_login: invalid email address", 1);
	unload(&l);
	load_text(&l, "agent_login = jdoe a@b.example\n" TENANT_ACME);
	expect_error(&l, 1, "agent_login", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "authserv_ids = mx\n");
	expect_error(&l, 5, "authserv_ids", 1);
	unload(&l);
}

/* Issue 11: join_clients and join_domain_members widen who may join. */
static void test_join_keys(void **state)
{
	struct conf_tenant *t;
	struct loaded l;

	(void)state;
	load_text(&l, TENANT_ACME "join_clients = 123, 456\n"
	    "join_clients = 789\njoin_domain_members = yes\n");
	expect_ok(&l);
	t = l.conf->tenants[0];
	assert_int_equal(t->n_join_clients, 3);
	assert_int_equal(t->join_clients[0], 123);
	assert_int_equal(t->join_clients[1], 456);
	assert_int_equal(t->join_clients[2], 789);
	assert_true(t->join_domain_members);
	unload(&l);

	/* defaults: no widening */
	load_text(&l, TENANT_ACME);
	expect_ok(&l);
	assert_int_equal(l.conf->tenants[0]->n_join_clients, 0);
	assert_false(l.conf->tenants[0]->join_domain_members);
	unload(&l);

	load_text(&l, TENANT_ACME "join_clients = 12x\n");
	expect_error(&l, 5, "join_clients: invalid client id '12x'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "join_clients = 0\n");
	expect_error(&l, 5, "join_clients: invalid client id '0'", 1);
	unload(&l);
	load_text(&l, TENANT_ACME "join_domain_members = maybe\n");
	expect_error(&l, 5, "join_domain_members: invalid boolean", 1);
	unload(&l);
	load_text(&l, "join_clients = 5\n" TENANT_ACME);
	expect_error(&l, 1, "join_clients", 1);
	unload(&l);
}

/* Run the fixed tests, then one test per error_cases row. */
int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_empty_file_defaults),
		cmocka_unit_test(test_join_keys),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_web_keys),
		cmocka_unit_test(test_socket_and_log_level_forms),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_tenant_defaults),
		cmocka_unit_test(test_worker_keys),
		cmocka_unit_test(test_fidelity_keys),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_tenant_values),
		cmocka_unit_test(test_comments_and_whitespace),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_route_lookup),
		cmocka_unit_test(test_exact_over_own_wildcard),
		cmocka_unit_test(test_default_agent_after_routes),
		cmocka_unit_test(test_secret_file),
		cmocka_unit_test(test_secret_file_empty),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_tenant_name_length),
		cmocka_unit_test(test_socket_path_too_long),
		cmocka_unit_test(test_open_missing),
		cmocka_unit_test(test_open_directory),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_example_config),
		cmocka_unit_test(test_trust_keys),
		cmocka_unit_test(test_tenant_find),
	};
	size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]);
	size_t n_cases = sizeof(error_cases) / sizeof(error_cases[0]);
	struct CMUnitTest *tests = calloc(n_fixed + n_cases, sizeof(*tests));
	size_t i;
	int rc;

	if (tests == NULL)
		return 1;
	memcpy(tests, fixed, sizeof(fixed));
	for (i = 0; i < n_cases; i++) {
		tests[n_fixed + i].name = error_cases[i].name;
		tests[n_fixed + i].test_func = test_error_case;
		tests[n_fixed + i].initial_state = (void *)&error_cases[i];
	}
	rc = _cmocka_run_group_tests("conf", tests, n_fixed + n_cases, NULL,
	    NULL);
	free(tests);
	return rc;
}
