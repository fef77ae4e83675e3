#!/bin/sh
# run-unit.sh BIN... - run each cmocka test binary from the repo root and
# print one "unit: N passed, M failed" line (counting test binaries' cases).
set -u
pass=0
fail=0
status=0
for bin in "$@"; do
	out=$(HALO_SRCDIR=. "$bin" 2>&1)
	rc=$?
	# a binary may run several groups (test_store: one per backend)
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{ s += $1 } END { if (NR) print s }')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{ s += $1 } END { if (NR) print s }')
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-0}))
	if [ $rc -ne 0 ]; then
		status=1
		[ -n "$f" ] || fail=$((fail + 1))   # crashed before cmocka's summary
		echo "FAIL unit/$(basename "$bin") (exit $rc)"
		printf '%s\n' "$out" | grep -v "^\[ \(RUN\|       OK\) " | tail -30 | sed 's/^/    /'
	else
		echo "ok   unit/$(basename "$bin"): ${p:-0} tests"
	fi
done
echo "unit: $pass passed, $fail failed"
exit $status
