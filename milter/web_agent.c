/*
 * web_agent.c - the interactive pane's agent side: sign-in from the pane
 * and the API the pane acts through, each call under the agent's own Halo
 * token, server-side (the browser never holds a Halo token).
 *
 * Sign-in (in an Office dialog):
 *   GET /agent/signin?tenant=T
 *       starts authorization code + PKCE with Halo, with the enrollment
 *       flow's machinery: a row in the enrollments table (keyed hashes
 *       only, the PKCE verifier sealed), a state bound to this browser by
 *       a cookie (login CSRF), the same redirect URI (/enroll/callback;
 *       our states start with "p." so web.c hands the callback to us).
 *   The callback exchanges the code, asks Halo who signed in (/Agent/me)
 *   and then: an agent who holds a token row in T gets a fresh refresh
 *   token stored (this is also how an agent re-enrolls); one who does not
 *   is enrolled only when T has self_enroll = yes. The page then hands a
 *   pane session to the pane (Office.context.ui.messageParent, from
 *   pane/signin.js: no inline script).
 *
 * Sessions: 32 random bytes (base64url), sent by the pane in
 * "Authorization: Bearer" (never a cookie: nothing a cross-site page can
 * make the browser send), stored only as a keyed hash, bound to the agent
 * and tenant, WEB_AGENT_SESSION_TTL seconds, renewable up to
 * WEB_AGENT_SESSION_MAX after sign-in, and dead as soon as the agent's
 * token row is gone ("halo-milterctl revoke").
 *
 * API (JSON; POST bodies are JSON of at most WEB_POST_MAX bytes):
 *   GET  /api/agent/session             who the session is
 *   POST /api/agent/renew               a new session id (the old one ends)
 *   POST /api/agent/signout
 *   GET  /api/agent/context?mid=&from=&conv=   the job, the sender's contact
 *        and client, the client's open tickets (thread match marked),
 *        ticket types, statuses, outcomes and the agent's defaults
 *   GET  /api/agent/users?search=       contact picker
 *   GET  /api/agent/clients?search=     client picker
 *   GET  /api/agent/tickets?client_id=  a client's open tickets
 *   POST /api/agent/defaults            {tickettype_id, outcome, internal}
 *   POST /api/agent/append   {ticket_id, mid, from, subject, text,
 *                             internal, timetaken, outcome}
 *   POST /api/agent/create   {tickettype_id, summary, client_id, user_id,
 *                             site_id, mid, from, text}
 *   POST /api/agent/assign   {ticket_id}          agent_id = the agent
 *   POST /api/agent/status   {ticket_id, status_id}
 * Writes must come from the pane's origin (Origin checked) with
 * Content-Type application/json (so a cross-site form cannot send one),
 * are rate-limited per agent, and each is logged with the agent, the
 * tenant, the Message-ID's job (when there is one) and what Halo answered.
 */
#include "web_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "halo.h"
#include "join.h"
#include "html.h"
#include "http.h"
#include "log.h"
#include "status.h"

#define WEB_AGENT_SESSION_TTL   3600        /* a session's life */
#define WEB_AGENT_SESSION_MAX   (12 * 3600) /* renewals end here */
#define WEB_AGENT_TOKEN_LEN     43          /* 32 bytes, base64url */
#define WEB_AGENT_PER_MIN       240         /* API calls per agent */
#define WEB_AGENT_WRITES_PER_MIN 30         /* writes per agent */
#define WEB_AGENT_SIGNINS       30          /* sign-in starts per client */
#define WEB_AGENT_SIGNIN_WINDOW 600
#define WEB_AGENT_SEARCH_MAX    64
#define WEB_AGENT_TEXT_MAX      3000        /* mail text the pane sends */
#define WEB_AGENT_LIST_MAX      50          /* tickets, users, clients */
#define WEB_AGENT_STATE_PREFIX  "p."
#define WEB_AGENT_UNNAMED       "(pane sign-in)"  /* until Halo says who */

#define WEB_AGENT_PAGE_CSP "default-src 'none';" \
	" script-src 'self' https://appsforoffice.microsoft.com;" \
	" style-src 'self'; img-src 'self'; connect-src 'self';" \
	" frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

struct web_agent {
	struct web_limiter *calls;      /* per agent */
	struct web_limiter *writes;     /* per agent */
	struct web_limiter *signins;    /* per client address */
	char *origin;                   /* public_url's, or NULL */
};

/* What one API call works with. */
struct agent_call {
	const struct web_call *call;
	struct store_pane_session *ps;
	const struct conf_tenant *t;
	struct halo_conf hc;
	char *token;                    /* the agent's Halo access token */
	char id_hash[65];
	char limit_key[48];
};

/* The agent part's state. */
struct web_agent *
web_agent_new(const struct conf *conf)
{
	struct web_agent *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->calls = web_limiter_new(WEB_AGENT_PER_MIN, 1000000, 60);
	a->writes = web_limiter_new(WEB_AGENT_WRITES_PER_MIN, 1000000, 60);
	a->signins = web_limiter_new(WEB_AGENT_SIGNINS, 1000,
	    WEB_AGENT_SIGNIN_WINDOW);
	if (conf->public_url != NULL)
		a->origin = web_origin(conf->public_url);
	if (a->calls == NULL || a->writes == NULL || a->signins == NULL ||
	    (conf->public_url != NULL && a->origin == NULL))
		return web_agent_free(a);
	return a;
}

/* Free it. */
struct web_agent *
web_agent_free(struct web_agent *a)
{
	if (a == NULL)
		return NULL;
	web_limiter_free(a->calls);
	web_limiter_free(a->writes);
	web_limiter_free(a->signins);
	free(a->origin);
	free(a);
	return NULL;
}

/* ---------------------------------------------------------------- helpers */

/* Halo call settings of tenant T: an agent waits at most 15 s. */
static void
agent_halo_conf(const struct conf_tenant *t, struct halo_conf *hc)
{
	halo_conf_tenant(hc, t);
	hc->timeout_ms = 15000;
}

/* Keyed hash of a session id. */
static int
agent_session_hash(const struct web *w, const char *sid, char out[65])
{
	char data[WEB_AGENT_TOKEN_LEN + 16];
	int n, rc;

	if (sid == NULL || strlen(sid) != WEB_AGENT_TOKEN_LEN)
		return -1;
	n = snprintf(data, sizeof(data), "pane-session:%s", sid);
	rc = crypto_hmac_hex((const uint8_t *)w->hash_key, strlen(w->hash_key),
	    data, (size_t)n, out);
	crypto_wipe(data, sizeof(data));
	return rc;
}

/* A GET argument of at most MAX bytes without NULs, or NULL. */
static const char *
agent_arg(const struct web_call *call, const char *name, size_t max)
{
	const char *value = NULL;
	size_t len = 0;

	if (MHD_lookup_connection_value_n(call->c, MHD_GET_ARGUMENT_KIND, name,
	    strlen(name), &value, &len) != MHD_YES || value == NULL ||
	    len > max || strlen(value) != len)
		return NULL;
	return value;
}

/* Whether S is printable text (no control characters). */
static bool
agent_text_ok(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return s != NULL;
}

/* CORS headers: the origin only when it is ours. */
static void
agent_cors(const struct web_call *call, struct MHD_Response *r)
{
	const char *origin = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, "Origin");
	const char *ours = web_pane_agent(call->w->pane)->origin;

	MHD_add_response_header(r, "Vary", "Origin");
	if (origin != NULL && ours != NULL && strcmp(origin, ours) == 0)
		MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
}

/* Answer with JSON (taken over); RETRY_AFTER may be NULL. */
static enum MHD_Result
agent_send(const struct web_call *call, unsigned status, cJSON *json,
    const char *retry_after)
{
	struct MHD_Response *r;
	char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;
	char *copy = text != NULL ? strdup(text) : NULL;

	cJSON_Delete(json);
	cJSON_free(text);
	if (copy == NULL)
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	r = web_response(call->w, WEB_CT_JSON, copy, copy != NULL ?
	    strlen(copy) : 0, NULL, false);
	if (r == NULL)
		return MHD_NO;
	agent_cors(call, r);
	if (retry_after != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
		    retry_after);
	return web_queue(call->c, status, r);
}

/* An error answer: {"error": CODE, "message": MESSAGE}. */
static enum MHD_Result
agent_error(const struct web_call *call, unsigned status, const char *code,
    const char *message, const char *retry_after)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "error", code);
	cJSON_AddStringToObject(j, "message", message);
	return agent_send(call, status, j, retry_after);
}

/* The error answer for a failed Halo call. */
static enum MHD_Result
agent_halo_error(const struct agent_call *ac, const char *what,
    const struct halo_err *err)
{
	char msg[400], retry[24];

	log_notice("pane: %s/%s: %s: Halo: %s (HTTP %ld)", ac->ps->tenant,
	    ac->ps->agent, what, err->message, err->status);
	if (err->status == 429) {
		snprintf(retry, sizeof(retry), "%ld", err->retry_after > 0 ?
		    err->retry_after : 60);
		return agent_error(ac->call, MHD_HTTP_TOO_MANY_REQUESTS,
		    "rate_limited", "Halo's rate limit was reached. Try again"
		    " in a minute.", retry);
	}
	if (err->status == 401 || err->status == 403) {
		snprintf(msg, sizeof(msg), "Halo refused this under your"
		    " account (%s): your Halo permissions do not allow it.",
		    err->message);
		return agent_error(ac->call, MHD_HTTP_FORBIDDEN, "forbidden", msg,
		    NULL);
	}
	if (err->status >= 400 && err->status < 500) {
		snprintf(msg, sizeof(msg), "Halo did not accept it: %s",
		    err->message);
		return agent_error(ac->call, MHD_HTTP_BAD_GATEWAY, "halo_refused",
		    msg, NULL);
	}
	return agent_error(ac->call, MHD_HTTP_BAD_GATEWAY, "halo_down",
	    "Halo did not answer. Try again shortly.", "30");
}

