#!/usr/bin/python3
"""Issue 8's stage comparison, upstream of alignment: facerec's boxes and landmarks against an
independent reference on the same photos (bench/stage_reference.py covers alignment,
preprocessing and the embedder).

The reference is written from the models' own conventions, not from facerec's C++:
  detection  UltraFace (Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB, detect_imgs_onnx.py):
             BGR -> RGB, cv2.resize to 320x240 (stretch, bilinear), (x - 127) / 128, NCHW;
             the graph's `boxes` are corner boxes normalised to 0..1 (already decoded),
             `scores` column 1 the face probability; keep p > threshold, scale by the photo's
             width/height, hard NMS (box_utils_numpy.hard_nms: best first, drop IoU > t);
  landmarks  faceplugin-face-recognition-js (the npm package the models come from):
             fr_detect.js scaleResult: a square of the box's height about its centre, clipped
             to the photo; fr_landmark.js: corners truncated to integers, crop, bilinear
             resize to 64x64 in colour, then grey, / 256; the 136 outputs are x, y in 0..1 of
             the square, mapped back with its width and height;
  68 -> 5    two rules: `faceplugin` (fr_feature.js convert68pts5pts: eyes the mean of the 4
             lid points 37,38,40,41 / 43,44,46,47, nose 30, mouth corners mean(48,60),
             mean(54,64)) and `eyemeans` (eyes the mean of all 6 eye points, nose 30, mouth
             corners 48, 54: facerec's documented default);
  runtime    OpenCV's DNN module (not ONNX Runtime) on the same .onnx files (Debian's
             python3-onnx 1.12 has no onnx.reference evaluator).
Downstream: the embedding of each face aligned with the reference's landmarks and with
facerec's (both through stage_reference.py's Umeyama + warpAffine + OpenCV DNN fr_feature), and
their cosine; facerec's own embedding against the second (a check that alignment agrees).

facerec's side comes from the Python module (`import facerec`, built into build/python):
Recognizer(gallery='none', detector='fr_detect', embedder=...) .detect(), once with the default
detection policy and once with detect_policy='none' (the plain stretched input).

  /usr/bin/python3 bench/stage_reference_detect.py [--embedder fr_feature] [--list FILE] IMAGE...
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage_reference import ARCFACE, umeyama  # noqa: E402

CACHE = os.environ.get("FACEREC_CACHE", os.path.expanduser("~/.cache/facerec"))


# ---- detection (UltraFace conventions) --------------------------------------------------------

def iou_of(a, b, eps=1e-5):
    """IoU of corner boxes a [N,4] and b [M,4] (or [4]), as UltraFace's box_utils_numpy.iou_of."""
    lt = np.maximum(a[..., :2], b[..., :2])
    rb = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[..., 2:] - x[..., :2], 0, None).prod(-1)
    return inter / (area(a) + area(b) - inter + eps)


def hard_nms(boxes, scores, iou_threshold):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if order:
            rest = np.array(order)
            ious = iou_of(boxes[rest], boxes[i][None])
            order = [int(j) for j, v in zip(rest, ious) if v <= iou_threshold]
    return keep


