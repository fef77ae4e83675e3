/*
 * store.h - the durable job store: one interface, two backends.
 *
 * Callers (intake, worker, oauth, web, the CLI) see only the functions
 * below; none of them knows which database is underneath. Behind them the
 * store is split the way OpenSMTPD splits its queue backends:
 *
 *   store.c         the query logic, written once in the SQL SQLite (3.35+)
 *                   and PostgreSQL both accept (?N placeholders, INSERT ...
 *                   ON CONFLICT, RETURNING);
 *   store_int.h     the driver table: open + migrate, begin/commit/
 *                   rollback, and a statement cursor (prepare, bind, step,
 *                   column, changes, finalize), plus the few dialect
 *                   differences as data (the claim's FOR UPDATE SKIP
 *                   LOCKED);
 *   store_sqlite.c  SQLite in WAL mode: the embedded default;
 *   store_pg.c      PostgreSQL via libpq, for several MX nodes sharing one
 *                   store ("store = postgresql://..." selects it).
 *
 * So a second backend is one small cursor driver and its schema, not a
 * second copy of every query. Every function is safe to call from several
 * threads on one handle. Strings passed in are copied; strings handed out
 * belong to the caller and are freed with the matching *_free() function.
 */
#ifndef HALO_STORE_H
#define HALO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct store;

enum store_status {
	STORE_OK = 0,
	STORE_DUPLICATE,       /* (tenant, message_id, dedup_key) already has
	                          a job */
	STORE_NOT_FOUND,
	STORE_ERROR
};

/* Job states; stored as their names (store_state_name). */
enum store_state {
	STORE_QUEUED = 0,      /* waiting for the worker */
	STORE_SKIPPED,         /* not to be logged; reason says why */
	STORE_RUNNING,
	STORE_DONE,
	STORE_FAILED,          /* permanent error; reason says why */
	STORE_WAITING          /* blocked on an operator (re-enroll, ...) */
};
#define STORE_STATE_COUNT   (STORE_WAITING + 1)     /* how many states */

/* How a job logs its mail (the jobs.mode column keeps these names). */
enum store_mode {
	STORE_MODE_UNKNOWN = 0,     /* a name this version does not know */
	STORE_MODE_INTAKE,          /* "intake": may open a ticket */
	STORE_MODE_THREAD_ONLY,     /* "thread-only": appends only */
	STORE_MODE_OUTBOUND         /* "outbound": an agent's outgoing mail */
};

/* The mode a jobs.mode name stands for. */
enum store_mode store_mode_parse(const char *name);

/* A new job, as intake builds it at end of message. */
struct store_job_new {
	const char *tenant;
	const char *message_id;     /* "<...>", the idempotency key with tenant */
	enum store_state state;     /* STORE_QUEUED or STORE_SKIPPED */
	const char *reason;         /* skip reason, or NULL */
	const char *queue_id;       /* MTA queue id */
	const char *env_from;
	const char *from_addr;
	const char *subject;        /* decoded, UTF-8 */
	const char *recipients;     /* routed recipients, comma-separated */
	const char *agent;          /* agent email whose token is used */
	const char *mode;           /* "intake" or "thread-only" */
	const char *conv_key;       /* 32 hex */
	const char *spool;          /* spool file name, or NULL */
	uint64_t size;              /* spool file size in bytes */
	bool no_create;
	bool starts_thread;
	/* schema v7 */
	const char *dedup_key;      /* with tenant and message_id, what makes a
	                               job unique: a digest of the sender and
	                               the content (64 hex); NULL = "" */
	const char *sender_auth;    /* how From: was authenticated: "none",
	                               "aligned", "spf", "dkim", "dmarc"
	                               (authres_sender_name()) */
	const char *outbound_auth;  /* an agent's outgoing mail: how the
	                               session proved it ("sasl" or
	                               "network"); NULL for other mail */
	const char *spool_file;     /* the committed spool file's path: a
	                               shared store copies its bytes in the
	                               jobs' transaction; NULL: not copied */
	bool spool_holds_row;       /* the spool file's trailer holds this row
	                               (spooljob.h): a commit of only such rows
	                               need not be synced (SQLite) */
};

