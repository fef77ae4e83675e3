#!/bin/sh
# run.sh - "make bench": halo-milter's benchmarks. Prints a table and writes
# bench/results.json. Not a test: nothing here passes or fails on a figure
# (the exit status is non-zero only when a benchmark could not run).
#
#   1. throughput   smtpload.py -> private Postfix -> smtp-sink, 20
#                   connections (then 1), mailgen.py's mixed mail, in the
#                   same run: Postfix alone, + nullmilter.c (a do-nothing
#                   milter: what any milter costs), + halo-milter (workers =
#                   0) on a unix socket, + halo-milter on a TCP socket
#   2. eom          end-of-message latency inside the milter (milterclient.py,
#                   unix socket): 10 KB, 100 KB, 10 MB; 100 KB with 20
#                   concurrent sessions; 100 KB over TCP too
#   3. rss          daemon peak RSS (VmHWM), 50 concurrent sessions of 20 MB,
#                   then of 5 MB (fresh daemon each)
#   4. requests     Halo requests per logged message over a realistic mix
#                   (mix.py: Postfix -> milter, workers = 8 -> Halo simulator,
#                   reached over https through tlsproxy.py, which counts the
#                   TLS handshakes; BENCH_TLS=0: plain http)
#   5. end-to-action  end of message to the action in Halo, simulator adding
#                   50 ms per request: steady 5 msg/s (the goal), and a burst
#   6. log rss      daemon peak RSS (VmHWM) while its workers log one mail
#                   with attachments into the simulator: 1, 20, 50 MB
#                   (fresh daemon each), at most 4 MiB decoded per
#                   attachment (1, 4 and 10 of them), max_attachments_total
#                   raised so that every one is uploaded, which the
#                   simulator confirms (name, size, SHA-256)
#   7. postgresql   the PostgreSQL store (a private local server, scripts/pg.sh,
#                   Unix socket, fsync on): end-of-message latency at 100 KB
#                   with 1 and 20 concurrent sessions, and the throughput
#                   pass of 1 (20 connections) with store = that server
#
# Environment: BENCH_RUNS (default 3; 1 with BENCH_QUICK=1), BENCH_QUICK=1
# (one run, smaller counts, under 3 minutes), BENCH_OUT (default bench/results.json),
# BENCH_ONLY=pg (only section 7, with the Postfix-alone and SQLite passes of
# 1 at 20 connections beside it), BENCH_ONLY=rss (only section 6),
# BENCH_ONLY=mix (only sections 4 and 5), BENCH_WORKERS (the daemon's
# workers in sections 4 to 6, default 8 as the daemon), BENCH_PG=0 (no section 7),
# BUILD. Needs root (it runs a private Postfix, like tests/e2e).
# shellcheck disable=SC2119  # daemon_stop takes an optional signal
PYTHONDONTWRITEBYTECODE=1          # no __pycache__ in tests/bench
export PYTHONDONTWRITEBYTECODE
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 1 ] || QUICK=0
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1}
	TP_N=500 TP1_N=100 MIX_N=100 MIX_WAVES=4 LAT_M=50 EOM_TCP_COUNT=100
else
	RUNS=${BENCH_RUNS:-3}
	TP_N=2000 TP1_N=200 MIX_N=200 MIX_WAVES=5 LAT_M=100 EOM_TCP_COUNT=200
fi
EOM_PG_COUNT=200
TP_CONC=20
EOM_SIZES="10240:200 102400:200 10485760:20"
RSS_SESSIONS=50
RSS_SIZES="20971520 5242880"
LAT_RATE=5           # messages/s in the end-to-action run
SIM_LATENCY_MS=50
OUT=${BENCH_OUT:-$TOP/bench/results.json}
TLS=${BENCH_TLS:-1}
LOGRSS_SIZES="1048576 20971520 52428800"
EOM_CONC=20
ONLY=${BENCH_ONLY:-}
case $ONLY in
""|pg|rss|mix) ;;
*) echo "bench: BENCH_ONLY is pg, rss, mix or unset" >&2; exit 2 ;;
esac
BENCH_PG=${BENCH_PG:-1}
[ "$ONLY" = pg ] && BENCH_PG=1
[ "$ONLY" = rss ] && BENCH_PG=0
[ "$ONLY" = mix ] && BENCH_PG=0
WORKERS=${BENCH_WORKERS:-8}     # the daemon's workers in sections 4 to 6 (its default)

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (runs a private Postfix, like the e2e tests)" >&2
	exit 1
