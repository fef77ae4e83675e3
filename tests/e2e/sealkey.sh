#!/bin/sh
# sealkey.sh - end to end: the sealing key. With a token sealed, the daemon
# and the CLI refuse to start when seal.key is missing or another key (the
# error names the file), no agent is marked "re-enroll" meanwhile, and the
# right key put back restores the agent without a new enrollment.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-sealkey.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
trap 'daemon_stop; rm -rf "$T"' EXIT
trap 'daemon_stop; rm -rf "$T"; trap - EXIT; exit 130' INT TERM
SUITE=sealkey
. "$TOP/tests/lib/check.sh"
KEY=$T/state/seal.key

# start_refused: the daemon exits at start, naming the key file
start_refused() {
	: > "$T/start.err"
	"$DAEMON" -c "$MILTER_CONF" -f 2> "$T/start.err" &
	_pid=$!
	_i=0
	while kill -0 "$_pid" 2>/dev/null && [ $_i -lt 50 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$_pid" 2>/dev/null; then
		kill "$_pid"
		wait "$_pid" 2>/dev/null
		echo "    halo-milter started" >&2
		return 1
	fi
	wait "$_pid"
	_rc=$?
	[ "$_rc" -ne 0 ] && grep -q "$KEY" "$T/start.err" ||
	    { cat "$T/start.err" >&2; return 1; }
}
agent_state() { ctl agents | awk '$2 == "alice@msp.example" { print $3 }'; }

DAEMON_EXTRA_CONF="workers = 0"
daemon_start || exit 1
echo "rt-alice-0001" | ctl token import alice@msp.example acme > /dev/null
check "a token is imported (and sealed)" [ $? -eq 0 ]
daemon_stop
cp -p "$KEY" "$T/seal.key.backup"

# the key file lost
rm -f "$KEY"
check "missing seal.key: the daemon refuses to start, naming the file" start_refused
check "missing seal.key: no new key was made" [ ! -e "$KEY" ]
check "missing seal.key: token import refuses too" \
    sh -c 'echo rt-x | "$1" -c "$2" token import bob@msp.example acme 2>&1 | grep -q "$3"' \
    - "$CTL" "$MILTER_CONF" "$KEY"

# another key in its place
head -c 32 /dev/urandom > "$KEY"
chmod 600 "$KEY"
check "another seal.key: the daemon refuses to start, naming the file" start_refused
grep -q "is not the key" "$T/start.err"
check "another seal.key: the error says the key is not the tokens' key" [ $? -eq 0 ]
check "another seal.key: keys rotate refuses it" \
    sh -c '! "$1" -c "$2" keys rotate > /dev/null 2>&1' - "$CTL" "$MILTER_CONF"
check "another seal.key: the agent is not marked re-enroll" \
    sh -c '! "$1" -c "$2" agents | grep -q "re-enroll"' - "$CTL" "$MILTER_CONF"

# the right key back
cp -p "$T/seal.key.backup" "$KEY"
daemon_start
check "the right seal.key back: the daemon starts" [ $? -eq 0 ]
daemon_stop
check "the right seal.key back: the agent is still enrolled" \
    sh -c '"$1" -c "$2" agents | grep "alice@msp.example" | grep -qv "re-enroll"' \
    - "$CTL" "$MILTER_CONF"
check "the right seal.key back: keys rotate works" \
    sh -c '"$1" -c "$2" keys rotate > /dev/null' - "$CTL" "$MILTER_CONF"
daemon_start
check "after the rotation the daemon starts with the new key" [ $? -eq 0 ]
daemon_stop
check "no sanitizer report" sh -c '! grep -q "Sanitizer\|runtime error" "$1"' - "$T/daemon.log"

echo "sealkey: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
