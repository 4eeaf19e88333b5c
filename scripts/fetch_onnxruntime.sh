#!/usr/bin/env bash
# Fetches the pinned ONNX Runtime into $FACEREC_CACHE/onnxruntime-1.30.0 and
# prints that folder: the library from onnxruntime-node@1.30.0, the C/C++ API
# headers (API 1.29, backward compatible) from com.github.asus4.onnxruntime@0.4.9.
# Users with an official ONNX Runtime release skip this: cmake -DFACEREC_ORT_ROOT=...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${FACEREC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facerec}
root="$cache/onnxruntime-1.30.0"
HDR_DIR='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'

"$here/npm_fetch.sh" file onnxruntime-node@1.30.0 \
  6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75 \
  package/bin/napi-v6/linux/x64/libonnxruntime.so.1 \
  ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23 \
  "$root/lib/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$root/lib/libonnxruntime.so"

if [ ! -f "$root/include/onnxruntime_cxx_api.h" ]; then
  tgz=$("$here/npm_fetch.sh" tarball com.github.asus4.onnxruntime@0.4.9 \
        e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d)
  tmpd=$(mktemp -d "$root/.hdr.XXXXXX")
  tar -xzf "$tgz" -C "$tmpd" "$HDR_DIR"
  rm -rf "$root/include"
  mv "$tmpd/$HDR_DIR" "$root/include"
  rm -rf "$tmpd"
fi
echo "$root"
