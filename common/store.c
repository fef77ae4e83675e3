/*
 * store.c - the job store's query logic, shared by its backends.
 *
 * Every statement here is written once, in the SQL both SQLite and
 * PostgreSQL accept (store_int.h); the driver (store_sqlite.c,
 * store_pg.c) runs it. One connection per handle, serialised by a mutex:
 * end-of-message work is a handful of indexed statements, and a commit must
 * be durable before the milter answers.
 */
#include "store_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* The driver's cursor, shortened. */
static struct store_stmt *
sq_prepare(struct store *st, const char *sql)
{
	return st->drv->prepare(st->conn, sql);
}

static void
sq_text(struct store_stmt *s, int idx, const char *v)
{
	s->drv->bind_text(s, idx, v);
}

static void
sq_int(struct store_stmt *s, int idx, int64_t v)
{
	s->drv->bind_int(s, idx, v);
}

static int
sq_step(struct store_stmt *s)
{
	return s->drv->step(s);
}

static bool
sq_col_null(struct store_stmt *s, int col)
{
	return s->drv->col_null(s, col);
}

static const char *
sq_col_text(struct store_stmt *s, int col)
{
	return s->drv->col_text(s, col);
}

static int64_t
sq_col_int(struct store_stmt *s, int col)
{
	return s->drv->col_int(s, col);
}

static int
sq_changes(struct store_stmt *s)
{
	return s->drv->changes(s);
}

static void
sq_finalize(struct store_stmt *s)
{
	s->drv->finalize(s);
}

static int
sq_begin(struct store *st)
{
	return st->drv->begin(st->conn);
}

static int
sq_commit(struct store *st)
{
	return st->drv->commit(st->conn);
}

static void
sq_rollback(struct store *st)
{
	st->drv->rollback(st->conn);
}

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
	return STORE_SCHEMA_LATEST;
}

/* The driver a store target names: a postgresql:// or postgres:// URI or
 * a libpq conninfo ("host=... dbname=...") selects PostgreSQL, anything
 * else is a SQLite file. */
static const struct store_driver *
store_driver_for(const char *target)
{
	size_t key = strspn(target, "abcdefghijklmnopqrstuvwxyz_");

	if (strncmp(target, "postgresql://", 13) == 0 ||
	    strncmp(target, "postgres://", 11) == 0 ||
	    (key > 0 && target[key] == '='))
		return &store_pg_driver;
	return &store_sqlite_driver;
}

/* Whether TARGET names a PostgreSQL database. */
bool
store_target_is_pg(const char *target)
{
	return target != NULL && store_driver_for(target) == &store_pg_driver;
}

/* Open and migrate up to MAX_VERSION. */
struct store *
store_open_version(const char *path, int max_version, char *err, size_t errsz)
{
	struct store *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	st->drv = store_driver_for(path);
	if ((st->target = strdup(path)) == NULL) {
		snprintf(err, errsz, "out of memory");
		free(st);
		return NULL;
	}
	st->conn = st->drv->open(path, max_version, err, errsz);
	if (st->conn == NULL) {
		free(st->target);
		free(st);
		return NULL;
	}
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->gc_lock, NULL);
	pthread_cond_init(&st->gc_cond, NULL);
	st->gc_tail = &st->gc_head;
	pthread_mutex_init(&st->rd_lock, NULL);
	st->max_version = max_version;
	return st;
}

/* Open and migrate to the newest schema. */
struct store *
store_open(const char *path, char *err, size_t errsz)
{
	return store_open_version(path, STORE_SCHEMA_LATEST, err, errsz);
}

/* Close the store. */
struct store *
store_close(struct store *st)
{
	size_t i;

	if (st == NULL)
		return NULL;
	for (i = 0; i < STORE_READERS; i++)
		st->readers[i] = store_close(st->readers[i]);
	pthread_mutex_destroy(&st->rd_lock);
	st->drv->close(st->conn);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->gc_lock);
	pthread_cond_destroy(&st->gc_cond);
	free(st->target);
	free(st);
	return NULL;
}

/*
 * A connection for one of end of message's lookups: a reader of ST's own
 * (opened on first use, at most STORE_READERS, each a handle on the same
 * target), so the lookup neither waits for the lock a commit holds nor,
 * on SQLite in WAL mode, for the commit itself; ST when all are busy or
 * when one failed to open in the last 30 s (the database down: the next
 * try opens again). Give it back with store_reader_put().
 */
static struct store *
store_reader_get(struct store *st)
{
	struct store *r = st;
	char err[256];
	size_t i;

	pthread_mutex_lock(&st->rd_lock);
	for (i = 0; i < STORE_READERS; i++) {
		if (st->reader_busy[i])
			continue;
		if (st->readers[i] == NULL) {
			time_t now = time(NULL);

			if (now < st->reader_retry)
				break;
			st->readers[i] = store_open_version(st->target,
			    st->max_version, err, sizeof(err));
			if (st->readers[i] == NULL) {
				st->reader_retry = now + 30;
				break;
			}
		}
		st->reader_busy[i] = true;
		r = st->readers[i];
		break;
	}
	pthread_mutex_unlock(&st->rd_lock);
	return r;
}

static void
store_reader_put(struct store *st, struct store *r)
{
	size_t i;

	if (r == st)
		return;
	pthread_mutex_lock(&st->rd_lock);
	for (i = 0; i < STORE_READERS; i++)
		if (st->readers[i] == r)
			st->reader_busy[i] = false;
	pthread_mutex_unlock(&st->rd_lock);
}

/* Current schema version. */
int
store_schema_version(struct store *st)
{
	int v;

	pthread_mutex_lock(&st->lock);
	v = st->drv->version(st->conn);
	pthread_mutex_unlock(&st->lock);
	return v;
}

/* Whether several nodes may share this store (PostgreSQL). */
bool
store_is_shared(struct store *st)
{
	return st->drv->shared;
}

/* Look up the job id for (tenant, message_id) and, when DEDUP_KEY is not
 * NULL, that key (or a row older than keys); lock held by caller. */
static enum store_status
store_find_locked(struct store *st, const char *tenant, const char *message_id,
    const char *dedup_key, int64_t *id)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	if ((stmt = sq_prepare(st, "SELECT id FROM jobs WHERE tenant = ?1"
	    " AND message_id = ?2 AND (?3 IS NULL OR dedup_key IN (?3, ''))"
	    " ORDER BY id LIMIT 1")) == NULL)
		return STORE_ERROR;
	sq_text(stmt, 1, tenant);
	sq_text(stmt, 2, message_id);
	sq_text(stmt, 3, dedup_key);
	step = sq_step(stmt);
	if (step == STORE_STEP_ROW) {
		*id = sq_col_int(stmt, 0);
		rc = STORE_OK;
	} else if (step == STORE_STEP_DONE) {
		rc = STORE_NOT_FOUND;
	}
	sq_finalize(stmt);
	return rc;
}

/* Insert one job; lock and transaction held by caller. */
static enum store_status
store_insert_locked(struct store *st, const struct store_job_new *j,
    time_t now, int64_t *id)
{
	struct store_stmt *stmt;
	int step;

	if ((stmt = sq_prepare(st, "INSERT INTO jobs (tenant,"
	    " message_id, state, reason, queue_id, env_from, from_addr, subject,"
	    " recipients, agent, mode, conv_key, spool, sha256, size, no_create,"
	    " starts_thread, created, updated, dedup_key, sender_auth,"
	    " outbound_auth) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18,"
	    " ?19, ?20, ?21) ON CONFLICT DO NOTHING RETURNING id")) == NULL)
		return STORE_ERROR;
	sq_text(stmt, 1, j->tenant);
	sq_text(stmt, 2, j->message_id);
	sq_text(stmt, 3, store_state_name(j->state));
	sq_text(stmt, 4, j->reason);
	sq_text(stmt, 5, j->queue_id);
	sq_text(stmt, 6, j->env_from);
	sq_text(stmt, 7, j->from_addr);
	sq_text(stmt, 8, j->subject);
	sq_text(stmt, 9, j->recipients);
	sq_text(stmt, 10, j->agent);
	sq_text(stmt, 11, j->mode);
	sq_text(stmt, 12, j->conv_key);
	sq_text(stmt, 13, j->spool);
	sq_text(stmt, 14, NULL);        /* sha256: no longer computed; the
	                                   worker checks SIZE (column kept) */
	sq_int(stmt, 15, (int64_t)j->size);
	sq_int(stmt, 16, j->no_create);
	sq_int(stmt, 17, j->starts_thread);
	sq_int(stmt, 18, (int64_t)now);
	sq_text(stmt, 19, j->dedup_key ? j->dedup_key : "");
	sq_text(stmt, 20, j->sender_auth);
	sq_text(stmt, 21, j->outbound_auth);
	step = sq_step(stmt);
	if (step == STORE_STEP_ROW)
		*id = sq_col_int(stmt, 0);
	sq_finalize(stmt);
	if (step == STORE_STEP_DONE)    /* the conflict: nothing returned */
		return store_find_locked(st, j->tenant, j->message_id,
		    j->dedup_key ? j->dedup_key : "", id) == STORE_OK ?
		    STORE_DUPLICATE : STORE_ERROR;
	return step == STORE_STEP_ROW ? STORE_OK : STORE_ERROR;
}

