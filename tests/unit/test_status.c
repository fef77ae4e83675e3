/*
 * test_status.c - unit tests for the Outlook pane's pure parts: the raw
 * HMAC (RFC 4231 vector), X-Halo-Token (a known vector, checking, lengths),
 * the status API's parameter check and JSON answer, the ticket link, and
 * the add-in manifests (stable ids, URLs from public_url, well-formed
 * JSON); plus the store's v5 result columns the answer is built from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fixture.h"
#include "conf.h"
#include "crypto.h"
#include "manifest.h"
#include "status.h"
#include "store.h"

/* RFC 4231 test case 2: key "Jefe". */
static void
test_hmac_vector(void **state)
{
	static const char want[] =
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	static const char data[] = "what do ya want for nothing?";
	uint8_t mac[CRYPTO_HMAC_LEN];
	char hex[65];
	int i;

	(void)state;
	assert_int_equal(crypto_hmac((const uint8_t *)"Jefe", 4, data,
	    sizeof(data) - 1, mac), 0);
	for (i = 0; i < CRYPTO_HMAC_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(hex, want);
	assert_int_equal(crypto_hmac_hex((const uint8_t *)"Jefe", 4, data,
	    sizeof(data) - 1, hex), 0);
	assert_string_equal(hex, want);
}

/* The key 00 01 .. 1f. */
static void
test_key(uint8_t key[CRYPTO_KEY_LEN])
{
	int i;

	for (i = 0; i < CRYPTO_KEY_LEN; i++)
		key[i] = (uint8_t)i;
}

/* A job as the status API loads it. */
static struct store_job
token_job(int64_t id, const char *tenant, const char *mid, const char *rcpts)
{
	struct store_job job;

	memset(&job, 0, sizeof(job));
	job.id = id;
	job.tenant = (char *)tenant;
	job.message_id = (char *)mid;
	job.recipients = (char *)rcpts;
	return job;
}

static void
test_token_vector(void **state)
{
	uint8_t key[CRYPTO_KEY_LEN];
	char tok[STATUS_TOKEN_LEN + 1], other[STATUS_TOKEN_LEN + 1];
	struct store_job job = token_job(42, "acme", "<first@client.example>",
	    "support@acme.example"), job2;

	(void)state;
	test_key(key);
	/* python3: base64.urlsafe_b64encode(hmac.new(bytes(range(32)),
	 * b"job\nacme\n42\n<first@client.example>\nsupport@acme.example",
	 * "sha256").digest()).rstrip(b"=") */
	assert_int_equal(status_token(key, "acme", 42, "<first@client.example>",
	    "support@acme.example", tok), 0);
	assert_string_equal(tok, "42.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4");
	assert_true(status_token_job(tok) == 42);
	assert_true(status_token_check(key, &job, "acme",
	    "<first@client.example>", tok));
	/* asked as another tenant or Message-ID: no */
	assert_false(status_token_check(key, &job, "globex",
	    "<first@client.example>", tok));
	assert_false(status_token_check(key, &job, "acme",
	    "<second@client.example>", tok));
	/* another job, even with the same Message-ID: no (issue 11) */
	job2 = token_job(43, "acme", "<first@client.example>",
	    "support@acme.example");
	assert_false(status_token_check(key, &job2, "acme",
	    "<first@client.example>", tok));
	/* the same job id delivered to other mailboxes: no */
	job2 = token_job(42, "acme", "<first@client.example>",
	    "other@acme.example");
	assert_false(status_token_check(key, &job2, "acme",
	    "<first@client.example>", tok));
	key[0] ^= 1;
	assert_false(status_token_check(key, &job, "acme",
	    "<first@client.example>", tok));
	key[0] ^= 1;
	/* the separator keeps "a" + "b\nc" apart from "a\nb" + "c" */
	assert_int_equal(status_token(key, "ac", 42, "me<x>", NULL, other), 0);
	assert_string_not_equal(other, tok);
	assert_false(status_token_check(key, &job, "acme",
	    "<first@client.example>", NULL));
	assert_false(status_token_check(key, &job, "acme",
	    "<first@client.example>", ""));
	assert_false(status_token_check(key, NULL, "acme",
	    "<first@client.example>", tok));
	assert_int_equal(status_token(key, "", 42, "<a@b>", NULL, other), -1);
	assert_string_equal(other, "");
	assert_int_equal(status_token(key, "acme", 42, "", NULL, other), -1);
	assert_int_equal(status_token(key, "a\nb", 42, "<a@b>", NULL, other), -1);
	assert_int_equal(status_token(key, NULL, 42, "<a@b>", NULL, other), -1);
	assert_int_equal(status_token(key, "acme", 0, "<a@b>", NULL, other), -1);
	/* job ids read from tokens */
	assert_true(status_token_job("7.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4")
	    == 7);
	assert_true(status_token_job("07.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4")
	    == 0);
	assert_true(status_token_job(".xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4")
	    == 0);
	assert_true(status_token_job("7.short") == 0);
	assert_true(status_token_job("xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4")
	    == 0);
	assert_true(status_token_job(
	    "1234567890123456789.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4") == 0);
	assert_true(status_token_job(NULL) == 0);
}

static void
test_params(void **state)
{
	static const char tok[] = "42.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4";
	char long_mid[STATUS_MSGID_MAX + 8];

	(void)state;
#define OK(t, m, k) status_params_ok(t, strlen(t), m, strlen(m), k, strlen(k))
	assert_true(OK("acme", "<a@b>", tok));
	assert_true(OK("tenant-1.x_y", "<first@client.example>", tok));
	assert_false(OK("", "<a@b>", tok));
	assert_false(OK("ac me", "<a@b>", tok));
	assert_false(OK("acme", "a@b", tok));
	assert_false(OK("acme", "<a b>", tok));
	assert_false(OK("acme", "<>", tok));
	assert_false(OK("acme", "<a@b>", "short"));
	assert_false(OK("acme", "<a@b>",
	    "42.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC="));
	assert_false(OK("acme", "<a@b>",
	    "xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4"));    /* no job */
	assert_false(OK("acme", "<a@b>",
	    "0.xf8pD4XMutTQ6IwuJ0EmLwJR9t-gTar7ddcXpzFPtC4"));
	assert_false(OK("acme", "<a@\xc3\xa9>", tok));
#undef OK
	/* an embedded NUL: the length says more than the string */
	assert_false(status_params_ok("acme", 5, "<a@b>", 5, tok, 46));
	assert_false(status_params_ok("acme", 4, "<a@b>", 6, tok, 46));
	assert_false(status_params_ok(NULL, 0, "<a@b>", 5, tok, 46));
	memset(long_mid, 'a', sizeof(long_mid) - 1);
	long_mid[0] = '<';
	long_mid[STATUS_MSGID_MAX] = '>';
	long_mid[STATUS_MSGID_MAX + 1] = '\0';
	assert_false(status_params_ok("acme", 4, long_mid, strlen(long_mid),
	    tok, 46));
	long_mid[STATUS_MSGID_MAX - 1] = '>';
	long_mid[STATUS_MSGID_MAX] = '\0';
	assert_true(status_params_ok("acme", 4, long_mid, strlen(long_mid),
	    tok, 46));
}

static void
test_ticket_url(void **state)
{
	char *u;

	(void)state;
	u = status_ticket_url("https://acme.halopsa.com/", 1234);
	assert_string_equal(u, "https://acme.halopsa.com/ticket?id=1234");
	free(u);
	u = status_ticket_url("https://halo.example.org", 7);
	assert_string_equal(u, "https://halo.example.org/ticket?id=7");
	free(u);
	assert_null(status_ticket_url(NULL, 7));
	assert_null(status_ticket_url("https://x", 0));
}

/* A parsed status_json() answer for JOB. */
static cJSON *
json_of(const struct store_job *job)
{
	char *text = status_json(job, "https://acme.halopsa.com");
	cJSON *j;

	assert_non_null(text);
	j = cJSON_Parse(text);
	free(text);
	assert_non_null(j);
	return j;
}

static const char *
str_at(const cJSON *j, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItem(j, a);

	if (b != NULL)
		v = cJSON_GetObjectItem(v, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
test_json(void **state)
{
	struct store_job job;
	cJSON *j, *t;

	(void)state;
	memset(&job, 0, sizeof(job));
	job.id = 12;
	job.tenant = "acme";
	job.message_id = "<a@b>";
	job.from_addr = "alice@client.example";
	job.subject = "Printer <jammed> & \"stuck\"";
	job.created = 1700000000;
	job.updated = 1700000060;

	/* created, by a contact */
	job.state = STORE_DONE;
	job.result = "created";
	job.ticket_id = 1000;
	job.summary = "Printer <jammed>";
	job.ticket_status = "reopened";
	job.sender = "contact";
	job.contact = "Alice";
	job.contact_id = 21;
	job.client = "Client Ltd";
	job.client_id = 15;
	j = json_of(&job);
	assert_string_equal(str_at(j, "state", NULL), "created");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "settled")));
	assert_string_equal(str_at(j, "sender", "match"), "contact");
	assert_string_equal(str_at(j, "subject", NULL), job.subject);
	t = cJSON_GetObjectItem(j, "ticket");
	assert_int_equal(cJSON_GetObjectItem(t, "id")->valueint, 1000);
	assert_string_equal(str_at(t, "summary", NULL), "Printer <jammed>");
	assert_string_equal(str_at(t, "status", NULL), "reopened");
	assert_string_equal(str_at(t, "url", NULL),
	    "https://acme.halopsa.com/ticket?id=1000");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(j, "sender"), "contact"), "id")->valueint, 21);
	assert_string_equal(str_at(j, "received", NULL), "2023-11-14T22:13:20Z");
	cJSON_Delete(j);

	/* appended, from an unknown sender */
	job.result = "appended";
	job.sender = "none";
	job.contact = NULL;
	job.client = NULL;
	job.contact_id = job.client_id = 0;
	j = json_of(&job);
	assert_string_equal(str_at(j, "state", NULL), "appended");
	assert_string_equal(str_at(j, "sender", "match"), "unknown");
	assert_non_null(str_at(j, "sender", "why"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
	    "sender"), "contact")));
	cJSON_Delete(j);

	/* skipped: no ticket, the reason says why the sender is unknown */
	job.state = STORE_SKIPPED;
	job.result = NULL;
	job.ticket_id = 0;
	job.sender = NULL;
	job.reason = "unknown-sender (domain claimed by several clients)";
	j = json_of(&job);
	assert_string_equal(str_at(j, "state", NULL), "skipped");
	assert_string_equal(str_at(j, "reason", NULL), job.reason);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "ticket")));
	assert_string_equal(str_at(j, "sender", "match"), "unknown");
	assert_non_null(strstr(str_at(j, "sender", "why"), "more than one"));
	cJSON_Delete(j);

	/* queued and running: not settled, the sender pending */
	job.reason = NULL;
	job.state = STORE_RUNNING;
	j = json_of(&job);
	assert_string_equal(str_at(j, "state", NULL), "queued");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "settled")));
	assert_string_equal(str_at(j, "sender", "match"), "pending");
	cJSON_Delete(j);

	job.state = STORE_FAILED;
	job.reason = "Halo said 400";
	j = json_of(&job);
	assert_string_equal(str_at(j, "state", NULL), "failed");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "settled")));
	cJSON_Delete(j);

	job.state = STORE_WAITING;
	assert_string_equal(status_state(&job), "waiting");
	job.state = STORE_DONE;
	job.sender = "fallback";
	job.client_id = 99;
	j = json_of(&job);
	assert_string_equal(str_at(j, "sender", "match"), "client");
	assert_non_null(strstr(str_at(j, "sender", "why"), "catch-all"));
	cJSON_Delete(j);
}

