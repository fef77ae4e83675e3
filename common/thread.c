/*
 * thread.c - Thread-Index decoding/encoding and conversation-key primitives.
 */
#include "thread.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define THREAD_HEADER_BLOCK 22
#define THREAD_CHILD_BLOCK  5
/* FILETIME ticks between 1601-01-01 and 1970-01-01 */
#define THREAD_EPOCH_DIFF   116444736000000000ULL

/* Strictly decode base64 text (whitespace skipped) into OUT; -1 on error. */
static int
thread_b64_decode(const char *in, size_t len, uint8_t *out, size_t outsz,
    size_t *outlen)
{
	char clean[THREAD_INDEX_MAX + 4];
	size_t n = 0, pad = 0, i;
	int got;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
		} else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/')) {
			return -1;       /* data after padding, or a foreign byte */
		}
		if (n >= THREAD_INDEX_MAX)
			return -1;
		clean[n++] = (char)c;
	}
	if (n == 0 || n % 4 != 0 || pad > 2)
		return -1;
	if ((n / 4) * 3 > outsz)
		return -1;
	clean[n] = '\0';
	got = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	if (got < 0)
		return -1;
	*outlen = (size_t)got - pad;   /* EVP_DecodeBlock counts padding */
	return 0;
}

/* Decode a Thread-Index header value (see thread.h). */
enum thread_index_status
thread_index_decode(const char *value, size_t len, struct thread_index *out)
{
	uint8_t raw[(THREAD_INDEX_MAX / 4) * 3 + 3];
	size_t rawlen = 0, i, nonspace = 0;

	for (i = 0; i < len; i++)
		if (!isspace((unsigned char)value[i]))
			nonspace++;
	if (nonspace == 0)
		return THREAD_INDEX_EMPTY;
	if (nonspace > THREAD_INDEX_MAX)
		return THREAD_INDEX_TOO_LONG;
	if (thread_b64_decode(value, len, raw, sizeof(raw), &rawlen) != 0)
		return THREAD_INDEX_BAD_BASE64;
	if (rawlen < THREAD_HEADER_BLOCK)
		return THREAD_INDEX_TRUNCATED;
	if (raw[0] != 0x01)
		return THREAD_INDEX_BAD_FIRST_BYTE;
	if ((rawlen - THREAD_HEADER_BLOCK) % THREAD_CHILD_BLOCK != 0)
		return THREAD_INDEX_BAD_CHILDREN;
	out->filetime = 0;
	for (i = 0; i < 6; i++)
		out->filetime = (out->filetime << 8) | raw[i];
	out->filetime <<= 16;
	memcpy(out->guid, raw + 6, THREAD_GUID_LEN);
	out->n_children = (unsigned)((rawlen - THREAD_HEADER_BLOCK) /
	    THREAD_CHILD_BLOCK);
	return THREAD_INDEX_OK;
}

/* Describe a decode status. */
const char *
thread_index_strerror(enum thread_index_status status)
{
	switch (status) {
	case THREAD_INDEX_OK: return "ok";
	case THREAD_INDEX_EMPTY: return "empty";
	case THREAD_INDEX_TOO_LONG: return "too long";
	case THREAD_INDEX_BAD_BASE64: return "bad base64";
	case THREAD_INDEX_TRUNCATED: return "truncated header block";
	case THREAD_INDEX_BAD_FIRST_BYTE: return "first byte is not 0x01";
	case THREAD_INDEX_BAD_CHILDREN: return "partial child block";
	}
	return "unknown";
}

/* Encode a 22-byte header block as base64. */
void
thread_index_encode(uint64_t filetime, const uint8_t guid[THREAD_GUID_LEN],
    char out[THREAD_INDEX_B64_LEN])
{
	uint8_t raw[THREAD_HEADER_BLOCK];
	int i;

	for (i = 0; i < 6; i++)
		raw[i] = (uint8_t)(filetime >> (56 - 8 * i));
	raw[0] = 0x01;      /* holds for 1896..2057; pin it for odd clocks */
	memcpy(raw + 6, guid, THREAD_GUID_LEN);
	EVP_EncodeBlock((unsigned char *)out, raw, THREAD_HEADER_BLOCK);
}

/* Convert a Unix time to FILETIME ticks. */
uint64_t
thread_filetime_from_unix(time_t t)
{
	if (t < 0)
		t = 0;
	return (uint64_t)t * 10000000ULL + THREAD_EPOCH_DIFF;
}

/* Hex-encode a GUID. */
void
thread_key_hex(const uint8_t guid[THREAD_GUID_LEN], char out[THREAD_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < THREAD_GUID_LEN; i++) {
		out[2 * i] = hex[guid[i] >> 4];
		out[2 * i + 1] = hex[guid[i] & 0x0f];
	}
	out[THREAD_KEY_LEN] = '\0';
}

/* Derive a GUID from a root Message-ID: SHA-256 with a domain prefix. */
void
thread_guid_derive(const char *root_msgid, uint8_t guid[THREAD_GUID_LEN])
{
	static const char prefix[] = "halo-milter conversation v1\n";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t len;
	EVP_MD_CTX *ctx;

	while (*root_msgid == '<' || isspace((unsigned char)*root_msgid))
		root_msgid++;
	len = strlen(root_msgid);
	while (len > 0 && (root_msgid[len - 1] == '>' ||
	    isspace((unsigned char)root_msgid[len - 1])))
		len--;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, prefix, sizeof(prefix) - 1) != 1 ||
	    EVP_DigestUpdate(ctx, root_msgid, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < THREAD_GUID_LEN) {
		/* no digest: fall back to a plain fold so the key stays stable */
		memset(md, 0, sizeof(md));
		for (size_t i = 0; i < len; i++)
			md[i % THREAD_GUID_LEN] ^= (unsigned char)root_msgid[i];
	}
	EVP_MD_CTX_free(ctx);
	memcpy(guid, md, THREAD_GUID_LEN);
}

/* Length of a reply/forward prefix at S ("Re:", "FW:", "Re[2]:"), or 0. */
static size_t
thread_prefix_len(const char *s)
{
	static const char *const words[] = {
		"re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "tr", "rif",
		"r", "ref", NULL
	};
	size_t i, n;

	for (i = 0; words[i] != NULL; i++) {
		n = strlen(words[i]);
		if (strncasecmp(s, words[i], n) != 0)
			continue;
		if (s[n] == '[') {          /* "Re[2]:" */
			size_t j = n + 1;
			while (isdigit((unsigned char)s[j]))
				j++;
			if (j > n + 1 && s[j] == ']' && s[j + 1] == ':')
				return j + 2;
			continue;
		}
		if (s[n] == ':')
			return n + 1;
	}
	return 0;
}

/* Strip reply/forward prefixes from a subject (see thread.h). */
char *
thread_topic(const char *subject, char *out, size_t outsz)
{
	size_t n;

	if (outsz == 0)
		return out;
	if (subject == NULL)
		subject = "";
	for (;;) {
		while (isspace((unsigned char)*subject))
			subject++;
		n = thread_prefix_len(subject);
		if (n == 0)
			break;
		subject += n;
	}
	n = strlen(subject);
	while (n > 0 && isspace((unsigned char)subject[n - 1]))
		n--;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, subject, n);
	out[n] = '\0';
	return out;
}
