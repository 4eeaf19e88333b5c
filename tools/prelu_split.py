"""Rewrites Conv -> PReLU into Conv + Relu(Conv) -> Add, the form ONNX Runtime
fuses (FusedConv with Relu in float; QLinearConv + QLinearAdd in int8).

    python3 -m tools.prelu_split IN.onnx OUT.onnx

PReLU with per-channel slope a, on y = W x + b:

    a <= 1:  PReLU(y) =   a y + Relu((1 - a) y)          (1 - a >= 0)
    a >  1:  PReLU(y) = -(-a y + Relu((a - 1) y))        (concave: negated)

Each term is a Conv of x (weights and bias scaled per output channel), the
second with a Relu, so y is never materialised and no elementwise PReLU op is
left. A channel with a > 1 is produced negated, and the sign is folded into
the input-channel weights of every consumer, which must therefore all be Conv
nodes with constant weights (depthwise or grouped is fine); otherwise such a
PReLU is left as it was. ONNX Runtime has no integer PReLU, so in the QDQ
graph every PReLU is a DequantizeLinear -> float ops -> QuantizeLinear round
trip; after this rewrite the network is Conv, Relu and Add only.

Recognised PReLU spellings: the ONNX PRelu op, and the five float ops that
TFLite conversion gives, Relu(y) + c (y - |y|) (Relu, Abs, Sub, Mul, Add;
slope a = 2c). The Conv must feed nothing but its PReLU.

The rewritten model computes the same function up to float rounding (the
conversion checks nothing itself; tests/prelu_split compare outputs). Exit:
0 ok, 2 the input cannot be read or nothing was rewritten.
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _maps(g):
    inits = {i.name: i for i in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    return inits, prod, cons


def _const(inits, name):
    return numpy_helper.to_array(inits[name]) if name in inits else None


def _match(g, inits, cons, conv):
    """(slope [C], nodes of the PReLU, its output tensor) for the PReLU fed by
    conv, or None."""
    y = conv.output[0]
    users = cons.get(y, [])
    if len(users) == 1 and users[0].op_type == "PRelu":
        a = _const(inits, users[0].input[1])
        if a is None:
            return None
        return a.astype(np.float64).reshape(-1), [users[0]], users[0].output[0]
    kinds = sorted(u.op_type for u in users)
    if kinds != ["Abs", "Relu", "Sub"]:
        return None
    relu = next(u for u in users if u.op_type == "Relu")
    ab = next(u for u in users if u.op_type == "Abs")
    sub = next(u for u in users if u.op_type == "Sub")
    if list(sub.input) != [y, ab.output[0]] or len(cons.get(ab.output[0], [])) != 1:
        return None
    su = cons.get(sub.output[0], [])
    if len(su) != 1 or su[0].op_type != "Mul":
        return None
    mul = su[0]
    k = [i for i in mul.input if i != sub.output[0]]
    if len(k) != 1 or k[0] not in inits:
        return None
    mu, ru = cons.get(mul.output[0], []), cons.get(relu.output[0], [])
    if len(mu) != 1 or len(ru) != 1 or mu[0].name != ru[0].name or mu[0].op_type != "Add":
        return None
    add = mu[0]
    c = _const(inits, k[0]).astype(np.float64).reshape(-1)
    return 2.0 * c, [relu, ab, sub, mul, add], add.output[0]


def _attr(n, name, default):
    for a in n.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def split_prelu(model):
    """A new ModelProto with every recognised Conv -> PReLU rewritten; and the
    number rewritten."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    g = m.graph
    outputs = {o.name for o in g.output}
    done = 0
    # Protobuf hands out new wrapper objects on each access: nodes are told
    # apart by name, so every node gets a unique one first.
    names = set()
    for k, n_ in enumerate(g.node):
        if not n_.name or n_.name in names:
            n_.name = f"{n_.op_type}_{k}_{n_.output[0]}"
        names.add(n_.name)
    for conv_name in [n_.name for n_ in g.node if n_.op_type == "Conv"]:
        conv = next(n_ for n_ in g.node if n_.name == conv_name)
        inits, prod, cons = _maps(g)
        if conv.input[1] not in inits or conv.output[0] in outputs:
            continue
        got = _match(g, inits, cons, conv)
        if got is None:
            continue
        a, pnodes, out = got
        w = _const(inits, conv.input[1]).astype(np.float64)
        cout = w.shape[0]
        if a.size == 1:
            a = np.full(cout, a[0])
        if a.size != cout or out in outputs:
            continue
        b = (_const(inits, conv.input[2]).astype(np.float64) if len(conv.input) > 2 and conv.input[2]
             else np.zeros(cout))
        neg = a > 1.0
        users = cons.get(out, [])
        if neg.any() and not all(u.op_type == "Conv" and u.input[0] == out and u.input[1] in inits
                                  and u.input[1] not in u.input[2:] for u in users):
            continue
        alpha = np.where(neg, -a, a)
        beta = np.where(neg, a - 1.0, 1.0 - a)
        shp = (-1,) + (1,) * (w.ndim - 1)
        base = conv.name
        lin, act = base + "_prelu_lin", base + "_prelu_relu_in"
        new_inits = [
            numpy_helper.from_array((w * alpha.reshape(shp)).astype(np.float32), base + "_prelu_wa"),
            numpy_helper.from_array((b * alpha).astype(np.float32), base + "_prelu_ba"),
            numpy_helper.from_array((w * beta.reshape(shp)).astype(np.float32), base + "_prelu_wb"),
            numpy_helper.from_array((b * beta).astype(np.float32), base + "_prelu_bb"),
        ]
        attrs = [a_ for a_ in conv.attribute]
        conv_a = helper.make_node("Conv", [conv.input[0], base + "_prelu_wa", base + "_prelu_ba"], [lin],
                                  name=base + "_prelu_a")
        conv_b = helper.make_node("Conv", [conv.input[0], base + "_prelu_wb", base + "_prelu_bb"], [act],
                                  name=base + "_prelu_b")
        for n_ in (conv_a, conv_b):
            n_.attribute.extend(attrs)
        relu = helper.make_node("Relu", [act], [act + "_relu"], name=base + "_prelu_relu")
        add = helper.make_node("Add", [lin, act + "_relu"], [out], name=base + "_prelu_add")
        # The consumers read channels with a > 1 negated: flip their weights.
        if neg.any():
            for u in users:
                uw = _const(inits, u.input[1]).astype(np.float32).copy()
                groups = int(_attr(u, "group", 1))
                cin_g = uw.shape[1]
                mout_g = uw.shape[0] // groups
                for ch in np.nonzero(neg)[0]:
                    gi = ch // cin_g
                    uw[gi * mout_g:(gi + 1) * mout_g, ch % cin_g] *= -1.0
                name = u.name + "_w_signed"
                new_inits.append(numpy_helper.from_array(uw, name))
                u.input[1] = name
        # Replace conv + the PReLU nodes by the four new nodes, in place.
        drop = {conv.name} | {n_.name for n_ in pnodes}
        nodes = []
        for n_ in g.node:
            if n_.name == conv.name:
                nodes += [conv_a, conv_b, relu, add]
            elif n_.name not in drop:
                nodes.append(n_)
        del g.node[:]
        g.node.extend(nodes)
        g.initializer.extend(new_inits)
        done += 1
    used = {i for n_ in g.node for i in n_.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(m)
    return m, done


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        model = onnx.load(argv[0])
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError, Exception) as e:  # noqa: BLE001
        print(f"prelu_split: cannot read {argv[0]}: {e}", file=sys.stderr)
        return 2
    out, n = split_prelu(model)
    if n == 0:
        print(f"prelu_split: no Conv -> PReLU found in {argv[0]}", file=sys.stderr)
        return 2
    from .model_file import write_atomically
    write_atomically(out, argv[1])
    print(f"prelu_split: {n} PReLUs rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
