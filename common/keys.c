/*
 * keys.c - sealing-key rotation (see keys.h for the order of the steps and
 * why it survives an interruption).
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oauth.h"
#include "util.h"

struct keys_job {
	const uint8_t *open_key, *seal_key;
	struct keys_counts *counts;
	bool count_only;            /* count what OPEN_KEY opens, change
	                               nothing */
	unsigned opened;
};

/* The AAD a value was sealed with (oauth.h); its length or 0. */
static size_t
keys_aad(const struct store_sealed *v, char *buf, size_t bufsz)
{
	if (strcmp(v->table, "tokens") == 0)
		return oauth_aad(v->tenant, v->agent, buf, bufsz);
	if (v->state_hash == NULL)
		return 0;
	return oauth_verifier_aad(v->state_hash, buf, bufsz);
}

/* store_reseal() callback: open under the old key, seal under the new. */
static char *
keys_reseal_one(const struct store_sealed *v, void *arg)
{
	struct keys_job *job = arg;
	char aad[1024], *out = NULL;
	uint8_t *pt = NULL;
	size_t aad_len, pt_len = 0;

	aad_len = keys_aad(v, aad, sizeof(aad));
	if (aad_len == 0 || crypto_open(job->open_key, aad, aad_len, v->sealed,
	    &pt, &pt_len) != 0) {
		/* already unusable (the daemon asks for a new enrollment):
		 * keep it as it is rather than fail every other value */
		if (!job->count_only)
			job->counts->unreadable++;
		return strdup(v->sealed);
	}
	job->opened++;
	if (job->count_only) {
		crypto_free_secret(pt, pt_len);
		return strdup(v->sealed);
	}
	if (crypto_seal(job->seal_key, aad, aad_len, pt, pt_len, &out) != 0)
		out = NULL;
	else if (strcmp(v->table, "tokens") == 0)
		job->counts->tokens++;
	else
		job->counts->verifiers++;
	crypto_free_secret(pt, pt_len);
	return out;
}

/* Re-seal every value from OLD_KEY to NEW_KEY. */
int
keys_reseal(struct store *st, const uint8_t old_key[CRYPTO_KEY_LEN],
    const uint8_t new_key[CRYPTO_KEY_LEN], struct keys_counts *counts)
{
	struct keys_counts local;
	struct keys_job job;

	memset(&local, 0, sizeof(local));
	memset(&job, 0, sizeof(job));
	job.open_key = old_key;
	job.seal_key = new_key;
	job.counts = &local;
	if (store_reseal(st, keys_reseal_one, &job, NULL) != STORE_OK)
		return -1;
	if (counts != NULL) {
		local.resumed = counts->resumed;
		*counts = local;
	}
	return 0;
}

/* How many sealed values KEY opens (a pass that writes every value back
 * unchanged, in one transaction like the real one). */
static unsigned
keys_opens(struct store *st, const uint8_t key[CRYPTO_KEY_LEN])
{
	struct keys_counts unused;
	struct keys_job job;

	memset(&unused, 0, sizeof(unused));
	memset(&job, 0, sizeof(job));
	job.open_key = key;
	job.counts = &unused;
	job.count_only = true;
	if (store_reseal(st, keys_reseal_one, &job, NULL) != STORE_OK)
		return 0;
	return job.opened;
}

/* What keys_survey() found. */
struct keys_survey {
	const uint8_t *key;         /* NULL: only count */
	unsigned seen;              /* values looked at */
	bool match;                 /* one was made with KEY */
	bool has_id;                /* OTHER_ID is set */
	uint8_t other_id[CRYPTO_KEY_ID_LEN];    /* a key id not KEY's */
};

/* store_reseal() callback that changes nothing: stop (NULL, the
 * transaction is rolled back) at the first value made with the key, or at
 * the first value at all when only counting; otherwise write it back as
 * it was. */
