/*
 * fuzz_mime.c - libFuzzer target for the message extractor (mime.c): the
 * input is parsed as a whole message under small limits, so the caps are
 * hit often; an input that starts with the TNEF signature is wrapped as a
 * message whose only part is that winmail.dat, so libytnef's input is
 * fuzzed too. What mime.h promises about the result is checked, and the
 * HTML body is run through the sanitiser.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "mime.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is S valid UTF-8 without NUL bytes? */
static bool
fuzz_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i;

	while (*p != '\0') {
		if (*p < 0x80)
			n = 1;
		else if (*p >= 0xc2 && *p <= 0xdf)
			n = 2;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 3;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 4;
		else
			return false;
		for (i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

/* Abort unless M keeps the promises of mime.h under LIM. */
static void
fuzz_check(const struct mime_message *m, const struct mime_limits *lim)
{
	size_t i, kept = 0;
	const char *p;

	if ((m->html != NULL && (!fuzz_utf8_ok(m->html) ||
	    strlen(m->html) > lim->max_text)) ||
	    (m->text != NULL && (!fuzz_utf8_ok(m->text) ||
	    strlen(m->text) > lim->max_text)))
		abort();
	if (m->n_attachments > 0 && m->attachments == NULL)
		abort();
	for (i = 0; i < m->n_attachments; i++) {
		const struct mime_attachment *a = &m->attachments[i];

		if (a->filename == NULL || a->filename[0] == '\0' ||
		    strlen(a->filename) > MIME_FILENAME_MAX ||
		    !fuzz_utf8_ok(a->filename) || a->content_type == NULL ||
		    strchr(a->content_type, '/') == NULL)
			abort();
		for (p = a->filename; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == '/' || *p == '\\')
				abort();
		if (a->content_id != NULL && a->content_id[0] == '\0')
			abort();
		/* no bytes exactly when a reason says why (mime.h); over the
		 * cap is one such reason */
		if ((a->data == NULL) != (a->skip != MIME_SKIP_NONE) ||
		    a->over_cap != (a->skip == MIME_SKIP_SIZE))
			abort();
		if (a->data == NULL && a->len != 0)
			abort();
		if (a->skip == MIME_SKIP_LIMIT && a->original_len != 0)
			abort();
		if (a->data != NULL) {
			if (a->len != a->original_len || a->len > lim->max_attachment)
				abort();
			kept += a->len;
		}
		if (a->over_cap && !m->truncated)
			abort();
	}
	if (kept > lim->max_total)
		abort();
}

/* Parse the input (or the winmail.dat it is) and check the result. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char tnef_head[] =
	    "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
	    "Content-Transfer-Encoding: binary\r\n\r\n";
	struct mime_limits lim = { .max_attachment = 256u << 10,
	    .max_total = 512u << 10, .max_parts = 40, .max_depth = 8,
	    .max_text = 64u << 10 };
	struct mime_message *m = NULL;
	char err[256] = "";
	uint8_t *wrapped = NULL;
	char *html;
	int rc;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (size >= 4 && memcmp(data, "\x78\x9f\x3e\x22", 4) == 0) {
		wrapped = malloc(sizeof(tnef_head) - 1 + size);
		if (wrapped == NULL)
			return 0;
		memcpy(wrapped, tnef_head, sizeof(tnef_head) - 1);
		memcpy(wrapped + sizeof(tnef_head) - 1, data, size);
		data = wrapped;
		size += sizeof(tnef_head) - 1;
	}
	rc = mime_extract_mem(data, size, &lim, &m, err, sizeof(err));
	free(wrapped);
	if (rc != 0) {
		if (m != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (m == NULL)
		abort();
	fuzz_check(m, &lim);
	if (m->html != NULL) {
		struct html_options opt = { .trim_quotes = true };

		html = html_sanitize(m->html, strlen(m->html), &opt);
		if (html == NULL)
			abort();
		free(html);
	}
	if (mime_message_free(m) != NULL)
		abort();
	return 0;
}
