/*
 * intake.c - end-of-message intake: route, spool, classify, dedup, stamp.
 */
#include "intake.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "authres.h"
#include "classify.h"
#include "hdr.h"
#include "log.h"
#include "spool.h"
#include "spooljob.h"
#include "status.h"
#include "thread.h"

#define INTAKE_MAX_OURS       1000   /* distinct X-Halo-* names tracked */
#define INTAKE_MAX_RCPT_TEXT  STATUS_MAILBOXES_MAX  /* routed recipients
                                                       listed per job */
#define INTAKE_MAX_AUTHRES    8      /* Authentication-Results headers read */
#define INTAKE_LOGIN_MAX      320    /* longest SMTP AUTH login kept */
/* one delete per distinct name (stamp names are tracked beyond the cap),
 * plus our own additions (a status and a token per tenant): never full,
 * so our stamps always fit */
#define INTAKE_MAX_EDITS      (INTAKE_MAX_OURS + 4 + 2 * 64)

struct intake {
	const struct conf *conf;    /* without generations: every message's */
	struct confgen *gens;       /* NULL, or the daemon's generations */
	struct store *store;
	char *spool_dir;
	char *hostname;
	uint8_t status_key[CRYPTO_KEY_LEN];     /* X-Halo-Token (status.h) */
};

/* Headers the decisions read: the first occurrence of each is kept. */
enum intake_hdr {
	H_MESSAGE_ID, H_IN_REPLY_TO, H_REFERENCES, H_THREAD_INDEX,
	H_THREAD_TOPIC, H_SUBJECT, H_FROM, H_CONTENT_TYPE, H_AUTO_SUBMITTED,
	H_X_AUTO_RESPONSE_SUPPRESS, H_PRECEDENCE, H_X_AUTOREPLY,
	H_X_AUTORESPOND, H_LIST_ID, H_LIST_UNSUBSCRIBE, H_DATE,
	H_COUNT
};

static const char *const intake_hdr_names[H_COUNT] = {
	"Message-ID", "In-Reply-To", "References", "Thread-Index",
	"Thread-Topic", "Subject", "From", "Content-Type", "Auto-Submitted",
	"X-Auto-Response-Suppress", "Precedence", "X-Autoreply",
	"X-Autorespond", "List-Id", "List-Unsubscribe", "Date"
};

/* One tenant's share of a message: at most one job per tenant. */
struct intake_job {
	const struct conf_tenant *tenant;
	enum conf_mode mode;
	char *agent;                /* agent email of the strongest rule */
	char *recipients;           /* comma-separated routed recipients */
	size_t recipients_len;
	/* filled at end of message */
	enum store_state state;
	const char *reason;
	bool no_create;
	bool duplicate;
	bool outbound;              /* an enrolled agent's outgoing mail */
	const char *outbound_auth;  /* how the session proved it: "sasl",
	                               "network" (store.h) */
	int64_t job_id;
};

/* An inbound X-Halo-* header name and how often it occurred. */
struct intake_ours {
	char *name;
	int count;
};

struct intake_msg {
	const struct conf *conf;    /* this message's configuration ... */
	struct confgen_ref *gen;    /* ... held from start to free (or NULL) */
	struct intake *in;
	char *queue_id;
	char *env_from;
	char *auth_login;           /* {auth_authen}, or NULL: no SMTP AUTH */
	char *client_addr;          /* the SMTP client's address, or NULL */
	struct intake_job *jobs;
	size_t n_jobs;
	char *hdr[H_COUNT];
	struct intake_ours *ours;
	size_t n_ours;
	bool ours_overflow;
	struct spool_file *spool;
	bool spool_failed;          /* a write failed: on_spool_error applies */
	int spool_errno;
	bool too_large;
	uint64_t size;
	EVP_MD_CTX *content;        /* digest for a generated Message-ID */
	bool content_unneeded;      /* the mail has a usable Message-ID */
	EVP_MD_CTX *body;           /* digest of the body, for the dedup key */
	struct authres authres[INTAKE_MAX_AUTHRES];  /* parsed A-R headers */
	size_t n_authres;
	char msgid[HDR_MSGID_MAX + 1];
	struct intake_edit *edits;
	size_t n_edits;
};

/* Set up shared intake state. */
struct intake *
intake_new(const struct conf *conf, struct store *store, const char *spool_dir,
    const char *hostname, const uint8_t status_key[CRYPTO_KEY_LEN])
{
	struct intake *in = calloc(1, sizeof(*in));

	if (in == NULL)
		return NULL;
	in->conf = conf;
	in->store = store;
	in->spool_dir = strdup(spool_dir);
	in->hostname = strdup(hostname ? hostname : "localhost");
	if (in->spool_dir == NULL || in->hostname == NULL)
		return intake_free(in);
	/* the key of X-Halo-Token (statedir.h), loaded once by the caller */
	memcpy(in->status_key, status_key, sizeof(in->status_key));
	hdr_init();
	return in;
}

