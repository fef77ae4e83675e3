/*
 * test_mime.c - unit tests for common/mime.c: body choice
 * (multipart/alternative, related with cid: images, mixed), message/rfc822
 * as .eml, charsets (Latin-1, ISO-2022-JP, broken UTF-8), the caps, file
 * name sanitising, winmail.dat (a TNEF built here, and every TNEF of
 * ../shared/corpus/tnef checked against its .list), and a sweep of
 * ../shared/corpus/eml and ../shared/corpus/mimekit.
 *
 * Run from the repository root (or set HALO_SRCDIR to it); the corpus
 * tests skip when ../shared/corpus is absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "html.h"
#include "mime.h"

#define CORPUS_REL "../shared/corpus"

/* A copy of S with every "\n" turned into "\r\n" (spool files are CRLF). */
static char *
crlf(const char *s)
{
	size_t n = 0, i;
	char *out;

	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\n' ? 2 : 1;
	out = malloc(n + 1);
	assert_non_null(out);
	for (i = 0, n = 0; s[i] != '\0'; i++) {
		if (s[i] == '\n')
			out[n++] = '\r';
		out[n++] = s[i];
	}
	out[n] = '\0';
	return out;
}

/* Write LEN bytes to a new temporary file; its path is returned
 * (g_free'd by the caller after unlink). */
static char *
write_temp(const void *data, size_t len)
{
	char *path = g_build_filename(g_get_tmp_dir(), "test_mime.XXXXXX", NULL);
	int fd = g_mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Extract the message TEMPLATE ("\n" line ends, sent as CRLF) through a
 * file, under LIMITS; fails the test on error. */
static struct mime_message *
extract(const char *template, const struct mime_limits *limits)
{
	struct mime_message *m = NULL;
	char err[256] = "";
	char *msg = crlf(template), *path;
	int rc;

	path = write_temp(msg, strlen(msg));
	rc = mime_extract(path, limits, &m, err, sizeof(err));
	unlink(path);
	g_free(path);
	free(msg);
	if (rc != 0)
		fail_msg("mime_extract: %s", err);
	assert_non_null(m);
	return m;
}

/* The attachment named NAME, or NULL. */
static const struct mime_attachment *
find_att(const struct mime_message *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n_attachments; i++)
		if (strcmp(m->attachments[i].filename, name) == 0)
			return &m->attachments[i];
	return NULL;
}

/* multipart/alternative: the HTML preferred, the text kept too. */
static void
test_alternative(void **state)
{
	struct mime_message *m;

	(void)state;
	m = extract(
	    "From: a@example.com\n"
	    "To: b@example.com\n"
	    "Subject: alt\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/alternative; boundary=\"ALT\"\n"
	    "\n"
	    "--ALT\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "\n"
	    "Hello plain\n"
	    "second line\n"
	    "--ALT\n"
	    "Content-Type: text/html; charset=utf-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n"
	    "\n"
	    "<p>Hello <b>html</b> =E2=82=AC</p>\n"
	    "--ALT\n"
	    "Content-Type: text/calendar; method=REQUEST\n"
	    "\n"
	    "BEGIN:VCALENDAR\n"
	    "--ALT--\n", NULL);
	assert_non_null(m->html);
	assert_non_null(strstr(m->html, "<p>Hello <b>html</b> \xe2\x82\xac</p>"));
	assert_non_null(m->text);
	assert_string_equal(m->text, "Hello plain\nsecond line");
	assert_int_equal(m->n_attachments, 0);  /* other renderings left out */
	assert_false(m->truncated);
	mime_message_free(m);
}

/* multipart/related: the HTML root, cid: parts as inline attachments. */
static void
test_related_cid(void **state)
{
	const struct mime_attachment *logo, *spare;
	struct mime_message *m;

	(void)state;
	m = extract(
	    "From: a@example.com\n"
	    "Subject: related\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/related; boundary=\"REL\"; type=\"text/html\"\n"
	    "\n"
	    "--REL\n"
	    "Content-Type: text/html; charset=us-ascii\n"
	    "\n"
	    "<p>Logo: <img src=\"cid:logo@example.com\"></p>\n"
	    "--REL\n"
	    "Content-Type: image/png; name=\"logo.png\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-ID: <logo@example.com>\n"
	    "\n"
	    "iVBORw0KGgo=\n"
	    "--REL\n"
	    "Content-Type: image/gif\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-ID: <spare@example.com>\n"
	    "\n"
	    "R0lGODlh\n"
	    "--REL--\n", NULL);
	assert_non_null(m->html);
	assert_null(m->text);
	assert_int_equal(m->n_attachments, 2);
	logo = find_att(m, "logo.png");
	assert_non_null(logo);
	assert_string_equal(logo->content_type, "image/png");
	assert_string_equal(logo->content_id, "logo@example.com");
	assert_true(logo->is_inline);
	assert_int_equal(logo->len, 8);
	assert_memory_equal(logo->data, "\x89PNG\r\n\x1a\n", 8);
	assert_false(logo->over_cap);
	assert_int_equal(logo->original_len, 8);
	spare = find_att(m, "attachment-2.gif");    /* type gives the extension */
	assert_non_null(spare);
	assert_false(spare->is_inline);         /* not referenced */
	assert_string_equal(spare->content_id, "spare@example.com");
	mime_message_free(m);
}

