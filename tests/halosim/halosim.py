#!/usr/bin/env python3
"""halosim: a strict, test-only stand-in for the HaloPSA API.

Two HTTP servers share one in-memory state guarded by one lock:
  * the authorisation server (--auth-port): /authorize, /token (also under /auth)
  * the resource server (--port): /api/... plus test-only /_sim/... control routes

Written from /work/shared/halo-api.md and Halo's published OpenAPI v2 document (the
declared request fields and query parameters are in spec_fields.json); it shares
nothing with the C client.  Where the spec and a public client's SaaS notes differ,
a /_sim/faults switch selects the behaviour; the default follows the spec.
Python 3.11 standard library only.  See README.md next to this file.
"""

import argparse
import base64
import binascii
import copy
import hashlib
import html
import json
import math
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 10 * 1024 * 1024          # request bodies above this get 413
DRAIN_LIMIT = 64 * 1024 * 1024       # oversize bodies up to this are read and discarded
CODE_LIFETIME = 60                   # authorization codes, seconds
REQUEST_LOG_MAX = 100000             # /_sim/requests keeps the newest entries
JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"

VALID_SCOPES = {"all", "all:standard", "read:tickets", "edit:tickets",
                "read:customers", "edit:customers", "offline_access", "openid"}
# which granted scopes satisfy a required scope
SCOPE_COVER = {
    "read:tickets": {"all", "all:standard", "read:tickets", "edit:tickets"},
    "edit:tickets": {"all", "all:standard", "edit:tickets"},
    "read:customers": {"all", "all:standard", "read:customers", "edit:customers"},
    "edit:customers": {"all", "all:standard", "edit:customers"},
}
FILLER_CLIENT_BASE = 2000
REDACT_PARAMS = {"code", "code_verifier", "refresh_token", "access_token",
                 "client_secret", "password", "token"}

RATE_MSG = "Rate Limit Reached - {limit} Requests per rolling {window} window"

_log_lock = threading.Lock()
QUIET = False