/* Record a conversation key; lock and transaction held by caller. */
static int
store_conv_put_locked(struct store *st, const char *msgid, const char *key,
    time_t now)
{
	struct store_stmt *stmt;
	int step;

	if ((stmt = sq_prepare(st, "INSERT INTO conversations"
	    " (message_id, conv_key, created) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT DO NOTHING")) == NULL)
		return -1;
	sq_text(stmt, 1, msgid);
	sq_text(stmt, 2, key);
	sq_int(stmt, 3, (int64_t)now);
	step = sq_step(stmt);
	sq_finalize(stmt);
	return step == STORE_STEP_DONE ? 0 : -1;
}

/* Read the whole file PATH, which must be SIZE bytes (the job's record
 * of it, itself bounded by intake's size limit); malloc'd, or NULL. */
static void *
store_file_read(const char *path, uint64_t size)
{
	struct stat sb;
	unsigned char *buf;
	long r;
	int fd;

	if (size > STORE_MESSAGE_MAX || (fd = open(path, O_RDONLY |
	    O_CLOEXEC)) < 0)
		return NULL;
	/* the message is the file's first SIZE bytes (spooljob.h) */
	if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < size ||
	    (buf = malloc(size ? (size_t)size : 1)) == NULL) {
		close(fd);
		return NULL;
	}
	r = util_read_full(fd, buf, (size_t)size);
	close(fd);
	if (r < 0 || (uint64_t)r != size) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Keep message bytes in a shared store (lock and transaction held). */
static int
store_message_put_locked(struct store *st, const char *name, const void *data,
    uint64_t size, time_t now)
{
	struct store_stmt *stmt;
	int step;

	if ((stmt = sq_prepare(st, "INSERT INTO messages (name, size, created,"
	    " data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")) == NULL)
		return -1;
	sq_text(stmt, 1, name);
	sq_int(stmt, 2, (int64_t)size);
	sq_int(stmt, 3, (int64_t)now);
	stmt->drv->bind_blob(stmt, 4, data, (size_t)size);
	step = sq_step(stmt);
	sq_finalize(stmt);
	return step == STORE_STEP_DONE ? 0 : -1;
}

/* One caller of store_jobs_add waiting in the group commit queue. */
struct store_gc_entry {
	const struct store_job_new *jobs;
	size_t n;
	enum store_status *results;
	int64_t *ids;
	const char *conv_msgid, *conv_key;
	const struct store_job_new *msg;    /* whose bytes a shared store
	                                       keeps, or NULL */
	void *data;                         /* those bytes */
	enum store_status rc;
	bool done;
	struct store_gc_entry *next;
};

/* Write E's rows; lock and transaction held. */
static int
store_gc_write(struct store *st, struct store_gc_entry *e, time_t now)
{
	size_t i;

	if (e->msg != NULL && store_message_put_locked(st, e->msg->spool,
	    e->data, e->msg->size, now) != 0)
		return -1;
	for (i = 0; i < e->n; i++) {
		e->results[i] = store_insert_locked(st, &e->jobs[i], now,
		    &e->ids[i]);
		if (e->results[i] == STORE_ERROR)
			return -1;
	}
	if (e->conv_msgid != NULL && e->conv_key != NULL &&
	    store_conv_put_locked(st, e->conv_msgid, e->conv_key, now) != 0)
		return -1;
	return 0;
}

/* Whether every row from HEAD is held by its spool file's trailer. */
static bool
store_gc_relaxable(const struct store_gc_entry *head)
{
	const struct store_gc_entry *e;
	size_t i;

	for (e = head; e != NULL; e = e->next)
		for (i = 0; i < e->n; i++)
			if (!e->jobs[i].spool_holds_row)
				return false;
	return true;
}

/* Write the entries from HEAD in one transaction; when that fails, each in
 * its own, so one bad entry fails alone. Sets each entry's rc. */
static void
store_gc_run(struct store *st, struct store_gc_entry *head)
{
	struct store_gc_entry *e;
	time_t now = time(NULL);
	bool ok, relaxed;
	uint64_t n = 0;

	pthread_mutex_lock(&st->lock);
	relaxed = st->drv->relax != NULL && store_gc_relaxable(head) &&
	    st->drv->relax(st->conn, true) == 0;
	ok = sq_begin(st) == 0;
	for (e = head; ok && e != NULL; e = e->next, n++)
		ok = store_gc_write(st, e, now) == 0;
	if (ok && sq_commit(st) == 0) {
		for (e = head; e != NULL; e = e->next)
			e->rc = STORE_OK;
		st->gc_batches++;
		st->gc_entries += n;
		if (relaxed) {
			st->gc_relaxed++;
			st->drv->relax(st->conn, false);
		}
		pthread_mutex_unlock(&st->lock);
		return;
	}
	if (relaxed)
		st->drv->relax(st->conn, false);
	sq_rollback(st);
	for (e = head; e != NULL; e = e->next) {
		if (head->next == NULL || sq_begin(st) != 0) {
			e->rc = STORE_ERROR;
			continue;
		}
		if (store_gc_write(st, e, now) == 0 && sq_commit(st) == 0) {
			e->rc = STORE_OK;
			st->gc_batches++;
			st->gc_entries++;
		} else {
			sq_rollback(st);
			e->rc = STORE_ERROR;
		}
	}
	pthread_mutex_unlock(&st->lock);
}

/*
 * Add jobs in one transaction (see store.h), committed with whatever other
 * threads are adding at the same time: the first caller to find no commit
 * under way leads, takes every queued entry, writes them in one
 * transaction (one WAL sync, one PostgreSQL commit) and wakes the others;
 * those that queued while it was writing elect the next leader among
 * themselves. A caller returns only once its own rows are committed.
 */
enum store_status
store_jobs_add(struct store *st, const struct store_job_new *jobs, size_t n,
    enum store_status *results, int64_t *ids, const char *conv_msgid,
    const char *conv_key)
{
	struct store_gc_entry me, *batch, *e;
	size_t i;

	memset(&me, 0, sizeof(me));
	me.jobs = jobs;
	me.n = n;
	me.results = results;
	me.ids = ids;
	me.conv_msgid = conv_msgid;
	me.conv_key = conv_key;
	/* a shared store keeps the message itself: read before any lock */
	for (i = 0; st->drv->shared && i < n && me.msg == NULL; i++)
		if (jobs[i].spool != NULL && jobs[i].spool_file != NULL)
			me.msg = &jobs[i];
	if (me.msg != NULL && (me.data = store_file_read(me.msg->spool_file,
	    me.msg->size)) == NULL)
		return STORE_ERROR;
	pthread_mutex_lock(&st->gc_lock);
	*st->gc_tail = &me;
	st->gc_tail = &me.next;
	while (!me.done) {
		if (st->gc_leader) {
			pthread_cond_wait(&st->gc_cond, &st->gc_lock);
			continue;
		}
		st->gc_leader = true;
		batch = st->gc_head;
		st->gc_head = NULL;
		st->gc_tail = &st->gc_head;
		pthread_mutex_unlock(&st->gc_lock);
		store_gc_run(st, batch);
		pthread_mutex_lock(&st->gc_lock);
		for (e = batch; e != NULL; e = e->next)
			e->done = true;     /* E may return once this is seen */
		st->gc_leader = false;
		pthread_cond_broadcast(&st->gc_cond);
	}
	pthread_mutex_unlock(&st->gc_lock);
	free(me.data);
	return me.rc;
}

