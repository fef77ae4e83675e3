#!/bin/sh
# halo.sh - end to end into Halo: swaks -> private Postfix -> halo-milter
# (milter + worker) -> the Halo simulator (tests/halosim). Checks that the
# mail becomes ticket history exactly once, whatever Halo does.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-halo.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
trap 'daemon_stop; sim_stop; harness_cleanup' EXIT
trap 'daemon_stop; sim_stop; harness_cleanup; trap - EXIT; exit 130' INT TERM
SUITE=halo
. "$TOP/tests/lib/check.sh"

# --- the simulator --------------------------------------------------------
. "$HERE/sim.sh"
sim_start || exit 1

# --- halo-milter: two intake mailboxes and an agent's own mailbox --------
MILTER_PORT=$(pf_free_port)
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
WEB_PORT=$(pf_free_port)
{ sim_conf "web_listen=127.0.0.1:$WEB_PORT"; cat <<EOC
cf_message_id = CFMilterKey
halo_senders = notify@msp.example
rate_limit = 40
rate_window = 10
override = *@partner.example client=12 site=120
override = vip@partner.example contact=1005 site=120 client=12
route = support@msp.example intake agent=alice@msp.example
route = helpdesk@msp.example intake agent=alice@msp.example
route = bob@msp.example thread-only agent=recipient

# the same Halo, another policy for closed tickets (scenario 18)
[tenant sim2]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 2
cf_message_id = none
closed_tickets = new
ticket_status_ttl = 0
dont_do_rules = yes
create_contacts = no
route = followup@msp.example intake agent=bob@msp.example
route = sales@msp.example intake agent=bob@msp.example type=1 team=Sales priority=2 assign=2
EOC
} > "$MILTER_CONF"
sink_start "$T/sink" || exit 1
daemon_start || exit 1
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
token_for bob@msp.example | ctl token import bob@msp.example sim > /dev/null
token_for bob@msp.example | ctl token import bob@msp.example sim2 > /dev/null

# --- 0. doctor: what an operator runs after set-up ------------------------
ctl doctor sim > "$T/doctor.out" 2>&1
check "doctor: a good set-up passes" eq "$?" 0
check "doctor: closed tickets reopen to an open status" \
    grep -q "ok   closed tickets reopen to Halo's lowest-numbered open status" "$T/doctor.out"
check "doctor: no ticket yet, so the custom fields wait for one" \
    grep -q "note custom fields CFOutlookConversationId and CFMilterKey: no ticket created" "$T/doctor.out"
check "doctor: agent token checked against Agent/me" \
    grep -q "ok   agent alice@msp.example: token refreshed, signed in as Alice Agent" "$T/doctor.out"
ctl doctor sim --json > "$T/doctor.json" 2> "$T/doctor-json.err"
check "doctor --json: a good set-up passes" eq "$?" 0
check "doctor --json: the agent's Agent/me check is an ok object, no problem" \
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); t = d['tenants'][0]; assert t['tenant'] == 'sim' and t['problems'] == 0 == d['problems'] and any(c['level'] == 'ok' and c['text'].startswith('agent alice@msp.example: token refreshed') for c in t['checks']), d" "$T/doctor.json"
sed 's/^ticket_type_id = 1$/ticket_type_id = 99/; s/^cf_message_id = CFMilterKey$/cf_message_id = CFMilterKey\nappend_outcome = No Such Outcome\nroute = carol@msp.example intake agent=carol@msp.example/' \
    "$MILTER_CONF" > "$T/bad.conf"
"$CTL" -c "$T/bad.conf" doctor sim > "$T/doctor-bad.out" 2>&1
check "doctor: a broken set-up fails" eq "$?" 1
check "doctor: names the missing ticket type" grep -q "FIX  ticket type 99 does not exist" "$T/doctor-bad.out"
check "doctor: names the missing outcome" grep -q "FIX  append outcome 'No Such Outcome'" "$T/doctor-bad.out"
check "doctor: names the agent without a token" grep -q "FIX  agent carol@msp.example: no token" "$T/doctor-bad.out"

job_field() { ctl queue | awk -v id="$1" '$NF == id { print $1; exit }' | xargs -r "$CTL" -c "$MILTER_CONF" show | awk -v f="$2" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }'; }
mail() {  # mail FROM TO SUBJECT MSGID [extra header lines...]
	_m_f=$T/m.eml
	_m_from=$(echo "$1" | sed 's/.*<//; s/>.*//')
	_m_to=$(echo "$2" | sed 's/.*<//; s/>.*//')
	{
		echo "From: $1"; echo "To: $2"; echo "Subject: $3"
		echo "Date: Tue, 24 Nov 2026 10:00:00 +0000"; echo "Message-ID: $4"
		shift 4
		for h in "$@"; do echo "$h"; done
		echo "MIME-Version: 1.0"; echo "Content-Type: text/html; charset=utf-8"; echo
		echo "<p>Body of the mail <b>bold</b></p><script>alert(1)</script>"
	} > "$_m_f"
	send_mail "$_m_f" "$_m_from" "$_m_to"
}

