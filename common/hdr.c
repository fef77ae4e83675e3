/*
 * hdr.c - header value helpers (see hdr.h).
 */
#include "hdr.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "charset.h"

static pthread_once_t hdr_once = PTHREAD_ONCE_INIT;

/* One-time GMime set-up. */
static void
hdr_init_once(void)
{
	g_mime_init();
}

/* Initialise GMime once. */
void
hdr_init(void)
{
	pthread_once(&hdr_once, hdr_init_once);
}

/* Is NAME an X-Halo-* header? */
bool
hdr_is_ours(const char *name)
{
	return strncasecmp(name, "X-Halo-", 7) == 0;
}

/* Append a copy of [S, S+LEN) to the kept list, honouring the cap. */
static void
hdr_msgids_keep(char **ids, size_t max, size_t *n,
    const char *s, size_t len)
{
	char *id = malloc(len + 3);
	size_t slot;

	if (id == NULL)
		return;
	id[0] = '<';
	memcpy(id + 1, s, len);
	id[len + 1] = '>';
	id[len + 2] = '\0';
	if (*n < max) {
		ids[(*n)++] = id;
		return;
	}
	/* full: keep ids[0] (the root), drop ids[1], shift the rest left */
	if (max == 1) {
		free(id);
		return;
	}
	free(ids[1]);
	for (slot = 1; slot + 1 < max; slot++)
		ids[slot] = ids[slot + 1];
	ids[max - 1] = id;
}

/* Extract Message-IDs from a References/In-Reply-To value. */
size_t
hdr_msgids(const char *value, size_t max, char ***out)
{
	char **ids;
	size_t n = 0, len;
	const char *p, *end;
	int depth = 0;

	*out = NULL;
	if (value == NULL || max == 0)
		return 0;
	ids = calloc(max, sizeof(*ids));
	if (ids == NULL)
		return 0;
	len = strnlen(value, HDR_VALUE_MAX);
	for (p = value; p < value + len; p++) {
		if (*p == '(') {        /* RFC 5322 comments nest */
			depth++;
			continue;
		}
		if (*p == ')' && depth > 0) {
			depth--;
			continue;
		}
		if (depth > 0 || *p != '<')
			continue;
		end = memchr(p + 1, '>', (size_t)(value + len - p - 1));
		if (end == NULL)
			break;
		{
			const char *s = p + 1;
			size_t idlen = (size_t)(end - s);
			/* trim whitespace some broken mailers put inside */
			while (idlen > 0 && isspace((unsigned char)*s)) {
				s++;
				idlen--;
			}
			while (idlen > 0 && isspace((unsigned char)s[idlen - 1]))
				idlen--;
			if (idlen > 0 && idlen + 2 <= HDR_MSGID_MAX &&
			    memchr(s, '<', idlen) == NULL)
				hdr_msgids_keep(ids, max, &n, s, idlen);
		}
		p = end;
	}
	if (n == 0) {
		free(ids);
		return 0;
	}
	*out = ids;
	return n;
}

