/*
 * test_intake.c - unit tests for milter/intake.c, driven the way the
 * libmilter callbacks drive it but without an MTA: a real configuration
 * file (conf_load), a real SQLite store and a real spool in a mkdtemp
 * directory per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "conf.h"
#include "fixture.h"
#include "crypto.h"
#include "hdr.h"
#include "intake.h"
#include "statedir.h"
#include "log.h"
#include "status.h"
#include "spool.h"
#include "store.h"
#include "thread.h"

/* Thread-Index whose GUID is 3f2504e0-4f89-41d3-9a0c-0305e82c3301. */
#define TI_HEADER   "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQ=="
#define TI_CHILD1   "AdoXR8ZtPyUE4E+JQdOaDAMF6CwzAQAAobLD"
#define TI_KEY      "3f2504e04f8941d39a0c0305e82c3301"

#define HOSTNAME    "mx.test.example"

struct fixture {
	char dir[PATH_MAX];
	char spool[PATH_MAX + 16];
	char db[PATH_MAX + 16];
	char conf_path[PATH_MAX + 16];
	struct conf *conf;
	struct store *st;
	struct intake *in;
};

/* One header of a test message. */
struct hdr {
	const char *name;
	const char *value;
};

/* A test message: envelope, headers (NULL-name terminated), body. */
struct mail {
	const char *env_from;
	const char *rcpt[4];                  /* NULL-terminated */
	struct hdr hdrs[12];                  /* NULL-name-terminated */
	const char *body;
};

/* The configuration every test starts from, after the fixture's globals. */
static const char conf_tenants[] =
	"[tenant acme]\n"
	"halo_url = https://acme.example\n"
	"client_id = acme-id\n"
	"ticket_type_id = 1\n"
	"halo_senders = notify@acme.halopsa.example\n"
	"loop_max_creates = 2\n"
	"route = support@acme.example intake agent=agent@msp.example\n"
	"route = *@acme.example thread-only agent=recipient\n"
	"route = ceo@acme.example off\n"
	"agent_login = jdoe agent@msp.example\n"
	"[tenant globex]\n"
	"halo_url = https://globex.example\n"
	"client_id = globex-id\n"
	"ticket_type_id = 2\n"
	"route = help@globex.example intake agent=dispatch@globex.example\n";

