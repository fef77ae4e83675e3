/*
 * test_confgen.c - unit tests for common/confgen.c (configuration
 * generations: a reference keeps its generation alive across a publish, the
 * last user frees it) and conf_reload_keep() (what a reload may change).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "confgen.h"
#include "fixture.h"

/* A configuration from TEXT (written to DIR/NAME); the test fails when it
 * does not load. */
static struct conf *
load(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	struct conf *conf;
	FILE *fp;
	int nerrors = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	conf = conf_load(path, stderr, &nerrors);
	assert_non_null(conf);
	assert_int_equal(nerrors, 0);
	return conf;
}

#define ACME \
	"[tenant acme]\n" \
	"halo_url = https://acme.example\n" \
	"client_id = id\n" \
	"ticket_type_id = 1\n"
#define GLOBEX \
	"[tenant globex]\n" \
	"halo_url = https://globex.example\n" \
	"client_id = id2\n" \
	"ticket_type_id = 2\n"

/* A reference outlives a publish; the old generation goes with its last
 * user, the current one stays. */
static void test_generations(void **state)
{
	char dir[PATH_MAX];
	struct confgen *cg;
	struct confgen_ref *r1, *r1b, *r2;
	struct conf *c1, *c2;

	(void)state;
	assert_int_equal(fixture_dir_make(dir, "test_confgen"), 0);
	c1 = load(dir, "1.conf", "socket = inet:1@127.0.0.1\n" ACME
	    "route = a@x.example intake agent=a@msp.example\n");
	c2 = load(dir, "2.conf", "socket = inet:1@127.0.0.1\n" ACME
	    "route = b@x.example intake agent=a@msp.example\n");
	cg = confgen_new(c1);
	assert_non_null(cg);
	assert_int_equal(confgen_live(cg), 1);
	r1 = confgen_acquire(cg);
	r1b = confgen_acquire(cg);
	assert_ptr_equal(confgen_conf(r1), c1);
	assert_int_equal(confgen_number(r1), 1);

	assert_int_equal(confgen_publish(cg, c2), 2);
	assert_int_equal(confgen_live(cg), 2);
	r2 = confgen_acquire(cg);
	assert_ptr_equal(confgen_conf(r2), c2);
	assert_int_equal(confgen_number(r2), 2);
	/* the message that started under generation 1 still routes by it */
	assert_non_null(conf_route_lookup(confgen_conf(r1), "a@x.example"));
	assert_null(conf_route_lookup(confgen_conf(r1), "b@x.example"));
	assert_non_null(conf_route_lookup(confgen_conf(r2), "b@x.example"));
	assert_null(confgen_release(r1));
	assert_int_equal(confgen_live(cg), 2);    /* r1b still uses it */
	assert_null(confgen_release(r1b));
	assert_int_equal(confgen_live(cg), 1);    /* generation 1 is gone */
	assert_null(confgen_release(r2));
	assert_int_equal(confgen_live(cg), 1);    /* the current one stays */
	assert_null(confgen_release(NULL));
	assert_null(confgen_free(cg));
	assert_null(confgen_free(NULL));
	assert_int_equal(fixture_dir_remove(dir), 0);
}

struct race {
	struct confgen *cg;
	unsigned rounds;
	bool bad;                   /* a reference saw no tenant */
};

/* A user: take, read, drop, many times. */
static void *race_user(void *arg)
{
	struct race *r = arg;
	unsigned i;

	for (i = 0; i < r->rounds; i++) {
		struct confgen_ref *ref = confgen_acquire(r->cg);
		const struct conf *conf = confgen_conf(ref);

		if (conf->n_tenants != 1 || conf->tenants[0]->n_routes != 1)
			r->bad = true;
		confgen_release(ref);
	}
	return NULL;
}

/* Users on four threads while generations are published: each sees a
 * whole configuration, and only the current one is left at the end (the
 * sanitizer build finds a use after free or a leak). */
