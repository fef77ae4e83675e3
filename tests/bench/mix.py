#!/usr/bin/env python3
"""mix.py - a scripted, realistic mail mix through Postfix -> halo-milter
(workers) -> the Halo simulator, for two benchmarks:

  count    Halo requests per logged message.  N messages in W waves: 70 %
           replies in known threads, 20 % new mail from the fixture's contacts,
           10 % new mail from unknown senders of known client domains.  A
           reply only ever answers a thread whose earlier message was logged in
           an earlier wave (the script waits for every job of a wave to finish),
           so "known thread" holds.  The simulator counts the requests
           (/_sim/state requests.api: resource server only, /_sim/* excluded).
  latency  End of message to action in Halo.  M messages of the same mix
           (replies answer threads the count phase logged), sent one after
           another at RATE messages/s (RATE 0: a burst, all M at once over
           20 connections).  End of message = when Postfix answered
           250 to the DATA (the milter's end of message is behind it).  Action
           time = the simulator's own clock when the create/append request that
           made it finished (/_sim/requests "time", ms resolution, same host
           clock).  The k-th successful "POST /api/Tickets" in the request log
           made the k-th ticket, and likewise for actions, so each request is
           matched to its Message-ID without polling.

    mix.py count   SMTP_PORT SIM_URL CTL_CMD N WAVES SEED STATE_FILE
    mix.py latency SMTP_PORT SIM_URL CTL_CMD M RATE SEED STATE_FILE

CTL_CMD is "halo-milterctl -c CONF" (used for "stats").  STATE_FILE keeps the
threads of the count phase for the latency phase.  JSON on stdout.
"""
import base64
import json
import os
import random
import shlex
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpload import send_one            # noqa: E402
from milterclient import pct             # noqa: E402

RCPT = "support@msp.example"
CONTACTS = ["Ann <ann@acme.example>", "Jo <jo@acme.example>",
            "Bojo <bojo@acme.example>", "Carl <carl@globex.example>"]
DOMAINS = ["acme.example", "globex.example", "initech.example"]
TOPICS = ["Printer on floor %d is jammed", "VPN drops every %d minutes",
          "Laptop %d will not boot", "Invoice %d question", "Mailbox %d is full",
          "New starter %d needs an account", "Backup job %d failed",
          "Teams call quality on site %d"]


def http(method, url, body=None):
    req = urllib.request.Request(url, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read().decode())


def stats(ctl):
    out = subprocess.run(shlex.split(ctl) + ["stats"], capture_output=True, text=True,
                         check=True).stdout
    return {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines() if len(ln.split()) == 2}


def wait_jobs(ctl, total, timeout=300):
    """Until TOTAL jobs are final (done/skipped/failed) and none is queued or
    running; returns the stats."""
    end = time.monotonic() + timeout
    while True:
        s = stats(ctl)
        final = s.get("done", 0) + s.get("skipped", 0) + s.get("failed", 0)
        if final >= total and s.get("queued", 0) == 0 and s.get("running", 0) == 0:
            return s
        if time.monotonic() > end:
            raise SystemExit("mix: timeout waiting for %d jobs: %s" % (total, s))
        time.sleep(0.05)


def addr(who):
    return who.split("<", 1)[1].rstrip(">") if "<" in who else who


def body_html(rng, quoted=None):
    paras = ["<p>%s</p>" % " ".join(rng.choice(
        ["the", "printer", "still", "shows", "error", "after", "restart", "please",
         "can", "you", "check", "again", "today", "thanks", "users", "affected",
         "since", "morning", "we", "tried", "cable", "update"]) for _ in range(rng.randint(15, 60)))
        for _ in range(rng.randint(1, 4))]
    html = "<html><body>%s<p>Regards</p>" % "".join(paras)
    if quoted:
        html += "<div><hr><p>From: Support<br>Subject: %s</p><blockquote>%s</blockquote></div>" % (
            quoted, "".join(paras[:1]) * 3)
    return html + "</body></html>"


