#!/bin/sh
# int8 against fp32, side by side in one process (BENCHMARKS.md "int8"):
# every float model with a shipped int8 entry next to its int8 copy, and the
# GEMM peaks (OpenBLAS sgemm inside model_speed; ONNX Runtime's integer GEMM
# from bench/int8_gemm.py, u8s8 and s8s8, plus its fp32 twin), all in the same
# build/bench/model_speed rounds (shuffled order per round). Then FLOPs from
# the float graphs (bench/onnx_flops.py; an int8 copy does the same
# multiply-adds) and the table (bench/int8_report.py).
#   [OUT=/tmp/int8_speed] [ROUNDS=4] [REPS=5] [IR=/tmp/int8_ir] [MANIFEST=FILE] [FP32_ONLY=id,...] [THREADS=1] bench/run_int8.sh
# MANIFEST: another manifest (e.g. models/manifest.json plus an int8 entry that
# is not shipped, such as fr_detect-int8 made from its old recipe), read by
# model_speed (as FACEREC_MANIFEST) and by the table.
# THREADS=1: one intra-op thread and OPENBLAS_NUM_THREADS=1, and the table from
# each run's CPU time on the calling thread (for a loaded machine; see
# bench/model_speed.cc).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/int8_speed}
MANIFEST=${MANIFEST:-models/manifest.json}
export FACEREC_MANIFEST="$MANIFEST"
CPU_ARGS=""; THREAD_ARGS=""
if [ -n "${THREADS:-}" ]; then
  export OPENBLAS_NUM_THREADS="$THREADS"
  THREAD_ARGS="--threads $THREADS"; CPU_ARGS="--cpu"
fi
mkdir -p "$OUT"
uptime | tee "$OUT/load_before.txt"
/usr/bin/python3 bench/int8_gemm.py --out "$OUT" > /dev/null
# The original design's iresnet50 (bench/torch_original.py's export, random
# weights) and its int8 copy, when IR=DIR holds torch_iresnet50.onnx,
# torch_iresnet50.input.raw and iresnet50-int8.onnx (see BENCHMARKS.md, int8).
IR_ARGS=""; IR_PAIR=""
if [ -n "${IR:-}" ]; then
  IR_ARGS="--onnx iresnet50=$IR/torch_iresnet50.onnx:$IR/torch_iresnet50.input.raw:1x3x112x112 --onnx iresnet50-int8=$IR/iresnet50-int8.onnx:$IR/torch_iresnet50.input.raw:1x3x112x112"
  IR_PAIR="--pair iresnet50=iresnet50-int8:12.619"
fi
pairs=$(/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["models"]
print(",".join(x for e in m if "quantize" in e["source"] for x in (e["source"]["quantize"]["from"], e["id"])))' "$MANIFEST")
# FP32_ONLY=id,id: models without an int8 copy, timed in the same rounds (a row with the fp32 fraction only).
[ -n "${FP32_ONLY:-}" ] && pairs="$pairs,$FP32_ONLY"
# shellcheck disable=SC2086
build/bench/model_speed --models "$pairs" --rounds "${ROUNDS:-4}" --reps "${REPS:-5}" --json "$OUT/speed.json" $THREAD_ARGS \
  --onnx "gemm_u8s8=$OUT/gemm_u8s8.onnx:$OUT/a.raw:2048x2048" \
  --onnx "gemm_s8s8=$OUT/gemm_s8s8.onnx:$OUT/a.raw:2048x2048" \
  --onnx "gemm_fp32_ort=$OUT/gemm_fp32.onnx:$OUT/a.raw:2048x2048" $IR_ARGS | tee "$OUT/speed.txt"
/usr/bin/python3 bench/onnx_flops.py --json "$OUT/flops.json" > /dev/null
# shellcheck disable=SC2086
/usr/bin/python3 bench/int8_report.py "$OUT/speed.json" "$OUT/flops.json" --manifest "$MANIFEST" --fp32-only "${FP32_ONLY:-}" $CPU_ARGS $IR_PAIR | tee "$OUT/table.md"
uptime | tee "$OUT/load_after.txt"