/* Transactions store_jobs_add wrote, and the calls they held. */
void
store_group_stats(struct store *st, uint64_t *batches, uint64_t *entries,
    uint64_t *relaxed)
{
	pthread_mutex_lock(&st->lock);
	*batches = st->gc_batches;
	*entries = st->gc_entries;
	*relaxed = st->gc_relaxed;
	pthread_mutex_unlock(&st->lock);
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
static enum store_status
store_job_find_key_on(struct store *st, const char *tenant,
    const char *message_id, const char *dedup_key, int64_t *id)
{
	enum store_status rc;

	pthread_mutex_lock(&st->lock);
	rc = store_find_locked(st, tenant, message_id,
	    dedup_key ? dedup_key : "", id);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* (see store.h) On a reader connection: store_reader_get(). */
enum store_status
store_job_find_key(struct store *st, const char *tenant,
    const char *message_id, const char *dedup_key, int64_t *id)
{
	struct store *r = store_reader_get(st);
	enum store_status rc = store_job_find_key_on(r, tenant, message_id,
	    dedup_key, id);

	store_reader_put(st, r);
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
store_col_dup(struct store_stmt *stmt, int col)
{
	const char *s = sq_col_text(stmt, col);

	return s ? strdup(s) : NULL;
}

/* Build a job from a row selected with STORE_JOB_COLUMNS. */
static struct store_job *
store_job_from_row(struct store_stmt *stmt)
{
	struct store_job *j = calloc(1, sizeof(*j));
	const char *state;

	if (j == NULL)
		return NULL;
	j->id = sq_col_int(stmt, 0);
	j->tenant = store_col_dup(stmt, 1);
	j->message_id = store_col_dup(stmt, 2);
	state = sq_col_text(stmt, 3);
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
	j->size = (uint64_t)sq_col_int(stmt, 15);
	j->no_create = sq_col_int(stmt, 16) != 0;
	j->starts_thread = sq_col_int(stmt, 17) != 0;
	j->attempts = sq_col_int(stmt, 18);
	j->created = (time_t)sq_col_int(stmt, 19);
	j->updated = (time_t)sq_col_int(stmt, 20);
	j->next_attempt = (time_t)sq_col_int(stmt, 21);
	j->ticket_id = sq_col_int(stmt, 22);
	j->action_id = sq_col_int(stmt, 23);
	j->result = store_col_dup(stmt, 24);
	j->contact = store_col_dup(stmt, 25);
	j->client = store_col_dup(stmt, 26);
	j->post_started = sq_col_int(stmt, 27) != 0;
	j->lease_until = (time_t)sq_col_int(stmt, 28);
	j->sender = store_col_dup(stmt, 29);
	j->contact_id = sq_col_int(stmt, 30);
	j->client_id = sq_col_int(stmt, 31);
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
	free(j->spool);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT " STORE_JOB_COLUMNS
	    " FROM jobs WHERE id = ?1")) != NULL) {
		sq_int(stmt, 1, id);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			*out = store_job_from_row(stmt);
			rc = *out ? STORE_OK : STORE_ERROR;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Iterate over jobs, newest first. */
enum store_status
store_job_list(struct store *st, int state, unsigned limit, store_job_fn fn,
    void *arg)
{
	struct store_stmt *stmt;
	struct store_job *j;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT " STORE_JOB_COLUMNS " FROM jobs"
	    " WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC"
	    " LIMIT ?2")) == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	if (state >= 0)
		sq_text(stmt, 1, store_state_name((enum store_state)state));
	sq_int(stmt, 2, limit ? (int64_t)limit : INT64_MAX);
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		j = store_job_from_row(stmt);
		if (j == NULL)
			break;
		fn(j, arg);
		store_job_free(j);
	}
	sq_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == STORE_STEP_DONE ? STORE_OK : STORE_ERROR;
}

/* Count jobs per state. */
enum store_status
store_job_counts(struct store *st, uint64_t counts[STORE_STATE_COUNT])
{
	struct store_stmt *stmt;
	int step, s;

	memset(counts, 0, STORE_STATE_COUNT * sizeof(counts[0]));
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT state, count(*) FROM jobs"
	    " GROUP BY state")) == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		s = store_state_parse(sq_col_text(stmt, 0));
		if (s >= 0 && s < STORE_STATE_COUNT)
			counts[s] = (uint64_t)sq_col_int(stmt, 1);
	}
	sq_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == STORE_STEP_DONE ? STORE_OK : STORE_ERROR;
}

/* Count jobs per tenant and state. */
enum store_status
store_job_counts_by_tenant(struct store *st, store_count_fn fn, void *arg)
{
	struct store_stmt *stmt;
	const char *tenant;
	int step, s;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT tenant, state, count(*) FROM jobs"
	    " GROUP BY tenant, state ORDER BY tenant, state")) == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		tenant = sq_col_text(stmt, 0);
		s = store_state_parse(sq_col_text(stmt, 1));
		if (tenant != NULL && s >= 0 && s < STORE_STATE_COUNT)
			fn(tenant, (enum store_state)s,
			    (uint64_t)sq_col_int(stmt, 2), arg);
	}
	sq_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == STORE_STEP_DONE ? STORE_OK : STORE_ERROR;
}

/* Creation time of the oldest queued job (0: none). */
enum store_status
store_job_oldest_queued(struct store *st, time_t *created)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;

	*created = 0;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT min(created) FROM jobs"
	    " WHERE state = 'queued'")) != NULL) {
		if (sq_step(stmt) == STORE_STEP_ROW) {
			if (!sq_col_null(stmt, 0))
				*created = (time_t)sq_col_int(stmt, 0);
			rc = STORE_OK;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Conversation key for a Message-ID. */
static enum store_status
store_conv_get_on(struct store *st, const char *message_id, char key[33])
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	const char *k;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT conv_key FROM conversations"
	    " WHERE message_id = ?1")) != NULL) {
		sq_text(stmt, 1, message_id);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			k = sq_col_text(stmt, 0);
			if (k != NULL && strlen((const char *)k) == 32) {
				memcpy(key, k, 33);
				rc = STORE_OK;
			}
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* (see store.h) On a reader connection: store_reader_get(). */
enum store_status
store_conv_get(struct store *st, const char *message_id, char key[33])
{
	struct store *r = store_reader_get(st);
	enum store_status rc = store_conv_get_on(r, message_id, key);

	store_reader_put(st, r);
	return rc;
}

/* Count a sender's thread-starting jobs since a time. */
static enum store_status
store_sender_creates_on(struct store *st, const char *tenant,
    const char *sender, time_t since, unsigned *count)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;

	*count = 0;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT count(*) FROM jobs WHERE"
	    " tenant = ?1 AND from_addr = ?2 AND created >= ?3 AND"
	    " starts_thread = 1 AND state <> 'skipped'")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_text(stmt, 2, sender);
		sq_int(stmt, 3, (int64_t)since);
		if (sq_step(stmt) == STORE_STEP_ROW) {
			*count = (unsigned)sq_col_int(stmt, 0);
			rc = STORE_OK;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* (see store.h) On a reader connection: store_reader_get(). */
enum store_status
store_sender_creates(struct store *st, const char *tenant,
    const char *sender, time_t since, unsigned *count)
{
	struct store *r = store_reader_get(st);
	enum store_status rc = store_sender_creates_on(r, tenant, sender,
	    since, count);

	store_reader_put(st, r);
	return rc;
}

/* Is a spool file referenced by any job? */
enum store_status
store_spool_used(struct store *st, const char *name, bool *used)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*used = false;
	pthread_mutex_lock(&st->lock);
	/* shared: done jobs of other nodes keep naming files this node no
	 * longer needs; a local copy is needed while the store holds the
	 * bytes or a job still needs them */
	if ((stmt = sq_prepare(st, st->drv->shared ? "SELECT 1 FROM messages"
	    " WHERE name = ?1 UNION ALL SELECT 1 FROM jobs WHERE spool = ?1"
	    " AND state NOT IN ('done', 'skipped') LIMIT 1" :
	    "SELECT 1 FROM jobs WHERE spool = ?1 LIMIT 1")) != NULL) {
		sq_text(stmt, 1, name);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW || step == STORE_STEP_DONE) {
			*used = step == STORE_STEP_ROW;
			rc = STORE_OK;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Run one write statement with bound arguments under the lock.
 * FMT letters: 's' text, 'i' int64, 'n' NULL. Sets *CHANGES when not NULL. */
static enum store_status
store_exec(struct store *st, const char *sql, const char *fmt, int *changes, ...)
{
	struct store_stmt *stmt;
	va_list ap;
	int step, i;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, sql)) == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	va_start(ap, changes);
	for (i = 0; fmt[i] != '\0'; i++) {
		switch (fmt[i]) {
		case 's': sq_text(stmt, i + 1, va_arg(ap, const char *)); break;
		case 'i': sq_int(stmt, i + 1, va_arg(ap, int64_t)); break;
		default: sq_text(stmt, i + 1, NULL); break;
		}
	}
	va_end(ap);
	step = sq_step(stmt);
	if (changes != NULL)
		*changes = sq_changes(stmt);
	sq_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == STORE_STEP_DONE ? STORE_OK : STORE_ERROR;
}

