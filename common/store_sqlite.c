/*
 * store_sqlite.c - the job store on SQLite (WAL, synchronous=FULL).
 *
 * One connection per handle, serialised by a mutex: end-of-message work is a
 * handful of indexed statements, and a commit must be on disk before the
 * milter answers, so there is nothing to gain from concurrent writers.
 */
#include "store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

struct store {
	sqlite3 *db;
	pthread_mutex_t lock;
};

/* The jobs table's columns up to schema v6 (the v7 rebuild copies them). */
#define STORE_V6_COLUMNS "id, tenant, message_id, state, reason, queue_id," \
	" env_from, from_addr, subject, recipients, agent, mode, conv_key, spool," \
	" sha256, size, no_create, starts_thread, attempts, created, updated," \
	" next_attempt, ticket_id, action_id, result, contact, client," \
	" post_started, lease_until, sender, contact_id, client_id, summary," \
	" ticket_status"

/* Schema migrations: index i brings the schema from version i to i + 1. */
static const char *const store_migrations[] = {
	/* 1: jobs and the conversation index */
	"CREATE TABLE jobs ("
	" id INTEGER PRIMARY KEY,"
	" tenant TEXT NOT NULL,"
	" message_id TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" reason TEXT,"
	" queue_id TEXT, env_from TEXT, from_addr TEXT, subject TEXT,"
	" recipients TEXT, agent TEXT, mode TEXT, conv_key TEXT,"
	" spool TEXT, sha256 TEXT, size INTEGER NOT NULL DEFAULT 0,"
	" no_create INTEGER NOT NULL DEFAULT 0,"
	" starts_thread INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL, updated INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE (tenant, message_id));"
	"CREATE INDEX jobs_due ON jobs (state, next_attempt);"
	"CREATE INDEX jobs_spool ON jobs (spool);"
	"CREATE TABLE conversations ("
	" message_id TEXT PRIMARY KEY,"
	" conv_key TEXT NOT NULL,"
	" created INTEGER NOT NULL);",
	/* 2: per-sender creation counting for loop protection */
	"CREATE INDEX jobs_sender ON jobs (tenant, from_addr, created)"
	" WHERE starts_thread = 1;",
	/* 3: the worker: results, leases, posting marker, tokens, sender cache */
	"ALTER TABLE jobs ADD COLUMN ticket_id INTEGER;"
	"ALTER TABLE jobs ADD COLUMN action_id INTEGER;"
	"ALTER TABLE jobs ADD COLUMN result TEXT;"
	"ALTER TABLE jobs ADD COLUMN contact TEXT;"
	"ALTER TABLE jobs ADD COLUMN client TEXT;"
	"ALTER TABLE jobs ADD COLUMN post_started INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX jobs_conv ON jobs (tenant, conv_key) WHERE ticket_id IS NOT NULL;"
	"CREATE TABLE tokens ("
	" tenant TEXT NOT NULL, agent TEXT NOT NULL,"
	" sealed TEXT, state TEXT NOT NULL,"
	" last_refresh INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL,"
	" PRIMARY KEY (tenant, agent));"
	"CREATE TABLE senders ("
	" tenant TEXT NOT NULL, key TEXT NOT NULL, kind INTEGER NOT NULL,"
	" user_id INTEGER, site_id INTEGER, client_id INTEGER,"
	" name TEXT, client_name TEXT, expires INTEGER NOT NULL,"
	" PRIMARY KEY (tenant, key));",
	/* 4: enrollments (one-time codes; hashes only, never the code) */
	"CREATE TABLE enrollments ("
	" id INTEGER PRIMARY KEY,"
	" tenant TEXT NOT NULL, agent TEXT NOT NULL,"
	" code_hash TEXT NOT NULL UNIQUE,"
	" created INTEGER NOT NULL, expires INTEGER NOT NULL,"
	" used INTEGER NOT NULL DEFAULT 0,"
	" state_hash TEXT UNIQUE, verifier_sealed TEXT,"
	" state_expires INTEGER NOT NULL DEFAULT 0,"
	" result TEXT, finished INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX enrollments_agent ON enrollments (tenant, agent);",
	/* 5: what the Outlook pane shows: how the sender matched (with ids)
	 * and the ticket's summary, kept locally so the status API never
	 * calls Halo */
	"ALTER TABLE jobs ADD COLUMN sender TEXT;"
	"ALTER TABLE jobs ADD COLUMN contact_id INTEGER;"
	"ALTER TABLE jobs ADD COLUMN client_id INTEGER;"
	"ALTER TABLE jobs ADD COLUMN summary TEXT;"
	"CREATE INDEX jobs_ticket ON jobs (tenant, ticket_id)"
	" WHERE summary IS NOT NULL;",
	/* 6: the ticket's open/closed state when the mail was logged */
	"ALTER TABLE jobs ADD COLUMN ticket_status TEXT;",
	/* 7: who may write (issue 11): a job is one (tenant, Message-ID,
	 * dedup key) -- the key digests the sender and the content, so a mail
	 * that pre-empts a Message-ID is its own job --, how the From: address
	 * was authenticated, and how an agent's outgoing mail was. SQLite
	 * cannot drop a UNIQUE constraint: the table is rebuilt. Older rows
	 * keep the key '' (store_job_find_key matches them for any key). */
	"CREATE TABLE jobs_v7 ("
	" id INTEGER PRIMARY KEY,"
	" tenant TEXT NOT NULL,"
	" message_id TEXT NOT NULL,"
	" state TEXT NOT NULL,"
	" reason TEXT,"
	" queue_id TEXT, env_from TEXT, from_addr TEXT, subject TEXT,"
	" recipients TEXT, agent TEXT, mode TEXT, conv_key TEXT,"
	" spool TEXT, sha256 TEXT, size INTEGER NOT NULL DEFAULT 0,"
	" no_create INTEGER NOT NULL DEFAULT 0,"
	" starts_thread INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL, updated INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL DEFAULT 0,"
	" ticket_id INTEGER, action_id INTEGER, result TEXT, contact TEXT,"
	" client TEXT, post_started INTEGER NOT NULL DEFAULT 0,"
	" lease_until INTEGER NOT NULL DEFAULT 0,"
	" sender TEXT, contact_id INTEGER, client_id INTEGER, summary TEXT,"
	" ticket_status TEXT,"
	" dedup_key TEXT NOT NULL DEFAULT '',"
	" sender_auth TEXT, outbound_auth TEXT,"
	" UNIQUE (tenant, message_id, dedup_key));"
	"INSERT INTO jobs_v7 (" STORE_V6_COLUMNS ") SELECT " STORE_V6_COLUMNS
	" FROM jobs;"
	"DROP TABLE jobs;"
	"ALTER TABLE jobs_v7 RENAME TO jobs;"
	"CREATE INDEX jobs_due ON jobs (state, next_attempt);"
	"CREATE INDEX jobs_spool ON jobs (spool);"
	"CREATE INDEX jobs_sender ON jobs (tenant, from_addr, created)"
	" WHERE starts_thread = 1;"
	"CREATE INDEX jobs_conv ON jobs (tenant, conv_key) WHERE ticket_id IS NOT NULL;"
	"CREATE INDEX jobs_ticket ON jobs (tenant, ticket_id)"
	" WHERE summary IS NOT NULL;",
	/* 8: who may join a ticket (issue 11). The
	 * addresses on mail logged to each ticket (From, To, Cc) and each
	 * ticket's user and client, known locally: from the create that made
	 * it ("created") or a GET of it ("halo", as old as UPDATED says). */
	"CREATE TABLE participants ("
	" tenant TEXT NOT NULL, ticket_id INTEGER NOT NULL,"
	" address TEXT NOT NULL, created INTEGER NOT NULL,"
	" PRIMARY KEY (tenant, ticket_id, address));"
	"CREATE TABLE ticket_owners ("
	" tenant TEXT NOT NULL, ticket_id INTEGER NOT NULL,"
	" user_id INTEGER NOT NULL DEFAULT 0,"
	" client_id INTEGER NOT NULL DEFAULT 0,"
	" source TEXT NOT NULL, updated INTEGER NOT NULL,"
	" PRIMARY KEY (tenant, ticket_id));",
	/* 9: the interactive pane: agents' sessions (keyed hashes of their
	 * ids only) and their defaults */
	"CREATE TABLE pane_sessions ("
	" id_hash TEXT PRIMARY KEY,"
	" tenant TEXT NOT NULL, agent TEXT NOT NULL,"
	" agent_id INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL, expires INTEGER NOT NULL);"
	"CREATE INDEX pane_sessions_agent ON pane_sessions (tenant, agent);"
	"CREATE TABLE pane_defaults ("
	" tenant TEXT NOT NULL, agent TEXT NOT NULL,"
	" tickettype_id INTEGER NOT NULL DEFAULT 0,"
	" outcome TEXT, attachments INTEGER NOT NULL DEFAULT 1,"
	" internal INTEGER NOT NULL DEFAULT 0,"
	" updated INTEGER NOT NULL,"
	" PRIMARY KEY (tenant, agent));",
};
#define STORE_NMIGRATIONS ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