/* A configuration from TEXT in a temporary file. */
static struct conf *
conf_from(const char *text)
{
	char path[] = "/tmp/halo-test-status-XXXXXX";
	struct conf *c;
	FILE *fp;
	int fd, n = 0;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
	c = conf_load(path, stderr, &n);
	unlink(path);
	assert_non_null(c);
	return c;
}

#define CONF_TENANTS \
	"[tenant acme]\nhalo_url = https://acme.halopsa.com\n" \
	"client_id = x\nticket_type_id = 1\n" \
	"route = support@acme.example intake agent=a@msp.example\n"

static void
test_manifest(void **state)
{
	struct conf *c, *c2;
	char err[256], *xml, *json, *again, id1[37], id2[37], id3[37];
	cJSON *j, *ext;

	(void)state;
	c = conf_from("state_dir = /tmp\npublic_url = https://gw.example.net/\n"
	    CONF_TENANTS);
	xml = manifest_build(c, MANIFEST_XML, NULL, err, sizeof(err));
	assert_non_null(xml);
	assert_non_null(strstr(xml, "xsi:type=\"MailApp\""));
	assert_non_null(strstr(xml, "<Permissions>ReadItem</Permissions>"));
	assert_non_null(strstr(xml, "MessageReadCommandSurface"));
	assert_non_null(strstr(xml, "VersionOverridesV1_1"));
	assert_non_null(strstr(xml, "<SupportsPinning>true</SupportsPinning>"));
	assert_non_null(strstr(xml,
	    "https://gw.example.net/pane/taskpane.html"));
	assert_null(strstr(xml, "net//pane"));
	assert_non_null(strstr(xml, "<AppDomain>https://gw.example.net"
	    "</AppDomain>"));
	again = manifest_build(c, MANIFEST_XML, NULL, err, sizeof(err));
	assert_string_equal(xml, again);
	free(again);

	json = manifest_build(c, MANIFEST_JSON, NULL, err, sizeof(err));
	assert_non_null(json);
	j = cJSON_Parse(json);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "manifestVersion")->valuestring,
	    "1.17");
	ext = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "extensions"), 0);
	assert_non_null(ext);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(ext, "runtimes"), 0), "code"),
	    "page")->valuestring, "https://gw.example.net/pane/taskpane.html");
	/* the XML and the JSON name the same add-in */
	assert_int_equal(manifest_id("https://gw.example.net", NULL, id1), 0);
	assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, id1);
	assert_non_null(strstr(xml, id1));
	cJSON_Delete(j);
	free(json);
	free(xml);

	/* ids: UUID-shaped, stable, distinct per deployment and tenant */
	assert_int_equal(strlen(id1), 36);
	assert_int_equal(id1[14], '5');
	assert_true(strchr("89ab", id1[19]) != NULL);
	assert_int_equal(manifest_id("https://gw.example.net", NULL, id2), 0);
	assert_string_equal(id1, id2);
	assert_int_equal(manifest_id("https://other.example.net", NULL, id2), 0);
	assert_string_not_equal(id1, id2);
	assert_int_equal(manifest_id("https://gw.example.net", "acme", id3), 0);
	assert_string_not_equal(id1, id3);

	/* a tenant's manifest; an unknown tenant; no public_url */
	xml = manifest_build(c, MANIFEST_XML, "acme", err, sizeof(err));
	assert_non_null(xml);
	assert_non_null(strstr(xml, id3));
	assert_non_null(strstr(xml, "Halo status (acme)"));
	free(xml);
	assert_null(manifest_build(c, MANIFEST_JSON, "nope", err, sizeof(err)));
	assert_non_null(strstr(err, "nope"));
	c2 = conf_from("state_dir = /tmp\n" CONF_TENANTS);
	assert_null(manifest_build(c2, MANIFEST_XML, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "public_url"));
	conf_free(c2);
	conf_free(c);
}

