/*
 * test_classify.c - unit tests for common/classify.c: one table with a row
 * per rule of design.md "What is not logged", the precedence between rules,
 * and the reason words.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "classify.h"
#include "hdr.h"

#define DSN "multipart/report; report-type=delivery-status; boundary=b"

/* A row: the input differs from a plain new mail only where it says so. */
struct classify_case {
	const char *name;
	struct classify_input in;
	enum classify_class cls;
	bool no_create;
};

/* Rows override fields of BASE; that is the point, so allow it. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

/* A normal new message from a normal sender, routed in intake mode. */
#define BASE .env_from = "<alice@customer.example>", .starts_thread = true, \
	.may_create = true, .loop_max_creates = 20

static const struct classify_case cases[] = {
	{ "plain new mail", { BASE }, CLASSIFY_NORMAL, false },
	{ "plain mail, sender without brackets",
	    { BASE, .env_from = "alice@customer.example" }, CLASSIFY_NORMAL, false },
	{ "no envelope sender known", { BASE, .env_from = NULL },
	    CLASSIFY_NORMAL, false },
	{ "text/plain", { BASE, .content_type = "text/plain; charset=utf-8" },
	    CLASSIFY_NORMAL, false },

	/* bounces */
	{ "null sender \"\"", { BASE, .env_from = "" }, CLASSIFY_BOUNCE, false },
	{ "null sender <>", { BASE, .env_from = "<>" }, CLASSIFY_BOUNCE, false },
	{ "DSN content type", { BASE, .content_type = DSN }, CLASSIFY_BOUNCE,
	    false },
	{ "DSN, quoted, any case", { BASE, .content_type =
	    "Multipart/Report; REPORT-TYPE=\"Delivery-Status\"" },
	    CLASSIFY_BOUNCE, false },
	{ "read receipt is not a bounce", { BASE, .content_type =
	    "multipart/report; report-type=disposition-notification" },
	    CLASSIFY_RECEIPT, false },
	{ "read receipt, quoted, any case", { BASE, .content_type =
	    "Multipart/Report; boundary=x; Report-Type=\"Disposition-Notification\"" },
	    CLASSIFY_RECEIPT, false },
	{ "disposition-notification as a plain type is normal", { BASE,
	    .content_type = "message/disposition-notification" },
	    CLASSIFY_NORMAL, false },
	{ "ARF feedback report", { BASE, .content_type =
	    "multipart/report; report-type=feedback-report; boundary=b" },
	    CLASSIFY_FEEDBACK, false },
	{ "report of another type is normal", { BASE, .content_type =
	    "multipart/report; report-type=something-else" },
	    CLASSIFY_NORMAL, false },
	{ "Halo beats read receipt", { BASE, .from_halo = true, .content_type =
	    "multipart/report; report-type=disposition-notification" },
	    CLASSIFY_HALO, false },
	{ "null sender read receipt is a bounce", { BASE, .env_from = "<>",
	    .content_type =
	    "multipart/report; report-type=disposition-notification" },
	    CLASSIFY_BOUNCE, false },

	/* Halo's own notifications */
	{ "from a Halo sender", { BASE, .from_halo = true }, CLASSIFY_HALO, false },

	/* auto-replies */
	{ "Auto-Submitted: auto-replied", { BASE,
	    .auto_submitted = "auto-replied" }, CLASSIFY_AUTO_REPLY, false },
	{ "Auto-Submitted: auto-generated", { BASE,
	    .auto_submitted = "auto-generated" }, CLASSIFY_AUTO_REPLY, false },
	{ "Auto-Submitted: auto-notified (x)", { BASE,
	    .auto_submitted = "auto-notified (x)" }, CLASSIFY_AUTO_REPLY, false },
	{ "Auto-Submitted: no", { BASE, .auto_submitted = "no" },
	    CLASSIFY_NORMAL, false },
	{ "Auto-Submitted: No (comment)", { BASE,
	    .auto_submitted = "No (comment)" }, CLASSIFY_NORMAL, false },
	{ "Auto-Submitted:  NO ; x=y", { BASE, .auto_submitted = "  NO ; x=y" },
	    CLASSIFY_NORMAL, false },
	{ "Auto-Submitted: nope", { BASE, .auto_submitted = "nope" },
	    CLASSIFY_AUTO_REPLY, false },
	{ "Auto-Submitted blank", { BASE, .auto_submitted = "  " },
	    CLASSIFY_NORMAL, false },
	/* X-Auto-Response-Suppress alone is ordinary mail (Outlook puts it on
	 * meeting responses); with Auto-Submitted it is an auto-reply */
	{ "X-Auto-Response-Suppress: All alone", { BASE,
	    .x_auto_response_suppress = "All" }, CLASSIFY_NORMAL, false },
	{ "X-Auto-Response-Suppress: OOF, AutoReply alone", { BASE,
	    .x_auto_response_suppress = "OOF, AutoReply" }, CLASSIFY_NORMAL,
	    false },
	{ "X-Auto-Response-Suppress + Auto-Submitted", { BASE,
	    .x_auto_response_suppress = "All", .auto_submitted = "auto-replied" },
	    CLASSIFY_AUTO_REPLY, false },
	{ "X-Auto-Response-Suppress blank", { BASE,
	    .x_auto_response_suppress = "" }, CLASSIFY_NORMAL, false },
	{ "X-Autoreply: yes", { BASE, .x_autoreply = "yes" },
	    CLASSIFY_AUTO_REPLY, false },
	{ "X-Autorespond: x", { BASE, .x_autorespond = "x" },
	    CLASSIFY_AUTO_REPLY, false },
	{ "Precedence: auto_reply", { BASE, .precedence = "auto_reply" },
	    CLASSIFY_AUTO_REPLY, false },
	{ "Precedence: AUTO_REPLY", { BASE, .precedence = " AUTO_REPLY " },
	    CLASSIFY_AUTO_REPLY, false },

	/* bulk and lists */
	{ "Precedence: bulk", { BASE, .precedence = "bulk" }, CLASSIFY_BULK, false },
	{ "Precedence: Bulk", { BASE, .precedence = "Bulk" }, CLASSIFY_BULK, false },
	{ "Precedence: JUNK", { BASE, .precedence = "JUNK" }, CLASSIFY_BULK, false },
	{ "Precedence: junk (x)", { BASE, .precedence = "junk (x)" },
	    CLASSIFY_BULK, false },
	{ "Precedence: list", { BASE, .precedence = "list" }, CLASSIFY_LIST, false },
	{ "Precedence: LIST", { BASE, .precedence = "LIST" }, CLASSIFY_LIST, false },
	{ "Precedence: first-class", { BASE, .precedence = "first-class" },
	    CLASSIFY_NORMAL, false },
	{ "Precedence: bulky", { BASE, .precedence = "bulky" },
	    CLASSIFY_NORMAL, false },
	{ "List-Unsubscribe: threads only", { BASE,
	    .list_unsubscribe = "<mailto:u@l.example>" }, CLASSIFY_NORMAL, true },
	{ "List-Id: threads only", { BASE, .list_id = "<x.l.example>" },
	    CLASSIFY_NORMAL, true },
	{ "blank List-Id", { BASE, .list_id = " " }, CLASSIFY_NORMAL, false },

	/* loop protection */
	{ "loop: below cap", { BASE, .recent_creates = 19 }, CLASSIFY_NORMAL,
	    false },
	{ "loop: at cap", { BASE, .recent_creates = 20 }, CLASSIFY_LOOP, false },
	{ "loop: over cap", { BASE, .recent_creates = 500 }, CLASSIFY_LOOP, false },
	{ "loop: cap 1, one earlier", { BASE, .loop_max_creates = 1,
	    .recent_creates = 1 }, CLASSIFY_LOOP, false },
	{ "loop: cap 0 disables", { BASE, .loop_max_creates = 0,
	    .recent_creates = 1000 }, CLASSIFY_NORMAL, false },
	{ "loop: reply does not count", { BASE, .starts_thread = false,
	    .recent_creates = 20 }, CLASSIFY_NORMAL, false },
	{ "loop: thread-only route does not count", { BASE, .may_create = false,
	    .recent_creates = 20 }, CLASSIFY_NORMAL, false },
	{ "loop: list mail never creates", { BASE, .list_id = "<l>",
	    .recent_creates = 20 }, CLASSIFY_NORMAL, true },

	/* precedence between rules */
	{ "bounce beats auto-reply", { BASE, .env_from = "<>",
	    .auto_submitted = "auto-replied" }, CLASSIFY_BOUNCE, false },
	{ "DSN beats Halo", { BASE, .content_type = DSN, .from_halo = true },
	    CLASSIFY_BOUNCE, false },
	{ "null sender beats Halo and loop", { BASE, .env_from = "",
	    .from_halo = true, .recent_creates = 99 }, CLASSIFY_BOUNCE, false },
	{ "Halo beats auto-reply", { BASE, .from_halo = true,
	    .x_autoreply = "yes" }, CLASSIFY_HALO, false },
	{ "auto-reply beats bulk", { BASE, .x_autorespond = "1",
	    .precedence = "bulk" }, CLASSIFY_AUTO_REPLY, false },
	{ "auto-reply beats list", { BASE, .auto_submitted = "auto-generated",
	    .precedence = "list", .list_id = "<l>" }, CLASSIFY_AUTO_REPLY, false },
	{ "bulk beats loop", { BASE, .precedence = "bulk",
	    .recent_creates = 99 }, CLASSIFY_BULK, false },
	{ "list precedence beats List-Id", { BASE, .precedence = "list",
	    .list_id = "<l>" }, CLASSIFY_LIST, false },
	{ "auto-reply beats loop", { BASE, .x_autoreply = "yes",
	    .recent_creates = 99 }, CLASSIFY_AUTO_REPLY, false },
	{ "X-Auto-Response-Suppress does not beat loop", { BASE,
	    .x_auto_response_suppress = "All", .recent_creates = 99 },
	    CLASSIFY_LOOP, false },
};

