/*
 * fuzz_halo_json.c - libFuzzer target for everything halo.c reads from
 * Halo's answers: the input's first byte picks the HTTP status (2xx, 4xx,
 * 429, 5xx), the rest is the body that every request gets back (through
 * http_set_transport(), no network). Each typed call parses it: tokens,
 * Agent/me, contact and client lookups, a ticket, the Message-ID search,
 * the lookup lists, closed statuses, the creates (with each attachment's
 * fate), attachment upload and list, a new user, a client's main site,
 * the custom-field search and the conversation forms, plus error-message
 * parsing.
 * Promises about outputs are checked; a broken one aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "halo.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *fz_body;
static size_t fz_len;
static long fz_status;

/* Every request: the fuzz input as Halo's answer. */
static enum http_result
fz_transport(const struct http_request *req, struct http_response *resp)
{
	(void)req;
	resp->status = fz_status;
	resp->body = malloc(fz_len + 1);
	if (resp->body == NULL)
		return HTTP_INTERNAL;
	memcpy(resp->body, fz_body, fz_len);
	resp->body[fz_len] = '\0';
	resp->body_len = fz_len;
	return http_status_result(fz_status);
}

/* A message must be printable ASCII and terminated. */
static void
fz_check_err(const struct halo_err *err)
{
	size_t i;

	for (i = 0; i < sizeof(err->message) && err->message[i] != '\0'; i++)
		if ((unsigned char)err->message[i] < 0x20 ||
		    (unsigned char)err->message[i] > 0x7e)
			abort();
	if (i == sizeof(err->message))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 201, 400, 401, 403, 404, 429, 500 };
	static const struct halo_conf c = {
		.halo_url = "https://halo.example", .client_id = "fuzz",
		.tenant = "t",
	};
	static const int64_t closed[] = { 9 };
	struct halo_conf cc = c;
	struct halo_err err;
	struct halo_tokens tok;
	struct halo_agent me;
	struct halo_contact ct;
	struct halo_org org;
	struct halo_ticket tk;
	struct halo_named *list;
	struct halo_action_new act;
	struct halo_ticket_new tn;
	enum halo_match match;
	static const struct halo_attachment att[2] = {
		{ "a.txt", "text/plain", (const unsigned char *)"a", 1, false, false },
		{ "b.png", "image/png;x", (const unsigned char *)"b", 1, true, false },
	};
	struct halo_attach_result res[2];
	struct halo_stored *stored;
	bool known;
	int64_t a, b;
	size_t n, i;
	char msg[256];

	if (size < 1 || size > 65536)
		return 0;
	fz_status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	fz_body = data + 1;
	fz_len = size - 1;
	http_set_transport(fz_transport);
	cc.closed_status_ids = closed;
	cc.n_closed_status_ids = 1;

	memset(&err, 0, sizeof(err));
	if (halo_token_refresh(&cc, "rt", &tok, &err) == 0) {
		if (tok.access_token == NULL)
			abort();
		halo_tokens_clear(&tok);
	}
	fz_check_err(&err);
	if (halo_token_from_code(&cc, "code", "verifier", "https://r/cb", &tok,
	    &err) == 0)
		halo_tokens_clear(&tok);
	fz_check_err(&err);
	if (halo_agent_me(&cc, "at", &me, &err) == 0)
		halo_agent_clear(&me);
	fz_check_err(&err);
	if (halo_contact_by_email(&cc, "at", "ann@acme.example", &match, &ct,
	    &err) == 0 && match == HALO_MATCH_ONE)
		halo_contact_clear(&ct);
	fz_check_err(&err);
	if (halo_client_by_domain(&cc, "at", "acme.example", &match, &org,
	    &err) == 0 && match == HALO_MATCH_ONE)
		halo_org_clear(&org);
	fz_check_err(&err);
	if (halo_ticket_get(&cc, "at", 7, &tk, &err) == 0) {
		if (tk.id != 7 || tk.summary == NULL ||
		    tk.n_fields > HALO_TICKET_FIELDS_MAX)
			abort();
		(void)halo_ticket_has_field(&tk, "CFOutlookConversationId");
		halo_ticket_clear(&tk);
	}
	fz_check_err(&err);
	(void)halo_find_by_message_id(&cc, "at", "<m@x>", &a, &b, &err);
	fz_check_err(&err);
	if (halo_list_statuses(&cc, "at", &list, &n, &err) == 0) {
		for (i = 0; i < n; i++)
			if (list[i].name == NULL)
				abort();
		halo_named_free(list, n);
	}
	fz_check_err(&err);
	if (halo_list_outcomes(&cc, "at", &list, &n, &err) == 0)
		halo_named_free(list, n);
	if (halo_list_ticket_types(&cc, "at", &list, &n, &err) == 0)
		halo_named_free(list, n);
	if (halo_status_states(&cc, "at", &list, &n, &known, &err) == 0) {
		size_t closed_n = 0;

		for (i = 0; i < n; i++)
			closed_n += list[i].closed;
		/* known means some, but not all, are closed */
		if (known && (closed_n == 0 || closed_n == n))
			abort();
		halo_named_free(list, n);
	}
	fz_check_err(&err);
	memset(&act, 0, sizeof(act));
	act.ticket_id = 7;
	act.outcome = "Email Received";
	act.new_status = 1;
	act.attachments = att;
	act.n_attachments = 2;
	act.att_results = res;
	if (halo_action_create(&cc, "at", &act, &a, &err) == 0)
		for (i = 0; i < 2; i++)
			if (res[i].why[sizeof(res[i].why) - 1] != '\0' ||
			    res[i].failed != (res[i].why[0] != '\0'))
				abort();
	fz_check_err(&err);
	if (halo_attachment_upload(&cc, "at", 7, 8, &att[0], &res[0], &err) == 1 &&
	    !res[0].failed)
		abort();
	fz_check_err(&err);
	if (halo_attachment_list(&cc, "at", 7, 8, &stored, &n, &err) == 0) {
		for (i = 0; i < n; i++)
			if (stored[i].filename == NULL || stored[i].id <= 0)
				abort();
		halo_stored_free(stored, n);
	}
	fz_check_err(&err);
	(void)halo_user_create(&cc, "at", "N", "n@acme.example", 10, 100, &a, &err);
	fz_check_err(&err);
	if (halo_client_main_site(&cc, "at", 10, &a, &err) == 0 && a <= 0)
		abort();
	fz_check_err(&err);
	if (halo_ticket_by_field(&cc, "at", "CFOutlookConversationId",
	    "00112233445566778899aabbccddeeff", true, &a, &err) == 0 && a <= 0)
		abort();
	fz_check_err(&err);
	if (fz_len < 4096) {
		char *v = malloc(fz_len + 1);

		if (v != NULL) {
			memcpy(v, fz_body, fz_len);
			v[fz_len] = '\0';
			(void)halo_conv_matches(v, "00112233445566778899aabbccddeeff");
			free(v);
		}
	}
	memset(&tn, 0, sizeof(tn));
	tn.summary = "s";
	tn.tickettype_id = 1;
	(void)halo_ticket_create(&cc, "at", &tn, &a, &err);
	fz_check_err(&err);
	halo_error_message(fz_status, (const char *)fz_body, fz_len, msg,
	    sizeof(msg));
	if (memchr(msg, '\0', sizeof(msg)) == NULL)
		abort();
	http_set_transport(NULL);
	return 0;
}