/* Number of entries in DIR/SUB; -1 when unreadable. */
static int
count_files(const char *dir, const char *sub)
{
	char path[PATH_MAX * 2];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Write the configuration (GLOBALS, then the tenants), load it, open the
 * store and the spool, and start an intake on SPOOL_DIR (NULL = the
 * fixture's spool). */
static void
start(struct fixture *f, const char *globals, const char *spool_dir)
{
	struct statedir sd;
	uint8_t key[CRYPTO_KEY_LEN];
	char err[256] = "";
	FILE *fp;
	int nerrors = 0;

	fp = fopen(f->conf_path, "w");
	assert_non_null(fp);
	fprintf(fp, "state_dir = %s\n%s%s", f->dir, globals ? globals : "",
	    conf_tenants);
	fclose(fp);
	f->conf = conf_load(f->conf_path, stderr, &nerrors);
	if (f->conf == NULL)
		fail_msg("conf_load: %d errors", nerrors);
	f->st = store_open(f->db, err, sizeof(err));
	if (f->st == NULL)
		fail_msg("store_open: %s", err);
	assert_int_equal(spool_init(f->spool), 0);
	/* the daemon's way: the state files named once, the key loaded once */
	assert_int_equal(statedir_init(&sd, f->dir, NULL, err, sizeof(err)), 0);
	assert_int_equal(crypto_key_load_or_create(sd.status_key, key, err,
	    sizeof(err)), 0);
	f->in = intake_new(f->conf, f->st, spool_dir ? spool_dir : f->spool,
	    HOSTNAME, key);
	crypto_wipe(key, sizeof(key));
	assert_non_null(f->in);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (fixture_dir_make(f->dir, "test_intake") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->dir);
	snprintf(f->db, sizeof(f->db), "%s/halo.db", f->dir);
	snprintf(f->conf_path, sizeof(f->conf_path), "%s/halo.conf", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2];

	f->in = intake_free(f->in);
	f->st = store_close(f->st);
	f->conf = conf_free(f->conf);
	snprintf(path, sizeof(path), "%s/tmp", f->spool);
	chmod(path, 0700);
	fixture_dir_remove(path);
	snprintf(path, sizeof(path), "%s/msg", f->spool);
	fixture_dir_remove(path);
	fixture_dir_remove(f->spool);
	fixture_dir_remove(f->dir);
	free(f);
	return 0;
}

/* The fixture of a test. */
static struct fixture *
f_of(void **state)
{
	return *state;
}

/* Feed M to a new message up to, not including, end of message. */
static struct intake_msg *
feed(struct fixture *f, const struct mail *m)
{
	struct intake_msg *msg = intake_msg_new(f->in);
	size_t i;

	assert_non_null(msg);
	intake_msg_queue_id(msg, "QID123");
	intake_msg_envfrom(msg, m->env_from ? m->env_from : "<alice@customer.example>");
	for (i = 0; m->rcpt[i] != NULL; i++)
		intake_msg_rcpt(msg, m->rcpt[i]);
	for (i = 0; m->hdrs[i].name != NULL; i++)
		intake_msg_header(msg, m->hdrs[i].name, m->hdrs[i].value);
	intake_msg_eoh(msg);
	if (m->body != NULL)
		intake_msg_body(msg, m->body, strlen(m->body));
	return msg;
}

/* Feed M through end of message; the verdict goes to *VERDICT. */
static struct intake_msg *
deliver(struct fixture *f, const struct mail *m, enum intake_verdict *verdict)
{
	struct intake_msg *msg = feed(f, m);
	enum intake_verdict v = intake_msg_eom(msg);

	if (verdict != NULL)
		*verdict = v;
	else
		assert_int_equal(v, INTAKE_CONTINUE);
	return msg;
}

/* The value of the Nth (0-based) ADD edit of NAME, or NULL. */
static const char *
added(const struct intake_msg *msg, const char *name, size_t nth)
{
	const struct intake_edit *e;
	size_t n = intake_msg_edits(msg, &e), i;

	for (i = 0; i < n; i++)
		if (e[i].op == INTAKE_EDIT_ADD && strcmp(e[i].name, name) == 0 &&
		    nth-- == 0)
			return e[i].value;
	return NULL;
}

/* Number of edits that add NAME. */
static size_t
n_added(const struct intake_msg *msg, const char *name)
{
	const struct intake_edit *e;
	size_t n = intake_msg_edits(msg, &e), i, k = 0;

	for (i = 0; i < n; i++)
		if (e[i].op == INTAKE_EDIT_ADD && strcmp(e[i].name, name) == 0)
			k++;
	return k;
}

/* The job id in an X-Halo-Status value ("...; job=N"). */
static int64_t
status_job(const char *status)
{
	const char *p;

	assert_non_null(status);
	p = strstr(status, "job=");
	assert_non_null(p);
	return strtoll(p + 4, NULL, 10);
}

/* Total jobs in the store. */
static uint64_t
n_jobs(struct fixture *f)
{
	uint64_t counts[6], total = 0;
	int i;

	assert_int_equal(store_job_counts(f->st, counts), STORE_OK);
	for (i = 0; i < 6; i++)
		total += counts[i];
	return total;
}

/* Check that STATUS is "queued; tenant=TENANT; job=N" and return the job. */
static struct store_job *
queued_job(struct fixture *f, const char *status, const char *tenant)
{
	char want[128];
	struct store_job *job = NULL;
	int64_t id = status_job(status);

	snprintf(want, sizeof(want), "queued; tenant=%s; job=%lld", tenant,
	    (long long)id);
	assert_string_equal(status, want);
	assert_int_equal(store_job_get(f->st, id, &job), STORE_OK);
	assert_string_equal(job->tenant, tenant);
	assert_int_equal(job->state, STORE_QUEUED);
	return job;
}

/* The key derived from root Message-ID ROOT. */
static void
derived_key(const char *root, char key[THREAD_KEY_LEN + 1])
{
	uint8_t guid[THREAD_GUID_LEN];

	thread_guid_derive(root, guid);
	thread_key_hex(guid, key);
}

/* A plain new mail to the acme intake address. */
#define NEW_MAIL(id) \
	.rcpt = { "<support@acme.example>" }, \
	.hdrs = { { "From", "Alice <Alice@Customer.example>" }, \
	    { "To", "support@acme.example" }, \
	    { "Subject", "Printer down" }, \
	    { "Message-ID", id } }, \
	.body = "The printer is down.\r\n"

/* Nobody routed: nothing happens. */
static void
test_unrouted(void **state)
{
	struct fixture *f = *state;
	const struct intake_edit *e;
	struct intake_msg *msg;
	struct mail m = {
		.rcpt = { "<someone@other.example>", "<ceo@acme.example>" },
		.hdrs = { { "Subject", "hi" }, { "X-Halo-Status", "forged" } },
		.body = "hello\r\n",
	};

	start(f, NULL, NULL);
	msg = feed(f, &m);
	assert_false(intake_msg_routed(msg));
	assert_int_equal(intake_msg_eom(msg), INTAKE_CONTINUE);
	assert_int_equal(intake_msg_edits(msg, &e), 0);
	assert_null(intake_msg_id(msg));
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	msg = intake_msg_free(msg);
	assert_true(n_jobs(f) == 0);
	assert_int_equal(count_files(f->spool, "msg"), 0);
	assert_int_equal(count_files(f->spool, "tmp"), 0);
}

/* Read a whole file. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

/* The message in a spool file: its first SIZE bytes (what the job row
 * records), which its job rows follow (spooljob.h); *LEN = SIZE. */
static char *
spooled_message(const char *path, uint64_t size, size_t *len)
{
	char *buf = slurp(path, len);

	assert_true(*len > size);
	assert_non_null(strstr(buf + size, "\"rows\":[{\"tenant\""));
	assert_non_null(strstr(buf + size, "\nHALO-SPOOL-ROWS "));
	buf[size] = '\0';
	*len = (size_t)size;
	return buf;
}

/* A new mail without Message-ID: one is generated and added; the job row
 * and the spool file say what was received. */
static void
test_no_msgid(void **state)
{
	struct fixture *f = *state;
	struct mail m = {
		.rcpt = { "<support@acme.example>" },
		.hdrs = { { "Received", "from a by b; Mon, 1 Jan 2024 00:00:00 +0000" },
		    { "From", "Alice <Alice@Customer.example>" },
		    { "Subject", "=?utf-8?q?Caf=C3=A9?= down" },
		    { "X-Folded", "one\r\n\ttwo" } },
		.body = "line 1\r\nline 2\r\n",
	};
	static const char spooled[] =
	    "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	    "From: Alice <Alice@Customer.example>\r\n"
	    "Subject: =?utf-8?q?Caf=C3=A9?= down\r\n"
	    "X-Folded: one\r\n\ttwo\r\n"
	    "\r\n"
	    "line 1\r\nline 2\r\n";
	const struct intake_edit *e;
	struct intake_msg *msg;
	struct store_job *job;
	char msgid[HDR_MSGID_MAX + 1], key[THREAD_KEY_LEN + 1];
	char path[PATH_MAX * 2];
	unsigned int i;
	const char *status;
	size_t n, len;
	char *content;
	int64_t first;

	start(f, NULL, NULL);
	msg = deliver(f, &m, NULL);
	assert_true(intake_msg_routed(msg));

	/* the generated id: <32 hex>.hm@HOSTNAME */
	assert_non_null(intake_msg_id(msg));
	strcpy(msgid, intake_msg_id(msg));
	assert_int_equal(strlen(msgid), 1 + 32 + 4 + strlen(HOSTNAME) + 1);
	assert_int_equal(msgid[0], '<');
	for (i = 1; i <= 32; i++)
		assert_non_null(strchr("0123456789abcdef", msgid[i]));
	assert_memory_equal(msgid + 33, ".hm@" HOSTNAME ">", 4 + strlen(HOSTNAME) + 1);

	/* edits: Message-ID, conversation id, status, token - in that order */
	n = intake_msg_edits(msg, &e);
	assert_int_equal(n, 4);
	{
		/* the token covers the generated Message-ID, under the key
		 * intake made in state_dir on start */
		uint8_t skey[CRYPTO_KEY_LEN];
		char kpath[PATH_MAX * 2], tok[STATUS_TOKEN_LEN + 1], want[128];

		snprintf(kpath, sizeof(kpath), "%s/status.key", f->dir);
		assert_int_equal(crypto_key_load_or_create(kpath, skey, NULL, 0),
		    0);
		assert_int_equal(status_token(skey, "acme",
		    status_job(e[2].value), intake_msg_id(msg),
		    "support@acme.example", tok), 0);
		snprintf(want, sizeof(want), "%s; tenant=acme", tok);
		assert_string_equal(e[3].name, "X-Halo-Token");
		assert_string_equal(e[3].value, want);
	}
	assert_int_equal(e[0].op, INTAKE_EDIT_ADD);
	assert_string_equal(e[0].name, "Message-ID");
	assert_string_equal(e[0].value, msgid);
	assert_string_equal(e[1].name, "X-Halo-Conversation-Id");
	derived_key(msgid, key);                  /* a new thread: own id */
	assert_string_equal(e[1].value, key);
	assert_string_equal(e[2].name, "X-Halo-Status");
	status = e[2].value;
	job = queued_job(f, status, "acme");
	first = job->id;

	/* the job row */
	assert_string_equal(job->message_id, msgid);
	assert_string_equal(job->queue_id, "QID123");
	assert_string_equal(job->env_from, "<alice@customer.example>");
	assert_string_equal(job->from_addr, "alice@customer.example");
	assert_string_equal(job->subject, "Caf\xc3\xa9 down");
	assert_string_equal(job->recipients, "support@acme.example");
	assert_string_equal(job->agent, "agent@msp.example");
	assert_string_equal(job->mode, "intake");
	assert_string_equal(job->conv_key, key);
	assert_true(job->starts_thread);
	assert_false(job->no_create);
	assert_null(job->reason);

	/* the spool file: exact bytes and size (no digest: spool.h) */
	assert_non_null(job->spool);
	assert_int_equal(spool_path(f->spool, job->spool, path, sizeof(path)), 0);
	content = spooled_message(path, job->size, &len);
	assert_int_equal(len, strlen(spooled));
	assert_string_equal(content, spooled);
	free(content);
	store_job_free(job);
	msg = intake_msg_free(msg);
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	assert_int_equal(count_files(f->spool, "msg"), 1);

	/* the same content via another hop: same id (so a duplicate) */
	m.hdrs[0].value = "from c by d; Tue, 2 Jan 2024 00:00:00 +0000";
	msg = deliver(f, &m, NULL);
	assert_string_equal(intake_msg_id(msg), msgid);
	assert_string_equal(added(msg, "Message-ID", 0), msgid);
	status = added(msg, "X-Halo-Status", 0);
	assert_non_null(status);
	assert_true(status_job(status) == first);
	assert_non_null(strstr(status, "reason=duplicate"));
	msg = intake_msg_free(msg);

	/* other content: another id */
	m.body = "line 1\r\nline 3\r\n";
	msg = deliver(f, &m, NULL);
	assert_string_not_equal(intake_msg_id(msg), msgid);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_true(job->id != first);
	store_job_free(job);
	msg = intake_msg_free(msg);
	assert_true(n_jobs(f) == 2);
	assert_int_equal(count_files(f->spool, "msg"), 2);
}

/* Inbound X-Halo-* headers are deleted (last occurrence first), not spooled. */
static void
test_forged_ours(void **state)
{
	struct fixture *f = *state;
	struct mail m = {
		.rcpt = { "<support@acme.example>" },
		.hdrs = { { "X-Halo-Foo", "a" }, { "Subject", "s" },
		    { "x-halo-foo", "b" }, { "X-Halo-Status", "queued; job=1" },
		    { "Message-ID", "<forged@x>" } },
		.body = "b\r\n",
	};
	const struct intake_edit *e;
	struct intake_msg *msg;
	struct store_job *job;
	char path[PATH_MAX * 2];
	size_t n, len;
	char *content;

	start(f, NULL, NULL);
	msg = deliver(f, &m, NULL);
	n = intake_msg_edits(msg, &e);
	assert_int_equal(n, 5);
	assert_string_equal(e[4].name, "X-Halo-Token");
	assert_int_equal(e[0].op, INTAKE_EDIT_DELETE);
	assert_true(strcasecmp(e[0].name, "X-Halo-Foo") == 0);
	assert_int_equal(e[0].count, 2);
	assert_int_equal(e[1].op, INTAKE_EDIT_DELETE);
	assert_string_equal(e[1].name, "X-Halo-Status");
	assert_int_equal(e[1].count, 1);
	assert_null(e[1].value);
	assert_int_equal(e[2].op, INTAKE_EDIT_ADD);
	assert_string_equal(e[2].name, "X-Halo-Conversation-Id");
	assert_int_equal(e[3].op, INTAKE_EDIT_ADD);
	assert_string_equal(e[3].name, "X-Halo-Status");
	assert_null(added(msg, "Message-ID", 0));      /* it had one */

	job = queued_job(f, e[3].value, "acme");
	assert_int_equal(spool_path(f->spool, job->spool, path, sizeof(path)), 0);
	content = spooled_message(path, job->size, &len);
	assert_null(strcasestr(content, "X-Halo"));
	assert_string_equal(content, "Subject: s\r\nMessage-ID: <forged@x>\r\n"
	    "\r\nb\r\n");
	free(content);
	store_job_free(job);
	intake_msg_free(msg);
}

/* A valid Thread-Index gives the key; a reply inherits it; an unknown
 * parent's References root gives a derived key. */
static void
test_conversation_keys(void **state)
{
	struct fixture *f = *state;
	struct mail first = { NEW_MAIL("<first@customer.example>") };
	struct mail reply = {
		.rcpt = { "<support@acme.example>" },
		.hdrs = { { "Subject", "Re: Printer down" },
		    { "Message-ID", "<reply@acme.example>" },
		    { "In-Reply-To", "<first@customer.example>" } },
	};
	struct mail deep = {
		.rcpt = { "<support@acme.example>" },
		.hdrs = { { "Subject", "Re: x" },
		    { "Message-ID", "<deep@x>" },
		    { "References", "<root@x> (c <no@x>) <mid@x>" },
		    { "In-Reply-To", "<mid@x>" } },
	};
	struct mail child = {
		.rcpt = { "<support@acme.example>" },
		.hdrs = { { "Message-ID", "<child@x>" },
		    { "Thread-Index", TI_CHILD1 } },
	};
	struct mail badti = {
		.rcpt = { "<support@acme.example>" },
		.hdrs = { { "Message-ID", "<badti@x>" },
		    { "Thread-Index", "AtoXR8ZtPyUE4E+JQdOaDAMF6CwzAQ==" } },
	};
	struct intake_msg *msg;
	struct store_job *job;
	char key[THREAD_KEY_LEN + 1];

	start(f, NULL, NULL);

	/* Thread-Index: the GUID, and a header-only index starts a thread */
	first.hdrs[4].name = "Thread-Index";
	first.hdrs[4].value = " " TI_HEADER;
	msg = deliver(f, &first, NULL);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), TI_KEY);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_string_equal(job->conv_key, TI_KEY);
	assert_true(job->starts_thread);
	store_job_free(job);
	intake_msg_free(msg);

	/* In-Reply-To an earlier message: its key, not a derived one */
	msg = deliver(f, &reply, NULL);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), TI_KEY);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_false(job->starts_thread);
	store_job_free(job);
	intake_msg_free(msg);

	/* and a reply to the reply, by References only */
	reply.hdrs[1].value = "<reply2@x>";
	reply.hdrs[2].name = "References";
	reply.hdrs[2].value = "<unknown-root@x> <reply@acme.example>";
	msg = deliver(f, &reply, NULL);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), TI_KEY);
	intake_msg_free(msg);

	/* parent unknown: derived from the first References entry */
	msg = deliver(f, &deep, NULL);
	derived_key("<root@x>", key);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), key);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_false(job->starts_thread);
	store_job_free(job);
	intake_msg_free(msg);

	/* ...and a later reply to <deep@x> inherits that key */
	deep.hdrs[1].value = "<deeper@x>";
	deep.hdrs[2].value = "<other-root@x> <deep@x>";
	deep.hdrs[3].value = "<deep@x>";
	msg = deliver(f, &deep, NULL);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), key);
	intake_msg_free(msg);

	/* In-Reply-To only, unknown: derived from it */
	deep.hdrs[1].value = "<irt-only@x>";
	deep.hdrs[2].name = "X-Other";
	deep.hdrs[3].value = "<never-seen@x>";
	msg = deliver(f, &deep, NULL);
	derived_key("<never-seen@x>", key);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), key);
	intake_msg_free(msg);

	/* an index with a child block: same GUID, not a thread start */
	msg = deliver(f, &child, NULL);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), TI_KEY);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_false(job->starts_thread);
	store_job_free(job);
	intake_msg_free(msg);

	/* an invalid index is ignored: own Message-ID */
	msg = deliver(f, &badti, NULL);
	derived_key("<badti@x>", key);
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), key);
	intake_msg_free(msg);
}

