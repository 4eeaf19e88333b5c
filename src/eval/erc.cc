// Error-versus-reject curves (see include/facerec/eval.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "facerec/eval.h"

namespace facerec::eval {

ErcCurve erc(std::span<const QualityPair> pairs, float threshold, std::span<const double> reject_fractions) {
  ErcCurve out;
  out.threshold = threshold;
  // Same-person pairs by ascending quality, each with whether it is a false non-match.
  std::vector<std::pair<float, bool>> genuine;
  for (const auto& p : pairs)
    if (p.same) genuine.emplace_back(p.quality, p.score < threshold);
  std::sort(genuine.begin(), genuine.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const int64_t n = static_cast<int64_t>(genuine.size());
  out.genuine = n;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  int64_t errors = 0;
  for (const auto& g : genuine) errors += g.second;
  out.fnmr0 = n ? static_cast<double>(errors) / static_cast<double>(n) : nan;

  // errors_before[i]: false non-matches among genuine[0..i).
  std::vector<int64_t> errors_before(genuine.size() + 1, 0);
  for (size_t i = 0; i < genuine.size(); ++i) errors_before[i + 1] = errors_before[i] + genuine[i].second;

  for (double r : reject_fractions) {
    ErcPoint pt;
    pt.rejected = r;
    const int64_t k = std::clamp<int64_t>(static_cast<int64_t>(std::floor(r * static_cast<double>(n) + 1e-9)), 0, n);
    if (n == 0 || k >= n) {
      pt.fnmr = nan;
      out.points.push_back(pt);
      out.quality_at_cut.push_back(std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    // The tie group that holds the cut: [lo, hi) all with genuine[k]'s quality
    // (when k == 0 nothing is rejected at all).
    double rejected_errors = 0.0;
    if (k > 0) {
      const float q = genuine[static_cast<size_t>(k - 1)].first;
      const int64_t lo = std::lower_bound(genuine.begin(), genuine.end(), q,
                                          [](const auto& g, float v) { return g.first < v; }) - genuine.begin();
      const int64_t hi = std::upper_bound(genuine.begin(), genuine.end(), q,
                                          [](float v, const auto& g) { return v < g.first; }) - genuine.begin();
      const double group_errors = static_cast<double>(errors_before[static_cast<size_t>(hi)] - errors_before[static_cast<size_t>(lo)]);
      rejected_errors = static_cast<double>(errors_before[static_cast<size_t>(lo)]) +
                        group_errors * static_cast<double>(k - lo) / static_cast<double>(hi - lo);
    }
    pt.fnmr = (static_cast<double>(errors) - rejected_errors) / static_cast<double>(n - k);
    out.points.push_back(pt);
    out.quality_at_cut.push_back(k > 0 ? genuine[static_cast<size_t>(k - 1)].first : std::numeric_limits<float>::quiet_NaN());
  }

  double area = 0.0, span = 0.0;
  for (size_t i = 1; i < out.points.size(); ++i) {
    const double w = out.points[i].rejected - out.points[i - 1].rejected;
    area += w * (out.points[i].fnmr + out.points[i - 1].fnmr) / 2;
    span += w;
  }
  out.mean_fnmr = span > 0 ? area / span : (out.points.empty() ? nan : out.points[0].fnmr);
  return out;
}

}  // namespace facerec::eval
