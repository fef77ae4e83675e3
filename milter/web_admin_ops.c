/*
 * web_admin_ops.c - the admin page's operations part: the failed and
 * waiting jobs with their reasons and a Retry button (the store call of
 * "halo-milterctl retry"), and each tenant's doctor checks
 * (common/doctor.c) run on demand. web_admin.c has checked the client's
 * network, the session, the Origin and the CSRF token before any of this
 * runs. Subjects, senders and reasons come from mail and from Halo: every
 * one is HTML-escaped.
 */
#include "web_admin_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"
#include "log.h"
#include "worker.h"

#define OPS_JOBS_MAX         100         /* failed and waiting jobs listed */
#define OPS_CELL_MAX         160         /* bytes of a subject, sender or
                                            reason shown in the jobs table */
#define OPS_DOCTOR_SECONDS   20          /* a doctor run starts no Halo
                                            call after this (each call has
                                            its own timeout) */

/* one doctor run at a time: each makes several Halo calls */
static pthread_mutex_t ops_doctor_lock = PTHREAD_MUTEX_INITIALIZER;

/* One row of the jobs table, copied out of the store's callback. */
struct ops_job {
	int64_t id;
	enum store_state state;
	time_t updated;
	char *tenant, *from, *subject, *reason;
};

/* The failed and waiting jobs read for the page. */
struct ops_jobs {
	struct ops_job *v;        /* 2 * OPS_JOBS_MAX slots */
	size_t n;
	bool oom;
};

/* store_job_list callback: keep a copy of the job's listed fields. */
static void
ops_job_keep(const struct store_job *j, void *arg)
{
	struct ops_jobs *jobs = arg;
	struct ops_job *r;

	if (jobs->n >= 2 * OPS_JOBS_MAX)
		return;
	r = &jobs->v[jobs->n];
	r->id = j->id;
	r->state = j->state;
	r->updated = j->updated;
	r->tenant = strdup(j->tenant != NULL ? j->tenant : "");
	r->from = strdup(j->from_addr != NULL ? j->from_addr : "");
	r->subject = strdup(j->subject != NULL ? j->subject : "");
	r->reason = strdup(j->reason != NULL ? j->reason : "");
	jobs->n++;
	if (r->tenant == NULL || r->from == NULL || r->subject == NULL ||
	    r->reason == NULL)
		jobs->oom = true;
}

/* qsort: the most recently changed first, then the highest id. */
static int
ops_job_newer(const void *pa, const void *pb)
{
	const struct ops_job *a = pa, *b = pb;

	if (a->updated != b->updated)
		return a->updated > b->updated ? -1 : 1;
	return a->id > b->id ? -1 : a->id < b->id ? 1 : 0;
}

/* Free what ops_job_keep copied. */
static void
ops_jobs_clear(struct ops_jobs *jobs)
{
	size_t i;

	for (i = 0; i < jobs->n; i++) {
		free(jobs->v[i].tenant);
		free(jobs->v[i].from);
		free(jobs->v[i].subject);
		free(jobs->v[i].reason);
	}
	free(jobs->v);
	memset(jobs, 0, sizeof(*jobs));
}

/* At most OPS_CELL_MAX bytes of S (cut at a character boundary, "..."
 * added), escaped: mail headers are the sender's to choose. */
static void
ops_cell(struct web_buf *b, const char *s)
{
	char cut[OPS_CELL_MAX + 1];
	size_t len = strlen(s);

	if (len <= OPS_CELL_MAX) {
		web_buf_escape(b, s);
		return;
	}
	len = OPS_CELL_MAX;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	memcpy(cut, s, len);
	cut[len] = '\0';
	web_buf_escape(b, cut);
	web_buf_add(b, "...");
}