/* Claim the oldest due job. */
enum store_status
store_job_claim(struct store *st, time_t now, int lease, struct store_job **out)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int64_t id = 0;
	char sql[512];
	int step;

	*out = NULL;
	/* several nodes: the row lock skips a job another node is claiming;
	 * a conversation's jobs go in order: not while an earlier one of it
	 * is unfinished (a reply must find the ticket its thread's first mail
	 * makes, also when both were queued through a Halo outage) */
	snprintf(sql, sizeof(sql), "SELECT id FROM jobs WHERE"
	    " ((state = 'queued' AND next_attempt <= ?1) OR"
	    " (state = 'running' AND lease_until <= ?1)) AND NOT EXISTS"
	    " (SELECT 1 FROM jobs e WHERE e.tenant = jobs.tenant AND"
	    " e.conv_key = jobs.conv_key AND e.id < jobs.id AND"
	    " e.state IN ('queued', 'running'))"
	    " ORDER BY next_attempt, id LIMIT 1%s", st->drv->claim_lock);
	pthread_mutex_lock(&st->lock);
	if (sq_begin(st) != 0)
		goto unlock;
	if ((stmt = sq_prepare(st, sql)) == NULL)
		goto rollback;
	sq_int(stmt, 1, (int64_t)now);
	step = sq_step(stmt);
	if (step == STORE_STEP_ROW)
		id = sq_col_int(stmt, 0);
	sq_finalize(stmt);
	if (step == STORE_STEP_DONE) {
		rc = STORE_NOT_FOUND;
		goto rollback;
	}
	if (step != STORE_STEP_ROW)
		goto rollback;
	if ((stmt = sq_prepare(st, "UPDATE jobs SET state = 'running',"
	    " lease_until = ?2, attempts = attempts + 1, updated = ?3"
	    " WHERE id = ?1")) == NULL)
		goto rollback;
	sq_int(stmt, 1, id);
	sq_int(stmt, 2, (int64_t)(now + lease));
	sq_int(stmt, 3, (int64_t)now);
	step = sq_step(stmt);
	sq_finalize(stmt);
	if (step != STORE_STEP_DONE)
		goto rollback;
	if ((stmt = sq_prepare(st, "SELECT " STORE_JOB_COLUMNS
	    " FROM jobs WHERE id = ?1")) == NULL)
		goto rollback;
	sq_int(stmt, 1, id);
	if (sq_step(stmt) == STORE_STEP_ROW)
		*out = store_job_from_row(stmt);
	sq_finalize(stmt);
	if (*out == NULL ||
	    sq_commit(st) != 0) {
		*out = store_job_free(*out);
		goto rollback;
	}
	rc = STORE_OK;
	goto unlock;
rollback:
	sq_rollback(st);
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
	    " o.ticket_id = ?2 AND o.summary IS NOT NULL ORDER BY o.id LIMIT 1),"
	    " (SELECT p.summary FROM msgid_tickets p WHERE p.tenant ="
	    " jobs.tenant AND p.ticket_id = ?2 AND p.summary IS NOT NULL"
	    " ORDER BY p.job_id LIMIT 1)),"
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, sql)) != NULL) {
		sq_text(stmt, 1, a);
		sq_text(stmt, 2, b);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW && !sq_col_null(stmt, 0)) {
			*out = sq_col_int(stmt, 0);
			rc = STORE_OK;
		} else if (step == STORE_STEP_ROW || step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
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
	    " AND message_id = ?2 AND ticket_id IS NOT NULL UNION ALL"
	    " SELECT ticket_id FROM msgid_tickets WHERE tenant = ?1 AND"
	    " message_id = ?2 LIMIT 1", tenant, message_id, ticket_id);
}

/* The newest ticket of a conversation. */
enum store_status
store_ticket_by_conv(struct store *st, const char *tenant, const char *conv_key,
    int64_t *ticket_id)
{
	return store_query_id(st, "SELECT ticket_id FROM (SELECT id, ticket_id"
	    " FROM jobs WHERE tenant = ?1 AND conv_key = ?2 AND ticket_id IS NOT"
	    " NULL UNION ALL SELECT job_id, ticket_id FROM msgid_tickets WHERE"
	    " tenant = ?1 AND conv_key = ?2) AS c ORDER BY id DESC LIMIT 1",
	    tenant, conv_key, ticket_id);
}

/* Load an agent's token row. */
enum store_status
store_token_get(struct store *st, const char *tenant, const char *agent,
    struct store_token **out)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	struct store_token *t;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT tenant, agent, sealed, state,"
	    " last_refresh, updated FROM tokens WHERE tenant = ?1 AND agent = ?2")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_text(stmt, 2, agent);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW && (t = calloc(1, sizeof(*t))) != NULL) {
			t->tenant = store_col_dup(stmt, 0);
			t->agent = store_col_dup(stmt, 1);
			t->sealed = store_col_dup(stmt, 2);
			t->state = store_col_dup(stmt, 3);
			t->last_refresh = (time_t)sq_col_int(stmt, 4);
			t->updated = (time_t)sq_col_int(stmt, 5);
			*out = t;
			rc = STORE_OK;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT kind, user_id, site_id, client_id,"
	    " name, client_name, expires FROM senders WHERE tenant = ?1 AND"
	    " key = ?2 AND expires > ?3")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_text(stmt, 2, key);
		sq_int(stmt, 3, (int64_t)now);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			out->kind = (enum store_sender_kind)sq_col_int(stmt, 0);
			out->user_id = sq_col_int(stmt, 1);
			out->site_id = sq_col_int(stmt, 2);
			out->client_id = sq_col_int(stmt, 3);
			out->name = store_col_dup(stmt, 4);
			out->client_name = store_col_dup(stmt, 5);
			out->expires = (time_t)sq_col_int(stmt, 6);
			rc = STORE_OK;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Cache a sender resolution. */
