/*
 * test_keys.c - unit tests for sealing-key rotation (common/keys.c and
 * store_reseal): every token and pending verifier re-sealed under the new
 * key with its own AAD, values the old key cannot open left alone, all or
 * nothing when a value fails, and the key files' dance, including both
 * kinds of interrupted run (before and after the transaction committed).
 * Each test works in its own temporary directory (fixture.h).
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
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "fixture.h"
#include "crypto.h"
#include "keys.h"
#include "oauth.h"
#include "store.h"

#define TENANT "acme"

struct fx {
	char dir[PATH_MAX];
	char key_path[PATH_MAX + 16];
	struct statedir sd;
	struct store *st;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char db[PATH_MAX + 32], err[256];

	assert_non_null(f);
	assert_int_equal(fixture_dir_make(f->dir, "test_keys"), 0);
	assert_int_equal(statedir_init(&f->sd, f->dir, NULL, err, sizeof(err)),
	    0);
	snprintf(db, sizeof(db), "%s/halo-milter.db", f->dir);
	snprintf(f->key_path, sizeof(f->key_path), "%s/seal.key", f->dir);
	/* the names statedir gives are the documented ones */
	assert_string_equal(f->sd.sqlite, db);
	assert_string_equal(f->sd.store, db);
	assert_string_equal(f->sd.seal_key, f->key_path);
	f->st = store_open(f->sd.store, err, sizeof(err));
	assert_non_null(f->st);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->st);
	assert_int_equal(fixture_dir_remove(f->dir), 0);
	free(f);
	return 0;
}

/* Store AGENT's refresh token sealed under KEY (as enrollment does). */
static void
put_token(struct store *st, const uint8_t key[CRYPTO_KEY_LEN],
    const char *agent, const char *refresh)
{
	struct oauth *oa = oauth_new(st, key);

	assert_non_null(oa);
	assert_int_equal(oauth_import(oa, TENANT, agent, refresh), 0);
	oauth_free(oa);
}

/* REFRESH sealed for AGENT under KEY in the first format (0x01, no key
 * id), as values stored before key ids look. */
static char *
seal_v1(const uint8_t key[CRYPTO_KEY_LEN], const char *tenant,
    const char *agent, const char *refresh)
{
	uint8_t raw[256];
	size_t len = strlen(refresh), aad_len;
	char aad[256];
	OSSL_PARAM params[2];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n;

	aad_len = oauth_aad(tenant, agent, aad, sizeof(aad));
	assert_true(aad_len > 0 && len < 200);
	raw[0] = 0x01;
	assert_int_equal(crypto_random(raw + 1, CRYPTO_NONCE_LEN), 0);
	assert_non_null(ctx);
	assert_int_equal(EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key,
	    raw + 1, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, raw, 1), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, (uint8_t *)aad,
	    (int)aad_len), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, raw + 1 + CRYPTO_NONCE_LEN, &n,
	    (const uint8_t *)refresh, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, raw + 1 + CRYPTO_NONCE_LEN +
	    len, &n), 1);
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    raw + 1 + CRYPTO_NONCE_LEN + len, CRYPTO_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_CIPHER_CTX_get_params(ctx, params), 1);
	EVP_CIPHER_CTX_free(ctx);
	return crypto_b64url_encode(raw, 1 + CRYPTO_NONCE_LEN + len +
	    CRYPTO_TAG_LEN);
}

/* AGENT's refresh token opened with KEY, or NULL. */
static char *
open_token(struct store *st, const uint8_t key[CRYPTO_KEY_LEN],
    const char *agent)
{
	struct store_token *t = NULL;
	char aad[256];
	uint8_t *pt = NULL;
	size_t pt_len = 0, lt = strlen(TENANT), la = strlen(agent);

	assert_int_equal(store_token_get(st, TENANT, agent, &t), STORE_OK);
	memcpy(aad, TENANT, lt + 1);
	memcpy(aad + lt + 1, agent, la);
	if (crypto_open(key, aad, lt + 1 + la, t->sealed, &pt, &pt_len) != 0)
		pt = NULL;
	store_token_free(t);
	return (char *)pt;
}

/* A sign-in under way whose verifier is sealed under KEY. */
static int64_t
put_signin(struct store *st, const uint8_t key[CRYPTO_KEY_LEN],
    const char *code_hash, const char *state_hash, const char *verifier)
{
	char aad[128], *sealed = NULL;
	time_t now = time(NULL);
	int64_t id = 0;

	assert_int_equal(store_enroll_add(st, TENANT, "alice@msp.example",
	    code_hash, now, now + 600, &id), STORE_OK);
	snprintf(aad, sizeof(aad), "enroll-verifier:%s", state_hash);
	assert_int_equal(crypto_seal(key, aad, strlen(aad), verifier,
	    strlen(verifier), &sealed), 0);
	assert_int_equal(store_enroll_start(st, id, now, state_hash, sealed,
	    now + 600), STORE_OK);
	free(sealed);
	return id;
}

