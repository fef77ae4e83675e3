/*
 * fuzz_headers.c - libFuzzer target for the header value helpers (hdr.c):
 * the input, NUL-terminated, is fed to every parser of hostile header text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a header block (the worker reads spooled ones): each value
 * found is bounded and has no line break left. */
static void
fuzz_header_block(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "In-Reply-To", "References", "To" };
	char *values[3];
	size_t i;

	hdr_block_values((const char *)data, size, names, 3, values);
	for (i = 0; i < 3; i++) {
		if (values[i] != NULL && (strlen(values[i]) > HDR_VALUE_MAX ||
		    strchr(values[i], '\n') != NULL))
			abort();
		free(values[i]);
	}
}

/* Check what the parsers promise about their output, then free it. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msgid[HDR_MSGID_MAX + 1], addr[HDR_ADDR_MAX + 1];
	char **ids = NULL;
	char *text, *decoded;
	size_t n, i, len;

	if (size > HDR_VALUE_MAX + 16)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	hdr_init();

	n = hdr_msgids(text, 32, &ids);
	if (n > 32 || (n == 0) != (ids == NULL))
		abort();
	for (i = 0; i < n; i++) {
		len = strlen(ids[i]);
		if (len < 3 || len > HDR_MSGID_MAX || ids[i][0] != '<' ||
		    ids[i][len - 1] != '>')
			abort();
	}
	hdr_msgids_free(ids, n);
	n = hdr_msgids(text, 1, &ids);
	if (n > 1)
		abort();
	hdr_msgids_free(ids, n);

	if (hdr_msgid_one(text, msgid)) {
		len = strlen(msgid);
		if (len < 3 || len > HDR_MSGID_MAX || msgid[0] != '<' ||
		    msgid[len - 1] != '>')
			abort();
	}
	if (hdr_addr_spec(text, addr)) {
		len = strlen(addr);
		if (len == 0 || len > HDR_ADDR_MAX || strchr(addr, '@') == NULL)
			abort();
	}
	(void)hdr_is_dsn(text);
	(void)hdr_is_ours(text);
	decoded = hdr_decode_text(text);
	free(decoded);
	free(text);
	fuzz_header_block(data, size);
	return 0;
}
