"""Self-test for halosim: starts the simulator as a subprocess and drives it over HTTP.

Run from the repo root:
    python3 -m unittest discover -s tests/halosim -p 'test_*.py' -v
"""

import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "halosim.py")
FIXTURE = os.path.join(HERE, "fixture.json")

NATIVE = "halo-milter-native"
REDIRECT = "http://127.0.0.1:8025/enroll/callback"
CONF = "halo-milter-confidential"
CONF_SECRET = "sim-secret-0f3c9a7e"
CONF_REDIRECT = "https://milter.msp.example/enroll/callback"
ALICE = ("alice@msp.example", "alice-pass-1")
RATE_TEXT = "Rate Limit Reached - %d Requests per rolling %s window"


def data_uri(data, mime="application/octet-stream"):
    return "data:%s;base64,%s" % (mime, base64.b64encode(data).decode())


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce():
    verifier = secrets.token_urlsafe(48)          # 64 chars of the unreserved set
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


class Result:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Result %s %r>" % (self.status, self.body[:300])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_NoRedirect)
_UNSET = object()


def http_req(method, url, json_body=_UNSET, form=None, body=None, headers=None, token=None,
             timeout=15):
    hdrs = dict(headers or {})
    data = body
    if json_body is not _UNSET:
        data = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if token:
        hdrs["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return Result(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Result(e.code, e.headers, e.read())


class SimProcess:
    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="halosim-test-")
        self.ready = os.path.join(self.tmp, "ready.json")
        self.errpath = os.path.join(self.tmp, "stderr.log")
        self.err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, SIM, "--port", "0", "--auth-port", "0", "--fixture", FIXTURE,
             "--ready-file", self.ready] + list(args),
            stdout=subprocess.PIPE, stderr=self.err)
        deadline = time.time() + 15
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("halosim did not start: %s" % self.stderr())
            time.sleep(0.02)
        with open(self.ready) as fh:
            self.info = json.load(fh)
        self.stdout_line = self.proc.stdout.readline().decode().strip()
        self.api = "http://127.0.0.1:%d" % self.info["port"]
        self.auth = "http://127.0.0.1:%d" % self.info["auth_port"]

    def stderr(self):
        with open(self.errpath, "rb") as fh:
            return fh.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


SHARED = None


def setUpModule():
    global SHARED
    SHARED = SimProcess()


def tearDownModule():
    if SHARED is not None:
        SHARED.stop()


class Base(unittest.TestCase):
    sim = None

    def setUp(self):
        self.sim = SHARED
        r = http_req("POST", self.sim.api + "/_sim/reset", json_body={})
        self.assertEqual(r.status, 200, r)

    # -- helpers
    def get(self, path, token=None, **kw):
        return http_req("GET", self.sim.api + path, token=token, **kw)

    def post(self, path, obj, token=None, **kw):
        return http_req("POST", self.sim.api + path, json_body=obj, token=token, **kw)

    def faults(self, **kw):
        r = self.post("/_sim/faults", kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def state(self):
        return self.get("/_sim/state").json()

    def token(self, email="alice@msp.example", scope="all offline_access"):
        r = self.post("/_sim/token", {"agent_email": email, "scope": scope})
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def tokpost(self, path, form, query=""):
        return http_req("POST", self.sim.auth + path + query, form=form)

    def login(self, email=ALICE[0], password=ALICE[1], scope="all offline_access",
              client_id=NATIVE, redirect=REDIRECT, prefix="", extra=None):
        """Drives the HTML login form; returns (post Result, verifier, state)."""
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(12)
        q = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
             "scope": scope, "state": state, "code_challenge": challenge,
             "code_challenge_method": "S256"}
        q.update(extra or {})
        r = http_req("GET", self.sim.auth + prefix + "/authorize?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 200, r)
        self.assertIn("text/html", r.headers["Content-Type"])
        fields = {k: html.unescape(v) for k, v in re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text)}
        self.assertEqual(fields["state"], state)
        self.assertEqual(fields["code_challenge"], challenge)
        fields.update(username=email, password=password, action="login")
        r2 = http_req("POST", self.sim.auth + prefix + "/authorize", form=fields)
        return r2, verifier, state

    def code_from(self, r, state):
        self.assertEqual(r.status, 302, r)
        loc = urllib.parse.urlsplit(r.headers["Location"])
        q = dict(urllib.parse.parse_qsl(loc.query))
        self.assertEqual(q.get("state"), state)
        return loc, q

    def full_login(self, scope="all offline_access", **kw):
        r, verifier, state = self.login(scope=scope, **kw)
        _loc, q = self.code_from(r, state)
        t = self.tokpost("/token", {"grant_type": "authorization_code", "code": q["code"],
                                    "code_verifier": verifier, "redirect_uri": REDIRECT,
                                    "client_id": NATIVE})
        self.assertEqual(t.status, 200, t)
        return t.json()


# =================================================================== startup

class TestStartup(Base):
    def test_ready_file_and_stdout(self):
        info = self.sim.info
        self.assertEqual(set(info), {"port", "auth_port", "pid"})
        self.assertEqual(info["pid"], self.sim.proc.pid)
        self.assertGreater(info["port"], 0)
        self.assertNotEqual(info["port"], info["auth_port"])
        self.assertEqual(json.loads(self.sim.stdout_line), info)

    def test_authinfo(self):
        r = self.get("/api/authinfo")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["auth_url"], "http://127.0.0.1:%d/auth" % self.sim.info["auth_port"])
        self.assertEqual(body["tenant_id"], "6f1d2c3b-4a59-4e8d-9c7b-0a1b2c3d4e5f")


# ===================================================================== OAuth

class TestAuthorize(Base):
    def test_unknown_client_is_400_page_without_redirect(self):
        _v, ch = pkce()
        q = urllib.parse.urlencode({"response_type": "code", "client_id": "nope",
                                    "redirect_uri": REDIRECT, "code_challenge": ch,
                                    "code_challenge_method": "S256", "state": "s"})
        r = http_req("GET", self.sim.auth + "/authorize?" + q)
        self.assertEqual(r.status, 400)
        self.assertIsNone(r.headers.get("Location"))

    def test_unregistered_redirect_is_400_page(self):
        _v, ch = pkce()
        for uri in ("http://evil.example/cb", REDIRECT + "/", REDIRECT + "?x=1"):
            q = urllib.parse.urlencode({"response_type": "code", "client_id": NATIVE,
                                        "redirect_uri": uri, "code_challenge": ch,
                                        "code_challenge_method": "S256", "state": "s"})
            r = http_req("GET", self.sim.auth + "/authorize?" + q)
            self.assertEqual(r.status, 400, uri)
            self.assertIsNone(r.headers.get("Location"))

    def _authz_error(self, **over):
        _v, ch = pkce()
        q = {"response_type": "code", "client_id": NATIVE, "redirect_uri": REDIRECT,
             "code_challenge": ch, "code_challenge_method": "S256", "state": "st8",
             "scope": "all"}
        q.update(over)
        q = {k: v for k, v in q.items() if v is not None}
        r = http_req("GET", self.sim.auth + "/authorize?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 302, r)
        loc = urllib.parse.urlsplit(r.headers["Location"])
        self.assertEqual("%s://%s%s" % (loc.scheme, loc.netloc, loc.path), REDIRECT)
        return dict(urllib.parse.parse_qsl(loc.query))

    def test_plain_method_rejected(self):
        q = self._authz_error(code_challenge_method="plain")
        self.assertEqual(q["error"], "invalid_request")
        self.assertEqual(q["state"], "st8")
        self.assertNotIn("code", q)

    def test_missing_challenge_rejected(self):
        q = self._authz_error(code_challenge=None)
        self.assertEqual(q["error"], "invalid_request")

    def test_bad_response_type(self):
        self.assertEqual(self._authz_error(response_type="token")["error"],
                         "unsupported_response_type")

    def test_read_actions_scope_invalid(self):
        self.assertEqual(self._authz_error(scope="read:actions")["error"], "invalid_scope")

    def test_wrong_tenant_is_400(self):
        _v, ch = pkce()
        q = urllib.parse.urlencode({"response_type": "code", "client_id": NATIVE,
                                    "redirect_uri": REDIRECT, "code_challenge": ch,
                                    "code_challenge_method": "S256", "tenant": "other"})
        r = http_req("GET", self.sim.auth + "/authorize?" + q)
        self.assertEqual(r.status, 400)
        self.assertIsNone(r.headers.get("Location"))

    def test_full_flow_with_auth_prefix_and_tenant(self):
        r, verifier, state = self.login(prefix="/auth", extra={"tenant": "halosim"})
        _loc, q = self.code_from(r, state)
        self.assertGreaterEqual(len(q["code"]), 32)
        t = http_req("POST", self.sim.auth + "/auth/token?tenant=halosim",
                     form={"grant_type": "authorization_code", "code": q["code"],
                           "code_verifier": verifier, "redirect_uri": REDIRECT,
                           "client_id": NATIVE})
        self.assertEqual(t.status, 200, t)
        body = t.json()
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3600)
        self.assertEqual(body["scope"], "all offline_access")
        self.assertTrue(body["refresh_token"])
        me = self.get("/api/Agent/me", token=body["access_token"])
        self.assertEqual(me.status, 200)
        self.assertEqual(me.json(), {"id": 1, "name": "Alice Agent", "email": "alice@msp.example",
                                     "isdisabled": False, "isapiagent": False})
        self.assertEqual(self.state()["tokens"]["issued"], 1)

    def test_bad_password_reshows_form(self):
        r, _v, _s = self.login(password="wrong")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.headers.get("Location"))
        self.assertIn("Invalid username or password", r.text)
        self.assertIn('name="code_challenge"', r.text)

    def test_disabled_agent_cannot_login(self):
        r, _v, _s = self.login(email="dora@msp.example", password="dora-pass-3")
        self.assertEqual(r.status, 200)
        self.assertIn("disabled", r.text)

    def test_deny_button(self):
        verifier, challenge = pkce()
        fields = {"response_type": "code", "client_id": NATIVE, "redirect_uri": REDIRECT,
                  "scope": "all", "state": "deny-state", "code_challenge": challenge,
                  "code_challenge_method": "S256", "action": "deny"}
        r = http_req("POST", self.sim.auth + "/authorize", form=fields)
        _loc, q = self.code_from(r, "deny-state")
        self.assertEqual(q["error"], "access_denied")
        self.assertNotIn("code", q)


