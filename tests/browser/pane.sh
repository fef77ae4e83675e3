#!/bin/sh
# pane.sh - the Outlook pane in headless Chromium, against a real daemon:
# the Halo simulator, halo-milter (milter + worker + web, web_root = the
# repo's web/), messages fed through miltertest, then tests/browser/
# pane.test.js drives the pane with an Office.js stand-in (office-stub.js)
# and tests the status API (tokens, tenants, unknown messages, rate limit,
# CORS) and the manifests (schema, XML, served = CLI, icons); then the
# agent's part: sign-in through the dialog at the simulator's login form,
# self-enrolment, pickers, open tickets, assign, status, append (internal
# note, time entry), create (type), unstamped mail, errors and re-sign-in,
# each checked against what the simulator received.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
E2E=$TOP/tests/e2e
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-pane.XXXXXX")
. "$E2E/lib.sh"
. "$E2E/daemon.sh"
. "$E2E/sim.sh"
trap 'daemon_stop; sim_stop' EXIT
trap 'daemon_stop; sim_stop; trap - EXIT; exit 130' INT TERM
say_fail() { echo "FAIL pane: $1"; echo "pane: 0 passed, 1 failed"; exit 1; }

sim_start || say_fail "the Halo simulator did not start"
web_ports
# the simulator must know our redirect URI (its port is chosen per run)
python3 - "$TOP/tests/halosim/fixture.json" "$WEB/enroll/callback" > "$T/reset.json" <<'EOP'
import json, sys
fx = json.load(open(sys.argv[1]))
for c in fx["oauth_clients"]:
    if c["client_id"] == "halo-milter-native":
        c["redirect_uris"].append(sys.argv[2])
print(json.dumps({"fixture": fx}))
EOP
sim POST /_sim/reset "$(cat "$T/reset.json")" > /dev/null ||
	say_fail "the simulator did not take our redirect URI"
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
{ sim_conf "web_listen=127.0.0.1:$WEB_PORT" "public_url=$WEB" "web_root=$TOP/web"; cat <<EOC
cf_message_id = none
route = support@msp.example intake agent=alice@msp.example
route = sales@msp.example intake agent=bob@msp.example

[tenant selfserve]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 1
cf_message_id = none
self_enroll = yes

[tenant broken]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 99
cf_message_id = none
route = broken@msp.example intake agent=alice@msp.example
EOC
} > "$MILTER_CONF"
daemon_start || say_fail "halo-milter did not start"
_i=0
while ! _h_listening "$WEB_PORT" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
token_for alice@msp.example | ctl token import alice@msp.example broken > /dev/null
# bob enrolls later: his mail waits, and the pane must follow it to the end
cat > "$T/import-bob.sh" <<EOI
#!/bin/sh
TOP=$TOP BUILD=$BUILD T=$T
. "$E2E/lib.sh"; . "$E2E/daemon.sh"; . "$E2E/sim.sh"
SIM=$SIM MILTER_CONF=$MILTER_CONF
token_for bob@msp.example | ctl token import bob@msp.example sim > /dev/null
EOI
# halo-milterctl for the test (revoke, agents)
cat > "$T/ctl.sh" <<EOI
#!/bin/sh
TOP=$TOP BUILD=$BUILD T=$T
. "$E2E/lib.sh"; . "$E2E/daemon.sh"; . "$E2E/sim.sh"
SIM=$SIM MILTER_CONF=$MILTER_CONF
ctl "\$@"
EOI

# the messages, through the milter protocol; their stamps go to stamps.txt
cat > "$T/mail.lua" <<'EOL'
dofile(os.getenv("MT_DIR") .. "/common.lua")
local out = io.open(os.getenv("STAMPS"), "w")
local conn = H.connect()
local function send(name, from, rcpt, subject, msgid, extra)
	local hdrs = { { "From", from }, { "To", rcpt }, { "Subject", subject },
	    { "Date", "Tue, 24 Nov 2026 10:00:00 +0000" }, { "Message-ID", msgid } }
	for _, h in ipairs(extra or {}) do table.insert(hdrs, h) end
	local r = H.send(conn, { from = "<" .. string.match(from, "[^<]*@[^>]*") .. ">",
	    rcpts = { "<" .. rcpt .. ">" }, headers = hdrs,
	    body = "Hello,\r\nthe laptop will not boot since this morning.\r\n" })
	H.eq(r, SMFIR_CONTINUE, name .. ": eom reply")
	out:write(name, "\t", msgid, "\t", mt.getheader(conn, "X-Halo-Status", 0), "\t",
	    mt.getheader(conn, "X-Halo-Token", 0), "\n")
