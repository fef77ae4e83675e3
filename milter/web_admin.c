/*
 * web_admin.c - the admin pages (/admin): the guards, sessions, agents and
 * their standing, new enrollment codes (with the link as a QR code),
 * revocation. The jobs and doctor sections are web_admin_ops.c.
 *
 * Guarded, in this order, on every request:
 *   1. admin_networks (conf): other addresses get 403 and never see a form;
 *   2. an admin password must be set (state_dir/admin.pw, written by
 *      "halo-milterctl admin-password", read again at each sign-in so a new
 *      password needs no restart); without one the page only says how;
 *   3. a session cookie (HttpOnly, SameSite=Strict, __Host- and Secure when
 *      public_url is https) naming a live server-side session;
 *   4. every POST: our Origin (when the browser sends one), a form body and
 *      the session's CSRF token, compared in constant time.
 * Wrong passwords are limited per client address (IPv6 by /64), not in
 * all: a flood from a few addresses must not lock the admin out. Nothing here
 * logs a password, session id, CSRF token or enrollment code.
 */
#include "web_admin_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <qrencode.h>

#include "agents.h"
#include "log.h"

#define ADMIN_FAIL_PER_IP    10          /* wrong passwords per client; no
                                            limit in all: a flood from a few
                                            addresses must not lock the
                                            admin out */
#define ADMIN_FAIL_WINDOW    900         /* seconds */
#define ADMIN_AGENT_MAX      320
#define ADMIN_QR_SCALE       5           /* pixels per module on screen */
#define ADMIN_QR_QUIET       4           /* modules of white border */

/* The admin pages' own stylesheet (the enrollment one comes first). */
static const char admin_css[] =
	"body.admin main{max-width:60rem}\n"
	"table{border-collapse:collapse;width:100%;margin:1rem 0}\n"
	"th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid"
	" #dde1e7;vertical-align:top}\n"
	"th{font-weight:600;background:#f4f5f7}\n"
	"form.inline{display:inline;margin:0 .3rem 0 0}\n"
	"button.secondary{background:#5f6b7a}\n"
	"button.danger{background:#c5221f}\n"
	"input[type=email],input[type=password],select{font-size:1rem;"
	"padding:.3rem .5rem;width:18rem;max-width:100%}\n"
	".status-enrolled{color:#1e8e3e;font-weight:600}\n"
	".status-reenroll{color:#c5221f;font-weight:600}\n"
	".status-never{color:#5f6b7a}\n"
	"svg.qr{display:block;margin:1rem 0;width:14rem;height:14rem}\n"
	".bar{display:flex;justify-content:space-between;align-items:center}\n"
	".code{font-size:1.6rem;letter-spacing:.1em;font-weight:600}\n"
	"td.level-ok{color:#1e8e3e;font-weight:600}\n"
	"td.level-note{color:#5f6b7a;font-weight:600}\n"
	"td.level-warn{color:#b06000;font-weight:600}\n"
	"td.level-fix{color:#c5221f;font-weight:600}\n"
	"td.reason{max-width:22rem;overflow-wrap:anywhere}\n"
	"td.when{white-space:nowrap}\n";

struct admin_session {
	uint8_t id_hash[32];        /* HMAC of the id under admin_key */
	time_t created, used;
	uint64_t stamp;             /* the password file it was made under */
	bool live;
};

/* Process-wide state: one web server per daemon. */
static pthread_once_t admin_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t admin_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t admin_key[32];
static bool admin_ready;
static struct admin_session admin_sessions[WEB_ADMIN_SESSIONS];
static struct web_limiter *admin_limiter;

/* Make the session key and the sign-in limiter (once). */
static void
admin_init(void)
{
	admin_ready = crypto_random(admin_key, sizeof(admin_key)) == 0 &&
	    (admin_limiter = web_limiter_new(ADMIN_FAIL_PER_IP, 0,
	    ADMIN_FAIL_WINDOW)) != NULL;
}