class TestToken(Base):
    def _code(self, **kw):
        r, verifier, state = self.login(**kw)
        _loc, q = self.code_from(r, state)
        return q["code"], verifier

    def _exchange(self, code, verifier, **over):
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": REDIRECT, "client_id": NATIVE}
        form.update(over)
        return self.tokpost("/token", {k: v for k, v in form.items() if v is not None})

    def assertOAuthError(self, r, error):
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], error)
        self.assertIn("error_description", r.json())

    def test_code_is_single_use(self):
        code, verifier = self._code()
        self.assertEqual(self._exchange(code, verifier).status, 200)
        self.assertOAuthError(self._exchange(code, verifier), "invalid_grant")

    def test_verifier_mismatch(self):
        code, _verifier = self._code()
        other, _ = pkce()
        self.assertOAuthError(self._exchange(code, other), "invalid_grant")

    def test_read_actions_scope_at_token(self):
        code, verifier = self._code()
        self.assertOAuthError(self._exchange(code, verifier, scope="read:actions"),
                              "invalid_scope")

    def test_redirect_uri_mismatch(self):
        code, verifier = self._code()
        self.assertOAuthError(self._exchange(code, verifier,
                                             redirect_uri="http://localhost:8025/enroll/callback"),
                              "invalid_grant")

    def test_client_mismatch(self):
        code, verifier = self._code()
        self.assertOAuthError(self._exchange(code, verifier, client_id=CONF,
                                             client_secret=CONF_SECRET), "invalid_grant")

    def test_unknown_client(self):
        code, verifier = self._code()
        self.assertOAuthError(self._exchange(code, verifier, client_id="nobody"),
                              "invalid_client")

    def test_code_expires_after_60s(self):
        code, verifier = self._code()
        self.post("/_sim/clock", {"advance": 61})
        self.assertOAuthError(self._exchange(code, verifier), "invalid_grant")

    def test_non_form_content_type(self):
        code, verifier = self._code()
        r = http_req("POST", self.sim.auth + "/token",
                     json_body={"grant_type": "authorization_code", "code": code,
                                "code_verifier": verifier, "redirect_uri": REDIRECT,
                                "client_id": NATIVE})
        self.assertOAuthError(r, "invalid_request")

    def test_no_offline_access_no_refresh_token(self):
        body = self.full_login(scope="all")
        self.assertNotIn("refresh_token", body)
        self.assertEqual(body["scope"], "all")

    def test_jwt_shape(self):
        body = self.full_login()
        parts = body["access_token"].split(".")
        self.assertEqual(len(parts), 3)
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        self.assertEqual(payload["agent_id"], 1)
        self.assertEqual(payload["sub"], "1")
        self.assertAlmostEqual(payload["exp"], time.time() + 3600, delta=30)

    def test_tenant_in_body_and_query(self):
        code, verifier = self._code()
        self.assertOAuthError(self._exchange(code, verifier, tenant="wrong"), "invalid_request")
        code, verifier = self._code()
        self.assertEqual(self._exchange(code, verifier, tenant="HaloSim").status, 200)
        code, verifier = self._code()
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": REDIRECT, "client_id": NATIVE}
        self.assertOAuthError(self.tokpost("/token", form, "?tenant=bogus"), "invalid_request")

    def test_tenant_required_flag(self):
        self.faults(tenant_required=True)
        code, verifier = self._code(extra={"tenant": "halosim"})
        self.assertOAuthError(self._exchange(code, verifier), "invalid_request")

    def test_refresh_rotate(self):
        body = self.full_login()
        rt = body["refresh_token"]
        r = self.tokpost("/token", {"grant_type": "refresh_token", "refresh_token": rt,
                                    "client_id": NATIVE})
        self.assertEqual(r.status, 200, r)
        new = r.json()
        self.assertNotEqual(new["refresh_token"], rt)
        self.assertNotEqual(new["access_token"], body["access_token"])
        self.assertEqual(self.get("/api/Agent/me", token=new["access_token"]).json()["id"], 1)
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "refresh_token",
                                                      "refresh_token": rt,
                                                      "client_id": NATIVE}), "invalid_grant")
        r3 = self.tokpost("/token", {"grant_type": "refresh_token",
                                     "refresh_token": new["refresh_token"], "client_id": NATIVE})
        self.assertEqual(r3.status, 200)
        self.assertEqual(self.state()["tokens"]["refreshed"], 2)

    def test_refresh_reuse(self):
        self.faults(rotation="reuse")
        rt = self.full_login()["refresh_token"]
        for _ in range(2):
            r = self.tokpost("/token", {"grant_type": "refresh_token", "refresh_token": rt,
                                        "client_id": NATIVE})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["refresh_token"], rt)

    def test_refresh_omit(self):
        self.faults(rotation="omit")
        rt = self.full_login()["refresh_token"]
        for _ in range(2):
            r = self.tokpost("/token", {"grant_type": "refresh_token", "refresh_token": rt,
                                        "client_id": NATIVE})
            self.assertEqual(r.status, 200)
            self.assertNotIn("refresh_token", r.json())
            self.assertTrue(r.json()["access_token"])

    def test_refresh_wrong_client_and_unknown(self):
        rt = self.full_login()["refresh_token"]
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "refresh_token",
                                                      "refresh_token": rt, "client_id": CONF,
                                                      "client_secret": CONF_SECRET}),
                              "invalid_grant")
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "refresh_token",
                                                      "refresh_token": "garbage",
                                                      "client_id": NATIVE}), "invalid_grant")

    def test_revoke_refresh_tokens(self):
        rt = self.full_login()["refresh_token"]
        self.faults(revoke_refresh_tokens=True)
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "refresh_token",
                                                      "refresh_token": rt,
                                                      "client_id": NATIVE}), "invalid_grant")

    def test_confidential_client_secret_required(self):
        code, verifier = self._code(client_id=CONF, redirect=CONF_REDIRECT)
        base = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": CONF_REDIRECT, "client_id": CONF}
        self.assertOAuthError(self.tokpost("/token", base), "invalid_client")
        self.assertOAuthError(self.tokpost("/token", dict(base, client_secret="bad")),
                              "invalid_client")
        r = self.tokpost("/token", dict(base, client_secret=CONF_SECRET))
        self.assertEqual(r.status, 200, r)

    def test_client_credentials(self):
        r = self.tokpost("/token", {"grant_type": "client_credentials", "client_id": CONF,
                                    "client_secret": CONF_SECRET, "scope": "all"})
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertNotIn("refresh_token", body)
        me = self.get("/api/Agent/me", token=body["access_token"]).json()
        self.assertEqual(me["id"], 9)
        self.assertTrue(me["isapiagent"])
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "client_credentials",
                                                      "client_id": CONF,
                                                      "client_secret": "nope"}),
                              "invalid_client")
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "client_credentials",
                                                      "client_id": CONF}), "invalid_client")
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "client_credentials",
                                                      "client_id": NATIVE}), "invalid_client")
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "client_credentials",
                                                      "client_id": CONF,
                                                      "client_secret": CONF_SECRET,
                                                      "scope": "read:actions"}),
                              "invalid_scope")

    def test_unsupported_grant(self):
        self.assertOAuthError(self.tokpost("/token", {"grant_type": "password",
                                                      "client_id": NATIVE}), "invalid_request")

    def test_token_lifetime_and_expiry(self):
        self.faults(token_lifetime=120)
        body = self.full_login()
        self.assertEqual(body["expires_in"], 120)
        self.assertEqual(self.get("/api/Agent/me", token=body["access_token"]).status, 200)
        self.post("/_sim/clock", {"advance": 121})
        r = self.get("/api/Agent/me", token=body["access_token"])
        self.assertEqual(r.status, 401)
        self.assertIn("Bearer", r.headers["WWW-Authenticate"])

    def test_auth_down(self):
        self.faults(auth_down=True)
        r = self.tokpost("/token", {"grant_type": "refresh_token", "refresh_token": "x",
                                    "client_id": NATIVE})
        self.assertEqual(r.status, 503)
        r = http_req("GET", self.sim.auth + "/authorize?client_id=" + NATIVE)
        self.assertEqual(r.status, 503)
        self.faults(auth_down="close")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                urllib.error.URLError)):
            http_req("POST", self.sim.auth + "/token", form={"grant_type": "x"})
        self.faults(auth_down=False)
        self.assertEqual(self.tokpost("/token", {"grant_type": "refresh_token",
                                                 "refresh_token": "x",
                                                 "client_id": NATIVE}).status, 400)

    def test_auth_unknown_route(self):
        self.assertEqual(http_req("GET", self.sim.auth + "/nothing").status, 404)
        self.assertEqual(http_req("GET", self.sim.auth + "/token").status, 405)


# =============================================================== resource auth

