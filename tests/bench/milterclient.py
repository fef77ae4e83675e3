#!/usr/bin/env python3
"""milterclient.py - a minimal MTA side of the milter protocol (version 6),
Python 3 standard library only, for the benchmarks.

It plays what Postfix does for one SMTP transaction: OPTNEG, CONNECT, MAIL,
RCPT, DATA, headers, EOH, body chunks (at most 65535 bytes each, as
libmilter expects by default), EOB, then QUIT.  It honours the protocol flags
the milter answers with (SMFIP_NO* = do not send that step, SMFIP_NR_* = no
reply to wait for).  The end of message is timed from just before the EOB
packet is written to the moment the final reply (continue, accept, reject,
tempfail, discard or a reply code) has been read, with CLOCK_MONOTONIC;
header changes the milter sends on the way ('h', 'm', 'i', ...) are part of
that time, as they are for Postfix.

Sub-commands (JSON on stdout):
  eom  SOCKET SIZE COUNT [CONC]  messages of SIZE bytes, CONC sessions at a
                            time (default 1): EOM latencies
  logrss SOCKET PID SIZE CTL [RCPT [SIM]] one mail of SIZE bytes with
                            attachments of at most 4 MiB each, until the
                            workers logged it (CTL: "halo-milterctl -c
                            CONF"): the daemon's peak RSS; with SIM (the
                            Halo simulator's base URL) whether Halo holds
                            every attachment, byte for byte
  rss  SOCKET PID SIZE N     N concurrent sessions with SIZE-byte bodies;
                             VmHWM/VmRSS of PID before and after
"""
import base64
import hashlib
import json
import os
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

# commands (MTA -> milter)
SMFIC_ABORT, SMFIC_BODY, SMFIC_CONNECT, SMFIC_MACRO = b"A", b"B", b"C", b"D"
SMFIC_BODYEOB, SMFIC_HELO, SMFIC_QUIT_NC, SMFIC_HEADER = b"E", b"H", b"K", b"L"
SMFIC_MAIL, SMFIC_EOH, SMFIC_OPTNEG, SMFIC_QUIT = b"M", b"N", b"O", b"Q"
SMFIC_RCPT, SMFIC_DATA = b"R", b"T"

# protocol flags (what the milter does not want / will not answer)
SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL, SMFIP_NORCPT = 0x1, 0x2, 0x4, 0x8
SMFIP_NOBODY, SMFIP_NOHDRS, SMFIP_NOEOH, SMFIP_NR_HDR = 0x10, 0x20, 0x40, 0x80
SMFIP_NOUNKNOWN, SMFIP_NODATA, SMFIP_SKIP, SMFIP_RCPT_REJ = 0x100, 0x200, 0x400, 0x800
SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL, SMFIP_NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
SMFIP_NR_DATA, SMFIP_NR_UNKN, SMFIP_NR_EOH, SMFIP_NR_BODY = 0x10000, 0x20000, 0x40000, 0x80000
SMFIP_HDR_LEADSPC = 0x100000
# what we offer: every "no" and "no reply" flag, like Postfix 3.x does
OFFER_PROTO = 0x1FFFFF
OFFER_ACTIONS = 0x1FF

# replies that end a command
FINAL = set(b"acdrtyf")        # accept continue discard reject tempfail replycode connfail
SKIP = ord("s")                # skip the rest of the body
PROGRESS = ord("p")
CHUNK = 65535


class MilterError(Exception):
    pass


