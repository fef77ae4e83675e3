/*
 * crypto.h - the daemon's secrets: the sealing key file, AES-256-GCM sealing
 * of refresh tokens, base64url, PKCE, HMAC-SHA256, constant-time comparison
 * and RFC 8628-style one-time user codes.
 *
 * Everything here uses OpenSSL 3 EVP interfaces and RAND_bytes; no function
 * keeps state, so all of them may be called from any thread. Nothing here
 * logs; error texts never contain key material or plaintext.
 *
 * Sealed format (base64url, no padding, of):
 *     0x02 | 8-byte key id | 12-byte random nonce | ciphertext | 16-byte tag
 * The key id (crypto_key_id()) names the key a value was sealed with, so a
 * missing or replaced key file is told apart from a damaged value without
 * trying to decrypt. The version byte and the key id are authenticated
 * along with the caller's AAD, so a sealed token bound to one tenant/agent
 * does not open for another. Values of the first format (0x01 | nonce |
 * ciphertext | tag, no key id) are still opened.
 */
#ifndef HALO_CRYPTO_H
#define HALO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_LEN 32

#define CRYPTO_SEAL_VERSION 0x02     /* what crypto_seal() writes */
#define CRYPTO_SEAL_V1 0x01          /* older values: no key id */
#define CRYPTO_KEY_ID_LEN 8
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16
/* Longest sealed text crypto_open() accepts (characters, without the NUL). */
#define CRYPTO_SEALED_MAX 65536
/* Longest plaintext crypto_seal() accepts: its sealed text fits
 * CRYPTO_SEALED_MAX (65536 characters carry 49152 bytes). */
#define CRYPTO_PT_MAX (CRYPTO_SEALED_MAX / 4 * 3 - 1 - CRYPTO_KEY_ID_LEN - \
    CRYPTO_NONCE_LEN - CRYPTO_TAG_LEN)

/* Length of a PKCE verifier / S256 challenge made here (without the NUL). */
#define CRYPTO_PKCE_LEN 43
/* Length of a user code (without the NUL) and its alphabet (RFC 8628 6.1:
 * consonants only, so no words and no 0/O, 1/I confusion). */
#define CRYPTO_USER_CODE_LEN 8
#define CRYPTO_USER_CODE_ALPHABET "BCDFGHJKLMNPQRSTVWXZ"

/*
 * Load the 32-byte key at PATH, or create it (O_CREAT|O_EXCL|O_NOFOLLOW,
 * mode 0600, RAND_bytes, write, fsync, fsync dir) when absent. Refuse a key
 * file that is not a regular file (symlinks included), has the wrong size,
 * or is readable by group/other (message in ERR, ERRSZ bytes, always
 * NUL-terminated when ERRSZ > 0). 0 on success, -1 on failure (KEY is then
 * wiped). A file left half-written by a crash during creation has the wrong
 * size and is refused, not silently replaced.
 */
int crypto_key_load_or_create(const char *path, uint8_t key[CRYPTO_KEY_LEN],
    char *err, size_t errsz);

/*
 * AES-256-GCM seal of PT (PT_LEN bytes, at most CRYPTO_PT_MAX; PT may be NULL
 * when PT_LEN is 0) with additional authenticated data AAD (e.g.
 * "tenant\0agent-email" as given by the caller; may be NULL when AAD_LEN is
 * 0). On success *OUT is a malloc'd NUL-terminated base64url text the caller
 * frees with free(); 0 is returned. -1 (and *OUT = NULL) on failure.
 */
int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
    size_t aad_len, const void *pt, size_t pt_len, char **out);

/*
 * Reverse of crypto_seal(): -1 on any tampering, wrong key (for a value with
 * a key id, found before any decryption), wrong AAD, bad
 * encoding, wrong version, or input over CRYPTO_SEALED_MAX characters; *PT is
 * then NULL and *PT_LEN 0. On success (0) *PT is malloc'd and NUL-terminated
 * (*PT_LEN excludes the NUL); the caller frees it with crypto_free_secret(*PT,
 * *PT_LEN).
 */
int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
    size_t aad_len, const char *sealed, uint8_t **pt, size_t *pt_len);

/* The id of KEY: the first CRYPTO_KEY_ID_LEN bytes of HMAC-SHA256(KEY,
 * "halo-milter sealing key id v1"); it tells keys apart and reveals
 * nothing of the key. 0 ok, -1 on failure. */
int crypto_key_id(const uint8_t key[CRYPTO_KEY_LEN],
    uint8_t id[CRYPTO_KEY_ID_LEN]);

