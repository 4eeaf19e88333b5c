"""Rewrites Conv -> PReLU into Conv + Relu(Conv) -> Add, the form ONNX Runtime
fuses (FusedConv with Relu in float; QLinearConv + QLinearAdd in int8).

    python3 -m tools.prelu_split IN.onnx OUT.onnx

PReLU with per-channel slope a, on y = W x + b:

    a <= 1:  PReLU(y) =   a y + Relu((1 - a) y)          (1 - a >= 0)
    a >  1:  PReLU(y) = -(-a y + Relu((a - 1) y))        (concave: negated)

Each term is a Conv of x (weights and bias scaled per output channel), the
second with a Relu, so y is never materialised and no elementwise PReLU op is
left.

First, though (push_into_depthwise, the default), a PReLU whose one consumer
is a depthwise Conv K goes into K instead, which is linear in its input:

    K(PReLU(y)) = K_a(y) + K_(1-a)(Relu(y)) + b_K     (any a; K_s: filters scaled by s)

so the producer runs once (in MobileFaceNet it is the 1x1 expansion, C_in
multiply-adds per output against K's 9) and K twice, on y and on Relu(y). A
PReLU on K's output is then split as above, each of its two terms again a
pair of depthwise convolutions added (mobilefacenet_192: 6% less CPU than
splitting every producer; BENCHMARKS.md). A channel with a > 1 is produced negated, and the sign is folded into
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


def _foldable(users, tensor, inits):
    """True when every consumer of tensor is a Conv reading it as its input
    with constant weights of its own, so negated channels can be folded in."""
    return all(u.op_type == "Conv" and u.input[0] == tensor and u.input[1] in inits and u.input[1] not in u.input[2:]
               for u in users)


def _negate_in_consumers(users, neg, inits, new_inits):
    """The consumers read the channels where neg is set negated: flip the
    sign of those input channels in their weights (grouped convs too)."""
    if not neg.any():
        return
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


def _replace(g, at, new_nodes, drop):
    """Puts new_nodes where the node named `at` is, and removes the nodes named in drop."""
    nodes = []
    for n_ in g.node:
        if n_.name == at:
            nodes += new_nodes
        elif n_.name not in drop:
            nodes.append(n_)
    del g.node[:]
    g.node.extend(nodes)


def _depthwise(n, inits):
    """True for a Conv with constant weights and one filter per input channel."""
    if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in inits:
        return False
    w = inits[n.input[1]].dims
    return len(w) == 4 and w[1] == 1 and int(_attr(n, "group", 1)) == w[0]


def _push_into_depthwise(g, outputs):
    """Conv -> PReLU(a1) -> depthwise Conv K [-> PReLU(a2)]: the first PReLU
    goes into K, which is linear in its input and cheap (9 multiply-adds per
    output against the producer's C_in):

        K(PReLU(y)) = K_a(y) + K_(1-a)(Relu(y))     (any a; K_s: K's filters scaled by s)

    so the producer runs once and K twice. A second PReLU on K's output is
    split as in split_prelu (a y + Relu((1 - a) y), channels with a > 1
    negated into its Conv consumers), each term again two depthwise
    convolutions added. Returns how many PReLUs were removed."""
    done = 0
    for prod_name in [n_.name for n_ in g.node if n_.op_type == "Conv"]:
        inits, prod, cons = _maps(g)
        conv = next((n_ for n_ in g.node if n_.name == prod_name), None)
        if conv is None or conv.output[0] in outputs:
            continue
        got = _match(g, inits, cons, conv)
        if got is None:
            continue
        a1, pnodes1, p1 = got
        users = cons.get(p1, [])
        if p1 in outputs or len(users) != 1 or not _depthwise(users[0], inits) or users[0].input[0] != p1:
            continue
        k = users[0]
        wk = _const(inits, k.input[1]).astype(np.float64)
        c = wk.shape[0]
        if a1.size == 1:
            a1 = np.full(c, a1[0])
        if a1.size != c:
            continue
        bk = (_const(inits, k.input[2]).astype(np.float64) if len(k.input) > 2 and k.input[2] else np.zeros(c))
        y1 = conv.output[0]
        base = k.name
        r1 = base + "_pin_relu"
        nodes_new = [helper.make_node("Relu", [y1], [r1], name=base + "_pin_relu")]
        new_inits = []
        sh = (-1, 1, 1, 1)

        def pair(tag, scale, out):
            """K_(a1 scale)(y1) + K_((1 - a1) scale)(r1) + bk scale -> out."""
            wa, wb, bb = base + f"_pin_{tag}_wa", base + f"_pin_{tag}_wb", base + f"_pin_{tag}_b"
            new_inits.extend([
                numpy_helper.from_array((wk * (a1 * scale).reshape(sh)).astype(np.float32), wa),
                numpy_helper.from_array((wk * ((1.0 - a1) * scale).reshape(sh)).astype(np.float32), wb),
                numpy_helper.from_array((bk * scale).astype(np.float32), bb),
            ])
            ca = helper.make_node("Conv", [y1, wa], [out + "_ya"], name=base + f"_pin_{tag}_a")
            cb = helper.make_node("Conv", [r1, wb, bb], [out + "_yb"], name=base + f"_pin_{tag}_b")
            for n_ in (ca, cb):
                n_.attribute.extend(k.attribute)
            nodes_new.extend([ca, cb, helper.make_node("Add", [out + "_ya", out + "_yb"], [out], name=base + f"_pin_{tag}_add")])

        drop = {n_.name for n_ in pnodes1} | {k.name}
        got2 = None if k.output[0] in outputs else _match(g, inits, cons, k)
        if got2 is not None:
            a2, pnodes2, p2 = got2
            if a2.size == 1:
                a2 = np.full(c, a2[0])
            users2 = cons.get(p2, [])
            neg = a2 > 1.0
            if a2.size != c or p2 in outputs or (neg.any() and not _foldable(users2, p2, inits)):
                got2 = None
        if got2 is None:
            pair("k", np.ones(c), k.output[0])
        else:
            alpha = np.where(neg, -a2, a2)
            beta = np.where(neg, a2 - 1.0, 1.0 - a2)
            lin, pre = base + "_pin_lin", base + "_pin_pre"
            pair("lin", alpha, lin)
            pair("act", beta, pre)
            nodes_new.append(helper.make_node("Relu", [pre], [pre + "_relu"], name=base + "_pin_act_relu"))
            nodes_new.append(helper.make_node("Add", [lin, pre + "_relu"], [p2], name=base + "_pin_out"))
            drop |= {n_.name for n_ in pnodes2}
            _negate_in_consumers(users2, neg, inits, new_inits)
            done += 1
        _replace(g, k.name, nodes_new, drop)
        g.initializer.extend(new_inits)
        done += 1
    return done


def split_prelu(model, push_into_depthwise=True):
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
    if push_into_depthwise:
        done += _push_into_depthwise(g, outputs)
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
        if neg.any() and not _foldable(users, out, inits):
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
        _negate_in_consumers(users, neg, inits, new_inits)
        # Replace conv + the PReLU nodes by the four new nodes, in place.
        drop = {conv.name} | {n_.name for n_ in pnodes}
        _replace(g, conv.name, [conv_a, conv_b, relu, add], drop)
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
