/*
 * web.c - the daemon's web server: enrollment pages, /healthz, /metrics.
 *
 * libmicrohttpd with a thread per connection (the OAuth callback blocks on
 * Halo for a few seconds), bounded connections per address
 * (web_connections_per_ip) well below the bound in all
 * (web_max_connections), so that a few addresses holding slow connections
 * cannot take every slot; a short timeout (web_request_timeout) for a
 * request to arrive and for an idle connection; a small per-connection
 * memory pool (which bounds headers) and POST bodies of at most
 * WEB_POST_MAX bytes. Wrong enrollment codes are limited per client
 * address only: no counter shared by everyone, which would let one
 * attacker lock every valid code out. /metrics answers admin_networks
 * only (loopback when that is unset). Every response carries a strict CSP
 * (no inline script or style) and no-store, nosniff and no-referrer
 * headers.
 */
#include "web_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "halo.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "version.h"

#define WEB_CONN_MEMORY     (32 * 1024) /* per connection: headers + buffers */
#define WEB_PEM_MAX         (256 * 1024)
#define WEB_LIMITER_SLOTS   1024

/* The stylesheet (inline styles are blocked by our own CSP). */
static const char web_css[] =
	"body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;"
	"margin:0;background:#f4f5f7;color:#1d2330;line-height:1.5}\n"
	"main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;"
	"border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}\n"
	"h1{font-size:1.4rem;margin-top:0}\n"
	"dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}\n"
	"dt{font-weight:600}dd{margin:0;word-break:break-all}\n"
	".warn{background:#fff4e5;border-left:4px solid #e8a33d;padding:.6rem 1rem}\n"
	".error{background:#fdecea;border-left:4px solid #d93025;padding:.6rem 1rem}\n"
	".ok{background:#e6f4ea;border-left:4px solid #1e8e3e;padding:.6rem 1rem}\n"
	"input[type=text]{font-size:1.3rem;letter-spacing:.15em;width:11rem;"
	"padding:.3rem .5rem;text-transform:uppercase}\n"
	"button{font-size:1rem;padding:.5rem 1.2rem;border:0;border-radius:4px;"
	"background:#2457c5;color:#fff;cursor:pointer}\n"
	"code{font-size:1.1rem}\n";

static const char *const web_result_names[WEB_R_COUNT] = {
	"started", "ok", "denied", "mismatch", "failed", "bad_code",
	"bad_state", "rate_limited"
};

/* ---------------------------------------------------------------- pure */

/* Cookie NAME from a Cookie header. */
bool
web_cookie_get(const char *header, const char *name, char *out, size_t outsz)
{
	size_t name_len = strlen(name);
	const char *p = header, *end, *value;
	size_t len;

	if (outsz == 0)
		return false;
	out[0] = '\0';
	if (header == NULL || name_len == 0)
		return false;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > name_len && strncmp(p, name, name_len) == 0 &&
		    p[name_len] == '=') {
			value = p + name_len + 1;
			while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (end - value >= 2 && *value == '"' && end[-1] == '"') {
				value++;
				end--;
			}
			len = (size_t)(end - value);
			if (len == 0 || len >= outsz)
				return false;
			memcpy(out, value, len);
			out[len] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

/* Decode LEN bytes of form encoding into OUT; false on any problem. */
static bool
web_form_decode(const char *s, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;
	int hi, lo, c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= len)
				return false;
			hi = util_hex_digit((unsigned char)s[i + 1]);
			lo = util_hex_digit((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= outsz)
			return false;
		out[o++] = (char)c;
	}
	if (outsz == 0)
		return false;
	out[o] = '\0';
	return true;
}

/* Field NAME of a form body. */
bool
web_form_get(const char *body, size_t len, const char *name, char *out,
    size_t outsz)
{
	const char *p = body, *end = body + len, *amp, *eq;
	char key[64];
	bool found = false;

	if (outsz == 0)
		return false;
	out[0] = '\0';
	if (body == NULL || memchr(body, '\0', len) != NULL)
		return false;
	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq != NULL && web_form_decode(p, (size_t)(eq - p), key,
		    sizeof(key)) && strcmp(key, name) == 0) {
			if (found || !web_form_decode(eq + 1,
			    (size_t)(amp - eq - 1), out, outsz)) {
				out[0] = '\0';
				return false;
			}
			found = true;
		}
		p = amp + 1;
	}
	return found;
}

/* Check a callback's state. */
enum web_state
web_state_check(const char *cookie, const char *state,
    const struct store_enroll *e, time_t now)
{
	if (cookie == NULL || *cookie == '\0')
		return WEB_STATE_NO_COOKIE;
	if (state == NULL || !crypto_equal(cookie, state))
		return WEB_STATE_MISMATCH;
	if (e == NULL)
		return WEB_STATE_UNKNOWN;
	if (e->result != NULL || e->verifier_sealed == NULL)
		return WEB_STATE_USED;
	if (e->state_expires <= now)
		return WEB_STATE_EXPIRED;
	return WEB_STATE_OK;
}

/* Name of a state result. */
const char *
web_state_name(enum web_state s)
{
	static const char *const names[] = {
		"ok", "no-cookie", "mismatch", "unknown", "used", "expired"
	};

	if ((unsigned)s < sizeof(names) / sizeof(names[0]))
		return names[s];
	return "invalid";
}

/* May a POST of this Content-Length be read? */
int
web_body_check(const char *content_length, size_t limit)
{
	unsigned long long v = 0;
	const char *s;

	if (content_length == NULL)
		return 0;
	if (*content_length == '\0')
		return 400;
	for (s = content_length; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 400;
		if (v > limit)
			continue;       /* already too large; keep validating */
		v = v * 10 + (unsigned long long)(*s - '0');
	}
	return v > limit ? 413 : 0;
}

struct web_limiter_slot {
	char key[INET6_ADDRSTRLEN + 4];
	time_t start;
	unsigned count;
};

struct web_limiter {
	pthread_mutex_t lock;
	unsigned per_ip, global, window;
	time_t g_start;
	unsigned g_count;
	struct web_limiter_slot slots[WEB_LIMITER_SLOTS];
};

/* A limiter. */
struct web_limiter *
web_limiter_new(unsigned per_ip, unsigned global, unsigned window)
{
	struct web_limiter *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	l->per_ip = per_ip;
	l->global = global;
	l->window = window;
	return l;
}

/* Free a limiter. */
struct web_limiter *
web_limiter_free(struct web_limiter *l)
{
	if (l == NULL)
		return NULL;
	pthread_mutex_destroy(&l->lock);
	free(l);
	return NULL;
}

/* The slot of KEY (lock held); with CREATE, take a free or the oldest. */
static struct web_limiter_slot *
web_limiter_slot(struct web_limiter *l, const char *key, time_t now,
    bool create)
{
	struct web_limiter_slot *s, *victim = NULL;
	size_t i;

	for (i = 0; i < WEB_LIMITER_SLOTS; i++) {
		s = &l->slots[i];
		if (s->key[0] != '\0' && strcmp(s->key, key) == 0) {
			if (now - s->start >= (time_t)l->window) {
				s->start = now;
				s->count = 0;
			}
			return s;
		}
		/* a free slot, else the one whose window began first */
		if (victim == NULL || (victim->key[0] != '\0' &&
		    (s->key[0] == '\0' || s->start < victim->start)))
			victim = s;
	}
	if (!create || victim == NULL)
		return NULL;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->start = now;
	victim->count = 0;
	return victim;
}

/* Start a new global window when the old one is over (lock held). */
static void
web_limiter_roll(struct web_limiter *l, time_t now)
{
	if (now - l->g_start >= (time_t)l->window) {
		l->g_start = now;
		l->g_count = 0;
	}
}

/* Is CLIENT (or everyone) over the limit? */
bool
web_limiter_blocked(struct web_limiter *l, const char *client, time_t now)
{
	struct web_limiter_slot *s;
	bool blocked;

	pthread_mutex_lock(&l->lock);
	web_limiter_roll(l, now);
	blocked = l->global > 0 && l->g_count >= l->global;
	if (!blocked && (s = web_limiter_slot(l, client, now, false)) != NULL)
		blocked = s->count >= l->per_ip;
	pthread_mutex_unlock(&l->lock);
	return blocked;
}

