// facerec eval lfw|identify|detect: the field's standard numbers, measured by
// facerec itself. Each prints a human summary (or one JSON object with
// --json), can write a PNG plot (--plot) and can dump the raw scores
// (--dump-scores) from which every printed number can be recomputed with the
// metrics library (include/facerec/eval.h).
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "app.h"
#include "facerec/align.h"
#include "facerec/eval.h"
#include "facerec/eval_open_set.h"
#include "facerec/eval_templates.h"
#include "facerec/open_set.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec::cli {
namespace {

// ------------------------------ Shared plumbing -------------------------------

struct EvalOutput {
  std::string plot;  // PNG path; empty = none
  std::string dump;  // raw scores; empty = none
};

void add_output_options(CLI::App& cmd, CommonOptions& o, EvalOutput& out, const std::string& plot_what) {
  cmd.add_flag("--json", o.json, "print one JSON object instead of the summary");
  cmd.add_option("--plot", out.plot, "write " + plot_what + " as a PNG here");
  cmd.add_option("--dump-scores", out.dump, "write the raw scores here, to recompute every number");
  add_model_options(cmd, o);
}

// Percent with two decimals, or n/a.
std::string pct(double v) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
  return b;
}
std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class Progress {
 public:
  Progress(std::string what, size_t total) : what_(std::move(what)), total_(total), tty_(isatty(STDERR_FILENO)) {}
  void step() {
    ++done_;
    if (tty_ && (done_ % 10 == 0 || done_ == total_)) std::fprintf(stderr, "\r\033[K%s %zu/%zu", what_.c_str(), done_, total_);
    else if (!tty_ && (done_ % 1000 == 0)) std::fprintf(stderr, "%s %zu/%zu\n", what_.c_str(), done_, total_);
  }
  ~Progress() { if (tty_ && done_) std::fprintf(stderr, "\r\033[K"); }

 private:
  std::string what_;
  size_t total_, done_ = 0;
  bool tty_;
};

// Template making is the library's (facerec/eval_templates.h); the CLI adds
// progress on stderr and Ctrl-C.
using Source = eval::TemplateSource;
using Pick = eval::FacePick;
using eval::ImageTemplate;
using eval::TemplateMaker;
using eval::TemplateOptions;

Result<std::vector<ImageTemplate>> make_templates(TemplateMaker& maker, const std::vector<std::string>& paths,
                                                  const std::string& what) {
  Progress progress(what, paths.size());
  return maker.make(paths, [&] { progress.step(); }, [] { return g_interrupted.load(); });
}

int fail(const std::string& cmd, const Status& s) {
  std::cerr << "facerec eval " << cmd << ": " << s.to_string() << "\n";
  return s.code() == ErrorCode::kCancelled ? kExitInterrupted : kExitError;
}

// A y-axis floor that keeps the interesting part of a rate curve readable:
// the tenth below the lowest value shown, at least 0.
double rate_floor(double lowest) {
  if (!std::isfinite(lowest)) return 0.0;
  return std::clamp(std::floor(lowest * 10 - 1e-9) / 10, 0.0, 0.9);
}

json models_json(const Context& ctx) {
  return {{"detector", ctx.analyzer->detector().spec().id}, {"embedder", ctx.analyzer->embedder().spec().id}};
}

// ------------------------------------ LFW -------------------------------------

struct LfwArgs {
  CommonOptions o;
  EvalOutput out;
  std::string root, pairs;
  std::string cache;  // templates kept here and reused (the file --lfw-open-set and calibrate use)
  bool flip = false;
  float retry_score = 0.2f;
};

