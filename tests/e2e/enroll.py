#!/usr/bin/env python3
"""enroll.py - drive halo-milter's enrollment pages like a browser would.

Started by tests/e2e/enroll.sh with a running halo-milter (web server on
--web) and Halo simulator (--sim, --auth). Python 3 standard library only;
redirects are never followed automatically and cookies are kept by hand, so
every hop, header and cookie attribute can be checked.

Prints "ok   enroll: ..." / "FAIL enroll: ..." per check, and writes every
secret it saw (codes, states, Halo authorization codes) to --secrets, one a
line, for the caller to grep the daemon's log with.
"""
import argparse
import html.parser
import http.client
import json
import re
import secrets
import sqlite3
import subprocess
import sys
import time
import urllib.parse

P = argparse.ArgumentParser()
P.add_argument("--web", required=True)        # http://127.0.0.1:PORT
P.add_argument("--sim", required=True)        # resource server base
P.add_argument("--auth", required=True)       # auth server base
P.add_argument("--ctl", required=True)
P.add_argument("--conf", required=True)
P.add_argument("--db", required=True)
P.add_argument("--fixture", required=True)
P.add_argument("--secrets", required=True)
P.add_argument("--msgid", required=True)      # the waiting job's Message-ID
A = P.parse_args()

PASSED = 0
FAILED = 0
SEEN = set()
CSP_WANT = ("default-src 'none'; style-src 'self'; form-action 'self' %s; "
            "frame-ancestors 'none'; base-uri 'none'" % A.auth)


