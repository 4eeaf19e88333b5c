#!/usr/bin/env bash
# `facerec serve` under load: wrk posts one 640x480 one-face photo to
# /v1/identify against a gallery of 1,000 people (celeb5/train enrolled for
# real + 995 synthetic random templates imported through the legacy format),
# at concurrency 1, 4 and 16; then the CLI's time for the same photo (process
# start + model loading + the same work), as medians over RUNS runs.
#
# Usage: bench/serve_bench.sh   (about 2 minutes; numbers go to BENCHMARKS.md "Service (issue 9)")
# Environment: BUILD=build  DURATION=15s  RUNS=5  OUT=/tmp/facerec_serve_bench
#   SERVE_ARGS="--threads 1"  extra flags for `facerec serve`
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
DURATION=${DURATION:-15s}
RUNS=${RUNS:-5}
OUT=${OUT:-/tmp/facerec_serve_bench}
shared=$(realpath "${FACEREC_SHARED:-$root/../shared}")
bin="$root/$BUILD/facerec"
. bench/serve_gallery.sh
bench_begin

db="$OUT/g.db"
bench_photo_and_gallery "$db"

"$bin" serve --db "$db" --listen 127.0.0.1:0 ${SERVE_ARGS:-} > "$OUT/serve.out" 2> "$OUT/access.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$OUT/serve.out" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$OUT/serve.out")
echo "server: $(head -1 "$OUT/serve.out")"
curl -s -H "Content-Type: image/jpeg" --data-binary @"$photo" "$base/v1/identify" | head -c 300; echo
for c in 1 4 16; do
  line=$(PHOTO="$photo" wrk -t $(( c < 4 ? c : 4 )) -c $c -d "$DURATION" --timeout 30s -s bench/serve_post.lua "$base/v1/identify" | grep RESULT)
  echo "concurrency $c: $line"
done
kill -TERM $pid; wait $pid || true
trap - EXIT
echo "server exit: $(tail -1 "$OUT/serve.out")"

times=()
for _ in $(seq "$RUNS"); do
  s=$(date +%s.%N)
  "$bin" identify "$photo" --db "$db" --json > /dev/null
  e=$(date +%s.%N)
  times+=("$(echo "($e - $s) * 1000" | bc -l)")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "CLI identify (process start + model load + work), median of %d: %.1f ms (min %.1f, max %.1f)\n", NR, a[int((NR+1)/2)], a[1], a[NR]}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
