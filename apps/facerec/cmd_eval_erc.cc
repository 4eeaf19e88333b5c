// facerec eval erc: judges face-quality scores by error-versus-reject curves
// on LFW pairs (eval::erc()), as the MagFace paper does. Each candidate score
// is kept only if rejecting its lowest values lowers FNMR at the fixed
// FMR = 1e-3 threshold by more than rejecting at random does (the 95th
// percentile of 200 random rejections).
//
// Every image's embedding and quality measurements are cached (--cache), so
// that new combinations of scores cost no model run.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "app.h"
#include "facerec/align.h"
#include "facerec/eval.h"
#include "facerec/quality.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec::cli {
namespace {

struct ErcArgs {
  CommonOptions o;
  std::string root, pairs, cache, plot, pose_model, eye_model;
  std::optional<float> probe_iod;
  double max_reject = 0.2;
};

// LFW deep-funneled faces sit at about 41.5 px between the eyes in the
// 250x250 image (the mean landmarks cmd_eval.cc's centre crop uses:
// (0.5838 - 0.4179) x 250).
constexpr float kLfwInterOcular = 41.5f;
// Same mean landmarks, for images where no face is found at all.
constexpr float kLfwMeanLandmarks[5][2] = {
    {0.4179f, 0.4530f}, {0.5838f, 0.4497f}, {0.5026f, 0.5433f}, {0.4336f, 0.6293f}, {0.5786f, 0.6272f}};

// One image as measured: cached line by line.
struct Measured {
  int source = 0;  // 0 detected, 1 found on the low-confidence retry, 2 centre crop
  QualityFeatures q;
  float yaw = NAN, pitch = NAN, roll = NAN;
  float eye0 = NAN, eye1 = NAN;  // class-0 probability per eye
  Embedding e;
};

std::string cache_header(const Context& ctx, const ErcArgs& a) {
  std::ostringstream h;
  h << "# facerec eval erc cache v1 detector=" << ctx.analyzer->detector().spec().id
    << " embedder=" << ctx.analyzer->embedder().spec().id << " probe_iod=" << (a.probe_iod ? *a.probe_iod : 0.f)
    << " pose=" << !a.pose_model.empty() << " eye=" << !a.eye_model.empty();
  return h.str();
}

bool load_cache(const std::string& path, const std::string& header, std::map<std::string, Measured>& out) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line) || line != header) return false;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string key;
    Measured m;
    int dim = 0;
    if (!std::getline(s, key, '\t')) return false;
    s >> m.source >> m.q.inter_ocular_px >> m.q.frontal >> m.q.sharpness >> m.q.norm >> m.q.det_score >> m.yaw >> m.pitch >>
        m.roll >> m.eye0 >> m.eye1 >> m.e.norm >> dim;
    if (!s || dim <= 0 || dim > 4096) return false;
    m.e.unit.resize(static_cast<size_t>(dim));
    for (auto& v : m.e.unit) s >> v;
    if (!s) return false;
    out[key] = std::move(m);
  }
  return true;
}

