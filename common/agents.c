/*
 * agents.c - every agent a gateway knows, with its standing (agents.h).
 */
#include "agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The row of TENANT/AGENT, added when new; NULL when full or on failure. */
static struct agent_row *
agent_row(struct agent_rows *rows, const char *tenant, const char *agent)
{
	struct agent_row *grown, *r;
	size_t i;

	if (tenant == NULL || agent == NULL)
		return NULL;
	for (i = 0; i < rows->n; i++)
		if (strcmp(rows->v[i].tenant, tenant) == 0 &&
		    strcmp(rows->v[i].agent, agent) == 0)
			return &rows->v[i];
	if (rows->n >= AGENTS_MAX ||
	    (grown = realloc(rows->v, (rows->n + 1) * sizeof(*grown))) == NULL) {
		rows->truncated = true;
		return NULL;
	}
	rows->v = grown;
	r = &rows->v[rows->n];
	memset(r, 0, sizeof(*r));
	r->tenant = strdup(tenant);
	r->agent = strdup(agent);
	if (r->tenant == NULL || r->agent == NULL) {
		free(r->tenant);
		free(r->agent);
		rows->truncated = true;
		return NULL;
	}
	rows->n++;
	return r;
}

/* store_token_list callback. */
static void
agent_rows_token(const struct store_token *t, void *arg)
{
	struct agent_row *r = agent_row(arg, t->tenant, t->agent);

	if (r == NULL)
		return;
	r->token = t->sealed == NULL ? NULL : strcmp(t->state, "ok") == 0 ?
	    "ok" : "reenroll";
	r->last_refresh = t->last_refresh;
}

/* store_enroll_list callback (newest first). */
static void
agent_rows_enroll(const struct store_enroll *e, void *arg)
{
	struct agent_rows *rows = arg;
	struct agent_row *r = agent_row(rows, e->tenant, e->agent);

	if (r == NULL)
		return;
	if (e->result != NULL) {
		if (r->last[0] == '\0')
			snprintf(r->last, sizeof(r->last), "%s", e->result);
	} else if (!e->used && e->expires > rows->now) {
		r->pending++;
		if (e->expires > r->pending_until)
			r->pending_until = e->expires;
	} else if (e->used && e->verifier_sealed != NULL &&
	    e->state_expires > rows->now) {
		if (e->state_expires > r->signin_until)
			r->signin_until = e->state_expires;
	}
}

/* Order rows by tenant, then agent. */
static int
agent_row_cmp(const void *x, const void *y)
{
	const struct agent_row *a = x, *b = y;
	int c = strcmp(a->tenant, b->tenant);

	return c != 0 ? c : strcmp(a->agent, b->agent);
}

/* Gather every agent with its standing. */
int
agent_rows_collect(struct store *st, const struct conf *conf, time_t now,
    struct agent_rows *rows)
{
	size_t i, j;
	int rc = 0;

	memset(rows, 0, sizeof(*rows));
	rows->now = now;
	for (i = 0; i < conf->n_tenants; i++) {
		const struct conf_tenant *t = conf->tenants[i];

		if (t->default_agent != NULL)
			agent_row(rows, t->name, t->default_agent);
		for (j = 0; j < t->n_routes; j++)
			if (t->routes[j]->mode != CONF_MODE_OFF &&
			    t->routes[j]->agent != NULL)
				agent_row(rows, t->name, t->routes[j]->agent);
	}
	if (store_token_list(st, NULL, agent_rows_token, rows) != STORE_OK ||
	    store_enroll_list(st, NULL, agent_rows_enroll, rows) != STORE_OK)
		rc = -1;
	if (rows->n > 0)
		qsort(rows->v, rows->n, sizeof(rows->v[0]), agent_row_cmp);
	return rc;
}

/* Free the rows. */
void
agent_rows_clear(struct agent_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->n; i++) {
		free(rows->v[i].tenant);
		free(rows->v[i].agent);
	}
	free(rows->v);
	memset(rows, 0, sizeof(*rows));
}
