#!/usr/bin/env bash
# Runs the core-engine benchmark (bench/core_bench.cc) with repetitions, times
# `facerec enroll` end to end, and prints the BENCHMARKS.md tables (medians).
#
# Usage: bench/run_core.sh            (from anywhere; about 4-5 minutes)
# Environment:
#   BUILD=build         build folder holding bench/core_bench and facerec
#   REPS=10             repetitions per benchmark (enrol/library fixes its own 3)
#   MIN_TIME=0.1        seconds each repetition runs at least
#   FILTER=.            --benchmark_filter regex (e.g. '^search/')
#   CLI_RUNS=3          timed runs of `facerec enroll`; 0 skips them
#   OUT=/tmp/facerec_core_bench   where the raw JSON goes
#   FACEREC_BENCH_THREADS=0       ONNX Runtime intra-op threads (0 = one per core)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
REPS=${REPS:-10}
MIN_TIME=${MIN_TIME:-0.1}
FILTER=${FILTER:-.}
CLI_RUNS=${CLI_RUNS:-3}
OUT=${OUT:-/tmp/facerec_core_bench}
shared=$(realpath "${FACEREC_SHARED:-$root/../shared}")
mkdir -p "$OUT"
rm -f "$OUT/core.json" "$OUT/enrol_cli.json"

echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- bench src include || echo ' (with local changes)')" \
  | tee "$OUT/load.txt"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"

# Random interleaving runs the repetitions of all benchmarks in a shuffled
# order, so a burst of load from another process spreads over every row
# instead of landing on one, and ORT-vs-OpenCV ratios are taken side by side.
bench=("$BUILD/bench/core_bench" "--benchmark_filter=$FILTER" "--benchmark_repetitions=$REPS"
       --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
       "--benchmark_min_time=$MIN_TIME" "--benchmark_out=$OUT/core.json" --benchmark_out_format=json)
echo "+ FACEREC_CLI=$root/$BUILD/facerec ${bench[*]}"
FACEREC_CLI="$root/$BUILD/facerec" "${bench[@]}" >&2

if [[ "$CLI_RUNS" -gt 0 ]]; then
  db="$OUT/enrol.db"
  enrol="$BUILD/facerec enroll $shared/data/celeb5/train --db $db"
  prepare="rm -f $db $db-wal $db-shm"  # a fresh gallery every run
  if command -v hyperfine >/dev/null; then
    cli=(hyperfine --runs "$CLI_RUNS" --prepare "$prepare" --export-json "$OUT/enrol_cli.json" "$enrol")
    echo "+ ${cli[*]}"
    "${cli[@]}" >&2
  else
    # The same measurement without hyperfine, written in its JSON layout.
    echo "+ for i in 1..$CLI_RUNS: $prepare; time $enrol"
    times=()
    for _ in $(seq "$CLI_RUNS"); do
      $prepare
      t0=$(date +%s.%N)
      $enrol >/dev/null 2>&1
      t1=$(date +%s.%N)
      times+=("$(echo "$t1 - $t0" | bc)")
    done
    printf '{"results":[{"command":"%s","times":[%s]}]}\n' "$enrol" "$(IFS=,; echo "${times[*]}")" \
      >"$OUT/enrol_cli.json"
  fi
  rm -f "$db" "$db-wal" "$db-shm"
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
python3 bench/core_report.py "$OUT/core.json" "$OUT/enrol_cli.json" "$OUT/load.txt"