/* Free shared intake state. */
struct intake *
intake_free(struct intake *in)
{
	if (in == NULL)
		return NULL;
	free(in->spool_dir);
	free(in->hostname);
	crypto_wipe(in->status_key, sizeof(in->status_key));
	free(in);
	return NULL;
}

/* Start a message. */
struct intake_msg *
intake_msg_new(struct intake *in)
{
	struct intake_msg *msg = calloc(1, sizeof(*msg));

	if (msg == NULL)
		return NULL;
	msg->in = in;
	if (in->gens != NULL) {
		msg->gen = confgen_acquire(in->gens);
		msg->conf = confgen_conf(msg->gen);
	} else
		msg->conf = in->conf;
	msg->content = EVP_MD_CTX_new();
	msg->body = EVP_MD_CTX_new();
	if (msg->content == NULL || msg->body == NULL ||
	    EVP_DigestInit_ex(msg->content, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestInit_ex(msg->body, EVP_sha256(), NULL) != 1)
		return intake_msg_free(msg);
	return msg;
}

/* Free a message; an uncommitted spool file is removed. */
struct intake_msg *
intake_msg_free(struct intake_msg *msg)
{
	size_t i;

	if (msg == NULL)
		return NULL;
	msg->spool = spool_close(msg->spool);
	EVP_MD_CTX_free(msg->content);
	EVP_MD_CTX_free(msg->body);
	for (i = 0; i < msg->n_jobs; i++) {
		free(msg->jobs[i].agent);
		free(msg->jobs[i].recipients);
	}
	free(msg->jobs);
	for (i = 0; i < H_COUNT; i++)
		free(msg->hdr[i]);
	for (i = 0; i < msg->n_ours; i++)
		free(msg->ours[i].name);
	free(msg->ours);
	for (i = 0; i < msg->n_edits; i++) {
		free(msg->edits[i].name);
		free(msg->edits[i].value);
	}
	free(msg->edits);
	free(msg->queue_id);
	free(msg->env_from);
	free(msg->auth_login);
	free(msg->client_addr);
	msg->gen = confgen_release(msg->gen);
	free(msg);
	return NULL;
}

/* Replace *DST with a copy of SRC. */
static void
intake_set(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strndup(src, HDR_VALUE_MAX) : NULL;
}

/* Remember the queue id. */
void
intake_msg_queue_id(struct intake_msg *msg, const char *queue_id)
{
	if (queue_id != NULL && *queue_id != '\0')
		intake_set(&msg->queue_id, queue_id);
}

/* Remember the envelope sender. */
void
intake_msg_envfrom(struct intake_msg *msg, const char *addr)
{
	intake_set(&msg->env_from, addr ? addr : "");
}

/* Remember how the SMTP session was authenticated. */
void
intake_msg_session(struct intake_msg *msg, const char *auth_login,
    const char *client_addr)
{
	free(msg->auth_login);
	free(msg->client_addr);
	msg->auth_login = auth_login != NULL && *auth_login != '\0' ?
	    strndup(auth_login, INTAKE_LOGIN_MAX) : NULL;
	msg->client_addr = client_addr != NULL && *client_addr != '\0' ?
	    strndup(client_addr, 64) : NULL;
}

/* Does the intake need the SMTP client's address (submission_networks)? */
bool
intake_wants_client_addr(const struct intake *in)
{
	struct confgen_ref *gen;
	bool wants;

	if (in->gens == NULL)
		return in->conf->n_submission_networks > 0;
	gen = confgen_acquire(in->gens);
	wants = confgen_conf(gen)->n_submission_networks > 0;
	confgen_release(gen);
	return wants;
}

/* Take each message's configuration from GENS from now on. */
void
intake_set_confgen(struct intake *in, struct confgen *gens)
{
	in->gens = gens;
}

/* Append ADDR to a job's recipient list (bounded). */
static void
intake_job_add_rcpt(struct intake_job *job, const char *addr)
{
	size_t len = strlen(addr), need;
	char *p;

	need = job->recipients_len + len + 2;
	if (need > INTAKE_MAX_RCPT_TEXT)
		return;
	p = realloc(job->recipients, need);
	if (p == NULL)
		return;
	job->recipients = p;
	if (job->recipients_len > 0)
		p[job->recipients_len++] = ',';
	memcpy(p + job->recipients_len, addr, len + 1);
	job->recipients_len += len;
}

/* Route one recipient to its tenant's job. */
void
intake_msg_rcpt(struct intake_msg *msg, const char *addr)
{
	const struct conf_route *route;
	struct intake_job *job = NULL, *grown;
	char lower[HDR_ADDR_MAX + 1];
	const char *agent;
	size_t i;

	route = conf_route_lookup(msg->conf, addr);
	if (route == NULL || route->mode == CONF_MODE_OFF)
		return;
	if (!hdr_addr_spec(addr, lower))
		return;
	agent = route->agent ? route->agent : lower;
	for (i = 0; i < msg->n_jobs; i++)
		if (msg->jobs[i].tenant == route->tenant)
			job = &msg->jobs[i];
	if (job == NULL) {
		grown = realloc(msg->jobs, (msg->n_jobs + 1) * sizeof(*grown));
		if (grown == NULL)
			return;
		msg->jobs = grown;
		job = &msg->jobs[msg->n_jobs++];
		memset(job, 0, sizeof(*job));
		job->tenant = route->tenant;
		job->mode = route->mode;
		job->agent = strdup(agent);
	} else if (route->mode > job->mode) {
		/* the strongest mode and its agent win */
		job->mode = route->mode;
		free(job->agent);
		job->agent = strdup(agent);
	}
	intake_job_add_rcpt(job, lower);
}

/*
 * Whether this session may send as agent SENDER of tenant T: it
 * authenticated (SMTP AUTH) as that agent, or, without SMTP AUTH, came from
 * submission_networks. Returns how ("sasl", "network") or NULL. A session
 * authenticated as someone else never counts, wherever it comes from.
 */
static const char *
intake_outbound_auth(const struct intake_msg *msg, const struct conf_tenant *t,
    const char *sender)
{
	const struct conf *conf = msg->conf;

	if (msg->auth_login != NULL)
		return conf_login_may_send_as(t, msg->auth_login, sender) ?
		    "sasl" : NULL;
	if (msg->client_addr != NULL && conf->n_submission_networks > 0 &&
	    conf_net_match(conf->submission_networks,
	    conf->n_submission_networks, msg->client_addr))
		return "network";
	return NULL;
}

/* Outbound mail of an enrolled agent (see intake.h). */
bool
intake_msg_outbound(struct intake_msg *msg)
{
	const struct conf *conf = msg->conf;
	struct intake_job *grown, *job;
	char sender[HDR_ADDR_MAX + 1];
	const char *how;
	bool enrolled;
	size_t i;

	if (msg->n_jobs > 0 || msg->env_from == NULL ||
	    !hdr_addr_spec(msg->env_from, sender))
		return false;
	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];
		if (!t->log_outbound || store_agent_enrolled(msg->in->store,
		    t->name, sender, &enrolled) != STORE_OK || !enrolled)
			continue;
		how = intake_outbound_auth(msg, t, sender);
		if (how == NULL) {
			/* an agent's address on mail the session cannot vouch
			 * for: a stranger's mail, never posted as the agent */
			log_info("%s: tenant=%s envelope sender is an agent, but"
			    " the session %s: not logged as outbound",
			    intake_msg_queue_id_get(msg), t->name,
			    msg->auth_login != NULL ? "authenticated as another"
			    " login" : "did not authenticate and is not from"
			    " submission_networks");
			continue;
		}
		grown = realloc(msg->jobs, (msg->n_jobs + 1) * sizeof(*grown));
		if (grown == NULL)
			break;
		msg->jobs = grown;
		job = &msg->jobs[msg->n_jobs++];
		memset(job, 0, sizeof(*job));
		job->tenant = t;
		job->mode = CONF_MODE_THREAD_ONLY;
		job->outbound = true;
		job->outbound_auth = how;
		job->agent = strdup(sender);
	}
	return msg->n_jobs > 0;
}

