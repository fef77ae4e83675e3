#!/bin/sh
# enroll.sh - enrollment and the admin page in a real browser (Debian
# chromium via playwright-core, tests/browser/enroll.test.js) against the
# Halo simulator's login form: the admin signs in, makes a code for alice
# (with its QR code), alice opens the link in her own browser, confirms,
# signs in at "Halo" and lands on the success page; the message that
# waited for her token is then logged. The jobs table (a failed job with a
# hostile subject, sender and reason written into the store here; retry
# through the page, refused without the CSRF token or for a done job) and
# doctor run from the page. Refusals: wrong password, admin POSTs without
# or with a wrong CSRF token, a stale session after sign-out.
# Then a second start with admin_networks excluding 127.0.0.1 (403, no
# form), and the daemon log must hold no password, session id, CSRF token,
# code or token. Harness: tests/e2e/lib.sh, daemon.sh, sim.sh.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
E2E=$TOP/tests/e2e
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-browser-enroll.XXXXXX")
. "$E2E/lib.sh"
. "$E2E/daemon.sh"
. "$E2E/sim.sh"
trap 'daemon_stop; sim_stop' EXIT
trap 'daemon_stop; sim_stop; trap - EXIT; exit 130' INT TERM
SUITE=browser-enroll
. "$TOP/tests/lib/check.sh"
finish() {
	echo "browser-enroll: $pass passed, $fail failed"
	if [ $fail -ne 0 ]; then
		echo "    (kept $T; daemon log tail:)"
		tail -30 "$T/daemon.log" 2>/dev/null | sed 's/^/    /'
		trap - EXIT
		daemon_stop; sim_stop
		exit 1
	fi
	sim_stop; trap - EXIT
	rm -rf "$T"
	exit 0
}

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ] ||
    [ ! -d "$HERE/node_modules/playwright-core" ]; then
	not_ok "chromium and tests/browser/node_modules are installed (make deps)"
	finish
fi

sim_start || { not_ok "the Halo simulator starts"; finish; }
web_ports
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
# write_conf [GLOBAL LINE]: the configuration, with one extra global line
write_conf() {
	cat > "$MILTER_CONF" <<EOC
socket = inet:$MILTER_PORT@127.0.0.1
state_dir = $MILTER_STATE
web_listen = 127.0.0.1:$WEB_PORT
public_url = $WEB
insecure_http = yes
retry_base = 1
workers = 1
${1:-}

[tenant sim]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 1
cf_message_id = none
route = support@msp.example intake agent=alice@msp.example
EOC
}
write_conf
daemon_start || { not_ok "halo-milter starts"; finish; }
_i=0
while ! _h_listening "$WEB_PORT" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
check "web server listens on web_listen" _h_listening "$WEB_PORT"

# before any password: /admin says how to set one and offers nothing else
curl -s -o "$T/nopw.html" -w '%{http_code}' "$WEB/admin" > "$T/nopw.code" 2>/dev/null
check "without an admin password /admin says how to set one (503)" \
    sh -c '[ "$(cat "$1")" = 503 ] && grep -q "halo-milterctl admin-password" "$2" &&
        ! grep -qi "<form" "$2"' - "$T/nopw.code" "$T/nopw.html"

# one message for alice's mailbox, before she has a token
MSGID="<browser-enroll-1@acme.example>"
mt_mail "$MSGID" "Badge reader broken" "The badge reader at the back door is broken."
check "a message for alice's mailbox is queued" [ $? -eq 0 ]
check "without a token its job waits" wait_job waiting "$MSGID"

# a failed job whose subject, sender and reason are markup, and a done one
# (ids far above the daemon's own)
FAILED_ID=900 DONE_ID=901
FAILED_REASON='Halo answered 400: <b>bad</b> request'
HOSTILE_SUBJECT='<script>alert(1)</script> printer & scanner'
HOSTILE_FROM='"<img src=x onerror=alert(2)>"@evil.example'
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
now=$(date +%s)
sqlite3 -cmd '.timeout 5000' "$MILTER_STATE/halo-milter.db" "INSERT INTO jobs
    (id, tenant, message_id, state, reason, queue_id, from_addr, subject,
    created, updated) VALUES
    ($FAILED_ID, 'sim', '<hostile@evil.example>', 'failed', $(q "$FAILED_REASON"),
    'QF1', $(q "$HOSTILE_FROM"), $(q "$HOSTILE_SUBJECT"), $now, $now),
    ($DONE_ID, 'sim', '<done@acme.example>', 'done', NULL, 'QD1',
    'ann@acme.example', 'Finished', $now, $now);"
