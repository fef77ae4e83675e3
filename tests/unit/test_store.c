/*
 * test_store.c - unit tests for the store (common/store.c) on both of its
 * backends: every test runs on SQLite and, when HALO_TEST_PG names a
 * PostgreSQL database (make check-unit starts one: scripts/pg.sh), again on
 * PostgreSQL, whose schema is emptied before each test. Schema migrations,
 * atomic job insertion with (tenant, message_id) idempotency, job read-back,
 * listing, counting, conversation keys, per-sender creation counts and spool
 * references. Each test uses its own mkdtemp directory and removes it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "fixture.h"
#include "store.h"
#include "store_int.h"

struct fixture {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];     /* SQLite file, or PostgreSQL conninfo */
	bool pg;
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (fixture_dir_make(f->dir, "test_store") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->db, sizeof(f->db), "%s/halo.db", f->dir);
	*state = f;
	return 0;
}

/* Run SQL on PostgreSQL CONNINFO with a connection of its own. */
static void
exec_pg(const char *conninfo, const char *sql)
{
	PGconn *pg = PQconnectdb(conninfo);
	PGresult *res;

	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("%s: %s", conninfo, PQerrorMessage(pg));
	PQclear(PQexec(pg, "SET client_min_messages = warning"));
	res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	PQclear(res);
	PQfinish(pg);
}

