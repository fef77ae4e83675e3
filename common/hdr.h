/*
 * hdr.h - bounded helpers for RFC 5322 header values from hostile mail.
 *
 * Address, Content-Type and encoded-word parsing are GMime's; this module
 * bounds what reaches it and turns the results into plain C strings.
 * hdr_init() must run once before any thread calls the others.
 */
#ifndef HALO_HDR_H
#define HALO_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HDR_MSGID_MAX   998     /* longest Message-ID kept, with <> */
#define HDR_ADDR_MAX    320     /* longest addr-spec kept */
#define HDR_VALUE_MAX   65536   /* longest header value parsed */

/* Initialise GMime (idempotent, thread-safe). */
void hdr_init(void);

/* True when NAME is one of ours ("X-Halo-" prefix, any case). */
bool hdr_is_ours(const char *name);

/*
 * Message-IDs in VALUE ("<a@b> <c@d>", comments and junk skipped), each
 * copied with its angle brackets into a malloc'd string. At most MAX are
 * kept: when there are more, the first one and the last MAX-1 (the thread
 * root and the nearest parents). Returns the count; *OUT is a malloc'd
 * array (free with hdr_msgids_free), NULL when the count is 0.
 */
size_t hdr_msgids(const char *value, size_t max, char ***out);
void hdr_msgids_free(char **ids, size_t n);

/*
 * The one Message-ID of a Message-ID header value, normalised to "<id>"
 * (brackets added when missing, whitespace trimmed) into OUT
 * (HDR_MSGID_MAX + 1 bytes). False when VALUE holds nothing usable.
 */
bool hdr_msgid_one(const char *value, char out[HDR_MSGID_MAX + 1]);

/* Generate "<HEX.hm@DOMAIN>" from a 32-byte content digest. */
void hdr_msgid_generate(const uint8_t digest[32], const char *domain,
    char out[HDR_MSGID_MAX + 1]);

/*
 * The first mailbox address in an address header value (From:), or in an
 * envelope address ("<a@b>"), lower-cased, into OUT (HDR_ADDR_MAX + 1).
 * False when there is none.
 */
bool hdr_addr_spec(const char *value, char out[HDR_ADDR_MAX + 1]);

/* True when a Content-Type value is multipart/report;
 * report-type=delivery-status. */
bool hdr_is_dsn(const char *content_type);

/* True when a Content-Type value is multipart/report with report-type
 * REPORT_TYPE (any case, quoted or not). */
bool hdr_is_report(const char *content_type, const char *report_type);

/* An unstructured header value (Subject) as one line of UTF-8: unfolded,
 * blanks collapsed, RFC 2047 words decoded (charset_decode_words()), line
 * breaks and tabs inside them made spaces;
 * malloc'd, caller frees; "" for NULL. */
char *hdr_decode_text(const char *value);

/* The display name of the first mailbox of an address header value
 * ("=?utf-8?q?J=C3=B6rg?= <j@x>", "\"Doe, Jane\" <j@x>") as one line of
 * UTF-8: quotes and comments removed, RFC 2047 words decoded like
 * hdr_decode_text(); "" when it has none. Malloc'd; NULL on ENOMEM. */
char *hdr_display_name(const char *value);

/* Encode UTF-8 TEXT as an unstructured header value (RFC 2047 where
 * needed); malloc'd, caller frees. */
char *hdr_encode_text(const char *text);

/*
 * The header block of the message in file PATH, read up to MAX bytes (a
 * longer block is cut there) and parsed by GMime: for each of the N NAMES
 * (any case), the first such header's value, unfolded and trimmed, at most
 * HDR_VALUE_MAX bytes, malloc'd into VALUES[i] (NULL when absent). Returns
 * 0, or -1 with errno when the file cannot be read.
 */
int hdr_read_file(const char *path, size_t max, const char *const *names,
    size_t n, char **values);

/* How many Message-IDs of In-Reply-To and of References a reader keeps
 * (hdr_msgids MAX): for References the thread root and the nearest parents. */
#define HDR_IRT_MAX     4
#define HDR_REFS_MAX    32

/* The same for the header block BLOCK of LEN bytes already in memory. */
void hdr_block_values(const char *block, size_t len, const char *const *names,
    size_t n, char **values);

#endif
