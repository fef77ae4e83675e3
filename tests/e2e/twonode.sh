#!/bin/sh
# twonode.sh - two MX nodes sharing one PostgreSQL store: swaks -> private
# Postfix A or B -> halo-milter A or B (each with its own state_dir and
# spool, one database: store = conninfo) -> the Halo simulator. Mail
# through both nodes is logged once, a reply through the other node
# threads, a node killed mid-job has its job finished by the other after
# the lease, and PostgreSQL stopped during traffic tempfails end of message,
# with everything logged once when it is back. The PostgreSQL server is a
# private one (scripts/pg.sh).
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T0=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-2n.XXXXXX")
chmod 755 "$T0"
T=$T0/a
mkdir -p "$T0/a" "$T0/b"
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
. "$HERE/sim.sh"
SUITE=twonode
. "$TOP/tests/lib/check.sh"

# --- two nodes in one shell: "node X" swaps X's state in (nodes.sh)
. "$HERE/nodes.sh"
a_T=$T0/a
b_T=$T0/b

cleanup() {
	for _n in a b; do
		node $_n
		daemon_stop
		pf_stop
	done
	sink_stop
	sim_stop
	sh "$TOP/scripts/pg.sh" stop "$T0/pg"
	if [ "$fail" -gt 0 ]; then
		for _n in a b; do
			echo "--- node $_n daemon.log (tail)" >&2
			tail -15 "$T0/$_n/daemon.log" >&2
		done
	fi
	# KEEP_LOGS=DIR: keep both daemons' logs
	[ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" &&
	    cp "$T0/a/daemon.log" "$KEEP_LOGS/a.log" &&
	    cp "$T0/b/daemon.log" "$KEEP_LOGS/b.log"
	rm -rf "$T0"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM

# --- one database, one Halo, one sink --------------------------------------
PG=$(sh "$TOP/scripts/pg.sh" start "$T0/pg") || { echo "FAIL twonode: PostgreSQL did not start"; exit 1; }
node a
sim_start || exit 1
sink_start "$T0/sink" || exit 1

# node_conf: this node's configuration (its own state_dir, the shared store)
NODE_STORE=
node_conf() {
	[ -n "$MILTER_PORT" ] || MILTER_PORT=$(pf_free_port)
	MILTER_CONF=$T/halo-milter.conf
	MILTER_STATE=$T/state
	{ sim_conf "store=${NODE_STORE}" job_lease=10; cat <<EOC
cf_message_id = CFMilterKey
route = support@msp.example intake agent=alice@msp.example
EOC
	} > "$MILTER_CONF"
}

# mail FROM SUBJECT MSGID [extra header lines...]: to support@, via the
# current node's Postfix
mail() {
	_m_f=$T0/m.eml
	_m_from=$(echo "$1" | sed 's/.*<//; s/>.*//')
	{
		echo "From: $1"; echo "To: support@msp.example"; echo "Subject: $2"
		echo "Date: Tue, 24 Nov 2026 10:00:00 +0000"; echo "Message-ID: $3"
		shift 3
		for h in "$@"; do echo "$h"; done
		echo "MIME-Version: 1.0"; echo "Content-Type: text/plain; charset=utf-8"; echo
		echo "Body of the mail."
	} > "$_m_f"
	send_mail "$_m_f" "$_m_from" support@msp.example
}
# posted MSGID: how many tickets and actions Halo holds with MSGID
posted() { simq "ids.count('$1')"; }
# wait_done MSGID: until a job for MSGID is done (either node, 60 s)
wait_done() {
	_w_i=0
	while [ $_w_i -lt 600 ]; do
		ctl queue -s done -m "$1" | grep -qF "$1" && return 0
		sleep 0.1
		_w_i=$((_w_i + 1))
	done
	echo "    no done job for $1:" >&2
	ctl queue | sed 's/^/    /' >&2
	return 1
}
ticket_of() { ctl queue -s done -m "$1" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[0]["ticket_id"] if j else "")'; }

# --- 0. a single node on SQLite, then "store migrate" into PostgreSQL ----
node a
node_conf
daemon_start || exit 1
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1
token_for alice@msp.example | ctl token import alice@msp.example sim > /dev/null
mail "Ann <ann@acme.example>" "Before the move" "<pre@acme.example>"
check "SQLite node: mail logged" wait_done "<pre@acme.example>"
daemon_stop
ctl store migrate "$PG" > "$T0/migrate.out" 2>&1
check "store migrate: exit 0" eq "$?" 0
check "store migrate: the job and the sealed token copied" \
    grep -q "^copied 1 jobs, 1 tokens (still sealed)" "$T0/migrate.out"
ctl store migrate "$PG" > "$T0/migrate2.out" 2>&1
check "store migrate: a second run is refused" eq "$?" 1
check "store migrate: says why" grep -q "not empty" "$T0/migrate2.out"

# --- both nodes on the shared store --------------------------------------
NODE_STORE=$PG
node_conf
daemon_start || exit 1
# one sealing key for every node: node A made it, B gets a copy
node b
node_conf
mkdir -p "$MILTER_STATE" && chmod 700 "$MILTER_STATE"
cp -p "$a_T/state/seal.key" "$MILTER_STATE/seal.key" || exit 1
daemon_start || exit 1
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || exit 1
# the enrollment made on the SQLite node serves both nodes now
check "one token row, seen from node B too" eq "$(ctl agents 2>/dev/null | grep -c alice@msp.example)" 1
check "node B's doctor checks the shared store" eval \
    'ctl doctor sim 2>&1 | grep -q "ok   store: postgresql, schema version"'
check "node B's doctor warns that the test's short job_lease is below the posting grace" eval \
    'ctl doctor sim 2>&1 | grep -q "warn job_lease 10 s is shorter than 35 s"'
mail "Ann <ann@acme.example>" "Before the move" "<pre@acme.example>"
check "mail logged before the move is a duplicate on node B" eq "$(posted '<pre@acme.example>')" 1
node a

# --- 1. the same mail through both nodes is logged once --------------------
node a
mail "Ann <ann@acme.example>" "Printer on fire" "<both@acme.example>"
check "mail through node A accepted" eq "$?" 0
node b
mail "Ann <ann@acme.example>" "Printer on fire" "<both@acme.example>"
check "the same mail through node B accepted" eq "$?" 0
check "a job done (either node's worker)" wait_done "<both@acme.example>"
sleep 2
check "logged once in Halo" eq "$(posted '<both@acme.example>')" 1
check "one job for it in the shared store" eq "$(ctl queue -m '<both@acme.example>' | grep -c 'both@acme')" 1

# --- 2. a reply through the other node threads -----------------------------
node a
mail "Ann <ann@acme.example>" "Laptop will not boot" "<t1@acme.example>"
wait_done "<t1@acme.example>"
t1=$(ticket_of "<t1@acme.example>")
node b
mail "Ann <ann@acme.example>" "Re: Laptop will not boot" "<t2@acme.example>" \
    "In-Reply-To: <t1@acme.example>" "References: <t1@acme.example>"
check "reply through node B: job done" wait_done "<t2@acme.example>"
check "reply through node B appended to node A's ticket" eq "$(ticket_of '<t2@acme.example>')" "$t1"
check "reply logged once" eq "$(posted '<t2@acme.example>')" 1

# --- 3. kill -9 of a node mid-job: the other finishes it after the lease ---
node b
daemon_stop                     # only A's worker can take the next job
sim POST /_sim/faults '{"latency_ms": 4000}' > /dev/null
node a
mail "Ann <ann@acme.example>" "Disk full" "<kill@acme.example>"
check "mail through node A accepted (for the kill)" eq "$?" 0
_k=0
while [ $_k -lt 100 ] && ! ctl queue -s running -m "<kill@acme.example>" | grep -qF kill@; do
	sleep 0.1; _k=$((_k + 1))
done
sleep 2                         # mid-job: waiting on a slow Halo
daemon_stop KILL
check "node A killed mid-job: the job is left running" \
    eval 'ctl queue -s running -m "<kill@acme.example>" | grep -qF kill@'
sim POST /_sim/faults '{"latency_ms": 0}' > /dev/null
node b
daemon_start || exit 1
check "node B finishes node A's job after the lease" wait_done "<kill@acme.example>"
check "it was node B's worker" grep -q "worker: job .*msgid=<kill@acme.example>" "$T/daemon.log"
sleep 3                         # (a late post would show up here)
check "the killed node's mail logged exactly once" eq "$(posted '<kill@acme.example>')" 1
node a
daemon_start || exit 1

# --- 4. PostgreSQL stopped during traffic: tempfail, then logged once ------
sh "$TOP/scripts/pg.sh" halt "$T0/pg"
node a
mail "Ann <ann@acme.example>" "While the database is down" "<pgdown@acme.example>"
rc=$?
check "end of message tempfails while PostgreSQL is down" eq "$rc" 26
check "the reply was a 4xx" grep -q '<\** *4[0-9][0-9] ' "$SWAKS_LAST"
node b
mail "Ann <ann@acme.example>" "While the database is down" "<pgdown@acme.example>"
check "node B tempfails too" eq "$?" 26
sh "$TOP/scripts/pg.sh" resume "$T0/pg"
sleep 1
# the sender's MTA retries: through either node
node b
mail "Ann <ann@acme.example>" "While the database is down" "<pgdown@acme.example>"
check "accepted once PostgreSQL is back" eq "$?" 0
node a
mail "Ann <ann@acme.example>" "While the database is down" "<pgdown@acme.example>"
check "accepted through the other node too" eq "$?" 0
check "job done after the outage" wait_done "<pgdown@acme.example>"
sleep 2
check "logged once after the outage" eq "$(posted '<pgdown@acme.example>')" 1
check "nothing logged twice in all" eq "$(simq 'len(ids) - len(set(ids))')" 0

# --- 5. both nodes refreshing one agent's token at once ---------------------
# every refresh rotates the refresh token and a used one is refused
# (invalid_grant: the agent would have to enroll again). "doctor" refreshes
# the agent's token; run on both nodes at once against a slow Halo, the two
# refreshes overlap: the row lock makes the second node wait and use the
# rotated token instead of presenting the one already used
sim POST /_sim/faults '{"rotation": "rotate", "latency_ms": 1000}' > /dev/null
refreshed0=$(simq "s['tokens']['refreshed']")
node a
ctl doctor sim > "$T0/doctor-a.out" 2>&1 &
doc_a=$!
node b
ctl doctor sim > "$T0/doctor-b.out" 2>&1 &
doc_b=$!
wait $doc_a
wait $doc_b
sim POST /_sim/faults '{"latency_ms": 0}' > /dev/null
check "node A's doctor refreshed the agent's token" \
    grep -q "ok   agent alice@msp.example: token refreshed" "$T0/doctor-a.out"
check "node B's doctor refreshed it too, at the same time" \
    grep -q "ok   agent alice@msp.example: token refreshed" "$T0/doctor-b.out"
check "two refreshes, one after the other" \
    eq "$(simq "s['tokens']['refreshed']")" $((refreshed0 + 2))
check "the agent stays enrolled (no refresh token presented twice)" \
    eval '! ctl agents | grep alice@msp.example | grep -q reenroll'
node a
mail "Ann <ann@acme.example>" "After the refresh race" "<rf@acme.example>"
check "mail after the race logged with the rotated token" wait_done "<rf@acme.example>"

echo "twonode: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
