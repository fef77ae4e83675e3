/*
 * fuzz_charset.c - libFuzzer target for charset.c: RFC 2047 encoded words
 * (charset_decode_words(), as hdr_decode_text() and hdr_display_name() use
 * them) and charset conversion with its recoveries (ISO-2022-JP read as
 * CP50221, Windows-1252 for undeclared text). The first input byte picks
 * the charset for charset_to_utf8(); the output must be valid UTF-8 within
 * its bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "charset.h"
#include "hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless S is valid UTF-8 without NUL bytes inside its length. */
static void
check_utf8(const char *s)
{
	if (s == NULL)
		return;
	if (!g_utf8_validate(s, -1, NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const charsets[] = {
		NULL, "utf-8", "us-ascii", "iso-8859-1", "windows-1252",
		"ISO-2022-JP", "CP50221", "Shift_JIS", "EUC-JP", "koi8-r",
		"x-unknown", "utf-16", "gb2312", "big5", "iso-2022-kr", "utf-7",
	};
	const char *charset;
	char *text, *out;
	size_t max;
	bool oom = false;

	if (size < 1 || size > CHARSET_WORDS_MAX + 16)
		return 0;
	hdr_init();
	charset = charsets[data[0] % (sizeof(charsets) / sizeof(charsets[0]))];
	max = (size_t)(data[0] >> 4) * 16 + 1;
	data++;
	size--;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	out = charset_decode_words(text, size);
	if (out == NULL)
		abort();        /* only ENOMEM may give NULL */
	check_utf8(out);
	free(out);

	out = hdr_decode_text(text);
	if (out == NULL)
		abort();
	check_utf8(out);
	if (strchr(out, '\r') != NULL || strchr(out, '\n') != NULL)
		abort();        /* one line */
	free(out);

	out = hdr_display_name(text);
	if (out == NULL)
		abort();
	check_utf8(out);
	free(out);

	out = charset_to_utf8(data, size, charset, max, &oom);
	if (out == NULL)
		abort();
	check_utf8(out);
	if (strlen(out) > max)
		abort();
	free(out);
	free(text);
	return 0;
}
