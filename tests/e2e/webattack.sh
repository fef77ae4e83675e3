#!/bin/sh
# webattack.sh - end to end: halo-milter's web server under hostile clients
# (tests/e2e/webattack.py): slow connections from a few addresses, a request
# that never finishes, floods of wrong enrollment codes and admin passwords
# from many addresses, /metrics from outside admin_networks. Every other
# client must still be served. No Postfix and no Halo: the pages checked
# here do not call Halo.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/halo-e2e-webattack.XXXXXX")
. "$HERE/lib.sh"
. "$HERE/daemon.sh"
trap 'daemon_stop; rm -rf "$T"' EXIT
trap 'daemon_stop; rm -rf "$T"; trap - EXIT; exit 130' INT TERM
SUITE=webattack
. "$TOP/tests/lib/check.sh"

TIMEOUT=6
web_ports
MILTER_CONF=$T/halo-milter.conf
MILTER_STATE=$T/state
cat > "$MILTER_CONF" <<EOC
socket = inet:$MILTER_PORT@127.0.0.1
state_dir = $MILTER_STATE
web_listen = 127.0.0.1:$WEB_PORT
public_url = $WEB
insecure_http = yes
workers = 0
web_request_timeout = $TIMEOUT
admin_networks = 127.0.0.0/25

[tenant sim]
halo_url = http://127.0.0.1:9
client_id = halo-milter-e2e
ticket_type_id = 1
route = support@msp.example intake agent=alice@msp.example
EOC
daemon_start || exit 1
_i=0
while ! _h_listening "$WEB_PORT" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
check "web server listens on web_listen" _h_listening "$WEB_PORT"

# a valid code, and an admin password (a hash with the fewest iterations
# accepted, so that a flood of wrong ones stays quick)
CODE=$(ctl enroll alice@msp.example sim | sed -n 's/^code: \([A-Z]\{4\}-[A-Z]\{4\}\) .*/\1/p')
check "halo-milterctl enroll prints a code" [ -n "$CODE" ]
PASSWORD=correct-horse-battery
python3 - "$MILTER_STATE/admin.pw" "$PASSWORD" <<'EOP'
import base64, hashlib, os, sys
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
salt = os.urandom(16)
h = hashlib.pbkdf2_hmac("sha256", sys.argv[2].encode(), salt, 100000, 32)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, ("pbkdf2-sha256$100000$%s$%s\n" % (b64(salt), b64(h))).encode())
os.close(fd)
EOP

python3 "$HERE/webattack.py" --port "$WEB_PORT" --code "$CODE" \
    --password "$PASSWORD" --timeout "$TIMEOUT" > "$T/py.out" 2>&1
py_rc=$?
grep -E "^(ok  |FAIL) webattack: |^    " "$T/py.out"
count_from "$T/py.out"
if [ $py_rc -ne 0 ] && ! grep -q "^FAIL webattack: " "$T/py.out"; then
	not_ok "webattack.py ended early (exit $py_rc)"
	tail -20 "$T/py.out" | sed 's/^/    /'
fi
check "the daemon survived" kill -0 "$MILTER_PID"
daemon_stop
check "no sanitizer report" sh -c '! grep -q "Sanitizer\|runtime error" "$1"' - "$T/daemon.log"

echo "webattack: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
