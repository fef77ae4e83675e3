/*
 * mime.c - body and attachments of a raw message (see mime.h).
 *
 * GMime parses the structure; part contents are read in fixed-size chunks
 * (quoted-printable through GMime's filter, base64 and uuencode through
 * the tolerant decoder below), so no part is held beyond its cap. A
 * winmail.dat is first re-framed (only whole attributes with good
 * checksums are passed on) and then read by libytnef, which is not
 * robust against hostile lengths on its own.
 *
 * With spill_dir set, an attachment's decoded bytes go to an unlinked file
 * as they are decoded and the attachment's data is a mapping of it: the
 * worker then holds none of a large mail's files in memory, and the
 * sender reads the mapping a chunk at a time (halo.c).
 */
#include "mime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <ytnef.h>

#include "charset.h"
#include "hdr.h"
#include "util.h"

#define MIME_CHUNK          8192    /* bytes read from a filter stream */
#define MIME_CID_MAX        998     /* longest Content-ID kept */
#define MIME_CTYPE_MAX      127     /* longest "type/subtype" kept */
#define MIME_TNEF_DEPTH     3       /* winmail.dat inside winmail.dat */
#define MIME_TNEF_RETRIES   16      /* attributes dropped after errors */
#define MIME_TNEF_SIGNATURE 0x223E9F78u
#define MIME_TNEF_TAIL_OK   16      /* trailing junk ignored silently */
#define MIME_UU_LINE_MAX    128     /* uuencoded line kept (1 + 84 used) */
#define MIME_HEADER_SCAN    (1 << 20)  /* header block checked for its end */

/* One parse: the limits, the message being built and the running totals. */
struct mime_ctx {
	struct mime_limits lim;
	struct mime_message *msg;
	size_t att_slots;       /* allocated entries of msg->attachments */
	size_t parts;           /* MIME parts looked at */
	size_t listed;          /* parts past the limit listed */
	size_t total;           /* attachment bytes kept */
	bool oom;               /* out of memory, or spill_errno: stop */
	int spill_errno;        /* writing or mapping a spill file failed */
};

/* How a part may be used: as the body, or only as an attachment. */
enum mime_role {
	MIME_ROLE_BODY,
	MIME_ROLE_ATTACH
};

/* What unpacking a winmail.dat gave. */
enum mime_tnef_result {
	MIME_TNEF_NONE,         /* nothing usable: keep the winmail.dat */
	MIME_TNEF_PARTIAL,      /* some content, some lost: keep it too */
	MIME_TNEF_FULL          /* everything: the winmail.dat goes */
};

static void mime_walk(struct mime_ctx *ctx, GMimeObject *obj, size_t depth,
    enum mime_role role);

/* Default limits. */
void
mime_limits_default(struct mime_limits *limits)
{
	limits->max_attachment = MIME_DEFAULT_MAX_ATTACHMENT;
	limits->max_total = MIME_DEFAULT_MAX_TOTAL;
	limits->max_parts = MIME_DEFAULT_MAX_PARTS;
	limits->max_depth = MIME_DEFAULT_MAX_DEPTH;
	limits->max_text = MIME_DEFAULT_MAX_TEXT;
	limits->spill_dir = NULL;
}

/* Why an attachment was not uploaded. */
const char *
mime_skip_reason(enum mime_skip skip)
{
	switch (skip) {
	case MIME_SKIP_NONE: return NULL;
	case MIME_SKIP_SIZE: return "over the size limit";
	case MIME_SKIP_LIMIT: return "over the limit on parts per message";
	case MIME_SKIP_UNDECODABLE: return "damaged in the mail: could not be"
	    " decoded faithfully";
	}
	return "not uploaded";
}

/* Free one attachment's members. */
static void
mime_attachment_clear(struct mime_attachment *att)
{
	free(att->filename);
	free(att->content_type);
	free(att->content_id);
	if (att->mapped)
		(void)munmap(att->data, att->len);
	else
		free(att->data);
	memset(att, 0, sizeof(*att));
}

/* Free a message and everything it owns. */
struct mime_message *
mime_message_free(struct mime_message *m)
{
	size_t i;

	if (m == NULL)
		return NULL;
	for (i = 0; i < m->n_attachments; i++)
		mime_attachment_clear(&m->attachments[i]);
	free(m->attachments);
	free(m->html);
	free(m->text);
	free(m);
	return NULL;
}

/* Little-endian 32-bit value at P. */
static uint32_t
mime_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Remove the CR of each CRLF in S, in place. */
static void
mime_crlf_to_lf(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\r' && s[1] == '\n')
			continue;
		*w++ = *s;
	}
	*w = '\0';
}

/* --- transfer decoding ------------------------------------------------ */

/*
 * A streaming base64 / uuencode decoder, more tolerant than GMime's and
 * able to say when it could not decode faithfully. Base64: characters
 * outside the alphabet are skipped, '=' padding may be missing (the bits
 * already read give the last one or two bytes), and what follows complete
 * padding is ignored (as Python's email and Dovecot do); a lone digit at
 * the end (6 bits, no whole byte) is damage. Uuencode: lines before "begin" and after "end"
 * are skipped; each line's length character says how many bytes it holds,
 * and a line shorter than that lost its trailing spaces (which encode
 * zero bits), so it is padded back; no "begin" line is damage.
 */
struct mime_dec {
	GMimeContentEncoding enc;
	uint32_t acc;                   /* base64: bits not yet output */
	unsigned bits;
	unsigned quad;                  /* base64 digits of the current quad */
	unsigned pads;                  /* '=' seen in the current quad */
	bool ended;                     /* base64: complete padding seen;
	                                 * what follows is ignored */
	char line[MIME_UU_LINE_MAX];    /* uuencode: the current line */
	size_t line_len;
	enum { MIME_UU_BEFORE, MIME_UU_BODY, MIME_UU_AFTER } uu;
	bool damaged;
};

/* Decode one uuencoded line (D->line) into OUT; returns the bytes. */
static size_t
mime_uu_line(struct mime_dec *d, unsigned char *out)
{
	size_t len = d->line_len, want, n, i, o = 0;
	unsigned char q[4];

	while (len > 0 && (d->line[len - 1] == '\r' || d->line[len - 1] == '\n'))
		len--;
	if (d->uu == MIME_UU_BEFORE) {
		if (len >= 6 && strncmp(d->line, "begin ", 6) == 0)
			d->uu = MIME_UU_BODY;
		return 0;
	}
	if (d->uu == MIME_UU_AFTER || len == 0)
		return 0;
	if (len == 3 && strncmp(d->line, "end", 3) == 0) {
		d->uu = MIME_UU_AFTER;
		return 0;
	}
	n = ((unsigned char)d->line[0] - 0x20) & 0x3f;
	want = (n + 2) / 3 * 4;
	for (i = 0; i < want && o < n; i += 4) {
		size_t k;

		for (k = 0; k < 4; k++) {
			size_t at = 1 + i + k;
			/* past the end: a trailing space the line lost */
			q[k] = at < len ?
			    (unsigned char)(((unsigned char)d->line[at] - 0x20) & 0x3f) :
			    0;
		}
		out[o++] = (unsigned char)(q[0] << 2 | q[1] >> 4);
		if (o < n)
			out[o++] = (unsigned char)(q[1] << 4 | q[2] >> 2);
		if (o < n)
			out[o++] = (unsigned char)(q[2] << 6 | q[3]);
	}
	return o;
}

/* Decode LEN bytes at IN into OUT (room for MIME_CHUNK bytes: base64
 * gives less than LEN, uuencode at most 63 bytes per line and LEN is at
 * most MIME_CHUNK / 32 then); returns the bytes written. */
static size_t
mime_dec_step(struct mime_dec *d, const unsigned char *in, size_t len,
    unsigned char *out)
{
	size_t i, o = 0;
	int v;

	for (i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (d->enc == GMIME_CONTENT_ENCODING_UUENCODE) {
			if (d->line_len < sizeof(d->line))
				d->line[d->line_len++] = (char)c;
			if (c == '\n') {
				/* a line gives at most 63 bytes from 1 + 84
				 * characters: never more than went in */
				o += mime_uu_line(d, out + o);
				d->line_len = 0;
			}
			continue;
		}
		if (d->ended)
			continue;
		if (c == '=') {
			if (d->quad >= 2 && d->quad + ++d->pads >= 4)
				d->ended = true;    /* padded: the data ends */
			continue;
		}
		if ((v = util_b64_digit(c)) < 0)
			continue;
		if (d->pads > 0) {
			/* digits after a stray '=': the quad goes on */
			d->pads = 0;
		}
		d->acc = (d->acc << 6) | (uint32_t)v;
		d->bits += 6;
		d->quad = (d->quad + 1) % 4;
		if (d->bits >= 8) {
			d->bits -= 8;
			out[o++] = (unsigned char)(d->acc >> d->bits);
			d->acc &= (1u << d->bits) - 1;
		}
		if (d->quad == 0)
			d->acc = d->bits = 0;
	}
	return o;
}

/* End of input: flush a last uuencoded line without newline, and judge. */
static size_t
mime_dec_finish(struct mime_dec *d, unsigned char *out)
{
	size_t o = 0;

	if (d->enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		if (d->line_len > 0)
			o = mime_uu_line(d, out);
		d->line_len = 0;
		if (d->uu == MIME_UU_BEFORE)
			d->damaged = true;
		return o;
	}
	if (d->quad == 1)
		d->damaged = true;      /* 6 bits: a byte is lost */
	return o;
}