/* Skipped mail: the status says why, and so does the job row. */
static void
test_skips(void **state)
{
	struct fixture *f = *state;
	struct mail autoreply = { NEW_MAIL("<ooo@customer.example>") };
	struct mail bounce = { NEW_MAIL("<dsn@mx.example>") };
	struct mail halo = { NEW_MAIL("<halo@acme.halopsa.example>") };
	struct mail list = { NEW_MAIL("<list@lists.example>") };
	struct intake_msg *msg;
	struct store_job *job;
	const char *status;
	char want[128];

	start(f, NULL, NULL);
	autoreply.hdrs[4].name = "Auto-Submitted";
	autoreply.hdrs[4].value = "auto-replied";
	msg = deliver(f, &autoreply, NULL);
	status = added(msg, "X-Halo-Status", 0);
	snprintf(want, sizeof(want), "skipped; reason=auto-reply; tenant=acme;"
	    " job=%lld", (long long)status_job(status));
	assert_string_equal(status, want);
	assert_int_equal(store_job_get(f->st, status_job(status), &job), STORE_OK);
	assert_int_equal(job->state, STORE_SKIPPED);
	assert_string_equal(job->reason, "auto-reply");
	store_job_free(job);
	intake_msg_free(msg);

	bounce.env_from = "<>";
	msg = deliver(f, &bounce, NULL);
	status = added(msg, "X-Halo-Status", 0);
	snprintf(want, sizeof(want), "skipped; reason=bounce; tenant=acme;"
	    " job=%lld", (long long)status_job(status));
	assert_string_equal(status, want);
	intake_msg_free(msg);

	halo.hdrs[0].value = "Halo <Notify@acme.halopsa.example>";
	msg = deliver(f, &halo, NULL);
	assert_non_null(strstr(added(msg, "X-Halo-Status", 0),
	    "skipped; reason=halo-notification; tenant=acme"));
	intake_msg_free(msg);

	/* List-Id: logged, but flagged no_create */
	list.hdrs[4].name = "List-Id";
	list.hdrs[4].value = "<x.lists.example>";
	msg = deliver(f, &list, NULL);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_true(job->no_create);
	store_job_free(job);
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 4);
}

