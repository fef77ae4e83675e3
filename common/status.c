/*
 * status.c - X-Halo-Token and the status API's answer (see status.h).
 */
#include "status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

/* The HMAC input (status.h) in a malloc'd buffer, its length in *LEN;
 * NULL when a part is missing, too long or holds a newline. */
static char *
status_input(const char *tenant, int64_t job_id, const char *message_id,
    const char *mailboxes, size_t *len)
{
	size_t tl, ml, bl, cap;
	char *buf;
	int n;

	if (tenant == NULL || message_id == NULL || job_id <= 0)
		return NULL;
	if (mailboxes == NULL)
		mailboxes = "";
	tl = strlen(tenant);
	ml = strlen(message_id);
	bl = strlen(mailboxes);
	if (tl == 0 || ml == 0 || tl > STATUS_TENANT_MAX ||
	    ml > STATUS_MSGID_MAX || bl > STATUS_MAILBOXES_MAX ||
	    strchr(tenant, '\n') != NULL || strchr(message_id, '\n') != NULL ||
	    strchr(mailboxes, '\n') != NULL)
		return NULL;
	cap = 4 + tl + 1 + STATUS_JOB_DIGITS + 1 + ml + 1 + bl + 1;
	buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	n = snprintf(buf, cap, "job\n%s\n%" PRId64 "\n%s\n%s", tenant, job_id,
	    message_id, mailboxes);
	if (n < 0 || (size_t)n >= cap) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* The token of one job (see status.h). */
int
status_token(const uint8_t key[CRYPTO_KEY_LEN], const char *tenant,
    int64_t job_id, const char *message_id, const char *mailboxes,
    char out[STATUS_TOKEN_LEN + 1])
{
	uint8_t mac[CRYPTO_HMAC_LEN];
	char *text, *buf;
	size_t n = 0;
	int rc;

	out[0] = '\0';
	buf = status_input(tenant, job_id, message_id, mailboxes, &n);
	if (buf == NULL)
		return -1;
	rc = crypto_hmac(key, CRYPTO_KEY_LEN, buf, n, mac);
	free(buf);
	if (rc != 0)
		return -1;
	text = crypto_b64url_encode(mac, sizeof(mac));
	crypto_wipe(mac, sizeof(mac));
	if (text == NULL || strlen(text) != STATUS_MAC_LEN) {
		free(text);
		return -1;
	}
	snprintf(out, STATUS_TOKEN_LEN + 1, "%" PRId64 ".%s", job_id, text);
	crypto_wipe(text, STATUS_MAC_LEN);
	free(text);
	return 0;
}

/* The job id a token names. */
int64_t
status_token_job(const char *token)
{
	int64_t id = 0;
	size_t i;

	if (token == NULL || token[0] < '1' || token[0] > '9')
		return 0;
	for (i = 0; token[i] >= '0' && token[i] <= '9'; i++) {
		if (i >= STATUS_JOB_DIGITS - 1)
			return 0;       /* 18 digits: far beyond any job id */
		id = id * 10 + (token[i] - '0');
	}
	if (token[i] != '.' || strlen(token + i + 1) != STATUS_MAC_LEN)
		return 0;
	return id;
}

/* Is TOKEN the token of JOB, asked about as (TENANT, MESSAGE_ID)? */
bool
status_token_check(const uint8_t key[CRYPTO_KEY_LEN],
    const struct store_job *job, const char *tenant, const char *message_id,
    const char *token)
{
	char want[STATUS_TOKEN_LEN + 1];
	bool ok;

	if (job == NULL || token == NULL || status_token(key, job->tenant,
	    job->id, job->message_id, job->recipients, want) != 0)
		return false;
	ok = crypto_equal(want, token);
	crypto_wipe(want, sizeof(want));
	return ok && tenant != NULL && message_id != NULL &&
	    strcmp(job->tenant, tenant) == 0 &&
	    strcmp(job->message_id, message_id) == 0;
}

/* Are the status API's parameters well-formed? */
bool
status_params_ok(const char *tenant, size_t tenant_len, const char *msgid,
    size_t msgid_len, const char *token, size_t token_len)
{
	size_t i;
	unsigned char c;

	if (tenant == NULL || msgid == NULL || token == NULL)
		return false;
	if (tenant_len == 0 || tenant_len > STATUS_TENANT_MAX ||
	    strlen(tenant) != tenant_len)
		return false;
	for (i = 0; i < tenant_len; i++) {
		c = (unsigned char)tenant[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	if (msgid_len < 3 || msgid_len > STATUS_MSGID_MAX ||
	    strlen(msgid) != msgid_len || msgid[0] != '<' ||
	    msgid[msgid_len - 1] != '>')
		return false;
	for (i = 0; i < msgid_len; i++) {
		c = (unsigned char)msgid[i];
		if (c <= 0x20 || c >= 0x7f)
			return false;
	}
	if (token_len > STATUS_TOKEN_LEN || strlen(token) != token_len ||
	    status_token_job(token) <= 0)
		return false;
	for (i = strcspn(token, ".") + 1; i < token_len; i++) {
		c = (unsigned char)token[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* The pane-facing state of a job. */
const char *
status_state(const struct store_job *job)
{
	switch (job->state) {
	case STORE_DONE:
		return job->result != NULL && strcmp(job->result, "created") == 0 ?
		    "created" : "appended";
	case STORE_QUEUED:
	case STORE_RUNNING:
		return "queued";
	case STORE_SKIPPED:
		return "skipped";
	case STORE_FAILED:
		return "failed";
	case STORE_WAITING:
		return "waiting";
	}
	return "unknown";
}

/* The agent-UI address of a ticket. Halo's agent UI opens a ticket at
 * SITE/ticket?id=N (seen in the product and in public integrations; not in
 * Halo's API documentation). */
char *
status_ticket_url(const char *halo_url, int64_t id)
{
	char *out = NULL;
	size_t n;

	if (halo_url == NULL || *halo_url == '\0' || id <= 0)
		return NULL;
	n = strlen(halo_url);
	while (n > 0 && halo_url[n - 1] == '/')
		n--;
	if (asprintf(&out, "%.*s/ticket?id=%" PRId64, (int)n, halo_url, id) < 0)
		return NULL;
	return out;
}

/* Add "NAME": ISO 8601 UTC of T, or null when T is 0. */
static void
status_add_time(cJSON *obj, const char *name, time_t t)
{
	struct tm tm;
	char text[32];

	if (t <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		cJSON_AddNullToObject(obj, name);
		return;
	}
	cJSON_AddStringToObject(obj, name, text);
}

/* Add "NAME": S, or null. */
static void
status_add_str(cJSON *obj, const char *name, const char *s)
{
	if (s != NULL)
		cJSON_AddStringToObject(obj, name, s);
	else
		cJSON_AddNullToObject(obj, name);
}

/* {id, name} or null when neither is known. */
static void
status_add_party(cJSON *obj, const char *name, int64_t id, const char *text)
{
	cJSON *p;

	if (id <= 0 && text == NULL) {
		cJSON_AddNullToObject(obj, name);
		return;
	}
	p = cJSON_AddObjectToObject(obj, name);
	if (p == NULL)
		return;
	if (id > 0)
		cJSON_AddNumberToObject(p, "id", (double)id);
	else
		cJSON_AddNullToObject(p, "id");
	status_add_str(p, "name", text);
}

/* The sender part: who the worker matched, or why nobody. */
static void
status_add_sender(cJSON *root, const struct store_job *job)
{
	cJSON *s = cJSON_AddObjectToObject(root, "sender");
	const char *match, *why = NULL;
	const char *kind = job->sender;

	if (s == NULL)
		return;
	if (kind != NULL && strcmp(kind, "contact") == 0)
		match = "contact";
	else if (kind != NULL && (strcmp(kind, "client") == 0 ||
	    strcmp(kind, "fallback") == 0)) {
		match = "client";
		if (strcmp(kind, "fallback") == 0)
			why = "no contact or client matched: the tenant's"
			    " catch-all client";
	} else if (kind != NULL && strcmp(kind, "ambiguous") == 0) {
		match = "unknown";
		why = "the sender's domain belongs to more than one Halo client";
	} else if (kind != NULL && strcmp(kind, "none") == 0) {
		match = "unknown";
		why = "no Halo contact has this address and no client claims"
		    " its domain";
	} else if (job->state == STORE_SKIPPED && job->reason != NULL &&
	    strncmp(job->reason, "unknown-sender", 14) == 0) {
		match = "unknown";
		why = strstr(job->reason, "several") != NULL ?
		    "the sender's domain belongs to more than one Halo client" :
		    "no Halo contact has this address and no client claims"
		    " its domain";
	} else if (job->state == STORE_QUEUED || job->state == STORE_RUNNING ||
	    job->state == STORE_WAITING) {
		match = "pending";
	} else {
		match = "not-checked";
	}
	cJSON_AddStringToObject(s, "match", match);
	status_add_str(s, "email", job->from_addr);
	if (strcmp(match, "contact") == 0)
		status_add_party(s, "contact", job->contact_id, job->contact);
	else
		cJSON_AddNullToObject(s, "contact");
	if (strcmp(match, "contact") == 0 || strcmp(match, "client") == 0)
		status_add_party(s, "client", job->client_id, job->client);
	else
		cJSON_AddNullToObject(s, "client");
	status_add_str(s, "why", why);
}

/* The status API's answer for JOB. */
char *
status_json(const struct store_job *job, const char *halo_url)
{
	cJSON *root, *t;
	char *url, *text;
	const char *state = status_state(job);
	bool settled;

	root = cJSON_CreateObject();
	if (root == NULL)
		return NULL;
	settled = job->state == STORE_DONE || job->state == STORE_SKIPPED ||
	    job->state == STORE_FAILED;
	cJSON_AddStringToObject(root, "state", state);
	cJSON_AddBoolToObject(root, "settled", settled);
	status_add_str(root, "reason", job->reason);
	status_add_str(root, "tenant", job->tenant);
	cJSON_AddNumberToObject(root, "job", (double)job->id);
	status_add_str(root, "subject", job->subject);
	status_add_sender(root, job);
	if (job->state == STORE_DONE && job->ticket_id > 0 &&
	    (t = cJSON_AddObjectToObject(root, "ticket")) != NULL) {
		cJSON_AddNumberToObject(t, "id", (double)job->ticket_id);
		status_add_str(t, "summary", job->summary);
		/* as it was when the mail was logged: the API never asks Halo */
		status_add_str(t, "status", job->ticket_status);
		url = status_ticket_url(halo_url, job->ticket_id);
		status_add_str(t, "url", url);
		free(url);
	} else
		cJSON_AddNullToObject(root, "ticket");
	status_add_time(root, "received", job->created);
	status_add_time(root, "updated", job->updated);
	status_add_time(root, "next_attempt", job->state == STORE_QUEUED ?
	    job->next_attempt : 0);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}