/* Where decoded bytes go: all or nothing, or a prefix (see
 * mime_part_read). */
struct mime_sink {
	struct util_buf u;      /* what is kept (u.max = KEEP); u.oom: ENOMEM */
	int fd;                 /* >= 0: kept bytes go to this file instead */
	size_t kept;            /* bytes written to fd */
	int werr;               /* errno of a failed write to fd */
	size_t keep, total;
	bool prefix, keeping;
};

/* Bytes kept so far. */
static size_t
mime_sink_kept(const struct mime_sink *k)
{
	return k->fd >= 0 ? k->kept : k->u.len;
}

/* Keep N bytes at P (in memory or in the file); false on failure. */
static bool
mime_sink_store(struct mime_sink *k, const unsigned char *p, size_t n)
{
	if (k->fd < 0)
		return util_buf_add(&k->u, p, n);
	if (util_write_full(k->fd, p, n) != 0) {
		k->werr = errno != 0 ? errno : EIO;
		return false;
	}
	k->kept += n;
	return true;
}

/* Take LEN decoded bytes at P; false when reading may stop. */
static bool
mime_sink_take(struct mime_sink *k, const unsigned char *p, size_t got)
{
	size_t take = 0, kept = mime_sink_kept(k);

	if (k->keeping) {
		take = got <= k->keep - kept ? got :
		    k->prefix ? k->keep - kept : 0;
		if (!k->prefix && got > k->keep - kept) {
			util_buf_clear(&k->u);
			k->keeping = false;
		}
	}
	if (take > 0 && !mime_sink_store(k, p, take))
		return false;
	k->total += got;
	return !(k->prefix && k->total > k->keep);
}

/*
 * Decode PART's content. Without PREFIX: *DATA gets all of it when it is at
 * most KEEP bytes, else NULL, and *TOTAL is the whole decoded size. With
 * PREFIX: *DATA gets at most the first KEEP bytes, reading stops there,
 * and *TOTAL > KEEP says that more followed. *DATA is malloc'd and
 * NUL-terminated, also when empty. SPILL_FD >= 0: what *DATA would get is
 * written to that file instead (it then holds all of it exactly when
 * *TOTAL <= KEEP) and *DATA stays NULL. *DAMAGED (may be NULL) says that
 * the base64 or uuencode could not be decoded faithfully. False with errno
 * set on failure: ENOMEM, or the write's error.
 */
static bool
mime_part_read(GMimePart *part, size_t keep, bool prefix, int spill_fd,
    unsigned char **data, size_t *total, bool *damaged)
{
	GMimeDataWrapper *content;
	GMimeStream *source = NULL, *filtered;
	GMimeContentEncoding encoding = GMIME_CONTENT_ENCODING_DEFAULT;
	struct mime_sink sink;
	struct mime_dec *dec = NULL;
	unsigned char chunk[MIME_CHUNK], out[MIME_CHUNK];
	gssize n;
	bool more = true;

	*data = NULL;
	*total = 0;
	if (damaged != NULL)
		*damaged = false;
	memset(&sink, 0, sizeof(sink));
	sink.fd = spill_fd;
	sink.keep = keep;
	sink.u.max = keep;
	sink.prefix = prefix;
	sink.keeping = true;
	content = g_mime_part_get_content(part);
	if (content != NULL) {
		source = g_mime_data_wrapper_get_stream(content);
		encoding = g_mime_data_wrapper_get_encoding(content);
	}
	if (source != NULL) {
		filtered = g_mime_stream_filter_new(source);
		if (encoding == GMIME_CONTENT_ENCODING_BASE64 ||
		    encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
			dec = calloc(1, sizeof(*dec));
			if (dec == NULL) {
				g_object_unref(filtered);
				errno = ENOMEM;
				return false;
			}
			dec->enc = encoding;
		} else if (encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
			GMimeFilter *decoder = g_mime_filter_basic_new(encoding,
			    FALSE);

			g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered),
			    decoder);
			g_object_unref(decoder);
		}
		g_mime_stream_reset(filtered);
		while (more && (n = g_mime_stream_read(filtered, (char *)chunk,
		    sizeof(chunk))) > 0) {
			size_t at, piece;

			/* a short uuencoded line ("M") pads out to 63 bytes:
			 * 256 bytes in give at most 129 lines, 8127 bytes */
			piece = encoding == GMIME_CONTENT_ENCODING_UUENCODE ?
			    MIME_CHUNK / 32 : MIME_CHUNK;
			for (at = 0; dec != NULL && more && at < (size_t)n;
			    at += piece) {
				size_t len = (size_t)n - at < piece ?
				    (size_t)n - at : piece;

				more = mime_sink_take(&sink, out,
				    mime_dec_step(dec, chunk + at, len, out));
			}
			if (dec == NULL)
				more = mime_sink_take(&sink, chunk, (size_t)n);
		}
		if (dec != NULL && more && !sink.u.oom && sink.werr == 0) {
			(void)mime_sink_take(&sink, out, mime_dec_finish(dec, out));
			if (damaged != NULL)
				*damaged = dec->damaged;
		}
		free(dec);
		g_object_unref(filtered);
	}
	*total = sink.total;
	if (sink.werr != 0) {
		errno = sink.werr;
		return false;
	}
	if (sink.u.oom) {
		util_buf_clear(&sink.u);
		errno = ENOMEM;
		return false;
	}
	if (!sink.keeping || spill_fd >= 0)
		return true;
	if (!util_buf_reserve(&sink.u, 0)) {
		errno = ENOMEM;
		return false;
	}
	*data = (unsigned char *)sink.u.s;
	return true;
}

/* --- spill files ------------------------------------------------------ */

/* A new unlinked file (0600) in DIR for one attachment's bytes; -1 with
 * errno set. O_TMPFILE where the file system has it, else mkstemp and
 * unlink (a crash in between leaves a file spool_recover() removes when
 * DIR is the spool's tmp/). */
