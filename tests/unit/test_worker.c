/*
 * test_worker.c - the worker's retry schedule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "worker.h"

/* Exponential from the base, doubled per attempt, capped at an hour;
 * jitter 0 / 128 / 255 gives 80% / ~100% / 120%. */
static void
test_backoff_schedule(void **state)
{
	static const struct {
		unsigned base;
		int attempts;
		unsigned char jitter;
		long want;
	} rows[] = {
		{ 15, 1, 0, 12 },  { 15, 1, 255, 18 }, { 15, 1, 128, 15 },
		{ 15, 2, 0, 24 },  { 15, 3, 0, 48 },   { 15, 4, 255, 144 },
		{ 15, 8, 0, 1536 }, { 15, 9, 0, 2880 }, { 15, 10, 0, 2880 },
		{ 15, 10, 255, 4320 }, { 15, 1000, 0, 2880 },
		{ 1, 1, 0, 1 },    { 1, 2, 0, 1 },     { 1, 3, 255, 4 },
		{ 3600, 1, 0, 2880 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		long got = worker_retry_delay(rows[i].base, rows[i].attempts, -1,
		    rows[i].jitter);
		if (got != rows[i].want)
			fail_msg("row %zu: base %u attempt %d jitter %u: got %ld,"
			    " want %ld", i, rows[i].base, rows[i].attempts,
			    rows[i].jitter, got, rows[i].want);
	}
}

/* Halo's Retry-After wins over the exponential schedule, in either
 * direction, capped at an hour; jitter adds at most one second. */
static void
test_retry_after(void **state)
{
	(void)state;
	assert_int_equal(worker_retry_delay(15, 8, 3, 0), 3);
	assert_int_equal(worker_retry_delay(15, 8, 3, 1), 4);
	assert_int_equal(worker_retry_delay(15, 1, 120, 0), 120);
	assert_int_equal(worker_retry_delay(15, 1, 0, 0), 0);
	assert_int_equal(worker_retry_delay(15, 1, 999999, 0), 3600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_retry_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