end
send("created", "Ann Acme <ann@acme.example>", "support@msp.example",
    "Laptop will not boot", "<pane-created@acme.example>")
send("appended", "Jo Smith <jo@acme.example>", "support@msp.example",
    "Re: Laptop will not boot", "<pane-appended@acme.example>",
    { { "In-Reply-To", "<pane-created@acme.example>" },
      { "References", "<pane-created@acme.example>" } })
send("skipped", "Ann Acme <ann@acme.example>", "support@msp.example",
    "Automatic reply: Laptop", "<pane-skipped@acme.example>",
    { { "Auto-Submitted", "auto-replied" } })
send("stranger", "Stranger <who@nowhere.example>", "support@msp.example",
    "Buy our widgets", "<pane-stranger@nowhere.example>")
send("failed", "Ann Acme <ann@acme.example>", "broken@msp.example",
    "Printer on fire", "<pane-failed@acme.example>")
send("queued", "Ann Acme <ann@acme.example>", "sales@msp.example",
    "Quote for ten laptops", "<pane-queued@acme.example>")
-- a stranger pre-empts a Message-ID; the genuine mail is its own job
-- (issue 11), and the pane must show and act on that one
send("preempt", "Eve <eve@evil.example>", "support@msp.example",
    "Invoice", "<pane-dup@shared.example>")
send("genuine", "Sam <sam@shared.example>", "support@msp.example",
    "Invoice", "<pane-dup@shared.example>")
out:close()
mt.disconnect(conn)
EOL
STAMPS=$T/stamps.txt MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1" \
    MT_DIR="$TOP/tests/milter" miltertest -s "$T/mail.lua" > "$T/miltertest.log" 2>&1 ||
	{ cat "$T/miltertest.log"; say_fail "miltertest could not feed the messages"; }

# until the worker has decided each (bob's stays waiting)
_i=0
while [ $_i -lt 300 ]; do
	n=$(ctl queue | awk '$2 == "done" || $2 == "skipped" || $2 == "failed" || $2 == "waiting"' | wc -l)
	[ "$n" -ge 8 ] && break
	sleep 0.1
	_i=$((_i + 1))
done
ctl queue > "$T/queue.txt"

# the manifests as the CLI writes them; the XML must be well-formed
ctl manifest --format xml > "$T/manifest.xml" || say_fail "manifest --format xml"
ctl manifest --format json > "$T/manifest.json" || say_fail "manifest --format json"
xml_ok=no
if command -v xmllint > /dev/null 2>&1; then
	xmllint --noout "$T/manifest.xml" 2> "$T/xmllint.log" && xml_ok=yes
else
	python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' \
	    "$T/manifest.xml" 2> "$T/xmllint.log" && xml_ok=yes
fi

mkdir -p "$TOP/$BUILD/artifacts/pane"
WEB=$WEB STAMPS=$T/stamps.txt STATUS_KEY=$MILTER_STATE/status.key \
    QUEUE=$T/queue.txt IMPORT_BOB="sh $T/import-bob.sh" XML_OK=$xml_ok \
    SIM=$SIM CTL="sh $T/ctl.sh" DAEMON_LOG=$T/daemon.log \
    MANIFEST_XML=$T/manifest.xml MANIFEST_JSON=$T/manifest.json \
    ARTIFACTS=$TOP/$BUILD/artifacts/pane \
    DOCS=$([ "${UPDATE_DOCS:-}" = 1 ] && echo "$TOP/docs") \
    node "$HERE/pane.test.js" 2>&1 | tee "$T/node.out"
rc=0
grep -q "^pane: [0-9]* passed, 0 failed$" "$T/node.out" || rc=1
if grep -q "Sanitizer\|runtime error" "$T/daemon.log"; then
	echo "FAIL pane: sanitizer report in the daemon log"
	grep -A5 "Sanitizer\|runtime error" "$T/daemon.log" | head -20 | sed 's/^/    /'
	rc=1
fi
if [ $rc -ne 0 ]; then
	echo "    (kept $T; queue:)"
	sed 's/^/    /' "$T/queue.txt"
	tail -20 "$T/daemon.log" | sed 's/^/    /'
	trap - EXIT
	daemon_stop; sim_stop
	exit 1
fi
daemon_stop; sim_stop; trap - EXIT
rm -rf "$T"
