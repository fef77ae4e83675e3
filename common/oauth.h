/*
 * oauth.h - per-agent Halo access tokens.
 *
 * Each (tenant, agent) has one refresh token, sealed at rest in the store
 * (AES-256-GCM, AAD "tenant\0agent", key file in the state directory).
 * Access tokens live only in memory. A refresh is single-flight per agent:
 * concurrent callers wait for it and share its result. A rotated refresh
 * token is sealed and committed before the new access token is handed out;
 * invalid_grant marks the agent "reenroll" and its jobs wait. A token that
 * does not open with the sealing key is never a reason to re-enroll: the
 * call answers OAUTH_RETRY and the agent's state is left alone, so putting
 * the right key back restores it.
 */
#ifndef HALO_OAUTH_H
#define HALO_OAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "halo.h"
#include "store.h"

struct oauth;

enum oauth_status {
	OAUTH_OK = 0,
	OAUTH_NO_TOKEN,       /* never enrolled, or revoked */
	OAUTH_REENROLL,       /* the refresh token was refused: re-enroll */
	OAUTH_RETRY           /* auth server unreachable or failing: later */
};

/* A token manager over STORE with the sealing KEY (copied). */
struct oauth *oauth_new(struct store *store, const uint8_t key[CRYPTO_KEY_LEN]);

/*
 * The additional data each sealed value is bound to (crypto_seal()), into
 * BUF: a refresh token to "TENANT\0AGENT", a sign-in's PKCE verifier to
 * "enroll-verifier:STATE_HASH". Their length, or 0 when BUFSZ is too small.
 * One definition for the sealers (oauth.c, web.c) and keys rotate.
 */
size_t oauth_aad(const char *tenant, const char *agent, char *buf,
    size_t bufsz);
size_t oauth_verifier_aad(const char *state_hash, char *buf, size_t bufsz);
struct oauth *oauth_free(struct oauth *oa);

/*
 * A valid access token for TENANT/AGENT into *TOKEN (malloc'd; release with
 * oauth_token_free). FORCE refreshes even when a cached token looks valid
 * (after a 401). On OAUTH_RETRY, ERR says why and when (retry_after).
 */
enum oauth_status oauth_access_token(struct oauth *oa, const struct halo_conf *hc,
    const char *tenant, const char *agent, bool force, char **token,
    struct halo_err *err);
void oauth_token_free(char *token);

/* Seal and store a refresh token for TENANT/AGENT (enrollment, "token
 * import"), mark it usable, and put the agent's waiting jobs back. */
int oauth_import(struct oauth *oa, const char *tenant, const char *agent,
    const char *refresh_token);

/* Counters for /metrics and tests. */
struct oauth_stats {
	uint64_t refreshes, refresh_failures, rotations, invalid_grants;
};
void oauth_stats(struct oauth *oa, struct oauth_stats *out);

#endif