/* Free what an agent call holds. */
static void
agent_call_clear(struct agent_call *ac)
{
	if (ac->token != NULL)
		oauth_token_free(ac->token);
	ac->token = NULL;
	ac->ps = store_pane_session_free(ac->ps);
}

/*
 * Authenticate an API call: the Bearer session, live, of a tenant we
 * serve; rate limits per agent (WRITE: the write limit too). On failure
 * the answer is queued into *RC and false is returned.
 */
static bool
agent_auth(const struct web_call *call, struct agent_call *ac, bool write,
    enum MHD_Result *rc)
{
	struct web_agent *a = web_pane_agent(call->w->pane);
	const char *authz = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *origin = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, "Origin");
	const char *ct = MHD_lookup_connection_value(call->c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	enum store_status ss;
	time_t now = time(NULL);
	char data[600], key[65];
	int n;

	memset(ac, 0, sizeof(*ac));
	ac->call = call;
	if (write && (origin == NULL || a->origin == NULL ||
	    strcmp(origin, a->origin) != 0)) {
		*rc = agent_error(call, MHD_HTTP_FORBIDDEN, "origin",
		    "Writes are accepted from the pane only.", NULL);
		return false;
	}
	if (write && (ct == NULL || strncasecmp(ct, "application/json", 16) != 0)) {
		*rc = agent_error(call, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
		    "bad_request", "Expected JSON.", NULL);
		return false;
	}
	if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0 ||
	    agent_session_hash(call->w, authz + 7, ac->id_hash) != 0) {
		*rc = agent_error(call, MHD_HTTP_UNAUTHORIZED, "signin",
		    "Sign in to Halo from the pane.", NULL);
		return false;
	}
	ss = store_pane_session_get(call->w->store, ac->id_hash, now, &ac->ps);
	if (ss == STORE_ERROR) {
		*rc = agent_error(call, MHD_HTTP_SERVICE_UNAVAILABLE, "store",
		    "The gateway cannot read its database.", "5");
		return false;
	}
	if (ss != STORE_OK || (ac->t = conf_tenant_find(call->conf,
	    ac->ps->tenant)) == NULL) {
		agent_call_clear(ac);
		*rc = agent_error(call, MHD_HTTP_UNAUTHORIZED, "signin",
		    "Your pane session has ended (expired or revoked). Sign in"
		    " again.", NULL);
		return false;
	}
	/* the limiter's key: a keyed hash of tenant and agent, cut short */
	n = snprintf(data, sizeof(data), "pane-agent:%s\n%s", ac->ps->tenant,
	    ac->ps->agent);
	if (n < 0 || (size_t)n >= sizeof(data) ||
	    crypto_hmac_hex((const uint8_t *)call->w->hash_key,
	    strlen(call->w->hash_key), data, (size_t)n, key) != 0) {
		agent_call_clear(ac);
		*rc = agent_error(call, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
		    "Internal error.", NULL);
		return false;
	}
	snprintf(ac->limit_key, sizeof(ac->limit_key), "a:%.40s", key);
	if (web_limiter_blocked(a->calls, ac->limit_key, now) ||
	    (write && web_limiter_blocked(a->writes, ac->limit_key, now))) {
		log_notice("pane: %s/%s: over the rate limit", ac->ps->tenant,
		    ac->ps->agent);
		agent_call_clear(ac);
		*rc = agent_error(call, MHD_HTTP_TOO_MANY_REQUESTS,
		    "rate_limited", "Too many requests from your pane; wait a"
		    " minute.", "60");
		return false;
	}
	web_limiter_fail(a->calls, ac->limit_key, now);
	if (write)
		web_limiter_fail(a->writes, ac->limit_key, now);
	agent_halo_conf(ac->t, &ac->hc);
	return true;
}

/* The agent's access token; false with the answer queued into *RC. */
static bool
agent_token(struct agent_call *ac, bool force, enum MHD_Result *rc)
{
	struct halo_err err;
	enum oauth_status os;

	if (ac->token != NULL) {
		oauth_token_free(ac->token);
		ac->token = NULL;
	}
	memset(&err, 0, sizeof(err));
	os = oauth_access_token(ac->call->w->oauth, &ac->hc, ac->ps->tenant,
	    ac->ps->agent, force, &ac->token, &err);
	if (os == OAUTH_OK)
		return true;
	if (rc == NULL)
		return false;
	if (os == OAUTH_RETRY) {
		*rc = agent_error(ac->call, MHD_HTTP_BAD_GATEWAY, "halo_down",
		    "Halo's sign-in server did not answer. Try again shortly.",
		    "30");
		return false;
	}
	*rc = agent_error(ac->call, MHD_HTTP_UNAUTHORIZED, "reenroll",
	    "Halo no longer accepts your token: sign in again to renew it.",
	    NULL);
	return false;
}

/* One Halo call (GET when BODY is NULL) under the agent's token, with one
 * refresh after a 401. false with the answer queued into *RC (nothing
 * queued when RC is NULL: the caller answers). */
static bool
agent_halo(struct agent_call *ac, const char *what, const char *path,
    const cJSON *body, cJSON **json, enum MHD_Result *rc)
{
	struct halo_err err;
	int attempt, r = -1;

	*json = NULL;
	memset(&err, 0, sizeof(err));
	for (attempt = 0; attempt < 2; attempt++) {
		if ((ac->token == NULL || attempt > 0) &&
		    !agent_token(ac, attempt > 0, rc))
			return false;
		r = body == NULL ? halo_pane_get(&ac->hc, ac->token, what, path,
		    json, &err) : halo_pane_post(&ac->hc, ac->token, what, path,
		    body, json, &err);
		if (r == 0 || err.status != 401)
			break;
	}
	if (r == 0)
		return true;
	if (rc != NULL)
		*rc = agent_halo_error(ac, what, &err);
	else
		log_notice("pane: %s/%s: %s: Halo: %s (HTTP %ld)", ac->ps->tenant,
		    ac->ps->agent, what, err.message, err.status);
	return false;
}

/* The list under KEY of a Halo answer (or the answer when it is one). */
static const cJSON *
agent_list(const cJSON *root, const char *key)
{
	const cJSON *v;

	if (cJSON_IsArray(root))
		return root;
	v = cJSON_GetObjectItemCaseSensitive(root, key);
	return cJSON_IsArray(v) ? v : NULL;
}

/* Integer field KEY of O, or 0. */
static int64_t
agent_int(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	    v->valuedouble < 9007199254740992.0)
		return (int64_t)v->valuedouble;
	return 0;
}

/* String field KEY of O, or "". */
static const char *
agent_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring != NULL ? v->valuestring : "";
}

/* Copy string field KEY of FROM into TO (cut to 200 bytes). */
static void
agent_copy_str(cJSON *to, const cJSON *from, const char *key,
    const char *as)
{
	char buf[201];

	snprintf(buf, sizeof(buf), "%s", agent_str(from, key));
	cJSON_AddStringToObject(to, as != NULL ? as : key, buf);
}

/* The body of a POST as a JSON object; NULL with the answer queued. */
static cJSON *
agent_body(const struct web_call *call, enum MHD_Result *rc)
{
	cJSON *j = NULL;

	if (call->rq->len > 0)
		j = cJSON_ParseWithLength(call->rq->body, call->rq->len);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		*rc = agent_error(call, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "Expected a JSON object.", NULL);
		return NULL;
	}
	return j;
}

/* A positive integer field of a request body, or 0. */
static int64_t
agent_body_id(const cJSON *body, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);

	if (cJSON_IsNumber(v) && v->valuedouble >= 1 &&
	    v->valuedouble < 2147483648.0 && v->valuedouble ==
	    (double)(int64_t)v->valuedouble)
		return (int64_t)v->valuedouble;
	return 0;
}

/* A string field of a request body, at most MAX bytes of text; "" when
 * absent, NULL when malformed. */
static const char *
agent_body_str(const cJSON *body, const char *key, size_t max,
    bool multiline)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
	const char *s;

	if (v == NULL || cJSON_IsNull(v))
		return "";
	if (!cJSON_IsString(v) || v->valuestring == NULL ||
	    strlen(v->valuestring) > max)
		return NULL;
	for (s = v->valuestring; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && !(multiline &&
		    (*s == '\n' || *s == '\r' || *s == '\t'))) || *s == 0x7f)
			return NULL;
	return v->valuestring;
}

/* ---------------------------------------------------------------- sign-in */

/* The Set-Cookie value binding STATE (NULL: delete it). */
static void
agent_cookie(const struct web *w, const char *state, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s",
	    w->https_public ? "__Host-halo_pane" : "halo_pane",
	    state != NULL ? state : "", state != NULL ? WEB_STATE_TTL : 0,
	    w->https_public ? "; Secure" : "");
}

