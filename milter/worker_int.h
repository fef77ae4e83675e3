/*
 * worker_int.h - what the worker's stages share: the pool's state, one
 * job's context and each stage's entry points. Internal to milter/worker*.c
 * (and the unit tests that drive a stage).
 *
 * worker.c owns the thread pool and the per-job state machine; each step
 * of design.md lives in its own file:
 *   worker_call.c    one Halo call: tenant budget, 401 refresh, 429 pause,
 *                    the retry verdict and the backoff schedule
 *   worker_sender.c  sender resolution and its cache
 *   worker_thread.c  thread match (which ticket) and who may join it
 *   worker_closed.c  ticket-state cache, status list, closed-ticket policy
 *   worker_post.c    body and attachment rendering, the create/append
 *   worker_retention.c  deleting finished jobs after job_retention days
 */
#ifndef HALO_WORKER_INT_H
#define HALO_WORKER_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "confgen.h"
#include "halo.h"
#include "mime.h"
#include "oauth.h"
#include "join.h"
#include "store.h"
#include "worker.h"

#define WORKER_LEASE        ((int)w->conf->job_lease)  /* seconds a
	                                claimed job is ours (W in scope) */
#define WORKER_IDLE_MS      200     /* poll interval when idle */
#define WORKER_BACKOFF_MAX  3600    /* longest retry delay */
#define WORKER_HEADER_MAX   (256 * 1024)    /* header block read per job */
#define WORKER_HALO_LOOKUPS 3       /* Message-IDs asked of Halo per job */
#define WORKER_BUDGET_WAIT  5       /* seconds a job may wait for budget */
#define WORKER_429_INPLACE  4       /* 429s a call may wait out in place */
#define WORKER_TSTATE_SLOTS 1024    /* tickets whose open/closed state we keep */
#define WORKER_STATUS_TTL   3600    /* seconds a tenant's status list is kept */
#define WORKER_ATTACH_TRIES 4       /* attempts at a job's attachments before
                                     * it ends with a note of what failed */
#define WORKER_DATE_AHEAD   300     /* a mail's Date may run this far ahead
                                     * of its arrival ... */
#define WORKER_DATE_BEHIND  (30 * 86400)    /* ... and this far behind */
#define WORKER_PURGE_EVERY  3600    /* seconds between retention runs */
#define WORKER_PURGE_BATCH  500     /* jobs deleted per transaction */
#define WORKER_CLOSED_BUILTIN 9     /* Halo's built-in Closed status: used
                                     * only when excludeclosed cannot tell */

/* A tenant's request budget: a sliding window of send times. */
struct worker_rate {
	pthread_mutex_t lock;
	time_t *stamps;
	unsigned cap, head, count, window;
	time_t paused_until;            /* Halo said 429: nobody sends before */
	/* the tenant's statuses (under the worker's lock) */
	int64_t *closed_ids;            /* statuses that count as closed */
	size_t n_closed;
	int64_t first_open;             /* lowest-id status that is open */
	time_t statuses_at;             /* 0: not fetched yet */
};

/* A ticket's open/closed state as last seen (closed_tickets policy). */
struct worker_tstate {
	size_t tenant;                  /* index in conf->tenants */
	int64_t ticket;                 /* 0: empty slot */
	bool closed;
	time_t at;
};

struct worker {
	const struct conf *conf;        /* at start: pool-wide keys (workers,
	                                   job_lease, tenants' budgets) */
	struct confgen *gens;           /* NULL, or each job's generation */
	struct store *store;
	struct oauth *oauth;
	char *spool_dir;
	pthread_t *threads;
	unsigned n_threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	unsigned kicks;
	struct worker_rate *rates;      /* one per tenant, conf order */
	struct worker_tstate tstates[WORKER_TSTATE_SLOTS];  /* under lock */
	struct worker_stats stats;
	time_t next_purge;              /* under lock: next retention run */
	bool purging;                   /* under lock: a thread runs it */
};

/* How a step ended. */
enum step {
	STEP_OK,
	STEP_RETRY,                     /* transient: backoff */
	STEP_FAIL,                      /* permanent: reason */
	STEP_WAIT,                      /* agent token needed */
	STEP_SKIP,                      /* not logged: reason */
	STEP_LOST                       /* another worker owns the job now */
};

/* Everything about the job being processed. */
struct job_ctx {
	struct worker *w;
	struct store_job *job;
	const struct conf *conf;        /* this job's configuration ... */
	struct confgen_ref *gen;        /* ... held until ctx_free (or NULL) */
	const struct conf_tenant *t;
	struct worker_rate *rate;
	size_t tenant;                  /* index of t in conf->tenants */
	struct halo_conf hc;
	char *token;
	struct halo_err err;
	char reason[300];
	char who[128];                  /* log prefix: "QID: worker: job N" */
	char path[PATH_MAX];            /* the spooled message */
	/* headers of the spooled message */
	char *h_in_reply_to, *h_references, *h_to, *h_cc, *h_from, *h_date;
	const struct conf_route *route; /* the mailbox's rule (ticket options) */
	char **irt, **refs;
	size_t n_irt, n_refs;
	/* the sender */
	enum store_sender_kind sender_kind;
	int64_t user_id, site_id, client_id;
	char *contact_name, *client_name;
	/* the thread */
	bool outbound;                  /* an enrolled agent's outgoing mail */
	int64_t ticket_id;
	const char *matched_by;
	/* a closed ticket (closed_tickets) */
	int64_t new_status;             /* reopen: the status the append sets */
	int64_t follows;                /* new: the closed ticket it follows */
	int64_t *closed_ids;            /* this job's copy of the status list */
	const char *ticket_status;      /* as the store keeps it; NULL unknown */
	/* the post */
	bool create;                    /* no thread: a new ticket */
	int64_t posted_ticket, posted_action;
	const char *outcome;            /* "created" / "appended" once done */
	bool posted_before;             /* an earlier attempt reached Halo */
	char att_failed[1024];          /* attachments Halo did not store:
	                                   "name (why); ..." */
	size_t n_att_failed;
	char att_note[1100];            /* the job's reason when it ended with
	                                   attachments missing */
	/* who may join (thread_may_join): the first proposal refused */
	int64_t refused_ticket;         /* 0: none refused */
	char join_note[160];            /* "not-a-participant: ..." or "" */
};

