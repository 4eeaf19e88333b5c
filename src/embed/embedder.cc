#include "facerec/embed.h"

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "facerec/detect.h"

namespace facerec {

Embedding make_embedding(const float* v, int dim) {
  Embedding e;
  double ss = 0;
  for (int i = 0; i < dim; ++i) ss += double(v[i]) * v[i];
  e.norm = static_cast<float>(std::sqrt(ss));
  e.unit.resize(dim);
  const float inv = e.norm > 0 ? 1.f / e.norm : 0.f;
  for (int i = 0; i < dim; ++i) e.unit[i] = v[i] * inv;
  return e;
}

Result<float> cosine(const Embedding& a, const Embedding& b) {
  if (a.unit.size() != b.unit.size())
    return Status(ErrorCode::kInvalidArgument, "cosine of embeddings of different dimensions (" +
                                                   std::to_string(a.unit.size()) + " and " +
                                                   std::to_string(b.unit.size()) + "): two different models?");
  double s = 0;
  for (size_t i = 0; i < a.unit.size(); ++i) s += double(a.unit[i]) * b.unit[i];
  return static_cast<float>(s);
}

Result<std::unique_ptr<Embedder>> Embedder::create(Runtime& runtime, const ModelSpec& spec, int max_batch,
                                                   ModelFileHashes* hashes) {
  if (spec.task != ModelTask::kEmbedder)
    return Status(ErrorCode::kInvalidArgument, "model '" + spec.id + "' is a " + to_string(spec.task) + ", not an embedder");
  FACEREC_RETURN_IF_ERROR(verify_model_file(spec, hashes));
  FACEREC_ASSIGN_OR_RETURN(auto session, runtime.load(spec.path, spec.session));
  const auto& in = session->inputs();
  const auto& out = session->outputs();
  if (in.size() != 1 || in[0].shape.size() != 4 || out.empty() || out[0].shape.size() != 2)
    return Status(ErrorCode::kModel, "model " + spec.path + " does not look like an embedder: it needs one input "
                                     "[N,3,H,W] and an output [N,D]");
  const auto& s = in[0].shape;
  if (s[1] != 3 || (s[2] > 0 && s[2] != spec.input.height) || (s[3] > 0 && s[3] != spec.input.width))
    return Status(ErrorCode::kModel, "embedder " + spec.path + " input shape does not match its manifest entry (" +
                                     std::to_string(spec.input.width) + "x" + std::to_string(spec.input.height) + ", 3 channels)");
  std::unique_ptr<Embedder> e(new Embedder());
  e->spec_ = spec;
  e->dynamic_batch_ = s[0] <= 0;
  e->max_batch_ = e->dynamic_batch_ ? std::max(1, max_batch) : 1;
  e->dim_ = static_cast<int>(out[0].shape[1]);
  e->session_ = std::move(session);
  if (e->dim_ <= 0) {
    cv::Mat probe(spec.input.height, spec.input.width, CV_8UC3, cv::Scalar(127, 127, 127));
    FACEREC_ASSIGN_OR_RETURN(auto r, e->embed({probe}));
    e->dim_ = static_cast<int>(r[0].unit.size());
  }
  return e;
}

Result<std::vector<Embedding>> Embedder::embed(const std::vector<cv::Mat>& faces) const {
  const int w = spec_.input.width, h = spec_.input.height;
  const size_t plane = static_cast<size_t>(3) * w * h;
  std::vector<Embedding> result;
  result.reserve(faces.size());
  // Per-thread scratch, reused across calls: embed() stays reentrant without
  // allocating a blob and output tensors for every face.
  thread_local std::vector<float> blob;
  thread_local std::vector<Tensor> out;
  thread_local cv::Mat sized;
  for (size_t start = 0; start < faces.size(); start += max_batch_) {
    const size_t n = std::min(faces.size() - start, static_cast<size_t>(max_batch_));
    if (blob.size() < n * plane) blob.resize(n * plane);
    for (size_t i = 0; i < n; ++i) {
      const cv::Mat& f = faces[start + i];
      if (f.type() != CV_8UC3)
        return Status(ErrorCode::kInvalidArgument, "embedder input must be 8-bit BGR");
      const cv::Mat* src = &f;
      if (f.cols != w || f.rows != h) {
        cv::resize(f, sized, cv::Size(w, h), 0, 0, cv::INTER_AREA);
        src = &sized;
      }
      FACEREC_RETURN_IF_ERROR(to_blob(*src, spec_.input, blob.data() + i * plane));
    }
    FACEREC_RETURN_IF_ERROR(
        session_->run_into({TensorView{blob.data(), {static_cast<int64_t>(n), 3, h, w}}}, out));
    if (out.empty()) return Status(ErrorCode::kModel, "embedder gave no output");
    const Tensor& t = out[0];
    if (t.shape.size() != 2 || t.shape[0] != static_cast<int64_t>(n))
      return Status(ErrorCode::kModel, "embedder output has an unexpected shape");
    const int d = static_cast<int>(t.shape[1]);
    if (dim_ > 0 && d != dim_) return Status(ErrorCode::kModel, "embedder output dimension changed");
    for (size_t i = 0; i < n; ++i) {
      const float* v = t.data.data() + i * d;
      for (int k = 0; k < d; ++k)
        if (!std::isfinite(v[k])) return Status(ErrorCode::kModel, "embedder produced a non-finite value");
      result.push_back(make_embedding(v, d));
    }
  }
  return result;
}

}  // namespace facerec
