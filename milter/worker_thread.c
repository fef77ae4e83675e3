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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hdr.h"
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

/* The facts about CTX's sender and TICKET known locally (no request). */
static void
thread_join_facts(const struct job_ctx *ctx, int64_t ticket,
    struct join_facts *f)
{
	const struct store_job *job = ctx->job;
	const struct conf_override *ov;
	bool is = false;

	memset(f, 0, sizeof(*f));
	f->agent_outbound = ctx->outbound && job->outbound_auth != NULL &&
	    job->outbound_auth[0] != '\0';
	f->authentic = job->sender_auth != NULL && job->sender_auth[0] != '\0' &&
	    strcmp(job->sender_auth, "none") != 0;
	if (job->from_addr != NULL && store_participant_is(ctx->w->store,
	    ctx->t->name, ticket, job->from_addr, &is) == STORE_OK)
		f->participant = is;
	f->user_id = ctx->sender_kind == STORE_SENDER_CONTACT ? ctx->user_id : 0;
	f->client_id = ctx->client_id;
	ov = conf_override_lookup(ctx->t, job->from_addr);
	if (ov != NULL && ov->pattern[0] != '*') {
		/* the operator's word for this very address */
		f->sender_contact = true;
	} else if (ov != NULL) {
		/* an override of a whole domain is a domain match */
		f->sender_domain = true;
		f->user_id = 0;
	} else if (ctx->sender_kind == STORE_SENDER_CONTACT) {
		f->sender_contact = true;
	} else if (ctx->sender_kind == STORE_SENDER_CLIENT &&
	    !(ctx->client_name == NULL &&
	    ctx->client_id == ctx->t->fallback_client_id)) {
		f->sender_domain = true;    /* never the catch-all */
	}
	f->join_clients = ctx->t->join_clients;
	f->n_join_clients = ctx->t->n_join_clients;
	f->join_domain_members = ctx->t->join_domain_members;
}

/* TICKET's user and client into F: the store's (a ticket we created, or
 * one asked about within sender_cache_ttl), else one GET (with the status
 * list at hand, closed_check() need not ask again). */
static enum step
thread_join_owner(struct job_ctx *ctx, int64_t ticket, struct join_facts *f)
{
	struct halo_ticket tk;
	int64_t first_open = 0;
	enum step step = STEP_OK;
	bool know_closed;
	int rc;

	if (store_ticket_owner_get(ctx->w->store, ctx->t->name, ticket,
	    time(NULL) - (time_t)ctx->t->sender_cache_ttl, &f->ticket_user,
	    &f->ticket_client) == STORE_OK) {
		f->owner_known = true;
		return STEP_OK;
	}
	know_closed = ctx->t->closed_tickets != CONF_CLOSED_APPEND &&
	    !ctx->outbound && closed_statuses(ctx, &first_open) == STEP_OK;
	ctx->reason[0] = '\0';
	rc = closed_ticket_get(ctx, ticket, &tk, &step);
	if (rc < 0 && step != STEP_FAIL)
		return step;
	if (rc != 0) {
		/* gone, or Halo will not show it to this agent: nobody joins */
		ctx->reason[0] = '\0';
		f->owner_known = true;
		return STEP_OK;
	}
	f->owner_known = true;
	f->ticket_user = tk.user_id;
	f->ticket_client = tk.client_id;
	store_ticket_owner_put(ctx->w->store, ctx->t->name, ticket, tk.user_id,
	    tk.client_id, "halo");
	if (know_closed)
		closed_remember(ctx, ticket, tk.closed);
	halo_ticket_clear(&tk);
	return STEP_OK;
}

/*
 * Whether the sender of CTX may join TICKET, proposed by BY (a matched_by
 * name); TK is the ticket as Halo gave it, or NULL when it was not asked.
 * Every proposal passes here (see join_decide()). A participant's
 * reply costs no request; the ticket's owner is asked of Halo only when
 * the store does not know it and it could decide.
 */
