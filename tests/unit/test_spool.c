/*
 * test_spool.c - unit tests for common/spool.c: the tmp/ -> msg/ life of a
 * spool file, its size and digest, removal and start-up recovery.
 * Each test works in its own temporary directory (fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "fixture.h"
#include "spool.h"

struct fixture {
	char root[PATH_MAX];     /* fixture_dir_make directory */
	char spool[PATH_MAX + 8];  /* ROOT/spool, not created by setup */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (fixture_dir_make(f->root, "test_spool") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->root);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	fixture_dir_remove(f->root);
	free(f);
	return 0;
}

/* Number of entries (other than . and ..) in DIR/SUB; -1 when unreadable. */
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

/* Read a whole file into a malloc'd buffer; its length goes to *LEN. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	if (buf != NULL) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	return buf;
}

/* Create a file in DIR/SUB with some content. */
static void
touch(const char *dir, const char *sub, const char *name)
{
	char path[PATH_MAX * 2];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("leftover\r\n", fp);
	fclose(fp);
}

/* True when PATH exists. */
static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* spool_init makes tmp/ and msg/ (0700), and tolerates existing ones. */
static void
test_init(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2];
	struct stat st;

	assert_int_equal(spool_init(f->spool), 0);
	snprintf(path, sizeof(path), "%s/tmp", f->spool);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/msg", f->spool);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(spool_init(f->spool), 0);         /* again */
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	assert_int_equal(count_files(f->spool, "msg"), 0);

	/* a parent that does not exist */
	snprintf(path, sizeof(path), "%s/no/such/dir", f->root);
	assert_int_equal(spool_init(path), -1);
}