/* The same Message-ID twice: one job; the second is stamped duplicate. */
static void
test_duplicate(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<dup@customer.example>") };
	struct intake_msg *msg;
	char want[128];
	int64_t first;

	start(f, NULL, NULL);
	msg = deliver(f, &m, NULL);
	first = status_job(added(msg, "X-Halo-Status", 0));
	intake_msg_free(msg);

	/* the same mail again (another hop): a duplicate, with no token */
	m.hdrs[4].name = "Received";
	m.hdrs[4].value = "from a by b";
	msg = deliver(f, &m, NULL);
	snprintf(want, sizeof(want), "skipped; reason=duplicate; tenant=acme;"
	    " job=%lld", (long long)first);
	assert_string_equal(added(msg, "X-Halo-Status", 0), want);
	assert_int_equal(n_added(msg, "X-Halo-Status"), 1);
	assert_int_equal(n_added(msg, "X-Halo-Token"), 0);
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 1);
	assert_int_equal(count_files(f->spool, "msg"), 1);
	assert_int_equal(count_files(f->spool, "tmp"), 0);

	/* same Message-ID and sender, other content: its own job */
	m.body = "a different body, same id\r\n";
	msg = deliver(f, &m, NULL);
	assert_true(status_job(added(msg, "X-Halo-Status", 0)) != first);
	assert_int_equal(n_added(msg, "X-Halo-Token"), 1);
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 2);
}