/* The failed and waiting jobs, newest first, each with a Retry button. */
void
web_admin_ops_jobs(struct web_buf *body, const struct admin_ctx *a)
{
	struct store *st = a->call->w->store;
	struct ops_jobs jobs = { 0 };
	char when[40];
	size_t i, shown;

	web_buf_add(body, "<h2>Failed and waiting jobs</h2>\n");
	jobs.v = calloc(2 * OPS_JOBS_MAX, sizeof(*jobs.v));
	if (jobs.v == NULL ||
	    store_job_list(st, STORE_FAILED, OPS_JOBS_MAX, ops_job_keep,
	    &jobs) != STORE_OK ||
	    store_job_list(st, STORE_WAITING, OPS_JOBS_MAX, ops_job_keep,
	    &jobs) != STORE_OK || jobs.oom)
		web_buf_add(body, "<p class=\"error\">The gateway could not"
		    " read its jobs whole; the list may be incomplete.</p>\n");
	qsort(jobs.v, jobs.n, sizeof(*jobs.v), ops_job_newer);
	shown = jobs.n < OPS_JOBS_MAX ? jobs.n : OPS_JOBS_MAX;
	web_buf_add(body, "<table id=\"jobs\"><thead><tr><th>Job</th>"
	    "<th>State</th><th>Tenant</th><th>From</th><th>Subject</th>"
	    "<th>Reason</th><th>Since</th><th></th></tr></thead><tbody>\n");
	for (i = 0; i < shown; i++) {
		struct ops_job *j = &jobs.v[i];

		web_admin_time(j->updated, when, sizeof(when));
		web_buf_printf(body, "<tr id=\"job-%" PRId64 "\"><td>%" PRId64
		    "</td><td>%s</td><td>", j->id, j->id,
		    store_state_name(j->state));
		ops_cell(body, j->tenant);
		web_buf_add(body, "</td><td>");
		ops_cell(body, j->from);
		web_buf_add(body, "</td><td>");
		ops_cell(body, j->subject);
		web_buf_add(body, "</td><td class=\"reason\">");
		ops_cell(body, j->reason[0] != '\0' ? j->reason : "-");
		web_buf_printf(body, "</td><td class=\"when\">%s</td><td>"
		    "<form class=\"inline\" method=\"post\""
		    " action=\"%sadmin/retry\">", when, a->root);
		web_admin_hidden(body, a, NULL, NULL);
		web_buf_printf(body, "<input type=\"hidden\" name=\"id\""
		    " value=\"%" PRId64 "\"><button type=\"submit\">Retry"
		    "</button></form></td></tr>\n", j->id);
	}
	if (shown == 0)
		web_buf_add(body, "<tr><td colspan=\"8\">No failed or waiting"
		    " jobs.</td></tr>\n");
	web_buf_add(body, "</tbody></table>\n");
	if (jobs.n > shown)
		web_buf_printf(body, "<p>The newest %d are shown; <code>"
		    "halo-milterctl queue -s failed</code> (or <code>-s waiting"
		    "</code>) lists them all.</p>\n", OPS_JOBS_MAX);
	ops_jobs_clear(&jobs);
}

/* Each tenant with a button that runs its doctor checks. */
void
web_admin_ops_tenants(struct web_buf *body, const struct admin_ctx *a)
{
	const struct conf *conf = a->call->conf;
	size_t i;

	web_buf_add(body, "<h2>Tenants</h2>\n<table id=\"tenants\"><thead><tr>"
	    "<th>Tenant</th><th>Halo</th><th></th></tr></thead><tbody>\n");
	for (i = 0; i < conf->n_tenants; i++) {
		web_buf_add(body, "<tr><td>");
		web_buf_escape(body, conf->tenants[i]->name);
		web_buf_add(body, "</td><td>");
		web_buf_escape(body, conf->tenants[i]->halo_url);
		web_buf_printf(body, "</td><td><form class=\"inline\""
		    " method=\"post\" action=\"%sadmin/doctor\">", a->root);
		web_admin_hidden(body, a, conf->tenants[i]->name, NULL);
		web_buf_add(body, "<button type=\"submit\" class=\"secondary\">"
		    "Run doctor</button></form></td></tr>\n");
	}
	web_buf_printf(body, "</tbody></table>\n<p>Doctor checks the store and"
	    " the tenant's Halo set-up: each agent's token, the ticket type,"
	    " the outcomes, the statuses, the custom fields and the request"
	    " budget. It makes several Halo calls and stops starting new ones"
	    " after %d seconds.</p>\n", OPS_DOCTOR_SECONDS);
}

/* POST /admin/retry: queue a failed, skipped or waiting job again (as
 * "halo-milterctl retry": a done or running job is refused). */
