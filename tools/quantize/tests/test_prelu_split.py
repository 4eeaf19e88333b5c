"""tools/prelu_split.py on a tiny network built here: Conv -> PRelu (ONNX op)
-> depthwise Conv -> the TFLite five-op PReLU -> 1x1 Conv, with slopes below
0, in (0, 1) and above 1 (the negated channels). Run through facerec's
engine (build/onnx_run); skips LOUDLY without it."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools import prelu_split  # noqa: E402
from tools.quantize import calib, qdq  # noqa: E402
from tools.quantize.tests.test_quantize import need_engine  # noqa: E402


def prelu_net():
    rng = np.random.default_rng(5)
    c = 8
    a1 = np.array([-1.5, -0.2, 0.0, 0.3, 0.9, 1.0, 1.7, 4.0], np.float32)   # ONNX PRelu slopes
    a2 = np.array([2.5, -0.7, 0.5, 1.2, 0.1, -3.0, 0.8, 1.01], np.float32)  # TFLite form: c = a / 2

    def init(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    inits = [
        init("w1", rng.normal(0, 0.3, (c, 3, 3, 3))), init("b1", rng.normal(0, 0.2, c)),
        init("a1", a1.reshape(c, 1, 1)),
        init("wd", rng.normal(0, 0.3, (c, 1, 3, 3))), init("bd", rng.normal(0, 0.2, c)),
        init("k2", (a2 / 2).reshape(c, 1, 1)),
        init("w3", rng.normal(0, 0.3, (4, c, 1, 1))), init("b3", rng.normal(0, 0.1, 4)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["y1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["y1", "a1"], ["p1"], name="prelu1"),
        helper.make_node("Conv", ["p1", "wd", "bd"], ["y2"], name="dw", pads=[1, 1, 1, 1], group=c),
        helper.make_node("Relu", ["y2"], ["r2"], name="relu2"),
        helper.make_node("Abs", ["y2"], ["abs2"], name="abs2"),
        helper.make_node("Sub", ["y2", "abs2"], ["d2"], name="sub2"),
        helper.make_node("Mul", ["k2", "d2"], ["m2"], name="mul2"),
        helper.make_node("Add", ["r2", "m2"], ["p2"], name="add2"),
        helper.make_node("Conv", ["p2", "w3", "b3"], ["y"], name="conv3"),
    ]
    g = helper.make_graph(nodes, "prelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_split_keeps_the_function_and_leaves_only_conv_relu_add():
    run = need_engine()
    m = prelu_net()
    s, n = prelu_split.split_prelu(m)
    assert n == 2
    ops = [x.op_type for x in s.graph.node]
    assert set(ops) == {"Conv", "Relu", "Add"}, ops
    x = np.random.default_rng(6).normal(0, 1, (4, 1, 3, 16, 16)).astype(np.float32)
    a = calib.run(run, m, x)[0]
    b = calib.run(run, s, x)[0]
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max(), np.abs(a - b).max()
    # The split model quantises with every PReLU gone: Conv, Relu and Add only
    # between the QDQ pairs, so ONNX Runtime can run it all in integer kernels.
    q = qdq.quantize(qdq.prepare(s), {t: (-8.0, 8.0) for t in qdq.activation_tensors(qdq.prepare(s))})
    assert not {"PRelu", "Abs", "Sub", "Mul"} & {x.op_type for x in q.graph.node}


def test_prelu_feeding_a_non_conv_is_left_alone_when_it_has_slopes_above_one():
    m = prelu_net()
    # p1 also becomes a graph output: its channels with a > 1 cannot be negated.
    m.graph.output.append(helper.make_tensor_value_info("p1", TensorProto.FLOAT, [1, 8, 16, 16]))
    s, n = prelu_split.split_prelu(m)
    assert n == 1
    assert "PRelu" in [x.op_type for x in s.graph.node]


def producers_of_input(s, name="x"):
    return [n for n in s.graph.node if n.op_type == "Conv" and n.input[0] == name]


def test_a_prelu_before_a_depthwise_conv_goes_into_it_and_its_producer_runs_once():
    """conv1 -> PRelu -> depthwise: K(PReLU(y)) = K_a(y) + K_(1-a)(Relu(y)), so
    conv1 (the costly one in MobileFaceNet: a 1x1 expansion) is not doubled;
    the older rewrite (push_into_depthwise=False) doubles it. Same function."""
    run = need_engine()
    m = prelu_net()
    pushed, n1 = prelu_split.split_prelu(m)
    plain, n2 = prelu_split.split_prelu(m, push_into_depthwise=False)
    assert n1 == n2 == 2
    assert len(producers_of_input(pushed)) == 1 and len(producers_of_input(plain)) == 2
    x = np.random.default_rng(7).normal(0, 1, (4, 1, 3, 16, 16)).astype(np.float32)
    ref = calib.run(run, m, x)[0]
    for s in (pushed, plain):
        got = calib.run(run, s, x)[0]
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), np.abs(got - ref).max()


def test_a_depthwise_conv_without_a_second_prelu_still_takes_the_first():
    """conv1 -> PRelu -> depthwise -> Conv (no second PReLU: MobileFaceNet's
    last expansion before its global depthwise conv)."""
    run = need_engine()
    m = prelu_net()
    g = m.graph
    # Drop the five-op PReLU after the depthwise conv: conv3 reads y2 directly.
    keep = [n for n in g.node if n.name not in {"relu2", "abs2", "sub2", "mul2", "add2"}]
    for n in keep:
        if n.name == "conv3":
            n.input[0] = "y2"
    del g.node[:]
    g.node.extend(keep)
    s, n = prelu_split.split_prelu(m)
    assert n == 1
    assert len(producers_of_input(s)) == 1
    assert {x.op_type for x in s.graph.node} == {"Conv", "Relu", "Add"}
    x = np.random.default_rng(8).normal(0, 1, (3, 1, 3, 16, 16)).astype(np.float32)
    ref = calib.run(run, m, x)[0]
    got = calib.run(run, s, x)[0]
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), np.abs(got - ref).max()


def test_the_second_prelu_stays_when_its_negated_channels_cannot_be_folded():
    """The depthwise conv's PReLU has slopes > 1 and feeds a graph output:
    the first PReLU still goes into the depthwise conv, the second is left
    as it is (nothing would absorb the sign)."""
    run = need_engine()
    m = prelu_net()
    m.graph.output.append(helper.make_tensor_value_info("p2", TensorProto.FLOAT, [1, 8, 16, 16]))
    s, n = prelu_split.split_prelu(m)
    assert n == 1
    assert "Abs" in {x.op_type for x in s.graph.node}
    x = np.random.default_rng(9).normal(0, 1, (2, 1, 3, 16, 16)).astype(np.float32)
    ref = calib.run(run, m, x)
    got = calib.run(run, s, x)
    for a, b in zip(ref, got):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max(), np.abs(a - b).max()
