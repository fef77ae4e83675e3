/*
 * html.c - allow-list HTML sanitiser and text-to-HTML (see html.h).
 *
 * gumbo builds the HTML5 tree exactly as a browser would; the tree is then
 * walked with an explicit stack (mail can nest deeper than a C stack
 * likes) and only allow-listed elements and attributes are written back,
 * every value escaped and re-checked. Output never exceeds its cap: room
 * for the closing tags of open elements is reserved as they are opened.
 */
#include "html.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gumbo.h>

#define HTML_MAX_NEST   64      /* elements open in the output at once */
#define HTML_URL_MAX    4096    /* longest href kept */
#define HTML_STYLE_MAX  2048    /* longest style attribute looked at */
#define HTML_ATTR_SIZE_MAX 2000 /* largest width/height attribute, px */
#define HTML_TITLE_MAX  512     /* longest title attribute kept */
#define HTML_CID_MAX    998     /* longest cid: reference looked up */
#define HTML_CUT_MARK   "[\xe2\x80\xa6]"

/* Output buffer: LEN + RESERVE never exceeds LIMIT. */
struct html_buf {
	struct util_buf u;      /* the bytes; u.oom: out of memory */
	size_t limit;           /* bytes the result may hold, NUL excluded */
	size_t reserve;         /* kept free: closing tags and the cut mark */
	bool full;              /* something did not fit */
};

/* Attribute groups an allowed element may carry (beyond the global ones:
 * title, dir, lang, style). */
enum {
	HTML_A_ALIGN    = 1 << 0,   /* align */
	HTML_A_VALIGN   = 1 << 1,   /* valign */
	HTML_A_SIZE     = 1 << 2,   /* width, height */
	HTML_A_SPAN     = 1 << 3,   /* colspan, rowspan, span */
	HTML_A_TABLE    = 1 << 4,   /* border, cellpadding, cellspacing */
	HTML_A_BGCOLOR  = 1 << 5,   /* bgcolor */
	HTML_A_FONT     = 1 << 6,   /* color, size, face */
	HTML_A_HREF     = 1 << 7,   /* href (http, https, mailto) */
	HTML_A_LIST     = 1 << 8,   /* start, type */
	HTML_A_VOID     = 1 << 9    /* no content, no end tag */
};

/* What the walk does with an element. */
enum html_action {
	HTML_KEEP,              /* write the element (maybe renamed) */
	HTML_UNWRAP,            /* drop the tag, keep the content */
	HTML_DROP               /* drop the tag and the content */
};

/* Quoted-history markers (trim_quotes). */
enum html_quote {
	HTML_QUOTE_NONE,
	HTML_QUOTE_DROP,        /* drop this element */
	HTML_QUOTE_CUT          /* drop this and everything after it */
};

/* One element being walked: its node, next child, and the name of the
 * end tag written when it is left (NULL: none). */
struct html_frame {
	const GumboNode *node;
	unsigned next;
	const char *close;
};

/* One sanitising pass. */
struct html_ctx {
	const struct html_options *opt;
	bool trim;
	struct html_buf out;
	struct html_frame *stack;
	size_t depth;
	size_t stack_cap;
	size_t nest;            /* elements open in the output */
	bool stop;              /* cut: write nothing more */
	bool trimmed;           /* some quoted history was left out */
	bool visible;           /* wrote something a reader sees */
	size_t hr_start;        /* last <hr> written, for a cut right after */
	size_t hr_end;
};

/* --- output buffer ----------------------------------------------------- */

/* Would N more bytes fit beside the reserve? Marks B full when not. */
static bool
html_buf_fits(struct html_buf *b, size_t n)
{
	if (b->full || b->u.oom)
		return false;
	if (b->u.len + b->reserve > b->limit ||
	    n > b->limit - b->u.len - b->reserve) {
		b->full = true;
		return false;
	}
	return true;
}

/* Append N bytes when they fit beside the reserve; else mark full. */
static bool
html_buf_put(struct html_buf *b, const char *p, size_t n)
{
	return html_buf_fits(b, n) && util_buf_add(&b->u, p, n);
}

/* Append a NUL-terminated string. */
static bool
html_buf_puts(struct html_buf *b, const char *s)
{
	return html_buf_put(b, s, strlen(s));
}

/* Append N bytes out of the reserve (closing tags, the cut mark). */
static void
html_buf_put_reserved(struct html_buf *b, const char *p, size_t n)
{
	if (n > b->reserve || !util_buf_add(&b->u, p, n))
		return;
	b->reserve -= n;
}

/* The finished string (ownership to the caller), or NULL on ENOMEM. */
static char *
html_buf_finish(struct html_buf *b)
{
	if (b->u.oom || !util_buf_reserve(&b->u, 0)) {
		util_buf_clear(&b->u);
		return NULL;
	}
	return b->u.s;
}

/* --- escaping ---------------------------------------------------------- */

/* The entity for byte C, or NULL when it stands for itself. */
static const char *
html_entity(unsigned char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return "&#39;";
	default:
		return NULL;
	}
}

/* Is the character at S (LEN bytes) white space or invisible? */
static bool
html_is_blank(const unsigned char *s, size_t len)
{
	if (len == 1)
		return s[0] == ' ' || s[0] == '\t' || s[0] == '\n' ||
		    s[0] == '\r' || s[0] == '\f';
	if (len == 2)
		return s[0] == 0xc2 && s[1] == 0xa0;            /* NBSP */
	if (len == 3)
		return (s[0] == 0xe2 && s[1] == 0x80 &&
		    (s[2] == 0x8b || s[2] == 0x8c || s[2] == 0x8d)) ||  /* ZWSP */
		    (s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf);     /* BOM */
	return false;
}

/*
 * Append N bytes of text at S to B escaped: invalid UTF-8 becomes U+FFFD,
 * control characters other than tab and line breaks go. Each character is
 * appended whole or not at all. *VISIBLE is set when a non-blank
 * character was written. False when B filled up.
 */
static bool
html_put_text(struct html_buf *b, const char *s, size_t n, bool *visible)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len;
	const char *ent;

	while (i < n) {
		len = util_utf8_seq(p + i, n - i);
		if (len == 0) {
			if (!html_buf_put(b, "\xef\xbf\xbd", 3))
				return false;
			*visible = true;
			i++;
			continue;
		}
		if (len == 1 && ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' &&
		    p[i] != '\r') || p[i] == 0x7f)) {
			i++;
			continue;
		}
		ent = len == 1 ? html_entity(p[i]) : NULL;
		if (!(ent != NULL ? html_buf_puts(b, ent) :
		    html_buf_put(b, s + i, len)))
			return false;
		if (!html_is_blank(p + i, len))
			*visible = true;
		i += len;
	}
	return true;
}

/* Escape S into a new string. */
char *
html_escape(const char *s)
{
	struct html_buf b = { .limit = SIZE_MAX };
	const char *ent;

	if (s == NULL)
		s = "";
	if (!util_buf_reserve(&b.u, strlen(s)))
		return NULL;
	b.u.s[0] = '\0';
	for (; *s != '\0'; s++) {
		ent = html_entity((unsigned char)*s);
		if (ent != NULL)
			html_buf_puts(&b, ent);
		else
			html_buf_put(&b, s, 1);
	}
	return html_buf_finish(&b);
}

/* --- attribute checks --------------------------------------------------- */

/* Value of attribute NAME of EL, or NULL. */
static const char *
html_attr(const GumboElement *el, const char *name)
{
	const GumboAttribute *a = gumbo_get_attribute(&el->attributes, name);

	return a != NULL ? a->value : NULL;
}

/* Is S MIN..MAX characters, all from SET (or alphanumeric when ALNUM)? */
static bool
html_chars_ok(const char *s, size_t min, size_t max, const char *set,
    bool alnum)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (n >= max)
			return false;
		if (alnum && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z')))
			continue;
		if (set == NULL || c == '\0' || strchr(set, c) == NULL)
			return false;
	}
	return n >= min;
}

/* Is S one of the words in the NULL-ended list WORDS (any case)? */
static bool
html_word_in(const char *s, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strcasecmp(s, *words) == 0)
			return true;
	return false;
}

/* A number of 1-4 digits? */
static bool
html_is_small_number(const char *s)
{
	return html_chars_ok(s, 1, 4, "0123456789", false);
}

/* A length: 1-4 digits, optionally "px", at most HTML_ATTR_SIZE_MAX; or a
 * percentage up to 100 (a table 50000 pixels wide pushes the rest of the
 * note out of view). */
static bool
html_is_length(const char *s)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 4)
		return false;
	if (strcmp(s + n, "%") == 0)
		return atoi(s) <= 100;
	return (s[n] == '\0' || strcasecmp(s + n, "px") == 0) &&
	    atoi(s) <= HTML_ATTR_SIZE_MAX;
}

