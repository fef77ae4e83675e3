/*
 * spooljob.c - the job rows a spool file carries (see spooljob.h).
 *
 * End of message writes each message's rows into its spool file's trailer
 * (spool.h) before the file is made durable, so the rows' own commit need
 * not wait for a sync of its own (SQLite's synchronous = NORMAL for that
 * transaction): after a power cut that lost the commit, start-up finds the
 * committed file no row names and adds its rows again from the trailer.
 */
#include "spooljob.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "spool.h"

#define SPOOLJOB_VERSION    1
#define SPOOLJOB_ROWS_MAX   64      /* tenants a message can have rows in */
#define SPOOLJOB_TEXT_MAX   (64u * 1024)
#define SPOOLJOB_PRINT_GUESS 4096

/* Add KEY: V (a string, or null) to OBJ. */
static bool
sj_add_str(cJSON *obj, const char *key, const char *v)
{
	return (v != NULL ? cJSON_AddStringToObject(obj, key, v) :
	    cJSON_AddNullToObject(obj, key)) != NULL;
}

/* The JSON of one row. */
static cJSON *
sj_row_json(const struct store_job_new *r)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	if (sj_add_str(o, "tenant", r->tenant) &&
	    sj_add_str(o, "message_id", r->message_id) &&
	    sj_add_str(o, "state", store_state_name(r->state)) &&
	    sj_add_str(o, "reason", r->reason) &&
	    sj_add_str(o, "queue_id", r->queue_id) &&
	    sj_add_str(o, "env_from", r->env_from) &&
	    sj_add_str(o, "from_addr", r->from_addr) &&
	    sj_add_str(o, "subject", r->subject) &&
	    sj_add_str(o, "recipients", r->recipients) &&
	    sj_add_str(o, "agent", r->agent) &&
	    sj_add_str(o, "mode", r->mode) &&
	    sj_add_str(o, "conv_key", r->conv_key) &&
	    sj_add_str(o, "dedup_key", r->dedup_key) &&
	    sj_add_str(o, "sender_auth", r->sender_auth) &&
	    sj_add_str(o, "outbound_auth", r->outbound_auth) &&
	    cJSON_AddBoolToObject(o, "no_create", r->no_create) != NULL &&
	    cJSON_AddBoolToObject(o, "starts_thread", r->starts_thread) != NULL)
		return o;
	cJSON_Delete(o);
	return NULL;
}

/* The trailer's JSON for ROWS (see spooljob.h). */
char *
spooljob_encode(const struct store_job_new *rows, size_t n,
    const char *conv_msgid, const char *conv_key)
{
	cJSON *root, *arr, *o;
	char *out = NULL;
	size_t i;

	if (n == 0 || n > SPOOLJOB_ROWS_MAX ||
	    (root = cJSON_CreateObject()) == NULL)
		return NULL;
	if (cJSON_AddNumberToObject(root, "v", SPOOLJOB_VERSION) == NULL ||
	    !sj_add_str(root, "conv_msgid", conv_msgid) ||
	    !sj_add_str(root, "conv_key", conv_key) ||
	    (arr = cJSON_AddArrayToObject(root, "rows")) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		if ((o = sj_row_json(&rows[i])) == NULL ||
		    !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			goto out;
		}
	/* most fit 4 KiB: printed once, without growing a buffer */
	if ((out = malloc(SPOOLJOB_PRINT_GUESS)) != NULL &&
	    !cJSON_PrintPreallocated(root, out, SPOOLJOB_PRINT_GUESS, false)) {
		free(out);
		out = cJSON_PrintUnformatted(root);
	}
	if (out != NULL && strlen(out) > SPOOL_TRAILER_MAX) {
		free(out);              /* the caller commits without one */
		out = NULL;
	}
out:
	cJSON_Delete(root);
	return out;
}

/* OBJ's string KEY: NULL when null or absent (and *OK stays); *OK false
 * when it is another type or too long, or when REQUIRED and missing. */
static const char *
sj_str(const cJSON *obj, const char *key, bool required, bool *ok)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL || cJSON_IsNull(v)) {
		if (required)
			*ok = false;
		return NULL;
	}
	if (!cJSON_IsString(v) || v->valuestring == NULL ||
	    strlen(v->valuestring) > SPOOLJOB_TEXT_MAX ||
	    (required && *v->valuestring == '\0')) {
		*ok = false;
		return NULL;
	}
	return v->valuestring;
}

