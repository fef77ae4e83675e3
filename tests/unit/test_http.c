/*
 * test_http.c - unit tests for common/http.c against the halosim simulator
 * (started once as a subprocess on free ports): every http_result class,
 * Retry-After, the response cap, the https-only policy, and the encoders;
 * and, against a scripted raw HTTP server on a thread (below), connection
 * reuse and that a POST on a reused connection that dies is never re-sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "simhelper.h"

/* ---------------------------------------------------------- simulator */


/* Request METHOD PATH on the resource port with a JSON BODY (or NULL). */
static enum http_result
sim_req(const char *method, const char *path, const char *body, const char *bearer,
    long timeout_ms, struct http_response *resp)
{
	char url[512];
	struct http_request req = { 0 };

	snprintf(url, sizeof(url), "%s%s", sim.base, path);
	req.method = method;
	req.url = url;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.content_type = body ? "application/json" : NULL;
	req.bearer = bearer;
	req.total_timeout_ms = timeout_ms;
	return http_do(&req, resp);
}

/* POST a control request; fail the test unless it answers 2xx. */
static void
sim_control(const char *path, const char *json)
{
	struct http_response resp;
	enum http_result r = sim_req("POST", path, json ? json : "{}", NULL, 10000, &resp);

	if (r != HTTP_OK)
		fail_msg("control %s: %s %s", path, http_result_name(r), resp.error);
	http_response_clear(&resp);
}

/* GET /_sim/state parsed. */
static cJSON *
sim_state(void)
{
	struct http_response resp;
	cJSON *j;

	assert_int_equal(sim_req("GET", "/_sim/state", NULL, NULL, 10000, &resp), HTTP_OK);
	j = cJSON_ParseWithLength(resp.body, resp.body_len);
	http_response_clear(&resp);
	assert_non_null(j);
	return j;
}

/* A fresh access token for alice with SCOPE; malloc'd. */
static char *
sim_token(const char *scope)
{
	struct http_response resp;
	char body[256];
	cJSON *j;
	char *tok;

	snprintf(body, sizeof(body), "{\"agent_email\":\"alice@msp.example\",\"scope\":\"%s\"}",
	    scope);
	assert_int_equal(sim_req("POST", "/_sim/token", body, NULL, 10000, &resp), HTTP_OK);
	j = cJSON_ParseWithLength(resp.body, resp.body_len);
	http_response_clear(&resp);
	assert_non_null(j);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "access_token")));
	tok = strdup(cJSON_GetObjectItem(j, "access_token")->valuestring);
	cJSON_Delete(j);
	assert_non_null(tok);
	return tok;
}


/* Reset the simulator's data and faults before every test. */
static int
setup(void **state)
{
	(void)state;
	http_allow_loopback_http(true);
	sim_control("/_sim/reset", "{}");
	return 0;
}

/* A minimal valid action body for ticket 501. */
static const char action_body[] =
    "[{\"ticket_id\":501,\"outcome\":\"Note\",\"note\":\"x\",\"sendemail\":false}]";

/* Number of created actions in the simulator. */
static int
sim_actions_created(void)
{
	cJSON *st = sim_state();
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(st, "actions"));

	cJSON_Delete(st);
	return n;
}

/* ---------------------------------------------------------- tests */

static void
test_ok_get(void **state)
{
	struct http_response resp;

	(void)state;
	assert_int_equal(sim_req("GET", "/api/authinfo", NULL, NULL, 0, &resp), HTTP_OK);
	assert_int_equal(resp.status, 200);
	assert_non_null(resp.body);
	assert_int_equal(strlen(resp.body), resp.body_len);
	assert_non_null(strstr(resp.body, "auth_url"));
	assert_int_equal(resp.retry_after, -1);
	http_response_clear(&resp);
	assert_null(resp.body);
}

