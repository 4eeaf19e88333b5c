#!/usr/bin/python3
"""How many strangers a person attracts as their photos grow, per template rule.

    /usr/bin/python3 bench/template_growth.py build/lfwcache_fr_feature.bin

Reads the embedding cache that `facerec eval identify --lfw-open-set --cache`
writes (format: src/eval/embedding_cache.cc). The people with 15+ photos are
enrolled from their first K photos (sorted by name); every other photo is a
stranger. The threshold lets 5% of strangers through to the one-photo people.
"""
import collections
import struct
import sys

import numpy as np


def load(fn):
    b = open(fn, "rb").read()
    assert b[:8] == b"FRECEMB1", "not a facerec embedding cache"
    o = 8
    (n,) = struct.unpack_from("<I", b, o)
    o += 4 + n
    (count,) = struct.unpack_from("<Q", b, o)
    o += 8
    out = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", b, o)
        o += 4
        path = b[o:o + n].decode()
        o += n
        _src, _norm, _q, d = struct.unpack_from("<BffI", b, o)
        o += 13
        out[path] = np.frombuffer(b, dtype="<f4", count=d, offset=o)
        o += 4 * d
    return out


def main():
    cache = load(sys.argv[1])
    people = collections.defaultdict(list)
    for path, v in sorted(cache.items()):
        if len(v):
            people[path.split("/")[-2]].append(v)
    big = [n for n in people if len(people[n]) >= 15]
    strangers = np.array([v for n in people if n not in big for v in people[n]])
    print(f"{len(big)} people with 15+ photos, {len(strangers)} strangers")

    def rule_scores(vs, rule):
        s = strangers @ np.array(vs).T
        if rule == "max":
            return s.max(1)
        if rule == "meanscore":
            return s.mean(1)
        m = np.mean(vs, 0)
        return strangers @ (m / np.linalg.norm(m))

    one = np.concatenate([strangers @ people[n][0] for n in big])
    t = np.sort(one)[int(0.95 * len(one))]
    print(f"threshold {t:.4f}")
    for rule in ("max", "mean", "meanscore"):
        row = []
        for k in (1, 2, 3, 5, 8, 15):
            s = np.concatenate([rule_scores(people[n][:k], rule) for n in big])
            row.append(f"{k}: {100 * (s >= t).mean():.1f}%")
        print(rule, "  ".join(row))


if __name__ == "__main__":
    main()