/* OBJ's boolean KEY; *OK false when it is not one. */
static bool
sj_bool(const cJSON *obj, const char *key, bool *ok)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsBool(v)) {
		*ok = false;
		return false;
	}
	return cJSON_IsTrue(v);
}

/* Whether S is NULL or 32 lower-case hex digits (a conversation key). */
static bool
sj_key_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return true;
	for (i = 0; i < 32; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[32] == '\0';
}

/* Fill R from the JSON row O; false when O is not a valid row. */
static bool
sj_row_parse(const cJSON *o, struct store_job_new *r)
{
	const char *state;
	bool ok = cJSON_IsObject(o);
	int st;

	if (!ok)
		return false;
	memset(r, 0, sizeof(*r));
	r->tenant = sj_str(o, "tenant", true, &ok);
	r->message_id = sj_str(o, "message_id", true, &ok);
	state = sj_str(o, "state", true, &ok);
	r->reason = sj_str(o, "reason", false, &ok);
	r->queue_id = sj_str(o, "queue_id", false, &ok);
	r->env_from = sj_str(o, "env_from", false, &ok);
	r->from_addr = sj_str(o, "from_addr", false, &ok);
	r->subject = sj_str(o, "subject", false, &ok);
	r->recipients = sj_str(o, "recipients", false, &ok);
	r->agent = sj_str(o, "agent", false, &ok);
	r->mode = sj_str(o, "mode", true, &ok);
	r->conv_key = sj_str(o, "conv_key", false, &ok);
	r->dedup_key = sj_str(o, "dedup_key", false, &ok);
	r->sender_auth = sj_str(o, "sender_auth", false, &ok);
	r->outbound_auth = sj_str(o, "outbound_auth", false, &ok);
	r->no_create = sj_bool(o, "no_create", &ok);
	r->starts_thread = sj_bool(o, "starts_thread", &ok);
	if (!ok)
		return false;
	st = store_state_parse(state);
	if (st != STORE_QUEUED && st != STORE_SKIPPED)
		return false;
	r->state = (enum store_state)st;
	return (strcmp(r->mode, "intake") == 0 ||
	    strcmp(r->mode, "thread-only") == 0 ||
	    strcmp(r->mode, "outbound") == 0) && sj_key_ok(r->conv_key);
}

/* Parse a trailer (see spooljob.h). */
struct spooljob *
spooljob_decode(const char *json, size_t len)
{
	struct spooljob *sj;
	const cJSON *rows, *v, *o;
	bool ok = true;
	size_t i = 0;

	if (len == 0 || len > SPOOL_TRAILER_MAX ||
	    (sj = calloc(1, sizeof(*sj))) == NULL)
		return NULL;
	if ((sj->root = cJSON_ParseWithLength(json, len)) == NULL)
		goto fail;
	v = cJSON_GetObjectItemCaseSensitive(sj->root, "v");
	rows = cJSON_GetObjectItemCaseSensitive(sj->root, "rows");
	if (!cJSON_IsNumber(v) || v->valuedouble != SPOOLJOB_VERSION ||
	    !cJSON_IsArray(rows))
		goto fail;
	sj->n = (size_t)cJSON_GetArraySize(rows);
	if (sj->n == 0 || sj->n > SPOOLJOB_ROWS_MAX ||
	    (sj->rows = calloc(sj->n, sizeof(*sj->rows))) == NULL)
		goto fail;
	cJSON_ArrayForEach(o, rows)
		if (i >= sj->n || !sj_row_parse(o, &sj->rows[i++]))
			goto fail;
	sj->conv_msgid = sj_str(sj->root, "conv_msgid", false, &ok);
	sj->conv_key = sj_str(sj->root, "conv_key", false, &ok);
	if (!ok || i != sj->n || !sj_key_ok(sj->conv_key) ||
	    (sj->conv_msgid == NULL) != (sj->conv_key == NULL))
		goto fail;
	return sj;
fail:
	spooljob_free(sj);
	return NULL;
}