# --- 1. new mail from a contact creates a ticket --------------------------
mail "Ann <ann@acme.example>" support@msp.example "Laptop will not boot" "<n1@acme.example>"
wait_jobs 1
t1=$(job_field "<n1@acme.example>" ticket)
check "new mail from a contact: job done" eq "$(job_field "<n1@acme.example>" result)" created
check "ticket created for contact 1000 of client 10" \
    eq "$(simq "[(t['user_id'], t['client_id'], t['site_id']) for t in s['tickets'] if t['id'] == $t1]")" "[(1000, 10, 100)]"
check "ticket carries the conversation custom field" \
    eq "$(simq "any(c.get('name') == 'CFOutlookConversationId' for t in s['tickets'] if t['id'] == $t1 for c in t.get('customfields', []))")" True
check "ticket HTML sanitised (no script)" \
    eq "$(simq "[('<script' in (t.get('details_html') or '').lower(), 'bold' in (t.get('details_html') or '')) for t in s['tickets'] if t['id'] == $t1]")" "[(False, True)]"

# --- 2. a reply (In-Reply-To) appends; costs one request -------------------
before=$(simq "s['requests']['total']")
mail "Ann <ann@acme.example>" support@msp.example "Re: Laptop will not boot" "<n2@acme.example>" \
    "In-Reply-To: <n1@acme.example>" "References: <n1@acme.example>"
wait_jobs 2
check "reply appended to the same ticket" eq "$(job_field "<n2@acme.example>" ticket)" "$t1"
check "reply: action exists in Halo" eq "$(simq "len([a for a in mine if a.get('internet_message_id') == '<n2@acme.example>' and a['ticket_id'] == $t1])")" 1
check "reply with sender cached and thread known: exactly one Halo request" \
    eq "$(( $(simq "s['requests']['total']") - before ))" 1

# --- 3. Outlook: a reply carrying only Thread-Index appends ----------------
mail "Jo <jo@acme.example>" support@msp.example "Mouse broken" "<o1@acme.example>" \
    "Thread-Index: AdxeEjRWWh0sO05fYHGCk6S1xtfo+Q=="
wait_jobs 3
t3=$(job_field "<o1@acme.example>" ticket)
mail "Jo <jo@acme.example>" support@msp.example "RE: Mouse broken" "<o2@acme.example>" \
    "Thread-Index: AdxeEjRWWh0sO05fYHGCk6S1xtfo+QAAEjRW"
wait_jobs 4
check "Outlook reply (Thread-Index only) appended" eq "$(job_field "<o2@acme.example>" ticket)" "$t3"

# --- 4. subject tag: the ticket's contact may use it, a stranger may not ---
before=$(simq "s['requests']['by_route'].get('GET /api/Tickets/{id}', 0)")
mail "Carl <carl@globex.example>" support@msp.example "Re: VPN broken [ID:502]" "<tag1@globex.example>"
wait_jobs 5
check "subject tag from the ticket's contact appends to 502" eq "$(job_field "<tag1@globex.example>" ticket)" 502
check "the tag's ticket is read once (its closed state comes with it)" \
    eq "$(( $(simq "s['requests']['by_route'].get('GET /api/Tickets/{id}', 0)") - before ))" 1
mail "Ann <ann@acme.example>" support@msp.example "Re: VPN broken [ID:502]" "<tag2@acme.example>"
wait_jobs 6
check "the same tag from a stranger does not append to 502" \
    sh -c "[ \"$(job_field "<tag2@acme.example>" ticket)\" != 502 ]"
check "the stranger's mail made its own ticket" eq "$(job_field "<tag2@acme.example>" result)" created

# --- 5. unknown sender of a known domain goes to that client -------------
mail "Nobody <nobody@initech.example>" support@msp.example "Server room hot" "<u1@initech.example>"
wait_jobs 7
t5=$(job_field "<u1@initech.example>" ticket)
check "unknown sender of a known domain: ticket for client 12" \
    eq "$(simq "[t['client_id'] for t in s['tickets'] if t['id'] == ${t5:-0}]")" "[12]"

# --- 5b. operator overrides win over lookups -------------------------------
# (these do not count as jobs of the scenario numbering below: 2 more)
mail "VIP <vip@partner.example>" support@msp.example "Override contact" "<ov1@partner.example>"
mail "Other <other@partner.example>" support@msp.example "Override domain" "<ov2@partner.example>"
wait_jobs 9
check "override: a named contact gets the ticket as its user" \
    eq "$(simq "[(t['user_id'], t['client_id'], t['site_id']) for t in s['tickets'] if t.get('summary') == 'Override contact']")" "[(1005, 12, 120)]"
check "override: a domain goes to its client" \
    eq "$(simq "[(t.get('user_id') or 0, t['client_id']) for t in s['tickets'] if t.get('summary') == 'Override domain']")" "[(0, 12)]"

# --- 6. auto-reply and bounce make nothing in Halo ------------------------
n_before=$(simq "len(s['tickets']) + len(mine)")
mail "Ann <ann@acme.example>" support@msp.example "Automatic reply: Laptop" "<oof@acme.example>" \
    "Auto-Submitted: auto-replied"
