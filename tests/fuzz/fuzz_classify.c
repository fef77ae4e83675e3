/*
 * fuzz_classify.c - libFuzzer target for classify.c: the input is split on
 * '\n' into the header fields of a classify_input (a field made of the
 * single byte 0x01 stands for an absent header); the first byte, when
 * present, supplies the flags and counters.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS 9

/* Build an input from the fuzz data and check the result is consistent. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct classify_input in;
	struct classify_result r;
	const char *field[FIELDS];
	char *text, *p;
	uint8_t flags;
	size_t i;

	if (size < 1 || size > 65536)
		return 0;
	flags = data[0];
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	hdr_init();

	p = text;
	for (i = 0; i < FIELDS; i++) {
		field[i] = NULL;
		if (p == NULL)
			continue;
		field[i] = p;
		p = strchr(p, '\n');
		if (p != NULL)
			*p++ = '\0';
		if (strcmp(field[i], "\x01") == 0)
			field[i] = NULL;
	}

	memset(&in, 0, sizeof(in));
	in.env_from = field[0];
	in.content_type = field[1];
	in.auto_submitted = field[2];
	in.x_auto_response_suppress = field[3];
	in.precedence = field[4];
	in.x_autoreply = field[5];
	in.x_autorespond = field[6];
	in.list_id = field[7];
	in.list_unsubscribe = field[8];
	in.from_halo = flags & 1;
	in.starts_thread = flags & 2;
	in.may_create = flags & 4;
	in.recent_creates = (flags >> 3) & 3;
	in.loop_max_creates = (flags >> 5) & 3;

	r = classify(&in);
	if (classify_reason(r.cls) == NULL ||
	    strcmp(classify_reason(r.cls), "unknown") == 0)
		abort();
	if (r.cls == CLASSIFY_LOOP && (!in.may_create || !in.starts_thread ||
	    in.loop_max_creates == 0 || r.no_create))
		abort();
	if (in.from_halo && r.cls != CLASSIFY_HALO && r.cls != CLASSIFY_BOUNCE)
		abort();
	free(text);
	return 0;
}
