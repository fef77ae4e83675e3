/*
 * http.c - libcurl wrapper with bounded responses and failure classes (see http.h).
 *
 * Each thread keeps one easy handle (a thread-specific key frees it when the
 * thread ends) and resets its options before every request: the handle's
 * connection cache and TLS session cache survive curl_easy_reset(), so a
 * worker keeps one kept-alive connection per Halo host (its tenants' API and
 * auth servers) instead of a TCP and TLS handshake per request.
 *
 * Reuse has one danger. When a reused connection turns out dead and nothing
 * was received, libcurl re-sends the request on a fresh connection
 * (Curl_retry_request, libcurl 7.88 lib/transfer.c); if the server had
 * applied a POST before closing, that is a second ticket or action and no
 * one is told. So request bodies go through a read callback whose seek
 * callback answers CURL_SEEKFUNC_CANTSEEK: libcurl then cannot rewind the
 * body it already sent and fails with CURLE_SEND_FAIL_REWIND (Curl_readrewind;
 * Debian's 7.88.1 defers the rewind until the fresh connection is open, so
 * that connection is opened and closed with nothing sent on it), which is
 * classified HTTP_UNCERTAIN, and the caller's exactly-once logic rechecks
 * Halo. tests/unit/test_http.c checks this against a real socket. A body-less non-GET (where nothing would need
 * rewinding) goes out on a fresh connection so it can never be replayed.
 */
#include "http.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "util.h"

#define HTTP_RETRY_AFTER_MAX 86400L     /* clamp absurd Retry-After values */

#define HTTP_MAX_IDLE_REUSE_S 30L      /* older idle connections are not reused */
#define HTTP_MAX_CONNECTS      8L       /* per thread: a few tenants' hosts */

static atomic_bool http_loopback_ok;
static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static bool http_init_failed;
static pthread_key_t http_handle_key;   /* this thread's reusable easy handle */
static bool http_key_ok;
static char *http_ca_file;              /* CA bundle instead of the system's */

/* A request body handed to libcurl by the read callback, never rewound:
 * bytes at DATA, or from the caller's producer READ. */
struct http_body {
	const char *data;
	size_t len;
	size_t off;
	size_t (*read)(char *buf, size_t max, void *arg);
	void *arg;
	bool failed;            /* the producer gave nothing */
};

/* Growing response buffer with a hard cap. */
struct http_buf {
	struct util_buf u;      /* the answer; u.oom: out of memory */
	size_t max;
	bool too_large;
};

/* What the header callback collects. */
struct http_hdrs {
	long retry_after;
};

/* Thread-specific key destructor: free the thread's easy handle. */
static void
http_handle_free(void *h)
{
	curl_easy_cleanup(h);
}

/* pthread_once body: curl_global_init and the per-thread handle key. */
static void
http_init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		http_init_failed = true;
	http_key_ok = pthread_key_create(&http_handle_key, http_handle_free) == 0;
}

/* This thread's easy handle, reset to defaults; NULL on failure. */
static CURL *
http_thread_handle(void)
{
	CURL *h;

	if (!http_key_ok)
		return curl_easy_init();
	h = pthread_getspecific(http_handle_key);
	if (h != NULL) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h != NULL && pthread_setspecific(http_handle_key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	return h;
}

/* Release H after a request: kept for the next one unless it is not ours. */
static void
http_thread_release(CURL *h)
{
	if (h == NULL)
		return;
	if (!http_key_ok || pthread_getspecific(http_handle_key) != h)
		curl_easy_cleanup(h);
}

/* Close this thread's kept-alive connections (see http.h). */
void
http_thread_cleanup(void)
{
	CURL *h;

	if (!http_key_ok)
		return;
	h = pthread_getspecific(http_handle_key);
	if (h != NULL) {
		(void)pthread_setspecific(http_handle_key, NULL);
		curl_easy_cleanup(h);
	}
}

/* Use the CA bundle PATH (NULL: the system's) for every later request. */
int
http_set_ca_file(const char *path)
{
	char *copy = NULL;

	if (path != NULL && *path == '\0')
		path = NULL;
	/* the worker and the pane both set it: the same value again must not
	 * free a string another thread's request may be reading */
	if ((path == NULL && http_ca_file == NULL) ||
	    (path != NULL && http_ca_file != NULL && strcmp(path, http_ca_file) == 0))
		return 0;
	if (path != NULL && (copy = strdup(path)) == NULL)
		return -1;
	free(http_ca_file);
	http_ca_file = copy;
	return 0;
}

/* CURLOPT_READFUNCTION: hand out the request body. */
static size_t
http_read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http_body *b = userdata;
	size_t n = size * nitems;

	if (n > b->len - b->off)
		n = b->len - b->off;
	if (n == 0)
		return 0;
	if (b->read != NULL) {
		size_t got = b->read(buf, n, b->arg);

		if (got == 0 || got > n) {
			b->failed = true;
			return CURL_READFUNC_ABORT;
		}
		n = got;
	} else {
		memcpy(buf, b->data + b->off, n);
	}
	b->off += n;
	return n;
}

