/*
 * keys.h - rotation of the sealing key (state_dir/seal.key): every sealed
 * value in the store is re-sealed under a new key, then the new key file
 * replaces the old one.
 *
 * Order, so that an interruption at any point loses nothing:
 *   1. write seal.key.new (0600, fsync'd; the owner of seal.key);
 *   2. hard-link seal.key to seal.key.old (a copy of the old key for as
 *      long as the rotation runs);
 *   3. in ONE store transaction, open each sealed value with the old key
 *      and seal it with the new one (same AAD);
 *   4. rename seal.key.new over seal.key, fsync the directory;
 *   5. remove seal.key.old.
 * Run again after an interruption, it finds seal.key.new and looks at the
 * store: values that open under the new key mean step 3 committed, so it
 * finishes with steps 4-5; otherwise it discards seal.key.new and starts
 * over. The web server's hash key (codes, states) derives from the sealing
 * key, so pending codes and sign-ins under way stop working.
 *
 * The daemon keeps the key it read at start: it must not run meanwhile
 * (the caller checks), and must be started again afterwards.
 */
#ifndef HALO_KEYS_H
#define HALO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "statedir.h"
#include "store.h"

struct keys_counts {
	unsigned tokens;            /* refresh tokens re-sealed */
	unsigned verifiers;         /* pending sign-ins' verifiers re-sealed */
	unsigned unreadable;        /* values the old key did not open (left
	                               as they were: unusable before, too) */
	int resumed;                /* 1 when an interrupted run was finished */
};

/*
 * Re-seal every sealed value of ST from OLD_KEY to NEW_KEY in one
 * transaction (step 3). The AADs are those of oauth.c ("tenant\0agent")
 * and web.c ("enroll-verifier:" + state hash). 0, or -1 (nothing changed).
 */
int keys_reseal(struct store *st, const uint8_t old_key[CRYPTO_KEY_LEN],
    const uint8_t new_key[CRYPTO_KEY_LEN], struct keys_counts *counts);

/*
 * The sealing key SD->seal_key of a process that uses ST, into KEY.
 * It is created only while ST holds no sealed value. Refused (-1, a
 * message naming the file in ERR, KEY wiped) when the file is missing or
 * unusable while refresh tokens are sealed, or when none of them was made
 * with it (key id, or for values from before key ids, opening them;
 * pending sign-ins' verifiers do not count: they live minutes): a wrong
 * key would make every agent's token useless, and the right key put back
 * restores them all. 0 on success. The daemon and the CLI call this at
 * start.
 */
int keys_load(const struct statedir *sd, struct store *st,
    uint8_t key[CRYPTO_KEY_LEN], char *err, size_t errsz);

/* The whole rotation in SD (steps 1-5, or the end of an interrupted
 * run). 0, or -1 with a message in ERR. */
int keys_rotate(const struct statedir *sd, struct store *st,
    struct keys_counts *counts, char *err, size_t errsz);

/*
 * The keys a daemon holds, loaded once: the sealing key (keys_load) and
 * the status key (made on first start). 0, or -1 with a message naming
 * the file in ERR (K wiped).
 */
int keys_load_all(const struct statedir *sd, struct store *st,
    struct statedir_keys *k, char *err, size_t errsz);

#endif
