#!/usr/bin/env python3
"""diff.py - differential check of the project's mail extraction against
Python's standard email package (an independent parser).

    diff.py MIME_JSON FILE...

MIME_JSON is build/mime-json (one JSON line per message: what the product
takes from it). For each FILE the same fields are computed with
email.policy.default: subject, From address and display name, the HTML and
plain-text bodies, and every attachment's name, size and SHA-256. Fields
are compared after the normalisations below; a difference is allowed only
when it is one of the deliberate ones in ALLOWED (each says why), else it
fails the run. Prints "diff: N passed, M failed" and the differences
(DIFF_VERBOSE=1: the allowed ones too).

Normalisations (not differences): CRLF vs LF and blanks at line ends in
bodies, runs of blanks in headers (the product unfolds and collapses them),
letter case of addresses.
"""
import email
import email.policy
import hashlib
import json
import os
import re
import subprocess
import sys

# Deliberate differences: (field, kind) -> why. A difference of a field is
# allowed when the rule named by kind recognises it (see allowed()).
ALLOWED = {
    # the product reads undeclared or mislabelled 8-bit text as
    # Windows-1252 (as mail clients do); the oracle leaves U+FFFD
    ("body", "oracle-replacement"): "better charset recovery",
    ("body", "oracle-error"): "oracle failed on the header",
    ("subject", "oracle-replacement"): "better charset recovery",
    ("from_name", "oracle-replacement"): "better charset recovery",
    # encoded words the oracle leaves raw (inside a word, bad charset name,
    # Q text with blanks): the product decodes what it can
    ("subject", "oracle-raw-words"): "decodes encoded words leniently",
    ("from_name", "oracle-raw-words"): "decodes encoded words leniently",
    # the oracle could not parse the header at all
    ("subject", "oracle-error"): "oracle failed on the header",
    ("from", "oracle-error"): "oracle failed on the header",
    ("from_name", "oracle-error"): "oracle failed on the header",
    # S/MIME and PGP signature parts are no use in a ticket
    ("attachment", "signature"): "signature parts dropped",
    # a winmail.dat is unpacked into its files (and the body)
    ("attachment", "tnef"): "winmail.dat unpacked",
    ("body", "tnef"): "winmail.dat unpacked",
    # message/rfc822 is re-serialised as a CRLF .eml: same name, other bytes
    ("attachment", "rfc822"): "attached mail written as .eml",
    # multipart/alternative: renderings other than HTML and text are left out
    ("attachment", "other-rendering"): "other renderings of the body left out",
    # the oracle's body choice stops at the first part of a mixed; the
    # product takes the first text part, and nested HTML (Apple Mail)
    ("body", "body-choice"): "body choice follows mail clients",
    # a text part that is the body for one is an attachment for the other
    ("attachment", "body-choice"): "body choice follows mail clients",
    # parts the product could not decode faithfully are listed, not kept
    ("attachment", "undecodable"): "damaged parts listed, not uploaded",
    # the product's part and nesting limits
    ("attachment", "limit"): "part and nesting limits",
    ("attachment", "size"): "size limits",
    # text attachments: the line end before the boundary, CRLF vs LF
    ("attachment", "line-ends"): "CRLF text",
    # a multipart whose boundary never occurs: the oracle keeps its raw
    # text as one part, the product finds no parts in it
    ("attachment", "malformed-multipart"): "unsplittable multipart",
    # RFC 2047 6.2: blanks between adjacent encoded words are not text;
    # the oracle keeps them
    ("subject", "encoded-word-blanks"): "RFC 2047 6.2",
    ("from_name", "encoded-word-blanks"): "RFC 2047 6.2",
    # an address without a domain is no sender address for the product
    ("from", "no-domain"): "addresses need a domain",
    ("body", "limit"): "part and nesting limits",
}

# Single messages where the two parsers read a malformed message each in
# its own defensible way: (path suffix, field) -> why.
ALLOWED_FILES = {
    # nested multiparts reusing their parent's boundary: which part ends
    # where is ambiguous; the oracle finds one more (empty) part
    ("eml/malformed/013.eml", "attachment"): "ambiguous nested boundaries",
    ("eml/malformed/014.eml", "attachment"): "ambiguous nested boundaries",
    # "Content-Transfer-Encoding: quoted-printable" followed by blanks: the
    # oracle does not decode it, the product does
    ("eml/thirdparty/003.eml", "attachment"): "encoding name with blanks",
    # interleaved fragments of several copies of one message (a fuzzer's
    # output): the oracle finds no header at all; the product takes the
    # first header block, and the HTML part's text runs into the rest
    ("eml/malformed/019.eml", "body"): "interleaved fragments",
    # RFC 8621's body-structure example: the product has one body (the
    # first text part, "A"); the HTML "E" of a later alternative is kept
    # as an attachment
    ("eml/rfc/007.eml", "body"): "one body: the first text part",
}


def norm_ws(s):
    return re.sub(r"\s+", " ", s or "").strip()


def norm_body(s):
    if s is None:
        return ""
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "")
    return "\n".join(l.rstrip() for l in s.split("\n")).strip()