class TestResourceAuth(Base):
    def test_missing_and_unknown_token(self):
        r = self.get("/api/Tickets")
        self.assertEqual(r.status, 401)
        self.assertEqual(self.get("/api/Tickets", token="not.a.token").status, 401)
        self.assertEqual(self.get("/api/Tickets", token=self.token()).status, 200)

    def test_scope_403(self):
        cust = self.token(scope="read:customers")
        self.assertEqual(self.get("/api/Tickets", token=cust).status, 403)
        self.assertEqual(self.get("/api/Users", token=cust).status, 200)
        self.assertEqual(self.get("/api/Outcome", token=cust).status, 403)
        rt = self.token(scope="read:tickets")
        self.assertEqual(self.get("/api/Tickets", token=rt).status, 200)
        self.assertEqual(self.get("/api/Client", token=rt).status, 403)
        self.assertEqual(self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note"}],
                                   token=rt).status, 403)
        et = self.token(scope="edit:tickets")
        self.assertEqual(self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note"}],
                                   token=et).status, 200)
        std = self.token(scope="all:standard")
        self.assertEqual(self.get("/api/Site", token=std).status, 200)
        self.assertEqual(self.state()["requests"]["by_status"]["403"], 4)

    def test_routes_case_insensitive(self):
        tok = self.token()
        for path in ("/api/tickets/501", "/api/Tickets/501", "/API/TICKETS/501/",
                     "/api/tIcKeTs/501"):
            r = self.get(path, token=tok)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.json()["id"], 501)
        self.assertEqual(self.state()["requests"]["by_route"]["GET /api/Tickets/{id}"], 4)

    def test_unknown_route_and_method(self):
        tok = self.token()
        self.assertEqual(self.get("/api/Nope", token=tok).status, 404)
        self.assertEqual(self.get("/elsewhere").status, 404)
        self.assertEqual(self.get("/api/Tickets/abc", token=tok).status, 404)
        r = http_req("DELETE", self.sim.api + "/api/Tickets", token=tok)
        self.assertEqual(r.status, 405)

    def test_unauthorized_next(self):
        tok = self.token()
        self.faults(unauthorized_next=2)
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 401)
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 401)
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)

    def test_revoke_access_tokens(self):
        tok = self.full_login()
        self.faults(revoke_access_tokens=True)
        self.assertEqual(self.get("/api/Agent/me", token=tok["access_token"]).status, 401)
        r = self.tokpost("/token", {"grant_type": "refresh_token",
                                    "refresh_token": tok["refresh_token"], "client_id": NATIVE})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.get("/api/Agent/me", token=r.json()["access_token"]).status, 200)

    def test_sim_token(self):
        r = self.post("/_sim/token", {"agent_email": "BOB@msp.example",
                                      "scope": "all offline_access"})
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["agent_id"], 2)
        self.assertTrue(body["refresh_token"])
        self.assertEqual(self.get("/api/Agent/me", token=body["access_token"]).json()["email"],
                         "bob@msp.example")
        self.assertEqual(self.post("/_sim/token", {"agent_email": "x@y"}).status, 400)
        self.assertEqual(self.post("/_sim/token", {"agent_email": "bob@msp.example",
                                                   "scope": "read:actions"}).status, 400)
        r = self.post("/_sim/token", {"agent_email": "bob@msp.example", "scope": "all"})
        self.assertNotIn("refresh_token", r.json())


# ============================================================ customers

class TestCustomers(Base):
    def setUp(self):
        super().setUp()
        self.tok = self.token()

    def users(self, qs):
        r = self.get("/api/Users?" + qs, token=self.tok)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        if "count=" not in qs and "pageinate" not in qs:
            self.assertEqual(body["record_count"], len(body["users"]))
        return [u["id"] for u in body["users"]]

    def test_search_is_substring(self):
        self.assertEqual(self.users("search=jo@acme.example"), [1001, 1002])
        self.assertEqual(self.users("search=JO@ACME.EXAMPLE"), [1001, 1002])
        self.assertEqual(self.users("search=carl.home@mail"), [1003])       # email2
        self.assertEqual(self.users("search=globex-legacy"), [1003])        # email3
        self.assertEqual(self.users("search=Smith"), [1001])                # name
        self.assertEqual(self.users("search=nobody@nowhere"), [])

    def test_user_fields(self):
        r = self.get("/api/Users?search=carl@globex.example", token=self.tok).json()
        u = r["users"][0]
        self.assertEqual(u, {"id": 1003, "name": "Carl Globex",
                             "emailaddress": "carl@globex.example",
                             "email2": "Carl.Home@Mail.Example",
                             "email3": "c.globex@globex-legacy.example", "site_id": 110,
                             "site_name": "Globex Main", "client_id": 11,
                             "client_name": "Globex", "inactive": False})

    def test_inactive_and_filters(self):
        self.assertEqual(self.users("search=ida@"), [])
        self.assertEqual(self.users("search=ida@&includeinactive=true"), [1004])
        self.assertEqual(self.users("client_id=10"), [1000, 1001, 1002])
        self.assertEqual(self.users("site_id=101"), [1002])
        self.assertEqual(self.users("search=acme&count=2"), [1000, 1001])
        self.assertEqual(self.users("search=acme&pageinate=true&page_size=2&page_no=2"), [1002])
        r = self.get("/api/Users?search=acme&pageinate=true&page_size=2&page_no=2",
                     token=self.tok).json()
        self.assertEqual(r["record_count"], 3)
        self.assertEqual(self.get("/api/Users?client_id=abc", token=self.tok).status, 400)

    def test_user_by_id(self):
        r = self.get("/api/Users/1000", token=self.tok)
        self.assertEqual(r.json()["emailaddress"], "ann@acme.example")
        self.assertEqual(self.get("/api/Users/424242", token=self.tok).status, 404)

    def clients(self, qs):
        r = self.get("/api/Client?" + qs, token=self.tok)
        self.assertEqual(r.status, 200, r)
        return [c["id"] for c in r.json()["clients"]]

    def test_clients(self):
        self.assertEqual(self.clients("search=acme"), [10])
        self.assertEqual(self.clients("")[:6], [10, 11, 12, 13, 15, 2000])
        self.assertEqual(len(self.clients("")), 5 + 60)          # 60 filler clients
        self.assertEqual(self.clients("includeinactive=true")[:6], [10, 11, 12, 13, 14, 15])
        self.assertEqual(self.get("/api/Client/11", token=self.tok).json()["name"], "Globex")
        self.assertEqual(self.get("/api/Client/99", token=self.tok).status, 404)

    def test_client_domain_variants(self):
        self.assertEqual(self.clients("domain=shared.example"), [12, 13])   # ambiguous
        self.assertEqual(self.clients("domain=acme-branch.example"), [10])
        self.faults(client_domain="client")
        self.assertEqual(self.clients("domain=shared.example"), [])
        self.assertEqual(self.clients("domain=initech.example"), [12])
        self.faults(client_domain="site")
        self.assertEqual(self.clients("domain=initech.example"), [])
        self.assertEqual(self.clients("domain=shared.example"), [12, 13])
        self.faults(client_domain="substring")
        self.assertEqual(self.clients("domain=acme"), [10])
        self.faults(client_domain="ignore")
        every = self.clients("domain=acme.example")
        self.assertEqual(len(every), 65)
        self.assertEqual(every[:5], [10, 11, 12, 13, 15])

    def test_sites(self):
        r = self.get("/api/Site?client_id=10", token=self.tok).json()
        self.assertEqual(r["record_count"], 2)
        self.assertEqual(r["sites"][0], {"id": 100, "name": "Acme HQ", "client_id": 10,
                                         "client_name": "Acme Corp",
                                         "emaildomain": "acme.example", "todomain": "",
                                         "inactive": False})
        allsites = self.get("/api/Site", token=self.tok).json()["sites"]
        claim = {s["client_id"] for s in allsites if s["emaildomain"] == "shared.example"}
        self.assertEqual(claim, {12, 13})
        self.assertEqual(self.get("/api/Site/130", token=self.tok).json()["client_id"], 13)
        self.assertEqual(self.get("/api/Site/9999", token=self.tok).status, 404)


# ============================================================== tickets

def ticket(**kw):
    t = {"summary": "Mail from Ann", "details": "hello", "tickettype_id": 1,
         "client_id": 10, "site_id": 100, "user_id": 1000}
    t.update(kw)
    return t


