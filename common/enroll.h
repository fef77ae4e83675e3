/*
 * enroll.h - enrollment codes and OAuth states as the store keeps them:
 * never in clear, only as a keyed hash under a key derived from the
 * sealing key. Shared by the daemon's web server and halo-milterctl,
 * which mints codes without a web server (issue 10).
 */
#ifndef HALO_ENROLL_H
#define HALO_ENROLL_H

#include <stdint.h>

#include "crypto.h"

#define ENROLL_CODE_TTL   600     /* a code's life, seconds */
#define ENROLL_STATE_MAX  128     /* longest OAuth state accepted */
#define ENROLL_TYPED_MAX  64      /* what is read of a typed code */

/* The hash key (64 hex digits) derived from the sealing key. */
int	enroll_hash_key(const uint8_t seal_key[CRYPTO_KEY_LEN], char out[65]);

/* Keyed hash of a typed code after normalisation (dashes, case,
 * look-alike letters); -1 when it cannot be a code. */
int	enroll_code_hash(const char *hash_key, const char *typed, char out[65]);

/* Keyed hash of an OAuth state; -1 when empty or too long. */
int	enroll_state_hash(const char *hash_key, const char *state, char out[65]);

/* "BCDFGHJK" -> "BCDF-GHJK". */
void	enroll_code_format(const char code[9], char out[10]);

#endif
