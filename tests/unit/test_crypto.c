/*
 * test_crypto.c - unit tests for common/crypto.c: PKCE and HMAC against the
 * RFC vectors, sealing round trips and every kind of tampering, the key
 * file's checks, strict base64url, constant-time comparison and user codes.
 * Key-file tests work in their own temporary directory (fixture.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "fixture.h"
#include "crypto.h"

/* "tenant\0agent-email", the AAD shape the token store uses. */
static const char aad_alice[] = "tenant-1\0alice@example.com";
static const char aad_bob[] = "tenant-1\0bob@example.com";
static const char aad_other_tenant[] = "tenant-2\0alice@example.com";
#define AAD_LEN(a) (sizeof(a) - 1)

static const uint8_t test_key[CRYPTO_KEY_LEN] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
	0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
	0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};

struct fixture {
	char dir[PATH_MAX];        /* fixture_dir_make directory */
	char key[PATH_MAX + 16];   /* DIR/key, not created by setup */
	char aux[PATH_MAX + 16];   /* DIR/aux, a second file for symlink tests */
};

/* Make a fresh directory for key-file tests. */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (fixture_dir_make(f->dir, "test_crypto") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->key, sizeof(f->key), "%s/key", f->dir);
	snprintf(f->aux, sizeof(f->aux), "%s/aux", f->dir);
	*state = f;
	return 0;
}

/* Remove whatever a key-file test left behind. */
static int
teardown(void **state)
{
	struct fixture *f = *state;

	fixture_dir_remove(f->dir);
	free(f);
	return 0;
}

/* Write LEN bytes to PATH with MODE, replacing it. */
static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* True when LEN bytes at P are all zero. */
static bool
all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* True when S consists only of base64url characters. */
static bool
is_b64url(const char *s)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_") == strlen(s);
}

/* Seal PT under test_key and AAD; returns the malloc'd text. */
static char *
seal_or_fail(const void *aad, size_t aad_len, const void *pt, size_t pt_len)
{
	char *sealed = NULL;

	assert_int_equal(crypto_seal(test_key, aad, aad_len, pt, pt_len,
	    &sealed), 0);
	assert_non_null(sealed);
	return sealed;
}

/* Assert that SEALED does not open under KEY and AAD, and that the
 * outputs are cleared. */
static void
assert_open_fails(const uint8_t *key, const void *aad, size_t aad_len,
    const char *sealed)
{
	uint8_t *pt = (uint8_t *)"sentinel";
	size_t pt_len = 99;

	assert_int_equal(crypto_open(key, aad, aad_len, sealed, &pt, &pt_len),
	    -1);
	assert_null(pt);
	assert_int_equal(pt_len, 0);
}

/* ---- PKCE ---- */