/* A job as stored. */
struct store_job {
	int64_t id;
	char *tenant, *message_id, *reason, *queue_id, *env_from, *from_addr;
	char *subject, *recipients, *agent, *mode, *conv_key, *spool;
	enum store_mode job_mode;   /* MODE, parsed when the row is read */
	enum store_state state;
	uint64_t size;
	bool no_create, starts_thread;
	int attempts;
	time_t created, updated, next_attempt;
	/* the worker's outcome (schema v3) */
	int64_t ticket_id, action_id;  /* 0 when none */
	char *result;               /* "created", "appended", or NULL */
	char *contact;              /* matched contact name, or NULL */
	char *client;               /* matched client name, or NULL */
	bool post_started;          /* a create/append request was sent */
	time_t lease_until;         /* the claim's lease (its fencing token) */
	/* for the Outlook pane (schema v5) */
	char *sender;               /* how the sender matched: "contact",
	                               "client", "fallback", "none",
	                               "ambiguous", or NULL (not resolved) */
	int64_t contact_id, client_id;  /* 0 when none */
	char *summary;              /* the ticket's summary, or NULL */
	char *ticket_status;        /* when logged (v6): "new", "open",
	                               "reopened", "closed", or NULL (unknown) */
	/* schema v7 (struct store_job_new); "" and NULL in older rows */
	char *dedup_key, *sender_auth, *outbound_auth;
};

/* What the worker records when a job is done. */
struct store_result {
	int64_t ticket_id;
	int64_t action_id;
	const char *result;         /* "created" or "appended" */
	const char *contact;        /* may be NULL */
	const char *client;         /* may be NULL */
	const char *sender;         /* match kind (struct store_job); NULL */
	int64_t contact_id, client_id;  /* 0 when none */
	const char *summary;        /* NULL: keep the ticket's known one */
	const char *ticket_status;  /* struct store_job; may be NULL */
	const char *reason;         /* kept on the done job (e.g. why a
	                               proposed ticket was not joined); NULL */
};

/* An agent's sealed refresh token and its standing. */
struct store_token {
	char *tenant, *agent;
	char *sealed;               /* crypto_seal() output; NULL when revoked */
	char *state;                /* "ok" or "reenroll" */
	time_t last_refresh, updated;
};

/* How a job's sender was resolved (the sender cache's kind column keeps
 * these numbers). */
enum store_sender_kind {
	STORE_SENDER_UNKNOWN = 0,   /* not resolved */
	STORE_SENDER_CONTACT = 1,   /* a Halo contact (user) */
	STORE_SENDER_CLIENT = 2,    /* a client, by domain or the catch-all */
	STORE_SENDER_NONE = 3,      /* nobody in Halo */
	STORE_SENDER_AMBIGUOUS = 4  /* a domain claimed by several clients */
};

/* A cached sender resolution. */
struct store_sender {
	enum store_sender_kind kind;
	int64_t user_id, site_id, client_id;
	char *name, *client_name;
	time_t expires;
};

/*
 * Open (creating when absent) the store at PATH and bring its schema up to
 * date. On failure returns NULL and a message in ERR.
 */
struct store *store_open(const char *path, char *err, size_t errsz);

/* Like store_open, but migrate no further than MAX_VERSION (tests). */
struct store *store_open_version(const char *path, int max_version,
    char *err, size_t errsz);

/* Close; returns NULL. */
struct store *store_close(struct store *st);

/* Whether the store target TARGET (a store = value) names PostgreSQL. */
bool store_target_is_pg(const char *target);

/* Whether several nodes may share this store (PostgreSQL): then jobs a
 * crash left running are not reset at start (another node may hold
 * them), and message bytes live in the store, not the spool directory. */
