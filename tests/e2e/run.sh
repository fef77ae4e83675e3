#!/bin/sh
# run.sh - end to end: swaks -> private Postfix (loopback) -> halo-milter ->
# smtp-sink. Checks stamped headers, one job per message, survival of
# SIGKILL, and Postfix's milter_default_action while the daemon is down.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
trap 'daemon_stop; harness_cleanup' EXIT
trap 'daemon_stop; harness_cleanup; trap - EXIT; exit 130' INT TERM
MAIL="$HERE/mail"
SUITE=e2e
. "$TOP/tests/lib/check.sh"

jobs_with_state() { ctl queue -s "$1" | grep -c '^[0-9]'; }
job_count() { ctl queue | grep -c '^[0-9]'; }
job_of() { ctl queue | awk -v id="$1" '$NF == id { print $1; exit }'; }

# intake only: this level checks the milter in the mail path; halo.sh
# checks the worker against the Halo simulator
DAEMON_EXTRA_CONF="workers = 0
submission_networks = 192.0.2.0/24"
DAEMON_EXTRA_TENANT="agent_login = jdoe agent1@msp.example"
# section 4 poses as clients at these addresses (XCLIENT): let Postfix
# relay for them, so that the milter, not Postfix, decides
PF_EXTRA_MAIN_CF="mynetworks = 127.0.0.0/8 192.0.2.0/24 203.0.113.0/24"
sink_start "$T/sink" || exit 1
daemon_start || exit 1
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1

# --- 1. sample mail through the real MTA ---------------------------------
send_mail "$MAIL/01-new.eml" alice@client.example support@acme.example
send_mail "$MAIL/02-reply.eml" alice@client.example support@acme.example
send_mail "$MAIL/03-outlook-new.eml" bob@client.example support@acme.example
send_mail "$MAIL/04-outlook-reply.eml" bob@client.example support@acme.example
send_mail "$MAIL/05-autoreply.eml" carol@client.example support@acme.example
send_mail "$MAIL/06-bounce.eml" "<>" support@acme.example
send_mail "$MAIL/07-no-msgid.eml" dave@client.example support@acme.example
send_mail "$MAIL/08-unrouted.eml" alice@client.example someone@elsewhere.example
send_mail "$MAIL/09-forged.eml" mallory@client.example support@acme.example
# one mail to two intake mailboxes of different tenants, and a resend
send_mail "$MAIL/01-new.eml" alice@client.example support@acme.example help@globex.example
check "all 10 messages delivered" pf_wait_delivered "$T/sink" 10 60

f=$(delivered_with "<new-1@client.example>" | head -1)
conv1=$(header_of "$f" X-Halo-Conversation-Id)
check "new mail stamped with a 32-hex conversation id" \
    sh -c "printf '%s' '$conv1' | grep -Eq '^[0-9a-f]{32}$'"
f=$(delivered_with "<reply-1@client.example>")
check "reply carries its thread's conversation id" \
    eq "$(header_of "$f" X-Halo-Conversation-Id)" "$conv1"
check "reply queued" eq "$(header_of "$f" X-Halo-Status)" "queued; tenant=acme; job=2"
f=$(delivered_with "<outlook-2@client.example>")
check "Outlook reply keyed by its Thread-Index GUID" \
    eq "$(header_of "$f" X-Halo-Conversation-Id)" "5a1d2c3b4e5f60718293a4b5c6d7e8f9"