static void
test_status_classes(void **state)
{
	struct http_response resp;
	char *tok = sim_token("all");
	char *ro = sim_token("read:tickets");

	(void)state;
	/* 401: no token */
	assert_int_equal(sim_req("GET", "/api/Agent/me", NULL, NULL, 0, &resp), HTTP_UNAUTHORIZED);
	assert_int_equal(resp.status, 401);
	assert_non_null(resp.body);             /* error bodies are kept */
	http_response_clear(&resp);
	/* 200 with the token */
	assert_int_equal(sim_req("GET", "/api/Agent/me", NULL, tok, 0, &resp), HTTP_OK);
	http_response_clear(&resp);
	/* 403: scope does not cover customers */
	assert_int_equal(sim_req("GET", "/api/Users?search=ann", NULL, ro, 0, &resp),
	    HTTP_FORBIDDEN);
	assert_int_equal(resp.status, 403);
	http_response_clear(&resp);
	/* 404 */
	assert_int_equal(sim_req("GET", "/api/Tickets/999999", NULL, tok, 0, &resp),
	    HTTP_NOT_FOUND);
	http_response_clear(&resp);
	/* 405 -> other 4xx */
	assert_int_equal(sim_req("DELETE", "/api/Outcome", NULL, tok, 0, &resp),
	    HTTP_CLIENT_ERROR);
	assert_int_equal(resp.status, 405);
	http_response_clear(&resp);
	/* 400 */
	assert_int_equal(sim_req("POST", "/api/Actions", "[{\"ticket_id\":501}]", tok, 0, &resp),
	    HTTP_CLIENT_ERROR);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(resp.body, "Outcome"));
	http_response_clear(&resp);
	/* 500 */
	sim_control("/_sim/faults", "{\"crash_next\": 1}");
	assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 0, &resp), HTTP_SERVER_ERROR);
	assert_int_equal(resp.status, 500);
	http_response_clear(&resp);
	free(tok);
	free(ro);
}

static void
test_status_burst(void **state)
{
	struct http_response resp;
	char *tok = sim_token("all");
	int i;

	(void)state;
	sim_control("/_sim/faults", "{\"status_burst\": {\"status\": 503, \"count\": 2}}");
	for (i = 0; i < 2; i++) {
		assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 0, &resp),
		    HTTP_SERVER_ERROR);
		assert_int_equal(resp.status, 503);
		assert_true(http_result_retryable(HTTP_SERVER_ERROR));
		http_response_clear(&resp);
	}
	assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 0, &resp), HTTP_OK);
	http_response_clear(&resp);
	free(tok);
}

static void
test_rate_limit(void **state)
{
	struct http_response resp;
	char *tok = sim_token("all");

	(void)state;
	sim_control("/_sim/faults", "{\"rate_limit\": {\"limit\": 1, \"window\": 60}}");
	assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 0, &resp), HTTP_OK);
	http_response_clear(&resp);
	assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 0, &resp), HTTP_RATE_LIMITED);
	assert_int_equal(resp.status, 429);
	assert_true(resp.retry_after >= 0 && resp.retry_after <= 60);
	assert_non_null(strstr(resp.body, "Rate Limit"));
	http_response_clear(&resp);

	sim_control("/_sim/faults", "{\"retry_after\": false}");
	assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 0, &resp), HTTP_RATE_LIMITED);
	assert_int_equal(resp.retry_after, -1);
	http_response_clear(&resp);
	free(tok);
}

static void
test_drop_after_request(void **state)
{
	struct http_response resp;
	char *tok = sim_token("all");

	(void)state;
	sim_control("/_sim/faults", "{\"drop_after_request\": 1}");
	assert_int_equal(sim_req("POST", "/api/Actions", action_body, tok, 0, &resp),
	    HTTP_UNCERTAIN);
	assert_int_equal(resp.status, 0);
	assert_true(resp.error[0] != '\0');
	http_response_clear(&resp);
	assert_int_equal(sim_actions_created(), 1);     /* it was applied */
	free(tok);
}

static void
test_drop_before_apply(void **state)
{
	struct http_response resp;
	char *tok = sim_token("all");

	(void)state;
	sim_control("/_sim/faults", "{\"drop_before_apply\": 1}");
	/* the client cannot tell this from drop_after_request */
	assert_int_equal(sim_req("POST", "/api/Actions", action_body, tok, 0, &resp),
	    HTTP_UNCERTAIN);
	http_response_clear(&resp);
	assert_int_equal(sim_actions_created(), 0);
	/* the retry goes through */
	assert_int_equal(sim_req("POST", "/api/Actions", action_body, tok, 0, &resp), HTTP_OK);
	http_response_clear(&resp);
	assert_int_equal(sim_actions_created(), 1);
	free(tok);
}

