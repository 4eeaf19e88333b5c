#!/usr/bin/python3
"""Issue 8's stage comparison, downstream of the landmarks: facerec's alignment,
preprocessing and inference against an independent reference on the same photos.

For each image (one face found), facerec gives the five landmarks (`identify --json`)
and the embedding (`embed --json`). The reference, written here without facerec's code:
  alignment      Umeyama similarity (numpy) onto insightface's 112x112 ArcFace template,
                 cv2.warpAffine (bilinear, black border), as insightface's norm_crop does;
  preprocessing  BGR -> RGB, (x - mean) / std from the manifest entry, NCHW float32;
  inference      OpenCV's DNN module (not ONNX Runtime) on the same .onnx file.
Printed: the cosine between facerec's embedding and the reference's, per image and
its minimum / median. A cosine of 1.0000 means these stages agree; the detector and the
landmark model themselves are not re-implemented here.

  /usr/bin/python3 bench/stage_reference.py --embedder fr_feature IMAGE...
"""
import argparse
import json
import os
import subprocess
import sys

import cv2
import numpy as np

ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                    [70.7299, 92.2041]], dtype=np.float64)


def umeyama(src, dst):
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / n
    u, w, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(cov) < 0:
        sign[1, 1] = -1
    r = u @ sign @ vt
    var = (s ** 2).sum() / n
    scale = (w * np.diag(sign)).sum() / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * r @ mu_s
    return m


def run(binary, args, env):
    r = subprocess.run([binary] + args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{binary} {' '.join(args[:2])}: {r.stderr}")
    return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="fr_feature")
    ap.add_argument("--bin", default="build/facerec")
    ap.add_argument("--manifest", default="models/manifest.json")
    ap.add_argument("--db", required=True, help="any gallery made with --embedder (identify needs one)")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    env = dict(os.environ)
    man = json.load(open(a.manifest))
    spec = next(m for m in man["models"] if m["id"] == a.embedder)
    cache = env.get("FACEREC_CACHE", os.path.expanduser("~/.cache/facerec"))
    net = cv2.dnn.readNetFromONNX(os.path.join(cache, "models", a.embedder + ".onnx"))
    mean = np.array(spec["input"]["mean"], np.float32)
    std = np.array(spec["input"]["std"], np.float32)
    ident = run(a.bin, ["identify", *a.images, "--db", a.db, "--embedder", a.embedder, "--json"], env)
    emb = run(a.bin, ["embed", *a.images, "--embedder", a.embedder, "--json"], env)
    by_image = {e["image"]: e for e in emb}
    cos = []
    for r in ident:
        if len(r.get("faces", [])) != 1 or r["image"] not in by_image:
            continue  # one face only, so that both commands used the same one
        lm = np.array(r["faces"][0]["landmarks"], np.float64).reshape(5, 2)
        img = cv2.imread(r["image"])
        crop = cv2.warpAffine(img, umeyama(lm, ARCFACE), (112, 112), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x = (cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) - mean) / std
        net.setInput(x.transpose(2, 0, 1)[None])
        v = net.forward().reshape(-1).astype(np.float64)
        v /= np.linalg.norm(v)
        f = np.array(by_image[r["image"]]["embedding"], np.float64)
        c = float(v @ f / np.linalg.norm(f))
        cos.append(c)
        print(f"{c:.6f}  {r['image']}")
    if not cos:
        sys.exit("no image with exactly one face")
    print(f"{a.embedder}: {len(cos)} images, cosine facerec vs reference: min {min(cos):.6f}, "
          f"median {float(np.median(cos)):.6f}")


if __name__ == "__main__":
    main()
