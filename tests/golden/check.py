#!/usr/bin/env python3
"""check.py - each golden message (tests/golden/*.eml, one per defect shape
of issue 17, written by mkmail.py) through build/mime-json, compared with
its .ref: the subject, the From address and name, the bodies and every
attachment (name, type, size, SHA-256, why it was not kept) the product
takes from it, i.e. what the ticket note and its attachments are built from.

    check.py MIME_JSON          compare; prints "golden: N passed, M failed"
    UPDATE=1 check.py MIME_JSON rewrite the .ref files (review the diff!)
"""
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    tool = sys.argv[1]
    files = sorted(glob.glob(os.path.join(HERE, "*.eml")))
    out = subprocess.run([tool] + files, capture_output=True, check=False)
    lines = out.stdout.decode().splitlines()
    if out.returncode != 0 or len(lines) != len(files):
        print("golden: mime-json failed: %s" % out.stderr.decode()[-300:])
        print("golden: 0 passed, %d failed" % len(files))
        return 1
    passed = failed = 0
    for path, line in zip(files, lines):
        got = json.loads(line)
        got["file"] = os.path.basename(path)
        ref = path[:-4] + ".ref"
        text = json.dumps(got, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        if os.environ.get("UPDATE"):
            with open(ref, "w") as f:
                f.write(text)
        try:
            with open(ref) as f:
                want = json.load(f)
        except OSError:
            want = None
        if want == got:
            passed += 1
            continue
        failed += 1
        print("FAIL golden/%s: differs from %s" % (os.path.basename(path),
              os.path.basename(ref)))
        for key in sorted(set(got) | set(want or {})):
            if want is None or got.get(key) != want.get(key):
                print("    %s: got %s" % (key, json.dumps(got.get(key),
                      ensure_ascii=False)[:300]))
                print("    %s: want %s" % (key, json.dumps(
                    (want or {}).get(key), ensure_ascii=False)[:300]))
    print("golden: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