enum step
thread_may_join(struct job_ctx *ctx, int64_t ticket,
    const struct halo_ticket *tk, const char *by, bool *may)
{
	struct join_facts f;
	enum join_verdict v;
	enum step step;

	*may = false;
	thread_join_facts(ctx, ticket, &f);
	if (tk != NULL) {
		f.owner_known = true;
		f.ticket_user = tk->user_id;
		f.ticket_client = tk->client_id;
	}
	v = join_decide(&f);
	if (v == JOIN_NEED_OWNER) {
		if ((step = thread_join_owner(ctx, ticket, &f)) != STEP_OK)
			return step;
		v = join_decide(&f);
	}
	*may = join_allows(v);
	if (*may) {
		log_debug("%s: may join ticket %" PRId64 " (%s): %s", ctx->who,
		    ticket, by, join_name(v));
		return STEP_OK;
	}
	log_notice("%s: ticket %" PRId64 " proposed by %s not joined: %s",
	    ctx->who, ticket, by, join_name(v));
	if (ctx->refused_ticket == 0) {
		ctx->refused_ticket = ticket;
		snprintf(ctx->join_note, sizeof(ctx->join_note),
		    "%s: ticket %" PRId64 " (%s); a new conversation",
		    join_name(v), ticket, by);
	}
	return STEP_OK;
}

/* Take TICKET as the thread when the sender may join it; *TAKEN. */
static enum step
thread_propose(struct job_ctx *ctx, int64_t ticket,
    const struct halo_ticket *tk, const char *by, bool *taken)
{
	enum step step;

	*taken = false;
	if (ticket <= 0)
		return STEP_OK;
	if ((step = thread_may_join(ctx, ticket, tk, by, taken)) != STEP_OK ||
	    !*taken)
		return step;
	ctx->ticket_id = ticket;
	ctx->matched_by = by;
	return STEP_OK;
}

/* 1. Our index: In-Reply-To, then References nearest first. A refused
 * proposal lets the next one be tried. */
static enum step
thread_by_our_index(struct job_ctx *ctx)
{
	enum step step = STEP_OK;
	int64_t ticket;
	bool taken = false;
	size_t i, n = ctx->n_irt + ctx->n_refs;
	const char *id;

	for (i = 0; i < n && !taken && step == STEP_OK; i++) {
		id = i < ctx->n_irt ? ctx->irt[i] : ctx->refs[n - 1 - i];
		if (store_ticket_by_msgid(ctx->w->store, ctx->t->name, id,
		    &ticket) == STORE_OK && ticket != ctx->refused_ticket)
			step = thread_propose(ctx, ticket, NULL, "message-id",
			    &taken);
	}
	return step;
}

/* Ask Halo about MSGID for thread_by_halo_index(): 1 taken, 0 not, -1
 * *STEP set. */
static int
thread_ask_halo(struct job_ctx *ctx, const char *msgid, size_t *asked,
    enum step *step)
{
	int64_t ticket = 0, action = 0;
	bool taken = false;
	int rc;

