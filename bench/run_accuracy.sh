#!/bin/sh
# Accuracy runs for BENCHMARKS.md "Accuracy": one facerec eval per pipeline,
# each writing its --json output to $OUT/<task>__<detector>__<embedder>.json
# (a run whose JSON already exists is skipped, so the script can be resumed).
# Then: /usr/bin/python3 bench/accuracy_report.py $OUT
#
#   bench/run_accuracy.sh [wider|identify|lfw|all]   (default all; OUT=/tmp/eb_acc)
#
# celeb5: gallery = celeb5/train (all photos), probes = celeb5/val. The two trees
# spell the people differently ("Ben Afflek" vs ben_afflek, "Jerry Seinfield" vs
# jerry_seinfeld), and eval identify requires identical folder names, so the
# probes are read through a symlink tree in $OUT/celeb5_val whose folders carry
# the train names (no image is copied).
# att: --split-seed 1 --gallery-per-person 5 (5 gallery + 5 probe photos of each of 40 people).
set -eu
cd "$(dirname "$0")/.."
FR=${FR:-build/facerec}
DATA=${DATA:-../shared/data}
OUT=${OUT:-/tmp/eb_acc}
WHAT=${1:-all}
mkdir -p "$OUT"
DETECTORS="fr_detect yunet scrfd_500m retinaface_mnet025 yolov5n-0.5-face scrfd_2.5g"
EMBEDDERS="fr_feature mobilefacenet_128 mobilefacenet_192"

run() {  # name, then the eval arguments
  name=$1; shift
  if [ -s "$OUT/$name.json" ]; then echo "have $name"; return 0; fi
  echo "$(date +%T) $name: $FR eval $*" | tee -a "$OUT/commands.txt"
  start=$(date +%s)
  if "$FR" eval "$@" --json > "$OUT/$name.json.tmp" 2> "$OUT/$name.log"; then
    mv "$OUT/$name.json.tmp" "$OUT/$name.json"
    echo "$name $(( $(date +%s) - start )) s $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/times.txt"
  else
    echo "FAILED $name (see $OUT/$name.log)"; rm -f "$OUT/$name.json.tmp"
  fi
}

mkdir -p "$OUT/celeb5_val"
ln -sfn "$(realpath "$DATA/celeb5/val/ben_afflek")" "$OUT/celeb5_val/Ben Afflek"
ln -sfn "$(realpath "$DATA/celeb5/val/elton_john")" "$OUT/celeb5_val/Elton John"
ln -sfn "$(realpath "$DATA/celeb5/val/jerry_seinfeld")" "$OUT/celeb5_val/Jerry Seinfield"
ln -sfn "$(realpath "$DATA/celeb5/val/madonna")" "$OUT/celeb5_val/Madonna"
ln -sfn "$(realpath "$DATA/celeb5/val/mindy_kaling")" "$OUT/celeb5_val/Mindy Kaling"

identify() {  # detector embedder
  run "celeb5__$1__$2" identify --gallery "$DATA/celeb5/train" --probes "$OUT/celeb5_val" --detector "$1" --embedder "$2"
  run "att__$1__$2" identify --gallery "$DATA/att" --split-seed 1 --gallery-per-person 5 --detector "$1" --embedder "$2"
}

if [ "$WHAT" = wider ] || [ "$WHAT" = all ]; then
  W=$DATA/wider_val_subset
  for d in $DETECTORS; do
    run "wider__${d}__-" detect --images "$W/images" --gt "$W/wider_face_val_bbx_gt.txt" --mat-dir "$W" --detector "$d"
  done
fi
if [ "$WHAT" = identify ] || [ "$WHAT" = all ]; then
  # every detector with the default embedder first, then the rest of the cross product
  for d in $DETECTORS; do identify "$d" fr_feature; done
  for e in mobilefacenet_128 mobilefacenet_192; do for d in $DETECTORS; do identify "$d" "$e"; done; done
fi
if [ "$WHAT" = lfw ] || [ "$WHAT" = all ]; then
  # priority order (the default pipeline, fr_detect+fr_feature, was measured before: see BENCHMARKS.md),
  # then the rest of the cross product, the slow scrfd_2.5g last
  for p in fr_detect:mobilefacenet_128 yunet:fr_feature fr_detect:mobilefacenet_192 scrfd_500m:mobilefacenet_128 \
           yunet:mobilefacenet_128 scrfd_2.5g:fr_feature fr_detect:fr_feature \
           yunet:mobilefacenet_192 scrfd_500m:fr_feature scrfd_500m:mobilefacenet_192 \
           retinaface_mnet025:fr_feature retinaface_mnet025:mobilefacenet_128 retinaface_mnet025:mobilefacenet_192 \
           yolov5n-0.5-face:fr_feature yolov5n-0.5-face:mobilefacenet_128 yolov5n-0.5-face:mobilefacenet_192 \
           scrfd_2.5g:mobilefacenet_128 scrfd_2.5g:mobilefacenet_192; do
    d=${p%%:*}; e=${p#*:}
    run "lfw__${d}__${e}" lfw --root "$DATA/lfw" --pairs "$DATA/lfw/pairs.txt" --detector "$d" --embedder "$e"
  done
fi