class Milter:
    """One milter connection (one SMTP session)."""

    def __init__(self, spec, timeout=120):
        if spec.startswith(("unix:", "local:")):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = spec.split(":", 1)[1]
        elif spec.startswith("inet:"):
            port, host = spec[5:].split("@", 1)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            addr = (host, int(port))
        else:
            raise ValueError("socket must be unix:PATH or inet:PORT@HOST")
        self.sock.settimeout(timeout)
        self.sock.connect(addr)
        self.proto = 0
        self.mods = []

    # -- wire
    def send(self, cmd, data=b""):
        self.sock.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def _recvn(self, n):
        buf = bytearray()
        while len(buf) < n:
            part = self.sock.recv(n - len(buf))
            if not part:
                raise MilterError("milter closed the connection")
            buf += part
        return bytes(buf)

    def recv(self):
        (n,) = struct.unpack(">I", self._recvn(4))
        pkt = self._recvn(n)
        return pkt[0], pkt[1:]

    def reply(self):
        """Read until a final reply; header changes are kept in self.mods."""
        while True:
            code, data = self.recv()
            if code in FINAL or code == SKIP:
                return chr(code), data
            if code == PROGRESS:
                continue
            self.mods.append((chr(code), data))

    def command(self, cmd, data, no_flag, nr_flag):
        """Send a step unless the milter opted out; wait for its reply unless
        it said it sends none.  Returns the reply code, '' when none."""
        if self.proto & no_flag:
            return ""
        self.send(cmd, data)
        if self.proto & nr_flag:
            return ""
        code, _ = self.reply()
        return code

    # -- protocol steps
    def negotiate(self):
        self.send(SMFIC_OPTNEG, struct.pack(">III", 6, OFFER_ACTIONS, OFFER_PROTO))
        code, data = self.recv()
        if code != ord("O") or len(data) < 12:
            raise MilterError("bad OPTNEG reply %r" % chr(code))
        _ver, _act, self.proto = struct.unpack(">III", data[:12])

    def macro(self, for_cmd, pairs):
        data = for_cmd + b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                                  for k, v in pairs)
        self.send(SMFIC_MACRO, data)

    def transaction(self, sender, rcpt, headers, body, queue_id="BENCH"):
        """Everything up to (not including) the end of body.  Returns False
        when the milter already ended the transaction (accept/reject...)."""
        self.mods = []
        self.macro(SMFIC_MAIL, [("i", queue_id)])
        if self.command(SMFIC_MAIL, b"<" + sender.encode() + b">\0",
                        SMFIP_NOMAIL, SMFIP_NR_MAIL) not in ("", "c"):
            return False
        if self.command(SMFIC_RCPT, b"<" + rcpt.encode() + b">\0",
                        SMFIP_NORCPT, SMFIP_NR_RCPT) not in ("", "c"):
            return False
        self.macro(SMFIC_DATA, [("i", queue_id)])
        if self.command(SMFIC_DATA, b"", SMFIP_NODATA, SMFIP_NR_DATA) not in ("", "c"):
            return False
        for name, value in headers:
            if self.command(SMFIC_HEADER, name.encode() + b"\0" + value.encode() + b"\0",
                            SMFIP_NOHDRS, SMFIP_NR_HDR) not in ("", "c"):
                return False
        if self.command(SMFIC_EOH, b"", SMFIP_NOEOH, SMFIP_NR_EOH) not in ("", "c"):
            return False
        return True

    def body_chunks(self, chunks):
        """Send body chunks (an iterable of bytes, each <= CHUNK)."""
        for c in chunks:
            r = self.command(SMFIC_BODY, c, SMFIP_NOBODY, SMFIP_NR_BODY)
            if r == "s":
                break
            if r not in ("", "c"):
                return False
        return True

    def eom(self):
        """End of body; returns (final reply code, seconds)."""
        self.macro(SMFIC_BODYEOB, [("i", "BENCH")])
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        self.send(SMFIC_BODYEOB)
        code, _ = self.reply()
        t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
        return code, t1 - t0

    def connect(self, host="client.bench.test", addr="127.0.0.1", port=25):
        data = host.encode() + b"\0" + b"4" + struct.pack(">H", port) + addr.encode() + b"\0"
        return self.command(SMFIC_CONNECT, data, SMFIP_NOCONNECT, SMFIP_NR_CONN)

    def quit(self):
        try:
            self.send(SMFIC_QUIT)
        finally:
            self.sock.close()


# --------------------------------------------------------------- messages

RCPT = "support@acme.example"          # an intake route in tests/e2e/daemon.sh