static int
mime_spill_open(const char *dir)
{
	char path[PATH_MAX];
	int fd, saved;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -1;
#endif
	if (snprintf(path, sizeof(path), "%s/mime-spill.XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (unlink(path) != 0) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Note that spilling failed with ERRNUM: the parse stops, an error. */
static void
mime_spill_failed(struct mime_ctx *ctx, int errnum)
{
	if (errnum == ENOMEM) {
		ctx->oom = true;
		return;
	}
	if (ctx->spill_errno == 0)
		ctx->spill_errno = errnum != 0 ? errnum : EIO;
	ctx->oom = true;
}

/* Append an empty attachment slot; NULL on ENOMEM. */
static struct mime_attachment *
mime_att_new(struct mime_ctx *ctx)
{
	struct mime_message *m = ctx->msg;
	struct mime_attachment *grown, *att;

	if (m->n_attachments == ctx->att_slots) {
		size_t slots = ctx->att_slots == 0 ? 8 : ctx->att_slots * 2;

		grown = realloc(m->attachments, slots * sizeof(*grown));
		if (grown == NULL) {
			ctx->oom = true;
			return NULL;
		}
		m->attachments = grown;
		ctx->att_slots = slots;
	}
	att = &m->attachments[m->n_attachments++];
	memset(att, 0, sizeof(*att));
	return att;
}

/* Bytes an attachment may still keep under both caps. */
static size_t
mime_att_room(const struct mime_ctx *ctx)
{
	size_t left = ctx->lim.max_total > ctx->total ?
	    ctx->lim.max_total - ctx->total : 0;

	return left < ctx->lim.max_attachment ? left : ctx->lim.max_attachment;
}

/* Give ATT the decoded bytes DATA (owned; NULL when over a cap) of size
 * ORIGINAL, and account for them. */
static void
mime_att_set_data(struct mime_ctx *ctx, struct mime_attachment *att,
    unsigned char *data, size_t original)
{
	att->original_len = original;
	if (data == NULL || original > mime_att_room(ctx)) {
		free(data);
		att->data = NULL;
		att->len = 0;
		att->over_cap = true;
		att->skip = MIME_SKIP_SIZE;
		ctx->msg->truncated = true;
		return;
	}
	att->data = data;
	att->len = original;
	ctx->total += original;
}

/* Give ATT the ORIGINAL decoded bytes held by the spill file FD (which
 * holds them all when they fit the caps) as a read-only mapping; FD stays
 * the caller's. */
static void
mime_att_set_file(struct mime_ctx *ctx, struct mime_attachment *att, int fd,
    size_t original)
{
	unsigned char *empty;
	void *map;

	if (original > mime_att_room(ctx)) {
		mime_att_set_data(ctx, att, NULL, original);
		return;
	}
	if (original == 0) {
		/* as in memory: an empty, NUL-terminated buffer */
		if ((empty = calloc(1, 1)) == NULL) {
			ctx->oom = true;
			return;
		}
		mime_att_set_data(ctx, att, empty, 0);
		return;
	}
	map = mmap(NULL, original, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		mime_spill_failed(ctx, errno);
		return;
	}
	att->mapped = true;
	mime_att_set_data(ctx, att, map, original);
}

/* Copy LEN bytes at DATA into ATT when the caps allow (into a spill file
 * when spill_dir is set). */
static void
mime_att_copy_data(struct mime_ctx *ctx, struct mime_attachment *att,
    const unsigned char *data, size_t len)
{
	unsigned char *copy = NULL;
	int fd;

	if (ctx->lim.spill_dir != NULL && len > 0 && len <= mime_att_room(ctx)) {
		if ((fd = mime_spill_open(ctx->lim.spill_dir)) < 0 ||
		    util_write_full(fd, data, len) != 0)
			mime_spill_failed(ctx, errno);
		else
			mime_att_set_file(ctx, att, fd, len);
		if (fd >= 0)
			(void)close(fd);
		return;
	}
	if (len <= mime_att_room(ctx)) {
		copy = malloc(len + 1);
		if (copy == NULL) {
			ctx->oom = true;
			return;
		}
		memcpy(copy, data, len);
		copy[len] = '\0';
	}
	mime_att_set_data(ctx, att, copy, len);
}

/* Is the code point at S (length N) one never kept in a file name:
 * C0/C1 controls, DEL, bidirectional overrides? */
static bool
mime_filename_bad_char(const unsigned char *s, size_t n)
{
	uint32_t cp;

	if (n == 1)
		return s[0] < 0x20 || s[0] == 0x7f || s[0] == '/' || s[0] == '\\';
	cp = g_utf8_get_char((const char *)s);
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Sanitised file name from NAME (may be NULL): the last path component
 * (with SUBJECT, NAME is a subject line: its slashes become '_'), valid
 * UTF-8, no control characters, at most MAX bytes (the extension is kept
 * when cutting). NULL when nothing is left (or ENOMEM, *OOM set).
 */
static char *
mime_filename_clean(const char *name, size_t max, bool subject, bool *oom)
{
	const char *base, *p;
	char *valid, *out, *dot;
	size_t n, len, vlen, i, ext;

	if (name == NULL)
		return NULL;
	base = name;
	for (p = name; *p != '\0' && !subject; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	valid = charset_utf8_clean(base, strlen(base), &vlen);
	if (valid == NULL) {
		*oom = true;
		return NULL;
	}
	for (i = 0; subject && i < vlen; i++)
		if (valid[i] == '/' || valid[i] == '\\')
			valid[i] = '_';
	out = malloc(vlen + 1);
	if (out == NULL) {
		free(valid);
		*oom = true;
		return NULL;
	}
	for (i = 0, len = 0; i < vlen; i += n) {
		n = charset_utf8_seqlen((unsigned char)valid[i]);
		if (n == 0 || i + n > vlen)
			break;
		if (mime_filename_bad_char((const unsigned char *)valid + i, n))
			continue;
		memcpy(out + len, valid + i, n);
		len += n;
	}
	free(valid);
	out[len] = '\0';
	/* trim blanks at both ends */
	while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\t'))
		out[--len] = '\0';
	for (i = 0; out[i] == ' ' || out[i] == '\t'; i++)
		;
	memmove(out, out + i, len - i + 1);
	len -= i;
	if (len == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
		free(out);
		return NULL;
	}
	if (len > max) {
		dot = strrchr(out, '.');
		ext = dot != NULL ? len - (size_t)(dot - out) : 0;
		if (ext > 0 && ext <= 16 && ext < max) {
			size_t keep = max - ext;

			while (keep > 0 && ((unsigned char)out[keep] & 0xc0) == 0x80)
				keep--;
			memmove(out + keep, dot, ext + 1);
			len = keep + ext;
		} else
			charset_utf8_cut(out, &len, max);
	}
	return out;
}

/* File name extension (with its dot) for a lower-case "type/subtype", ""
 * when none is known. */
static const char *
mime_type_extension(const char *ctype)
{
	static const struct { const char *type, *ext; } map[] = {
		{ "application/gzip", ".gz" },
		{ "application/json", ".json" },
		{ "application/msword", ".doc" },
		{ "application/pdf", ".pdf" },
		{ "application/pkcs7-mime", ".p7m" },
		{ "application/pkcs7-signature", ".p7s" },
		{ "application/rtf", ".rtf" },
		{ "application/vnd.ms-excel", ".xls" },
		{ "application/vnd.ms-outlook", ".msg" },
		{ "application/vnd.ms-powerpoint", ".ppt" },
		{ "application/vnd.oasis.opendocument.text", ".odt" },
		{ "application/vnd.openxmlformats-officedocument."
		    "presentationml.presentation", ".pptx" },
		{ "application/vnd.openxmlformats-officedocument."
		    "spreadsheetml.sheet", ".xlsx" },
		{ "application/vnd.openxmlformats-officedocument."
		    "wordprocessingml.document", ".docx" },
		{ "application/x-7z-compressed", ".7z" },
		{ "application/x-pkcs7-signature", ".p7s" },
		{ "application/x-zip-compressed", ".zip" },
		{ "application/xml", ".xml" },
		{ "application/zip", ".zip" },
		{ "audio/mpeg", ".mp3" },
		{ "audio/wav", ".wav" },
		{ "image/bmp", ".bmp" },
		{ "image/gif", ".gif" },
		{ "image/heic", ".heic" },
		{ "image/jpeg", ".jpg" },
		{ "image/jpg", ".jpg" },
		{ "image/pjpeg", ".jpg" },
		{ "image/png", ".png" },
		{ "image/svg+xml", ".svg" },
		{ "image/tiff", ".tif" },
		{ "image/webp", ".webp" },
		{ "message/delivery-status", ".txt" },
		{ "message/disposition-notification", ".txt" },
		{ "message/feedback-report", ".txt" },
		{ "message/rfc822", ".eml" },
		{ "text/calendar", ".ics" },
		{ "text/csv", ".csv" },
		{ "text/enriched", ".txt" },
		{ "text/html", ".html" },
		{ "text/plain", ".txt" },
		{ "text/rfc822-headers", ".txt" },
		{ "text/rtf", ".rtf" },
		{ "text/vcard", ".vcf" },
		{ "text/x-vcard", ".vcf" },
		{ "text/xml", ".xml" },
		{ "video/mp4", ".mp4" },
	};
	size_t i;

	for (i = 0; ctype != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(ctype, map[i].type) == 0)
			return map[i].ext;
	return "";
}

/* "attachment-N" + SUFFIX for the next attachment; NULL on ENOMEM. */
static char *
mime_filename_default(const struct mime_ctx *ctx, const char *suffix)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "attachment-%zu%s",
	    ctx->msg->n_attachments, suffix);
	return strdup(buf);
}

/* Give ATT its file name from NAME, or the default "attachment-N" with
 * SUFFIX (NULL: the extension of ATT's content type); sets ctx->oom. */
static void
mime_att_name(struct mime_ctx *ctx, struct mime_attachment *att,
    const char *name, const char *suffix)
{
	char *clean;

	clean = mime_filename_clean(name, MIME_FILENAME_MAX, false, &ctx->oom);
	if (clean == NULL && !ctx->oom)
		clean = mime_filename_default(ctx, suffix != NULL ? suffix :
		    mime_type_extension(att->content_type));
	if (clean == NULL)
		ctx->oom = true;
	att->filename = clean;
}

/*
 * The value of parameter NAME (not NAME*) in the raw header value RAW
 * (";"-separated, quoted-strings unquoted), malloc'd; NULL when absent.
 */
static char *
mime_raw_param(const char *raw, const char *name)
{
	size_t nlen = strlen(name), i = 0, len = strlen(raw);
	bool quoted = false;

	while (i < len) {
		/* the next ';' outside quotes */
		for (; i < len && (quoted || raw[i] != ';'); i++) {
			if (raw[i] == '\\' && quoted && i + 1 < len)
				i++;
			else if (raw[i] == '"')
				quoted = !quoted;
		}
		if (i >= len)
			return NULL;
		i++;
		while (i < len && g_ascii_isspace(raw[i]))
			i++;
		if (g_ascii_strncasecmp(raw + i, name, nlen) != 0)
			continue;
		i += nlen;
		while (i < len && g_ascii_isspace(raw[i]))
			i++;
		if (i >= len || raw[i] != '=')
			continue;
		i++;
		while (i < len && g_ascii_isspace(raw[i]))
			i++;
		{
			char *out = malloc(len - i + 1);
			size_t o = 0;

			if (out == NULL)
				return NULL;
			if (i < len && raw[i] == '"') {
				for (i++; i < len && raw[i] != '"'; i++) {
					if (raw[i] == '\\' && i + 1 < len)
						i++;
					out[o++] = raw[i];
				}
			} else {
				for (; i < len && raw[i] != ';'; i++)
					out[o++] = raw[i];
				while (o > 0 && g_ascii_isspace(out[o - 1]))
					o--;
			}
			out[o] = '\0';
			return out;
		}
	}
	return NULL;
}

/* Raw (undecoded) value of header NAME of OBJ, or NULL. */
static const char *
mime_raw_header(GMimeObject *obj, const char *name)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	GMimeHeader *h;

	if (list == NULL)
		return NULL;
	h = g_mime_header_list_get_header(list, name);
	return h != NULL ? g_mime_header_get_raw_value(h) : NULL;
}

/*
 * File name of OBJ, malloc'd, NULL when none (or ENOMEM, *OOM set).
 * GMime's (RFC 2231 continuations and charsets), except that a plain
 * filename= or name= holding RFC 2047 words is decoded here, word by word
 * (GMime 3.2.13 cuts text after a padded base64 word).
 */
static char *
mime_part_filename(GMimeObject *obj, bool *oom)
{
	static const char *const where[][2] = {
		{ "Content-Disposition", "filename" },
		{ "Content-Type", "name" },
	};
	const char *name = NULL, *raw;
	char *value, *out;
	size_t i;

	for (i = 0; i < 2; i++) {
		name = i == 0 ?
		    g_mime_object_get_content_disposition_parameter(obj,
		    "filename") :
		    g_mime_object_get_content_type_parameter(obj, "name");
		if (name == NULL)
			continue;
		raw = mime_raw_header(obj, where[i][0]);
		value = raw != NULL && strstr(raw, "=?") != NULL ?
		    mime_raw_param(raw, where[i][1]) : NULL;
		if (value != NULL && strstr(value, "=?") != NULL) {
			out = charset_decode_words(value, strlen(value));
			free(value);
			if (out == NULL)
				*oom = true;
			return out;
		}
		free(value);
		break;
	}
	if (name == NULL)
		return NULL;
	out = strdup(name);
	if (out == NULL)
		*oom = true;
	return out;
}

/*
 * A Content-Type value S of LEN bytes as lower-case "type/subtype", or
 * "application/octet-stream" when it is not one; malloc'd.
 */
static char *
mime_ctype_clean(const char *s, size_t len)
{
	char buf[MIME_CTYPE_MAX + 1];
	size_t i, slash = 0;

	while (len > 0 && (s[len - 1] == '\0' || s[len - 1] == ' '))
		len--;
	if (len == 0 || len > MIME_CTYPE_MAX)
		return strdup("application/octet-stream");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' && slash == 0 && i > 0)
			slash = i;
		else if (!(g_ascii_isalnum(c) || strchr("!#$&^_.+-", c) != NULL) ||
		    c == '\0')
			return strdup("application/octet-stream");
		buf[i] = (char)g_ascii_tolower(c);
	}
	buf[len] = '\0';
	if (slash == 0 || slash == len - 1)
		return strdup("application/octet-stream");
	return strdup(buf);
}

/* Content-ID S (LEN bytes) without <>, blanks or controls; NULL if empty. */
static char *
mime_cid_clean(const char *s, size_t len)
{
	char *out;
	size_t i, n = 0;

	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < len && n < MIME_CID_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			continue;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Lower-case "type/subtype" of OBJ, malloc'd. */
static char *
mime_object_ctype(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	char *type, *out;

	if (ct == NULL)
		return strdup("application/octet-stream");
	type = g_mime_content_type_get_mime_type(ct);
	if (type == NULL)
		return strdup("application/octet-stream");
	out = mime_ctype_clean(type, strlen(type));
	g_free(type);
	return out;
}

/* Is OBJ's Content-Type TYPE/SUBTYPE (case-insensitive, "*" matches)? */
static bool
mime_is_type(GMimeObject *obj, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

/* Read PART as a body: UTF-8, CRLF -> LF, cut at max_text. */
static char *
mime_body_text(struct mime_ctx *ctx, GMimePart *part)
{
	unsigned char *raw;
	const char *charset;
	char *text;
	size_t total;

	if (!mime_part_read(part, ctx->lim.max_text, true, -1, &raw, &total,
	    NULL)) {
		ctx->oom = true;
		return NULL;
	}
	if (total > ctx->lim.max_text) {
		ctx->msg->truncated = true;
		total = ctx->lim.max_text;
	}
	charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part),
	    "charset");
	text = charset_to_utf8(raw, total, charset, ctx->lim.max_text, &ctx->oom);
	free(raw);
	if (text != NULL)
		mime_crlf_to_lf(text);
	return text;
}

/* Append the HTML of PART to the HTML body (Apple Mail's HTML, image,
 * HTML), within max_text. */
static void
mime_body_append_html(struct mime_ctx *ctx, GMimePart *part)
{
	char *more, *joined;
	size_t have, add;

	more = mime_body_text(ctx, part);
	if (more == NULL)
		return;
	have = strlen(ctx->msg->html);
	add = strlen(more);
	if (have + add > ctx->lim.max_text) {
		ctx->msg->truncated = true;
		charset_utf8_cut(more, &add, ctx->lim.max_text -
		    (have < ctx->lim.max_text ? have : ctx->lim.max_text));
	}
	joined = realloc(ctx->msg->html, have + add + 1);
	if (joined == NULL) {
		free(more);
		ctx->oom = true;
		return;
	}
	memcpy(joined + have, more, add);
	joined[have + add] = '\0';
	ctx->msg->html = joined;
	free(more);
}

/* Fill ATT's name, type, Content-ID and inline flag from PART. */
static void
mime_att_describe(struct mime_ctx *ctx, struct mime_attachment *att,
    GMimePart *part)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	const char *cid, *disposition;
	char *name;

	att->content_type = mime_object_ctype(obj);
	if (att->content_type == NULL)
		ctx->oom = true;
	name = mime_part_filename(obj, &ctx->oom);
	mime_att_name(ctx, att, name, NULL);
	free(name);
	cid = g_mime_object_get_content_id(obj);
	if (cid != NULL)
		att->content_id = mime_cid_clean(cid, strlen(cid));
	disposition = g_mime_object_get_disposition(obj);
	if (disposition != NULL && strcasecmp(disposition, "inline") == 0 &&
	    mime_is_type(obj, "image", "*"))
		att->is_inline = true;
}

