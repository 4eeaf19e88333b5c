#!/usr/bin/env bash
# Two `facerec serve` nodes on one PostgreSQL gallery (issue 10, part 2):
# - identify requests/s with 1 node, then with 2 nodes (each loaded by its
#   own wrk at the same time), over loopback; the gallery is 1,000 people
#   (celeb5/train enrolled for real + 995 synthetic templates imported through
#   the legacy format, as bench/serve_bench.sh);
# - enrol-to-visible latency between nodes: N enrolments through node A; for
#   each, the time from A's 201 answer until node B's /v1/health says its
#   index includes that change (applied_seq), polled every 2 ms. p50/p99.
# PostgreSQL is a throwaway server from scripts/pg_test_server.sh (fsync off).
#
# Usage: bench/multinode_bench.sh   (about 2 minutes; numbers go to BENCHMARKS.md "Several nodes (issue 10)")
# Environment: BUILD=build DURATION=15s CONC=4 N=100 OUT=/tmp/facerec_multinode_bench
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
DURATION=${DURATION:-15s}
CONC=${CONC:-4}
N=${N:-100}
OUT=${OUT:-/tmp/facerec_multinode_bench}
shared=$(realpath "${FACEREC_SHARED:-$root/../shared}")
bin="$root/$BUILD/facerec"
. bench/serve_gallery.sh
bench_begin

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/pg_test_server.sh stop "$OUT/pg" || true
}
trap cleanup EXIT
server=$(scripts/pg_test_server.sh start "$OUT/pg")
psql "$server" -q -c 'CREATE DATABASE bench'
db=${server%/postgres}/bench
echo "PostgreSQL: $db"

bench_photo_and_gallery "$db"

start_node() {  # $1: tag; prints the base URL
  "$bin" serve --db "$db" --listen 127.0.0.1:0 --workers 2 --threads 1 > "$OUT/$1.out" 2> "$OUT/$1.log" &
  pids+=($!)
  for _ in $(seq 300); do grep -q "listening on" "$OUT/$1.out" && break; sleep 0.1; done
  sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$OUT/$1.out"
}
rps() {  # $1: base URL -> requests/s from wrk
  PHOTO="$photo" wrk -t 2 -c "$CONC" -d "$DURATION" --timeout 30s -s bench/serve_post.lua "$1/v1/identify" |
    sed -n 's/^Requests\/sec: *//p'
}
a=$(start_node a)
echo "node A: $(head -1 "$OUT/a.out")"
echo "1 node, concurrency $CONC: $(rps "$a") identify/s"
b=$(start_node b)
echo "node B: $(head -1 "$OUT/b.out")"
rps "$a" > "$OUT/rps_a" &
w1=$!
rps "$b" > "$OUT/rps_b" &
w2=$!
wait $w1 $w2
echo "2 nodes, concurrency $CONC each: A $(cat "$OUT/rps_a") + B $(cat "$OUT/rps_b") identify/s" \
     "= $(echo "$(cat "$OUT/rps_a") + $(cat "$OUT/rps_b")" | bc -l) total"

/usr/bin/python3 - "$a" "$b" "$photo" "$N" <<'PY'
import statistics, sys, time, requests
a, b, photo, n = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read(), int(sys.argv[4])
sa, sb = requests.Session(), requests.Session()
lat = []
for i in range(n):
    r = sa.post(f"{a}/v1/people/visible {i:04d}/faces", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=60)
    t0 = time.monotonic()
    assert r.status_code == 201, r.text
    seq = sa.get(f"{a}/v1/health", timeout=30).json()["gallery"]["applied_seq"]
    while sb.get(f"{b}/v1/health", timeout=30).json()["gallery"]["applied_seq"] < seq:
        time.sleep(0.002)
    lat.append((time.monotonic() - t0) * 1e3)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"enrol-to-visible A->B over {n} enrolments: p50 {statistics.median(lat):.1f} ms, p99 {p(0.99):.1f} ms, "
      f"max {lat[-1]:.1f} ms (includes one GET /v1/health on A)")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
