# shellcheck shell=sh
# tests/e2e/lib.sh -- throw-away private Postfix + smtp-sink on loopback for
# halo-milter end-to-end tests.  POSIX sh (dash) library; source it:
#
#     T=$(mktemp -d /tmp/halo-e2e.XXXXXX)
#     . tests/e2e/lib.sh
#     harness_trap                       # or: trap harness_cleanup EXIT ...
#     sink_start "$T/sink"
#     pf_start "unix:$T/milter/halo.sock" tempfail
#     send_mail msg.eml from@example.org rcpt@example.net
#     pf_wait_delivered "$T/sink" 1 30
#
# Requirements: run as root (Debian 12, Postfix 3.7, packages postfix, swaks);
# the system Postfix is neither used nor touched.  Nothing outside $T is
# written (no change to /etc/postfix is needed: root may use "postfix -c DIR"
# and "postqueue -c DIR" without alternate_config_directories).
#
# $T must be an absolute-able directory path without whitespace or '%'
# (it ends up in main.cf and in smtp-sink's strftime template).  The harness
# does "chmod 755 $T"; every parent of $T must be searchable (o+x) by the
# users "postfix" and "nobody" (true for /tmp/...).
#
# Layout under $T:
#   pf/conf/{main.cf,master.cf}  pf/queue/  pf/data/  pf/maillog
#   pf/ctl.log (output of postfix start/stop/reload)
#   swaks.log (all swaks transcripts), swaks.last (last transcript)
#   sink.log (smtp-sink stdout/stderr)
#
# Milter over a unix socket (smtpd_milters = unix:/abs/path): smtpd runs as
# user "postfix" (not chrooted here), so the CALLER must make sure that
#   * every directory on the socket path is searchable by postfix
#     (e.g. mkdir "$T/milter" && chmod 755 "$T/milter"), and
#   * the socket file itself is writable by postfix (connect(2) needs write
#     permission): run the milter as user postfix, or with umask 000 / chmod
#     0666 the socket after it is created, or chown it to postfix.
# A relative unix: path would be relative to $T/pf/queue -- use absolute paths.
# inet milters: "inet:127.0.0.1:PORT" (Postfix syntax).  Postfix does NOT
# understand the Sendmail form "inet:PORT@HOST" (smtpd dies with "garbage
# after numerical service" and the listener is throttled), so pf_start
# rewrites inet:PORT@HOST to inet:HOST:PORT.
#
# Exported state: T, PF_PORT, PF_DIR, PF_CONF, PF_QUEUE, PF_MASTER_PID,
# SINK_PORT, SINK_PID, SINK_DIR, SWAKS_LAST (transcript of last send).
# Do not call sink_start / pf_start inside $(...) or a pipeline: the state
# variables (and the sink's child pid) must stay in the calling shell.

HARNESS_USER_PF=${HARNESS_USER_PF:-postfix}
HARNESS_USER_SINK=${HARNESS_USER_SINK:-nobody}
# "Daemon name" macro the milter sees ({daemon_name}).
PF_DAEMON_NAME=${PF_DAEMON_NAME:-halo-e2e}
PF_HOSTNAME=${PF_HOSTNAME:-halo-e2e.test}
# Extra main.cf lines (newline separated "name = value") appended by pf_start.
PF_EXTRA_MAIN_CF=${PF_EXTRA_MAIN_CF:-}

PF_PORT=${PF_PORT:-}
PF_DIR=${PF_DIR:-}
PF_CONF=${PF_CONF:-}
PF_QUEUE=${PF_QUEUE:-}
PF_MASTER_PID=${PF_MASTER_PID:-}
SINK_PORT=${SINK_PORT:-}
SINK_PID=${SINK_PID:-}
SINK_DIR=${SINK_DIR:-}
SWAKS_LAST=${SWAKS_LAST:-}

# ---------------------------------------------------------------- helpers

_h_err() { echo "e2e-harness: $*" >&2; }

_h_sleep() { sleep "$1" 2>/dev/null || sleep 1; }