/* multipart/mixed: the first text is the body, the rest attachments. */
static void
test_mixed_attachments(void **state)
{
	const struct mime_attachment *a;
	struct mime_message *m;

	(void)state;
	m = extract(
	    "From: a@example.com\n"
	    "Subject: mixed\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"MIX\"\n"
	    "\n"
	    "preamble\n"
	    "--MIX\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "The body.\n"
	    "--MIX\n"
	    "Content-Type: application/pdf; name=\"report.pdf\"\n"
	    "Content-Disposition: attachment; filename=\"report.pdf\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "JVBERi0xLjQK\n"
	    "--MIX\n"
	    "Content-Type: text/plain; name=\"notes.txt\"\n"
	    "Content-Disposition: attachment\n"
	    "\n"
	    "notes\n"
	    "--MIX\n"
	    "Content-Type: text/html\n"
	    "\n"
	    "<p>second text part</p>\n"
	    "--MIX\n"
	    "Content-Type: image/jpeg\n"
	    "Content-Disposition: inline; filename=\"photo.jpg\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "/9j/4AAQ\n"
	    "--MIX--\n"
	    "epilogue\n", NULL);
	assert_non_null(m->text);
	assert_string_equal(m->text, "The body.");
	assert_null(m->html);
	assert_int_equal(m->n_attachments, 4);
	a = find_att(m, "report.pdf");
	assert_non_null(a);
	assert_string_equal(a->content_type, "application/pdf");
	assert_int_equal(a->len, 9);
	assert_memory_equal(a->data, "%PDF-1.4\n", 9);
	assert_false(a->is_inline);
	assert_null(a->content_id);
	a = find_att(m, "notes.txt");
	assert_non_null(a);
	assert_int_equal(a->len, 5);
	assert_memory_equal(a->data, "notes", 5);
	a = find_att(m, "attachment-3.html");
	assert_non_null(a);
	assert_string_equal(a->content_type, "text/html");
	a = find_att(m, "photo.jpg");
	assert_non_null(a);
	assert_true(a->is_inline);              /* inline image */
	mime_message_free(m);
}

/* message/rfc822 parts become .eml attachments. */
static void
test_nested_message(void **state)
{
	const struct mime_attachment *a;
	struct mime_message *m;

	(void)state;
	m = extract(
	    "From: a@example.com\n"
	    "Subject: fwd\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"OUT\"\n"
	    "\n"
	    "--OUT\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "See attached.\n"
	    "--OUT\n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "From: c@example.com\n"
	    "Subject: =?utf-8?q?Inner_caf=C3=A9_/_report?=\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/alternative; boundary=\"IN\"\n"
	    "\n"
	    "--IN\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "inner body\n"
	    "--IN--\n"
	    "--OUT\n"
	    "Content-Type: message/rfc822; name=\"given.eml\"\n"
	    "\n"
	    "Subject: second\n"
	    "\n"
	    "x\n"
	    "--OUT--\n", NULL);
	assert_string_equal(m->text, "See attached.");
	assert_int_equal(m->n_attachments, 2);
	a = &m->attachments[0];
	/* the subject, decoded, its '/' no path separator */
	assert_string_equal(a->filename, "Inner caf\xc3\xa9 _ report.eml");
	assert_string_equal(a->content_type, "message/rfc822");
	assert_non_null(a->data);
	assert_true(a->len > 0);
	assert_int_equal(a->len, a->original_len);
	assert_non_null(g_strstr_len((const char *)a->data, (gssize)a->len,
	    "inner body"));
	assert_non_null(g_strstr_len((const char *)a->data, (gssize)a->len,
	    "From: c@example.com"));
	assert_string_equal(m->attachments[1].filename, "given.eml");
	mime_message_free(m);
}

/* Latin-1 (read as Windows-1252), undeclared 8-bit, broken UTF-8. */
static void
test_latin1_charsets(void **state)
{
	struct mime_message *m;

	(void)state;
	m = extract(
	    "Subject: latin\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=\"ISO-8859-1\"\n"
	    "Content-Transfer-Encoding: quoted-printable\n"
	    "\n"
	    "caf=E9 na=EFve =80 10\n", NULL);
	assert_string_equal(m->text, "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 10\n");
	mime_message_free(m);

	m = extract(
	    "Subject: undeclared\n"
	    "\n"
	    "d\xe9j\xe0 vu\n", NULL);
	assert_string_equal(m->text, "d\xc3\xa9j\xc3\xa0 vu\n");
	mime_message_free(m);

	m = extract(
	    "Subject: broken utf-8\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/html; charset=utf-8\n"
	    "\n"
	    "<p>ok \xc3\xa9 bad \xff\xfe \xc3 end</p>\n", NULL);
	assert_non_null(m->html);
	assert_true(g_utf8_validate(m->html, -1, NULL));
	assert_non_null(strstr(m->html, "ok \xc3\xa9 bad "));
	assert_non_null(strstr(m->html, "\xef\xbf\xbd"));
	mime_message_free(m);

	m = extract(
	    "Subject: unknown charset\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=x-no-such-charset\n"
	    "\n"
	    "plain ascii\n", NULL);
	assert_string_equal(m->text, "plain ascii\n");
	mime_message_free(m);
}

/* ISO-2022-JP (stateful) and Shift_JIS in base64. */
static void
test_japanese_charsets(void **state)
{
	struct mime_message *m;

	(void)state;
	m = extract(
	    "Subject: jp\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=ISO-2022-JP\n"
	    "Content-Transfer-Encoding: 7bit\n"
	    "\n"
	    "\x1b$B$3$s$K$A$O\x1b(B world\n", NULL);
	assert_string_equal(m->text,
	    "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf world\n");
	mime_message_free(m);

	/* "日本" in Shift_JIS is 93 FA 96 7B: base64 k/qWew== */
	m = extract(
	    "Subject: sjis\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=Shift_JIS\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "k/qWew==\n", NULL);
	assert_string_equal(m->text, "\xe6\x97\xa5\xe6\x9c\xac");
	mime_message_free(m);
}

/* A base64 attachment over max_attachment: no bytes, the size kept. */
static void
test_over_cap(void **state)
{
	struct mime_limits limits = { .max_attachment = 1000, .max_total = 1500 };
	const struct mime_attachment *a;
	struct mime_message *m;
	unsigned char raw[3000];
	gchar *b64, *msg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 7);
	b64 = g_base64_encode(raw, sizeof(raw));
	msg = g_strdup_printf(
	    "Subject: big\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"B\"\n"
	    "\n"
	    "--B\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "body\n"
	    "--B\n"
	    "Content-Type: application/octet-stream; name=\"big.bin\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "%s\n"
	    "--B\n"
	    "Content-Type: application/octet-stream; name=\"small1.bin\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "%.1064s\n"       /* 798 bytes */
	    "--B\n"
	    "Content-Type: application/octet-stream; name=\"small2.bin\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "%.1064s\n"       /* 798 more: over max_total */
	    "--B--\n", b64, b64, b64);
	m = extract(msg, &limits);
	assert_true(m->truncated);
	a = find_att(m, "big.bin");
	assert_non_null(a);
	assert_true(a->over_cap);
	assert_null(a->data);
	assert_int_equal(a->len, 0);
	assert_int_equal(a->original_len, sizeof(raw));
	a = find_att(m, "small1.bin");
	assert_non_null(a);
	assert_false(a->over_cap);
	assert_int_equal(a->len, 798);
	assert_memory_equal(a->data, raw, 798);
	a = find_att(m, "small2.bin");
	assert_non_null(a);
	assert_true(a->over_cap);
	assert_null(a->data);
	assert_int_equal(a->original_len, 798);
	mime_message_free(m);
	g_free(msg);
	g_free(b64);
}

