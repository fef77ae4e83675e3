/*
 * test_halo.c - unit tests for common/halo.c against the halosim simulator
 * (started once as a subprocess on free ports, reset before every test):
 * OAuth2 refresh in each rotation mode, code exchange, invalid_grant,
 * Agent/me, exact contact match, client by domain in every domain-filter
 * mode, tickets, Message-ID lookup, action and ticket creation (checked in
 * /_sim/state), wrapped and bare lists, 200/201 creates, error messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "halo.h"
#include "http.h"
#include "simhelper.h"

/* ---------------------------------------------------------- simulator */


/* Per-test state: a configuration and alice's tokens. */
struct fx {
	struct halo_conf conf;
	char *access;
	char *refresh;
};

/* METHOD PATH on the resource port with a JSON BODY (or NULL); parsed 2xx answer. */
static cJSON *
sim_json(const char *method, const char *path, const char *body)
{
	char url[512];
	struct http_request req = { 0 };
	struct http_response resp;
	enum http_result r;
	cJSON *j;

	snprintf(url, sizeof(url), "%s%s", sim.base, path);
	req.method = method;
	req.url = url;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.content_type = body ? "application/json" : NULL;
	req.total_timeout_ms = 10000;
	req.max_response = 16 << 20;
	r = http_do(&req, &resp);
	if (r != HTTP_OK)
		fail_msg("%s %s: %s %s", method, path, http_result_name(r), resp.error);
	j = cJSON_ParseWithLength(resp.body, resp.body_len);
	http_response_clear(&resp);
	assert_non_null(j);
	return j;
}

/* POST /_sim/faults (or another control route) with JSON. */
static void
sim_control(const char *path, const char *json)
{
	cJSON_Delete(sim_json("POST", path, json ? json : "{}"));
}

/* Tokens for AGENT with SCOPE straight from the simulator. */
static void
sim_tokens(const char *agent, const char *scope, char **access, char **refresh)
{
	char body[256];
	cJSON *j;
	const cJSON *a, *r;

	snprintf(body, sizeof(body), "{\"agent_email\":\"%s\",\"scope\":\"%s\"}", agent, scope);
	j = sim_json("POST", "/_sim/token", body);
	a = cJSON_GetObjectItem(j, "access_token");
	r = cJSON_GetObjectItem(j, "refresh_token");
	assert_true(cJSON_IsString(a));
	*access = strdup(a->valuestring);
	if (refresh != NULL)
		*refresh = cJSON_IsString(r) ? strdup(r->valuestring) : NULL;
	cJSON_Delete(j);
}

/* The object with "id" == ID in array KEY of the simulator state (borrowed from ST). */
static const cJSON *
state_find(const cJSON *st, const char *key, int64_t id)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItem(st, key)) {
		const cJSON *v = cJSON_GetObjectItem(it, "id");
		if (cJSON_IsNumber(v) && (int64_t)v->valuedouble == id)
			return it;
	}
	return NULL;
}

/* String member of a state object, "" when absent. */
static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* Number member of a state object, -1 when absent. */
static double
jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}


/* Reset the simulator; fresh tokens for alice; a configuration for it. */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	sim_control("/_sim/reset", "{}");
	f->conf.halo_url = sim.base;
	f->conf.auth_url = sim.auth;
	f->conf.client_id = "halo-milter-native";
	f->conf.timeout_ms = 10000;
	sim_tokens("alice@msp.example", "all offline_access", &f->access, &f->refresh);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	free(f->access);
	free(f->refresh);
	free(f);
	return 0;
}

/* ---------------------------------------------------------- OAuth2 */

/* Refresh once in MODE; returns the tokens. */
static void
refresh_in_mode(struct fx *f, const char *mode, struct halo_tokens *t)
{
	struct halo_err err;
	char faults[64];

	snprintf(faults, sizeof(faults), "{\"rotation\": \"%s\"}", mode);
	sim_control("/_sim/faults", faults);
	if (halo_token_refresh(&f->conf, f->refresh, t, &err) != 0)
		fail_msg("refresh (%s): %s %s", mode, http_result_name(err.kind), err.message);
	assert_non_null(t->access_token);
	assert_true(t->expires_in > 0);
	assert_non_null(t->scope);
}

static void
test_refresh_rotate(void **state)
{
	struct fx *f = *state;
	struct halo_tokens t, t2;
	struct halo_agent me;
	struct halo_err err;

	refresh_in_mode(f, "rotate", &t);
	assert_non_null(t.refresh_token);
	assert_string_not_equal(t.refresh_token, f->refresh);
	/* the new access token works */
	assert_int_equal(halo_agent_me(&f->conf, t.access_token, &me, &err), 0);
	assert_int_equal(me.id, 1);
	halo_agent_clear(&me);
	/* the old refresh token died */
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t2, &err), -1);
	assert_true(halo_err_is_invalid_grant(&err));
	assert_null(t2.access_token);
	/* the rotated one works */
	assert_int_equal(halo_token_refresh(&f->conf, t.refresh_token, &t2, &err), 0);
	halo_tokens_clear(&t2);
	halo_tokens_clear(&t);
	assert_null(t.access_token);
}

static void
test_refresh_reuse(void **state)
{
	struct fx *f = *state;
	struct halo_tokens t;

	refresh_in_mode(f, "reuse", &t);
	assert_non_null(t.refresh_token);
	assert_string_equal(t.refresh_token, f->refresh);
	halo_tokens_clear(&t);
	refresh_in_mode(f, "reuse", &t);        /* still valid */
	halo_tokens_clear(&t);
}

static void
test_refresh_omit(void **state)
{
	struct fx *f = *state;
	struct halo_tokens t;

	refresh_in_mode(f, "omit", &t);
	assert_null(t.refresh_token);           /* keep the old one */
	halo_tokens_clear(&t);
	refresh_in_mode(f, "omit", &t);         /* and it still works */
	assert_null(t.refresh_token);
	halo_tokens_clear(&t);
}

static void
test_invalid_grant(void **state)
{
	struct fx *f = *state;
	struct halo_tokens t;
	struct halo_err err;

	assert_int_equal(halo_token_refresh(&f->conf, "not-a-token", &t, &err), -1);
	assert_int_equal(err.kind, HTTP_CLIENT_ERROR);
	assert_int_equal(err.status, 400);
	assert_true(halo_err_is_invalid_grant(&err));
	assert_int_equal(strncmp(err.message, "invalid_grant", 13), 0);
	assert_null(strstr(err.message, "not-a-token"));

	sim_control("/_sim/faults", "{\"revoke_refresh_tokens\": true}");
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), -1);
	assert_true(halo_err_is_invalid_grant(&err));

	/* other token errors are not invalid_grant */
	f->conf.client_id = "no-such-client";
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), -1);
	assert_false(halo_err_is_invalid_grant(&err));
	assert_non_null(strstr(err.message, "invalid_client"));

	/* the auth server down: retryable, not invalid_grant */
	f->conf.client_id = "halo-milter-native";
	sim_control("/_sim/faults", "{\"auth_down\": true}");
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), -1);
	assert_int_equal(err.kind, HTTP_SERVER_ERROR);
	assert_false(halo_err_is_invalid_grant(&err));
	sim_control("/_sim/faults", "{\"auth_down\": \"close\"}");
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), -1);
	assert_true(err.kind == HTTP_UNCERTAIN || err.kind == HTTP_NETWORK);
	assert_true(http_result_retryable(err.kind));
}