send_mail "$TOP/tests/e2e/mail/06-bounce.eml" "<>" support@msp.example
wait_jobs 11
check "auto-reply and bounce: nothing created in Halo" eq "$(simq "len(s['tickets']) + len(mine)")" "$n_before"

# --- 7. one mail to two intake mailboxes is logged once -------------------
_m=$T/two.eml
printf 'From: Ann <ann@acme.example>\nTo: support@msp.example, helpdesk@msp.example\nSubject: Both mailboxes\nMessage-ID: <both@acme.example>\n\nhello\n' > "$_m"
send_mail "$_m" ann@acme.example support@msp.example helpdesk@msp.example
wait_jobs 12
check "two intake mailboxes: one ticket" eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Both mailboxes'])")" 1

# --- 7b. /metrics after this mail (the daemon has not restarted yet) --------
python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$WEB_PORT/metrics" > "$T/metrics.txt"
check "/metrics answers" test -s "$T/metrics.txt"
if command -v promtool > /dev/null 2>&1; then
	promtool check metrics < "$T/metrics.txt" > "$T/promtool.out" 2>&1
	_p_rc=$?
	check "promtool check metrics: no error and no lint warning" \
	    sh -c "[ $_p_rc -eq 0 ] && [ ! -s '$T/promtool.out' ]"
	[ -s "$T/promtool.out" ] && sed 's/^/    /' "$T/promtool.out" >&2
else
	not_ok "promtool check metrics: no promtool (make deps installs prometheus)"
fi
metric() { awk -v k="$1" '$1 == k { print $2; exit }' "$T/metrics.txt"; }
done_jobs=$(metric 'halo_milter_jobs{state="done"}')
check "metrics: end of message timed once per message sent (12)" \
    eq "$(metric halo_milter_eom_seconds_count)" 12
check "metrics: the +Inf bucket holds every end of message" \
    eq "$(metric 'halo_milter_eom_seconds_bucket{le="+Inf"}')" 12
check "metrics: mail-to-Halo time counted once per job logged in Halo" \
    sh -c "[ '${done_jobs:-0}' -ge 10 ] && [ '$(metric halo_milter_mail_to_halo_seconds_count)' = '$done_jobs' ]"
check "metrics: mail-to-Halo buckets end at +Inf = count" \
    eq "$(metric 'halo_milter_mail_to_halo_seconds_bucket{le="+Inf"}')" "$done_jobs"
check "metrics: build_info names the version" \
    grep -q '^halo_milter_build_info{version="[0-9][^"]*"} 1$' "$T/metrics.txt"
check "metrics: no job queued, so the oldest queued job is 0 s old" \
    eq "$(metric halo_milter_oldest_queued_job_age_seconds)" 0
check "metrics: per-tenant done jobs (sim)" \
    eq "$(metric 'halo_milter_tenant_jobs{tenant="sim",state="done"}')" "$done_jobs"
check "metrics: a configured tenant without jobs shows zeros (sim2)" \
    eq "$(metric 'halo_milter_tenant_jobs{tenant="sim2",state="queued"}')" 0

# --- 8. Halo down for a while, then back: everything logged once ---------
sim POST /_sim/faults '{"status_burst": {"status": 503, "count": 6}}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "During outage 1" "<down1@acme.example>"
mail "Jo <jo@acme.example>" support@msp.example "During outage 2" "<down2@acme.example>"
wait_jobs 14
check "outage: both logged after Halo came back" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary', '').startswith('During outage')])")" 2

# --- 9. connection dropped after Halo applied the request: no duplicate ---
sim POST /_sim/faults '{"drop_after_request": 1}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Uncertain create" "<unc@acme.example>"
wait_jobs 15
check "uncertain create: exactly one ticket" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Uncertain create'])")" 1
check "uncertain create: job done" eq "$(job_field "<unc@acme.example>" result)" created

# --- 10. 401 mid-session and refresh-token rotation -----------------------
sim POST /_sim/faults '{"unauthorized_next": 1, "revoke_access_tokens": true, "rotation": "rotate"}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Re: Laptop will not boot" "<n3@acme.example>" \
    "In-Reply-To: <n2@acme.example>"
wait_jobs 16
check "401 mid-session: refreshed and appended" eq "$(job_field "<n3@acme.example>" ticket)" "$t1"

# --- 11. thread-only mailbox never creates --------------------------------
mail "Ann <ann@acme.example>" bob@msp.example "Direct to Bob" "<bob1@acme.example>"
wait_jobs 17
check "thread-only mailbox: new thread skipped, not created" \
    sh -c "ctl() { \"$CTL\" -c \"$MILTER_CONF\" \"\$@\"; }; ctl queue -s skipped | grep -q 'bob1@acme.example'"