/* Bodies are cut at max_text, between characters. */
static void
test_text_cap(void **state)
{
	struct mime_limits limits = { .max_text = 10 };
	struct mime_message *m;

	(void)state;
	m = extract(
	    "Subject: long\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "\n"
	    "abcdefgh\xc3\xa9\xc3\xa9\xc3\xa9 and more\n", &limits);
	assert_true(m->truncated);
	assert_string_equal(m->text, "abcdefgh\xc3\xa9");
	mime_message_free(m);
}

/* Too many parts or too deep: what fits is kept, truncated is set. */
static void
test_parts_and_depth(void **state)
{
	struct mime_limits limits = { .max_parts = 4, .max_depth = 3 };
	GString *msg = g_string_new("Subject: many\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"P\"\n\n");
	struct mime_message *m;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		g_string_append_printf(msg, "--P\nContent-Type: text/plain; "
		    "name=\"f%d.txt\"\nContent-Disposition: attachment\n\n%d\n", i, i);
	g_string_append(msg, "--P--\n");
	m = extract(msg->str, &limits);
	assert_true(m->truncated);
	/* 1 multipart + 3 parts read; the other 7 named, not read */
	assert_int_equal(m->n_attachments, 10);
	for (i = 0; i < 10; i++) {
		const struct mime_attachment *a = &m->attachments[i];
		char want[32];

		snprintf(want, sizeof(want), "f%d.txt", i);
		assert_string_equal(a->filename, want);
		assert_int_equal(a->skip, i < 3 ? MIME_SKIP_NONE : MIME_SKIP_LIMIT);
		if (i >= 3) {
			assert_null(a->data);
			assert_false(a->over_cap);
		}
	}
	assert_int_equal(m->n_unlisted, 0);
	mime_message_free(m);
	g_string_free(msg, TRUE);

	msg = g_string_new("Subject: deep\nMIME-Version: 1.0\n");
	for (i = 0; i < 30; i++)
		g_string_append_printf(msg, "Content-Type: multipart/mixed; "
		    "boundary=\"D%d\"\n\n--D%d\n", i, i);
	g_string_append(msg, "Content-Type: text/plain\n\ndeep body\n");
	for (i = 29; i >= 0; i--)
		g_string_append_printf(msg, "--D%d--\n", i);
	m = extract(msg->str, &limits);
	assert_true(m->truncated);
	assert_null(m->text);
	mime_message_free(m);
	g_string_free(msg, TRUE);
}

/* File names: last path component, no controls, bounded, defaults. */
static void
test_filenames(void **state)
{
	static const struct {
		const char *param;
		const char *want;
	} cases[] = {
		{ "filename=\"../../etc/passwd\"", "passwd" },
		{ "filename=\"C:\\\\Users\\\\x\\\\evil.exe\"", "evil.exe" },
		{ "filename*=utf-8''%E2%80%AEgnp.exe", "gnp.exe" },
		{ "filename=\"=?utf-8?q?a=01b=0A.txt?=\"", "ab.txt" },
		{ "filename=\"  spaced name.doc  \"", "spaced name.doc" },
		{ "filename=\"..\"", "attachment-1" },
		{ "filename=\"dir/\"", "attachment-1" },
		{ "filename*=iso-8859-1''r%E9sum%E9.pdf", "r\xc3\xa9sum\xc3\xa9.pdf" },
		{ "", "attachment-1" },
	};
	struct mime_message *m;
	GString *longname;
	size_t i;
	char *msg;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msg = g_strdup_printf(
		    "Subject: names\n"
		    "MIME-Version: 1.0\n"
		    "Content-Type: application/octet-stream\n"
		    "Content-Disposition: attachment; %s\n"
		    "\n"
		    "data\n", cases[i].param);
		m = extract(msg, NULL);
		assert_int_equal(m->n_attachments, 1);
		if (strcmp(m->attachments[0].filename, cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].param,
			    m->attachments[0].filename, cases[i].want);
		mime_message_free(m);
		g_free(msg);
	}

	longname = g_string_new("");
	for (i = 0; i < 150; i++)
		g_string_append(longname, "\xc3\xa9");        /* 300 bytes */
	msg = g_strdup_printf("Subject: long\nMIME-Version: 1.0\n"
	    "Content-Type: application/pdf\n"
	    "Content-Disposition: attachment; filename*=utf-8''%s.pdf\n\nx\n",
	    longname->str);
	m = extract(msg, NULL);
	assert_true(strlen(m->attachments[0].filename) <= MIME_FILENAME_MAX);
	assert_true(g_str_has_suffix(m->attachments[0].filename, ".pdf"));
	assert_true(g_utf8_validate(m->attachments[0].filename, -1, NULL));
	mime_message_free(m);
	g_free(msg);
	g_string_free(longname, TRUE);
}

/* multipart/signed: the content, not the signature. */
static void
test_signed(void **state)
{
	struct mime_message *m;

	(void)state;
	m = extract(
	    "Subject: signed\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/signed; protocol=\"application/pgp-signature\";"
	    " micalg=pgp-sha256; boundary=\"S\"\n"
	    "\n"
	    "--S\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "signed text\n"
	    "--S\n"
	    "Content-Type: application/pgp-signature; name=\"signature.asc\"\n"
	    "\n"
	    "-----BEGIN PGP SIGNATURE-----\n"
	    "--S--\n", NULL);
	assert_string_equal(m->text, "signed text");
	assert_int_equal(m->n_attachments, 0);
	mime_message_free(m);
}

/* Errors: a missing file; a message from memory matches the file. */
static void
test_errors_and_mem(void **state)
{
	static const char msg[] = "Subject: mem\r\n\r\nfrom memory\r\n";
	struct mime_message *m = (struct mime_message *)&m;
	char err[256] = "";

	(void)state;
	assert_int_equal(mime_extract("/nonexistent/dir/msg.eml", NULL, &m, err,
	    sizeof(err)), -1);
	assert_null(m);
	assert_non_null(strstr(err, "/nonexistent/dir/msg.eml"));
	assert_int_equal(mime_extract_mem(msg, sizeof(msg) - 1, NULL, &m, err,
	    sizeof(err)), 0);
	assert_string_equal(m->text, "from memory\n");     /* CRLF -> LF */
	m = mime_message_free(m);
	assert_null(m);
	assert_null(mime_message_free(NULL));
}

