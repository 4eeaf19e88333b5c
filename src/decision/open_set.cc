// FPIR -> threshold for the gallery at hand (see facerec/open_set.h).
#include "facerec/open_set.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

namespace facerec {

namespace {

// ln C(n, k) for 0 <= k <= n.
double log_choose(double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); }

// Linear interpolation of y at x between (x0, y0) and (x1, y1); extrapolates
// outside [x0, x1]. Equal x's give y0.
double lerp_at(double x, double x0, double y0, double x1, double y1) {
  if (x1 == x0) return y0;
  return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
}

// The two grid indices bracketing v (by value), for interpolation in ln v:
// (i, i + 1) with grid[i] <= v <= grid[i + 1]; the last two beyond the top
// (extrapolation), the first two below the bottom. One-point grids give (0, 0).
std::pair<size_t, size_t> bracket(const std::vector<double>& log_grid, double log_v) {
  const size_t n = log_grid.size();
  if (n < 2) return {0, 0};
  size_t hi = static_cast<size_t>(std::upper_bound(log_grid.begin(), log_grid.end(), log_v) - log_grid.begin());
  hi = std::clamp<size_t>(hi, 1, n - 1);
  return {hi - 1, hi};
}

std::string percent(double f) {
  char b[32];
  std::snprintf(b, sizeof b, "%g%%", 100 * f);
  return b;
}

}  // namespace

Status ImpostorCalibration::validate() const {
  if (fpir.empty() || people.empty()) return Status(ErrorCode::kInvalidArgument, "calibration: empty fpir or people grid");
  if (threshold.size() != fpir.size() * people.size())
    return Status(ErrorCode::kInvalidArgument, "calibration: threshold has " + std::to_string(threshold.size()) +
                                                   " values, expected fpir x people = " +
                                                   std::to_string(fpir.size() * people.size()));
  for (size_t i = 0; i < fpir.size(); ++i) {
    if (!(fpir[i] > 0 && fpir[i] < 1)) return Status(ErrorCode::kInvalidArgument, "calibration: fpir grid value outside (0, 1)");
    if (i && !(fpir[i] > fpir[i - 1])) return Status(ErrorCode::kInvalidArgument, "calibration: fpir grid not ascending");
  }
  for (size_t i = 0; i < people.size(); ++i) {
    if (people[i] < 1) return Status(ErrorCode::kInvalidArgument, "calibration: people grid value below 1");
    if (i && people[i] <= people[i - 1]) return Status(ErrorCode::kInvalidArgument, "calibration: people grid not ascending");
  }
  for (float t : threshold)
    if (!std::isfinite(t) || t < -1.001f || t > 1.001f)
      return Status(ErrorCode::kInvalidArgument, "calibration: a threshold is not a cosine within -1..1");
  return Status::Ok();
}

float ImpostorCalibration::threshold_for(double f, int64_t n) const {
  if (empty()) return std::numeric_limits<float>::quiet_NaN();
  f = std::clamp(f, fpir.front(), fpir.back());
  n = std::max<int64_t>(n, 1);
  std::vector<double> lf(fpir.size()), ln(people.size());
  for (size_t i = 0; i < fpir.size(); ++i) lf[i] = std::log(fpir[i]);
  for (size_t i = 0; i < people.size(); ++i) ln[i] = std::log(static_cast<double>(people[i]));
  const double x = std::log(static_cast<double>(n)), y = std::log(f);
  // Plain variables, not a structured binding: the lambda below captures them
  // (clang 14, used by the fuzz build, cannot capture bindings).
  const auto nb = bracket(ln, x);
  const size_t n0 = nb.first, n1 = nb.second;
  const auto [f0, f1] = bracket(lf, y);
  const size_t w = people.size();
  // Along N first (extrapolating beyond the grid: the Gumbel slope), then F.
  auto at_f = [&](size_t fi) {
    return lerp_at(x, ln[n0], threshold[fi * w + n0], ln[n1], threshold[fi * w + n1]);
  };
  const double t = lerp_at(y, lf[f0], at_f(f0), lf[f1], at_f(f1));
  return static_cast<float>(std::clamp(t, -1.0, 1.0));
}

