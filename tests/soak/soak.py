#!/usr/bin/env python3
"""soak.py - the Python half of the fault-injection soak (tests/soak/run.sh).

    soak.py plan   SEED SECONDS [NODES]               > faults.plan
    soak.py send   SEED SECONDS RATE DRAIN PORT[,PORT] CTL MANIFEST
    soak.py verify T SIM_URL SINK_PORT SINK_DIR MAILLOG[,MAILLOG] STORE FAULTS_LOG MANIFEST COUNTS

plan    The fault schedule, one line per fault: "OFFSET NAME ARGS...", OFFSET
        in seconds from the start.  The first round holds every fault once
        (the main ones first: a 60 s run sees those), then random picks.
        The same SEED gives the same schedule.  With NODES 2 (two MX nodes
        sharing a PostgreSQL store) each kill names the node it hits, "a" or
        "b", as a fifth field, and the first round kills twice, one right
        after the other and after at most one other fault: each node once
        (later kills hit either).
send    The mail: RATE new messages a second for SECONDS over SMTP to Postfix
        at 127.0.0.1:PORT, each with its own Message-ID, in a seeded mix (see
        KINDS).  A message that gets a 4xx (the milter is down: Postfix's
        milter_default_action = tempfail) or a broken connection is sent again
        after 2-5 s, as an MTA would; after SECONDS only such retries go on,
        for at most DRAIN seconds.  Replies only answer threads whose message
        the worker has logged (seen "done" in "CTL queue"), so where each
        reply must land is known.  One JSON line per message in MANIFEST.
        Several PORTs (one Postfix per node): each attempt goes to one of
        them at random, a retry maybe to another, as an MTA's to several
        MX hosts; the manifest records which ("node", the PORT's index).
verify  The invariants, from what each side recorded: the manifest (what
        Postfix accepted), Postfix's log and the sink (what it delivered),
        the simulator's state (what reached Halo), the daemon's store (the
        jobs; read after the daemon stopped): a SQLite file, or a PostgreSQL
        conninfo (read with psql).  One MAILLOG per node, in PORT order.
        Prints the figures and one
        "ok"/"FAIL" line per check; writes "PASSED FAILED" to COUNTS.

Python 3 standard library only.
"""
import base64
import csv
import io
import json
import os
import random
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

SUPPORT = "support@msp.example"      # intake, agent alice
BOB = "bob@msp.example"              # thread-only, agent=recipient (bob)
UNROUTED = "someone@elsewhere.example"
CONTACTS = ["Ann <ann@acme.example>", "Jo <jo@acme.example>",
            "Bojo <bojo@acme.example>", "Carl <carl@globex.example>"]
CLIENT_DOMAINS = ["acme.example", "globex.example", "initech.example"]
TOPICS = ["Printer on floor %d is jammed", "VPN drops every %d minutes",
          "Laptop %d will not boot", "Invoice %d question", "Mailbox %d is full",
          "New starter %d needs an account", "Backup job %d failed"]

# kind: (weight, recipient, what must happen)
#   halo          in Halo exactly once (a ticket or an action), job done
#   skip:REASON   a job, skipped with REASON; nothing in Halo
#   none          no job at all (no routed recipient); nothing in Halo
KINDS = {
    "new":        (24, SUPPORT, "halo"),            # a contact's new mail
    "reply":      (32, SUPPORT, "halo"),            # a reply in a logged thread
    "reply-bob":  (10, BOB, "halo"),                # the same, to a thread-only mailbox
    "client":     (9, SUPPORT, "halo"),             # unknown sender, known client domain
    "stranger":   (6, SUPPORT, "skip:unknown-sender"),
    "bob-new":    (5, BOB, "skip:no-thread"),
    "autoreply":  (4, SUPPORT, "skip:auto-reply"),
    "unrouted":   (10, UNROUTED, "none"),
}

# fault: (weight, argument maker)
FAULTS = ["5xx", "429", "drop-after", "drop-before", "401", "expiry", "reimport",
          "auth-down", "latency", "kill", "reload"]
