#!/usr/bin/python3
"""Two-scale detection from two run.js outputs of the same model at two input sizes.

Per image: the union of both runs' detections, greedy NMS (best score first, a box is
dropped when its IoU with a kept box exceeds --iou), at most --max-faces kept. ms and
cpu_ms are the sums of the two runs' (both scales are run for every photo).

    /usr/bin/python3 bench/tfjs_wider/merge.py A.jsonl B.jsonl --iou 0.3 > AB.jsonl
"""
import argparse
import json
import sys


def iou(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--iou", type=float, default=0.3)
    ap.add_argument("--max-faces", type=int, default=750)
    a = ap.parse_args()
    runs = [{} for _ in range(2)]
    order = []
    for k, path in enumerate([a.a, a.b]):
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                runs[k][r["image"]] = r
                if k == 0:
                    order.append(r["image"])
    if set(runs[0]) != set(runs[1]):
        sys.exit(f"{a.a} and {a.b} list different images")
    for p in order:
        x, y = runs[0][p], runs[1][p]
        kept = []
        for d in sorted(x["detections"] + y["detections"], key=lambda d: -d[4]):
            if all(iou(d, k) <= a.iou for k in kept):
                kept.append(d)
                if len(kept) >= a.max_faces:
                    break
        print(json.dumps({"image": p, "detections": kept, "ms": round(x["ms"] + y["ms"], 2),
                          "cpu_ms": round(x.get("cpu_ms", 0) + y.get("cpu_ms", 0), 2)}))


if __name__ == "__main__":
    main()