/* Any routed recipient? */
bool
intake_msg_routed(const struct intake_msg *msg)
{
	return msg->n_jobs > 0;
}

/* Write to the spool file, enforcing the size cap; errors are remembered. */
static void
intake_spool(struct intake_msg *msg, const void *data, size_t len)
{
	uint64_t max = msg->conf->max_message_size;

	if (msg->spool_failed || msg->too_large)
		return;
	msg->size += len;
	if (max > 0 && msg->size > max) {
		msg->too_large = true;
		msg->spool = spool_close(msg->spool);
		return;
	}
	if (msg->spool == NULL) {
		msg->spool = spool_create(msg->in->spool_dir);
		if (msg->spool == NULL) {
			msg->spool_failed = true;
			msg->spool_errno = errno;
			return;
		}
	}
	if (spool_write(msg->spool, data, len) != 0) {
		msg->spool_failed = true;
		msg->spool_errno = errno;
		msg->spool = spool_close(msg->spool);
	}
}

/* Write VALUE with bare LF line ends turned into CRLF. */
static void
intake_spool_crlf(struct intake_msg *msg, const char *value)
{
	const char *p = value, *nl;

	while ((nl = strchr(p, '\n')) != NULL) {
		size_t n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		intake_spool(msg, p, n);
		intake_spool(msg, "\r\n", 2);
		p = nl + 1;
	}
	intake_spool(msg, p, strlen(p));
}

/* Names we stamp: always tracked, whatever the cap on other names. */
static bool
intake_is_stamp_name(const char *name)
{
	return strcasecmp(name, "X-Halo-Status") == 0 ||
	    strcasecmp(name, "X-Halo-Conversation-Id") == 0 ||
	    strcasecmp(name, "X-Halo-Token") == 0;
}

