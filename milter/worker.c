/*
 * worker.c - the worker's thread pool and the per-job state machine (see
 * worker.h): claim a job, run its steps in order (worker_int.h names the
 * file of each), record the outcome.
 */
#include "worker_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hdr.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"

/* Count into the worker's stats. */
void
worker_count(struct worker *w, uint64_t *counter)
{
	pthread_mutex_lock(&w->lock);
	(*counter)++;
	pthread_mutex_unlock(&w->lock);
}

/* Remove the spool file once no job needs it any more. */
static void
worker_release_spool(struct worker *w, const char *name)
{
	bool pending = true;

	if (name != NULL && store_spool_pending(w->store, name, &pending) ==
	    STORE_OK && !pending) {
		spool_remove(w->spool_dir, name);
		store_message_delete(w->store, name);   /* shared store's copy */
	}
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
	free(ctx->h_from);
	free(ctx->h_date);
	hdr_msgids_free(ctx->irt, ctx->n_irt);
	hdr_msgids_free(ctx->refs, ctx->n_refs);
	free(ctx->contact_name);
	free(ctx->client_name);
	free(ctx->closed_ids);
	ctx->gen = confgen_release(ctx->gen);
}

/* The rule of TENANT that routed one of RECIPIENTS (comma-separated), for
 * the options of the tickets it creates; NULL when none does. */
