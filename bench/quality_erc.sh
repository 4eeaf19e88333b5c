#!/usr/bin/env bash
# Face quality measurements behind the low-quality floor (BENCHMARKS.md,
# "Face quality: ERC and the low-quality floor"):
#  1. ERC of every candidate quality score on LFW pairs.txt (6000 pairs), with
#     faceplugin's fr_pose.onnx and fr_eye.onnx taken from the cached npm tarball;
#  2. FNMR and FMR at the FAR = 1e-3 threshold when one image of each pair is
#     downscaled to a given inter-ocular distance (LFW fold 1: the first 600 pairs).
# Usage: bench/quality_erc.sh [out_dir]   (default bench/results/quality)
# Slow on a busy machine; every image's measurements are cached in
# $FACEREC_CACHE/erc (tens of MB, outside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/quality}
SHARED=${FACEREC_SHARED:-../shared}
LFW=$SHARED/data/lfw
BIN=${FACEREC_BIN:-build/facerec}
CACHE=${FACEREC_CACHE:-$HOME/.cache/facerec}
TGZ=$CACHE/npm/faceplugin-face-recognition-js-0.0.1.tgz
WORK=$CACHE/erc
mkdir -p "$OUT" "$WORK/models"
[ -f "$TGZ" ] || { echo "no $TGZ: run build/facerec models fetch first" >&2; exit 1; }
echo "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba  $TGZ" | sha256sum -c --quiet
tar -xzf "$TGZ" -C "$WORK/models" --strip-components=2 package/model/fr_pose.onnx package/model/fr_eye.onnx
( cd "$WORK/models" && sha256sum -c --quiet <<'SUMS'
72d032ec941b7153bf8d3f2c03a4c165453cc7e63d479041ec7c6ef087e5839d  fr_pose.onnx
1afcea006abc1ccac3c517022abde0aa092bed74ff3c9fe6878483ef9e6e38de  fr_eye.onnx
SUMS
)
"$BIN" eval erc --root "$LFW/images" --pairs "$LFW/pairs.txt" --pose-model "$WORK/models/fr_pose.onnx" \
  --eye-model "$WORK/models/fr_eye.onnx" --cache "$WORK/erc_cache.tsv" --plot "$OUT/erc.png" --json > "$OUT/erc.json"
# Fold 1 of pairs.txt (the first 600 pairs), the second image of each pair downscaled.
{ printf '1\t300\n'; sed -n 2,601p "$LFW/pairs.txt"; } > "$WORK/pairs_fold1.txt"
for iod in ${IODS:-12 16 8 24 41.5 10}; do
  "$BIN" eval erc --root "$LFW/images" --pairs "$WORK/pairs_fold1.txt" --probe-iod "$iod" \
    --cache "$WORK/erc_cache_fold1_iod$iod.tsv" --json > "$OUT/erc_fold1_iod$iod.json"
done
echo "results in $OUT"
