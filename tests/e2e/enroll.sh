#!/bin/sh
# enroll.sh - end to end: an agent enrolls through halo-milter's web server
# against the Halo simulator (tests/halosim), and the failures that must
# store nothing (wrong agent, consent denied, forged state, missing cookie,
# used or expired codes, oversized posts, brute force) do. No Postfix: a
# miltertest script queues one message for the agent's mailbox first; it
# waits for the token and is logged once the agent has enrolled.
# The browser is tests/e2e/enroll.py (Python standard library).
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-enroll.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
. "$HERE/sim.sh"
trap 'daemon_stop; sim_stop' EXIT
trap 'daemon_stop; sim_stop; trap - EXIT; exit 130' INT TERM
SUITE=enroll
. "$TOP/tests/lib/check.sh"

sim_start || exit 1
web_ports
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
{ sim_conf "web_listen=127.0.0.1:$WEB_PORT" "public_url=$WEB" workers=1; cat <<EOC
cf_message_id = none
route = support@msp.example intake agent=alice@msp.example
EOC
} > "$MILTER_CONF"
daemon_start || exit 1
_i=0
while ! _h_listening "$WEB_PORT" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
check "web server listens on web_listen" _h_listening "$WEB_PORT"

# one message for alice's mailbox, before she has a token
MSGID="<enroll-e2e-1@acme.example>"
mt_mail "$MSGID" "Scanner offline" "The scanner on floor 3 is offline."
check "a message for alice's mailbox is queued" [ $? -eq 0 ]
check "without a token its job waits" wait_job waiting "$MSGID"

python3 "$HERE/enroll.py" --web "$WEB" --sim "$SIM" \
    --auth "http://127.0.0.1:$SIM_AUTH" --ctl "$CTL" --conf "$MILTER_CONF" \
    --db "$MILTER_STATE/halo-milter.db" --fixture "$TOP/tests/halosim/fixture.json" \
    --secrets "$T/secrets.txt" --msgid "$MSGID" > "$T/py.out" 2>&1
py_rc=$?
grep -E "^(ok  |FAIL) enroll: |^    " "$T/py.out"
count_from "$T/py.out"
if [ $py_rc -ne 0 ] && ! grep -q "^FAIL enroll: " "$T/py.out"; then
	not_ok "enroll.py ended early (exit $py_rc)"
	tail -20 "$T/py.out" | sed 's/^/    /'
fi

# nothing secret in the daemon's log
daemon_stop
nsecrets=$(grep -c . "$T/secrets.txt" 2>/dev/null || echo 0)
check "the browser saw codes, states and Halo codes to look for ($nsecrets)" \
    [ "$nsecrets" -ge 10 ]
check "no code, state or Halo code in the daemon log" \
    sh -c '! grep -F -f "$1" "$2"' - "$T/secrets.txt" "$T/daemon.log"
check "no token or verifier in the daemon log" \
    sh -c '! grep -Eqi "bearer|refresh_token|access_token|code_verifier|verifier=" "$1"' - "$T/daemon.log"
check "no sanitizer report" sh -c '! grep -q "Sanitizer\|runtime error" "$1"' - "$T/daemon.log"

echo "enroll: $pass passed, $fail failed"
if [ $fail -ne 0 ]; then
	echo "    (kept $T; daemon log tail:)"
	tail -30 "$T/daemon.log" | sed 's/^/    /'
	trap - EXIT
	daemon_stop; sim_stop
	exit 1
fi
sim_stop; trap - EXIT
rm -rf "$T"