bool store_is_shared(struct store *st);

/* The schema version in use, and the newest this build knows. */
int store_schema_version(struct store *st);
int store_schema_latest(void);

/*
 * Add jobs atomically (one transaction). RESULTS[i] is STORE_OK with
 * IDS[i] set, or STORE_DUPLICATE with IDS[i] the existing job's id.
 * When CONV_MSGID is not NULL, also record CONV_MSGID -> CONV_KEY.
 * Returns STORE_OK unless the transaction failed (then nothing was added).
 * Group commit: calls made at the same time from several threads share one
 * transaction (one sync; none on SQLite when every row in it is
 * spool_holds_row), each returning once its own rows are committed;
 * when that transaction fails, each call is retried in its own, so one
 * failing call does not fail the others.
 */
enum store_status store_jobs_add(struct store *st,
    const struct store_job_new *jobs, size_t n, enum store_status *results,
    int64_t *ids, const char *conv_msgid, const char *conv_key);

/* How many transactions store_jobs_add has committed on ST, how many
 * calls they held (BATCHES <= ENTRIES; equal when nothing was grouped),
 * and how many of them were not synced (every row spool_holds_row, on a
 * driver that can relax a commit: SQLite). */
void store_group_stats(struct store *st, uint64_t *batches,
    uint64_t *entries, uint64_t *relaxed);

/* The id of the oldest job for (TENANT, MESSAGE_ID), if any. */
enum store_status store_job_find(struct store *st, const char *tenant,
    const char *message_id, int64_t *id);

/* The id of the job for (TENANT, MESSAGE_ID, DEDUP_KEY), if any: the one
 * intake would call this mail a duplicate of (rows older than schema v7,
 * which have no key, match any key). */
enum store_status store_job_find_key(struct store *st, const char *tenant,
    const char *message_id, const char *dedup_key, int64_t *id);

/* Load one job; free with store_job_free(). */
enum store_status store_job_get(struct store *st, int64_t id,
    struct store_job **out);
struct store_job *store_job_free(struct store_job *job);

/*
 * Call FN for each job, newest first (at most LIMIT; 0 = all), optionally
 * only those in STATE (pass -1 for any). FN's job is freed after it returns.
 */
typedef void (*store_job_fn)(const struct store_job *job, void *arg);
enum store_status store_job_list(struct store *st, int state, unsigned limit,
    store_job_fn fn, void *arg);

/* Count jobs per state into COUNTS (indexed by enum store_state). */
enum store_status store_job_counts(struct store *st,
    uint64_t counts[STORE_STATE_COUNT]);

/* Count jobs per tenant and state: FN once per (TENANT, STATE) that has
 * jobs, tenants in name order. */
typedef void (*store_count_fn)(const char *tenant, enum store_state state,
    uint64_t count, void *arg);
enum store_status store_job_counts_by_tenant(struct store *st,
    store_count_fn fn, void *arg);

/* When the oldest queued job was created; 0 when none is queued. */
enum store_status store_job_oldest_queued(struct store *st, time_t *created);

/* The conversation key recorded for MESSAGE_ID (33 bytes with NUL). */
enum store_status store_conv_get(struct store *st, const char *message_id,
    char key[33]);

/* Jobs in TENANT from SENDER that started a thread since SINCE. */
enum store_status store_sender_creates(struct store *st, const char *tenant,
    const char *sender, time_t since, unsigned *count);

/* Whether any job refers to the spool file NAME (a shared store: any job
 * not done or skipped, or the store still keeps its bytes). */
enum store_status store_spool_used(struct store *st, const char *name,
    bool *used);

/*
 * The worker's side. store_job_claim() takes the oldest due job (queued with
 * next_attempt <= NOW, or running with an expired lease after a crash),
 * marks it running until NOW + LEASE and counts an attempt; NOT_FOUND when
 * nothing is due.
 */