class TestTickets(Base):
    def setUp(self):
        super().setUp()
        self.tok = self.token()

    def create(self, status=200, **kw):
        r = self.post("/api/Tickets", [ticket(**kw)], token=self.tok)
        self.assertEqual(r.status, status, r)
        return r.json()

    def test_create(self):
        cf = {"name": "CFOutlookConversationId", "value": "aa" * 16}
        t = self.create(internet_message_id="<m1@acme.example>", customfields=[cf],
                        priority_id=3)
        self.assertGreaterEqual(t["id"], 1000)
        self.assertEqual(t["summary"], "Mail from Ann")
        self.assertEqual(t["client_name"], "Acme Corp")
        self.assertEqual(t["user_name"], "Ann Acme")
        self.assertEqual(t["status_id"], 1)
        self.assertEqual(t["customfields"], [{"id": 50, "name": "CFOutlookConversationId",
                                              "value": "aa" * 16}])
        self.assertNotIn("_warning", t)
        got = self.get("/api/Tickets/%d" % t["id"], token=self.tok).json()
        self.assertEqual(got["internet_message_id"], "<m1@acme.example>")
        st = self.state()
        self.assertEqual([x["id"] for x in st["tickets"]], [t["id"]])
        self.assertEqual(st["tickets"][0]["_sim"]["agent_id"], 1)
        # the creation is the ticket's first action
        acts = self.get("/api/Actions?ticket_id=%d" % t["id"], token=self.tok).json()
        self.assertEqual(acts["record_count"], 1)
        self.assertEqual(acts["actions"][0]["internet_message_id"], "<m1@acme.example>")

    def test_site_derives_client(self):
        t = self.create(client_id=None, site_id=120, user_id=1005)
        self.assertEqual(t["client_id"], 12)

    def test_object_body_is_model_binding_error(self):
        r = self.post("/api/Tickets", ticket(), token=self.tok)
        self.assertEqual(r.status, 400)
        body = r.json()
        self.assertEqual(body["status"], 400)
        self.assertIn("$", body["errors"])
        self.assertEqual(self.state()["tickets"], [])

    def test_validation(self):
        cases = [
            (dict(summary=""), 400),
            (dict(tickettype_id=77), 400),
            (dict(tickettype_id=3), 400),               # Problem needs category_1
            (dict(site_id=101), 400),                   # user 1000 is at site 100
            (dict(client_id=11), 400),                  # site 100 is Acme's
            (dict(user_id=424242), 400),
            (dict(status_id=77), 400),
            (dict(customfields=[{"name": "CFNope", "value": "x"}]), 400),
            (dict(customfields=[{"value": "x"}]), 400),
            (dict(tickettype_id="one"), 400),
        ]
        for kw, status in cases:
            r = self.post("/api/Tickets", [ticket(**kw)], token=self.tok)
            self.assertEqual(r.status, status, (kw, r))
        self.assertEqual(self.create(tickettype_id=3, category_1="Hardware")["tickettype_id"], 3)
        self.assertEqual(len(self.state()["tickets"]), 1)

    def test_user_without_site(self):
        r = self.post("/api/Tickets", [ticket(site_id=None)], token=self.tok)
        self.assertEqual(r.status, 400)
        body = r.json()
        self.assertEqual(body["ClassName"], "System.Exception")
        self.assertIn("Site", body["Message"])

    def test_all_or_nothing(self):
        r = self.post("/api/Tickets", [ticket(), ticket(summary="")], token=self.tok)
        self.assertEqual(r.status, 400)
        self.assertEqual(self.state()["tickets"], [])

    def test_inline_attachments(self):
        data = os.urandom(3000)
        t = self.create(attachments=[{"filename": "a.bin",
                                      "data_base64": data_uri(data, "image/png")}])
        self.assertEqual(t["attachments"][0]["filesize"], 3000)
        self.assertGreater(t["attachments"][0]["id"], 0)
        self.assertNotIn("_warning", t)
        st = self.state()["attachments"]
        self.assertEqual(len(st), 1)
        self.assertEqual(st[0]["size"], 3000)
        self.assertEqual(st[0]["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(st[0]["ticket_id"], t["id"])
        self.assertEqual(st[0]["content_type"], "image/png")      # from the data URI
        # bare base64 (as halo-milter sent it), bad base64, a URI without ;base64:
        # 200, the ticket is made, but the attachment gets id 0 and a _warning
        bare = base64.b64encode(b"abcd").decode()
        for bad in (bare, "abc", "ab$=", "data:text/plain;base64,YWJj\nZA==",
                    "data:text/plain;base64,YWJjZA", "data:text/plain,abcd",
                    "data:;base64,YWJjZA=="):
            r = self.post("/api/Tickets", [ticket(attachments=[{"filename": "x.txt",
                                                                "data_base64": bad}])],
                          token=self.tok)
            self.assertEqual(r.status, 200, bad)
            body = r.json()
            self.assertTrue(body["_warning"].startswith("Unable to save attachment"), body)
            self.assertEqual(body["attachments"][0]["id"], 0)
        st = self.state()
        self.assertEqual(len(st["tickets"]), 8)
        self.assertEqual(len(st["attachments"]), 1)                  # nothing more stored
        self.assertEqual(len(st["attachments_refused"]), 7)
        self.assertIn("not a data URI", st["attachments_refused"][0]["reason"])
        # a wrong type is still a model-binding 400
        r = self.post("/api/Tickets", [ticket(attachments=[{"filename": "x",
                                                            "data_base64": 5}])],
                      token=self.tok)
        self.assertEqual(r.status, 400)

    def test_create_status_and_warning(self):
        self.faults(create_status=201, warning=True)
        t = self.create(status=201)
        self.assertIn("_warning", t)
        self.faults(create_status=200, warning=False)
        self.assertNotIn("_warning", self.create(status=200))

    def test_update(self):
        r = self.post("/api/Tickets", [{"id": 501, "status_id": 9}], token=self.tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status_id"], 9)
        self.assertEqual(r.json()["summary"], "Printer on fire")
        self.assertEqual(self.get("/api/Tickets/501", token=self.tok).json()["status_id"], 9)
        self.assertEqual(self.post("/api/Tickets", [{"id": 77777, "status_id": 9}],
                                   token=self.tok).status, 404)
        self.assertEqual(self.post("/api/Tickets", [{"id": 501, "status_id": 55}],
                                   token=self.tok).status, 400)
        st = self.state()
        self.assertEqual(st["tickets"], [])
        self.assertEqual([t["status_id"] for t in st["seed_tickets"] if t["id"] == 501], [9])

    def test_get_missing(self):
        self.assertEqual(self.get("/api/Tickets/9999", token=self.tok).status, 404)

    def ids(self, qs):
        r = self.get("/api/Tickets?" + qs, token=self.tok)
        self.assertEqual(r.status, 200, r)
        return [t["id"] for t in r.json()["tickets"]], r.json()["record_count"]

    def test_list_filters(self):
        self.assertEqual(self.ids(""), ([501, 502, 503], 3))
        self.assertEqual(self.ids("client_id=11"), ([502], 1))
        self.assertEqual(self.ids("user_id=1000"), ([501], 1))
        self.assertEqual(self.ids("open_only=true"), ([501, 503], 2))
        self.assertEqual(self.ids("search=PRINTER"), ([501], 1))
        self.assertEqual(self.ids("search=ID:502"), ([502], 1))
        self.assertEqual(self.ids("ticketids=503,501"), ([501, 503], 2))
        self.assertEqual(self.ids("orderdesc=true"), ([503, 502, 501], 3))
        self.assertEqual(self.ids("order=dateoccurred"), ([502, 501, 503], 3))
        self.assertEqual(self.ids("count=2"), ([501, 502], 3))
        self.assertEqual(self.ids("pageinate=true&page_size=2&page_no=2"), ([503], 3))
        self.assertEqual(self.get("/api/Tickets?pageinate=true&page_size=101",
                                  token=self.tok).status, 400)
        self.assertEqual(self.get("/api/Tickets?ticketids=1,x", token=self.tok).status, 400)

    def test_advanced_search_custom_field(self):
        t = self.create(customfields=[{"id": 50, "value": "ab" * 16}])
        adv = json.dumps([{"filter_name": "CFOutlookConversationId", "filter_type": 2,
                           "filter_value": "ab" * 16}])
        self.assertEqual(self.ids("advanced_search=" + urllib.parse.quote(adv)),
                         ([t["id"]], 1))
        adv = json.dumps([{"filter_name": "CFOutlookConversationId", "filter_type": 2,
                           "filter_value": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}])
        self.assertEqual(self.ids("advanced_search=" + urllib.parse.quote(adv)), ([501], 1))
        adv = json.dumps([{"filter_name": "CFOutlookConversationId", "filter_type": 2,
                           "filter_value": "ab"}])          # exact, not substring
        self.assertEqual(self.ids("advanced_search=" + urllib.parse.quote(adv)), ([], 0))
        self.assertEqual(self.get("/api/Tickets?advanced_search=%7Bnope",
                                  token=self.tok).status, 400)
        # only searchable custom fields take part in search=
        self.create(customfields=[{"name": "CFMilterKey", "value": "key-xyz"}])
        self.assertEqual(self.ids("search=key-xyz")[1], 1)
        self.assertEqual(self.ids("search=abababab")[1], 0)


# ============================================================== actions

class TestActions(Base):
    def setUp(self):
        super().setUp()
        self.tok = self.token()

    def test_create_action_fields(self):
        item = {"ticket_id": 501, "outcome": "email received", "note": "hi",
                "note_html": "<p>hi</p>", "hiddenfromuser": True, "timetaken": 0.25,
                "new_status": 3, "sendemail": False, "emailfrom": "ann@acme.example",
                "emailto": "support@msp.example", "emailcc": "jo@acme.example",
                "emailsubject": "RE: Printer", "emaildirection": "I",
                "actionarrivaldate": "2024-05-02T10:00:00",
                "internet_message_id": "<r1@acme.example>", "email_message_id": "AAMk1"}
        r = self.post("/api/Actions", [item], token=self.tok)
        self.assertEqual(r.status, 200, r)
        a = r.json()
        self.assertEqual(a["outcome"], "Email Received")
        self.assertEqual(a["outcome_id"], 2)
        for k in ("note", "note_html", "hiddenfromuser", "timetaken", "emailcc",
                  "emailsubject", "actionarrivaldate", "internet_message_id",
                  "email_message_id", "new_status"):
            self.assertEqual(a[k], item[k], k)
        self.assertEqual(a["agent_id"], 1)
        self.assertEqual(self.get("/api/Tickets/501", token=self.tok).json()["status_id"], 3)
        acts = self.get("/api/Actions?ticket_id=501", token=self.tok).json()
        self.assertEqual([x["id"] for x in acts["actions"]], [9001, 9002, a["id"]])
        self.assertEqual(len(self.state()["actions"]), 1)

    def test_outcome_required(self):
        for item in ({"ticket_id": 501, "note": "x"},
                     {"ticket_id": 501, "outcome": "No Such Outcome"},
                     {"ticket_id": 501, "outcome_id": 99}):
            r = self.post("/api/Actions", [item], token=self.tok)
            self.assertEqual(r.status, 400)
            self.assertEqual(r.text, "An Outcome must be entered for this Action")
            self.assertIn("text/plain", r.headers["Content-Type"])
        self.faults(outcome_error="json")
        r = self.post("/api/Actions", [{"ticket_id": 501}], token=self.tok)
        self.assertEqual(r.json()["Message"], "An Outcome must be entered for this Action")
        ok = self.post("/api/Actions", [{"ticket_id": 501, "outcome_id": 4}], token=self.tok)
        self.assertEqual(ok.json()["outcome"], "Private Note")
        self.assertEqual(len(self.state()["actions"]), 1)

    def test_ticket_required(self):
        self.assertEqual(self.post("/api/Actions", [{"outcome": "Note"}],
                                   token=self.tok).status, 400)
        self.assertEqual(self.post("/api/Actions", [{"ticket_id": 4242, "outcome": "Note"}],
                                   token=self.tok).status, 404)
        self.assertEqual(self.post("/api/Actions", {"ticket_id": 501, "outcome": "Note"},
                                   token=self.tok).status, 400)
        self.assertEqual(self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note",
                                                     "new_status": 77}],
                                   token=self.tok).status, 400)
        self.assertEqual(self.state()["actions"], [])

    def test_list_without_params_is_empty(self):
        r = self.get("/api/Actions", token=self.tok).json()
        self.assertEqual(r, {"record_count": 0, "actions": []})

    def test_internetmessageid(self):
        find = lambda mid: [a["ticket_id"] for a in self.get(
            "/api/Actions?internetmessageid=" + urllib.parse.quote(mid),
            token=self.tok).json()["actions"]]
        self.assertEqual(find("<printer-2@acme.example>"), [501])
        self.assertEqual(find("printer-2@acme.example"), [501])
        self.assertEqual(find("printer-2@ACME.example"), [])            # exact compare
        self.assertEqual(find("printer-2@acme"), [])                     # no substring
        self.assertEqual(find("<halo-intake-502@globex.example>"), [502])  # ticket only
        self.post("/api/Actions", [{"ticket_id": 503, "outcome": "Note",
                                    "internet_message_id": "<x9@shared.example>"}],
                  token=self.tok)
        t = self.post("/api/Tickets", [ticket(internet_message_id="<new@acme.example>")],
                      token=self.tok).json()
        self.assertEqual(find("x9@shared.example"), [503])
        self.assertEqual(find("<new@acme.example>"), [t["id"]])

    def test_inline_attachment_on_action(self):
        r = self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note", "attachments": [
            {"filename": "n.txt", "data_base64": data_uri(b"hello", "text/plain")}]}],
            token=self.tok)
        self.assertEqual(r.status, 200)
        self.assertNotIn("_warning", r.json())
        att = self.state()["attachments"]
        self.assertEqual([(a["action_id"], a["size"]) for a in att], [(r.json()["id"], 5)])