/* A number of pixels up to MAX (table border, cellpadding, cellspacing). */
static bool
html_is_pixels_upto(const char *s, int max)
{
	return html_chars_ok(s, 1, 4, "0123456789", false) && atoi(s) <= max;
}

/* A colour: "#" and 3-8 hex digits, or a colour name. */
static bool
html_is_color(const char *s)
{
	if (s[0] == '#')
		return html_chars_ok(s + 1, 3, 8, "0123456789abcdefABCDEF", false);
	return html_chars_ok(s, 1, 20,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", false);
}

/*
 * The href value V made safe, malloc'd: tabs and line breaks removed (as
 * URL parsers do), surrounding blanks and controls trimmed; NULL unless the
 * scheme is http, https or mailto (relative and scheme-less URLs too go).
 */
static char *
html_url_clean(const char *v)
{
	size_t n = 0, start, end, i, scheme;
	char *u;

	u = malloc(strlen(v) + 1);
	if (u == NULL)
		return NULL;
	for (; *v != '\0'; v++)
		if (*v != '\t' && *v != '\n' && *v != '\r')
			u[n++] = *v;
	for (start = 0; start < n && (unsigned char)u[start] <= 0x20; start++)
		;
	for (end = n; end > start && (unsigned char)u[end - 1] <= 0x20; end--)
		;
	memmove(u, u + start, end - start);
	n = end - start;
	u[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
			break;
	scheme = strspn(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
	if (i < n || n == 0 || n > HTML_URL_MAX || u[scheme] != ':' ||
	    !((scheme == 4 && strncasecmp(u, "http", 4) == 0 &&
	    strncmp(u + 5, "//", 2) == 0 && u[7] != '\0') ||
	    (scheme == 5 && strncasecmp(u, "https", 5) == 0 &&
	    strncmp(u + 6, "//", 2) == 0 && u[8] != '\0') ||
	    (scheme == 6 && strncasecmp(u, "mailto", 6) == 0 && u[7] != '\0'))) {
		free(u);
		return NULL;
	}
	return u;
}

/* Is the style property P (N bytes, lower case) allowed? */
static bool
html_style_prop_ok(const char *p, size_t n)
{
	static const char *const exact[] = { "color", "background-color",
	    "font-weight", "font-style", "text-decoration", "text-align",
	    "font-size", "font-family", "margin", "padding", "border", NULL };
	static const char *const prefix[] = { "margin-", "padding-", "border-",
	    NULL };
	size_t i, k;

	for (i = 0; exact[i] != NULL; i++)
		if (strlen(exact[i]) == n && memcmp(exact[i], p, n) == 0)
			return true;
	for (i = 0; prefix[i] != NULL; i++) {
		k = strlen(prefix[i]);
		if (n > k && memcmp(prefix[i], p, k) == 0)
			return !(n >= 12 && memcmp(p, "border-image", 12) == 0);
	}
	return false;
}

/*
 * Is the style value V (N bytes) plain: letters, digits, blanks, quotes,
 * "#%.,+-!/" and non-ASCII, with parentheses only for rgb(), rgba(),
 * hsl(), hsla(), unnested, and quotes balanced?
 */
static bool
html_style_value_ok(const char *v, size_t n)
{
	size_t i, dq = 0, sq = 0;
	bool open = false;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || strchr(" \t\n\r#%.,+-!/", c) != NULL)
			continue;
		if (c == '"')
			dq++;
		else if (c == '\'')
			sq++;
		else if (c == '(') {
			if (open || !((i >= 3 && strncasecmp(v + i - 3, "rgb", 3) == 0) ||
			    (i >= 4 && strncasecmp(v + i - 4, "rgba", 4) == 0) ||
			    (i >= 3 && strncasecmp(v + i - 3, "hsl", 3) == 0) ||
			    (i >= 4 && strncasecmp(v + i - 4, "hsla", 4) == 0)))
				return false;
			open = true;
		} else if (c == ')' && open)
			open = false;
		else
			return false;
	}
	return !open && dq % 2 == 0 && sq % 2 == 0;
}

/*
 * Sizes in inline styles. Positioning and sizing properties (position,
 * z-index, transform, top/left, width/height, float, display, ...) are
 * not on the allow-list at all; what remains could still deface a note or
 * push the rest of the ticket out of view with extreme values, so each
 * length of margin*, padding*, border* and font-size must be non-negative,
 * in an absolute or font-relative unit (no vw/vh: the agent's window
 * sets them), and below the cap of its property. A declaration that fails
 * is dropped; the rest of the attribute stays.
 */
struct html_size_rule {
	const char *prop;       /* a property, or a prefix ending in '-' */
	double max_px;          /* largest length, in CSS px */
	double max_pct;         /* largest percentage */
};

static const struct html_size_rule html_size_rules[] = {
	{ "font-size", 72, 300 },
	{ "margin", 100, 10 },
	{ "margin-", 100, 10 },
	{ "padding", 100, 10 },
	{ "padding-", 100, 10 },
	{ "border-radius", 50, 50 },
	{ "border", 20, 0 },
	{ "border-", 20, 0 },
};

/* CSS px per unit U (N bytes, lower case), or 0 when U is not accepted. */
static double
html_css_unit_px(const char *u, size_t n)
{
	static const struct { const char *unit; double px; } units[] = {
		{ "", 1 }, { "px", 1 }, { "pt", 96.0 / 72 }, { "pc", 16 },
		{ "in", 96 }, { "cm", 96 / 2.54 }, { "mm", 96 / 25.4 },
		{ "q", 96 / 101.6 }, { "em", 16 }, { "rem", 16 }, { "ex", 8 },
		{ "ch", 8 },
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].unit) == n && strncasecmp(units[i].unit, u,
		    n) == 0)
			return units[i].px;
	return 0;
}

/* Are the lengths in value V (N bytes) of property P (PN bytes, lower
 * case) within its rule (see above)? True for other properties. */
static bool
html_style_sizes_ok(const char *p, size_t pn, const char *v, size_t n)
{
	const struct html_size_rule *rule = NULL;
	size_t i, k, digits, ulen;
	double num, scale, px;
	bool neg;

	for (i = 0; i < sizeof(html_size_rules) / sizeof(html_size_rules[0]);
	    i++) {
		k = strlen(html_size_rules[i].prop);
		if (html_size_rules[i].prop[k - 1] == '-' ? pn > k &&
		    memcmp(p, html_size_rules[i].prop, k) == 0 : pn == k &&
		    memcmp(p, html_size_rules[i].prop, k) == 0) {
			rule = &html_size_rules[i];
			break;
		}
	}
	if (rule == NULL)
		return true;
	/* the radius of one corner: border-top-left-radius and the like */
	if (pn > 7 && memcmp(p + pn - 7, "-radius", 7) == 0)
		rule = &html_size_rules[5];
	for (i = 0; i < n;) {
		unsigned char c = (unsigned char)v[i];

		if (c == '(') {             /* rgb(...): numbers, not lengths */
			while (i < n && v[i] != ')')
				i++;
			i++;
			continue;
		}
		if (!(c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9'))) {
			/* a keyword (solid, auto, -webkit-x, #fff, !important),
			 * or a function: rgb(204,204,204) */
			while (i < n && strchr(" \t\n\r,/", v[i]) == NULL) {
				if (v[i] == '(')
					while (i < n && v[i] != ')')
						i++;
				i++;
			}
			i++;
			continue;
		}
		neg = c == '-';
		if (c == '+' || c == '-') {
			if (i + 1 >= n || !(v[i + 1] == '.' ||
			    (v[i + 1] >= '0' && v[i + 1] <= '9'))) {
				while (i < n && strchr(" \t\n\r,/", v[i]) == NULL)
					i++;
				i++;
				continue;           /* -moz-... */
			}
			i++;
		}
		num = 0;
		digits = 0;
		for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, digits++)
			num = num * 10 + (v[i] - '0');
		if (i < n && v[i] == '.')
			for (i++, scale = 0.1; i < n && v[i] >= '0' &&
			    v[i] <= '9'; i++, scale /= 10, digits++)
				num += (v[i] - '0') * scale;
		if (digits == 0 || digits > 12)
			return false;
		if (neg && num > 0)
			return false;           /* negative: an overlay */
		for (ulen = 0; i + ulen < n && strchr(" \t\n\r,/!",
		    v[i + ulen]) == NULL; ulen++)
			;
		if (ulen == 1 && v[i] == '%') {
			if (num > rule->max_pct)
				return false;
		} else {
			px = html_css_unit_px(v + i, ulen);
			if (px == 0 || num * px > rule->max_px)
				return false;   /* vw, 1e9px, or too big */
		}
		i += ulen;
	}
	return true;
}