static void
test_tenant_and_auth_base(void **state)
{
	struct fx *f = *state;
	struct halo_tokens t;
	struct halo_err err;
	char auth[128];

	sim_control("/_sim/faults", "{\"tenant_required\": true, \"rotation\": \"reuse\"}");
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), -1);
	assert_int_equal(err.kind, HTTP_CLIENT_ERROR);
	assert_false(halo_err_is_invalid_grant(&err));
	assert_non_null(strstr(err.message, "tenant"));
	f->conf.tenant = "wrong-tenant";
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), -1);
	assert_false(halo_err_is_invalid_grant(&err));
	f->conf.tenant = "halosim";
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), 0);
	halo_tokens_clear(&t);
	f->conf.tenant = NULL;
	sim_control("/_sim/faults", "{\"tenant_required\": false}");
	/* an auth base with a path and a trailing slash (as /api/authinfo gives) */
	snprintf(auth, sizeof(auth), "%s/auth/", sim.auth);
	f->conf.auth_url = auth;
	assert_int_equal(halo_token_refresh(&f->conf, f->refresh, &t, &err), 0);
	halo_tokens_clear(&t);
}

/* base64url without padding. */
static void
b64url(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	int i;

	for (i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
}

/* Log in through the simulator's /authorize form; the code from the redirect. */
static char *
login_for_code(const char *authorize_url)
{
	const char *q = strchr(authorize_url, '?');
	char url[256], *form = NULL, *redirect = NULL, *code = NULL, *p;
	CURL *h = curl_easy_init();
	long status = 0;

	assert_non_null(q);
	assert_non_null(h);
	snprintf(url, sizeof(url), "%.*s", (int)(q - authorize_url), authorize_url);
	assert_true(asprintf(&form, "%s&username=alice%%40msp.example&password=alice-pass-1"
	    "&action=login", q + 1) > 0);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_URL, url), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_POSTFIELDS, form), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwrite), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEDATA, stderr), CURLE_OK);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	assert_int_equal(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
	assert_int_equal(status, 302);
	assert_int_equal(curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect), CURLE_OK);
	assert_non_null(redirect);
	p = strstr(redirect, "code=");
	assert_non_null(p);
	code = strndup(p + 5, strcspn(p + 5, "&"));
	assert_non_null(strstr(redirect, "state=st4te"));
	curl_easy_cleanup(h);
	free(form);
	return code;
}

static void
test_code_exchange(void **state)
{
	struct fx *f = *state;
	static const char verifier[] =
	    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXkdBjftJeZ4CVP";
	static const char redirect_uri[] = "http://127.0.0.1:8025/enroll/callback";
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char challenge[64];
	struct halo_tokens t;
	struct halo_err err;
	char *url, *code;

	assert_int_equal(EVP_Digest(verifier, strlen(verifier), digest, NULL, EVP_sha256(),
	    NULL), 1);
	b64url(digest, sizeof(digest), challenge);
	f->conf.tenant = "halosim";
	url = halo_authorize_url(&f->conf, redirect_uri, "all offline_access", "st4te",
	    challenge);
	assert_non_null(url);
	assert_int_equal(strncmp(url, sim.auth, strlen(sim.auth)), 0);
	assert_non_null(strstr(url, "/authorize?response_type=code&"));
	assert_non_null(strstr(url, "code_challenge_method=S256"));
	assert_non_null(strstr(url, "scope=all%20offline_access"));
	assert_non_null(strstr(url, "&tenant=halosim"));
	code = login_for_code(url);

	/* an unknown code is invalid_grant */
	assert_int_equal(halo_token_from_code(&f->conf, "bogus-code", verifier, redirect_uri,
	    &t, &err), -1);
	assert_true(halo_err_is_invalid_grant(&err));

	assert_int_equal(halo_token_from_code(&f->conf, code, verifier, redirect_uri, &t, &err), 0);
	assert_non_null(t.access_token);
	assert_non_null(t.refresh_token);
	/* single use */
	{
		struct halo_tokens t2;
		assert_int_equal(halo_token_from_code(&f->conf, code, verifier, redirect_uri,
		    &t2, &err), -1);
		assert_true(halo_err_is_invalid_grant(&err));
	}
	halo_tokens_clear(&t);
	free(code);
	free(url);
}

/* ---------------------------------------------------------- resource API */

static void
test_agent_me(void **state)
{
	struct fx *f = *state;
	struct halo_agent me;
	struct halo_err err;
	char *bob;

	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), 0);
	assert_int_equal(me.id, 1);
	assert_string_equal(me.name, "Alice Agent");
	assert_string_equal(me.email, "alice@msp.example");
	assert_false(me.disabled);
	halo_agent_clear(&me);

	sim_tokens("bob@msp.example", "read:tickets", &bob, NULL);
	assert_int_equal(halo_agent_me(&f->conf, bob, &me, &err), 0);
	assert_int_equal(me.id, 2);
	halo_agent_clear(&me);
	free(bob);

	assert_int_equal(halo_agent_me(&f->conf, "expired-or-bogus", &me, &err), -1);
	assert_int_equal(err.kind, HTTP_UNAUTHORIZED);
	assert_int_equal(err.status, 401);
	assert_true(err.message[0] != '\0');
	sim_control("/_sim/faults", "{\"unauthorized_next\": 1}");
	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), -1);
	assert_int_equal(err.kind, HTTP_UNAUTHORIZED);
	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), 0);
	halo_agent_clear(&me);
}

/* Contact lookup expecting MATCH (and USER_ID for ONE). */
static void
expect_contact(struct fx *f, const char *email, enum halo_match want, int64_t user_id)
{
	struct halo_contact ct;
	struct halo_err err;
	enum halo_match m;

	if (halo_contact_by_email(&f->conf, f->access, email, &m, &ct, &err) != 0)
		fail_msg("%s: %s", email, err.message);
	if (m != want)
		fail_msg("%s: match %d, want %d", email, (int)m, (int)want);
	if (want == HALO_MATCH_ONE) {
		assert_int_equal(ct.user_id, user_id);
		assert_non_null(ct.name);
		assert_non_null(ct.client_name);
	} else {
		assert_int_equal(ct.user_id, 0);
		assert_null(ct.name);
	}
	halo_contact_clear(&ct);
}

static void
test_contact_exact(void **state)
{
	struct fx *f = *state;
	struct halo_contact ct;
	struct halo_err err;
	enum halo_match m;

	/* search returns jo@ and bojo@: only the exact one counts */
	assert_int_equal(halo_contact_by_email(&f->conf, f->access, "jo@acme.example", &m, &ct,
	    &err), 0);
	assert_int_equal(m, HALO_MATCH_ONE);
	assert_int_equal(ct.user_id, 1001);
	assert_int_equal(ct.site_id, 100);
	assert_int_equal(ct.client_id, 10);
	assert_string_equal(ct.name, "Jo Smith");
	assert_string_equal(ct.client_name, "Acme Corp");
	halo_contact_clear(&ct);

	expect_contact(f, "JO@Acme.Example", HALO_MATCH_ONE, 1001);
	expect_contact(f, "bojo@acme.example", HALO_MATCH_ONE, 1002);
	expect_contact(f, "carl.home@mail.example", HALO_MATCH_ONE, 1003);      /* email2 */
	expect_contact(f, "c.globex@globex-legacy.example", HALO_MATCH_ONE, 1003);
	expect_contact(f, "o@acme.example", HALO_MATCH_NONE, 0);                /* substring */
	expect_contact(f, "ida@acme.example", HALO_MATCH_NONE, 0);              /* inactive */
	expect_contact(f, "nobody@nowhere.example", HALO_MATCH_NONE, 0);

	/* bad input never reaches Halo */
	assert_int_equal(halo_contact_by_email(&f->conf, f->access, "a b@x", &m, &ct, &err), -1);
	assert_int_equal(err.kind, HTTP_INTERNAL);
	assert_int_equal(halo_contact_by_email(&f->conf, f->access, "no-at-sign", &m, &ct,
	    &err), -1);
}

