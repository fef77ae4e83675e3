/*
 * util.h - small byte-level helpers shared by the parsers and the state
 * files: digit values, UTF-8 sequence validation, one growable buffer,
 * full writes and directory fsync. One copy each (issue 10).
 */
#ifndef HALO_UTIL_H
#define HALO_UTIL_H

#include <stdbool.h>
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

/* Read from FD into P until LEN bytes or end of file, retrying short reads
 * and EINTR: the bounded read of a whole (small) file. The count read, or
 * -1 with errno set. */
long	util_read_full(int fd, void *p, size_t len);

/* fsync the directory DIR, so that an entry made in it is durable. */
int	util_fsync_dir(const char *dir);

/* fsync the directory holding PATH ("." when PATH has no slash). */
int	util_fsync_parent(const char *path);

/*
 * A growing byte string, NUL-terminated once it has memory at all. MAX
 * (0: none) bounds LEN: the capacity never grows past MAX + 1, and a
 * reservation past it fails. Once OOM is set (memory or MAX ran out) every
 * later reservation fails, so a builder checks once at the end.
 */
struct util_buf {
	char	*s;
	size_t	 len, cap;
	size_t	 max;
	bool	 oom;
};

/* Room for N more bytes and a NUL; false (and OOM set) when there is none. */
bool	util_buf_reserve(struct util_buf *b, size_t n);

/* Append N bytes of P (and keep the NUL); false when they did not fit. */
bool	util_buf_add(struct util_buf *b, const void *p, size_t n);

/* Free the bytes; B is empty again (MAX is kept). */
void	util_buf_clear(struct util_buf *b);

#endif