def make_message(rng, kind, seq, tag, thread=None):
    """Returns (envelope_from, wire_bytes, message_id, thread_record)."""
    mid = "<mix-%s-%d@%s>" % (tag, seq, "bench.example")
    hdr = {"To": "Support <%s>" % RCPT, "Message-ID": mid, "MIME-Version": "1.0",
           "Date": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())}
    if kind == "reply":
        who, subject = thread["from"], "Re: " + thread["subject"]
        hdr["In-Reply-To"] = thread["ids"][-1]
        hdr["References"] = " ".join(thread["ids"][-10:])
        html = body_html(rng, quoted=thread["subject"])
    else:
        if kind == "new":
            who = rng.choice(CONTACTS)
        else:
            who = "New Person <%s.%d@%s>" % (tag, seq, rng.choice(DOMAINS))
        subject = rng.choice(TOPICS) % rng.randint(1, 999)
        html = body_html(rng)
    hdr["From"], hdr["Subject"] = who, subject
    head = "".join("%s: %s\r\n" % (k, v) for k, v in hdr.items())
    if rng.random() < 0.10:         # a few carry an attachment (screenshot, log)
        data = rng.randbytes(rng.randint(20000, 200000))
        b64 = base64.encodebytes(data).decode().replace("\n", "\r\n")
        msg = (head + 'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
               "--b{n}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{h}\r\n"
               "--b{n}\r\nContent-Type: image/png; name=\"screenshot.png\"\r\n"
               "Content-Disposition: attachment; filename=\"screenshot.png\"\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n{b}--b{n}--\r\n"
               ).replace("%d", str(seq)).replace("{n}", str(seq)).replace("{h}", html) \
            .replace("{b}", b64)
    else:
        msg = head + "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n"
    wire = msg.encode().replace(b"\r\n.", b"\r\n..") + b".\r\n"
    if thread is None:                # a new thread starts with this message
        thread = {"from": who, "subject": subject, "ids": [mid]}
    return addr(who), wire, mid, thread


