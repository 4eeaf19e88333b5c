// The gallery (see facerec/gallery.h): the store-agnostic layer over a
// GalleryStore (sqlite_store.cc, postgres_store.cc). Names are validated and
// templates checked here, before any store sees them, so both backends give
// the same answers; the legacy face_embdding.txt format is read and written
// here through the store's batch enrolment and snapshot.
#include "facerec/gallery.h"

#include <openssl/evp.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "gallery/store_common.h"

namespace fs = std::filesystem;

namespace facerec {

namespace {

constexpr int kMaxNameBytes = 256;
// A stored or enrolled unit vector must have |v| within this of 1.
constexpr double kUnitTolerance = 1e-3;

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

double l2_norm(const float* v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

std::string sha256_hex(const void* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// Decodes one UTF-8 code point at s[i]; advances i. Returns -1 on anything
// that is not well-formed UTF-8 (overlongs, surrogates, > U+10FFFF, truncation).
int32_t next_code_point(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  int len;
  int32_t cp;
  if (c < 0x80) { ++i; return c; }
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
  else return -1;
  if (i + len > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    unsigned char cc = b(i + k);
    if ((cc & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return -1;
  i += len;
  return cp;
}

// Unicode White_Space code points (the ASCII ones other than space are
// control characters and rejected anyway).
bool is_unicode_space(int32_t cp) {
  return cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

Status check_template(const NewTemplate& t, int dim, size_t index) {
  std::string where = "template " + std::to_string(index);
  if (static_cast<int>(t.unit.size()) != dim)
    return Status(ErrorCode::kInvalidArgument, where + " has " + std::to_string(t.unit.size()) +
                                                   " values; the gallery's embedder has dimension " +
                                                   std::to_string(dim));
  for (size_t i = 0; i < t.unit.size(); ++i)
    if (!std::isfinite(t.unit[i]))
      return Status(ErrorCode::kInvalidArgument, where + " has a non-finite value at " + std::to_string(i));
  double n = l2_norm(t.unit.data(), t.unit.size());
  if (std::abs(n - 1.0) > kUnitTolerance)
    return Status(ErrorCode::kInvalidArgument,
                  where + " is not L2-normalised (|v| = " + std::to_string(n) + ")");
  if (!std::isfinite(t.norm) || t.norm < 0)
    return Status(ErrorCode::kInvalidArgument, where + " has an invalid norm");
  if (!std::isfinite(t.det_score))
    return Status(ErrorCode::kInvalidArgument, where + " has a non-finite detection score");
  return Status::Ok();
}

Status read_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status(ErrorCode::kNotFound, path + ": no such file");
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot open for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status(ErrorCode::kIo, path + ": read failed");
  out = ss.str();
  return Status::Ok();
}

// Writes via a temporary file and rename(), so a reader never sees half a file.
Status write_file_atomically(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status(ErrorCode::kIo, tmp + ": cannot open for writing");
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return Status(ErrorCode::kIo, tmp + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Status(ErrorCode::kIo, path + ": cannot write: " + ec.message());
  }
  return Status::Ok();
}

// Parses one line of face_embdding.txt: floats separated by whitespace and/or
// a single comma. Empty string on success, else what is wrong.
std::string parse_legacy_line(std::string_view line, std::vector<float>& out) {
  out.clear();
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
  };
  skip_ws();
  if (i == line.size()) return "empty line";
  while (true) {
    const char* begin = line.data() + i;
    const char* end = line.data() + line.size();
    if (*begin == '+') ++begin;  // Python never writes it, but other tools do
    float v = 0;
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (ec != std::errc() || ptr == begin)
      return "value " + std::to_string(out.size() + 1) + " is not a number";
    if (!std::isfinite(v)) return "value " + std::to_string(out.size() + 1) + " is not finite";
    out.push_back(v);
    i = static_cast<size_t>(ptr - line.data());
    size_t before = i;
    skip_ws();
    if (i == line.size()) return {};
    if (line[i] == ',') {
      ++i;
      skip_ws();
      if (i == line.size()) return "trailing comma";
    } else if (i == before) {
      return "unexpected character after value " + std::to_string(out.size());
    }
  }
}

// Strict non-negative decimal index, as written by Python's str(int).
bool parse_index(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  if (s.size() > 1 && s[0] == '0') return false;
  out = std::stoll(s);
  return true;
}

}  // namespace

// ---- names ------------------------------------------------------------------------

Status validate_identity_name(const std::string& name) {
  if (name.empty()) return Status(ErrorCode::kInvalidArgument, "identity name is empty");
  if (name.size() > static_cast<size_t>(kMaxNameBytes))
    return Status(ErrorCode::kInvalidArgument, "identity name is " + std::to_string(name.size()) +
                                                   " bytes; the limit is " + std::to_string(kMaxNameBytes));
  size_t i = 0;
  int32_t first = -1, last = -1;
  while (i < name.size()) {
    size_t at = i;
    int32_t cp = next_code_point(name, i);
    if (cp < 0)
      return Status(ErrorCode::kInvalidArgument,
                    "identity name is not valid UTF-8 (byte " + std::to_string(at) + ")");
    // C0, DEL and C1 controls: invisible, and some (ESC, CSI) drive terminals.
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
      return Status(ErrorCode::kInvalidArgument,
                    "identity name contains a control character (byte " + std::to_string(at) + ")");
    if (first < 0) first = cp;
    last = cp;
  }
  if (is_unicode_space(first) || is_unicode_space(last))
    return Status(ErrorCode::kInvalidArgument, "identity name has leading or trailing whitespace");
  return Status::Ok();
}

// ---- open ------------------------------------------------------------------------------

bool is_postgres_uri(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

std::string redact_uri(const std::string& location) {
  if (!is_postgres_uri(location)) return location;
  // scheme://user:password@host -> scheme://user:***@host
  const size_t scheme = location.find("://") + 3;
  const size_t at = location.find('@', scheme);
  const size_t slash = location.find('/', scheme);
  std::string out = location;
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    const size_t colon = location.find(':', scheme);
    if (colon != std::string::npos && colon < at) out = location.substr(0, colon + 1) + "***" + location.substr(at);
  }
  // ...?password=secret
  const size_t pw = out.find("password=");
  if (pw != std::string::npos) {
    const size_t end = out.find('&', pw);
    out = out.substr(0, pw + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
  }
  return out;
}

const char* to_string(GalleryChange::Kind kind) {
  switch (kind) {
    case GalleryChange::Kind::kEnroll: return "enroll";
    case GalleryChange::Kind::kRemove: return "remove";
    case GalleryChange::Kind::kRename: return "rename";
  }
  return "?";
}

Result<std::unique_ptr<GalleryStore>> open_gallery_store(const std::string& location, GalleryAccess access,
                                                         const EmbedderInfo* expected) {
  if (is_postgres_uri(location))
    return store::open_postgres_store(location, access, expected, kGallerySchemaVersion);
  return store::open_sqlite_store(location, access, expected);
}

Result<std::unique_ptr<GalleryListener>> open_gallery_listener(const std::string& location) {
  if (is_postgres_uri(location)) return store::open_postgres_listener(location);
  return store::open_sqlite_listener(location);
}

Gallery::Gallery(std::unique_ptr<GalleryStore> store) : store_(std::move(store)), embedder_(store_->embedder()) {}

Result<std::unique_ptr<Gallery>> Gallery::open_as(const std::string& path, GalleryAccess access,
                                                  const EmbedderInfo* expected) {
  try {
    FACEREC_ASSIGN_OR_RETURN(auto st, open_gallery_store(path, access, expected));
    return std::make_unique<Gallery>(std::move(st));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "opening gallery " + redact_uri(path) + ": " + e.what());
  }
}

Result<std::unique_ptr<Gallery>> Gallery::open(const std::string& path, const EmbedderInfo& embedder) {
  return open_as(path, GalleryAccess::kCreate, &embedder);
}

Result<std::unique_ptr<Gallery>> Gallery::open_existing(const std::string& path) {
  return open_as(path, GalleryAccess::kReadWrite, nullptr);
}

Result<std::unique_ptr<Gallery>> Gallery::open_read_only(const std::string& path, const EmbedderInfo* expected) {
  return open_as(path, GalleryAccess::kReadOnly, expected);
}

Gallery::~Gallery() = default;

// ---- writes ---------------------------------------------------------------------------

Result<EnrollOutcome> Gallery::enroll(const std::string& name, const std::vector<NewTemplate>& templates) {
  try {
    FACEREC_RETURN_IF_ERROR(validate_identity_name(name));
    if (templates.empty())
      return Status(ErrorCode::kInvalidArgument, "nothing to enroll for " + in_quotes(name) + ": no templates");
    // Everything is checked before the transaction starts, so a bad template
    // costs no lock and writes nothing.
    for (size_t i = 0; i < templates.size(); ++i)
      FACEREC_RETURN_IF_ERROR(check_template(templates[i], embedder_.dim, i));
    return store_->enroll(name, templates);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "enrolling " + in_quotes(name) + ": " + e.what());
  }
}

Status Gallery::remove_person(const std::string& name) {
  try {
    return store_->remove_person(name);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "removing " + in_quotes(name) + ": " + e.what());
  }
}

Status Gallery::rename_person(const std::string& from, const std::string& to) {
  try {
    FACEREC_RETURN_IF_ERROR(validate_identity_name(to));
    return store_->rename_person(from, to);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "renaming " + in_quotes(from) + ": " + e.what());
  }
}

// ---- reads ------------------------------------------------------------------------------

Result<std::vector<PersonInfo>> Gallery::list_people() const {
  try {
    return store_->list_people();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("listing people: ") + e.what());
  }
}

Result<std::vector<StoredTemplate>> Gallery::templates() const {
  try {
    return store_->templates();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading templates: ") + e.what());
  }
}

Result<std::vector<StoredTemplate>> Gallery::templates_by_id(const std::vector<int64_t>& ids) const {
  try {
    return store_->templates_by_id(ids);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading templates: ") + e.what());
  }
}

Result<std::string> Gallery::person_name(int64_t person_id) const {
  try {
    return store_->person_name(person_id);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("looking up a person: ") + e.what());
  }
}

