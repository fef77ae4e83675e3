/*
 * worker_closed.c - closed tickets (design.md: configurable). A table of
 * tickets' open/closed state as last seen, each tenant's status list
 * (which statuses count as closed, fetched at most hourly) and the policy:
 * "reopen" appends with a new status, "new" opens a ticket that names the
 * closed one, "append" never asks.
 */
#include "worker_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"

/* The slot of TENANT's TICKET in the state table. */
static struct worker_tstate *
closed_slot(struct worker *w, size_t tenant, int64_t ticket)
{
	uint64_t h = (uint64_t)ticket * 0x9e3779b97f4a7c15ULL + tenant;

	return &w->tstates[(h >> 32) % WORKER_TSTATE_SLOTS];
}

/* Whether a ticket's state is known and younger than TTL; *CLOSED. */
static bool
closed_known(struct job_ctx *ctx, int64_t ticket, unsigned ttl, bool *closed)
{
	struct worker *w = ctx->w;
	struct worker_tstate *ts;
	bool known;

	pthread_mutex_lock(&w->lock);
	ts = closed_slot(w, ctx->tenant, ticket);
	known = ts->ticket == ticket && ts->tenant == ctx->tenant &&
	    time(NULL) - ts->at < (time_t)ttl;
	if (known)
		*closed = ts->closed;
	pthread_mutex_unlock(&w->lock);
	return known;
}

/* Remember a ticket's state (a newer ticket takes over a shared slot). */
void
closed_remember(struct job_ctx *ctx, int64_t ticket, bool closed)
{
	struct worker *w = ctx->w;
	struct worker_tstate *ts;

	pthread_mutex_lock(&w->lock);
	ts = closed_slot(w, ctx->tenant, ticket);
	ts->tenant = ctx->tenant;
	ts->ticket = ticket;
	ts->closed = closed;
	ts->at = time(NULL);
	pthread_mutex_unlock(&w->lock);
}

/* A ticket GET for worker_call(). */
struct closed_get_req {
	int64_t id;
	struct halo_ticket *tk;
};

static int
closed_get_call(struct job_ctx *ctx, void *arg)
{
	struct closed_get_req *rq = arg;

	memset(rq->tk, 0, sizeof(*rq->tk));
	return halo_ticket_get(&ctx->hc, ctx->token, rq->id, rq->tk, &ctx->err);
}

/* GET a ticket; 1 when Halo has no such ticket (see worker_int.h). */
int
closed_ticket_get(struct job_ctx *ctx, int64_t id, struct halo_ticket *tk,
    enum step *step)
{
	struct closed_get_req rq = { id, tk };

	if (worker_call(ctx, closed_get_call, &rq, step) >= 0)
		return 0;
	if (ctx->err.kind != HTTP_NOT_FOUND)
		return -1;
	ctx->reason[0] = '\0';
	return 1;
}

/* A status list request for worker_call(): which are closed, from the
 * full list against Status?excludeclosed=true (the spec has no flag). */
struct closed_list_req {
	struct halo_named *list;
	size_t n;
	bool known;
};

static int
closed_list_call(struct job_ctx *ctx, void *arg)
{
	struct closed_list_req *rq = arg;

	halo_named_free(rq->list, rq->n);
	rq->list = NULL;
	rq->n = 0;
	return halo_status_states(&ctx->hc, ctx->token, &rq->list, &rq->n,
	    &rq->known, &ctx->err);
}

/* The tenant's list when fetched within the hour: a copy into *IDS / *NC
 * (false when stale, or out of memory with *IDS NULL and *NC > 0). */
static bool
closed_statuses_cached(struct job_ctx *ctx, int64_t **ids, size_t *nc,
    int64_t *open)
{
	struct worker_rate *r = ctx->rate;
	bool fresh;

	pthread_mutex_lock(&ctx->w->lock);
	fresh = r->statuses_at != 0 &&
	    time(NULL) - r->statuses_at < WORKER_STATUS_TTL;
	if (fresh) {
		*nc = r->n_closed;
		if (*nc > 0 && (*ids = malloc(*nc * sizeof(**ids))) != NULL)
			memcpy(*ids, r->closed_ids, *nc * sizeof(**ids));
		*open = r->first_open;
	}
	pthread_mutex_unlock(&ctx->w->lock);
	return fresh;
}