fi
for f in "$TOP/$BUILD/halo-milter" "$TOP/$BUILD/halo-milterctl"; do
	[ -x "$f" ] || { echo "bench: $f missing (make all)" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/halo-bench.XXXXXX")
# shellcheck source=tests/e2e/lib.sh
. "$TOP/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/daemon.sh
. "$TOP/tests/e2e/daemon.sh"
# shellcheck source=tests/e2e/sim.sh
. "$TOP/tests/e2e/sim.sh"
RES=$T/results.jsonl
: > "$RES"

PROXY_PID=
proxy_stop() {
	[ -n "$PROXY_PID" ] || return 0
	kill "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=
}
# tls_stat KEY: a figure from tlsproxy.py's stats file
tls_stat() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/tls/stats.json" "$1"
}

NULL_PID=
null_stop() {
	[ -n "$NULL_PID" ] || return 0
	kill "$NULL_PID" 2>/dev/null
	wait "$NULL_PID" 2>/dev/null
	NULL_PID=
}
PG=
cleanup() {
	null_stop
	proxy_stop
	daemon_stop
	sim_stop
	harness_cleanup
	[ -n "$PG" ] && sh "$TOP/scripts/pg.sh" stop "$T/pg"
	PG=
}
trap 'cleanup' EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

say() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { say "ERROR: $*"; say "kept $T"; cleanup; trap - EXIT; exit 1; }
# record BENCH RUN JSON: one result line
record() { printf '{"bench": "%s", "run": %s, "data": %s}\n' "$1" "$2" "$3" >> "$RES"; }

# bench_sink_start: smtp-sink that accepts and forgets (no -d: 2000 x 170 KB
# written a second time to disk would be measured too). Sets SINK_PORT/PID.
bench_sink_start() {
	_h_init || return 1
	SINK_PORT=$(pf_free_port) || return 1
	smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 256 > "$T/sink.log" 2>&1 &
	SINK_PID=$!
	_b_i=0
	while [ $_b_i -lt 100 ]; do
		_h_listening "$SINK_PORT" && return 0
		sleep 0.1
		_b_i=$((_b_i + 1))
	done
	return 1
}

# fresh_daemon [unix]: (re)start halo-milter on an empty state directory,
# on its TCP socket (daemon.sh) or, with "unix", on $USOCK (a copy of the
# configuration with the socket line changed). Sets MSPEC (milter client
# syntax) and PSPEC (Postfix syntax).
USOCK=$T/msock/milter.sock
fresh_daemon() {
	daemon_stop
	rm -rf "$MILTER_STATE"
	if [ "${1:-}" = unix ]; then
		mkdir -p "$T/msock" && chmod 755 "$T/msock"
		rm -f "$USOCK"
		sed "s|^socket = .*|socket = unix:$USOCK|" "$MILTER_CONF" > "$T/unix.conf"
		"$DAEMON" -c "$T/unix.conf" -f 2>> "$T/daemon.log" &
		MILTER_PID=$!
		_b_i=0
		while [ ! -S "$USOCK" ] && [ $_b_i -lt 100 ]; do
			kill -0 "$MILTER_PID" 2>/dev/null || break
			sleep 0.1
			_b_i=$((_b_i + 1))
		done
		[ -S "$USOCK" ] || die "halo-milter did not start (see $T/daemon.log)"
		chmod 666 "$USOCK"         # smtpd runs as postfix
		MSPEC=unix:$USOCK PSPEC=unix:$USOCK
	else
		daemon_start || die "halo-milter did not start (see $T/daemon.log)"
		MSPEC=inet:$MILTER_PORT@127.0.0.1 PSPEC=inet:$MILTER_PORT@127.0.0.1
	fi
}

