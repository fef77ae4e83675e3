#!/bin/sh
# soak/run.sh - mail flows through a private Postfix and halo-milter into the
# Halo simulator for SOAK_SECONDS while faults are injected at random; then
# everything must drain and every message must be where it belongs, once.
#
#   SOAK_SECONDS  how long mail flows and faults happen (default 600)
#   SOAK_SEED     replay a run (default: random; printed at the start)
#   SOAK_RATE     new messages a second (default 3)
#   SOAK_DRAIN    longest wait for Postfix's queue and the job queue to
#                 empty afterwards, seconds (default 300: a job that met
#                 fault after fault may be in a backoff of minutes)
#   SOAK_WORKERS  worker threads (default 2)
#   SOAK_NODES    1 (default: one daemon on SQLite) or 2: two MX nodes, each
#                 a daemon behind its own private Postfix, sharing one private
#                 PostgreSQL store (scripts/pg.sh; job_lease = 40); the sender
#                 spreads its attempts over both Postfixes, each SIGKILL hits
#                 one node (the first round kills each once), a reload
#                 reloads both; the checks are the same, the store read with
#                 psql, and the last line is "soak-pg: N passed, M failed"
#
# The faults (tests/soak/soak.py plan): Halo 5xx bursts, 429 storms (Halo's
# rate window shrunk), connections dropped after Halo applied a POST (and
# before), 401 mid-session, short-lived access tokens (so refresh-token
# rotation runs again and again), an operator re-importing the agents'
# tokens, the authorisation server down (503 or hanging up) while access
# tokens are revoked, slow Halo, SIGKILL of the daemon (sometimes while a
# slow request is in flight) and a restart after a random pause, and
# "postfix reload".  The simulator rotates the refresh token on every refresh.
# Postfix runs with milter_default_action = tempfail: while the daemon is
# down the sender gets 4xx and sends again, as an MTA would.
#
# The checks (soak.py verify, plus the daemon's health here) end in one line
# "soak: N passed, M failed".  On failure the directory is kept.
#
# Layout: one node keeps everything in the run's directory R; two nodes keep
# each node's Postfix, configuration, state and daemon.log in R/a and R/b,
# the PostgreSQL server in R/pg (halted, not removed, when the run is kept).
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_RATE=${SOAK_RATE:-3}
SOAK_DRAIN=${SOAK_DRAIN:-300}
SOAK_WORKERS=${SOAK_WORKERS:-2}
SOAK_NODES=${SOAK_NODES:-1}
case $SOAK_NODES in
1)	NAME=soak NODES=a ;;
2)	NAME=soak-pg NODES="a b" ;;
*)	echo "soak: SOAK_NODES must be 1 or 2"; echo "soak: 0 passed, 1 failed"; exit 1 ;;
esac
if [ -z "${SOAK_SEED:-}" ]; then
	SOAK_SEED=$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$NAME: needs root (it runs a private Postfix)"
	echo "$NAME: 0 passed, 1 failed"
	exit 1
fi
R=$(mktemp -d "${TMPDIR:-/tmp}/halo-$NAME.XXXXXX")
chmod 755 "$R"
T=$R
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/daemon.sh"
. "$TOP/tests/e2e/sim.sh"
# private copies of the binaries: a rebuild of $BUILD during the run must not
# make a restart after SIGKILL fail
if ! { mkdir -p "$R/bin" && cp "$DAEMON" "$CTL" "$R/bin/"; }; then
	echo "$NAME: cannot copy $DAEMON and $CTL (make all first)"
	echo "$NAME: 0 passed, 1 failed"
	exit 1
fi
DAEMON=$R/bin/halo-milter
CTL=$R/bin/halo-milterctl

# --- the nodes: "node X" swaps X's state in (tests/e2e/nodes.sh).  One
# node: node a, in R itself
. "$TOP/tests/e2e/nodes.sh"
if [ "$SOAK_NODES" -eq 1 ]; then
	a_T=$R
