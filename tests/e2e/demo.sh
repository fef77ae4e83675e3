#!/bin/sh
# demo.sh - the main job: halo-milter behind a private Postfix on loopback,
# logging into the Halo simulator (HaloPSA cannot run here). Sends the
# sample mail in tests/e2e/mail (new mail, a reply, an Outlook thread, an
# auto-reply, a bounce, mail without Message-ID, a forged header, a
# duplicate), prints for each what the gateway stamped and the job it
# queued, then the tickets and actions the worker made in Halo.
# Everything runs in a temporary directory and stops at the end; set
# KEEP=1 to keep the directory for a look around.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-demo.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
. "$HERE/sim.sh"
trap 'daemon_stop; sim_stop; harness_cleanup' EXIT
trap 'daemon_stop; sim_stop; harness_cleanup; trap - EXIT; exit 130' INT TERM
MAIL="$HERE/mail"

echo "== halo-milter demo (state in $T)"
sink_start "$T/sink" || exit 1
sim_start || exit 1
# The demo's senders are not Halo contacts: unknown senders go to the
# simulator's catch-all client (15), as an operator may configure.
HALO_URL=$SIM
DAEMON_EXTRA_CONF="insecure_http = yes
retry_base = 1"
DAEMON_EXTRA_TENANT="auth_url = http://127.0.0.1:$SIM_AUTH/auth
fallback_client_id = 15
cf_message_id = CFMilterKey"
DAEMON_CLIENT_ID=halo-milter-native
daemon_conf
daemon_start || exit 1
# the agent whose token the intake mailbox uses (enrollment stands in here)
token_for alice@msp.example | ctl token import alice@msp.example acme > /dev/null
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1
echo "   Postfix on 127.0.0.1:$PF_PORT -> halo-milter on 127.0.0.1:$MILTER_PORT -> sink on :$SINK_PORT"
echo

n=0
demo_send() {   # demo_send LABEL FILE FROM TO...
	label=$1; file=$2; shift 2
	n=$((n + 1))
	if send_mail "$file" "$@"; then :; else echo "   ($label: refused by Postfix)"; fi
	pf_wait_delivered "$T/sink" "$n" 30 >/dev/null 2>&1
	f=$(ls -t "$T/sink"/* | head -1)
	id=$(header_of "$f" Message-ID)
	printf '%-2s %s\n' "$n." "$label"
	printf '   %-24s %s\n' "Subject:" "$(header_of "$f" Subject)"
	printf '   %-24s %s\n' "Message-ID:" "$id"
	printf '   %-24s %s\n' "X-Halo-Conversation-Id:" "$(header_of "$f" X-Halo-Conversation-Id)"
	printf '   %-24s %s\n' "X-Halo-Status:" "$(header_of "$f" X-Halo-Status)"
	job=$(ctl queue | awk -v id="$id" '$NF == id { print $1 " (" $2 ")" }' | tr '\n' ' ')
	printf '   %-24s %s\n' "job:" "${job:-none}"
	echo
}

demo_send "New mail from a contact" "$MAIL/01-new.eml" alice@client.example support@acme.example
demo_send "Reply (In-Reply-To): same conversation" "$MAIL/02-reply.eml" alice@client.example support@acme.example
demo_send "New Outlook mail (Thread-Index)" "$MAIL/03-outlook-new.eml" bob@client.example support@acme.example
demo_send "Outlook reply: Thread-Index only, same conversation" "$MAIL/04-outlook-reply.eml" bob@client.example support@acme.example
demo_send "Out-of-office auto-reply: skipped" "$MAIL/05-autoreply.eml" carol@client.example support@acme.example
demo_send "Bounce (null sender, DSN): skipped" "$MAIL/06-bounce.eml" "<>" support@acme.example
demo_send "No Message-ID (one is added by the MTA or by us)" "$MAIL/07-no-msgid.eml" dave@client.example support@acme.example
demo_send "Forged X-Halo-* headers: replaced" "$MAIL/09-forged.eml" mallory@client.example support@acme.example
demo_send "The first mail again: duplicate, no second job" "$MAIL/01-new.eml" alice@client.example support@acme.example
demo_send "Mail to an unrouted address: untouched" "$MAIL/08-unrouted.eml" alice@client.example someone@elsewhere.example

# let the worker finish, then show what it made in Halo
i=0
while [ $i -lt 100 ] && ctl queue | awk '$2 == "queued" || $2 == "running"' | grep -q .; do
	sleep 0.1
	i=$((i + 1))
done
echo "== In Halo (the simulator): tickets and actions the worker made"
sim GET /_sim/state | python3 -c '
import json, sys
s = json.load(sys.stdin)
acts = [a for a in s["actions"] if (a.get("_sim") or {}).get("via") == "POST /api/Actions"]
for t in s["tickets"]:
    print("   ticket %d  %-40s client %s  from %s" % (t["id"], repr(t.get("summary"))[:40],
          t.get("client_id"), t.get("internet_message_id")))
    for a in acts:
        if a["ticket_id"] == t["id"]:
            print("      action %d  %-14s from %-24s %s" % (a["id"], a.get("outcome"),
                  a.get("emailfrom"), a.get("internet_message_id")))
print("   %d Halo requests in all (%s)" % (s["requests"]["api"],
      ", ".join("%s: %d" % kv for kv in sorted(s["requests"]["by_route"].items()))))
'
echo
echo "== halo-milterctl queue"
ctl queue
echo
echo "== halo-milterctl show 1"
ctl show 1
if [ "${KEEP:-0}" = 1 ]; then
	trap - EXIT
	daemon_stop; sim_stop; harness_cleanup
	echo "kept $T"
fi
