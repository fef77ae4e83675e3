/*
 * fuzz_thread_index.c - libFuzzer target for thread.c: Thread-Index decoding
 * (with a re-encode round trip of what decodes) and subject topic stripping.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "thread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode, round-trip valid indexes, strip the topic. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct thread_index ti, again;
	char b64[THREAD_INDEX_B64_LEN], key[THREAD_KEY_LEN + 1];
	char topic[256];
	char *text;

	/* the value is not NUL-terminated: the decoder must honour SIZE */
	if (thread_index_decode((const char *)data, size, &ti) == THREAD_INDEX_OK) {
		thread_key_hex(ti.guid, key);
		if (strlen(key) != THREAD_KEY_LEN)
			abort();
		thread_index_encode(ti.filetime, ti.guid, b64);
		if (thread_index_decode(b64, strlen(b64), &again) != THREAD_INDEX_OK ||
		    memcmp(again.guid, ti.guid, THREAD_GUID_LEN) != 0 ||
		    again.n_children != 0)
			abort();
	}

	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	thread_topic(text, topic, sizeof(topic));
	if (strlen(topic) >= sizeof(topic) || strlen(topic) > strlen(text))
		abort();
	thread_topic(text, topic, 1);
	if (topic[0] != '\0')
		abort();
	thread_guid_derive(text, ti.guid);
	free(text);
	return 0;
}
