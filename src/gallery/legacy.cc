// The original design's face_embdding.txt + label_map.json (see legacy.h and
// Gallery::import_legacy in facerec/gallery.h).
//
// Two line layouts, told apart by the number of values on a line, given the
// gallery embedder's dimension D:
//   D + 1 values, the first a non-negative decimal integer: "<label> v1 .. vD"
//        (what the original's embedding_feat.py writes, with a trailing space);
//        label_map.json maps "<label>" to a name.
//   D values: the vector only; label_map.json maps the 0-based line index.
// Every line must have the same layout. Any other count, D + 1 values whose
// first is not an integer, or a file that mixes the two is refused with the
// line: no line is ever guessed.
#include "gallery/legacy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "facerec/names.h"
#include "facerec/sha256.h"
#include "json_headroom.h"

namespace fs = std::filesystem;

namespace facerec::legacy {
namespace {

// A name or key from the file, quoted for a message: escaped and clipped.
std::string q(const std::string& s) { return "'" + printable_clipped(s) + "'"; }

const char* file_type_name(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// Reads a regular file of at most `limit` bytes (checked before and while
// reading, so a file that grows, or a device, is never read without bound).
Status read_bounded(const std::string& path, uint64_t limit, std::string& out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status(ErrorCode::kNotFound, path + ": no such file");
  if (!S_ISREG(st.st_mode))
    return Status(ErrorCode::kInvalidArgument, path + " is " + file_type_name(st.st_mode) + ", not a regular file; nothing imported");
  const std::string too_big = path + " is over the limit of " + std::to_string(limit >> 20) +
                              " MiB for this file; split it into several imports; nothing imported";
  if (static_cast<uint64_t>(st.st_size) > limit) return Status(ErrorCode::kTooLarge, too_big);
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot open for reading");
  out.resize(static_cast<size_t>(st.st_size) + 1);
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (f.bad()) return Status(ErrorCode::kIo, path + ": read failed");
  out.resize(static_cast<size_t>(f.gcount()));
  if (out.size() > static_cast<size_t>(st.st_size)) {
    // It grew while we read: read on, bounded.
    std::string more(static_cast<size_t>(limit) + 1 - out.size(), '\0');
    f.read(more.data(), static_cast<std::streamsize>(more.size()));
    out.append(more.data(), static_cast<size_t>(f.gcount()));
    if (out.size() > limit) return Status(ErrorCode::kTooLarge, too_big);
  }
  return Status::Ok();
}

// Splits a line into values separated by whitespace and/or a single comma.
// Empty string on success, else what is wrong.
std::string tokenize(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0;
  auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  auto skip_ws = [&] {
    while (i < line.size() && is_ws(line[i])) ++i;
  };
  skip_ws();
  if (i == line.size()) return "empty line";
  while (true) {
    size_t start = i;
    while (i < line.size() && !is_ws(line[i]) && line[i] != ',') ++i;
    if (i == start) return "value " + std::to_string(out.size() + 1) + " is empty (two commas in a row?)";
    out.push_back(line.substr(start, i - start));
    skip_ws();
    if (i == line.size()) return {};
    if (line[i] == ',') {
      ++i;
      skip_ws();
      if (i == line.size()) return "trailing comma";
    }
  }
}

// Strict non-negative decimal (Python's str(int)): no sign, no leading zero.
// false if not such a number; `overflow` set if it is one beyond uint64.
bool parse_u64(std::string_view s, uint64_t& out, bool& overflow) {
  overflow = false;
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  if (s.size() > 1 && s[0] == '0') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc::result_out_of_range) {
    overflow = true;
    return false;
  }
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string parse_value(std::string_view tok, size_t k, float& v) {
  const char* begin = tok.data();
  const char* end = tok.data() + tok.size();
  if (begin != end && *begin == '+') ++begin;  // Python never writes it, but other tools do
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec == std::errc::result_out_of_range)
    return "value " + std::to_string(k) + " (" + std::string(tok) + ") is outside the float32 range";
  if (ec != std::errc() || ptr != end || begin == end)
    return "value " + std::to_string(k) + " (" + std::string(tok.substr(0, 32)) + ") is not a number";
  if (!std::isfinite(v)) return "value " + std::to_string(k) + " is not finite";
  return {};
}

// JSON with every duplicated object key reported (nlohmann keeps the last).
Result<nlohmann::json> parse_json_no_duplicates(const std::string& text, const std::string& map_name,
                                                std::string& duplicate) {
  using nlohmann::json;
  std::vector<std::set<std::string>> keys;
  auto cb = [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) keys.emplace_back();
    else if (ev == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (ev == json::parse_event_t::key && !keys.empty() && parsed.is_string() &&
             !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  FACEREC_RETURN_IF_ERROR(internal::json_parse_headroom(text.size(), ErrorCode::kTooLarge, map_name));
  try {
    return json::parse(text, cb);
  } catch (const json::exception& e) {
    return Status(ErrorCode::kDecode, map_name + " is not valid JSON: " + e.what() + "; nothing imported");
  }
}

struct Line {
  std::optional<uint64_t> label;
  std::vector<float> v;
  double norm = 0;  // |v|, checked non-zero and within float32
};

}  // namespace

Result<Parsed> parse(std::string_view text, const std::optional<std::string>& label_map, int dim,
                     const std::string& txt_name, const std::string& map_name) {
  if (dim <= 0) return Status(ErrorCode::kInvalidArgument, "legacy import needs the embedder's dimension");
  const std::string none = "; nothing imported";
  std::vector<std::string_view> lines;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  // Trailing blank lines are an artefact of how the file was written; a
  // blank line in the middle would shift every later index, so it is an error.
  while (!lines.empty() && lines.back().find_first_not_of(" \t\r") == std::string_view::npos) lines.pop_back();
  if (lines.empty()) return Status(ErrorCode::kDecode, txt_name + " has no vectors" + none);

  Parsed out;
  std::vector<Line> parsed(lines.size());
  std::vector<std::string_view> tok;
  const std::string D = std::to_string(dim), D1 = std::to_string(dim + 1);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = txt_name + " line " + std::to_string(i + 1);
    std::string err = tokenize(lines[i], tok);
    if (!err.empty()) return Status(ErrorCode::kDecode, where + ": " + err + none);
    const bool labelled = tok.size() == static_cast<size_t>(dim) + 1;
    if (!labelled && tok.size() != static_cast<size_t>(dim))
      return Status(ErrorCode::kMismatch, where + " has " + std::to_string(tok.size()) + " values; the gallery's embedder has dimension " +
                                              D + ", so a line must hold " + D + " (the vector) or " + D1 +
                                              " (an integer label, then the vector)" + none);
    if (i == 0) out.layout = labelled ? "labelled" : "vectors";
    else if (labelled != (out.layout == "labelled"))
      return Status(ErrorCode::kDecode, where + " has " + std::to_string(tok.size()) + " values but line 1 has " +
                                            (labelled ? D : D1) + ": the file mixes the \"<label> v1..v" + D +
                                            "\" and \"v1..v" + D + "\" layouts" + none);
    Line& L = parsed[i];
    size_t first = 0;
    if (labelled) {
      uint64_t label = 0;
      bool overflow = false;
      if (!parse_u64(tok[0], label, overflow))
        return Status(ErrorCode::kDecode, where + " has " + D1 + " values, one more than the embedder's dimension, but the first (" +
                                              std::string(tok[0].substr(0, 32)) +
                                              (overflow ? ") is beyond 2^64-1" : ") is not a non-negative integer label") + none);
      L.label = label;
      first = 1;
    }
    L.v.resize(static_cast<size_t>(dim));
    for (size_t k = first; k < tok.size(); ++k) {
      err = parse_value(tok[k], k + 1, L.v[k - first]);
      if (!err.empty()) return Status(ErrorCode::kDecode, where + ": " + err + none);
    }
    double n2 = 0;
    for (float x : L.v) n2 += static_cast<double>(x) * x;
    const double norm = L.norm = std::sqrt(n2);
    if (norm == 0) return Status(ErrorCode::kDecode, where + " is the zero vector" + none);
    if (!(norm <= std::numeric_limits<float>::max())) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3g", norm);
      return Status(ErrorCode::kDecode, where + ": the vector's norm (" + buf +
                                            ") overflows float32: values this large are not an embedding" + none);
    }
  }