/* HMAC of LABEL and DATA under the session key, raw (32 bytes). */
static bool
admin_mac(const char *label, const void *data, size_t len, uint8_t out[32])
{
	char hex[65], buf[128];
	size_t llen = strlen(label), i;
	bool ok;

	if (llen + 1 + len > sizeof(buf))
		return false;
	memcpy(buf, label, llen);
	buf[llen] = ':';
	memcpy(buf + llen + 1, data, len);
	ok = crypto_hmac_hex(admin_key, sizeof(admin_key), buf, llen + 1 + len,
	    hex) == 0;
	for (i = 0; ok && i < 32; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	crypto_wipe(buf, sizeof(buf));
	crypto_wipe(hex, sizeof(hex));
	return ok;
}

/* The CSRF token of the session whose id hash is ID_HASH. */
static void
admin_csrf_of(const uint8_t id_hash[32], char out[65])
{
	if (crypto_hmac_hex(admin_key, sizeof(admin_key), id_hash, 32, out) != 0)
		out[0] = '\0';
}

/* A new session. */
bool
web_admin_session_new(time_t now, uint64_t stamp,
    char sid[WEB_ADMIN_SID_LEN + 1])
{
	struct admin_session *s, *victim = NULL;
	uint8_t raw[32], hash[32];
	char *text;
	size_t i;

	pthread_once(&admin_once, admin_init);
	sid[0] = '\0';
	if (!admin_ready || crypto_random(raw, sizeof(raw)) != 0 ||
	    (text = crypto_b64url_encode(raw, sizeof(raw))) == NULL) {
		crypto_wipe(raw, sizeof(raw));
		return false;
	}
	crypto_wipe(raw, sizeof(raw));
	if (strlen(text) != WEB_ADMIN_SID_LEN ||
	    !admin_mac("sid", text, WEB_ADMIN_SID_LEN, hash)) {
		crypto_free_secret(text, strlen(text));
		return false;
	}
	memcpy(sid, text, WEB_ADMIN_SID_LEN + 1);
	crypto_free_secret(text, WEB_ADMIN_SID_LEN);
	pthread_mutex_lock(&admin_lock);
	for (i = 0; i < WEB_ADMIN_SESSIONS; i++) {
		s = &admin_sessions[i];
		if (s->live && (now - s->used >= WEB_ADMIN_IDLE ||
		    now - s->created >= WEB_ADMIN_MAX_AGE))
			s->live = false;
		/* a free slot, else the least recently used */
		if (victim == NULL || (victim->live && (!s->live ||
		    s->used < victim->used)))
			victim = s;
	}
	memcpy(victim->id_hash, hash, sizeof(hash));
	victim->created = victim->used = now;
	victim->stamp = stamp;
	victim->live = true;
	pthread_mutex_unlock(&admin_lock);
	crypto_wipe(hash, sizeof(hash));
	return true;
}

/* The live session of SID at NOW made under STAMP (lock held), or NULL;
 * STAMP 0 matches any (sign-out). */
static struct admin_session *
admin_session_find(const char *sid, time_t now, uint64_t stamp)
{
	struct admin_session *found = NULL, *s;
	uint8_t hash[32];
	size_t i;

	if (!admin_ready || sid == NULL || strlen(sid) != WEB_ADMIN_SID_LEN ||
	    !admin_mac("sid", sid, WEB_ADMIN_SID_LEN, hash))
		return NULL;
	for (i = 0; i < WEB_ADMIN_SESSIONS; i++) {
		s = &admin_sessions[i];
		if (s->live && CRYPTO_memcmp(s->id_hash, hash, sizeof(hash)) == 0)
			found = s;
	}
	crypto_wipe(hash, sizeof(hash));
	if (found != NULL && (now - found->used >= WEB_ADMIN_IDLE ||
	    now - found->created >= WEB_ADMIN_MAX_AGE || now < found->created ||
	    (stamp != 0 && found->stamp != stamp))) {
		found->live = false;
		found = NULL;
	}
	return found;
}

/* Is SID live at NOW? */
bool
web_admin_session_check(const char *sid, time_t now, uint64_t stamp,
    char csrf[65])
{
	struct admin_session *s;

	pthread_once(&admin_once, admin_init);
	if (csrf != NULL)
		csrf[0] = '\0';
	pthread_mutex_lock(&admin_lock);
	s = admin_session_find(sid, now, stamp);
	if (s != NULL) {
		s->used = now;
		if (csrf != NULL)
			admin_csrf_of(s->id_hash, csrf);
	}
	pthread_mutex_unlock(&admin_lock);
	return s != NULL;
}

/* End SID. */
void
web_admin_session_end(const char *sid)
{
	struct admin_session *s;

	pthread_once(&admin_once, admin_init);
	pthread_mutex_lock(&admin_lock);
	s = admin_session_find(sid, time(NULL), 0);
	if (s != NULL) {
		crypto_wipe(s, sizeof(*s));
		s->live = false;
	}
	pthread_mutex_unlock(&admin_lock);
}

/* Compare a posted CSRF token. */
bool
web_admin_csrf_ok(const char *expected, const char *given)
{
	if (expected == NULL || given == NULL || *expected == '\0' ||
	    *given == '\0')
		return false;
	return crypto_equal(expected, given);
}

/* ---------------------------------------------------------------- pages */

/* The session cookie's name. */
static const char *
admin_cookie_name(const struct web *w)
{
	return w->https_public ? "__Host-halo_admin" : "halo_admin";
}

/* Set-Cookie for SID (NULL: delete it). */
static void
admin_cookie(const struct web *w, const char *sid, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s=%s; Path=/; Max-Age=%d; HttpOnly;"
	    " SameSite=Strict%s", admin_cookie_name(w), sid != NULL ? sid : "",
	    sid != NULL ? WEB_ADMIN_MAX_AGE : 0,
	    w->https_public ? "; Secure" : "");
}

