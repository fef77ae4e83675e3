/*
 * conf.h - halo-milter configuration: parse, validate, look up routing.
 *
 * File format: "key = value" lines, '#' starts a comment (whole line or after
 * whitespace), blank lines ignored. A global part, then one section per Halo
 * tenant introduced by "[tenant NAME]". Keys, values and the meaning of each
 * are documented in conf/halo-milter.conf and README.md.
 *
 * The parsed configuration is a plain, read-only tree owned by the caller of
 * conf_load() and released with conf_free(). It is not modified once in use
 * (a reload prepares a new tree with conf_reload_keep() and publishes it as
 * a generation, confgen.h), so any number of threads may read it.
 */
#ifndef HALO_CONF_H
#define HALO_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_mode {
	CONF_MODE_OFF = 0,      /* matched, but do nothing with the mail */
	CONF_MODE_THREAD_ONLY,  /* append to an existing thread only */
	CONF_MODE_INTAKE        /* create or append */
};

/* "log": where lines go; auto = syslog when detached, with -f stderr, or
 * journal when stderr is systemd's journal stream */
enum conf_log {
	CONF_LOG_AUTO = 0,
	CONF_LOG_SYSLOG,
	CONF_LOG_STDERR,
	CONF_LOG_JOURNAL
};

enum conf_spool_error {
	CONF_SPOOL_TEMPFAIL = 0,
	CONF_SPOOL_ACCEPT
};

struct conf_tenant;

/* The OAuth scope asked for when halo_scope is not set. */
#define CONF_DEFAULT_SCOPE "all offline_access"

/* One routing rule: "route = PATTERN MODE [agent=EMAIL|agent=recipient]
 * [type=ID] [team=NAME] [priority=ID] [assign=ID]"; the options set what
 * a ticket created for this mailbox gets. */
struct conf_route {
	char *pattern;               /* lower-case "local@domain" or "*@domain" */
	enum conf_mode mode;
	char *agent;                 /* lower-case agent email; NULL = recipient */
	long ticket_type_id;         /* type=: 0 = the tenant's ticket_type_id */
	char *team;                  /* team=: Halo team name; NULL = not sent */
	long priority_id;            /* priority=: 0 = not sent (Halo's rules) */
	long assign_agent_id;        /* assign=: Halo agent id; 0 = not sent */
	int line;                    /* line number in the file */
	struct conf_tenant *tenant;  /* back pointer, not owned */
};

/* An operator override: "override = PATTERN client=ID [site=ID]" or
 * "override = PATTERN contact=ID site=ID client=ID". Wins over lookups. */
struct conf_override {
	char *pattern;               /* lower-case "local@domain" or "*@domain" */
	long contact_id;             /* 0 when the override names a client */
	long site_id;                /* 0 when not given */
	long client_id;
	int line;
};

/* What mail for a closed ticket does (closed_tickets). */
enum conf_closed {
	CONF_CLOSED_REOPEN = 0,      /* append, and set the ticket open again */
	CONF_CLOSED_NEW,             /* a new ticket that names the closed one */
	CONF_CLOSED_APPEND           /* append and leave the ticket closed */
};


/* "agent_login = LOGIN AGENT": an SMTP AUTH login that sends as AGENT. */
struct conf_login {
	char *login;                 /* as {auth_authen} gives it; compared
	                                case-insensitively */
	char *agent;                 /* lower-case agent email */
};

