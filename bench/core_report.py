#!/usr/bin/env python3
"""Turns core_bench's JSON (and hyperfine's, for the CLI enrol) into the
markdown tables of BENCHMARKS.md. Every number printed is a median over the
repetitions of one run; cv is the coefficient of variation over them.

Usage: core_report.py core.json [enrol_cli.json] [load.txt]
"""
import json
import os
import statistics
import sys

TARGET_MS = 15.0  # the end-to-end target for one 640x480 photo with one face


def load(path):
    with open(path) as f:
        return json.load(f)


def index(bench):
    """name -> {'median': ms, 'cv': %, counters..., 'error': msg}"""
    rows = {}
    for b in bench["benchmarks"]:
        name = b.get("run_name", b["name"])
        if name.endswith("/real_time"):
            name = name[: -len("/real_time")]
        if name.endswith("/iterations:1"):
            name = name[: -len("/iterations:1")]
        r = rows.setdefault(name, {})
        if b.get("error_occurred"):
            r["error"] = b.get("error_message", "error")
            continue
        agg = b.get("aggregate_name")
        if agg == "median":
            r["median"] = b["real_time"]
            r["unit"] = b["time_unit"]
            for k in ("faces", "batch", "photos", "enrolled", "items_per_second"):
                if k in b:
                    r[k] = b[k]
        elif agg == "cv":
            r["cv"] = 100.0 * b["real_time"]
        elif agg is None and "median" not in r:  # a single repetition
            r["median"] = b["real_time"]
            r["unit"] = b["time_unit"]
    return rows


def ms(r):
    if r is None:
        return None
    if "error" in r or "median" not in r:
        return None
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[r["unit"]]
    return r["median"] * scale


def fmt(x, digits=None):
    if x is None:
        return "-"
    if digits is None:
        digits = 2 if x < 10 else 1 if x < 100 else 0
    return f"{x:.{digits}f}"


def cv(r):
    return "-" if r is None or "cv" not in r else f"{r['cv']:.0f}%"


def short_error(msg):
    # OpenCV's messages are long; keep the node and the failed check.
    msg = msg.replace("OpenCV(4.6.0) ./modules/dnn/src/", "")
    if "Node [" in msg:
        node = msg[msg.index("Node [") :].split(" parse error")[0]
        why = msg.split("error: ")[-1].strip(" >'")
        return f"fails to load: {node}: {why}"[:220]
    return msg[:220]


