#!/usr/bin/env python3
"""Turns core_bench's JSON (and hyperfine's, for the CLI enrol) into the
markdown tables of BENCHMARKS.md. Times are "median (min)" over the
repetitions of one run, in ms; cv is the coefficient of variation over them.
Derived figures (per face, ratios) are computed from the medians, and from
the minimums in parentheses.

Usage: core_report.py core.json [enrol_cli.json] [load.txt]
"""
import json
import os
import re
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
        # Drop the suffixes Google Benchmark adds for settings, keep ours.
        name = re.sub(r"/(iterations|repeats):\d+|/real_time$", "", name)
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
        elif agg == "min":
            r["min"] = b["real_time"]
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


def ms_min(r):
    if r is None or "min" not in r or "error" in r:
        return None
    return r["min"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[r["unit"]]


def fmt(x, digits=None):
    if x is None:
        return "-"
    if digits is None:
        digits = 2 if x < 10 else 1 if x < 100 else 0
    return f"{x:.{digits}f}"


def mm(r, div=1.0):
    """'median (min)' in ms, each divided by div (e.g. per face of a batch)."""
    a, b = ms(r), ms_min(r)
    if a is None:
        return "-"
    return f"{fmt(a / div)} ({fmt(b / div)})" if b is not None else fmt(a / div)


def ratio(num, den):
    """num/den of the medians, and of the minimums in parentheses."""
    a = ms(num) / ms(den) if ms(num) and ms(den) else None
    b = ms_min(num) / ms_min(den) if ms_min(num) and ms_min(den) else None
    if a is None:
        return "-"
    return f"{a:.2f} ({b:.2f})" if b is not None else f"{a:.2f}"


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
    reps = "the repetitions"
    print("## Context of this run\n")
    print(f"- date: {ctx.get('date')}; host CPUs: {ctx.get('num_cpus')} x {ctx.get('mhz_per_cpu')} MHz; "
          f"CPU: {ctx.get('cpu_model')}")
    print(f"- {ctx.get('onnxruntime')}, intra-op threads {ctx.get('ort_intra_op_threads')}; "
          f"OpenCV {ctx.get('opencv')}, cv::getNumThreads() = {ctx.get('opencv_threads')}")
    if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
        with open(sys.argv[3]) as f:
            print("- " + "; ".join(line.strip() for line in f if line.strip()))
    print(f"- detection photo: {ctx.get('detect_image')}; end-to-end photo: {ctx.get('e2e_image')}")
    if "fr_feature_dnz_min_cosine" in ctx:
        print(f"- fr_feature embeddings of the 8 test faces, denormals as zero vs as is: lowest cosine "
              f"{ctx['fr_feature_dnz_min_cosine']}")
    print("- cells: median (fastest) over the repetitions, ms unless stated")
    print()

    # 1. Detection
    detectors = [("fr_detect", "ultraface + fr_landmark", "320x240 stretch"),
                 ("yolov5n-0.5-face", "yolov5face", "640x640 letterbox"),
                 ("scrfd_500m", "scrfd", "640x640 letterbox"),
                 ("scrfd_2.5g", "scrfd", "640x640 letterbox"),
                 ("yunet", "yunet", "640x640 letterbox"),
                 ("retinaface_mnet025", "retinaface", "640x640 letterbox")]
    print("### 1. Detection, ms per 640x480 photo\n")
    print("| detector | family | network input | faces | detect() end to end | cv | network forward only | cv | "
          "rest: fit, blob, decode, NMS (+ landmarks) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for d, fam, inp in detectors:
        e2e, fwd = get("detect/" + d), get("forward/ort/" + d)
        rest = ms(e2e) - ms(fwd) if ms(e2e) is not None and ms(fwd) is not None else None
        rest_min = ms_min(e2e) - ms_min(fwd) if ms_min(e2e) is not None and ms_min(fwd) is not None else None
        # Medians of two noisy rows need not subtract to something positive.
        rest_s = "-" if rest is None else (fmt(rest) if rest >= 0 else "< noise")
        if rest_min is not None:
            rest_s += f" ({fmt(rest_min) if rest_min >= 0 else '< noise'})"
        faces = e2e.get("faces") if e2e else None
        if e2e and "error" in e2e:
            print(f"| {d} | {fam} | {inp} | - | {e2e['error'][:150]} | | {mm(fwd)} | {cv(fwd)} | - |")
            continue
        print(f"| {d} | {fam} | {inp} | {'-' if faces is None else int(faces)} | {mm(e2e)} | {cv(e2e)} | "
              f"{mm(fwd)} | {cv(fwd)} | {rest_s} |")
    y = get("detect/yunet/input:640x480")
    if y:
        print(f"| yunet | yunet | **640x480** (dynamic input, no padding) | {int(y.get('faces', 0))} | {mm(y)} | "
              f"{cv(y)} | - | - | - |")
    lm = get("forward/ort/fr_landmark")
    if lm:
        print(f"\nfr_landmark forward (64x64 grey, run once per face fr_detect finds): {mm(lm)} ms ({cv(lm)} cv).")
    print()

    # 2. Embedding
    embedders = [("fr_feature", "", 512, "fixed 1: batch 8 = 8 runs"),
                 ("mobilefacenet_128", "", 128, "dynamic: one run of 8"),
                 ("mobilefacenet_192", "", 192, "fixed 1: batch 8 = 8 runs"),
                 ("fr_feature", "/no-dnz", 512, "fixed 1; denormals kept (RuntimeOptions::denormals_as_zero = false)")]
    print("### 2. Embedding, ms per face (aligned 112x112 crops)\n")
    print("| embedder | dim | model batch | batch 1: ms/face | cv | batch 8: ms/face | cv | forward only, batch 1 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for e, sfx, dim, how in embedders:
        b1, b8, fwd = get(f"embed/{e}/batch:1{sfx}"), get(f"embed/{e}/batch:8{sfx}"), get(f"forward/ort/{e}{sfx}")
        print(f"| {e}{sfx} | {dim} | {how} | {mm(b1)} | {cv(b1)} | {mm(b8, 8)} | {cv(b8)} | {mm(fwd)} |")
    print()

    # 3. Search
    print("### 3. Search, ms per query (512-D random unit templates, 10 per person, top 5)\n")
    print("| templates | people | search() (sgemv) | cv | search_reference() | cv | reference / BLAS | "
          "search_batch(8 queries), per call | per query |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (10000, 100000):
        b, r, q = get(f"search/blas/{n}"), get(f"search/reference/{n}"), get(f"search/batch8/{n}")
        print(f"| {n:,} | {n // 10:,} | {mm(b)} | {cv(b)} | {mm(r)} | {cv(r)} | {ratio(r, b)} | {mm(q)} | "
              f"{mm(q, 8)} |")
    print()

    # 4. Enrolment
    print("### 4. Enrolment, celeb5/train (default models: fr_detect + fr_landmark + fr_feature)\n")
    print("| path | photos | runs | s per enrolment, median (fastest) | photos/s (from the median) |")
    print("|---|---:|---:|---:|---:|")
    photos = None
    for name, label in (("enrol/library", "library, as the CLI's loop (models loaded once, outside the timing)"),
                        ("enrol/library/no-dnz", "library, denormals kept")):
        r = get(name)
        if r and ms(r) is not None:
            photos = int(r.get("photos", 0))
            s, s_min = ms(r) / 1000, (ms_min(r) or ms(r)) / 1000
            print(f"| {label} | {photos} | 3 | {s:.2f} ({s_min:.2f}) | {photos / s:.1f} |")
    r = get("enrol/cli")
    if r and "error" in r:
        print(f"| CLI as a child process, interleaved with the rows above | - | - | {r['error'][:100]} | - |")
    elif r and ms(r) is not None:
        n = int(r.get("photos", photos or 0))
        s, s_min = ms(r) / 1000, (ms_min(r) or ms(r)) / 1000
        print(f"| CLI `facerec enroll` as a child process, interleaved with the rows above: process start, "
              f"model load, enrol into a fresh db | {n} | 3 | {s:.2f} ({s_min:.2f}) | {n / s:.1f} |")
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        cli = load(sys.argv[2])["results"][0]
        t = statistics.median(cli["times"])
        n = photos or 93
        print(f"| CLI `facerec enroll`, hyperfine, after the run above | {n} | {len(cli['times'])} | "
              f"{t:.2f} ({min(cli['times']):.2f}) | {n / t:.1f} |")
    print()

    # 5. ORT vs OpenCV DNN
    nets = ["fr_detect", "fr_landmark", "yolov5n-0.5-face", "scrfd_500m", "scrfd_2.5g", "yunet",
            "retinaface_mnet025", "fr_feature", "mobilefacenet_128", "mobilefacenet_192"]
    print("### 5. Forward pass: ONNX Runtime (our engine) vs OpenCV 4.6 DNN, same input blob, same run\n")
    print("| network | ORT | cv | OpenCV DNN | cv | OpenCV / ORT (>1: ORT faster) |")
    print("|---|---:|---:|---:|---:|---:|")
    for n, sfx, label in [(n, "", n) for n in nets] + [("fr_feature", "/no-dnz", "fr_feature, ORT with denormals kept")]:
        o, c = get(f"forward/ort/{n}{sfx}"), get("forward/ocv/" + n)
        if c and "error" in c:
            print(f"| {label} | {mm(o)} | {cv(o)} | {short_error(c['error'])} | | - |")
            continue
        print(f"| {label} | {mm(o)} | {cv(o)} | {mm(c)} | {cv(c)} | {ratio(c, o)} |")
    print()

    # 6. End to end
    print(f"### 6. End to end: detect + align + embed, one 640x480 photo with one face (target < {TARGET_MS:g} ms)\n")
    print("| pipeline | ORT setting | ms | cv | faces | median under 15 ms? |")
    print("|---|---|---:|---:|---:|---|")
    for p in ("fr_detect+fr_feature", "scrfd_500m+mobilefacenet_128", "yunet+mobilefacenet_128"):
        for sfx, label in (("", "library as is: threads 0 (= 2)"),
                           ("/threads:1", "library, 1 intra-op thread"),
                           ("/spinning", "pool threads spin"),
                           ("/no-dnz", "denormals kept")):
            r = get(f"e2e/{p}{sfx}")
            if r is None:
                continue
            if "error" in r:
                print(f"| {p} | {label} | {r['error'][:120]} | | | |")
                continue
            t = ms(r)
            print(f"| {p} | {label} | {mm(r)} | {cv(r)} | {int(r.get('faces', 0))} | "
                  f"{'yes' if t is not None and t < TARGET_MS else 'no'} |")


if __name__ == "__main__":
    main()
