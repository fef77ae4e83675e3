#!/usr/bin/env python3
"""milter-spy.py - a milter-protocol tap for the e2e tests.

Listens on 127.0.0.1:PORT, relays every connection unchanged to the real
milter at 127.0.0.1:TARGET and records, from the MTA's side of the stream,
which macros the MTA sent for which step: one JSON line per SMFIC_MACRO
packet, {"conn": N, "step": "M", "macros": {"i": "...", ...}}.

This is how the Sendmail tests see what Sendmail's Milter.macros.* options
really deliver ({i}, {auth_authen}, {daemon_name}) without a change to the
daemon.  Bounded: a packet over 1 MiB ends the connection.

usage: milter-spy.py --port P --target T --log FILE --ready FILE
"""
import argparse
import json
import socket
import struct
import sys
import threading

MAX_PACKET = 1 << 20


def pump(src, dst, on_packet, lock):
    """Copy src to dst; if on_packet, feed it each complete packet."""
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if on_packet is None:
                continue
            buf += data
            while len(buf) >= 4:
                (n,) = struct.unpack(">I", buf[:4])
                if n == 0 or n > MAX_PACKET:
                    raise ValueError("bad packet length %d" % n)
                if len(buf) < 4 + n:
                    break
                pkt, buf = buf[4:4 + n], buf[4 + n:]
                with lock:
                    on_packet(pkt)
    except (OSError, ValueError):
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(16)
    log = open(a.log, "a", encoding="utf-8")
    lock = threading.Lock()
    with open(a.ready, "w") as f:
        f.write("%d\n" % a.port)
    conn_no = 0

    while True:
        client, _ = lsock.accept()
        conn_no += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", a.target), timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()       # the MTA sees the milter as down
            continue
        n = conn_no

        def on_packet(pkt, n=n):
            if pkt[:1] != b"D" or len(pkt) < 2:
                return
            parts = pkt[2:].split(b"\0")
            macros = {}
            for i in range(0, len(parts) - 1, 2):
                name = parts[i].decode("utf-8", "replace")
                macros[name] = parts[i + 1].decode("utf-8", "replace")
            log.write(json.dumps({"conn": n, "step": pkt[1:2].decode("ascii", "replace"),
                                  "macros": macros}) + "\n")
            log.flush()

        threading.Thread(target=pump, args=(client, upstream, on_packet, lock),
                         daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, None, lock),
                         daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