enum store_status store_job_claim(struct store *st, time_t now, int lease,
    struct store_job **out);

/*
 * At start-up on a single node: jobs left "running" by a crash go back to
 * the queue (their lease would otherwise hold them). A job that had marked
 * itself posting may have a request still in flight at Halo when the process
 * died: it waits POSTING_GRACE seconds from that mark before its recheck, so
 * the recheck does not miss a create/append Halo applies late. *N counts the
 * jobs requeued, *POSTING those of them that wait.
 */
enum store_status store_jobs_reset_running(struct store *st, int posting_grace,
    unsigned *n, unsigned *posting);

/*
 * Record, durably, that a create/append request is about to be sent: a
 * later attempt must first ask Halo whether it arrived. Fenced: it succeeds
 * only while the job still holds the lease LEASE it was claimed with (no
 * other worker took it over after a lapse), and renews it to NEW_LEASE.
 * STORE_NOT_FOUND when the job is no longer ours: do not post.
 */
enum store_status store_job_mark_posting(struct store *st, int64_t id,
    time_t lease, time_t new_lease);

/* Record that job ID's create/append reached Halo as TICKET_ID/ACTION_ID
 * while the job goes on (its attachments are retried): a later attempt
 * takes them from here and never posts the mail again. */
enum store_status store_job_posted(struct store *st, int64_t id,
    int64_t ticket_id, int64_t action_id);

/* Finish: done with a result; back to queued at NEXT_ATTEMPT with REASON;
 * or end in STATE (failed, skipped, waiting) with REASON. */
enum store_status store_job_done(struct store *st, int64_t id,
    const struct store_result *r);
enum store_status store_job_retry(struct store *st, int64_t id,
    time_t next_attempt, const char *reason);
enum store_status store_job_finish(struct store *st, int64_t id,
    enum store_state state, const char *reason);

/* Operator re-queue ("halo-milterctl retry"): queued, due now.
 * STORE_NOT_FOUND for no such job, a running one, or a done one (its mail
 * is on its ticket and its spooled message is gone). */
enum store_status store_job_requeue(struct store *st, int64_t id);

/* Jobs of TENANT/AGENT in "waiting" go back to the queue (token fixed). */
enum store_status store_jobs_wake_agent(struct store *st, const char *tenant,
    const char *agent, unsigned *woken);

/*
 * Retention: delete at most BATCH finished jobs (done, skipped, failed)
 * last changed before BEFORE, oldest ids first, in one transaction, with a
 * shared store's copies of their messages. Of each that reached a ticket,
 * its Message-ID, conversation key, ticket and summary stay in the thread
 * index (store_ticket_by_msgid/_by_conv still find them). *N counts the jobs
 * deleted: fewer than BATCH when none is left. After the commit FN (may be
 * NULL) is called with each spool file name they referred to, for the
 * caller to remove the file when store_spool_used() says no job needs it.
 * Queued, running and waiting jobs are never deleted.
 */
typedef void (*store_name_fn)(const char *name, void *arg);
enum store_status store_jobs_purge(struct store *st, time_t before,
    unsigned batch, unsigned *n, store_name_fn fn, void *arg);

/* Our index: the ticket a logged Message-ID / conversation went to. */
enum store_status store_ticket_by_msgid(struct store *st, const char *tenant,
    const char *message_id, int64_t *ticket_id);
enum store_status store_ticket_by_conv(struct store *st, const char *tenant,
    const char *conv_key, int64_t *ticket_id);

/* Tokens: one sealed refresh token per (tenant, agent). */
enum store_status store_token_get(struct store *st, const char *tenant,
    const char *agent, struct store_token **out);
enum store_status store_token_put(struct store *st, const char *tenant,
    const char *agent, const char *sealed, const char *state);
enum store_status store_token_set_state(struct store *st, const char *tenant,
    const char *agent, const char *state);
struct store_token *store_token_free(struct store_token *t);

