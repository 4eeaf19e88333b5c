// The metrics of include/facerec/eval.h: verification, identification and
// WIDER FACE detection, each fast version beside its plain reference twin.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "facerec/eval.h"

namespace facerec::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// How many of n negatives a target rate allows. The epsilon keeps e.g.
// 1e-3 * 3000 (which is 3.0000000000000004 or 2.9999999999999996 depending on
// rounding) at 3.
int64_t allowed(double target_rate, size_t n) {
  if (target_rate < 0) return -1;
  return static_cast<int64_t>(std::floor(target_rate * static_cast<double>(n) + 1e-9));
}

// The smallest float strictly above v.
float just_above(float v) { return std::nextafter(v, kInf); }

}  // namespace

// ============================ Verification ==================================

std::vector<RocPoint> roc(std::span<const ScoredPair> pairs) {
  std::vector<ScoredPair> sorted(pairs.begin(), pairs.end());
  std::sort(sorted.begin(), sorted.end(), [](const ScoredPair& a, const ScoredPair& b) { return a.score > b.score; });
  int64_t n_same = 0, n_diff = 0;
  for (const auto& p : sorted) (p.same ? n_same : n_diff)++;
  if (n_same == 0 || n_diff == 0) return {};
  std::vector<RocPoint> out{{kInf, 0.0, 0.0}};
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < sorted.size();) {
    const float s = sorted[i].score;
    for (; i < sorted.size() && sorted[i].score == s; ++i) (sorted[i].same ? tp : fp)++;
    out.push_back({s, static_cast<double>(fp) / n_diff, static_cast<double>(tp) / n_same});
  }
  return out;
}

double auc(std::span<const ScoredPair> pairs) {
  std::vector<ScoredPair> sorted(pairs.begin(), pairs.end());
  std::sort(sorted.begin(), sorted.end(), [](const ScoredPair& a, const ScoredPair& b) { return a.score < b.score; });
  int64_t n_same = 0;
  double rank_sum = 0.0;  // sum of the 1-based ranks of the same-person scores, ties given their average rank
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j].score == sorted[i].score) ++j;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k)
      if (sorted[k].same) { rank_sum += avg_rank; ++n_same; }
    i = j;
  }
  const int64_t n_diff = static_cast<int64_t>(sorted.size()) - n_same;
  if (n_same == 0 || n_diff == 0) return kNaN;
  const double u = rank_sum - static_cast<double>(n_same) * (n_same + 1) / 2.0;
  return u / (static_cast<double>(n_same) * static_cast<double>(n_diff));
}

double auc_reference(std::span<const ScoredPair> pairs) {
  double wins = 0.0;
  int64_t couples = 0;
  for (const auto& s : pairs) {
    if (!s.same) continue;
    for (const auto& d : pairs) {
      if (d.same) continue;
      ++couples;
      if (s.score > d.score) wins += 1.0;
      else if (s.score == d.score) wins += 0.5;
    }
  }
  return couples ? wins / static_cast<double>(couples) : kNaN;
}

OperatingPoint tar_at_far(std::span<const ScoredPair> pairs, double target_far) {
  std::vector<float> diff, same;
  for (const auto& p : pairs) (p.same ? same : diff).push_back(p.score);
  if (diff.empty() || same.empty()) return {0.f, kNaN, kNaN};
  std::sort(diff.begin(), diff.end(), std::greater<>());
  const int64_t k = allowed(target_far, diff.size());
  OperatingPoint op;
  op.threshold = k >= static_cast<int64_t>(diff.size()) ? -kInf : just_above(diff[static_cast<size_t>(k)]);
  if (k < 0) op.threshold = kInf;
  const auto accepted = [&](const std::vector<float>& v) {
    return static_cast<double>(std::count_if(v.begin(), v.end(), [&](float s) { return s >= op.threshold; })) /
           static_cast<double>(v.size());
  };
  op.far = accepted(diff);
  op.tar = accepted(same);
  return op;
}

