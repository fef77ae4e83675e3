/*
 * halo.c - typed HaloPSA REST calls (see halo.h and /work/shared/halo-api.md).
 */
#include "halo.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "conf.h"
#include "crypto.h"
#include "log.h"
#include "util.h"

#define HALO_PAGE_SIZE      100
#define HALO_MAX_PAGES      10      /* contact search: at most 1000 hits read */
#define HALO_MAX_CANDIDATES 10      /* client-by-domain: clients verified
                                     * one by one (a GET /Site each); more
                                     * and the sites are scanned instead */
#define HALO_EMAIL_MAX      254
#define HALO_DOMAIN_MAX     253
#define HALO_MSGID_MAX      998
#define HALO_JSON_INT_MAX   9007199254740992.0      /* 2^53 */
#define HALO_B64_CHUNK      (48 * 1024)     /* file bytes encoded at once
                                             * (a multiple of 3) */

struct halo_stream;

/* Reset *ERR to "no error". */
static void
halo_err_clear(struct halo_err *err)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
	err->kind = HTTP_OK;
	err->retry_after = -1;
}

/* Copy LEN bytes of S into OUT as one printable ASCII line (whitespace runs
 * collapsed, ends trimmed), at most OUTSZ-1 bytes. */
static void
halo_printable(char *out, size_t outsz, const char *s, size_t len)
{
	size_t i, o = 0;
	bool space = false;

	if (outsz == 0)
		return;
	for (i = 0; s != NULL && i < len && s[i] != '\0' && o + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			space = o > 0;
			continue;
		}
		if (space) {
			out[o++] = ' ';
			space = false;
			if (o + 1 >= outsz)
				break;
		}
		out[o++] = (ch > 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	out[o] = '\0';
}

/* Fill *ERR with KIND, STATUS and a printf-formatted message. */
static void halo_err_set(struct halo_err *err, enum http_result kind, long status,
    const char *fmt, ...) LOG_PRINTF(4, 5);
static void
halo_err_set(struct halo_err *err, enum http_result kind, long status,
    const char *fmt, ...)
{
	char tmp[sizeof(err->message)];
	va_list ap;

	if (err == NULL)
		return;
	err->kind = kind;
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	halo_printable(err->message, sizeof(err->message), tmp, strlen(tmp));
}

/* ---------------------------------------------------------------- JSON */

/* Member KEY of OBJ (case-insensitive), or NULL. */
static const cJSON *
halo_json_get(const cJSON *obj, const char *key)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	return cJSON_GetObjectItem(obj, key);
}

/* String member KEY of OBJ, or NULL. */
static const char *
halo_json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = halo_json_get(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Integer member KEY of OBJ: a JSON integer or a string of digits. */
static bool
halo_json_int(const cJSON *obj, const char *key, int64_t *out)
{
	const cJSON *v = halo_json_get(obj, key);
	const char *s;
	int64_t n = 0;
	bool neg = false;

	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d != d || d > HALO_JSON_INT_MAX || d < -HALO_JSON_INT_MAX ||
		    d != (double)(int64_t)d)
			return false;
		*out = (int64_t)d;
		return true;
	}
	if (!cJSON_IsString(v))
		return false;
	s = v->valuestring;
	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s == '\0' || strlen(s) > 15)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (*s - '0');
	}
	*out = neg ? -n : n;
	return true;
}

/* Boolean member KEY of OBJ: true/false, a number, or "true"/"false". */
static bool
halo_json_bool(const cJSON *obj, const char *key, bool dflt)
{
	const cJSON *v = halo_json_get(obj, key);

	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	if (cJSON_IsNumber(v))
		return v->valuedouble != 0;
	if (cJSON_IsString(v)) {
		if (strcasecmp(v->valuestring, "true") == 0 || strcmp(v->valuestring, "1") == 0)
			return true;
		if (strcasecmp(v->valuestring, "false") == 0 || strcmp(v->valuestring, "0") == 0)
			return false;
	}
	return dflt;
}

/* strdup of string member KEY ("" when absent); NULL only when out of memory. */
static char *
halo_json_dup(const cJSON *obj, const char *key)
{
	const char *s = halo_json_str(obj, key);

	return strdup(s != NULL ? s : "");
}

/* The item array of a list response: a bare array, OBJ[KEY], or the first
 * array member of a wrapping object. NULL when there is none. */
static const cJSON *
halo_json_list(const cJSON *root, const char *key)
{
	const cJSON *v;

	if (cJSON_IsArray(root))
		return root;
	if (!cJSON_IsObject(root))
		return NULL;
	v = cJSON_GetObjectItem(root, key);
	if (cJSON_IsArray(v))
		return v;
	cJSON_ArrayForEach(v, root) {
		if (cJSON_IsArray(v))
			return v;
	}
	return NULL;
}

/* The single object of a response: the object itself, an array's first,
 * or the first of a wrapping object's list ({"tickets": [{...}]}: one of
 * the write answers the public clients report). */
static const cJSON *
halo_json_object(const cJSON *root)
{
	const cJSON *v;

	if (cJSON_IsObject(root) && cJSON_GetObjectItem(root, "id") == NULL) {
		cJSON_ArrayForEach(v, root) {
			if (cJSON_IsArray(v) && cJSON_GetArraySize(v) >= 1 &&
			    cJSON_IsObject(cJSON_GetArrayItem(v, 0)))
				return cJSON_GetArrayItem(v, 0);
		}
	}
	if (cJSON_IsObject(root))
		return root;
	if (cJSON_IsArray(root) && cJSON_GetArraySize(root) >= 1 &&
	    cJSON_IsObject(cJSON_GetArrayItem(root, 0)))
		return cJSON_GetArrayItem(root, 0);
	return NULL;
}

/* ASCII case-insensitive equality (locale-free). */
static bool
halo_ascii_caseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/*
 * Valid UTF-8 copy of untrusted S: invalid bytes become U+FFFD, control
 * characters a space (SINGLE_LINE: also tab and line ends; then the ends are
 * trimmed), at most MAX_CHARS code points (0 = no limit). malloc'd.
 */
static char *
halo_utf8_clean(const char *s, size_t max_chars, bool single_line)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, o = 0, chars = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(len * 3 + 1);
	if (out == NULL)
		return NULL;
	while (i < len && (max_chars == 0 || chars < max_chars)) {
		size_t n = util_utf8_seq(p + i, len - i);
		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
			bool keep = !single_line &&
			    (p[i] == '\t' || p[i] == '\n' || p[i] == '\r');
			out[o++] = keep ? (char)p[i] : ' ';
			i++;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
		chars++;
	}
	out[o] = '\0';
	if (single_line) {
		size_t start = 0;
		while (o > 0 && out[o - 1] == ' ')
			out[--o] = '\0';
		while (out[start] == ' ')
			start++;
		if (start > 0)
			memmove(out, out + start, o - start + 1);
	}
	return out;
}

/* Add string KEY = cleaned S to OBJ; false when out of memory. */
static bool
halo_json_add_str(cJSON *obj, const char *key, const char *s, size_t max_chars,
    bool single_line)
{
	char *clean = halo_utf8_clean(s, max_chars, single_line);
	bool ok;

	if (clean == NULL)
		return false;
	ok = cJSON_AddStringToObject(obj, key, clean) != NULL;
	free(clean);
	return ok;
}

/* ---------------------------------------------------------------- errors */

/* One short message out of a JSON error value, or false. */
static bool
halo_error_from_json(const cJSON *v, char *out, size_t outsz)
{
	const cJSON *m, *first;
	const char *s, *d;

	if (cJSON_IsString(v)) {
		halo_printable(out, outsz, v->valuestring, strlen(v->valuestring));
		return out[0] != '\0';
	}
	if (cJSON_IsArray(v))
		return halo_error_from_json(cJSON_GetArrayItem(v, 0), out, outsz);
	if (!cJSON_IsObject(v))
		return false;
	/* OAuth2: {"error","error_description"} */
	if ((s = halo_json_str(v, "error")) != NULL && *s != '\0') {
		char tmp[512];
		d = halo_json_str(v, "error_description");
		snprintf(tmp, sizeof(tmp), "%s%s%s", s, d && *d ? ": " : "", d && *d ? d : "");
		halo_printable(out, outsz, tmp, strlen(tmp));
		return true;
	}
	/* {"ClassName","Message"} and {"Message"} */
	if ((s = halo_json_str(v, "Message")) != NULL && *s != '\0') {
		halo_printable(out, outsz, s, strlen(s));
		return true;
	}
	/* model binding: {"title", "errors": {"path": ["msg"]}} or {"path": ["msg"]} */
	m = halo_json_get(v, "errors");
	if (!cJSON_IsObject(m))
		m = v;
	cJSON_ArrayForEach(first, m) {
		const cJSON *msg = cJSON_IsArray(first) ? cJSON_GetArrayItem(first, 0) : NULL;
		if (cJSON_IsString(msg) && first->string != NULL) {
			char tmp[512];
			snprintf(tmp, sizeof(tmp), "%s: %s", first->string, msg->valuestring);
			halo_printable(out, outsz, tmp, strlen(tmp));
			return true;
		}
	}
	if ((s = halo_json_str(v, "title")) != NULL || (s = halo_json_str(v, "detail")) != NULL ||
	    (s = halo_json_str(v, "error_description")) != NULL) {
		halo_printable(out, outsz, s, strlen(s));
		return out[0] != '\0';
	}
	return false;
}

/* One short printable message from an error BODY of LEN bytes (plain text,
 * any of the JSON shapes, or HTML); "HTTP <status>" when it says nothing. */
