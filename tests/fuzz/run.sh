#!/bin/sh
# run.sh - run every built libFuzzer target for a while ("make fuzz").
#
#   FUZZ_BUILD    directory holding the fuzz_* binaries (default build/fuzz)
#   FUZZ_SECONDS  seconds per target (default 60)
#
# Target fuzz_NAME keeps its corpus in $FUZZ_BUILD/corpus-NAME, seeded from
# tests/fuzz/seeds/NAME/ and, when ../shared/corpus exists, for the headers
# target from the header blocks of its *.eml and *.txt files, for the mime
# target from those files whole and its *.tnef files. Crash
# inputs are written as $FUZZ_BUILD/NAME-crash-*, logs as $FUZZ_BUILD/NAME.log.
# Prints one summary line per target; exits 1 when any target failed.

cd "$(dirname "$0")/../.." || exit 1
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
SHARED_CORPUS=../shared/corpus

# Seed DIR from the header blocks of the shared mail corpus: the block itself
# and the unfolded value of each header a parser in hdr.c reads.
seed_headers_from_mail() {
	dir=$1
	[ -d "$SHARED_CORPUS" ] || return 0
	find "$SHARED_CORPUS" -type f \( -name '*.eml' -o -name '*.txt' \) |
	    sort | awk -v dir="$dir" '
	function flush() {
		if (name != "" && tolower(name) ~ /^(from|to|cc|sender|reply-to|message-id|in-reply-to|references|content-type|subject|thread-index|thread-topic)$/) {
			out = sprintf("%s/mail-%04d-%02d", dir, fileno, ++k)
			printf "%s", value > out
			close(out)
		}
		name = ""
	}
	{
		path = $0
		fileno++
		k = 0
		block = sprintf("%s/mail-%04d-block", dir, fileno)
		name = ""
		first = 1
		while ((getline line < path) > 0) {
			sub(/\r$/, "", line)
			if (first && line ~ /^From /)
				continue            # mbox separator
			if (first && line !~ /^[!-9;-~]+:/)
				break               # not a mail (licence, notes)
			first = 0
			if (line == "")
				break
			printf "%s\r\n", line > block
			if (line ~ /^[ \t]/) {
				value = value "\r\n" line
				continue
			}
			flush()
			if (match(line, /^[!-9;-~]+:/)) {
				name = substr(line, 1, RLENGTH - 1)
				value = substr(line, RLENGTH + 1)
				sub(/^[ \t]+/, "", value)
			}
		}
		flush()
		close(path)
		if (!first)
			close(block)
	}'
}

# Seed DIR with the messages and winmail.dat payloads of the shared corpus.
seed_mail_files() {
	dir=$1
	[ -d "$SHARED_CORPUS" ] || return 0
	find "$SHARED_CORPUS" -type f \( -name '*.eml' -o -name '*.txt' \
	    -o -name '*.tnef' \) ! -name 'LICENSE*' -size -1024k | sort |
	    awk '{ printf "%04d %s\n", NR, $0 }' |
	    while read -r n path; do
		cp "$path" "$dir/shared-$n"
	    done
}

failed=0
found=0
for bin in "$FUZZ_BUILD"/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	found=$((found + 1))
	target=$(basename "$bin")
	name=${target#fuzz_}
	corpus=$FUZZ_BUILD/corpus-$name
	log=$FUZZ_BUILD/$name.log
	mkdir -p "$corpus"
	if [ -d "tests/fuzz/seeds/$name" ]; then
		for s in "tests/fuzz/seeds/$name"/*; do
			[ -f "$s" ] && cp "$s" "$corpus/seed-$(basename "$s")"
		done
	fi
	[ "$name" = headers ] && seed_headers_from_mail "$corpus"
	[ "$name" = mime ] && seed_mail_files "$corpus"
	inputs=$(find "$corpus" -type f | wc -l | tr -d ' ')

	"$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix="$FUZZ_BUILD/$name-" -print_final_stats=1 \
	    "$corpus" >"$log" 2>&1
	rc=$?

	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
	after=$(find "$corpus" -type f | wc -l | tr -d ' ')
	if [ "$rc" -eq 0 ]; then
		echo "fuzz: $target ok: ${runs:-?} runs in ${FUZZ_SECONDS}s," \
		    "cov ${cov:-?}, corpus $inputs -> $after"
	else
		failed=1
		crash=$(ls "$FUZZ_BUILD/$name-"* 2>/dev/null | head -n 1)
		echo "fuzz: $target FAILED (exit $rc) after ${runs:-?} runs;" \
		    "input ${crash:-none}; log $log"
		grep -m 3 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/    /'
	fi
done

if [ "$found" -eq 0 ]; then
	echo "fuzz: no targets in $FUZZ_BUILD" >&2
	exit 1
fi
exit $failed
