/*
 * worker.c - queued jobs to Halo actions and tickets (see worker.h).
 */
#include "worker.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <time.h>

#include "hdr.h"
#include "html.h"
#include "http.h"
#include "log.h"
#include "mime.h"
#include "spool.h"

#define WORKER_LEASE        300     /* seconds a claimed job is ours */
#define WORKER_IDLE_MS      200     /* poll interval when idle */
#define WORKER_BACKOFF_MAX  3600    /* longest retry delay */
#define WORKER_HEADER_MAX   (256 * 1024)
#define WORKER_MAX_REFS     32
#define WORKER_HALO_LOOKUPS 3       /* Message-IDs asked of Halo per job */
#define WORKER_BUDGET_WAIT  5       /* seconds a job may wait for budget */
#define WORKER_429_INPLACE  4       /* 429s a call may wait out in place */
#define WORKER_TSTATE_SLOTS 1024    /* tickets whose open/closed state we keep */
#define WORKER_STATUS_TTL   3600    /* seconds a tenant's status list is kept */

enum sender_kind {
	SENDER_UNKNOWN = 0,
	SENDER_CONTACT = 1,
	SENDER_CLIENT = 2,
	SENDER_NONE = 3,
	SENDER_AMBIGUOUS = 4
};

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
	const struct conf *conf;
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
	const struct conf_tenant *t;
	struct worker_rate *rate;
	struct halo_conf hc;
	char *token;
	struct halo_err err;
	char reason[300];
	/* headers of the spooled message */
	char *h_in_reply_to, *h_references, *h_to, *h_cc, *h_subject;
	char **irt, **refs;
	size_t n_irt, n_refs;
	/* the sender */
	int sender_kind;
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
};

/* Count into the worker's stats. */
static void
worker_count(struct worker *w, uint64_t *counter)
{
	pthread_mutex_lock(&w->lock);
	(*counter)++;
	pthread_mutex_unlock(&w->lock);
}

/* Take one slot of the tenant's budget, waiting up to a few seconds. */
static bool
worker_budget(struct job_ctx *ctx)
{
	struct worker_rate *r = ctx->rate;
	time_t now, oldest;
	int waited = 0;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		now = time(NULL);
		if (r->paused_until > now) {
			oldest = r->paused_until;
			pthread_mutex_unlock(&r->lock);
			if (waited >= WORKER_BUDGET_WAIT) {
				ctx->err.kind = HTTP_RATE_LIMITED;
				ctx->err.retry_after = (long)(oldest - now);
				snprintf(ctx->err.message, sizeof(ctx->err.message),
				    "Halo asked us to wait (429)");
				return false;
			}
			struct timespec pause = { 1, 0 };
			nanosleep(&pause, NULL);
			waited++;
			continue;
		}
		if (r->count == r->cap) {
			oldest = r->stamps[r->head];
			if (now - oldest >= (time_t)r->window) {
				r->head = (r->head + 1) % r->cap;
				r->count--;
			}
		}
		if (r->count < r->cap) {
			r->stamps[(r->head + r->count) % r->cap] = now;
			r->count++;
			pthread_mutex_unlock(&r->lock);
			worker_count(ctx->w, &ctx->w->stats.requests);
			return true;
		}
		oldest = r->stamps[r->head];
		pthread_mutex_unlock(&r->lock);
		if (waited >= WORKER_BUDGET_WAIT) {
			ctx->err.kind = HTTP_RATE_LIMITED;
			ctx->err.retry_after = (long)(oldest + r->window - now);
			snprintf(ctx->err.message, sizeof(ctx->err.message),
			    "local request budget (%u per %us) used up",
			    r->cap, r->window);
			return false;
		}
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
		waited++;
	}
}

/* Reset the error before a call. */
static void
ctx_clear_err(struct job_ctx *ctx)
{
	memset(&ctx->err, 0, sizeof(ctx->err));
	ctx->err.retry_after = -1;
}

/* After a failed call: refresh once on 401 (returns true: call again),
 * else map the error to a step in *STEP. */
static bool
ctx_again(struct job_ctx *ctx, int attempt, enum step *step)
{
	char *fresh = NULL;
	struct halo_err aerr;
	enum oauth_status os;

	if (ctx->err.kind == HTTP_UNAUTHORIZED && attempt == 0) {
		os = oauth_access_token(ctx->w->oauth, &ctx->hc, ctx->t->name,
		    ctx->job->agent, true, &fresh, &aerr);
		if (os == OAUTH_OK) {
			oauth_token_free(ctx->token);
			ctx->token = fresh;
			return true;
		}
		ctx->err = aerr;
		*step = os == OAUTH_RETRY ? STEP_RETRY : STEP_WAIT;
		snprintf(ctx->reason, sizeof(ctx->reason), "agent %s %s",
		    ctx->job->agent, os == OAUTH_NO_TOKEN ?
		    "has no Halo token: enroll it" : "must re-enroll");
		return false;
	}
	if (ctx->err.kind == HTTP_RATE_LIMITED) {
		/* the whole tenant holds off, not just this job */
		long wait = ctx->err.retry_after >= 0 ? ctx->err.retry_after : 5;
		pthread_mutex_lock(&ctx->rate->lock);
		if (ctx->rate->paused_until < time(NULL) + wait)
			ctx->rate->paused_until = time(NULL) + wait;
		pthread_mutex_unlock(&ctx->rate->lock);
		/* a short wait is served in place (worker_budget sleeps through
		 * the pause), so the job keeps its turn instead of re-queueing
		 * behind newer mail and starving in a long 429 storm */
		if (wait <= WORKER_BUDGET_WAIT && attempt < WORKER_429_INPLACE)
			return true;
	}
	if (http_result_retryable(ctx->err.kind) ||
	    ctx->err.kind == HTTP_UNAUTHORIZED) {
		*step = STEP_RETRY;
		snprintf(ctx->reason, sizeof(ctx->reason), "%s: %s",
		    http_result_name(ctx->err.kind), ctx->err.message);
		return false;
	}
	*step = STEP_FAIL;
	snprintf(ctx->reason, sizeof(ctx->reason), "Halo refused (%s %ld): %s",
	    http_result_name(ctx->err.kind), ctx->err.status, ctx->err.message);
	return false;
}

