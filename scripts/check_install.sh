#!/usr/bin/env bash
# Installs the built facerec into a temporary prefix with `cmake --install`,
# then configures, builds and runs tests/install/ (a third-party program that
# uses find_package(facerec)) against it. Run after a build; about a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
prefix=$(mktemp -d /tmp/facerec_install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix/usr" > /dev/null
cmake -S "$root/tests/install" -B "$prefix/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix/usr" > /dev/null
cmake --build "$prefix/consumer" > /dev/null
FACEREC_MANIFEST="$prefix/usr/share/facerec/manifest.json" "$prefix/consumer/consumer"
echo "check_install: find_package(facerec) from $prefix/usr works"
