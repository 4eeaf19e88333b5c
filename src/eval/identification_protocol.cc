// 1:N identification on folder-per-person trees (facerec/eval_identification.h).
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "facerec/eval_identification.h"
#include "facerec/eval_templates.h"
#include "facerec/names.h"
#include "facerec/search.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

// Fisher-Yates with mt19937_64, whose output the standard fixes, so a seed
// gives the same split with every standard library (std::shuffle's use of
// the engine is not specified). The modulo bias is below 1e-15 here.
template <class T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng() % i)]);
}


}  // namespace

Result<IdentificationSet> identification_set_from_folders(const std::string& gallery_dir, const std::string& probe_dir) {
  FACEREC_ASSIGN_OR_RETURN(auto g, person_folders(gallery_dir));
  FACEREC_ASSIGN_OR_RETURN(auto p, person_folders(probe_dir));
  IdentificationSet set;
  std::set<std::string> names;
  for (const auto& person : g) {
    names.insert(person.name);
    for (const auto& i : person.images) set.gallery.push_back({person.name, i});
  }
  // A probe person without a gallery folder is most likely a spelling
  // difference; people who are meant to be unknown are added as such.
  std::string missing;
  for (const auto& person : p) {
    if (!names.count(person.name)) missing += (missing.empty() ? "" : ", ") + printable(person.name);
    for (const auto& i : person.images) set.probes.push_back({person.name, i});
  }
  if (!missing.empty())
    return Status(ErrorCode::kInvalidArgument,
                  "probe people with no gallery folder of the same name: " + missing +
                      " (names must match exactly; put people who are not enrolled under --unknown)");
  return set;
}

Result<IdentificationSet> split_identification_set(const IdentificationSplit& split) {
  if (split.gallery_per_person < 1)
    return Status(ErrorCode::kInvalidArgument, "gallery_per_person must be at least 1");
  if (split.unknown_people < 0) return Status(ErrorCode::kInvalidArgument, "unknown_people must not be negative");
  FACEREC_ASSIGN_OR_RETURN(auto people, person_folders(split.dir));
  if (split.unknown_people >= static_cast<int>(people.size()))
    return Status(ErrorCode::kInvalidArgument, "--unknown-people " + std::to_string(split.unknown_people) +
                                                   " leaves nobody enrolled out of " + std::to_string(people.size()));
  IdentificationSet set;
  std::mt19937_64 rng(split.seed);
  seeded_shuffle(people, rng);
  int enrolled_without_probe = 0;
  for (size_t i = 0; i < people.size(); ++i) {
    auto& [name, imgs] = people[i];
    if (static_cast<int>(i) < split.unknown_people) {
      for (auto& p : imgs) set.probes.push_back({"", p});
      continue;
    }
    seeded_shuffle(imgs, rng);
    for (size_t k = 0; k < imgs.size(); ++k)
      (static_cast<int>(k) < split.gallery_per_person ? set.gallery : set.probes).push_back({name, imgs[k]});
    enrolled_without_probe += static_cast<int>(imgs.size()) <= split.gallery_per_person;
  }
  set.split_note = "split of " + split.dir + " with seed " + std::to_string(split.seed) + ": " +
                   std::to_string(split.gallery_per_person) + " gallery image(s) per person, " +
                   std::to_string(split.unknown_people) + " people held out as unknown" +
                   (enrolled_without_probe
                        ? ", " + std::to_string(enrolled_without_probe) + " people too small to give probes"
                        : "");
  return set;
}

Status add_unknown_probes(IdentificationSet& set, const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status(ErrorCode::kNotFound, dir + " is not a folder");
  for (auto& p : list_images(dir)) set.probes.push_back({"", p});
  return Status::Ok();
}

Result<IdentificationResult> run_identification(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                                const IdentificationSet& set, const IdentificationOptions& options,
                                                const ProtocolHooks& hooks) {
  const auto& gallery = set.gallery;
  const auto& probes = set.probes;
  TemplateOptions topt;
  topt.pick = FacePick::kLargest;  // as enroll and identify do
  topt.retry_score = options.retry_score;
  TemplateMaker maker(analyzer, limits, topt);
  std::vector<std::string> paths;
  for (const auto& g : gallery) paths.push_back(g.path);
  for (const auto& p : probes) paths.push_back(p.path);
  const std::string what = "embedding gallery and probes";
  size_t done = 0;
  FACEREC_ASSIGN_OR_RETURN(
      std::vector<ImageTemplate> templates,
      maker.make(paths, [&] { hooks.step(what, ++done, paths.size()); }, [&] { return hooks.stop(); }));

  IdentificationResult out;
  out.gallery_images = gallery.size();
  // The index holds the people with at least one gallery template; person
  // indices follow its order, and enrolled people with no template come
  // after them, so score_search() counts their probes as misses.
  std::map<std::string, std::vector<size_t>> rows_of;
  for (size_t i = 0; i < gallery.size(); ++i) {
    const ImageTemplate& t = templates[i];
    out.retried += t.source == TemplateSource::kRetried;
    if (t.source == TemplateSource::kFailed) { ++out.gallery_failed; continue; }
    rows_of[gallery[i].person].push_back(i);
  }
  std::map<std::string, int> person_index;
  std::vector<std::string> row_identity;
  std::vector<float> rows;
  const int dim = analyzer.embedder().dim();
  for (const auto& [name, idx] : rows_of) {
    person_index[name] = static_cast<int>(out.people.size());
    out.people.push_back(name);
    for (size_t i : idx) {
      row_identity.push_back(name);
      const auto& u = templates[i].embedding.unit;
      rows.insert(rows.end(), u.begin(), u.end());
    }
  }
  for (const auto& g : gallery)
    if (!person_index.count(g.person))
      person_index[g.person] = static_cast<int>(out.people.size()) + out.people_without_template++;
  if (out.people.empty()) return Status(ErrorCode::kNoFace, "no gallery image gave a template");
  FACEREC_ASSIGN_OR_RETURN(SearchIndex index, SearchIndex::create(dim, row_identity, rows));

  for (size_t k = 0; k < probes.size(); ++k) {
    const ImageTemplate& t = templates[gallery.size() + k];
    const bool known = !probes[k].person.empty();
    out.unknown += !known;
    out.retried += t.source == TemplateSource::kRetried;
    const auto truth_it = known ? person_index.find(probes[k].person) : person_index.end();
    if (known && truth_it == person_index.end())
      return Status(ErrorCode::kInvalidArgument, "probe of " + printable(probes[k].person) + " who has no gallery image");
    const int truth = known ? truth_it->second : -1;
    std::vector<float> scores;
    const bool failed = t.source == TemplateSource::kFailed;
    if (failed) {
      (known ? out.probe_failed : out.unknown_failed)++;
    } else {
      scores.assign(out.people.size(), 0.f);
      FACEREC_ASSIGN_OR_RETURN(auto found, index.search(t.embedding.unit, static_cast<int>(out.people.size())));
      for (const auto& c : found) scores[static_cast<size_t>(person_index.at(c.identity))] = c.similarity;
    }
    out.outcomes.push_back(score_search(scores, truth, failed));
    if (options.keep_scores) out.probe_scores.push_back({truth, failed, std::move(scores)});
  }
  out.mated = probes.size() - out.unknown;
  out.rank1 = rank_k(out.outcomes, 1);
  out.rank5 = rank_k(out.outcomes, 5);
  out.at_fpir_1pct = dir_at_fpir(out.outcomes, 0.01);
  out.at_fpir_10pct = dir_at_fpir(out.outcomes, 0.1);
  return out;
}

}  // namespace facerec::eval
