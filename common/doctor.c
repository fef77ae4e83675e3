/*
 * doctor.c - the checks of a gateway's set-up (doctor.h).
 */
#include "doctor.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "halo.h"
#include "http.h"

/* Where the lines of one run go, and what they counted. */
struct doctor_run {
	doctor_line_fn fn;
	void *arg;
	int problems;
	time_t deadline;            /* 0: none */
	bool late;                  /* the deadline passed (said once) */
};

/* A growing list of agent addresses. */
struct doctor_agents {
	char **v;
	size_t n;
};

const char *
doctor_level_name(enum doctor_level level)
{
	switch (level) {
	case DOCTOR_OK: return "ok";
	case DOCTOR_NOTE: return "note";
	case DOCTOR_WARN: return "warn";
	case DOCTOR_FIX: return "fix";
	}
	return "fix";
}

/* One line to the caller; a DOCTOR_FIX line counts a problem. */
static void __attribute__((format(printf, 3, 4)))
doctor_line(struct doctor_run *d, enum doctor_level level, const char *fmt,
    ...)
{
	char text[DOCTOR_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (level == DOCTOR_FIX)
		d->problems++;
	d->fn(level, text, d->arg);
}

/* OK when GOOD, else a problem. */
#define doctor_check(d, good, ...) \
	doctor_line((d), (good) ? DOCTOR_OK : DOCTOR_FIX, __VA_ARGS__)

/* Has the deadline passed? Says so (once) when it has. */
static bool
doctor_late(struct doctor_run *d)
{
	if (d->late)
		return true;
	if (d->deadline == 0 || time(NULL) < d->deadline)
		return false;
	d->late = true;
	doctor_line(d, DOCTOR_FIX, "out of time: the remaining checks were not"
	    " made (run halo-milterctl doctor on the gateway)");
	return true;
}

/* Add AGENT unless present. */
static void
doctor_agents_add(struct doctor_agents *a, const char *agent)
{
	char **grown;
	size_t i;

	if (agent == NULL)
		return;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], agent) == 0)
			return;
	grown = realloc(a->v, (a->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	a->v = grown;
	if ((a->v[a->n] = strdup(agent)) != NULL)
		a->n++;
}

/* store_token_list callback: collect agents with a token row. */
static void
doctor_collect_agent(const struct store_token *t, void *arg)
{
	doctor_agents_add(arg, t->agent);
}

/* Is NAME one of LIST's names (case-insensitive), or with NAME NULL, ID
 * one of its ids? */
static bool
doctor_named_has(const struct halo_named *list, size_t n, const char *name,
    int64_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((name != NULL && list[i].name != NULL &&
		    strcasecmp(list[i].name, name) == 0) ||
		    (name == NULL && list[i].id == id))
			return true;
	return false;
}

int
doctor_store(struct store *st, unsigned job_lease, int post_grace,
    doctor_line_fn fn, void *arg)
{
	struct doctor_run d = { fn, arg, 0, 0, false };

	/* the database: reachable (it is open), its schema this build's */
	doctor_check(&d, store_schema_version(st) == store_schema_latest(),
	    "store: %s, schema version %d (this build: %d)%s", store_backend(st),
	    store_schema_version(st), store_schema_latest(),
	    store_is_shared(st) ? "; shared by every node using it" : "");
	/* a job another node takes over after the lease is rechecked in Halo;
	 * a request of the dead node may still be in flight that long */
	if (store_is_shared(st) && (long)job_lease < (long)post_grace)
		doctor_line(&d, DOCTOR_WARN, "job_lease %u s is shorter than %d s:"
		    " a node could post a job again while the request of the node"
		    " that died is still in flight at Halo", job_lease, post_grace);
	return d.problems;
}

/*
 * Which statuses are closed (the full list against excludeclosed=true:
 * Halo's status schema has no closed flag): listed, and a problem when
 * that cannot tell (then closed tickets are never seen, unless the
 * policy is "append"). With "reopen", the status a reopened ticket gets
 * must exist in Halo and be open.
 */
static void
doctor_statuses(struct doctor_run *d, const struct conf_tenant *t,
    const struct halo_conf *hc, const char *token)
{
	struct halo_named *list = NULL;
	struct halo_err err;
	char names[512];
	int64_t open = 0;
	size_t i, n = 0, len = 0, closed = 0;
	int found = -1;
	bool known = false;

	memset(&err, 0, sizeof(err));
	if (halo_status_states(hc, token, &list, &n, &known, &err) != 0) {
		doctor_line(d, DOCTOR_FIX, "cannot list statuses: %s", err.message);
		return;
	}
	names[0] = '\0';
	for (i = 0; i < n; i++) {
		if (list[i].closed) {
			closed++;
			if (len < sizeof(names) - 1)
				len += (size_t)snprintf(names + len, sizeof(names) - len,
				    "%s%" PRId64 " %s", len ? ", " : "", list[i].id,
				    list[i].name != NULL ? list[i].name : "");
			if (len >= sizeof(names))
				len = sizeof(names) - 1;
		} else if (list[i].id > 0 && (open == 0 || list[i].id < open)) {
			open = list[i].id;
		}
		if (list[i].id == t->reopen_status_id)
			found = (int)i;
	}
	if (known)
		doctor_line(d, DOCTOR_OK, "closed statuses (Status?excludeclosed="
		    "true leaves them out): %s", names);
	else if (t->closed_tickets == CONF_CLOSED_APPEND)
		doctor_line(d, DOCTOR_WARN, "cannot tell which statuses are closed"
		    " (Halo's Status?excludeclosed=true lists %s); closed_tickets ="
		    " append does not need to", closed == n ? "none of them" :
		    "every status");
	else
		doctor_line(d, DOCTOR_FIX, "cannot tell which statuses are closed:"
		    " Status?excludeclosed=true lists %s, so closed tickets are"
		    " not recognised (the worker falls back to status 9 only)",
		    n > 0 && closed == n ? "none of them" : "every status");
	if (t->closed_tickets != CONF_CLOSED_REOPEN) {
		halo_named_free(list, n);
		return;
	}
	if (t->reopen_status_id > 0)
		doctor_check(d, found >= 0 && !list[found].closed,
		    "reopen_status_id %ld %s", t->reopen_status_id, found < 0 ?
		    "does not exist in Halo" : list[found].closed ?
		    "is a closed status in Halo" : "exists and is open");
	else
		doctor_check(d, open > 0 && known, "closed tickets reopen to %s",
		    open > 0 && known ? "Halo's lowest-numbered open status" :
		    "nothing certain: Halo does not tell open from closed (set"
		    " reopen_status_id)");
	halo_named_free(list, n);
}

/* The newest created and the newest failed job of one tenant. */
struct doctor_newest {
	const char *tenant;
	int64_t ticket_id;          /* of the newest "created" job; 0: none */
	char *failed_reason;        /* of the newest failed job; NULL: none */
};

/* store_job_list callback: the newest job that created a ticket. */
static void
doctor_newest_created(const struct store_job *j, void *arg)
{
	struct doctor_newest *n = arg;

	if (n->ticket_id == 0 && strcmp(j->tenant, n->tenant) == 0 &&
	    j->result != NULL && strcmp(j->result, "created") == 0 &&
	    j->ticket_id > 0)
		n->ticket_id = j->ticket_id;
}

/* store_job_list callback: the newest job Halo refused over a field. */
static void
doctor_newest_failed(const struct store_job *j, void *arg)
{
	struct doctor_newest *n = arg;

	if (n->failed_reason == NULL && strcmp(j->tenant, n->tenant) == 0 &&
	    j->reason != NULL && strcasestr(j->reason, "custom field") != NULL)
		n->failed_reason = strdup(j->reason);
}

/*
 * Whether Halo takes the custom fields. halo-api.md names no read API for
 * field definitions, so doctor looks at what happened: the newest failed
 * job that Halo refused over a custom field, and the newest ticket the
 * gateway created, read back to see that each configured field holds a
 * value (Halo may drop a field that is not on the ticket type).
 */
static void
doctor_fields(struct doctor_run *d, struct store *st,
    const struct conf_tenant *t, const struct halo_conf *hc, const char *token)
{
	const char *names[2] = { t->cf_conversation_id, t->cf_message_id };
	struct doctor_newest n = { t->name, 0, NULL };
	struct halo_ticket tk;
	struct halo_err err;
	size_t i;

	if (names[0][0] == '\0' && names[1][0] == '\0')
		return;
	(void)store_job_list(st, STORE_FAILED, 500, doctor_newest_failed, &n);
	if (n.failed_reason != NULL) {
		doctor_line(d, DOCTOR_FIX, "custom fields: Halo refused a ticket: %s"
		    " (create the field in Halo, or set cf_conversation_id /"
		    " cf_message_id = none)", n.failed_reason);
		free(n.failed_reason);
	}
	(void)store_job_list(st, STORE_DONE, 500, doctor_newest_created, &n);
	if (n.ticket_id == 0) {
		doctor_line(d, DOCTOR_NOTE, "custom fields %s%s%s: no ticket"
		    " created through the gateway yet to check them on; run doctor"
		    " again after the first one", names[0], names[0][0] &&
		    names[1][0] ? " and " : "", names[1]);
		return;
	}
	if (doctor_late(d))
		return;
	memset(&err, 0, sizeof(err));
	if (halo_ticket_get(hc, token, n.ticket_id, &tk, &err) != 0) {
		doctor_line(d, DOCTOR_FIX, "custom fields: cannot read ticket %"
		    PRId64 " back: %s", n.ticket_id, err.message);
		return;
	}
	for (i = 0; i < 2; i++) {
		if (names[i][0] == '\0')
			continue;
		if (halo_ticket_has_field(&tk, names[i]))
			doctor_line(d, DOCTOR_OK, "custom field %s holds a value on"
			    " ticket %" PRId64 " (the newest the gateway created)",
			    names[i], n.ticket_id);
		else
			doctor_line(d, DOCTOR_FIX, "custom field %s is empty on ticket"
			    " %" PRId64 ", which the gateway created with it: is the"
			    " field on ticket type %ld?", names[i], n.ticket_id,
			    t->ticket_type_id);
	}
	halo_ticket_clear(&tk);
}

/* Each agent's token refreshed and checked with Agent/me; the first
 * working access token into *WORKING (the caller frees it). */
static void
doctor_agents(struct doctor_run *d, struct store *st, struct oauth *oa,
    const struct conf_tenant *t, const struct halo_conf *hc, char **working)
{
	struct doctor_agents agents = { NULL, 0 };
	struct halo_err err;
	char *token = NULL;
	size_t i;

	doctor_agents_add(&agents, t->default_agent);
	for (i = 0; i < t->n_routes; i++)
		if (t->routes[i]->mode != CONF_MODE_OFF)
			doctor_agents_add(&agents, t->routes[i]->agent);
	store_token_list(st, t->name, doctor_collect_agent, &agents);
	if (agents.n == 0)
		doctor_line(d, DOCTOR_FIX, "no agent: routes name none and no"
		    " token is stored (halo-milterctl token import AGENT %s)", t->name);
	for (i = 0; i < agents.n && !doctor_late(d); i++) {
		struct halo_agent me;
		enum oauth_status os;

		memset(&err, 0, sizeof(err));
		os = oauth_access_token(oa, hc, t->name, agents.v[i], true, &token,
		    &err);
		if (os == OAUTH_NO_TOKEN) {
			doctor_line(d, DOCTOR_FIX, "agent %s: no token; enroll it"
			    " (halo-milterctl token import %s %s)", agents.v[i],
			    agents.v[i], t->name);
			continue;
		}
		if (os == OAUTH_REENROLL) {
			doctor_line(d, DOCTOR_FIX, "agent %s: Halo refused its refresh"
			    " token; it must enroll again", agents.v[i]);
			continue;
		}
		if (os != OAUTH_OK) {
			doctor_line(d, DOCTOR_FIX, "agent %s: cannot reach the auth"
			    " server: %s: %s", agents.v[i],
			    http_result_name(err.kind), err.message);
			continue;
		}
		memset(&me, 0, sizeof(me));
		if (halo_agent_me(hc, token, &me, &err) != 0)
			doctor_line(d, DOCTOR_FIX, "agent %s: token works at the auth"
			    " server but Agent/me failed: %s", agents.v[i], err.message);
		else if (me.email == NULL || strcasecmp(me.email, agents.v[i]) != 0)
			doctor_line(d, DOCTOR_FIX, "agent %s: the token belongs to %s",
			    agents.v[i], me.email ? me.email : "someone else");
		else
			doctor_check(d, !me.disabled, "agent %s: token refreshed,"
			    " signed in as %s%s", agents.v[i], me.name ? me.name :
			    me.email, me.disabled ? " (DISABLED in Halo)" : "");
		halo_agent_clear(&me);
		if (*working == NULL) {
			*working = token;
			token = NULL;
		}
		oauth_token_free(token);
		token = NULL;
	}
	for (i = 0; i < agents.n; i++)
		free(agents.v[i]);
	free(agents.v);
}

int
doctor_tenant(struct store *st, struct oauth *oa, const struct conf_tenant *t,
    time_t deadline, doctor_line_fn fn, void *arg)
{
	struct doctor_run d = { fn, arg, 0, deadline, false };
	struct halo_conf hc;
	struct halo_err err;
	struct halo_named *list = NULL;
	char *working = NULL;
	size_t n = 0;

	halo_conf_tenant(&hc, t);
	memset(&err, 0, sizeof(err));
	doctor_agents(&d, st, oa, t, &hc, &working);
	if (working != NULL && !doctor_late(&d)) {
		if (halo_list_ticket_types(&hc, working, &list, &n, &err) == 0) {
			bool has = doctor_named_has(list, n, NULL, t->ticket_type_id);

			doctor_check(&d, has, "ticket type %ld %s", t->ticket_type_id,
			    has ? "exists" : "does not exist in Halo");
			halo_named_free(list, n);
		} else {
			doctor_line(&d, DOCTOR_FIX, "cannot list ticket types: %s",
			    err.message);
		}
	}
	if (working != NULL && !doctor_late(&d)) {
		if (halo_list_outcomes(&hc, working, &list, &n, &err) == 0) {
			bool a = doctor_named_has(list, n, t->append_outcome, 0);
			bool c = doctor_named_has(list, n, t->create_outcome, 0);

			doctor_check(&d, a, "append outcome '%s' %s", t->append_outcome,
			    a ? "exists" : "is not an outcome in Halo");
			doctor_check(&d, c, "create outcome '%s' %s", t->create_outcome,
			    c ? "exists" : "is not an outcome in Halo");
			halo_named_free(list, n);
		} else {
			doctor_line(&d, DOCTOR_FIX, "cannot list outcomes: %s",
			    err.message);
		}
	}
	if (working != NULL && !doctor_late(&d))
		doctor_statuses(&d, t, &hc, working);
	if (working != NULL && !doctor_late(&d))
		doctor_fields(&d, st, t, &hc, working);
	oauth_token_free(working);
	/* self-hosted Halo may allow more: a warning, not a problem */
	if ((double)t->rate_limit / t->rate_window <= 1.0)
		doctor_line(&d, DOCTOR_OK, "request budget %u per %us (under hosted"
		    " Halo's 300 per 5 minutes)", t->rate_limit, t->rate_window);
	else
		doctor_line(&d, DOCTOR_WARN, "request budget %u per %us: above"
		    " hosted Halo's 300 per 5 minutes; expect 429s there",
		    t->rate_limit, t->rate_window);
	return d.problems;
}