// ---- legacy format -----------------------------------------------------------------------

Result<int> Gallery::import_legacy(const std::string& embeddings_txt, const std::string& label_map_json) {
  try {
    const int dim = embedder_.dim;
    // 1. Parse and check everything before touching the database.
    std::string text;
    FACEREC_RETURN_IF_ERROR(read_file(embeddings_txt, text));
    std::vector<std::vector<float>> raw;
    {
      std::vector<std::string_view> lines;
      std::string_view rest(text);
      while (!rest.empty()) {
        size_t nl = rest.find('\n');
        lines.push_back(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      }
      // Trailing blank lines are an artefact of how the file was written; a
      // blank line in the middle would shift every later index, so it is an error.
      while (!lines.empty() && lines.back().find_first_not_of(" \t\r") == std::string_view::npos)
        lines.pop_back();
      std::vector<float> v;
      for (size_t i = 0; i < lines.size(); ++i) {
        const std::string where = embeddings_txt + " line " + std::to_string(i + 1);
        std::string err = parse_legacy_line(lines[i], v);
        if (!err.empty()) return Status(ErrorCode::kDecode, where + ": " + err + "; nothing imported");
        if (static_cast<int>(v.size()) != dim)
          return Status(ErrorCode::kMismatch, where + " has " + std::to_string(v.size()) +
                                                  " values, but the gallery's embedder has dimension " +
                                                  std::to_string(dim) + "; nothing imported");
        if (l2_norm(v.data(), v.size()) == 0)
          return Status(ErrorCode::kDecode, where + " is the zero vector; nothing imported");
        raw.push_back(v);
      }
    }

    std::string json_text;
    FACEREC_RETURN_IF_ERROR(read_file(label_map_json, json_text));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(json_text);
    } catch (const nlohmann::json::exception& e) {
      return Status(ErrorCode::kDecode, label_map_json + " is not valid JSON: " + e.what() + "; nothing imported");
    }
    if (!j.is_object())
      return Status(ErrorCode::kDecode, label_map_json + " must be a JSON object; nothing imported");
    const int64_t n = static_cast<int64_t>(raw.size());
    std::vector<std::string> label(raw.size());
    auto assign = [&](int64_t idx, const std::string& name) -> Status {
      if (idx < 0 || idx >= n)
        return Status(ErrorCode::kDecode, label_map_json + ": index " + std::to_string(idx) + " (for " +
                                              in_quotes(name) + ") is not a line of " + embeddings_txt + " (" +
                                              std::to_string(n) + " lines, indices from 0); nothing imported");
      if (!label[idx].empty())
        return Status(ErrorCode::kDecode, label_map_json + ": line " + std::to_string(idx + 1) +
                                              " is labelled twice; nothing imported");
      Status s = validate_identity_name(name);
      if (!s.ok())
        return Status(ErrorCode::kInvalidArgument,
                      label_map_json + ": bad name " + in_quotes(name) + ": " + s.message() + "; nothing imported");
      label[idx] = name;
      return Status::Ok();
    };
    bool by_index = false, by_name = false;
    for (auto it = j.begin(); it != j.end(); ++it) {
      int64_t idx;
      if (it.value().is_array()) by_name = true;
      else by_index = true;
      if (by_index && by_name)
        return Status(ErrorCode::kDecode, label_map_json + " mixes the two layouts (\"index\": \"name\" and "
                                                           "\"name\": [indices]); nothing imported");
      if (it.value().is_string() && parse_index(it.key(), idx)) {
        // {"0": "Alice"}: line index -> name.
        FACEREC_RETURN_IF_ERROR(assign(idx, it.value().get<std::string>()));
      } else if (it.value().is_array()) {
        // {"Alice": [0, 2]}: name -> line indices.
        for (const auto& e : it.value()) {
          if (!e.is_number_integer())
            return Status(ErrorCode::kDecode, label_map_json + ": the indices for " + in_quotes(it.key()) +
                                                  " must be integers; nothing imported");
          FACEREC_RETURN_IF_ERROR(assign(e.get<int64_t>(), it.key()));
        }
      } else {
        return Status(ErrorCode::kDecode, label_map_json + ": entry " + in_quotes(it.key()) +
                                              " is neither \"index\": \"name\" nor \"name\": [indices]; "
                                              "nothing imported");
      }
    }
    for (size_t i = 0; i < label.size(); ++i)
      if (label[i].empty())
        return Status(ErrorCode::kDecode, embeddings_txt + " line " + std::to_string(i + 1) + " has no label in " +
                                              label_map_json + "; nothing imported");

    // 2. Group by person (in line order) and write everything in one transaction.
    std::map<std::string, std::vector<NewTemplate>> by_person;
    for (size_t i = 0; i < raw.size(); ++i) {
      const std::vector<float>& v = raw[i];
      NewTemplate t;
      double norm = l2_norm(v.data(), v.size());
      t.unit.resize(v.size());
      for (size_t k = 0; k < v.size(); ++k) t.unit[k] = static_cast<float>(v[k] / norm);
      t.norm = static_cast<float>(norm);
      t.source = embeddings_txt + ":" + std::to_string(i + 1);
      // No image is known, so the duplicate key is the vector itself: importing
      // the same file twice adds nothing the second time.
      std::string key = "facerec-legacy-v1:";
      key.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
      t.source_sha256 = sha256_hex(key.data(), key.size());
      by_person[label[i]].push_back(std::move(t));
    }
    // One store transaction for every person.
    auto outs = store_->enroll_batch({by_person.begin(), by_person.end()});
    if (!outs.ok()) return outs.status();
    int added = 0;
    for (const EnrollOutcome& out : outs.value()) added += out.added;
    return added;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "importing " + embeddings_txt + ": " + e.what());
  }
}