# throughput_pass MODE MAILDIR CONCURRENCY NAME: one pass through Postfix,
# MODE none|null|unix|inet; records NAME.
throughput_pass() {
	null_stop
	if [ "$1" = none ]; then
		daemon_stop
		pf_start "" tempfail || die "postfix"
	elif [ "$1" = null ]; then
		daemon_stop
		mkdir -p "$T/nsock" && chmod 755 "$T/nsock"
		rm -f "$T/nsock/null.sock"
		"$T/nullmilter" "unix:$T/nsock/null.sock" 2>> "$T/null.log" &
		NULL_PID=$!
		_b_i=0
		while [ ! -S "$T/nsock/null.sock" ] && [ $_b_i -lt 100 ]; do
			sleep 0.1
			_b_i=$((_b_i + 1))
		done
		pf_start "unix:$T/nsock/null.sock" tempfail || die "postfix"
	else
		fresh_daemon "$1"
		pf_start "$PSPEC" tempfail || die "postfix"
	fi
	_t_sent0=$(grep -c 'status=sent' "$PF_DIR/maillog")
	# jobs queued before (a PostgreSQL store outlives fresh_daemon)
	_t_jobs0=0
	if [ "$1" = unix ] || [ "$1" = inet ]; then
		_t_jobs0=$(ctl stats | awk '$1 == "queued" { print $2 }')
	fi
	say "throughput, milter: $1, $3 connection(s), $(find "$2" -name '*.wire' | wc -l) messages"
	_t_pid=$MILTER_PID
	[ "$1" = null ] && _t_pid=$NULL_PID
	MILTER_PID=$_t_pid SINK_PID=$SINK_PID python3 "$HERE/smtpload.py" 127.0.0.1 "$PF_PORT" \
	    "$2" "$3" "$PF_QUEUE" > "$T/tp.json" ||
		die "smtpload failed: $(cat "$T/tp.json")"
	sleep 1            # postlogd writes the maillog asynchronously
	_t_sent=$(( $(grep -c 'status=sent' "$PF_DIR/maillog") - _t_sent0 ))
	_t_jobs=0
	if [ "$1" = unix ] || [ "$1" = inet ]; then
		_t_jobs=$(( $(ctl stats | awk '$1 == "queued" { print $2 }') - ${_t_jobs0:-0} ))
	fi
	record "$4" $run "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["delivered"]=int(sys.argv[2]); d["jobs"]=int(sys.argv[3]); print(json.dumps(d))' \
	    "$T/tp.json" "$_t_sent" "${_t_jobs:-0}")"
}

# ------------------------------------------------------------------ machine
say "scratch directory $T"
busy=$(python3 - <<'EOP'
import time
def s():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4], sum(v[:8])
b0, t0 = s(); time.sleep(2); b1, t1 = s()
print(round(100.0 * (b1 - b0) / max(1, t1 - t0), 1))
EOP
)
say "machine busy before start: $busy % (other work on the machine skews the figures)"
fs=$(df -PT "$T" | awk 'NR == 2 { print $2 }')
python3 - "$T/machine.json" "$busy" "$fs" "$RUNS" "$QUICK" "$TOP" <<'EOP'
import json, os, platform, subprocess, sys
out, busy, fs, runs, quick, top = sys.argv[1:]
model = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
        break
mem = 0
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal:"):
        mem = int(line.split()[1]) / 1048576.0
def run(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, cwd=top).stdout.strip()
    except OSError:
        return ""
json.dump({"nproc": os.cpu_count(), "cpu_model": model, "ram_gib": round(mem, 1),
           "kernel": platform.release(), "scratch_fs": fs,
           "postfix": run("postconf", "-h", "mail_version"),
           "python": platform.python_version(),
           "commit": run("git", "rev-parse", "--short", "HEAD") +
                     ("+dirty" if run("git", "status", "--porcelain", "--untracked-files=no") else ""),
           "busy_before_start_pct": float(busy), "runs": int(runs), "quick": quick == "1"},
          open(out, "w"))
EOP

if [ "$ONLY" != rss ]; then
	say "generating $TP_N messages (seeded)"
	python3 "$HERE/mailgen.py" "$T/mail" "$TP_N" > "$T/mailgen.json" || die "mailgen failed"
	record mailgen 0 "$(cat "$T/mailgen.json")"
	python3 "$HERE/mailgen.py" "$T/mail1" "$TP1_N" 7 > "$T/mailgen1.json" || die "mailgen failed"
	record mailgen1 0 "$(cat "$T/mailgen1.json")"

	cc -O2 -Wall -o "$T/nullmilter" "$HERE/nullmilter.c" -lmilter -pthread ||
		die "cannot build tests/bench/nullmilter.c"
	bench_sink_start || die "smtp-sink did not start"
fi
if [ "$BENCH_PG" = 1 ]; then
	# fsync on, as a deployment runs it (the tests' server runs without)
	PG=$(PG_FSYNC=on sh "$TOP/scripts/pg.sh" start "$T/pg") ||
		{ PG=; die "PostgreSQL did not start (make deps; BENCH_PG=0 skips section 7)"; }
fi

