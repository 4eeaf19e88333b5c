// Gallery::import_legacy on arbitrary face_embdding.txt + label_map.json: the
// input is split at the first 0xFF byte (text before, JSON after).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "facerec/gallery.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* cut = static_cast<const uint8_t*>(std::memchr(data, 0xFF, size));
  const size_t n1 = cut ? static_cast<size_t>(cut - data) : size;
  const std::string txt = facerec::fuzz::write("face_embdding.txt", data, n1);
  const std::string json = facerec::fuzz::write("label_map.json", cut ? cut + 1 : data, cut ? size - n1 - 1 : 0);
  const std::string db = facerec::fuzz::scratch() + "/g.db";
  std::remove(db.c_str());
  auto g = facerec::Gallery::open(db, {"fuzz_embedder", std::string(64, '0'), 4});
  if (!g.ok()) return 0;
  auto added = (*g)->import_legacy(txt, json);
  if (added.ok()) {
    auto people = (*g)->list_people();
    auto templates = (*g)->templates();
    if (!people.ok() || !templates.ok()) __builtin_trap();
  }
  return 0;
}
