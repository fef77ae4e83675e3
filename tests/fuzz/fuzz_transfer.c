/*
 * fuzz_transfer.c - libFuzzer target for mime.c's own transfer decoding:
 * the input is the body of a single attachment part whose
 * Content-Transfer-Encoding (base64, x-uuencode, quoted-printable) and
 * Content-Disposition size= are picked by the first input byte, so the
 * fuzzer spends its time in the tolerant base64 / uuencode decoders and
 * the size check rather than in MIME structure. The attachment must come
 * out either whole or listed with a reason, within the caps.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const encodings[] = {
		"base64", "x-uuencode", "quoted-printable", "base64",
	};
	struct mime_limits lim = { .max_attachment = 1 << 20 };
	struct mime_message *m = NULL;
	char head[256], err[128];
	unsigned char *msg;
	size_t hlen, i;
	int n;

	if (size < 1 || size > (1 << 20))
		return 0;
	n = snprintf(head, sizeof(head), "Subject: t\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: application/octet-stream; name=\"f.bin\"\r\n"
	    "Content-Disposition: attachment; filename=\"f.bin\"%s%u\r\n"
	    "Content-Transfer-Encoding: %s\r\n\r\n",
	    (data[0] & 0x80) ? "; size=" : "; x=", (unsigned)(data[0] & 0x3f),
	    encodings[(data[0] >> 5) & 3]);
	if (n < 0 || (size_t)n >= sizeof(head))
		return 0;
	hlen = (size_t)n;
	msg = malloc(hlen + size);
	if (msg == NULL)
		return 0;
	memcpy(msg, head, hlen);
	memcpy(msg + hlen, data + 1, size - 1);
	if (mime_extract_mem(msg, hlen + size - 1, &lim, &m, err,
	    sizeof(err)) == 0) {
		for (i = 0; i < m->n_attachments; i++) {
			const struct mime_attachment *a = &m->attachments[i];

			if ((a->data == NULL) != (a->skip != MIME_SKIP_NONE))
				abort();
			if (a->data != NULL && a->len != a->original_len)
				abort();
			if (a->len > lim.max_attachment)
				abort();
			if (a->skip != MIME_SKIP_NONE &&
			    mime_skip_reason(a->skip) == NULL)
				abort();
		}
		mime_message_free(m);
	}
	free(msg);
	return 0;
}