/* Count a failure of CLIENT. */
void
web_limiter_fail(struct web_limiter *l, const char *client, time_t now)
{
	struct web_limiter_slot *s;

	pthread_mutex_lock(&l->lock);
	web_limiter_roll(l, now);
	l->g_count++;
	if ((s = web_limiter_slot(l, client, now, true)) != NULL)
		s->count++;
	pthread_mutex_unlock(&l->lock);
}

/* The limiter key of an address: IPv4 as is, IPv6 by its /64. */
void
web_client_key(const char *ip, char *out, size_t outsz)
{
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];

	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, &a6) != 1) {
		snprintf(out, outsz, "%s", ip);
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text));
		snprintf(out, outsz, "%s", text);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	inet_ntop(AF_INET6, &a6, text, sizeof(text));
	snprintf(out, outsz, "%s/64", text);
}

/* Append S as is. */
void
web_buf_add(struct web_buf *b, const char *s)
{
	util_buf_add(&b->u, s, strlen(s));
}

/* Append formatted text (the caller escapes what it passes). */
void
web_buf_printf(struct web_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->u.oom = true;
		return;
	}
	if (!util_buf_reserve(&b->u, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->u.s + b->u.len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->u.len += (size_t)n;
}

/* Append S HTML-escaped. */
void
web_buf_escape(struct web_buf *b, const char *s)
{
	char one[2] = { 0, 0 };

	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': web_buf_add(b, "&amp;"); break;
		case '<': web_buf_add(b, "&lt;"); break;
		case '>': web_buf_add(b, "&gt;"); break;
		case '"': web_buf_add(b, "&quot;"); break;
		case '\'': web_buf_add(b, "&#39;"); break;
		default:
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				break;
			one[0] = *s;
			web_buf_add(b, one);
		}
	}
}

/* Hand out the text. */
char *
web_buf_take(struct web_buf *b, size_t *len)
{
	char *out = NULL;

	if (util_buf_reserve(&b->u, 0)) {
		out = b->u.s;
		*len = b->u.len;
		out[b->u.len] = '\0';
		b->u.s = NULL;
	}
	web_buf_clear(b);
	return out;
}

/* Free and reset. */
void
web_buf_clear(struct web_buf *b)
{
	util_buf_clear(&b->u);
	b->u.oom = false;
}

/* "scheme://host[:port]" of a URL. */
char *
web_origin(const char *url)
{
	const char *sep, *host, *end, *at;
	char *out;
	size_t i, n;

	if (url == NULL || (sep = strstr(url, "://")) == NULL || sep == url)
		return NULL;
	host = sep + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at != NULL)
		host = at + 1;
	if (end == host)
		return NULL;
	n = (size_t)(sep - url) + 3 + (size_t)(end - host);
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < (size_t)(sep - url); i++)
		out[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] + 32 : url[i]);
	memcpy(out + i, "://", 3);
	memcpy(out + i + 3, host, (size_t)(end - host));
	out[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] <= 0x20 || out[i] == ';' || out[i] == '\'' ||
		    out[i] == '"' || out[i] == ',') {
			free(out);
			return NULL;    /* nothing that could break the CSP */
		}
	return out;
}

/* ---------------------------------------------------------------- server */

/* Count an enrollment outcome. */
void
web_count(struct web *w, enum web_result r)
{
	pthread_mutex_lock(&w->lock);
	w->counts[r]++;
	pthread_mutex_unlock(&w->lock);
}

/* The client's address as text ("?" when unknown). */
static void
web_client_ip(struct MHD_Connection *c, char *out, size_t outsz)
{
	const union MHD_ConnectionInfo *ci;
	socklen_t len;

	snprintf(out, outsz, "?");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	len = ci->client_addr->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, len, out, (socklen_t)outsz, NULL, 0,
	    NI_NUMERICHOST) != 0)
		snprintf(out, outsz, "?");
}

/* A response with our headers (web_int.h). */
struct MHD_Response *
web_response(struct web *w, const char *ctype, char *body, size_t len,
    const char *csp, bool cacheable)
{
	struct MHD_Response *r;

	if (body == NULL)
		len = 0;
	r = MHD_create_response_from_buffer(len, body != NULL ? body : (void *)"",
	    body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		free(body);
		return NULL;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "Content-Security-Policy",
	    csp != NULL ? csp : w->csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (csp == NULL)
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cacheable ?
	    "public, max-age=3600" : "no-store");
	if (w->tls)
		MHD_add_response_header(r, "Strict-Transport-Security",
		    "max-age=31536000");
	return r;
}