/* Read the spooled header block: the few headers the worker needs. */
static int
ctx_read_headers(struct job_ctx *ctx, const char *path)
{
	static const char *const names[] = {
		"In-Reply-To", "References", "To", "Cc", "Subject"
	};
	char **slots[] = {
		&ctx->h_in_reply_to, &ctx->h_references, &ctx->h_to, &ctx->h_cc,
		&ctx->h_subject
	};
	FILE *fp = fopen(path, "re");
	char *line = NULL, *cur = NULL;
	size_t cap = 0, cur_len = 0, total = 0, i;
	ssize_t n;
	int cur_slot = -1;

	if (fp == NULL)
		return -1;
	for (;;) {
		n = getline(&line, &cap, fp);
		bool cont = n > 0 && (line[0] == ' ' || line[0] == '\t');
		if (!cont && cur_slot >= 0 && *slots[cur_slot] == NULL) {
			*slots[cur_slot] = cur;
			cur = NULL;
		}
		if (!cont) {
			free(cur);
			cur = NULL;
			cur_len = 0;
			cur_slot = -1;
		}
		if (n <= 0)
			break;
		total += (size_t)n;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || total > WORKER_HEADER_MAX)
			break;
		if (cont) {
			if (cur_slot >= 0 && cur_len + (size_t)n < HDR_VALUE_MAX) {
				char *grown = realloc(cur, cur_len + (size_t)n + 2);
				if (grown != NULL) {
					cur = grown;
					cur[cur_len++] = ' ';
					memcpy(cur + cur_len, line, (size_t)n + 1);
					cur_len += (size_t)n;
				}
			}
			continue;
		}
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			size_t len = strlen(names[i]);
			if (strncasecmp(line, names[i], len) == 0 && line[len] == ':') {
				const char *v = line + len + 1;
				while (*v == ' ' || *v == '\t')
					v++;
				cur = strdup(v);
				cur_len = cur ? strlen(cur) : 0;
				cur_slot = (int)i;
				break;
			}
		}
	}
	free(cur);
	free(line);
	fclose(fp);
	ctx->n_irt = hdr_msgids(ctx->h_in_reply_to, 4, &ctx->irt);
	ctx->n_refs = hdr_msgids(ctx->h_references, WORKER_MAX_REFS, &ctx->refs);
	return 0;
}

/* Copy a resolution into the context and the cache. */
static void
ctx_set_sender(struct job_ctx *ctx, const char *key, int kind, int64_t user_id,
    int64_t site_id, int64_t client_id, const char *name, const char *client)
{
	struct store_sender s;

	ctx->sender_kind = kind;
	ctx->user_id = user_id;
	ctx->site_id = site_id;
	ctx->client_id = client_id;
	free(ctx->contact_name);
	free(ctx->client_name);
	ctx->contact_name = name ? strdup(name) : NULL;
	ctx->client_name = client ? strdup(client) : NULL;
	if (key == NULL || ctx->t->sender_cache_ttl == 0)
		return;
	memset(&s, 0, sizeof(s));
	s.kind = kind;
	s.user_id = user_id;
	s.site_id = site_id;
	s.client_id = client_id;
	s.name = (char *)name;
	s.client_name = (char *)client;
	s.expires = time(NULL) + ctx->t->sender_cache_ttl;
	store_sender_put(ctx->w->store, ctx->t->name, key, &s);
}

/* Load a cached resolution; true when there was one. */
static bool
ctx_cached_sender(struct job_ctx *ctx, const char *key)
{
	struct store_sender s;

	if (store_sender_get(ctx->w->store, ctx->t->name, key, time(NULL),
	    &s) != STORE_OK)
		return false;
	ctx_set_sender(ctx, NULL, s.kind, s.user_id, s.site_id, s.client_id,
	    s.name, s.client_name);
	store_sender_clear(&s);
	return true;
}

/* Sender resolution: exact contact, else client by domain (cached). */
static enum step
ctx_resolve_sender(struct job_ctx *ctx)
{
	const char *addr = ctx->job->from_addr, *domain;
	char key[HDR_ADDR_MAX + 16], dkey[HDR_ADDR_MAX + 16];
	struct halo_contact ct;
	struct halo_org org;
	enum halo_match match;
	enum step step = STEP_OK;
	int attempt;

	if (addr == NULL || (domain = strrchr(addr, '@')) == NULL) {
		ctx->sender_kind = SENDER_NONE;
		return STEP_OK;
	}
	domain++;
	/* the operator's word wins over anything Halo says */
	const struct conf_override *ov = conf_override_lookup(ctx->t, addr);
	if (ov != NULL) {
		ctx_set_sender(ctx, NULL, ov->contact_id ? SENDER_CONTACT :
		    SENDER_CLIENT, ov->contact_id, ov->site_id, ov->client_id, NULL,
		    NULL);
		return STEP_OK;
	}
	snprintf(key, sizeof(key), "addr:%s", addr);
	snprintf(dkey, sizeof(dkey), "domain:%s", domain);
	if (ctx_cached_sender(ctx, key)) {
		if (ctx->sender_kind != SENDER_NONE)
			return STEP_OK;
	} else {
		for (attempt = 0;; attempt++) {
			memset(&ct, 0, sizeof(ct));
			ctx_clear_err(ctx);
			if (!worker_budget(ctx))
				return STEP_RETRY;
			if (halo_contact_by_email(&ctx->hc, ctx->token, addr, &match,
			    &ct, &ctx->err) == 0)
				break;
			if (!ctx_again(ctx, attempt, &step))
				return step;
		}
		if (match == HALO_MATCH_ONE) {
			ctx_set_sender(ctx, key, SENDER_CONTACT, ct.user_id,
			    ct.site_id, ct.client_id, ct.name, ct.client_name);
			halo_contact_free(&ct);
			return STEP_OK;
		}
		halo_contact_free(&ct);
		/* an ambiguous address (two contacts) is not guessed either */
		ctx_set_sender(ctx, key, SENDER_NONE, 0, 0, 0, NULL, NULL);
	}
	if (ctx_cached_sender(ctx, dkey))
		goto fallback;
	for (attempt = 0;; attempt++) {
		memset(&org, 0, sizeof(org));
		ctx_clear_err(ctx);
		if (!worker_budget(ctx))
			return STEP_RETRY;
		if (halo_client_by_domain(&ctx->hc, ctx->token, domain, &match, &org,
		    &ctx->err) == 0)
			break;
		if (!ctx_again(ctx, attempt, &step))
			return step;
	}
	if (match == HALO_MATCH_ONE)
		ctx_set_sender(ctx, dkey, SENDER_CLIENT, 0, org.site_id,
		    org.client_id, NULL, org.client_name);
	else if (match == HALO_MATCH_AMBIGUOUS) {
		char safe[128];
		log_warnx("worker: job %" PRId64 ": domain %s belongs to more"
		    " than one Halo client; not guessing", ctx->job->id,
		    log_safe(domain, safe, sizeof(safe)));
		ctx_set_sender(ctx, dkey, SENDER_AMBIGUOUS, 0, 0, 0, NULL, NULL);
	} else
		ctx_set_sender(ctx, dkey, SENDER_NONE, 0, 0, 0, NULL, NULL);
	halo_org_free(&org);
fallback:
	if ((ctx->sender_kind == SENDER_NONE) && ctx->t->fallback_client_id > 0) {
		ctx->sender_kind = SENDER_CLIENT;
		ctx->client_id = ctx->t->fallback_client_id;
		ctx->site_id = 0;
		ctx->user_id = 0;
	}
	return STEP_OK;
}