static const char *const store_state_names[STORE_STATE_COUNT] = {
	"queued", "skipped", "running", "done", "failed", "waiting"
};

/* Name of a state. */
const char *
store_state_name(enum store_state state)
{
	if ((unsigned)state < sizeof(store_state_names) / sizeof(store_state_names[0]))
		return store_state_names[state];
	return "unknown";
}

/* State for a name, or -1. */
int
store_state_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(store_state_names) / sizeof(store_state_names[0]); i++)
		if (name != NULL && strcmp(name, store_state_names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *const store_mode_names[] = {
	[STORE_MODE_INTAKE] = "intake",
	[STORE_MODE_THREAD_ONLY] = "thread-only",
	[STORE_MODE_OUTBOUND] = "outbound"
};

/* The mode for a jobs.mode name; STORE_MODE_UNKNOWN for others. */
enum store_mode
store_mode_parse(const char *name)
{
	size_t i;

	for (i = 1; i < sizeof(store_mode_names) / sizeof(store_mode_names[0]); i++)
		if (name != NULL && strcmp(name, store_mode_names[i]) == 0)
			return (enum store_mode)i;
	return STORE_MODE_UNKNOWN;
}

/* Newest schema version. */
int
store_schema_latest(void)
{
	return STORE_NMIGRATIONS;
}

/* Read PRAGMA user_version; -1 on error. */
static int
store_version_read(sqlite3 *db)
{
	sqlite3_stmt *stmt;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/* Apply migrations up to MAX_VERSION, each in its own transaction. */
static int
store_migrate(sqlite3 *db, int max_version, char *err, size_t errsz)
{
	int v = store_version_read(db);
	char *msg = NULL;
	char sql[64];

	if (v < 0) {
		snprintf(err, errsz, "cannot read schema version: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (v > STORE_NMIGRATIONS) {
		snprintf(err, errsz, "schema version %d is newer than this build (%d)",
		    v, STORE_NMIGRATIONS);
		return -1;
	}
	for (; v < max_version && v < STORE_NMIGRATIONS; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, store_migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errsz, "migration to version %d failed: %s",
			    v + 1, msg ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

/* Open and migrate up to MAX_VERSION. */
struct store *
store_open_version(const char *path, int max_version, char *err, size_t errsz)
{
	struct store *st;
	char *msg = NULL;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "cannot open");
		sqlite3_close(st->db);
		free(st);
		return NULL;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (sqlite3_exec(st->db, "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = FULL;"
	    "PRAGMA foreign_keys = ON;", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", path, msg ? msg : "pragma failed");
		sqlite3_free(msg);
		sqlite3_close(st->db);
		free(st);
		return NULL;
	}
	if (store_migrate(st->db, max_version, err, errsz) != 0) {
		sqlite3_close(st->db);
		free(st);
		return NULL;
	}
	pthread_mutex_init(&st->lock, NULL);
	return st;
}

/* Open and migrate to the newest schema. */
struct store *
store_open(const char *path, char *err, size_t errsz)
{
	return store_open_version(path, STORE_NMIGRATIONS, err, errsz);
}

/* Close the store. */
struct store *
store_close(struct store *st)
{
	if (st == NULL)
		return NULL;
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
	return NULL;
}

/* Current schema version. */
int
store_schema_version(struct store *st)
{
	int v;

	pthread_mutex_lock(&st->lock);
	v = store_version_read(st->db);
	pthread_mutex_unlock(&st->lock);
	return v;
}

/* Bind text or NULL. */
static int
store_bind_text(sqlite3_stmt *stmt, int idx, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(stmt, idx);
	return sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT);
}

/* Look up the job id for (tenant, message_id) and, when DEDUP_KEY is not
 * NULL, that key (or a row older than keys); lock held by caller. */
static enum store_status
store_find_locked(struct store *st, const char *tenant, const char *message_id,
    const char *dedup_key, int64_t *id)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	if (sqlite3_prepare_v2(st->db, "SELECT id FROM jobs WHERE tenant = ?1"
	    " AND message_id = ?2 AND (?3 IS NULL OR dedup_key IN (?3, ''))"
	    " ORDER BY id LIMIT 1", -1, &stmt, NULL) != SQLITE_OK)
		return STORE_ERROR;
	store_bind_text(stmt, 1, tenant);
	store_bind_text(stmt, 2, message_id);
	store_bind_text(stmt, 3, dedup_key);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		*id = sqlite3_column_int64(stmt, 0);
		rc = STORE_OK;
	} else if (step == SQLITE_DONE) {
		rc = STORE_NOT_FOUND;
	}
	sqlite3_finalize(stmt);
	return rc;
}

/* Insert one job; lock and transaction held by caller. */
static enum store_status
store_insert_locked(struct store *st, const struct store_job_new *j,
    time_t now, int64_t *id)
{
	sqlite3_stmt *stmt;
	int step;

	if (sqlite3_prepare_v2(st->db, "INSERT OR IGNORE INTO jobs (tenant,"
	    " message_id, state, reason, queue_id, env_from, from_addr, subject,"
	    " recipients, agent, mode, conv_key, spool, sha256, size, no_create,"
	    " starts_thread, created, updated, dedup_key, sender_auth,"
	    " outbound_auth) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18,"
	    " ?19, ?20, ?21)", -1, &stmt, NULL) != SQLITE_OK)
		return STORE_ERROR;
	store_bind_text(stmt, 1, j->tenant);
	store_bind_text(stmt, 2, j->message_id);
	store_bind_text(stmt, 3, store_state_name(j->state));
	store_bind_text(stmt, 4, j->reason);
	store_bind_text(stmt, 5, j->queue_id);
	store_bind_text(stmt, 6, j->env_from);
	store_bind_text(stmt, 7, j->from_addr);
	store_bind_text(stmt, 8, j->subject);
	store_bind_text(stmt, 9, j->recipients);
	store_bind_text(stmt, 10, j->agent);
	store_bind_text(stmt, 11, j->mode);
	store_bind_text(stmt, 12, j->conv_key);
	store_bind_text(stmt, 13, j->spool);
	store_bind_text(stmt, 14, j->sha256);
	sqlite3_bind_int64(stmt, 15, (sqlite3_int64)j->size);
	sqlite3_bind_int(stmt, 16, j->no_create);
	sqlite3_bind_int(stmt, 17, j->starts_thread);
	sqlite3_bind_int64(stmt, 18, (sqlite3_int64)now);
	store_bind_text(stmt, 19, j->dedup_key ? j->dedup_key : "");
	store_bind_text(stmt, 20, j->sender_auth);
	store_bind_text(stmt, 21, j->outbound_auth);
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (step != SQLITE_DONE)
		return STORE_ERROR;
	if (sqlite3_changes(st->db) == 0)
		return store_find_locked(st, j->tenant, j->message_id,
		    j->dedup_key ? j->dedup_key : "", id) == STORE_OK ?
		    STORE_DUPLICATE : STORE_ERROR;
	*id = sqlite3_last_insert_rowid(st->db);
	return STORE_OK;
}

/* Record a conversation key; lock and transaction held by caller. */
static int
store_conv_put_locked(struct store *st, const char *msgid, const char *key,
    time_t now)
{
	sqlite3_stmt *stmt;
	int step;

	if (sqlite3_prepare_v2(st->db, "INSERT OR IGNORE INTO conversations"
	    " (message_id, conv_key, created) VALUES (?1, ?2, ?3)", -1, &stmt,
	    NULL) != SQLITE_OK)
		return -1;
	store_bind_text(stmt, 1, msgid);
	store_bind_text(stmt, 2, key);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)now);
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return step == SQLITE_DONE ? 0 : -1;
}

/* Add jobs in one transaction (see store.h). */
enum store_status
store_jobs_add(struct store *st, const struct store_job_new *jobs, size_t n,
    enum store_status *results, int64_t *ids, const char *conv_msgid,
    const char *conv_key)
{
	time_t now = time(NULL);
	size_t i;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail_unlock;
	for (i = 0; i < n; i++) {
		results[i] = store_insert_locked(st, &jobs[i], now, &ids[i]);
		if (results[i] == STORE_ERROR)
			goto fail;
	}
	if (conv_msgid != NULL && conv_key != NULL &&
	    store_conv_put_locked(st, conv_msgid, conv_key, now) != 0)
		goto fail;
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	pthread_mutex_unlock(&st->lock);
	return STORE_OK;
fail:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
fail_unlock:
	pthread_mutex_unlock(&st->lock);
	return STORE_ERROR;
}

/* Find a job by its idempotency key. */
enum store_status
store_job_find(struct store *st, const char *tenant, const char *message_id,
    int64_t *id)
{
	enum store_status rc;

	pthread_mutex_lock(&st->lock);
	rc = store_find_locked(st, tenant, message_id, NULL, id);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Find a job by (tenant, Message-ID, dedup key). */
enum store_status
store_job_find_key(struct store *st, const char *tenant,
    const char *message_id, const char *dedup_key, int64_t *id)
{
	enum store_status rc;

	pthread_mutex_lock(&st->lock);
	rc = store_find_locked(st, tenant, message_id,
	    dedup_key ? dedup_key : "", id);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

#define STORE_JOB_COLUMNS "id, tenant, message_id, state, reason, queue_id," \
	" env_from, from_addr, subject, recipients, agent, mode, conv_key, spool," \
	" sha256, size, no_create, starts_thread, attempts, created, updated," \
	" next_attempt, ticket_id, action_id, result, contact, client, post_started," \
	" lease_until, sender, contact_id, client_id, summary, ticket_status," \
	" dedup_key, sender_auth, outbound_auth"

/* Copy a text column (NULL stays NULL). */
static char *
store_col_dup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *s = sqlite3_column_text(stmt, col);

	return s ? strdup((const char *)s) : NULL;
}

/* Build a job from a row selected with STORE_JOB_COLUMNS. */
static struct store_job *
store_job_from_row(sqlite3_stmt *stmt)
{
	struct store_job *j = calloc(1, sizeof(*j));
	const unsigned char *state;

	if (j == NULL)
		return NULL;
	j->id = sqlite3_column_int64(stmt, 0);
	j->tenant = store_col_dup(stmt, 1);
	j->message_id = store_col_dup(stmt, 2);
	state = sqlite3_column_text(stmt, 3);
	j->state = (enum store_state)store_state_parse((const char *)state);
	j->reason = store_col_dup(stmt, 4);
	j->queue_id = store_col_dup(stmt, 5);
	j->env_from = store_col_dup(stmt, 6);
	j->from_addr = store_col_dup(stmt, 7);
	j->subject = store_col_dup(stmt, 8);
	j->recipients = store_col_dup(stmt, 9);
	j->agent = store_col_dup(stmt, 10);
	j->mode = store_col_dup(stmt, 11);
	j->job_mode = store_mode_parse(j->mode);
	j->conv_key = store_col_dup(stmt, 12);
	j->spool = store_col_dup(stmt, 13);
	j->sha256 = store_col_dup(stmt, 14);
	j->size = (uint64_t)sqlite3_column_int64(stmt, 15);
	j->no_create = sqlite3_column_int(stmt, 16) != 0;
	j->starts_thread = sqlite3_column_int(stmt, 17) != 0;
	j->attempts = sqlite3_column_int(stmt, 18);
	j->created = (time_t)sqlite3_column_int64(stmt, 19);
	j->updated = (time_t)sqlite3_column_int64(stmt, 20);
	j->next_attempt = (time_t)sqlite3_column_int64(stmt, 21);
	j->ticket_id = sqlite3_column_int64(stmt, 22);
	j->action_id = sqlite3_column_int64(stmt, 23);
	j->result = store_col_dup(stmt, 24);
	j->contact = store_col_dup(stmt, 25);
	j->client = store_col_dup(stmt, 26);
	j->post_started = sqlite3_column_int(stmt, 27) != 0;
	j->lease_until = (time_t)sqlite3_column_int64(stmt, 28);
	j->sender = store_col_dup(stmt, 29);
	j->contact_id = sqlite3_column_int64(stmt, 30);
	j->client_id = sqlite3_column_int64(stmt, 31);
	j->summary = store_col_dup(stmt, 32);
	j->ticket_status = store_col_dup(stmt, 33);
	j->dedup_key = store_col_dup(stmt, 34);
	j->sender_auth = store_col_dup(stmt, 35);
	j->outbound_auth = store_col_dup(stmt, 36);
	return j;
}

/* Free a job. */
struct store_job *
store_job_free(struct store_job *j)
{
	if (j == NULL)
		return NULL;
	free(j->tenant); free(j->message_id); free(j->reason); free(j->queue_id);
	free(j->env_from); free(j->from_addr); free(j->subject);
	free(j->recipients); free(j->agent); free(j->mode); free(j->conv_key);
	free(j->spool); free(j->sha256);
	free(j->result); free(j->contact); free(j->client);
	free(j->sender); free(j->summary); free(j->ticket_status);
	free(j->dedup_key); free(j->sender_auth); free(j->outbound_auth);
	free(j);
	return NULL;
}

/* Load one job by id. */
enum store_status
store_job_get(struct store *st, int64_t id, struct store_job **out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_JOB_COLUMNS
	    " FROM jobs WHERE id = ?1", -1, &stmt, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, id);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			*out = store_job_from_row(stmt);
			rc = *out ? STORE_OK : STORE_ERROR;
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Iterate over jobs, newest first. */
enum store_status
store_job_list(struct store *st, int state, unsigned limit, store_job_fn fn,
    void *arg)
{
	sqlite3_stmt *stmt;
	struct store_job *j;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_JOB_COLUMNS " FROM jobs"
	    " WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC"
	    " LIMIT ?2", -1, &stmt, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	if (state >= 0)
		store_bind_text(stmt, 1, store_state_name((enum store_state)state));
	sqlite3_bind_int64(stmt, 2, limit ? (sqlite3_int64)limit : -1);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		j = store_job_from_row(stmt);
		if (j == NULL)
			break;
		fn(j, arg);
		store_job_free(j);
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Count jobs per state. */
enum store_status
store_job_counts(struct store *st, uint64_t counts[STORE_STATE_COUNT])
{
	sqlite3_stmt *stmt;
	int step, s;

	memset(counts, 0, STORE_STATE_COUNT * sizeof(counts[0]));
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT state, count(*) FROM jobs"
	    " GROUP BY state", -1, &stmt, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		s = store_state_parse((const char *)sqlite3_column_text(stmt, 0));
		if (s >= 0 && s < STORE_STATE_COUNT)
			counts[s] = (uint64_t)sqlite3_column_int64(stmt, 1);
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Conversation key for a Message-ID. */
enum store_status
store_conv_get(struct store *st, const char *message_id, char key[33])
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	const unsigned char *k;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT conv_key FROM conversations"
	    " WHERE message_id = ?1", -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, message_id);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			k = sqlite3_column_text(stmt, 0);
			if (k != NULL && strlen((const char *)k) == 32) {
				memcpy(key, k, 33);
				rc = STORE_OK;
			}
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Count a sender's thread-starting jobs since a time. */
enum store_status
store_sender_creates(struct store *st, const char *tenant, const char *sender,
    time_t since, unsigned *count)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;

	*count = 0;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM jobs WHERE"
	    " tenant = ?1 AND from_addr = ?2 AND created >= ?3 AND"
	    " starts_thread = 1 AND state <> 'skipped'", -1, &stmt,
	    NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		store_bind_text(stmt, 2, sender);
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)since);
		if (sqlite3_step(stmt) == SQLITE_ROW) {
			*count = (unsigned)sqlite3_column_int64(stmt, 0);
			rc = STORE_OK;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Is a spool file referenced by any job? */
enum store_status
store_spool_used(struct store *st, const char *name, bool *used)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*used = false;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM jobs WHERE spool = ?1"
	    " LIMIT 1", -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, name);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW || step == SQLITE_DONE) {
			*used = step == SQLITE_ROW;
			rc = STORE_OK;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Run one write statement with bound arguments under the lock.
 * FMT letters: 's' text, 'i' int64, 'n' NULL. Sets *CHANGES when not NULL. */
static enum store_status
store_exec(struct store *st, const char *sql, const char *fmt, int *changes, ...)
{
	sqlite3_stmt *stmt;
	va_list ap;
	int step, i;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	va_start(ap, changes);
	for (i = 0; fmt[i] != '\0'; i++) {
		switch (fmt[i]) {
		case 's': store_bind_text(stmt, i + 1, va_arg(ap, const char *)); break;
		case 'i': sqlite3_bind_int64(stmt, i + 1, va_arg(ap, int64_t)); break;
		default: sqlite3_bind_null(stmt, i + 1); break;
		}
	}
	va_end(ap);
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (changes != NULL)
		*changes = sqlite3_changes(st->db);
	pthread_mutex_unlock(&st->lock);
	return step == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Claim the oldest due job. */
enum store_status
store_job_claim(struct store *st, time_t now, int lease, struct store_job **out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int64_t id = 0;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto unlock;
	if (sqlite3_prepare_v2(st->db, "SELECT id FROM jobs WHERE"
	    " (state = 'queued' AND next_attempt <= ?1) OR"
	    " (state = 'running' AND lease_until <= ?1)"
	    " ORDER BY next_attempt, id LIMIT 1", -1, &stmt, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)now);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (step == SQLITE_DONE) {
		rc = STORE_NOT_FOUND;
		goto rollback;
	}
	if (step != SQLITE_ROW)
		goto rollback;
	if (sqlite3_prepare_v2(st->db, "UPDATE jobs SET state = 'running',"
	    " lease_until = ?2, attempts = attempts + 1, updated = ?3"
	    " WHERE id = ?1", -1, &stmt, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)(now + lease));
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)now);
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (step != SQLITE_DONE)
		goto rollback;
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_JOB_COLUMNS
	    " FROM jobs WHERE id = ?1", -1, &stmt, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*out = store_job_from_row(stmt);
	sqlite3_finalize(stmt);
	if (*out == NULL ||
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*out = store_job_free(*out);
		goto rollback;
	}
	rc = STORE_OK;
	goto unlock;
rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Durably note that a create/append request is going out. */
enum store_status
store_job_mark_posting(struct store *st, int64_t id, time_t lease,
    time_t new_lease)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE jobs SET post_started = 1, lease_until = ?3,"
	    " updated = ?4 WHERE id = ?1 AND state = 'running' AND"
	    " lease_until = ?2", "iiii", &changes, id, (int64_t)lease,
	    (int64_t)new_lease, (int64_t)time(NULL));
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}