/* Every row of the classification table. */
static void
test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct classify_case *c = &cases[i];
		struct classify_result r = classify(&c->in);

		if (r.cls != c->cls)
			fail_msg("%s: class %s, want %s", c->name,
			    classify_reason(r.cls), classify_reason(c->cls));
		if (r.no_create != c->no_create)
			fail_msg("%s: no_create %d, want %d", c->name, r.no_create,
			    c->no_create);
	}
}

/* The reason words stamped into X-Halo-Status and stored. */
static void
test_reasons(void **state)
{
	(void)state;
	assert_string_equal(classify_reason(CLASSIFY_NORMAL), "normal");
	assert_string_equal(classify_reason(CLASSIFY_BOUNCE), "bounce");
	assert_string_equal(classify_reason(CLASSIFY_AUTO_REPLY), "auto-reply");
	assert_string_equal(classify_reason(CLASSIFY_BULK), "bulk");
	assert_string_equal(classify_reason(CLASSIFY_LIST), "list");
	assert_string_equal(classify_reason(CLASSIFY_HALO), "halo-notification");
	assert_string_equal(classify_reason(CLASSIFY_LOOP), "loop");
	assert_string_equal(classify_reason(CLASSIFY_RECEIPT), "read-receipt");
	assert_string_equal(classify_reason(CLASSIFY_FEEDBACK),
	    "feedback-report");
	assert_string_equal(classify_reason((enum classify_class)42), "unknown");
}

static int
setup(void **state)
{
	(void)state;
	hdr_init();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
