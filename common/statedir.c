/*
 * statedir.c - the files of the state directory (see statedir.h).
 */
#include "statedir.h"

#include <stdio.h>
#include <string.h>

int
statedir_path(char *buf, size_t bufsz, const char *dir, const char *name,
    const char *suffix)
{
	int n = snprintf(buf, bufsz, "%s/%s%s", dir, name, suffix);

	if (n < 0 || (size_t)n >= bufsz) {
		if (bufsz > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

int
statedir_init(struct statedir *sd, const char *dir, const char *store,
    char *err, size_t errsz)
{
	int bad = 0;

	memset(sd, 0, sizeof(*sd));
	if (dir == NULL || strlen(dir) >= sizeof(sd->dir)) {
		snprintf(err, errsz, "state_dir is too long");
		return -1;
	}
	memcpy(sd->dir, dir, strlen(dir) + 1);
	bad |= statedir_path(sd->sqlite, sizeof(sd->sqlite), dir, STATEDIR_DB,
	    "");
	bad |= statedir_path(sd->spool, sizeof(sd->spool), dir, STATEDIR_SPOOL,
	    "");
	bad |= statedir_path(sd->seal_key, sizeof(sd->seal_key), dir,
	    STATEDIR_SEAL_KEY, "");
	bad |= statedir_path(sd->status_key, sizeof(sd->status_key), dir,
	    STATEDIR_STATUS_KEY, "");
	bad |= statedir_path(sd->admin_pw, sizeof(sd->admin_pw), dir,
	    STATEDIR_ADMIN_PW, "");
	/* the longest name with the suffixes keys rotate adds */
	{
		char probe[PATH_MAX];

		bad |= statedir_path(probe, sizeof(probe), dir,
		    STATEDIR_SEAL_KEY, ".new");
	}
	if (bad) {
		snprintf(err, errsz, "state_dir is too long");
		return -1;
	}
	if (store != NULL) {
		if (strlen(store) >= sizeof(sd->store)) {
			snprintf(err, errsz, "store is too long");
			return -1;
		}
		memcpy(sd->store, store, strlen(store) + 1);
	} else
		memcpy(sd->store, sd->sqlite, strlen(sd->sqlite) + 1);
	return 0;
}

void
statedir_keys_wipe(struct statedir_keys *k)
{
	crypto_wipe(k, sizeof(*k));
}
