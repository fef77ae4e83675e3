/*
 * crypto.c - key file, AES-256-GCM sealing, base64url, PKCE, HMAC and user
 * codes (see crypto.h). Depends on libc and OpenSSL 3 only.
 */
#include "crypto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* Authenticated prefix (version + key id), then nonce, ciphertext, tag. */
#define SEAL_PREFIX_LEN (1 + CRYPTO_KEY_ID_LEN)
#define SEAL_HEADER_LEN (SEAL_PREFIX_LEN + CRYPTO_NONCE_LEN)
#define SEAL_OVERHEAD (SEAL_HEADER_LEN + CRYPTO_TAG_LEN)
/* The first format: version, nonce, ciphertext, tag. */
#define SEAL_V1_HEADER_LEN (1 + CRYPTO_NONCE_LEN)
#define SEAL_V1_OVERHEAD (SEAL_V1_HEADER_LEN + CRYPTO_TAG_LEN)
#define PKCE_VERIFIER_MIN 43
#define PKCE_VERIFIER_MAX 128
#define PKCE_RANDOM_LEN 32
#define SHA256_LEN 32

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void crypto_set_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format an error message into ERR when the caller gave room for one. */
static void
crypto_set_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* Overwrite LEN bytes at P so the compiler cannot elide it. */
void
crypto_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

/* Cleanse, then free, a buffer that held a secret. */
void
crypto_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	crypto_wipe(p, len);
	free(p);
}

