"""TFLite -> ONNX, for float models built from the operators in SUPPORTED_OPS.

Layout: TFLite is NHWC; the ONNX model is NCHW. Every rank-4 activation is
held in NCHW, including the graph's rank-4 inputs and outputs (an image input
[N,H,W,3] becomes [N,3,H,W]). Weights are permuted once at conversion:
CONV_2D filters OHWI -> OIHW, DEPTHWISE_CONV_2D [1,KH,KW,C*M] -> [C*M,1,KH,KW]
with group = C. An operator whose meaning depends on the memory order
(RESHAPE, FULLY_CONNECTED's flatten, a reduction that drops axes) first
transposes back to NHWC, so the result is TFLite's exactly. Constants mixed
with rank-4 activations in elementwise operators are permuted the same way.
TFLite's SAME padding (extra pad at the end) is ONNX's SAME_UPPER.

The output is deterministic: the same .tflite and options give the same bytes,
so `facerec models fetch` can pin the converted file's sha256.

Errors: an operator outside SUPPORTED_OPS, a quantized tensor, or a graph the
rules above cannot express raises UnsupportedOpError / ConversionError with
the operator's name and index; nothing is written.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .reference import SUPPORTED_OPS, UnsupportedOpError, check_supported
from .schema import Model

CONVERTER_VERSION = "1"
OPSET = 13

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


class ConversionError(ValueError):
    pass


class _Builder:
    def __init__(self, model: Model, dynamic_batch: bool, dynamic_spatial: bool):
        self.m = model
        self.dynamic_batch = dynamic_batch
        self.dynamic_spatial = dynamic_spatial
        self.nodes = []
        self.inits = []
        self.val = {}  # tflite tensor index -> onnx value name
        self.nchw = {}  # tflite tensor index -> held as NCHW (rank 4)
        self.counter = 0

    def fresh(self, base):
        self.counter += 1
        return f"{base}__{self.counter}"

    def const(self, arr, base):
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def rank(self, i):
        return len(self.m.tensors[i].shape)

    def is_const(self, i):
        return i >= 0 and self.m.tensors[i].data is not None

    # A value of tensor i, usable in an elementwise op with an NCHW partner
    # when `as_nchw`.
    def operand(self, i, as_nchw, opdesc):
        t = self.m.tensors[i]
        if self.is_const(i):
            a = t.data
            if a.dtype != np.float32 and a.dtype.kind == "f":
                raise ConversionError(f"{opdesc}: constant '{t.name}' is {t.type_name}, expected FLOAT32")
            if as_nchw:
                if a.ndim > 4:
                    raise ConversionError(f"{opdesc}: constant '{t.name}' has rank {a.ndim}")
                a = a.reshape((1,) * (4 - a.ndim) + a.shape).transpose(NHWC_TO_NCHW)
            return self.const(a, f"c{i}")
        if as_nchw and not self.nchw.get(i):
            raise ConversionError(f"{opdesc}: mixes a rank-4 activation with the rank-{self.rank(i)} "
                                  f"activation '{t.name}'; not supported")
        return self.val[i]

    def to_nhwc(self, i):
        if self.nchw.get(i):
            return self.node("Transpose", [self.val[i]], f"t{i}_nhwc", perm=list(NCHW_TO_NHWC))
        return self.val[i]

    def set_out(self, i, name, nchw):
        self.val[i] = name
        self.nchw[i] = nchw

    def activation(self, x, act, opdesc):
        if act == "NONE":
            return x
        if act == "RELU":
            return self.node("Relu", [x], "relu")
        if act == "RELU6":
            return self.node("Clip", [x, self.const(np.float32(0), "zero"), self.const(np.float32(6), "six")], "relu6")
        if act == "RELU_N1_TO_1":
            return self.node("Clip", [x, self.const(np.float32(-1), "m1"), self.const(np.float32(1), "one")], "relu1")
        if act == "TANH":
            return self.node("Tanh", [x], "tanh")
        raise ConversionError(f"{opdesc}: unsupported fused activation {act}")

    def pads(self, o, k):
        if o["padding"] == "VALID":
            return {"pads": [0, 0, 0, 0]}
        if o["padding"] == "SAME":
            if k == (1, 1) and o["stride_h"] == 1 and o["stride_w"] == 1:
                return {"pads": [0, 0, 0, 0]}
            return {"auto_pad": "SAME_UPPER"}
        raise ConversionError(f"unsupported padding {o['padding']}")

    def convert_op(self, op):
        n, o = op.name, op.options
        desc = f"operator {op.index} ({n})"
        out = op.outputs[0]
        if n in ("ADD", "SUB", "MUL", "DIV"):
            a, b = op.inputs[0], op.inputs[1]
            four = any(self.rank(i) == 4 and not self.is_const(i) for i in (a, b))
            x = self.node({"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div"}[n],
                          [self.operand(a, four, desc), self.operand(b, four, desc)], n.lower())
            self.set_out(out, self.activation(x, o.get("activation", "NONE"), desc), four)
        elif n in ("NEG", "ABS", "RELU", "EXP"):
            i = op.inputs[0]
            x = self.node({"NEG": "Neg", "ABS": "Abs", "RELU": "Relu", "EXP": "Exp"}[n],
                          [self.operand(i, False, desc)], n.lower())
            self.set_out(out, x, bool(self.nchw.get(i)))
        elif n in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            i = op.inputs[0]
            if not self.nchw.get(i):
                raise ConversionError(f"{desc}: expects a rank-4 activation input")
            w = self.m.tensors[op.inputs[1]].data
            if w is None:
                raise ConversionError(f"{desc}: the filter is not a constant")
            if n == "CONV_2D":
                wk = w.transpose(0, 3, 1, 2)
                group = 1
            else:
                cin = self.m.tensors[i].shape[3]
                mult = o["depth_multiplier"] or 1
                if w.shape[3] != cin * mult:
                    raise ConversionError(f"{desc}: filter has {w.shape[3]} channels for {cin} x {mult}")
                wk = w.transpose(3, 0, 1, 2)
                group = cin
            ins = [self.val[i], self.const(wk.astype(np.float32), f"w{op.inputs[1]}")]
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                ins.append(self.const(self.m.tensors[op.inputs[2]].data.astype(np.float32), f"b{op.inputs[2]}"))
            k = (int(wk.shape[2]), int(wk.shape[3]))
            x = self.node("Conv", ins, "conv", kernel_shape=list(k), strides=[o["stride_h"], o["stride_w"]],
                          dilations=[o["dilation_h"], o["dilation_w"]], group=group, **self.pads(o, k))
            self.set_out(out, self.activation(x, o["activation"], desc), True)
        elif n == "MAX_POOL_2D":
            i = op.inputs[0]
            if not self.nchw.get(i):
                raise ConversionError(f"{desc}: expects a rank-4 activation input")
            k = (o["filter_h"], o["filter_w"])
            x = self.node("MaxPool", [self.val[i]], "maxpool", kernel_shape=list(k),
                          strides=[o["stride_h"], o["stride_w"]], **self.pads(o, k))
            self.set_out(out, self.activation(x, o["activation"], desc), True)
        elif n == "FULLY_CONNECTED":
            i = op.inputs[0]
            w = self.m.tensors[op.inputs[1]].data
            if w is None or o.get("weights_format", 0) != 0:
                raise ConversionError(f"{desc}: needs constant, non-shuffled weights")
            if o.get("keep_num_dims") and self.rank(i) != 2:
                raise ConversionError(f"{desc}: keep_num_dims on a rank-{self.rank(i)} input is not supported")
            x = self.to_nhwc(i)
            if self.rank(i) != 2:
                x = self.node("Reshape", [x, self.const(np.array([-1, w.shape[1]], np.int64), "fcshape")], "flatten")
            ins = [x, self.const(w.astype(np.float32), f"w{op.inputs[1]}")]
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                ins.append(self.const(self.m.tensors[op.inputs[2]].data.astype(np.float32), f"b{op.inputs[2]}"))
            x = self.node("Gemm", ins, "fc", transB=1)
            self.set_out(out, self.activation(x, o.get("activation", "NONE"), desc), False)
        elif n == "RESHAPE":
            i = op.inputs[0]
            if len(op.inputs) > 1 and op.inputs[1] >= 0:
                st = self.m.tensors[op.inputs[1]]
                if st.data is None:
                    raise ConversionError(f"{desc}: the new shape is not a constant")
                shape = [int(s) for s in st.data.reshape(-1)]
            else:
                shape = list(o.get("new_shape") or [])
            if self.dynamic_spatial:
                raise ConversionError(f"{desc}: RESHAPE in a model converted with dynamic spatial size")
            src = self.m.tensors[i].shape
            if self.dynamic_batch and shape and src and shape[0] == src[0]:
                shape[0] = 0  # ONNX: copy the (dynamic) batch dimension
            x = self.node("Reshape", [self.to_nhwc(i), self.const(np.array(shape, np.int64), "shape")], "reshape")
            if len(shape) == 4:
                x = self.node("Transpose", [x], "reshape_nchw", perm=list(NHWC_TO_NCHW))
            self.set_out(out, x, len(shape) == 4)
        elif n in ("REDUCE_MAX", "SUM"):
            i = op.inputs[0]
            at = self.m.tensors[op.inputs[1]]
            if at.data is None:
                raise ConversionError(f"{desc}: the axes are not a constant")
            r = self.rank(i)
            axes = sorted({int(v) % r for v in at.data.reshape(-1)})
            keep = bool(o.get("keep_dims", False))
            if self.nchw.get(i) and keep:
                x_in, axes, nchw_out = self.val[i], sorted(AXIS_NHWC_TO_NCHW[a] for a in axes), True
            else:
                x_in, nchw_out = self.to_nhwc(i), False
            if n == "REDUCE_MAX":
                x = self.node("ReduceMax", [x_in], "reducemax", axes=axes, keepdims=int(keep))
            else:
                x = self.node("ReduceSum", [x_in, self.const(np.array(axes, np.int64), "axes")], "reducesum",
                              keepdims=int(keep))
            self.set_out(out, x, nchw_out)
        else:
            raise UnsupportedOpError(f"unsupported TFLite operator {n} (operator {op.index})")


def convert(model: Model, dynamic_batch: bool = False, dynamic_spatial: bool = False,
            doc: str = "") -> onnx.ModelProto:
    """Builds the ONNX model. dynamic_batch makes dimension 0 of every input
    symbolic ('N'); dynamic_spatial makes H and W of rank-4 inputs symbolic
    (for fully convolutional nets such as MTCNN's PNet)."""
    check_supported(model, SUPPORTED_OPS)
    b = _Builder(model, dynamic_batch, dynamic_spatial)
    graph_inputs = []
    for k, i in enumerate(model.inputs):
        t = model.tensors[i]
        if t.type_name != "FLOAT32":
            raise ConversionError(f"input '{t.name}' is {t.type_name}; only FLOAT32 inputs are supported")
        dims = list(t.shape)
        if len(dims) == 4:
            dims = [dims[0], dims[3], dims[1], dims[2]]
            if dynamic_spatial:
                dims[2], dims[3] = "H", "W"
        if dynamic_batch and dims:
            dims[0] = "N"
        graph_inputs.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, dims))
        b.set_out(i, t.name, len(t.shape) == 4)
    for op in model.operators:
        b.convert_op(op)
    graph_outputs = []
    for i in model.outputs:
        t = model.tensors[i]
        b.nodes.append(helper.make_node("Identity", [b.val[i]], [t.name], name=t.name + "__out"))
        dims = list(t.shape)
        if len(dims) == 4:
            dims = [dims[0], dims[3], dims[1], dims[2]]
            if dynamic_spatial:
                dims[2] = dims[3] = None
        if dynamic_batch and dims:
            dims[0] = "N"
        graph_outputs.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, dims))
    graph = helper.make_graph(b.nodes, "tflite_import", graph_inputs, graph_outputs, initializer=b.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="facerec tools.tflite_import", producer_version=CONVERTER_VERSION,
                          doc_string=doc)
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m
