#!/usr/bin/env python3
"""Generates a hostile-image corpus from real photos (issue 11).

Base files: a few photos from ../shared, re-encoded by ImageMagick into every
format facerec reads (and a few it refuses). Each base file then yields
mutants: byte flips, truncations, absurd header sizes (0, 1, 65535, 2^31-1,
2^32-1 ...), zeroed and duplicated spans, appended junk, EXIF orientation
values out of range; plus random and empty files. Deterministic for a seed.

  /usr/bin/python3 tools/hostile_images.py OUT_DIR [--count 10000] [--seed 1] [--shared ../shared]
"""
import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile

FORMATS = ["jpg", "png", "bmp", "tif", "webp", "ppm", "pgm", "gif", "heic", "avif", "jp2", "pam"]
ABSURD = [0, 1, 2, 255, 256, 32767, 32768, 65535, 65536, 100000, 2**24 - 1, 2**31 - 1, 2**31, 2**32 - 1]


def base_files(shared, tmp, rng):
    photos = []
    for person in sorted(os.listdir(os.path.join(shared, "data/celeb5/train")))[:3]:
        d = os.path.join(shared, "data/celeb5/train", person)
        photos += [os.path.join(d, f) for f in sorted(os.listdir(d))[:2]]
    out = []
    for i, p in enumerate(photos):
        for ext in FORMATS:
            for size in ("160x160", "48x48"):
                dst = os.path.join(tmp, f"b{i}_{size}.{ext}")
                extra = ["-interlace", "Plane"] if (i % 2 and ext in ("jpg", "png", "gif")) else []
                r = subprocess.run(["convert", p, "-resize", size] + extra + [dst], capture_output=True)
                if r.returncode == 0 and os.path.exists(dst):
                    out.append((ext, open(dst, "rb").read()))
    return out


def header_fields(ext, b):
    """(offset, width_in_bytes, endian) of size fields worth corrupting."""
    f = []
    if ext == "jpg":
        i = 2
        while i + 9 < len(b):
            if b[i] != 0xFF:
                break
            m = b[i + 1]
            ln = struct.unpack(">H", b[i + 2:i + 4])[0]
            if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
                f += [(i + 5, 2, ">"), (i + 7, 2, ">"), (i + 2, 2, ">")]
                break
            f.append((i + 2, 2, ">"))
            i += 2 + ln
    elif ext == "png":
        f += [(16, 4, ">"), (20, 4, ">"), (8, 4, ">"), (33, 4, ">")]
    elif ext == "bmp":
        f += [(18, 4, "<"), (22, 4, "<"), (2, 4, "<"), (10, 4, "<"), (14, 4, "<"), (28, 2, "<")]
    elif ext == "gif":
        f += [(6, 2, "<"), (8, 2, "<")]
        k = b.find(b"\x2c")
        if k > 0:
            f += [(k + 5, 2, "<"), (k + 7, 2, "<")]
    elif ext == "webp":
        f += [(4, 4, "<"), (16, 4, "<"), (26, 2, "<"), (28, 2, "<"), (24, 3, "<"), (27, 3, "<")]
    elif ext == "tif":
        f += [(4, 4, "<")] + [(o, 4, "<") for o in range(10, min(len(b), 200), 12)]
    elif ext in ("heic", "avif"):
        k = b.find(b"ispe")
        if k > 0:
            f += [(k + 8, 4, ">"), (k + 12, 4, ">")]
        f += [(0, 4, ">")]
    return [x for x in f if x[0] + x[1] <= len(b)]


def put(b, off, width, endian, value):
    value &= (1 << (8 * width)) - 1
    raw = value.to_bytes(width, "big" if endian == ">" else "little")
    return b[:off] + raw + b[off + width:]


def mutate(ext, b, rng):
    kind = rng.choice(["flip", "flip", "truncate", "truncate", "header", "header", "zero", "dup", "junk", "pnm"])
    if kind == "flip":
        b = bytearray(b)
        for _ in range(rng.choice([1, 2, 5, 20, 100])):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return "flip", bytes(b)
    if kind == "truncate":
        return "truncate", b[: rng.randrange(1, len(b))]
    if kind == "header":
        fields = header_fields(ext, b)
        if fields:
            off, w, e = rng.choice(fields)
            return "header", put(b, off, w, e, rng.choice(ABSURD))
        kind = "zero"
    if kind == "zero":
        i = rng.randrange(len(b))
        n = rng.randrange(1, max(2, len(b) // 4))
        return "zero", b[:i] + bytes(min(n, len(b) - i)) + b[i + n:]
    if kind == "dup":
        i = rng.randrange(len(b))
        n = rng.randrange(1, max(2, len(b) // 3))
        return "dup", b[:i] + b[i:i + n] * rng.choice([2, 3, 10]) + b[i:]
    if kind == "pnm":
        w, h = rng.choice(ABSURD), rng.choice(ABSURD)
        return "pnm_header", f"P{rng.choice('123456')}\n{w} {h}\n255\n".encode() + b[:2000]
    return "junk", b + os.urandom(rng.randrange(1, 5000))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        bases = base_files(a.shared, tmp, rng)
    if not bases:
        sys.exit("no base files: ../shared or ImageMagick missing")
    n = 0
    for ext, b in bases:  # the originals too: they must all be read
        open(os.path.join(a.out, f"{n:05d}_orig.{ext}"), "wb").write(b)
        n += 1
    open(os.path.join(a.out, f"{n:05d}_empty.jpg"), "wb").close()
    n += 1
    while n < a.count:
        if rng.random() < 0.02:
            kind, data, ext = "random", os.urandom(rng.randrange(1, 20000)), rng.choice(FORMATS)
        else:
            ext, b = rng.choice(bases)
            kind, data = mutate(ext, b, rng)
        open(os.path.join(a.out, f"{n:05d}_{kind}.{ext}"), "wb").write(data)
        n += 1
    print(f"{n} files in {a.out} from {len(bases)} base files")


if __name__ == "__main__":
    main()