/* The verifier of the sign-in with STATE_HASH opened with KEY, or NULL. */
static char *
open_verifier(struct store *st, const uint8_t key[CRYPTO_KEY_LEN],
    const char *state_hash)
{
	struct store_enroll *e = NULL;
	char aad[128];
	uint8_t *pt = NULL;
	size_t pt_len = 0;

	assert_int_equal(store_enroll_by_state(st, state_hash, &e), STORE_OK);
	assert_non_null(e->verifier_sealed);
	snprintf(aad, sizeof(aad), "enroll-verifier:%s", state_hash);
	if (crypto_open(key, aad, strlen(aad), e->verifier_sealed, &pt,
	    &pt_len) != 0)
		pt = NULL;
	store_enroll_free(e);
	return (char *)pt;
}

static void
test_reseal(void **state)
{
	struct fx *f = *state;
	uint8_t old_key[CRYPTO_KEY_LEN], new_key[CRYPTO_KEY_LEN];
	uint8_t lost_key[CRYPTO_KEY_LEN];
	struct keys_counts c;
	char *pt;

	assert_int_equal(crypto_random(old_key, sizeof(old_key)), 0);
	assert_int_equal(crypto_random(new_key, sizeof(new_key)), 0);
	assert_int_equal(crypto_random(lost_key, sizeof(lost_key)), 0);
	put_token(f->st, old_key, "alice@msp.example", "rt-alice");
	put_token(f->st, old_key, "bob@msp.example", "rt-bob");
	put_token(f->st, lost_key, "carol@msp.example", "rt-carol");
	put_signin(f->st, old_key, "codehash-1", "statehash-1", "verifier-1");
	memset(&c, 0, sizeof(c));
	assert_int_equal(keys_reseal(f->st, old_key, new_key, &c), 0);
	assert_int_equal(c.tokens, 2);
	assert_int_equal(c.verifiers, 1);
	assert_int_equal(c.unreadable, 1);
	/* the new key opens them, with the same AAD; the old one no more */
	pt = open_token(f->st, new_key, "alice@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-alice");
	free(pt);
	pt = open_token(f->st, new_key, "bob@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-bob");
	free(pt);
	assert_null(open_token(f->st, old_key, "alice@msp.example"));
	pt = open_verifier(f->st, new_key, "statehash-1");
	assert_non_null(pt);
	assert_string_equal(pt, "verifier-1");
	free(pt);
	assert_null(open_verifier(f->st, old_key, "statehash-1"));
	/* a value nobody could open is left exactly as it was */
	pt = open_token(f->st, lost_key, "carol@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-carol");
	free(pt);
}

/* Fails on the second value it is shown. */
static char *
fail_second(const struct store_sealed *v, void *arg)
{
	int *seen = arg;

	(void)v;
	if (++*seen == 2)
		return NULL;
	return strdup("replaced");
}

static void
test_reseal_all_or_nothing(void **state)
{
	struct fx *f = *state;
	uint8_t key[CRYPTO_KEY_LEN];
	unsigned n = 99;
	int seen = 0;
	char *pt;

	assert_int_equal(crypto_random(key, sizeof(key)), 0);
	put_token(f->st, key, "alice@msp.example", "rt-alice");
	put_token(f->st, key, "bob@msp.example", "rt-bob");
	assert_int_equal(store_reseal(f->st, fail_second, &seen, &n),
	    STORE_ERROR);
	assert_int_equal(n, 0);
	assert_int_equal(seen, 2);
	/* the first value's change was rolled back with the rest */
	pt = open_token(f->st, key, "alice@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-alice");
	free(pt);
	/* an empty store re-seals nothing, successfully */
	assert_int_equal(store_token_delete(f->st, TENANT, "alice@msp.example"),
	    STORE_OK);
	assert_int_equal(store_token_delete(f->st, TENANT, "bob@msp.example"),
	    STORE_OK);
	seen = 0;
	assert_int_equal(store_reseal(f->st, fail_second, &seen, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(seen, 0);
}

/* The key in PATH. */
static void
read_key(const char *path, uint8_t key[CRYPTO_KEY_LEN])
{
	char err[256];

	assert_int_equal(crypto_key_load_or_create(path, key, err, sizeof(err)),
	    0);
}

/* Whether PATH exists. */
static bool
exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &sb) == 0;
}