def oracle(path):
    """What Python's email package takes from the message at PATH."""
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {"errors": set()}
    if not msg.keys():
        # no header at all (a byte-order mark, a broken first line): the
        # oracle saw none of them
        out["errors"].update(("subject", "from", "from_name", "body"))
    try:
        out["subject"] = str(msg["subject"]) if msg["subject"] is not None else None
    except Exception:
        out["errors"].add("subject")
        out["subject"] = None
    out["from"] = out["from_name"] = None
    try:
        f = msg["from"]
        if f is not None and f.addresses:
            out["from"] = f.addresses[0].addr_spec.lower() or None
            out["from_name"] = f.addresses[0].display_name
        elif f is not None:
            out["from_name"] = ""
    except Exception:
        out["errors"].update(("from", "from_name"))

    def content(part):
        try:
            return part.get_content()
        except Exception:
            payload = part.get_payload(decode=True) or b""
            return payload.decode("utf-8", "replace")

    html = text = None
    body_parts = set()
    try:
        b = msg.get_body(preferencelist=("html",))
        html = content(b) if b is not None else None
        if b is not None:
            body_parts.add(id(b))
        b = msg.get_body(preferencelist=("plain",))
        text = content(b) if b is not None else None
        if b is not None:
            body_parts.add(id(b))
    except Exception:
        out["errors"].add("body")
    out["html"], out["text"] = html, text
    atts = []

    out["body_info"] = {}

    def leaf(part, in_alt, signature):
        ct = part.get_content_type()
        if id(part) in body_parts:
            # the oracle's body: compared as a body
            payload = part.get_payload(decode=True) or b""
            out["body_info"][ct] = {
                "variants": {hashlib.sha256(v).hexdigest()
                             for v in _line_end_variants(payload)},
                "in_alternative": in_alt}
            return
        payload = None
        if ct != "message/rfc822" and not ct.startswith("multipart/"):
            payload = part.get_payload(decode=True)
        try:
            name = part.get_filename()
        except Exception:
            name = None
        atts.append({
            "name": name,
            "type": ct,
            "size": len(payload) if payload is not None else None,
            "sha256": hashlib.sha256(payload).hexdigest()
            if payload is not None else None,
            "signature": signature or ct in (
                "application/pgp-signature", "application/pkcs7-signature",
                "application/x-pkcs7-signature"),
            "in_alternative": in_alt,
            "payload": payload,
            "text": content(part) if ct.startswith("text/") and
            payload is not None else None,
            # a multipart the oracle could not split (no usable boundary)
            "malformed_multipart": ct.startswith("multipart/"),
        })

    def walk(part, in_alt, signature, depth):
        # message/* parts are one attachment (the product keeps them whole)
        if depth > 50:
            return
        if not part.is_multipart() or part.get_content_maintype() == "message":
            leaf(part, in_alt, signature)
            return
        ct = part.get_content_type()
        children = part.get_payload()
        for i, child in enumerate(children):
            walk(child, in_alt or ct == "multipart/alternative",
                 signature or (ct == "multipart/signed" and i > 0), depth + 1)

    walk(msg, False, False, 0)
    out["attachments"] = atts
    return out


def has_raw_words(s):
    return s is not None and "=?" in s


