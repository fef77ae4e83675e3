/*
 * metrics.c - lock-free histograms for /metrics (see metrics.h).
 */
#include "metrics.h"

#include <stdatomic.h>
#include <string.h>

/* A histogram's fixed part and its counters. */
struct metrics_hist_def {
	const char *name, *help;
	size_t n;
	double le[METRICS_BUCKETS_MAX];
	_Atomic uint64_t bucket[METRICS_BUCKETS_MAX + 1];  /* [n]: above all */
	_Atomic uint64_t sum_us;
};

static struct metrics_hist_def metrics_hists[METRICS_HIST_COUNT] = {
	[METRICS_EOM] = {
		"halo_milter_eom_seconds",
		"Time the milter spent at end of message (intake, store,"
		" spool), from the MTA's end-of-message to the answer.",
		11, { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
		    0.25, 0.5, 1 }, { 0 }, 0 },
	[METRICS_MAIL_TO_HALO] = {
		"halo_milter_mail_to_halo_seconds",
		"Time from a mail's arrival (its job was stored) until the"
		" worker logged it in Halo.",
		11, { 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600 }, { 0 },
		0 },
};

/* Count one observation. */
void
metrics_observe(enum metrics_hist h, double seconds)
{
	struct metrics_hist_def *d;
	size_t i;

	if ((unsigned)h >= METRICS_HIST_COUNT)
		return;
	d = &metrics_hists[h];
	if (!(seconds > 0))         /* negative, or NaN */
		seconds = 0;
	for (i = 0; i < d->n && seconds > d->le[i]; i++)
		;
	atomic_fetch_add_explicit(&d->bucket[i], 1, memory_order_relaxed);
	if (seconds > 1e9)          /* keep the microsecond sum in range */
		seconds = 1e9;
	atomic_fetch_add_explicit(&d->sum_us, (uint64_t)(seconds * 1e6 + 0.5),
	    memory_order_relaxed);
}

/* Read a histogram, cumulative. */
void
metrics_read(enum metrics_hist h, struct metrics_snapshot *out)
{
	struct metrics_hist_def *d;
	uint64_t total = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	if ((unsigned)h >= METRICS_HIST_COUNT)
		return;
	d = &metrics_hists[h];
	out->name = d->name;
	out->help = d->help;
	out->n = d->n;
	out->le = d->le;
	for (i = 0; i <= d->n; i++) {
		total += atomic_load_explicit(&d->bucket[i],
		    memory_order_relaxed);
		out->cum[i] = total;
	}
	out->count = total;
	out->sum = (double)atomic_load_explicit(&d->sum_us,
	    memory_order_relaxed) / 1e6;
}

/* Zero every histogram. */
void
metrics_reset(void)
{
	size_t h, i;

	for (h = 0; h < METRICS_HIST_COUNT; h++) {
		for (i = 0; i <= METRICS_BUCKETS_MAX; i++)
			atomic_store(&metrics_hists[h].bucket[i], 0);
		atomic_store(&metrics_hists[h].sum_us, 0);
	}
}