# eom_pair PREFIX: end-of-message latency at 100 KB, one session and
# EOM_CONC concurrent ones, against the running daemon; records PREFIX102400
# and PREFIXc20_102400
eom_pair() {
	say "eom latency (${2:-SQLite}, unix socket): $EOM_PG_COUNT x 102400 bytes"
	python3 "$HERE/milterclient.py" eom "$MSPEC" 102400 "$EOM_PG_COUNT" \
	    > "$T/eom.json" || die "eom client failed"
	record "${1}102400" $run "$(cat "$T/eom.json")"
	say "eom latency (${2:-SQLite}, unix socket): $EOM_CONC concurrent sessions, 102400 bytes"
	python3 "$HERE/milterclient.py" eom "$MSPEC" 102400 $((EOM_CONC * 10)) "$EOM_CONC" \
	    > "$T/eom.json" || die "eom client failed"
	record "${1}c${EOM_CONC}_102400" $run "$(cat "$T/eom.json")"
}
# pg_sql SQL: run SQL on the private server
pg_sql() { psql -X -q -v ON_ERROR_STOP=1 -d "$PG" -c "$1" > /dev/null; }

# pg_section: 7. the same daemon (workers = 0) on the PostgreSQL store.
# BENCH_ONLY=pg: Postfix alone and halo-milter on SQLite first (throughput
# pass and end-of-message latency at 100 KB), for the figures beside it
pg_section() {
	MILTER_CONF='' MILTER_PORT=''
	DAEMON_EXTRA_CONF="workers = 0"
	export DAEMON_EXTRA_CONF
	daemon_conf
	if [ "$ONLY" = pg ]; then
		for mode in none unix; do
			throughput_pass "$mode" "$T/mail" "$TP_CONC" "tp_$mode"
		done
		pf_stop
		fresh_daemon unix
		eom_pair eom_
		daemon_stop
		rm -rf "$MILTER_STATE"
	fi
	DAEMON_EXTRA_CONF="workers = 0
store = $PG"
	MILTER_CONF='' MILTER_PORT=''
	daemon_conf
	fresh_daemon unix
	eom_pair eom_pg_ PostgreSQL
	# where the time goes: the same without waiting for the commit's WAL
	# flush (synchronous_commit = off; not a setting to deploy)
	pg_sql "ALTER SYSTEM SET synchronous_commit = off" && pg_sql "SELECT pg_reload_conf()" ||
		die "psql"
	eom_pair eom_pg_nosync_ "PostgreSQL, synchronous_commit off"
	pg_sql "ALTER SYSTEM RESET synchronous_commit" && pg_sql "SELECT pg_reload_conf()" ||
		die "psql"
	throughput_pass unix "$T/mail" "$TP_CONC" tp_pg_unix
	daemon_stop
	pf_stop
	rm -rf "$MILTER_STATE"
	DAEMON_EXTRA_CONF="workers = 0"
	MILTER_CONF='' MILTER_PORT=''
}

# sim_section_start: the Halo simulator (behind tlsproxy.py with BENCH_TLS=1)
# and a daemon configuration (MILTER_CONF, MILTER_STATE) that logs into it,
# for sections 4, 5 and 6
sim_section_start() {
	rm -f "$T/sim.json"          # sim_start waits for a fresh one
	sim_start || die "simulator"
	# counting, not pacing: Halo's and our own rate budgets are out of the way
	sim POST /_sim/faults '{"rate_limit": {"limit": 0, "window": 300}}' > /dev/null
	HALO_URL=$SIM AUTH_URL=http://127.0.0.1:$SIM_AUTH/auth CA_LINE=
	if [ "$TLS" = 1 ]; then
		# https as in production: a self-signed certificate made now, and
		# tlsproxy.py in front of both of the simulator's ports
		mkdir -p "$T/tls"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" -days 2 \
		    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		    2> "$T/tls/openssl.log" || die "openssl: $(cat "$T/tls/openssl.log")"
		rm -f "$T/tls/stats.json"
		python3 "$HERE/tlsproxy.py" "$T/tls/cert.pem" "$T/tls/key.pem" \
		    "$T/tls/stats.json" "0:$SIM_PORT" "0:$SIM_AUTH" 2> "$T/tls/proxy.log" &
		PROXY_PID=$!
		_b_i=0
		while [ ! -s "$T/tls/stats.json" ] && [ $_b_i -lt 100 ]; do
			sleep 0.1
			_b_i=$((_b_i + 1))
		done
		[ -s "$T/tls/stats.json" ] || die "tlsproxy.py did not start"
		_px=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["ports"]; print(p[sys.argv[2]], p[sys.argv[3]])' \
		    "$T/tls/stats.json" "$SIM_PORT" "$SIM_AUTH")
		HALO_URL=https://127.0.0.1:${_px% *}
		AUTH_URL=https://127.0.0.1:${_px#* }/auth
		CA_LINE="halo_ca_file = $T/tls/cert.pem"
	fi
	MILTER_PORT=$(pf_free_port)
	MILTER_CONF=$T/halo-milter-sim.conf
	MILTER_STATE=$T/state-sim
	rm -rf "$MILTER_STATE"
	cat > "$MILTER_CONF" <<EOC
# generated by tests/bench/run.sh
socket = inet:$MILTER_PORT@127.0.0.1
state_dir = $MILTER_STATE
insecure_http = yes
retry_base = 1
workers = $WORKERS
web_listen = 127.0.0.1:$(pf_free_port)
max_message_size = 64M
$CA_LINE

[tenant sim]
halo_url = $HALO_URL
auth_url = $AUTH_URL
client_id = halo-milter-native
ticket_type_id = 1
cf_message_id = CFMilterKey
halo_senders = notify@msp.example
rate_limit = 100000
rate_window = 300
loop_max_creates = 1000
route = support@msp.example intake agent=alice@msp.example
EOC
}

