"""Re-targets an UltraFace ONNX graph (fr_detect in faceplugin-face-recognition-js)
to another input size.

The network is fully convolutional; only its input shape, its output shapes
and the prior (anchor) boxes that its last nodes decode against depend on the
input size. The exported graph holds those priors as three Constant nodes of
shape [1, N, 2]:

    boxes = concat(loc[..., :2] * 0.1 * prior_wh + prior_cxcy,
                   exp(loc[..., 2:] * 0.2) * prior_wh)  -> corner form

(UltraFace's box_utils.convert_locations_to_boxes, traced by torch.onnx).
This module regenerates the priors with UltraFace's own formula
(vision/ssd/config/fd_config.py + box_utils.generate_priors) for the new size
and swaps them in. It first checks that the formula reproduces the graph's
constants EXACTLY at the graph's own size; a graph whose constants it cannot
reproduce (another anchor set, another export) is refused, never converted
by guesswork.

The prior formula, for an input of width W and height H:
  feature maps  f_k = ceil(W / s_k) x ceil(H / s_k), strides s = 8, 16, 32, 64
                (a stride-2 3x3 conv with padding 1 maps n to ceil(n / 2))
  min boxes     [10, 16, 24], [32, 48], [64, 96], [128, 192, 256] pixels
  prior         centre ((i + 0.5) / fw_k, (j + 0.5) / fh_k),
                size (m / W, m / H), all clamped to [0, 1]; order: map k,
                row j, column i, min box m; computed in float64, stored float32
"""
import math

import numpy as np

MIN_BOXES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
STRIDES = (8, 16, 32, 64)
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2


class ConversionError(Exception):
    """The graph is not the expected UltraFace graph, or the size is invalid."""


def feature_maps(width, height):
    """[(fw, fh)] per detection head, as the convolutions produce them."""
    return [(math.ceil(width / s), math.ceil(height / s)) for s in STRIDES]


def prior_count(width, height):
    return sum(fw * fh * len(mb) for (fw, fh), mb in zip(feature_maps(width, height), MIN_BOXES))


def generate_priors(width, height):
    """UltraFace's priors for a width x height input: float32 [N, 4] as
    (cx, cy, w, h), normalised to the input, clamped to [0, 1]."""
    if width < 1 or height < 1:
        raise ConversionError(f"input size {width}x{height} must be positive")
    out = []
    for (fw, fh), mins in zip(feature_maps(width, height), MIN_BOXES):
        # fd_config: shrinkage = size / f, scale = size / shrinkage (= f, in float64)
        scale_w = width / (width / fw)
        scale_h = height / (height / fh)
        for j in range(fh):
            for i in range(fw):
                cx = (i + 0.5) / scale_w
                cy = (j + 0.5) / scale_h
                for m in mins:
                    out.append((cx, cy, m / width, m / height))
    return np.clip(np.array(out, dtype=np.float64), 0.0, 1.0).astype(np.float32)


def _dims(value_info):
    t = value_info.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def _analyse(model):
    """Finds the parts that depend on the input size, or raises ConversionError
    naming what does not match the expected UltraFace graph."""
    try:
        return _find_parts(model)
    except ConversionError as e:
        raise ConversionError(f"not the expected UltraFace graph (fr_detect): {e}") from None


