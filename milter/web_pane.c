/*
 * web_pane.c - the Outlook pane's part of the web server: the pane's files
 * (web_root/pane/), the add-in manifests (/manifest.xml, /manifest.json)
 * and the status API (/api/status).
 *
 * GET /api/status?tenant=T&mid=<Message-ID> with the message's X-Halo-Token
 * value in the request header "X-Halo-Token" (not in the URL: URLs end up
 * in proxy and access logs) answers from the local store only (never a
 * Halo call per request):
 *   200  the job's status (status_json(), status.h)
 *   403  {"error":"forbidden"}: missing, malformed or wrong token (not
 *        the one of the job it names, its tenant, Message-ID and
 *        mailboxes), or a tenant we do not serve
 *   404  {"state":"unknown"}: a well-formed token naming a job this store
 *        does not have (purged, or another gateway's); job ids are no
 *        secret (X-Halo-Status shows them), so this tells nothing
 *   429  {"error":"rate limited"} with Retry-After, over WEB_PANE_PER_MIN
 *        requests a minute from one client (IPv6 by /64)
 * CORS: Access-Control-Allow-Origin only for the pane's own origin (that of
 * public_url), always with Vary: Origin; OPTIONS answers the preflight.
 *
 * The pane's pages carry their own CSP: office.js from Microsoft's CDN,
 * connections to us only, and framing only by Outlook's hosts.
 */
#include "web_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"
#include "status.h"

#define WEB_PANE_PER_MIN    120         /* status requests per client */
#define WEB_PANE_GLOBAL     1000000     /* in all (the per-client cap binds) */
#define WEB_PANE_WINDOW     60
#define WEB_PANE_FILE_MAX   (1024 * 1024)
#define WEB_PANE_NAME_MAX   64

/*
 * Who may frame the pane: Outlook on the web (work and personal accounts)
 * and the new Outlook for Windows, which runs the same web app. Classic
 * Outlook on Windows and Outlook on Mac load the pane as a top-level page
 * in a webview, where frame-ancestors does not apply. Microsoft does not
 * publish the list of hosts; these are the ones its clients are served
 * from. Widen here if a client refuses to show the pane.
 */
#define WEB_PANE_ANCESTORS "'self' https://outlook.office.com" \
	" https://outlook.office365.com https://outlook.live.com" \
	" https://*.outlook.com https://*.office.com https://*.office365.com" \
	" https://*.officeapps.live.com https://*.microsoft.com"

#define WEB_PANE_CSP "default-src 'none';" \
	" script-src 'self' https://appsforoffice.microsoft.com;" \
	" style-src 'self'; img-src 'self' data:; connect-src 'self';" \
	" frame-ancestors " WEB_PANE_ANCESTORS "; base-uri 'none';" \
	" form-action 'none'"

struct web_pane {
	uint8_t key[CRYPTO_KEY_LEN];        /* X-Halo-Token's (status.key) */
	struct web_limiter *limiter;
	char *origin;                       /* public_url's; NULL when unset */
	char *web_root;
	char *manifest_xml, *manifest_json; /* NULL without public_url */
	struct web_agent *agent;            /* sign-in and actions */
};

/* Set up the pane's part. */
struct web_pane *
web_pane_new(const struct conf *conf, const uint8_t status_key[CRYPTO_KEY_LEN],
    char *err, size_t errsz)
{
	struct web_pane *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	/* the same key intake stamps with, loaded once (statedir.h) */
	memcpy(p->key, status_key, sizeof(p->key));
	p->limiter = web_limiter_new(WEB_PANE_PER_MIN, WEB_PANE_GLOBAL,
	    WEB_PANE_WINDOW);
	p->web_root = strdup(conf->web_root != NULL ? conf->web_root : "/");
	p->agent = web_agent_new(conf);
	if (p->limiter == NULL || p->web_root == NULL || p->agent == NULL) {
		snprintf(err, errsz, "out of memory");
		return web_pane_free(p);
	}
	if (conf->public_url != NULL) {
		p->origin = web_origin(conf->public_url);
		p->manifest_xml = manifest_build(conf, MANIFEST_XML, NULL, err,
		    errsz);
		p->manifest_json = p->manifest_xml == NULL ? NULL :
		    manifest_build(conf, MANIFEST_JSON, NULL, err, errsz);
		if (p->origin == NULL || p->manifest_json == NULL) {
			if (p->origin == NULL)
				snprintf(err, errsz, "public_url has no origin");
			return web_pane_free(p);
		}
	}
	return p;
}

