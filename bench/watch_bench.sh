#!/usr/bin/env bash
# End-to-end `facerec watch` throughput on the Hamilton clip at 640x360 and
# upscaled to 1280x720 (made here with ffmpeg), with per-stage times and
# embeddings per frame. Prints the BENCHMARKS.md table of medians.
#
# Usage: bench/watch_bench.sh          (from anywhere; about 2 minutes)
# Environment:
#   BUILD=build        build folder holding facerec
#   RUNS=5             runs per row; the table shows medians (min..max FPS)
#   OUT=/tmp/facerec_watch_bench   galleries, the 720p clip, raw JSON
#   PIPELINES="yunet:mobilefacenet_128 fr_detect:fr_feature"
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
RUNS=${RUNS:-5}
OUT=${OUT:-/tmp/facerec_watch_bench}
PIPELINES=${PIPELINES:-"yunet:mobilefacenet_128 fr_detect:fr_feature"}
shared=$(realpath "${FACEREC_SHARED:-$root/../shared}")
video="$shared/data/video"
bin="$root/$BUILD/facerec"
mkdir -p "$OUT"
rm -f "$OUT"/*.json

echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- apps src include || echo ' (with local changes)')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
clip360="$video/short_hamilton_clip.mp4"
clip720="$OUT/hamilton_1280x720.mp4"
[ -f "$clip720" ] || ffmpeg -v error -y -i "$clip360" -vf scale=1280:720 -an -c:v libx264 -crf 18 -preset fast "$clip720"

people="$OUT/people"
rm -rf "$people"
mkdir -p "$people/Lin-Manuel Miranda" "$people/Alex Lacamoire" "$people/Barack Obama"
cp "$video/ref_lin-manuel-miranda.png" "$people/Lin-Manuel Miranda/"
cp "$video/ref_alex-lacamoire.png" "$people/Alex Lacamoire/"
cp "$video/ref_obama.jpg" "$people/Barack Obama/"

for p in $PIPELINES; do
  det=${p%%:*}; emb=${p##*:}
  db="$OUT/$det-$emb.db"
  rm -f "$db"*
  "$bin" enroll "$people" --db "$db" --detector "$det" --embedder "$emb" > /dev/null
  for res in 640x360 1280x720; do
    clip=$clip360; [ "$res" = 1280x720 ] && clip=$clip720
    for i in $(seq "$RUNS"); do
      "$bin" watch --source "$clip" --db "$db" --detector "$det" --embedder "$emb" --json 2>/dev/null \
        | grep '"event":"summary"' > "$OUT/$det-$emb-$res-$i.json"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT" "$PIPELINES" <<'PY'
import json, sys, glob, statistics as st
out, pipes = sys.argv[1], sys.argv[2].split()
print("| pipeline | frames | end-to-end FPS, median (min..max) | decode | detect | track | embed+search | ms/embedding | embeddings/frame | faces/frame |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in pipes:
    det, emb = p.split(":")
    for res in ("640x360", "1280x720"):
        runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{det}-{emb}-{res}-*.json"))]
        if not runs: continue
        fps = [r["fps"] for r in runs]
        med = lambda k: st.median(r["stages"][k]["ms_per_frame"] for r in runs)
        print(f"| {det}+{emb} | {res} | {st.median(fps):.1f} ({min(fps):.1f}..{max(fps):.1f}) | "
              f"{med('decode'):.2f} ms | {med('detect'):.2f} ms | {med('track'):.3f} ms | {med('embed'):.2f} ms | "
              f"{st.median(r['stages']['embed']['ms_per_embedding'] for r in runs):.2f} | "
              f"{st.median(r['embeddings_per_frame'] for r in runs):.3f} | {st.median(r['faces_per_frame'] for r in runs):.2f} |")
PY