/* Trim blanks around [*S, *S + *N). */
static void
html_trim(const char **s, size_t *n)
{
	while (*n > 0 && strchr(" \t\n\r\f", (*s)[0]) != NULL) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && strchr(" \t\n\r\f", (*s)[*n - 1]) != NULL)
		(*n)--;
}

/*
 * The style attribute V reduced to its allowed declarations, malloc'd;
 * NULL when nothing is left, or when anything looks like an attack
 * (escapes, comments, url(), expression(), script schemes, @-rules,
 * behaviours, markup): then the whole attribute goes.
 */
static char *
html_style_clean(const char *v)
{
	static const char *const doubt[] = { "\\", "/*", "*/", "<", ">", "&",
	    "@", "`", "url(", "expression", "javascript", "vbscript",
	    "behavior", "binding", NULL };
	size_t len = strlen(v), i, n, pn, vn;
	const char *decl, *end, *colon, *prop, *val;
	char *lower, *out;

	if (len == 0 || len > HTML_STYLE_MAX)
		return NULL;
	lower = malloc(len + 1);
	if (lower == NULL)
		return NULL;
	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\0' && c != '\t' && c != '\n' && c != '\r') ||
		    c == 0x7f) {
			free(lower);
			return NULL;
		}
		lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	for (i = 0; doubt[i] != NULL; i++)
		if (strstr(lower, doubt[i]) != NULL) {
			free(lower);
			return NULL;
		}
	out = malloc(len + 1);
	if (out == NULL) {
		free(lower);
		return NULL;
	}
	n = 0;
	for (decl = v; decl < v + len; decl = end + 1) {
		end = memchr(decl, ';', (size_t)(v + len - decl));
		if (end == NULL)
			end = v + len;
		colon = memchr(decl, ':', (size_t)(end - decl));
		if (colon == NULL)
			continue;
		prop = lower + (decl - v);
		pn = (size_t)(colon - decl);
		html_trim(&prop, &pn);
		val = colon + 1;
		vn = (size_t)(end - val);
		html_trim(&val, &vn);
		if (pn == 0 || strspn(prop, "abcdefghijklmnopqrstuvwxyz-") < pn ||
		    !html_style_prop_ok(prop, pn))
			continue;
		if (!html_style_value_ok(val, vn)) {
			free(out);
			free(lower);
			return NULL;
		}
		if (!html_style_sizes_ok(prop, pn, val, vn))
			continue;
		if (n > 0)
			out[n++] = ';';
		memcpy(out + n, prop, pn);
		n += pn;
		out[n++] = ':';
		memcpy(out + n, val, vn);
		n += vn;
	}
	free(lower);
	out[n] = '\0';
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Is S a plain title: short, no markup characters? */
static bool
html_is_title(const char *s)
{
	return strlen(s) <= HTML_TITLE_MAX && strpbrk(s, "<>`") == NULL;
}

/* --- elements ------------------------------------------------------------ */

/*
 * What to do with TAG (HTML namespace): *NAME gets the name written for
 * HTML_KEEP (some block elements become div or pre) and *ATTRS its
 * attribute groups.
 */
static enum html_action
html_tag_action(GumboTag tag, const char **name, unsigned *attrs)
{
	*name = NULL;
	*attrs = 0;
	switch (tag) {
	case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_IFRAME:
	case GUMBO_TAG_FRAME: case GUMBO_TAG_FRAMESET: case GUMBO_TAG_OBJECT:
	case GUMBO_TAG_EMBED: case GUMBO_TAG_APPLET: case GUMBO_TAG_FORM:
	case GUMBO_TAG_INPUT: case GUMBO_TAG_BUTTON: case GUMBO_TAG_SELECT:
	case GUMBO_TAG_TEXTAREA: case GUMBO_TAG_NOSCRIPT:
	case GUMBO_TAG_TEMPLATE: case GUMBO_TAG_SVG: case GUMBO_TAG_MATH:
	case GUMBO_TAG_LINK: case GUMBO_TAG_META: case GUMBO_TAG_BASE:
	case GUMBO_TAG_TITLE: case GUMBO_TAG_HEAD: case GUMBO_TAG_NOEMBED:
	case GUMBO_TAG_NOFRAMES: case GUMBO_TAG_PARAM: case GUMBO_TAG_VIDEO:
	case GUMBO_TAG_AUDIO: case GUMBO_TAG_SOURCE: case GUMBO_TAG_TRACK:
	case GUMBO_TAG_CANVAS: case GUMBO_TAG_MAP: case GUMBO_TAG_AREA:
	case GUMBO_TAG_KEYGEN: case GUMBO_TAG_DATALIST: case GUMBO_TAG_OPTION:
	case GUMBO_TAG_OPTGROUP: case GUMBO_TAG_BGSOUND: case GUMBO_TAG_ISINDEX:
	case GUMBO_TAG_MENUITEM:
		return HTML_DROP;
	case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_CENTER:
	case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3:
	case GUMBO_TAG_H4: case GUMBO_TAG_H5: case GUMBO_TAG_H6:
		*attrs = HTML_A_ALIGN;
		break;
	case GUMBO_TAG_SPAN: case GUMBO_TAG_B: case GUMBO_TAG_STRONG:
	case GUMBO_TAG_I: case GUMBO_TAG_EM: case GUMBO_TAG_U: case GUMBO_TAG_S:
	case GUMBO_TAG_STRIKE: case GUMBO_TAG_SUB: case GUMBO_TAG_SUP:
	case GUMBO_TAG_SMALL: case GUMBO_TAG_BIG: case GUMBO_TAG_DL:
	case GUMBO_TAG_DT: case GUMBO_TAG_DD: case GUMBO_TAG_BLOCKQUOTE:
	case GUMBO_TAG_PRE: case GUMBO_TAG_CODE: case GUMBO_TAG_TBODY:
	case GUMBO_TAG_THEAD: case GUMBO_TAG_TFOOT:
		if (tag == GUMBO_TAG_TBODY || tag == GUMBO_TAG_THEAD ||
		    tag == GUMBO_TAG_TFOOT)
			*attrs = HTML_A_ALIGN | HTML_A_VALIGN | HTML_A_BGCOLOR;
		break;
	case GUMBO_TAG_BR:
		*attrs = HTML_A_VOID;
		break;
	case GUMBO_TAG_HR:
		*attrs = HTML_A_VOID | HTML_A_ALIGN | HTML_A_SIZE;
		break;
	case GUMBO_TAG_FONT:
		*attrs = HTML_A_FONT;
		break;
	case GUMBO_TAG_UL: case GUMBO_TAG_OL: case GUMBO_TAG_LI:
		*attrs = HTML_A_LIST;
		break;
	case GUMBO_TAG_TABLE:
		*attrs = HTML_A_ALIGN | HTML_A_SIZE | HTML_A_TABLE | HTML_A_BGCOLOR;
		break;
	case GUMBO_TAG_TR:
		*attrs = HTML_A_ALIGN | HTML_A_VALIGN | HTML_A_SIZE |
		    HTML_A_BGCOLOR;
		break;
	case GUMBO_TAG_TD: case GUMBO_TAG_TH:
		*attrs = HTML_A_ALIGN | HTML_A_VALIGN | HTML_A_SIZE | HTML_A_SPAN |
		    HTML_A_BGCOLOR;
		break;
	case GUMBO_TAG_CAPTION:
		*attrs = HTML_A_ALIGN;
		break;
	case GUMBO_TAG_COLGROUP:
		*attrs = HTML_A_ALIGN | HTML_A_VALIGN | HTML_A_SIZE | HTML_A_SPAN;
		break;
	case GUMBO_TAG_COL:
		*attrs = HTML_A_ALIGN | HTML_A_VALIGN | HTML_A_SIZE | HTML_A_SPAN |
		    HTML_A_VOID;
		break;
	case GUMBO_TAG_A:
		*attrs = HTML_A_HREF;
		break;
	case GUMBO_TAG_ARTICLE: case GUMBO_TAG_SECTION: case GUMBO_TAG_NAV:
	case GUMBO_TAG_ASIDE: case GUMBO_TAG_HGROUP: case GUMBO_TAG_HEADER:
	case GUMBO_TAG_FOOTER: case GUMBO_TAG_ADDRESS: case GUMBO_TAG_FIGURE:
	case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_MAIN: case GUMBO_TAG_DETAILS:
	case GUMBO_TAG_SUMMARY: case GUMBO_TAG_FIELDSET: case GUMBO_TAG_LEGEND:
	case GUMBO_TAG_MENU: case GUMBO_TAG_DIR:
		*name = "div";      /* keep the block break */
		return HTML_KEEP;
	case GUMBO_TAG_XMP: case GUMBO_TAG_LISTING: case GUMBO_TAG_PLAINTEXT:
		*name = "pre";
		return HTML_KEEP;
	default:
		return HTML_UNWRAP;
	}
	*name = gumbo_normalized_tagname(tag);
	return HTML_KEEP;
}

