/*
 * oauth.c - per-agent access tokens with single-flight refresh.
 */
#include "oauth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define OAUTH_EARLY 60          /* refresh this many seconds before expiry */

/* One agent's in-memory state; its lock serialises refreshes. */
struct oauth_agent {
	char *tenant, *agent;
	pthread_mutex_t lock;
	char *access;               /* NULL when none cached */
	time_t expires;
	struct oauth_agent *next;
};

struct oauth {
	struct store *store;
	uint8_t key[CRYPTO_KEY_LEN];
	pthread_mutex_t lock;       /* guards the list and the stats */
	struct oauth_agent *agents;
	struct oauth_stats stats;
};

/* New token manager. */
struct oauth *
oauth_new(struct store *store, const uint8_t key[CRYPTO_KEY_LEN])
{
	struct oauth *oa = calloc(1, sizeof(*oa));

	if (oa == NULL)
		return NULL;
	oa->store = store;
	memcpy(oa->key, key, CRYPTO_KEY_LEN);
	pthread_mutex_init(&oa->lock, NULL);
	return oa;
}

/* Free everything, wiping secrets. */
struct oauth *
oauth_free(struct oauth *oa)
{
	struct oauth_agent *a, *next;

	if (oa == NULL)
		return NULL;
	for (a = oa->agents; a != NULL; a = next) {
		next = a->next;
		oauth_token_free(a->access);
		free(a->tenant);
		free(a->agent);
		pthread_mutex_destroy(&a->lock);
		free(a);
	}
	crypto_wipe(oa->key, sizeof(oa->key));
	pthread_mutex_destroy(&oa->lock);
	free(oa);
	return NULL;
}

/* Wipe and free a token string. */
void
oauth_token_free(char *token)
{
	if (token != NULL)
		crypto_free_secret(token, strlen(token));
}

/* The agent's entry, created on first use. */
static struct oauth_agent *
oauth_agent_get(struct oauth *oa, const char *tenant, const char *agent)
{
	struct oauth_agent *a;

	pthread_mutex_lock(&oa->lock);
	for (a = oa->agents; a != NULL; a = a->next)
		if (strcmp(a->tenant, tenant) == 0 && strcmp(a->agent, agent) == 0)
			break;
	if (a == NULL && (a = calloc(1, sizeof(*a))) != NULL) {
		a->tenant = strdup(tenant);
		a->agent = strdup(agent);
		if (a->tenant == NULL || a->agent == NULL) {
			free(a->tenant);
			free(a->agent);
			free(a);
			a = NULL;
		} else {
			pthread_mutex_init(&a->lock, NULL);
			a->next = oa->agents;
			oa->agents = a;
		}
	}
	pthread_mutex_unlock(&oa->lock);
	return a;
}

/* The AAD binding a sealed token to its tenant and agent. */
size_t
oauth_aad(const char *tenant, const char *agent, char *buf, size_t bufsz)
{
	size_t lt = strlen(tenant), la = strlen(agent);

	if (lt + la + 1 > bufsz)
		return 0;
	memcpy(buf, tenant, lt);
	buf[lt] = '\0';
	memcpy(buf + lt + 1, agent, la);
	return lt + 1 + la;
}

/* The AAD binding a sealed PKCE verifier to its sign-in's state hash. */
size_t
oauth_verifier_aad(const char *state_hash, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "enroll-verifier:%s", state_hash);

	return n < 0 || (size_t)n >= bufsz ? 0 : (size_t)n;
}

/* Seal REFRESH and commit it as the agent's token. */
static int
oauth_persist(struct oauth *oa, const char *tenant, const char *agent,
    const char *refresh)
{
	char aad[1024], *sealed = NULL;
	size_t aad_len = oauth_aad(tenant, agent, aad, sizeof(aad));
	int rc = -1;

	if (aad_len == 0)
		return -1;
	if (crypto_seal(oa->key, aad, aad_len, refresh, strlen(refresh),
	    &sealed) != 0)
		return -1;
	if (store_token_put(oa->store, tenant, agent, sealed, "ok") == STORE_OK)
		rc = 0;
	free(sealed);
	return rc;
}