struct conf_tenant {
	char *name;
	int line;                    /* line of the "[tenant NAME]" header */
	char *halo_url;              /* required; resource server base URL */
	char *auth_url;              /* optional; NULL = halo_url + "/auth" */
	char *halo_tenant;           /* optional; hosted Halo tenant name */
	char *client_id;             /* required */
	char *client_secret;         /* optional; inline or read from file */
	long ticket_type_id;         /* required, > 0 */
	char *append_outcome;        /* default "Email Received" */
	char *create_outcome;        /* default "Email Received" */
	bool internal_note;          /* default false */
	bool attachments;            /* default true */
	char *subject_tag;           /* default "[ID:{n}]"; exactly one "{n}" */
	char *default_agent;         /* optional; agent for rules with no agent= */
	char **halo_senders;         /* addresses Halo sends notifications from */
	size_t n_halo_senders;
	unsigned loop_max_creates;   /* per sender per window; default 20 */
	unsigned loop_window;        /* seconds; default 3600 */
	long fallback_client_id;     /* unknown senders' client; 0 = skip them */
	char *cf_conversation_id;    /* custom field names; "" = not sent */
	char *cf_message_id;
	bool trim_quotes;            /* drop quoted history on appends; yes */
	unsigned rate_limit;         /* Halo requests per rate_window; 250 */
	unsigned rate_window;        /* seconds; 300 */
	uint64_t max_attachment_size;    /* per file; 10 MiB */
	uint64_t max_attachments_total;  /* per message; 25 MiB */
	uint64_t halo_request_max;  /* largest request body Halo takes; 10 MiB */
	unsigned sender_cache_ttl;   /* seconds; 3600 */
	bool log_outbound;           /* log enrolled agents' outgoing mail; yes */
	char *outbound_outcome;      /* default "Email Sent" */
	bool create_contacts;        /* a new person at a known client becomes
	                              * a Halo user; yes */
	bool dont_do_rules;          /* created tickets skip Halo's ticket
	                              * rules; no */
	char *halo_scope;            /* OAuth scope asked at sign-in; default
	                              * CONF_DEFAULT_SCOPE */
	bool self_enroll;            /* an agent without a token may enroll
	                              * through the pane's sign-in; no */
	enum conf_closed closed_tickets;  /* mail for a closed ticket; reopen */
	long reopen_status_id;       /* status a reopened ticket gets; 0 = the
	                              * first open status Halo lists */
	unsigned ticket_status_ttl;  /* seconds a ticket's open/closed state is
	                              * trusted; 300 */
	struct conf_override **overrides;
	size_t n_overrides;
	struct conf_login **logins;  /* agent_login; an agent's own address
	                              * is its login without an entry */
	size_t n_logins;
	/* who may join a ticket beyond its participants (issue 11): contacts
	 * of these clients may join any ticket (join_clients), senders
	 * matched to the ticket's client by domain may (join_domain_members) */
	long *join_clients;
	size_t n_join_clients;
	bool join_domain_members;    /* default false */
	struct conf_route **routes;
	size_t n_routes;
};

/* Web server defaults (web_max_connections, web_connections_per_ip,
 * web_request_timeout). */
#define CONF_WEB_MAX_CONNECTIONS    256
#define CONF_WEB_CONNECTIONS_PER_IP 8
#define CONF_WEB_REQUEST_TIMEOUT    10

/* A network of admin_networks: ADDR/PREFIX, host bits clear. */
struct conf_net {
	int family;                  /* AF_INET or AF_INET6 */
	uint8_t addr[16];            /* network address, 4 or 16 bytes used */
	unsigned prefix;             /* 0..32 or 0..128 */
};

struct conf {
	char *path;
	char *socket;                /* default "unix:/run/halo-milter/milter.sock" */
	char *state_dir;             /* default "/var/lib/halo-milter" */
	char *store;                 /* NULL: STATE_DIR/halo-milter.db;
	                                postgresql://... or a conninfo:
	                                PostgreSQL (several nodes) */
	char *web_listen;            /* default "127.0.0.1:8025"; NULL when
	                                "web_listen = off" (no web server) */
	char *public_url;            /* optional */
	char *web_root;              /* the pane's files; default
	                                PREFIX/share/halo-milter/web */
	char *tls_cert, *tls_key;    /* optional PEM files, both or neither:
	                                the web server then speaks HTTPS */
	char *user;                  /* optional; drop privileges to it */
	enum conf_spool_error on_spool_error;  /* default tempfail */
	uint64_t max_message_size;   /* bytes; default 50 MiB; 0 = unlimited */
	bool add_thread_index;       /* default false */
	int log_level;               /* syslog priority; default LOG_INFO */
	enum conf_log log;           /* default auto */
	unsigned workers;            /* worker threads; default 2; 0 = intake
	                                only (another node's workers log) */
	unsigned job_retention;      /* days a finished job (done, skipped,
	                                failed) is kept; default 30; 0 = for
	                                ever */
	unsigned retry_base;         /* first retry delay, seconds; default 15 */
	unsigned job_lease;          /* seconds a claimed job is a worker's
	                                before another (node) may take it
	                                over; default 300 */
	bool insecure_http;          /* tests only: allow http:// to loopback */
	char *halo_ca_file;          /* NULL or CA bundle verifying Halo (https) */
	struct conf_net *admin_networks;   /* who may open /admin (and
	                                      /metrics); none = any (/metrics:
	                                      loopback only) */
	size_t n_admin_networks;
	/* where agents' outgoing mail may come from without SMTP AUTH
	 * (submission_networks; default none) */
	struct conf_net *submission_networks;
	size_t n_submission_networks;
	/* Authentication-Results authserv-ids whose verdicts count (lower
	 * case; default none) */
	char **authserv_ids;
	size_t n_authserv_ids;
	unsigned web_max_connections;      /* open in all; default 256 */
	unsigned web_connections_per_ip;   /* open per client (IPv4 address,
	                                      IPv6 /64); default 8 */
	unsigned web_request_timeout;      /* seconds a request may take to
	                                      arrive, and idle time; default 10 */
	struct conf_tenant **tenants;
	size_t n_tenants;
};