/* Keep the tenant's list (IDS, NC closed; OPEN the first open one). */
static void
closed_statuses_keep(struct job_ctx *ctx, const int64_t *ids, size_t nc,
    int64_t open)
{
	struct worker_rate *r = ctx->rate;

	pthread_mutex_lock(&ctx->w->lock);
	free(r->closed_ids);
	r->closed_ids = NULL;
	r->n_closed = 0;
	if (nc > 0 && (r->closed_ids = malloc(nc * sizeof(*ids))) != NULL) {
		memcpy(r->closed_ids, ids, nc * sizeof(*ids));
		r->n_closed = nc;
	}
	r->first_open = open;
	r->statuses_at = time(NULL);
	pthread_mutex_unlock(&ctx->w->lock);
}

/* Fetch the list from Halo into *IDS / *NC / *OPEN and keep it. */
static enum step
closed_statuses_fetch(struct job_ctx *ctx, int64_t **ids, size_t *nc,
    int64_t *open)
{
	struct closed_list_req rq = { NULL, 0, false };
	enum step step = STEP_OK;
	size_t i;

	if (worker_call(ctx, closed_list_call, &rq, &step) < 0) {
		halo_named_free(rq.list, rq.n);
		return step;
	}
	*ids = calloc(rq.n ? rq.n : 1, sizeof(**ids));
	if (*ids == NULL) {
		halo_named_free(rq.list, rq.n);
		return STEP_RETRY;
	}
	if (!rq.known) {
		/* excludeclosed ignored, or no closed status: only Halo's
		 * built-in Closed is taken as closed (doctor says so) */
		log_warnx("%s: Halo's status lists do not tell which statuses"
		    " are closed (Status?excludeclosed=true lists them all);"
		    " taking only status %d as closed", ctx->who,
		    WORKER_CLOSED_BUILTIN);
		for (i = 0; i < rq.n; i++)
			rq.list[i].closed = rq.list[i].id == WORKER_CLOSED_BUILTIN;
	}
	for (i = 0; i < rq.n; i++) {
		if (rq.list[i].closed)
			(*ids)[(*nc)++] = rq.list[i].id;
		else if (rq.list[i].id > 0 && (*open == 0 || rq.list[i].id < *open))
			*open = rq.list[i].id;
	}
	halo_named_free(rq.list, rq.n);
	closed_statuses_keep(ctx, *ids, *nc, *open);
	return STEP_OK;
}

/*
 * The tenant's closed statuses into CTX->hc (a copy the job owns), fetched
 * from Halo at most once an hour per tenant.
 */
enum step
closed_statuses(struct job_ctx *ctx, int64_t *first_open)
{
	int64_t *ids = NULL, open = 0;
	size_t nc = 0;
	enum step step;

	if (closed_statuses_cached(ctx, &ids, &nc, &open)) {
		if (nc > 0 && ids == NULL)
			return STEP_RETRY;      /* out of memory */
	} else if ((step = closed_statuses_fetch(ctx, &ids, &nc, &open)) !=
	    STEP_OK)
		return step;
	free(ctx->closed_ids);
	ctx->closed_ids = ids;
	ctx->hc.closed_status_ids = ids;
	ctx->hc.n_closed_status_ids = nc;
	*first_open = open;
	return STEP_OK;
}

/*
 * Whether a ticket is closed is worth a retry when Halo is away, but not a
 * failed job: when Halo refuses to say (a 4xx), the mail is appended as it
 * is, as it was before closed tickets had a policy.
 */
static enum step
closed_unknown(struct job_ctx *ctx, enum step step)
{
	if (step != STEP_FAIL)
		return step;
	log_warnx("%s: cannot tell whether ticket %" PRId64 " is closed (%s);"
	    " appending as it is", ctx->who, ctx->ticket_id, ctx->reason);
	ctx->reason[0] = '\0';
	ctx->ticket_status = NULL;
	ctx->new_status = 0;
	return STEP_OK;
}

/* What closed_state() learnt about the matched ticket. */
enum closed_seen {
	CLOSED_SEEN_OPEN,
	CLOSED_SEEN_CLOSED,
	CLOSED_SEEN_UNKNOWN,            /* Halo would not say: append as it is */
	CLOSED_SEEN_GONE                /* Halo no longer has it */
};

/* Whether the matched ticket is closed, from the table when recent, else
 * from Halo (*FIRST_OPEN set when the status list was fetched for it).
 * *SEEN is set when STEP_OK is returned. */
