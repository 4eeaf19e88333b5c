"""Reads a .tflite file (a FlatBuffer of TFLite's schema.fbs) into plain Python.

No generated schema module is needed: every table is read with
flatbuffers.table.Table and the field slots of schema.fbs (slot = 4 + 2 * the
field's index in its table). Only what the importer needs is read: the
model's operator codes, buffers and first subgraph, and the builtin option
tables of the operators in OPTIONS_READERS.

Errors: a file that is not a TFLite flatbuffer, has no subgraph, or points
outside itself raises TFLiteFormatError with the reason.
"""
from __future__ import annotations

import dataclasses
import struct

import flatbuffers
import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table


class TFLiteFormatError(ValueError):
    pass


# BuiltinOperator enum of schema.fbs (names for messages; codes for dispatch).
BUILTIN_OPERATORS = [
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
    "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
    "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
    "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB",
    "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP",
    "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM",
    "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE",
    "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT",
    "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT",
    "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL",
    "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS",
    "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU",
    "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE",
    "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
    "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
    "BROADCAST_ARGS",
]


def op_name(code: int) -> str:
    return BUILTIN_OPERATORS[code] if 0 <= code < len(BUILTIN_OPERATORS) else f"BUILTIN_{code}"


# TensorType enum -> numpy dtype (None: a type the importer cannot hold).
TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 5: None, 6: np.bool_,
                7: np.int16, 8: None, 9: np.int8, 10: np.float64}
TENSOR_TYPE_NAMES = {0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING", 6: "BOOL",
                     7: "INT16", 8: "COMPLEX64", 9: "INT8", 10: "FLOAT64"}

PADDING = {0: "SAME", 1: "VALID"}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def _slot(i: int) -> int:
    return 4 + 2 * i


class _T:
    """A table with typed field getters by field index."""

    def __init__(self, buf: bytes, pos: int):
        self.t = Table(buf, pos)

    def _off(self, i):
        return self.t.Offset(_slot(i))

    def scalar(self, i, flags, default):
        o = self._off(i)
        return self.t.Get(flags, o + self.t.Pos) if o else default

    def string(self, i, default=None):
        o = self._off(i)
        return self.t.String(o + self.t.Pos).decode("utf-8", "replace") if o else default

    def vector(self, i, flags, dtype):
        o = self._off(i)
        if not o:
            return None
        n = self.t.VectorLen(o)
        start = self.t.Vector(o)
        if start + n * np.dtype(dtype).itemsize > len(self.t.Bytes):
            raise TFLiteFormatError("a vector points outside the file")
        return np.frombuffer(self.t.Bytes, dtype=dtype, count=n, offset=start).copy()

    def table(self, i):
        o = self._off(i)
        return _T(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, i):
        o = self._off(i)
        if not o:
            return []
        n = self.t.VectorLen(o)
        start = self.t.Vector(o)
        return [_T(self.t.Bytes, self.t.Indirect(start + 4 * k)) for k in range(n)]


def _i32(t, i, d=0):
    return t.scalar(i, N.Int32Flags, d)


def _i8(t, i, d=0):
    return t.scalar(i, N.Int8Flags, d)


def _u8(t, i, d=0):
    return t.scalar(i, N.Uint8Flags, d)


def _f32(t, i, d=0.0):
    return t.scalar(i, N.Float32Flags, d)


def _bool(t, i, d=False):
    return bool(t.scalar(i, N.BoolFlags, d))


# Builtin option tables (field order as in schema.fbs).
def _conv2d(t):  # Conv2DOptions
    return {"padding": PADDING.get(_i8(t, 0), "?"), "stride_w": _i32(t, 1), "stride_h": _i32(t, 2),
            "activation": ACTIVATIONS.get(_i8(t, 3), "?"), "dilation_w": _i32(t, 4, 1), "dilation_h": _i32(t, 5, 1)}


def _depthwise(t):  # DepthwiseConv2DOptions
    return {"padding": PADDING.get(_i8(t, 0), "?"), "stride_w": _i32(t, 1), "stride_h": _i32(t, 2),
            "depth_multiplier": _i32(t, 3), "activation": ACTIVATIONS.get(_i8(t, 4), "?"),
            "dilation_w": _i32(t, 5, 1), "dilation_h": _i32(t, 6, 1)}


def _pool(t):  # Pool2DOptions
    return {"padding": PADDING.get(_i8(t, 0), "?"), "stride_w": _i32(t, 1), "stride_h": _i32(t, 2),
            "filter_w": _i32(t, 3), "filter_h": _i32(t, 4), "activation": ACTIVATIONS.get(_i8(t, 5), "?")}


def _fully_connected(t):  # FullyConnectedOptions
    return {"activation": ACTIVATIONS.get(_i8(t, 0), "?"), "weights_format": _i8(t, 1),
            "keep_num_dims": _bool(t, 2)}


def _softmax(t):  # SoftmaxOptions
    return {"beta": _f32(t, 0)}


def _concat(t):  # ConcatenationOptions
    return {"axis": _i32(t, 0), "activation": ACTIVATIONS.get(_i8(t, 1), "?")}


def _activation_only(t):  # AddOptions, MulOptions, SubOptions, L2NormOptions: activation is field 0
    return {"activation": ACTIVATIONS.get(_i8(t, 0), "?")}


def _reshape(t):  # ReshapeOptions
    v = t.vector(0, N.Int32Flags, np.int32)
    return {"new_shape": None if v is None else [int(x) for x in v]}