# --- 12. SIGKILL while posting: no duplicate -------------------------------
# Halo answers slowly; the daemon dies once the job has marked itself posting
# and comes back at once, while the simulator still holds the create request
# (it applies it when its delay is over). The job must wait before its recheck
# (WORKER_POST_GRACE), or it would miss the late ticket and post a second one.
sim POST /_sim/faults '{"latency_ms": 4000}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Killed while posting" "<kill@acme.example>"
_k_i=0
while [ $_k_i -lt 150 ] && [ "$(job_field "<kill@acme.example>" post-started)" != yes ]; do
	sleep 0.2
	_k_i=$((_k_i + 1))
done
check "SIGKILL while posting: the job marked itself posting" \
    eq "$(job_field "<kill@acme.example>" post-started)" yes
sleep 1         # the request is at the simulator, which holds it 4 s
daemon_stop KILL
sim POST /_sim/faults '{"latency_ms": 0}' > /dev/null
daemon_start || exit 1
check "SIGKILL while posting: after the restart the job waits before its recheck" \
    eq "$(job_field "<kill@acme.example>" next-attempt | sed 's/[0-9][0-9]*/N/')" "in N s"
check "SIGKILL while posting: the daemon log says why" \
    grep -q "1 of them was posting: checked in Halo 35 s after it began" "$T/daemon.log"
wait_jobs 18
sleep 4         # whatever the simulator still held has landed by now
check "SIGKILL while posting: exactly one ticket" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Killed while posting'])")" 1
check "no duplicate action or ticket for any Message-ID" \
    eq "$(simq "max([ids.count(m) for m in set(ids)] or [1])")" 1
check "nothing failed" eq "$(ctl queue -s failed | grep -c '^[0-9]')" 0
check "no request over Halo's rate window" eq "$(simq "s['requests']['rate_limited']")" 0

# --- 13. attachments reach Halo with the action ---------------------------
att=$T/att.eml
{
	printf 'From: Ann <ann@acme.example>\nTo: support@msp.example\nSubject: Re: Laptop will not boot\n'
	printf 'Message-ID: <att@acme.example>\nIn-Reply-To: <n1@acme.example>\nMIME-Version: 1.0\n'
	printf 'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nlog attached\n'
	printf -- '--b\nContent-Type: text/plain; name="boot.log"\nContent-Disposition: attachment; filename="boot.log"\n'
	printf 'Content-Transfer-Encoding: base64\n\n'
	printf 'kernel panic at boot\n' | base64
	printf -- '--b--\n'
} > "$att"
send_mail "$att" ann@acme.example support@msp.example
wait_jobs 19
check "attachment uploaded with the action" \
    eq "$(simq "[a.get('filename') for a in s['attachments'] if a.get('ticket_id') == $t1]")" "['boot.log']"

# --- 14. 429 storm: Halo's window smaller than our budget -----------------
sim POST /_sim/faults '{"rate_limit": {"limit": 4, "window": 3}, "retry_after": true}' > /dev/null
i=0
while [ $i -lt 6 ]; do
	i=$((i + 1))
	mail "Jo <jo@acme.example>" support@msp.example "Storm $i" "<storm$i@acme.example>"
done
wait_jobs 25
check "429 storm: all six logged" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary', '').startswith('Storm ')])")" 6
check "429 storm: Halo did say 429 (the test is real)" \
    sh -c "[ $(simq "s['requests']['rate_limited']") -gt 0 ]"
check "429 storm: still no duplicate" eq "$(simq "max([ids.count(m) for m in set(ids)] or [1])")" 1
sim POST /_sim/faults '{"rate_limit": {"limit": 300, "window": 300}}' > /dev/null

# --- 15. an enrolled agent's outgoing mail: appended, never a new ticket ---
# sent in the agent's SMTP AUTH session (XCLIENT LOGIN stands in for it):
# without one, an agent's envelope is a stranger's mail (run.sh, issue 11)
SWAKS_XCLIENT="LOGIN=alice@msp.example"
mail "Alice Agent <alice@msp.example>" "Ann <ann@acme.example>" "Re: Laptop will not boot" \
    "<agent-out1@msp.example>" "In-Reply-To: <n3@acme.example>" "References: <n1@acme.example> <n3@acme.example>"
mail "Alice Agent <alice@msp.example>" "Someone <someone@elsewhere.example>" "Lunch" "<agent-out2@msp.example>"
SWAKS_XCLIENT=
wait_jobs 27
check "agent's reply to a ticket thread appended as an outgoing email" \
    eq "$(simq "[(a['ticket_id'], a.get('emaildirection'), a.get('outcome')) for a in mine if a.get('internet_message_id') == '<agent-out1@msp.example>']")" "[($t1, 'O', 'Email Sent')]"
check "agent's new outgoing mail opens no ticket" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Lunch'])")" 0
check "outgoing mail carries no X-Halo-* header to the customer" \
    sh -c "! grep -l 'agent-out1@msp.example' '$T/sink'/* | xargs grep -qi '^X-Halo-'"

# --- 16. a damaged spool file fails its job, never a truncated ticket ----
# alice's token is revoked, so her job waits; the file is cut short meanwhile
ctl revoke alice@msp.example sim > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Damaged spool" "<damaged@acme.example>"
_i=0
while [ $_i -lt 300 ] && ! ctl queue -s waiting | grep -qF "<damaged@acme.example>"; do
	sleep 0.1; _i=$((_i + 1))