void
halo_error_message(long status, const char *body, size_t len, char *out, size_t outsz)
{
	cJSON *root;

	if (outsz == 0)
		return;
	out[0] = '\0';
	while (body != NULL && len > 0 &&
	    (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) {
		body++;
		len--;
	}
	if (body != NULL && len > 0 && len <= HALO_MAX_RESPONSE &&
	    (root = cJSON_ParseWithLength(body, len)) != NULL) {
		(void)halo_error_from_json(root, out, outsz);
		cJSON_Delete(root);
	} else if (body != NULL && len > 0 && *body == '<') {
		snprintf(out, outsz, "HTTP %ld (HTML body)", status);
	} else if (body != NULL && len > 0) {
		halo_printable(out, outsz, body, len);
	}
	if (out[0] == '\0')
		snprintf(out, outsz, "HTTP %ld", status);
}

/* Turn a failed response into *ERR (message from the body when it has one). */
static void
halo_err_from_response(struct halo_err *err, enum http_result kind,
    const struct http_response *resp)
{
	if (err == NULL)
		return;
	err->kind = kind;
	err->status = resp->status;
	err->retry_after = resp->retry_after;
	err->message[0] = '\0';
	if (resp->status > 0 && kind != HTTP_TOO_LARGE)
		halo_error_message(resp->status, resp->body, resp->body_len,
		    err->message, sizeof(err->message));
	else
		halo_printable(err->message, sizeof(err->message), resp->error,
		    strlen(resp->error));
	if (err->message[0] == '\0')
		snprintf(err->message, sizeof(err->message), "%s", http_result_name(kind));
}

/* ---------------------------------------------------------------- streamed bodies */

/*
 * A request body sent in pieces: the printed JSON, in which the data URI
 * of attachment I is the placeholder "halo-att-<tag>-<I>" (TAG: random,
 * new per request), and the attachments, base64-encoded HALO_B64_CHUNK
 * bytes at a time while libcurl sends. The bytes are those of the JSON
 * printed with the data URIs in it: cJSON prints a data URI as it is (its
 * characters need no escaping). A mapped file's pages are dropped once
 * encoded, so a large mail never sits in the worker's memory.
 */
struct halo_stream {
	const struct halo_attachment *att;
	size_t n;
	char tag[33];               /* 32 hex digits */
	const char *text;           /* the printed JSON (the caller's) */
	size_t text_len;
	size_t *cut;                /* 2n: placeholder I at [cut[2I], cut[2I+1]) */
	size_t body_len;
	/* the producer's place */
	enum { HALO_ST_TEXT, HALO_ST_PREFIX, HALO_ST_DATA } phase;
	size_t i;                   /* text piece I, or attachment I */
	size_t off;                 /* in the text, the prefix or the file */
	char prefix[160];           /* "data:<type>;base64," */
	size_t prefix_len;
	size_t dropped;             /* bytes of the mapping advised away */
	char enc[HALO_B64_CHUNK / 3 * 4 + 1];
	size_t enc_len, enc_off;
};

static bool halo_inline_att;    /* tests: the old in-memory bodies */

/* Tests only: build attachment bodies in memory (see halo.h). */
void
halo_set_inline_attachments(bool inline_body)
{
	halo_inline_att = inline_body;
}

static const char *halo_attach_mime(const struct halo_attachment *a);

/* A stream for the N attachments at ATT; NULL when N is 0, in the tests'
 * inline mode, or out of memory (*OOM set). */
static struct halo_stream *
halo_stream_new(const struct halo_attachment *att, size_t n, bool *oom)
{
	struct halo_stream *st;
	unsigned char rnd[16];
	size_t i;

	*oom = false;
	if (n == 0 || att == NULL || halo_inline_att)
		return NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->cut = calloc(2 * n, sizeof(*st->cut))) == NULL ||
	    RAND_bytes(rnd, sizeof(rnd)) != 1) {
		if (st != NULL)
			free(st->cut);
		free(st);
		*oom = true;
		return NULL;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(st->tag + 2 * i, 3, "%02x", rnd[i]);
	st->att = att;
	st->n = n;
	return st;
}

/* Free ST; NULL is fine. Returns NULL. */
static struct halo_stream *
halo_stream_free(struct halo_stream *st)
{
	if (st != NULL) {
		free(st->cut);
		OPENSSL_cleanse(st->enc, sizeof(st->enc));
		free(st);
	}
	return NULL;
}

/* The placeholder of attachment I into OUT. */
static void
halo_stream_placeholder(const struct halo_stream *st, size_t i, char *out,
    size_t outsz)
{
	snprintf(out, outsz, "halo-att-%s-%zu", st->tag, i);
}

/* "data:<type>;base64," for A into OUT; its length. */
static size_t
halo_stream_prefix(const struct halo_attachment *a, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "data:%s;base64,", halo_attach_mime(a));

	return n > 0 && (size_t)n < outsz ? (size_t)n : 0;
}

/* Find the placeholders in TEXT (the printed JSON) and work out the body's
 * length; false when they are not each there exactly once, in order. */
static bool
halo_stream_start(struct halo_stream *st, const char *text)
{
	char ph[64], prefix[sizeof(st->prefix)];
	const char *at, *from = text;
	size_t i, len, total, hits = 0;

	st->text = text;
	st->text_len = strlen(text);
	for (at = text; (at = strstr(at, st->tag)) != NULL; at++)
		hits++;
	if (hits != st->n)
		return false;
	total = st->text_len;
	for (i = 0; i < st->n; i++) {
		const struct halo_attachment *a = &st->att[i];

		halo_stream_placeholder(st, i, ph, sizeof(ph));
		len = strlen(ph);
		/* a whole JSON string: "<placeholder>" */
		if ((at = strstr(from, ph)) == NULL || at == text || at[-1] != '"' ||
		    at[len] != '"')
			return false;
		st->cut[2 * i] = (size_t)(at - text);
		st->cut[2 * i + 1] = st->cut[2 * i] + len;
		from = at + len;
		if ((a->data == NULL && a->len > 0) || a->len > (SIZE_MAX / 4 - 1) * 3 ||
		    halo_stream_prefix(a, prefix, sizeof(prefix)) == 0)
			return false;
		total = total - len + strlen(prefix) + (a->len + 2) / 3 * 4;
	}
	st->body_len = total;
	st->phase = HALO_ST_TEXT;
	st->i = st->off = 0;
	return true;
}

/* Drop the pages of A's mapping below UPTO (page-aligned down; all of
 * it at the end) from memory: the file keeps them. */
static void
halo_stream_drop(struct halo_stream *st, const struct halo_attachment *a,
    size_t upto)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t end;

	if (!a->mapped || a->data == NULL || page <= 0)
		return;
	end = upto >= a->len ? a->len : upto / (size_t)page * (size_t)page;
	if (end > st->dropped) {
		(void)madvise((void *)(uintptr_t)(a->data + st->dropped),
		    end - st->dropped, MADV_DONTNEED);
		st->dropped = end;
	}
}

/* http_request.body_read: the next at most MAX bytes of the body. */
static size_t
halo_stream_read(char *buf, size_t max, void *arg)
{
	struct halo_stream *st = arg;
	size_t out = 0, k;

	while (out < max) {
		const struct halo_attachment *a = st->i < st->n ? &st->att[st->i] :
		    NULL;

		if (st->phase == HALO_ST_TEXT) {
			size_t end = a != NULL ? st->cut[2 * st->i] : st->text_len;

			k = end - st->off < max - out ? end - st->off : max - out;
			memcpy(buf + out, st->text + st->off, k);
			st->off += k;
			out += k;
			if (st->off < end || a == NULL)
				break;
			st->prefix_len = halo_stream_prefix(a, st->prefix,
			    sizeof(st->prefix));
			st->phase = HALO_ST_PREFIX;
			st->off = 0;
		} else if (st->phase == HALO_ST_PREFIX) {
			k = st->prefix_len - st->off < max - out ?
			    st->prefix_len - st->off : max - out;
			memcpy(buf + out, st->prefix + st->off, k);
			st->off += k;
			out += k;
			if (st->off < st->prefix_len)
				break;
			st->phase = HALO_ST_DATA;
			st->off = st->dropped = st->enc_len = st->enc_off = 0;
		} else if (st->enc_off < st->enc_len) {
			k = st->enc_len - st->enc_off < max - out ?
			    st->enc_len - st->enc_off : max - out;
			memcpy(buf + out, st->enc + st->enc_off, k);
			st->enc_off += k;
			out += k;
		} else if (st->off < a->len) {
			size_t n = a->len - st->off < HALO_B64_CHUNK ?
			    a->len - st->off : HALO_B64_CHUNK;
			int w = EVP_EncodeBlock((unsigned char *)st->enc,
			    a->data + st->off, (int)n);

			if (w < 0)
				return 0;
			st->off += n;
			st->enc_len = (size_t)w;
			st->enc_off = 0;
			halo_stream_drop(st, a, st->off);
		} else {
			/* this file is sent: on with the text after it */
			st->off = st->cut[2 * st->i + 1];
			st->i++;
			st->phase = HALO_ST_TEXT;
		}
	}
	return out;
}

/* Make REQ send ST's body (halo_stream_start() done). */
static void
halo_stream_request(struct halo_stream *st, struct http_request *req)
{
	req->body = NULL;
	req->body_len = st->body_len;
	req->body_read = halo_stream_read;
	req->body_arg = st;
}

/* ---------------------------------------------------------------- transport */

/* BASE without trailing slashes, as a malloc'd string. */
static char *
halo_trim_base(const char *base)
{
	size_t n;
	char *out;

	if (base == NULL)
		return NULL;
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, base, n);
	out[n] = '\0';
	return out;
}

/* Authorisation server base URL; malloc'd. */
static char *
halo_auth_base(const struct halo_conf *c)
{
	char *base, *out;

	if (c->auth_url != NULL && *c->auth_url != '\0')
		return halo_trim_base(c->auth_url);
	base = halo_trim_base(c->halo_url);
	if (base == NULL || asprintf(&out, "%s/auth", base) < 0)
		out = NULL;
	free(base);
	return out;
}

/*
 * One request; on 2xx parse the body into *JSON (when JSON is not NULL).
 * WHAT names the route for log lines (never a query string).
 * WIPE: the response holds secrets (tokens); clear it before freeing.
 */
static int
halo_call(const struct halo_conf *c, const char *what, const char *method,
    const char *url, const char *bearer, const char *ctype, const char *body,
    struct halo_stream *stream, bool wipe, cJSON **json, struct halo_err *err)
{
	struct http_request req = {
		.method = method, .url = url, .content_type = ctype, .body = body,
		.body_len = body != NULL ? strlen(body) : 0, .bearer = bearer,
		.total_timeout_ms = c->timeout_ms, .max_response = HALO_MAX_RESPONSE,
	};
	struct http_response resp;
	enum http_result res;
	const cJSON *obj;
	const char *warn;
	int rc = -1;

	if (json != NULL)
		*json = NULL;
	if (stream != NULL)
		halo_stream_request(stream, &req);
	res = http_do(&req, &resp);
	if (res != HTTP_OK) {
		halo_err_from_response(err, res, &resp);
		goto out;
	}
	if (json == NULL) {
		rc = 0;
		goto out;
	}
	if (resp.body == NULL || resp.body_len == 0 || resp.body_len > HALO_MAX_RESPONSE ||
	    (*json = cJSON_ParseWithLength(resp.body, resp.body_len)) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, resp.status,
		    "%s: HTTP %ld with an empty or invalid JSON body", what, resp.status);
		goto out;
	}
	obj = halo_json_object(*json);
	if ((warn = halo_json_str(obj, "_warning")) != NULL) {
		char safe[200];
		log_warnx("halo: %s: warning: %s", what, log_safe(warn, safe, sizeof(safe)));
	}
	rc = 0;
