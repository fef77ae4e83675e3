/*
 * fuzz_crypto_open.c - libFuzzer target for the parsers of untrusted text in
 * crypto.c: the input, NUL-terminated, is opened as a sealed token with a
 * fixed key and AAD, decoded as base64url, and normalised as a user code.
 * Each call's promises about its outputs are checked; a broken one aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[CRYPTO_KEY_LEN] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
	0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
};
static const char fuzz_aad[] = "tenant\0agent@example.com";

/* Open the sealed text; a success must be a NUL-terminated plaintext. */
static void
fuzz_open(const char *text)
{
	uint8_t *pt = NULL;
	size_t pt_len = 0;

	if (crypto_open(fuzz_key, fuzz_aad, sizeof(fuzz_aad) - 1, text, &pt,
	    &pt_len) == 0) {
		if (pt == NULL || pt[pt_len] != '\0')
			abort();
		crypto_free_secret(pt, pt_len);
	} else if (pt != NULL || pt_len != 0)
		abort();
}

/* Strict decode: whatever it accepts must re-encode to the same text. */
static void
fuzz_decode(const char *text)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	char *again;

	if (crypto_b64url_decode(text, &out, &out_len) != 0) {
		if (out != NULL || out_len != 0)
			abort();
		return;
	}
	if (out == NULL || out[out_len] != '\0')
		abort();
	again = crypto_b64url_encode(out, out_len);
	if (again == NULL || strcmp(again, text) != 0)
		abort();
	free(again);
	free(out);
}

/* Normalise a user code: true means 8 alphabet letters, false means "". */
static void
fuzz_user_code(const char *text)
{
	char out[9];
	size_t i;

	memset(out, 'x', sizeof(out));
	if (!crypto_user_code_normalize(text, out)) {
		if (out[0] != '\0')
			abort();
		return;
	}
	if (strlen(out) != CRYPTO_USER_CODE_LEN)
		abort();
	for (i = 0; i < CRYPTO_USER_CODE_LEN; i++)
		if (strchr(CRYPTO_USER_CODE_ALPHABET, out[i]) == NULL)
			abort();
}

/* Feed one input, NUL-terminated, to each parser. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size > CRYPTO_SEALED_MAX + 16)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_open(text);
	fuzz_decode(text);
	fuzz_user_code(text);
	free(text);
	return 0;
}
