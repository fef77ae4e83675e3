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

#include "html.h"

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

/* BODY followed by the list of attachments not uploaded; frees BODY. */
static char *
post_not_uploaded(struct job_ctx *ctx, const struct mime_message *m,
    char *body)
{
	char *out = NULL, *name;
	size_t len, i;
	FILE *fp;

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

/* The note/details HTML: sanitised body plus what was not uploaded. */
static char *
post_body_html(struct job_ctx *ctx, const struct mime_message *m, bool trim)
{
	struct html_options opt;
	char *body;
	size_t i, extra = 0;

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
		if (m->attachments[i].over_cap || !ctx->t->attachments)
			extra++;
	return extra == 0 ? body : post_not_uploaded(ctx, m, body);
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

/* What one create/append request carries. */
struct post_req {
	const char *html;
	struct halo_attachment *att;
	size_t n_att;
};

/* Create the ticket (a worker_call() function). */
static int
post_create_call(struct job_ctx *ctx, void *arg)
{
	struct post_req *rq = arg;
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
	tn.tickettype_id = ctx->t->ticket_type_id;
	tn.client_id = ctx->client_id;
	tn.site_id = ctx->site_id;
	tn.user_id = ctx->sender_kind == STORE_SENDER_CONTACT ? ctx->user_id : 0;
	tn.internet_message_id = ctx->job->message_id;
	tn.customfields = cf;
	tn.n_customfields = n_cf;
	tn.attachments = rq->att;
	tn.n_attachments = rq->n_att;
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
	act.internet_message_id = ctx->job->message_id;
	act.new_status = ctx->new_status;
	act.attachments = rq->att;
	act.n_attachments = rq->n_att;
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

/* Append the mail to the matched ticket, or create one. */
enum step
post_message(struct job_ctx *ctx, const struct mime_message *m)
{
	struct post_req rq;
	enum step step;
	char *html;

	if ((html = post_html(ctx, m)) == NULL) {
		snprintf(ctx->reason, sizeof(ctx->reason), "out of memory");
		return STEP_RETRY;
	}
	memset(&rq, 0, sizeof(rq));
	rq.html = html;
	rq.att = post_attachments(ctx, m, &rq.n_att);
	if ((step = post_mark(ctx)) == STEP_OK &&
	    worker_call(ctx, ctx->create ? post_create_call : post_append_call,
	    &rq, &step) >= 0)
		step = STEP_OK;
	free(html);
	free(rq.att);
	return step;
}