/* Job done. Without a summary of its own (an append), the job keeps the
 * one an earlier job of this tenant recorded for the same ticket. */
enum store_status
store_job_done(struct store *st, int64_t id, const struct store_result *r)
{
	return store_exec(st, "UPDATE jobs SET state = 'done', reason = ?13,"
	    " ticket_id = ?2, action_id = ?3, result = ?4, contact = ?5,"
	    " client = ?6, updated = ?7, lease_until = 0, sender = ?8,"
	    " contact_id = ?9, client_id = ?10, summary = COALESCE(?11,"
	    " (SELECT o.summary FROM jobs o WHERE o.tenant = jobs.tenant AND"
	    " o.ticket_id = ?2 AND o.summary IS NOT NULL ORDER BY o.id LIMIT 1)),"
	    " ticket_status = ?12 WHERE id = ?1",
	    "iiisssisiisss", NULL, id, r->ticket_id, r->action_id, r->result,
	    r->contact, r->client, (int64_t)time(NULL), r->sender,
	    r->contact_id, r->client_id, r->summary, r->ticket_status,
	    r->reason);
}

/* Back to the queue for a later attempt. */
enum store_status
store_job_retry(struct store *st, int64_t id, time_t next_attempt,
    const char *reason)
{
	return store_exec(st, "UPDATE jobs SET state = 'queued', reason = ?2,"
	    " next_attempt = ?3, lease_until = 0, updated = ?4 WHERE id = ?1",
	    "isii", NULL, id, reason, (int64_t)next_attempt, (int64_t)time(NULL));
}