/* CURLOPT_SEEKFUNCTION: never rewind a body (no silent re-send; see top). */
static int
http_seek_cb(void *userdata, curl_off_t offset, int origin)
{
	(void)userdata;
	(void)offset;
	(void)origin;
	return CURL_SEEKFUNC_CANTSEEK;
}

/* Initialise libcurl once per process. */
void
http_global_init(void)
{
	(void)pthread_once(&http_once, http_init_once);
}

/* Permit plain http:// to loopback hosts (tests only). */
void
http_allow_loopback_http(bool allow)
{
	atomic_store(&http_loopback_ok, allow);
}

/* Copy S into OUT as printable ASCII, at most OUTSZ-1 bytes. */
static void
http_set_error(char *out, size_t outsz, const char *s)
{
	size_t i;

	if (outsz == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n' || ch == '\r' || ch == '\t')
			out[i] = ' ';
		else
			out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	while (i > 0 && out[i - 1] == ' ')
		i--;
	out[i] = '\0';
}

/* True when S holds only visible ASCII and spaces (header-safe). */
static bool
http_header_safe(const char *s, bool allow_space)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == ' ' && allow_space)
			continue;
		if (ch <= 0x20 || ch >= 0x7f)
			return false;
	}
	return true;
}

/* True when HOST (as CURLU reports it) is a loopback name or address. */
static bool
http_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[64];
	size_t n;

	if (strcmp(host, "localhost") == 0 || strcmp(host, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	n = strlen(host);
	if (n >= 3 && n < sizeof(buf) + 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) == 1)
			return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

/* Apply the scheme policy to URL; returns the parsed handle or NULL. */
static CURLU *
http_check_url(const char *url, enum http_result *why, char *err, size_t errsz)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	*why = HTTP_INTERNAL;
	if (u == NULL) {
		http_set_error(err, errsz, "out of memory");
		return NULL;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		*why = HTTP_REFUSED;
		http_set_error(err, errsz, "malformed URL");
		goto out;
	}
	if (strcmp(scheme, "https") == 0)
		ok = true;
	else if (strcmp(scheme, "http") == 0 && atomic_load(&http_loopback_ok) &&
	    http_host_is_loopback(host))
		ok = true;
	if (!ok) {
		*why = HTTP_REFUSED;
		http_set_error(err, errsz, "refused: only https:// URLs are allowed");
	}
out:
	curl_free(scheme);
	curl_free(host);
	if (!ok) {
		curl_url_cleanup(u);
		return NULL;
	}
	return u;
}

/* CURLOPT_WRITEFUNCTION: append to the buffer, abort past the cap. */
static size_t
http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_buf *b = userdata;
	size_t n = size * nmemb;

	if (n == 0)
		return 0;
	if (n > b->max || b->u.len > b->max - n) {
		b->too_large = true;
		return 0;
	}
	return util_buf_add(&b->u, ptr, n) ? n : 0;
}

/* Parse a Retry-After value: delta-seconds or HTTP-date; -1 if unusable. */
static long
http_parse_retry_after(const char *v, size_t len)
{
	char tmp[128];
	size_t i;
	long secs = 0;
	time_t when, now;

	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' ||
	    v[len - 1] == '\r' || v[len - 1] == '\n'))
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
		if (secs < HTTP_RETRY_AFTER_MAX)
			secs = secs * 10 + (v[i] - '0');
	}
	if (i == len)
		return secs > HTTP_RETRY_AFTER_MAX ? HTTP_RETRY_AFTER_MAX : secs;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	when = curl_getdate(tmp, NULL);
	if (when == (time_t)-1)
		return -1;
	now = time(NULL);
	if (when <= now)
		return 0;
	if (when - now > HTTP_RETRY_AFTER_MAX)
		return HTTP_RETRY_AFTER_MAX;
	return (long)(when - now);
}

