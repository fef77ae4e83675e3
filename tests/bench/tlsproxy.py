#!/usr/bin/env python3
"""tlsproxy.py - a small TLS-terminating TCP proxy for the benchmark, so the
daemon reaches the Halo simulator over https:// as it reaches a real Halo, and
the TLS handshakes it pays can be counted.  Python standard library only.

    tlsproxy.py CERT KEY STATS_FILE LISTEN_PORT:TARGET_PORT [...]

Every LISTEN_PORT (on 127.0.0.1, 0 = pick one) accepts TLS with CERT/KEY and
forwards the plain bytes to 127.0.0.1:TARGET_PORT, one upstream connection per
client connection.  STATS_FILE is rewritten (atomically) after every
handshake and at start:
    {"ports": {"<target>": <listen port>, ...},
     "handshakes": N, "resumed": R, "connections_open": K}
"handshakes" counts every completed TLS handshake, full or resumed ("resumed":
the abbreviated ones).  Stop it with SIGTERM.
"""
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading

LOCK = threading.Lock()
STATS = {"ports": {}, "handshakes": 0, "resumed": 0, "connections_open": 0}


def write_stats(path):
    with LOCK:
        data = json.dumps(STATS)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def pump(tls, target_port, stats_path):
    """Handshake, then copy bytes both ways until either side closes."""
    try:
        tls.do_handshake()
    except (ssl.SSLError, OSError):
        tls.close()
        return
    with LOCK:
        STATS["handshakes"] += 1
        STATS["connections_open"] += 1
        if tls.session_reused:
            STATS["resumed"] += 1
    write_stats(stats_path)
    up = None
    try:
        up = socket.create_connection(("127.0.0.1", target_port), timeout=30)
        up.settimeout(None)
        tls.settimeout(None)
        socks = [tls, up]
        while True:
            # data already decrypted inside the TLS object is not seen by select
            ready = [tls] if tls.pending() else select.select(socks, [], [], 300)[0]
            if not ready:
                break
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (up if s is tls else tls).sendall(data)
    except (ssl.SSLError, OSError):
        pass
    finally:
        with LOCK:
            STATS["connections_open"] -= 1
        for s in (tls, up):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def serve(lsock, ctx, target_port, stats_path):
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        try:
            tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError):
            conn.close()
            continue
        threading.Thread(target=pump, args=(tls, target_port, stats_path),
                         daemon=True).start()


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    cert, key, stats_path = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    for pair in sys.argv[4:]:
        listen, target = (int(x) for x in pair.split(":"))
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", listen))
        lsock.listen(128)
        STATS["ports"][str(target)] = lsock.getsockname()[1]
        threading.Thread(target=serve, args=(lsock, ctx, target, stats_path),
                         daemon=True).start()
    write_stats(stats_path)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pause()


if __name__ == "__main__":
    main()
