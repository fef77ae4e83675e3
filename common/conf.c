/*
 * conf.c - halo-milter configuration: parse, validate, look up routing.
 *
 * The file is read one bounded line at a time. Every problem is reported as
 * "FILE:LINE: message" and parsing goes on, so an operator sees all mistakes
 * at once; conf_load() then returns NULL if there was any. Only libc is used.
 */
#include "conf.h"
#include "store.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#define CONF_LINE_MAX        4096   /* bytes per line, without the newline */
#define CONF_ADDR_MAX        320    /* longest envelope address we route */
#define CONF_ROUTE_TOKENS    7      /* PATTERN MODE and five options */
#define CONF_LOOKUP_SCAN_MAX 1024   /* bound on the raw lookup argument */
#define CONF_SECRET_MAX      4096   /* largest client_secret_file accepted */
#define CONF_TENANT_NAME_MAX 64
#define CONF_USER_MAX        32
#define CONF_NETS_MAX        256    /* admin_networks entries in all */

#define DEFAULT_SOCKET       "unix:/run/halo-milter/milter.sock"
#define DEFAULT_STATE_DIR    "/var/lib/halo-milter"
#define DEFAULT_WEB_LISTEN   "127.0.0.1:8025"
/* where "make install" puts web/ (the Makefile passes its PREFIX) */
#ifndef HALO_WEB_ROOT
#define HALO_WEB_ROOT        "/usr/local/share/halo-milter/web"
#endif
#define DEFAULT_MAX_SIZE     (50ULL * 1024 * 1024)
#define DEFAULT_OUTCOME      "Email Received"
#define DEFAULT_SUBJECT_TAG  "[ID:{n}]"
#define DEFAULT_LOOP_CREATES 20U
#define DEFAULT_LOOP_WINDOW  3600U

enum key_id {
	KEY_SOCKET,
	KEY_STATE_DIR,
	KEY_STORE,
	KEY_WEB_LISTEN,
	KEY_PUBLIC_URL,
	KEY_USER,
	KEY_ON_SPOOL_ERROR,
	KEY_MAX_MESSAGE_SIZE,
	KEY_ADD_THREAD_INDEX,
	KEY_LOG_LEVEL,
	KEY_HALO_URL,
	KEY_AUTH_URL,
	KEY_HALO_TENANT,
	KEY_CLIENT_ID,
	KEY_CLIENT_SECRET,
	KEY_CLIENT_SECRET_FILE,
	KEY_TICKET_TYPE_ID,
	KEY_APPEND_OUTCOME,
	KEY_CREATE_OUTCOME,
	KEY_INTERNAL_NOTE,
	KEY_ATTACHMENTS,
	KEY_SUBJECT_TAG,
	KEY_DEFAULT_AGENT,
	KEY_HALO_SENDERS,
	KEY_LOOP_MAX_CREATES,
	KEY_LOOP_WINDOW,
	KEY_ROUTE,
	KEY_WORKERS,
	KEY_RETRY_BASE,
	KEY_JOB_LEASE,
	KEY_JOB_RETENTION,
	KEY_INSECURE_HTTP,
	KEY_HALO_CA_FILE,
	KEY_FALLBACK_CLIENT_ID,
	KEY_CF_CONVERSATION_ID,
	KEY_CF_MESSAGE_ID,
	KEY_TRIM_QUOTES,
	KEY_RATE_LIMIT,
	KEY_RATE_WINDOW,
	KEY_MAX_ATTACHMENT_SIZE,
	KEY_MAX_ATTACHMENTS_TOTAL,
	KEY_HALO_REQUEST_MAX,
	KEY_SENDER_CACHE_TTL,
	KEY_OVERRIDE,
	KEY_TLS_CERT,
	KEY_TLS_KEY,
	KEY_LOG_OUTBOUND,
	KEY_OUTBOUND_OUTCOME,
	KEY_CLOSED_TICKETS,
	KEY_REOPEN_STATUS_ID,
	KEY_TICKET_STATUS_TTL,
	KEY_WEB_ROOT,
	KEY_ADMIN_NETWORKS,
	KEY_SUBMISSION_NETWORKS,
	KEY_AUTHSERV_IDS,
	KEY_AGENT_LOGIN,
	KEY_LOG,
	KEY_WEB_MAX_CONNECTIONS,
	KEY_WEB_CONNECTIONS_PER_IP,
	KEY_WEB_REQUEST_TIMEOUT,
	KEY_JOIN_CLIENTS,
	KEY_JOIN_DOMAIN_MEMBERS,
	KEY_SELF_ENROLL,
	KEY_CREATE_CONTACTS,
	KEY_DONT_DO_RULES,
	KEY_HALO_SCOPE,
	KEY_COUNT
};

enum key_scope {
	SCOPE_GLOBAL,
	SCOPE_TENANT
};

struct key_def {
	const char *name;
	enum key_scope scope;
	bool repeatable;
};

static const struct key_def key_defs[KEY_COUNT] = {
	[KEY_SOCKET]             = { "socket", SCOPE_GLOBAL, false },
	[KEY_STATE_DIR]          = { "state_dir", SCOPE_GLOBAL, false },
	[KEY_STORE]              = { "store", SCOPE_GLOBAL, false },
	[KEY_WEB_LISTEN]         = { "web_listen", SCOPE_GLOBAL, false },
	[KEY_PUBLIC_URL]         = { "public_url", SCOPE_GLOBAL, false },
	[KEY_USER]               = { "user", SCOPE_GLOBAL, false },
	[KEY_ON_SPOOL_ERROR]     = { "on_spool_error", SCOPE_GLOBAL, false },
	[KEY_MAX_MESSAGE_SIZE]   = { "max_message_size", SCOPE_GLOBAL, false },
	[KEY_ADD_THREAD_INDEX]   = { "add_thread_index", SCOPE_GLOBAL, false },
	[KEY_LOG_LEVEL]          = { "log_level", SCOPE_GLOBAL, false },
	[KEY_HALO_URL]           = { "halo_url", SCOPE_TENANT, false },
	[KEY_AUTH_URL]           = { "auth_url", SCOPE_TENANT, false },
	[KEY_HALO_TENANT]        = { "halo_tenant", SCOPE_TENANT, false },
	[KEY_CLIENT_ID]          = { "client_id", SCOPE_TENANT, false },
	[KEY_CLIENT_SECRET]      = { "client_secret", SCOPE_TENANT, false },
	[KEY_CLIENT_SECRET_FILE] = { "client_secret_file", SCOPE_TENANT, false },
	[KEY_TICKET_TYPE_ID]     = { "ticket_type_id", SCOPE_TENANT, false },
	[KEY_APPEND_OUTCOME]     = { "append_outcome", SCOPE_TENANT, false },
	[KEY_CREATE_OUTCOME]     = { "create_outcome", SCOPE_TENANT, false },
	[KEY_INTERNAL_NOTE]      = { "internal_note", SCOPE_TENANT, false },
	[KEY_ATTACHMENTS]        = { "attachments", SCOPE_TENANT, false },
	[KEY_SUBJECT_TAG]        = { "subject_tag", SCOPE_TENANT, false },
	[KEY_DEFAULT_AGENT]      = { "default_agent", SCOPE_TENANT, false },
	[KEY_HALO_SENDERS]       = { "halo_senders", SCOPE_TENANT, true },
	[KEY_LOOP_MAX_CREATES]   = { "loop_max_creates", SCOPE_TENANT, false },
	[KEY_LOOP_WINDOW]        = { "loop_window", SCOPE_TENANT, false },
	[KEY_WORKERS]            = { "workers", SCOPE_GLOBAL, false },
	[KEY_RETRY_BASE]         = { "retry_base", SCOPE_GLOBAL, false },
	[KEY_JOB_LEASE]          = { "job_lease", SCOPE_GLOBAL, false },
	[KEY_JOB_RETENTION]      = { "job_retention", SCOPE_GLOBAL, false },
	[KEY_INSECURE_HTTP]      = { "insecure_http", SCOPE_GLOBAL, false },
	[KEY_HALO_CA_FILE]       = { "halo_ca_file", SCOPE_GLOBAL, false },
	[KEY_FALLBACK_CLIENT_ID] = { "fallback_client_id", SCOPE_TENANT, false },
	[KEY_CF_CONVERSATION_ID] = { "cf_conversation_id", SCOPE_TENANT, false },
	[KEY_CF_MESSAGE_ID]      = { "cf_message_id", SCOPE_TENANT, false },
	[KEY_TRIM_QUOTES]        = { "trim_quotes", SCOPE_TENANT, false },
	[KEY_RATE_LIMIT]         = { "rate_limit", SCOPE_TENANT, false },
	[KEY_RATE_WINDOW]        = { "rate_window", SCOPE_TENANT, false },
	[KEY_MAX_ATTACHMENT_SIZE] = { "max_attachment_size", SCOPE_TENANT, false },
	[KEY_MAX_ATTACHMENTS_TOTAL] = { "max_attachments_total", SCOPE_TENANT, false },
	[KEY_HALO_REQUEST_MAX]   = { "halo_request_max", SCOPE_TENANT, false },
	[KEY_SENDER_CACHE_TTL]   = { "sender_cache_ttl", SCOPE_TENANT, false },
	[KEY_OVERRIDE]           = { "override", SCOPE_TENANT, true },
	[KEY_LOG_OUTBOUND]       = { "log_outbound", SCOPE_TENANT, false },
	[KEY_OUTBOUND_OUTCOME]   = { "outbound_outcome", SCOPE_TENANT, false },
	[KEY_CLOSED_TICKETS]     = { "closed_tickets", SCOPE_TENANT, false },
	[KEY_REOPEN_STATUS_ID]   = { "reopen_status_id", SCOPE_TENANT, false },
	[KEY_TICKET_STATUS_TTL]  = { "ticket_status_ttl", SCOPE_TENANT, false },
	[KEY_ROUTE]              = { "route", SCOPE_TENANT, true },
	[KEY_TLS_CERT]           = { "tls_cert", SCOPE_GLOBAL, false },
	[KEY_TLS_KEY]            = { "tls_key", SCOPE_GLOBAL, false },
	[KEY_WEB_ROOT]           = { "web_root", SCOPE_GLOBAL, false },
	[KEY_ADMIN_NETWORKS]     = { "admin_networks", SCOPE_GLOBAL, true },
	[KEY_SUBMISSION_NETWORKS] = { "submission_networks", SCOPE_GLOBAL, true },
	[KEY_AUTHSERV_IDS]       = { "authserv_ids", SCOPE_GLOBAL, true },
	[KEY_AGENT_LOGIN]        = { "agent_login", SCOPE_TENANT, true },
	[KEY_LOG]                = { "log", SCOPE_GLOBAL, false },
	[KEY_WEB_MAX_CONNECTIONS] = { "web_max_connections", SCOPE_GLOBAL,
	                             false },
	[KEY_WEB_CONNECTIONS_PER_IP] = { "web_connections_per_ip",
	                             SCOPE_GLOBAL, false },
	[KEY_WEB_REQUEST_TIMEOUT] = { "web_request_timeout", SCOPE_GLOBAL,
	                             false },
	[KEY_JOIN_CLIENTS]       = { "join_clients", SCOPE_TENANT, true },
	[KEY_JOIN_DOMAIN_MEMBERS] = { "join_domain_members", SCOPE_TENANT, false },
	[KEY_SELF_ENROLL]        = { "self_enroll", SCOPE_TENANT, false },
	[KEY_CREATE_CONTACTS]    = { "create_contacts", SCOPE_TENANT, false },
	[KEY_DONT_DO_RULES]      = { "dont_do_rules", SCOPE_TENANT, false },
	[KEY_HALO_SCOPE]         = { "halo_scope", SCOPE_TENANT, false },
};

