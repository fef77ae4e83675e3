/*
 * test_worker.c - the worker's retry schedule, and thread match against the
 * Halo simulator: our index beats Halo's index beats the conversation key
 * beats the subject tag; and who may join a ticket (issue 11): the rule as
 * a table (join_decide()), and each match path refusing a stranger.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "http.h"
#include "simhelper.h"
#include "store.h"
#include "worker.h"
#include "worker_int.h"

/* Exponential from the base, doubled per attempt, capped at an hour;
 * jitter 0 / 128 / 255 gives 80% / ~100% / 120%. */
static void
test_backoff_schedule(void **state)
{
	static const struct {
		unsigned base;
		int attempts;
		unsigned char jitter;
		long want;
	} rows[] = {
		{ 15, 1, 0, 12 },  { 15, 1, 255, 18 }, { 15, 1, 128, 15 },
		{ 15, 2, 0, 24 },  { 15, 3, 0, 48 },   { 15, 4, 255, 144 },
		{ 15, 8, 0, 1536 }, { 15, 9, 0, 2880 }, { 15, 10, 0, 2880 },
		{ 15, 10, 255, 4320 }, { 15, 1000, 0, 2880 },
		{ 1, 1, 0, 1 },    { 1, 2, 0, 1 },     { 1, 3, 255, 4 },
		{ 3600, 1, 0, 2880 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		long got = worker_retry_delay(rows[i].base, rows[i].attempts, -1,
		    rows[i].jitter);
		if (got != rows[i].want)
			fail_msg("row %zu: base %u attempt %d jitter %u: got %ld,"
			    " want %ld", i, rows[i].base, rows[i].attempts,
			    rows[i].jitter, got, rows[i].want);
	}
}

/* Halo's Retry-After wins over the exponential schedule, in either
 * direction, capped at an hour; jitter adds at most one second. */
static void
test_retry_after(void **state)
{
	(void)state;
	assert_int_equal(worker_retry_delay(15, 8, 3, 0), 3);
	assert_int_equal(worker_retry_delay(15, 8, 3, 1), 4);
	assert_int_equal(worker_retry_delay(15, 1, 120, 0), 120);
	assert_int_equal(worker_retry_delay(15, 1, 0, 0), 0);
	assert_int_equal(worker_retry_delay(15, 1, 999999, 0), 3600);
}

/* ------------------------------------------------------ thread match */


#define CONV_KEY    "00112233445566778899aabbccddeeff"
#define HALO_MSGID  "<printer-2@acme.example>"  /* the fixture's ticket 501 */

/* One job's context against the simulator, with its own store. */
struct fx {
	char dir[PATH_MAX];
	struct worker w;
	struct conf_tenant t;
	struct worker_rate rate;
	time_t stamps[64];
	struct store_job job;
	char *irt[1];
	struct job_ctx ctx;
};


static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char db[PATH_MAX + 16], err[256];
	cJSON *reset;

	if (f == NULL || fixture_dir_make(f->dir, "test_worker") != 0)
		return -1;
	if ((reset = sim_post(&sim, "/_sim/reset", "{}")) == NULL)
		return -1;
	cJSON_Delete(reset);
	snprintf(db, sizeof(db), "%s/halo.db", f->dir);
	if ((f->w.store = store_open(db, err, sizeof(err))) == NULL)
		return -1;
	pthread_mutex_init(&f->w.lock, NULL);
	pthread_mutex_init(&f->rate.lock, NULL);
	f->rate.stamps = f->stamps;
	f->rate.cap = 64;
	f->rate.window = 300;
	f->t.name = "t";
	f->t.subject_tag = "[ID:{n}]";
	f->t.closed_tickets = CONF_CLOSED_APPEND;
	f->t.halo_request_max = 10 << 20;       /* conf.c's default */
	f->job.id = 1;
	f->job.tenant = "t";
	f->job.message_id = "<new@acme.example>";
	f->job.from_addr = "bob@acme.example";
	f->job.sender_auth = "aligned";
	f->job.job_mode = STORE_MODE_INTAKE;
	f->ctx.w = &f->w;
	f->ctx.job = &f->job;
	f->ctx.t = &f->t;
	f->ctx.rate = &f->rate;
	f->ctx.hc.halo_url = sim.base;
	f->ctx.hc.auth_url = sim.auth;
	f->ctx.hc.client_id = "halo-milter-native";
	f->ctx.hc.timeout_ms = 10000;
	snprintf(f->ctx.who, sizeof(f->ctx.who), "test: job 1");
	if ((f->ctx.token = sim_access_token(&sim, "alice@msp.example")) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	free(f->ctx.token);
	free(f->ctx.closed_ids);
	store_close(f->w.store);
	pthread_mutex_destroy(&f->w.lock);
	pthread_mutex_destroy(&f->rate.lock);
	fixture_dir_remove(f->dir);
	free(f);
	return 0;
}

/* Our index: a logged job MSGID (conversation CONV) went to TICKET. */
static void
logged(struct fx *f, const char *msgid, const char *conv, int64_t ticket)
{
	struct store_job_new jn = { 0 };
	struct store_result res = { 0 };
	enum store_status result;
	int64_t id;

	jn.tenant = "t";
	jn.message_id = msgid;
	jn.state = STORE_QUEUED;
	jn.agent = "alice@msp.example";
	jn.mode = "intake";
	jn.conv_key = conv;
	assert_int_equal(store_jobs_add(f->w.store, &jn, 1, &result, &id, NULL,
	    NULL), STORE_OK);
	assert_int_equal(result, STORE_OK);
	res.ticket_id = ticket;
	res.result = "appended";
	assert_int_equal(store_job_done(f->w.store, id, &res), STORE_OK);
}

/* The mail replies to MSGID. */
static void
replies_to(struct fx *f, const char *msgid)
{
	f->irt[0] = (char *)msgid;
	f->ctx.irt = f->irt;
	f->ctx.n_irt = 1;
}

/* The sender is Halo contact USER_ID of CLIENT_ID. */
static void
sent_by(struct fx *f, int64_t user_id, int64_t client_id)
{
	f->ctx.sender_kind = STORE_SENDER_CONTACT;
	f->ctx.user_id = user_id;
	f->ctx.client_id = client_id;
}

/* Run thread match; check the ticket and how it was found. */
static void
want_match(struct fx *f, int64_t ticket, const char *by)
{
	assert_int_equal(thread_find(&f->ctx), STEP_OK);
	assert_int_equal(f->ctx.ticket_id, ticket);
	if (by == NULL)
		assert_null(f->ctx.matched_by);
	else
		assert_string_equal(f->ctx.matched_by, by);
}

/* 1 beats 2: our index wins over a ticket Halo has for the same Message-ID. */
static void
test_match_index_beats_halo(void **state)
{
	struct fx *f = *state;

	const char *who[] = { "Bob@Acme.example" };

	logged(f, HALO_MSGID, NULL, 777);
	/* a participant of 777: joining costs no request */
	assert_int_equal(store_participants_add(f->w.store, "t", 777, who, 1),
	    STORE_OK);
	replies_to(f, HALO_MSGID);
	want_match(f, 777, "message-id");
	assert_int_equal(f->w.stats.requests, 0);   /* Halo was not asked */
}

/* 2 beats 3: Halo's index wins over our conversation key. */
static void
test_match_halo_beats_conversation(void **state)
{
	struct fx *f = *state;

	logged(f, "<earlier@acme.example>", CONV_KEY, 778);
	f->job.conv_key = CONV_KEY;
	replies_to(f, HALO_MSGID);
	sent_by(f, 1000, 10);                   /* ticket 501's own contact */
	want_match(f, 501, "halo-message-id");
}

/* 3 beats 4: the conversation key wins over a subject tag. */
static void
test_match_conversation_beats_tag(void **state)
{
	struct fx *f = *state;

	logged(f, "<earlier@acme.example>", CONV_KEY, 778);
	f->job.conv_key = CONV_KEY;
	const char *who[] = { "bob@acme.example" };

	f->job.subject = "RE: VPN broken [ID:502]";
	sent_by(f, 1003, 11);                   /* ticket 502's own contact */
	assert_int_equal(store_participants_add(f->w.store, "t", 778, who, 1),
	    STORE_OK);
	want_match(f, 778, "conversation");
}

/* 4: a subject tag from the ticket's own contact joins it; from a contact
 * of another client it is ignored. */
static void
test_match_subject_tag(void **state)
{
	struct fx *f = *state;

	f->job.subject = "RE: VPN broken [ID:502]";
	sent_by(f, 1003, 11);
	want_match(f, 502, "subject-tag");
	f->ctx.ticket_id = 0;
	f->ctx.matched_by = NULL;
	sent_by(f, 1000, 10);                   /* ticket 501's contact */
	want_match(f, 0, NULL);
}

/* Nothing matches: no ticket, and the Message-ID unknown to both indexes
 * was asked of Halo. */
static void
test_match_none(void **state)
{
	struct fx *f = *state;

	replies_to(f, "<unknown@acme.example>");
	want_match(f, 0, NULL);
	assert_int_equal(f->w.stats.requests, 1);
}

/* A reply to a mail the Outlook add-in logged: our index and Halo's
 * action index know nothing of it, the add-in's CFOutlookInternetMessageId
 * on the ticket does. */
static void
test_match_addin_ticket(void **state)
{
	struct fx *f = *state;
	struct halo_customfield cf[] = {
		{ "CFOutlookInternetMessageId", "<addin-7@acme.example>" },
	};
	struct halo_ticket_new tn = {
		.summary = "logged by the add-in", .tickettype_id = 1,
		.client_id = 10, .site_id = 100, .user_id = 1000,
		.customfields = cf, .n_customfields = 1,
	};
	struct halo_err err;
	int64_t id = 0;

	assert_int_equal(halo_ticket_create(&f->ctx.hc, f->ctx.token, &tn, &id,
	    &err), 0);
	f->t.cf_message_id = "CFOutlookInternetMessageId";
	f->t.cf_conversation_id = "CFOutlookConversationId";
	sent_by(f, 1000, 10);
	replies_to(f, "<addin-7@acme.example>");
	want_match(f, id, "halo-cf-message-id");
}

/* The closed statuses: from excludeclosed (8 and 9), and when Halo
 * ignores it only the built-in Closed (9); the list is kept, so a second
 * job asks nothing. */
static void
test_closed_statuses(void **state)
{
	struct fx *f = *state;
	int64_t open = 0;
	uint64_t before;
	cJSON *r;

	f->t.closed_tickets = CONF_CLOSED_REOPEN;
	assert_int_equal(closed_statuses(&f->ctx, &open), STEP_OK);
	assert_int_equal(f->ctx.hc.n_closed_status_ids, 2);
	assert_int_equal(f->ctx.hc.closed_status_ids[0], 8);
	assert_int_equal(f->ctx.hc.closed_status_ids[1], 9);
	assert_int_equal(open, 1);
	before = f->w.stats.requests;
	assert_int_equal(closed_statuses(&f->ctx, &open), STEP_OK);
	assert_int_equal(f->w.stats.requests, before);      /* cached */

	f->rate.statuses_at = 0;                            /* stale */
	r = sim_post(&sim, "/_sim/faults", "{\"status_excludeclosed\": \"ignore\"}");
	cJSON_Delete(r);
	assert_int_equal(closed_statuses(&f->ctx, &open), STEP_OK);
	assert_int_equal(f->ctx.hc.n_closed_status_ids, 1);
	assert_int_equal(f->ctx.hc.closed_status_ids[0], 9);
	free(f->rate.closed_ids);
	f->rate.closed_ids = NULL;
}

/* Two workers resolving one sender at once, Halo slow: one worker asks
 * for the address and for the domain, the other waits and reads the cached
 * answers (issue 16: single-flight lookups). */
struct resolver {
	struct job_ctx ctx;
	enum step step;
};

static void *
resolve_thread(void *arg)
{
	struct resolver *r = arg;

	r->step = sender_resolve(&r->ctx);
	return NULL;
}

static void
test_sender_single_flight(void **state)
{
	struct fx *f = *state;
	struct resolver r[2];
	pthread_t th[2];
	cJSON *resp;
	int i;

	f->t.sender_cache_ttl = 300;
	/* no contact for this address: the address, then the domain */
	f->job.from_addr = "newcomer@acme.example";
	resp = sim_post(&sim, "/_sim/faults", "{\"latency_ms\": 300}");
	cJSON_Delete(resp);
	for (i = 0; i < 2; i++) {
		r[i].ctx = f->ctx;
		assert_int_equal(pthread_create(&th[i], NULL, resolve_thread,
		    &r[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	resp = sim_post(&sim, "/_sim/faults", "{\"latency_ms\": 0}");
	cJSON_Delete(resp);
	for (i = 0; i < 2; i++) {
		assert_int_equal(r[i].step, STEP_OK);
		assert_int_equal(r[i].ctx.sender_kind, STORE_SENDER_CLIENT);
		assert_int_equal(r[i].ctx.client_id, 10);
		free(r[i].ctx.contact_name);
		free(r[i].ctx.client_name);
	}
	/* one lookup of the address and one of the domain, not two each */
	assert_int_equal(f->w.stats.requests, 2);
}

/* A mail whose attachments exceed one request (issue 16: Halo answered
 * 413 and the mail was never logged): what fits goes with the note, the
 * rest one request each, a file too large for any request is named in the
 * note; Halo never sees a request over halo_request_max. */
static void
test_post_split_requests(void **state)
{
	static struct conf gconf;
	struct fx *f = *state;
	struct store_job_new jn = { 0 };
	struct store_job *claimed = NULL;
	struct mime_attachment att[3];
	struct mime_message m;
	struct halo_stored *list;
	struct halo_err err;
	enum store_status result;
	unsigned char *a, *b, *c;
	size_t n, i;
	int64_t id;
	bool got_a = false, got_b = false, got_c = false;

	a = malloc(400 * 1024);
	b = malloc(400 * 1024);
	c = malloc(900 * 1024);
	assert_true(a != NULL && b != NULL && c != NULL);
	memset(a, 'a', 400 * 1024);
	memset(b, 'b', 400 * 1024);
	memset(c, 'c', 900 * 1024);
	memset(att, 0, sizeof(att));
	memset(&m, 0, sizeof(m));
	att[0].filename = "a.bin";
	att[0].content_type = "application/octet-stream";
	att[0].data = a;
	att[0].len = att[0].original_len = 400 * 1024;
	att[1] = att[0];
	att[1].filename = "b.bin";
	att[1].data = b;
	att[2] = att[0];
	att[2].filename = "c.bin";
	att[2].data = c;
	att[2].len = att[2].original_len = 900 * 1024;
	m.text = "three files";
	m.attachments = att;
	m.n_attachments = 3;
	f->t.attachments = true;
	f->t.append_outcome = "Email Received";
	f->t.halo_request_max = 1 << 20;

	/* a claimed job, as the pool hands one over, under a 300 s lease */
	gconf.job_lease = 300;
	f->w.conf = &gconf;
	jn.tenant = "t";
	jn.message_id = "<big@acme.example>";
	jn.state = STORE_QUEUED;
	jn.agent = "alice@msp.example";
	jn.mode = "intake";
	assert_int_equal(store_jobs_add(f->w.store, &jn, 1, &result, &id, NULL,
	    NULL), STORE_OK);
	assert_int_equal(store_job_claim(f->w.store, time(NULL), 300,
	    &claimed), STORE_OK);
	f->ctx.job = claimed;
	f->ctx.ticket_id = 501;
	f->ctx.create = false;

	assert_int_equal(post_message(&f->ctx, &m), STEP_OK);
	assert_int_equal(f->ctx.posted_ticket, 501);
	assert_true(f->ctx.posted_action > 0);
	assert_int_equal(f->ctx.n_att_failed, 0);
	/* a.bin with the note, b.bin on its own: both stored */
	assert_int_equal(halo_attachment_list(&f->ctx.hc, f->ctx.token, 501,
	    f->ctx.posted_action, &list, &n, &err), 0);
	for (i = 0; i < n; i++) {
		got_a |= strcmp(list[i].filename, "a.bin") == 0;
		got_b |= strcmp(list[i].filename, "b.bin") == 0;
		got_c |= strcmp(list[i].filename, "c.bin") == 0;
	}
	halo_stored_free(list, n);
	assert_true(got_a);
	assert_true(got_b);
	assert_false(got_c);
	/* append + one upload: two requests, none refused as too large */
	assert_int_equal(f->w.stats.requests, 2);
	/* c.bin, too large for any request, is named in the note */
	{
		char *html = post_body_html(&f->ctx, &m, false);

		assert_non_null(html);
		assert_non_null(strstr(html, "<li>c.bin (921600 bytes): too large"
		    " for one Halo request"));
		assert_null(strstr(html, "a.bin"));
		free(html);
	}
	f->ctx.job = &f->job;
	f->w.conf = NULL;
	store_job_free(claimed);
	free(a);
	free(b);
	free(c);
}

/* The simulator's /_sim/state, parsed; NULL on failure. */
static cJSON *
sim_state(void)
{
	struct http_request req = { 0 };
	struct http_response resp;
	char url[512];
	cJSON *j = NULL;

	snprintf(url, sizeof(url), "%s/_sim/state", sim.base);
	req.method = "GET";
	req.url = url;
	req.total_timeout_ms = 10000;
	req.max_response = 16 << 20;
	if (http_do(&req, &resp) == HTTP_OK)
		j = cJSON_ParseWithLength(resp.body, resp.body_len);
	http_response_clear(&resp);
	return j;
}

/* A retry of a job already in Halo uploads only what the action does not
 * hold; Halo refusing keeps it a retry with the reason, and at the end of
 * the budget a private note names the file and the job is done. */
static void
test_attachments_again(void **state)
{
	struct fx *f = *state;
	struct mime_attachment att[2];
	struct mime_message m;
	struct halo_attachment one = { "a.txt", "text/plain",
	    (const unsigned char *)"aaa", 3, false, false };
	struct halo_attach_result res;
	struct halo_action_new act = {
		.ticket_id = 501, .outcome = "Email Received", .note_html = "<p>x</p>",
	};
	struct halo_stored *list;
	struct halo_err err;
	size_t n, i, a = 0, b = 0;
	int64_t action;
	cJSON *r, *st, *it;
	int notes = 0;

	memset(att, 0, sizeof(att));
	memset(&m, 0, sizeof(m));
	att[0].filename = "a.txt";
	att[0].content_type = "text/plain";
	att[0].data = (unsigned char *)"aaa";
	att[0].len = att[0].original_len = 3;
	att[1].filename = "b.txt";
	att[1].content_type = "text/plain";
	att[1].data = (unsigned char *)"bbbb";
	att[1].len = att[1].original_len = 4;
	m.text = "x";
	m.attachments = att;
	m.n_attachments = 2;
	f->t.attachments = true;
	f->t.append_outcome = "Email Received";
	f->job.attempts = 1;
	/* the action is in Halo with a.txt only */
	assert_int_equal(halo_action_create(&f->ctx.hc, f->ctx.token, &act,
	    &action, &err), 0);
	assert_int_equal(halo_attachment_upload(&f->ctx.hc, f->ctx.token, 501,
	    action, &one, &res, &err), 0);
	f->ctx.posted_ticket = 501;
	f->ctx.posted_action = action;

	r = sim_post(&sim, "/_sim/faults", "{\"attachment_fail\": \"all\"}");
	cJSON_Delete(r);
	assert_int_equal(post_attachments_again(&f->ctx, &m), STEP_RETRY);
	assert_int_equal(f->ctx.n_att_failed, 1);
	assert_non_null(strstr(f->ctx.reason, "b.txt (Unable to save attachment"));
	assert_null(strstr(f->ctx.reason, "a.txt"));

	r = sim_post(&sim, "/_sim/faults", "{\"attachment_fail\": \"off\"}");
	cJSON_Delete(r);
	f->ctx.n_att_failed = 0;
	f->ctx.att_failed[0] = '\0';
	f->job.attempts = 2;
	assert_int_equal(post_attachments_again(&f->ctx, &m), STEP_OK);
	assert_int_equal(halo_attachment_list(&f->ctx.hc, f->ctx.token, 501,
	    action, &list, &n, &err), 0);
	for (i = 0; i < n; i++) {
		a += strcmp(list[i].filename, "a.txt") == 0;
		b += strcmp(list[i].filename, "b.txt") == 0;
	}
	halo_stored_free(list, n);
	assert_int_equal(a, 1);                 /* not uploaded twice */
	assert_int_equal(b, 1);

	/* the budget spent: a private note, and done */
	att[1].filename = "c<x>.txt";
	r = sim_post(&sim, "/_sim/faults", "{\"attachment_fail\": \"all\"}");
	cJSON_Delete(r);
	f->job.attempts = WORKER_ATTACH_TRIES;
	assert_int_equal(post_attachments_again(&f->ctx, &m), STEP_OK);
	assert_non_null(strstr(f->ctx.att_note, "c<x>.txt"));
	st = sim_post(&sim, "/_sim/faults", "{\"attachment_fail\": \"off\"}");
	cJSON_Delete(st);
	st = sim_state();
	assert_non_null(st);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(st, "actions")) {
		const cJSON *h = cJSON_GetObjectItem(it, "hiddenfromuser");
		const cJSON *note = cJSON_GetObjectItem(it, "note_html");

		if (cJSON_IsTrue(h) && cJSON_IsString(note) &&
		    strstr(note->valuestring, "c&lt;x&gt;.txt") != NULL)
			notes++;
	}
	cJSON_Delete(st);
	assert_int_equal(notes, 1);
}

/* ---------------------------------------------------- what Halo gets */

/* The mail's Date, bounded by its arrival: a Date ahead of arrival by
 * more than WORKER_DATE_AHEAD, or behind by more than WORKER_DATE_BEHIND,
 * or no date at all, is the arrival. */
static void
test_mail_date(void **state)
{
	/* 2026-11-24T10:00:00Z */
	const time_t arrived = 1795514400;
	static const struct {
		const char *date;
		const char *want;
	} rows[] = {
		{ "Tue, 24 Nov 2026 10:00:00 +0000", "2026-11-24T10:00:00Z" },
		{ "Tue, 24 Nov 2026 09:30:05 +0100", "2026-11-24T08:30:05Z" },
		{ "24 Nov 2026 04:00 -0500", "2026-11-24T09:00:00Z" },
		{ "Mon, 23 Nov 2026 10:00:00 GMT", "2026-11-23T10:00:00Z" },
		{ "Sat, 31 Oct 2026 10:00:00 +0000", "2026-10-31T10:00:00Z" },
		/* more than 30 days old: arrival */
		{ "Thu, 01 Jan 2015 10:00:00 +0000", "2026-11-24T10:00:00Z" },
		/* ahead by more than a few minutes: arrival */
		{ "Tue, 24 Nov 2026 10:10:00 +0000", "2026-11-24T10:00:00Z" },
		{ "Tue, 24 Nov 2026 10:04:00 +0000", "2026-11-24T10:04:00Z" },
		{ "yesterday", "2026-11-24T10:00:00Z" },
		{ "Tue, 24 Foo 2026 10:00:00 +0000", "2026-11-24T10:00:00Z" },
		{ "Tue, 24 Nov 2026 25:00:00 +0000", "2026-11-24T10:00:00Z" },
		{ NULL, "2026-11-24T10:00:00Z" },
	};
	char out[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		post_mail_when(rows[i].date, arrived, out);
		if (strcmp(out, rows[i].want) != 0)
			fail_msg("row %zu (%s): got %s, want %s", i,
			    rows[i].date ? rows[i].date : "NULL", out, rows[i].want);
	}
}

/* The note lists every part not uploaded with mime_skip_reason() (no
 * size for a part never read), the unlisted count, and with attachments
 * off also the files that were not sent. */
static void
test_note_lists_parts(void **state)
{
	struct fx *f = *state;
	struct mime_attachment att[4];
	struct mime_message m;
	char *html;

	memset(att, 0, sizeof(att));
	memset(&m, 0, sizeof(m));
	att[0].filename = "ok.txt";
	att[0].data = (unsigned char *)"x";
	att[0].len = 1;
	att[0].original_len = 1;
	att[1].filename = "huge.iso";
	att[1].skip = MIME_SKIP_SIZE;
	att[1].over_cap = true;
	att[1].original_len = 999999;
	att[2].filename = "part-250.bin";
	att[2].skip = MIME_SKIP_LIMIT;
	att[3].filename = "broken<b>.pdf";
	att[3].skip = MIME_SKIP_UNDECODABLE;
	att[3].original_len = 1234;
	m.text = "hello";
	m.attachments = att;
	m.n_attachments = 4;
	m.n_unlisted = 7;
	f->t.attachments = true;
	html = post_body_html(&f->ctx, &m, false);
	assert_non_null(html);
	assert_null(strstr(html, "ok.txt"));
	assert_non_null(strstr(html, "<li>huge.iso (999999 bytes): "));
	assert_non_null(strstr(html, mime_skip_reason(MIME_SKIP_SIZE)));
	assert_non_null(strstr(html, "<li>part-250.bin: "));
	assert_non_null(strstr(html, mime_skip_reason(MIME_SKIP_LIMIT)));
	assert_non_null(strstr(html, "broken&lt;b&gt;.pdf (1234 bytes): "));
	assert_non_null(strstr(html, mime_skip_reason(MIME_SKIP_UNDECODABLE)));
	assert_non_null(strstr(html, "and 7 more parts not listed"));
	free(html);

	/* attachments = no: the file that would have gone is listed too */
	f->t.attachments = false;
	m.n_unlisted = 0;
	m.n_attachments = 1;
	html = post_body_html(&f->ctx, &m, false);
	assert_non_null(strstr(html, "<li>ok.txt (1 bytes): attachments are not"
	    " uploaded"));
	free(html);
	/* nothing left out: no list */
	f->t.attachments = true;
	html = post_body_html(&f->ctx, &m, false);
	assert_null(strstr(html, "not uploaded"));
	free(html);
}

/* ---------------------------------------------------- who may join */

/* The rule as a table: sender facts x ticket facts x config. */
static void
test_join_rule(void **state)
{
	static const long wide[] = { 99 };
	static const struct {
		const char *name;
		bool agent, authentic, participant, contact, domain;
		int64_t user, client;
		bool owner_known;
		int64_t t_user, t_client;
		bool widen_clients, domain_members;
		enum join_verdict want;
	} rows[] = {
		{ "agent, authenticated", true, false, false, false, false, 0, 0,
		    false, 0, 0, false, false, JOIN_AGENT },
		{ "spoofed From:, even a participant", false, false, true, true,
		    false, 5, 10, true, 5, 10, false, false, JOIN_UNAUTHENTICATED },
		{ "participant (a Cc'd third party)", false, true, true, false,
		    false, 0, 0, false, 0, 0, false, false, JOIN_PARTICIPANT },
		{ "stranger, unknown domain", false, true, false, false, false, 0,
		    0, false, 0, 0, false, false, JOIN_NOT_PARTICIPANT },
		{ "contact, owner unknown yet", false, true, false, true, false,
		    5, 10, false, 0, 0, false, false, JOIN_NEED_OWNER },
		{ "the ticket's user", false, true, false, true, false, 5, 10,
		    true, 5, 11, false, false, JOIN_USER },
		{ "a contact of the ticket's client", false, true, false, true,
		    false, 6, 10, true, 5, 10, false, false, JOIN_CLIENT_CONTACT },
		{ "a contact of another client", false, true, false, true, false,
		    7, 12, true, 5, 10, false, false, JOIN_NOT_PARTICIPANT },
		{ "domain match to the ticket's client", false, true, false, false,
		    true, 0, 10, true, 5, 10, false, false, JOIN_NOT_PARTICIPANT },
		{ "domain match, join_domain_members", false, true, false, false,
		    true, 0, 10, true, 5, 10, false, true, JOIN_DOMAIN_MEMBER },
		{ "domain match to another client, join_domain_members", false,
		    true, false, false, true, 0, 12, true, 5, 10, false, true,
		    JOIN_NOT_PARTICIPANT },
		{ "catch-all (fallback) sender", false, true, false, false, false,
		    0, 77, true, 0, 77, false, true, JOIN_NOT_PARTICIPANT },
		{ "contact of a join_clients client", false, true, false, true,
		    false, 8, 99, false, 0, 0, true, false, JOIN_WIDE_CLIENT },
		{ "domain match of a join_clients client", false, true, false,
		    false, true, 0, 99, true, 5, 10, true, false,
		    JOIN_NOT_PARTICIPANT },
		{ "contact, ticket gone (owner 0)", false, true, false, true,
		    false, 5, 10, true, 0, 0, false, false, JOIN_NOT_PARTICIPANT },
	};
	struct join_facts jf;
	enum join_verdict got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&jf, 0, sizeof(jf));
		jf.agent_outbound = rows[i].agent;
		jf.authentic = rows[i].authentic;
		jf.participant = rows[i].participant;
		jf.sender_contact = rows[i].contact;
		jf.sender_domain = rows[i].domain;
		jf.user_id = rows[i].user;
		jf.client_id = rows[i].client;
		jf.owner_known = rows[i].owner_known;
		jf.ticket_user = rows[i].t_user;
		jf.ticket_client = rows[i].t_client;
		if (rows[i].widen_clients) {
			jf.join_clients = wide;
			jf.n_join_clients = 1;
		}
		jf.join_domain_members = rows[i].domain_members;
		got = join_decide(&jf);
		if (got != rows[i].want)
			fail_msg("row %zu (%s): got %s, want %s", i, rows[i].name,
			    join_name(got), join_name(rows[i].want));
	}
	assert_true(join_allows(JOIN_PARTICIPANT));
	assert_false(join_allows(JOIN_NEED_OWNER));
	assert_false(join_allows(JOIN_NOT_PARTICIPANT));
}

/* Run thread match on a mail that may join nothing: STEP (STEP_SKIP when
 * it may not open a ticket either), no ticket, a note naming WHY. */
static void
want_refused(struct fx *f, enum step step, const char *why)
{
	f->ctx.refused_ticket = 0;
	f->ctx.join_note[0] = '\0';
	f->ctx.reason[0] = '\0';
	assert_int_equal(thread_find(&f->ctx), step);
	assert_int_equal(f->ctx.ticket_id, 0);
	assert_non_null(strstr(f->ctx.join_note, why));
	if (step == STEP_SKIP)
		assert_non_null(strstr(f->ctx.reason, why));
}

/* A stranger quoting ticket 777's Message-ID does not join it, and the job
 * says why; an unauthenticated sender does not join even as a participant;
 * authenticated, the participant does. */
static void
test_join_refused_paths(void **state)
{
	struct fx *f = *state;
	const char *who[] = { "bob@acme.example" };

	logged(f, "<ours@acme.example>", CONV_KEY, 777);
	replies_to(f, "<ours@acme.example>");
	f->job.from_addr = "mallory@evil.example";
	f->job.conv_key = CONV_KEY;
	f->job.job_mode = STORE_MODE_INTAKE;
	f->ctx.sender_kind = STORE_SENDER_NONE;
	want_refused(f, STEP_SKIP, "not-a-participant: ticket 777");
	assert_int_equal(f->w.stats.requests, 1);   /* Halo's index only */

	/* a contact of another client: a new ticket may be opened */
	sent_by(f, 1003, 11);
	f->job.from_addr = "carol@globex.example";
	want_refused(f, STEP_OK, "not-a-participant: ticket 777");

	assert_int_equal(store_participants_add(f->w.store, "t", 777, who, 1),
	    STORE_OK);
	f->job.from_addr = "bob@acme.example";
	f->job.sender_auth = "none";
	want_refused(f, STEP_OK, "unauthenticated-sender: ticket 777");
	f->ctx.refused_ticket = 0;
	f->job.sender_auth = "dkim";
	want_match(f, 777, "message-id");
}

/* The catch-all client's sender never joins a catch-all ticket by tag;
 * a contact of a join_clients client may join any ticket. */
static void
test_join_fallback_and_widening(void **state)
{
	struct fx *f = *state;
	long wide[] = { 10 };

	f->t.fallback_client_id = 11;           /* ticket 502's client */
	f->job.subject = "RE: VPN broken [ID:502]";
	f->job.from_addr = "mallory@evil.example";
	f->ctx.sender_kind = STORE_SENDER_CLIENT;
	f->ctx.client_id = 11;
	want_match(f, 0, NULL);
	assert_int_equal(f->w.stats.requests, 0);   /* not even asked */
	f->ctx.refused_ticket = 0;
	f->t.join_clients = wide;
	f->t.n_join_clients = 1;
	f->job.from_addr = "bob@acme.example";
	sent_by(f, 1000, 10);                   /* ticket 501's contact */
	want_match(f, 502, "subject-tag");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test_setup_teardown(test_match_index_beats_halo,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_halo_beats_conversation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_conversation_beats_tag,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_subject_tag, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_match_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_addin_ticket, setup,
		    teardown),
		cmocka_unit_test(test_mail_date),
		cmocka_unit_test_setup_teardown(test_closed_statuses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_attachments_again, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_note_lists_parts, setup,
		    teardown),
		cmocka_unit_test(test_join_rule),
		cmocka_unit_test_setup_teardown(test_post_split_requests, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sender_single_flight, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_join_refused_paths, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_join_fallback_and_widening,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, sim_group_setup, sim_group_teardown);
}
