/*
 * agents.h - every agent a gateway knows, with its standing: the agents the
 * configuration names (routes, default_agent) and those the store has a
 * token or an enrollment for. Shared by "halo-milterctl agents" and the
 * admin page so both say the same thing.
 */
#ifndef HALO_AGENTS_H
#define HALO_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "store.h"

#define AGENTS_MAX 4096             /* rows at most (more are left out) */

/* One agent's standing in one tenant. */
struct agent_row {
	char *tenant, *agent;
	const char *token;          /* NULL (none), "ok", "reenroll" */
	time_t last_refresh;
	time_t pending_until;       /* an unused code valid until, or 0 */
	unsigned pending;           /* unused codes still valid */
	time_t signin_until;        /* a sign-in under way until, or 0 */
	char last[16];              /* newest finished enrollment's result */
};

struct agent_rows {
	struct agent_row *v;
	size_t n;
	time_t now;
	bool truncated;             /* AGENTS_MAX reached or out of memory */
};

/*
 * Gather ROWS at NOW, ordered by tenant, then agent. 0, or -1 when the
 * store could not be read whole (ROWS then holds what was read). Free
 * with agent_rows_clear() either way.
 */
int agent_rows_collect(struct store *st, const struct conf *conf, time_t now,
    struct agent_rows *rows);
void agent_rows_clear(struct agent_rows *rows);

#endif
