// Shared by the libFuzzer harnesses: a per-process scratch folder for the
// APIs that take paths.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace facerec::fuzz {

inline const std::string& scratch() {
  static const std::string dir = [] {
    // tmpfs when there is one: SQLite's fsyncs cost nothing there.
    std::string base = std::getenv("FACEREC_FUZZ_TMP") ? std::getenv("FACEREC_FUZZ_TMP")
                       : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                       : std::getenv("TMPDIR")          ? std::getenv("TMPDIR")
                                                        : "/tmp";
    std::string tmpl = base + "/facerec_fuzz_XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    return std::string(made ? made : base.c_str());
  }();
  return dir;
}

inline std::string write(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace facerec::fuzz