/* RFC 7636 Appendix B. */
static void
test_pkce_rfc7636(void **state)
{
	char out[44];

	(void)state;
	assert_int_equal(crypto_pkce_challenge(
	    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out), 0);
	assert_string_equal(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

/* Verifiers are 43 base64url characters, differ, and have a challenge. */
static void
test_pkce_verifier_shape(void **state)
{
	char v[44], prev[44] = "", chal[44];
	int i;

	(void)state;
	for (i = 0; i < 200; i++) {
		memset(v, 'x', sizeof(v));
		assert_int_equal(crypto_pkce_verifier(v), 0);
		assert_int_equal(strlen(v), CRYPTO_PKCE_LEN);
		assert_true(is_b64url(v));
		assert_string_not_equal(v, prev);
		assert_int_equal(crypto_pkce_challenge(v, chal), 0);
		assert_int_equal(strlen(chal), CRYPTO_PKCE_LEN);
		assert_true(is_b64url(chal));
		memcpy(prev, v, sizeof(prev));
	}
}

/* Challenge refuses verifiers RFC 7636 does not allow. */
static void
test_pkce_challenge_rejects(void **state)
{
	char v[200], out[44];

	(void)state;
	memset(v, 'a', sizeof(v));
	v[42] = '\0';
	assert_int_equal(crypto_pkce_challenge(v, out), -1);     /* 42 chars */
	assert_string_equal(out, "");
	v[42] = 'a';
	v[43] = '\0';
	assert_int_equal(crypto_pkce_challenge(v, out), 0);      /* 43 */
	memset(v, 'a', sizeof(v));
	v[128] = '\0';
	assert_int_equal(crypto_pkce_challenge(v, out), 0);      /* 128 */
	v[128] = 'a';
	v[129] = '\0';
	assert_int_equal(crypto_pkce_challenge(v, out), -1);     /* 129 */
	memcpy(v, "abc.def~ghi_jkl-", 16);
	v[60] = '\0';
	assert_int_equal(crypto_pkce_challenge(v, out), 0);      /* . ~ _ - */
	v[5] = '+';
	assert_int_equal(crypto_pkce_challenge(v, out), -1);
	v[5] = ' ';
	assert_int_equal(crypto_pkce_challenge(v, out), -1);
	v[5] = '=';
	assert_int_equal(crypto_pkce_challenge(v, out), -1);
	assert_int_equal(crypto_pkce_challenge(NULL, out), -1);
}

/* ---- sealing ---- */

/* Round trips: empty, 1 byte, 4 KiB, the largest allowed, NULL AAD. */
static void
test_seal_roundtrip(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 15, 16, 17, 4096,
	    CRYPTO_PT_MAX };
	uint8_t *big, *pt;
	size_t i, pt_len, raw_len;
	char *sealed;

	(void)state;
	big = malloc(CRYPTO_PT_MAX);
	assert_non_null(big);
	assert_int_equal(crypto_random(big, CRYPTO_PT_MAX), 0);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice), big,
		    sizes[i]);
		raw_len = 1 + CRYPTO_KEY_ID_LEN + CRYPTO_NONCE_LEN + sizes[i] +
		    CRYPTO_TAG_LEN;
		assert_int_equal(strlen(sealed),
		    raw_len / 3 * 4 + (raw_len % 3 ? raw_len % 3 + 1 : 0));
		assert_true(strlen(sealed) <= CRYPTO_SEALED_MAX);
		assert_true(is_b64url(sealed));
		assert_int_equal(crypto_open(test_key, aad_alice,
		    AAD_LEN(aad_alice), sealed, &pt, &pt_len), 0);
		assert_non_null(pt);
		assert_int_equal(pt_len, sizes[i]);
		assert_memory_equal(pt, big, sizes[i]);
		assert_int_equal(pt[pt_len], '\0');
		crypto_free_secret(pt, pt_len);
		free(sealed);
	}
	free(big);

	/* A token as text, no AAD (NULL and empty are the same). */
	sealed = seal_or_fail(NULL, 0, "refresh-token-xyz", 17);
	assert_int_equal(crypto_open(test_key, "", 0, sealed, &pt, &pt_len), 0);
	assert_string_equal((char *)pt, "refresh-token-xyz");
	crypto_free_secret(pt, pt_len);
	assert_int_equal(crypto_open(test_key, NULL, 0, sealed, &pt, &pt_len),
	    0);
	crypto_free_secret(pt, pt_len);
	free(sealed);

	/* NULL plaintext of length 0. */
	sealed = seal_or_fail(NULL, 0, NULL, 0);
	assert_int_equal(crypto_open(test_key, NULL, 0, sealed, &pt, &pt_len),
	    0);
	assert_int_equal(pt_len, 0);
	assert_string_equal((char *)pt, "");
	crypto_free_secret(pt, pt_len);
	free(sealed);
}

/* The wire format is what crypto.h says: version, key id, nonce, GCM
 * ciphertext and tag, with the version byte, the key id and the AAD
 * authenticated. Checked with a plain EVP decryption independent of
 * crypto_open(). */
static void
test_seal_format(void **state)
{
	static const char msg[] = "the quick brown fox";
	uint8_t *raw, plain[sizeof(msg)], tag[CRYPTO_TAG_LEN];
	uint8_t id[CRYPTO_KEY_ID_LEN], carried[CRYPTO_KEY_ID_LEN];
	size_t raw_len, ct_len, hdr = 1 + CRYPTO_KEY_ID_LEN + CRYPTO_NONCE_LEN;
	OSSL_PARAM params[2];
	EVP_CIPHER_CTX *ctx;
	char *sealed;
	int n;

	(void)state;
	sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice), msg,
	    sizeof(msg) - 1);
	assert_int_equal(crypto_b64url_decode(sealed, &raw, &raw_len), 0);
	ct_len = sizeof(msg) - 1;
	assert_int_equal(raw_len, hdr + ct_len + CRYPTO_TAG_LEN);
	assert_int_equal(raw[0], 0x02);
	assert_int_equal(crypto_key_id(test_key, id), 0);
	assert_memory_equal(raw + 1, id, CRYPTO_KEY_ID_LEN);
	assert_int_equal(crypto_sealed_key_id(sealed, carried), 1);
	assert_memory_equal(carried, id, CRYPTO_KEY_ID_LEN);

	ctx = EVP_CIPHER_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), test_key,
	    raw + 1 + CRYPTO_KEY_ID_LEN, NULL), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, raw,
	    1 + CRYPTO_KEY_ID_LEN), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n,
	    (const uint8_t *)aad_alice, (int)AAD_LEN(aad_alice)), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, plain, &n, raw + hdr,
	    (int)ct_len), 1);
	assert_int_equal(n, (int)ct_len);
	memcpy(tag, raw + hdr + ct_len, sizeof(tag));
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    tag, sizeof(tag));
	params[1] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_CIPHER_CTX_set_params(ctx, params), 1);
	assert_int_equal(EVP_DecryptFinal_ex(ctx, plain + n, &n), 1);
	assert_memory_equal(plain, msg, ct_len);
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(sealed);
}

