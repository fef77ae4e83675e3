# tests/lib/check.sh - the shell test scripts' one set of check helpers.
# Set SUITE before sourcing it; every line a check prints starts with
# "ok   SUITE: " or "FAIL SUITE: ", and the script ends with summary.
#
#   ok DESCRIPTION            count a pass
#   not_ok DESCRIPTION        count a failure
#   check DESCRIPTION CMD...  pass when CMD succeeds
#   eq GOT WANT               succeed when equal, else say both on stderr
#   count_from FILE           add the ok/FAIL lines a helper program (Python,
#                             Node) wrote for SUITE into FILE
#   summary                   "SUITE: N passed, M failed"; false on a failure
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $SUITE: $1"; }
not_ok() { fail=$((fail + 1)); echo "FAIL $SUITE: $1"; }
check() { _c_d=$1; shift; if "$@"; then ok "$_c_d"; else not_ok "$_c_d"; fi; }
eq() { [ "$1" = "$2" ] || { echo "    got '$1', want '$2'" >&2; return 1; }; }
count_from() {
	pass=$((pass + $(grep -c "^ok   $SUITE: " "$1")))
	fail=$((fail + $(grep -c "^FAIL $SUITE: " "$1")))
}
summary() { echo "$SUITE: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
