/*
 * test_oauth.c - the per-agent token state machine against the Halo
 * simulator: rotation modes, invalid_grant, auth server down, 401 forcing a
 * refresh, single-flight refresh, sealing at rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "crypto.h"
#include "halo.h"
#include "http.h"
#include "log.h"
#include "oauth.h"
#include "store.h"
#include "simhelper.h"

#define TENANT "sim"
#define AGENT  "alice@msp.example"

struct fixture {
	char dir[PATH_MAX];
	struct sim sim;
	char url[64], auth_url[80];
	struct store *st;
	struct oauth *oa;
	struct halo_conf hc;
	uint8_t key[CRYPTO_KEY_LEN];
};

/* POST/GET a simulator test endpoint; returns the body (malloc'd). */
static char *
sim_call(struct fixture *f, const char *method, const char *path,
    const char *json)
{
	char url[256];
	struct http_request rq;
	struct http_response rs;
	char *body;

	snprintf(url, sizeof(url), "%s%s", f->url, path);
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.url = url;
	rq.content_type = json ? "application/json" : NULL;
	rq.body = json;
	rq.body_len = json ? strlen(json) : 0;
	assert_int_equal(http_do(&rq, &rs), HTTP_OK);
	body = rs.body ? strdup(rs.body) : strdup("");
	http_response_clear(&rs);
	return body;
}

/* A JSON integer field of BODY ("key": N), or -1. */
static long
json_int(const char *body, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(body, pat);
	if (p == NULL)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return strtol(p, NULL, 10);
}

/* A refresh token for AGENT issued directly by the simulator. */
static char *
sim_refresh_token(struct fixture *f, const char *agent)
{
	char json[256], *body, *p, *q, *tok;

	snprintf(json, sizeof(json), "{\"agent_email\": \"%s\", \"scope\":"
	    " \"all offline_access\"}", agent);
	body = sim_call(f, "POST", "/_sim/token", json);
	p = strstr(body, "\"refresh_token\"");
	assert_non_null(p);
	p = strchr(p + 15, '"');
	assert_non_null(p);
	q = strchr(p + 1, '"');
	assert_non_null(q);
	tok = strndup(p + 1, (size_t)(q - p - 1));
	free(body);
	return tok;
}

/* The number of refreshes the simulator has served. */
static long
sim_refreshed(struct fixture *f)
{
	char *body = sim_call(f, "GET", "/_sim/state", NULL);
	long n = json_int(body, "refreshed");

	free(body);
	return n;
}

/* The plaintext refresh token stored for AGENT (malloc'd). */
static char *
stored_refresh(struct fixture *f, const char *agent)
{
	struct store_token *t = NULL;
	char aad[256];
	uint8_t *pt = NULL;
	size_t len = 0, aad_len;

	assert_int_equal(store_token_get(f->st, TENANT, agent, &t), STORE_OK);
	aad_len = (size_t)snprintf(aad, sizeof(aad), "%s%c%s", TENANT, 0, agent);
	assert_int_equal(crypto_open(f->key, aad, aad_len, t->sealed, &pt, &len), 0);
	store_token_free(t);
	return (char *)pt;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char db[PATH_MAX + 16], buf[256];

	assert_non_null(f);
	assert_int_equal(fixture_dir_make(f->dir, "test_oauth"), 0);
	assert_int_equal(sim_start(&f->sim, "test_oauth"), 0);
	snprintf(f->url, sizeof(f->url), "%s", f->sim.base);
	snprintf(f->auth_url, sizeof(f->auth_url), "%s/auth", f->sim.auth);
	f->hc.halo_url = f->url;
	f->hc.auth_url = f->auth_url;
	f->hc.client_id = "halo-milter-native";
	snprintf(db, sizeof(db), "%s/store.db", f->dir);
	f->st = store_open(db, buf, sizeof(buf));
	assert_non_null(f->st);
	assert_int_equal(crypto_random(f->key, sizeof(f->key)), 0);
	f->oa = oauth_new(f->st, f->key);
	assert_non_null(f->oa);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	oauth_free(f->oa);
	store_close(f->st);
	sim_stop(&f->sim);
	if (fixture_dir_remove(f->dir) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(f);
	return 0;
}

/* Import, then get an access token that the resource server accepts. */
static void
test_import_and_use(void **state)
{
	struct fixture *f = *state;
	struct halo_agent me;
	struct halo_err err;
	char *rt = sim_refresh_token(f, AGENT), *at = NULL;

	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_OK);
	memset(&me, 0, sizeof(me));
	assert_int_equal(halo_agent_me(&f->hc, at, &me, &err), 0);
	assert_string_equal(me.email, AGENT);
	halo_agent_clear(&me);
	/* sealed at rest: the raw row does not contain the token */
	{
		struct store_token *t = NULL;
		assert_int_equal(store_token_get(f->st, TENANT, AGENT, &t), STORE_OK);
		assert_null(strstr(t->sealed, rt));
		assert_string_equal(t->state, "ok");
		store_token_free(t);
	}
	oauth_token_free(at);
	free(rt);
}