/* Free the pane's part. */
struct web_pane *
web_pane_free(struct web_pane *p)
{
	if (p == NULL)
		return NULL;
	crypto_wipe(p->key, sizeof(p->key));
	web_limiter_free(p->limiter);
	web_agent_free(p->agent);
	free(p->origin);
	free(p->web_root);
	free(p->manifest_xml);
	free(p->manifest_json);
	free(p);
	return NULL;
}

/* The agent part (web_int.h). */
struct web_agent *
web_pane_agent(struct web_pane *p)
{
	return p->agent;
}

/* The CORS headers of an API response: the origin only when it is ours. */
static void
web_pane_cors(const struct web_call *call, struct MHD_Response *r)
{
	const char *origin = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, "Origin");

	MHD_add_response_header(r, "Vary", "Origin");
	if (origin != NULL && call->w->pane->origin != NULL &&
	    strcmp(origin, call->w->pane->origin) == 0)
		MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
}

/* A JSON answer of the status API (TEXT is taken over). */
static enum MHD_Result
web_pane_json(const struct web_call *call, unsigned status, char *text,
    const char *retry_after)
{
	struct MHD_Response *r;

	if (text == NULL)
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	r = web_response(call->w, WEB_CT_JSON, text, text != NULL ?
	    strlen(text) : 0, NULL, false);
	if (r == NULL)
		return MHD_NO;
	web_pane_cors(call, r);
	if (retry_after != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
		    retry_after);
	return web_queue(call->c, status, r);
}

/* A GET argument of at most MAX bytes, with its length (so an embedded
 * NUL shows). NULL when absent or too long. */
static const char *
web_pane_arg(const struct web_call *call, const char *name, size_t max,
    size_t *len)
{
	const char *value = NULL;

	*len = 0;
	if (MHD_lookup_connection_value_n(call->c, MHD_GET_ARGUMENT_KIND, name,
	    strlen(name), &value, len) != MHD_YES || value == NULL ||
	    *len > max)
		return NULL;
	return value;
}

/* GET /api/status. */
static enum MHD_Result
web_pane_status(const struct web_call *call)
{
	struct web_pane *p = call->w->pane;
	const struct conf_tenant *t;
	struct store_job *job = NULL;
	const char *tenant, *mid, *token;
	size_t tenant_len, mid_len, token_len;
	enum store_status rc;
	int64_t id = 0;
	time_t now = time(NULL);
	bool ok;
	char *text;

	if (web_limiter_blocked(p->limiter, call->client, now))
		return web_pane_json(call, MHD_HTTP_TOO_MANY_REQUESTS,
		    strdup("{\"error\":\"rate limited\"}"), "60");
	web_limiter_fail(p->limiter, call->client, now);

	tenant = web_pane_arg(call, "tenant", STATUS_TENANT_MAX, &tenant_len);
	mid = web_pane_arg(call, "mid", STATUS_MSGID_MAX, &mid_len);
	/* the token travels in a header, never in the URL (which proxies and
	 * access logs keep) */
	token = NULL;
	token_len = 0;
	if (MHD_lookup_connection_value_n(call->c, MHD_HEADER_KIND,
	    "X-Halo-Token", 12, &token, &token_len) != MHD_YES ||
	    token_len > STATUS_TOKEN_LEN)
		token = NULL;
	ok = status_params_ok(tenant, tenant_len, mid, mid_len, token,
	    token_len);
	/* the token names its job and is bound to it (status.h) */
	t = ok ? conf_tenant_find(call->conf, tenant) : NULL;
	if (t == NULL)
		return web_pane_json(call, MHD_HTTP_FORBIDDEN,
		    strdup("{\"error\":\"forbidden\"}"), NULL);
	id = status_token_job(token);
	rc = store_job_get(call->w->store, id, &job);
	if (rc == STORE_NOT_FOUND)
		return web_pane_json(call, MHD_HTTP_NOT_FOUND,
		    strdup("{\"state\":\"unknown\"}"), NULL);
	if (rc != STORE_OK)
		return web_pane_json(call, MHD_HTTP_SERVICE_UNAVAILABLE,
		    strdup("{\"error\":\"store unavailable\"}"), "5");
	if (!status_token_check(p->key, job, t->name, mid, token)) {
		store_job_free(job);
		return web_pane_json(call, MHD_HTTP_FORBIDDEN,
		    strdup("{\"error\":\"forbidden\"}"), NULL);
	}
	text = status_json(job, t->halo_url);
	store_job_free(job);
	return web_pane_json(call, MHD_HTTP_OK, text, NULL);
}

