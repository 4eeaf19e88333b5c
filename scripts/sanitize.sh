#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer
# (FACEREC_SANITIZE=ON) in build-asan/ and runs the GoogleTest suite there
# (the tests run build-asan/facerec, so the CLI is checked too). Any ASan or
# UBSan report fails the run. Too slow for every CI run (see README, "Bad
# input"); run it before a release:
#   scripts/sanitize.sh                 # the whole suite
#   scripts/sanitize.sh 'ImageFaults.*' # a gtest filter
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${ASAN_BUILD_DIR:-build-asan}
ort_args=()
[ -n "${FACEREC_ORT_ROOT:-}" ] && ort_args=(-DFACEREC_ORT_ROOT="$FACEREC_ORT_ROOT")
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFACEREC_SANITIZE=ON -DFACEREC_BUILD_BENCH=OFF -DFACEREC_PYTHON=OFF \
  "${ort_args[@]}" >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target facerec facerec_tests
# Leaks: ONNX Runtime and OpenCV keep process-lifetime caches that LeakSanitizer
# reports at exit; they are not ours, so leak checking is off. Everything else
# (overflows, use-after-free, UB) aborts the test that triggers it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log="$build/sanitize.log"
start=$(date +%s)
set +e
"$build/facerec_tests" --gtest_filter="${1:-*}" 2>&1 | tee "$log" | grep -E '^\[  (PASSED|FAILED|SKIPPED) |ERROR: AddressSanitizer|runtime error:|^\[  FAILED'
rc=${PIPESTATUS[0]}
set -e
reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$log" || true)
echo "sanitize: rc $rc, $reports sanitizer reports, $(( $(date +%s) - start )) s; log in $log"
[ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]