# sim_section_stop: the simulator and its proxy go; the throughput set-up
# uses daemon.sh's configuration again
sim_section_stop() {
	proxy_stop
	sim_stop
	rm -rf "$MILTER_STATE"
	MILTER_STATE=$T/state
}

# logrss_section: 6. peak RSS while the workers log one mail with
# attachments into the simulator (sim_section_start done)
logrss_section() {
	sim POST /_sim/faults '{"latency_ms": 0}' > /dev/null
	# every attachment of the 50 MB mail (10 x 4 MiB) is uploaded: the
	# default max_attachments_total (25M) would leave some out; the
	# tenant's section is the last of the file
	echo "max_attachments_total = 64M" >> "$MILTER_CONF"
	for size in $LOGRSS_SIZES; do
		fresh_daemon unix
		token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null ||
			die "token import"
		sleep 0.5
		say "peak rss while the workers log one $size-byte mail with attachments"
		python3 "$HERE/milterclient.py" logrss "$MSPEC" "$MILTER_PID" "$size" \
		    "$CTL -c $MILTER_CONF" support@msp.example "$SIM" > "$T/logrss.json" ||
			die "logrss client failed"
		record "logrss_$size" $run "$(cat "$T/logrss.json")"
		daemon_stop
		rm -rf "$MILTER_STATE"
	done
}

# mix_section: 4 + 5. the mail mix into the simulator (sim_section_start
# done): Halo requests per logged mail, TLS handshakes, end to action
mix_section() {
	fresh_daemon unix
	pf_start "$PSPEC" tempfail || die "postfix"
	token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null ||
		die "token import"
	say "requests per message: $MIX_N messages in $MIX_WAVES waves"
	[ "$TLS" = 1 ] && { hs0=$(tls_stat handshakes); rs0=$(tls_stat resumed); }
	python3 "$HERE/mix.py" count "$PF_PORT" "$SIM" "$CTL -c $MILTER_CONF" \
	    "$MIX_N" "$MIX_WAVES" "$run" "$T/threads.json" > "$T/mix.json" ||
		die "mix count failed"
	record requests $run "$(cat "$T/mix.json")"
	if [ "$TLS" = 1 ]; then
		record tls $run "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(json.dumps({"handshakes": int(sys.argv[2]), "resumed": int(sys.argv[3]), "requests": m["api_requests"] + m["auth_requests"], "workers": int(sys.argv[4])}))' \
		    "$T/mix.json" $(( $(tls_stat handshakes) - hs0 )) $(( $(tls_stat resumed) - rs0 )) "$WORKERS")"
	fi
	sim POST /_sim/faults "{\"latency_ms\": $SIM_LATENCY_MS}" > /dev/null
	say "end to action: $LAT_M messages at $LAT_RATE/s, Halo +${SIM_LATENCY_MS} ms per request"
	python3 "$HERE/mix.py" latency "$PF_PORT" "$SIM" "$CTL -c $MILTER_CONF" \
	    "$LAT_M" "$LAT_RATE" "$run" "$T/threads.json" > "$T/lat.json" ||
		die "mix latency failed"
	record end_to_action $run "$(cat "$T/lat.json")"
	say "end to action, burst: $LAT_M messages at once"
	python3 "$HERE/mix.py" latency "$PF_PORT" "$SIM" "$CTL -c $MILTER_CONF" \
	    "$LAT_M" 0 "$run" "$T/threads.json" > "$T/lat.json" ||
		die "mix burst failed"
	record end_to_action_burst $run "$(cat "$T/lat.json")"
	failed=$(ctl queue -s failed | grep -c '^[0-9]')
	[ "$failed" -eq 0 ] || say "warning: $failed failed job(s): $(ctl queue -s failed | head -3)"
	daemon_stop
	pf_stop
}