/* Reset with the seed fixture changed: a second user owning ann@acme.example. */
static void
load_fixture_with_duplicate(void)
{
	char *txt = slurp(sim.fixture), *out, *body;
	cJSON *fix, *users, *u;

	assert_non_null(txt);
	fix = cJSON_Parse(txt);
	free(txt);
	assert_non_null(fix);
	users = cJSON_GetObjectItem(fix, "users");
	cJSON_ArrayForEach(u, users) {
		if ((int)cJSON_GetObjectItem(u, "id")->valuedouble == 1005)
			cJSON_ReplaceItemInObject(u, "email3", cJSON_CreateString("Ann@Acme.Example"));
	}
	out = cJSON_PrintUnformatted(fix);
	assert_true(asprintf(&body, "{\"fixture\": %s, \"keep_tokens\": true}", out) > 0);
	sim_control("/_sim/reset", body);
	free(body);
	cJSON_free(out);
	cJSON_Delete(fix);
}

static void
test_contact_ambiguous(void **state)
{
	struct fx *f = *state;

	load_fixture_with_duplicate();
	expect_contact(f, "ann@acme.example", HALO_MATCH_AMBIGUOUS, 0);
	expect_contact(f, "jo@acme.example", HALO_MATCH_ONE, 1001);
}

/* Reset with 130 users whose addresses contain "x@acme.example" and the
 * exact owner last, so that it is only on the second page of results. */
static void
load_fixture_many_users(void)
{
	char *txt = slurp(sim.fixture), *out, *body, addr[64];
	cJSON *fix, *users, *u;
	int i;

	assert_non_null(txt);
	fix = cJSON_Parse(txt);
	free(txt);
	assert_non_null(fix);
	users = cJSON_GetObjectItem(fix, "users");
	for (i = 0; i <= 130; i++) {
		u = cJSON_CreateObject();
		if (i < 130)
			snprintf(addr, sizeof(addr), "u%dx@acme.example", i);
		else
			snprintf(addr, sizeof(addr), "X@ACME.example");
		cJSON_AddNumberToObject(u, "id", 2000 + i);
		cJSON_AddStringToObject(u, "name", "Many");
		cJSON_AddStringToObject(u, "emailaddress", addr);
		cJSON_AddStringToObject(u, "email2", "");
		cJSON_AddStringToObject(u, "email3", "");
		cJSON_AddNumberToObject(u, "site_id", 100);
		cJSON_AddNumberToObject(u, "client_id", 10);
		cJSON_AddFalseToObject(u, "inactive");
		cJSON_AddItemToArray(users, u);
	}
	out = cJSON_PrintUnformatted(fix);
	assert_true(asprintf(&body, "{\"fixture\": %s, \"keep_tokens\": true}", out) > 0);
	sim_control("/_sim/reset", body);
	free(body);
	cJSON_free(out);
	cJSON_Delete(fix);
}

static void
test_contact_paged(void **state)
{
	struct fx *f = *state;
	cJSON *st;
	const cJSON *n;

	load_fixture_many_users();
	expect_contact(f, "x@acme.example", HALO_MATCH_ONE, 2130);
	st = sim_json("GET", "/_sim/state", NULL);
	n = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "requests"),
	    "by_route"), "GET /api/Users");
	assert_true(cJSON_IsNumber(n));
	assert_int_equal(n->valueint, 2);
	cJSON_Delete(st);
}

/* Domain lookup expecting MATCH (and CLIENT/SITE for ONE). */
static void
expect_domain(struct fx *f, const char *domain, enum halo_match want, int64_t client_id,
    int64_t site_id)
{
	struct halo_org org;
	struct halo_err err;
	enum halo_match m;

	if (halo_client_by_domain(&f->conf, f->access, domain, &m, &org, &err) != 0)
		fail_msg("%s: %s", domain, err.message);
	if (m != want)
		fail_msg("%s: match %d, want %d", domain, (int)m, (int)want);
	if (want == HALO_MATCH_ONE) {
		assert_int_equal(org.client_id, client_id);
		assert_int_equal(org.site_id, site_id);
		assert_non_null(org.client_name);
	} else {
		assert_int_equal(org.client_id, 0);
		assert_null(org.client_name);
	}
	halo_org_clear(&org);
}

static void
test_client_by_domain(void **state)
{
	struct fx *f = *state;
	static const char *const modes[] = { "both", "site", "substring", "ignore", "client" };
	char faults[64];
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		bool client_only = strcmp(modes[i], "client") == 0;

		snprintf(faults, sizeof(faults), "{\"client_domain\": \"%s\"}", modes[i]);
		sim_control("/_sim/faults", faults);
		expect_domain(f, "acme.example", HALO_MATCH_ONE, 10, 100);
		expect_domain(f, "@ACME.example", HALO_MATCH_ONE, 10, 100);
		expect_domain(f, "globex.example", HALO_MATCH_ONE, 11, 110);
		expect_domain(f, "cme.example", HALO_MATCH_NONE, 0, 0);
		expect_domain(f, "nowhere.example", HALO_MATCH_NONE, 0, 0);
		expect_domain(f, "defunct.example", HALO_MATCH_NONE, 0, 0);     /* inactive */
		/* a filter on the client-level field alone cannot see site domains */
		expect_domain(f, "shared.example",
		    client_only ? HALO_MATCH_NONE : HALO_MATCH_AMBIGUOUS, 0, 0);
		expect_domain(f, "acme-branch.example",
		    client_only ? HALO_MATCH_NONE : HALO_MATCH_ONE, 10, 101);
	}
}

static void
test_ticket_get(void **state)
{
	struct fx *f = *state;
	struct halo_named *st;
	struct halo_ticket t;
	struct halo_err err;
	int64_t closed[8];
	size_t n, i, nc = 0;
	bool known = false;

	assert_int_equal(halo_ticket_get(&f->conf, f->access, 501, &t, &err), 0);
	assert_int_equal(t.id, 501);
	assert_int_equal(t.client_id, 10);
	assert_int_equal(t.site_id, 100);
	assert_int_equal(t.user_id, 1000);
	assert_int_equal(t.status_id, 2);
	assert_string_equal(t.summary, "Printer on fire");
	assert_false(t.closed);
	halo_ticket_clear(&t);

	/* closed statuses unknown: 502 is not reported closed */
	assert_int_equal(halo_ticket_get(&f->conf, f->access, 502, &t, &err), 0);
	assert_false(t.closed);
	halo_ticket_clear(&t);

	/* the plain list says nothing about closed (TStatus has no flag) */
	assert_int_equal(halo_list_statuses(&f->conf, f->access, &st, &n, &err), 0);
	for (i = 0; i < n; i++)
		assert_false(st[i].closed);
	halo_named_free(st, n);
	/* the full list against excludeclosed=true does */
	assert_int_equal(halo_status_states(&f->conf, f->access, &st, &n, &known,
	    &err), 0);
	assert_true(known);
	for (i = 0; i < n && nc < 8; i++)
		if (st[i].closed)
			closed[nc++] = st[i].id;
	halo_named_free(st, n);
	assert_true(nc >= 1);
	for (i = 0; i < nc; i++)
		if (closed[i] == 9)
			break;
	assert_true(i < nc);        /* Halo's built-in Closed */
	f->conf.closed_status_ids = closed;
	f->conf.n_closed_status_ids = nc;
	assert_int_equal(halo_ticket_get(&f->conf, f->access, 502, &t, &err), 0);
	assert_true(t.closed);
	assert_string_equal(t.summary, "VPN broken [ID:502]");
	halo_ticket_clear(&t);
	assert_int_equal(halo_ticket_get(&f->conf, f->access, 501, &t, &err), 0);
	assert_false(t.closed);
	halo_ticket_clear(&t);

	assert_int_equal(halo_ticket_get(&f->conf, f->access, 424242, &t, &err), -1);
	assert_int_equal(err.kind, HTTP_NOT_FOUND);
	assert_int_equal(err.status, 404);
	assert_non_null(strstr(err.message, "not found"));
	assert_null(t.summary);
}

