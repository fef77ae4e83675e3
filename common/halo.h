/*
 * halo.h - typed HaloPSA REST calls (OAuth2 token endpoint and resource API)
 * on top of http.h, with JSON through cJSON.
 *
 * Tolerant of the documented variants (/work/shared/halo-api.md): bare or
 * wrapped lists, 200 or 201 on create, "_warning" fields, integers as
 * numbers or digit strings, and the several 400 error body shapes, which
 * become one short printable message in struct halo_err.
 *
 * Every call returns 0 on success and -1 on failure (halo_find_by_message_id
 * also 1 for "not found") and fills *ERR on failure. Strings in the output
 * structs are malloc'd and owned by the struct; release them with the
 * matching *_clear() (which also resets the struct; arrays: *_free()).
 * Name and e-mail strings are never NULL in a successful result ("" when
 * Halo omitted them).
 * Tokens, codes and secrets are never logged nor copied into ERR.
 */
#ifndef HALO_HALO_H
#define HALO_HALO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define HALO_SUMMARY_MAX 250            /* characters (code points) */
#define HALO_MAX_RESPONSE ((size_t)4 << 20)

struct halo_conf {
	const char *halo_url;       /* resource base, e.g. https://x.halopsa.com */
	const char *auth_url;       /* NULL = halo_url + "/auth" */
	const char *tenant;         /* NULL or name, ?tenant= on /token and /authorize */
	const char *client_id;
	const char *client_secret;  /* may be NULL */
	long timeout_ms;            /* total per request; 0 = http default */
	/* statuses that count as closed (from halo_list_statuses); may be NULL */
	const int64_t *closed_status_ids;
	size_t n_closed_status_ids;
};

/* CONF of tenant T's Halo (URLs, tenant, client); the rest zeroed. */
struct conf_tenant;
void halo_conf_tenant(struct halo_conf *hc, const struct conf_tenant *t);

struct halo_err {
	enum http_result kind;
	long status;                /* HTTP status, 0 when none arrived */
	long retry_after;           /* seconds, -1 when absent */
	bool invalid_grant;         /* token endpoint said invalid_grant */
	char message[256];          /* printable ASCII */
};

struct halo_tokens {
	char *access_token;
	char *refresh_token;        /* NULL when the response omitted it */
	long expires_in;            /* seconds, 0 when omitted */
	char *scope;                /* NULL when omitted */
};

/* Wipe and free the tokens, reset *T. */
void halo_tokens_clear(struct halo_tokens *t);

/* grant_type=refresh_token. On rotation OUT->refresh_token is the new one;
 * NULL means "keep the old one". */
int halo_token_refresh(const struct halo_conf *c, const char *refresh_token,
    struct halo_tokens *out, struct halo_err *err);

/* grant_type=authorization_code with PKCE VERIFIER. */
int halo_token_from_code(const struct halo_conf *c, const char *code,
    const char *verifier, const char *redirect_uri, struct halo_tokens *out,
    struct halo_err *err);

/* The browser URL for an authorization-code + PKCE (S256) login; malloc'd. */
char *halo_authorize_url(const struct halo_conf *c, const char *redirect_uri,
    const char *scope, const char *state, const char *code_challenge);

/* "invalid_grant" from the token endpoint: kind HTTP_CLIENT_ERROR, message
 * starting "invalid_grant", and this returns true. */
bool halo_err_is_invalid_grant(const struct halo_err *err);

/* One short printable message (into OUT, OUTSZ bytes) from an error body of
 * LEN bytes: plain text, {"ClassName","Message"}, {"Message"},
 * {"error","error_description"}, model-binding {"errors":{"path":["msg"]}}
 * or {"path":["msg"]}, HTML; "HTTP STATUS" when the body says nothing. */
void halo_error_message(long status, const char *body, size_t len, char *out,
    size_t outsz);

struct halo_agent {
	int64_t id;
	char *name;
	char *email;
	bool disabled;
};

/* GET /api/Agent/me: who TOKEN belongs to. */
int halo_agent_me(const struct halo_conf *c, const char *token,
    struct halo_agent *out, struct halo_err *err);
void halo_agent_clear(struct halo_agent *a);

enum halo_match { HALO_MATCH_NONE = 0, HALO_MATCH_ONE, HALO_MATCH_AMBIGUOUS };

struct halo_contact {
	int64_t user_id, site_id, client_id;
	char *name;
	char *client_name;
};

/* Exact, case-insensitive match of EMAIL against emailaddress/email2/email3
 * over GET /api/Users?search=EMAIL (inactive excluded). OUT is filled only
 * for HALO_MATCH_ONE. */
int halo_contact_by_email(const struct halo_conf *c, const char *token,
    const char *email, enum halo_match *match, struct halo_contact *out,
    struct halo_err *err);
void halo_contact_clear(struct halo_contact *ct);

struct halo_org {
	int64_t client_id, site_id;     /* site_id 0 when unknown */
	char *client_name;
};

