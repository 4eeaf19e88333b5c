// eval::TemplateMaker: the evaluation protocols' one way of turning an image
// into a template (moved out of apps/facerec/cmd_eval.cc unchanged).
#include "facerec/eval_templates.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include <opencv2/core.hpp>

#include "facerec/align.h"

namespace facerec::eval {

const float kLfwMeanLandmarks[5][2] = {
    {0.4179f, 0.4530f}, {0.5838f, 0.4497f}, {0.5026f, 0.5433f}, {0.4336f, 0.6293f}, {0.5786f, 0.6272f}};

namespace {

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

}  // namespace

TemplateMaker::TemplateMaker(const FaceAnalyzer& analyzer, ImageLimits limits, TemplateOptions options)
    : analyzer_(analyzer), limits_(limits), opt_(options), normal_(analyzer.detector().options()) {
  retry_ = normal_;
  retry_.score_threshold = opt_.retry_score;
  do_retry_ = opt_.retry_score > 0 && opt_.retry_score < normal_.score_threshold;
}

std::string TemplateMaker::cache_key() const {
  const auto& d = analyzer_.detector().spec();
  const auto& e = analyzer_.embedder().spec();
  return d.id + ":" + d.sha256 + " " + e.id + ":" + e.sha256 + " pick=" +
         (opt_.pick == FacePick::kCentral ? "central" : "largest") +
         " retry=" + (do_retry_ ? fixed(opt_.retry_score, 3) : "none") + " det=" + fixed(normal_.score_threshold, 3) +
         " crop=" + (opt_.center_crop ? "1" : "0") + " flip=" + (opt_.flip ? "1" : "0");
}

Result<std::vector<ImageTemplate>> TemplateMaker::make(const std::vector<std::string>& paths,
                                                       const std::function<void()>& step,
                                                       const std::function<bool()>& cancelled) {
  std::vector<ImageTemplate> out(paths.size());
  constexpr size_t kChunk = 32;  // images per embedder call
  for (size_t start = 0; start < paths.size(); start += kChunk) {
    std::vector<cv::Mat> crops;
    std::vector<size_t> owner;
    std::vector<std::optional<Face>> used;
    for (size_t i = start; i < std::min(paths.size(), start + kChunk); ++i) {
      if (cancelled && cancelled()) return Status(ErrorCode::kCancelled, "interrupted");
      if (step) step();
      if (from_cache(paths[i], out[i])) continue;
      std::optional<Face> face;
      FACEREC_ASSIGN_OR_RETURN(cv::Mat crop, prepare(paths[i], out[i], face));
      if (!crop.empty()) {
        crops.push_back(std::move(crop));
        owner.push_back(i);
        used.push_back(face);
      } else {
        to_cache(paths[i], out[i]);
      }
    }
    if (crops.empty()) continue;
    FACEREC_ASSIGN_OR_RETURN(std::vector<Embedding> embs, embed(crops));
    for (size_t k = 0; k < owner.size(); ++k) {
      ImageTemplate& t = out[owner[k]];
      t.embedding = std::move(embs[k]);
      t.quality = analyzer_.quality(used[k] ? &*used[k] : nullptr, crops[k], t.embedding);
      to_cache(paths[owner[k]], t);
    }
  }
  return out;
}

bool TemplateMaker::from_cache(const std::string& path, ImageTemplate& t) const {
  const CachedTemplate* c = cache_ ? cache_->find(path) : nullptr;
  if (!c) return false;
  t.source = static_cast<TemplateSource>(std::min<uint8_t>(c->source, static_cast<uint8_t>(TemplateSource::kFailed)));
  t.embedding.unit = c->unit;
  t.embedding.norm = c->norm;
  t.quality = c->quality;
  if (t.source == TemplateSource::kFailed) t.error = "no template (cached)";
  return true;
}

void TemplateMaker::to_cache(const std::string& path, const ImageTemplate& t) {
  if (!cache_) return;
  // Unreadable files are not cached: they may be fixed before the next run.
  if (t.source == TemplateSource::kFailed && t.error.find("no face") == std::string::npos) return;
  cache_->put(path, {static_cast<uint8_t>(t.source), t.embedding.norm, t.quality, t.embedding.unit});
}

// The aligned crop, or an empty Mat with t.source = kFailed and t.error set.
// A Status only for errors that must stop the run (the detector failing).
// `used` is the face that was aligned (none for the centre crop).
Result<cv::Mat> TemplateMaker::prepare(const std::string& path, ImageTemplate& t, std::optional<Face>& used) const {
  auto img = load_image(path, limits_);
  if (!img.ok()) {
    t.source = TemplateSource::kFailed;
    t.error = img.status().to_string();
    return cv::Mat();
  }
  FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, analyzer_.detect(*img));
  t.source = TemplateSource::kDetected;
  if (faces.empty() && do_retry_) {
    FACEREC_ASSIGN_OR_RETURN(faces, analyzer_.detect(*img, retry_));
    t.source = TemplateSource::kRetried;
  }
  const int size = analyzer_.embedder().spec().input.width;
  try {
    if (!faces.empty()) {
      const int k = opt_.pick == FacePick::kCentral ? most_central_face(faces, img->size()) : largest_face(faces);
      used = faces[static_cast<size_t>(k)];
      return align_face(*img, *used, size);
    }
    if (opt_.center_crop) {
      Face f;
      for (int j = 0; j < 5; ++j)
        f.landmarks[j] = {kLfwMeanLandmarks[j][0] * img->cols, kLfwMeanLandmarks[j][1] * img->rows};
      t.source = TemplateSource::kCenterCrop;
      return align_face(*img, f, size);
    }
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kInternal, path + ": align: " + e.what());
  }
  t.source = TemplateSource::kFailed;
  t.error = "no face found" + std::string(do_retry_ ? " (also not at confidence " + fixed(opt_.retry_score, 2) + ")" : "");
  return cv::Mat();
}

// With flip TTA, the template is the sum of the raw embeddings of the crop
// and its mirror image, normalised.
Result<std::vector<Embedding>> TemplateMaker::embed(const std::vector<cv::Mat>& crops) const {
  FACEREC_ASSIGN_OR_RETURN(std::vector<AnalyzedFace> plain, analyzer_.embed_aligned(crops));
  std::vector<Embedding> out;
  out.reserve(crops.size());
  if (!opt_.flip) {
    for (auto& a : plain) out.push_back(std::move(a.embedding));
    return out;
  }
  std::vector<cv::Mat> mirrored(crops.size());
  for (size_t i = 0; i < crops.size(); ++i) cv::flip(crops[i], mirrored[i], 1);
  FACEREC_ASSIGN_OR_RETURN(std::vector<AnalyzedFace> flipped, analyzer_.embed_aligned(mirrored));
  for (size_t i = 0; i < crops.size(); ++i) {
    const Embedding& a = plain[i].embedding;
    const Embedding& b = flipped[i].embedding;
    std::vector<float> sum(a.unit.size());
    for (size_t d = 0; d < sum.size(); ++d) sum[d] = a.unit[d] * a.norm + b.unit[d] * b.norm;
    out.push_back(make_embedding(sum.data(), static_cast<int>(sum.size())));
  }
  return out;
}

}  // namespace facerec::eval
