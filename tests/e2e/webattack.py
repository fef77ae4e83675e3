#!/usr/bin/env python3
"""webattack.py - hostile clients against halo-milter's web server.

Started by tests/e2e/webattack.sh with a running halo-milter whose web
server listens on --port (127.0.0.1). Linux routes all of 127.0.0.0/8 to
loopback, so binding a client socket to 127.0.0.N gives each "attacker" an
address of its own. Python 3 standard library only.

  1. slowloris: 80 connections from 5 addresses that send a request line and
     then one header byte now and then, never finishing; meanwhile another
     address must still get /healthz, the enrollment page (with a valid
     code) and /metrics, each within a few seconds;
  2. a request that never finishes its headers is cut off by the request
     deadline (web_request_timeout), even while it keeps sending bytes;
  3. wrong enrollment codes flooded from 12 addresses: each of them is
     limited, but a valid code from another address still opens;
  4. wrong admin passwords flooded from 12 addresses: the right password
     from another address still signs in;
  5. /metrics only for admin_networks.

Prints "ok   webattack: ..." / "FAIL webattack: ..." per check.
"""
import argparse
import http.client
import socket
import sys
import threading
import time
import urllib.parse

P = argparse.ArgumentParser()
P.add_argument("--port", type=int, required=True)
P.add_argument("--code", required=True)           # a valid enrollment code
P.add_argument("--password", required=True)       # the admin password
P.add_argument("--timeout", type=int, required=True)  # web_request_timeout
A = P.parse_args()

PASSED = 0
FAILED = 0