/* Parse a Retry-After header value (delta-seconds or HTTP-date). */
long
http_retry_after_parse(const char *value)
{
	return value != NULL ? http_parse_retry_after(value, strlen(value)) : -1;
}

/* CURLOPT_HEADERFUNCTION: pick up Retry-After of the final response. */
static size_t
http_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http_hdrs *h = userdata;
	size_t n = size * nitems;
	static const char name[] = "retry-after:";
	size_t nl = sizeof(name) - 1;

	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		h->retry_after = -1;        /* a new (possibly interim) response */
		return n;
	}
	if (n > nl && strncasecmp(buf, name, nl) == 0)
		h->retry_after = http_parse_retry_after(buf + nl, n - nl);
	return n;
}

/* Map an HTTP status code to a result. */
enum http_result
http_status_result(long status)
{
	if (status >= 200 && status < 300)
		return HTTP_OK;
	switch (status) {
	case 401:
		return HTTP_UNAUTHORIZED;
	case 403:
		return HTTP_FORBIDDEN;
	case 404:
		return HTTP_NOT_FOUND;
	case 429:
		return HTTP_RATE_LIMITED;
	default:
		break;
	}
	if (status >= 500 && status < 600)
		return HTTP_SERVER_ERROR;
	return HTTP_CLIENT_ERROR;
}

/* Classify a transfer that ended with RC, given whether the request went out. */
static enum http_result
http_classify_curl(CURLcode rc, bool sent)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return HTTP_NETWORK;
	case CURLE_OPERATION_TIMEDOUT:
		return sent ? HTTP_UNCERTAIN : HTTP_TIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return HTTP_TOO_LARGE;
	case CURLE_SEND_FAIL_REWIND:
		/* a reused connection died after the body went out: libcurl
		 * wanted to re-send it, and the server may have applied it */
		return HTTP_UNCERTAIN;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return HTTP_REFUSED;
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_NOT_BUILT_IN:
	case CURLE_FAILED_INIT:
		return HTTP_INTERNAL;
	default:
		/* GOT_NOTHING, RECV_ERROR, PARTIAL_FILE, SEND_ERROR, TLS errors... */
		return sent ? HTTP_UNCERTAIN : HTTP_NETWORK;
	}
}

/* Set one libcurl option, remembering the first failure. */
#define HTTP_SETOPT(h, opt, val, rcp) do { \
	CURLcode setopt_rc_ = curl_easy_setopt((h), (opt), (val)); \
	if (setopt_rc_ != CURLE_OK && *(rcp) == CURLE_OK) \
		*(rcp) = setopt_rc_; \
} while (0)

static http_transport_fn http_transport;  /* fuzzers: see http.h */

/* Fuzzers only: the transport that answers instead of libcurl. */
void
http_set_transport(http_transport_fn fn)
{
	http_transport = fn;
}

/* Perform one request on this thread's easy handle. */
static enum http_result http_perform(const struct http_request *req,
    struct http_response *resp);

/* Requests by result, for /metrics (see http.h). */
static _Atomic uint64_t http_counts[HTTP_RESULT_COUNT];

/* Perform and count. */
enum http_result
http_do(const struct http_request *req, struct http_response *resp)
{
	enum http_result r = http_perform(req, resp);

	if ((unsigned)r < HTTP_RESULT_COUNT)
		atomic_fetch_add(&http_counts[r], 1);
	return r;
}

/* What http_do() has counted so far, by result. */
void
http_counts_get(uint64_t counts[HTTP_RESULT_COUNT])
{
	int i;

	for (i = 0; i < HTTP_RESULT_COUNT; i++)
		counts[i] = atomic_load(&http_counts[i]);
}