/* --- TNEF --------------------------------------------------------------- */

/* Append a TNEF attribute (LEVEL, ID, DATA of LEN bytes) to BUF. */
static void
tnef_attr(GByteArray *buf, uint8_t level, uint32_t id, const void *data,
    uint32_t len)
{
	uint8_t head[9], tail[2];
	const uint8_t *p = data;
	unsigned sum = 0;
	uint32_t i;

	head[0] = level;
	for (i = 0; i < 4; i++) {
		head[1 + i] = (uint8_t)(id >> (8 * i));
		head[5 + i] = (uint8_t)(len >> (8 * i));
	}
	for (i = 0; i < len; i++)
		sum += p[i];
	tail[0] = (uint8_t)sum;
	tail[1] = (uint8_t)(sum >> 8);
	g_byte_array_append(buf, head, 9);
	g_byte_array_append(buf, data, len);
	g_byte_array_append(buf, tail, 2);
}

/* Entries in directory DIR other than . and .. */
static size_t
dir_entries(const char *dir)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* A (in memory) and B (spilled) hold the same attachments, byte for byte. */
static void
same_attachments(const char *what, const struct mime_message *a,
    const struct mime_message *b)
{
	size_t i;

	if (b->n_attachments != a->n_attachments ||
	    b->truncated != a->truncated)
		fail_msg("%s: spilled: other attachments", what);
	for (i = 0; i < a->n_attachments; i++) {
		const struct mime_attachment *x = &a->attachments[i];
		const struct mime_attachment *y = &b->attachments[i];

		if (strcmp(x->filename, y->filename) != 0 || x->skip != y->skip ||
		    x->len != y->len || x->original_len != y->original_len ||
		    (x->data == NULL) != (y->data == NULL) ||
		    y->mapped != (y->data != NULL && y->len > 0) ||
		    (x->len > 0 && memcmp(x->data, y->data, x->len) != 0))
			fail_msg("%s: spilled: attachment %zu differs", what, i);
	}
}

/* A message: a text body and a winmail.dat of LEN bytes at TNEF, read
 * under LIMITS. */
static struct mime_message *
extract_with_tnef(const uint8_t *tnef, size_t len,
    const struct mime_limits *limits)
{
	struct mime_message *m;
	gchar *b64 = g_base64_encode(tnef, len), *msg;

	msg = g_strdup_printf(
	    "From: outlook@example.com\n"
	    "Subject: winmail\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"TNEF\"\n"
	    "\n"
	    "--TNEF\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "plain body\n"
	    "--TNEF\n"
	    "Content-Type: application/ms-tnef; name=\"winmail.dat\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"winmail.dat\"\n"
	    "\n"
	    "%s\n"
	    "--TNEF--\n", b64);
	m = extract(msg, limits);
	g_free(msg);
	g_free(b64);
	return m;
}

/* A TNEF built here: two files come out, the winmail.dat goes; broken
 * ones stay as winmail.dat. */
static void
test_tnef_built(void **state)
{
	static const uint8_t head[] = { 0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00 };
	static const uint8_t version[] = { 0x00, 0x00, 0x01, 0x00 };
	uint8_t rend[14] = { 0x01, 0x00, 0xff, 0xff, 0xff, 0xff };
	struct mime_limits limits = { .max_attachment = 100 };
	const struct mime_attachment *a;
	struct mime_message *m;
	GByteArray *t = g_byte_array_new();

	(void)state;
	g_byte_array_append(t, head, sizeof(head));
	tnef_attr(t, 1, 0x00089006, version, sizeof(version));
	tnef_attr(t, 2, 0x00069002, rend, sizeof(rend));
	tnef_attr(t, 2, 0x00018010, "hello.txt", 10);
	tnef_attr(t, 2, 0x0006800f, "Hello, TNEF", 11);
	tnef_attr(t, 2, 0x00069002, rend, sizeof(rend));
	tnef_attr(t, 2, 0x00018010, "../empty.dat", 13);
	tnef_attr(t, 2, 0x0006800f, "", 0);
	m = extract_with_tnef(t->data, t->len, NULL);
	assert_string_equal(m->text, "plain body");
	assert_int_equal(m->n_attachments, 2);
	a = find_att(m, "hello.txt");
	assert_non_null(a);
	assert_true(a->from_tnef);
	assert_int_equal(a->len, 11);
	assert_memory_equal(a->data, "Hello, TNEF", 11);
	a = find_att(m, "empty.dat");
	assert_non_null(a);
	assert_true(a->from_tnef);
	assert_int_equal(a->len, 0);
	assert_null(find_att(m, "winmail.dat"));
	mime_message_free(m);

	/* a bad checksum on the first file's data (at 6 + 15 + 25 + 21, after
	 * its 9-byte header): that file is lost, so winmail.dat stays */
	assert_int_equal(t->len, 149);
	t->data[67 + 9] ^= 0x01;
	m = extract_with_tnef(t->data, t->len, NULL);
	a = find_att(m, "winmail.dat");
	assert_non_null(a);
	assert_false(a->from_tnef);
	assert_string_equal(a->content_type, "application/ms-tnef");
	mime_message_free(m);

	/* not TNEF at all */
	m = extract_with_tnef((const uint8_t *)"not a tnef stream", 17, NULL);
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].filename, "winmail.dat");
	assert_int_equal(m->attachments[0].len, 17);
	mime_message_free(m);

	/* cut short inside the first file's data */
	m = extract_with_tnef(t->data, 67 + 15, NULL);
	assert_non_null(find_att(m, "winmail.dat"));
	mime_message_free(m);

	/* over max_attachment: unpacked as far as the cap, kept over the cap */
	t->data[67 + 9] ^= 0x01;        /* the checksum is right again */
	m = extract_with_tnef(t->data, t->len, &limits);
	assert_true(m->truncated);
	a = find_att(m, "hello.txt");
	assert_non_null(a);
	assert_int_equal(a->len, 11);
	assert_null(find_att(m, "empty.dat"));
	a = find_att(m, "winmail.dat");
	assert_non_null(a);
	assert_true(a->over_cap);
	assert_int_equal(a->original_len, 149);
	mime_message_free(m);
	g_byte_array_free(t, TRUE);
}