/* Count an event under the stats lock. */
static void
oauth_count(struct oauth *oa, uint64_t *counter)
{
	pthread_mutex_lock(&oa->lock);
	(*counter)++;
	pthread_mutex_unlock(&oa->lock);
}

/* Seal REFRESH for TENANT/AGENT: malloc'd text, or NULL. */
static char *
oauth_seal(struct oauth *oa, const char *tenant, const char *agent,
    const char *refresh)
{
	char aad[1024], *sealed = NULL;
	size_t aad_len = oauth_aad(tenant, agent, aad, sizeof(aad));

	if (aad_len == 0 || crypto_seal(oa->key, aad, aad_len, refresh,
	    strlen(refresh), &sealed) != 0)
		return NULL;
	return sealed;
}

/*
 * Refresh with the stored token; agent lock held. The token row stays
 * locked in the store from the read to the commit of the rotated token
 * (store_token_lock): another node refreshing the same agent waits, then
 * reads the new token, so one refresh token is never presented twice.
 */
static enum oauth_status
oauth_refresh_locked(struct oauth *oa, struct oauth_agent *a,
    const struct halo_conf *hc, struct halo_err *err)
{
	struct store_token_lock *lock = NULL;
	struct store_token *row = NULL;
	struct halo_tokens tok;
	uint8_t *refresh = NULL;
	size_t refresh_len = 0, aad_len;
	char aad[1024], *sealed = NULL;
	enum oauth_status rc;
	enum store_status ss;

	memset(&tok, 0, sizeof(tok));
	ss = store_token_lock(oa->store, a->tenant, a->agent, &row, &lock);
	if (ss == STORE_NOT_FOUND || (ss == STORE_OK && row->sealed == NULL)) {
		store_token_free(row);
		store_token_unlock(lock, NULL, NULL);
		return OAUTH_NO_TOKEN;
	}
	if (ss != STORE_OK) {
		snprintf(err->message, sizeof(err->message), "store unavailable");
		return OAUTH_RETRY;
	}
	if (strcmp(row->state, "ok") != 0) {
		store_token_free(row);
		store_token_unlock(lock, NULL, NULL);
		return OAUTH_REENROLL;
	}
	aad_len = oauth_aad(a->tenant, a->agent, aad, sizeof(aad));
	if (aad_len == 0 || crypto_open(oa->key, aad, aad_len, row->sealed,
	    &refresh, &refresh_len) != 0) {
		/* a replaced or lost key file, or a damaged row: the token
		 * itself may be fine, and restoring the right key must bring
		 * the agent back, so the agent is never marked re-enroll here
		 * (start-up refuses a key that opens none of the tokens) */
		log_warnx("oauth: %s/%s: the stored token does not open with"
		    " this sealing key (seal.key replaced or the row damaged);"
		    " its jobs wait for the right key", a->tenant, a->agent);
		store_token_free(row);
		store_token_unlock(lock, NULL, NULL);
		oauth_count(oa, &oa->stats.refresh_failures);
		snprintf(err->message, sizeof(err->message), "the stored token"
		    " does not open with this sealing key (seal.key)");
		err->retry_after = 300;
		return OAUTH_RETRY;
	}
	store_token_free(row);
	oauth_count(oa, &oa->stats.refreshes);
	if (halo_token_refresh(hc, (const char *)refresh, &tok, err) != 0) {
		if (halo_err_is_invalid_grant(err)) {
			oauth_count(oa, &oa->stats.invalid_grants);
			log_warnx("oauth: %s/%s: refresh token refused"
			    " (invalid_grant); the agent must re-enroll",
			    a->tenant, a->agent);
			store_token_unlock(lock, NULL, "reenroll");
			rc = OAUTH_REENROLL;
		} else {
			store_token_unlock(lock, NULL, NULL);
			oauth_count(oa, &oa->stats.refresh_failures);
			rc = OAUTH_RETRY;
		}
		lock = NULL;
		goto out;
	}
	/* rotated: persist the new refresh token before using the access token;
	 * reused or omitted: the stored one stays (touch last_refresh) */
	if (tok.refresh_token != NULL &&
	    strcmp(tok.refresh_token, (const char *)refresh) != 0)
		oauth_count(oa, &oa->stats.rotations);
	sealed = oauth_seal(oa, a->tenant, a->agent, tok.refresh_token ?
	    tok.refresh_token : (const char *)refresh);
	ss = store_token_unlock(lock, sealed, "ok");
	lock = NULL;
	if (sealed == NULL || ss != STORE_OK) {
		log_crit("oauth: %s/%s: cannot store the refreshed token",
		    a->tenant, a->agent);
		snprintf(err->message, sizeof(err->message),
		    "cannot store refreshed token");
		rc = OAUTH_RETRY;
		goto out;
	}
	oauth_token_free(a->access);
	a->access = tok.access_token;
	tok.access_token = NULL;
	a->expires = time(NULL) + (tok.expires_in > 0 ? tok.expires_in : 300);
	rc = OAUTH_OK;
out:
	free(sealed);
	crypto_free_secret(refresh, refresh_len);
	halo_tokens_clear(&tok);
	return rc;
}