/* Queue and release. */
enum MHD_Result
web_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* Queue a response with our headers, LOCATION and COOKIE. */
enum MHD_Result
web_respond(struct web *w, struct MHD_Connection *c, unsigned status,
    const char *ctype, char *body, size_t len, const char *location,
    const char *cookie, bool cacheable)
{
	struct MHD_Response *r;

	r = web_response(w, ctype, body, len, NULL, cacheable);
	if (r == NULL)
		return MHD_NO;
	if (location != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
	if (cookie != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	return web_queue(c, status, r);
}

/* A whole page: TITLE and BODY (HTML, escaped by the caller; taken over).
 * ROOT leads back to the site root from the page's URL ("" or "../"), so
 * the pages work under a path prefix behind a proxy. */
enum MHD_Result
web_page(struct web *w, struct MHD_Connection *c, unsigned status,
    const char *root, const char *title, struct web_buf *body,
    const char *cookie)
{
	struct web_buf page = { 0 };
	char *text;
	size_t len = 0;

	web_buf_add(&page, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" content=\""
	    "width=device-width, initial-scale=1\"><title>");
	web_buf_escape(&page, title);
	web_buf_printf(&page, " - halo-milter</title><link rel=\"stylesheet\""
	    " href=\"%sstatic/enroll.css\"></head>\n<body><main><h1>", root);
	web_buf_escape(&page, title);
	web_buf_add(&page, "</h1>\n");
	if (body->u.s != NULL && !body->u.oom)
		web_buf_add(&page, body->u.s);
	else if (body->u.oom)
		page.u.oom = true;
	web_buf_add(&page, "</main></body></html>\n");
	web_buf_clear(body);
	text = web_buf_take(&page, &len);
	if (text == NULL)
		return web_respond(w, c, MHD_HTTP_INTERNAL_SERVER_ERROR, WEB_CT_TEXT,
		    NULL, 0, NULL, NULL, false);
	return web_respond(w, c, status, WEB_CT_HTML, text, len, NULL, cookie,
	    false);
}

/* A page with one message paragraph of class CLASS and a way back. */
enum MHD_Result
web_message(struct web *w, struct MHD_Connection *c, unsigned status,
    const char *root, const char *title, const char *class,
    const char *message, bool offer_restart, const char *cookie)
{
	struct web_buf body = { 0 };

	web_buf_printf(&body, "<p class=\"%s\">", class);
	web_buf_escape(&body, message);
	web_buf_add(&body, "</p>\n");
	if (offer_restart)
		web_buf_printf(&body, "<p><a href=\"%senroll\">Enter a code"
		    "</a></p>\n", root);
	return web_page(w, c, status, root, title, &body, cookie);
}

/* The form asking for a code (with an optional error above it). */
static enum MHD_Result
web_code_form(struct web *w, struct MHD_Connection *c, unsigned status,
    const char *error)
{
	struct web_buf body = { 0 };

	if (error != NULL) {
		web_buf_add(&body, "<p class=\"error\">");
		web_buf_escape(&body, error);
		web_buf_add(&body, "</p>\n");
	}
	web_buf_add(&body, "<p>Type the one-time code your administrator gave"
	    " you. It looks like <code>BCDF-GHJK</code>.</p>\n"
	    "<form method=\"get\" action=\"enroll\">"
	    "<p><label for=\"code\">Code</label><br>"
	    "<input type=\"text\" id=\"code\" name=\"code\" maxlength=\"20\""
	    " autocomplete=\"off\" autocapitalize=\"characters\" spellcheck="
	    "\"false\" required autofocus></p>"
	    "<p><button type=\"submit\">Continue</button></p></form>\n");
	return web_page(w, c, status, "", "Enroll in halo-milter", &body, NULL);
}

/* Why a code cannot be used, or NULL when it can (E found, at NOW). */
static const char *
web_code_problem(const struct store_enroll *e, time_t now, unsigned *status)
{
	*status = MHD_HTTP_GONE;
	if (e->used || e->result != NULL)
		return "This code was already used. Codes work once: ask your"
		    " administrator for a new one.";
	if (e->expires <= now)
		return "This code has expired (codes are valid for 10 minutes)."
		    " Ask your administrator for a new one.";
	return NULL;
}

/*
 * Look up a typed code for CLIENT: on success *OUT is the enrollment and
 * NULL is returned; otherwise the message to show (and *STATUS), with the
 * failure counted against CLIENT.
 */
static const char *
web_code_lookup(struct web *w, const struct conf *conf, const char *client, const char *typed,
    time_t now, struct store_enroll **out, unsigned *status)
{
	char hash[65];
	const char *problem;
	enum store_status ss;

	*out = NULL;
	if (enroll_code_hash(w->hash_key, typed, hash) != 0) {
		*status = MHD_HTTP_BAD_REQUEST;
		problem = "That is not a valid code: it has 8 letters, like"
		    " BCDF-GHJK.";
		goto fail;
	}
	ss = store_enroll_by_code(w->store, hash, out);
	if (ss == STORE_ERROR) {
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return "The gateway cannot read its database; try again later.";
	}
	if (ss == STORE_NOT_FOUND) {
		*status = MHD_HTTP_NOT_FOUND;
		problem = "This code is not known. Check it, or ask your"
		    " administrator for a new one.";
		goto fail;
	}
	problem = web_code_problem(*out, now, status);
	if (problem == NULL && conf_tenant_find(conf, (*out)->tenant) == NULL) {
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		problem = "This code is for a Halo tenant this gateway no longer"
		    " serves.";
	}
	if (problem == NULL)
		return NULL;
	*out = store_enroll_free(*out);
fail:
	web_limiter_fail(w->limiter, client, now);
	web_count(w, WEB_R_BAD_CODE);
	log_notice("enroll: refused a code from %s (%s)", client,
	    *status == MHD_HTTP_GONE ? "used or expired" :
	    *status == MHD_HTTP_NOT_FOUND ? "unknown" : "malformed");
	return problem;
}

/* Enrollment is possible only with a public URL. */
static enum MHD_Result
web_not_configured(struct web *w, struct MHD_Connection *c, const char *root)
{
	return web_message(w, c, MHD_HTTP_SERVICE_UNAVAILABLE, root,
	    "Enrollment is not set up", "error", "This gateway has no"
	    " public_url configured, so it cannot send you to Halo and back."
	    " Tell your administrator.", false, NULL);
}

/* 429 for a client over the wrong-code limit. */
static enum MHD_Result
web_too_many(struct web *w, struct MHD_Connection *c, const char *client,
    const char *root)
{
	web_count(w, WEB_R_RATE_LIMITED);
	log_notice("enroll: %s is over the wrong-code limit", client);
	return web_message(w, c, MHD_HTTP_TOO_MANY_REQUESTS, root,
	    "Too many attempts", "error", "Too many wrong codes were tried."
	    " Wait ten minutes, then try again with the code you were given.",
	    false, NULL);
}

/* GET /enroll and GET /enroll?code=: the form, or the confirmation. */
static enum MHD_Result
web_enroll_get(struct web *w, const struct conf *conf,
    struct MHD_Connection *c, const char *client)
{
	const char *typed = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "code");
	const struct conf_tenant *t;
	struct store_enroll *e = NULL;
	struct web_buf body = { 0 };
	const char *problem;
	char norm[9], shown[10];
	unsigned status;
	time_t now = time(NULL);
	long left;

	if (w->redirect_uri == NULL)
		return web_not_configured(w, c, "");
	if (typed == NULL || *typed == '\0')
		return web_code_form(w, c, MHD_HTTP_OK, NULL);
	if (web_limiter_blocked(w->limiter, client, now))
		return web_too_many(w, c, client, "");
	problem = web_code_lookup(w, conf, client, typed, now, &e, &status);
	if (problem != NULL)
		return web_code_form(w, c, status, problem);
	crypto_user_code_normalize(typed, norm);
	enroll_code_format(norm, shown);
	t = conf_tenant_find(conf, e->tenant);
	left = (long)(e->expires - now);
	web_buf_add(&body, "<p>You are about to let this mail gateway log mail"
	    " into HaloPSA <strong>under your name</strong>.</p>\n<dl>"
	    "<dt>Agent</dt><dd>");
	web_buf_escape(&body, e->agent);
	web_buf_add(&body, "</dd><dt>Halo</dt><dd>");
	web_buf_escape(&body, t->halo_url);
	web_buf_add(&body, " (tenant ");
	web_buf_escape(&body, e->tenant);
	web_buf_add(&body, ")</dd><dt>Gateway</dt><dd>");
	web_buf_escape(&body, w->conf->public_url);
	web_buf_add(&body, "</dd><dt>Code</dt><dd>");
	web_buf_escape(&body, shown);
	web_buf_printf(&body, " (valid for %ld more minute%s)</dd></dl>\n",
	    (left + 59) / 60, (left + 59) / 60 == 1 ? "" : "s");
	web_buf_add(&body, "<p class=\"warn\"><strong>Continue only if you asked"
	    " for this yourself.</strong> If someone sent you this code or link"
	    " and you did not expect it, stop here and tell your administrator:"
	    " signing in would give this gateway access to Halo as you.</p>\n"
	    "<p>Next you sign in to Halo as <strong>");
	web_buf_escape(&body, e->agent);
	web_buf_add(&body, "</strong>. Your password goes to Halo only, never to"
	    " this gateway.</p>\n<form method=\"post\" action=\"enroll/start\">"
	    "<input type=\"hidden\" name=\"code\" value=\"");
	web_buf_escape(&body, shown);
	web_buf_add(&body, "\"><p><button type=\"submit\">Continue to Halo sign-in"
	    "</button></p></form>\n");
	crypto_wipe(norm, sizeof(norm));
	crypto_wipe(shown, sizeof(shown));
	store_enroll_free(e);
	return web_page(w, c, MHD_HTTP_OK, "", "Confirm enrollment", &body, NULL);
}

/* A cross-site POST (a browser's Origin not ours) is refused. */
bool
web_origin_ok(struct web *w, struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Origin");
	char *ours;
	bool ok;

	if (origin == NULL)
		return true;        /* not a browser, or a very old one */
	/* our Referrer-Policy (no-referrer) makes browsers send "Origin: null"
	 * even for our own forms; Sec-Fetch-Site, which no page can forge,
	 * then tells whether the form was ours */
	if (strcmp(origin, "null") == 0) {
		const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    "Sec-Fetch-Site");

		return site != NULL && strcmp(site, "same-origin") == 0;
	}
	ours = web_origin(w->conf->public_url);
	ok = ours != NULL && strcasecmp(ours, origin) == 0;
	free(ours);
	return ok;
}

/* The Set-Cookie value binding STATE (NULL STATE: delete the cookie). */
static void
web_cookie(const struct web *w, const char *state, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s",
	    w->cookie_name, state != NULL ? state : "",
	    state != NULL ? WEB_STATE_TTL : 0, w->https_public ? "; Secure" : "");
}

/* POST /enroll/start: consume the code, send the browser to Halo. */
static enum MHD_Result
web_enroll_start(struct web *w, const struct conf *conf,
    struct MHD_Connection *c, const char *client,
    struct web_req *rq)
{
	const struct conf_tenant *t;
	struct store_enroll *e = NULL;
	struct halo_conf hc;
	uint8_t raw[32];
	char typed[ENROLL_TYPED_MAX + 1], verifier[44], challenge[44];
	char state_hash[65], cookie[256], aad[96], *state = NULL;
	char *sealed = NULL, *url = NULL;
	const char *problem;
	unsigned status;
	time_t now = time(NULL);
	enum MHD_Result rc;
	enum store_status ss;