/* The size= of PART's Content-Disposition (RFC 2183), 0 when absent or
 * not a plain number. */
static size_t
mime_disposition_size(GMimePart *part)
{
	const char *v = g_mime_object_get_content_disposition_parameter(
	    GMIME_OBJECT(part), "size");
	unsigned long long n = 0;
	size_t i;

	if (v == NULL || *v == '\0' || strlen(v) > 15)
		return 0;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		n = n * 10 + (unsigned)(v[i] - '0');
	}
	return (size_t)n;
}

/* Add PART as an attachment. A base64 or uuencoded part that could not
 * be decoded faithfully (or decodes shorter than its size= says) is
 * listed without its bytes. */
static void
mime_add_part(struct mime_ctx *ctx, GMimePart *part)
{
	struct mime_attachment *att;
	GMimeContentEncoding enc;
	unsigned char *data;
	size_t total, size;
	bool damaged;
	int fd = -1;

	att = mime_att_new(ctx);
	if (att == NULL)
		return;
	mime_att_describe(ctx, att, part);
	if (ctx->lim.spill_dir != NULL &&
	    (fd = mime_spill_open(ctx->lim.spill_dir)) < 0) {
		mime_spill_failed(ctx, errno);
		return;
	}
	if (!mime_part_read(part, mime_att_room(ctx), false, fd, &data, &total,
	    &damaged)) {
		mime_spill_failed(ctx, errno);
		if (fd >= 0)
			(void)close(fd);
		return;
	}
	enc = g_mime_part_get_content_encoding(part);
	size = mime_disposition_size(part);
	if (size > 0 && total < size && (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE))
		damaged = true;     /* cut short on the way */
	if (damaged) {
		free(data);
		if (fd >= 0)
			(void)close(fd);
		att->original_len = total;
		att->skip = MIME_SKIP_UNDECODABLE;
		return;
	}
	if (fd >= 0) {
		mime_att_set_file(ctx, att, fd, total);
		(void)close(fd);
		return;
	}
	mime_att_set_data(ctx, att, data, total);
}

/* List PART (past the part limit) by name and type, without reading it. */
static void
mime_list_part(struct mime_ctx *ctx, GMimeObject *obj)
{
	struct mime_attachment *att;

	if (ctx->listed >= MIME_LISTED_MAX) {
		ctx->msg->n_unlisted++;
		return;
	}
	att = mime_att_new(ctx);
	if (att == NULL)
		return;
	ctx->listed++;
	att->skip = MIME_SKIP_LIMIT;
	if (GMIME_IS_PART(obj)) {
		mime_att_describe(ctx, att, GMIME_PART(obj));
		return;
	}
	att->content_type = strdup("message/rfc822");
	if (att->content_type == NULL)
		ctx->oom = true;
	mime_att_name(ctx, att, g_mime_object_get_content_disposition_parameter(
	    obj, "filename"), NULL);
}

/* Past the part limit: list the leaves under OBJ (nesting still bound). */
static void
mime_list_rest(struct mime_ctx *ctx, GMimeObject *obj, size_t depth)
{
	GMimeMultipart *mp;
	int i, n;

	if (ctx->oom || obj == NULL || depth > ctx->lim.max_depth)
		return;
	if (GMIME_IS_PART(obj) || GMIME_IS_MESSAGE_PART(obj)) {
		mime_list_part(ctx, obj);
		return;
	}
	if (!GMIME_IS_MULTIPART(obj))
		return;
	mp = GMIME_MULTIPART(obj);
	n = g_mime_multipart_get_count(mp);
	for (i = 0; i < n && !ctx->oom; i++)
		mime_list_rest(ctx, g_mime_multipart_get_part(mp, i), depth + 1);
}