/* The page that hands RESULT (JSON: a session or an error) to the pane. */
static enum MHD_Result
agent_result_page(const struct web_call *call, unsigned status,
    const char *root, cJSON *result, const char *title, const char *message,
    const char *cookie)
{
	struct web_buf b = { 0 };
	struct MHD_Response *r;
	char *json = cJSON_PrintUnformatted(result), *text;
	size_t len = 0;

	cJSON_Delete(result);
	web_buf_add(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset="
	    "\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,"
	    " initial-scale=1\"><title>");
	web_buf_escape(&b, title);
	web_buf_printf(&b, " - halo-milter</title><link rel=\"stylesheet\""
	    " href=\"%sstatic/enroll.css\"><meta name=\"halo-result\""
	    " content=\"", root);
	web_buf_escape(&b, json != NULL ? json : "{\"error\":\"internal\"}");
	web_buf_printf(&b, "\"><script src=\"https://appsforoffice.microsoft.com"
	    "/lib/1/hosted/office.js\"></script><script src=\"%spane/signin.js\""
	    " defer></script></head>\n<body><main><h1>", root);
	web_buf_escape(&b, title);
	web_buf_printf(&b, "</h1>\n<p id=\"message\" class=\"%s\">",
	    status == MHD_HTTP_OK ? "ok" : "error");
	web_buf_escape(&b, message);
	web_buf_add(&b, "</p>\n<p>This window closes by itself; if it does not,"
	    " close it and go back to Outlook.</p></main></body></html>\n");
	if (json != NULL)
		crypto_free_secret(json, strlen(json));
	text = web_buf_take(&b, &len);
	r = web_response(call->w, WEB_CT_HTML, text, len, WEB_AGENT_PAGE_CSP,
	    false);
	if (r == NULL)
		return MHD_NO;
	if (cookie != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	/* the page holds a session id: nothing may keep it */
	return web_queue(call->c, status, r);
}

/* A failed sign-in: the page, and the error for the pane. */
static enum MHD_Result
agent_signin_failed(const struct web_call *call, unsigned status,
    const char *root, const char *code, const char *message,
    const char *cookie)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "error", code);
	cJSON_AddStringToObject(j, "message", message);
	return agent_result_page(call, status, root, j, "Sign-in failed",
	    message, cookie);
}

/* GET /agent/signin?tenant=T: off to Halo. */
static enum MHD_Result
agent_signin(const struct web_call *call)
{
	struct web *w = call->w;
	struct web_agent *a = web_pane_agent(w->pane);
	const struct conf_tenant *t;
	const char *tenant = agent_arg(call, "tenant", 128);
	struct halo_conf hc;
	uint8_t raw[32];
	char verifier[44], challenge[44], code_hash[65], state_hash[65];
	char aad[96], cookie[256], state[ENROLL_STATE_MAX + 1], *b64 = NULL;
	char *sealed = NULL, *url = NULL;
	time_t now = time(NULL);
	int64_t id = 0;
	enum MHD_Result rc;

	if (w->redirect_uri == NULL)
		return agent_signin_failed(call, MHD_HTTP_SERVICE_UNAVAILABLE, "../",
		    "not_configured", "This gateway has no public_url, so it"
		    " cannot send you to Halo and back. Tell your administrator.",
		    NULL);
	if (web_limiter_blocked(a->signins, call->client, now))
		return agent_signin_failed(call, MHD_HTTP_TOO_MANY_REQUESTS, "../",
		    "rate_limited", "Too many sign-ins from here. Wait ten"
		    " minutes.", NULL);
	web_limiter_fail(a->signins, call->client, now);
	t = conf_tenant_find(call->conf, tenant);
	if (t == NULL && (tenant == NULL || *tenant == '\0') &&
	    call->conf->n_tenants == 1)
		t = call->conf->tenants[0];
	if (t == NULL)
		return agent_signin_failed(call, MHD_HTTP_BAD_REQUEST, "../",
		    "tenant", "This gateway does not serve that Halo tenant.",
		    NULL);
	agent_halo_conf(t, &hc);
	if (crypto_random(raw, sizeof(raw)) != 0 ||
	    (b64 = crypto_b64url_encode(raw, sizeof(raw))) == NULL ||
	    crypto_hmac_hex((const uint8_t *)w->hash_key, strlen(w->hash_key),
	    b64, strlen(b64), code_hash) != 0 ||
	    crypto_pkce_verifier(verifier) != 0 ||
	    crypto_pkce_challenge(verifier, challenge) != 0 ||
	    crypto_random(raw, sizeof(raw)) != 0) {
		rc = agent_signin_failed(call, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "../", "internal", "The gateway could not prepare the"
		    " sign-in. Try again.", NULL);
		goto out;
	}
	free(b64);
	b64 = crypto_b64url_encode(raw, sizeof(raw));
	if (b64 == NULL || snprintf(state, sizeof(state), "%s%s",
	    WEB_AGENT_STATE_PREFIX, b64) >= (int)sizeof(state) ||
	    enroll_state_hash(w->hash_key, state, state_hash) != 0 ||
	    oauth_verifier_aad(state_hash, aad, sizeof(aad)) == 0 ||
	    crypto_seal(w->seal_key, aad, strlen(aad), verifier,
	    strlen(verifier), &sealed) != 0 ||
	    (url = halo_authorize_url(&hc, w->redirect_uri, t->halo_scope, state,
	    challenge)) == NULL) {
		rc = agent_signin_failed(call, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "../", "internal", "The gateway could not prepare the"
		    " sign-in. Try again.", NULL);
		goto out;
	}
	/* the enrollments table keeps it: hashes only, the verifier sealed,
	 * the same one-time rules, and keys rotate reseals it. Who signs in is
	 * known only at the callback (then the row is named after them):
	 * nothing a caller sends here is stored */
	store_pane_sessions_purge(w->store, now);
	if (store_enroll_add(w->store, t->name, WEB_AGENT_UNNAMED, code_hash, now,
	    now + WEB_STATE_TTL, &id) != STORE_OK ||
	    store_enroll_start(w->store, id, now, state_hash, sealed,
	    now + WEB_STATE_TTL) != STORE_OK) {
		rc = agent_signin_failed(call, MHD_HTTP_SERVICE_UNAVAILABLE, "../",
		    "store", "The gateway cannot write its database; try again"
		    " later.", NULL);
		goto out;
	}
	log_info("pane: %s: sign-in started from %s (sign-in %lld)", t->name,
	    call->client, (long long)id);
	agent_cookie(w, state, cookie, sizeof(cookie));
	rc = web_respond(w, call->c, MHD_HTTP_FOUND, WEB_CT_TEXT, NULL, 0, url,
	    cookie, false);
	crypto_wipe(cookie, sizeof(cookie));
out:
	crypto_wipe(verifier, sizeof(verifier));
	crypto_wipe(raw, sizeof(raw));
	crypto_wipe(state, sizeof(state));
	if (b64 != NULL)
		crypto_free_secret(b64, strlen(b64));
	free(sealed);
	if (url != NULL)
		crypto_free_secret(url, strlen(url));
	return rc;
}

/* A new session for TENANT/AGENT into SID (and its expiry). */
static bool
agent_session_new(struct web *w, const char *tenant, const char *agent,
    int64_t agent_id, time_t now, char sid[WEB_AGENT_TOKEN_LEN + 1],
    time_t *expires)
{
	struct store_pane_session ps;
	uint8_t raw[32];
	char hash[65], *b64;
	bool ok;

	if (crypto_random(raw, sizeof(raw)) != 0 ||
	    (b64 = crypto_b64url_encode(raw, sizeof(raw))) == NULL)
		return false;
	crypto_wipe(raw, sizeof(raw));
	snprintf(sid, WEB_AGENT_TOKEN_LEN + 1, "%s", b64);
	crypto_free_secret(b64, strlen(b64));
	if (agent_session_hash(w, sid, hash) != 0)
		return false;
	memset(&ps, 0, sizeof(ps));
	ps.id_hash = hash;
	ps.tenant = (char *)tenant;
	ps.agent = (char *)agent;
	ps.agent_id = agent_id;
	ps.created = now;
	ps.expires = *expires = now + WEB_AGENT_SESSION_TTL;
	ok = store_pane_session_add(w->store, &ps) == STORE_OK;
	return ok;
}

