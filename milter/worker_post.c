/*
 * worker_post.c - the mail as Halo gets it: the sanitised body with a list
 * of what was not uploaded, the attachments, and the one request that
 * creates the ticket or appends the action (marked in the store first, so
 * a retry asks Halo before posting again).
 */
#include "worker_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hdr.h"
#include "html.h"
#include "log.h"

/* cid: -> attachment file name, for the sanitiser. */
static const char *
post_cid_lookup(const char *cid, void *arg)
{
	const struct mime_message *m = arg;
	size_t i;

	for (i = 0; i < m->n_attachments; i++)
		if (m->attachments[i].content_id != NULL &&
		    strcmp(m->attachments[i].content_id, cid) == 0)
			return m->attachments[i].filename;
	return NULL;
}

/* Room for a request's fields other than the note and the attachments. */
#define POST_REQUEST_SLACK (64 * 1024)

/* Bytes a file of LEN bytes named NAME (TYPE) takes in a request: base64,
 * a third larger, in a data URI, its name JSON-escaped at worst. */
static uint64_t
post_att_bytes(size_t len, const char *name, const char *type)
{
	return ((uint64_t)len + 2) / 3 * 4 + 64 +
	    (name != NULL ? strlen(name) * 6 : 0) +
	    (type != NULL ? strlen(type) * 2 : 0);
}

/* Whether attachment A is left out of the upload, and why (into *WHY). */
static bool
post_left_out(const struct job_ctx *ctx, const struct mime_attachment *a,
    const char **why)
{
	if (a->skip != MIME_SKIP_NONE || a->data == NULL) {
		*why = mime_skip_reason(a->skip != MIME_SKIP_NONE ? a->skip :
		    MIME_SKIP_SIZE);
		return true;
	}
	if (!ctx->t->attachments) {
		*why = "attachments are not uploaded (attachments = no)";
		return true;
	}
	if (post_att_bytes(a->len, a->filename, a->content_type) +
	    POST_REQUEST_SLACK > ctx->t->halo_request_max) {
		*why = "too large for one Halo request (halo_request_max)";
		return true;
	}
	return false;
}

/* BODY followed by the list of attachments not uploaded, each with its
 * reason (mime_skip_reason()), and the parts past the listing limit;
 * frees BODY. */
static char *
post_not_uploaded(struct job_ctx *ctx, const struct mime_message *m,
    char *body)
{
	char *out = NULL, *name;
	const char *why;
	size_t len, i;
	FILE *fp;

	fp = open_memstream(&out, &len);
	if (fp == NULL)
		return body;
	fputs(body, fp);
	fputs("<p><b>Attachments not uploaded:</b></p><ul>", fp);
	for (i = 0; i < m->n_attachments; i++) {
		const struct mime_attachment *a = &m->attachments[i];

		if (!post_left_out(ctx, a, &why))
			continue;
		name = html_escape(a->filename != NULL ? a->filename : "?");
		if (a->skip == MIME_SKIP_LIMIT)     /* never read: no size */
			fprintf(fp, "<li>%s: %s</li>", name ? name : "?", why);
		else
			fprintf(fp, "<li>%s (%zu bytes): %s</li>", name ? name : "?",
			    a->original_len, why);
		free(name);
	}
	if (m->n_unlisted > 0)
		fprintf(fp, "<li>and %zu more part%s not listed</li>", m->n_unlisted,
		    m->n_unlisted == 1 ? "" : "s");
	fputs("</ul>", fp);
	if (fclose(fp) != 0) {
		free(out);
		return body;
	}
	free(body);
	return out;
}