  // Names: by line index ("vectors") or by label ("labelled").
  const bool by_label = out.layout == "labelled";
  const uint64_t n = lines.size();
  std::map<uint64_t, std::string> name_of;  // line index or label -> NFC name
  std::set<uint64_t> labels_present;
  for (const Line& L : parsed)
    if (L.label) labels_present.insert(*L.label);
  auto what = [&](uint64_t k) {
    return by_label ? "label " + std::to_string(k) : "index " + std::to_string(k) + " (line " + std::to_string(k + 1) + ")";
  };
  if (!label_map) {
    if (!by_label)
      return Status(ErrorCode::kNotFound, "no label map for " + txt_name + ", and its lines carry no labels (" + D +
                                              " values each): give label_map.json" + none);
    for (uint64_t l : labels_present) name_of[l] = "label_" + std::to_string(l);
    out.notes.push_back("no label map: the " + std::to_string(labels_present.size()) +
                        " people are imported as label_<n>, as the original shows them; rename them with "
                        "'facerec gallery rename label_<n> <name>'");
  } else {
    std::string duplicate;
    FACEREC_ASSIGN_OR_RETURN(nlohmann::json j, parse_json_no_duplicates(*label_map, map_name, duplicate));
    if (!j.is_object()) return Status(ErrorCode::kDecode, map_name + " must be a JSON object" + none);
    if (!duplicate.empty())
      return Status(ErrorCode::kDecode, map_name + ": key " + q(duplicate) +
                                            " appears twice (JSON would silently keep the last): say which name is meant" + none);
    auto assign = [&](uint64_t k, const std::string& raw) -> Status {
      if (!by_label && k >= n)
        return Status(ErrorCode::kDecode, map_name + ": index " + std::to_string(k) + " (for " + q(raw) + ") is not a line of " +
                                              txt_name + " (" + std::to_string(n) + " lines, indices from 0)" + none);
      if (name_of.count(k))
        return Status(ErrorCode::kDecode, map_name + ": " + (by_label ? what(k) : "line " + std::to_string(k + 1)) +
                                              " is labelled twice" + none);
      auto nm = normalize_identity_name(raw);
      if (!nm.ok())
        return Status(ErrorCode::kInvalidArgument, map_name + ": bad name " + q(raw) + " for " + what(k) + ": " +
                                                       nm.status().message() + none);
      name_of[k] = std::move(nm).value();
      return Status::Ok();
    };
    bool seen_by_index = false, seen_by_name = false;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_array()) seen_by_name = true;
      else seen_by_index = true;
      if (seen_by_index && seen_by_name)
        return Status(ErrorCode::kDecode, map_name + " mixes the two layouts (\"index\": \"name\" and \"name\": [indices])" + none);
      uint64_t k = 0;
      bool overflow = false;
      if (it.value().is_string() && parse_u64(it.key(), k, overflow)) {
        FACEREC_RETURN_IF_ERROR(assign(k, it.value().get<std::string>()));
      } else if (it.value().is_string() && overflow) {
        return Status(ErrorCode::kDecode, map_name + ": key " + q(it.key()) + " (for " + q(it.value().get<std::string>()) +
                                              ") is beyond 2^64-1, so no line or label" + none);
      } else if (it.value().is_array()) {
        for (const auto& e : it.value()) {
          if (e.is_number_unsigned()) {
            FACEREC_RETURN_IF_ERROR(assign(e.get<uint64_t>(), it.key()));
          } else if (e.is_number_integer()) {
            return Status(ErrorCode::kDecode, map_name + ": index " + std::to_string(e.get<int64_t>()) + " for " +
                                                  q(it.key()) + " is negative" + none);
          } else {
            return Status(ErrorCode::kDecode, map_name + ": the indices for " + q(it.key()) +
                                                  " must be non-negative integers (found " + e.dump().substr(0, 40) + ")" + none);
          }
        }
      } else {
        return Status(ErrorCode::kDecode, map_name + ": entry " + q(it.key()) +
                                              " is neither \"index\": \"name\" nor \"name\": [indices]" + none);
      }
    }
    if (by_label) {
      int unused = 0;
      for (const auto& [k, nm] : name_of)
        if (!labels_present.count(k)) ++unused;
      if (unused)
        out.notes.push_back(map_name + " names " + std::to_string(unused) + " label(s) that no line of " + txt_name +
                            " carries (ignored)");
    }
  }

  out.entries.reserve(parsed.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    const uint64_t k = by_label ? *parsed[i].label : i;
    auto it = name_of.find(k);
    if (it == name_of.end())
      return Status(ErrorCode::kDecode, txt_name + " line " + std::to_string(i + 1) + (by_label ? " (label " + std::to_string(k) + ")" : "") +
                                            " has no name in " + map_name + none);
    const std::vector<float>& v = parsed[i].v;
    const double norm = parsed[i].norm;
    Entry e;
    e.name = it->second;
    e.t.unit.resize(v.size());
    for (size_t d = 0; d < v.size(); ++d) e.t.unit[d] = static_cast<float>(v[d] / norm);
    e.t.norm = static_cast<float>(norm);
    e.t.source = txt_name + ":" + std::to_string(i + 1);
    e.t.source_sha256 = vector_key(e.t.unit);
    out.entries.push_back(std::move(e));
  }
  return out;
}