static void
test_find_by_message_id(void **state)
{
	struct fx *f = *state;
	struct halo_err err;
	int64_t tid, aid;

	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<printer-2@acme.example>", &tid, &aid, &err), 0);
	assert_int_equal(tid, 501);
	assert_int_equal(aid, 9002);
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "printer-1@acme.example", &tid, &aid, &err), 0);
	assert_int_equal(tid, 501);
	assert_int_equal(aid, 9001);
	/* only on the ticket (Halo's own mail intake) */
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<halo-intake-502@globex.example>", &tid, &aid, &err), 0);
	assert_int_equal(tid, 502);
	assert_int_equal(aid, 0);
	/* case matters in the local part; unknown ids */
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<PRINTER-2@acme.example>", &tid, &aid, &err), 1);
	assert_int_equal(tid, 0);
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<nope@nowhere.example>", &tid, &aid, &err), 1);
	/* odd characters are escaped, not injected */
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<a&ticket_id=501@x>", &tid, &aid, &err), 1);
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<bad\r\nid@x>", &tid, &aid, &err), -1);
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access, "<>", &tid, &aid, &err), -1);
}

/* Hex SHA-256 of DATA. */
static void
sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];
	int i;

	assert_int_equal(EVP_Digest(data, len, d, NULL, EVP_sha256(), NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
test_action_create(void **state)
{
	struct fx *f = *state;
	static const unsigned char bin[] = { 0x00, 0xff, 0x10, 0x80, 0x7f };
	unsigned char *big = malloc(100000);
	struct halo_attachment att[] = {
		{ "hello.txt", "text/plain", (const unsigned char *)"hi", 2, false, false },
		{ "blob.bin", NULL, bin, sizeof(bin), false, false },
		{ "pic.png", "image/png", NULL, 0, true, false },
		{ "big.bin", "application/octet-stream", NULL, 100000, false, false },
	};
	struct halo_action_new a = {
		.ticket_id = 501, .outcome = "Email Received",
		.note_html = "<p>Still \"burning\" &amp; <b>smoking</b></p>\n",
		.hidden = false, .email_from = "ann@acme.example",
		.email_to = "support@msp.example", .email_cc = "boss@acme.example",
		.email_subject = "RE: Printer on fire\r\nBcc: evil@x",
		.internet_message_id = "<printer-3@acme.example>", .outgoing = false,
		.arrival_date = "2024-05-02T08:00:00Z",
		.attachments = att, .n_attachments = 4,
	};
	struct halo_err err;
	int64_t id, tid, aid;
	const cJSON *act, *at;
	char hex[65];
	cJSON *st;
	size_t i;
	int seen = 0;

	assert_non_null(big);
	for (i = 0; i < 100000; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	att[3].data = big;
	if (halo_action_create(&f->conf, f->access, &a, &id, &err) != 0)
		fail_msg("create: %s", err.message);
	assert_true(id > 0);

	st = sim_json("GET", "/_sim/state", NULL);
	act = state_find(st, "actions", id);
	assert_non_null(act);
	assert_int_equal(jnum(act, "ticket_id"), 501);
	assert_string_equal(jstr(act, "outcome"), "Email Received");
	assert_string_equal(jstr(act, "note_html"), a.note_html);
	assert_string_equal(jstr(act, "emailfrom"), "ann@acme.example");
	assert_string_equal(jstr(act, "emailcc"), "boss@acme.example");
	assert_string_equal(jstr(act, "emailsubject"), "RE: Printer on fire  Bcc: evil@x");
	assert_string_equal(jstr(act, "emaildirection"), "I");
	assert_string_equal(jstr(act, "internet_message_id"), "<printer-3@acme.example>");
	assert_string_equal(jstr(act, "actionarrivaldate"), "2024-05-02T08:00:00Z");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(act, "sendemail")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(act, "hiddenfromuser")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(act, "_sim"), "ignored_fields")), 0);
	cJSON_ArrayForEach(at, cJSON_GetObjectItem(st, "attachments")) {
		if (jnum(at, "action_id") != (double)id)
			continue;
		for (i = 0; i < 4; i++) {
			if (strcmp(jstr(at, "filename"), att[i].filename) != 0)
				continue;
			sha256_hex(att[i].data ? (const void *)att[i].data : "", att[i].len, hex);
			assert_string_equal(jstr(at, "sha256"), hex);
			assert_int_equal(jnum(at, "size"), att[i].len);
			assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(at, "isimage")),
			    att[i].is_image);
			seen++;
		}
	}
	assert_int_equal(seen, 4);
	cJSON_Delete(st);
	free(big);

	/* and it can now be found by its Message-ID */
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "printer-3@acme.example", &tid, &aid, &err), 0);
	assert_int_equal(tid, 501);
	assert_int_equal(aid, id);
}

static void
test_action_note_and_status(void **state)
{
	struct fx *f = *state;
	struct halo_action_new a = {
		.ticket_id = 503, .outcome = "private note", .note_html = "<p>internal</p>",
		.hidden = true,
	};
	struct halo_err err;
	const cJSON *act;
	int64_t id;
	cJSON *st;

	/* 200 instead of 201, with a _warning: both fine */
	sim_control("/_sim/faults", "{\"create_status\": 200, \"warning\": true}");
	assert_int_equal(halo_action_create(&f->conf, f->access, &a, &id, &err), 0);
	st = sim_json("GET", "/_sim/state", NULL);
	act = state_find(st, "actions", id);
	assert_non_null(act);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(act, "hiddenfromuser")));
	assert_string_equal(jstr(act, "outcome"), "Private Note");
	assert_null(cJSON_GetObjectItem(act, "emaildirection"));
	cJSON_Delete(st);

	/* unknown ticket: 404 */
	a.ticket_id = 999999;
	assert_int_equal(halo_action_create(&f->conf, f->access, &a, &id, &err), -1);
	assert_int_equal(err.kind, HTTP_NOT_FOUND);
	assert_int_equal(id, 0);
}

static void
test_action_outcome_required(void **state)
{
	struct fx *f = *state;
	struct halo_action_new a = { .ticket_id = 501, .note_html = "<p>x</p>" };
	struct halo_err err;
	int64_t id;

	assert_int_equal(halo_action_create(&f->conf, f->access, &a, &id, &err), -1);
	assert_int_equal(err.kind, HTTP_CLIENT_ERROR);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.message, "An Outcome must be entered for this Action");
	sim_control("/_sim/faults", "{\"outcome_error\": \"json\"}");
	a.outcome = "No Such Outcome";
	assert_int_equal(halo_action_create(&f->conf, f->access, &a, &id, &err), -1);
	assert_string_equal(err.message, "An Outcome must be entered for this Action");
	assert_false(http_result_retryable(err.kind));
}

static void
test_action_uncertain(void **state)
{
	struct fx *f = *state;
	struct halo_action_new a = {
		.ticket_id = 501, .outcome = "Note", .note_html = "<p>x</p>",
		.internet_message_id = "<uncertain-1@acme.example>",
	};
	struct halo_err err;
	int64_t id, tid, aid;

	sim_control("/_sim/faults", "{\"drop_after_request\": 1}");
	assert_int_equal(halo_action_create(&f->conf, f->access, &a, &id, &err), -1);
	assert_int_equal(err.kind, HTTP_UNCERTAIN);
	/* the caller checks Halo before retrying: it was applied */
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    a.internet_message_id, &tid, &aid, &err), 0);
	assert_int_equal(tid, 501);
	assert_true(aid > 0);
}

