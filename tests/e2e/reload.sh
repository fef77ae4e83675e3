#!/bin/sh
# reload.sh - live reload end to end: swaks -> private Postfix -> halo-milter
# (milter + worker) -> the Halo simulator, while the configuration changes
# under SIGHUP. Checks that a route changed live takes effect for the next
# mail, that mail in flight across many reloads is logged exactly once, that
# a broken file is refused and the old configuration keeps working, that a
# restart-only key is reported, that systemd hears RELOADING=1 then READY=1,
# and that SIGTERM still stops the daemon cleanly.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-reload.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
NOTIFY_PID=
notify_stop() { [ -z "$NOTIFY_PID" ] || kill "$NOTIFY_PID" 2>/dev/null; NOTIFY_PID=; }
trap 'daemon_stop; sim_stop; notify_stop; harness_cleanup' EXIT
trap 'daemon_stop; sim_stop; notify_stop; harness_cleanup; trap - EXIT; exit 130' INT TERM
SUITE=reload
. "$TOP/tests/lib/check.sh"

. "$HERE/sim.sh"
sim_start || exit 1

web_ports
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state

# write_conf A|B [KEY=VALUE...]: the configuration, routes as in layout A
# (support@ in tenant sim, helpdesk@ unrouted) or B (both in tenant sim2,
# another ticket type); KEY=VALUE as sim_conf. "user = root": the tests run
# as root, and -t (so a reload) refuses root without user. SIM_HALO: tenant
# sim's halo_url (the simulator by another name, section 7).
write_conf() {
	_wc_layout=$1
	shift
	{ sim_conf user=root "web_listen=127.0.0.1:$WEB_PORT" "public_url=$WEB" \
	    "$@" | sed "s|^halo_url = .*|halo_url = ${SIM_HALO:-$SIM}|"
	  # one sender makes all the tickets here: no loop cap in the way
	  echo "loop_max_creates = 1000"
	  [ "$_wc_layout" = A ] &&
	    echo "route = support@msp.example intake agent=alice@msp.example"
	  cat <<EOC

[tenant sim2]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 2
loop_max_creates = 1000
EOC
	  [ "$_wc_layout" = B ] && cat <<EOC
route = support@msp.example intake agent=bob@msp.example
route = helpdesk@msp.example intake agent=bob@msp.example
EOC
	} > "$MILTER_CONF.new"
	mv "$MILTER_CONF.new" "$MILTER_CONF"
}

# systemd's notify socket, played by a datagram socket that writes down
# every message it gets
python3 - "$T/notify.sock" "$T/notify.log" <<'EOP' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as log:
    while True:
        log.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        log.flush()