/* The note/details HTML: sanitised body plus what was not uploaded. */
char *
post_body_html(struct job_ctx *ctx, const struct mime_message *m, bool trim)
{
	struct html_options opt;
	const char *why;
	char *body;
	size_t i, extra = m->n_unlisted;

	memset(&opt, 0, sizeof(opt));
	opt.trim_quotes = trim;
	opt.cid_lookup = post_cid_lookup;
	opt.cid_arg = (void *)m;
	if (m->html != NULL)
		body = html_sanitize(m->html, strlen(m->html), &opt);
	else
		body = html_from_text(m->text ? m->text : "",
		    m->text ? strlen(m->text) : 0, trim);
	if (body == NULL)
		return NULL;
	for (i = 0; i < m->n_attachments; i++)
		if (post_left_out(ctx, &m->attachments[i], &why))
			extra++;
	return extra == 0 ? body : post_not_uploaded(ctx, m, body);
}

/* ------------------------------------------------------------ dates */

/* The month named by the three letters at S (1..12), or 0. */
static int
post_month(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char low[4];
	int i;

	for (i = 0; i < 3; i++) {
		if (s[i] == '\0')
			return 0;
		low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	}
	low[3] = '\0';
	for (i = 0; i < 12; i++)
		if (strncmp(months + 3 * i, low, 3) == 0)
			return i + 1;
	return 0;
}

/* An RFC 5322 (and obsolete RFC 822) date: [Day,] D Mon YYYY HH:MM[:SS]
 * ZONE; a zone other than +hhmm/-hhmm counts as UTC. */
bool
post_parse_date(const char *date, time_t *out)
{
	const char *p = date;
	struct tm tm;
	int day, mon, year, hh, mm, ss = 0, n = 0, off = 0;
	time_t t;

	if (date == NULL)
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strchr(p, ',') != NULL)
		p = strchr(p, ',') + 1;
	if (sscanf(p, " %2d %n", &day, &n) != 1 || n == 0)
		return false;
	p += n;
	if ((mon = post_month(p)) == 0)
		return false;
	p += 3;
	n = 0;
	if (sscanf(p, " %4d %2d:%2d%n", &year, &hh, &mm, &n) != 3 || n == 0)
		return false;
	p += n;
	if (*p == ':') {
		n = 0;
		if (sscanf(p, ":%2d%n", &ss, &n) != 1 || n == 0)
			return false;
		p += n;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '+' || *p == '-') {
		int z = 0, k;

		for (k = 1; k <= 4; k++) {
			if (p[k] < '0' || p[k] > '9')
				return false;
			z = z * 10 + (p[k] - '0');
		}
		off = (z / 100 * 60 + z % 100) * 60;
		if (*p == '-')
			off = -off;
	}
	if (year < 100)
		year += year < 50 ? 2000 : 1900;
	if (day < 1 || day > 31 || year < 1970 || year > 9999 || hh < 0 ||
	    hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon - 1;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if ((t = timegm(&tm)) == (time_t)-1)
		return false;
	*out = t - off;
	return true;
}

/* When the mail was written, bounded by its arrival (worker_int.h). */
void
post_mail_when(const char *date, time_t arrived, char out[32])
{
	time_t when;
	struct tm tm;

	if (!post_parse_date(date, &when) || when > arrived + WORKER_DATE_AHEAD ||
	    when < arrived - WORKER_DATE_BEHIND)
		when = arrived;
	gmtime_r(&when, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The name the mail gives its sender (From's display name, decoded by
 * hdr_display_name()), else ADDR; into OUT. */
static void
post_reported_by(const char *from, const char *addr, char *out, size_t outsz)
{
	char *name = from != NULL ? hdr_display_name(from) : NULL;

	snprintf(out, outsz, "%s", name != NULL && *name != '\0' ? name :
	    addr != NULL ? addr : "");
	free(name);
}

/* Attachments to upload (those with data), as Halo expects them. */
static struct halo_attachment *
post_attachments(struct job_ctx *ctx, const struct mime_message *m, size_t *n)
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
		const char *why;

		if (post_left_out(ctx, ma, &why))
			continue;
		a[*n].filename = ma->filename;
		a[*n].content_type = ma->content_type;
		a[*n].data = ma->data;
		a[*n].len = ma->len;
		a[*n].mapped = ma->mapped;
		a[*n].is_image = ma->content_type != NULL &&
		    strncasecmp(ma->content_type, "image/", 6) == 0;
		(*n)++;
	}
	return a;
}