/* The client owning DOMAIN: candidates from GET /api/Client?domain=, each
 * verified (client-level domain equal, or one of its sites' emaildomain via
 * GET /api/Site?client_id=). The domain filter is undescribed: when it
 * answers with many clients (it was ignored), the owners are found from
 * the list's own domain fields and a scan of the sites' emaildomain
 * instead. More than one client is AMBIGUOUS. OUT is filled only for
 * HALO_MATCH_ONE. */
int halo_client_by_domain(const struct halo_conf *c, const char *token,
    const char *domain, enum halo_match *match, struct halo_org *out,
    struct halo_err *err);
void halo_org_clear(struct halo_org *o);

struct halo_ticket {
	int64_t id, client_id, site_id, user_id, status_id;
	char *summary;
	bool closed;        /* status_id in conf->closed_status_ids */
	char **fields;      /* names of the custom fields that hold a value */
	size_t n_fields;    /* (at most HALO_TICKET_FIELDS_MAX) */
};

#define HALO_TICKET_FIELDS_MAX 256

/* Whether ticket T has a value in the custom field NAME (case-insensitive,
 * as Halo compares field names). */
bool halo_ticket_has_field(const struct halo_ticket *t, const char *name);

/* GET /api/Tickets/ID; 404 gives kind HTTP_NOT_FOUND. */
int halo_ticket_get(const struct halo_conf *c, const char *token, int64_t id,
    struct halo_ticket *out, struct halo_err *err);
void halo_ticket_clear(struct halo_ticket *t);

/* GET /api/Actions?internetmessageid=: the ticket (and action; 0 for a
 * ticket's own Message-ID) carrying MSGID, tried with and without angle
 * brackets. The filter is not in Halo's spec: a returned row counts only
 * when its own internet_message_id (or internetmessageid) equals MSGID
 * (case-insensitive, with or without angle brackets); a row without one
 * is not a match, so a Halo that ignores the filter finds nothing.
 * Returns 0 found, 1 not found, -1 error. */
int halo_find_by_message_id(const struct halo_conf *c, const char *token,
    const char *msgid, int64_t *ticket_id, int64_t *action_id,
    struct halo_err *err);

/* One file for Halo, sent as data_base64 = "data:<type>;base64,<payload>"
 * (bare base64 is answered 200 with a _warning and nothing stored). */
struct halo_attachment {
	const char *filename;
	const char *content_type;   /* may be NULL: application/octet-stream */
	const unsigned char *data;
	size_t len;
	bool is_image;
	bool mapped;                /* data is a read-only shared file mapping
	                             * (mime.h's spill_dir): its pages are
	                             * dropped from memory once sent */
};

/*
 * A request that carries attachments is streamed: its JSON is printed with
 * a placeholder for each data URI, and each file is base64-encoded a chunk
 * at a time while libcurl sends it (no copy of a file in memory). Tests
 * only: INLINE true builds the whole body in memory instead, as before
 * (the bytes sent are the same). Not thread-safe; set it before requests.
 */
void halo_set_inline_attachments(bool inline_body);

/* What Halo did with one attachment of a create (or an upload). */
struct halo_attach_result {
	int64_t id;                 /* Halo's attachment id; 0 when unknown */
	bool failed;                /* a _warning or id 0: nothing stored */
	char why[160];              /* printable; "" unless failed */
};

/* Look at a created ticket's or action's answer OBJ (a cJSON object) for
 * the fate of its N attachments, into RES[0..N-1]: an entry of its
 * "attachments" list with id 0 or a _warning failed; with no list, an
 * answer-level _warning that names attachments fails them all; otherwise
 * they count as stored. Returns how many failed. */
struct cJSON;
size_t halo_attach_check(const struct cJSON *obj, size_t n,
    struct halo_attach_result *res);

/* POST /api/Attachment: A onto TICKET_ID (and ACTION_ID when > 0). 0 stored
 * (*ID set), 1 answered but not stored (RES->why says why), -1 error. */
int halo_attachment_upload(const struct halo_conf *c, const char *token,
    int64_t ticket_id, int64_t action_id, const struct halo_attachment *a,
    struct halo_attach_result *res, struct halo_err *err);

/* An attachment Halo holds (GET /api/Attachment). */
struct halo_stored {
	int64_t id, action_id;      /* action_id 0 when Halo omits it */
	int64_t size;               /* -1 when Halo omits it */
	char *filename;
};

/* GET /api/Attachment?ticket_id=[&action_id=]: what TICKET_ID (its action
 * ACTION_ID when > 0) holds. *OUT malloc'd; free with halo_stored_free(). */
int halo_attachment_list(const struct halo_conf *c, const char *token,
    int64_t ticket_id, int64_t action_id, struct halo_stored **out,
    size_t *count, struct halo_err *err);
void halo_stored_free(struct halo_stored *list, size_t count);

struct halo_action_new {
	int64_t ticket_id;
	const char *outcome;
	const char *note_html;
	bool hidden;
	const char *email_from, *email_to, *email_cc, *email_subject;
	const char *internet_message_id;
	bool outgoing;              /* emaildirection "O", else "I" */
	const char *arrival_date;   /* ISO 8601 or NULL: actionarrivaldate */
	int64_t new_status;         /* the ticket's status after it; 0 = same */
	const struct halo_attachment *attachments;
	size_t n_attachments;
	struct halo_attach_result *att_results;  /* NULL or n_attachments:
	                               filled when the action was created */
};

