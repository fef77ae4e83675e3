#!/bin/sh
# run.sh - run every tests/milter/*.lua with miltertest against a fresh
# halo-milter (own state directory and socket per script).
#
# A script may extend the configuration with lines starting "-- conf: "
# (global keys) or "-- tenant: " (keys of tenant acme) at its top.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
DAEMON="$TOP/$BUILD/halo-milter"
CTL="$TOP/$BUILD/halo-milterctl"
pass=0
fail=0
failed=""

run_one() {
	script=$1
	name=$(basename "$script" .lua)
	T=$(mktemp -d "${TMPDIR:-/tmp}/halo-mt.XXXXXX")
	{
		echo "socket = unix:$T/milter.sock"
		echo "state_dir = $T/state"
		echo "workers = 0     # the protocol tests look at intake alone"
		grep -q '^-- conf: web_listen' "$script" ||
			echo "web_listen = off"
		grep -q '^-- conf: max_message_size' "$script" ||
			echo "max_message_size = 60M"
		sed -n 's/^-- conf: //p' "$script"
		echo "[tenant acme]"
		echo "halo_url = http://127.0.0.1:9"
		echo "client_id = milter-test"
		echo "ticket_type_id = 1"
		echo "halo_senders = notify@acme.halopsa.example"
		echo "route = support@acme.example intake agent=dispatch@msp.example"
		echo "route = sales@acme.example thread-only agent=recipient"
		echo "route = *@acme.example thread-only agent=recipient"
		echo "route = noreply@acme.example off"
		sed -n 's/^-- tenant: //p' "$script"
		echo "[tenant globex]"
		echo "halo_url = http://127.0.0.1:9"
		echo "client_id = milter-test"
		echo "ticket_type_id = 2"
		echo "route = help@globex.example intake agent=globex-agent@msp.example"
	} > "$T/test.conf"
	# a small ASan quarantine, so freed body chunks do not count as growth
	ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=4:detect_leaks=1} \
	    "$DAEMON" -c "$T/test.conf" -f 2> "$T/daemon.log" &
	pid=$!
	i=0
	while [ ! -S "$T/milter.sock" ] && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	if MILTER_SOCK="unix:$T/milter.sock" MILTER_PID=$pid \
	    MILTER_CONF="$T/test.conf" MILTER_STATE="$T/state" CTL="$CTL" \
	    MT_DIR="$HERE" miltertest -s "$script" > "$T/out.log" 2>&1; then
		ok=1
	else
		ok=0
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# a sanitizer report or a crash in the daemon fails the script too
	if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$T/daemon.log"; then
		ok=0
	fi
	if [ $ok -eq 1 ]; then
		pass=$((pass + 1))
		echo "ok   milter/$name"
		rm -rf "$T"
	else
		fail=$((fail + 1))
		failed="$failed $name"
		echo "FAIL milter/$name (kept $T)"
		sed 's/^/    /' "$T/out.log" | tail -20
		[ -s "$T/out.log" ] || echo "    (miltertest printed nothing; exit status non-zero)"
		echo "    -- daemon log:"
		sed 's/^/    /' "$T/daemon.log" | tail -20
	fi
}

for s in "$HERE"/t_*.lua; do
	run_one "$s"
done
echo "milter: $pass passed, $fail failed"
[ $fail -eq 0 ]