def _squeeze(t):  # SqueezeOptions
    v = t.vector(0, N.Int32Flags, np.int32)
    return {"squeeze_dims": [] if v is None else [int(x) for x in v]}


def _reducer(t):  # ReducerOptions
    return {"keep_dims": _bool(t, 0)}


# BuiltinOptions union type -> reader.
OPTIONS_READERS = {1: _conv2d, 2: _depthwise, 5: _pool, 8: _fully_connected, 9: _softmax, 10: _concat,
                   11: _activation_only, 12: _activation_only, 17: _reshape, 21: _activation_only,
                   27: _reducer, 28: _activation_only, 29: _activation_only, 30: _squeeze}


@dataclasses.dataclass
class Tensor:
    index: int
    name: str
    shape: list
    shape_signature: list | None
    dtype: object
    type_name: str
    data: np.ndarray | None  # constant data (reshaped), None for activations
    quantized: bool


@dataclasses.dataclass
class Operator:
    index: int
    code: int
    name: str  # BuiltinOperator name, or CUSTOM:<custom_code>
    inputs: list
    outputs: list
    options: dict
    options_type: int


@dataclasses.dataclass
class Model:
    version: int
    description: str
    tensors: list
    operators: list
    inputs: list
    outputs: list


def read_model(data: bytes) -> Model:
    """Parses a TFLite flatbuffer. Raises TFLiteFormatError on a malformed file."""
    if len(data) < 8:
        raise TFLiteFormatError("too short to be a TFLite file")
    if data[4:8] != b"TFL3":
        raise TFLiteFormatError(f"not a TFLite flatbuffer (identifier {data[4:8]!r}, expected b'TFL3')")
    try:
        root = _T(data, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, data, 0))
        version = root.scalar(0, N.Uint32Flags, 0)
        codes = []
        for oc in root.tables(1):
            deprecated = _i8(oc, 0)
            builtin = _i32(oc, 3)
            # Since schema v3a, builtin_code holds codes > 127 and
            # deprecated_builtin_code saturates at 127; old writers only set the
            # deprecated field. The larger of the two is the real code.
            code = max(deprecated, builtin)
            custom = oc.string(1)
            codes.append((code, custom))
        buffers = [b.vector(0, N.Uint8Flags, np.uint8) for b in root.tables(4)]
        subgraphs = root.tables(2)
        if not subgraphs:
            raise TFLiteFormatError("the model has no subgraph")
        if len(subgraphs) > 1:
            raise TFLiteFormatError(f"the model has {len(subgraphs)} subgraphs; only single-subgraph models are supported")
        sg = subgraphs[0]
        tensors = []
        for i, t in enumerate(sg.tables(0)):
            shape = t.vector(0, N.Int32Flags, np.int32)
            shape = [] if shape is None else [int(x) for x in shape]
            sig = t.vector(7, N.Int32Flags, np.int32)
            ttype = _i8(t, 1)
            dtype = TENSOR_TYPES.get(ttype)
            buf_index = t.scalar(2, N.Uint32Flags, 0)
            q = t.table(4)
            quantized = False
            if q is not None:
                scale = q.vector(2, N.Float32Flags, np.float32)
                quantized = scale is not None and len(scale) > 0
            arr = None
            if buf_index >= len(buffers):
                raise TFLiteFormatError(f"tensor {i} names buffer {buf_index}; the model has {len(buffers)}")
            raw = buffers[buf_index]
            if raw is not None and len(raw) > 0:
                if dtype is None:
                    raise TFLiteFormatError(f"tensor {i} has unsupported type {TENSOR_TYPE_NAMES.get(ttype, ttype)}")
                arr = np.frombuffer(raw.tobytes(), dtype=dtype)
                expected = int(np.prod(shape)) if shape else 1
                if arr.size != expected:
                    raise TFLiteFormatError(f"tensor {i} has {arr.size} values for shape {shape}")
                arr = arr.reshape(shape)
            tensors.append(Tensor(i, t.string(3, f"t{i}"), shape, None if sig is None else [int(x) for x in sig],
                                  dtype, TENSOR_TYPE_NAMES.get(ttype, str(ttype)), arr, quantized))
        operators = []
        for k, o in enumerate(sg.tables(3)):
            ci = o.scalar(0, N.Uint32Flags, 0)
            if ci >= len(codes):
                raise TFLiteFormatError(f"operator {k} names opcode {ci}; the model has {len(codes)}")
            code, custom = codes[ci]
            name = f"CUSTOM:{custom}" if code == 32 else op_name(code)
            ins = o.vector(1, N.Int32Flags, np.int32)
            outs = o.vector(2, N.Int32Flags, np.int32)
            otype = _u8(o, 3)
            opt_table = o.table(4)
            options = {}
            if opt_table is not None and otype in OPTIONS_READERS:
                options = OPTIONS_READERS[otype](opt_table)
            operators.append(Operator(k, code, name, [] if ins is None else [int(x) for x in ins],
                                      [] if outs is None else [int(x) for x in outs], options, otype))
        sin = sg.vector(1, N.Int32Flags, np.int32)
        sout = sg.vector(2, N.Int32Flags, np.int32)
        return Model(version, root.string(3, ""), tensors, operators,
                     [] if sin is None else [int(x) for x in sin], [] if sout is None else [int(x) for x in sout])
    except (IndexError, struct.error) as e:
        raise TFLiteFormatError(f"malformed TFLite flatbuffer: {e}") from e


def read_file(path: str) -> Model:
    with open(path, "rb") as f:
        return read_model(f.read())