/* Key ids: stable per key, different between keys; a value sealed under
 * another key fails on its id; an id changed in the text fails (it is
 * authenticated); values of the first format (no id) still open. */
static void
test_seal_key_id(void **state)
{
	static const char msg[] = "refresh-token";
	uint8_t other[CRYPTO_KEY_LEN], id_a[CRYPTO_KEY_ID_LEN];
	uint8_t id_b[CRYPTO_KEY_ID_LEN], id_c[CRYPTO_KEY_ID_LEN], *raw, *pt;
	uint8_t v1[1 + CRYPTO_NONCE_LEN + sizeof(msg) - 1 + CRYPTO_TAG_LEN];
	size_t raw_len, pt_len, ct_len = sizeof(msg) - 1;
	OSSL_PARAM params[2];
	EVP_CIPHER_CTX *ctx;
	char *sealed, *text;
	int n;

	(void)state;
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(crypto_key_id(test_key, id_a), 0);
	assert_int_equal(crypto_key_id(test_key, id_b), 0);
	assert_memory_equal(id_a, id_b, CRYPTO_KEY_ID_LEN);
	assert_int_equal(crypto_key_id(other, id_c), 0);
	assert_memory_not_equal(id_a, id_c, CRYPTO_KEY_ID_LEN);

	/* another key's value */
	sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice), msg, ct_len);
	assert_open_fails(other, aad_alice, AAD_LEN(aad_alice), sealed);
	free(sealed);

	/* the id rewritten to the opener's: the tag no longer matches */
	sealed = NULL;
	assert_int_equal(crypto_seal(other, aad_alice, AAD_LEN(aad_alice), msg,
	    ct_len, &sealed), 0);
	assert_int_equal(crypto_b64url_decode(sealed, &raw, &raw_len), 0);
	memcpy(raw + 1, id_a, CRYPTO_KEY_ID_LEN);
	free(sealed);
	text = crypto_b64url_encode(raw, raw_len);
	free(raw);
	assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice), text);
	free(text);

	/* the first format, made by hand */
	v1[0] = 0x01;
	memset(v1 + 1, 7, CRYPTO_NONCE_LEN);
	ctx = EVP_CIPHER_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), test_key,
	    v1 + 1, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, v1, 1), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n,
	    (const uint8_t *)aad_alice, (int)AAD_LEN(aad_alice)), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, v1 + 1 + CRYPTO_NONCE_LEN, &n,
	    (const uint8_t *)msg, (int)ct_len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, v1 + 1 + CRYPTO_NONCE_LEN +
	    ct_len, &n), 1);
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    v1 + 1 + CRYPTO_NONCE_LEN + ct_len, CRYPTO_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_CIPHER_CTX_get_params(ctx, params), 1);
	EVP_CIPHER_CTX_free(ctx);
	text = crypto_b64url_encode(v1, sizeof(v1));
	assert_int_equal(crypto_sealed_key_id(text, id_b), 0);
	assert_int_equal(crypto_open(test_key, aad_alice, AAD_LEN(aad_alice),
	    text, &pt, &pt_len), 0);
	assert_int_equal(pt_len, ct_len);
	assert_memory_equal(pt, msg, ct_len);
	crypto_free_secret(pt, pt_len);
	assert_open_fails(other, aad_alice, AAD_LEN(aad_alice), text);
	free(text);
	assert_int_equal(crypto_sealed_key_id("not sealed!", id_b), -1);
	assert_int_equal(crypto_sealed_key_id("AAAA", id_b), -1);
}

/* Two seals of the same text differ (fresh nonce each time). */
static void
test_seal_nonce_differs(void **state)
{
	char *a, *b;
	uint8_t *raw_a, *raw_b;
	size_t len_a, len_b;

	(void)state;
	a = seal_or_fail(aad_alice, AAD_LEN(aad_alice), "token", 5);
	b = seal_or_fail(aad_alice, AAD_LEN(aad_alice), "token", 5);
	assert_string_not_equal(a, b);
	assert_int_equal(crypto_b64url_decode(a, &raw_a, &len_a), 0);
	assert_int_equal(crypto_b64url_decode(b, &raw_b, &len_b), 0);
	assert_int_equal(len_a, len_b);
	assert_memory_not_equal(raw_a + 1 + CRYPTO_KEY_ID_LEN,
	    raw_b + 1 + CRYPTO_KEY_ID_LEN, CRYPTO_NONCE_LEN);
	free(raw_a);
	free(raw_b);
	free(a);
	free(b);
}

