#!/bin/sh
# tests/cli/run.sh - the command lines an operator meets first: --help on
# both programs without a configuration or store, the stricter -t (missing
# user, web port below 1024, plain http:// Halo, the example's placeholder
# client id), and halo-milterctl telling a missing store from a refused one.
# On a store the daemon made, with jobs written into it by sqlite3: queue,
# show (by job id, queue ID, Message-ID; several matches exit 3), agents,
# doctor, each as text and --json (parsed by python3). KEEP=1 keeps $T.
set -u
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
D=$TOP/$BUILD/halo-milter
C=$TOP/$BUILD/halo-milterctl
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-cli.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
SUITE=cli
. "$TOP/tests/lib/check.sh"
# expect RC PATTERN DESC CMD...: CMD exits RC and its output matches PATTERN
expect() {
	_rc=$1 _pat=$2 _desc=$3; shift 3
	_out=$("$@" 2>&1); _got=$?
	if [ "$_got" -ne "$_rc" ]; then
		not_ok "$_desc: exit $_got, want $_rc"; echo "$_out" | head -3 | sed 's/^/    /'
	elif ! printf '%s\n' "$_out" | grep -q -- "$_pat"; then
		not_ok "$_desc: output lacks '$_pat'"; echo "$_out" | head -3 | sed 's/^/    /'
	else
		ok "$_desc"
	fi
}

expect 0 'usage: halo-milter ' "halo-milter --help" "$D" --help
expect 0 'usage: halo-milter ' "halo-milter -h" "$D" -h
expect 2 'usage: halo-milter ' "halo-milter -x is an error" "$D" -x
expect 0 'usage: halo-milterctl ' "halo-milterctl --help without a config" \
    "$C" -c /nonexistent/halo-milter.conf --help
expect 0 'usage: halo-milterctl ' "halo-milterctl -h" "$C" -h
expect 0 'See halo-milterctl(8)' "halo-milterctl help names its man page" "$C" help

