/*
 * web.h - the daemon's web server (libmicrohttpd): agent enrollment pages,
 * /healthz and /metrics.
 *
 * Enrollment (design.md, "Per-agent tokens and enrollment"): the operator
 * makes a one-time code with "halo-milterctl enroll AGENT"; the agent opens
 * PUBLIC_URL/enroll?code=XXXX-XXXX, confirms, signs in to Halo
 * (authorization code + PKCE S256, one-time state bound to a cookie), and
 * the callback exchanges the code server-side, checks Agent/me against the
 * enrolled agent and hands the refresh token to oauth_import().
 *
 * The store keeps only keyed hashes of the code and of the state (the key
 * is derived from the sealing key, so the CLI computes the same), and the
 * PKCE verifier sealed, only until the callback takes it. Codes, states,
 * verifiers and tokens are never logged.
 *
 * The pure helpers below are exposed for the CLI and the unit tests.
 */
#ifndef HALO_WEB_H
#define HALO_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "confgen.h"
#include "crypto.h"
#include "util.h"
#include "enroll.h"
#include "oauth.h"
#include "statedir.h"
#include "store.h"

#define WEB_STATE_TTL      600          /* a started sign-in's life */
#define WEB_POST_MAX       4096         /* POST body bytes before sign-in */
#define WEB_AUTH_CODE_MAX  2048         /* longest Halo code we accept */
#define WEB_FAIL_PER_IP    10           /* wrong codes per IP per window
                                           (no limit in all: see web.c) */
#define WEB_FAIL_WINDOW    600          /* seconds */
/* the OAuth scope asked at sign-in is the tenant's halo_scope */

struct web;

/*
 * Start the web server on CONF->web_listen (HTTPS when tls_cert/tls_key are
 * set). CONF, STORE and OAUTH must outlive it. SD names the state files
 * (copied); KEYS are the process's keys, loaded once (copied). NULL and a
 * message in ERR on failure.
 */
struct web *web_start(const struct conf *conf, struct store *store,
    struct oauth *oauth, const struct statedir *sd,
    const struct statedir_keys *keys, char *err, size_t errsz);

/*
 * Live reload: from now on each request takes a reference to GENS's current
 * generation once it has arrived and reads tenants there until answered.
 * What the server was built on at start (web_listen, TLS, public_url,
 * web_root, the limits) stays web_start()'s CONF. GENS must outlive W;
 * NULL W is accepted.
 */
void web_set_confgen(struct web *w, struct confgen *gens);

/* Stop the server (waits for running requests) and free it; NULL. */
struct web *web_stop(struct web *w);

/*
 * The value of cookie NAME in a Cookie header ("a=1; b=2"); false when it is
 * absent, empty, or longer than OUTSZ - 1 (never truncated). Names compare
 * exactly; surrounding double quotes are kept out.
 */
bool web_cookie_get(const char *header, const char *name, char *out,
    size_t outsz);

/*
 * Field NAME of an application/x-www-form-urlencoded body of LEN bytes,
 * percent- and '+'-decoded into OUT; false when absent, repeated, badly
 * encoded, holding a NUL or a control character, or too long for OUT.
 */
bool web_form_get(const char *body, size_t len, const char *name, char *out,
    size_t outsz);

/* What a callback's state says. */
enum web_state {
	WEB_STATE_OK = 0,
	WEB_STATE_NO_COOKIE,        /* the browser did not start this sign-in */
	WEB_STATE_MISMATCH,         /* cookie and state differ */
	WEB_STATE_UNKNOWN,          /* no enrollment has this state */
	WEB_STATE_USED,             /* the state was used already */
	WEB_STATE_EXPIRED
};

/*
 * Check a callback: COOKIE (NULL when absent) against STATE (constant
 * time), then the enrollment E found by the state's hash (NULL when none)
 * at NOW.
 */
enum web_state web_state_check(const char *cookie, const char *state,
    const struct store_enroll *e, time_t now);

/* Short name of a result, for pages and tests. */
const char *web_state_name(enum web_state s);

/*
 * Whether a POST may be read: CONTENT_LENGTH is the header (NULL when
 * absent: chunked, counted while it arrives). 0 = yes, 413 = too large,
 * 400 = malformed.
 */
int web_body_check(const char *content_length, size_t limit);

/*
 * Wrong-code limits: at most PER_IP failures per client (IPv6 by /64) and,
 * when GLOBAL is not 0, GLOBAL in all, per WINDOW seconds. A fixed table:
 * the oldest client is forgotten first. Thread-safe.
 */
struct web_limiter;
struct web_limiter *web_limiter_new(unsigned per_ip, unsigned global,
    unsigned window);
struct web_limiter *web_limiter_free(struct web_limiter *l);
bool web_limiter_blocked(struct web_limiter *l, const char *client,
    time_t now);
void web_limiter_fail(struct web_limiter *l, const char *client, time_t now);

/* The limiter's key for an IP text: IPv4 as is, IPv6 as its /64. */
void web_client_key(const char *ip, char *out, size_t outsz);

/* A growing page buffer; any failure sticks and web_buf_take gives NULL. */
struct web_buf {
	struct util_buf u;      /* u.oom: something did not fit */
};
void web_buf_add(struct web_buf *b, const char *s);
void web_buf_printf(struct web_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* S with & < > " ' as entities, control characters dropped. */
void web_buf_escape(struct web_buf *b, const char *s);
/* The text (malloc'd; *LEN its length) or NULL; B is reset. */
char *web_buf_take(struct web_buf *b, size_t *len);
void web_buf_clear(struct web_buf *b);

/* "scheme://host[:port]" of URL (malloc'd), or NULL when it has none. */
char *web_origin(const char *url);

#endif
