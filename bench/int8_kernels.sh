#!/bin/sh
# Which instructions ONNX Runtime actually runs for a model: samples the CPU
# with `perf record` (software cpu-clock: this VM exposes no hardware
# counters) while build/bench/model_speed times the model, then disassembles
# libonnxruntime.so around each sampled address (the library is stripped, so
# perf reports addresses, not MLAS symbol names) and classifies the samples by
# the instruction family found in the 192 bytes around the address:
#   amx   AMX tile ops (tdpbusd/tdpbssd/tdpbsud/tdpbuud/tileloadd)
#   vnni  AVX-512/AVX VNNI int8 dot products (vpdpbusd/vpdpbusds/vpdpwssd)
#   fp32  fused multiply-adds on zmm/ymm registers (vfmadd*)
#   other anything else in the library (element-wise, layout, Q/DQ ...)
# Samples outside libonnxruntime.so count as "outside".
#
#   bench/int8_kernels.sh NAME=MODEL.onnx:INPUT.raw:1x3xHxW [more ...]
#   bench/int8_kernels.sh --models fr_feature,fr_feature-int8
# One model per perf run; prints a table of sample shares per model.
set -eu
cd "$(dirname "$0")/.."
ORT_LIB=${ORT_LIB:-$HOME/.cache/facerec/onnxruntime-1.30.0/lib/libonnxruntime.so}
OUT=${OUT:-/tmp/int8_kernels}
mkdir -p "$OUT"
runs=""
if [ "$1" = "--models" ]; then
  for m in $(echo "$2" | tr ',' ' '); do runs="$runs manifest:$m"; done
else
  for a in "$@"; do runs="$runs onnx:$a"; done
fi
printf '| model | samples | amx | vnni | fp32 fma | other in ORT | outside ORT |\n|---|---:|---:|---:|---:|---:|---:|\n'
for r in $runs; do
  kind=${r%%:*}; spec=${r#*:}
  name=$(echo "${spec%%=*}" | tr -c 'A-Za-z0-9_.\n-' '_')
  if [ "$kind" = manifest ]; then args="--models $spec"; else args="--models none --onnx $spec"; fi
  # shellcheck disable=SC2086
  perf record -q -e cpu-clock -F 2000 -o "$OUT/$name.data" -- build/bench/model_speed $args --rounds 3 --reps 20 \
    --gemm 256 --gemm-reps 1 > /dev/null 2>&1
  perf report -q -i "$OUT/$name.data" --sort dso,sym --stdio 2> /dev/null > "$OUT/$name.report"
  /usr/bin/python3 - "$OUT/$name.report" "$ORT_LIB" "$name" << 'EOF'
import re, subprocess, sys
report, lib, name = sys.argv[1:]
fam = {"amx": re.compile(r"\b(tdpb[su][su]d|tileloadd|tileloaddt1|tilestored)\b"),
       "vnni": re.compile(r"\b(vpdpbusds?|vpdpwssds?)\b"),
       "fp32": re.compile(r"\bvfn?madd\d*[ps]s\b")}
counts = {"amx": 0.0, "vnni": 0.0, "fp32": 0.0, "other": 0.0, "outside": 0.0}
total = 0.0
for line in open(report):
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[\.\]\s+(\S+)", line)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    total += pct
    if "libonnxruntime" not in dso or not sym.startswith("0x"):
        counts["outside"] += pct
        continue
    addr = int(sym, 16)
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={addr - 96:#x}",
                          f"--stop-address={addr + 96:#x}", lib], capture_output=True, text=True).stdout
    kind = next((k for k, rx in fam.items() if rx.search(dis)), "other")
    counts[kind] += pct
t = total or 1.0
print(f"| {name} | {total:.0f}% | " + " | ".join(f"{100 * counts[k] / t:.1f}%" for k in
      ("amx", "vnni", "fp32", "other", "outside")) + " |")
EOF
done
