/*
 * status.h - what the Outlook pane may learn about one message: the
 * X-Halo-Token the milter stamps, and the status API's answer.
 *
 * The token names one job and is bound to it: "JOB.MAC", where JOB is the
 * job id in decimal and MAC is HMAC-SHA256(status key, "job\n" tenant "\n"
 * JOB "\n" Message-ID "\n" mailboxes), base64url without padding (43
 * characters); the mailboxes are the job's routed recipients as stored
 * (comma-separated). The status key is 32 random bytes in
 * state_dir/status.key, made on first start. Whoever holds the delivered
 * message holds its token, and nobody else can ask about it: the status
 * API answers only for a token that matches the job it names, its tenant
 * and the Message-ID asked about. A mail that re-uses another message's
 * Message-ID is its own job with its own token (and a duplicate is stamped
 * with none), so no token ever opens another job.
 *
 * Everything here is pure (no I/O): the daemon, the CLI, the unit tests and
 * the fuzzers share it.
 */
#ifndef HALO_STATUS_H
#define HALO_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "store.h"

#define STATUS_MAC_LEN      43      /* base64url of 32 bytes, no padding */
#define STATUS_JOB_DIGITS   19      /* longest job id written */
/* the longest token: "JOB.MAC" */
#define STATUS_TOKEN_LEN    (STATUS_JOB_DIGITS + 1 + STATUS_MAC_LEN)
#define STATUS_TENANT_MAX   64      /* longest tenant name asked about */
#define STATUS_MSGID_MAX    998     /* longest Message-ID (HDR_MSGID_MAX) */
#define STATUS_MAILBOXES_MAX 8192   /* longest mailbox list bound */

/*
 * The token of job JOB_ID of TENANT, for MESSAGE_ID delivered to MAILBOXES
 * (the job's recipients; NULL counts as ""), into OUT. -1 when the tenant
 * or Message-ID is empty or too long, JOB_ID is not positive, or HMAC
 * fails (OUT is then "").
 */
int status_token(const uint8_t key[CRYPTO_KEY_LEN], const char *tenant,
    int64_t job_id, const char *message_id, const char *mailboxes,
    char out[STATUS_TOKEN_LEN + 1]);

/* The job id TOKEN names, or 0 when TOKEN is not "JOB.MAC". */
int64_t status_token_job(const char *token);

/*
 * Whether TOKEN is the token of JOB (its id, tenant, Message-ID and
 * recipients), JOB belongs to TENANT and MESSAGE_ID is its Message-ID;
 * the MAC is compared in constant time. NULL never matches.
 */
bool status_token_check(const uint8_t key[CRYPTO_KEY_LEN],
    const struct store_job *job, const char *tenant, const char *message_id,
    const char *token);

/*
 * Whether the status API's parameters are well-formed: TENANT 1..64 bytes
 * of [A-Za-z0-9._-]; MSGID "<...>" of 3..998 printable ASCII bytes without
 * spaces; TOKEN "JOB.MAC": 1..19 digits (no leading zero), '.', then 43
 * base64url characters. Each is given with its length (LEN), as read from
 * the request, so an embedded NUL is refused.
 */
bool status_params_ok(const char *tenant, size_t tenant_len,
    const char *msgid, size_t msgid_len, const char *token, size_t token_len);

/*
 * The status API's answer for JOB (malloc'd JSON text; NULL when out of
 * memory). HALO_URL is the tenant's Halo site, for the ticket's link (NULL:
 * no link). Fields: state, settled, reason, tenant, job, subject, sender
 * {match, email, contact {id, name}, client {id, name}, why}, ticket {id,
 * summary, url}, received, updated, next_attempt (ISO 8601 UTC).
 */
char *status_json(const struct store_job *job, const char *halo_url);

/* The pane-facing state of JOB: "created", "appended", "queued" (also
 * while running), "skipped", "failed", "waiting". */
const char *status_state(const struct store_job *job);

/* The agent-UI address of ticket ID on HALO_URL (malloc'd), or NULL. */
char *status_ticket_url(const char *halo_url, int64_t id);

#endif