/* A whole admin page (both stylesheets). BODY is taken over. */
enum MHD_Result
web_admin_page(const struct admin_ctx *a, unsigned status, const char *title,
    struct web_buf *body, const char *cookie)
{
	struct web_buf page = { 0 };
	struct web *w = a->call->w;
	char *text;
	size_t len = 0;

	web_buf_add(&page, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" content=\""
	    "width=device-width, initial-scale=1\"><title>");
	web_buf_escape(&page, title);
	web_buf_printf(&page, " - halo-milter admin</title>"
	    "<link rel=\"stylesheet\" href=\"%sstatic/enroll.css\">"
	    "<link rel=\"stylesheet\" href=\"%sstatic/admin.css\"></head>\n"
	    "<body class=\"admin\"><main>", a->root, a->root);
	if (a->signed_in) {
		web_buf_add(&page, "<div class=\"bar\"><h1>");
		web_buf_escape(&page, title);
		web_buf_printf(&page, "</h1><form class=\"inline\" method=\"post\""
		    " action=\"%sadmin/logout\"><input type=\"hidden\""
		    " name=\"csrf\" value=\"%s\"><button type=\"submit\""
		    " class=\"secondary\" id=\"logout\">Sign out</button></form>"
		    "</div>\n", a->root, a->csrf);
	} else {
		web_buf_add(&page, "<h1>");
		web_buf_escape(&page, title);
		web_buf_add(&page, "</h1>\n");
	}
	if (body->u.oom)
		page.u.oom = true;
	else if (body->u.s != NULL)
		web_buf_add(&page, body->u.s);
	web_buf_add(&page, "</main></body></html>\n");
	web_buf_clear(body);
	text = web_buf_take(&page, &len);
	if (text == NULL)
		return web_respond(w, a->call->c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    WEB_CT_TEXT, NULL, 0, NULL, NULL, false);
	return web_respond(w, a->call->c, status, WEB_CT_HTML, text, len, NULL,
	    cookie, false);
}

/* A page with one paragraph of class CLASS and an optional way back. */
enum MHD_Result
web_admin_message(const struct admin_ctx *a, unsigned status,
    const char *title, const char *class, const char *message, bool back,
    const char *cookie)
{
	struct web_buf body = { 0 };

	web_buf_printf(&body, "<p class=\"%s\" id=\"message\">", class);
	web_buf_escape(&body, message);
	web_buf_add(&body, "</p>\n");
	if (back)
		web_buf_printf(&body, "<p><a href=\"%sadmin\">Back to the admin"
		    " page</a></p>\n", a->root);
	return web_admin_page(a, status, title, &body, cookie);
}

/* Read the admin password file PATH (state_dir/admin.pw) into OUT: 1
 * read, 0 absent, -1 unusable. */
static int
admin_pw_read(const char *path, char *out, size_t outsz)
{
	struct stat sb;
	ssize_t n;
	size_t len = 0;
	int fd;

	out[0] = '\0';
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & 077) != 0 || sb.st_size <= 0 ||
	    (size_t)sb.st_size >= outsz) {
		close(fd);
		log_warnx("admin: %s is not a private regular file of at most %zu"
		    " bytes; sign-in refused (run halo-milterctl admin-password)",
		    path, outsz - 1);
		return -1;
	}
	n = util_read_full(fd, out, outsz - 1);
	close(fd);
	len = n > 0 ? (size_t)n : 0;
	out[len] = '\0';
	return 1;
}

/* Is an admin password set? *STAMP identifies the file (inode, size,
 * modification time): a new password is a new stamp. */
static bool
admin_pw_set(const char *path, uint64_t *stamp)
{
	struct stat sb;
	uint64_t h = 1469598103934665603ULL;
	uint64_t parts[4];
	size_t i;

	*stamp = 0;
	if (lstat(path, &sb) != 0)
		return false;
	parts[0] = (uint64_t)sb.st_ino;
	parts[1] = (uint64_t)sb.st_size;
	parts[2] = (uint64_t)sb.st_mtim.tv_sec;
	parts[3] = (uint64_t)sb.st_mtim.tv_nsec;
	/* FNV-1a over the four: not a secret, only "the same file?" */
	for (i = 0; i < sizeof(parts); i++) {
		h ^= ((const uint8_t *)parts)[i];
		h *= 1099511628211ULL;
	}
	*stamp = h != 0 ? h : 1;
	return true;
}