/* One request through libcurl (or the fuzzers' transport). */
static enum http_result
http_perform(const struct http_request *req, struct http_response *resp)
{
	char errbuf[CURL_ERROR_SIZE];
	struct http_buf buf = { 0 };
	struct http_hdrs hdrs = { .retry_after = -1 };
	struct http_body body = { 0 };
	struct curl_slist *headers = NULL, *tmp;
	char ctbuf[256];
	enum http_result res = HTTP_INTERNAL;
	const char *method;
	CURLcode rc = CURLE_OK, prc;
	CURLU *u = NULL;
	CURL *h = NULL;
	long connect_ms, total_ms, status = 0;
	long req_size = 0, req_size_long = 0;
	bool has_body;

	if (http_transport != NULL) {
		memset(resp, 0, sizeof(*resp));
		resp->retry_after = -1;
		return http_transport(req, resp);
	}
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (req == NULL || req->url == NULL) {
		http_set_error(resp->error, sizeof(resp->error), "bad request arguments");
		return HTTP_INTERNAL;
	}
	http_global_init();
	if (http_init_failed) {
		http_set_error(resp->error, sizeof(resp->error), "curl_global_init failed");
		return HTTP_INTERNAL;
	}
	method = req->method;
	has_body = req->body != NULL || req->body_read != NULL;
	if (method == NULL)
		method = has_body ? "POST" : "GET";
	if (!http_header_safe(method, false) ||
	    (req->bearer != NULL && !http_header_safe(req->bearer, false)) ||
	    (req->content_type != NULL && !http_header_safe(req->content_type, true)) ||
	    (strcmp(method, "GET") == 0 && has_body)) {
		http_set_error(resp->error, sizeof(resp->error), "bad request arguments");
		return HTTP_INTERNAL;
	}
	u = http_check_url(req->url, &res, resp->error, sizeof(resp->error));
	if (u == NULL)
		return res;

	connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS;
	total_ms = req->total_timeout_ms > 0 ? req->total_timeout_ms : HTTP_DEFAULT_TOTAL_MS;
	if (connect_ms > total_ms)
		connect_ms = total_ms;
	buf.max = req->max_response > 0 ? req->max_response : HTTP_DEFAULT_MAX_RESPONSE;
	if (buf.max > (size_t)INT64_MAX - 1)
		buf.max = (size_t)INT64_MAX - 1;
	buf.u.max = buf.max;

	h = http_thread_handle();
	if (h == NULL) {
		http_set_error(resp->error, sizeof(resp->error), "curl_easy_init failed");
		res = HTTP_INTERNAL;
		goto out;
	}
	errbuf[0] = '\0';

	tmp = curl_slist_append(headers, "Accept: application/json");
	if (tmp != NULL)
		headers = tmp;
	/* no 100-continue round trip: it only adds latency for our small bodies */
	tmp = tmp ? curl_slist_append(headers, "Expect:") : NULL;
	if (tmp != NULL)
		headers = tmp;
	if (tmp != NULL && req->content_type != NULL) {
		int n = snprintf(ctbuf, sizeof(ctbuf), "Content-Type: %s", req->content_type);
		tmp = (n > 0 && (size_t)n < sizeof(ctbuf)) ? curl_slist_append(headers, ctbuf) : NULL;
		if (tmp != NULL)
			headers = tmp;
	}
	if (tmp == NULL) {
		http_set_error(resp->error, sizeof(resp->error), "cannot build headers");
		res = HTTP_INTERNAL;
		goto out;
	}

	HTTP_SETOPT(h, CURLOPT_ERRORBUFFER, errbuf, &rc);
	HTTP_SETOPT(h, CURLOPT_CURLU, u, &rc);
	HTTP_SETOPT(h, CURLOPT_NOSIGNAL, 1L, &rc);
	HTTP_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L, &rc);
#if LIBCURL_VERSION_NUM >= 0x075500
	HTTP_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https", &rc);
	HTTP_SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "https", &rc);
#else
	HTTP_SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS), &rc);
	HTTP_SETOPT(h, CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTPS, &rc);