class Reference:
    def __init__(self, embedder="fr_feature", manifest="models/manifest.json"):
        man = {m["id"]: m for m in json.load(open(manifest))["models"]}
        d, lm, emb = man["fr_detect"]["input"], man["fr_landmark"]["input"], man[embedder]["input"]
        # The conventions above, checked against the manifest rather than read from it.
        assert (d["width"], d["height"], d["channels"]) == (320, 240, "RGB"), d
        assert (lm["width"], lm["height"], lm["channels"]) == (64, 64, "GRAY"), lm
        self.det = cv2.dnn.readNetFromONNX(os.path.join(CACHE, "models", "fr_detect.onnx"))
        self.lm = cv2.dnn.readNetFromONNX(os.path.join(CACHE, "models", "fr_landmark.onnx"))
        self.emb = cv2.dnn.readNetFromONNX(os.path.join(CACHE, "models", embedder + ".onnx"))
        self.emb_mean = np.array(emb["mean"], np.float32)
        self.emb_std = np.array(emb["std"], np.float32)

    def detect(self, bgr, score_threshold=0.5, nms_iou=0.4):
        """Corner boxes [N,4] in photo pixels and scores [N], best first."""
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = (cv2.resize(rgb, (320, 240)).astype(np.float32) - 127.0) / 128.0
        self.det.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        boxes, scores = self.det.forward(["boxes", "scores"])
        p = scores[0, :, 1]
        m = p > score_threshold
        b = boxes[0][m].astype(np.float64) * np.array([w, h, w, h], np.float64)
        keep = hard_nms(b, p[m], nms_iou)
        return b[keep], p[m][keep]

    def landmarks68(self, bgr, box):
        """68 points [68,2] in photo pixels for a corner box, as fr_detect.js + fr_landmark.js."""
        h, w = bgr.shape[:2]
        x1, y1, x2, y2 = box
        side, cx, cy = y2 - y1, (x1 + x2) / 2, (y1 + y2) / 2   # scaleResult: square of the height
        sx1, sy1 = max(cx - side / 2, 0.0), max(cy - side / 2, 0.0)
        sx2, sy2 = min(cx + side / 2, w - 1.0), min(cy + side / 2, h - 1.0)
        X1, Y1, X2, Y2 = int(sx1), int(sy1), int(sx2), int(sy2)  # parseInt
        bw, bh = abs(X2 - X1), abs(Y2 - Y1)
        if bw < 1 or bh < 1:
            return None
        # alignLandmarkImage(img, [X1, Y1, bw, bh], 1.0)
        s = min((h - 1) / bh, (w - 1) / bw, 1.0)
        nw, nh = bw * s, bh * s
        ccx, ccy = bw / 2 + X1, bh / 2 + Y1
        l, t, r, b = ccx - nw / 2, ccy - nh / 2, ccx + nw / 2, ccy + nh / 2
        if l < 0:
            r, l = r - l, 0
        if t < 0:
            b, t = b - t, 0
        if r > w - 1:
            l, r = l - (r - w + 1), w - 1
        if b > h - 1:
            t, b = t - (b - h + 1), h - 1
        rx, ry = max(int(l), 0), max(int(t), 0)
        rw, rh = min(int(r - l), w - 1), min(int(b - t), h - 1)
        crop = cv2.resize(bgr[ry:ry + rh, rx:rx + rw], (64, 64))
        g = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32) / 256.0
        self.lm.setInput(g[None, None])
        p = self.lm.forward().reshape(68, 2).astype(np.float64)
        return np.stack([p[:, 0] * bw + X1, p[:, 1] * bh + Y1], 1)

    def embed(self, bgr, five):
        crop = cv2.warpAffine(bgr, umeyama(np.asarray(five, np.float64), ARCFACE), (112, 112),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x = (cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) - self.emb_mean) / self.emb_std
        self.emb.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        v = self.emb.forward().reshape(-1).astype(np.float64)
        return v / np.linalg.norm(v)


def reduce68(p, rule):
    m = lambda idx: p[list(idx)].mean(0)
    if rule == "faceplugin":
        return np.stack([m((37, 38, 40, 41)), m((43, 44, 46, 47)), p[30], m((48, 60)), m((54, 64))])
    if rule == "eyemeans":
        return np.stack([m(range(36, 42)), m(range(42, 48)), p[30], p[48], p[54]])
    raise ValueError(rule)


# ---- facerec's side --------------------------------------------------------------------------

def facerec_faces(rec, path):
    out = []
    for f in rec.detect(path):
        out.append({"box": np.array(f.box, np.float64), "score": float(f.score),
                    "lm5": np.array(f.landmarks, np.float64), "emb": np.array(f.embedding, np.float64)})
    return out


def import_facerec(build):
    sys.path.insert(0, os.path.join(build, "python"))
    import facerec  # noqa: E402
    return facerec


def corners(box):
    """facerec's Face.box as the module gives it: x1, y1, x2, y2."""
    return np.asarray(box, np.float64)


