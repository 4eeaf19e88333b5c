#!/usr/bin/python3
"""Score fusion and flip TTA, measured offline from `facerec eval` embedding caches.

Every cache holds one template per LFW image (the files written by
`facerec eval identify --lfw-open-set --cache F` / `facerec eval calibrate --cache F`,
format in src/eval/embedding_cache.cc). A fused template is the concatenation
of the members' unit vectors scaled by 1/sqrt(k), so its cosine is the mean of
the members' cosines; all members must come from the same detector and face
pick, so every image has the same crop in each.

For each variant (a single cache, or '+'-joined caches to fuse) it prints:
  - LFW 10-fold accuracy over pairs.txt (threshold chosen on the 9 other folds),
  - the LFW open-set split of facerec (people by FNV-1a 64 hash % 3: calibration
    people give the thresholds, the others are judged), one photo per person:
    per gallery size, the calibrated threshold for FPIR 1%, the FPIR and DIR
    measured at it, and the oracle DIR (best DIR with measured FPIR <= 1%).
The draws use numpy's generator, not facerec's, so compare variants within
this script's output (its single-embedder rows are close to, not equal to,
`facerec eval identify --lfw-open-set`).

  /usr/bin/python3 bench/fusion_eval.py --lfw ../shared/data/lfw \
      A=build/lfwcache_fr_feature.bin B=build/lfwcache_mobilefacenet_192.bin A+B
"""
import argparse
import math
import os
import struct
import sys

import numpy as np


def read_erc_tsv(path):
    """A `facerec eval erc --cache` file (text; one line per image, see bench/quality_floor.py)."""
    out = {}
    with open(path) as f:
        key = f.readline().strip()
        for line in f:
            rel, rest = line.rstrip("\n").split("\t")
            v = rest.split()
            dim = int(v[12])
            u = np.array(v[13:13 + dim], dtype=np.float32)
            u /= max(np.linalg.norm(u), 1e-12)
            out[rel] = (int(v[0]), float(v[4]), 0.0, u)
    return key, out


def read_cache(path):
    if path.endswith(".tsv"):
        return read_erc_tsv(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"FRECEMB1":
        sys.exit(f"{path}: not a facerec embedding cache")
    off = 8

    def u32():
        nonlocal off
        v = struct.unpack_from("<I", data, off)[0]
        off += 4
        return v

    def string():
        nonlocal off
        n = u32()
        s = data[off:off + n].decode()
        off += n
        return s

    key = string()
    n = struct.unpack_from("<Q", data, off)[0]
    off += 8
    out = {}
    for _ in range(n):
        p = string()
        source = data[off]
        off += 1
        norm, quality = struct.unpack_from("<ff", data, off)
        off += 8
        dim = u32()
        unit = np.frombuffer(data, dtype="<f4", count=dim, offset=off).copy()
        off += 4 * dim
        rel = "/".join(p.split("/")[-2:])
        out[rel] = (source, norm, quality, unit)
    return key, out


def fnv_calibration(name):
    h = 1469598103934665603
    for c in name.encode():
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % 3 == 0


def lfw_pairs(path):
    lines = open(path).read().split("\n")
    folds, n = map(int, lines[0].split())
    pairs = []
    for ln in lines[1:]:
        t = ln.split()
        if len(t) == 3:
            pairs.append((f"{t[0]}/{t[0]}_{int(t[1]):04d}.jpg", f"{t[0]}/{t[0]}_{int(t[2]):04d}.jpg", True))
        elif len(t) == 4:
            pairs.append((f"{t[0]}/{t[0]}_{int(t[1]):04d}.jpg", f"{t[2]}/{t[2]}_{int(t[3]):04d}.jpg", False))
    return folds, pairs


def ten_fold(scores, same, folds):
    per = len(scores) // folds
    accs = []
    for k in range(folds):
        test = np.zeros(len(scores), bool)
        test[k * per:(k + 1) * per] = True
        tr_s, tr_y = scores[~test], same[~test]
        cand = np.unique(tr_s)
        best_t, best_a = 0.0, -1.0
        # accuracy of "same if score >= t" for every candidate threshold
        order = np.argsort(tr_s)
        s_sorted, y_sorted = tr_s[order], tr_y[order]
        # number of negatives below index i, positives at/after i
        neg_below = np.concatenate([[0], np.cumsum(~y_sorted)])
        pos_after = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0]])
        acc = (neg_below + pos_after) / len(s_sorted)
        i = int(np.argmax(acc))
        best_t = s_sorted[i] if i < len(s_sorted) else s_sorted[-1] + 1e-6
        pred = scores[test] >= best_t
        accs.append(np.mean(pred == same[test]))
    return 100 * np.mean(accs), 100 * np.std(accs, ddof=1)