/* Count an inbound X-Halo-* header so end of message can delete it. */
static void
intake_note_ours(struct intake_msg *msg, const char *name)
{
	struct intake_ours *grown;
	size_t i;

	for (i = 0; i < msg->n_ours; i++) {
		if (strcasecmp(msg->ours[i].name, name) == 0) {
			if (msg->ours[i].count < INT_MAX)
				msg->ours[i].count++;
			return;
		}
	}
	if (msg->n_ours >= INTAKE_MAX_OURS && !intake_is_stamp_name(name)) {
		msg->ours_overflow = true;
		return;
	}
	grown = realloc(msg->ours, (msg->n_ours + 1) * sizeof(*grown));
	if (grown == NULL) {
		msg->ours_overflow = true;
		return;
	}
	msg->ours = grown;
	msg->ours[msg->n_ours].name = strndup(name, 256);
	msg->ours[msg->n_ours].count = 1;
	if (msg->ours[msg->n_ours].name == NULL) {
		msg->ours_overflow = true;
		return;
	}
	msg->n_ours++;
}

/* True for trace headers, which differ between transmissions of one mail. */
static bool
intake_is_trace(const char *name)
{
	return strcasecmp(name, "Received") == 0 ||
	    strcasecmp(name, "Return-Path") == 0 ||
	    strcasecmp(name, "Delivered-To") == 0 ||
	    strcasecmp(name, "X-Original-To") == 0;
}

/* One header: keep what decisions need, spool it unless it is ours. */
void
intake_msg_header(struct intake_msg *msg, const char *name, const char *value)
{
	size_t i;

	if (msg->n_jobs == 0 || name == NULL)
		return;
	if (value == NULL)
		value = "";
	if (hdr_is_ours(name)) {
		/* forged or stale results: deleted at end of message, not spooled */
		intake_note_ours(msg, name);
		return;
	}
	if (strcasecmp(name, "Authentication-Results") == 0 &&
	    msg->n_authres < INTAKE_MAX_AUTHRES &&
	    authres_parse(value, strnlen(value, AUTHRES_INPUT_MAX + 1),
	    &msg->authres[msg->n_authres]) == 0)
		msg->n_authres++;
	for (i = 0; i < H_COUNT; i++) {
		if (msg->hdr[i] == NULL && strcasecmp(name, intake_hdr_names[i]) == 0) {
			msg->hdr[i] = strndup(value, HDR_VALUE_MAX);
			break;
		}
	}
	if (!intake_is_trace(name)) {
		EVP_DigestUpdate(msg->content, name, strlen(name));
		EVP_DigestUpdate(msg->content, ":", 1);
		EVP_DigestUpdate(msg->content, value, strlen(value));
		EVP_DigestUpdate(msg->content, "\n", 1);
	}
	intake_spool(msg, name, strlen(name));
	intake_spool(msg, ": ", 2);
	intake_spool_crlf(msg, value);
	intake_spool(msg, "\r\n", 2);
}

/* End of headers: the blank line. */
void
intake_msg_eoh(struct intake_msg *msg)
{
	if (msg->n_jobs == 0)
		return;
	EVP_DigestUpdate(msg->content, "\n", 1);
	intake_spool(msg, "\r\n", 2);
	/* a usable Message-ID of its own: no ID will be generated, so the body
	 * need not be hashed (most mail; keeps end of message cheap) */
	if (msg->hdr[H_MESSAGE_ID] != NULL) {
		char id[HDR_MSGID_MAX + 1];
		msg->content_unneeded = hdr_msgid_one(msg->hdr[H_MESSAGE_ID], id);
	}
}

/* A body chunk: straight to disk, and into the content digest. */
void
intake_msg_body(struct intake_msg *msg, const void *data, size_t len)
{
	if (msg->n_jobs == 0)
		return;
	if (!msg->content_unneeded)
		EVP_DigestUpdate(msg->content, data, len);
	EVP_DigestUpdate(msg->body, data, len);
	intake_spool(msg, data, len);
}

