/*
 * worker.h - turn queued jobs into Halo ticket history, exactly once.
 *
 * Worker threads claim due jobs from the store and, for each: resolve the
 * sender (contact, else client by domain, else the tenant's fallback),
 * find the ticket (our Message-ID index, Halo's internetmessageid, the
 * conversation key, a subject tag from the ticket's own contact or client),
 * then append an action or, in intake mode, create a ticket. Failures of
 * Halo delay a job (backoff, Retry-After); they never drop it. A job whose
 * create/append may have reached Halo is checked against Halo before any
 * second request, so retries and crashes make no duplicates.
 */
#ifndef HALO_WORKER_H
#define HALO_WORKER_H

#include <stdint.h>

#include "conf.h"
#include "confgen.h"
#include "http.h"
#include "oauth.h"
#include "store.h"

struct worker;

/*
 * Seconds a job interrupted while posting waits, from its posting mark,
 * before its Halo recheck after a restart: a request killed with the process
 * may still be applied by Halo (it had the whole request), and a recheck
 * that runs before that would post a second ticket. The HTTP client's total
 * request timeout (http.h) plus a margin.
 */
#define WORKER_POST_GRACE   ((int)(HTTP_DEFAULT_TOTAL_MS / 1000) + 5)

/* Start NTHREADS workers (conf->workers when 0). NULL on failure. */
struct worker *worker_start(const struct conf *conf, struct store *store,
    struct oauth *oauth, const char *spool_dir, unsigned nthreads);

/* Stop the threads (each finishes the job it holds) and free; NULL. */
struct worker *worker_stop(struct worker *w);

/*
 * Live reload: from now on each job takes a reference to GENS's current
 * generation and reads its tenant's settings, routes and overrides there
 * until it is recorded. The pool itself (threads, job_lease, each tenant's
 * request budget) keeps worker_start()'s CONF, which must outlive it; so
 * must GENS. Set it before jobs run (NULL W is accepted).
 */
void worker_set_confgen(struct worker *w, struct confgen *gens);

/* Wake an idle worker now (a job was just queued). */
void worker_kick(struct worker *w);

/* Process one due job in the calling thread (tests, "halo-milterctl run");
 * returns 1 when a job was processed, 0 when none was due. */
int worker_run_once(struct worker *w);

/*
 * Seconds to wait before attempt ATTEMPTS + 1: Halo's RETRY_AFTER when it
 * gave one (>= 0; capped at an hour, plus JITTER's low bit), else BASE
 * doubled per attempt up to an hour, scaled by JITTER (0..255) into
 * 80%..120%. Never less than a second.
 */
long worker_retry_delay(unsigned base, int attempts, long retry_after,
    unsigned char jitter);

/* Requests sent to Halo, by outcome, for /metrics and tests. */
struct worker_stats {
	uint64_t requests;          /* Halo requests sent */
	uint64_t retried;           /* jobs put back for a later attempt */
	uint64_t jobs_done, jobs_failed;
};
void worker_stats(struct worker *w, struct worker_stats *out);

/* Log each tenant's widening of who may join a ticket (join_clients,
 * join_domain_members): never silent. At start-up. */
void worker_log_join_policy(const struct conf *conf);

#endif
