#!/usr/bin/env bash
# `facerec serve` under load: wrk posts one 640x480 one-face photo to
# /v1/identify against a gallery of 1,000 people (celeb5/train enrolled for
# real + 995 synthetic random templates imported through the legacy format),
# at concurrency 1, 4 and 16; then the CLI's time for the same photo (process
# start + model loading + the same work), as medians over RUNS runs.
#
# Usage: bench/serve_bench.sh   (about 2 minutes; numbers go to BENCHMARKS.md "Service (issue 9)")
# Environment: BUILD=build  DURATION=15s  RUNS=5  OUT=/tmp/facerec_serve_bench
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
DURATION=${DURATION:-15s}
RUNS=${RUNS:-5}
OUT=${OUT:-/tmp/facerec_serve_bench}
shared=$(realpath "${FACEREC_SHARED:-$root/../shared}")
bin="$root/$BUILD/facerec"
rm -rf "$OUT" && mkdir -p "$OUT"
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- apps src include || echo ' (with local changes)')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

photo="$OUT/photo_640x480.jpg"
convert "$shared/data/celeb5/train/Madonna/6.jpg" -resize 640x480 -background black -gravity center -extent 640x480 "$photo"
db="$OUT/g.db"
"$bin" enroll "$shared/data/celeb5/train" --db "$db" > /dev/null 2>&1
dim=$("$bin" embed "$photo" --json | /usr/bin/python3 -c 'import json,sys; print(len(json.loads(sys.stdin.readline())["embedding"]))')
embedder=$("$bin" embed "$photo" --json | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["embedder"])')
/usr/bin/python3 - "$OUT" "$dim" <<'PY'
import json, sys, numpy as np
out, dim = sys.argv[1], int(sys.argv[2])
v = np.random.default_rng(9).standard_normal((995, dim)).astype(np.float32)
np.savetxt(f"{out}/face_embdding.txt", v, fmt="%.6f")
json.dump({str(i): f"synthetic {i:04d}" for i in range(995)}, open(f"{out}/label_map.json", "w"))
PY
"$bin" gallery import "$OUT/face_embdding.txt" "$OUT/label_map.json" --embedder "$embedder" --db "$db" > /dev/null
echo "gallery: $("$bin" gallery list --db "$db" | head -1)"

"$bin" serve --db "$db" --listen 127.0.0.1:0 > "$OUT/serve.out" 2> "$OUT/access.log" &
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