class Variant:
    def __init__(self, name, caches):
        self.name = name
        self.caches = caches  # list of dict rel -> tuple
        self.index, self.matrix = None, None

    def build(self, rels):
        self.index = {r: i for i, r in enumerate(rels)}
        parts = [np.stack([c[r][3] for r in rels]) for c in self.caches]
        self.matrix = (np.concatenate(parts, axis=1) / math.sqrt(len(parts))).astype(np.float32)

    def units(self, rels):
        if self.matrix is not None and all(r in self.index for r in rels):
            return self.matrix[[self.index[r] for r in rels]]
        parts = []
        for c in self.caches:
            parts.append(np.stack([c[r][3] for r in rels]))
        u = np.concatenate(parts, axis=1) / math.sqrt(len(parts))
        return u.astype(np.float32)


def calibrate(var, people, rng_seed, fpir, sizes):
    """Thresholds for FPIR f at N people, from the calibration people (one pool image each)."""
    rng = np.random.default_rng(rng_seed)
    names = sorted(n for n in people if fnv_calibration(n))
    pool_rel = [people[n][rng.integers(len(people[n]))] for n in names]
    probe_rel, probe_owner = [], []
    for i, n in enumerate(names):
        for r in people[n]:
            probe_rel.append(r)
            probe_owner.append(i)
    P = var.units(pool_rel)
    Q = var.units(probe_rel)
    S = Q @ P.T
    S[np.arange(len(probe_rel)), probe_owner] = -np.inf  # no self comparison
    M = len(names) - 1
    S.sort(axis=1)
    S = np.ascontiguousarray(S[:, ::-1][:, :M])  # descending, M impostors each
    out = {}
    lg = lambda a, b: math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)
    for N in sizes:
        n_eff = min(N, M)
        # P(max of a random N-subset >= t) = 1 - C(M-k, N)/C(M, N), k = #scores >= t
        pnone = np.array([math.exp(lg(M - kk, n_eff) - lg(M, n_eff)) if M - kk >= n_eff else 0.0 for kk in range(M + 1)])
        rate = lambda t: float(np.mean(1 - pnone[(S >= t).sum(axis=1)]))
        for f in fpir:
            lo, hi = -1.0, 1.0  # rate(lo) > f >= rate(hi); FPIR falls as t rises
            for _ in range(30):
                mid = (lo + hi) / 2
                if rate(mid) <= f:
                    hi = mid
                else:
                    lo = mid
            out[(f, N)] = hi
    return out