Result<ImpostorCalibration> calibration_from_json(const std::string& text) {
  using nlohmann::json;
  try {
    const json j = json::parse(text);
    ImpostorCalibration c;
    c.fpir = j.at("fpir").get<std::vector<double>>();
    c.people = j.at("people").get<std::vector<int64_t>>();
    const auto rows = j.at("threshold").get<std::vector<std::vector<float>>>();
    if (rows.size() != c.fpir.size())
      return Status(ErrorCode::kInvalidArgument, "calibration: threshold needs one row per fpir value");
    for (const auto& r : rows) {
      if (r.size() != c.people.size())
        return Status(ErrorCode::kInvalidArgument, "calibration: each threshold row needs one value per people value");
      c.threshold.insert(c.threshold.end(), r.begin(), r.end());
    }
    if (j.contains("provenance")) {
      const json& p = j["provenance"];
      c.provenance.data = p.value("data", "");
      c.provenance.command = p.value("command", "");
      c.provenance.date = p.value("date", "");
      c.provenance.detector = p.value("detector", "");
      c.provenance.pool_people = p.value("pool_people", int64_t{0});
      c.provenance.probes = p.value("probes", int64_t{0});
      c.provenance.impostor_scores = p.value("impostor_scores", int64_t{0});
    }
    if (Status s = c.validate(); !s.ok()) return s;
    return c;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument, std::string("calibration: malformed JSON: ") + e.what());
  }
}

std::string calibration_to_json(const ImpostorCalibration& c) {
  using nlohmann::json;
  json rows = json::array();
  for (size_t f = 0; f < c.fpir.size(); ++f) {
    json r = json::array();
    for (size_t n = 0; n < c.people.size(); ++n) {
      // 4 decimals: far below the sampling error of any calibration.
      r.push_back(std::round(double(c.threshold[f * c.people.size() + n]) * 1e4) / 1e4);
    }
    rows.push_back(r);
  }
  const auto& p = c.provenance;
  json j = {{"fpir", c.fpir},
            {"people", c.people},
            {"threshold", rows},
            {"provenance",
             {{"data", p.data},
              {"command", p.command},
              {"date", p.date},
              {"detector", p.detector},
              {"pool_people", p.pool_people},
              {"probes", p.probes},
              {"impostor_scores", p.impostor_scores}}}};
  return j.dump();
}

double probe_fpir(const std::vector<float>& desc, float t, int64_t n) {
  const int64_t m = static_cast<int64_t>(desc.size());
  if (m == 0) return 0.0;
  n = std::clamp<int64_t>(n, 1, m);
  // desc is sorted descending: the first k scores reach t.
  const int64_t k = std::partition_point(desc.begin(), desc.end(), [t](float s) { return s >= t; }) - desc.begin();
  if (k == 0) return 0.0;
  if (m - k < n) return 1.0;
  // P(no reaching person among n drawn) = C(m - k, n) / C(m, n)
  // = prod_{j < k} (m - n - j) / (m - j): the product when short (most probes
  // at high thresholds), log-gamma otherwise.
  if (k <= 16) {
    double none = 1.0;
    for (int64_t j = 0; j < k; ++j) none *= double(m - n - j) / double(m - j);
    return 1.0 - none;
  }
  return 1.0 - std::exp(log_choose(double(m - k), double(n)) - log_choose(double(m), double(n)));
}

double mean_probe_fpir(const std::vector<std::vector<float>>& scores, float t, int64_t n) {
  if (scores.empty()) return 0.0;
  double sum = 0;
  for (const auto& s : scores) sum += probe_fpir(s, t, n);
  return sum / static_cast<double>(scores.size());
}

