#!/usr/bin/python3
"""FNMR and FMR at the FAR = 1e-3 threshold against face size, from the caches
that bench/quality_erc.sh leaves in $FACEREC_CACHE/erc (one per --probe-iod).

For each size: every downscaled image ("probe", key ending in @small) is
compared with every full-size image of the fold. Same person, different photo:
a genuine comparison (FNMR); different person: an impostor comparison (FMR).
That is ~300k impostor comparisons per size, where pairs.txt alone has 300.

Usage: /usr/bin/python3 bench/quality_floor.py [threshold] [cache_dir] [norm bin edges, comma-separated]
"""
import glob
import json
import os
import re
import sys

import numpy as np


def read_cache(path):
    keys, iods, norms, embs = [], [], [], []
    with open(path) as f:
        f.readline()
        for line in f:
            key, rest = line.rstrip("\n").split("\t")
            v = rest.split()
            dim = int(v[12])
            keys.append(key)
            iods.append(float(v[1]))
            norms.append(float(v[4]))
            embs.append(np.array(v[13:13 + dim], dtype=np.float32))
    return keys, np.array(iods), np.array(norms), np.stack(embs)


def person(key):
    return key.split("/")[0]


def main():
    threshold = float(sys.argv[1]) if len(sys.argv) > 1 else 0.338
    cache_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.environ.get("FACEREC_CACHE", os.path.expanduser("~/.cache/facerec")), "erc")
    rows = []
    pooled = []  # (probe feature norm, genuine score) over every size
    for path in glob.glob(os.path.join(cache_dir, "erc_cache_fold1_iod*.tsv")):
        target = float(re.search(r"iod([0-9.]+)\.tsv$", path).group(1))
        keys, iods, norms, embs = read_cache(path)
        small = [i for i, k in enumerate(keys) if k.endswith("@small")]
        full = [i for i, k in enumerate(keys) if not k.endswith("@small")]
        s = embs[small] @ embs[full].T
        ps = np.array([person(keys[i]) for i in small])
        pf = np.array([person(keys[i]) for i in full])
        same_person = ps[:, None] == pf[None, :]
        same_photo = np.array([[keys[i][:-6] == keys[j] for j in full] for i in small])
        genuine = s[same_person & ~same_photo]
        gi, _ = np.nonzero(same_person & ~same_photo)
        pooled += list(zip(norms[small][gi], s[same_person & ~same_photo]))
        impostor = s[~same_person]
        rows.append({
            "target_iod": target,
            "measured_iod_median": float(np.median(iods[small])),
            "probes": len(small),
            "genuine": int(genuine.size),
            "fnmr": float(np.mean(genuine < threshold)),
            "impostor": int(impostor.size),
            "fmr": float(np.mean(impostor >= threshold)),
        })
    rows.sort(key=lambda r: r["target_iod"])
    print(f"threshold {threshold}")
    print(f"{'IOD target':>10} {'measured':>9} {'probes':>7} {'genuine':>8} {'FNMR':>8} {'impostor':>9} {'FMR':>9}")
    for r in rows:
        print(f"{r['target_iod']:10.1f} {r['measured_iod_median']:9.1f} {r['probes']:7d} {r['genuine']:8d} "
              f"{r['fnmr']:8.4f} {r['impostor']:9d} {r['fmr']:9.5f}")
    print(json.dumps(rows))
    p = np.array(pooled)
    print("\nFNMR by the probe's feature norm, every size pooled")
    # fr_feature's norms lie around 2-5; pass other edges as a third argument
    # (mobilefacenet_192's lie around 45-90: 0,40,45,50,55,60,65,70,1e9)
    edges = [float(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 2.0, 2.5, 3.0, 3.5, 4.0, 1e9]
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (p[:, 0] >= lo) & (p[:, 0] < hi)
        if m.any():
            print(f"  norm [{lo:.1f}, {hi:.1f}): {int(m.sum()):5d} comparisons, FNMR {np.mean(p[m, 1] < threshold):.3f}")


if __name__ == "__main__":
    main()