/* GET /enroll/callback with one of our states. */
static enum MHD_Result
agent_callback(const struct web_call *call, const char *state)
{
	struct web *w = call->w;
	const char *code = agent_arg(call, "code", WEB_AUTH_CODE_MAX);
	const char *error = agent_arg(call, "error", 64);
	const char *cookies = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
	const struct conf_tenant *t;
	struct store_enroll *e = NULL;
	struct store_token *tok_row = NULL;
	struct halo_conf hc;
	struct halo_tokens tok;
	struct halo_agent me;
	struct halo_err herr;
	char cookie_state[ENROLL_STATE_MAX + 1], state_hash[65], aad[96];
	char clear[160], message[400], sid[WEB_AGENT_TOKEN_LEN + 1];
	char *sealed = NULL;
	uint8_t *verifier = NULL;
	size_t verifier_len = 0;
	enum web_state ws;
	enum store_status ss;
	enum MHD_Result rc;
	time_t now = time(NULL), expires = 0;
	const char *result = "failed", *ecode = "failed";
	bool self = false;
	cJSON *j;

	memset(&tok, 0, sizeof(tok));
	memset(&me, 0, sizeof(me));
	agent_cookie(w, NULL, clear, sizeof(clear));
	if (!web_cookie_get(cookies, w->https_public ? "__Host-halo_pane" :
	    "halo_pane", cookie_state, sizeof(cookie_state)))
		cookie_state[0] = '\0';
	ws = web_state_check(cookie_state, state, NULL, now);
	if (ws == WEB_STATE_UNKNOWN) {
		if (enroll_state_hash(w->hash_key, state, state_hash) != 0)
			ss = STORE_NOT_FOUND;
		else
			ss = store_enroll_by_state(w->store, state_hash, &e);
		if (ss == STORE_ERROR)
			return agent_signin_failed(call,
			    MHD_HTTP_SERVICE_UNAVAILABLE, "../", "store", "The"
			    " gateway cannot read its database; try again later.",
			    clear);
		ws = web_state_check(cookie_state, state, e, now);
	}
	crypto_wipe(cookie_state, sizeof(cookie_state));
	if (ws != WEB_STATE_OK) {
		store_enroll_free(e);
		log_notice("pane: sign-in callback from %s refused: %s",
		    call->client, web_state_name(ws));
		return agent_signin_failed(call, MHD_HTTP_BAD_REQUEST, "../",
		    "state", "This sign-in was not started in this window, or"
		    " it expired. Start again from the pane.", clear);
	}
	if (store_enroll_take(w->store, e->id, now, &sealed) != STORE_OK) {
		store_enroll_free(e);
		return agent_signin_failed(call, MHD_HTTP_GONE, "../", "state",
		    "This sign-in was already used. Start again from the pane.",
		    clear);
	}
	t = conf_tenant_find(call->conf, e->tenant);
	if (t == NULL) {
		snprintf(message, sizeof(message), "This gateway no longer"
		    " serves that Halo tenant.");
		goto failed;
	}
	agent_halo_conf(t, &hc);
	if (error != NULL) {
		result = strcmp(error, "access_denied") == 0 ? "denied" : "failed";
		ecode = "denied";
		snprintf(message, sizeof(message), "The sign-in was cancelled at"
		    " Halo. Nothing changed.");
		goto failed;
	}
	if (code == NULL || *code == '\0') {
		snprintf(message, sizeof(message), "Halo sent no usable"
		    " authorization code.");
		goto failed;
	}
	if (oauth_verifier_aad(state_hash, aad, sizeof(aad)) == 0 ||
	    crypto_open(w->seal_key, aad, strlen(aad), sealed, &verifier,
	    &verifier_len) != 0) {
		snprintf(message, sizeof(message), "The gateway could not read"
		    " back its own sign-in data. Start again.");
		goto failed;
	}
	if (halo_token_from_code(&hc, code, (const char *)verifier,
	    w->redirect_uri, &tok, &herr) != 0 || tok.refresh_token == NULL) {
		snprintf(message, sizeof(message), "Halo did not accept the"
		    " sign-in%s.", tok.access_token != NULL ? " (no refresh"
		    " token: the application must allow offline_access)" : "");
		goto failed;
	}
	if (halo_agent_me(&hc, tok.access_token, &me, &herr) != 0 ||
	    me.email == NULL || *me.email == '\0' || !agent_text_ok(me.email) ||
	    strlen(me.email) > 254) {
		snprintf(message, sizeof(message), "Halo did not say who signed"
		    " in.");
		goto failed;
	}
	if (me.disabled) {
		snprintf(message, sizeof(message), "Your Halo account is"
		    " disabled.");
		goto failed;
	}
	store_enroll_set_agent(w->store, e->id, me.email);
	/* an agent acts only in tenants they enrolled in: a token row (any
	 * standing) is that enrollment; without one, self_enroll decides */
	ss = store_token_get(w->store, t->name, me.email, &tok_row);
	if (ss == STORE_ERROR) {
		snprintf(message, sizeof(message), "The gateway cannot read its"
		    " database; try again later.");
		goto failed;
	}
	tok_row = store_token_free(tok_row);
	if (ss == STORE_NOT_FOUND && !t->self_enroll) {
		ecode = "not_enrolled";
		snprintf(message, sizeof(message), "You (%s) are not enrolled with"
		    " this gateway for %s, and it does not let agents enroll"
		    " themselves. Ask your administrator for an enrollment code.",
		    me.email, t->name);
		log_notice("pane: %s/%s: sign-in refused: not enrolled and"
		    " self_enroll is off", t->name, me.email);
		goto failed;
	}
	self = ss == STORE_NOT_FOUND;
	if (oauth_import(w->oauth, t->name, me.email, tok.refresh_token) != 0 ||
	    !agent_session_new(w, t->name, me.email, me.id, now, sid,
	    &expires)) {
		snprintf(message, sizeof(message), "The gateway could not store"
		    " your sign-in. Try again later.");
		goto failed;
	}
	store_enroll_finish(w->store, e->id, "ok");
	web_count(w, WEB_R_OK);
	log_info("pane: %s/%s: signed in from %s%s", t->name, me.email,
	    call->client, self ? " (self-enrolled)" : "");
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "session", sid);
	cJSON_AddNumberToObject(j, "expires", (double)expires);
	cJSON_AddStringToObject(j, "tenant", t->name);
	cJSON_AddStringToObject(j, "agent", me.email);
	cJSON_AddBoolToObject(j, "enrolled", self);
	snprintf(message, sizeof(message), "You are signed in to Halo as %s%s.",
	    me.email, self ? " and now enrolled: mail routed to you is logged"
	    " under your name" : "");
	rc = agent_result_page(call, MHD_HTTP_OK, "../", j, "Signed in",
	    message, clear);
	crypto_wipe(sid, sizeof(sid));
	goto out;
failed:
	store_enroll_finish(w->store, e->id, result);
	web_count(w, strcmp(result, "denied") == 0 ? WEB_R_DENIED :
	    WEB_R_FAILED);
	log_notice("pane: %s: sign-in failed (%s)", e->tenant, ecode);
	rc = agent_signin_failed(call, strcmp(ecode, "not_enrolled") == 0 ?
	    MHD_HTTP_FORBIDDEN : MHD_HTTP_BAD_GATEWAY, "../", ecode, message,
	    clear);
out:
	if (verifier != NULL)
		crypto_free_secret(verifier, verifier_len);
	if (sealed != NULL)
		crypto_free_secret(sealed, strlen(sealed));
	halo_tokens_clear(&tok);
	halo_agent_clear(&me);
	store_enroll_free(e);
	return rc;
}

/* ---------------------------------------------------------------- API */

/*
 * Who may join a ticket, for an agent's append or re-route: the worker's
 * rule (join.h) on what the gateway knows of the mail (its job: how the
 * sender matched and whether From: was authentic; a mail without a job
 * counts as unauthenticated) and of ticket TICKET_ID (participants and
 * owner from the store, else one GET under the agent's token). The
 * verdict; the caller lets the agent override a refusal only when asked
 * to, and says so in the log.
 */
static enum join_verdict
pane_join_verdict(struct agent_call *ac, const struct store_job *job,
    const char *from, int64_t ticket_id)
{
	struct store *store = ac->call->w->store;
	const char *addr = job != NULL && job->from_addr != NULL ?
	    job->from_addr : from;
	struct join_facts f;
	struct halo_ticket tk;
	struct halo_err err;
	enum join_verdict v;
	bool is = false;

	memset(&f, 0, sizeof(f));
	if (job != NULL) {
		f.authentic = job->sender_auth != NULL &&
		    job->sender_auth[0] != '\0' &&
		    strcmp(job->sender_auth, "none") != 0;
		f.sender_contact = job->sender != NULL &&
		    strcmp(job->sender, "contact") == 0;
		/* "client" is a domain match; "fallback" (the catch-all) never
		 * counts */
		f.sender_domain = job->sender != NULL &&
		    strcmp(job->sender, "client") == 0;
		f.user_id = f.sender_contact ? job->contact_id : 0;
		f.client_id = f.sender_contact || f.sender_domain ?
		    job->client_id : 0;
	}
	if (addr != NULL && store_participant_is(store, ac->ps->tenant,
	    ticket_id, addr, &is) == STORE_OK)
		f.participant = is;
	f.join_clients = ac->t->join_clients;
	f.n_join_clients = ac->t->n_join_clients;
	f.join_domain_members = ac->t->join_domain_members;
	v = join_decide(&f);
	if (v != JOIN_NEED_OWNER)
		return v;
	if (store_ticket_owner_get(store, ac->ps->tenant, ticket_id,
	    time(NULL) - (time_t)ac->t->sender_cache_ttl, &f.ticket_user,
	    &f.ticket_client) != STORE_OK) {
		memset(&tk, 0, sizeof(tk));
		memset(&err, 0, sizeof(err));
		if (halo_ticket_get(&ac->hc, ac->token, ticket_id, &tk,
		    &err) != 0)
			return JOIN_NOT_PARTICIPANT;  /* cannot tell: refuse */
		f.ticket_user = tk.user_id;
		f.ticket_client = tk.client_id;
		store_ticket_owner_put(store, ac->ps->tenant, ticket_id,
		    tk.user_id, tk.client_id, "halo");
		halo_ticket_clear(&tk);
	}
	f.owner_known = true;
	return join_decide(&f);
}

/* GET /api/agent/session. */
static enum MHD_Result
agent_api_session(struct agent_call *ac)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "tenant", ac->ps->tenant);
	cJSON_AddStringToObject(j, "agent", ac->ps->agent);
	cJSON_AddNumberToObject(j, "agent_id", (double)ac->ps->agent_id);
	cJSON_AddNumberToObject(j, "expires", (double)ac->ps->expires);
	return agent_send(ac->call, MHD_HTTP_OK, j, NULL);
}