/* Fill BUF with cryptographically strong random bytes. */
int
crypto_random(void *buf, size_t len)
{
	unsigned char *pos = buf;

	if (buf == NULL && len > 0)
		return -1;
	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		if (RAND_bytes(pos, chunk) != 1)
			return -1;
		pos += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

/* ---- key file ---- */

/* Read exactly LEN bytes from FD (retrying short reads); -1 otherwise. */
static int
crypto_read_full(int fd, uint8_t *buf, size_t len)
{
	long n = util_read_full(fd, buf, len);

	return n >= 0 && (size_t)n == len ? 0 : -1;
}

/*
 * Create a new key file at PATH holding fresh random KEY. 1 when PATH
 * appeared meanwhile (caller loads it), 0 on success, -1 on failure (a
 * partly written file is removed).
 */
static int
crypto_key_create(const char *path, uint8_t key[CRYPTO_KEY_LEN], char *err,
    size_t errsz)
{
	char tmp[PATH_MAX];
	int fd = -1, saved;

	/*
	 * Written whole under a temporary name, then linked into place: a
	 * process reading PATH at the same moment (the CLI beside a daemon
	 * making its first key) finds no file or the whole key, never a
	 * part of one. link() fails when PATH exists: then that key wins.
	 */
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		crypto_set_err(err, errsz, "key file name too long: %s", path);
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		crypto_set_err(err, errsz, "cannot create key file %s: %s",
		    path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) != 0 || crypto_random(key, CRYPTO_KEY_LEN) != 0) {
		crypto_set_err(err, errsz, "cannot make key file %s", path);
		goto fail;
	}
	if (util_write_full(fd, key, CRYPTO_KEY_LEN) != 0 || fsync(fd) != 0) {
		crypto_set_err(err, errsz, "cannot write key file %s: %s",
		    path, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		crypto_set_err(err, errsz, "cannot write key file %s: %s",
		    path, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (link(tmp, path) != 0) {
		if (errno == EEXIST) {          /* another process's key won */
			unlink(tmp);
			crypto_wipe(key, CRYPTO_KEY_LEN);
			return 1;
		}
		crypto_set_err(err, errsz, "cannot create key file %s: %s",
		    path, strerror(errno));
		goto fail;
	}
	unlink(tmp);
	if (util_fsync_parent(path) != 0) {
		crypto_set_err(err, errsz,
		    "cannot fsync the directory of key file %s: %s", path,
		    strerror(errno));
		saved = errno;
		unlink(path);
		crypto_wipe(key, CRYPTO_KEY_LEN);
		errno = saved;
		return -1;
	}
	return 0;

fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	crypto_wipe(key, CRYPTO_KEY_LEN);
	errno = saved;
	return -1;
}

/* Open and check the existing key file at PATH; -1 with ERR set, or with
 * errno ENOENT and ERR untouched when there is no such file. */
static int
crypto_key_read(const char *path, uint8_t key[CRYPTO_KEY_LEN], char *err,
    size_t errsz)
{
	struct stat st;
	int fd, rc = -1;

	/* O_NONBLOCK: a FIFO planted at PATH must not hang start-up. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		if (errno == ELOOP)
			crypto_set_err(err, errsz,
			    "key file %s is a symbolic link; refusing it", path);
		else
			crypto_set_err(err, errsz, "cannot open key file %s: %s",
			    path, strerror(errno));
		errno = EINVAL;
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		crypto_set_err(err, errsz, "cannot stat key file %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		crypto_set_err(err, errsz,
		    "key file %s is not a regular file; refusing it", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		crypto_set_err(err, errsz,
		    "key file %s has mode %04o: group/other may access it "
		    "(chmod 600 it)", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size != CRYPTO_KEY_LEN) {
		crypto_set_err(err, errsz,
		    "key file %s has %lld bytes, expected %d", path,
		    (long long)st.st_size, CRYPTO_KEY_LEN);
		goto out;
	}
	if (crypto_read_full(fd, key, CRYPTO_KEY_LEN) != 0) {
		crypto_set_err(err, errsz, "cannot read key file %s", path);
		crypto_wipe(key, CRYPTO_KEY_LEN);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	if (rc != 0)
		errno = EINVAL;
	return rc;
}

/* Load the sealing key at PATH, creating it on first start. */
int
crypto_key_load_or_create(const char *path, uint8_t key[CRYPTO_KEY_LEN],
    char *err, size_t errsz)
{
	int attempt, rc;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (path == NULL || key == NULL || path[0] == '\0') {
		crypto_set_err(err, errsz, "no key file path");
		return -1;
	}
	/* Twice at most: another process may create the file between our
	 * failed open and our O_EXCL create. */
	for (attempt = 0; attempt < 2; attempt++) {
		if (crypto_key_read(path, key, err, errsz) == 0)
			return 0;
		if (errno != ENOENT)
			break;
		rc = crypto_key_create(path, key, err, errsz);
		if (rc <= 0)
			return rc;
	}
	crypto_wipe(key, CRYPTO_KEY_LEN);
	if (err != NULL && errsz > 0 && err[0] == '\0')
		crypto_set_err(err, errsz, "cannot load key file %s", path);
	return -1;
}

/* ---- base64url ---- */

/* Characters needed for LEN bytes in unpadded base64url. */
static size_t
b64url_encoded_len(size_t len)
{
	return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

/* Encode LEN bytes of DATA into OUT (room for b64url_encoded_len + 1). */
static void
b64url_encode_into(const uint8_t *data, size_t len, char *out)
{
	size_t i = 0, o = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 |
		    (uint32_t)data[i + 1] << 8 | data[i + 2];

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 |
		    (uint32_t)data[i + 1] << 8;

		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* Base64url text of DATA, malloc'd. */
char *
crypto_b64url_encode(const void *data, size_t len)
{
	char *out;

	if (data == NULL && len > 0)
		return NULL;
	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	out = malloc(b64url_encoded_len(len) + 1);
	if (out == NULL)
		return NULL;
	b64url_encode_into(data, len, out);
	return out;
}

/* Strict base64url decode, malloc'd result. */
int
crypto_b64url_decode(const char *text, uint8_t **out, size_t *out_len)
{
	size_t n, len, i, o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	uint8_t *buf;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (text == NULL || out == NULL || out_len == NULL)
		return -1;
	n = strlen(text);
	if (n % 4 == 1)
		return -1;
	len = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
	buf = malloc(len + 1);
	if (buf == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		int v = util_b64url_digit((unsigned char)text[i]);

		if (v < 0)
			goto fail;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero: one encoding per byte string. */
	if (acc != 0 || o != len)
		goto fail;
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
fail:
	free(buf);
	return -1;
}

/* ---- AES-256-GCM sealing ---- */

/* Seal PT under KEY, bound to AAD; base64url text in *OUT. */
int
crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
    size_t aad_len, const void *pt, size_t pt_len, char **out)
{
	OSSL_PARAM params[2];
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *raw = NULL;
	size_t raw_len;
	int n, rc = -1;

	if (out == NULL)
		return -1;
	*out = NULL;
	if (key == NULL || (aad == NULL && aad_len > 0) ||
	    (pt == NULL && pt_len > 0) || pt_len > CRYPTO_PT_MAX ||
	    aad_len > INT_MAX)
		return -1;
	raw_len = SEAL_OVERHEAD + pt_len;
	raw = malloc(raw_len);
	if (raw == NULL)
		return -1;
	raw[0] = CRYPTO_SEAL_VERSION;
	if (crypto_key_id(key, raw + 1) != 0 ||
	    crypto_random(raw + SEAL_PREFIX_LEN, CRYPTO_NONCE_LEN) != 0)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key,
	    raw + SEAL_PREFIX_LEN, NULL) != 1)
		goto out;
	/* The version byte and the key id are authenticated too. */
	if (EVP_EncryptUpdate(ctx, NULL, &n, raw, SEAL_PREFIX_LEN) != 1)
		goto out;
	if (aad_len > 0 &&
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (pt_len > 0) {
		if (EVP_EncryptUpdate(ctx, raw + SEAL_HEADER_LEN, &n, pt,
		    (int)pt_len) != 1 || (size_t)n != pt_len)
			goto out;
	}
	if (EVP_EncryptFinal_ex(ctx, raw + SEAL_HEADER_LEN + pt_len, &n) != 1 ||
	    n != 0)
		goto out;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    raw + SEAL_HEADER_LEN + pt_len, CRYPTO_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_CIPHER_CTX_get_params(ctx, params) != 1)
		goto out;
	*out = crypto_b64url_encode(raw, raw_len);
	if (*out != NULL)
		rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	return rc;
}

/* Open text made by crypto_seal() with the same KEY and AAD. */
int
crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
    size_t aad_len, const char *sealed, uint8_t **pt, size_t *pt_len)
{
	OSSL_PARAM params[2];
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *raw = NULL, *plain = NULL, want_id[CRYPTO_KEY_ID_LEN];
	size_t raw_len, ct_len = 0, prefix_len, header_len;
	int n, rc = -1;

	if (pt == NULL || pt_len == NULL)
		return -1;
	*pt = NULL;
	*pt_len = 0;
	if (key == NULL || sealed == NULL || (aad == NULL && aad_len > 0) ||
	    aad_len > INT_MAX)
		return -1;
	if (strnlen(sealed, CRYPTO_SEALED_MAX + 1) > CRYPTO_SEALED_MAX)
		return -1;
	if (crypto_b64url_decode(sealed, &raw, &raw_len) != 0)
		return -1;
	if (raw_len >= SEAL_OVERHEAD && raw[0] == CRYPTO_SEAL_VERSION) {
		/* another key's value fails here, before any decryption */
		if (crypto_key_id(key, want_id) != 0 ||
		    CRYPTO_memcmp(raw + 1, want_id, CRYPTO_KEY_ID_LEN) != 0)
			goto out;
		prefix_len = SEAL_PREFIX_LEN;
		header_len = SEAL_HEADER_LEN;
	} else if (raw_len >= SEAL_V1_OVERHEAD && raw[0] == CRYPTO_SEAL_V1) {
		prefix_len = 1;
		header_len = SEAL_V1_HEADER_LEN;
	} else
		goto out;
	ct_len = raw_len - header_len - CRYPTO_TAG_LEN;
	plain = malloc(ct_len + 1);
	if (plain == NULL)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, raw + prefix_len,
	    NULL) != 1)
		goto out;
	if (EVP_DecryptUpdate(ctx, NULL, &n, raw, (int)prefix_len) != 1)
		goto out;
	if (aad_len > 0 &&
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
		goto out;
	if (ct_len > 0) {
		if (EVP_DecryptUpdate(ctx, plain, &n, raw + header_len,
		    (int)ct_len) != 1 || (size_t)n != ct_len)
			goto out;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
	    raw + header_len + ct_len, CRYPTO_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_CIPHER_CTX_set_params(ctx, params) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, plain + ct_len, &n) != 1 || n != 0)
		goto out;
	plain[ct_len] = '\0';
	*pt = plain;
	*pt_len = ct_len;
	plain = NULL;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	/* Unauthenticated plaintext never leaves this function. */
	crypto_free_secret(plain, ct_len + 1);
	free(raw);
	return rc;
}

/* The id of a sealing key (see crypto.h). */
int
crypto_key_id(const uint8_t key[CRYPTO_KEY_LEN],
    uint8_t id[CRYPTO_KEY_ID_LEN])
{
	static const char label[] = "halo-milter sealing key id v1";
	uint8_t mac[CRYPTO_HMAC_LEN];

	if (key == NULL || id == NULL ||
	    crypto_hmac(key, CRYPTO_KEY_LEN, label, sizeof(label) - 1,
	    mac) != 0)
		return -1;
	memcpy(id, mac, CRYPTO_KEY_ID_LEN);
	crypto_wipe(mac, sizeof(mac));
	return 0;
}

/* The key id a sealed value carries. */
int
crypto_sealed_key_id(const char *sealed, uint8_t id[CRYPTO_KEY_ID_LEN])
{
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	int rc = -1;

	if (sealed == NULL || id == NULL ||
	    strnlen(sealed, CRYPTO_SEALED_MAX + 1) > CRYPTO_SEALED_MAX ||
	    crypto_b64url_decode(sealed, &raw, &raw_len) != 0)
		return -1;
	if (raw_len >= SEAL_OVERHEAD && raw[0] == CRYPTO_SEAL_VERSION) {
		memcpy(id, raw + 1, CRYPTO_KEY_ID_LEN);
		rc = 1;
	} else if (raw_len >= SEAL_V1_OVERHEAD && raw[0] == CRYPTO_SEAL_V1)
		rc = 0;
	free(raw);
	return rc;
}

/* ---- PKCE, HMAC, comparison ---- */

/* A fresh PKCE code verifier. */
int
crypto_pkce_verifier(char out[44])
{
	uint8_t rnd[PKCE_RANDOM_LEN];

	if (out == NULL)
		return -1;
	out[0] = '\0';
	if (crypto_random(rnd, sizeof(rnd)) != 0)
		return -1;
	b64url_encode_into(rnd, sizeof(rnd), out);
	crypto_wipe(rnd, sizeof(rnd));
	return 0;
}

/* True for an RFC 7636 unreserved character. */
static bool
pkce_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* The S256 challenge of VERIFIER. */
int
crypto_pkce_challenge(const char *verifier, char out[44])
{
	unsigned char md[SHA256_LEN];
	unsigned int md_len = 0;
	size_t len, i;

	if (out == NULL)
		return -1;
	out[0] = '\0';
	if (verifier == NULL)
		return -1;
	len = strnlen(verifier, PKCE_VERIFIER_MAX + 1);
	if (len < PKCE_VERIFIER_MIN || len > PKCE_VERIFIER_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if (!pkce_char_ok((unsigned char)verifier[i]))
			return -1;
	if (EVP_Digest(verifier, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len != SHA256_LEN)
		return -1;
	b64url_encode_into(md, sizeof(md), out);
	return 0;
}

/* HMAC-SHA256 as lower-case hex. */
int
crypto_hmac_hex(const uint8_t *key, size_t key_len, const void *data,
    size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[CRYPTO_HMAC_LEN];
	size_t i;

	if (out == NULL)
		return -1;
	out[0] = '\0';
	if (crypto_hmac(key, key_len, data, len, mac) != 0)
		return -1;
	for (i = 0; i < CRYPTO_HMAC_LEN; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[2 * CRYPTO_HMAC_LEN] = '\0';
	crypto_wipe(mac, sizeof(mac));
	return 0;
}

/* HMAC-SHA256 of DATA with KEY, as raw bytes. */
int
crypto_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
    uint8_t out[CRYPTO_HMAC_LEN])
{
	static const uint8_t empty[1];
	size_t mac_len = 0;

	if (out == NULL || (key == NULL && key_len > 0) ||
	    (data == NULL && len > 0))
		return -1;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
	    key_len > 0 ? key : empty, key_len,
	    len > 0 ? data : empty, len, out, CRYPTO_HMAC_LEN, &mac_len) ==
	    NULL || mac_len != CRYPTO_HMAC_LEN) {
		crypto_wipe(out, CRYPTO_HMAC_LEN);
		return -1;
	}
	return 0;
}

/* Constant-time (in the contents) equality of two strings. */
bool
crypto_equal(const char *a, const char *b)
{
	size_t len_a, len_b;

	if (a == NULL || b == NULL)
		return false;
	len_a = strlen(a);
	len_b = strlen(b);
	if (len_a != len_b)
		return false;
	return CRYPTO_memcmp(a, b, len_a) == 0;
}

/* ---- user codes ---- */

/* A random one-time user code, unbiased over the 20-letter alphabet. */
int
crypto_user_code(char out[9])
{
	static const char alphabet[] = CRYPTO_USER_CODE_ALPHABET;
	const unsigned letters = sizeof(alphabet) - 1;
	/* Largest multiple of 20 not above 256: bytes at or above it would
	 * favour the first letters, so they are drawn again. */
	const unsigned limit = 256 / letters * letters;
	uint8_t rnd[32];
	size_t have = 0, used = 0;
	int got = 0;

	if (out == NULL)
		return -1;
	out[0] = '\0';
	while (got < CRYPTO_USER_CODE_LEN) {
		if (used == have) {
			if (crypto_random(rnd, sizeof(rnd)) != 0) {
				crypto_wipe(out, CRYPTO_USER_CODE_LEN + 1);
				crypto_wipe(rnd, sizeof(rnd));
				return -1;
			}
			have = sizeof(rnd);
			used = 0;
		}
		if (rnd[used] < limit)
			out[got++] = alphabet[rnd[used] % letters];
		used++;
	}
	out[CRYPTO_USER_CODE_LEN] = '\0';
	crypto_wipe(rnd, sizeof(rnd));
	return 0;
}

/* Canonical form of a user-typed code, or false. */
bool
crypto_user_code_normalize(const char *in, char out[9])
{
	size_t got = 0;

	if (out == NULL)
		return false;
	out[0] = '\0';
	if (in == NULL)
		return false;
	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		if (c == '\0' || strchr(CRYPTO_USER_CODE_ALPHABET, c) == NULL ||
		    got == CRYPTO_USER_CODE_LEN) {
			out[0] = '\0';
			return false;
		}
		out[got++] = (char)c;
	}
	if (got != CRYPTO_USER_CODE_LEN) {
		out[0] = '\0';
		return false;
	}
	out[got] = '\0';
	return true;
}

