/*
 * enroll.c - keyed hashes of enrollment codes and OAuth states (see
 * enroll.h).
 */
#include "enroll.h"

#include <stdio.h>
#include <string.h>

int
enroll_hash_key(const uint8_t seal_key[CRYPTO_KEY_LEN], char out[65])
{
	static const char label[] = "halo-milter enrollment hash key v1";

	return crypto_hmac_hex(seal_key, CRYPTO_KEY_LEN, label,
	    sizeof(label) - 1, out);
}

/* Keyed hash of "LABEL:VALUE". */
static int
enroll_keyed_hash(const char *hash_key, const char *label, const char *value,
    char out[65])
{
	char data[ENROLL_STATE_MAX + 16];
	int n, rc;

	n = snprintf(data, sizeof(data), "%s:%s", label, value);
	if (n < 0 || (size_t)n >= sizeof(data))
		return -1;
	rc = crypto_hmac_hex((const uint8_t *)hash_key, strlen(hash_key), data,
	    (size_t)n, out);
	crypto_wipe(data, sizeof(data));
	return rc;
}

int
enroll_code_hash(const char *hash_key, const char *typed, char out[65])
{
	char norm[9];
	int rc;

	if (typed == NULL || strlen(typed) > ENROLL_TYPED_MAX ||
	    !crypto_user_code_normalize(typed, norm))
		return -1;
	rc = enroll_keyed_hash(hash_key, "code", norm, out);
	crypto_wipe(norm, sizeof(norm));
	return rc;
}

int
enroll_state_hash(const char *hash_key, const char *state, char out[65])
{
	if (state == NULL || *state == '\0' || strlen(state) > ENROLL_STATE_MAX)
		return -1;
	return enroll_keyed_hash(hash_key, "state", state, out);
}

void
enroll_code_format(const char code[9], char out[10])
{
	memcpy(out, code, 4);
	out[4] = '-';
	memcpy(out + 5, code + 4, 4);
	out[9] = '\0';
}