# _h_init: make $T absolute, traversable; set derived paths.
_h_init() {
    if [ -z "${T:-}" ]; then
        _h_err "T is not set (caller must provide a scratch directory)"
        return 1
    fi
    mkdir -p "$T" || return 1
    T=$(cd "$T" && pwd -P) || return 1
    case $T in
        *[[:space:]%]*) _h_err "T ($T) must not contain whitespace or '%'"; return 1 ;;
    esac
    chmod 755 "$T" || return 1
    PF_DIR=$T/pf
    PF_CONF=$PF_DIR/conf
    PF_QUEUE=$PF_DIR/queue
    SWAKS_LAST=$T/swaks.last
    return 0
}

# _h_listening PORT: true if something LISTENs on 127.0.0.1:PORT.
# Reads /proc/net/tcp so that no connection is made (a probe connection to
# smtpd would show up as a session at the milter under test).
_h_listening() {
    _h_hex=$(printf '%04X' "$1")
    awk -v want="0100007F:$_h_hex" '$2 == want && $4 == "0A" { f = 1 } END { exit !f }' \
        /proc/net/tcp
}

# _h_can USER TESTOP PATH: e.g. _h_can nobody -w /dir
_h_can() {
    runuser -u "$1" -- test "$2" "$3" 2>/dev/null
}

_h_count_files() {
    if [ -d "$1" ]; then
        find "$1" -type f | wc -l | tr -d ' '
    else
        echo 0
    fi
}

# ------------------------------------------------------------------ ports

# pf_free_port: print a currently free TCP port on 127.0.0.1.  Picks from
# 20000-32767 (below Linux's ephemeral range, so outgoing connections of
# concurrent tests cannot grab it); falls back to a kernel-assigned port.
pf_free_port() {
    python3 - <<'EOF' 2>/dev/null && return 0
import random, socket
for _ in range(200):
    p = random.randint(20000, 32767)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
    perl -MIO::Socket::INET -e '
        for (1..200) { my $p = 20000 + int(rand(12768));
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $p,
                                          Proto => "tcp", Listen => 1) or next;
            print "$p\n"; exit 0 }
        exit 1'
}

# ------------------------------------------------------------------- sink