static void
test_latency_uncertain(void **state)
{
	struct http_response resp;
	char *tok = sim_token("all");

	(void)state;
	sim_control("/_sim/faults", "{\"latency_ms\": 1500}");
	assert_int_equal(sim_req("GET", "/api/Outcome", NULL, tok, 300, &resp), HTTP_UNCERTAIN);
	assert_int_equal(resp.status, 0);
	assert_non_null(strstr(resp.error, "imed out"));
	http_response_clear(&resp);
	sim_control("/_sim/faults", "{\"latency_ms\": 0}");
	free(tok);
}

/* A listening socket that never accepts: TCP connects, TLS never answers. */
static void
test_timeout_before_send(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct http_request req = { 0 };
	struct http_response resp;
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/Outcome", ntohs(sa.sin_port));
	req.url = url;
	req.total_timeout_ms = 300;
	assert_int_equal(http_do(&req, &resp), HTTP_TIMEOUT);
	assert_int_equal(resp.status, 0);
	assert_true(http_result_retryable(HTTP_TIMEOUT));
	http_response_clear(&resp);
	close(fd);
}

static void
test_closed_port_network(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct http_request req = { 0 };
	struct http_response resp;
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);              /* bound, never listened: the port is closed */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/Outcome", ntohs(sa.sin_port));
	req.url = url;
	req.method = "POST";
	req.body = "[]";
	req.body_len = 2;
	assert_int_equal(http_do(&req, &resp), HTTP_NETWORK);
	assert_true(http_result_retryable(HTTP_NETWORK));
	http_response_clear(&resp);
}

static void
test_https_only(void **state)
{
	struct http_request req = { 0 };
	struct http_response resp;
	char url[128];
	static const char *const bad[] = {
		"http://example.com/api/Outcome", "ftp://127.0.0.1/x", "file:///etc/passwd",
		"http://10.0.0.1/", "http://127.0.0.1.example.com/", "not a url", "",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req.url = bad[i];
		assert_int_equal(http_do(&req, &resp), HTTP_REFUSED);
		assert_int_equal(resp.status, 0);
		assert_null(resp.body);
		http_response_clear(&resp);
	}
	/* loopback http is refused unless a test allows it */
	snprintf(url, sizeof(url), "%s/api/authinfo", sim.base);
	req.url = url;
	http_allow_loopback_http(false);
	assert_int_equal(http_do(&req, &resp), HTTP_REFUSED);
	http_response_clear(&resp);
	http_allow_loopback_http(true);
	assert_int_equal(http_do(&req, &resp), HTTP_OK);
	http_response_clear(&resp);
	snprintf(url, sizeof(url), "http://localhost:%d/api/authinfo", sim.port);
	assert_int_equal(http_do(&req, &resp), HTTP_OK);
	http_response_clear(&resp);
}

static void
test_too_large(void **state)
{
	struct http_request req = { 0 };
	struct http_response resp;
	char url[128];
	char *tok = sim_token("all");

	(void)state;
	snprintf(url, sizeof(url), "%s/api/Tickets", sim.base);
	req.url = url;
	req.bearer = tok;
	req.max_response = 64;
	assert_int_equal(http_do(&req, &resp), HTTP_TOO_LARGE);
	assert_null(resp.body);
	assert_false(http_result_retryable(HTTP_TOO_LARGE));
	http_response_clear(&resp);
	req.max_response = 0;           /* default cap: fine */
	assert_int_equal(http_do(&req, &resp), HTTP_OK);
	assert_true(resp.body_len > 64);
	http_response_clear(&resp);
	free(tok);
}

