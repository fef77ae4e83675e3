#!/bin/sh
# run.sh - every message under ../shared/corpus (when present) and the
# project's own samples through the intake path, under a timeout. Under
# SANITIZE builds, ASan/UBSan/LSan reports fail the run.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CORPUS=${CORPUS:-$TOP/../shared/corpus}
files=$(mktemp)
trap 'rm -f "$files"' EXIT
find "$TOP/tests/e2e/mail" -type f -name '*.eml' 2>/dev/null >> "$files"
if [ -d "$CORPUS" ]; then
	find "$CORPUS" -type f \( -name '*.eml' -o -name '*.txt' -o -name '*.msg' \) \
	    ! -name 'LICENSE*' ! -name 'README*' ! -name 'COPYING' | sort >> "$files"
else
	echo "corpus: $CORPUS not present; sweeping the project's own samples only"
fi
[ -s "$files" ] || { echo "corpus: no files"; exit 1; }
# shellcheck disable=SC2046
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} timeout 300 \
    "$TOP/$BUILD/corpus-intake" $(cat "$files") > "$TOP/$BUILD/corpus.log" 2>&1
rc=$?
grep -E "^corpus:|: (no X-Halo|intake asked)|ERROR|runtime error" "$TOP/$BUILD/corpus.log"
[ $rc -eq 124 ] && echo "corpus: timed out (hang?)"
exit $rc