enum parse_state {
	STATE_GLOBAL,   /* before the first section */
	STATE_TENANT,   /* inside a [tenant NAME] section */
	STATE_SKIP      /* inside a bad section header: ignore its keys */
};

struct parser {
	const char *path;
	FILE *errs;
	int nerrors;
	struct conf *conf;
	enum parse_state state;
	struct conf_tenant *tenant;        /* current section, owned by conf */
	int key_line[KEY_COUNT];           /* line a key was set in this scope */
	struct conf_route **pending;       /* routes of this section with no agent= */
	size_t n_pending;
	bool web_off;                      /* web_listen = off */
	int tls_line;                      /* line of tls_cert or tls_key */
	bool tls_bad;                      /* one of them was invalid */
};

/* Report one problem as "FILE:LINE: message" and count it. */
__attribute__((format(printf, 3, 4)))
static void conf_error(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(p->errs, "%s:%d: ", p->path, line);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
	p->nerrors++;
}

/* ASCII whitespace test, independent of the locale. */
static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* ASCII control character test (C0 controls and DEL). */
static bool is_control(int c)
{
	return (unsigned char)c < 0x20 || c == 0x7f;
}

/* ASCII digit test. */
static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* ASCII lower-case, independent of the locale. */
static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Lower-case a string in place. */
static void lower_str(char *s)
{
	for (; *s != '\0'; s++)
		*s = to_lower(*s);
}