CORE_FAULTS = ["kill", "drop-after", "429", "401", "5xx", "auth-down", "reload"]
FAULT_WEIGHTS = {"5xx": 3, "429": 2, "drop-after": 3, "drop-before": 1, "401": 2,
                 "expiry": 1, "reimport": 1, "auth-down": 2, "latency": 1,
                 "kill": 3, "reload": 2}


def fault_args(rng, name):
    """(arguments, seconds it lasts)."""
    if name == "5xx":
        return "%d %d" % (rng.choice([500, 502, 503, 504]), rng.randint(3, 15)), 0
    if name == "429":
        d = rng.randint(5, 15)
        return "%d %d %d" % (rng.randint(2, 4), rng.randint(3, 6), d), d
    if name in ("drop-after", "drop-before", "401"):
        return "%d" % rng.randint(1, 3), 0
    if name == "expiry":
        d = rng.randint(8, 15)
        return "%d %d" % (rng.randint(2, 4), d), d
    if name == "reimport":
        return "", 0
    if name == "auth-down":
        d = rng.randint(4, 15)
        return "%s %d" % (rng.choice(["503", "close"]), d), d
    if name == "latency":
        d = rng.randint(4, 10)
        return "%d %d" % (rng.choice([300, 800, 1500, 2500]), d), d
    if name == "kill":
        # slow: Halo answers slowly first, so the kill likely lands mid-request
        pause = round(rng.uniform(0.3, 5.0), 1)
        slow = rng.random() < 0.5
        return "%.1f %s %.1f" % (pause, "slow" if slow else "fast",
                                 round(rng.uniform(0.2, 2.0), 1)), pause + 2
    if name == "reload":
        return "", 1
    raise ValueError(name)


def cmd_plan(seed, seconds, nodes=1):
    rng = random.Random(seed * 7919 + 1)
    # which node a kill hits: a generator of its own, so that the schedule
    # is the single-node one with a node added
    nrng = random.Random(seed * 104729 + 3)
    # the first round: every fault once, the ones that matter most first, so
    # that a short run (60 s) still sees each of those
    first = list(CORE_FAULTS)
    rng.shuffle(first)
    rest = [n for n in FAULTS if n not in CORE_FAULTS]
    rng.shuffle(rest)
    first += rest
    if nodes > 1:
        # two kills early (after at most one fault), one per node: a short
        # run has both
        at = min(first.index("kill"), 1)
        first.remove("kill")
        first[at:at] = ["kill", "kill"]
    killed = []
    names = [n for n in FAULTS for _ in range(FAULT_WEIGHTS[n])]
    t = rng.uniform(2.0, 4.0)
    i = 0
    # leave the last seconds fault-free: the sender's last messages then meet
    # a whole system, and what follows is the drain
    while t < seconds - 3:
        name = first[i] if i < len(first) else rng.choice(names)
        i += 1
        args, lasts = fault_args(rng, name)
        if name == "kill" and nodes > 1:
            n = nrng.randrange(nodes)
            if len(killed) == 1:
                n = 1 - killed[0]         # the first round: each node once
            killed.append(n)
            args += " " + "ab"[n]
        print(("%.1f %s %s" % (t, name, args)).rstrip())
        t += lasts + rng.uniform(0.5, 3.0)
    return 0


# ------------------------------------------------------------------ sending

def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), b"".join(lines).decode("latin-1").strip()


def smtp_send(port, sender, rcpt, wire):
    """One transaction.  Returns (code, text): the first reply that was not
    the expected one, or the final reply to the data; code 0 when the
    connection broke ("uncertain" if it broke after the data was sent)."""
    s = None
    sent_data = False
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        f = s.makefile("rb")
        code, text = read_reply(f)
        if code != 220:
            return code, text
        for line, want in ((b"EHLO soak.halo-e2e.test\r\n", 250),
                           (b"MAIL FROM:<%s>\r\n" % sender.encode(), 250),
                           (b"RCPT TO:<%s>\r\n" % rcpt.encode(), 250),
                           (b"DATA\r\n", 354)):
            s.sendall(line)
            code, text = read_reply(f)
            if code != want:
                return code, text
        s.sendall(wire)
        sent_data = True
        code, text = read_reply(f)
        try:
            s.sendall(b"QUIT\r\n")
            read_reply(f)
        except OSError:
            pass
        return code, text
    except OSError as exc:
        return 0, ("uncertain: " if sent_data else "") + str(exc)
    finally:
        if s is not None:
            s.close()


