/*
 * log.h - logging to syslog, or to stderr in the foreground.
 *
 * Paired verbs in the OpenSMTPD manner: log_warn() appends strerror(errno),
 * log_warnx() does not. Nothing here exits: callers inside milter callbacks
 * must answer and clean up, and only start-up code may give up.
 * Never pass a secret (token, password, code) to these functions.
 */
#ifndef HALO_LOG_H
#define HALO_LOG_H

#include <stdbool.h>
#include <stddef.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Start logging as IDENT; FOREGROUND sends lines to stderr; LEVEL is a
 * syslog priority (LOG_DEBUG..LOG_ERR): lines above it are dropped. */
void log_init(const char *ident, bool foreground, int level);

/* Where lines go (the "log" key): syslog (facility mail), plain stderr, or
 * stderr with sd-daemon(3) "<N>" priority prefixes, which journald reads. */
enum log_dest {
	LOG_DEST_SYSLOG,
	LOG_DEST_STDERR,
	LOG_DEST_JOURNAL
};

/* Start logging as IDENT to DEST, threshold LEVEL (as log_init). */
void log_open(const char *ident, enum log_dest dest, int level);

/* Set the threshold to LEVEL (as log_init) while threads log. */
void log_set_level(int level);

/* Whether stderr is a systemd journal stream ($JOURNAL_STREAM names its
 * device and inode). */
bool log_stderr_is_journal(void);

void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_crit(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * Copy S into OUT (size OUTSZ) for a log line: at most OUTSZ-1 bytes, control
 * characters and non-ASCII bytes replaced by '?', so hostile header values
 * cannot forge log lines. Returns OUT.
 */
const char *log_safe(const char *s, char *out, unsigned outsz);

/*
 * Text from outside the gateway (error messages from Halo or its auth
 * server, at most LEN bytes of S; NULL gives "-") made fit for a job
 * reason, a log line or a page: each run of whitespace becomes one space
 * (none leading or trailing), other control and non-ASCII bytes become '?',
 * and the result is at most LOG_CLEAN_MAX bytes and at most OUTSZ-1, ending
 * in "..." when it was cut. Always NUL-terminated (OUTSZ > 0). Returns OUT.
 * Pages must still HTML-escape it.
 */
#define LOG_CLEAN_MAX 200
const char *log_clean(const char *s, size_t len, char *out, size_t outsz);

#endif