/* Whether AGENT holds a usable token in TENANT (outbound mail). */
enum store_status store_agent_enrolled(struct store *st, const char *tenant,
    const char *agent, bool *enrolled);

/* Call FN for each token row of TENANT (NULL: every tenant). */
typedef void (*store_token_fn)(const struct store_token *t, void *arg);
enum store_status store_token_list(struct store *st, const char *tenant,
    store_token_fn fn, void *arg);

/* Sender cache, keyed by (tenant, address or domain). */
enum store_status store_sender_get(struct store *st, const char *tenant,
    const char *key, time_t now, struct store_sender *out);
enum store_status store_sender_put(struct store *st, const char *tenant,
    const char *key, const struct store_sender *s);
void store_sender_clear(struct store_sender *s);

/* Whether a job that still needs the spool file NAME exists (queued,
 * running, waiting or failed: "retry" must find the message). */
enum store_status store_spool_pending(struct store *st, const char *name,
    bool *pending);

/* Delete an agent's token row ("halo-milterctl revoke"); NOT_FOUND when
 * there was none. The agent's jobs then wait for a new enrollment, and
 * the agent's pane sessions end. */
enum store_status store_token_delete(struct store *st, const char *tenant,
    const char *agent);

/*
 * Enrollments (schema v4): a one-time code for TENANT/AGENT. Only keyed
 * hashes of the code and of the OAuth state are kept, never the values;
 * the PKCE verifier is kept (sealed) only from the start of the sign-in
 * until its callback takes it.
 */
struct store_enroll {
	int64_t id;
	char *tenant, *agent;
	time_t created, expires;        /* the code's life */
	bool used;                      /* the code started a sign-in */
	char *verifier_sealed;          /* NULL before the start, once taken */
	time_t state_expires;           /* the sign-in's life; 0 before start */
	char *result;                   /* NULL while pending; "ok", "denied",
	                                   "mismatch", "failed" */
	time_t finished;
};

/* A new code (its hash) for TENANT/AGENT valid until EXPIRES. */
enum store_status store_enroll_add(struct store *st, const char *tenant,
    const char *agent, const char *code_hash, time_t created, time_t expires,
    int64_t *id);

/* The enrollment whose code hash (or state hash) is HASH, whatever its
 * standing (the caller tells expired from used); free with
 * store_enroll_free(). */
enum store_status store_enroll_by_code(struct store *st, const char *hash,
    struct store_enroll **out);
enum store_status store_enroll_by_state(struct store *st, const char *hash,
    struct store_enroll **out);

/* Consume code ID at NOW: mark it used and bind the sign-in (state hash,
 * sealed verifier, STATE_EXPIRES). NOT_FOUND when the code was used or
 * had expired by NOW (so two starts cannot both win). */
enum store_status store_enroll_start(struct store *st, int64_t id, time_t now,
    const char *state_hash, const char *verifier_sealed, time_t state_expires);

/* Take the sealed verifier of enrollment ID once, clearing it in the row:
 * *OUT malloc'd; NOT_FOUND when already taken or the sign-in expired by
 * NOW. */
enum store_status store_enroll_take(struct store *st, int64_t id, time_t now,
    char **verifier_sealed);

/* Record how enrollment ID ended (and clear any verifier left). */
enum store_status store_enroll_finish(struct store *st, int64_t id,
    const char *result);

/* Call FN for each enrollment of TENANT (NULL: all), newest first. */
typedef void (*store_enroll_fn)(const struct store_enroll *e, void *arg);
enum store_status store_enroll_list(struct store *st, const char *tenant,
    store_enroll_fn fn, void *arg);

/* Delete enrollments created before BEFORE (housekeeping). */
enum store_status store_enroll_purge(struct store *st, time_t before,
    unsigned *n);

struct store_enroll *store_enroll_free(struct store_enroll *e);