def addr(who):
    return who.split("<", 1)[1].rstrip(">") if "<" in who else who


def body_html(rng):
    words = ["the", "printer", "still", "shows", "error", "after", "restart",
             "please", "check", "again", "today", "thanks", "users", "since"]
    return "<html><body><p>%s</p><p>Regards</p></body></html>" % " ".join(
        rng.choice(words) for _ in range(rng.randint(10, 60)))


def build(rng, seq, kind, tag, thread):
    """A message of KIND: (envelope sender, recipient, wire bytes, record)."""
    mid = "<soak-%s-%d@soak.example>" % (tag, seq)
    rcpt = KINDS[kind][1]
    hdr = {"Message-ID": mid,
           "Date": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
           "MIME-Version": "1.0"}
    rec = {"mid": mid, "kind": kind, "rcpt": rcpt, "expect": KINDS[kind][2],
           "root": None, "attach": None}
    if kind in ("reply", "reply-bob"):
        who, subject = thread["from"], "Re: " + thread["subject"]
        parent = rng.choice(thread["ids"])
        hdr["In-Reply-To"] = parent
        refs = [thread["ids"][0]] + ([parent] if parent != thread["ids"][0] else [])
        hdr["References"] = " ".join(refs)
        rec["root"] = thread["ids"][0]
    else:
        if kind == "client":
            who = "New Person <new.%s.%d@%s>" % (tag, seq, rng.choice(CLIENT_DOMAINS))
        elif kind == "stranger":
            who = "Stranger <x.%s.%d@nowhere.example>" % (tag, seq)
        else:
            who = rng.choice(CONTACTS)
        subject = rng.choice(TOPICS) % rng.randint(1, 999)
        if kind == "autoreply":
            subject = "Automatic reply: " + subject
            hdr["Auto-Submitted"] = "auto-replied"
    hdr["From"], hdr["To"], hdr["Subject"] = who, rcpt, subject
    head = "".join("%s: %s\r\n" % (k, v) for k, v in hdr.items())
    html = body_html(rng)
    if KINDS[kind][2] == "halo" and rng.random() < 0.10:
        name = "shot-%s-%d.png" % (tag, seq)
        data = rng.randbytes(rng.randint(2000, 60000))
        b64 = base64.encodebytes(data).decode().replace("\n", "\r\n")
        msg = (head + 'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % seq +
               "--b%d\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s\r\n" % (seq, html) +
               "--b%d\r\nContent-Type: image/png; name=\"%s\"\r\n" % (seq, name) +
               "Content-Disposition: attachment; filename=\"%s\"\r\n" % name +
               "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--b%d--\r\n" % seq)
        rec["attach"] = name
    else:
        msg = head + "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n"
    wire = msg.encode().replace(b"\r\n.", b"\r\n..") + b".\r\n"
    rec["from"] = addr(who)
    rec["subject"] = subject
    return addr(who), rcpt, wire, rec


