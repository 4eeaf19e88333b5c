#!/usr/bin/python3
"""Markdown tables for BENCHMARKS.md from the JSON that bench/run_speed.sh and
bench/run_accuracy.sh write.

usage: /usr/bin/python3 bench/evalbench_report.py speed FLOPS.json SPEED.json [SPEED2.json ...]
       /usr/bin/python3 bench/evalbench_report.py accuracy /tmp/eb_acc
"""
import glob
import json
import os
import statistics
import sys

MISSING = "—"


def f(v, nd=2):
    return MISSING if v is None else f"{v:.{nd}f}"


def _config(s):
    return f"{s['torch_threads']} thread(s), OMP_WAIT_POLICY={s['omp_wait_policy'].split(' ')[0]}"


def speed(flops_json, speed_jsons):
    fl = json.load(open(flops_json))
    runs = [json.load(open(p)) for p in speed_jsons]
    s = runs[0]
    for r in runs:
        g = r["gemm_gflops"]
        print(f"- run with PyTorch at {_config(r)}: GEMM peak (OpenBLAS sgemm 2048^3, 2 threads) over {len(g)} runs "
              f"interleaved with the networks: median {statistics.median(g):.1f} GFLOP/s, best {max(g):.1f}; "
              f"load average after {', '.join(f'{v:.2f}' for v in r['loadavg_after'])}; {r['date']}")
    print()
    print("| network | engine | input | GFLOPs / inference | ms, median (fastest) | GFLOP/s, median (best) | "
          "fraction of GEMM peak, median (best) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for i, r in enumerate(runs):
        gemm = r["gemm_gflops"]
        gmed, gmax = statistics.median(gemm), max(gemm)
        rows = []
        if i == 0:
            for name, v in sorted(r["facerec"].items(), key=lambda kv: kv[0].startswith("torch:")):
                rows.append((name, "facerec (ORT 1.30, 2 threads)", fl.get(name, {}).get("gflops"), v))
        for name, v in r["torch_eager"].items():
            rows.append((name + " (eager)", f"PyTorch {r['torch'].split('a')[0]} eager, {_config(r)}", fl.get("torch:" + name, {}).get("gflops"), v))
        for name, eng, g, v in rows:
            shape = "x".join(str(d) for d in v["shape"][2:][::-1])  # W x H
            if g is None:
                print(f"| {name} | {eng} | {shape} | {MISSING} | {v['median_ms']:.2f} ({v['min_ms']:.2f}) | {MISSING} | {MISSING} |")
                continue
            rate_med, rate_best = g / (v["median_ms"] / 1e3), g / (v["min_ms"] / 1e3)
            print(f"| {name} | {eng} | {shape} | {g:.3f} | {v['median_ms']:.2f} ({v['min_ms']:.2f}) | "
                  f"{rate_med:.1f} ({rate_best:.1f}) | {100 * rate_med / gmed:.1f}% ({100 * rate_best / gmax:.1f}%) |")
    print()
    print("| network (same module, same input) | PyTorch eager setting | PyTorch eager ms, median (fastest) | "
          "facerec ms, median (fastest), same run | eager / facerec, medians (fastest) |")
    print("|---|---|---:|---:|---:|")
    for r in runs:
        for name, t in r["torch_eager"].items():
            f_ = r["facerec"]["torch:" + name]
            print(f"| {name} | {_config(r)} | {t['median_ms']:.2f} ({t['min_ms']:.2f}) | {f_['median_ms']:.2f} ({f_['min_ms']:.2f}) | "
                  f"{t['median_ms'] / f_['median_ms']:.2f}x ({t['min_ms'] / f_['min_ms']:.2f}x) |")


def accuracy(d):
    res = {}
    for p in glob.glob(os.path.join(d, "*.json")):
        task, det, emb = os.path.basename(p)[:-5].split("__")
        res[(task, det, emb)] = json.load(open(p))
    dets = ["fr_detect", "yunet", "scrfd_500m", "retinaface_mnet025", "yolov5n-0.5-face", "scrfd_2.5g"]
    print("| detector | easy AP | medium AP | hard AP | detections | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for det in dets:
        j = res.get(("wider", det, "-"))
        if j:
            print(f"| {det} | {j['ap_easy']:.4f} | {j['ap_medium']:.4f} | {j['ap_hard']:.4f} | {j['detections']} | {j['seconds']:.0f} |")
        else:
            print(f"| {det} | {MISSING} | {MISSING} | {MISSING} | | |")
    print()
    print("| detector | embedder | celeb5 rank-1 | celeb5 rank-5 | celeb5 failures | att rank-1 | att rank-5 | att failures |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    pairs = [(dd, e) for e in ("fr_feature", "mobilefacenet_128", "mobilefacenet_192") for dd in dets]
    for det, emb in pairs:
        c, a = res.get(("celeb5", det, emb)), res.get(("att", det, emb))
        cell = lambda j, k: f"{100 * j[k]:.2f}%" if j else MISSING  # noqa: E731
        fail = lambda j: f"{j['failures']['total']} ({j['failures']['retried_low_conf']} retried)" if j else MISSING  # noqa: E731
        print(f"| {det} | {emb} | {cell(c, 'rank1')} | {cell(c, 'rank5')} | {fail(c)} | {cell(a, 'rank1')} | {cell(a, 'rank5')} | {fail(a)} |")
    print()
    print("| detector | embedder | accuracy (10-fold) | AUC | TAR@FAR=1e-3 | threshold at FAR=1e-3 | EER | no face (retried / centre crop) | s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (task, det, emb), j in sorted(res.items(), key=lambda kv: -kv[1].get("accuracy", 0)):
        if task != "lfw":
            continue
        df = j["detect_failures"]
        print(f"| {det} | {emb} | {100 * j['accuracy']:.2f} ± {100 * j['accuracy_std']:.2f}% | {j['auc']:.4f} | "
              f"{100 * j['tar_at_far_1e-3']:.2f}% | {j['far_1e-3_threshold']:.3f} | {100 * j['eer']:.2f}% | "
              f"{df['images']} ({df['retried_low_conf']} / {df['center_crop']}) | {j['seconds']:.0f} |")


if __name__ == "__main__":
    if sys.argv[1] == "speed":
        speed(sys.argv[2], sys.argv[3:])
    else:
        accuracy(sys.argv[2])