int run_lfw(const LfwArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto pairs = eval::read_lfw_pairs(a.pairs);
  if (!pairs.ok()) return fail("lfw", pairs.status());
  // --root may be LFW's top folder or its images/ folder.
  fs::path root = a.root;
  std::error_code ec;
  const std::string first_person = fs::path((*pairs)[0].image1).parent_path().string();
  if (!fs::is_directory(root / first_person, ec) && fs::is_directory(root / "images" / first_person, ec)) root /= "images";
  std::vector<std::string> images;
  std::map<std::string, size_t> index;
  std::vector<std::pair<size_t, size_t>> pair_images;
  for (const auto& p : *pairs) {
    size_t ids[2];
    const std::string* rel[2] = {&p.image1, &p.image2};
    for (int k = 0; k < 2; ++k) {
      const std::string path = (root / *rel[k]).string();
      auto [it, fresh] = index.emplace(path, images.size());
      if (fresh) images.push_back(path);
      ids[k] = it->second;
    }
    pair_images.emplace_back(ids[0], ids[1]);
  }

  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("lfw", ctx.status());
  TemplateOptions topt;
  topt.pick = Pick::kCentral;  // LFW's subject is the centred face; others may be larger
  topt.retry_score = a.retry_score;
  topt.center_crop = true;
  topt.flip = a.flip;
  TemplateMaker maker(*ctx->analyzer, ctx->limits, topt);
  std::optional<eval::EmbeddingCache> cache;
  if (!a.cache.empty()) {
    auto c = eval::EmbeddingCache::load(a.cache, maker.cache_key());
    if (!c.ok()) return fail("lfw", c.status());
    cache = std::move(c).value();
    maker.use_cache(&*cache);
  }
  auto templates = make_templates(maker, images, "embedding LFW images");
  // Whatever was embedded is kept, also when interrupted.
  if (cache) {
    if (Status s = cache->save(a.cache); !s.ok()) return fail("lfw", s);
  }
  if (!templates.ok()) return fail("lfw", templates.status());
  size_t retried = 0, cropped = 0, no_face = 0;
  for (size_t i = 0; i < templates->size(); ++i) {
    const ImageTemplate& t = (*templates)[i];
    // Every image is part of the protocol: one that cannot be read makes the
    // result incomparable, so it stops the run.
    if (t.source == Source::kFailed)
      return fail("lfw", Status(ErrorCode::kNotFound, images[i] + ": " + t.error));
    retried += t.source == Source::kRetried;
    cropped += t.source == Source::kCenterCrop;
  }
  no_face = retried + cropped;

  std::vector<eval::ScoredPair> scored;
  std::vector<int> folds;
  for (size_t i = 0; i < pairs->size(); ++i) {
    const auto [x, y] = pair_images[i];
    auto s = cosine((*templates)[x].embedding, (*templates)[y].embedding);
    if (!s.ok()) return fail("lfw", s.status());
    scored.push_back({*s, (*pairs)[i].same});
    folds.push_back((*pairs)[i].fold);
  }
  const eval::KFoldResult kf = eval::kfold_accuracy(scored, folds);
  const double auc = eval::auc(scored);
  const eval::OperatingPoint op = eval::tar_at_far(scored, 1e-3);
  const eval::EqualErrorRate e = eval::eer(scored);

  // The centre crop's cost: pairs touching a centre-cropped image, and how
  // many of them the fold's threshold gets wrong.
  std::map<int, float> fold_threshold;
  {
    int k = 0;
    std::set<int> present(folds.begin(), folds.end());
    for (int f : present) fold_threshold[f] = kf.folds[static_cast<size_t>(k++)].threshold;
  }
  int crop_pairs = 0, crop_wrong = 0;
  for (size_t i = 0; i < scored.size(); ++i) {
    const auto [x, y] = pair_images[i];
    if ((*templates)[x].source != Source::kCenterCrop && (*templates)[y].source != Source::kCenterCrop) continue;
    ++crop_pairs;
    crop_wrong += (scored[i].score >= fold_threshold[folds[i]]) != scored[i].same;
  }

  if (!a.out.dump.empty()) {
    std::ofstream d(a.out.dump);
    d << "# fold\tsame\tscore\timage1\timage2 (fold 0-based; score: cosine)\n";
    for (size_t i = 0; i < scored.size(); ++i) {
      char s[32];
      std::snprintf(s, sizeof s, "%.9g", scored[i].score);
      d << folds[i] << "\t" << (scored[i].same ? 1 : 0) << "\t" << s << "\t" << (*pairs)[i].image1 << "\t"
        << (*pairs)[i].image2 << "\n";
    }
    if (!d) return fail("lfw", Status(ErrorCode::kIo, "cannot write " + a.out.dump));
  }
  if (!a.out.plot.empty()) {
    const auto curve = eval::roc(scored);
    int64_t n_diff = 0;
    for (const auto& p : scored) n_diff += !p.same;
    eval::PlotSpec spec;
    spec.title = "LFW ROC (" + std::to_string(scored.size()) + " pairs)";
    spec.x_label = "false accept rate (log scale)";
    spec.y_label = "true accept rate";
    spec.log_x = true;
    spec.x_min = std::pow(10.0, std::floor(std::log10(1.0 / static_cast<double>(std::max<int64_t>(n_diff, 1)))));
    spec.x_max = 1.0;
    eval::PlotSeries s{ctx->analyzer->embedder().spec().id + (a.flip ? " +flip" : "") + "  AUC " + fixed(auc, 4), {}, {}, eval::plot_colour(0)};
    double lowest = 1.0;
    for (const auto& p : curve) {
      s.x.push_back(p.far);
      s.y.push_back(p.tar);
      if (p.far >= spec.x_min) lowest = std::min(lowest, p.tar);
    }
    spec.y_min = rate_floor(lowest);
    spec.series.push_back(std::move(s));
    if (Status st = eval::write_plot(spec, a.out.plot); !st.ok()) return fail("lfw", st);
  }

  if (a.o.json) {
    json jfolds = json::array();
    for (const auto& f : kf.folds) jfolds.push_back({{"threshold", f.threshold}, {"accuracy", f.accuracy}, {"pairs", f.pairs}});
    json j = {{"accuracy", kf.accuracy},
              {"accuracy_std", kf.accuracy_std},
              {"auc", auc},
              {"tar_at_far_1e-3", op.tar},
              {"far_1e-3_threshold", op.threshold},
              {"eer", e.eer},
              {"eer_threshold", e.threshold},
              {"threshold", kf.threshold},
              {"cross_validated", kf.cross_validated},
              {"folds", jfolds},
              {"detect_failures",
               {{"images", no_face},
                {"retried_low_conf", retried},
                {"center_crop", cropped},
                {"retry_score", maker.retries() ? json(a.retry_score) : json(nullptr)},
                {"center_crop_pairs", crop_pairs},
                {"center_crop_pairs_misclassified", crop_wrong}}},
              {"pairs", scored.size()},
              {"images", images.size()},
              {"flip", a.flip},
              {"seconds", seconds_since(t0)}};
    j.update(models_json(*ctx));
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("LFW: %zu pairs in %zu folds, %zu images; detector %s, embedder %s%s\n", scored.size(), kf.folds.size(),
              images.size(), ctx->analyzer->detector().spec().id.c_str(), ctx->analyzer->embedder().spec().id.c_str(),
              a.flip ? " with flip TTA" : "");
  std::printf("  accuracy       %s +- %s  (mean threshold %s, %s)\n", pct(kf.accuracy).c_str(), pct(kf.accuracy_std).c_str(),
              fixed(kf.threshold, 3).c_str(),
              kf.cross_validated ? "each fold's chosen on the other folds"
                                 : "ONE fold only: threshold chosen on the same pairs, so optimistic");
  std::printf("  ROC AUC        %s\n", fixed(auc, 4).c_str());
  std::printf("  TAR@FAR=1e-3   %s  (threshold %s, FAR %s)\n", pct(op.tar).c_str(), fixed(op.threshold, 3).c_str(), pct(op.far).c_str());
  std::printf("  EER            %s  (threshold %s)\n", pct(e.eer).c_str(), fixed(e.threshold, 3).c_str());
  if (no_face == 0) {
    std::printf("  a face was detected in every image at confidence %.2f\n", maker.normal_score());
  } else {
    std::printf("  no face at confidence %.2f in %zu of %zu images:\n", maker.normal_score(), no_face, images.size());
    if (maker.retries()) std::printf("    %zu found on a retry at confidence %.2f\n", retried, a.retry_score);
    if (cropped)
      std::printf("    %zu fell back to a fixed centre crop, the last resort (a centre crop misclassifies about 40%% of the\n"
                  "      pairs it touches): %d pairs touched, %d misclassified here\n", cropped, crop_pairs, crop_wrong);
  }
  std::printf("  (%.1f s)\n", seconds_since(t0));
  return kExitOk;
}

// --------------------------------- identify -----------------------------------

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

struct Labelled {
  std::string person;  // empty: not enrolled
  std::string path;
};

// Sub-folders of dir, sorted, each with its images (sorted, recursive).
Result<std::vector<std::pair<std::string, std::vector<std::string>>>> people_of(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status(ErrorCode::kNotFound, dir + " is not a folder (expected <dir>/<Person>/<images>)");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& n : names) {
    auto imgs = collect_images({(fs::path(dir) / n).string()});
    if (!imgs.empty()) out.emplace_back(n, std::move(imgs));
  }
  if (out.empty()) return Status(ErrorCode::kNotFound, dir + " has no person folders with images");
  return out;
}

