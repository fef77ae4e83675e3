/*
 * worker_sender.c - sender resolution (design.md): the operator's override,
 * else the exact contact by address, else the client by domain, else the
 * tenant's catch-all client. Lookups are cached in the store with the
 * tenant's TTL; an ambiguous domain is reported, never guessed.
 */
#include "worker_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hdr.h"
#include "log.h"

/*
 * Single flight (issue 16): while one worker asks Halo about a key (an
 * address or a domain of a tenant), another worker that misses the same
 * key waits for that answer and reads it from the cache instead of asking
 * again. Bounded: with every slot taken a worker just asks. A worker pool
 * is part of the key, so two pools in one process (tests) never wait on
 * each other.
 */
#define SENDER_FLIGHTS 64
static struct {
	const struct worker *w;
	size_t tenant;
	char key[HDR_ADDR_MAX + 16];
	bool used;
} sender_flights[SENDER_FLIGHTS];
static pthread_mutex_t sender_flight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sender_flight_done = PTHREAD_COND_INITIALIZER;

/* The flight of KEY (lock held), or -1. */
static int
sender_flight_find(const struct job_ctx *ctx, const char *key)
{
	int i;

	for (i = 0; i < SENDER_FLIGHTS; i++)
		if (sender_flights[i].used && sender_flights[i].w == ctx->w &&
		    sender_flights[i].tenant == ctx->tenant &&
		    strcmp(sender_flights[i].key, key) == 0)
			return i;
	return -1;
}

/* Wait while another worker asks Halo about KEY, then take the flight:
 * its slot, or -1 when none was free (ask anyway). */
static int
sender_flight_begin(const struct job_ctx *ctx, const char *key)
{
	int i;

	if (strlen(key) >= sizeof(sender_flights[0].key))
		return -1;
	pthread_mutex_lock(&sender_flight_lock);
	while (sender_flight_find(ctx, key) >= 0)
		pthread_cond_wait(&sender_flight_done, &sender_flight_lock);
	for (i = 0; i < SENDER_FLIGHTS && sender_flights[i].used; i++)
		;
	if (i < SENDER_FLIGHTS) {
		sender_flights[i].used = true;
		sender_flights[i].w = ctx->w;
		sender_flights[i].tenant = ctx->tenant;
		memcpy(sender_flights[i].key, key, strlen(key) + 1);
	} else
		i = -1;
	pthread_mutex_unlock(&sender_flight_lock);
	return i;
}

static void
sender_flight_end(int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&sender_flight_lock);
	sender_flights[slot].used = false;
	pthread_cond_broadcast(&sender_flight_done);
	pthread_mutex_unlock(&sender_flight_lock);
}

/* Copy a resolution into the context and, under KEY, the cache. */
static void
sender_set(struct job_ctx *ctx, const char *key, enum store_sender_kind kind,
    int64_t user_id, int64_t site_id, int64_t client_id, const char *name,
    const char *client)
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
sender_cached(struct job_ctx *ctx, const char *key)
{
	struct store_sender s;

	if (store_sender_get(ctx->w->store, ctx->t->name, key, time(NULL),
	    &s) != STORE_OK)
		return false;
	sender_set(ctx, NULL, s.kind, s.user_id, s.site_id, s.client_id,
	    s.name, s.client_name);
	store_sender_clear(&s);
	return true;
}

/* A lookup for worker_call(): the contact of an address, or with
 * BY_DOMAIN the client of a domain (WHAT). */
struct sender_req {
	const char *what;
	bool by_domain;
	enum halo_match match;
	struct halo_contact ct;
	struct halo_org org;
};

static int
sender_call(struct job_ctx *ctx, void *arg)
{
	struct sender_req *rq = arg;

	memset(&rq->ct, 0, sizeof(rq->ct));
	memset(&rq->org, 0, sizeof(rq->org));
	if (rq->by_domain)
		return halo_client_by_domain(&ctx->hc, ctx->token, rq->what,
		    &rq->match, &rq->org, &ctx->err);
	return halo_contact_by_email(&ctx->hc, ctx->token, rq->what, &rq->match,
	    &rq->ct, &ctx->err);
}