static char *
keys_survey_one(const struct store_sealed *v, void *arg)
{
	struct keys_survey *sv = arg;
	uint8_t id[CRYPTO_KEY_ID_LEN], mine[CRYPTO_KEY_ID_LEN], *pt = NULL;
	size_t aad_len, pt_len = 0;
	char aad[1024];
	int has;

	/* refresh tokens only: a pending sign-in's verifier lives minutes,
	 * and one that no longer opens costs one sign-in, not an agent */
	if (strcmp(v->table, "tokens") != 0)
		return strdup(v->sealed);
	sv->seen++;
	has = crypto_sealed_key_id(v->sealed, id);
	if (has == 1 && !sv->has_id) {
		memcpy(sv->other_id, id, sizeof(id));
		sv->has_id = true;
	}
	if (sv->key == NULL)
		return NULL;
	if (has == 1) {
		if (crypto_key_id(sv->key, mine) == 0 &&
		    memcmp(id, mine, sizeof(id)) == 0) {
			sv->match = true;
			return NULL;
		}
	} else if (has == 0) {
		/* a value from before key ids: only opening it tells */
		aad_len = keys_aad(v, aad, sizeof(aad));
		if (aad_len > 0 && crypto_open(sv->key, aad, aad_len,
		    v->sealed, &pt, &pt_len) == 0) {
			crypto_free_secret(pt, pt_len);
			sv->match = true;
			return NULL;
		}
	}
	return strdup(v->sealed);
}

/* Hex of a key id into OUT (2 * CRYPTO_KEY_ID_LEN + 1 bytes). */
static void
keys_id_hex(const uint8_t id[CRYPTO_KEY_ID_LEN], char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < CRYPTO_KEY_ID_LEN; i++) {
		out[2 * i] = hex[id[i] >> 4];
		out[2 * i + 1] = hex[id[i] & 15];
	}
	out[2 * CRYPTO_KEY_ID_LEN] = '\0';
}

/* Whether KEY (at PATH) is the key of ST's sealed values: 0 when there are
 * none or one of them was made with it; -1 with a message in ERR. */
static int
keys_check(struct store *st, const char *path,
    const uint8_t key[CRYPTO_KEY_LEN], char *err, size_t errsz)
{
	struct keys_survey sv;
	uint8_t mine[CRYPTO_KEY_ID_LEN];
	char want[2 * CRYPTO_KEY_ID_LEN + 1], have[2 * CRYPTO_KEY_ID_LEN + 1];

	memset(&sv, 0, sizeof(sv));
	sv.key = key;
	if (store_reseal(st, keys_survey_one, &sv, NULL) == STORE_OK &&
	    sv.seen == 0)
		return 0;
	if (sv.match)
		return 0;
	if (sv.seen == 0) {
		snprintf(err, errsz, "cannot read the sealed tokens of the store"
		    " to check %s against them", path);
		return -1;
	}
	if (crypto_key_id(key, mine) != 0) {
		snprintf(err, errsz, "cannot compute the id of %s", path);
		return -1;
	}
	keys_id_hex(mine, have);
	if (sv.has_id)
		keys_id_hex(sv.other_id, want);
	snprintf(err, errsz, "%s (key id %s) is not the key the store's %u"
	    " sealed token%s %s made with%s%s%s: put the right seal.key back"
	    " (from a backup) and start again; every agent then works as"
	    " before, without enrolling again. Refusing to run with this key"
	    " (if the right one is lost for good: \"halo-milterctl revoke\""
	    " each agent, then enroll them again)",
	    path, have, sv.seen, sv.seen == 1 ? "" : "s",
	    sv.seen == 1 ? "was" : "were", sv.has_id ? " (key id " : "",
	    sv.has_id ? want : "", sv.has_id ? ")" : "");
	return -1;
}

/* The sealing key of a process that uses ST (see keys.h). */
int
keys_load(const struct statedir *sd, struct store *st,
    uint8_t key[CRYPTO_KEY_LEN], char *err, size_t errsz)
{
	const char *path = sd->seal_key;
	char want[2 * CRYPTO_KEY_ID_LEN + 1];
	struct keys_survey sv;
	struct stat sb;

	if (lstat(path, &sb) != 0 && errno == ENOENT) {
		/* a new key opens none of the sealed tokens: never make one
		 * while there are any */
		memset(&sv, 0, sizeof(sv));
		store_reseal(st, keys_survey_one, &sv, NULL);
		if (sv.seen > 0) {
			if (sv.has_id)
				keys_id_hex(sv.other_id, want);
			snprintf(err, errsz, "%s is missing, but the store holds"
			    " sealed tokens made with it%s%s%s: put the key file"
			    " back (from a backup) and start again; every agent"
			    " then works as before. Refusing to make a new key,"
			    " which would open none of them (if the key is lost"
			    " for good: \"halo-milterctl revoke\" each agent,"
			    " then enroll them again)", path,
			    sv.has_id ? " (key id " : "", sv.has_id ? want : "",
			    sv.has_id ? ")" : "");
			return -1;
		}
	}
	if (crypto_key_load_or_create(path, key, err, errsz) != 0)
		return -1;
	if (keys_check(st, path, key, err, errsz) != 0) {
		crypto_wipe(key, CRYPTO_KEY_LEN);
		return -1;
	}
	return 0;
}

