#!/bin/sh
# sendmail.sh - end to end through a real Sendmail: swaks -> private
# Sendmail 8.17 (tests/e2e/sendmail-lib.sh) -> halo-milter (milter +
# worker) -> the Halo simulator, delivery to smtp-sink. The same core
# guarantees as the Postfix levels (run.sh, halo.sh): stamping, forged
# headers, duplicates, routing, skipped classes, logged once; plus what
# differs in Sendmail: the macros Milter.macros.* delivers ({i},
# {auth_authen}, {daemon_name}), and F=T / F=R / F= while the daemon is down,
# with a sending Sendmail that keeps the mail queued and retries.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-sm.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/sendmail-lib.sh"
. "$HERE/daemon.sh"
. "$HERE/sim.sh"
SPY_PID=
spy_stop() {
	[ -n "$SPY_PID" ] || return 0
	kill "$SPY_PID" 2>/dev/null
	wait "$SPY_PID" 2>/dev/null
	SPY_PID=
}
cleanup() { spy_stop; daemon_stop; sim_stop; sm_cleanup; }
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM
SUITE=sendmail
. "$TOP/tests/lib/check.sh"

if ! sm_available; then
	not_ok "Sendmail is not unpacked in $SM_ROOT (run make deps)"
	echo "sendmail: $pass passed, $fail failed"
	exit 1
fi
echo "    Sendmail $(sm_version) from $SM_ROOT"

# --- the simulator, the daemon, the macro tap, Sendmail -------------------
sim_start || exit 1
MILTER_PORT=$(pf_free_port)
SPY_PORT=$(pf_free_port)
while [ "$SPY_PORT" = "$MILTER_PORT" ]; do SPY_PORT=$(pf_free_port); done
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
{ sim_conf; cat <<EOC
cf_message_id = CFMilterKey
halo_senders = notify@msp.example
route = support@msp.example intake agent=alice@msp.example
EOC
} > "$MILTER_CONF"

