/*
 * charset.h - text of hostile mail as UTF-8: charset conversion (with the
 * recoveries mail clients make) and RFC 2047 encoded words, decoded here
 * rather than by GMime so the result does not depend on GMime's version
 * (GMime 3.2.13 drops everything after a padded base64 word when the next
 * word has the same charset).
 */
#ifndef HALO_CHARSET_H
#define HALO_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

#define CHARSET_WORDS_MAX 65536  /* input bytes looked at by the decoder */

/* Length of the UTF-8 sequence starting with byte C (0: invalid lead). */
size_t charset_utf8_seqlen(unsigned char c);

/* Cut S (length *LEN) to at most MAX bytes without splitting a character. */
void charset_utf8_cut(char *s, size_t *len, size_t max);

/* Valid UTF-8 copy of LEN bytes at IN, malloc'd: NUL bytes dropped,
 * invalid sequences U+FFFD (GLib's rules); *OUTLEN its length. NULL on
 * ENOMEM. */
char *charset_utf8_clean(const char *in, size_t len, size_t *outlen);

/*
 * LEN bytes at IN in CHARSET (NULL: undeclared) as valid UTF-8 of at most
 * MAX bytes (never a character cut in two), malloc'd and NUL-terminated.
 * NUL bytes are dropped; undecodable bytes become U+FFFD. As mail clients
 * do: undeclared or "ASCII" text that is not UTF-8 is read as
 * Windows-1252, so is ISO-8859-1, and so is a charset iconv does not know
 * (when the text is not UTF-8); ISO-2022-JP that glibc rejects (the NEC
 * and IBM extensions of CP50221, such as "№") is read as CP50221.
 * NULL only on ENOMEM (*OOM is set then).
 */
char *charset_to_utf8(const unsigned char *in, size_t len, const char *charset,
    size_t max, bool *oom);

/*
 * Decode an unstructured header value (Subject, a display name, a file
 * name) of LEN bytes: unfolded (CR and LF dropped), each run of blanks
 * outside encoded words one space, trimmed; RFC 2047 encoded words decoded
 * each on its own, adjacent words of one charset joined as bytes before
 * conversion (a character may be split across words), and the blanks
 * between adjacent encoded words dropped (RFC 2047 6.2). What the words
 * decode to is kept as it is (control characters too: file names are
 * sanitised by their user, hdr_decode_text() makes one line). A malformed
 * word is kept as it is. At most CHARSET_WORDS_MAX input bytes are read.
 * Returns malloc'd UTF-8; NULL on ENOMEM.
 */
char *charset_decode_words(const char *in, size_t len);

#endif