/* POST /api/agent/renew: a new id, the old one ends. */
static enum MHD_Result
agent_api_renew(struct agent_call *ac)
{
	struct web *w = ac->call->w;
	uint8_t raw[32];
	char sid[WEB_AGENT_TOKEN_LEN + 1], hash[65], *b64;
	time_t now = time(NULL), expires;
	cJSON *j;

	expires = now + WEB_AGENT_SESSION_TTL;
	if (expires > ac->ps->created + WEB_AGENT_SESSION_MAX)
		expires = ac->ps->created + WEB_AGENT_SESSION_MAX;
	if (expires <= now + 60)
		return agent_error(ac->call, MHD_HTTP_UNAUTHORIZED, "signin",
		    "Your pane session is at its end; sign in again.", NULL);
	if (crypto_random(raw, sizeof(raw)) != 0 ||
	    (b64 = crypto_b64url_encode(raw, sizeof(raw))) == NULL)
		return agent_error(ac->call, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "internal", "Internal error.", NULL);
	snprintf(sid, sizeof(sid), "%s", b64);
	crypto_free_secret(b64, strlen(b64));
	crypto_wipe(raw, sizeof(raw));
	if (agent_session_hash(w, sid, hash) != 0 ||
	    store_pane_session_renew(w->store, ac->id_hash, hash, now,
	    expires) != STORE_OK)
		return agent_error(ac->call, MHD_HTTP_UNAUTHORIZED, "signin",
		    "Your pane session has ended; sign in again.", NULL);
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "session", sid);
	cJSON_AddNumberToObject(j, "expires", (double)expires);
	crypto_wipe(sid, sizeof(sid));
	return agent_send(ac->call, MHD_HTTP_OK, j, NULL);
}

/* POST /api/agent/signout. */
static enum MHD_Result
agent_api_signout(struct agent_call *ac)
{
	store_pane_session_end(ac->call->w->store, ac->id_hash);
	log_info("pane: %s/%s: signed out", ac->ps->tenant, ac->ps->agent);
	return agent_send(ac->call, MHD_HTTP_OK, cJSON_CreateObject(), NULL);
}

/* Halo tickets (a list) as the pane shows them; MATCH is marked. */
static cJSON *
agent_tickets_view(const struct agent_call *ac, const cJSON *list,
    const cJSON *statuses, int64_t match)
{
	cJSON *out = cJSON_CreateArray(), *o;
	const cJSON *tk, *st;
	const char *name;
	int64_t id, status_id, agent_id;
	char who[220];
	size_t n = 0;

	cJSON_ArrayForEach(tk, list) {
		if (!cJSON_IsObject(tk) || (id = agent_int(tk, "id")) <= 0 ||
		    n++ >= WEB_AGENT_LIST_MAX)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "id", (double)id);
		agent_copy_str(o, tk, "summary", NULL);
		status_id = agent_int(tk, "status_id");
		cJSON_AddNumberToObject(o, "status_id", (double)status_id);
		name = agent_str(tk, "status_name");
		cJSON_ArrayForEach(st, statuses)
			if (*name == '\0' && agent_int(st, "id") == status_id)
				name = agent_str(st, "name");
		cJSON_AddStringToObject(o, "status", *name != '\0' ? name :
		    "unknown status");
		agent_id = agent_int(tk, "agent_id");
		cJSON_AddNumberToObject(o, "agent_id", (double)agent_id);
		if (agent_id == 0)
			snprintf(who, sizeof(who), "unassigned");
		else if (agent_id == ac->ps->agent_id)
			snprintf(who, sizeof(who), "you");
		else if (*agent_str(tk, "agent_name") != '\0')
			snprintf(who, sizeof(who), "%.200s",
			    agent_str(tk, "agent_name"));
		else
			snprintf(who, sizeof(who), "agent #%" PRId64, agent_id);
		cJSON_AddStringToObject(o, "agent", who);
		cJSON_AddBoolToObject(o, "match", id == match);
		{
			char *url = status_ticket_url(ac->t->halo_url, id);

			cJSON_AddStringToObject(o, "url", url != NULL ? url : "");
			free(url);
		}
		cJSON_AddItemToArray(out, o);
	}
	return out;
}

/* The open tickets of CLIENT_ID into OUT["tickets"]. */
static bool
agent_open_tickets(struct agent_call *ac, int64_t client_id, int64_t match,
    const cJSON *statuses, cJSON *out, enum MHD_Result *rc)
{
	char path[160];
	cJSON *json = NULL;

	snprintf(path, sizeof(path), "/api/Tickets?client_id=%" PRId64
	    "&open_only=true&pageinate=true&page_size=%d&page_no=1"
	    "&order=id&orderdesc=true", client_id, WEB_AGENT_LIST_MAX);
	if (!agent_halo(ac, "GET /api/Tickets", path, NULL, &json, rc))
		return false;
	cJSON_AddItemToObject(out, "tickets", agent_tickets_view(ac,
	    agent_list(json, "tickets"), statuses, match));
	cJSON_Delete(json);
	return true;
}

/* A lookup list ([{id, name}]) from Halo. */
static cJSON *
agent_named(struct agent_call *ac, const char *what, const char *path,
    const char *key, const char *name_key, enum MHD_Result *rc, bool *ok)
{
	cJSON *json = NULL, *out = cJSON_CreateArray(), *o;
	const cJSON *it;

	*ok = agent_halo(ac, what, path, NULL, &json, rc);
	if (!*ok) {
		cJSON_Delete(out);
		return NULL;
	}
	cJSON_ArrayForEach(it, agent_list(json, key)) {
		if (agent_int(it, "id") <= 0)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "id", (double)agent_int(it, "id"));
		agent_copy_str(o, it, name_key, "name");
		cJSON_AddItemToArray(out, o);
	}
	cJSON_Delete(json);
	return out;
}

/* The contact whose address is exactly EMAIL among Halo's search hits. */
static const cJSON *
agent_exact_user(const cJSON *users, const char *email)
{
	const cJSON *u;

	cJSON_ArrayForEach(u, users)
		if (strcasecmp(agent_str(u, "emailaddress"), email) == 0 ||
		    strcasecmp(agent_str(u, "email2"), email) == 0 ||
		    strcasecmp(agent_str(u, "email3"), email) == 0)
			return u;
	return NULL;
}

/* A contact as the pane shows it. */
static cJSON *
agent_user_view(const cJSON *u)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "id", (double)agent_int(u, "id"));
	agent_copy_str(o, u, "name", NULL);
	agent_copy_str(o, u, "emailaddress", "email");
	cJSON_AddNumberToObject(o, "site_id", (double)agent_int(u, "site_id"));
	cJSON_AddNumberToObject(o, "client_id", (double)agent_int(u,
	    "client_id"));
	agent_copy_str(o, u, "client_name", NULL);
	return o;
}

/*
 * Which job of (tenant, MID) the pane means: the one the message's own
 * X-Halo-Token names (sent in that request header), since several jobs
 * may share a Message-ID (a mail that pre-empts one is its own job); a
 * token that is not that job's names none. Without a token (a message the
 * pane has no stamp for), the first job of the Message-ID.
 */
static bool
agent_job_id(struct agent_call *ac, const char *mid, int64_t *id)
{
	const char *token = NULL;
	size_t len = 0;

	*id = 0;
	if (mid == NULL || *mid == '\0')
		return false;
	if (MHD_lookup_connection_value_n(ac->call->c, MHD_HEADER_KIND,
	    "X-Halo-Token", 12, &token, &len) == MHD_YES && token != NULL) {
		*id = len <= STATUS_TOKEN_LEN ? web_pane_token_job(ac->call->w,
		    ac->ps->tenant, mid, token) : 0;
		return *id > 0;
	}
	return store_job_find(ac->call->w->store, ac->ps->tenant, mid, id) ==
	    STORE_OK;
}

/* The job of (tenant, MID) as the pane shows it, and its ticket. */
static cJSON *
agent_job_view(struct agent_call *ac, const char *mid, int64_t *ticket_id)
{
	struct store_job *job = NULL;
	int64_t id = 0;
	cJSON *j;
	char *text;

	*ticket_id = 0;
	if (!agent_job_id(ac, mid, &id) ||
	    store_job_get(ac->call->w->store, id, &job) != STORE_OK)
		return cJSON_CreateNull();
	*ticket_id = job->ticket_id;
	text = status_json(job, ac->t->halo_url);
	store_job_free(job);
	j = text != NULL ? cJSON_Parse(text) : NULL;
	free(text);
	if (j == NULL)
		return cJSON_CreateNull();
	cJSON_AddNumberToObject(j, "job", (double)id);
	return j;
}