class TestAttachments(Base):
    def setUp(self):
        super().setUp()
        self.tok = self.token()

    def test_post_attachment(self):
        one = self.post("/api/Attachment", [{"ticket_id": 501, "action_id": 9001,
                                             "filename": "p.png", "isimage": True,
                                             "data_base64": data_uri(b"x" * 10, "image/png")}],
                        token=self.tok)
        self.assertEqual(one.status, 200, one)
        self.assertEqual(one.json()["filename"], "p.png")
        self.assertEqual(one.json()["filesize"], 10)
        two = self.post("/api/Attachment", [
            {"ticket_id": 501, "filename": "a", "data_base64": "data:text/plain;base64,YQ=="},
            {"ticket_id": 503, "filename": "b", "data_base64": "data:text/plain;base64,YmI="}],
            token=self.tok)
        self.assertEqual([a["filename"] for a in two.json()], ["a", "b"])
        # bare base64: 200, id 0, a _warning, nothing stored
        bare = self.post("/api/Attachment", [{"ticket_id": 501, "filename": "c",
                                              "data_base64": "YQ=="}], token=self.tok)
        self.assertEqual(bare.status, 200)
        self.assertEqual(bare.json()["id"], 0)
        self.assertEqual(bare.json()["_warning"], "Unable to save attachment: c")
        st = self.state()["attachments"]
        self.assertEqual([(a["ticket_id"], a["size"]) for a in st], [(501, 10), (501, 1), (503, 2)])
        self.assertTrue(st[0]["isimage"])

    def test_attachment_validation(self):
        ok = "data:text/plain;base64,YQ=="
        bad = [
            [{"ticket_id": 501, "filename": "", "data_base64": ok}],
            [{"ticket_id": 501, "action_id": 9003, "filename": "a", "data_base64": ok}],
            [{"ticket_id": 501, "filename": "a", "data_base64": ["x"]}],
            {"ticket_id": 501, "filename": "a", "data_base64": ok},
        ]
        for body in bad:
            r = self.post("/api/Attachment", body, token=self.tok)
            self.assertEqual(r.status, 400, body)
        for b64 in ("data:text/plain;base64,not base64!", "data:text/plain;base64,YQ="):
            r = self.post("/api/Attachment", [{"ticket_id": 501, "filename": "a",
                                               "data_base64": b64}], token=self.tok)
            self.assertEqual((r.status, r.json()["id"]), (200, 0), b64)
            self.assertIn("_warning", r.json())
        self.assertEqual(self.post("/api/Attachment", [{"ticket_id": 4242, "filename": "a",
                                                        "data_base64": "YQ=="}],
                                   token=self.tok).status, 404)
        self.assertEqual(self.state()["attachments"], [])


class TestLookups(Base):
    def test_bare_and_wrapped(self):
        tok = self.token()
        types = self.get("/api/TicketType", token=tok).json()
        self.assertEqual([t["id"] for t in types], [1, 2, 3])
        types = self.get("/api/TicketType?showall=true", token=tok).json()
        self.assertEqual([t["id"] for t in types], [1, 2, 3, 4])
        st = self.get("/api/Status", token=tok).json()
        self.assertIsInstance(st, list)
        self.assertEqual(st[-1]["name"], "Closed")
        oc = self.get("/api/Outcome", token=tok).json()
        self.assertEqual([o["outcome"] for o in oc][:2], ["Note", "Email Received"])
        self.faults(wrap_lists=True)
        self.assertEqual(len(self.get("/api/TicketType?showall=true",
                                      token=tok).json()["tickettypes"]), 4)
        self.assertEqual(len(self.get("/api/Status", token=tok).json()["statuses"]), 5)
        self.assertEqual(len(self.get("/api/Outcome", token=tok).json()["outcomes"]), 4)


# ============================================ fidelity to Halo's OpenAPI v2 spec