done
check "a job for an agent without a token waits" \
    sh -c "$CTL -c '$MILTER_CONF' queue -s waiting | grep -qF '<damaged@acme.example>'"
dmg=$MILTER_STATE/spool/msg/$(job_field "<damaged@acme.example>" spool)
truncate -s 40 "$dmg"
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
ctl retry "$(ctl queue | awk '$NF == "<damaged@acme.example>" { print $1; exit }')" > /dev/null
wait_jobs 28
check "damaged spool: the job failed with the reason" \
    sh -c "$CTL -c '$MILTER_CONF' queue -s failed | grep -F '<damaged@acme.example>' | grep -q 'damaged'"
check "damaged spool: nothing reached Halo" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Damaged spool'])")" 0

# --- 17. doctor after tickets exist: the custom fields read back ----------
ctl doctor sim > "$T/doctor2.out" 2>&1
check "doctor: the conversation field holds a value on a created ticket" \
    grep -q "ok   custom field CFOutlookConversationId holds a value on ticket" "$T/doctor2.out"
check "doctor: the Message-ID field holds a value on a created ticket" \
    grep -q "ok   custom field CFMilterKey holds a value on ticket" "$T/doctor2.out"

# --- 18. closed tickets: "reopen" (tenant sim) and "new" (tenant sim2) -----
# halo_api METHOD PATH [JSON]: Halo's API as an agent would call it
halo_api() {
	python3 - "$SIM" "$1" "$2" "${3:-}" <<'EOP'
import json, sys, urllib.request
sim, method, path, body = sys.argv[1:5]
def call(m, url, data, hdrs):
    req = urllib.request.Request(url, method=m, data=data.encode() if data else None, headers=hdrs)
    return urllib.request.urlopen(req, timeout=10).read().decode()
tok = json.loads(call("POST", sim + "/_sim/token", json.dumps({"agent_email": "bob@msp.example"}),
                      {"Content-Type": "application/json"}))["access_token"]
print(call(method, sim + path, body, {"Content-Type": "application/json", "Authorization": "Bearer " + tok}))
EOP
}
status_of() { halo_api GET "/api/Tickets/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status_id"])'; }
check "Halo's own seeded ticket 502 (closed) was reopened by the tagged reply" eq "$(status_of 502)" 1
check "the reopening action carried new_status" \
    eq "$(simq "[a.get('new_status') for a in mine if a.get('internet_message_id') == '<tag1@globex.example>']")" "[1]"
halo_api POST /api/Actions '[{"ticket_id": 501, "outcome": "Note", "note": "Fixed.", "new_status": 9}]' > /dev/null
check "ticket 501 is closed for the test" eq "$(status_of 501)" 9
mail "Ann <ann@acme.example>" followup@msp.example "RE: Printer on fire" "<closed-new@acme.example>" \
    "In-Reply-To: <printer-2@acme.example>"
wait_jobs 29
check "closed_tickets = new: a new ticket, not an action on 501" \
    eq "$(job_field "<closed-new@acme.example>" result)" created
check "closed_tickets = new: the new ticket names the closed one" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('internet_message_id') == '<closed-new@acme.example>' and 'Follow-up to closed ticket 501' in (t.get('details_html') or '')])")" 1
check "closed_tickets = new: 501 stays closed" eq "$(status_of 501)" 9
mail "Ann <ann@acme.example>" followup@msp.example "RE: Printer on fire" "<closed-new2@acme.example>" \
    "In-Reply-To: <printer-2@acme.example>"
wait_jobs 30
check "closed_tickets = new: the next mail of that thread joins the follow-up ticket" \
    eq "$(job_field "<closed-new2@acme.example>" ticket)" "$(job_field "<closed-new@acme.example>" ticket)"
mail "Ann <ann@acme.example>" support@msp.example "RE: Printer on fire" "<closed-reopen@acme.example>" \
    "In-Reply-To: <printer-2@acme.example>"
wait_jobs 31
check "closed_tickets = reopen: appended to 501" eq "$(job_field "<closed-reopen@acme.example>" ticket)" 501
check "closed_tickets = reopen: 501 is open again" eq "$(status_of 501)" 1
# Halo refuses to show the ticket (403): the mail is appended all the same
sim POST /_sim/faults '{"status_burst": {"status": 403, "count": 1}}' > /dev/null
mail "Ann <ann@acme.example>" followup@msp.example "RE: Printer on fire" "<closed-403@acme.example>" \
    "In-Reply-To: <closed-new@acme.example>"
wait_jobs 32
check "closed state unknown (Halo said 403): appended, not failed" \
    eq "$(job_field "<closed-403@acme.example>" result) $(job_field "<closed-403@acme.example>" ticket)" \
    "appended $(job_field "<closed-new@acme.example>" ticket)"
check "closed state unknown: the job says nothing about it" \
    eq "$(job_field "<closed-403@acme.example>" ticket-status)" "-"