/*
 * Issue 11: a mail that pre-empts a Message-ID (another sender, sent
 * first) is its own job, and the genuine mail is still logged, with a
 * token of its own job that the pre-empting job's token is not.
 */
static void
test_preempted_msgid(void **state)
{
	struct fixture *f = *state;
	struct mail genuine = { NEW_MAIL("<real@customer.example>") };
	struct mail attacker = { NEW_MAIL("<real@customer.example>") };
	struct intake_msg *msg;
	struct store_job *job;
	char *tok_a, *tok_g;
	int64_t a, g;
	uint8_t skey[CRYPTO_KEY_LEN];
	char kpath[PATH_MAX * 2];

	attacker.env_from = "<mallory@evil.example>";
	attacker.hdrs[0].value = "Mallory <mallory@evil.example>";
	attacker.body = "Guess the id.\r\n";
	start(f, NULL, NULL);
	msg = deliver(f, &attacker, NULL);
	a = status_job(added(msg, "X-Halo-Status", 0));
	tok_a = strdup(added(msg, "X-Halo-Token", 0));
	intake_msg_free(msg);

	msg = deliver(f, &genuine, NULL);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	g = job->id;
	assert_true(g != a);
	assert_string_equal(job->message_id, "<real@customer.example>");
	assert_string_equal(job->from_addr, "alice@customer.example");
	tok_g = strdup(added(msg, "X-Halo-Token", 0));
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 2);

	/* each token opens its own job only */
	snprintf(kpath, sizeof(kpath), "%s/status.key", f->dir);
	assert_int_equal(crypto_key_load_or_create(kpath, skey, NULL, 0), 0);
	*strchr(tok_a, ';') = '\0';
	*strchr(tok_g, ';') = '\0';
	assert_true(status_token_job(tok_g) == g);
	assert_true(status_token_check(skey, job, "acme",
	    "<real@customer.example>", tok_g));
	assert_false(status_token_check(skey, job, "acme",
	    "<real@customer.example>", tok_a));
	assert_false(status_token_check(skey, job, "globex",
	    "<real@customer.example>", tok_g));
	store_job_free(job);
	assert_int_equal(store_job_get(f->st, a, &job), STORE_OK);
	assert_true(status_token_check(skey, job, "acme",
	    "<real@customer.example>", tok_a));
	assert_false(status_token_check(skey, job, "acme",
	    "<real@customer.example>", tok_g));
	store_job_free(job);
	free(tok_a);
	free(tok_g);
}

/* Deliver M with session (LOGIN, ADDR) as the callbacks do: an unrouted
 * mail becomes outbound or nothing. */
static struct intake_msg *
deliver_out(struct fixture *f, const struct mail *m, const char *login,
    const char *addr, bool *outbound)
{
	struct intake_msg *msg = intake_msg_new(f->in);
	size_t i;

	assert_non_null(msg);
	intake_msg_envfrom(msg, m->env_from);
	intake_msg_session(msg, login, addr);
	for (i = 0; m->rcpt[i] != NULL; i++)
		intake_msg_rcpt(msg, m->rcpt[i]);
	*outbound = !intake_msg_routed(msg) && intake_msg_outbound(msg);
	if (!intake_msg_routed(msg) && !*outbound)
		return msg;
	for (i = 0; m->hdrs[i].name != NULL; i++)
		intake_msg_header(msg, m->hdrs[i].name, m->hdrs[i].value);
	intake_msg_eoh(msg);
	intake_msg_body(msg, m->body, strlen(m->body));
	assert_int_equal(intake_msg_eom(msg), INTAKE_CONTINUE);
	return msg;
}

/*
 * Issue 11: an agent's outgoing mail counts only from a session that
 * authenticated as that agent (or an agent_login of it), or came from
 * submission_networks without SMTP AUTH. A table of sessions.
 */