class TestSpecFidelity(Base):
    def setUp(self):
        super().setUp()
        self.tok = self.token()

    def status_ids(self, qs=""):
        r = self.get("/api/Status" + qs, token=self.tok)
        self.assertEqual(r.status, 200, r)
        return [s["id"] for s in r.json()]

    def test_status_is_tstatus_without_closed_flag(self):
        sts = self.get("/api/Status", token=self.tok).json()
        self.assertEqual([s["id"] for s in sts], [1, 2, 3, 8, 9])
        for s in sts:
            self.assertNotIn("isclosed", s)
            self.assertNotIn("closed", s)
            self.assertEqual(set(s) - {"id", "name", "shortname", "sequence", "colour"},
                             set(), s)
        # closed statuses show only as the ones excludeclosed leaves out
        self.assertEqual(self.status_ids("?excludeclosed=true"), [1, 2, 3])
        self.assertEqual(self.status_ids("?excludeclosed=false"), [1, 2, 3, 8, 9])
        self.assertEqual(self.state()["closed_status_ids"], [8, 9])

    def test_excludeclosed_ignored_switch(self):
        self.assertEqual(self.faults(status_excludeclosed="ignore")["status_excludeclosed"],
                         "ignore")
        self.assertEqual(self.status_ids("?excludeclosed=true"), [1, 2, 3, 8, 9])
        self.faults(status_excludeclosed="honour")
        self.assertEqual(self.status_ids("?excludeclosed=true"), [1, 2, 3])
        self.assertEqual(self.post("/_sim/faults", {"status_excludeclosed": "x"}).status, 400)

    def test_closing_and_reopening_tickets(self):
        t = self.get("/api/Tickets/502", token=self.tok).json()
        self.assertEqual((t["status_id"], t["hasbeenclosed"]), (9, True))
        self.assertTrue(t["dateclosed"])
        t = self.get("/api/Tickets/501", token=self.tok).json()
        self.assertEqual((t["hasbeenclosed"], t["dateclosed"]), (False, None))
        # close through an action's new_status
        a = self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note",
                                        "new_status": 8}], token=self.tok).json()
        self.assertEqual((a["new_status"], a["old_status"]), (8, 2))
        t = self.get("/api/Tickets/501", token=self.tok).json()
        self.assertEqual((t["status_id"], t["hasbeenclosed"]), (8, True))
        self.assertTrue(t["dateclosed"])
        self.assertEqual(self.ids("closed_only=true"), [501, 502])
        self.assertEqual(self.ids("open_only=true"), [503])
        # reopen through a ticket update: hasbeenclosed stays (default "keep")
        self.post("/api/Tickets", [{"id": 501, "status_id": 2}], token=self.tok)
        t = self.get("/api/Tickets/501", token=self.tok).json()
        self.assertEqual((t["status_id"], t["hasbeenclosed"]), (2, True))
        self.assertEqual(self.ids("open_only=true"), [501, 503])
        self.assertEqual(self.ids("status_id=9"), [502])
        # "clear": a reopen resets hasbeenclosed and dateclosed
        self.faults(hasbeenclosed_on_reopen="clear")
        self.post("/api/Actions", [{"ticket_id": 502, "outcome": "Note", "new_status": 1}],
                  token=self.tok)
        t = self.get("/api/Tickets/502", token=self.tok).json()
        self.assertEqual((t["status_id"], t["hasbeenclosed"], t["dateclosed"]),
                         (1, False, None))
        # a ticket created closed
        c = self.post("/api/Tickets", [ticket(status_id=9)], token=self.tok).json()
        self.assertEqual(c["hasbeenclosed"], True)

    def ids(self, qs):
        r = self.get("/api/Tickets?" + qs, token=self.tok)
        self.assertEqual(r.status, 200, r)
        return [t["id"] for t in r.json()["tickets"]]

    def test_write_shapes(self):
        r = self.post("/api/Tickets", [ticket()], token=self.tok)
        self.assertEqual(r.status, 200)                   # the spec's only status
        self.assertIsInstance(r.json(), dict)
        two = self.post("/api/Tickets", [ticket(), ticket(summary="b")], token=self.tok)
        self.assertEqual([t["summary"] for t in two.json()], ["Mail from Ann", "b"])
        self.faults(write_shape="array")
        r = self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note"}],
                      token=self.tok).json()
        self.assertIsInstance(r, list)
        self.assertEqual(r[0]["ticket_id"], 501)
        self.faults(write_shape="wrapped")
        r = self.post("/api/Tickets", [ticket()], token=self.tok).json()
        self.assertEqual(list(r), ["tickets"])
        self.faults(write_shape="object")
        r = self.post("/api/Tickets", [ticket(summary="x"), ticket(summary="y")],
                      token=self.tok).json()
        self.assertEqual(r["summary"], "x")
        self.assertEqual(self.post("/_sim/faults", {"write_shape": "list"}).status, 400)

    def test_attachment_fail_switch(self):
        good = lambda n: {"filename": n, "data_base64": data_uri(b"data " + n.encode())}
        self.faults(attachment_fail="all")
        r = self.post("/api/Tickets", [ticket(attachments=[good("a"), good("b")])],
                      token=self.tok).json()
        self.assertEqual([a["id"] for a in r["attachments"]], [0, 0])
        self.assertEqual(r["_warning"], "Unable to save attachment: a; "
                                        "Unable to save attachment: b")
        self.assertEqual(self.state()["attachments"], [])
        # only the 2nd valid attachment from now on fails
        self.faults(attachment_fail=2)
        r = self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note",
                                        "attachments": [good("c"), good("d"), good("e")]}],
                      token=self.tok).json()
        ids = [a["id"] for a in r["attachments"]]
        self.assertEqual((ids[0] > 0, ids[1], ids[2] > 0), (True, 0, True))
        self.assertEqual(r["_warning"], "Unable to save attachment: d")
        st = self.state()
        self.assertEqual(sorted(a["filename"] for a in st["attachments"]), ["c", "e"])
        self.assertEqual([a["filename"] for a in st["attachments_refused"]], ["a", "b", "d"])
        self.faults(attachment_fail="off")
        r = self.post("/api/Attachment", [dict(good("f"), ticket_id=501)],
                      token=self.tok).json()
        self.assertGreater(r["id"], 0)
        for bad in (0, -1, "some", 1.5):
            self.assertEqual(self.post("/_sim/faults", {"attachment_fail": bad}).status, 400)

    def test_undeclared_fields_recorded(self):
        r = self.post("/api/Tickets", [ticket(emailfrom="ann@acme.example",
                                              internetmessageid="<u@x>",
                                              user_email="ann@acme.example",
                                              attachments=[{"filename": "a",
                                                            "data_base64": data_uri(b"a"),
                                                            "bogus": 1}])],
                      token=self.tok)
        self.assertEqual(r.status, 200)               # Halo ignores unknown fields
        t = r.json()
        self.assertNotIn("emailfrom", t)
        self.assertNotIn("internetmessageid", t)
        self.assertEqual(t["user_email"], "ann@acme.example")
        self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note",
                                    "internetmessageid": "<v@x>", "actionhide": True,
                                    "emailfrom": "ann@acme.example"}], token=self.tok)
        st = self.state()
        und = {(u["route"], u["field"]) for u in st["undeclared_fields"]}
        self.assertEqual(und, {("POST /api/Tickets", "emailfrom"),
                               ("POST /api/Tickets", "internetmessageid"),
                               ("POST /api/Tickets", "attachments[].bogus"),
                               ("POST /api/Actions", "internetmessageid"),
                               ("POST /api/Actions", "actionhide")})
        self.assertEqual(st["tickets"][0]["_sim"]["undeclared_fields"],
                         ["attachments[].bogus", "emailfrom", "internetmessageid"])
        # declared fields keep their spec types
        r = self.post("/api/Tickets", [ticket(dateoccurred="yesterday")], token=self.tok)
        self.assertEqual(r.status, 400)
        r = self.post("/api/Tickets", [ticket(dont_do_rules="maybe")], token=self.tok)
        self.assertEqual(r.status, 400)
        # undeclared query parameters are recorded too
        self.get("/api/Actions?internetmessageid=%3Cv%40x%3E", token=self.tok)
        self.get("/api/Tickets?field_CFOutlookConversationId=1&open_only=true",
                 token=self.tok)
        q = {(u["route"], u["param"]) for u in self.state()["undeclared_params"]}
        self.assertEqual(q, {("GET /api/Actions", "internetmessageid"),
                             ("GET /api/Tickets", "field_cfoutlookconversationid")})

    def test_identity_fields_stored(self):
        t = self.post("/api/Tickets", [ticket(
            user_email="ann@acme.example", reportedby="Ann Acme <ann@acme.example>",
            emailtolist="support@msp.example", emailcclist="jo@acme.example",
            dateoccurred="2026-11-30T08:15:00Z", dont_do_rules=True)],
            token=self.tok).json()
        got = self.get("/api/Tickets/%d" % t["id"], token=self.tok).json()
        for k, v in (("user_email", "ann@acme.example"), ("user_id", 1000),
                     ("reportedby", "Ann Acme <ann@acme.example>"),
                     ("emailtolist", "support@msp.example"),
                     ("emailcclist", "jo@acme.example"),
                     ("dateoccurred", "2026-11-30T08:15:00Z"), ("dont_do_rules", True)):
            self.assertEqual(got[k], v, k)
        self.assertEqual([x["id"] for x in self.get(
            "/api/Tickets?search_reportedby=ann%40acme", token=self.tok).json()["tickets"]],
            [t["id"]])
        a = self.post("/api/Actions", [{
            "ticket_id": t["id"], "outcome_id": 2, "emailfrom": "ann@acme.example",
            "emailto": "support@msp.example", "emailcc": "jo@acme.example",
            "emailsubject": "Printer", "actionarrivaldate": "2026-11-30T08:16:00Z"}],
            token=self.tok).json()
        got = self.get("/api/Actions/%d" % a["id"], token=self.tok).json()
        for k in ("emailfrom", "emailto", "emailcc", "emailsubject", "actionarrivaldate"):
            self.assertTrue(got[k], k)
        self.assertEqual((got["outcome"], got["outcome_id"]), ("Email Received", 2))
        # without dateoccurred the ticket gets the logging time
        t2 = self.post("/api/Tickets", [ticket()], token=self.tok).json()
        self.assertTrue(t2["dateoccurred"].startswith(time.strftime("%Y-", time.gmtime())))

    def test_rules_run_unless_dont_do_rules(self):
        ran = self.post("/api/Tickets", [ticket(summary="URGENT printer")],
                        token=self.tok).json()
        self.assertEqual(ran["team"], "Service Desk")
        self.assertEqual(ran["priority_id"], 1)
        self.assertEqual(ran["matched_rule_ids"], "71,72")
        off = self.post("/api/Tickets", [ticket(summary="URGENT printer", priority_id=3,
                                                dont_do_rules=True)], token=self.tok).json()
        self.assertNotIn("team", off)
        self.assertEqual(off["priority_id"], 3)
        st = {t["id"]: t["_sim"] for t in self.state()["tickets"]}
        self.assertEqual((st[ran["id"]]["rules_ran"], st[ran["id"]]["dont_do_rules"]),
                         (True, False))
        self.assertEqual(st[ran["id"]]["rules_matched"], ["Default team", "Urgent in summary"])
        self.assertEqual((st[off["id"]]["rules_ran"], st[off["id"]]["dont_do_rules"]),
                         (False, True))

    def test_internetmessageid_filter_switch(self):
        find = lambda route, mid: self.get("/api/%s?internetmessageid=%s" % (
            route, urllib.parse.quote(mid)), token=self.tok).json()
        self.assertEqual([a["id"] for a in find("Actions", "<printer-2@acme.example>")
                          ["actions"]], [9002])
        self.assertEqual([t["id"] for t in find("Tickets", "printer-2@acme.example")
                          ["tickets"]], [501])
        self.assertEqual([t["id"] for t in find("Tickets", "<halo-intake-502@globex.example>")
                          ["tickets"]], [502])
        self.assertEqual(find("Tickets", "<nothing@x>")["tickets"], [])
        self.faults(internetmessageid_filter="ignore")
        acts = find("Actions", "<printer-2@acme.example>")["actions"]
        self.assertEqual([a["id"] for a in acts], [9001, 9002, 9003])     # unrelated rows
        self.assertEqual([t["id"] for t in find("Tickets", "<nothing@x>")["tickets"]],
                         [501, 502, 503])

    def test_client_domain_ignored_is_paginated(self):
        self.faults(client_domain="ignore")
        r = self.get("/api/Client?domain=acme.example&pageinate=true&page_size=50&page_no=1",
                     token=self.tok).json()
        self.assertEqual((r["record_count"], len(r["clients"])), (65, 50))
        r2 = self.get("/api/Client?domain=acme.example&pageinate=true&page_size=50&page_no=2",
                      token=self.tok).json()
        self.assertEqual(len(r2["clients"]), 15)
        # what a client can verify with: Area.domain and the sites' emaildomain
        self.assertEqual(self.get("/api/Client/10", token=self.tok).json()["domain"],
                         "acme.example")
        sites = self.get("/api/Site?client_id=10", token=self.tok).json()["sites"]
        self.assertEqual([s["emaildomain"] for s in sites],
                         ["acme.example", "acme-branch.example"])
        self.faults(client_domain="both")
        r = self.get("/api/Client?domain=acme.example", token=self.tok).json()
        self.assertEqual([c["id"] for c in r["clients"]], [10])

    def test_create_user(self):
        r = self.post("/api/Users", [{"name": "Nina New", "emailaddress": "nina@acme.example",
                                      "site_id": 100.0, "client_id": 10, "phone": "1"}],
                      token=self.tok)
        self.assertEqual(r.status, 200, r)
        u = r.json()
        self.assertEqual((u["site_id"], u["client_id"], u["site_name"]), (100, 10, "Acme HQ"))
        found = self.get("/api/Users?search=nina@acme.example", token=self.tok).json()
        self.assertEqual([x["id"] for x in found["users"]], [u["id"]])
        # derived client; name from the address when none is given
        u2 = self.post("/api/Users", [{"emailaddress": "zed@acme-branch.example",
                                       "site_id": 101}], token=self.tok).json()
        self.assertEqual((u2["client_id"], u2["name"]), (10, "zed@acme-branch.example"))
        # a ticket can name the new user
        t = self.post("/api/Tickets", [ticket(user_id=u["id"])], token=self.tok)
        self.assertEqual(t.status, 200)
        for bad in ([{"name": "x", "emailaddress": "x@y"}],                 # no site
                    [{"name": "x", "site_id": 999}],
                    [{"name": "x", "site_id": 100, "client_id": 11}],
                    {"name": "x", "site_id": 100}):
            self.assertEqual(self.post("/api/Users", bad, token=self.tok).status, 400, bad)
        st = self.state()
        self.assertEqual([x["emailaddress"] for x in st["users"]],
                         ["nina@acme.example", "zed@acme-branch.example"])
        self.assertEqual(st["users"][0]["_sim"]["undeclared_fields"], ["phone"])
        ro = self.token(scope="read:customers")
        self.assertEqual(self.post("/api/Users", [{"name": "x", "site_id": 100}],
                                   token=ro).status, 403)

    def test_conversation_custom_field(self):
        conv = "AAQkADAwATM0MDAAMS1hZDE5LTA3NzctMDACLTAwCgAQAKz7Lrx8qUpHhHWnpF1V1Kw="
        t = self.post("/api/Tickets", [ticket(customfields=[
            {"name": "CFOutlookConversationId", "value": conv}])], token=self.tok).json()
        got = self.get("/api/Tickets/%d" % t["id"], token=self.tok).json()
        self.assertEqual(got["customfields"][0]["value"], conv)    # stored as sent
        q = "/api/Tickets?field_CFOutlookConversationId=" + urllib.parse.quote(conv)
        self.assertEqual([x["id"] for x in self.get(q, token=self.tok).json()["tickets"]],
                         [t["id"]])
        # an unknown custom field filter is ignored (everything comes back)
        r = self.get("/api/Tickets?field_CFNope=1", token=self.tok).json()
        self.assertEqual(r["record_count"], 4)
        self.faults(cf_filter="ignore")
        self.assertEqual(self.get(q, token=self.tok).json()["record_count"], 4)


