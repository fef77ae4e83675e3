#!/bin/sh
# trust.sh - who may write into a ticket (issue 11), end to end: swaks ->
# private Postfix -> halo-milter -> the Halo simulator. Each attack of the
# issue must land in no foreign ticket; the genuine participants' replies
# (the ticket's user, a Cc'd third party) must still thread.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-trust.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
trap 'daemon_stop; sim_stop; harness_cleanup' EXIT
trap 'daemon_stop; sim_stop; harness_cleanup; trap - EXIT; exit 130' INT TERM
SUITE=trust
. "$TOP/tests/lib/check.sh"
ne() { [ "$1" != "$2" ] || { echo "    got '$1', must differ" >&2; return 1; }; }
has() { case "$1" in *"$2"*) return 0;; esac; echo "    '$1' lacks '$2'" >&2; return 1; }

. "$HERE/sim.sh"
sim_start || exit 1

# tenant sim: no catch-all; tenant catch: unknown senders go to client 15
MILTER_PORT=$(pf_free_port)
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
{ sim_conf; cat <<EOC
cf_message_id = none
closed_tickets = append
route = support@msp.example intake agent=alice@msp.example

[tenant catch]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 2
cf_message_id = none
closed_tickets = append
fallback_client_id = 15
route = catchall@msp.example intake agent=bob@msp.example
EOC
} > "$MILTER_CONF"
sink_start "$T/sink" || exit 1
daemon_start || exit 1
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
token_for bob@msp.example | ctl token import bob@msp.example catch > /dev/null

done_n=0
# wait_more: until one more job is in a final state (daemon.sh's wait_jobs)
wait_more() {
	done_n=$((done_n + 1))
	wait_jobs "$done_n"
}
job_id() { ctl queue | awk -v id="$1" '$NF == id { print $1; exit }'; }
job_field() { ctl show "$(job_id "$1")" | awk -v f="$2" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }'; }
job_state() { ctl queue | awk -v id="$1" '$NF == id { print $2; exit }'; }
# mail ENVELOPE-FROM FROM TO SUBJECT MSGID [extra header lines...]
mail() {
	_m_f=$T/m.eml
	_m_env=$1
	_m_to=$(echo "$3" | sed 's/.*<//; s/>.*//')
	{
		echo "From: $2"; echo "To: $3"; echo "Subject: $4"
		echo "Date: Tue, 24 Nov 2026 10:00:00 +0000"; echo "Message-ID: $5"
		shift 5
		for h in "$@"; do echo "$h"; done
		echo "MIME-Version: 1.0"; echo "Content-Type: text/plain; charset=utf-8"; echo
		echo "body"
	} > "$_m_f"
	send_mail "$_m_f" "$_m_env" "$_m_to"
	wait_more
}
on_ticket() {  # on_ticket MSGID: the tickets holding MSGID in Halo
	simq "sorted(set([t['id'] for t in s['tickets'] if t.get('internet_message_id') == '$1'] + [a['ticket_id'] for a in mine if a.get('internet_message_id') == '$1']))"
}

# --- the genuine thread: Ann opens a ticket with Dave (no Halo contact) in Cc
mail ann@acme.example "Ann <ann@acme.example>" support@msp.example "Printer jam" \
    "<t1@acme.example>" "Cc: Dave <Dave@Partner2.example>, \"Eve, the boss\" <eve@acme.example>"
T1=$(job_field "<t1@acme.example>" ticket)
check "setup: Ann's mail created a ticket" eq "$(job_field "<t1@acme.example>" result)" created

# --- (e) positive controls: the ticket's user and a Cc'd participant -------
before=$(simq "s['requests']['total']")
mail ann@acme.example "Ann <ann@acme.example>" support@msp.example "Re: Printer jam" \
    "<t2@acme.example>" "In-Reply-To: <t1@acme.example>" "References: <t1@acme.example>"
check "(e) the ticket's user's reply threads" eq "$(on_ticket "<t2@acme.example>")" "[$T1]"
check "(e) a known participant's reply costs no extra request (one append)" \
    eq "$(( $(simq "s['requests']['total']") - before ))" 1
mail dave@partner2.example "Dave <dave@partner2.example>" support@msp.example "Re: Printer jam" \
    "<d1@partner2.example>" "In-Reply-To: <t1@acme.example>"
check "(e) a Cc'd participant (no Halo contact) threads" eq "$(on_ticket "<d1@partner2.example>")" "[$T1]"

# --- (a) a stranger quoting the ticket's Message-ID ------------------------
mail mallory@evil.example "Mallory <mallory@evil.example>" support@msp.example "Re: Printer jam" \
    "<a1@evil.example>" "In-Reply-To: <t1@acme.example>" "References: <t1@acme.example>"
check "(a) a stranger's In-Reply-To does not land on the ticket" eq "$(on_ticket "<a1@evil.example>")" "[]"
check "(a) the stranger's job is skipped as not-a-participant" \
    eq "$(job_state "<a1@evil.example>") $(job_field "<a1@evil.example>" reason | cut -d: -f1)" "skipped not-a-participant"
check "(a) the operator's log names the refusal" \
    grep -q "ticket $T1 proposed by message-id not joined: not-a-participant" "$T/daemon.log"
mail mallory@evil.example "Mallory <mallory@evil.example>" support@msp.example "Re: Printer jam" \
    "<a2@evil.example>" "References: <x@y.example> <t2@acme.example>"