out:
	if (wipe && resp.body != NULL)
		OPENSSL_cleanse(resp.body, resp.body_len);
	http_response_clear(&resp);
	return rc;
}

/* GET halo_url + PATH (with its escaped query) as JSON. */
static int
halo_api_get(const struct halo_conf *c, const char *token, const char *what,
    const char *path, cJSON **json, struct halo_err *err)
{
	char *base = halo_trim_base(c->halo_url), *url = NULL;
	int rc;

	if (base == NULL || asprintf(&url, "%s%s", base, path) < 0) {
		free(base);
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		return -1;
	}
	free(base);
	rc = halo_call(c, what, "GET", url, token, NULL, NULL, NULL, false, json,
	    err);
	free(url);
	return rc;
}

/* POST BODY (a JSON value) to halo_url + PATH; parse the answer into *JSON.
 * STREAM (NULL: none) sends the attachments whose placeholders BODY holds. */
static int
halo_api_post(const struct halo_conf *c, const char *token, const char *what,
    const char *path, const cJSON *body, struct halo_stream *stream,
    cJSON **json, struct halo_err *err)
{
	char *base = halo_trim_base(c->halo_url), *url = NULL, *text;
	int rc;

	text = cJSON_PrintUnformatted(body);
	if (text == NULL || base == NULL || asprintf(&url, "%s%s", base, path) < 0) {
		free(base);
		cJSON_free(text);
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		return -1;
	}
	free(base);
	if (stream != NULL && !halo_stream_start(stream, text)) {
		free(url);
		cJSON_free(text);
		halo_err_set(err, HTTP_INTERNAL, 0, "%s: cannot build request", what);
		return -1;
	}
	rc = halo_call(c, what, "POST", url, token, "application/json", text,
	    stream, false, json, err);
	free(url);
	cJSON_free(text);
	return rc;
}

/* Check the common arguments of a resource call. */
static bool
halo_args_ok(const struct halo_conf *c, const char *token, struct halo_err *err)
{
	halo_err_clear(err);
	if (c == NULL || c->halo_url == NULL || *c->halo_url == '\0') {
		halo_err_set(err, HTTP_INTERNAL, 0, "halo_url not configured");
		return false;
	}
	if (token == NULL || *token == '\0') {
		halo_err_set(err, HTTP_INTERNAL, 0, "no access token");
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- OAuth2 */

/* Wipe and free the tokens, reset *T. */
void
halo_tokens_clear(struct halo_tokens *t)
{
	if (t == NULL)
		return;
	if (t->access_token != NULL)
		OPENSSL_cleanse(t->access_token, strlen(t->access_token));
	if (t->refresh_token != NULL)
		OPENSSL_cleanse(t->refresh_token, strlen(t->refresh_token));
	free(t->access_token);
	free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
}

/* Token endpoint URL: auth base + "/token" [+ "?tenant="]; malloc'd. */
static char *
halo_token_url(const struct halo_conf *c)
{
	char *base = halo_auth_base(c), *ten = NULL, *url = NULL;
	int n;

	if (base == NULL)
		return NULL;
	if (c->tenant != NULL && *c->tenant != '\0') {
		ten = http_url_escape(c->tenant);
		n = ten != NULL ? asprintf(&url, "%s/token?tenant=%s", base, ten) : -1;
	} else {
		n = asprintf(&url, "%s/token", base);
	}
	if (n < 0)
		url = NULL;
	free(base);
	free(ten);
	return url;
}

/* POST the form PAIRS to the token endpoint and parse the tokens. */
static int
halo_token_post(const struct halo_conf *c, const char *const *pairs,
    struct halo_tokens *out, struct halo_err *err)
{
	char *url = NULL, *form = NULL;
	const char *at, *rt, *tt, *sc;
	cJSON *root = NULL;
	int64_t exp;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	url = halo_token_url(c);
	form = http_form_encode(pairs);
	if (url == NULL || form == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	if (halo_call(c, "POST /token", "POST", url, NULL,
	    "application/x-www-form-urlencoded", form, NULL, true, &root, err) != 0) {
		/* OAuth2 errors are 400 (sometimes 401) with {"error": ...} */
		if (err != NULL && strncmp(err->message, "invalid_grant", 13) == 0 &&
		    (err->message[13] == '\0' || err->message[13] == ':')) {
			err->kind = HTTP_CLIENT_ERROR;
			err->invalid_grant = true;
		}
		goto out;
	}
	if (!cJSON_IsObject(root) || (at = halo_json_str(root, "access_token")) == NULL ||
	    *at == '\0') {
		halo_err_set(err, HTTP_INTERNAL, 200, "token response without access_token");
		goto out;
	}
	tt = halo_json_str(root, "token_type");
	if (tt != NULL && strcasecmp(tt, "bearer") != 0) {
		halo_err_set(err, HTTP_INTERNAL, 200, "token response: unsupported token_type");
		goto out;
	}
	rt = halo_json_str(root, "refresh_token");
	sc = halo_json_str(root, "scope");
	out->access_token = strdup(at);
	out->refresh_token = (rt != NULL && *rt != '\0') ? strdup(rt) : NULL;
	out->scope = sc != NULL ? strdup(sc) : NULL;
	if (halo_json_int(root, "expires_in", &exp) && exp > 0 && exp < LONG_MAX)
		out->expires_in = (long)exp;
	if (out->access_token == NULL || (rt != NULL && *rt != '\0' && out->refresh_token == NULL) ||
	    (sc != NULL && out->scope == NULL)) {
		halo_tokens_clear(out);
		halo_err_set(err, HTTP_INTERNAL, 200, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (form != NULL) {
		OPENSSL_cleanse(form, strlen(form));
		free(form);
	}
	free(url);
	if (root != NULL) {
		/* wipe the token strings inside the parsed tree too */
		const cJSON *v;
		cJSON_ArrayForEach(v, root) {
			if (cJSON_IsString(v))
				OPENSSL_cleanse(v->valuestring, strlen(v->valuestring));
		}
		cJSON_Delete(root);
	}
	return rc;
}

/* Check the arguments common to both grants. */
static bool
halo_token_args_ok(const struct halo_conf *c, struct halo_err *err)
{
	halo_err_clear(err);
	if (c == NULL || c->client_id == NULL || *c->client_id == '\0' ||
	    ((c->auth_url == NULL || *c->auth_url == '\0') &&
	    (c->halo_url == NULL || *c->halo_url == '\0'))) {
		halo_err_set(err, HTTP_INTERNAL, 0, "OAuth client not configured");
		return false;
	}
	return true;
}

/* grant_type=refresh_token. */
int
halo_token_refresh(const struct halo_conf *c, const char *refresh_token,
    struct halo_tokens *out, struct halo_err *err)
{
	const char *pairs[9];
	size_t n = 0;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (!halo_token_args_ok(c, err))
		return -1;
	if (out == NULL || refresh_token == NULL || *refresh_token == '\0') {
		halo_err_set(err, HTTP_INTERNAL, 0, "no refresh token");
		return -1;
	}
	pairs[n++] = "grant_type";
	pairs[n++] = "refresh_token";
	pairs[n++] = "refresh_token";
	pairs[n++] = refresh_token;
	pairs[n++] = "client_id";
	pairs[n++] = c->client_id;
	if (c->client_secret != NULL && *c->client_secret != '\0') {
		pairs[n++] = "client_secret";
		pairs[n++] = c->client_secret;
	}
	pairs[n] = NULL;
	return halo_token_post(c, pairs, out, err);
}

/* grant_type=authorization_code with a PKCE verifier. */
int
halo_token_from_code(const struct halo_conf *c, const char *code,
    const char *verifier, const char *redirect_uri, struct halo_tokens *out,
    struct halo_err *err)
{
	const char *pairs[13];
	size_t n = 0;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (!halo_token_args_ok(c, err))
		return -1;
	if (out == NULL || code == NULL || *code == '\0' || verifier == NULL ||
	    *verifier == '\0' || redirect_uri == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "missing code, verifier or redirect_uri");
		return -1;
	}
	pairs[n++] = "grant_type";
	pairs[n++] = "authorization_code";
	pairs[n++] = "code";
	pairs[n++] = code;
	pairs[n++] = "code_verifier";
	pairs[n++] = verifier;
	pairs[n++] = "redirect_uri";
	pairs[n++] = redirect_uri;
	pairs[n++] = "client_id";
	pairs[n++] = c->client_id;
	if (c->client_secret != NULL && *c->client_secret != '\0') {
		pairs[n++] = "client_secret";
		pairs[n++] = c->client_secret;
	}
	pairs[n] = NULL;
	return halo_token_post(c, pairs, out, err);
}

/* The browser URL for an authorization-code + PKCE login; malloc'd. */
char *
halo_authorize_url(const struct halo_conf *c, const char *redirect_uri,
    const char *scope, const char *state, const char *code_challenge)
{
	const char *pairs[17];
	char *base, *query, *url = NULL;
	size_t n = 0;

	if (c == NULL || c->client_id == NULL || redirect_uri == NULL || scope == NULL ||
	    state == NULL || code_challenge == NULL)
		return NULL;
	pairs[n++] = "response_type";
	pairs[n++] = "code";
	pairs[n++] = "client_id";
	pairs[n++] = c->client_id;
	pairs[n++] = "redirect_uri";
	pairs[n++] = redirect_uri;
	pairs[n++] = "scope";
	pairs[n++] = scope;
	pairs[n++] = "state";
	pairs[n++] = state;
	pairs[n++] = "code_challenge";
	pairs[n++] = code_challenge;
	pairs[n++] = "code_challenge_method";
	pairs[n++] = "S256";
	if (c->tenant != NULL && *c->tenant != '\0') {
		pairs[n++] = "tenant";
		pairs[n++] = c->tenant;
	}
	pairs[n] = NULL;
	base = halo_auth_base(c);
	query = http_form_encode(pairs);
	if (base != NULL && query != NULL &&
	    asprintf(&url, "%s/authorize?%s", base, query) < 0)
		url = NULL;
	free(base);
	free(query);
	return url;
}

/* True when ERR is the token endpoint's invalid_grant. */
bool
halo_err_is_invalid_grant(const struct halo_err *err)
{
	return err != NULL && err->invalid_grant && err->kind == HTTP_CLIENT_ERROR;
}

/* ---------------------------------------------------------------- agent */

/* GET /api/Agent/me. */
int
halo_agent_me(const struct halo_conf *c, const char *token,
    struct halo_agent *out, struct halo_err *err)
{
	cJSON *root = NULL;
	const cJSON *obj;
	int rc = -1;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (!halo_args_ok(c, token, err))
		return -1;
	if (out == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "bad arguments");
		return -1;
	}
	if (halo_api_get(c, token, "GET /api/Agent/me", "/api/Agent/me", &root, err) != 0)
		return -1;
	obj = halo_json_object(root);
	if (obj == NULL || !halo_json_int(obj, "id", &out->id)) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Agent/me: no agent id in response");
		goto out;
	}
	out->name = halo_json_dup(obj, "name");
	out->email = halo_json_dup(obj, "email");
	out->disabled = halo_json_bool(obj, "isdisabled", false);
	if (out->name == NULL || out->email == NULL) {
		halo_agent_clear(out);
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* Free an agent, reset *A. */
void
halo_agent_clear(struct halo_agent *a)
{
	if (a == NULL)
		return;
	free(a->name);
	free(a->email);
	memset(a, 0, sizeof(*a));
}

/* ---------------------------------------------------------------- contacts */

/* True when S is a plausible bare address: bounded, one '@', no controls or spaces. */
static bool
halo_email_ok(const char *s)
{
	size_t n = 0, at = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];
		if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>')
			return false;
		if (ch == '@')
			at++;
		if (n >= HALO_EMAIL_MAX)
			return false;
	}
	return n >= 3 && at >= 1;
}

/* Whether address field KEY of USER equals EMAIL (trimmed, ASCII case-insensitive). */
static bool
halo_user_has_email(const cJSON *user, const char *key, const char *email)
{
	const char *v = halo_json_str(user, key);
	size_t n;

	if (v == NULL)
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return halo_ascii_caseeq(v, n, email, strlen(email));
}

/* Exact, case-insensitive contact lookup by e-mail address. */
int
halo_contact_by_email(const struct halo_conf *c, const char *token,
    const char *email, enum halo_match *match, struct halo_contact *out,
    struct halo_err *err)
{
	char *esc = NULL, *path = NULL;
	int64_t first_id = 0, total = -1, seen = 0;
	int page, found = 0, rc = -1;
	cJSON *root = NULL;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (match != NULL)
		*match = HALO_MATCH_NONE;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (match == NULL || out == NULL || email == NULL || !halo_email_ok(email)) {
		halo_err_set(err, HTTP_INTERNAL, 0, "contact lookup: unusable e-mail address");
		return -1;
	}
	if ((esc = http_url_escape(email)) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		return -1;
	}
	for (page = 1; page <= HALO_MAX_PAGES; page++) {
		const cJSON *list, *u;
		int64_t rcount;

		free(path);
		path = NULL;
		if (asprintf(&path, "/api/Users?search=%s&pageinate=true&page_size=%d&page_no=%d",
		    esc, HALO_PAGE_SIZE, page) < 0) {
			path = NULL;
			halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
			goto out;
		}
		if (halo_api_get(c, token, "GET /api/Users", path, &root, err) != 0)
			goto out;
		if ((list = halo_json_list(root, "users")) == NULL) {
			halo_err_set(err, HTTP_INTERNAL, 200, "Users: unexpected response shape");
			goto out;
		}
		if (halo_json_int(root, "record_count", &rcount))
			total = rcount;
		cJSON_ArrayForEach(u, list) {
			int64_t id;

			seen++;
			if (!halo_json_int(u, "id", &id) || id <= 0 ||
			    halo_json_bool(u, "inactive", false))
				continue;
			if (!halo_user_has_email(u, "emailaddress", email) &&
			    !halo_user_has_email(u, "email2", email) &&
			    !halo_user_has_email(u, "email3", email))
				continue;
			if (found > 0 && id == first_id)
				continue;
			if (++found > 1)
				break;
			first_id = id;
			out->user_id = id;
			(void)halo_json_int(u, "site_id", &out->site_id);
			(void)halo_json_int(u, "client_id", &out->client_id);
			out->name = halo_json_dup(u, "name");
			out->client_name = halo_json_dup(u, "client_name");
			if (out->name == NULL || out->client_name == NULL) {
				halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
				goto out;
			}
		}
		if (found > 1 || cJSON_GetArraySize(list) == 0 || total < 0 || seen >= total)
			break;
		cJSON_Delete(root);
		root = NULL;
	}
	if (page > HALO_MAX_PAGES && found <= 1) {
		halo_err_set(err, HTTP_INTERNAL, 200,
		    "Users: more than %d results for one address", HALO_MAX_PAGES * HALO_PAGE_SIZE);
		goto out;
	}
	if (found == 1) {
		*match = HALO_MATCH_ONE;
	} else {
		*match = found > 1 ? HALO_MATCH_AMBIGUOUS : HALO_MATCH_NONE;
		halo_contact_clear(out);
	}
	rc = 0;
out:
	if (rc != 0)
		halo_contact_clear(out);
	cJSON_Delete(root);
	free(path);
	free(esc);
	return rc;
}

/* Free a contact, reset *CT. */
void
halo_contact_clear(struct halo_contact *ct)
{
	if (ct == NULL)
		return;
	free(ct->name);
	free(ct->client_name);
	memset(ct, 0, sizeof(*ct));
}

/* ---------------------------------------------------------------- clients */

/* Normalise DOMAIN into OUT (lower case, no leading '@'); false if unusable. */
static bool
halo_domain_norm(const char *domain, char *out, size_t outsz)
{
	size_t i, n;

	while (*domain == '@')
		domain++;
	n = strlen(domain);
	if (n == 0 || n > HALO_DOMAIN_MAX || n >= outsz)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)domain[i];
		if (ch <= 0x20 || ch == 0x7f || strchr("@/?#&=%,;:\\\"'<>", ch) != NULL)
			return false;
		out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : (char)ch;
	}
	out[n] = '\0';
	return true;
}