#endif
	HTTP_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms, &rc);
	HTTP_SETOPT(h, CURLOPT_TIMEOUT_MS, total_ms, &rc);
	HTTP_SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)buf.max, &rc);
	HTTP_SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L, &rc);
	HTTP_SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L, &rc);
	HTTP_SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2, &rc);
	if (http_ca_file != NULL)
		HTTP_SETOPT(h, CURLOPT_CAINFO, http_ca_file, &rc);
	HTTP_SETOPT(h, CURLOPT_MAXAGE_CONN, HTTP_MAX_IDLE_REUSE_S, &rc);
	HTTP_SETOPT(h, CURLOPT_MAXCONNECTS, HTTP_MAX_CONNECTS, &rc);
	HTTP_SETOPT(h, CURLOPT_USERAGENT, "halo-milter", &rc);
	HTTP_SETOPT(h, CURLOPT_ACCEPT_ENCODING, "", &rc);
	HTTP_SETOPT(h, CURLOPT_HTTPHEADER, headers, &rc);
	HTTP_SETOPT(h, CURLOPT_WRITEFUNCTION, http_write_cb, &rc);
	HTTP_SETOPT(h, CURLOPT_WRITEDATA, &buf, &rc);
	HTTP_SETOPT(h, CURLOPT_HEADERFUNCTION, http_header_cb, &rc);
	HTTP_SETOPT(h, CURLOPT_HEADERDATA, &hdrs, &rc);
	if (req->bearer != NULL) {
		HTTP_SETOPT(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER, &rc);
		HTTP_SETOPT(h, CURLOPT_XOAUTH2_BEARER, req->bearer, &rc);
	}
	if (strcmp(method, "GET") == 0) {
		HTTP_SETOPT(h, CURLOPT_HTTPGET, 1L, &rc);
	} else {
		if (strcmp(method, "POST") != 0)
			HTTP_SETOPT(h, CURLOPT_CUSTOMREQUEST, method, &rc);
		if (has_body || strcmp(method, "POST") == 0) {
			body.data = req->body != NULL ? req->body : "";
			body.len = has_body ? req->body_len : 0;
			if (req->body_read != NULL) {
				body.read = req->body_read;
				body.arg = req->body_arg;
			}
			HTTP_SETOPT(h, CURLOPT_POST, 1L, &rc);
			HTTP_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len, &rc);
			HTTP_SETOPT(h, CURLOPT_READFUNCTION, http_read_cb, &rc);
			HTTP_SETOPT(h, CURLOPT_READDATA, &body, &rc);
			HTTP_SETOPT(h, CURLOPT_SEEKFUNCTION, http_seek_cb, &rc);
			HTTP_SETOPT(h, CURLOPT_SEEKDATA, &body, &rc);
		}
		/* nothing to rewind means libcurl could replay it: never reuse */
		if (body.len == 0)
			HTTP_SETOPT(h, CURLOPT_FRESH_CONNECT, 1L, &rc);
	}
	if (rc != CURLE_OK) {
		http_set_error(resp->error, sizeof(resp->error), curl_easy_strerror(rc));
		res = HTTP_INTERNAL;
		goto out;
	}

	prc = curl_easy_perform(h);

	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	if (curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &req_size_long) == CURLE_OK)
		req_size = req_size_long;
	resp->status = status;
	resp->retry_after = hdrs.retry_after;

	if (prc == CURLE_OK) {
		res = http_status_result(status);
		if (res == HTTP_CLIENT_ERROR && status >= 300 && status < 400)
			snprintf(resp->error, sizeof(resp->error),
			    "unexpected redirect (HTTP %ld), not followed", status);
		else if (res != HTTP_OK)
			snprintf(resp->error, sizeof(resp->error), "HTTP %ld", status);
	} else if (buf.too_large || prc == CURLE_FILESIZE_EXCEEDED) {
		res = HTTP_TOO_LARGE;
		snprintf(resp->error, sizeof(resp->error),
		    "response larger than %zu bytes", buf.max);
	} else if (buf.u.oom) {
		res = HTTP_INTERNAL;
		http_set_error(resp->error, sizeof(resp->error), "out of memory");
	} else if (body.failed) {
		/* cut short: with Content-Length unmet, nothing is applied */
		res = HTTP_INTERNAL;
		http_set_error(resp->error, sizeof(resp->error),
		    "request body could not be produced");
	} else {
		res = http_classify_curl(prc, req_size > 0);
		http_set_error(resp->error, sizeof(resp->error),
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(prc));
	}

	if (res != HTTP_TOO_LARGE && (buf.u.s != NULL || status > 0)) {
		if (buf.u.s == NULL)
			buf.u.s = calloc(1, 1);
		resp->body = buf.u.s;
		resp->body_len = buf.u.len;
		buf.u.s = NULL;
	}