/* The same fixture on PostgreSQL: an empty schema in HALO_TEST_PG. */
static int
setup_pg(void **state)
{
	struct fixture *f;

	if (setup(state) != 0)
		return -1;
	f = *state;
	f->pg = true;
	snprintf(f->db, sizeof(f->db), "%s", getenv("HALO_TEST_PG"));
	exec_pg(f->db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
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

/* Open the fixture's store at the newest schema. */
static struct store *
open_latest(struct fixture *f)
{
	char err[256] = "";

	f->st = store_open(f->db, err, sizeof(err));
	if (f->st == NULL)
		fail_msg("store_open: %s", err);
	return f->st;
}

/* Run SQL on the database with a separate connection. */
static void
exec_sql(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	if (store_target_is_pg(db)) {
		exec_pg(db, sql);
		return;
	}

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(h);
}

/* A queued, thread-starting job from alice in TENANT. */
static struct store_job_new
job_new(const char *tenant, const char *msgid)
{
	struct store_job_new j;

	memset(&j, 0, sizeof(j));
	j.tenant = tenant;
	j.message_id = msgid;
	j.state = STORE_QUEUED;
	j.from_addr = "alice@customer.example";
	j.starts_thread = true;
	return j;
}

/* A fresh database reaches the newest schema. */
static void
test_fresh_latest(void **state)
{
	struct fixture *f = *state;

	assert_true(store_schema_latest() >= 2);
	open_latest(f);
	assert_int_equal(store_schema_version(f->st), store_schema_latest());
	f->st = store_close(f->st);
	/* reopening changes nothing */
	open_latest(f);
	assert_int_equal(store_schema_version(f->st), store_schema_latest());
}

/* A version-1 database is upgraded on open and keeps its rows. */
static void
test_upgrade_keeps_rows(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[2];
	enum store_status res[2];
	int64_t ids[2];
	struct store_job *got;
	char err[256] = "";
	char key[33];

	f->st = store_open_version(f->db, 1, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(store_schema_version(f->st), 1);
	f->st = store_close(f->st);
	/* rows as a version-1 build wrote them (today's insert names newer
	 * columns) */
	exec_sql(f->db, "INSERT INTO jobs (id, tenant, message_id, state,"
	    " subject, created, updated) VALUES (1, 'acme', '<old-1@x>',"
	    " 'queued', NULL, 1, 1), (2, 'acme', '<old-2@x>', 'queued',"
	    " 'kept subject', 1, 1);"
	    "INSERT INTO conversations VALUES ('<old-1@x>',"
	    " '0123456789abcdef0123456789abcdef', 1);");
	(void)j;
	(void)res;
	ids[0] = 1;
	ids[1] = 2;

	/* asking for less than what is there migrates nothing back */
	f->st = store_open_version(f->db, 0, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(store_schema_version(f->st), 1);
	f->st = store_close(f->st);

	open_latest(f);
	assert_int_equal(store_schema_version(f->st), store_schema_latest());
	assert_int_equal(store_job_get(f->st, ids[1], &got), STORE_OK);
	assert_string_equal(got->message_id, "<old-2@x>");
	assert_string_equal(got->subject, "kept subject");
	got = store_job_free(got);
	assert_int_equal(store_conv_get(f->st, "<old-1@x>", key), STORE_OK);
	assert_string_equal(key, "0123456789abcdef0123456789abcdef");
}

/* A database from a newer build is refused, with a message. */
static void
test_newer_refused(void **state)
{
	struct fixture *f = *state;
	char sql[64], err[256] = "";

	open_latest(f);
	f->st = store_close(f->st);
	snprintf(sql, sizeof(sql), f->pg ? "UPDATE halo_schema SET version"
	    " = %d" : "PRAGMA user_version = %d", store_schema_latest() + 1);
	exec_sql(f->db, sql);
	f->st = store_open(f->db, err, sizeof(err));
	assert_null(f->st);
	assert_non_null(strstr(err, "newer than this build"));
}

/* A path that cannot be opened gives an error message. */
static void
test_open_error(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2], err[256] = "";

	if (f->pg)      /* no server there */
		snprintf(path, sizeof(path), "host=%s/missing dbname=halo",
		    f->dir);
	else
		snprintf(path, sizeof(path), "%s/missing/dir/halo.db", f->dir);
	assert_null(store_open(path, err, sizeof(err)));
	assert_true(strlen(err) > 0);
}

/* Several jobs in one call; duplicates report the existing id. */
static void
test_jobs_add(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[3];
	enum store_status res[3];
	int64_t ids[3], first[3], found;

	open_latest(f);
	j[0] = job_new("acme", "<m1@x>");
	j[1] = job_new("globex", "<m1@x>");     /* same id, other tenant: fine */
	j[2] = job_new("acme", "<m2@x>");
	assert_int_equal(store_jobs_add(f->st, j, 3, res, ids, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_OK);
	assert_int_equal(res[1], STORE_OK);
	assert_int_equal(res[2], STORE_OK);
	assert_true(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
	memcpy(first, ids, sizeof(ids));

	/* the same three again, plus ordering: all duplicates, same ids */
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_jobs_add(f->st, j, 3, res, ids, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_DUPLICATE);
	assert_int_equal(res[1], STORE_DUPLICATE);
	assert_int_equal(res[2], STORE_DUPLICATE);
	assert_memory_equal(ids, first, sizeof(ids));

	/* a mixed call: one new, one duplicate */
	j[0] = job_new("acme", "<m3@x>");
	j[1] = job_new("acme", "<m1@x>");
	assert_int_equal(store_jobs_add(f->st, j, 2, res, ids, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_OK);
	assert_int_equal(res[1], STORE_DUPLICATE);
	assert_true(ids[1] == first[0]);
	assert_true(ids[0] > first[2]);

	assert_int_equal(store_job_find(f->st, "acme", "<m1@x>", &found),
	    STORE_OK);
	assert_true(found == first[0]);
	assert_int_equal(store_job_find(f->st, "globex", "<m1@x>", &found),
	    STORE_OK);
	assert_true(found == first[1]);
	assert_int_equal(store_job_find(f->st, "globex", "<m2@x>", &found),
	    STORE_NOT_FOUND);
	assert_int_equal(store_job_find(f->st, "acme", "<M1@x>", &found),
	    STORE_NOT_FOUND);
}

/* A failing row rolls back the whole call. */
static void
test_jobs_add_atomic(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[2];
	enum store_status res[2];
	int64_t ids[2], found;
	uint64_t counts[6];
	char key[33];

	open_latest(f);
	j[0] = job_new("acme", "<ok@x>");
	j[1] = job_new(NULL, "<bad@x>");         /* tenant is NOT NULL */
	assert_int_equal(store_jobs_add(f->st, j, 2, res, ids, "<ok@x>",
	    "0123456789abcdef0123456789abcdef"), STORE_ERROR);
	assert_int_equal(store_job_find(f->st, "acme", "<ok@x>", &found),
	    STORE_NOT_FOUND);
	assert_int_equal(store_conv_get(f->st, "<ok@x>", key), STORE_NOT_FOUND);
	assert_int_equal(store_job_counts(f->st, counts), STORE_OK);
	assert_true(counts[STORE_QUEUED] == 0);
}

/* Group commit: threads adding jobs at the same time. Every good call's
 * rows are committed and found, with the ids it was given; a call whose
 * row violates a constraint fails alone, whichever batch it shared. */
#define GC_THREADS  6
#define GC_CALLS    40

struct gc_adder {
	struct store *st;
	pthread_barrier_t *go;
	int who;
	int ok, failed_good, bad_ok;
	int64_t ids[GC_CALLS];
};

static void *
gc_adder_run(void *arg)
{
	struct gc_adder *a = arg;
	char msgid[64];
	int i;

	pthread_barrier_wait(a->go);
	for (i = 0; i < GC_CALLS; i++) {
		struct store_job_new j;
		enum store_status res;
		bool bad = a->who == 0 && i % 4 == 1;

		snprintf(msgid, sizeof(msgid), "<gc-%d-%d@x>", a->who, i);
		j = job_new(bad ? NULL : "acme", msgid);  /* NULL: NOT NULL */
		a->ids[i] = 0;
		if (store_jobs_add(a->st, &j, 1, &res, &a->ids[i], msgid,
		    "0123456789abcdef0123456789abcdef") == STORE_OK) {
			if (bad)
				a->bad_ok++;
			else if (res == STORE_OK)
				a->ok++;
		} else if (!bad)
			a->failed_good++;
	}
	return NULL;
}

static void
test_jobs_add_group(void **state)
{
	struct fixture *f = *state;
	struct gc_adder a[GC_THREADS];
	pthread_t tid[GC_THREADS];
	pthread_barrier_t go;
	uint64_t batches, entries, relaxed, counts[6];
	char msgid[64], key[33];
	int64_t found;
	int t, i, good = 0;

	open_latest(f);
	pthread_barrier_init(&go, NULL, GC_THREADS);
	for (t = 0; t < GC_THREADS; t++) {
		memset(&a[t], 0, sizeof(a[t]));
		a[t].st = f->st;
		a[t].go = &go;
		a[t].who = t;
		assert_int_equal(pthread_create(&tid[t], NULL, gc_adder_run,
		    &a[t]), 0);
	}
	for (t = 0; t < GC_THREADS; t++)
		assert_int_equal(pthread_join(tid[t], NULL), 0);
	pthread_barrier_destroy(&go);
	for (t = 0; t < GC_THREADS; t++) {
		assert_int_equal(a[t].failed_good, 0);
		assert_int_equal(a[t].bad_ok, 0);
		good += a[t].ok;
		for (i = 0; i < GC_CALLS; i++) {
			snprintf(msgid, sizeof(msgid), "<gc-%d-%d@x>", t, i);
			if (t == 0 && i % 4 == 1) {
				assert_int_equal(store_conv_get(f->st, msgid,
				    key), STORE_NOT_FOUND);
				continue;
			}
			assert_int_equal(store_job_find(f->st, "acme", msgid,
			    &found), STORE_OK);
			assert_true(found == a[t].ids[i]);
			assert_int_equal(store_conv_get(f->st, msgid, key),
			    STORE_OK);
		}
	}
	assert_int_equal(good, GC_THREADS * GC_CALLS - GC_CALLS / 4);
	assert_int_equal(store_job_counts(f->st, counts), STORE_OK);
	assert_true(counts[STORE_QUEUED] == (uint64_t)good);
	/* every committed call was counted in some transaction */
	store_group_stats(f->st, &batches, &entries, &relaxed);
	assert_true(entries == (uint64_t)good);
	assert_true(batches >= 1 && batches <= entries);
	assert_true(relaxed == 0);      /* no row said its spool holds it */
}

/* End of message's lookups run on reader connections of their own: they
 * answer while another thread holds the handle's lock (a commit under
 * way), and see what was committed. */
struct rd_lookup {
	struct store *st;
	enum store_status conv, find, creates, enrolled;
	char key[33];
	unsigned count;
	bool is_enrolled;
};

static void *
rd_lookup_run(void *arg)
{
	struct rd_lookup *l = arg;
	int64_t id;

	l->conv = store_conv_get(l->st, "<rd@x>", l->key);
	l->find = store_job_find_key(l->st, "acme", "<rd@x>", "", &id);
	l->creates = store_sender_creates(l->st, "acme",
	    "alice@customer.example", 0, &l->count);
	l->enrolled = store_agent_enrolled(l->st, "acme", "nobody@x",
	    &l->is_enrolled);
	return NULL;
}

static void
test_reader_lookups(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j;
	enum store_status res;
	struct rd_lookup l;
	struct timespec until;
	pthread_t tid;
	int64_t id;
	int rc;

	open_latest(f);
	j = job_new("acme", "<rd@x>");
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, "<rd@x>",
	    "0123456789abcdef0123456789abcdef"), STORE_OK);
	memset(&l, 0, sizeof(l));
	l.st = f->st;
	pthread_mutex_lock(&f->st->lock);     /* as a commit holds it */
	assert_int_equal(pthread_create(&tid, NULL, rd_lookup_run, &l), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	rc = pthread_timedjoin_np(tid, NULL, &until);
	pthread_mutex_unlock(&f->st->lock);
	if (rc != 0) {
		pthread_join(tid, NULL);
		fail_msg("the lookups waited for the handle's lock");
	}
	assert_int_equal(l.conv, STORE_OK);
	assert_string_equal(l.key, "0123456789abcdef0123456789abcdef");
	assert_int_equal(l.find, STORE_OK);
	assert_int_equal(l.creates, STORE_OK);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.enrolled, STORE_OK);
	assert_false(l.is_enrolled);
	/* a row committed after the readers opened is seen by them */
	j = job_new("acme", "<rd2@x>");
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, "<rd2@x>",
	    "fedcba9876543210fedcba9876543210"), STORE_OK);
	assert_int_equal(store_conv_get(f->st, "<rd2@x>", l.key), STORE_OK);
	assert_string_equal(l.key, "fedcba9876543210fedcba9876543210");
}

/* A conversation's jobs are claimed in order: a reply waits while its
 * thread's earlier job is queued (even not yet due) or running; other
 * conversations, other tenants and jobs without a key go on. */
static void
test_claim_conversation_order(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[4];
	struct store_job *c = NULL, *d = NULL;
	enum store_status res[4];
	int64_t ids[4];
	time_t now = time(NULL);

	open_latest(f);
	j[0] = job_new("acme", "<first@x>");
	j[1] = job_new("acme", "<reply@x>");
	j[2] = job_new("globex", "<other-tenant@x>");
	j[3] = job_new("acme", "<other-conv@x>");
	j[0].conv_key = j[1].conv_key = j[2].conv_key =
	    "0123456789abcdef0123456789abcdef";
	j[3].conv_key = "fedcba9876543210fedcba9876543210";
	assert_int_equal(store_jobs_add(f->st, j, 4, res, ids, NULL, NULL),
	    STORE_OK);
	/* the first mail is retrying later: its reply must not overtake it */
	assert_int_equal(store_job_claim(f->st, now, 300, &c), STORE_OK);
	assert_int_equal(c->id, ids[0]);
	assert_int_equal(store_job_retry(f->st, c->id, now + 600, "Halo 503"),
	    STORE_OK);
	c = store_job_free(c);
	assert_int_equal(store_job_claim(f->st, now, 300, &c), STORE_OK);
	assert_int_equal(c->id, ids[2]);        /* another tenant's: free */
	assert_int_equal(store_job_finish(f->st, c->id, STORE_SKIPPED, "x"),
	    STORE_OK);
	c = store_job_free(c);
	assert_int_equal(store_job_claim(f->st, now, 300, &c), STORE_OK);
	assert_int_equal(c->id, ids[3]);        /* another conversation */
	assert_int_equal(store_job_finish(f->st, c->id, STORE_SKIPPED, "x"),
	    STORE_OK);
	c = store_job_free(c);
	assert_int_equal(store_job_claim(f->st, now, 300, &c), STORE_NOT_FOUND);
	/* due again: the first goes, and while it runs the reply waits */
	assert_int_equal(store_job_claim(f->st, now + 600, 300, &c), STORE_OK);
	assert_int_equal(c->id, ids[0]);
	assert_int_equal(store_job_claim(f->st, now + 600, 300, &d),
	    STORE_NOT_FOUND);
	assert_int_equal(store_job_finish(f->st, c->id, STORE_FAILED, "x"),
	    STORE_OK);
	c = store_job_free(c);
	/* ended (here failed): the reply is free */
	assert_int_equal(store_job_claim(f->st, now + 600, 300, &d), STORE_OK);
	assert_int_equal(d->id, ids[1]);
	store_job_free(d);
}

/* Every field survives the round trip. */
static void
test_job_get_fields(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j;
	struct store_job *got;
	enum store_status res;
	int64_t id;
	time_t before = time(NULL), after;

	open_latest(f);
	memset(&j, 0, sizeof(j));
	j.tenant = "acme";
	j.message_id = "<full@x.example>";
	j.state = STORE_SKIPPED;
	j.reason = "auto-reply";
	j.queue_id = "4AbC123";
	j.env_from = "<bounce@x.example>";
	j.from_addr = "alice@x.example";
	j.subject = "H\xc3\xa9llo";
	j.recipients = "support@acme.example,bob@acme.example";
	j.agent = "agent@msp.example";
	j.mode = "thread-only";
	j.conv_key = "00112233445566778899aabbccddeeff";
	j.spool = "1700000000.000000001.0011223344556677";
	j.size = 5000000000ULL;                  /* over 32 bits */
	j.no_create = true;
	j.starts_thread = false;
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    STORE_OK);
	after = time(NULL);

	assert_int_equal(store_job_get(f->st, id, &got), STORE_OK);
	assert_true(got->id == id);
	assert_string_equal(got->tenant, j.tenant);
	assert_string_equal(got->message_id, j.message_id);
	assert_int_equal(got->state, STORE_SKIPPED);
	assert_string_equal(got->reason, j.reason);
	assert_string_equal(got->queue_id, j.queue_id);
	assert_string_equal(got->env_from, j.env_from);
	assert_string_equal(got->from_addr, j.from_addr);
	assert_string_equal(got->subject, j.subject);
	assert_string_equal(got->recipients, j.recipients);
	assert_string_equal(got->agent, j.agent);
	assert_string_equal(got->mode, j.mode);
	assert_string_equal(got->conv_key, j.conv_key);
	assert_string_equal(got->spool, j.spool);
	assert_true(got->size == 5000000000ULL);
	assert_true(got->no_create);
	assert_false(got->starts_thread);
	assert_int_equal(got->attempts, 0);
	assert_true(got->created >= before && got->created <= after);
	assert_true(got->updated == got->created);
	assert_true(got->next_attempt == 0);
	assert_null(store_job_free(got));

	/* NULL strings stay NULL; the other booleans */
	memset(&j, 0, sizeof(j));
	j.tenant = "acme";
	j.message_id = "<sparse@x>";
	j.state = STORE_QUEUED;
	j.starts_thread = true;
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_job_get(f->st, id, &got), STORE_OK);
	assert_int_equal(got->state, STORE_QUEUED);
	assert_null(got->reason);
	assert_null(got->spool);
	assert_null(got->subject);
	assert_false(got->no_create);
	assert_true(got->starts_thread);
	assert_true(got->size == 0);
	store_job_free(got);

	assert_int_equal(store_job_get(f->st, id + 100, &got), STORE_NOT_FOUND);
	assert_null(got);
	assert_null(store_job_free(NULL));
}

