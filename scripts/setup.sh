#!/usr/bin/env bash
# One idempotent setup: Debian packages, the pinned ONNX Runtime, the default
# models (npm), and the build. Safe to run again; a second run only rebuilds
# what changed. Env: FACEREC_CACHE (download cache, default ~/.cache/facerec),
# FACEREC_ORT_ROOT (use a system ONNX Runtime instead of the npm one),
# FACEREC_SKIP_APT=1 (packages are already there), BUILD_DIR (default build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}

# Build + runtime: OpenCV, SQLite, JSON, CLI, BLAS, MAT files (WIDER FACE), tests, benchmarks.
# Training/export and test fixtures: Debian's python3 torch/onnx/numpy/pytest.
# Video tools: ffmpeg.
# Python module (python/): pybind11, pip/venv (its install test), OpenCV's
# Python module (the webcam example). The web page's browser test: Chromium,
# its WebDriver and selenium.
# The approximate index (hnswlib; FAISS for its benchmark comparison).
# The PostgreSQL gallery store (libpq) and its tests' server (postgresql).
# `facerec models fetch` (in process): libcurl (HTTPS) and libarchive (.tgz).
PKGS=(build-essential cmake ninja-build pkg-config git ca-certificates
      libopencv-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libcli11-dev libspdlog-dev
      libopenblas-dev libmatio-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
      python3-numpy python3-onnx python3-pytest python3-torch ffmpeg
      python3-flatbuffers python3-scipy python3-jsonschema python3-yaml python3-requests imagemagick wrk
      libcpp-httplib-dev libheif-dev libgif-dev libjpeg-dev zlib1g-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libutf8proc-dev
      clang libfuzzer-14-dev libclang-rt-14-dev
      pybind11-dev python3-dev python3-pip python3-venv python3-opencv
      chromium chromium-driver python3-selenium
      libhnswlib-dev libfaiss-dev
      libpq-dev postgresql
      libcurl4-openssl-dev libarchive-dev)
if [ "${FACEREC_SKIP_APT:-0}" != 1 ]; then
  missing=()
  # npm fetches ONNX Runtime (scripts/fetch_onnxruntime.sh; the models come
  # through the library's own libcurl client). Many machines have Node.js from
  # elsewhere (whose npm conflicts with Debian's), so only install it if absent.
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_=sudo
    $sudo_ apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

cmake_args=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release)
# ccache, where installed, makes a rebuild of an unchanged file free (optional).
if command -v ccache >/dev/null 2>&1; then
  cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
if [ -n "${FACEREC_ORT_ROOT:-}" ]; then
  cmake_args+=(-DFACEREC_ORT_ROOT="$FACEREC_ORT_ROOT")
else
  ort=$(scripts/fetch_onnxruntime.sh)
  cmake_args+=(-DFACEREC_ORT_ROOT="$ort")
fi
cmake "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"

# The default (npm, permissively licensed) models, hash-checked.
"$build/facerec" models fetch
echo "setup: done; the CLI is $build/facerec" >&2