/* The post reached Halo; the job goes on (store.h). */
enum store_status
store_job_posted(struct store *st, int64_t id, int64_t ticket_id,
    int64_t action_id)
{
	return store_exec(st, "UPDATE jobs SET ticket_id = ?2, action_id = ?3,"
	    " updated = ?4 WHERE id = ?1", "iiii", NULL, id, ticket_id, action_id,
	    (int64_t)time(NULL));
}

/* End in a final (or operator-blocked) state. */
enum store_status
store_job_finish(struct store *st, int64_t id, enum store_state state,
    const char *reason)
{
	return store_exec(st, "UPDATE jobs SET state = ?2, reason = ?3,"
	    " lease_until = 0, updated = ?4 WHERE id = ?1", "issi", NULL, id,
	    store_state_name(state), reason, (int64_t)time(NULL));
}

/* Operator re-queue. */
enum store_status
store_job_requeue(struct store *st, int64_t id)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE jobs SET state = 'queued', reason = NULL,"
	    " next_attempt = 0, lease_until = 0, updated = ?2 WHERE id = ?1"
	    " AND state NOT IN ('running', 'done')", "ii", &changes, id, (int64_t)time(NULL));
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}

/* Waiting jobs of an agent go back to the queue. */
enum store_status
store_jobs_wake_agent(struct store *st, const char *tenant, const char *agent,
    unsigned *woken)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE jobs SET state = 'queued', reason = NULL,"
	    " next_attempt = 0, updated = ?3 WHERE state = 'waiting' AND"
	    " tenant = ?1 AND agent = ?2", "ssi", &changes, tenant, agent,
	    (int64_t)time(NULL));
	if (woken != NULL)
		*woken = (unsigned)changes;
	return rc;
}