else
	a_T=$R/a
	b_T=$R/b
	mkdir -p "$a_T" "$b_T"
fi
PG=
SENDER_PID=
stop_all() {
	if [ -n "$SENDER_PID" ]; then
		kill "$SENDER_PID" 2>/dev/null
		wait "$SENDER_PID" 2>/dev/null
		SENDER_PID=
	fi
	for _n in $NODES; do
		node $_n
		daemon_stop
		pf_stop
	done
	sim_stop
	sink_stop
	# halted, not removed: a kept run keeps its store
	[ -n "$PG" ] && sh "$TOP/scripts/pg.sh" halt "$R/pg"
	PG=
}
trap 'stop_all' EXIT
trap 'stop_all; trap - EXIT; echo "$NAME: interrupted, kept $R"; exit 130' INT TERM
SUITE=$NAME
. "$TOP/tests/lib/check.sh"
setup_failed() {
	echo "$NAME: set-up failed: $1 (kept $R)"
	echo "$NAME: 0 passed, 1 failed"
	trap - EXIT
	stop_all
	exit 1
}
# now: seconds since the start, one decimal
now() { awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
sleep_until() {
	_d=$(awk -v s="$START" -v o="$1" -v n="$(date +%s.%N)" \
	    'BEGIN { d = s + o - n; if (d < 0) d = 0; printf "%.2f", d }')
	sleep "$_d"
}
flog() { echo "$(now) $*" >> "$R/faults.log"; }

RATE_NORMAL='{"limit": 200, "window": 10}'
CLEAR="{\"status_burst\": null, \"latency_ms\": 0, \"drop_after_request\": 0,
 \"drop_before_apply\": 0, \"unauthorized_next\": 0, \"auth_down\": false,
 \"rate_limit\": $RATE_NORMAL, \"token_lifetime\": 3600}"
simf() { sim POST /_sim/faults "$1" > /dev/null || echo "$(now) simulator refused $1" >> "$R/faults.log"; }

echo "$NAME: $SOAK_SECONDS s, seed $SOAK_SEED (SOAK_SEED=$SOAK_SEED to replay), $SOAK_RATE msg/s, $SOAK_WORKERS workers, $SOAK_NODES node(s), in $R"

# --- set-up: simulator, sink, (PostgreSQL,) daemons, Postfixes, tokens ------
sim_start || setup_failed "simulator"
simf "$CLEAR"
sink_start "$R/sink" || setup_failed "smtp-sink"
if [ "$SOAK_NODES" -gt 1 ]; then
	PG=$(sh "$TOP/scripts/pg.sh" start "$R/pg") || { PG=; setup_failed "PostgreSQL"; }
fi
# node_conf: the current node's configuration (two nodes: the shared store,
# a lease well above the 35 s a posting job holds it for)
node_conf() {
	MILTER_PORT=$(pf_free_port)
	MILTER_CONF=$T/halo-milter.conf
	MILTER_STATE=$T/state
	{ echo "# generated by tests/soak/run.sh"
	if [ -n "$PG" ]; then
		sim_conf "workers=$SOAK_WORKERS" "store=$PG" job_lease=40
	else
		sim_conf "workers=$SOAK_WORKERS"
	fi
	cat <<EOC
cf_message_id = CFMilterKey
halo_senders = notify@msp.example
rate_limit = 150
rate_window = 10
loop_max_creates = 100000
route = support@msp.example intake agent=alice@msp.example
route = bob@msp.example thread-only agent=recipient
EOC
	} > "$MILTER_CONF"
}
for n in $NODES; do
	node $n
	node_conf
	if [ $n != a ]; then
		# one sealing key for every node: node a made it
		mkdir -p "$MILTER_STATE" && chmod 700 "$MILTER_STATE" &&
		    cp -p "$a_MILTER_STATE/seal.key" "$MILTER_STATE/seal.key" ||
		    setup_failed "seal.key for node $n"
	fi
	daemon_start || setup_failed "halo-milter (node $n)"
	pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || setup_failed "postfix (node $n)"
	if [ $n = a ]; then
		# one store: node a's import serves every node
		token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null ||
		    setup_failed "token import"
		token_for bob@msp.example | ctl token import bob@msp.example sim > /dev/null ||
		    setup_failed "token import"
	fi
done
node a
PORTS=
for n in $NODES; do eval "PORTS=\${PORTS:+\$PORTS,}\$${n}_PF_PORT"; done
python3 "$HERE/soak.py" plan "$SOAK_SEED" "$SOAK_SECONDS" "$SOAK_NODES" > "$R/faults.plan" ||
    setup_failed "fault plan"
: > "$R/faults.log"

# --- mail and faults -------------------------------------------------------
START=$(date +%s.%N)
python3 "$HERE/soak.py" send "$SOAK_SEED" "$SOAK_SECONDS" "$SOAK_RATE" 90 "$PORTS" \
    "$CTL -c $a_MILTER_CONF" "$R/manifest.jsonl" > "$R/sender.out" 2>&1 &
SENDER_PID=$!
crashes=0
restart_failed=0
# start_again: restart after a kill (or a crash); a failed start is counted
start_again() {
	if ! daemon_start < /dev/null; then
		restart_failed=$((restart_failed + 1))
		flog "RESTART-FAILED"
		wait "$MILTER_PID" 2>/dev/null
		MILTER_PID=
	fi
}
# alive: the daemon must not have died unless we killed it (every node)
alive() {
	for _n in $NODES; do
		node $_n
		if [ -z "$MILTER_PID" ]; then
			start_again
		elif ! kill -0 "$MILTER_PID" 2>/dev/null; then
			crashes=$((crashes + 1))
			flog "CRASH the daemon died on its own (node $_n)"
			wait "$MILTER_PID" 2>/dev/null
			MILTER_PID=
			start_again
		fi
	done
	node a
}
while read -r at name a1 a2 a3 a4; do
	sleep_until "$at"
	alive
	flog "$name ${a1:-} ${a2:-} ${a3:-} ${a4:-}"
	case $name in
	5xx)	simf "{\"status_burst\": {\"status\": $a1, \"count\": $a2}}" ;;
	429)	simf "{\"rate_limit\": {\"limit\": $a1, \"window\": $a2}, \"retry_after\": true}"
		sleep "$a3"
		simf "{\"rate_limit\": $RATE_NORMAL}" ;;
	drop-after)
		simf "{\"drop_after_request\": $a1}" ;;
	drop-before)
		simf "{\"drop_before_apply\": $a1}" ;;
	401)	simf "{\"unauthorized_next\": $a1, \"revoke_access_tokens\": true}" ;;
	expiry)	simf "{\"token_lifetime\": $a1, \"revoke_access_tokens\": true}"
		sleep "$a2"
		simf '{"token_lifetime": 3600}' ;;
	reimport)
		token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null ||
		    flog "token import failed"
		token_for bob@msp.example | ctl token import bob@msp.example sim > /dev/null ||
		    flog "token import failed" ;;
	auth-down)
		if [ "$a1" = close ]; then mode='"close"'; else mode=true; fi
		simf "{\"auth_down\": $mode, \"revoke_access_tokens\": true}"
		sleep "$a2"
		simf '{"auth_down": false}' ;;
	latency)
		simf "{\"latency_ms\": $a1}"
		sleep "$a2"
		simf '{"latency_ms": 0}' ;;
	kill)	[ "$a2" = slow ] && simf '{"latency_ms": 1500}'
		sleep "$a3"
		node "${a4:-a}"
		daemon_stop KILL
		[ "$a2" = slow ] && simf '{"latency_ms": 0}'
		sleep "$a1"
		start_again
		node a ;;
	reload)	for n in $NODES; do
			node $n
			pf_reload || flog "postfix reload failed (node $n)"
		done
		node a ;;
	esac
