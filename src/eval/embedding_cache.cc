// A binary cache of per-image templates for the eval commands (see
// facerec/eval_open_set.h).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "facerec/eval_open_set.h"

namespace fs = std::filesystem;

namespace facerec::eval {

namespace {

constexpr char kMagic[8] = {'F', 'R', 'E', 'C', 'E', 'M', 'B', '1'};
// Sanity bounds on what a record may claim, so a damaged file is an error,
// not a huge allocation.
constexpr uint32_t kMaxString = 1u << 16;
constexpr uint32_t kMaxDim = 1u << 16;

template <class T>
bool read_pod(std::istream& in, T& v) {
  return static_cast<bool>(in.read(reinterpret_cast<char*>(&v), sizeof v));
}
template <class T>
void write_pod(std::ostream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}
bool read_string(std::istream& in, std::string& s) {
  uint32_t n = 0;
  if (!read_pod(in, n) || n > kMaxString) return false;
  s.resize(n);
  return n == 0 || static_cast<bool>(in.read(s.data(), n));
}
void write_string(std::ostream& out, const std::string& s) {
  write_pod(out, static_cast<uint32_t>(s.size()));
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

}  // namespace

Result<EmbeddingCache> EmbeddingCache::load_any(const std::string& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return Status(ErrorCode::kNotFound, "no embedding cache at " + file);
  return read(file, nullptr);
}

Result<EmbeddingCache> EmbeddingCache::load(const std::string& file, const std::string& key) { return read(file, &key); }

Result<EmbeddingCache> EmbeddingCache::read(const std::string& file, const std::string* key) {
  const bool any_key = key == nullptr;
  EmbeddingCache c;
  if (key) c.key_ = *key;
  std::error_code ec;
  if (!fs::exists(file, ec)) return c;
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status(ErrorCode::kIo, "cannot read embedding cache " + file);
  auto damaged = [&](const std::string& what) {
    return Status(ErrorCode::kInvalidArgument, "embedding cache " + file + " is damaged (" + what + "); delete it");
  };
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return damaged("not a facerec embedding cache");
  std::string stored_key;
  if (!read_string(in, stored_key)) return damaged("header");
  if (any_key) c.key_ = stored_key;
  if (!any_key && stored_key != *key)
    return Status(ErrorCode::kInvalidArgument, "embedding cache " + file + " was made with other models or options (" +
                                                   stored_key + "; now " + *key + "); delete it or pass another --cache");
  uint64_t n = 0;
  if (!read_pod(in, n)) return damaged("count");
  for (uint64_t i = 0; i < n; ++i) {
    std::string path;
    CachedTemplate t;
    uint32_t dim = 0;
    if (!read_string(in, path) || !read_pod(in, t.source) || !read_pod(in, t.norm) || !read_pod(in, t.quality) ||
        !read_pod(in, dim) || dim > kMaxDim)
      return damaged("record " + std::to_string(i));
    t.unit.resize(dim);
    if (dim && !in.read(reinterpret_cast<char*>(t.unit.data()), static_cast<std::streamsize>(dim * sizeof(float))))
      return damaged("record " + std::to_string(i));
    c.items_[path] = std::move(t);
  }
  return c;
}

Status EmbeddingCache::save(const std::string& file) const {
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status(ErrorCode::kIo, "cannot write embedding cache " + tmp);
    out.write(kMagic, 8);
    write_string(out, key_);
    write_pod(out, static_cast<uint64_t>(items_.size()));
    for (const auto& [path, t] : items_) {
      write_string(out, path);
      write_pod(out, t.source);
      write_pod(out, t.norm);
      write_pod(out, t.quality);
      write_pod(out, static_cast<uint32_t>(t.unit.size()));
      out.write(reinterpret_cast<const char*>(t.unit.data()), static_cast<std::streamsize>(t.unit.size() * sizeof(float)));
    }
    if (!out) return Status(ErrorCode::kIo, "cannot write embedding cache " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot rename " + tmp + " to " + file + ": " + ec.message());
  return Status::Ok();
}

const CachedTemplate* EmbeddingCache::find(const std::string& path) const {
  auto it = items_.find(path);
  return it == items_.end() ? nullptr : &it->second;
}

}  // namespace facerec::eval