/* Each rotation mode: the stored token follows what Halo said. */
static void
rotation_case(struct fixture *f, const char *mode)
{
	struct halo_err err;
	char faults[128], *rt = sim_refresh_token(f, AGENT), *at = NULL;
	char *stored, *body;

	snprintf(faults, sizeof(faults), "{\"rotation\": \"%s\"}", mode);
	body = sim_call(f, "POST", "/_sim/faults", faults);
	free(body);
	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, true,
	    &at, &err), OAUTH_OK);
	oauth_token_free(at);
	stored = stored_refresh(f, AGENT);
	if (strcmp(mode, "rotate") == 0)
		assert_string_not_equal(stored, rt);   /* the new one, persisted */
	else
		assert_string_equal(stored, rt);       /* reuse / omit: kept */
	free(stored);
	/* and it keeps working on the next refresh */
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, true,
	    &at, &err), OAUTH_OK);
	oauth_token_free(at);
	free(rt);
}

static void test_rotate(void **state) { rotation_case(*state, "rotate"); }
static void test_reuse(void **state) { rotation_case(*state, "reuse"); }
static void test_omit(void **state) { rotation_case(*state, "omit"); }

/* invalid_grant marks the agent, and then no request is made at all. */
static void
test_invalid_grant(void **state)
{
	struct fixture *f = *state;
	struct halo_err err;
	struct store_token *t = NULL;
	char *rt = sim_refresh_token(f, AGENT), *at = NULL, *body;
	long before;

	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	body = sim_call(f, "POST", "/_sim/faults", "{\"revoke_refresh_tokens\": true}");
	free(body);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, true,
	    &at, &err), OAUTH_REENROLL);
	assert_null(at);
	assert_int_equal(store_token_get(f->st, TENANT, AGENT, &t), STORE_OK);
	assert_string_equal(t->state, "reenroll");
	store_token_free(t);
	before = sim_refreshed(f);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_REENROLL);
	assert_int_equal(sim_refreshed(f), before);
	/* a new enrollment (import) makes it usable again */
	free(rt);
	rt = sim_refresh_token(f, AGENT);
	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_OK);
	oauth_token_free(at);
	free(rt);
}

/* A token that does not open with the sealing key (the key file was
 * replaced or lost) is not a reason to re-enroll: the call retries later,
 * the agent's state stays "ok", Halo is not asked, and the right key put
 * back works at once, without a new enrollment. */
static void
test_wrong_key_keeps_agent(void **state)
{
	struct fixture *f = *state;
	struct halo_err err;
	struct store_token *t = NULL;
	struct oauth *wrong;
	uint8_t other[CRYPTO_KEY_LEN];
	char *rt = sim_refresh_token(f, AGENT), *at = NULL;
	long before;

	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	memcpy(other, f->key, sizeof(other));
	other[0] ^= 0x55;
	wrong = oauth_new(f->st, other);
	assert_non_null(wrong);
	before = sim_refreshed(f);
	assert_int_equal(oauth_access_token(wrong, &f->hc, TENANT, AGENT, true,
	    &at, &err), OAUTH_RETRY);
	assert_null(at);
	assert_non_null(strstr(err.message, "sealing key"));
	assert_int_equal(sim_refreshed(f), before);
	assert_int_equal(store_token_get(f->st, TENANT, AGENT, &t), STORE_OK);
	assert_string_equal(t->state, "ok");
	store_token_free(t);
	oauth_free(wrong);
	/* the right key again */
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, true,
	    &at, &err), OAUTH_OK);
	assert_non_null(at);
	oauth_token_free(at);
	free(rt);
}

