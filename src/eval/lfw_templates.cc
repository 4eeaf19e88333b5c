// LFW's people with one template per image (facerec/eval_templates.h), shared
// by the LFW open-set protocol and the impostor calibration.
#include <filesystem>
#include <optional>

#include "facerec/eval_templates.h"

namespace fs = std::filesystem;

namespace facerec::eval {

Result<LfwTemplates> make_lfw_templates(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                        const std::string& root_in, const std::string& cache_file,
                                        bool calibration_only, bool flip, const ProtocolHooks& hooks) {
  fs::path root = root_in;
  std::error_code ec;
  if (fs::is_directory(root / "images", ec)) root /= "images";
  FACEREC_ASSIGN_OR_RETURN(auto people, person_folders(root.string()));
  LfwTemplates out;
  for (auto& person : people) {
    const bool cal = is_calibration_person(person.name);
    if (calibration_only && !cal) continue;
    PersonImages p{person.name, {}};
    for (auto& path : person.images) {
      p.images.push_back(static_cast<int>(out.paths.size()));
      out.paths.push_back(path);
    }
    (cal ? out.calibration : out.test).push_back(std::move(p));
  }
  TemplateOptions topt;
  topt.pick = FacePick::kCentral;
  topt.center_crop = true;
  topt.flip = flip;
  TemplateMaker maker(analyzer, limits, topt);
  std::optional<EmbeddingCache> cache;
  if (!cache_file.empty()) {
    FACEREC_ASSIGN_OR_RETURN(EmbeddingCache loaded, EmbeddingCache::load(cache_file, maker.cache_key()));
    cache = std::move(loaded);
    maker.use_cache(&*cache);
  }
  const std::string what = "embedding LFW images";
  size_t done = 0;
  auto t = maker.make(out.paths, [&] { hooks.step(what, ++done, out.paths.size()); }, [&] { return hooks.stop(); });
  // Whatever was embedded is kept, also when interrupted.
  if (cache) FACEREC_RETURN_IF_ERROR(cache->save(cache_file));
  FACEREC_RETURN_IF_ERROR(t.status());
  out.templates = std::move(t).value();
  for (const auto& x : out.templates) {
    out.retried += x.source == TemplateSource::kRetried;
    out.cropped += x.source == TemplateSource::kCenterCrop;
    out.failed += x.source == TemplateSource::kFailed;
  }
  return out;
}

std::vector<ProbeTemplate> probe_view(const std::vector<ImageTemplate>& t) {
  std::vector<ProbeTemplate> v(t.size());
  for (size_t i = 0; i < t.size(); ++i) v[i] = {t[i].embedding.unit, t[i].quality};
  return v;
}

}  // namespace facerec::eval
