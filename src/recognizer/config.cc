// RecognizerConfig: the JSON config file, the flags > file > defaults
// precedence, and the one place the match threshold is resolved.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "facerec/recognizer.h"
#include "facerec/runtime.h"

namespace facerec {

Result<ConfigLayer> load_config_file(const std::string& path) {
  using nlohmann::json;
  try {
    std::ifstream f(path);
    if (!f) return Status(ErrorCode::kNotFound, "cannot open config file " + path);
    json j = json::parse(f);
    if (!j.is_object()) return Status(ErrorCode::kInvalidArgument, "malformed config file " + path + ": not a JSON object");
    ConfigLayer c;
    auto str = [&](const char* key, std::optional<std::string>& out) {
      if (j.contains(key)) out = j[key].get<std::string>();
    };
    str("manifest", c.manifest);
    str("detector", c.detector);
    str("embedder", c.embedder);
    str("db", c.db);
    str("detect_policy", c.detect_policy);
    str("index", c.index);
    if (j.contains("threads")) c.threads = j["threads"].get<int>();
    if (j.contains("threshold")) c.threshold = j["threshold"].get<float>();
    if (j.contains("fpir")) c.fpir = j["fpir"].get<double>();
    if (j.contains("score_threshold")) c.score_threshold = j["score_threshold"].get<float>();
    if (j.contains("nms_threshold")) c.nms_threshold = j["nms_threshold"].get<float>();
    if (j.contains("max_pixels")) c.max_pixels = j["max_pixels"].get<int64_t>();
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
  RecognizerConfig c;
  if (layer.manifest) c.manifest = *layer.manifest;
  if (layer.detector) c.detector = *layer.detector;
  if (layer.embedder) c.embedder = *layer.embedder;
  if (layer.db && !layer.db->empty()) c.db = *layer.db;
  if (layer.threads) {
    if (*layer.threads < 0 || *layer.threads > kMaxIntraOpThreads)
      return Status(ErrorCode::kInvalidArgument, "--threads must be within 0.." + std::to_string(kMaxIntraOpThreads) +
                                                     " (0: one per core)");
    c.threads = *layer.threads;
  }
  if (layer.max_pixels) {
    if (*layer.max_pixels <= 0) return Status(ErrorCode::kInvalidArgument, "--max-pixels must be positive");
    c.limits.max_pixels = *layer.max_pixels;
  }
  if (layer.score_threshold) {
    if (!(*layer.score_threshold >= 0 && *layer.score_threshold <= 1))
      return Status(ErrorCode::kInvalidArgument, "--det-score must be within 0..1");
    c.detection.score_threshold = *layer.score_threshold;
  }
  if (layer.nms_threshold) {
    if (!(*layer.nms_threshold > 0 && *layer.nms_threshold <= 1))
      return Status(ErrorCode::kInvalidArgument, "--nms must be within (0, 1]");
    c.detection.nms_threshold = *layer.nms_threshold;
  }
  if (layer.threshold) {
    if (!(*layer.threshold >= -1 && *layer.threshold <= 1))
      return Status(ErrorCode::kInvalidArgument, "--threshold is a cosine similarity within -1..1");
    c.threshold = *layer.threshold;
  }
  if (layer.detect_policy) {
    FACEREC_ASSIGN_OR_RETURN(c.detect_policy, parse_detect_policy(*layer.detect_policy));
  }
  if (layer.index) {
    FACEREC_ASSIGN_OR_RETURN(c.index, parse_index_mode(*layer.index));
  }
  if (layer.fpir) {
    if (!(*layer.fpir > 0 && *layer.fpir < 1))
      return Status(ErrorCode::kInvalidArgument, "--fpir is a rate within (0, 1), e.g. 0.01 for 1% of strangers named");
    c.fpir = *layer.fpir;
  }
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
