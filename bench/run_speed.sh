#!/bin/sh
# Speed against the hardware and against the original stack (BENCHMARKS.md):
# FLOPs from the graphs, then PyTorch eager and facerec's engine in the same run
# (rounds alternate: torch eager, then one build/bench/model_speed process that
# measures the sgemm peak and every network, manifest and torch exports alike).
#   bench/run_speed.sh [OUT=/tmp/eb_speed]   (about 2-3 minutes)
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/eb_speed}
mkdir -p "$OUT"
uptime > "$OUT/load_before.txt"
/usr/bin/python3 bench/torch_original.py --out "$OUT" --rounds "${ROUNDS:-7}" --reps "${REPS:-5}" --with-manifest \
  --json "$OUT/speed.json"
/usr/bin/python3 bench/onnx_flops.py --json "$OUT/flops.json" \
  --onnx "torch:iresnet50=$OUT/torch_iresnet50.onnx:1x3x112x112" \
  --onnx "torch:iresnet18=$OUT/torch_iresnet18.onnx:1x3x112x112" \
  --onnx "torch:yolov5n-0.5-face=$OUT/torch_yolov5n-0.5-face.onnx:1x3x640x640"
# torch eager rows use the FLOPs of their own export
/usr/bin/python3 - "$OUT/flops.json" <<'PY'
import json, sys
p = sys.argv[1]; j = json.load(open(p))
for k in list(j):
    if k.startswith("torch:"): j[k[len("torch:"):] + " (eager)"] = j[k]
json.dump(j, open(p, "w"), indent=1)
PY
/usr/bin/python3 bench/evalbench_report.py speed "$OUT/speed.json" "$OUT/flops.json" | tee "$OUT/tables.md"
