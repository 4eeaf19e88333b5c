#!/usr/bin/python3
"""Turn a YOLOv5-face raw-heads ONNX export into the decoded single-output export.

deepcam-cn/yolov5-face's export.py can emit either the three raw detection
heads (stride_8/16/32, [1,3,H,W,16], before the sigmoid) or, with the Detect
layer's decoding included, one output [1,N,16]:
    cx, cy, w, h (input pixels), obj (sigmoided), 10 landmark values (input
    pixels), cls (sigmoided)
with rows ordered stride 8, 16, 32 and, within a stride, anchor, y, x.

This script appends that decoding to a raw-heads model as ONNX operators, so
facerec can test both layouts from the one set of weights we have:
    xy = (sigmoid(t_xy) * 2 - 0.5 + grid) * stride
    wh = (sigmoid(t_wh) * 2) ** 2 * anchor
    landmarks = t_lm * anchor + grid * stride          (no sigmoid)
    obj, cls = sigmoid(t_obj), sigmoid(t_cls)

Run it with Debian's interpreter, which has python3-onnx and numpy:
    /usr/bin/python3 tools/make_yolov5_decoded.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
ANCHORS = {  # yolov5-face's anchors in input pixels (w, h), per level
    8: ((4, 5), (8, 10), (13, 16)),
    16: ((23, 29), (43, 55), (73, 105)),
    32: ((146, 217), (231, 300), (335, 433)),
}
ROW = 16


def dims(value_info):
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    model = onnx.load(argv[1])
    graph = model.graph
    inp = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inp) != 1:
        sys.exit("expected one image input")
    in_h, in_w = dims(inp[0])[2:4]
    heads = list(graph.output)
    if len(heads) != 3:
        sys.exit("expected the three raw heads stride_8/16/32, got %d outputs" % len(heads))

    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def sliced(src, start, end, name):
        # Slice the last axis [start, end) (opset >= 10: starts/ends/axes as inputs).
        return node("Slice", [src, const(name + "_s", np.array([start], np.int64)),
                              const(name + "_e", np.array([end], np.int64)),
                              const(name + "_a", np.array([4], np.int64))], name)

    per_stride = []
    for head in heads:
        _, na, ny, nx, no = dims(head)
        if na != 3 or no != ROW:
            sys.exit("output %s is not [1,3,H,W,16]" % head.name)
        stride = in_h // ny
        if stride not in STRIDES or stride * nx != in_w:
            sys.exit("output %s is not a stride 8/16/32 grid" % head.name)
        p = "dec%d" % stride
        gx, gy = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32))
        grid = np.stack([gx, gy], axis=-1).reshape(1, 1, ny, nx, 2)  # (x, y) per cell
        anchor = np.array(ANCHORS[stride], np.float32).reshape(1, 3, 1, 1, 2)

        sig = node("Sigmoid", [head.name], p + "_sig")
        # xy = (s * 2 - 0.5 + grid) * stride
        xy = sliced(sig, 0, 2, p + "_xy_raw")
        xy = node("Mul", [xy, const(p + "_two", np.array(2.0, np.float32))], p + "_xy2")
        xy = node("Add", [xy, const(p + "_grid_m05", grid - 0.5)], p + "_xyg")
        xy = node("Mul", [xy, const(p + "_stride", np.array(float(stride), np.float32))], p + "_xy")
        # wh = (s * 2) ** 2 * anchor
        wh = sliced(sig, 2, 4, p + "_wh_raw")
        wh = node("Mul", [wh, p + "_two"], p + "_wh2")
        wh = node("Mul", [wh, wh], p + "_whsq")
        wh = node("Mul", [wh, const(p + "_anchor", anchor)], p + "_wh")
        obj = sliced(sig, 4, 5, p + "_obj")
        cls = sliced(sig, 15, 16, p + "_cls")
        # landmarks = t * anchor + grid * stride, on the raw (unsigmoided) values
        lm = sliced(head.name, 5, 15, p + "_lm_raw")
        lm = node("Mul", [lm, const(p + "_anchor5", np.tile(anchor, 5))], p + "_lm_a")
        lm = node("Add", [lm, const(p + "_grid5", np.tile(grid * stride, 5))], p + "_lm")
        row = node("Concat", [xy, wh, obj, lm, cls], p + "_row", axis=4)
        flat = node("Reshape", [row, const(p + "_shape", np.array([1, -1, ROW], np.int64))], p + "_flat")
        per_stride.append((stride, flat, 3 * ny * nx))

    per_stride.sort()
    total = sum(n for _, _, n in per_stride)
    node("Concat", [f for _, f, _ in per_stride], "output", axis=1)
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, total, ROW]))
    onnx.checker.check_model(model)
    onnx.save(model, argv[2])
    print("wrote %s: output [1,%d,%d]" % (argv[2], total, ROW))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