/* POST /api/Actions with a one-element array; sendemail=false always. */
int halo_action_create(const struct halo_conf *c, const char *token,
    const struct halo_action_new *a, int64_t *action_id, struct halo_err *err);

struct halo_customfield {
	const char *name;
	const char *value;
};

struct halo_ticket_new {
	const char *summary;        /* cut to HALO_SUMMARY_MAX characters */
	const char *details_html;
	int64_t tickettype_id, client_id, site_id, user_id;     /* 0 = not sent */
	int64_t priority_id, agent_id;                          /* 0 = not sent */
	const char *team;           /* NULL = not sent */
	const char *internet_message_id;
	/* who wrote and to whom (NULL = not sent) */
	const char *user_email;     /* the requester's address */
	const char *reported_by;    /* the requester as the mail names them */
	const char *email_to_list, *email_cc_list;
	const char *date_occurred;  /* ISO 8601: when the mail was written */
	const char *action_outcome; /* the first action's outcome (create_outcome) */
	bool dont_do_rules;         /* skip Halo's ticket rules */
	const struct halo_customfield *customfields;
	size_t n_customfields;
	const struct halo_attachment *attachments;
	size_t n_attachments;
	struct halo_attach_result *att_results;  /* as halo_action_new's */
};

/* POST /api/Tickets; user_id only sent together with its site_id. */
int halo_ticket_create(const struct halo_conf *c, const char *token,
    const struct halo_ticket_new *t, int64_t *ticket_id, struct halo_err *err);

struct halo_named {
	int64_t id;
	char *name;
	bool closed;                /* statuses from halo_status_states():
	                               in the full list, not in the open one */
};

/* GET /api/Outcome (name from "outcome"). *OUT is a malloc'd array. */
int halo_list_outcomes(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, struct halo_err *err);
/* GET /api/TicketType?showall=true. */
int halo_list_ticket_types(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, struct halo_err *err);
/* GET /api/Status (the full list; closed is never set here: Halo's
 * status schema has no closed flag). */
int halo_list_statuses(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, struct halo_err *err);
/* Which statuses are closed, from what the spec offers: GET /api/Status
 * against GET /api/Status?excludeclosed=true; a status in the first and
 * not in the second is closed (OUT's closed set). *KNOWN false when that
 * cannot tell (the two lists are the same: excludeclosed ignored, or
 * no closed status at all). */
int halo_status_states(const struct halo_conf *c, const char *token,
    struct halo_named **out, size_t *count, bool *known,
    struct halo_err *err);
/* Free a list from halo_list_*(). */
void halo_named_free(struct halo_named *list, size_t count);

/* POST /api/Users: a new contact NAME <EMAIL> at SITE_ID of CLIENT_ID;
 * *USER_ID the new user's id. */
int halo_user_create(const struct halo_conf *c, const char *token,
    const char *name, const char *email, int64_t client_id, int64_t site_id,
    int64_t *user_id, struct halo_err *err);

/* The site a new contact of CLIENT_ID belongs under: the client's
 * main_site_id (GET /api/Client/ID), else its only (or lowest-numbered)
 * active site (GET /api/Site?client_id=). 0, or -1 (none: kind
 * HTTP_NOT_FOUND). */
int halo_client_main_site(const struct halo_conf *c, const char *token,
    int64_t client_id, int64_t *site_id, struct halo_err *err);

/* Whether a CFOutlookConversationId VALUE names the conversation KEY (32
 * hex digits, the Thread-Index GUID): VALUE is KEY (any case, with or
 * without dashes and braces), or Outlook's conversationId form (base64 or
 * base64url) whose last 16 decoded bytes are the GUID. */
bool halo_conv_matches(const char *value, const char *key);

/* GET /api/Tickets?advanced_search= on custom field FIELD = VALUE, each
 * returned ticket verified to hold it (halo_conv_matches() when CONV,
 * else equal as Message-IDs: case and one pair of <> aside): the lowest
 * such ticket id into *TICKET_ID. 0 found, 1 not, -1 error. */
int halo_ticket_by_field(const struct halo_conf *c, const char *token,
    const char *field, const char *value, bool conv, int64_t *ticket_id,
    struct halo_err *err);

/*
 * The interactive pane's calls: GET or POST (BODY, a JSON value) to
 * halo_url + PATH (PATH's query already escaped) under TOKEN, the answer
 * parsed into *JSON (the caller frees it with cJSON_Delete). WHAT names
 * the route in log lines. 0, or -1 with ERR set (and *JSON NULL).
 */
struct cJSON;
int halo_pane_get(const struct halo_conf *c, const char *token,
    const char *what, const char *path, struct cJSON **json,
    struct halo_err *err);
int halo_pane_post(const struct halo_conf *c, const char *token,
    const char *what, const char *path, const struct cJSON *body,
    struct cJSON **json, struct halo_err *err);

#endif