static enum step
closed_state(struct job_ctx *ctx, enum closed_seen *seen, int64_t *first_open)
{
	struct halo_ticket tk;
	enum step step = STEP_OK;
	bool closed = false;
	int rc;

	*seen = CLOSED_SEEN_UNKNOWN;
	if (closed_known(ctx, ctx->ticket_id, ctx->t->ticket_status_ttl,
	    &closed)) {
		*seen = closed ? CLOSED_SEEN_CLOSED : CLOSED_SEEN_OPEN;
		return STEP_OK;
	}
	if ((step = closed_statuses(ctx, first_open)) != STEP_OK)
		return closed_unknown(ctx, step);
	if ((rc = closed_ticket_get(ctx, ctx->ticket_id, &tk, &step)) < 0)
		return closed_unknown(ctx, step);
	if (rc > 0) {
		/* deleted in Halo: as if there were no thread */
		log_notice("%s: ticket %" PRId64 " no longer exists in Halo",
		    ctx->who, ctx->ticket_id);
		ctx->ticket_id = 0;
		ctx->matched_by = NULL;
		*seen = CLOSED_SEEN_GONE;
		return STEP_OK;
	}
	closed = tk.closed;
	halo_ticket_clear(&tk);
	closed_remember(ctx, ctx->ticket_id, closed);
	*seen = closed ? CLOSED_SEEN_CLOSED : CLOSED_SEEN_OPEN;
	return STEP_OK;
}

/*
 * "new": a follow-up made for an earlier mail of this conversation is the
 * thread's ticket now: join it rather than open another (checked in turn;
 * its own newest ticket ends the chain). Else a new ticket follows this one.
 */
static enum step
closed_follow_up(struct job_ctx *ctx)
{
	int64_t newer = 0;
	enum step step;
	bool may = false;

	if (ctx->job->conv_key != NULL &&
	    store_ticket_by_conv(ctx->w->store, ctx->t->name,
	    ctx->job->conv_key, &newer) == STORE_OK && newer > 0 &&
	    newer != ctx->ticket_id) {
		if ((step = thread_may_join(ctx, newer, NULL, "follow-up",
		    &may)) != STEP_OK)
			return step;
		if (may) {
			ctx->ticket_id = newer;
			ctx->matched_by = "follow-up";
			return closed_check(ctx);
		}
	}
	ctx->follows = ctx->ticket_id;
	ctx->ticket_id = 0;
	return STEP_OK;
}

/*
 * The matched ticket may be closed (design.md: configurable). Its state
 * comes from our table when recent (a ticket we created or appended to a
 * moment ago costs nothing), else from GET /api/Tickets/{id}. Closed:
 * "reopen" appends with new_status; "new" makes a new ticket naming the
 * closed one (a mailbox that never creates appends instead); "append"
 * never asks.
 */
enum step
closed_check(struct job_ctx *ctx)
{
	const struct conf_tenant *t = ctx->t;
	int64_t first_open = 0;
	enum step step = STEP_OK;
	enum closed_seen seen;

	if (t->closed_tickets == CONF_CLOSED_APPEND || ctx->outbound ||
	    ctx->ticket_id <= 0)
		return STEP_OK;
	if ((step = closed_state(ctx, &seen, &first_open)) != STEP_OK ||
	    seen == CLOSED_SEEN_UNKNOWN || seen == CLOSED_SEEN_GONE)
		return step;
	ctx->ticket_status = seen == CLOSED_SEEN_CLOSED ? "closed" : "open";
	if (seen == CLOSED_SEEN_OPEN)
		return STEP_OK;
	if (t->closed_tickets == CONF_CLOSED_NEW &&
	    ctx->job->job_mode == STORE_MODE_INTAKE && !ctx->job->no_create)
		return closed_follow_up(ctx);
	if (t->closed_tickets == CONF_CLOSED_REOPEN) {
		ctx->ticket_status = "reopened";
		if (t->reopen_status_id > 0)
			ctx->new_status = t->reopen_status_id;
		else if (first_open > 0 ||
		    ((step = closed_statuses(ctx, &first_open)) == STEP_OK &&
		    first_open > 0))
			ctx->new_status = first_open;
		else if (step != STEP_OK)
			return closed_unknown(ctx, step);
	}
	return STEP_OK;
}
