/*
 * test_spooljob.c - unit tests for common/spooljob.c and the spool
 * trailer (common/spool.c): the job rows a spool file carries after its
 * message, what a reader of the file sees, the strict decoder, and
 * start-up recovery of rows whose commit was lost. Each test works in its
 * own temporary directory (fixture.h) with a SQLite store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "mime.h"
#include "spool.h"
#include "spooljob.h"
#include "store.h"

#define KEY "0123456789abcdef0123456789abcdef"

struct fixture {
	char root[PATH_MAX];
	char spool[PATH_MAX + 8];
	char db[PATH_MAX + 16];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL || fixture_dir_make(f->root, "test_spooljob") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->root);
	snprintf(f->db, sizeof(f->db), "%s/halo.db", f->root);
	if (spool_init(f->spool) != 0 ||
	    (f->st = store_open(f->db, err, sizeof(err))) == NULL) {
		fixture_dir_remove(f->root);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	fixture_dir_remove(f->root);
	free(f);
	return 0;
}

static const char MSG[] = "From: Ann <ann@acme.example>\r\n"
    "To: support@msp.example\r\nSubject: Printer\r\n"
    "Message-ID: <sj@acme.example>\r\n\r\nThe printer is on fire.\r\n";

/* Two rows of one message, as end of message makes them. */
static void
rows_make(struct store_job_new r[2])
{
	memset(r, 0, 2 * sizeof(*r));
	r[0].tenant = "acme";
	r[0].message_id = "<sj@acme.example>";
	r[0].state = STORE_QUEUED;
	r[0].queue_id = "4F1A2";
	r[0].env_from = "ann@acme.example";
	r[0].from_addr = "ann@acme.example";
	r[0].subject = "Printer \"on fire\" \xc3\xa9\n\\";
	r[0].recipients = "support@msp.example";
	r[0].agent = "alice@msp.example";
	r[0].mode = "intake";
	r[0].conv_key = KEY;
	r[0].starts_thread = true;
	r[0].dedup_key = "ab";
	r[0].sender_auth = "aligned";
	r[1] = r[0];
	r[1].tenant = "globex";
	r[1].state = STORE_SKIPPED;
	r[1].reason = "auto-reply";
	r[1].mode = "thread-only";
	r[1].no_create = true;
	r[1].agent = NULL;
}

/* Spool MSG with ROWS in its trailer; its name into NAME. */
static void
spool_with_rows(struct fixture *f, const struct store_job_new *rows,
    size_t n, char name[SPOOL_NAME_MAX])
{
	struct spool_file *sf = spool_create(f->spool);
	char *json;

	assert_non_null(sf);
	assert_int_equal(spool_write(sf, MSG, sizeof(MSG) - 1), 0);
	json = spooljob_encode(rows, n, "<sj@acme.example>", KEY);
	assert_non_null(json);
	assert_int_equal(spool_write_trailer(sf, json, strlen(json)), 0);
	free(json);
	/* the trailer is not the message's */
	assert_int_equal(spool_size(sf), sizeof(MSG) - 1);
	assert_int_equal(spool_commit(sf), 0);
	snprintf(name, SPOOL_NAME_MAX, "%s", spool_name(sf));
	spool_close(sf);
}