static void
test_ticket_create(void **state)
{
	struct fx *f = *state;
	static const struct halo_customfield cf[] = {
		{ "CFMilterKey", "key-123" },
		{ "CFOutlookConversationId", "00112233445566778899aabbccddeeff" },
	};
	static const struct halo_attachment att[] = {
		{ "note.txt", "text/plain", (const unsigned char *)"abc", 3, false, false },
	};
	char summary[1200];
	struct halo_ticket_new t = {
		.details_html = "<p>Hello</p>", .tickettype_id = 1, .client_id = 10,
		.site_id = 100, .user_id = 1000,
		.internet_message_id = "<new-ticket-1@acme.example>",
		.customfields = cf, .n_customfields = 2, .attachments = att, .n_attachments = 1,
		.user_email = "ann@acme.example", .reported_by = "Ann Example",
		.email_to_list = "support@msp.example", .email_cc_list = "boss@acme.example",
		.date_occurred = "2024-05-01T07:30:00Z", .priority_id = 2,
	};
	struct halo_err err;
	const cJSON *tk, *c;
	int64_t id, tid, aid;
	size_t i, o = 0;
	cJSON *st;
	int ncf = 0;

	/* 300 characters of 2-byte UTF-8 with a stray invalid byte and a newline */
	for (i = 0; i < 300; i++) {
		if (i == 5) {
			summary[o++] = '\xff';
		} else if (i == 6) {
			summary[o++] = '\n';
		} else {
			summary[o++] = '\xc3';
			summary[o++] = '\xa9';
		}
	}
	summary[o] = '\0';
	t.summary = summary;
	if (halo_ticket_create(&f->conf, f->access, &t, &id, &err) != 0)
		fail_msg("create: %s", err.message);
	assert_true(id >= 1000);

	st = sim_json("GET", "/_sim/state", NULL);
	tk = state_find(st, "tickets", id);
	assert_non_null(tk);
	assert_int_equal(jnum(tk, "user_id"), 1000);
	assert_int_equal(jnum(tk, "site_id"), 100);
	assert_int_equal(jnum(tk, "client_id"), 10);
	assert_int_equal(jnum(tk, "tickettype_id"), 1);
	/* Halo's rules run unless asked not to */
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(tk, "dont_do_rules")));
	assert_string_equal(jstr(tk, "user_email"), "ann@acme.example");
	assert_string_equal(jstr(tk, "reportedby"), "Ann Example");
	assert_string_equal(jstr(tk, "emailtolist"), "support@msp.example");
	assert_string_equal(jstr(tk, "emailcclist"), "boss@acme.example");
	assert_non_null(strstr(jstr(tk, "dateoccurred"), "2024-05-01T07:30:00"));
	assert_int_equal(jnum(tk, "priority_id"), 2);
	assert_string_equal(jstr(tk, "details_html"), "<p>Hello</p>");
	assert_string_equal(jstr(tk, "internet_message_id"), "<new-ticket-1@acme.example>");
	{
		/* 250 code points: 248 x U+00E9, U+FFFD, a space */
		const char *s = jstr(tk, "summary");
		size_t cps = 0;
		for (; *s != '\0'; s++)
			if (((unsigned char)*s & 0xc0) != 0x80)
				cps++;
		assert_int_equal(cps, 250);
		assert_non_null(strstr(jstr(tk, "summary"), "\xef\xbf\xbd "));
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(tk, "customfields")) {
		if (strcmp(jstr(c, "name"), "CFMilterKey") == 0) {
			assert_string_equal(jstr(c, "value"), "key-123");
			ncf++;
		}
		if (strcmp(jstr(c, "name"), "CFOutlookConversationId") == 0)
			ncf++;
	}
	assert_int_equal(ncf, 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(st, "attachments")), 1);
	cJSON_Delete(st);

	/* read back: the fields with a value, as doctor checks them */
	{
		struct halo_ticket back;

		assert_int_equal(halo_ticket_get(&f->conf, f->access, id, &back,
		    &err), 0);
		assert_true(halo_ticket_has_field(&back, "CFMilterKey"));
		assert_true(halo_ticket_has_field(&back, "cfoutlookconversationid"));
		assert_false(halo_ticket_has_field(&back, "CFNoSuchField"));
		assert_false(halo_ticket_has_field(&back, NULL));
		halo_ticket_clear(&back);
		assert_int_equal(back.n_fields, 0);
		assert_int_equal(halo_ticket_get(&f->conf, f->access, 501, &back,
		    &err), 0);
		assert_false(halo_ticket_has_field(&back, "CFMilterKey"));
		halo_ticket_clear(&back);
	}

	/* the first action carries the Message-ID */
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<new-ticket-1@acme.example>", &tid, &aid, &err), 0);
	assert_int_equal(tid, id);

	/* a user without its site is not sent (Halo would refuse it) */
	t.site_id = 0;
	t.user_id = 1000;
	t.summary = "no site";
	t.internet_message_id = NULL;
	t.n_customfields = 0;
	t.n_attachments = 0;
	sim_control("/_sim/faults", "{\"create_status\": 200, \"warning\": true}");
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &t, &id, &err), 0);
	st = sim_json("GET", "/_sim/state", NULL);
	tk = state_find(st, "tickets", id);
	assert_non_null(tk);
	assert_true(jnum(tk, "user_id") <= 0);
	assert_int_equal(jnum(tk, "client_id"), 10);
	cJSON_Delete(st);

	/* empty summary gets a placeholder */
	t.summary = " \r\n ";
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &t, &id, &err), 0);
}

static void
test_ticket_create_errors(void **state)
{
	struct fx *f = *state;
	static const struct halo_customfield bad_cf[] = { { "CFNoSuchField", "x" } };
	struct halo_ticket_new t = { .summary = "x", .tickettype_id = 3, .client_id = 10 };
	struct halo_err err;
	int64_t id;

	/* type 3 requires a category */
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &t, &id, &err), -1);
	assert_int_equal(err.kind, HTTP_CLIENT_ERROR);
	assert_true(strlen(err.message) > 0);
	assert_null(strchr(err.message, '{'));
	/* unknown custom field: {"Message": ...} */
	t.tickettype_id = 1;
	t.customfields = bad_cf;
	t.n_customfields = 1;
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &t, &id, &err), -1);
	assert_int_equal(err.status, 400);
	assert_non_null(strstr(err.message, "CFNoSuchField"));
	assert_null(strchr(err.message, '{'));
	/* a site of another client */
	t.n_customfields = 0;
	t.site_id = 110;
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &t, &id, &err), -1);
	assert_int_equal(err.kind, HTTP_CLIENT_ERROR);
}

/* List with FN and check the names contain WANT_NAME with WANT_ID. */
static void
check_list(struct fx *f, int (*fn)(const struct halo_conf *, const char *,
    struct halo_named **, size_t *, struct halo_err *), size_t min, int64_t want_id,
    const char *want_name)
{
	struct halo_named *l;
	struct halo_err err;
	size_t n, i;
	bool seen = false;

	if (fn(&f->conf, f->access, &l, &n, &err) != 0)
		fail_msg("list: %s", err.message);
	assert_true(n >= min);
	for (i = 0; i < n; i++)
		if (l[i].id == want_id && strcmp(l[i].name, want_name) == 0)
			seen = true;
	assert_true(seen);
	halo_named_free(l, n);
}

static void
test_lists_bare_and_wrapped(void **state)
{
	struct fx *f = *state;
	int round;

	for (round = 0; round < 2; round++) {
		if (round == 1)
			sim_control("/_sim/faults", "{\"wrap_lists\": true}");
		check_list(f, halo_list_outcomes, 4, 2, "Email Received");
		check_list(f, halo_list_ticket_types, 4, 4, "Internal (hidden)");     /* showall */
		check_list(f, halo_list_statuses, 4, 9, "Closed");
	}
}