def log(msg, force=False):
    if QUIET and not force:
        return
    with _log_lock:
        sys.stderr.write("halosim %s %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()


def redact(tok):
    """Never log a secret in full."""
    if not tok:
        return "-"
    tok = str(tok)
    return tok[:6] + "..." if len(tok) > 10 else "***"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def strict_b64decode(s):
    """Standard alphabet, correct padding, no whitespace: anything else is invalid."""
    if not isinstance(s, str):
        raise ValueError("data_base64 must be a string")
    if len(s) % 4 != 0:
        raise ValueError("invalid length for a Base-64 string")
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("The input is not a valid Base-64 string: %s" % exc)


# ---------------------------------------------------------------- responses

class Resp:
    def __init__(self, status, body=b"", ctype=JSON_CT, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.ctype = ctype
        self.headers = list(headers or [])
        self.drop = False        # close the connection without answering
        self.close = False       # answer, then close
        self.route = None
        self.agent_id = None


def jresp(status, obj, headers=None):
    return Resp(status, json.dumps(obj), JSON_CT, headers)


def tresp(status, text, headers=None):
    return Resp(status, text, TEXT_CT, headers)


class ApiError(Exception):
    def __init__(self, resp):
        super().__init__(resp.status)
        self.resp = resp


def fail_exc(msg, status=400):
    raise ApiError(jresp(status, {"ClassName": "System.Exception", "Message": msg}))


def fail_msg(msg, status=400):
    raise ApiError(jresp(status, {"Message": msg}))


def model_error(key, msg):
    return jresp(400, {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "traceId": "00-%s-%s-00" % (secrets.token_hex(16), secrets.token_hex(8)),
        "errors": {key: [msg]},
    })


def fail_model(key, msg):
    raise ApiError(model_error(key, msg))


def oauth_error(error, desc, status=400):
    return jresp(status, {"error": error, "error_description": desc},
                 [("Cache-Control", "no-store"), ("Pragma", "no-cache")])


# ------------------------------------------------------------ value checks

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def body_int(item, key, path, required=False):
    """Integer field of a JSON item: int, or a string of digits (Newtonsoft converts)."""
    if key not in item or item[key] is None:
        if required:
            return None
        return None
    v = item[key]
    if is_int(v):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d{1,18}", v.strip()):
        return int(v.strip())
    fail_model("%s.%s" % (path, key),
               "The JSON value could not be converted to System.Int32.")


def body_str(item, key, path):
    v = item.get(key)
    if v is None or isinstance(v, str):
        return v
    fail_model("%s.%s" % (path, key),
               "The JSON value could not be converted to System.String.")


def body_bool(item, key, path):
    v = item.get(key)
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    fail_model("%s.%s" % (path, key),
               "The JSON value could not be converted to System.Boolean.")


def body_num(item, key, path):
    v = item.get(key)
    if v is None:
        return None
    if (is_int(v) or isinstance(v, float)) and math.isfinite(v):
        return v
    fail_model("%s.%s" % (path, key),
               "The JSON value could not be converted to System.Double.")


def body_date(item, key, path):
    v = item.get(key)
    if v is None or (isinstance(v, str) and ISO_DATE.fullmatch(v.strip())):
        return v
    fail_model("%s.%s" % (path, key),
               "The JSON value could not be converted to System.DateTime.")


def typed_field(item, key, typ, path):
    """A declared field converted as its spec type says (model-binding 400 if not)."""
    if typ == "int":
        return body_int(item, key, path)
    if typ == "num":
        return body_num(item, key, path)
    if typ == "bool":
        return body_bool(item, key, path)
    if typ == "str":
        return body_str(item, key, path)
    if typ == "date":
        return body_date(item, key, path)
    return item.get(key)        # arrays and objects are stored as sent


def q_int(query, key, default=None, minimum=None):
    v = query.get(key)
    if v is None or v == "":
        return default
    if not re.fullmatch(r"-?\d{1,18}", v.strip()):
        fail_model(key, "The value '%s' is not valid." % v[:100])
    n = int(v)
    if minimum is not None and n < minimum:
        fail_msg("%s must be at least %d" % (key, minimum))
    return n


def q_bool(query, key, default=False):
    v = query.get(key)
    if v is None or v == "":
        return default
    lv = v.strip().lower()
    if lv in ("true", "1"):
        return True
    if lv in ("false", "0"):
        return False
    fail_model(key, "The value '%s' is not valid." % v[:100])


def sort_key(v):
    if v is None:
        return (2, 0, "")
    if isinstance(v, bool):
        return (0, int(v), "")
    if isinstance(v, (int, float)):
        return (0, v, "")
    return (1, 0, str(v).lower())


def strip_angle(mid):
    mid = (mid or "").strip()
    if len(mid) >= 2 and mid[0] == "<" and mid[-1] == ">":
        mid = mid[1:-1].strip()
    return mid


# ------------------------------------------------------------ the spec

def load_spec():
    """Field names/types of Halo's request schemas and the GET query parameters, taken
    from Halo's published OpenAPI v2 document (see spec_fields.json, README.md)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "spec_fields.json"), "r", encoding="utf-8") as fh:
        spec = json.load(fh)
    spec["query"] = {k: set(v) for k, v in spec["query"].items()}
    return spec


SPEC = load_spec()

# HALOSIM_TRACE_UNDECLARED=FILE: append one line per undeclared field or parameter
# the first time it is seen after a reset (a reset does not clear the file), so a
# whole e2e run can be inspected afterwards
TRACE_FILE = os.environ.get("HALOSIM_TRACE_UNDECLARED")


def trace_undeclared(kind, route, name):
    if TRACE_FILE:
        with _log_lock, open(TRACE_FILE, "a", encoding="utf-8") as fh:
            fh.write("%s\t%s\t%s\n" % (kind, route, name))

# the message real Halo puts in "_warning" when it cannot store an attachment
ATT_WARNING = "Unable to save attachment"
DATA_URI = re.compile(r"data:([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)"
                      r"((?:;[^;,]*)*);base64,(.*)", re.S)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?)?"
                      r"(Z|[+-]\d{2}:?\d{2})?")

# -------------------------------------------------------------- the state

# ticket fields the simulator computes itself (a value sent for them is not stored)
TICKET_COMPUTED = {"id", "hasbeenclosed", "dateclosed", "customfields", "attachments",
                   "_warning", "status_name", "client_name", "site_name", "user_name",
                   "matched_rule_id", "matched_rule_name", "matched_rule_ids"}
ACTION_COMPUTED = {"id", "attachments", "_warning", "outcome", "outcome_id", "who",
                   "actionnumber", "datetime", "old_status"}

FAULT_KEYS = ("status_burst", "latency_ms", "drop_after_request", "drop_before_apply",
              "unauthorized_next", "auth_down", "rate_limit", "retry_after", "rotation",
              "wrap_lists", "create_status", "warning", "token_lifetime", "outcome_error",
              "client_domain", "tenant_required", "crash_next", "status_excludeclosed",
              "write_shape", "attachment_fail", "internetmessageid_filter", "cf_filter",
              "hasbeenclosed_on_reopen")
FAULT_ACTIONS = ("revoke_access_tokens", "revoke_refresh_tokens")


class Sim:
    def __init__(self, fixture, opts):
        self.lock = threading.RLock()
        self.opts = opts
        self.fixture = fixture
        self.auth_base = None          # set once the auth port is known
        self.clock_offset = 0.0
        self.reset()

    # ---------------- lifecycle
    def now(self):
        return time.time() + self.clock_offset

    def default_faults(self):
        o = self.opts
        return {
            "status_burst": {"status": 503, "count": 0},
            "latency_ms": 0,
            "drop_after_request": 0,
            "drop_before_apply": 0,
            "unauthorized_next": 0,
            "auth_down": False,
            "rate_limit": {"limit": o.rate_limit, "window": o.rate_window},
            "retry_after": o.retry_after == "on",
            "rotation": o.rotation,
            "wrap_lists": o.wrap_lists == "on",
            "create_status": o.create_status,
            "warning": False,
            "token_lifetime": int(o.token_lifetime if o.token_lifetime is not None
                                  else self.fixture.get("token_lifetime", 3600)),
            "outcome_error": "text",
            "client_domain": "both",
            "tenant_required": bool(self.fixture.get("tenant_required", False)),
            "crash_next": 0,
            "status_excludeclosed": "honour",
            "write_shape": "auto",
            "attachment_fail": "off",
            "internetmessageid_filter": "honour",
            "cf_filter": "honour",
            "hasbeenclosed_on_reopen": "keep",
        }

    def reset(self, fixture=None, keep_tokens=False):
        with self.lock:
            if fixture is not None:
                validate_fixture(fixture)
                self.fixture = fixture
            fx = copy.deepcopy(self.fixture)
            self.tenant = fx.get("tenant")
            self.tenant_id = fx.get("tenant_id", "")
            self.agents = {a["id"]: a for a in fx.get("agents", [])}
            self.oauth_clients = {c["client_id"]: c for c in fx.get("oauth_clients", [])}
            self.clients = {c["id"]: c for c in fx.get("clients", [])}
            # many unrelated clients, so that an ignored ?domain= filter returns a
            # list longer than one page
            for i in range(int(fx.get("filler_clients", 0))):
                cid = FILLER_CLIENT_BASE + i
                self.clients[cid] = {"id": cid, "name": "Filler Client %03d" % i,
                                     "domain": "filler%03d.example" % i,
                                     "inactive": False}
            self.sites = {s["id"]: s for s in fx.get("sites", [])}
            self.users = {u["id"]: u for u in fx.get("users", [])}
            self.tickettypes = {t["id"]: t for t in fx.get("tickettypes", [])}
            self.statuses = {s["id"]: s for s in fx.get("statuses", [])}
            self.outcomes = {o["id"]: o for o in fx.get("outcomes", [])}
            self.customfield_defs = {c["id"]: c for c in fx.get("customfields", [])}
            self.priorities = {p["id"]: p for p in fx.get("priorities", [])}
            self.default_status_id = fx.get("default_status_id",
                                            min(self.statuses) if self.statuses else 1)
            self.ticket_rules = list(fx.get("ticket_rules", []))
            self.tickets = {}
            for t in fx.get("tickets", []):
                t = dict(t)
                t.setdefault("customfields", [])
                closed = self.is_closed(t.get("status_id"))
                t.setdefault("hasbeenclosed", closed)
                t.setdefault("dateclosed", t.get("lastactiondate") if closed else None)
                self.tickets[t["id"]] = t
            self.seed_user_ids = set(self.users)
            self.next_user = max([0] + list(self.users)) + 1
            self.undeclared = {}       # (route, field) -> count, in first-seen order
            self.undeclared_q = {}     # (route, param) -> count
            self.attachment_seq = 0    # attachments processed since attachment_fail was set
            self.actions = {a["id"]: dict(a) for a in fx.get("actions", [])}
            self.attachments = {}
            self.attachments_refused = []
            self.seed_ticket_ids = set(self.tickets)
            self.seed_action_ids = set(self.actions)
            self.meta = {"tickets": {}, "actions": {}}   # id -> info about creation
            self.next_ticket = max([0] + list(self.tickets)) + 1
            self.next_action = max([0] + list(self.actions)) + 1
            self.next_attachment = 1
            if self.next_ticket < 1000:
                self.next_ticket = 1000
            # faults / counters
            self.faults = self.default_faults()
            self.clock_offset = 0.0
            self.rl_window = deque()
            self.requests = {"total": 0, "api": 0, "auth": 0, "by_route": {},
                             "by_status": {}, "rate_limited": 0, "dropped": 0}
            self.request_log = deque(maxlen=REQUEST_LOG_MAX)
            self.seq = 0
            self.codes = {}
            if not keep_tokens:
                self.access_tokens = {}
                self.refresh_tokens = {}
                self.token_counts = {"issued": 0, "refreshed": 0, "codes_issued": 0}

    # ---------------- closed state (a fixture fact; the API shows it only through
    # Status?excludeclosed=true, Tickets?open_only/closed_only and the ticket fields)
    def is_closed(self, status_id):
        st = self.statuses.get(status_id)
        return bool(st and st.get("closed"))

    def set_status(self, t, status_id):
        """Moves a ticket to a status, keeping hasbeenclosed/dateclosed as Halo does."""
        was = self.is_closed(t.get("status_id"))
        now_closed = self.is_closed(status_id)
        t["status_id"] = status_id
        if now_closed and not was:
            t["hasbeenclosed"] = True
            t["dateclosed"] = iso(self.now())
        elif was and not now_closed and self.faults["hasbeenclosed_on_reopen"] == "clear":
            t["hasbeenclosed"] = False
            t["dateclosed"] = None

    def note_undeclared(self, route, fields, table=None, kind="field"):
        table = self.undeclared if table is None else table
        for f in fields:
            k = (route, f)
            if k not in table:
                trace_undeclared(kind, route, f)
            table[k] = table.get(k, 0) + 1

    # ---------------- recording
    def record(self, kind, method, path, query, resp):
        with self.lock:
            self.seq += 1
            route = resp.route or "%s (unknown)" % method
            status = 0 if resp.drop else resp.status
            r = self.requests
            r["total"] += 1
            r[kind] += 1
            r["by_route"][route] = r["by_route"].get(route, 0) + 1
            if resp.drop:
                r["dropped"] += 1
            else:
                r["by_status"][str(status)] = r["by_status"].get(str(status), 0) + 1
            q = {k: ("<redacted>" if k.lower() in REDACT_PARAMS else v)
                 for k, v in query.items()}
            self.request_log.append({
                "seq": self.seq, "server": kind, "method": method, "path": path,
                "query": q, "route": route, "status": status, "dropped": resp.drop,
                "agent_id": resp.agent_id, "time": round(self.now(), 3)})

    # ---------------- tokens
    def _make_jwt(self, agent_id, client_id, scope, exp, now):
        header = {"alg": "RS256", "typ": "JWT", "kid": "halosim"}
        payload = {"iss": self.auth_base or "halosim", "sub": str(agent_id),
                   "agent_id": agent_id, "client_id": client_id,
                   "scope": scope.split(), "iat": int(now), "nbf": int(now),
                   "exp": int(exp), "jti": secrets.token_hex(12)}
        if self.tenant:
            payload["tenant"] = self.tenant
        return ".".join([b64url(json.dumps(header).encode()),
                         b64url(json.dumps(payload).encode()),
                         b64url(secrets.token_bytes(32))])

    def issue_tokens(self, agent_id, client_id, scope, want_refresh, refresh=None):
        """Issue an access token (and a refresh token when asked).  Returns the body."""
        now = self.now()
        life = self.faults["token_lifetime"]
        at = self._make_jwt(agent_id, client_id, scope, now + life, now)
        self.access_tokens[at] = {"agent_id": agent_id, "client_id": client_id,
                                  "scope": set(scope.split()), "exp": now + life}
        body = {"access_token": at, "token_type": "Bearer", "expires_in": life,
                "scope": scope}
        if refresh is not None:
            body["refresh_token"] = refresh
        elif want_refresh:
            rt = secrets.token_urlsafe(40)
            self.refresh_tokens[rt] = {"agent_id": agent_id, "client_id": client_id,
                                       "scope": scope, "alive": True,
                                       "issued": now}
            body["refresh_token"] = rt
        log("issued access token %s for agent %s scope=%r%s" % (
            redact(at), agent_id, scope,
            " refresh=%s" % redact(body.get("refresh_token")) if "refresh_token" in body
            else ""))
        return body

    def check_scope(self, scope):
        parts = scope.split()
        bad = [p for p in parts if p not in VALID_SCOPES]
        return bad

    # ================================================================ AUTH
    def auth_request(self, method, path, query, headers, body):
        with self.lock:
            lpath = path.lower().rstrip("/") or "/"
            if lpath.startswith("/auth/"):
                lpath = lpath[5:]
            routes = {"/authorize": ("GET", "POST"), "/token": ("POST",)}
            if lpath not in routes:
                r = jresp(404, {"error": "not_found"})
                r.route = "%s (unknown)" % method
                return r
            route = "%s %s" % (method, lpath)
            down = self.faults["auth_down"]
            if down == "close":
                r = Resp(0)
                r.drop = True
            elif down:
                r = jresp(503, {"error": "temporarily_unavailable",
                                "error_description": "authorisation server unavailable"})
            elif method not in routes[lpath]:
                r = jresp(405, {"error": "method_not_allowed"},
                          [("Allow", ", ".join(routes[lpath]))])
            elif lpath == "/token":
                r = self.token_endpoint(query, headers, body)
            elif method == "GET":
                r = self.authorize_get(query)
            else:
                r = self.authorize_post(headers, body)
            r.route = route
            return r

    def _tenant_ok(self, value):
        if value is None or value == "":
            return not self.faults["tenant_required"] or not self.tenant
        if not self.tenant:
            return True      # self-hosted: a tenant parameter is harmless
        return value.lower() == self.tenant.lower()

    # ---- /authorize
    def _html_page(self, status, title, inner):
        page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>%s</title>"
                "</head><body><h1>%s</h1>%s</body></html>") % (
                    html.escape(title), html.escape(title), inner)
        return Resp(status, page, HTML_CT, [("Cache-Control", "no-store")])

    def _redirect(self, uri, params):
        sep = "&" if "?" in uri else "?"
        loc = uri + sep + urllib.parse.urlencode(params)
        return Resp(302, b"", TEXT_CT, [("Location", loc), ("Cache-Control", "no-store")])

    def _authorize_validate(self, p):
        """Returns (error Resp or None, client)."""
        if not self._tenant_ok(p.get("tenant")):
            return self._html_page(400, "Unknown tenant",
                                   "<p>The tenant is not known here.</p>"), None
        client = self.oauth_clients.get(p.get("client_id") or "")
        if client is None:
            return self._html_page(400, "Invalid client",
                                   "<p>unauthorized_client: unknown client_id</p>"), None
        if p.get("redirect_uri") not in client.get("redirect_uris", []):
            return self._html_page(400, "Invalid redirect_uri",
                                   "<p>The redirect_uri is not registered for this "
                                   "client.</p>"), None
        uri = p["redirect_uri"]
        state = p.get("state")

        def err(code, desc):
            prm = {"error": code, "error_description": desc}
            if state is not None:
                prm["state"] = state
            return self._redirect(uri, prm), client
        if p.get("response_type") != "code":
            return err("unsupported_response_type", "response_type must be code")
        if not p.get("code_challenge"):
            return err("invalid_request", "code_challenge is required")
        if p.get("code_challenge_method") != "S256":
            return err("invalid_request", "code_challenge_method must be S256")
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", p["code_challenge"]):
            return err("invalid_request", "code_challenge is not a base64url SHA-256")
        scope = p.get("scope") or "all"
        if self.check_scope(scope):
            return err("invalid_scope", "unknown scope: %s" % " ".join(
                self.check_scope(scope)))
        return None, client

    AUTH_FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                   "code_challenge", "code_challenge_method", "tenant")

    def _login_form(self, p, error=None):
        hidden = "".join('<input type="hidden" name="%s" value="%s">' % (
            k, html.escape(p[k], quote=True)) for k in self.AUTH_FIELDS if k in p)
        msg = '<p class="error" id="error">%s</p>' % html.escape(error) if error else ""
        inner = ('%s<form method="post" action="authorize">%s'
                 '<label>Email <input type="text" name="username"></label>'
                 '<label>Password <input type="password" name="password"></label>'
                 '<button type="submit" name="action" value="login">Log in</button>'
                 '<button type="submit" name="action" value="deny">Deny</button>'
                 '</form>') % (msg, hidden)
        return self._html_page(200, "Sign in to HaloPSA (simulator)", inner)

    def authorize_get(self, query):
        p = {k: query[k] for k in self.AUTH_FIELDS if k in query}
        err, _client = self._authorize_validate(p)
        if err is not None:
            return err
        return self._login_form(p)

    def authorize_post(self, headers, body):
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return self._html_page(400, "Bad request", "<p>form post expected</p>")
        try:
            form = parse_form(body)
        except ValueError as exc:
            return self._html_page(400, "Bad request", "<p>%s</p>" % html.escape(str(exc)))
        p = {k: form[k] for k in self.AUTH_FIELDS if k in form}
        err, client = self._authorize_validate(p)
        if err is not None:
            return err
        uri, state = p["redirect_uri"], p.get("state")
        if form.get("action") == "deny":
            prm = {"error": "access_denied", "error_description": "the user denied access"}
            if state is not None:
                prm["state"] = state
            return self._redirect(uri, prm)
        email = (form.get("username") or "").strip().lower()
        pw = form.get("password") or ""
        agent = next((a for a in self.agents.values()
                      if (a.get("email") or "").lower() == email), None)
        if (agent is None or not agent.get("password")
                or not secrets.compare_digest(str(agent["password"]).encode(), pw.encode())):
            log("login failed for %r" % email)
            return self._login_form(p, "Invalid username or password")
        if agent.get("isdisabled"):
            return self._login_form(p, "This account is disabled")
        if agent.get("isapiagent"):
            return self._login_form(p, "API-only agents cannot sign in interactively")
        code = secrets.token_urlsafe(32)
        self.codes[code] = {"client_id": client["client_id"], "redirect_uri": uri,
                            "challenge": p["code_challenge"], "agent_id": agent["id"],
                            "scope": p.get("scope") or "all",
                            "expires": self.now() + CODE_LIFETIME, "used": False}
        self.token_counts["codes_issued"] += 1
        log("login ok for agent %s, code %s" % (agent["id"], redact(code)))
        prm = {"code": code}
        if state is not None:
            prm["state"] = state
        return self._redirect(uri, prm)

    # ---- /token
    def token_endpoint(self, query, headers, body):
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return oauth_error("invalid_request",
                               "Content-Type must be application/x-www-form-urlencoded")
        try:
            form = parse_form(body, reject_duplicates=True)
        except ValueError as exc:
            return oauth_error("invalid_request", str(exc))
        tenant = form.get("tenant", query.get("tenant"))
        if not self._tenant_ok(tenant):
            return oauth_error("invalid_request", "unknown or missing tenant")
        client = self.oauth_clients.get(form.get("client_id") or "")
        if client is None:
            return oauth_error("invalid_client", "unknown client_id")
        secret = client.get("client_secret")
        if secret:
            given = form.get("client_secret") or ""
            if not secrets.compare_digest(given.encode(), str(secret).encode()):
                return oauth_error("invalid_client", "client authentication failed")
        gt = form.get("grant_type")
        if gt == "authorization_code":
            return self._grant_code(client, form)
        if gt == "refresh_token":
            return self._grant_refresh(client, form)
        if gt == "client_credentials":
            return self._grant_client_credentials(client, form)
        return oauth_error("invalid_request", "unsupported grant_type %r" % (gt,))

    def _agent_usable(self, agent_id):
        a = self.agents.get(agent_id)
        return a is not None and not a.get("isdisabled")

    def _grant_code(self, client, form):
        if form.get("scope") and self.check_scope(form["scope"]):
            return oauth_error("invalid_scope", "unknown scope: %s" % " ".join(
                self.check_scope(form["scope"])))
        code = form.get("code")
        if not code:
            return oauth_error("invalid_request", "code is required")
        rec = self.codes.get(code)
        if rec is None:
            return oauth_error("invalid_grant", "unknown authorization code")
        if rec["used"]:
            return oauth_error("invalid_grant", "authorization code already used")
        rec["used"] = True      # single use: consumed by the first presentation
        if self.now() > rec["expires"]:
            return oauth_error("invalid_grant", "authorization code expired")
        if rec["client_id"] != client["client_id"]:
            return oauth_error("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != rec["redirect_uri"]:
            return oauth_error("invalid_grant", "redirect_uri does not match")
        verifier = form.get("code_verifier")
        if not verifier:
            return oauth_error("invalid_request", "code_verifier is required")
        if not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
            return oauth_error("invalid_grant", "malformed code_verifier")
        calc = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        if not secrets.compare_digest(calc, rec["challenge"]):
            return oauth_error("invalid_grant", "code_verifier does not match")
        if not self._agent_usable(rec["agent_id"]):
            return oauth_error("invalid_grant", "agent disabled")
        scope = rec["scope"]
        self.token_counts["issued"] += 1
        return jresp(200, self.issue_tokens(rec["agent_id"], client["client_id"], scope,
                                            "offline_access" in scope.split()),
                     [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _grant_refresh(self, client, form):
        rt = form.get("refresh_token")
        if not rt:
            return oauth_error("invalid_request", "refresh_token is required")
        rec = self.refresh_tokens.get(rt)
        if rec is None or not rec["alive"]:
            return oauth_error("invalid_grant", "refresh token is invalid or revoked")
        if rec["client_id"] != client["client_id"]:
            return oauth_error("invalid_grant", "refresh token belongs to another client")
        if not self._agent_usable(rec["agent_id"]):
            return oauth_error("invalid_grant", "agent disabled")
        scope = rec["scope"]
        if form.get("scope"):
            if self.check_scope(form["scope"]):
                return oauth_error("invalid_scope", "unknown scope")
            if not set(form["scope"].split()) <= set(scope.split()):
                return oauth_error("invalid_scope", "scope exceeds the original grant")
            scope = form["scope"]
        mode = self.faults["rotation"]
        self.token_counts["refreshed"] += 1
        hdrs = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if mode == "rotate":
            rec["alive"] = False
            body = self.issue_tokens(rec["agent_id"], client["client_id"], scope, True)
            # the new refresh token keeps the original grant's scope
            self.refresh_tokens[body["refresh_token"]]["scope"] = rec["scope"]
        elif mode == "reuse":
            body = self.issue_tokens(rec["agent_id"], client["client_id"], scope, False,
                                     refresh=rt)
        else:  # omit
            body = self.issue_tokens(rec["agent_id"], client["client_id"], scope, False)
        return jresp(200, body, hdrs)

    def _grant_client_credentials(self, client, form):
        if not client.get("client_secret"):
            return oauth_error("invalid_client",
                               "client_credentials needs a confidential client")
        agent_id = client.get("api_agent_id")
        if agent_id is None or not self._agent_usable(agent_id):
            return oauth_error("invalid_client", "no usable API agent for this client")
        scope = form.get("scope") or "all"
        if self.check_scope(scope):
            return oauth_error("invalid_scope", "unknown scope: %s" % " ".join(
                self.check_scope(scope)))
        self.token_counts["issued"] += 1
        return jresp(200, self.issue_tokens(agent_id, client["client_id"], scope, False),
                     [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # ============================================================ RESOURCE
    ROUTES = [
        # regex (lower-case path), canonical, {method: (handler, scope, auth)}
        (r"/api/authinfo", "/api/authinfo", {"GET": ("h_authinfo", None, False)}),
        (r"/api/agent/me", "/api/Agent/me", {"GET": ("h_agent_me", None, True)}),
        (r"/api/users", "/api/Users", {"GET": ("h_users", "read:customers", True),
                                       "POST": ("h_users_post", "edit:customers", True)}),
        (r"/api/users/(\d+)", "/api/Users/{id}",
         {"GET": ("h_user", "read:customers", True)}),
        (r"/api/client", "/api/Client", {"GET": ("h_clients", "read:customers", True)}),
        (r"/api/client/(\d+)", "/api/Client/{id}",
         {"GET": ("h_client", "read:customers", True)}),
        (r"/api/site", "/api/Site", {"GET": ("h_sites", "read:customers", True)}),
        (r"/api/site/(\d+)", "/api/Site/{id}", {"GET": ("h_site", "read:customers", True)}),
        (r"/api/tickets", "/api/Tickets", {"GET": ("h_tickets", "read:tickets", True),
                                           "POST": ("h_tickets_post", "edit:tickets", True)}),
        (r"/api/tickets/(\d+)", "/api/Tickets/{id}",
         {"GET": ("h_ticket", "read:tickets", True)}),
        (r"/api/actions", "/api/Actions", {"GET": ("h_actions", "read:tickets", True),
                                           "POST": ("h_actions_post", "edit:tickets", True)}),
        (r"/api/actions/(\d+)", "/api/Actions/{id}",
         {"GET": ("h_action", "read:tickets", True)}),
        (r"/api/attachment", "/api/Attachment",
         {"GET": ("h_attachments", "read:tickets", True),
          "POST": ("h_attachment_post", "edit:tickets", True)}),
        (r"/api/attachment/(\d+)", "/api/Attachment/{id}",
         {"GET": ("h_attachment", "read:tickets", True)}),
        (r"/api/tickettype", "/api/TicketType",
         {"GET": ("h_tickettypes", "read:tickets", True)}),
        (r"/api/status", "/api/Status", {"GET": ("h_statuses", "read:tickets", True)}),
        (r"/api/outcome", "/api/Outcome", {"GET": ("h_outcomes", "read:tickets", True)}),
    ]
    _COMPILED = [(re.compile(rx), canon, m) for rx, canon, m in ROUTES]

    def _match(self, path):
        lp = path.lower()
        if len(lp) > 1:
            lp = lp.rstrip("/")
        for rx, canon, methods in self._COMPILED:
            mo = rx.fullmatch(lp)
            if mo:
                return canon, methods, mo.groups()
        return None, None, ()

    def _rate_check(self):
        """Returns a 429 Resp, or None after consuming a slot."""
        rl = self.faults["rate_limit"]
        limit, window = rl["limit"], rl["window"]
        now = self.now()
        while self.rl_window and self.rl_window[0] <= now - window:
            self.rl_window.popleft()
        if limit > 0 and len(self.rl_window) >= limit:
            self.requests["rate_limited"] += 1
            wait = max(1, math.ceil(self.rl_window[0] + window - now))
            if window % 60 == 0:
                wtxt = "%d minute" % (window // 60)
            else:
                wtxt = "%d second" % window
            hdrs = [("Retry-After", str(wait))] if self.faults["retry_after"] else []
            return tresp(429, RATE_MSG.format(limit=limit, window=wtxt), hdrs)
        self.rl_window.append(now)
        return None

    def api_request(self, method, path, query, headers, body):
        with self.lock:
            canon, methods, groups = self._match(path)
            route = "%s %s" % (method, canon) if canon else "%s (unknown)" % method
            r = self._api_pipeline(method, canon, methods, groups, query, headers, body)
            r.route = route
            return r

    def _api_pipeline(self, method, canon, methods, groups, query, headers, body):
        f = self.faults
        rl = self._rate_check()
        if rl is not None:
            return rl
        drop_after = False
        if method == "POST":
            if f["drop_before_apply"] > 0:
                f["drop_before_apply"] -= 1
                r = Resp(0)
                r.drop = True
                log("fault: dropping %s before applying" % canon)
                return r
            if f["drop_after_request"] > 0:
                f["drop_after_request"] -= 1
                drop_after = True
        r = self._api_checked(method, canon, methods, groups, query, headers, body)
        if drop_after:
            log("fault: applied %s, dropping the response (%d)" % (canon, r.status))
            agent = r.agent_id
            r = Resp(0)
            r.drop = True
            r.agent_id = agent
        return r

    def _api_checked(self, method, canon, methods, groups, query, headers, body):
        f = self.faults
        sb = f["status_burst"]
        if sb["count"] > 0:
            sb["count"] -= 1
            st = sb["status"]
            return jresp(st, {"Message": "Simulated failure (status %d)" % st})
        if canon is None:
            return jresp(404, {"Message": "No HTTP resource was found that matches the "
                                          "request URI."})
        if method not in methods:
            return jresp(405, {"Message": "The requested resource does not support http "
                                          "method '%s'." % method},
                         [("Allow", ", ".join(sorted(methods)))])
        hname, need, auth = methods[method]
        agent = None
        if auth:
            if f["unauthorized_next"] > 0:
                f["unauthorized_next"] -= 1
                return self._unauth("simulated expiry")
            authz = headers.get("Authorization") or ""
            if not authz.lower().startswith("bearer "):
                return self._unauth("missing bearer token")
            tok = authz[7:].strip()
            rec = self.access_tokens.get(tok)
            if rec is None:
                return self._unauth("unknown token")
            if self.now() >= rec["exp"]:
                return self._unauth("token expired")
            if not self._agent_usable(rec["agent_id"]):
                return self._unauth("agent disabled")
            if need and not (rec["scope"] & SCOPE_COVER[need]):
                r = jresp(403, {"Message": "The token does not carry the %s scope." % need},
                          [("WWW-Authenticate",
                            'Bearer error="insufficient_scope", scope="%s"' % need)])
                r.agent_id = rec["agent_id"]
                return r
            agent = self.agents[rec["agent_id"]]
        data = None
        if method == "POST":
            ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json" and not ctype.endswith("+json"):
                r = jresp(415, {"type": "https://tools.ietf.org/html/rfc7231#section-6.5.13",
                                "title": "Unsupported Media Type", "status": 415})
                r.agent_id = agent["id"] if agent else None
                return r
            try:
                data = parse_json(body)
            except ValueError as exc:
                r = model_error("$", str(exc))
                r.agent_id = agent["id"] if agent else None
                return r
        if method == "GET":
            declared = SPEC["query"].get(canon[4:])
            if declared is not None:
                self.note_undeclared("GET " + canon,
                                     [k for k in query if k not in declared],
                                     self.undeclared_q, "param")
        if f["crash_next"] > 0:
            f["crash_next"] -= 1
            raise RuntimeError("simulated internal error (crash_next)")
        try:
            r = getattr(self, hname)(agent, query, data, *groups)
        except ApiError as e:
            r = e.resp
        r.agent_id = agent["id"] if agent else None
        return r

    def _unauth(self, why):
        log("401: %s" % why)
        return jresp(401, {"Message": "Authorization has been denied for this request."},
                     [("WWW-Authenticate", 'Bearer error="invalid_token"')])

    # ---------------- views
    def v_agent(self, a):
        return {"id": a["id"], "name": a.get("name"), "email": a.get("email"),
                "isdisabled": bool(a.get("isdisabled")),
                "isapiagent": bool(a.get("isapiagent"))}

    def v_user(self, u):
        site = self.sites.get(u.get("site_id"))
        client = self.clients.get(u.get("client_id"))
        return {"id": u["id"], "name": u.get("name"),
                "emailaddress": u.get("emailaddress") or "",
                "email2": u.get("email2") or "", "email3": u.get("email3") or "",
                "site_id": u.get("site_id"), "site_name": site.get("name") if site else "",
                "client_id": u.get("client_id"),
                "client_name": client.get("name") if client else "",
                "inactive": bool(u.get("inactive"))}

    def v_client(self, c):
        out = {k: v for k, v in c.items()}
        out["inactive"] = bool(c.get("inactive"))
        return out

    def v_site(self, s):
        client = self.clients.get(s.get("client_id"))
        return {"id": s["id"], "name": s.get("name"), "client_id": s.get("client_id"),
                "client_name": client.get("name") if client else "",
                "emaildomain": s.get("emaildomain") or "",
                "todomain": s.get("todomain") or "",
                "inactive": bool(s.get("inactive"))}

    def v_status(self, st):
        """TStatus: only fields the spec declares (so never a closed flag)."""
        return {k: v for k, v in st.items() if k in SPEC["schemas"]["TStatus"]}

    def v_ticket(self, t):
        out = dict(t)
        c = self.clients.get(t.get("client_id"))
        s = self.sites.get(t.get("site_id"))
        u = self.users.get(t.get("user_id"))
        st = self.statuses.get(t.get("status_id"))
        out["client_name"] = c.get("name") if c else ""
        out["site_name"] = s.get("name") if s else ""
        out["user_name"] = u.get("name") if u else ""
        out["status_name"] = st.get("name") if st else ""
        out["customfields"] = [dict(cf) for cf in t.get("customfields", [])]
        return out

    def v_action(self, a):
        return dict(a)

    def v_attachment(self, at):
        return {k: v for k, v in at.items() if k != "data"}

    def _list(self, key, items):
        return {"record_count": len(items), key: items}

    def _page(self, query, items, max_page=None):
        """pageinate / page_size / page_no / count."""
        page_size = q_int(query, "page_size", None)
        if page_size is not None and max_page is not None and page_size > max_page:
            fail_msg("page_size cannot be greater than %d" % max_page)
        if page_size is not None and page_size < 1:
            fail_msg("page_size must be at least 1")
        page_no = q_int(query, "page_no", 1, minimum=1)
        count = q_int(query, "count", None, minimum=0)
        if q_bool(query, "pageinate"):
            ps = page_size or 50
            return items[(page_no - 1) * ps:page_no * ps]
        if count is not None:
            return items[:count]
        return items

    # ---------------- handlers (all run under self.lock)
    def h_authinfo(self, agent, query, data):
        return jresp(200, {"auth_url": self.fixture.get("auth_url") or self.auth_base,
                           "tenant_id": self.tenant_id})

    def h_agent_me(self, agent, query, data):
        return jresp(200, self.v_agent(agent))

    def h_users(self, agent, query, data):
        search = (query.get("search") or "").lower()
        client_id = q_int(query, "client_id")
        site_id = q_int(query, "site_id")
        inc = q_bool(query, "includeinactive")
        out = []
        for u in sorted(self.users.values(), key=lambda u: u["id"]):
            if u.get("inactive") and not inc:
                continue
            if client_id is not None and u.get("client_id") != client_id:
                continue
            if site_id is not None and u.get("site_id") != site_id:
                continue
            if search:
                hay = [u.get("name"), u.get("emailaddress"), u.get("email2"),
                       u.get("email3")]
                if not any(search in (h or "").lower() for h in hay):
                    continue
            out.append(self.v_user(u))
        total = len(out)
        res = self._page(query, out)
        return jresp(200, {"record_count": total, "users": res})

    def h_user(self, agent, query, data, uid):
        u = self.users.get(int(uid))
        if u is None:
            fail_msg("User %s not found" % uid, 404)
        return jresp(200, self.v_user(u))

    def _client_domain_match(self, c, dom):
        mode = self.faults["client_domain"]
        if mode == "ignore":
            return True
        cdom = (c.get("domain") or "").lower()
        sdoms = [(s.get("emaildomain") or "").lower() for s in self.sites.values()
                 if s.get("client_id") == c["id"]]
        if mode == "client":
            return cdom == dom
        if mode == "site":
            return dom in sdoms
        if mode == "substring":
            return (dom in cdom) or any(dom in s for s in sdoms)
        return cdom == dom or dom in sdoms     # both

    def h_clients(self, agent, query, data):
        search = (query.get("search") or "").lower()
        dom = (query.get("domain") or "").strip().lower().lstrip("@")
        inc = q_bool(query, "includeinactive")
        out = []
        for c in sorted(self.clients.values(), key=lambda c: c["id"]):
            if c.get("inactive") and not inc:
                continue
            if search and search not in (c.get("name") or "").lower():
                continue
            if dom and not self._client_domain_match(c, dom):
                continue
            out.append(self.v_client(c))
        total = len(out)
        return jresp(200, {"record_count": total, "clients": self._page(query, out)})

    def h_client(self, agent, query, data, cid):
        c = self.clients.get(int(cid))
        if c is None:
            fail_msg("Client %s not found" % cid, 404)
        return jresp(200, self.v_client(c))

    def h_sites(self, agent, query, data):
        client_id = q_int(query, "client_id")
        search = (query.get("search") or "").lower()
        inc = q_bool(query, "includeinactive")
        out = []
        for s in sorted(self.sites.values(), key=lambda s: s["id"]):
            if client_id is not None and s.get("client_id") != client_id:
                continue
            if s.get("inactive") and not inc:
                continue
            if search and search not in (s.get("name") or "").lower():
                continue
            out.append(self.v_site(s))
        total = len(out)
        return jresp(200, {"record_count": total, "sites": self._page(query, out)})

    def h_site(self, agent, query, data, sid):
        s = self.sites.get(int(sid))
        if s is None:
            fail_msg("Site %s not found" % sid, 404)
        return jresp(200, self.v_site(s))

    # ---- typed fields, as the spec declares them
    def _declared(self, schema, item, path, skip=()):
        """Declared fields of item (typed per the spec) and the undeclared names."""
        fields = SPEC["schemas"][schema]
        rec, undeclared = {}, []
        for k in item:
            typ = fields.get(k)
            if typ is None:
                undeclared.append(k)
                continue
            if k in skip:
                continue
            rec[k] = typed_field(item, k, typ, path)
        return rec, undeclared

    def _nested_undeclared(self, schema, lst, prefix):
        out = []
        if isinstance(lst, list):
            fields = SPEC["schemas"][schema]
            for x in lst:
                if isinstance(x, dict):
                    out += ["%s[].%s" % (prefix, k) for k in x if k not in fields]
        return sorted(set(out))

    # ---- tickets
    def _cf_lookup(self, cf, path):
        if not isinstance(cf, dict):
            fail_model(path, "The JSON value could not be converted to CustomField.")
        cid = body_int(cf, "id", path)
        name = body_str(cf, "name", path)
        if cid is None and not name:
            fail_msg("A custom field needs a name or an id")
        d = None
        if cid is not None:
            d = self.customfield_defs.get(cid)
        elif name:
            d = next((x for x in self.customfield_defs.values()
                      if x["name"].lower() == name.lower()), None)
        if d is None:
            fail_msg("Custom field '%s' does not exist" % (name if name else cid))
        if "value" not in cf:
            fail_msg("Custom field '%s' has no value" % d["name"])
        v = cf["value"]
        if isinstance(v, (dict, list)):
            fail_model(path + ".value", "The JSON value could not be converted.")
        return {"id": d["id"], "name": d["name"], "value": v}

    def _validate_attachments(self, lst, path):
        """Checks the shape (a wrong shape is a 400); the content is judged later:
        only a data URI with valid base64 is stored, anything else gets a _warning."""
        if lst is None:
            return []
        if not isinstance(lst, list):
            fail_model(path, "The JSON value could not be converted to "
                             "System.Collections.Generic.List`1[Attachment].")
        out = []
        for i, a in enumerate(lst):
            p = "%s[%d]" % (path, i)
            if not isinstance(a, dict):
                fail_model(p, "The JSON value could not be converted to Attachment.")
            fn = body_str(a, "filename", p)
            if not fn:
                fail_msg("An attachment needs a filename")
            b64 = body_str(a, "data_base64", p)
            raw, mime, reason = None, None, None
            if b64 is None:
                reason = "no data_base64"
            else:
                m = DATA_URI.fullmatch(b64)
                if not m:
                    reason = "data_base64 is not a data URI (data:<mime>;base64,...)"
                else:
                    try:
                        raw = strict_b64decode(m.group(3))
                        mime = m.group(1).lower()
                    except ValueError:
                        reason = "the data URI's payload is not valid base64"
            out.append({"filename": fn, "data": raw, "mime": mime, "reason": reason,
                        "isimage": bool(body_bool(a, "isimage", p)),
                        "content_type": body_str(a, "content_type", p)})
        return out

    def _store_attachments(self, atts, ticket_id, action_id, via):
        """Returns (attachment views for the response, warning text or None)."""
        made, warns = [], []
        for a in atts:
            reason = a["reason"]
            if reason is None:
                self.attachment_seq += 1
                mode = self.faults["attachment_fail"]
                if mode == "all" or (is_int(mode) and self.attachment_seq == mode):
                    reason = "simulated failure (attachment_fail %s)" % mode
            if reason is not None:
                w = "%s: %s" % (ATT_WARNING, a["filename"])
                warns.append(w)
                self.attachments_refused.append({
                    "ticket_id": ticket_id, "action_id": action_id,
                    "filename": a["filename"], "reason": reason, "via": via})
                made.append({"id": 0, "ticket_id": ticket_id, "action_id": action_id,
                             "filename": a["filename"], "_warning": w})
                continue
            aid = self.next_attachment
            self.next_attachment += 1
            rec = {"id": aid, "ticket_id": ticket_id, "action_id": action_id,
                   "filename": a["filename"], "filesize": len(a["data"]),
                   "isimage": a["isimage"],
                   "content_type": a["content_type"] or a["mime"],
                   "sha256": hashlib.sha256(a["data"]).hexdigest(),
                   "datecreated": iso(self.now()), "data": a["data"], "_via": via}
            self.attachments[aid] = rec
            made.append(self.v_attachment(rec))
        return made, ("; ".join(warns) if warns else None)

    def _validate_ticket(self, item, path, current=None):
        """Validates a create (current None) or update.
        Returns (record, attachments, undeclared field names)."""
        if not isinstance(item, dict):
            fail_model(path, "The JSON value could not be converted to Faults.Ticket.")
        rec = dict(current) if current else {}
        vals, undeclared = self._declared("Faults", item, path, TICKET_COMPUTED)
        rec.update(vals)
        undeclared += self._nested_undeclared("CustomField", item.get("customfields"),
                                              "customfields")
        undeclared += self._nested_undeclared("Attachment", item.get("attachments"),
                                              "attachments")
        summary = rec.get("summary")
        if not summary or not str(summary).strip():
            fail_exc("Please enter a Summary")
        tt = self.tickettypes.get(rec.get("tickettype_id"))
        if tt is None:
            fail_exc("Ticket Type %s does not exist" % rec.get("tickettype_id"))
        for fld in tt.get("required_fields", []):
            if rec.get(fld) in (None, ""):
                fail_exc("%s is required for ticket type '%s'" % (fld, tt["name"]))
        user_id, site_id, client_id = rec.get("user_id"), rec.get("site_id"), \
            rec.get("client_id")
        if user_id is not None and site_id is None:
            fail_exc("A Site must be specified when a User is specified (user_id %d)"
                     % user_id)
        if user_id is not None:
            u = self.users.get(user_id)
            if u is None:
                fail_exc("User %d does not exist" % user_id)
            if u.get("site_id") != site_id:
                fail_exc("User %d does not belong to Site %d" % (user_id, site_id))
        if site_id is not None:
            s = self.sites.get(site_id)
            if s is None:
                fail_exc("Site %d does not exist" % site_id)
            if client_id is None:
                client_id = rec["client_id"] = s.get("client_id")
            elif s.get("client_id") != client_id:
                fail_exc("Site %d does not belong to Client %d" % (site_id, client_id))
        if client_id is not None and client_id not in self.clients:
            fail_exc("Client %d does not exist" % client_id)
        if rec.get("status_id") is None:
            rec["status_id"] = self.default_status_id
        elif rec["status_id"] not in self.statuses:
            fail_exc("Status %d does not exist" % rec["status_id"])
        if rec.get("priority_id") is not None and self.priorities and \
                rec["priority_id"] not in self.priorities:
            fail_exc("Priority %d does not exist" % rec["priority_id"])
        if rec.get("agent_id") is not None and rec["agent_id"] not in self.agents:
            fail_exc("Agent %d does not exist" % rec["agent_id"])
        if "customfields" in item and item["customfields"] is not None:
            if not isinstance(item["customfields"], list):
                fail_model(path + ".customfields", "The JSON value could not be converted "
                           "to System.Collections.Generic.List`1[CustomField].")
            cfs = {cf["id"]: cf for cf in rec.get("customfields", [])}
            for i, cf in enumerate(item["customfields"]):
                v = self._cf_lookup(cf, "%s.customfields[%d]" % (path, i))
                cfs[v["id"]] = v
            rec["customfields"] = list(cfs.values())
        rec.setdefault("customfields", [])
        atts = self._validate_attachments(item.get("attachments"), path + ".attachments")
        return rec, atts, sorted(set(undeclared))

    def run_rules(self, t):
        """Halo's ticket rules, reduced to the fixture's ticket_rules: every rule whose
        match holds sets its fields.  Returns the names of the rules that matched."""
        names = []
        for r in self.ticket_rules:
            ok = True
            for k, v in (r.get("match") or {}).items():
                if k == "summary_contains":
                    ok = str(v).lower() in str(t.get("summary") or "").lower()
                else:
                    ok = t.get(k) == v
                if not ok:
                    break
            if not ok:
                continue
            t.update(r.get("set") or {})
            names.append(r["name"])
            if t.get("matched_rule_id") is None:
                t["matched_rule_id"] = r["id"]
                t["matched_rule_name"] = r["name"]
            ids = [x for x in str(t.get("matched_rule_ids") or "").split(",") if x]
            t["matched_rule_ids"] = ",".join(ids + [str(r["id"])])
        return names

    def _new_action(self, ticket_id, fields, agent, via):
        aid = self.next_action
        self.next_action += 1
        now = self.now()
        n = 1 + sum(1 for a in self.actions.values() if a["ticket_id"] == ticket_id)
        rec = {"id": aid, "ticket_id": ticket_id, "actionnumber": n,
               "who": agent["name"] if agent else "", "agent_id": agent["id"] if agent else None,
               "datetime": iso(now)}
        rec.update(fields)
        self.actions[aid] = rec
        self.meta["actions"][aid] = {"via": via, "agent_id": rec["agent_id"]}
        t = self.tickets.get(ticket_id)
        if t is not None:
            t["lastactiondate"] = iso(now)
        return rec

    def _write_status(self, created):
        return self.faults["create_status"] if created else 200

    def _maybe_warn(self, obj):
        if self.faults["warning"]:
            w = "Simulated warning: the record was saved with warnings"
            obj["_warning"] = "%s; %s" % (obj["_warning"], w) if obj.get("_warning") else w
        return obj

    def _write_resp(self, status, objs, key):
        """The spec documents only '200 Success' with no body schema for writes; real
        tenants answer one object, an array, or {key: [...]} (write_shape)."""
        objs = [self._maybe_warn(o) for o in objs]
        shape = self.faults["write_shape"]
        if shape == "array":
            return jresp(status, objs)
        if shape == "wrapped":
            return jresp(status, {key: objs})
        if shape == "object" or len(objs) == 1:
            return jresp(status, objs[0])
        return jresp(status, objs)

    def h_tickets_post(self, agent, query, data):
        if not isinstance(data, list):
            fail_model("$", "The JSON value could not be converted to System.Collections."
                            "Generic.List`1[Halo.Models.Faults]. Path: $ | LineNumber: 0 "
                            "| BytePositionInLine: 1.")
        if not data:
            fail_model("$", "At least one ticket is required.")
        plans = []
        for i, item in enumerate(data):
            p = "$[%d]" % i
            if not isinstance(item, dict):
                fail_model(p, "The JSON value could not be converted to Ticket.")
            tid = body_int(item, "id", p)
            if tid is not None and tid > 0:
                cur = self.tickets.get(tid)
                if cur is None:
                    fail_msg("Ticket %d not found" % tid, 404)
                rec, atts, und = self._validate_ticket(item, p, cur)
                plans.append(("update", tid, rec, atts, und))
            else:
                rec, atts, und = self._validate_ticket(item, p)
                plans.append(("create", None, rec, atts, und))
        results = []
        created = False
        now = self.now()
        route = "POST /api/Tickets"
        for kind, tid, rec, atts, und in plans:
            self.note_undeclared(route, und)
            if kind == "create":
                created = True
                tid = self.next_ticket
                self.next_ticket += 1
                rec["id"] = tid
                rec.setdefault("dateoccurred", None)
                if not rec["dateoccurred"]:
                    rec["dateoccurred"] = iso(now)
                rec["datecreated"] = iso(now)
                rec["lastactiondate"] = iso(now)
                rec.setdefault("agent_id", None)
                closed = self.is_closed(rec["status_id"])
                rec["hasbeenclosed"] = closed
                rec["dateclosed"] = iso(now) if closed else None
                self.tickets[tid] = rec
                rules = [] if rec.get("dont_do_rules") else self.run_rules(rec)
                self.meta["tickets"][tid] = {"via": route, "agent_id": agent["id"],
                                             "undeclared_fields": und,
                                             "dont_do_rules": bool(rec.get("dont_do_rules")),
                                             "rules_ran": not rec.get("dont_do_rules"),
                                             "rules_matched": rules}
                first = self._new_action(tid, {
                    "outcome": "Ticket Logged", "outcome_id": 0,
                    "note": rec.get("details") or "", "note_html": rec.get("details_html"),
                    "hiddenfromuser": False,
                    "actionarrivaldate": rec.get("dateoccurred"),
                    "internet_message_id": rec.get("internet_message_id"),
                    "email_message_id": rec.get("email_message_id")},
                    agent, route)
                made, warn = self._store_attachments(atts, tid, first["id"], route)
            else:
                t = self.tickets[tid]
                new_status = rec["status_id"]
                rec["status_id"] = t.get("status_id")
                t.update(rec)
                if new_status != t.get("status_id"):
                    self.set_status(t, new_status)
                m = self.meta["tickets"].setdefault(tid, {"via": "seed"})
                m.setdefault("updates", []).append({"agent_id": agent["id"],
                                                    "undeclared_fields": und})
                made, warn = self._store_attachments(atts, tid, None, route)
            out = self.v_ticket(self.tickets[tid])
            if made:
                out["attachments"] = made
            if warn:
                out["_warning"] = warn
            results.append(out)
        return self._write_resp(self._write_status(created), results, "tickets")

    def h_ticket(self, agent, query, data, tid):
        t = self.tickets.get(int(tid))
        if t is None:
            fail_msg("Ticket %s not found" % tid, 404)
        return jresp(200, self.v_ticket(t))

    def _ticket_mid_match(self, t, want):
        if strip_angle(t.get("internet_message_id")) == want:
            return True
        return any(a["ticket_id"] == t["id"] and
                   strip_angle(a.get("internet_message_id")) == want
                   for a in self.actions.values())

    def h_tickets(self, agent, query, data):
        client_id = q_int(query, "client_id")
        user_id = q_int(query, "user_id")
        site_id = q_int(query, "site_id")
        agent_id = q_int(query, "agent_id")
        status_id = q_int(query, "status_id")
        open_only = q_bool(query, "open_only")
        closed_only = q_bool(query, "closed_only")
        search = (query.get("search") or "").lower()
        reportedby = (query.get("search_reportedby") or "").lower()
        mid = query.get("internetmessageid")
        want_mid = None
        if mid and self.faults["internetmessageid_filter"] == "honour":
            want_mid = strip_angle(mid)
        ids = None
        if query.get("ticketids"):
            try:
                ids = {int(x) for x in query["ticketids"].split(",") if x.strip()}
            except ValueError:
                fail_model("ticketids", "The value '%s' is not valid."
                           % query["ticketids"][:100])
        filters = []
        if query.get("advanced_search"):
            try:
                adv = json.loads(query["advanced_search"])
            except ValueError:
                fail_msg("advanced_search is not valid JSON")
            if isinstance(adv, dict):
                adv = [adv]
            if not isinstance(adv, list):
                fail_msg("advanced_search must be a JSON array")
            for flt in adv:
                if not isinstance(flt, dict) or not isinstance(flt.get("filter_name"), str):
                    fail_msg("advanced_search entries need a filter_name")
                if flt.get("filter_type") not in (2, "2"):
                    fail_msg("filter_type %r is not supported by the simulator "
                             "(2 = equals)" % (flt.get("filter_type"),))
                filters.append((flt["filter_name"], flt.get("filter_value")))
        # field_<CustomFieldName>=value (the Outlook add-in's form): honoured for a
        # defined custom field; an unknown one, or cf_filter "ignore", is ignored
        if self.faults["cf_filter"] == "honour":
            cfnames = {d["name"].lower() for d in self.customfield_defs.values()}
            for k, v in query.items():
                if k.startswith("field_") and k[6:] in cfnames:
                    filters.append((k[6:], v))
        searchable = {d["id"] for d in self.customfield_defs.values() if d.get("searchable")}
        out = []
        for t in self.tickets.values():
            if client_id is not None and t.get("client_id") != client_id:
                continue
            if user_id is not None and t.get("user_id") != user_id:
                continue
            if site_id is not None and t.get("site_id") != site_id:
                continue
            if agent_id is not None and t.get("agent_id") != agent_id:
                continue
            if status_id is not None and t.get("status_id") != status_id:
                continue
            closed = self.is_closed(t.get("status_id"))
            if open_only and closed:
                continue
            if closed_only and not closed:
                continue
            if ids is not None and t["id"] not in ids:
                continue
            if reportedby and reportedby not in (t.get("reportedby") or "").lower():
                continue
            if want_mid is not None and not self._ticket_mid_match(t, want_mid):
                continue
            if search:
                hay = [t.get("summary") or ""] + [
                    str(cf.get("value") or "") for cf in t.get("customfields", [])
                    if cf.get("id") in searchable]
                if not any(search in h.lower() for h in hay):
                    continue
            ok = True
            for name, value in filters:
                if name[:2].upper() == "CF":
                    cf = next((c for c in t.get("customfields", [])
                               if c.get("name", "").lower() == name.lower()), None)
                    have = None if cf is None else cf.get("value")
                else:
                    have = t.get(name)
                if have is None or str(have) != str(value):
                    ok = False
                    break
            if ok:
                out.append(t)
        order = query.get("order") or "id"
        desc = q_bool(query, "orderdesc")
        out.sort(key=lambda t: sort_key(t.get(order)), reverse=desc)
        total = len(out)
        page = self._page(query, out, max_page=100)
        return jresp(200, {"record_count": total,
                           "tickets": [self.v_ticket(t) for t in page]})

    # ---- actions
    def h_actions_post(self, agent, query, data):
        if not isinstance(data, list):
            fail_model("$", "The JSON value could not be converted to System.Collections."
                            "Generic.List`1[Halo.Models.Actions]. Path: $ | LineNumber: 0 "
                            "| BytePositionInLine: 1.")
        if not data:
            fail_model("$", "At least one action is required.")
        plans = []
        for i, item in enumerate(data):
            p = "$[%d]" % i
            if not isinstance(item, dict):
                fail_model(p, "The JSON value could not be converted to Action.")
            fields, und = self._declared("Actions", item, p, ACTION_COMPUTED)
            und += self._nested_undeclared("Attachment", item.get("attachments"),
                                           "attachments")
            tid = fields.get("ticket_id")
            if tid is None or tid <= 0:
                fail_exc("A ticket_id must be specified for an Action")
            if tid not in self.tickets:
                fail_msg("Ticket %d not found" % tid, 404)
            oid = body_int(item, "outcome_id", p)
            oname = body_str(item, "outcome", p)
            outcome = None
            if oid is not None and oid > 0:
                outcome = self.outcomes.get(oid)
            elif oname:
                name = oname.strip().lower()
                outcome = next((o for o in self.outcomes.values()
                                if (o.get("outcome") or "").lower() == name), None)
            if outcome is None:
                msg = "An Outcome must be entered for this Action"
                if self.faults["outcome_error"] == "json":
                    fail_exc(msg)
                raise ApiError(tresp(400, msg))
            fields["outcome"] = outcome["outcome"]
            fields["outcome_id"] = outcome["id"]
            ns = fields.get("new_status")
            if ns is not None and ns not in self.statuses:
                fail_exc("Status %d does not exist" % ns)
            fields["new_status"] = ns
            tt = fields.get("timetaken")
            if tt is not None and tt < 0:
                fail_exc("timetaken cannot be negative")
            fields["timetaken"] = tt if tt is not None else 0
            for k in ("hiddenfromuser", "sendemail"):
                fields[k] = bool(fields.get(k))
            atts = self._validate_attachments(item.get("attachments"), p + ".attachments")
            plans.append((tid, fields, atts, sorted(set(und))))
        results = []
        route = "POST /api/Actions"
        for tid, fields, atts, und in plans:
            self.note_undeclared(route, und)
            t = self.tickets[tid]
            ns = fields.get("new_status")
            if ns is not None:
                fields["old_status"] = t.get("status_id")
            rec = self._new_action(tid, fields, agent, route)
            self.meta["actions"][rec["id"]]["undeclared_fields"] = und
            if ns is not None and ns != t.get("status_id"):
                self.set_status(t, ns)
            made, warn = self._store_attachments(atts, tid, rec["id"], route)
            out = self.v_action(rec)
            if made:
                out["attachments"] = made
            if warn:
                out["_warning"] = warn
            results.append(out)
        return self._write_resp(self._write_status(True), results, "actions")

    def h_actions(self, agent, query, data):
        tid = q_int(query, "ticket_id")
        mid = query.get("internetmessageid")
        if mid and self.faults["internetmessageid_filter"] == "ignore":
            # the undocumented filter is dropped: the unfiltered list comes back
            out = [self.v_action(a) for a in sorted(self.actions.values(),
                                                     key=lambda a: a["id"])
                   if tid is None or a["ticket_id"] == tid]
            return jresp(200, {"record_count": len(out),
                               "actions": self._page(query, out)})
        if tid is None and not mid:
            return jresp(200, {"record_count": 0, "actions": []})
        out = []
        want = strip_angle(mid) if mid else None
        for a in sorted(self.actions.values(), key=lambda a: a["id"]):
            if tid is not None and a["ticket_id"] != tid:
                continue
            if want is not None and strip_angle(a.get("internet_message_id")) != want:
                continue
            out.append(self.v_action(a))
        if want is not None:
            # a ticket carrying the Message-ID counts as its first action
            have = {a["ticket_id"] for a in out}
            for t in sorted(self.tickets.values(), key=lambda t: t["id"]):
                if t["id"] in have or (tid is not None and t["id"] != tid):
                    continue
                if strip_angle(t.get("internet_message_id")) == want:
                    out.append({"id": 0, "ticket_id": t["id"], "actionnumber": 1,
                                "outcome": "Ticket Logged", "outcome_id": 0,
                                "note": t.get("details") or "",
                                "internet_message_id": t.get("internet_message_id"),
                                "datetime": t.get("dateoccurred")})
        total = len(out)
        return jresp(200, {"record_count": total, "actions": self._page(query, out)})

    def h_action(self, agent, query, data, aid):
        a = self.actions.get(int(aid))
        if a is None:
            fail_msg("Action %s not found" % aid, 404)
        return jresp(200, self.v_action(a))

    # ---- users (contacts)
    def h_users_post(self, agent, query, data):
        if not isinstance(data, list):
            fail_model("$", "The JSON value could not be converted to System.Collections."
                            "Generic.List`1[Halo.Models.Users]. Path: $ | LineNumber: 0 "
                            "| BytePositionInLine: 1.")
        if not data:
            fail_model("$", "At least one user is required.")
        plans = []
        for i, item in enumerate(data):
            p = "$[%d]" % i
            if not isinstance(item, dict):
                fail_model(p, "The JSON value could not be converted to Users.")
            vals, und = self._declared("Users", item, p,
                                       {"id", "_warning", "site_name", "client_name"})
            uid = body_int(item, "id", p)
            cur = None
            if uid is not None and uid > 0:
                cur = self.users.get(uid)
                if cur is None:
                    fail_msg("User %d not found" % uid, 404)
            rec = dict(cur) if cur else {}
            rec.update(vals)
            sid = rec.get("site_id")
            if sid is None:
                fail_exc("A Site must be specified for a User")
            if sid != int(sid):
                fail_model(p + ".site_id", "The JSON value could not be converted to "
                           "System.Int32.")
            sid = rec["site_id"] = int(sid)
            s = self.sites.get(sid)
            if s is None:
                fail_exc("Site %d does not exist" % sid)
            if rec.get("client_id") is None:
                rec["client_id"] = s.get("client_id")
            elif rec["client_id"] != s.get("client_id"):
                fail_exc("Site %d does not belong to Client %d" % (sid, rec["client_id"]))
            if not rec.get("name"):
                nm = " ".join(x for x in (rec.get("firstname"), rec.get("surname")) if x)
                rec["name"] = nm or rec.get("emailaddress") or ""
            if not rec["name"]:
                fail_exc("Please enter a Name for the User")
            rec.setdefault("inactive", False)
            plans.append((cur, rec, sorted(set(und))))
        results = []
        created = False
        route = "POST /api/Users"
        for cur, rec, und in plans:
            self.note_undeclared(route, und)
            if cur is None:
                created = True
                rec["id"] = self.next_user
                self.next_user += 1
                self.meta.setdefault("users", {})[rec["id"]] = {
                    "via": route, "agent_id": agent["id"], "undeclared_fields": und}
            self.users[rec["id"]] = rec
            results.append(self.v_user(rec))
        return self._write_resp(self._write_status(created), results, "users")

    # ---- attachments
    def h_attachment_post(self, agent, query, data):
        if not isinstance(data, list):
            fail_model("$", "The JSON value could not be converted to System.Collections."
                            "Generic.List`1[Halo.Models.Attachment]. Path: $ | LineNumber: "
                            "0 | BytePositionInLine: 1.")
        if not data:
            fail_model("$", "At least one attachment is required.")
        plans = []
        for i, item in enumerate(data):
            p = "$[%d]" % i
            if not isinstance(item, dict):
                fail_model(p, "The JSON value could not be converted to Attachment.")
            tid = body_int(item, "ticket_id", p)
            if tid is None:
                fail_msg("ticket_id is required")
            if tid not in self.tickets:
                fail_msg("Ticket %d not found" % tid, 404)
            aid = body_int(item, "action_id", p)
            if aid is not None and aid != 0:
                a = self.actions.get(aid)
                if a is None or a["ticket_id"] != tid:
                    fail_msg("Action %d not found on ticket %d" % (aid, tid))
            else:
                aid = None
            und = [k for k in item if k not in SPEC["schemas"]["Attachment"]]
            atts = self._validate_attachments([item], p)
            plans.append((tid, aid, atts, sorted(und)))
        made = []
        route = "POST /api/Attachment"
        for tid, aid, atts, und in plans:
            self.note_undeclared(route, und)
            m, _warn = self._store_attachments(atts, tid, aid, route)
            made += m
        return self._write_resp(self._write_status(True), made, "attachments")

    def h_attachments(self, agent, query, data):
        tid = q_int(query, "ticket_id")
        out = [self.v_attachment(a) for a in self.attachments.values()
               if tid is None or a["ticket_id"] == tid]
        return jresp(200, {"record_count": len(out), "attachments": out})

    def h_attachment(self, agent, query, data, aid):
        a = self.attachments.get(int(aid))
        if a is None:
            fail_msg("Attachment %s not found" % aid, 404)
        return jresp(200, self.v_attachment(a))

    # ---- lookups
    def _lookup(self, key, items):
        if self.faults["wrap_lists"]:
            return jresp(200, {key: items})
        return jresp(200, items)

    def h_tickettypes(self, agent, query, data):
        showall = q_bool(query, "showall")
        items = [dict(t) for t in sorted(self.tickettypes.values(), key=lambda t: t["id"])
                 if showall or not t.get("hidden")]
        return self._lookup("tickettypes", items)

    def h_statuses(self, agent, query, data):
        excl = q_bool(query, "excludeclosed")
        if self.faults["status_excludeclosed"] == "ignore":
            excl = False
        return self._lookup("statuses", [self.v_status(s) for s in sorted(
            self.statuses.values(), key=lambda s: s["id"])
            if not (excl and s.get("closed"))])

    def h_outcomes(self, agent, query, data):
        return self._lookup("outcomes", [dict(o) for o in sorted(
            self.outcomes.values(), key=lambda o: o["id"])])

    # ============================================================= CONTROL
    def control(self, method, path, query, body):
        with self.lock:
            p = path.lower().rstrip("/")
            try:
                data = parse_json(body) if body.strip() else {}
            except ValueError as exc:
                return jresp(400, {"error": "invalid JSON: %s" % exc})
            if method == "POST" and not isinstance(data, dict):
                return jresp(400, {"error": "a JSON object is expected"})
            if p == "/_sim/faults" and method == "GET":
                return jresp(200, self.faults_view())
            if p == "/_sim/faults" and method == "POST":
                return self.set_faults(data)
            if p == "/_sim/reset" and method == "POST":
                fx = data.get("fixture")
                if fx is not None:
                    try:
                        validate_fixture(fx)
                    except ValueError as exc:
                        return jresp(400, {"error": "bad fixture: %s" % exc})
                self.reset(fx, keep_tokens=bool(data.get("keep_tokens")))
                log("state reset")
                return jresp(200, {"ok": True})
            if p == "/_sim/state" and method == "GET":
                return jresp(200, self.state_view())
            if p == "/_sim/requests" and method == "GET":
                since = 0
                try:
                    since = int(query.get("since") or 0)
                except ValueError:
                    return jresp(400, {"error": "since must be an integer"})
                return jresp(200, {"requests": [r for r in self.request_log
                                                if r["seq"] > since]})
            if p == "/_sim/token" and method == "POST":
                return self.sim_token(data)
            if p == "/_sim/clock" and method == "GET":
                return jresp(200, {"offset": self.clock_offset, "now": self.now()})
            if p == "/_sim/clock" and method == "POST":
                adv = data.get("advance", 0)
                if not isinstance(adv, (int, float)) or isinstance(adv, bool) \
                        or not math.isfinite(adv) or adv < 0:
                    return jresp(400, {"error": "advance must be a non-negative number"})
                self.clock_offset += adv
                return jresp(200, {"offset": self.clock_offset, "now": self.now()})
            return jresp(404, {"error": "unknown control route %s %s" % (method, path)})

    def faults_view(self):
        out = copy.deepcopy(self.faults)
        out["clock_offset"] = self.clock_offset
        return out

    def set_faults(self, data):
        unknown = [k for k in data if k not in FAULT_KEYS and k not in FAULT_ACTIONS]
        if unknown:
            return jresp(400, {"error": "unknown fault keys: %s" % ", ".join(unknown)})
        new = copy.deepcopy(self.faults)

        def nonneg_int(k, v, hi=10**9):
            if not is_int(v) or v < 0 or v > hi:
                raise ValueError("%s must be an integer in 0..%d" % (k, hi))
            return v

        def boolean(k, v):
            if not isinstance(v, bool):
                raise ValueError("%s must be true or false" % k)
            return v
        try:
            for k, v in data.items():
                if k == "status_burst":
                    if v is None:
                        new[k] = {"status": 503, "count": 0}
                        continue
                    if not isinstance(v, dict):
                        raise ValueError("status_burst must be an object")
                    st = v.get("status", 503)
                    if not is_int(st) or not 100 <= st <= 599:
                        raise ValueError("status_burst.status must be 100..599")
                    new[k] = {"status": st, "count": nonneg_int("count", v.get("count", 1))}
                elif k in ("latency_ms",):
                    new[k] = nonneg_int(k, v, 60000)
                elif k in ("drop_after_request", "drop_before_apply", "unauthorized_next",
                           "crash_next"):
                    new[k] = nonneg_int(k, v)
                elif k == "auth_down":
                    if v not in (True, False, "close"):
                        raise ValueError("auth_down must be true, false or \"close\"")
                    new[k] = v
                elif k == "rate_limit":
                    if not isinstance(v, dict):
                        raise ValueError("rate_limit must be an object")
                    lim = nonneg_int("rate_limit.limit", v.get("limit",
                                                              new[k]["limit"]))
                    win = v.get("window", new[k]["window"])
                    if not is_int(win) or win < 1:
                        raise ValueError("rate_limit.window must be a positive integer")
                    new[k] = {"limit": lim, "window": win}
                elif k in ("retry_after", "wrap_lists", "warning", "tenant_required"):
                    new[k] = boolean(k, v)
                elif k == "rotation":
                    if v not in ("rotate", "reuse", "omit"):
                        raise ValueError("rotation must be rotate, reuse or omit")
                    new[k] = v
                elif k == "create_status":
                    if v not in (200, 201):
                        raise ValueError("create_status must be 200 or 201")
                    new[k] = v
                elif k == "token_lifetime":
                    if not is_int(v) or v < 1:
                        raise ValueError("token_lifetime must be a positive integer")
                    new[k] = v
                elif k == "outcome_error":
                    if v not in ("text", "json"):
                        raise ValueError("outcome_error must be text or json")
                    new[k] = v
                elif k == "client_domain":
                    if v not in ("both", "client", "site", "substring", "ignore"):
                        raise ValueError("client_domain must be both, client, site, "
                                         "substring or ignore")
                    new[k] = v
                elif k in ("status_excludeclosed", "internetmessageid_filter",
                           "cf_filter"):
                    if v not in ("honour", "ignore"):
                        raise ValueError("%s must be honour or ignore" % k)
                    new[k] = v
                elif k == "hasbeenclosed_on_reopen":
                    if v not in ("keep", "clear"):
                        raise ValueError("hasbeenclosed_on_reopen must be keep or clear")
                    new[k] = v
                elif k == "write_shape":
                    if v not in ("auto", "object", "array", "wrapped"):
                        raise ValueError("write_shape must be auto, object, array or "
                                         "wrapped")
                    new[k] = v
                elif k == "attachment_fail":
                    if v is False or v is None:
                        v = "off"
                    if v is True:
                        v = "all"
                    if not (v in ("off", "all") or (is_int(v) and v >= 1)):
                        raise ValueError("attachment_fail must be \"off\", \"all\" or "
                                         "N >= 1 (only the Nth attachment fails)")
                    new[k] = v
                elif k in FAULT_ACTIONS:
                    boolean(k, v)
        except ValueError as exc:
            return jresp(400, {"error": str(exc)})
        if "attachment_fail" in data:
            self.attachment_seq = 0
        self.faults = new
        if data.get("revoke_access_tokens"):
            n = len(self.access_tokens)
            self.access_tokens.clear()
            log("fault: revoked %d access tokens" % n)
        if data.get("revoke_refresh_tokens"):
            for r in self.refresh_tokens.values():
                r["alive"] = False
            log("fault: revoked all refresh tokens")
        log("faults set: %s" % json.dumps(data, sort_keys=True))
        return jresp(200, self.faults_view())

    def sim_token(self, data):
        email = (data.get("agent_email") or "")
        scope = data.get("scope") or "all offline_access"
        if not isinstance(email, str) or not isinstance(scope, str):
            return jresp(400, {"error": "agent_email and scope must be strings"})
        agent = next((a for a in self.agents.values()
                      if (a.get("email") or "").lower() == email.lower()), None)
        if agent is None:
            return jresp(400, {"error": "unknown agent_email"})
        bad = self.check_scope(scope)
        if bad:
            return jresp(400, {"error": "invalid_scope", "error_description": " ".join(bad)})
        cid = data.get("client_id") or next(iter(self.oauth_clients), "halosim")
        if cid not in self.oauth_clients:
            return jresp(400, {"error": "unknown client_id"})
        self.token_counts["issued"] += 1
        body = self.issue_tokens(agent["id"], cid, scope, "offline_access" in scope.split())
        body["agent_id"] = agent["id"]
        return jresp(200, body)

    def state_view(self):
        def created(table, seed_ids, view):
            return [view(v) for k, v in sorted(table.items()) if k not in seed_ids]
        tickets = []
        for t in created(self.tickets, self.seed_ticket_ids, self.v_ticket):
            t["_sim"] = self.meta["tickets"].get(t["id"], {})
            tickets.append(t)
        actions = []
        for a in created(self.actions, self.seed_action_ids, self.v_action):
            a["_sim"] = self.meta["actions"].get(a["id"], {})
            actions.append(a)
        atts = [{"id": a["id"], "ticket_id": a["ticket_id"], "action_id": a["action_id"],
                 "filename": a["filename"], "size": a["filesize"], "sha256": a["sha256"],
                 "isimage": a["isimage"], "content_type": a["content_type"],
                 "via": a["_via"]} for a in self.attachments.values()]
        seed_t = [self.v_ticket(self.tickets[i]) for i in sorted(self.seed_ticket_ids)]
        users = []
        for u in created(self.users, self.seed_user_ids, dict):
            u["_sim"] = self.meta.get("users", {}).get(u["id"], {})
            users.append(u)
        now = self.now()
        return {
            "requests": copy.deepcopy(self.requests),
            "tickets": tickets, "actions": actions, "attachments": atts,
            "attachments_refused": copy.deepcopy(self.attachments_refused),
            "users": users,
            "seed_tickets": seed_t,
            "closed_status_ids": sorted(i for i in self.statuses if self.is_closed(i)),
            "undeclared_fields": [{"route": r, "field": f, "count": n}
                                  for (r, f), n in self.undeclared.items()],
            "undeclared_params": [{"route": r, "param": q, "count": n}
                                  for (r, q), n in self.undeclared_q.items()],
            "tokens": dict(self.token_counts,
                           active_access=sum(1 for r in self.access_tokens.values()
                                             if r["exp"] > now),
                           active_refresh=sum(1 for r in self.refresh_tokens.values()
                                              if r["alive"])),
            "faults": self.faults_view(),
            "rate_window_used": len(self.rl_window),
        }


# ------------------------------------------------------------------ parsing

def parse_form(body, reject_duplicates=False):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("form body is not UTF-8")
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    out = {}
    for k, v in pairs:
        if k in out and reject_duplicates:
            raise ValueError("parameter %s repeated" % k)
        out.setdefault(k, v)
    return out


def _bad_constant(name):
    raise ValueError("invalid JSON constant %s" % name)


def parse_json(body):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("request body is not valid UTF-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ValueError("A non-empty request body is required.")
    try:
        return json.loads(text, parse_constant=_bad_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply")
    except json.JSONDecodeError as exc:
        raise ValueError("'%s' is invalid JSON. LineNumber: %d | BytePositionInLine: %d."
                         % (text[exc.pos:exc.pos + 1], exc.lineno - 1, exc.colno - 1))


def validate_fixture(fx):
    if not isinstance(fx, dict):
        raise ValueError("fixture must be an object")
    for key in ("agents", "clients", "sites", "users", "tickettypes", "statuses",
                "outcomes", "tickets", "actions", "customfields", "priorities"):
        seen = set()
        for item in fx.get(key, []):
            if not isinstance(item, dict) or not is_int(item.get("id")):
                raise ValueError("%s: every entry needs an integer id" % key)
            if item["id"] in seen:
                raise ValueError("%s: duplicate id %d" % (key, item["id"]))
            seen.add(item["id"])
    for c in fx.get("oauth_clients", []):
        if not isinstance(c, dict) or not isinstance(c.get("client_id"), str):
            raise ValueError("oauth_clients: every entry needs a client_id")
        if not isinstance(c.get("redirect_uris", []), list):
            raise ValueError("oauth_clients: redirect_uris must be a list")
    clients = {c["id"] for c in fx.get("clients", [])}
    sites = {s["id"]: s for s in fx.get("sites", [])}
    for s in sites.values():
        if s.get("client_id") not in clients:
            raise ValueError("site %d: unknown client_id" % s["id"])
    for u in fx.get("users", []):
        s = sites.get(u.get("site_id"))
        if s is None or s.get("client_id") != u.get("client_id"):
            raise ValueError("user %d: site/client inconsistent" % u["id"])
    for o in fx.get("outcomes", []):
        if not isinstance(o.get("outcome"), str):
            raise ValueError("outcome %d: needs an 'outcome' name" % o["id"])
    for r in fx.get("ticket_rules", []):
        if not isinstance(r, dict) or not is_int(r.get("id")) or \
                not isinstance(r.get("name"), str):
            raise ValueError("ticket_rules: every rule needs an integer id and a name")
        if not isinstance(r.get("match", {}), dict) or not isinstance(r.get("set", {}), dict):
            raise ValueError("ticket rule %d: match and set must be objects" % r["id"])
    for st in fx.get("statuses", []):
        if "isclosed" in st:
            raise ValueError("status %d: use \"closed\" (a fixture fact), not isclosed"
                             % st["id"])
    if not is_int(fx.get("filler_clients", 0)) or fx.get("filler_clients", 0) < 0:
        raise ValueError("filler_clients must be a non-negative integer")
    tids = {t["id"] for t in fx.get("tickets", [])}
    for a in fx.get("actions", []):
        if a.get("ticket_id") not in tids:
            raise ValueError("action %d: unknown ticket_id" % a["id"])


# ------------------------------------------------------------------ HTTP glue

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "halosim/1.0"
    sys_version = ""
    timeout = 120      # idle keep-alive connections are closed after this

    def log_message(self, fmt, *args):   # base-class messages (malformed requests)
        log("%s %s" % (self.server.kind, fmt % args))

    def log_request(self, code="-", size="-"):
        pass                              # we log in _dispatch instead

    def handle_expect_100(self):
        # Refuse oversize uploads before the client sends them.
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        if n > MAX_BODY:
            self._oversize_expect = True
            return True
        return super().handle_expect_100()

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self):
        """Returns (body bytes, error Resp or None)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            try:
                while True:
                    line = self.rfile.readline(1024)
                    if not line.endswith(b"\n"):
                        raise ValueError("bad chunk header")
                    size = int(line.split(b";")[0].strip(), 16)
                    if size < 0:
                        raise ValueError("bad chunk size")
                    if size == 0:
                        while True:
                            tl = self.rfile.readline(8192)
                            if tl in (b"\r\n", b"\n", b""):
                                break
                        break
                    if len(data) + size > MAX_BODY:
                        r = tresp(413, "Request body too large")
                        r.close = True
                        return b"", r
                    chunk = self.rfile.read(size)
                    if len(chunk) != size:
                        raise ValueError("short chunk")
                    data += chunk
                    self.rfile.readline(16)
            except ValueError as exc:
                r = tresp(400, "Bad chunked encoding: %s" % exc)
                r.close = True
                return b"", r
            return bytes(data), None
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b"", None
        try:
            n = int(cl.strip())
            if n < 0:
                raise ValueError
        except ValueError:
            r = tresp(400, "Bad Content-Length")
            r.close = True
            return b"", r
        if n > MAX_BODY:
            if not getattr(self, "_oversize_expect", False) and n <= DRAIN_LIMIT:
                left = n
                while left > 0:
                    got = self.rfile.read(min(left, 1 << 20))
                    if not got:
                        break
                    left -= len(got)
            r = jresp(413, {"Message": "Request body too large (limit %d bytes)" % MAX_BODY})
            r.close = True
            return b"", r
        body = self.rfile.read(n) if n else b""
        if len(body) != n:
            r = tresp(400, "Truncated body")
            r.close = True
            return b"", r
        return body, None

    def _dispatch(self, method):
        sim = self.server.sim
        kind = self.server.kind
        t0 = time.monotonic()
        path, query = "/", {}
        resp = None
        record = True
        try:
            self._oversize_expect = getattr(self, "_oversize_expect", False)
            parts = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parts.path) or "/"
            query = {}
            for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
                query.setdefault(k.lower() if kind == "api" else k, v)
            body, err = self._read_body()
            if kind == "api" and path.lower().startswith("/_sim/"):
                record = False
                resp = err or sim.control(method, path, query, body)
            elif err is not None:
                resp = err
                resp.route = "%s (oversize)" % method
            else:
                lat = sim.faults["latency_ms"]
                if lat:
                    time.sleep(lat / 1000.0)
                if kind == "auth":
                    resp = sim.auth_request(method, path, query, self.headers, body)
                else:
                    resp = sim.api_request(method, path, query, self.headers, body)
        except Exception as exc:   # never crash: log and answer 500
            log("500 on %s %s: %s\n%s" % (method, path, exc, traceback.format_exc()),
                force=True)
            resp = jresp(500, {"Message": "An error has occurred.",
                               "ExceptionMessage": str(exc)[:200],
                               "ExceptionType": type(exc).__name__})
            resp.route = resp.route or "%s (error)" % method
        finally:
            self._oversize_expect = False
        if record:
            try:
                sim.record(kind, method, path, query, resp)
            except Exception as exc:
                log("record failed: %s" % exc, force=True)
        ms = (time.monotonic() - t0) * 1000
        log("%s %s %s -> %s %.1fms%s" % (kind, method, path,
                                           "DROP" if resp.drop else resp.status, ms,
                                           " agent=%s" % resp.agent_id
                                           if resp.agent_id else ""))
        if resp.drop:
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(resp)

    def _send(self, resp):
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.ctype)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers:
            self.send_header(k, v)
        if resp.close:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(resp.body)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr, sim, kind):
        self.sim = sim
        self.kind = kind
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, BrokenPipeError)):
            log("%s connection error from %s: %s" % (self.kind, client_address[0], exc))
            return
        log("%s unhandled error: %s" % (self.kind, traceback.format_exc()), force=True)


