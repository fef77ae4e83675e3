/*
 * web_int.h - what the parts of the web server share: the server's state,
 * a request's state and the response helpers. Internal to milter/web*.c.
 *
 * web.c owns the server (start, stop, routing, enrollment, /healthz,
 * /metrics); other pages live in their own web_*.c and are reached from
 * web_handler() through a route function of theirs that answers "not mine"
 * by returning false.
 */
#ifndef HALO_WEB_INT_H
#define HALO_WEB_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "web.h"

#define WEB_CT_HTML "text/html; charset=utf-8"
#define WEB_CT_TEXT "text/plain; charset=utf-8"
#define WEB_CT_JSON "application/json; charset=utf-8"

/* Enrollment outcomes counted for /metrics. */
enum web_result {
	WEB_R_STARTED = 0,      /* a sign-in went to Halo */
	WEB_R_OK,               /* a token was stored */
	WEB_R_DENIED,           /* the agent declined at Halo */
	WEB_R_MISMATCH,         /* someone else signed in */
	WEB_R_FAILED,           /* Halo or local error */
	WEB_R_BAD_CODE,         /* unknown, malformed, expired or used code */
	WEB_R_BAD_STATE,        /* callback without a matching cookie/state */
	WEB_R_RATE_LIMITED,
	WEB_R_COUNT
};

struct web {
	const struct conf *conf;    /* at start: what the server is built on
	                               (listen, TLS, public_url, web_root) */
	struct confgen *gens;       /* NULL, or each request's generation */
	struct store *store;
	struct oauth *oauth;
	struct MHD_Daemon *mhd;
	struct statedir sd;             /* the state files (statedir.h) */
	uint8_t seal_key[CRYPTO_KEY_LEN];
	char hash_key[65];
	char *csp;
	char *redirect_uri;         /* public_url + /enroll/callback; NULL: off */
	const char *cookie_name;
	bool https_public;          /* public_url is https: Secure cookie */
	bool tls;                   /* we serve HTTPS ourselves */
	char *tls_cert, *tls_key;   /* PEM text */
	struct web_limiter *limiter;
	struct web_pane *pane;      /* the Outlook pane's part (web_pane.c) */
	pthread_mutex_t lock;       /* guards counts */
	uint64_t counts[WEB_R_COUNT];
	/* the per-client connection cap and the request deadline (web.c):
	 * open connections, and the thread that cuts off those whose request
	 * takes too long to arrive */
	pthread_mutex_t conn_lock;  /* guards conns, reaper_stop, counters */
	pthread_cond_t reaper_wake;
	struct web_conn *conns;
	unsigned deadline;          /* seconds: web_request_timeout */
	unsigned per_ip;            /* web_connections_per_ip (IPv6: /64) */
	bool reaper_running, reaper_stop;
	pthread_t reaper;
	uint64_t cut_off;           /* connections cut by the deadline */
	uint64_t refused_per_ip;    /* refused: their client held per_ip */
};

/* Per-request state (MHD's con_cls): a POST body of at most WEB_POST_MAX
 * bytes, NUL-terminated when the route function sees it. */
struct web_req {
	bool is_post;
	bool too_large;
	size_t len;
	char body[WEB_POST_MAX + 1];
};

/* What a route function is given. */
struct web_call {
	struct web *w;
	struct MHD_Connection *c;
	const char *url;
	bool get;                   /* GET or HEAD */
	bool post;
	bool options;               /* a CORS preflight */
	const char *ip;             /* the client's address as text */
	const char *client;         /* its rate-limit key (IPv6 by /64) */
	struct web_req *rq;
	const struct conf *conf;    /* the request's configuration generation
	                               (tenants, routes); held until answered */
};

/* Whether a client at IP may read /metrics: in admin_networks when that is
 * set, else a loopback address. */
bool web_metrics_allowed(const struct conf *conf, const char *ip);

/* Count an enrollment outcome. */
void web_count(struct web *w, enum web_result r);

/*
 * A response with our standard headers (CSP = CSP, or the server's own when
 * NULL; nosniff, no-referrer, X-Frame-Options DENY unless CSP is given,
 * Cache-Control no-store or an hour's caching, HSTS when we serve TLS).
 * BODY (malloc'd) is taken over; NULL gives an empty body. The caller may
 * add headers, then queues it with web_queue(). NULL on failure.
 */
