"""The int8 quantiser on a tiny network built here: Conv+BN+Relu, Conv,
residual Add, pooling and a Gemm, run through facerec's engine (build/onnx_run).
Needs build/onnx_run; skips LOUDLY without it."""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.quantize import __main__ as cli  # noqa: E402
from tools.quantize import calib, qdq  # noqa: E402

BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
BUILD = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
ONNX_RUN = os.path.join(BUILD, "onnx_run")


def need_engine():
    if not os.access(ONNX_RUN, os.X_OK):
        pytest.skip(f"!!! {ONNX_RUN} is ABSENT (build facerec first); this test is SKIPPED !!!")
    return ONNX_RUN


def tiny_net(opset=11):
    """input [1,3,16,16] -> conv1(3->8)+BN+Relu -> conv2(8->8) -> Add(conv1 path)
    -> Relu -> GlobalAveragePool -> Flatten -> fc (Gemm 8->4)."""
    rng = np.random.default_rng(0)

    def init(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    inits = [
        init("w1", rng.normal(0, 0.3, (8, 3, 3, 3))), init("b1", rng.normal(0, 0.1, 8)),
        init("g", rng.uniform(0.5, 1.5, 8)), init("be", rng.normal(0, 0.1, 8)),
        init("mu", rng.normal(0, 0.1, 8)), init("var", rng.uniform(0.5, 1.5, 8)),
        init("w2", rng.normal(0, 0.2, (8, 8, 3, 3))), init("b2", rng.normal(0, 0.1, 8)),
        init("wf", rng.normal(0, 0.3, (4, 8))), init("bf", rng.normal(0, 0.1, 4)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["bn1"], name="bn1"),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def blobs(n, seed):
    return np.random.default_rng(seed).normal(0, 1, (n, 1, 3, 16, 16)).astype(np.float32)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def weight_is_int8(model, layer):
    """Whether `layer`'s weight comes out of a DequantizeLinear of an int8 initialiser."""
    inits = {i.name: i for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.name == layer)
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and node.input[1] in n.output]
    return bool(dq) and inits[dq[0].input[0]].data_type == TensorProto.INT8


def test_qparams():
    s, zp, dt = qdq.qparams(-1.0, 3.0, symmetric=False)
    assert dt is np.uint8 and abs(s - 4.0 / 255) < 1e-7 and int(zp) == round(1.0 / (4.0 / 255))
    s, zp, dt = qdq.qparams(-1.0, 3.0, symmetric=True)
    assert dt is np.int8 and abs(s - 3.0 / 127) < 1e-7 and int(zp) == 0
    s, zp, _ = qdq.qparams(0.5, 2.0, symmetric=False)  # widened to hold 0
    assert int(zp) == 0 and abs(s - 2.0 / 255) < 1e-7


def test_prepare_keeps_the_function(tmp_path):
    """Opset 13 + BatchNorm folding changes nothing the engine can see."""
    run = need_engine()
    m = tiny_net()
    p = qdq.prepare(m)
    assert [n.op_type for n in p.graph.node].count("BatchNormalization") == 0
    x = blobs(4, 1)
    a = calib.run(run, m, x)[0]
    b = calib.run(run, p, x)[0]
    assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(a).max())


