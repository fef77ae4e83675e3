#!/bin/sh
# run.sh - every message under ../shared/corpus (when present) and the
# project's own samples through the intake path, under a timeout. Under
# SANITIZE builds, ASan/UBSan/LSan reports fail the run. Then the golden
# messages (tests/golden: each against its .ref), the HTML sanitiser's
# golden files (tests/golden/html: each .in against its .ref) and the differential
# check of the extraction against Python's email package (diff.py) over
# the corpus and the golden messages.
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

# golden messages: what the product takes from each shape
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} timeout 120 \
    python3 "$TOP/tests/golden/check.py" "$TOP/$BUILD/mime-json" || rc=1

# the HTML sanitiser's golden files: each .in against its .ref, byte for byte
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} timeout 60 \
    "$TOP/$BUILD/html-golden" "$TOP"/tests/golden/html/*.in || rc=1

# the differential check: mail files only (not the .tnef payloads)
grep -E '\.(eml|txt|msg)$' "$files" | grep -v "/tests/e2e/" > "$files.diff"
find "$TOP/tests/golden" -name '*.eml' | sort >> "$files.diff"
# shellcheck disable=SC2046
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} timeout 300 \
    python3 "$TOP/tests/corpus/diff.py" "$TOP/$BUILD/mime-json" \
    $(cat "$files.diff") || rc=1
rm -f "$files.diff"
exit $rc