static void
test_outbound_auth(void **state)
{
	static const struct {
		const char *login, *addr;
		bool outbound;
		const char *how;
	} cases[] = {
		{ NULL, NULL, false, NULL },                    /* plain SMTP */
		{ NULL, "203.0.113.9", false, NULL },           /* from outside */
		{ "", "203.0.113.9", false, NULL },             /* empty login */
		{ "agent@msp.example", NULL, true, "sasl" },    /* as itself */
		{ "AGENT@MSP.example", "203.0.113.9", true, "sasl" },
		{ "jdoe", "203.0.113.9", true, "sasl" },        /* agent_login */
		{ "other@msp.example", NULL, false, NULL },     /* someone else */
		{ "other@msp.example", "192.0.2.7", false, NULL },
		{ NULL, "192.0.2.7", true, "network" },         /* submission */
		{ NULL, "::ffff:192.0.2.8", true, "network" },
	};
	struct mail m = {
		.env_from = "<agent@msp.example>",
		.rcpt = { "<customer@client.example>" },
		.hdrs = { { "From", "agent@msp.example" },
		    { "Subject", "Re: [ID:7] fixed" } },
		.body = "Done.\r\n",
	};
	char ids[64];
	struct intake_msg *msg;
	struct store_job *job;
	bool outbound;
	int64_t id;
	size_t i;
	uint64_t before;

	start(f_of(state), "submission_networks = 192.0.2.0/24\n", NULL);
	assert_int_equal(store_token_put(f_of(state)->st, "acme",
	    "agent@msp.example", "sealed", "ok"), STORE_OK);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture *f = f_of(state);
		snprintf(ids, sizeof(ids), "<out%zu@msp.example>", i);
		m.hdrs[2].name = "Message-ID";
		m.hdrs[2].value = ids;
		before = n_jobs(f);
		msg = deliver_out(f, &m, cases[i].login, cases[i].addr,
		    &outbound);
		if (outbound != cases[i].outbound)
			fail_msg("case %zu: outbound %d", i, outbound);
		if (outbound) {
			assert_true(n_jobs(f) == before + 1);
			assert_int_equal(store_job_find(f->st, "acme", ids, &id),
			    STORE_OK);
			assert_int_equal(store_job_get(f->st, id, &job), STORE_OK);
			assert_string_equal(job->mode, "outbound");
			assert_string_equal(job->outbound_auth, cases[i].how);
			store_job_free(job);
		} else {
			assert_true(n_jobs(f) == before);
		}
		intake_msg_free(msg);
	}
}

/* Issue 11: a spoofed agent envelope on mail to a routed address is inbound
 * mail from a stranger, never outbound, whatever the session. */
static void
test_spoofed_agent_inbound(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<spoof@evil.example>") };
	struct intake_msg *msg;
	struct store_job *job;

	m.env_from = "<agent@msp.example>";
	start(f, NULL, NULL);
	assert_int_equal(store_token_put(f->st, "acme", "agent@msp.example",
	    "sealed", "ok"), STORE_OK);
	msg = deliver(f, &m, NULL);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_string_equal(job->mode, "intake");
	assert_null(job->outbound_auth);
	store_job_free(job);
	intake_msg_free(msg);
}

/* Issue 11: how From: is authenticated is stored on the job. */
static void
test_sender_auth(void **state)
{
	static const struct {
		const char *env, *from, *ar;
		const char *want;
	} cases[] = {
		{ "<a@customer.example>", "a@customer.example", NULL, "aligned" },
		{ "<b@bounce.customer.example>", "a@customer.example", NULL,
		  "aligned" },
		{ "<m@evil.example>", "a@customer.example", NULL, "none" },
		{ "<m@esp.example>", "a@customer.example",
		  "mx.msp.example; dmarc=pass header.from=customer.example",
		  "dmarc" },
		{ "<m@esp.example>", "a@customer.example",
		  "mx.msp.example; dkim=pass header.d=customer.example", "dkim" },
		/* forged from outside: another authserv-id */
		{ "<m@evil.example>", "a@customer.example",
		  "mx.evil.example; dmarc=pass header.from=customer.example",
		  "none" },
		{ "<m@evil.example>", "a@customer.example",
		  "mx.msp.example; dmarc=fail header.from=customer.example",
		  "none" },
	};
	struct fixture *f = *state;
	char ids[64], from[64];
	struct intake_msg *msg;
	struct store_job *job;
	size_t i;

	start(f, "authserv_ids = mx.msp.example\n", NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mail m = { NEW_MAIL(ids) };
		snprintf(ids, sizeof(ids), "<auth%zu@customer.example>", i);
		m.env_from = cases[i].env;
		/* one sender per case: loop protection counts per sender */
		snprintf(from, sizeof(from), "u%zu.%s", i, cases[i].from);
		m.hdrs[0].value = from;
		if (cases[i].ar != NULL) {
			m.hdrs[4].name = "Authentication-Results";
			m.hdrs[4].value = cases[i].ar;
		}
		msg = deliver(f, &m, NULL);
		job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
		if (strcmp(job->sender_auth, cases[i].want) != 0)
			fail_msg("case %zu: %s, want %s", i, job->sender_auth,
			    cases[i].want);
		store_job_free(job);
		intake_msg_free(msg);
	}
}

/* Two tenants: two jobs sharing one spool file. */
static void
test_two_tenants(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<both@customer.example>") };
	struct intake_msg *msg;
	struct store_job *a, *g;

	m.rcpt[1] = "<Help@Globex.example>";
	start(f, NULL, NULL);
	msg = deliver(f, &m, NULL);
	assert_int_equal(n_added(msg, "X-Halo-Status"), 2);
	assert_int_equal(n_added(msg, "X-Halo-Conversation-Id"), 1);
	a = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	g = queued_job(f, added(msg, "X-Halo-Status", 1), "globex");
	assert_true(a->id != g->id);
	assert_string_equal(a->spool, g->spool);
	assert_true(a->size == g->size && a->size > 0);
	assert_string_equal(a->conv_key, g->conv_key);
	assert_string_equal(g->recipients, "help@globex.example");
	assert_string_equal(g->agent, "dispatch@globex.example");
	store_job_free(a);
	store_job_free(g);
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 2);
	assert_int_equal(count_files(f->spool, "msg"), 1);
}