// Fisher-Yates with mt19937_64, whose output the standard fixes, so a seed
// gives the same split with every standard library (std::shuffle's use of
// the engine is not specified). The modulo bias is below 1e-15 here.
template <class T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng() % i)]);
}

int run_lfw_open_set(const IdentifyEvalArgs& a, const std::vector<int>& sizes, const std::vector<std::string>& rules,
                     double fpir);

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
    return run_lfw_open_set(a, sizes, a.rules, fpir);
  }
  if (a.flip || !a.cache.empty())
    return fail("identify", Status(ErrorCode::kInvalidArgument, "--flip and --cache work with --lfw-open-set only"));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Labelled> gallery, probes;
  std::string split_note;
  if (a.split_seed) {
    if (!a.probes.empty())
      return fail("identify", Status(ErrorCode::kInvalidArgument, "--split-seed splits --gallery itself; do not pass --probes"));
    auto people = people_of(a.gallery);
    if (!people.ok()) return fail("identify", people.status());
    if (a.unknown_people >= static_cast<int>(people->size()))
      return fail("identify", Status(ErrorCode::kInvalidArgument, "--unknown-people " + std::to_string(a.unknown_people) +
                                                                   " leaves nobody enrolled out of " + std::to_string(people->size())));
    std::mt19937_64 rng(*a.split_seed);
    seeded_shuffle(*people, rng);
    int enrolled_without_probe = 0;
    for (size_t i = 0; i < people->size(); ++i) {
      auto& [name, imgs] = (*people)[i];
      if (static_cast<int>(i) < a.unknown_people) {
        for (auto& p : imgs) probes.push_back({"", p});
        continue;
      }
      seeded_shuffle(imgs, rng);
      for (size_t k = 0; k < imgs.size(); ++k)
        (static_cast<int>(k) < a.gallery_per_person ? gallery : probes).push_back({name, imgs[k]});
      enrolled_without_probe += static_cast<int>(imgs.size()) <= a.gallery_per_person;
    }
    split_note = "split of " + a.gallery + " with seed " + std::to_string(*a.split_seed) + ": " +
                 std::to_string(a.gallery_per_person) + " gallery image(s) per person, " + std::to_string(a.unknown_people) +
                 " people held out as unknown" +
                 (enrolled_without_probe ? ", " + std::to_string(enrolled_without_probe) + " people too small to give probes" : "");
  } else {
    if (a.probes.empty())
      return fail("identify", Status(ErrorCode::kInvalidArgument, "pass --probes, or --split-seed to split --gallery"));
    auto g = people_of(a.gallery);
    if (!g.ok()) return fail("identify", g.status());
    auto p = people_of(a.probes);
    if (!p.ok()) return fail("identify", p.status());
    std::set<std::string> names;
    for (const auto& [n, imgs] : *g) {
      names.insert(n);
      for (const auto& i : imgs) gallery.push_back({n, i});
    }
    // A probe person without a gallery folder is most likely a spelling
    // difference; people who are meant to be unknown go under --unknown.
    std::string missing;
    for (const auto& [n, imgs] : *p) {
      if (!names.count(n)) missing += (missing.empty() ? "" : ", ") + printable(n);
      for (const auto& i : imgs) probes.push_back({n, i});
    }
    if (!missing.empty())
      return fail("identify", Status(ErrorCode::kInvalidArgument,
                                     "probe people with no gallery folder of the same name: " + missing +
                                         " (names must match exactly; put people who are not enrolled under --unknown)"));
  }
  if (!a.unknown.empty()) {
    std::error_code ec;
    if (!fs::is_directory(a.unknown, ec)) return fail("identify", Status(ErrorCode::kNotFound, a.unknown + " is not a folder"));
    for (auto& p : collect_images({a.unknown})) probes.push_back({"", p});
  }

  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("identify", ctx.status());
  TemplateOptions topt;
  topt.pick = Pick::kLargest;  // as enroll and identify do
  topt.retry_score = a.retry_score;
  TemplateMaker maker(*ctx->analyzer, ctx->limits, topt);
  std::vector<std::string> paths;
  for (const auto& g : gallery) paths.push_back(g.path);
  for (const auto& p : probes) paths.push_back(p.path);
  auto templates = make_templates(maker, paths, "embedding gallery and probes");
  if (!templates.ok()) return fail("identify", templates.status());

  // The index holds the people with at least one gallery template; person
  // indices follow its order, and enrolled people with no template come
  // after them, so score_search() counts their probes as misses.
  std::map<std::string, std::vector<size_t>> rows_of;
  int gallery_failed = 0, probe_failed = 0, unknown_failed = 0, retried = 0;
  for (size_t i = 0; i < gallery.size(); ++i) {
    const ImageTemplate& t = (*templates)[i];
    retried += t.source == Source::kRetried;
    if (t.source == Source::kFailed) { ++gallery_failed; continue; }
    rows_of[gallery[i].person].push_back(i);
  }
  std::vector<std::string> people;
  std::map<std::string, int> person_index;
  std::vector<std::string> row_identity;
  std::vector<float> rows;
  int dim = ctx->analyzer->embedder().dim();
  for (const auto& [name, idx] : rows_of) {
    person_index[name] = static_cast<int>(people.size());
    people.push_back(name);
    for (size_t i : idx) {
      row_identity.push_back(name);
      const auto& u = (*templates)[i].embedding.unit;
      rows.insert(rows.end(), u.begin(), u.end());
    }
  }
  int without_template = 0;
  for (const auto& g : gallery)
    if (!person_index.count(g.person)) {
      person_index[g.person] = static_cast<int>(people.size()) + without_template++;
    }
  if (people.empty()) return fail("identify", Status(ErrorCode::kNoFace, "no gallery image gave a template"));
  auto index = SearchIndex::create(dim, row_identity, rows);
  if (!index.ok()) return fail("identify", index.status());

  std::vector<eval::SearchOutcome> outcomes;
  std::ofstream dump;
  if (!a.out.dump.empty()) {
    dump.open(a.out.dump);
    dump << json({{"people", people},
                  {"truth_meaning", "index into people; -1: not enrolled; >= the number of people: enrolled without a gallery template"}})
                .dump()
         << "\n";
  }
  size_t n_unknown = 0;
  for (size_t k = 0; k < probes.size(); ++k) {
    const ImageTemplate& t = (*templates)[gallery.size() + k];
    const bool known = !probes[k].person.empty();
    n_unknown += !known;
    retried += t.source == Source::kRetried;
    const int truth = known ? person_index.at(probes[k].person) : -1;
    std::vector<float> scores;
    const bool failed = t.source == Source::kFailed;
    if (failed) (known ? probe_failed : unknown_failed)++;
    else {
      scores.assign(people.size(), 0.f);
      auto found = index->search(t.embedding.unit, static_cast<int>(people.size()));
      if (!found.ok()) return fail("identify", found.status());
      for (const auto& c : *found) scores[static_cast<size_t>(person_index.at(c.identity))] = c.similarity;
    }
    outcomes.push_back(eval::score_search(scores, truth, failed));
    if (dump.is_open())
      dump << json({{"probe", probes[k].path}, {"truth", truth}, {"failed", failed}, {"scores", scores}}).dump() << "\n";
  }
  if (dump.is_open() && !dump) return fail("identify", Status(ErrorCode::kIo, "cannot write " + a.out.dump));

  const size_t n_mated = probes.size() - n_unknown;
  const double r1 = eval::rank_k(outcomes, 1), r5 = eval::rank_k(outcomes, 5);
  const eval::OpenSetPoint d1 = eval::dir_at_fpir(outcomes, 0.01), d10 = eval::dir_at_fpir(outcomes, 0.1);

  if (!a.out.plot.empty()) {
    const int max_rank = std::max(1, std::min(static_cast<int>(people.size() + without_template), 50));
    const auto curve = eval::cmc(outcomes, max_rank);
    eval::PlotSpec spec;
    spec.title = "CMC (" + std::to_string(n_mated) + " probes, " + std::to_string(people.size() + without_template) + " people)";
    spec.x_label = "rank";
    spec.y_label = "identification rate";
    spec.integer_x = true;
    spec.x_min = 1;
    spec.x_max = std::max(2, max_rank);
    eval::PlotSeries s{ctx->analyzer->embedder().spec().id + "  rank-1 " + pct(r1), {}, curve, eval::plot_colour(0)};
    for (int r = 1; r <= max_rank; ++r) s.x.push_back(r);
    spec.y_min = rate_floor(curve.empty() ? 0.0 : curve[0]);
    spec.series.push_back(std::move(s));
    if (Status st = eval::write_plot(spec, a.out.plot); !st.ok()) return fail("identify", st);
  }

  const int failures = gallery_failed + probe_failed + unknown_failed;
  if (a.o.json) {
    json j = {{"rank1", r1},
              {"rank5", r5},
              {"dir_at_fpir_0.01", d1.dir},
              {"dir_at_fpir_0.1", d10.dir},
              {"threshold_at_fpir_0.01", std::isfinite(d1.fpir) ? json(d1.threshold) : json(nullptr)},
              {"threshold_at_fpir_0.1", std::isfinite(d10.fpir) ? json(d10.threshold) : json(nullptr)},
              {"probes", n_mated},
              {"unknown_probes", n_unknown},
              {"gallery_images", gallery.size()},
              {"people", people.size() + without_template},
              {"failures",
               {{"total", failures},
                {"gallery", gallery_failed},
                {"probes", probe_failed},
                {"unknown_probes", unknown_failed},
                {"people_without_gallery_template", without_template},
                {"retried_low_conf", retried}}},
              {"seconds", seconds_since(t0)}};
    if (!split_note.empty()) j["split"] = split_note;
    j.update(models_json(*ctx));
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("1:N identification: %zu people enrolled from %zu gallery images; %zu probes of enrolled people, %zu of unknown people\n",
              people.size() + without_template, gallery.size(), n_mated, n_unknown);
  std::printf("  detector %s, embedder %s\n", ctx->analyzer->detector().spec().id.c_str(), ctx->analyzer->embedder().spec().id.c_str());
  if (!split_note.empty()) std::printf("  %s\n", split_note.c_str());
  std::printf("  closed set  rank-1 %s   rank-5 %s%s\n", pct(r1).c_str(), pct(r5).c_str(),
              people.size() + without_template <= 5 ? "  (5 or fewer people: rank-5 is trivially every found face)" : "");
  if (n_unknown == 0) {
    std::printf("  open set    needs unknown probes (--unknown, or --unknown-people with --split-seed)\n");
  } else {
    std::printf("  open set    DIR %s at FPIR <= 1%% (threshold %s)   DIR %s at FPIR <= 10%% (threshold %s)\n", pct(d1.dir).c_str(),
                fixed(d1.threshold, 3).c_str(), pct(d10.dir).c_str(), fixed(d10.threshold, 3).c_str());
    if (n_unknown < 100)
      std::printf("              (with %zu unknown probes, FPIR <= 1%% allows %d false positives)\n", n_unknown,
                  static_cast<int>(std::floor(0.01 * static_cast<double>(n_unknown) + 1e-9)));
  }
  std::printf("  no template (no face, or unreadable): %d gallery, %d probe, %d unknown-probe images; a probe without one counts "
              "as a miss (and never as a false positive)\n", gallery_failed, probe_failed, unknown_failed);
  if (without_template) std::printf("  %d enrolled people have no gallery template: their probes are misses\n", without_template);
  if (retried) std::printf("  %d images needed a detection retry at confidence %.2f\n", retried, a.retry_score);
  std::printf("  (%.1f s)\n", seconds_since(t0));
  return kExitOk;
}

