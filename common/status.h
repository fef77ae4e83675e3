/*
 * status.h - what the Outlook pane may learn about one message: the
 * X-Halo-Token the milter stamps, and the status API's answer.
 *
 * The token is HMAC-SHA256(status key, tenant "\n" Message-ID), base64url
 * without padding (43 characters). The status key is 32 random bytes in
 * state_dir/status.key, made on first start. Whoever holds the delivered
 * message holds its token, and nobody else can ask about it: the status
 * API answers only for a (tenant, Message-ID, token) triple that matches,
 * so Message-IDs cannot be probed.
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

#define STATUS_TOKEN_LEN    43      /* base64url of 32 bytes, no padding */
#define STATUS_TENANT_MAX   64      /* longest tenant name asked about */
#define STATUS_MSGID_MAX    998     /* longest Message-ID (HDR_MSGID_MAX) */

/*
 * The token of (TENANT, MESSAGE_ID) into OUT (43 characters + NUL).
 * -1 when either is empty or too long, or HMAC fails (OUT is then "").
 */
int status_token(const uint8_t key[CRYPTO_KEY_LEN], const char *tenant,
    const char *message_id, char out[STATUS_TOKEN_LEN + 1]);

/*
 * Whether TOKEN is the token of (TENANT, MESSAGE_ID), compared in constant
 * time. The HMAC is computed whatever the inputs look like, so a bad
 * tenant and a bad token take the same time. NULL never matches.
 */
bool status_token_check(const uint8_t key[CRYPTO_KEY_LEN], const char *tenant,
    const char *message_id, const char *token);

/*
 * Whether the status API's parameters are well-formed: TENANT 1..64 bytes
 * of [A-Za-z0-9._-]; MSGID "<...>" of 3..998 printable ASCII bytes without
 * spaces; TOKEN exactly 43 base64url characters. Each is given with its
 * length (LEN), as read from the request, so an embedded NUL is refused.
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
