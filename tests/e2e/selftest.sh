#!/bin/sh
# tests/e2e/selftest.sh -- proves the e2e harness (lib.sh) works without a
# milter: private Postfix on loopback relaying to smtp-sink, restart, and
# milter_default_action with an unreachable milter.  Run as root.
#   sh tests/e2e/selftest.sh          (KEEP=1 keeps the scratch directory)

HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/halo-e2e-self.XXXXXX) || exit 1
. "$HERE/lib.sh"

PASS=0
FAIL=0
ok()   { PASS=$((PASS + 1)); echo "ok   - $*"; }
nok()  { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    _d=$1; shift
    if "$@"; then ok "$_d"; else nok "$_d"; fi
}

finish() {
    harness_cleanup
    if [ "${KEEP:-0}" = 1 ] || [ "$FAIL" -ne 0 ]; then
        echo "# scratch dir kept: $T"
    else
        rm -rf "$T"
    fi
}
trap finish EXIT
trap 'finish; trap - EXIT; exit 130' INT
trap 'finish; trap - EXIT; exit 143' TERM

SINK=$T/sink
mkmsg() { # mkmsg FILE N
    cat >"$1" <<EOF
From: Selftest <sender@example.org>
To: rcpt$2@example.net
Subject: harness selftest $2
Message-ID: <selftest-$2.$$@example.org>
X-Halo-Selftest: marker-$2
Date: $(date -R)

Message number $2.
.a line starting with a dot
literal backslash-n: \\n and a token: %DATE%
EOF
}
# alive PID: process exists and is not a zombie (PID 1 here may reap late)
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    [ "$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
no_live_in_session() {
    for _p in $(pgrep -s "$1"); do alive "$_p" && return 1; done
    return 0
}
delivered_file_with() { grep -l -F -x "$1" "$SINK"/* >/dev/null 2>&1; }

# ---------------------------------------------------------------- no milter
check "sink_start" sink_start "$SINK"
check "pf_start (no milter)" pf_start "" accept
echo "# postfix on 127.0.0.1:$PF_PORT (master $PF_MASTER_PID), sink on :$SINK_PORT"

for i in 1 2; do
    mkmsg "$T/msg$i.eml" "$i"
    check "send_mail message $i" send_mail "$T/msg$i.eml" sender@example.org "rcpt$i@example.net"
done
check "send_simple message 3" send_simple sender@example.org rcpt3@example.net \
    "harness selftest 3" --header "X-Halo-Selftest: marker-3"
check "3 messages delivered to the sink" pf_wait_delivered "$SINK" 3 30
for i in 1 2 3; do
    check "header X-Halo-Selftest: marker-$i survived" \
        delivered_file_with "X-Halo-Selftest: marker-$i"
done
check "dot-stuffed line survived" delivered_file_with ".a line starting with a dot"
check "body bytes not rewritten by swaks" \
    delivered_file_with 'literal backslash-n: \n and a token: %DATE%'
check "queue drains" pf_wait_queue_empty 10
check "pf_queue_count is 0" test "$(pf_queue_count)" -eq 0

# ---------------------------------------------------------------- restart
old_master=$PF_MASTER_PID
check "pf_stop" pf_stop
check "old master $old_master gone" eval "! alive $old_master"
check "no instance processes after stop" test -z "$(pf_pids)"
check "pf_start again (restart)" pf_start "" accept
check "pf_reload" pf_reload
mkmsg "$T/msg4.eml" 4
check "send_mail after restart" send_mail "$T/msg4.eml" sender@example.org rcpt4@example.net other4@example.com
check "4 messages delivered" pf_wait_delivered "$SINK" 4 30
check "two recipients, one file" sh -c "grep -l -F 'X-Halo-Selftest: marker-4' '$SINK'/* | xargs grep -c '^X-Rcpt-Args:' | grep -qx 2"

# ------------------------------------------------- unreachable milter
dead=$(pf_free_port)
check "pf_start with dead milter inet:$dead@127.0.0.1, tempfail" \
    pf_start "inet:$dead@127.0.0.1" tempfail
mkmsg "$T/msg5.eml" 5
send_mail "$T/msg5.eml"; rc=$?
check "tempfail: swaks fails (rc=$rc)" test "$rc" -ne 0
check "tempfail: 4xx reply" grep -q '^ *<\** 4[0-9][0-9][ -]' "$SWAKS_LAST"
check "tempfail: milter connect failure logged" \
    grep -q "connect to Milter service inet:127.0.0.1:$dead" "$(pf_maillog)"
sleep 1
check "tempfail: nothing delivered" test "$(_h_count_files "$SINK")" -eq 4
check "tempfail: nothing queued" test "$(pf_queue_count)" -eq 0

check "pf_start with dead milter, reject" pf_start "inet:$dead@127.0.0.1" reject
send_mail "$T/msg5.eml"; rc=$?
check "reject: swaks fails (rc=$rc)" test "$rc" -ne 0
check "reject: 5xx reply" grep -q '^ *<\** 5[0-9][0-9][ -]' "$SWAKS_LAST"

check "pf_start with dead milter, accept" pf_start "inet:127.0.0.1:$dead" accept
send_mail "$T/msg5.eml"; rc=$?
check "accept: swaks succeeds (rc=$rc)" test "$rc" -eq 0
check "accept: delivered (5 files)" pf_wait_delivered "$SINK" 5 30
check "accept: marker-5 delivered" delivered_file_with "X-Halo-Selftest: marker-5"

# ---------------------------------------------------------------- cleanup
master=$PF_MASTER_PID
queue=$PF_QUEUE
sinkpid=$SINK_PID
harness_cleanup
check "no master process left (pid $master)" eval "! alive $master"
check "no process in session of master $master" no_live_in_session "$master"
check "no process with cwd in this instance's queue" test -z "$(pf_pids)"
check "smtp-sink gone (pid $sinkpid)" eval "! alive $sinkpid"
check "postfix reports instance stopped" sh -c "! postfix -c '$PF_CONF' status >/dev/null 2>&1"
: "$queue"

echo "harness: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
