// ArcFace-style embedders: aligned 112x112 face in, embedding out.
//
// Thread safety: embed() is const and may be called concurrently.
#pragma once

#include <memory>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/models.h"
#include "facerec/runtime.h"
#include "facerec/types.h"

namespace facerec {

class Embedder {
 public:
  // The model's input must be [N|1, 3, H, W] and output [N|1, D]. A model that
  // does not fit is kModel. `hashes`: the registry's hash cache
  // (Manifest::hashes()); null hashes the file now.
  static Result<std::unique_ptr<Embedder>> create(Runtime& runtime, const ModelSpec& spec, int max_batch = 8,
                                                  ModelFileHashes* hashes = nullptr);

  // faces: aligned 8-bit BGR crops of the model's input size. Runs in batches
  // of up to max_batch when the model has a dynamic batch, else one by one.
  // The input blob and the output buffers are per thread and reused across
  // calls (no allocation per face once warm).
  Result<std::vector<Embedding>> embed(const std::vector<cv::Mat>& faces) const;
  int dim() const { return dim_; }
  const ModelSpec& spec() const { return spec_; }

 private:
  Embedder() = default;
  ModelSpec spec_;
  std::unique_ptr<InferenceSession> session_;
  int dim_ = 0;
  int max_batch_ = 1;
  bool dynamic_batch_ = false;
};

// L2-normalises v into an Embedding, keeping the raw norm.
Embedding make_embedding(const float* v, int dim);
// The cosine similarity of two embeddings (the dot product of their unit
// vectors), -1..1. kInvalidArgument when their dimensions differ (embeddings
// of two different models).
Result<float> cosine(const Embedding& a, const Embedding& b);

}  // namespace facerec