Result<ImpostorCalibration> calibrate_impostors(std::vector<std::vector<float>> scores, std::vector<double> fpir_grid,
                                                std::vector<int64_t> people_grid) {
  std::erase_if(scores, [](const std::vector<float>& s) { return s.empty(); });
  if (scores.empty()) return Status(ErrorCode::kInvalidArgument, "calibration: no probe with impostor scores");
  size_t min_pool = std::numeric_limits<size_t>::max();
  int64_t total = 0;
  for (auto& s : scores) {
    std::sort(s.begin(), s.end(), [](float a, float b) { return a > b; });
    min_pool = std::min(min_pool, s.size());
    total += static_cast<int64_t>(s.size());
  }
  std::erase_if(people_grid, [&](int64_t n) { return n < 1 || n > static_cast<int64_t>(min_pool); });
  if (fpir_grid.empty() || people_grid.empty())
    return Status(ErrorCode::kInvalidArgument, "calibration: empty grid (people grid values must be <= the pool size " +
                                                   std::to_string(min_pool) + ")");
  ImpostorCalibration c;
  c.fpir = std::move(fpir_grid);
  c.people = std::move(people_grid);
  c.threshold.resize(c.fpir.size() * c.people.size());
  for (size_t f = 0; f < c.fpir.size(); ++f) {
    for (size_t n = 0; n < c.people.size(); ++n) {
      // FPIR falls as t rises. Invariant: FPIR(lo) > F >= FPIR(hi).
      double lo = -1.0, hi = 1.0 + 1e-6;
      for (int it = 0; it < 32; ++it) {  // 2 / 2^32: far below any score's precision
        const double mid = 0.5 * (lo + hi);
        if (mean_probe_fpir(scores, static_cast<float>(mid), c.people[n]) > c.fpir[f]) lo = mid;
        else hi = mid;
      }
      c.threshold[f * c.people.size() + n] = static_cast<float>(std::min(hi, 1.0));
    }
  }
  c.provenance.probes = static_cast<int64_t>(scores.size());
  c.provenance.impostor_scores = total;
  if (Status s = c.validate(); !s.ok()) return s;
  return c;
}

std::vector<double> default_fpir_grid() { return {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2}; }
std::vector<int64_t> default_people_grid() { return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}; }

const char* to_string(PolicySource s) {
  switch (s) {
    case PolicySource::kOverride: return "threshold override";
    case PolicySource::kCalibration: return "calibration";
    case PolicySource::kFallback: return "fallback";
  }
  return "?";
}

Result<DecisionPolicy> resolve_decision_policy(const DecisionRequest& r) {
  if (!(r.fpir > 0 && r.fpir < 1))
    return Status(ErrorCode::kInvalidArgument, "--fpir is a rate within (0, 1), e.g. 0.01 for 1% of strangers named");
  DecisionPolicy p;
  p.fpir = r.fpir;
  p.rule = r.rule;
  p.gallery_people = std::max<int64_t>(r.gallery_people, 0);
  const int64_t people = std::max<int64_t>(r.gallery_people, 1);
  const int64_t templates = std::max<int64_t>(r.gallery_templates, people);
  const bool per_person = r.rule == TemplateRule::kMean || r.rule == TemplateRule::kMeanScore;
  p.comparisons = per_person ? people : templates;
  if (r.threshold_override) {
    const float t = *r.threshold_override;
    if (!(t >= -1.f && t <= 1.f))
      return Status(ErrorCode::kInvalidArgument, "--threshold is a cosine similarity within -1..1");
    p.threshold = t;
    p.source = PolicySource::kOverride;
    p.reason = "--threshold given: the FPIR is not controlled";
    return p;
  }
  if (r.calibration && !r.calibration->empty()) {
    if (Status s = r.calibration->validate(); !s.ok()) return s;
    const ImpostorCalibration& c = *r.calibration;
    p.threshold = c.threshold_for(r.fpir, p.comparisons);
    p.source = PolicySource::kCalibration;
    const std::string unit = per_person ? " people" : " templates";
    p.reason = "FPIR " + percent(r.fpir) + " for " + std::to_string(p.comparisons) + unit + " (template rule " +
               to_string(r.rule) + "), from " + (r.embedder.empty() ? std::string("the embedder") : r.embedder) +
               "'s impostor calibration";
    if (!c.provenance.data.empty()) p.reason += " on " + c.provenance.data;
    if (r.fpir < c.fpir.front() || r.fpir > c.fpir.back())
      p.reason += "; FPIR outside the calibrated " + percent(c.fpir.front()) + ".." + percent(c.fpir.back()) +
                  ", clamped to it";
    if (p.comparisons > c.people.back())
      p.reason += "; beyond the " + std::to_string(c.people.back()) +
                  " people measured, extrapolated (Gumbel, strict side)";
    return p;
  }
  if (r.fallback_threshold > 0) {
    p.threshold = r.fallback_threshold;
    p.source = PolicySource::kFallback;
    p.reason = "no FPIR calibration for " + (r.embedder.empty() ? std::string("this embedder") : r.embedder) +
               ": its per-comparison threshold (FAR 1e-3 on LFW pairs) is used, so the FPIR is not controlled";
    return p;
  }
  return Status(ErrorCode::kInvalidArgument,
                "embedder '" + r.embedder + "' has neither an FPIR calibration nor a default threshold in the "
                "manifest; pass --threshold (or calibrate it: facerec eval calibrate)");
}

}  // namespace facerec