/* What one create/append request carries. */
struct post_req {
	const char *html;
	struct halo_attachment *att;
	size_t n_att;
	struct halo_attach_result *res;     /* n_att: what Halo did with each */
	char when[32];                      /* the mail's date for Halo */
	char reported_by[256];
};

/* Create the ticket (a worker_call() function). */
static int
post_create_call(struct job_ctx *ctx, void *arg)
{
	struct post_req *rq = arg;
	const struct conf_route *r = ctx->route;
	struct halo_customfield cf[2];
	struct halo_ticket_new tn;
	size_t n_cf = 0;

	memset(&tn, 0, sizeof(tn));
	if (ctx->t->cf_conversation_id[0] != '\0' && ctx->job->conv_key != NULL) {
		cf[n_cf].name = ctx->t->cf_conversation_id;
		cf[n_cf++].value = ctx->job->conv_key;
	}
	if (ctx->t->cf_message_id[0] != '\0') {
		cf[n_cf].name = ctx->t->cf_message_id;
		cf[n_cf++].value = ctx->job->message_id;
	}
	tn.summary = ctx->job->subject && *ctx->job->subject ?
	    ctx->job->subject : "(no subject)";
	tn.details_html = rq->html;
	tn.tickettype_id = r != NULL && r->ticket_type_id > 0 ?
	    r->ticket_type_id : ctx->t->ticket_type_id;
	tn.priority_id = r != NULL ? r->priority_id : 0;
	tn.agent_id = r != NULL ? r->assign_agent_id : 0;
	tn.team = r != NULL ? r->team : NULL;
	tn.client_id = ctx->client_id;
	tn.site_id = ctx->site_id;
	tn.user_id = ctx->sender_kind == STORE_SENDER_CONTACT ? ctx->user_id : 0;
	tn.user_email = ctx->job->from_addr;
	tn.reported_by = rq->reported_by[0] != '\0' ? rq->reported_by : NULL;
	tn.email_to_list = ctx->h_to;
	tn.email_cc_list = ctx->h_cc;
	tn.date_occurred = rq->when;
	tn.action_outcome = ctx->t->create_outcome;
	tn.dont_do_rules = ctx->t->dont_do_rules;
	tn.internet_message_id = ctx->job->message_id;
	tn.customfields = cf;
	tn.n_customfields = n_cf;
	tn.attachments = rq->att;
	tn.n_attachments = rq->n_att;
	tn.att_results = rq->res;
	ctx->posted_action = 0;
	return halo_ticket_create(&ctx->hc, ctx->token, &tn, &ctx->posted_ticket,
	    &ctx->err);
}

/* Append the action to the matched ticket (a worker_call() function). */
static int
post_append_call(struct job_ctx *ctx, void *arg)
{
	struct post_req *rq = arg;
	struct halo_action_new act;

	memset(&act, 0, sizeof(act));
	act.ticket_id = ctx->ticket_id;
	act.outcome = ctx->outbound ? ctx->t->outbound_outcome :
	    ctx->t->append_outcome;
	act.outgoing = ctx->outbound;
	act.note_html = rq->html;
	act.hidden = ctx->t->internal_note;
	act.email_from = ctx->job->from_addr;
	act.email_to = ctx->h_to;
	act.email_cc = ctx->h_cc;
	act.email_subject = ctx->job->subject;
	act.arrival_date = rq->when;
	act.internet_message_id = ctx->job->message_id;
	act.new_status = ctx->new_status;
	act.attachments = rq->att;
	act.n_attachments = rq->n_att;
	act.att_results = rq->res;
	ctx->posted_ticket = ctx->ticket_id;
	return halo_action_create(&ctx->hc, ctx->token, &act, &ctx->posted_action,
	    &ctx->err);
}

