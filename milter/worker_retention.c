/*
 * worker_retention.c - finished jobs leave the store after job_retention
 * days, so it stays bounded.
 *
 * A worker thread runs it between jobs: at start, then once an hour. Each
 * batch is one short transaction (store_jobs_purge), so intake and the
 * other workers wait for the store at most one batch. What threading needs
 * of a deleted job stays in the store's thread index; its spool file goes
 * when no other job refers to it.
 */
#include "worker_int.h"

#include "log.h"
#include "spool.h"

/* store_jobs_purge() callback: remove a spool file no job needs now. */
static void
worker_purge_spool(const char *name, void *arg)
{
	struct worker *w = arg;
	bool used = true;

	if (store_spool_used(w->store, name, &used) == STORE_OK && !used)
		spool_remove(w->spool_dir, name);
}

/* Delete finished jobs past job_retention, when due. */
void
worker_retention(struct worker *w)
{
	unsigned days = w->conf->job_retention, n = 0, total = 0;
	time_t now = time(NULL);
	bool stop = false;

	if (days == 0)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->purging || now < w->next_purge) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->purging = true;
	w->next_purge = now + WORKER_PURGE_EVERY;
	pthread_mutex_unlock(&w->lock);
	do {
		if (store_jobs_purge(w->store, now - (time_t)days * 86400,
		    WORKER_PURGE_BATCH, &n, worker_purge_spool, w) != STORE_OK) {
			log_warnx("retention: cannot delete finished jobs (next"
			    " try in an hour)");
			break;
		}
		total += n;
		pthread_mutex_lock(&w->lock);
		stop = w->stopping;
		pthread_mutex_unlock(&w->lock);
	} while (n == WORKER_PURGE_BATCH && !stop);
	if (total > 0)
		log_info("retention: deleted %u finished job%s older than %u"
		    " day%s", total, total == 1 ? "" : "s", days,
		    days == 1 ? "" : "s");
	pthread_mutex_lock(&w->lock);
	w->purging = false;
	pthread_mutex_unlock(&w->lock);
}
