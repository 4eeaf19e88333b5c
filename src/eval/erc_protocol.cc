// Face-quality scores judged by ERC on LFW pairs, with the measurement cache
// (facerec/eval_erc_protocol.h).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "facerec/align.h"
#include "facerec/embed.h"
#include "facerec/eval_erc_protocol.h"
#include "facerec/eval_lfw.h"
#include "facerec/eval_templates.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

std::string cache_header(const FaceAnalyzer& analyzer, const ErcOptions& o) {
  std::ostringstream h;
  h << "# facerec eval erc cache v1 detector=" << analyzer.detector().spec().id
    << " embedder=" << analyzer.embedder().spec().id << " probe_iod=" << (o.probe_iod ? *o.probe_iod : 0.f)
    << " pose=" << (o.pose != nullptr) << " eye=" << (o.eye != nullptr);
  return h.str();
}

// NaN is written as -999 ("nan" reads back through strtof, not >>).
constexpr float kMissing = -999.f;

// False for a missing file, another header or a damaged line: the cache is
// then ignored (everything is measured again).
bool load_cache(const std::string& path, const std::string& header, std::map<std::string, ErcMeasurement>& out) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line) || line != header) return false;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string key;
    ErcMeasurement m;
    int dim = 0;
    if (!std::getline(s, key, '\t')) return false;
    s >> m.source >> m.q.inter_ocular_px >> m.q.frontal >> m.q.sharpness >> m.q.norm >> m.q.det_score >> m.yaw >> m.pitch >>
        m.roll >> m.eye0 >> m.eye1 >> m.e.norm >> dim;
    if (!s || dim <= 0 || dim > 4096) return false;
    m.e.unit.resize(static_cast<size_t>(dim));
    for (auto& v : m.e.unit) s >> v;
    if (!s) return false;
    for (float* v : {&m.q.inter_ocular_px, &m.yaw, &m.pitch, &m.roll, &m.eye0, &m.eye1})
      if (*v == kMissing) *v = NAN;
    out[key] = std::move(m);
  }
  return true;
}

std::string num(float v) {
  if (std::isnan(v)) return "-999";
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// Written to path + ".tmp" and renamed, so an interrupted write leaves the old file.
Status save_cache(const std::string& path, const std::string& header, const std::map<std::string, ErcMeasurement>& all) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << header << "\n";
    for (const auto& [key, m] : all) {
      f << key << "\t" << m.source << " " << num(m.q.inter_ocular_px) << " " << num(m.q.frontal) << " " << num(m.q.sharpness)
        << " " << num(m.q.norm) << " " << num(m.q.det_score) << " " << num(m.yaw) << " " << num(m.pitch) << " " << num(m.roll)
        << " " << num(m.eye0) << " " << num(m.eye1) << " " << num(m.e.norm) << " " << m.e.unit.size();
      for (float v : m.e.unit) f << " " << num(v);
      f << "\n";
    }
    if (!f) return Status(ErrorCode::kIo, "cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot write " + path + ": " + ec.message());
  return Status::Ok();
}

// Measures one image (degraded to probe_iod when asked).
Result<ErcMeasurement> measure(const FaceAnalyzer& analyzer, const ImageLimits& limits, const ErcOptions& o,
                               const std::string& path, bool degrade) {
  FACEREC_ASSIGN_OR_RETURN(cv::Mat loaded, load_image(path, limits));  // every image is part of the protocol
  cv::Mat image = loaded;
  if (degrade) {
    const double s = *o.probe_iod / kLfwInterOcular;
    cv::resize(loaded, image, cv::Size(), s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  ErcMeasurement m;
  FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, analyzer.detect(image));
  if (faces.empty()) {
    DetectorOptions retry = analyzer.detector().options();
    retry.score_threshold = 0.2f;
    FACEREC_ASSIGN_OR_RETURN(faces, analyzer.detect(image, retry));
    m.source = 1;
  }
  Face face;
  if (!faces.empty()) {
    face = faces[static_cast<size_t>(most_central_face(faces, image.size()))];
  } else {
    m.source = 2;
    for (int j = 0; j < 5; ++j) face.landmarks[j] = {kLfwMeanLandmarks[j][0] * image.cols, kLfwMeanLandmarks[j][1] * image.rows};
    face.box = cv::Rect2f(image.cols * 0.25f, image.rows * 0.25f, image.cols * 0.5f, image.rows * 0.5f);
    face.score = 0.f;
  }
  const int size = analyzer.embedder().spec().input.width;
  cv::Mat crop = align_face(image, face, size);
  FACEREC_ASSIGN_OR_RETURN(std::vector<AnalyzedFace> embs, analyzer.embed_aligned({crop}));
  if (embs.empty()) return Status(ErrorCode::kInternal, path + ": the embedder returned no embedding");
  m.e = std::move(embs[0].embedding);
  m.q = measure_quality(&face, crop, m.e);
  if (o.pose) {
    auto p = o.pose->estimate(image, face);
    if (p.ok()) { m.yaw = p->yaw; m.pitch = p->pitch; m.roll = p->roll; }
  }
  if (o.eye) {
    cv::Mat c112 = crop;
    if (crop.cols != 112) cv::resize(crop, c112, cv::Size(112, 112));
    auto p = o.eye->class0_probability(c112);
    if (p.ok()) { m.eye0 = (*p)[0]; m.eye1 = (*p)[1]; }
  }
  return m;
}

// A candidate quality score: higher = better; NaN where it cannot be computed
// (such faces count as the lowest quality).
struct Candidate {
  std::string name;
  std::function<float(const ErcMeasurement&)> score;
};

}  // namespace