/* ---- admin password hashes ---- */

#define PW_PREFIX "pbkdf2-sha256$"
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32

/* PBKDF2-HMAC-SHA256 of PASSWORD with SALT over ITERATIONS into OUT. */
static int
crypto_pbkdf2(const char *password, const uint8_t *salt, size_t salt_len,
    unsigned long iterations, uint8_t out[PW_HASH_LEN])
{
	return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
	    (int)salt_len, (int)iterations, EVP_sha256(), PW_HASH_LEN,
	    out) == 1 ? 0 : -1;
}

/* "pbkdf2-sha256$ITER$SALT$HASH" of PASSWORD. */
int
crypto_password_hash(const char *password, unsigned long iterations,
    char *out, size_t outsz)
{
	uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
	char salt_text[32], hash_text[48];
	int n, rc = -1;

	if (outsz > 0)
		out[0] = '\0';
	if (iterations == 0)
		iterations = CRYPTO_PW_ITER;
	if (password == NULL || *password == '\0' ||
	    strlen(password) > CRYPTO_PW_MAX || iterations < CRYPTO_PW_ITER_MIN ||
	    iterations > CRYPTO_PW_ITER_MAX)
		return -1;
	if (crypto_random(salt, sizeof(salt)) != 0 ||
	    crypto_pbkdf2(password, salt, sizeof(salt), iterations, hash) != 0)
		goto out;
	b64url_encode_into(salt, sizeof(salt), salt_text);
	b64url_encode_into(hash, sizeof(hash), hash_text);
	n = snprintf(out, outsz, PW_PREFIX "%lu$%s$%s", iterations, salt_text,
	    hash_text);
	if (n < 0 || (size_t)n >= outsz) {
		if (outsz > 0)
			crypto_wipe(out, outsz);
		goto out;
	}
	rc = 0;
out:
	crypto_wipe(hash, sizeof(hash));
	crypto_wipe(hash_text, sizeof(hash_text));
	return rc;
}