/* Does the space-separated class list of EL hold one of WORDS? */
static bool
html_has_class(const GumboElement *el, const char *const *words)
{
	const char *cls = html_attr(el, "class"), *p, *e;
	size_t i, n;

	if (cls == NULL)
		return false;
	for (p = cls; *p != '\0'; p = e) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
		    *p == '\f')
			p++;
		e = p + strcspn(p, " \t\n\r\f");
		n = (size_t)(e - p);
		for (i = 0; n > 0 && words[i] != NULL; i++)
			if (strlen(words[i]) == n && strncasecmp(p, words[i], n) == 0)
				return true;
	}
	return false;
}

/* Is EL the header div of an Outlook desktop reply (a top border in
 * Outlook's colours)? */
static bool
html_is_outlook_header(const GumboElement *el)
{
	const char *style = html_attr(el, "style");
	char squeezed[256];
	size_t n = 0;

	if (el->tag != GUMBO_TAG_DIV || style == NULL)
		return false;
	for (; *style != '\0' && n + 1 < sizeof(squeezed); style++)
		if (*style != ' ' && *style != '\t' && *style != '\n' &&
		    *style != '\r')
			squeezed[n++] = (char)(*style >= 'A' && *style <= 'Z' ?
			    *style + 32 : *style);
	squeezed[n] = '\0';
	return strstr(squeezed, "border-top:solid#e1e1e1") != NULL ||
	    strstr(squeezed, "border-top:solid#b5c4df") != NULL;
}

/* Is EL the start of quoted history, and of which kind? */
static enum html_quote
html_quote_kind(const GumboElement *el)
{
	static const char *const cut_ids[] = { "divRplyFwdMsg", "appendonsend",
	    "mail-editor-reference-message-container", NULL };
	static const char *const drop_classes[] = { "gmail_quote",
	    "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted", NULL };
	const char *id = html_attr(el, "id"), *type;

	if (id != NULL && html_word_in(id, cut_ids))
		return HTML_QUOTE_CUT;
	if (html_is_outlook_header(el))
		return HTML_QUOTE_CUT;
	if (html_has_class(el, drop_classes))
		return HTML_QUOTE_DROP;
	type = html_attr(el, "type");
	if (el->tag == GUMBO_TAG_BLOCKQUOTE && type != NULL &&
	    strcasecmp(type, "cite") == 0)
		return HTML_QUOTE_DROP;
	return HTML_QUOTE_NONE;
}

/*
 * Where an "-----Original Message-----" marker (or a translation) starts
 * in the N bytes at T, or NULL: the words with at least two dashes on each
 * side, blanks allowed between.
 */
static const char *
html_find_original(const char *t, size_t n)
{
	static const char *const words[] = { "original message",
	    "ursprüngliche nachricht", "message d'origine", "mensaje original",
	    "oorspronkelijk bericht", "messaggio originale", NULL };
	const char *hit, *p, *q, *end = t + n;
	size_t i, wl, dashes;

	for (i = 0; words[i] != NULL; i++) {
		wl = strlen(words[i]);
		for (p = t; (size_t)(end - p) >= wl; p++) {
			if (strncasecmp(p, words[i], wl) != 0)
				continue;
			hit = p;
			for (q = hit; q > t && q[-1] == ' '; q--)
				;
			for (dashes = 0; q > t && q[-1] == '-'; q--)
				dashes++;
			if (dashes < 2)
				continue;
			p = hit + wl;
			while (p < end && *p == ' ')
				p++;
			for (dashes = 0; p < end && *p == '-'; p++)
				dashes++;
			if (dashes >= 2)
				return q;
			p = hit;
		}
	}
	return NULL;
}

/* --- nesting bound -------------------------------------------------------- */

/*
 * gumbo's tree builder scans its stack of open elements for most tokens,
 * so its time grows with the square of the nesting depth (and it frees
 * the tree recursively). Before parsing, start tags that would nest deeper
 * than HTML_DEPTH_LIMIT are removed from the input. The depth used is an
 * over-estimate of gumbo's: end tags close only where gumbo certainly
 * closes too, formatting elements (which gumbo may reopen) count until
 * their own end tag, and tags are looked for wherever gumbo might see one.
 * gumbo's depth stays within about twice the limit; mail that is not an
 * attack nests far less and passes unchanged. Tags beyond HTML_MAX_TAGS
 * go too, as gumbo spends up to a few KiB on each.
 */
#define HTML_DEPTH_LIMIT 256
#define HTML_MAX_TAGS    50000  /* tags kept: bounds gumbo's memory */

/* An element open in the estimate: its name in the input, and its tag. */
struct html_open_el {
	const char *name;
	size_t len;
	GumboTag tag;
};

/* The depth estimate. */
struct html_depth {
	struct html_open_el stack[HTML_DEPTH_LIMIT];
	size_t n;
	size_t formatting[16];  /* open count per formatting element */
	size_t formatting_open;
	size_t tags;            /* tags kept */
};

/* Index of formatting element TAG (a, b, font...), or -1. */
static int
html_formatting_index(GumboTag tag)
{
	static const GumboTag tags[] = { GUMBO_TAG_A, GUMBO_TAG_B,
	    GUMBO_TAG_BIG, GUMBO_TAG_CODE, GUMBO_TAG_EM, GUMBO_TAG_FONT,
	    GUMBO_TAG_I, GUMBO_TAG_NOBR, GUMBO_TAG_S, GUMBO_TAG_SMALL,
	    GUMBO_TAG_STRIKE, GUMBO_TAG_STRONG, GUMBO_TAG_TT, GUMBO_TAG_U };
	size_t i;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (tags[i] == tag)
			return (int)i;
	return -1;
}

/* Is TAG in the NULL-tag-ended list LIST? */
static bool
html_tag_in(GumboTag tag, const GumboTag *list)
{
	for (; *list != GUMBO_TAG_LAST; list++)
		if (*list == tag)
			return true;
	return false;
}

/* Void elements: never open. */
static bool
html_tag_void(GumboTag tag)
{
	static const GumboTag list[] = { GUMBO_TAG_AREA, GUMBO_TAG_BASE,
	    GUMBO_TAG_BR, GUMBO_TAG_COL, GUMBO_TAG_EMBED, GUMBO_TAG_HR,
	    GUMBO_TAG_IMG, GUMBO_TAG_IMAGE, GUMBO_TAG_INPUT, GUMBO_TAG_KEYGEN,
	    GUMBO_TAG_LINK, GUMBO_TAG_META, GUMBO_TAG_PARAM, GUMBO_TAG_SOURCE,
	    GUMBO_TAG_TRACK, GUMBO_TAG_WBR, GUMBO_TAG_BASEFONT,
	    GUMBO_TAG_BGSOUND, GUMBO_TAG_FRAME, GUMBO_TAG_ISINDEX,
	    GUMBO_TAG_LAST };

	return html_tag_in(tag, list);
}

/* Elements whose end tag gumbo never lets close across them: an end tag
 * for an element below one of these closes nothing in the estimate. */
static bool
html_tag_boundary(GumboTag tag)
{
	static const GumboTag list[] = { GUMBO_TAG_APPLET, GUMBO_TAG_CAPTION,
	    GUMBO_TAG_HTML, GUMBO_TAG_BODY, GUMBO_TAG_TABLE, GUMBO_TAG_TBODY,
	    GUMBO_TAG_THEAD, GUMBO_TAG_TFOOT, GUMBO_TAG_TR, GUMBO_TAG_TD,
	    GUMBO_TAG_TH, GUMBO_TAG_MARQUEE, GUMBO_TAG_OBJECT,
	    GUMBO_TAG_TEMPLATE, GUMBO_TAG_SVG, GUMBO_TAG_MATH,
	    GUMBO_TAG_FOREIGNOBJECT, GUMBO_TAG_DESC, GUMBO_TAG_TITLE,
	    GUMBO_TAG_MI, GUMBO_TAG_MO, GUMBO_TAG_MN, GUMBO_TAG_MS,
	    GUMBO_TAG_MTEXT, GUMBO_TAG_ANNOTATION_XML, GUMBO_TAG_OL,
	    GUMBO_TAG_UL, GUMBO_TAG_BUTTON, GUMBO_TAG_SELECT, GUMBO_TAG_LAST };

	return html_tag_in(tag, list);
}

/* HTML's "special" elements: an end tag for an ordinary element stops at
 * them. */
