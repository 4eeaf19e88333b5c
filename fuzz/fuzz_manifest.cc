// Manifest::load (models/manifest.json's reader) on arbitrary bytes.
#include <cstdint>

#include "facerec/models.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = facerec::Manifest::load(facerec::fuzz::write("manifest.json", data, size));
  (void)m;
  return 0;
}