/* The exact contact for ADDR (cached under KEY). */
static enum step
sender_by_address(struct job_ctx *ctx, const char *addr, const char *key)
{
	struct sender_req rq = { .what = addr };
	enum step step = STEP_OK;

	if (worker_call(ctx, sender_call, &rq, &step) < 0)
		return step;
	if (rq.match == HALO_MATCH_ONE)
		sender_set(ctx, key, STORE_SENDER_CONTACT, rq.ct.user_id,
		    rq.ct.site_id, rq.ct.client_id, rq.ct.name, rq.ct.client_name);
	else    /* an ambiguous address (two contacts) is not guessed either */
		sender_set(ctx, key, STORE_SENDER_NONE, 0, 0, 0, NULL, NULL);
	halo_contact_clear(&rq.ct);
	return STEP_OK;
}

/* The client that owns DOMAIN (cached under KEY). */
static enum step
sender_by_domain(struct job_ctx *ctx, const char *domain, const char *key)
{
	struct sender_req rq = { .what = domain, .by_domain = true };
	enum step step = STEP_OK;
	char safe[128];

	if (worker_call(ctx, sender_call, &rq, &step) < 0)
		return step;
	if (rq.match == HALO_MATCH_ONE)
		sender_set(ctx, key, STORE_SENDER_CLIENT, 0, rq.org.site_id,
		    rq.org.client_id, NULL, rq.org.client_name);
	else if (rq.match == HALO_MATCH_AMBIGUOUS) {
		log_warnx("%s: domain %s belongs to more than one Halo client;"
		    " not guessing", ctx->who, log_safe(domain, safe, sizeof(safe)));
		sender_set(ctx, key, STORE_SENDER_AMBIGUOUS, 0, 0, 0, NULL, NULL);
	} else
		sender_set(ctx, key, STORE_SENDER_NONE, 0, 0, 0, NULL, NULL);
	halo_org_clear(&rq.org);
	return STEP_OK;
}

/* The cached answer for KEY, else Halo's (LOOKUP on WHAT), asked by one
 * worker at a time per key when answers are cached. */
static enum step
sender_lookup(struct job_ctx *ctx, const char *what, const char *key,
    enum step (*lookup)(struct job_ctx *, const char *, const char *))
{
	enum step step;
	int slot;

	if (sender_cached(ctx, key))
		return STEP_OK;
	if (ctx->t->sender_cache_ttl == 0)
		return lookup(ctx, what, key);
	slot = sender_flight_begin(ctx, key);
	/* the worker we waited for may have answered it */
	step = sender_cached(ctx, key) ? STEP_OK : lookup(ctx, what, key);
	sender_flight_end(slot);
	return step;
}

/* Sender resolution: exact contact, else client by domain (cached). */
enum step
sender_resolve(struct job_ctx *ctx)
{
	const char *addr = ctx->job->from_addr, *domain;
	char key[HDR_ADDR_MAX + 16], dkey[HDR_ADDR_MAX + 16];
	const struct conf_override *ov;
	enum step step;

	if (addr == NULL || (domain = strrchr(addr, '@')) == NULL) {
		ctx->sender_kind = STORE_SENDER_NONE;
		return STEP_OK;
	}
	domain++;
	/* the operator's word wins over anything Halo says */
	if ((ov = conf_override_lookup(ctx->t, addr)) != NULL) {
		sender_set(ctx, NULL, ov->contact_id ? STORE_SENDER_CONTACT :
		    STORE_SENDER_CLIENT, ov->contact_id, ov->site_id,
		    ov->client_id, NULL, NULL);
		return STEP_OK;
	}
	snprintf(key, sizeof(key), "addr:%s", addr);
	snprintf(dkey, sizeof(dkey), "domain:%s", domain);
	if ((step = sender_lookup(ctx, addr, key, sender_by_address)) !=
	    STEP_OK)
		return step;
	if (ctx->sender_kind != STORE_SENDER_NONE)
		return STEP_OK;
	if ((step = sender_lookup(ctx, domain, dkey, sender_by_domain)) !=
	    STEP_OK)
		return step;
	if (ctx->sender_kind == STORE_SENDER_NONE &&
	    ctx->t->fallback_client_id > 0) {
		ctx->sender_kind = STORE_SENDER_CLIENT;
		ctx->client_id = ctx->t->fallback_client_id;
		ctx->site_id = 0;
		ctx->user_id = 0;
	}
	return STEP_OK;
}

