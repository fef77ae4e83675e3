/*
 * store_sqlite.c - the store's SQLite driver (WAL, synchronous=FULL): the
 * embedded default, one file, nothing to run. The queries are store.c's;
 * this file holds the schema's migrations and the statement cursor.
 */
#include "store_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

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
	/* 10: job retention (issue 15): finished jobs are deleted after
	 * job_retention days; what threading needs of those that reached a
	 * ticket stays here (Message-ID, conversation, ticket, summary),
	 * keyed by the job's id */
	"CREATE TABLE msgid_tickets ("
	" job_id INTEGER PRIMARY KEY,"
	" tenant TEXT NOT NULL, message_id TEXT NOT NULL, conv_key TEXT,"
	" ticket_id INTEGER NOT NULL, summary TEXT, created INTEGER NOT NULL);"
	"CREATE INDEX msgid_tickets_msgid ON msgid_tickets (tenant, message_id);"
	"CREATE INDEX msgid_tickets_conv ON msgid_tickets (tenant, conv_key);"
	"CREATE INDEX msgid_tickets_ticket ON msgid_tickets (tenant, ticket_id);"
	"CREATE INDEX jobs_finished ON jobs (updated) WHERE state IN"
	" ('done', 'skipped', 'failed');",
	/* 11: a conversation's jobs are claimed in order (store_job_claim):
	 * its unfinished ones, found by conversation */
	"CREATE INDEX jobs_conv_open ON jobs (tenant, conv_key, id) WHERE"
	" state IN ('queued', 'running');",
};
#define STORE_NMIGRATIONS ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

_Static_assert(STORE_NMIGRATIONS == STORE_SCHEMA_LATEST,
    "store_int.h STORE_SCHEMA_LATEST and the SQLite migrations disagree");

/* A statement: the cursor store.c drives. A cached one (SQL set) goes
 * back to its connection's cache at finalize, reset, instead of being
 * compiled again at the next call (issue 16: half of the store's CPU at
 * end of message was sqlite3_prepare). */
struct sqlite_stmt {
	struct store_stmt base;
	sqlite3 *db;
	sqlite3_stmt *stmt;
	int changes;
	char *sql;                  /* cached: the statement's text */
	bool busy;                  /* cached: handed out, not finalized */
};

/*
 * A connection and its prepared statements, keyed by their text (never by
 * the pointer: store.c builds some SQL at run time). Every use of a
 * connection is under the store's lock (SQLITE_OPEN_NOMUTEX), so the cache
 * needs none of its own. A statement asked for while its cached copy is
 * handed out (a nested use of one query) is compiled on its own and
 * finalized as before.
 */
#define SQLITE_CACHE_SLOTS 256      /* open addressing; the store has ~150
                                       distinct queries */
struct sqlite_conn {
	sqlite3 *db;
	struct sqlite_stmt *cache[SQLITE_CACHE_SLOTS];
	size_t n_cached;
};

/* Read PRAGMA user_version; -1 on error. */
static int
sqlite_version_read(sqlite3 *db)
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

/*
 * Apply migrations up to MAX_VERSION, each in its own transaction. The
 * version is read again inside each write transaction: the daemon and
 * halo-milterctl may open a new store at the same moment, and the second
 * must find the first one's migration done rather than apply it twice.
 */
static int
sqlite_migrate(sqlite3 *db, int max_version, char *err, size_t errsz)
{
	int v = sqlite_version_read(db), cur;
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
	while (v < max_version && v < STORE_NMIGRATIONS) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errsz, "migration to version %d failed: %s",
			    v + 1, msg ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			return -1;
		}
		if ((cur = sqlite_version_read(db)) != v) {
			/* another process migrated meanwhile */
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			if (cur < 0 || cur > STORE_NMIGRATIONS) {
				snprintf(err, errsz, "schema version changed to"
				    " %d while opening", cur);
				return -1;
			}
			v = cur;
			continue;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, store_migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errsz, "migration to version %d failed: %s",
			    v + 1, msg ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		v++;
	}
	return 0;
}