# sink_start DIR: smtp-sink on 127.0.0.1:$SINK_PORT; every delivered message
# (one SMTP transaction, any number of recipients) becomes one file
# DIR/<minute>.<random hex> (smtp-sink -d "DIR/%M.").  Sets SINK_PORT,
# SINK_PID, SINK_DIR.
sink_start() {
    _h_init || return 1
    if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
        _h_err "sink already running (pid $SINK_PID)"; return 1
    fi
    [ $# -ge 1 ] || { _h_err "usage: sink_start DIR"; return 1; }
    mkdir -p "$1" || return 1
    SINK_DIR=$(cd "$1" && pwd -P) || return 1
    chown "$HARNESS_USER_SINK" "$SINK_DIR" || return 1
    chmod 755 "$SINK_DIR"
    if ! _h_can "$HARNESS_USER_SINK" -w "$SINK_DIR"; then
        _h_err "$SINK_DIR not writable by $HARNESS_USER_SINK (parents of \$T must be o+x)"
        return 1
    fi
    _h_try=0
    while [ $_h_try -lt 5 ]; do
        _h_try=$((_h_try + 1))
        SINK_PORT=$(pf_free_port) || { _h_err "no free port"; return 1; }
        smtp-sink -u "$HARNESS_USER_SINK" -d "$SINK_DIR/%M." -c \
            "127.0.0.1:$SINK_PORT" 100 >>"$T/sink.log" 2>&1 &
        SINK_PID=$!
        _h_i=0
        while [ $_h_i -lt 100 ]; do           # up to 10 s
            if _h_listening "$SINK_PORT"; then
                return 0
            fi
            kill -0 "$SINK_PID" 2>/dev/null || break
            _h_sleep 0.1
            _h_i=$((_h_i + 1))
        done
        # died (port taken?) or never listened: clean up, retry on new port
        kill "$SINK_PID" 2>/dev/null || :
        wait "$SINK_PID" 2>/dev/null || :
        _h_err "smtp-sink did not come up on port $SINK_PORT (try $_h_try); see $T/sink.log"
        SINK_PID=
    done
    SINK_PORT=
    return 1
}

# sink_stop: stop the smtp-sink started by sink_start (only that pid).
sink_stop() {
    [ -n "$SINK_PID" ] || return 0
    if kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null || :
        _h_i=0
        while kill -0 "$SINK_PID" 2>/dev/null && [ $_h_i -lt 50 ]; do
            _h_sleep 0.1; _h_i=$((_h_i + 1))
        done
        kill -9 "$SINK_PID" 2>/dev/null || :
    fi
    wait "$SINK_PID" 2>/dev/null || :
    SINK_PID=
    return 0
}

# _h_sink_busy: true if the sink process still has a dump file in
# SINK_DIR open (message still being received).
_h_sink_busy() {
    [ -n "$SINK_PID" ] && [ -d "/proc/$SINK_PID/fd" ] || return 1
    for _h_fd in /proc/"$SINK_PID"/fd/*; do
        case $(readlink "$_h_fd" 2>/dev/null) in
            "$SINK_DIR"/*) return 0 ;;
        esac
    done
    return 1
}

# ---------------------------------------------------------------- postfix

# _h_write_main_cf MILTER_SPEC DEFAULT_ACTION
_h_write_main_cf() {
    cat >"$PF_CONF/main.cf" <<EOF
# generated by tests/e2e/lib.sh -- private test instance, do not edit
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DIR/data
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $T
myhostname = $PF_HOSTNAME
mydomain = test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
smtpd_authorized_xclient_hosts = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_connect_timeout = 5s
smtpd_banner = \$myhostname ESMTP halo-e2e
smtputf8_enable = no
biff = no
append_dot_mydomain = no
notify_classes =
message_size_limit = 104857600
mailbox_size_limit = 0
default_process_limit = 50
default_destination_concurrency_limit = 20
smtp_destination_concurrency_limit = 20
default_destination_recipient_limit = 50
in_flow_delay = 0
smtpd_error_sleep_time = 0
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
smtpd_milters = $1
non_smtpd_milters = $1
milter_default_action = $2
milter_protocol = 6
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 60s
milter_macro_daemon_name = $PF_DAEMON_NAME
EOF
    if [ -n "$PF_EXTRA_MAIN_CF" ]; then
        printf '%s\n' "$PF_EXTRA_MAIN_CF" >>"$PF_CONF/main.cf"
    fi
}

# _h_write_master_cf: system master.cf, all chroot columns -> n, the
# "smtp inet" service replaced by "127.0.0.1:$PF_PORT inet".
_h_write_master_cf() {
    awk -v listen="127.0.0.1:$PF_PORT" '
        /^[ \t]*#/ || /^[ \t]*$/ || /^[ \t]/ { print; next }
        NF >= 8 {
            if ($1 == "smtp" && $2 == "inet") $1 = listen
            $5 = "n"
        }
        { print }' /etc/postfix/master.cf >"$PF_CONF/master.cf.new" &&
        mv "$PF_CONF/master.cf.new" "$PF_CONF/master.cf"
}

# Postfix programs sleep until main.cf/master.cf are >= ~2 s old when they
# were just modified (race protection in load_file: costs 1.5-2.5 s per
# start/reload/postconf).  Backdate our freshly written config files.
_h_backdate_conf() {
    touch -d "@$(( $(date +%s) - 10 ))" "$PF_CONF/main.cf" "$PF_CONF/master.cf"
}

# pf_set NAME=VALUE... -- change main.cf parameters of this instance
# (postconf -e); takes effect after pf_reload (or pf_start for listeners).
# Note: pf_start rewrites main.cf from scratch; use PF_EXTRA_MAIN_CF for
# settings that must survive restarts.
pf_set() {
    postconf -c "$PF_CONF" -e "$@" && _h_backdate_conf
}

# pf_pids: pids of all processes of this instance (cwd = our queue dir:
# the master and every daemon it spawns run there).
pf_pids() {
    [ -n "$PF_QUEUE" ] || return 0
    for _h_p in /proc/[0-9]*; do
        [ "$(readlink "$_h_p/cwd" 2>/dev/null)" = "$PF_QUEUE" ] && echo "${_h_p#/proc/}"
    done
    return 0
}

_h_pf_running() {
    [ -n "$PF_CONF" ] && [ -f "$PF_CONF/main.cf" ] &&
        postfix -c "$PF_CONF" status >/dev/null 2>&1
}

# pf_start MILTER_SPEC DEFAULT_ACTION -- (re)start the private Postfix.
# MILTER_SPEC may be "" (no milter).  DEFAULT_ACTION: accept|tempfail|reject
# (default tempfail, like Postfix).  A running instance of this $T is
# stopped first; the queue survives restarts.  PF_PORT is kept across
# restarts if still free.
pf_start() {
    _h_init || return 1
    # Sendmail-style inet:PORT@HOST -> Postfix inet:HOST:PORT
    _h_milter=$(printf '%s\n' "${1:-}" | sed -E 's/inet:([0-9]+)@([^ ,}]+)/inet:\2:\1/g')
    _h_action=${2:-tempfail}
    case $_h_action in
        accept|tempfail|reject|quarantine) ;;
        *) _h_err "bad milter default action '$_h_action'"; return 1 ;;
    esac
    if [ -z "$SINK_PORT" ]; then
        _h_err "pf_start: call sink_start first (SINK_PORT unset)"; return 1
    fi
    pf_stop
    # "postfix" chdirs into queue_directory before anything else, so it
    # must exist (root-owned 755); its sub-directories are created with the
    # right owners by "postfix start" (post-install create-missing).
    mkdir -p "$PF_CONF" "$PF_QUEUE" || return 1
    chmod 755 "$PF_DIR" "$PF_CONF" "$PF_QUEUE"
    # data_directory must belong to the postfix user or the master cannot
    # take its lock.
    mkdir -p "$PF_DIR/data" && chown -R "$HARNESS_USER_PF" "$PF_DIR/data" &&
        chmod 700 "$PF_DIR/data" || return 1
    : >>"$PF_DIR/maillog"
    case $_h_milter in
        unix:*)
            _h_sockdir=$(dirname "${_h_milter#unix:}")
            if ! _h_can "$HARNESS_USER_PF" -x "$_h_sockdir"; then
                _h_err "warning: $_h_sockdir is not searchable by user $HARNESS_USER_PF;" \
                    "smtpd will not reach the milter socket"
            fi ;;
    esac
    _h_try=0
    while [ $_h_try -lt 5 ]; do
        _h_try=$((_h_try + 1))
        if [ -z "$PF_PORT" ] || _h_listening "$PF_PORT"; then
            PF_PORT=$(pf_free_port) || { _h_err "no free port"; return 1; }
        fi
        _h_write_main_cf "$_h_milter" "$_h_action" && _h_write_master_cf &&
            _h_backdate_conf || return 1
        echo "=== start $(date '+%T') port $PF_PORT milter '$_h_milter' $_h_action" >>"$PF_DIR/ctl.log"
        if postfix -c "$PF_CONF" start >>"$PF_DIR/ctl.log" 2>&1; then
            _h_i=0
            while [ $_h_i -lt 100 ]; do
                if _h_listening "$PF_PORT"; then
                    PF_MASTER_PID=$(awk '{ print $1; exit }' "$PF_QUEUE/pid/master.pid" 2>/dev/null) || :
                    return 0
                fi
                _h_sleep 0.1; _h_i=$((_h_i + 1))
            done
            _h_err "postfix started but port $PF_PORT is not listening"
            pf_stop
        else
            _h_err "postfix start failed (try $_h_try, port $PF_PORT):"
            tail -n 5 "$PF_DIR/ctl.log" >&2
            tail -n 5 "$PF_DIR/maillog" >&2
            pf_stop
        fi
        PF_PORT=          # maybe the port was grabbed meanwhile: pick another
    done
    return 1
}

# pf_reload: "postfix reload" (re-reads main.cf/master.cf of this instance).
pf_reload() {
    [ -n "$PF_CONF" ] || { _h_err "pf_reload: not started"; return 1; }
    echo "=== reload $(date '+%T')" >>"$PF_DIR/ctl.log"
    postfix -c "$PF_CONF" reload >>"$PF_DIR/ctl.log" 2>&1
}

# pf_stop: stop this instance and make sure no process of it survives.
pf_stop() {
    [ -n "$PF_CONF" ] && [ -f "$PF_CONF/main.cf" ] || return 0
    if _h_pf_running; then
        echo "=== stop $(date '+%T')" >>"$PF_DIR/ctl.log"
        postfix -c "$PF_CONF" stop >>"$PF_DIR/ctl.log" 2>&1 || :
    fi
    # The master exits at once on SIGTERM; its children follow when their
    # pipes close.  Wait for all of them (identified by cwd), then force.
    _h_i=0
    while [ $_h_i -lt 100 ]; do
        _h_left=$(pf_pids)
        [ -z "$_h_left" ] && break
        # shellcheck disable=SC2086  # pid list
        [ $_h_i -eq 50 ] && { kill $_h_left 2>/dev/null || :; }
        _h_sleep 0.1; _h_i=$((_h_i + 1))
    done
    _h_left=$(pf_pids)
    if [ -n "$_h_left" ]; then
        _h_err "killing leftover postfix processes: $_h_left"
        # shellcheck disable=SC2086  # pid list
        kill -9 $_h_left 2>/dev/null || :
        _h_sleep 0.2
    fi
    PF_MASTER_PID=
    return 0
}

# pf_flush: attempt delivery of all queued mail now.
pf_flush() {
    postqueue -c "$PF_CONF" -f
}

# pf_queue_count: number of messages in this instance's queue (maildrop,
# incoming, active, deferred, hold); works with Postfix stopped, too.
pf_queue_count() {
    _h_n=0
    for _h_q in maildrop incoming active deferred hold; do
        if [ -d "$PF_QUEUE/$_h_q" ]; then
            _h_n=$((_h_n + $(find "$PF_QUEUE/$_h_q" -type f | wc -l)))
        fi
    done
    echo "$_h_n"
}

# pf_maillog: print the maillog path.
pf_maillog() {
    echo "$PF_DIR/maillog"
}

_h_diag() {
    {
        echo "--- $1: $(_h_count_files "$2") file(s):"
        [ -d "$2" ] && ls -l "$2"
        echo "--- queue ($(pf_queue_count)):"
        postqueue -c "$PF_CONF" -p 2>&1 | tail -n 20
        echo "--- tail of $PF_DIR/maillog:"
        tail -n 30 "$PF_DIR/maillog"
    } >&2
}

# pf_wait_delivered DIR N TIMEOUT_S: wait until DIR holds exactly N
# completely received message files.  Non-zero (with diagnostics on
# stderr) on timeout or if more than N files show up.
pf_wait_delivered() {
    _h_dir=$1 _h_want=$2 _h_tmo=${3:-30}
    _h_end=$(( $(date +%s) + _h_tmo ))
    while :; do
        _h_have=$(_h_count_files "$_h_dir")
        if [ "$_h_have" -gt "$_h_want" ]; then
            _h_err "pf_wait_delivered: $_h_have files in $_h_dir, expected $_h_want"
            _h_diag "$_h_dir" "$_h_dir"
            return 1
        fi
        if [ "$_h_have" -eq "$_h_want" ] && ! _h_sink_busy; then
            return 0
        fi
        if [ "$(date +%s)" -ge "$_h_end" ]; then
            _h_err "pf_wait_delivered: timeout after ${_h_tmo}s: $_h_have of $_h_want files in $_h_dir"
            _h_diag "$_h_dir" "$_h_dir"
            return 1
        fi
        _h_sleep 0.1
    done
}

# pf_wait_queue_empty TIMEOUT_S
pf_wait_queue_empty() {
    _h_end=$(( $(date +%s) + ${1:-30} ))
    while [ "$(pf_queue_count)" -ne 0 ]; do
        if [ "$(date +%s)" -ge "$_h_end" ]; then
            _h_err "pf_wait_queue_empty: timeout, $(pf_queue_count) message(s) queued"
            _h_diag "sink" "${SINK_DIR:-/nonexistent}"
            return 1
        fi
        _h_sleep 0.1
    done
    return 0
}

# ------------------------------------------------------------------ swaks

_h_swaks() {
    [ -n "$PF_PORT" ] || { _h_err "send: Postfix not started (PF_PORT unset)"; return 2; }
    # SWAKS_XCLIENT (e.g. "LOGIN=alice@msp.example"): pose as an SMTP AUTH
    # session or another client with XCLIENT (allowed from loopback)
    swaks --server "127.0.0.1:$PF_PORT" --helo client.halo-e2e.test \
        --timeout 120 --suppress-data ${SWAKS_XCLIENT:+--xclient "$SWAKS_XCLIENT"} \
        "$@" >"$SWAKS_LAST" 2>&1 && _h_rc=0 || _h_rc=$?
    { echo "=== $(date '+%T') rc=$_h_rc"; cat "$SWAKS_LAST"; } >>"$T/swaks.log"
    return "$_h_rc"
}

# send_mail FILE [FROM] [TO...] -- submit FILE (a complete RFC 5322 message,
# LF or CRLF line ends) over SMTP.  The message is sent verbatim apart from
# CRLF normalisation and dot-stuffing (swaks' token/"\n" rewriting is
# disabled).  Several TO arguments = one transaction with several RCPTs.
# Returns swaks' exit code (0 = accepted; 23/24/25/26 = rejected at MAIL/
# RCPT/DATA/end-of-data, 4xx and 5xx alike); transcript in $SWAKS_LAST.
send_mail() {
    if [ $# -lt 1 ] || [ ! -r "$1" ]; then
        _h_err "send_mail: cannot read '${1:-}'"; return 1
    fi
    _h_file=$1
    _h_from=${2:-sender@example.org}
    if [ $# -ge 2 ]; then shift 2; else shift $#; fi
    if [ $# -eq 0 ]; then
        _h_to=rcpt@example.net
    else
        _h_to=$1; shift
        for _h_r in "$@"; do _h_to="$_h_to,$_h_r"; done
    fi
    _h_wire=$T/.send.$$.eml
    perl -0777 -pe 's/\r?\n/\r\n/g; s/^\./../mg;
                    $_ .= "\r\n" if length($_) && !/\r\n\z/; $_ .= ".";' \
        "$_h_file" >"$_h_wire" || return 1
    _h_swaks --from "$_h_from" --to "$_h_to" --no-data-fixup --data "@$_h_wire" &&
        _h_rc=0 || _h_rc=$?
    rm -f "$_h_wire"
    return "$_h_rc"
}

# send_simple FROM TO SUBJECT [extra swaks args...] -- swaks-generated test
# message; extra args e.g. --header "X-Foo: bar" --body "text" --attach @f
send_simple() {
    [ $# -ge 3 ] || { _h_err "usage: send_simple FROM TO SUBJECT [swaks args]"; return 1; }
    _h_from=$1 _h_to=$2 _h_subj=$3
    shift 3
    _h_swaks --from "$_h_from" --to "$_h_to" --header "Subject: $_h_subj" "$@"
}

# --------------------------------------------------------------- cleanup

# harness_cleanup: stop Postfix and the sink (idempotent).
harness_cleanup() {
    pf_stop
    sink_stop
    return 0
}

# harness_trap: install EXIT/INT/TERM traps that call harness_cleanup and
# keep a sensible exit status.
harness_trap() {
    trap 'harness_cleanup' EXIT
    trap 'harness_cleanup; trap - EXIT; exit 130' INT
    trap 'harness_cleanup; trap - EXIT; exit 143' TERM
}