Result<Parsed> read_and_parse(const std::string& embeddings_txt, const std::string& label_map_path, int dim) {
  std::string text;
  FACEREC_RETURN_IF_ERROR(read_bounded(embeddings_txt, kMaxEmbeddingsBytes, text));
  std::string map_path = label_map_path;
  std::vector<std::string> notes;
  if (map_path.empty()) {
    std::error_code ec;
    fs::path beside = fs::path(embeddings_txt).parent_path() / "label_map.json";
    if (fs::exists(beside, ec)) {
      map_path = beside.string();
      notes.push_back("names from " + map_path + " (beside " + embeddings_txt + ")");
    }
  }
  std::optional<std::string> map_text;
  if (!map_path.empty()) {
    std::string t;
    FACEREC_RETURN_IF_ERROR(read_bounded(map_path, kMaxLabelMapBytes, t));
    map_text = std::move(t);
  }
  FACEREC_ASSIGN_OR_RETURN(Parsed p, parse(text, map_text, dim, embeddings_txt, map_path.empty() ? "label_map.json" : map_path));
  p.notes.insert(p.notes.begin(), notes.begin(), notes.end());
  return p;
}

std::string vector_key(const std::vector<float>& unit) {
  std::string key = "facerec-vector-v1:";
  for (float x : unit) {
    const auto qv = static_cast<int16_t>(std::lround(std::clamp(x, -1.f, 1.f) * 1024.f));
    key.append(reinterpret_cast<const char*>(&qv), sizeof qv);
  }
  return sha256_hex(key);
}

