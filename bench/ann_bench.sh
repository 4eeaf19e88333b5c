#!/bin/sh
# The approximate-index benchmark (BENCHMARKS.md, "Approximate index (issue 10,
# part 3)"). Not part of the test suite: it embeds LFW once (minutes), then
# builds a 1M-template gallery (about 4 GB of RAM, tens of minutes on one core).
#
#   bench/ann_bench.sh [templates]      (default 1000000; run from the repository root)
#
# Single-threaded on purpose (OpenBLAS and OpenMP pinned to one thread): the
# numbers are per core, and a shared machine stays usable.
set -eu
TEMPLATES=${1:-1000000}
CACHE=${FACEREC_LFW_CACHE:-build/lfwcache_ann_af4.bin}
LFW=${FACEREC_SHARED:-../shared}/data/lfw
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ ! -s "$CACHE" ]; then
  # The real bases: LFW people whose names start with A-F, at most 4 photos
  # each (2414 photos of 1518 people; the cap keeps George W Bush's 530 from
  # dominating), embedded once with the default models and kept in $CACHE.
  SUB=$(mktemp -d)
  for d in "$LFW"/images/[A-F]*/; do
    p=$(basename "$d")
    mkdir -p "$SUB/$p"
    ls "$d" | sort | head -4 | while read -r f; do ln -s "$(realpath "$d$f")" "$SUB/$p/$f"; done
  done
  build/facerec eval identify --lfw-open-set --gallery "$SUB" --cache "$CACHE" --sizes 10 --rules mean --threads 1
  rm -rf "$SUB"
fi
echo "== auto threshold sweep"
build/bench/ann_index --cache "$CACHE" --sweep 10000,25000,50000,100000,200000 --threshold-only
echo "== 200000 templates, with FAISS on the same points"
build/bench/ann_index --cache "$CACHE" --templates 200000 --queries 500 --exact-queries 50 --faiss
echo "== $TEMPLATES templates, with FAISS on the same points"
build/bench/ann_index --cache "$CACHE" --templates "$TEMPLATES" --queries 1000 --exact-queries 100 --faiss