/* Path of the shared corpus directory SUB, or NULL when absent. */
static char *
corpus_dir(const char *sub)
{
	const char *top = getenv("HALO_SRCDIR");
	char *path = g_build_filename(top != NULL ? top : ".", CORPUS_REL, sub,
	    NULL);

	if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_free(path);
		return NULL;
	}
	return path;
}

/* g_ptr_array_sort hands pointers to the elements. */
static gint
cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the regular files in DIR ending in SUFFIX (NULL: all);
 * a NULL-terminated g_strfreev list. */
static char **
list_dir(const char *dir, const char *suffix)
{
	GPtrArray *names = g_ptr_array_new();
	const gchar *name;
	GDir *d = g_dir_open(dir, 0, NULL);

	assert_non_null(d);
	while ((name = g_dir_read_name(d)) != NULL)
		if (suffix == NULL || g_str_has_suffix(name, suffix))
			g_ptr_array_add(names, g_strdup(name));
	g_dir_close(d);
	g_ptr_array_sort(names, cmp_names);
	g_ptr_array_add(names, NULL);
	return (char **)g_ptr_array_free(names, FALSE);
}

/* Every corpus TNEF, sent as winmail.dat, against its .list: each listed
 * name comes out (body.html means an HTML body; body.rtf is left out, as
 * RTF bodies are). Where libytnef rejects part of a file, the winmail.dat
 * must be kept. */
static void
test_tnef_corpus(void **state)
{
	char *dir = corpus_dir("tnef"), **files, *path, *list, **lines;
	size_t i, j, k, full = 0, partial = 0, names_ok = 0, names_missing = 0;
	gsize len;
	struct mime_limits spill = { 0 };
	struct mime_message *m, *s;
	gchar *spill_dir;

	(void)state;
	if (dir == NULL) {
		print_message("skipped: " CORPUS_REL "/tnef not found\n");
		skip();
	}
	spill_dir = g_dir_make_tmp("test_mime_tnef.XXXXXX", NULL);
	assert_non_null(spill_dir);
	spill.spill_dir = spill_dir;
	files = list_dir(dir, ".tnef");
	for (i = 0; files[i] != NULL; i++) {
		gchar *data;
		bool kept, html_wanted = false;

		path = g_build_filename(dir, files[i], NULL);
		assert_true(g_file_get_contents(path, &data, &len, NULL));
		g_free(path);
		m = extract_with_tnef((const uint8_t *)data, len, NULL);
		/* unpacked files spilled too: the same bytes */
		s = extract_with_tnef((const uint8_t *)data, len, &spill);
		same_attachments(files[i], m, s);
		mime_message_free(s);
		g_free(data);
		kept = find_att(m, "winmail.dat") != NULL;
		if (kept)
			partial++;
		else
			full++;

		path = g_build_filename(dir, files[i], NULL);
		strcpy(path + strlen(path) - 5, ".list");
		list = NULL;
		if (!g_file_get_contents(path, &list, &len, NULL))
			list = g_strdup("");
		g_free(path);
		lines = g_strsplit(list, "\n", -1);
		for (j = 0; lines[j] != NULL; j++) {
			char *name = g_strstrip(lines[j]);
			bool found = false;

			if (*name == '\0' || strcmp(name, "body.rtf") == 0)
				continue;
			if (strcmp(name, "body.html") == 0) {
				html_wanted = true;
				continue;
			}
			for (k = 0; k < m->n_attachments; k++)
				if (m->attachments[k].from_tnef &&
				    strcmp(m->attachments[k].filename, name) == 0)
					found = true;
			if (found)
				names_ok++;
			else {
				names_missing++;
				print_message("note: %s: \"%s\" not unpacked (%s)\n",
				    files[i], name, kept ? "winmail.dat kept" :
				    "NOT KEPT");
				if (!kept)
					fail_msg("%s: \"%s\" lost", files[i], name);
			}
		}
		if (html_wanted && m->html == NULL && !kept)
			fail_msg("%s: no HTML body", files[i]);
		for (k = 0; k < m->n_attachments; k++)
			assert_true(strlen(m->attachments[k].filename) <=
			    MIME_FILENAME_MAX);
		g_strfreev(lines);
		g_free(list);
		mime_message_free(m);
	}
	assert_int_equal(dir_entries(spill_dir), 0);
	assert_int_equal(rmdir(spill_dir), 0);
	g_free(spill_dir);
	print_message("tnef corpus: %zu files, %zu unpacked whole, %zu with "
	    "winmail.dat kept; %zu listed names found, %zu not\n",
	    full + partial, full, partial, names_ok, names_missing);
	assert_true(full > 0);
	g_strfreev(files);
	g_free(dir);
}

/* Check what mime.h promises about M. */
static void
check_message(const char *name, const struct mime_message *m)
{
	size_t i;
	char *html;

	if (m->html != NULL && !g_utf8_validate(m->html, -1, NULL))
		fail_msg("%s: html not UTF-8", name);
	if (m->text != NULL && !g_utf8_validate(m->text, -1, NULL))
		fail_msg("%s: text not UTF-8", name);
	for (i = 0; i < m->n_attachments; i++) {
		const struct mime_attachment *a = &m->attachments[i];
		const char *p;

		if (a->filename == NULL || *a->filename == '\0' ||
		    strlen(a->filename) > MIME_FILENAME_MAX ||
		    !g_utf8_validate(a->filename, -1, NULL))
			fail_msg("%s: bad file name", name);
		for (p = a->filename; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == '/' || *p == '\\')
				fail_msg("%s: bad file name %s", name, a->filename);
		if (a->content_type == NULL || strchr(a->content_type, '/') == NULL)
			fail_msg("%s: bad content type", name);
		if (a->over_cap != (a->data == NULL))
			fail_msg("%s: over_cap and data disagree", name);
		if (!a->over_cap && a->len != a->original_len)
			fail_msg("%s: len != original_len", name);
	}
	if (m->html != NULL) {
		html = html_sanitize(m->html, strlen(m->html), NULL);
		assert_non_null(html);
		free(html);
	}
	if (m->text != NULL) {
		html = html_from_text(m->text, strlen(m->text), true);
		assert_non_null(html);
		free(html);
	}
}