	if (w->redirect_uri == NULL)
		return web_not_configured(w, c, "../");
	if (!web_origin_ok(w, c))
		return web_message(w, c, MHD_HTTP_FORBIDDEN, "../", "Refused",
		    "error", "This form was sent from another site.", true, NULL);
	if (web_limiter_blocked(w->limiter, client, now))
		return web_too_many(w, c, client, "../");
	if (!web_form_get(rq->body, rq->len, "code", typed, sizeof(typed)))
		typed[0] = '\0';
	problem = web_code_lookup(w, conf, client, typed, now, &e, &status);
	crypto_wipe(typed, sizeof(typed));
	if (problem != NULL)
		return web_message(w, c, status, "../", "Cannot enroll", "error",
		    problem, true, NULL);
	t = conf_tenant_find(conf, e->tenant);
	halo_conf_tenant(&hc, t);
	if (crypto_pkce_verifier(verifier) != 0 ||
	    crypto_pkce_challenge(verifier, challenge) != 0 ||
	    crypto_random(raw, sizeof(raw)) != 0 ||
	    (state = crypto_b64url_encode(raw, sizeof(raw))) == NULL ||
	    enroll_state_hash(w->hash_key, state, state_hash) != 0 ||
	    oauth_verifier_aad(state_hash, aad, sizeof(aad)) == 0 ||
	    crypto_seal(w->seal_key, aad, strlen(aad), verifier, strlen(verifier),
	    &sealed) != 0 ||
	    (url = halo_authorize_url(&hc, w->redirect_uri, t->halo_scope, state,
	    challenge)) == NULL) {
		web_count(w, WEB_R_FAILED);
		rc = web_message(w, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "../",
		    "Cannot enroll", "error", "The gateway could not prepare the"
		    " sign-in. Try again.", true, NULL);
		goto out;
	}
	ss = store_enroll_start(w->store, e->id, now, state_hash, sealed,
	    now + WEB_STATE_TTL);
	if (ss != STORE_OK) {
		rc = web_message(w, c, ss == STORE_NOT_FOUND ? MHD_HTTP_GONE :
		    MHD_HTTP_SERVICE_UNAVAILABLE, "../", "Cannot enroll", "error",
		    ss == STORE_NOT_FOUND ? "This code was just used or has"
		    " expired. Ask your administrator for a new one." :
		    "The gateway cannot write its database; try again later.",
		    true, NULL);
		goto out;
	}
	web_count(w, WEB_R_STARTED);
	log_info("enroll: %s/%s: sign-in started from %s (enrollment %lld)",
	    e->tenant, e->agent, client, (long long)e->id);
	web_cookie(w, state, cookie, sizeof(cookie));
	rc = web_respond(w, c, MHD_HTTP_FOUND, WEB_CT_TEXT, NULL, 0, url, cookie,
	    false);
	crypto_wipe(cookie, sizeof(cookie));
out:
	crypto_wipe(verifier, sizeof(verifier));
	crypto_wipe(raw, sizeof(raw));
	if (state != NULL)
		crypto_free_secret(state, strlen(state));
	free(sealed);
	if (url != NULL)
		crypto_free_secret(url, strlen(url));
	store_enroll_free(e);
	return rc;
}

/* Page for a callback whose state does not check out. */
static enum MHD_Result
web_state_page(struct web *w, struct MHD_Connection *c, enum web_state s,
    const char *client)
{
	static const char *const why[] = {
		[WEB_STATE_NO_COOKIE] = "This browser did not start this sign-in"
		    " (its enrollment cookie is missing). Open the enrollment"
		    " link again in the browser you use now, and finish in the"
		    " same browser.",
		[WEB_STATE_MISMATCH] = "This sign-in does not belong to the"
		    " enrollment this browser started. Nothing was stored."
		    " Start again from your enrollment link.",
		[WEB_STATE_UNKNOWN] = "This sign-in is not known to the gateway."
		    " Nothing was stored. Start again from your enrollment link.",
		[WEB_STATE_USED] = "This sign-in was already completed or"
		    " cancelled. Ask your administrator for a new code if you"
		    " still need to enroll.",
		[WEB_STATE_EXPIRED] = "This sign-in took too long and has"
		    " expired. Ask your administrator for a new code.",
	};

	web_count(w, WEB_R_BAD_STATE);
	log_notice("enroll: callback from %s refused: %s", client,
	    web_state_name(s));
	return web_message(w, c, s == WEB_STATE_USED || s == WEB_STATE_EXPIRED ?
	    MHD_HTTP_GONE : MHD_HTTP_BAD_REQUEST, "../", "Enrollment failed",
	    "error", (unsigned)s < sizeof(why) / sizeof(why[0]) && why[s] != NULL ?
	    why[s] : why[WEB_STATE_UNKNOWN], true, NULL);
}

/* GET /enroll/callback?code=&state= (or ?error=&state=). */
static enum MHD_Result
web_enroll_callback(struct web *w, const struct conf *conf,
    struct MHD_Connection *c,
    const char *client)
{
	const char *state = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "state");
	const char *code = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "code");
	const char *error = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
	    "error");
	const char *cookies = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_COOKIE);
	const struct conf_tenant *t;
	struct store_enroll *e = NULL;
	struct halo_conf hc;
	struct halo_tokens tok;
	struct halo_agent me;
	struct halo_err herr;
	struct web_buf body = { 0 };
	char cookie_state[ENROLL_STATE_MAX + 1], state_hash[65], aad[96];
	char clear[160], message[400], why[LOG_CLEAN_MAX + 1], *sealed = NULL;
	uint8_t *verifier = NULL;
	size_t verifier_len = 0;
	enum web_state ws;
	enum store_status ss;
	enum MHD_Result rc;
	time_t now = time(NULL);
	const char *result = "failed";

	memset(&tok, 0, sizeof(tok));
	memset(&me, 0, sizeof(me));
	state_hash[0] = cookie_state[0] = '\0';
	if (w->redirect_uri == NULL)
		return web_not_configured(w, c, "../");
	if (!web_cookie_get(cookies, w->cookie_name, cookie_state,
	    sizeof(cookie_state)))
		ws = web_state_check(NULL, state, NULL, now);
	else
		ws = web_state_check(cookie_state, state, NULL, now);
	if (ws == WEB_STATE_UNKNOWN) {
		if (enroll_state_hash(w->hash_key, state, state_hash) != 0)
			ss = STORE_NOT_FOUND;
		else
			ss = store_enroll_by_state(w->store, state_hash, &e);
		if (ss == STORE_ERROR)
			return web_message(w, c, MHD_HTTP_SERVICE_UNAVAILABLE, "../",
			    "Enrollment failed", "error", "The gateway cannot read"
			    " its database; try again later.", false, NULL);
		ws = web_state_check(cookie_state, state, e, now);
	}
	crypto_wipe(cookie_state, sizeof(cookie_state));
	if (ws != WEB_STATE_OK) {
		store_enroll_free(e);
		return web_state_page(w, c, ws, client);
	}
	/* one time: whoever takes the verifier first owns this sign-in */
	ss = store_enroll_take(w->store, e->id, now, &sealed);
	if (ss != STORE_OK) {
		store_enroll_free(e);
		return web_state_page(w, c, WEB_STATE_USED, client);
	}
	web_cookie(w, NULL, clear, sizeof(clear));
	t = conf_tenant_find(conf, e->tenant);
	if (t == NULL) {
		snprintf(message, sizeof(message), "This enrollment is for a Halo"
		    " tenant this gateway no longer serves.");
		goto failed;
	}
	halo_conf_tenant(&hc, t);
	if (error != NULL) {
		if (strcmp(error, "access_denied") == 0) {
			result = "denied";
			snprintf(message, sizeof(message), "You declined at Halo."
			    " Nothing was stored; this gateway will not log mail"
			    " as you.");
		} else {
			char safe[65];

			log_clean(error, strlen(error), safe, sizeof(safe));
			snprintf(message, sizeof(message), "Halo did not complete"
			    " the sign-in (%s). Nothing was stored.", safe);
		}
		goto failed;
	}
	if (code == NULL || *code == '\0' || strlen(code) > WEB_AUTH_CODE_MAX) {
		snprintf(message, sizeof(message), "Halo sent no usable"
		    " authorization code. Nothing was stored.");
		goto failed;
	}
	if (oauth_verifier_aad(state_hash, aad, sizeof(aad)) == 0 ||
	    crypto_open(w->seal_key, aad, strlen(aad), sealed, &verifier,
	    &verifier_len) != 0) {
		snprintf(message, sizeof(message), "The gateway could not read"
		    " back its own sign-in data. Nothing was stored.");
		goto failed;
	}
	if (halo_token_from_code(&hc, code, (const char *)verifier,
	    w->redirect_uri, &tok, &herr) != 0) {
		log_clean(herr.message, sizeof(herr.message), why, sizeof(why));
		log_warnx("enroll: %s/%s: Halo refused the code exchange: %s: %s",
		    e->tenant, e->agent, http_result_name(herr.kind), why);
		snprintf(message, sizeof(message), "Halo did not accept the"
		    " sign-in (%s). Nothing was stored.", why);
		goto failed;
	}
	if (tok.refresh_token == NULL) {
		snprintf(message, sizeof(message), "Halo issued no refresh token"
		    " (the application must allow offline_access). Nothing was"
		    " stored.");
		goto failed;
	}
	if (halo_agent_me(&hc, tok.access_token, &me, &herr) != 0) {
		log_clean(herr.message, sizeof(herr.message), why, sizeof(why));
		log_warnx("enroll: %s/%s: Agent/me failed: %s: %s", e->tenant,
		    e->agent, http_result_name(herr.kind), why);
		snprintf(message, sizeof(message), "Halo did not say who signed"
		    " in (%s). Nothing was stored.", why);
		goto failed;
	}
	if (me.email == NULL || strcasecmp(me.email, e->agent) != 0) {
		char who[128];

		result = "mismatch";
		log_safe(me.email != NULL && *me.email != '\0' ? me.email :
		    "an agent without an address", who, sizeof(who));
		log_notice("enroll: %s/%s: refused: %s signed in instead",
		    e->tenant, e->agent, who);
		snprintf(message, sizeof(message), "You signed in to Halo as %s,"
		    " but this enrollment is for %s. Nothing was stored. Sign out"
		    " of Halo (or use a private window) and start again with a new"
		    " code.", who, e->agent);
		goto failed;
	}
	if (me.disabled) {
		snprintf(message, sizeof(message), "Your Halo account is disabled."
		    " Nothing was stored.");
		goto failed;
	}
	if (oauth_import(w->oauth, e->tenant, e->agent, tok.refresh_token) != 0) {
		log_warnx("enroll: %s/%s: cannot store the token", e->tenant,
		    e->agent);
		snprintf(message, sizeof(message), "The gateway could not store"
		    " your token. Try again later.");
		goto failed;
	}
	store_enroll_finish(w->store, e->id, "ok");
	web_count(w, WEB_R_OK);
	log_info("enroll: %s/%s: enrolled (signed in from %s)", e->tenant,
	    e->agent, client);
	web_buf_add(&body, "<p class=\"ok\">Done. Mail for <strong>");
	web_buf_escape(&body, e->agent);
	web_buf_add(&body, "</strong> is now logged to Halo (");
	web_buf_escape(&body, t->halo_url);
	web_buf_add(&body, ") under your name.</p>\n<p>You can close this"
	    " window. To stop it, ask your administrator to revoke your"
	    " enrollment.</p>\n");
	rc = web_page(w, c, MHD_HTTP_OK, "../", "Enrolled", &body, clear);
	goto out;
