#!/bin/sh
# demo.sh - the main job: halo-milter behind a private Postfix on loopback.
# Sends the sample mail in tests/e2e/mail (new mail, a reply, an Outlook
# thread, an auto-reply, a bounce, mail without Message-ID, a forged
# header, a duplicate) and prints for each what the gateway stamped and
# the job it queued. Everything runs in a temporary directory and stops at
# the end; set KEEP=1 to keep the directory for a look around.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-demo.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
trap 'daemon_stop; harness_cleanup' EXIT
trap 'daemon_stop; harness_cleanup; trap - EXIT; exit 130' INT TERM
MAIL="$HERE/mail"

echo "== halo-milter demo (state in $T)"
sink_start "$T/sink" || exit 1
daemon_start || exit 1
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

echo "== halo-milterctl queue"
ctl queue
echo
echo "== halo-milterctl show 1"
ctl show 1
if [ "${KEEP:-0}" = 1 ]; then
	trap - EXIT
	daemon_stop; harness_cleanup
	echo "kept $T"
fi