/* Whether the domain list in field KEY of OBJ (separated by , ; or blanks,
 * entries may start with '@') contains DOMAIN. */
static bool
halo_domain_field_has(const cJSON *obj, const char *key, const char *domain)
{
	const char *v = halo_json_str(obj, key), *end;
	size_t dl = strlen(domain);

	if (v == NULL)
		return false;
	while (*v != '\0') {
		while (*v != '\0' && strchr(",; \t@", *v) != NULL)
			v++;
		end = v;
		while (*end != '\0' && strchr(",; \t", *end) == NULL)
			end++;
		if (end > v && halo_ascii_caseeq(v, (size_t)(end - v), domain, dl))
			return true;
		v = end;
	}
	return false;
}

/* Verify candidate client CID for DOMAIN; *SITE_ID gets the one matching site. */
static int
halo_client_verify(const struct halo_conf *c, const char *token, const cJSON *client,
    int64_t cid, const char *domain, bool *matches, int64_t *site_id, struct halo_err *err)
{
	char path[64];
	cJSON *root = NULL;
	const cJSON *list, *s;
	int nsites = 0;

	*matches = halo_domain_field_has(client, "domain", domain) ||
	    halo_domain_field_has(client, "emaildomain", domain);
	*site_id = 0;
	snprintf(path, sizeof(path), "/api/Site?client_id=%" PRId64, cid);
	if (halo_api_get(c, token, "GET /api/Site", path, &root, err) != 0)
		return -1;
	if ((list = halo_json_list(root, "sites")) == NULL) {
		cJSON_Delete(root);
		halo_err_set(err, HTTP_INTERNAL, 200, "Site: unexpected response shape");
		return -1;
	}
	cJSON_ArrayForEach(s, list) {
		int64_t sid, scid;
		if (!halo_json_int(s, "id", &sid) || sid <= 0 ||
		    halo_json_bool(s, "inactive", false))
			continue;
		/* a server ignoring client_id must not lend us other clients' sites */
		if (halo_json_int(s, "client_id", &scid) && scid != cid)
			continue;
		if (!halo_domain_field_has(s, "emaildomain", domain))
			continue;
		*matches = true;
		if (nsites++ == 0)
			*site_id = sid;
		else
			*site_id = 0;
	}
	cJSON_Delete(root);
	return 0;
}

/* Record client CID (site SID, NAME) as one owner of a domain in OUT; the
 * running count in *FOUND (a second, different client: ambiguous). */
static int
halo_client_found(struct halo_org *out, int *found, int64_t cid, int64_t sid,
    const char *name, struct halo_err *err)
{
	if (*found > 0 && cid == out->client_id) {
		if (out->site_id == 0)
			out->site_id = sid;
		return 0;
	}
	if (++*found > 1)
		return 0;
	out->client_id = cid;
	out->site_id = sid;
	if ((out->client_name = strdup(name != NULL ? name : "")) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		return -1;
	}
	return 0;
}

/* Whether client CID is an active entry of the Client list LIST (a site
 * of an inactive client, or of one Halo did not list, counts for none). */
static bool
halo_client_listed(const cJSON *list, int64_t cid)
{
	const cJSON *cl;
	int64_t id;

	cJSON_ArrayForEach(cl, list) {
		if (halo_json_int(cl, "id", &id) && id == cid)
			return !halo_json_bool(cl, "inactive", false);
	}
	return false;
}

/*
 * A Client list that ignored ?domain=: the owners of DOMAIN are the
 * clients in LIST whose own domain names it, and the clients of sites
 * whose emaildomain names it (GET /api/Site, paged). Same answer as
 * halo_client_by_domain().
 */
static int
halo_client_scan(const struct halo_conf *c, const char *token,
    const cJSON *list, const char *domain, enum halo_match *match,
    struct halo_org *out, struct halo_err *err)
{
	const cJSON *cl, *sites, *s;
	cJSON *root = NULL;
	char path[128];
	int found = 0, page, rc = -1;
	int64_t total = -1, seen = 0;

