#!/bin/sh
# deps.sh - install the Debian packages halo-milter needs to build, test and
# run its demo. The Sendmail for the e2e tests is unpacked, not installed
# (scripts/deps-sendmail.sh): its runtime libraries, m4 and the SASL tools
# are listed here. Idempotent and non-interactive: installs only what is missing.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libmilter-dev libcurl4-openssl-dev libcjson-dev libgmime-3.0-dev libssl-dev
libsqlite3-dev sqlite3 postgresql libpq-dev libmicrohttpd-dev libcmocka-dev libgumbo-dev libytnef0-dev
miltertest postfix swaks python3 procps chromium libqrencode-dev libxml2-utils
man-db libsystemd-dev m4 libwrap0 libdb5.3 libldap-2.5-0 libnsl2 libsasl2-2 libssl3
libsasl2-modules libsasl2-modules-db sasl2-bin prometheus"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -z "$missing" ]; then
	sh "$(dirname "$0")/deps-sendmail.sh"
	sh "$(dirname "$0")/deps-npm.sh"
	exit 0
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install:$missing" >&2; exit 1; }
	SUDO="sudo"
fi
# Postfix asks a debconf question on install: answer "No configuration"; the
# tests and the demo run their own private instance.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
sh "$(dirname "$0")/deps-sendmail.sh"
sh "$(dirname "$0")/deps-npm.sh"