def test_quantised_outputs_within_quantisation_error(tmp_path):
    run = need_engine()
    f32 = str(tmp_path / "tiny.onnx")
    onnx.save(tiny_net(), f32)
    np.save(tmp_path / "calib.npy", blobs(40, 2))
    out, recipe = str(tmp_path / "tiny-int8.onnx"), str(tmp_path / "recipe.json")
    assert cli.main(["calibrate", f32, out, "--calib", str(tmp_path / "calib.npy"), "--onnx-run", run,
                     "--recipe", recipe, "--val", "8", "--max-exclude", "0"]) == 0
    q = onnx.load(out)
    assert weight_is_int8(q, "conv1") and weight_is_int8(q, "conv2") and weight_is_int8(q, "fc")
    assert sum(n.op_type == "QuantizeLinear" for n in q.graph.node) >= 3
    x = blobs(16, 3)  # fresh inputs, not seen in calibration
    ref = calib.run(run, f32, x)[0]
    got = calib.run(run, out, x)[0]
    # 8-bit activations and weights on a 3-layer net: about 1% error; exactly
    # equal would mean nothing was quantised.
    err = rel_err(ref, got)
    assert 0 < err < 0.05, err
    rec = json.load(open(recipe))
    assert rec["activations"] in ("asym", "sym") and rec["method"] in cli.METHODS
    assert len(rec["report"]["candidates"]) == len(cli.METHODS) * 2 + 1  # + float Adds
    # apply rebuilds the same bytes from the recipe (the manifest's sha256 pin).
    again = str(tmp_path / "again.onnx")
    assert cli.main(["apply", f32, recipe, again]) == 0
    assert sha(again) == sha(out)


def test_excluded_layer_stays_float(tmp_path):
    run = need_engine()
    f32 = str(tmp_path / "tiny.onnx")
    onnx.save(tiny_net(), f32)
    np.save(tmp_path / "calib.npy", blobs(24, 4))
    out, recipe = str(tmp_path / "q.onnx"), str(tmp_path / "r.json")
    assert cli.main(["calibrate", f32, out, "--calib", str(tmp_path / "calib.npy"), "--onnx-run", run,
                     "--recipe", recipe, "--val", "8", "--exclude", "conv2", "--max-exclude", "0",
                     "--method", "minmax", "--activations", "asym"]) == 0
    q = onnx.load(out)
    assert weight_is_int8(q, "conv1") and not weight_is_int8(q, "conv2")
    conv2 = next(n for n in q.graph.node if n.name == "conv2")
    assert conv2.input[1] == "w2"  # the float weight itself
    rec = json.load(open(recipe))
    assert rec["exclude"] == ["conv2"]
    assert rec["report"]["excluded"][0]["why"].startswith("asked")
    x = blobs(8, 5)
    assert rel_err(calib.run(run, f32, x)[0], calib.run(run, out, x)[0]) < 0.05
    # An unknown layer name is a usage error, not a silent no-op.
    assert cli.main(["calibrate", f32, out, "--calib", str(tmp_path / "calib.npy"), "--onnx-run", run,
                     "--recipe", recipe, "--exclude", "no_such_layer"]) == 2


def test_sensitive_layer_kept_float(tmp_path):
    """A layer whose quantisation costs accuracy is found and kept float: conv1
    gets one huge weight per output channel on an input channel that is always
    zero, so its per-channel int8 grid (set by that weight) wipes out the small
    weights that carry the signal."""
    run = need_engine()
    m = tiny_net()
    inits = {i.name: i for i in m.graph.initializer}
    w1 = numpy_helper.to_array(inits["w1"]).copy()
    w1[:, 0, 0, 0] = 100.0
    inits["w1"].CopyFrom(numpy_helper.from_array(w1.astype(np.float32), "w1"))
    f32 = str(tmp_path / "tiny.onnx")
    onnx.save(m, f32)
    x = blobs(24, 6)
    x[:, :, 0] = 0.0
    np.save(tmp_path / "calib.npy", x)
    out, recipe = str(tmp_path / "q.onnx"), str(tmp_path / "r.json")
    assert cli.main(["calibrate", f32, out, "--calib", str(tmp_path / "calib.npy"), "--onnx-run", run,
                     "--recipe", recipe, "--val", "8", "--target-cosine", "0.9999", "--max-exclude", "1"]) == 0
    rec = json.load(open(recipe))
    assert rec["report"]["sensitivity"][0]["layer"] == "conv1"
    assert rec["exclude"] == ["conv1"] and "costs" in rec["report"]["excluded"][0]["why"]
    hist = rec["report"]["history"]
    assert hist[-1]["mean_cosine"] > hist[0]["mean_cosine"]
    q = onnx.load(out)
    assert not weight_is_int8(q, "conv1") and weight_is_int8(q, "conv2")