/* Every file of the shared mail corpus: no crash, 0 or a clean error. */
static void
test_corpus_sweep(void **state)
{
	static const char *const subs[] = { "eml/malformed", "eml/rfc",
	    "eml/thirdparty", "mimekit", NULL };
	size_t i, j, ok = 0, failed = 0;
	char *dir, **files, *path;
	struct mime_limits spill = { 0 };
	struct mime_message *m, *s;
	char err[256];
	gchar *spill_dir;
	bool any = false;

	(void)state;
	spill_dir = g_dir_make_tmp("test_mime_sweep.XXXXXX", NULL);
	assert_non_null(spill_dir);
	spill.spill_dir = spill_dir;
	for (i = 0; subs[i] != NULL; i++) {
		dir = corpus_dir(subs[i]);
		if (dir == NULL)
			continue;
		any = true;
		files = list_dir(dir, NULL);
		for (j = 0; files[j] != NULL; j++) {
			if (strcmp(files[j], "COPYING") == 0 ||
			    g_str_has_prefix(files[j], "LICENSE"))
				continue;
			path = g_build_filename(dir, files[j], NULL);
			err[0] = '\0';
			m = NULL;
			if (mime_extract(path, NULL, &m, err, sizeof(err)) == 0) {
				check_message(path, m);
				/* spilled to files: the same attachments */
				s = NULL;
				if (mime_extract(path, &spill, &s, err,
				    sizeof(err)) != 0)
					fail_msg("%s: with spill_dir: %s", path, err);
				same_attachments(path, m, s);
				mime_message_free(s);
				mime_message_free(m);
				ok++;
			} else {
				if (m != NULL || err[0] == '\0')
					fail_msg("%s: unclean error", path);
				print_message("note: %s: %s\n", path, err);
				failed++;
			}
			g_free(path);
		}
		g_strfreev(files);
		g_free(dir);
	}
	assert_int_equal(dir_entries(spill_dir), 0);
	assert_int_equal(rmdir(spill_dir), 0);
	g_free(spill_dir);
	if (!any) {
		print_message("skipped: " CORPUS_REL " not found\n");
		skip();
	}
	print_message("corpus sweep: %zu parsed, %zu refused cleanly\n", ok,
	    failed);
}

/* --- issue 17: one golden message per defect shape -------------------- */

/* Extract tests/golden/NAME (written by tests/golden/mkmail.py). */
static struct mime_message *
golden(const char *name, const struct mime_limits *limits)
{
	const char *top = getenv("HALO_SRCDIR");
	struct mime_message *m = NULL;
	char err[256] = "", *path;

	path = g_build_filename(top != NULL ? top : ".", "tests", "golden", name,
	    NULL);
	if (mime_extract(path, limits, &m, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	g_free(path);
	assert_non_null(m);
	return m;
}

/* SHA-256 of an attachment's bytes starts with PREFIX (hex). */
static void
assert_sha(const struct mime_attachment *a, const char *prefix)
{
	gchar *hex;

	assert_non_null(a);
	assert_non_null(a->data);
	hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, a->data, a->len);
	if (strncmp(hex, prefix, strlen(prefix)) != 0)
		fail_msg("%s: sha256 %s, want %s...", a->filename, hex, prefix);
	g_free(hex);
}

/* The 52-byte PDF of the golden messages. */
#define GOLDEN_PDF_SHA "056502de"

/* A file name made of padded base64 words of one charset. */
static void
test_golden_encoded_filename(void **state)
{
	struct mime_message *m;

	(void)state;
	m = golden("subject-padded-words.eml", NULL);
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].filename, "facture-\xc3\xa9.pdf");
	assert_sha(&m->attachments[0], GOLDEN_PDF_SHA);
	mime_message_free(m);
}

/* Base64 without '=' padding loses nothing; uuencode whose lines lost
 * their trailing spaces comes out whole. */
static void
test_golden_tolerant_decoding(void **state)
{
	const struct mime_attachment *a;
	struct mime_message *m;

	(void)state;
	m = golden("base64-no-padding.eml", NULL);
	a = find_att(m, "invoice.pdf");
	assert_non_null(a);
	assert_int_equal(a->len, 52);
	assert_int_equal(a->skip, MIME_SKIP_NONE);
	assert_sha(a, GOLDEN_PDF_SHA);
	mime_message_free(m);

	m = golden("uuencode-stripped.eml", NULL);
	a = find_att(m, "table.bin");
	assert_non_null(a);
	assert_int_equal(a->len, 318);
	assert_int_equal(a->data[255], 255);
	assert_int_equal(a->data[317], 0);
	assert_sha(a, "5f4f7fab");
	mime_message_free(m);
}

/* What cannot be decoded faithfully is listed, not kept broken. */
static void
test_golden_damaged(void **state)
{
	const struct mime_attachment *a;
	struct mime_message *m;

	(void)state;
	m = golden("base64-damaged.eml", NULL);
	assert_int_equal(m->n_attachments, 3);
	a = find_att(m, "lone-digit.pdf");      /* a lone base64 digit */
	assert_non_null(a);
	assert_null(a->data);
	assert_int_equal(a->skip, MIME_SKIP_UNDECODABLE);
	assert_false(a->over_cap);
	a = find_att(m, "cut-short.pdf");       /* shorter than its size= */
	assert_non_null(a);
	assert_null(a->data);
	assert_int_equal(a->skip, MIME_SKIP_UNDECODABLE);
	assert_int_equal(a->original_len, 48);
	a = find_att(m, "good.pdf");            /* size= matches */
	assert_int_equal(a->skip, MIME_SKIP_NONE);
	assert_sha(a, GOLDEN_PDF_SHA);
	assert_non_null(mime_skip_reason(MIME_SKIP_UNDECODABLE));
	assert_null(mime_skip_reason(MIME_SKIP_NONE));
	mime_message_free(m);

	/* uuencode without "begin" */
	m = extract("Subject: uu\nMIME-Version: 1.0\n"
	    "Content-Type: application/octet-stream; name=\"x.bin\"\n"
	    "Content-Transfer-Encoding: x-uuencode\n\n"
	    "#86)C\n`\nend\n", NULL);
	assert_int_equal(m->n_attachments, 1);
	assert_int_equal(m->attachments[0].skip, MIME_SKIP_UNDECODABLE);
	mime_message_free(m);
	/* the same with "begin": "abc" */
	m = extract("Subject: uu\nMIME-Version: 1.0\n"
	    "Content-Type: application/octet-stream; name=\"x.bin\"\n"
	    "Content-Transfer-Encoding: x-uuencode\n\n"
	    "begin 644 x.bin\n#86)C\n`\nend\n", NULL);
	assert_int_equal(m->attachments[0].skip, MIME_SKIP_NONE);
	assert_int_equal(m->attachments[0].len, 3);
	assert_memory_equal(m->attachments[0].data, "abc", 3);
	mime_message_free(m);
	/* short uuencoded lines far longer decoded than encoded (bounds) */
	{
		GString *uu = g_string_new("Subject: uu\nMIME-Version: 1.0\n"
		    "Content-Type: application/octet-stream; name=\"z.bin\"\n"
		    "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 z\n");
		int i;

		for (i = 0; i < 20000; i++)
			g_string_append(uu, "M\n");
		g_string_append(uu, "end\n");
		m = extract(uu->str, NULL);
		assert_int_equal(m->attachments[0].len, 20000 * 45);
		assert_int_equal(m->attachments[0].data[20000 * 45 - 1], 0);
		mime_message_free(m);
		g_string_free(uu, TRUE);
	}
}

