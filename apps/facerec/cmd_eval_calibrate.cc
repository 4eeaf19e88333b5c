// facerec eval calibrate: an embedder's impostor calibration on LFW's
// calibration people (facerec/eval_calibration.h); prints the manifest's
// open_set_calibration entry.
#include <cmath>
#include <ctime>
#include <iostream>

#include "cmd_eval.h"
#include "facerec/eval_calibration.h"

using nlohmann::json;

namespace facerec::cli::evalcli {
namespace {

struct CalibrateArgs {
  CommonOptions o;
  std::string root, cache;
  uint64_t seed = 8;
  bool flip = false;
};

std::string today_utc() {
  const std::time_t now = std::time(nullptr);
  char b[16];
  std::strftime(b, sizeof b, "%Y-%m-%d", std::gmtime(&now));
  return b;
}

int run_calibrate(const CalibrateArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("calibrate", ctx.status());
  eval::CalibrationOptions opt;
  opt.root = a.root;
  opt.cache_file = a.cache;
  opt.seed = a.seed;
  opt.flip = a.flip;
  ProgressPrinter progress;
  auto run = eval::run_calibration(*ctx->analyzer, ctx->limits, opt, progress.hooks());
  progress.finish();
  if (!run.ok()) return fail("calibrate", run.status());
  ImpostorCalibration& cal = run->calibration;
  const std::string det = ctx->analyzer->detector().spec().id, emb = ctx->analyzer->embedder().spec().id;
  auto& p = cal.provenance;
  p.command = "facerec eval calibrate --root ../shared/data/lfw --detector " + det + " --embedder " + emb +
              (a.flip ? " --flip" : "");
  p.date = today_utc();

  json check = json::array();
  for (const auto& c : run->independence)
    check.push_back({{"fpir", c.fpir}, {"people", c.people}, {"threshold", c.threshold},
                     {"independence_model_fpir", c.independence_model_fpir}});
  if (a.o.json) {
    json j = {{"embedder", emb}, {"detector", det}, {"open_set_calibration", json::parse(calibration_to_json(cal))},
              {"independence_check", check}, {"seconds", seconds_since(t0)}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("impostor calibration of %s (detector %s): %lld pool people, %lld probes, %lld impostor scores\n", emb.c_str(),
              det.c_str(), static_cast<long long>(run->pool_people), static_cast<long long>(p.probes),
              static_cast<long long>(p.impostor_scores));
  std::printf("  threshold for FPIR F (rows) and N people (columns)\n  %8s", "F \\ N");
  for (int64_t n : cal.people) std::printf(" %7lld", static_cast<long long>(n));
  std::printf("\n");
  for (size_t f = 0; f < cal.fpir.size(); ++f) {
    std::printf("  %8g", cal.fpir[f]);
    for (size_t n = 0; n < cal.people.size(); ++n) std::printf(" %7.4f", cal.threshold[f * cal.people.size() + n]);
    std::printf("\n");
  }
  std::printf("  at FPIR 1%%, the independence model 1-(1-FAR)^N would predict:");
  for (const auto& c : run->independence)
    std::printf(" N=%lld: %s", static_cast<long long>(c.people), pct(c.independence_model_fpir).c_str());
  std::printf("\n  manifest entry (\"open_set_calibration\"):\n%s\n  (%.1f s)\n", calibration_to_json(cal).c_str(),
              seconds_since(t0));
  return kExitOk;
}

}  // namespace

void register_eval_calibrate(CLI::App& eval, std::function<void(int)> set_rc) {
  static CalibrateArgs cal;
  auto* c = eval.add_subcommand("calibrate", "measure an embedder's impostor calibration (FPIR -> threshold for N people) on "
                                             "LFW's calibration people; prints the manifest's open_set_calibration entry");
  c->add_option("--root", cal.root, "LFW images: a folder with one sub-folder per person (or its parent)")->required();
  c->add_option("--cache", cal.cache, "keep every image's template in this file and reuse it");
  c->add_option("--seed", cal.seed, "seed of the pool image picked per person (default 8)");
  c->add_flag("--flip", cal.flip, "flip test-time augmentation (sum the embeddings of each face and its mirror image)");
  c->add_flag("--json", cal.o.json, "print one JSON object");
  add_model_options(*c, cal.o);
  c->callback([set_rc] { set_rc(run_calibrate(cal)); });
}

}  // namespace facerec::cli::evalcli