static void test_publish_under_load(void **state)
{
	char dir[PATH_MAX], name[32];
	struct race race[4];
	pthread_t th[4];
	struct confgen *cg;
	unsigned i;

	(void)state;
	assert_int_equal(fixture_dir_make(dir, "test_confgen"), 0);
	cg = confgen_new(load(dir, "0.conf", ACME
	    "route = a@x.example intake agent=a@msp.example\n"));
	assert_non_null(cg);
	for (i = 0; i < 4; i++) {
		race[i].cg = cg;
		race[i].rounds = 20000;
		race[i].bad = false;
		assert_int_equal(pthread_create(&th[i], NULL, race_user,
		    &race[i]), 0);
	}
	for (i = 1; i <= 50; i++) {
		snprintf(name, sizeof(name), "%u.conf", i);
		assert_int_equal(confgen_publish(cg, load(dir, name, ACME
		    "route = a@x.example intake agent=a@msp.example\n")), i + 1);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_false(race[i].bad);
	}
	assert_int_equal(confgen_live(cg), 1);
	confgen_free(cg);
	assert_int_equal(fixture_dir_remove(dir), 0);
}

/* A reload changes routes and per-tenant settings; keys read once at
 * start keep the running value and are reported. */
static void test_reload_keep(void **state)
{
	char dir[PATH_MAX], *report = NULL;
	size_t report_len = 0;
	struct conf *cur, *next;
	FILE *out;

	(void)state;
	assert_int_equal(fixture_dir_make(dir, "test_confgen"), 0);
	cur = load(dir, "cur.conf", "socket = inet:1@127.0.0.1\n"
	    "workers = 2\nadmin_networks = 10.0.0.0/8\nlog_level = info\n"
	    ACME "rate_limit = 40\n"
	    "route = a@x.example intake agent=a@msp.example\n" GLOBEX);
	next = load(dir, "next.conf", "socket = inet:2@127.0.0.1\n"
	    "workers = 4\nadmin_networks = 192.168.0.0/16\nlog_level = debug\n"
	    ACME "rate_limit = 50\nfallback_client_id = 7\n"
	    "route = b@x.example intake agent=a@msp.example\n" GLOBEX);
	out = open_memstream(&report, &report_len);
	assert_non_null(out);
	assert_int_equal(conf_reload_keep(next, cur, out), 4);
	assert_int_equal(fclose(out), 0);
	/* kept */
	assert_string_equal(next->socket, "inet:1@127.0.0.1");
	assert_int_equal(next->workers, 2);
	assert_int_equal(next->n_admin_networks, 1);
	assert_true(conf_admin_allowed(next, "10.1.2.3"));
	assert_false(conf_admin_allowed(next, "192.168.1.1"));
	assert_int_equal(next->tenants[0]->rate_limit, 40);
	/* changed live */
	assert_int_equal(next->log_level, 7);
	assert_int_equal(next->tenants[0]->fallback_client_id, 7);
	assert_non_null(conf_route_lookup(next, "b@x.example"));
	assert_null(conf_route_lookup(next, "a@x.example"));
	assert_non_null(strstr(report, "socket changed: needs a restart"));
	assert_non_null(strstr(report, "workers changed: needs a restart"));
	assert_non_null(strstr(report, "admin_networks changed: needs a"
	    " restart"));
	assert_non_null(strstr(report, "tenant 'acme': rate_limit changed:"
	    " needs a restart"));
	free(report);
	report = NULL;

	/* the same file again: nothing to report */
	out = open_memstream(&report, &report_len);
	assert_int_equal(conf_reload_keep(next, cur, out), 0);
	assert_int_equal(fclose(out), 0);
	assert_string_equal(report, "");
	free(report);
	report = NULL;
	conf_free(next);

	/* a tenant added or removed: refused */
	next = load(dir, "gone.conf", "socket = inet:1@127.0.0.1\n" ACME);
	out = open_memstream(&report, &report_len);
	assert_int_equal(conf_reload_keep(next, cur, out), -1);
	assert_int_equal(fclose(out), 0);
	assert_non_null(strstr(report, "[tenant] sections changed"));
	free(report);
	conf_free(next);
	conf_free(cur);
	assert_int_equal(fixture_dir_remove(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_publish_under_load),
		cmocka_unit_test(test_reload_keep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
