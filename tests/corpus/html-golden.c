/*
 * html-golden.c - the HTML sanitiser's golden files (tests/golden/html):
 * each NAME.in through html_sanitize(), compared byte for byte with
 * NAME.ref, Postfix style.
 *
 *   html-golden [-u] FILE.in...     -u rewrites the .ref files (review!)
 *
 * A file whose name starts with "trim-" is sanitised with trim_quotes, as
 * the worker does for replies; "cid-" files map cid:logo@x to "logo.png".
 * Prints "html-golden: N passed, M failed"; exits 1 on any failure.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"

#define GOLDEN_MAX (256 * 1024)

/* The whole file PATH, malloc'd; its length in *LEN. NULL on failure. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = malloc(GOLDEN_MAX + 1);
	n = buf != NULL ? fread(buf, 1, GOLDEN_MAX + 1, fp) : 0;
	fclose(fp);
	if (buf == NULL || n > GOLDEN_MAX) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static const char *
cid_lookup(const char *cid, void *arg)
{
	(void)arg;
	return strcmp(cid, "logo@x") == 0 ? "logo.png" : NULL;
}

/* Whether the base name of PATH starts with PREFIX. */
static bool
named(const char *path, const char *prefix)
{
	const char *base = strrchr(path, '/');

	base = base != NULL ? base + 1 : path;
	return strncmp(base, prefix, strlen(prefix)) == 0;
}

int
main(int argc, char **argv)
{
	bool update = argc > 1 && strcmp(argv[1], "-u") == 0;
	int i, passed = 0, failed = 0;

	for (i = update ? 2 : 1; i < argc; i++) {
		struct html_options opt = { 0 };
		char ref_path[4096], *in, *out, *want;
		size_t in_len = 0, want_len = 0, n = strlen(argv[i]);
		FILE *fp;

		if (n < 4 || strcmp(argv[i] + n - 3, ".in") != 0 ||
		    n - 3 + 5 > sizeof(ref_path)) {
			fprintf(stderr, "html-golden: %s: not a .in file\n",
			    argv[i]);
			failed++;
			continue;
		}
		snprintf(ref_path, sizeof(ref_path), "%.*s.ref", (int)(n - 3),
		    argv[i]);
		opt.trim_quotes = named(argv[i], "trim-");
		if (named(argv[i], "cid-"))
			opt.cid_lookup = cid_lookup;
		if ((in = slurp(argv[i], &in_len)) == NULL ||
		    (out = html_sanitize(in, in_len, &opt)) == NULL) {
			fprintf(stderr, "html-golden: %s: cannot read or"
			    " sanitise\n", argv[i]);
			free(in);
			failed++;
			continue;
		}
		free(in);
		if (update && (fp = fopen(ref_path, "wb")) != NULL) {
			fprintf(fp, "%s\n", out);
			fclose(fp);
		}
		want = slurp(ref_path, &want_len);
		if (want != NULL && want_len == strlen(out) + 1 &&
		    memcmp(want, out, want_len - 1) == 0 &&
		    want[want_len - 1] == '\n')
			passed++;
		else {
			printf("FAIL html-golden: %s\n    got  %s\n    want %s",
			    argv[i], out, want != NULL ? want : "(no .ref)\n");
			failed++;
		}
		free(want);
		free(out);
	}
	printf("html-golden: %d passed, %d failed\n", passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}