/* Every field survives the trailer; the message's bytes come first. */
static void
test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct store_job_new r[2];
	struct spooljob *sj;
	char name[SPOOL_NAME_MAX], path[PATH_MAX], *json;
	uint64_t size;
	struct stat sb;
	FILE *fp;
	char head[sizeof(MSG)];

	rows_make(r);
	spool_with_rows(f, r, 2, name);
	assert_int_equal(spool_path(f->spool, name, path, sizeof(path)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_true((uint64_t)sb.st_size > sizeof(MSG) - 1);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(head, 1, sizeof(MSG) - 1, fp), sizeof(MSG) - 1);
	fclose(fp);
	assert_memory_equal(head, MSG, sizeof(MSG) - 1);

	assert_int_equal(spool_read_trailer(path, &size, &json), 0);
	assert_int_equal(size, sizeof(MSG) - 1);
	sj = spooljob_decode(json, strlen(json));
	free(json);
	assert_non_null(sj);
	assert_int_equal(sj->n, 2);
	assert_string_equal(sj->conv_msgid, "<sj@acme.example>");
	assert_string_equal(sj->conv_key, KEY);
	assert_string_equal(sj->rows[0].tenant, "acme");
	assert_string_equal(sj->rows[0].subject, r[0].subject);
	assert_string_equal(sj->rows[0].queue_id, "4F1A2");
	assert_string_equal(sj->rows[0].agent, "alice@msp.example");
	assert_string_equal(sj->rows[0].sender_auth, "aligned");
	assert_null(sj->rows[0].reason);
	assert_null(sj->rows[0].outbound_auth);
	assert_int_equal(sj->rows[0].state, STORE_QUEUED);
	assert_true(sj->rows[0].starts_thread);
	assert_false(sj->rows[0].no_create);
	assert_string_equal(sj->rows[1].tenant, "globex");
	assert_int_equal(sj->rows[1].state, STORE_SKIPPED);
	assert_string_equal(sj->rows[1].reason, "auto-reply");
	assert_string_equal(sj->rows[1].mode, "thread-only");
	assert_true(sj->rows[1].no_create);
	assert_null(sj->rows[1].agent);
	spooljob_free(sj);
}

/* The MIME reader takes only the message, not the rows after it. */
static void
test_mime_reads_message_only(void **state)
{
	struct fixture *f = *state;
	struct store_job_new r[2];
	struct mime_message *m = NULL;
	struct mime_limits lim;
	char name[SPOOL_NAME_MAX], path[PATH_MAX], err[256];

	rows_make(r);
	spool_with_rows(f, r, 2, name);
	assert_int_equal(spool_path(f->spool, name, path, sizeof(path)), 0);
	memset(&lim, 0, sizeof(lim));
	lim.file_len = sizeof(MSG) - 1;
	assert_int_equal(mime_extract(path, &lim, &m, err, sizeof(err)), 0);
	assert_non_null(m->text);
	assert_non_null(strstr(m->text, "on fire"));
	assert_null(strstr(m->text, "HALO-SPOOL-ROWS"));
	assert_null(strstr(m->text, "tenant"));
	mime_message_free(m);
	/* without the bound, the trailer would be read as the body */
	lim.file_len = 0;
	assert_int_equal(mime_extract(path, &lim, &m, err, sizeof(err)), 0);
	assert_non_null(strstr(m->text, "HALO-SPOOL-ROWS"));
	mime_message_free(m);
}