/* Add a message/rfc822 part as an .eml attachment. */
static void
mime_add_message(struct mime_ctx *ctx, GMimeMessagePart *part)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	GMimeMessage *inner = g_mime_message_part_get_message(part);
	GMimeFormatOptions *format;
	GMimeStream *counter, *mem;
	struct mime_attachment *att;
	const char *raw;
	char *subject = NULL, *name, *decoded;
	size_t size;

	att = mime_att_new(ctx);
	if (att == NULL)
		return;
	name = mime_part_filename(obj, &ctx->oom);
	raw = inner != NULL ? mime_raw_header(GMIME_OBJECT(inner), "Subject") :
	    NULL;
	if (name != NULL)
		mime_att_name(ctx, att, name, ".eml");
	else if (raw != NULL && !ctx->oom) {
		decoded = hdr_decode_text(raw);
		if (decoded == NULL)
			ctx->oom = true;
		subject = mime_filename_clean(decoded, MIME_FILENAME_MAX - 4, true,
		    &ctx->oom);
		free(decoded);
		if (subject != NULL) {
			att->filename = malloc(strlen(subject) + 5);
			if (att->filename != NULL)
				sprintf(att->filename, "%s.eml", subject);
			else
				ctx->oom = true;
			free(subject);
		}
	}
	free(name);
	if (att->filename == NULL && !ctx->oom)
		mime_att_name(ctx, att, NULL, ".eml");
	att->content_type = strdup("message/rfc822");
	if (att->content_type == NULL)
		ctx->oom = true;
	if (inner == NULL || ctx->oom) {
		mime_att_set_data(ctx, att, malloc(1), 0);
		return;
	}
	/* measure first, so an oversized message is never held in memory */
	format = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(format, GMIME_NEWLINE_FORMAT_DOS);
	counter = g_mime_stream_null_new();
	g_mime_object_write_to_stream(GMIME_OBJECT(inner), format, counter);
	size = GMIME_STREAM_NULL(counter)->written;
	g_object_unref(counter);
	if (size > mime_att_room(ctx)) {
		mime_att_set_data(ctx, att, NULL, size);
	} else {
		GByteArray *bytes;

		mem = g_mime_stream_mem_new();
		g_mime_object_write_to_stream(GMIME_OBJECT(inner), format, mem);
		bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		mime_att_copy_data(ctx, att, bytes->data, bytes->len);
		g_object_unref(mem);
	}
	g_mime_format_options_free(format);
}

/* --- winmail.dat (TNEF) ------------------------------------------------ */

/* Reading state handed to libytnef through its IO hooks. */
struct mime_tnef_io {
	const unsigned char *data;
	size_t len;
	size_t pos;
};

/* libytnef IO: start at the beginning. */
static int
mime_tnef_io_init(TNEFIOStruct *io)
{
	((struct mime_tnef_io *)io->data)->pos = 0;
	return 0;
}

/* libytnef IO: COUNT items of SIZE bytes, all or nothing. */
static int
mime_tnef_io_read(TNEFIOStruct *io, int size, int count, void *dest)
{
	struct mime_tnef_io *in = io->data;
	size_t want;

	if (size < 0 || count < 0)
		return -1;
	want = (size_t)size * (size_t)count;
	if (want > in->len - in->pos)
		return -1;
	memcpy(dest, in->data + in->pos, want);
	in->pos += want;
	return count;
}

/* libytnef IO: nothing to release. */
static int
mime_tnef_io_close(TNEFIOStruct *io)
{
	(void)io;
	return 0;
}

/* TNEF attribute ids (level-independent, as libytnef dispatches them). */
#define MIME_ATT_FROM           0x00008000u
#define MIME_ATT_BODY           0x0002800cu
#define MIME_ATT_MAPIPROPS      0x00069003u
#define MIME_ATT_OEMCODEPAGE    0x00069007u
#define MIME_ATT_ORIGCLASS      0x00070006u
#define MIME_ATT_RENDDATA       0x00069002u
#define MIME_ATT_TITLE          0x00018010u
#define MIME_ATT_DATA           0x0006800fu
#define MIME_ATT_METAFILE       0x00068011u
#define MIME_ATT_ATTACHMENT     0x00069005u
#define MIME_TNEF_MAX_ATT       1024    /* attachments tracked for empties */

/* A re-framed TNEF stream and which attachments have empty data. */
struct mime_tnef_frame {
	unsigned char *buf;
	size_t len;
	unsigned char empty[MIME_TNEF_MAX_ATT / 8];
	bool lossy;             /* something other than empties was left out */
};

/* Bit for attribute ID among those libytnef stores (and would leak when
 * repeated); 0 for the others. */
static unsigned
mime_tnef_once_bit(uint32_t id)
{
	static const uint32_t ids[] = { MIME_ATT_FROM, MIME_ATT_BODY,
	    MIME_ATT_MAPIPROPS, MIME_ATT_OEMCODEPAGE, MIME_ATT_ORIGCLASS,
	    MIME_ATT_TITLE, MIME_ATT_DATA, MIME_ATT_METAFILE,
	    MIME_ATT_ATTACHMENT };
	size_t i;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i] == id)
			return 1u << i;
	return 0;
}

/* Is ID an attribute libytnef files under the current attachment? */
static bool
mime_tnef_is_att_attr(uint32_t id)
{
	return id == MIME_ATT_TITLE || id == MIME_ATT_DATA ||
	    id == MIME_ATT_METAFILE || id == MIME_ATT_ATTACHMENT;
}

/*
 * Re-frame the TNEF stream IN into F: the signature and key, then only
 * whole attributes that libytnef handles safely: level 1 or 2, length
 * within the data, checksum right, non-empty, attachment attributes only
 * after an attachment has started, and each stored attribute once per
 * message or attachment. False when IN is not TNEF (or on ENOMEM).
 */
static bool
mime_tnef_reframe(const unsigned char *in, size_t len,
    struct mime_tnef_frame *f)
{
	size_t off = 6, n = 6, attachments = 0;
	unsigned seen_msg = 0, seen_att = 0;

	memset(f, 0, sizeof(*f));
	if (len < 6 || mime_le32(in) != MIME_TNEF_SIGNATURE)
		return false;
	f->buf = malloc(len);
	if (f->buf == NULL)
		return false;
	memcpy(f->buf, in, 6);
	while (len - off >= 9) {
		unsigned char level = in[off];
		uint32_t id = mime_le32(in + off + 1);
		size_t size = mime_le32(in + off + 5), i, whole;
		unsigned sum = 0, bit;
		bool keep = true;

		if (level != 1 && level != 2)
			break;          /* junk: lost only if there is much of it */
		if (size > len - off - 9 || len - off - 9 - size < 2) {
			f->lossy = true;        /* cut short */
			off = len;
			break;
		}
		whole = 9 + size + 2;
		for (i = 0; i < size; i++)
			sum += in[off + 9 + i];
		bit = mime_tnef_once_bit(id);
		if ((sum & 0xffff) != ((unsigned)in[off + 9 + size] |
		    (unsigned)in[off + 10 + size] << 8)) {
			keep = false;
			f->lossy = true;
		} else if (id == MIME_ATT_RENDDATA && size > 0) {
			attachments++;      /* libytnef starts an attachment */
			seen_att = 0;
		} else if (size == 0) {
			keep = false;
			if (id == MIME_ATT_DATA && attachments > 0 &&
			    attachments <= MIME_TNEF_MAX_ATT)
				f->empty[(attachments - 1) / 8] |=
				    (unsigned char)(1u << ((attachments - 1) % 8));
		} else if (mime_tnef_is_att_attr(id)) {
			if (attachments == 0 || (seen_att & bit) != 0) {
				keep = false;
				f->lossy = true;
			}
			seen_att |= bit;
		} else if (bit != 0) {
			if ((seen_msg & bit) != 0) {
				keep = false;
				f->lossy = true;
			}
			seen_msg |= bit;
		}
		if (keep) {
			memcpy(f->buf + n, in + off, whole);
			n += whole;
		}
		off += whole;
	}
	if (len - off >= MIME_TNEF_TAIL_OK)
		f->lossy = true;
	f->len = n;
	return true;
}

/* Did the attachment at INDEX (0-based) carry empty data? */
static bool
mime_tnef_empty(const struct mime_tnef_frame *f, size_t index)
{
	return index < MIME_TNEF_MAX_ATT &&
	    (f->empty[index / 8] & (1u << (index % 8))) != 0;
}

/* Remove from the re-framed stream BUF (length *LEN) the attribute that
 * holds offset POS. False when POS is in no attribute. */
static bool
mime_tnef_drop_at(unsigned char *buf, size_t *len, size_t pos)
{
	size_t off = 6, end;

	while (*len - off >= 9) {
		end = off + 9 + mime_le32(buf + off + 5) + 2;
		if (pos > off && pos <= end) {
			memmove(buf + off, buf + end, *len - end);
			*len -= end - off;
			return true;
		}
		off = end;
	}
	return false;
}

/* The variableLength V when it holds data, else NULL. */
static const variableLength *
mime_tnef_value(const variableLength *v)
{
	if (v == MAPI_UNDEFINED || v == NULL || v->data == NULL || v->size <= 0)
		return NULL;
	return v;
}

/* Property ID of type TYPE in PROPS, when present with data. */
static const variableLength *
mime_tnef_prop(MAPIProps *props, unsigned type, unsigned id)
{
	return mime_tnef_value(MAPIFindProperty(props, PROP_TAG(type, id)));
}

/* iconv name for a Windows code page number. */
static void
mime_tnef_cpname(unsigned cp, char *buf, size_t bufsz)
{
	static const struct { unsigned cp; const char *name; } map[] = {
		{ 65001, "UTF-8" }, { 20127, "US-ASCII" }, { 1200, "UTF-16LE" },
		{ 1201, "UTF-16BE" }, { 28591, "ISO-8859-1" },
		{ 28592, "ISO-8859-2" }, { 28593, "ISO-8859-3" },
		{ 28594, "ISO-8859-4" }, { 28595, "ISO-8859-5" },
		{ 28596, "ISO-8859-6" }, { 28597, "ISO-8859-7" },
		{ 28598, "ISO-8859-8" }, { 28599, "ISO-8859-9" },
		{ 28603, "ISO-8859-13" }, { 28605, "ISO-8859-15" },
		{ 50220, "ISO-2022-JP" }, { 50221, "ISO-2022-JP" },
		{ 50222, "ISO-2022-JP" }, { 51932, "EUC-JP" }, { 932, "CP932" },
		{ 936, "GBK" }, { 54936, "GB18030" }, { 949, "CP949" },
		{ 51949, "EUC-KR" }, { 950, "BIG5" }, { 20866, "KOI8-R" },
		{ 21866, "KOI8-U" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].cp == cp) {
			snprintf(buf, bufsz, "%s", map[i].name);
			return;
		}
	if (cp == 0)
		snprintf(buf, bufsz, "windows-1252");
	else
		snprintf(buf, bufsz, "CP%u", cp);
}