/* One int64 from a query with text arguments; NOT_FOUND when no row. */
static enum store_status
store_query_id(struct store *st, const char *sql, const char *a,
    const char *b, int64_t *out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, a);
		store_bind_text(stmt, 2, b);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
			*out = sqlite3_column_int64(stmt, 0);
			rc = STORE_OK;
		} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* The ticket a logged Message-ID went to. */
enum store_status
store_ticket_by_msgid(struct store *st, const char *tenant,
    const char *message_id, int64_t *ticket_id)
{
	return store_query_id(st, "SELECT ticket_id FROM jobs WHERE tenant = ?1"
	    " AND message_id = ?2 AND ticket_id IS NOT NULL", tenant, message_id,
	    ticket_id);
}

/* The newest ticket of a conversation. */
enum store_status
store_ticket_by_conv(struct store *st, const char *tenant, const char *conv_key,
    int64_t *ticket_id)
{
	return store_query_id(st, "SELECT ticket_id FROM jobs WHERE tenant = ?1"
	    " AND conv_key = ?2 AND ticket_id IS NOT NULL ORDER BY id DESC"
	    " LIMIT 1", tenant, conv_key, ticket_id);
}

/* Load an agent's token row. */
enum store_status
store_token_get(struct store *st, const char *tenant, const char *agent,
    struct store_token **out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	struct store_token *t;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT tenant, agent, sealed, state,"
	    " last_refresh, updated FROM tokens WHERE tenant = ?1 AND agent = ?2",
	    -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		store_bind_text(stmt, 2, agent);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW && (t = calloc(1, sizeof(*t))) != NULL) {
			t->tenant = store_col_dup(stmt, 0);
			t->agent = store_col_dup(stmt, 1);
			t->sealed = store_col_dup(stmt, 2);
			t->state = store_col_dup(stmt, 3);
			t->last_refresh = (time_t)sqlite3_column_int64(stmt, 4);
			t->updated = (time_t)sqlite3_column_int64(stmt, 5);
			*out = t;
			rc = STORE_OK;
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Store (insert or replace) an agent's sealed token. */
enum store_status
store_token_put(struct store *st, const char *tenant, const char *agent,
    const char *sealed, const char *state)
{
	int64_t now = (int64_t)time(NULL);

	return store_exec(st, "INSERT INTO tokens (tenant, agent, sealed, state,"
	    " last_refresh, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
	    " ON CONFLICT (tenant, agent) DO UPDATE SET sealed = ?3, state = ?4,"
	    " last_refresh = ?5, updated = ?5", "ssssi", NULL, tenant, agent,
	    sealed, state, now);
}

/* Change an agent's standing ("ok", "reenroll"). */
enum store_status
store_token_set_state(struct store *st, const char *tenant, const char *agent,
    const char *state)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE tokens SET state = ?3, updated = ?4 WHERE"
	    " tenant = ?1 AND agent = ?2", "sssi", &changes, tenant, agent, state,
	    (int64_t)time(NULL));
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}

/* Free a token row (the sealed text is not secret, but wipe anyway). */
struct store_token *
store_token_free(struct store_token *t)
{
	if (t == NULL)
		return NULL;
	free(t->tenant);
	free(t->agent);
	if (t->sealed != NULL)
		memset(t->sealed, 0, strlen(t->sealed));
	free(t->sealed);
	free(t->state);
	free(t);
	return NULL;
}

/* A cached sender resolution that has not expired. */
enum store_status
store_sender_get(struct store *st, const char *tenant, const char *key,
    time_t now, struct store_sender *out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT kind, user_id, site_id, client_id,"
	    " name, client_name, expires FROM senders WHERE tenant = ?1 AND"
	    " key = ?2 AND expires > ?3", -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		store_bind_text(stmt, 2, key);
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)now);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			out->kind = (enum store_sender_kind)sqlite3_column_int(stmt, 0);
			out->user_id = sqlite3_column_int64(stmt, 1);
			out->site_id = sqlite3_column_int64(stmt, 2);
			out->client_id = sqlite3_column_int64(stmt, 3);
			out->name = store_col_dup(stmt, 4);
			out->client_name = store_col_dup(stmt, 5);
			out->expires = (time_t)sqlite3_column_int64(stmt, 6);
			rc = STORE_OK;
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Cache a sender resolution. */
enum store_status
store_sender_put(struct store *st, const char *tenant, const char *key,
    const struct store_sender *s)
{
	return store_exec(st, "INSERT OR REPLACE INTO senders (tenant, key, kind,"
	    " user_id, site_id, client_id, name, client_name, expires) VALUES"
	    " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", "ssiiiissi", NULL, tenant,
	    key, (int64_t)s->kind, s->user_id, s->site_id, s->client_id, s->name,
	    s->client_name, (int64_t)s->expires);
}

/* Release a sender's strings. */
void
store_sender_clear(struct store_sender *s)
{
	free(s->name);
	free(s->client_name);
	s->name = s->client_name = NULL;
}

/* Does an unfinished job still need this spool file? */
enum store_status
store_spool_pending(struct store *st, const char *name, bool *pending)
{
	int64_t one = 0;
	enum store_status rc;

	rc = store_query_id(st, "SELECT 1 FROM jobs WHERE spool = ?1 AND state"
	    " NOT IN ('done', 'skipped') LIMIT 1", name, NULL, &one);
	*pending = rc != STORE_NOT_FOUND;
	return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

/* Jobs a crashed process left running go back to the queue; one that was
 * posting waits out the grace from its mark (store.h). */
enum store_status
store_jobs_reset_running(struct store *st, int posting_grace, unsigned *n,
    unsigned *posting)
{
	int changes = 0, waiting = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE jobs SET state = 'queued', lease_until = 0,"
	    " next_attempt = updated + ?1 WHERE state = 'running' AND"
	    " post_started != 0", "i", &waiting, (int64_t)posting_grace);
	if (rc == STORE_OK)
		rc = store_exec(st, "UPDATE jobs SET state = 'queued',"
		    " lease_until = 0, next_attempt = 0 WHERE state = 'running'",
		    "", &changes);
	*n = (unsigned)(changes + waiting);
	*posting = (unsigned)waiting;
	return rc;
}