Result<ErcResult> run_erc_protocol(const FaceAnalyzer& analyzer, const ImageLimits& limits, std::span<const LfwPair> pairs,
                                   const ErcOptions& o, const ProtocolHooks& hooks) {
  if (pairs.empty()) return Status(ErrorCode::kInvalidArgument, "no LFW pairs to evaluate");
  if (!(o.max_reject > 0 && o.max_reject < 1)) return Status(ErrorCode::kInvalidArgument, "max_reject must be within (0, 1)");
  if (o.probe_iod && !(*o.probe_iod > 0)) return Status(ErrorCode::kInvalidArgument, "probe_iod must be positive");
  const fs::path root = lfw_images_root(o.root, fs::path(pairs[0].image1).parent_path().string());

  // Keys: "<relative path>" or "<relative path>@small" for a degraded probe.
  auto key_of = [](const std::string& rel, bool degrade) { return degrade ? rel + "@small" : rel; };
  std::vector<std::pair<std::string, bool>> wanted;
  {
    std::map<std::string, bool> seen;
    for (const auto& p : pairs) {
      for (int k = 0; k < 2; ++k) {
        const bool degrade = o.probe_iod && k == 1;
        const std::string& rel = k == 0 ? p.image1 : p.image2;
        if (seen.emplace(key_of(rel, degrade), true).second) wanted.emplace_back(rel, degrade);
      }
    }
  }
  ErcResult out;
  const std::string header = cache_header(analyzer, o);
  std::map<std::string, ErcMeasurement> measured;
  if (!o.cache_file.empty() && load_cache(o.cache_file, header, measured)) {
    out.cached = measured.size();
    hooks.tell("read " + std::to_string(measured.size()) + " cached measurements from " + o.cache_file);
  } else {
    measured.clear();
  }
  size_t todo = 0;
  for (const auto& [rel, degrade] : wanted) todo += !measured.count(key_of(rel, degrade));
  size_t done = 0;
  bool stopped = false;
  for (const auto& [rel, degrade] : wanted) {
    const std::string key = key_of(rel, degrade);
    if (measured.count(key)) continue;
    if (hooks.stop()) { stopped = true; break; }
    auto m = measure(analyzer, limits, o, (root / rel).string(), degrade);
    if (!m.ok()) return Status(m.status().code(), rel + ": " + m.status().message());
    measured[key] = std::move(m).value();
    ++done;
    if (!o.cache_file.empty() && done % 500 == 0)  // a long run keeps what it measured if stopped
      FACEREC_RETURN_IF_ERROR(save_cache(o.cache_file, header, measured));
    hooks.step("measuring", done, todo);
  }
  if (!o.cache_file.empty() && done) FACEREC_RETURN_IF_ERROR(save_cache(o.cache_file, header, measured));
  if (stopped || hooks.stop()) return Status(ErrorCode::kCancelled, "interrupted (measurements so far are cached)");

  // Which eye-model class is "open": the majority class on LFW, whose eyes
  // are nearly all open.
  double class0 = 0;
  int eyes = 0;
  for (const auto& [k, m] : measured)
    if (!std::isnan(m.eye0)) { class0 += m.eye0 + m.eye1; eyes += 2; }
  const bool open_is_class0 = eyes && class0 / eyes > 0.5;
  out.eyes_measured = eyes > 0;
  out.open_eye_class = open_is_class0 ? 0 : 1;
  auto p_open = [open_is_class0](float p0) { return open_is_class0 ? p0 : 1.f - p0; };

  std::vector<Candidate> candidates = {
      {"fallback (size x frontal x sharpness, before)",
       [](const ErcMeasurement& m) {
         return std::min(1.f, m.q.inter_ocular_px / 40.f) * m.q.frontal * std::min(1.f, m.q.sharpness / 300.f);
       }},
      {"inter-ocular distance", [](const ErcMeasurement& m) { return m.q.inter_ocular_px; }},
      {"frontal (landmarks)", [](const ErcMeasurement& m) { return m.q.frontal; }},
      {"sharpness (Laplacian variance)", [](const ErcMeasurement& m) { return m.q.sharpness; }},
      {"embedding norm", [](const ErcMeasurement& m) { return m.q.norm; }},
      {"detector confidence", [](const ErcMeasurement& m) { return m.q.det_score; }},
      {"size x frontal", [](const ErcMeasurement& m) { return std::min(1.f, m.q.inter_ocular_px / 40.f) * m.q.frontal; }},
  };
  if (o.pose) {
    candidates.push_back({"fr_pose: -max(|yaw|, |pitch|)", [](const ErcMeasurement& m) {
                            return -std::max(std::abs(m.yaw), std::abs(m.pitch));
                          }});
    candidates.push_back({"fr_pose: -|yaw|", [](const ErcMeasurement& m) { return -std::abs(m.yaw); }});
  }
  if (o.eye)
    candidates.push_back(
        {"fr_eye: min P(open)", [p_open](const ErcMeasurement& m) { return std::min(p_open(m.eye0), p_open(m.eye1)); }});

  // Pairs: score, truth, and the two measurements.
  const float threshold = o.threshold;
  std::vector<std::pair<const ErcMeasurement*, const ErcMeasurement*>> pm;
  std::vector<QualityPair> base;
  for (const auto& p : pairs) {
    const ErcMeasurement& x = measured.at(key_of(p.image1, false));
    const ErcMeasurement& y = measured.at(key_of(p.image2, o.probe_iod.has_value()));
    FACEREC_ASSIGN_OR_RETURN(float s, cosine(x.e, y.e));
    base.push_back({s, p.same, 0.f});
    pm.emplace_back(&x, &y);
    if (!p.same) { ++out.impostors; out.false_matches += s >= threshold; }
  }
  for (const auto& [k, m] : measured) out.centre_crops += m.source == 2;

  std::vector<double> fractions;
  for (int i = 0; i <= static_cast<int>(std::lround(o.max_reject * 100)); ++i) fractions.push_back(i / 100.0);
  auto pair_quality = [&](const Candidate& c) {
    std::vector<QualityPair> qp = base;
    for (size_t i = 0; i < qp.size(); ++i) {
      float q1 = c.score(*pm[i].first), q2 = c.score(*pm[i].second);
      if (std::isnan(q1)) q1 = -std::numeric_limits<float>::infinity();
      if (std::isnan(q2)) q2 = -std::numeric_limits<float>::infinity();
      qp[i].quality = std::min(q1, q2);
    }
    return qp;
  };
  // Random rejection, 200 times: the gain a score must beat.
  std::vector<double> random_gains;
  std::mt19937_64 rng(20261130);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int r = 0; r < 200; ++r) {
    std::vector<QualityPair> qp = base;
    for (auto& p : qp) p.quality = u(rng);
    auto c = erc(qp, threshold, fractions);
    random_gains.push_back(c.gain());
    if (r == 0) out.random_curve = c;
  }
  std::sort(random_gains.begin(), random_gains.end());
  out.random_gain_p95 = random_gains[static_cast<size_t>(0.95 * (random_gains.size() - 1))];

  for (const auto& c : candidates) {
    auto curve = erc(pair_quality(c), threshold, fractions);
    const bool kept = curve.gain() > out.random_gain_p95;
    out.rows.push_back({c.name, std::move(curve), kept});
  }
  out.genuine = out.rows.empty() ? 0 : out.rows[0].curve.genuine;
  out.fmr = out.impostors ? static_cast<double>(out.false_matches) / out.impostors : NAN;
  return out;
}

}  // namespace facerec::eval
