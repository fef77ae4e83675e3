#!/usr/bin/env python3
"""make-icons.py - draw the Outlook pane's icons (web/pane/icons/) with the
Python standard library only: a blue rounded square with a white "H" (and
a tick), at the sizes Office asks for (16, 32, 64, 80, 128), plus the two
the unified manifest's app package names (icon-color.png 192 px,
icon-outline.png 32 px, white on transparent). Deterministic output, so
re-running it changes nothing.

    python3 scripts/make-icons.py [OUTDIR]
"""
import os
import struct
import sys
import zlib

BLUE = (36, 87, 197)
WHITE = (255, 255, 255)


def png(size, pixels):
    """PNG bytes of an RGBA image (pixels: rows of (r, g, b, a))."""
    raw = b"".join(b"\0" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def coverage(size, inside, samples=4):
    """Anti-aliased coverage (0..1) of shape INSIDE(x, y) in unit space."""
    out = []
    for py in range(size):
        row = []
        for px in range(size):
            hit = 0
            for sy in range(samples):
                for sx in range(samples):
                    x = (px + (sx + 0.5) / samples) / size
                    y = (py + (sy + 0.5) / samples) / size
                    hit += inside(x, y)
            row.append(hit / (samples * samples))
        out.append(row)
    return out


def rounded(x, y, r=0.2, m=0.04):
    """Inside a rounded square with margin M and corner radius R."""
    lo, hi = m, 1 - m
    if not (lo <= x <= hi and lo <= y <= hi):
        return False
    cx = min(max(x, lo + r), hi - r)
    cy = min(max(y, lo + r), hi - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def letter_h(x, y):
    """Inside a bold "H"."""
    if not (0.26 <= y <= 0.74):
        return False
    return (0.27 <= x <= 0.39) or (0.61 <= x <= 0.73) or \
        (0.39 <= x <= 0.61 and 0.445 <= y <= 0.555)


def icon(size):
    bg = coverage(size, rounded)
    fg = coverage(size, letter_h)
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            a, f = bg[y][x], fg[y][x]
            rgb = tuple(round(BLUE[i] * (1 - f) + WHITE[i] * f) for i in range(3))
            row.append(rgb + (round(255 * max(a, f)),))
        rows.append(row)
    return png(size, rows)


def outline(size):
    ring = coverage(size, lambda x, y: rounded(x, y) and
                    not rounded(x, y, r=0.14, m=0.1))
    fg = coverage(size, letter_h)
    rows = [[WHITE + (round(255 * max(ring[y][x], fg[y][x])),)
             for x in range(size)] for y in range(size)]
    return png(size, rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(here, "..", "web", "pane", "icons")
    os.makedirs(out, exist_ok=True)
    files = {"icon-%d.png" % s: icon(s) for s in (16, 32, 64, 80, 128)}
    files["icon-color.png"] = icon(192)
    files["icon-outline.png"] = outline(32)
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as fp:
            fp.write(data)
    print("make-icons: wrote %d icons to %s" % (len(files), out))


if __name__ == "__main__":
    main()
