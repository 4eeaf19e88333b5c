#!/usr/bin/python3
"""The int8 table of BENCHMARKS.md from bench/run_int8.sh's outputs.

usage: /usr/bin/python3 bench/int8_report.py SPEED.json FLOPS.json [--manifest models/manifest.json]
speed ratio = fp32 median ms / int8 median ms (same process, same rounds);
fp32 fraction = (GFLOPs / fp32 time) / OpenBLAS sgemm peak (median over median);
int8 fraction = (GFLOPs / int8 time) / ONNX Runtime's u8s8 GEMM peak (gemm_u8s8,
2 n^3 / its median time). GFLOPs are the float graph's (the int8 copy does the
same multiply-adds).
"""
import argparse
import json
import os


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("speed")
    ap.add_argument("flops")
    ap.add_argument("--manifest", default=os.path.join(here, "..", "models", "manifest.json"))
    ap.add_argument("--pair", action="append", default=[],
                    help="FP32NAME=INT8NAME:GFLOPS for --onnx networks of the same run (e.g. the iresnet50 export)")
    a = ap.parse_args()
    sp = json.load(open(a.speed))
    fl = json.load(open(a.flops))
    nets = sp["nets"]
    n = nets["gemm_u8s8"]["shape"][0]
    gflop = 2.0 * n ** 3 / 1e9
    sgemm = sp["gemm"]["median"]
    peaks = {k: gflop / (nets[k]["median_ms"] / 1e3) for k in ("gemm_u8s8", "gemm_s8s8", "gemm_fp32_ort") if k in nets}
    best = {k: gflop / (nets[k]["min_ms"] / 1e3) for k in peaks}
    print(f"- GEMM peaks in this run ({n}^3, GFLOP/s, median (best)): OpenBLAS sgemm {sgemm:.1f} "
          f"({sp['gemm']['max']:.1f}); ONNX Runtime u8s8 {peaks.get('gemm_u8s8', 0):.1f} ({best.get('gemm_u8s8', 0):.1f}), "
          f"s8s8 {peaks.get('gemm_s8s8', 0):.1f} ({best.get('gemm_s8s8', 0):.1f}), "
          f"fp32 MatMul {peaks.get('gemm_fp32_ort', 0):.1f} ({best.get('gemm_fp32_ort', 0):.1f})")
    print(f"- load average after: {' '.join(f'{x:.2f}' for x in sp.get('loadavg_after', []))}")
    print()
    print("| model | GFLOPs | fp32 ms, median (fastest) | int8 ms, median (fastest) | **fp32 / int8** (medians) "
          "| fp32: fraction of sgemm peak | int8: fraction of int8 GEMM peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    man = json.load(open(a.manifest))["models"]
    rows = [(e["source"]["quantize"]["from"], e["id"], fl.get(e["source"]["quantize"]["from"], {}).get("gflops"))
            for e in man if "quantize" in e["source"]]
    for p in a.pair:
        f32, rest = p.split("=", 1)
        i8, g = rest.rsplit(":", 1)
        rows.append((f32, i8, float(g)))
    for src, dst, g in rows:
        if dst not in nets or src not in nets:
            continue
        f, i = nets[src], nets[dst]
        q = {"from": src}
        e = {"id": dst}
        frac32 = f"{100 * g / (f['median_ms'] / 1e3) / sgemm:.1f}%" if g else "-"
        frac8 = f"{100 * g / (i['median_ms'] / 1e3) / peaks['gemm_u8s8']:.1f}%" if g else "-"
        print(f"| {q['from']} -> {e['id']} | {g:.3f} | {f['median_ms']:.2f} ({f['min_ms']:.2f}) | "
              f"{i['median_ms']:.2f} ({i['min_ms']:.2f}) | **{f['median_ms'] / i['median_ms']:.2f}x** | {frac32} | {frac8} |"
              if g else f"| {q['from']} -> {e['id']} | - | {f['median_ms']:.2f} | {i['median_ms']:.2f} | "
              f"**{f['median_ms'] / i['median_ms']:.2f}x** | - | - |")


if __name__ == "__main__":
    main()