	log_notice("halo: Client?domain= answered with unrelated clients;"
	    " matching the domain by client and site fields instead");
	cJSON_ArrayForEach(cl, list) {
		int64_t cid;

		if (!halo_json_int(cl, "id", &cid) || cid <= 0 ||
		    halo_json_bool(cl, "inactive", false) ||
		    !halo_domain_field_has(cl, "domain", domain))
			continue;
		if (halo_client_found(out, &found, cid, 0,
		    halo_json_str(cl, "name"), err) != 0)
			return -1;
	}
	for (page = 1; page <= HALO_MAX_PAGES && found <= 1; page++) {
		int64_t rcount;

		snprintf(path, sizeof(path), "/api/Site?pageinate=true&page_size=%d"
		    "&page_no=%d", HALO_PAGE_SIZE, page);
		if (halo_api_get(c, token, "GET /api/Site", path, &root, err) != 0)
			goto out;
		if ((sites = halo_json_list(root, "sites")) == NULL) {
			halo_err_set(err, HTTP_INTERNAL, 200, "Site: unexpected response shape");
			goto out;
		}
		if (halo_json_int(root, "record_count", &rcount))
			total = rcount;
		cJSON_ArrayForEach(s, sites) {
			int64_t sid, cid;

			seen++;
			if (!halo_json_int(s, "id", &sid) || sid <= 0 ||
			    !halo_json_int(s, "client_id", &cid) || cid <= 0 ||
			    halo_json_bool(s, "inactive", false) ||
			    !halo_domain_field_has(s, "emaildomain", domain) ||
			    !halo_client_listed(list, cid))
				continue;
			if (halo_client_found(out, &found, cid, sid,
			    halo_json_str(s, "client_name"), err) != 0)
				goto out;
		}
		if (cJSON_GetArraySize(sites) < HALO_PAGE_SIZE || total < 0 ||
		    seen >= total) {
			cJSON_Delete(root);
			root = NULL;
			break;
		}
		cJSON_Delete(root);
		root = NULL;
	}
	if (page > HALO_MAX_PAGES && found <= 1) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Site: more than %d sites to"
		    " match a domain against", HALO_MAX_PAGES * HALO_PAGE_SIZE);
		goto out;
	}
	if (found == 1) {
		*match = HALO_MATCH_ONE;
	} else {
		*match = found > 1 ? HALO_MATCH_AMBIGUOUS : HALO_MATCH_NONE;
		halo_org_clear(out);
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* The client owning DOMAIN, verified candidate by candidate. */
int
halo_client_by_domain(const struct halo_conf *c, const char *token,
    const char *domain, enum halo_match *match, struct halo_org *out,
    struct halo_err *err)
{
	char norm[HALO_DOMAIN_MAX + 1], *esc = NULL, *path = NULL;
	const cJSON *list, *cl;
	cJSON *root = NULL;
	int found = 0, rc = -1, n;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (match != NULL)
		*match = HALO_MATCH_NONE;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (match == NULL || out == NULL || domain == NULL ||
	    !halo_domain_norm(domain, norm, sizeof(norm))) {
		halo_err_set(err, HTTP_INTERNAL, 0, "client lookup: unusable domain");
		return -1;
	}
	if ((esc = http_url_escape(norm)) == NULL ||
	    asprintf(&path, "/api/Client?domain=%s", esc) < 0) {
		path = NULL;
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	if (halo_api_get(c, token, "GET /api/Client", path, &root, err) != 0)
		goto out;
	if ((list = halo_json_list(root, "clients")) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Client: unexpected response shape");
		goto out;
	}
	n = cJSON_GetArraySize(list);
	if (n > HALO_MAX_CANDIDATES) {
		/* the filter was ignored (it is undescribed): verify by what the
		 * spec does offer, the clients' domain and the sites' emaildomain */
		rc = halo_client_scan(c, token, list, norm, match, out, err);
		goto out;
	}
	cJSON_ArrayForEach(cl, list) {
		int64_t cid, sid;
		bool ok;

		if (!halo_json_int(cl, "id", &cid) || cid <= 0 ||
		    halo_json_bool(cl, "inactive", false))
			continue;
		if (found > 0 && cid == out->client_id)
			continue;
		if (halo_client_verify(c, token, cl, cid, norm, &ok, &sid, err) != 0)
			goto out;
		if (!ok)
			continue;
		if (++found > 1)
			break;
		out->client_id = cid;
		out->site_id = sid;
		out->client_name = halo_json_dup(cl, "name");
		if (out->client_name == NULL) {
			halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
			goto out;
		}
	}
	if (found == 1) {
		*match = HALO_MATCH_ONE;
	} else {
		*match = found > 1 ? HALO_MATCH_AMBIGUOUS : HALO_MATCH_NONE;
		halo_org_clear(out);
	}
	rc = 0;
out:
	if (rc != 0)
		halo_org_clear(out);
	cJSON_Delete(root);
	free(path);
	free(esc);
	return rc;
}

/* Free an org, reset *O. */
void
halo_org_clear(struct halo_org *o)
{
	if (o == NULL)
		return;
	free(o->client_name);
	memset(o, 0, sizeof(*o));
}

/* ---------------------------------------------------------------- tickets */

/* The names of OBJ's custom fields that hold a value (not null, not
 * ""), into T. Entries of another shape are passed over. 0 or -1 (memory). */
static int
halo_ticket_fields(const cJSON *obj, struct halo_ticket *t)
{
	const cJSON *list, *cf, *name, *value;

	list = cJSON_GetObjectItemCaseSensitive(obj, "customfields");
	if (!cJSON_IsArray(list))
		return 0;
	cJSON_ArrayForEach(cf, list) {
		if (t->n_fields >= HALO_TICKET_FIELDS_MAX)
			break;
		name = cJSON_GetObjectItemCaseSensitive(cf, "name");
		value = cJSON_GetObjectItemCaseSensitive(cf, "value");
		if (!cJSON_IsString(name) || name->valuestring[0] == '\0' ||
		    value == NULL || cJSON_IsNull(value) ||
		    (cJSON_IsString(value) && value->valuestring[0] == '\0'))
			continue;
		if (t->fields == NULL &&
		    (t->fields = calloc(HALO_TICKET_FIELDS_MAX, sizeof(char *))) == NULL)
			return -1;
		if ((t->fields[t->n_fields] = strdup(name->valuestring)) == NULL)
			return -1;
		t->n_fields++;
	}
	return 0;
}

/* GET /api/Tickets/ID. */
int
halo_ticket_get(const struct halo_conf *c, const char *token, int64_t id,
    struct halo_ticket *out, struct halo_err *err)
{
	char path[64];
	cJSON *root = NULL;
	const cJSON *obj;
	int64_t got;
	size_t i;
	int rc = -1;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (!halo_args_ok(c, token, err))
		return -1;
	if (out == NULL || id <= 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "bad ticket id");
		return -1;
	}
	snprintf(path, sizeof(path), "/api/Tickets/%" PRId64, id);
	if (halo_api_get(c, token, "GET /api/Tickets/{id}", path, &root, err) != 0)
		return -1;
	obj = halo_json_object(root);
	if (obj == NULL || !halo_json_int(obj, "id", &got) || got != id) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Tickets: response is not ticket %" PRId64, id);
		goto out;
	}
	out->id = id;
	(void)halo_json_int(obj, "client_id", &out->client_id);
	(void)halo_json_int(obj, "site_id", &out->site_id);
	(void)halo_json_int(obj, "user_id", &out->user_id);
	(void)halo_json_int(obj, "status_id", &out->status_id);
	for (i = 0; c->closed_status_ids != NULL && i < c->n_closed_status_ids; i++)
		if (c->closed_status_ids[i] == out->status_id)
			out->closed = true;
	if ((out->summary = halo_json_dup(obj, "summary")) == NULL ||
	    halo_ticket_fields(obj, out) != 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		halo_ticket_clear(out);
	cJSON_Delete(root);
	return rc;
}

/* Whether T has a value in the custom field NAME. */
bool
halo_ticket_has_field(const struct halo_ticket *t, const char *name)
{
	size_t i;

	for (i = 0; t != NULL && name != NULL && i < t->n_fields; i++)
		if (strcasecmp(t->fields[i], name) == 0)
			return true;
	return false;
}

/* Free a ticket, reset *T. */
void
halo_ticket_clear(struct halo_ticket *t)
{
	size_t i;

	if (t == NULL)
		return;
	free(t->summary);
	for (i = 0; i < t->n_fields; i++)
		free(t->fields[i]);
	free(t->fields);
	memset(t, 0, sizeof(*t));
}

/* S without one pair of surrounding angle brackets: start and length. */
static const char *
halo_msgid_bare(const char *s, size_t *len)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		*len = n - 2;
		return s + 1;
	}
	*len = n;
	return s;
}

/* Look MSGID (one spelling) up; 0 found, 1 not, -1 error. A returned row
 * counts only when it carries BARE itself (any case, with or without
 * brackets): the filter is undocumented, and a Halo that ignores it
 * answers with unrelated actions. */
static int
halo_find_one(const struct halo_conf *c, const char *token, const char *msgid,
    const char *bare, size_t bare_len, int64_t *ticket_id, int64_t *action_id,
    struct halo_err *err)
{
	char *esc = http_url_escape(msgid), *path = NULL;
	const cJSON *list, *a;
	cJSON *root = NULL;
	int rc = -1;

	if (esc == NULL || asprintf(&path, "/api/Actions?internetmessageid=%s", esc) < 0) {
		free(esc);
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		return -1;
	}
	free(esc);
	if (halo_api_get(c, token, "GET /api/Actions", path, &root, err) != 0)
		goto out;
	if ((list = halo_json_list(root, "actions")) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Actions: unexpected response shape");
		goto out;
	}
	rc = 1;
	cJSON_ArrayForEach(a, list) {
		const char *have = halo_json_str(a, "internet_message_id");
		int64_t tid, aid = 0;
		const char *hb;
		size_t hl;

		if (have == NULL || *have == '\0')
			have = halo_json_str(a, "internetmessageid");
		if (have == NULL)
			continue;
		hb = halo_msgid_bare(have, &hl);
		if (!halo_ascii_caseeq(hb, hl, bare, bare_len))
			continue;
		if (!halo_json_int(a, "ticket_id", &tid) || tid <= 0)
			continue;
		(void)halo_json_int(a, "id", &aid);
		/* several tickets with one Message-ID: the oldest is the original */
		if (rc == 1 || tid < *ticket_id) {
			*ticket_id = tid;
			*action_id = aid;
		}
		rc = 0;
	}
out:
	cJSON_Delete(root);
	free(path);
	return rc;
}

/* The ticket (and action) carrying MSGID. */
int
halo_find_by_message_id(const struct halo_conf *c, const char *token,
    const char *msgid, int64_t *ticket_id, int64_t *action_id,
    struct halo_err *err)
{
	char *spelled = NULL, *bare_copy = NULL;
	const char *bare;
	size_t bare_len, i;
	int rc;

	if (ticket_id != NULL)
		*ticket_id = 0;
	if (action_id != NULL)
		*action_id = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (msgid == NULL || ticket_id == NULL || action_id == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "bad arguments");
		return -1;
	}
	bare = halo_msgid_bare(msgid, &bare_len);
	if (bare_len == 0 || bare_len > HALO_MSGID_MAX) {
		halo_err_set(err, HTTP_INTERNAL, 0, "unusable Message-ID");
		return -1;
	}
	for (i = 0; i < bare_len; i++) {
		unsigned char ch = (unsigned char)bare[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>') {
			halo_err_set(err, HTTP_INTERNAL, 0, "unusable Message-ID");
			return -1;
		}
	}
	if ((bare_copy = strndup(bare, bare_len)) == NULL ||
	    asprintf(&spelled, "<%s>", bare_copy) < 0) {
		free(bare_copy);
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		return -1;
	}
	rc = halo_find_one(c, token, spelled, bare_copy, bare_len, ticket_id, action_id, err);
	if (rc == 1)
		rc = halo_find_one(c, token, bare_copy, bare_copy, bare_len, ticket_id,
		    action_id, err);
	if (rc != 0) {
		*ticket_id = 0;
		*action_id = 0;
	}
	free(spelled);
	free(bare_copy);
	return rc;
}

