/*
 * fuzz_html.c - libFuzzer target for the HTML sanitiser (html.c): the
 * input is sanitised with quote trimming off and on, once more under a
 * small output cap taken from its first byte, and turned into HTML as
 * plain text. Every output is checked against the allow-list itself:
 * only allowed tags and attributes, values escaped and double-quoted,
 * links http/https/mailto only, tags balanced, the cap kept.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "html.h"

#define FUZZ_MAX_INPUT (512u << 10)
#define FUZZ_NEST_MAX  128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Is the N-byte name at S one of WORDS? */
static bool
fuzz_word(const char *s, size_t n, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strlen(*words) == n && strncmp(s, *words, n) == 0)
			return true;
	return false;
}

/* Abort unless every '(' in the style value V (N bytes) opens rgb(),
 * rgba(), hsl() or hsla(), and there is no CSS escape. */
static void
fuzz_check_style(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i] == '\\')
			abort();
		if (v[i] != '(')
			continue;
		if (!((i >= 3 && strncasecmp(v + i - 3, "rgb", 3) == 0) ||
		    (i >= 3 && strncasecmp(v + i - 3, "hsl", 3) == 0) ||
		    (i >= 4 && strncasecmp(v + i - 4, "rgba", 4) == 0) ||
		    (i >= 4 && strncasecmp(v + i - 4, "hsla", 4) == 0)))
			abort();
	}
}

/* Abort unless the attributes in [P, END) are allowed and well-formed. */
static void
fuzz_check_attrs(const char *p, const char *end)
{
	static const char *const attrs[] = { "href", "rel", "target", "style",
	    "title", "dir", "lang", "align", "valign", "width", "height",
	    "colspan", "rowspan", "span", "border", "cellpadding",
	    "cellspacing", "bgcolor", "color", "size", "face", "start", "type",
	    NULL };
	const char *name, *value, *close;
	size_t n;

	while (p < end) {
		if (*p++ != ' ')
			abort();
		name = p;
		n = strcspn(p, "=");
		if (p + n >= end || !fuzz_word(name, n, attrs) || p[n + 1] != '"')
			abort();
		value = p + n + 2;
		close = memchr(value, '"', (size_t)(end - value));
		if (close == NULL || memchr(value, '<', (size_t)(close - value)) ||
		    memchr(value, '\'', (size_t)(close - value)))
			abort();
		if (n == 4 && strncmp(name, "href", 4) == 0 &&
		    strncasecmp(value, "http://", 7) != 0 &&
		    strncasecmp(value, "https://", 8) != 0 &&
		    strncasecmp(value, "mailto:", 7) != 0)
			abort();
		if (n == 5 && strncmp(name, "style", 5) == 0)
			fuzz_check_style(value, (size_t)(close - value));
		p = close + 1;
	}
}

/* Abort unless OUT is well-formed allow-listed HTML of at most CAP bytes. */
static void
fuzz_check(const char *out, size_t cap)
{
	static const char *const tags[] = { "p", "div", "span", "br", "hr", "b",
	    "strong", "i", "em", "u", "s", "strike", "sub", "sup", "small", "big",
	    "font", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl",
	    "dt", "dd", "blockquote", "pre", "code", "table", "thead", "tbody",
	    "tfoot", "tr", "td", "th", "caption", "colgroup", "col", "a",
	    "center", NULL };
	static const char *const voids[] = { "br", "hr", "col", NULL };
	const char *stack[FUZZ_NEST_MAX], *p, *gt;
	size_t depth = 0, n;

	if (out == NULL || strlen(out) > cap)
		abort();
	for (p = out; *p != '\0'; p++) {
		if (*p == '>')
			abort();
		if (*p != '<')
			continue;
		gt = strchr(p, '>');
		if (gt == NULL)
			abort();
		if (p[1] == '/') {
			n = (size_t)(gt - p - 2);
			if (depth == 0 || strlen(stack[depth - 1]) != n ||
			    strncmp(stack[depth - 1], p + 2, n) != 0)
				abort();
			depth--;
		} else {
			n = strcspn(p + 1, " >");
			if (!fuzz_word(p + 1, n, tags))
				abort();
			fuzz_check_attrs(p + 1 + n, gt);
			if (!fuzz_word(p + 1, n, voids)) {
				size_t i;

				if (depth == FUZZ_NEST_MAX)
					abort();
				for (i = 0; tags[i] != NULL; i++)
					if (strlen(tags[i]) == n &&
					    strncmp(tags[i], p + 1, n) == 0)
						stack[depth++] = tags[i];
			}
		}
		p = gt;
	}
	if (depth != 0)
		abort();
}

/* Sanitise the input every way and check each output. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct html_options opt = { 0 };
	const char *in = (const char *)data;
	char *out;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	out = html_sanitize(in, size, &opt);
	fuzz_check(out, HTML_DEFAULT_MAX_OUTPUT);
	free(out);

	opt.trim_quotes = true;
	out = html_sanitize(in, size, &opt);
	fuzz_check(out, HTML_DEFAULT_MAX_OUTPUT);
	free(out);

	opt.max_output = size > 0 ? 1 + (size_t)data[0] * 2 : 1;
	out = html_sanitize(in, size, &opt);
	fuzz_check(out, opt.max_output);
	free(out);

	out = html_from_text(in, size, size > 0 && (data[0] & 1));
	if (out == NULL || strncmp(out, "<div>", 5) != 0)
		abort();
	free(out);
	return 0;
}