static void
test_rate_limited_and_server_errors(void **state)
{
	struct fx *f = *state;
	struct halo_agent me;
	struct halo_err err;
	struct halo_named *l;
	size_t n;

	sim_control("/_sim/faults", "{\"rate_limit\": {\"limit\": 1, \"window\": 60}}");
	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), 0);
	halo_agent_clear(&me);
	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), -1);
	assert_int_equal(err.kind, HTTP_RATE_LIMITED);
	assert_true(err.retry_after >= 0);
	assert_non_null(strstr(err.message, "Rate Limit Reached"));
	sim_control("/_sim/reset", "{\"keep_tokens\": true}");
	sim_control("/_sim/faults", "{\"crash_next\": 1}");
	assert_int_equal(halo_list_outcomes(&f->conf, f->access, &l, &n, &err), -1);
	assert_int_equal(err.kind, HTTP_SERVER_ERROR);
	assert_null(l);
	assert_int_equal(n, 0);
	/* scope too narrow for customers */
	{
		char *ro;
		struct halo_contact ct;
		enum halo_match m;

		sim_tokens("alice@msp.example", "read:tickets", &ro, NULL);
		assert_int_equal(halo_contact_by_email(&f->conf, ro, "jo@acme.example", &m, &ct,
		    &err), -1);
		assert_int_equal(err.kind, HTTP_FORBIDDEN);
		free(ro);
	}
}

static void
test_https_required(void **state)
{
	struct fx *f = *state;
	struct halo_agent me;
	struct halo_err err;

	http_allow_loopback_http(false);
	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), -1);
	assert_int_equal(err.kind, HTTP_REFUSED);
	http_allow_loopback_http(true);
	f->conf.halo_url = "http://halo.example.com";
	assert_int_equal(halo_agent_me(&f->conf, f->access, &me, &err), -1);
	assert_int_equal(err.kind, HTTP_REFUSED);
}

static void
test_error_messages(void **state)
{
	static const struct { const char *body; const char *want; } t[] = {
		{ "An Outcome must be entered for this Action",
		  "An Outcome must be entered for this Action" },
		{ "{\"ClassName\":\"System.Exception\",\"Message\":\"Please enter a Summary\"}",
		  "Please enter a Summary" },
		{ "{\"Message\":\"Ticket 9 not found\"}", "Ticket 9 not found" },
		{ "{\"message\":\"lower case\"}", "lower case" },
		{ "{\"error\":\"invalid_grant\",\"error_description\":\"expired\"}",
		  "invalid_grant: expired" },
		{ "{\"error\":\"invalid_scope\"}", "invalid_scope" },
		{ "{\"type\":\"x\",\"title\":\"One or more validation errors occurred.\","
		  "\"status\":400,\"errors\":{\"$[0].ticket_id\":[\"Bad int\"]}}",
		  "$[0].ticket_id: Bad int" },
		{ "{\"$.summary\":[\"Too long\",\"other\"]}", "$.summary: Too long" },
		{ "{\"title\":\"Only a title\"}", "Only a title" },
		{ "[{\"Message\":\"in an array\"}]", "in an array" },
		{ "\"a json string\"", "a json string" },
		{ "  Rate Limit Reached -\r\n 300 Requests  ", "Rate Limit Reached - 300 Requests" },
		{ "<html><body>Bad</body></html>", "HTTP 400 (HTML body)" },
		{ "", "HTTP 400" },
		{ "{}", "HTTP 400" },
		{ "line\x01with\x7f" "ctl \xc3\xa9", "line?with?ctl ??" },
	};
	char out[256], small[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		halo_error_message(400, t[i].body, strlen(t[i].body), out, sizeof(out));
		assert_string_equal(out, t[i].want);
	}
	halo_error_message(400, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "HTTP 400");
	halo_error_message(400, "{\"Message\":\"a long message\"}", 28, small, sizeof(small));
	assert_string_equal(small, "a long ");
}

static void
test_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct halo_err err;
	struct halo_ticket tk;
	struct halo_org org;
	enum halo_match m;
	int64_t id;
	struct halo_action_new a = { .ticket_id = 0 };

	assert_int_equal(halo_ticket_get(&f->conf, NULL, 501, &tk, &err), -1);
	assert_int_equal(err.kind, HTTP_INTERNAL);
	assert_int_equal(halo_ticket_get(&f->conf, f->access, -1, &tk, &err), -1);
	assert_int_equal(halo_action_create(&f->conf, f->access, &a, &id, &err), -1);
	assert_int_equal(halo_client_by_domain(&f->conf, f->access, "a/b", &m, &org, &err), -1);
	assert_int_equal(halo_client_by_domain(&f->conf, f->access, "", &m, &org, &err), -1);
	assert_null(halo_authorize_url(&f->conf, NULL, "all", "s", "c"));
	assert_false(halo_err_is_invalid_grant(NULL));
}

/* ---------------------------------------------------------- issue 12 */

/* Attachments go as data URIs and are stored; one Halo refuses (id 0 and
 * a _warning) is reported as failed, not as done; POST /api/Attachment
 * uploads it alone onto the same action, and GET /api/Attachment lists
 * what the action holds. */
static void
test_attachment_fate(void **state)
{
	struct fx *f = *state;
	static const struct halo_attachment att[] = {
		{ "one.txt", "text/plain", (const unsigned char *)"one", 3, false, false },
		{ "two.txt", "text/plain", (const unsigned char *)"two!", 4, false, false },
	};
	struct halo_attach_result res[2];
	struct halo_action_new a = {
		.ticket_id = 501, .outcome = "Email Received", .note_html = "<p>x</p>",
		.internet_message_id = "<att-fate@acme.example>",
		.attachments = att, .n_attachments = 2, .att_results = res,
	};
	struct halo_attach_result up;
	struct halo_stored *list;
	struct halo_err err;
	size_t n, i, named = 0;
	int64_t id;
	cJSON *st;

	/* the second valid attachment processed fails as bare base64 would */
	sim_control("/_sim/faults", "{\"attachment_fail\": 2}");
	if (halo_action_create(&f->conf, f->access, &a, &id, &err) != 0)
		fail_msg("create: %s", err.message);
	assert_false(res[0].failed);
	assert_true(res[1].failed);
	assert_non_null(strstr(res[1].why, "Unable to save attachment"));
	st = sim_json("GET", "/_sim/state", NULL);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(st, "attachments")), 1);
	/* the data URI is what the spec wants: nothing undeclared was sent */
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(st,
	    "undeclared_fields")), 0);
	cJSON_Delete(st);

	/* Halo still refusing: the upload says so (1), nothing stored */
	sim_control("/_sim/faults", "{\"attachment_fail\": \"all\"}");
	assert_int_equal(halo_attachment_upload(&f->conf, f->access, 501, id,
	    &att[1], &up, &err), 1);
	assert_true(up.failed);
	assert_non_null(strstr(up.why, "two.txt"));
	/* Halo takes it now */
	sim_control("/_sim/faults", "{\"attachment_fail\": \"off\"}");
	assert_int_equal(halo_attachment_upload(&f->conf, f->access, 501, id,
	    &att[1], &up, &err), 0);
	assert_false(up.failed);
	assert_true(up.id > 0);
	assert_int_equal(halo_attachment_list(&f->conf, f->access, 501, id, &list,
	    &n, &err), 0);
	for (i = 0; i < n; i++)
		if (strcmp(list[i].filename, "one.txt") == 0 ||
		    strcmp(list[i].filename, "two.txt") == 0)
			named++;
	assert_int_equal(named, 2);
	halo_stored_free(list, n);
}

/* A created object's answer read alone: per-entry id 0 / _warning, an
 * answer-level warning naming attachments, or nothing said (stored). */