def compare(ours, theirs):
    """List of (field, kind, detail); kind None means not allowed."""
    diffs = []

    def header(field):
        a, b = norm_ws(ours.get(field)), norm_ws(theirs.get(field))
        if field == "from":
            a, b = a.lower(), b.lower()
        if a == b:
            return
        if field in theirs["errors"]:
            kind = "oracle-error"
        elif field == "from" and "@" not in b:
            kind = "no-domain"
        elif re.sub(r"\s", "", a) == re.sub(r"\s", "", b):
            kind = "encoded-word-blanks"
        elif "\ufffd" in b:
            kind = "oracle-replacement"
        elif has_raw_words(b) and not has_raw_words(a):
            kind = "oracle-raw-words"
        else:
            kind = None
        diffs.append((field, kind, "%r != oracle %r" % (a[:80], b[:80])))

    for field in ("subject", "from", "from_name"):
        header(field)

    tnef = any(a.get("tnef") for a in ours["attachments"])
    truncated = ours.get("truncated")
    ours_bodies = {norm_body(ours.get("html")), norm_body(ours.get("text"))}
    ours_bodies.discard("")
    our_shas = {a.get("sha256") for a in ours["attachments"]}
    raw_mime = re.compile(r"^content-type:", re.I | re.M)
    for field in ("html", "text"):
        a, b = norm_body(ours.get(field)), norm_body(theirs.get(field))
        if a == b:
            continue
        info = theirs["body_info"].get("text/" + ("html" if field == "html"
                                                  else "plain"), {})
        if raw_mime.search(a) and not raw_mime.search(b):
            kind = None         # raw MIME in the note: never deliberate
        elif "body" in theirs["errors"]:
            kind = "oracle-error"
        elif "\ufffd" in b:
            kind = "oracle-replacement"
        elif tnef:
            kind = "tnef"
        elif truncated:
            kind = "limit"
        elif b == "" or (b in a and len(b) > 0):
            # the oracle found no such body (its get_body() stops at the
            # first part of a mixed), or the product joined parts
            kind = "body-choice"
        elif a == "" and our_shas & info.get("variants", set()) and \
                not info.get("in_alternative"):
            # the product kept the oracle's body as an attachment: a
            # second text part of a mixed, after the body
            kind = "body-choice"
        else:
            kind = None
        diffs.append(("body", kind, "%s: %r != oracle %r" %
                      (field, a[:60], b[:60])))

    # attachments: the oracle lists every leaf; drop the ones that are a
    # body on our side
    mine = [a for a in ours["attachments"]]
    by_sha = {}
    for a in mine:
        if a.get("sha256"):
            by_sha.setdefault(a["sha256"], []).append(a)
    for t in theirs["attachments"]:
        if t["sha256"] is None:
            if t["type"] == "message/rfc822":
                continue        # compared by name below, if named
            continue
        if by_sha.get(t["sha256"]):
            a = by_sha[t["sha256"]].pop()
            if t["name"] and norm_ws(t["name"]) != norm_ws(a["name"]):
                diffs.append(("attachment", None, "name %r != oracle %r" %
                              (a["name"], t["name"])))
            continue
        # not among ours with the same bytes: why?
        if t["type"].startswith("text/") and _line_end_variant(t, by_sha):
            diffs.append(("attachment", "line-ends", "%s %s: line ends" %
                          (t["type"], t["name"])))
            continue
        try:
            body_text = t["type"].startswith("text/")
        except Exception:
            body_text = False
        if t["signature"]:
            kind = "signature"
        elif t["malformed_multipart"]:
            kind = "malformed-multipart"
        elif t["type"] in ("application/ms-tnef", "application/vnd.ms-tnef") or \
                (t["name"] or "").lower() == "winmail.dat":
            kind = "tnef"
        elif t["name"] and any(a["name"] == t["name"] and a.get("skip")
                               for a in mine):
            why = [a["skip"] for a in mine
                   if a["name"] == t["name"] and a.get("skip")][0]
            kind = "undecodable" if "damaged" in why else \
                "limit" if "parts" in why else "size"
        elif truncated:
            kind = "limit"
        elif t["in_alternative"]:
            kind = "other-rendering"
        elif body_text and t.get("text") and any(
                norm_body(t["text"]) in b for b in ours_bodies):
            kind = "body-choice"        # taken as (part of) the body
        else:
            kind = None
        diffs.append(("attachment", kind, "%s %s (%s bytes) missing" %
                      (t["type"], t["name"], t["size"])))
    return diffs


def _line_end_variants(p):
    """P with the line end before a boundary dropped or added, and with
    CRLF for LF."""
    variants = {p, p.rstrip(b"\r\n"), p + b"\n", p + b"\r\n",
                p.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")}
    return variants | {v.rstrip(b"\r\n") for v in list(variants)}


def _line_end_variant(t, by_sha):
    """Is one of ours the oracle's text part T with other line ends (the
    line end before a boundary, CRLF for LF)? Consumes the match."""
    for v in _line_end_variants(t["payload"]):
        sha = hashlib.sha256(v).hexdigest()
        if by_sha.get(sha):
            by_sha[sha].pop()
            return True
    return False


def main():
    if len(sys.argv) < 3:
        print("usage: diff.py MIME_JSON FILE...", file=sys.stderr)
        return 2
    tool, files = sys.argv[1], sys.argv[2:]
    out = subprocess.run([tool] + files, capture_output=True, check=False)
    lines = out.stdout.decode("utf-8", "replace").splitlines()
    if out.returncode != 0 or len(lines) != len(files):
        print("diff: mime-json failed (%d lines for %d files): %s" %
              (len(lines), len(files), out.stderr.decode()[-500:]))
        return 1
    passed = failed = allowed = 0
    for path, line in zip(files, lines):
        ours = json.loads(line)
        name = os.path.relpath(path)
        if "error" in ours:
            print("FAIL %s: the product refused it: %s" % (name, ours["error"]))
            failed += 1
            continue
        try:
            theirs = oracle(path)
        except Exception as e:  # the oracle crashed: nothing to compare
            print("note %s: oracle failed (%s)" % (name, e))
            passed += 1
            continue
        diffs = compare(ours, theirs)
        per_file = {f: why for (suffix, f), why in ALLOWED_FILES.items()
                    if path.endswith(suffix)}
        bad = [d for d in diffs if d[0] not in per_file and
               (d[1] is None or (d[0], d[1]) not in ALLOWED)]
        for field, kind, detail in diffs:
            if (field, kind) in ALLOWED:
                allowed += 1
                if os.environ.get("DIFF_VERBOSE"):
                    print("allowed %s: %s (%s): %s" % (name, field,
                          ALLOWED[(field, kind)], detail))
        for field, kind, detail in bad:
            print("FAIL %s: %s: %s" % (name, field, detail))
        if bad:
            failed += 1
        else:
            passed += 1
    print("diff: %d deliberate differences allowed (DIFF_VERBOSE=1 lists"
          " them)" % allowed)
    print("diff: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