enum MHD_Result
web_admin_ops_retry(const struct admin_ctx *a)
{
	const struct web_req *rq = a->call->rq;
	struct store *st = a->call->w->store;
	struct store_job *job = NULL;
	char idtext[24], message[300], *end;
	long long id = 0;
	enum store_status ss;
	unsigned status;

	if (web_form_get(rq->body, rq->len, "id", idtext, sizeof(idtext))) {
		errno = 0;
		id = strtoll(idtext, &end, 10);
		if (errno != 0 || end == idtext || *end != '\0')
			id = 0;
	}
	if (id <= 0)
		return web_admin_message(a, MHD_HTTP_BAD_REQUEST,
		    "Cannot retry", "error", "That is not a job id.", true,
		    NULL);
	ss = store_job_requeue(st, id);
	if (ss == STORE_NOT_FOUND) {
		status = MHD_HTTP_CONFLICT;
		if (store_job_get(st, id, &job) != STORE_OK || job == NULL) {
			status = MHD_HTTP_NOT_FOUND;
			snprintf(message, sizeof(message), "There is no job"
			    " %lld.", id);
		} else if (job->state == STORE_DONE) {
			snprintf(message, sizeof(message), "Job %lld is done:"
			    " its mail is on its Halo ticket and its spooled"
			    " message is gone; nothing to retry.", id);
		} else {
			snprintf(message, sizeof(message), "Job %lld is %s now;"
			    " try again when it has finished.", id,
			    store_state_name(job->state));
		}
		store_job_free(job);
		return web_admin_message(a, status, "Cannot retry", "error",
		    message, true, NULL);
	}
	if (ss != STORE_OK)
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Cannot retry", "error", "The gateway could not change its"
		    " database; try again.", true, NULL);
	log_info("admin: job %lld queued again by the admin signed in from %s",
	    id, a->call->client);
	snprintf(message, sizeof(message), "Job %lld is queued again.", id);
	return web_admin_message(a, MHD_HTTP_OK, "Retried", "ok", message,
	    true, NULL);
}

/* doctor_line_fn: one row of the doctor table in the web_buf ARG,
 * escaped (Halo's error text is in it). */
static void
ops_doctor_line(enum doctor_level level, const char *text, void *arg)
{
	struct web_buf *body = arg;
	const char *name = doctor_level_name(level);

	web_buf_printf(body, "<tr class=\"check\"><td class=\"level-%s\">%s"
	    "</td><td>", name, name);
	web_buf_escape(body, text);
	web_buf_add(body, "</td></tr>\n");
}

/* POST /admin/doctor: one tenant's doctor checks (as "halo-milterctl
 * doctor TENANT"), one run at a time, stopping after OPS_DOCTOR_SECONDS. */
enum MHD_Result
web_admin_ops_doctor(const struct admin_ctx *a)
{
	struct web *w = a->call->w;
	const struct web_req *rq = a->call->rq;
	const struct conf_tenant *t;
	struct web_buf body = { 0 };
	char tenant[72], title[100];
	int problems;

	if (!web_form_get(rq->body, rq->len, "tenant", tenant,
	    sizeof(tenant)) ||
	    (t = conf_tenant_find(a->call->conf, tenant)) == NULL)
		return web_admin_message(a, MHD_HTTP_BAD_REQUEST,
		    "Cannot run doctor", "error", "No such tenant in this"
		    " gateway's configuration.", true, NULL);
	if (w->oauth == NULL)
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Cannot run doctor", "error", "This gateway's web server"
		    " holds no agent tokens; run halo-milterctl doctor on it.",
		    true, NULL);
	if (pthread_mutex_trylock(&ops_doctor_lock) != 0)
		return web_admin_message(a, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Cannot run doctor", "error", "Doctor is running already;"
		    " try again in a minute.", true, NULL);
	log_info("admin: doctor run for tenant %s by the admin signed in"
	    " from %s", t->name, a->call->client);
	web_buf_add(&body, "<p>");
	web_buf_escape(&body, t->halo_url);
	web_buf_add(&body, "</p>\n<table id=\"doctor\"><thead><tr>"
	    "<th>Level</th><th>Check</th></tr></thead><tbody>\n");
	problems = doctor_store(w->store, w->conf->job_lease, WORKER_POST_GRACE,
	    ops_doctor_line, &body);
	problems += doctor_tenant(w->store, w->oauth, t,
	    time(NULL) + OPS_DOCTOR_SECONDS, ops_doctor_line, &body);
	pthread_mutex_unlock(&ops_doctor_lock);
	web_buf_printf(&body, "</tbody></table>\n<p class=\"%s\""
	    " id=\"problems\">%d problem%s found.</p>\n<p><a href=\"%sadmin\">"
	    "Back to the admin page</a></p>\n", problems == 0 ? "ok" : "error",
	    problems, problems == 1 ? "" : "s", a->root);
	snprintf(title, sizeof(title), "Doctor: tenant %s", t->name);
	return web_admin_page(a, MHD_HTTP_OK, title, &body, NULL);
}
