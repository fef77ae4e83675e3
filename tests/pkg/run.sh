#!/bin/sh
# tests/pkg/run.sh - the Debian package as an operator gets it: build it
# (make deb, lintian included), install it with apt into a fresh Debian 12
# chroot (debootstrap, minbase), check what the package set up, make the
# documented edits to the installed configuration, check it with -t, start
# the daemon exactly as the unit does (User=, ExecStartPre=, ExecStart=;
# StateDirectory=/RuntimeDirectory= made as systemd makes them) against the
# Halo simulator, send one mail through a private Postfix and see it become
# a ticket, stop it, purge the package.
#
# Slow (a debootstrap the first time, ~2 min; apt downloads each run): run by
# "make check-pkg", not by "make check". The debootstrapped tree is cached as
# a tarball under /var/cache/halo-milter-test, and downloaded .debs in
# /var/cache/halo-milter-test/archives. Needs root.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${PKG_TEST_CACHE:-/var/cache/halo-milter-test}
ROOTFS_TGZ=$CACHE/bookworm-minbase.tar.gz
T=$(mktemp -d /var/tmp/halo-pkg.XXXXXX)
R=$T/root
chmod 755 "$T"
. "$TOP/tests/e2e/lib.sh"
. "$TOP/tests/e2e/sim.sh"
MILTER_PID=
mounted=
cleanup() {
	[ -n "$MILTER_PID" ] && kill "$MILTER_PID" 2>/dev/null && wait "$MILTER_PID" 2>/dev/null
	sim_stop
	harness_cleanup
	for m in $mounted; do umount -l "$m" 2>/dev/null; done
	[ -n "${KEEP:-}" ] && { echo "pkg: kept $T"; return; }
	rm -rf "$T"
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM
SUITE=pkg
. "$TOP/tests/lib/check.sh"
finish() { echo "pkg: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as_daemon() { chroot --userspec=halo-milter:halo-milter "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "pkg: needs root" >&2; exit 1; }

# --- the package ----------------------------------------------------------
if [ -z "${HALO_DEB:-}" ]; then
	(cd "$TOP" && make --no-print-directory BUILD="$BUILD" deb) > "$T/deb.log" 2>&1
	rc=$?
	check "make deb builds the package and lintian reports no errors" eq "$rc" 0
	[ "$rc" -eq 0 ] || { tail -20 "$T/deb.log"; finish; }
	HALO_DEB=$(ls "$TOP/$BUILD"/deb/halo-milter_*_*.deb | grep -v dbgsym | head -1)
fi
echo "pkg: $HALO_DEB"

# --- a Debian 12 chroot: debootstrap once, then from the cached tarball ----
# the mirror this machine's apt uses (deb822 URIs: or a one-line "deb")
MIRROR=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb[[:space:]]\{1,\}\(http[^[:space:]]*\/debian\)[[:space:]]\{1,\}bookworm[[:space:]].*/\1/p' \
    /etc/apt/sources.list 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE/archives/partial"
if [ ! -s "$ROOTFS_TGZ" ]; then
	echo "pkg: debootstrap bookworm from $MIRROR (cached in $ROOTFS_TGZ)"
	if ! debootstrap --variant=minbase bookworm "$T/boot" "$MIRROR" \
	    > "$T/debootstrap.log" 2>&1; then
		tail -20 "$T/debootstrap.log"
		not_ok "debootstrap bookworm"
		finish
	fi
	rm -rf "$T/boot/var/cache/apt/archives/"*.deb
	tar -C "$T/boot" -czf "$ROOTFS_TGZ.tmp" . && mv "$ROOTFS_TGZ.tmp" "$ROOTFS_TGZ"
	rm -rf "$T/boot"
fi
mkdir -p "$R"
tar -C "$R" -xzf "$ROOTFS_TGZ" || { not_ok "unpack $ROOTFS_TGZ"; finish; }
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR" \
    > "$R/etc/apt/sources.list"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null
# no service starts from maintainer scripts (there is no systemd here anyway)
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc" && mounted="$R/proc $mounted"
mount --bind /dev "$R/dev" && mounted="$R/dev $mounted"
mount --bind "$CACHE/archives" "$R/var/cache/apt/archives" &&
    mounted="$R/var/cache/apt/archives $mounted"

# --- install: apt resolves the package's computed Depends ------------------
cp "$HALO_DEB" "$R/tmp/"
deb=/tmp/$(basename "$HALO_DEB")
in_root apt-get update -qq > "$T/apt.log" 2>&1
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$deb" >> "$T/apt.log" 2>&1
rc=$?
check "apt install ./halo-milter_*.deb into Debian 12" eq "$rc" 0
[ "$rc" -eq 0 ] || { tail -20 "$T/apt.log"; finish; }

uid=$(in_root id -u halo-milter 2>/dev/null)
check "postinst made the system user halo-milter" test -n "$uid" -a "${uid:-1000}" -lt 1000
check "its group exists" sh -c "chroot '$R' getent group halo-milter >/dev/null"
check "conffile is 0640 root:halo-milter" eq "$(in_root stat -c '%a %U:%G' /etc/halo-milter/halo-milter.conf 2>/dev/null)" "640 root:halo-milter"
check "config dir is 0750 root:halo-milter" eq "$(in_root stat -c '%a %U:%G' /etc/halo-milter 2>/dev/null)" "750 root:halo-milter"
check "dpkg lists the configuration as a conffile" sh -c \
    "chroot '$R' dpkg-query -W -f='\${Conffiles}' halo-milter | grep -q '/etc/halo-milter/halo-milter.conf '"
check "state dir /var/lib/halo-milter belongs to the user" eq "$(in_root stat -c '%U:%G' /var/lib/halo-milter 2>/dev/null)" "halo-milter:halo-milter"
for m in man8/halo-milter.8.gz man8/halo-milterctl.8.gz man5/halo-milter.conf.5.gz; do
	check "man page $m installed" test -s "$R/usr/share/man/$m"
done
check "README installed" test -s "$R/usr/share/doc/halo-milter/README.md.gz"
check "annotated example installed" test -s "$R/usr/share/doc/halo-milter/examples/halo-milter.conf"
UNIT=$R/lib/systemd/system/halo-milter.service
check "unit installed" test -s "$UNIT"
check "unit runs /usr/sbin/halo-milter" grep -q '^ExecStart=/usr/sbin/halo-milter ' "$UNIT"
check "unit: StateDirectory= and RuntimeDirectory=" sh -c "grep -q '^StateDirectory=halo-milter' '$UNIT' && grep -q '^RuntimeDirectory=halo-milter' '$UNIT'"
check "unit: Documentation= names the man pages" grep -q '^Documentation=man:halo-milter(8)' "$UNIT"
check "unit: ExecReload= sends SIGHUP (live reload)" grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$UNIT"
check "web root installed where the binary looks" test -s "$R/usr/share/halo-milter/web/pane/taskpane.html"
check "halo-milter --help without a config" sh -c "chroot '$R' halo-milter --help >/dev/null"
check "halo-milterctl --help without a config or store" sh -c "chroot '$R' halo-milterctl --help >/dev/null"
out=$(in_root halo-milterctl queue 2>&1)
check "halo-milterctl before the first start: no store (says so)" sh -c "echo '$out' | grep -q 'no store at /var/lib/halo-milter/halo-milter.db'"
out=$(chroot --userspec=nobody:nogroup "$R" /usr/sbin/halo-milterctl queue 2>&1)
check "halo-milterctl as another user: refused, not 'missing'" sh -c "echo \"\$1\" | grep -q 'Permission denied'" _ "$out"
out=$(as_daemon halo-milter -t 2>&1)
check "the installed configuration is valid as is (no tenant: pass-through)" sh -c "echo '$out' | grep -q 'configuration OK (0 tenants)'"

# --- the documented edits: one tenant, against the simulator ---------------
sim_start || { not_ok "Halo simulator starts"; finish; }
MILTER_PORT=$(pf_free_port)
WEB_PORT=$(pf_free_port)
while [ "$WEB_PORT" = "$MILTER_PORT" ]; do WEB_PORT=$(pf_free_port); done
CONF=$R/etc/halo-milter/halo-milter.conf
# 1. uncomment the [tenant acme] section (up to the next tenant)
awk '/^#\[tenant acme\]/ { on = 1 } /^#\[tenant globex\]/ { on = 0 }
     { if (on && $0 ~ /^#[^ #]/) print substr($0, 2); else print }' "$CONF" > "$T/conf.new"
# 2. set halo_url, client_id, ... (here: the simulator; plain http to it
#    needs insecure_http) and this test's ports
sed -i -e "s|^socket = .*|socket = inet:$MILTER_PORT@127.0.0.1|" \
    -e "s|^web_listen = .*|web_listen = 127.0.0.1:$WEB_PORT|" \
    -e "s|^public_url = .*|public_url = http://127.0.0.1:$WEB_PORT|" \
    -e "s|^#insecure_http = no|insecure_http = yes|" \
    -e "s|^halo_url = https://acme.halopsa.com|halo_url = $SIM|" \
    -e "s|^# auth_url defaults.*|auth_url = http://127.0.0.1:$SIM_AUTH/auth|" \
    -e "s|^halo_tenant = acme|halo_tenant = halosim|" \
    -e "s|^client_id = 6f1c2a9e-milter-acme|client_id = halo-milter-native|" \
    -e "s|^default_agent = .*|default_agent = alice@msp.example|" \
    -e "s|^cf_message_id = .*|cf_message_id = CFMilterKey|" \
    "$T/conf.new"
cat "$T/conf.new" > "$CONF"	# keeps the file's owner and mode
check "edited: one tenant active" grep -q '^\[tenant acme\]' "$CONF"
out=$(as_daemon halo-milter -t 2>&1)
check "halo-milter -t (as the unit's User=) accepts the edited file" sh -c "echo \"\$1\" | grep -q 'configuration OK (1 tenant)'" _ "$out"
[ -n "$out" ] && echo "    $out"

# --- start it as the unit does, without systemd -----------------------------
# StateDirectory=/RuntimeDirectory= with User=: directories owned by the user
in_root install -d -o halo-milter -g halo-milter -m 0750 /run/halo-milter && \
    in_root install -d -o halo-milter -g halo-milter -m 0750 /var/lib/halo-milter
pre=$(sed -n 's/^ExecStartPre=//p' "$UNIT")
start=$(sed -n 's/^ExecStart=//p' "$UNIT")
# shellcheck disable=SC2086
as_daemon $pre > "$T/pre.log" 2>&1
check "ExecStartPre ($pre) passes" eq "$?" 0
# not through as_daemon: "func &" would fork a subshell, and $! would be its
# pid rather than the daemon's (chroot and env exec, so this one is)
# shellcheck disable=SC2086
chroot --userspec=halo-milter:halo-milter "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    $start 2> "$T/daemon.log" &
MILTER_PID=$!
i=0
while [ $i -lt 100 ] && ! _h_listening "$MILTER_PORT"; do
	kill -0 "$MILTER_PID" 2>/dev/null || break
	sleep 0.1; i=$((i + 1))
done
check "daemon started from ExecStart ($start) listens" _h_listening "$MILTER_PORT"
check "it logged its start" grep -q 'started: socket inet:' "$T/daemon.log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/healthz")
check "/healthz answers 200" eq "$code" 200
check "the store belongs to the user" eq "$(in_root stat -c '%U' /var/lib/halo-milter/halo-milter.db 2>/dev/null)" halo-milter

# --- one mail: private Postfix -> packaged daemon -> simulator -------------
token_for alice@msp.example | as_daemon halo-milterctl token import alice@msp.example acme > "$T/token.log" 2>&1
check "halo-milterctl token import (as the daemon's user)" eq "$?" 0
sink_start "$T/sink" || { not_ok "smtp-sink starts"; finish; }
pf_start "inet:$MILTER_PORT@127.0.0.1" tempfail || { not_ok "Postfix starts"; finish; }
{
	echo "From: Ann <ann@acme.example>"; echo "To: support@acme.example"
	echo "Subject: Packaged milter test"; echo "Message-ID: <pkg-1@acme.example>"
	echo "Date: Fri, 04 Dec 2026 10:00:00 +0000"; echo
	echo "Hello from the package test."
} > "$T/m.eml"
send_mail "$T/m.eml" ann@acme.example support@acme.example
check "Postfix accepted the mail" eq "$?" 0
check "mail delivered" pf_wait_delivered "$T/sink" 1 30
i=0
while [ $i -lt 300 ]; do
	in_root halo-milterctl queue -s done 2>/dev/null | grep -qF '<pkg-1@acme.example>' && break
	sleep 0.1; i=$((i + 1))
done
check "the job is done" sh -c "chroot '$R' halo-milterctl queue -s done | grep -qF '<pkg-1@acme.example>'"
check "the simulator has the ticket" eq "$(simq '"<pkg-1@acme.example>" in ids')" True

kill -TERM "$MILTER_PID" 2>/dev/null
wait "$MILTER_PID"
rc=$?
MILTER_PID=
check "SIGTERM stops it cleanly" eq "$rc" 0
check "it logged its stop" grep -q 'stopping' "$T/daemon.log"

# --- purge -----------------------------------------------------------------
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq halo-milter > "$T/purge.log" 2>&1
check "apt purge" eq "$?" 0
check "purge removed the configuration" test ! -e "$R/etc/halo-milter/halo-milter.conf"
check "purge removed the state" test ! -e "$R/var/lib/halo-milter"
check "purge removed the stat overrides" sh -c "! chroot '$R' dpkg-statoverride --list | grep -q halo-milter"
finish