/* The HTML to post: the body, naming the closed ticket a new one follows. */
static char *
post_html(struct job_ctx *ctx, const struct mime_message *m)
{
	char *html, *with;

	html = post_body_html(ctx, m, !ctx->create && ctx->t->trim_quotes);
	if (html == NULL || !ctx->create || ctx->follows <= 0)
		return html;
	if (asprintf(&with, "<p>Follow-up to closed ticket %" PRId64
	    ".</p>\n%s", ctx->follows, html) < 0)
		with = NULL;
	free(html);
	return with;
}

/* Mark the job as posting; our lease is renewed. */
static enum step
post_mark(struct job_ctx *ctx)
{
	const struct worker *w = ctx->w;

	switch (store_job_mark_posting(w->store, ctx->job->id,
	    ctx->job->lease_until, time(NULL) + WORKER_LEASE)) {
	case STORE_OK:
		return STEP_OK;
	case STORE_NOT_FOUND:
		/* our lease lapsed and another worker owns the job now: posting
		 * too could make a second action */
		return STEP_LOST;
	default:
		snprintf(ctx->reason, sizeof(ctx->reason), "store unavailable");
		return STEP_RETRY;
	}
}

/* Add attachment NAME that Halo did not store (WHY) to CTX's list. */
static void
post_att_failed(struct job_ctx *ctx, const char *name, const char *why)
{
	size_t len = strlen(ctx->att_failed);

	ctx->n_att_failed++;
	if (len + 8 < sizeof(ctx->att_failed))
		snprintf(ctx->att_failed + len, sizeof(ctx->att_failed) - len,
		    "%s%s (%s)", len > 0 ? "; " : "", name != NULL ? name : "?",
		    why != NULL && *why != '\0' ? why : "not stored");
}

/* The private note listing what Halo did not store (a worker_call()
 * function). */
static int
post_note_call(struct job_ctx *ctx, void *arg)
{
	struct halo_action_new act;
	int64_t id = 0;

	memset(&act, 0, sizeof(act));
	act.ticket_id = ctx->posted_ticket;
	act.outcome = ctx->t->append_outcome;
	act.note_html = arg;
	act.hidden = true;
	return halo_action_create(&ctx->hc, ctx->token, &act, &id, &ctx->err);
}

/*
 * Some attachments were not stored (CTX->att_failed): the job is retried
 * (the mail itself is in Halo and is not posted again) until
 * WORKER_ATTACH_TRIES attempts; then a private note on the ticket names
 * what could not be attached and why, and the job ends with that reason.
 */
static enum step
post_settle(struct job_ctx *ctx)
{
	enum step step = STEP_OK;
	char *html = NULL, *list, *msgid;
	bool noted;

	if (ctx->n_att_failed == 0)
		return STEP_OK;
	if (ctx->job->attempts < WORKER_ATTACH_TRIES) {
		int n = snprintf(ctx->reason, sizeof(ctx->reason), "in Halo"
		    " (ticket %" PRId64 "), but %zu attachment%s not stored: ",
		    ctx->posted_ticket, ctx->n_att_failed,
		    ctx->n_att_failed == 1 ? "" : "s");

		if (n > 0 && (size_t)n < sizeof(ctx->reason))
			snprintf(ctx->reason + n, sizeof(ctx->reason) - (size_t)n,
			    "%.*s", (int)(sizeof(ctx->reason) - (size_t)n - 1),
			    ctx->att_failed);
		return STEP_RETRY;
	}
	list = html_escape(ctx->att_failed);
	msgid = html_escape(ctx->job->message_id != NULL ?
	    ctx->job->message_id : "");
	if (list == NULL || msgid == NULL || asprintf(&html, "<p><b>Attachments"
	    " Halo did not store</b> (mail %s, tried %d times):</p><p>%s</p>",
	    msgid, ctx->job->attempts, list) < 0)
		html = NULL;
	free(list);
	free(msgid);
	if (html == NULL) {
		snprintf(ctx->reason, sizeof(ctx->reason), "out of memory");
		return STEP_RETRY;
	}
	noted = worker_call(ctx, post_note_call, html, &step) >= 0;
	free(html);
	if (!noted && step != STEP_FAIL)
		return step;
	/* the mail is in Halo: a refused note does not fail the job */
	if (!noted)
		log_warnx("%s: Halo refused the note on missing attachments: %s",
		    ctx->who, ctx->reason);
	snprintf(ctx->att_note, sizeof(ctx->att_note), "attachments not stored"
	    " in Halo (%s): %.*s", noted ? "a private note on the ticket says so" :
	    "Halo refused the note saying so", (int)(sizeof(ctx->att_note) - 100),
	    ctx->att_failed);
	ctx->reason[0] = '\0';
	return STEP_OK;
}