done < "$R/faults.plan"
sleep_until "$SOAK_SECONDS"
alive

# --- drain: faults off, the daemon up, everything delivered and logged ----
simf "$CLEAR"
flog "end (faults cleared)"
alive
wait "$SENDER_PID"
SENDER_PID=
cat "$R/sender.out"
# queued: the messages in every node's Postfix queue
queued() {
	_q=0
	for _n in $NODES; do
		node $_n
		_q=$((_q + $(pf_queue_count)))
	done
	node a
	echo $_q
}
flush_all() {
	for _n in $NODES; do
		node $_n
		pf_flush 2>/dev/null
	done
	node a
}
drain_start=$(date +%s)
settled=no
while [ $(( $(date +%s) - drain_start )) -lt "$SOAK_DRAIN" ]; do
	alive
	busy=$(ctl stats | awk '$1 == "queued" || $1 == "running" || $1 == "waiting" { n += $2 } END { print n + 0 }')
	if [ "$(queued)" -eq 0 ] && [ "$busy" -eq 0 ]; then
		settled=yes
		break
	fi
	[ $(( ($(date +%s) - drain_start) % 5 )) -eq 0 ] && flush_all
	sleep 1
done
echo "$NAME: drained in $(( $(date +%s) - drain_start )) s after the end of mail (at most $SOAK_DRAIN)"
if [ $settled = yes ]; then ok "Postfix's queue and the job queue drained"; else
	not_ok "Postfix's queue and the job queue drained (queue $(queued); $(ctl stats | tr '\n' ' '))"