def open_set(var, people, sizes, seed, thresholds, norm_floor=0.0):
    test = sorted(n for n in people if not fnv_calibration(n))
    cand = [n for n in test if len(people[n]) >= 2]
    rows = []
    rng = np.random.default_rng(seed)
    for size in sizes:
        N = len(cand) if size == "all" else int(size)
        trials = 1 if N >= 1000 else max(1, min(100, 1000 // N))
        mated_scores, mated_ok, unk_max = [], [], []
        for _ in range(trials):
            chosen = set(rng.choice(len(cand), N, replace=False).tolist())
            gal_rel, probes, truth = [], [], []
            for gi, ci in enumerate(sorted(chosen)):
                imgs = people[cand[ci]]
                g = rng.integers(len(imgs))
                gal_rel.append(imgs[g])
                for j, r in enumerate(imgs):
                    if j != g:
                        probes.append(r)
                        truth.append(gi)
            in_gal = {cand[ci] for ci in chosen}
            unknown = [r for n in test if n not in in_gal for r in people[n]]
            G = var.units(gal_rel)
            Sm = var.units(probes) @ G.T
            top = Sm.argmax(axis=1)
            # a probe under the norm floor (first member's norm) abstains: never named
            ok_m = np.array([var.caches[0][r][1] >= norm_floor for r in probes])
            ok_u = np.array([var.caches[0][r][1] >= norm_floor for r in unknown])
            mated_scores.append(np.where(ok_m, Sm.max(axis=1), -np.inf))
            mated_ok.append(top == np.array(truth))
            Su = var.units(unknown) @ G.T
            unk_max.append(np.where(ok_u, Su.max(axis=1), -np.inf))
        ms, mo, um = np.concatenate(mated_scores), np.concatenate(mated_ok), np.concatenate(unk_max)
        t_cal = thresholds[(0.01, N)] if thresholds else None
        # oracle: smallest threshold whose FPIR <= 1%
        us = np.sort(um)[::-1]
        allowed = int(math.floor(0.01 * len(us) + 1e-9))
        t_or = us[allowed] + 1e-7 if allowed < len(us) else -1.0
        dir_or = np.mean(mo & (ms >= t_or))
        fp_cal = np.mean(um >= t_cal) if t_cal is not None else float("nan")
        dir_cal = np.mean(mo & (ms >= t_cal)) if t_cal is not None else float("nan")
        rows.append((size, N, trials, t_cal, 100 * fp_cal, 100 * dir_cal, 100 * dir_or, 100 * np.mean(mo), len(um)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", required=True, help="LFW root (with images/ and pairs.txt)")
    ap.add_argument("--sizes", default="10,100,1000,all")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--common", action="store_true",
                    help="keep only the images present in every cache (e.g. an eval erc cache of pairs.txt images)")
    ap.add_argument("--norm-floor", default="0", help="comma-separated norm floors (first member's norm): "
                    "probes below it abstain; one open-set table per floor")
    ap.add_argument("--no-open-set", action="store_true", help="LFW 10-fold only")
    ap.add_argument("variants", nargs="+", help="NAME=cache.bin defines a cache; A+B fuses defined ones")
    a = ap.parse_args()
    caches, order = {}, []
    for v in a.variants:
        if "=" in v:
            name, path = v.split("=", 1)
            key, c = read_cache(path)
            caches[name] = c
            print(f"# {name}: {path} ({len(c)} images; key {key})")
            order.append(name)
        else:
            order.append(v)
    images_root = os.path.join(a.lfw, "images")
    people = {}
    for n in sorted(os.listdir(images_root)):
        people[n] = sorted(f"{n}/{f}" for f in os.listdir(os.path.join(images_root, n)))
    if a.common:
        people = {n: [r for r in imgs if all(r in c for c in caches.values())] for n, imgs in people.items()}
        people = {n: imgs for n, imgs in people.items() if imgs}
        print(f"# --common: {sum(map(len, people.values()))} images of {len(people)} people in every cache")
    folds, pairs = lfw_pairs(os.path.join(a.lfw, "pairs.txt"))
    sizes = a.sizes.split(",")
    n_all = sum(1 for n, imgs in people.items() if not fnv_calibration(n) and len(imgs) >= 2)
    cal_sizes = sorted({n_all if s == "all" else int(s) for s in sizes})
    for name in order:
        var = Variant(name, [caches[m] for m in name.split("+")])
        needed = [r for p in pairs for r in p[:2]] + ([] if a.no_open_set else [r for p in people.values() for r in p])
        missing = [r for r in needed if any(r not in c for c in var.caches)]
        if missing:
            print(f"{name}: {len(missing)} images missing from a cache, e.g. {missing[0]}; skipped")
            continue
        ua, ub = var.units([p[0] for p in pairs]), var.units([p[1] for p in pairs])
        s = np.sum(ua * ub, axis=1)
        y = np.array([p[2] for p in pairs])
        acc, sd = ten_fold(s, y, folds)
        print(f"\n## {name}: LFW 10-fold {acc:.2f} +- {sd:.2f}%")
        if a.no_open_set:
            continue
        var.build([r for p in people.values() for r in p])
        th = calibrate(var, people, a.seed, [0.01], cal_sizes)
        for nf in [float(x) for x in a.norm_floor.split(",")]:
            if nf > 0:
                print(f"norm floor {nf:g}: probes whose norm is below it abstain")
            print("| size | N | trials | threshold (FPIR 1%) | FPIR measured | DIR at it | oracle DIR @FPIR<=1% | rank-1 | unknown searches |")
            for r in open_set(var, people, sizes, a.seed, th, nf):
                print("| %s | %d | %d | %.4f | %.2f%% | %.2f%% | %.2f%% | %.2f%% | %d |" % r)


if __name__ == "__main__":
    main()
