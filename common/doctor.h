/*
 * doctor.h - the checks of a gateway's set-up: its store, and each
 * tenant's Halo side (agents' tokens, ticket type, outcomes, statuses,
 * custom fields, request budget). Shared by "halo-milterctl doctor" (text
 * or JSON) and the admin page, so both say the same thing.
 *
 * Each finding is one line handed to the caller's DOCTOR_LINE_FN with its
 * level; nothing here prints. A line of level DOCTOR_FIX is a problem.
 */
#ifndef HALO_DOCTOR_H
#define HALO_DOCTOR_H

#include <time.h>

#include "conf.h"
#include "oauth.h"
#include "store.h"

#define DOCTOR_LINE_MAX 1024        /* bytes of one line (longer: cut) */

enum doctor_level {
	DOCTOR_OK,                  /* checked and fine */
	DOCTOR_NOTE,                /* could not be checked yet; no problem */
	DOCTOR_WARN,                /* works, but worth a look */
	DOCTOR_FIX                  /* a problem */
};

/* Called for each line: its level and text (valid during the call). */
typedef void (*doctor_line_fn)(enum doctor_level level, const char *text,
    void *arg);

/* "ok", "note", "warn", "fix". */
const char *doctor_level_name(enum doctor_level level);

/*
 * The store's checks: its schema is this build's, and on a shared store
 * JOB_LEASE is not shorter than POST_GRACE (seconds a dead node's request
 * may still be in flight). Returns the number of problems.
 */
int doctor_store(struct store *st, unsigned job_lease, int post_grace,
    doctor_line_fn fn, void *arg);

/*
 * One tenant's checks against its Halo (makes Halo requests with OA's
 * tokens, refreshing them). DEADLINE (0: none): once passed, the checks
 * not made yet are skipped and one DOCTOR_FIX line says so. Returns the
 * number of problems.
 */
int doctor_tenant(struct store *st, struct oauth *oa,
    const struct conf_tenant *t, time_t deadline, doctor_line_fn fn,
    void *arg);

#endif