check "the job keeps the ticket's state when logged: reopened" \
    eq "$(job_field "<closed-reopen@acme.example>" ticket-status)" reopened
check "a created ticket is kept as new, a reply to it as open" \
    eq "$(job_field "<n1@acme.example>" ticket-status) $(job_field "<n2@acme.example>" ticket-status)" "new open"
check "worker log lines begin with the Postfix queue ID, like intake's" \
    grep -q "[0-9A-Za-z]\{6,\}: worker: job [0-9]* created: tenant=" "$T/daemon.log"

# --- 19. what Halo gets: the mail's identity, its date, Halo's own rules ---
check "ticket carries the requester (user_email, reportedby) and the To list" \
    eq "$(simq "[(t.get('user_email'), t.get('reportedby'), t.get('emailtolist')) for t in s['tickets'] if t['id'] == $t1]")" "[('ann@acme.example', 'Ann', 'support@msp.example')]"
check "ticket dated by the mail's Date (dateoccurred), not the logging time" \
    eq "$(simq "[(t.get('dateoccurred') or '')[:19] for t in s['tickets'] if t['id'] == $t1]")" "['2026-11-24T10:00:00']"
check "action dated by the mail's Date (actionarrivaldate)" \
    eq "$(simq "[(a.get('actionarrivaldate') or '')[:19] for a in mine if a.get('internet_message_id') == '<n2@acme.example>']")" "['2026-11-24T10:00:00']"
check "Halo's ticket rules ran on a gateway ticket (dont_do_rules = no)" \
    eq "$(simq "[(t['_sim'].get('rules_ran'), t.get('team')) for t in s['tickets'] if t['id'] == $t1]")" "[(True, 'Service Desk')]"
check "dont_do_rules = yes (tenant sim2): Halo's rules did not run" \
    eq "$(simq "[t['_sim'].get('rules_ran') for t in s['tickets'] if t.get('internet_message_id') == '<closed-new@acme.example>']")" "[False]"
check "no field the spec does not declare was sent (tickets, actions, users, attachments)" \
    eq "$(simq "s['undeclared_fields']")" "[]"
check "the one undeclared parameter used is Actions?internetmessageid (verified row by row)" \
    eq "$(simq "sorted(set((p['route'], p['param']) for p in s['undeclared_params']))")" "[('GET /api/Actions', 'internetmessageid')]"

# --- 20. a new person at a known client: their address and a Halo user ----
check "new person at a known domain: the ticket has their address" \
    eq "$(simq "[t.get('user_email') for t in s['tickets'] if t['id'] == ${t5:-0}]")" "['nobody@initech.example']"
check "new person at a known domain: a new Halo user of that client is the ticket's user" \
    eq "$(simq "[(u['client_id'], u['id'] == t.get('user_id')) for u in s['users'] for t in s['tickets'] if t['id'] == ${t5:-0} and u.get('emailaddress') == 'nobody@initech.example']")" "[(12, True)]"
mail "Newbie <newbie@initech.example>" followup@msp.example "Printer jam" "<nc1@initech.example>"
wait_jobs 33
check "create_contacts = no (tenant sim2): a ticket for the client, no new user" \
    eq "$(simq "([(t.get('user_email'), t['client_id'], t.get('user_id') or 0) for t in s['tickets'] if t.get('internet_message_id') == '<nc1@initech.example>'], [u for u in s['users'] if u.get('emailaddress') == 'newbie@initech.example'])")" "([('newbie@initech.example', 12, 0)], [])"

# --- 21. Halo refuses an attachment (_warning, id 0): a visible retry ------
# att_mail MSGID FILE: a reply to ticket t1 with one attachment
att_mail() {
	{
		printf 'From: Ann <ann@acme.example>\nTo: support@msp.example\nSubject: Re: Laptop will not boot\n'
		printf 'Message-ID: %s\nIn-Reply-To: <n1@acme.example>\nMIME-Version: 1.0\n' "$1"
		printf 'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee file\n'
		printf -- '--b\nContent-Type: application/pdf; name="%s"\nContent-Disposition: attachment; filename="%s"\n' "$2" "$2"
		printf 'Content-Transfer-Encoding: base64\n\n'
		printf '%%PDF-1.4 %s\n' "$2" | base64
		printf -- '--b--\n'
	} > "$T/att2.eml"
	send_mail "$T/att2.eml" ann@acme.example support@msp.example
}
sim POST /_sim/faults '{"attachment_fail": "all"}' > /dev/null
att_mail "<attw@acme.example>" report.pdf
_i=0
while [ $_i -lt 300 ] && ! job_field "<attw@acme.example>" reason | grep -q "not stored"; do
	sleep 0.1; _i=$((_i + 1))
done
check "refused attachment: the job is not done, it says what Halo did not store" \
    sh -c "[ \"$(job_field "<attw@acme.example>" state)\" != done ] && $CTL -c '$MILTER_CONF' show \$($CTL -c '$MILTER_CONF' queue | awk '\$NF == \"<attw@acme.example>\" { print \$1; exit }') | grep -q 'report.pdf (Unable to save attachment'"