/* Ask Halo which ticket carries MSGID; 0 found, 1 not, -1 step set. */
static int
ctx_halo_lookup(struct job_ctx *ctx, const char *msgid, int64_t *ticket,
    int64_t *action, enum step *step)
{
	int attempt, rc;

	for (attempt = 0;; attempt++) {
		ctx_clear_err(ctx);
		if (!worker_budget(ctx)) {
			*step = STEP_RETRY;
			return -1;
		}
		rc = halo_find_by_message_id(&ctx->hc, ctx->token, msgid, ticket,
		    action, &ctx->err);
		if (rc >= 0)
			return rc;
		if (!ctx_again(ctx, attempt, step))
			return -1;
	}
}

/* The ticket number in a subject tag like "[ID:1234]", or 0. */
static int64_t
ctx_subject_tag(const char *tag, const char *subject)
{
	const char *n = strstr(tag, "{n}"), *p, *q;
	size_t pre_len, post_len;
	int64_t id;

	if (n == NULL || subject == NULL)
		return 0;
	pre_len = (size_t)(n - tag);
	post_len = strlen(n + 3);
	for (p = subject; *p != '\0'; p++) {
		if (strncasecmp(p, tag, pre_len) != 0)
			continue;
		q = p + pre_len;
		if (!isdigit((unsigned char)*q))
			continue;
		id = 0;
		while (isdigit((unsigned char)*q) && id < INT64_MAX / 10)
			id = id * 10 + (*q++ - '0');
		if (strncasecmp(q, n + 3, post_len) == 0 && id > 0)
			return id;
	}
	return 0;
}

static enum step ctx_statuses(struct job_ctx *ctx, int64_t *first_open);
static void worker_tstate_put(struct worker *w, size_t tenant, int64_t ticket,
    bool closed);

/* Thread match, strongest evidence first (design.md). */
static enum step
ctx_find_ticket(struct job_ctx *ctx)
{
	int64_t ticket = 0, action = 0, tagged;
	struct halo_ticket tk;
	enum step step = STEP_OK;
	size_t i, asked = 0;
	int attempt, rc;

	/* 1. our index of logged Message-IDs */
	for (i = 0; i < ctx->n_irt; i++)
		if (store_ticket_by_msgid(ctx->w->store, ctx->t->name, ctx->irt[i],
		    &ticket) == STORE_OK)
			goto found_ours;
	for (i = ctx->n_refs; i > 0; i--)
		if (store_ticket_by_msgid(ctx->w->store, ctx->t->name,
		    ctx->refs[i - 1], &ticket) == STORE_OK)
			goto found_ours;
	/* 2. Halo's index (also finds tickets Halo's own mail intake made) */
	for (i = 0; i < ctx->n_irt && asked < WORKER_HALO_LOOKUPS; i++, asked++) {
		rc = ctx_halo_lookup(ctx, ctx->irt[i], &ticket, &action, &step);
		if (rc < 0)
			return step;
		if (rc == 0)
			goto found_halo;
	}
	for (i = ctx->n_refs; i > 0 && asked < WORKER_HALO_LOOKUPS; i--) {
		if (ctx->n_irt > 0 && strcmp(ctx->refs[i - 1], ctx->irt[0]) == 0)
			continue;
		asked++;
		rc = ctx_halo_lookup(ctx, ctx->refs[i - 1], &ticket, &action, &step);
		if (rc < 0)
			return step;
		if (rc == 0)
			goto found_halo;
	}
	/* 3. the conversation key (Outlook's Thread-Index survives lost headers) */
	if (ctx->job->conv_key != NULL && store_ticket_by_conv(ctx->w->store,
	    ctx->t->name, ctx->job->conv_key, &ticket) == STORE_OK) {
		ctx->ticket_id = ticket;
		ctx->matched_by = "conversation";
		return STEP_OK;
	}
	/* 4. a subject tag, only from that ticket's own contact or client */
	tagged = ctx_subject_tag(ctx->t->subject_tag, ctx->job->subject);
	if (tagged > 0 && (ctx->sender_kind == SENDER_CONTACT ||
	    ctx->sender_kind == SENDER_CLIENT || ctx->outbound)) {
		/* with the status list at hand, this GET also tells whether
		 * the ticket is closed: ctx_check_closed() need not ask again */
		bool know_closed = ctx->t->closed_tickets != CONF_CLOSED_APPEND &&
		    !ctx->outbound;
		int64_t first_open;

		if (know_closed && (step = ctx_statuses(ctx, &first_open)) !=
		    STEP_OK) {
			if (step != STEP_FAIL)
				return step;
			know_closed = false;    /* ctx_check_closed() decides */
			ctx->reason[0] = '\0';
			step = STEP_OK;
		}
		for (attempt = 0;; attempt++) {
			memset(&tk, 0, sizeof(tk));
			ctx_clear_err(ctx);
			if (!worker_budget(ctx))
				return STEP_RETRY;
			if (halo_ticket_get(&ctx->hc, ctx->token, tagged, &tk,
			    &ctx->err) == 0)
				break;
			if (ctx->err.kind == HTTP_NOT_FOUND)
				return STEP_OK;
			if (!ctx_again(ctx, attempt, &step))
				return step;
		}
		if (ctx->outbound ||
		    (ctx->sender_kind == SENDER_CONTACT && tk.user_id == ctx->user_id) ||
		    (ctx->client_id > 0 && tk.client_id == ctx->client_id)) {
			ctx->ticket_id = tk.id;
			ctx->matched_by = "subject-tag";
			if (know_closed)
				worker_tstate_put(ctx->w, (size_t)(ctx->rate -
				    ctx->w->rates), tk.id, tk.closed);
		} else {
			log_notice("worker: job %" PRId64 ": subject tag for ticket %"
			    PRId64 " ignored: sender is not that ticket's contact or"
			    " client", ctx->job->id, tagged);
		}
		halo_ticket_free(&tk);
	}
	return STEP_OK;
found_ours:
	ctx->ticket_id = ticket;
	ctx->matched_by = "message-id";
	return STEP_OK;
found_halo:
	ctx->ticket_id = ticket;
	ctx->matched_by = "halo-message-id";
	return STEP_OK;
}

