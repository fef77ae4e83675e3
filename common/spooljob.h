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
 * Before spool_recover(): for each committed file in SPOOL_DIR no job
 * names, add the rows of its trailer to ST. *RESTORED counts the files
 * whose rows were added, *DAMAGED those whose trailer could not be read
 * (logged; spool_recover() then removes them as orphans). A file without
 * a trailer is left alone. -1 with errno when the directory cannot be read
 * or the store fails (the daemon must not start and remove the files).
 */
int spooljob_recover(const char *spool_dir, struct store *st,
    unsigned *restored, unsigned *damaged);

#endif
