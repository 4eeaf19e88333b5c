// RecognizerConfig: the JSON config file, the flags > file > defaults
// precedence, and the one place the match threshold is resolved.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "facerec/recognizer.h"
#include "facerec/runtime.h"

namespace facerec {

namespace {

using nlohmann::json;

// ---- The config file's schema: ONE table ---------------------------------------------
// Each key: its JSON type, its range (inclusive unless marked open), what it
// means, and where it goes in a ConfigLayer. To add a key, add a row (and the
// field to ConfigLayer/overlay/resolve_config); the type, range, unknown-key
// and did-you-mean checks come with it.
enum class KeyType { kString, kNumber, kInteger };

struct ConfigKey {
  const char* name;
  KeyType type;
  double lo, hi;            // for numbers
  bool lo_open, hi_open;    // (lo, hi) rather than [lo, hi]
  const char* meaning;      // for messages: what the value is
  void (*set)(ConfigLayer&, const json&);
  // Numbers: the flag that sets the same field, and the field's value in a
  // layer (flags and file merged), so resolve_config checks a flag against
  // this same row. Null for strings (their parsers check them).
  const char* flag = nullptr;
  std::optional<double> (*get)(const ConfigLayer&) = nullptr;
};

template <class T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

const ConfigKey kConfigKeys[] = {
    {"manifest", KeyType::kString, 0, 0, false, false, "path of the model manifest",
     [](ConfigLayer& c, const json& v) { c.manifest = v.get<std::string>(); }},
    {"detector", KeyType::kString, 0, 0, false, false, "detector model id",
     [](ConfigLayer& c, const json& v) { c.detector = v.get<std::string>(); }},
    {"embedder", KeyType::kString, 0, 0, false, false, "embedder model id",
     [](ConfigLayer& c, const json& v) { c.embedder = v.get<std::string>(); }},
    {"db", KeyType::kString, 0, 0, false, false, "gallery path",
     [](ConfigLayer& c, const json& v) { c.db = v.get<std::string>(); }},
    {"detect_policy", KeyType::kString, 0, 0, false, false, "\"none\", \"default\" or \"key=value,...\"",
     [](ConfigLayer& c, const json& v) { c.detect_policy = v.get<std::string>(); }},
    {"index", KeyType::kString, 0, 0, false, false, "search index: \"exact\", \"hnsw\" or \"auto\"",
     [](ConfigLayer& c, const json& v) { c.index = v.get<std::string>(); }},
    {"threads", KeyType::kInteger, 0, kMaxIntraOpThreads, false, false, "inference threads (0: one per core)",
     [](ConfigLayer& c, const json& v) { c.threads = static_cast<int>(v.get<int64_t>()); },
     "--threads", [](const ConfigLayer& c) { return as_double(c.threads); }},
    {"threshold", KeyType::kNumber, -1, 1, false, false, "match threshold, a cosine similarity",
     [](ConfigLayer& c, const json& v) { c.threshold = v.get<float>(); },
     "--threshold", [](const ConfigLayer& c) { return as_double(c.threshold); }},
    {"fpir", KeyType::kNumber, 0, 1, true, true, "false-positive identification rate, e.g. 0.01",
     [](ConfigLayer& c, const json& v) { c.fpir = v.get<double>(); },
     "--fpir", [](const ConfigLayer& c) { return as_double(c.fpir); }},
    {"score_threshold", KeyType::kNumber, 0, 1, false, false, "detection score threshold",
     [](ConfigLayer& c, const json& v) { c.score_threshold = v.get<float>(); },
     "--det-score", [](const ConfigLayer& c) { return as_double(c.score_threshold); }},
    {"nms_threshold", KeyType::kNumber, 0, 1, true, false, "NMS IoU threshold",
     [](ConfigLayer& c, const json& v) { c.nms_threshold = v.get<float>(); },
     "--nms", [](const ConfigLayer& c) { return as_double(c.nms_threshold); }},
    {"max_pixels", KeyType::kInteger, 1, 9.0e15, false, false, "largest image accepted, in pixels",
     [](ConfigLayer& c, const json& v) { c.max_pixels = v.get<int64_t>(); },
     "--max-pixels", [](const ConfigLayer& c) { return as_double(c.max_pixels); }},
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// A bound or a value in messages, shortest form ("%g": 1e+06, 0.5).
std::string num(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return std::string(b);
}

std::string range_text(const ConfigKey& k) {
  return std::string(k.lo_open ? "(" : "[") + num(k.lo) + ", " + (k.hi == kInf ? "inf" : num(k.hi)) + (k.hi_open ? ")" : "]");
}

// NaN is in no range.
bool in_range(const ConfigKey& k, double x) {
  const bool above_lo = k.lo_open ? x > k.lo : x >= k.lo;
  const bool below_hi = k.hi_open ? x < k.hi : x <= k.hi;
  return above_lo && below_hi;
}

std::string type_name(const json& v) {
  if (v.is_boolean()) return std::string("a boolean (") + (v.get<bool>() ? "true" : "false") + ")";
  if (v.is_string()) return "a string";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "the number " + v.dump();
}

// Checks one key against its row; empty on success, else the reason.
std::string check_key(const ConfigKey& k, const json& v) {
  const std::string want = std::string("\"") + k.name + "\" is the " + k.meaning;
  switch (k.type) {
    case KeyType::kString:
      if (!v.is_string()) return want + ": a string, not " + type_name(v);
      return {};
    case KeyType::kInteger:
      if (!v.is_number_integer())
        return want + ": an integer in " + range_text(k) + ", not " + type_name(v);
      break;
    case KeyType::kNumber:
      if (!v.is_number()) return want + ": a number in " + range_text(k) + ", not " + type_name(v);
      break;
  }
  const double x = v.is_number_unsigned() ? static_cast<double>(v.get<uint64_t>())
                   : v.is_number_integer() ? static_cast<double>(v.get<int64_t>())
                                           : v.get<double>();
  if (!in_range(k, x)) return want + ": it must be in " + range_text(k) + ", not " + v.dump();
  return {};
}

// The same row's range for a value given as a flag: empty when in range,
// else the message naming the flag (e.g. "--det-score must be within 0..1").
std::string check_flag(const ConfigKey& k, double x) {
  if (in_range(k, x)) return {};
  const std::string range = !k.lo_open && !k.hi_open ? num(k.lo) + ".." + num(k.hi) : range_text(k);
  return std::string(k.flag) + " must be within " + range + " (" + k.meaning + "), not " + num(x);
}

// Reads a regular file of at most `limit` bytes; a directory, a device or a
// FIFO is named as such (a directory given to --config used to end in
// "basic_filebuf::underflow").
Status read_small_file(const std::string& path, const std::string& what, std::string& out) {
  constexpr uintmax_t kLimit = 16u << 20;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status(ErrorCode::kNotFound, "cannot open " + what + " " + path + ": no such file");
  if (S_ISDIR(st.st_mode))
    return Status(ErrorCode::kInvalidArgument, what + " " + path + " is a directory; give the path of a JSON file");
  if (!S_ISREG(st.st_mode))
    return Status(ErrorCode::kInvalidArgument, what + " " + path + " is not a regular file (a device, FIFO or socket); give the path of a JSON file");
  if (static_cast<uintmax_t>(st.st_size) > kLimit)
    return Status(ErrorCode::kTooLarge, what + " " + path + " is over 16 MiB; that is not a " + what);
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kIo, "cannot read " + what + " " + path + " (permissions?)");
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return Status::Ok();
}

}  // namespace

Result<ConfigLayer> load_config_file(const std::string& path) {
  try {
    std::string text;
    FACEREC_RETURN_IF_ERROR(read_small_file(path, "config file", text));
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      return Status(ErrorCode::kInvalidArgument, "malformed config file " + path + ": " + e.what());
    }
    if (!j.is_object()) return Status(ErrorCode::kInvalidArgument, "malformed config file " + path + ": not a JSON object");
    ConfigLayer c;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const ConfigKey* row = nullptr;
      for (const ConfigKey& k : kConfigKeys)
        if (it.key() == k.name) row = &k;
      if (!row) {
        std::string msg = "config file " + path + ": unknown key '" + it.key() + "'";
        const ConfigKey* best = nullptr;
        size_t best_d = 3;  // suggest only a near miss (a typo)
        for (const ConfigKey& k : kConfigKeys)
          if (size_t d = edit_distance(it.key(), k.name); d < best_d) best_d = d, best = &k;
        if (best) msg += std::string(" (did you mean '") + best->name + "'?)";
        else {
          msg += "; known keys:";
          for (const ConfigKey& k : kConfigKeys) msg += std::string(" ") + k.name;
        }
        return Status(ErrorCode::kInvalidArgument, msg);
      }
      if (std::string why = check_key(*row, it.value()); !why.empty())
        return Status(ErrorCode::kInvalidArgument, "config file " + path + ": " + why);
      row->set(c, it.value());
    }
    return c;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument, "malformed config file " + path + ": " + e.what());
  }
}

