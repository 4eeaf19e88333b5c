// Open-set decisions measured in FPIR, for the gallery at hand.
//
// A stranger searched against a gallery of N people is named when their best
// person score reaches the threshold, so what a user should choose is the
// false positive identification rate (FPIR: the fraction of strangers who get
// a name), not a per-comparison threshold. This file turns a chosen FPIR into
// a cosine threshold for a gallery of N people, from a per-embedder
// calibration measured on real different-person searches.
//
// The model (what it assumes; README "Open-set decisions: --fpir"):
// - A calibration pool of M people, one template each, and probe faces of
//   other people. For every probe i, k_i(t) = how many pool people score >= t.
//   A gallery of N people drawn at random from the pool (not holding the
//   probe's own person) lets probe i through with probability
//       1 - C(M_i - k_i(t), N) / C(M_i, N),
//   exactly (sampling without replacement). FPIR(t, N) is its mean over
//   probes. Nothing here assumes that a probe's scores against different
//   people are independent: a probe that resembles many people (a "wolf")
//   keeps its many high scores, which is why FPIR grows more slowly than the
//   independence model 1 - (1 - FAR(t))^N predicts.
// - The calibration stores the thresholds t(F, N) solving FPIR(t, N) = F on a
//   grid of F and N (N <= M). Between grid points t is interpolated linearly
//   in (ln F, ln N). Beyond the largest measured N, t grows linearly in ln N
//   with the slope of the last two grid columns: the Gumbel (exponential
//   tail) form of the maximum, t = u + beta ln N. Cosine tails are lighter
//   than exponential, so this extrapolation errs on the strict side.
// - A gallery's people are assumed to be as unlike each other, and like
//   strangers, as LFW's people are; a gallery of relatives, or of people
//   from a population the embedder separates worse, has a higher FPIR.
// - Templates per person: the calibration has one template per person. Under
//   TemplateRule::kMean a person is one (mean) template however many photos
//   they have, so N = people; a mean template lets about 18% more strangers
//   through than a single photo (measured, BENCHMARKS.md: 1.24-1.42% measured
//   for 1% asked with 3 photos per person). kMeanScore averages the scores,
//   which thins the impostor tail: N = people is strict for it. Under kMax every template is a chance for a
//   stranger, so N = templates (exact when templates of one person are
//   independent, strict otherwise); kTop2Mean is bounded the same way.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "facerec/search.h"
#include "facerec/status.h"

namespace facerec {

// The default FPIR every identify/verify/watch run asks for.
constexpr double kDefaultFpir = 0.01;
// How identify and watch combine a person's templates: the cosine to their
// normalised mean template. Chosen by DIR at FPIR 1% on the LFW open-set
// protocol with 3 photos per person (BENCHMARKS.md, "Open-set identification
// (issue 8)"): the best or tied at every gallery size. Its cost: a person
// with 2 or more photos attracts about 18% more strangers than with one (it
// saturates: 15 photos attract no more than 2), where kMax attracts 4x more
// with 15 photos. kMeanScore attracts fewer with more photos, but loses up to
// 0.8 points of DIR.
constexpr TemplateRule kDefaultTemplateRule = TemplateRule::kMean;

// Where a calibration came from (stored beside it in models/manifest.json).
struct CalibrationProvenance {
  std::string data;     // e.g. "LFW deep-funneled, calibration half of the people (...)"
  std::string command;  // the exact command that measured it
  std::string date;     // YYYY-MM-DD
  std::string detector; // the detector used for the faces
  int64_t pool_people = 0;     // M
  int64_t probes = 0;          // probe faces
  int64_t impostor_scores = 0; // probe x pool comparisons measured
};

// One embedder's impostor calibration: thresholds t(F, N) for galleries of
// one template per person.
struct ImpostorCalibration {
  std::vector<double> fpir;       // the F grid, ascending, each in (0, 1)
  std::vector<int64_t> people;    // the N grid, ascending, each >= 1
  std::vector<float> threshold;   // fpir.size() x people.size(), row-major: threshold[f * people.size() + n]
  CalibrationProvenance provenance;

