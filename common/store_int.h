/*
 * store_int.h - the store's backend drivers (not for callers of store.h).
 *
 * The query logic of the store lives once, in store.c, written in the SQL
 * both SQLite (3.35 and later) and PostgreSQL accept: placeholders ?N,
 * INSERT ... ON CONFLICT, RETURNING. A driver is the small table below:
 * open (and migrate its own schema), transactions, and a statement cursor
 * (prepare, bind, step, columns, changes). Where the dialects differ the
 * driver says so in data (claim_lock) or translates (the PostgreSQL driver
 * turns ?N into $N). OpenSMTPD's queue backends are the model.
 */
#ifndef HALO_STORE_INT_H
#define HALO_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A driver's prepared statement and cursor begins with this. */
struct store_stmt {
	const struct store_driver *drv;
};

/* The schema version this build migrates to (every driver's table of
 * migrations has this many entries). */
#define STORE_SCHEMA_LATEST 11

/* What store_driver.step() returns. */
#define STORE_STEP_ROW      1   /* a row is there to read */
#define STORE_STEP_DONE     0   /* no (more) rows; a write is done */
#define STORE_STEP_ERROR    (-1)
#define STORE_STEP_UNIQUE   (-2)    /* a UNIQUE constraint said no */

struct store_driver {
	const char *name;           /* "sqlite", "postgresql" */
	/* Open TARGET and migrate its schema to MAX_VERSION (< 0: connect
	 * only); NULL and ERR on failure. */
	void *(*open)(const char *target, int max_version, char *err,
	    size_t errsz);
	void (*close)(void *conn);
	int (*version)(void *conn);         /* schema version, -1 on error */
	int (*begin)(void *conn);           /* write transaction; 0 = ok */
	int (*commit)(void *conn);
	void (*rollback)(void *conn);
	/* the next transactions' durability: relaxed (not synced at commit;
	 * another durable record holds the rows) or not; 0 = ok. NULL: every
	 * commit is synced (PostgreSQL: other nodes read the rows at once) */
	int (*relax)(void *conn, bool relaxed);
	/* SQL with ?N placeholders; NULL on error */
	struct store_stmt *(*prepare)(void *conn, const char *sql);
	void (*bind_text)(struct store_stmt *s, int idx, const char *v);
	void (*bind_int)(struct store_stmt *s, int idx, int64_t v);
	void (*bind_null_int)(struct store_stmt *s, int idx);  /* typed NULL */
	void (*bind_blob)(struct store_stmt *s, int idx, const void *v,
	    size_t len);
	int (*step)(struct store_stmt *s);  /* STORE_STEP_* */
	bool (*col_null)(struct store_stmt *s, int col);
	const char *(*col_text)(struct store_stmt *s, int col);  /* NULL: NULL */
	int64_t (*col_int)(struct store_stmt *s, int col);
	/* the bytes of a blob column (valid until the next step/finalize) */
	const void *(*col_blob)(struct store_stmt *s, int col, size_t *len);
	int (*changes)(struct store_stmt *s);   /* rows the statement wrote */
	void (*finalize)(struct store_stmt *s);
	/* appended to the claim's SELECT: "" (SQLite's write transaction
	 * already excludes every other writer) or " FOR UPDATE SKIP LOCKED" */
	const char *claim_lock;
	/* appended to a token read that precedes a refresh (row lock) */
	const char *row_lock;
	bool shared;                /* several nodes may use the database */
	/* after rows with explicit ids were copied into TABLE: move its id
	 * generator past them; 0 = ok (NULL: the database does it itself) */
	int (*id_resync)(void *conn, const char *table);
};

/* The handle: one connection, serialised by LOCK. */
struct store_gc_entry;

#define STORE_READERS 4

struct store {
	const struct store_driver *drv;
	void *conn;
	pthread_mutex_t lock;
	/* group commit of store_jobs_add (store.c): callers queue their rows
	 * under gc_lock; one of them, the leader, writes every queued entry
	 * in one transaction and wakes the rest on gc_cond */
	pthread_mutex_t gc_lock;
	pthread_cond_t gc_cond;
	struct store_gc_entry *gc_head, **gc_tail;
	bool gc_leader;             /* a leader is writing a batch */
	uint64_t gc_batches;        /* transactions written (for tests) */
	uint64_t gc_entries;        /* entries they held */
	uint64_t gc_relaxed;        /* of them, not synced (spool_holds_row) */
	/* connections of their own for end of message's reads (store.c:
	 * store_reader_get), opened on first use, so a lookup does not wait
	 * for the lock a commit holds; each is a store handle on TARGET */
	pthread_mutex_t rd_lock;
	struct store *readers[STORE_READERS];
	bool reader_busy[STORE_READERS];
	time_t reader_retry;        /* one did not open: this handle until */
	int max_version;            /* what it was opened with */
	char *target;               /* what it was opened with (a second
	                               connection for a token lock) */
};

extern const struct store_driver store_sqlite_driver;
extern const struct store_driver store_pg_driver;

#endif