sim POST /_sim/faults '{"attachment_fail": "off"}' > /dev/null
wait_jobs 34
check "refused attachment: the retry stored it" \
    eq "$(simq "len([a for a in s['attachments'] if a.get('filename') == 'report.pdf' and a.get('ticket_id') == $t1])")" 1
check "refused attachment: the mail itself was posted once" \
    eq "$(simq "len([a for a in mine if a.get('internet_message_id') == '<attw@acme.example>'])")" 1
check "refused attachment: the job is done" eq "$(job_field "<attw@acme.example>" result)" appended
sim POST /_sim/faults '{"attachment_fail": "all"}' > /dev/null
att_mail "<attx@acme.example>" refused.pdf
wait_jobs 35
sim POST /_sim/faults '{"attachment_fail": "off"}' > /dev/null
check "attachment refused to the end: done with the reason, never silently" \
    sh -c "$CTL -c '$MILTER_CONF' show \$($CTL -c '$MILTER_CONF' queue | awk '\$NF == \"<attx@acme.example>\" { print \$1; exit }') | grep -q 'attachments not stored in Halo.*refused.pdf'"
check "attachment refused to the end: a private note on the ticket names it" \
    eq "$(simq "len([a for a in mine if a['ticket_id'] == $t1 and a.get('hiddenfromuser') and 'refused.pdf' in (a.get('note_html') or '')])")" 1
check "attachment refused to the end: the mail posted once, nothing stored" \
    eq "$(simq "(len([a for a in mine if a.get('internet_message_id') == '<attx@acme.example>']), len([a for a in s['attachments'] if a.get('filename') == 'refused.pdf']))")" "(1, 0)"

# --- 22. Halo ignores the internetmessageid filter: nothing mis-filed -----
sim POST /_sim/faults '{"internetmessageid_filter": "ignore"}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Unrelated question" "<imf1@acme.example>" \
    "In-Reply-To: <never-logged@acme.example>"
wait_jobs 36
check "ignored internetmessageid filter: a reply to an unknown mail is a new ticket" \
    eq "$(job_field "<imf1@acme.example>" result)" created
sim POST /_sim/faults '{"drop_after_request": 1}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Uncertain under an ignored filter" "<imf2@acme.example>"
wait_jobs 37
check "ignored internetmessageid filter: an uncertain create still makes one ticket" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Uncertain under an ignored filter'])")" 1
sim POST /_sim/faults '{"internetmessageid_filter": "honour"}' > /dev/null

# --- 23. doctor on a Halo that does not tell closed statuses --------------
check "doctor: names the closed statuses it found" \
    grep -q "ok   closed statuses (Status?excludeclosed=true leaves them out): 8 Resolved, 9 Closed" "$T/doctor.out"
sim POST /_sim/faults '{"status_excludeclosed": "ignore"}' > /dev/null
ctl doctor sim > "$T/doctor3.out" 2>&1
check "doctor: fails when Halo cannot tell which statuses are closed" eq "$?" 1
check "doctor: says why" grep -q "FIX  cannot tell which statuses are closed" "$T/doctor3.out"
sim POST /_sim/faults '{"status_excludeclosed": "honour"}' > /dev/null

# --- 24. a route's ticket options ------------------------------------------
mail "Ann <ann@acme.example>" sales@msp.example "Quote for laptops" "<route1@acme.example>"
wait_jobs 38
check "route options: the ticket's type, team, priority and agent come from the route" \
    eq "$(simq "[(t['tickettype_id'], t.get('team'), t.get('priority_id'), t.get('agent_id')) for t in s['tickets'] if t.get('internet_message_id') == '<route1@acme.example>']")" "[(1, 'Sales', 2, 2)]"

# --- 25. a Date years old (or ahead) is not believed: arrival time --------
printf 'From: Ann <ann@acme.example>\nTo: support@msp.example\nSubject: Archive resend\nDate: Thu, 01 Jan 2015 10:00:00 +0000\nMessage-ID: <olddate@acme.example>\n\nold\n' > "$T/old.eml"
send_mail "$T/old.eml" ann@acme.example support@msp.example
wait_jobs 39
check "a Date years before arrival: the ticket is dated when the mail arrived" \
    eq "$(simq "[(t.get('dateoccurred') or '')[:10] for t in s['tickets'] if t.get('internet_message_id') == '<olddate@acme.example>']")" "['$(date -u +%Y-%m-%d)']"

# --- 26. retention: finished jobs past job_retention go, threading stays --
daemon_stop
sqlite3 "$MILTER_STATE/halo-milter.db" "UPDATE jobs SET updated = 0 WHERE
    message_id IN ('<n1@acme.example>', '<oof@acme.example>')"
daemon_start || exit 1
_r_i=0
while [ $_r_i -lt 100 ] && ! grep -q "retention: deleted" "$T/daemon.log"; do
	sleep 0.1
	_r_i=$((_r_i + 1))
done
check "retention: the daemon deleted the two old finished jobs at start" \
    grep -q "retention: deleted 2 finished jobs older than 30 days" "$T/daemon.log"