/* What the list callback saw. */
struct seen {
	int64_t ids[16];
	enum store_state states[16];
	size_t n;
};

static void
collect(const struct store_job *job, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16) {
		s->ids[s->n] = job->id;
		s->states[s->n] = job->state;
		s->n++;
	}
}

/* Add jobs in STATES (one each) for tenant acme; their ids go to IDS. */
static void
add_states(struct store *st, const enum store_state *states, size_t n,
    int64_t *ids)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct store_job_new j;
		enum store_status res;
		char msgid[32];

		snprintf(msgid, sizeof(msgid), "<s%zu@x>", i);
		j = job_new("acme", msgid);
		j.state = states[i];
		assert_int_equal(store_jobs_add(st, &j, 1, &res, &ids[i], NULL, NULL),
		    STORE_OK);
		assert_int_equal(res, STORE_OK);
	}
}

/* Newest first, state filter, limit; counts per state. */
static void
test_list_and_counts(void **state)
{
	static const enum store_state states[] = {
		STORE_QUEUED, STORE_SKIPPED, STORE_QUEUED, STORE_DONE, STORE_QUEUED,
		STORE_FAILED, STORE_WAITING, STORE_RUNNING
	};
	struct fixture *f = *state;
	int64_t ids[8];
	uint64_t counts[6];
	struct seen s;
	size_t i;

	open_latest(f);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_job_list(f->st, -1, 0, collect, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(store_job_counts(f->st, counts), STORE_OK);
	for (i = 0; i < 6; i++)
		assert_true(counts[i] == 0);

	add_states(f->st, states, 8, ids);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_job_list(f->st, -1, 0, collect, &s), STORE_OK);
	assert_int_equal(s.n, 8);
	for (i = 0; i < 8; i++) {
		assert_true(s.ids[i] == ids[7 - i]);
		assert_int_equal(s.states[i], states[7 - i]);
	}

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_job_list(f->st, -1, 3, collect, &s), STORE_OK);
	assert_int_equal(s.n, 3);
	assert_true(s.ids[0] == ids[7] && s.ids[2] == ids[5]);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_job_list(f->st, STORE_QUEUED, 0, collect, &s),
	    STORE_OK);
	assert_int_equal(s.n, 3);
	assert_true(s.ids[0] == ids[4] && s.ids[1] == ids[2] && s.ids[2] == ids[0]);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_job_list(f->st, STORE_QUEUED, 2, collect, &s),
	    STORE_OK);
	assert_int_equal(s.n, 2);
	assert_true(s.ids[0] == ids[4] && s.ids[1] == ids[2]);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_job_list(f->st, STORE_DONE, 0, collect, &s),
	    STORE_OK);
	assert_int_equal(s.n, 1);
	assert_true(s.ids[0] == ids[3]);

	assert_int_equal(store_job_counts(f->st, counts), STORE_OK);
	assert_true(counts[STORE_QUEUED] == 3);
	assert_true(counts[STORE_SKIPPED] == 1);
	assert_true(counts[STORE_RUNNING] == 1);
	assert_true(counts[STORE_DONE] == 1);
	assert_true(counts[STORE_FAILED] == 1);
	assert_true(counts[STORE_WAITING] == 1);
}

/* Conversation keys: recorded with the jobs, first writer wins. */
static void
test_conv(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j;
	enum store_status res;
	int64_t id;
	char key[33];

	open_latest(f);
	assert_int_equal(store_conv_get(f->st, "<a@x>", key), STORE_NOT_FOUND);
	j = job_new("acme", "<a@x>");
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, "<a@x>",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), STORE_OK);
	assert_int_equal(store_conv_get(f->st, "<a@x>", key), STORE_OK);
	assert_string_equal(key, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");

	/* a second record for the same Message-ID does not replace the key */
	j = job_new("globex", "<a@x>");
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, "<a@x>",
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), STORE_OK);
	assert_int_equal(res, STORE_OK);
	assert_int_equal(store_conv_get(f->st, "<a@x>", key), STORE_OK);
	assert_string_equal(key, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");

	/* zero jobs, just a key */
	assert_int_equal(store_jobs_add(f->st, NULL, 0, NULL, NULL, "<b@x>",
	    "0123456789abcdef0123456789abcdef"), STORE_OK);
	assert_int_equal(store_conv_get(f->st, "<b@x>", key), STORE_OK);
	assert_string_equal(key, "0123456789abcdef0123456789abcdef");
	assert_int_equal(store_conv_get(f->st, "<B@x>", key), STORE_NOT_FOUND);
}

