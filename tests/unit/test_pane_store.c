/*
 * test_pane_store.c - unit tests for the interactive pane's part of the
 * store (schema v9): pane sessions (live only with the agent's token,
 * expiry, renewal, sign-out, revoke is final, purge), agents' defaults,
 * a pane sign-in naming its agent, and a job logged by the pane (never one
 * the worker holds). Each test uses its own temporary directory; every test
 * runs on SQLite and, when HALO_TEST_PG names a PostgreSQL database (make
 * check-unit starts one), again on PostgreSQL with an emptied schema.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "fixture.h"
#include "store.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

struct fixture {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];     /* SQLite file or PostgreSQL conninfo */
	bool pg;
	struct store *st;
};

/* Empty PostgreSQL database DB's schema; -1 when it cannot be reached. */
static int
pg_reset(const char *db)
{
	PGconn *pg = PQconnectdb(db);
	PGresult *res;
	int rc = -1;

	if (PQstatus(pg) == CONNECTION_OK) {
		PQclear(PQexec(pg, "SET client_min_messages = warning"));
		res = PQexec(pg, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
		rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
		PQclear(res);
	}
	PQfinish(pg);
	return rc;
}

static int setup_as(void **state, bool pg);

static int
setup(void **state)
{
	return setup_as(state, false);
}

static int
setup_pg(void **state)
{
	return setup_as(state, true);
}

static int
setup_as(void **state, bool pg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	if (fixture_dir_make(f->dir, "test_pane_store") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "%s/halo.db", f->dir);
	if ((f->pg = pg)) {
		snprintf(f->db, sizeof(f->db), "%s", getenv("HALO_TEST_PG"));
		if (pg_reset(f->db) != 0) {
			rmdir(f->dir);
			free(f);
			return -1;
		}
	}
	f->st = store_open(f->db, err, sizeof(err));
	if (f->st == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	f->st = store_close(f->st);
	fixture_dir_remove(f->dir);
	free(f);
	return 0;
}

/* A session of TENANT/AGENT with id hash HASH, created NOW, for TTL s. */
static void
add_session(struct store *st, const char *hash, const char *tenant,
    const char *agent, time_t now, time_t ttl)
{
	struct store_pane_session ps;

	memset(&ps, 0, sizeof(ps));
	ps.id_hash = (char *)hash;
	ps.tenant = (char *)tenant;
	ps.agent = (char *)agent;
	ps.agent_id = 7;
	ps.created = now;
	ps.expires = now + ttl;
	assert_int_equal(store_pane_session_add(st, &ps), STORE_OK);
}

/* Whether HASH is a live session at NOW. */
static enum store_status
get(struct store *st, const char *hash, time_t now)
{
	struct store_pane_session *ps = NULL;
	enum store_status rc = store_pane_session_get(st, hash, now, &ps);

	if (rc == STORE_OK) {
		assert_non_null(ps);
		assert_string_equal(ps->id_hash, hash);
	}
	store_pane_session_free(ps);
	return rc;
}

static void
test_schema(void **state)
{
	struct fixture *f = *state;

	assert_true(store_schema_latest() >= 9);
	assert_int_equal(store_schema_version(f->st), store_schema_latest());
}

/* The pane's tables come with migration 9, after the trust work's 7 (jobs
 * unique per tenant, Message-ID and dedup key) and 8 (participants, ticket
 * owners): a version-8 store has none, and opening it brings them. */
static void
test_upgrade_from_v8(void **state)
{
	struct fixture *f = *state;
	struct store_pane_session *ps = NULL;
	char path[PATH_MAX + 32], err[256] = "";
	static const char *const files[] = { "halo.db", "halo.db-wal",
	    "halo.db-shm", "halo.db-journal" };
	time_t now = time(NULL);
	size_t i;

	assert_true(store_schema_latest() >= 9);
	f->st = store_close(f->st);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	if (f->pg)
		assert_int_equal(pg_reset(f->db), 0);
	f->st = store_open_version(f->db, 8, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(store_schema_version(f->st), 8);
	assert_int_equal(store_pane_session_get(f->st, H1, now, &ps),
	    STORE_ERROR);                       /* no pane_sessions yet */
	assert_null(ps);
	assert_int_equal(store_token_put(f->st, "sim", "alice@msp.example",
	    "sealed", "ok"), STORE_OK);
	f->st = store_close(f->st);

	f->st = store_open(f->db, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(store_schema_version(f->st), store_schema_latest());
	add_session(f->st, H1, "sim", "alice@msp.example", now, 3600);
	assert_int_equal(get(f->st, H1, now), STORE_OK);
}

/* A session is live only while not expired and while the agent holds a
 * token; the row carries who it is for. */
static void
test_session_live(void **state)
{
	struct fixture *f = *state;
	struct store_pane_session *ps = NULL;
	time_t now = time(NULL);

	add_session(f->st, H1, "sim", "alice@msp.example", now, 3600);
	/* no token row: not live */
	assert_int_equal(get(f->st, H1, now), STORE_NOT_FOUND);
	assert_int_equal(store_token_put(f->st, "sim", "alice@msp.example",
	    "sealed", "ok"), STORE_OK);
	assert_int_equal(store_pane_session_get(f->st, H1, now, &ps), STORE_OK);
	assert_string_equal(ps->tenant, "sim");
	assert_string_equal(ps->agent, "alice@msp.example");
	assert_int_equal(ps->agent_id, 7);
	assert_int_equal(ps->expires, now + 3600);
	ps = store_pane_session_free(ps);
	assert_null(ps);
	/* expired, unknown, another tenant's token does not count */
	assert_int_equal(get(f->st, H1, now + 3600), STORE_NOT_FOUND);
	assert_int_equal(get(f->st, H2, now), STORE_NOT_FOUND);
	add_session(f->st, H3, "other", "alice@msp.example", now, 3600);
	assert_int_equal(get(f->st, H3, now), STORE_NOT_FOUND);
	/* a token in "reenroll" standing keeps the session (the pane then
	 * offers the sign-in that renews the token) */
	assert_int_equal(store_token_set_state(f->st, "sim",
	    "alice@msp.example", "reenroll"), STORE_OK);
	assert_int_equal(get(f->st, H1, now), STORE_OK);
}

/* Renewal swaps the id; sign-out ends it; revoke ends it for good. */
static void
test_session_renew_end_revoke(void **state)
{
	struct fixture *f = *state;
	time_t now = time(NULL);

	assert_int_equal(store_token_put(f->st, "sim", "alice@msp.example",
	    "sealed", "ok"), STORE_OK);
	add_session(f->st, H1, "sim", "alice@msp.example", now, 60);
	assert_int_equal(store_pane_session_renew(f->st, H1, H2, now,
	    now + 3600), STORE_OK);
	assert_int_equal(get(f->st, H1, now), STORE_NOT_FOUND);
	assert_int_equal(get(f->st, H2, now + 600), STORE_OK);
	/* the old id cannot be renewed again, nor an expired one */
	assert_int_equal(store_pane_session_renew(f->st, H1, H3, now,
	    now + 3600), STORE_NOT_FOUND);
	assert_int_equal(store_pane_session_renew(f->st, H2, H3, now + 3600,
	    now + 7200), STORE_NOT_FOUND);
	assert_int_equal(store_pane_session_end(f->st, H2), STORE_OK);
	assert_int_equal(get(f->st, H2, now), STORE_NOT_FOUND);

	add_session(f->st, H3, "sim", "alice@msp.example", now, 3600);
	assert_int_equal(store_token_delete(f->st, "sim", "alice@msp.example"),
	    STORE_OK);
	assert_int_equal(store_token_put(f->st, "sim", "alice@msp.example",
	    "sealed2", "ok"), STORE_OK);
	/* enrolled again: the revoked session stays dead */
	assert_int_equal(get(f->st, H3, now), STORE_NOT_FOUND);

	add_session(f->st, H1, "sim", "alice@msp.example", now - 7200, 60);
	assert_int_equal(store_pane_sessions_purge(f->st, now), STORE_OK);
	assert_int_equal(store_pane_session_renew(f->st, H1, H2, now - 7200,
	    now), STORE_NOT_FOUND);
}

/* Defaults: built-in until saved, then what was saved. */
static void
test_defaults(void **state)
{
	struct fixture *f = *state;
	struct store_pane_defaults d, got;

	assert_int_equal(store_pane_defaults_get(f->st, "sim", "a@x.example",
	    &got), STORE_NOT_FOUND);
	assert_int_equal(got.tickettype_id, 0);
	assert_null(got.outcome);
	assert_true(got.attachments);
	assert_false(got.internal);
	store_pane_defaults_clear(&got);
	memset(&d, 0, sizeof(d));
	d.tickettype_id = 2;
	d.outcome = "Private Note";
	d.attachments = false;
	d.internal = true;
	assert_int_equal(store_pane_defaults_put(f->st, "sim", "a@x.example", &d),
	    STORE_OK);
	assert_int_equal(store_pane_defaults_get(f->st, "sim", "a@x.example",
	    &got), STORE_OK);
	assert_int_equal(got.tickettype_id, 2);
	assert_string_equal(got.outcome, "Private Note");
	assert_false(got.attachments);
	assert_true(got.internal);
	store_pane_defaults_clear(&got);
	d.outcome = NULL;
	assert_int_equal(store_pane_defaults_put(f->st, "sim", "a@x.example", &d),
	    STORE_OK);
	assert_int_equal(store_pane_defaults_get(f->st, "sim", "a@x.example",
	    &got), STORE_OK);
	assert_null(got.outcome);
	store_pane_defaults_clear(&got);
	/* per agent and tenant */
	assert_int_equal(store_pane_defaults_get(f->st, "other", "a@x.example",
	    &got), STORE_NOT_FOUND);
	store_pane_defaults_clear(&got);
}

/* A job the pane logged is done with its ticket; one the worker holds is
 * not touched. */
static void
test_job_done_by_pane(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j;
	struct store_result r;
	struct store_job *job = NULL;
	enum store_status res[1];
	int64_t ids[1];

	memset(&j, 0, sizeof(j));
	j.tenant = "sim";
	j.message_id = "<m1@x.example>";
	j.state = STORE_QUEUED;
	j.mode = "intake";
	assert_int_equal(store_jobs_add(f->st, &j, 1, res, ids, NULL, NULL),
	    STORE_OK);
	memset(&r, 0, sizeof(r));
	r.ticket_id = 42;
	r.action_id = 9;
	r.result = "appended";
	assert_int_equal(store_job_done_by_pane(f->st, ids[0], &r),
	    STORE_NOT_FOUND);
	assert_int_equal(store_job_finish(f->st, ids[0], STORE_SKIPPED,
	    "auto-reply"), STORE_OK);
	assert_int_equal(store_job_done_by_pane(f->st, ids[0], &r), STORE_OK);
	assert_int_equal(store_job_get(f->st, ids[0], &job), STORE_OK);
	assert_int_equal(job->state, STORE_DONE);
	assert_int_equal(job->ticket_id, 42);
	assert_int_equal(job->action_id, 9);
	assert_string_equal(job->result, "appended");
	assert_null(job->reason);
	job = store_job_free(job);
	assert_int_equal(store_ticket_by_msgid(f->st, "sim", "<m1@x.example>",
	    &ids[0]), STORE_OK);
	assert_int_equal(ids[0], 42);
}

/* A pane sign-in's row is named once Halo says who signed in. */
static void
test_enroll_set_agent(void **state)
{
	struct fixture *f = *state;
	struct store_enroll *e = NULL;
	time_t now = time(NULL);
	int64_t id = 0;

	assert_int_equal(store_enroll_add(f->st, "sim", "(pane sign-in)", H1,
	    now, now + 600, &id), STORE_OK);
	assert_int_equal(store_enroll_set_agent(f->st, id, "bob@msp.example"),
	    STORE_OK);
	assert_int_equal(store_enroll_by_code(f->st, H1, &e), STORE_OK);
	assert_string_equal(e->agent, "bob@msp.example");
	store_enroll_free(e);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TP(fn) cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_schema),
		T(test_upgrade_from_v8),
		T(test_session_live),
		T(test_session_renew_end_revoke),
		T(test_defaults),
		T(test_job_done_by_pane),
		T(test_enroll_set_agent),
	};
	const struct CMUnitTest pg_tests[] = {
		TP(test_schema),
		TP(test_upgrade_from_v8),
		TP(test_session_live),
		TP(test_session_renew_end_revoke),
		TP(test_defaults),
		TP(test_job_done_by_pane),
		TP(test_enroll_set_agent),
	};
	const char *pg = getenv("HALO_TEST_PG");
	int failed;

	failed = cmocka_run_group_tests_name("pane-store-sqlite", tests, NULL,
	    NULL);
	if (pg == NULL || *pg == '\0')
		return failed;
	return failed + cmocka_run_group_tests_name("pane-store-postgresql",
	    pg_tests, NULL, NULL);
}