/* Two recipients of one tenant: one job, the strongest mode and its agent. */
static void
test_one_tenant_two_routes(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<two@customer.example>") };
	struct intake_msg *msg;
	struct store_job *job;

	m.rcpt[0] = "<Bob@acme.example>";              /* thread-only, recipient */
	m.rcpt[1] = "<support@acme.example>";          /* intake */
	m.rcpt[2] = "<ceo@acme.example>";              /* off */
	start(f, NULL, NULL);
	msg = deliver(f, &m, NULL);
	assert_int_equal(n_added(msg, "X-Halo-Status"), 1);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_string_equal(job->mode, "intake");
	assert_string_equal(job->agent, "agent@msp.example");
	assert_string_equal(job->recipients, "bob@acme.example,support@acme.example");
	store_job_free(job);
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 1);

	/* thread-only alone: the recipient is the agent */
	m.rcpt[0] = "<bob@acme.example>";
	m.rcpt[1] = NULL;
	m.hdrs[3].value = "<two-b@customer.example>";
	msg = deliver(f, &m, NULL);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	assert_string_equal(job->mode, "thread-only");
	assert_string_equal(job->agent, "bob@acme.example");
	store_job_free(job);
	intake_msg_free(msg);
}

/* Over max_message_size: skipped, nothing spooled. */
static void
test_too_large(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<big@customer.example>") };
	struct intake_msg *msg;
	struct store_job *job;
	const char *status;
	char *body, want[128];

	body = malloc(3000);
	assert_non_null(body);
	memset(body, 'x', 2999);
	body[2999] = '\0';
	m.body = body;
	start(f, "max_message_size = 1K\n", NULL);
	msg = feed(f, &m);
	assert_int_equal(count_files(f->spool, "tmp"), 0);   /* dropped already */
	assert_int_equal(intake_msg_eom(msg), INTAKE_CONTINUE);
	status = added(msg, "X-Halo-Status", 0);
	snprintf(want, sizeof(want), "skipped; reason=too-large; tenant=acme;"
	    " job=%lld", (long long)status_job(status));
	assert_string_equal(status, want);
	assert_int_equal(store_job_get(f->st, status_job(status), &job), STORE_OK);
	assert_int_equal(job->state, STORE_SKIPPED);
	assert_string_equal(job->reason, "too-large");
	assert_null(job->spool);
	assert_true(job->size == 0);
	store_job_free(job);
	intake_msg_free(msg);
	assert_int_equal(count_files(f->spool, "msg"), 0);
	assert_int_equal(count_files(f->spool, "tmp"), 0);

	/* under the cap: queued */
	body[500] = '\0';
	m.hdrs[3].value = "<small@customer.example>";
	msg = deliver(f, &m, NULL);
	job = queued_job(f, added(msg, "X-Halo-Status", 0), "acme");
	store_job_free(job);
	intake_msg_free(msg);
	assert_int_equal(count_files(f->spool, "msg"), 1);
	free(body);
}

/* An aborted transaction leaves no file and no job. */
static void
test_free_before_eom(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<aborted@customer.example>") };
	struct intake_msg *msg;

	start(f, NULL, NULL);
	msg = feed(f, &m);
	assert_int_equal(count_files(f->spool, "tmp"), 1);
	assert_null(intake_msg_free(msg));
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	assert_int_equal(count_files(f->spool, "msg"), 0);
	assert_true(n_jobs(f) == 0);
	assert_null(intake_msg_free(NULL));
}

/* The loop cap: the third new thread from one sender is skipped. */
static void
test_loop(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<loop-1@customer.example>") };
	struct intake_msg *msg;
	const char *status;

	start(f, NULL, NULL);                  /* loop_max_creates = 2 */
	msg = deliver(f, &m, NULL);
	store_job_free(queued_job(f, added(msg, "X-Halo-Status", 0), "acme"));
	intake_msg_free(msg);
	m.hdrs[3].value = "<loop-2@customer.example>";
	msg = deliver(f, &m, NULL);
	assert_non_null(strstr(added(msg, "X-Halo-Status", 0), "queued;"));
	intake_msg_free(msg);

	m.hdrs[3].value = "<loop-3@customer.example>";
	msg = deliver(f, &m, NULL);
	status = added(msg, "X-Halo-Status", 0);
	assert_non_null(strstr(status, "skipped; reason=loop; tenant=acme; job="));
	intake_msg_free(msg);

	/* a reply still goes through, and skips did not count */
	m.hdrs[3].value = "<loop-4@customer.example>";
	m.hdrs[4].name = "In-Reply-To";
	m.hdrs[4].value = "<loop-1@customer.example>";
	msg = deliver(f, &m, NULL);
	assert_non_null(strstr(added(msg, "X-Halo-Status", 0), "queued;"));
	intake_msg_free(msg);

	/* another sender is not affected; the globex cap is separate */
	m.hdrs[4].name = NULL;
	m.hdrs[0].value = "bob@customer.example";
	m.hdrs[3].value = "<loop-5@customer.example>";
	msg = deliver(f, &m, NULL);
	assert_non_null(strstr(added(msg, "X-Halo-Status", 0), "queued;"));
	intake_msg_free(msg);
}

/* Make the spool unusable: chmod for a normal user; root ignores modes,
 * so root gets an intake whose spool directory does not exist. */
static const char *
broken_spool(struct fixture *f, char *path, size_t size)
{
	if (geteuid() == 0) {
		snprintf(path, size, "%s/no-such-spool", f->dir);
		return path;
	}
	return NULL;
}

/* After start(): with a normal user, take write permission off spool/tmp. */
static void
break_spool_tmp(struct fixture *f)
{
	char path[PATH_MAX * 2];

	if (geteuid() == 0)
		return;
	snprintf(path, sizeof(path), "%s/tmp", f->spool);
	assert_int_equal(chmod(path, 0500), 0);
}

/* on_spool_error = tempfail: TEMPFAIL, no job, no edits. */
static void
test_spool_error_tempfail(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<nospool@customer.example>") };
	const struct intake_edit *e;
	struct intake_msg *msg;
	enum intake_verdict v;
	char path[PATH_MAX * 2];

	start(f, "on_spool_error = tempfail\n",
	    broken_spool(f, path, sizeof(path)));
	break_spool_tmp(f);
	msg = deliver(f, &m, &v);
	assert_int_equal(v, INTAKE_TEMPFAIL);
	assert_int_equal(intake_msg_edits(msg, &e), 0);
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 0);
	assert_int_equal(count_files(f->spool, "msg"), 0);
}