/* Open PATH and migrate up to MAX_VERSION. */
static void *
sqlite_open(const char *path, int max_version, char *err, size_t errsz)
{
	struct sqlite_conn *c;
	sqlite3 *db = NULL;
	char *msg = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", path,
		    db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = FULL;"
	    "PRAGMA foreign_keys = ON;", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", path, msg ? msg : "pragma failed");
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	if (sqlite_migrate(db, max_version, err, errsz) != 0) {
		sqlite3_close(db);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errsz, "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	c->db = db;
	return c;
}

static void
sqlite_close(void *conn)
{
	struct sqlite_conn *c = conn;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < SQLITE_CACHE_SLOTS; i++)
		if (c->cache[i] != NULL) {
			sqlite3_finalize(c->cache[i]->stmt);
			free(c->cache[i]->sql);
			free(c->cache[i]);
		}
	sqlite3_close(c->db);
	free(c);
}

static int
sqlite_version(void *conn)
{
	return sqlite_version_read(((struct sqlite_conn *)conn)->db);
}

/* IMMEDIATE: the write lock at once, so a transaction never fails half
 * way on another writer. */
static int
sqlite_begin(void *conn)
{
	return sqlite3_exec(((struct sqlite_conn *)conn)->db, "BEGIN IMMEDIATE",
	    NULL, NULL, NULL) ==
	    SQLITE_OK ? 0 : -1;
}

static int
sqlite_commit(void *conn)
{
	return sqlite3_exec(((struct sqlite_conn *)conn)->db, "COMMIT", NULL,
	    NULL, NULL) == SQLITE_OK ?
	    0 : -1;
}

static void
sqlite_rollback(void *conn)
{
	sqlite3_exec(((struct sqlite_conn *)conn)->db, "ROLLBACK", NULL, NULL,
	    NULL);
}

/* The next transactions' durability: RELAXED, synchronous = NORMAL (the
 * commit reaches the WAL but is not synced: a later FULL commit or a
 * checkpoint syncs it; a power cut may lose it, so only a caller holding
 * another durable record of the rows asks for it), else FULL. 0 = ok.
 * SQLite applies a PRAGMA when it compiles it, so each call compiles one
 * (about 9,000 instructions; 2 per group commit). */
