/*
 * thread.h - Outlook Thread-Index and halo-milter conversation keys.
 *
 * A Thread-Index value is base64 of a 22-byte header block followed by zero
 * or more 5-byte child blocks (one per reply). Header block: bytes 0..5 are
 * the high six bytes of a FILETIME (byte 0 is 0x01 for any date this
 * software will see), bytes 6..21 the conversation GUID. The conversation
 * key halo-milter stamps is the lower-case hex of that GUID (design.md).
 */
#ifndef HALO_THREAD_H
#define HALO_THREAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define THREAD_GUID_LEN   16
#define THREAD_KEY_LEN    32           /* hex characters, without NUL */
#define THREAD_INDEX_MAX  4096         /* longest header value accepted */
#define THREAD_INDEX_B64_LEN 33        /* encoded header block (22 bytes) + NUL */

enum thread_index_status {
	THREAD_INDEX_OK = 0,
	THREAD_INDEX_EMPTY,
	THREAD_INDEX_TOO_LONG,
	THREAD_INDEX_BAD_BASE64,
	THREAD_INDEX_TRUNCATED,        /* fewer than 22 bytes */
	THREAD_INDEX_BAD_FIRST_BYTE,   /* byte 0 is not 0x01 */
	THREAD_INDEX_BAD_CHILDREN      /* tail is not whole 5-byte blocks */
};

struct thread_index {
	uint8_t guid[THREAD_GUID_LEN];
	uint64_t filetime;             /* 100 ns ticks since 1601, low 16 bits 0 */
	unsigned n_children;           /* number of 5-byte child blocks */
};

/* Decode the header value VALUE (LEN bytes, whitespace allowed) into OUT. */
enum thread_index_status thread_index_decode(const char *value, size_t len,
    struct thread_index *out);

/* A short English description of STATUS, for logs and tests. */
const char *thread_index_strerror(enum thread_index_status status);

/* Build a header-block-only Thread-Index (base64, NUL-terminated) into OUT. */
void thread_index_encode(uint64_t filetime, const uint8_t guid[THREAD_GUID_LEN],
    char out[THREAD_INDEX_B64_LEN]);

/* FILETIME (100 ns since 1601-01-01 UTC) for a Unix time. */
uint64_t thread_filetime_from_unix(time_t t);

/* Lower-case hex of GUID into OUT (THREAD_KEY_LEN + 1 bytes). */
void thread_key_hex(const uint8_t guid[THREAD_GUID_LEN],
    char out[THREAD_KEY_LEN + 1]);

/* A stable GUID for a conversation whose root Message-ID is ROOT_MSGID
 * (with or without <>, compared case-sensitively in the local part as
 * RFC 5322 says, with the angle brackets stripped). */
void thread_guid_derive(const char *root_msgid, uint8_t guid[THREAD_GUID_LEN]);

/* Copy SUBJECT without its reply/forward prefixes ("Re:", "Fwd:", "AW:",
 * "[EXTERNAL]" is kept) into OUT, at most OUTSZ-1 bytes. Returns OUT. */
char *thread_topic(const char *subject, char *out, size_t outsz);

#endif
