/*
 * log.c - syslog or stderr logging with printf-style verbs.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

static bool log_foreground = true;
static bool log_prefix_priority = false;
static _Atomic int log_level = LOG_INFO;   /* changed by a reload */
static const char *log_ident = "halo-milter";

/* Set up the destination and threshold. */
void
log_init(const char *ident, bool foreground, int level)
{
	log_ident = ident;
	log_foreground = foreground;
	log_level = level;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* Start logging to DEST (see log.h). */
void
log_open(const char *ident, enum log_dest dest, int level)
{
	log_init(ident, dest != LOG_DEST_SYSLOG, level);
	log_prefix_priority = dest == LOG_DEST_JOURNAL;
}

/* Change the threshold (a reload's log_level); any thread. */
void
log_set_level(int level)
{
	log_level = level;
}

/* Whether stderr is the journal stream systemd gave us (see log.h). */
bool
log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (env == NULL || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	if (fstat(2, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* Write one line at PRI, with ": strerror" appended when ERRNUM is not 0. */
static void
log_vwrite(int pri, int errnum, const char *fmt, va_list ap)
{
	char msg[2048];
	const char *tag;

	if (pri > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!log_foreground) {
		if (errnum)
			syslog(pri, "%s: %s", msg, strerror(errnum));
		else
			syslog(pri, "%s", msg);
		return;
	}
	switch (pri) {
	case LOG_CRIT: tag = "crit"; break;
	case LOG_ERR: tag = "error"; break;
	case LOG_WARNING: tag = "warning"; break;
	case LOG_NOTICE: tag = "notice"; break;
	case LOG_DEBUG: tag = "debug"; break;
	default: tag = "info"; break;
	}
	/* one fprintf per line keeps lines from different threads whole;
	 * under journald a "<N>" prefix carries the priority */
	if (log_prefix_priority) {
		if (errnum)
			fprintf(stderr, "<%d>%s: %s\n", pri, msg,
			    strerror(errnum));
		else
			fprintf(stderr, "<%d>%s\n", pri, msg);
	} else if (errnum)
		fprintf(stderr, "%s: %s: %s: %s\n", log_ident, tag, msg,
		    strerror(errnum));
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, tag, msg);
}

#define LOG_VERB(name, pri, with_errno)					\
void									\
name(const char *fmt, ...)						\
{									\
	int saved = errno;						\
	va_list ap;							\
	va_start(ap, fmt);						\
	log_vwrite(pri, (with_errno) ? saved : 0, fmt, ap);		\
	va_end(ap);							\
	errno = saved;							\
}

LOG_VERB(log_warn, LOG_WARNING, 1)
LOG_VERB(log_warnx, LOG_WARNING, 0)
LOG_VERB(log_info, LOG_INFO, 0)
LOG_VERB(log_notice, LOG_NOTICE, 0)
LOG_VERB(log_debug, LOG_DEBUG, 0)
LOG_VERB(log_crit, LOG_CRIT, 0)

/* Make S printable for a log line (see log.h). */
const char *
log_safe(const char *s, char *out, unsigned outsz)
{
	unsigned i = 0;

	if (outsz == 0)
		return out;
	if (s == NULL)
		s = "-";
	for (; s[i] != '\0' && i + 1 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
	return out;
}

/* Make foreign error text fit for a reason, a log line or a page (see
 * log.h). */
const char *
log_clean(const char *s, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0, cap;
	bool space = false, cut = false;

	if (out == NULL || outsz == 0)
		return out;
	if (s == NULL) {
		s = "-";
		len = 1;
	}
	cap = outsz - 1 < LOG_CLEAN_MAX ? outsz - 1 : LOG_CLEAN_MAX;
	for (i = 0; i < len && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '\v' || c == '\f') {
			space = o > 0;
			continue;
		}
		if (o + (space ? 2 : 1) > cap) {
			cut = true;
			break;
		}
		if (space) {
			out[o++] = ' ';
			space = false;
		}
		out[o++] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (cut && cap >= 3) {
		o = o > cap - 3 ? cap - 3 : o;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
