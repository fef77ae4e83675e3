/*
 * html.h - HTML for Halo's note_html / details_html, which the agent UI
 * renders: mail HTML sanitised against an allow-list, and plain text
 * turned into HTML.
 *
 * Parsing is gumbo's (HTML5); the output is re-serialised from the tree,
 * so it is always well-formed: every text and attribute value escaped,
 * attribute values double-quoted, every element closed. Nothing here
 * keeps state; all functions are safe to call from any thread.
 */
#ifndef HALO_HTML_H
#define HALO_HTML_H

#include <stdbool.h>
#include <stddef.h>

#define HTML_DEFAULT_MAX_OUTPUT (1u << 20)  /* 1 MiB */
#define HTML_MAX_INPUT          (2u << 20)  /* input beyond this is cut */

struct html_options {
	/* Drop quoted history and keep the newest text: Outlook's
	 * div#divRplyFwdMsg (and its desktop reply header) and all after it,
	 * Gmail's div.gmail_quote, blockquote[type=cite] (Apple Mail,
	 * Thunderbird), "-----Original Message-----" and all after it. When
	 * that would leave nothing visible, nothing is trimmed. */
	bool trim_quotes;
	/* Maps a cid: reference (without "cid:", percent-decoded) to the
	 * attachment's file name, or NULL; may be NULL itself. The returned
	 * string need only live until the callback is called again. */
	const char *(*cid_lookup)(const char *cid, void *arg);
	void *cid_arg;
	/* Output bytes at most, NUL excluded (0: HTML_DEFAULT_MAX_OUTPUT);
	 * beyond it the output is cut between characters, open elements are
	 * closed and "[…]" marks the cut. */
	size_t max_output;
};

/*
 * Sanitise LEN bytes of HTML at HTML (need not be NUL-terminated; invalid
 * UTF-8 becomes U+FFFD) under OPT (NULL: defaults, no trimming). Only
 * allow-listed elements and attributes survive; dangerous elements go with
 * their content; other unknown elements leave their text. Images become
 * the text "[image: NAME]" (cid: reference with a known file name) or
 * "[image]"; tracking pixels vanish. Returns malloc'd UTF-8 the caller
 * frees; NULL only on ENOMEM.
 */
char *html_sanitize(const char *html, size_t len, const struct html_options *opt);

/*
 * Plain text (LEN bytes at TEXT, UTF-8) as HTML: escaped, a <br> per line
 * break, runs of spaces kept with &nbsp;, wrapped in <div>. With
 * TRIM_QUOTES, lines starting with '>' are dropped with the "On ... wrote:"
 * line before them, as is everything from an "-----Original Message-----"
 * line or an Outlook "From:" header after a line of underscores (unless
 * that leaves nothing). Returns malloc'd UTF-8; NULL only on ENOMEM.
 */
char *html_from_text(const char *text, size_t len, bool trim_quotes);

/* S with & < > " ' escaped as entities (NULL: ""); malloc'd, NULL only
 * on ENOMEM. */
char *html_escape(const char *s);

#endif