/* Iterate over token rows. */
enum store_status
store_token_list(struct store *st, const char *tenant, store_token_fn fn,
    void *arg)
{
	sqlite3_stmt *stmt;
	struct store_token t;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT tenant, agent, sealed, state,"
	    " last_refresh, updated FROM tokens WHERE ?1 IS NULL OR tenant = ?1"
	    " ORDER BY tenant, agent", -1, &stmt, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	store_bind_text(stmt, 1, tenant);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		t.tenant = (char *)sqlite3_column_text(stmt, 0);
		t.agent = (char *)sqlite3_column_text(stmt, 1);
		t.sealed = (char *)sqlite3_column_text(stmt, 2);
		t.state = (char *)sqlite3_column_text(stmt, 3);
		t.last_refresh = (time_t)sqlite3_column_int64(stmt, 4);
		t.updated = (time_t)sqlite3_column_int64(stmt, 5);
		fn(&t, arg);
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Delete an agent's token row. */
enum store_status
store_token_delete(struct store *st, const char *tenant, const char *agent)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "DELETE FROM tokens WHERE tenant = ?1 AND agent = ?2",
	    "ss", &changes, tenant, agent);
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	/* a revoke ends the agent's pane sessions for good (a later
	 * enrollment must not bring them back) */
	if (rc == STORE_OK)
		rc = store_exec(st, "DELETE FROM pane_sessions WHERE tenant = ?1"
		    " AND agent = ?2", "ss", NULL, tenant, agent);
	return rc;
}

#define STORE_ENROLL_COLUMNS "id, tenant, agent, created, expires, used," \
	" verifier_sealed, state_expires, result, finished"

/* Build an enrollment from a row selected with STORE_ENROLL_COLUMNS. */
static struct store_enroll *
store_enroll_from_row(sqlite3_stmt *stmt)
{
	struct store_enroll *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->id = sqlite3_column_int64(stmt, 0);
	e->tenant = store_col_dup(stmt, 1);
	e->agent = store_col_dup(stmt, 2);
	e->created = (time_t)sqlite3_column_int64(stmt, 3);
	e->expires = (time_t)sqlite3_column_int64(stmt, 4);
	e->used = sqlite3_column_int(stmt, 5) != 0;
	e->verifier_sealed = store_col_dup(stmt, 6);
	e->state_expires = (time_t)sqlite3_column_int64(stmt, 7);
	e->result = store_col_dup(stmt, 8);
	e->finished = (time_t)sqlite3_column_int64(stmt, 9);
	if (e->tenant == NULL || e->agent == NULL)
		return store_enroll_free(e);
	return e;
}

/* Free an enrollment (the sealed verifier is wiped). */
struct store_enroll *
store_enroll_free(struct store_enroll *e)
{
	if (e == NULL)
		return NULL;
	free(e->tenant);
	free(e->agent);
	if (e->verifier_sealed != NULL)
		memset(e->verifier_sealed, 0, strlen(e->verifier_sealed));
	free(e->verifier_sealed);
	free(e->result);
	free(e);
	return NULL;
}

/* A new enrollment code (its hash). */
enum store_status
store_enroll_add(struct store *st, const char *tenant, const char *agent,
    const char *code_hash, time_t created, time_t expires, int64_t *id)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "INSERT INTO enrollments (tenant, agent,"
	    " code_hash, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)", -1,
	    &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		store_bind_text(stmt, 2, agent);
		store_bind_text(stmt, 3, code_hash);
		sqlite3_bind_int64(stmt, 4, (sqlite3_int64)created);
		sqlite3_bind_int64(stmt, 5, (sqlite3_int64)expires);
		step = sqlite3_step(stmt);
		if (step == SQLITE_DONE) {
			if (id != NULL)
				*id = sqlite3_last_insert_rowid(st->db);
			rc = STORE_OK;
		} else if (sqlite3_extended_errcode(st->db) ==
		    SQLITE_CONSTRAINT_UNIQUE) {
			rc = STORE_DUPLICATE;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* One enrollment by SQL selecting on a hash (?1). */
static enum store_status
store_enroll_by(struct store *st, const char *sql, const char *hash,
    struct store_enroll **out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*out = NULL;
	if (hash == NULL)
		return STORE_NOT_FOUND;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, hash);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			*out = store_enroll_from_row(stmt);
			rc = *out != NULL ? STORE_OK : STORE_ERROR;
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* The enrollment of a code hash. */
enum store_status
store_enroll_by_code(struct store *st, const char *hash,
    struct store_enroll **out)
{
	return store_enroll_by(st, "SELECT " STORE_ENROLL_COLUMNS
	    " FROM enrollments WHERE code_hash = ?1", hash, out);
}

/* The enrollment of a state hash. */
enum store_status
store_enroll_by_state(struct store *st, const char *hash,
    struct store_enroll **out)
{
	return store_enroll_by(st, "SELECT " STORE_ENROLL_COLUMNS
	    " FROM enrollments WHERE state_hash = ?1", hash, out);
}

/* Consume a code and bind its sign-in. */
enum store_status
store_enroll_start(struct store *st, int64_t id, time_t now,
    const char *state_hash, const char *verifier_sealed, time_t state_expires)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE enrollments SET used = 1, state_hash = ?3,"
	    " verifier_sealed = ?4, state_expires = ?5 WHERE id = ?1 AND"
	    " used = 0 AND expires > ?2", "iissi", &changes, id, (int64_t)now,
	    state_hash, verifier_sealed, (int64_t)state_expires);
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}

/* Take the sealed verifier once (one transaction: read, then clear). */
enum store_status
store_enroll_take(struct store *st, int64_t id, time_t now,
    char **verifier_sealed)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*verifier_sealed = NULL;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto unlock;
	if (sqlite3_prepare_v2(st->db, "SELECT verifier_sealed FROM enrollments"
	    " WHERE id = ?1 AND verifier_sealed IS NOT NULL AND"
	    " state_expires > ?2 AND result IS NULL", -1, &stmt,
	    NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)now);
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		*verifier_sealed = store_col_dup(stmt, 0);
	sqlite3_finalize(stmt);
	if (step == SQLITE_DONE) {
		rc = STORE_NOT_FOUND;
		goto rollback;
	}
	if (step != SQLITE_ROW || *verifier_sealed == NULL)
		goto rollback;
	if (sqlite3_prepare_v2(st->db, "UPDATE enrollments SET verifier_sealed ="
	    " NULL WHERE id = ?1", -1, &stmt, NULL) != SQLITE_OK)
		goto rollback;
	sqlite3_bind_int64(stmt, 1, id);
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (step != SQLITE_DONE ||
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	rc = STORE_OK;
	goto unlock;
rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	if (rc != STORE_OK && *verifier_sealed != NULL) {
		memset(*verifier_sealed, 0, strlen(*verifier_sealed));
		free(*verifier_sealed);
		*verifier_sealed = NULL;
	}
unlock:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Record how an enrollment ended. */
enum store_status
store_enroll_finish(struct store *st, int64_t id, const char *result)
{
	return store_exec(st, "UPDATE enrollments SET result = ?2, finished = ?3,"
	    " used = 1, verifier_sealed = NULL WHERE id = ?1", "isi", NULL, id,
	    result, (int64_t)time(NULL));
}

/* Iterate over enrollments, newest first. */
enum store_status
store_enroll_list(struct store *st, const char *tenant, store_enroll_fn fn,
    void *arg)
{
	sqlite3_stmt *stmt;
	struct store_enroll *e;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_ENROLL_COLUMNS
	    " FROM enrollments WHERE ?1 IS NULL OR tenant = ?1 ORDER BY id DESC",
	    -1, &stmt, NULL) != SQLITE_OK) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	store_bind_text(stmt, 1, tenant);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		e = store_enroll_from_row(stmt);
		if (e == NULL)
			break;
		fn(e, arg);
		store_enroll_free(e);
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Delete old enrollments. */
enum store_status
store_enroll_purge(struct store *st, time_t before, unsigned *n)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "DELETE FROM enrollments WHERE created < ?1", "i",
	    &changes, (int64_t)before);
	if (n != NULL)
		*n = (unsigned)changes;
	return rc;
}