/* The slot of TENANT's TICKET in the state table. */
static struct worker_tstate *
worker_tstate_slot(struct worker *w, size_t tenant, int64_t ticket)
{
	uint64_t h = (uint64_t)ticket * 0x9e3779b97f4a7c15ULL + tenant;

	return &w->tstates[(h >> 32) % WORKER_TSTATE_SLOTS];
}

/* Whether a ticket's state is known and younger than TTL; *CLOSED. */
static bool
worker_tstate_get(struct worker *w, size_t tenant, int64_t ticket,
    unsigned ttl, bool *closed)
{
	struct worker_tstate *ts;
	bool known;

	pthread_mutex_lock(&w->lock);
	ts = worker_tstate_slot(w, tenant, ticket);
	known = ts->ticket == ticket && ts->tenant == tenant &&
	    time(NULL) - ts->at < (time_t)ttl;
	if (known)
		*closed = ts->closed;
	pthread_mutex_unlock(&w->lock);
	return known;
}

/* Remember a ticket's state (a newer ticket takes over a shared slot). */
static void
worker_tstate_put(struct worker *w, size_t tenant, int64_t ticket,
    bool closed)
{
	struct worker_tstate *ts;

	pthread_mutex_lock(&w->lock);
	ts = worker_tstate_slot(w, tenant, ticket);
	ts->tenant = tenant;
	ts->ticket = ticket;
	ts->closed = closed;
	ts->at = time(NULL);
	pthread_mutex_unlock(&w->lock);
}

/*
 * The tenant's closed statuses into CTX->hc (a copy the job owns), fetched
 * from Halo at most once an hour per tenant.
 */
