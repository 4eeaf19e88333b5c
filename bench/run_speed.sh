#!/bin/sh
# Speed against the hardware and against the original stack (BENCHMARKS.md):
# FLOPs from the graphs, then PyTorch eager and facerec's engine in the same run
# (rounds alternate: torch eager, then one build/bench/model_speed process that
# measures the sgemm peak and every network, manifest and torch exports alike).
#   bench/run_speed.sh [OUT=/tmp/eb_speed]   (about 6-8 minutes)
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/eb_speed}
mkdir -p "$OUT"
uptime > "$OUT/load_before.txt"
# 0. the exports compute what PyTorch computes (facerec's outputs vs eager's, same input)
/usr/bin/python3 bench/torch_original.py --out "$OUT" --check
R="--out $OUT --rounds ${ROUNDS:-5} --reps ${REPS:-5}"
# 1. PyTorch as it comes (2 threads; libgomp's default wait policy spins), with every manifest network
/usr/bin/python3 bench/torch_original.py $R --with-manifest --json "$OUT/speed.json"
# 2. PyTorch's OpenMP threads sleep instead of spinning (as facerec's ORT pools do)
OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_original.py $R --json "$OUT/speed_passive.json"
# 3. PyTorch on 1 thread
/usr/bin/python3 bench/torch_original.py $R --torch-threads 1 --json "$OUT/speed_1thread.json"
/usr/bin/python3 bench/onnx_flops.py --json "$OUT/flops.json" \
  --onnx "torch:iresnet50=$OUT/torch_iresnet50.onnx:1x3x112x112" \
  --onnx "torch:iresnet18=$OUT/torch_iresnet18.onnx:1x3x112x112" \
  --onnx "torch:yolov5n-0.5-face=$OUT/torch_yolov5n-0.5-face.onnx:1x3x640x640"
# (the PyTorch eager rows use the FLOPs of their own ONNX export)
/usr/bin/python3 bench/evalbench_report.py speed "$OUT/flops.json" "$OUT/speed.json" "$OUT/speed_passive.json" \
  "$OUT/speed_1thread.json" | tee "$OUT/tables.md"
