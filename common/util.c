/*
 * util.c - small byte-level helpers (see util.h).
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
util_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Digits 0..61 are the same in both alphabets. */
static int
util_b64_common(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return -1;
}

int
util_b64_digit(unsigned char c)
{
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return util_b64_common(c);
}

int
util_b64url_digit(unsigned char c)
{
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return util_b64_common(c);
}

size_t
util_utf8_seq(const unsigned char *s, size_t avail)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
util_write_full(int fd, const void *p, size_t len)
{
	const unsigned char *buf = p;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

long
util_read_full(int fd, void *p, size_t len)
{
	unsigned char *buf = p;
	size_t done = 0;

	if (len > LONG_MAX)
		len = LONG_MAX;
	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (long)done;
}

int
util_fsync_dir(const char *dir)
{
	int fd, rc, saved;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
util_fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	size_t len;

	if (slash == NULL)
		return util_fsync_dir(".");
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, len);
	dir[len] = '\0';
	return util_fsync_dir(dir);
}

bool
util_buf_reserve(struct util_buf *b, size_t n)
{
	size_t want;
	char *grown;

	if (b->oom)
		return false;
	if (n > SIZE_MAX - 1 - b->len || (b->max != 0 && n > b->max - b->len)) {
		b->oom = true;
		return false;
	}
	if (b->len + n + 1 <= b->cap)
		return true;
	want = b->cap < 256 ? 256 : b->cap;
	while (want < b->len + n + 1)
		want = want > SIZE_MAX / 2 ? b->len + n + 1 : want * 2;
	if (b->max != 0 && b->max < SIZE_MAX && want > b->max + 1)
		want = b->max + 1;
	grown = realloc(b->s, want);
	if (grown == NULL) {
		b->oom = true;
		return false;
	}
	b->s = grown;
	b->cap = want;
	b->s[b->len] = '\0';
	return true;
}

bool
util_buf_add(struct util_buf *b, const void *p, size_t n)
{
	if (!util_buf_reserve(b, n))
		return false;
	if (n > 0)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
	return true;
}

void
util_buf_clear(struct util_buf *b)
{
	size_t max = b->max;

	free(b->s);
	memset(b, 0, sizeof(*b));
	b->max = max;
}