/* Names of the states, for CLI and logs; and back. */
const char *store_state_name(enum store_state state);
int store_state_parse(const char *name);

/*
 * Key rotation ("halo-milterctl keys rotate"): every sealed value in the
 * store, as store_reseal() shows it to its callback.
 */
struct store_sealed {
	const char *table;          /* "tokens" or "enrollments" */
	const char *tenant, *agent;
	const char *state_hash;     /* enrollments: the sign-in's state hash
	                               (part of the verifier's AAD); else NULL */
	const char *sealed;
};

/* Make the replacement of V->sealed: malloc'd text, or NULL to abort. */
typedef char *(*store_reseal_fn)(const struct store_sealed *v, void *arg);

/*
 * Replace every sealed value (tokens' refresh tokens, pending sign-ins'
 * verifiers) with what FN makes of it, in one transaction: all of them or,
 * when FN returns NULL or anything fails, none. *N (when not NULL) counts
 * the values replaced.
 */
enum store_status store_reseal(struct store *st, store_reseal_fn fn,
    void *arg, unsigned *n);

/*
 * Who may join a ticket (schema v8, issue 11). Participants: the addresses
 * on mail logged to a ticket (From, To, Cc), lower-cased. Owners: a
 * ticket's user and client, from the create that made it ("created", kept
 * for good) or from a GET of it ("halo", trusted while younger than the
 * caller's SINCE).
 */
#define STORE_PARTICIPANTS_MAX  32  /* addresses recorded per mail */
enum store_status store_participants_add(struct store *st, const char *tenant,
    int64_t ticket, const char *const *addrs, size_t n);
enum store_status store_participant_is(struct store *st, const char *tenant,
    int64_t ticket, const char *addr, bool *is);
enum store_status store_ticket_owner_put(struct store *st, const char *tenant,
    int64_t ticket, int64_t user_id, int64_t client_id, const char *source);
enum store_status store_ticket_owner_get(struct store *st, const char *tenant,
    int64_t ticket, time_t since, int64_t *user_id, int64_t *client_id);

/*
 * The interactive pane (schema v9). A pane session is kept only as a keyed
 * hash of its id, bound to one agent of one tenant; it is live while not
 * expired and while that agent holds a token (a revoke ends it).
 */
struct store_pane_session {
	char *id_hash;              /* 64 hex */
	char *tenant, *agent;
	int64_t agent_id;           /* Halo's id of the agent */
	time_t created, expires;
};

enum store_status store_pane_session_add(struct store *st,
    const struct store_pane_session *ps);
enum store_status store_pane_session_get(struct store *st,
    const char *id_hash, time_t now, struct store_pane_session **out);
/* Swap OLD_HASH for NEW_HASH with a new expiry; NOT_FOUND when OLD_HASH
 * is no longer live at NOW. */
enum store_status store_pane_session_renew(struct store *st,
    const char *old_hash, const char *new_hash, time_t now, time_t expires);
enum store_status store_pane_session_end(struct store *st,
    const char *id_hash);
/* Delete the sessions expired by NOW. (store_token_delete() ends the
 * agent's sessions too: a revoke is final.) */
enum store_status store_pane_sessions_purge(struct store *st, time_t now);
struct store_pane_session *store_pane_session_free(
    struct store_pane_session *ps);

/* An agent's defaults in the pane. */
struct store_pane_defaults {
	int64_t tickettype_id;      /* 0: the tenant's ticket_type_id */
	char *outcome;              /* NULL: the tenant's append_outcome */
	bool attachments;           /* send the mail's attachments */
	bool internal;              /* appends are internal notes */
};

/* Fills OUT (built-in defaults and NOT_FOUND when none were saved);
 * release with store_pane_defaults_clear(). */
enum store_status store_pane_defaults_get(struct store *st,
    const char *tenant, const char *agent, struct store_pane_defaults *out);
enum store_status store_pane_defaults_put(struct store *st,
    const char *tenant, const char *agent,
    const struct store_pane_defaults *d);