/* The key id carried by SEALED into ID: 1 when it has one, 0 for a value
 * of the first format (no id: only crypto_open() can tell its key), -1
 * when SEALED is not a sealed value at all. */
int crypto_sealed_key_id(const char *sealed, uint8_t id[CRYPTO_KEY_ID_LEN]);

/* Cleanse LEN bytes at P, then free P (P may be NULL). */
void crypto_free_secret(void *p, size_t len);

/* Overwrite LEN bytes at P in a way the compiler cannot drop. */
void crypto_wipe(void *p, size_t len);

/* Fill BUF with LEN bytes from RAND_bytes; 0 ok, -1 on failure. */
int crypto_random(void *buf, size_t len);

/* Base64url of LEN bytes at DATA, without padding; malloc'd, caller frees;
 * NULL on allocation failure. */
char *crypto_b64url_encode(const void *data, size_t len);

/*
 * Strict base64url decode of TEXT: rejects padding characters, characters
 * outside [A-Za-z0-9_-], impossible lengths (4n+1) and non-zero unused
 * trailing bits (so each byte string has exactly one accepted encoding).
 * On success (0) *OUT is malloc'd (NUL-terminated for convenience, *OUT_LEN
 * excludes the NUL) and the caller frees it. -1, *OUT = NULL otherwise.
 */
int crypto_b64url_decode(const char *text, uint8_t **out, size_t *out_len);

/* PKCE (RFC 7636): a verifier from 32 random bytes (43 characters + NUL).
 * 0 ok, -1 when no randomness. */
int crypto_pkce_verifier(char out[44]);

/* S256 challenge of VERIFIER: b64url(SHA256(verifier)), 43 characters + NUL.
 * -1 when VERIFIER is not 43..128 characters of [A-Za-z0-9-._~]. */
int crypto_pkce_challenge(const char *verifier, char out[44]);

#define CRYPTO_HMAC_LEN 32

/* HMAC-SHA256 of DATA (LEN bytes) with KEY (KEY_LEN bytes), raw, into OUT.
 * 0 ok, -1 on failure. */
int crypto_hmac(const uint8_t *key, size_t key_len, const void *data,
    size_t len, uint8_t out[CRYPTO_HMAC_LEN]);

/* HMAC-SHA256 of DATA (LEN bytes) with KEY (KEY_LEN bytes), as 64 lower-case
 * hex characters + NUL in OUT. 0 ok, -1 on failure. */
int crypto_hmac_hex(const uint8_t *key, size_t key_len, const void *data,
    size_t len, char out[65]);

/* Compare two NUL-terminated strings in time independent of their contents
 * (the lengths are not treated as secret). NULL never equals anything. */
bool crypto_equal(const char *a, const char *b);

/* A random one-time code: 8 characters from CRYPTO_USER_CODE_ALPHABET, drawn
 * without bias (rejection sampling), + NUL. 0 ok, -1 when no randomness. */
int crypto_user_code(char out[9]);

/* Normalise a user-typed code ("bcdf-ghjk" -> "BCDFGHJK"): upper-case, drop
 * '-' and spaces; false (OUT = "") unless exactly 8 alphabet letters remain. */
bool crypto_user_code_normalize(const char *in, char out[9]);

/*
 * Admin password hashes: "pbkdf2-sha256$ITERATIONS$SALT$HASH" (PBKDF2-HMAC-
 * SHA256, 16-byte random salt, 32-byte hash, both base64url), a format that
 * names its own parameters so they can be raised without breaking old
 * files. CRYPTO_PW_ITER follows OWASP's 2023 advice for PBKDF2-SHA256.
 */
#define CRYPTO_PW_ITER      600000UL    /* iterations of a new hash */
#define CRYPTO_PW_ITER_MIN  100000UL    /* fewer is refused as malformed */
#define CRYPTO_PW_ITER_MAX  10000000UL  /* more: a verify would stall */
#define CRYPTO_PW_MIN       12          /* shortest password accepted (CLI) */
#define CRYPTO_PW_MAX       1024        /* longest password hashed */
#define CRYPTO_PW_HASH_MAX  160         /* longest stored hash text */

/* Hash PASSWORD (1..CRYPTO_PW_MAX bytes) with ITERATIONS (0: CRYPTO_PW_ITER)
 * into OUT (at least CRYPTO_PW_HASH_MAX + 1 bytes). 0 ok, -1 on failure. */
int crypto_password_hash(const char *password, unsigned long iterations,
    char *out, size_t outsz);

/* Whether PASSWORD matches STORED (one trailing newline allowed), compared
 * in constant time: 1 yes, 0 no, -1 when STORED is not a hash we made. */
int crypto_password_verify(const char *stored, const char *password);

#endif
