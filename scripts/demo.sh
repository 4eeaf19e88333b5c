#!/usr/bin/env bash
# The main job, end to end: set up, enrol a folder of people, then identify the
# faces in photos, printing the results and drawing them into demo_out/.
#   scripts/demo.sh [people_dir] [photo_or_dir ...]
# Defaults: ../shared/data/celeb5/train as the people, celeb5/val and two crowd
# photos as the photos to identify.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
shared=${FACEREC_SHARED:-$root/../shared}
people=${1:-$shared/data/celeb5/train}
shift || true
photos=("$@")
[ ${#photos[@]} -eq 0 ] && photos=("$shared/data/celeb5/val" "$shared/data/crowd/obama_and_biden.jpg")
out=demo_out
rm -rf "$out"; mkdir -p "$out"
build/facerec enroll "$people" --db "$out/gallery.db"
build/facerec gallery list --db "$out/gallery.db"
build/facerec identify "${photos[@]}" --db "$out/gallery.db" --annotate "$out/annotated"
echo "demo: annotated images are in $out/annotated/" >&2