/* GET /api/agent/context?mid=&from=&conv=. */
static enum MHD_Result
agent_api_context(struct agent_call *ac)
{
	const char *mid = agent_arg(ac->call, "mid", STATUS_MSGID_MAX);
	const char *from = agent_arg(ac->call, "from", 254);
	const char *conv = agent_arg(ac->call, "conv", 32);
	struct store_pane_defaults d;
	struct web *w = ac->call->w;
	cJSON *out = cJSON_CreateObject(), *sender, *json = NULL, *statuses;
	cJSON *types, *defs, *outcomes;
	const cJSON *u;
	int64_t match = 0, client_id = 0;
	enum MHD_Result rc;
	char path[400], *esc;
	bool ok;

	if (from != NULL && (!agent_text_ok(from) || strchr(from, '@') == NULL))
		from = NULL;
	if (mid != NULL && !agent_text_ok(mid))
		mid = NULL;
	cJSON_AddItemToObject(out, "job", agent_job_view(ac, mid, &match));
	if (match == 0 && mid != NULL && *mid != '\0')
		store_ticket_by_msgid(w->store, ac->ps->tenant, mid, &match);
	if (match == 0 && conv != NULL && strlen(conv) == 32)
		store_ticket_by_conv(w->store, ac->ps->tenant, conv, &match);
	cJSON_AddNumberToObject(out, "match", (double)match);

	statuses = agent_named(ac, "GET /api/Status", "/api/Status", "statuses",
	    "name", &rc, &ok);
	if (!ok)
		goto fail;
	types = agent_named(ac, "GET /api/TicketType",
	    "/api/TicketType?showall=true", "tickettypes", "name", &rc, &ok);
	if (!ok) {
		cJSON_Delete(statuses);
		goto fail;
	}
	cJSON_AddItemToObject(out, "statuses", statuses);
	cJSON_AddItemToObject(out, "types", types);
	outcomes = agent_named(ac, "GET /api/Outcome", "/api/Outcome", "outcomes",
	    "outcome", &rc, &ok);
	if (!ok)
		goto fail;
	cJSON_AddItemToObject(out, "outcomes", outcomes);

	sender = cJSON_AddObjectToObject(out, "sender");
	cJSON_AddStringToObject(sender, "email", from != NULL ? from : "");
	if (from != NULL) {
		esc = http_url_escape(from);
		snprintf(path, sizeof(path), "/api/Users?search=%s&count=20",
		    esc != NULL ? esc : "");
		free(esc);
		if (!agent_halo(ac, "GET /api/Users", path, NULL, &json, &rc))
			goto fail;
		u = agent_exact_user(agent_list(json, "users"), from);
		if (u != NULL) {
			cJSON_AddItemToObject(sender, "contact", agent_user_view(u));
			client_id = agent_int(u, "client_id");
			if (client_id > 0) {
				cJSON *c = cJSON_AddObjectToObject(sender, "client");

				cJSON_AddNumberToObject(c, "id", (double)client_id);
				agent_copy_str(c, u, "client_name", "name");
			}
		}
		cJSON_Delete(json);
		json = NULL;
		if (client_id == 0) {
			struct halo_org org;
			struct halo_err err;
			enum halo_match m = HALO_MATCH_NONE;
			const char *at = strrchr(from, '@');

			memset(&org, 0, sizeof(org));
			if (halo_client_by_domain(&ac->hc, ac->token, at + 1, &m,
			    &org, &err) == 0 && m == HALO_MATCH_ONE) {
				cJSON *c = cJSON_AddObjectToObject(sender, "client");

				client_id = org.client_id;
				cJSON_AddNumberToObject(c, "id", (double)client_id);
				cJSON_AddStringToObject(c, "name", org.client_name ?
				    org.client_name : "");
			} else if (m == HALO_MATCH_AMBIGUOUS) {
				cJSON_AddStringToObject(sender, "why", "more than one"
				    " client claims this domain");
			}
			halo_org_clear(&org);
		}
	}
	if (client_id > 0 && !agent_open_tickets(ac, client_id, match,
	    statuses, out, &rc))
		goto fail;
	if (client_id <= 0)
		cJSON_AddItemToObject(out, "tickets", cJSON_CreateArray());
	store_pane_defaults_get(w->store, ac->ps->tenant, ac->ps->agent, &d);
	defs = cJSON_AddObjectToObject(out, "defaults");
	cJSON_AddNumberToObject(defs, "tickettype_id", (double)(d.tickettype_id >
	    0 ? d.tickettype_id : ac->t->ticket_type_id));
	cJSON_AddStringToObject(defs, "outcome", d.outcome != NULL ? d.outcome :
	    ac->t->append_outcome);
	cJSON_AddBoolToObject(defs, "internal", d.internal);
	cJSON_AddBoolToObject(defs, "attachments", d.attachments);
	store_pane_defaults_clear(&d);
	cJSON_AddStringToObject(out, "agent", ac->ps->agent);
	return agent_send(ac->call, MHD_HTTP_OK, out, NULL);
fail:
	cJSON_Delete(json);
	cJSON_Delete(out);
	return rc;
}

/* GET /api/agent/users?search= (contact picker). */
static enum MHD_Result
agent_api_users(struct agent_call *ac, bool clients)
{
	const char *search = agent_arg(ac->call, "search", WEB_AGENT_SEARCH_MAX);
	cJSON *json = NULL, *out;
	const cJSON *it;
	enum MHD_Result rc;
	char path[300], *esc;
	size_t n = 0;

	if (search == NULL || strlen(search) < 2 || !agent_text_ok(search))
		return agent_error(ac->call, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "Type at least two characters.", NULL);
	esc = http_url_escape(search);
	snprintf(path, sizeof(path), clients ? "/api/Client?search=%s&count=20" :
	    "/api/Users?search=%s&count=20", esc != NULL ? esc : "");
	free(esc);
	if (!agent_halo(ac, clients ? "GET /api/Client" : "GET /api/Users", path,
	    NULL, &json, &rc))
		return rc;
	out = cJSON_CreateArray();
	cJSON_ArrayForEach(it, agent_list(json, clients ? "clients" : "users")) {
		if (agent_int(it, "id") <= 0 || n++ >= 20)
			continue;
		if (clients) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddNumberToObject(o, "id", (double)agent_int(it, "id"));
			agent_copy_str(o, it, "name", NULL);
			cJSON_AddItemToArray(out, o);
		} else
			cJSON_AddItemToArray(out, agent_user_view(it));
	}
	cJSON_Delete(json);
	return agent_send(ac->call, MHD_HTTP_OK, out, NULL);
}

/* GET /api/agent/tickets?client_id=&match=. */
static enum MHD_Result
agent_api_tickets(struct agent_call *ac)
{
	const char *cid = agent_arg(ac->call, "client_id", 12);
	const char *m = agent_arg(ac->call, "match", 12);
	cJSON *out = cJSON_CreateObject(), *statuses;
	enum MHD_Result rc;
	long long client_id = cid != NULL ? atoll(cid) : 0;
	bool ok;

	if (client_id <= 0) {
		cJSON_Delete(out);
		return agent_error(ac->call, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "Which client?", NULL);
	}
	statuses = agent_named(ac, "GET /api/Status", "/api/Status", "statuses",
	    "name", &rc, &ok);
	if (!ok || !agent_open_tickets(ac, client_id, m != NULL ? atoll(m) : 0,
	    statuses, out, &rc)) {
		cJSON_Delete(statuses);
		cJSON_Delete(out);
		return rc;
	}
	cJSON_Delete(statuses);
	return agent_send(ac->call, MHD_HTTP_OK, out, NULL);
}

/* POST /api/agent/defaults. */
static enum MHD_Result
agent_api_defaults(struct agent_call *ac)
{
	struct store_pane_defaults d;
	enum MHD_Result rc;
	cJSON *body = agent_body(ac->call, &rc);
	const char *outcome;

	if (body == NULL)
		return rc;
	memset(&d, 0, sizeof(d));
	d.tickettype_id = agent_body_id(body, "tickettype_id");
	outcome = agent_body_str(body, "outcome", 100, false);
	d.outcome = outcome != NULL && *outcome != '\0' ? (char *)outcome : NULL;
	d.internal = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body,
	    "internal"));
	d.attachments = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body,
	    "attachments"));
	if (store_pane_defaults_put(ac->call->w->store, ac->ps->tenant,
	    ac->ps->agent, &d) != STORE_OK) {
		cJSON_Delete(body);
		return agent_error(ac->call, MHD_HTTP_SERVICE_UNAVAILABLE, "store",
		    "The gateway cannot write its database.", "5");
	}
	log_info("pane: %s/%s: saved defaults", ac->ps->tenant, ac->ps->agent);
	cJSON_Delete(body);
	return agent_send(ac->call, MHD_HTTP_OK, cJSON_CreateObject(), NULL);
}

/* The note for the mail: who, subject, and its text, as safe HTML. */
static char *
agent_note_html(const char *from, const char *subject, const char *text)
{
	struct web_buf b = { 0 };
	char *body = html_from_text(text, strlen(text), false), *out;
	size_t len = 0;

	web_buf_add(&b, "<p><b>From:</b> ");
	web_buf_escape(&b, from);
	web_buf_add(&b, "<br><b>Subject:</b> ");
	web_buf_escape(&b, subject);
	web_buf_add(&b, "</p>");
	if (body != NULL)
		web_buf_add(&b, body);
	free(body);
	out = web_buf_take(&b, &len);
	return out;
}

/* The Message-ID of a body: "<...>" of printable text, or NULL. */
static const char *
agent_body_mid(const cJSON *body)
{
	const char *mid = agent_body_str(body, "mid", STATUS_MSGID_MAX, false);
	size_t n;

	if (mid == NULL || (n = strlen(mid)) < 3 || mid[0] != '<' ||
	    mid[n - 1] != '>')
		return NULL;
	return mid;
}


/*
 * The job of MID in the session's tenant into *JOB (NULL when there is
 * none). false, with a 409 queued into *RC, while the worker owns it
 * (queued or running): the pane never races the worker.
 */
static bool
agent_job_check(struct agent_call *ac, const char *mid, struct store_job **job,
    enum MHD_Result *rc)
{
	int64_t id = 0;

	*job = NULL;
	if (!agent_job_id(ac, mid, &id) ||
	    store_job_get(ac->call->w->store, id, job) != STORE_OK) {
		*job = NULL;
		return true;
	}
	if ((*job)->state == STORE_QUEUED || (*job)->state == STORE_RUNNING) {
		*job = store_job_free(*job);
		*rc = agent_error(ac->call, MHD_HTTP_CONFLICT, "busy", "The gateway"
		    " is logging this mail right now. Refresh in a moment.", NULL);
		return false;
	}
	return true;
}