static bool
html_tag_special(GumboTag tag)
{
	static const GumboTag list[] = { GUMBO_TAG_ADDRESS, GUMBO_TAG_APPLET,
	    GUMBO_TAG_AREA, GUMBO_TAG_ARTICLE, GUMBO_TAG_ASIDE, GUMBO_TAG_BASE,
	    GUMBO_TAG_BASEFONT, GUMBO_TAG_BGSOUND, GUMBO_TAG_BLOCKQUOTE,
	    GUMBO_TAG_BODY, GUMBO_TAG_BR, GUMBO_TAG_BUTTON, GUMBO_TAG_CAPTION,
	    GUMBO_TAG_CENTER, GUMBO_TAG_COL, GUMBO_TAG_COLGROUP, GUMBO_TAG_DD,
	    GUMBO_TAG_DETAILS, GUMBO_TAG_DIR, GUMBO_TAG_DIV, GUMBO_TAG_DL,
	    GUMBO_TAG_DT, GUMBO_TAG_EMBED, GUMBO_TAG_FIELDSET,
	    GUMBO_TAG_FIGCAPTION, GUMBO_TAG_FIGURE, GUMBO_TAG_FOOTER,
	    GUMBO_TAG_FORM, GUMBO_TAG_FRAME, GUMBO_TAG_FRAMESET, GUMBO_TAG_H1,
	    GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4, GUMBO_TAG_H5,
	    GUMBO_TAG_H6, GUMBO_TAG_HEAD, GUMBO_TAG_HEADER, GUMBO_TAG_HGROUP,
	    GUMBO_TAG_HR, GUMBO_TAG_HTML, GUMBO_TAG_IFRAME, GUMBO_TAG_IMG,
	    GUMBO_TAG_INPUT, GUMBO_TAG_KEYGEN, GUMBO_TAG_LI, GUMBO_TAG_LINK,
	    GUMBO_TAG_LISTING, GUMBO_TAG_MAIN, GUMBO_TAG_MARQUEE,
	    GUMBO_TAG_MENU, GUMBO_TAG_META, GUMBO_TAG_NAV, GUMBO_TAG_NOEMBED,
	    GUMBO_TAG_NOFRAMES, GUMBO_TAG_NOSCRIPT, GUMBO_TAG_OBJECT,
	    GUMBO_TAG_OL, GUMBO_TAG_P, GUMBO_TAG_PARAM, GUMBO_TAG_PLAINTEXT,
	    GUMBO_TAG_PRE, GUMBO_TAG_SCRIPT, GUMBO_TAG_SECTION,
	    GUMBO_TAG_SELECT, GUMBO_TAG_SOURCE, GUMBO_TAG_STYLE,
	    GUMBO_TAG_SUMMARY, GUMBO_TAG_TABLE, GUMBO_TAG_TBODY, GUMBO_TAG_TD,
	    GUMBO_TAG_TEMPLATE, GUMBO_TAG_TEXTAREA, GUMBO_TAG_TFOOT,
	    GUMBO_TAG_TH, GUMBO_TAG_THEAD, GUMBO_TAG_TITLE, GUMBO_TAG_TR,
	    GUMBO_TAG_TRACK, GUMBO_TAG_UL, GUMBO_TAG_WBR, GUMBO_TAG_XMP,
	    GUMBO_TAG_SVG, GUMBO_TAG_MATH, GUMBO_TAG_FOREIGNOBJECT,
	    GUMBO_TAG_DESC, GUMBO_TAG_MI, GUMBO_TAG_MO, GUMBO_TAG_MN,
	    GUMBO_TAG_MS, GUMBO_TAG_MTEXT, GUMBO_TAG_ANNOTATION_XML,
	    GUMBO_TAG_LAST };

	return html_tag_in(tag, list);
}

/* Block start tags that close an open <p> on top of the stack (not
 * table: in quirks mode it does not). */
static bool
html_tag_closes_p(GumboTag tag)
{
	static const GumboTag list[] = { GUMBO_TAG_ADDRESS, GUMBO_TAG_ARTICLE,
	    GUMBO_TAG_ASIDE, GUMBO_TAG_BLOCKQUOTE, GUMBO_TAG_CENTER,
	    GUMBO_TAG_DETAILS, GUMBO_TAG_DIR, GUMBO_TAG_DIV, GUMBO_TAG_DL,
	    GUMBO_TAG_FIELDSET, GUMBO_TAG_FIGCAPTION, GUMBO_TAG_FIGURE,
	    GUMBO_TAG_FOOTER, GUMBO_TAG_HEADER, GUMBO_TAG_HGROUP,
	    GUMBO_TAG_MAIN, GUMBO_TAG_MENU, GUMBO_TAG_NAV, GUMBO_TAG_OL,
	    GUMBO_TAG_P, GUMBO_TAG_SECTION, GUMBO_TAG_SUMMARY, GUMBO_TAG_UL,
	    GUMBO_TAG_H1, GUMBO_TAG_H2, GUMBO_TAG_H3, GUMBO_TAG_H4,
	    GUMBO_TAG_H5, GUMBO_TAG_H6, GUMBO_TAG_PRE, GUMBO_TAG_LISTING,
	    GUMBO_TAG_FORM, GUMBO_TAG_LAST };

	return html_tag_in(tag, list);
}

/* Pop the top of D when it is one of TAGS (GUMBO_TAG_LAST-ended). */
static void
html_depth_pop_if(struct html_depth *d, const GumboTag *tags)
{
	if (d->n > 0 && html_tag_in(d->stack[d->n - 1].tag, tags))
		d->n--;
}

/* The implicit end tags a start tag TAG certainly causes when the
 * element it closes is the current one. */
static void
html_depth_implied(struct html_depth *d, GumboTag tag)
{
	static const GumboTag li[] = { GUMBO_TAG_LI, GUMBO_TAG_LAST };
	static const GumboTag ddt[] = { GUMBO_TAG_DD, GUMBO_TAG_DT,
	    GUMBO_TAG_LAST };
	static const GumboTag option[] = { GUMBO_TAG_OPTION, GUMBO_TAG_LAST };
	static const GumboTag optgroup[] = { GUMBO_TAG_OPTGROUP, GUMBO_TAG_LAST };
	static const GumboTag cell[] = { GUMBO_TAG_TD, GUMBO_TAG_TH,
	    GUMBO_TAG_LAST };
	static const GumboTag row[] = { GUMBO_TAG_TR, GUMBO_TAG_LAST };
	static const GumboTag section[] = { GUMBO_TAG_TBODY, GUMBO_TAG_THEAD,
	    GUMBO_TAG_TFOOT, GUMBO_TAG_LAST };
	static const GumboTag p[] = { GUMBO_TAG_P, GUMBO_TAG_LAST };

	switch (tag) {
	case GUMBO_TAG_LI:
		html_depth_pop_if(d, li);
		break;
	case GUMBO_TAG_DD: case GUMBO_TAG_DT:
		html_depth_pop_if(d, ddt);
		break;
	case GUMBO_TAG_OPTION:
		html_depth_pop_if(d, option);
		break;
	case GUMBO_TAG_OPTGROUP:
		html_depth_pop_if(d, option);
		html_depth_pop_if(d, optgroup);
		break;
	case GUMBO_TAG_TD: case GUMBO_TAG_TH:
		html_depth_pop_if(d, cell);
		break;
	case GUMBO_TAG_TR:
		html_depth_pop_if(d, cell);
		html_depth_pop_if(d, row);
		break;
	case GUMBO_TAG_TBODY: case GUMBO_TAG_THEAD: case GUMBO_TAG_TFOOT:
		html_depth_pop_if(d, cell);
		html_depth_pop_if(d, row);
		html_depth_pop_if(d, section);
		break;
	default:
		break;
	}
	if (html_tag_closes_p(tag))
		html_depth_pop_if(d, p);
}

/* Do open element E and a tag named NAME (LEN bytes, tag TAG) match? */
static bool
html_depth_same(const struct html_open_el *e, const char *name, size_t len,
    GumboTag tag)
{
	if (e->tag != tag)
		return false;
	return tag != GUMBO_TAG_UNKNOWN ||
	    (e->len == len && strncasecmp(e->name, name, len) == 0);
}

/* An end tag: close in the estimate only where gumbo surely closes. */
static void
html_depth_end(struct html_depth *d, const char *name, size_t len,
    GumboTag tag)
{
	int f = html_formatting_index(tag);
	size_t k;
	bool special = html_tag_special(tag), crossed = false;

	if (f >= 0) {
		if (d->formatting[f] > 0) {
			d->formatting[f]--;
			d->formatting_open--;
		}
		return;
	}
	if (tag == GUMBO_TAG_HTML || tag == GUMBO_TAG_BODY ||
	    tag == GUMBO_TAG_HEAD || tag == GUMBO_TAG_BR)
		return;             /* gumbo does not pop for these */
	for (k = d->n; k > 0; k--) {
		const struct html_open_el *e = &d->stack[k - 1];

		if (html_depth_same(e, name, len, tag)) {
			if (crossed)
				return;
			if (tag == GUMBO_TAG_FORM) {
				/* </form> takes out the form alone */
				memmove(&d->stack[k - 1], &d->stack[k],
				    (d->n - k) * sizeof(d->stack[0]));
				d->n--;
			} else
				d->n = k - 1;
			return;
		}
		if (special ? html_tag_boundary(e->tag) : html_tag_special(e->tag))
			crossed = true;
	}
}