/* OPTIONS /api/status: a CORS preflight, granted to our own origin only. */
static enum MHD_Result
web_pane_preflight(const struct web_call *call)
{
	const char *origin = MHD_lookup_connection_value(call->c,
	    MHD_HEADER_KIND, "Origin");
	struct MHD_Response *r;
	bool ours = origin != NULL && call->w->pane->origin != NULL &&
	    strcmp(origin, call->w->pane->origin) == 0;

	r = web_response(call->w, WEB_CT_TEXT, NULL, 0, NULL, false);
	if (r == NULL)
		return MHD_NO;
	web_pane_cors(call, r);
	if (ours) {
		MHD_add_response_header(r, "Access-Control-Allow-Methods",
		    "GET, OPTIONS");
		MHD_add_response_header(r, "Access-Control-Allow-Headers",
		    "Content-Type, X-Halo-Token");
		MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	}
	return web_queue(call->c, ours ? MHD_HTTP_NO_CONTENT :
	    MHD_HTTP_FORBIDDEN, r);
}

/* The content type of a pane file NAME, or NULL when we do not serve it. */
static const char *
web_pane_ctype(const char *name)
{
	static const struct {
		const char *ext, *ctype;
	} types[] = {
		{ ".html", WEB_CT_HTML },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".png", "image/png" },
		{ ".svg", "image/svg+xml" },
	};
	size_t i, n = strlen(name), e;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		e = strlen(types[i].ext);
		if (n > e && strcmp(name + n - e, types[i].ext) == 0)
			return types[i].ctype;
	}
	return NULL;
}

/* Whether NAME (the URL after "/pane/") names a file we may serve:
 * [a-z0-9_-] words with dots inside, in the pane directory or its icons/. */
static bool
web_pane_name_ok(const char *name)
{
	const char *s = name;
	size_t n = strlen(name);

	if (n == 0 || n > WEB_PANE_NAME_MAX)
		return false;
	if (strncmp(s, "icons/", 6) == 0)
		s += 6;
	if (*s == '\0' || *s == '.')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '-' || *s == '_' || (*s == '.' && s[1] != '.')))
			return false;
	return web_pane_ctype(name) != NULL;
}