/* The store keeps what the pane shows; an append inherits the summary. */
static void
test_store_result(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	char err[256];
	struct store *st;
	struct store_job_new jn;
	struct store_result r;
	struct store_job *job = NULL;
	enum store_status res[1];
	int64_t ids[2];

	(void)state;
	assert_int_equal(fixture_dir_make(dir, "test_status"), 0);
	snprintf(path, sizeof(path), "%s/s.db", dir);
	st = store_open(path, err, sizeof(err));
	assert_non_null(st);
	assert_true(store_schema_latest() >= 6);
	memset(&jn, 0, sizeof(jn));
	jn.tenant = "acme";
	jn.state = STORE_QUEUED;
	jn.mode = "intake";
	jn.message_id = "<one@x>";
	assert_int_equal(store_jobs_add(st, &jn, 1, res, &ids[0], NULL, NULL),
	    STORE_OK);
	jn.message_id = "<two@x>";
	assert_int_equal(store_jobs_add(st, &jn, 1, res, &ids[1], NULL, NULL),
	    STORE_OK);

	memset(&r, 0, sizeof(r));
	r.ticket_id = 1000;
	r.result = "created";
	r.contact = "Alice";
	r.client = "Client Ltd";
	r.sender = "contact";
	r.contact_id = 21;
	r.client_id = 15;
	r.summary = "Printer jammed";
	r.ticket_status = "new";
	assert_int_equal(store_job_done(st, ids[0], &r), STORE_OK);
	assert_int_equal(store_job_get(st, ids[0], &job), STORE_OK);
	assert_string_equal(job->sender, "contact");
	assert_int_equal(job->contact_id, 21);
	assert_int_equal(job->client_id, 15);
	assert_string_equal(job->summary, "Printer jammed");
	assert_string_equal(job->ticket_status, "new");
	job = store_job_free(job);

	r.result = "appended";
	r.summary = NULL;
	r.ticket_status = NULL;
	r.sender = "none";
	r.contact_id = r.client_id = 0;
	assert_int_equal(store_job_done(st, ids[1], &r), STORE_OK);
	assert_int_equal(store_job_get(st, ids[1], &job), STORE_OK);
	assert_string_equal(job->summary, "Printer jammed");
	assert_string_equal(job->sender, "none");
	assert_null(job->ticket_status);
	assert_int_equal(job->contact_id, 0);
	job = store_job_free(job);
	store_close(st);
	assert_int_equal(fixture_dir_remove(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_vector),
		cmocka_unit_test(test_token_vector),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_ticket_url),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_store_result),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