enum store_status
store_sender_put(struct store *st, const char *tenant, const char *key,
    const struct store_sender *s)
{
	return store_exec(st, "INSERT INTO senders (tenant, key, kind,"
	    " user_id, site_id, client_id, name, client_name, expires) VALUES"
	    " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (tenant, key)"
	    " DO UPDATE SET kind = ?3, user_id = ?4, site_id = ?5,"
	    " client_id = ?6, name = ?7, client_name = ?8, expires = ?9", "ssiiiissi", NULL, tenant,
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

	*n = *posting = 0;
	/* shared: a running job may be another node's, alive; its lease
	 * says when it may be taken over */
	if (st->drv->shared)
		return STORE_OK;
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
	struct store_stmt *stmt;
	struct store_token t;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT tenant, agent, sealed, state,"
	    " last_refresh, updated FROM tokens WHERE ?1 IS NULL OR tenant = ?1"
	    " ORDER BY tenant, agent")) == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	sq_text(stmt, 1, tenant);
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		t.tenant = (char *)sq_col_text(stmt, 0);
		t.agent = (char *)sq_col_text(stmt, 1);
		t.sealed = (char *)sq_col_text(stmt, 2);
		t.state = (char *)sq_col_text(stmt, 3);
		t.last_refresh = (time_t)sq_col_int(stmt, 4);
		t.updated = (time_t)sq_col_int(stmt, 5);
		fn(&t, arg);
	}
	sq_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == STORE_STEP_DONE ? STORE_OK : STORE_ERROR;
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
store_enroll_from_row(struct store_stmt *stmt)
{
	struct store_enroll *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->id = sq_col_int(stmt, 0);
	e->tenant = store_col_dup(stmt, 1);
	e->agent = store_col_dup(stmt, 2);
	e->created = (time_t)sq_col_int(stmt, 3);
	e->expires = (time_t)sq_col_int(stmt, 4);
	e->used = sq_col_int(stmt, 5) != 0;
	e->verifier_sealed = store_col_dup(stmt, 6);
	e->state_expires = (time_t)sq_col_int(stmt, 7);
	e->result = store_col_dup(stmt, 8);
	e->finished = (time_t)sq_col_int(stmt, 9);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "INSERT INTO enrollments (tenant, agent,"
	    " code_hash, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " RETURNING id")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_text(stmt, 2, agent);
		sq_text(stmt, 3, code_hash);
		sq_int(stmt, 4, (int64_t)created);
		sq_int(stmt, 5, (int64_t)expires);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			if (id != NULL)
				*id = sq_col_int(stmt, 0);
			rc = STORE_OK;
		} else if (step == STORE_STEP_UNIQUE) {
			rc = STORE_DUPLICATE;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* One enrollment by SQL selecting on a hash (?1). */
static enum store_status
store_enroll_by(struct store *st, const char *sql, const char *hash,
    struct store_enroll **out)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*out = NULL;
	if (hash == NULL)
		return STORE_NOT_FOUND;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, sql)) != NULL) {
		sq_text(stmt, 1, hash);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			*out = store_enroll_from_row(stmt);
			rc = *out != NULL ? STORE_OK : STORE_ERROR;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*verifier_sealed = NULL;
	pthread_mutex_lock(&st->lock);
	if (sq_begin(st) != 0)
		goto unlock;
	if ((stmt = sq_prepare(st, "SELECT verifier_sealed FROM enrollments"
	    " WHERE id = ?1 AND verifier_sealed IS NOT NULL AND"
	    " state_expires > ?2 AND result IS NULL")) == NULL)
		goto rollback;
	sq_int(stmt, 1, id);
	sq_int(stmt, 2, (int64_t)now);
	step = sq_step(stmt);
	if (step == STORE_STEP_ROW)
		*verifier_sealed = store_col_dup(stmt, 0);
	sq_finalize(stmt);
	if (step == STORE_STEP_DONE) {
		rc = STORE_NOT_FOUND;
		goto rollback;
	}
	if (step != STORE_STEP_ROW || *verifier_sealed == NULL)
		goto rollback;
	if ((stmt = sq_prepare(st, "UPDATE enrollments SET verifier_sealed ="
	    " NULL WHERE id = ?1")) == NULL)
		goto rollback;
	sq_int(stmt, 1, id);
	step = sq_step(stmt);
	sq_finalize(stmt);
	if (step != STORE_STEP_DONE ||
	    sq_commit(st) != 0)
		goto rollback;
	rc = STORE_OK;
	goto unlock;
rollback:
	sq_rollback(st);
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
	struct store_stmt *stmt;
	struct store_enroll *e;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT " STORE_ENROLL_COLUMNS
	    " FROM enrollments WHERE ?1 IS NULL OR tenant = ?1 ORDER BY id DESC")) == NULL) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	sq_text(stmt, 1, tenant);
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		e = store_enroll_from_row(stmt);
		if (e == NULL)
			break;
		fn(e, arg);
		store_enroll_free(e);
	}
	sq_finalize(stmt);
	pthread_mutex_unlock(&st->lock);
	return step == STORE_STEP_DONE ? STORE_OK : STORE_ERROR;
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

/* The finished jobs a purge batch takes: ?1 = before, ?2 = the batch's
 * highest id. */
#define STORE_PURGE_WHERE "state IN ('done', 'skipped', 'failed') AND" \
	" updated < ?1 AND id <= ?2"

/* One purge step: SQL with BEFORE and LAST bound; false on error. */
static bool
store_purge_exec(struct store *st, const char *sql, time_t before,
    int64_t last, int *changes)
{
	struct store_stmt *stmt;
	int step;

	if ((stmt = sq_prepare(st, sql)) == NULL)
		return false;
	sq_int(stmt, 1, (int64_t)before);
	sq_int(stmt, 2, last);
	step = sq_step(stmt);
	if (changes != NULL)
		*changes = sq_changes(stmt);
	sq_finalize(stmt);
	return step == STORE_STEP_DONE;
}

/* A shared store's message bytes older than BEFORE that no job names (a
 * duplicate's copy: the bytes go in with the rows, whose insert then finds
 * the job already there); lock and transaction held. */
static bool
store_purge_orphans(struct store *st, time_t before)
{
	struct store_stmt *stmt;
	int step;

	if ((stmt = sq_prepare(st, "DELETE FROM messages WHERE created < ?1"
	    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.spool ="
	    " messages.name)")) == NULL)
		return false;
	sq_int(stmt, 1, (int64_t)before);
	step = sq_step(stmt);
	sq_finalize(stmt);
	return step == STORE_STEP_DONE;
}

/* Delete a batch of finished jobs (store.h). */
enum store_status
store_jobs_purge(struct store *st, time_t before, unsigned batch, unsigned *n,
    store_name_fn fn, void *arg)
{
	struct store_stmt *stmt;
	char **names = NULL, **grown;
	size_t n_names = 0, i;
	int64_t last = 0;
	int step, changes = 0;
	bool ok = false;

	*n = 0;
	if (batch == 0)
		return STORE_OK;
	pthread_mutex_lock(&st->lock);
	if (sq_begin(st) != 0) {
		pthread_mutex_unlock(&st->lock);
		return STORE_ERROR;
	}
	/* the batch: the BATCH lowest ids due, named by the highest of them */
	if ((stmt = sq_prepare(st, "SELECT max(id) FROM (SELECT id FROM jobs"
	    " WHERE state IN ('done', 'skipped', 'failed') AND updated < ?1"
	    " ORDER BY id LIMIT ?2) AS b")) == NULL)
		goto out;
	sq_int(stmt, 1, (int64_t)before);
	sq_int(stmt, 2, (int64_t)batch);
	step = sq_step(stmt);
	if (step == STORE_STEP_ROW && !sq_col_null(stmt, 0))
		last = sq_col_int(stmt, 0);
	sq_finalize(stmt);
	if (step != STORE_STEP_ROW)
		goto out;
	if (last == 0) {            /* nothing due: end the transaction */
		sq_rollback(st);
		pthread_mutex_unlock(&st->lock);
		return STORE_OK;
	}
	/* the spool files they refer to, for the caller once committed */
	if ((stmt = sq_prepare(st, "SELECT DISTINCT spool FROM jobs WHERE "
	    STORE_PURGE_WHERE " AND spool IS NOT NULL")) == NULL)
		goto out;
	sq_int(stmt, 1, (int64_t)before);
	sq_int(stmt, 2, last);
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		if (sq_col_text(stmt, 0) == NULL)
			continue;
		if ((grown = realloc(names, (n_names + 1) *
		    sizeof(*names))) == NULL)
			break;
		names = grown;
		if ((names[n_names] = strdup(sq_col_text(stmt, 0))) == NULL)
			break;
		n_names++;
	}
	sq_finalize(stmt);
	if (step != STORE_STEP_DONE)
		goto out;
	/* what threading needs stays; then the message bytes a shared store
	 * keeps, unless a job that stays refers to them; then the jobs */
	if (!store_purge_exec(st, "INSERT INTO msgid_tickets (job_id, tenant,"
	    " message_id, conv_key, ticket_id, summary, created) SELECT id,"
	    " tenant, message_id, conv_key, ticket_id, summary, created FROM"
	    " jobs WHERE " STORE_PURGE_WHERE " AND ticket_id IS NOT NULL"
	    " ON CONFLICT DO NOTHING", before, last, NULL))
		goto out;
	if (st->drv->shared && !store_purge_exec(st, "DELETE FROM messages"
	    " WHERE name IN (SELECT spool FROM jobs WHERE " STORE_PURGE_WHERE
	    ") AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.spool ="
	    " messages.name AND NOT (o.state IN ('done', 'skipped', 'failed')"
	    " AND o.updated < ?1 AND o.id <= ?2))", before, last, NULL))
		goto out;
	if (!store_purge_exec(st, "DELETE FROM jobs WHERE " STORE_PURGE_WHERE,
	    before, last, &changes))
		goto out;
	if (st->drv->shared && !store_purge_orphans(st, before))
		goto out;
	ok = sq_commit(st) == 0;
out:
	if (!ok)
		sq_rollback(st);
	pthread_mutex_unlock(&st->lock);
	if (ok)
		*n = changes > 0 ? (unsigned)changes : 0;
	for (i = 0; i < n_names; i++) {
		if (ok && fn != NULL)
			fn(names[i], arg);
		free(names[i]);
	}
	free(names);
	return ok ? STORE_OK : STORE_ERROR;
}