failed:
	store_enroll_finish(w->store, e->id, result);
	web_count(w, strcmp(result, "denied") == 0 ? WEB_R_DENIED :
	    strcmp(result, "mismatch") == 0 ? WEB_R_MISMATCH : WEB_R_FAILED);
	if (strcmp(result, "failed") == 0)
		log_notice("enroll: %s/%s: failed", e->tenant, e->agent);
	else if (strcmp(result, "denied") == 0)
		log_notice("enroll: %s/%s: declined at Halo", e->tenant, e->agent);
	rc = web_message(w, c, strcmp(result, "failed") == 0 ? MHD_HTTP_BAD_GATEWAY :
	    MHD_HTTP_FORBIDDEN, "../", strcmp(result, "denied") == 0 ?
	    "Enrollment cancelled" : "Enrollment failed", "error", message, false,
	    clear);
out:
	crypto_free_secret(verifier, verifier_len);
	if (sealed != NULL)
		crypto_free_secret(sealed, strlen(sealed));
	halo_tokens_clear(&tok);
	halo_agent_clear(&me);
	store_enroll_free(e);
	return rc;
}

/* GET /healthz: 200 when the store answers. */
static enum MHD_Result
web_healthz(struct web *w, struct MHD_Connection *c)
{
	bool ok = store_schema_version(w->store) > 0;
	char *body = strdup(ok ? "ok\n" : "store unavailable\n");

	return web_respond(w, c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
	    WEB_CT_TEXT, body, body != NULL ? strlen(body) : 0, NULL, NULL, false);
}

/* Append S as a Prometheus label value: backslash, double quote and
 * newline escaped (text format 0.0.4). */
static void
web_buf_label(struct web_buf *b, const char *s)
{
	char one[2] = { 0, 0 };

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\': web_buf_add(b, "\\\\"); break;
		case '"': web_buf_add(b, "\\\""); break;
		case '\n': web_buf_add(b, "\\n"); break;
		default: one[0] = *s; web_buf_add(b, one); break;
		}
	}
}

/* One tenant's jobs per state, for halo_milter_tenant_jobs. */
struct web_tenant_jobs {
	char *tenant;
	uint64_t jobs[STORE_STATE_COUNT];
};
struct web_tenant_list {
	struct web_tenant_jobs *v;
	size_t n;
	bool failed;
};

/* The entry for TENANT in L, added (all zero) when missing; NULL when
 * memory ran out. */
static struct web_tenant_jobs *
web_tenant_entry(struct web_tenant_list *l, const char *tenant)
{
	struct web_tenant_jobs *v;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].tenant, tenant) == 0)
			return &l->v[i];
	if ((v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
		l->failed = true;
		return NULL;
	}
	l->v = v;
	memset(&v[l->n], 0, sizeof(v[0]));
	if ((v[l->n].tenant = strdup(tenant)) == NULL) {
		l->failed = true;
		return NULL;
	}
	return &v[l->n++];
}

/* store_job_counts_by_tenant() callback. */
static void
web_tenant_count(const char *tenant, enum store_state state, uint64_t count,
    void *arg)
{
	struct web_tenant_jobs *e = web_tenant_entry(arg, tenant);

	if (e != NULL)
		e->jobs[state] = count;
}

/* Append histogram H in text format. */
static void
web_metrics_hist(struct web_buf *b, enum metrics_hist h)
{
	struct metrics_snapshot ms;
	size_t i;

	metrics_read(h, &ms);
	web_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", ms.name,
	    ms.help, ms.name);
	for (i = 0; i < ms.n; i++)
		web_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", ms.name,
		    ms.le[i], (unsigned long long)ms.cum[i]);
	web_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n"
	    "%s_count %llu\n", ms.name, (unsigned long long)ms.count, ms.name,
	    ms.sum, ms.name, (unsigned long long)ms.count);
}

/* Append the store's gauges: jobs per state in all, per tenant and state
 * (every configured tenant, and any other the store holds jobs of), and
 * the age of the oldest queued job. False when the store did not answer. */
static bool
web_metrics_store(struct web *w, struct web_buf *b)
{
	struct web_tenant_list tl = { 0 };
	uint64_t jobs[STORE_STATE_COUNT];
	time_t oldest = 0, now = time(NULL);
	size_t i;
	int s;

	if (store_job_counts(w->store, jobs) != STORE_OK)
		return false;
	web_buf_add(b, "# HELP halo_milter_jobs Jobs in the store, by"
	    " state.\n# TYPE halo_milter_jobs gauge\n");
	for (s = 0; s < STORE_STATE_COUNT; s++)
		web_buf_printf(b, "halo_milter_jobs{state=\"%s\"} %llu\n",
		    store_state_name((enum store_state)s),
		    (unsigned long long)jobs[s]);
	for (i = 0; i < w->conf->n_tenants; i++)
		web_tenant_entry(&tl, w->conf->tenants[i]->name);
	if (store_job_counts_by_tenant(w->store, web_tenant_count, &tl) ==
	    STORE_OK && !tl.failed) {
		web_buf_add(b, "# HELP halo_milter_tenant_jobs Jobs in the"
		    " store, by tenant and state.\n"
		    "# TYPE halo_milter_tenant_jobs gauge\n");
		for (i = 0; i < tl.n; i++)
			for (s = 0; s < STORE_STATE_COUNT; s++) {
				web_buf_add(b, "halo_milter_tenant_jobs{tenant=\"");
				web_buf_label(b, tl.v[i].tenant);
				web_buf_printf(b, "\",state=\"%s\"} %llu\n",
				    store_state_name((enum store_state)s),
				    (unsigned long long)tl.v[i].jobs[s]);
			}
	}
	for (i = 0; i < tl.n; i++)
		free(tl.v[i].tenant);
	free(tl.v);
	if (store_job_oldest_queued(w->store, &oldest) == STORE_OK)
		web_buf_printf(b, "# HELP halo_milter_oldest_queued_job_age_seconds"
		    " Age of the oldest queued job (0 when none is queued).\n"
		    "# TYPE halo_milter_oldest_queued_job_age_seconds gauge\n"
		    "halo_milter_oldest_queued_job_age_seconds %lld\n",
		    oldest > 0 && now > oldest ? (long long)(now - oldest) : 0LL);
	return true;
}