/* base64 of DATA without line breaks; malloc'd. */
static char *
halo_base64(const unsigned char *data, size_t len)
{
	const size_t chunk = 3 * 4096;
	size_t olen, i, o = 0;
	char *out;

	if (len > (SIZE_MAX / 4 - 1) * 3)
		return NULL;
	olen = (len + 2) / 3 * 4;
	if ((out = malloc(olen + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i += chunk) {
		size_t n = len - i < chunk ? len - i : chunk;
		int w = EVP_EncodeBlock((unsigned char *)out + o, data + i, (int)n);
		if (w < 0) {
			free(out);
			return NULL;
		}
		o += (size_t)w;
	}
	out[o] = '\0';
	return out;
}

/* The MIME type of A for its data URI: its content type when it is a
 * plain "type/subtype" token, else application/octet-stream. */
static const char *
halo_attach_mime(const struct halo_attachment *a)
{
	const char *t = a->content_type, *p;
	size_t slashes = 0;

	if (t == NULL || *t == '\0' || strlen(t) > 127)
		return "application/octet-stream";
	for (p = t; *p != '\0'; p++) {
		if (*p == '/')
			slashes++;
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$&^_.+-", *p) != NULL))
			return "application/octet-stream";
	}
	return slashes == 1 && *t != '/' && t[strlen(t) - 1] != '/' ? t :
	    "application/octet-stream";
}

/* Fill ITEM with attachment I of ATT: filename, data_base64 as a data URI
 * (Halo stores nothing from bare base64), isimage, content_type. With ST
 * the data URI is ST's placeholder, streamed in its place when sent. */
static bool
halo_attach_item(cJSON *item, const struct halo_attachment *att, size_t i,
    const struct halo_stream *st)
{
	const struct halo_attachment *a = &att[i];
	const char *mime = halo_attach_mime(a);
	char *b64, *uri = NULL, ph[64];
	bool ok;

	if (a->data == NULL && a->len > 0)
		return false;
	if (st != NULL) {
		halo_stream_placeholder(st, i, ph, sizeof(ph));
		uri = strdup(ph);
	} else {
		b64 = halo_base64(a->data != NULL ? a->data :
		    (const unsigned char *)"", a->len);
		if (b64 == NULL || asprintf(&uri, "data:%s;base64,%s", mime,
		    b64) < 0)
			uri = NULL;
		free(b64);
	}
	ok = uri != NULL &&
	    halo_json_add_str(item, "filename",
	    a->filename != NULL && *a->filename != '\0' ? a->filename :
	    "attachment", 255, true) &&
	    cJSON_AddStringToObject(item, "data_base64", uri) != NULL &&
	    cJSON_AddBoolToObject(item, "isimage", a->is_image) != NULL &&
	    cJSON_AddStringToObject(item, "content_type", mime) != NULL;
	free(uri);
	return ok;
}

/* Add "attachments":[{filename, data_base64, isimage, content_type}] to OBJ
 * (placeholders for ST's data URIs when ST is set). */
static bool
halo_add_attachments(cJSON *obj, const struct halo_attachment *att, size_t n,
    const struct halo_stream *st)
{
	cJSON *arr;
	size_t i;

	if (n == 0)
		return true;
	if (att == NULL || (arr = cJSON_AddArrayToObject(obj, "attachments")) == NULL)
		return false;
	for (i = 0; i < n; i++) {
		cJSON *item = cJSON_CreateObject();

		if (item == NULL || !cJSON_AddItemToArray(arr, item))
			return false;
		if (!halo_attach_item(item, att, i, st))
			return false;
	}
	return true;
}

/* Whether S mentions attachments (a _warning about them). */
static bool
halo_mentions_attachment(const char *s)
{
	return s != NULL && (strcasestr(s, "attach") != NULL ||
	    strcasestr(s, "base64") != NULL || strcasestr(s, "base-64") != NULL);
}

/* The fate of N attachments from a created object's answer (halo.h). */
size_t
halo_attach_check(const cJSON *obj, size_t n, struct halo_attach_result *res)
{
	const cJSON *list = NULL, *it;
	const char *warn;
	size_t i, failed = 0, listed = 0;

	if (res == NULL)
		return 0;
	for (i = 0; i < n; i++)
		memset(&res[i], 0, sizeof(res[i]));
	if (n == 0 || !cJSON_IsObject(obj))
		return 0;
	warn = halo_json_str(obj, "_warning");
	list = cJSON_GetObjectItem(obj, "attachments");
	if (cJSON_IsArray(list))
		listed = (size_t)cJSON_GetArraySize(list);
	for (i = 0; i < n; i++) {
		const char *iwarn = NULL;
		int64_t id = -1;

		if (i < listed) {
			it = cJSON_GetArrayItem(list, (int)i);
			iwarn = halo_json_str(it, "_warning");
			if (!halo_json_int(it, "id", &id))
				id = -1;
		}
		if (iwarn != NULL && *iwarn != '\0') {
			halo_printable(res[i].why, sizeof(res[i].why), iwarn,
			    strlen(iwarn));
		} else if (i < listed && id == 0) {
			char tmp[sizeof(res[i].why)];

			snprintf(tmp, sizeof(tmp), "Halo answered attachment id 0%s%s",
			    warn != NULL ? ": " : "", warn != NULL ? warn : "");
			halo_printable(res[i].why, sizeof(res[i].why), tmp,
			    strlen(tmp));
		} else if (i >= listed && warn != NULL &&
		    halo_mentions_attachment(warn)) {
			halo_printable(res[i].why, sizeof(res[i].why), warn,
			    strlen(warn));
		} else {
			res[i].id = id > 0 ? id : 0;
			continue;
		}
		res[i].failed = true;
		failed++;
	}
	return failed;
}

/* POST /api/Attachment with one attachment. */
int
halo_attachment_upload(const struct halo_conf *c, const char *token,
    int64_t ticket_id, int64_t action_id, const struct halo_attachment *a,
    struct halo_attach_result *res, struct halo_err *err)
{
	cJSON *arr = NULL, *obj, *root = NULL;
	struct halo_stream *st = NULL;
	bool ok, oom = false;
	int rc = -1;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (!halo_args_ok(c, token, err))
		return -1;
	if (a == NULL || res == NULL || ticket_id <= 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "attachment: bad arguments");
		return -1;
	}
	st = halo_stream_new(a, 1, &oom);
	arr = cJSON_CreateArray();
	obj = cJSON_CreateObject();
	ok = arr != NULL && obj != NULL && cJSON_AddItemToArray(arr, obj);
	if (!ok)
		cJSON_Delete(obj);
	ok = ok && !oom &&
	    cJSON_AddNumberToObject(obj, "ticket_id", (double)ticket_id) != NULL &&
	    (action_id <= 0 || cJSON_AddNumberToObject(obj, "action_id",
	    (double)action_id) != NULL) &&
	    halo_attach_item(obj, a, 0, st);
	if (!ok) {
		halo_err_set(err, HTTP_INTERNAL, 0, "attachment: cannot build request");
		goto out;
	}
	if (halo_api_post(c, token, "POST /api/Attachment", "/api/Attachment", arr,
	    st, &root, err) != 0)
		goto out;
	obj = (cJSON *)halo_json_object(root);
	if (obj == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Attachment: unexpected response shape");
		goto out;
	}
	{
		const char *warn = halo_json_str(obj, "_warning");
		int64_t id = 0;

		if (!halo_json_int(obj, "id", &id))
			id = -1;
		if (warn != NULL && *warn != '\0') {
			halo_printable(res->why, sizeof(res->why), warn, strlen(warn));
			res->failed = true;
			rc = 1;
		} else if (id == 0) {
			snprintf(res->why, sizeof(res->why), "Halo answered attachment id 0");
			res->failed = true;
			rc = 1;
		} else {
			res->id = id > 0 ? id : 0;
			rc = 0;
		}
	}
out:
	halo_stream_free(st);
	cJSON_Delete(arr);
	cJSON_Delete(root);
	return rc;
}

/* GET /api/Attachment?ticket_id=[&action_id=]. */
int
halo_attachment_list(const struct halo_conf *c, const char *token,
    int64_t ticket_id, int64_t action_id, struct halo_stored **out,
    size_t *count, struct halo_err *err)
{
	char path[128];
	const cJSON *list, *it;
	struct halo_stored *arr = NULL;
	cJSON *root = NULL;
	size_t n = 0;
	int total, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (count != NULL)
		*count = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (out == NULL || count == NULL || ticket_id <= 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "attachment list: bad arguments");
		return -1;
	}
	if (action_id > 0)
		snprintf(path, sizeof(path), "/api/Attachment?ticket_id=%" PRId64
		    "&action_id=%" PRId64, ticket_id, action_id);
	else
		snprintf(path, sizeof(path), "/api/Attachment?ticket_id=%" PRId64,
		    ticket_id);
	if (halo_api_get(c, token, "GET /api/Attachment", path, &root, err) != 0)
		return -1;
	if ((list = halo_json_list(root, "attachments")) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Attachment: unexpected response shape");
		goto out;
	}
	total = cJSON_GetArraySize(list);
	if ((arr = calloc(total > 0 ? (size_t)total : 1, sizeof(*arr))) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	cJSON_ArrayForEach(it, list) {
		int64_t id, tid;

		if (n >= (size_t)total)
			break;
		if (!halo_json_int(it, "id", &id) || id <= 0)
			continue;
		/* a server ignoring the filter must not lend us others' files */
		if (halo_json_int(it, "ticket_id", &tid) && tid != ticket_id)
			continue;
		arr[n].id = id;
		if (!halo_json_int(it, "action_id", &arr[n].action_id))
			arr[n].action_id = 0;
		if (action_id > 0 && arr[n].action_id > 0 &&
		    arr[n].action_id != action_id)
			continue;
		if (!halo_json_int(it, "filesize", &arr[n].size) &&
		    !halo_json_int(it, "size", &arr[n].size))
			arr[n].size = -1;
		if ((arr[n++].filename = halo_json_dup(it, "filename")) == NULL) {
			halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
			goto out;
		}
	}
	*out = arr;
	*count = n;
	arr = NULL;
	rc = 0;
out:
	halo_stored_free(arr, n);
	cJSON_Delete(root);
	return rc;
}

/* Free a list from halo_attachment_list(). */
void
halo_stored_free(struct halo_stored *list, size_t count)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < count; i++)
		free(list[i].filename);
	free(list);
}