ConfigLayer overlay(const ConfigLayer& top, const ConfigLayer& below) {
  ConfigLayer c = below;
  if (top.manifest) c.manifest = top.manifest;
  if (top.detector) c.detector = top.detector;
  if (top.embedder) c.embedder = top.embedder;
  if (top.db) c.db = top.db;
  if (top.threads) c.threads = top.threads;
  if (top.threshold) c.threshold = top.threshold;
  if (top.fpir) c.fpir = top.fpir;
  if (top.detect_policy) c.detect_policy = top.detect_policy;
  if (top.index) c.index = top.index;
  if (top.score_threshold) c.score_threshold = top.score_threshold;
  if (top.nms_threshold) c.nms_threshold = top.nms_threshold;
  if (top.max_pixels) c.max_pixels = top.max_pixels;
  return c;
}

Result<RecognizerConfig> resolve_config(const ConfigLayer& flags, const std::string& config_file) {
  ConfigLayer layer = flags;
  if (!config_file.empty()) {
    FACEREC_ASSIGN_OR_RETURN(ConfigLayer file, load_config_file(config_file));
    layer = overlay(flags, file);
  }
  // Every number against its row of kConfigKeys: one range per setting,
  // whether it came from a flag or the file.
  for (const ConfigKey& k : kConfigKeys) {
    if (!k.get) continue;
    if (std::optional<double> x = k.get(layer))
      if (std::string why = check_flag(k, *x); !why.empty()) return Status(ErrorCode::kInvalidArgument, why);
  }
  RecognizerConfig c;
  if (layer.manifest) c.manifest = *layer.manifest;
  if (layer.detector) c.detector = *layer.detector;
  if (layer.embedder) c.embedder = *layer.embedder;
  if (layer.db && !layer.db->empty()) c.db = *layer.db;
  if (layer.threads) c.threads = *layer.threads;
  if (layer.max_pixels) c.limits.max_pixels = *layer.max_pixels;
  if (layer.score_threshold) c.detection.score_threshold = *layer.score_threshold;
  if (layer.nms_threshold) c.detection.nms_threshold = *layer.nms_threshold;
  if (layer.threshold) c.threshold = *layer.threshold;
  if (layer.detect_policy) {
    FACEREC_ASSIGN_OR_RETURN(c.detect_policy, parse_detect_policy(*layer.detect_policy));
  }
  if (layer.index) {
    FACEREC_ASSIGN_OR_RETURN(c.index, parse_index_mode(*layer.index));
  }
  if (layer.fpir) c.fpir = *layer.fpir;
  return c;
}