f=$(delivered_with "<oof-1@client.example>")
check "auto-reply skipped" eq "$(header_of "$f" X-Halo-Status)" "skipped; reason=auto-reply; tenant=acme; job=5"
f=$(delivered_with "<bounce-1@mx.client.example>")
check "bounce skipped" eq "$(header_of "$f" X-Halo-Status)" "skipped; reason=bounce; tenant=acme; job=6"
f=$(grep -l "New starter next week" "$T/sink"/* | head -1)
check "Message-ID added exactly once" eq "$(headers_count "$f" Message-ID)" 1
gen=$(header_of "$f" Message-ID)
check "the job carries the added Message-ID" eq "$(ctl queue | awk -v id="$gen" '$NF == id' | wc -l)" 1
f=$(delivered_with "<lunch-1@client.example>")
check "unrouted mail untouched" eq "$(headers_count "$f" X-Halo-Status)$(headers_count "$f" X-Halo-Conversation-Id)" "00"
f=$(delivered_with "<forged-1@client.example>")
check "forged X-Halo-Status replaced by ours" eq "$(headers_count "$f" X-Halo-Status)" 1
check "forged status value gone" eq "$(header_of "$f" X-Halo-Status)" "queued; tenant=acme; job=8"
check "forged conversation id gone" \
    sh -c "! grep -q '00000000000000000000000000000000' '$f'"
# the resend to acme + globex: acme sees a duplicate, globex a new job
f=$(for x in "$T/sink"/*; do grep -l "tenant=globex" "$x"; done 2>/dev/null | head -1)
check "resend to two tenants: globex job created" \
    sh -c "grep -q 'X-Halo-Status: queued; tenant=globex; job=9' '$f'"
check "resend to two tenants: acme duplicate" \
    sh -c "grep -q 'X-Halo-Status: skipped; reason=duplicate; tenant=acme; job=1' '$f'"
check "exactly one job per routed message and tenant (9)" eq "$(job_count)" 9
check "no job for the unrouted message" eq "$(ctl queue | grep -c 'lunch-1')" 0

# --- 2. SIGKILL mid-stream: no accepted job is lost, none doubled -------
# 20 messages, the daemon killed while they flow. A message Postfix refused
# (milter_default_action = tempfail) is re-sent after the restart, as the
# sending MTA would. Every message must then be delivered once and have
# exactly one job, whether its first attempt died before or after the spool.
before=$(ls "$T/sink" | wc -l)
( sleep 0.3; kill -KILL "$MILTER_PID" ) &
killer=$!
refused=""
i=0
while [ $i -lt 20 ]; do
	i=$((i + 1))
	send_simple "kill$i@client.example" support@acme.example "kill test $i" \
	    --header "Message-Id: <kill-$i@client.example>" --body "message $i" ||
	    refused="$refused $i"
done
wait "$killer"
wait "$MILTER_PID" 2>/dev/null
MILTER_PID=
echo "    refused while the daemon was dead:${refused:- none}"
daemon_start || exit 1
for i in $refused; do
	send_simple "kill$i@client.example" support@acme.example "kill test $i" \
	    --header "Message-Id: <kill-$i@client.example>" --body "message $i"
done
check "all 20 kill-test messages delivered" pf_wait_delivered "$T/sink" $((before + 20)) 60
bad=0
i=0
while [ $i -lt 20 ]; do
	i=$((i + 1))
	id="<kill-$i@client.example>"
	n=$(ctl queue | awk -v id="$id" '$NF == id' | wc -l)
	d=$(for f in "$T/sink"/*; do [ "$(header_of "$f" Message-ID)" = "$id" ] && echo "$f"; done | wc -l)
	if [ "$n" -ne 1 ] || [ "$d" -ne 1 ]; then
		echo "    $id: $n jobs, delivered $d times" >&2
		bad=$((bad + 1))
	fi
done
check "every kill-test message delivered once with exactly one job" eq "$bad" 0
check "Postfix queue empty" pf_wait_queue_empty 30

# --- 3. daemon down: Postfix's milter_default_action applies --------------
daemon_stop
send_simple down1@client.example support@acme.example "while down (tempfail)" \
    --header "Message-Id: <down-1@client.example>"
rc=$?
check "tempfail default: mail not accepted while the daemon is down" \
    [ "$rc" -ne 0 ]
check "tempfail default: nothing delivered" eq "$(ls "$T/sink" | wc -l)" 30
pf_start "inet:$MILTER_PORT@127.0.0.1" accept || exit 1
send_simple down2@client.example support@acme.example "while down (accept)" \
    --header "Message-Id: <down-2@client.example>"
check "accept default: delivered unstamped while the daemon is down" \
    pf_wait_delivered "$T/sink" 31 60
f=$(delivered_with "<down-2@client.example>")
check "accept default: no X-Halo header" eq "$(headers_count "$f" X-Halo-Status)" 0
daemon_start || exit 1
send_simple up@client.example support@acme.example "after restart" \
    --header "Message-Id: <up-1@client.example>"
check "back up: mail stamped again" pf_wait_delivered "$T/sink" 32 60
f=$(delivered_with "<up-1@client.example>")
check "back up: queued" sh -c "header=\$(grep '^X-Halo-Status:' '$f'); case \$header in *queued*) true;; *) false;; esac"

# --- 4. who may write (issue 11), through the real MTA --------------------
# agent1 is enrolled in acme. The private Postfix lets the loopback client
# use XCLIENT, which stands in for SMTP AUTH (LOGIN= sets the SASL login
# that smtpd passes to milters as {auth_authen}) and for another client
# address (ADDR=).
echo sealed-e2e-token | ctl token import agent1@msp.example acme > /dev/null
base=$(ls "$T/sink" | wc -l)
jobs0=$(job_count)
# attack: plain SMTP, no AUTH, envelope an agent's address, [ID:n] subject
send_simple agent1@msp.example customer@elsewhere.example "Re: [ID:1] printer" \
    --header "Message-Id: <spoof-out-1@evil.example>" --body "posted as the agent?"
# the agent's real session (SMTP AUTH as the agent) and a mapped login
send_simple agent1@msp.example customer@elsewhere.example "Re: [ID:1] printer" \
    --xclient "LOGIN=agent1@msp.example" \
    --header "Message-Id: <real-out-1@msp.example>" --body "fixed"
send_simple agent1@msp.example customer@elsewhere.example "Re: [ID:1] printer" \
    --xclient "LOGIN=jdoe" \
    --header "Message-Id: <real-out-2@msp.example>" --body "fixed again"
# attack: authenticated, but as someone else
send_simple agent1@msp.example customer@elsewhere.example "Re: [ID:1] printer" \
    --xclient "LOGIN=mallory" \
    --header "Message-Id: <spoof-out-2@evil.example>" --body "another login"
# without AUTH from submission_networks (192.0.2.0/24), and from outside it
send_simple agent1@msp.example customer@elsewhere.example "Re: [ID:1] printer" \
    --xclient "ADDR=192.0.2.7" \
    --header "Message-Id: <real-out-3@msp.example>" --body "from the office"
send_simple agent1@msp.example customer@elsewhere.example "Re: [ID:1] printer" \
    --xclient "ADDR=203.0.113.9" \
    --header "Message-Id: <spoof-out-3@evil.example>" --body "from outside"
# attack: a mail that pre-empts a Message-ID, then the genuine mail
send_simple mallory@evil.example support@acme.example "Printer" \
    --header "From: Alice <alice@client.example>" \
    --header "Message-Id: <preempt-1@client.example>" --body "I was first"
send_simple alice@client.example support@acme.example "Printer" \
    --header "From: Alice <alice@client.example>" \
    --header "Message-Id: <preempt-1@client.example>" --body "the genuine mail"
check "issue 11: all 8 messages delivered" pf_wait_delivered "$T/sink" $((base + 8)) 60
check "unauthenticated agent envelope: no job" \
    eq "$(ctl queue | grep -c 'spoof-out-1')" 0
check "unauthenticated agent envelope: delivered untouched" \
    eq "$(headers_count "$(delivered_with "<spoof-out-1@evil.example>")" X-Halo-Status)" 0
check "SMTP AUTH as the agent: outbound job" \
    eq "$(ctl show "$(job_of "<real-out-1@msp.example>")" | awk '$1 == "mode" { print $2 }')" outbound
check "SMTP AUTH as the agent: recorded as sasl" \
    eq "$(ctl show "$(job_of "<real-out-1@msp.example>")" | awk '$1 == "outbound-auth" { print $2 }')" sasl
check "agent_login: outbound job" eq "$(ctl queue | grep -c 'real-out-2')" 1
check "SMTP AUTH as another login: no job" eq "$(ctl queue | grep -c 'spoof-out-2')" 0
check "submission_networks: outbound job (network)" \
    eq "$(ctl show "$(job_of "<real-out-3@msp.example>")" | awk '$1 == "outbound-auth" { print $2 }')" network
check "outside submission_networks: no job" eq "$(ctl queue | grep -c 'spoof-out-3')" 0
pre=$(job_of "<preempt-1@client.example>")
n_pre=$(ctl queue | awk '$NF == "<preempt-1@client.example>"' | wc -l)
check "pre-empted Message-ID: the genuine mail is its own job" eq "$n_pre" 2
g=$(for x in "$T/sink"/*; do grep -l "the genuine mail" "$x"; done 2>/dev/null | head -1)
a=$(for x in "$T/sink"/*; do grep -l "I was first" "$x"; done 2>/dev/null | head -1)
check "pre-empted Message-ID: the genuine mail is queued, not a duplicate" \
    sh -c "header_status=\$(grep '^X-Halo-Status:' '$g'); case \$header_status in *queued*) true;; *) false;; esac"
check "pre-empted Message-ID: each mail has a token of its own job" \
    sh -c "[ -n \"\$(grep '^X-Halo-Token:' '$g')\" ] && [ \"\$(grep '^X-Halo-Token:' '$g')\" != \"\$(grep '^X-Halo-Token:' '$a')\" ]"
check "pre-empting mail: From: not authentic (envelope evil.example)" \
    eq "$(ctl show "$(ctl queue | awk '$NF == "<preempt-1@client.example>" { print $1 }' | sort -n | head -1)" | awk '$1 == "sender-auth" { print $2 }')" none
check "issue 11: 5 new jobs in all" eq "$(job_count)" $((jobs0 + 5))

if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$T/daemon.log"; then
	not_ok "sanitizer report in daemon log"
	grep -A20 "Sanitizer\|runtime error" "$T/daemon.log" | head -40
fi
echo "e2e: $pass passed, $fail failed"
if [ $fail -ne 0 ]; then
	echo "    (state kept in $T; maillog tail:)"
	tail -20 "$PF_DIR/maillog" | sed 's/^/    /'
	trap - EXIT
	daemon_stop; harness_cleanup
	exit 1
fi
daemon_stop; harness_cleanup; trap - EXIT
rm -rf "$T"
