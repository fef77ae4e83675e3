/*
 * classify.c - bounce / auto-reply / list / Halo / loop classification.
 */
#include "classify.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "hdr.h"

/* VALUE trimmed equals WORD, case-insensitively (stops at ';' or '('). */
static bool
classify_word_is(const char *value, const char *word)
{
	size_t n = strlen(word);

	while (isspace((unsigned char)*value))
		value++;
	if (strncasecmp(value, word, n) != 0)
		return false;
	value += n;
	while (isspace((unsigned char)*value))
		value++;
	return *value == '\0' || *value == ';' || *value == '(';
}

/* True when a header is present with a non-blank value. */
static bool
classify_present(const char *value)
{
	if (value == NULL)
		return false;
	while (isspace((unsigned char)*value))
		value++;
	return *value != '\0';
}

/* Classify one message (see classify.h). */
struct classify_result
classify(const struct classify_input *in)
{
	struct classify_result r = { CLASSIFY_NORMAL, false };

	if (in->env_from != NULL && (in->env_from[0] == '\0' ||
	    strcmp(in->env_from, "<>") == 0)) {
		r.cls = CLASSIFY_BOUNCE;
		return r;
	}
	if (in->content_type != NULL && hdr_is_dsn(in->content_type)) {
		r.cls = CLASSIFY_BOUNCE;
		return r;
	}
	if (in->from_halo) {
		r.cls = CLASSIFY_HALO;
		return r;
	}
	if (in->content_type != NULL &&
	    hdr_is_report(in->content_type, "disposition-notification")) {
		r.cls = CLASSIFY_RECEIPT;
		return r;
	}
	if (in->content_type != NULL &&
	    hdr_is_report(in->content_type, "feedback-report")) {
		r.cls = CLASSIFY_FEEDBACK;
		return r;
	}
	/* RFC 3834's Auto-Submitted and the known auto-reply headers;
	 * X-Auto-Response-Suppress alone asks others not to auto-reply and
	 * says nothing about this mail (Outlook sets it on meeting responses) */
	if ((classify_present(in->auto_submitted) &&
	    !classify_word_is(in->auto_submitted, "no")) ||
	    classify_present(in->x_autoreply) ||
	    classify_present(in->x_autorespond) ||
	    (in->precedence != NULL &&
	    classify_word_is(in->precedence, "auto_reply"))) {
		r.cls = CLASSIFY_AUTO_REPLY;
		return r;
	}
	if (in->precedence != NULL && (classify_word_is(in->precedence, "bulk") ||
	    classify_word_is(in->precedence, "junk"))) {
		r.cls = CLASSIFY_BULK;
		return r;
	}
	if (in->precedence != NULL && classify_word_is(in->precedence, "list")) {
		r.cls = CLASSIFY_LIST;
		return r;
	}
	/* list traffic may thread onto a ticket but never opens one */
	if (classify_present(in->list_unsubscribe) || classify_present(in->list_id))
		r.no_create = true;
	if (in->may_create && in->starts_thread && !r.no_create &&
	    in->loop_max_creates > 0 && in->recent_creates >= in->loop_max_creates) {
		r.cls = CLASSIFY_LOOP;
		return r;
	}
	return r;
}

/* Reason word for a class. */
const char *
classify_reason(enum classify_class cls)
{
	switch (cls) {
	case CLASSIFY_NORMAL: return "normal";
	case CLASSIFY_BOUNCE: return "bounce";
	case CLASSIFY_AUTO_REPLY: return "auto-reply";
	case CLASSIFY_BULK: return "bulk";
	case CLASSIFY_LIST: return "list";
	case CLASSIFY_HALO: return "halo-notification";
	case CLASSIFY_LOOP: return "loop";
	case CLASSIFY_RECEIPT: return "read-receipt";
	case CLASSIFY_FEEDBACK: return "feedback-report";
	}
	return "unknown";
}