def check(desc, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("ok   webattack: %s" % desc)
    else:
        FAILED += 1
        print("FAIL webattack: %s" % desc)
        if detail:
            print("    %s" % str(detail)[:600])
    sys.stdout.flush()
    return cond


class Conn(http.client.HTTPConnection):
    """An HTTP connection from a chosen loopback source address."""

    def __init__(self, source, timeout=5.0):
        super().__init__("127.0.0.1", A.port, timeout=timeout,
                         source_address=(source, 0))


def request(source, method, path, body=None, headers=None, timeout=5.0):
    """(status, body text, headers) or (None, error text, {})."""
    c = Conn(source, timeout)
    h = {"Connection": "close"}
    h.update(headers or {})
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        return r.status, text, dict(r.getheaders())
    except (OSError, http.client.HTTPException) as e:
        return None, "%s: %s" % (type(e).__name__, e), {}
    finally:
        c.close()


def timed(source, method, path, **kw):
    t0 = time.monotonic()
    st, text, h = request(source, method, path, **kw)
    return st, text, h, time.monotonic() - t0


# --- 1. slowloris --------------------------------------------------------
stop = threading.Event()
slow = []           # (source, socket)
slow_lock = threading.Lock()


def slow_client(source):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.bind((source, 0))
        s.connect(("127.0.0.1", A.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    except OSError:
        return
    with slow_lock:
        slow.append((source, s))


attackers = ["127.0.0.%d" % i for i in range(2, 7)]
threads = [threading.Thread(target=slow_client, args=(src,))
           for src in attackers for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()


def drip():
    # one header byte per second on every slow connection: an idle timeout
    # alone never fires
    n = 0
    while not stop.wait(1.0):
        n += 1
        with slow_lock:
            for _, s in slow:
                try:
                    s.send(b"X-a: b\r\n"[n % 8:n % 8 + 1])
                except OSError:
                    pass


dripper = threading.Thread(target=drip, daemon=True)
dripper.start()
time.sleep(1.5)
check("slowloris: 80 connections opened from 5 addresses (%d connected)"
      % len(slow), len(slow) >= 40)

me = "127.0.0.9"
st, text, _, took = timed(me, "GET", "/healthz")
check("slowloris: /healthz from another address answers 200 (%.1fs)" % took,
      st == 200 and took < 4, "%s %s" % (st, text[:200]))
st, text, _, took = timed(me, "GET", "/enroll?code=" + A.code)
check("slowloris: a valid enrollment code opens from another address"
      " (%.1fs)" % took, st == 200 and "Confirm enrollment" in text,
      "%s %s" % (st, text[:300]))
st, text, _, took = timed(me, "GET", "/api/status?tenant=sim&msgid=x")
check("slowloris: the pane's status API answers another address (HTTP %s,"
      " %.1fs)" % (st, took), st is not None and st < 500 and took < 4,
      "%s %s" % (st, text[:200]))
st, text, _, took = timed(me, "GET", "/metrics")
check("slowloris: /metrics answers an admin_networks address (%.1fs)" % took,
      st == 200 and "halo_milter_jobs" in text, "%s %s" % (st, text[:200]))
refused = -1
for line in text.splitlines():
    if line.startswith("halo_milter_web_refused_total "):
        refused = int(line.split()[1])
# 5 addresses x 16 connections, 8 allowed each (web_connections_per_ip)
check("slowloris: the connections over 8 per address were refused (%d)"
      % refused, refused >= 40, text[-400:])
# an attacker address is held to its share
st, text, _, took = timed(attackers[0], "GET", "/healthz", timeout=3)
check("slowloris: an attacker address gets no connection beyond its cap",
      st != 200, "%s %s" % (st, text[:200]))

# --- 2. the request deadline ---------------------------------------------
# the slow connections keep sending, yet they are cut off once the request
# has taken longer than web_request_timeout
deadline = time.monotonic() + A.timeout + 8
alive = len(slow)
while time.monotonic() < deadline:
    alive = 0
    with slow_lock:
        for _, s in slow:
            try:
                s.settimeout(0)
                d = s.recv(4096)
                if d == b"":
                    continue            # closed by the server
                alive += 1              # an answer: should not come either
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
    if alive == 0:
        break
    time.sleep(0.5)
check("deadline: connections that never finish their headers are closed"
      " within web_request_timeout (+8s), though they keep sending"
      " (%d left)" % alive, alive == 0)
stop.set()
with slow_lock:
    for _, s in slow:
        s.close()

# --- 3. wrong-code flood -------------------------------------------------
ALPHA = "BCDFGHJKLMNPQRSTVWXZ"


def wrong_code(i, j):
    n = i * 1000 + j
    letters = []
    for _ in range(8):
        letters.append(ALPHA[n % 20])
        n //= 20
    c = "".join(letters)
    return c[:4] + "-" + c[4:]


flooders = ["127.0.0.%d" % i for i in range(20, 32)]
statuses = {}
for i, src in enumerate(flooders):
    statuses[src] = []
    for j in range(12):
        st, _, _ = request(src, "GET", "/enroll?code=" + wrong_code(i, j))
        statuses[src].append(st)
limited = [src for src in flooders if 429 in statuses[src]]
check("code flood: each of 12 flooding addresses is limited on its own"
      " (%d of 12 got 429)" % len(limited), len(limited) == 12,
      statuses)
st, text, _ = request("127.0.0.40", "GET", "/enroll?code=" + A.code)
check("code flood: a valid code from another address still opens",
      st == 200 and "Confirm enrollment" in text, "%s %s" % (st, text[:300]))
st, text, _ = request(flooders[0], "GET", "/enroll?code=" + A.code)
check("code flood: a flooding address stays limited, even with a valid code",
      st == 429, st)

# --- 4. admin sign-in flood ----------------------------------------------
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
for i, src in enumerate(flooders):
    for j in range(11):
        request(src, "POST", "/admin/login",
                body="password=wrong-%d-%d" % (i, j), headers=FORM,
                timeout=30)
st, text, h = request("127.0.0.41", "POST", "/admin/login",
                      body="password=" + urllib.parse.quote(A.password),
                      headers=FORM, timeout=30)
check("admin flood: the right password from another address signs in",
      st == 303 and "Set-Cookie" in h, "%s %s" % (st, text[:300]))
st, text, h = request(flooders[1], "POST", "/admin/login",
                      body="password=" + urllib.parse.quote(A.password),
                      headers=FORM, timeout=30)
check("admin flood: a flooding address stays limited", st == 429, st)

# --- 5. /metrics ---------------------------------------------------------
st, text, _ = request("127.0.0.200", "GET", "/metrics")
check("/metrics is refused outside admin_networks", st == 403 and
      "halo_milter" not in text, "%s %s" % (st, text[:200]))
st, text, _ = request("127.0.0.9", "GET", "/metrics")
check("/metrics answers inside admin_networks", st == 200 and
      "halo_milter_jobs" in text, "%s %s" % (st, text[:200]))
st, text, _ = request("127.0.0.200", "GET", "/healthz")
check("/healthz stays open to every address", st == 200, st)

print("webattack: %d passed, %d failed" % (PASSED, FAILED))
sys.exit(1 if FAILED else 0)