static void
test_bad_arguments(void **state)
{
	struct http_request req = { 0 };
	struct http_response resp;
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "%s/api/Agent/me", sim.base);
	req.url = url;
	req.bearer = "abc\r\nX-Injected: 1";
	assert_int_equal(http_do(&req, &resp), HTTP_INTERNAL);
	assert_null(strstr(resp.error, "abc"));
	http_response_clear(&resp);
	req.bearer = NULL;
	req.content_type = "text/plain\nX: y";
	req.body = "x";
	req.body_len = 1;
	assert_int_equal(http_do(&req, &resp), HTTP_INTERNAL);
	http_response_clear(&resp);
	req.content_type = NULL;
	req.method = "GET";             /* GET with a body */
	assert_int_equal(http_do(&req, &resp), HTTP_INTERNAL);
	http_response_clear(&resp);
	assert_int_equal(http_do(NULL, &resp), HTTP_INTERNAL);
	http_response_clear(&resp);
}

static void
test_retry_after_parse(void **state)
{
	char date[64];
	time_t now = time(NULL) + 120;
	struct tm tm;
	long v;

	(void)state;
	assert_int_equal(http_retry_after_parse("0"), 0);
	assert_int_equal(http_retry_after_parse(" 42 "), 42);
	assert_int_equal(http_retry_after_parse("99999999999999999999"), 86400);
	assert_int_equal(http_retry_after_parse(""), -1);
	assert_int_equal(http_retry_after_parse("soon"), -1);
	assert_int_equal(http_retry_after_parse("-5"), -1);
	assert_int_equal(http_retry_after_parse(NULL), -1);
	assert_int_equal(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	v = http_retry_after_parse(date);
	assert_true(v >= 115 && v <= 120);
}

static void
test_encoders(void **state)
{
	static const char *const pairs[] = {
		"grant_type", "refresh_token", "refresh_token", "a+b/c=d&e f~_.-",
		"ünï", "\x01", NULL,
	};
	static const char *const empty[] = { NULL };
	char *s;

	(void)state;
	s = http_form_encode(pairs);
	assert_string_equal(s,
	    "grant_type=refresh_token&refresh_token=a%2Bb%2Fc%3Dd%26e%20f~_.-"
	    "&%C3%BCn%C3%AF=%01");
	free(s);
	s = http_form_encode(empty);
	assert_string_equal(s, "");
	free(s);
	s = http_url_escape("<a@b.example>");
	assert_string_equal(s, "%3Ca%40b.example%3E");
	free(s);
	assert_null(http_url_escape(NULL));
}

static void
test_names_and_retryable(void **state)
{
	static const struct { enum http_result r; const char *name; bool retry; } t[] = {
		{ HTTP_OK, "ok", false }, { HTTP_NETWORK, "network", true },
		{ HTTP_UNCERTAIN, "uncertain", true }, { HTTP_TIMEOUT, "timeout", true },
		{ HTTP_UNAUTHORIZED, "unauthorized", false },
		{ HTTP_FORBIDDEN, "forbidden", false }, { HTTP_NOT_FOUND, "not-found", false },
		{ HTTP_RATE_LIMITED, "rate-limited", true },
		{ HTTP_CLIENT_ERROR, "client-error", false },
		{ HTTP_SERVER_ERROR, "server-error", true },
		{ HTTP_TOO_LARGE, "too-large", false }, { HTTP_REFUSED, "refused", false },
		{ HTTP_INTERNAL, "internal", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_string_equal(http_result_name(t[i].r), t[i].name);
		assert_int_equal(http_result_retryable(t[i].r), t[i].retry);
	}
	assert_int_equal(http_status_result(201), HTTP_OK);
	assert_int_equal(http_status_result(302), HTTP_CLIENT_ERROR);
	assert_int_equal(http_status_result(418), HTTP_CLIENT_ERROR);
	assert_int_equal(http_status_result(502), HTTP_SERVER_ERROR);
}

/* ---------------------------------------------- scripted raw server */

/*
 * A one-thread HTTP/1.1 server on a free loopback port. Per connection it
 * serves requests in order; request number K (counted over all
 * connections, from 0) gets the action script[K]: ANSWER (200 keep-alive),
 * ANSWER_CLOSE (200, then close without saying so, as an idle timeout
 * does), or DROP (read the whole request, then close without answering).
 * Past the script it answers. It counts accepts and POSTs seen.
 */
enum raw_action { RAW_ANSWER, RAW_ANSWER_CLOSE, RAW_DROP };

struct raw_server {
	int lfd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	enum raw_action script[8];
	int nscript;
	int accepts;
	int requests;
	int posts;
	bool stop;
	char *body;             /* the last request's body (malloc'd) */
	size_t body_len;
};

/* Read one request (head and Content-Length body) from FD into *BODY
 * (malloc'd, *BODY_LEN bytes); 1 ok, 0 EOF, -1 error. */
static int
raw_read_request(int fd, bool *is_post, char **out, size_t *out_len)
{
	char buf[8192];
	size_t len = 0, have, got = 0;
	char *end, *cl;
	long body = 0;
	ssize_t n;

	*out = NULL;
	*out_len = 0;

	for (;;) {
		if (len > 0 && (end = memmem(buf, len, "\r\n\r\n", 4)) != NULL)
			break;
		if (len >= sizeof(buf) - 1)
			return -1;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return len == 0 && n == 0 ? 0 : -1;
		len += (size_t)n;
		buf[len] = '\0';
	}
	*end = '\0';
	*is_post = strncmp(buf, "POST ", 5) == 0;
	if ((cl = strcasestr(buf, "\r\nContent-Length:")) != NULL)
		body = strtol(cl + 17, NULL, 10);
	if (body < 0 || (*out = malloc((size_t)body + 1)) == NULL)
		return -1;
	have = len - (size_t)(end + 4 - buf);
	memcpy(*out, end + 4, have);
	got = have;
	while (got < (size_t)body) {
		n = read(fd, *out + got, (size_t)body - got);
		if (n <= 0) {
			free(*out);
			*out = NULL;
			return -1;
		}
		got += (size_t)n;
	}
	*out_len = got;
	return 1;
}

/* The server thread: accept, serve requests by the script. */
static void *
raw_server_main(void *arg)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 2\r\n\r\n{}";
	struct raw_server *rs = arg;
	enum raw_action act;
	bool post;
	char *body;
	size_t body_len;
	int fd, k;

	for (;;) {
		fd = accept(rs->lfd, NULL, NULL);
		pthread_mutex_lock(&rs->lock);
		if (rs->stop || fd < 0) {
			pthread_mutex_unlock(&rs->lock);
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		rs->accepts++;
		pthread_mutex_unlock(&rs->lock);
		while (raw_read_request(fd, &post, &body, &body_len) == 1) {
			pthread_mutex_lock(&rs->lock);
			k = rs->requests++;
			if (post)
				rs->posts++;
			free(rs->body);
			rs->body = body;
			rs->body_len = body_len;
			act = k < rs->nscript ? rs->script[k] : RAW_ANSWER;
			pthread_mutex_unlock(&rs->lock);
			if (act == RAW_DROP)
				break;
			if (write(fd, ok, sizeof(ok) - 1) != (ssize_t)sizeof(ok) - 1)
				break;
			if (act == RAW_ANSWER_CLOSE)
				break;
		}
		close(fd);
	}
}

/* Start RS on a free loopback port with the script ACTS. */
static void
raw_server_start(struct raw_server *rs, const enum raw_action *acts, int nacts)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(rs, 0, sizeof(*rs));
	assert_true(nacts <= (int)(sizeof(rs->script) / sizeof(rs->script[0])));
	if (nacts > 0)          /* no script: ACTS may be NULL */
		memcpy(rs->script, acts, (size_t)nacts * sizeof(*acts));
	rs->nscript = nacts;
	pthread_mutex_init(&rs->lock, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(rs->lfd >= 0);
	(void)setsockopt(rs->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(rs->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(rs->lfd, 16), 0);
	assert_int_equal(getsockname(rs->lfd, (struct sockaddr *)&sa, &sl), 0);
	rs->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&rs->thread, NULL, raw_server_main, rs), 0);
}

/* Stop RS: wake its accept with a connection of our own. */
static void
raw_server_stop(struct raw_server *rs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd;

	/* close our kept-alive connection first: the server reads on it */
	http_thread_cleanup();
	pthread_mutex_lock(&rs->lock);
	rs->stop = true;
	pthread_mutex_unlock(&rs->lock);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)rs->port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0) {
		(void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
	}
	pthread_join(rs->thread, NULL);
	close(rs->lfd);
	pthread_mutex_destroy(&rs->lock);
	free(rs->body);
	rs->body = NULL;
}