/* Apple Mail: the HTML side of an alternative is a mixed of HTML, image,
 * HTML; and the HTML side as a related. */
static void
test_golden_nested_html(void **state)
{
	const struct mime_attachment *a;
	struct mime_message *m;

	(void)state;
	m = golden("apple-nested-html.eml", NULL);
	assert_non_null(m->html);
	assert_non_null(strstr(m->html, "Here is the error:"));
	assert_non_null(strstr(m->html, "After the picture."));
	assert_string_equal(m->text, "Here is the error:\n\nAfter the picture.");
	assert_int_equal(m->n_attachments, 1);
	a = find_att(m, "screenshot.png");
	assert_non_null(a);
	assert_true(a->is_inline);
	mime_message_free(m);

	m = golden("alternative-related.eml", NULL);
	assert_non_null(m->html);
	assert_non_null(strstr(m->html, "cid:logo@x"));
	assert_string_equal(m->text, "Logo below.");
	assert_int_equal(m->n_attachments, 1);
	a = find_att(m, "attachment-1.png");
	assert_non_null(a);
	assert_true(a->is_inline);
	mime_message_free(m);
}

/* Past the part limit: every part is named; generated names carry an
 * extension from the content type. */
static void
test_golden_listed(void **state)
{
	struct mime_limits limits = { .max_parts = 0 };
	struct mime_message *m;
	size_t i, kept = 0, listed = 0;

	(void)state;
	m = golden("many-parts.eml", NULL);
	assert_true(m->truncated);
	assert_int_equal(m->n_attachments, 205);
	for (i = 0; i < m->n_attachments; i++) {
		char want[32];

		snprintf(want, sizeof(want), "file%03zu.txt", i);
		assert_string_equal(m->attachments[i].filename, want);
		if (m->attachments[i].skip == MIME_SKIP_NONE)
			kept++;
		else if (m->attachments[i].skip == MIME_SKIP_LIMIT)
			listed++;
	}
	/* 200 parts: the multipart, its text, 198 files */
	assert_int_equal(kept, 198);
	assert_int_equal(listed, 7);
	assert_int_equal(m->n_unlisted, 0);
	mime_message_free(m);

	m = golden("generated-names.eml", &limits);
	assert_int_equal(m->n_attachments, 4);
	assert_string_equal(m->attachments[0].filename, "attachment-1.png");
	assert_string_equal(m->attachments[1].filename, "attachment-2.html");
	assert_string_equal(m->attachments[2].filename, "attachment-3.pdf");
	assert_string_equal(m->attachments[3].filename, "attachment-4");
	mime_message_free(m);
}

/* No blank line after the headers; ISO-2022-JP with NEC characters. */
static void
test_golden_smaller(void **state)
{
	struct mime_message *m;

	(void)state;
	m = golden("no-blank-line.eml", NULL);
	assert_true(m->no_separator);
	assert_string_equal(m->text, "The body text.");
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].filename, "form.pdf");
	assert_sha(&m->attachments[0], GOLDEN_PDF_SHA);
	mime_message_free(m);

	/* a proper message is left alone; an mbox "From " line is a header */
	m = extract("From a@b Fri Dec  4 10:00:00 2026\nSubject: x\n\nbody\n",
	    NULL);
	assert_false(m->no_separator);
	assert_string_equal(m->text, "body\n");
	mime_message_free(m);

	m = golden("iso2022jp-nec.eml", NULL);
	/* "番号№ 1234" */
	assert_string_equal(m->text,
	    "\xe7\x95\xaa\xe5\x8f\xb7\xe2\x84\x96 1234\n");
	mime_message_free(m);
}

/* A part with two Content-Type headers, the first multipart: read as
 * that multipart (the first wins), not as raw MIME text. */
static void
test_duplicate_content_type(void **state)
{
	struct mime_message *m;

	(void)state;
	m = extract("Subject: dup\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/related; boundary=\"R\"\n\n"
	    "--R\n"
	    "Content-Type: multipart/alternative; boundary=\"A\"\n"
	    "Content-Type: text/plain; charset=UTF-8\n\n"
	    "--A\nContent-Type: text/plain\n\nPlain\n"
	    "--A\nContent-Type: text/html\n\n<p>HTML</p>\n"
	    "--A--\n"
	    "--R--\n", NULL);
	assert_non_null(m->html);
	assert_string_equal(m->html, "<p>HTML</p>");
	assert_string_equal(m->text, "Plain");
	assert_null(strstr(m->text, "Content-Type"));
	mime_message_free(m);
}

/* An alternative kept as an attachment keeps its HTML rendering, also
 * when the HTML is inside a related. */
