#!/usr/bin/env bash
# Issue 13 "no wasted work": two builds side by side in one run, alternating
# (A, B, A, B, ...) so that both see the same machine load.
#   1. the default pipeline end to end (FaceAnalyzer::analyze: fr_detect +
#      fr_landmark + fr_feature) on the 640x480 one-face photo of table 6:
#      core_bench's e2e/fr_detect+fr_feature/real_time row, medians;
#   2. `facerec watch` in file mode (every frame) on a 1920x1080 clip with
#      several faces, made here with ffmpeg: the Hamilton clip (640x360)
#      scaled to 960x540 and tiled 2x2, the four tiles starting 0, 3, 6 and
#      8 s in (looped), 275 frames.
#
# Usage: bench/perf_compare.sh BEFORE_DIR AFTER_DIR
#   each DIR holds `facerec` and `core_bench` (e.g. a copy of build/ and
#   build/bench/ of the base commit, and build/ + build/bench/ of this one).
# Environment: ROUNDS=5 (alternations), WATCH=1 (0: the end-to-end rows only),
#   OUT=/tmp/facerec_perf_compare, FACEREC_SHARED (default ../shared).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
A=$1 B=$2
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-/tmp/facerec_perf_compare}
shared=$(realpath "${FACEREC_SHARED:-$root/../shared}")
video="$shared/data/video"
mkdir -p "$OUT"
clip="$OUT/hamilton_tiles_1920x1080.mp4"
if [ ! -f "$clip" ]; then
  v="$video/short_hamilton_clip.mp4"
  ffmpeg -v error -y -i "$v" -stream_loop -1 -ss 3 -i "$v" -stream_loop -1 -ss 6 -i "$v" -stream_loop -1 -ss 8 -i "$v" \
    -filter_complex "[0:v]scale=960:540[a];[1:v]scale=960:540[b];[2:v]scale=960:540[c];[3:v]scale=960:540[d];[a][b]hstack[t];[c][d]hstack[u];[t][u]vstack" \
    -frames:v 275 -an -c:v libx264 -crf 18 -preset veryfast "$clip"
fi
people="$OUT/people"
rm -rf "$people"
mkdir -p "$people/Lin-Manuel Miranda" "$people/Alex Lacamoire" "$people/Barack Obama"
cp "$video/ref_lin-manuel-miranda.png" "$people/Lin-Manuel Miranda/"
cp "$video/ref_alex-lacamoire.png" "$people/Alex Lacamoire/"
cp "$video/ref_obama.jpg" "$people/Barack Obama/"
for side in A B; do
  dir=${!side}
  rm -f "$OUT/$side.db"*
  "$dir/facerec" enroll "$people" --db "$OUT/$side.db" > /dev/null
done
rm -f "$OUT"/e2e-*.json "$OUT"/watch-*.json
# Each side's gallery (its own binary enrols it) is made once per OUT.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    dir=${!side}
    "$dir/core_bench" '--benchmark_filter=^e2e/fr_detect\+fr_feature/real_time$' --benchmark_min_time=2 \
      --benchmark_format=json 2>/dev/null > "$OUT/e2e-$side-$r.json"
    [ "${WATCH:-1}" = 1 ] || continue
    "$dir/facerec" watch --source "$clip" --db "$OUT/$side.db" --json 2>/dev/null \
      | grep '"event":"summary"' > "$OUT/watch-$side-$r.json"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys, statistics as st
out, rounds = sys.argv[1], int(sys.argv[2])
for side, name in (("A", "before"), ("B", "after")):
    e2e, cpu, fps, det, emb, faces = [], [], [], [], [], []
    for r in range(1, rounds + 1):
        b = json.load(open(f"{out}/e2e-{side}-{r}.json"))["benchmarks"][0]
        e2e.append(b["real_time"]); cpu.append(b["cpu_time"])
        try:
            w = json.loads(open(f"{out}/watch-{side}-{r}.json").read())
        except (OSError, ValueError):
            continue
        fps.append(w["fps"]); det.append(w["stages"]["detect"]["ms_per_frame"])
        emb.append(w["stages"]["embed"]["ms_per_frame"]); faces.append(w["faces_per_frame"])
    row = f"| {name} | {st.median(e2e):.1f} ({min(e2e):.1f}..{max(e2e):.1f}) | {st.median(cpu):.1f} ({min(cpu):.1f}) |"
    if fps:
        row += (f" {st.median(fps):.1f} ({min(fps):.1f}..{max(fps):.1f}) | {st.median(det):.1f} | {st.median(emb):.2f} |"
                f" {st.median(faces):.2f} |")
    print(row)
PY
