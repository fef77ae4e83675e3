/*
 * metrics.h - the daemon's in-process histograms for /metrics.
 *
 * Observing is a few relaxed atomic additions (no lock): end of message
 * must stay fast. Bucket counters are kept per bucket and made cumulative
 * when read, and a snapshot's count is the sum of its buckets, so what
 * /metrics shows is always a consistent histogram even while threads
 * observe. The sum is kept in microseconds.
 */
#ifndef HALO_METRICS_H
#define HALO_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The histograms. */
enum metrics_hist {
	METRICS_EOM = 0,            /* end-of-message handling, seconds */
	METRICS_MAIL_TO_HALO,       /* job created -> logged in Halo, seconds */
	METRICS_HIST_COUNT
};

#define METRICS_BUCKETS_MAX 16  /* upper bounds per histogram, +Inf aside */

/* A histogram as read: cumulative counts (CUM[N] is +Inf = COUNT). */
struct metrics_snapshot {
	const char *name;           /* "halo_milter_eom_seconds" */
	const char *help;
	size_t n;                   /* finite bounds in LE */
	const double *le;
	uint64_t cum[METRICS_BUCKETS_MAX + 1];
	uint64_t count;
	double sum;                 /* seconds */
};

/* Count one observation of SECONDS (negative counts as 0) in H. */
void metrics_observe(enum metrics_hist h, double seconds);

/* Read H. */
void metrics_read(enum metrics_hist h, struct metrics_snapshot *out);

/* Zero every histogram (tests). */
void metrics_reset(void);

#endif