/* Does AGENT hold a usable token in TENANT? */
static enum store_status
store_agent_enrolled_on(struct store *st, const char *tenant,
    const char *agent, bool *enrolled)
{
	int64_t one = 0;
	enum store_status rc;

	rc = store_query_id(st, "SELECT 1 FROM tokens WHERE tenant = ?1 AND"
	    " agent = ?2 AND state = 'ok' AND sealed IS NOT NULL", tenant, agent,
	    &one);
	*enrolled = rc == STORE_OK;
	return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

/* (see store.h) On a reader connection: store_reader_get(). */
enum store_status
store_agent_enrolled(struct store *st, const char *tenant,
    const char *agent, bool *enrolled)
{
	struct store *r = store_reader_get(st);
	enum store_status rc = store_agent_enrolled_on(r, tenant, agent,
	    enrolled);

	store_reader_put(st, r);
	return rc;
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
	struct store_stmt *stmt;
	int step;

	if ((stmt = sq_prepare(st, sql)) == NULL)
		return -1;
	while ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		grown = realloc(*items, (*n + 1) * sizeof(*grown));
		if (grown == NULL)
			break;
		*items = grown;
		it = &grown[*n];
		memset(it, 0, sizeof(*it));
		(*n)++;
		it->id = enrollments ? sq_col_int(stmt, 0) : 0;
		it->tenant = store_col_dup(stmt, 1);
		it->agent = store_col_dup(stmt, 2);
		it->state_hash = enrollments ? store_col_dup(stmt, 3) : NULL;
		it->sealed = store_col_dup(stmt, 4);
		if (it->tenant == NULL || it->agent == NULL || it->sealed == NULL ||
		    (enrollments && it->state_hash == NULL))
			break;
	}
	sq_finalize(stmt);
	return step == STORE_STEP_DONE ? 0 : -1;
}

/* Write one replaced value (lock and transaction held). */
static int
store_reseal_write(struct store *st, const struct store_reseal_item *it,
    const char *table, const char *sealed)
{
	struct store_stmt *stmt;
	int step;

	if (strcmp(table, "tokens") == 0) {
		if ((stmt = sq_prepare(st, "UPDATE tokens SET sealed = ?3"
		    " WHERE tenant = ?1 AND agent = ?2")) == NULL)
			return -1;
		sq_text(stmt, 1, it->tenant);
		sq_text(stmt, 2, it->agent);
		sq_text(stmt, 3, sealed);
	} else {
		if ((stmt = sq_prepare(st, "UPDATE enrollments SET"
		    " verifier_sealed = ?2 WHERE id = ?1")) == NULL)
			return -1;
		sq_int(stmt, 1, it->id);
		sq_text(stmt, 2, sealed);
	}
	step = sq_step(stmt);
	if (step == STORE_STEP_DONE && sq_changes(stmt) != 1)
		step = STORE_STEP_ERROR;
	sq_finalize(stmt);
	return step == STORE_STEP_DONE ? 0 : -1;
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
	if (sq_begin(st) != 0)
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
	if (sq_commit(st) != 0)
		goto rollback;
	rc = STORE_OK;
	if (n != NULL)
		*n = done;
	goto unlock;
rollback:
	sq_rollback(st);
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
		if (store_exec(st, "INSERT INTO participants (tenant,"
		    " ticket_id, address, created) VALUES (?1, ?2, ?3, ?4)"
		    " ON CONFLICT DO NOTHING", "sisi",
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	*is = false;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT 1 FROM participants WHERE"
	    " tenant = ?1 AND ticket_id = ?2 AND address = lower(?3)")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_int(stmt, 2, ticket);
		sq_text(stmt, 3, addr);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW || step == STORE_STEP_DONE) {
			*is = step == STORE_STEP_ROW;
			rc = STORE_OK;
		}
		sq_finalize(stmt);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT user_id, client_id FROM"
	    " ticket_owners WHERE tenant = ?1 AND ticket_id = ?2 AND"
	    " (source = 'created' OR updated >= ?3)")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_int(stmt, 2, ticket);
		sq_int(stmt, 3, (int64_t)since);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			*user_id = sq_col_int(stmt, 0);
			*client_id = sq_col_int(stmt, 1);
			rc = STORE_OK;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	struct store_pane_session *ps;
	int step;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	/* the join makes a revoke (the token row deleted) end the sessions */
	if ((stmt = sq_prepare(st, "SELECT s.id_hash, s.tenant, s.agent,"
	    " s.agent_id, s.created, s.expires FROM pane_sessions s JOIN tokens t"
	    " ON t.tenant = s.tenant AND t.agent = s.agent AND t.sealed IS NOT"
	    " NULL WHERE s.id_hash = ?1 AND s.expires > ?2")) != NULL) {
		sq_text(stmt, 1, id_hash);
		sq_int(stmt, 2, (int64_t)now);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW && (ps = calloc(1, sizeof(*ps))) != NULL) {
			ps->id_hash = store_col_dup(stmt, 0);
			ps->tenant = store_col_dup(stmt, 1);
			ps->agent = store_col_dup(stmt, 2);
			ps->agent_id = sq_col_int(stmt, 3);
			ps->created = (time_t)sq_col_int(stmt, 4);
			ps->expires = (time_t)sq_col_int(stmt, 5);
			if (ps->id_hash == NULL || ps->tenant == NULL ||
			    ps->agent == NULL)
				ps = store_pane_session_free(ps);
			else {
				*out = ps;
				rc = STORE_OK;
			}
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
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
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	int step;

	memset(out, 0, sizeof(*out));
	out->attachments = true;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT tickettype_id, outcome,"
	    " attachments, internal FROM pane_defaults WHERE tenant = ?1 AND"
	    " agent = ?2")) != NULL) {
		sq_text(stmt, 1, tenant);
		sq_text(stmt, 2, agent);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			out->tickettype_id = sq_col_int(stmt, 0);
			out->outcome = store_col_dup(stmt, 1);
			out->attachments = sq_col_int(stmt, 2) != 0;
			out->internal = sq_col_int(stmt, 3) != 0;
			rc = STORE_OK;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
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
	    " o.summary IS NOT NULL ORDER BY o.id LIMIT 1), (SELECT p.summary"
	    " FROM msgid_tickets p WHERE p.tenant = jobs.tenant AND p.ticket_id"
	    " = ?2 AND p.summary IS NOT NULL ORDER BY p.job_id LIMIT 1)),"
	    " ticket_status = ?7"
	    " WHERE id = ?1 AND state NOT IN ('queued', 'running')",
	    "iiisiss", &changes, id, r->ticket_id, r->action_id, r->result,
	    (int64_t)time(NULL), r->summary, r->ticket_status);
	if (rc == STORE_OK && changes == 0)
		return STORE_NOT_FOUND;
	return rc;
}

/* ------------------------------------------------ several nodes (shared) */

