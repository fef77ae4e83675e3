/*
 * classify.h - decide whether a routed message is logged, and why not.
 *
 * A pure function of the message's envelope and headers plus the tenant's
 * view (Halo's notification senders, the sender's recent creations), so the
 * whole decision is one table in the tests (design.md "What is not logged").
 */
#ifndef HALO_CLASSIFY_H
#define HALO_CLASSIFY_H

#include <stdbool.h>

enum classify_class {
	CLASSIFY_NORMAL = 0,
	CLASSIFY_BOUNCE,          /* null sender or delivery-status report */
	CLASSIFY_AUTO_REPLY,      /* Auto-Submitted, X-Autoreply, ... */
	CLASSIFY_BULK,            /* Precedence: bulk / junk */
	CLASSIFY_LIST,            /* Precedence: list */
	CLASSIFY_HALO,            /* Halo's own outgoing notification */
	CLASSIFY_LOOP,            /* sender over its ticket-creation cap */
	CLASSIFY_RECEIPT,         /* read receipt: multipart/report;
	                           * report-type=disposition-notification */
	CLASSIFY_FEEDBACK         /* abuse/feedback report (ARF, RFC 5965):
	                           * report-type=feedback-report */
};

struct classify_input {
	const char *env_from;             /* envelope sender; "" = null sender */
	const char *content_type;         /* header values, NULL when absent */
	const char *auto_submitted;
	const char *x_auto_response_suppress;  /* read, but never decisive:
	                                        * Outlook sets it on ordinary
	                                        * mail (meeting responses) */
	const char *precedence;
	const char *x_autoreply;
	const char *x_autorespond;
	const char *list_id;
	const char *list_unsubscribe;
	bool from_halo;                   /* sender is one of halo_senders */
	bool starts_thread;               /* no reference to an earlier mail */
	bool may_create;                  /* the route's mode is intake */
	unsigned recent_creates;          /* sender's creations in the window */
	unsigned loop_max_creates;        /* the tenant's cap */
};

struct classify_result {
	enum classify_class cls;
	bool no_create;                   /* logged, but only onto a thread */
};

/* Classify one message for one tenant. */
struct classify_result classify(const struct classify_input *in);

/* The reason word stamped and stored for a class ("auto-reply", ...). */
const char *classify_reason(enum classify_class cls);

#endif