void store_pane_defaults_clear(struct store_pane_defaults *d);

/* The pane logged job ID's mail itself (an agent's append, create or
 * re-route): the job is done with R's ticket, action, result, summary and
 * ticket status (its sender match is kept). NOT_FOUND while the job is
 * queued or running: then the worker owns it. */
enum store_status store_job_done_by_pane(struct store *st, int64_t id,
    const struct store_result *r);

/* A pane sign-in (an enrollment row made before anyone signed in) names
 * its agent once Halo said who signed in. */
enum store_status store_enroll_set_agent(struct store *st, int64_t id,
    const char *agent);

/*
 * Several nodes (a shared store: PostgreSQL). Message bytes: store_jobs_add()
 * keeps the spool file a job names (store_job_new.spool_file) in the store,
 * in the same transaction as the job, so any node's worker can read it;
 * STORE_MESSAGE_MAX bounds it (intake's own limit is far lower).
 * store_message_fetch() writes the stored copy of NAME to PATH (temp file,
 * fsync, rename); NOT_FOUND when the store keeps none (SQLite: the spool
 * file is the only copy). store_message_delete() drops it once no job needs
 * it (SQLite: nothing to do).
 */
#define STORE_MESSAGE_MAX   ((uint64_t)512 * 1024 * 1024)
enum store_status store_message_fetch(struct store *st, const char *name,
    const char *path);
enum store_status store_message_delete(struct store *st, const char *name);

/*
 * Token refresh, single-flight across nodes: store_token_lock() reads
 * TENANT/AGENT's row (as store_token_get) under a lock held until
 * store_token_unlock(). On PostgreSQL that is SELECT ... FOR UPDATE in a
 * transaction on a connection of its own, so a second node's refresh waits
 * and then reads the rotated token, never the one already presented; on
 * SQLite (one node, but the daemon and halo-milterctl are two processes)
 * an open-file-description lock on a byte of "<database>.tokens.lock".
 * store_token_unlock() writes SEALED (when not NULL: the rotated token,
 * last_refresh now) and STATE (when not NULL), commits, then releases: a
 * rotated token is durable before anyone uses it. STORE_ERROR when the
 * write did not commit. LOCK is freed in every case.
 */
struct store_token_lock;
enum store_status store_token_lock(struct store *st, const char *tenant,
    const char *agent, struct store_token **out,
    struct store_token_lock **lock);
enum store_status store_token_unlock(struct store_token_lock *lock,
    const char *sealed, const char *state);

/*
 * "halo-milterctl store migrate": copy every row of FROM (jobs with their
 * ids, tokens still sealed, enrollments, the conversation index, sender
 * cache, participants, owners, pane sessions and defaults) into TO, which
 * must hold no job and no token, in one transaction on TO. When TO is
 * shared, the spooled messages of unfinished jobs are read from
 * SPOOL_DIR/msg into it too (a missing one fails the copy). STORE_DUPLICATE
 * when TO is not empty; STORE_ERROR with ERR otherwise.
 */
struct store_copy_report {
	unsigned jobs, tokens, enrollments, index_rows, messages;
};
enum store_status store_copy(struct store *from, struct store *to,
    const char *spool_dir, struct store_copy_report *rep, char *err,
    size_t errsz);

/*
 * A tenant's request budget shared by every node (PostgreSQL): take one
 * request at NOW when fewer than CAP were taken in the last WINDOW seconds
 * (STORE_OK), else STORE_NOT_FOUND with *OLDEST the oldest one still
 * counted. One node at a time per tenant (a row lock). STORE_ERROR on
 * SQLite, whose single node counts in memory.
 */
enum store_status store_budget_take(struct store *st, const char *tenant,
    time_t now, unsigned window, unsigned cap, time_t *oldest);

/* The backend's name: "sqlite" or "postgresql". */
const char *store_backend(struct store *st);

#endif
