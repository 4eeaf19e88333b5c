// Gallery::import_legacy on arbitrary face_embdding.txt + label_map.json: the
// input is split at the first 0xFF byte (text before, JSON after; no JSON:
// no label map, so label_<n> names).
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
  // No JSON: none beside the file either (the importer would pick it up).
  if (!cut) std::remove((facerec::fuzz::scratch() + "/label_map.json").c_str());
  const std::string json = cut ? facerec::fuzz::write("label_map.json", cut + 1, size - n1 - 1) : std::string();
  const std::string db = facerec::fuzz::scratch() + "/g.db";
  std::remove(db.c_str());
  // The embedder's dimension follows the first line, so both layouts are
  // reached: D + 1 values when the first is all digits ("<label> v1..vD",
  // the original's), else D (vectors only).
  size_t tokens = 0;
  bool first_digits = true, in_token = false;
  for (size_t i = 0; i < n1 && data[i] != '\n'; ++i) {
    const bool sep = data[i] == ' ' || data[i] == '\t' || data[i] == ',' || data[i] == '\r';
    if (!sep && !in_token) ++tokens;
    if (!sep && tokens == 1 && (data[i] < '0' || data[i] > '9')) first_digits = false;
    in_token = !sep;
  }
  int dim = static_cast<int>(tokens) - (first_digits && tokens > 1 ? 1 : 0);
  if (dim < 1 || dim > 1024) dim = 4;
  auto g = facerec::Gallery::open(db, {"fuzz_embedder", std::string(64, '0'), dim});
  if (!g.ok()) return 0;
  auto added = (*g)->import_legacy(txt, json);
  if (added.ok()) {
    auto people = (*g)->list_people();
    auto templates = (*g)->templates();
    if (!people.ok() || !templates.ok()) __builtin_trap();
  }
  return 0;
}