def compare_image(ref, path, fr_faces, rule_default="eyemeans"):
    """Per facerec face matched to a reference face (IoU >= 0.5): IoU, landmark distances, cosines.
    Returns (rows, unmatched_facerec, unmatched_reference)."""
    bgr = cv2.imread(path)
    rb, rs = ref.detect(bgr)
    rows, used = [], set()
    h, w = bgr.shape[:2]
    centre = np.array([w / 2, h / 2])
    dist = [np.linalg.norm((corners(f["box"])[:2] + corners(f["box"])[2:]) / 2 - centre) for f in fr_faces]
    central = int(np.argmin(dist)) if fr_faces else -1
    for k, f in enumerate(fr_faces):
        fb = corners(f["box"])
        if len(rb) == 0:
            continue
        ious = iou_of(rb, fb[None])
        j = int(np.argmax(ious))
        if ious[j] < 0.5 or j in used:
            continue
        used.add(j)
        p68 = ref.landmarks68(bgr, rb[j])
        if p68 is None:
            continue
        row = {"image": path, "central": k == central, "box": [round(float(v), 2) for v in fb],
               "ref_box": [round(float(v), 2) for v in rb[j]], "iou": float(ious[j]), "score_diff": abs(float(rs[j]) - f["score"]),
               "iod": float(np.linalg.norm(f["lm5"][1] - f["lm5"][0]))}
        e_fr = ref.embed(bgr, f["lm5"])
        row["cos_facerec_emb"] = float(e_fr @ f["emb"] / np.linalg.norm(f["emb"]))
        for rule in ("eyemeans", "faceplugin"):
            five = reduce68(p68, rule)
            d = np.linalg.norm(five - f["lm5"], axis=1)
            row[f"lm_mean_px_{rule}"] = float(d.mean())
            row[f"lm_max_px_{rule}"] = float(d.max())
            row[f"cos_{rule}"] = float(ref.embed(bgr, five) @ e_fr)
        rows.append(row)
    return rows, len(fr_faces) - len(rows), len(rb) - len(used)


def summarise(rows, label):
    if not rows:
        return {"label": label, "faces": 0}
    a = lambda k: np.array([r[k] for r in rows])
    s = {"label": label, "faces": len(rows)}
    dis = 1 - a("iou")
    s["iou_disagreement_median"], s["iou_disagreement_max"] = float(np.median(dis)), float(dis.max())
    for rule in ("eyemeans", "faceplugin"):
        px = a(f"lm_mean_px_{rule}")
        rel = px / a("iod")
        s[rule] = {"lm_px_median": float(np.median(px)), "lm_px_max": float(px.max()),
                   "lm_rel_iod_median": float(np.median(rel)), "lm_rel_iod_max": float(rel.max()),
                   "cos_median": float(np.median(a(f"cos_{rule}"))), "cos_min": float(a(f"cos_{rule}").min()),
                   "cos_p5": float(np.percentile(a(f"cos_{rule}"), 5))}
    c = a("cos_facerec_emb")
    s["facerec_embedding_vs_reference_alignment"] = {"cos_min": float(c.min()), "cos_median": float(np.median(c))}
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="fr_feature")
    ap.add_argument("--build", default="build")
    ap.add_argument("--manifest", default="models/manifest.json")
    ap.add_argument("--policies", default="default,none",
                    help="facerec detection policies to compare (comma-separated; 'default' is the library's)")
    ap.add_argument("--rows", help="write every face's numbers here (JSON lines)")
    ap.add_argument("--list", help="a file with one image path per line (paths with spaces)")
    ap.add_argument("images", nargs="*")
    a = ap.parse_args()
    if a.list:
        a.images += [l.rstrip("\n") for l in open(a.list) if l.strip()]
    if not a.images:
        ap.error("no images")
    facerec = import_facerec(a.build)
    ref = Reference(a.embedder, a.manifest)
    summaries = []
    out = open(a.rows, "w") if a.rows else None
    for pol in a.policies.split(","):
        rec = facerec.Recognizer(gallery="none", detector="fr_detect", embedder=a.embedder, manifest=a.manifest,
                                 threads=1, detect_policy=None if pol == "default" else pol)
        rows, miss_fr, miss_ref = [], 0, 0
        for path in a.images:
            r, mf, mr = compare_image(ref, path, facerec_faces(rec, path))
            rows += r
            miss_fr += mf
            miss_ref += mr
            if out:
                for x in r:
                    out.write(json.dumps({"policy": pol, **x}) + "\n")
        s = summarise(rows, f"facerec policy {pol}")
        s["images"], s["facerec_faces_unmatched"], s["reference_faces_unmatched"] = len(a.images), miss_fr, miss_ref
        # The face an LFW evaluation uses: the one nearest the photo's centre.
        s["central_faces_only"] = summarise([r for r in rows if r["central"]], "central")
        summaries.append(s)
        print(json.dumps(s, indent=1))
    if out:
        out.close()


if __name__ == "__main__":
    main()
