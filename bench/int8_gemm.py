#!/usr/bin/python3
"""The int8 GEMM peak of facerec's engine: one n x n x n matrix product as a
QDQ graph (float A -> QuantizeLinear -> DequantizeLinear, int8 B per column
behind a DequantizeLinear, MatMul), which ONNX Runtime fuses into its integer
GEMM (MLAS: AMX or AVX-512 VNNI on this CPU). Its fp32 twin (the same MatMul
in float) is written too. Time them with build/bench/model_speed, in the same
process as the OpenBLAS sgemm peak:

  /usr/bin/python3 bench/int8_gemm.py --out /tmp/int8_gemm [--n 2048]
  build/bench/model_speed --models none --onnx gemm_u8s8=/tmp/int8_gemm/gemm_u8s8.onnx:/tmp/int8_gemm/a.raw:2048x2048 ...

GFLOP/s = 2 n^3 / time (the quantisation of A and the float output are
O(n^2), under 0.1% of the work at n = 2048).
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def gemm_model(n, act):
    rng = np.random.default_rng(1)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    inits = []
    nodes = []
    a_in = "a"
    if act != "fp32":
        dt = np.uint8 if act == "u8" else np.int8
        zp = 128 if act == "u8" else 0
        inits += [numpy_helper.from_array(np.array(1 / 127, np.float32), "a_scale"),
                  numpy_helper.from_array(np.array(zp, dt), "a_zp")]
        nodes += [helper.make_node("QuantizeLinear", ["a", "a_scale", "a_zp"], ["a_q"]),
                  helper.make_node("DequantizeLinear", ["a_q", "a_scale", "a_zp"], ["a_dq"])]
        a_in = "a_dq"
        ws = (np.abs(b).max(axis=0) / 127).astype(np.float32)
        inits += [numpy_helper.from_array(np.round(b / ws).astype(np.int8), "b_q"),
                  numpy_helper.from_array(ws, "b_scale"), numpy_helper.from_array(np.zeros(n, np.int8), "b_zp")]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b"], axis=1))
    else:
        inits.append(numpy_helper.from_array(b, "b"))
    nodes.append(helper.make_node("MatMul", [a_in, "b"], ["c"]))
    g = helper.make_graph(nodes, f"gemm_{act}", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/int8_gemm")
    ap.add_argument("--n", type=int, default=2048)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    np.random.default_rng(2).uniform(-1, 1, (a.n, a.n)).astype(np.float32).tofile(os.path.join(a.out, "a.raw"))
    for act, name in (("u8", "gemm_u8s8"), ("s8", "gemm_s8s8"), ("fp32", "gemm_fp32")):
        onnx.save(gemm_model(a.n, act), os.path.join(a.out, name + ".onnx"))
        print(f"--onnx {name}={a.out}/{name}.onnx:{a.out}/a.raw:{a.n}x{a.n}")


if __name__ == "__main__":
    main()