def check(desc, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print("ok   enroll: %s" % desc)
    else:
        FAILED += 1
        print("FAIL enroll: %s" % desc)
        if detail:
            print("    %s" % str(detail)[:600])
    sys.stdout.flush()
    return cond


def secret(value):
    if value:
        SEEN.add(value)
    return value


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Browser:
    """Cookies by host:port, set and sent by hand (Path=/ only here)."""

    def __init__(self):
        self.jar = {}

    def request(self, method, url, body=None, headers=None, chunked=False,
                cookies=True):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        path = u.path + ("?" + u.query if u.query else "")
        hdrs = dict(headers or {})
        jar = self.jar.get(u.netloc, {})
        if cookies and jar:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in jar.items())
        if body is not None and isinstance(body, str):
            body = body.encode()
        if chunked:
            conn.request(method, path, body=iter([body]), headers=hdrs,
                         encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        resp = Resp(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
        conn.close()
        for sc in resp.headers_all("Set-Cookie"):
            name, _, rest = sc.partition("=")
            value = rest.split(";")[0]
            attrs = sc.lower()
            if "max-age=0" in attrs:
                self.jar.setdefault(u.netloc, {}).pop(name, None)
            else:
                self.jar.setdefault(u.netloc, {})[name] = secret(value)
        return resp

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post_form(self, url, fields, **kw):
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        hdrs.update(kw.pop("headers", {}))
        return self.request("POST", url, urllib.parse.urlencode(fields),
                            headers=hdrs, **kw)


class FormParser(html.parser.HTMLParser):
    """The first form: its action and its inputs' values."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self.in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
            self.in_form = True
        elif tag == "input" and self.in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def form_of(page):
    p = FormParser()
    p.feed(page)
    return p


def ctl(*args, env=None):
    import os
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([A.ctl, "-c", A.conf] + list(args), env=e,
                          capture_output=True, text=True, timeout=60)


def new_code(agent="alice@msp.example", ttl=None):
    r = ctl("enroll", agent, "sim", env={"HALO_MILTER_TEST_CODE_TTL": str(ttl)}
            if ttl is not None else None)
    m = re.search(r"^code: ([A-Z]{4}-[A-Z]{4}) ", r.stdout, re.M)
    if not m:
        check("halo-milterctl enroll prints a code", False, r.stdout + r.stderr)
        sys.exit(1)
    secret(m.group(1))
    secret(m.group(1).replace("-", ""))
    return m.group(1), r.stdout


def sim_post(path, obj):
    b = Browser()
    return b.request("POST", A.sim + path, json.dumps(obj),
                     headers={"Content-Type": "application/json"})


def security_headers_ok(r, desc):
    ok = (r.header("Content-Security-Policy") == CSP_WANT
          and r.header("X-Content-Type-Options") == "nosniff"
          and r.header("Referrer-Policy") == "no-referrer"
          and r.header("Cache-Control") == "no-store")
    check(desc, ok, r.headers)


def start(b, code, **kw):
    return b.post_form(A.web + "/enroll/start", {"code": code}, **kw)


def sign_in(b, location, user, password, action="login"):
    """At the simulator's /authorize: the login form, then its answer."""
    page = b.get(location)
    if page.status != 200:
        return page, None
    f = form_of(page.body)
    fields = dict(f.fields)
    fields.update({"username": user, "password": password, "action": action})
    r = b.post_form(urllib.parse.urljoin(location, f.action), fields)
    loc = r.header("Location")
    if loc:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
        for k in ("code", "state"):
            for v in q.get(k, []):
                secret(v)
    return r, loc


def tokens_in_db():
    db = sqlite3.connect("file:%s?mode=ro" % A.db, uri=True)
    try:
        return db.execute("SELECT tenant, agent, state FROM tokens").fetchall()
    finally:
        db.close()


def agents_line(agent):
    out = ctl("agents").stdout
    for line in out.splitlines():
        if (" %s " % agent) in line:
            return line
    return ""


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


# --- the simulator knows our redirect URI ---------------------------------
fixture = json.load(open(A.fixture))
for c in fixture["oauth_clients"]:
    if c["client_id"] == "halo-milter-native":
        c["redirect_uris"].append(A.web + "/enroll/callback")
r = sim_post("/_sim/reset", {"fixture": fixture})
check("simulator accepts our redirect URI", r.status == 200, r.body)

# --- plain routes ---------------------------------------------------------
B = Browser()
r = B.get(A.web + "/healthz")
check("/healthz answers 200 ok", r.status == 200 and r.body == "ok\n", r.body)
r = B.get(A.web + "/metrics")
check("/metrics: job gauge and enrollment counters",
      r.status == 200 and 'halo_milter_jobs{state="waiting"} 1' in r.body
      and 'halo_milter_enrollments_total{result="ok"} 0' in r.body
      and "halo_milter_token_refreshes_total" in r.body, r.body[:400])
r = B.get(A.web + "/static/enroll.css")
check("stylesheet served as text/css", r.status == 200 and
      (r.header("Content-Type") or "").startswith("text/css") and "body{" in r.body)
r = B.get(A.web + "/nope")
check("unknown page: 404", r.status == 404)
r = B.request("DELETE", A.web + "/enroll")
check("unknown method: 405", r.status == 405)
r = B.get(A.web + "/enroll")
check("GET /enroll: the code form", r.status == 200 and
      form_of(r.body).action == "enroll" and 'name="code"' in r.body, r.body)
security_headers_ok(r, "security headers (CSP with the auth origin, nosniff,"
                    " no-referrer, no-store)")
check("no inline script or style", "<script" not in r.body and
      "style=" not in r.body and "<style" not in r.body)

# --- 1. someone else signs in: nothing stored -----------------------------
code, out = new_code()
check("halo-milterctl enroll prints both links",
      ("%s/enroll and types the code" % A.web) in out and
      ("%s/enroll?code=%s\n" % (A.web, code)) in out, out)
check("agents: pending code", "pending code" in agents_line("alice@msp.example"),
      ctl("agents").stdout)
r = B.get(A.web + "/enroll?code=" + urllib.parse.quote(code.lower()))
check("confirmation page (code typed in lower case)", r.status == 200, r.body)
check("confirmation names agent, tenant, Halo and gateway",
      "alice@msp.example" in r.body and "tenant sim" in r.body and
      A.sim in r.body and A.web in r.body, r.body)
check("confirmation warns about codes sent by someone else",
      "If someone sent you this code" in r.body)
security_headers_ok(r, "confirmation page: no-store and CSP")
f = form_of(r.body)
check("confirmation form posts the code to enroll/start",
      f.action == "enroll/start" and f.fields.get("code") == code, f.fields)
r = start(B, f.fields.get("code", code))
loc = r.header("Location") or ""
q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
check("start: 302 to Halo /authorize", r.status == 302 and
      loc.startswith(A.auth + "/auth/authorize?"), (r.status, loc))
check("authorize request: client, redirect URI, scope, S256 challenge",
      q.get("client_id") == ["halo-milter-native"] and
      q.get("redirect_uri") == [A.web + "/enroll/callback"] and
      q.get("scope") == ["all offline_access"] and
      q.get("code_challenge_method") == ["S256"] and
      re.fullmatch(r"[A-Za-z0-9_-]{43}", (q.get("code_challenge") or [""])[0])
      is not None and len((q.get("state") or [""])[0]) >= 32, q)
secret((q.get("state") or [""])[0])
cookie = r.header("Set-Cookie") or ""
check("state cookie: HttpOnly, SameSite=Lax, Path=/ (no Secure on http)",
      cookie.startswith("halo_enroll=") and "HttpOnly" in cookie and
      "SameSite=Lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
      and cookie.split(";")[0].split("=", 1)[1] == q.get("state", [""])[0], cookie)
r, cb = sign_in(B, loc, "bob@msp.example", "bob-pass-2")
check("simulator redirects to our callback", r.status == 302 and cb and
      cb.startswith(A.web + "/enroll/callback?"), (r.status, cb, r.body[:300]))
r = B.get(cb)
check("wrong agent: refused, page names both agents", r.status == 403 and
      "bob@msp.example" in r.body and "alice@msp.example" in r.body and
      "Nothing was stored" in r.body, (r.status, r.body))
check("wrong agent: no token stored", tokens_in_db() == [], tokens_in_db())
check("wrong agent: the cookie is cleared", "halo_enroll" not in
      B.jar.get(urllib.parse.urlsplit(A.web).netloc, {}))

# --- 2. consent denied ----------------------------------------------------
code, _ = new_code()
r = start(B, code)
r, cb = sign_in(B, r.header("Location"), "alice@msp.example", "alice-pass-1",
                action="deny")
check("deny: simulator sends error=access_denied", cb is not None and
      "error=access_denied" in cb, cb)
r = B.get(cb)
check("consent denied: clear page, nothing stored", r.status == 403 and
      "declined" in r.body and tokens_in_db() == [], (r.status, r.body))

# --- 3. forged state, missing cookie, then the real callback ---------------
code, _ = new_code()
happy_code = code
r = start(B, code)
loc = r.header("Location")
state = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["state"][0]
r, cb = sign_in(B, loc, "alice@msp.example", "alice-pass-1")
check("alice signs in at the simulator", r.status == 302 and cb is not None,
      (r.status, r.body[:300]))
forged = secrets.token_urlsafe(32)
r = B.get(cb.replace(state, forged))
check("forged state (real cookie): refused", r.status == 400 and
      "does not belong" in r.body, (r.status, r.body))
r = B.get(cb, cookies=False)
check("missing cookie: refused", r.status == 400 and "cookie is missing" in r.body,
      (r.status, r.body))
r = B.get(cb.replace(state, forged),
          headers={"Cookie": "halo_enroll=" + forged}, cookies=False)
check("made-up state and cookie that agree: refused", r.status == 400 and
      "not known" in r.body, (r.status, r.body))
check("refused callbacks stored nothing", tokens_in_db() == [])
r = B.get(cb)
check("real callback: enrolled", r.status == 200 and "Enrolled" in r.body and
      "alice@msp.example" in r.body, (r.status, r.body))
security_headers_ok(r, "success page: security headers")
check("token stored for alice (sealed, state ok)",
      tokens_in_db() == [("sim", "alice@msp.example", "ok")], tokens_in_db())
line = agents_line("alice@msp.example")
check("agents: alice enrolled", "enrolled" in line and "not enrolled" not in line,
      line)
d = ctl("doctor", "sim")
check("doctor: alice's token refreshes and Agent/me matches",
      "ok   agent alice@msp.example: token refreshed" in d.stdout,
      "exit %d\n%s\nstderr: %s" % (d.returncode, d.stdout, d.stderr))

# the job that waited for alice's token is logged now
done = False
for _ in range(300):
    q = ctl("queue").stdout
    row = [ln for ln in q.splitlines() if ln.endswith(" " + A.msgid)]
    if row and row[0].split()[1] == "done":
        done = True
        break
    time.sleep(0.1)
check("the waiting job of alice's mailbox is logged after enrollment", done,
      ctl("queue").stdout)

# --- 4. replays and reuse ---------------------------------------------------
r = B.get(cb, headers={"Cookie": "halo_enroll=" + state}, cookies=False)
check("callback replayed: refused (used)", r.status == 410 and
      "already completed" in r.body, (r.status, r.body))
r = B.get(A.web + "/enroll?code=" + happy_code)
check("used code: refused", r.status == 410 and "already used" in r.body,
      (r.status, r.body))
r = start(B, happy_code)
check("used code posted again: refused", r.status == 410 and
      r.header("Location") is None, (r.status, r.body))

# --- 5. an expired code -----------------------------------------------------
code, _ = new_code(ttl=0)
r = B.get(A.web + "/enroll?code=" + code)
check("expired code: refused", r.status == 410 and "expired" in r.body,
      (r.status, r.body))

# --- 6. request limits and cross-site posts --------------------------------
code, _ = new_code()
r = B.post_form(A.web + "/enroll/start", {"code": code, "pad": "x" * 8192})
check("oversized POST: 413", r.status == 413, r.status)
r = B.request("POST", A.web + "/enroll/start",
              "code=%s&pad=%s" % (code, "x" * 8192),
              headers={"Content-Type": "application/x-www-form-urlencoded"},
              chunked=True)
check("oversized chunked POST: 413", r.status == 413, r.status)
r = B.request("POST", A.web + "/enroll/start", "code=" + code,
              headers={"Content-Type": "text/plain"})
check("POST that is not a form: 415", r.status == 415, r.status)
r = start(B, code, headers={"Origin": "http://evil.example"})
check("cross-site POST (foreign Origin): 403", r.status == 403 and
      r.header("Location") is None, r.status)
r = B.get(A.web + "/enroll?code=" + code)
check("refused POSTs did not use the code", r.status == 200, (r.status, r.body))

# --- 7. what the store keeps --------------------------------------------------
raw = open(A.db, "rb").read()
try:
    raw += open(A.db + "-wal", "rb").read()
except OSError:
    pass
leaked = [s for s in SEEN if s.encode() in raw]
check("store holds no code, state or Halo code", not leaked, leaked)
db = sqlite3.connect("file:%s?mode=ro" % A.db, uri=True)
rows = db.execute("SELECT code_hash, result, verifier_sealed FROM enrollments"
                  ).fetchall()
db.close()
check("store: codes as 64-hex keyed hashes",
      rows and all(re.fullmatch(r"[0-9a-f]{64}", h) for h, _, _ in rows), rows)
check("store: no verifier kept after a callback",
      all(v is None for _, res, v in rows if res is not None), rows)
check("store: results recorded (ok, mismatch, denied)",
      sorted(res for _, res, _ in rows if res) == ["denied", "mismatch", "ok"],
      rows)

r = B.get(A.web + "/metrics")
check("metrics count the outcomes",
      metric(r.body, 'halo_milter_enrollments_total{result="ok"}') == 1 and
      metric(r.body, 'halo_milter_enrollments_total{result="mismatch"}') == 1 and
      metric(r.body, 'halo_milter_enrollments_total{result="denied"}') == 1 and
      metric(r.body, 'halo_milter_enrollments_total{result="started"}') == 3 and
      metric(r.body, 'halo_milter_jobs{state="done"}') == 1, r.body)
# three sign-ins: each a code exchange and an Agent/me, then the job's calls
check("metrics count Halo requests by result",
      metric(r.body, 'halo_milter_halo_requests_total{result="ok"}') >= 6 and
      metric(r.body, 'halo_milter_halo_requests_total{result="server-error"}') is not None,
      r.body)

# --- 8. revoke ---------------------------------------------------------------
r = ctl("revoke", "alice@msp.example", "sim")
check("revoke: token deleted", r.returncode == 0 and tokens_in_db() == [],
      r.stdout + r.stderr)
check("agents: alice no longer enrolled",
      "not enrolled" in agents_line("alice@msp.example"), ctl("agents").stdout)
r = ctl("revoke", "alice@msp.example", "sim")
check("revoke again: nothing to delete (exit 1)", r.returncode == 1, r.stderr)

# --- 9. brute force (last: it locks this client out) --------------------------
statuses = []
for _ in range(12):
    wrong = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(8))
    statuses.append(B.get(A.web + "/enroll?code=" + wrong).status)
first = statuses.index(429) if 429 in statuses else -1
check("brute force: 429 after at most 10 wrong codes, and it stays",
      0 <= first <= 10 and all(s == 429 for s in statuses[first:]) and
      all(s in (404, 410) for s in statuses[:first]), statuses)
code, _ = new_code()
r = B.get(A.web + "/enroll?code=" + code)
check("while limited even a good code gets 429", r.status == 429 and
      "Too many" in r.body, r.status)

with open(A.secrets, "w") as fh:
    for s in sorted(SEEN):
        fh.write(s + "\n")
print("enroll.py: %d passed, %d failed" % (PASSED, FAILED))
sys.exit(1 if FAILED else 0)
