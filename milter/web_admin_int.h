/*
 * web_admin_int.h - what the admin page's files share (web_admin.c: the
 * guards, sessions and agents; web_admin_ops.c: jobs and doctor).
 */
#ifndef HALO_WEB_ADMIN_INT_H
#define HALO_WEB_ADMIN_INT_H

#include "web_int.h"

/* What a request carries once it passed the guards. */
struct admin_ctx {
	const struct web_call *call;
	const char *root;           /* "" for /admin, "../" below it */
	char sid[WEB_ADMIN_SID_LEN + 1];
	char csrf[65];
	uint64_t stamp;             /* the password file's identity */
	bool signed_in;
};

/* A whole admin page (both stylesheets). BODY is taken over. */
enum MHD_Result web_admin_page(const struct admin_ctx *a, unsigned status,
    const char *title, struct web_buf *body, const char *cookie);

/* A page with one paragraph of class CLASS and an optional way back. */
enum MHD_Result web_admin_message(const struct admin_ctx *a, unsigned status,
    const char *title, const char *class, const char *message, bool back,
    const char *cookie);

/* "2026-11-24 10:00 UTC". */
void web_admin_time(time_t t, char *out, size_t outsz);

/* Hidden fields naming TENANT/AGENT (each may be NULL) plus the CSRF
 * token. */
void web_admin_hidden(struct web_buf *b, const struct admin_ctx *a,
    const char *tenant, const char *agent);


/* The home page's sections: failed and waiting jobs (newest first, with
 * Retry), and each tenant with Run doctor. */
void web_admin_ops_jobs(struct web_buf *body, const struct admin_ctx *a);
void web_admin_ops_tenants(struct web_buf *body, const struct admin_ctx *a);

/* POST /admin/retry and /admin/doctor (session and CSRF checked). */
enum MHD_Result web_admin_ops_retry(const struct admin_ctx *a);
enum MHD_Result web_admin_ops_doctor(const struct admin_ctx *a);

#endif