OperatingPoint tar_at_far_reference(std::span<const ScoredPair> pairs, double target_far) {
  std::set<float> candidates{-kInf, kInf};
  int64_t n_same = 0, n_diff = 0;
  for (const auto& p : pairs) {
    candidates.insert(p.score);
    candidates.insert(just_above(p.score));
    (p.same ? n_same : n_diff)++;
  }
  if (n_same == 0 || n_diff == 0) return {0.f, kNaN, kNaN};
  OperatingPoint best{kInf, 0.0, -1.0};
  for (float t : candidates) {  // ascending, so ties keep the lowest threshold
    int64_t fa = 0, ta = 0;
    for (const auto& p : pairs)
      if (p.score >= t) (p.same ? ta : fa)++;
    const double far = static_cast<double>(fa) / n_diff, tar = static_cast<double>(ta) / n_same;
    if (fa <= allowed(target_far, n_diff) && tar > best.tar) best = {t, far, tar};
  }
  return best;
}

EqualErrorRate eer(std::span<const ScoredPair> pairs) {
  const auto curve = roc(pairs);
  if (curve.empty()) return {kNaN, 0.f};
  for (size_t i = 1; i < curve.size(); ++i) {
    const double d1 = curve[i].far - (1.0 - curve[i].tar);
    if (d1 < 0) continue;
    const double d0 = curve[i - 1].far - (1.0 - curve[i - 1].tar);  // < 0 by the loop
    const double a = -d0 / (d1 - d0);                                // where FAR - FRR crosses 0, in 0..1
    EqualErrorRate out;
    out.eer = curve[i - 1].far + a * (curve[i].far - curve[i - 1].far);
    // The first point's threshold is +inf; there the crossing's threshold is
    // the first real score's.
    out.threshold = i == 1 ? curve[i].threshold
                           : static_cast<float>(curve[i - 1].threshold + a * (curve[i].threshold - curve[i - 1].threshold));
    return out;
  }
  return {kNaN, 0.f};  // unreachable: the last point has FAR 1, FRR 0
}

double accuracy_at(std::span<const ScoredPair> pairs, float threshold) {
  if (pairs.empty()) return kNaN;
  int64_t correct = 0;
  for (const auto& p : pairs) correct += ((p.score >= threshold) == p.same);
  return static_cast<double>(correct) / static_cast<double>(pairs.size());
}

namespace {
// The candidate thresholds of best_threshold(), ascending, for the sorted
// distinct scores v: just below v[0], the midpoints, just above v.back().
// A midpoint that rounds onto the lower score would accept it, so it moves up
// to the next float (which may be the upper score itself: that still
// separates the two).
std::vector<float> threshold_candidates(const std::vector<float>& v) {
  std::vector<float> c;
  if (v.empty()) return c;
  c.push_back(std::nextafter(v.front(), -kInf));
  for (size_t j = 1; j < v.size(); ++j) {
    float mid = static_cast<float>((static_cast<double>(v[j - 1]) + v[j]) / 2.0);
    if (mid <= v[j - 1]) mid = just_above(v[j - 1]);
    c.push_back(mid);
  }
  c.push_back(just_above(v.back()));
  return c;
}
}  // namespace

ThresholdChoice best_threshold(std::span<const ScoredPair> pairs) {
  if (pairs.empty()) return {0.f, kNaN};
  std::vector<ScoredPair> sorted(pairs.begin(), pairs.end());
  std::sort(sorted.begin(), sorted.end(), [](const ScoredPair& a, const ScoredPair& b) { return a.score < b.score; });
  std::vector<float> distinct;
  // same_below[j] / diff_below[j]: pairs scoring below distinct[j].
  std::vector<int64_t> same_below, diff_below;
  int64_t s = 0, d = 0;
  for (const auto& p : sorted) {
    if (distinct.empty() || p.score != distinct.back()) {
      distinct.push_back(p.score);
      same_below.push_back(s);
      diff_below.push_back(d);
    }
    (p.same ? s : d)++;
  }
  same_below.push_back(s);  // below "above the highest": everything
  diff_below.push_back(d);
  const auto candidates = threshold_candidates(distinct);
  // Candidate j accepts exactly the scores >= distinct[j] (j = size: none).
  ThresholdChoice best{0.f, -1.0};
  for (size_t j = 0; j < candidates.size(); ++j) {
    const int64_t correct = (s - same_below[j]) + diff_below[j];
    const double acc = static_cast<double>(correct) / static_cast<double>(sorted.size());
    if (acc > best.accuracy) best = {candidates[j], acc};
  }
  return best;
}