out:
	free(buf.u.s);
	if (h != NULL) {
		/* the handle outlives this call: drop pointers to our locals */
		(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		(void)curl_easy_setopt(h, CURLOPT_CURLU, NULL);
		(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
		/* and the bearer token is not kept between requests */
		(void)curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, NULL);
		http_thread_release(h);
	}
	curl_slist_free_all(headers);
	curl_url_cleanup(u);
	return res;
}

/* Free the response body and reset RESP. */
void
http_response_clear(struct http_response *resp)
{
	if (resp == NULL)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

/* Short constant name of R. */
const char *
http_result_name(enum http_result r)
{
	switch (r) {
	case HTTP_OK: return "ok";
	case HTTP_NETWORK: return "network";
	case HTTP_UNCERTAIN: return "uncertain";
	case HTTP_TIMEOUT: return "timeout";
	case HTTP_UNAUTHORIZED: return "unauthorized";
	case HTTP_FORBIDDEN: return "forbidden";
	case HTTP_NOT_FOUND: return "not-found";
	case HTTP_RATE_LIMITED: return "rate-limited";
	case HTTP_CLIENT_ERROR: return "client-error";
	case HTTP_SERVER_ERROR: return "server-error";
	case HTTP_TOO_LARGE: return "too-large";
	case HTTP_REFUSED: return "refused";
	case HTTP_INTERNAL: return "internal";
	}
	return "unknown";
}

/* Whether a later retry of the same request can succeed. */
bool
http_result_retryable(enum http_result r)
{
	switch (r) {
	case HTTP_NETWORK:
	case HTTP_TIMEOUT:
	case HTTP_UNCERTAIN:
	case HTTP_RATE_LIMITED:
	case HTTP_SERVER_ERROR:
		return true;
	default:
		return false;
	}
}

/* True for the RFC 3986 unreserved characters. */
static bool
http_unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Encoded length of S, or SIZE_MAX on overflow. */
static size_t
http_escaped_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		size_t add = http_unreserved((unsigned char)*s) ? 1 : 3;
		if (n > SIZE_MAX - add - 1)
			return SIZE_MAX;
		n += add;
	}
	return n;
}

/* Append the escaped form of S at OUT; returns the new end. */
static char *
http_escape_into(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (http_unreserved(ch)) {
			*out++ = (char)ch;
		} else {
			*out++ = '%';
			*out++ = hex[ch >> 4];
			*out++ = hex[ch & 15];
		}
	}
	return out;
}

/* Percent-encode S; malloc'd. */
char *
http_url_escape(const char *s)
{
	size_t n;
	char *out, *end;

	if (s == NULL)
		return NULL;
	n = http_escaped_len(s);
	if (n == SIZE_MAX || (out = malloc(n + 1)) == NULL)
		return NULL;
	end = http_escape_into(out, s);
	*end = '\0';
	return out;
}

/* Build "k=v&k=v" from a NULL-terminated k, v list; malloc'd. */
char *
http_form_encode(const char *const *pairs)
{
	size_t total = 0, i, kl, vl;
	char *out, *p;

	if (pairs == NULL)
		return NULL;
	for (i = 0; pairs[i] != NULL && pairs[i + 1] != NULL; i += 2) {
		kl = http_escaped_len(pairs[i]);
		vl = http_escaped_len(pairs[i + 1]);
		if (kl == SIZE_MAX || vl == SIZE_MAX || total > SIZE_MAX / 2 - kl - vl - 2)
			return NULL;
		total += kl + vl + 2;
	}
	out = malloc(total + 1);
	if (out == NULL)
		return NULL;
	p = out;
	for (i = 0; pairs[i] != NULL && pairs[i + 1] != NULL; i += 2) {
		if (i > 0)
			*p++ = '&';
		p = http_escape_into(p, pairs[i]);
		*p++ = '=';
		p = http_escape_into(p, pairs[i + 1]);
	}
	*p = '\0';
	return out;
}