/* Add string KEY to OBJ when S is set; false when out of memory. */
static bool
halo_add_opt(cJSON *obj, const char *key, const char *s, bool single_line)
{
	if (s == NULL)
		return true;
	return halo_json_add_str(obj, key, s, 0, single_line);
}

/* The id of a created object (an object, or an array's first element). */
static int
halo_created_id(const cJSON *root, const char *what, int64_t *id, struct halo_err *err)
{
	const cJSON *obj = halo_json_object(root);

	if (obj == NULL || !halo_json_int(obj, "id", id) || *id <= 0) {
		*id = 0;
		/* applied, but we cannot say what it is: not retryable as such */
		halo_err_set(err, HTTP_INTERNAL, 200, "%s: created, but the response has no id",
		    what);
		return -1;
	}
	return 0;
}

/* POST /api/Actions with one action. */
int
halo_action_create(const struct halo_conf *c, const char *token,
    const struct halo_action_new *a, int64_t *action_id, struct halo_err *err)
{
	cJSON *arr = NULL, *obj, *root = NULL;
	struct halo_stream *st = NULL;
	bool ok, email, oom = false;
	int rc = -1;

	if (action_id != NULL)
		*action_id = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (a == NULL || action_id == NULL || a->ticket_id <= 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "action: bad ticket id");
		return -1;
	}
	email = a->email_from != NULL || a->email_to != NULL || a->email_cc != NULL ||
	    a->email_subject != NULL;
	st = halo_stream_new(a->attachments, a->n_attachments, &oom);
	arr = cJSON_CreateArray();
	obj = cJSON_CreateObject();
	ok = arr != NULL && obj != NULL && cJSON_AddItemToArray(arr, obj);
	if (!ok)
		cJSON_Delete(obj);
	ok = ok && !oom &&
	    cJSON_AddNumberToObject(obj, "ticket_id", (double)a->ticket_id) != NULL &&
	    halo_add_opt(obj, "outcome", a->outcome, true) &&
	    halo_add_opt(obj, "note_html", a->note_html, false) &&
	    cJSON_AddBoolToObject(obj, "hiddenfromuser", a->hidden) != NULL &&
	    cJSON_AddFalseToObject(obj, "sendemail") != NULL &&
	    halo_add_opt(obj, "emailfrom", a->email_from, true) &&
	    halo_add_opt(obj, "emailto", a->email_to, true) &&
	    halo_add_opt(obj, "emailcc", a->email_cc, true) &&
	    halo_add_opt(obj, "emailsubject", a->email_subject, true) &&
	    (!email || cJSON_AddStringToObject(obj, "emaildirection",
	    a->outgoing ? "O" : "I") != NULL) &&
	    halo_add_opt(obj, "actionarrivaldate", a->arrival_date, true) &&
	    halo_add_opt(obj, "internet_message_id", a->internet_message_id, true) &&
	    (a->new_status <= 0 || cJSON_AddNumberToObject(obj, "new_status",
	    (double)a->new_status) != NULL) &&
	    halo_add_attachments(obj, a->attachments, a->n_attachments, st);
	if (!ok) {
		halo_err_set(err, HTTP_INTERNAL, 0, "action: cannot build request");
		goto out;
	}
	if (halo_api_post(c, token, "POST /api/Actions", "/api/Actions", arr, st,
	    &root, err) != 0)
		goto out;
	rc = halo_created_id(root, "POST /api/Actions", action_id, err);
	if (rc == 0 && a->att_results != NULL)
		(void)halo_attach_check(halo_json_object(root), a->n_attachments,
		    a->att_results);
out:
	halo_stream_free(st);
	cJSON_Delete(arr);
	cJSON_Delete(root);
	return rc;
}

/* POST /api/Tickets with one ticket. */
int
halo_ticket_create(const struct halo_conf *c, const char *token,
    const struct halo_ticket_new *t, int64_t *ticket_id, struct halo_err *err)
{
	cJSON *arr = NULL, *obj, *root = NULL, *cfs;
	struct halo_stream *st = NULL;
	char *summary = NULL;
	size_t i;
	bool ok, oom = false;
	int rc = -1;

	if (ticket_id != NULL)
		*ticket_id = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (t == NULL || ticket_id == NULL || (t->n_customfields > 0 && t->customfields == NULL)) {
		halo_err_set(err, HTTP_INTERNAL, 0, "ticket: bad arguments");
		return -1;
	}
	summary = halo_utf8_clean(t->summary != NULL ? t->summary : "", HALO_SUMMARY_MAX, true);
	if (summary != NULL && summary[0] == '\0') {
		free(summary);
		summary = strdup("(no subject)");
	}
	st = halo_stream_new(t->attachments, t->n_attachments, &oom);
	arr = cJSON_CreateArray();
	obj = cJSON_CreateObject();
	ok = summary != NULL && !oom && arr != NULL && obj != NULL &&
	    cJSON_AddItemToArray(arr, obj);
	if (!ok)
		cJSON_Delete(obj);
	ok = ok &&
	    cJSON_AddStringToObject(obj, "summary", summary) != NULL &&
	    halo_add_opt(obj, "details_html", t->details_html, false) &&
	    (t->tickettype_id <= 0 ||
	    cJSON_AddNumberToObject(obj, "tickettype_id", (double)t->tickettype_id) != NULL) &&
	    (t->client_id <= 0 ||
	    cJSON_AddNumberToObject(obj, "client_id", (double)t->client_id) != NULL) &&
	    (t->site_id <= 0 ||
	    cJSON_AddNumberToObject(obj, "site_id", (double)t->site_id) != NULL) &&
	    /* Halo requires a user's site with the user */
	    (t->user_id <= 0 || t->site_id <= 0 ||
	    cJSON_AddNumberToObject(obj, "user_id", (double)t->user_id) != NULL) &&
	    (t->priority_id <= 0 ||
	    cJSON_AddNumberToObject(obj, "priority_id", (double)t->priority_id) != NULL) &&
	    (t->agent_id <= 0 ||
	    cJSON_AddNumberToObject(obj, "agent_id", (double)t->agent_id) != NULL) &&
	    halo_add_opt(obj, "team", t->team, true) &&
	    halo_add_opt(obj, "user_email", t->user_email, true) &&
	    halo_add_opt(obj, "reportedby", t->reported_by, true) &&
	    halo_add_opt(obj, "emailtolist", t->email_to_list, true) &&
	    halo_add_opt(obj, "emailcclist", t->email_cc_list, true) &&
	    halo_add_opt(obj, "dateoccurred", t->date_occurred, true) &&
	    halo_add_opt(obj, "action_outcome", t->action_outcome, true) &&
	    halo_add_opt(obj, "internet_message_id", t->internet_message_id, true) &&
	    cJSON_AddBoolToObject(obj, "dont_do_rules", t->dont_do_rules) != NULL &&
	    halo_add_attachments(obj, t->attachments, t->n_attachments, st);
	if (ok && t->n_customfields > 0) {
		ok = (cfs = cJSON_AddArrayToObject(obj, "customfields")) != NULL;
		for (i = 0; ok && i < t->n_customfields; i++) {
			cJSON *cf = cJSON_CreateObject();
			ok = cf != NULL && cJSON_AddItemToArray(cfs, cf) &&
			    t->customfields[i].name != NULL &&
			    halo_json_add_str(cf, "name", t->customfields[i].name, 0, true) &&
			    halo_json_add_str(cf, "value", t->customfields[i].value != NULL ?
			    t->customfields[i].value : "", 0, false);
		}
	}
	if (!ok) {
		halo_err_set(err, HTTP_INTERNAL, 0, "ticket: cannot build request");
		goto out;
	}
	if (halo_api_post(c, token, "POST /api/Tickets", "/api/Tickets", arr, st,
	    &root, err) != 0)
		goto out;
	rc = halo_created_id(root, "POST /api/Tickets", ticket_id, err);
	if (rc == 0 && t->att_results != NULL)
		(void)halo_attach_check(halo_json_object(root), t->n_attachments,
		    t->att_results);
out:
	halo_stream_free(st);
	free(summary);
	cJSON_Delete(arr);
	cJSON_Delete(root);
	return rc;
}

/* ---------------------------------------------------------------- lookups */

/* GET PATH as a list of {id, NAMEKEY} (wrapped under WRAPKEY or bare). */
static int
halo_list_named(const struct halo_conf *c, const char *token, const char *what,
    const char *path, const char *wrapkey, const char *namekey,
    struct halo_named **out, size_t *count, struct halo_err *err)
{
	const cJSON *list, *it;
	cJSON *root = NULL;
	struct halo_named *arr = NULL;
	size_t n = 0;
	int total, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (count != NULL)
		*count = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (out == NULL || count == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "bad arguments");
		return -1;
	}
	if (halo_api_get(c, token, what, path, &root, err) != 0)
		return -1;
	if ((list = halo_json_list(root, wrapkey)) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 200, "%s: unexpected response shape", what);
		goto out;
	}
	total = cJSON_GetArraySize(list);
	arr = calloc(total > 0 ? (size_t)total : 1, sizeof(*arr));
	if (arr == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	cJSON_ArrayForEach(it, list) {
		const char *name = halo_json_str(it, namekey);
		int64_t id;

		if (n >= (size_t)total)
			break;
		if (!halo_json_int(it, "id", &id))
			continue;
		if (name == NULL)
			name = halo_json_str(it, "name");
		arr[n].id = id;
		arr[n].name = strdup(name != NULL ? name : "");
		if (arr[n++].name == NULL) {
			halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
			goto out;
		}
	}
	*out = arr;
	*count = n;
	arr = NULL;
	rc = 0;
out:
	halo_named_free(arr, n);
	cJSON_Delete(root);
	return rc;
}

/* GET /api/Outcome. */
int
halo_list_outcomes(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, struct halo_err *err)
{
	return halo_list_named(c, token, "GET /api/Outcome", "/api/Outcome", "outcomes",
	    "outcome", out, count, err);
}

/* GET /api/TicketType?showall=true. */
int
halo_list_ticket_types(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, struct halo_err *err)
{
	return halo_list_named(c, token, "GET /api/TicketType", "/api/TicketType?showall=true",
	    "tickettypes", "name", out, count, err);
}

