#!/usr/bin/python3
"""FLOPs per inference of ONNX models, counted from the graph.

FLOPs = 2 x MACs of Conv, ConvTranspose, Gemm and MatMul (the layers that
reach the GEMM/conv kernels); element-wise ops, pooling, BN, activations and
resizes are not counted (they are memory-bound and a few % of the total in
these networks). Shapes come from onnx shape inference after the graph input
is fixed to the size the pipeline feeds (batch 1).

usage: /usr/bin/python3 bench/onnx_flops.py [--manifest models/manifest.json]
           [--onnx NAME=PATH:1x3xHxW ...] [--json out.json]
Manifest models are counted at their manifest input size (640x640 for yunet,
whose input is dynamic; the pipeline letterboxes into 640x640 by default).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import shape_inference, numpy_helper


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _fold_shapes(m, max_iter=50):
    """Shape inference stops at Reshapes whose target is computed at run time
    (Shape -> Gather -> Div -> Concat, as in yolov5-face's channel shuffle and
    heads). Folds such small integer subgraphs to constants with numpy, and
    infers again, until nothing changes."""
    from onnx import helper
    for _ in range(max_iter):
        m = shape_inference.infer_shapes(m)
        shapes = {}
        for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
            t = vi.type.tensor_type
            if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
                shapes[vi.name] = [d.dim_value for d in t.shape.dim]
        consts = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        changed = False
        keep = []
        for n in m.graph.node:
            v = None
            ins = [consts.get(x) if x else None for x in n.input]
            try:
                if n.op_type == "Constant":
                    v = numpy_helper.to_array(_attr(n, "value"))
                elif n.op_type == "Shape" and n.input[0] in shapes:
                    v = np.array(shapes[n.input[0]], dtype=np.int64)
                elif n.input and all(x is not None for x in ins[:1]) and all(
                        (x is not None) or (not name) for x, name in zip(ins, n.input)):
                    if n.op_type == "Gather":
                        v = np.take(ins[0], ins[1], axis=_attr(n, "axis", 0))
                    elif n.op_type == "Unsqueeze":
                        axes = _attr(n, "axes") if len(ins) < 2 else list(ins[1])
                        v = ins[0]
                        for a in sorted(axes):
                            v = np.expand_dims(v, a)
                    elif n.op_type == "Squeeze":
                        axes = _attr(n, "axes") if len(ins) < 2 else list(ins[1])
                        v = np.squeeze(ins[0], axis=tuple(axes)) if axes is not None else np.squeeze(ins[0])
                    elif n.op_type == "Concat":
                        v = np.concatenate([np.atleast_1d(x) for x in ins], axis=_attr(n, "axis"))
                    elif n.op_type in ("Add", "Sub", "Mul", "Div"):
                        a, b = ins
                        if n.op_type == "Div" and np.issubdtype(a.dtype, np.integer):
                            v = a // b
                        else:
                            v = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[n.op_type](a, b)
                    elif n.op_type == "Cast":
                        v = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[_attr(n, "to")])
                    elif n.op_type in ("Floor", "Ceil"):
                        v = getattr(np, n.op_type.lower())(ins[0])
                    elif n.op_type == "Slice" and len(ins) >= 3:
                        data = ins[0]
                        starts, ends = ins[1], ins[2]
                        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
                        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
                        sl = [slice(None)] * data.ndim
                        for s0, e0, a0, st in zip(starts, ends, axes, steps):
                            sl[a0] = slice(int(s0), int(e0), int(st))
                        v = data[tuple(sl)]
            except Exception:
                v = None
            if v is not None and len(n.output) == 1 and v.size <= 64:
                m.graph.initializer.append(numpy_helper.from_array(np.asarray(v), n.output[0]))
                changed = True
            else:
                keep.append(n)
        if not changed:
            return m
        del m.graph.node[:]
        m.graph.node.extend(keep)
    return m


def count(path, input_shape):
    m = onnx.load(path)
    init_names = {i.name for i in m.graph.initializer}
    real_inputs = [i for i in m.graph.input if i.name not in init_names]
    assert len(real_inputs) == 1, f"{path}: expected one input, got {[i.name for i in real_inputs]}"
    dims = real_inputs[0].type.tensor_type.shape.dim
    for d, v in zip(dims, input_shape):
        d.ClearField("dim_param")
        d.dim_value = v
    # Outputs may carry stale dynamic dims; shape inference fills value_info.
    m = _fold_shapes(m)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for i in m.graph.initializer:
        shapes[i.name] = list(i.dims)

    def shp(name):
        s = shapes.get(name)
        if s and s[0] is None and len(s) == 4:
            s = [input_shape[0]] + s[1:]  # batch lost through a Resize; the input's batch (1)
        if s is None or any(v is None for v in s):
            raise RuntimeError(f"{path}: shape of {name} not inferred ({s})")
        return s

    macs = {"Conv": 0, "ConvTranspose": 0, "Gemm": 0, "MatMul": 0}
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = shp(n.input[1])  # Cout, Cin/g, kh, kw
            y = shp(n.output[0])  # N, Cout, Ho, Wo
            macs["Conv"] += int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            w = shp(n.input[1])  # Cin, Cout/g, kh, kw
            x = shp(n.input[0])
            macs["ConvTranspose"] += int(np.prod(x)) * int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            a = shp(n.input[0])
            y = shp(n.output[0])
            k = a[0] if _attr(n, "transA", 0) else a[1]
            macs["Gemm"] += int(np.prod(y)) * k
        elif n.op_type == "MatMul":
            a = shp(n.input[0])
            y = shp(n.output[0])
            macs["MatMul"] += int(np.prod(y)) * a[-1]
    total = sum(macs.values())
    return {"path": path, "input_shape": list(input_shape), "gmacs": total / 1e9, "gflops": 2 * total / 1e9,
            "macs_by_op": {k: v for k, v in macs.items() if v}}


def manifest_models(manifest_path):
    with open(manifest_path) as f:
        man = json.load(f)
    shared = os.environ.get("FACEREC_SHARED") or os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(manifest_path)), "..", "..", "shared"))
    cache = os.environ.get("FACEREC_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "facerec")
    out = []
    for e in man["models"]:
        src = e["source"]
        if "file" in src:
            path = src["file"].replace("${FACEREC_SHARED}", shared)
        else:
            path = os.path.join(cache, "models", e["id"] + ".onnx")
        inp = e["input"]
        c = 1 if inp.get("channels") == "GRAY" else 3
        w = inp.get("width") or 640
        h = inp.get("height") or 640
        out.append((e["id"], path, [1, c, h, w]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "manifest.json"))
    ap.add_argument("--no-manifest", action="store_true")
    ap.add_argument("--onnx", action="append", default=[], help="NAME=PATH:1x3xHxW")
    ap.add_argument("--json")
    a = ap.parse_args()
    todo = [] if a.no_manifest else manifest_models(a.manifest)
    for spec in a.onnx:
        name, rest = spec.split("=", 1)
        path, shape = rest.rsplit(":", 1)
        todo.append((name, path, [int(v) for v in shape.split("x")]))
    res = {}
    for name, path, shape in todo:
        if not os.path.exists(path):
            print(f"{name}: {path} missing, skipped", file=sys.stderr)
            continue
        res[name] = count(path, shape)
        print(f"{name:22s} {'x'.join(map(str, shape)):14s} {res[name]['gflops']:8.3f} GFLOPs  {res[name]['macs_by_op']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