/* One request to RS: METHOD with BODY (or NULL). */
static enum http_result
raw_req(struct raw_server *rs, const char *method, const char *body)
{
	struct http_request req = { 0 };
	struct http_response resp;
	enum http_result r;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/Tickets", rs->port);
	req.method = method;
	req.url = url;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.content_type = body != NULL ? "application/json" : NULL;
	req.total_timeout_ms = 5000;
	r = http_do(&req, &resp);
	http_response_clear(&resp);
	return r;
}

/* A streamed body: LEN bytes of DATA in pieces of at most PIECE bytes;
 * FAIL_AT > 0: the producer fails once that many were given. */
struct stream_src {
	const char *data;
	size_t len, off, piece, fail_at;
	int calls;
};

/* http_request.body_read over a struct stream_src. */
static size_t
stream_read(char *buf, size_t max, void *arg)
{
	struct stream_src *src = arg;
	size_t n = max < src->piece ? max : src->piece;

	src->calls++;
	if (src->fail_at > 0 && src->off >= src->fail_at)
		return 0;
	if (n > src->len - src->off)
		n = src->len - src->off;
	memcpy(buf, src->data + src->off, n);
	src->off += n;
	return n;
}

/* One POST to RS with its body produced by SRC. */
static enum http_result
raw_req_stream(struct raw_server *rs, struct stream_src *src)
{
	struct http_request req = { 0 };
	struct http_response resp;
	enum http_result r;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/Tickets", rs->port);
	req.method = "POST";
	req.url = url;
	req.body = "ignored";
	req.body_len = src->len;
	req.body_read = stream_read;
	req.body_arg = src;
	req.content_type = "application/json";
	req.total_timeout_ms = 5000;
	r = http_do(&req, &resp);
	http_response_clear(&resp);
	return r;
}