/* Does PASSWORD match STORED? 1 yes, 0 no, -1 when STORED is malformed. */
int
crypto_password_verify(const char *stored, const char *password)
{
	char text[CRYPTO_PW_HASH_MAX + 1], *iter_text, *salt_text, *hash_text;
	char *end;
	uint8_t *salt = NULL, *want = NULL, got[PW_HASH_LEN];
	size_t salt_len = 0, want_len = 0, len;
	unsigned long iterations;
	int rc = -1;

	if (stored == NULL || password == NULL)
		return -1;
	len = strlen(stored);
	/* one trailing newline is how the file ends */
	if (len > 0 && stored[len - 1] == '\n')
		len--;
	if (len > CRYPTO_PW_HASH_MAX || strncmp(stored, PW_PREFIX,
	    sizeof(PW_PREFIX) - 1) != 0)
		return -1;
	memcpy(text, stored, len);
	text[len] = '\0';
	iter_text = text + sizeof(PW_PREFIX) - 1;
	if ((salt_text = strchr(iter_text, '$')) == NULL)
		goto out;
	*salt_text++ = '\0';
	if ((hash_text = strchr(salt_text, '$')) == NULL)
		goto out;
	*hash_text++ = '\0';
	if (*iter_text < '1' || *iter_text > '9' || strlen(iter_text) > 9)
		goto out;
	iterations = strtoul(iter_text, &end, 10);
	if (*end != '\0' || iterations < CRYPTO_PW_ITER_MIN ||
	    iterations > CRYPTO_PW_ITER_MAX)
		goto out;
	if (crypto_b64url_decode(salt_text, &salt, &salt_len) != 0 ||
	    salt_len < 8 || salt_len > 64 ||
	    crypto_b64url_decode(hash_text, &want, &want_len) != 0 ||
	    want_len != PW_HASH_LEN)
		goto out;
	/* the password's length is not secret; its bytes are */
	if (strlen(password) > CRYPTO_PW_MAX) {
		rc = 0;
		goto out;
	}
	if (crypto_pbkdf2(password, salt, salt_len, iterations, got) != 0)
		goto out;
	rc = CRYPTO_memcmp(got, want, PW_HASH_LEN) == 0 ? 1 : 0;
out:
	crypto_wipe(got, sizeof(got));
	crypto_wipe(text, sizeof(text));
	free(salt);
	if (want != NULL)
		crypto_free_secret(want, want_len);
	return rc;
}