static void
test_alternative_as_attachment(void **state)
{
	struct mime_message *m;

	(void)state;
	m = extract("Subject: alt\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"M\"\n\n"
	    "--M\nContent-Type: text/plain\n\nbody\n"
	    "--M\nContent-Type: multipart/alternative; boundary=\"A\"\n\n"
	    "--A\nContent-Type: text/plain\n\nP\n"
	    "--A\nContent-Type: multipart/related; boundary=\"R\"\n\n"
	    "--R\nContent-Type: text/html\n\n<html>E</html>\n"
	    "--R--\n"
	    "--A--\n"
	    "--M--\n", NULL);
	assert_string_equal(m->text, "body");
	assert_int_equal(m->n_attachments, 1);
	assert_string_equal(m->attachments[0].content_type, "text/html");
	assert_string_equal(m->attachments[0].filename, "attachment-1.html");
	mime_message_free(m);
}

/* spill_dir: every kept attachment is a read-only mapping of an unlinked
 * file, with the bytes, sizes and skips of the in-memory parse; nothing
 * is left in the directory; the caps still apply. */
static void
test_spill(void **state)
{
	struct mime_limits mem = { .max_attachment = 400000, .max_total = 500000 };
	struct mime_limits disk = mem;
	struct mime_message *a, *b;
	unsigned char *raw;
	const size_t big = 300001;
	gchar *b64, *msg, *dir;
	size_t i;

	(void)state;
	raw = malloc(big);
	assert_non_null(raw);
	for (i = 0; i < big; i++)
		raw[i] = (unsigned char)(i * 131 + (i >> 9));
	b64 = g_base64_encode(raw, big);
	msg = g_strdup_printf(
	    "Subject: spill\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"B\"\n"
	    "\n"
	    "--B\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "body\n"
	    "--B\n"
	    "Content-Type: application/octet-stream; name=\"big.bin\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "%s\n"
	    "--B\n"
	    "Content-Type: application/octet-stream; name=\"empty.bin\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "--B\n"
	    "Content-Type: text/csv; name=\"qp.csv\"\n"
	    "Content-Transfer-Encoding: quoted-printable\n"
	    "\n"
	    "a,b=3Dc\n"
	    "--B\n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "Subject: inner\n"
	    "\n"
	    "inner body\n"
	    "--B\n"
	    "Content-Type: application/octet-stream; name=\"again.bin\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "%s\n"         /* over max_total */
	    "--B--\n", b64, b64);
	dir = g_dir_make_tmp("test_mime_spill.XXXXXX", NULL);
	assert_non_null(dir);
	disk.spill_dir = dir;
	a = extract(msg, &mem);
	b = extract(msg, &disk);
	assert_int_equal(dir_entries(dir), 0);      /* unlinked while mapped */
	assert_int_equal(a->n_attachments, 5);
	assert_int_equal(b->n_attachments, a->n_attachments);
	assert_int_equal(b->truncated, a->truncated);
	for (i = 0; i < a->n_attachments; i++) {
		const struct mime_attachment *x = &a->attachments[i];
		const struct mime_attachment *y = &b->attachments[i];

		assert_string_equal(y->filename, x->filename);
		assert_string_equal(y->content_type, x->content_type);
		assert_int_equal(y->skip, x->skip);
		assert_int_equal(y->over_cap, x->over_cap);
		assert_int_equal(y->original_len, x->original_len);
		assert_int_equal(y->len, x->len);
		assert_false(x->mapped);
		assert_int_equal(y->data == NULL, x->data == NULL);
		/* kept bytes are mapped; an empty file stays a buffer */
		assert_int_equal(y->mapped, y->data != NULL && y->len > 0);
		if (x->data != NULL && x->len > 0)
			assert_memory_equal(y->data, x->data, x->len);
	}
	assert_string_equal(b->attachments[0].filename, "big.bin");
	assert_int_equal(b->attachments[0].len, big);
	assert_memory_equal(b->attachments[0].data, raw, big);
	assert_int_equal(b->attachments[1].len, 0);
	assert_non_null(b->attachments[1].data);
	assert_true(b->attachments[3].mapped);     /* the .eml, copied */
	assert_true(b->attachments[4].over_cap);
	mime_message_free(a);
	mime_message_free(b);
	assert_int_equal(dir_entries(dir), 0);
	assert_int_equal(rmdir(dir), 0);
	g_free(dir);
	g_free(msg);
	g_free(b64);
	free(raw);
}

/* A spill_dir that cannot take the files is an error (-2: may pass
 * later), never an attachment cut short or dropped; a mail without
 * attachments does not need it. */
static void
test_spill_fails(void **state)
{
	struct mime_limits lim = { .spill_dir = "/nonexistent/halo-spill" };
	struct mime_message *m = NULL;
	char err[256] = "", *msg;
	const char *with =
	    "Subject: x\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
	    "--B\nContent-Type: text/plain\n\nbody\n"
	    "--B\nContent-Type: application/pdf; name=\"a.pdf\"\n"
	    "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n"
	    "--B--\n";

	(void)state;
	msg = crlf(with);
	assert_int_equal(mime_extract_mem(msg, strlen(msg), &lim, &m, err,
	    sizeof(err)), -2);
	assert_null(m);
	assert_non_null(strstr(err, "/nonexistent/halo-spill"));
	free(msg);
	m = extract("Subject: x\n\nplain body\n", &lim);
	assert_int_equal(m->n_attachments, 0);
	assert_string_equal(m->text, "plain body\n");
	mime_message_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_related_cid),
		cmocka_unit_test(test_mixed_attachments),
		cmocka_unit_test(test_nested_message),
		cmocka_unit_test(test_latin1_charsets),
		cmocka_unit_test(test_japanese_charsets),
		cmocka_unit_test(test_over_cap),
		cmocka_unit_test(test_text_cap),
		cmocka_unit_test(test_parts_and_depth),
		cmocka_unit_test(test_filenames),
		cmocka_unit_test(test_signed),
		cmocka_unit_test(test_errors_and_mem),
		cmocka_unit_test(test_tnef_built),
		cmocka_unit_test(test_tnef_corpus),
		cmocka_unit_test(test_corpus_sweep),
		cmocka_unit_test(test_golden_encoded_filename),
		cmocka_unit_test(test_golden_tolerant_decoding),
		cmocka_unit_test(test_golden_damaged),
		cmocka_unit_test(test_golden_nested_html),
		cmocka_unit_test(test_golden_listed),
		cmocka_unit_test(test_golden_smaller),
		cmocka_unit_test(test_duplicate_content_type),
		cmocka_unit_test(test_alternative_as_attachment),
		cmocka_unit_test(test_spill),
		cmocka_unit_test(test_spill_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