run=0
while [ $run -lt "$RUNS" ]; do
	run=$((run + 1))
	say "run $run of $RUNS"
	if [ "$ONLY" = pg ]; then
		pg_section
		continue
	fi
	if [ "$ONLY" = rss ]; then
		sim_section_start
		logrss_section
		sim_section_stop
		continue
	fi
	if [ "$ONLY" = mix ]; then
		sim_section_start
		mix_section
		sim_section_stop
		continue
	fi

	# -------------------------------------------- 1. throughput
	MILTER_CONF='' MILTER_PORT=''
	DAEMON_EXTRA_CONF="workers = 0"     # read by daemon_conf (tests/e2e/daemon.sh)
	export DAEMON_EXTRA_CONF
	daemon_conf
	# rotate the order per run, so no set-up always goes first
	case $((run % 4)) in
		1) order="none null unix inet" ;;
		2) order="inet none null unix" ;;
		3) order="unix inet none null" ;;
		*) order="null unix inet none" ;;
	esac
	for mode in $order; do
		throughput_pass "$mode" "$T/mail" "$TP_CONC" "tp_$mode"
	done
	# one connection: each message's own latency through Postfix shows
	for mode in $order; do
		throughput_pass "$mode" "$T/mail1" 1 "tp1_$mode"
	done
	daemon_stop
	pf_stop
	rm -rf "$MILTER_STATE"

	# -------------------------------------------- 2. end-of-message latency
	fresh_daemon unix
	for sc in $EOM_SIZES; do
		size=${sc%%:*} count=${sc#*:}
		say "eom latency (unix socket): $count x $size bytes"
		python3 "$HERE/milterclient.py" eom "$MSPEC" "$size" "$count" \
		    > "$T/eom.json" || die "eom client failed"
		record "eom_$size" $run "$(cat "$T/eom.json")"
	done
	say "eom latency (unix socket): $EOM_CONC concurrent sessions, 102400 bytes"
	python3 "$HERE/milterclient.py" eom "$MSPEC" 102400 $((EOM_CONC * 10)) "$EOM_CONC" \
	    > "$T/eom.json" || die "eom client failed"
	record "eom_c${EOM_CONC}_102400" $run "$(cat "$T/eom.json")"
	fresh_daemon inet
	say "eom latency (TCP socket): $EOM_TCP_COUNT x 102400 bytes"
	python3 "$HERE/milterclient.py" eom "$MSPEC" 102400 "$EOM_TCP_COUNT" \
	    > "$T/eom.json" || die "eom client failed"
	record "eom_tcp_102400" $run "$(cat "$T/eom.json")"
	daemon_stop
	rm -rf "$MILTER_STATE"

	# -------------------------------------------- 3. peak RSS
	for size in $RSS_SIZES; do
		fresh_daemon unix
		sleep 0.5
		say "peak rss: $RSS_SESSIONS concurrent sessions x $size bytes"
		python3 "$HERE/milterclient.py" rss "$MSPEC" "$MILTER_PID" \
		    "$size" "$RSS_SESSIONS" > "$T/rss.json" || die "rss client failed"
		record "rss_$size" $run "$(cat "$T/rss.json")"
		daemon_stop
		rm -rf "$MILTER_STATE"
	done

	# -------------------------------------------- 4 + 5. into the simulator
	sim_section_start
	mix_section

	# -------------------------------------------- 6. peak RSS while logging
	logrss_section
	sim_section_stop

	# -------------------------------------------- 7. the PostgreSQL store
	[ -n "$PG" ] && pg_section
done

mkdir -p "$(dirname "$OUT")"
python3 "$HERE/report.py" "$T/machine.json" "$RES" "$OUT" || die "report failed"
cleanup
trap - EXIT
rm -rf "$T"
