/*
 * http.h - a small libcurl wrapper: one reusable easy handle per thread
 * (kept-alive connections, TLS sessions resumed), timeouts always set, the response size capped while it arrives, HTTPS only (plain
 * http:// to a loopback address only when a test allows it), no redirects.
 *
 * Failures are classified so that callers can tell a request that surely
 * was not applied (NETWORK, TIMEOUT before sending) from one that may have
 * been (UNCERTAIN: sent, then the answer never came).
 * Nothing here logs or stores the bearer token or the request body.
 */
#ifndef HALO_HTTP_H
#define HALO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_DEFAULT_CONNECT_MS  5000L
#define HTTP_DEFAULT_TOTAL_MS    30000L
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)4 << 20)

enum http_result {
	HTTP_OK = 0,            /* 2xx */
	HTTP_NETWORK,           /* not sent: resolve/connect failed; safe to retry */
	HTTP_UNCERTAIN,         /* sent, then timeout or connection dropped: may have been applied */
	HTTP_TIMEOUT,           /* timed out before the request was sent */
	HTTP_UNAUTHORIZED,      /* 401 */
	HTTP_FORBIDDEN,         /* 403 */
	HTTP_NOT_FOUND,         /* 404 */
	HTTP_RATE_LIMITED,      /* 429 */
	HTTP_CLIENT_ERROR,      /* other 4xx (and unexpected 1xx/3xx) */
	HTTP_SERVER_ERROR,      /* 5xx */
	HTTP_TOO_LARGE,         /* response over the cap */
	HTTP_REFUSED,           /* policy: not https and not an allowed loopback http URL */
	HTTP_INTERNAL           /* bad arguments, out of memory, libcurl setup failure */
};
#define HTTP_RESULT_COUNT ((int)HTTP_INTERNAL + 1)

/*
 * One request. METHOD NULL means GET without a body, POST with one.
 * CONTENT_TYPE and BEARER must not contain control characters.
 * Zero timeouts and MAX_RESPONSE take the defaults above.
 * The body is BODY_LEN bytes, sent with Content-Length: either at BODY,
 * or (BODY_READ set; BODY is then ignored) produced while it is sent:
 * BODY_READ(buf, max, BODY_ARG) puts the next 1..MAX bytes at BUF and
 * returns their count (0: it failed; the request ends HTTP_INTERNAL). It
 * is called for exactly BODY_LEN bytes in order, at most once each: a
 * body is never rewound (see http.c).
 */
struct http_request {
	const char *method;
	const char *url;
	const char *content_type;
	const char *body;
	size_t body_len;
	size_t (*body_read)(char *buf, size_t max, void *arg);
	void *body_arg;
	const char *bearer;
	long connect_timeout_ms;
	long total_timeout_ms;
	size_t max_response;
};

/*
 * The answer. BODY (NUL-terminated, owned, free with http_response_clear) is
 * filled for every status, so error bodies can be read. STATUS is 0 when no
 * response arrived. RETRY_AFTER is in seconds, -1 when absent. ERROR is a
 * short printable reason for a failure, never containing secrets.
 */
struct http_response {
	long status;
	char *body;
	size_t body_len;
	long retry_after;
	char error[256];
};

/* Initialise libcurl once per process (thread-safe, idempotent). */
void http_global_init(void);

/*
 * Close the calling thread's kept-alive connections and free its handle
 * (a thread that ends has them freed anyway).
 */
void http_thread_cleanup(void);

/*
 * Verify servers against the CA bundle in PATH instead of the system's
 * (NULL or "" restores the system's). Copied. Set before any request;
 * not thread-safe, except that setting the same value again is a no-op.
 * Returns -1 when out of memory.
 */
int http_set_ca_file(const char *path);

/* Tests only: permit http:// to 127.0.0.0/8, ::1 and localhost. */
void http_allow_loopback_http(bool allow);

/* Perform REQ; RESP is always initialised (free it with http_response_clear). */
enum http_result http_do(const struct http_request *req, struct http_response *resp);

/*
 * Fuzzers only: answer every http_do() with FN instead of the network (NULL
 * restores libcurl). FN must fill RESP (a malloc'd, NUL-terminated body).
 * Not thread-safe; set it before any request.
 */
typedef enum http_result (*http_transport_fn)(const struct http_request *req,
    struct http_response *resp);
void http_set_transport(http_transport_fn fn);

/* The requests this process made with http_do() so far, by result (all
 * of them go to Halo: its API and its auth server). Thread-safe. */
void http_counts_get(uint64_t counts[HTTP_RESULT_COUNT]);

/* Free the response body and reset RESP. */
void http_response_clear(struct http_response *resp);

/* Short constant name of R, for logs. */
const char *http_result_name(enum http_result r);

/* True for NETWORK, TIMEOUT, UNCERTAIN, RATE_LIMITED and SERVER_ERROR. */
bool http_result_retryable(enum http_result r);

/* Seconds to wait from a Retry-After value (delta-seconds or HTTP-date,
 * clamped to 0..86400); -1 when unusable. */
long http_retry_after_parse(const char *value);

/* Map an HTTP status code to a result (2xx -> HTTP_OK). */
enum http_result http_status_result(long status);

/*
 * PAIRS is k, v, k, v, ..., NULL. Returns "k=v&..." with every byte outside
 * the RFC 3986 unreserved set percent-encoded; malloc'd, NULL on failure.
 */
char *http_form_encode(const char *const *pairs);

/* Percent-encode S for a query value or path segment; malloc'd. */
char *http_url_escape(const char *s);

#endif
