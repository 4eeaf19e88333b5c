// The LFW open-set protocol end to end (facerec/eval_lfw_open_set.h).
#include "facerec/eval_lfw_open_set.h"
#include "facerec/eval_templates.h"

namespace facerec::eval {

Result<LfwOpenSetResult> run_lfw_open_set(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                          const LfwOpenSetOptions& options, const ProtocolHooks& hooks) {
  if (!(options.fpir > 0 && options.fpir < 1)) return Status(ErrorCode::kInvalidArgument, "the FPIR must be within (0, 1)");
  if (options.templates_per_person < 1)
    return Status(ErrorCode::kInvalidArgument, "templates_per_person must be at least 1");
  for (int size : options.sizes)
    if (size < 0) return Status(ErrorCode::kInvalidArgument, "a gallery size must be positive (0: all)");
  // A rule name with a leading "q": the mean rule weighted by face quality.
  auto is_qweighted = [](const std::string& r) { return r == "qmean" || r == "qmeanscore"; };
  for (const auto& r : options.rules) FACEREC_RETURN_IF_ERROR(parse_template_rule(is_qweighted(r) ? r.substr(1) : r));

  FACEREC_ASSIGN_OR_RETURN(LfwTemplates lfw, make_lfw_templates(analyzer, limits, options.root, options.cache_file,
                                                                /*calibration_only=*/false, options.flip, hooks));
  const int dim = analyzer.embedder().dim();
  const auto view = probe_view(lfw.templates);
  const ModelSpec& es = analyzer.embedder().spec();
  const uint64_t seed = options.seed;
  const int k = options.templates_per_person;
  LfwOpenSetResult out;
  for (int size : options.sizes) {
    const int trials = trials_for_size(size);
    for (const std::string& rule_name : options.rules) {
      const bool qweighted = is_qweighted(rule_name);
      FACEREC_ASSIGN_OR_RETURN(TemplateRule rule, parse_template_rule(qweighted ? rule_name.substr(1) : rule_name));
      std::vector<SearchOutcome> pooled;
      int people = 0;
      for (int r = 0; r < trials; ++r) {
        FACEREC_ASSIGN_OR_RETURN(OpenSetTrial trial, draw_open_set_trial(lfw.test, size, k, seed + static_cast<uint64_t>(r)));
        people = static_cast<int>(trial.gallery.size());
        FACEREC_ASSIGN_OR_RETURN(auto outcomes, run_open_set_trial(trial, view, dim, rule, qweighted));
        pooled.insert(pooled.end(), outcomes.begin(), outcomes.end());
      }
      DecisionRequest req;
      req.fpir = options.fpir;
      req.threshold_override = options.threshold_override;
      req.gallery_people = people;
      req.gallery_templates = static_cast<int64_t>(people) * k;
      req.rule = rule;
      req.embedder = es.id;
      req.calibration = &es.open_set_calibration;
      req.fallback_threshold = es.match_threshold;
      FACEREC_ASSIGN_OR_RETURN(DecisionPolicy policy, resolve_decision_policy(req));
      OpenSetRow row;
      row.size = size;
      row.people = people;
      row.templates_per_person = k;
      row.trials = trials;
      row.rule = rule_name;
      row.policy = policy;
      row.at_policy = rates_at_threshold(pooled, policy.threshold);
      row.oracle = dir_at_fpir(pooled, options.fpir);
      row.rank1 = rank_k(pooled, 1);
      out.rows.push_back(std::move(row));
    }
  }
  for (const auto& p : lfw.test) out.test_images += p.images.size();
  for (const auto& p : lfw.calibration) out.calibration_images += p.images.size();
  out.test_people = lfw.test.size();
  out.calibration_people = lfw.calibration.size();
  out.retried = lfw.retried;
  out.cropped = lfw.cropped;
  out.failed = lfw.failed;
  out.protocol = "LFW open set: " + std::to_string(out.test_people) + " test people (" + std::to_string(out.test_images) +
                 " images; " + std::to_string(out.calibration_people) + " calibration people with " +
                 std::to_string(out.calibration_images) + " images held out), gallery people have >= " +
                 std::to_string(k + 1) + " photos, " + std::to_string(k) + " enrolled each, seed " + std::to_string(seed);
  return out;
}

}  // namespace facerec::eval