/* Free a list from hdr_msgids(). */
void
hdr_msgids_free(char **ids, size_t n)
{
	size_t i;

	if (ids == NULL)
		return;
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Normalise a Message-ID header value. */
bool
hdr_msgid_one(const char *value, char out[HDR_MSGID_MAX + 1])
{
	char **ids = NULL;
	size_t n, len, i;
	const char *s;

	if (value == NULL)
		return false;
	n = hdr_msgids(value, 1, &ids);
	if (n == 1) {
		strcpy(out, ids[0]);        /* bounded by HDR_MSGID_MAX */
		hdr_msgids_free(ids, n);
		return true;
	}
	/* no brackets: take the trimmed text when it looks like an id */
	s = value;
	while (isspace((unsigned char)*s))
		s++;
	len = strnlen(s, HDR_VALUE_MAX);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len + 2 > HDR_MSGID_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (isspace((unsigned char)s[i]) || s[i] == '<' || s[i] == '>' ||
		    (unsigned char)s[i] < 0x21)
			return false;
	out[0] = '<';
	memcpy(out + 1, s, len);
	out[len + 1] = '>';
	out[len + 2] = '\0';
	return true;
}

/* Build a Message-ID from a digest and a domain. */
void
hdr_msgid_generate(const uint8_t digest[32], const char *domain,
    char out[HDR_MSGID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	char h[33];
	int i;

	for (i = 0; i < 16; i++) {
		h[2 * i] = hex[digest[i] >> 4];
		h[2 * i + 1] = hex[digest[i] & 0x0f];
	}
	h[32] = '\0';
	if (domain == NULL || *domain == '\0' || strlen(domain) > 255)
		domain = "localhost";
	snprintf(out, HDR_MSGID_MAX + 1, "<%s.hm@%s>", h, domain);
}

/* Copy and lower-case an addr-spec when it fits and looks like one. */
static bool
hdr_addr_copy(const char *s, size_t len, char out[HDR_ADDR_MAX + 1])
{
	const char *at;
	size_t i;

	if (len == 0 || len > HDR_ADDR_MAX || (at = memrchr(s, '@', len)) == NULL)
		return false;
	if (at == s || at == s + len - 1)    /* "@x", "x@": no local part or domain */
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			return false;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return true;
}

/* Copy the address of mailbox IA, or of the first usable member of group IA
 * (RFC 6854 allows "Team: a@b;" in From:); groups do not nest. */
static bool
hdr_addr_first(InternetAddress *ia, char out[HDR_ADDR_MAX + 1])
{
	InternetAddressList *members;
	const char *addr;
	int i, n;

	if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
		addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		return addr != NULL && hdr_addr_copy(addr, strlen(addr), out);
	}
	if (!INTERNET_ADDRESS_IS_GROUP(ia))
		return false;
	members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
	n = members != NULL ? internet_address_list_length(members) : 0;
	for (i = 0; i < n; i++) {
		InternetAddress *m = internet_address_list_get_address(members, i);
		if (!INTERNET_ADDRESS_IS_MAILBOX(m))
			continue;
		addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(m));
		if (addr != NULL && hdr_addr_copy(addr, strlen(addr), out))
			return true;
	}
	return false;
}

/* First mailbox address of a header or envelope value. */
bool
hdr_addr_spec(const char *value, char out[HDR_ADDR_MAX + 1])
{
	InternetAddressList *list;
	bool found = false;
	size_t len;
	int i, n;

	if (value == NULL)
		return false;
	len = strnlen(value, HDR_VALUE_MAX + 1);
	if (len > HDR_VALUE_MAX)
		return false;
	hdr_init();
	list = internet_address_list_parse(NULL, value);
	if (list != NULL) {
		n = internet_address_list_length(list);
		for (i = 0; i < n && !found; i++) {
			InternetAddress *ia = internet_address_list_get_address(list, i);
			found = hdr_addr_first(ia, out);
		}
		g_object_unref(list);
	}
	if (!found) {
		/* envelope form "<a@b>" or a bare address GMime rejected */
		const char *s = value, *e;
		while (isspace((unsigned char)*s) || *s == '<')
			s++;
		e = s + strnlen(s, HDR_ADDR_MAX + 2);
		while (e > s && (isspace((unsigned char)e[-1]) || e[-1] == '>'))
			e--;
		found = hdr_addr_copy(s, (size_t)(e - s), out);
	}
	return found;
}

/* Is this Content-Type a multipart/report of REPORT_TYPE? */
bool
hdr_is_report(const char *content_type, const char *report_type)
{
	GMimeContentType *ct;
	const char *rt;
	bool match = false;

	if (content_type == NULL ||
	    strnlen(content_type, HDR_VALUE_MAX + 1) > HDR_VALUE_MAX)
		return false;
	hdr_init();
	ct = g_mime_content_type_parse(NULL, content_type);
	if (ct == NULL)
		return false;
	if (g_mime_content_type_is_type(ct, "multipart", "report")) {
		rt = g_mime_content_type_get_parameter(ct, "report-type");
		match = rt != NULL && strcasecmp(rt, report_type) == 0;
	}
	g_object_unref(ct);
	return match;
}

/* Is this Content-Type a delivery-status report? */
bool
hdr_is_dsn(const char *content_type)
{
	return hdr_is_report(content_type, "delivery-status");
}

/* S (may be NULL) as one line: line breaks and tabs that encoded words
 * decoded to become spaces. Returns S. */