/* A start tag: false when it would nest too deep, or is one too many
 * (drop it). */
static bool
html_depth_start(struct html_depth *d, const char *name, size_t len,
    GumboTag tag)
{
	int f = html_formatting_index(tag);

	if (d->tags >= HTML_MAX_TAGS)
		return false;
	if (html_tag_void(tag)) {
		d->tags++;
		return true;
	}
	html_depth_implied(d, tag);
	if (d->n + d->formatting_open >= HTML_DEPTH_LIMIT)
		return false;
	d->tags++;
	if (f >= 0) {
		d->formatting[f]++;
		d->formatting_open++;
		return true;
	}
	d->stack[d->n].name = name;
	d->stack[d->n].len = len;
	d->stack[d->n].tag = tag;
	d->n++;
	return true;
}

/* Is C an ASCII letter? */
static bool
html_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Offset just past the first '>' at or after I (LEN if none). */
static size_t
html_skip_past(const char *in, size_t len, size_t i)
{
	const char *gt = i < len ? memchr(in + i, '>', len - i) : NULL;

	return gt != NULL ? (size_t)(gt - in) + 1 : len;
}

/* Offset past the comment that starts at I ("<!--"): its earliest
 * possible end ("-->", "--!>", or "<!-->" / "<!--->"). */
static size_t
html_skip_comment(const char *in, size_t len, size_t i)
{
	size_t j = i + 4;

	if (j < len && in[j] == '>')
		return j + 1;
	if (j + 1 < len && in[j] == '-' && in[j + 1] == '>')
		return j + 2;
	for (; j + 2 < len; j++) {
		if (in[j] != '-' || in[j + 1] != '-')
			continue;
		if (in[j + 2] == '>')
			return j + 3;
		if (j + 3 < len && in[j + 2] == '!' && in[j + 3] == '>')
			return j + 4;
	}
	return len;
}

/* The tag of name NAME (LEN bytes), any case. */
static GumboTag
html_tag_of(const char *name, size_t len)
{
	char lower[32];
	size_t i;

	if (len == 0 || len >= sizeof(lower))
		return GUMBO_TAG_UNKNOWN;
	for (i = 0; i < len; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] + 32 : name[i]);
	lower[len] = '\0';
	return gumbo_tagn_enum(lower, (unsigned)len);
}

/*
 * IN without the start tags that would nest deeper than HTML_DEPTH_LIMIT,
 * malloc'd into *OUT (length *OUTLEN); *OUT stays NULL when nothing had
 * to go. False on ENOMEM.
 */
static bool
html_bound_depth(const char *in, size_t len, char **out, size_t *outlen)
{
	struct html_depth *d;
	size_t i = 0, copied = 0, n = 0, name_end, end;
	char *buf = NULL;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return false;
	while (i < len) {
		const char *lt = memchr(in + i, '<', len - i);
		bool is_end;
		GumboTag tag;

		if (lt == NULL || (size_t)(lt - in) + 1 >= len)
			break;
		i = (size_t)(lt - in);
		if (in[i + 1] == '!') {
			i = len - i >= 4 && memcmp(in + i, "<!--", 4) == 0 ?
			    html_skip_comment(in, len, i) :
			    html_skip_past(in, len, i + 2);
			continue;
		}
		if (in[i + 1] == '?') {
			i = html_skip_past(in, len, i + 2);
			continue;
		}
		is_end = in[i + 1] == '/';
		if (is_end && (i + 2 >= len || !html_is_alpha(in[i + 2]))) {
			i = html_skip_past(in, len, i + 2);   /* bogus comment */
			continue;
		}
		if (!is_end && !html_is_alpha(in[i + 1])) {
			i++;
			continue;
		}
		name_end = i + (is_end ? 2 : 1);
		while (name_end < len && strchr(" \t\n\r\f/>", in[name_end]) == NULL)
			name_end++;
		end = html_skip_past(in, len, name_end);
		tag = html_tag_of(in + i + (is_end ? 2 : 1),
		    name_end - i - (is_end ? 2 : 1));
		if (is_end && d->tags < HTML_MAX_TAGS) {
			d->tags++;
			html_depth_end(d, in + i + 2, name_end - i - 2, tag);
		} else if (is_end ||
		    !html_depth_start(d, in + i + 1, name_end - i - 1, tag)) {
			if (buf == NULL && (buf = malloc(len + 1)) == NULL) {
				free(d);
				return false;
			}
			memcpy(buf + n, in + copied, i - copied);
			n += i - copied;
			copied = end;
		} else if (tag == GUMBO_TAG_PLAINTEXT)
			break;          /* the rest is text */
		i = end;
	}
	free(d);
	if (buf != NULL) {
		memcpy(buf + n, in + copied, len - copied);
		n += len - copied;
		buf[n] = '\0';
		*out = buf;
		*outlen = n;
	}
	return true;
}

/* --- the walk ------------------------------------------------------------ */

/* Enter NODE; CLOSE is the end tag name to write when leaving it. */
static bool
html_push(struct html_ctx *c, const GumboNode *node, const char *close)
{
	struct html_frame *grown;

	if (c->depth == c->stack_cap) {
		size_t want = c->stack_cap == 0 ? 64 : c->stack_cap * 2;

		grown = realloc(c->stack, want * sizeof(*grown));
		if (grown == NULL) {
			c->out.u.oom = true;
			return false;
		}
		c->stack = grown;
		c->stack_cap = want;
	}
	c->stack[c->depth].node = node;
	c->stack[c->depth].next = 0;
	c->stack[c->depth].close = close;
	c->depth++;
	return true;
}

/* Stop here: quoted history follows. A just-written <hr> (Outlook's
 * separator) goes too. */
static void
html_cut(struct html_ctx *c)
{
	size_t i;

	if (c->hr_end != 0 && c->hr_end <= c->out.u.len) {
		for (i = c->hr_end; i < c->out.u.len; i++)
			if (strchr(" \t\n\r", c->out.u.s[i]) == NULL)
				break;
		if (i == c->out.u.len) {
			c->out.u.len = c->hr_start;
			c->out.u.s[c->out.u.len] = '\0';
		}
	}
	c->stop = true;
	c->trimmed = true;
}

/* Write text, cutting at an "Original Message" marker when trimming. */
static void
html_text(struct html_ctx *c, const char *t)
{
	size_t n = strlen(t);
	const char *cut = c->trim ? html_find_original(t, n) : NULL;

	if (cut != NULL)
		n = (size_t)(cut - t);
	if (!html_put_text(&c->out, t, n, &c->visible))
		c->stop = true;
	else if (cut != NULL)
		html_cut(c);
}

/* Percent-decode the cid: reference V into OUT (HTML_CID_MAX + 1), NUL
 * bytes left out, without surrounding blanks or <>. */
static void
html_cid_decode(const char *v, char *out)
{
	size_t n = 0;

	while (*v == ' ')
		v++;
	for (; *v != '\0' && n < HTML_CID_MAX; v++) {
		int hi = v[0] == '%' ? util_hex_digit(v[1]) : -1;
		int lo = hi >= 0 ? util_hex_digit(v[2]) : -1;

		if (lo >= 0) {
			if (hi != 0 || lo != 0)
				out[n++] = (char)(hi << 4 | lo);
			v += 2;
		} else
			out[n++] = *v;
	}
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '>'))
		out[--n] = '\0';
	if (out[0] == '<')
		memmove(out, out + 1, n);
}

/* Is a width or height value V that of a tracking pixel (0 or 1)? */
static bool
html_is_pixel(const char *v)
{
	return v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "1") == 0 ||
	    strcasecmp(v, "0px") == 0 || strcasecmp(v, "1px") == 0);
}

/* An image becomes "[image: NAME]" (known cid:) or "[image]"; tracking
 * pixels vanish. */
static void
html_image(struct html_ctx *c, const GumboElement *el)
{
	const char *src = html_attr(el, "src"), *name = NULL;
	char cid[HTML_CID_MAX + 1];
	bool cid_ref;

	while (src != NULL && (*src == ' ' || *src == '\t' || *src == '\n' ||
	    *src == '\r'))
		src++;
	cid_ref = src != NULL && strncasecmp(src, "cid:", 4) == 0;
	if (!cid_ref && (html_is_pixel(html_attr(el, "width")) ||
	    html_is_pixel(html_attr(el, "height"))))
		return;
	if (cid_ref && c->opt->cid_lookup != NULL) {
		html_cid_decode(src + 4, cid);
		if (cid[0] != '\0')
			name = c->opt->cid_lookup(cid, c->opt->cid_arg);
	}
	if (name != NULL && name[0] != '\0') {
		if (!html_buf_puts(&c->out, "[image: ") ||
		    !html_put_text(&c->out, name, strlen(name), &c->visible) ||
		    !html_buf_puts(&c->out, "]"))
			c->stop = true;
	} else if (!html_buf_puts(&c->out, "[image]"))
		c->stop = true;
	c->visible = true;
}

