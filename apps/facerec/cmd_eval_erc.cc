// facerec eval erc: judges face-quality scores by error-versus-reject curves
// on LFW pairs (the protocol is facerec/eval_erc_protocol.h's). Parses the
// flags, creates the optional pose and eye models, and prints the table or
// JSON and the plot.
#include <cmath>
#include <iostream>

#include "cmd_eval.h"
#include "facerec/eval_erc_protocol.h"

using nlohmann::json;

namespace facerec::cli {
namespace {

using evalcli::fail;

struct ErcArgs {
  CommonOptions o;
  std::string root, pairs, cache, plot, pose_model, eye_model;
  std::optional<float> probe_iod;
  double max_reject = 0.2;
};

// The FNMR at reject fraction r, NaN when the curve has no such point.
double fnmr_at(const eval::ErcCurve& c, double r) {
  for (const auto& p : c.points)
    if (std::abs(p.rejected - r) < 1e-9) return p.fnmr;
  return std::nan("");
}

Status write_plot(const ErcArgs& a, float threshold, const eval::ErcResult& r) {
  eval::PlotSpec spec;
  spec.title = "ERC on LFW pairs (FNMR at threshold " + std::to_string(threshold).substr(0, 5) + ")" +
               (a.probe_iod ? ", probes at " + std::to_string(static_cast<int>(*a.probe_iod)) + " px IOD" : "");
  spec.x_label = "fraction of same-person pairs rejected (lowest quality first)";
  spec.y_label = "FNMR";
  spec.x_max = a.max_reject;
  double top = 0;
  for (const auto& row : r.rows) top = std::max(top, row.curve.fnmr0);
  spec.y_max = std::max(0.01, top * 1.3);
  spec.y_min = 0;
  int k = 0;
  spec.series.push_back({"random rejection", {}, {}, cv::Scalar(160, 160, 160)});
  for (const auto& p : r.random_curve.points) {
    spec.series.back().x.push_back(p.rejected);
    spec.series.back().y.push_back(r.random_curve.fnmr0);
  }
  for (const auto& row : r.rows) {
    eval::PlotSeries s{row.name + (row.kept ? "" : " (not kept)"), {}, {}, eval::plot_colour(k++)};
    for (const auto& p : row.curve.points) { s.x.push_back(p.rejected); s.y.push_back(p.fnmr); }
    spec.series.push_back(std::move(s));
  }
  return eval::write_plot(spec, a.plot);
}

int run_erc(const ErcArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto pairs = eval::read_lfw_pairs(a.pairs);
  if (!pairs.ok()) return fail("erc", pairs.status());
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("erc", ctx.status());
  if (Status s = ctx->require_threshold(); !s.ok()) return fail("erc", s);
  // The quality models run in a runtime of their own (the recogniser's is private).
  auto qrt = create_onnxruntime();
  if (!qrt.ok()) return fail("erc", qrt.status());
  std::unique_ptr<PoseEstimator> pose;
  std::unique_ptr<EyeStateModel> eye;
  if (!a.pose_model.empty()) {
    auto p = PoseEstimator::create(**qrt, a.pose_model);
    if (!p.ok()) return fail("erc", p.status());
    pose = std::move(p).value();
  }
  if (!a.eye_model.empty()) {
    auto p = EyeStateModel::create(**qrt, a.eye_model);
    if (!p.ok()) return fail("erc", p.status());
    eye = std::move(p).value();
  }
  eval::ErcOptions opt;
  opt.root = a.root;
  opt.cache_file = a.cache;
  opt.probe_iod = a.probe_iod;
  opt.max_reject = a.max_reject;
  opt.threshold = ctx->threshold;
  opt.pose = pose.get();
  opt.eye = eye.get();
  evalcli::ProgressPrinter progress(/*log_every=*/500, /*tty_every=*/10, /*redraw_at_end=*/false);
  auto r = eval::run_erc_protocol(*ctx->analyzer, ctx->limits, *pairs, opt, progress.hooks());
  progress.finish();
  if (!r.ok()) return fail("erc", r.status());
  const float threshold = ctx->threshold;
  if (!a.plot.empty())
    if (Status st = write_plot(a, threshold, *r); !st.ok()) return fail("erc", st);

  if (a.o.json) {
    json jr = json::array();
    for (const auto& row : r->rows) {
      json pts = json::array();
      for (size_t i = 0; i < row.curve.points.size(); ++i)
        pts.push_back({{"rejected", row.curve.points[i].rejected}, {"fnmr", row.curve.points[i].fnmr},
                       {"quality_at_cut", std::isfinite(row.curve.quality_at_cut[i]) ? json(row.curve.quality_at_cut[i]) : json(nullptr)}});
      jr.push_back({{"score", row.name}, {"fnmr0", row.curve.fnmr0}, {"mean_fnmr", row.curve.mean_fnmr},
                    {"gain", row.curve.gain()}, {"kept", row.kept}, {"points", pts}});
    }
    json j = {{"threshold", threshold}, {"threshold_source", ctx->threshold_source}, {"genuine_pairs", r->genuine},
              {"impostor_pairs", r->impostors}, {"fmr_at_threshold", r->fmr}, {"random_gain_p95", r->random_gain_p95},
              {"probe_iod", a.probe_iod ? json(*a.probe_iod) : json(nullptr)}, {"centre_crops", r->centre_crops},
              {"fr_eye_open_class", r->eyes_measured ? json(r->open_eye_class) : json(nullptr)},
              {"detector", ctx->analyzer->detector().spec().id}, {"embedder", ctx->analyzer->embedder().spec().id},
              {"scores", jr}, {"seconds", evalcli::seconds_since(t0)}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("ERC on %zu LFW pairs (%lld same-person); detector %s, embedder %s\n", pairs->size(),
              static_cast<long long>(r->genuine), ctx->analyzer->detector().spec().id.c_str(),
              ctx->analyzer->embedder().spec().id.c_str());
  if (a.probe_iod) std::printf("  every pair's second image downscaled to about %.0f px between the eyes\n", *a.probe_iod);
  std::printf("  threshold %.3f (%s); FMR on the %d different-person pairs: %.4f\n", threshold, ctx->threshold_source.c_str(),
              r->impostors, r->fmr);
  std::printf("  random rejection: gain must exceed %.3f (95th percentile of 200 random rejections)\n", r->random_gain_p95);
  std::printf("  %-48s %8s %8s %8s %8s %7s  %s\n", "score", "FNMR@0", "@5%", "@10%", "@20%", "gain", "verdict");
  for (const auto& row : r->rows)
    std::printf("  %-48s %8.4f %8.4f %8.4f %8.4f %7.3f  %s\n", row.name.c_str(), row.curve.fnmr0, fnmr_at(row.curve, 0.05),
                fnmr_at(row.curve, 0.10), fnmr_at(row.curve, 0.20), row.curve.gain(),
                row.kept ? "kept" : "not better than random");
  if (r->eyes_measured) std::printf("  fr_eye: class %d taken as open (the LFW majority)\n", r->open_eye_class);
  if (r->centre_crops) std::printf("  %d images had no face even at confidence 0.2 and were centre-cropped\n", r->centre_crops);
  std::printf("  (%.1f s)\n", evalcli::seconds_since(t0));
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