good() {	# good FILE: a configuration -t accepts (as root)
	cat > "$1" <<EOC
user = nobody
web_listen = 127.0.0.1:8025
state_dir = $T/state
insecure_http = yes
[tenant a]
halo_url = ${2:-https://halo.example}
client_id = real-client-id
ticket_type_id = 1
route = support@a.example intake agent=x@a.example
EOC
}
good "$T/ok.conf"
expect 0 'configuration OK (1 tenant)' "-t accepts a complete file" "$D" -c "$T/ok.conf" -t
good "$T/loop.conf" http://127.0.0.1:9999
expect 0 'configuration OK' "-t: http:// to loopback with insecure_http" "$D" -c "$T/loop.conf" -t
good "$T/http.conf" http://halo.example
expect 1 'plain http://' "-t refuses a plain http:// Halo" "$D" -c "$T/http.conf" -t
sed 's/^insecure_http = yes$//' "$T/loop.conf" > "$T/loop2.conf"
expect 1 'plain http://' "-t refuses http:// to loopback without insecure_http" "$D" -c "$T/loop2.conf" -t
sed 's/^web_listen = .*/web_listen = 127.0.0.1:443/' "$T/ok.conf" > "$T/port.conf"
expect 1 'below 1024' "-t refuses a web port below 1024 with user set" "$D" -c "$T/port.conf" -t
sed 's/^client_id = .*/client_id = 6f1c2a9e-milter-acme/' "$T/ok.conf" > "$T/ph.conf"
expect 1 "example's placeholder" "-t refuses the example's client id" "$D" -c "$T/ph.conf" -t
expect 1 "example's placeholder" "-t refuses the unedited example" "$D" -c "$TOP/conf/halo-milter.conf" -t
if [ "$(id -u)" -eq 0 ]; then
	sed 's/^user = .*//' "$T/ok.conf" > "$T/nouser.conf"
	expect 1 'user is not set' "-t as root refuses a file without user" "$D" -c "$T/nouser.conf" -t
fi

# halo-milterctl: no store yet, and a store it may not open
expect 1 'no store at' "ctl: a missing store says so" "$C" -c "$T/ok.conf" queue
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	mkdir -p "$T/state" && : > "$T/state/halo-milter.db" && chmod 700 "$T/state"
	chmod 755 "$T"; chmod 644 "$T/ok.conf"
	expect 1 'Permission denied' "ctl: a refused store is not called missing" \
	    setpriv --reuid=nobody --regid=nogroup --clear-groups "$C" -c "$T/ok.conf" queue
fi
# a store made by the daemon: queue's -n is checked
mkdir -p "$T/st2"
sed "s|^state_dir = .*|state_dir = $T/st2|; s|^user = .*||; s|^web_listen = .*|web_listen = off|" \
    "$T/ok.conf" > "$T/run.conf"
echo "socket = unix:$T/st2/milter.sock" >> "$T/run.conf.g"
{ cat "$T/run.conf.g"; cat "$T/run.conf"; } > "$T/run2.conf"
"$D" -c "$T/run2.conf" -f 2> "$T/daemon.log" &
dpid=$!
i=0
while [ $i -lt 100 ] && ! grep -q 'started:' "$T/daemon.log"; do sleep 0.1; i=$((i + 1)); done
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
if [ -s "$T/st2/halo-milter.db" ]; then
	expect 0 '^ID ' "ctl queue -n 5" "$C" -c "$T/run2.conf" queue -n 5
	expect 2 'not a number' "ctl queue -n abc is refused" "$C" -c "$T/run2.conf" queue -n abc
	expect 2 'not a number' "ctl queue -n -1 is refused" "$C" -c "$T/run2.conf" queue -n -1
	expect 1 'no job 42' "ctl retry of a job that does not exist" "$C" -c "$T/run2.conf" retry 42
	expect 0 '^\[' "ctl queue --json" "$C" -c "$T/run2.conf" queue --json -t a -q X1 -m '<m@x>'
	expect 0 'ok' "ctl queue --json is a JSON array" sh -c \
	    "'$C' -c '$T/run2.conf' queue --json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []; print(\"ok\")'"
	expect 0 'ok' "ctl stats --json: a count per state" sh -c \
	    "'$C' -c '$T/run2.conf' stats --json | python3 -c 'import json,sys; d = json.load(sys.stdin); assert sorted(d) == sorted([\"queued\", \"skipped\", \"running\", \"done\", \"failed\", \"waiting\"]) and set(d.values()) == {0}; print(\"ok\")'"
	# show, agents and doctor on jobs written into the store: one failed
	# with a spooled message, a Message-ID in two tenants, a shared queue ID
	now=$(date +%s)
	sqlite3 "$T/st2/halo-milter.db" "INSERT INTO jobs (id, tenant, message_id,
	    state, reason, queue_id, from_addr, subject, spool, created, updated)
	    VALUES (1, 'a', '<one@x.example>', 'failed', 'Halo said no', 'QA1',
	    'ann@x.example', 'Printer', 'm1', $now, $now),
	    (2, 'a', '<two@x.example>', 'waiting', 'no token', 'QDUP',
	    'bob@x.example', 'Two', NULL, $now, $now),
	    (3, 'b', '<two@x.example>', 'waiting', 'no token', 'QDUP',
	    'bob@x.example', 'Two', NULL, $now, $now);"
	mkdir -p "$T/st2/spool/msg"
	printf 'From: Ann <ann@x.example>\r\nSubject: Printer\r\n\tfolded\r\n\r\nbody\r\n' \
	    > "$T/st2/spool/msg/m1"
	expect 0 '^subject *Printer' "ctl show by job id" "$C" -c "$T/run2.conf" show 1
	expect 0 '^  Subject: Printer' "ctl show prints the header block" "$C" -c "$T/run2.conf" show 1
	expect 0 '^job  *1$' "ctl show by queue ID" "$C" -c "$T/run2.conf" show QA1
	expect 0 '^job  *1$' "ctl show by Message-ID" "$C" -c "$T/run2.conf" show '<one@x.example>'
	expect 0 '^job  *1$' "ctl show by Message-ID without brackets" "$C" -c "$T/run2.conf" show one@x.example
	expect 3 '2 jobs match' "ctl show: a queue ID of two jobs is ambiguous" "$C" -c "$T/run2.conf" show QDUP
	expect 3 '^  3 ' "ctl show: ambiguous lists the jobs" "$C" -c "$T/run2.conf" show two@x.example
	expect 1 'no job with queue ID or Message-ID' "ctl show: unknown ID" "$C" -c "$T/run2.conf" show nosuch@x.example
	expect 1 'no job with id' "ctl show: unknown job id" "$C" -c "$T/run2.conf" show 99
	expect 2 'usage:' "ctl show without an argument" "$C" -c "$T/run2.conf" show --json
	expect 2 'name a job id' "ctl show of an empty argument" "$C" -c "$T/run2.conf" show ''
	expect 0 'ok' "ctl show --json: queue's fields and the headers" sh -c \
	    "'$C' -c '$T/run2.conf' show QA1 --json | python3 -c 'import json,sys; d = json.load(sys.stdin); assert d[\"id\"] == 1 and d[\"state\"] == \"failed\" and d[\"reason\"] == \"Halo said no\" and d[\"queue_id\"] == \"QA1\" and d[\"message_id\"] == \"<one@x.example>\" and d[\"from\"] == \"ann@x.example\" and d[\"subject\"] == \"Printer\" and d[\"ticket_id\"] is None, d; assert d[\"headers\"] == \"From: Ann <ann@x.example>\\nSubject: Printer\\n\\tfolded\\n\" and d[\"headers_truncated\"] is False, d[\"headers\"]; print(\"ok\")'"
	expect 0 'ok' "ctl show --json: the same names as queue --json" sh -c \
	    "'$C' -c '$T/run2.conf' queue --json -q QA1 > '$T/q.json' && '$C' -c '$T/run2.conf' show --json 1 | python3 -c 'import json,sys; d = json.load(sys.stdin); q = json.load(open(\"$T/q.json\"))[0]; assert all(d[k] == v for k, v in q.items()), (q, d); print(\"ok\")'"
	expect 0 'ok' "ctl show --json: no spooled message, headers null" sh -c \
	    "'$C' -c '$T/run2.conf' show --json 2 | python3 -c 'import json,sys; d = json.load(sys.stdin); assert d[\"headers\"] is None and d[\"tenant\"] == \"a\"; print(\"ok\")'"
	expect 3 '2 jobs match' "ctl show --json: ambiguous is still exit 3" "$C" -c "$T/run2.conf" show --json QDUP
	expect 0 '^a  *x@a.example  *not enrolled' "ctl agents" "$C" -c "$T/run2.conf" agents
	expect 0 'ok' "ctl agents --json: one object per agent" sh -c \
	    "'$C' -c '$T/run2.conf' agents --json | python3 -c 'import json,sys; d = json.load(sys.stdin); assert len(d) == 1 and d[0][\"tenant\"] == \"a\" and d[0][\"agent\"] == \"x@a.example\" and d[0][\"standing\"] == \"not_enrolled\" and d[0][\"last_refresh\"] is None and d[0][\"pending_codes\"] == 0 and d[0][\"signing_in\"] is False and d[0][\"status\"] == \"not enrolled\", d; print(\"ok\")'"
	expect 1 'FIX  agent x@a.example: no token' "ctl doctor: an agent without a token" "$C" -c "$T/run2.conf" doctor
	"$C" -c "$T/run2.conf" doctor --json > "$T/doctor.json" 2> "$T/doctor.err"
	expect 0 '^1$' "ctl doctor --json: exit status unchanged" echo $?
	expect 0 'ok' "ctl doctor --json: store and per-tenant checks" python3 -c "import json; d = json.load(open('$T/doctor.json')); s = d['store']; t = d['tenants']; assert s['checks'][0]['level'] == 'ok' and s['checks'][0]['text'].startswith('store: ') and s['problems'] == 0, s; assert len(t) == 1 and t[0]['tenant'] == 'a', t; c = t[0]['checks']; assert {'level': 'fix', 'text': 'agent x@a.example: no token; enroll it (halo-milterctl token import x@a.example a)'} in c, c; assert all(x['level'] in ('ok', 'note', 'warn', 'fix') for x in c); assert t[0]['problems'] == sum(x['level'] == 'fix' for x in c) == d['problems'], d; print('ok')"
	expect 2 'no tenant zz' "ctl doctor --json of an unknown tenant" "$C" -c "$T/run2.conf" doctor zz --json
	expect 2 'usage:' "ctl retry --json is not a thing" "$C" -c "$T/run2.conf" retry 1 --json
else
	not_ok "the daemon made no store ($(tail -1 "$T/daemon.log"))"
fi
summary
