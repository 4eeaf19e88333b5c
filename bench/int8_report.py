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
    ap.add_argument("--cpu", action="store_true",
                    help="use the calling thread's CPU time (model_speed --threads 1 with OPENBLAS_NUM_THREADS=1): "
                         "what a loaded machine does not inflate by making the run wait for a core")
    ap.add_argument("--fp32-only", default="",
                    help="comma-separated manifest ids timed in the same run that have no int8 copy: "
                         "a row with the fp32 fraction only")
    a = ap.parse_args()
    sp = json.load(open(a.speed))
    fl = json.load(open(a.flops))
    nets = sp["nets"]
    if a.cpu:  # every figure below from CPU times instead of wall-clock times
        for v in nets.values():
            v["median_ms"], v["min_ms"] = v["median_cpu_ms"], v["min_cpu_ms"]
        sp["gemm"]["median"], sp["gemm"]["max"] = sp["gemm"]["cpu_median"], max(sp["gemm"]["cpu_gflops"])
        print(f"- times are the calling thread's CPU time, {sp.get('intra_op_threads')} intra-op thread(s)")
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
    # fp32 against ONNX Runtime's own fp32 GEMM too (the same MLAS library as
    # the int8 peak, in the same run): OpenBLAS's sgemm is not always the faster one.
    ort32 = peaks.get("gemm_fp32_ort")
    print("| model | GFLOPs | fp32 ms, median (fastest) | int8 ms, median (fastest) | **fp32 / int8** (medians) "
          "| fp32: fraction of sgemm peak | fp32: fraction of ORT fp32 GEMM peak | int8: fraction of int8 GEMM peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def frac(g, ms, peak):
        return f"{100 * g / (ms / 1e3) / peak:.1f}%" if g and peak else "-"
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
        frac32 = frac(g, f["median_ms"], sgemm)
        frac32o = frac(g, f["median_ms"], ort32)
        frac8 = frac(g, i["median_ms"], peaks.get("gemm_u8s8"))
        gs = f"{g:.3f}" if g else "-"
        print(f"| {q['from']} -> {e['id']} | {gs} | {f['median_ms']:.2f} ({f['min_ms']:.2f}) | "
              f"{i['median_ms']:.2f} ({i['min_ms']:.2f}) | **{f['median_ms'] / i['median_ms']:.2f}x** | {frac32} | "
              f"{frac32o} | {frac8} |")
    for src in (x for x in a.fp32_only.split(",") if x):
        if src not in nets:
            continue
        f, g = nets[src], fl.get(src, {}).get("gflops")
        gs = f"{g:.3f}" if g else "-"
        print(f"| {src} (no int8 copy) | {gs} | {f['median_ms']:.2f} ({f['min_ms']:.2f}) | - | - | "
              f"{frac(g, f['median_ms'], sgemm)} | {frac(g, f['median_ms'], ort32)} | - |")


if __name__ == "__main__":
    main()