// ------------------------- LFW open set and calibration -------------------------

// LFW's people and their images, with one template per image, made once
// (and kept in --cache). Faces as `eval lfw` picks them: the most central
// face, a low-confidence retry, the fixed centre crop as the last resort.
struct LfwTemplates {
  std::vector<std::string> paths;
  std::vector<ImageTemplate> templates;
  std::vector<eval::PersonImages> calibration, test;  // indices into paths
  size_t retried = 0, cropped = 0, failed = 0;
};

Result<LfwTemplates> lfw_templates(Context& ctx, const std::string& root_in, const std::string& cache_file,
                                   bool calibration_only, bool flip) {
  fs::path root = root_in;
  std::error_code ec;
  if (fs::is_directory(root / "images", ec)) root /= "images";
  auto people = people_of(root.string());
  if (!people.ok()) return people.status();
  LfwTemplates out;
  for (auto& [name, imgs] : *people) {
    const bool cal = eval::is_calibration_person(name);
    if (calibration_only && !cal) continue;
    eval::PersonImages p{name, {}};
    for (auto& path : imgs) {
      p.images.push_back(static_cast<int>(out.paths.size()));
      out.paths.push_back(path);
    }
    (cal ? out.calibration : out.test).push_back(std::move(p));
  }
  TemplateOptions topt;
  topt.pick = Pick::kCentral;
  topt.center_crop = true;
  topt.flip = flip;
  TemplateMaker maker(*ctx.analyzer, ctx.limits, topt);
  std::optional<eval::EmbeddingCache> cache;
  if (!cache_file.empty()) {
    auto c = eval::EmbeddingCache::load(cache_file, maker.cache_key());
    if (!c.ok()) return c.status();
    cache = std::move(c).value();
    maker.use_cache(&*cache);
  }
  auto t = make_templates(maker, out.paths, "embedding LFW images");
  // Whatever was embedded is kept, also when interrupted.
  if (cache) {
    if (Status s = cache->save(cache_file); !s.ok()) return s;
  }
  if (!t.ok()) return t.status();
  out.templates = std::move(t).value();
  for (const auto& x : out.templates) {
    out.retried += x.source == Source::kRetried;
    out.cropped += x.source == Source::kCenterCrop;
    out.failed += x.source == Source::kFailed;
  }
  return out;
}

