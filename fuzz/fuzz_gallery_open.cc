// The gallery opener on an arbitrary file: a Status or a readable gallery.
#include <cstdint>
#include <cstdio>

#include "facerec/gallery.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = facerec::fuzz::write("gallery.db", data, size);
  std::remove((path + "-journal").c_str());
  std::remove((path + "-wal").c_str());
  auto g = facerec::Gallery::open_existing(path);
  if (g.ok()) {
    (void)(*g)->list_people();
    (void)(*g)->templates();
  }
  return 0;
}