# ============================================================ faults, limits

class TestFaults(Base):
    def test_rate_limit(self):
        self.faults(rate_limit={"limit": 5, "window": 60})
        tok = self.token()
        for _ in range(5):
            self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)
        self.post("/_sim/clock", {"advance": 30})
        for _ in range(3):
            r = self.get("/api/Agent/me", token=tok)
            self.assertEqual(r.status, 429)
            self.assertEqual(r.text, RATE_TEXT % (5, "1 minute"))
            self.assertIn(int(r.headers["Retry-After"]), (30, 31))
        st = self.state()["requests"]
        self.assertEqual(st["rate_limited"], 3)
        self.assertEqual(st["by_status"]["429"], 3)
        # the 429s (made at t+30) did not count: at t+61 all five slots are free again
        self.post("/_sim/clock", {"advance": 31})
        for _ in range(5):
            self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)
        self.faults(retry_after=False)
        r = self.get("/api/Agent/me", token=tok)
        self.assertEqual(r.status, 429)
        self.assertIsNone(r.headers.get("Retry-After"))

    def test_rate_limit_default_message(self):
        f = self.get("/_sim/faults").json()
        self.assertEqual(f["rate_limit"], {"limit": 300, "window": 300})
        self.faults(rate_limit={"limit": 1})
        tok = self.token()
        self.get("/api/Agent/me", token=tok)
        r = self.get("/api/Agent/me", token=tok)
        self.assertEqual(r.text, RATE_TEXT % (1, "5 minute"))

    def test_status_burst(self):
        tok = self.token()
        self.faults(status_burst={"status": 503, "count": 2})
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 503)
        self.assertEqual(self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note"}],
                                   token=tok).status, 503)
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)
        self.assertEqual(self.state()["actions"], [])

    def test_latency(self):
        tok = self.token()
        self.faults(latency_ms=300)
        t0 = time.monotonic()
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.faults(latency_ms=0)
        t0 = time.monotonic()
        self.get("/api/Agent/me", token=tok)
        self.assertLess(time.monotonic() - t0, 0.25)

    def test_drop_after_request(self):
        tok = self.token()
        self.faults(drop_after_request=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                urllib.error.URLError)):
            self.post("/api/Tickets", [ticket(internet_message_id="<drop@acme.example>")],
                      token=tok)
        st = self.state()
        self.assertEqual(len(st["tickets"]), 1)           # applied
        self.assertEqual(st["requests"]["dropped"], 1)
        found = self.get("/api/Actions?internetmessageid=drop@acme.example", token=tok).json()
        self.assertEqual(found["actions"][0]["ticket_id"], st["tickets"][0]["id"])
        self.assertEqual(self.post("/api/Tickets", [ticket()], token=tok).status, 200)
        self.assertEqual(self.get("/_sim/faults").json()["drop_after_request"], 0)

    def test_drop_before_apply(self):
        tok = self.token()
        self.faults(drop_before_apply=1)
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)  # GETs unaffected
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                urllib.error.URLError)):
            self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note"}], token=tok)
        self.assertEqual(self.state()["actions"], [])
        self.assertEqual(self.post("/api/Actions", [{"ticket_id": 501, "outcome": "Note"}],
                                   token=tok).status, 200)

    def test_fault_validation_and_get(self):
        self.assertEqual(self.post("/_sim/faults", {"no_such_fault": 1}).status, 400)
        self.assertEqual(self.post("/_sim/faults", {"rotation": "sideways"}).status, 400)
        self.assertEqual(self.post("/_sim/faults", {"create_status": 204}).status, 400)
        self.assertEqual(self.post("/_sim/faults", [1]).status, 400)
        f = self.faults(latency_ms=5, rotation="omit", warning=True)
        self.assertEqual((f["latency_ms"], f["rotation"], f["warning"]), (5, "omit", True))
        g = self.get("/_sim/faults").json()
        self.assertEqual(g["rotation"], "omit")
        self.post("/_sim/reset", {})
        self.assertEqual(self.get("/_sim/faults").json()["rotation"], "rotate")

    def test_oversize_body_413(self):
        tok = self.token()
        big = b"[" + b" " * (10 * 1024 * 1024 + 10) + b"]"
        r = http_req("POST", self.sim.api + "/api/Tickets", body=big, token=tok,
                     headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 413)
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)

    def test_oversize_with_expect_continue(self):
        s = socket.create_connection(("127.0.0.1", self.sim.info["port"]), timeout=10)
        s.sendall(b"POST /api/Tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 20000000\r\nExpect: 100-continue\r\n\r\n")
        data = s.recv(4096)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data)

    def test_crash_gives_500_json(self):
        tok = self.token()
        self.faults(crash_next=1)
        r = self.get("/api/Agent/me", token=tok)
        self.assertEqual(r.status, 500)
        self.assertIn("Message", r.json())
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)


# ====================================================== inspection, robustness