/*
 * Load and validate FILE. Every problem is printed to ERRS as
 * "FILE:LINE: message" (LINE 0 when no line applies), and counted in
 * *NERRORS. Returns the configuration, or NULL when there was any error (the
 * caller must not start on a partly valid file).
 */
struct conf *conf_load(const char *path, FILE *errs, int *nerrors);

/* Release a configuration; returns NULL. NULL is accepted. */
struct conf *conf_free(struct conf *conf);

/*
 * The rule that routes ADDR (an envelope address, with or without <>, any
 * case), or NULL when none does. An exact address rule beats a "*@domain"
 * rule. The returned rule may have mode CONF_MODE_OFF.
 */
const struct conf_route *conf_route_lookup(const struct conf *conf,
    const char *addr);

/* The override for sender ADDR in tenant T (exact beats "*@domain"), or
 * NULL. */
const struct conf_override *conf_override_lookup(const struct conf_tenant *t,
    const char *addr);

/* Parse "ADDRESS[/PREFIX]" (IPv4 or IPv6; no prefix = one host) into OUT:
 * 0 ok, -1 malformed, -2 host bits set beyond the prefix. */
int conf_net_parse(const char *text, struct conf_net *out);

/* Whether IP (an address as text; IPv4-mapped IPv6 counts as IPv4) is in
 * one of the N networks NETS. */
bool conf_net_match(const struct conf_net *nets, size_t n, const char *ip);

/* Whether a client at IP may reach the admin pages (admin_networks; any
 * address when the list is empty). */
bool conf_admin_allowed(const struct conf *conf, const char *ip);

/* Whether SMTP AUTH login LOGIN may send as AGENT in tenant T: LOGIN is
 * AGENT itself, or an agent_login entry maps it to AGENT. */
bool conf_login_may_send_as(const struct conf_tenant *t, const char *login,
    const char *agent);

/*
 * For a reload: NEXT (just loaded) is to replace CUR (running). Keys the
 * running daemon read once at start (socket, state_dir, store, user,
 * web_listen, public_url, web_root, tls_cert, tls_key, halo_ca_file, log,
 * workers, job_lease, insecure_http, admin_networks, the web_* limits, and
 * each tenant's rate_limit and rate_window) take CUR's value in NEXT, and
 * each that differed is printed to REPORT as "KEY changed: needs a
 * restart; ...". Returns how many were kept, or -1 when NEXT cannot
 * replace CUR: its [tenant] sections differ from CUR's (by name and
 * order; reason printed) or memory ran out.
 */
int conf_reload_keep(struct conf *next, const struct conf *cur, FILE *report);

/* Parse a size with optional K/M/G suffix (binary units). 0 on success. */
int conf_parse_size(const char *text, uint64_t *out);

/* The tenant of C called NAME, or NULL (NAME may be NULL). */
const struct conf_tenant *conf_tenant_find(const struct conf *c,
    const char *name);

#endif