/* Append ` NAME="VALUE"` (escaped) to B. */
static void
html_put_attr(struct html_buf *b, const char *name, const char *value)
{
	bool ignored;

	html_buf_puts(b, " ");
	html_buf_puts(b, name);
	html_buf_puts(b, "=\"");
	html_put_text(b, value, strlen(value), &ignored);
	html_buf_puts(b, "\"");
}

/* Is attribute NAME=VALUE allowed on an element with attribute groups
 * ATTRS (style and href are handled by the caller)? */
static bool
html_attr_ok(const char *name, const char *value, unsigned attrs, GumboTag tag)
{
	static const char *const aligns[] = { "left", "right", "center",
	    "justify", "top", "bottom", NULL };
	static const char *const valigns[] = { "top", "middle", "bottom",
	    "baseline", NULL };
	static const char *const dirs[] = { "ltr", "rtl", "auto", NULL };
	static const char *const ultypes[] = { "disc", "circle", "square", NULL };

	if (strcmp(name, "title") == 0)
		return html_is_title(value);
	if (strcmp(name, "dir") == 0)
		return html_word_in(value, dirs);
	if (strcmp(name, "lang") == 0)
		return html_chars_ok(value, 1, 35, "-", true);
	if ((attrs & HTML_A_ALIGN) && strcmp(name, "align") == 0)
		return html_word_in(value, aligns);
	if ((attrs & HTML_A_VALIGN) && strcmp(name, "valign") == 0)
		return html_word_in(value, valigns);
	if ((attrs & HTML_A_SIZE) && (strcmp(name, "width") == 0 ||
	    strcmp(name, "height") == 0))
		return html_is_length(value);
	if ((attrs & HTML_A_SPAN) && (strcmp(name, "colspan") == 0 ||
	    strcmp(name, "rowspan") == 0 || strcmp(name, "span") == 0))
		return html_is_small_number(value);
	if ((attrs & HTML_A_TABLE) && strcmp(name, "border") == 0)
		return html_is_pixels_upto(value, 20);
	if ((attrs & HTML_A_TABLE) && (strcmp(name, "cellpadding") == 0 ||
	    strcmp(name, "cellspacing") == 0))
		return html_is_pixels_upto(value, 50);
	if ((attrs & HTML_A_BGCOLOR) && strcmp(name, "bgcolor") == 0)
		return html_is_color(value);
	if (attrs & HTML_A_FONT) {
		if (strcmp(name, "color") == 0)
			return html_is_color(value);
		if (strcmp(name, "size") == 0)
			return html_chars_ok(value, 1, 2, "+-1234567", false);
		if (strcmp(name, "face") == 0)
			return html_chars_ok(value, 1, 128, " ,'_-", true);
	}
	if (attrs & HTML_A_LIST) {
		if (strcmp(name, "start") == 0 && tag == GUMBO_TAG_OL)
			return html_is_small_number(value);
		if (strcmp(name, "type") == 0 && tag == GUMBO_TAG_OL)
			return html_chars_ok(value, 1, 1, "1aAiI", false);
		if (strcmp(name, "type") == 0 && tag == GUMBO_TAG_UL)
			return html_word_in(value, ultypes);
	}
	return false;
}

/*
 * Write the start tag of allowed element EL as NAME with the attributes
 * its groups ATTRS allow; HREF is the cleaned link of an <a>. The tag goes
 * in whole or not at all; false when it did not fit (or ENOMEM).
 */
static bool
html_open(struct html_ctx *c, const char *name, const GumboElement *el,
    unsigned attrs, const char *href)
{
	struct html_buf tag = { .limit = SIZE_MAX };
	size_t i, close_len = (attrs & HTML_A_VOID) ? 0 : strlen(name) + 3;
	bool ok;

	html_buf_puts(&tag, "<");
	html_buf_puts(&tag, name);
	if (href != NULL) {
		html_put_attr(&tag, "href", href);
		html_buf_puts(&tag, " rel=\"noopener noreferrer\" target=\"_blank\"");
	}
	for (i = 0; i < el->attributes.length; i++) {
		const GumboAttribute *a = el->attributes.data[i];

		if (strcmp(a->name, "style") == 0) {
			char *style = html_style_clean(a->value);

			if (style != NULL)
				html_put_attr(&tag, "style", style);
			free(style);
		} else if (strncmp(a->name, "on", 2) != 0 &&
		    html_attr_ok(a->name, a->value, attrs, el->tag))
			html_put_attr(&tag, a->name, a->value);
	}
	html_buf_puts(&tag, ">");
	if (tag.u.oom) {
		free(tag.u.s);
		c->out.u.oom = true;
		return false;
	}
	/* the start tag and, kept in reserve, its end tag */
	ok = tag.u.len <= SIZE_MAX - close_len &&
	    html_buf_fits(&c->out, tag.u.len + close_len) &&
	    html_buf_put(&c->out, tag.u.s, tag.u.len);
	if (ok)
		c->out.reserve += close_len;
	free(tag.u.s);
	return ok;
}

/* Write the end tag </NAME> out of the reserve. */
static void
html_close(struct html_ctx *c, const char *name)
{
	char tag[32];
	int n = snprintf(tag, sizeof(tag), "</%s>", name);

	if (n > 0 && (size_t)n < sizeof(tag))
		html_buf_put_reserved(&c->out, tag, (size_t)n);
	if (c->nest > 0)
		c->nest--;
}

/* Handle element NODE: keep, unwrap, drop, trim or replace it. */
static void
html_element(struct html_ctx *c, const GumboNode *node)
{
	const GumboElement *el = &node->v.element;
	enum html_quote quote;
	enum html_action action;
	const char *name;
	unsigned attrs;
	char *href = NULL;
	size_t before;

	if (node->type == GUMBO_NODE_TEMPLATE ||
	    el->tag_namespace != GUMBO_NAMESPACE_HTML)
		return;             /* foreign content (svg, math) goes whole */
	action = html_tag_action(el->tag, &name, &attrs);
	if (action == HTML_DROP)
		return;
	if (c->trim && (quote = html_quote_kind(el)) != HTML_QUOTE_NONE) {
		if (quote == HTML_QUOTE_CUT)
			html_cut(c);
		else
			c->trimmed = true;
		return;
	}
	if (el->tag == GUMBO_TAG_IMG) {
		html_image(c, el);
		return;
	}
	if (el->tag == GUMBO_TAG_A && action == HTML_KEEP) {
		const char *v = html_attr(el, "href");

		href = v != NULL ? html_url_clean(v) : NULL;
		if (href == NULL)
			action = HTML_UNWRAP;
	}
	if (action == HTML_KEEP && c->nest >= HTML_MAX_NEST &&
	    !(attrs & HTML_A_VOID))
		action = HTML_UNWRAP;
	if (action == HTML_UNWRAP) {
		free(href);
		html_push(c, node, NULL);
		return;
	}
	before = c->out.u.len;
	if (!html_open(c, name, el, attrs, href)) {
		free(href);
		c->stop = true;
		return;
	}
	free(href);
	if (el->tag == GUMBO_TAG_HR) {
		c->hr_start = before;
		c->hr_end = c->out.u.len;
	}
	if (attrs & HTML_A_VOID)
		return;
	c->nest++;
	if (!html_push(c, node, name))
		html_close(c, name);
}

/* The children of NODE, or NULL for a leaf. */
static const GumboVector *
html_children(const GumboNode *node)
{
	if (node->type == GUMBO_NODE_DOCUMENT)
		return &node->v.document.children;
	if (node->type == GUMBO_NODE_ELEMENT || node->type == GUMBO_NODE_TEMPLATE)
		return &node->v.element.children;
	return NULL;
}

/* Walk the tree under ROOT, writing what is allowed. */
static void
html_walk(struct html_ctx *c, const GumboNode *root)
{
	struct html_frame *f;
	const GumboVector *kids;
	const GumboNode *child;

	if (!html_push(c, root, NULL))
		return;
	while (c->depth > 0 && !c->out.u.oom) {
		f = &c->stack[c->depth - 1];
		kids = html_children(f->node);
		if (!c->stop && kids != NULL && f->next < kids->length) {
			child = kids->data[f->next++];
			switch (child->type) {
			case GUMBO_NODE_TEXT:
			case GUMBO_NODE_WHITESPACE:
			case GUMBO_NODE_CDATA:
				html_text(c, child->v.text.text);
				break;
			case GUMBO_NODE_ELEMENT:
			case GUMBO_NODE_TEMPLATE:
				html_element(c, child);
				break;
			case GUMBO_NODE_DOCUMENT:
			case GUMBO_NODE_COMMENT:
			default:
				break;
			}
			continue;
		}
		if (f->close != NULL)
			html_close(c, f->close);
		c->depth--;
	}
}

