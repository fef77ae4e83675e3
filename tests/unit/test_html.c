/*
 * test_html.c - unit tests for common/html.c: a table of XSS vectors that
 * must come out harmless, benign markup that must survive, cid: image
 * placeholders, quote trimming (Outlook, Gmail, Apple Mail, Thunderbird,
 * "Original Message"), text-to-HTML with trimming, the output cap and the
 * nesting bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "html.h"

/* Output fragments no sanitised vector may contain (any case). */
static const char *const forbidden[] = {
	"<script", "onerror", "onload", "javascript:", "vbscript:", "data:",
	"<iframe", "<svg", "<style", "expression(", "url(", "<form", "<meta",
	"<base", "<object", "<embed", "<link", "<math", "<img", "<input",
	"<button", "<textarea", "<frame", "<applet", "onmouseover", "onclick",
	"onfocus", "ontoggle", "srcdoc", "behavior", NULL
};

struct xss_case {
	const char *name;
	const char *html;
	size_t len;             /* 0: strlen(html) */
};

#define NUL_CASE(name, lit) { name, lit, sizeof(lit) - 1 }

static const struct xss_case xss_cases[] = {
	{ "script", "<script>alert(1)</script>", 0 },
	{ "script src", "<SCRIPT SRC=http://xss.example/xss.js></SCRIPT>", 0 },
	{ "script in attribute-less tag soup",
	    "<<SCRIPT>alert(\"XSS\");//<</SCRIPT>", 0 },
	{ "img onerror", "<img src=x onerror=alert(1)>", 0 },
	{ "img javascript src", "<IMG SRC=\"javascript:alert('XSS');\">", 0 },
	{ "img javascript mixed case", "<IMG SRC=JaVaScRiPt:alert('XSS')>", 0 },
	{ "img onmouseover", "<IMG SRC=# onmouseover=\"alert('xxs')\">", 0 },
	{ "img eval src", "<img src=x:alert(alt) onerror=eval(src) alt=0>", 0 },
	{ "img tab in scheme", "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">", 0 },
	{ "href decimal entity", "<a href=\"&#106;avascript:alert(1)\">x</a>", 0 },
	{ "href hex entities",
	    "<a href=\"&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;"
	    "&#x74;&#x3A;alert(1)\">x</a>", 0 },
	{ "href padded entities",
	    "<a href=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099"
	    "&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)\">x</a>", 0 },
	{ "href tab in scheme", "<a href=\"jav\tascript:alert(1)\">x</a>", 0 },
	{ "href newline entity", "<a href=\"jav&#x0A;ascript:alert(1)\">x</a>",
	    0 },
	{ "href leading control", "<a href=\" &#14; javascript:alert(1)\">x</a>",
	    0 },
	{ "href mixed case", "<a href=\"jAvAsCrIpT:alert(1)\">x</a>", 0 },
	{ "href colon entity", "<a href=\"javascript&colon;alert(1)\">x</a>", 0 },
	{ "href zero-width space", "<a href=\"java&#8203;script:alert(1)\">x</a>",
	    0 },
	{ "href vbscript", "<a href=\"vbscript:msgbox(1)\">x</a>", 0 },
	{ "href data base64",
	    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg"
	    "==\">x</a>", 0 },
	{ "href data markup",
	    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>", 0 },
	{ "href http without slashes", "<a href=\"http:javascript:alert(1)\">x</a>",
	    0 },
	{ "svg onload", "<svg onload=alert(1)>", 0 },
	{ "svg script", "<svg><script>alert(1)</script></svg>", 0 },
	{ "svg xlink", "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text>"
	    "</a></svg>", 0 },
	{ "iframe javascript", "<iframe src=\"javascript:alert(1)\"></iframe>", 0 },
	{ "iframe srcdoc",
	    "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\"></iframe>",
	    0 },
	{ "math mglyph style",
	    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", 0 },
	{ "style import", "<style>@import 'http://xss.example/xss.css';</style>",
	    0 },
	{ "style url javascript",
	    "<div style=\"background:url(javascript:alert(1))\">x</div>", 0 },
	{ "style expression", "<div style=\"width: expression(alert(1));\">x</div>",
	    0 },
	{ "style comment in expression",
	    "<div style=\"xss:expr/*XSS*/ession(alert('XSS'))\">x</div>", 0 },
	{ "style escapes",
	    "<div style=\"color:\\72 ed; background:\\75 rl(javascript:alert(1))\">"
	    "x</div>", 0 },
	{ "style unicode escapes",
	    "<DIV STYLE=\"background-image:\\0075\\0072\\006C\\0028'\\006a\\0061"
	    "\\0076\\0061\\0073\\0063\\0072\\0069\\0070\\0074\\003a\\0061\\006c"
	    "\\0065\\0072\\0074\\0028.1027\\0058.1053\\0053\\0027\\0029'\\0029\">",
	    0 },
	{ "style behavior", "<div style=\"behavior: url(x.htc);\">x</div>", 0 },
	{ "style breaking out", "<p style=\"font-family:'x';}</style>"
	    "<script>alert(1)</script>\">x</p>", 0 },
	{ "meta refresh", "<meta http-equiv=\"refresh\" "
	    "content=\"0;url=javascript:alert(1);\">", 0 },
	{ "base href", "<base href=\"javascript:alert(1)//\"><a href=x>x</a>", 0 },
	{ "form action", "<form action=\"javascript:alert(1)\"><input type=submit>"
	    "</form>", 0 },
	{ "button formaction", "<button formaction=javascript:alert(1)>b</button>",
	    0 },
	{ "object data", "<object data=\"javascript:alert(1)\"></object>", 0 },
	{ "embed data", "<embed src=\"data:image/svg+xml;base64,PHN2Zz4=\">", 0 },
	{ "applet", "<applet code=\"x\" onload=alert(1)></applet>", 0 },
	{ "link stylesheet", "<link rel=stylesheet href=\"javascript:alert(1)\">",
	    0 },
	{ "body onload", "<body onload=alert(1)>hi</body>", 0 },
	{ "b onmouseover", "<b onmouseover=alert(1)>x</b>", 0 },
	{ "details ontoggle", "<details open ontoggle=alert(1)>x</details>", 0 },
	{ "select autofocus", "<select onfocus=alert(1) autofocus>", 0 },
	{ "table background",
	    "<TABLE BACKGROUND=\"javascript:alert('XSS')\"><TD BACKGROUND="
	    "\"javascript:alert(1)\">x</TD></TABLE>", 0 },
	{ "frameset", "<frameset><frame src=\"javascript:alert(1)\"></frameset>",
	    0 },
	{ "template", "<template><script>alert(1)</script></template>", 0 },
	{ "isindex", "<isindex action=javascript:alert(1) type=image>", 0 },
	{ "unclosed tag", "<img src=\"x", 0 },
	{ "unclosed script", "<script>alert(1)", 0 },
	{ "nested quotes in title",
	    "<a href=\"https://ok.example/\" title='\"><script>alert(1)</script>'>"
	    "x</a>", 0 },
	{ "unquoted attributes", "<a href=https://ok.example onclick=alert(1)>x</a>",
	    0 },
	{ "quote-less junk", "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>", 0 },
	NUL_CASE("NUL in tag name", "<scr\0ipt>alert(1)</scr\0ipt>"),
	NUL_CASE("NUL in scheme", "<a href=\"java\0script:alert(1)\">x</a>"),
	NUL_CASE("NUL in event name", "<img src=x on\0error=alert(1)>"),
	{ "comment breaking --!>",
	    "<!--<img src=x onerror=alert(1)>--!><img src=x onerror=alert(1)>", 0 },
	{ "comment in attribute", "<a title=\"<!--\" href=\"javascript:x\">x</a>",
	    0 },
	{ "CDATA", "<![CDATA[<script>alert(1)</script>]]>", 0 },
	{ "noscript title breakout",
	    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">"
	    "</noscript>", 0 },
	{ "xmp raw text", "<xmp><script>alert(1)</script></xmp>", 0 },
	{ "textarea", "<textarea><script>alert(1)</script></textarea>", 0 },
	{ "title in head", "<head><title><script>x</script></title></head>", 0 },
	{ "marquee onstart", "<marquee onstart=alert(1)>x</marquee>", 0 },
	{ "event on allowed tag", "<p onclick=\"alert(1)\" onload=x>p</p>", 0 },
	{ "video", "<video><source onerror=\"alert(1)\"></video>", 0 },
};

/* Fail unless OUT is free of every forbidden fragment. */
static void
assert_harmless(const char *name, const char *out)
{
	size_t i;

	if (out == NULL)
		fail_msg("%s: NULL output", name);
	for (i = 0; forbidden[i] != NULL; i++)
		if (strcasestr(out, forbidden[i]) != NULL)
			fail_msg("%s: output has \"%s\": %s", name, forbidden[i], out);
}

/* Every XSS vector, with trimming off and on. */
static void
test_xss_table(void **state)
{
	struct html_options trim = { .trim_quotes = true };
	size_t i, len;
	char *out;

	(void)state;
	assert_true(sizeof(xss_cases) / sizeof(xss_cases[0]) >= 40);
	for (i = 0; i < sizeof(xss_cases) / sizeof(xss_cases[0]); i++) {
		const struct xss_case *c = &xss_cases[i];

		len = c->len != 0 ? c->len : strlen(c->html);
		out = html_sanitize(c->html, len, NULL);
		assert_harmless(c->name, out);
		free(out);
		out = html_sanitize(c->html, len, &trim);
		assert_harmless(c->name, out);
		free(out);
	}
}

/* Sanitise S with default options; the caller frees. */
static char *
clean(const char *s)
{
	char *out = html_sanitize(s, strlen(s), NULL);

	assert_non_null(out);
	return out;
}

/* Fail unless OUT contains WANT. */
static void
assert_has(const char *out, const char *want)
{
	if (strstr(out, want) == NULL)
		fail_msg("want \"%s\" in: %s", want, out);
}

/* Fail if OUT contains WANT. */
static void
assert_lacks(const char *out, const char *want)
{
	if (strstr(out, want) != NULL)
		fail_msg("did not want \"%s\" in: %s", want, out);
}

struct keep_case {
	const char *in;
	const char *want;
};

static const struct keep_case keep_cases[] = {
	{ "<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u>",
	    "<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u>" },
	{ "<a href=\"https://example.com/x?a=1&amp;b=2\">link</a>",
	    "<a href=\"https://example.com/x?a=1&amp;b=2\" rel=\"noopener "
	    "noreferrer\" target=\"_blank\">link</a>" },
	{ "<a href=\"HTTP://EXAMPLE.COM/\">up</a>", "href=\"HTTP://EXAMPLE.COM/\"" },
	{ "<a href=\"mailto:someone@example.com\">mail</a>",
	    "href=\"mailto:someone@example.com\"" },
	{ "<a href=\"  https://spaced.example/ \">s</a>",
	    "href=\"https://spaced.example/\"" },
	{ "<table border=\"1\" cellpadding=\"2\"><tr><td colspan=\"2\" "
	    "align=\"center\" bgcolor=\"#ffeedd\">cell</td></tr></table>",
	    "<table border=\"1\" cellpadding=\"2\"><tbody><tr><td colspan=\"2\" "
	    "align=\"center\" bgcolor=\"#ffeedd\">cell</td></tr></tbody></table>" },
	{ "<ul><li>one</li><li>two</li></ul>",
	    "<ul><li>one</li><li>two</li></ul>" },
	{ "<ol start=\"3\" type=\"a\"><li>x</li></ol>",
	    "<ol start=\"3\" type=\"a\"><li>x</li></ol>" },
	{ "<dl><dt>t</dt><dd>d</dd></dl>", "<dl><dt>t</dt><dd>d</dd></dl>" },
	{ "<font color=\"red\" size=\"2\" face=\"Arial, sans-serif\">f</font>",
	    "<font color=\"red\" size=\"2\" face=\"Arial, sans-serif\">f</font>" },
	{ "<span style=\"color:#f00; font-weight:bold; position:absolute; "
	    "margin-left: 4px\">s</span>",
	    "<span style=\"color:#f00;font-weight:bold;margin-left:4px\">s</span>" },
	{ "<p style=\"color: rgb(1, 2, 3); font-family: 'Segoe UI', Arial\">p</p>",
	    "<p style=\"color:rgb(1, 2, 3);font-family:&#39;Segoe UI&#39;, Arial\">" },
	{ "<p title=\"a&quot;b\">x &amp; y &lt; z</p>",
	    "<p title=\"a&quot;b\">x &amp; y &lt; z</p>" },
	{ "<h1>h</h1><h6>h6</h6><pre>pre  text</pre><code>c</code>",
	    "<h1>h</h1><h6>h6</h6><pre>pre  text</pre><code>c</code>" },
	{ "<p>a<br>b<hr>c</p>", "<p>a<br>b</p><hr>c" },
	{ "<blockquote>q</blockquote>", "<blockquote>q</blockquote>" },
	{ "<sub>1</sub><sup>2</sup><small>3</small><big>4</big><s>5</s>"
	    "<strike>6</strike><center>7</center>",
	    "<sub>1</sub><sup>2</sup><small>3</small><big>4</big><s>5</s>"
	    "<strike>6</strike><center>7</center>" },
	{ "<foo>unknown keeps text</foo>", "unknown keeps text" },
	{ "<article>block</article>", "<div>block</div>" },
	{ "<p>before<!-- secret -->after</p>", "<p>beforeafter</p>" },
	{ "<!DOCTYPE html><html><head><title>T</title></head><body>b</body></html>",
	    "b" },
	{ "<div dir=\"rtl\" lang=\"he\">r</div>", "<div dir=\"rtl\" lang=\"he\">" },
	{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
	{ "bad \xff byte", "bad \xef\xbf\xbd byte" },
};

/* Allowed markup survives, escaped and re-serialised. */
static void
test_benign_kept(void **state)
{
	size_t i;
	char *out;

	(void)state;
	for (i = 0; i < sizeof(keep_cases) / sizeof(keep_cases[0]); i++) {
		out = clean(keep_cases[i].in);
		assert_has(out, keep_cases[i].want);
		free(out);
	}
}

/* Styles that would overlay or deface a note, or push the rest of the
 * ticket out of view: input and the exact output (golden). Positioning
 * and sizing properties are dropped outright; margins, paddings, borders
 * and font sizes only when negative, viewport-relative, in an unknown unit
 * or over their cap; the benign declarations beside them stay. */
struct golden_case {
	const char *name;
	const char *in;
	const char *want;
};

static const struct golden_case css_cases[] = {
	{ "fixed overlay",
	    "<div style=\"position:fixed;top:0;left:0;width:100%;height:100%;"
	    "z-index:2147483647;background-color:#fff\">Your ticket was closed."
	    "</div>",
	    "<div style=\"background-color:#fff\">Your ticket was closed.</div>" },
	{ "absolute with transform",
	    "<p style=\"position:absolute;transform:translateY(-300px);"
	    "color:red\">x</p>",
	    "<p style=\"color:red\">x</p>" },
	{ "absolute, transform without parentheses",
	    "<p style=\"position: absolute; transform: none; inset: 0; "
	    "color: red\">x</p>",
	    "<p style=\"color:red\">x</p>" },
	{ "negative margin pulls over the previous note",
	    "<div style=\"margin-top:-2000px;color:#333\">fake reply</div>",
	    "<div style=\"color:#333\">fake reply</div>" },
	{ "negative margin in a shorthand",
	    "<div style=\"margin:0 0 0 -50em\">x</div>", "<div>x</div>" },
	{ "negative fraction",
	    "<div style=\"margin-left:-.5in;font-weight:bold\">x</div>",
	    "<div style=\"font-weight:bold\">x</div>" },
	{ "huge padding",
	    "<div style=\"padding:5000px\">x</div>", "<div>x</div>" },
	{ "huge padding in inches",
	    "<div style=\"padding-bottom:40in\">x</div>", "<div>x</div>" },
	{ "huge font",
	    "<span style=\"font-size:400px;color:red\">PAID</span>",
	    "<span style=\"color:red\">PAID</span>" },
	{ "huge font in em",
	    "<span style=\"font-size:30em\">x</span>", "<span>x</span>" },
	{ "viewport units",
	    "<span style=\"font-size:50vw\">x</span>"
	    "<div style=\"margin-top:100vh\">y</div>",
	    "<span>x</span><div>y</div>" },
	{ "exponent",
	    "<div style=\"padding:1e9px\">x</div>", "<div>x</div>" },
	{ "huge border",
	    "<div style=\"border:3000px solid #000\">x</div>", "<div>x</div>" },
	{ "huge percentage margin",
	    "<div style=\"margin-left:90%\">x</div>", "<div>x</div>" },
	{ "width, height and float are not allowed",
	    "<div style=\"width:99999px;height:99999px;float:left;"
	    "display:block;visibility:hidden;opacity:0;overflow:hidden;"
	    "clip-path:inset(50%);color:blue\">x</div>",
	    "<div style=\"color:blue\">x</div>" },
	{ "huge width and height attributes",
	    "<table width=\"50000\" height=\"9999\"><tr><td width=\"600\">c</td>"
	    "</tr></table>",
	    "<table><tbody><tr><td width=\"600\">c</td></tr></tbody></table>" },
	{ "percent width attribute",
	    "<table width=\"100%\"><tr><td width=\"500%\">c</td></tr></table>",
	    "<table width=\"100%\"><tbody><tr><td>c</td></tr></tbody></table>" },
	{ "huge cellpadding and border attributes",
	    "<table border=\"999\" cellpadding=\"5000\" cellspacing=\"2\"><tr>"
	    "<td>c</td></tr></table>",
	    "<table cellspacing=\"2\"><tbody><tr><td>c</td></tr></tbody></table>" },
	/* what mail clients write stays */
	{ "Outlook paragraph",
	    "<p style=\"margin:0in;margin-bottom:.0001pt;font-size:11.0pt;"
	    "font-family:Calibri,sans-serif\">Hi</p>",
	    "<p style=\"margin:0in;margin-bottom:.0001pt;font-size:11.0pt;"
	    "font-family:Calibri,sans-serif\">Hi</p>" },
	{ "Outlook indent and border",
	    "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt;"
	    "padding:3.0pt 0in 0in 0in;margin-left:.5in\">h</div>",
	    "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt;"
	    "padding:3.0pt 0in 0in 0in;margin-left:.5in\">h</div>" },
	{ "Gmail quote",
	    "<blockquote style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid "
	    "rgb(204,204,204);padding-left:1ex\">q</blockquote>",
	    "<blockquote style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid "
	    "rgb(204,204,204);padding-left:1ex\">q</blockquote>" },
	{ "centred newsletter",
	    "<div style=\"margin:0 auto;padding:20px;font-size:x-large;"
	    "border-radius:8px\">n</div>",
	    "<div style=\"margin:0 auto;padding:20px;font-size:x-large;"
	    "border-radius:8px\">n</div>" },
	{ "vendor keywords are not numbers",
	    "<div style=\"font-size:-webkit-xxx-large;margin:-0px\">n</div>",
	    "<div style=\"font-size:-webkit-xxx-large;margin:-0px\">n</div>" },
};

static void
test_css_golden(void **state)
{
	size_t i;
	char *out;

	(void)state;
	for (i = 0; i < sizeof(css_cases) / sizeof(css_cases[0]); i++) {
		out = clean(css_cases[i].in);
		if (strcmp(out, css_cases[i].want) != 0)
			fail_msg("%s:\n  got  %s\n  want %s", css_cases[i].name,
			    out, css_cases[i].want);
		free(out);
	}
}

/* What must go from otherwise benign markup. */
static void
test_dropped_details(void **state)
{
	char *out;

	(void)state;
	out = clean("<p class=\"MsoNormal\" id=\"x\" data-x=\"1\">p</p>");
	assert_string_equal(out, "<p>p</p>");
	free(out);
	out = clean("<a href=\"/relative\">r</a><a href=\"//host/x\">h</a>"
	    "<a href=\"ftp://x/\">f</a><a>n</a>");
	assert_string_equal(out, "rhfn");
	free(out);
	out = clean("<span style=\"color:red;background-image:none\">x</span>");
	assert_string_equal(out, "<span style=\"color:red\">x</span>");
	free(out);
	out = clean("<span style=\"color:red !important;top:0\">x</span>");
	assert_string_equal(out, "<span style=\"color:red !important\">x</span>");
	free(out);
	out = clean("<span style=\"color:red;font-family:x@y\">x</span>");
	assert_string_equal(out, "<span>x</span>");    /* '@': in doubt */
	free(out);
	out = clean("<td width=\"100;x\" height=\"50%\">c</td>");
	assert_lacks(out, "width");
	free(out);
	out = clean("<style>p{}</style><p>x</p>");
	assert_string_equal(out, "<p>x</p>");
	free(out);
	out = html_sanitize(NULL, 0, NULL);
	assert_string_equal(out, "");
	free(out);
	out = html_sanitize("", 0, NULL);
	assert_string_equal(out, "");
	free(out);
}

/* cid: lookups for the image tests. */
static const char *
cid_lookup(const char *cid, void *arg)
{
	int *calls = arg;

	(*calls)++;
	if (strcmp(cid, "img1@example") == 0)
		return "photo.png";
	if (strcmp(cid, "evil@example") == 0)
		return "<script>x.png";
	return NULL;
}

/* Images become placeholders; cid: names come from the lookup. */
static void
test_cid_images(void **state)
{
	int calls = 0;
	struct html_options opt = { .cid_lookup = cid_lookup, .cid_arg = &calls };
	const char *in;
	char *out;

	(void)state;
	in = "<p>see <img src=\"cid:img1@example\" alt=\"x\"> here</p>";
	out = html_sanitize(in, strlen(in), &opt);
	assert_string_equal(out, "<p>see [image: photo.png] here</p>");
	free(out);
	assert_int_equal(calls, 1);

	in = "<img src=\"CID:img1%40example\">";
	out = html_sanitize(in, strlen(in), &opt);
	assert_string_equal(out, "[image: photo.png]");
	free(out);

	in = "<img src=\"cid:unknown@example\"><img src=\"https://t.example/a.png\">"
	    "<img src=\"data:image/png;base64,AAAA\">";
	out = html_sanitize(in, strlen(in), &opt);
	assert_string_equal(out, "[image][image][image]");
	free(out);

	in = "<img src=\"cid:evil@example\">";
	out = html_sanitize(in, strlen(in), &opt);
	assert_string_equal(out, "[image: &lt;script&gt;x.png]");
	free(out);

	/* tracking pixels vanish */
	in = "<p>a<img src=\"https://t.example/p.gif\" width=\"1\" height=\"1\">b"
	    "<img src=\"https://t.example/q.gif\" width=\"0\">c</p>";
	out = html_sanitize(in, strlen(in), &opt);
	assert_string_equal(out, "<p>abc</p>");
	free(out);

	/* without a lookup */
	in = "<img src=\"cid:img1@example\">";
	out = html_sanitize(in, strlen(in), NULL);
	assert_string_equal(out, "[image]");
	free(out);
}

/* Sanitise IN with trimming on (or off). */
static char *
trimmed(const char *in, bool trim)
{
	struct html_options opt = { .trim_quotes = trim };
	char *out = html_sanitize(in, strlen(in), &opt);

	assert_non_null(out);
	return out;
}

static const char outlook_web[] =
    "<div style=\"font-family:Calibri\"><p>Thanks, fixed now.</p></div>"
    "<div id=\"appendonsend\"></div>"
    "<hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">"
    "<div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri\"><b>From:</b>"
    " Customer<br><b>Sent:</b> Monday</font></div>"
    "<div><p>OLD-MESSAGE printer is broken</p></div>";

static const char outlook_desktop[] =
    "<div class=\"WordSection1\"><p class=\"MsoNormal\">New reply text</p>"
    "<p class=\"MsoNormal\">&nbsp;</p><div><div style=\"border:none;"
    "border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm\">"
    "<p class=\"MsoNormal\"><b>From:</b> Someone</p></div></div>"
    "<p class=\"MsoNormal\">OLD-MESSAGE quoted</p></div>";

static const char gmail[] =
    "<div dir=\"ltr\">Newest words<div><br></div>-- <br>Sig</div><br>"
    "<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Mon, "
    "Jan 1, 2024 at 10:00 AM Bob &lt;bob@example.com&gt; wrote:<br></div>"
    "<blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex\">"
    "OLD-MESSAGE</blockquote></div>";

static const char apple[] =
    "<html><body dir=\"auto\"><div>Sure, tomorrow.</div><div><br>"
    "<blockquote type=\"cite\">On 1 Jan 2024, at 10:00, Bob wrote:<br><br>"
    "</blockquote></div><blockquote type=\"cite\"><div>OLD-MESSAGE "
    "can we meet?</div></blockquote></body></html>";

static const char thunderbird[] =
    "<p>Agreed.</p><div class=\"moz-cite-prefix\">On 01/01/2024 10:00, Bob "
    "wrote:<br></div><blockquote type=\"cite\" cite=\"mid:x@y\">OLD-MESSAGE"
    "</blockquote>";

static const char original_message[] =
    "<div><p>Please see below.</p><p>-----Original Message-----<br>"
    "From: Bob<br>OLD-MESSAGE</p><p>OLD-MESSAGE again</p></div>";

/* Quoted history goes with trim_quotes and stays without. */
static void
test_trim_quotes(void **state)
{
	static const struct {
		const char *name;
		const char *html;
		const char *keep;
	} cases[] = {
		{ "outlook web", outlook_web, "Thanks, fixed now." },
		{ "outlook desktop", outlook_desktop, "New reply text" },
		{ "gmail", gmail, "Newest words" },
		{ "apple", apple, "Sure, tomorrow." },
		{ "thunderbird", thunderbird, "Agreed." },
		{ "original message", original_message, "Please see below." },
	};
	size_t i;
	char *out;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = trimmed(cases[i].html, true);
		if (strstr(out, cases[i].keep) == NULL ||
		    strstr(out, "OLD-MESSAGE") != NULL ||
		    strstr(out, "wrote:") != NULL || strstr(out, "From:") != NULL)
			fail_msg("%s trimmed: %s", cases[i].name, out);
		free(out);
		out = trimmed(cases[i].html, false);
		if (strstr(out, cases[i].keep) == NULL ||
		    strstr(out, "OLD-MESSAGE") == NULL)
			fail_msg("%s untrimmed: %s", cases[i].name, out);
		free(out);
	}
	/* Outlook's separator goes with the history */
	out = trimmed(outlook_web, true);
	assert_lacks(out, "<hr");
	free(out);
	/* Gmail's signature, before the quote, stays */
	out = trimmed(gmail, true);
	assert_has(out, "Sig");
	free(out);
	/* a plain blockquote (no type=cite) is content, not history */
	out = trimmed("<p>a</p><blockquote>cited text</blockquote>", true);
	assert_has(out, "cited text");
	free(out);
}

/* A message that is only a quote (a bare forward) keeps it. */
static void
test_trim_keeps_lone_quote(void **state)
{
	char *out;

	(void)state;
	out = trimmed("<div class=\"gmail_quote\">---------- Forwarded message "
	    "---------<br>the forwarded text</div>", true);
	assert_has(out, "the forwarded text");
	free(out);
	out = trimmed("<div id=\"divRplyFwdMsg\">From: x</div><p>body</p>", true);
	assert_has(out, "body");
	free(out);
	/* an image alone is content */
	out = trimmed("<p><img src=\"cid:a\"></p><blockquote type=\"cite\">old"
	    "</blockquote>", true);
	assert_string_equal(out, "<p>[image]</p>");
	free(out);
}

/* Is OUT well-formed: every start tag closed in order (void ones
 * excepted), no stray '<' or '>'? */
static bool
balanced(const char *out)
{
	const char *stack[128];
	size_t depth = 0, n;
	const char *p;

	for (p = out; *p != '\0'; p++) {
		if (*p == '>')
			return false;
		if (*p != '<')
			continue;
		if (p[1] == '/') {
			n = strcspn(p + 2, ">");
			if (depth == 0 || strncmp(stack[depth - 1], p + 2, n) != 0 ||
			    (stack[depth - 1][n] != '>' && stack[depth - 1][n] != ' '))
				return false;
			depth--;
			p += 2 + n;
			continue;
		}
		n = strcspn(p + 1, " >");
		if (!((n == 2 && (strncmp(p + 1, "br", 2) == 0 ||
		    strncmp(p + 1, "hr", 2) == 0)) ||
		    (n == 3 && strncmp(p + 1, "col", 3) == 0))) {
			if (depth == 128)
				return false;
			stack[depth++] = p + 1;
		}
		/* skip to the end of the tag; values are escaped, so no '>' */
		p = strchr(p, '>');
		if (p == NULL)
			return false;
	}
	return depth == 0;
}

/* The output cap holds for every size and the result stays well-formed. */
static void
test_output_cap(void **state)
{
	static const char in[] =
	    "<div><p>First paragraph with <b>bold <i>and italic</i></b> text."
	    "</p><table><tr><td>cell one</td><td>cell two &amp; more</td></tr>"
	    "</table><ul><li>item</li><li>caf\xc3\xa9 \xe2\x82\xac</li></ul>"
	    "<blockquote>quoted <a href=\"https://example.com/\">link</a>"
	    "</blockquote></div>";
	struct html_options opt = { 0 };
	size_t cap, full_len;
	char *out, *full;

	(void)state;
	full = html_sanitize(in, strlen(in), NULL);
	assert_non_null(full);
	full_len = strlen(full);
	assert_true(balanced(full));
	for (cap = 1; cap <= full_len + 8; cap++) {
		opt.max_output = cap;
		out = html_sanitize(in, strlen(in), &opt);
		assert_non_null(out);
		if (strlen(out) > cap)
			fail_msg("cap %zu: %zu bytes: %s", cap, strlen(out), out);
		if (!balanced(out))
			fail_msg("cap %zu: not balanced: %s", cap, out);
		if (cap < full_len && cap >= 5 &&
		    strstr(out, "[\xe2\x80\xa6]") == NULL)
			fail_msg("cap %zu: no cut mark: %s", cap, out);
		if (cap >= full_len + 5)     /* room for the text and the mark */
			assert_string_equal(out, full);
		/* never a split character */
		assert_null(strstr(out, "\xc3[") );
		free(out);
	}
	free(full);
}

/* A big document under the default cap: at most 1 MiB comes out. */
static void
test_output_default_cap(void **state)
{
	size_t n = 3u << 20, i;
	char *in, *out;

	(void)state;
	in = malloc(n + 1);
	assert_non_null(in);
	for (i = 0; i < n; i++)
		in[i] = i % 64 == 63 ? ' ' : '&';      /* each '&' becomes 5 bytes */
	in[n] = '\0';
	out = html_sanitize(in, n, NULL);
	assert_non_null(out);
	assert_true(strlen(out) <= HTML_DEFAULT_MAX_OUTPUT);
	assert_true(strlen(out) > HTML_DEFAULT_MAX_OUTPUT - 16);
	free(out);
	free(in);
}

/* Deep nesting and tag floods finish quickly and stay bounded. */
static void
test_nesting_bound(void **state)
{
	static const char *const units[] = { "<div>", "<b>", "<ul><li>",
	    "<p><b id=1>x</p>", "<span><div></span>", "<dl><dd>",
	    "<table><tr><td>", "<a><b>", "<x><y></x>", "<blockquote>" };
	struct html_options opt = { .max_output = 16u << 20 };
	size_t i, j, n, unit_len;
	char *in, *out;

	(void)state;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		unit_len = strlen(units[i]);
		n = (256u << 10) / unit_len;
		in = malloc(n * unit_len + 16);
		assert_non_null(in);
		for (j = 0; j < n; j++)
			memcpy(in + j * unit_len, units[i], unit_len);
		memcpy(in + n * unit_len, "deep text", 10);
		out = html_sanitize(in, n * unit_len + 9, &opt);
		assert_non_null(out);
		assert_true(balanced(out));
		assert_has(out, "deep text");
		free(out);
		free(in);
	}
}

/* Text to HTML: escaping, line breaks, blanks. */
static void
test_from_text(void **state)
{
	static const char in[] = "a <b> & \"q\" 'x'\r\nline2\n\n  indented\tt";
	char *out;

	(void)state;
	out = html_from_text(in, strlen(in), false);
	assert_string_equal(out, "<div>a &lt;b&gt; &amp; &quot;q&quot; &#39;x&#39;"
	    "<br>line2<br><br>&nbsp;&nbsp;indented&nbsp;&nbsp;&nbsp;&nbsp;t</div>");
	free(out);
	out = html_from_text("", 0, false);
	assert_string_equal(out, "<div></div>");
	free(out);
	out = html_from_text(NULL, 0, true);
	assert_string_equal(out, "<div></div>");
	free(out);
	out = html_from_text("x\xff\x01y\0z", 6, false);
	assert_string_equal(out, "<div>x\xef\xbf\xbdyz</div>");
	free(out);
	out = html_from_text("trailing\n\n\n", 11, false);
	assert_string_equal(out, "<div>trailing</div>");
	free(out);
}

/* Text quote trimming: "> " blocks and their attribution, Outlook headers,
 * "Original Message". */
static void
test_from_text_trim(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM Bob <b@x> wrote:\n"
		    "> old line\n> more\n", "<div>Thanks!</div>" },
		{ "Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM Bob Example <\n"
		    "bob@example.com> wrote:\n\n> old\n", "<div>Thanks!</div>" },
		{ "top\n> quoted\nmiddle\n> quoted again\nend",
		    "<div>top<br>middle<br>end</div>" },
		{ "Fixed.\n\n-----Original Message-----\nFrom: Bob\nold body\n",
		    "<div>Fixed.</div>" },
		{ "Fixed.\n\n________________________________\nFrom: Bob\nSent: Mon\n"
		    "old\n", "<div>Fixed.</div>" },
		{ "Fixed.\nFrom: Bob <b@x>\nSent: Monday\nTo: me\n\nold\n",
		    "<div>Fixed.</div>" },
		{ "Am 1.1.2024 schrieb Bob:\n> alt\nneu", "<div>neu</div>" },
		{ "> only a quote\n> nothing else",
		    "<div>&gt; only a quote<br>&gt; nothing else</div>" },
		{ "a > b is not a quote\n", "<div>a &gt; b is not a quote</div>" },
	};
	size_t i;
	char *out;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = html_from_text(cases[i].in, strlen(cases[i].in), true);
		assert_non_null(out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got %s want %s", i, out, cases[i].want);
		free(out);
	}
	/* without trimming everything stays */
	out = html_from_text(cases[0].in, strlen(cases[0].in), false);
	assert_has(out, "&gt; old line");
	assert_has(out, "wrote:");
	free(out);
}

/* html_escape. */
static void
test_escape(void **state)
{
	char *out;

	(void)state;
	out = html_escape("<a href=\"x\">'&'</a>");
	assert_string_equal(out,
	    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
	free(out);
	out = html_escape(NULL);
	assert_string_equal(out, "");
	free(out);
	out = html_escape("plain caf\xc3\xa9");
	assert_string_equal(out, "plain caf\xc3\xa9");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xss_table),
		cmocka_unit_test(test_benign_kept),
		cmocka_unit_test(test_dropped_details),
		cmocka_unit_test(test_css_golden),
		cmocka_unit_test(test_cid_images),
		cmocka_unit_test(test_trim_quotes),
		cmocka_unit_test(test_trim_keeps_lone_quote),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_output_default_cap),
		cmocka_unit_test(test_nesting_bound),
		cmocka_unit_test(test_from_text),
		cmocka_unit_test(test_from_text_trim),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