/* GET /metrics: Prometheus text format. */
static enum MHD_Result
web_metrics(struct web *w, struct MHD_Connection *c)
{
	struct web_buf b = { 0 };
	struct oauth_stats os;
	uint64_t counts[WEB_R_COUNT], halo[HTTP_RESULT_COUNT], cut_off;
	uint64_t refused;
	bool have_jobs;
	char *text;
	size_t len = 0;
	int i;

	oauth_stats(w->oauth, &os);
	pthread_mutex_lock(&w->lock);
	memcpy(counts, w->counts, sizeof(counts));
	pthread_mutex_unlock(&w->lock);
	web_buf_add(&b, "# HELP halo_milter_build_info The running build (value"
	    " 1).\n# TYPE halo_milter_build_info gauge\n"
	    "halo_milter_build_info{version=\"" HALO_MILTER_VERSION "\"} 1\n");
	have_jobs = web_metrics_store(w, &b);
	web_buf_printf(&b, "# HELP halo_milter_store_up Whether the store"
	    " answered.\n# TYPE halo_milter_store_up gauge\n"
	    "halo_milter_store_up %d\n", have_jobs ? 1 : 0);
	web_buf_printf(&b,
	    "# HELP halo_milter_token_refreshes_total Refresh-token grants sent"
	    " to Halo.\n# TYPE halo_milter_token_refreshes_total counter\n"
	    "halo_milter_token_refreshes_total %llu\n"
	    "# HELP halo_milter_token_refresh_failures_total Refreshes that"
	    " failed (to be retried).\n"
	    "# TYPE halo_milter_token_refresh_failures_total counter\n"
	    "halo_milter_token_refresh_failures_total %llu\n"
	    "# HELP halo_milter_token_rotations_total Refresh tokens Halo"
	    " rotated.\n# TYPE halo_milter_token_rotations_total counter\n"
	    "halo_milter_token_rotations_total %llu\n"
	    "# HELP halo_milter_token_invalid_grants_total Refresh tokens Halo"
	    " refused (agent must re-enroll).\n"
	    "# TYPE halo_milter_token_invalid_grants_total counter\n"
	    "halo_milter_token_invalid_grants_total %llu\n",
	    (unsigned long long)os.refreshes,
	    (unsigned long long)os.refresh_failures,
	    (unsigned long long)os.rotations,
	    (unsigned long long)os.invalid_grants);
	http_counts_get(halo);
	web_buf_add(&b, "# HELP halo_milter_halo_requests_total Requests to Halo"
	    " (API and auth server), by result.\n"
	    "# TYPE halo_milter_halo_requests_total counter\n");
	for (i = 0; i < HTTP_RESULT_COUNT; i++)
		web_buf_printf(&b, "halo_milter_halo_requests_total{result=\"%s\"}"
		    " %llu\n", http_result_name((enum http_result)i),
		    (unsigned long long)halo[i]);
	web_buf_add(&b, "# HELP halo_milter_enrollments_total Enrollment steps,"
	    " by result.\n# TYPE halo_milter_enrollments_total counter\n");
	for (i = 0; i < WEB_R_COUNT; i++)
		web_buf_printf(&b, "halo_milter_enrollments_total{result=\"%s\"}"
		    " %llu\n", web_result_names[i], (unsigned long long)counts[i]);
	pthread_mutex_lock(&w->conn_lock);
	cut_off = w->cut_off;
	refused = w->refused_per_ip;
	pthread_mutex_unlock(&w->conn_lock);
	web_buf_printf(&b, "# HELP halo_milter_web_cut_off_total Web connections"
	    " closed because a request took longer than web_request_timeout to"
	    " arrive.\n# TYPE halo_milter_web_cut_off_total counter\n"
	    "halo_milter_web_cut_off_total %llu\n"
	    "# HELP halo_milter_web_refused_total Web connections refused because"
	    " their client held web_connections_per_ip already.\n"
	    "# TYPE halo_milter_web_refused_total counter\n"
	    "halo_milter_web_refused_total %llu\n", (unsigned long long)cut_off,
	    (unsigned long long)refused);
	web_metrics_hist(&b, METRICS_EOM);
	web_metrics_hist(&b, METRICS_MAIL_TO_HALO);
	text = web_buf_take(&b, &len);
	return web_respond(w, c, text != NULL ? MHD_HTTP_OK :
	    MHD_HTTP_INTERNAL_SERVER_ERROR,
	    "text/plain; version=0.0.4; charset=utf-8", text, len, NULL, NULL,
	    false);
}

/* Whether a client at IP may read /metrics: admin_networks when set,
 * else loopback only (the counters are not for everyone). */
bool
web_metrics_allowed(const struct conf *conf, const char *ip)
{
	static const char *const loopback[] = { "127.0.0.0/8", "::1/128" };
	struct conf_net nets[2];
	size_t i;

	if (conf->n_admin_networks > 0)
		return conf_net_match(conf->admin_networks,
		    conf->n_admin_networks, ip);
	for (i = 0; i < 2; i++)
		if (conf_net_parse(loopback[i], &nets[i]) != 0)
			return false;
	return conf_net_match(nets, 2, ip);
}

/*
 * The request deadline. MHD's own timeout (web_request_timeout too) counts
 * idle time only, so a client that sends a header byte every few seconds
 * would hold its connection, and its thread, for ever. Each connection is
 * therefore on a list from MHD's "started" to its "closed" notification
 * (MHD sends that before it closes the socket, so a listed descriptor is
 * still this connection's), stamped when it opens and when each request
 * has been answered. While the handler works on a request the connection
 * is busy and never cut (the OAuth callback waits on Halo); otherwise a
 * thread shuts down, once a second, the sockets whose next request has not
 * arrived, headers and body, within the deadline. MHD then sees the end of
 * its input and closes the connection the usual way.
 */
struct web_conn {
	char key[INET6_ADDRSTRLEN + 8];     /* web_client_key() of its peer */
	int fd;
	struct timespec since;      /* opened, or its last request answered */
	bool busy;                  /* the handler has the request */
	bool cut;                   /* shut down already */
	struct web_conn *prev, *next;
};

/* Seconds from A to B. */
static double
web_elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* The web_client_key() of socket address SA (LEN bytes) into OUT. */
static void
web_sockaddr_key(const struct sockaddr *sa, socklen_t len, char *out,
    size_t outsz)
{
	char ip[INET6_ADDRSTRLEN + 8];

	if (sa == NULL || getnameinfo(sa, len, ip, sizeof(ip), NULL, 0,
	    NI_NUMERICHOST) != 0)
		snprintf(ip, sizeof(ip), "?");
	web_client_key(ip, out, outsz);
}

/*
 * MHD's accept policy: refuse a connection from a client (an IPv4
 * address, an IPv6 /64 — MHD's own per-IP limit would count each IPv6
 * address apart) that already holds web_connections_per_ip. Called in
 * MHD's listening thread just before the "started" notification that
 * lists the connection, so the count cannot race another accept.
 */
static enum MHD_Result
web_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct web *w = cls;
	struct web_conn *wc;
	char key[INET6_ADDRSTRLEN + 8];
	unsigned n = 0;

	web_sockaddr_key(addr, len, key, sizeof(key));
	pthread_mutex_lock(&w->conn_lock);
	for (wc = w->conns; wc != NULL; wc = wc->next)
		if (strcmp(wc->key, key) == 0)
			n++;
	if (n >= w->per_ip)
		w->refused_per_ip++;
	pthread_mutex_unlock(&w->conn_lock);
	return n >= w->per_ip ? MHD_NO : MHD_YES;
}

