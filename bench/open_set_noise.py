#!/usr/bin/python3
"""How much DIR at FPIR 1% moves between draws of a small open-set study, and between two
pipelines measured on the same draws (issue 8: "77% vs 74%: a stage, or noise?").

The study the issue describes: a gallery of G people (one photo each), probes of U other
people who are not enrolled, the threshold set where 1% of those strangers' searches are
named (measured on the study's own strangers, as the issue did), DIR the fraction of the
enrolled people's other photos named correctly at it. Here the same design is drawn many
times from LFW's open-set test people (FNV-1a name hash % 3 != 0, the people
`facerec eval identify --lfw-open-set` judges) using `facerec eval` embedding caches, one per
pipeline (same images, other detection/landmark settings). Printed per pipeline: DIR's mean,
standard deviation and 5-95% range over draws; per pair of pipelines: the paired difference.

  /usr/bin/python3 bench/open_set_noise.py --lfw ../shared/data/lfw \\
      default=build/lfwcache_fr_feature_default.bin stretch=build/lfwcache_fr_feature_stretch.bin
"""
import argparse
import itertools
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fusion_eval import fnv_calibration, read_cache  # noqa: E402


def dir_at_fpir(units, gal, probes, truth, unknown, fpir):
    G = units[gal]
    Sm = units[probes] @ G.T
    ok = Sm.argmax(1) == truth
    best = Sm.max(1)
    um = np.sort((units[unknown] @ G.T).max(1))[::-1]
    allowed = int(math.floor(fpir * len(um) + 1e-9))
    t = um[allowed] + 1e-7 if allowed < len(um) else -1.0
    return float(np.mean(ok & (best >= t)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--gallery-people", type=int, default=230)
    ap.add_argument("--unknown-people", type=int, default=50)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--fpir", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("caches", nargs="+", help="NAME=CACHE")
    a = ap.parse_args()
    names, caches = [], []
    for c in a.caches:
        n, p = c.split("=", 1)
        names.append(n)
        caches.append(read_cache(p)[1])
    rels = sorted(set.intersection(*[set(c) for c in caches]))
    idx = {r: i for i, r in enumerate(rels)}
    units = [np.stack([c[r][3] for r in rels]).astype(np.float32) for c in caches]
    people = {}
    for r in rels:
        people.setdefault(r.split("/")[0], []).append(r)
    test = sorted(n for n in people if not fnv_calibration(n))
    cand = [n for n in test if len(people[n]) >= 2]
    rng = np.random.default_rng(a.seed)
    res = np.zeros((a.draws, len(caches)))
    n_mated, n_unknown = [], []
    for d in range(a.draws):
        chosen = rng.choice(len(cand), a.gallery_people, replace=False)
        in_gal = {cand[i] for i in chosen}
        others = [n for n in test if n not in in_gal]
        unk_people = rng.choice(len(others), a.unknown_people, replace=False)
        gal, probes, truth = [], [], []
        for gi, ci in enumerate(chosen):
            imgs = people[cand[ci]]
            g = rng.integers(len(imgs))
            gal.append(idx[imgs[g]])
            for j, r in enumerate(imgs):
                if j != g:
                    probes.append(idx[r])
                    truth.append(gi)
        unknown = [idx[r] for k in unk_people for r in people[others[k]]]
        truth = np.array(truth)
        n_mated.append(len(probes))
        n_unknown.append(len(unknown))
        for k, u in enumerate(units):
            res[d, k] = dir_at_fpir(u, gal, probes, truth, unknown, a.fpir)
    print(f"{a.draws} draws of {a.gallery_people} enrolled + {a.unknown_people} unknown LFW test people; "
          f"mated searches per draw: median {int(np.median(n_mated))} ({min(n_mated)}-{max(n_mated)}), "
          f"unknown searches: median {int(np.median(n_unknown))} ({min(n_unknown)}-{max(n_unknown)})")
    print(f"{'pipeline':>12} {'DIR mean':>9} {'sd':>6} {'5%':>7} {'95%':>7}   (DIR at FPIR {a.fpir:g}, percent)")
    for k, n in enumerate(names):
        v = 100 * res[:, k]
        print(f"{n:>12} {v.mean():9.2f} {v.std(ddof=1):6.2f} {np.percentile(v, 5):7.2f} {np.percentile(v, 95):7.2f}")
    for i, j in itertools.combinations(range(len(names)), 2):
        dv = 100 * (res[:, i] - res[:, j])
        print(f"{names[i]} - {names[j]}: paired difference mean {dv.mean():+.2f}, sd {dv.std(ddof=1):.2f}, "
              f"5-95% {np.percentile(dv, 5):+.2f} .. {np.percentile(dv, 95):+.2f}, |diff| >= 3 points in "
              f"{100 * np.mean(np.abs(dv) >= 3):.1f}% of draws")


if __name__ == "__main__":
    main()