static int
sqlite_relax(void *conn, bool relaxed)
{
	return sqlite3_exec(((struct sqlite_conn *)conn)->db, relaxed ?
	    "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", NULL,
	    NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* The cache slot of SQL in C: its entry, or the empty slot it would take
 * (NULL when the table is full). */
static struct sqlite_stmt **
sqlite_cache_slot(struct sqlite_conn *c, const char *sql)
{
	uint64_t h = 1469598103934665603ULL;      /* FNV-1a */
	const unsigned char *p;
	size_t i, n;

	for (p = (const unsigned char *)sql; *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	for (n = 0, i = (size_t)(h % SQLITE_CACHE_SLOTS); n < SQLITE_CACHE_SLOTS;
	    n++, i = (i + 1) % SQLITE_CACHE_SLOTS)
		if (c->cache[i] == NULL || strcmp(c->cache[i]->sql, sql) == 0)
			return &c->cache[i];
	return NULL;
}

static struct store_stmt *
sqlite_prepare(void *conn, const char *sql)
{
	struct sqlite_conn *c = conn;
	struct sqlite_stmt *s, **slot = sqlite_cache_slot(c, sql);

	if (slot != NULL && *slot != NULL && !(*slot)->busy) {
		s = *slot;              /* reset and unbound at its finalize */
		s->busy = true;
		s->changes = 0;
		return &s->base;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base.drv = &store_sqlite_driver;
	s->db = c->db;
	if (sqlite3_prepare_v3(c->db, sql, -1, slot != NULL && *slot == NULL ?
	    SQLITE_PREPARE_PERSISTENT : 0, &s->stmt, NULL) != SQLITE_OK) {
		free(s);
		return NULL;
	}
	/* keep it, bounded: a full table leaves the rest uncached */
	if (slot != NULL && *slot == NULL &&
	    c->n_cached < SQLITE_CACHE_SLOTS * 3 / 4 &&
	    (s->sql = strdup(sql)) != NULL) {
		s->busy = true;
		*slot = s;
		c->n_cached++;
	}
	return &s->base;
}

static void
sqlite_bind_text(struct store_stmt *st, int idx, const char *v)
{
	struct sqlite_stmt *s = (struct sqlite_stmt *)st;

	if (v == NULL)
		sqlite3_bind_null(s->stmt, idx);
	else
		sqlite3_bind_text(s->stmt, idx, v, -1, SQLITE_TRANSIENT);
}

static void
sqlite_bind_int(struct store_stmt *st, int idx, int64_t v)
{
	sqlite3_bind_int64(((struct sqlite_stmt *)st)->stmt, idx, v);
}

static void
sqlite_bind_null_int(struct store_stmt *st, int idx)
{
	sqlite3_bind_null(((struct sqlite_stmt *)st)->stmt, idx);
}

static void
sqlite_bind_blob(struct store_stmt *st, int idx, const void *v, size_t len)
{
	struct sqlite_stmt *s = (struct sqlite_stmt *)st;

	if (v == NULL)
		sqlite3_bind_null(s->stmt, idx);
	else
		sqlite3_bind_blob64(s->stmt, idx, v, len, SQLITE_TRANSIENT);
}

static int
sqlite_step(struct store_stmt *st)
{
	struct sqlite_stmt *s = (struct sqlite_stmt *)st;
	int rc = sqlite3_step(s->stmt);

	if (rc == SQLITE_ROW) {
		s->changes = sqlite3_changes(s->db);
		return STORE_STEP_ROW;
	}
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes(s->db);
		return STORE_STEP_DONE;
	}
	if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE ||
	    sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		return STORE_STEP_UNIQUE;
	return STORE_STEP_ERROR;
}

static bool
sqlite_col_null(struct store_stmt *st, int col)
{
	return sqlite3_column_type(((struct sqlite_stmt *)st)->stmt, col) ==
	    SQLITE_NULL;
}

static const char *
sqlite_col_text(struct store_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(
	    ((struct sqlite_stmt *)st)->stmt, col);
}

static int64_t
sqlite_col_int(struct store_stmt *st, int col)
{
	return sqlite3_column_int64(((struct sqlite_stmt *)st)->stmt, col);
}

static const void *
sqlite_col_blob(struct store_stmt *st, int col, size_t *len)
{
	sqlite3_stmt *stmt = ((struct sqlite_stmt *)st)->stmt;
	const void *p = sqlite3_column_blob(stmt, col);

	*len = (size_t)sqlite3_column_bytes(stmt, col);
	return p;
}

static int
sqlite_changes(struct store_stmt *st)
{
	return ((struct sqlite_stmt *)st)->changes;
}

static void
sqlite_finalize(struct store_stmt *st)
{
	struct sqlite_stmt *s = (struct sqlite_stmt *)st;

	if (s == NULL)
		return;
	if (s->sql != NULL) {
		/* back to the cache: no row held, no value kept */
		sqlite3_reset(s->stmt);
		sqlite3_clear_bindings(s->stmt);
		s->busy = false;
		return;
	}
	sqlite3_finalize(s->stmt);
	free(s);
}

const struct store_driver store_sqlite_driver = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.version = sqlite_version,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.relax = sqlite_relax,
	.prepare = sqlite_prepare,
	.bind_text = sqlite_bind_text,
	.bind_int = sqlite_bind_int,
	.bind_null_int = sqlite_bind_null_int,
	.bind_blob = sqlite_bind_blob,
	.step = sqlite_step,
	.col_null = sqlite_col_null,
	.col_text = sqlite_col_text,
	.col_int = sqlite_col_int,
	.col_blob = sqlite_col_blob,
	.changes = sqlite_changes,
	.finalize = sqlite_finalize,
	.claim_lock = "",
	.row_lock = "",
	.shared = false,
};
