#!/usr/bin/env bash
# The hostile-image corpus (tools/hostile_images.py: >= 10,000 byte flips,
# truncations, absurd headers, in every format) run through
# `facerec identify --json` in batches. Reports crashes (a signal or an exit
# code other than 0/1), hangs (a file over 30 s), invalid JSON lines, files
# without a line (silently dropped), and the peak memory of a batch.
#   scripts/hostile_images.sh [count] [batch]     # defaults 10000, 500
# HOSTILE_ARGS adds identify flags (e.g. lighter models); HOSTILE_REUSE=1
# keeps an existing corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
count=${1:-10000}
batch=${2:-500}
shared=${FACEREC_SHARED:-$root/../shared}
work=${HOSTILE_DIR:-build/hostile}
bin=${FACEREC_BIN:-build/facerec}
read -r -a extra <<< "${HOSTILE_ARGS:-}"
if [ "${HOSTILE_REUSE:-0}" = 1 ] && [ -d "$work/corpus" ]; then
  rm -rf "$work/out" "$work/people" "$work"/batch_* "$work/g.db" "$work/problems.txt"
  mkdir -p "$work/people/Madonna" "$work/out"
else
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/people/Madonna" "$work/out"
  /usr/bin/python3 tools/hostile_images.py "$work/corpus" --count "$count" --shared "$shared"
fi
cp "$(ls -d "$shared"/data/celeb5/train/Madonna/* | head -1)" "$work/people/Madonna/"
"$bin" enroll "$work/people" --db "$work/g.db" "${extra[@]}" >/dev/null
# Batches of symlinks, so each batch is one folder for identify.
ls "$work/corpus" | split -l "$batch" - "$work/batch_"
crashes=0; hangs=0; invalid=0; missing=0; peak=0; files=0; start=$(date +%s)
for list in "$work"/batch_*; do
  b=$(basename "$list")
  mkdir -p "$work/$b.d"
  while read -r f; do ln -s "$root/$work/corpus/$f" "$work/$b.d/$f"; done < "$list"
  n=$(wc -l < "$list"); files=$((files + n))
  set +e
  /usr/bin/time -f '%M' -o "$work/out/$b.mem" timeout -s KILL $((30 * n)) \
    "$bin" identify "$work/$b.d" --db "$work/g.db" --json "${extra[@]}" >"$work/out/$b.json" 2>"$work/out/$b.err"
  rc=$?
  set -e
  mem=$(tail -1 "$work/out/$b.mem" 2>/dev/null | tr -dc 0-9); mem=${mem:-0}
  [ "$mem" -gt "$peak" ] && peak=$mem
  read -r bad lines < <(/usr/bin/python3 - "$work/out/$b.json" <<'PY'
import json, sys
bad = lines = 0
for line in open(sys.argv[1], errors="replace"):
    lines += 1
    try:
        j = json.loads(line)
        assert "image" in j and ("faces" in j or "error" in j)
    except Exception:
        bad += 1
print(bad, lines)
PY
)
  invalid=$((invalid + bad))
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    # A crash or a hang in this batch: find the file, one at a time.
    echo "hostile: batch $b rc $rc; isolating" >&2
    while read -r f; do
      set +e
      timeout -s KILL 30 "$bin" identify "$work/corpus/$f" --db "$work/g.db" --json "${extra[@]}" >/dev/null 2>&1
      r=$?
      set -e
      if [ "$r" -eq 137 ]; then hangs=$((hangs + 1)); echo "HANG  $f" | tee -a "$work/problems.txt" >&2
      elif [ "$r" -ne 0 ] && [ "$r" -ne 1 ]; then crashes=$((crashes + 1)); echo "CRASH $f rc $r" | tee -a "$work/problems.txt" >&2; fi
    done < "$list"
  elif [ "$lines" -ne "$n" ]; then
    missing=$((missing + n - lines))
  fi
  rm -rf "$work/$b.d"
done
elapsed=$(( $(date +%s) - start ))
summary="files $files, batches of $batch: crashes $crashes, hangs(>30s) $hangs, invalid JSON lines $invalid, files without a line $missing, peak RSS $((peak / 1024)) MiB, $elapsed s"
echo "hostile: $summary" | tee "$work/summary.txt"
/usr/bin/python3 - "$work" <<'PY'
import collections, glob, json, os, sys
ok = collections.Counter(); err = collections.Counter()
for f in glob.glob(os.path.join(sys.argv[1], "out", "*.json")):
    for line in open(f, errors="replace"):
        try:
            j = json.loads(line)
        except Exception:
            continue
        kind = os.path.basename(j["image"]).split("_", 1)[1].split(".")[0]
        (ok if "faces" in j else err)[kind] += 1
print("read/refused by mutation:", {k: (ok[k], err[k]) for k in sorted(set(ok) | set(err))})
PY
[ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ] && [ "$invalid" -eq 0 ] && [ "$missing" -eq 0 ]