check "a failed and a done job written into the store" [ $? -eq 0 ]

ARTIFACTS="$TOP/$BUILD/artifacts/browser-enroll"
rm -rf "$ARTIFACTS"
(cd "$HERE" && NODE_PATH="$HERE/node_modules" ARTIFACTS="$ARTIFACTS" \
    WEB="$WEB" SIM="$SIM" CTL="$CTL" CONF="$MILTER_CONF" MSGID="$MSGID" \
    FAILED_ID=$FAILED_ID DONE_ID=$DONE_ID FAILED_REASON="$FAILED_REASON" \
    HOSTILE_SUBJECT="$HOSTILE_SUBJECT" HOSTILE_FROM="$HOSTILE_FROM" \
    FIXTURE="$TOP/tests/halosim/fixture.json" SECRETS="$T/secrets.txt" \
    node enroll.test.js) > "$T/node.out" 2>&1
node_rc=$?
grep -E "^(ok  |FAIL) browser-enroll: |^    " "$T/node.out"
count_from "$T/node.out"
if [ $node_rc -ne 0 ] && ! grep -q "^FAIL browser-enroll: " "$T/node.out"; then
	not_ok "enroll.test.js ended early (exit $node_rc)"
	tail -20 "$T/node.out" | sed 's/^/    /'
fi
check "the retry is in the daemon log with the admin and the job id" \
    grep -q "admin: job $FAILED_ID queued again by the admin signed in from 127.0.0.1" "$T/daemon.log"
check "the doctor run is in the daemon log" \
    grep -q "admin: doctor run for tenant sim by the admin signed in from 127.0.0.1" "$T/daemon.log"
check "screenshots of the admin and success pages saved" \
    test -s "$ARTIFACTS/admin.png" -a -s "$ARTIFACTS/success.png"

# a second start that admits only another network
daemon_stop
write_conf "admin_networks = 192.0.2.0/24, 2001:db8::/32"
daemon_start || not_ok "halo-milter starts again with admin_networks"
_i=0
while ! _h_listening "$WEB_PORT" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
curl -s -o "$T/denied.html" -w '%{http_code}' "$WEB/admin" > "$T/denied.code" 2>/dev/null
check "admin_networks without 127.0.0.1: GET /admin is 403 and shows no form" \
    sh -c '[ "$(cat "$1")" = 403 ] && ! grep -qi "<form\|password" "$2"' - \
    "$T/denied.code" "$T/denied.html"
curl -s -o /dev/null -w '%{http_code}' -d 'password=x' "$WEB/admin/login" \
    > "$T/denied-post.code" 2>/dev/null
check "admin_networks without 127.0.0.1: POST /admin/login is 403" \
    [ "$(cat "$T/denied-post.code")" = 403 ]
curl -s -o /dev/null -w '%{http_code}' "$WEB/enroll" > "$T/enroll.code" 2>/dev/null
check "admin_networks leaves the agents' enrollment page alone" \
    [ "$(cat "$T/enroll.code")" = 200 ]

# nothing secret in the daemon's log
daemon_stop
nsecrets=$(grep -c . "$T/secrets.txt" 2>/dev/null || echo 0)
check "the browser saw a password, session ids, CSRF tokens and codes to look for ($nsecrets)" \
    [ "$nsecrets" -ge 5 ]
check "no password, session id, CSRF token or code in the daemon log" \
    sh -c '! grep -F -f "$1" "$2"' - "$T/secrets.txt" "$T/daemon.log"
check "no token or verifier in the daemon log" \
    sh -c '! grep -Eqi "bearer|refresh_token|access_token|code_verifier|verifier=" "$1"' - "$T/daemon.log"
check "no sanitizer report" sh -c '! grep -q "Sanitizer\|runtime error" "$1"' - "$T/daemon.log"
finish
