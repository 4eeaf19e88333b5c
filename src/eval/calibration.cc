// The impostor calibration on LFW's calibration people (facerec/eval_calibration.h).
#include <algorithm>
#include <cmath>

#include "facerec/eval_calibration.h"
#include "facerec/eval_templates.h"

namespace facerec::eval {

Result<CalibrationRun> run_calibration(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                       const CalibrationOptions& options, const ProtocolHooks& hooks) {
  FACEREC_ASSIGN_OR_RETURN(LfwTemplates lfw, make_lfw_templates(analyzer, limits, options.root, options.cache_file,
                                                                /*calibration_only=*/true, options.flip, hooks));
  const int dim = analyzer.embedder().dim();
  const auto view = probe_view(lfw.templates);
  CalibrationRun out;
  auto scores = impostor_scores(lfw.calibration, view, dim, options.seed, &out.pool_people);
  // mean_probe_fpir() below reads each probe's scores sorted descending.
  for (auto& s : scores) std::sort(s.begin(), s.end(), [](float x, float y) { return x > y; });
  FACEREC_ASSIGN_OR_RETURN(out.calibration, calibrate_impostors(scores, default_fpir_grid(), default_people_grid()));
  out.calibration_people = lfw.calibration.size();
  out.images = lfw.paths.size();
  auto& p = out.calibration.provenance;
  p.data = "LFW deep-funneled, the " + std::to_string(lfw.calibration.size()) +
           " calibration people (FNV-1a name hash % 3 == 0; disjoint from the open-set test people), " +
           std::to_string(lfw.paths.size()) + " images, one pool image per person (seed " + std::to_string(options.seed) +
           ")";
  p.detector = analyzer.detector().spec().id;
  p.pool_people = out.pool_people;

  for (double f : {0.01}) {
    for (int64_t n : out.calibration.people) {
      const float t = out.calibration.threshold_for(f, n);
      const double far = mean_probe_fpir(scores, t, 1);
      out.independence.push_back({f, n, t, 1 - std::pow(1 - far, static_cast<double>(n))});
    }
  }
  return out;
}

}  // namespace facerec::eval
