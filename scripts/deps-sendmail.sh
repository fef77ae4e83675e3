#!/bin/sh
# deps-sendmail.sh - Debian's Sendmail for the e2e tests (tests/e2e/sendmail.sh),
# unpacked beside Postfix instead of installed: sendmail-bin conflicts with
# postfix (both are the system MTA) and every other test needs Postfix. The
# packages come from Debian's archive (apt-get download) and are unpacked
# with dpkg-deb -x into $SM_ROOT; the libraries the binary links and m4 are
# ordinary packages that deps.sh installs. Nothing is configured: the tests
# generate their own .cf and always run the binary with -C.
# Idempotent: does nothing when the unpacked tree is there.
set -eu
SM_ROOT=${SM_ROOT:-/usr/local/lib/halo-milter-e2e/sendmail}
if [ -x "$SM_ROOT/usr/libexec/sendmail/sendmail" ] &&
   [ -f "$SM_ROOT/usr/share/sendmail/cf/m4/cf.m4" ]; then
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to unpack Sendmail into $SM_ROOT" >&2; exit 1; }
	SUDO="sudo"
fi
echo "deps: unpacking Debian's sendmail-bin and sendmail-cf into $SM_ROOT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt downloads as user _apt when it can write the directory
chmod 755 "$tmp"
id _apt >/dev/null 2>&1 && chown _apt "$tmp" 2>/dev/null || :
(cd "$tmp" && $SUDO apt-get download -q sendmail-bin sendmail-cf) ||
	{ $SUDO apt-get update -qq && (cd "$tmp" && $SUDO apt-get download -q sendmail-bin sendmail-cf); }
$SUDO rm -rf "$SM_ROOT.new"
$SUDO mkdir -p "$SM_ROOT.new"
for deb in "$tmp"/sendmail-bin_*.deb "$tmp"/sendmail-cf_*.deb; do
	$SUDO dpkg-deb -x "$deb" "$SM_ROOT.new"
done
dpkg-deb -f "$tmp"/sendmail-bin_*.deb Version | $SUDO tee "$SM_ROOT.new/VERSION" >/dev/null
$SUDO rm -rf "$SM_ROOT"
$SUDO mv "$SM_ROOT.new" "$SM_ROOT"
"$SM_ROOT/usr/libexec/sendmail/sendmail" -d0.1 -bt -C /dev/null </dev/null 2>/dev/null | head -1
