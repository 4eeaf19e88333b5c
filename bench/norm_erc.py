#!/usr/bin/python3
"""ERC of an embedder's feature norm (and of the cached fallback quality) on LFW pairs.txt,
from a `facerec eval` embedding cache (bench/fusion_eval.py reads the same files).

For the 3000 same-person pairs of pairs.txt at a fixed threshold (the embedder's
FAR = 1e-3 point), FNMR after rejecting the fraction r of pairs whose lower
quality is smallest, for r = 0, 0.05, ... 0.3; against the 95th percentile of
200 random rejections. Gain at r = 0.2 = (FNMR(0) - FNMR(0.2)) / FNMR(0), as in
BENCHMARKS.md "Face quality: ERC". Also FNMR per norm bin (pooled over all pairs).

  /usr/bin/python3 bench/norm_erc.py --lfw ../shared/data/lfw --threshold 0.450 build/lfwcache_mobilefacenet_192.bin
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from fusion_eval import lfw_pairs, read_cache  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--threshold", type=float, required=True)
    ap.add_argument("--bins", default="0,10,12,14,16,18,20,22,25,1000", help="norm bin edges")
    ap.add_argument("cache")
    a = ap.parse_args()
    key, c = read_cache(a.cache)
    print(f"# {a.cache}: {key}")
    _, pairs = lfw_pairs(os.path.join(a.lfw, "pairs.txt"))
    same = [p for p in pairs if p[2]]
    u = lambda r: c[r][3]
    s = np.array([float(np.dot(u(p[0]), u(p[1]))) for p in same])
    miss = s < a.threshold
    norm = np.array([min(c[p[0]][1], c[p[1]][1]) for p in same])
    qual = np.array([min(c[p[0]][2], c[p[1]][2]) for p in same])
    rng = np.random.default_rng(1)
    fr = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    n = len(same)

    def erc(q):
        order = np.argsort(q, kind="stable")
        return [np.mean(miss[order[int(round(r * n)):]]) for r in fr]

    rand = np.array([[np.mean(miss[np.sort(rng.permutation(n)[int(round(r * n)):])]) for r in fr] for _ in range(200)])
    print(f"same-person pairs {n}, FNMR at {a.threshold} with nothing rejected: {np.mean(miss):.4f}")
    print("| rejected | " + " | ".join(f"{r:.2f}" for r in fr) + " | gain at 0.2 |")
    print("|---|" + "---|" * (len(fr) + 1))
    for name, q in (("feature norm", norm), ("cached quality (fallback)", qual)):
        e = erc(q)
        print(f"| {name} | " + " | ".join(f"{x:.4f}" for x in e) + f" | {(e[0] - e[4]) / e[0]:.3f} |")
    r95 = np.percentile(rand, 5, axis=0)  # the best 5% of random rejections (lowest FNMR)
    print("| random, 5th percentile FNMR (200 draws) | " + " | ".join(f"{x:.4f}" for x in r95) +
          f" | {(np.mean(miss) - r95[4]) / np.mean(miss):.3f} |")
    edges = [float(x) for x in a.bins.split(",")]
    allnorm = np.array([v[1] for v in c.values() if v[0] != 3])
    print("\nFNMR by the pair's lower feature norm (share of all LFW faces in the bin):")
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (norm >= lo) & (norm < hi)
        share = np.mean((allnorm >= lo) & (allnorm < hi))
        if m.any():
            print(f"  norm [{lo:g}, {hi:g}): pairs {m.sum():4d}  FNMR {np.mean(miss[m]):.3f}  faces {100 * share:.1f}%")
    print("norm percentiles of LFW faces (1, 5, 50, 95):", np.percentile(allnorm, [1, 5, 50, 95]).round(2).tolist())


if __name__ == "__main__":
    main()