static void
test_rotate_files(void **state)
{
	struct fx *f = *state;
	uint8_t before[CRYPTO_KEY_LEN], after[CRYPTO_KEY_LEN];
	struct keys_counts c;
	struct stat sb;
	char err[512], *pt;

	/* no key yet: nothing to rotate */
	assert_int_equal(keys_rotate(&f->sd, f->st, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nothing to rotate"));
	read_key(f->key_path, before);
	put_token(f->st, before, "alice@msp.example", "rt-alice");
	assert_int_equal(keys_rotate(&f->sd, f->st, &c, err, sizeof(err)), 0);
	assert_int_equal(c.tokens, 1);
	assert_int_equal(c.resumed, 0);
	read_key(f->key_path, after);
	assert_memory_not_equal(before, after, CRYPTO_KEY_LEN);
	assert_int_equal(stat(f->key_path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_false(exists(f->dir, "seal.key.new"));
	assert_false(exists(f->dir, "seal.key.old"));
	pt = open_token(f->st, after, "alice@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-alice");
	free(pt);
}

static void
test_rotate_interrupted_before_commit(void **state)
{
	struct fx *f = *state;
	uint8_t before[CRYPTO_KEY_LEN], stray[CRYPTO_KEY_LEN];
	uint8_t after[CRYPTO_KEY_LEN];
	struct keys_counts c;
	char path[PATH_MAX + 64], err[512], *pt;

	read_key(f->key_path, before);
	put_token(f->st, before, "alice@msp.example", "rt-alice");
	/* a run died after writing seal.key.new, before its transaction */
	snprintf(path, sizeof(path), "%s/seal.key.new", f->dir);
	read_key(path, stray);
	assert_int_equal(keys_rotate(&f->sd, f->st, &c, err, sizeof(err)), 0);
	assert_int_equal(c.resumed, 0);
	assert_int_equal(c.tokens, 1);
	read_key(f->key_path, after);
	assert_memory_not_equal(after, before, CRYPTO_KEY_LEN);
	assert_memory_not_equal(after, stray, CRYPTO_KEY_LEN);
	pt = open_token(f->st, after, "alice@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-alice");
	free(pt);
	assert_false(exists(f->dir, "seal.key.new"));
	assert_false(exists(f->dir, "seal.key.old"));
}

static void
test_rotate_interrupted_after_commit(void **state)
{
	struct fx *f = *state;
	uint8_t before[CRYPTO_KEY_LEN], next[CRYPTO_KEY_LEN];
	uint8_t after[CRYPTO_KEY_LEN];
	struct keys_counts c;
	char path[PATH_MAX + 64], old_path[PATH_MAX + 64], err[512], *pt;

	read_key(f->key_path, before);
	put_token(f->st, before, "alice@msp.example", "rt-alice");
	put_token(f->st, before, "bob@msp.example", "rt-bob");
	/* a run died after its transaction, before the rename */
	snprintf(path, sizeof(path), "%s/seal.key.new", f->dir);
	snprintf(old_path, sizeof(old_path), "%s/seal.key.old", f->dir);
	read_key(path, next);
	assert_int_equal(link(f->key_path, old_path), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(keys_reseal(f->st, before, next, &c), 0);
	assert_int_equal(c.tokens, 2);
	assert_int_equal(keys_rotate(&f->sd, f->st, &c, err, sizeof(err)), 0);
	assert_int_equal(c.resumed, 1);
	read_key(f->key_path, after);
	assert_memory_equal(after, next, CRYPTO_KEY_LEN);
	pt = open_token(f->st, after, "bob@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-bob");
	free(pt);
	assert_false(exists(f->dir, "seal.key.new"));
	assert_false(exists(f->dir, "seal.key.old"));
}

/* keys_load(): a key is made only while nothing is sealed; a missing or
 * different key while tokens are sealed is refused with a message naming
 * the file and leaves the store alone; the right key put back works. */
static void
test_load_refuses_wrong_or_missing_key(void **state)
{
	struct fx *f = *state;
	uint8_t first[CRYPTO_KEY_LEN], got[CRYPTO_KEY_LEN];
	uint8_t other[CRYPTO_KEY_LEN];
	struct store_token *t = NULL;
	char err[1024], aside[PATH_MAX + 64], *pt;

	/* nothing sealed: the key is made */
	assert_int_equal(keys_load(&f->sd, f->st, first, err, sizeof(err)), 0);
	assert_true(exists(f->dir, "seal.key"));
	put_token(f->st, first, "alice@msp.example", "rt-alice");
	put_token(f->st, first, "bob@msp.example", "rt-bob");
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), 0);
	assert_memory_equal(got, first, CRYPTO_KEY_LEN);

	/* the key file is lost: refused, and no new key is made */
	snprintf(aside, sizeof(aside), "%s/seal.key.backup", f->dir);
	assert_int_equal(rename(f->key_path, aside), 0);
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, f->key_path));
	assert_non_null(strstr(err, "missing"));
	assert_false(exists(f->dir, "seal.key"));

	/* another key in its place: refused, naming the file */
	read_key(f->key_path, other);
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, f->key_path));
	assert_non_null(strstr(err, "is not the key"));
	/* keys rotate refuses it too, and changes nothing */
	{
		struct keys_counts c;

		assert_int_equal(keys_rotate(&f->sd, f->st, &c, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "is not the key"));
	}
	assert_int_equal(store_token_get(f->st, TENANT, "alice@msp.example",
	    &t), STORE_OK);
	assert_string_equal(t->state, "ok");
	store_token_free(t);

	/* the right key back: accepted, every token opens */
	assert_int_equal(rename(aside, f->key_path), 0);
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), 0);
	assert_memory_equal(got, first, CRYPTO_KEY_LEN);
	pt = open_token(f->st, got, "bob@msp.example");
	assert_non_null(pt);
	assert_string_equal(pt, "rt-bob");
	free(pt);
}