static const struct conf_route *
job_route(const struct conf *conf, const struct conf_tenant *t,
    const char *recipients)
{
	const struct conf_route *r;
	char addr[512];
	const char *p = recipients, *end;
	size_t n;

	while (p != NULL && *p != '\0') {
		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n > 0 && n < sizeof(addr)) {
			memcpy(addr, p, n);
			addr[n] = '\0';
			if ((r = conf_route_lookup(conf, addr)) != NULL &&
			    r->tenant == t)
				return r;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

/* A fresh context for JOB: its tenant, rate budget and log prefix (the MTA
 * queue ID first, like intake's lines). False when the tenant is gone. */
static bool
ctx_init(struct job_ctx *ctx, struct worker *w, struct store_job *job)
{
	char safe_qid[64];
	size_t i;

	memset(ctx, 0, sizeof(*ctx));
	ctx->w = w;
	ctx->job = job;
	if (w->gens != NULL) {
		ctx->gen = confgen_acquire(w->gens);
		ctx->conf = confgen_conf(ctx->gen);
	} else
		ctx->conf = w->conf;
	worker_clear_err(ctx);
	if (job->queue_id != NULL && job->queue_id[0] != '\0')
		snprintf(ctx->who, sizeof(ctx->who), "%s: worker: job %" PRId64,
		    log_safe(job->queue_id, safe_qid, sizeof(safe_qid)), job->id);
	else
		snprintf(ctx->who, sizeof(ctx->who), "worker: job %" PRId64,
		    job->id);
	/* a reload keeps the tenants (conf_reload_keep): same indexes */
	for (i = 0; i < ctx->conf->n_tenants && i < w->conf->n_tenants; i++)
		if (strcmp(ctx->conf->tenants[i]->name, job->tenant) == 0) {
			ctx->tenant = i;
			ctx->rate = &w->rates[i];
			ctx->t = ctx->conf->tenants[i];
			break;
		}
	if (ctx->t == NULL) {
		snprintf(ctx->reason, sizeof(ctx->reason),
		    "tenant '%s' is not configured", job->tenant);
		return false;
	}
	halo_conf_tenant(&ctx->hc, ctx->t);
	ctx->outbound = job->job_mode == STORE_MODE_OUTBOUND;
	ctx->route = job_route(ctx->conf, ctx->t, job->recipients);
	return true;
}

/* The spooled message: present and of the size EOM recorded (a damaged
 * spool must not become a truncated note in Halo). */
static enum step
job_check_spool(struct job_ctx *ctx)
{
	struct store_job *job = ctx->job;
	struct stat sb;

	if (job->spool == NULL || spool_path(ctx->w->spool_dir, job->spool,
	    ctx->path, sizeof(ctx->path)) != 0) {
		snprintf(ctx->reason, sizeof(ctx->reason), "no spooled message");
		return STEP_FAIL;
	}
	/* another node's mail: a shared store has its bytes */
	if (stat(ctx->path, &sb) != 0 && errno == ENOENT &&
	    store_message_fetch(ctx->w->store, job->spool, ctx->path) ==
	    STORE_ERROR) {
		snprintf(ctx->reason, sizeof(ctx->reason), "store unavailable");
		return STEP_RETRY;
	}
	/* the message is the file's first SIZE bytes: its job rows may
	 * follow (spooljob.h); a shorter file lost some of it */
	if (stat(ctx->path, &sb) != 0 || (uint64_t)sb.st_size < job->size) {
		snprintf(ctx->reason, sizeof(ctx->reason), "spooled message"
		    " damaged: %s", stat(ctx->path, &sb) != 0 ? strerror(errno) :
		    "it is shorter than what was received");
		return STEP_FAIL;
	}
	return STEP_OK;
}

/* The headers thread match needs, read with the project's header code;
 * one bound on each Message-ID list. */
static enum step
job_read_headers(struct job_ctx *ctx)
{
	static const char *const names[] = {
		"In-Reply-To", "References", "To", "Cc", "From", "Date"
	};
	char *values[6];

	if (hdr_read_file(ctx->path, ctx->job->size > 0 && ctx->job->size <
	    WORKER_HEADER_MAX ? (size_t)ctx->job->size : WORKER_HEADER_MAX,
	    names, 6, values) != 0) {
		snprintf(ctx->reason, sizeof(ctx->reason), "spooled message"
		    " unreadable: %s", strerror(errno));
		return STEP_FAIL;
	}
	ctx->h_in_reply_to = values[0];
	ctx->h_references = values[1];
	ctx->h_to = values[2];
	ctx->h_cc = values[3];
	ctx->h_from = values[4];
	ctx->h_date = values[5];
	ctx->n_irt = hdr_msgids(ctx->h_in_reply_to, HDR_IRT_MAX, &ctx->irt);
	ctx->n_refs = hdr_msgids(ctx->h_references, HDR_REFS_MAX, &ctx->refs);
	return STEP_OK;
}

/* The agent's access token. */
static enum step
job_token(struct job_ctx *ctx)
{
	enum oauth_status os;

	os = oauth_access_token(ctx->w->oauth, &ctx->hc, ctx->t->name,
	    ctx->job->agent, false, &ctx->token, &ctx->err);
	if (os == OAUTH_OK)
		return STEP_OK;
	snprintf(ctx->reason, sizeof(ctx->reason), os == OAUTH_NO_TOKEN ?
	    "agent %s has no Halo token: enroll it" : os == OAUTH_REENROLL ?
	    "agent %s must re-enroll" : "cannot get a token for %s: %s",
	    ctx->job->agent, ctx->err.message);
	return os == OAUTH_RETRY ? STEP_RETRY : STEP_WAIT;
}

/* With no thread found: whether this mail may open a ticket (STEP_SKIP
 * with the reason when not). */
static enum step
job_may_create(struct job_ctx *ctx)
{
	const struct store_job *job = ctx->job;

	if (ctx->outbound) {
		snprintf(ctx->reason, sizeof(ctx->reason), "no-thread (an agent's"
		    " outgoing mail never opens a ticket)");
		return STEP_SKIP;
	}
	if (job->job_mode != STORE_MODE_INTAKE || job->no_create) {
		snprintf(ctx->reason, sizeof(ctx->reason), job->no_create ?
		    "no-thread (list mail never opens a ticket)" :
		    "no-thread (thread-only mailbox)");
		return STEP_SKIP;
	}
	if (ctx->sender_kind != STORE_SENDER_CONTACT &&
	    ctx->sender_kind != STORE_SENDER_CLIENT) {
		snprintf(ctx->reason, sizeof(ctx->reason), ctx->sender_kind ==
		    STORE_SENDER_AMBIGUOUS ? "unknown-sender (domain claimed by"
		    " several clients)" : "unknown-sender");
		return STEP_SKIP;
	}
	return STEP_OK;
}

/* Exactly once: an earlier attempt may have reached Halo. STEP_OK with
 * CTX->outcome set when it did: recorded on the job (its attachments were
 * being retried), else found by asking Halo. */
static enum step
job_already_posted(struct job_ctx *ctx)
{
	enum step step = STEP_OK;
	int rc;

	if (!ctx->job->post_started)
		return STEP_OK;
	if (ctx->job->ticket_id > 0) {
		ctx->posted_ticket = ctx->job->ticket_id;
		ctx->posted_action = ctx->job->action_id;
		rc = 0;
	} else {
		rc = thread_halo_lookup(ctx, ctx->job->message_id,
		    &ctx->posted_ticket, &ctx->posted_action, &step);
		if (rc < 0)
			return step;
	}
	if (rc == 0) {
		log_info("%s: already in Halo (ticket %" PRId64 "), not posting"
		    " again", ctx->who, ctx->posted_ticket);
		ctx->outcome = ctx->create ? "created" : "appended";
		ctx->posted_before = true;
	}
	return STEP_OK;
}

/* Read the message in full and post it (or, when an earlier attempt
 * posted it, only the attachments Halo does not hold). */
static enum step
job_post(struct job_ctx *ctx)
{
	struct mime_message *m = NULL;
	struct mime_limits lim;
	char err[256], spill[PATH_MAX];
	enum step step;
	int rc;

	memset(&lim, 0, sizeof(lim));
	lim.max_attachment = ctx->t->max_attachment_size;
	lim.max_total = ctx->t->max_attachments_total;
	lim.file_len = ctx->job->size;
	/* attachments go to unlinked files beside the spool's own, not into
	 * memory: a worker logging a 50 MB mail stays small (issue 16) */
	if (spool_tmp_dir(ctx->w->spool_dir, spill, sizeof(spill)) != 0) {
		snprintf(ctx->reason, sizeof(ctx->reason), "spool path too long");
		return STEP_FAIL;
	}
	lim.spill_dir = spill;
	if ((rc = mime_extract(ctx->path, &lim, &m, err, sizeof(err))) != 0) {
		if (ctx->posted_before && rc != -2)  /* in Halo: done as it is */
			return STEP_OK;
		snprintf(ctx->reason, sizeof(ctx->reason), "cannot read message:"
		    " %s", err);
		/* no memory or no room for the attachments: may pass later */
		return rc == -2 ? STEP_RETRY : STEP_FAIL;
	}
	if (ctx->posted_before) {
		step = post_attachments_again(ctx, m);
		mime_message_free(m);
		return step;
	}
	step = post_message(ctx, m);
	mime_message_free(m);
	if (step != STEP_OK)
		return step;
	ctx->outcome = ctx->create ? "created" : "appended";
	if (ctx->create || ctx->new_status > 0)  /* open now, as far as we know */
		closed_remember(ctx, ctx->posted_ticket, false);
	if (ctx->new_status > 0)
		log_info("%s: ticket %" PRId64 " was closed; reopened (status %"
		    PRId64 ")", ctx->who, ctx->posted_ticket, ctx->new_status);
	else if (ctx->follows > 0)
		log_info("%s: ticket %" PRId64 " is closed; new ticket %" PRId64
		    " follows it", ctx->who, ctx->follows, ctx->posted_ticket);
	return STEP_OK;
}

/* The job's steps in order (design.md); STEP_OK once it is in Halo. */
static enum step
job_run(struct job_ctx *ctx)
{
	enum step step;

	if ((step = job_check_spool(ctx)) != STEP_OK ||
	    (step = job_token(ctx)) != STEP_OK ||
	    (step = job_read_headers(ctx)) != STEP_OK)
		return step;
	if (!ctx->outbound && (step = sender_resolve(ctx)) != STEP_OK)
		return step;
	if ((step = thread_find(ctx)) != STEP_OK ||
	    (step = closed_check(ctx)) != STEP_OK)
		return step;
	ctx->create = ctx->ticket_id == 0;
	if (ctx->create && (step = job_may_create(ctx)) != STEP_OK)
		return step;
	if ((step = job_already_posted(ctx)) != STEP_OK)
		return step;
	/* after the thread is decided: a new user never widens who joins */
	if (ctx->create && !ctx->posted_before &&
	    (step = sender_create_contact(ctx)) != STEP_OK)
		return step;
	return job_post(ctx);
}

/* Count the time from the mail's arrival (its job's creation, whole
 * seconds) to now, when it is logged in Halo. */
static void
worker_observe_latency(const struct store_job *job)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	metrics_observe(METRICS_MAIL_TO_HALO, (double)(now.tv_sec -
	    job->created) + (double)now.tv_nsec / 1e9);
}

/* Record a job that reached Halo. */
static void
job_done(struct job_ctx *ctx)
{
	struct worker *w = ctx->w;
	struct store_job *job = ctx->job;
	struct store_result res;
	char safe_id[128];

	memset(&res, 0, sizeof(res));
	res.ticket_id = ctx->posted_ticket;
	res.action_id = ctx->posted_action;
	res.result = ctx->outcome;
	res.contact = ctx->contact_name;
	res.client = ctx->client_name;
	res.sender = ctx->outbound ? NULL : sender_kind_name(ctx);
	res.contact_id = ctx->sender_kind == STORE_SENDER_CONTACT ?
	    ctx->user_id : 0;
	res.client_id = ctx->client_id;
	res.summary = ctx->create ? (job->subject && *job->subject ?
	    job->subject : "(no subject)") : NULL;
	res.ticket_status = ctx->create ? "new" : ctx->ticket_status;
	thread_done(ctx, &res);     /* participants; a refused ticket's note */
	if (ctx->att_note[0] != '\0')
		res.reason = ctx->att_note;
	if (store_job_done(w->store, job->id, &res) != STORE_OK)
		log_warnx("%s: cannot record result", ctx->who);
	else
		worker_observe_latency(job);
	/* the Message-ID comes from mail: printable only, like intake's lines */
	log_info("%s %s: tenant=%s msgid=%s ticket=%" PRId64 " action=%" PRId64
	    "%s%s", ctx->who, ctx->outcome, job->tenant,
	    log_safe(job->message_id, safe_id, sizeof(safe_id)),
	    ctx->posted_ticket, ctx->posted_action,
	    ctx->matched_by ? " matched-by=" : "",
	    ctx->matched_by ? ctx->matched_by : "");
	worker_count(w, &w->stats.jobs_done);
	worker_release_spool(w, job->spool);
}

/* Record a job that did not reach Halo, by how its step ended. */
static void
job_record(struct job_ctx *ctx, enum step step)
{
	struct worker *w = ctx->w;
	struct store_job *job = ctx->job;

	switch (step) {
	case STEP_LOST:
		log_warnx("%s: lease lapsed, another worker has it; not posting",
		    ctx->who);
		break;
	case STEP_RETRY:
		if (ctx->reason[0] == '\0')
			snprintf(ctx->reason, sizeof(ctx->reason), "%s: %s",
			    http_result_name(ctx->err.kind), ctx->err.message);
		store_job_retry(w->store, job->id, worker_backoff(ctx->conf->retry_base,
		    job->attempts, ctx->err.retry_after), ctx->reason);
		worker_count(w, &w->stats.retried);
		log_notice("%s will be retried: %s", ctx->who, ctx->reason);
		break;
	case STEP_WAIT:
		store_job_finish(w->store, job->id, STORE_WAITING, ctx->reason);
		log_warnx("%s waiting: %s", ctx->who, ctx->reason);
		break;
	case STEP_SKIP:
		store_job_finish(w->store, job->id, STORE_SKIPPED, ctx->reason);
		log_info("%s skipped: %s", ctx->who, ctx->reason);
		worker_release_spool(w, job->spool);
		break;
	default:
		store_job_finish(w->store, job->id, STORE_FAILED, ctx->reason);
		worker_count(w, &w->stats.jobs_failed);
		log_warnx("%s failed: %s", ctx->who, ctx->reason);
		break;
	}
}

/* Everything for one claimed job; records its outcome. */
static void
worker_process(struct worker *w, struct store_job *job)
{
	struct job_ctx ctx;
	enum step step = STEP_FAIL;

	if (ctx_init(&ctx, w, job))
		step = job_run(&ctx);
	if (step == STEP_OK)
		job_done(&ctx);
	else
		job_record(&ctx, step);
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
		worker_retention(w);
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
	(void)http_set_ca_file(conf->halo_ca_file);
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

/* Take each job's configuration from GENS from now on. */
void
worker_set_confgen(struct worker *w, struct confgen *gens)
{
	if (w != NULL)
		w->gens = gens;
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