def main():
    bench = load(sys.argv[1])
    rows = index(bench)
    get = rows.get
    ctx = bench["context"]
    print("## Context of this run\n")
    print(f"- date: {ctx.get('date')}; host CPUs: {ctx.get('num_cpus')} x {ctx.get('mhz_per_cpu')} MHz; "
          f"CPU: {ctx.get('cpu_model')}")
    print(f"- {ctx.get('onnxruntime')}, intra-op threads {ctx.get('ort_intra_op_threads')}; "
          f"OpenCV {ctx.get('opencv')}, cv::getNumThreads() = {ctx.get('opencv_threads')}")
    if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
        with open(sys.argv[3]) as f:
            print("- " + "; ".join(line.strip() for line in f if line.strip()))
    print(f"- detection photo: {ctx.get('detect_image')}; end-to-end photo: {ctx.get('e2e_image')}")
    print()

    # 1. Detection
    detectors = [("fr_detect", "ultraface + fr_landmark", "320x240 stretch"),
                 ("yolov5n-0.5-face", "yolov5face", "640x640 letterbox"),
                 ("scrfd_500m", "scrfd", "640x640 letterbox"),
                 ("scrfd_2.5g", "scrfd", "640x640 letterbox"),
                 ("yunet", "yunet", "640x640 letterbox"),
                 ("retinaface_mnet025", "retinaface", "640x640 letterbox")]
    print("### 1. Detection, ms per 640x480 photo\n")
    print("| detector | family | network input | detect() ms | cv | forward ms | cv | rest (fit, blob, decode, NMS, landmarks) ms | faces |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for d, fam, inp in detectors:
        e2e, fwd = get("detect/" + d), get("forward/ort/" + d)
        rest = ms(e2e) - ms(fwd) if ms(e2e) is not None and ms(fwd) is not None else None
        faces = e2e.get("faces") if e2e else None
        print(f"| {d} | {fam} | {inp} | {fmt(ms(e2e))} | {cv(e2e)} | {fmt(ms(fwd))} | {cv(fwd)} | {fmt(rest)} | "
              f"{'-' if faces is None else int(faces)} |")
    lm = get("forward/ort/fr_landmark")
    if lm:
        print(f"\nfr_landmark forward (64x64 grey, once per face found by fr_detect): {fmt(ms(lm))} ms ({cv(lm)}).")
    print()

    # 2. Embedding
    embedders = [("fr_feature", 512, "fixed 1: batch 8 = 8 runs"),
                 ("mobilefacenet_128", 128, "dynamic: one run of 8"),
                 ("mobilefacenet_192", 192, "fixed 1: batch 8 = 8 runs")]
    print("### 2. Embedding, ms per face (aligned 112x112 crops)\n")
    print("| embedder | dim | batch | batch 1 ms/face | cv | batch 8 ms/face | cv | forward only (batch 1) ms |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for e, dim, how in embedders + [("fr_feature", 512, "fixed 1; **denormals as zero**")]:
        sfx = "/dnz" if "denormal" in how else ""
        b1, b8 = get(f"embed/{e}/batch:1{sfx}"), get(f"embed/{e}/batch:8{sfx}")
        fwd = get(f"forward/ort/{e}{sfx}")
        per8 = ms(b8) / 8 if ms(b8) is not None else None
        print(f"| {e}{sfx} | {dim} | {how} | {fmt(ms(b1))} | {cv(b1)} | {fmt(per8)} | {cv(b8)} | {fmt(ms(fwd))} |")
    print()

    # 3. Search
    print("### 3. Search, ms per query (512-D random unit templates, 10 per person, top 5)\n")
    print("| templates | people | search() (sgemv) ms | cv | search_reference() ms | cv | reference / BLAS | "
          "search_batch(8 queries) ms | ms per query |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (10000, 100000):
        b, r, q = get(f"search/blas/{n}"), get(f"search/reference/{n}"), get(f"search/batch8/{n}")
        ratio = ms(r) / ms(b) if ms(r) and ms(b) else None
        perq = ms(q) / 8 if ms(q) is not None else None
        print(f"| {n:,} | {n // 10:,} | {fmt(ms(b), 3 if (ms(b) or 0) < 1 else None)} | {cv(b)} | {fmt(ms(r))} | {cv(r)} | "
              f"{fmt(ratio, 1)}x | {fmt(ms(q))} | {fmt(perq, 3 if (perq or 0) < 1 else None)} |")
    print()

    # 4. Enrolment
    print("### 4. Enrolment, celeb5/train (default models: fr_detect + fr_landmark + fr_feature)\n")
    print("| path | photos | runs | median s per enrolment | photos/s |")
    print("|---|---:|---:|---:|---:|")
    photos = None
    for name, label in (("enrol/library", "library (models loaded once, outside the timing)"),
                        ("enrol/library/dnz", "library, **denormals as zero**")):
        r = get(name)
        if r and ms(r) is not None:
            photos = int(r.get("photos", 0))
            s = ms(r) / 1000
            print(f"| {label} | {photos} | 3 | {s:.2f} | {photos / s:.1f} |")
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        cli = load(sys.argv[2])["results"][0]
        t = statistics.median(cli["times"])
        n = photos or 93
        print(f"| CLI `facerec enroll` (process start + model load + enrol, fresh db) | {n} | {len(cli['times'])} | "
              f"{t:.2f} | {n / t:.1f} |")
    print()

    # 5. ORT vs OpenCV DNN
    nets = ["fr_detect", "fr_landmark", "yolov5n-0.5-face", "scrfd_500m", "scrfd_2.5g", "yunet",
            "retinaface_mnet025", "fr_feature", "mobilefacenet_128", "mobilefacenet_192"]
    print("### 5. Forward pass: ONNX Runtime (our engine) vs OpenCV 4.6 DNN, same input blob, same run\n")
    print("| network | ORT ms | cv | OpenCV DNN ms | cv | OpenCV / ORT |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in nets:
        o, c = get("forward/ort/" + n), get("forward/ocv/" + n)
        if c and "error" in c:
            print(f"| {n} | {fmt(ms(o))} | {cv(o)} | {short_error(c['error'])} | | - |")
            continue
        ratio = ms(c) / ms(o) if ms(c) and ms(o) else None
        print(f"| {n} | {fmt(ms(o))} | {cv(o)} | {fmt(ms(c))} | {cv(c)} | {fmt(ratio)} |")
    o = get("forward/ort/fr_feature/dnz")
    c = get("forward/ocv/fr_feature")
    if o:
        ratio = ms(c) / ms(o) if ms(c) and ms(o) else None
        print(f"| fr_feature, ORT with **denormals as zero** | {fmt(ms(o))} | {cv(o)} | {fmt(ms(c))} | {cv(c)} | "
              f"{fmt(ratio)} |")
    print()

    # 6. End to end
    print(f"### 6. End to end: detect + align + embed, one 640x480 photo with one face (target < {TARGET_MS:g} ms)\n")
    print("| pipeline | ORT setting | ms | cv | faces | under 15 ms? |")
    print("|---|---|---:|---:|---:|---|")
    for p in ("fr_detect+fr_feature", "scrfd_500m+mobilefacenet_128", "yunet+mobilefacenet_128"):
        for sfx, label in (("", "library as is: threads 0 (= 2)"),
                           ("/threads:1", "library, 1 intra-op thread"),
                           ("/dnz", "denormals as zero, threads 0 (= 2)"),
                           ("/dnz/threads:1", "denormals as zero, 1 intra-op thread"),
                           ("/dnz/nospin", "denormals as zero, threads 0 (= 2), no spinning")):
            r = get(f"e2e/{p}{sfx}")
            if r is None:
                continue
            if "error" in r:
                print(f"| {p} | {label} | {r['error'][:120]} | | | |")
                continue
            t = ms(r)
            print(f"| {p} | {label} | {fmt(t)} | {cv(r)} | {int(r.get('faces', 0))} | "
                  f"{'yes' if t is not None and t < TARGET_MS else 'no'} |")


if __name__ == "__main__":
    main()
