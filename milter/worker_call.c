/*
 * worker_call.c - one Halo request of a job: the tenant's request budget,
 * a single token refresh on 401, the tenant-wide pause on 429 and the
 * verdict when the request failed (see worker_int.h); the retry schedule.
 */
#include "worker_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "http.h"

/* Record that the budget is used up (a local 429) for REASON. */
static bool
call_budget_out(struct job_ctx *ctx, long retry_after, const char *reason)
{
	ctx->err.kind = HTTP_RATE_LIMITED;
	ctx->err.retry_after = retry_after;
	snprintf(ctx->err.message, sizeof(ctx->err.message), "%s", reason);
	return false;
}

/* Take one slot of the tenant's budget, waiting up to a few seconds. */
static bool
call_budget(struct job_ctx *ctx)
{
	struct worker_rate *r = ctx->rate;
	struct timespec second = { 1, 0 };
	char why[128];
	time_t now, oldest;
	int waited;

	for (waited = 0;; waited++) {
		if (waited > 0)
			nanosleep(&second, NULL);
		pthread_mutex_lock(&r->lock);
		now = time(NULL);
		if (r->paused_until > now) {
			oldest = r->paused_until;
			pthread_mutex_unlock(&r->lock);
			if (waited >= WORKER_BUDGET_WAIT)
				return call_budget_out(ctx, (long)(oldest - now),
				    "Halo asked us to wait (429)");
			continue;
		}
		if (store_is_shared(ctx->w->store)) {
			/* several nodes: the budget is counted in the store */
			switch (store_budget_take(ctx->w->store, ctx->t->name,
			    now, r->window, r->cap, &oldest)) {
			case STORE_OK:
				pthread_mutex_unlock(&r->lock);
				worker_count(ctx->w, &ctx->w->stats.requests);
				return true;
			case STORE_NOT_FOUND:
				break;
			default:
				pthread_mutex_unlock(&r->lock);
				return call_budget_out(ctx, 5, "store unavailable");
			}
		} else if (r->count == r->cap) {
			oldest = r->stamps[r->head];
			if (now - oldest >= (time_t)r->window) {
				r->head = (r->head + 1) % r->cap;
				r->count--;
			}
		}
		if (!store_is_shared(ctx->w->store) && r->count < r->cap) {
			r->stamps[(r->head + r->count) % r->cap] = now;
			r->count++;
			pthread_mutex_unlock(&r->lock);
			worker_count(ctx->w, &ctx->w->stats.requests);
			return true;
		}
		if (!store_is_shared(ctx->w->store))
			oldest = r->stamps[r->head];
		pthread_mutex_unlock(&r->lock);
		if (waited >= WORKER_BUDGET_WAIT) {
			snprintf(why, sizeof(why), "local request budget (%u per %us)"
			    " used up", r->cap, r->window);
			return call_budget_out(ctx, (long)(oldest + r->window - now),
			    why);
		}
	}
}

/* Reset the error before a call. */
void
worker_clear_err(struct job_ctx *ctx)
{
	memset(&ctx->err, 0, sizeof(ctx->err));
	ctx->err.retry_after = -1;
}

/* A 401 on the first attempt: a fresh token (true: call again), else the
 * agent's standing as the verdict in *STEP. */
static bool
call_refresh(struct job_ctx *ctx, enum step *step)
{
	char *fresh = NULL;
	struct halo_err aerr;
	enum oauth_status os;

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

/* A 429: the whole tenant holds off, not just this job. True when the wait
 * is short enough to serve in place (call_budget sleeps through the pause),
 * so the job keeps its turn instead of re-queueing behind newer mail and
 * starving in a long 429 storm. */
static bool
call_pause(struct job_ctx *ctx, int attempt)
{
	long wait = ctx->err.retry_after >= 0 ? ctx->err.retry_after : 5;

	pthread_mutex_lock(&ctx->rate->lock);
	if (ctx->rate->paused_until < time(NULL) + wait)
		ctx->rate->paused_until = time(NULL) + wait;
	pthread_mutex_unlock(&ctx->rate->lock);
	return wait <= WORKER_BUDGET_WAIT && attempt < WORKER_429_INPLACE;
}

/* After a failed call: true to call again, else the verdict in *STEP. */
static bool
call_again(struct job_ctx *ctx, int attempt, enum step *step)
{
	if (ctx->err.kind == HTTP_UNAUTHORIZED && attempt == 0)
		return call_refresh(ctx, step);
	if (ctx->err.kind == HTTP_RATE_LIMITED && call_pause(ctx, attempt))
		return true;
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

/* One Halo request under the budget and the retry policy (worker_int.h). */
int
worker_call(struct job_ctx *ctx, worker_call_fn fn, void *arg, enum step *step)
{
	int attempt, rc;

	for (attempt = 0;; attempt++) {
		worker_clear_err(ctx);
		if (!call_budget(ctx)) {
			*step = STEP_RETRY;
			return -1;
		}
		if ((rc = fn(ctx, arg)) >= 0)
			return rc;
		if (!call_again(ctx, attempt, step))
			return -1;
	}
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
time_t
worker_backoff(unsigned base, int attempts, long retry_after)
{
	unsigned char r = 128;

	if (crypto_random(&r, 1) != 0)
		r = 128;
	return time(NULL) + worker_retry_delay(base, attempts, retry_after, r);
}
