// Evaluation: the field's standard numbers, computed by facerec itself.
//
// The metrics are pure functions on score vectors, so that every number the
// `facerec eval` commands print can be recomputed from the scores they dump.
// Each metric with a clever implementation has a plain `_reference` twin
// that the tests compare against.
//
// Conventions, everywhere below:
// - A score is a similarity: higher means more alike (cosine for facerec).
// - A threshold t accepts a comparison when score >= t (as decide() does).
// - Rates are fractions in 0..1, never percentages.
// - A metric that is undefined for its input (e.g. AUC with no different-
//   person pair) returns NaN; the CLI prints it as "n/a" and JSON null.
//
// Thread safety: every function is pure and may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core/types.hpp>

#include "facerec/status.h"

namespace facerec::eval {

// ============================ Verification (1:1) ============================

// One compared pair of images.
struct ScoredPair {
  float score = 0.f;
  bool same = false;  // both images show the same person (a "genuine" pair)
};

struct RocPoint {
  float threshold = 0.f;  // +inf for the first point (nothing accepted)
  double far = 0.0;       // false accept rate: accepted different-person pairs / all of them
  double tar = 0.0;       // true accept rate: accepted same-person pairs / all of them
};

// The ROC curve with one point per distinct score, thresholds descending (so
// FAR and TAR ascending): from (0,0) at threshold +inf to (1,1) at the lowest
// score. Empty when either class is absent.
std::vector<RocPoint> roc(std::span<const ScoredPair> pairs);

// Area under the ROC: the probability that a random same-person pair scores
// above a random different-person pair, ties counting one half (the
// Mann-Whitney U statistic / (n_same * n_diff)). O(n log n) by rank sums.
double auc(std::span<const ScoredPair> pairs);
// The O(n_same * n_diff) double loop over all (same, different) couples.
double auc_reference(std::span<const ScoredPair> pairs);

struct OperatingPoint {
  float threshold = 0.f;
  double far = 0.0;  // achieved (<= the target)
  double tar = 0.0;
};
// The most accepting threshold whose FAR is at most target_far, and its TAR.
// With n different-person pairs at most k = floor(target_far * n) of them may
// be accepted, so the threshold lies just above the (k+1)-th highest
// different-person score (ties there are all rejected, which keeps FAR <= the
// target). With k >= n everything is accepted (threshold -inf).
OperatingPoint tar_at_far(std::span<const ScoredPair> pairs, double target_far);
// Sweeps every distinct score (and +inf) as the threshold, counting both
// classes by plain loops, and keeps the best TAR with FAR <= target.
OperatingPoint tar_at_far_reference(std::span<const ScoredPair> pairs, double target_far);

struct EqualErrorRate {
  double eer = 0.0;       // where FAR equals FRR = 1 - TAR
  float threshold = 0.f;  // interpolated like the rate
};
// Walks the ROC (FAR rising, FRR falling) to the first point where
// FAR >= FRR, and interpolates linearly between it and the point before, in
// the parameter that makes FAR - FRR zero. Both rates, and the threshold,
// use that same interpolation.
EqualErrorRate eer(std::span<const ScoredPair> pairs);

struct ThresholdChoice {
  float threshold = 0.f;
  double accuracy = 0.0;  // on the pairs it was chosen on
};
// The threshold that maximises accuracy ((accepted same + rejected
// different) / all) over pairs. Candidates are the midpoints between
// consecutive distinct scores, plus one below the lowest and one above the
// highest score, so a chosen threshold never sits on a training score. Ties
// go to the lowest (most accepting) candidate. O(n log n).
ThresholdChoice best_threshold(std::span<const ScoredPair> pairs);
// The same candidates, each counted with a plain O(n) loop.
ThresholdChoice best_threshold_reference(std::span<const ScoredPair> pairs);
double accuracy_at(std::span<const ScoredPair> pairs, float threshold);

struct FoldResult {
  float threshold = 0.f;  // chosen on the other folds
  double accuracy = 0.0;  // on this fold
  int pairs = 0;
};
struct KFoldResult {
  std::vector<FoldResult> folds;
  double accuracy = 0.0;      // mean over folds
  double accuracy_std = 0.0;  // population standard deviation over folds (ddof 0, as the LFW literature reports)
  double threshold = 0.0;     // mean of the per-fold thresholds
  // False when there was a single fold: its threshold was then chosen on the
  // very pairs it is measured on, which flatters the accuracy.
  bool cross_validated = true;
};
// LFW's protocol (k = 10): for each fold, the threshold is chosen by
// best_threshold() on all other folds, and accuracy is measured on that fold.
// fold[i] is pair i's fold, 0..k-1; k is 1 + the largest. Folds with no
// pairs are skipped. Requires fold.size() == pairs.size().
KFoldResult kfold_accuracy(std::span<const ScoredPair> pairs, std::span<const int> fold);

// ========================= Identification (1:N) ============================

// The outcome of one probe searched against a gallery of enrolled people.
struct SearchOutcome {
  bool mated = false;  // the probe's person is enrolled
  // 1-based rank of the probe's own person among all enrolled people, ties
  // counted against it (a tie with another person is not a hit). 0 when not
  // mated, or when the search failed (no face, so no template).
  int rank = 0;
  float mate_score = 0.f;  // the own person's score (mated searches only)
  // The best score over all enrolled people; -inf when the search failed, so
  // a failed search is never accepted as anyone (as NIST FRVT scores a
  // failure to make a template: a miss when mated, a correct rejection when not).
  float top_score = 0.f;
};

// Builds the outcome of one search from its scores against every enrolled
// person (scores[p] = the probe's similarity to person p, the best over that
// person's templates), truth = the probe's person (-1: not enrolled).
// `failed` marks a probe that produced no template (scores are ignored).
SearchOutcome score_search(std::span<const float> scores, int truth, bool failed = false);

// Closed set: the cumulative match characteristic over the mated searches.
// cmc[k-1] = fraction of mated searches whose rank is 1..k, for k = 1..max_rank.
// Failed mated searches count as misses at every rank.
std::vector<double> cmc(std::span<const SearchOutcome> searches, int max_rank);
double rank_k(std::span<const SearchOutcome> searches, int k);

struct OpenSetPoint {
  float threshold = 0.f;
  double fpir = 0.0;  // achieved false-positive identification rate (<= the target)
  double dir = 0.0;   // detection and identification rate
};
// Open set at rank 1 (NIST's definitions): a non-mated search is a false
// positive when its top score >= t; a mated search is a hit when its own
// person ranks first and scores >= t. The threshold is the most accepting one
// whose FPIR is at most target_fpir, chosen exactly as tar_at_far() chooses
// its threshold among the non-mated top scores. NaN rates when there are no
// non-mated or no mated searches.
OpenSetPoint dir_at_fpir(std::span<const SearchOutcome> searches, double target_fpir);
// Sweeps every distinct top score as the threshold with plain loops.
OpenSetPoint dir_at_fpir_reference(std::span<const SearchOutcome> searches, double target_fpir);

// ===================== Quality: error-versus-reject curves ===================
//
// How well a face-quality score predicts recognition errors (Grother &
// Tabassi's error-versus-reject characteristic, as the MagFace paper plots
// it): the match threshold is fixed first (typically at FMR = 1e-3 on all
// pairs), then the lowest-quality fraction r of the same-person pairs is
// rejected, and the FNMR of the pairs kept is read at that threshold. A pair's
// quality is the lower of its two faces' qualities (the weaker face decides).
// A useful quality score makes FNMR fall as r grows; rejecting at random
// leaves FNMR where it was (its expected value is the r = 0 FNMR).
//
// Ties in quality are split fairly: when the cut falls inside a group of
// pairs with equal quality, the group is rejected in proportion (the
// expected result of breaking the tie at random), so a coarse score is
// neither flattered nor penalised by the order of the input.

struct QualityPair {
  float score = 0.f;    // similarity
  bool same = false;    // same person (only these enter FNMR)
  float quality = 0.f;  // the pair's quality: min of its two faces'
};

struct ErcPoint {
  double rejected = 0.0;  // fraction of same-person pairs rejected, 0..1
  double fnmr = 0.0;      // false non-match rate of the kept same-person pairs at the threshold
};

struct ErcCurve {
  float threshold = 0.f;
  int64_t genuine = 0;           // same-person pairs before rejection
  double fnmr0 = 0.0;            // FNMR with nothing rejected (= random rejection's expected FNMR)
  std::vector<ErcPoint> points;  // one per reject fraction asked for, in that order
  // Mean FNMR over the curve (trapezoids over the fractions, which must be
  // ascending, divided by their span): lower is better. Random rejection's
  // mean is fnmr0, so gain() > 0 means the score beats rejecting at random.
  double mean_fnmr = 0.0;
  double gain() const { return fnmr0 > 0 ? 1.0 - mean_fnmr / fnmr0 : 0.0; }
  // The quality value at each point's cut: pairs below it were rejected
  // (NaN for r = 0).
  std::vector<float> quality_at_cut;
};

// The ERC of `pairs` at `threshold` (a pair matches when score >= threshold),
// at each fraction in reject_fractions (each in [0, 1)). NaN FNMRs when there
// is no same-person pair.
ErcCurve erc(std::span<const QualityPair> pairs, float threshold, std::span<const double> reject_fractions);

// ============================ Detection (WIDER FACE) ========================
//
// The official WIDER FACE evaluation (eval_tools/evaluation.m, and its widely
// used Python port), rule for rule:
// - Detection scores are min-max normalised over the whole evaluated set.
// - In each image, detections are taken by descending score; each one looks at
//   the ground-truth face it overlaps most. If that IoU >= 0.5: a face outside
//   the subset (not in the .mat's gt_list for easy/medium/hard) is "ignored",
//   and the detection counts as neither true nor false positive; a kept face
//   not yet found is found; a kept face already found leaves the detection a
//   false positive (this is not a one-to-one assignment).
// - Precision and recall are read at 1000 score thresholds 1 - t/1000,
//   t = 1..1000, summed over images; recall divides by the number of kept
//   faces in all evaluated images. Images with no ground truth or no
//   detections add nothing but their kept faces.
// - AP is the VOC area under the precision envelope (voc_ap).

// One detection, in original-image pixels; box is (x, y, w, h).
struct ScoredBox {
  cv::Rect2f box;
  float score = 0.f;
};

// One image as the metric sees it.
struct WiderImage {
  std::vector<cv::Rect2f> gt;   // (x, y, w, h) in pixels
  std::vector<uint8_t> keep;    // per gt box: 1 = in the subset, 0 = ignored
  std::vector<ScoredBox> detections;  // any order
};

// IoU with the official inclusive-pixel convention: a box from x to x + w
// covers w + 1 pixels (VOC's boxoverlap).
double wider_iou(const cv::Rect2f& a, const cv::Rect2f& b);

// Per-image matching (the official image_evaluation). `order` lists the
// detections by descending score. found[h] = kept faces found by detections
// order[0..h]; proposal[h] = 0 when detection order[h] matched an ignored face.
struct ImageMatch {
  std::vector<int> found;
  std::vector<uint8_t> proposal;
};
ImageMatch wider_match_image(const WiderImage& image, std::span<const int> order, double iou_threshold);

struct PrCurve {
  std::vector<double> threshold;  // normalised score thresholds, descending
  std::vector<double> precision;  // 0 where nothing was proposed (the official code's 0/0)
  std::vector<double> recall;
  double ap = 0.0;
  int64_t faces = 0;  // kept faces: recall's denominator
};
// The official precision/recall curve and AP over a set of images.
// thresholds: how many score thresholds (the official 1000).
PrCurve wider_pr_curve(std::span<const WiderImage> images, double iou_threshold = 0.5, int thresholds = 1000);
// The same, transliterating the official code: for every threshold, every
// image is rescanned from the start.
PrCurve wider_pr_curve_reference(std::span<const WiderImage> images, double iou_threshold = 0.5,
                                 int thresholds = 1000);

// VOC average precision: the area under the precision envelope (precision
// made monotone from the right), with sentinels (0, 0) and (1, 0), summed
// over the points where recall changes. recall must be non-decreasing.
double voc_ap(std::span<const double> recall, std::span<const double> precision);

// ============================== Dataset readers =============================

// LFW pairs.txt: a header "folds n" (or just "n": one fold), then per fold n
// same-person lines "name i j" and n different-person lines "name1 i name2 j".
struct LfwPair {
  std::string image1, image2;  // relative paths: Name/Name_0001.jpg
  bool same = false;
  int fold = 0;                // 0-based
};
Result<std::vector<LfwPair>> read_lfw_pairs(const std::string& path);

// Official WIDER FACE ground truth for a set of images.
enum WiderSubset : int { kEasy = 0, kMedium = 1, kHard = 2 };
struct WiderGtImage {
  std::string path;                  // as in the txt: event/file.jpg
  std::vector<cv::Rect2f> boxes;     // (x, y, w, h), pixels
  std::array<std::vector<uint8_t>, 3> keep;  // per subset, per box: 1 = in it
};
// Reads wider_face_*_bbx_gt.txt: for each image, its path, its face count n,
// then n lines "x y w h blur expression illumination invalid occlusion pose"
// (an image with no face has one all-zero line). keep is left empty.
Result<std::vector<WiderGtImage>> read_wider_gt_txt(const std::string& path);
// Fills keep from wider_{easy,medium,hard}_val.mat in mat_dir (their gt_list:
// 1-based indices into each image's face_bbx_list). Images are found by event
// and file name; the .mat's boxes must equal the txt's, or the indices would
// point at other faces (kMismatch). Only the images passed in are touched.
Status read_wider_subsets(const std::string& mat_dir, std::vector<WiderGtImage>& images);

// ================================== Plots ===================================

// A line chart written as a PNG with OpenCV drawing: white canvas, axes with
// ticks and labels, a legend.
struct PlotSeries {
  std::string label;
  std::vector<double> x, y;
  cv::Scalar colour;  // BGR, 0..255
};
struct PlotSpec {
  std::string title, x_label, y_label;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  bool log_x = false;   // decades between x_min and x_max (both > 0); points with x <= 0 are clamped to x_min
  bool integer_x = false;  // ticks at integers (CMC ranks)
  std::vector<PlotSeries> series;
  int width = 900, height = 640;  // pixels
};
Status write_plot(const PlotSpec& spec, const std::string& path);
// Distinct, print-friendly BGR colours for series i = 0, 1, 2, ...
cv::Scalar plot_colour(int i);

}  // namespace facerec::eval