/* Does AGENT hold a usable token in TENANT? */
enum store_status
store_agent_enrolled(struct store *st, const char *tenant, const char *agent,
    bool *enrolled)
{
	int64_t one = 0;
	enum store_status rc;

	rc = store_query_id(st, "SELECT 1 FROM tokens WHERE tenant = ?1 AND"
	    " agent = ?2 AND state = 'ok' AND sealed IS NOT NULL", tenant, agent,
	    &one);
	*enrolled = rc == STORE_OK;
	return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

/* One value store_reseal() replaces. */
struct store_reseal_item {
	int64_t id;                 /* enrollments.id; tokens: 0 */
	char *tenant, *agent, *state_hash, *sealed;
};

/* Free ITEMS (N of them), wiping the sealed texts. */
static void
store_reseal_items_free(struct store_reseal_item *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(items[i].tenant);
		free(items[i].agent);
		free(items[i].state_hash);
		if (items[i].sealed != NULL) {
			memset(items[i].sealed, 0, strlen(items[i].sealed));
			free(items[i].sealed);
		}
	}
	free(items);
}

/* Read the rows of SQL (lock and transaction held) into *ITEMS. */
static int
store_reseal_read(struct store *st, const char *sql, bool enrollments,
    struct store_reseal_item **items, size_t *n)
{
	struct store_reseal_item *grown, *it;
	sqlite3_stmt *stmt;
	int step;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		grown = realloc(*items, (*n + 1) * sizeof(*grown));
		if (grown == NULL)
			break;
		*items = grown;
		it = &grown[*n];
		memset(it, 0, sizeof(*it));
		(*n)++;
		it->id = enrollments ? sqlite3_column_int64(stmt, 0) : 0;
		it->tenant = store_col_dup(stmt, 1);
		it->agent = store_col_dup(stmt, 2);
		it->state_hash = enrollments ? store_col_dup(stmt, 3) : NULL;
		it->sealed = store_col_dup(stmt, 4);
		if (it->tenant == NULL || it->agent == NULL || it->sealed == NULL ||
		    (enrollments && it->state_hash == NULL))
			break;
	}
	sqlite3_finalize(stmt);
	return step == SQLITE_DONE ? 0 : -1;
}

/* Write one replaced value (lock and transaction held). */
static int
store_reseal_write(struct store *st, const struct store_reseal_item *it,
    const char *table, const char *sealed)
{
	sqlite3_stmt *stmt;
	int step;

	if (strcmp(table, "tokens") == 0) {
		if (sqlite3_prepare_v2(st->db, "UPDATE tokens SET sealed = ?3"
		    " WHERE tenant = ?1 AND agent = ?2", -1, &stmt,
		    NULL) != SQLITE_OK)
			return -1;
		store_bind_text(stmt, 1, it->tenant);
		store_bind_text(stmt, 2, it->agent);
		store_bind_text(stmt, 3, sealed);
	} else {
		if (sqlite3_prepare_v2(st->db, "UPDATE enrollments SET"
		    " verifier_sealed = ?2 WHERE id = ?1", -1, &stmt,
		    NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(stmt, 1, it->id);
		store_bind_text(stmt, 2, sealed);
	}
	step = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return step == SQLITE_DONE && sqlite3_changes(st->db) == 1 ? 0 : -1;
}

/* Re-seal every sealed value in one transaction. */
enum store_status
store_reseal(struct store *st, store_reseal_fn fn, void *arg, unsigned *n)
{
	static const char *const tables[2] = { "tokens", "enrollments" };
	static const char *const selects[2] = {
		"SELECT 0, tenant, agent, NULL, sealed FROM tokens"
		" WHERE sealed IS NOT NULL ORDER BY tenant, agent",
		"SELECT id, tenant, agent, state_hash, verifier_sealed FROM"
		" enrollments WHERE verifier_sealed IS NOT NULL ORDER BY id"
	};
	struct store_reseal_item *items = NULL;
	struct store_sealed v;
	enum store_status rc = STORE_ERROR;
	size_t count = 0, i;
	unsigned done = 0;
	char *sealed;
	int t, failed;

	if (n != NULL)
		*n = 0;
	pthread_mutex_lock(&st->lock);
	/* IMMEDIATE: no other writer may seal a value under the old key
	 * between our read and our commit */
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto unlock;
	for (t = 0; t < 2; t++) {
		failed = store_reseal_read(st, selects[t], t == 1, &items, &count);
		for (i = 0; failed == 0 && i < count; i++) {
			v.table = tables[t];
			v.tenant = items[i].tenant;
			v.agent = items[i].agent;
			v.state_hash = items[i].state_hash;
			v.sealed = items[i].sealed;
			if ((sealed = fn(&v, arg)) == NULL) {
				failed = 1;
				break;
			}
			failed = store_reseal_write(st, &items[i], tables[t], sealed);
			memset(sealed, 0, strlen(sealed));
			free(sealed);
			done++;
		}
		store_reseal_items_free(items, count);
		items = NULL;
		count = 0;
		if (failed != 0)
			goto rollback;
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	rc = STORE_OK;
	if (n != NULL)
		*n = done;
	goto unlock;
rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
unlock:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/*
 * Who may join a ticket (schema v8).
 */

/* Record ADDRS (N of them, lower-cased here) as participants of TICKET. */
enum store_status
store_participants_add(struct store *st, const char *tenant, int64_t ticket,
    const char *const *addrs, size_t n)
{
	char low[320];
	enum store_status rc = STORE_OK;
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (addrs[i] == NULL || addrs[i][0] == '\0' ||
		    strlen(addrs[i]) >= sizeof(low))
			continue;
		for (j = 0; addrs[i][j] != '\0'; j++)
			low[j] = (char)tolower((unsigned char)addrs[i][j]);
		low[j] = '\0';
		if (store_exec(st, "INSERT OR IGNORE INTO participants (tenant,"
		    " ticket_id, address, created) VALUES (?1, ?2, ?3, ?4)", "sisi",
		    NULL, tenant, ticket, low, (int64_t)time(NULL)) != STORE_OK)
			rc = STORE_ERROR;
	}
	return rc;
}

/* Whether ADDR (any case) took part in mail logged to TICKET. */
enum store_status
store_participant_is(struct store *st, const char *tenant, int64_t ticket,
    const char *addr, bool *is)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*is = false;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM participants WHERE"
	    " tenant = ?1 AND ticket_id = ?2 AND address = lower(?3)", -1, &stmt,
	    NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		sqlite3_bind_int64(stmt, 2, ticket);
		store_bind_text(stmt, 3, addr);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW || step == SQLITE_DONE) {
			*is = step == SQLITE_ROW;
			rc = STORE_OK;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Record TICKET's user and client, as SOURCE ("created" or "halo") says.
 * A "created" row is not replaced by a "halo" one. */
enum store_status
store_ticket_owner_put(struct store *st, const char *tenant, int64_t ticket,
    int64_t user_id, int64_t client_id, const char *source)
{
	return store_exec(st, "INSERT INTO ticket_owners (tenant, ticket_id,"
	    " user_id, client_id, source, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (tenant, ticket_id) DO UPDATE SET user_id ="
	    " excluded.user_id, client_id = excluded.client_id, source ="
	    " excluded.source, updated = excluded.updated WHERE"
	    " ticket_owners.source <> 'created' OR excluded.source = 'created'",
	    "siiisi", NULL, tenant, ticket, user_id, client_id, source,
	    (int64_t)time(NULL));
}

/* TICKET's user and client as recorded: a "created" row always, a "halo"
 * row when updated at or after SINCE; NOT_FOUND otherwise. */
enum store_status
store_ticket_owner_get(struct store *st, const char *tenant, int64_t ticket,
    time_t since, int64_t *user_id, int64_t *client_id)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT user_id, client_id FROM"
	    " ticket_owners WHERE tenant = ?1 AND ticket_id = ?2 AND"
	    " (source = 'created' OR updated >= ?3)", -1, &stmt, NULL) ==
	    SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		sqlite3_bind_int64(stmt, 2, ticket);
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)since);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			*user_id = sqlite3_column_int64(stmt, 0);
			*client_id = sqlite3_column_int64(stmt, 1);
			rc = STORE_OK;
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* ---------------------------------------------------------------- pane */