	(*asked)++;
	rc = thread_halo_lookup(ctx, msgid, &ticket, &action, step);
	if (rc < 0)
		return -1;
	if (rc != 0 || ticket == ctx->refused_ticket)
		return 0;
	if ((*step = thread_propose(ctx, ticket, NULL, "halo-message-id",
	    &taken)) != STEP_OK)
		return -1;
	return taken;
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

/* A lookup in one of Halo's custom fields, for worker_call(). */
struct thread_field_req {
	const char *field, *value;
	bool conv;
	int64_t ticket;
};

static int
thread_field_call(struct job_ctx *ctx, void *arg)
{
	struct thread_field_req *rq = arg;

	return halo_ticket_by_field(&ctx->hc, ctx->token, rq->field, rq->value,
	    rq->conv, &rq->ticket, &ctx->err);
}

/* Ask Halo for the ticket whose custom field FIELD holds VALUE (CONV: the
 * conversation in either form); propose it as BY. A refused search is no
 * error (the fields are optional). */
static enum step
thread_by_field(struct job_ctx *ctx, const char *field, const char *value,
    bool conv, const char *by)
{
	struct thread_field_req rq = { field, value, conv, 0 };
	enum step step = STEP_OK;
	bool taken;
	int rc;

	if (field == NULL || field[0] == '\0' || value == NULL)
		return STEP_OK;
	rc = worker_call(ctx, thread_field_call, &rq, &step);
	if (rc < 0) {
		if (step != STEP_FAIL)
			return step;
		log_debug("%s: Halo's %s search failed: %s", ctx->who, field,
		    ctx->reason);
		ctx->reason[0] = '\0';
		return STEP_OK;
	}
	if (rc != 0 || rq.ticket == ctx->refused_ticket)
		return STEP_OK;
	return thread_propose(ctx, rq.ticket, NULL, by, &taken);
}

/*
 * 3. The conversation key (Outlook's Thread-Index survives lost headers):
 * our index, else Halo's custom fields (design.md: an optional fallback)
 * for a reply: the Message-ID it answers in cf_message_id, then the
 * conversation in cf_conversation_id. Both find tickets made elsewhere:
 * the Outlook add-in writes the mail's internetMessageId and its
 * item.conversationId (halo_conv_matches() takes that form and ours).
 */
static enum step
thread_by_conversation(struct job_ctx *ctx)
{
	enum step step;
	int64_t ticket;
	bool taken;

	if (ctx->job->conv_key != NULL && store_ticket_by_conv(ctx->w->store,
	    ctx->t->name, ctx->job->conv_key, &ticket) == STORE_OK) {
		if (ticket == ctx->refused_ticket)
			return STEP_OK;
		return thread_propose(ctx, ticket, NULL, "conversation", &taken);
	}
	/* only a reply can belong to a conversation Halo already has */
	if (ctx->outbound || ctx->job->starts_thread)
		return STEP_OK;
	if (ctx->n_irt > 0 && (step = thread_by_field(ctx,
	    ctx->t->cf_message_id, ctx->irt[0], false, "halo-cf-message-id")) !=
	    STEP_OK)
		return step;
	if (ctx->ticket_id > 0 || ctx->job->conv_key == NULL)
		return STEP_OK;
	return thread_by_field(ctx, ctx->t->cf_conversation_id,
	    ctx->job->conv_key, true, "halo-conversation");
}

/* Whether the sender could join TICKET at all, decided locally (a
 * participant, an agent; or someone the ticket's owner could admit). */
static bool
thread_join_possible(const struct job_ctx *ctx, int64_t ticket)
{
	struct join_facts f;
	enum join_verdict v;

	thread_join_facts(ctx, ticket, &f);
	v = join_decide(&f);
	return v == JOIN_NEED_OWNER || join_allows(v);
}

/* 4. A subject tag. Halo is asked for the ticket only when the sender is
 * someone thread_may_join() could let in. */
static enum step
thread_by_subject_tag(struct job_ctx *ctx)
{
	int64_t tagged, first_open;
	struct halo_ticket tk;
	enum step step = STEP_OK;
	bool know_closed, taken = false;
	int rc;

	tagged = thread_subject_tag(ctx->t->subject_tag, ctx->job->subject);
	if (tagged <= 0 || tagged == ctx->refused_ticket)
		return STEP_OK;
	if (!thread_join_possible(ctx, tagged))
		return thread_may_join(ctx, tagged, NULL, "subject-tag", &taken);
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
	store_ticket_owner_put(ctx->w->store, ctx->t->name, tk.id, tk.user_id,
	    tk.client_id, "halo");
	step = thread_propose(ctx, tk.id, &tk, "subject-tag", &taken);
	if (step == STEP_OK && taken && know_closed)
		closed_remember(ctx, tk.id, tk.closed);
	halo_ticket_clear(&tk);
	return step;
}

/*
 * With no ticket joined after a refusal, the mail is a new conversation:
 * a ticket when policy lets it open one (job_may_create()), else skipped
 * with the refusal as its reason.
 */
static enum step
thread_refused(struct job_ctx *ctx)
{
	const struct store_job *job = ctx->job;

	if (ctx->ticket_id > 0 || ctx->refused_ticket == 0)
		return STEP_OK;
	if (ctx->outbound || job->job_mode != STORE_MODE_INTAKE ||
	    job->no_create || (ctx->sender_kind != STORE_SENDER_CONTACT &&
	    ctx->sender_kind != STORE_SENDER_CLIENT)) {
		snprintf(ctx->reason, sizeof(ctx->reason), "%s",
		    ctx->join_note);
		return STEP_SKIP;
	}
	return STEP_OK;
}

/* Thread match, strongest evidence first (design.md). */
enum step
thread_find(struct job_ctx *ctx)
{
	enum step step;

	if ((step = thread_by_our_index(ctx)) != STEP_OK || ctx->ticket_id > 0)
		return step;
	if ((step = thread_by_halo_index(ctx)) != STEP_OK || ctx->ticket_id > 0)
		return step;
	if ((step = thread_by_conversation(ctx)) != STEP_OK ||
	    ctx->ticket_id > 0)
		return step;
	if ((step = thread_by_subject_tag(ctx)) != STEP_OK)
		return step;
	return thread_refused(ctx);
}

/*
 * After the post (job_done()): the mail's From, To and Cc addresses (at
 * most STORE_PARTICIPANTS_MAX) become participants of the ticket, a ticket
 * we created remembers its user and client, and the join note (a proposal
 * refused) stays on the job for the operator and the pane.
 */
void
thread_done(struct job_ctx *ctx, struct store_result *res)
{
	char (*a)[HDR_ADDR_MAX + 1];
	const char *list[STORE_PARTICIPANTS_MAX];
	size_t n = 0, i;

	if (ctx->join_note[0] != '\0')
		res->reason = ctx->join_note;
	if (ctx->posted_ticket <= 0 || ctx->t == NULL)
		return;
	if (ctx->create)
		store_ticket_owner_put(ctx->w->store, ctx->t->name,
		    ctx->posted_ticket, ctx->sender_kind == STORE_SENDER_CONTACT ?
		    ctx->user_id : 0, ctx->client_id, "created");
	if ((a = calloc(STORE_PARTICIPANTS_MAX, sizeof(*a))) == NULL)
		return;
	if (ctx->job->from_addr != NULL && hdr_addr_spec(ctx->job->from_addr,
	    a[0]))
		n++;
	n += hdr_addr_list(ctx->h_to, a + n, STORE_PARTICIPANTS_MAX - n);
	n += hdr_addr_list(ctx->h_cc, a + n, STORE_PARTICIPANTS_MAX - n);
	for (i = 0; i < n; i++)
		list[i] = a[i];
	store_participants_add(ctx->w->store, ctx->t->name, ctx->posted_ticket,
	    list, n);
	free(a);
}

/* Each tenant's widening of the rule, logged at start-up. */
void
worker_log_join_policy(const struct conf *conf)
{
	char ids[256];
	size_t i, j, len;

	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];

		if (t->n_join_clients > 0) {
			ids[0] = '\0';
			for (j = 0, len = 0; j < t->n_join_clients &&
			    len < sizeof(ids) - 24; j++)
				len += (size_t)snprintf(ids + len, sizeof(ids) - len,
				    "%s%ld", j ? "," : "", t->join_clients[j]);
			log_notice("tenant %s: join_clients widens who may join"
			    " a ticket: contacts of client%s %s may join any"
			    " ticket", t->name, t->n_join_clients == 1 ? "" : "s",
			    ids);
		}
		if (t->join_domain_members)
			log_notice("tenant %s: join_domain_members widens who may"
			    " join a ticket: a sender matched by domain to the"
			    " ticket's client may join it", t->name);
	}
}