/* The page shown while no admin password is set, and nothing else. */
static enum MHD_Result
admin_not_set_up(const struct admin_ctx *a)
{
	struct web_buf body = { 0 };

	web_buf_add(&body, "<p class=\"warn\" id=\"message\">The admin page is"
	    " not set up: no admin password has been set.</p>\n<p>On the"
	    " gateway, as root or the daemon's user, run</p>\n<p><code>"
	    "halo-milterctl admin-password</code></p>\n<p>and type a password"
	    " of at least 12 characters. Then reload this page. Agents can"
	    " still be enrolled from the command line (<code>halo-milterctl"
	    " enroll AGENT</code>).</p>\n");
	return web_admin_page(a, MHD_HTTP_SERVICE_UNAVAILABLE, "Admin", &body,
	    NULL);
}

/* The sign-in form (with an optional error above it). */
static enum MHD_Result
admin_login_form(const struct admin_ctx *a, unsigned status, const char *error,
    const char *cookie)
{
	struct web_buf body = { 0 };

	if (error != NULL) {
		web_buf_add(&body, "<p class=\"error\" id=\"message\">");
		web_buf_escape(&body, error);
		web_buf_add(&body, "</p>\n");
	}
	web_buf_printf(&body, "<form method=\"post\" action=\"%sadmin/login\">"
	    "<p><label for=\"password\">Admin password</label><br>"
	    "<input type=\"password\" id=\"password\" name=\"password\""
	    " autocomplete=\"current-password\" maxlength=\"%d\" required"
	    " autofocus></p><p><button type=\"submit\" id=\"login\">Sign in"
	    "</button></p></form>\n", a->root, CRYPTO_PW_MAX);
	return web_admin_page(a, status, "Admin sign-in", &body, cookie);
}

/* "2026-11-24 10:00 UTC". */
void
web_admin_time(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M UTC", &tm);
}

/* Hidden fields naming TENANT/AGENT plus the CSRF token. */
void
web_admin_hidden(struct web_buf *b, const struct admin_ctx *a,
    const char *tenant, const char *agent)
{
	web_buf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
	    a->csrf);
	if (tenant != NULL) {
		web_buf_add(b, "<input type=\"hidden\" name=\"tenant\" value=\"");
		web_buf_escape(b, tenant);
		web_buf_add(b, "\">");
	}
	if (agent != NULL) {
		web_buf_add(b, "<input type=\"hidden\" name=\"agent\" value=\"");
		web_buf_escape(b, agent);
		web_buf_add(b, "\">");
	}
}