/* One rendering of TREE; *TRIMMED and *VISIBLE report on it. */
static char *
html_render(const GumboOutput *tree, const struct html_options *opt,
    bool trim, bool *trimmed, bool *visible)
{
	struct html_ctx c;
	size_t mark = sizeof(HTML_CUT_MARK) - 1;

	memset(&c, 0, sizeof(c));
	c.opt = opt;
	c.trim = trim;
	c.out.limit = opt->max_output != 0 ? opt->max_output :
	    HTML_DEFAULT_MAX_OUTPUT;
	c.out.reserve = c.out.limit >= mark ? mark : 0;
	c.out.u.max = c.out.limit;      /* never more memory than the result */
	html_walk(&c, tree->document);
	free(c.stack);
	if (c.out.full && c.out.reserve >= mark)
		html_buf_put_reserved(&c.out, HTML_CUT_MARK, mark);
	*trimmed = c.trimmed;
	*visible = c.visible;
	return html_buf_finish(&c.out);
}

/* Sanitise mail HTML. */
char *
html_sanitize(const char *html, size_t len, const struct html_options *opt)
{
	static const struct html_options defaults;
	GumboOptions options = kGumboDefaultOptions;
	GumboOutput *tree;
	char *out, *bounded;
	size_t bounded_len = 0;
	bool trimmed = false, visible = false;

	if (opt == NULL)
		opt = &defaults;
	if (html == NULL) {
		html = "";
		len = 0;
	}
	if (len > HTML_MAX_INPUT) {
		len = HTML_MAX_INPUT;
		while (len > 0 && ((unsigned char)html[len] & 0xc0) == 0x80)
			len--;
	}
	if (!html_bound_depth(html, len, &bounded, &bounded_len))
		return NULL;
	if (bounded != NULL) {
		html = bounded;
		len = bounded_len;
	}
	options.max_errors = 0;     /* the error list is of no use here */
	tree = gumbo_parse_with_options(&options, html, len);
	if (tree == NULL) {
		free(bounded);
		return NULL;
	}
	out = html_render(tree, opt, opt->trim_quotes, &trimmed, &visible);
	if (out != NULL && opt->trim_quotes && trimmed && !visible) {
		/* trimming left nothing: the quote is the message */
		free(out);
		out = html_render(tree, opt, false, &trimmed, &visible);
	}
	gumbo_destroy_output(&options, tree);
	free(bounded);
	return out;
}

/* --- plain text ---------------------------------------------------------- */

/* One line of the text: offset, length without the line break, kept? */
struct html_line {
	size_t off;
	size_t len;
	bool keep;
};

/* Does line L (N bytes) start with PREFIX (any case)? */
static bool
html_line_starts(const char *l, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && strncasecmp(l, prefix, k) == 0;
}

/* Is line L (N bytes) blank? */
static bool
html_line_blank(const char *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strchr(" \t\r\f", l[i]) == NULL)
			return false;
	return true;
}

/* Is line L (N bytes) an attribution: ending in ':' and saying "wrote"
 * (or a translation)? */
static bool
html_line_attribution(const char *l, size_t n)
{
	static const char *const verbs[] = { "wrote", "schrieb", "crit",
	    "escribi", "scritto", "schreef", "skrev", "napisa", NULL };
	size_t i, k, j;

	while (n > 0 && strchr(" \t\r", l[n - 1]) != NULL)
		n--;
	if (n == 0 || l[n - 1] != ':')
		return false;
	for (i = 0; verbs[i] != NULL; i++) {
		k = strlen(verbs[i]);
		for (j = 0; j + k <= n; j++)
			if (strncasecmp(l + j, verbs[i], k) == 0)
				return true;
	}
	return false;
}

/* Is line L (N bytes) a row of at least ten underscores? */
static bool
html_line_underscores(const char *l, size_t n)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++) {
		if (l[i] == '_')
			count++;
		else if (strchr(" \t\r", l[i]) == NULL)
			return false;
	}
	return count >= 10;
}

/* Index of the first kept non-blank line after I, or N. */
static size_t
html_next_line(const char *text, const struct html_line *lines, size_t n,
    size_t i)
{
	for (i++; i < n; i++)
		if (!html_line_blank(text + lines[i].off, lines[i].len))
			break;
	return i;
}

/* Mark the quoted lines of TEXT as not kept (see html_from_text). */
static void
html_text_trim(const char *text, struct html_line *lines, size_t n)
{
	size_t i, j, k;

	for (i = 0; i < n; i++) {
		const char *l = text + lines[i].off;
		size_t len = lines[i].len;
		bool cut = false;

		j = html_next_line(text, lines, n, i);
		if (html_find_original(l, len) != NULL)
			cut = true;     /* -----Original Message----- */
		else if (html_line_underscores(l, len))
			cut = j < n && html_line_starts(text + lines[j].off,
			    lines[j].len, "From:");     /* Outlook's separator */
		else if (html_line_starts(l, len, "From:"))
			cut = j < n && html_line_starts(text + lines[j].off,
			    lines[j].len, "Sent:");     /* Outlook's header */
		if (cut) {
			for (; i < n; i++)
				lines[i].keep = false;
			return;
		}
		if (len == 0 || l[0] != '>')
			continue;
		/* a quoted block: drop it and the attribution above it */
		lines[i].keep = false;
		for (k = i; k > 0 && lines[k - 1].keep &&
		    html_line_blank(text + lines[k - 1].off, lines[k - 1].len); k--)
			;
		if (k > 0 && lines[k - 1].keep && html_line_attribution(
		    text + lines[k - 1].off, lines[k - 1].len)) {
			lines[k - 1].keep = false;
			if (k > 1 && !html_line_starts(text + lines[k - 1].off,
			    lines[k - 1].len, "On ") &&
			    html_line_starts(text + lines[k - 2].off,
			    lines[k - 2].len, "On "))
				lines[k - 2].keep = false;
			for (; k < i; k++)
				lines[k].keep = false;
		}
	}
}

/* Append line L (N bytes) escaped, runs of blanks kept as &nbsp;. */
static void
html_put_line(struct html_buf *b, const char *l, size_t n)
{
	size_t i, start = 0;
	bool after_space = true, ignored;

	for (i = 0; i < n; i++) {
		if (l[i] != ' ' && l[i] != '\t') {
			after_space = false;
			continue;
		}
		html_put_text(b, l + start, i - start, &ignored);
		start = i + 1;
		if (l[i] == '\t')
			html_buf_puts(b, "&nbsp;&nbsp;&nbsp;&nbsp;");
		else if (after_space)
			html_buf_puts(b, "&nbsp;");
		else
			html_buf_puts(b, " ");
		after_space = true;
	}
	html_put_text(b, l + start, n - start, &ignored);
}

/* Plain text to HTML. */
char *
html_from_text(const char *text, size_t len, bool trim_quotes)
{
	struct html_buf b = { .limit = SIZE_MAX };
	struct html_line *lines;
	size_t n = 1, i, last, line;
	bool any = false, first = true;

	if (text == NULL) {
		text = "";
		len = 0;
	}
	for (i = 0; i < len; i++)
		if (text[i] == '\n')
			n++;
	lines = calloc(n, sizeof(*lines));
	if (lines == NULL)
		return NULL;
	for (i = 0, line = 0, last = 0; i <= len; i++) {
		if (i < len && text[i] != '\n')
			continue;
		lines[line].off = last;
		lines[line].len = i - last;
		if (lines[line].len > 0 && text[i - 1] == '\r')
			lines[line].len--;
		lines[line].keep = true;
		line++;
		last = i + 1;
	}
	if (trim_quotes && len > 0) {
		html_text_trim(text, lines, n);
		for (i = 0; i < n && !any; i++)
			any = lines[i].keep &&
			    !html_line_blank(text + lines[i].off, lines[i].len);
		if (!any)
			for (i = 0; i < n; i++)
				lines[i].keep = true;
	}
	while (n > 0 && (!lines[n - 1].keep ||
	    html_line_blank(text + lines[n - 1].off, lines[n - 1].len)))
		n--;
	html_buf_puts(&b, "<div>");
	for (i = 0; i < n; i++) {
		if (!lines[i].keep)
			continue;
		if (!first)
			html_buf_puts(&b, "<br>");
		html_put_line(&b, text + lines[i].off, lines[i].len);
		first = false;
	}
	html_buf_puts(&b, "</div>");
	free(lines);
	return html_buf_finish(&b);
}