/* MHD's connection notifications: list the connection, or drop it. */
static void
web_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct web *w = cls;
	struct web_conn *wc = *socket_context;
	const union MHD_ConnectionInfo *info;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info == NULL || (wc = calloc(1, sizeof(*wc))) == NULL)
			return;         /* MHD's idle timeout still applies */
		wc->fd = info->connect_fd;
		info = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		web_sockaddr_key(info != NULL ? info->client_addr : NULL,
		    info != NULL && info->client_addr != NULL &&
		    info->client_addr->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
		    wc->key, sizeof(wc->key));
		clock_gettime(CLOCK_MONOTONIC, &wc->since);
		pthread_mutex_lock(&w->conn_lock);
		wc->next = w->conns;
		if (w->conns != NULL)
			w->conns->prev = wc;
		w->conns = wc;
		pthread_mutex_unlock(&w->conn_lock);
		*socket_context = wc;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || wc == NULL)
		return;
	pthread_mutex_lock(&w->conn_lock);
	if (wc->prev != NULL)
		wc->prev->next = wc->next;
	else
		w->conns = wc->next;
	if (wc->next != NULL)
		wc->next->prev = wc->prev;
	pthread_mutex_unlock(&w->conn_lock);
	free(wc);
	*socket_context = NULL;
}

/* Mark C's connection busy (the handler has its request) or, when BUSY is
 * false, answered: its deadline for the next request starts now. */
static void
web_conn_mark(struct web *w, struct MHD_Connection *c, bool busy)
{
	const union MHD_ConnectionInfo *info;
	struct web_conn *wc;

	info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (info == NULL || (wc = info->socket_context) == NULL)
		return;
	pthread_mutex_lock(&w->conn_lock);
	wc->busy = busy;
	if (!busy)
		clock_gettime(CLOCK_MONOTONIC, &wc->since);
	pthread_mutex_unlock(&w->conn_lock);
}

/* The deadline thread: once a second, cut off the connections whose
 * request has taken longer than the deadline to arrive. */
static void *
web_reaper(void *arg)
{
	struct web *w = arg;
	struct web_conn *wc;
	struct timespec now, until;
	unsigned cut;

	pthread_mutex_lock(&w->conn_lock);
	while (!w->reaper_stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		cut = 0;
		for (wc = w->conns; wc != NULL; wc = wc->next) {
			if (wc->busy || wc->cut ||
			    web_elapsed(&wc->since, &now) < (double)w->deadline)
				continue;
			shutdown(wc->fd, SHUT_RDWR);
			wc->cut = true;
			cut++;
		}
		w->cut_off += cut;
		if (cut > 0)
			log_debug("web: cut off %u connection%s whose request took"
			    " over %u s", cut, cut == 1 ? "" : "s", w->deadline);
		until = now;
		until.tv_sec += 1;
		pthread_cond_timedwait(&w->reaper_wake, &w->conn_lock, &until);
	}
	pthread_mutex_unlock(&w->conn_lock);
	return NULL;
}

/* Free a request's state (the body may hold a code: wipe it). */
static void
web_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct web_req *rq = *con_cls;

	(void)toe;
	web_conn_mark(cls, c, false);
	if (rq != NULL)
		crypto_free_secret(rq, sizeof(*rq));
	*con_cls = NULL;
}

/* MHD's access handler: read a bounded body, then route. */
static enum MHD_Result web_route(struct web *w, const struct conf *conf,
    struct MHD_Connection *c, const char *url, bool get, bool post,
    bool options, const char *ip, const char *client, struct web_req *rq);

/* libmicrohttpd's handler: gather the request, then route it under the
 * configuration generation current when it is complete. */
static enum MHD_Result
web_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct web *w = cls;
	struct web_req *rq = *con_cls;
	struct confgen_ref *gen;
	char ip[INET6_ADDRSTRLEN + 8], client[INET6_ADDRSTRLEN + 8];
	bool get, post, options;
	enum MHD_Result rc;
	int check;

	(void)version;
	get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	/* CORS preflights, for the pane's status API (web_pane.c) */
	options = strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0;
	if (rq == NULL) {
		if (!get && !post && !options)
			return web_respond(w, c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    WEB_CT_TEXT, NULL, 0, NULL, NULL, false);
		if (post) {
			/* refuse before reading: the body is not wanted */
			check = web_body_check(MHD_lookup_connection_value(c,
			    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH),
			    WEB_POST_MAX);
			if (check != 0)
				return web_respond(w, c, (unsigned)check, WEB_CT_TEXT,
				    strdup(check == 413 ? "request body too large\n" :
				    "bad Content-Length\n"), check == 413 ? 23 : 19,
				    NULL, NULL, false);
		}
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		rq->is_post = post;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (!rq->is_post || rq->too_large ||
		    *upload_data_size > WEB_POST_MAX - rq->len)
			rq->too_large = true;
		else {
			memcpy(rq->body + rq->len, upload_data, *upload_data_size);
			rq->len += *upload_data_size;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->too_large)
		return web_respond(w, c, MHD_HTTP_CONTENT_TOO_LARGE, WEB_CT_TEXT,
		    strdup("request body too large\n"), 23, NULL, NULL, false);
	rq->body[rq->len] = '\0';
	/* the whole request is in: no deadline while we work on it */
	web_conn_mark(w, c, true);
	web_client_ip(c, ip, sizeof(ip));
	web_client_key(ip, client, sizeof(client));
	if (w->gens == NULL)
		return web_route(w, w->conf, c, url, get, post, options, ip,
		    client, rq);
	gen = confgen_acquire(w->gens);
	rc = web_route(w, confgen_conf(gen), c, url, get, post, options, ip,
	    client, rq);
	confgen_release(gen);
	return rc;
}

/* Answer a request that has fully arrived, under configuration CONF. */
static enum MHD_Result
web_route(struct web *w, const struct conf *conf, struct MHD_Connection *c,
    const char *url, bool get, bool post, bool options, const char *ip,
    const char *client, struct web_req *rq)
{
	{
		/* the pane's sign-in and API (web_agent.c); it also takes the
		 * callbacks of its own sign-ins */
		struct web_call acall = { w, c, url, get, post, options, ip,
		    client, rq, conf };
		enum MHD_Result arc;

		if (web_agent_route(&acall, &arc))
			return arc;
	}
	if (strcmp(url, "/healthz") == 0 && get)
		return web_healthz(w, c);
	if (strcmp(url, "/metrics") == 0 && get) {
		if (!web_metrics_allowed(conf, ip)) {
			log_notice("metrics: refused %s (not in admin_networks)",
			    ip);
			return web_respond(w, c, MHD_HTTP_FORBIDDEN, WEB_CT_TEXT,
			    strdup("not allowed from this address\n"), 30, NULL,
			    NULL, false);
		}
		return web_metrics(w, c);
	}
	if (strcmp(url, "/static/enroll.css") == 0 && get)
		return web_respond(w, c, MHD_HTTP_OK, "text/css; charset=utf-8",
		    strdup(web_css), sizeof(web_css) - 1, NULL, NULL, true);
	if (strcmp(url, "/enroll") == 0 && get)
		return web_enroll_get(w, conf, c, client);
	if (strcmp(url, "/enroll/start") == 0 && post) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_TYPE);
		if (ct == NULL || strncasecmp(ct,
		    "application/x-www-form-urlencoded", 33) != 0)
			return web_message(w, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			    "../", "Cannot enroll", "error", "Expected a form.",
			    true, NULL);
		return web_enroll_start(w, conf, c, client, rq);
	}
	if (strcmp(url, "/enroll/callback") == 0 && get)
		return web_enroll_callback(w, conf, c, client);
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0 ||
	    strcmp(url, "/enroll") == 0 || strcmp(url, "/enroll/start") == 0 ||
	    strcmp(url, "/enroll/callback") == 0 ||
	    strcmp(url, "/static/enroll.css") == 0)
		return web_respond(w, c, MHD_HTTP_METHOD_NOT_ALLOWED, WEB_CT_TEXT,
		    NULL, 0, NULL, NULL, false);
	{
		struct web_call call = { w, c, url, get, post, options, ip,
		    client, rq, conf };
		enum MHD_Result hrc;

		if (web_admin_route(&call, &hrc) || web_pane_route(&call, &hrc))
			return hrc;
	}
	return web_message(w, c, MHD_HTTP_NOT_FOUND, "", "Not found", "error",
	    "There is no such page here.", false, NULL);
}

/* Read a PEM file (bounded) into a malloc'd string. */
static char *
web_read_pem(const char *path, char *err, size_t errsz)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > WEB_PEM_MAX || (buf = malloc(WEB_PEM_MAX + 1)) == NULL) {
		snprintf(err, errsz, "%s: not a regular file of at most %d bytes",
		    path, WEB_PEM_MAX);
		close(fd);
		return NULL;
	}
	n = util_read_full(fd, buf, WEB_PEM_MAX);
	close(fd);
	len = n > 0 ? (size_t)n : 0;
	buf[len] = '\0';
	if (len == 0 || strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(err, errsz, "%s: not a PEM file", path);
		crypto_free_secret(buf, WEB_PEM_MAX + 1);
		return NULL;
	}
	return buf;
}