static void
test_attach_check(void **state)
{
	struct halo_attach_result r[3];
	cJSON *o;

	(void)state;
	o = cJSON_Parse("{\"id\":5,\"attachments\":[{\"id\":7},{\"id\":0},"
	    "{\"id\":8,\"_warning\":\"Unable to save attachment: c\"}]}");
	assert_int_equal(halo_attach_check(o, 3, r), 2);
	assert_false(r[0].failed);
	assert_int_equal(r[0].id, 7);
	assert_true(r[1].failed);
	assert_non_null(strstr(r[1].why, "id 0"));
	assert_true(r[2].failed);
	assert_string_equal(r[2].why, "Unable to save attachment: c");
	cJSON_Delete(o);
	o = cJSON_Parse("{\"id\":5,\"_warning\":\"Unable to save attachment\"}");
	assert_int_equal(halo_attach_check(o, 2, r), 2);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"id\":5,\"_warning\":\"SLA recalculated\"}");
	assert_int_equal(halo_attach_check(o, 2, r), 0);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"id\":5}");
	assert_int_equal(halo_attach_check(o, 2, r), 0);
	cJSON_Delete(o);
}

/* excludeclosed honoured: 8 and 9 are closed; ignored: cannot tell. */
static void
test_status_states(void **state)
{
	struct fx *f = *state;
	struct halo_named *st;
	struct halo_err err;
	size_t n, i, nc = 0;
	bool known = false;

	assert_int_equal(halo_status_states(&f->conf, f->access, &st, &n, &known,
	    &err), 0);
	assert_true(known);
	for (i = 0; i < n; i++)
		if (st[i].closed) {
			assert_true(st[i].id == 8 || st[i].id == 9);
			nc++;
		}
	assert_int_equal(nc, 2);
	halo_named_free(st, n);
	sim_control("/_sim/faults", "{\"status_excludeclosed\": \"ignore\"}");
	assert_int_equal(halo_status_states(&f->conf, f->access, &st, &n, &known,
	    &err), 0);
	assert_false(known);
	for (i = 0; i < n; i++)
		assert_false(st[i].closed);
	halo_named_free(st, n);
}

/* A Halo that ignores the internetmessageid filter answers with every
 * action: none of them is taken for a Message-ID it does not carry, and
 * the one that does is still found. */
static void
test_find_filter_ignored(void **state)
{
	struct fx *f = *state;
	struct halo_err err;
	int64_t tid, aid;

	sim_control("/_sim/faults", "{\"internetmessageid_filter\": \"ignore\"}");
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<never-sent@acme.example>", &tid, &aid, &err), 1);
	assert_int_equal(tid, 0);
	assert_int_equal(halo_find_by_message_id(&f->conf, f->access,
	    "<PRINTER-2@acme.example>", &tid, &aid, &err), 0);
	assert_int_equal(tid, 501);
}

/* A new contact at a client's main site, found by search afterwards. */
static void
test_user_create(void **state)
{
	struct fx *f = *state;
	struct halo_contact ct;
	struct halo_err err;
	enum halo_match m;
	int64_t site = 0, uid = 0;

	assert_int_equal(halo_client_main_site(&f->conf, f->access, 10, &site,
	    &err), 0);
	assert_true(site == 100 || site == 101);
	assert_int_equal(halo_user_create(&f->conf, f->access, "New Person",
	    "new.person@acme.example", 10, site, &uid, &err), 0);
	assert_true(uid > 0);
	assert_int_equal(halo_contact_by_email(&f->conf, f->access,
	    "new.person@acme.example", &m, &ct, &err), 0);
	assert_int_equal(m, HALO_MATCH_ONE);
	assert_int_equal(ct.user_id, uid);
	assert_int_equal(ct.client_id, 10);
	assert_int_equal(ct.site_id, site);
	halo_contact_clear(&ct);
	assert_int_equal(halo_client_main_site(&f->conf, f->access, 424242, &site,
	    &err), -1);
}

/* CFOutlookConversationId: our 32 hex digits, or Outlook's conversationId
 * (base64, also base64url) whose last 16 bytes are the GUID. */
static void
test_conv_matches(void **state)
{
	static const unsigned char guid[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	};
	unsigned char raw[64];
	char b64[128];
	const char *key = "00112233445566778899aabbccddeeff";
	size_t i;

	(void)state;
	assert_true(halo_conv_matches(key, key));
	assert_true(halo_conv_matches("00112233-4455-6677-8899-AABBCCDDEEFF", key));
	assert_true(halo_conv_matches("{00112233-4455-6677-8899-aabbccddeeff}", key));
	assert_false(halo_conv_matches("00112233445566778899aabbccddeefe", key));
	/* an Exchange-style id: a prefix, then the GUID */
	memcpy(raw, "\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x10\x00", 15);
	for (i = 0; i < 3; i++) {      /* each alignment of base64 */
		memset(raw + 15, 0xfb, i);
		memcpy(raw + 15 + i, guid, 16);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)(31 + i));
		assert_true(halo_conv_matches(b64, key));
		for (char *p = b64; *p != '\0'; p++)       /* base64url */
			*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
		assert_true(halo_conv_matches(b64, key));
	}
	memcpy(raw + 15, guid, 16);
	raw[30] ^= 1;
	EVP_EncodeBlock((unsigned char *)b64, raw, 31);
	assert_false(halo_conv_matches(b64, key));
	assert_false(halo_conv_matches("not base64 at all!", key));
	assert_false(halo_conv_matches(key, "short"));
}

/* The custom fields the Outlook add-in writes: its ticket (Outlook's
 * conversationId form, the mail's internetMessageId) is found by the
 * Message-ID a reply answers, in either spelling, and holds our
 * conversation key in its form; a ticket with our form is found by it. */
static void
test_ticket_by_field(void **state)
{
	struct fx *f = *state;
	static const unsigned char raw[] = {
		0x00, 0x00, 0x00, 0x00, 0x1b, 0x2c, 0x3d, 0x10, 0x00,
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0,
	};
	char b64[64];
	struct halo_customfield cf[2] = {
		{ "CFOutlookConversationId", NULL },
		{ "CFOutlookInternetMessageId", "<addin-1@acme.example>" },
	};
	struct halo_ticket_new tn = {
		.summary = "made by the add-in", .tickettype_id = 1,
		.client_id = 10, .customfields = cf, .n_customfields = 2,
	};
	struct halo_err err;
	int64_t addin = 0, ours = 0, found = 0;

	EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
	cf[0].value = b64;
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &tn, &addin,
	    &err), 0);
	cf[0].value = "00112233445566778899aabbccddeeff";
	cf[1].value = "<ours-1@acme.example>";
	tn.summary = "made by the gateway";
	assert_int_equal(halo_ticket_create(&f->conf, f->access, &tn, &ours,
	    &err), 0);

	assert_int_equal(halo_ticket_by_field(&f->conf, f->access,
	    "CFOutlookInternetMessageId", "<addin-1@acme.example>", false, &found,
	    &err), 0);
	assert_int_equal(found, addin);
	assert_int_equal(halo_ticket_by_field(&f->conf, f->access,
	    "CFOutlookInternetMessageId", "<addin-2@acme.example>", false, &found,
	    &err), 1);
	assert_true(halo_conv_matches(b64, "00112233445566778899aabbccddeef0"));
	assert_int_equal(halo_ticket_by_field(&f->conf, f->access,
	    "CFOutlookConversationId", "00112233445566778899aabbccddeeff", true,
	    &found, &err), 0);
	assert_int_equal(found, ours);
	assert_int_equal(halo_ticket_by_field(&f->conf, f->access,
	    "CFOutlookConversationId", "ffffffffffffffffffffffffffffffff", true,
	    &found, &err), 1);
}

/* ---------------------------------------------------------- streamed bodies */

/* What the capturing transport saw of the last request. */
static struct {
	char *body;
	size_t len;
	bool streamed;
	int requests;
} cap;

/* A transport that reads the body as libcurl would (in pieces of varying
 * size, never past body_len) and answers 201 {"id": 7}. */
