/*
 * spooljob.h - the job rows a spool file carries, for start-up recovery.
 *
 * End of message writes a message's rows (every tenant's, and its
 * conversation key) as JSON into the spool file's trailer (spool.h) before
 * spool_commit() makes the file durable. The rows' commit may then skip
 * its own sync (store_job_new.spool_holds_row): after a power cut that
 * lost it, spooljob_recover() finds the committed file no job names and
 * adds its rows again, unless the message already has a ticket (a job
 * purged once done keeps its ticket in the thread index).
 */
#ifndef HALO_SPOOLJOB_H
#define HALO_SPOOLJOB_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* The JSON of ROWS (N of them, at most 64) and the conversation key
 * CONV_MSGID -> CONV_KEY (both NULL: none); malloc'd, NULL on failure or
 * when it would exceed SPOOL_TRAILER_MAX (then commit without a trailer). */
char *spooljob_encode(const struct store_job_new *rows, size_t n,
    const char *conv_msgid, const char *conv_key);

/* A parsed trailer: ROWS point into ROOT (spool, size and spool_file are
 * left for the caller). */
struct spooljob {
	void *root;                 /* cJSON */
	struct store_job_new *rows;
	size_t n;
	const char *conv_msgid, *conv_key;
};

/* Parse LEN bytes of JSON; NULL when it is not a valid trailer (every
 * field checked: types, lengths, states, modes, keys). */
struct spooljob *spooljob_decode(const char *json, size_t len);
struct spooljob *spooljob_free(struct spooljob *sj);

/*
 * Start-up recovery of the spool at SPOOL_DIR, for the daemon, before any
 * mail: spool_recover() with this rule for each committed file: kept when
 * a job names it, or when its trailer's rows could be added to ST (they
 * are not when the message already has a ticket); else removed as an
 * orphan, as is everything in tmp/. OUT gets the counts: files whose rows
 * were restored, whose trailer could not be read (logged), and what
 * spool_recover() removed. -1 with errno when the spool cannot be read or
 * the store fails (then the daemon must not start; no file the store
 * could not answer for is removed).
 */
struct spooljob_recovery {
	unsigned restored, damaged, tmp_removed, orphans;
	/* the sweep's own */
	struct store *st;
	const char *spool_dir;
	bool failed;
};
int spooljob_recover(const char *spool_dir, struct store *st,
    struct spooljob_recovery *out);

#endif
