#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang, ASan + UBSan) in build-fuzz/
# and runs each for SECONDS (default 30) from a seed corpus generated now
# from ../shared and the repository (nothing is committed). A crash, leak or
# sanitizer report fails the script and leaves the input in build-fuzz/crashes/.
#   scripts/fuzz.sh            # bounded run (scripts/test.sh: 25 s x 6 harnesses)
#   scripts/fuzz.sh 1800       # long run (BENCHMARKS.md, "Fuzzing")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-${FACEREC_FUZZ_SECONDS:-30}}
build=${FUZZ_BUILD_DIR:-build-fuzz}
shared=${FACEREC_SHARED:-$root/../shared}
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "!!!!! fuzz: clang/libFuzzer ABSENT (apt-get install clang libfuzzer-14-dev): fuzzing NOT run !!!!!" >&2
  exit 0
fi
ort_args=()
[ -n "${FACEREC_ORT_ROOT:-}" ] && ort_args=(-DFACEREC_ORT_ROOT="$FACEREC_ORT_ROOT")
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFACEREC_FUZZ=ON \
  -DFACEREC_BUILD_TESTS=OFF -DFACEREC_BUILD_BENCH=OFF -DFACEREC_PYTHON=OFF "${ort_args[@]}" >/dev/null
harnesses=(image legacy_import manifest gallery_open config serve)
cmake --build "$build" -j"${JOBS:-2}" --target "${harnesses[@]/#/fuzz_}"

# --- seed corpora, made fresh ---------------------------------------------------
seeds="$build/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"/{image,legacy_import,manifest,gallery_open,config,serve} "$build/crashes"
if [ -d "$shared/data" ]; then
  # A few real photos, small, in every format facerec reads (and some it refuses).
  photo="$shared/data/celeb5/train/Madonna/$(ls "$shared/data/celeb5/train/Madonna" | head -1)"
  for ext in jpg png bmp tif webp ppm pgm gif heic avif jp2 pfm; do
    convert "$photo" -resize 48x48 "$seeds/image/seed.$ext" 2>/dev/null || true
  done
  convert "$photo" -resize 48x48 -interlace Plane "$seeds/image/progressive.jpg" 2>/dev/null || true
  convert "$photo" -resize 48x48 -orient RightTop "$seeds/image/oriented.tif" 2>/dev/null || true
  cp "$shared/data/att/s1/1.pgm" "$seeds/image/att.pgm" 2>/dev/null || true
  # Legacy import: a few lines of the real seed file, 0xFF, a label map.
  for n in 1 3; do
    { head -n $n "$shared/data/seed/face_embdding.txt"; printf '\xff'; 
      /usr/bin/python3 -c "import json;print(json.dumps({str(i): f'Person {i}' for i in range($n)}))"; } \
      > "$seeds/legacy_import/seed$n"
  done
  { head -n 2 "$shared/data/seed/face_embdding.txt"; printf '\xff{"Alice": [0, 1]}'; } > "$seeds/legacy_import/by_name"
  # The real file with no label map (label_<n>), and its vectors without labels.
  head -n 4 "$shared/data/seed/face_embdding.txt" > "$seeds/legacy_import/no_label_map"
  { head -n 3 "$shared/data/seed/face_embdding.txt" | cut -d' ' -f2-; printf '\xff{"0": "A", "1": "B", "2": "A"}'; } \
    > "$seeds/legacy_import/vectors_only"
  # facerec serve: a request for every route of api/openapi.yaml, with two real
  # photos (small JPEG re-encodings, under -max_len).
  other="$shared/data/celeb5/train/Madonna/$(ls "$shared/data/celeb5/train/Madonna" | sed -n 2p)"
  convert "$photo" -resize 112x112 -quality 90 "$build/serve_a.jpg"
  convert "$other" -resize 112x112 -quality 90 "$build/serve_b.jpg"
  /usr/bin/python3 tools/serve_fuzz_seeds.py "$seeds/serve" "$build/serve_a.jpg" "$build/serve_b.jpg" >/dev/null
else
  echo "!!!!! fuzz: ../shared is ABSENT: seeds are synthetic only !!!!!" >&2
  convert rose: "$build/serve_a.jpg"
  /usr/bin/python3 tools/serve_fuzz_seeds.py "$seeds/serve" "$build/serve_a.jpg" >/dev/null
  printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00' > "$seeds/image/min.jpg"
  printf '0.1 0.2 0.3 0.4\n\xff{"0": "A"}' > "$seeds/legacy_import/min"
fi
cp models/manifest.json "$seeds/manifest/manifest.json"
# Config files: every key of the schema, and the faults of issue 11 (19).
printf '{"manifest": "m.json", "detector": "fr_detect", "embedder": "fr_feature", "db": "g.db", "threads": 2, "threshold": 0.4, "fpir": 0.01, "score_threshold": 0.5, "nms_threshold": 0.4, "max_pixels": 40000000, "detect_policy": "default"}' > "$seeds/config/all.json"
printf '{"threshold": true, "threads": 2.7, "treshold": 0.3}' > "$seeds/config/faults.json"
printf '{"models": []}' > "$seeds/manifest/empty.json"
# A real gallery, written by the import harness's own code path.
if [ -x build/facerec ] && [ -d "$shared/data/seed" ]; then
  /usr/bin/python3 -c "import json;print(json.dumps({str(i): f'P{i}' for i in range(37)}))" > "$build/labels.json"
  rm -f "$seeds/gallery_open/seed.db"
  build/facerec gallery import "$shared/data/seed/face_embdding.txt" "$build/labels.json" \
    --embedder fr_feature --db "$seeds/gallery_open/seed.db" >/dev/null 2>&1 || true
fi
printf 'SQLite format 3\0' > "$seeds/gallery_open/header_only"

# --- run --------------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp}
status=0
summary="$build/fuzz_summary.txt"
: > "$summary"
for h in "${harnesses[@]}"; do
  corpus="$build/corpus/$h"
  mkdir -p "$corpus"
  log="$build/fuzz_$h.log"
  echo "fuzz: $h for ${seconds}s" >&2
  if ! "$build/fuzz/fuzz_$h" "$corpus" "$seeds/$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
        -max_len=262144 -artifact_prefix="$build/crashes/$h-" -print_final_stats=1 >"$log" 2>&1; then
    echo "!!!!! fuzz: $h FAILED, see $log and $build/crashes/ !!!!!" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]*' | awk '{print $2}')
  ft=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'ft: [0-9]*' | awk '{print $2}')
  printf '%-14s %6ss  execs %-9s cov %-6s ft %-6s corpus %s\n' "$h" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "$(ls "$corpus" | wc -l)" | tee -a "$summary"
done
exit $status