static enum step
ctx_statuses(struct job_ctx *ctx, int64_t *first_open)
{
	struct worker *w = ctx->w;
	struct worker_rate *r = ctx->rate;
	struct halo_named *list = NULL;
	int64_t *ids = NULL, open = 0;
	size_t n = 0, i, nc = 0;
	enum step step = STEP_OK;
	int attempt;

	pthread_mutex_lock(&w->lock);
	if (r->statuses_at != 0 && time(NULL) - r->statuses_at <
	    WORKER_STATUS_TTL) {
		nc = r->n_closed;
		if (nc > 0 && (ids = malloc(nc * sizeof(*ids))) != NULL)
			memcpy(ids, r->closed_ids, nc * sizeof(*ids));
		open = r->first_open;
		pthread_mutex_unlock(&w->lock);
		if (nc > 0 && ids == NULL)
			return STEP_RETRY;      /* out of memory */
		goto have;
	}
	pthread_mutex_unlock(&w->lock);
	for (attempt = 0;; attempt++) {
		ctx_clear_err(ctx);
		if (!worker_budget(ctx))
			return STEP_RETRY;
		if (halo_list_statuses(&ctx->hc, ctx->token, &list, &n,
		    &ctx->err) == 0)
			break;
		if (!ctx_again(ctx, attempt, &step))
			return step;
	}
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (ids == NULL) {
		halo_named_free(list, n);
		return STEP_RETRY;
	}
	for (i = 0; i < n; i++) {
		if (list[i].closed)
			ids[nc++] = list[i].id;
		else if (list[i].id > 0 && (open == 0 || list[i].id < open))
			open = list[i].id;
	}
	halo_named_free(list, n);
	pthread_mutex_lock(&w->lock);
	free(r->closed_ids);
	r->closed_ids = NULL;
	r->n_closed = 0;
	if (nc > 0 && (r->closed_ids = malloc(nc * sizeof(*ids))) != NULL) {
		memcpy(r->closed_ids, ids, nc * sizeof(*ids));
		r->n_closed = nc;
	}
	r->first_open = open;
	r->statuses_at = time(NULL);
	pthread_mutex_unlock(&w->lock);
have:
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
ctx_closed_unknown(struct job_ctx *ctx, enum step step)
{
	if (step != STEP_FAIL)
		return step;
	log_warnx("worker: job %" PRId64 ": cannot tell whether ticket %" PRId64
	    " is closed (%s); appending as it is", ctx->job->id, ctx->ticket_id,
	    ctx->reason);
	ctx->reason[0] = '\0';
	ctx->ticket_status = NULL;
	ctx->new_status = 0;
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
static enum step
ctx_check_closed(struct job_ctx *ctx)
{
	const struct conf_tenant *t = ctx->t;
	size_t tenant = (size_t)(ctx->rate - ctx->w->rates);
	struct halo_ticket tk;
	int64_t first_open = 0;
	enum step step = STEP_OK;
	bool closed = false;
	int attempt;

	if (t->closed_tickets == CONF_CLOSED_APPEND || ctx->outbound ||
	    ctx->ticket_id <= 0)
		return STEP_OK;
	if (!worker_tstate_get(ctx->w, tenant, ctx->ticket_id,
	    t->ticket_status_ttl, &closed)) {
		if ((step = ctx_statuses(ctx, &first_open)) != STEP_OK)
			return ctx_closed_unknown(ctx, step);
		for (attempt = 0;; attempt++) {
			memset(&tk, 0, sizeof(tk));
			ctx_clear_err(ctx);
			if (!worker_budget(ctx))
				return STEP_RETRY;
			if (halo_ticket_get(&ctx->hc, ctx->token, ctx->ticket_id, &tk,
			    &ctx->err) == 0)
				break;
			if (ctx->err.kind == HTTP_NOT_FOUND) {
				/* deleted in Halo: as if there were no thread */
				log_notice("worker: job %" PRId64 ": ticket %" PRId64
				    " no longer exists in Halo", ctx->job->id,
				    ctx->ticket_id);
				ctx->ticket_id = 0;
				ctx->matched_by = NULL;
				return STEP_OK;
			}
			if (!ctx_again(ctx, attempt, &step))
				return ctx_closed_unknown(ctx, step);
		}
		closed = tk.closed;
		halo_ticket_free(&tk);
		worker_tstate_put(ctx->w, tenant, ctx->ticket_id, closed);
	}
	ctx->ticket_status = closed ? "closed" : "open";
	if (!closed)
		return STEP_OK;
	if (t->closed_tickets == CONF_CLOSED_NEW &&
	    strcmp(ctx->job->mode, "intake") == 0 && !ctx->job->no_create) {
		int64_t newer = 0;

		/* a follow-up made for an earlier mail of this conversation is
		 * the thread's ticket now: join it rather than open another
		 * (checked in turn; its own newest ticket ends the chain) */
		if (ctx->job->conv_key != NULL &&
		    store_ticket_by_conv(ctx->w->store, t->name,
		    ctx->job->conv_key, &newer) == STORE_OK && newer > 0 &&
		    newer != ctx->ticket_id) {
			ctx->ticket_id = newer;
			ctx->matched_by = "follow-up";
			return ctx_check_closed(ctx);
		}
		ctx->follows = ctx->ticket_id;
		ctx->ticket_id = 0;
		return STEP_OK;
	}
	if (t->closed_tickets == CONF_CLOSED_REOPEN) {
		ctx->ticket_status = "reopened";
		if (t->reopen_status_id > 0)
			ctx->new_status = t->reopen_status_id;
		else if (first_open > 0 ||
		    ((step = ctx_statuses(ctx, &first_open)) == STEP_OK &&
		    first_open > 0))
			ctx->new_status = first_open;
		else if (step != STEP_OK)
			return ctx_closed_unknown(ctx, step);
	}
	return STEP_OK;
}

/* cid: -> attachment file name, for the sanitiser. */
static const char *
ctx_cid_lookup(const char *cid, void *arg)
{
	const struct mime_message *m = arg;
	size_t i;

	for (i = 0; i < m->n_attachments; i++)
		if (m->attachments[i].content_id != NULL &&
		    strcmp(m->attachments[i].content_id, cid) == 0)
			return m->attachments[i].filename;
	return NULL;
}

/* The note/details HTML: sanitised body plus what was not uploaded. */
static char *
ctx_body_html(struct job_ctx *ctx, const struct mime_message *m, bool trim)
{
	struct html_options opt;
	char *body, *out, *name;
	size_t len, i, extra = 0;
	FILE *fp;

	memset(&opt, 0, sizeof(opt));
	opt.trim_quotes = trim;
	opt.cid_lookup = ctx_cid_lookup;
	opt.cid_arg = (void *)m;
	if (m->html != NULL)
		body = html_sanitize(m->html, strlen(m->html), &opt);
	else
		body = html_from_text(m->text ? m->text : "",
		    m->text ? strlen(m->text) : 0, trim);
	if (body == NULL)
		return NULL;
	for (i = 0; i < m->n_attachments; i++)
		if (m->attachments[i].over_cap || !ctx->t->attachments)
			extra++;
	if (extra == 0)
		return body;
	out = NULL;
	fp = open_memstream(&out, &len);
	if (fp == NULL)
		return body;
	fputs(body, fp);
	fputs(ctx->t->attachments ? "<p><b>Attachments not uploaded (over the"
	    " size limit):</b></p><ul>" : "<p><b>Attachments (not uploaded):"
	    "</b></p><ul>", fp);
	for (i = 0; i < m->n_attachments; i++) {
		if (!m->attachments[i].over_cap && ctx->t->attachments)
			continue;
		name = html_escape(m->attachments[i].filename);
		fprintf(fp, "<li>%s (%zu bytes)</li>", name ? name : "?",
		    m->attachments[i].original_len);
		free(name);
	}
	fputs("</ul>", fp);
	fclose(fp);
	free(body);
	return out;
}

/* Attachments to upload (those with data), as Halo expects them. */
static struct halo_attachment *
ctx_attachments(struct job_ctx *ctx, const struct mime_message *m, size_t *n)
{
	struct halo_attachment *a;
	size_t i;

	*n = 0;
	if (!ctx->t->attachments || m->n_attachments == 0)
		return NULL;
	a = calloc(m->n_attachments, sizeof(*a));
	if (a == NULL)
		return NULL;
	for (i = 0; i < m->n_attachments; i++) {
		const struct mime_attachment *ma = &m->attachments[i];
		if (ma->data == NULL)
			continue;
		a[*n].filename = ma->filename;
		a[*n].content_type = ma->content_type;
		a[*n].data = ma->data;
		a[*n].len = ma->len;
		a[*n].is_image = ma->content_type != NULL &&
		    strncasecmp(ma->content_type, "image/", 6) == 0;
		(*n)++;
	}
	return a;
}

/* Append the mail to the matched ticket, or create one. */
static enum step
ctx_post(struct job_ctx *ctx, const struct mime_message *m, bool create,
    int64_t *ticket_out, int64_t *action_out)
{
	struct halo_attachment *att;
	struct halo_customfield cf[2];
	struct halo_action_new act;
	struct halo_ticket_new tn;
	size_t n_att = 0, n_cf = 0;
	char *html;
	enum step step = STEP_OK;
	int attempt, rc;

	html = ctx_body_html(ctx, m, !create && ctx->t->trim_quotes);
	if (html != NULL && create && ctx->follows > 0) {
		char *with;

		if (asprintf(&with, "<p>Follow-up to closed ticket %" PRId64
		    ".</p>\n%s", ctx->follows, html) < 0)
			with = NULL;
		free(html);
		html = with;
	}
	if (html == NULL) {
		snprintf(ctx->reason, sizeof(ctx->reason), "out of memory");
		return STEP_RETRY;
	}
	att = ctx_attachments(ctx, m, &n_att);
	switch (store_job_mark_posting(ctx->w->store, ctx->job->id,
	    ctx->job->lease_until, time(NULL) + WORKER_LEASE)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		/* our lease lapsed and another worker owns the job now: posting
		 * too could make a second action */
		free(html);
		free(att);
		return STEP_LOST;
	default:
		free(html);
		free(att);
		snprintf(ctx->reason, sizeof(ctx->reason), "store unavailable");
		return STEP_RETRY;
	}
	for (attempt = 0;; attempt++) {
		ctx_clear_err(ctx);
		if (!worker_budget(ctx)) {
			step = STEP_RETRY;
			break;
		}
		if (create) {
			memset(&tn, 0, sizeof(tn));
			n_cf = 0;
			if (ctx->t->cf_conversation_id[0] != '\0' &&
			    ctx->job->conv_key != NULL) {
				cf[n_cf].name = ctx->t->cf_conversation_id;
				cf[n_cf++].value = ctx->job->conv_key;
			}
			if (ctx->t->cf_message_id[0] != '\0') {
				cf[n_cf].name = ctx->t->cf_message_id;
				cf[n_cf++].value = ctx->job->message_id;
			}
			tn.summary = ctx->job->subject && *ctx->job->subject ?
			    ctx->job->subject : "(no subject)";
			tn.details_html = html;
			tn.tickettype_id = ctx->t->ticket_type_id;
			tn.client_id = ctx->client_id;
			tn.site_id = ctx->site_id;
			tn.user_id = ctx->sender_kind == SENDER_CONTACT ?
			    ctx->user_id : 0;
			tn.internet_message_id = ctx->job->message_id;
			tn.customfields = cf;
			tn.n_customfields = n_cf;
			tn.attachments = att;
			tn.n_attachments = n_att;
			rc = halo_ticket_create(&ctx->hc, ctx->token, &tn, ticket_out,
			    &ctx->err);
			*action_out = 0;
		} else {
			memset(&act, 0, sizeof(act));
			act.ticket_id = ctx->ticket_id;
			act.outcome = ctx->outbound ? ctx->t->outbound_outcome :
			    ctx->t->append_outcome;
			act.outgoing = ctx->outbound;
			act.note_html = html;
			act.hidden = ctx->t->internal_note;
			act.email_from = ctx->job->from_addr;
			act.email_to = ctx->h_to;
			act.email_cc = ctx->h_cc;
			act.email_subject = ctx->job->subject;
			act.internet_message_id = ctx->job->message_id;
			act.new_status = ctx->new_status;
			act.attachments = att;
			act.n_attachments = n_att;
			rc = halo_action_create(&ctx->hc, ctx->token, &act, action_out,
			    &ctx->err);
			*ticket_out = ctx->ticket_id;
		}
		if (rc == 0)
			break;
		if (!ctx_again(ctx, attempt, &step))
			break;
	}
	free(html);
	free(att);
	return step;
}

/* Seconds until the next attempt (see worker.h). */
long
worker_retry_delay(unsigned base, int attempts, long retry_after,
    unsigned char jitter)
{
	long delay = (long)base;
	int i;

	if (retry_after >= 0)
		return (retry_after < WORKER_BACKOFF_MAX ? retry_after :
		    WORKER_BACKOFF_MAX) + (jitter & 1);
	for (i = 1; i < attempts && delay < WORKER_BACKOFF_MAX; i++)
		delay *= 2;
	if (delay > WORKER_BACKOFF_MAX)
		delay = WORKER_BACKOFF_MAX;
	delay = delay * 4 / 5 + (delay * 2 / 5) * jitter / 255;
	return delay > 0 ? delay : 1;
}

/* When to try again, with random jitter. */
static time_t
worker_backoff(unsigned base, int attempts, long retry_after)
{
	unsigned char r = 128;

	if (crypto_random(&r, 1) != 0)
		r = 128;
	return time(NULL) + worker_retry_delay(base, attempts, retry_after, r);
}

/* Remove the spool file once no job needs it any more. */
static void
worker_release_spool(struct worker *w, const char *name)
{
	bool pending = true;

	if (name != NULL && store_spool_pending(w->store, name, &pending) ==
	    STORE_OK && !pending)
		spool_remove(w->spool_dir, name);
}

/* Free the context. */
static void
ctx_free(struct job_ctx *ctx)
{
	oauth_token_free(ctx->token);
	free(ctx->h_in_reply_to);
	free(ctx->h_references);
	free(ctx->h_to);
	free(ctx->h_cc);
	free(ctx->h_subject);
	hdr_msgids_free(ctx->irt, ctx->n_irt);
	hdr_msgids_free(ctx->refs, ctx->n_refs);
	free(ctx->contact_name);
	free(ctx->client_name);
	free(ctx->closed_ids);
}

/* The tenant of a job, and its rate budget. */
static const struct conf_tenant *
worker_tenant(struct worker *w, const char *name, struct worker_rate **rate)
{
	size_t i;

	for (i = 0; i < w->conf->n_tenants; i++)
		if (strcmp(w->conf->tenants[i]->name, name) == 0) {
			*rate = &w->rates[i];
			return w->conf->tenants[i];
		}
	return NULL;
}

/* How the sender matched, as the store keeps it for the Outlook pane. */
static const char *
worker_sender_name(const struct job_ctx *ctx)
{
	switch (ctx->sender_kind) {
	case SENDER_CONTACT:
		return "contact";
	case SENDER_CLIENT:
		/* the tenant's catch-all: set without a lookup, so no name */
		return ctx->client_name == NULL && ctx->t != NULL &&
		    ctx->client_id == ctx->t->fallback_client_id ?
		    "fallback" : "client";
	case SENDER_NONE:
		return "none";
	case SENDER_AMBIGUOUS:
		return "ambiguous";
	}
	return NULL;
}

/* Everything for one claimed job; records its outcome. */
static void
worker_process(struct worker *w, struct store_job *job)
{
	struct job_ctx ctx;
	struct mime_message *m = NULL;
	struct mime_limits lim;
	struct store_result res;
	char path[PATH_MAX], err[256], safe_id[128];
	int64_t ticket = 0, action = 0;
	enum oauth_status os;
	enum step step = STEP_OK;
	bool create = false, outbound = false;
	const char *outcome = NULL;

	memset(&ctx, 0, sizeof(ctx));
	ctx.w = w;
	ctx.job = job;
	ctx_clear_err(&ctx);
	ctx.t = worker_tenant(w, job->tenant, &ctx.rate);
	if (ctx.t == NULL) {
		snprintf(ctx.reason, sizeof(ctx.reason),
		    "tenant '%s' is not configured", job->tenant);
		step = STEP_FAIL;
		goto record;
	}
	ctx.hc.halo_url = ctx.t->halo_url;
	ctx.hc.auth_url = ctx.t->auth_url;
	ctx.hc.tenant = ctx.t->halo_tenant;
	ctx.hc.client_id = ctx.t->client_id;
	ctx.hc.client_secret = ctx.t->client_secret;
	if (job->spool == NULL ||
	    spool_path(w->spool_dir, job->spool, path, sizeof(path)) != 0) {
		snprintf(ctx.reason, sizeof(ctx.reason), "no spooled message");
		step = STEP_FAIL;
		goto record;
	}
	{
		/* the size EOM recorded: a damaged spool must not become a
		 * truncated note in Halo */
		struct stat sb;

		if (stat(path, &sb) != 0 || (uint64_t)sb.st_size != job->size) {
			snprintf(ctx.reason, sizeof(ctx.reason), "spooled message"
			    " damaged: %s", stat(path, &sb) != 0 ? strerror(errno) :
			    "its size differs from what was received");
			step = STEP_FAIL;
			goto record;
		}
	}
	os = oauth_access_token(w->oauth, &ctx.hc, ctx.t->name, job->agent,
	    false, &ctx.token, &ctx.err);
	if (os != OAUTH_OK) {
		step = os == OAUTH_RETRY ? STEP_RETRY : STEP_WAIT;
		snprintf(ctx.reason, sizeof(ctx.reason), os == OAUTH_NO_TOKEN ?
		    "agent %s has no Halo token: enroll it" : os == OAUTH_REENROLL ?
		    "agent %s must re-enroll" : "cannot get a token for %s: %s",
		    job->agent, ctx.err.message);
		goto record;
	}
	if (ctx_read_headers(&ctx, path) != 0) {
		snprintf(ctx.reason, sizeof(ctx.reason), "spooled message"
		    " unreadable: %s", strerror(errno));
		step = STEP_FAIL;
		goto record;
	}
	outbound = ctx.outbound = strcmp(job->mode, "outbound") == 0;
	if (!outbound && (step = ctx_resolve_sender(&ctx)) != STEP_OK)
		goto record;
	if ((step = ctx_find_ticket(&ctx)) != STEP_OK ||
	    (step = ctx_check_closed(&ctx)) != STEP_OK)
		goto record;
	create = ctx.ticket_id == 0;
	if (create && outbound) {
		step = STEP_SKIP;
		snprintf(ctx.reason, sizeof(ctx.reason), "no-thread (an agent's"
		    " outgoing mail never opens a ticket)");
		goto record;
	}
	if (create && (strcmp(job->mode, "intake") != 0 || job->no_create)) {
		step = STEP_SKIP;
		snprintf(ctx.reason, sizeof(ctx.reason), job->no_create ?
		    "no-thread (list mail never opens a ticket)" :
		    "no-thread (thread-only mailbox)");
		goto record;
	}
	if (create && ctx.sender_kind != SENDER_CONTACT &&
	    ctx.sender_kind != SENDER_CLIENT) {
		step = STEP_SKIP;
		snprintf(ctx.reason, sizeof(ctx.reason), ctx.sender_kind ==
		    SENDER_AMBIGUOUS ? "unknown-sender (domain claimed by several"
		    " clients)" : "unknown-sender");
		goto record;
	}
	/* exactly once: an earlier attempt may have reached Halo */
	if (job->post_started) {
		int rc = ctx_halo_lookup(&ctx, job->message_id, &ticket, &action,
		    &step);
		if (rc < 0)
			goto record;
		if (rc == 0) {
			log_info("worker: job %" PRId64 ": already in Halo (ticket %"
			    PRId64 "), not posting again", job->id, ticket);
			outcome = create ? "created" : "appended";
			goto done;
		}
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_attachment = ctx.t->max_attachment_size;
	lim.max_total = ctx.t->max_attachments_total;
	if (mime_extract(path, &lim, &m, err, sizeof(err)) != 0) {
		snprintf(ctx.reason, sizeof(ctx.reason), "cannot read message: %s",
		    err);
		step = STEP_FAIL;
		goto record;
	}
	step = ctx_post(&ctx, m, create, &ticket, &action);
	if (step != STEP_OK)
		goto record;
	outcome = create ? "created" : "appended";
	if (create || ctx.new_status > 0)   /* open now, as far as we know */
		worker_tstate_put(w, (size_t)(ctx.rate - w->rates), ticket, false);
	if (ctx.new_status > 0)
		log_info("worker: job %" PRId64 ": ticket %" PRId64 " was closed;"
		    " reopened (status %" PRId64 ")", job->id, ticket,
		    ctx.new_status);
	else if (ctx.follows > 0)
		log_info("worker: job %" PRId64 ": ticket %" PRId64 " is closed;"
		    " new ticket %" PRId64 " follows it", job->id, ctx.follows,
		    ticket);
done:
	memset(&res, 0, sizeof(res));
	res.ticket_id = ticket;
	res.action_id = action;
	res.result = outcome;
	res.contact = ctx.contact_name;
	res.client = ctx.client_name;
	res.sender = outbound ? NULL : worker_sender_name(&ctx);
	res.contact_id = ctx.sender_kind == SENDER_CONTACT ? ctx.user_id : 0;
	res.client_id = ctx.client_id;
	res.summary = create ? (job->subject && *job->subject ? job->subject :
	    "(no subject)") : NULL;
	res.ticket_status = create ? "new" : ctx.ticket_status;
	if (store_job_done(w->store, job->id, &res) != STORE_OK)
		log_warnx("worker: job %" PRId64 ": cannot record result", job->id);
	/* the Message-ID comes from mail: printable only, like intake's lines */
	log_info("worker: job %" PRId64 " %s: tenant=%s msgid=%s ticket=%" PRId64
	    " action=%" PRId64 "%s%s", job->id, outcome, job->tenant,
	    log_safe(job->message_id, safe_id, sizeof(safe_id)), ticket, action,
	    ctx.matched_by ? " matched-by=" : "",
	    ctx.matched_by ? ctx.matched_by : "");
	worker_count(w, &w->stats.jobs_done);
	worker_release_spool(w, job->spool);
	goto out;
record:
	switch (step) {
	case STEP_LOST:
		log_warnx("worker: job %" PRId64 ": lease lapsed, another worker"
		    " has it; not posting", job->id);
		break;
	case STEP_RETRY:
		if (ctx.reason[0] == '\0')
			snprintf(ctx.reason, sizeof(ctx.reason), "%s: %s",
			    http_result_name(ctx.err.kind), ctx.err.message);
		store_job_retry(w->store, job->id, worker_backoff(w->conf->retry_base,
		    job->attempts, ctx.err.retry_after), ctx.reason);
		worker_count(w, &w->stats.retried);
		log_notice("worker: job %" PRId64 " will be retried: %s", job->id,
		    ctx.reason);
		break;
	case STEP_WAIT:
		store_job_finish(w->store, job->id, STORE_WAITING, ctx.reason);
		log_warnx("worker: job %" PRId64 " waiting: %s", job->id, ctx.reason);
		break;
	case STEP_SKIP:
		store_job_finish(w->store, job->id, STORE_SKIPPED, ctx.reason);
		log_info("worker: job %" PRId64 " skipped: %s", job->id, ctx.reason);
		worker_release_spool(w, job->spool);
		break;
	default:
		store_job_finish(w->store, job->id, STORE_FAILED, ctx.reason);
		worker_count(w, &w->stats.jobs_failed);
		log_warnx("worker: job %" PRId64 " failed: %s", job->id, ctx.reason);
		break;
	}
out:
	mime_message_free(m);
	ctx_free(&ctx);
}

/* Claim and process one due job. */
int
worker_run_once(struct worker *w)
{
	struct store_job *job = NULL;

	if (store_job_claim(w->store, time(NULL), WORKER_LEASE, &job) != STORE_OK)
		return 0;
	worker_process(w, job);
	store_job_free(job);
	return 1;
}

/* A worker thread: process until told to stop, idle-polling the store. */
static void *
worker_thread(void *arg)
{
	struct worker *w = arg;
	struct timespec ts;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		bool stop = w->stopping;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
		if (worker_run_once(w))
			continue;
		pthread_mutex_lock(&w->lock);
		if (!w->stopping && w->kicks == 0) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += WORKER_IDLE_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		}
		if (w->kicks > 0)
			w->kicks--;
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

/* Start the workers. */
struct worker *
worker_start(const struct conf *conf, struct store *store, struct oauth *oauth,
    const char *spool_dir, unsigned nthreads)
{
	struct worker *w = calloc(1, sizeof(*w));
	size_t i;

	if (w == NULL)
		return NULL;
	w->conf = conf;
	w->store = store;
	w->oauth = oauth;
	w->spool_dir = strdup(spool_dir);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->rates = calloc(conf->n_tenants ? conf->n_tenants : 1, sizeof(*w->rates));
	if (w->spool_dir == NULL || w->rates == NULL)
		goto fail;
	for (i = 0; i < conf->n_tenants; i++) {
		struct worker_rate *r = &w->rates[i];
		pthread_mutex_init(&r->lock, NULL);
		r->cap = conf->tenants[i]->rate_limit;
		r->window = conf->tenants[i]->rate_window;
		r->stamps = calloc(r->cap, sizeof(*r->stamps));
		if (r->stamps == NULL)
			goto fail;
	}
	http_global_init();
	if (conf->insecure_http)
		http_allow_loopback_http(true);
	if (nthreads == 0)
		nthreads = conf->workers ? conf->workers : 1;
	w->threads = calloc(nthreads, sizeof(*w->threads));
	if (w->threads == NULL)
		goto fail;
	for (; w->n_threads < nthreads; w->n_threads++)
		if (pthread_create(&w->threads[w->n_threads], NULL, worker_thread,
		    w) != 0)
			goto fail;
	return w;
fail:
	return worker_stop(w);
}

/* Stop and free. */
struct worker *
worker_stop(struct worker *w)
{
	size_t i;

	if (w == NULL)
		return NULL;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	if (w->rates != NULL)
		for (i = 0; i < w->conf->n_tenants; i++) {
			free(w->rates[i].stamps);
			free(w->rates[i].closed_ids);
			pthread_mutex_destroy(&w->rates[i].lock);
		}
	free(w->rates);
	free(w->spool_dir);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}

/* Wake a worker. */
void
worker_kick(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->kicks++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Copy the counters. */
void
worker_stats(struct worker *w, struct worker_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	pthread_mutex_unlock(&w->lock);
}