/* GET /admin, signed in: the agents and the forms. */
static enum MHD_Result
admin_home(const struct admin_ctx *a)
{
	const struct conf *conf = a->call->conf;
	struct agent_rows rows;
	struct web_buf body = { 0 };
	char when[40];
	bool enroll_on = a->call->w->redirect_uri != NULL;
	size_t i;

	if (agent_rows_collect(a->call->w->store, conf, time(NULL), &rows) != 0 ||
	    rows.truncated)
		web_buf_add(&body, "<p class=\"error\">The gateway could not read"
		    " its whole database; the list may be incomplete.</p>\n");
	if (!enroll_on)
		web_buf_add(&body, "<p class=\"warn\">Enrollment is off: this"
		    " gateway has no <code>public_url</code>, so agents could not"
		    " reach the enrollment page.</p>\n");
	web_buf_add(&body, "<h2>Agents</h2>\n<table id=\"agents\"><thead><tr>"
	    "<th>Tenant</th><th>Agent</th><th>Status</th><th>Last refresh</th>"
	    "<th>Pending code</th><th></th></tr></thead><tbody>\n");
	for (i = 0; i < rows.n; i++) {
		struct agent_row *r = &rows.v[i];

		web_buf_add(&body, "<tr><td>");
		web_buf_escape(&body, r->tenant);
		web_buf_add(&body, "</td><td>");
		web_buf_escape(&body, r->agent);
		if (r->token != NULL && strcmp(r->token, "ok") == 0)
			web_buf_add(&body, "</td><td class=\"status-enrolled\">"
			    "enrolled");
		else if (r->token != NULL)
			web_buf_add(&body, "</td><td class=\"status-reenroll\">"
			    "re-enroll needed");
		else
			web_buf_add(&body, "</td><td class=\"status-never\">"
			    "never enrolled");
		if (r->signin_until > rows.now)
			web_buf_add(&body, " (signing in now)");
		else if (r->token == NULL && r->last[0] != '\0' &&
		    strcmp(r->last, "ok") != 0)
			web_buf_printf(&body, " (last attempt: %s)",
			    strcmp(r->last, "mismatch") == 0 ? "wrong agent" :
			    strcmp(r->last, "denied") == 0 ? "declined" : "failed");
		web_buf_add(&body, "</td><td>");
		if (r->token != NULL && r->last_refresh > 0) {
			web_admin_time(r->last_refresh, when, sizeof(when));
			web_buf_add(&body, when);
		} else {
			web_buf_add(&body, "-");
		}
		web_buf_add(&body, "</td><td>");
		if (r->pending > 0) {
			web_admin_time(r->pending_until, when, sizeof(when));
			web_buf_printf(&body, "%u, valid until %s", r->pending, when);
		} else {
			web_buf_add(&body, "-");
		}
		web_buf_add(&body, "</td><td>");
		if (enroll_on) {
			web_buf_printf(&body, "<form class=\"inline\" method=\"post\""
			    " action=\"%sadmin/enroll\">", a->root);
			web_admin_hidden(&body, a, r->tenant, r->agent);
			web_buf_add(&body, "<button type=\"submit\" name=\"new\""
			    " value=\"1\">New code</button></form>");
		}
		if (r->token != NULL) {
			web_buf_printf(&body, "<form class=\"inline\" method=\"post\""
			    " action=\"%sadmin/revoke\">", a->root);
			web_admin_hidden(&body, a, r->tenant, r->agent);
			web_buf_add(&body, "<button type=\"submit\" class=\"danger\">"
			    "Revoke</button></form>");
		}
		web_buf_add(&body, "</td></tr>\n");
	}
	if (rows.n == 0)
		web_buf_add(&body, "<tr><td colspan=\"6\">No agents yet: routes"
		    " name none and nobody has enrolled.</td></tr>\n");
	agent_rows_clear(&rows);
	web_buf_add(&body, "</tbody></table>\n");
	if (enroll_on && conf->n_tenants > 0) {
		web_buf_printf(&body, "<h2>Enroll an agent</h2>\n<form method="
		    "\"post\" action=\"%sadmin/enroll\" id=\"enroll\">", a->root);
		web_admin_hidden(&body, a, conf->n_tenants == 1 ?
		    conf->tenants[0]->name : NULL, NULL);
		web_buf_printf(&body, "<p><label for=\"agent\">Agent's Halo email"
		    " address</label><br><input type=\"email\" id=\"agent\""
		    " name=\"agent\" maxlength=\"%d\" required></p>",
		    ADMIN_AGENT_MAX);
		if (conf->n_tenants > 1) {
			web_buf_add(&body, "<p><label for=\"tenant\">Tenant</label>"
			    "<br><select id=\"tenant\" name=\"tenant\">");
			for (i = 0; i < conf->n_tenants; i++) {
				web_buf_add(&body, "<option>");
				web_buf_escape(&body, conf->tenants[i]->name);
				web_buf_add(&body, "</option>");
			}
			web_buf_add(&body, "</select></p>");
		}
		web_buf_add(&body, "<p><button type=\"submit\" id=\"create\">"
		    "Create a one-time code</button></p></form>\n"
		    "<p>The code is valid for 10 minutes and works once. Give it"
		    " to the agent yourself (in person, by phone, or in a chat"
		    " they know is you): whoever uses it signs in to Halo, and"
		    " the gateway checks that it is that agent.</p>\n");
	}
	web_admin_ops_jobs(&body, a);
	web_admin_ops_tenants(&body, a);
	return web_admin_page(a, MHD_HTTP_OK, "Admin", &body, NULL);
}

/* TEXT as an inline SVG QR code made of rects (no style, no script: our
 * CSP allows neither inline). */
static void
admin_qr_svg(struct web_buf *b, const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int size, x, y, run;

	if (qr == NULL) {
		web_buf_add(b, "<p>(The QR code could not be made.)</p>\n");
		return;
	}
	size = qr->width + 2 * ADMIN_QR_QUIET;
	web_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\""
	    " class=\"qr\" id=\"qr\" role=\"img\" aria-label=\"QR code of the"
	    " enrollment link\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\""
	    " shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\""
	    " fill=\"#fff\"/>", size, size, size * ADMIN_QR_SCALE,
	    size * ADMIN_QR_SCALE, size, size);
	for (y = 0; y < qr->width; y++) {
		for (x = 0; x < qr->width; x += run > 0 ? run : 1) {
			run = 0;
			while (x + run < qr->width &&
			    (qr->data[y * qr->width + x + run] & 1))
				run++;
			/* one rect per horizontal run of dark modules */
			if (run > 0)
				web_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\""
				    " height=\"1\" fill=\"#000\"/>", x + ADMIN_QR_QUIET,
				    y + ADMIN_QR_QUIET, run);
		}
	}
	web_buf_add(b, "</svg>\n");
	QRcode_free(qr);
}

/* AGENT lower-cased into OUT when it looks like an address. */
static bool
admin_agent_address(const char *agent, char out[ADMIN_AGENT_MAX + 1])
{
	const char *at = strchr(agent, '@');
	size_t i;

	if (at == NULL || at == agent || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strlen(agent) > ADMIN_AGENT_MAX)
		return false;
	for (i = 0; agent[i] != '\0'; i++) {
		if ((unsigned char)agent[i] <= ' ' || agent[i] == 0x7f ||
		    agent[i] == '<' || agent[i] == '>' || agent[i] == '"')
			return false;
		out[i] = (char)((agent[i] >= 'A' && agent[i] <= 'Z') ?
		    agent[i] + 32 : agent[i]);
	}
	out[i] = '\0';
	return true;
}

