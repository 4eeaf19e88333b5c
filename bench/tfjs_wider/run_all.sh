#!/bin/sh
# Every configuration of the BENCHMARKS.md table, one after another (each single-threaded):
#   sh bench/tfjs_wider/run_all.sh OUTDIR [CONFIG...]   (default: the eight measured ones)
# CONFIG names: ssd ssd_tiles512 tiny416 tiny832 faceboxes faceboxes2048 bfback bffront bfback_mp bffront_mp
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
W=${WIDER:-$HERE/../../../shared/data/wider_val_subset}
OUT=$1; shift
mkdir -p "$OUT"
[ $# -gt 0 ] || set -- ssd tiny416 faceboxes faceboxes2048 bfback bffront bfback_mp bffront_mp
for c in "$@"; do
  case $c in
    ssd) a="--model ssd" ;;
    ssd_tiles512) a="--model ssd --tiles 512" ;;
    tiny416) a="--model tiny --size 416" ;;
    tiny832) a="--model tiny --size 832" ;;
    faceboxes) a="--model faceboxes" ;;
    faceboxes2048) a="--model faceboxes --size 2048" ;;
    bfback) a="--model blazeface-back" ;;
    bffront) a="--model blazeface-front" ;;
    bfback_mp) a="--model blazeface-back --norm mediapipe" ;;
    bffront_mp) a="--model blazeface-front --norm mediapipe" ;;
    *) echo "unknown config $c" >&2; exit 2 ;;
  esac
  echo "== $c ($a) start $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086
  nice -n 10 node "$HERE/run.js" $a --score 0.05 --images "$W/images" --gt "$W/wider_face_val_bbx_gt.txt" --out "$OUT/$c.jsonl"
  /usr/bin/python3 "$HERE/score.py" "$OUT/$c.jsonl" --wider "$W" | tee "$OUT/$c.ap.json"
  echo "== $c end $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