std::vector<eval::ProbeTemplate> probe_view(const std::vector<ImageTemplate>& t) {
  std::vector<eval::ProbeTemplate> v(t.size());
  for (size_t i = 0; i < t.size(); ++i) v[i] = {t[i].embedding.unit, t[i].quality};
  return v;
}

std::string today_utc() {
  const std::time_t now = std::time(nullptr);
  char b[16];
  std::strftime(b, sizeof b, "%Y-%m-%d", std::gmtime(&now));
  return b;
}

struct CalibrateArgs {
  CommonOptions o;
  std::string root, cache;
  uint64_t seed = 8;
  bool flip = false;
};

int run_calibrate(const CalibrateArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("calibrate", ctx.status());
  auto lfw = lfw_templates(*ctx, a.root, a.cache, /*calibration_only=*/true, a.flip);
  if (!lfw.ok()) return fail("calibrate", lfw.status());
  const int dim = ctx->analyzer->embedder().dim();
  const auto view = probe_view(lfw->templates);
  int64_t pool = 0;
  auto scores = eval::impostor_scores(lfw->calibration, view, dim, a.seed, &pool);
  // mean_probe_fpir() below reads each probe's scores sorted descending.
  for (auto& s : scores) std::sort(s.begin(), s.end(), [](float x, float y) { return x > y; });
  auto cal = calibrate_impostors(scores, default_fpir_grid(), default_people_grid());
  if (!cal.ok()) return fail("calibrate", cal.status());
  const std::string det = ctx->analyzer->detector().spec().id, emb = ctx->analyzer->embedder().spec().id;
  auto& p = cal->provenance;
  p.data = "LFW deep-funneled, the " + std::to_string(lfw->calibration.size()) +
           " calibration people (FNV-1a name hash % 3 == 0; disjoint from the open-set test people), " +
           std::to_string(lfw->paths.size()) + " images, one pool image per person (seed " + std::to_string(a.seed) + ")";
  p.command = "facerec eval calibrate --root ../shared/data/lfw --detector " + det + " --embedder " + emb +
              (a.flip ? " --flip" : "");
  p.date = today_utc();
  p.detector = det;
  p.pool_people = pool;

  // The independence model, for comparison: FPIR = 1 - (1 - FAR(t))^N with
  // FAR(t) the per-comparison rate, at the calibrated thresholds.
  json check = json::array();
  for (double f : {0.01}) {
    for (int64_t n : cal->people) {
      const float t = cal->threshold_for(f, n);
      const double far = mean_probe_fpir(scores, t, 1);
      check.push_back({{"fpir", f}, {"people", n}, {"threshold", t},
                       {"independence_model_fpir", 1 - std::pow(1 - far, static_cast<double>(n))}});
    }
  }
  if (a.o.json) {
    json j = {{"embedder", emb}, {"detector", det}, {"open_set_calibration", json::parse(calibration_to_json(*cal))},
              {"independence_check", check}, {"seconds", seconds_since(t0)}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("impostor calibration of %s (detector %s): %lld pool people, %lld probes, %lld impostor scores\n", emb.c_str(),
              det.c_str(), static_cast<long long>(pool), static_cast<long long>(p.probes),
              static_cast<long long>(p.impostor_scores));
  std::printf("  threshold for FPIR F (rows) and N people (columns)\n  %8s", "F \\ N");
  for (int64_t n : cal->people) std::printf(" %7lld", static_cast<long long>(n));
  std::printf("\n");
  for (size_t f = 0; f < cal->fpir.size(); ++f) {
    std::printf("  %8g", cal->fpir[f]);
    for (size_t n = 0; n < cal->people.size(); ++n) std::printf(" %7.4f", cal->threshold[f * cal->people.size() + n]);
    std::printf("\n");
  }
  std::printf("  at FPIR 1%%, the independence model 1-(1-FAR)^N would predict:");
  for (const auto& c : check) std::printf(" N=%lld: %s", static_cast<long long>(c["people"].get<int64_t>()),
                                          pct(c["independence_model_fpir"].get<double>()).c_str());
  std::printf("\n  manifest entry (\"open_set_calibration\"):\n%s\n  (%.1f s)\n", calibration_to_json(*cal).c_str(),
              seconds_since(t0));
  return kExitOk;
}

// One row of the open-set report.
struct OpenSetRow {
  int size = 0, people = 0, templates_per_person = 1, trials = 0;
  std::string rule;
  DecisionPolicy policy;
  eval::RatesAtThreshold at_policy;
  eval::OpenSetPoint oracle;  // the best DIR with measured FPIR <= the target
  double rank1 = 0;
};

int run_lfw_open_set(const IdentifyEvalArgs& a, const std::vector<int>& sizes, const std::vector<std::string>& rules,
                     double fpir) {
  const auto t0 = std::chrono::steady_clock::now();
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("identify", ctx.status());
  auto lfw = lfw_templates(*ctx, a.gallery, a.cache, /*calibration_only=*/false, a.flip);
  if (!lfw.ok()) return fail("identify", lfw.status());
  const int dim = ctx->analyzer->embedder().dim();
  const auto view = probe_view(lfw->templates);
  const ModelSpec& es = ctx->analyzer->embedder().spec();
  const uint64_t seed = a.split_seed.value_or(8);
  const int k = a.gallery_per_person;
  std::vector<OpenSetRow> rows;
  for (int size : sizes) {
    const int trials = eval::trials_for_size(size);
    for (const std::string& rule_name : rules) {
      // "q" + a mean rule: weighted by face quality.
      const bool qweighted = rule_name == "qmean" || rule_name == "qmeanscore";
      auto rule = parse_template_rule(qweighted ? rule_name.substr(1) : rule_name);
      if (!rule.ok()) return fail("identify", rule.status());
      std::vector<eval::SearchOutcome> pooled;
      int people = 0;
      for (int r = 0; r < trials; ++r) {
        auto trial = eval::draw_open_set_trial(lfw->test, size, k, seed + static_cast<uint64_t>(r));
        if (!trial.ok()) return fail("identify", trial.status());
        people = static_cast<int>(trial->gallery.size());
        auto out = eval::run_open_set_trial(*trial, view, dim, *rule, qweighted);
        if (!out.ok()) return fail("identify", out.status());
        pooled.insert(pooled.end(), out->begin(), out->end());
      }
      DecisionRequest req;
      req.fpir = fpir;
      req.threshold_override = a.o.threshold;
      req.gallery_people = people;
      req.gallery_templates = static_cast<int64_t>(people) * k;
      req.rule = *rule;
      req.embedder = es.id;
      req.calibration = &es.open_set_calibration;
      req.fallback_threshold = es.match_threshold;
      auto policy = resolve_decision_policy(req);
      if (!policy.ok()) return fail("identify", policy.status());
      OpenSetRow row;
      row.size = size;
      row.people = people;
      row.templates_per_person = k;
      row.trials = trials;
      row.rule = rule_name;
      row.policy = *policy;
      row.at_policy = eval::rates_at_threshold(pooled, policy->threshold);
      row.oracle = eval::dir_at_fpir(pooled, fpir);
      row.rank1 = eval::rank_k(pooled, 1);
      rows.push_back(std::move(row));
    }
  }
  size_t test_images = 0, cal_images = 0;
  for (const auto& p : lfw->test) test_images += p.images.size();
  for (const auto& p : lfw->calibration) cal_images += p.images.size();
  const std::string protocol = "LFW open set: " + std::to_string(lfw->test.size()) + " test people (" +
                               std::to_string(test_images) + " images; " + std::to_string(lfw->calibration.size()) +
                               " calibration people with " + std::to_string(cal_images) +
                               " images held out), gallery people have >= " + std::to_string(k + 1) + " photos, " +
                               std::to_string(k) + " enrolled each, seed " + std::to_string(seed);
  if (a.o.json) {
    json jr = json::array();
    for (const auto& r : rows)
      jr.push_back({{"gallery_people", r.people}, {"size_asked", r.size}, {"trials", r.trials}, {"rule", r.rule},
                    {"templates_per_person", r.templates_per_person},
                    {"decision", {{"fpir", r.policy.fpir}, {"threshold", r.policy.threshold}, {"source", to_string(r.policy.source)},
                                  {"comparisons", r.policy.comparisons}, {"reason", r.policy.reason}}},
                    {"fpir_measured", r.at_policy.fpir}, {"false_positives", r.at_policy.false_positives},
                    {"unknown_searches", r.at_policy.unknown}, {"dir", r.at_policy.dir}, {"mated_searches", r.at_policy.mated},
                    {"oracle_dir_at_fpir", r.oracle.dir}, {"oracle_threshold", std::isfinite(r.oracle.fpir) ? json(r.oracle.threshold) : json(nullptr)},
                    {"rank1", r.rank1}});
    json j = {{"protocol", protocol}, {"fpir_asked", fpir}, {"rows", jr},
              {"detect_failures", {{"retried_low_conf", lfw->retried}, {"center_crop", lfw->cropped}, {"failed", lfw->failed}}},
              {"seconds", seconds_since(t0)}};
    j.update(models_json(*ctx));
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("%s\n  detector %s, embedder %s; FPIR asked %s\n", protocol.c_str(), ctx->analyzer->detector().spec().id.c_str(),
              es.id.c_str(), pct(fpir).c_str());
  std::printf("  %7s %6s %5s  %9s %-11s  %12s %14s  %8s  %18s  %7s\n", "people", "trials", "rule", "threshold", "source",
              "FPIR measured", "(FP/unknown)", "DIR", "oracle DIR@FPIR", "rank-1");
  for (const auto& r : rows) {
    char fp[48];
    std::snprintf(fp, sizeof fp, "%lld/%lld", static_cast<long long>(r.at_policy.false_positives),
                  static_cast<long long>(r.at_policy.unknown));
    std::printf("  %7d %6d %5s  %9.4f %-11s  %12s %14s  %8s  %18s  %7s\n", r.people, r.trials, r.rule.c_str(), r.policy.threshold,
                to_string(r.policy.source), pct(r.at_policy.fpir).c_str(), fp, pct(r.at_policy.dir).c_str(),
                pct(r.oracle.dir).c_str(), pct(r.rank1).c_str());
  }
  std::printf("  faces: %zu retried at low confidence, %zu centre crops, %zu without a template\n  (%.1f s)\n", lfw->retried,
              lfw->cropped, lfw->failed, seconds_since(t0));
  return kExitOk;
}

// ---------------------------------- detect ------------------------------------

struct DetectEvalArgs {
  CommonOptions o;
  EvalOutput out;
  std::string images, gt, mat_dir;
  // The highest-scoring detections kept per image. RetinaFace's WIDER
  // evaluation keeps 750 (keep_top_k); fr_detect at confidence 0.02 leaves
  // about 2400 per image after NMS, each costing a landmark-model run.
  int max_faces = 750;
};

// Without --det-score the detector keeps faces down to this confidence, so
// the precision/recall curve reaches high recall, as the official
// evaluation expects of submitted detections (and the published
// RetinaFace/SCRFD evaluations use 0.02).
constexpr float kDetectEvalScore = 0.02f;

int run_detect_eval(DetectEvalArgs a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto gt = eval::read_wider_gt_txt(a.gt);
  if (!gt.ok()) return fail("detect", gt.status());
  const std::string mat_dir = a.mat_dir.empty() ? fs::path(a.gt).parent_path().string() : a.mat_dir;
  if (Status s = eval::read_wider_subsets(mat_dir.empty() ? "." : mat_dir, *gt); !s.ok()) return fail("detect", s);
  if (!a.o.score_threshold) a.o.score_threshold = kDetectEvalScore;
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("detect", ctx.status());
  DetectorOptions det_options = ctx->analyzer->detector().options();
  det_options.max_faces = a.max_faces;

  std::vector<std::vector<eval::ScoredBox>> detections(gt->size());
  {
    Progress progress("detecting", gt->size());
    for (size_t i = 0; i < gt->size(); ++i) {
      if (g_interrupted) return fail("detect", Status(ErrorCode::kCancelled, "interrupted"));
      const std::string path = (fs::path(a.images) / (*gt)[i].path).string();
      auto img = load_image(path, ctx->limits);
      if (!img.ok()) return fail("detect", img.status());  // every listed image is part of the measurement
      auto faces = ctx->analyzer->detect(*img, det_options);
      if (!faces.ok()) return fail("detect", faces.status());
      for (const auto& f : *faces) detections[i].push_back({f.box, f.score});
      progress.step();
    }
  }

  static const char* kNames[3] = {"easy", "medium", "hard"};
  std::array<eval::PrCurve, 3> curves;
  for (int s = 0; s < 3; ++s) {
    std::vector<eval::WiderImage> set(gt->size());
    for (size_t i = 0; i < gt->size(); ++i) {
      set[i].gt = (*gt)[i].boxes;
      set[i].keep = (*gt)[i].keep[static_cast<size_t>(s)];
      set[i].detections = detections[i];
    }
    curves[static_cast<size_t>(s)] = eval::wider_pr_curve(set);
  }

  if (!a.out.dump.empty()) {
    std::ofstream d(a.out.dump);
    for (size_t i = 0; i < gt->size(); ++i) {
      json boxes = json::array(), dets = json::array();
      for (const auto& b : (*gt)[i].boxes) boxes.push_back({b.x, b.y, b.width, b.height});
      for (const auto& x : detections[i]) dets.push_back({x.box.x, x.box.y, x.box.width, x.box.height, x.score});
      d << json({{"image", (*gt)[i].path}, {"gt", boxes}, {"keep", (*gt)[i].keep}, {"detections", dets}}).dump() << "\n";
    }
    if (!d) return fail("detect", Status(ErrorCode::kIo, "cannot write " + a.out.dump));
  }
  if (!a.out.plot.empty()) {
    eval::PlotSpec spec;
    spec.title = "WIDER FACE precision/recall (" + std::to_string(gt->size()) + " images, " +
                 ctx->analyzer->detector().spec().id + ")";
    spec.x_label = "recall";
    spec.y_label = "precision";
    for (int s = 0; s < 3; ++s) {
      const auto& c = curves[static_cast<size_t>(s)];
      spec.series.push_back({std::string(kNames[s]) + "  AP " + fixed(c.ap, 3), c.recall, c.precision, eval::plot_colour(s)});
    }
    if (Status st = eval::write_plot(spec, a.out.plot); !st.ok()) return fail("detect", st);
  }

  size_t n_dets = 0;
  for (const auto& d : detections) n_dets += d.size();
  if (a.o.json) {
    json j = {{"ap_easy", curves[0].ap},   {"ap_medium", curves[1].ap}, {"ap_hard", curves[2].ap},
              {"images", gt->size()},      {"faces", {{"easy", curves[0].faces}, {"medium", curves[1].faces}, {"hard", curves[2].faces}}},
              {"detections", n_dets},      {"score_threshold", *a.o.score_threshold},
              {"iou", 0.5},                {"max_faces_per_image", a.max_faces},
              {"detector", ctx->analyzer->detector().spec().id},
              {"seconds", seconds_since(t0)}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("WIDER FACE AP over %zu images (official rules: IoU 0.5, faces outside each subset ignored)\n", gt->size());
  std::printf("  detector %s, keeping detections with confidence >= %.2f, at most %d per image (%zu in all)\n",
              ctx->analyzer->detector().spec().id.c_str(), *a.o.score_threshold, a.max_faces, n_dets);
  for (int s = 0; s < 3; ++s)
    std::printf("  %-6s  AP %s  (%lld faces)\n", kNames[s], fixed(curves[static_cast<size_t>(s)].ap, 4).c_str(),
                static_cast<long long>(curves[static_cast<size_t>(s)].faces));
  std::printf("  (%.1f s)\n", seconds_since(t0));
  return kExitOk;
}

}  // namespace

void register_eval(CLI::App& app, std::function<void(int)> set_rc) {
  auto* ev = app.add_subcommand("eval", "measure accuracy on standard protocols: LFW, 1:N identification, WIDER FACE");
  ev->require_subcommand(1);

  static LfwArgs lfw;
  auto* l = ev->add_subcommand("lfw", "LFW 10-fold verification: accuracy, AUC, TAR@FAR=1e-3, EER");
  l->add_option("--root", lfw.root, "LFW images: a folder with one sub-folder per person (or its parent)")->required();
  l->add_option("--pairs", lfw.pairs, "the pairs file, e.g. pairs.txt (header \"folds n\")")->required();
  l->add_flag("--flip", lfw.flip, "flip test-time augmentation: sum the embeddings of each face and its mirror image");
  l->add_option("--cache", lfw.cache, "keep every image's template in this file and reuse it (the same file serves "
                                      "identify --lfw-open-set and calibrate)");
  l->add_option("--retry-score", lfw.retry_score, "detection confidence for the retry on images with no face (default 0.2)")
      ->check(CLI::Range(0.0, 1.0));
  add_output_options(*l, lfw.o, lfw.out, "the ROC curve");
  l->callback([set_rc] { set_rc(run_lfw(lfw)); });

  static IdentifyEvalArgs id;
  auto* i = ev->add_subcommand("identify", "1:N identification: rank-1/5 (closed set), DIR at FPIR 1% and 10% (open set)");
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

  static CalibrateArgs cal;
  auto* c = ev->add_subcommand("calibrate", "measure an embedder's impostor calibration (FPIR -> threshold for N people) on "
                                          "LFW's calibration people; prints the manifest's open_set_calibration entry");
  c->add_option("--root", cal.root, "LFW images: a folder with one sub-folder per person (or its parent)")->required();
  c->add_option("--cache", cal.cache, "keep every image's template in this file and reuse it");
  c->add_option("--seed", cal.seed, "seed of the pool image picked per person (default 8)");
  c->add_flag("--flip", cal.flip, "flip test-time augmentation (sum the embeddings of each face and its mirror image)");
  c->add_flag("--json", cal.o.json, "print one JSON object");
  add_model_options(*c, cal.o);
  c->callback([set_rc] { set_rc(run_calibrate(cal)); });

  static DetectEvalArgs det;
  auto* d = ev->add_subcommand("detect", "WIDER FACE average precision on the easy, medium and hard subsets "
                                       "(detections kept down to confidence 0.02 unless --det-score)");
  d->add_option("--images", det.images, "the images folder (holding <event>/<file>.jpg)")->required();
  d->add_option("--gt", det.gt, "wider_face_val_bbx_gt.txt (or a subset of it: only its images are evaluated)")->required();
  d->add_option("--mat-dir", det.mat_dir, "folder with wider_{easy,medium,hard}_val.mat (default: the --gt file's folder)");
  d->add_option("--max-faces", det.max_faces, "keep at most this many detections per image, best first (default 750, "
                                              "as RetinaFace's evaluation; 0: all)")
      ->check(CLI::Range(0, 1000000));
  add_output_options(*d, det.o, det.out, "the precision/recall curves");
  d->callback([set_rc] { set_rc(run_detect_eval(det)); });

  register_eval_erc(*ev, set_rc);
}

}  // namespace facerec::cli