/* The message's code page: PR_INTERNET_CPID, else the OEM code page. */
static unsigned
mime_tnef_codepage(TNEFStruct *tnef)
{
	const variableLength *v;

	v = mime_tnef_prop(&tnef->MapiProperties, PT_LONG, PR_INTERNET_CPID);
	if (v != NULL && v->size >= 4)
		return mime_le32(v->data);
	if (tnef->CodePage.data != NULL && tnef->CodePage.size >= 4)
		return mime_le32(tnef->CodePage.data);
	return 0;
}

/*
 * A string property as UTF-8 (malloc'd): PT_UNICODE values libytnef has
 * already converted; PT_STRING8 ones are in code page CP. NULL if absent.
 */
static char *
mime_tnef_string(struct mime_ctx *ctx, MAPIProps *props, unsigned id,
    unsigned cp, size_t max)
{
	const variableLength *v;
	char cpname[32];
	size_t len;

	v = mime_tnef_prop(props, PT_UNICODE, id);
	if (v != NULL) {
		/* libytnef's UTF-8 buffer: 3 * size / 2 + 1 bytes, NUL-ended */
		len = strnlen((const char *)v->data, (size_t)v->size / 2 * 3 + 1);
		return charset_to_utf8(v->data, len, "UTF-8", max, &ctx->oom);
	}
	v = mime_tnef_prop(props, PT_STRING8, id);
	if (v == NULL)
		return NULL;
	len = strnlen((const char *)v->data, (size_t)v->size);
	mime_tnef_cpname(cp, cpname, sizeof(cpname));
	return charset_to_utf8(v->data, len, cpname, max, &ctx->oom);
}

/* Take the HTML and plain bodies of TNEF where the mail has none yet.
 * True when one was taken. */
static bool
mime_tnef_bodies(struct mime_ctx *ctx, TNEFStruct *tnef, unsigned cp)
{
	const variableLength *v;
	char cpname[32];
	bool took = false;
	size_t len;

	mime_tnef_cpname(cp, cpname, sizeof(cpname));
	if (ctx->msg->html == NULL) {
		v = mime_tnef_prop(&tnef->MapiProperties, PT_BINARY, PR_BODY_HTML);
		if (v == NULL)
			v = mime_tnef_prop(&tnef->MapiProperties, PT_STRING8,
			    PR_BODY_HTML);
		if (v != NULL) {
			len = strnlen((const char *)v->data, (size_t)v->size);
			if (len > ctx->lim.max_text) {
				len = ctx->lim.max_text;
				ctx->msg->truncated = true;
			}
			ctx->msg->html = charset_to_utf8(v->data, len, cpname,
			    ctx->lim.max_text, &ctx->oom);
			took = ctx->msg->html != NULL;
		}
	}
	if (ctx->msg->text == NULL) {
		ctx->msg->text = mime_tnef_string(ctx, &tnef->MapiProperties,
		    PR_BODY, cp, ctx->lim.max_text);
		if (ctx->msg->text == NULL && !ctx->oom &&
		    tnef->body.data != NULL && tnef->body.size > 0) {
			len = strnlen((const char *)tnef->body.data,
			    (size_t)tnef->body.size);
			ctx->msg->text = charset_to_utf8(tnef->body.data, len, cpname,
			    ctx->lim.max_text, &ctx->oom);
		}
		if (ctx->msg->text != NULL) {
			mime_crlf_to_lf(ctx->msg->text);
			took = true;
		}
	}
	return took;
}

static enum mime_tnef_result mime_tnef_unpack(struct mime_ctx *ctx,
    const unsigned char *data, size_t len, size_t depth);

/* Name of TNEF attachment P: long file name, title, short file name,
 * display name, in that order; malloc'd or NULL. */
static char *
mime_tnef_att_name(struct mime_ctx *ctx, Attachment *p, unsigned cp)
{
	static const unsigned ids[] = { PR_ATTACH_LONG_FILENAME, 0,
	    PR_ATTACH_FILENAME, PR_DISPLAY_NAME };
	char *name = NULL, cpname[32];
	size_t i, len;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]) && name == NULL; i++) {
		if (ids[i] != 0) {
			name = mime_tnef_string(ctx, &p->MAPI, ids[i], cp, 1024);
		} else if (p->Title.data != NULL && p->Title.size > 0) {
			len = strnlen((const char *)p->Title.data,
			    (size_t)p->Title.size);
			mime_tnef_cpname(cp, cpname, sizeof(cpname));
			name = charset_to_utf8(p->Title.data, len, cpname, 1024,
			    &ctx->oom);
		}
		if (name != NULL && name[0] == '\0') {
			free(name);
			name = NULL;
		}
	}
	return name;
}

/* Add the attachments of a parsed TNEF (framed as F); returns how many
 * were added, including those of embedded TNEF streams. */
static size_t
mime_tnef_attachments(struct mime_ctx *ctx, TNEFStruct *tnef,
    const struct mime_tnef_frame *f, unsigned cp, size_t depth)
{
	static const unsigned char nothing[1];
	struct mime_attachment *att;
	const variableLength *v;
	const unsigned char *data;
	Attachment *p;
	char *name, *value;
	size_t added = 0, len, index = 0;

	for (p = tnef->starting_attach.next; p != NULL && !ctx->oom;
	    p = p->next, index++) {
		data = NULL;
		len = 0;
		if ((v = mime_tnef_prop(&p->MAPI, PT_OBJECT,
		    PR_ATTACH_DATA_OBJ)) != NULL) {
			/* an object: a 16-byte interface id, then the data */
			if (v->size > 16) {
				data = v->data + 16;
				len = (size_t)v->size - 16;
			}
		} else if ((v = mime_tnef_prop(&p->MAPI, PT_BINARY,
		    PR_ATTACH_DATA_OBJ)) != NULL) {
			data = v->data;
			len = (size_t)v->size;
		} else if (p->FileData.data != NULL && p->FileData.size > 0) {
			data = p->FileData.data;
			len = (size_t)p->FileData.size;
		}
		if ((data == NULL || len == 0) && mime_tnef_empty(f, index))
			data = nothing;     /* an empty file is still a file */
		else if (data == NULL || len == 0)
			continue;
		if (len >= 4 && mime_le32(data) == MIME_TNEF_SIGNATURE &&
		    depth < MIME_TNEF_DEPTH) {
			size_t before = ctx->msg->n_attachments;

			if (mime_tnef_unpack(ctx, data, len, depth + 1) !=
			    MIME_TNEF_NONE) {
				added += ctx->msg->n_attachments - before;
				continue;
			}
		}
		if (++ctx->parts > ctx->lim.max_parts) {
			ctx->msg->truncated = true;
			break;
		}
		att = mime_att_new(ctx);
		if (att == NULL)
			break;
		att->from_tnef = true;
		value = mime_tnef_string(ctx, &p->MAPI, PR_ATTACH_MIME_TAG, cp,
		    MIME_CTYPE_MAX + 1);
		att->content_type = value != NULL ?
		    mime_ctype_clean(value, strlen(value)) :
		    strdup("application/octet-stream");
		free(value);
		if (att->content_type == NULL)
			ctx->oom = true;
		name = mime_tnef_att_name(ctx, p, cp);
		mime_att_name(ctx, att, name, NULL);
		free(name);
		value = mime_tnef_string(ctx, &p->MAPI, PR_ATTACH_CONTENT_ID, cp,
		    MIME_CID_MAX);
		if (value != NULL)
			att->content_id = mime_cid_clean(value, strlen(value));
		free(value);
		mime_att_copy_data(ctx, att, data, len);
		added++;
	}
	return added;
}

/*
 * Parse the TNEF stream DATA with libytnef and take its bodies and
 * attachments. Attributes libytnef rejects are dropped one at a time and
 * the parse retried, so one bad attribute does not lose the rest.
 */
static enum mime_tnef_result
mime_tnef_unpack(struct mime_ctx *ctx, const unsigned char *data, size_t len,
    size_t depth)
{
	struct mime_tnef_frame frame;
	struct mime_tnef_io io;
	TNEFStruct tnef;
	size_t added;
	unsigned cp, tries;
	bool took;
	int rc;

	if (len > INT_MAX / 2)
		return MIME_TNEF_NONE;
	if (!mime_tnef_reframe(data, len, &frame)) {
		free(frame.buf);
		return MIME_TNEF_NONE;
	}
	for (tries = 0;; tries++) {
		memset(&io, 0, sizeof(io));
		io.data = frame.buf;
		io.len = frame.len;
		memset(&tnef, 0, sizeof(tnef));
		TNEFInitialize(&tnef);
		tnef.Debug = 0;         /* TNEFInitialize leaves it unset */
		tnef.IO.data = &io;
		tnef.IO.InitProc = mime_tnef_io_init;
		tnef.IO.ReadProc = mime_tnef_io_read;
		tnef.IO.CloseProc = mime_tnef_io_close;
		rc = TNEFParse(&tnef);
		if (rc >= 0)
			break;
		TNEFFree(&tnef);
		frame.lossy = true;
		if (tries >= MIME_TNEF_RETRIES ||
		    !mime_tnef_drop_at(frame.buf, &frame.len, io.pos)) {
			free(frame.buf);
			return MIME_TNEF_NONE;
		}
	}
	cp = mime_tnef_codepage(&tnef);
	took = mime_tnef_bodies(ctx, &tnef, cp);
	added = mime_tnef_attachments(ctx, &tnef, &frame, cp, depth);
	TNEFFree(&tnef);
	free(frame.buf);
	if (!took && added == 0)
		return MIME_TNEF_NONE;
	return frame.lossy ? MIME_TNEF_PARTIAL : MIME_TNEF_FULL;
}