def plan(n, waves, rng):
    """Categories per wave: wave 1 only starts threads, later waves mix
    replies in; the totals are exactly 70/20/10 %."""
    n_reply = round(n * 0.7)
    n_unknown = round(n * 0.1)
    n_new = n - n_reply - n_unknown
    first = max(2, (n_new + n_unknown) * 3 // 8)
    first_new = round(first * n_new / (n_new + n_unknown))
    out = [["new"] * first_new + ["unknown"] * (first - first_new)]
    rest = (["reply"] * n_reply + ["new"] * (n_new - first_new)
            + ["unknown"] * (n_unknown - (first - first_new)))
    rng.shuffle(rest)
    per = -(-len(rest) // max(1, waves - 1))
    for i in range(0, len(rest), per):
        out.append(rest[i:i + per])
    return out


def send_many(port, items, parallel):
    """Send (from, wire, mid) items with PARALLEL connections; returns
    {mid: time.time() when the 250 came}."""
    done, lock, idx = {}, threading.Lock(), [0]

    def w():
        while True:
            with lock:
                if idx[0] >= len(items):
                    return
                frm, wire, mid = items[idx[0]]
                idx[0] += 1
            send_one("127.0.0.1", port, frm, RCPT, wire)
            t = time.time()
            with lock:
                done[mid] = t
    ts = [threading.Thread(target=w) for _ in range(parallel)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if len(done) != len(items):
        raise SystemExit("mix: only %d of %d messages accepted" % (len(done), len(items)))
    return done


def cmd_count(port, sim, ctl, n, waves, seed, state_file):
    rng = random.Random(seed)
    before = http("GET", sim + "/_sim/state")
    base = stats(ctl)
    total0 = sum(base.get(k, 0) for k in ("done", "skipped", "failed"))
    threads, counts, seq = [], {"reply": 0, "new": 0, "unknown": 0}, 0
    t0 = time.monotonic()
    for wave in plan(n, waves, rng):
        items, started, replied = [], [], []
        for kind in wave:
            seq += 1
            th = rng.choice(threads) if kind == "reply" else None
            frm, wire, mid, rec = make_message(rng, kind, seq, "c%d" % seed, th)
            if th is None:
                started.append(rec)
            else:
                replied.append((th, mid))
            items.append((frm, wire, mid))
            counts[kind] += 1
        send_many(port, items, 4)
        total0 += len(items)
        wait_jobs(ctl, total0)
        # only now are this wave's messages logged: later replies may cite them
        threads.extend(started)
        for th, mid in replied:
            th["ids"].append(mid)
    elapsed = time.monotonic() - t0
    after = http("GET", sim + "/_sim/state")
    end = stats(ctl)
    r0, r1 = before["requests"], after["requests"]
    routes = {k: v - r0["by_route"].get(k, 0) for k, v in r1["by_route"].items()
              if v - r0["by_route"].get(k, 0) > 0}
    logged = end.get("done", 0) - base.get("done", 0)
    api = r1["api"] - r0["api"]
    with open(state_file, "w") as f:
        json.dump({"threads": threads}, f)
    return {"messages": n, "waves": waves, "mix": counts, "logged": logged,
            "skipped": end.get("skipped", 0) - base.get("skipped", 0),
            "failed": end.get("failed", 0) - base.get("failed", 0),
            "api_requests": api, "auth_requests": r1["auth"] - r0["auth"],
            "requests_per_message": api / logged if logged else None,
            "tickets_created": len(after["tickets"]) - len(before["tickets"]),
            "by_route": routes, "seconds": elapsed}


def cmd_latency(port, sim, ctl, m, rate, seed, state_file):
    rng = random.Random(seed)
    with open(state_file) as f:
        threads = json.load(f)["threads"]
    kinds = ["reply"] * round(m * 0.7) + ["unknown"] * round(m * 0.1)
    kinds += ["new"] * (m - len(kinds))
    rng.shuffle(kinds)
    base = stats(ctl)
    total0 = sum(base.get(k, 0) for k in ("done", "skipped", "failed"))
    seq0 = http("GET", sim + "/_sim/requests?since=0")["requests"]
    seq0 = seq0[-1]["seq"] if seq0 else 0
    tag = ("l%d" if rate > 0 else "b%d") % seed
    items = []
    for i, kind in enumerate(kinds):
        th = rng.choice(threads) if kind == "reply" else None
        frm, wire, mid, _ = make_message(rng, kind, 100000 + i, tag, th)
        items.append((frm, wire, mid))
    if rate > 0:                     # steady: one message every 1/RATE s
        sent = {}
        t_next = time.monotonic()
        for frm, wire, mid in items:
            now = time.monotonic()
            if now < t_next:
                time.sleep(t_next - now)
            t_next += 1.0 / rate
            send_one("127.0.0.1", port, frm, RCPT, wire)
            sent[mid] = time.time()
    else:                            # burst: all at once, 20 connections
        sent = send_many(port, items, 20)
    wait_jobs(ctl, total0 + m)
    log = http("GET", sim + "/_sim/requests?since=0")["requests"]
    state = http("GET", sim + "/_sim/state")
    # k-th successful create request <-> k-th created object (the simulator
    # applies requests under one lock, in log order)
    made = {"POST /api/Tickets": [t for t in state["tickets"]
                                  if (t.get("_sim") or {}).get("via") == "POST /api/Tickets"],
            "POST /api/Actions": [a for a in state["actions"]
                                  if (a.get("_sim") or {}).get("via") == "POST /api/Actions"]}
    when = {}
    for route, objs in made.items():
        reqs = [r for r in log if r["route"] == route and 200 <= r["status"] < 300]
        if len(reqs) != len(objs):
            raise SystemExit("mix: %d %s requests but %d objects" % (len(reqs), route, len(objs)))
        for r, o in zip(reqs, objs):
            mid = o.get("internet_message_id")
            if mid and mid not in when:
                when[mid] = r["time"]
    lat = sorted((when[mid] - t) * 1000.0 for mid, t in sent.items() if mid in when)
    in_phase = [r for r in log if r["seq"] > seq0 and r["server"] == "api"]
    return {"messages": m, "rate_per_s": rate, "latency_ms_per_request":
            state["faults"].get("latency_ms"), "matched": len(lat),
            "p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1] if lat else None,
            "api_requests": len(in_phase)}


def main(argv):
    if len(argv) != 8 or argv[0] not in ("count", "latency"):
        sys.stderr.write(__doc__)
        return 2
    port, sim, ctl = int(argv[1]), argv[2], argv[3]
    if argv[0] == "count":
        out = cmd_count(port, sim, ctl, int(argv[4]), int(argv[5]), int(argv[6]), argv[7])
    else:
        out = cmd_latency(port, sim, ctl, int(argv[4]), float(argv[5]), int(argv[6]), argv[7])
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