/* How the sender matched, as the store keeps it for the Outlook pane. */
const char *
sender_kind_name(const struct job_ctx *ctx)
{
	switch (ctx->sender_kind) {
	case STORE_SENDER_CONTACT:
		return "contact";
	case STORE_SENDER_CLIENT:
		/* the tenant's catch-all: set without a lookup, so no name */
		return ctx->client_name == NULL && ctx->t != NULL &&
		    ctx->client_id == ctx->t->fallback_client_id ?
		    "fallback" : "client";
	case STORE_SENDER_NONE:
		return "none";
	case STORE_SENDER_AMBIGUOUS:
		return "ambiguous";
	case STORE_SENDER_UNKNOWN:
		break;
	}
	return NULL;
}

/* A new contact for worker_call(): the site to put it under, then the
 * POST. */
struct sender_new_req {
	int64_t site_id, user_id;
	const char *name;
};

static int
sender_site_call(struct job_ctx *ctx, void *arg)
{
	struct sender_new_req *rq = arg;

	return halo_client_main_site(&ctx->hc, ctx->token, ctx->client_id,
	    &rq->site_id, &ctx->err);
}

static int
sender_new_call(struct job_ctx *ctx, void *arg)
{
	struct sender_new_req *rq = arg;

	return halo_user_create(&ctx->hc, ctx->token, rq->name,
	    ctx->job->from_addr, ctx->client_id, rq->site_id, &rq->user_id,
	    &ctx->err);
}

/*
 * create_contacts: the sender matched one client by its domain (never the
 * catch-all, never an ambiguous domain, never an operator's override) and
 * a ticket is about to be created for them: they become a Halo user of
 * that client, under the site their domain matched, else the client's
 * main site. The new user is cached under the address like a lookup.
 * Halo refusing (a 4xx) is logged and the ticket goes to the client as
 * before.
 */
enum step
sender_create_contact(struct job_ctx *ctx)
{
	struct sender_new_req rq;
	char key[HDR_ADDR_MAX + 16], safe[128], *name;
	enum step step = STEP_OK;

	if (!ctx->t->create_contacts || ctx->outbound ||
	    ctx->sender_kind != STORE_SENDER_CLIENT || ctx->client_id <= 0 ||
	    ctx->client_name == NULL || ctx->job->from_addr == NULL ||
	    conf_override_lookup(ctx->t, ctx->job->from_addr) != NULL)
		return STEP_OK;
	memset(&rq, 0, sizeof(rq));
	rq.site_id = ctx->site_id;
	name = ctx->h_from != NULL ? hdr_display_name(ctx->h_from) : NULL;
	rq.name = name != NULL && *name != '\0' ? name : ctx->job->from_addr;
	if ((rq.site_id <= 0 &&
	    worker_call(ctx, sender_site_call, &rq, &step) < 0) ||
	    worker_call(ctx, sender_new_call, &rq, &step) < 0) {
		free(name);
		goto refused;
	}
	log_info("%s: new Halo user %" PRId64 " for %s at client %" PRId64
	    " (site %" PRId64 ")", ctx->who, rq.user_id,
	    log_safe(ctx->job->from_addr, safe, sizeof(safe)), ctx->client_id,
	    rq.site_id);
	snprintf(key, sizeof(key), "addr:%s", ctx->job->from_addr);
	{
		char *client = ctx->client_name != NULL ?
		    strdup(ctx->client_name) : NULL;

		sender_set(ctx, key, STORE_SENDER_CONTACT, rq.user_id, rq.site_id,
		    ctx->client_id, rq.name, client);
		free(client);
	}
	free(name);
	return STEP_OK;
refused:
	if (step != STEP_FAIL)
		return step;
	log_warnx("%s: cannot create a Halo user for %s: %s; the ticket goes"
	    " to the client", ctx->who, log_safe(ctx->job->from_addr, safe,
	    sizeof(safe)), ctx->reason);
	ctx->reason[0] = '\0';
	return STEP_OK;
}