Status Gallery::export_legacy(const std::string& embeddings_txt, const std::string& label_map_json) const {
  try {
    // One read transaction, so templates and names come from the same snapshot.
    auto snap = store_->snapshot();
    if (!snap.ok()) return snap.status();
    auto* ts = &snap->templates;
    auto* people = &snap->people;
    std::map<int64_t, std::string> names;
    for (const PersonInfo& p : *people) names[p.id] = p.name;

    std::string text;
    // ordered_json keeps "0", "1", ..., "10" in line order rather than string order.
    nlohmann::ordered_json labels = nlohmann::ordered_json::object();
    char buf[64];
    for (size_t i = 0; i < ts->size(); ++i) {
      const StoredTemplate& t = (*ts)[i];
      auto it = names.find(t.person_id);
      if (it == names.end())
        return Status(ErrorCode::kDatabase, "gallery " + store_->location() + ": template " + std::to_string(t.id) +
                                                " belongs to no person (corrupt)");
      // The legacy file held raw network outputs: write unit * norm so a
      // re-import restores both. A zero norm (unknown) writes the unit vector.
      const float scale = t.norm > 0 ? t.norm : 1.f;
      for (size_t k = 0; k < t.unit.size(); ++k) {
        // Shortest text that reads back as the same float.
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, t.unit[k] * scale);
        FACEREC_ASSERT(ec == std::errc());
        if (k) text += ' ';
        text.append(buf, ptr);
      }
      text += '\n';
      labels[std::to_string(i)] = it->second;
    }
    FACEREC_RETURN_IF_ERROR(write_file_atomically(embeddings_txt, text));
    return write_file_atomically(label_map_json, labels.dump(2, ' ', /*ensure_ascii=*/false) + "\n");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "exporting to " + embeddings_txt + ": " + e.what());
  }
}

}  // namespace facerec