/* A cached token is only as good as the agent's standing in the store:
 * a revoke or re-enroll mark (from another process) ends it at once. */
static enum oauth_status
oauth_check_standing(struct oauth *oa, struct oauth_agent *a)
{
	struct store_token *row = NULL;
	enum store_status ss;
	enum oauth_status rc = OAUTH_OK;

	ss = store_token_get(oa->store, a->tenant, a->agent, &row);
	if (ss == STORE_NOT_FOUND || (ss == STORE_OK && row->sealed == NULL))
		rc = OAUTH_NO_TOKEN;
	else if (ss == STORE_OK && strcmp(row->state, "ok") != 0)
		rc = OAUTH_REENROLL;
	/* a store hiccup does not invalidate a token Halo still accepts */
	store_token_free(row);
	return rc;
}

/* A valid access token (see oauth.h). */
enum oauth_status
oauth_access_token(struct oauth *oa, const struct halo_conf *hc,
    const char *tenant, const char *agent, bool force, char **token,
    struct halo_err *err)
{
	struct oauth_agent *a;
	enum oauth_status rc = OAUTH_OK;
	time_t now = time(NULL);

	*token = NULL;
	memset(err, 0, sizeof(*err));
	err->retry_after = -1;
	a = oauth_agent_get(oa, tenant, agent);
	if (a == NULL) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return OAUTH_RETRY;
	}
	pthread_mutex_lock(&a->lock);
	if (!force && a->access != NULL && a->expires - OAUTH_EARLY > now)
		rc = oauth_check_standing(oa, a);
	if (rc == OAUTH_OK && (force || a->access == NULL ||
	    a->expires - OAUTH_EARLY <= now))
		rc = oauth_refresh_locked(oa, a, hc, err);
	if (rc == OAUTH_OK && (*token = strdup(a->access)) == NULL)
		rc = OAUTH_RETRY;
	if (rc != OAUTH_OK) {
		oauth_token_free(a->access);
		a->access = NULL;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* Import a refresh token and wake the agent's waiting jobs. */
int
oauth_import(struct oauth *oa, const char *tenant, const char *agent,
    const char *refresh_token)
{
	struct oauth_agent *a = oauth_agent_get(oa, tenant, agent);
	unsigned woken = 0;

	if (a == NULL)
		return -1;
	pthread_mutex_lock(&a->lock);
	oauth_token_free(a->access);
	a->access = NULL;
	if (oauth_persist(oa, tenant, agent, refresh_token) != 0) {
		pthread_mutex_unlock(&a->lock);
		return -1;
	}
	pthread_mutex_unlock(&a->lock);
	if (store_jobs_wake_agent(oa->store, tenant, agent, &woken) == STORE_OK &&
	    woken > 0)
		log_info("oauth: %s/%s: %u waiting job%s queued again", tenant,
		    agent, woken, woken == 1 ? "" : "s");
	return 0;
}

/* Copy the counters. */
void
oauth_stats(struct oauth *oa, struct oauth_stats *out)
{
	pthread_mutex_lock(&oa->lock);
	*out = oa->stats;
	pthread_mutex_unlock(&oa->lock);
}
