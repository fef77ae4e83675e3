/*
 * mime.h - what Halo needs from a raw RFC 5322 message: the body (HTML and
 * plain text, UTF-8) and the attachments, within size limits.
 *
 * Parsing is GMime's (from a file stream: part contents stay on disk until
 * decoded); application/ms-tnef (winmail.dat) is opened with libytnef.
 * Mail is hostile input: every size is bounded by struct mime_limits, and
 * anything beyond a limit is recorded (name, type, decoded size) without
 * its bytes. hdr_init() is called here, so no set-up is needed.
 */
#ifndef HALO_MIME_H
#define HALO_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_DEFAULT_MAX_ATTACHMENT (10u << 20)    /* 10 MiB per file */
#define MIME_DEFAULT_MAX_TOTAL      (25u << 20)    /* 25 MiB in all */
#define MIME_DEFAULT_MAX_PARTS      200
#define MIME_DEFAULT_MAX_DEPTH      20
#define MIME_DEFAULT_MAX_TEXT       (2u << 20)     /* 2 MiB per body */
#define MIME_FILENAME_MAX           200            /* bytes, UTF-8 */
#define MIME_LISTED_MAX             1000           /* parts past max_parts
                                                    * listed by name */

/* Limits for mime_extract(); a field left 0 takes its default. */
struct mime_limits {
	size_t max_attachment;  /* decoded bytes kept per attachment */
	size_t max_total;       /* decoded bytes kept over all attachments */
	size_t max_parts;       /* MIME parts looked at */
	size_t max_depth;       /* multipart / message nesting */
	size_t max_text;        /* bytes of each body (html, text) kept */
	uint64_t file_len;      /* mime_extract(): the message is the file's
	                         * first FILE_LEN bytes (a spool file's trailer
	                         * follows); 0 = the whole file */
	const char *spill_dir;  /* NULL: attachments are kept in memory. Else
	                         * each one is written, as it is decoded, to an
	                         * unlinked file in this directory (O_TMPFILE,
	                         * or mkstemp and unlink; 0600) and its data is
	                         * a read-only mapping of that file (mapped) */
};

/* Why an attachment's bytes are not at data (the note should say). */
enum mime_skip {
	MIME_SKIP_NONE = 0,     /* data holds the file */
	MIME_SKIP_SIZE,         /* over max_attachment / max_total (over_cap) */
	MIME_SKIP_LIMIT,        /* past max_parts: named, never read */
	MIME_SKIP_UNDECODABLE   /* its base64 or uuencode is damaged beyond
	                         * faithful repair, or it decodes shorter than
	                         * its Content-Disposition size= says */
};

struct mime_attachment {
	char *filename;         /* sanitised UTF-8: no path separators or
	                         * control characters, at most
	                         * MIME_FILENAME_MAX bytes; "attachment-N" plus
	                         * an extension from the content type
	                         * ("attachment-3.png") when the mail gives
	                         * none; RFC 2047 and RFC 2231 decoded */
	char *content_type;     /* "type/subtype", lower case */
	char *content_id;       /* without <>, NULL when none */
	bool is_inline;         /* referenced as cid: from the HTML body, or
	                         * an image with Content-Disposition inline */
	unsigned char *data;    /* decoded bytes; NULL when skip is set.
	                         * Read-only when mapped; NUL-terminated
	                         * only when not */
	size_t len;             /* bytes at data (0 when data is NULL) */
	bool mapped;            /* data is a read-only MAP_SHARED mapping of
	                         * an unlinked file (spill_dir): pages may be
	                         * dropped (MADV_DONTNEED) once read, the
	                         * file still holds them */
	bool over_cap;          /* too big for max_attachment / max_total */
	size_t original_len;    /* decoded size, also when over the cap or
	                         * undecodable; 0 for MIME_SKIP_LIMIT (not
	                         * read) */
	bool from_tnef;         /* unpacked from a winmail.dat */
	enum mime_skip skip;    /* why data is NULL; the note lists every
	                         * attachment whose skip is not NONE */
};

struct mime_message {
	char *html;             /* text/html body, UTF-8, NULL when none */
	char *text;             /* text/plain body, UTF-8, NULL when none */
	struct mime_attachment *attachments;
	size_t n_attachments;
	bool truncated;         /* some limit was hit: a body cut short, an
	                         * attachment over a cap, parts or nesting
	                         * left out */
	size_t n_unlisted;      /* parts past max_parts beyond the
	                         * MIME_LISTED_MAX listed as MIME_SKIP_LIMIT
	                         * ("and N more") */
	bool no_separator;      /* the header block ran into the body with no
	                         * blank line; one was assumed at the first
	                         * line that is not a header */
};

/* Why an attachment was not uploaded, for the note ("too large", ...);
 * NULL for MIME_SKIP_NONE. */
const char *mime_skip_reason(enum mime_skip skip);

/* Fill LIMITS with the defaults. */
void mime_limits_default(struct mime_limits *limits);

/*
 * Parse the message file at PATH (CRLF or LF line ends) under LIMITS
 * (NULL: defaults). Body choice follows mail clients: multipart/alternative
 * prefers the HTML and keeps the text too, also when the HTML is inside a
 * nested multipart/mixed or related (Apple Mail: the HTML parts of such a
 * mixed are joined into one body, its other parts are attachments);
 * multipart/related gives the HTML
 * root and its cid: parts as inline attachments; multipart/mixed takes the
 * first text part as the body and the rest as attachments; message/rfc822
 * parts become .eml attachments; a winmail.dat is unpacked into its
 * attachments and body (one that cannot be unpacked is kept as it is, and
 * one only partly unpacked is kept as well). Bodies are converted to
 * UTF-8; undecodable bytes become U+FFFD. Base64 and uuencode are decoded
 * here, tolerantly: missing '=' padding, uuencoded lines that lost their
 * trailing spaces; what cannot be repaired faithfully (a lone base64
 * digit at the end, uuencode without "begin") is listed as
 * MIME_SKIP_UNDECODABLE instead of kept broken. Parts past max_parts are
 * listed (MIME_SKIP_LIMIT) up to MIME_LISTED_MAX, then counted. A message
 * whose headers run into the body without a blank line is read as if the
 * blank line were there.
 *
 * On success returns 0 and *OUT is a new message the caller frees with
 * mime_message_free(). On failure returns -1 (file unreadable, not a
 * message) or -2 (a local failure that may pass: out of memory, or an
 * attachment could not be written to spill_dir, ENOSPC...); *OUT is then
 * NULL and ERR (ERRSZ bytes) says why. No attachment is ever cut short.
 */
int mime_extract(const char *path, const struct mime_limits *limits,
    struct mime_message **out, char *err, size_t errsz);

/* As mime_extract(), from LEN bytes at DATA (tests and fuzzers). */
int mime_extract_mem(const void *data, size_t len,
    const struct mime_limits *limits, struct mime_message **out,
    char *err, size_t errsz);

/* Free M and everything it owns; NULL is fine. Returns NULL. */
struct mime_message *mime_message_free(struct mime_message *m);

#endif