def _find_parts(model):
    from onnx import numpy_helper

    g = model.graph
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ConversionError(f"expected one image input, found {len(inputs)}")
    d = _dims(inputs[0])
    if len(d) != 4 or d[0] != 1 or d[1] != 3 or not d[2] or not d[3]:
        raise ConversionError(f"expected a fixed input [1, 3, H, W], found {d}")
    height, width = d[2], d[3]
    outs = {o.name: o for o in g.output}
    if set(outs) != {"scores", "boxes"}:
        raise ConversionError(f"expected the outputs 'scores' and 'boxes', found {sorted(outs)}")
    n = prior_count(width, height)
    if _dims(outs["scores"]) != [1, n, 2] or _dims(outs["boxes"]) != [1, n, 4]:
        raise ConversionError(
            f"expected scores [1, {n}, 2] and boxes [1, {n}, 4] for a {width}x{height} UltraFace input, found "
            f"{_dims(outs['scores'])} and {_dims(outs['boxes'])}")

    consumers = {}
    for node in g.node:
        for x in node.input:
            consumers.setdefault(x, []).append(node)
    priors = generate_priors(width, height)
    wh, cxcy = priors[None, :, 2:], priors[None, :, :2]
    size_nodes, centre_nodes = [], []
    for node in g.node:
        if node.op_type != "Constant":
            continue
        value = numpy_helper.to_array(node.attribute[0].t) if node.attribute and node.attribute[0].name == "value" \
            else None
        if value is None or n not in value.shape:
            continue
        if value.shape != (1, n, 2) or value.dtype != np.float32:
            raise ConversionError(f"constant {node.name or node.output[0]} has shape {value.shape}: "
                                  "not an UltraFace prior constant")
        users = {c.op_type for c in consumers.get(node.output[0], [])}
        if np.array_equal(value, wh) and users == {"Mul"}:
            size_nodes.append(node)
        elif np.array_equal(value, cxcy) and users == {"Add"}:
            centre_nodes.append(node)
        else:
            raise ConversionError(
                f"constant {node.name or node.output[0]} [1, {n}, 2] is not UltraFace's prior "
                f"{'sizes' if users == {'Mul'} else 'centres'} for {width}x{height} (max difference "
                f"{float(np.abs(value - (wh if users == {'Mul'} else cxcy)).max()):.3g}): another anchor set, "
                "refused")
    if len(size_nodes) != 2 or len(centre_nodes) != 1:
        raise ConversionError(f"expected 2 prior-size and 1 prior-centre constants, found {len(size_nodes)} and "
                              f"{len(centre_nodes)}")
    # Nothing else may carry the size: no initializer with N or H/W in its shape
    # beyond the convolution weights, and no constant Reshape target with N.
    for init in g.initializer:
        if n in init.dims:
            raise ConversionError(f"initializer {init.name} has the prior count {n} in its shape {list(init.dims)}")
    for node in g.node:
        if node.op_type == "Reshape":
            src = node.input[1]
            for init in g.initializer:
                if init.name == src and n in numpy_helper.to_array(init).tolist():
                    raise ConversionError(f"Reshape {node.name} has a constant target with {n}")
        if node.op_type in ("Resize", "Upsample", "Expand", "ConstantOfShape", "Tile"):
            raise ConversionError(f"operator {node.op_type} ({node.name}) may depend on the input size; "
                                  "not the expected UltraFace graph")
    return width, height, inputs[0], outs, size_nodes, centre_nodes


def check(model):
    """(width, height) of a valid UltraFace graph; raises ConversionError otherwise."""
    return _analyse(model)[:2]


def resize(model, width, height, doc=""):
    """A copy of `model` for a width x height input (multiples of 64 keep every
    head's grid aligned with the image; any positive size is accepted)."""
    import onnx
    from onnx import numpy_helper

    if width < 64 or height < 64:
        raise ConversionError(f"input size {width}x{height}: each side must be at least 64 (the coarsest stride)")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _, _, inp, outs, size_nodes, centre_nodes = _analyse(out)
    priors = generate_priors(width, height)
    n = priors.shape[0]
    wh = priors[None, :, 2:].copy()
    cxcy = priors[None, :, :2].copy()
    for node, value in [(x, wh) for x in size_nodes] + [(x, cxcy) for x in centre_nodes]:
        node.attribute[0].t.CopyFrom(numpy_helper.from_array(value, node.attribute[0].t.name))
    dims = inp.type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    outs["scores"].type.tensor_type.shape.dim[1].dim_value = n
    outs["boxes"].type.tensor_type.shape.dim[1].dim_value = n
    del out.graph.value_info[:]  # shapes inferred for the old size
    if doc:
        out.doc_string = doc
    onnx.checker.check_model(out)
    return out