static enum http_result
capture_transport(const struct http_request *req, struct http_response *resp)
{
	static const size_t pieces[] = { 1, 7, 65536, 4093, 16384, 3 };
	size_t got = 0, k = 0;

	free(cap.body);
	cap.body = malloc(req->body_len + 1);
	assert_non_null(cap.body);
	cap.streamed = req->body_read != NULL;
	if (req->body_read != NULL) {
		while (got < req->body_len) {
			size_t want = pieces[k++ % 6], n;

			if (want > req->body_len - got)
				want = req->body_len - got;
			n = req->body_read(cap.body + got, want, req->body_arg);
			assert_true(n > 0 && n <= want);
			got += n;
		}
	} else {
		assert_non_null(req->body);
		memcpy(cap.body, req->body, req->body_len);
		got = req->body_len;
	}
	cap.len = got;
	cap.body[got] = '\0';
	cap.requests++;
	resp->status = 201;
	resp->body = strdup("{\"id\": 7}");
	assert_non_null(resp->body);
	resp->body_len = strlen(resp->body);
	return HTTP_OK;
}

/* Which request the comparison sends. */
enum stream_call { SC_TICKET, SC_ACTION, SC_UPLOAD };

/* Send CALL with attachments ATT[0..N-1] in memory and streamed; the
 * bytes must be the same, and the streamed one must have streamed. */
static void
compare_bodies(enum stream_call call, const struct halo_attachment *att,
    size_t n)
{
	static const struct halo_customfield cfs[] = {
		{ "CFMilterKey", "<abc@example>" }, { "CFOther", "x\"y" },
	};
	struct halo_conf conf = { .halo_url = "https://halo.example" };
	struct halo_ticket_new tn = {
		.summary = "Summary \xe2\x82\xac", .details_html = "<p>hi</p>",
		.tickettype_id = 1, .client_id = 12, .site_id = 3, .user_id = 4,
		.user_email = "ann@acme.example", .customfields = cfs,
		.n_customfields = 2, .dont_do_rules = true,
	};
	struct halo_action_new an = {
		.ticket_id = 9, .outcome = "Email", .note_html = "<p>note</p>",
		.email_from = "a@b.example", .email_subject = "Re: x",
		.internet_message_id = "<m@x>",
	};
	struct halo_attach_result res;
	struct halo_err err;
	char *body[2];
	size_t len[2];
	int64_t id;
	int pass, rc;

	tn.attachments = an.attachments = att;
	tn.n_attachments = an.n_attachments = n;
	for (pass = 0; pass < 2; pass++) {
		halo_set_inline_attachments(pass == 0);
		if (call == SC_TICKET)
			rc = halo_ticket_create(&conf, "tok", &tn, &id, &err);
		else if (call == SC_ACTION)
			rc = halo_action_create(&conf, "tok", &an, &id, &err);
		else
			rc = halo_attachment_upload(&conf, "tok", 9, 5, att, &res,
			    &err);
		if (rc != 0)
			fail_msg("request %d: %s", pass, err.message);
		assert_int_equal(cap.streamed, pass == 1 && (call == SC_UPLOAD ||
		    n > 0));
		body[pass] = cap.body;
		len[pass] = cap.len;
		cap.body = NULL;
	}
	halo_set_inline_attachments(false);
	assert_int_equal(len[1], len[0]);
	assert_memory_equal(body[1], body[0], len[0]);
	if (n > 0 || call == SC_UPLOAD)
		assert_non_null(strstr(body[0], "\"data_base64\":\"data:"));
	free(body[0]);
	free(body[1]);
}

/* A streamed request carries the bytes the in-memory one did: files of
 * 0, 1, 2, 3 bytes and of 1 MiB (+1, so not a multiple of 3; one of them
 * a file mapping, sent twice: dropping its pages loses nothing), several
 * in one request, names and types needing JSON escaping or replacing. */
static void
test_streamed_bodies(void **state)
{
	unsigned char *big, *map;
	const size_t big_len = (1u << 20) + 1;
	char path[] = "/tmp/test_halo_map.XXXXXX";
	struct halo_attachment one[1], many[7];
	size_t i;
	int fd;

	(void)state;
	big = malloc(big_len);
	assert_non_null(big);
	for (i = 0; i < big_len; i++)
		big[i] = (unsigned char)(i * 151 + (i >> 11));
	http_set_transport(capture_transport);
	memset(one, 0, sizeof(one));
	one[0].filename = "empty.txt";
	one[0].content_type = "text/plain";
	one[0].data = (const unsigned char *)"";
	compare_bodies(SC_TICKET, one, 1);
	compare_bodies(SC_ACTION, one, 1);
	compare_bodies(SC_UPLOAD, one, 1);
	for (i = 1; i <= 3; i++) {
		one[0].data = (const unsigned char *)"\xff\x00\x7f";
		one[0].len = i;
		compare_bodies(SC_ACTION, one, 1);
		compare_bodies(SC_UPLOAD, one, 1);
	}
	one[0].data = big;
	one[0].len = big_len;
	one[0].content_type = "application/pdf";
	compare_bodies(SC_TICKET, one, 1);
	compare_bodies(SC_TICKET, one, 0);          /* none: not streamed */
	memset(many, 0, sizeof(many));
	many[0].filename = "a\"b\\c\n\t\xe2\x82\xac.txt";
	many[0].content_type = "text/plain; charset=utf-8";    /* replaced */
	many[0].data = big;
	many[0].len = 2;
	many[1].filename = "</script><b>.html";
	many[1].content_type = NULL;
	many[1].data = big + 5;
	many[1].len = 100000;
	many[2].filename = NULL;                    /* "attachment" */
	many[2].content_type = "image/png";
	many[2].is_image = true;
	many[2].data = NULL;
	many[2].len = 0;
	many[3].filename = "halo-att-lookalike";
	many[3].content_type = "application/vnd.ms-excel";
	many[3].data = big;
	many[3].len = big_len;
	many[4].filename = "\x01\x7f.bin";
	many[4].data = big + 1;
	many[4].len = 3;
	many[5].filename = "";
	many[5].content_type = "/bad";
	many[5].data = big;
	many[5].len = 1;
	many[6].filename = "last.bin";
	many[6].content_type = "application/octet-stream";
	many[6].data = big + 7;
	many[6].len = 49152 + 1;                    /* a chunk and a byte */
	compare_bodies(SC_TICKET, many, 7);
	compare_bodies(SC_ACTION, many, 7);
	/* a file mapping, as the worker's attachments are */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(write(fd, big, big_len), (ssize_t)big_len);
	map = mmap(NULL, big_len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	close(fd);
	memset(one, 0, sizeof(one));
	one[0].filename = "mapped.bin";
	one[0].data = map;
	one[0].len = big_len;
	one[0].mapped = true;
	compare_bodies(SC_UPLOAD, one, 1);
	compare_bodies(SC_ACTION, one, 1);
	assert_memory_equal(map, big, big_len);
	munmap(map, big_len);
	http_set_transport(NULL);
	free(cap.body);
	cap.body = NULL;
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refresh_rotate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_omit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_grant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_and_auth_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_code_exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_me, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contact_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contact_ambiguous, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contact_paged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_by_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticket_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_by_message_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_action_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_action_note_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_action_outcome_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_action_uncertain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticket_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticket_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists_bare_and_wrapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limited_and_server_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_https_required, setup, teardown),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attachment_fate, setup, teardown),
		cmocka_unit_test(test_attach_check),
		cmocka_unit_test_setup_teardown(test_status_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_filter_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_create, setup, teardown),
		cmocka_unit_test(test_conv_matches),
		cmocka_unit_test_setup_teardown(test_ticket_by_field, setup, teardown),
		cmocka_unit_test(test_streamed_bodies),
	};

	return cmocka_run_group_tests(tests, sim_group_setup, sim_group_teardown);
}