/* A store sealed before key ids (format 0x01) is still checked by
 * opening: its key is accepted, another is refused. */
static void
test_load_checks_values_without_key_id(void **state)
{
	struct fx *f = *state;
	uint8_t key[CRYPTO_KEY_LEN], got[CRYPTO_KEY_LEN];
	uint8_t other[CRYPTO_KEY_LEN];
	char err[1024], *v1;

	read_key(f->key_path, key);
	v1 = seal_v1(key, TENANT, "carol@msp.example", "rt-carol");
	assert_int_equal(store_token_put(f->st, TENANT, "carol@msp.example", v1,
	    "ok"), STORE_OK);
	free(v1);
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), 0);
	assert_int_equal(unlink(f->key_path), 0);
	read_key(f->key_path, other);
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, f->key_path));
}

/* A pending sign-in's verifier alone (no token) sealed under a lost key
 * does not stop a start: it lives minutes and costs one sign-in. */
static void
test_load_ignores_verifiers(void **state)
{
	struct fx *f = *state;
	uint8_t lost[CRYPTO_KEY_LEN], got[CRYPTO_KEY_LEN];
	char err[1024];

	memset(lost, 0x33, sizeof(lost));
	put_signin(f->st, lost, "code-hash-1", "state-hash-1",
	    "verifier-0123456789-0123456789-0123456789-01");
	assert_int_equal(keys_load(&f->sd, f->st, got, err, sizeof(err)), 0);
	assert_true(exists(f->dir, "seal.key"));
}

/* statedir: every name made once, none used cut short; keys_load_all()
 * loads both keys once (the status key made on first use) and keeps the
 * sealing key's refusal. */
static void
test_statedir(void **state)
{
	struct fx *f = *state;
	struct statedir sd;
	struct statedir_keys k, again;
	char err[512], *dir;
	size_t n = PATH_MAX - 8;

	/* a state_dir so long that "/seal.key.new" no longer fits */
	dir = malloc(n + 1);
	assert_non_null(dir);
	memset(dir, 'd', n);
	dir[0] = '/';
	dir[n] = '\0';
	assert_int_equal(statedir_init(&sd, dir, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "state_dir is too long");
	free(dir);
	assert_int_equal(statedir_path(err, 8, "/x", "seal.key", ""), -1);
	assert_string_equal(err, "");

	/* a configured store is the target; the SQLite name stays */
	assert_int_equal(statedir_init(&sd, "/srv/halo", "postgresql:///halo",
	    err, sizeof(err)), 0);
	assert_string_equal(sd.store, "postgresql:///halo");
	assert_string_equal(sd.sqlite, "/srv/halo/halo-milter.db");
	assert_string_equal(sd.spool, "/srv/halo/spool");
	assert_string_equal(sd.status_key, "/srv/halo/status.key");
	assert_string_equal(sd.admin_pw, "/srv/halo/admin.pw");

	/* both keys, once; the same ones the next time */
	assert_int_equal(keys_load_all(&f->sd, f->st, &k, err, sizeof(err)), 0);
	assert_true(exists(f->dir, "seal.key"));
	assert_true(exists(f->dir, "status.key"));
	assert_int_equal(keys_load_all(&f->sd, f->st, &again, err,
	    sizeof(err)), 0);
	assert_memory_equal(&k, &again, sizeof(k));
	assert_memory_not_equal(k.seal, k.status, CRYPTO_KEY_LEN);

	/* a token sealed, then the sealing key gone: refused, naming it */
	put_token(f->st, k.seal, "alice@msp.example", "rt-alice");
	assert_int_equal(unlink(f->key_path), 0);
	assert_int_equal(keys_load_all(&f->sd, f->st, &again, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, f->key_path));
	statedir_keys_wipe(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reseal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reseal_all_or_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rotate_files, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rotate_interrupted_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rotate_interrupted_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_refuses_wrong_or_missing_key, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_checks_values_without_key_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_ignores_verifiers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_statedir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
