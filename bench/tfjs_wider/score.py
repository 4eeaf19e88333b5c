#!/usr/bin/python3
"""WIDER subset AP of run.js detections, by the repository's official-rules scorer.

Builds the same dump that `facerec eval detect --dump-scores` writes (one JSON line
per image: image, gt [x, y, w, h], keep [easy, medium, hard] per face, detections
[x, y, w, h, score]) from the ground-truth txt, the three official .mat files and
run.js's output, then runs tools/wider_official_ap.py on it.

    /usr/bin/python3 bench/tfjs_wider/score.py DETS.jsonl [--wider DIR] [--dump OUT.jsonl]
    /usr/bin/python3 bench/tfjs_wider/score.py --check FACEREC_DUMP.jsonl [--wider DIR]

--check rebuilds the ground truth and keep lists of a facerec dump and compares them
entry by entry (the check that this script's subsets are facerec's).
Needs scipy (Debian python3-scipy) for the .mat files.
"""
import argparse
import io
import json
import os
import sys
from contextlib import redirect_stdout

import scipy.io

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import wider_official_ap  # noqa: E402


def read_gt(wider):
    """[(path, [[x, y, w, h], ...], [keep_easy, keep_medium, keep_hard])] in the txt's order."""
    lines = open(os.path.join(wider, "wider_face_val_bbx_gt.txt")).read().split("\n")
    images, i = [], 0
    while i < len(lines):
        path = lines[i].strip()
        if not path:
            i += 1
            continue
        n = int(lines[i + 1])
        boxes = [[float(v) for v in lines[i + 2 + k].split()[:4]] for k in range(n)]
        images.append((path, boxes))
        i += 2 + max(n, 1)
    keeps = {p: [None, None, None] for p, _ in images}
    counts = {p: len(b) for p, b in images}
    for s, name in enumerate(["wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat"]):
        m = scipy.io.loadmat(os.path.join(wider, name))
        for e in range(m["event_list"].shape[0]):
            event = str(m["event_list"][e][0][0])
            files = m["file_list"][e][0]
            for f in range(files.shape[0]):
                path = f"{event}/{files[f][0][0]}.jpg"
                if path not in keeps:
                    continue
                box = m["face_bbx_list"][e][0][f][0]
                n = counts[path]
                if box.shape[0] != n:
                    sys.exit(f"{path}: the txt lists {n} faces, {name} {box.shape[0]}")
                keep = [0] * n
                for k in m["gt_list"][e][0][f][0].reshape(-1):
                    keep[int(k) - 1] = 1
                keeps[path][s] = keep
    out = []
    for p, b in images:
        k = keeps[p]
        if any(x is None for x in k):
            sys.exit(f"{p} is missing from a subset .mat file")
        # The official subsets are nested: easy within medium within hard.
        if any(k[s][i] > k[s + 1][i] for s in range(2) for i in range(len(b))):
            sys.exit(f"{p}: the easy/medium/hard keep lists are not nested")
        out.append((p, b, k))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dets", nargs="?")
    ap.add_argument("--wider", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "wider_val_subset"))
    ap.add_argument("--dump", help="also keep the dump here")
    ap.add_argument("--check", help="a `facerec eval detect --dump-scores` file to compare ground truth and keep lists with")
    a = ap.parse_args()
    gt = read_gt(a.wider)
    if a.check:
        theirs = [json.loads(line) for line in open(a.check) if line.strip()]
        assert len(theirs) == len(gt), (len(theirs), len(gt))
        for (p, b, k), t in zip(gt, theirs):
            assert t["image"] == p and t["keep"] == k, p
            assert all(abs(x - y) < 1e-3 for bb, tb in zip(b, t["gt"]) for x, y in zip(bb, tb)), p
        print(f"ground truth and keep lists equal facerec's for all {len(gt)} images")
        return
    dets = {}
    for line in open(a.dets):
        if line.strip():
            r = json.loads(line)
            dets[r["image"]] = r["detections"]
    missing = [p for p, _, _ in gt if p not in dets]
    if missing:
        sys.exit(f"{a.dets} has no detections line for {len(missing)} images (first: {missing[0]})")
    dump = a.dump or a.dets + ".dump"
    with open(dump, "w") as f:
        for p, b, k in gt:
            f.write(json.dumps({"image": p, "gt": b, "keep": k, "detections": dets[p]}) + "\n")
    buf = io.StringIO()
    with redirect_stdout(buf):
        wider_official_ap.main(dump)
    r = json.loads(buf.getvalue())
    r["detections"] = sum(len(v) for v in dets.values())
    r["images"] = len(gt)
    r["faces_easy_medium_hard"] = [sum(sum(k[s]) for _, _, k in gt) for s in range(3)]
    print(json.dumps(r))


if __name__ == "__main__":
    main()
