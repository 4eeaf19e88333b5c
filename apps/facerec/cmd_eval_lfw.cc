// facerec eval lfw: LFW 10-fold verification (the protocol is
// facerec/eval_lfw.h's); prints the summary or JSON, the ROC plot and the
// score dump.
#include <cmath>
#include <fstream>
#include <iostream>

#include "cmd_eval.h"
#include "facerec/eval_lfw.h"

using nlohmann::json;

namespace facerec::cli::evalcli {
namespace {

struct LfwArgs {
  CommonOptions o;
  EvalOutput out;
  std::string root, pairs;
  std::string cache;  // templates kept here and reused (the file --lfw-open-set and calibrate use)
  bool flip = false;
  float retry_score = 0.2f;
};

Status write_dump(const std::string& file, const std::vector<eval::LfwPair>& pairs, const eval::LfwVerificationResult& r) {
  std::ofstream d(file);
  d << "# fold\tsame\tscore\timage1\timage2 (fold 0-based; score: cosine)\n";
  for (size_t i = 0; i < r.scored.size(); ++i) {
    char s[32];
    std::snprintf(s, sizeof s, "%.9g", r.scored[i].score);
    d << r.folds[i] << "\t" << (r.scored[i].same ? 1 : 0) << "\t" << s << "\t" << pairs[i].image1 << "\t" << pairs[i].image2
      << "\n";
  }
  if (!d) return Status(ErrorCode::kIo, "cannot write " + file);
  return Status::Ok();
}

Status write_roc_plot(const std::string& file, const Context& ctx, const LfwArgs& a, const eval::LfwVerificationResult& r) {
  const auto curve = eval::roc(r.scored);
  int64_t n_diff = 0;
  for (const auto& p : r.scored) n_diff += !p.same;
  eval::PlotSpec spec;
  spec.title = "LFW ROC (" + std::to_string(r.scored.size()) + " pairs)";
  spec.x_label = "false accept rate (log scale)";
  spec.y_label = "true accept rate";
  spec.log_x = true;
  spec.x_min = std::pow(10.0, std::floor(std::log10(1.0 / static_cast<double>(std::max<int64_t>(n_diff, 1)))));
  spec.x_max = 1.0;
  eval::PlotSeries s{ctx.analyzer->embedder().spec().id + (a.flip ? " +flip" : "") + "  AUC " + fixed(r.auc, 4), {}, {},
                     eval::plot_colour(0)};
  double lowest = 1.0;
  for (const auto& p : curve) {
    s.x.push_back(p.far);
    s.y.push_back(p.tar);
    if (p.far >= spec.x_min) lowest = std::min(lowest, p.tar);
  }
  spec.y_min = rate_floor(lowest);
  spec.series.push_back(std::move(s));
  return eval::write_plot(spec, file);
}

void print_json(const Context& ctx, const LfwArgs& a, const eval::LfwVerificationResult& r, double seconds) {
  const auto& kf = r.kfold;
  json jfolds = json::array();
  for (const auto& f : kf.folds) jfolds.push_back({{"threshold", f.threshold}, {"accuracy", f.accuracy}, {"pairs", f.pairs}});
  json j = {{"accuracy", kf.accuracy},
            {"accuracy_std", kf.accuracy_std},
            {"auc", r.auc},
            {"tar_at_far_1e-3", r.tar_at_far_1e3.tar},
            {"far_1e-3_threshold", r.tar_at_far_1e3.threshold},
            {"eer", r.eer.eer},
            {"eer_threshold", r.eer.threshold},
            {"threshold", kf.threshold},
            {"cross_validated", kf.cross_validated},
            {"folds", jfolds},
            {"detect_failures",
             {{"images", r.retried + r.center_cropped},
              {"retried_low_conf", r.retried},
              {"center_crop", r.center_cropped},
              {"retry_score", r.retries ? json(a.retry_score) : json(nullptr)},
              {"center_crop_pairs", r.center_crop_pairs},
              {"center_crop_pairs_misclassified", r.center_crop_pairs_misclassified}}},
            {"pairs", r.scored.size()},
            {"images", r.images},
            {"flip", a.flip},
            {"seconds", seconds}};
  j.update(models_json(ctx));
  std::cout << j.dump() << "\n";
}

void print_text(const Context& ctx, const LfwArgs& a, const eval::LfwVerificationResult& r, double seconds) {
  const auto& kf = r.kfold;
  const size_t no_face = r.retried + r.center_cropped;
  std::printf("LFW: %zu pairs in %zu folds, %zu images; detector %s, embedder %s%s\n", r.scored.size(), kf.folds.size(),
              r.images, ctx.analyzer->detector().spec().id.c_str(), ctx.analyzer->embedder().spec().id.c_str(),
              a.flip ? " with flip TTA" : "");
  std::printf("  accuracy       %s +- %s  (mean threshold %s, %s)\n", pct(kf.accuracy).c_str(), pct(kf.accuracy_std).c_str(),
              fixed(kf.threshold, 3).c_str(),
              kf.cross_validated ? "each fold's chosen on the other folds"
                                 : "ONE fold only: threshold chosen on the same pairs, so optimistic");
  std::printf("  ROC AUC        %s\n", fixed(r.auc, 4).c_str());
  std::printf("  TAR@FAR=1e-3   %s  (threshold %s, FAR %s)\n", pct(r.tar_at_far_1e3.tar).c_str(),
              fixed(r.tar_at_far_1e3.threshold, 3).c_str(), pct(r.tar_at_far_1e3.far).c_str());
  std::printf("  EER            %s  (threshold %s)\n", pct(r.eer.eer).c_str(), fixed(r.eer.threshold, 3).c_str());
  if (no_face == 0) {
    std::printf("  a face was detected in every image at confidence %.2f\n", r.normal_score);
  } else {
    std::printf("  no face at confidence %.2f in %zu of %zu images:\n", r.normal_score, no_face, r.images);
    if (r.retries) std::printf("    %zu found on a retry at confidence %.2f\n", r.retried, a.retry_score);
    if (r.center_cropped)
      std::printf("    %zu fell back to a fixed centre crop, the last resort (a centre crop misclassifies about 40%% of the\n"
                  "      pairs it touches): %d pairs touched, %d misclassified here\n",
                  r.center_cropped, r.center_crop_pairs, r.center_crop_pairs_misclassified);
  }
  std::printf("  (%.1f s)\n", seconds);
}

int run_lfw(const LfwArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto pairs = eval::read_lfw_pairs(a.pairs);
  if (!pairs.ok()) return fail("lfw", pairs.status());
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("lfw", ctx.status());
  eval::LfwVerificationOptions opt;
  opt.root = a.root;
  opt.cache_file = a.cache;
  opt.flip = a.flip;
  opt.retry_score = a.retry_score;
  ProgressPrinter progress;
  auto r = eval::run_lfw_verification(*ctx->analyzer, ctx->limits, *pairs, opt, progress.hooks());
  progress.finish();
  if (!r.ok()) return fail("lfw", r.status());
  if (!a.out.dump.empty())
    if (Status s = write_dump(a.out.dump, *pairs, *r); !s.ok()) return fail("lfw", s);
  if (!a.out.plot.empty())
    if (Status s = write_roc_plot(a.out.plot, *ctx, a, *r); !s.ok()) return fail("lfw", s);
  if (a.o.json) print_json(*ctx, a, *r, seconds_since(t0));
  else print_text(*ctx, a, *r, seconds_since(t0));
  return kExitOk;
}

}  // namespace

void register_eval_lfw(CLI::App& eval, std::function<void(int)> set_rc) {
  static LfwArgs lfw;
  auto* l = eval.add_subcommand("lfw", "LFW 10-fold verification: accuracy, AUC, TAR@FAR=1e-3, EER");
  l->add_option("--root", lfw.root, "LFW images: a folder with one sub-folder per person (or its parent)")->required();
  l->add_option("--pairs", lfw.pairs, "the pairs file, e.g. pairs.txt (header \"folds n\")")->required();
  l->add_flag("--flip", lfw.flip, "flip test-time augmentation: sum the embeddings of each face and its mirror image");
  l->add_option("--cache", lfw.cache, "keep every image's template in this file and reuse it (the same file serves "
                                      "identify --lfw-open-set and calibrate)");
  l->add_option("--retry-score", lfw.retry_score, "detection confidence for the retry on images with no face (default 0.2)")
      ->check(CLI::Range(0.0, 1.0));
  add_output_options(*l, lfw.o, lfw.out, "the ROC curve");
  l->callback([set_rc] { set_rc(run_lfw(lfw)); });
}

}  // namespace facerec::cli::evalcli