/* Open, bind and listen on "HOST:PORT" or "[V6]:PORT"; -1 with ERR. */
static int
web_listen(const char *listen_at, bool *v6, char *err, size_t errsz)
{
	char host[256], port[8];
	const char *colon;
	struct addrinfo hints, *res = NULL;
	size_t hlen;
	int fd, one = 1, gai;

	if (listen_at[0] == '[') {
		colon = strstr(listen_at, "]:");
		if (colon == NULL)
			goto bad;
		hlen = (size_t)(colon - listen_at - 1);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, listen_at + 1, hlen);
		colon++;
	} else {
		colon = strrchr(listen_at, ':');
		if (colon == NULL)
			goto bad;
		hlen = (size_t)(colon - listen_at);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, listen_at, hlen);
	}
	host[hlen] = '\0';
	if (strlen(colon + 1) >= sizeof(port))
		goto bad;
	snprintf(port, sizeof(port), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0 || res == NULL) {
		snprintf(err, errsz, "web_listen %s: %s", listen_at,
		    gai_strerror(gai));
		return -1;
	}
	*v6 = res->ai_family == AF_INET6;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (*v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
	    sizeof(one)) != 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errsz, "web_listen %s: %s", listen_at,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
bad:
	snprintf(err, errsz, "web_listen %s: expected HOST:PORT", listen_at);
	return -1;
}

/* Build the CSP: form-action allows us and each tenant's auth origin. */
static char *
web_build_csp(const struct conf *conf)
{
	struct web_buf b = { 0 };
	char *origin, *text;
	size_t i, len;

	web_buf_add(&b, "default-src 'none'; style-src 'self'; form-action"
	    " 'self'");
	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];

		origin = web_origin(t->auth_url != NULL ? t->auth_url :
		    t->halo_url);
		if (origin != NULL && (b.u.s == NULL ||
		    strstr(b.u.s, origin) == NULL)) {
			web_buf_add(&b, " ");
			web_buf_add(&b, origin);
		}
		free(origin);
	}
	web_buf_add(&b, "; frame-ancestors 'none'; base-uri 'none'");
	text = web_buf_take(&b, &len);
	return text;
}

/* Start the server. */
struct web *
web_start(const struct conf *conf, struct store *store, struct oauth *oauth,
    const struct statedir *sd, const struct statedir_keys *keys, char *err,
    size_t errsz)
{
	struct web *w;
	sigset_t block, old;
	unsigned flags, max_conns, per_ip, timeout;
	bool v6 = false;
	int fd;

	if (conf->web_listen == NULL) {
		snprintf(err, errsz, "web_listen is off");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->conn_lock, NULL);
	{
		pthread_condattr_t ca;

		/* the reaper waits on the monotonic clock */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&w->reaper_wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	w->conf = conf;
	w->store = store;
	w->oauth = oauth;
	w->sd = *sd;
	memcpy(w->seal_key, keys->seal, sizeof(w->seal_key));
	if (enroll_hash_key(w->seal_key, w->hash_key) != 0) {
		snprintf(err, errsz, "cannot derive the enrollment hash key");
		goto fail;
	}
	if (conf->public_url != NULL) {
		w->https_public = strncasecmp(conf->public_url, "https://", 8) == 0;
		w->cookie_name = w->https_public ? "__Host-halo_enroll" :
		    "halo_enroll";
		if (asprintf(&w->redirect_uri, "%s/enroll/callback",
		    conf->public_url) < 0) {
			w->redirect_uri = NULL;
			snprintf(err, errsz, "out of memory");
			goto fail;
		}
	}
	w->csp = web_build_csp(conf);
	/* per client only: a counter of everyone's wrong codes would let a
	 * flood from a few addresses lock every valid code out */
	w->limiter = web_limiter_new(WEB_FAIL_PER_IP, 0, WEB_FAIL_WINDOW);
	if (w->csp == NULL || w->limiter == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if ((w->pane = web_pane_new(conf, keys->status, err, errsz)) == NULL)
		goto fail;
	if (conf->tls_cert != NULL && conf->tls_key != NULL) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errsz, "tls_cert/tls_key: this libmicrohttpd"
			    " has no TLS support; terminate TLS in a reverse proxy");
			goto fail;
		}
		if ((w->tls_cert = web_read_pem(conf->tls_cert, err, errsz)) == NULL ||
		    (w->tls_key = web_read_pem(conf->tls_key, err, errsz)) == NULL)
			goto fail;
		w->tls = true;
	}
	http_global_init();
	(void)http_set_ca_file(conf->halo_ca_file);
	if (conf->insecure_http)
		http_allow_loopback_http(true);
	fd = web_listen(conf->web_listen, &v6, err, errsz);
	if (fd < 0)
		goto fail;
	/* 0 (a configuration not from conf_load()): the defaults */
	max_conns = conf->web_max_connections > 0 ? conf->web_max_connections :
	    CONF_WEB_MAX_CONNECTIONS;
	per_ip = conf->web_connections_per_ip > 0 ?
	    conf->web_connections_per_ip : CONF_WEB_CONNECTIONS_PER_IP;
	timeout = conf->web_request_timeout > 0 ? conf->web_request_timeout :
	    CONF_WEB_REQUEST_TIMEOUT;
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_POLL | (w->tls ? MHD_USE_TLS : 0) | (v6 ? MHD_USE_IPv6 : 0);
	{
		struct MHD_OptionItem ops[] = {
			{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
			{ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)max_conns, NULL },
			{ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout, NULL },
			{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, WEB_CONN_MEMORY, NULL },
			{ w->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0,
			    w->tls_cert },
			{ w->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0,
			    w->tls_key },
			{ MHD_OPTION_END, 0, NULL }
		};

		/* MHD's threads inherit this mask: the signals stay with
		 * libmilter's signal thread */
		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGHUP);
		sigaddset(&block, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		w->per_ip = per_ip;
		w->mhd = MHD_start_daemon(flags, 0, web_accept, w, web_handler, w,
		    MHD_OPTION_ARRAY, ops,
		    MHD_OPTION_NOTIFY_COMPLETED, web_completed, w,
		    MHD_OPTION_NOTIFY_CONNECTION, web_conn_notify, w,
		    MHD_OPTION_END);
		w->deadline = timeout;
		if (w->mhd != NULL &&
		    pthread_create(&w->reaper, NULL, web_reaper, w) == 0)
			w->reaper_running = true;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (w->mhd != NULL && !w->reaper_running) {
		snprintf(err, errsz, "cannot start the request deadline thread");
		goto fail;
	}
	if (w->mhd == NULL) {
		snprintf(err, errsz, "web_listen %s: libmicrohttpd did not start%s",
		    conf->web_listen, w->tls ? " (check tls_cert and tls_key)" : "");
		/* FD is not closed here: MHD's failure path may have closed it
		 * already, and closing twice could hit another thread's file */
		goto fail;
	}
	return w;
fail:
	return web_stop(w);
}

/* Route each request under GENS's current generation from now on. */
void
web_set_confgen(struct web *w, struct confgen *gens)
{
	if (w != NULL)
		w->gens = gens;
}

/* Stop and free. */
struct web *
web_stop(struct web *w)
{
	if (w == NULL)
		return NULL;
	if (w->reaper_running) {
		pthread_mutex_lock(&w->conn_lock);
		w->reaper_stop = true;
		pthread_cond_signal(&w->reaper_wake);
		pthread_mutex_unlock(&w->conn_lock);
		pthread_join(w->reaper, NULL);
	}
	if (w->mhd != NULL)
		MHD_stop_daemon(w->mhd);
	crypto_wipe(w->seal_key, sizeof(w->seal_key));
	crypto_wipe(w->hash_key, sizeof(w->hash_key));
	free(w->csp);
	free(w->redirect_uri);
	if (w->tls_cert != NULL)
		crypto_free_secret(w->tls_cert, WEB_PEM_MAX + 1);
	if (w->tls_key != NULL)
		crypto_free_secret(w->tls_key, WEB_PEM_MAX + 1);
	web_limiter_free(w->limiter);
	web_pane_free(w->pane);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->reaper_wake);
	pthread_mutex_destroy(&w->conn_lock);
	free(w);
	return NULL;
}