check "(a) a stranger's References does not land on the ticket" eq "$(on_ticket "<a2@evil.example>")" "[]"
mail carl@globex.example "Carl <carl@globex.example>" support@msp.example "Re: Printer jam" \
    "<a3@globex.example>" "In-Reply-To: <t1@acme.example>"
check "(a) a contact of another client does not land on the ticket" \
    sh -c "[ \"$(on_ticket "<a3@globex.example>")\" != \"[$T1]\" ]"
check "(a) ... it is a new conversation: its own ticket, with the reason shown" \
    eq "$(job_field "<a3@globex.example>" result) $(job_field "<a3@globex.example>" reason | cut -d: -f1)" \
    "created not-a-participant"

# --- (b) a Thread-Index built from the stamped conversation key ------------
key=$(header_of "$(delivered_with "<t1@acme.example>")" X-Halo-Conversation-Id)
check "(b) the delivered copy carries the conversation key" sh -c "[ -n '$key' ]"
tix=$(python3 -c "import base64,sys; print(base64.b64encode(bytes([1,0xdb,0x10,0x20,0x30,0x40]) + bytes.fromhex(sys.argv[1])).decode())" "$key")
mail mallory@evil.example "Mallory <mallory@evil.example>" support@msp.example "RE: Printer jam" \
    "<b1@evil.example>" "Thread-Index: $tix"
check "(b) the forged Thread-Index maps to the ticket's conversation (the test is real)" \
    eq "$(job_field "<b1@evil.example>" conversation)" "$key"
check "(b) a stranger's forged Thread-Index does not join" eq "$(on_ticket "<b1@evil.example>")" "[]"

# --- (c) plain SMTP, no AUTH, an agent's envelope and a ticket tag --------
mail alice@msp.example "Alice Agent <alice@msp.example>" support@msp.example \
    "Re: Printer jam [ID:$T1]" "<c1@msp.example>" "In-Reply-To: <t1@acme.example>"
check "(c) no 'Email Sent' as the agent" \
    eq "$(simq "len([a for a in mine if a.get('internet_message_id') == '<c1@msp.example>' and (a.get('emaildirection') == 'O' or a.get('outcome') == 'Email Sent')])")" 0
check "(c) not joined to the tagged ticket" eq "$(on_ticket "<c1@msp.example>")" "[]"
check "(c) the job is inbound, not outbound" sh -c "[ \"$(job_field "<c1@msp.example>" mode)\" != outbound ]"

# --- (d) a spoofed From: (envelope of another domain) with the ticket's tag
mail mallory@evil.example "Ann <ann@acme.example>" support@msp.example \
    "Re: Printer jam [ID:$T1]" "<s1@evil.example>"
check "(d) a spoofed From: with a subject tag does not join" \
    sh -c "[ \"$(on_ticket "<s1@evil.example>")\" != \"[$T1]\" ]"
check "(d) ... the job says unauthenticated-sender" \
    has "$(job_field "<s1@evil.example>" reason)" "unauthenticated-sender: ticket $T1"
mail mallory@evil.example "Ann <ann@acme.example>" support@msp.example "Re: Printer jam" \
    "<s2@evil.example>" "In-Reply-To: <t2@acme.example>"
check "(d) a spoofed From: quoting a Message-ID does not join" \
    sh -c "[ \"$(on_ticket "<s2@evil.example>")\" != \"[$T1]\" ]"

# --- (d) the catch-all client's tickets ------------------------------------
mail one@unknown1.example "One <one@unknown1.example>" catchall@msp.example "Catch one" "<k1@unknown1.example>"
C1=$(job_field "<k1@unknown1.example>" ticket)
check "setup: an unknown sender's ticket goes to the catch-all client 15" \
    eq "$(simq "[t['client_id'] for t in s['tickets'] if t['id'] == ${C1:-0}]")" "[15]"
mail two@unknown2.example "Two <two@unknown2.example>" catchall@msp.example "Re: Catch one [ID:$C1]" "<k2@unknown2.example>"
check "(d) another stranger cannot tag his way into a catch-all ticket" \
    sh -c "[ \"$(on_ticket "<k2@unknown2.example>")\" != \"[$C1]\" ]"
mail two@unknown2.example "Two <two@unknown2.example>" catchall@msp.example "Re: Catch one" \
    "<k3@unknown2.example>" "In-Reply-To: <k1@unknown1.example>"
check "(d) ... nor reply his way into it" \
    sh -c "[ \"$(on_ticket "<k3@unknown2.example>")\" != \"[$C1]\" ]"
mail one@unknown1.example "One <one@unknown1.example>" catchall@msp.example "Re: Catch one" \
    "<k4@unknown1.example>" "In-Reply-To: <k1@unknown1.example>"
check "(e) the catch-all ticket's own sender still threads" eq "$(on_ticket "<k4@unknown1.example>")" "[$C1]"

check "nothing failed" eq "$(ctl queue -s failed | grep -c '^[0-9]')" 0
if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$T/daemon.log"; then
	not_ok "sanitizer report in daemon log"
	grep -A20 "Sanitizer\|runtime error" "$T/daemon.log" | head -40
fi
echo "trust: $pass passed, $fail failed"
if [ $fail -ne 0 ]; then
	echo "    (kept $T; daemon log tail:)"
	tail -30 "$T/daemon.log" | sed 's/^/    /'
	trap - EXIT
	daemon_stop; sim_stop; harness_cleanup
	exit 1
fi
daemon_stop; sim_stop; harness_cleanup; trap - EXIT
rm -rf "$T"
