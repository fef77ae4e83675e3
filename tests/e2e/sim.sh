# shellcheck shell=sh
# sim.sh - run the Halo simulator for the e2e test and the demo.
# Source after lib.sh; needs T and TOP. Sets SIM_PID, SIM_PORT, SIM_AUTH, SIM.

SIM_PID=

# sim_start: start tests/halosim on free ports and wait until it is ready.
sim_start() {
	python3 "$TOP/tests/halosim/halosim.py" --port 0 --auth-port 0 \
	    --fixture "$TOP/tests/halosim/fixture.json" --ready-file "$T/sim.json" \
	    --quiet 2> "$T/sim.log" > /dev/null &
	SIM_PID=$!
	_s_i=0
	while [ ! -s "$T/sim.json" ] && [ $_s_i -lt 100 ]; do
		sleep 0.1
		_s_i=$((_s_i + 1))
	done
	[ -s "$T/sim.json" ] || { echo "Halo simulator did not start" >&2; return 1; }
	SIM_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$T/sim.json")
	SIM_AUTH=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auth_port"])' "$T/sim.json")
	SIM="http://127.0.0.1:$SIM_PORT"
}

# sim_stop: stop it.
sim_stop() {
	[ -n "$SIM_PID" ] || return 0
	kill "$SIM_PID" 2>/dev/null
	wait "$SIM_PID" 2>/dev/null
	SIM_PID=
}

# sim METHOD PATH [JSON]: call one of the simulator's test endpoints.
sim() {
	python3 - "$1" "$SIM$2" "${3:-}" <<'EOP'
import sys, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=10).read().decode())
EOP
}

# simq EXPR: a Python expression over /_sim/state ("s"; "mine" = actions
# we posted; "posts" = tickets + mine; "ids" = their Message-IDs).
simq() {
	sim GET /_sim/state | python3 -c '
import json, sys
s = json.load(sys.stdin)
# actions we posted (not the first action Halo adds to a new ticket)
mine = [a for a in s["actions"] if (a.get("_sim") or {}).get("via") == "POST /api/Actions"]
posts = s["tickets"] + mine
ids = [x.get("internet_message_id") for x in posts if x.get("internet_message_id")]
print(eval(sys.argv[1]))' "$1"
}

# token_for AGENT: a refresh token the simulator issues for AGENT.
token_for() {
	sim POST /_sim/token "{\"agent_email\": \"$1\", \"scope\": \"all offline_access\"}" |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])'
}

# sim_conf [KEY=VALUE...]: print the start of a daemon configuration against
# this simulator: the milter on inet:$MILTER_PORT@127.0.0.1, state in
# $MILTER_STATE, plain http, 1-second retries, two workers, no web
# listener; each KEY=VALUE replaces that global setting or adds one (an
# empty VALUE drops it). Then "[tenant sim]" with the simulator's URLs, the
# native client id and ticket type 1: the caller appends the tenant's own
# lines, e.g. { sim_conf workers=4; cat <<EOC ... EOC; } > "$MILTER_CONF".
sim_conf() {
	for _sc_d in "socket=inet:$MILTER_PORT@127.0.0.1" \
	    "state_dir=$MILTER_STATE" insecure_http=yes retry_base=1 \
	    workers=2 web_listen=off; do
		_sc_k=${_sc_d%%=*}
		_sc_v=${_sc_d#*=}
		for _sc_a in "$@"; do
			[ "${_sc_a%%=*}" = "$_sc_k" ] && _sc_v=${_sc_a#*=}
		done
		[ -n "$_sc_v" ] && echo "$_sc_k = $_sc_v"
	done
	for _sc_a in "$@"; do
		case " socket state_dir insecure_http retry_base workers web_listen " in
		*" ${_sc_a%%=*} "*) ;;
		*) [ -n "${_sc_a#*=}" ] && echo "${_sc_a%%=*} = ${_sc_a#*=}" ;;
		esac
	done
	cat <<EOC

[tenant sim]
halo_url = $SIM
auth_url = http://127.0.0.1:$SIM_AUTH/auth
client_id = halo-milter-native
ticket_type_id = 1
EOC
}