/* on_spool_error = accept: CONTINUE, forged headers still removed,
 * "error; reason=spool" stamped, no job. */
static void
test_spool_error_accept(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<nospool@customer.example>") };
	const struct intake_edit *e;
	struct intake_msg *msg;
	enum intake_verdict v;
	char path[PATH_MAX * 2];

	m.hdrs[4].name = "X-Halo-Status";
	m.hdrs[4].value = "queued; forged";
	start(f, "on_spool_error = accept\n",
	    broken_spool(f, path, sizeof(path)));
	break_spool_tmp(f);
	msg = deliver(f, &m, &v);
	assert_int_equal(v, INTAKE_CONTINUE);
	assert_int_equal(intake_msg_edits(msg, &e), 2);
	assert_int_equal(e[0].op, INTAKE_EDIT_DELETE);
	assert_string_equal(e[0].name, "X-Halo-Status");
	assert_int_equal(e[0].count, 1);
	assert_int_equal(e[1].op, INTAKE_EDIT_ADD);
	assert_string_equal(e[1].name, "X-Halo-Status");
	assert_string_equal(e[1].value, "error; reason=spool");
	intake_msg_free(msg);
	assert_true(n_jobs(f) == 0);
	assert_int_equal(count_files(f->spool, "msg"), 0);
}

/* add_thread_index = yes: a Thread-Index carrying the key, and the topic. */
static void
test_add_thread_index(void **state)
{
	struct fixture *f = *state;
	struct mail m = { NEW_MAIL("<ti@customer.example>") };
	struct thread_index ti;
	struct intake_msg *msg;
	const char *b64, *conv;
	char key[THREAD_KEY_LEN + 1];

	m.hdrs[2].value = "RE: Fwd: Printer down";
	start(f, "add_thread_index = yes\n", NULL);
	msg = deliver(f, &m, NULL);
	conv = added(msg, "X-Halo-Conversation-Id", 0);
	b64 = added(msg, "Thread-Index", 0);
	assert_non_null(b64);
	assert_int_equal(thread_index_decode(b64, strlen(b64), &ti),
	    THREAD_INDEX_OK);
	assert_int_equal(ti.n_children, 0);
	thread_key_hex(ti.guid, key);
	assert_string_equal(key, conv);
	assert_string_equal(added(msg, "Thread-Topic", 0), "Printer down");
	intake_msg_free(msg);

	/* a mail with its own index gets none added */
	m.hdrs[3].value = "<ti2@customer.example>";
	m.hdrs[4].name = "Thread-Index";
	m.hdrs[4].value = TI_HEADER;
	msg = deliver(f, &m, NULL);
	assert_null(added(msg, "Thread-Index", 0));
	assert_null(added(msg, "Thread-Topic", 0));
	assert_string_equal(added(msg, "X-Halo-Conversation-Id", 0), TI_KEY);
	intake_msg_free(msg);
}

/* A flood of forged X-Halo-* headers (thousands of copies, more distinct
 * names than are tracked) cannot crowd out our stamps or hide a forged
 * X-Halo-Status: one delete per tracked name, with its full count. */
static void
test_forged_flood(void **state)
{
	struct fixture *f = *state;
	struct mail m = { .rcpt = { "<support@acme.example>" },
	    .hdrs = { { "Message-ID", "<flood@customer.example>" } },
	    .body = "b\r\n" };
	const struct intake_edit *e;
	struct intake_msg *msg;
	char name[64];
	size_t n, i, deletes = 0;
	int status_count = -1;

	start(f, NULL, NULL);
	msg = intake_msg_new(f->in);
	assert_non_null(msg);
	intake_msg_envfrom(msg, "<alice@customer.example>");
	intake_msg_rcpt(msg, m.rcpt[0]);
	for (i = 0; i < 1500; i++) {           /* more names than tracked */
		snprintf(name, sizeof(name), "X-Halo-Junk%zu", i);
		intake_msg_header(msg, name, "x");
	}
	for (i = 0; i < 3000; i++)             /* then many forged statuses */
		intake_msg_header(msg, "X-Halo-Status", "queued; job=1");
	intake_msg_header(msg, "Message-ID", "<flood@customer.example>");
	intake_msg_eoh(msg);
	intake_msg_body(msg, m.body, strlen(m.body));
	assert_int_equal(intake_msg_eom(msg), INTAKE_CONTINUE);
	n = intake_msg_edits(msg, &e);
	for (i = 0; i < n; i++) {
		if (e[i].op != INTAKE_EDIT_DELETE)
			continue;
		deletes++;
		if (strcmp(e[i].name, "X-Halo-Status") == 0)
			status_count = e[i].count;
	}
	assert_int_equal(status_count, 3000);
	assert_true(deletes <= 1000 + 3);
	assert_non_null(added(msg, "X-Halo-Conversation-Id", 0));
	assert_non_null(added(msg, "X-Halo-Status", 0));
	assert_non_null(strstr(added(msg, "X-Halo-Status", 0), "queued; tenant=acme"));
	intake_msg_free(msg);
}

static int
group_setup(void **state)
{
	(void)state;
	log_init("test_intake", true, LOG_CRIT);   /* keep test output quiet */
	hdr_init();
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_unrouted),
		T(test_no_msgid),
		T(test_forged_ours),
		T(test_forged_flood),
		T(test_conversation_keys),
		T(test_skips),
		T(test_duplicate),
		T(test_two_tenants),
		T(test_one_tenant_two_routes),
		T(test_too_large),
		T(test_free_before_eom),
		T(test_loop),
		T(test_spool_error_tempfail),
		T(test_spool_error_accept),
		T(test_add_thread_index),
		T(test_preempted_msgid),
		T(test_outbound_auth),
		T(test_spoofed_agent_inbound),
		T(test_sender_auth),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
