// 1:N identification on folder-per-person trees: rank-1/rank-5 (closed set)
// and DIR at FPIR 1% and 10% (open set), from a gallery of enrolled people, probes of
// those people and, optionally, probes of people who are not enrolled.
//
// The gallery and probes come from two trees whose person folders must match
// by name, or from one tree split with a seed (the split is the same with
// every standard library: Fisher-Yates over mt19937_64). Each image gets one
// template (the largest face, as enroll and identify pick it, with a
// low-confidence retry); a person's score is the best over their templates
// (SearchIndex, TemplateRule::kMax). A probe without a template is a miss,
// and never a false positive (score_search()).
//
// Thread safety: pure functions of their inputs; run_identification() only
// reads the analyzer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "facerec/eval.h"
#include "facerec/eval_protocol.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"

namespace facerec::eval {

// One image and whose it is.
struct LabelledImage {
  std::string person;  // empty: a person who is not enrolled
  std::string path;
};

// What to search: gallery images (all with a person) and probes.
struct IdentificationSet {
  std::vector<LabelledImage> gallery, probes;
  std::string split_note;  // how a split was drawn (empty for two trees)
};

// gallery_dir and probe_dir are folder-per-person trees. kInvalidArgument
// naming the probe people with no gallery folder of the same name (most
// likely a spelling difference: unknown people belong in
// add_unknown_probes()); kNotFound for a tree that is not one.
Result<IdentificationSet> identification_set_from_folders(const std::string& gallery_dir, const std::string& probe_dir);

struct IdentificationSplit {
  std::string dir;             // the one folder-per-person tree
  uint64_t seed = 0;
  int gallery_per_person = 1;  // images enrolled per person (>= 1); the rest are probes
  int unknown_people = 0;      // people held out whole as unknown probes (>= 0)
};
// Shuffles the people, holds the first unknown_people out as unknown, then
// shuffles each other person's images and enrols the first
// gallery_per_person. kInvalidArgument when nobody would be enrolled or a
// count is out of range; kNotFound for a tree that is not one.
Result<IdentificationSet> split_identification_set(const IdentificationSplit& split);

// Adds every file under `dir` (any layout) as a probe of a person who is not
// enrolled. kNotFound when `dir` is not a folder.
Status add_unknown_probes(IdentificationSet& set, const std::string& dir);

struct IdentificationOptions {
  float retry_score = 0.2f;  // detection confidence of the retry on images with no face
  bool keep_scores = false;  // fill IdentificationResult::probe_scores
};

// One probe's search, as the score dump records it.
struct ProbeSearch {
  int truth = -1;  // index into people; -1: not enrolled; >= people.size(): enrolled without a gallery template
  bool failed = false;        // no template
  std::vector<float> scores;  // per person in `people` (empty when failed)
};

struct IdentificationResult {
  // The people with at least one gallery template, in search order.
  std::vector<std::string> people;
  // Enrolled people none of whose gallery images gave a template: their
  // probes are misses.
  int people_without_template = 0;
  std::vector<SearchOutcome> outcomes;     // one per probe, in set order
  std::vector<ProbeSearch> probe_scores;   // per probe when keep_scores
  size_t mated = 0, unknown = 0;           // probes of enrolled / other people
  size_t gallery_images = 0;
  int gallery_failed = 0, probe_failed = 0, unknown_failed = 0;  // images without a template
  int retried = 0;                         // images found on the low-confidence retry
  double rank1 = 0.0, rank5 = 0.0;
  OpenSetPoint at_fpir_1pct, at_fpir_10pct;  // DIR at FPIR <= 1% and <= 10%
  int enrolled_people() const { return static_cast<int>(people.size()) + people_without_template; }
};

// Makes every template and searches every probe. kNoFace when no gallery
// image gave a template; kCancelled when hooks.cancelled answers true; model
// errors as they come.
Result<IdentificationResult> run_identification(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                                const IdentificationSet& set, const IdentificationOptions& options,
                                                const ProtocolHooks& hooks = {});

}  // namespace facerec::eval