struct MHD_Response *web_response(struct web *w, const char *ctype,
    char *body, size_t len, const char *csp, bool cacheable);

/* Queue R with STATUS and destroy our reference. */
enum MHD_Result web_queue(struct MHD_Connection *c, unsigned status,
    struct MHD_Response *r);

/* web_response() + LOCATION and COOKIE (either may be NULL) + queue. */
enum MHD_Result web_respond(struct web *w, struct MHD_Connection *c,
    unsigned status, const char *ctype, char *body, size_t len,
    const char *location, const char *cookie, bool cacheable);

/* A whole page: TITLE and BODY (HTML, escaped by the caller; taken over).
 * ROOT leads back to the site root from the page's URL ("" or "../"). */
enum MHD_Result web_page(struct web *w, struct MHD_Connection *c,
    unsigned status, const char *root, const char *title,
    struct web_buf *body, const char *cookie);

/* A page with one message paragraph of class CLASS; OFFER_RESTART adds a
 * link to the code form. */
enum MHD_Result web_message(struct web *w, struct MHD_Connection *c,
    unsigned status, const char *root, const char *title, const char *class,
    const char *message, bool offer_restart, const char *cookie);

/* Whether a POST's Origin (or Referer) is our public_url's origin; true
 * when the browser sent neither. */
bool web_origin_ok(struct web *w, struct MHD_Connection *c);

/*
 * Admin sessions (web_admin.c). The table is the process's own: it holds
 * only keyed hashes of the session ids (the key is random per process, so
 * a restart signs everyone out). A session ends after WEB_ADMIN_IDLE
 * seconds unused or WEB_ADMIN_MAX_AGE after sign-in, whichever is first.
 * Its CSRF token is a keyed hash of the session's own hash: bound to it,
 * nothing more to store. Exposed for the unit tests.
 */
#define WEB_ADMIN_IDLE      1800
#define WEB_ADMIN_MAX_AGE   28800
#define WEB_ADMIN_SESSIONS  32          /* at most; the least recently used
                                           goes first when full */
#define WEB_ADMIN_SID_LEN   43          /* 32 random bytes, base64url */

/* A new session at NOW for the admin password file whose identity is
 * STAMP (inode, size, mtime): its id (SID_LEN + NUL) in SID. false on
 * failure. */
bool web_admin_session_new(time_t now, uint64_t stamp,
    char sid[WEB_ADMIN_SID_LEN + 1]);

/* Whether SID is a live session at NOW (and mark it used) made under the
 * same password file STAMP (a new password ends every session); its CSRF
 * token (64 hex + NUL) in CSRF when not NULL. */
bool web_admin_session_check(const char *sid, time_t now, uint64_t stamp,
    char csrf[65]);

/* End session SID (sign-out); nothing when it is not live. */
void web_admin_session_end(const char *sid);

/* A posted CSRF token GIVEN against the session's EXPECTED, in constant
 * time; false when either is missing or empty. */
bool web_admin_csrf_ok(const char *expected, const char *given);

/* Routes of the other parts: true when the URL is theirs (*RC is set). */
bool web_admin_route(const struct web_call *call, enum MHD_Result *rc);
bool web_pane_route(const struct web_call *call, enum MHD_Result *rc);

/* The pane part's state: status key, rate limiter, CSP, manifests. NULL
 * with a message in ERR on failure. */
struct web_pane;
struct web_pane *web_pane_new(const struct conf *conf,
    const uint8_t status_key[CRYPTO_KEY_LEN], char *err,
    size_t errsz);
struct web_pane *web_pane_free(struct web_pane *p);
/* The job an X-Halo-Token value names, when it is that job's token for
 * TENANT and MID (status.h); 0 otherwise. */
int64_t web_pane_token_job(struct web *w, const char *tenant, const char *mid,
    const char *token);

/*
 * The interactive pane's agent side (web_agent.c): sign-in from the pane,
 * pane sessions and the API the pane acts through. Its route also takes
 * /enroll/callback when the state is one of its own sign-ins.
 */
struct web_agent;
struct web_agent *web_agent_new(const struct conf *conf);
struct web_agent *web_agent_free(struct web_agent *a);
bool web_agent_route(const struct web_call *call, enum MHD_Result *rc);

/* The agent part of the pane's part (web_pane.c owns it). */
struct web_agent *web_pane_agent(struct web_pane *p);

#endif