# spy_start: the milter-protocol tap between Sendmail and the daemon; it
# logs the macros Sendmail sends to $T/macros.jsonl.
spy_start() {
	rm -f "$T/spy.ready"
	python3 "$HERE/milter-spy.py" --port "$SPY_PORT" --target "$MILTER_PORT" \
	    --log "$T/macros.jsonl" --ready "$T/spy.ready" 2>> "$T/spy.log" &
	SPY_PID=$!
	_s_i=0
	while [ ! -s "$T/spy.ready" ] && [ $_s_i -lt 100 ]; do sleep 0.1; _s_i=$((_s_i + 1)); done
	[ -s "$T/spy.ready" ] || { echo "milter-spy did not start" >&2; return 1; }
}
# macro STEP NAME [QID]: the value Sendmail sent for macro NAME at STEP
# (C connect, M MAIL FROM, R RCPT, E end of message) in the connection
# whose MAIL FROM step carried queue ID QID (default: the last one);
# "<none>" when not sent.
macro() {
	python3 - "$T/macros.jsonl" "$1" "$2" "${3:-}" <<'EOP'
import json, sys
path, step, name, qid = sys.argv[1:5]
rows = [json.loads(l) for l in open(path)]
if qid:
    conns = [r["conn"] for r in rows if r["step"] == "M" and r["macros"].get("i") == qid]
else:
    conns = [r["conn"] for r in rows if r["step"] == "M"]
conn = conns[-1] if conns else -1
vals = [r["macros"][name] for r in rows if r["conn"] == conn and r["step"] == step
        and name in r["macros"]]
print(vals[-1] if vals else "<none>")
EOP
}
# last_qid: the queue ID Sendmail gave the last message swaks sent.
last_qid() {
	sed -n 's/^<-  250 2\.0\.0 \([A-Za-z0-9]*\) Message accepted.*/\1/p' "$SWAKS_LAST" | tail -1
}
job_count() { ctl queue | grep -c '^[0-9]'; }
in_halo() { simq "ids.count('$1')"; }
msg() {      # msg FILE FROM TO SUBJECT [MSGID|-] [extra header lines...]
	_m_f=$1 _m_from=$2 _m_to=$3 _m_subj=$4 _m_id=${5:--}
	shift 4; [ $# -gt 0 ] && shift
	{
		echo "From: $_m_from"; echo "To: $_m_to"; echo "Subject: $_m_subj"
		echo "Date: Tue, 24 Nov 2026 10:00:00 +0000"
		[ "$_m_id" = - ] || echo "Message-ID: $_m_id"
		for h in "$@"; do echo "$h"; done
		echo "MIME-Version: 1.0"; echo "Content-Type: text/plain; charset=utf-8"; echo
		echo "Body of: $_m_subj"
	} > "$_m_f"
}

sink_start "$T/sink" || exit 1
daemon_start || exit 1
spy_start || exit 1
sm_start "inet:$SPY_PORT@127.0.0.1" T || exit 1
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
delivered=0

# --- 1. stamping, Message-ID, forged headers, duplicates, routing, skips --
msg "$T/new.eml" "Ann <ann@acme.example>" support@msp.example "Laptop will not boot" "<sm-n1@acme.example>"
sm_send "$T/new.eml" ann@acme.example support@msp.example
check "new mail accepted by Sendmail" eq "$?" 0
qid_new=$(last_qid)
msg "$T/noid.eml" "Ann <ann@acme.example>" support@msp.example "Monitor flickers" -
sm_send "$T/noid.eml" ann@acme.example support@msp.example
msg "$T/forged.eml" "Ann <ann@acme.example>" support@msp.example "Forged status" "<sm-f1@acme.example>" \
    "X-Halo-Status: queued; tenant=sim; job=999" \
    "X-Halo-Conversation-Id: 00000000000000000000000000000000" "X-Halo-Token: forged; tenant=sim"
sm_send "$T/forged.eml" ann@acme.example support@msp.example
sm_send "$T/new.eml" ann@acme.example support@msp.example          # a resend
msg "$T/unrouted.eml" "Ann <ann@acme.example>" someone@elsewhere.example "Lunch" "<sm-u1@acme.example>"
sm_send "$T/unrouted.eml" ann@acme.example someone@elsewhere.example
msg "$T/oof.eml" "Ann <ann@acme.example>" support@msp.example "Out of office" "<sm-oof1@acme.example>" \
    "Auto-Submitted: auto-replied"
sm_send "$T/oof.eml" ann@acme.example support@msp.example
delivered=$((delivered + 6))
check "all 6 messages delivered through Sendmail" pf_wait_delivered "$T/sink" $delivered 60

# the first copy, not the resend: Sendmail's Received line names its queue ID
f=$(grep -l "with ESMTP id $qid_new" "$SINK_DIR"/* | head -1)
conv=$(header_of "$f" X-Halo-Conversation-Id)
check "new mail stamped with a 32-hex conversation id" \
    sh -c "printf '%s' '$conv' | grep -Eq '^[0-9a-f]{32}$'"
check "new mail queued as job 1" eq "$(header_of "$f" X-Halo-Status)" "queued; tenant=sim; job=1"
check "one X-Halo-Token per tenant" eq "$(headers_count "$f" X-Halo-Token)" 1
f=$(grep -l "Body of: Monitor flickers" "$SINK_DIR"/* | head -1)
check "Message-ID added exactly once" eq "$(headers_count "$f" Message-ID)" 1
gen=$(header_of "$f" Message-ID)
check "the job carries the added Message-ID" eq "$(ctl queue | awk -v id="$gen" '$NF == id' | wc -l)" 1
f=$(delivered_with "<sm-f1@acme.example>")
check "forged X-Halo-Status replaced by ours" \
    eq "$(headers_count "$f" X-Halo-Status) $(header_of "$f" X-Halo-Status)" "1 queued; tenant=sim; job=3"
check "forged conversation id and token gone" \
    sh -c "! grep -q '00000000000000000000000000000000\|X-Halo-Token: forged' '$f'"
f=$(grep -l "skipped; reason=duplicate" "$SINK_DIR"/* | head -1)
check "resend marked duplicate of job 1" \
    eq "$(header_of "$f" X-Halo-Status)" "skipped; reason=duplicate; tenant=sim; job=1"
f=$(delivered_with "<sm-u1@acme.example>")
check "unrouted mail untouched" \
    eq "$(headers_count "$f" X-Halo-Status)$(headers_count "$f" X-Halo-Conversation-Id)$(headers_count "$f" X-Halo-Token)" "000"
check "no job for unrouted mail" eq "$(ctl queue | grep -c 'sm-u1@')" 0
f=$(delivered_with "<sm-oof1@acme.example>")
check "auto-reply skipped" eq "$(header_of "$f" X-Halo-Status)" "skipped; reason=auto-reply; tenant=sim; job=4"
check "4 jobs: new, no Message-ID, forged, auto-reply" eq "$(job_count)" 4
wait_jobs 4
check "new mail logged in Halo exactly once" eq "$(in_halo "<sm-n1@acme.example>")" 1
check "mail without Message-ID logged once under the added ID" eq "$(in_halo "$gen")" 1
check "forged-header mail logged once" eq "$(in_halo "<sm-f1@acme.example>")" 1
check "auto-reply not logged" eq "$(in_halo "<sm-oof1@acme.example>")" 0
check "unrouted mail not logged" eq "$(in_halo "<sm-u1@acme.example>")" 0

# --- 2. the macros Sendmail delivers --------------------------------------
check "{i} (Sendmail's queue ID) sent at MAIL FROM" eq "$(macro M i "$qid_new")" "$qid_new"
check "the daemon's log line carries Sendmail's queue ID" \
    grep -q "$qid_new: msgid=<sm-n1@acme.example> tenant=sim job=1 status=queued" "$T/daemon.log"
check "{daemon_name} sent at connect" eq "$(macro C '{daemon_name}' "$qid_new")" "$SM_DAEMON_NAME"
check "no {auth_authen} for an unauthenticated session" eq "$(macro M '{auth_authen}' "$qid_new")" "<none>"
msg "$T/auth.eml" "Alice Agent <alice@msp.example>" support@msp.example "Authenticated" "<sm-a1@msp.example>"
sm_send_auth "$T/auth.eml" alice@msp.example support@msp.example
check "AUTH PLAIN accepted by the private Sendmail" grep -q '^<-  235 ' "$SWAKS_LAST"
qid_auth=$(last_qid)
delivered=$((delivered + 1))
check "authenticated mail delivered" pf_wait_delivered "$T/sink" $delivered 60
check "{auth_authen} sent at MAIL FROM after AUTH" eq "$(macro M '{auth_authen}' "$qid_auth")" "$SM_AUTH_USER"
check "{auth_type} sent at MAIL FROM after AUTH" eq "$(macro M '{auth_type}' "$qid_auth")" PLAIN
check "{i} sent for the authenticated session too" eq "$(macro M i "$qid_auth")" "$qid_auth"

# a site that narrows Milter.macros.envfrom and leaves out i and
# {auth_authen}: mail still flows and is stamped, but the daemon logs
# NOQUEUE instead of the queue ID and cannot see who authenticated
spy_stop; : > "$T/macros.jsonl"; spy_start || exit 1
SM_EXTRA_MC="define(\`confMILTER_MACROS_ENVFROM', \`{mail_addr}')dnl"
sm_start "inet:$SPY_PORT@127.0.0.1" T || exit 1
SM_EXTRA_MC=
msg "$T/nomacro.eml" "Alice Agent <alice@msp.example>" support@msp.example "No macros" "<sm-m1@msp.example>"
sm_send_auth "$T/nomacro.eml" alice@msp.example support@msp.example
delivered=$((delivered + 1))
check "narrowed macros: mail still delivered" pf_wait_delivered "$T/sink" $delivered 60
f=$(delivered_with "<sm-m1@msp.example>")
check "narrowed macros: mail still stamped" \
    sh -c "grep -q '^X-Halo-Status: queued; tenant=sim' '$f'"
check "narrowed macros: no {i}" eq "$(macro M i)" "<none>"
check "narrowed macros: no {auth_authen} although the session authenticated" \
    eq "$(macro M '{auth_authen}')" "<none>"
check "narrowed macros: the daemon logs NOQUEUE" \
    grep -q "NOQUEUE: msgid=<sm-m1@msp.example> tenant=sim" "$T/daemon.log"
check "narrowed macros: the daemon says once that the MTA sends no {i}" \
    eq "$(grep -c 'the MTA sends no queue ID ({i} macro)' "$T/daemon.log")" 1
sm_start "inet:$SPY_PORT@127.0.0.1" T || exit 1

# --- 3. the daemon down: F=T tempfails, the sender keeps it and retries ---
spy_stop; daemon_stop
msg "$T/down.eml" "Ann <ann@acme.example>" support@msp.example "While down" "<sm-d1@acme.example>"
sm_send "$T/down.eml" ann@acme.example support@msp.example
rc=$?
check "F=T, daemon down: SMTP answer is a temporary failure" \
    sh -c "[ $rc -ne 0 ] && grep -q '^<\*\* 4[0-9][0-9] ' '$SWAKS_LAST'"
sm_queue "$T/down.eml" ann@acme.example support@msp.example
check "the sending Sendmail queued the mail" eq "$(sm_client_queued)" 1
sm_client_runq
# the delivery attempt runs in a child of the queue run: wait until the
# sender's queue file records the deferral (its M line: the last status)
i=0
while ! grep -qs '^M.*4[0-9][0-9]' "$SM_DIR"/cqueue/qf* && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
check "F=T, daemon down: the sender's retry is deferred, the mail stays queued" \
    sh -c "[ $(sm_client_queued) -eq 1 ] && grep -q 'sm-d1@acme.example' '$SM_DIR'/cqueue/qf* &&
           grep -q '^M.*4[0-9][0-9]' '$SM_DIR'/cqueue/qf*"
check "F=T, daemon down: Sendmail answered the sender with a 4xx" \
    grep -q '<<< 4[0-9][0-9] ' "$SM_DIR/client.trace"
check "F=T, daemon down: nothing delivered" eq "$(_h_count_files "$SINK_DIR")" $delivered
check "F=T, daemon down: the MTA kept nothing either" eq "$(sm_mta_queued)" 0
daemon_start || exit 1
spy_start || exit 1
sm_client_runq
check "back up: the queue run hands the mail over" sm_client_wait_queued 0 60
delivered=$((delivered + 1))
check "back up: delivered" pf_wait_delivered "$T/sink" $delivered 60
f=$(delivered_with "<sm-d1@acme.example>")
check "back up: stamped" sh -c "grep -q '^X-Halo-Status: queued; tenant=sim' '$f'"
check "back up: one job for the retried mail" eq "$(ctl queue | awk '$NF == "<sm-d1@acme.example>"' | wc -l)" 1
wait_jobs "$(job_count)"
check "back up: logged in Halo exactly once" eq "$(in_halo "<sm-d1@acme.example>")" 1

# F=R: Sendmail rejects while the daemon is down; F= (empty): accepts unlogged
spy_stop; daemon_stop
sm_start "inet:$SPY_PORT@127.0.0.1" R || exit 1
sm_send_simple ann@acme.example support@msp.example "while down (F=R)" \
    --header "Message-Id: <sm-r1@acme.example>"
check "F=R, daemon down: permanent rejection" grep -q '^<\*\* 5[0-9][0-9] ' "$SWAKS_LAST"
sm_start "inet:$SPY_PORT@127.0.0.1" "" || exit 1
sm_send_simple ann@acme.example support@msp.example "while down (F=)" \
    --header "Message-Id: <sm-e1@acme.example>"
delivered=$((delivered + 1))
check "empty F=, daemon down: delivered" pf_wait_delivered "$T/sink" $delivered 60
f=$(delivered_with "<sm-e1@acme.example>")
check "empty F=, daemon down: not stamped" eq "$(headers_count "$f" X-Halo-Status)" 0

if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$T/daemon.log"; then
	not_ok "sanitizer report in daemon log"
	grep -A20 "Sanitizer\|runtime error" "$T/daemon.log" | head -40
fi
if grep -q "$SM_AUTH_PASS" "$T/daemon.log" "$T/macros.jsonl"; then
	not_ok "the SASL password reached a log"
fi
echo "sendmail: $pass passed, $fail failed"
if [ $fail -ne 0 ]; then
	echo "    (kept $T; daemon log tail:)"
	tail -20 "$T/daemon.log" | sed 's/^/    /'
	trap - EXIT
	cleanup
	exit 1
fi
cleanup; trap - EXIT
rm -rf "$T"
