#!/usr/bin/env bash
# Builds the library, the CLI and the GoogleTest suite with AddressSanitizer +
# UndefinedBehaviorSanitizer (FACEREC_SANITIZE=ON) in build-asan/, then runs
#   - every ctest test of facerec_tests (the CLI tests run build-asan/facerec,
#     so the CLI is checked too), with a throwaway PostgreSQL as in
#     scripts/test.sh, and
#   - the pytest suites that drive the CLI binary: tests/serve and
#     tests/multinode, against build-asan/facerec (FACEREC_BIN).
# Leak checking is on. fuzz/lsan.supp suppresses leaks in third-party
# libraries only, each with the library named and why; never a facerec leak.
# Every sanitizer report (ASan, LSan, UBSan) of every process, the test
# binary or a CLI it starts, goes to build-asan/sanitizer-reports/ (log_path),
# and any report, or any failed test, fails the run. Prints a summary and
# writes it to build-asan/sanitize-summary.txt. Too slow for every CI run on 2
# cores (README, "Bad input"); run it before a release:
#   scripts/sanitize.sh                 # everything (the default)
#   scripts/sanitize.sh 'ImageFaults.*' # facerec_tests with a gtest filter only
#   scripts/sanitize.sh --cli           # quicker: only the CLI is instrumented;
#     the ordinary build/facerec_tests ($BUILD_DIR) runs its CLI suites against
#     build-asan/facerec, then the pytest suites (BENCHMARKS.md, "Sanitizers")
# Environment: ASAN_BUILD_DIR (build-asan), JOBS (2), FACEREC_ORT_ROOT,
# FACEREC_SANITIZE_PYTEST=0 skips the pytest suites, CTEST_J (2) ctest jobs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${ASAN_BUILD_DIR:-build-asan}
case $build in /*) ;; *) build=$root/$build ;; esac
filter=${1:-}
cli_only=0
if [ "$filter" = --cli ]; then
  cli_only=1
  # The suites whose tests run the CLI; the two under ulimit -v / prlimit cannot
  # run an ASan binary (terabytes of reserved address space).
  filter='AnnCli.*:OpenSetLfw.*:FaultsInput.*:EvalCli.*:Watch.*:BadInput.*:Cli.*:DuplicatesCli.*:EvalErc.*:LowQuality.*:Faults.*:Demo.*:-Faults.IdentifyUnderAnAddressSpaceLimitEndsWithinTenSeconds:Faults.ThreadsTheSystemRefusesAreAClearErrorNotAnAbort'
  plain=${BUILD_DIR:-build}
  case $plain in /*) ;; *) plain=$root/$plain ;; esac
fi
ort_args=()
[ -n "${FACEREC_ORT_ROOT:-}" ] && ort_args=(-DFACEREC_ORT_ROOT="$FACEREC_ORT_ROOT")
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
# -O1 -g1: what the ASan documentation recommends (usable stack traces, line
# numbers), and about twice as fast to compile as -O2 -g on 2 cores.
build_start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFACEREC_SANITIZE=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DFACEREC_BUILD_BENCH=OFF -DFACEREC_PYTHON=OFF \
  "${ort_args[@]}" "${launcher[@]}" >/dev/null
if [ "$cli_only" = 1 ]; then
  cmake --build "$build" -j"${JOBS:-2}" --target facerec
  cmake --build "$plain" -j"${JOBS:-2}" --target facerec_tests
  test_bin=$plain/facerec_tests
else
  cmake --build "$build" -j"${JOBS:-2}" --target facerec facerec_tests
  test_bin=$build/facerec_tests
fi
build_s=$(( $(date +%s) - build_start ))

reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# abort_on_error: a report ends the process (the test fails). log_path: each
# process writes its reports to $reports/san.PID, whoever started it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1:log_path=$reports/san}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$reports/san}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
export FACEREC_BIN=$build/facerec

if [ -z "$filter" ] || [ "$cli_only" = 1 ]; then
  . scripts/test_postgres.sh sanitize
fi

start=$(date +%s)
status=0
log="$build/sanitize.log"
set +e
if [ -n "$filter" ]; then
  "$test_bin" --gtest_filter="$filter" >"$log" 2>&1
  rc=$?
  passed=$(grep -cE '^\[       OK \]' "$log")
  failed=$(grep -cE '^\[  FAILED  \] .*\(' "$log")
  skipped=$(grep -cE '^\[  SKIPPED \] .*\(' "$log")
  total=$((passed + failed + skipped))
  tests_line="$(basename "$(dirname "$test_bin")")/facerec_tests --gtest_filter='$filter': $total tests, $passed passed, $failed failed, $skipped skipped"
else
  (cd "$build" && ctest --output-on-failure -j"${CTEST_J:-2}" --timeout 1800) >"$log" 2>&1
  rc=$?
  total=$(grep -oE 'tests failed out of [0-9]+' "$log" | awk '{print $5}')
  failed=$(grep -oE '[0-9]+ tests failed out of' "$log" | awk '{print $1}')
  skipped=$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$log")
  passed=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log")
  tests_line="ctest (facerec_tests): ${total:-?} tests, $passed passed, ${failed:-?} failed, $skipped skipped"
fi
set -e
[ "$rc" -eq 0 ] || status=1
grep -E '^[[:space:]]*[0-9]+ - .*\((Failed|Timeout|Subprocess aborted|SEGFAULT|Exception|Child aborted)\)|^\[  FAILED  \] .*\(' "$log" >&2 || true
test_s=$(( $(date +%s) - start ))

py_line="pytest: not run"
if { [ -z "$filter" ] || [ "$cli_only" = 1 ]; } && [ "${FACEREC_SANITIZE_PYTEST:-1}" != 0 ]; then
  py_start=$(date +%s)
  set +e
  /usr/bin/python3 -m pytest -q tests/serve tests/multinode >"$build/sanitize_pytest.log" 2>&1
  py_rc=$?
  set -e
  [ "$py_rc" -eq 0 ] || status=1
  py_line="pytest tests/serve tests/multinode: $(tail -n 1 "$build/sanitize_pytest.log" | tr -d '=' | sed 's/^ *//;s/ *$//') ($(( $(date +%s) - py_start )) s)"
  [ "$py_rc" -eq 0 ] || tail -n 40 "$build/sanitize_pytest.log" >&2
fi

# Reports: one per "ERROR: AddressSanitizer/LeakSanitizer" or "runtime error:".
nreports=0
if compgen -G "$reports/san.*" >/dev/null; then
  nreports=$(cat "$reports"/san.* | grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' || true)
  echo "!!!!! sanitize: sanitizer reports in $reports: !!!!!" >&2
  grep -hE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|^SUMMARY:' "$reports"/san.* | sort | uniq -c >&2
  status=1
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)' || true)
summary="$build/sanitize-summary.txt"
{
  echo "sanitize: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit$dirty, ASan + UBSan, leak checking on"
  echo "  $tests_line ($test_s s wall)"
  echo "  $py_line"
  echo "  sanitizer reports: $nreports"
  echo "  build: $build_s s; logs: $log, $reports"
  [ "$status" -eq 0 ] && echo "  result: CLEAN" || echo "  result: NOT CLEAN"
} | tee "$summary"
exit $status