  bool empty() const { return threshold.empty(); }
  // Checks the shapes, that every grid is ascending and inside its range, and
  // that thresholds are finite cosines. kInvalidArgument naming the fault.
  Status validate() const;
  // The threshold for a target FPIR F and a gallery of `people` one-template
  // people (see the model above). F outside the grid is clamped to it (the
  // caller reports that); people < 1 is treated as 1.
  float threshold_for(double fpir, int64_t people) const;
};

// JSON (one object) <-> calibration, the layout stored in the manifest under
// an embedder's "open_set_calibration": {"fpir": [...], "people": [...],
// "threshold": [[... per N ...] per F], "provenance": {...}}.
Result<ImpostorCalibration> calibration_from_json(const std::string& json_text);
std::string calibration_to_json(const ImpostorCalibration& c);

// ----------------------------- Measuring it ---------------------------------

// FPIR(t, N) for one probe from its sorted-descending scores against the M_i
// pool people who are not the probe's person (exact, without replacement).
double probe_fpir(const std::vector<float>& scores_desc, float threshold, int64_t gallery_people);

// The calibration's core: `scores[i]` holds probe i's scores against every
// pool person except its own (any order; sorted inside). Solves FPIR(t, N) = F
// by bisection for every grid point; N values above the smallest M_i are
// dropped from the grid. kInvalidArgument with no probes or an empty grid.
Result<ImpostorCalibration> calibrate_impostors(std::vector<std::vector<float>> scores, std::vector<double> fpir_grid,
                                                std::vector<int64_t> people_grid);

// FPIR(t, N) averaged over probes (what calibrate_impostors inverts).
double mean_probe_fpir(const std::vector<std::vector<float>>& scores_desc, float threshold, int64_t gallery_people);

// The grids facerec's calibrations use.
std::vector<double> default_fpir_grid();     // 0.001 .. 0.2
std::vector<int64_t> default_people_grid();  // 1 .. 2000

// --------------------------- The decision policy ----------------------------

// What a run asks for. Resolved by resolve_decision_policy() into the one
// threshold it uses, with the reason.
struct DecisionRequest {
  double fpir = kDefaultFpir;              // the FPIR the user accepts, in (0, 1)
  std::optional<float> threshold_override; // --threshold: used as given
  int64_t gallery_people = 1;              // 1 for verify (1:1)
  int64_t gallery_templates = 1;           // every stored template
  TemplateRule rule = TemplateRule::kMean;
  std::string embedder;                    // its id, for the reason
  const ImpostorCalibration* calibration = nullptr;  // the embedder's; null or empty = none
  // The embedder's per-comparison threshold from the manifest (FAR 1e-3 on
  // LFW pairs); 0 = none. Used only without a calibration, and said so.
  float fallback_threshold = 0.f;
};

enum class PolicySource { kOverride, kCalibration, kFallback };
const char* to_string(PolicySource s);  // "threshold override", "calibration", "fallback"

struct DecisionPolicy {
  float threshold = 0.f;             // cosine; a person is named when their score >= it
  double fpir = kDefaultFpir;        // what was asked (also recorded under an override)
  int64_t gallery_people = 0;
  int64_t comparisons = 0;           // the N the calibration was read at (people, or templates under kMax/kTop2Mean)
  TemplateRule rule = TemplateRule::kMean;
  PolicySource source = PolicySource::kCalibration;
  std::string reason;                // one sentence a user can read
};

// {fpir, override, gallery size, rule, calibration} -> the threshold and why.
// Errors (kInvalidArgument): F outside (0, 1), an override outside -1..1,
// no calibration and no fallback threshold, an invalid calibration.
Result<DecisionPolicy> resolve_decision_policy(const DecisionRequest& request);

}  // namespace facerec