// NaN-safe text for the cache ("nan" reads back through strtof, not >>).
std::string num(float v) {
  if (std::isnan(v)) return "-999";
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

Status save_cache(const std::string& path, const std::string& header, const std::map<std::string, Measured>& all) {
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

void unmark_missing(Measured& m) {
  for (float* v : {&m.q.inter_ocular_px, &m.yaw, &m.pitch, &m.roll, &m.eye0, &m.eye1})
    if (*v == -999.f) *v = NAN;
}

// Measures one image (degraded to probe_iod when asked). A Status only for
// failures that must stop the run.
Result<Measured> measure(Context& ctx, const ErcArgs& a, const std::string& path, bool degrade,
                         const PoseEstimator* pose, const EyeStateModel* eye) {
  auto img = load_image(path, ctx.limits);
  if (!img.ok()) return img.status();  // every image is part of the protocol
  cv::Mat image = *img;
  if (degrade) {
    const double s = *a.probe_iod / kLfwInterOcular;
    cv::resize(*img, image, cv::Size(), s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  Measured m;
  auto faces = ctx.analyzer->detect(image);
  if (!faces.ok()) return faces.status();
  if (faces->empty()) {
    DetectorOptions retry = ctx.analyzer->detector().options();
    retry.score_threshold = 0.2f;
    faces = ctx.analyzer->detect(image, retry);
    if (!faces.ok()) return faces.status();
    m.source = 1;
  }
  Face face;
  if (!faces->empty()) {
    face = (*faces)[static_cast<size_t>(most_central_face(*faces, image.size()))];
  } else {
    m.source = 2;
    for (int j = 0; j < 5; ++j) face.landmarks[j] = {kLfwMeanLandmarks[j][0] * image.cols, kLfwMeanLandmarks[j][1] * image.rows};
    face.box = cv::Rect2f(image.cols * 0.25f, image.rows * 0.25f, image.cols * 0.5f, image.rows * 0.5f);
    face.score = 0.f;
  }
  const int size = ctx.analyzer->embedder().spec().input.width;
  cv::Mat crop = align_face(image, face, size);
  auto embs = ctx.analyzer->embed_aligned({crop});
  if (!embs.ok()) return embs.status();
  m.e = std::move((*embs)[0].embedding);
  m.q = measure_quality(&face, crop, m.e);
  if (pose) {
    auto p = pose->estimate(image, face);
    if (p.ok()) { m.yaw = p->yaw; m.pitch = p->pitch; m.roll = p->roll; }
  }
  if (eye) {
    cv::Mat c112 = crop;
    if (crop.cols != 112) cv::resize(crop, c112, cv::Size(112, 112));
    auto p = eye->class0_probability(c112);
    if (p.ok()) { m.eye0 = (*p)[0]; m.eye1 = (*p)[1]; }
  }
  return m;
}

// A candidate quality score: higher = better; NaN where it cannot be computed
// (such faces count as the lowest quality).
struct Candidate {
  std::string name;
  std::function<float(const Measured&)> score;
};

int fail(const Status& s) {
  std::cerr << "facerec eval erc: " << s.to_string() << "\n";
  return s.code() == ErrorCode::kCancelled ? kExitInterrupted : kExitError;
}

int run_erc(const ErcArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto pairs = eval::read_lfw_pairs(a.pairs);
  if (!pairs.ok()) return fail(pairs.status());
  fs::path root = a.root;
  std::error_code ec;
  const std::string first = fs::path((*pairs)[0].image1).parent_path().string();
  if (!fs::is_directory(root / first, ec) && fs::is_directory(root / "images" / first, ec)) root /= "images";

  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail(ctx.status());
  if (Status s = ctx->require_threshold(); !s.ok()) return fail(s);
  // The quality models run in a runtime of their own (the recogniser's is private).
  auto qrt = create_onnxruntime();
  if (!qrt.ok()) return fail(qrt.status());
  std::unique_ptr<PoseEstimator> pose;
  std::unique_ptr<EyeStateModel> eye;
  if (!a.pose_model.empty()) {
    auto p = PoseEstimator::create(**qrt, a.pose_model);
    if (!p.ok()) return fail(p.status());
    pose = std::move(p).value();
  }
  if (!a.eye_model.empty()) {
    auto p = EyeStateModel::create(**qrt, a.eye_model);
    if (!p.ok()) return fail(p.status());
    eye = std::move(p).value();
  }

  // Keys: "<relative path>" or "<relative path>@small" for a degraded probe.
  auto key_of = [&](const std::string& rel, bool degrade) { return degrade ? rel + "@small" : rel; };
  std::vector<std::pair<std::string, bool>> wanted;
  {
    std::map<std::string, bool> seen;
    for (const auto& p : *pairs) {
      for (int k = 0; k < 2; ++k) {
        const bool degrade = a.probe_iod && k == 1;
        const std::string& rel = k == 0 ? p.image1 : p.image2;
        if (seen.emplace(key_of(rel, degrade), true).second) wanted.emplace_back(rel, degrade);
      }
    }
  }
  const std::string header = cache_header(*ctx, a);
  std::map<std::string, Measured> measured;
  if (!a.cache.empty() && load_cache(a.cache, header, measured)) {
    for (auto& [k, m] : measured) unmark_missing(m);
    std::fprintf(stderr, "read %zu cached measurements from %s\n", measured.size(), a.cache.c_str());
  } else {
    measured.clear();
  }
  size_t todo = 0;
  for (const auto& [rel, degrade] : wanted) todo += !measured.count(key_of(rel, degrade));
  size_t done = 0;
  const bool tty = isatty(STDERR_FILENO);
  for (const auto& [rel, degrade] : wanted) {
    const std::string key = key_of(rel, degrade);
    if (measured.count(key)) continue;
    if (g_interrupted) break;
    auto m = measure(*ctx, a, (root / rel).string(), degrade, pose.get(), eye.get());
    if (!m.ok()) return fail(Status(m.status().code(), rel + ": " + m.status().message()));
    measured[key] = std::move(m).value();
    ++done;
    if (!a.cache.empty() && done % 500 == 0) {  // a long run keeps what it measured if stopped
      if (Status s = save_cache(a.cache, header, measured); !s.ok()) return fail(s);
    }
    if (tty && done % 10 == 0) std::fprintf(stderr, "\r\033[Kmeasuring %zu/%zu", done, todo);
    else if (!tty && done % 500 == 0) std::fprintf(stderr, "measuring %zu/%zu\n", done, todo);
  }
  if (tty && done) std::fprintf(stderr, "\r\033[K");
  if (!a.cache.empty() && done) {
    if (Status s = save_cache(a.cache, header, measured); !s.ok()) return fail(s);
  }
  if (g_interrupted) return fail(Status(ErrorCode::kCancelled, "interrupted (measurements so far are cached)"));

  // Which fr_eye class is "open": the majority class on LFW, whose eyes are
  // nearly all open.
  double class0 = 0;
  int eyes = 0;
  for (const auto& [k, m] : measured)
    if (!std::isnan(m.eye0)) { class0 += m.eye0 + m.eye1; eyes += 2; }
  const bool open_is_class0 = eyes && class0 / eyes > 0.5;
  auto p_open = [open_is_class0](float p0) { return open_is_class0 ? p0 : 1.f - p0; };

  std::vector<Candidate> candidates = {
      {"fallback (size x frontal x sharpness, before)",
       [](const Measured& m) {
         return std::min(1.f, m.q.inter_ocular_px / 40.f) * m.q.frontal * std::min(1.f, m.q.sharpness / 300.f);
       }},
      {"inter-ocular distance", [](const Measured& m) { return m.q.inter_ocular_px; }},
      {"frontal (landmarks)", [](const Measured& m) { return m.q.frontal; }},
      {"sharpness (Laplacian variance)", [](const Measured& m) { return m.q.sharpness; }},
      {"embedding norm", [](const Measured& m) { return m.q.norm; }},
      {"detector confidence", [](const Measured& m) { return m.q.det_score; }},
      {"size x frontal", [](const Measured& m) { return std::min(1.f, m.q.inter_ocular_px / 40.f) * m.q.frontal; }},
  };
  if (pose) {
    candidates.push_back({"fr_pose: -max(|yaw|, |pitch|)", [](const Measured& m) {
                            return -std::max(std::abs(m.yaw), std::abs(m.pitch));
                          }});
    candidates.push_back({"fr_pose: -|yaw|", [](const Measured& m) { return -std::abs(m.yaw); }});
  }
  if (eye)
    candidates.push_back({"fr_eye: min P(open)", [p_open](const Measured& m) { return std::min(p_open(m.eye0), p_open(m.eye1)); }});

  // Pairs: score, truth, and the two measurements.
  const float threshold = ctx->threshold;
  std::vector<std::pair<const Measured*, const Measured*>> pm;
  std::vector<eval::QualityPair> base;
  int impostors = 0, false_matches = 0, crops = 0;
  for (const auto& p : *pairs) {
    const Measured& x = measured.at(key_of(p.image1, false));
    const Measured& y = measured.at(key_of(p.image2, a.probe_iod.has_value()));
    auto sc = cosine(x.e, y.e);
    if (!sc.ok()) { std::cerr << "facerec eval erc: " << sc.status().to_string() << "\n"; return kExitError; }
    const float s = *sc;
    base.push_back({s, p.same, 0.f});
    pm.emplace_back(&x, &y);
    if (!p.same) { ++impostors; false_matches += s >= threshold; }
  }
  for (const auto& [k, m] : measured) crops += m.source == 2;

  std::vector<double> fractions;
  for (int i = 0; i <= static_cast<int>(std::lround(a.max_reject * 100)); ++i) fractions.push_back(i / 100.0);
  auto pair_quality = [&](const Candidate& c) {
    std::vector<eval::QualityPair> qp = base;
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
  eval::ErcCurve random_curve;
  for (int r = 0; r < 200; ++r) {
    std::vector<eval::QualityPair> qp = base;
    for (auto& p : qp) p.quality = u(rng);
    auto c = eval::erc(qp, threshold, fractions);
    random_gains.push_back(c.gain());
    if (r == 0) random_curve = c;
  }
  std::sort(random_gains.begin(), random_gains.end());
  const double random_p95 = random_gains[static_cast<size_t>(0.95 * (random_gains.size() - 1))];

  struct Row {
    std::string name;
    eval::ErcCurve curve;
    bool kept;
  };
  std::vector<Row> rows;
  for (const auto& c : candidates) {
    auto curve = eval::erc(pair_quality(c), threshold, fractions);
    rows.push_back({c.name, curve, curve.gain() > random_p95});
  }

  auto at = [&](const eval::ErcCurve& c, double r) {
    for (const auto& p : c.points)
      if (std::abs(p.rejected - r) < 1e-9) return p.fnmr;
    return std::nan("");
  };
  if (!a.plot.empty()) {
    eval::PlotSpec spec;
    spec.title = "ERC on LFW pairs (FNMR at threshold " + std::to_string(threshold).substr(0, 5) + ")" +
                 (a.probe_iod ? ", probes at " + std::to_string(static_cast<int>(*a.probe_iod)) + " px IOD" : "");
    spec.x_label = "fraction of same-person pairs rejected (lowest quality first)";
    spec.y_label = "FNMR";
    spec.x_max = a.max_reject;
    double top = 0;
    for (const auto& r : rows) top = std::max(top, r.curve.fnmr0);
    spec.y_max = std::max(0.01, top * 1.3);
    spec.y_min = 0;
    int k = 0;
    spec.series.push_back({"random rejection", {}, {}, cv::Scalar(160, 160, 160)});
    for (const auto& p : random_curve.points) { spec.series.back().x.push_back(p.rejected); spec.series.back().y.push_back(random_curve.fnmr0); }
    for (const auto& r : rows) {
      eval::PlotSeries s{r.name + (r.kept ? "" : " (not kept)"), {}, {}, eval::plot_colour(k++)};
      for (const auto& p : r.curve.points) { s.x.push_back(p.rejected); s.y.push_back(p.fnmr); }
      spec.series.push_back(std::move(s));
    }
    if (Status st = eval::write_plot(spec, a.plot); !st.ok()) return fail(st);
  }

  const double fmr = impostors ? static_cast<double>(false_matches) / impostors : NAN;
  if (a.o.json) {
    json jr = json::array();
    for (const auto& r : rows) {
      json pts = json::array();
      for (size_t i = 0; i < r.curve.points.size(); ++i)
        pts.push_back({{"rejected", r.curve.points[i].rejected}, {"fnmr", r.curve.points[i].fnmr},
                       {"quality_at_cut", std::isfinite(r.curve.quality_at_cut[i]) ? json(r.curve.quality_at_cut[i]) : json(nullptr)}});
      jr.push_back({{"score", r.name}, {"fnmr0", r.curve.fnmr0}, {"mean_fnmr", r.curve.mean_fnmr}, {"gain", r.curve.gain()},
                    {"kept", r.kept}, {"points", pts}});
    }
    json j = {{"threshold", threshold}, {"threshold_source", ctx->threshold_source}, {"genuine_pairs", rows.empty() ? 0 : rows[0].curve.genuine},
              {"impostor_pairs", impostors}, {"fmr_at_threshold", fmr}, {"random_gain_p95", random_p95},
              {"probe_iod", a.probe_iod ? json(*a.probe_iod) : json(nullptr)}, {"centre_crops", crops},
              {"fr_eye_open_class", eyes ? json(open_is_class0 ? 0 : 1) : json(nullptr)},
              {"detector", ctx->analyzer->detector().spec().id}, {"embedder", ctx->analyzer->embedder().spec().id},
              {"scores", jr}, {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("ERC on %zu LFW pairs (%lld same-person); detector %s, embedder %s\n", pairs->size(),
              static_cast<long long>(rows.empty() ? 0 : rows[0].curve.genuine), ctx->analyzer->detector().spec().id.c_str(),
              ctx->analyzer->embedder().spec().id.c_str());
  if (a.probe_iod) std::printf("  every pair's second image downscaled to about %.0f px between the eyes\n", *a.probe_iod);
  std::printf("  threshold %.3f (%s); FMR on the %d different-person pairs: %.4f\n", threshold, ctx->threshold_source.c_str(),
              impostors, fmr);
  std::printf("  random rejection: gain must exceed %.3f (95th percentile of 200 random rejections)\n", random_p95);
  std::printf("  %-48s %8s %8s %8s %8s %7s  %s\n", "score", "FNMR@0", "@5%", "@10%", "@20%", "gain", "verdict");
  for (const auto& r : rows)
    std::printf("  %-48s %8.4f %8.4f %8.4f %8.4f %7.3f  %s\n", r.name.c_str(), r.curve.fnmr0, at(r.curve, 0.05), at(r.curve, 0.10),
                at(r.curve, 0.20), r.curve.gain(), r.kept ? "kept" : "not better than random");
  if (eyes) std::printf("  fr_eye: class %d taken as open (the LFW majority)\n", open_is_class0 ? 0 : 1);
  if (crops) std::printf("  %d images had no face even at confidence 0.2 and were centre-cropped\n", crops);
  std::printf("  (%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return kExitOk;
}

}  // namespace

void register_eval_erc(CLI::App& eval, std::function<void(int)> set_rc) {
  static ErcArgs a;
  auto* e = eval.add_subcommand("erc", "judge face-quality scores by error-versus-reject curves on LFW pairs");
  e->add_option("--root", a.root, "LFW images: a folder with one sub-folder per person (or its parent)")->required();
  e->add_option("--pairs", a.pairs, "the pairs file, e.g. pairs.txt")->required();
  e->add_option("--cache", a.cache, "cache every image's embedding and measurements here (reused when models match)");
  e->add_option("--pose-model", a.pose_model, "fr_pose.onnx (faceplugin-face-recognition-js) to judge head pose too");
  e->add_option("--eye-model", a.eye_model, "fr_eye.onnx (faceplugin-face-recognition-js) to judge eye state too");
  e->add_option("--probe-iod", a.probe_iod, "downscale each pair's second image so its face is about this many px between the eyes")
      ->check(CLI::Range(2.0, 200.0));
  e->add_option("--max-reject", a.max_reject, "largest fraction rejected on the curve (default 0.2)")->check(CLI::Range(0.01, 0.9));
  e->add_option("--plot", a.plot, "write the curves as a PNG here");
  e->add_flag("--json", a.o.json, "print one JSON object instead of the table");
  add_model_options(*e, a.o);
  add_threshold_option(*e, a.o);
  e->callback([set_rc] { set_rc(run_erc(a)); });
}

}  // namespace facerec::cli