ThresholdChoice best_threshold_reference(std::span<const ScoredPair> pairs) {
  if (pairs.empty()) return {0.f, kNaN};
  std::set<float> unique;
  for (const auto& p : pairs) unique.insert(p.score);
  ThresholdChoice best{0.f, -1.0};
  for (float t : threshold_candidates({unique.begin(), unique.end()})) {
    const double acc = accuracy_at(pairs, t);
    if (acc > best.accuracy) best = {t, acc};
  }
  return best;
}

KFoldResult kfold_accuracy(std::span<const ScoredPair> pairs, std::span<const int> fold) {
  FACEREC_ASSERT(pairs.size() == fold.size());
  KFoldResult out;
  int k = 0;
  for (int f : fold) k = std::max(k, f + 1);
  out.cross_validated = k > 1;
  std::vector<ScoredPair> train, test;
  for (int f = 0; f < k; ++f) {
    train.clear();
    test.clear();
    for (size_t i = 0; i < pairs.size(); ++i) (fold[i] == f ? test : train).push_back(pairs[i]);
    if (test.empty()) continue;
    const ThresholdChoice c = best_threshold(out.cross_validated ? train : test);
    out.folds.push_back({c.threshold, accuracy_at(test, c.threshold), static_cast<int>(test.size())});
  }
  if (out.folds.empty()) return {{}, kNaN, kNaN, kNaN, out.cross_validated};
  double sum = 0, sum_t = 0;
  for (const auto& f : out.folds) { sum += f.accuracy; sum_t += f.threshold; }
  const double n = static_cast<double>(out.folds.size());
  out.accuracy = sum / n;
  out.threshold = sum_t / n;
  double var = 0;
  for (const auto& f : out.folds) var += (f.accuracy - out.accuracy) * (f.accuracy - out.accuracy);
  out.accuracy_std = std::sqrt(var / n);
  return out;
}

// ============================ Identification ================================

SearchOutcome score_search(std::span<const float> scores, int truth, bool failed) {
  SearchOutcome o;
  o.mated = truth >= 0;
  o.mate_score = -kInf;
  o.top_score = -kInf;
  if (failed || scores.empty()) return o;
  o.top_score = *std::max_element(scores.begin(), scores.end());
  if (truth < 0 || truth >= static_cast<int>(scores.size())) return o;  // not enrolled, or enrolled without a template
  o.mate_score = scores[static_cast<size_t>(truth)];
  o.rank = 1;
  for (size_t j = 0; j < scores.size(); ++j)
    if (static_cast<int>(j) != truth && scores[j] >= o.mate_score) ++o.rank;
  return o;
}

std::vector<double> cmc(std::span<const SearchOutcome> searches, int max_rank) {
  std::vector<int64_t> hits(static_cast<size_t>(std::max(0, max_rank)), 0);
  int64_t mated = 0;
  for (const auto& s : searches) {
    if (!s.mated) continue;
    ++mated;
    if (s.rank >= 1 && s.rank <= max_rank) ++hits[static_cast<size_t>(s.rank - 1)];
  }
  std::vector<double> out(hits.size(), kNaN);
  if (mated == 0) return out;
  int64_t cum = 0;
  for (size_t k = 0; k < hits.size(); ++k) {
    cum += hits[k];
    out[k] = static_cast<double>(cum) / static_cast<double>(mated);
  }
  return out;
}

double rank_k(std::span<const SearchOutcome> searches, int k) {
  if (k < 1) return kNaN;
  return cmc(searches, k).back();
}

namespace {
OpenSetPoint open_set_at(std::span<const SearchOutcome> searches, float t) {
  int64_t mated = 0, hits = 0, nonmated = 0, fp = 0;
  for (const auto& s : searches) {
    if (s.mated) {
      ++mated;
      hits += (s.rank == 1 && s.mate_score >= t);
    } else {
      ++nonmated;
      fp += (s.top_score >= t);
    }
  }
  return {t, nonmated ? static_cast<double>(fp) / nonmated : kNaN, mated ? static_cast<double>(hits) / mated : kNaN};
}
}  // namespace

OpenSetPoint dir_at_fpir(std::span<const SearchOutcome> searches, double target_fpir) {
  std::vector<float> nonmated;
  bool any_mated = false;
  for (const auto& s : searches) {
    if (s.mated) any_mated = true;
    else nonmated.push_back(s.top_score);
  }
  if (nonmated.empty() || !any_mated) return {0.f, kNaN, kNaN};
  std::sort(nonmated.begin(), nonmated.end(), std::greater<>());
  const int64_t k = allowed(target_fpir, nonmated.size());
  float t = k >= static_cast<int64_t>(nonmated.size()) ? -kInf : just_above(nonmated[static_cast<size_t>(std::max<int64_t>(k, 0))]);
  if (k < 0) t = kInf;
  return open_set_at(searches, t);
}

