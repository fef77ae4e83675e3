#!/bin/sh
# tests/man/run.sh - the man pages render without warnings, halo-milter.conf(5)
# documents every key of common/conf.c's key table (a key added without docs
# fails here), and halo-milterctl(8) names every command its usage lists.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "man: FAIL: $*"; }

render() {	# render PAGE to stdout, warnings to $BUILD/man-warn.txt
	LC_ALL=C.UTF-8 MANWIDTH=250 MAN_KEEP_FORMATTING= man --warnings -l "$1" \
	    2>"$BUILD/man-warn.txt" | col -b
}

for page in man/halo-milter.8 man/halo-milterctl.8 man/halo-milter.conf.5; do
	if [ ! -s "$page" ]; then bad "$page missing"; continue; fi
	out=$(render "$page")
	if [ -z "$out" ]; then bad "$page renders empty"; continue; fi
	if [ -s "$BUILD/man-warn.txt" ]; then
		bad "$page: groff warnings: $(head -3 "$BUILD/man-warn.txt")"
	else
		ok
	fi
done

# every key in the table: [KEY_X] = { "name", SCOPE_..., ... }
keys=$(sed -n 's/^[[:space:]]*\[KEY_[A-Z_]*\][[:space:]]*=[[:space:]]*{[[:space:]]*"\([a-z_]*\)".*/\1/p' common/conf.c)
nkeys=$(echo "$keys" | grep -c .)
if [ "$nkeys" -lt 30 ]; then
	bad "found only $nkeys keys in common/conf.c: the table's shape changed?"
fi
conf5=$(render man/halo-milter.conf.5)
for k in $keys; do
	# documented as a tag "KEY = ...", alone or in a comma list of keys
	if echo "$conf5" | grep -Eq "(^|[ ,])$k = "; then
		ok
	else
		bad "halo-milter.conf(5) does not document key '$k'"
	fi
done

# every command halo-milterctl's usage lists is in halo-milterctl(8)
ctl8=$(render man/halo-milterctl.8)
if [ -x "$BUILD/halo-milterctl" ]; then
	cmds=$("$BUILD/halo-milterctl" --help 2>/dev/null |
	    sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | sort -u)
	[ -n "$cmds" ] || bad "halo-milterctl --help lists no commands"
	for c in $cmds; do
		if echo "$ctl8" | grep -Eq "^ +$c( |$)"; then ok
		else bad "halo-milterctl(8) does not describe command '$c'"; fi
	done
fi
echo "man: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