EOP
NOTIFY_PID=$!
_i=0
while [ ! -S "$T/notify.sock" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done

write_conf A
# halo-milterctl reads a copy: the daemon's file is broken on purpose below
cp "$MILTER_CONF" "$T/ctl.conf"
ctl() { "$CTL" -c "$T/ctl.conf" "$@"; }
sink_start "$T/sink" || exit 1
NOTIFY_SOCKET=$T/notify.sock daemon_start || exit 1
pid0=$MILTER_PID
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
token_for bob@msp.example | ctl token import bob@msp.example sim2 > /dev/null

# wait_log N TEXT: until the daemon log has N lines with TEXT (10 s)
wait_log() {
	_l_i=0
	while [ $_l_i -lt 100 ]; do
		[ "$(grep -cF "$2" "$T/daemon.log")" -ge "$1" ] && return 0
		sleep 0.1
		_l_i=$((_l_i + 1))
	done
	echo "    only $(grep -cF "$2" "$T/daemon.log") of $1 lines '$2'" >&2
	return 1
}
# mail TO MSGID [IN-REPLY-TO]: one mail from a known contact
mail() {
	{ printf 'From: Ann <ann@acme.example>\nTo: %s\nSubject: reload %s\n' "$1" "$2"
	  printf 'Date: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: %s\n' "$2"
	  [ -z "${3:-}" ] || printf 'In-Reply-To: %s\n' "$3"
	  printf '\nbody\n'; } > "$T/m.$2.eml"
	send_mail "$T/m.$2.eml" ann@acme.example "$1"
}
# job_tenant MSGID: the tenant of the one job for MSGID ("" when none)
job_tenant() { ctl queue | awk -v id="$1" '$NF == id { print $4 }'; }
# ticket_type MSGID: the ticket types Halo has for MSGID, as a list
ticket_type() { simq "[t['tickettype_id'] for t in s['tickets'] if t.get('internet_message_id') == '$1']"; }
reloads=0
# hup: one SIGHUP; wait until the daemon has finished with it (in use or
# refused)
hup() {
	reloads=$((reloads + 1))
	kill -HUP "$MILTER_PID"
	_r_i=0
	while [ $_r_i -lt 100 ]; do
		[ "$(grep -c "reload: configuration generation [0-9]* in use\|reload: refused:" "$T/daemon.log")" -ge "$reloads" ] &&
		    return 0
		sleep 0.1
		_r_i=$((_r_i + 1))
	done
	echo "    reload $reloads did not finish" >&2
	return 1
}
generation() { sed -n 's/.*reload: configuration generation \([0-9]*\) in use.*/\1/p' "$T/daemon.log" | tail -1; }

# --- 1. layout A: support@ in tenant sim, helpdesk@ unrouted ----------------
mail support@msp.example "<a1@acme.example>"
mail helpdesk@msp.example "<a2@acme.example>"
check "before: two mails delivered" pf_wait_delivered "$T/sink" 2 60
wait_jobs 1
check "before: support@ logged in tenant sim (ticket type 1)" \
    eq "$(job_tenant "<a1@acme.example>") $(ticket_type "<a1@acme.example>")" "sim [1]"
check "before: helpdesk@ is not routed (no job)" eq "$(job_tenant "<a2@acme.example>")" ""
check "systemd told READY=1 at start" grep -q "^READY=1" "$T/notify.log"

# --- 2. SIGHUP to layout B: the routes move for the next mail --------------
write_conf B
hup
check "SIGHUP: the new configuration is generation 2" wait_log 1 "reload: configuration generation 2 in use: 2 routes in 2 tenants"
check "SIGHUP: same process" eq "$MILTER_PID" "$pid0"
check "SIGHUP: still running" kill -0 "$MILTER_PID"
check "SIGHUP: socket still listening" _h_listening "$MILTER_PORT"
check "SIGHUP: not logged as a stop" sh -c "! grep -q 'stopping' '$T/daemon.log'"
check "systemd told RELOADING=1 with MONOTONIC_USEC, then READY=1" \
    sh -c "grep -n '' '$T/notify.log' | grep -A1 'RELOADING=1 STATUS=reloading MONOTONIC_USEC=[0-9]' | grep -q 'READY=1'"
mail support@msp.example "<b1@acme.example>"
mail helpdesk@msp.example "<b2@acme.example>"
check "after: two more mails delivered" pf_wait_delivered "$T/sink" 4 60
wait_jobs 3
check "after: support@ moved to tenant sim2 (ticket type 2)" \
    eq "$(job_tenant "<b1@acme.example>") $(ticket_type "<b1@acme.example>")" "sim2 [2]"
check "after: helpdesk@ now routed to sim2 (ticket type 2)" \
    eq "$(job_tenant "<b2@acme.example>") $(ticket_type "<b2@acme.example>")" "sim2 [2]"
f=$(delivered_with "<b2@acme.example>")
check "after: the delivered mail says so" \
    sh -c "grep -q 'X-Halo-Status: queued; tenant=sim2' '$f'"

# --- 3. mail in flight while SIGHUPs flip the layout -----------------------
N=24
(
	i=1
	while [ $i -le $N ]; do
		mail support@msp.example "<f$i@acme.example>" || echo "send $i failed" >> "$T/flight.err"
		i=$((i + 1))
	done
) &
sender=$!
flips=0
while kill -0 "$sender" 2>/dev/null; do
	if [ $((flips % 2)) -eq 0 ]; then write_conf A; else write_conf B; fi
	flips=$((flips + 1))
	reloads=$((reloads + 1))
	kill -HUP "$MILTER_PID"
	sleep 0.15
done
wait "$sender"
sleep 1
# SIGHUPs sent while a reload ran were merged into the next one
reloads=$(grep -c "reload: reading" "$T/daemon.log")
check "in flight: every mail accepted by Postfix" test ! -s "$T/flight.err"
check "in flight: $flips reloads while sending, the daemon lived" kill -0 "$MILTER_PID"
check "in flight: all $N delivered, none twice" pf_wait_delivered "$T/sink" $((4 + N)) 120
check "in flight: Postfix queue empty (nothing deferred)" pf_wait_queue_empty 30
wait_jobs $((3 + N))
lost=0 twice=0
i=1
while [ $i -le $N ]; do
	n=$(ctl queue | awk -v id="<f$i@acme.example>" '$NF == id' | wc -l)
	h=$(simq "ids.count('<f$i@acme.example>')")
	[ "$n" -eq 1 ] && [ "$h" -eq 1 ] || { echo "    <f$i@acme.example>: $n jobs, $h in Halo" >&2; lost=$((lost + 1)); }
	i=$((i + 1))
done
check "in flight: each of the $N mails has one job and is in Halo exactly once" eq "$lost" 0
check "in flight: every job done" \
    eq "$(ctl queue | awk '$NF ~ /^<f[0-9]+@acme.example>$/ && $2 == "done"' | wc -l)" "$N"
check "in flight: both layouts were in use (tenants sim and sim2)" \
    eq "$(ctl queue | awk '$NF ~ /^<f/ { print $4 }' | sort -u | tr '\n' ' ')" "sim sim2 "

# settle on B again for what follows
write_conf B
hup
gen_good=$(generation)

# --- 4. a broken file is refused; the running configuration stays ---------
write_conf A
echo "bogus_key = 1" >> "$MILTER_CONF"
hup
check "broken: refusal logged" wait_log 1 "reload: refused: $MILTER_CONF has 1 error; configuration generation $gen_good stays in use"
check "broken: the error is named" grep -q "reload: $MILTER_CONF:[0-9]*: unknown key 'bogus_key'" "$T/daemon.log"
check "broken: still running" kill -0 "$MILTER_PID"
mail support@msp.example "<c1@acme.example>"
check "broken: mail delivered" pf_wait_delivered "$T/sink" $((5 + N)) 60
wait_jobs $((4 + N))
check "broken: the old routes still apply (sim2, not layout A's sim)" \
    eq "$(job_tenant "<c1@acme.example>") $(ticket_type "<c1@acme.example>")" "sim2 [2]"
# what -t refuses beyond parsing: plain http to a non-loopback Halo
write_conf A
sed -i 's|^halo_url = http://127.0.0.1|halo_url = http://halo.example|' "$MILTER_CONF"
hup
check "fails -t: refused" wait_log 2 "reload: refused: $MILTER_CONF"
check "fails -t: the reason is named" grep -q "reload: $MILTER_CONF: tenant 'sim': halo_url http://halo.example.* is plain http://" "$T/daemon.log"
# a tenant removed
write_conf B
sed -i '/^\[tenant sim2\]/,$d' "$MILTER_CONF"
hup
check "tenant removed: refused, the reason named" wait_log 1 "reload: the [tenant] sections changed"
check "refusals: the generation did not move" eq "$(generation)" "$gen_good"

# --- 5. a restart-only key: reported, the rest applies ---------------------
write_conf A workers=3 socket=inet:1@127.0.0.1
hup
check "restart-only: workers reported" wait_log 1 "reload: workers changed: needs a restart"
check "restart-only: socket reported" grep -q "reload: socket changed: needs a restart" "$T/daemon.log"
check "restart-only: the reload still applies" wait_log 1 "reload: configuration generation $((gen_good + 1)) in use: 1 route in 2 tenants; some keys need a restart"
check "restart-only: the socket stays where it was" _h_listening "$MILTER_PORT"
mail support@msp.example "<d1@acme.example>"
check "restart-only: mail delivered" pf_wait_delivered "$T/sink" $((6 + N)) 60
wait_jobs $((5 + N))
check "restart-only: layout A's route applies (sim)" eq "$(job_tenant "<d1@acme.example>")" sim

# --- 6. log_level applies live (a reply's thread match logs at debug) -------
before=$(grep -c "debug:" "$T/daemon.log")
write_conf A log_level=debug
hup
mail support@msp.example "<e1@acme.example>" "<d1@acme.example>"
pf_wait_delivered "$T/sink" $((7 + N)) 60 > /dev/null
wait_jobs $((6 + N)) > /dev/null
check "log_level = debug applies without a restart" test "$(grep -c "debug:" "$T/daemon.log")" -gt "$before"

# --- 7. the web server reads tenants from the current generation ----------
code=$(ctl enroll carol@msp.example sim | sed -n 's/^code: \([^ ]*\) .*/\1/p')
check "web: the enrollment page names tenant sim's Halo" \
    sh -c "curl -s '$WEB/enroll?code=$code' | grep -qF '<dd>$SIM (tenant sim)'"
SIM_HALO=http://localhost:$SIM_PORT
write_conf A log_level=debug
hup
check "web: after a reload it names the new halo_url" \
    sh -c "curl -s '$WEB/enroll?code=$code' | grep -qF '<dd>$SIM_HALO (tenant sim)'"
check "web: still listening" _h_listening "$WEB_PORT"

# --- 8. SIGTERM still stops cleanly --------------------------------------------
kill -TERM "$MILTER_PID"
wait "$MILTER_PID"
rc=$?
MILTER_PID=
check "SIGTERM after $reloads reloads: exit status 0" eq "$rc" 0
check "SIGTERM: 'stopping' logged" grep -q "info: stopping" "$T/daemon.log"
check "systemd told STOPPING=1" grep -q "^STOPPING=1" "$T/notify.log"

if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$T/daemon.log"; then
	not_ok "sanitizer report in daemon log"
	grep -A20 "Sanitizer\|runtime error" "$T/daemon.log" | head -40
fi
if summary; then
	daemon_stop; sim_stop; notify_stop; harness_cleanup; trap - EXIT
	rm -rf "$T"
	exit 0
fi
echo "    (kept $T; daemon log tail:)"
tail -30 "$T/daemon.log" | sed 's/^/    /'
trap - EXIT
daemon_stop; sim_stop; notify_stop; harness_cleanup
exit 1