check "retention: they are gone, the others stay" \
    eq "$(ctl queue | grep -c '<n1@acme.example>\|<oof@acme.example>\|<n2@acme.example>')" 1
mail "Ann <ann@acme.example>" support@msp.example "Re: Laptop will not boot" "<n9@acme.example>" \
    "In-Reply-To: <n1@acme.example>" "References: <n1@acme.example>"
wait_jobs 38
check "retention: a reply to a deleted job's mail joins its ticket" \
    eq "$(job_field "<n9@acme.example>" ticket)" "$t1"
check "retention: found by our own Message-ID index, not by asking Halo" \
    grep -q "msgid=<n9@acme.example> ticket=$t1 .*matched-by=message-id" "$T/daemon.log"

# --- 27. a commit a power cut lost comes back from the spool file ---------
# End of message commits a message's job rows without syncing them on
# SQLite: the spool file, synced, carries them in its trailer. Here the
# rows are deleted while the daemon is down (what a power cut that lost the
# commit leaves); the next start restores them and the mail is logged once.
sim POST /_sim/faults '{"status_burst": {"status": 503, "count": 100000}}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Lost in a power cut" "<lost@acme.example>"
_l_i=0
while [ $_l_i -lt 100 ] && [ "$(job_field "<lost@acme.example>" attempts)" != 1 ]; do
	sleep 0.1
	_l_i=$((_l_i + 1))
done
daemon_stop
check "lost commit: the spool file carries its rows after the message" \
    grep -q "HALO-SPOOL-ROWS" "$MILTER_STATE"/spool/msg/*
sqlite3 "$MILTER_STATE/halo-milter.db" "DELETE FROM jobs WHERE message_id =
    '<lost@acme.example>'; DELETE FROM conversations WHERE message_id =
    '<lost@acme.example>'"
check "lost commit: the job is gone from the store" \
    eq "$(ctl queue | grep -c '<lost@acme.example>')" 0
sim POST /_sim/faults '{"status_burst": {"status": 503, "count": 0}}' > /dev/null
daemon_start || exit 1
check "lost commit: the daemon restored the message's job from the spool" \
    grep -q "spool recovery: the jobs of 1 message restored from the spool" "$T/daemon.log"
wait_jobs 39
check "lost commit: the mail is logged in Halo once" \
    eq "$(simq "len([t for t in s['tickets'] if t.get('summary') == 'Lost in a power cut'])")" 1
check "lost commit: the restored job has the mail's sender and routing" \
    eq "$(job_field "<lost@acme.example>" from) $(job_field "<lost@acme.example>" mode)" "ann@acme.example intake"
check "lost commit: the conversation key came back too" \
    eq "$(sqlite3 "$MILTER_STATE/halo-milter.db" "SELECT count(*) FROM conversations WHERE message_id = '<lost@acme.example>'")" 1

# --- 28. through an outage, a reply waits for its thread's first mail -----
# Both are queued while Halo answers 503; when it is back, the worker must
# not take the reply before the first mail has made the ticket (two workers
# would otherwise run them side by side and the reply would start a second
# ticket).
sim POST /_sim/faults '{"status_burst": {"status": 503, "count": 100000}}' > /dev/null
mail "Ann <ann@acme.example>" support@msp.example "Outage order" "<ord1@acme.example>"
mail "Ann <ann@acme.example>" support@msp.example "Re: Outage order" "<ord2@acme.example>" \
    "In-Reply-To: <ord1@acme.example>" "References: <ord1@acme.example>"
_o_i=0
while [ $_o_i -lt 100 ] && [ "$(job_field "<ord1@acme.example>" attempts)" != 1 ]; do
	sleep 0.1
	_o_i=$((_o_i + 1))
done
check "outage: the reply was not tried while its thread's first mail waits" \
    eq "$(job_field "<ord2@acme.example>" attempts)" 0
sim POST /_sim/faults '{"status_burst": {"status": 503, "count": 0}}' > /dev/null
wait_jobs 41
check "outage: the first mail made one ticket" \
    eq "$(simq "len([t for t in s['tickets'] if 'Outage order' in (t.get('summary') or '')])")" 1
check "outage: the reply joined it" \
    eq "$(job_field "<ord2@acme.example>" ticket)" "$(job_field "<ord1@acme.example>" ticket)"

if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$T/daemon.log"; then
	not_ok "sanitizer report in daemon log"
	grep -A20 "Sanitizer\|runtime error" "$T/daemon.log" | head -40
fi
if grep -qi "bearer\|refresh_token=\|access_token" "$T/daemon.log"; then
	not_ok "a token appears in the daemon log"
fi
echo "halo: $pass passed, $fail failed"
if [ $fail -ne 0 ]; then
	echo "    (kept $T; daemon log tail:)"
	tail -30 "$T/daemon.log" | sed 's/^/    /'
	trap - EXIT
	daemon_stop; sim_stop; harness_cleanup
	exit 1
fi
daemon_stop; sim_stop; harness_cleanup; trap - EXIT
rm -rf "$T"