/* Queue a header edit (values are copied). */
static void
intake_edit(struct intake_msg *msg, enum intake_edit_op op, const char *name,
    int count, const char *value)
{
	struct intake_edit *grown, *e;

	if (msg->n_edits >= INTAKE_MAX_EDITS)
		return;
	grown = realloc(msg->edits, (msg->n_edits + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	msg->edits = grown;
	e = &msg->edits[msg->n_edits];
	e->op = op;
	e->count = count;
	e->name = strdup(name);
	e->value = value ? strdup(value) : NULL;
	if (e->name == NULL || (value != NULL && e->value == NULL)) {
		free(e->name);
		free(e->value);
		return;
	}
	msg->n_edits++;
}

/* Decide the Message-ID: the mail's own, or one made from its content. */
static bool
intake_pick_msgid(struct intake_msg *msg)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (msg->hdr[H_MESSAGE_ID] != NULL &&
	    hdr_msgid_one(msg->hdr[H_MESSAGE_ID], msg->msgid))
		return false;
	if (EVP_DigestFinal_ex(msg->content, digest, &len) != 1 || len < 32)
		memset(digest, 0, sizeof(digest));
	hdr_msgid_generate(digest, msg->in->hostname, msg->msgid);
	return msg->hdr[H_MESSAGE_ID] == NULL;   /* add only when absent */
}

/*
 * The conversation key (design.md): Thread-Index GUID; else the key of a
 * message this one references; else derived from the thread root.
 * Sets *STARTS when the message refers to no earlier one.
 */
static void
intake_conv_key(struct intake_msg *msg, char key[THREAD_KEY_LEN + 1],
    bool *starts)
{
	struct thread_index ti;
	uint8_t guid[THREAD_GUID_LEN];
	char **irt = NULL, **refs = NULL;
	size_t n_irt, n_refs, i;
	const char *root;
	bool have_ti = false;

	if (msg->hdr[H_THREAD_INDEX] != NULL &&
	    thread_index_decode(msg->hdr[H_THREAD_INDEX],
	    strlen(msg->hdr[H_THREAD_INDEX]), &ti) == THREAD_INDEX_OK)
		have_ti = true;
	n_irt = hdr_msgids(msg->hdr[H_IN_REPLY_TO], HDR_IRT_MAX, &irt);
	n_refs = hdr_msgids(msg->hdr[H_REFERENCES], HDR_REFS_MAX, &refs);
	*starts = n_irt == 0 && n_refs == 0 && (!have_ti || ti.n_children == 0);
	if (have_ti) {
		thread_key_hex(ti.guid, key);
		goto out;
	}
	for (i = 0; i < n_irt; i++)
		if (store_conv_get(msg->in->store, irt[i], key) == STORE_OK)
			goto out;
	for (i = n_refs; i > 0; i--)
		if (store_conv_get(msg->in->store, refs[i - 1], key) == STORE_OK)
			goto out;
	root = n_refs > 0 ? refs[0] : n_irt > 0 ? irt[0] : msg->msgid;
	thread_guid_derive(root, guid);
	thread_key_hex(guid, key);
out:
	hdr_msgids_free(irt, n_irt);
	hdr_msgids_free(refs, n_refs);
}

/* Is ADDR one of the tenant's Halo notification senders? */
static bool
intake_from_halo(const struct conf_tenant *t, const char *addr)
{
	size_t i;

	if (addr == NULL)
		return false;
	for (i = 0; i < t->n_halo_senders; i++)
		if (strcasecmp(t->halo_senders[i], addr) == 0)
			return true;
	return false;
}

/* Classify the message for one tenant's job. */
static void
intake_classify_job(struct intake_msg *msg, struct intake_job *job,
    const char *from_addr, const char *env_addr, bool starts)
{
	const struct conf_tenant *t = job->tenant;
	struct classify_input ci;
	struct classify_result cr;
	unsigned recent = 0;

	memset(&ci, 0, sizeof(ci));
	ci.env_from = msg->env_from ? msg->env_from : "";
	ci.content_type = msg->hdr[H_CONTENT_TYPE];
	ci.auto_submitted = msg->hdr[H_AUTO_SUBMITTED];
	ci.x_auto_response_suppress = msg->hdr[H_X_AUTO_RESPONSE_SUPPRESS];
	ci.precedence = msg->hdr[H_PRECEDENCE];
	ci.x_autoreply = msg->hdr[H_X_AUTOREPLY];
	ci.x_autorespond = msg->hdr[H_X_AUTORESPOND];
	ci.list_id = msg->hdr[H_LIST_ID];
	ci.list_unsubscribe = msg->hdr[H_LIST_UNSUBSCRIBE];
	ci.from_halo = intake_from_halo(t, from_addr) ||
	    intake_from_halo(t, env_addr);
	ci.starts_thread = starts;
	ci.may_create = job->mode == CONF_MODE_INTAKE;
	ci.loop_max_creates = t->loop_max_creates;
	if (ci.may_create && starts && from_addr != NULL &&
	    store_sender_creates(msg->in->store, t->name, from_addr,
	    time(NULL) - (time_t)t->loop_window, &recent) != STORE_OK)
		recent = 0;     /* a store hiccup must not block mail */
	ci.recent_creates = recent;
	cr = classify(&ci);
	job->no_create = cr.no_create;
	if (msg->too_large) {
		job->state = STORE_SKIPPED;
		job->reason = "too-large";
	} else if (cr.cls != CLASSIFY_NORMAL) {
		job->state = STORE_SKIPPED;
		job->reason = classify_reason(cr.cls);
	} else {
		job->state = STORE_QUEUED;
		job->reason = NULL;
	}
}

/* Stamp the per-tenant status headers. */
static void
intake_stamp_status(struct intake_msg *msg)
{
	char value[512], token[STATUS_TOKEN_LEN + 1] = "";
	size_t i;

	for (i = 0; i < msg->n_jobs; i++) {
		struct intake_job *job = &msg->jobs[i];
		if (job->outbound)
			continue;       /* this mail leaves for customers */
		if (job->duplicate)
			snprintf(value, sizeof(value),
			    "skipped; reason=duplicate; tenant=%s; job=%lld",
			    job->tenant->name, (long long)job->job_id);
		else if (job->state == STORE_QUEUED)
			snprintf(value, sizeof(value), "queued; tenant=%s; job=%lld",
			    job->tenant->name, (long long)job->job_id);
		else
			snprintf(value, sizeof(value),
			    "skipped; reason=%s; tenant=%s; job=%lld", job->reason,
			    job->tenant->name, (long long)job->job_id);
		intake_edit(msg, INTAKE_EDIT_ADD, "X-Halo-Status", 0, value);
		/* the pane's key to the status API for this tenant's job, bound
		 * to the job and its mailboxes; a duplicate's job is another
		 * delivery's, so it gets none */
		if (!job->duplicate && status_token(msg->in->status_key,
		    job->tenant->name, job->job_id, msg->msgid, job->recipients,
		    token) == 0) {
			snprintf(value, sizeof(value), "%s; tenant=%s", token,
			    job->tenant->name);
			intake_edit(msg, INTAKE_EDIT_ADD, "X-Halo-Token", 0, value);
		}
	}
	crypto_wipe(token, sizeof(token));
}

/* Delete every inbound X-Halo-* header (one edit per distinct name). */
static void
intake_strip_ours(struct intake_msg *msg)
{
	size_t i;

	for (i = 0; i < msg->n_ours; i++)
		intake_edit(msg, INTAKE_EDIT_DELETE, msg->ours[i].name,
		    msg->ours[i].count, NULL);
}

/* Add Thread-Index / Thread-Topic where absent (add_thread_index). */
static void
intake_add_thread_index(struct intake_msg *msg, const char *key_hex,
    const char *subject)
{
	uint8_t guid[THREAD_GUID_LEN];
	char b64[THREAD_INDEX_B64_LEN], topic[512];
	char *encoded;
	int i;

	if (msg->hdr[H_THREAD_INDEX] != NULL)
		return;
	for (i = 0; i < THREAD_GUID_LEN; i++) {
		unsigned hi, lo;
		hi = (unsigned)(key_hex[2 * i] <= '9' ? key_hex[2 * i] - '0' :
		    key_hex[2 * i] - 'a' + 10);
		lo = (unsigned)(key_hex[2 * i + 1] <= '9' ? key_hex[2 * i + 1] - '0' :
		    key_hex[2 * i + 1] - 'a' + 10);
		guid[i] = (uint8_t)(hi << 4 | lo);
	}
	thread_index_encode(thread_filetime_from_unix(time(NULL)), guid, b64);
	intake_edit(msg, INTAKE_EDIT_ADD, "Thread-Index", 0, b64);
	if (msg->hdr[H_THREAD_TOPIC] == NULL) {
		thread_topic(subject, topic, sizeof(topic));
		encoded = hdr_encode_text(topic);
		if (encoded != NULL && *encoded != '\0')
			intake_edit(msg, INTAKE_EDIT_ADD, "Thread-Topic", 0, encoded);
		free(encoded);
	}
}

/*
 * The dedup key (store.h): SHA-256, in hex, over the envelope sender, the
 * From: address, the author's headers (From, Subject, Date) and the body.
 * A resend of the same mail by the same sender has the same key; a mail
 * that only re-uses the Message-ID has another, so it cannot take the
 * genuine one's place. Trace and filter headers are left out: they differ
 * between two deliveries of one mail.
 */
static void
intake_dedup_key(struct intake_msg *msg, const char *env_addr,
    const char *from_addr, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	const char *parts[5];
	unsigned char body[EVP_MAX_MD_SIZE], key[EVP_MAX_MD_SIZE];
	unsigned int body_len = 0, key_len = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	parts[0] = env_addr ? env_addr : "";
	parts[1] = from_addr ? from_addr : "";
	parts[2] = msg->hdr[H_FROM] ? msg->hdr[H_FROM] : "";
	parts[3] = msg->hdr[H_SUBJECT] ? msg->hdr[H_SUBJECT] : "";
	parts[4] = msg->hdr[H_DATE] ? msg->hdr[H_DATE] : "";
	ok = ctx != NULL && EVP_DigestFinal_ex(msg->body, body, &body_len) == 1 &&
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, "dedup-v1", 9) == 1;
	for (i = 0; ok && i < 5; i++)       /* each with its NUL: unambiguous */
		ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1) == 1;
	ok = ok && EVP_DigestUpdate(ctx, body, body_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, key, &key_len) == 1 && key_len == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		/* no digest: the sender alone still keeps apart what matters */
		memset(key, 0, sizeof(key));
		for (i = 0; parts[0][i] != '\0' && i < 16; i++)
			key[i] = (unsigned char)parts[0][i];
	}
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[key[i] >> 4];
		out[2 * i + 1] = hex[key[i] & 15];
	}
	out[64] = '\0';
}