/* crypto_seal() refuses bad arguments and oversize plaintext. */
static void
test_seal_rejects(void **state)
{
	uint8_t *big;
	char *out = (char *)"sentinel";

	(void)state;
	big = calloc(1, CRYPTO_PT_MAX + 1);
	assert_non_null(big);
	assert_int_equal(crypto_seal(test_key, NULL, 0, big, CRYPTO_PT_MAX + 1,
	    &out), -1);
	assert_null(out);
	free(big);
	assert_int_equal(crypto_seal(test_key, NULL, 0, NULL, 1, &out), -1);
	assert_null(out);
	assert_int_equal(crypto_seal(test_key, NULL, 3, "x", 1, &out), -1);
	assert_null(out);
	assert_int_equal(crypto_seal(NULL, NULL, 0, "x", 1, &out), -1);
	assert_int_equal(crypto_seal(test_key, NULL, 0, "x", 1, NULL), -1);
}

/* Another key does not open it (one bit differs, or all). */
static void
test_open_wrong_key(void **state)
{
	uint8_t key[CRYPTO_KEY_LEN];
	char *sealed;
	size_t i;

	(void)state;
	sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice), "token", 5);
	for (i = 0; i < CRYPTO_KEY_LEN; i++) {
		memcpy(key, test_key, sizeof(key));
		key[i] ^= 0x01;
		assert_open_fails(key, aad_alice, AAD_LEN(aad_alice), sealed);
	}
	assert_int_equal(crypto_random(key, sizeof(key)), 0);
	assert_open_fails(key, aad_alice, AAD_LEN(aad_alice), sealed);
	assert_open_fails(NULL, aad_alice, AAD_LEN(aad_alice), sealed);
	free(sealed);
}

/* A flipped bit anywhere - version, nonce, ciphertext, tag - is caught. */
static void
test_open_flipped_bytes(void **state)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	uint8_t *raw;
	size_t raw_len, i, j;
	char *sealed, *forged;
	unsigned classes = 0;

	(void)state;
	sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice),
	    "a refresh token of some length", 30);
	assert_int_equal(crypto_b64url_decode(sealed, &raw, &raw_len), 0);
	for (i = 0; i < raw_len; i++) {
		if (i == 0)
			classes |= 1;                              /* version */
		else if (i < 1 + CRYPTO_KEY_ID_LEN)
			classes |= 16;                             /* key id */
		else if (i < 1 + CRYPTO_KEY_ID_LEN + CRYPTO_NONCE_LEN)
			classes |= 2;                              /* nonce */
		else if (i < raw_len - CRYPTO_TAG_LEN)
			classes |= 4;                              /* ciphertext */
		else
			classes |= 8;                              /* tag */
		for (j = 0; j < sizeof(flips); j++) {
			raw[i] ^= flips[j];
			forged = crypto_b64url_encode(raw, raw_len);
			assert_non_null(forged);
			assert_open_fails(test_key, aad_alice,
			    AAD_LEN(aad_alice), forged);
			free(forged);
			raw[i] ^= flips[j];
		}
	}
	assert_int_equal(classes, 31);

	/* Versions 0x01 (read as the first format) and 0x03 with otherwise
	 * intact bytes. */
	raw[0] = 0x01;
	forged = crypto_b64url_encode(raw, raw_len);
	assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice), forged);
	free(forged);
	raw[0] = 0x03;
	forged = crypto_b64url_encode(raw, raw_len);
	assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice), forged);
	free(forged);
	free(raw);
	free(sealed);
}

/* Truncation (of the bytes or of the text) and extension are caught. */
static void
test_open_truncated(void **state)
{
	uint8_t *raw, *longer;
	size_t raw_len, i;
	char *sealed, *forged, *text;

	(void)state;
	sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice), "token", 5);
	assert_int_equal(crypto_b64url_decode(sealed, &raw, &raw_len), 0);
	for (i = 0; i < raw_len; i++) {
		forged = crypto_b64url_encode(raw, i);
		assert_non_null(forged);
		assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice),
		    forged);
		free(forged);
	}
	text = strdup(sealed);
	assert_non_null(text);
	for (i = strlen(sealed); i-- > 0;) {
		text[i] = '\0';
		assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice), text);
	}
	free(text);

	/* One extra byte at the end. */
	longer = malloc(raw_len + 1);
	assert_non_null(longer);
	memcpy(longer, raw, raw_len);
	longer[raw_len] = 0;
	forged = crypto_b64url_encode(longer, raw_len + 1);
	assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice), forged);
	free(forged);
	free(longer);
	free(raw);
	free(sealed);
}