OpenSetPoint dir_at_fpir_reference(std::span<const SearchOutcome> searches, double target_fpir) {
  std::set<float> candidates{-kInf, kInf};
  int64_t nonmated = 0;
  bool any_mated = false;
  for (const auto& s : searches) {
    candidates.insert(s.top_score);
    candidates.insert(just_above(s.top_score));
    if (s.mated) any_mated = true;
    else ++nonmated;
  }
  if (nonmated == 0 || !any_mated) return {0.f, kNaN, kNaN};
  OpenSetPoint best{kInf, 0.0, -1.0};
  for (float t : candidates) {
    int64_t fp = 0;
    for (const auto& s : searches) fp += (!s.mated && s.top_score >= t);
    if (fp > allowed(target_fpir, nonmated)) continue;
    const OpenSetPoint p = open_set_at(searches, t);
    if (p.dir > best.dir) best = p;
  }
  return best;
}

// =============================== Detection ==================================

double wider_iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const double ax2 = static_cast<double>(a.x) + a.width, ay2 = static_cast<double>(a.y) + a.height;
  const double bx2 = static_cast<double>(b.x) + b.width, by2 = static_cast<double>(b.y) + b.height;
  const double iw = std::min(ax2, bx2) - std::max<double>(a.x, b.x) + 1.0;
  if (iw <= 0) return 0.0;
  const double ih = std::min(ay2, by2) - std::max<double>(a.y, b.y) + 1.0;
  if (ih <= 0) return 0.0;
  const double inter = iw * ih;
  const double ua = (static_cast<double>(a.width) + 1.0) * (static_cast<double>(a.height) + 1.0) +
                    (static_cast<double>(b.width) + 1.0) * (static_cast<double>(b.height) + 1.0) - inter;
  return inter / ua;
}

ImageMatch wider_match_image(const WiderImage& image, std::span<const int> order, double iou_threshold) {
  FACEREC_ASSERT(image.keep.size() == image.gt.size());
  ImageMatch m;
  m.found.resize(order.size());
  m.proposal.assign(order.size(), 1);
  // Per face: 0 untouched, 1 found (kept face), -1 hit although ignored.
  std::vector<int8_t> state(image.gt.size(), 0);
  int found = 0;
  for (size_t h = 0; h < order.size(); ++h) {
    const cv::Rect2f& det = image.detections[static_cast<size_t>(order[h])].box;
    double best = -1.0;
    size_t idx = 0;
    for (size_t g = 0; g < image.gt.size(); ++g) {
      const double o = wider_iou(image.gt[g], det);
      if (o > best) { best = o; idx = g; }  // the first of equal maxima, as max()/argmax() pick
    }
    if (!image.gt.empty() && best >= iou_threshold) {
      if (!image.keep[idx]) {
        state[idx] = -1;
        m.proposal[h] = 0;
      } else if (state[idx] == 0) {
        state[idx] = 1;
        ++found;
      }
    }
    m.found[h] = found;
  }
  return m;
}

namespace {

// The official norm_score(): min-max over every detection of every image,
// the extremes starting at min 1 and max 0. With a single distinct score the
// official code divides by zero; here all detections then become 1.
struct Normaliser {
  double lo = 1.0, hi = 0.0;
  explicit Normaliser(std::span<const WiderImage> images) {
    for (const auto& im : images)
      for (const auto& d : im.detections) { lo = std::min<double>(lo, d.score); hi = std::max<double>(hi, d.score); }
  }
  double operator()(float s) const { return hi > lo ? (static_cast<double>(s) - lo) / (hi - lo) : 1.0; }
};

// Detection indices by descending score (stable: equal scores keep the
// detector's order, as the official code reads a file top to bottom).
std::vector<int> by_score(const WiderImage& im) {
  std::vector<int> order(im.detections.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return im.detections[static_cast<size_t>(a)].score > im.detections[static_cast<size_t>(b)].score; });
  return order;
}

double threshold_at(int t, int thresholds) { return 1.0 - static_cast<double>(t + 1) / thresholds; }