/* Auth server down: retry later, token untouched, state still ok. */
static void
test_auth_down(void **state)
{
	struct fixture *f = *state;
	struct halo_err err;
	char *rt = sim_refresh_token(f, AGENT), *at = NULL, *stored, *body;

	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	body = sim_call(f, "POST", "/_sim/faults", "{\"auth_down\": true}");
	free(body);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_RETRY);
	stored = stored_refresh(f, AGENT);
	assert_string_equal(stored, rt);
	free(stored);
	body = sim_call(f, "POST", "/_sim/faults", "{\"auth_down\": false}");
	free(body);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_OK);
	oauth_token_free(at);
	free(rt);
}

/* A revoke or re-enroll mark ends a cached access token at once, without
 * waiting for it to expire. */
static void
test_revoke_ends_cached_token(void **state)
{
	struct fixture *f = *state;
	struct halo_err err;
	char *rt = sim_refresh_token(f, AGENT), *at = NULL;
	long before;

	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_OK);
	oauth_token_free(at);
	before = sim_refreshed(f);
	/* cached: no refresh on the next call */
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_OK);
	oauth_token_free(at);
	assert_int_equal(sim_refreshed(f), before);
	assert_int_equal(store_token_set_state(f->st, TENANT, AGENT, "reenroll"),
	    STORE_OK);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_REENROLL);
	assert_null(at);
	assert_int_equal(store_token_delete(f->st, TENANT, AGENT), STORE_OK);
	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT, AGENT, false,
	    &at, &err), OAUTH_NO_TOKEN);
	assert_null(at);
	free(rt);
}

/* No token stored: NO_TOKEN, no request. */
static void
test_no_token(void **state)
{
	struct fixture *f = *state;
	struct halo_err err;
	char *at = NULL;

	assert_int_equal(oauth_access_token(f->oa, &f->hc, TENANT,
	    "nobody@msp.example", false, &at, &err), OAUTH_NO_TOKEN);
	assert_null(at);
}

struct race {
	struct fixture *f;
	enum oauth_status rc;
};

static void *
race_thread(void *arg)
{
	struct race *r = arg;
	struct halo_err err;
	char *at = NULL;

	r->rc = oauth_access_token(r->f->oa, &r->f->hc, TENANT, AGENT, false,
	    &at, &err);
	oauth_token_free(at);
	return NULL;
}

/* Eight threads at once on an empty cache: one refresh. */
static void
test_single_flight(void **state)
{
	struct fixture *f = *state;
	struct race r[8];
	pthread_t th[8];
	char *rt = sim_refresh_token(f, AGENT);
	long before;
	int i;

	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	before = sim_refreshed(f);
	for (i = 0; i < 8; i++) {
		r[i].f = f;
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].rc, OAUTH_OK);
	}
	assert_int_equal(sim_refreshed(f) - before, 1);
	free(rt);
}

/* Import puts the agent's waiting jobs back in the queue. */
static void
test_import_wakes_jobs(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j;
	enum store_status res;
	struct store_job *job = NULL;
	int64_t id = 0;
	char *rt;

	memset(&j, 0, sizeof(j));
	j.tenant = TENANT;
	j.message_id = "<wait@x>";
	j.state = STORE_QUEUED;
	j.agent = AGENT;
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_job_finish(f->st, id, STORE_WAITING, "enroll"),
	    STORE_OK);
	rt = sim_refresh_token(f, AGENT);
	assert_int_equal(oauth_import(f->oa, TENANT, AGENT, rt), 0);
	assert_int_equal(store_job_get(f->st, id, &job), STORE_OK);
	assert_int_equal(job->state, STORE_QUEUED);
	store_job_free(job);
	free(rt);
}

static int
group_setup(void **state)
{
	(void)state;
	log_init("test_oauth", true, LOG_CRIT);
	http_global_init();
	http_allow_loopback_http(true);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_import_and_use),
		T(test_rotate),
		T(test_reuse),
		T(test_omit),
		T(test_invalid_grant),
		T(test_auth_down),
		T(test_wrong_key_keeps_agent),
		T(test_no_token),
		T(test_revoke_ends_cached_token),
		T(test_single_flight),
		T(test_import_wakes_jobs),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
