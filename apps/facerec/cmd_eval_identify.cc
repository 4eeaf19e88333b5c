// facerec eval identify: 1:N identification on folder trees
// (facerec/eval_identification.h), or with --lfw-open-set the LFW open-set
// protocol at several gallery sizes (facerec/eval_lfw_open_set.h). Parses
// the flags and prints.
#include <cmath>
#include <fstream>
#include <iostream>

#include "cmd_eval.h"
#include "facerec/eval_identification.h"
#include "facerec/eval_lfw_open_set.h"

using nlohmann::json;

namespace facerec::cli::evalcli {
namespace {

struct IdentifyEvalArgs {
  CommonOptions o;
  EvalOutput out;
  std::string gallery, probes, unknown;
  std::optional<uint64_t> split_seed;
  int gallery_per_person = 1;
  int unknown_people = 0;
  float retry_score = 0.2f;
  // The LFW open-set protocol (--lfw-open-set): --gallery is LFW's images.
  bool lfw_open_set = false;
  bool flip = false;  // flip test-time augmentation (--lfw-open-set only)
  std::string cache;
  std::vector<std::string> sizes{"10", "100", "1000", "all"};
  std::vector<std::string> rules{"max", "mean", "qmean", "meanscore", "qmeanscore", "top2"};
};

// ------------------------------ folder trees --------------------------------

Status write_dump(const std::string& file, const eval::IdentificationSet& set, const eval::IdentificationResult& r) {
  std::ofstream dump(file);
  dump << json({{"people", r.people},
                {"truth_meaning", "index into people; -1: not enrolled; >= the number of people: enrolled without a gallery template"}})
              .dump()
       << "\n";
  for (size_t k = 0; k < r.probe_scores.size(); ++k) {
    const auto& p = r.probe_scores[k];
    dump << json({{"probe", set.probes[k].path}, {"truth", p.truth}, {"failed", p.failed}, {"scores", p.scores}}).dump() << "\n";
  }
  if (!dump) return Status(ErrorCode::kIo, "cannot write " + file);
  return Status::Ok();
}

Status write_cmc_plot(const std::string& file, const Context& ctx, const eval::IdentificationResult& r) {
  const int max_rank = std::max(1, std::min(r.enrolled_people(), 50));
  const auto curve = eval::cmc(r.outcomes, max_rank);
  eval::PlotSpec spec;
  spec.title = "CMC (" + std::to_string(r.mated) + " probes, " + std::to_string(r.enrolled_people()) + " people)";
  spec.x_label = "rank";
  spec.y_label = "identification rate";
  spec.integer_x = true;
  spec.x_min = 1;
  spec.x_max = std::max(2, max_rank);
  eval::PlotSeries s{ctx.analyzer->embedder().spec().id + "  rank-1 " + pct(r.rank1), {}, curve, eval::plot_colour(0)};
  for (int k = 1; k <= max_rank; ++k) s.x.push_back(k);
  spec.y_min = rate_floor(curve.empty() ? 0.0 : curve[0]);
  spec.series.push_back(std::move(s));
  return eval::write_plot(spec, file);
}

void print_json(const Context& ctx, const eval::IdentificationSet& set, const eval::IdentificationResult& r, double seconds) {
  const auto& d1 = r.at_fpir_1pct;
  const auto& d10 = r.at_fpir_10pct;
  json j = {{"rank1", r.rank1},
            {"rank5", r.rank5},
            {"dir_at_fpir_0.01", d1.dir},
            {"dir_at_fpir_0.1", d10.dir},
            {"threshold_at_fpir_0.01", std::isfinite(d1.fpir) ? json(d1.threshold) : json(nullptr)},
            {"threshold_at_fpir_0.1", std::isfinite(d10.fpir) ? json(d10.threshold) : json(nullptr)},
            {"probes", r.mated},
            {"unknown_probes", r.unknown},
            {"gallery_images", r.gallery_images},
            {"people", r.enrolled_people()},
            {"failures",
             {{"total", r.gallery_failed + r.probe_failed + r.unknown_failed},
              {"gallery", r.gallery_failed},
              {"probes", r.probe_failed},
              {"unknown_probes", r.unknown_failed},
              {"people_without_gallery_template", r.people_without_template},
              {"retried_low_conf", r.retried}}},
            {"seconds", seconds}};
  if (!set.split_note.empty()) j["split"] = set.split_note;
  j.update(models_json(ctx));
  std::cout << j.dump() << "\n";
}

void print_text(const Context& ctx, const IdentifyEvalArgs& a, const eval::IdentificationSet& set,
                const eval::IdentificationResult& r, double seconds) {
  const auto& d1 = r.at_fpir_1pct;
  const auto& d10 = r.at_fpir_10pct;
  std::printf("1:N identification: %d people enrolled from %zu gallery images; %zu probes of enrolled people, %zu of unknown people\n",
              r.enrolled_people(), r.gallery_images, r.mated, r.unknown);
  std::printf("  detector %s, embedder %s\n", ctx.analyzer->detector().spec().id.c_str(), ctx.analyzer->embedder().spec().id.c_str());
  if (!set.split_note.empty()) std::printf("  %s\n", set.split_note.c_str());
  std::printf("  closed set  rank-1 %s   rank-5 %s%s\n", pct(r.rank1).c_str(), pct(r.rank5).c_str(),
              r.enrolled_people() <= 5 ? "  (5 or fewer people: rank-5 is trivially every found face)" : "");
  if (r.unknown == 0) {
    std::printf("  open set    needs unknown probes (--unknown, or --unknown-people with --split-seed)\n");
  } else {
    std::printf("  open set    DIR %s at FPIR <= 1%% (threshold %s)   DIR %s at FPIR <= 10%% (threshold %s)\n", pct(d1.dir).c_str(),
                fixed(d1.threshold, 3).c_str(), pct(d10.dir).c_str(), fixed(d10.threshold, 3).c_str());
    if (r.unknown < 100)
      std::printf("              (with %zu unknown probes, FPIR <= 1%% allows %d false positives)\n", r.unknown,
                  static_cast<int>(std::floor(0.01 * static_cast<double>(r.unknown) + 1e-9)));
  }
  std::printf("  no template (no face, or unreadable): %d gallery, %d probe, %d unknown-probe images; a probe without one counts "
              "as a miss (and never as a false positive)\n", r.gallery_failed, r.probe_failed, r.unknown_failed);
  if (r.people_without_template)
    std::printf("  %d enrolled people have no gallery template: their probes are misses\n", r.people_without_template);
  if (r.retried) std::printf("  %d images needed a detection retry at confidence %.2f\n", r.retried, a.retry_score);
  std::printf("  (%.1f s)\n", seconds);
}

int run_folders(const IdentifyEvalArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<eval::IdentificationSet> set = Status(ErrorCode::kInternal, "no set");
  if (a.split_seed) {
    if (!a.probes.empty())
      return fail("identify", Status(ErrorCode::kInvalidArgument, "--split-seed splits --gallery itself; do not pass --probes"));
    set = eval::split_identification_set({a.gallery, *a.split_seed, a.gallery_per_person, a.unknown_people});
  } else {
    if (a.probes.empty())
      return fail("identify", Status(ErrorCode::kInvalidArgument, "pass --probes, or --split-seed to split --gallery"));
    set = eval::identification_set_from_folders(a.gallery, a.probes);
  }
  if (!set.ok()) return fail("identify", set.status());
  if (!a.unknown.empty())
    if (Status s = eval::add_unknown_probes(*set, a.unknown); !s.ok()) return fail("identify", s);

  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("identify", ctx.status());
  eval::IdentificationOptions opt;
  opt.retry_score = a.retry_score;
  opt.keep_scores = !a.out.dump.empty();
  ProgressPrinter progress;
  auto r = eval::run_identification(*ctx->analyzer, ctx->limits, *set, opt, progress.hooks());
  progress.finish();
  if (!r.ok()) return fail("identify", r.status());
  if (!a.out.dump.empty())
    if (Status s = write_dump(a.out.dump, *set, *r); !s.ok()) return fail("identify", s);
  if (!a.out.plot.empty())
    if (Status s = write_cmc_plot(a.out.plot, *ctx, *r); !s.ok()) return fail("identify", s);
  if (a.o.json) print_json(*ctx, *set, *r, seconds_since(t0));
  else print_text(*ctx, a, *set, *r, seconds_since(t0));
  return kExitOk;
}

// ------------------------------ LFW open set --------------------------------

int run_lfw_open_set(const IdentifyEvalArgs& a, const std::vector<int>& sizes, double fpir) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("identify", ctx.status());
  eval::LfwOpenSetOptions opt;
  opt.root = a.gallery;
  opt.cache_file = a.cache;
  opt.flip = a.flip;
  opt.sizes = sizes;
  opt.rules = a.rules;
  opt.fpir = fpir;
  opt.threshold_override = a.o.threshold;
  opt.seed = a.split_seed.value_or(8);
  opt.templates_per_person = a.gallery_per_person;
  ProgressPrinter progress;
  auto r = eval::run_lfw_open_set(*ctx->analyzer, ctx->limits, opt, progress.hooks());
  progress.finish();
  if (!r.ok()) return fail("identify", r.status());
  if (a.o.json) {
    json jr = json::array();
    for (const auto& row : r->rows)
      jr.push_back({{"gallery_people", row.people}, {"size_asked", row.size}, {"trials", row.trials}, {"rule", row.rule},
                    {"templates_per_person", row.templates_per_person},
                    {"decision", {{"fpir", row.policy.fpir}, {"threshold", row.policy.threshold},
                                  {"source", to_string(row.policy.source)}, {"comparisons", row.policy.comparisons},
                                  {"reason", row.policy.reason}}},
                    {"fpir_measured", row.at_policy.fpir}, {"false_positives", row.at_policy.false_positives},
                    {"unknown_searches", row.at_policy.unknown}, {"dir", row.at_policy.dir},
                    {"mated_searches", row.at_policy.mated}, {"oracle_dir_at_fpir", row.oracle.dir},
                    {"oracle_threshold", std::isfinite(row.oracle.fpir) ? json(row.oracle.threshold) : json(nullptr)},
                    {"rank1", row.rank1}});
    json j = {{"protocol", r->protocol}, {"fpir_asked", fpir}, {"rows", jr},
              {"detect_failures", {{"retried_low_conf", r->retried}, {"center_crop", r->cropped}, {"failed", r->failed}}},
              {"seconds", seconds_since(t0)}};
    j.update(models_json(*ctx));
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("%s\n  detector %s, embedder %s; FPIR asked %s\n", r->protocol.c_str(), ctx->analyzer->detector().spec().id.c_str(),
              ctx->analyzer->embedder().spec().id.c_str(), pct(fpir).c_str());
  std::printf("  %7s %6s %5s  %9s %-11s  %12s %14s  %8s  %18s  %7s\n", "people", "trials", "rule", "threshold", "source",
              "FPIR measured", "(FP/unknown)", "DIR", "oracle DIR@FPIR", "rank-1");
  for (const auto& row : r->rows) {
    char fp[48];
    std::snprintf(fp, sizeof fp, "%lld/%lld", static_cast<long long>(row.at_policy.false_positives),
                  static_cast<long long>(row.at_policy.unknown));
    std::printf("  %7d %6d %5s  %9.4f %-11s  %12s %14s  %8s  %18s  %7s\n", row.people, row.trials, row.rule.c_str(),
                row.policy.threshold, to_string(row.policy.source), pct(row.at_policy.fpir).c_str(), fp,
                pct(row.at_policy.dir).c_str(), pct(row.oracle.dir).c_str(), pct(row.rank1).c_str());
  }
  std::printf("  faces: %zu retried at low confidence, %zu centre crops, %zu without a template\n  (%.1f s)\n", r->retried,
              r->cropped, r->failed, seconds_since(t0));
  return kExitOk;
}

int run_identify_eval(const IdentifyEvalArgs& a) {
  if (a.lfw_open_set) {
    std::vector<int> sizes;
    for (const auto& s : a.sizes) {
      if (s == "all") { sizes.push_back(0); continue; }
      try {
        size_t used = 0;
        const int n = std::stoi(s, &used);
        if (used != s.size() || n < 1) throw std::invalid_argument(s);
        sizes.push_back(n);
      } catch (const std::exception&) {
        return fail("identify", Status(ErrorCode::kInvalidArgument, "--sizes takes positive numbers or 'all', not '" + s + "'"));
      }
    }
    for (const auto& r : a.rules)
      if (r != "qmean" && r != "qmeanscore" && !parse_template_rule(r).ok())
        return fail("identify", Status(ErrorCode::kInvalidArgument, "--rules takes max, mean, qmean, meanscore, qmeanscore "
                                                                   "(q: weighted by face quality) or top2, not '" + r + "'"));
    const double fpir = a.o.fpir.value_or(kDefaultFpir);
    if (!(fpir > 0 && fpir < 1)) return fail("identify", Status(ErrorCode::kInvalidArgument, "--fpir must be within (0, 1)"));
    return run_lfw_open_set(a, sizes, fpir);
  }
  if (a.flip || !a.cache.empty())
    return fail("identify", Status(ErrorCode::kInvalidArgument, "--flip and --cache work with --lfw-open-set only"));
  return run_folders(a);
}

}  // namespace

void register_eval_identify(CLI::App& eval, std::function<void(int)> set_rc) {
  static IdentifyEvalArgs id;
  auto* i = eval.add_subcommand("identify", "1:N identification: rank-1/5 (closed set), DIR at FPIR 1% and 10% (open set)");
  i->add_option("--gallery", id.gallery, "folder-per-person tree of enrolment images (with --split-seed: the one tree to split)")
      ->required();
  i->add_option("--probes", id.probes, "folder-per-person tree of probe images of the same (enrolled) people");
  i->add_option("--unknown", id.unknown, "images of people who are not enrolled (any layout)");
  i->add_option("--split-seed", id.split_seed, "split --gallery into gallery and probes with this seed");
  i->add_option("--gallery-per-person", id.gallery_per_person, "with --split-seed: gallery images per person (default 1)")
      ->check(CLI::Range(1, 1000000));
  i->add_option("--unknown-people", id.unknown_people, "with --split-seed: people held out as unknown (default 0)")
      ->check(CLI::Range(0, 1000000));
  i->add_option("--retry-score", id.retry_score, "detection confidence for the retry on images with no face (default 0.2)")
      ->check(CLI::Range(0.0, 1.0));
  i->add_flag("--lfw-open-set", id.lfw_open_set,
              "the LFW open-set protocol (issue 8): --gallery is LFW's images folder; reports FPIR measured at the --fpir "
              "setting, and DIR, per gallery size and template rule");
  i->add_option("--cache", id.cache, "with --lfw-open-set: keep every image's template in this file and reuse it");
  i->add_flag("--flip", id.flip, "with --lfw-open-set: flip test-time augmentation (sum the embeddings of each face and "
                                 "its mirror image)");
  i->add_option("--sizes", id.sizes, "with --lfw-open-set: gallery sizes (default 10 100 1000 all)")->delimiter(',');
  i->add_option("--rules", id.rules, "with --lfw-open-set: template rules (default max mean qmean meanscore qmeanscore top2; "
                                           "q: weighted by face quality)")->delimiter(',');
  add_threshold_option(*i, id.o);
  add_output_options(*i, id.o, id.out, "the CMC curve");
  i->callback([set_rc] { set_rc(run_identify_eval(id)); });
}

}  // namespace facerec::cli::evalcli