/* Read a raw server counter under its lock. */
static int
raw_count(struct raw_server *rs, const int *field)
{
	int v;

	pthread_mutex_lock(&rs->lock);
	v = *field;
	pthread_mutex_unlock(&rs->lock);
	return v;
}

/* GETs in a row go over one kept-alive connection. */
static void
test_keepalive_reuse(void **state)
{
	struct raw_server rs;
	int i;

	(void)state;
	http_allow_loopback_http(true);
	raw_server_start(&rs, NULL, 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(raw_req(&rs, "GET", NULL), HTTP_OK);
	assert_int_equal(raw_req(&rs, "POST", "{\"a\":1}"), HTTP_OK);
	assert_int_equal(raw_count(&rs, &rs.requests), 6);
	assert_int_equal(raw_count(&rs, &rs.accepts), 1);
	raw_server_stop(&rs);
}

/*
 * The second request, a POST on the reused connection, is read by the
 * server, which then closes without answering: libcurl would re-send it on
 * a fresh connection; it must not, and the result must be UNCERTAIN.
 */
static void
test_post_on_dead_reuse_not_resent(void **state)
{
	static const enum raw_action acts[] = { RAW_ANSWER, RAW_DROP };
	struct raw_server rs;

	(void)state;
	http_allow_loopback_http(true);
	raw_server_start(&rs, acts, 2);
	assert_int_equal(raw_req(&rs, "GET", NULL), HTTP_OK);
	assert_int_equal(raw_req(&rs, "POST", "{\"summary\":\"once\"}"), HTTP_UNCERTAIN);
	usleep(100 * 1000);     /* a re-send, if any, would have come by now */
	/* libcurl 7.88 may open the fresh connection before it finds it
	 * cannot rewind; what matters is that nothing more was sent */
	assert_int_equal(raw_count(&rs, &rs.posts), 1);
	assert_int_equal(raw_count(&rs, &rs.requests), 2);
	/* and the thread's handle still works afterwards */
	assert_int_equal(raw_req(&rs, "POST", "{\"a\":1}"), HTTP_OK);
	assert_int_equal(raw_count(&rs, &rs.posts), 2);
	raw_server_stop(&rs);
}

/* A body from a producer arrives whole (Content-Length, in order); a
 * producer that fails ends the request HTTP_INTERNAL. */
static void
test_streamed_body(void **state)
{
	struct raw_server rs;
	struct stream_src src = { 0 };
	char *data;
	size_t i, len = 300007;

	(void)state;
	http_allow_loopback_http(true);
	data = malloc(len);
	assert_non_null(data);
	for (i = 0; i < len; i++)
		data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	raw_server_start(&rs, NULL, 0);
	src.data = data;
	src.len = len;
	src.piece = 777;
	assert_int_equal(raw_req_stream(&rs, &src), HTTP_OK);
	assert_int_equal(src.off, len);
	pthread_mutex_lock(&rs.lock);
	assert_int_equal(rs.body_len, len);
	assert_memory_equal(rs.body, data, len);
	pthread_mutex_unlock(&rs.lock);
	memset(&src, 0, sizeof(src));
	src.data = data;
	src.len = len;
	src.piece = 4096;
	src.fail_at = 10000;
	assert_int_equal(raw_req_stream(&rs, &src), HTTP_INTERNAL);
	assert_int_equal(raw_count(&rs, &rs.posts), 1);
	raw_server_stop(&rs);
	free(data);
}

/* The rule of test_post_on_dead_reuse_not_resent holds for a streamed
 * body: read once, never re-sent on a fresh connection. */
static void
test_streamed_on_dead_reuse_not_resent(void **state)
{
	static const enum raw_action acts[] = { RAW_ANSWER, RAW_DROP };
	static const char body[] = "{\"summary\":\"streamed once\"}";
	struct raw_server rs;
	struct stream_src src = { .data = body, .len = sizeof(body) - 1,
	    .piece = 5 };

	(void)state;
	http_allow_loopback_http(true);
	raw_server_start(&rs, acts, 2);
	assert_int_equal(raw_req(&rs, "GET", NULL), HTTP_OK);
	assert_int_equal(raw_req_stream(&rs, &src), HTTP_UNCERTAIN);
	usleep(100 * 1000);
	assert_int_equal(src.off, src.len);     /* never rewound */
	assert_int_equal(raw_count(&rs, &rs.posts), 1);
	assert_int_equal(raw_count(&rs, &rs.requests), 2);
	raw_server_stop(&rs);
}

/* A server that closed the idle connection: the next GET and POST go on a
 * fresh connection and succeed. */
static void
test_idle_closed_by_server(void **state)
{
	static const enum raw_action acts[] = { RAW_ANSWER_CLOSE, RAW_ANSWER_CLOSE };
	struct raw_server rs;

	(void)state;
	http_allow_loopback_http(true);
	raw_server_start(&rs, acts, 2);
	assert_int_equal(raw_req(&rs, "GET", NULL), HTTP_OK);
	usleep(50 * 1000);      /* the server's close arrives */
	assert_int_equal(raw_req(&rs, "GET", NULL), HTTP_OK);
	usleep(50 * 1000);
	assert_int_equal(raw_req(&rs, "POST", "{\"a\":1}"), HTTP_OK);
	assert_int_equal(raw_count(&rs, &rs.posts), 1);
	assert_int_equal(raw_count(&rs, &rs.accepts), 3);
	raw_server_stop(&rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_ok_get, setup),
		cmocka_unit_test_setup(test_status_classes, setup),
		cmocka_unit_test_setup(test_status_burst, setup),
		cmocka_unit_test_setup(test_rate_limit, setup),
		cmocka_unit_test_setup(test_drop_after_request, setup),
		cmocka_unit_test_setup(test_drop_before_apply, setup),
		cmocka_unit_test_setup(test_latency_uncertain, setup),
		cmocka_unit_test(test_timeout_before_send),
		cmocka_unit_test(test_closed_port_network),
		cmocka_unit_test_setup(test_https_only, setup),
		cmocka_unit_test_setup(test_too_large, setup),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_retry_after_parse),
		cmocka_unit_test(test_encoders),
		cmocka_unit_test(test_names_and_retryable),
		cmocka_unit_test(test_keepalive_reuse),
		cmocka_unit_test(test_post_on_dead_reuse_not_resent),
		cmocka_unit_test(test_idle_closed_by_server),
		cmocka_unit_test(test_streamed_body),
		cmocka_unit_test(test_streamed_on_dead_reuse_not_resent),
	};

	return cmocka_run_group_tests(tests, sim_group_setup, sim_group_teardown);
}