/* Trim whitespace at both ends of S in place; returns the new start. */
static char *trim(char *s)
{
	char *end;

	while (is_space((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_space((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* True when S has no control characters (free text such as outcome names). */
static bool text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (is_control(*s))
			return false;
	return true;
}

/* True when S is non-empty and has no whitespace or control characters. */
static bool token_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (is_space((unsigned char)*s) || is_control(*s))
			return false;
	return true;
}

/* Copy a string, reporting allocation failure at LINE. */
static char *dup_str(struct parser *p, int line, const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL)
		conf_error(p, line, "out of memory");
	return copy;
}

/* Store a copy of VALUE in *FIELD (which must be unset). */
static void set_str(struct parser *p, int line, char **field,
    const char *value)
{
	*field = dup_str(p, line, value);
}

/* Parse a decimal port (1-65535) of exactly LEN bytes. */
static bool port_ok(const char *s, size_t len)
{
	unsigned long port = 0;
	size_t i;

	if (len == 0 || len > 5)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

/* Parse a decimal unsigned integer in [MIN, MAX]; digits only. */
static bool parse_ulong_range(const char *s, unsigned long min,
    unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!is_digit(*s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Parse a boolean word: yes/no, true/false, on/off, 1/0 (any case). */
static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Parse a size with optional K/M/G suffix (binary units). 0 on success. */
int conf_parse_size(const char *text, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *s = text;

	if (text == NULL || out == NULL || !is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	switch (*s) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1024ULL;
		s++;
		break;
	case 'm': case 'M':
		mult = 1024ULL * 1024;
		s++;
		break;
	case 'g': case 'G':
		mult = 1024ULL * 1024 * 1024;
		s++;
		break;
	default:
		return -1;
	}
	if (*s != '\0')
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* Why a milter socket spec is invalid, or NULL when it is valid. */
static const char *socket_error(const char *s)
{
	struct sockaddr_un addr_un;
	const char *rest, *at;

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
		rest = strchr(s, ':') + 1;
		if (rest[0] != '/')
			return "unix socket path must be absolute";
		if (!text_ok(rest))
			return "socket path contains a control character";
		if (strlen(rest) >= sizeof(addr_un.sun_path))
			return "unix socket path is too long";
		return NULL;
	}
	if (strncmp(s, "inet:", 5) == 0)
		rest = s + 5;
	else if (strncmp(s, "inet6:", 6) == 0)
		rest = s + 6;
	else
		return "expected unix:/PATH, local:/PATH, inet:PORT@HOST or "
		    "inet6:PORT@HOST";
	at = strchr(rest, '@');
	if (at == NULL)
		return "inet socket must be PORT@HOST";
	if (!port_ok(rest, (size_t)(at - rest)))
		return "port must be a number from 1 to 65535";
	if (!token_ok(at + 1))
		return "missing or malformed host after '@'";
	return NULL;
}

/* Why a web_listen value is invalid, or NULL when it is valid. */
static const char *listen_error(const char *s)
{
	const char *colon, *p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL)
			return "missing ']' after IPv6 address";
		if (close == s + 1)
			return "empty IPv6 address";
		for (p = s + 1; p < close; p++)
			if (!(is_digit(*p) || (*p >= 'a' && *p <= 'f') ||
			    (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
				return "malformed IPv6 address";
		if (close[1] != ':')
			return "expected [ADDRESS]:PORT";
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return "expected HOST:PORT or [IPV6]:PORT";
		if (colon == s)
			return "empty host";
		for (p = s; p < colon; p++)
			if (!(is_digit(*p) || (*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') || *p == '.' || *p == '-'))
				return "malformed host (IPv6 addresses need "
				    "brackets: [::1]:PORT)";
	}
	if (!port_ok(colon + 1, strlen(colon + 1)))
		return "port must be a number from 1 to 65535";
	return NULL;
}

/* Validate an http(s) URL and store it without trailing '/'. */
static void set_url(struct parser *p, int line, const char *key,
    char **field, const char *value)
{
	const char *rest;
	size_t len;
	char *copy;

	if (strncasecmp(value, "https://", 8) == 0)
		rest = value + 8;
	else if (strncasecmp(value, "http://", 7) == 0)
		rest = value + 7;
	else {
		conf_error(p, line, "%s: '%s' is not an http:// or https:// URL",
		    key, value);
		return;
	}
	if (!token_ok(value)) {
		conf_error(p, line, "%s: URL contains whitespace or a control "
		    "character", key);
		return;
	}
	if (*rest == '\0' || *rest == '/' || *rest == '?' || *rest == '#') {
		conf_error(p, line, "%s: URL '%s' has no host", key, value);
		return;
	}
	copy = dup_str(p, line, value);
	if (copy == NULL)
		return;
	len = strlen(copy);
	while (len > 0 && copy[len - 1] == '/')
		copy[--len] = '\0';
	*field = copy;
}

/* Why an email address is invalid, or NULL when it is valid. */
static const char *email_error(const char *s)
{
	const char *at = strchr(s, '@');

	if (strlen(s) > CONF_ADDR_MAX)
		return "address is too long";
	if (!token_ok(s))
		return "address contains whitespace or a control character";
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return "address must contain exactly one '@'";
	if (at == s || at[1] == '\0')
		return "address has an empty local part or domain";
	return NULL;
}

/* Validate an email address and return a lower-case copy, or NULL. */
static char *email_dup(struct parser *p, int line, const char *key,
    const char *value)
{
	const char *why = email_error(value);
	char *copy;

	if (why != NULL) {
		conf_error(p, line, "%s: invalid email address '%s': %s", key,
		    value, why);
		return NULL;
	}
	copy = dup_str(p, line, value);
	if (copy != NULL)
		lower_str(copy);
	return copy;
}

/* Why a (lower-cased) route pattern is invalid, or NULL when it is valid. */
static const char *pattern_error(const char *pat)
{
	const char *at = strchr(pat, '@'), *s;

	if (strlen(pat) > CONF_ADDR_MAX)
		return "pattern is too long";
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return "pattern must contain exactly one '@'";
	if (at == pat || at[1] == '\0')
		return "pattern has an empty local part or domain";
	for (s = pat; *s != '\0'; s++)
		if (is_space((unsigned char)*s) || is_control(*s))
			return "pattern contains whitespace or a control "
			    "character";
	if (memchr(pat, '*', (size_t)(at - pat)) != NULL &&
	    !(pat[0] == '*' && at == pat + 1))
		return "'*' is only allowed as the whole local part (*@domain)";
	for (s = at + 1; *s != '\0'; s++)
		if (!(is_digit(*s) || (*s >= 'a' && *s <= 'z') || *s == '.' ||
		    *s == '-'))
			return "domain may contain only letters, digits, '.' "
			    "and '-'";
	if (at[1] == '.' || s[-1] == '.' || strstr(at + 1, "..") != NULL)
		return "malformed domain";
	return NULL;
}

/* Grow a pointer array by one slot; returns the new array or NULL. */
static void *grow_ptrs(void *array, size_t n)
{
	if (n >= SIZE_MAX / sizeof(void *) - 1)
		return NULL;
	return realloc(array, (n + 1) * sizeof(void *));
}

/* Read client_secret_file into *FIELD: bounded, trailing whitespace stripped. */
static void read_secret_file(struct parser *p, int line, char **field,
    const char *path)
{
	char buf[CONF_SECRET_MAX + 1];
	size_t len = 0;
	ssize_t n;
	struct stat st;
	const char *why = NULL;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		conf_error(p, line, "cannot read client_secret_file '%s': %s",
		    path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0) {
		why = strerror(errno);
	} else if (!S_ISREG(st.st_mode)) {
		why = S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file";
	} else {
		n = util_read_full(fd, buf, sizeof(buf));
		if (n < 0)
			why = strerror(errno);
		else
			len = (size_t)n;
		if (why == NULL && len > CONF_SECRET_MAX)
			why = "file is too large";
	}
	close(fd);
	if (why == NULL) {
		while (len > 0 && is_space((unsigned char)buf[len - 1]))
			len--;
		buf[len] = '\0';
		if (len == 0)
			why = "file is empty";
		else if (memchr(buf, '\0', len) != NULL || !text_ok(buf))
			why = "file contains a control character";
	}
	if (why != NULL)
		conf_error(p, line, "cannot read client_secret_file '%s': %s",
		    path, why);
	else
		*field = dup_str(p, line, buf);
	explicit_bzero(buf, sizeof(buf));
}

/* Free one route. */
static void route_free(struct conf_route *route)
{
	if (route == NULL)
		return;
	free(route->pattern);
	free(route->agent);
	free(route->team);
	free(route);
}

/* Free one tenant and everything it owns; secrets are wiped first. */
static void tenant_free(struct conf_tenant *t)
{
	size_t i;

	if (t == NULL)
		return;
	free(t->name);
	free(t->halo_url);
	free(t->auth_url);
	free(t->halo_tenant);
	free(t->client_id);
	if (t->client_secret != NULL) {
		explicit_bzero(t->client_secret, strlen(t->client_secret));
		free(t->client_secret);
	}
	free(t->append_outcome);
	free(t->create_outcome);
	free(t->subject_tag);
	free(t->default_agent);
	free(t->cf_conversation_id);
	free(t->cf_message_id);
	free(t->outbound_outcome);
	free(t->halo_scope);
	for (i = 0; i < t->n_overrides; i++) {
		free(t->overrides[i]->pattern);
		free(t->overrides[i]);
	}
	free(t->overrides);
	for (i = 0; i < t->n_halo_senders; i++)
		free(t->halo_senders[i]);
	free(t->halo_senders);
	for (i = 0; i < t->n_logins; i++) {
		free(t->logins[i]->login);
		free(t->logins[i]->agent);
		free(t->logins[i]);
	}
	free(t->logins);
	free(t->join_clients);
	for (i = 0; i < t->n_routes; i++)
		route_free(t->routes[i]);
	free(t->routes);
	free(t);
}

/* Release a configuration; returns NULL. NULL is accepted. */
struct conf *conf_free(struct conf *conf)
{
	size_t i;

	if (conf == NULL)
		return NULL;
	for (i = 0; i < conf->n_tenants; i++)
		tenant_free(conf->tenants[i]);
	free(conf->tenants);
	free(conf->path);
	free(conf->socket);
	free(conf->state_dir);
	free(conf->halo_ca_file);
	free(conf->store);
	free(conf->web_listen);
	free(conf->public_url);
	free(conf->web_root);
	free(conf->tls_cert);
	free(conf->tls_key);
	free(conf->admin_networks);
	free(conf->submission_networks);
	for (i = 0; i < conf->n_authserv_ids; i++)
		free(conf->authserv_ids[i]);
	free(conf->authserv_ids);
	free(conf->user);
	free(conf);
	return NULL;
}

/* Find an earlier route that clashes with PATTERN; report it, return true. */
static bool route_conflicts(struct parser *p, int line, const char *pattern)
{
	const char *domain = strchr(pattern, '@') + 1;
	bool wild = pattern[0] == '*';
	size_t i, j;

	for (i = 0; i < p->conf->n_tenants; i++) {
		const struct conf_tenant *t = p->conf->tenants[i];

		for (j = 0; j < t->n_routes; j++) {
			const struct conf_route *r = t->routes[j];

			if (strcmp(r->pattern, pattern) != 0)
				continue;
			conf_error(p, line, "duplicate route '%s' (first defined "
			    "at line %d in tenant '%s')", pattern, r->line,
			    t->name);
			return true;
		}
	}
	for (i = 0; i < p->conf->n_tenants; i++) {
		const struct conf_tenant *t = p->conf->tenants[i];

		if (t == p->tenant)
			continue;
		for (j = 0; j < t->n_routes; j++) {
			const struct conf_route *r = t->routes[j];

			if ((r->pattern[0] == '*') == wild)
				continue;
			if (strcmp(strchr(r->pattern, '@') + 1, domain) != 0)
				continue;
			conf_error(p, line, "route '%s' overlaps '%s' in tenant "
			    "'%s' at line %d", pattern, r->pattern, t->name,
			    r->line);
			return true;
		}
	}
	return false;
}

/* Parse "PATTERN MODE [agent=EMAIL|agent=recipient]" and add the route. */
/* "override = PATTERN client=ID [site=ID]" or
 * "override = PATTERN contact=ID site=ID client=ID". */
static void parse_override(struct parser *p, int line, const char *value)
{
	char buf[CONF_LINE_MAX + 1];
	char *tok[5], *save = NULL, *s;
	const char *why;
	size_t ntok = 0, i;
	long ids[3] = { 0, 0, 0 };    /* contact, site, client */
	static const char *const names[3] = { "contact=", "site=", "client=" };
	struct conf_override *o, **grown;
	struct conf_tenant *t = p->tenant;
	unsigned long num;

	if (strlen(value) >= sizeof(buf)) {
		conf_error(p, line, "override: value too long");
		return;
	}
	strcpy(buf, value);
	for (s = strtok_r(buf, " \t", &save); s != NULL && ntok < 5;
	    s = strtok_r(NULL, " \t", &save))
		tok[ntok++] = s;
	if (ntok < 2 || s != NULL) {
		conf_error(p, line, "override: expected PATTERN client=ID [site=ID]"
		    " or PATTERN contact=ID site=ID client=ID");
		return;
	}
	lower_str(tok[0]);
	why = pattern_error(tok[0]);
	if (why != NULL) {
		conf_error(p, line, "override: invalid pattern '%s': %s", tok[0],
		    why);
		return;
	}
	for (i = 1; i < ntok; i++) {
		size_t k;
		for (k = 0; k < 3; k++)
			if (strncasecmp(tok[i], names[k], strlen(names[k])) == 0)
				break;
		if (k == 3 || ids[k] != 0 || !parse_ulong_range(tok[i] +
		    strlen(names[k]), 1, 2147483647UL, &num)) {
			conf_error(p, line, "override: invalid '%s' (expected"
			    " contact=ID, site=ID or client=ID, each once)", tok[i]);
			return;
		}
		ids[k] = (long)num;
	}
	if (ids[2] == 0) {
		conf_error(p, line, "override: client=ID is required");
		return;
	}
	if (ids[0] != 0 && ids[1] == 0) {
		conf_error(p, line, "override: contact=ID needs its site=ID (Halo"
		    " requires a contact's site)");
		return;
	}
	for (i = 0; i < t->n_overrides; i++) {
		if (strcmp(t->overrides[i]->pattern, tok[0]) == 0) {
			conf_error(p, line, "override: '%s' already overridden at"
			    " line %d", tok[0], t->overrides[i]->line);
			return;
		}
	}
	o = calloc(1, sizeof(*o));
	grown = realloc(t->overrides, (t->n_overrides + 1) * sizeof(*grown));
	if (o == NULL || grown == NULL || (o->pattern = strdup(tok[0])) == NULL) {
		free(o);
		if (grown != NULL)
			t->overrides = grown;
		conf_error(p, line, "out of memory");
		return;
	}
	t->overrides = grown;
	o->contact_id = ids[0];
	o->site_id = ids[1];
	o->client_id = ids[2];
	o->line = line;
	t->overrides[t->n_overrides++] = o;
}

/* One "type=ID", "team=NAME", "priority=ID" or "assign=ID" of a route
 * into ROUTE; false (reported) when TOK is none of them or is invalid. */
static bool parse_route_option(struct parser *p, int line, const char *tok,
    struct conf_route *route)
{
	static const char *const names[] = { "type=", "priority=", "assign=" };
	unsigned long num;
	size_t k;

	if (strncasecmp(tok, "team=", 5) == 0) {
		if (route->team != NULL || tok[5] == '\0' || !text_ok(tok + 5)) {
			conf_error(p, line, "route: invalid '%s' (team=NAME, once)",
			    tok);
			return false;
		}
		route->team = dup_str(p, line, tok + 5);
		return route->team != NULL;
	}
	for (k = 0; k < 3; k++)
		if (strncasecmp(tok, names[k], strlen(names[k])) == 0)
			break;
	if (k == 3) {
		conf_error(p, line, "route: unexpected '%s' (expected agent=,"
		    " type=, team=, priority= or assign=)", tok);
		return false;
	}
	if (!parse_ulong_range(tok + strlen(names[k]), 1, 2147483647UL, &num) ||
	    (k == 0 ? route->ticket_type_id : k == 1 ? route->priority_id :
	    route->assign_agent_id) != 0) {
		conf_error(p, line, "route: invalid '%s' (expected %sID, a Halo"
		    " id, once)", tok, names[k]);
		return false;
	}
	if (k == 0)
		route->ticket_type_id = (long)num;
	else if (k == 1)
		route->priority_id = (long)num;
	else
		route->assign_agent_id = (long)num;
	return true;
}

/* Parse "PATTERN MODE [agent=EMAIL|agent=recipient] [type=ID] [team=NAME]
 * [priority=ID] [assign=ID]" and add the route. */
static void parse_route(struct parser *p, int line, const char *value)
{
	char buf[CONF_LINE_MAX + 1];
	char *tok[CONF_ROUTE_TOKENS + 1], *save = NULL, *s, *agent = NULL;
	const char *why;
	size_t ntok = 0, i;
	bool agent_given = false, bad = false, mode_ok = true;
	enum conf_mode mode = CONF_MODE_OFF;
	struct conf_route *route, **routes, opts;
	struct conf_tenant *t = p->tenant;

	if (strlen(value) >= sizeof(buf)) {
		conf_error(p, line, "route: value too long");
		return;
	}
	strcpy(buf, value);
	for (s = strtok_r(buf, " \t", &save); s != NULL &&
	    ntok < CONF_ROUTE_TOKENS + 1; s = strtok_r(NULL, " \t", &save))
		tok[ntok++] = s;
	if (ntok < 2) {
		conf_error(p, line, "route: expected PATTERN MODE "
		    "[agent=EMAIL|agent=recipient]");
		return;
	}
	if (ntok > CONF_ROUTE_TOKENS) {
		conf_error(p, line, "route: unexpected '%s' (expected PATTERN "
		    "MODE [agent=EMAIL|agent=recipient] [type=ID] [team=NAME]"
		    " [priority=ID] [assign=ID])", tok[CONF_ROUTE_TOKENS]);
		return;
	}
	lower_str(tok[0]);
	why = pattern_error(tok[0]);
	if (why != NULL) {
		conf_error(p, line, "route: invalid pattern '%s': %s", tok[0], why);
		bad = true;
	}
	if (strcasecmp(tok[1], "intake") == 0)
		mode = CONF_MODE_INTAKE;
	else if (strcasecmp(tok[1], "thread-only") == 0)
		mode = CONF_MODE_THREAD_ONLY;
	else if (strcasecmp(tok[1], "off") == 0)
		mode = CONF_MODE_OFF;
	else {
		conf_error(p, line, "route: unknown mode '%s' (expected intake, "
		    "thread-only or off)", tok[1]);
		bad = true;
		mode_ok = false;
	}
	memset(&opts, 0, sizeof(opts));
	for (i = 2; i < ntok; i++) {
		if (strncasecmp(tok[i], "agent=", 6) != 0) {
			if (mode_ok && mode == CONF_MODE_OFF) {
				conf_error(p, line, "route: mode 'off' takes no"
				    " options");
				bad = true;
			} else if (!parse_route_option(p, line, tok[i], &opts))
				bad = true;
			continue;
		}
		if (agent_given || agent != NULL) {
			conf_error(p, line, "route: agent= given twice");
			bad = true;
		} else if (mode_ok && mode == CONF_MODE_OFF) {
			conf_error(p, line, "route: mode 'off' takes no agent=");
			bad = true;
		} else if (strcasecmp(tok[i] + 6, "recipient") == 0) {
			agent_given = true;
		} else {
			agent = email_dup(p, line, "route agent", tok[i] + 6);
			agent_given = agent != NULL;
			bad = bad || agent == NULL;
		}
	}
	if (bad || route_conflicts(p, line, tok[0])) {
		free(agent);
		free(opts.team);
		return;
	}
	route = calloc(1, sizeof(*route));
	routes = grow_ptrs(t->routes, t->n_routes);
	if (route == NULL || routes == NULL ||
	    (route->pattern = strdup(tok[0])) == NULL) {
		conf_error(p, line, "out of memory");
		if (routes != NULL)
			t->routes = routes;
		route_free(route);
		free(agent);
		free(opts.team);
		return;
	}
	t->routes = routes;
	route->mode = mode;
	route->agent = agent;
	route->line = line;
	route->tenant = t;
	route->ticket_type_id = opts.ticket_type_id;
	route->priority_id = opts.priority_id;
	route->assign_agent_id = opts.assign_agent_id;
	route->team = opts.team;
	t->routes[t->n_routes++] = route;
	if (!agent_given && mode != CONF_MODE_OFF) {
		routes = grow_ptrs(p->pending, p->n_pending);
		if (routes == NULL) {
			conf_error(p, line, "out of memory");
			return;
		}
		p->pending = routes;
		p->pending[p->n_pending++] = route;
	}
}

/* Append the comma-separated addresses of VALUE to halo_senders. */
static void add_halo_senders(struct parser *p, int line, const char *value)
{
	char buf[CONF_LINE_MAX + 1];
	char *item, *next, *addr;
	char **senders;
	struct conf_tenant *t = p->tenant;

	if (strlen(value) >= sizeof(buf)) {
		conf_error(p, line, "halo_senders: value too long");
		return;
	}
	strcpy(buf, value);
	for (item = buf; item != NULL; item = next) {
		next = strchr(item, ',');
		if (next != NULL)
			*next++ = '\0';
		item = trim(item);
		if (*item == '\0') {
			conf_error(p, line, "halo_senders: empty address in list");
			continue;
		}
		addr = email_dup(p, line, "halo_senders", item);
		if (addr == NULL)
			continue;
		senders = grow_ptrs(t->halo_senders, t->n_halo_senders);
		if (senders == NULL) {
			conf_error(p, line, "out of memory");
			free(addr);
			continue;
		}
		t->halo_senders = senders;
		t->halo_senders[t->n_halo_senders++] = addr;
	}
}

/* "join_clients = ID[, ID...]" (repeatable): Halo client ids whose
 * contacts may join any ticket of the tenant. */
static void add_join_clients(struct parser *p, int line, const char *value)
{
	char buf[CONF_LINE_MAX + 1];
	char *item, *save = NULL;
	struct conf_tenant *t = p->tenant;
	unsigned long num;
	long *ids;

	if (strlen(value) >= sizeof(buf)) {
		conf_error(p, line, "join_clients: value too long");
		return;
	}
	strcpy(buf, value);
	for (item = strtok_r(buf, ", \t", &save); item != NULL;
	    item = strtok_r(NULL, ", \t", &save)) {
		if (!parse_ulong_range(item, 1, 2147483647UL, &num)) {
			conf_error(p, line, "join_clients: invalid client id '%s' "
			    "(expected an integer > 0)", item);
			continue;
		}
		ids = realloc(t->join_clients, (t->n_join_clients + 1) *
		    sizeof(*ids));
		if (ids == NULL) {
			conf_error(p, line, "out of memory");
			return;
		}
		t->join_clients = ids;
		t->join_clients[t->n_join_clients++] = (long)num;
	}
}

/* Parse "ADDR[/PREFIX]" (IPv4 or IPv6) into OUT. */
int conf_net_parse(const char *text, struct conf_net *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash;
	size_t len, i;
	unsigned long prefix;
	unsigned max;
	char *end;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return -1;
	slash = strchr(text, '/');
	len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		if (!is_digit(slash[1]) || strlen(slash + 1) > 3)
			return -1;
		prefix = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || prefix > max)
			return -1;
		out->prefix = (unsigned)prefix;
	}
	/* host bits set ("10.0.0.1/8") is most likely a typo: refuse it */
	for (i = 0; i < max / 8; i++) {
		unsigned keep = out->prefix >= (i + 1) * 8 ? 8 :
		    out->prefix <= i * 8 ? 0 : out->prefix - (unsigned)i * 8;
		uint8_t mask = (uint8_t)(keep == 0 ? 0 : 0xff << (8 - keep));

		if ((out->addr[i] & (uint8_t)~mask) != 0)
			return -2;
	}
	return 0;
}

/* Is IP (text) inside NET? */
static bool net_contains(const struct conf_net *net, int family,
    const uint8_t *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;
	uint8_t mask;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

/* Does IP (an address as text) fall in one of NETS? */
bool conf_net_match(const struct conf_net *nets, size_t n, const char *ip)
{
	uint8_t addr[16];
	int family;
	size_t i;

	if (ip == NULL)
		return false;
	if (inet_pton(AF_INET, ip, addr) == 1) {
		family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, addr) == 1) {
		family = AF_INET6;
		/* an IPv4 client of a dual-stack socket: match it as IPv4 */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(void *)addr)) {
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (i = 0; i < n; i++)
		if (net_contains(&nets[i], family, addr))
			return true;
	return false;
}

/* May a client at IP reach the admin pages? */
bool conf_admin_allowed(const struct conf *conf, const char *ip)
{
	if (conf->n_admin_networks == 0)
		return true;
	return conf_net_match(conf->admin_networks, conf->n_admin_networks, ip);
}

/* "KEY = CIDR[, CIDR...]" (repeatable): add each network to *NETS. */
static void parse_networks(struct parser *p, int line, const char *key,
    const char *value, struct conf_net **nets, size_t *n_nets)
{
	char buf[CONF_LINE_MAX + 1], *item, *save = NULL;
	struct conf_net net, *grown;
	int rc;

	if (strlen(value) > CONF_LINE_MAX)
		return;
	strcpy(buf, value);
	for (item = strtok_r(buf, ", \t", &save); item != NULL;
	    item = strtok_r(NULL, ", \t", &save)) {
		rc = conf_net_parse(item, &net);
		if (rc == -2) {
			conf_error(p, line, "%s: '%s' has host bits set"
			    " (write the network address, like 192.0.2.0/24)", key,
			    item);
			continue;
		}
		if (rc != 0) {
			conf_error(p, line, "%s: invalid network '%s'"
			    " (expected ADDRESS or ADDRESS/PREFIX, IPv4 or IPv6)",
			    key, item);
			continue;
		}
		if (*n_nets >= CONF_NETS_MAX) {
			conf_error(p, line, "%s: more than %d networks", key,
			    CONF_NETS_MAX);
			return;
		}
		grown = realloc(*nets, (*n_nets + 1) * sizeof(*grown));
		if (grown == NULL) {
			conf_error(p, line, "out of memory");
			return;
		}
		*nets = grown;
		(*nets)[(*n_nets)++] = net;
	}
}

/* "authserv_ids = NAME[, NAME...]" (repeatable): the Authentication-Results
 * authserv-ids whose verdicts count. */
static void parse_authserv_ids(struct parser *p, int line, const char *value)
{
	struct conf *c = p->conf;
	char buf[CONF_LINE_MAX + 1], *item, *save = NULL, *copy, **grown;

	if (strlen(value) > CONF_LINE_MAX)
		return;
	strcpy(buf, value);
	for (item = strtok_r(buf, ", \t", &save); item != NULL;
	    item = strtok_r(NULL, ", \t", &save)) {
		if (strlen(item) > 255 || !token_ok(item) ||
		    strpbrk(item, "();=\"\\") != NULL) {
			conf_error(p, line, "authserv_ids: invalid authserv-id '%s'"
			    " (a host name, as the verifier writes it)", item);
			continue;
		}
		if (c->n_authserv_ids >= CONF_NETS_MAX) {
			conf_error(p, line, "authserv_ids: more than %d names",
			    CONF_NETS_MAX);
			return;
		}
		copy = dup_str(p, line, item);
		grown = copy ? grow_ptrs(c->authserv_ids, c->n_authserv_ids) : NULL;
		if (grown == NULL) {
			free(copy);
			conf_error(p, line, "out of memory");
			return;
		}
		lower_str(copy);
		c->authserv_ids = grown;
		c->authserv_ids[c->n_authserv_ids++] = copy;
	}
}

/* "agent_login = LOGIN AGENT" (repeatable): SMTP AUTH login LOGIN sends as
 * agent AGENT. */
static void parse_agent_login(struct parser *p, int line, const char *value)
{
	struct conf_tenant *t = p->tenant;
	char buf[CONF_LINE_MAX + 1], *login, *agent, *save = NULL;
	struct conf_login *l, **grown;

	if (strlen(value) > CONF_LINE_MAX)
		return;
	strcpy(buf, value);
	login = strtok_r(buf, " \t", &save);
	agent = login ? strtok_r(NULL, " \t", &save) : NULL;
	if (login == NULL || agent == NULL || strtok_r(NULL, " \t", &save) !=
	    NULL || strlen(login) > CONF_ADDR_MAX || !token_ok(login)) {
		conf_error(p, line, "agent_login: expected 'LOGIN AGENT-EMAIL'"
		    " (the SMTP AUTH login, then the agent it sends as)");
		return;
	}
	l = calloc(1, sizeof(*l));
	grown = l ? grow_ptrs(t->logins, t->n_logins) : NULL;
	if (grown == NULL) {
		free(l);
		conf_error(p, line, "out of memory");
		return;
	}
	t->logins = grown;
	l->login = dup_str(p, line, login);
	l->agent = email_dup(p, line, "agent_login", agent);
	if (l->login == NULL || l->agent == NULL) {
		free(l->login);
		free(l->agent);
		free(l);
		return;
	}
	t->logins[t->n_logins++] = l;
}

/* May SMTP AUTH login LOGIN send as AGENT in tenant T? */
bool conf_login_may_send_as(const struct conf_tenant *t, const char *login,
    const char *agent)
{
	size_t i;

	if (login == NULL || agent == NULL || *login == '\0')
		return false;
	if (strcasecmp(login, agent) == 0)
		return true;
	for (i = 0; i < t->n_logins; i++)
		if (strcasecmp(t->logins[i]->login, login) == 0 &&
		    strcasecmp(t->logins[i]->agent, agent) == 0)
			return true;
	return false;
}

/* Apply a global key to the configuration. */
static void apply_global(struct parser *p, int line, enum key_id key,
    const char *value)
{
	struct conf *c = p->conf;
	const char *name = key_defs[key].name;
	const char *why;
	const char *s;
	unsigned long num;

	switch (key) {
	case KEY_SOCKET:
		why = socket_error(value);
		if (why != NULL)
			conf_error(p, line, "socket: invalid '%s': %s", value, why);
		else
			set_str(p, line, &c->socket, value);
		break;
	case KEY_STATE_DIR:
		if (value[0] != '/' || !text_ok(value) ||
		    strlen(value) >= PATH_MAX)
			conf_error(p, line, "state_dir: '%s' is not an absolute "
			    "path", value);
		else
			set_str(p, line, &c->state_dir, value);
		break;
	case KEY_STORE:
		/* PostgreSQL (a URI or a libpq conninfo) or a SQLite file */
		if (!text_ok(value) || strlen(value) >= PATH_MAX ||
		    (!store_target_is_pg(value) && value[0] != '/'))
			conf_error(p, line, "store: '%s' is neither a"
			    " postgresql:// URI, a libpq conninfo nor an"
			    " absolute path", value);
		else
			set_str(p, line, &c->store, value);
		break;
	case KEY_WEB_LISTEN:
		if (strcasecmp(value, "off") == 0) {
			p->web_off = true;
			break;
		}
		why = listen_error(value);
		if (why != NULL)
			conf_error(p, line, "web_listen: invalid '%s': %s", value,
			    why);
		else
			set_str(p, line, &c->web_listen, value);
		break;
	case KEY_PUBLIC_URL:
		set_url(p, line, name, &c->public_url, value);
		break;
	case KEY_WEB_ROOT:
		/* the Outlook pane's files (web/ of the source tree) */
		if (value[0] != '/' || !text_ok(value) ||
		    strlen(value) >= PATH_MAX)
			conf_error(p, line, "web_root: '%s' is not an absolute"
			    " path", value);
		else
			set_str(p, line, &c->web_root, value);
		break;
	case KEY_TLS_CERT:
	case KEY_TLS_KEY:
		/* read by the web server at start (as the daemon's user) */
		if (value[0] != '/' || !text_ok(value) ||
		    strlen(value) >= PATH_MAX) {
			conf_error(p, line, "%s: '%s' is not an absolute path",
			    name, value);
			p->tls_bad = true;
		} else
			set_str(p, line, key == KEY_TLS_CERT ? &c->tls_cert :
			    &c->tls_key, value);
		p->tls_line = line;
		break;
	case KEY_USER:
		for (s = value; *s != '\0'; s++)
			if (!((*s >= 'a' && *s <= 'z') || *s == '_' ||
			    (s > value && (is_digit(*s) || *s == '-'))))
				break;
		if (*s != '\0' || strlen(value) > CONF_USER_MAX)
			conf_error(p, line, "user: invalid user name '%s' "
			    "(expected [a-z_][a-z0-9_-]*, at most %d characters)",
			    value, CONF_USER_MAX);
		else
			set_str(p, line, &c->user, value);
		break;
	case KEY_ON_SPOOL_ERROR:
		if (strcasecmp(value, "tempfail") == 0)
			c->on_spool_error = CONF_SPOOL_TEMPFAIL;
		else if (strcasecmp(value, "accept") == 0)
			c->on_spool_error = CONF_SPOOL_ACCEPT;
		else
			conf_error(p, line, "on_spool_error: invalid '%s' "
			    "(expected tempfail or accept)", value);
		break;
	case KEY_MAX_MESSAGE_SIZE:
		if (conf_parse_size(value, &c->max_message_size) != 0)
			conf_error(p, line, "max_message_size: invalid size '%s' "
			    "(expected digits with optional K, M or G; 0 = "
			    "unlimited)", value);
		break;
	case KEY_WORKERS:
		if (!parse_ulong_range(value, 0, 64, &num))
			conf_error(p, line, "workers: invalid '%s' (expected an "
			    "integer from 0 (intake only) to 64)", value);
		else
			c->workers = (unsigned)num;
		break;
	case KEY_RETRY_BASE:
		if (!parse_ulong_range(value, 1, 3600, &num))
			conf_error(p, line, "retry_base: invalid '%s' (expected "
			    "seconds from 1 to 3600)", value);
		else
			c->retry_base = (unsigned)num;
		break;
	case KEY_JOB_LEASE:
		if (!parse_ulong_range(value, 5, 3600, &num))
			conf_error(p, line, "job_lease: invalid '%s' (expected "
			    "seconds from 5 to 3600)", value);
		else
			c->job_lease = (unsigned)num;
		break;
	case KEY_JOB_RETENTION:
		if (!parse_ulong_range(value, 0, 36500, &num))
			conf_error(p, line, "job_retention: invalid '%s' (expected"
			    " days from 0 (keep for ever) to 36500)", value);
		else
			c->job_retention = (unsigned)num;
		break;
	case KEY_ADMIN_NETWORKS:
		parse_networks(p, line, name, value, &c->admin_networks,
		    &c->n_admin_networks);
		break;
	case KEY_SUBMISSION_NETWORKS:
		parse_networks(p, line, name, value, &c->submission_networks,
		    &c->n_submission_networks);
		break;
	case KEY_AUTHSERV_IDS:
		parse_authserv_ids(p, line, value);
		break;
	case KEY_WEB_MAX_CONNECTIONS:
		if (!parse_ulong_range(value, 8, 4096, &num))
			conf_error(p, line, "web_max_connections: invalid '%s'"
			    " (expected an integer from 8 to 4096)", value);
		else
			c->web_max_connections = (unsigned)num;
		break;
	case KEY_WEB_CONNECTIONS_PER_IP:
		if (!parse_ulong_range(value, 1, 1024, &num))
			conf_error(p, line, "web_connections_per_ip: invalid '%s'"
			    " (expected an integer from 1 to 1024)", value);
		else
			c->web_connections_per_ip = (unsigned)num;
		break;
	case KEY_WEB_REQUEST_TIMEOUT:
		if (!parse_ulong_range(value, 1, 300, &num))
			conf_error(p, line, "web_request_timeout: invalid '%s'"
			    " (expected seconds from 1 to 300)", value);
		else
			c->web_request_timeout = (unsigned)num;
		break;
	case KEY_HALO_CA_FILE:
		if (value[0] != '/')
			conf_error(p, line, "halo_ca_file: '%s' is not an absolute "
			    "path", value);
		else
			set_str(p, line, &c->halo_ca_file, value);
		break;
	case KEY_INSECURE_HTTP:
		if (!parse_bool(value, &c->insecure_http))
			conf_error(p, line, "insecure_http: invalid boolean '%s' "
			    "(expected yes or no)", value);
		break;
	case KEY_ADD_THREAD_INDEX:
		if (!parse_bool(value, &c->add_thread_index))
			conf_error(p, line, "add_thread_index: invalid boolean "
			    "'%s' (expected yes or no)", value);
		break;
	case KEY_LOG_LEVEL:
		if (strcasecmp(value, "debug") == 0)
			c->log_level = LOG_DEBUG;
		else if (strcasecmp(value, "info") == 0)
			c->log_level = LOG_INFO;
		else if (strcasecmp(value, "notice") == 0)
			c->log_level = LOG_NOTICE;
		else if (strcasecmp(value, "warning") == 0)
			c->log_level = LOG_WARNING;
		else if (strcasecmp(value, "err") == 0)
			c->log_level = LOG_ERR;
		else
			conf_error(p, line, "log_level: invalid '%s' (expected "
			    "debug, info, notice, warning or err)", value);
		break;
	case KEY_LOG:
		if (strcmp(value, "auto") == 0)
			c->log = CONF_LOG_AUTO;
		else if (strcmp(value, "syslog") == 0)
			c->log = CONF_LOG_SYSLOG;
		else if (strcmp(value, "stderr") == 0)
			c->log = CONF_LOG_STDERR;
		else if (strcmp(value, "journal") == 0)
			c->log = CONF_LOG_JOURNAL;
		else
			conf_error(p, line, "log: invalid '%s' (expected auto,"
			    " syslog, stderr or journal)", value);
		break;
	default:
		break;
	}
}

/* Apply a tenant key to the current tenant. */
static void apply_tenant(struct parser *p, int line, enum key_id key,
    const char *value)
{
	struct conf_tenant *t = p->tenant;
	const char *name = key_defs[key].name;
	unsigned long num;
	int other;

	switch (key) {
	case KEY_HALO_URL:
		set_url(p, line, name, &t->halo_url, value);
		break;
	case KEY_AUTH_URL:
		set_url(p, line, name, &t->auth_url, value);
		break;
	case KEY_HALO_TENANT:
	case KEY_CLIENT_ID:
		if (!token_ok(value))
			conf_error(p, line, "%s: '%s' contains whitespace or a "
			    "control character", name, value);
		else
			set_str(p, line, key == KEY_CLIENT_ID ? &t->client_id :
			    &t->halo_tenant, value);
		break;
	case KEY_CLIENT_SECRET:
	case KEY_CLIENT_SECRET_FILE:
		other = p->key_line[key == KEY_CLIENT_SECRET ?
		    KEY_CLIENT_SECRET_FILE : KEY_CLIENT_SECRET];
		if (other != 0)
			conf_error(p, line, "give only one of client_secret and "
			    "client_secret_file (the other is at line %d)", other);
		else if (key == KEY_CLIENT_SECRET_FILE)
			read_secret_file(p, line, &t->client_secret, value);
		else if (!text_ok(value))
			conf_error(p, line, "client_secret: contains a control "
			    "character");
		else
			set_str(p, line, &t->client_secret, value);
		break;
	case KEY_TICKET_TYPE_ID:
		if (!parse_ulong_range(value, 1, LONG_MAX, &num))
			conf_error(p, line, "ticket_type_id: invalid '%s' "
			    "(expected an integer > 0)", value);
		else
			t->ticket_type_id = (long)num;
		break;
	case KEY_APPEND_OUTCOME:
	case KEY_CREATE_OUTCOME:
		if (!text_ok(value))
			conf_error(p, line, "%s: contains a control character",
			    name);
		else
			set_str(p, line, key == KEY_APPEND_OUTCOME ?
			    &t->append_outcome : &t->create_outcome, value);
		break;
	case KEY_INTERNAL_NOTE:
		if (!parse_bool(value, &t->internal_note))
			conf_error(p, line, "internal_note: invalid boolean '%s' "
			    "(expected yes or no)", value);
		break;
	case KEY_ATTACHMENTS:
		if (!parse_bool(value, &t->attachments))
			conf_error(p, line, "attachments: invalid boolean '%s' "
			    "(expected yes or no)", value);
		break;
	case KEY_SUBJECT_TAG: {
		const char *first = strstr(value, "{n}");

		if (first == NULL || strstr(first + 3, "{n}") != NULL ||
		    first == value || !text_ok(value))
			conf_error(p, line, "subject_tag: invalid '%s' (must "
			    "contain exactly one {n} with text before it)", value);
		else
			set_str(p, line, &t->subject_tag, value);
		break;
	}
	case KEY_DEFAULT_AGENT:
		t->default_agent = email_dup(p, line, name, value);
		break;
	case KEY_HALO_SENDERS:
		add_halo_senders(p, line, value);
		break;
	case KEY_AGENT_LOGIN:
		parse_agent_login(p, line, value);
		break;
	case KEY_JOIN_CLIENTS:
		add_join_clients(p, line, value);
		break;
	case KEY_JOIN_DOMAIN_MEMBERS:
		if (!parse_bool(value, &t->join_domain_members))
			conf_error(p, line, "join_domain_members: invalid boolean"
			    " '%s' (expected yes or no)", value);
		break;
	case KEY_LOOP_MAX_CREATES:
		if (!parse_ulong_range(value, 1, 100000, &num))
			conf_error(p, line, "loop_max_creates: invalid '%s' "
			    "(expected an integer from 1 to 100000)", value);
		else
			t->loop_max_creates = (unsigned)num;
		break;
	case KEY_LOOP_WINDOW:
		if (!parse_ulong_range(value, 60, 604800, &num))
			conf_error(p, line, "loop_window: invalid '%s' (expected "
			    "seconds from 60 to 604800)", value);
		else
			t->loop_window = (unsigned)num;
		break;
	case KEY_ROUTE:
		parse_route(p, line, value);
		break;
	case KEY_OVERRIDE:
		parse_override(p, line, value);
		break;
	case KEY_LOG_OUTBOUND:
		if (!parse_bool(value, &t->log_outbound))
			conf_error(p, line, "log_outbound: invalid boolean '%s' "
			    "(expected yes or no)", value);
		break;
	case KEY_CREATE_CONTACTS:
	case KEY_DONT_DO_RULES:
		if (!parse_bool(value, key == KEY_CREATE_CONTACTS ?
		    &t->create_contacts : &t->dont_do_rules))
			conf_error(p, line, "%s: invalid boolean '%s' (expected yes"
			    " or no)", name, value);
		break;
	case KEY_HALO_SCOPE:
		if (!text_ok(value) || strlen(value) > 200)
			conf_error(p, line, "halo_scope: invalid '%s' (space-"
			    "separated OAuth scopes)", value);
		else
			set_str(p, line, &t->halo_scope, value);
		break;
	case KEY_SELF_ENROLL:
		if (!parse_bool(value, &t->self_enroll))
			conf_error(p, line, "self_enroll: invalid boolean '%s' "
			    "(expected yes or no)", value);
		break;
	case KEY_OUTBOUND_OUTCOME:
		if (!text_ok(value))
			conf_error(p, line, "%s: contains a control character",
			    name);
		else
			set_str(p, line, &t->outbound_outcome, value);
		break;
	case KEY_CLOSED_TICKETS:
		if (strcmp(value, "reopen") == 0)
			t->closed_tickets = CONF_CLOSED_REOPEN;
		else if (strcmp(value, "new") == 0)
			t->closed_tickets = CONF_CLOSED_NEW;
		else if (strcmp(value, "append") == 0)
			t->closed_tickets = CONF_CLOSED_APPEND;
		else
			conf_error(p, line, "closed_tickets: invalid '%s' (expected"
			    " reopen, new or append)", value);
		break;
	case KEY_REOPEN_STATUS_ID:
		if (!parse_ulong_range(value, 0, 2147483647UL, &num))
			conf_error(p, line, "reopen_status_id: invalid '%s' (expected"
			    " a Halo status id, or 0 for Halo's first open status)",
			    value);
		else
			t->reopen_status_id = (long)num;
		break;
	case KEY_TICKET_STATUS_TTL:
		if (!parse_ulong_range(value, 0, 86400, &num))
			conf_error(p, line, "ticket_status_ttl: invalid '%s' (expected"
			    " seconds from 0 to 86400)", value);
		else
			t->ticket_status_ttl = (unsigned)num;
		break;
	case KEY_FALLBACK_CLIENT_ID:
		if (!parse_ulong_range(value, 0, 2147483647UL, &num))
			conf_error(p, line, "fallback_client_id: invalid '%s' "
			    "(expected a Halo client id, or 0 for none)", value);
		else
			t->fallback_client_id = (long)num;
		break;
	case KEY_CF_CONVERSATION_ID:
	case KEY_CF_MESSAGE_ID:
		if (!text_ok(value) || strchr(value, ' ') != NULL)
			conf_error(p, line, "%s: invalid custom field name '%s'",
			    name, value);
		else if (strcasecmp(value, "none") == 0)
			set_str(p, line, key == KEY_CF_CONVERSATION_ID ?
			    &t->cf_conversation_id : &t->cf_message_id, "");
		else
			set_str(p, line, key == KEY_CF_CONVERSATION_ID ?
			    &t->cf_conversation_id : &t->cf_message_id, value);
		break;
	case KEY_TRIM_QUOTES:
		if (!parse_bool(value, &t->trim_quotes))
			conf_error(p, line, "trim_quotes: invalid boolean '%s' "
			    "(expected yes or no)", value);
		break;
	case KEY_RATE_LIMIT:
	case KEY_RATE_WINDOW:
	case KEY_SENDER_CACHE_TTL:
		if (!parse_ulong_range(value, key == KEY_SENDER_CACHE_TTL ? 0 : 1,
		    key == KEY_RATE_LIMIT ? 100000 : 604800, &num))
			conf_error(p, line, "%s: invalid '%s' (expected %s)", name,
			    value, key == KEY_RATE_LIMIT ? "requests, 1 to 100000" :
			    "seconds, up to 604800");
		else if (key == KEY_RATE_LIMIT)
			t->rate_limit = (unsigned)num;
		else if (key == KEY_RATE_WINDOW)
			t->rate_window = (unsigned)num;
		else
			t->sender_cache_ttl = (unsigned)num;
		break;
	case KEY_MAX_ATTACHMENT_SIZE:
	case KEY_MAX_ATTACHMENTS_TOTAL:
		if (conf_parse_size(value, key == KEY_MAX_ATTACHMENT_SIZE ?
		    &t->max_attachment_size : &t->max_attachments_total) != 0)
			conf_error(p, line, "%s: invalid size '%s' (expected "
			    "digits with optional K, M or G)", name, value);
		break;
	case KEY_HALO_REQUEST_MAX:
		/* below 1M no mail with an attachment could go at all */
		if (conf_parse_size(value, &t->halo_request_max) != 0 ||
		    t->halo_request_max < (1ULL << 20) ||
		    t->halo_request_max > (1ULL << 30))
			conf_error(p, line, "%s: invalid size '%s' (expected 1M"
			    " to 1G)", name, value);
		break;
	default:
		break;
	}
}

/* Close the current tenant: required keys, defaults, route agents. */
static void finish_tenant(struct parser *p)
{
	struct conf_tenant *t = p->tenant;
	static const enum key_id required[] = {
		KEY_HALO_URL, KEY_CLIENT_ID, KEY_TICKET_TYPE_ID
	};
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (p->key_line[required[i]] == 0)
			conf_error(p, t->line, "tenant '%s': missing required key "
			    "'%s'", t->name, key_defs[required[i]].name);
	if (t->append_outcome == NULL)
		set_str(p, t->line, &t->append_outcome, DEFAULT_OUTCOME);
	if (t->create_outcome == NULL)
		set_str(p, t->line, &t->create_outcome, DEFAULT_OUTCOME);
	if (t->subject_tag == NULL)
		set_str(p, t->line, &t->subject_tag, DEFAULT_SUBJECT_TAG);
	if (t->outbound_outcome == NULL)
		set_str(p, t->line, &t->outbound_outcome, "Email Sent");
	if (t->cf_conversation_id == NULL)
		set_str(p, t->line, &t->cf_conversation_id, "CFOutlookConversationId");
	if (t->cf_message_id == NULL)
		set_str(p, t->line, &t->cf_message_id, "CFOutlookInternetMessageId");
	if (t->halo_scope == NULL)
		set_str(p, t->line, &t->halo_scope, CONF_DEFAULT_SCOPE);
	for (i = 0; i < p->n_pending; i++) {
		struct conf_route *r = p->pending[i];

		if (t->default_agent != NULL)
			set_str(p, r->line, &r->agent, t->default_agent);
		else if (p->key_line[KEY_DEFAULT_AGENT] == 0)
			conf_error(p, r->line, "route '%s' needs agent=EMAIL or "
			    "agent=recipient (tenant '%s' has no default_agent)",
			    r->pattern, t->name);
	}
	free(p->pending);
	p->pending = NULL;
	p->n_pending = 0;
	p->tenant = NULL;
}

/* True when NAME is a valid tenant name: [A-Za-z0-9_.-]{1,64}. */
static bool tenant_name_ok(const char *name)
{
	const char *s;

	if (*name == '\0' || strlen(name) > CONF_TENANT_NAME_MAX)
		return false;
	for (s = name; *s != '\0'; s++)
		if (!(is_digit(*s) || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == '.' ||
		    *s == '-'))
			return false;
	return true;
}

/* Start a new tenant section named NAME at LINE. */
static void start_tenant(struct parser *p, int line, const char *name)
{
	struct conf *c = p->conf;
	struct conf_tenant *t, **tenants;
	size_t i;

	if (!tenant_name_ok(name))
		conf_error(p, line, "invalid tenant name '%s' (allowed: letters, "
		    "digits, '_', '.', '-'; 1 to %d characters)", name,
		    CONF_TENANT_NAME_MAX);
	for (i = 0; i < c->n_tenants; i++)
		if (strcmp(c->tenants[i]->name, name) == 0) {
			conf_error(p, line, "duplicate tenant '%s' (first defined "
			    "at line %d)", name, c->tenants[i]->line);
			break;
		}
	t = calloc(1, sizeof(*t));
	tenants = grow_ptrs(c->tenants, c->n_tenants);
	if (t == NULL || tenants == NULL || (t->name = strdup(name)) == NULL) {
		conf_error(p, line, "out of memory");
		if (tenants != NULL)
			c->tenants = tenants;
		tenant_free(t);
		p->state = STATE_SKIP;
		return;
	}
	c->tenants = tenants;
	c->tenants[c->n_tenants++] = t;
	t->line = line;
	t->attachments = true;
	t->loop_max_creates = DEFAULT_LOOP_CREATES;
	t->loop_window = DEFAULT_LOOP_WINDOW;
	t->trim_quotes = true;
	t->log_outbound = true;
	t->rate_limit = 250;
	t->rate_window = 300;
	t->max_attachment_size = 10ULL << 20;
	t->max_attachments_total = 25ULL << 20;
	t->halo_request_max = 10ULL << 20;
	t->sender_cache_ttl = 3600;
	t->closed_tickets = CONF_CLOSED_REOPEN;
	t->ticket_status_ttl = 300;
	t->create_contacts = true;
	p->tenant = t;
	p->state = STATE_TENANT;
	memset(p->key_line, 0, sizeof(p->key_line));
}

/* Handle a "[...]" line (already trimmed, comment removed). */
static void parse_header(struct parser *p, int line, char *text)
{
	char *close = strchr(text, ']');
	char *inner, *name;

	finish_tenant(p);
	p->state = STATE_SKIP;
	if (close == NULL) {
		conf_error(p, line, "unterminated section header (missing ']')");
		return;
	}
	if (close[1] != '\0') {
		conf_error(p, line, "unexpected text after section header: '%s'",
		    close + 1);
		return;
	}
	*close = '\0';
	inner = trim(text + 1);
	if (strncmp(inner, "tenant", 6) != 0 ||
	    (inner[6] != '\0' && !is_space((unsigned char)inner[6]))) {
		conf_error(p, line, "unknown section '[%s]' (expected "
		    "[tenant NAME])", inner);
		return;
	}
	name = trim(inner + 6);
	if (*name == '\0') {
		conf_error(p, line, "missing tenant name (expected [tenant NAME])");
		return;
	}
	start_tenant(p, line, name);
}

/* Find a key by name; KEY_COUNT when unknown. */
static enum key_id find_key(const char *name)
{
	int k;

	for (k = 0; k < KEY_COUNT; k++)
		if (strcmp(key_defs[k].name, name) == 0)
			return (enum key_id)k;
	return KEY_COUNT;
}

/* Handle one "key = value" line. */
static void parse_assignment(struct parser *p, int line, char *text,
    char *eq)
{
	char *key, *value;
	enum key_id k;

	*eq = '\0';
	key = trim(text);
	value = trim(eq + 1);
	if (*key == '\0') {
		conf_error(p, line, "missing key before '='");
		return;
	}
	if (p->state == STATE_SKIP)
		return;
	k = find_key(key);
	if (k == KEY_COUNT) {
		if (p->state == STATE_GLOBAL)
			conf_error(p, line, "unknown key '%s'", key);
		else
			conf_error(p, line, "unknown key '%s' in tenant '%s'", key,
			    p->tenant->name);
		return;
	}
	if (p->state == STATE_GLOBAL && key_defs[k].scope != SCOPE_GLOBAL) {
		conf_error(p, line, "unknown global key '%s' (tenant keys belong "
		    "in a [tenant NAME] section)", key);
		return;
	}
	if (p->state == STATE_TENANT && key_defs[k].scope != SCOPE_TENANT) {
		conf_error(p, line, "unknown tenant key '%s' in tenant '%s' "
		    "(global keys must come before the first [tenant] section)",
		    key, p->tenant->name);
		return;
	}
	if (!key_defs[k].repeatable && p->key_line[k] != 0) {
		conf_error(p, line, "duplicate key '%s' (first set at line %d)",
		    key, p->key_line[k]);
		return;
	}
	if (*value == '\0') {
		conf_error(p, line, "empty value for '%s'", key);
		p->key_line[k] = line;
		return;
	}
	if (p->state == STATE_GLOBAL)
		apply_global(p, line, k, value);
	else
		apply_tenant(p, line, k, value);
	p->key_line[k] = line;
}

/* Handle one line of the file (NUL-terminated, newline removed). */
static void parse_line(struct parser *p, int line, char *text)
{
	char *s, *eq;

	/* '#' starts a comment at the start of the line or after whitespace */
	for (s = text; *s != '\0'; s++)
		if (*s == '#' && (s == text || is_space((unsigned char)s[-1]))) {
			*s = '\0';
			break;
		}
	text = trim(text);
	if (*text == '\0')
		return;
	if (*text == '[') {
		parse_header(p, line, text);
		return;
	}
	eq = strchr(text, '=');
	if (eq == NULL) {
		conf_error(p, line, "expected 'key = value' or '[tenant NAME]'");
		return;
	}
	parse_assignment(p, line, text, eq);
}

enum line_status {
	LINE_OK,
	LINE_EOF,
	LINE_TOO_LONG,
	LINE_NUL
};

/* Read one line of at most CONF_LINE_MAX bytes into BUF (CONF_LINE_MAX + 1). */
static enum line_status read_line(FILE *fp, char *buf)
{
	size_t len = 0;
	bool any = false, too_long = false, nul = false;
	int c;

	while ((c = getc(fp)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (c == '\0')
			nul = true;
		if (len < CONF_LINE_MAX)
			buf[len++] = (char)c;
		else
			too_long = true;
	}
	buf[len] = '\0';
	if (!any)
		return LINE_EOF;
	if (too_long)
		return LINE_TOO_LONG;
	return nul ? LINE_NUL : LINE_OK;
}

/* Fill in the global defaults that were not set in the file. */
static void finish_global(struct parser *p)
{
	struct conf *c = p->conf;

	if (c->socket == NULL)
		set_str(p, 0, &c->socket, DEFAULT_SOCKET);
	if (c->state_dir == NULL)
		set_str(p, 0, &c->state_dir, DEFAULT_STATE_DIR);
	if (c->web_listen == NULL && !p->web_off)
		set_str(p, 0, &c->web_listen, DEFAULT_WEB_LISTEN);
	if (c->web_root == NULL)
		set_str(p, 0, &c->web_root, HALO_WEB_ROOT);
	if ((c->tls_cert == NULL) != (c->tls_key == NULL) && p->tls_line != 0 &&
	    !p->tls_bad)
		conf_error(p, p->tls_line, "tls_cert and tls_key must be set "
		    "together (or neither)");
}

/* Load and validate PATH; see conf.h. */
struct conf *conf_load(const char *path, FILE *errs, int *nerrors)
{
	struct parser p;
	char buf[CONF_LINE_MAX + 1];
	enum line_status status;
	struct stat st;
	FILE *fp;
	int line = 0;

	memset(&p, 0, sizeof(p));
	p.path = path != NULL ? path : "(null)";
	p.errs = errs != NULL ? errs : stderr;
	p.state = STATE_GLOBAL;
	p.conf = calloc(1, sizeof(*p.conf));
	if (p.conf == NULL) {
		conf_error(&p, 0, "out of memory");
		goto out;
	}
	p.conf->on_spool_error = CONF_SPOOL_TEMPFAIL;
	p.conf->max_message_size = DEFAULT_MAX_SIZE;
	p.conf->add_thread_index = false;
	p.conf->log_level = LOG_INFO;
	p.conf->workers = 8;
	p.conf->retry_base = 15;
	p.conf->job_retention = 30;
	p.conf->job_lease = 300;
	p.conf->web_max_connections = CONF_WEB_MAX_CONNECTIONS;
	p.conf->web_connections_per_ip = CONF_WEB_CONNECTIONS_PER_IP;
	p.conf->web_request_timeout = CONF_WEB_REQUEST_TIMEOUT;
	if (path == NULL) {
		conf_error(&p, 0, "cannot open: %s", strerror(EINVAL));
		goto out;
	}
	set_str(&p, 0, &p.conf->path, path);
	fp = fopen(path, "re");
	if (fp == NULL) {
		conf_error(&p, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		conf_error(&p, 0, "cannot open: %s", strerror(EISDIR));
		fclose(fp);
		goto out;
	}
	while ((status = read_line(fp, buf)) != LINE_EOF) {
		line++;
		if (status == LINE_TOO_LONG)
			conf_error(&p, line, "line too long (more than %d bytes)",
			    CONF_LINE_MAX);
		else if (status == LINE_NUL)
			conf_error(&p, line, "NUL byte in line");
		else
			parse_line(&p, line, buf);
	}
	if (ferror(fp))
		conf_error(&p, 0, "read error: %s", strerror(errno));
	fclose(fp);
	finish_tenant(&p);
	finish_global(&p);
out:
	explicit_bzero(buf, sizeof(buf));
	free(p.pending);
	if (nerrors != NULL)
		*nerrors = p.nerrors;
	if (p.nerrors != 0)
		return conf_free(p.conf);
	return p.conf;
}

/* The rule that routes ADDR, or NULL; exact address beats "*@domain". */
const struct conf_route *conf_route_lookup(const struct conf *conf,
    const char *addr)
{
	char buf[CONF_ADDR_MAX + 1];
	const struct conf_route *wild = NULL;
	const char *start, *end, *domain;
	size_t len, i, j;
	char *at;

	if (conf == NULL || addr == NULL)
		return NULL;
	len = strnlen(addr, CONF_LOOKUP_SCAN_MAX);
	if (len == CONF_LOOKUP_SCAN_MAX)
		return NULL;
	start = addr;
	end = addr + len;
	while (start < end && is_space((unsigned char)*start))
		start++;
	while (end > start && is_space((unsigned char)end[-1]))
		end--;
	if (start < end && *start == '<')
		start++;
	if (end > start && end[-1] == '>')
		end--;
	while (start < end && is_space((unsigned char)*start))
		start++;
	while (end > start && is_space((unsigned char)end[-1]))
		end--;
	len = (size_t)(end - start);
	if (len == 0 || len > CONF_ADDR_MAX)
		return NULL;
	for (i = 0; i < len; i++)
		buf[i] = to_lower(start[i]);
	buf[len] = '\0';
	at = strrchr(buf, '@');
	if (at == NULL || at == buf || at[1] == '\0')
		return NULL;
	domain = at + 1;
	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];

		for (j = 0; j < t->n_routes; j++) {
			const struct conf_route *r = t->routes[j];

			if (r->pattern[0] == '*' && r->pattern[1] == '@') {
				if (wild == NULL && strcmp(r->pattern + 2, domain) == 0)
					wild = r;
			} else if (strcmp(r->pattern, buf) == 0) {
				return r;
			}
		}
	}
	return wild;
}

/* The override for a sender address (exact, then "*@domain"). */
const struct conf_override *
conf_override_lookup(const struct conf_tenant *t, const char *addr)
{
	const char *at;
	size_t i, len;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL)
		return NULL;
	len = strlen(addr);
	for (i = 0; i < t->n_overrides; i++)
		if (strlen(t->overrides[i]->pattern) == len &&
		    strcasecmp(t->overrides[i]->pattern, addr) == 0)
			return t->overrides[i];
	for (i = 0; i < t->n_overrides; i++) {
		const char *pat = t->overrides[i]->pattern;
		if (pat[0] == '*' && pat[1] == '@' &&
		    strcasecmp(pat + 2, at + 1) == 0)
			return t->overrides[i];
	}
	return NULL;
}

const struct conf_tenant *
conf_tenant_find(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < c->n_tenants; i++)
		if (strcmp(c->tenants[i]->name, name) == 0)
			return c->tenants[i];
	return NULL;
}

/* Whether optional strings A and B differ. */
static bool
conf_str_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Report that KEY (of tenant TENANT when not NULL) changed but keeps its
 * old value. */
static void
conf_report_restart(FILE *report, const char *key, const char *tenant)
{
	if (tenant != NULL)
		fprintf(report, "tenant '%s': %s changed: needs a restart; the"
		    " old value stays until then\n", tenant, key);
	else
		fprintf(report, "%s changed: needs a restart; the old value"
		    " stays until then\n", key);
}

/* Give *NEXT the value CUR when they differ; 1 when they did, 0 when not,
 * -1 when out of memory. */
static int
conf_keep_str(char **next, const char *cur, FILE *report, const char *key)
{
	char *copy = NULL;

	if (!conf_str_differ(*next, cur))
		return 0;
	if (cur != NULL && (copy = strdup(cur)) == NULL)
		return -1;
	free(*next);
	*next = copy;
	conf_report_restart(report, key, NULL);
	return 1;
}

/* Whether NEXT and CUR configure the same tenants, by name, in order. */
static bool
conf_same_tenants(const struct conf *next, const struct conf *cur)
{
	size_t i;

	if (next->n_tenants != cur->n_tenants)
		return false;
	for (i = 0; i < next->n_tenants; i++)
		if (strcmp(next->tenants[i]->name, cur->tenants[i]->name) != 0)
			return false;
	return true;
}

/* Keep the keys a reload cannot change (see conf.h). */
int
conf_reload_keep(struct conf *next, const struct conf *cur, FILE *report)
{
	/* the scalars: each macro keeps one and counts it */
#define KEEP_NUM(field, key) do { \
	if (next->field != cur->field) { \
		next->field = cur->field; \
		conf_report_restart(report, key, NULL); \
		n++; \
	} } while (0)
#define KEEP_STR(field, key) do { \
	int r_ = conf_keep_str(&next->field, cur->field, report, key); \
	if (r_ < 0) \
		return -1; \
	n += r_; } while (0)
	struct conf_net *nets;
	size_t i;
	int n = 0;

	if (!conf_same_tenants(next, cur)) {
		fprintf(report, "the [tenant] sections changed (added, removed,"
		    " renamed or reordered): that needs a restart\n");
		return -1;
	}
	KEEP_STR(socket, "socket");
	KEEP_STR(state_dir, "state_dir");
	KEEP_STR(store, "store");
	KEEP_STR(user, "user");
	KEEP_STR(web_listen, "web_listen");
	KEEP_STR(public_url, "public_url");
	KEEP_STR(web_root, "web_root");
	KEEP_STR(tls_cert, "tls_cert");
	KEEP_STR(tls_key, "tls_key");
	KEEP_STR(halo_ca_file, "halo_ca_file");
	KEEP_NUM(log, "log");
	KEEP_NUM(workers, "workers");
	KEEP_NUM(job_lease, "job_lease");
	KEEP_NUM(job_retention, "job_retention");
	KEEP_NUM(insecure_http, "insecure_http");
	KEEP_NUM(web_max_connections, "web_max_connections");
	KEEP_NUM(web_connections_per_ip, "web_connections_per_ip");
	KEEP_NUM(web_request_timeout, "web_request_timeout");
	if (next->n_admin_networks != cur->n_admin_networks ||
	    (cur->n_admin_networks > 0 && memcmp(next->admin_networks,
	    cur->admin_networks, cur->n_admin_networks *
	    sizeof(*cur->admin_networks)) != 0)) {
		nets = NULL;
		if (cur->n_admin_networks > 0 && (nets = malloc(
		    cur->n_admin_networks * sizeof(*nets))) == NULL)
			return -1;
		if (nets != NULL)
			memcpy(nets, cur->admin_networks,
			    cur->n_admin_networks * sizeof(*nets));
		free(next->admin_networks);
		next->admin_networks = nets;
		next->n_admin_networks = cur->n_admin_networks;
		conf_report_restart(report, "admin_networks", NULL);
		n++;
	}
	for (i = 0; i < next->n_tenants; i++) {
		struct conf_tenant *t = next->tenants[i];
		const struct conf_tenant *old = cur->tenants[i];

		/* the worker sized each tenant's request budget at start */
		if (t->rate_limit != old->rate_limit) {
			t->rate_limit = old->rate_limit;
			conf_report_restart(report, "rate_limit", t->name);
			n++;
		}
		if (t->rate_window != old->rate_window) {
			t->rate_window = old->rate_window;
			conf_report_restart(report, "rate_window", t->name);
			n++;
		}
	}
	return n;
#undef KEEP_NUM
#undef KEEP_STR
}
