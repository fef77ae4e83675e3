#!/bin/sh
# pg.sh - a private PostgreSQL server for the tests, from Debian's packages
# (postgresql): no system service, no TCP, a Unix socket in a private
# directory.
#
#   sh scripts/pg.sh start DIR   initdb DIR/data, start the server with its
#                                socket in DIR, create database "halo" and
#                                print its conninfo (also in DIR/conninfo)
#   sh scripts/pg.sh stop DIR    stop it (fast shutdown) and remove DIR
#   sh scripts/pg.sh halt DIR    stop it, keep DIR (start DIR again later)
#   sh scripts/pg.sh resume DIR  start a halted server again
#
# The server runs with fsync=off (a test's data is thrown away);
# PG_FSYNC=on keeps the server's default, for figures a deployment would see
# (tests/bench/run.sh).
# PostgreSQL refuses to run as root: as root the server runs as the
# "postgres" user (made by the package) and DIR is handed to it.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pg.sh start|stop|halt|resume DIR" >&2; exit 2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || {
	echo "pg.sh: no PostgreSQL server (apt-get install postgresql; make deps)" >&2
	exit 1
}

# as_pg CMD...: run CMD as the server's user
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
	    -o "-k $dir -c listen_addresses= -c fsync=${PG_FSYNC:-off} -c max_connections=60" \
	    start >/dev/null
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres "$dir"
		chmod 0700 "$dir"
	fi
	as_pg "$bindir/initdb" -D "$dir/data" -U halo -A trust -E UTF8 \
	    --no-sync >"$dir/initdb.log" 2>&1 || {
		echo "pg.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
	pg_start || { echo "pg.sh: the server did not start:" >&2
		cat "$dir/server.log" >&2; exit 1; }
	as_pg "$bindir/createdb" -h "$dir" -U halo halo
	# root's tests reach the socket: the directory stays private to
	# postgres otherwise
	[ "$(id -u)" -eq 0 ] && chmod 0711 "$dir"
	echo "host=$dir user=halo dbname=halo" > "$dir/conninfo"
	cat "$dir/conninfo"
	;;
resume)
	pg_start
	;;
halt)
	[ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w \
	    stop >/dev/null 2>&1 || true
	;;
stop)
	[ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w \
	    stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
*)
	echo "usage: pg.sh start|stop|halt|resume DIR" >&2
	exit 2
	;;
esac