def done_ids(ctl):
    """Message-IDs of recently finished ("done") jobs, from the operator CLI."""
    try:
        out = subprocess.run(shlex.split(ctl) + ["queue", "-s", "done", "-n", "400"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {ln.split()[-1] for ln in out.splitlines()[1:] if ln.split()}


def cmd_send(seed, seconds, rate, drain, ports, ctl, manifest):
    rng = random.Random(seed)
    # the node of each attempt: a generator of its own, so that the mix is
    # the single-node one
    prng = random.Random(seed * 15485863 + 5)
    tag = "%d" % seed
    kinds = [k for k, v in KINDS.items() for _ in range(v[0])]
    out = open(manifest, "w", buffering=1)
    threads = {}           # root mid -> {"from", "subject", "ids": logged ids}
    pending_roots = {}     # mid -> thread record, until its job is done
    logged_replies = {}    # reply mid -> root, until its job is done
    retry = []             # [due, rec, sender, rcpt, wire]
    seq = 0
    t0 = time.monotonic()
    stop_new = t0 + seconds
    end = stop_new + drain
    next_new = t0
    next_poll = t0
    n_att = n_tmp = 0

    def finish(rec):
        out.write(json.dumps(rec) + "\n")

    def attempt(rec, frm, rcpt, wire):
        nonlocal n_att, n_tmp
        n_att += 1
        rec["attempts"] += 1
        node = prng.randrange(len(ports)) if len(ports) > 1 else 0
        if len(ports) > 1:
            rec["node"] = node
        code, text = smtp_send(ports[node], frm, rcpt, wire)
        now = time.monotonic()
        if code == 250:
            m = re.search(r"queued as ([0-9A-Za-z]+)", text)
            rec["result"] = "accepted"
            rec["queue_id"] = m.group(1) if m else None
            rec["t"] = round(now - t0, 2)
            if "uncertain" in rec:
                rec["uncertain"] = True
            finish(rec)
            return True
        if code == 0 or 400 <= code < 500:
            n_tmp += 1
            rec.setdefault("tempfails", []).append([round(now - t0, 2), code, text[:120]])
            if text.startswith("uncertain"):
                rec["uncertain"] = True
            retry.append([now + rng.uniform(2.0, 5.0), rec, frm, rcpt, wire])
            return False
        rec["result"] = "rejected"
        rec["reply"] = text[:200]
        finish(rec)
        return False

    while True:
        now = time.monotonic()
        if now >= next_poll and (pending_roots or logged_replies):
            next_poll = now + 2.0
            ids = done_ids(ctl)
            for mid in [m for m in pending_roots if m in ids]:
                th = pending_roots.pop(mid)
                threads[mid] = th
            for mid in [m for m in logged_replies if m in ids]:
                root = logged_replies.pop(mid)
                threads[root]["ids"].append(mid)
        due = [r for r in retry if r[0] <= now]
        if due:
            r = due[0]
            retry.remove(r)
            attempt(r[1], r[2], r[3], r[4])
            continue
        if now >= stop_new and not retry:
            break
        if now >= end:
            break
        if now < stop_new and now >= next_new:
            next_new += 1.0 / rate
            seq += 1
            kind = rng.choice(kinds)
            th = None
            if kind in ("reply", "reply-bob"):
                if threads:
                    th = threads[rng.choice(sorted(threads))]
                else:
                    kind = "new"
            frm, rcpt, wire, rec = build(rng, seq, kind, tag, th)
            rec["attempts"] = 0
            if attempt(rec, frm, rcpt, wire) or rec in [r[1] for r in retry]:
                if kind in ("new", "client"):
                    pending_roots[rec["mid"]] = {"from": frm, "subject": rec["subject"],
                                                 "ids": [rec["mid"]]}
                elif th is not None:
                    logged_replies[rec["mid"]] = rec["root"]
            continue
        time.sleep(0.02)
    for r in retry:
        r[1]["result"] = "unaccepted"
        finish(r[1])
    out.close()
    print("send: %d messages, %d SMTP attempts, %d tempfailed, %d never accepted, %.0f s"
          % (seq, n_att, n_tmp, len(retry), time.monotonic() - t0))
    if len(ports) > 1:
        print("send: over %d nodes" % len(ports))
    return 0


# ---------------------------------------------------------------- verifying

def http_json(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read().decode())


def sink_ids(sink_dir):
    """Message-ID of every delivered file (one file per delivery)."""
    ids = []
    for name in sorted(os.listdir(sink_dir)):
        mid = None
        with open(os.path.join(sink_dir, name), "rb") as f:
            for raw in f:
                line = raw.decode("latin-1").rstrip("\r\n")
                if line == "":
                    break
                if line.lower().startswith("message-id:"):
                    mid = line.split(":", 1)[1].strip()
        ids.append(mid)
    return ids


def maillog_sent(path, sink_port):
    """queue id -> (message-id, delivered to the sink?)"""
    mids, sent = {}, set()
    rx_mid = re.compile(r"postfix/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=(\S+)")
    rx_to = re.compile(r"postfix/smtp\[\d+\]: ([0-9A-Za-z]+): to=<[^>]*>, "
                       r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d,.* status=sent " % sink_port)
    with open(path, encoding="latin-1") as f:
        for line in f:
            m = rx_mid.search(line)
            if m:
                mids[m.group(1)] = m.group(2)
                continue
            m = rx_to.search(line)
            if m:
                sent.add(m.group(1))
    return {q: (mids.get(q), q in sent) for q in set(mids) | sent}


JOB_COLUMNS = ("SELECT id, message_id, state, reason, attempts, ticket_id,"
               " action_id, result, mode FROM jobs")


def store_jobs(store):
    """The jobs' rows, from a SQLite file or a PostgreSQL conninfo/URI."""
    if "=" not in store and not store.startswith("postgres"):
        db = sqlite3.connect("file:%s?mode=ro" % store, uri=True)
        rows = list(db.execute(JOB_COLUMNS))
        db.close()
        return rows
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", store, "-c",
                          "COPY (%s) TO STDOUT WITH (FORMAT csv)" % JOB_COLUMNS],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    num = lambda v: int(v) if v != "" else None
    return [(int(r[0]), r[1], r[2], r[3] or None, int(r[4]), num(r[5]), num(r[6]),
             r[7] or None, r[8] or None) for r in csv.reader(io.StringIO(out))]


class Checks:
    def __init__(self):
        self.passed = self.failed = 0
        self.name = os.environ.get("SOAK_NAME", "soak")

    def check(self, what, ok, detail=None):
        if ok:
            self.passed += 1
            print("ok   %s: %s" % (self.name, what))
        else:
            self.failed += 1
            print("FAIL %s: %s" % (self.name, what))
            if detail:
                for d in detail[:10]:
                    print("      %s" % d)
                if len(detail) > 10:
                    print("      ... %d more" % (len(detail) - 10))


def cmd_verify(sim, sink_port, sink_dir, maillog, store_db, faults_log, manifest, counts):
    recs = [json.loads(ln) for ln in open(manifest) if ln.strip()]
    by_mid = {r["mid"]: r for r in recs}
    accepted = [r for r in recs if r.get("result") == "accepted"]
    c = Checks()

    # --- SMTP: every message accepted in the end
    bad = [r for r in recs if r.get("result") != "accepted"]
    c.check("every message accepted by Postfix in the end (4xx retried)", not bad,
            ["%s %s after %d attempts: %s" % (
                r["mid"], r.get("result"), r.get("attempts", 0),
                r.get("reply") or (r.get("tempfails") or [[0, 0, "-"]])[-1][2])
             for r in bad])

    # --- Postfix: delivery log and the sink (one log per node)
    logs = [maillog_sent(m, sink_port) for m in maillog.split(",")]
    bad = []
    for r in accepted:
        q = r.get("queue_id")
        mid, sent = logs[r.get("node", 0)].get(q, (None, False))
        if not sent or mid != r["mid"]:
            bad.append("%s queue id %s: logged message-id %s, sent=%s" % (r["mid"], q, mid, sent))
    c.check("every accepted message is in Postfix's log as sent to the sink", not bad, bad)
    sids = sink_ids(sink_dir)
    seen = {}
    for m in sids:
        seen[m] = seen.get(m, 0) + 1
    bad = ["%s delivered %d times" % (r["mid"], seen.get(r["mid"], 0)) for r in accepted
           if seen.get(r["mid"], 0) != 1 and not (r.get("uncertain") and seen.get(r["mid"], 0) >= 1)]
    bad += ["%s delivered but not accepted" % m for m in seen if m not in by_mid
            or by_mid[m].get("result") != "accepted"]
    c.check("every accepted message delivered to the sink once", not bad, bad)

    # --- the daemon's jobs (store read after the daemon stopped)
    jobs = {}
    for row in store_jobs(store_db):
        jobs[row[1]] = dict(zip(("id", "mid", "state", "reason", "attempts", "ticket",
                                 "action", "result", "mode"), row))
    states = {}
    for j in jobs.values():
        states[j["state"]] = states.get(j["state"], 0) + 1
    stuck = [j for j in jobs.values() if j["state"] in ("queued", "running", "waiting")]
    failed = [j for j in jobs.values() if j["state"] == "failed"]
    c.check("no job left queued, running or waiting", not stuck,
            ["job %d %s %s (%s) attempts=%d" % (j["id"], j["state"], j["mid"], j["reason"],
                                              j["attempts"]) for j in stuck])
    c.check("no job failed", not failed,
            ["job %d %s (%s)" % (j["id"], j["mid"], j["reason"]) for j in failed])
    bad = []
    for r in accepted:
        j = jobs.get(r["mid"])
        exp = r["expect"]
        if exp == "none":
            if j is not None:
                bad.append("%s (%s): unrouted but job %d" % (r["mid"], r["kind"], j["id"]))
        elif j is None:
            bad.append("%s (%s): no job" % (r["mid"], r["kind"]))
        elif exp == "halo" and j["state"] != "done":
            bad.append("%s (%s): job %d %s (%s)" % (r["mid"], r["kind"], j["id"], j["state"],
                                                    j["reason"]))
        elif exp.startswith("skip:") and (j["state"] != "skipped" or
                                          not (j["reason"] or "").startswith(exp[5:])):
            bad.append("%s (%s): job %d %s (%s), want skipped %s" % (
                r["mid"], r["kind"], j["id"], j["state"], j["reason"], exp[5:]))
    extra = [m for m in jobs if m not in by_mid]
    bad += ["job %d for %s: not sent by the soak" % (jobs[m]["id"], m) for m in extra]
    c.check("one job per routed message, in the expected final state", not bad, bad)

    # --- Halo: exactly once
    st = http_json(sim + "/_sim/state")
    mine = [a for a in st["actions"] if (a.get("_sim") or {}).get("via") == "POST /api/Actions"]
    posts = [("ticket", t["id"], t) for t in st["tickets"]] + \
            [("action", a["ticket_id"], a) for a in mine]
    in_halo = {}
    for what, tid, obj in posts:
        m = obj.get("internet_message_id")
        in_halo.setdefault(m, []).append((what, tid))
    want = [r for r in accepted if r["expect"] == "halo"]
    missing = [r for r in want if r["mid"] not in in_halo]
    dups = {m: v for m, v in in_halo.items() if len(v) > 1}
    unexpected = [m for m in in_halo if m not in by_mid or by_mid[m]["expect"] != "halo"]
    once = [r for r in want if len(in_halo.get(r["mid"], [])) == 1]
    c.check("every routed message to be logged is in Halo", not missing,
            ["%s (%s) job %s" % (r["mid"], r["kind"], jobs.get(r["mid"], {}).get("id"))
             for r in missing])
    c.check("no duplicate ticket or action in Halo", not dups,
            ["%s: %s" % (m, v) for m, v in dups.items()])
    c.check("nothing in Halo that should not be (skipped, unrouted, unknown)", not unexpected,
            ["%s (%s)" % (m, by_mid[m]["kind"] if m in by_mid else "not sent")
             for m in unexpected])
    # replies answered a logged thread: they must land on that thread's ticket
    ticket_of = {m: v[0][1] for m, v in in_halo.items()}
    bad, n_replies = [], 0
    for r in want:
        if r["root"] is None or r["mid"] not in ticket_of:
            continue
        n_replies += 1
        if r["kind"] in ("reply", "reply-bob") and in_halo[r["mid"]][0][0] != "action":
            bad.append("%s: made a ticket, want an action on %s" % (r["mid"], ticket_of.get(r["root"])))
        elif ticket_of[r["mid"]] != ticket_of.get(r["root"]):
            bad.append("%s: on ticket %s, thread root %s on %s" % (
                r["mid"], ticket_of[r["mid"]], r["root"], ticket_of.get(r["root"])))
    c.check("replies appended to their thread's ticket", not bad, bad)
    # attachments: each one exactly once, on the message's ticket
    atts = {}
    for a in st["attachments"]:
        atts.setdefault(a["filename"], []).append(a["ticket_id"])
    with_att = [r for r in want if r.get("attach")]
    bad = ["%s: %s uploaded %d times" % (r["mid"], r["attach"], len(atts.get(r["attach"], [])))
           for r in with_att if len(atts.get(r["attach"], [])) != 1]
    bad += ["%s: on ticket %s, message on %s" % (r["attach"], atts[r["attach"]][0],
                                                 ticket_of.get(r["mid"]))
            for r in with_att if len(atts.get(r["attach"], [])) == 1
            and atts[r["attach"]][0] != ticket_of.get(r["mid"])]
    c.check("every attachment uploaded once, to its ticket", not bad, bad)

    # --- figures
    faults, events = {}, {}
    for ln in open(faults_log):
        p = ln.split()
        if len(p) >= 2 and p[1] in FAULTS:
            faults[p[1]] = faults.get(p[1], 0) + 1
        elif len(p) >= 2 and p[1].isupper():          # CRASH, RESTART-FAILED
            events[p[1]] = events.get(p[1], 0) + 1
    kinds = {}
    for r in recs:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    tempfailed = sum(1 for r in recs if r.get("tempfails"))
    routed = [r for r in accepted if r["expect"] != "none"]
    delivered = sum(1 for r in accepted if seen.get(r["mid"], 0) >= 1)
    rq = st["requests"]
    print("== soak figures")
    print("   sent %d  (%s)" % (len(recs), ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    print("   accepted %d (after %d SMTP attempts; %d messages tempfailed at least once)"
          % (len(accepted), sum(r.get("attempts", 0) for r in recs), tempfailed))
    if len(logs) > 1:
        print("   accepted by node: %s" % ", ".join(
            "%s %d" % ("ab"[i], sum(1 for r in accepted if r.get("node", 0) == i))
            for i in range(len(logs))))
    print("   delivered %d  routed %d  to log in Halo %d  logged once %d  duplicates %d"
          "  missing %d  unexpected %d" % (delivered, len(routed), len(want), len(once),
                                          len(dups), len(missing), len(unexpected)))
    print("   jobs %d: %s; stuck %d  failed %d; most attempts on one job %d"
          % (len(jobs), ", ".join("%s %d" % kv for kv in sorted(states.items())),
             len(stuck), len(failed), max([j["attempts"] for j in jobs.values()] or [0])))
    print("   in Halo: %d tickets, %d actions, %d attachments; %d replies on their thread"
          % (len(st["tickets"]), len(mine), len(st["attachments"]), n_replies))
    print("   Halo requests: %d api, %d auth (by status: %s; dropped %d); 429s %d;"
          " tokens refreshed %d" % (
              rq["api"], rq["auth"], ", ".join("%s %d" % kv for kv in sorted(rq["by_status"].items())),
              rq["dropped"], rq["rate_limited"], st["tokens"]["refreshed"]))
    print("   faults %d: %s" % (sum(faults.values()),
                                ", ".join("%s %d" % (n, faults.get(n, 0)) for n in FAULTS)))
    if events:
        print("   events: %s" % ", ".join("%s %d" % kv for kv in sorted(events.items())))
    with open(counts, "w") as f:
        f.write("%d %d\n" % (c.passed, c.failed))
    return 0 if c.failed == 0 else 1


def main(argv):
    if argv and argv[0] == "plan" and len(argv) in (3, 4):
        return cmd_plan(int(argv[1]), float(argv[2]), int(argv[3]) if len(argv) == 4 else 1)
    if argv and argv[0] == "send" and len(argv) == 8:
        return cmd_send(int(argv[1]), float(argv[2]), float(argv[3]), float(argv[4]),
                        [int(p) for p in argv[5].split(",")], argv[6], argv[7])
    if argv and argv[0] == "verify" and len(argv) == 10:
        return cmd_verify(argv[2], int(argv[3]), argv[4], argv[5], argv[6], argv[7],
                          argv[8], argv[9])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
