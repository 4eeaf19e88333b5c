#!/usr/bin/env bash
# Builds (via setup.sh) and runs every test: the GoogleTest suite under ctest,
# the Python training tests under pytest when there are any, the TFLite
# importer's tests (tools/tflite_import/tests), the Python module's tests
# (python/tests) and the web page's browser test (tests/web).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
build=${BUILD_DIR:-build}
if [ ! -d "${FACEREC_SHARED:-$root/../shared}/models" ]; then
  echo "!!!!! test: ../shared is ABSENT: every real-data test will be SKIPPED. Set FACEREC_SHARED. !!!!!" >&2
fi
# One real PostgreSQL (issue 10) for the GoogleTest gallery suite and the
# multi-node tests: started here (initdb in a temporary folder, as an
# unprivileged user) and stopped on exit. Without PostgreSQL those tests skip
# loudly.
. scripts/test_postgres.sh test
(cd "$build" && ctest --output-on-failure -j2 --timeout 1200)
# Packaging (issue 9): `cmake --install` into a temporary prefix, then a
# third-party program (tests/install) built with find_package(facerec).
BUILD_DIR=$build scripts/check_install.sh
# facerec serve end to end (a real server on an ephemeral loopback port).
/usr/bin/python3 -m pytest -q tests/serve
# Two serve nodes on one PostgreSQL gallery.
/usr/bin/python3 -m pytest -q tests/multinode
if ls training/tests/test_*.py >/dev/null 2>&1; then
  /usr/bin/python3 -m pytest -q training/tests
fi
BUILD_DIR=$build /usr/bin/python3 -m pytest -q tools/tflite_import/tests
# fr_detect re-targeted to 640x480 (tools/ultraface_resize): priors, refusals, fetch.
BUILD_DIR=$build /usr/bin/python3 -m pytest -q tools/ultraface_resize/tests
# `import facerec` (python/, built into $build/python) against the CLI, its
# pip install, and the web page in headless Chromium (screenshots in
# $build/web_screenshots).
BUILD_DIR=$build /usr/bin/python3 -m pytest -q python/tests
BUILD_DIR=$build /usr/bin/python3 -m pytest -q tests/web
# The int8 quantiser (issue 13) on a tiny network, through build/onnx_run.
BUILD_DIR=$build /usr/bin/python3 -m pytest -q tools/quantize/tests
# Fuzzing (issue 11): each of the 6 libFuzzer harnesses for FACEREC_FUZZ_SECONDS (25 s
# default, about 2 min plus the clang build). FACEREC_SKIP_FUZZ=1 skips it.
if [ "${FACEREC_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh "${FACEREC_FUZZ_SECONDS:-25}"
else
  echo "!!!!! test: FACEREC_SKIP_FUZZ=1: fuzzing NOT run !!!!!" >&2
fi