/* Only thread-starting, non-skipped jobs of the tenant within the window. */
static void
test_sender_creates(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[7];
	enum store_status res[7];
	int64_t ids[7];
	unsigned count = 99;
	time_t now = time(NULL);
	char sql[128];

	open_latest(f);
	j[0] = job_new("acme", "<c0@x>");                   /* counts */
	j[1] = job_new("acme", "<c1@x>");                   /* counts */
	j[2] = job_new("acme", "<c2@x>");
	j[2].starts_thread = false;                         /* a reply */
	j[3] = job_new("acme", "<c3@x>");
	j[3].state = STORE_SKIPPED;                         /* not created */
	j[3].reason = "loop";
	j[4] = job_new("globex", "<c4@x>");                 /* other tenant */
	j[5] = job_new("acme", "<c5@x>");
	j[5].from_addr = "bob@customer.example";            /* other sender */
	j[6] = job_new("acme", "<c6@x>");                   /* made old below */
	assert_int_equal(store_jobs_add(f->st, j, 7, res, ids, NULL, NULL),
	    STORE_OK);
	snprintf(sql, sizeof(sql), "UPDATE jobs SET created = created - 7200"
	    " WHERE id = %lld", (long long)ids[6]);
	exec_sql(f->db, sql);

	assert_int_equal(store_sender_creates(f->st, "acme",
	    "alice@customer.example", now - 3600, &count), STORE_OK);
	assert_int_equal(count, 2);
	/* a wider window takes in the old one */
	assert_int_equal(store_sender_creates(f->st, "acme",
	    "alice@customer.example", now - 10000, &count), STORE_OK);
	assert_int_equal(count, 3);
	assert_int_equal(store_sender_creates(f->st, "globex",
	    "alice@customer.example", now - 3600, &count), STORE_OK);
	assert_int_equal(count, 1);
	assert_int_equal(store_sender_creates(f->st, "acme",
	    "bob@customer.example", now - 3600, &count), STORE_OK);
	assert_int_equal(count, 1);
	assert_int_equal(store_sender_creates(f->st, "acme",
	    "nobody@customer.example", now - 3600, &count), STORE_OK);
	assert_int_equal(count, 0);
	/* a window starting in the future is empty */
	assert_int_equal(store_sender_creates(f->st, "acme",
	    "alice@customer.example", now + 60, &count), STORE_OK);
	assert_int_equal(count, 0);
}

/* Spool references. */
static void
test_spool_used(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[2];
	enum store_status res[2];
	int64_t ids[2];
	bool used = true;

	open_latest(f);
	assert_int_equal(store_spool_used(f->st, "file-a", &used), STORE_OK);
	assert_false(used);
	j[0] = job_new("acme", "<u@x>");
	j[0].spool = "file-a";
	j[1] = job_new("globex", "<u@x>");
	j[1].spool = "file-a";                  /* one file, two tenants */
	assert_int_equal(store_jobs_add(f->st, j, 2, res, ids, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_spool_used(f->st, "file-a", &used), STORE_OK);
	assert_true(used);
	used = true;
	assert_int_equal(store_spool_used(f->st, "file-b", &used), STORE_OK);
	assert_false(used);
}

/* Claims and the fenced posting mark: the worker whose lease lapsed
 * and whose job another worker reclaimed may not post. */
static void
test_claim_and_fenced_posting(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j = job_new("acme", "<lease@x>");
	struct store_job *first = NULL, *second = NULL, *again = NULL;
	enum store_status res;
	int64_t id = 0;
	time_t t0 = 1000000;

	open_latest(f);
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_job_claim(f->st, t0, 300, &first), STORE_OK);
	assert_int_equal(first->id, id);
	assert_int_equal(first->lease_until, t0 + 300);
	assert_int_equal(first->attempts, 1);
	/* held: nobody else can claim it before the lease runs out */
	assert_int_equal(store_job_claim(f->st, t0 + 299, 300, &second),
	    STORE_NOT_FOUND);
	/* lapsed: another worker reclaims it */
	assert_int_equal(store_job_claim(f->st, t0 + 300, 300, &second), STORE_OK);
	assert_int_equal(second->lease_until, t0 + 600);
	assert_int_equal(second->attempts, 2);
	/* the first worker's mark is refused; the owner's succeeds and renews */
	assert_int_equal(store_job_mark_posting(f->st, id, first->lease_until,
	    t0 + 900), STORE_NOT_FOUND);
	assert_int_equal(store_job_mark_posting(f->st, id, second->lease_until,
	    t0 + 900), STORE_OK);
	assert_int_equal(store_job_get(f->st, id, &again), STORE_OK);
	assert_true(again->post_started);
	assert_int_equal(again->lease_until, t0 + 900);
	store_job_free(again);
	store_job_free(first);
	store_job_free(second);
}

/* After a crash: a job that was posting waits the grace from its mark before
 * it can be claimed again (its request may still land at Halo); a job that
 * had not begun posting is due at once. */
