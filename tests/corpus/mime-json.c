/*
 * mime-json.c - the project's extraction of each message as one JSON line,
 * for the differential check against Python's email package (diff.py).
 *
 *   mime-json FILE...
 *
 * Per file: {"file", "subject", "from", "from_name", "html", "text",
 * "attachments": [{"name", "type", "size", "sha256", "skip"}],
 * "truncated"}. The subject and From display name are decoded as the
 * product decodes them (hdr_decode_text(), hdr_display_name()) from the
 * raw header values; bodies and attachments come from mime_extract().
 * A file that cannot be read as a message gives {"file", "error"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "hdr.h"
#include "mime.h"

/* Lower-case hex SHA-256 of LEN bytes at DATA into OUT (65 bytes). */
static void
sha256_hex(const unsigned char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0, i;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + i * 2, 3, "%02x", md[i]);
}

/* Raw value of top-level header NAME of the message at PATH, malloc'd. */
static char *
raw_header(GMimeMessage *msg, const char *name)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	GMimeHeader *h = list ? g_mime_header_list_get_header(list, name) : NULL;
	const char *v = h ? g_mime_header_get_raw_value(h) : NULL;

	return v != NULL ? strdup(v) : NULL;
}

/* Add string S (NULL: JSON null) to OBJ as NAME. */
static void
add_str(cJSON *obj, const char *name, const char *s)
{
	if (s == NULL)
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddStringToObject(obj, name, s);
}

/* Print the extraction of the file at PATH. */
static void
one(const char *path)
{
	struct mime_message *m = NULL;
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *msg = NULL;
	cJSON *obj = cJSON_CreateObject(), *atts;
	char err[256], hex[65], *s, *subject = NULL, *from = NULL;
	FILE *fp;
	size_t i;

	add_str(obj, "file", path);
	fp = fopen(path, "rb");
	if (fp != NULL) {
		stream = g_mime_stream_file_new(fp);    /* owns fp */
		parser = g_mime_parser_new_with_stream(stream);
		msg = g_mime_parser_construct_message(parser, NULL);
		g_object_unref(parser);
		g_object_unref(stream);
	}
	if (msg != NULL) {
		subject = raw_header(msg, "Subject");
		from = raw_header(msg, "From");
		g_object_unref(msg);
	}
	if (mime_extract(path, NULL, &m, err, sizeof(err)) != 0) {
		add_str(obj, "error", err);
		goto out;
	}
	s = subject != NULL ? hdr_decode_text(subject) : NULL;
	add_str(obj, "subject", s);
	free(s);
	{
		char addr[HDR_ADDR_MAX + 1];

		add_str(obj, "from", from != NULL && hdr_addr_spec(from, addr) ?
		    addr : NULL);
	}
	s = from != NULL ? hdr_display_name(from) : NULL;
	add_str(obj, "from_name", s);
	free(s);
	add_str(obj, "html", m->html);
	add_str(obj, "text", m->text);
	atts = cJSON_AddArrayToObject(obj, "attachments");
	for (i = 0; i < m->n_attachments; i++) {
		const struct mime_attachment *a = &m->attachments[i];
		cJSON *o = cJSON_CreateObject();

		add_str(o, "name", a->filename);
		add_str(o, "type", a->content_type);
		cJSON_AddNumberToObject(o, "size", (double)a->original_len);
		if (a->data != NULL) {
			sha256_hex(a->data, a->len, hex);
			add_str(o, "sha256", hex);
		} else
			add_str(o, "sha256", NULL);
		add_str(o, "skip", mime_skip_reason(a->skip));
		cJSON_AddBoolToObject(o, "tnef", a->from_tnef);
		cJSON_AddItemToArray(atts, o);
	}
	cJSON_AddBoolToObject(obj, "truncated", m->truncated);
	cJSON_AddNumberToObject(obj, "unlisted", (double)m->n_unlisted);
out:
	s = cJSON_PrintUnformatted(obj);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(obj);
	mime_message_free(m);
	free(subject);
	free(from);
}

int
main(int argc, char **argv)
{
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: mime-json FILE...\n");
		return 2;
	}
	hdr_init();
	for (i = 1; i < argc; i++)
		one(argv[i]);
	return 0;
}