/* Free SJ (NULL is fine); returns NULL. */
struct spooljob *
spooljob_free(struct spooljob *sj)
{
	if (sj == NULL)
		return NULL;
	cJSON_Delete(sj->root);
	free(sj->rows);
	free(sj);
	return NULL;
}

/* Restore the rows of one file NAME no job names: 1 when restored, 0 when
 * not (no trailer, the message already has a ticket, or only duplicates),
 * -1 when the trailer is damaged, -2 when the store failed. */
static int
spooljob_restore(const char *spool_dir, struct store *st, const char *name)
{
	enum store_status *res = NULL;
	struct spooljob *sj = NULL;
	char path[PATH_MAX], *json = NULL;
	uint64_t size;
	int64_t *ids = NULL, ticket;
	size_t i;
	int rc = -1;

	if (spool_path(spool_dir, name, path, sizeof(path)) != 0)
		return -1;
	if (spool_read_trailer(path, &size, &json) != 0)
		return errno == ENOENT ? 0 : -1;
	if ((sj = spooljob_decode(json, strlen(json))) == NULL)
		goto out;
	for (i = 0; i < sj->n; i++) {
		/* a job purged once done keeps its ticket in the thread
		 * index: that message is in Halo, never log it again */
		switch (store_ticket_by_msgid(st, sj->rows[i].tenant,
		    sj->rows[i].message_id, &ticket)) {
		case STORE_OK:
			rc = 0;
			goto out;
		case STORE_NOT_FOUND:
			break;
		default:
			rc = -2;
			goto out;
		}
		sj->rows[i].spool = name;
		sj->rows[i].size = size;
		sj->rows[i].spool_file = path;
	}
	res = calloc(sj->n, sizeof(*res));
	ids = calloc(sj->n, sizeof(*ids));
	rc = -2;
	if (res != NULL && ids != NULL && store_jobs_add(st, sj->rows, sj->n,
	    res, ids, sj->conv_msgid, sj->conv_key) == STORE_OK)
		/* all duplicates: a job of another copy is there (this copy's
		 * file was to go), so the file is an orphan */
		for (rc = 0, i = 0; i < sj->n; i++)
			if (res[i] == STORE_OK)
				rc = 1;
out:
	free(res);
	free(ids);
	spooljob_free(sj);
	free(json);
	return rc;
}

/* spool_recover()'s question for one committed file, NAME: keep it? Yes
 * when a job names it, when its trailer's rows were restored, or on doubt
 * (the store failing: R->failed, and the daemon does not start). */
static bool
spooljob_keep(const char *name, void *arg)
{
	struct spooljob_recovery *r = arg;
	bool used = true;
	char safe[SPOOL_NAME_MAX * 4];

	if (store_spool_used(r->st, name, &used) != STORE_OK) {
		r->failed = true;
		return true;
	}
	if (used)
		return true;
	switch (spooljob_restore(r->spool_dir, r->st, name)) {
	case 1:
		r->restored++;
		return true;
	case -1:
		r->damaged++;
		log_warnx("spool recovery: %s has no usable job rows;"
		    " it is removed as an orphan", log_safe(name, safe,
		    sizeof(safe)));
		return false;
	case -2:
		r->failed = true;
		return true;
	default:
		return false;           /* no rows, or in Halo already */
	}
}

/* Start-up recovery of the spool (see spooljob.h). */
int
spooljob_recover(const char *spool_dir, struct store *st,
    struct spooljob_recovery *out)
{
	memset(out, 0, sizeof(*out));
	out->st = st;
	out->spool_dir = spool_dir;
	if (spool_recover(spool_dir, spooljob_keep, out, &out->tmp_removed,
	    &out->orphans) != 0)
		return -1;
	if (out->failed) {
		errno = EIO;
		return -1;
	}
	return 0;
}
