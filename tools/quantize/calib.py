"""Activation ranges and accuracy checks, measured through facerec's own
engine: build/onnx_run (ONNX Runtime with the library's session settings),
run once per sample with --each. No onnxruntime Python module is used.
"""
import os
import subprocess
import tempfile

import numpy as np
import onnx

from . import qdq

# Percentiles tried for the "pNN" range methods (the low end mirrors them).
PERCENTILES = (99.9, 99.99, 99.999)


class EngineError(RuntimeError):
    pass


def run(onnx_run, model, blobs, workdir=None):
    """Runs model (a ModelProto or a path) on blobs [N, *input shape] through
    onnx_run --each; returns its outputs, each stacked as [N, ...]."""
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        if isinstance(model, onnx.ModelProto):
            path = os.path.join(d, "model.onnx")
            onnx.save(model, path)
        else:
            path = model
        inp = os.path.join(d, "in.npy")
        np.save(inp, np.ascontiguousarray(blobs, dtype=np.float32))
        r = subprocess.run([onnx_run, "--each", path, d, inp], capture_output=True, text=True)
        if r.returncode != 0:
            raise EngineError(f"{onnx_run} failed: {r.stderr.strip()}")
        n_out = len(onnx.load(path, load_external_data=False).graph.output) if isinstance(model, str) else len(
            model.graph.output)
        return [np.load(os.path.join(d, f"{k}.npy")) for k in range(n_out)]


class RangeStats:
    """Per tensor: the global min and max, and per-sample percentiles."""

    def __init__(self, tensors):
        self.tensors = list(tensors)
        self.lo = {t: np.inf for t in self.tensors}
        self.hi = {t: -np.inf for t in self.tensors}
        self.pct = {t: [] for t in self.tensors}  # per sample: [(lo_p, hi_p) for p in PERCENTILES]

    def add(self, tensor, batch):
        for x in batch:
            v = x.reshape(-1).astype(np.float32)
            self.lo[tensor] = min(self.lo[tensor], float(v.min()))
            self.hi[tensor] = max(self.hi[tensor], float(v.max()))
            n = v.size
            ks = sorted({min(n - 1, max(0, int(round(q / 100.0 * (n - 1))))) for p in PERCENTILES
                         for q in (p, 100.0 - p)})
            part = np.partition(v, ks)
            row = []
            for p in PERCENTILES:
                khi = min(n - 1, max(0, int(round(p / 100.0 * (n - 1)))))
                klo = min(n - 1, max(0, int(round((100.0 - p) / 100.0 * (n - 1)))))
                row.append((float(part[klo]), float(part[khi])))
            self.pct[tensor].append(row)

    def ranges(self, method):
        """{tensor: [lo, hi]} for method 'minmax' or 'pNN.NN' (the mean over
        samples of each sample's percentile)."""
        if method == "minmax":
            return {t: [self.lo[t], self.hi[t]] for t in self.tensors}
        p = float(method[1:])
        k = PERCENTILES.index(p)
        out = {}
        for t in self.tensors:
            a = np.array([row[k] for row in self.pct[t]], dtype=np.float64)
            out[t] = [float(a[:, 0].mean()), float(a[:, 1].mean())]
        return out


def collect(onnx_run, prepared, tensors, blobs, chunk=8, log=print):
    """RangeStats of `tensors` over blobs, in chunks (bounded memory)."""
    stats = RangeStats(tensors)
    base = len(prepared.graph.output)
    aug = qdq.with_outputs(prepared, tensors)
    names = [o.name for o in aug.graph.output]
    for s in range(0, len(blobs), chunk):
        outs = run(onnx_run, aug, blobs[s:s + chunk])
        for name, arr in zip(names, outs):
            if name in stats.lo:
                stats.add(name, arr)
        log(f"calibration: {min(s + chunk, len(blobs))}/{len(blobs)} samples")
    del base
    return stats


def cosines(ref, got):
    """[samples, outputs] cosine between each output of each sample, flattened."""
    out = np.zeros((ref[0].shape[0], len(ref)))
    for k, (a, b) in enumerate(zip(ref, got)):
        a = a.reshape(a.shape[0], -1).astype(np.float64)
        b = b.reshape(b.shape[0], -1).astype(np.float64)
        num = (a * b).sum(1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        out[:, k] = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return out
