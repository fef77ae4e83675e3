/*
 * intake.h - what halo-milter does with one message, without libmilter.
 *
 * The libmilter callbacks (callbacks.c) are thin adapters over this module,
 * so the same code runs under the real MTA, the corpus sweep and the fuzzers.
 * Life of a message: intake_msg_new, envfrom, rcpt..., (stop here when
 * intake_msg_routed() is false: nothing more is done or stored), header...,
 * eoh, body..., eom, then the caller applies intake_msg_edits() in order and
 * frees the message. intake_msg_free() at any point discards unfinished work
 * (an aborted SMTP transaction leaves no job and no file).
 *
 * End of message is local: it reads and writes the store and the spool and
 * nothing else.
 */
#ifndef HALO_INTAKE_H
#define HALO_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "crypto.h"
#include "confgen.h"
#include "store.h"

struct intake;
struct intake_msg;

enum intake_edit_op {
	INTAKE_EDIT_DELETE,    /* delete every occurrence of NAME: COUNT..1 */
	INTAKE_EDIT_ADD        /* append header NAME: VALUE */
};

struct intake_edit {
	enum intake_edit_op op;
	char *name;
	char *value;
	int count;             /* DELETE: how many occurrences NAME has */
};

enum intake_verdict {
	INTAKE_CONTINUE,       /* let the mail go on (with the edits) */
	INTAKE_TEMPFAIL        /* spool failed and on_spool_error = tempfail */
};

/*
 * Shared state: configuration, store, spool directory, the host name
 * used in generated Message-IDs and the key of X-Halo-Token (copied). CONF and STORE stay owned by the caller
 * and must outlive the intake.
 */
struct intake *intake_new(const struct conf *conf, struct store *store,
    const char *spool_dir, const char *hostname,
    const uint8_t status_key[CRYPTO_KEY_LEN]);
struct intake *intake_free(struct intake *in);

/*
 * Live reload: from now on each message takes a reference to GENS's
 * current generation in intake_msg_new() and reads that configuration
 * until intake_msg_free(). Without it every message reads the CONF given
 * to intake_new(). GENS must outlive the intake; set it before messages
 * flow. intake_new()'s CONF is still the one state_dir is read from.
 */
void intake_set_confgen(struct intake *in, struct confgen *gens);

/* A new message. NULL on allocation failure. */
struct intake_msg *intake_msg_new(struct intake *in);
struct intake_msg *intake_msg_free(struct intake_msg *msg);

/* The MTA queue id (for logs and the job); may be called more than once. */
void intake_msg_queue_id(struct intake_msg *msg, const char *queue_id);

/*
 * How the SMTP session was authenticated, before intake_msg_outbound():
 * AUTH_LOGIN is the SMTP AUTH login ({auth_authen}; NULL or "" when the
 * client did not authenticate), CLIENT_ADDR the client's IP address as
 * text (NULL when unknown). Agents' outgoing mail counts only from a
 * session authenticated as that agent (or an agent_login of it), or
 * without SMTP AUTH from submission_networks.
 */
void intake_msg_session(struct intake_msg *msg, const char *auth_login,
    const char *client_addr);

/* Whether the configuration needs the client's address (so the MTA must
 * not skip the connect step). */
bool intake_wants_client_addr(const struct intake *in);

/* Envelope sender (as given by the MTA, "<>" for the null sender). */
void intake_msg_envfrom(struct intake_msg *msg, const char *addr);

/* One envelope recipient; routes it. */
void intake_msg_rcpt(struct intake_msg *msg, const char *addr);

/*
 * For mail with no routed recipient: when its envelope sender is an agent
 * enrolled in a tenant that logs outbound mail and the session may send as
 * that agent (intake_msg_session), make an outbound job there (thread
 * match only, never a new ticket, no X-Halo-* stamps on mail that leaves
 * for customers). One local store read. True when a job was made.
 */
bool intake_msg_outbound(struct intake_msg *msg);

/* True when at least one recipient is routed to a tenant. */
bool intake_msg_routed(const struct intake_msg *msg);

/* One header as the MTA passes it (value without the leading space,
 * continuation lines joined by "\n" or "\r\n"). */
void intake_msg_header(struct intake_msg *msg, const char *name,
    const char *value);

/* End of headers. */
void intake_msg_eoh(struct intake_msg *msg);

/* A chunk of the body, as the MTA passes it (CRLF line ends). */
void intake_msg_body(struct intake_msg *msg, const void *data, size_t len);

/* End of message: classify, dedup, spool, store, prepare edits. */
enum intake_verdict intake_msg_eom(struct intake_msg *msg);

/* The header edits to apply, in order (valid until intake_msg_free). */
size_t intake_msg_edits(const struct intake_msg *msg,
    const struct intake_edit **edits);

/* The MTA queue id, or "NOQUEUE", for logs. */
const char *intake_msg_queue_id_get(const struct intake_msg *msg);

/* The Message-ID used for the message (after eom), for logs. */
const char *intake_msg_id(const struct intake_msg *msg);

#endif
