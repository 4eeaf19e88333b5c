"""Static int8 QDQ quantiser for facerec's ONNX models.

  calibrate FLOAT.onnx OUT.onnx --calib BLOBS.npy --onnx-run build/onnx_run --recipe OUT.json
      [--method auto|minmax|p99.9|p99.99|p99.999] [--activations auto|asym|sym]
      [--exclude NAME,NAME] [--target-cosine 0.995] [--max-exclude 8] [--val 16] [--chunk 8]
  apply FLOAT.onnx RECIPE.json OUT.onnx
  layers FLOAT.onnx          (the quantisable layer names, for --exclude)

calibrate: BLOBS.npy is [N, *input shape] float32, already preprocessed as
the pipeline feeds the model (facerec models quantize writes it). The first
N - val samples calibrate the activation ranges; the last `val` samples judge
every choice by the cosine between the int8 and the float outputs (each output
flattened, per sample, mean over samples and outputs):

1. range method x activation type (asymmetric uint8 / symmetric int8), then
   residual Adds int8 or float: the best mean cosine wins (or the ones given);
2. per-layer sensitivity: each layer quantised alone, its cost 1 - cosine;
3. while the whole model's mean cosine is below --target-cosine (or its
   worst held-out sample below --target-min-cosine), the most sensitive
   remaining layer stays float (at most --max-exclude).

The recipe (JSON) holds everything apply needs (ranges, activation type,
excluded layers, the float model's sha256) and the report: each candidate's
cosine, each layer's cost, and why each excluded layer was excluded.
Exit: 0 ok, 2 usage/input error, 1 engine error.
"""
import argparse
import hashlib
import json
import sys

import numpy as np
import onnx

from . import calib, qdq
from ..model_file import write_atomically

METHODS = ("minmax",) + tuple(f"p{p:g}" for p in calib.PERCENTILES)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build(float_path, recipe):
    """The quantised ModelProto for a recipe (deterministic)."""
    prepared = qdq.prepare(onnx.load(float_path))
    return qdq.quantize(prepared, {k: tuple(v) for k, v in recipe["ranges"].items()},
                        symmetric=recipe["activations"] == "sym", exclude=recipe.get("exclude", []),
                        quantize_add=recipe.get("quantize_add", True))


