/*
 * spool.h - durable raw-message files.
 *
 * Layout under SPOOL_DIR: "tmp/" holds files being written, "msg/" holds
 * committed ones. A file is written to tmp/ (O_CREAT|O_EXCL, 0600), then
 * spool_commit() fsyncs it, renames it into msg/ and fsyncs msg/. Only then
 * may a job row point at it. Whatever is left in tmp/ after a crash is an
 * unfinished file and spool_recover() removes it, as well as committed files
 * no job refers to (a crash between rename and row commit).
 */
#ifndef HALO_SPOOL_H
#define HALO_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_NAME_MAX 64

struct spool_file;

/* Create tmp/ and msg/ under SPOOL_DIR (mode 0700) when missing. */
int spool_init(const char *spool_dir);

/* Start a new file in SPOOL_DIR/tmp; NULL with errno set on failure. */
struct spool_file *spool_create(const char *spool_dir);

/* Append LEN bytes (retrying short writes); -1 with errno on failure. */
int spool_write(struct spool_file *sf, const void *buf, size_t len);

/*
 * The job rows of a file, for start-up recovery: spool_write_trailer()
 * appends JSON (at most SPOOL_TRAILER_MAX bytes) and a footer after the
 * message, before spool_commit(), without counting them in spool_size():
 * a reader of a spool file takes its first spool_size() bytes (the size
 * the job row records). spool_read_trailer() gives back the message's size
 * and the JSON (malloc'd, NUL-terminated) of the committed file at PATH;
 * -1 with errno ENOENT when it has no trailer, EINVAL when it is damaged.
 */
#define SPOOL_TRAILER_MAX   (256u * 1024)
int spool_write_trailer(struct spool_file *sf, const char *json, size_t len);
int spool_read_trailer(const char *path, uint64_t *msg_size, char **json);

/* Make the file durable and move it to msg/; -1 with errno on failure
 * (the temporary file is then removed). */
int spool_commit(struct spool_file *sf);

/* Threads committing into the same spool at once share one fsync of msg/
 * (a group); SYNCS is how many directory fsyncs spool_commit() has run,
 * CALLS how many commits they served (SYNCS <= CALLS). */
void spool_sync_stats(uint64_t *syncs, uint64_t *calls);

/* Remove an uncommitted file (or forget a committed one) and free SF;
 * returns NULL. */
struct spool_file *spool_close(struct spool_file *sf);

/* Remove the committed file NAME (undo after a failed row commit). */
int spool_remove(const char *spool_dir, const char *name);

/* The file's name (the same in tmp/ and msg/) and its size. The store
 * keeps the size; the worker checks it before it uses the file. */
const char *spool_name(const struct spool_file *sf);
uint64_t spool_size(const struct spool_file *sf);

/* The directory of unfinished files (tmp/) into OUT, where other files
 * that must not outlive a restart may go too (the worker's spilled
 * attachments: unlinked, and swept by spool_recover() if not). -1 with
 * ENAMETOOLONG when it does not fit. */
int spool_tmp_dir(const char *spool_dir, char *out, size_t outsz);

/* Full path of a committed file NAME into OUT. -1 when it does not fit. */
int spool_path(const char *spool_dir, const char *name, char *out, size_t outsz);

/*
 * Start-up clean-up (no milter traffic yet): delete every file in tmp/ and
 * every file in msg/ for which IS_USED(name, ARG) is false. Counts go to
 * *TMP_REMOVED and *ORPHANS_REMOVED. -1 when a directory cannot be read.
 */
int spool_recover(const char *spool_dir,
    bool (*is_used)(const char *name, void *arg), void *arg,
    unsigned *tmp_removed, unsigned *orphans_removed);

#endif
