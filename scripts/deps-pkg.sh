#!/bin/sh
# deps-pkg.sh - install the Debian packages needed only to build and test the
# Debian package (make deb, make check-pkg): debhelper, dpkg-dev, lintian,
# debootstrap, and the build dependencies named in debian/control.
# Idempotent: installs only what is missing.
set -eu

PKGS="debhelper dpkg-dev devscripts fakeroot lintian debootstrap
build-essential pkg-config libmilter-dev libcurl4-openssl-dev libcjson-dev
libgmime-3.0-dev libssl-dev libsqlite3-dev libmicrohttpd-dev libgumbo-dev
libytnef0-dev libqrencode-dev libsystemd-dev man-db groff-base"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps-pkg: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps-pkg: need root (or sudo) to install:$missing" >&2; exit 1; }
	SUDO="sudo"
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