/* Is PART a winmail.dat? */
static bool
mime_is_tnef(GMimePart *part)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	const char *name;

	if (mime_is_type(obj, "application", "ms-tnef") ||
	    mime_is_type(obj, "application", "vnd.ms-tnef"))
		return true;
	name = g_mime_part_get_filename(part);
	return name != NULL && strcasecmp(name, "winmail.dat") == 0 &&
	    mime_is_type(obj, "application", "octet-stream");
}

/* Unpack a winmail.dat part; keep it as an attachment too unless it was
 * unpacked whole. */
static void
mime_add_tnef(struct mime_ctx *ctx, GMimePart *part)
{
	enum mime_tnef_result result;
	unsigned char *data;
	size_t total;
	bool cut;

	/* at most max_attachment bytes: a longer one is unpacked as far as
	 * that goes, and kept (over the cap) as well */
	if (!mime_part_read(part, ctx->lim.max_attachment, true, -1, &data,
	    &total, NULL)) {
		ctx->oom = true;
		return;
	}
	cut = total > ctx->lim.max_attachment;
	result = mime_tnef_unpack(ctx, data, cut ? ctx->lim.max_attachment :
	    total, 0);
	free(data);
	if (cut && result == MIME_TNEF_FULL)
		result = MIME_TNEF_PARTIAL;
	if (result != MIME_TNEF_FULL && !ctx->oom)
		mime_add_part(ctx, part);
}

/* --- the MIME tree ---------------------------------------------------- */

/* Is OBJ a leaf text/SUBTYPE part not marked as an attachment? */
static bool
mime_is_body_part(GMimeObject *obj, const char *subtype)
{
	return GMIME_IS_PART(obj) && mime_is_type(obj, "text", subtype) &&
	    !g_mime_part_is_attachment(GMIME_PART(obj));
}

/* A leaf part: body, winmail.dat or attachment. */
static void
mime_leaf(struct mime_ctx *ctx, GMimePart *part, enum mime_role role)
{
	GMimeObject *obj = GMIME_OBJECT(part);

	if (mime_is_tnef(part)) {
		mime_add_tnef(ctx, part);
		return;
	}
	if (role == MIME_ROLE_BODY) {
		if (ctx->msg->html == NULL && mime_is_body_part(obj, "html")) {
			ctx->msg->html = mime_body_text(ctx, part);
			return;
		}
		if (ctx->msg->text == NULL && mime_is_body_part(obj, "plain")) {
			ctx->msg->text = mime_body_text(ctx, part);
			return;
		}
	}
	mime_add_part(ctx, part);
}

/* How good a rendering OBJ is: 3 HTML (or a multipart holding HTML near
 * its top, as related and Apple Mail's mixed do), 2 plain text, 1 else. */
static int
mime_alt_rank(GMimeObject *obj, size_t depth)
{
	int i, n, rank = 1, r;

	if (mime_is_body_part(obj, "html"))
		return 3;
	if (mime_is_body_part(obj, "plain"))
		return 2;
	if (!GMIME_IS_MULTIPART(obj) || depth >= 3)
		return 1;
	n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
	for (i = 0; i < n && i < 8; i++) {
		r = mime_alt_rank(g_mime_multipart_get_part(GMIME_MULTIPART(obj),
		    i), depth + 1);
		if (r > rank)
			rank = r;
	}
	return rank;
}

/*
 * multipart/alternative: as a body, the HTML and the plain text (and what a
 * nested multipart gives); other renderings are left out. As an
 * attachment, only the best rendering.
 */
static void
mime_walk_alternative(struct mime_ctx *ctx, GMimeMultipart *mp, size_t depth,
    enum mime_role role)
{
	GMimeObject *child, *best = NULL;
	int i, n = g_mime_multipart_get_count(mp);

	for (i = 0; i < n; i++) {
		child = g_mime_multipart_get_part(mp, i);
		if (role == MIME_ROLE_ATTACH) {
			/* the richest rendering; the later one of equals
			 * (RFC 2046), except among the unknown ones */
			if (best == NULL || mime_alt_rank(child, 0) >
			    mime_alt_rank(best, 0) || (mime_alt_rank(child, 0) >
			    1 && mime_alt_rank(child, 0) == mime_alt_rank(best, 0)))
				best = child;
			continue;
		}
		if (GMIME_IS_MULTIPART(child) || GMIME_IS_MESSAGE_PART(child) ||
		    (GMIME_IS_PART(child) && mime_is_tnef(GMIME_PART(child))))
			mime_walk(ctx, child, depth + 1, MIME_ROLE_BODY);
		else if ((ctx->msg->html == NULL &&
		    mime_is_body_part(child, "html")) ||
		    (ctx->msg->text == NULL && mime_is_body_part(child, "plain")))
			mime_walk(ctx, child, depth + 1, MIME_ROLE_BODY);
		else
			ctx->parts++;   /* another rendering: looked at, left out */
	}
	if (best != NULL)
		mime_walk(ctx, best, depth + 1, MIME_ROLE_ATTACH);
}

/*
 * Index of the root of multipart/related MP: the part named by "start",
 * else the first of the "type" parameter's type, else the first part.
 */
static int
mime_related_root(GMimeMultipart *mp)
{
	GMimeObject *obj = GMIME_OBJECT(mp), *child;
	const char *start, *type, *cid;
	char *want, *ctype;
	int i, n = g_mime_multipart_get_count(mp), root = -1;

	start = g_mime_object_get_content_type_parameter(obj, "start");
	want = start != NULL ? mime_cid_clean(start, strlen(start)) : NULL;
	for (i = 0; want != NULL && i < n && root < 0; i++) {
		cid = g_mime_object_get_content_id(g_mime_multipart_get_part(mp, i));
		if (cid != NULL && strcmp(cid, want) == 0)
			root = i;
	}
	free(want);
	type = g_mime_object_get_content_type_parameter(obj, "type");
	for (i = 0; type != NULL && i < n && root < 0; i++) {
		child = g_mime_multipart_get_part(mp, i);
		ctype = mime_object_ctype(child);
		if (ctype != NULL && strcasecmp(ctype, type) == 0)
			root = i;
		free(ctype);
	}
	return root < 0 ? 0 : root;
}

/*
 * A leaf OBJ with two Content-Type headers of which the first says
 * multipart (GMime keeps the last): its content parsed again as that
 * multipart, as Python's email and most clients read it (the first
 * header wins), so the parts do not reach the note as raw MIME. A new
 * object the caller unrefs, or NULL.
 */
static GMimeObject *
mime_reparse_multipart(GMimeObject *obj)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	GMimeDataWrapper *content;
	GMimeStream *cat, *head, *body;
	GMimeParser *parser;
	GMimeObject *again;
	const char *first = NULL, *raw;
	char *line;
	int i, n, count = 0;

	n = list != NULL ? g_mime_header_list_get_count(list) : 0;
	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);

		if (g_ascii_strcasecmp(g_mime_header_get_name(h),
		    "Content-Type") != 0)
			continue;
		if (count++ == 0)
			first = g_mime_header_get_raw_value(h);
	}
	if (count < 2 || first == NULL)
		return NULL;
	for (raw = first; *raw == ' ' || *raw == '\t'; raw++)
		;
	if (g_ascii_strncasecmp(raw, "multipart/", 10) != 0 ||
	    strlen(raw) > HDR_VALUE_MAX)
		return NULL;
	content = g_mime_part_get_content(GMIME_PART(obj));
	body = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
	if (body == NULL)
		return NULL;
	line = g_strdup_printf("Content-Type: %s\r\n\r\n", raw);
	head = g_mime_stream_mem_new_with_buffer(line, strlen(line));
	g_free(line);
	cat = g_mime_stream_cat_new();
	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), head);
	g_object_unref(head);
	g_mime_stream_reset(body);
	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), body);
	/* the closing boundary ends on a line end, as in the message */
	head = g_mime_stream_mem_new_with_buffer("\r\n", 2);
	g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), head);
	g_object_unref(head);
	parser = g_mime_parser_new_with_stream(cat);
	again = g_mime_parser_construct_part(parser, NULL);
	g_object_unref(parser);
	g_object_unref(cat);
	if (again != NULL && !GMIME_IS_MULTIPART(again)) {
		g_object_unref(again);
		again = NULL;
	}
	return again;
}

/* Walk OBJ at nesting DEPTH in ROLE. */
static void
mime_walk(struct mime_ctx *ctx, GMimeObject *obj, size_t depth,
    enum mime_role role)
{
	GMimeMultipart *mp;
	int i, n, root;
	bool took = false, took_html = false;