/* Record in JOB (when there is one) that the pane logged its mail. */
static void
agent_job_record(const struct agent_call *ac, const struct store_job *job,
    int64_t ticket_id, int64_t action_id, bool created, const char *summary)
{
	struct store_result r;

	if (job == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.ticket_id = ticket_id;
	r.action_id = action_id;
	r.result = created ? "created" : "appended";
	r.summary = summary;
	r.ticket_status = created ? "new" : NULL;
	if (store_job_done_by_pane(ac->call->w->store, job->id, &r) != STORE_OK)
		log_warnx("pane: %s/%s: job %lld was taken by the worker meanwhile;"
		    " its record still says what the worker does", ac->ps->tenant,
		    ac->ps->agent, (long long)job->id);
}

/*
 * A mail re-routed from ticket FROM (where the worker or the pane put it)
 * to ticket TO: a private note on FROM says where it went. Halo's API has
 * no call that moves an action to another ticket (and deleting one is not
 * something the gateway does), so the action on FROM stays. 0 or -1.
 */
static int
agent_reroute_note(struct agent_call *ac, const struct store_job *job,
    int64_t to)
{
	struct web_buf b = { 0 };
	cJSON *arr = cJSON_CreateArray(), *a = cJSON_CreateObject(), *json = NULL;
	char *note;
	size_t len = 0;
	bool ok;

	web_buf_add(&b, "<p>This mail (");
	web_buf_escape(&b, job->message_id);
	web_buf_printf(&b, ") was moved to ticket #%" PRId64 " by ", to);
	web_buf_escape(&b, ac->ps->agent);
	web_buf_printf(&b, " from the Outlook pane. The action it made here"
	    " (#%" PRId64 ") stays: Halo's API cannot move an action to another"
	    " ticket.</p>", job->action_id);
	note = web_buf_take(&b, &len);
	cJSON_AddItemToArray(arr, a);
	cJSON_AddNumberToObject(a, "ticket_id", (double)job->ticket_id);
	cJSON_AddStringToObject(a, "outcome", ac->t->append_outcome != NULL ?
	    ac->t->append_outcome : "Email Received");
	cJSON_AddStringToObject(a, "note_html", note != NULL ? note : "");
	cJSON_AddBoolToObject(a, "hiddenfromuser", true);
	cJSON_AddBoolToObject(a, "sendemail", false);
	free(note);
	/* a failure here is logged and reported, not undone: the mail is on
	 * its new ticket already */
	ok = agent_halo(ac, "POST /api/Actions", "/api/Actions", arr, &json,
	    NULL);
	cJSON_Delete(json);
	cJSON_Delete(arr);
	log_info("pane: %s/%s: re-routed mail (job %lld) from ticket %" PRId64
	    " to ticket %" PRId64 "; private note on %" PRId64 " %s",
	    ac->ps->tenant, ac->ps->agent, (long long)job->id, job->ticket_id,
	    to, job->ticket_id, ok ? "posted" : "FAILED");
	return ok ? 0 : -1;
}

/* POST /api/agent/append: the mail onto a ticket as an action. */
static enum MHD_Result
agent_api_append(struct agent_call *ac)
{
	enum MHD_Result rc;
	cJSON *body = agent_body(ac->call, &rc), *arr, *a, *json = NULL;
	const char *mid, *from, *subject, *text, *outcome;
	const cJSON *tt;
	struct store_pane_defaults d;
	struct store_job *job = NULL;
	int64_t ticket_id, found_ticket = 0, found_action = 0, action_id;
	int64_t moved_from;
	enum join_verdict jv;
	bool note_ok, confirmed;
	double hours = 0;
	bool internal;
	char *note = NULL;
	struct halo_err err;

	if (body == NULL)
		return rc;
	ticket_id = agent_body_id(body, "ticket_id");
	mid = agent_body_mid(body);
	from = agent_body_str(body, "from", 254, false);
	subject = agent_body_str(body, "subject", 500, false);
	text = agent_body_str(body, "text", WEB_AGENT_TEXT_MAX, true);
	tt = cJSON_GetObjectItemCaseSensitive(body, "timetaken");
	if (cJSON_IsNumber(tt))
		hours = tt->valuedouble;
	internal = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body,
	    "internal"));
	if (ticket_id <= 0 || mid == NULL || from == NULL || subject == NULL ||
	    text == NULL || !(hours >= 0 && hours <= 24)) {
		cJSON_Delete(body);
		return agent_error(ac->call, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "A ticket, the message and a time of 0 to 24 hours are"
		    " needed.", NULL);
	}
	if (!agent_job_check(ac, mid, &job, &rc)) {
		cJSON_Delete(body);
		return rc;
	}
	if (job != NULL && job->state == STORE_DONE &&
	    job->ticket_id == ticket_id) {
		store_job_free(job);
		cJSON_Delete(body);
		return agent_error(ac->call, MHD_HTTP_CONFLICT, "duplicate",
		    "This mail is already on that ticket.", NULL);
	}
	if (!agent_token(ac, false, &rc)) {
		store_job_free(job);
		cJSON_Delete(body);
		return rc;
	}
	/* the one rule for who may join a ticket; an agent may override it,
	 * never silently */
	jv = pane_join_verdict(ac, job, from, ticket_id);
	confirmed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body,
	    "confirm_outsider"));
	if (!join_allows(jv) && !confirmed) {
		store_job_free(job);
		cJSON_Delete(body);
		return agent_error(ac->call, MHD_HTTP_CONFLICT, join_name(jv),
		    jv == JOIN_UNAUTHENTICATED ? "The gateway could not confirm"
		    " who sent this mail, so it may not join a ticket on its"
		    " own." : "The sender has not written on that ticket and is"
		    " not a contact of its client.", NULL);
	}
	if (!join_allows(jv))
		log_notice("pane: %s/%s: adds mail (job %lld) to ticket %"
		    PRId64 " although %s, confirmed by the agent",
		    ac->ps->tenant, ac->ps->agent, job != NULL ?
		    (long long)job->id : 0LL, ticket_id, join_name(jv));
	/* exactly once: a mail already on that ticket is not added again */
	memset(&err, 0, sizeof(err));
	if (halo_find_by_message_id(&ac->hc, ac->token, mid, &found_ticket,
	    &found_action, &err) == 0 && found_ticket == ticket_id) {
		store_job_free(job);
		cJSON_Delete(body);
		return agent_error(ac->call, MHD_HTTP_CONFLICT, "duplicate",
		    "This mail is already on that ticket.", NULL);
	}
	store_pane_defaults_get(ac->call->w->store, ac->ps->tenant,
	    ac->ps->agent, &d);
	/* the outcome the agent chose, else theirs, else the tenant's */
	outcome = agent_body_str(body, "outcome", 100, false);
	if (outcome == NULL || *outcome == '\0')
		outcome = d.outcome != NULL ? d.outcome : ac->t->append_outcome;
	note = agent_note_html(from, subject, text);
	arr = cJSON_CreateArray();
	a = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, a);
	cJSON_AddNumberToObject(a, "ticket_id", (double)ticket_id);
	cJSON_AddStringToObject(a, "outcome", outcome != NULL ? outcome :
	    "Email Received");
	cJSON_AddStringToObject(a, "note_html", note != NULL ? note : "");
	cJSON_AddBoolToObject(a, "hiddenfromuser", internal);
	cJSON_AddNumberToObject(a, "timetaken", hours);
	cJSON_AddBoolToObject(a, "sendemail", false);
	cJSON_AddStringToObject(a, "emailfrom", from);
	cJSON_AddStringToObject(a, "emailsubject", subject);
	cJSON_AddStringToObject(a, "emaildirection", "I");
	cJSON_AddStringToObject(a, "internet_message_id", mid);
	free(note);
	store_pane_defaults_clear(&d);
	if (!agent_halo(ac, "POST /api/Actions", "/api/Actions", arr, &json,
	    &rc)) {
		store_job_free(job);
		cJSON_Delete(arr);
		cJSON_Delete(body);
		return rc;
	}
	action_id = agent_int(cJSON_IsArray(json) ? cJSON_GetArrayItem(json, 0) :
	    json, "id");
	moved_from = job != NULL && job->state == STORE_DONE &&
	    job->ticket_id > 0 ? job->ticket_id : 0;
	note_ok = moved_from == 0 || agent_reroute_note(ac, job, ticket_id) == 0;
	agent_job_record(ac, job, ticket_id, action_id, false, NULL);
	log_info("pane: %s/%s: appended mail (job %lld) to ticket %" PRId64
	    " as action %" PRId64 "%s, %.2f h", ac->ps->tenant, ac->ps->agent,
	    job != NULL ? (long long)job->id : 0LL, ticket_id, action_id,
	    internal ? " (internal note)" : "", hours);
	cJSON_Delete(json);
	cJSON_Delete(arr);
	cJSON_Delete(body);
	json = cJSON_CreateObject();
	cJSON_AddNumberToObject(json, "ticket_id", (double)ticket_id);
	cJSON_AddNumberToObject(json, "action_id", (double)action_id);
	if (moved_from > 0) {
		cJSON_AddNumberToObject(json, "moved_from", (double)moved_from);
		cJSON_AddBoolToObject(json, "note_posted", note_ok);
	}
	store_job_free(job);
	return agent_send(ac->call, MHD_HTTP_OK, json, NULL);
}