def headers_for(i, tag):
    return [
        ("From", "Sender %d <s%d-%s@client%d.example>" % (i, i, tag, i % 40)),
        ("To", "Support <%s>" % RCPT),
        ("Subject", "Benchmark message %d (%s)" % (i, tag)),
        ("Date", "Tue, 24 Nov 2026 10:00:00 +0000"),
        # unique per message: the dedup path is not what is measured
        ("Message-ID", "<bench-%s-%d-%d@client.example>" % (tag, os.getpid(), i)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]


_LINE = (b"The quick brown fox jumps over the lazy dog; printer on floor 2 "
         b"is jammed again.\r\n")


def body_of(size):
    """SIZE bytes of CRLF text, as chunks of at most CHUNK bytes."""
    blob = (_LINE * (CHUNK // len(_LINE) + 1))[:CHUNK]
    full, rest = divmod(size, CHUNK)
    return [blob] * full + ([blob[:rest]] if rest else [])


def one_message(spec, i, size, tag):
    m = Milter(spec)
    try:
        m.negotiate()
        if m.connect() not in ("", "c"):
            raise MilterError("connect refused")
        sender = "s%d-%s@client%d.example" % (i, tag, i % 40)
        if not m.transaction(sender, RCPT, headers_for(i, tag), None):
            raise MilterError("transaction ended early (not routed?)")
        if not m.body_chunks(body_of(size)):
            raise MilterError("body refused")
        code, secs = m.eom()
        if code not in ("c", "a"):
            raise MilterError("end of message answered %r" % code)
        stamped = any(d.startswith(b"X-Halo-Status\0queued")
                      for c, d in m.mods if c == "h")
        return secs, stamped
    finally:
        m.quit()


def pct(sorted_vals, p):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def cmd_eom(spec, size, count, conc=1):
    """COUNT messages of SIZE bytes, CONC sessions at a time (each session
    one message after another); end-of-message latency of each."""
    lat = []
    stamped = [0]
    lock = threading.Lock()
    errors = []

    def run(k):
        try:
            for i in range(k, count, conc):
                secs, ok = one_message(spec, i, size, "eom%d-%d" % (size, conc))
                with lock:
                    lat.append(secs * 1000.0)
                    stamped[0] += ok
        except Exception as exc:           # reported below
            errors.append(str(exc))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors or not lat:
        raise MilterError("eom: %s" % (errors[:3],))
    s = sorted(lat)
    return {"size": size, "count": count, "sessions": conc, "queued": stamped[0],
            "p50": pct(s, 50), "p99": pct(s, 99), "max": s[-1],
            "mean": sum(s) / len(s)}


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0     # kB -> MiB
    return None


def cmd_rss(spec, pid, size, n):
    """N sessions at once: all connect and send their headers, then all
    stream their bodies in parallel (a barrier between), then all end."""
    before_hwm, before_rss = vm(pid, "VmHWM"), vm(pid, "VmRSS")
    barrier = threading.Barrier(n)
    errors = []
    lat = []
    sample = {"rss_max": before_rss}
    done = threading.Event()

    def sampler():
        while not done.is_set():
            try:
                r = vm(pid, "VmRSS")
                if r and r > sample["rss_max"]:
                    sample["rss_max"] = r
            except OSError:
                return
            time.sleep(0.05)

    def session(i):
        try:
            m = Milter(spec, timeout=600)
            m.negotiate()
            m.connect()
            sender = "s%d-rss@client%d.example" % (i, i % 40)
            ok = m.transaction(sender, RCPT, headers_for(i, "rss%d" % size), None)
            barrier.wait(timeout=120)
            if not ok or not m.body_chunks(body_of(size)):
                raise MilterError("refused")
            code, secs = m.eom()
            if code not in ("c", "a"):
                raise MilterError("end of message answered %r" % code)
            lat.append(secs * 1000.0)
            m.quit()
        except Exception as exc:       # reported, counted as a failure
            errors.append("%s: %s" % (i, exc))
            try:
                barrier.abort()
            except Exception:
                pass

    st = threading.Thread(target=sampler, daemon=True)
    st.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    done.set()
    st.join()
    after_hwm = vm(pid, "VmHWM")
    return {"size": size, "sessions": n, "ok": len(lat), "errors": errors[:5],
            "seconds": wall, "before_hwm_mb": before_hwm, "before_rss_mb": before_rss,
            "after_hwm_mb": after_hwm, "rss_sampled_max_mb": sample["rss_max"],
            "growth_mb": after_hwm - before_hwm,
            "eom_max_ms": max(lat) if lat else None}


ATT_MAX = 4 << 20      # decoded bytes per attachment: each fits a 10 MiB request


def attachment_message(size, i):
    """Headers, body chunks and the attachments ({filename: (size, sha256)})
    of a multipart mail of about SIZE bytes: a short text part and as many
    base64 attachments as the rest needs at ATT_MAX decoded bytes each (at
    least one), so that each fits one Halo request (10 MiB) and all of them
    are uploaded."""
    boundary = "bench-boundary-%d" % i
    raw = max(1, size * 3 // 4 - 1024)
    count = max(1, -(-raw // ATT_MAX))
    each = [raw // count + (1 if k < raw % count else 0) for k in range(count)]
    seed = os.urandom(1 << 20)
    parts = [b"--" + boundary.encode() + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
             b"Please find the %d files attached.\r\n" % count]
    atts = {}
    for n, length in enumerate(each, 1):
        # a different file each: rotated random bytes
        blob = (seed[n:] + seed[:n]) * (length // len(seed) + 1)
        blob = blob[:length]
        name = "log%d-%d-%d.bin" % (size, i, n)
        atts[name] = (length, hashlib.sha256(blob).hexdigest())
        b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
        parts.append(b"--" + boundary.encode() +
                     b"\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Transfer-Encoding: base64\r\n"
                     b"Content-Disposition: attachment; filename=\"" + name.encode() +
                     b"\"\r\n\r\n" + b64)
    parts.append(b"--" + boundary.encode() + b"--\r\n")
    body = b"".join(parts)
    hdrs = [h for h in headers_for(i, "log%d" % size)
            if h[0] not in ("Content-Type", "From")]
    hdrs.append(("From", "Ann <ann@acme.example>"))
    hdrs.append(("Content-Type", 'multipart/mixed; boundary="%s"' % boundary))
    return hdrs, [body[k:k + CHUNK] for k in range(0, len(body), CHUNK)], atts


def sim_attachments(sim, atts):
    """How many of ATTS ({filename: (size, sha256)}) the simulator holds
    with that size and content (GET /_sim/state)."""
    with urllib.request.urlopen(sim + "/_sim/state", timeout=60) as r:
        state = json.loads(r.read().decode())
    held = {(a.get("filename"), a.get("size"), a.get("sha256"))
            for a in state.get("attachments", [])}
    return sum(1 for name, (size, sha) in atts.items() if (name, size, sha) in held)


def cmd_logrss(spec, pid, size, ctl, rcpt=RCPT, sim=None, timeout=300):
    """One mail of SIZE bytes with attachments through the milter, then
    wait until its job is final (the workers logged it into Halo, or gave
    up); the daemon's peak RSS (VmHWM) over all of it, and (SIM set)
    whether Halo got every attachment whole."""
    before = vm(pid, "VmHWM")
    hdrs, chunks, atts = attachment_message(size, os.getpid())
    m = Milter(spec, timeout=600)
    try:
        m.negotiate()
        m.connect()
        # a known contact (tests/halosim/fixture.json): logged, not skipped
        if not m.transaction("ann@acme.example", rcpt, hdrs, None):
            raise MilterError("transaction ended early (not routed?)")
        if not m.body_chunks(chunks):
            raise MilterError("body refused")
        code, _ = m.eom()
        if code not in ("c", "a"):
            raise MilterError("end of message answered %r" % code)
    finally:
        m.quit()
    t0 = time.monotonic()
    st = {}
    while time.monotonic() - t0 < timeout:
        out = subprocess.run(shlex.split(ctl) + ["stats"], capture_output=True,
                             text=True).stdout
        st = {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines()
              if len(ln.split()) == 2 and ln.split()[1].isdigit()}
        if st.get("done", 0) + st.get("failed", 0) + st.get("skipped", 0) >= 1 and \
                st.get("queued", 0) == 0 and st.get("running", 0) == 0:
            break
        time.sleep(0.2)
    out = {"size": size, "mail_bytes": sum(len(c) for c in chunks),
           "skipped": st.get("skipped", 0),
           "before_hwm_mb": before, "hwm_mb": vm(pid, "VmHWM"),
           "logged": st.get("done", 0) >= 1, "failed": st.get("failed", 0),
           "seconds_to_final": time.monotonic() - t0,
           "attachments": len(atts),
           "attachment_bytes": sum(n for n, _ in atts.values())}
    if sim:
        out["attachments_in_halo"] = sim_attachments(sim, atts)
        out["all_attachments_in_halo"] = out["attachments_in_halo"] == len(atts)
    return out


def main(argv):
    if len(argv) >= 4 and argv[0] == "eom":
        out = cmd_eom(argv[1], int(argv[2]), int(argv[3]),
                      int(argv[4]) if len(argv) >= 5 else 1)
    elif len(argv) >= 5 and argv[0] == "logrss":
        out = cmd_logrss(argv[1], int(argv[2]), int(argv[3]), argv[4],
                         *(argv[5:7]))
    elif len(argv) >= 5 and argv[0] == "rss":
        out = cmd_rss(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    else:
        sys.stderr.write(__doc__)
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