/* Read TENANT and AGENT from the form; a message when they are unusable. */
static const char *
admin_form_agent(const struct admin_ctx *a, char tenant[72],
    char agent[ADMIN_AGENT_MAX + 1])
{
	const struct web_req *rq = a->call->rq;
	char typed[ADMIN_AGENT_MAX + 1];

	if (!web_form_get(rq->body, rq->len, "tenant", tenant, 72) ||
	    conf_tenant_find(a->call->conf, tenant) == NULL)
		return "No such tenant in this gateway's configuration.";
	if (!web_form_get(rq->body, rq->len, "agent", typed, sizeof(typed)) ||
	    !admin_agent_address(typed, agent))
		return "That is not an email address.";
	return NULL;
}

/* POST /admin/enroll: a one-time code (as "halo-milterctl enroll"). */
static enum MHD_Result
admin_enroll(const struct admin_ctx *a)
{
	struct web *w = a->call->w;
	const struct conf_tenant *t;
	struct web_buf body = { 0 };
	char tenant[72], agent[ADMIN_AGENT_MAX + 1], code[9], shown[10];
	char hash[65], until[40], *link = NULL, *link_code = NULL;
	const char *problem;
	time_t now = time(NULL);
	enum store_status ss;
	enum MHD_Result rc;
	int tries;

	if (w->redirect_uri == NULL)
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Cannot enroll", "error", "Enrollment is off: this gateway"
		    " has no public_url.", true, NULL);
	if ((problem = admin_form_agent(a, tenant, agent)) != NULL)
		return web_admin_message(a, MHD_HTTP_BAD_REQUEST,
		    "Cannot enroll", "error", problem, true, NULL);
	t = conf_tenant_find(a->call->conf, tenant);
	/* old enrollments are history only: keep a month of it */
	store_enroll_purge(w->store, now - 30 * 86400, NULL);
	for (tries = 0, ss = STORE_DUPLICATE; tries < 5 && ss == STORE_DUPLICATE;
	    tries++) {
		if (crypto_user_code(code) != 0 ||
		    enroll_code_hash(w->hash_key, code, hash) != 0) {
			ss = STORE_ERROR;
			break;
		}
		ss = store_enroll_add(w->store, tenant, agent, hash, now,
		    now + ENROLL_CODE_TTL, NULL);
	}
	if (ss != STORE_OK) {
		crypto_wipe(code, sizeof(code));
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Cannot enroll", "error", "The gateway could not store the"
		    " code; try again.", true, NULL);
	}
	enroll_code_format(code, shown);
	crypto_wipe(code, sizeof(code));
	log_info("admin: %s/%s: enrollment code made from %s", tenant, agent,
	    a->call->client);
	if (asprintf(&link, "%s/enroll", w->conf->public_url) < 0)
		link = NULL;
	if (asprintf(&link_code, "%s/enroll?code=%s", w->conf->public_url,
	    shown) < 0)
		link_code = NULL;
	web_admin_time(now + ENROLL_CODE_TTL, until, sizeof(until));
	web_buf_add(&body, "<dl><dt>Agent</dt><dd id=\"code-agent\">");
	web_buf_escape(&body, agent);
	web_buf_add(&body, "</dd><dt>Halo</dt><dd>");
	web_buf_escape(&body, t->halo_url);
	web_buf_add(&body, " (tenant ");
	web_buf_escape(&body, tenant);
	web_buf_add(&body, ")</dd><dt>Code</dt><dd><span class=\"code\""
	    " id=\"code\">");
	web_buf_escape(&body, shown);
	web_buf_printf(&body, "</span><br>valid until %s, once</dd>", until);
	web_buf_add(&body, "<dt>Link</dt><dd><a id=\"link\" href=\"");
	web_buf_escape(&body, link);
	web_buf_add(&body, "\">");
	web_buf_escape(&body, link);
	web_buf_add(&body, "</a> (the agent types the code)</dd>"
	    "<dt>Direct link</dt><dd><a id=\"link-code\" href=\"");
	web_buf_escape(&body, link_code);
	web_buf_add(&body, "\">");
	web_buf_escape(&body, link_code);
	web_buf_add(&body, "</a></dd></dl>\n<p>The agent can scan this with a"
	    " phone to open the direct link:</p>\n");
	if (link_code != NULL)
		admin_qr_svg(&body, link_code);
	web_buf_add(&body, "<p class=\"warn\">Give the code only to the agent"
	    " named above. It is shown once; a new one can be made at any"
	    " time.</p>\n");
	web_buf_printf(&body, "<p><a href=\"%sadmin\">Back to the admin page"
	    "</a></p>\n", a->root);
	rc = web_admin_page(a, MHD_HTTP_OK, "Enrollment code", &body, NULL);
	crypto_wipe(shown, sizeof(shown));
	if (link_code != NULL)
		crypto_free_secret(link_code, strlen(link_code));
	free(link);
	return rc;
}