/* Write in pieces, commit: exact content, 0600, tmp/ empty, size, digest. */
static void
test_write_commit(void **state)
{
	struct fixture *f = *state;
	static const char part1[] = "Subject: hello\r\n\r\n";
	static const char part2[] = "body line 1\r\nbody line 2\r\n";
	char want[PATH_MAX * 2], path[PATH_MAX * 2], tmp_path[PATH_MAX * 2];
	struct spool_file *sf;
	struct stat st;
	char *got, name[SPOOL_NAME_MAX];
	size_t len;

	assert_int_equal(spool_init(f->spool), 0);
	sf = spool_create(f->spool);
	assert_non_null(sf);
	strcpy(name, spool_name(sf));
	assert_true(strlen(name) > 0);
	assert_null(strchr(name, '/'));
	assert_int_equal(count_files(f->spool, "tmp"), 1);
	snprintf(tmp_path, sizeof(tmp_path), "%s/tmp/%s", f->spool, name);
	assert_true(exists(tmp_path));

	assert_int_equal(spool_write(sf, part1, strlen(part1)), 0);
	assert_int_equal(spool_write(sf, part2, strlen(part2)), 0);
	assert_int_equal(spool_write(sf, "", 0), 0);
	assert_int_equal(spool_size(sf), strlen(part1) + strlen(part2));
	assert_int_equal(count_files(f->spool, "msg"), 0);   /* not yet */

	assert_int_equal(spool_commit(sf), 0);
	assert_string_equal(spool_name(sf), name);
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	assert_int_equal(count_files(f->spool, "msg"), 1);
	assert_false(exists(tmp_path));

	assert_int_equal(spool_path(f->spool, name, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/msg/%s", f->spool, name);
	assert_string_equal(path, want);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	snprintf(want, sizeof(want), "%s%s", part1, part2);
	got = slurp(path, &len);
	assert_non_null(got);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
	free(got);

	assert_true(spool_size(sf) == strlen(want));

	/* no writes after commit; closing keeps the committed file */
	assert_int_equal(spool_write(sf, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(spool_commit(sf), -1);
	assert_null(spool_close(sf));
	assert_true(exists(path));

	/* spool_remove */
	assert_int_equal(spool_remove(f->spool, name), 0);
	assert_false(exists(path));
	assert_int_equal(spool_remove(f->spool, name), -1);
	assert_int_equal(errno, ENOENT);
}

/* An empty file and a large one (binary, with NULs). */
static void
test_sizes(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX * 2];
	struct spool_file *sf;
	unsigned char *big;
	size_t i, n = 3 * 1024 * 1024 + 7, len;
	char *got;

	assert_int_equal(spool_init(f->spool), 0);
	sf = spool_create(f->spool);
	assert_non_null(sf);
	assert_int_equal(spool_commit(sf), 0);
	assert_int_equal(spool_size(sf), 0);
	sf = spool_close(sf);

	big = malloc(n);
	assert_non_null(big);
	for (i = 0; i < n; i++)
		big[i] = (unsigned char)(i * 31 + (i >> 9));
	sf = spool_create(f->spool);
	assert_non_null(sf);
	assert_int_equal(spool_write(sf, big, n / 2), 0);
	assert_int_equal(spool_write(sf, big + n / 2, n - n / 2), 0);
	assert_int_equal(spool_commit(sf), 0);
	assert_true(spool_size(sf) == n);
	assert_int_equal(spool_path(f->spool, spool_name(sf), path, sizeof(path)), 0);
	got = slurp(path, &len);
	assert_non_null(got);
	assert_int_equal(len, n);
	assert_memory_equal(got, big, n);
	free(got);
	free(big);
	spool_close(sf);
	assert_int_equal(count_files(f->spool, "msg"), 2);
}

/* Names are unique. */
static void
test_unique_names(void **state)
{
	struct fixture *f = *state;
	struct spool_file *sf[20];
	int i, j;

	assert_int_equal(spool_init(f->spool), 0);
	for (i = 0; i < 20; i++) {
		sf[i] = spool_create(f->spool);
		assert_non_null(sf[i]);
		for (j = 0; j < i; j++)
			assert_string_not_equal(spool_name(sf[i]), spool_name(sf[j]));
	}
	assert_int_equal(count_files(f->spool, "tmp"), 20);
	for (i = 0; i < 20; i++)
		sf[i] = spool_close(sf[i]);
	assert_int_equal(count_files(f->spool, "tmp"), 0);
}

/* Closing an uncommitted file removes it from tmp/ and never reaches msg/. */
static void
test_close_uncommitted(void **state)
{
	struct fixture *f = *state;
	struct spool_file *sf;

	assert_int_equal(spool_init(f->spool), 0);
	sf = spool_create(f->spool);
	assert_non_null(sf);
	assert_int_equal(spool_write(sf, "partial", 7), 0);
	assert_int_equal(count_files(f->spool, "tmp"), 1);
	assert_null(spool_close(sf));
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	assert_int_equal(count_files(f->spool, "msg"), 0);
	assert_null(spool_close(NULL));
}

/* spool_create fails cleanly when the spool was never initialised. */
static void
test_create_without_init(void **state)
{
	struct fixture *f = *state;

	errno = 0;
	assert_null(spool_create(f->spool));
	assert_int_equal(errno, ENOENT);
}

/* Names kept by spool_recover: the ones listed in ARG (NULL-terminated). */
static bool
is_used(const char *name, void *arg)
{
	const char *const *keep = arg;

	for (; *keep != NULL; keep++)
		if (strcmp(*keep, name) == 0)
			return true;
	return false;
}

/* Recovery removes tmp/ leftovers and unreferenced msg/ files only. */
static void
test_recover(void **state)
{
	struct fixture *f = *state;
	const char *keep[] = { "kept-1", "kept-2", NULL };
	unsigned tmp_removed = 99, orphans_removed = 99;
	char path[PATH_MAX * 2];
	struct spool_file *sf;

	assert_int_equal(spool_init(f->spool), 0);
	touch(f->spool, "tmp", "crash-1");
	touch(f->spool, "tmp", "crash-2");
	touch(f->spool, "tmp", "kept-1");       /* in tmp/: removed regardless */
	touch(f->spool, "msg", "kept-1");
	touch(f->spool, "msg", "kept-2");
	touch(f->spool, "msg", "orphan-1");
	touch(f->spool, "msg", "orphan-2");
	touch(f->spool, "msg", "orphan-3");
	touch(f->spool, "msg", ".hidden");      /* dot files are not ours */

	assert_int_equal(spool_recover(f->spool, is_used, keep, &tmp_removed,
	    &orphans_removed), 0);
	assert_int_equal(tmp_removed, 3);
	assert_int_equal(orphans_removed, 3);
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	assert_int_equal(count_files(f->spool, "msg"), 3);
	snprintf(path, sizeof(path), "%s/msg/kept-1", f->spool);
	assert_true(exists(path));
	snprintf(path, sizeof(path), "%s/msg/kept-2", f->spool);
	assert_true(exists(path));
	snprintf(path, sizeof(path), "%s/msg/orphan-1", f->spool);
	assert_false(exists(path));

	/* a committed file nobody refers to is an orphan */
	sf = spool_create(f->spool);
	assert_non_null(sf);
	assert_int_equal(spool_commit(sf), 0);
	sf = spool_close(sf);
	assert_int_equal(spool_recover(f->spool, is_used, keep, &tmp_removed,
	    &orphans_removed), 0);
	assert_int_equal(tmp_removed, 0);
	assert_int_equal(orphans_removed, 1);

	/* nothing to do */
	assert_int_equal(spool_recover(f->spool, is_used, keep, &tmp_removed,
	    &orphans_removed), 0);
	assert_int_equal(tmp_removed, 0);
	assert_int_equal(orphans_removed, 0);

	/* unreadable spool */
	assert_int_equal(spool_recover(f->root, is_used, keep, &tmp_removed,
	    &orphans_removed), -1);
}

/* A path that does not fit is refused. */
static void
test_path_too_long(void **state)
{
	struct fixture *f = *state;
	char small[16];

	assert_int_equal(spool_path(f->spool, "name", small, sizeof(small)), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

/* Commits from several threads at once: every file is in msg/ with its
 * bytes, every commit counted by the grouped directory fsync, which never
 * runs more fsyncs than commits; then a second spool takes the group over
 * once it is idle. */
#define GROUP_THREADS 6
#define GROUP_FILES   25

struct committer {
	const char *spool;
	pthread_barrier_t *go;
	int who, failed;
	char names[GROUP_FILES][SPOOL_NAME_MAX];
};

static void *
committer_run(void *arg)
{
	struct committer *c = arg;
	char body[64];
	int i;

	pthread_barrier_wait(c->go);
	for (i = 0; i < GROUP_FILES; i++) {
		struct spool_file *sf = spool_create(c->spool);

		snprintf(body, sizeof(body), "Subject: %d-%d\r\n\r\nx\r\n", c->who, i);
		if (sf == NULL || spool_write(sf, body, strlen(body)) != 0 ||
		    spool_commit(sf) != 0) {
			c->failed++;
			spool_close(sf);
			continue;
		}
		snprintf(c->names[i], SPOOL_NAME_MAX, "%s", spool_name(sf));
		spool_close(sf);
	}
	return NULL;
}

static void
test_group_dir_sync(void **state)
{
	struct fixture *f = *state;
	struct committer c[GROUP_THREADS];
	pthread_t tid[GROUP_THREADS];
	pthread_barrier_t go;
	uint64_t syncs0, calls0, syncs, calls;
	char path[PATH_MAX * 2], want[64], other[PATH_MAX * 2], *got;
	size_t len;
	int t, i;
	struct spool_file *sf;

	assert_int_equal(spool_init(f->spool), 0);
	spool_sync_stats(&syncs0, &calls0);
	pthread_barrier_init(&go, NULL, GROUP_THREADS);
	for (t = 0; t < GROUP_THREADS; t++) {
		memset(&c[t], 0, sizeof(c[t]));
		c[t].spool = f->spool;
		c[t].go = &go;
		c[t].who = t;
		assert_int_equal(pthread_create(&tid[t], NULL, committer_run,
		    &c[t]), 0);
	}
	for (t = 0; t < GROUP_THREADS; t++)
		assert_int_equal(pthread_join(tid[t], NULL), 0);
	pthread_barrier_destroy(&go);
	for (t = 0; t < GROUP_THREADS; t++) {
		assert_int_equal(c[t].failed, 0);
		for (i = 0; i < GROUP_FILES; i++) {
			assert_int_equal(spool_path(f->spool, c[t].names[i], path,
			    sizeof(path)), 0);
			got = slurp(path, &len);
			assert_non_null(got);
			snprintf(want, sizeof(want), "Subject: %d-%d\r\n\r\nx\r\n",
			    t, i);
			assert_string_equal(got, want);
			free(got);
		}
	}
	assert_int_equal(count_files(f->spool, "msg"),
	    GROUP_THREADS * GROUP_FILES);
	assert_int_equal(count_files(f->spool, "tmp"), 0);
	spool_sync_stats(&syncs, &calls);
	assert_true(calls - calls0 == GROUP_THREADS * GROUP_FILES);
	assert_true(syncs - syncs0 >= 1 && syncs - syncs0 <= calls - calls0);

	/* another spool: the group follows it */
	snprintf(other, sizeof(other), "%s/other", f->root);
	assert_int_equal(spool_init(other), 0);
	sf = spool_create(other);
	assert_non_null(sf);
	assert_int_equal(spool_write(sf, "a", 1), 0);
	assert_int_equal(spool_commit(sf), 0);
	assert_int_equal(spool_path(other, spool_name(sf), path, sizeof(path)),
	    0);
	assert_true(exists(path));
	spool_close(sf);
	spool_sync_stats(&syncs, &calls);
	assert_true(calls - calls0 == GROUP_THREADS * GROUP_FILES + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unique_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_uncommitted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_create_without_init, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_dir_sync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
