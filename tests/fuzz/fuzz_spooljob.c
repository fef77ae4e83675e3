/*
 * fuzz_spooljob.c - libFuzzer target for the spool trailer (spool.c,
 * spooljob.c): the input is written as a spool file, whose trailer is read
 * back (spool_read_trailer: footer, length, bounds) and, when there is
 * one, decoded (spooljob_decode: every field checked); the input is also
 * decoded directly as trailer JSON. A decoded trailer is encoded again and
 * must decode to the same number of rows.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "spooljob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode LEN bytes at JSON; re-encode what decodes and check it. */
static void
fuzz_decode(const char *json, size_t len)
{
	struct spooljob *sj = spooljob_decode(json, len), *again;
	char *out;

	if (sj == NULL)
		return;
	out = spooljob_encode(sj->rows, sj->n, sj->conv_msgid, sj->conv_key);
	if (out != NULL) {
		again = spooljob_decode(out, strlen(out));
		if (again == NULL || again->n != sj->n)
			abort();
		spooljob_free(again);
		free(out);
	}
	spooljob_free(sj);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	uint64_t msg_size;
	char *json;
	FILE *fp;

	if (size > 512 * 1024)
		return 0;
	fuzz_decode((const char *)data, size);
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz_spooljob.%d", getpid());
	if ((fp = fopen(path, "wb")) == NULL)
		return 0;
	if (size > 0 && fwrite(data, 1, size, fp) != size) {
		fclose(fp);
		return 0;
	}
	fclose(fp);
	if (spool_read_trailer(path, &msg_size, &json) == 0) {
		if (msg_size + strlen(json) > size)
			abort();
		fuzz_decode(json, strlen(json));
		free(json);
	}
	unlink(path);
	return 0;
}