# ------------------------------------------------------------------ main

def main(argv=None):
    global QUIET
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="HaloPSA API simulator for tests")
    ap.add_argument("--port", type=int, default=0, help="resource server port (0 = free)")
    ap.add_argument("--auth-port", type=int, default=0, help="auth server port (0 = free)")
    ap.add_argument("--fixture", default=os.path.join(here, "fixture.json"))
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--rotation", choices=("rotate", "reuse", "omit"), default="rotate")
    ap.add_argument("--rate-limit", type=int, default=300,
                    help="requests per window; 0 disables")
    ap.add_argument("--rate-window", type=int, default=300, help="window in seconds")
    ap.add_argument("--retry-after", choices=("on", "off"), default="on")
    ap.add_argument("--wrap-lists", choices=("off", "on"), default="off")
    ap.add_argument("--token-lifetime", type=int, default=None,
                    help="access token lifetime, seconds (default: fixture or 3600)")
    ap.add_argument("--create-status", type=int, choices=(200, 201), default=200)
    ap.add_argument("--ready-file")
    ap.add_argument("--quiet", action="store_true", help="do not log every request")
    opts = ap.parse_args(argv)
    QUIET = opts.quiet
    if opts.rate_window < 1 or opts.rate_limit < 0:
        ap.error("--rate-window must be >= 1 and --rate-limit >= 0")
    if opts.token_lifetime is not None and opts.token_lifetime < 1:
        ap.error("--token-lifetime must be >= 1")
    with open(opts.fixture, "r", encoding="utf-8") as fh:
        fixture = json.load(fh)
    validate_fixture(fixture)
    if opts.token_lifetime is None:
        opts.token_lifetime = int(fixture.get("token_lifetime", 3600))
    sim = Sim(fixture, opts)
    api = Server((opts.bind, opts.port), sim, "api")
    auth = Server((opts.bind, opts.auth_port), sim, "auth")
    host = opts.bind if opts.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = "[%s]" % host
    sim.auth_base = "http://%s:%d/auth" % (host, auth.server_address[1])
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                daemon=True) for s in (api, auth)]
    for t in threads:
        t.start()
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ready = json.dumps({"port": api.server_address[1], "auth_port": auth.server_address[1],
                        "pid": os.getpid()})
    if opts.ready_file:
        tmp = "%s.tmp.%d" % (opts.ready_file, os.getpid())
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(ready + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, opts.ready_file)
    sys.stdout.write(ready + "\n")
    sys.stdout.flush()
    log("ready: api=%s:%d auth=%s:%d fixture=%s" % (
        opts.bind, api.server_address[1], opts.bind, auth.server_address[1],
        opts.fixture), force=True)
    while not stop.wait(0.5):
        pass
    log("shutting down", force=True)
    for s in (api, auth):
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