/* POST /admin/revoke: delete the agent's token (as "halo-milterctl
 * revoke"). */
static enum MHD_Result
admin_revoke(const struct admin_ctx *a)
{
	char tenant[72], agent[ADMIN_AGENT_MAX + 1], message[600];
	const char *problem;
	enum store_status ss;

	if ((problem = admin_form_agent(a, tenant, agent)) != NULL)
		return web_admin_message(a, MHD_HTTP_BAD_REQUEST,
		    "Cannot revoke", "error", problem, true, NULL);
	ss = store_token_delete(a->call->w->store, tenant, agent);
	if (ss == STORE_NOT_FOUND) {
		snprintf(message, sizeof(message), "%s has no token in tenant %s.",
		    agent, tenant);
		return web_admin_message(a, MHD_HTTP_NOT_FOUND, "Cannot revoke",
		    "error", message, true, NULL);
	}
	if (ss != STORE_OK)
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Cannot revoke", "error", "The gateway could not change its"
		    " database; try again.", true, NULL);
	log_info("admin: %s/%s: token revoked from %s", tenant, agent,
	    a->call->client);
	snprintf(message, sizeof(message), "The token of %s in tenant %s was"
	    " deleted. Their jobs wait until they enroll again. Halo still knows"
	    " the grant: remove it in Halo too if the token may have leaked.",
	    agent, tenant);
	return web_admin_message(a, MHD_HTTP_OK, "Revoked", "ok", message, true,
	    NULL);
}

/* POST /admin/login. */
static enum MHD_Result
admin_login(struct admin_ctx *a)
{
	struct web *w = a->call->w;
	const struct web_req *rq = a->call->rq;
	char stored[CRYPTO_PW_HASH_MAX + 2], password[CRYPTO_PW_MAX + 1];
	char cookie[160];
	time_t now = time(NULL);
	enum MHD_Result rc;
	int have, match = 0;

	if (web_limiter_blocked(admin_limiter, a->call->client, now)) {
		log_notice("admin: %s is over the wrong-password limit",
		    a->call->client);
		return web_admin_message(a, MHD_HTTP_TOO_MANY_REQUESTS,
		    "Too many attempts", "error", "Too many wrong passwords."
		    " Wait 15 minutes, then try again.", false, NULL);
	}
	have = admin_pw_read(w->sd.admin_pw, stored, sizeof(stored));
	if (have == 0)
		return admin_not_set_up(a);
	if (have < 0)
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Admin sign-in", "error", "The gateway cannot read its admin"
		    " password file; see its log.", false, NULL);
	if (web_form_get(rq->body, rq->len, "password", password,
	    sizeof(password)))
		match = crypto_password_verify(stored, password);
	crypto_wipe(password, sizeof(password));
	crypto_wipe(stored, sizeof(stored));
	if (match < 0) {
		log_warnx("admin: the admin password file is malformed; run"
		    " halo-milterctl admin-password");
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Admin sign-in", "error", "The gateway cannot read its admin"
		    " password file; see its log.", false, NULL);
	}
	if (match == 0) {
		web_limiter_fail(admin_limiter, a->call->client, now);
		log_notice("admin: wrong password from %s", a->call->client);
		return admin_login_form(a, MHD_HTTP_FORBIDDEN, "Wrong password.",
		    NULL);
	}
	if (!web_admin_session_new(now, a->stamp, a->sid))
		return web_admin_message(a, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "Admin sign-in", "error", "The gateway could not start a"
		    " session; try again.", false, NULL);
	log_info("admin: signed in from %s", a->call->client);
	admin_cookie(w, a->sid, cookie, sizeof(cookie));
	rc = web_respond(w, a->call->c, MHD_HTTP_SEE_OTHER, WEB_CT_TEXT, NULL, 0,
	    "../admin", cookie, false);
	crypto_wipe(cookie, sizeof(cookie));
	return rc;
}

/* POST /admin/logout (session and CSRF already checked). */
static enum MHD_Result
admin_logout(struct admin_ctx *a)
{
	char cookie[160];

	web_admin_session_end(a->sid);
	log_info("admin: signed out from %s", a->call->client);
	admin_cookie(a->call->w, NULL, cookie, sizeof(cookie));
	return web_respond(a->call->w, a->call->c, MHD_HTTP_SEE_OTHER,
	    WEB_CT_TEXT, NULL, 0, "../admin", cookie, false);
}

/* Is the POST a form? */
static bool
admin_is_form(struct MHD_Connection *c)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);

	return ct != NULL && strncasecmp(ct,
	    "application/x-www-form-urlencoded", 33) == 0;
}

