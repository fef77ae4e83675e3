/*
 * join.c - who may join a ticket (see join.h).
 */
#include "join.h"

/* The rule (design.md "Thread match"): an authenticated agent may join
 * any ticket; anyone else must be authentic and the ticket's user, a
 * contact of its client or a participant, unless the tenant widens it. */
enum join_verdict
join_decide(const struct join_facts *f)
{
	bool by_owner;
	size_t i;

	if (f->agent_outbound)
		return JOIN_AGENT;
	if (!f->authentic)
		return JOIN_UNAUTHENTICATED;
	if (f->participant)
		return JOIN_PARTICIPANT;
	if (f->sender_contact && f->client_id > 0)
		for (i = 0; i < f->n_join_clients; i++)
			if (f->join_clients[i] == f->client_id)
				return JOIN_WIDE_CLIENT;
	by_owner = (f->sender_contact && (f->user_id > 0 || f->client_id > 0)) ||
	    (f->join_domain_members && f->sender_domain && f->client_id > 0);
	if (!by_owner)
		return JOIN_NOT_PARTICIPANT;
	if (!f->owner_known)
		return JOIN_NEED_OWNER;
	if (f->sender_contact && f->user_id > 0 && f->ticket_user == f->user_id)
		return JOIN_USER;
	if (f->sender_contact && f->client_id > 0 &&
	    f->ticket_client == f->client_id)
		return JOIN_CLIENT_CONTACT;
	if (f->join_domain_members && f->sender_domain && f->client_id > 0 &&
	    f->ticket_client == f->client_id)
		return JOIN_DOMAIN_MEMBER;
	return JOIN_NOT_PARTICIPANT;
}

/* Whether V lets the mail join. */
bool
join_allows(enum join_verdict v)
{
	return v < JOIN_NEED_OWNER;
}

/* V's name for logs and reasons. */
const char *
join_name(enum join_verdict v)
{
	static const char *const names[] = {
		"agent", "participant", "ticket-user", "client-contact",
		"join-clients", "domain-member", "need-owner",
		"unauthenticated-sender", "not-a-participant"
	};

	return (size_t)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}
