// Private to src/: the memory check before nlohmann::json parses a document
// that can be large (the model manifest, a legacy label map, an HNSW index's
// meta block).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>

#include "facerec/status.h"

namespace facerec::internal {

// nlohmann::json's destructor allocates (json_value::destroy flattens nested
// values onto a heap std::vector) on a noexcept path, so a std::bad_alloc in
// the middle of json::parse ends the process with std::terminate while the
// half-built document unwinds, before any catch can turn it into a Status
// (Faults.IdentifyUnderAnAddressSpaceLimitEndsWithinTenSeconds aborted in 2 of
// 3 runs at ulimit -v 500000 before the manifest had this check). Parsing
// takes a few times the text's size; under a memory limit (ulimit -v, a
// cgroup) refuse early, with `code` and "out of memory reading <what>",
// unless max(8 MiB, 64 x the size) can be allocated now (capped at 1 GiB,
// where the probe would refuse documents a normal machine parses).
inline Status json_parse_headroom(size_t text_bytes, ErrorCode code, const std::string& what) {
  constexpr size_t kMin = size_t{8} << 20, kMax = size_t{1} << 30;
  const size_t headroom = text_bytes > kMax / 64 ? kMax : std::max(kMin, text_bytes * 64);
  void* probe = std::malloc(headroom);
  if (!probe)
    return Status(code, "out of memory reading " + what + " (" + std::to_string(headroom >> 20) +
                            " MiB of headroom not available)");
  std::free(probe);
  return Status::Ok();
}

}  // namespace facerec::internal