/* GET /api/Status. */
int
halo_list_statuses(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, struct halo_err *err)
{
	return halo_list_named(c, token, "GET /api/Status", "/api/Status", "statuses",
	    "name", out, count, err);
}

/* Free a list from halo_list_*(). */
void
halo_named_free(struct halo_named *list, size_t count)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < count; i++)
		free(list[i].name);
	free(list);
}

/* Which statuses are closed: the full list against excludeclosed=true. */
int
halo_status_states(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, bool *known, struct halo_err *err)
{
	struct halo_named *all = NULL, *open = NULL;
	size_t n_all = 0, n_open = 0, i, j, closed = 0;

	if (known != NULL)
		*known = false;
	if (halo_list_statuses(c, token, &all, &n_all, err) != 0)
		return -1;
	if (halo_list_named(c, token, "GET /api/Status?excludeclosed=true",
	    "/api/Status?excludeclosed=true", "statuses", "name", &open, &n_open,
	    err) != 0) {
		halo_named_free(all, n_all);
		return -1;
	}
	for (i = 0; i < n_all; i++) {
		bool in_open = false;

		for (j = 0; j < n_open && !in_open; j++)
			in_open = open[j].id == all[i].id;
		all[i].closed = !in_open;
		if (!in_open)
			closed++;
	}
	halo_named_free(open, n_open);
	if (known != NULL)
		*known = closed > 0 && closed < n_all;
	*out = all;
	*count = n_all;
	return 0;
}

/* POST /api/Users: one new contact. */
int
halo_user_create(const struct halo_conf *c, const char *token,
    const char *name, const char *email, int64_t client_id, int64_t site_id,
    int64_t *user_id, struct halo_err *err)
{
	cJSON *arr = NULL, *obj, *root = NULL;
	bool ok;
	int rc = -1;

	if (user_id != NULL)
		*user_id = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (user_id == NULL || email == NULL || !halo_email_ok(email) ||
	    site_id <= 0 || client_id <= 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "user: bad arguments");
		return -1;
	}
	arr = cJSON_CreateArray();
	obj = cJSON_CreateObject();
	ok = arr != NULL && obj != NULL && cJSON_AddItemToArray(arr, obj);
	if (!ok)
		cJSON_Delete(obj);
	ok = ok &&
	    halo_json_add_str(obj, "name", name != NULL && *name != '\0' ? name :
	    email, 255, true) &&
	    halo_json_add_str(obj, "emailaddress", email, 255, true) &&
	    cJSON_AddNumberToObject(obj, "site_id", (double)site_id) != NULL &&
	    cJSON_AddNumberToObject(obj, "client_id", (double)client_id) != NULL;
	if (!ok) {
		halo_err_set(err, HTTP_INTERNAL, 0, "user: cannot build request");
		goto out;
	}
	if (halo_api_post(c, token, "POST /api/Users", "/api/Users", arr, NULL, &root,
	    err) != 0)
		goto out;
	rc = halo_created_id(root, "POST /api/Users", user_id, err);
out:
	cJSON_Delete(arr);
	cJSON_Delete(root);
	return rc;
}

/* The site a new contact of CLIENT_ID belongs under. */
int
halo_client_main_site(const struct halo_conf *c, const char *token,
    int64_t client_id, int64_t *site_id, struct halo_err *err)
{
	char path[96];
	const cJSON *obj, *list, *s;
	cJSON *root = NULL;
	int64_t main = 0, lowest = 0;

	*site_id = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (client_id <= 0) {
		halo_err_set(err, HTTP_INTERNAL, 0, "client site: bad client id");
		return -1;
	}
	snprintf(path, sizeof(path), "/api/Client/%" PRId64, client_id);
	if (halo_api_get(c, token, "GET /api/Client/{id}", path, &root, err) != 0)
		return -1;
	obj = halo_json_object(root);
	if (obj != NULL && halo_json_int(obj, "main_site_id", &main) && main > 0) {
		cJSON_Delete(root);
		*site_id = main;
		return 0;
	}
	cJSON_Delete(root);
	root = NULL;
	snprintf(path, sizeof(path), "/api/Site?client_id=%" PRId64, client_id);
	if (halo_api_get(c, token, "GET /api/Site", path, &root, err) != 0)
		return -1;
	list = halo_json_list(root, "sites");
	cJSON_ArrayForEach(s, list) {
		int64_t sid, scid;

		if (!halo_json_int(s, "id", &sid) || sid <= 0 ||
		    halo_json_bool(s, "inactive", false))
			continue;
		if (halo_json_int(s, "client_id", &scid) && scid != client_id)
			continue;
		if (lowest == 0 || sid < lowest)
			lowest = sid;
	}
	cJSON_Delete(root);
	if (lowest <= 0) {
		halo_err_set(err, HTTP_NOT_FOUND, 200, "client %" PRId64 " has no"
		    " active site", client_id);
		return -1;
	}
	*site_id = lowest;
	return 0;
}

/* The 16 bytes of a GUID written as 32 hex digits (dashes and braces
 * allowed) into OUT; false when S is not one. */
static bool
halo_guid_hex(const char *s, unsigned char out[16])
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s != '\0'; s++) {
		if (*s == '-' || *s == '{' || *s == '}')
			continue;
		if ((v = util_hex_digit((unsigned char)*s)) < 0 || n >= 16)
			return false;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n == 16 && hi < 0;
}

/* Whether a CFOutlookConversationId VALUE names conversation KEY. */
bool
halo_conv_matches(const char *value, const char *key)
{
	unsigned char want[16], have[16];
	uint8_t *raw = NULL;
	char *url;
	size_t n, i;
	bool same;

	if (value == NULL || key == NULL || !halo_guid_hex(key, want))
		return false;
	if (halo_guid_hex(value, have))
		return memcmp(have, want, 16) == 0;
	/* Outlook's item.conversationId: base64 whose tail is the GUID; read
	 * as base64url (crypto.c's decoder), padding dropped */
	n = strlen(value);
	if (n < 22 || n > 1024 || (url = strdup(value)) == NULL)
		return false;
	while (n > 0 && url[n - 1] == '=')
		url[--n] = '\0';
	for (i = 0; i < n; i++)
		url[i] = url[i] == '+' ? '-' : url[i] == '/' ? '_' : url[i];
	same = crypto_b64url_decode(url, &raw, &n) == 0 && n > 16 &&
	    memcmp(raw + n - 16, want, 16) == 0;
	free(raw);
	free(url);
	return same;
}

/* A ticket that holds custom field FIELD = VALUE, asked of Halo. */
int
halo_ticket_by_field(const struct halo_conf *c, const char *token,
    const char *field, const char *value, bool conv, int64_t *ticket_id,
    struct halo_err *err)
{
	cJSON *filter = NULL, *f, *root = NULL;
	char *text = NULL, *esc = NULL, *path = NULL;
	const cJSON *list, *t;
	int rc = -1;

	*ticket_id = 0;
	if (!halo_args_ok(c, token, err))
		return -1;
	if (field == NULL || *field == '\0' || value == NULL || *value == '\0') {
		halo_err_set(err, HTTP_INTERNAL, 0, "ticket by field: bad arguments");
		return -1;
	}
	filter = cJSON_CreateArray();
	f = cJSON_CreateObject();
	if (filter == NULL || f == NULL || !cJSON_AddItemToArray(filter, f) ||
	    cJSON_AddStringToObject(f, "filter_name", field) == NULL ||
	    cJSON_AddNumberToObject(f, "filter_type", 2) == NULL ||
	    cJSON_AddStringToObject(f, "filter_value", value) == NULL ||
	    (text = cJSON_PrintUnformatted(filter)) == NULL ||
	    (esc = http_url_escape(text)) == NULL ||
	    asprintf(&path, "/api/Tickets?advanced_search=%s&pageinate=true"
	    "&page_size=%d&page_no=1", esc, HALO_PAGE_SIZE) < 0) {
		if (f != NULL && filter == NULL)
			cJSON_Delete(f);
		path = NULL;
		halo_err_set(err, HTTP_INTERNAL, 0, "out of memory");
		goto out;
	}
	if (halo_api_get(c, token, "GET /api/Tickets", path, &root, err) != 0)
		goto out;
	if ((list = halo_json_list(root, "tickets")) == NULL) {
		halo_err_set(err, HTTP_INTERNAL, 200, "Tickets: unexpected response shape");
		goto out;
	}
	rc = 1;
	cJSON_ArrayForEach(t, list) {
		const cJSON *cfs = cJSON_GetObjectItem(t, "customfields"), *cf;
		int64_t id;
		bool holds = false;

		if (!halo_json_int(t, "id", &id) || id <= 0)
			continue;
		/* the filter is undescribed: believe only what the row shows */
		cJSON_ArrayForEach(cf, cfs) {
			const char *name = halo_json_str(cf, "name");
			const char *v = halo_json_str(cf, "value");

			if (name == NULL || v == NULL || strcasecmp(name, field) != 0)
				continue;
			if (conv) {
				holds = halo_conv_matches(v, value);
			} else {
				/* Message-IDs: one pair of <> and case aside */
				size_t vl, wl;
				const char *vb = halo_msgid_bare(v, &vl);
				const char *wb = halo_msgid_bare(value, &wl);

				holds = halo_ascii_caseeq(vb, vl, wb, wl);
			}
			if (holds)
				break;
		}
		if (holds && (rc == 1 || id < *ticket_id)) {
			*ticket_id = id;
			rc = 0;
		}
	}
out:
	cJSON_Delete(filter);
	cJSON_Delete(root);
	cJSON_free(text);
	free(esc);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- pane */

/* GET halo_url + PATH as JSON for the interactive pane (halo.h). */
int
halo_pane_get(const struct halo_conf *c, const char *token, const char *what,
    const char *path, cJSON **json, struct halo_err *err)
{
	*json = NULL;
	if (!halo_args_ok(c, token, err))
		return -1;
	return halo_api_get(c, token, what, path, json, err);
}

/* POST BODY to halo_url + PATH for the interactive pane (halo.h). */
int
halo_pane_post(const struct halo_conf *c, const char *token, const char *what,
    const char *path, const cJSON *body, cJSON **json, struct halo_err *err)
{
	*json = NULL;
	if (!halo_args_ok(c, token, err))
		return -1;
	return halo_api_post(c, token, what, path, body, NULL, json, err);
}

void
halo_conf_tenant(struct halo_conf *hc, const struct conf_tenant *t)
{
	memset(hc, 0, sizeof(*hc));
	hc->halo_url = t->halo_url;
	hc->auth_url = t->auth_url;
	hc->tenant = t->halo_tenant;
	hc->client_id = t->client_id;
	hc->client_secret = t->client_secret;
}
