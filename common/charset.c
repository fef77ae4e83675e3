/*
 * charset.c - charset conversion and RFC 2047 encoded words (see
 * charset.h).
 */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "hdr.h"
#include "util.h"

#define CHARSET_NAME_MAX 64     /* longest charset name in an encoded word */

/* Length of the UTF-8 sequence starting with byte C (0: invalid lead). */
size_t
charset_utf8_seqlen(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

/* Cut S (length *LEN) to at most MAX bytes without splitting a character. */
void
charset_utf8_cut(char *s, size_t *len, size_t max)
{
	size_t n = *len;

	if (n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	s[n] = '\0';
	*len = n;
}

/*
 * Valid UTF-8 copy of [IN, IN+LEN) into malloc'd memory: NUL bytes are
 * dropped and invalid sequences become U+FFFD (GLib's rules).
 */
char *
charset_utf8_clean(const char *in, size_t len, size_t *outlen)
{
	char *tmp, *valid, *out;
	size_t i, n = 0;

	tmp = malloc(len + 1);
	if (tmp == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		if (in[i] != '\0')
			tmp[n++] = in[i];
	tmp[n] = '\0';
	if (g_utf8_validate(tmp, (gssize)n, NULL)) {
		*outlen = n;
		return tmp;
	}
	valid = g_utf8_make_valid(tmp, (gssize)n);
	free(tmp);
	n = strlen(valid);
	out = malloc(n + 1);
	if (out != NULL) {
		memcpy(out, valid, n + 1);
		*outlen = n;
	}
	g_free(valid);
	return out;
}

/* Is CHARSET (any spelling) UTF-8? */
static bool
charset_is_utf8(const char *charset)
{
	const char *name = g_mime_charset_iconv_name(charset);

	return strcasecmp(name, "UTF-8") == 0 || strcasecmp(name, "utf8") == 0;
}

/* Is CHARSET absent or ASCII, the labels 8-bit text often hides behind? */
static bool
charset_is_vague(const char *charset)
{
	const char *name;

	if (charset == NULL || *charset == '\0')
		return true;
	name = g_mime_charset_iconv_name(charset);
	return strcasecmp(charset, "us-ascii") == 0 ||
	    strcasecmp(name, "US-ASCII") == 0 || strcasecmp(name, "ASCII") == 0 ||
	    strcasecmp(name, "ANSI_X3.4-1968") == 0;
}

/*
 * Convert LEN bytes in CHARSET to UTF-8 with iconv; undecodable input
 * becomes U+FFFD (with STRICT: the conversion fails instead). At most MAX
 * output bytes. NULL when iconv does not know the charset, when STRICT
 * met undecodable input (or on ENOMEM, with *OOM set).
 */
static char *
charset_iconv(const unsigned char *in, size_t len, const char *charset,
    bool strict, size_t max, size_t *outlen, bool *oom)
{
	static const char replacement[] = "\xef\xbf\xbd";
	iconv_t cd;
	char *out, *grown, *inp = (char *)(uintptr_t)in, *outp;
	size_t inleft = len, outleft, cap, used;
	bool flushed = false;

	cd = iconv_open("UTF-8", g_mime_charset_iconv_name(charset));
	if (cd == (iconv_t)-1)
		return NULL;
	cap = len + 64;
	if (cap > max + 64)
		cap = max + 64;
	out = malloc(cap + 1);
	if (out == NULL) {
		iconv_close(cd);
		*oom = true;
		return NULL;
	}
	outp = out;
	outleft = cap;
	for (;;) {
		size_t rc;
		int error;

		used = (size_t)(outp - out);
		if (used >= max || (inleft == 0 && flushed))
			break;
		if (inleft == 0) {
			rc = iconv(cd, NULL, NULL, &outp, &outleft);
			error = errno;
			if (rc != (size_t)-1 || error != E2BIG)
				flushed = true;
		} else {
			rc = iconv(cd, &inp, &inleft, &outp, &outleft);
			error = errno;
		}
		if (rc != (size_t)-1)
			continue;
		if (error == E2BIG || outleft < sizeof(replacement)) {
			/* grow, up to max + 64: room for the last character */
			used = (size_t)(outp - out);
			cap = cap * 2 > max + 64 ? max + 64 : cap * 2;
			if (cap < used + sizeof(replacement))
				break;
			grown = realloc(out, cap + 1);
			if (grown == NULL) {
				free(out);
				iconv_close(cd);
				*oom = true;
				return NULL;
			}
			out = grown;
			outp = out + used;
			outleft = cap - used;
			if (error == E2BIG)
				continue;
		}
		if (inleft == 0)
			continue;       /* a failed flush: nothing to replace */
		if (strict) {
			free(out);
			iconv_close(cd);
			return NULL;
		}
		/* EILSEQ, or EINVAL (cut short): one replacement, skip a byte */
		memcpy(outp, replacement, sizeof(replacement) - 1);
		outp += sizeof(replacement) - 1;
		outleft -= sizeof(replacement) - 1;
		if (error == EINVAL) {
			inleft = 0;
			continue;
		}
		inp++;
		inleft--;
	}
	iconv_close(cd);
	used = (size_t)(outp - out);
	out[used] = '\0';
	charset_utf8_cut(out, &used, max);
	*outlen = used;
	return out;
}

/*
 * ISO-2022-JP (LEN bytes at IN) re-framed as EUC-JP, for iconv's EUC-JP-MS
 * (CP51932: JIS X 0208 with the NEC row 13 and the IBM extensions that
 * CP50221 carries, which glibc's ISO-2022-JP rejects). JIS X 0212 and
 * half-width katakana (ESC ( I, SO/SI) are kept; an unknown escape is
 * passed on as it is. Returns malloc'd bytes, *OUTLEN their count.
 */
static unsigned char *
charset_jis_to_euc(const unsigned char *in, size_t len, size_t *outlen)
{
	enum { ASCII, KANA, X0208, X0212 } mode = ASCII, before_so = ASCII;
	unsigned char *out;
	size_t i = 0, n = 0;

	out = malloc(len * 2 + 1);
	if (out == NULL)
		return NULL;
	while (i < len) {
		unsigned char c = in[i];

		if (c == 0x1b && i + 2 < len) {
			const unsigned char *e = in + i + 1;

			if (e[0] == '(' && (e[1] == 'B' || e[1] == 'J')) {
				mode = ASCII;
				i += 3;
				continue;
			}
			if (e[0] == '(' && e[1] == 'I') {
				mode = KANA;
				i += 3;
				continue;
			}
			if (e[0] == '$' && (e[1] == 'B' || e[1] == '@')) {
				mode = X0208;
				i += 3;
				continue;
			}
			if (e[0] == '$' && e[1] == '(' && i + 3 < len &&
			    (e[2] == 'D' || e[2] == 'B')) {
				mode = e[2] == 'D' ? X0212 : X0208;
				i += 4;
				continue;
			}
		}
		if (c == 0x0e) {                /* SO: katakana */
			if (mode != KANA)
				before_so = mode;
			mode = KANA;
			i++;
			continue;
		}
		if (c == 0x0f) {                /* SI: back */
			if (mode == KANA)
				mode = before_so;
			i++;
			continue;
		}
		if (c < 0x21 || c > 0x7e || mode == ASCII) {
			out[n++] = c;
			i++;
			continue;
		}
		if (mode == KANA) {
			out[n++] = 0x8e;
			out[n++] = (unsigned char)(c | 0x80);
			i++;
			continue;
		}
		if (i + 1 >= len || in[i + 1] < 0x21 || in[i + 1] > 0x7e) {
			out[n++] = c;           /* half a character */
			i++;
			continue;
		}
		if (mode == X0212)
			out[n++] = 0x8f;
		out[n++] = (unsigned char)(c | 0x80);
		out[n++] = (unsigned char)(in[i + 1] | 0x80);
		i += 2;
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* Is CHARSET's iconv name ISO-2022-JP (not -2 or -3, which glibc reads
 * as they are)? */
static bool
charset_is_iso2022jp(const char *charset)
{
	const char *name = g_mime_charset_iconv_name(charset);

	return strcasecmp(name, "ISO-2022-JP") == 0 ||
	    strcasecmp(charset, "ISO-2022-JP") == 0 ||
	    strcasecmp(charset, "CP50220") == 0 ||
	    strcasecmp(charset, "CP50221") == 0 ||
	    strcasecmp(charset, "CP50222") == 0 ||
	    strcasecmp(charset, "ISO-2022-JP-MS") == 0;
}

/* ISO-2022-JP as glibc reads it, else as CP50221 (see charset_jis_to_euc). */
static char *
charset_iso2022jp(const unsigned char *in, size_t len, size_t max,
    size_t *outlen, bool *oom)
{
	unsigned char *euc;
	size_t euclen;
	char *conv;

	conv = charset_iconv(in, len, "ISO-2022-JP", true, max, outlen, oom);
	if (conv != NULL || *oom)
		return conv;
	euc = charset_jis_to_euc(in, len, &euclen);
	if (euc == NULL) {
		*oom = true;
		return NULL;
	}
	conv = charset_iconv(euc, euclen, "EUC-JP-MS", false, max, outlen, oom);
	free(euc);
	if (conv == NULL && !*oom)
		conv = charset_iconv(in, len, "ISO-2022-JP", false, max, outlen,
		    oom);
	return conv;
}

/* Text in CHARSET as clean UTF-8 (see charset.h). */
char *
charset_to_utf8(const unsigned char *in, size_t len, const char *charset,
    size_t max, bool *oom)
{
	char *conv = NULL, *out;
	size_t convlen = 0, outlen = 0;
	bool vague;

	hdr_init();
	vague = charset_is_vague(charset);
	if (!vague && !charset_is_utf8(charset)) {
		const char *name = g_mime_charset_iconv_name(charset);

		if (strcasecmp(name, "iso-8859-1") == 0 ||
		    strcasecmp(name, "latin1") == 0)
			charset = "windows-1252";
		if (charset_is_iso2022jp(charset))
			conv = charset_iso2022jp(in, len, max, &convlen, oom);
		else
			conv = charset_iconv(in, len, charset, false, max,
			    &convlen, oom);
		if (conv == NULL && !*oom)
			vague = true;   /* a charset iconv does not know */
	}
	if (vague && !g_utf8_validate((const char *)in, (gssize)len, NULL))
		conv = charset_iconv(in, len, "windows-1252", false, max,
		    &convlen, oom);
	if (*oom)
		return NULL;
	if (conv != NULL) {
		out = charset_utf8_clean(conv, convlen, &outlen);
		free(conv);
	} else
		out = charset_utf8_clean((const char *)in, len, &outlen);
	if (out == NULL) {
		*oom = true;
		return NULL;
	}
	charset_utf8_cut(out, &outlen, max);
	return out;
}

/* --- RFC 2047 encoded words ------------------------------------------- */

/* One parsed encoded word. */
struct charset_word {
	char charset[CHARSET_NAME_MAX + 1];
	char enc;                       /* 'B' or 'Q' */
	const char *text;               /* the encoded text */
	size_t text_len;
	size_t len;                     /* of the whole word, "=?" to "?=" */
};

/* Parse the encoded word at S (N bytes, S[0..1] == "=?"); false when it is
 * not one. The charset's RFC 2231 language ("*en") is dropped. */
static bool
charset_word_parse(const char *s, size_t n, struct charset_word *w)
{
	size_t i = 2, c = 0, start;

	while (i < n && s[i] != '?') {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f || c >= CHARSET_NAME_MAX)
			return false;
		w->charset[c++] = (char)ch;
		i++;
	}
	w->charset[c] = '\0';
	if (c == 0 || i + 3 > n || s[i + 2] != '?')
		return false;
	w->enc = (char)g_ascii_toupper(s[i + 1]);
	if (w->enc != 'B' && w->enc != 'Q')
		return false;
	if (strchr(w->charset, '*') != NULL)
		*strchr(w->charset, '*') = '\0';
	if (w->charset[0] == '\0')
		return false;
	start = i + 3;
	for (i = start; i + 1 < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '?' && s[i + 1] == '=') {
			w->text = s + start;
			w->text_len = i - start;
			w->len = i + 2;
			return true;
		}
		if (ch <= 0x20 || ch >= 0x7f)
			return false;
	}
	return false;
}

/* Append the bytes of word W to B: base64 without needing its padding
 * (a lone sixth bit group is dropped), or Q ('_' is a space). */
static void
charset_word_bytes(const struct charset_word *w, struct util_buf *b)
{
	unsigned char out[3];
	uint32_t acc = 0;
	size_t i, bits = 0;
	int v;

	for (i = 0; i < w->text_len; i++) {
		unsigned char c = (unsigned char)w->text[i];

		if (w->enc == 'B') {
			if (c == '=')
				break;
			if ((v = util_b64_digit(c)) < 0)
				continue;
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				out[0] = (unsigned char)(acc >> bits);
				util_buf_add(b, out, 1);
				acc &= (1u << bits) - 1;
			}
			continue;
		}
		if (c == '_') {
			util_buf_add(b, " ", 1);
		} else if (c == '=' && i + 2 < w->text_len &&
		    g_ascii_isxdigit(w->text[i + 1]) &&
		    g_ascii_isxdigit(w->text[i + 2])) {
			out[0] = (unsigned char)(g_ascii_xdigit_value(w->text[i + 1])
			    << 4 | g_ascii_xdigit_value(w->text[i + 2]));
			util_buf_add(b, out, 1);
			i += 2;
		} else
			util_buf_add(b, &c, 1);
	}
}

/* Append RAW (bytes in CHARSET, NULL: undeclared) to OUT as UTF-8 and
 * empty RAW. */
static void
charset_flush(struct util_buf *out, struct util_buf *raw,
    const char *charset)
{
	char *text;
	bool oom = false;

	if (raw->oom)
		out->oom = true;
	if (raw->len == 0 || out->oom)
		return;
	text = charset_to_utf8((const unsigned char *)raw->s, raw->len, charset,
	    raw->len * 4 + 16, &oom);
	if (text == NULL) {
		out->oom = true;
		return;
	}
	util_buf_add(out, text, strlen(text));
	free(text);
	raw->len = 0;
}

/* Decode an unstructured header value (see charset.h). */
char *
charset_decode_words(const char *in, size_t len)
{
	struct util_buf out = { 0 };
	struct util_buf raw = { 0 };  /* undecoded run */
	struct charset_word w;
	char word_charset[CHARSET_NAME_MAX + 1] = "";
	bool after_word = false, blank = false, in_word_run = false;
	size_t i = 0;

	if (len > CHARSET_WORDS_MAX)
		len = CHARSET_WORDS_MAX;
	while (i < len && !out.oom) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			blank = true;
			i++;
			continue;
		}
		if (c == '=' && i + 1 < len && in[i + 1] == '?' &&
		    charset_word_parse(in + i, len - i, &w)) {
			if (!in_word_run ||
			    strcasecmp(w.charset, word_charset) != 0) {
				/* a new run: what came before goes out */
				charset_flush(&out, &raw, in_word_run ?
				    word_charset : NULL);
				if (blank && !after_word && out.len > 0)
					util_buf_add(&out, " ", 1);
				snprintf(word_charset, sizeof(word_charset), "%s",
				    w.charset);
			}
			/* blanks between adjacent encoded words are dropped */
			in_word_run = true;
			charset_word_bytes(&w, &raw);
			after_word = true;
			blank = false;
			i += w.len;
			continue;
		}
		/* ordinary text */
		if (in_word_run) {
			charset_flush(&out, &raw, word_charset);
			in_word_run = false;
		}
		if (blank && (out.len > 0 || raw.len > 0))
			util_buf_add(&raw, " ", 1);
		blank = false;
		after_word = false;
		util_buf_add(&raw, &c, 1);
		i++;
	}
	charset_flush(&out, &raw, in_word_run ? word_charset : NULL);
	free(raw.s);
	if (out.s == NULL && !out.oom)
		out.s = calloc(1, 1);
	if (out.s == NULL || out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}
