# Sourced by bench/serve_bench.sh and bench/multinode_bench.sh, run from the
# repository root with $bin (build/facerec), $shared (../shared) and $OUT set.

# Empties $OUT; prints the commit and the load.
bench_begin() {
  rm -rf "$OUT" && mkdir -p "$OUT"
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- apps src include || echo ' (with local changes)')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
}

# Sets $photo (a 640x480 one-face JPEG in $OUT) and fills the gallery $1 (a
# file or a postgresql:// URI) with 1,000 people: celeb5/train enrolled for
# real + 995 synthetic random templates imported through the legacy format.
bench_photo_and_gallery() {
  local db=$1 dim embedder
  photo="$OUT/photo_640x480.jpg"
  convert "$shared/data/celeb5/train/Madonna/6.jpg" -resize 640x480 -background black -gravity center -extent 640x480 "$photo"
  "$bin" enroll "$shared/data/celeb5/train" --db "$db" > /dev/null 2>&1
  read -r dim embedder < <("$bin" embed "$photo" --json |
    /usr/bin/python3 -c 'import json,sys; j = json.loads(sys.stdin.readline()); print(len(j["embedding"]), j["embedder"])')
  /usr/bin/python3 - "$OUT" "$dim" <<'PY'
import json, sys, numpy as np
out, dim = sys.argv[1], int(sys.argv[2])
v = np.random.default_rng(9).standard_normal((995, dim)).astype(np.float32)
np.savetxt(f"{out}/face_embdding.txt", v, fmt="%.6f")
json.dump({str(i): f"synthetic {i:04d}" for i in range(995)}, open(f"{out}/label_map.json", "w"))
PY
  "$bin" gallery import "$OUT/face_embdding.txt" "$OUT/label_map.json" --embedder "$embedder" --db "$db" > /dev/null
  echo "gallery: $("$bin" gallery list --db "$db" | head -1)"
}