/* Add a pane session. */
enum store_status
store_pane_session_add(struct store *st, const struct store_pane_session *ps)
{
	return store_exec(st, "INSERT INTO pane_sessions (id_hash, tenant, agent,"
	    " agent_id, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	    "sssiii", NULL, ps->id_hash, ps->tenant, ps->agent, ps->agent_id,
	    (int64_t)ps->created, (int64_t)ps->expires);
}

/* A live pane session whose agent still holds a token. */
enum store_status
store_pane_session_get(struct store *st, const char *id_hash, time_t now,
    struct store_pane_session **out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	struct store_pane_session *ps;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	/* the join makes a revoke (the token row deleted) end the sessions */
	if (sqlite3_prepare_v2(st->db, "SELECT s.id_hash, s.tenant, s.agent,"
	    " s.agent_id, s.created, s.expires FROM pane_sessions s JOIN tokens t"
	    " ON t.tenant = s.tenant AND t.agent = s.agent AND t.sealed IS NOT"
	    " NULL WHERE s.id_hash = ?1 AND s.expires > ?2", -1, &stmt,
	    NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, id_hash);
		sqlite3_bind_int64(stmt, 2, (int64_t)now);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW && (ps = calloc(1, sizeof(*ps))) != NULL) {
			ps->id_hash = store_col_dup(stmt, 0);
			ps->tenant = store_col_dup(stmt, 1);
			ps->agent = store_col_dup(stmt, 2);
			ps->agent_id = sqlite3_column_int64(stmt, 3);
			ps->created = (time_t)sqlite3_column_int64(stmt, 4);
			ps->expires = (time_t)sqlite3_column_int64(stmt, 5);
			if (ps->id_hash == NULL || ps->tenant == NULL ||
			    ps->agent == NULL)
				ps = store_pane_session_free(ps);
			else {
				*out = ps;
				rc = STORE_OK;
			}
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Replace session OLD_HASH by NEW_HASH valid until EXPIRES (renewal). */
enum store_status
store_pane_session_renew(struct store *st, const char *old_hash,
    const char *new_hash, time_t now, time_t expires)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE pane_sessions SET id_hash = ?2, expires = ?4"
	    " WHERE id_hash = ?1 AND expires > ?3", "ssii", &changes, old_hash,
	    new_hash, (int64_t)now, (int64_t)expires);
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}

/* End one session (sign-out). */
enum store_status
store_pane_session_end(struct store *st, const char *id_hash)
{
	return store_exec(st, "DELETE FROM pane_sessions WHERE id_hash = ?1",
	    "s", NULL, id_hash);
}

/* Delete the sessions expired by NOW (housekeeping). */
enum store_status
store_pane_sessions_purge(struct store *st, time_t now)
{
	return store_exec(st, "DELETE FROM pane_sessions WHERE expires <= ?1",
	    "i", NULL, (int64_t)now);
}

/* Free a session. */
struct store_pane_session *
store_pane_session_free(struct store_pane_session *ps)
{
	if (ps == NULL)
		return NULL;
	free(ps->id_hash);
	free(ps->tenant);
	free(ps->agent);
	free(ps);
	return NULL;
}

/* An agent's pane defaults; the built-in ones when none were saved. */
enum store_status
store_pane_defaults_get(struct store *st, const char *tenant,
    const char *agent, struct store_pane_defaults *out)
{
	sqlite3_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	memset(out, 0, sizeof(*out));
	out->attachments = true;
	pthread_mutex_lock(&st->lock);
	if (sqlite3_prepare_v2(st->db, "SELECT tickettype_id, outcome,"
	    " attachments, internal FROM pane_defaults WHERE tenant = ?1 AND"
	    " agent = ?2", -1, &stmt, NULL) == SQLITE_OK) {
		store_bind_text(stmt, 1, tenant);
		store_bind_text(stmt, 2, agent);
		step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			out->tickettype_id = sqlite3_column_int64(stmt, 0);
			out->outcome = store_col_dup(stmt, 1);
			out->attachments = sqlite3_column_int(stmt, 2) != 0;
			out->internal = sqlite3_column_int(stmt, 3) != 0;
			rc = STORE_OK;
		} else if (step == SQLITE_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sqlite3_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Save an agent's pane defaults. */
enum store_status
store_pane_defaults_put(struct store *st, const char *tenant,
    const char *agent, const struct store_pane_defaults *d)
{
	return store_exec(st, "INSERT INTO pane_defaults (tenant, agent,"
	    " tickettype_id, outcome, attachments, internal, updated) VALUES"
	    " (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant, agent) DO UPDATE"
	    " SET tickettype_id = ?3, outcome = ?4, attachments = ?5,"
	    " internal = ?6, updated = ?7", "ssisiii", NULL, tenant, agent,
	    d->tickettype_id, d->outcome, (int64_t)(d->attachments ? 1 : 0),
	    (int64_t)(d->internal ? 1 : 0), (int64_t)time(NULL));
}

/* Free what store_pane_defaults_get() filled in. */
void
store_pane_defaults_clear(struct store_pane_defaults *d)
{
	free(d->outcome);
	memset(d, 0, sizeof(*d));
}

/* Name the agent of enrollment ID once a pane sign-in knows who it was. */
enum store_status
store_enroll_set_agent(struct store *st, int64_t id, const char *agent)
{
	return store_exec(st, "UPDATE enrollments SET agent = ?2 WHERE id = ?1",
	    "is", NULL, id, agent);
}

/* The pane logged job ID's mail itself: done, unless the worker holds it. */
enum store_status
store_job_done_by_pane(struct store *st, int64_t id,
    const struct store_result *r)
{
	int changes = 0;
	enum store_status rc;

	rc = store_exec(st, "UPDATE jobs SET state = 'done', reason = NULL,"
	    " ticket_id = ?2, action_id = ?3, result = ?4, updated = ?5,"
	    " lease_until = 0, summary = COALESCE(?6, (SELECT o.summary FROM"
	    " jobs o WHERE o.tenant = jobs.tenant AND o.ticket_id = ?2 AND"
	    " o.summary IS NOT NULL ORDER BY o.id LIMIT 1)), ticket_status = ?7"
	    " WHERE id = ?1 AND state NOT IN ('queued', 'running')",
	    "iiisiss", &changes, id, r->ticket_id, r->action_id, r->result,
	    (int64_t)time(NULL), r->summary, r->ticket_status);
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}
