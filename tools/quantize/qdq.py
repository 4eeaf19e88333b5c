"""Graph surgery for static int8 QDQ quantisation, numpy + onnx only.

The float model is first brought to opset 13 (per-axis QuantizeLinear and
DequantizeLinear need it) and its Conv -> BatchNormalization pairs are folded
(ONNX Runtime cannot fold a BatchNorm into a Conv whose weight comes out of a
DequantizeLinear). Then, for every quantised layer (Conv, Gemm, MatMul with a
constant weight):

- the weight becomes an int8 initialiser, symmetric per output channel
  ([-127, 127], zero point 0) behind a DequantizeLinear;
- a bias becomes int32 with scale = input scale x weight scale (what ONNX
  Runtime's QLinearConv wants), zero point 0;
- its activation input and its output get QuantizeLinear -> DequantizeLinear,
  with the scale and zero point from the calibrated range [lo, hi]:
  asymmetric uint8 (zero point from lo) or symmetric int8 (zero point 0).

Add nodes whose inputs and output are all quantised tensors are left for ONNX
Runtime to fuse into QLinearAdd. A tensor is quantised once: every consumer
reads the DequantizeLinear output. An excluded layer keeps its float weight
and adds no QDQ of its own (a neighbour may still quantise a tensor it reads).

Everything here is a pure function of (float model, ranges, config), so the
same recipe gives the same bytes (and sha256) on any machine.
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

WEIGHTED = ("Conv", "Gemm", "MatMul")


def to_opset13(model):
    """The model at opset 13, for the ops facerec's models use.

    onnx's version_converter needs every Softmax input's shape, which a
    Reshape to a computed shape hides, so the few ops whose signature changed
    between opset 9 and 13 are rewritten here instead: Unsqueeze/Squeeze axes
    and Slice starts/ends/axes (attributes -> inputs), and Softmax, whose
    meaning is the same only on the last axis (checked). Anything else that
    changed is refused rather than converted wrongly."""
    ver = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if ver >= 13:
        return model
    from onnx import shape_inference
    g = model.graph
    inferred = shape_inference.infer_shapes(model).graph
    rank = {v.name: len(v.type.tensor_type.shape.dim) for v in list(inferred.value_info) + list(inferred.output) +
            list(inferred.input) if v.type.tensor_type.HasField("shape")}
    refused = {"Split", "ReduceSum", "Upsample", "Pad", "Scan", "Loop", "If", "TopK"}
    if ver < 11:
        refused |= {"Clip", "Resize"}
    for n in g.node:
        if n.op_type in refused:
            raise ValueError(f"cannot bring {n.op_type} (opset {ver}) to opset 13 for quantisation")
        attrs = {a.name: a for a in n.attribute}
        if n.op_type in ("Unsqueeze", "Squeeze") and "axes" in attrs:
            name = n.name + "_axes" if n.name else n.output[0] + "_axes"
            g.initializer.append(numpy_helper.from_array(np.array(list(attrs["axes"].ints), np.int64), name))
            n.input.append(name)
            n.attribute.remove(attrs["axes"])
        elif n.op_type == "Slice" and ver < 10:
            base = n.output[0]
            ins = [n.input[0]]
            for key in ("starts", "ends", "axes"):
                if key in attrs:
                    g.initializer.append(numpy_helper.from_array(np.array(list(attrs[key].ints), np.int64),
                                                                 f"{base}_{key}"))
                    ins.append(f"{base}_{key}")
                    n.attribute.remove(attrs[key])
            del n.input[:]
            n.input.extend(ins)
        elif n.op_type in ("Softmax", "LogSoftmax", "Hardmax"):
            axis = attrs["axis"].i if "axis" in attrs else 1
            r = rank.get(n.input[0], rank.get(n.output[0]))
            if axis != -1 and (r is None or axis % r != r - 1):
                raise ValueError(f"{n.op_type} {n.name or n.output[0]} on axis {axis} of rank {r}: its meaning "
                                 "changes at opset 13")
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 13
    if model.ir_version < 7:
        model.ir_version = 7
    return model


def _inits(model):
    return {i.name: i for i in model.graph.initializer}


def _consumers(model):
    out = {}
    for n in model.graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def _const_nodes_to_initializers(model):
    """Constant nodes become initialisers (so weights behind them are seen)."""
    keep = []
    for n in model.graph.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = numpy_helper.to_array(n.attribute[0].t)
            model.graph.initializer.append(numpy_helper.from_array(t, n.output[0]))
        else:
            keep.append(n)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def prepare(model):
    """Opset 13, Constant nodes as initialisers, Conv+BatchNorm folded, every
    node named. Returns a new ModelProto; the float function is unchanged."""
    model = to_opset13(onnx.ModelProto.FromString(model.SerializeToString()))
    _const_nodes_to_initializers(model)
    del model.graph.value_info[:]
    inits = _inits(model)
    consumers = _consumers(model)
    outputs = {o.name for o in model.graph.output}
    drop = set()
    for n in model.graph.node:
        if n.op_type != "BatchNormalization" or len(n.output) != 1:
            continue
        prod = [p for p in model.graph.node if n.input[0] in p.output]
        if not prod or prod[0].op_type != "Conv" or n.input[0] in outputs or len(consumers.get(n.input[0], [])) != 1:
            continue
        conv = prod[0]
        if conv.input[1] not in inits or any(x not in inits for x in n.input[1:]):
            continue
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[x]).astype(np.float64) for x in n.input[1:5])
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        b = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2]
             else np.zeros(w.shape[0]))
        k = gamma / np.sqrt(var + eps)
        w2 = (w * k.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        b2 = ((b - mean) * k + beta).astype(np.float32)
        wname, bname = n.output[0] + "_folded_w", n.output[0] + "_folded_b"
        model.graph.initializer.extend([numpy_helper.from_array(w2, wname), numpy_helper.from_array(b2, bname)])
        x = conv.input[0]
        del conv.input[:]
        conv.input.extend([x, wname, bname])
        conv.output[0] = n.output[0]
        drop.add(id(n))
    if drop:
        keep = [n for n in model.graph.node if id(n) not in drop]
        del model.graph.node[:]
        model.graph.node.extend(keep)
    for k, n in enumerate(model.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{k}"
    _drop_unused_initializers(model)
    return model


def _drop_unused_initializers(model):
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    gi = [i for i in model.graph.input if i.name in used or i.name not in {x.name for x in keep}]
    del model.graph.input[:]
    model.graph.input.extend([i for i in gi if i.name in used])


def weighted_layers(model):
    """[(node name, activation input, output)] of every Conv/Gemm/MatMul whose
    weight is a constant (after prepare)."""
    inits = _inits(model)
    out = []
    for n in model.graph.node:
        if n.op_type in WEIGHTED and len(n.input) >= 2 and n.input[1] in inits and n.input[0] not in inits:
            if n.op_type == "MatMul" and numpy_helper.to_array(inits[n.input[1]]).ndim != 2:
                continue
            out.append((n.name, n.input[0], n.output[0]))
    return out


def activation_tensors(model, layers=None):
    """The float tensors that quantisation needs a range for: the activation
    input and output of each weighted layer, and the inputs and output of Add
    nodes (all of them, so that any subset can be chosen later)."""
    layers = weighted_layers(model) if layers is None else layers
    names = []
    for _, x, y in layers:
        names += [x, y]
    inits = _inits(model)
    for n in model.graph.node:
        if n.op_type == "Add" and all(i not in inits for i in n.input):
            names += list(n.input) + [n.output[0]]
    seen, out = set(), []
    for t in names:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def qparams(lo, hi, symmetric):
    """(scale, zero point, numpy dtype) for the range [lo, hi] (widened to hold 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        a = max(abs(lo), abs(hi))
        scale = a / 127.0 if a > 0 else 1.0
        return np.float32(scale), np.int8(0), np.int8
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(round(-lo / scale))
    return np.float32(scale), np.uint8(min(255, max(0, zp))), np.uint8


def quantize(model, ranges, symmetric=False, exclude=(), only=None, quantize_add=True):
    """The QDQ model. model: the output of prepare(); ranges: {tensor: (lo, hi)}
    for every tensor of activation_tensors(); exclude: layer (node) names kept
    float; only: when given, quantise just these layers (and no Add), for the
    per-layer sensitivity. Returns a new ModelProto."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    g = m.graph
    inits = _inits(m)
    graph_outputs = {o.name for o in g.output}
    layers = [l for l in weighted_layers(m) if l[0] not in set(exclude) and (only is None or l[0] in set(only))]
    chosen = {name for name, _, _ in layers}
    # A layer whose only consumer is a Relu (or Clip) is quantised after it:
    # ONNX Runtime then folds the Relu into the uint8 quantisation (zero point
    # 0) and runs the pair as one QLinearConv, instead of DQ -> Relu -> Q.
    consumers = _consumers(m)
    act_after = {}
    for _, _, y in layers:
        c = consumers.get(y, [])
        if len(c) == 1 and c[0].op_type in ("Relu", "Clip") and y not in graph_outputs:
            act_after[y] = c[0].output[0]
    quant_t = []  # tensors to put behind Q -> DQ
    for _, x, y in layers:
        quant_t += [x, act_after.get(y, y)]
    if quantize_add and only is None:
        q = set(quant_t)
        for n in g.node:
            if n.op_type == "Add" and all(i not in inits for i in n.input) and all(i in q for i in n.input):
                quant_t.append(n.output[0])
    scales = {}
    new_nodes_after = {}  # tensor -> nodes to insert right after its producer
    new_inits = []
    rename = {}
    for t in dict.fromkeys(quant_t):
        if t in graph_outputs or t not in ranges:
            continue
        s, zp, dt = qparams(*ranges[t], symmetric)
        scales[t] = s
        sn, zn = t + "_qscale", t + "_qzp"
        new_inits += [numpy_helper.from_array(np.array(s, np.float32), sn), numpy_helper.from_array(np.array(zp, dt), zn)]
        qn, dqn = t + "_quantized", t + "_dequantized"
        new_nodes_after[t] = [helper.make_node("QuantizeLinear", [t, sn, zn], [qn], name=t + "_Q"),
                              helper.make_node("DequantizeLinear", [qn, sn, zn], [dqn], name=t + "_DQ")]
        rename[t] = dqn
    # Consumers read the dequantised tensor.
    for n in g.node:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
    # Weights and biases of the chosen layers.
    for n in g.node:
        if n.name not in chosen:
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        if n.op_type == "Conv":
            axis = 0
        elif n.op_type == "Gemm":
            transb = next((a.i for a in n.attribute if a.name == "transB"), 0)
            axis = 0 if transb else 1
        else:
            axis = 1
        red = tuple(a for a in range(w.ndim) if a != axis)
        amax = np.abs(w).max(axis=red)
        # A channel of (near-)zero weights: scale 1, every weight 0 (fr_feature
        # has denormal channels, whose amax / 127 would underflow to 0).
        ws = np.where(amax > 1e-30, amax / 127.0, 1.0).astype(np.float32)
        ws[ws < 1e-30] = 1.0
        shape = [1] * w.ndim
        shape[axis] = -1
        wq = np.clip(np.round(w / ws.reshape(shape)), -127, 127).astype(np.int8)
        base = n.name
        new_inits += [numpy_helper.from_array(wq, base + "_w_int8"), numpy_helper.from_array(ws, base + "_w_scale"),
                      numpy_helper.from_array(np.zeros(ws.shape, np.int8), base + "_w_zp")]
        wdq = helper.make_node("DequantizeLinear", [base + "_w_int8", base + "_w_scale", base + "_w_zp"],
                               [base + "_w_dq"], name=base + "_w_DQ", axis=axis)
        new_nodes_after.setdefault("__weights__", []).append(wdq)
        n.input[1] = base + "_w_dq"
        if n.op_type == "Conv" and len(n.input) > 2 and n.input[2] in inits and n.input[0].endswith("_dequantized"):
            x = n.input[0][: -len("_dequantized")]
            b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
            bs = (np.float64(scales[x]) * ws.astype(np.float64)).astype(np.float32)
            bs[bs < 1e-30] = 1.0
            bq = np.clip(np.round(b / bs), -(2**31 - 1), 2**31 - 1).astype(np.int32)
            new_inits += [numpy_helper.from_array(bq, base + "_b_int32"), numpy_helper.from_array(bs, base + "_b_scale"),
                          numpy_helper.from_array(np.zeros(bs.shape, np.int32), base + "_b_zp")]
            bdq = helper.make_node("DequantizeLinear", [base + "_b_int32", base + "_b_scale", base + "_b_zp"],
                                   [base + "_b_dq"], name=base + "_b_DQ", axis=0)
            new_nodes_after["__weights__"].append(bdq)
            n.input[2] = base + "_b_dq"
    # Rebuild the node list in topological order: weight DQs first, then each
    # node followed by the Q/DQ of its outputs; graph inputs' Q/DQ at the top.
    nodes = list(new_nodes_after.pop("__weights__", []))
    for i in g.input:
        nodes += new_nodes_after.pop(i.name, [])
    for n in g.node:
        nodes.append(n)
        for o in n.output:
            nodes += new_nodes_after.pop(o, [])
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    _drop_unused_initializers(m)
    onnx.checker.check_model(m)
    return m


def with_outputs(model, tensors):
    """A copy of model whose graph outputs are its own followed by `tensors`
    (float, shape left open): the calibration model."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in m.graph.output}
    for t in tensors:
        if t not in have:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    return m