/* The decoder refuses anything but a well-formed trailer. */
static void
test_decode_strict(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"v\":2,\"rows\":[]}",
		"{\"v\":1,\"rows\":[]}",
		"{\"v\":1,\"rows\":{}}",
		/* no tenant */
		"{\"v\":1,\"rows\":[{\"message_id\":\"<a@b>\",\"state\":"
		"\"queued\",\"mode\":\"intake\",\"no_create\":false,"
		"\"starts_thread\":true}]}",
		/* a state end of message never writes */
		"{\"v\":1,\"rows\":[{\"tenant\":\"a\",\"message_id\":\"<a@b>\","
		"\"state\":\"done\",\"mode\":\"intake\",\"no_create\":false,"
		"\"starts_thread\":true}]}",
		/* an unknown mode */
		"{\"v\":1,\"rows\":[{\"tenant\":\"a\",\"message_id\":\"<a@b>\","
		"\"state\":\"queued\",\"mode\":\"x\",\"no_create\":false,"
		"\"starts_thread\":true}]}",
		/* a number where a string goes */
		"{\"v\":1,\"rows\":[{\"tenant\":7,\"message_id\":\"<a@b>\","
		"\"state\":\"queued\",\"mode\":\"intake\",\"no_create\":false,"
		"\"starts_thread\":true}]}",
		/* a bad conversation key */
		"{\"v\":1,\"rows\":[{\"tenant\":\"a\",\"message_id\":\"<a@b>\","
		"\"state\":\"queued\",\"mode\":\"intake\",\"conv_key\":\"zz\","
		"\"no_create\":false,\"starts_thread\":true}]}",
		/* a conversation Message-ID without its key */
		"{\"v\":1,\"conv_msgid\":\"<a@b>\",\"rows\":[{\"tenant\":\"a\","
		"\"message_id\":\"<a@b>\",\"state\":\"queued\",\"mode\":"
		"\"intake\",\"no_create\":false,\"starts_thread\":true}]}",
		/* a missing boolean */
		"{\"v\":1,\"rows\":[{\"tenant\":\"a\",\"message_id\":\"<a@b>\","
		"\"state\":\"queued\",\"mode\":\"intake\",\"no_create\":false}]}",
		"{\"v\":1,\"rows\":[{\"tenant\":\"a\"",
	};
	const char *good = "{\"v\":1,\"rows\":[{\"tenant\":\"a\",\"message_id\":"
	    "\"<a@b>\",\"state\":\"queued\",\"mode\":\"intake\",\"no_create\":"
	    "false,\"starts_thread\":true}]}";
	struct spooljob *sj;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sj = spooljob_decode(bad[i], strlen(bad[i]));
		if (sj != NULL)
			fail_msg("accepted bad trailer %zu: %s", i, bad[i]);
	}
	sj = spooljob_decode(good, strlen(good));
	assert_non_null(sj);
	spooljob_free(sj);
}

/* A commit that was lost comes back; a file no commit lost is left. */
static void
test_recover(void **state)
{
	struct fixture *f = *state;
	struct store_job_new r[2], j;
	enum store_status res;
	struct store_job *got;
	char name[SPOOL_NAME_MAX], name2[SPOOL_NAME_MAX], key[33];
	struct spooljob_recovery rec;
	unsigned tmp;
	int64_t id, id2;

	rows_make(r);
	spool_with_rows(f, r, 2, name);
	assert_int_equal(spooljob_recover(f->spool, f->st, &rec), 0);
	assert_int_equal(rec.restored, 1);
	assert_int_equal(rec.damaged, 0);
	assert_int_equal(store_job_find(f->st, "acme", "<sj@acme.example>",
	    &id), STORE_OK);
	assert_int_equal(store_job_get(f->st, id, &got), STORE_OK);
	assert_string_equal(got->spool, name);
	assert_int_equal(got->size, sizeof(MSG) - 1);
	assert_int_equal(got->state, STORE_QUEUED);
	assert_string_equal(got->agent, "alice@msp.example");
	assert_string_equal(got->mode, "intake");
	store_job_free(got);
	assert_int_equal(store_job_find(f->st, "globex", "<sj@acme.example>",
	    &id2), STORE_OK);
	assert_int_equal(store_conv_get(f->st, "<sj@acme.example>", key),
	    STORE_OK);
	assert_string_equal(key, KEY);

	/* a second start finds the rows there: nothing to do, and the
	 * orphan sweep keeps the file */
	assert_int_equal(spooljob_recover(f->spool, f->st, &rec), 0);
	assert_int_equal(rec.restored, 0);
	assert_int_equal(rec.orphans, 0);

	/* another copy's file whose rows are all there already (a
	 * duplicate whose file was to go): nothing restored, it goes */
	spool_with_rows(f, r, 2, name2);
	assert_int_equal(spooljob_recover(f->spool, f->st, &rec), 0);
	assert_int_equal(rec.restored, 0);
	assert_int_equal(rec.orphans, 1);

	/* a message already logged, whose job retention deleted: never
	 * again (its ticket is in the thread index) */
	j = r[0];
	j.message_id = "<purged@acme.example>";
	j.spool = NULL;
	assert_int_equal(store_jobs_add(f->st, &j, 1, &res, &id, NULL, NULL),
	    STORE_OK);
	assert_int_equal(store_job_posted(f->st, id, 77, 1), STORE_OK);
	assert_int_equal(store_job_finish(f->st, id, STORE_DONE, NULL),
	    STORE_OK);
	assert_int_equal(store_jobs_purge(f->st, time(NULL) + 10, 100, &tmp,
	    NULL, NULL), STORE_OK);
	assert_int_equal(store_job_find(f->st, "acme", "<purged@acme.example>",
	    &id), STORE_NOT_FOUND);
	r[0].message_id = "<purged@acme.example>";
	spool_with_rows(f, r, 1, name2);
	assert_int_equal(spooljob_recover(f->spool, f->st, &rec), 0);
	assert_int_equal(rec.restored, 0);
	assert_int_equal(store_job_find(f->st, "acme", "<purged@acme.example>",
	    &id), STORE_NOT_FOUND);
	assert_int_equal(rec.orphans, 1);       /* its file goes */
}