static char *
hdr_one_line(char *s)
{
	char *p;

	for (p = s; p != NULL && *p != '\0'; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	return s;
}

/* Display name of the first mailbox of an address header value. */
char *
hdr_display_name(const char *value)
{
	char *raw, *out;
	size_t len, i, n = 0, end = 0;
	bool quoted = false, angle = false;
	int comment = 0;

	if (value == NULL)
		return strdup("");
	len = strnlen(value, HDR_VALUE_MAX);
	/* the phrase ends at the first '<' outside quotes and comments; a
	 * ',' or ':' first means a bare address or a group: no name */
	for (i = 0; i < len && !angle; i++) {
		char c = value[i];

		if (c == '\\' && (quoted || comment > 0) && i + 1 < len)
			i++;
		else if (quoted)
			quoted = c != '"';
		else if (c == '(')
			comment++;
		else if (c == ')' && comment > 0)
			comment--;
		else if (comment > 0)
			continue;
		else if (c == '"')
			quoted = true;
		else if (c == '<') {
			angle = true;
			end = i;
		} else if (c == ',' || c == ':' || c == ';')
			break;
	}
	if (!angle)
		return strdup("");
	raw = malloc(end + 1);
	if (raw == NULL)
		return NULL;
	/* unquote quoted-strings, drop comments */
	quoted = false;
	comment = 0;
	for (i = 0; i < end; i++) {
		char c = value[i];

		if (c == '\\' && (quoted || comment > 0) && i + 1 < end) {
			if (quoted)
				raw[n++] = value[i + 1];
			i++;
		} else if (comment > 0) {
			if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
		} else if (c == '"')
			quoted = !quoted;
		else if (c == '(' && !quoted)
			comment++;
		else
			raw[n++] = c;
	}
	out = hdr_one_line(charset_decode_words(raw, n));
	free(raw);
	return out;
}

/* Decode encoded words into a malloc'd UTF-8 string (charset.c's decoder:
 * GMime's loses text after a padded base64 word in some versions). */
char *
hdr_decode_text(const char *value)
{
	if (value == NULL)
		return strdup("");
	return hdr_one_line(charset_decode_words(value,
	    strnlen(value, HDR_VALUE_MAX)));
}

/* Encode text for an unstructured header into a malloc'd string. */
char *
hdr_encode_text(const char *text)
{
	char *g, *copy;

	hdr_init();
	g = g_mime_utils_header_encode_text(NULL, text, "utf-8");
	if (g == NULL)
		return strdup("");
	copy = strdup(g);
	g_free(g);
	return copy;
}

/* The header block of FP, at most MAX bytes, into a malloc'd buffer. */
static char *
hdr_block_read(FILE *fp, size_t max, size_t *len)
{
	char *buf = malloc(max + 1), *end, *crlf;
	size_t n;

	if (buf == NULL)
		return NULL;
	n = fread(buf, 1, max, fp);
	if (ferror(fp)) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	/* the block ends at the first empty line; a longer one is cut at MAX
	 * on a line boundary */
	end = strstr(buf, "\n\n");
	crlf = strstr(buf, "\n\r\n");
	if (end == NULL || (crlf != NULL && crlf < end))
		end = crlf;
	if (end != NULL)
		n = (size_t)(end - buf) + 1;
	else if (n == max && (end = strrchr(buf, '\n')) != NULL)
		n = (size_t)(end - buf) + 1;
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A header's raw value, unfolded and trimmed, at most HDR_VALUE_MAX. */
static char *
hdr_value_copy(GMimeHeader *h)
{
	const char *raw = g_mime_header_get_raw_value(h);
	char *unfolded, *copy;
	size_t len;

	if (raw == NULL)
		return strdup("");
	unfolded = g_mime_utils_header_unfold(raw);
	if (unfolded == NULL)
		return NULL;
	g_strstrip(unfolded);
	len = strnlen(unfolded, HDR_VALUE_MAX);
	copy = strndup(unfolded, len);
	g_free(unfolded);
	return copy;
}

/* The named headers of a header block in memory (see hdr.h). */
void
hdr_block_values(const char *block, size_t len, const char *const *names,
    size_t n, char **values)
{
	GMimeHeaderList *list;
	GMimeParser *parser;
	GMimeStream *stream;
	GMimeMessage *msg;
	size_t i;

	for (i = 0; i < n; i++)
		values[i] = NULL;
	hdr_init();
	stream = g_mime_stream_mem_new_with_buffer(block, len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (msg == NULL)
		return;         /* no header block: none of the headers */
	list = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header(list, names[i]);
		if (h != NULL)
			values[i] = hdr_value_copy(h);
	}
	g_object_unref(msg);
}

/* Read the named headers of the message in PATH (see hdr.h). */
int
hdr_read_file(const char *path, size_t max, const char *const *names,
    size_t n, char **values)
{
	FILE *fp;
	char *block;
	size_t len, i;

	for (i = 0; i < n; i++)
		values[i] = NULL;
	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	block = hdr_block_read(fp, max, &len);
	fclose(fp);
	if (block == NULL)
		return -1;
	hdr_block_values(block, len, names, n, values);
	free(block);
	return 0;
}