/* POST /api/agent/create: a new ticket from the mail. */
static enum MHD_Result
agent_api_create(struct agent_call *ac)
{
	enum MHD_Result rc;
	cJSON *body = agent_body(ac->call, &rc), *arr, *tk, *json = NULL;
	const char *mid, *from, *summary, *text;
	struct store_job *job = NULL;
	int64_t type, client_id, site_id, user_id, ticket_id, moved_from;
	bool note_ok;
	char *note;

	if (body == NULL)
		return rc;
	mid = agent_body_mid(body);
	from = agent_body_str(body, "from", 254, false);
	summary = agent_body_str(body, "summary", 500, false);
	text = agent_body_str(body, "text", WEB_AGENT_TEXT_MAX, true);
	type = agent_body_id(body, "tickettype_id");
	client_id = agent_body_id(body, "client_id");
	site_id = agent_body_id(body, "site_id");
	user_id = agent_body_id(body, "user_id");
	if (type <= 0)
		type = ac->t->ticket_type_id;
	if (mid == NULL || from == NULL || summary == NULL || *summary == '\0' ||
	    text == NULL || (user_id > 0 && site_id <= 0)) {
		cJSON_Delete(body);
		return agent_error(ac->call, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "A summary and the message are needed.", NULL);
	}
	if (!agent_job_check(ac, mid, &job, &rc)) {
		cJSON_Delete(body);
		return rc;
	}
	note = agent_note_html(from, summary, text);
	arr = cJSON_CreateArray();
	tk = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, tk);
	cJSON_AddStringToObject(tk, "summary", summary);
	cJSON_AddStringToObject(tk, "details_html", note != NULL ? note : "");
	cJSON_AddNumberToObject(tk, "tickettype_id", (double)type);
	if (client_id > 0)
		cJSON_AddNumberToObject(tk, "client_id", (double)client_id);
	if (site_id > 0)
		cJSON_AddNumberToObject(tk, "site_id", (double)site_id);
	if (user_id > 0)
		cJSON_AddNumberToObject(tk, "user_id", (double)user_id);
	cJSON_AddStringToObject(tk, "internet_message_id", mid);
	cJSON_AddBoolToObject(tk, "dont_do_rules", ac->t->dont_do_rules);
	free(note);
	if (!agent_halo(ac, "POST /api/Tickets", "/api/Tickets", arr, &json,
	    &rc)) {
		store_job_free(job);
		cJSON_Delete(arr);
		cJSON_Delete(body);
		return rc;
	}
	ticket_id = agent_int(cJSON_IsArray(json) ? cJSON_GetArrayItem(json, 0) :
	    json, "id");
	log_info("pane: %s/%s: created ticket %" PRId64 " (type %" PRId64
	    ") from mail (job %lld)", ac->ps->tenant, ac->ps->agent, ticket_id,
	    type, job != NULL ? (long long)job->id : 0LL);
	moved_from = job != NULL && job->state == STORE_DONE &&
	    job->ticket_id > 0 && ticket_id > 0 ? job->ticket_id : 0;
	note_ok = moved_from == 0 || agent_reroute_note(ac, job, ticket_id) == 0;
	if (ticket_id > 0)
		agent_job_record(ac, job, ticket_id, 0, true, summary);
	cJSON_Delete(json);
	cJSON_Delete(arr);
	cJSON_Delete(body);
	json = cJSON_CreateObject();
	cJSON_AddNumberToObject(json, "ticket_id", (double)ticket_id);
	if (moved_from > 0) {
		cJSON_AddNumberToObject(json, "moved_from", (double)moved_from);
		cJSON_AddBoolToObject(json, "note_posted", note_ok);
	}
	store_job_free(job);
	return agent_send(ac->call, MHD_HTTP_OK, json, NULL);
}

/* POST /api/agent/assign or /status: one field of a ticket. */
static enum MHD_Result
agent_api_update(struct agent_call *ac, bool assign)
{
	enum MHD_Result rc;
	cJSON *body = agent_body(ac->call, &rc), *arr, *tk, *json = NULL;
	int64_t ticket_id, status_id = 0;

	if (body == NULL)
		return rc;
	ticket_id = agent_body_id(body, "ticket_id");
	if (!assign)
		status_id = agent_body_id(body, "status_id");
	cJSON_Delete(body);
	if (ticket_id <= 0 || (!assign && status_id <= 0) ||
	    (assign && ac->ps->agent_id <= 0))
		return agent_error(ac->call, MHD_HTTP_BAD_REQUEST, "bad_request",
		    "Which ticket (and status)?", NULL);
	arr = cJSON_CreateArray();
	tk = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, tk);
	cJSON_AddNumberToObject(tk, "id", (double)ticket_id);
	if (assign)
		cJSON_AddNumberToObject(tk, "agent_id", (double)ac->ps->agent_id);
	else
		cJSON_AddNumberToObject(tk, "status_id", (double)status_id);
	if (!agent_halo(ac, "POST /api/Tickets", "/api/Tickets", arr, &json,
	    &rc)) {
		cJSON_Delete(arr);
		return rc;
	}
	if (assign)
		log_info("pane: %s/%s: assigned ticket %" PRId64 " to themselves"
		    " (agent %" PRId64 ")", ac->ps->tenant, ac->ps->agent,
		    ticket_id, ac->ps->agent_id);
	else
		log_info("pane: %s/%s: set ticket %" PRId64 " to status %" PRId64,
		    ac->ps->tenant, ac->ps->agent, ticket_id, status_id);
	cJSON_Delete(json);
	cJSON_Delete(arr);
	json = cJSON_CreateObject();
	cJSON_AddNumberToObject(json, "ticket_id", (double)ticket_id);
	return agent_send(ac->call, MHD_HTTP_OK, json, NULL);
}

/* OPTIONS /api/agent/...: the preflight, for our origin only. */
static enum MHD_Result
agent_preflight(const struct web_call *call)
{
	const char *origin = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, "Origin");
	const char *ours = web_pane_agent(call->w->pane)->origin;
	struct MHD_Response *r;
	bool ok = origin != NULL && ours != NULL && strcmp(origin, ours) == 0;

	r = web_response(call->w, WEB_CT_TEXT, NULL, 0, NULL, false);
	if (r == NULL)
		return MHD_NO;
	agent_cors(call, r);
	if (ok) {
		MHD_add_response_header(r, "Access-Control-Allow-Methods",
		    "GET, POST, OPTIONS");
		MHD_add_response_header(r, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, X-Halo-Token");
		MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	}
	return web_queue(call->c, ok ? MHD_HTTP_NO_CONTENT :
	    MHD_HTTP_FORBIDDEN, r);
}

/* The API's routes: name, whether it writes, handler kind. */
enum agent_op {
	OP_SESSION, OP_RENEW, OP_SIGNOUT, OP_CONTEXT, OP_USERS, OP_CLIENTS,
	OP_TICKETS, OP_DEFAULTS, OP_APPEND, OP_CREATE, OP_ASSIGN, OP_STATUS
};

static const struct {
	const char *path;
	bool post;
	enum agent_op op;
} agent_routes[] = {
	{ "/api/agent/session", false, OP_SESSION },
	{ "/api/agent/renew", true, OP_RENEW },
	{ "/api/agent/signout", true, OP_SIGNOUT },
	{ "/api/agent/context", false, OP_CONTEXT },
	{ "/api/agent/users", false, OP_USERS },
	{ "/api/agent/clients", false, OP_CLIENTS },
	{ "/api/agent/tickets", false, OP_TICKETS },
	{ "/api/agent/defaults", true, OP_DEFAULTS },
	{ "/api/agent/append", true, OP_APPEND },
	{ "/api/agent/create", true, OP_CREATE },
	{ "/api/agent/assign", true, OP_ASSIGN },
	{ "/api/agent/status", true, OP_STATUS },
};

/* One API call. */
static enum MHD_Result
agent_api(const struct web_call *call, size_t i)
{
	struct agent_call ac;
	enum MHD_Result rc;

	if (call->options)
		return agent_preflight(call);
	if (agent_routes[i].post ? !call->post : !call->get)
		return agent_error(call, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
		    "Method not allowed.", NULL);
	if (!agent_auth(call, &ac, agent_routes[i].post, &rc))
		return rc;
	switch (agent_routes[i].op) {
	case OP_SESSION: rc = agent_api_session(&ac); break;
	case OP_RENEW: rc = agent_api_renew(&ac); break;
	case OP_SIGNOUT: rc = agent_api_signout(&ac); break;
	case OP_CONTEXT: rc = agent_api_context(&ac); break;
	case OP_USERS: rc = agent_api_users(&ac, false); break;
	case OP_CLIENTS: rc = agent_api_users(&ac, true); break;
	case OP_TICKETS: rc = agent_api_tickets(&ac); break;
	case OP_DEFAULTS: rc = agent_api_defaults(&ac); break;
	case OP_APPEND: rc = agent_api_append(&ac); break;
	case OP_CREATE: rc = agent_api_create(&ac); break;
	case OP_ASSIGN: rc = agent_api_update(&ac, true); break;
	default: rc = agent_api_update(&ac, false); break;
	}
	agent_call_clear(&ac);
	return rc;
}

/* The agent part's URLs (web_int.h). */
bool
web_agent_route(const struct web_call *call, enum MHD_Result *rc)
{
	const char *state;
	size_t i;

	if (strcmp(call->url, "/enroll/callback") == 0) {
		state = agent_arg(call, "state", ENROLL_STATE_MAX);
		if (!call->get || state == NULL || strncmp(state,
		    WEB_AGENT_STATE_PREFIX, strlen(WEB_AGENT_STATE_PREFIX)) != 0)
			return false;       /* an enrollment's: web.c's */
		*rc = agent_callback(call, state);
		return true;
	}
	if (strcmp(call->url, "/agent/signin") == 0) {
		*rc = call->get ? agent_signin(call) : web_respond(call->w,
		    call->c, MHD_HTTP_METHOD_NOT_ALLOWED, WEB_CT_TEXT, NULL, 0,
		    NULL, NULL, false);
		return true;
	}
	if (strncmp(call->url, "/api/agent/", 11) != 0)
		return false;
	for (i = 0; i < sizeof(agent_routes) / sizeof(agent_routes[0]); i++)
		if (strcmp(call->url, agent_routes[i].path) == 0) {
			*rc = agent_api(call, i);
			return true;
		}
	*rc = agent_error(call, MHD_HTTP_NOT_FOUND, "not_found", "No such call.",
	    NULL);
	return true;
}