static void
test_reset_running(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[2] = { job_new("acme", "<posting@x>"),
	    job_new("acme", "<idle@x>") };
	struct store_job *a = NULL, *b = NULL, *c = NULL;
	enum store_status res[2];
	int64_t ids[2] = { 0, 0 };
	unsigned n = 0, posting = 0;
	time_t now = time(NULL);

	open_latest(f);
	if (f->pg)      /* shared: no node requeues (test_two_handles) */
		skip();
	assert_int_equal(store_jobs_add(f->st, j, 2, res, ids, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_job_claim(f->st, now, 300, &a), STORE_OK);
	assert_int_equal(store_job_claim(f->st, now, 300, &b), STORE_OK);
	if (a->id != ids[0]) {
		struct store_job *t = a;
		a = b;
		b = t;
	}
	assert_int_equal(a->id, ids[0]);
	assert_int_equal(store_job_mark_posting(f->st, a->id, a->lease_until,
	    now + 300), STORE_OK);
	assert_int_equal(store_jobs_reset_running(f->st, 35, &n, &posting),
	    STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(posting, 1);
	/* the idle one is due now, the posting one not within its grace */
	assert_int_equal(store_job_claim(f->st, now, 300, &c), STORE_OK);
	assert_int_equal(c->id, ids[1]);
	store_job_free(c);
	c = NULL;
	assert_int_equal(store_job_claim(f->st, now + 30, 300, &c),
	    STORE_NOT_FOUND);
	assert_int_equal(store_job_claim(f->st, now + 40, 300, &c), STORE_OK);
	assert_int_equal(c->id, ids[0]);
	assert_true(c->post_started);
	store_job_free(a);
	store_job_free(b);
	store_job_free(c);
}

/* State names both ways. */
static void
test_state_names(void **state)
{
	static const char *const names[] = {
		"queued", "skipped", "running", "done", "failed", "waiting"
	};
	int i;

	(void)state;
	for (i = 0; i < 6; i++) {
		assert_string_equal(store_state_name((enum store_state)i), names[i]);
		assert_int_equal(store_state_parse(names[i]), i);
	}
	assert_string_equal(store_state_name((enum store_state)6), "unknown");
	assert_int_equal(store_state_parse("QUEUED"), -1);
	assert_int_equal(store_state_parse(""), -1);
	assert_int_equal(store_state_parse(NULL), -1);
}

/* Schema v7: a job is (tenant, Message-ID, dedup key); a row from before
 * v7 (no key) stays the duplicate of any key; the new fields round-trip. */
static void
test_dedup_key(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[1];
	enum store_status res[1];
	int64_t old_id, first, second, found;
	struct store_job *got;
	char err[256] = "";

	f->st = store_open_version(f->db, 6, err, sizeof(err));
	assert_non_null(f->st);
	f->st = store_close(f->st);
	exec_sql(f->db, "INSERT INTO jobs (id, tenant, message_id, state,"
	    " created, updated, ticket_status) VALUES (7, 'acme', '<old@x>',"
	    " 'done', 1, 1, 'open')");
	old_id = 7;
	open_latest(f);
	assert_true(store_schema_latest() >= 7);
	/* the old row survived the rebuild and matches any key */
	assert_int_equal(store_job_find_key(f->st, "acme", "<old@x>", "k1",
	    &found), STORE_OK);
	assert_true(found == old_id);
	j[0] = job_new("acme", "<old@x>");
	j[0].dedup_key = "k1";
	assert_int_equal(store_jobs_add(f->st, j, 1, res, &found, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_OK);     /* the index is per key */

	/* same Message-ID, another sender or content: its own job */
	j[0] = job_new("acme", "<m@x>");
	j[0].dedup_key = "attacker";
	j[0].sender_auth = "none";
	assert_int_equal(store_jobs_add(f->st, j, 1, res, &first, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_OK);
	j[0].dedup_key = "genuine";
	j[0].sender_auth = "dmarc";
	j[0].outbound_auth = "sasl";
	assert_int_equal(store_jobs_add(f->st, j, 1, res, &second, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_OK);
	assert_true(second != first);
	/* the same key again: a duplicate of its own job only */
	assert_int_equal(store_jobs_add(f->st, j, 1, res, &found, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_DUPLICATE);
	assert_true(found == second);
	assert_int_equal(store_job_find_key(f->st, "acme", "<m@x>", "genuine",
	    &found), STORE_OK);
	assert_true(found == second);
	assert_int_equal(store_job_find_key(f->st, "acme", "<m@x>", "other",
	    &found), STORE_NOT_FOUND);
	assert_int_equal(store_job_find(f->st, "acme", "<m@x>", &found),
	    STORE_OK);
	assert_true(found == first);
	assert_int_equal(store_job_get(f->st, second, &got), STORE_OK);
	assert_string_equal(got->dedup_key, "genuine");
	assert_string_equal(got->sender_auth, "dmarc");
	assert_string_equal(got->outbound_auth, "sasl");
	got = store_job_free(got);
	assert_int_equal(store_job_get(f->st, old_id, &got), STORE_OK);
	assert_string_equal(got->dedup_key, "");
	assert_null(got->sender_auth);
	got = store_job_free(got);
}

/* Operator re-queue: failed and waiting jobs go back to the queue; a done
 * job (its message gone) and a running one stay as they are. */
static void
test_requeue(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[3];
	struct store_job *got = NULL;
	enum store_status res[3];
	int64_t ids[3];

	open_latest(f);
	j[0] = job_new("acme", "<done@x>");
	j[1] = job_new("acme", "<failed@x>");
	j[2] = job_new("acme", "<running@x>");
	assert_int_equal(store_jobs_add(f->st, j, 3, res, ids, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_job_finish(f->st, ids[0], STORE_DONE, NULL),
	    STORE_OK);
	assert_int_equal(store_job_finish(f->st, ids[1], STORE_FAILED, "x"),
	    STORE_OK);
	/* the only queued job left is the one a worker claims */
	assert_int_equal(store_job_claim(f->st, 1000, 300, &got), STORE_OK);
	assert_int_equal(got->id, ids[2]);
	got = store_job_free(got);
	assert_int_equal(store_job_requeue(f->st, ids[0]), STORE_NOT_FOUND);
	assert_int_equal(store_job_requeue(f->st, ids[2]), STORE_NOT_FOUND);
	assert_int_equal(store_job_requeue(f->st, ids[1]), STORE_OK);
	assert_int_equal(store_job_requeue(f->st, 999999), STORE_NOT_FOUND);
	assert_int_equal(store_job_get(f->st, ids[0], &got), STORE_OK);
	assert_int_equal(got->state, STORE_DONE);
	got = store_job_free(got);
	assert_int_equal(store_job_get(f->st, ids[1], &got), STORE_OK);
	assert_int_equal(got->state, STORE_QUEUED);
	got = store_job_free(got);
	assert_int_equal(store_job_get(f->st, ids[2], &got), STORE_OK);
	assert_int_equal(got->state, STORE_RUNNING);
	store_job_free(got);
}

/* Schema v8 (branch trust-worker): participants and ticket owners; a v7
 * store upgrades; a done job keeps the reason it is given. */
static void
test_participants(void **state)
{
	struct fixture *f = *state;
	const char *addrs[] = { "Bob@Acme.example", "carol@acme.example", "",
	    NULL, "bob@acme.example" };
	struct store_result r = { 0 };
	struct store_job_new j[1];
	struct store_job *got;
	enum store_status res[1];
	int64_t id, user = 0, client = 0;
	char err[256] = "";
	bool is = true;

	f->st = store_open_version(f->db, 7, err, sizeof(err));
	assert_non_null(f->st);
	f->st = store_close(f->st);
	open_latest(f);
	assert_true(store_schema_latest() >= 8);
	assert_int_equal(store_participant_is(f->st, "acme", 5, "bob@acme.example",
	    &is), STORE_OK);
	assert_false(is);
	assert_int_equal(store_participants_add(f->st, "acme", 5, addrs, 5),
	    STORE_OK);
	assert_int_equal(store_participant_is(f->st, "acme", 5, "BOB@acme.EXAMPLE",
	    &is), STORE_OK);
	assert_true(is);
	assert_int_equal(store_participant_is(f->st, "acme", 6, "bob@acme.example",
	    &is), STORE_OK);
	assert_false(is);                       /* another ticket */
	assert_int_equal(store_participant_is(f->st, "globex", 5,
	    "bob@acme.example", &is), STORE_OK);
	assert_false(is);                       /* another tenant */

	/* owners: "halo" rows age, "created" ones do not and are not replaced */
	assert_int_equal(store_ticket_owner_get(f->st, "acme", 5, 0, &user,
	    &client), STORE_NOT_FOUND);
	assert_int_equal(store_ticket_owner_put(f->st, "acme", 5, 7, 70, "halo"),
	    STORE_OK);
	assert_int_equal(store_ticket_owner_get(f->st, "acme", 5, 0, &user,
	    &client), STORE_OK);
	assert_true(user == 7 && client == 70);
	assert_int_equal(store_ticket_owner_get(f->st, "acme", 5,
	    time(NULL) + 10, &user, &client), STORE_NOT_FOUND);
	assert_int_equal(store_ticket_owner_put(f->st, "acme", 5, 8, 80,
	    "created"), STORE_OK);
	assert_int_equal(store_ticket_owner_put(f->st, "acme", 5, 9, 90, "halo"),
	    STORE_OK);
	assert_int_equal(store_ticket_owner_get(f->st, "acme", 5,
	    time(NULL) + 10, &user, &client), STORE_OK);
	assert_true(user == 8 && client == 80);

	/* a done job keeps its reason (a refused ticket's note) */
	j[0] = job_new("acme", "<r@x>");
	assert_int_equal(store_jobs_add(f->st, j, 1, res, &id, NULL, NULL),
	    STORE_OK);
	r.ticket_id = 9;
	r.result = "created";
	r.reason = "not-a-participant: ticket 5 (message-id); a new conversation";
	assert_int_equal(store_job_done(f->st, id, &r), STORE_OK);
	assert_int_equal(store_job_get(f->st, id, &got), STORE_OK);
	assert_string_equal(got->reason, r.reason);
	got = store_job_free(got);
}

/* Two handles on one database (two nodes): one shares the other's
 * conversation index and dedup, and they never claim the same job. */
static void
test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[2];
	struct store_job *a = NULL, *b = NULL, *c = NULL;
	enum store_status res[2];
	int64_t ids[2], found = 0;
	struct store *other;
	char err[256] = "", key[33];
	unsigned n = 99, posting = 99;

	open_latest(f);
	other = store_open(f->db, err, sizeof(err));
	assert_non_null(other);
	assert_int_equal(store_is_shared(other), f->pg);
	j[0] = job_new("acme", "<n1@x>");
	j[1] = job_new("acme", "<n2@x>");
	assert_int_equal(store_jobs_add(f->st, j, 2, res, ids, "<n1@x>",
	    "0123456789abcdef0123456789abcdef"), STORE_OK);
	/* the other node sees the index and calls a second copy a duplicate */
	assert_int_equal(store_conv_get(other, "<n1@x>", key), STORE_OK);
	assert_string_equal(key, "0123456789abcdef0123456789abcdef");
	assert_int_equal(store_jobs_add(other, j, 1, res, &found, NULL, NULL),
	    STORE_OK);
	assert_int_equal(res[0], STORE_DUPLICATE);
	assert_true(found == ids[0]);
	/* each node claims a different job, then nothing is left */
	assert_int_equal(store_job_claim(f->st, 1000, 300, &a), STORE_OK);
	assert_int_equal(store_job_claim(other, 1000, 300, &b), STORE_OK);
	assert_true(a->id != b->id);
	assert_int_equal(store_job_claim(other, 1001, 300, &c), STORE_NOT_FOUND);
	/* a node starting up does not take a shared store's running jobs */
	assert_int_equal(store_jobs_reset_running(other, 35, &n, &posting),
	    STORE_OK);
	assert_int_equal(n, f->pg ? 0 : 2);
	assert_int_equal(posting, 0);
	store_job_free(a);
	store_job_free(b);
	other = store_close(other);
}

/* Message bytes: a shared store keeps them with the job, for any node. */
static void
test_messages(void **state)
{
	struct fixture *f = *state;
	static const char body[] = "Subject: hi\r\n\r\nbytes\0with a NUL\r\n";
	char path[PATH_MAX + 16], copy[PATH_MAX + 16], got[sizeof(body)];
	struct store_job_new j = job_new("acme", "<bytes@x>");
	enum store_status res;
	int64_t id;
	bool used = false;
	FILE *fp;

	open_latest(f);
	snprintf(path, sizeof(path), "%s/m1", f->dir);
	snprintf(copy, sizeof(copy), "%s/m1.copy", f->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(body, 1, sizeof(body), fp), sizeof(body));
	fclose(fp);
	j.spool = "m1";
	j.spool_file = path;
	j.size = sizeof(body) + 1;      /* not what the file holds */
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    f->pg ? STORE_ERROR : STORE_OK);
	if (!f->pg) {
		/* the spool file is the only copy */
		assert_int_equal(store_message_fetch(f->st, "m1", copy),
		    STORE_NOT_FOUND);
		assert_int_equal(store_message_delete(f->st, "m1"), STORE_OK);
		return;
	}
	j.size = sizeof(body);
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    STORE_OK);
	unlink(path);                   /* another node has no local file */
	assert_int_equal(store_spool_used(f->st, "m1", &used), STORE_OK);
	assert_true(used);
	assert_int_equal(store_message_fetch(f->st, "m1", copy), STORE_OK);
	fp = fopen(copy, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(got, 1, sizeof(got), fp), sizeof(body));
	fclose(fp);
	assert_memory_equal(got, body, sizeof(body));
	assert_int_equal(store_message_delete(f->st, "m1"), STORE_OK);
	assert_int_equal(store_message_fetch(f->st, "m1", copy),
	    STORE_NOT_FOUND);
	/* the job still needs the file; once it is over, nobody does */
	assert_int_equal(store_spool_used(f->st, "m1", &used), STORE_OK);
	assert_true(used);
	assert_int_equal(store_job_finish(f->st, id, STORE_SKIPPED, "test"),
	    STORE_OK);
	assert_int_equal(store_spool_used(f->st, "m1", &used), STORE_OK);
	assert_false(used);
}

struct lock_waiter {
	const char *db;
	char seen[32];
	enum store_status rc;
};

/* A second node refreshing the same agent: lock, note the token, unlock. */
static void *
lock_waiter_run(void *arg)
{
	struct lock_waiter *lw = arg;
	struct store_token_lock *lock = NULL;
	struct store_token *row = NULL;
	struct store *st;
	char err[256];

	if ((st = store_open(lw->db, err, sizeof(err))) == NULL)
		return NULL;
	lw->rc = store_token_lock(st, "acme", "agent@acme.example", &row,
	    &lock);
	if (lw->rc == STORE_OK) {
		snprintf(lw->seen, sizeof(lw->seen), "%s", row->sealed);
		store_token_free(row);
		lw->rc = store_token_unlock(lock, NULL, NULL);
	}
	store_close(st);
	return NULL;
}

/* The daemon and halo-milterctl opening a new store at the same moment:
 * each migration is applied once, and every opener gets the store. */
struct opener {
	const char *db;
	pthread_barrier_t *go;
	bool ok;
	char err[256];
};

static void *
opener_run(void *arg)
{
	struct opener *o = arg;
	struct store *st;

	pthread_barrier_wait(o->go);
	st = store_open(o->db, o->err, sizeof(o->err));
	o->ok = st != NULL && store_schema_version(st) == store_schema_latest();
	store_close(st);
	return NULL;
}

static void
test_concurrent_open(void **state)
{
	struct fixture *f = *state;
	struct opener o[8];
	pthread_t tid[8];
	pthread_barrier_t go;
	int i;

	if (f->pg)
		skip();
	pthread_barrier_init(&go, NULL, 8);
	for (i = 0; i < 8; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].db = f->db;
		o[i].go = &go;
		assert_int_equal(pthread_create(&tid[i], NULL, opener_run,
		    &o[i]), 0);
	}
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (i = 0; i < 8; i++)
		if (!o[i].ok)
			fail_msg("opener %d: %s", i, o[i].err);
}

/* Token refresh is single-flight: a second node waits for the rotated
 * token and never reads the one already being presented. */
static void
test_token_lock(void **state)
{
	struct fixture *f = *state;
	struct store_token_lock *lock = NULL;
	struct store_token *row = NULL;
	struct lock_waiter lw;
	pthread_t tid;

	open_latest(f);
	assert_int_equal(store_token_lock(f->st, "acme", "agent@acme.example",
	    &row, &lock), STORE_NOT_FOUND);
	assert_null(lock);
	assert_int_equal(store_token_put(f->st, "acme", "agent@acme.example",
	    "sealed-1", "ok"), STORE_OK);
	assert_int_equal(store_token_lock(f->st, "acme", "agent@acme.example",
	    &row, &lock), STORE_OK);
	assert_string_equal(row->sealed, "sealed-1");
	row = store_token_free(row);
	memset(&lw, 0, sizeof(lw));
	lw.db = f->db;
	lw.rc = STORE_ERROR;
	/* the other node (PostgreSQL: the row lock), or the other process
	 * on one SQLite file (halo-milterctl beside the daemon: the lock
	 * file; a handle of its own stands in for it), blocks until the
	 * commit below */
	assert_int_equal(pthread_create(&tid, NULL, lock_waiter_run, &lw), 0);
	usleep(200 * 1000);
	assert_string_equal(lw.seen, "");
	assert_int_equal(store_token_unlock(lock, "sealed-2", "ok"), STORE_OK);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_int_equal(lw.rc, STORE_OK);
	assert_string_equal(lw.seen, "sealed-2");
	assert_int_equal(store_token_get(f->st, "acme", "agent@acme.example",
	    &row), STORE_OK);
	assert_string_equal(row->sealed, "sealed-2");
	assert_true(row->last_refresh > 0);
	row = store_token_free(row);
	/* a refused refresh marks the agent, keeping its token */
	assert_int_equal(store_token_lock(f->st, "acme", "agent@acme.example",
	    &row, &lock), STORE_OK);
	row = store_token_free(row);
	assert_int_equal(store_token_unlock(lock, NULL, "reenroll"), STORE_OK);
	assert_int_equal(store_token_get(f->st, "acme", "agent@acme.example",
	    &row), STORE_OK);
	assert_string_equal(row->state, "reenroll");
	assert_string_equal(row->sealed, "sealed-2");
	row = store_token_free(row);
}

/* "store migrate": a SQLite store's rows (ids kept, tokens as sealed) and
 * its unfinished jobs' messages move into an empty store, once. */
static void
test_copy(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[2];
	struct store_copy_report rep;
	struct store_token *tok = NULL;
	struct store_sender snd;
	enum store_status res[2];
	int64_t ids[2], id3 = 0;
	char src_path[PATH_MAX + 16], dir[PATH_MAX + 16], err[256] = "";
	char key[33];
	struct store *src;
	FILE *fp;

	snprintf(src_path, sizeof(src_path), "%s/old.db", f->dir);
	src = store_open(src_path, err, sizeof(err));
	assert_non_null(src);
	j[0] = job_new("acme", "<c1@x>");
	j[0].spool = "m1";
	j[0].size = 5;
	j[1] = job_new("acme", "<c2@x>");
	assert_int_equal(store_jobs_add(src, j, 2, res, ids, "<c1@x>",
	    "0123456789abcdef0123456789abcdef"), STORE_OK);
	assert_int_equal(store_job_finish(src, ids[1], STORE_SKIPPED, "x"),
	    STORE_OK);
	assert_int_equal(store_token_put(src, "acme", "a@x", "v1.sealed", "ok"),
	    STORE_OK);
	memset(&snd, 0, sizeof(snd));
	snd.kind = STORE_SENDER_CONTACT;
	snd.user_id = 7;
	snd.expires = time(NULL) + 3600;
	assert_int_equal(store_sender_put(src, "acme", "ann@x", &snd), STORE_OK);
	/* the spool of the unfinished job */
	snprintf(dir, sizeof(dir), "%s/msg", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/msg/m1", f->dir);
	fp = fopen(dir, "wb");
	assert_non_null(fp);
	fputs("12345", fp);
	fclose(fp);

	open_latest(f);
	assert_int_equal(store_copy(src, f->st, f->dir, &rep, err, sizeof(err)),
	    STORE_OK);
	assert_int_equal(rep.jobs, 2);
	assert_int_equal(rep.tokens, 1);
	assert_int_equal(rep.messages, f->pg ? 1 : 0);
	assert_int_equal(store_token_get(f->st, "acme", "a@x", &tok), STORE_OK);
	assert_string_equal(tok->sealed, "v1.sealed");
	tok = store_token_free(tok);
	assert_int_equal(store_conv_get(f->st, "<c1@x>", key), STORE_OK);
	assert_int_equal(store_sender_get(f->st, "acme", "ann@x", time(NULL),
	    &snd), STORE_OK);
	assert_int_equal(snd.user_id, 7);
	store_sender_clear(&snd);
	assert_int_equal(store_job_find(f->st, "acme", "<c2@x>", &id3),
	    STORE_OK);
	assert_true(id3 == ids[1]);
	/* new jobs take ids after the copied ones */
	j[0] = job_new("acme", "<c3@x>");
	assert_int_equal(store_jobs_add(f->st, j, 1, res, &id3, NULL, NULL),
	    STORE_OK);
	assert_true(id3 > ids[1]);
	if (f->pg) {
		snprintf(dir, sizeof(dir), "%s/fetched", f->dir);
		assert_int_equal(store_message_fetch(f->st, "m1", dir), STORE_OK);
	}
	/* a second run finds the target in use and copies nothing */
	assert_int_equal(store_copy(src, f->st, f->dir, &rep, err, sizeof(err)),
	    STORE_DUPLICATE);
	store_close(src);
}

/* The tenant's request budget, shared by two nodes (PostgreSQL only). */
static void
test_budget(void **state)
{
	struct fixture *f = *state;
	struct store *other;
	char err[256] = "";
	time_t oldest = 0;

	open_latest(f);
	if (!f->pg) {           /* one node counts in memory */
		assert_int_equal(store_budget_take(f->st, "acme", 100, 10, 2,
		    &oldest), STORE_ERROR);
		return;
	}
	other = store_open(f->db, err, sizeof(err));
	assert_non_null(other);
	assert_int_equal(store_budget_take(f->st, "acme", 100, 10, 2, &oldest),
	    STORE_OK);
	assert_int_equal(store_budget_take(other, "acme", 101, 10, 2, &oldest),
	    STORE_OK);
	/* the two nodes together are at the cap */
	assert_int_equal(store_budget_take(f->st, "acme", 102, 10, 2, &oldest),
	    STORE_NOT_FOUND);
	assert_int_equal(oldest, 100);
	/* another tenant has a budget of its own */
	assert_int_equal(store_budget_take(other, "globex", 102, 10, 2,
	    &oldest), STORE_OK);
	/* the window slides: 100 is out at 110, 101 still counts */
	assert_int_equal(store_budget_take(other, "acme", 110, 10, 2, &oldest),
	    STORE_OK);
	assert_int_equal(store_budget_take(f->st, "acme", 110, 10, 2, &oldest),
	    STORE_NOT_FOUND);
	assert_int_equal(oldest, 101);
	other = store_close(other);
}

/* The SQLite driver's statement cache (issue 16): a query asked for again
 * gets its compiled statement back reset and unbound; the same query used
 * inside itself gets a second statement; more queries than the cache holds
 * still run. */
static void
test_stmt_cache(void **state)
{
	struct fixture *f = *state;
	const struct store_driver *d = &store_sqlite_driver;
	struct store_stmt *outer, *inner, *again, *first;
	char err[256], sql[64];
	void *conn;
	int i;

	conn = d->open(f->db, STORE_SCHEMA_LATEST, err, sizeof(err));
	assert_non_null(conn);
	outer = d->prepare(conn, "SELECT ?1");
	assert_non_null(outer);
	d->bind_int(outer, 1, 7);
	assert_int_equal(d->step(outer), STORE_STEP_ROW);
	/* nested: its own statement, not the busy cached one */
	inner = d->prepare(conn, "SELECT ?1");
	assert_non_null(inner);
	assert_ptr_not_equal(inner, outer);
	d->bind_int(inner, 1, 8);
	assert_int_equal(d->step(inner), STORE_STEP_ROW);
	assert_int_equal(d->col_int(inner, 0), 8);
	d->finalize(inner);
	assert_int_equal(d->col_int(outer, 0), 7);      /* untouched */
	d->finalize(outer);
	/* the cached one again: reset, bindings cleared */
	first = outer;
	again = d->prepare(conn, "SELECT ?1");
	assert_ptr_equal(again, first);
	assert_int_equal(d->step(again), STORE_STEP_ROW);
	assert_true(d->col_null(again, 0));
	d->finalize(again);
	/* more distinct queries than slots: each still right */
	for (i = 0; i < 400; i++) {
		snprintf(sql, sizeof(sql), "SELECT %d + ?1", i);
		again = d->prepare(conn, sql);
		assert_non_null(again);
		d->bind_int(again, 1, 1);
		assert_int_equal(d->step(again), STORE_STEP_ROW);
		assert_int_equal(d->col_int(again, 0), i + 1);
		d->finalize(again);
	}
	/* a failed statement leaves the cache usable */
	assert_null(d->prepare(conn, "SELEC nonsense"));
	again = d->prepare(conn, "SELECT ?1");
	assert_ptr_equal(again, first);
	d->finalize(again);
	d->close(conn);
}

/* store_job_counts_by_tenant() callback: "tenant/state=count;" lines. */
static void
count_line(const char *tenant, enum store_state state, uint64_t count,
    void *arg)
{
	char *out = arg;

	snprintf(out + strlen(out), 512 - strlen(out), "%s/%s=%llu;", tenant,
	    store_state_name(state), (unsigned long long)count);
}

/* Jobs per tenant and state; the oldest queued job's creation time. */
static void
test_tenant_counts_oldest(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[4];
	enum store_status res[4];
	int64_t ids[4];
	char out[512] = "";
	time_t oldest = 1;

	open_latest(f);
	assert_int_equal(store_job_oldest_queued(f->st, &oldest), STORE_OK);
	assert_int_equal(oldest, 0);
	j[0] = job_new("beta", "<1@x>");
	j[1] = job_new("acme", "<2@x>");
	j[2] = job_new("acme", "<3@x>");
	j[3] = job_new("acme", "<4@x>");
	j[3].state = STORE_SKIPPED;
	assert_int_equal(store_jobs_add(f->st, j, 4, res, ids, NULL, NULL),
	    STORE_OK);
	exec_sql(f->db, "UPDATE jobs SET created = 1000 WHERE message_id ="
	    " '<3@x>'; UPDATE jobs SET created = 500 WHERE message_id ="
	    " '<4@x>'");
	assert_int_equal(store_job_counts_by_tenant(f->st, count_line, out),
	    STORE_OK);
	assert_string_equal(out, "acme/queued=2;acme/skipped=1;beta/queued=1;");
	/* the skipped job is older, but not queued */
	assert_int_equal(store_job_oldest_queued(f->st, &oldest), STORE_OK);
	assert_int_equal(oldest, 1000);
}

/* store_jobs_purge() callback: "name;" per spool file. */
static void
purge_name(const char *name, void *arg)
{
	char *out = arg;

	snprintf(out + strlen(out), 256 - strlen(out), "%s;", name);
}

/* Retention: finished jobs past the cut-off go in batches, with a shared
 * store's message bytes; the thread index keeps what threading needs;
 * queued, running and waiting jobs stay whatever their age. */
static void
test_purge(void **state)
{
	struct fixture *f = *state;
	struct store_job_new j[9];
	struct store_result r;
	struct store_job *got;
	enum store_status res[9];
	int64_t ids[9], ticket = 0;
	uint64_t counts[STORE_STATE_COUNT];
	char names[256] = "", path[PATH_MAX + 32], err[256];
	unsigned n = 1, total = 0, calls = 0;
	struct store *other;
	int64_t id = 0;

	open_latest(f);
	j[0] = job_new("acme", "<done-old@x>");      /* reached ticket 77 */
	j[0].conv_key = "0123456789abcdef0123456789abcdef";
	j[0].spool = "a.eml";
	j[1] = job_new("acme", "<skipped-old@x>");
	j[1].state = STORE_SKIPPED;
	j[2] = job_new("acme", "<failed-old@x>");
	j[2].spool = "c.eml";
	j[3] = job_new("acme", "<queued-old@x>");
	j[4] = job_new("acme", "<running-old@x>");
	j[5] = job_new("acme", "<waiting-old@x>");
	j[6] = job_new("acme", "<done-new@x>");
	j[7] = job_new("acme", "<done-shared@x>");   /* its spool file is also */
	j[7].spool = "shared.eml";
	j[8] = job_new("acme", "<queued-shared@x>"); /* ... a queued job's */
	j[8].spool = "shared.eml";
	assert_int_equal(store_jobs_add(f->st, j, 9, res, ids, NULL, NULL),
	    STORE_OK);
	memset(&r, 0, sizeof(r));
	r.ticket_id = 77;
	r.result = "created";
	r.summary = "Printer on fire";
	assert_int_equal(store_job_done(f->st, ids[0], &r), STORE_OK);
	r.ticket_id = 78;
	r.summary = NULL;
	assert_int_equal(store_job_done(f->st, ids[6], &r), STORE_OK);
	assert_int_equal(store_job_done(f->st, ids[7], &r), STORE_OK);
	assert_int_equal(store_job_finish(f->st, ids[2], STORE_FAILED, "bad"),
	    STORE_OK);
	assert_int_equal(store_job_finish(f->st, ids[5], STORE_WAITING, "token"),
	    STORE_OK);
	exec_sql(f->db, "UPDATE jobs SET state = 'running' WHERE message_id ="
	    " '<running-old@x>'");
	exec_sql(f->db, "UPDATE jobs SET updated = 100 WHERE message_id <>"
	    " '<done-new@x>'");
	if (f->pg)
		exec_sql(f->db, "INSERT INTO messages (name, size, created, data)"
		    " VALUES ('c.eml', 1, 1, 'c'), ('shared.eml', 1, 1, 's'),"
		    " ('orphan.eml', 1, 1, 'o'), ('fresh-orphan.eml', 1, 5000,"
		    " 'f')");

	assert_int_equal(store_jobs_purge(f->st, 1000, 0, &n, NULL, NULL),
	    STORE_OK);
	assert_int_equal(n, 0);
	do {    /* 4 due, 3 per batch: 3, then 1 */
		assert_int_equal(store_jobs_purge(f->st, 1000, 3, &n, purge_name,
		    names), STORE_OK);
		total += n;
		calls++;
	} while (n == 3);
	assert_int_equal(total, 4);
	assert_int_equal(calls, 2);
	assert_non_null(strstr(names, "a.eml;"));
	assert_non_null(strstr(names, "c.eml;"));
	assert_non_null(strstr(names, "shared.eml;"));
	assert_int_equal(store_jobs_purge(f->st, 1000, 3, &n, NULL, NULL),
	    STORE_OK);
	assert_int_equal(n, 0);
	/* a purge with nothing due leaves no transaction open: another
	 * connection can write */
	other = store_open(f->db, err, sizeof(err));
	assert_non_null(other);
	j[0] = job_new("acme", "<after-purge@x>");
	assert_int_equal(store_jobs_add(other, j, 1, res, &id, NULL, NULL),
	    STORE_OK);
	other = store_close(other);
	assert_int_equal(store_job_get(f->st, id, &got), STORE_OK);
	store_job_free(got);

	assert_int_equal(store_job_counts(f->st, counts), STORE_OK);
	assert_true(counts[STORE_DONE] == 1 && counts[STORE_SKIPPED] == 0 &&
	    counts[STORE_FAILED] == 0 && counts[STORE_QUEUED] == 3 &&
	    counts[STORE_RUNNING] == 1 && counts[STORE_WAITING] == 1);
	assert_int_equal(store_job_get(f->st, ids[0], &got), STORE_NOT_FOUND);
	assert_int_equal(store_job_get(f->st, ids[6], &got), STORE_OK);
	store_job_free(got);

	/* threading still finds the deleted job's ticket */
	assert_int_equal(store_ticket_by_msgid(f->st, "acme", "<done-old@x>",
	    &ticket), STORE_OK);
	assert_int_equal(ticket, 77);
	assert_int_equal(store_ticket_by_msgid(f->st, "other", "<done-old@x>",
	    &ticket), STORE_NOT_FOUND);
	ticket = 0;
	assert_int_equal(store_ticket_by_conv(f->st, "acme",
	    "0123456789abcdef0123456789abcdef", &ticket), STORE_OK);
	assert_int_equal(ticket, 77);
	/* and a later append to that ticket keeps its summary */
	r.ticket_id = 77;
	r.result = "appended";
	assert_int_equal(store_job_done(f->st, ids[3], &r), STORE_OK);
	assert_int_equal(store_job_get(f->st, ids[3], &got), STORE_OK);
	assert_string_equal(got->summary, "Printer on fire");
	store_job_free(got);

	/* a shared store's bytes go with the job, unless a kept job needs them */
	if (f->pg) {
		snprintf(path, sizeof(path), "%s/fetched", f->dir);
		assert_int_equal(store_message_fetch(f->st, "c.eml", path),
		    STORE_NOT_FOUND);
		assert_int_equal(store_message_fetch(f->st, "shared.eml", path),
		    STORE_OK);
		/* bytes no job ever named go once older than the cut-off
		 * (an end of message that failed after writing them) */
		assert_int_equal(store_message_fetch(f->st, "orphan.eml", path),
		    STORE_NOT_FOUND);
		assert_int_equal(store_message_fetch(f->st, "fresh-orphan.eml",
		    path), STORE_OK);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TP(fn) cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

int
main(void)
{
	const struct CMUnitTest pg_tests[] = {
		TP(test_fresh_latest),
		TP(test_upgrade_keeps_rows),
		TP(test_newer_refused),
		TP(test_open_error),
		TP(test_jobs_add),
		TP(test_jobs_add_atomic),
		TP(test_jobs_add_group),
		TP(test_reader_lookups),
		TP(test_job_get_fields),
		TP(test_list_and_counts),
		TP(test_conv),
		TP(test_sender_creates),
		TP(test_spool_used),
		TP(test_claim_and_fenced_posting),
		TP(test_claim_conversation_order),
		TP(test_state_names),
		TP(test_dedup_key),
		TP(test_requeue),
		TP(test_participants),
		TP(test_two_handles),
		TP(test_messages),
		TP(test_token_lock),
		TP(test_copy),
		TP(test_budget),
		TP(test_tenant_counts_oldest),
		TP(test_purge),
	};
	const struct CMUnitTest tests[] = {
		T(test_fresh_latest),
		T(test_upgrade_keeps_rows),
		T(test_newer_refused),
		T(test_open_error),
		T(test_jobs_add),
		T(test_jobs_add_atomic),
		T(test_jobs_add_group),
		T(test_reader_lookups),
		T(test_job_get_fields),
		T(test_list_and_counts),
		T(test_conv),
		T(test_sender_creates),
		T(test_spool_used),
		T(test_claim_and_fenced_posting),
		T(test_claim_conversation_order),
		T(test_reset_running),
		T(test_state_names),
		T(test_dedup_key),
		T(test_requeue),
		T(test_participants),
		T(test_two_handles),
		T(test_messages),
		T(test_token_lock),
		T(test_concurrent_open),
		T(test_copy),
		T(test_budget),
		T(test_stmt_cache),
		T(test_tenant_counts_oldest),
		T(test_purge),
	};

	const char *pg = getenv("HALO_TEST_PG");
	int failed;

	failed = cmocka_run_group_tests_name("store-sqlite", tests, NULL, NULL);
	if (pg == NULL || *pg == '\0') {
		printf("test_store: HALO_TEST_PG not set: PostgreSQL not"
		    " tested (make check-unit starts a server)\n");
		return failed;
	}
	return failed + cmocka_run_group_tests_name("store-postgresql",
	    pg_tests, NULL, NULL);
}