/* One upload (a worker_call() function). */
struct post_upload_req {
	const struct halo_attachment *a;
	struct halo_attach_result res;
};

static int
post_upload_call(struct job_ctx *ctx, void *arg)
{
	struct post_upload_req *rq = arg;

	return halo_attachment_upload(&ctx->hc, ctx->token, ctx->posted_ticket,
	    ctx->posted_action, rq->a, &rq->res, &ctx->err);
}

/*
 * Keep in RQ the attachments that fit beside HTML in one request of the
 * tenant's halo_request_max, in order; move the others to the end of
 * RQ->att, their count in *N_LATER (uploaded one request each once the
 * mail is in Halo). Each alone fits a request (post_left_out()).
 */
static void
post_split(const struct job_ctx *ctx, const char *html, struct post_req *rq,
    size_t *n_later)
{
	struct halo_attachment *later;
	uint64_t budget, used = 0, need;
	size_t i, n_in = 0, n_out = 0, n = rq->n_att;

	*n_later = 0;
	budget = ctx->t->halo_request_max;
	need = (uint64_t)strlen(html) * 2 + POST_REQUEST_SLACK;
	budget = budget > need ? budget - need : 0;
	if (n == 0 || (later = calloc(n, sizeof(*later))) == NULL)
		return;         /* no memory: all in one request, as before */
	for (i = 0; i < n; i++) {
		const struct halo_attachment *a = &rq->att[i];

		need = post_att_bytes(a->len, a->filename, a->content_type);
		if (used + need <= budget) {
			used += need;
			rq->att[n_in++] = *a;
		} else
			later[n_out++] = *a;
	}
	memcpy(rq->att + n_in, later, n_out * sizeof(*later));
	free(later);
	rq->n_att = n_in;
	*n_later = n_out;
}

/* The attachments that did not fit the request that logged the mail
 * (RQ->att after its N_ATT), one request each. */
static enum step
post_later(struct job_ctx *ctx, const struct post_req *rq, size_t n_later)
{
	enum step step = STEP_OK;
	size_t i;

	for (i = 0; i < n_later; i++) {
		struct post_upload_req up;

		memset(&up, 0, sizeof(up));
		up.a = &rq->att[rq->n_att + i];
		if (worker_call(ctx, post_upload_call, &up, &step) < 0)
			return step;    /* the retry uploads what Halo lacks */
		if (up.res.failed) {
			log_warnx("%s: Halo did not store attachment %s: %s",
			    ctx->who, up.a->filename, up.res.why);
			post_att_failed(ctx, up.a->filename, up.res.why);
		}
	}
	return STEP_OK;
}