/* A token sealed for one agent does not open for another. */
static void
test_open_wrong_aad(void **state)
{
	char *sealed, *plain_sealed;

	(void)state;
	sealed = seal_or_fail(aad_alice, AAD_LEN(aad_alice), "token", 5);
	assert_open_fails(test_key, aad_bob, AAD_LEN(aad_bob), sealed);
	assert_open_fails(test_key, aad_other_tenant, AAD_LEN(aad_other_tenant),
	    sealed);
	assert_open_fails(test_key, NULL, 0, sealed);
	assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice) - 1, sealed);
	assert_open_fails(test_key, aad_alice, sizeof(aad_alice), sealed);
	/* "tenant-1alice@..." without the separator is another AAD. */
	assert_open_fails(test_key, "tenant-1alice@example.com", 25, sealed);
	assert_open_fails(test_key, NULL, 5, sealed);      /* bad arguments */

	plain_sealed = seal_or_fail(NULL, 0, "token", 5);
	assert_open_fails(test_key, aad_alice, AAD_LEN(aad_alice),
	    plain_sealed);
	free(plain_sealed);
	free(sealed);
}

/* Garbage, padding, bad characters and oversize input are refused. */
static void
test_open_garbage(void **state)
{
	static const char *const garbage[] = {
		"", "A", "AA", "AAAA", "====", "AQ==", "!!!!", "\xff\xfe",
		"not a sealed token at all",
		"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	char *sealed, *text, *big;
	size_t i, len;
	uint8_t *pt;
	size_t pt_len;

	(void)state;
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		assert_open_fails(test_key, NULL, 0, garbage[i]);
	assert_open_fails(test_key, NULL, 0, NULL);
	assert_int_equal(crypto_open(test_key, NULL, 0, "AAAA", NULL, &pt_len),
	    -1);
	assert_int_equal(crypto_open(test_key, NULL, 0, "AAAA", &pt, NULL), -1);

	/* A good token with padding, white space or '+' '/' in it. */
	sealed = seal_or_fail(NULL, 0, "token", 5);
	len = strlen(sealed);
	text = malloc(len + 3);
	assert_non_null(text);
	snprintf(text, len + 3, "%s==", sealed);
	assert_open_fails(test_key, NULL, 0, text);
	snprintf(text, len + 3, "%s\n", sealed);
	assert_open_fails(test_key, NULL, 0, text);
	snprintf(text, len + 3, " %s", sealed);
	assert_open_fails(test_key, NULL, 0, text);
	memcpy(text, sealed, len + 1);
	text[len / 2] = '+';
	assert_open_fails(test_key, NULL, 0, text);
	text[len / 2] = '/';
	assert_open_fails(test_key, NULL, 0, text);
	memcpy(text, sealed, len + 1);
	assert_int_equal(crypto_open(test_key, NULL, 0, text, &pt, &pt_len), 0);
	crypto_free_secret(pt, pt_len);
	free(text);
	free(sealed);

	/* Over 64 KiB of text, and exactly 64 KiB of well-formed garbage. */
	big = malloc(CRYPTO_SEALED_MAX + 2);
	assert_non_null(big);
	memset(big, 'A', CRYPTO_SEALED_MAX + 1);
	big[0] = 'B';                     /* first byte 0x04: wrong version */
	big[CRYPTO_SEALED_MAX + 1] = '\0';
	assert_open_fails(test_key, NULL, 0, big);
	big[0] = 'A';
	big[1] = 'Q';                     /* first byte 0x01 */
	big[CRYPTO_SEALED_MAX] = '\0';
	assert_open_fails(test_key, NULL, 0, big);
	free(big);
}

/* ---- key file ---- */

/* First call creates a 0600 32-byte file; the next call loads the same. */
static void
test_key_create_and_reload(void **state)
{
	struct fixture *f = *state;
	uint8_t key1[CRYPTO_KEY_LEN], key2[CRYPTO_KEY_LEN];
	char err[256] = "junk";
	struct stat st;

	assert_int_equal(crypto_key_load_or_create(f->key, key1, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(lstat(f->key, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, CRYPTO_KEY_LEN);
	assert_false(all_zero(key1, sizeof(key1)));

	memset(key2, 0, sizeof(key2));
	assert_int_equal(crypto_key_load_or_create(f->key, key2, err,
	    sizeof(err)), 0);
	assert_memory_equal(key1, key2, sizeof(key1));
	/* NULL err is allowed. */
	assert_int_equal(crypto_key_load_or_create(f->key, key2, NULL, 0), 0);
	assert_memory_equal(key1, key2, sizeof(key1));

	/* A key file written by hand (0400 is fine too) loads as written. */
	write_file(f->key, test_key, sizeof(test_key), 0400);
	assert_int_equal(crypto_key_load_or_create(f->key, key2, err,
	    sizeof(err)), 0);
	assert_memory_equal(key2, test_key, sizeof(test_key));
}

/* Processes making the first key at once (the CLI beside a daemon's first
 * start): each finds the whole key, never a part of one, and they all
 * agree; no temporary file is left. */
static void
test_key_create_race(void **state)
{
	struct fixture *f = *state;
	enum { KIDS = 6, ROUNDS = 25 };
	uint8_t first[CRYPTO_KEY_LEN], got[CRYPTO_KEY_LEN + 1];
	int round, i, go[2], out[2], status;
	pid_t pid;
	struct dirent *de;
	DIR *d;
	size_t entries;

	for (round = 0; round < ROUNDS; round++) {
		unlink(f->key);
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(out), 0);
		for (i = 0; i < KIDS; i++) {
			pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				uint8_t k[CRYPTO_KEY_LEN + 1];
				char c;

				close(go[1]);
				/* all start when the parent closes the pipe */
				if (read(go[0], &c, 1) < 0)
					_exit(1);
				k[0] = crypto_key_load_or_create(f->key, k + 1,
				    NULL, 0) == 0 ? 1 : 0;
				_exit(write(out[1], k, sizeof(k)) ==
				    (ssize_t)sizeof(k) ? 0 : 1);
			}
		}
		close(go[0]);
		close(go[1]);
		close(out[1]);
		for (i = 0; i < KIDS; i++) {
			assert_int_equal(read(out[0], got, sizeof(got)),
			    (ssize_t)sizeof(got));
			assert_int_equal(got[0], 1);        /* loaded, no error */
			if (i == 0)
				memcpy(first, got + 1, sizeof(first));
			else
				assert_memory_equal(first, got + 1, sizeof(first));
		}
		close(out[0]);
		while (wait(&status) > 0)
			;
	}
	d = opendir(f->dir);
	assert_non_null(d);
	for (entries = 0; (de = readdir(d)) != NULL;)
		if (strncmp(de->d_name, "key", 3) == 0)
			entries++;
	closedir(d);
	assert_int_equal(entries, 1);
}

/* A key file group or other can read is refused, and left alone. */
static void
test_key_refuse_mode(void **state)
{
	static const mode_t modes[] = { 0644, 0640, 0604, 0620, 0602, 0660 };
	struct fixture *f = *state;
	uint8_t key[CRYPTO_KEY_LEN];
	char err[256];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(f->key, test_key, sizeof(test_key), modes[i]);
		memset(key, 0xaa, sizeof(key));
		err[0] = '\0';
		assert_int_equal(crypto_key_load_or_create(f->key, key, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "mode"));
		assert_non_null(strstr(err, f->key));
		assert_true(all_zero(key, sizeof(key)));
		assert_int_equal(stat(f->key, &st), 0);
		assert_int_equal(st.st_mode & 07777, modes[i]);
	}
}

/* A key file of the wrong size is refused, not replaced. */
static void
test_key_refuse_size(void **state)
{
	static const size_t sizes[] = { 0, 1, 31, 33, 64 };
	struct fixture *f = *state;
	uint8_t data[64], key[CRYPTO_KEY_LEN];
	char err[256];
	struct stat st;
	size_t i;

	memset(data, 0x5a, sizeof(data));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		write_file(f->key, data, sizes[i], 0600);
		err[0] = '\0';
		assert_int_equal(crypto_key_load_or_create(f->key, key, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "bytes"));
		assert_int_equal(stat(f->key, &st), 0);
		assert_int_equal(st.st_size, (off_t)sizes[i]);
	}
}