/* The whole rotation. */
int
keys_rotate(const struct statedir *sd, struct store *st,
    struct keys_counts *counts, char *err, size_t errsz)
{
	const char *cur_path = sd->seal_key, *state_dir = sd->dir;
	char new_path[PATH_MAX], old_path[PATH_MAX];
	uint8_t cur[CRYPTO_KEY_LEN], next[CRYPTO_KEY_LEN];
	struct stat sb;
	int rc = -1;

	memset(counts, 0, sizeof(*counts));
	if (statedir_path(new_path, sizeof(new_path), state_dir,
	    STATEDIR_SEAL_KEY, ".new") != 0 ||
	    statedir_path(old_path, sizeof(old_path), state_dir,
	    STATEDIR_SEAL_KEY, ".old") != 0) {
		snprintf(err, errsz, "state_dir is too long");
		return -1;
	}
	if (lstat(cur_path, &sb) != 0) {
		snprintf(err, errsz, "%s: %s (nothing is sealed yet, so there is"
		    " nothing to rotate)", cur_path, strerror(errno));
		return -1;
	}
	if (crypto_key_load_or_create(cur_path, cur, err, errsz) != 0)
		return -1;
	if (lstat(new_path, &sb) == 0) {
		/* an interrupted run: did its transaction commit? */
		if (crypto_key_load_or_create(new_path, next, err, errsz) == 0 &&
		    keys_opens(st, next) > 0 && keys_opens(st, cur) == 0) {
			counts->resumed = 1;
			goto install;
		}
		crypto_wipe(next, sizeof(next));
		if (unlink(new_path) != 0) {
			snprintf(err, errsz, "cannot remove %s: %s", new_path,
			    strerror(errno));
			goto out;
		}
	}
	/* the current key must be the store's: re-sealing with another one
	 * would leave every value unreadable */
	if (keys_check(st, cur_path, cur, err, errsz) != 0)
		goto out;
	/* 1: the new key, owned like the old one (the daemon's user) */
	if (crypto_key_load_or_create(new_path, next, err, errsz) != 0)
		goto out;
	if (stat(cur_path, &sb) == 0 && chown(new_path, sb.st_uid,
	    sb.st_gid) != 0 && errno != EPERM) {
		snprintf(err, errsz, "cannot chown %s: %s", new_path,
		    strerror(errno));
		goto out;
	}
	/* 2: keep the old key reachable until the end */
	if ((unlink(old_path) != 0 && errno != ENOENT) ||
	    link(cur_path, old_path) != 0) {
		snprintf(err, errsz, "cannot keep a copy of the old key as %s: %s",
		    old_path, strerror(errno));
		goto out;
	}
	/* 3: all values, one transaction */
	if (keys_reseal(st, cur, next, counts) != 0) {
		snprintf(err, errsz, "re-sealing failed; nothing was changed (the"
		    " store still uses the old key)");
		unlink(new_path);
		unlink(old_path);
		goto out;
	}
install:
	/* 4: the new key takes the old one's place, atomically */
	if (rename(new_path, cur_path) != 0 || util_fsync_dir(state_dir) != 0) {
		snprintf(err, errsz, "the store is re-sealed but %s could not"
		    " replace %s (%s): run \"halo-milterctl keys rotate\" again",
		    new_path, cur_path, strerror(errno));
		goto out;
	}
	/* 5 */
	if (unlink(old_path) != 0 && errno != ENOENT) {
		snprintf(err, errsz, "rotated, but cannot remove %s: %s", old_path,
		    strerror(errno));
		goto out;
	}
	util_fsync_dir(state_dir);
	rc = 0;
out:
	crypto_wipe(cur, sizeof(cur));
	crypto_wipe(next, sizeof(next));
	return rc;
}

/* Both keys of a process (see keys.h). */
int
keys_load_all(const struct statedir *sd, struct store *st,
    struct statedir_keys *k, char *err, size_t errsz)
{
	if (keys_load(sd, st, k->seal, err, errsz) != 0)
		return -1;
	/* the key of X-Halo-Token: made on first start, 0600, only ours */
	if (crypto_key_load_or_create(sd->status_key, k->status, err,
	    errsz) != 0) {
		statedir_keys_wipe(k);
		return -1;
	}
	return 0;
}