class TestInspection(Base):
    def test_state_counts_and_request_log(self):
        tok = self.token()
        self.get("/api/Users?search=ann", token=tok)
        self.get("/api/users?search=jo", token=tok)
        self.get("/api/Tickets/9999", token=tok)
        self.post("/api/Tickets", [ticket()], token=tok)
        st = self.state()
        req = st["requests"]
        self.assertEqual(req["total"], 4)
        self.assertEqual(req["by_route"], {"GET /api/Users": 2, "GET /api/Tickets/{id}": 1,
                                           "POST /api/Tickets": 1})
        self.assertEqual(req["by_status"], {"200": 3, "404": 1})
        self.assertEqual(st["tokens"]["issued"], 1)
        log = self.get("/_sim/requests").json()["requests"]
        self.assertEqual([(x["method"], x["path"], x["status"]) for x in log],
                         [("GET", "/api/Users", 200), ("GET", "/api/users", 200),
                          ("GET", "/api/Tickets/9999", 404), ("POST", "/api/Tickets", 200)])
        self.assertEqual(log[0]["query"], {"search": "ann"})
        self.assertNotIn(tok, json.dumps(log))
        self.assertEqual(len(self.get("/_sim/requests?since=%d" % log[1]["seq"]).json()
                             ["requests"]), 2)

    def test_reset_restores_seed(self):
        tok = self.token()
        self.post("/api/Tickets", [{"id": 501, "status_id": 9}], token=tok)
        self.post("/api/Tickets", [ticket()], token=tok)
        self.post("/_sim/reset", {})
        st = self.state()
        self.assertEqual(st["tickets"], [])
        self.assertEqual(st["requests"]["total"], 0)
        self.assertEqual([t["status_id"] for t in st["seed_tickets"] if t["id"] == 501], [2])
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 401)   # tokens gone

    def test_reset_with_inline_fixture_and_keep_tokens(self):
        tok = self.token()
        with open(FIXTURE) as fh:
            fx = json.load(fh)
        fx["outcomes"].append({"id": 5, "outcome": "Logged by milter"})
        r = self.post("/_sim/reset", {"fixture": fx, "keep_tokens": True})
        self.assertEqual(r.status, 200)
        self.assertEqual(len(self.get("/api/Outcome", token=tok).json()), 5)
        with open(FIXTURE) as fh:
            self.post("/_sim/reset", {"fixture": json.load(fh)})
        self.assertEqual(self.post("/_sim/reset", {"fixture": {"sites": [{"id": 1,
                                                                          "client_id": 9}]}}
                                   ).status, 400)

    def test_logs_never_hold_secrets(self):
        body = self.full_login()
        r = self.tokpost("/token", {"grant_type": "refresh_token",
                                    "refresh_token": body["refresh_token"],
                                    "client_id": NATIVE})
        new = r.json()
        self.tokpost("/token", {"grant_type": "client_credentials", "client_id": CONF,
                                "client_secret": CONF_SECRET})
        self.get("/api/Agent/me", token=new["access_token"])
        time.sleep(0.1)
        err = self.sim.stderr()
        self.assertIn("/api/Agent/me", err)
        for secret in (body["access_token"], body["refresh_token"], new["access_token"],
                       new["refresh_token"], CONF_SECRET, ALICE[1],
                       body["access_token"].split(".")[2]):
            self.assertNotIn(secret, err)


class TestRobustness(Base):
    def test_keep_alive_and_content_length(self):
        tok = self.token()
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.info["port"], timeout=10)
        reqs = [("GET", "/api/Agent/me", None, {"Authorization": "Bearer " + tok}),
                ("GET", "/api/Nope", None, {}),
                ("GET", "/api/Tickets", None, {}),
                ("POST", "/api/Tickets", b"{bad json", {"Authorization": "Bearer " + tok,
                                                        "Content-Type": "application/json"}),
                ("POST", "/api/Tickets", json.dumps([ticket()]).encode(),
                 {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}),
                ("POST", "/api/Tickets", b"[]", {"Authorization": "Bearer " + tok,
                                                 "Content-Type": "text/plain"}),
                ("GET", "/_sim/faults", None, {})]
        statuses = []
        sock = None
        for method, path, body, hdrs in reqs:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            self.assertIsNotNone(resp.getheader("Content-Length"), path)
            self.assertEqual(int(resp.getheader("Content-Length")), len(data))
            if sock is None:
                sock = conn.sock
            self.assertIs(conn.sock, sock, "connection was not kept alive")
            statuses.append(resp.status)
        conn.close()
        self.assertEqual(statuses, [200, 404, 401, 400, 200, 415, 200])

    def test_malformed_input_never_crashes(self):
        log_start = len(self.sim.stderr())
        tok = self.token()
        h = {"Content-Type": "application/json"}
        bodies = [b"", b"\xff\xfe\x00", b"[" * 100000 + b"]" * 100000, b"[NaN]",
                  b'[{"summary": {"a": 1}, "tickettype_id": 1}]', b"[1, 2]", b"null",
                  b'[{"ticket_id": 1e999}]', b'[{"id": "x"}]', b'[{"customfields": "x",'
                  b' "summary": "s", "tickettype_id": 1}]']
        for b in bodies:
            for path in ("/api/Tickets", "/api/Actions", "/api/Attachment"):
                r = http_req("POST", self.sim.api + path, body=b, headers=h, token=tok)
                self.assertIn(r.status, (400, 404), (path, b[:40], r))
        for qs in ("page_no=x", "count=-1", "page_size=0", "includeinactive=maybe",
                   "client_id=%00"):
            self.assertEqual(self.get("/api/Users?" + qs, token=tok).status, 400, qs)
        # raw garbage on the socket
        for junk, code in (
                (b"GARBAGE\r\n\r\n", b"400"), (b"GET / HTTP/9.9\r\n\r\n", b"505"),
                (b"POST /api/Tickets HTTP/1.1\r\nContent-Length: zz\r\n\r\n", b"400"),
                (b"POST /api/Tickets HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"400"),
                (b"POST /api/Tickets HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                 b"400")):
            s = socket.create_connection(("127.0.0.1", self.sim.info["port"]), timeout=10)
            s.sendall(junk)
            data = s.recv(4096)
            s.close()
            self.assertIn(code, data[:400], (junk, data))
            self.assertNotIn(b"500", data[:400])
        self.assertEqual(self.get("/api/Agent/me", token=tok).status, 200)
        self.assertNotIn("Traceback", self.sim.stderr()[log_start:])

    def test_chunked_body(self):
        tok = self.token()
        body = json.dumps([ticket(summary="chunked")]).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.info["port"], timeout=10)
        conn.request("POST", "/api/Tickets", body=iter([body[:10], body[10:]]),
                     headers={"Authorization": "Bearer " + tok,
                              "Content-Type": "application/json"},
                     encode_chunked=True)
        resp = conn.getresponse()
        data = resp.read()
        self.assertEqual(resp.status, 200, data)
        self.assertEqual(json.loads(data)["summary"], "chunked")
        conn.close()

    def test_concurrent_clients(self):
        tok = self.token()
        results, errors = [], []
        lock = threading.Lock()

        def worker(n):
            try:
                for i in range(5):
                    r = self.post("/api/Tickets", [ticket(summary="c%d-%d" % (n, i))], token=tok)
                    with lock:
                        results.append((r.status, r.json()["id"]))
            except Exception as exc:   # pragma: no cover - reported below
                with lock:
                    errors.append(exc)
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 60)
        self.assertTrue(all(s == 200 for s, _ in results))
        self.assertEqual(len({i for _, i in results}), 60)
        self.assertEqual(len(self.state()["tickets"]), 60)


# ======================================================== CLI options

class TestCliOptions(unittest.TestCase):
    def test_options(self):
        sim = SimProcess("--rotation", "omit", "--wrap-lists", "on", "--rate-limit", "4",
                         "--rate-window", "90", "--retry-after", "off",
                         "--token-lifetime", "77", "--quiet")
        try:
            f = http_req("GET", sim.api + "/_sim/faults").json()
            self.assertEqual((f["rotation"], f["wrap_lists"], f["rate_limit"], f["retry_after"],
                              f["token_lifetime"]),
                             ("omit", True, {"limit": 4, "window": 90}, False, 77))
            tok = http_req("POST", sim.api + "/_sim/token",
                           json_body={"agent_email": "alice@msp.example"}).json()
            self.assertEqual(tok["expires_in"], 77)
            r = http_req("POST", sim.auth + "/token",
                         form={"grant_type": "refresh_token",
                               "refresh_token": tok["refresh_token"], "client_id": NATIVE})
            self.assertEqual(r.status, 200)
            self.assertNotIn("refresh_token", r.json())
            st = http_req("GET", sim.api + "/api/Status", token=tok["access_token"]).json()
            self.assertIn("statuses", st)
            for _ in range(3):
                http_req("GET", sim.api + "/api/Status", token=tok["access_token"])
            r = http_req("GET", sim.api + "/api/Status", token=tok["access_token"])
            self.assertEqual(r.status, 429)
            self.assertEqual(r.text, RATE_TEXT % (4, "90 second"))
            self.assertIsNone(r.headers.get("Retry-After"))
            self.assertNotIn("/api/Status", sim.stderr())     # --quiet
        finally:
            sim.stop()

    def test_trace_undeclared_survives_reset(self):
        trace = os.path.join(tempfile.mkdtemp(prefix="halosim-trace-"), "und.tsv")
        os.environ["HALOSIM_TRACE_UNDECLARED"] = trace
        try:
            sim = SimProcess("--quiet")
        finally:
            del os.environ["HALOSIM_TRACE_UNDECLARED"]
        try:
            tok = http_req("POST", sim.api + "/_sim/token",
                           json_body={"agent_email": "alice@msp.example"}).json()
            for _ in range(2):
                r = http_req("POST", sim.api + "/api/Actions", json_body=[
                    {"ticket_id": 501, "outcome": "Note", "emailfromaddress": "a@b"}],
                    token=tok["access_token"])
                self.assertEqual(r.status, 200)
            http_req("POST", sim.api + "/_sim/reset", json_body={"keep_tokens": True})
            http_req("GET", sim.api + "/api/Actions?internetmessageid=x",
                     token=tok["access_token"])
            with open(trace) as fh:
                self.assertEqual(fh.read().splitlines(), [
                    "field\tPOST /api/Actions\temailfromaddress",
                    "param\tGET /api/Actions\tinternetmessageid"])
        finally:
            sim.stop()
            shutil.rmtree(os.path.dirname(trace), ignore_errors=True)

    def test_fixed_ports_and_sigterm(self):
        socks = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        sim = SimProcess("--port", str(ports[0]), "--auth-port", str(ports[1]))
        try:
            self.assertEqual((sim.info["port"], sim.info["auth_port"]), tuple(ports))
            sim.proc.terminate()
            self.assertEqual(sim.proc.wait(10), 0)
        finally:
            sim.stop()


if __name__ == "__main__":
    unittest.main()