/* The admin part's routes. */
bool
web_admin_route(const struct web_call *call, enum MHD_Result *rc)
{
	struct web *w = call->w;
	struct admin_ctx a;
	const char *cookies, *page;
	char posted[72];
	bool ok;

	if (strcmp(call->url, "/static/admin.css") == 0) {
		*rc = call->get ? web_respond(w, call->c, MHD_HTTP_OK,
		    "text/css; charset=utf-8", strdup(admin_css),
		    sizeof(admin_css) - 1, NULL, NULL, true) :
		    web_respond(w, call->c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    WEB_CT_TEXT, NULL, 0, NULL, NULL, false);
		return true;
	}
	if (strcmp(call->url, "/admin") != 0 &&
	    strncmp(call->url, "/admin/", 7) != 0)
		return false;
	pthread_once(&admin_once, admin_init);
	memset(&a, 0, sizeof(a));
	a.call = call;
	a.root = strcmp(call->url, "/admin") == 0 ? "" : "../";
	page = call->url + 6;                   /* "" or "/NAME" */

	if (!conf_admin_allowed(w->conf, call->ip)) {
		log_notice("admin: refused %s (not in admin_networks)", call->ip);
		*rc = web_admin_message(&a, MHD_HTTP_FORBIDDEN, "Not allowed",
		    "error", "The admin page cannot be opened from your network.",
		    false, NULL);
		return true;
	}
	if (!admin_ready) {
		*rc = web_admin_message(&a, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "Admin", "error", "The admin page could not start.", false,
		    NULL);
		return true;
	}
	if (!admin_pw_set(w->sd.admin_pw, &a.stamp)) {
		*rc = admin_not_set_up(&a);
		return true;
	}
	cookies = MHD_lookup_connection_value(call->c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_COOKIE);
	if (web_cookie_get(cookies, admin_cookie_name(w), a.sid, sizeof(a.sid)))
		a.signed_in = web_admin_session_check(a.sid, time(NULL), a.stamp,
		    a.csrf);

	if (*page == '\0') {
		if (!call->get)
			*rc = web_respond(w, call->c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    WEB_CT_TEXT, NULL, 0, NULL, NULL, false);
		else if (!a.signed_in)
			*rc = admin_login_form(&a, MHD_HTTP_OK, NULL, NULL);
		else
			*rc = admin_home(&a);
		goto out;
	}
	if (strcmp(page, "/login") != 0 && strcmp(page, "/enroll") != 0 &&
	    strcmp(page, "/revoke") != 0 && strcmp(page, "/logout") != 0 &&
	    strcmp(page, "/retry") != 0 && strcmp(page, "/doctor") != 0) {
		*rc = web_admin_message(&a, MHD_HTTP_NOT_FOUND, "Not found",
		    "error", "There is no such page here.", true, NULL);
		goto out;
	}
	if (!call->post) {
		*rc = web_respond(w, call->c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    WEB_CT_TEXT, NULL, 0, NULL, NULL, false);
		goto out;
	}
	if (!web_origin_ok(w, call->c)) {
		log_notice("admin: refused a cross-site POST from %s",
		    call->client);
		*rc = web_admin_message(&a, MHD_HTTP_FORBIDDEN, "Refused",
		    "error", "This form was sent from another site.", false, NULL);
		goto out;
	}
	if (!admin_is_form(call->c)) {
		*rc = web_admin_message(&a, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
		    "Refused", "error", "Expected a form.", false, NULL);
		goto out;
	}
	if (strcmp(page, "/login") == 0) {
		a.signed_in = false;
		*rc = admin_login(&a);
		goto out;
	}
	if (!a.signed_in) {
		*rc = admin_login_form(&a, MHD_HTTP_FORBIDDEN, "Your session has"
		    " ended (or you are not signed in). Sign in again.", NULL);
		goto out;
	}
	ok = web_form_get(call->rq->body, call->rq->len, "csrf", posted,
	    sizeof(posted)) && web_admin_csrf_ok(a.csrf, posted);
	crypto_wipe(posted, sizeof(posted));
	if (!ok) {
		log_notice("admin: refused a POST without a valid CSRF token from"
		    " %s", call->client);
		*rc = web_admin_message(&a, MHD_HTTP_FORBIDDEN, "Refused",
		    "error", "This form did not come from this admin session."
		    " Nothing was changed. Reload the admin page and try again.",
		    true, NULL);
		goto out;
	}
	if (strcmp(page, "/enroll") == 0)
		*rc = admin_enroll(&a);
	else if (strcmp(page, "/revoke") == 0)
		*rc = admin_revoke(&a);
	else if (strcmp(page, "/retry") == 0)
		*rc = web_admin_ops_retry(&a);
	else if (strcmp(page, "/doctor") == 0)
		*rc = web_admin_ops_doctor(&a);
	else
		*rc = admin_logout(&a);
out:
	crypto_wipe(&a, sizeof(a));
	return true;
}
