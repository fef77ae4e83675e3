#!/bin/sh
# run.sh - the headless-Chromium suites: each tests/browser/*.sh (but this
# one) sets up what it needs (simulator, daemon) and runs its node script,
# printing "NAME: N passed, M failed". Exit 1 when any suite failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
rc=0
for s in "$HERE"/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	BUILD=${BUILD:-build} sh "$s" || rc=1
done
exit $rc
