// LFW 10-fold verification (facerec/eval_lfw.h).
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "facerec/embed.h"
#include "facerec/eval_lfw.h"
#include "facerec/eval_templates.h"

namespace fs = std::filesystem;

namespace facerec::eval {

std::string lfw_images_root(const std::string& root_in, const std::string& person) {
  fs::path root = root_in;
  std::error_code ec;
  if (!fs::is_directory(root / person, ec) && fs::is_directory(root / "images" / person, ec)) root /= "images";
  return root.string();
}

Result<LfwVerificationResult> run_lfw_verification(const FaceAnalyzer& analyzer, const ImageLimits& limits,
                                                   std::span<const LfwPair> pairs, const LfwVerificationOptions& options,
                                                   const ProtocolHooks& hooks) {
  if (pairs.empty()) return Status(ErrorCode::kInvalidArgument, "no LFW pairs to evaluate");
  const fs::path root = lfw_images_root(options.root, fs::path(pairs[0].image1).parent_path().string());
  std::vector<std::string> images;
  std::map<std::string, size_t> index;
  std::vector<std::pair<size_t, size_t>> pair_images;
  for (const auto& p : pairs) {
    size_t ids[2];
    const std::string* rel[2] = {&p.image1, &p.image2};
    for (int k = 0; k < 2; ++k) {
      const std::string path = (root / *rel[k]).string();
      auto [it, fresh] = index.emplace(path, images.size());
      if (fresh) images.push_back(path);
      ids[k] = it->second;
    }
    pair_images.emplace_back(ids[0], ids[1]);
  }

  TemplateOptions topt;
  topt.pick = FacePick::kCentral;  // LFW's subject is the centred face; others may be larger
  topt.retry_score = options.retry_score;
  topt.center_crop = true;
  topt.flip = options.flip;
  TemplateMaker maker(analyzer, limits, topt);
  std::optional<EmbeddingCache> cache;
  if (!options.cache_file.empty()) {
    FACEREC_ASSIGN_OR_RETURN(EmbeddingCache loaded, EmbeddingCache::load(options.cache_file, maker.cache_key()));
    cache = std::move(loaded);
    maker.use_cache(&*cache);
  }
  const std::string what = "embedding LFW images";
  size_t done = 0;
  auto templates = maker.make(images, [&] { hooks.step(what, ++done, images.size()); }, [&] { return hooks.stop(); });
  // Whatever was embedded is kept, also when interrupted.
  if (cache) FACEREC_RETURN_IF_ERROR(cache->save(options.cache_file));
  FACEREC_RETURN_IF_ERROR(templates.status());

  LfwVerificationResult out;
  out.images = images.size();
  out.normal_score = maker.normal_score();
  out.retries = maker.retries();
  for (size_t i = 0; i < templates->size(); ++i) {
    const ImageTemplate& t = (*templates)[i];
    // Every image is part of the protocol: one that cannot be read makes the
    // result incomparable, so it stops the run.
    if (t.source == TemplateSource::kFailed) return Status(ErrorCode::kNotFound, images[i] + ": " + t.error);
    out.retried += t.source == TemplateSource::kRetried;
    out.center_cropped += t.source == TemplateSource::kCenterCrop;
  }

  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [x, y] = pair_images[i];
    FACEREC_ASSIGN_OR_RETURN(float s, cosine((*templates)[x].embedding, (*templates)[y].embedding));
    out.scored.push_back({s, pairs[i].same});
    out.folds.push_back(pairs[i].fold);
  }
  out.kfold = kfold_accuracy(out.scored, out.folds);
  out.auc = auc(out.scored);
  out.tar_at_far_1e3 = tar_at_far(out.scored, 1e-3);
  out.eer = eer(out.scored);

  // kfold_accuracy() lists the folds present, in ascending order.
  std::map<int, float> fold_threshold;
  {
    size_t k = 0;
    const std::set<int> present(out.folds.begin(), out.folds.end());
    for (int f : present)
      if (k < out.kfold.folds.size()) fold_threshold[f] = out.kfold.folds[k++].threshold;
  }
  for (size_t i = 0; i < out.scored.size(); ++i) {
    const auto [x, y] = pair_images[i];
    if ((*templates)[x].source != TemplateSource::kCenterCrop && (*templates)[y].source != TemplateSource::kCenterCrop)
      continue;
    ++out.center_crop_pairs;
    out.center_crop_pairs_misclassified +=
        (out.scored[i].score >= fold_threshold[out.folds[i]]) != out.scored[i].same;
  }
  return out;
}

}  // namespace facerec::eval