	if (ctx->oom || obj == NULL)
		return;
	if (depth > ctx->lim.max_depth) {
		ctx->msg->truncated = true;
		return;
	}
	if (++ctx->parts > ctx->lim.max_parts) {
		/* not read, but named in the note */
		ctx->msg->truncated = true;
		mime_list_rest(ctx, obj, depth);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		mime_add_message(ctx, GMIME_MESSAGE_PART(obj));
		return;
	}
	if (GMIME_IS_PART(obj)) {
		GMimeObject *again = mime_reparse_multipart(obj);

		if (again != NULL) {
			mime_walk(ctx, again, depth + 1, role);
			g_object_unref(again);
			return;
		}
		mime_leaf(ctx, GMIME_PART(obj), role);
		return;
	}
	if (!GMIME_IS_MULTIPART(obj))
		return;
	mp = GMIME_MULTIPART(obj);
	n = g_mime_multipart_get_count(mp);
	if (mime_is_type(obj, "multipart", "alternative")) {
		mime_walk_alternative(ctx, mp, depth, role);
		return;
	}
	if (GMIME_IS_MULTIPART_SIGNED(obj) ||
	    mime_is_type(obj, "multipart", "signed")) {
		/* the content; the signature is no use in a ticket */
		if (n > 0)
			mime_walk(ctx, g_mime_multipart_get_part(mp, 0), depth + 1,
			    role);
		return;
	}
	if (mime_is_type(obj, "multipart", "related")) {
		root = mime_related_root(mp);
		mime_walk(ctx, g_mime_multipart_get_part(mp, root), depth + 1,
		    role);
		for (i = 0; i < n && !ctx->oom; i++)
			if (i != root)
				mime_walk(ctx, g_mime_multipart_get_part(mp, i),
				    depth + 1, MIME_ROLE_ATTACH);
		return;
	}
	/* mixed, report, digest, unknown: the first text is the body; under
	 * an alternative that already gave the text, the first HTML (Apple
	 * Mail's HTML side: HTML, image, HTML, ...), and the inline HTML
	 * parts after it join it */
	for (i = 0; i < n && !ctx->oom; i++) {
		GMimeObject *child = g_mime_multipart_get_part(mp, i);
		bool had_html = ctx->msg->html != NULL;
		bool had_text = ctx->msg->text != NULL;

		if (took_html && mime_is_body_part(child, "html") &&
		    ++ctx->parts <= ctx->lim.max_parts) {
			mime_body_append_html(ctx, GMIME_PART(child));
			continue;
		}
		mime_walk(ctx, child, depth + 1, role == MIME_ROLE_BODY &&
		    !took ? MIME_ROLE_BODY : MIME_ROLE_ATTACH);
		if ((!had_html && ctx->msg->html != NULL) ||
		    (!had_text && ctx->msg->text != NULL)) {
			took = true;
			took_html = !had_html && ctx->msg->html != NULL &&
			    GMIME_IS_PART(child);
		}
	}
}

/* Mark attachments whose Content-ID the HTML body references. */
static void
mime_mark_inline(struct mime_message *m)
{
	char *needle;
	size_t i, len;

	if (m->html == NULL)
		return;
	for (i = 0; i < m->n_attachments; i++) {
		struct mime_attachment *att = &m->attachments[i];

		if (att->content_id == NULL || att->is_inline)
			continue;
		len = strlen(att->content_id) + 5;
		needle = malloc(len);
		if (needle == NULL)
			return;
		snprintf(needle, len, "cid:%s", att->content_id);
		if (strcasestr(m->html, needle) != NULL)
			att->is_inline = true;
		free(needle);
	}
}

/* Copy LIMITS (NULL: defaults; zero fields: defaults) into OUT. */
static void
mime_limits_resolve(const struct mime_limits *limits, struct mime_limits *out)
{
	mime_limits_default(out);
	if (limits == NULL)
		return;
	if (limits->max_attachment != 0)
		out->max_attachment = limits->max_attachment;
	if (limits->max_total != 0)
		out->max_total = limits->max_total;
	if (limits->max_parts != 0)
		out->max_parts = limits->max_parts;
	if (limits->max_depth != 0)
		out->max_depth = limits->max_depth;
	if (limits->max_text != 0)
		out->max_text = limits->max_text;
	out->spill_dir = limits->spill_dir;
}

/* Is LINE (LEN bytes, no line end) a header field "name:" or "name :"? */
static bool
mime_is_header_line(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && (unsigned char)line[i] > 32 &&
	    (unsigned char)line[i] < 127 && line[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < len && line[i] == ':';
}

/*
 * Offset in STREAM of the first line of the header block that is neither
 * a header field nor a continuation, when the block runs into the body
 * without a blank line; -1 when the block ends properly (or is longer
 * than MIME_HEADER_SCAN, or unreadable). A leading mbox "From " line is
 * allowed. STREAM is reset afterwards.
 */
static gint64
mime_missing_separator(GMimeStream *stream)
{
	char *buf, *grown;
	gssize n;
	size_t got = 0, cap = 0, start = 0, end, len;
	gint64 at = -1;
	bool done = false;

	buf = NULL;
	while (!done && got < MIME_HEADER_SCAN) {
		const char *nl;

		if (got == cap) {
			cap = cap == 0 ? MIME_CHUNK : cap * 2;
			grown = realloc(buf, cap);
			if (grown == NULL)
				break;
			buf = grown;
		}
		n = g_mime_stream_read(stream, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		/* judge every whole line read so far */
		while (!done && (nl = memchr(buf + start, '\n', got - start)) !=
		    NULL) {
			end = (size_t)(nl - buf);
			len = end - start;
			if (len > 0 && buf[end - 1] == '\r')
				len--;
			if (len == 0) {
				done = true;    /* the blank line: all is well */
				break;
			}
			if (!(buf[start] == ' ' || buf[start] == '\t') &&
			    !(start == 0 && len >= 5 &&
			    memcmp(buf, "From ", 5) == 0) &&
			    !mime_is_header_line(buf + start, len)) {
				at = start > 0 ? (gint64)start : -1;
				done = true;
				break;
			}
			start = end + 1;
		}
	}
	free(buf);
	g_mime_stream_reset(stream);
	return at;
}

/* Parse STREAM and build *OUT (see mime_extract). */
static int
mime_extract_stream(GMimeStream *stream, const struct mime_limits *limits,
    struct mime_message **out, char *err, size_t errsz)
{
	struct mime_ctx ctx;
	GMimeParser *parser;
	GMimeParserOptions *options;
	GMimeMessage *message;
	GMimeStream *cat = NULL;
	gint64 split;

	memset(&ctx, 0, sizeof(ctx));
	mime_limits_resolve(limits, &ctx.lim);
	split = mime_missing_separator(stream);
	if (split > 0) {
		/* headers, a blank line, then the rest as the body */
		GMimeStream *part;

		cat = g_mime_stream_cat_new();
		part = g_mime_stream_substream(stream, 0, split);
		g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), part);
		g_object_unref(part);
		part = g_mime_stream_mem_new_with_buffer("\r\n", 2);
		g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), part);
		g_object_unref(part);
		part = g_mime_stream_substream(stream, split, -1);
		g_mime_stream_cat_add_source(GMIME_STREAM_CAT(cat), part);
		g_object_unref(part);
		stream = cat;
	}
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	options = g_mime_parser_options_new();
	message = g_mime_parser_construct_message(parser, options);
	g_mime_parser_options_free(options);
	g_object_unref(parser);
	if (cat != NULL)
		g_object_unref(cat);
	if (message == NULL) {
		snprintf(err, errsz, "not a MIME message");
		return -1;
	}
	ctx.msg = calloc(1, sizeof(*ctx.msg));
	if (ctx.msg == NULL) {
		g_object_unref(message);
		snprintf(err, errsz, "out of memory");
		return -2;
	}
	ctx.msg->no_separator = split > 0;
	mime_walk(&ctx, g_mime_message_get_mime_part(message), 0,
	    MIME_ROLE_BODY);
	g_object_unref(message);
	if (ctx.oom) {
		mime_message_free(ctx.msg);
		if (ctx.spill_errno != 0)
			snprintf(err, errsz, "cannot keep an attachment in %s: %s",
			    ctx.lim.spill_dir, strerror(ctx.spill_errno));
		else
			snprintf(err, errsz, "out of memory");
		return -2;
	}
	mime_mark_inline(ctx.msg);
	*out = ctx.msg;
	return 0;
}

/* Parse the message file at PATH. */
int
mime_extract(const char *path, const struct mime_limits *limits,
    struct mime_message **out, char *err, size_t errsz)
{
	GMimeStream *stream;
	int fd, rc;

	*out = NULL;
	hdr_init();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsz, "open %s: %s", path, strerror(errno));
		return -1;
	}
	/* owns fd from here; a spool file's trailer is not the message's */
	stream = limits != NULL && limits->file_len > 0 &&
	    limits->file_len <= (uint64_t)INT64_MAX ?
	    g_mime_stream_fs_new_with_bounds(fd, 0, (gint64)limits->file_len) :
	    g_mime_stream_fs_new(fd);
	rc = mime_extract_stream(stream, limits, out, err, errsz);
	g_object_unref(stream);
	return rc;
}

/* Parse a message held in memory. */
int
mime_extract_mem(const void *data, size_t len,
    const struct mime_limits *limits, struct mime_message **out,
    char *err, size_t errsz)
{
	GMimeStream *stream;
	int rc;

	*out = NULL;
	hdr_init();
	if (len > (size_t)G_MAXSSIZE) {
		snprintf(err, errsz, "message too large");
		return -1;
	}
	stream = g_mime_stream_mem_new_with_buffer(data, len);
	rc = mime_extract_stream(stream, limits, out, err, errsz);
	g_object_unref(stream);
	return rc;
}
