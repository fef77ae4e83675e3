/*
 * util.h - small byte-level helpers shared by the parsers and the state
 * files: digit values, UTF-8 sequence validation, full writes and
 * directory fsync. One copy each (issue 10); no allocation, no state.
 */
#ifndef HALO_UTIL_H
#define HALO_UTIL_H

#include <stddef.h>

/* Value of hex digit C (either case), or -1. */
int	util_hex_digit(int c);

/* Value of base64 digit C in the standard alphabet ('+', '/'), or -1. */
int	util_b64_digit(unsigned char c);

/* Value of base64url digit C ('-', '_'), or -1. */
int	util_b64url_digit(unsigned char c);

/*
 * Length of the valid UTF-8 sequence at S (AVAIL bytes readable, at least
 * 1), or 0 when it is not one: a bad lead or continuation byte, a
 * truncated, overlong or surrogate sequence, or beyond U+10FFFF.
 */
size_t	util_utf8_seq(const unsigned char *s, size_t avail);

/* Write LEN bytes of P to FD, retrying short writes and EINTR; 0, or -1
 * with errno set (EIO when the descriptor takes nothing). */
int	util_write_full(int fd, const void *p, size_t len);

/* fsync the directory DIR, so that an entry made in it is durable. */
int	util_fsync_dir(const char *dir);

/* fsync the directory holding PATH ("." when PATH has no slash). */
int	util_fsync_parent(const char *path);

#endif