PrCurve finish_curve(const std::vector<double>& proposals, const std::vector<double>& found, int64_t faces,
                     int thresholds) {
  PrCurve c;
  c.faces = faces;
  for (int t = 0; t < thresholds; ++t) {
    c.threshold.push_back(threshold_at(t, thresholds));
    // The official 0/0 is NaN, which MATLAB's max() then skips in the
    // envelope: the same as 0 here.
    c.precision.push_back(proposals[static_cast<size_t>(t)] > 0 ? found[static_cast<size_t>(t)] / proposals[static_cast<size_t>(t)] : 0.0);
    c.recall.push_back(faces > 0 ? found[static_cast<size_t>(t)] / static_cast<double>(faces) : kNaN);
  }
  c.ap = faces > 0 ? voc_ap(c.recall, c.precision) : kNaN;
  return c;
}

int64_t kept_faces(const WiderImage& im) {
  return std::count_if(im.keep.begin(), im.keep.end(), [](uint8_t k) { return k != 0; });
}

}  // namespace

PrCurve wider_pr_curve(std::span<const WiderImage> images, double iou_threshold, int thresholds) {
  const Normaliser norm(images);
  std::vector<double> proposals(static_cast<size_t>(thresholds), 0.0), found(static_cast<size_t>(thresholds), 0.0);
  int64_t faces = 0;
  for (const auto& im : images) {
    faces += kept_faces(im);
    if (im.gt.empty() || im.detections.empty()) continue;
    const auto order = by_score(im);
    const ImageMatch m = wider_match_image(im, order, iou_threshold);
    // Thresholds fall as t rises, so the last detection at or above the
    // threshold only moves forward: one pass per image.
    size_t n = 0;           // detections with normalised score >= the threshold
    int64_t proposed = 0;   // proposals among them
    for (int t = 0; t < thresholds; ++t) {
      const double thr = threshold_at(t, thresholds);
      while (n < order.size() && norm(im.detections[static_cast<size_t>(order[n])].score) >= thr) proposed += m.proposal[n++];
      if (n == 0) continue;
      proposals[static_cast<size_t>(t)] += static_cast<double>(proposed);
      found[static_cast<size_t>(t)] += m.found[n - 1];
    }
  }
  return finish_curve(proposals, found, faces, thresholds);
}

PrCurve wider_pr_curve_reference(std::span<const WiderImage> images, double iou_threshold, int thresholds) {
  const Normaliser norm(images);
  std::vector<double> proposals(static_cast<size_t>(thresholds), 0.0), found(static_cast<size_t>(thresholds), 0.0);
  int64_t faces = 0;
  for (const auto& im : images) {
    faces += kept_faces(im);
    if (im.gt.empty() || im.detections.empty()) continue;
    const auto order = by_score(im);
    const ImageMatch m = wider_match_image(im, order, iou_threshold);
    for (int t = 0; t < thresholds; ++t) {
      const double thr = threshold_at(t, thresholds);
      int last = -1;  // the official find(score >= thresh, 1, 'last')
      for (size_t h = 0; h < order.size(); ++h)
        if (norm(im.detections[static_cast<size_t>(order[h])].score) >= thr) last = static_cast<int>(h);
      if (last < 0) continue;
      int64_t p = 0;
      for (int h = 0; h <= last; ++h) p += (m.proposal[static_cast<size_t>(h)] == 1);
      proposals[static_cast<size_t>(t)] += static_cast<double>(p);
      found[static_cast<size_t>(t)] += m.found[static_cast<size_t>(last)];
    }
  }
  return finish_curve(proposals, found, faces, thresholds);
}

double voc_ap(std::span<const double> recall, std::span<const double> precision) {
  FACEREC_ASSERT(recall.size() == precision.size());
  std::vector<double> mrec{0.0}, mpre{0.0};
  mrec.insert(mrec.end(), recall.begin(), recall.end());
  mpre.insert(mpre.end(), precision.begin(), precision.end());
  mrec.push_back(1.0);
  mpre.push_back(0.0);
  for (size_t i = mpre.size() - 1; i > 0; --i) mpre[i - 1] = std::max(mpre[i - 1], mpre[i]);
  double ap = 0.0;
  for (size_t i = 0; i + 1 < mrec.size(); ++i)
    if (mrec[i + 1] != mrec[i]) ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1];
  return ap;
}

}  // namespace facerec::eval