std::map<std::string, std::vector<NewTemplate>> drop_stored_vectors(const std::vector<Entry>& entries,
                                                                   const std::vector<StoredTemplate>& stored,
                                                                   int dim, int& dropped) {
  constexpr float kTolerance = 1e-5f;
  constexpr float kCell = 1.f / 256;  // >> kTolerance, so a near-equal vector is in a neighbouring cell
  // Cells on the first two coordinates; each candidate is then compared whole.
  auto cell = [&](const std::vector<float>& u, int a) {
    return static_cast<int64_t>(std::floor(u[static_cast<size_t>(a)] / kCell));
  };
  auto cell_key = [](int64_t a, int64_t b) { return (a << 20) ^ (b & 0xFFFFF); };
  const int c1 = dim > 1 ? 1 : 0;
  std::unordered_multimap<int64_t, const std::vector<float>*> grid;
  auto add = [&](const std::vector<float>& u) { grid.emplace(cell_key(cell(u, 0), cell(u, c1)), &u); };
  auto near = [&](const std::vector<float>& u) {
    const int64_t a = cell(u, 0), b = cell(u, c1);
    for (int64_t da = -1; da <= 1; ++da)
      for (int64_t db = -1; db <= 1; ++db) {
        auto [lo, hi] = grid.equal_range(cell_key(a + da, b + db));
        for (auto it = lo; it != hi; ++it) {
          const std::vector<float>& w = *it->second;
          if (w.size() != u.size()) continue;
          bool same = true;
          for (size_t d = 0; d < u.size() && same; ++d) same = std::abs(w[d] - u[d]) <= kTolerance;
          if (same) return true;
        }
      }
    return false;
  };
  for (const StoredTemplate& t : stored)
    if (static_cast<int>(t.unit.size()) == dim) add(t.unit);
  std::map<std::string, std::vector<NewTemplate>> by_person;
  dropped = 0;
  for (const Entry& e : entries) {
    if (near(e.t.unit)) {
      ++dropped;
      continue;
    }
    add(e.t.unit);
    by_person[e.name].push_back(e.t);
  }
  return by_person;
}

Status format(const std::vector<StoredTemplate>& templates, const std::map<int64_t, std::string>& names,
              std::string& text, std::string& label_map) {
  text.clear();
  // ordered_json keeps "0", "1", ..., "10" in line order rather than string order.
  nlohmann::ordered_json labels = nlohmann::ordered_json::object();
  char buf[64];
  for (size_t i = 0; i < templates.size(); ++i) {
    const StoredTemplate& t = templates[i];
    auto it = names.find(t.person_id);
    if (it == names.end())
      return Status(ErrorCode::kDatabase, "template " + std::to_string(t.id) + " belongs to no person (corrupt)");
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
  label_map = labels.dump(2, ' ', /*ensure_ascii=*/false) + "\n";
  return Status::Ok();
}

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

}  // namespace facerec::legacy
