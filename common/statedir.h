/*
 * statedir.h - the files of the state directory, named once (issue 10).
 *
 * Every process (the daemon, halo-milterctl) fills one struct statedir at
 * start and passes it on; nothing else spells a file name of state_dir.
 * The daemon loads the two keys once (keys_load_all) and hands copies to
 * intake, oauth and the web server.
 */
#ifndef HALO_STATEDIR_H
#define HALO_STATEDIR_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define STATEDIR_DB          "halo-milter.db"  /* the SQLite store */
#define STATEDIR_SPOOL       "spool"           /* spooled messages */
#define STATEDIR_SEAL_KEY    "seal.key"        /* seals tokens at rest */
#define STATEDIR_STATUS_KEY  "status.key"      /* signs X-Halo-Token */
#define STATEDIR_ADMIN_PW    "admin.pw"        /* the admin page's hash */

struct statedir {
	char dir[PATH_MAX];
	char store[PATH_MAX];       /* the store: "store =" when set, else
	                               the SQLite file below */
	char sqlite[PATH_MAX];      /* DIR/halo-milter.db */
	char spool[PATH_MAX];
	char seal_key[PATH_MAX];
	char status_key[PATH_MAX];
	char admin_pw[PATH_MAX];
};

/* The keys of a process, loaded once. */
struct statedir_keys {
	uint8_t seal[CRYPTO_KEY_LEN];
	uint8_t status[CRYPTO_KEY_LEN];
};

/*
 * Fill SD for state directory DIR and the configured STORE (NULL: the
 * SQLite file in DIR). -1 with a message in ERR when a path does not fit
 * (no name is ever used cut short).
 */
int	statedir_init(struct statedir *sd, const char *dir, const char *store,
	    char *err, size_t errsz);

/* DIR's file NAME with SUFFIX ("" for none) into BUF; -1 when too long. */
int	statedir_path(char *buf, size_t bufsz, const char *dir,
	    const char *name, const char *suffix);

/* Wipe K. */
void	statedir_keys_wipe(struct statedir_keys *k);

#endif
