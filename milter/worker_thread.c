/*
 * worker_thread.c - thread match (design.md): which ticket a mail belongs
 * to, strongest evidence first: our index of logged Message-IDs, Halo's
 * index (internetmessageid), the conversation key, a subject tag. Each
 * step only proposes a ticket; thread_may_join() decides whether the
 * sender may join it.
 */
#include "worker_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "log.h"

/* A Message-ID lookup for worker_call(). */
struct thread_msgid_req {
	const char *msgid;
	int64_t *ticket, *action;
};

static int
thread_msgid_call(struct job_ctx *ctx, void *arg)
{
	struct thread_msgid_req *rq = arg;

	return halo_find_by_message_id(&ctx->hc, ctx->token, rq->msgid,
	    rq->ticket, rq->action, &ctx->err);
}

/* Ask Halo which ticket carries MSGID; 0 found, 1 not, -1 step set. */
int
thread_halo_lookup(struct job_ctx *ctx, const char *msgid, int64_t *ticket,
    int64_t *action, enum step *step)
{
	struct thread_msgid_req rq = { msgid, ticket, action };

	return worker_call(ctx, thread_msgid_call, &rq, step);
}

/* The ticket number in a subject tag like "[ID:1234]", or 0. */
int64_t
thread_subject_tag(const char *tag, const char *subject)
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

/*
 * Whether the sender of CTX may join TICKET, proposed by BY (a matched_by
 * name); TK is the ticket as Halo gave it, or NULL when it was not asked.
 * Every proposal passes here. Today only a subject tag is checked: the
 * sender must be the ticket's contact or of its client (an agent's own
 * outgoing mail may name any ticket).
 */
bool
thread_may_join(const struct job_ctx *ctx, int64_t ticket,
    const struct halo_ticket *tk, const char *by)
{
	(void)ticket;
	if (strcmp(by, "subject-tag") != 0)
		return true;
	if (tk == NULL)
		return false;
	return ctx->outbound ||
	    (ctx->sender_kind == STORE_SENDER_CONTACT &&
	    tk->user_id == ctx->user_id) ||
	    (ctx->client_id > 0 && tk->client_id == ctx->client_id);
}

/* Take TICKET as the thread when the sender may join it. */
static bool
thread_propose(struct job_ctx *ctx, int64_t ticket,
    const struct halo_ticket *tk, const char *by)
{
	if (!thread_may_join(ctx, ticket, tk, by))
		return false;
	ctx->ticket_id = ticket;
	ctx->matched_by = by;
	return true;
}

/* 1. Our index: In-Reply-To, then References nearest first. */
static bool
thread_by_our_index(struct job_ctx *ctx)
{
	int64_t ticket;
	size_t i;

	for (i = 0; i < ctx->n_irt; i++)
		if (store_ticket_by_msgid(ctx->w->store, ctx->t->name, ctx->irt[i],
		    &ticket) == STORE_OK &&
		    thread_propose(ctx, ticket, NULL, "message-id"))
			return true;
	for (i = ctx->n_refs; i > 0; i--)
		if (store_ticket_by_msgid(ctx->w->store, ctx->t->name,
		    ctx->refs[i - 1], &ticket) == STORE_OK &&
		    thread_propose(ctx, ticket, NULL, "message-id"))
			return true;
	return false;
}

/* Ask Halo about MSGID for thread_by_halo_index(); -1 *STEP set. */
static int
thread_ask_halo(struct job_ctx *ctx, const char *msgid, size_t *asked,
    enum step *step)
{
	int64_t ticket = 0, action = 0;
	int rc;

	(*asked)++;
	rc = thread_halo_lookup(ctx, msgid, &ticket, &action, step);
	if (rc < 0)
		return -1;
	return rc == 0 && thread_propose(ctx, ticket, NULL, "halo-message-id");
}

/* 2. Halo's index (also finds tickets Halo's own mail intake made), for at
 * most WORKER_HALO_LOOKUPS Message-IDs. */
static enum step
thread_by_halo_index(struct job_ctx *ctx)
{
	enum step step = STEP_OK;
	size_t i, asked = 0;
	int rc;

	for (i = 0; i < ctx->n_irt && asked < WORKER_HALO_LOOKUPS; i++)
		if ((rc = thread_ask_halo(ctx, ctx->irt[i], &asked, &step)) != 0)
			return rc < 0 ? step : STEP_OK;
	for (i = ctx->n_refs; i > 0 && asked < WORKER_HALO_LOOKUPS; i--) {
		if (ctx->n_irt > 0 && strcmp(ctx->refs[i - 1], ctx->irt[0]) == 0)
			continue;
		if ((rc = thread_ask_halo(ctx, ctx->refs[i - 1], &asked,
		    &step)) != 0)
			return rc < 0 ? step : STEP_OK;
	}
	return STEP_OK;
}

/* 3. The conversation key (Outlook's Thread-Index survives lost headers). */
static bool
thread_by_conversation(struct job_ctx *ctx)
{
	int64_t ticket;

	return ctx->job->conv_key != NULL && store_ticket_by_conv(ctx->w->store,
	    ctx->t->name, ctx->job->conv_key, &ticket) == STORE_OK &&
	    thread_propose(ctx, ticket, NULL, "conversation");
}

/* 4. A subject tag. Halo is asked for the ticket only when the sender is
 * someone thread_may_join() can compare with it. */
static enum step
thread_by_subject_tag(struct job_ctx *ctx)
{
	int64_t tagged, first_open;
	struct halo_ticket tk;
	enum step step = STEP_OK;
	bool know_closed;
	int rc;

	tagged = thread_subject_tag(ctx->t->subject_tag, ctx->job->subject);
	if (tagged <= 0 || !(ctx->sender_kind == STORE_SENDER_CONTACT ||
	    ctx->sender_kind == STORE_SENDER_CLIENT || ctx->outbound))
		return STEP_OK;
	/* with the status list at hand, this GET also tells whether the
	 * ticket is closed: closed_check() need not ask again */
	know_closed = ctx->t->closed_tickets != CONF_CLOSED_APPEND &&
	    !ctx->outbound;
	if (know_closed && (step = closed_statuses(ctx, &first_open)) !=
	    STEP_OK) {
		if (step != STEP_FAIL)
			return step;
		know_closed = false;    /* closed_check() decides */
		ctx->reason[0] = '\0';
	}
	if ((rc = closed_ticket_get(ctx, tagged, &tk, &step)) != 0)
		return rc < 0 ? step : STEP_OK;
	if (thread_propose(ctx, tk.id, &tk, "subject-tag")) {
		if (know_closed)
			closed_remember(ctx, tk.id, tk.closed);
	} else {
		log_notice("%s: subject tag for ticket %" PRId64 " ignored: sender"
		    " is not that ticket's contact or client", ctx->who, tagged);
	}
	halo_ticket_free(&tk);
	return STEP_OK;
}

/* Thread match, strongest evidence first (design.md). */
enum step
thread_find(struct job_ctx *ctx)
{
	enum step step;

	if (thread_by_our_index(ctx))
		return STEP_OK;
	if ((step = thread_by_halo_index(ctx)) != STEP_OK || ctx->ticket_id > 0)
		return step;
	if (thread_by_conversation(ctx))
		return STEP_OK;
	return thread_by_subject_tag(ctx);
}
