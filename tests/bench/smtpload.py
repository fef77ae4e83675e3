#!/usr/bin/env python3
"""smtpload.py - push pre-generated messages into an SMTP server with N
parallel connections, and (optionally) wait until a Postfix queue is empty.

    smtpload.py HOST PORT MAILDIR CONCURRENCY [POSTFIX_QUEUE_DIR]

MAILDIR is what mailgen.py wrote.  All messages are read into memory first
(so the disk is not what is measured on the client side).  Each of the N
threads takes the next message, opens a connection, EHLO, MAIL, RCPT, DATA,
writes the message with one sendall(), reads the 250, QUIT: one message per
connection, as mail from the Internet mostly arrives.  The client is a plain
socket (no smtplib): the bytes are already CRLF and dot-stuffed, so the client
costs little CPU and the figure is Postfix's (and the milter's).

JSON on stdout: sent, failed, bytes, accept_s (first connect to last 250),
drain_s (first connect to the queue being empty), rates, and cpu_s: the CPU
seconds the mail path itself used (Postfix: the master, its reaped children
and its live processes; the milter (MILTER_PID); the sink (SINK_PID); this
client), so that other load on the machine does not hide the cost.
"""
import json
import os
import socket
import sys
import threading
import time


def read_reply(f):
    """One SMTP reply (possibly multi-line); returns (code, text)."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), b"".join(lines)


def send_one(host, port, sender, rcpt, data):
    s = socket.create_connection((host, port), timeout=300)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")

        def cmd(line, want):
            s.sendall(line)
            code, text = read_reply(f)
            if code != want:
                raise OSError("%s -> %s" % (line.strip().decode(), text.strip().decode()))

        code, text = read_reply(f)
        if code != 220:
            raise OSError("banner: %s" % text)
        cmd(b"EHLO load.bench.test\r\n", 250)
        cmd(b"MAIL FROM:<%s> SIZE=%d\r\n" % (sender.encode(), len(data)), 250)
        cmd(b"RCPT TO:<%s>\r\n" % rcpt.encode(), 250)
        cmd(b"DATA\r\n", 354)
        cmd(data, 250)
        try:
            s.sendall(b"QUIT\r\n")
            read_reply(f)
        except OSError:
            pass
    finally:
        s.close()


def queue_files(qdir):
    n = 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
        for _root, _dirs, files in os.walk(os.path.join(qdir, sub)):
            n += len(files)
    return n


def proc_cpu(pid, children=False):
    """utime+stime (+ cutime+cstime: reaped children) of PID, in ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return 0
    return int(st[11]) + int(st[12]) + ((int(st[13]) + int(st[14])) if children else 0)


def group_cpu(qdir, milter, sink):
    """CPU ticks so far of this Postfix instance (its master with its reaped
    children, plus every live process working in QDIR), the milter, the sink."""
    post = 0
    try:
        with open(os.path.join(qdir, "pid", "master.pid")) as f:
            master = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        master = None
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/cwd" % p) != qdir:
                continue
        except OSError:
            continue
        post += proc_cpu(int(p), children=(int(p) == master))
    return {"postfix": post, "milter": proc_cpu(milter) if milter else 0,
            "sink": proc_cpu(sink) if sink else 0}


def cpu_sample(pid=None):
    """(busy jiffies, total jiffies) of the machine, and PID's utime+stime."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    proc = None
    if pid:
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
            proc = int(st[11]) + int(st[12])
        except OSError:
            proc = None
    return total - idle, total, proc


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    host, port, maildir, conc = argv[0], int(argv[1]), argv[2], int(argv[3])
    qdir = argv[4] if len(argv) > 4 else None
    with open(os.path.join(maildir, "manifest.json")) as f:
        man = json.load(f)
    msgs = []
    for m in man["messages"]:
        with open(os.path.join(maildir, m["file"]), "rb") as f:
            msgs.append((m["from"], f.read()))
    rcpt = man.get("rcpt", "support@acme.example")
    lock = threading.Lock()
    state = {"next": 0, "sent": 0, "failed": 0, "bytes": 0, "last": 0.0, "errors": []}

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= len(msgs):
                    return
                state["next"] = i + 1
            sender, data = msgs[i]
            try:
                send_one(host, port, sender, rcpt, data)
                ok = True
            except OSError as exc:
                ok = False
                err = str(exc)
            with lock:
                if ok:
                    state["sent"] += 1
                    state["bytes"] += len(data)
                    state["last"] = time.monotonic()
                else:
                    state["failed"] += 1
                    if len(state["errors"]) < 5:
                        state["errors"].append(err)

    mpid = int(os.environ.get("MILTER_PID") or 0) or None
    hz = os.sysconf("SC_CLK_TCK")
    spid = int(os.environ.get("SINK_PID") or 0) or None
    g0 = group_cpu(os.path.realpath(qdir), mpid, spid) if qdir else None
    busy0, tot0, m0 = cpu_sample(mpid)
    cpu0 = os.times()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = os.times()
    accept_s = state["last"] - t0
    drain_s = None
    if qdir:
        deadline = time.monotonic() + 600
        while queue_files(qdir) > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        if queue_files(qdir) == 0:
            drain_s = time.monotonic() - t0
    busy1, tot1, m1 = cpu_sample(mpid)
    cpu = None
    if qdir:
        g1 = group_cpu(os.path.realpath(qdir), mpid, spid)
        cpu = {k: (g1[k] - g0[k]) / hz for k in g1}
        cpu["client"] = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        cpu["total"] = sum(cpu.values())
        cpu["ms_per_msg"] = 1000.0 * cpu["total"] / max(1, state["sent"])
    out = {"messages": len(msgs), "sent": state["sent"], "failed": state["failed"],
           "errors": state["errors"], "bytes": state["bytes"], "concurrency": conc,
           "accept_s": accept_s, "drain_s": drain_s,
           "accept_msgs_per_s": state["sent"] / accept_s if accept_s > 0 else None,
           "msgs_per_s": state["sent"] / drain_s if drain_s else None,
           "mb_per_s": state["bytes"] / 1048576.0 / drain_s if drain_s else None,
           "client_cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
           "cpu_s": cpu,
           "machine_busy": (busy1 - busy0) / max(1, tot1 - tot0),
           "milter_cpu_s": (m1 - m0) / hz if mpid and m0 is not None and m1 is not None
           else None}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0 if state["failed"] == 0 and (drain_s is not None or not qdir) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
