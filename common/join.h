/*
 * join.h - who may join a ticket (design.md "Thread match", issue 11): one
 * rule, a pure function of what is known about the sender and the ticket,
 * used by the worker for every proposed ticket and by the pane for an
 * agent's append or re-route.
 */
#ifndef HALO_JOIN_H
#define HALO_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The facts join_decide() judges, all known before any Halo request. */
struct join_facts {
	bool agent_outbound;        /* an authenticated agent's outgoing mail */
	bool authentic;             /* From: authenticated (sender_auth) */
	bool participant;           /* From: is on mail logged to the ticket */
	bool sender_contact;        /* a contact resolved by address (or the
	                               operator's override of that address) */
	bool sender_domain;         /* a client matched by domain (never the
	                               catch-all fallback client) */
	int64_t user_id, client_id; /* the sender's contact and client */
	bool owner_known;           /* TICKET_USER / TICKET_CLIENT are set */
	int64_t ticket_user, ticket_client;
	const long *join_clients;   /* the tenant's widening (conf.h) */
	size_t n_join_clients;
	bool join_domain_members;
};

enum join_verdict {
	JOIN_AGENT,                 /* may: an authenticated agent */
	JOIN_PARTICIPANT,           /* may: on earlier mail of the ticket */
	JOIN_USER,                  /* may: the ticket's user */
	JOIN_CLIENT_CONTACT,        /* may: a contact of the ticket's client */
	JOIN_WIDE_CLIENT,           /* may: a contact of a join_clients client */
	JOIN_DOMAIN_MEMBER,         /* may: join_domain_members */
	JOIN_NEED_OWNER,            /* ask again with the ticket's owner */
	JOIN_UNAUTHENTICATED,       /* may not: From: not authenticated */
	JOIN_NOT_PARTICIPANT        /* may not */
};

/* The rule, a pure function of F. */
enum join_verdict join_decide(const struct join_facts *f);
/* Whether V lets the mail join. */
bool join_allows(enum join_verdict v);
/* V's name for logs and reasons ("participant", "not-a-participant"). */
const char *join_name(enum join_verdict v);

#endif