/* How the From: address is authenticated (authres.h). */
static enum authres_sender
intake_sender_auth(const struct intake_msg *msg, const char *from_addr,
    const char *env_addr)
{
	const struct conf *conf = msg->conf;
	const char *from_dom = from_addr ? strrchr(from_addr, '@') : NULL;
	const char *env_dom = env_addr ? strrchr(env_addr, '@') : NULL;

	if (from_dom == NULL)
		return AUTHRES_SENDER_NONE;
	return authres_sender(from_dom + 1, env_dom ? env_dom + 1 : NULL,
	    msg->authres, msg->n_authres, conf->authserv_ids,
	    conf->n_authserv_ids);
}

/* Write ROWS into the spool file's trailer; false when they could not
 * be (too large, out of memory: the commit is then synced instead). The
 * file always ends in a trailer of ours, an empty one then, so bytes of
 * the message that look like one are never read as rows. */
static bool
intake_spool_rows(struct intake_msg *msg, const struct store_job_new *rows,
    size_t n, const char *key)
{
	static const char none[] = "{\"v\":1,\"rows\":null}";
	char *json = spooljob_encode(rows, n, msg->msgid, key);
	bool ok;

	if (json == NULL) {
		spool_write_trailer(msg->spool, none, sizeof(none) - 1);
		return false;
	}
	ok = spool_write_trailer(msg->spool, json, strlen(json)) == 0;
	free(json);
	return ok;
}