/* worker.c: count into the worker's stats. */
void worker_count(struct worker *w, uint64_t *counter);

/*
 * worker_call.c. One Halo request FN(CTX, ARG) (returning >= 0 on success,
 * < 0 with CTX->err set) under the tenant's budget: a 401 refreshes the
 * token once, a short 429 pauses the tenant and is waited out in place.
 * Returns FN's result when it succeeded, else -1 with the verdict in *STEP
 * (STEP_RETRY, STEP_WAIT or STEP_FAIL) and CTX->reason / CTX->err set.
 */
typedef int (*worker_call_fn)(struct job_ctx *ctx, void *arg);
int worker_call(struct job_ctx *ctx, worker_call_fn fn, void *arg,
    enum step *step);
/* Reset CTX->err before a request. */
void worker_clear_err(struct job_ctx *ctx);
/* When a job put back after ATTEMPTS attempts is due again. */
time_t worker_backoff(unsigned base, int attempts, long retry_after);

/* worker_sender.c: resolve the sender into CTX (contact, client, ...). */
enum step sender_resolve(struct job_ctx *ctx);
/* How the sender matched, as the store keeps it for the Outlook pane. */
const char *sender_kind_name(const struct job_ctx *ctx);

/* worker_thread.c: the ticket this mail belongs to into CTX->ticket_id
 * (0: none), strongest evidence first. */
enum step thread_find(struct job_ctx *ctx);
/* Ask Halo which ticket carries MSGID; 0 found, 1 not, -1 *STEP set. */
int thread_halo_lookup(struct job_ctx *ctx, const char *msgid,
    int64_t *ticket, int64_t *action, enum step *step);
/* Whether CTX's sender may join TICKET that BY (a matched_by name)
 * proposes, into *MAY; TK is Halo's view of it, or NULL when not asked
 * (then the ticket's user and client come from the store, else from one
 * GET). Every proposed ticket passes here before it is taken. STEP_OK,
 * or how a needed Halo request ended (retry, wait). */
enum step thread_may_join(struct job_ctx *ctx, int64_t ticket,
    const struct halo_ticket *tk, const char *by, bool *may);
/* The ticket number in SUBJECT tagged as TAG ("[ID:{n}]"), or 0. */
int64_t thread_subject_tag(const char *tag, const char *subject);

/* worker_closed.c: apply the closed-ticket policy to CTX->ticket_id. */
enum step closed_check(struct job_ctx *ctx);
/* The tenant's status list into CTX->hc; *FIRST_OPEN its first open one. */
enum step closed_statuses(struct job_ctx *ctx, int64_t *first_open);
/* Remember TICKET of CTX's tenant as open or closed. */
void closed_remember(struct job_ctx *ctx, int64_t ticket, bool closed);
/* GET ticket ID into *TK; 0, 1 when Halo has no such ticket, -1 *STEP. */
int closed_ticket_get(struct job_ctx *ctx, int64_t id, struct halo_ticket *tk,
    enum step *step);

/* worker_post.c: create the ticket or append the action (CTX->create);
 * the result in CTX->posted_ticket / posted_action. Attachments Halo did
 * not store make it STEP_RETRY (the post itself is recorded and is not
 * made again) until WORKER_ATTACH_TRIES, then a private note names them. */
enum step post_message(struct job_ctx *ctx, const struct mime_message *m);
/* A retry of a job already in Halo (CTX->posted_ticket/action): upload
 * only the attachments Halo does not hold (GET /api/Attachment), as
 * post_message() settles them. */
enum step post_attachments_again(struct job_ctx *ctx,
    const struct mime_message *m);
/* The note/details HTML for M (sanitised body, then every part not
 * uploaded with its reason); malloc'd, NULL when out of memory. */
char *post_body_html(struct job_ctx *ctx, const struct mime_message *m,
    bool trim);
/* An RFC 5322 Date into *OUT (UTC); false when it is not one. */
bool post_parse_date(const char *date, time_t *out);
/* When the mail was written, for Halo (ISO 8601, UTC) into OUT: its Date
 * when within WORKER_DATE_AHEAD / WORKER_DATE_BEHIND of ARRIVED, else
 * ARRIVED. */
void post_mail_when(const char *date, time_t arrived, char out[32]);

/* worker_sender.c: a sender matched to one client by domain, for whom a
 * ticket is being created, becomes a Halo user of that client
 * (create_contacts); STEP_OK also when nothing was done. */
enum step sender_create_contact(struct job_ctx *ctx);

/* After a post: record the mail's From/To/Cc as participants of the
 * ticket (and, when created, its user and client) and put the join note
 * into RES->reason. */
void thread_done(struct job_ctx *ctx, struct store_result *res);

/* Retention (worker_retention.c): when due (at start, then every
 * WORKER_PURGE_EVERY seconds) and job_retention is not 0, delete finished
 * jobs older than that in batches, and log how many. One thread at a time;
 * the others return at once. */
void worker_retention(struct worker *w);

#endif