/* Write a message's bytes to PATH durably (temp file, fsync, rename). */
static int
store_file_write(const char *path, const void *data, size_t len)
{
	char tmp[4096];
	size_t done = 0;
	ssize_t w;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.fetch", path) >= (int)sizeof(tmp))
		return -1;
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return -1;
	while (done < len) {
		w = write(fd, (const char *)data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (done != len || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		if (done != len)
			close(fd);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Bring a shared store's copy of message NAME to PATH (see store.h). */
enum store_status
store_message_fetch(struct store *st, const char *name, const char *path)
{
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	const void *data;
	size_t len = 0;
	int step;

	if (!st->drv->shared)
		return STORE_NOT_FOUND;
	pthread_mutex_lock(&st->lock);
	if ((stmt = sq_prepare(st, "SELECT size, data FROM messages"
	    " WHERE name = ?1")) != NULL) {
		sq_text(stmt, 1, name);
		step = sq_step(stmt);
		if (step == STORE_STEP_ROW) {
			data = stmt->drv->col_blob(stmt, 1, &len);
			if (data != NULL && (int64_t)len == sq_col_int(stmt, 0) &&
			    store_file_write(path, data, len) == 0)
				rc = STORE_OK;
		} else if (step == STORE_STEP_DONE) {
			rc = STORE_NOT_FOUND;
		}
		sq_finalize(stmt);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Drop a shared store's copy of message NAME (no job needs it). */
enum store_status
store_message_delete(struct store *st, const char *name)
{
	if (!st->drv->shared)
		return STORE_OK;
	return store_exec(st, "DELETE FROM messages WHERE name = ?1", "s", NULL,
	    name);
}

/* A token row under a lock (see store.h). */
struct store_token_lock {
	struct store *st;           /* the handle the row is read on */
	bool own;                   /* a connection of its own (shared) */
	int lockfd;                 /* one node: the lock file, or -1 */
	char *tenant, *agent;
};

/*
 * One node (SQLite): the daemon and halo-milterctl (doctor, token tests)
 * are separate processes on one database, so the refresh of one agent
 * is serialised across processes by an open-file-description lock on one
 * byte of "<database>.tokens.lock", the byte chosen by a hash of tenant
 * and agent. OFD locks belong to the descriptor, not the process: two
 * threads of one daemon exclude each other too, and closing one
 * descriptor releases only its own lock. Returns the descriptor holding
 * the lock, or -1.
 */
static int
store_token_flock(const struct store *st, const char *tenant,
    const char *agent)
{
	char path[4096];
	struct flock fl;
	struct stat sb;
	uint64_t h = 1469598103934665603ULL;          /* FNV-1a */
	const char *p;
	int fd;

	for (p = tenant; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0) * 1099511628211ULL;
	for (p = agent; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	if (snprintf(path, sizeof(path), "%s.tokens.lock", st->target) >=
	    (int)sizeof(path))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	/* made by root (halo-milterctl): the daemon's user must open it */
	if (geteuid() == 0 && stat(st->target, &sb) == 0 &&
	    fchown(fd, sb.st_uid, sb.st_gid) != 0) {
		/* the daemon then fails to open it, and says so */
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)(h & 0x3fffffff);
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Open a second connection to ST's database (no migration). */
static struct store *
store_connect(struct store *st)
{
	struct store *c;
	char err[256];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->drv = st->drv;
	c->conn = st->drv->open(st->target, -1, err, sizeof(err));
	if (c->conn == NULL) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

/* Release a token lock's strings and connection. */
static void
store_token_lock_free(struct store_token_lock *lk)
{
	if (lk == NULL)
		return;
	if (lk->own)
		store_close(lk->st);
	if (lk->lockfd >= 0)
		close(lk->lockfd);      /* releases the lock */
	free(lk->tenant);
	free(lk->agent);
	free(lk);
}

/* Read TENANT/AGENT's token row under a lock held until
 * store_token_unlock(). */
enum store_status
store_token_lock(struct store *st, const char *tenant, const char *agent,
    struct store_token **out, struct store_token_lock **lock)
{
	struct store_token_lock *lk;
	struct store_stmt *stmt;
	struct store_token *t;
	enum store_status rc = STORE_ERROR;
	char sql[256];
	int step;

	*out = NULL;
	*lock = NULL;
	if (!st->drv->shared) {         /* one node: a lock file */
		if ((lk = calloc(1, sizeof(*lk))) == NULL)
			return STORE_ERROR;
		lk->st = st;
		if ((lk->tenant = strdup(tenant)) == NULL ||
		    (lk->agent = strdup(agent)) == NULL ||
		    (lk->lockfd = store_token_flock(st, tenant, agent)) < 0) {
			lk->lockfd = -1;
			store_token_lock_free(lk);
			return STORE_ERROR;
		}
		if ((rc = store_token_get(st, tenant, agent, out)) != STORE_OK) {
			store_token_lock_free(lk);
			return rc;
		}
		*lock = lk;
		return STORE_OK;
	}
	if ((lk = calloc(1, sizeof(*lk))) == NULL)
		return STORE_ERROR;
	lk->lockfd = -1;
	lk->own = true;
	if ((lk->tenant = strdup(tenant)) == NULL ||
	    (lk->agent = strdup(agent)) == NULL ||
	    (lk->st = store_connect(st)) == NULL) {
		lk->own = lk->st != NULL;
		store_token_lock_free(lk);
		return STORE_ERROR;
	}
	snprintf(sql, sizeof(sql), "SELECT tenant, agent, sealed, state,"
	    " last_refresh, updated FROM tokens WHERE tenant = ?1 AND"
	    " agent = ?2%s", st->drv->row_lock);
	if (sq_begin(lk->st) != 0 || (stmt = sq_prepare(lk->st, sql)) == NULL) {
		store_token_lock_free(lk);
		return STORE_ERROR;
	}
	sq_text(stmt, 1, tenant);
	sq_text(stmt, 2, agent);
	step = sq_step(stmt);
	if (step == STORE_STEP_ROW && (t = calloc(1, sizeof(*t))) != NULL) {
		t->tenant = store_col_dup(stmt, 0);
		t->agent = store_col_dup(stmt, 1);
		t->sealed = store_col_dup(stmt, 2);
		t->state = store_col_dup(stmt, 3);
		t->last_refresh = (time_t)sq_col_int(stmt, 4);
		t->updated = (time_t)sq_col_int(stmt, 5);
		*out = t;
		rc = STORE_OK;
	} else if (step == STORE_STEP_DONE) {
		rc = STORE_NOT_FOUND;
	}
	sq_finalize(stmt);
	if (rc != STORE_OK) {
		sq_rollback(lk->st);
		store_token_lock_free(lk);
		return rc;
	}
	*lock = lk;
	return STORE_OK;
}

/* Write and release a token lock (see store.h). */
enum store_status
store_token_unlock(struct store_token_lock *lk, const char *sealed,
    const char *state)
{
	struct store *st;
	struct store_stmt *stmt;
	enum store_status rc = STORE_OK;
	int step;

	if (lk == NULL)
		return STORE_OK;
	st = lk->st;
	if (!lk->own) {
		if (sealed != NULL)
			rc = store_token_put(st, lk->tenant, lk->agent, sealed,
			    state != NULL ? state : "ok");
		else if (state != NULL)
			rc = store_token_set_state(st, lk->tenant, lk->agent,
			    state);
		store_token_lock_free(lk);
		return rc;
	}
	if (sealed != NULL || state != NULL) {
		if ((stmt = sq_prepare(st, "UPDATE tokens SET"
		    " sealed = COALESCE(?3, sealed), state = COALESCE(?4, state),"
		    " last_refresh = CASE WHEN ?3 IS NULL THEN last_refresh"
		    " ELSE ?5 END, updated = ?5 WHERE tenant = ?1 AND"
		    " agent = ?2")) == NULL) {
			rc = STORE_ERROR;
		} else {
			sq_text(stmt, 1, lk->tenant);
			sq_text(stmt, 2, lk->agent);
			sq_text(stmt, 3, sealed);
			sq_text(stmt, 4, state);
			sq_int(stmt, 5, (int64_t)time(NULL));
			step = sq_step(stmt);
			if (step != STORE_STEP_DONE || sq_changes(stmt) != 1)
				rc = STORE_ERROR;
			sq_finalize(stmt);
		}
	}
	if (rc == STORE_OK && sq_commit(st) != 0)
		rc = STORE_ERROR;
	if (rc != STORE_OK)
		sq_rollback(st);
	store_token_lock_free(lk);
	return rc;
}

/* --------------------------------------------------- store migrate */

/* The tables store_copy() moves, with each column's kind: 's' text,
 * 'i' integer. Ids are kept (jobs and enrollments are referred to by id). */
static const struct store_copy_table {
	const char *name;
	const char *columns;
	const char *kinds;
	bool has_id;
} store_copy_tables[] = {
	{ "jobs", STORE_JOB_COLUMNS,
	  "i" "ssssssssssssss" "iiiiiiiii" "sss" "ii" "s" "ii" "sssss", true },
	{ "conversations", "message_id, conv_key, created", "ssi", false },
	{ "tokens", "tenant, agent, sealed, state, last_refresh, updated",
	  "ssssii", false },
	{ "senders", "tenant, key, kind, user_id, site_id, client_id, name,"
	  " client_name, expires", "ssiiiissi", false },
	{ "enrollments", "id, tenant, agent, code_hash, created, expires, used,"
	  " state_hash, verifier_sealed, state_expires, result, finished",
	  "isssiiissisi", true },
	{ "participants", "tenant, ticket_id, address, created", "sisi", false },
	{ "ticket_owners", "tenant, ticket_id, user_id, client_id, source,"
	  " updated", "siiisi", false },
	{ "pane_sessions", "id_hash, tenant, agent, agent_id, created, expires",
	  "sssiii", false },
	{ "pane_defaults", "tenant, agent, tickettype_id, outcome, attachments,"
	  " internal, updated", "ssisiii", false },
	{ "msgid_tickets", "job_id, tenant, message_id, conv_key, ticket_id,"
	  " summary, created", "isssisi", false },
};

/* Copy one table's rows (TO's lock and transaction held). */
static int
store_copy_rows(struct store *from, struct store *to,
    const struct store_copy_table *t, unsigned *rows)
{
	struct store_stmt *in, *out;
	char sql[1024], *p;
	size_t i, n = strlen(t->kinds);
	int step, w;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s", t->columns, t->name);
	if ((in = sq_prepare(from, sql)) == NULL)
		return -1;
	w = snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (",
	    t->name, t->columns);
	for (i = 0, p = sql + w; i < n && p < sql + sizeof(sql) - 16; i++)
		p += snprintf(p, 16, "%s?%zu", i ? ", " : "", i + 1);
	snprintf(p, 4, ")");
	*rows = 0;
	while ((step = sq_step(in)) == STORE_STEP_ROW) {
		if ((out = sq_prepare(to, sql)) == NULL)
			break;
		for (i = 0; i < n; i++) {
			if (sq_col_null(in, (int)i) && t->kinds[i] == 'i')
				out->drv->bind_null_int(out, (int)i + 1);
			else if (sq_col_null(in, (int)i))
				sq_text(out, (int)i + 1, NULL);
			else if (t->kinds[i] == 'i')
				sq_int(out, (int)i + 1, sq_col_int(in, (int)i));
			else
				sq_text(out, (int)i + 1, sq_col_text(in,
				    (int)i));
		}
		w = sq_step(out);
		sq_finalize(out);
		if (w != STORE_STEP_DONE)
			break;
		(*rows)++;
	}
	sq_finalize(in);
	return step == STORE_STEP_DONE ? 0 : -1;
}

/* Copy message bytes of unfinished jobs from SPOOL_DIR/msg (TO shared). */
static int
store_copy_messages(struct store *from, struct store *to,
    const char *spool_dir, unsigned *copied)
{
	struct store_stmt *in;
	char path[4096];
	const char *name;
	void *data;
	uint64_t size;
	int step, rc = 0;

	*copied = 0;
	if ((in = sq_prepare(from, "SELECT spool, max(size) FROM jobs WHERE"
	    " spool IS NOT NULL AND state NOT IN ('done', 'skipped')"
	    " GROUP BY spool")) == NULL)
		return -1;
	while (rc == 0 && (step = sq_step(in)) == STORE_STEP_ROW) {
		name = sq_col_text(in, 0);
		size = (uint64_t)sq_col_int(in, 1);
		if (name == NULL || strchr(name, '/') != NULL ||
		    snprintf(path, sizeof(path), "%s/msg/%s", spool_dir, name) >=
		    (int)sizeof(path))
			continue;
		if ((data = store_file_read(path, size)) == NULL) {
			rc = -1;        /* a job whose message is gone */
			break;
		}
		if (store_message_put_locked(to, name, data, size,
		    time(NULL)) != 0)
			rc = -1;
		else
			(*copied)++;
		free(data);
	}
	if (rc == 0 && step != STORE_STEP_DONE)
		rc = -1;
	sq_finalize(in);
	return rc;
}

/* Copy every row of FROM into the empty shared store TO (see store.h). */
enum store_status
store_copy(struct store *from, struct store *to, const char *spool_dir,
    struct store_copy_report *rep, char *err, size_t errsz)
{
	const struct store_copy_table *t;
	unsigned rows;
	int64_t one;
	size_t i;

	memset(rep, 0, sizeof(*rep));
	if (store_query_id(to, "SELECT 1 FROM jobs UNION ALL SELECT 1 FROM"
	    " tokens LIMIT 1", NULL, NULL, &one) != STORE_NOT_FOUND) {
		snprintf(err, errsz, "the target store is not empty");
		return STORE_DUPLICATE;
	}
	pthread_mutex_lock(&from->lock);
	pthread_mutex_lock(&to->lock);
	if (sq_begin(to) != 0) {
		snprintf(err, errsz, "cannot begin a transaction on the target");
		goto fail_unlock;
	}
	for (i = 0; i < sizeof(store_copy_tables) /
	    sizeof(store_copy_tables[0]); i++) {
		t = &store_copy_tables[i];
		if (store_copy_rows(from, to, t, &rows) != 0) {
			snprintf(err, errsz, "copying %s failed", t->name);
			goto fail;
		}
		if (strcmp(t->name, "jobs") == 0)
			rep->jobs = rows;
		else if (strcmp(t->name, "tokens") == 0)
			rep->tokens = rows;
		else if (strcmp(t->name, "enrollments") == 0)
			rep->enrollments = rows;
		else
			rep->index_rows += rows;
		/* new ids continue after the copied ones */
		if (t->has_id && to->drv->id_resync != NULL &&
		    to->drv->id_resync(to->conn, t->name) != 0) {
			snprintf(err, errsz, "cannot move %s ids on", t->name);
			goto fail;
		}
	}
	if (to->drv->shared && spool_dir != NULL &&
	    store_copy_messages(from, to, spool_dir, &rep->messages) != 0) {
		snprintf(err, errsz, "copying spooled messages from %s/msg"
		    " failed (a job's file missing or of another size)",
		    spool_dir);
		goto fail;
	}
	if (sq_commit(to) != 0) {
		snprintf(err, errsz, "commit failed");
		goto fail;
	}
	pthread_mutex_unlock(&to->lock);
	pthread_mutex_unlock(&from->lock);
	return STORE_OK;
fail:
	sq_rollback(to);
fail_unlock:
	pthread_mutex_unlock(&to->lock);
	pthread_mutex_unlock(&from->lock);
	return STORE_ERROR;
}

/* The backend's name ("sqlite", "postgresql"). */
const char *
store_backend(struct store *st)
{
	return st->drv->name;
}

/* Take one request of TENANT's budget (see store.h). */
enum store_status
store_budget_take(struct store *st, const char *tenant, time_t now,
    unsigned window, unsigned cap, time_t *oldest)
{
	static const char *const steps[] = {
		"INSERT INTO budget_tenants (tenant) VALUES (?1)"
		" ON CONFLICT DO NOTHING",
		"DELETE FROM budget WHERE tenant = ?1 AND at <= ?2",
	};
	struct store_stmt *stmt;
	enum store_status rc = STORE_ERROR;
	char sql[128];
	int64_t count = 0;
	size_t i;
	int step;

	*oldest = now;
	if (!st->drv->shared)
		return STORE_ERROR;
	pthread_mutex_lock(&st->lock);
	if (sq_begin(st) != 0)
		goto unlock;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if ((stmt = sq_prepare(st, steps[i])) == NULL)
			goto rollback;
		sq_text(stmt, 1, tenant);
		if (i == 1)
			sq_int(stmt, 2, (int64_t)now - (int64_t)window);
		step = sq_step(stmt);
		sq_finalize(stmt);
		if (step != STORE_STEP_DONE)
			goto rollback;
		if (i == 0) {   /* the tenant's row: one node at a time */
			snprintf(sql, sizeof(sql), "SELECT tenant FROM"
			    " budget_tenants WHERE tenant = ?1%s",
			    st->drv->row_lock);
			if ((stmt = sq_prepare(st, sql)) == NULL)
				goto rollback;
			sq_text(stmt, 1, tenant);
			step = sq_step(stmt);
			sq_finalize(stmt);
			if (step != STORE_STEP_ROW)
				goto rollback;
		}
	}
	if ((stmt = sq_prepare(st, "SELECT count(*), COALESCE(min(at), 0)"
	    " FROM budget WHERE tenant = ?1")) == NULL)
		goto rollback;
	sq_text(stmt, 1, tenant);
	if ((step = sq_step(stmt)) == STORE_STEP_ROW) {
		count = sq_col_int(stmt, 0);
		*oldest = (time_t)sq_col_int(stmt, 1);
	}
	sq_finalize(stmt);
	if (step != STORE_STEP_ROW)
		goto rollback;
	rc = STORE_NOT_FOUND;
	if (count < (int64_t)cap) {
		if ((stmt = sq_prepare(st, "INSERT INTO budget (tenant, at)"
		    " VALUES (?1, ?2)")) == NULL)
			goto rollback;
		sq_text(stmt, 1, tenant);
		sq_int(stmt, 2, (int64_t)now);
		step = sq_step(stmt);
		sq_finalize(stmt);
		if (step != STORE_STEP_DONE)
			goto rollback;
		rc = STORE_OK;
	}
	if (sq_commit(st) == 0)
		goto unlock;
rollback:
	rc = STORE_ERROR;
	sq_rollback(st);
unlock:
	pthread_mutex_unlock(&st->lock);
	return rc;
}