Result<ThresholdChoice> resolve_threshold(const RecognizerConfig& config, const ModelSpec& embedder,
                                          size_t gallery_people, size_t gallery_templates, TemplateRule rule,
                                          std::optional<float> threshold, std::optional<double> fpir) {
  DecisionRequest r;
  r.fpir = fpir.value_or(config.fpir);
  r.threshold_override = threshold ? threshold : config.threshold;
  r.gallery_people = std::max<int64_t>(1, static_cast<int64_t>(gallery_people));
  r.gallery_templates = std::max<int64_t>(r.gallery_people, static_cast<int64_t>(gallery_templates));
  r.rule = rule;
  r.embedder = embedder.id;
  r.calibration = &embedder.open_set_calibration;
  // The manifest's per-comparison threshold (FAR = 1e-3 on LFW pairs) is
  // used only for an embedder without a calibration, and the reason says so.
  r.fallback_threshold = embedder.match_threshold;
  auto p = resolve_decision_policy(r);
  if (!p.ok()) {
    if (!r.threshold_override && embedder.match_threshold <= 0 && embedder.open_set_calibration.empty())
      return Status(ErrorCode::kInvalidArgument, "embedder '" + embedder.id +
                                                     "' has no calibration and no measured default threshold in the "
                                                     "manifest; pass --threshold");
    return p.status();
  }
  ThresholdChoice t;
  t.value = p->threshold;
  t.source = p->source == PolicySource::kOverride ? "given" : p->reason;
  t.policy = std::move(p).value();
  return t;
}

}  // namespace facerec