/* GET /pane/NAME from web_root/pane/. */
static enum MHD_Result
web_pane_file(const struct web_call *call, const char *name)
{
	char path[PATH_MAX], *buf = NULL;
	const char *ctype = web_pane_ctype(name);
	struct MHD_Response *r;
	struct stat sb;
	size_t len = 0;
	ssize_t n;
	int fd = -1;

	if (snprintf(path, sizeof(path), "%s/pane/%s", call->w->pane->web_root,
	    name) >= (int)sizeof(path))
		goto missing;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > WEB_PANE_FILE_MAX ||
	    (buf = malloc((size_t)sb.st_size + 1)) == NULL)
		goto missing;
	n = util_read_full(fd, buf, (size_t)sb.st_size);
	close(fd);
	len = n > 0 ? (size_t)n : 0;
	/* pages change with an upgrade; the rest may be cached a while */
	r = web_response(call->w, ctype, buf, len, WEB_PANE_CSP,
	    strcmp(ctype, WEB_CT_HTML) != 0);
	if (r == NULL)
		return MHD_NO;
	return web_queue(call->c, MHD_HTTP_OK, r);
missing:
	if (fd >= 0)
		close(fd);
	free(buf);
	return web_respond(call->w, call->c, MHD_HTTP_NOT_FOUND, WEB_CT_TEXT,
	    strdup("not found\n"), 10, NULL, NULL, false);
}

/* GET /manifest.xml or /manifest.json. */
static enum MHD_Result
web_pane_manifest(const struct web_call *call, bool xml)
{
	const char *text = xml ? call->w->pane->manifest_xml :
	    call->w->pane->manifest_json;
	char *copy;

	if (text == NULL)
		return web_respond(call->w, call->c, MHD_HTTP_NOT_FOUND,
		    WEB_CT_TEXT, strdup("set public_url to serve the add-in"
		    " manifest\n"), 40, NULL, NULL, false);
	copy = strdup(text);
	return web_respond(call->w, call->c, copy != NULL ? MHD_HTTP_OK :
	    MHD_HTTP_INTERNAL_SERVER_ERROR, xml ?
	    "application/xml; charset=utf-8" : WEB_CT_JSON, copy,
	    copy != NULL ? strlen(copy) : 0, NULL, NULL, false);
}

/* The pane's URLs. */
bool
web_pane_route(const struct web_call *call, enum MHD_Result *rc)
{
	const char *url = call->url;

	if (strcmp(url, "/api/status") == 0) {
		if (call->get)
			*rc = web_pane_status(call);
		else if (call->options)
			*rc = web_pane_preflight(call);
		else
			*rc = web_respond(call->w, call->c,
			    MHD_HTTP_METHOD_NOT_ALLOWED, WEB_CT_TEXT, NULL, 0,
			    NULL, NULL, false);
		return true;
	}
	if (strcmp(url, "/manifest.xml") != 0 &&
	    strcmp(url, "/manifest.json") != 0 && strncmp(url, "/pane/", 6) != 0)
		return false;
	if (!call->get) {
		*rc = web_respond(call->w, call->c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    WEB_CT_TEXT, NULL, 0, NULL, NULL, false);
		return true;
	}
	if (strcmp(url, "/manifest.xml") == 0)
		*rc = web_pane_manifest(call, true);
	else if (strcmp(url, "/manifest.json") == 0)
		*rc = web_pane_manifest(call, false);
	else if (web_pane_name_ok(url + 6))
		*rc = web_pane_file(call, url + 6);
	else
		*rc = web_respond(call->w, call->c, MHD_HTTP_NOT_FOUND,
		    WEB_CT_TEXT, strdup("not found\n"), 10, NULL, NULL, false);
	return true;
}

/* The job TOKEN (an X-Halo-Token value) names, when it is that job's token
 * for TENANT and MID; 0 otherwise. */
int64_t
web_pane_token_job(struct web *w, const char *tenant, const char *mid,
    const char *token)
{
	struct store_job *job = NULL;
	int64_t id;
	bool ok;

	if (w->pane == NULL || token == NULL || tenant == NULL || mid == NULL ||
	    strlen(token) > STATUS_TOKEN_LEN ||
	    (id = status_token_job(token)) <= 0 ||
	    store_job_get(w->store, id, &job) != STORE_OK)
		return 0;
	ok = status_token_check(w->pane->key, job, tenant, mid, token);
	store_job_free(job);
	return ok ? id : 0;
}