def cmd_calibrate(a):
    blobs = np.load(a.calib).astype(np.float32)
    if blobs.ndim < 2 or len(blobs) < 2:
        log("quantize: --calib must be [N, ...] with N >= 2")
        return 2
    n_val = min(a.val, len(blobs) // 2)
    cal, val = blobs[: len(blobs) - n_val], blobs[len(blobs) - n_val:]
    prepared = qdq.prepare(onnx.load(a.float_model))
    layers = qdq.weighted_layers(prepared)
    names = [l[0] for l in layers]
    forced = [x for x in (a.exclude.split(",") if a.exclude else []) if x]
    unknown = [x for x in forced if x not in names]
    if unknown:
        log(f"quantize: --exclude names no quantisable layer: {unknown}; see `layers`")
        return 2
    tensors = qdq.activation_tensors(prepared, layers)
    log(f"{len(layers)} quantisable layers, {len(tensors)} activation tensors; "
        f"{len(cal)} calibration + {len(val)} validation samples")
    stats = calib.collect(a.onnx_run, prepared, tensors, cal, chunk=a.chunk, log=log)
    ref = calib.run(a.onnx_run, prepared, val)

    def score(model):
        c = calib.cosines(ref, calib.run(a.onnx_run, model, val))
        return float(c.mean()), float(c.min())

    methods = METHODS if a.method == "auto" else (a.method,)
    acts = ("asym", "sym") if a.activations == "auto" else (a.activations,)
    candidates = []
    for m in methods:
        rng = stats.ranges(m)
        for act in acts:
            mean, worst = score(qdq.quantize(prepared, rng, symmetric=act == "sym", exclude=forced))
            candidates.append({"method": m, "activations": act, "mean_cosine": mean, "min_cosine": worst})
            log(f"  {m:8s} {act:4s}: cosine to float mean {mean:.5f}, min {worst:.5f}")
    # Ties (within 1e-4 of the best mean cosine) go to uint8 activations:
    # ONNX Runtime folds Relu into a zero-point-0 uint8 quantisation, not into
    # int8 (measured: fr_detect with int8 activations ran 4x slower than float).
    top = max(c["mean_cosine"] for c in candidates)
    best = max((c for c in candidates if c["mean_cosine"] >= top - 1e-4),
               key=lambda c: (c["activations"] == "asym", c["mean_cosine"]))
    rng = stats.ranges(best["method"])
    sym = best["activations"] == "sym"
    # Residual Adds in int8 (QLinearAdd) or float, for the best range choice.
    best["quantize_add"] = a.quantize_add != "no"
    if a.quantize_add == "auto":
        mean, worst = score(qdq.quantize(prepared, rng, symmetric=sym, exclude=forced, quantize_add=False))
        log(f"  {best['method']:8s} {best['activations']:4s} float Adds: cosine to float mean {mean:.5f}, min {worst:.5f}")
        candidates.append({"method": best["method"], "activations": best["activations"], "quantize_add": False,
                           "mean_cosine": mean, "min_cosine": worst})
        if mean > best["mean_cosine"]:
            best = candidates[-1]
    qadd = best["quantize_add"]

    sensitivity = []
    if a.max_exclude > 0 or a.sensitivity:
        for name in names:
            if name in forced:
                continue
            mean, _ = score(qdq.quantize(prepared, rng, symmetric=sym, only=[name], quantize_add=qadd))
            sensitivity.append({"layer": name, "cost": 1.0 - mean})
        sensitivity.sort(key=lambda s: -s["cost"])
        log("most sensitive layers (1 - cosine when quantised alone): " +
            ", ".join(f"{s['layer']} {s['cost']:.2e}" for s in sensitivity[:5]))

    excluded = [{"layer": x, "why": "asked (--exclude)"} for x in forced]
    mean, worst = best["mean_cosine"], best["min_cosine"]
    history = [{"excluded": len(excluded), "mean_cosine": mean, "min_cosine": worst}]
    for s in sensitivity:
        if (mean >= a.target_cosine and worst >= a.target_min_cosine) or \
                len(excluded) - len(forced) >= a.max_exclude:
            break
        excluded.append({"layer": s["layer"],
                         "why": f"whole model at cosine mean {mean:.5f} / min {worst:.5f} < target "
                                f"{a.target_cosine} / {a.target_min_cosine}; this layer alone costs {s['cost']:.2e} "
                                "(the most of those left)"})
        mean, worst = score(qdq.quantize(prepared, rng, symmetric=sym, exclude=[e["layer"] for e in excluded],
                                         quantize_add=qadd))
        history.append({"excluded": len(excluded), "mean_cosine": mean, "min_cosine": worst})
        log(f"  float {s['layer']}: cosine mean {mean:.5f}, min {worst:.5f}")

    recipe = {
        "format": 1,
        "float_sha256": sha256(a.float_model),
        "activations": best["activations"],
        "method": best["method"],
        "quantize_add": qadd,
        "exclude": [e["layer"] for e in excluded],
        "ranges": rng,
        "report": {
            "layers": len(names), "calibration_samples": len(cal), "validation_samples": len(val),
            "candidates": candidates, "sensitivity": sensitivity, "excluded": excluded, "history": history,
            "final": {"mean_cosine": mean, "min_cosine": worst}, "calibration": a.provenance,
        },
    }
    write_atomically(build(a.float_model, recipe), a.out)
    with open(a.recipe, "w") as f:
        json.dump(recipe, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps({"out": a.out, "sha256": sha256(a.out), "recipe": a.recipe, "activations": best["activations"],
                      "method": best["method"], "excluded": excluded, "mean_cosine": mean, "min_cosine": worst}))
    return 0


def cmd_apply(a):
    with open(a.recipe) as f:
        recipe = json.load(f)
    got = sha256(a.float_model)
    if recipe.get("float_sha256") not in (None, got):
        log(f"quantize: {a.float_model} has sha256 {got}, the recipe was made for {recipe['float_sha256']}")
        return 2
    write_atomically(build(a.float_model, recipe), a.out)
    print(json.dumps({"out": a.out, "sha256": sha256(a.out)}))
    return 0


def cmd_layers(a):
    for name, x, y in qdq.weighted_layers(qdq.prepare(onnx.load(a.float_model))):
        print(f"{name}\t{x} -> {y}")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m tools.quantize", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("float_model")
    c.add_argument("out")
    c.add_argument("--calib", required=True)
    c.add_argument("--onnx-run", required=True)
    c.add_argument("--recipe", required=True)
    c.add_argument("--method", default="auto", choices=("auto",) + METHODS)
    c.add_argument("--activations", default="auto", choices=("auto", "asym", "sym"))
    c.add_argument("--exclude", default="")
    c.add_argument("--quantize-add", default="auto", choices=("auto", "yes", "no"),
                   help="residual Adds in int8 (QLinearAdd) or float; auto: measured")
    c.add_argument("--target-cosine", type=float, default=0.995)
    c.add_argument("--target-min-cosine", type=float, default=0.0,
                   help="also keep layers float while the worst held-out sample is below this")
    c.add_argument("--max-exclude", type=int, default=8)
    c.add_argument("--sensitivity", action="store_true", help="measure per-layer costs even with --max-exclude 0")
    c.add_argument("--val", type=int, default=16)
    c.add_argument("--chunk", type=int, default=8)
    c.add_argument("--provenance", type=json.loads, default={}, help="JSON recorded in the report")
    c.set_defaults(fn=cmd_calibrate)
    ap = sub.add_parser("apply")
    ap.add_argument("float_model")
    ap.add_argument("recipe")
    ap.add_argument("out")
    ap.set_defaults(fn=cmd_apply)
    l = sub.add_parser("layers")
    l.add_argument("float_model")
    l.set_defaults(fn=cmd_layers)
    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except (OSError, ValueError, onnx.checker.ValidationError) as e:
        log(f"quantize: {e}")
        return 2
    except calib.EngineError as e:
        log(f"quantize: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