/* A symbolic link is refused, whether it points at a good key or nowhere. */
static void
test_key_refuse_symlink(void **state)
{
	struct fixture *f = *state;
	uint8_t key[CRYPTO_KEY_LEN];
	char err[256];
	struct stat st;

	write_file(f->aux, test_key, sizeof(test_key), 0600);
	assert_int_equal(symlink(f->aux, f->key), 0);
	err[0] = '\0';
	assert_int_equal(crypto_key_load_or_create(f->key, key, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_true(all_zero(key, sizeof(key)));

	/* Dangling: the target must not be created through the link. */
	assert_int_equal(unlink(f->aux), 0);
	err[0] = '\0';
	assert_int_equal(crypto_key_load_or_create(f->key, key, err,
	    sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(lstat(f->aux, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* A directory (or anything else not a regular file) is refused. */
static void
test_key_refuse_directory(void **state)
{
	struct fixture *f = *state;
	uint8_t key[CRYPTO_KEY_LEN];
	char err[256];

	assert_int_equal(mkdir(f->key, 0700), 0);
	err[0] = '\0';
	assert_int_equal(crypto_key_load_or_create(f->key, key, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(f->key), 0);

	/* A FIFO must be refused without blocking. */
	assert_int_equal(mkfifo(f->key, 0600), 0);
	err[0] = '\0';
	assert_int_equal(crypto_key_load_or_create(f->key, key, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(unlink(f->key), 0);
}

/* A path in a missing directory, or no path, fails with a message. */
static void
test_key_bad_path(void **state)
{
	struct fixture *f = *state;
	uint8_t key[CRYPTO_KEY_LEN];
	char err[256], path[PATH_MAX + 64], tiny[8];

	snprintf(path, sizeof(path), "%s/missing/key", f->dir);
	err[0] = '\0';
	assert_int_equal(crypto_key_load_or_create(path, key, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "cannot create"));
	err[0] = '\0';
	assert_int_equal(crypto_key_load_or_create("", key, err, sizeof(err)),
	    -1);
	assert_true(err[0] != '\0');
	assert_int_equal(crypto_key_load_or_create(NULL, key, err, sizeof(err)),
	    -1);
	/* A short error buffer is truncated, still terminated. */
	assert_int_equal(crypto_key_load_or_create(path, key, tiny,
	    sizeof(tiny)), -1);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

/* ---- base64url ---- */

/* RFC 4648 section 10 vectors (unpadded), the URL-safe characters, and
 * round trips of every length up to 300. */
static void
test_b64url_vectors(void **state)
{
	static const struct {
		const char *raw;
		const char *enc;
	} vec[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};
	static const uint8_t urlsafe[] = { 0xfb, 0xff, 0xbf };
	uint8_t data[300], *dec;
	size_t i, len;
	char *enc;

	(void)state;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		enc = crypto_b64url_encode(vec[i].raw, strlen(vec[i].raw));
		assert_non_null(enc);
		assert_string_equal(enc, vec[i].enc);
		free(enc);
		assert_int_equal(crypto_b64url_decode(vec[i].enc, &dec, &len),
		    0);
		assert_non_null(dec);
		assert_int_equal(len, strlen(vec[i].raw));
		assert_memory_equal(dec, vec[i].raw, len);
		assert_int_equal(dec[len], '\0');
		free(dec);
	}
	enc = crypto_b64url_encode(urlsafe, sizeof(urlsafe));
	assert_string_equal(enc, "-_-_");
	free(enc);
	enc = crypto_b64url_encode(NULL, 0);
	assert_string_equal(enc, "");
	free(enc);
	assert_null(crypto_b64url_encode(NULL, 1));

	assert_int_equal(crypto_random(data, sizeof(data)), 0);
	for (i = 0; i <= sizeof(data); i++) {
		enc = crypto_b64url_encode(data, i);
		assert_non_null(enc);
		assert_true(is_b64url(enc));
		assert_int_equal(crypto_b64url_decode(enc, &dec, &len), 0);
		assert_int_equal(len, i);
		assert_memory_equal(dec, data, i);
		free(dec);
		free(enc);
	}
}

/* Padding, illegal characters, 4n+1 lengths and non-canonical trailing
 * bits are refused. */
static void
test_b64url_decode_rejects(void **state)
{
	static const char *const bad[] = {
		"Zg==", "Zg=", "Zm8=", "=", "Z", "Zm9vY", "AAAAA",
		"Zm9v+", "Zm9v/A", "+/+/", "Zm 9v", "Zm9v\n", " Zm9v", "Zm.v",
		/* non-zero unused bits: "Zm8" is "fo", "Zm9" is not */
		"Zh", "Zm9", "Zm9vYh", "Zm9vYmF", "\xc3\xa9\xc3\xa9",
		"Zm9v\x80",
	};
	uint8_t *dec = (uint8_t *)"sentinel";
	size_t i, len = 7;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dec = (uint8_t *)"sentinel";
		len = 7;
		assert_int_equal(crypto_b64url_decode(bad[i], &dec, &len), -1);
		assert_null(dec);
		assert_int_equal(len, 0);
	}
	assert_int_equal(crypto_b64url_decode(NULL, &dec, &len), -1);
	assert_int_equal(crypto_b64url_decode("Zm9v", NULL, &len), -1);
	assert_int_equal(crypto_b64url_decode("Zm9v", &dec, NULL), -1);
}

/* ---- HMAC and comparison ---- */

/* RFC 4231 test cases 1 and 2, and the empty key and message. */
static void
test_hmac_rfc4231(void **state)
{
	uint8_t key1[20];
	char out[65];

	(void)state;
	assert_int_equal(crypto_hmac_hex((const uint8_t *)"Jefe", 4,
	    "what do ya want for nothing?", 28, out), 0);
	assert_string_equal(out,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	memset(key1, 0x0b, sizeof(key1));
	assert_int_equal(crypto_hmac_hex(key1, sizeof(key1), "Hi There", 8,
	    out), 0);
	assert_string_equal(out,
	    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	assert_int_equal(crypto_hmac_hex(NULL, 0, NULL, 0, out), 0);
	assert_string_equal(out,
	    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");

	assert_int_equal(crypto_hmac_hex(NULL, 4, "x", 1, out), -1);
	assert_string_equal(out, "");
	assert_int_equal(crypto_hmac_hex(key1, 4, NULL, 1, out), -1);
}

/* crypto_equal: equal only for identical strings. */
static void
test_equal(void **state)
{
	(void)state;
	assert_true(crypto_equal("", ""));
	assert_true(crypto_equal("abc", "abc"));
	assert_false(crypto_equal("abc", "abd"));
	assert_false(crypto_equal("abc", "Abc"));
	assert_false(crypto_equal("abc", "ab"));
	assert_false(crypto_equal("ab", "abc"));
	assert_false(crypto_equal("", "a"));
	assert_false(crypto_equal(NULL, "a"));
	assert_false(crypto_equal("a", NULL));
	assert_false(crypto_equal(NULL, NULL));
}

/* ---- user codes ---- */

/* 8 letters of the alphabet; over 2000 codes every letter appears, and
 * none is wildly over- or under-represented. */
static void
test_user_code_shape(void **state)
{
	static const char alphabet[] = CRYPTO_USER_CODE_ALPHABET;
	unsigned counts[20] = { 0 };
	char code[9], norm[9];
	int i, j;

	(void)state;
	assert_int_equal(strlen(alphabet), 20);
	for (i = 0; i < 2000; i++) {
		assert_int_equal(crypto_user_code(code), 0);
		assert_int_equal(strlen(code), CRYPTO_USER_CODE_LEN);
		for (j = 0; j < CRYPTO_USER_CODE_LEN; j++) {
			const char *p = strchr(alphabet, code[j]);

			assert_non_null(p);
			counts[p - alphabet]++;
		}
		assert_true(crypto_user_code_normalize(code, norm));
		assert_string_equal(norm, code);
	}
	/* 16000 letters, 800 expected each; sd ~ 27.6, so 600..1000 is
	 * more than 7 sd either way. */
	for (j = 0; j < 20; j++) {
		assert_true(counts[j] > 600);
		assert_true(counts[j] < 1000);
	}
}

/* Normalisation: case, '-' and spaces; nothing else. */
static void
test_user_code_normalize(void **state)
{
	static const char *const good[] = {
		"bcdf-ghjk", " BCDF GHJK ", "BCDFGHJK", "bcdfghjk", "BcDf-GhJk",
		"B-C-D-F-G-H-J-K", "--bcdf--ghjk--",
	};
	static const char *const bad[] = {
		"", "BCDF-GHJ", "BCDF-GHJKL", "BCDFGHJKB", "ACDF-GHJK",
		"BCDF-GHJE", "bcdf-ghji", "BCDF-GHJO", "BCDF-GHJU", "BCDF-GHJY",
		"BCDF-1234", "BCD0-GHJK", "BCDF_GHJK", "BCDF\tGHJK",
		"BCDF\nGHJK", "BCDF.GHJK", "BCDF-GHJ\xc3\x9f", "bcdf-ghjk!",
		"          ", "--------",
	};
	char out[9];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(out, 'x', sizeof(out));
		assert_true(crypto_user_code_normalize(good[i], out));
		assert_string_equal(out, "BCDFGHJK");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'x', sizeof(out));
		assert_false(crypto_user_code_normalize(bad[i], out));
		assert_string_equal(out, "");
	}
	assert_false(crypto_user_code_normalize(NULL, out));
	assert_false(crypto_user_code_normalize("BCDFGHJK", NULL));
}

/* ---- helpers ---- */

/* crypto_random fills, crypto_wipe clears, crypto_free_secret takes NULL. */
static void
test_random_and_wipe(void **state)
{
	uint8_t a[64], b[64];
	uint8_t *heap;

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(crypto_random(NULL, 0), 0);
	assert_int_equal(crypto_random(NULL, 1), -1);
	crypto_wipe(a, sizeof(a));
	assert_true(all_zero(a, sizeof(a)));
	crypto_wipe(NULL, 5);
	heap = malloc(16);
	assert_non_null(heap);
	memset(heap, 0x77, 16);
	crypto_free_secret(heap, 16);
	crypto_free_secret(NULL, 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkce_rfc7636),
		cmocka_unit_test(test_pkce_verifier_shape),
		cmocka_unit_test(test_pkce_challenge_rejects),
		cmocka_unit_test(test_seal_roundtrip),
		cmocka_unit_test(test_seal_format),
		cmocka_unit_test(test_seal_key_id),
		cmocka_unit_test(test_seal_nonce_differs),
		cmocka_unit_test(test_seal_rejects),
		cmocka_unit_test(test_open_wrong_key),
		cmocka_unit_test(test_open_flipped_bytes),
		cmocka_unit_test(test_open_truncated),
		cmocka_unit_test(test_open_wrong_aad),
		cmocka_unit_test(test_open_garbage),
		cmocka_unit_test_setup_teardown(test_key_create_race, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_create_and_reload,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_refuse_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_refuse_size, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_refuse_symlink, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_refuse_directory,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_bad_path, setup,
		    teardown),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_decode_rejects),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_user_code_shape),
		cmocka_unit_test(test_user_code_normalize),
		cmocka_unit_test(test_random_and_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