/* End of message (see intake.h). */
enum intake_verdict
intake_msg_eom(struct intake_msg *msg)
{
	const struct conf *conf = msg->conf;
	struct store_job_new *rows = NULL;
	enum store_status *results = NULL;
	int64_t *ids = NULL;
	size_t *row_job = NULL, n_rows = 0, i;
	char key[THREAD_KEY_LEN + 1], from_addr[HDR_ADDR_MAX + 1];
	char env_addr[HDR_ADDR_MAX + 1], safe_id[128], dedup[65];
	enum authres_sender sender_auth;
	const char *qid = msg->queue_id ? msg->queue_id : "NOQUEUE";
	bool add_msgid, starts = false, have_from, have_env, any_new = false;
	bool need_spool = false, spooled = false, store_failed = false;
	char spool_file[PATH_MAX];
	char *subject = NULL;
	enum intake_verdict verdict = INTAKE_CONTINUE;

	if (msg->n_jobs == 0)
		return INTAKE_CONTINUE;
	add_msgid = intake_pick_msgid(msg);
	log_safe(msg->msgid, safe_id, sizeof(safe_id));
	intake_conv_key(msg, key, &starts);
	have_from = hdr_addr_spec(msg->hdr[H_FROM], from_addr);
	have_env = msg->env_from != NULL && hdr_addr_spec(msg->env_from, env_addr);
	subject = hdr_decode_text(msg->hdr[H_SUBJECT]);
	intake_dedup_key(msg, have_env ? env_addr : NULL,
	    have_from ? from_addr : NULL, dedup);
	sender_auth = intake_sender_auth(msg, have_from ? from_addr : NULL,
	    have_env ? env_addr : NULL);

	/* decide each tenant's job: a duplicate is the same Message-ID from
	 * the same sender with the same content */
	for (i = 0; i < msg->n_jobs; i++) {
		struct intake_job *job = &msg->jobs[i];
		if (store_job_find_key(msg->in->store, job->tenant->name,
		    msg->msgid, dedup, &job->job_id) == STORE_OK) {
			job->duplicate = true;
			continue;
		}
		intake_classify_job(msg, job, have_from ? from_addr :
		    have_env ? env_addr : NULL, have_env ? env_addr : NULL, starts);
		if (!msg->too_large)
			need_spool = true;
	}
	if (msg->ours_overflow)
		log_warnx("%s: msgid=%s too many distinct X-Halo-* headers; some"
		    " were not removed", qid, safe_id);

	if (need_spool && (msg->spool_failed || msg->spool == NULL))
		goto spool_error;
	/* a shared store keeps the bytes too (store_jobs_add) */
	if (need_spool && spool_path(msg->in->spool_dir,
	    spool_name(msg->spool), spool_file, sizeof(spool_file)) != 0) {
		msg->spool_errno = ENAMETOOLONG;
		goto spool_error;
	}

	/* one transaction for every tenant's row and the conversation key */
	rows = calloc(msg->n_jobs, sizeof(*rows));
	results = calloc(msg->n_jobs, sizeof(*results));
	ids = calloc(msg->n_jobs, sizeof(*ids));
	row_job = calloc(msg->n_jobs, sizeof(*row_job));
	if (rows == NULL || results == NULL || ids == NULL || row_job == NULL) {
		msg->spool_errno = ENOMEM;
		goto spool_error;
	}
	for (i = 0; i < msg->n_jobs; i++) {
		struct intake_job *job = &msg->jobs[i];
		struct store_job_new *r = &rows[n_rows];
		if (job->duplicate)
			continue;
		r->tenant = job->tenant->name;
		r->message_id = msg->msgid;
		r->state = job->state;
		r->reason = job->reason;
		r->queue_id = msg->queue_id;
		r->env_from = msg->env_from;
		r->from_addr = have_from ? from_addr : have_env ? env_addr : NULL;
		r->subject = subject;
		r->recipients = job->recipients;
		r->agent = job->agent;
		r->mode = job->outbound ? "outbound" : job->mode == CONF_MODE_INTAKE ?
		    "intake" : "thread-only";
		r->conv_key = key;
		r->spool = need_spool ? spool_name(msg->spool) : NULL;
		r->size = need_spool ? spool_size(msg->spool) : 0;
		r->spool_file = need_spool ? spool_file : NULL;
		r->no_create = job->no_create;
		r->starts_thread = starts;
		r->dedup_key = dedup;
		r->sender_auth = authres_sender_name(sender_auth);
		r->outbound_auth = job->outbound ? job->outbound_auth : NULL;
		row_job[n_rows++] = i;
	}
	if (need_spool) {
		/* the rows ride in the file, which is synced anyway: their
		 * commit need not be (spooljob.h) */
		bool holds = intake_spool_rows(msg, rows, n_rows, key);

		if (spool_commit(msg->spool) != 0) {
			msg->spool_errno = errno;
			goto spool_error;
		}
		spooled = true;
		for (i = 0; i < n_rows; i++)
			rows[i].spool_holds_row = holds;
	}
	if (store_jobs_add(msg->in->store, rows, n_rows, results, ids,
	    msg->msgid, key) != STORE_OK) {
		msg->spool_errno = EIO;
		store_failed = true;
		goto store_error;
	}
	for (i = 0; i < n_rows; i++) {
		struct intake_job *job = &msg->jobs[row_job[i]];
		job->job_id = ids[i];
		job->duplicate = results[i] == STORE_DUPLICATE;
		any_new = any_new || !job->duplicate;
	}
	if (spooled && !any_new)      /* lost a race with another copy */
		spool_remove(msg->in->spool_dir, spool_name(msg->spool));

	/* header edits: strip forgeries, then stamp */
	intake_strip_ours(msg);
	if (add_msgid)
		intake_edit(msg, INTAKE_EDIT_ADD, "Message-ID", 0, msg->msgid);
	if (!msg->jobs[0].outbound) {
		/* routed mail only: outbound jobs never mix with routed ones */
		intake_edit(msg, INTAKE_EDIT_ADD, "X-Halo-Conversation-Id", 0, key);
		if (conf->add_thread_index)
			intake_add_thread_index(msg, key, subject);
	}
	intake_stamp_status(msg);
	for (i = 0; i < msg->n_jobs; i++) {
		struct intake_job *job = &msg->jobs[i];
		log_info("%s: msgid=%s tenant=%s job=%lld status=%s%s%s conv=%s%s",
		    qid, safe_id, job->tenant->name, (long long)job->job_id,
		    job->duplicate ? "duplicate" : store_state_name(job->state),
		    job->reason && !job->duplicate ? " reason=" : "",
		    job->reason && !job->duplicate ? job->reason : "", key,
		    add_msgid ? " msgid-added" : "");
	}
	goto out;

store_error:
	if (spooled)
		spool_remove(msg->in->spool_dir, spool_name(msg->spool));
spool_error:
	log_warnx("%s: msgid=%s cannot spool: %s; %s", qid, safe_id,
	    strerror(msg->spool_errno ? msg->spool_errno : EIO),
	    conf->on_spool_error == CONF_SPOOL_ACCEPT && !(store_failed &&
	    store_is_shared(msg->in->store)) ? "accepting unlogged" :
	    "temporary failure");
	/* a shared store that is down (PostgreSQL) always tempfails: the
	 * sender's MTA retries, and any node may take the mail then */
	if (conf->on_spool_error == CONF_SPOOL_ACCEPT &&
	    !(store_failed && store_is_shared(msg->in->store))) {
		intake_strip_ours(msg);
		intake_edit(msg, INTAKE_EDIT_ADD, "X-Halo-Status", 0,
		    "error; reason=spool");
	} else {
		verdict = INTAKE_TEMPFAIL;
	}
out:
	free(rows);
	free(results);
	free(ids);
	free(row_job);
	free(subject);
	return verdict;
}

/* Edits to apply. */
size_t
intake_msg_edits(const struct intake_msg *msg, const struct intake_edit **edits)
{
	*edits = msg->edits;
	return msg->n_edits;
}

/* The Message-ID in use. */
const char *
intake_msg_id(const struct intake_msg *msg)
{
	return msg->msgid[0] ? msg->msgid : NULL;
}

/* The queue id for logs. */
const char *
intake_msg_queue_id_get(const struct intake_msg *msg)
{
	return msg->queue_id ? msg->queue_id : "NOQUEUE";
}
