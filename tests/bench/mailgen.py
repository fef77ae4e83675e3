#!/usr/bin/env python3
"""mailgen.py - reproducible benchmark mail (seeded RNG, stdlib only).

    mailgen.py OUTDIR COUNT [SEED]

Writes OUTDIR/00000.wire ... : complete RFC 5322 messages already in SMTP
DATA form (CRLF line ends, dot-stuffed, ending with CRLF.CRLF), and
OUTDIR/manifest.json ({"count", "seed", "bytes", "sizes": {...}, "messages":
[{"file", "from", "size", "kind"}]}).  The mix:

  70 %  "text"   text/plain or multipart/alternative, 5-50 KB (log-uniform)
  20 %  "rich"   multipart/alternative + an inline image, 50-500 KB
  10 %  "attach" multipart/mixed with one or two base64 attachments, 0.5-2 MB

Every message has its own sender (so the per-sender loop cap never applies)
and its own Message-ID (so the dedup path is not what is measured).  The
recipient is support@acme.example, an intake route of tests/e2e/daemon.sh.
"""
import base64
import json
import math
import os
import random
import sys

RCPT = "support@acme.example"
WORDS = ("printer floor jammed again server room backup failed laptop boot "
         "screen password reset vpn drops every hour invoice attached please "
         "urgent mailbox full cannot send receive outlook crashed teams call "
         "license renewal firewall rule switch port cable monitor keyboard "
         "the a to of and in for on with is it this that we you our your "
         "thanks regards hello hi morning issue ticket update status").split()


def paragraphs(rng, n):
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 120))]
        text = " ".join(words).capitalize() + "."
        # wrap at ~72 columns
        lines, cur = [], ""
        for w in text.split(" "):
            if len(cur) + len(w) + 1 > 72:
                lines.append(cur)
                cur = w
            else:
                cur = (cur + " " + w) if cur else w
        lines.append(cur)
        out.append("\r\n".join(lines) + "\r\n\r\n")
    return out


def text_of(rng, pool, size):
    parts, n = [], 0
    while n < size:
        p = rng.choice(pool)
        parts.append(p)
        n += len(p)
    return "".join(parts)[:size]


def b64_lines(data):
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def make(rng, pool, i, kind, size):
    sender = "user%d@client%d.example" % (i, i % 40)
    head = ("Return-Path: <{s}>\r\nFrom: User {i} <{s}>\r\nTo: Support <{r}>\r\n"
            "Subject: {subj}\r\nDate: Tue, 24 Nov 2026 10:{mm:02d}:{ss:02d} +0000\r\n"
            "Message-ID: <bench-{i}-{tag}@client{d}.example>\r\nMIME-Version: 1.0\r\n"
            ).format(s=sender, i=i, r=RCPT, mm=(i // 60) % 60, ss=i % 60, d=i % 40,
                     tag="%08x" % rng.getrandbits(32),
                     subj=" ".join(rng.choice(WORDS) for _ in range(6)).capitalize())
    if kind == "text":
        if rng.random() < 0.5:
            body = text_of(rng, pool, size - len(head))
            msg = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
        else:
            half = max(1000, (size - len(head)) // 2)
            t = text_of(rng, pool, half)
            h = "<html><body><p>" + text_of(rng, pool, half - 40).replace(
                "\r\n\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
            msg = (head + 'Content-Type: multipart/alternative; boundary="alt-%d"\r\n\r\n'
                   "--alt-{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{t}\r\n"
                   "--alt-{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{h}\r\n"
                   "--alt-{i}--\r\n").replace("{i}", str(i)).replace("%d", str(i)) \
                .replace("{t}", t).replace("{h}", h)
    elif kind == "rich":
        img = rng.randbytes(max(1000, int((size - 6000) * 3 / 4)))
        t = text_of(rng, pool, 3000)
        msg = (head + 'Content-Type: multipart/related; boundary="rel-{i}"\r\n\r\n'
               '--rel-{i}\r\nContent-Type: multipart/alternative; boundary="alt-{i}"\r\n\r\n'
               "--alt-{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{t}\r\n"
               "--alt-{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
               '<html><body><p>{t}</p><img src="cid:logo-{i}@bench"></body></html>\r\n'
               "--alt-{i}--\r\n"
               "--rel-{i}\r\nContent-Type: image/png; name=\"logo.png\"\r\n"
               "Content-ID: <logo-{i}@bench>\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n{b}--rel-{i}--\r\n"
               ).replace("{i}", str(i)).replace("{t}", t).replace("{b}", b64_lines(img))
    else:
        n_att = 1 if rng.random() < 0.6 else 2
        t = text_of(rng, pool, 2000)
        parts = ["--mix-{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{t}\r\n"
                 .replace("{i}", str(i)).replace("{t}", t)]
        per = max(1000, int((size - 4000) * 3 / 4) // n_att)
        for k in range(n_att):
            name = rng.choice(["report.pdf", "invoice.pdf", "export.xlsx",
                               "screenshot.png", "logs.zip"])
            parts.append("--mix-%d\r\nContent-Type: application/octet-stream; name=\"%s\"\r\n"
                         "Content-Disposition: attachment; filename=\"%s\"\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n%s"
                         % (i, name, name, b64_lines(rng.randbytes(per))))
        msg = (head + 'Content-Type: multipart/mixed; boundary="mix-%d"\r\n\r\n' % i
               + "".join(parts) + "--mix-%d--\r\n" % i)
    return sender, msg


def wire(msg):
    data = msg.encode()
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    outdir, count = argv[0], int(argv[1])
    seed = int(argv[2]) if len(argv) > 2 else 20261124
    rng = random.Random(seed)
    pool = paragraphs(rng, 300)
    os.makedirs(outdir, exist_ok=True)
    n_attach = round(count * 0.10)
    n_rich = round(count * 0.20)
    kinds = ["attach"] * n_attach + ["rich"] * n_rich + ["text"] * (count - n_attach - n_rich)
    rng.shuffle(kinds)
    msgs, total = [], 0
    for i, kind in enumerate(kinds):
        if kind == "text":
            size = log_uniform(rng, 5 * 1024, 50 * 1024)
        elif kind == "rich":
            size = log_uniform(rng, 50 * 1024, 500 * 1024)
        else:
            size = log_uniform(rng, 512 * 1024, 2 * 1024 * 1024)
        sender, msg = make(rng, pool, i, kind, size)
        data = wire(msg)
        name = "%05d.wire" % i
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        msgs.append({"file": name, "from": sender, "size": len(data), "kind": kind})
        total += len(data)
    sizes = sorted(m["size"] for m in msgs)
    man = {"count": count, "seed": seed, "bytes": total, "rcpt": RCPT,
           "sizes": {"min": sizes[0], "median": sizes[len(sizes) // 2],
                     "max": sizes[-1], "mean": total // count},
           "kinds": {k: kinds.count(k) for k in ("text", "rich", "attach")},
           "messages": msgs}
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(man, f)
    print(json.dumps({k: man[k] for k in ("count", "seed", "bytes", "sizes", "kinds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
