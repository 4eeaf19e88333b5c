// The config file (load_config_file + resolve_config, src/recognizer/config.cc)
// on arbitrary bytes: every input gives a config or a Status, never a crash.
#include <cstdint>

#include "facerec/recognizer.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = facerec::fuzz::write("config.json", data, size);
  auto layer = facerec::load_config_file(path);
  auto config = facerec::resolve_config({}, path);
  // The two must agree on whether the file is acceptable as far as parsing goes.
  if (!layer.ok() && config.ok()) __builtin_trap();
  return 0;
}
