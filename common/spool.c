/*
 * spool.c - durable raw-message files (see spool.h).
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


struct spool_file {
	char *dir;                  /* spool directory */
	char name[SPOOL_NAME_MAX];
	int fd;
	bool committed;
	uint64_t size;
};

/* mkdir that tolerates an existing directory. */
static int
spool_mkdir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

/* The directory of unfinished files (see spool.h). */
int
spool_tmp_dir(const char *spool_dir, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s/tmp", spool_dir);

	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Create the spool tree. */
int
spool_init(const char *spool_dir)
{
	char path[4096];

	if (spool_mkdir(spool_dir) != 0)
		return -1;
	if (spool_tmp_dir(spool_dir, path, sizeof(path)) != 0 ||
	    spool_mkdir(path) != 0)
		return -1;
	if (snprintf(path, sizeof(path), "%s/msg", spool_dir) >= (int)sizeof(path) ||
	    spool_mkdir(path) != 0)
		return -1;
	return 0;
}

/* Path of NAME in SUB ("tmp" or "msg"). */
static int
spool_subpath(const char *dir, const char *sub, const char *name, char *out,
    size_t outsz)
{
	int n = snprintf(out, outsz, "%s/%s/%s", dir, sub, name);

	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Full path of a committed file. */
int
spool_path(const char *spool_dir, const char *name, char *out, size_t outsz)
{
	return spool_subpath(spool_dir, "msg", name, out, outsz);
}

/* Begin a file with a unique, unguessable name. */
struct spool_file *
spool_create(const char *spool_dir)
{
	struct spool_file *sf;
	unsigned char rnd[8];
	char path[4096];
	struct timespec ts;

	sf = calloc(1, sizeof(*sf));
	if (sf == NULL)
		return NULL;
	sf->fd = -1;
	sf->dir = strdup(spool_dir);
	if (sf->dir == NULL)
		goto fail;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		goto fail;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(sf->name, sizeof(sf->name), "%lld.%09ld.%02x%02x%02x%02x%02x%02x%02x%02x",
	    (long long)ts.tv_sec, ts.tv_nsec, rnd[0], rnd[1], rnd[2], rnd[3],
	    rnd[4], rnd[5], rnd[6], rnd[7]);
	if (spool_subpath(spool_dir, "tmp", sf->name, path, sizeof(path)) != 0)
		goto fail;
	sf->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (sf->fd < 0)
		goto fail;
	return sf;
fail:
	{
		int saved = errno;
		free(sf->dir);
		free(sf);
		errno = saved ? saved : EIO;
	}
	return NULL;
}

/* Append bytes, retrying short writes and EINTR. */
int
spool_write(struct spool_file *sf, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	if (sf->committed || sf->fd < 0) {
		errno = EBADF;
		return -1;
	}
	while (len > 0) {
		n = write(sf->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		sf->size += (uint64_t)n;
	}
	return 0;
}

/*
 * The trailer: after the message's SIZE bytes, the job rows (JSON, written
 * by spooljob.c), then a footer of fixed length naming the JSON's length.
 * The file's readers take only its first SIZE bytes (the size the job row
 * records); start-up recovery reads the trailer of a file no row names.
 */
#define SPOOL_FOOTER_TAG    "\nHALO-SPOOL-ROWS "
#define SPOOL_FOOTER_LEN    (sizeof(SPOOL_FOOTER_TAG) - 1 + 10 + 1)

/* Append the trailer (not counted in the file's size). */
int
spool_write_trailer(struct spool_file *sf, const char *json, size_t len)
{
	char footer[SPOOL_FOOTER_LEN + 1];
	uint64_t size;
	int rc;

	if (len == 0 || len > SPOOL_TRAILER_MAX) {
		errno = EINVAL;
		return -1;
	}
	snprintf(footer, sizeof(footer), "%s%010zu\n", SPOOL_FOOTER_TAG, len);
	size = sf->size;
	rc = spool_write(sf, json, len) == 0 &&
	    spool_write(sf, footer, SPOOL_FOOTER_LEN) == 0 ? 0 : -1;
	sf->size = size;
	return rc;
}

/* Read the trailer of the committed file at PATH (see spool.h). */
int
spool_read_trailer(const char *path, uint64_t *msg_size, char **json)
{
	char footer[SPOOL_FOOTER_LEN + 1], *end, *buf;
	unsigned long long len;
	struct stat sb;
	ssize_t n;
	int fd, saved;

	*json = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	if (fstat(fd, &sb) != 0)
		goto fail;
	errno = ENOENT;             /* no trailer */
	if (!S_ISREG(sb.st_mode) || sb.st_size < (off_t)SPOOL_FOOTER_LEN)
		goto fail;
	n = pread(fd, footer, SPOOL_FOOTER_LEN, sb.st_size -
	    (off_t)SPOOL_FOOTER_LEN);
	if (n != (ssize_t)SPOOL_FOOTER_LEN)
		goto fail;
	footer[SPOOL_FOOTER_LEN] = '\0';
	if (memcmp(footer, SPOOL_FOOTER_TAG, sizeof(SPOOL_FOOTER_TAG) - 1) != 0 ||
	    footer[SPOOL_FOOTER_LEN - 1] != '\n')
		goto fail;
	errno = 0;
	len = strtoull(footer + sizeof(SPOOL_FOOTER_TAG) - 1, &end, 10);
	if (errno != 0 || end != footer + SPOOL_FOOTER_LEN - 1 || len == 0 ||
	    len > SPOOL_TRAILER_MAX || (unsigned long long)sb.st_size <
	    len + SPOOL_FOOTER_LEN) {
		errno = EINVAL;
		goto fail;
	}
	if ((buf = malloc(len + 1)) == NULL)
		goto fail;
	*msg_size = (uint64_t)sb.st_size - len - SPOOL_FOOTER_LEN;
	n = pread(fd, buf, len, (off_t)*msg_size);
	if (n != (ssize_t)len) {
		free(buf);
		errno = EIO;
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	*json = buf;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* fsync a directory. */
static int
spool_sync_dir(const char *dir, const char *sub)
{
	char path[4096];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * The directory fsync after a rename, grouped: threads committing files in
 * the same spool at the same time share one fsync of msg/. A caller takes a
 * ticket after its rename; the first to find no fsync under way runs one
 * covering every ticket taken so far (their renames came before it) and
 * wakes the others. A failed shared fsync is not trusted for anyone: each
 * caller whose round failed syncs the directory itself.
 */
static struct spool_dirsync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *dir;                  /* the spool these tickets are for */
	uint64_t taken, done;       /* tickets issued, covered by an fsync */
	uint64_t failures;          /* shared fsyncs that failed */
	bool busy;
	uint64_t syncs, calls;      /* fsyncs run, callers served */
} spool_ds = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
    NULL, 0, 0, 0, false, 0, 0 };

static int
spool_sync_msgdir(const char *dir)
{
	struct spool_dirsync *g = &spool_ds;
	uint64_t mine, failures, target;

	pthread_mutex_lock(&g->lock);
	g->calls++;
	if (g->dir == NULL || strcmp(g->dir, dir) != 0) {
		/* another spool (a test may open several): the group moves
		 * to it once idle; until then this caller syncs alone */
		char *copy = NULL;

		if (!g->busy && g->taken == g->done)
			copy = strdup(dir);
		if (copy == NULL) {
			g->syncs++;
			pthread_mutex_unlock(&g->lock);
			return spool_sync_dir(dir, "msg");
		}
		free(g->dir);
		g->dir = copy;
	}
	mine = ++g->taken;
	failures = g->failures;
	while (g->done < mine) {
		if (g->busy) {
			pthread_cond_wait(&g->cond, &g->lock);
			continue;
		}
		g->busy = true;
		target = g->taken;
		g->syncs++;
		pthread_mutex_unlock(&g->lock);
		bool failed = spool_sync_dir(dir, "msg") != 0;

		pthread_mutex_lock(&g->lock);
		if (failed)
			g->failures++;
		g->done = target;
		g->busy = false;
		pthread_cond_broadcast(&g->cond);
	}
	if (g->failures != failures) {
		/* a shared fsync failed since this ticket: sync alone */
		pthread_mutex_unlock(&g->lock);
		return spool_sync_dir(dir, "msg");
	}
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* Directory fsyncs run, and the commits they served (see spool.h). */
void
spool_sync_stats(uint64_t *syncs, uint64_t *calls)
{
	pthread_mutex_lock(&spool_ds.lock);
	*syncs = spool_ds.syncs;
	*calls = spool_ds.calls;
	pthread_mutex_unlock(&spool_ds.lock);
}

/* Durably move the file into msg/. */
int
spool_commit(struct spool_file *sf)
{
	char from[4096], to[4096];
	int saved;

	if (sf->committed || sf->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (spool_subpath(sf->dir, "tmp", sf->name, from, sizeof(from)) != 0 ||
	    spool_subpath(sf->dir, "msg", sf->name, to, sizeof(to)) != 0)
		goto fail;
	if (fsync(sf->fd) != 0)
		goto fail;
	if (close(sf->fd) != 0) {
		sf->fd = -1;
		goto fail;
	}
	sf->fd = -1;
	if (rename(from, to) != 0)
		goto fail;
	sf->committed = true;
	if (spool_sync_msgdir(sf->dir) != 0) {
		saved = errno;
		unlink(to);
		sf->committed = false;
		errno = saved;
		return -1;
	}
	return 0;
fail:
	saved = errno;
	if (sf->fd >= 0) {
		close(sf->fd);
		sf->fd = -1;
	}
	unlink(from);
	errno = saved;
	return -1;
}

/* Drop an uncommitted file, free the handle. */
struct spool_file *
spool_close(struct spool_file *sf)
{
	char path[4096];

	if (sf == NULL)
		return NULL;
	if (sf->fd >= 0)
		close(sf->fd);
	if (!sf->committed &&
	    spool_subpath(sf->dir, "tmp", sf->name, path, sizeof(path)) == 0)
		unlink(path);
	free(sf->dir);
	free(sf);
	return NULL;
}

/* Remove a committed file. */
int
spool_remove(const char *spool_dir, const char *name)
{
	char path[4096];

	if (spool_path(spool_dir, name, path, sizeof(path)) != 0)
		return -1;
	return unlink(path);
}

/* Accessors. */
const char *
spool_name(const struct spool_file *sf)
{
	return sf->name;
}

uint64_t
spool_size(const struct spool_file *sf)
{
	return sf->size;
}

/* Remove files in SUB for which KEEP is false (KEEP NULL = remove all). */
static int
spool_sweep(const char *dir, const char *sub,
    bool (*keep)(const char *name, void *arg), void *arg, unsigned *removed)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/%s", dir, sub) >= (int)sizeof(path))
		return -1;
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (keep != NULL && keep(de->d_name, arg))
			continue;
		if (spool_subpath(dir, sub, de->d_name, path, sizeof(path)) == 0 &&
		    unlink(path) == 0)
			(*removed)++;
	}
	closedir(d);
	return 0;
}

/* Start-up recovery (see spool.h). */
int
spool_recover(const char *spool_dir,
    bool (*is_used)(const char *name, void *arg), void *arg,
    unsigned *tmp_removed, unsigned *orphans_removed)
{
	*tmp_removed = 0;
	*orphans_removed = 0;
	if (spool_sweep(spool_dir, "tmp", NULL, NULL, tmp_removed) != 0)
		return -1;
	return spool_sweep(spool_dir, "msg", is_used, arg, orphans_removed);
}