/* A damaged trailer is reported and its file removed as an orphan, as is
 * a file from before trailers that no job names. */
static void
test_recover_damaged(void **state)
{
	struct fixture *f = *state;
	struct spool_file *sf;
	struct spooljob_recovery rec;
	const char *junk = "{\"v\":1,\"rows\":[]}";

	sf = spool_create(f->spool);
	assert_non_null(sf);
	assert_int_equal(spool_write(sf, MSG, sizeof(MSG) - 1), 0);
	assert_int_equal(spool_write_trailer(sf, junk, strlen(junk)), 0);
	assert_int_equal(spool_commit(sf), 0);
	spool_close(sf);
	/* and a file from before trailers: no rows to restore */
	sf = spool_create(f->spool);
	assert_non_null(sf);
	assert_int_equal(spool_write(sf, MSG, sizeof(MSG) - 1), 0);
	assert_int_equal(spool_commit(sf), 0);
	spool_close(sf);
	assert_int_equal(spooljob_recover(f->spool, f->st, &rec), 0);
	assert_int_equal(rec.restored, 0);
	assert_int_equal(rec.damaged, 1);
	assert_int_equal(rec.orphans, 2);       /* both go */
}

/* Rows a spool file holds are committed without a sync on SQLite. */
static void
test_relaxed_commit(void **state)
{
	struct fixture *f = *state;
	struct store_job_new r[2];
	enum store_status res[2];
	uint64_t batches, entries, relaxed;
	int64_t ids[2];

	rows_make(r);
	assert_int_equal(store_jobs_add(f->st, r, 2, res, ids, NULL, NULL),
	    STORE_OK);
	store_group_stats(f->st, &batches, &entries, &relaxed);
	assert_int_equal(relaxed, 0);
	r[0].message_id = r[1].message_id = "<sj2@acme.example>";
	r[0].spool_holds_row = true;    /* one row that is not held: synced */
	assert_int_equal(store_jobs_add(f->st, r, 2, res, ids, NULL, NULL),
	    STORE_OK);
	store_group_stats(f->st, &batches, &entries, &relaxed);
	assert_int_equal(relaxed, 0);
	r[0].message_id = r[1].message_id = "<sj3@acme.example>";
	r[1].spool_holds_row = true;
	assert_int_equal(store_jobs_add(f->st, r, 2, res, ids, NULL, NULL),
	    STORE_OK);
	store_group_stats(f->st, &batches, &entries, &relaxed);
	assert_int_equal(relaxed, 1);
	assert_int_equal(entries, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mime_reads_message_only,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_strict, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_damaged, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_relaxed_commit, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("spooljob", tests, NULL, NULL);
}