/* Append the mail to the matched ticket, or create one. */
enum step
post_message(struct job_ctx *ctx, const struct mime_message *m)
{
	struct post_req rq;
	enum step step;
	char *html;
	size_t i, n_later = 0;

	if ((html = post_html(ctx, m)) == NULL) {
		snprintf(ctx->reason, sizeof(ctx->reason), "out of memory");
		return STEP_RETRY;
	}
	memset(&rq, 0, sizeof(rq));
	rq.html = html;
	rq.att = post_attachments(ctx, m, &rq.n_att);
	if (rq.n_att > 0 && (rq.res = calloc(rq.n_att, sizeof(*rq.res))) == NULL) {
		free(html);
		free(rq.att);
		snprintf(ctx->reason, sizeof(ctx->reason), "out of memory");
		return STEP_RETRY;
	}
	post_split(ctx, html, &rq, &n_later);
	post_mail_when(ctx->h_date, ctx->job->created, rq.when);
	post_reported_by(ctx->h_from, ctx->job->from_addr, rq.reported_by,
	    sizeof(rq.reported_by));
	if ((step = post_mark(ctx)) == STEP_OK &&
	    worker_call(ctx, ctx->create ? post_create_call : post_append_call,
	    &rq, &step) >= 0) {
		/* in Halo: a retry for attachments must not post it again */
		if (store_job_posted(ctx->w->store, ctx->job->id,
		    ctx->posted_ticket, ctx->posted_action) != STORE_OK)
			log_warnx("%s: cannot record ticket %" PRId64 " on the job",
			    ctx->who, ctx->posted_ticket);
		for (i = 0; i < rq.n_att; i++)
			if (rq.res[i].failed) {
				log_warnx("%s: Halo did not store attachment %zu: %s",
				    ctx->who, i + 1, rq.res[i].why);
				post_att_failed(ctx, rq.att[i].filename, rq.res[i].why);
			}
		if (n_later > 0)
			log_info("%s: %zu attachment%s did not fit the request;"
			    " uploading one at a time", ctx->who, n_later,
			    n_later == 1 ? "" : "s");
		step = post_later(ctx, &rq, n_later);
		if (step == STEP_OK)
			step = post_settle(ctx);
	}
	free(html);
	free(rq.att);
	free(rq.res);
	return step;
}

/* Halo's list of what a ticket holds (a worker_call() function). */
struct post_list_req {
	struct halo_stored *list;
	size_t n;
};

static int
post_list_call(struct job_ctx *ctx, void *arg)
{
	struct post_list_req *rq = arg;

	halo_stored_free(rq->list, rq->n);
	rq->list = NULL;
	rq->n = 0;
	return halo_attachment_list(&ctx->hc, ctx->token, ctx->posted_ticket,
	    ctx->posted_action, &rq->list, &rq->n, &ctx->err);
}

/* A retry of a job already in Halo: upload what Halo does not hold. */
enum step
post_attachments_again(struct job_ctx *ctx, const struct mime_message *m)
{
	struct post_list_req lr = { NULL, 0 };
	struct halo_attachment *att;
	enum step step = STEP_OK;
	bool *taken = NULL;
	size_t n_att = 0, i, j;

	att = post_attachments(ctx, m, &n_att);
	if (n_att == 0 || ctx->posted_ticket <= 0) {
		free(att);
		return STEP_OK;
	}
	if (worker_call(ctx, post_list_call, &lr, &step) < 0) {
		free(att);
		return step;
	}
	if ((taken = calloc(lr.n ? lr.n : 1, sizeof(*taken))) == NULL) {
		snprintf(ctx->reason, sizeof(ctx->reason), "out of memory");
		step = STEP_RETRY;
		goto out;
	}
	for (i = 0; i < n_att; i++) {
		struct post_upload_req up;
		bool held = false;

		/* the same name (and size, when Halo says) is the same file */
		for (j = 0; j < lr.n && !held; j++) {
			if (taken[j] || strcasecmp(lr.list[j].filename,
			    att[i].filename) != 0 || (lr.list[j].size >= 0 &&
			    (size_t)lr.list[j].size != att[i].len))
				continue;
			taken[j] = held = true;
		}
		if (held)
			continue;
		memset(&up, 0, sizeof(up));
		up.a = &att[i];
		if (worker_call(ctx, post_upload_call, &up, &step) < 0)
			goto out;
		if (up.res.failed) {
			log_warnx("%s: Halo did not store attachment %s again: %s",
			    ctx->who, att[i].filename, up.res.why);
			post_att_failed(ctx, att[i].filename, up.res.why);
		} else {
			log_info("%s: attachment %s uploaded to ticket %" PRId64,
			    ctx->who, att[i].filename, ctx->posted_ticket);
		}
	}
	step = post_settle(ctx);
out:
	free(taken);
	halo_stored_free(lr.list, lr.n);
	free(att);
	return step;
}