fi
if [ $crashes -eq 0 ]; then ok "the daemon never died on its own"; else
	not_ok "the daemon died on its own $crashes times (see daemon.log)"
fi
if [ $restart_failed -eq 0 ]; then ok "the daemon came back after every kill"; else
	not_ok "the daemon failed to restart $restart_failed times"
fi
# a clean stop: the leak checker runs at exit in the sanitizer build
LOGS=
MAILLOGS=
for n in $NODES; do
	node $n
	daemon_stop
	LOGS="$LOGS $T/daemon.log"
	MAILLOGS=${MAILLOGS:+$MAILLOGS,}$(pf_maillog)
done
node a
# shellcheck disable=SC2086  # the logs' list
if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" $LOGS; then
	not_ok "sanitizer report in the daemon log"
	grep -A20 "Sanitizer\|runtime error" $LOGS | head -40
else
	ok "no sanitizer report in the daemon log"
fi
# shellcheck disable=SC2086
if grep -qi "bearer\|refresh_token=\|access_token" $LOGS; then
	not_ok "a token appears in the daemon log"
else
	ok "no token in the daemon log"
fi
STORE=${PG:-$MILTER_STATE/halo-milter.db}
SOAK_NAME=$NAME python3 "$HERE/soak.py" verify "$R" "$SIM" "$SINK_PORT" "$SINK_DIR" "$MAILLOGS" \
    "$STORE" "$R/faults.log" "$R/manifest.jsonl" "$R/verify.counts"
if [ -s "$R/verify.counts" ]; then
	read -r vp vf < "$R/verify.counts"
	pass=$((pass + vp))
	fail=$((fail + vf))
else
	not_ok "verification did not run"
fi
# shellcheck disable=SC2086
echo "$NAME: seed $SOAK_SEED, $SOAK_SECONDS s; daemon log $(cat $LOGS | grep -c .) lines, $(cat $LOGS | grep -c 'will be retried') retries"
echo "$NAME: $pass passed, $fail failed"
if [ $fail -ne 0 ]; then
	if [ -n "$PG" ]; then
		echo "    (kept $R: faults.log, manifest.jsonl, sim.log; a/ and b/: daemon.log, pf/maillog; pg/: the store, halted)"
	else
		echo "    (kept $R: faults.log, manifest.jsonl, daemon.log, pf/maillog, sim.log)"
	fi
	trap - EXIT
	stop_all
	exit 1
fi
trap - EXIT
stop_all
rm -rf "$R"
