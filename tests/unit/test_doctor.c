/*
 * test_doctor.c - unit tests for common/doctor.c without a Halo: the
 * store's check, the lines a tenant gets when no agent has a token (no
 * Halo call is made then), the request budget's ok and warn, the deadline
 * (a passed one skips the Halo checks with one FIX line), and that only
 * FIX lines count as problems. Each test works in its own temporary
 * directory (fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "conf.h"
#include "crypto.h"
#include "doctor.h"
#include "oauth.h"
#include "store.h"

#define LINES_MAX 16

struct fx {
	char dir[PATH_MAX];
	struct store *st;
	struct oauth *oa;
	struct conf *conf;
	/* the lines the last run handed over */
	enum doctor_level level[LINES_MAX];
	char text[LINES_MAX][DOCTOR_LINE_MAX];
	size_t n;
};

/* doctor_line_fn: keep the line. */
static void
keep_line(enum doctor_level level, const char *text, void *arg)
{
	struct fx *f = arg;

	assert_true(f->n < LINES_MAX);
	f->level[f->n] = level;
	snprintf(f->text[f->n], DOCTOR_LINE_MAX, "%s", text);
	f->n++;
}

/* The configuration TEXT (tenant "acme"), loaded from a file in the
 * fixture's directory. */
static struct conf *
load_conf(struct fx *f, const char *text)
{
	char path[PATH_MAX + 16];
	FILE *fp;
	int nerrors = 0;
	struct conf *c;

	snprintf(path, sizeof(path), "%s/test.conf", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "state_dir = %s\n%s", f->dir, text);
	fclose(fp);
	c = conf_load(path, stderr, &nerrors);
	assert_non_null(c);
	assert_int_equal(nerrors, 0);
	return c;
}

#define TENANT "[tenant acme]\nhalo_url = https://halo.invalid\n" \
	"client_id = x\nticket_type_id = 1\ncf_message_id = none\n" \
	"cf_conversation_id = none\n" \
	"route = support@acme.example intake agent=ann@acme.example\n"

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t key[CRYPTO_KEY_LEN];
	char db[PATH_MAX + 32], err[256];

	assert_non_null(f);
	assert_int_equal(fixture_dir_make(f->dir, "test_doctor"), 0);
	snprintf(db, sizeof(db), "%s/halo-milter.db", f->dir);
	f->st = store_open(db, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(crypto_random(key, sizeof(key)), 0);
	f->oa = oauth_new(f->st, key);
	assert_non_null(f->oa);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	conf_free(f->conf);
	oauth_free(f->oa);
	store_close(f->st);
	assert_int_equal(fixture_dir_remove(f->dir), 0);
	free(f);
	return 0;
}

static void
test_level_names(void **state)
{
	(void)state;
	assert_string_equal(doctor_level_name(DOCTOR_OK), "ok");
	assert_string_equal(doctor_level_name(DOCTOR_NOTE), "note");
	assert_string_equal(doctor_level_name(DOCTOR_WARN), "warn");
	assert_string_equal(doctor_level_name(DOCTOR_FIX), "fix");
}

/* A fresh SQLite store: one ok line naming it, no problem; a short lease
 * matters only on a shared store. */
static void
test_store(void **state)
{
	struct fx *f = *state;

	assert_int_equal(doctor_store(f->st, 5, 35, keep_line, f), 0);
	assert_int_equal(f->n, 1);
	assert_int_equal(f->level[0], DOCTOR_OK);
	assert_non_null(strstr(f->text[0], "store: sqlite, schema version"));
}

/* The route's agent has no token: a FIX naming the command, no Halo
 * call (halo.invalid would fail), then the budget's ok. */
static void
test_agent_without_token(void **state)
{
	struct fx *f = *state;

	f->conf = load_conf(f, TENANT);
	assert_int_equal(doctor_tenant(f->st, f->oa, f->conf->tenants[0], 0,
	    keep_line, f), 1);
	assert_int_equal(f->n, 2);
	assert_int_equal(f->level[0], DOCTOR_FIX);
	assert_string_equal(f->text[0], "agent ann@acme.example: no token;"
	    " enroll it (halo-milterctl token import ann@acme.example acme)");
	assert_int_equal(f->level[1], DOCTOR_OK);
	assert_string_equal(f->text[1], "request budget 250 per 300s (under"
	    " hosted Halo's 300 per 5 minutes)");
}

/* No route names an agent and none has a token. */
static void
test_no_agent(void **state)
{
	struct fx *f = *state;

	f->conf = load_conf(f, "[tenant acme]\nhalo_url = https://halo.invalid\n"
	    "client_id = x\nticket_type_id = 1\n");
	assert_int_equal(doctor_tenant(f->st, f->oa, f->conf->tenants[0], 0,
	    keep_line, f), 1);
	assert_int_equal(f->level[0], DOCTOR_FIX);
	assert_non_null(strstr(f->text[0], "no agent: routes name none"));
}

/* Over one request a second: a warning, which is not a problem. */
static void
test_budget_warns(void **state)
{
	struct fx *f = *state;

	f->conf = load_conf(f, TENANT "rate_limit = 600\nrate_window = 60\n");
	assert_int_equal(doctor_tenant(f->st, f->oa, f->conf->tenants[0], 0,
	    keep_line, f), 1);
	assert_int_equal(f->n, 2);
	assert_int_equal(f->level[1], DOCTOR_WARN);
	assert_non_null(strstr(f->text[1], "above hosted Halo's 300 per 5"
	    " minutes"));
}

/* A deadline already passed: no agent is checked, one FIX says why, the
 * budget (no Halo call) is still reported. */
static void
test_deadline_passed(void **state)
{
	struct fx *f = *state;

	f->conf = load_conf(f, TENANT);
	assert_int_equal(doctor_tenant(f->st, f->oa, f->conf->tenants[0],
	    time(NULL) - 1, keep_line, f), 1);
	assert_int_equal(f->n, 2);
	assert_int_equal(f->level[0], DOCTOR_FIX);
	assert_non_null(strstr(f->text[0], "out of time"));
	assert_int_equal(f->level[1], DOCTOR_OK);
	assert_non_null(strstr(f->text[1], "request budget"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_without_token, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget_warns, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deadline_passed, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
