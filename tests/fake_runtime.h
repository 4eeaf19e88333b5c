// A fake inference Runtime, so the pipeline, the decision, enrolment and the
// service logic are tested without ONNX Runtime or ../shared.
//
// - The detector ("fake_det", yolov5face decoded layout, 64x64 input) finds
//   one face when the image is not dark: its box is the central square of
//   the network input, with landmarks where the ArcFace template puts them;
//   a mean pixel value under 10% (a black image) has no face. An image with
//   a bright left half and a dark right half has two faces.
// - The embedder ("fake_emb", 112x112 in, 6-D out) returns the centred mean of
//   each BGR channel over the top and the bottom half of the aligned crop, so
//   images of one colour scheme are one "person" and other colours another.
// Both record how often they ran, for tests of batching and caching.
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "facerec/align.h"
#include "facerec/models.h"
#include "facerec/recognizer.h"
#include "facerec/runtime.h"

namespace facerec::testing {

class FakeDetectorSession : public InferenceSession {
 public:
  static constexpr int kSize = 64;
  static constexpr int kRows = 3 * ((kSize / 8) * (kSize / 8) + (kSize / 16) * (kSize / 16) + (kSize / 32) * (kSize / 32));
  FakeDetectorSession() {
    in_ = {{"data", {1, 3, kSize, kSize}}};
    out_ = {{"out", {1, kRows, 16}}};
  }
  const std::vector<TensorInfo>& inputs() const override { return in_; }
  const std::vector<TensorInfo>& outputs() const override { return out_; }
  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs) const override {
    ++runs;
    const float* x = inputs[0].data;
    const int plane = kSize * kSize;
    auto mean_of = [&](int x0, int x1) {
      double s = 0;
      int n = 0;
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < kSize; ++y)
          for (int xx = x0; xx < x1; ++xx, ++n) s += x[c * plane + y * kSize + xx];
      return s / n;
    };
    Tensor t;
    t.shape = {1, kRows, 16};
    t.data.assign(static_cast<size_t>(kRows) * 16, 0.f);
    auto put = [&](int row, float cx, float cy, float side, float score) {
      float* r = t.data.data() + row * 16;
      r[0] = cx, r[1] = cy, r[2] = side, r[3] = side, r[4] = score, r[15] = 1.f;
      // The ArcFace template's landmarks, scaled from 112 into the box.
      for (int j = 0; j < 5; ++j) {
        r[5 + 2 * j] = cx - side / 2 + kArcFaceTemplate112[j].x * side / 112.f;
        r[6 + 2 * j] = cy - side / 2 + kArcFaceTemplate112[j].y * side / 112.f;
      }
    };
    const double left = mean_of(0, kSize / 2), right = mean_of(kSize / 2, kSize);
    if (left > 0.1 && right < 0.02) {  // two faces side by side, in the left half
      put(0, kSize * 0.15f, kSize * 0.5f, kSize * 0.25f, 0.9f);
      put(1, kSize * 0.38f, kSize * 0.5f, kSize * 0.2f, 0.8f);
    } else if ((left + right) / 2 > 0.1) {
      put(0, kSize / 2.f, kSize / 2.f, kSize * 0.6f, 0.95f);
    }
    return std::vector<Tensor>{std::move(t)};
  }
  mutable std::atomic<int> runs{0};

 private:
  std::vector<TensorInfo> in_, out_;
};

class FakeEmbedderSession : public InferenceSession {
 public:
  static constexpr int kDim = 6;
  FakeEmbedderSession() {
    in_ = {{"input", {-1, 3, 112, 112}}};
    out_ = {{"emb", {-1, kDim}}};
  }
  const std::vector<TensorInfo>& inputs() const override { return in_; }
  const std::vector<TensorInfo>& outputs() const override { return out_; }
  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs) const override {
    ++runs;
    const int64_t n = inputs[0].shape[0];
    const int plane = 112 * 112;
    Tensor t;
    t.shape = {n, kDim};
    t.data.resize(static_cast<size_t>(n) * kDim);
    for (int64_t i = 0; i < n; ++i) {
      const float* x = inputs[0].data + i * 3 * plane;
      for (int c = 0; c < 3; ++c)
        for (int half = 0; half < 2; ++half) {
          double s = 0;
          for (int y = half * 56; y < half * 56 + 56; ++y)
            for (int xx = 0; xx < 112; ++xx) s += x[c * plane + y * 112 + xx];
          t.data[i * kDim + c * 2 + half] = static_cast<float>(s / (56 * 112) - 0.5);
        }
    }
    return std::vector<Tensor>{std::move(t)};
  }
  mutable std::atomic<int> runs{0};

 private:
  std::vector<TensorInfo> in_, out_;
};

class FakeRuntime : public Runtime {
 public:
  Result<std::unique_ptr<InferenceSession>> load(const std::string& path, const SessionConfig&) override {
    if (path.find("fake_det") != std::string::npos) return std::unique_ptr<InferenceSession>(new FakeDetectorSession());
    if (path.find("fake_emb") != std::string::npos) return std::unique_ptr<InferenceSession>(new FakeEmbedderSession());
    return Status(ErrorCode::kModel, "fake runtime: no model at " + path);
  }
  std::string name() const override { return "fake"; }
};

// A manifest in `dir` naming the two fake models (files with dummy bytes, no
// sha256 pinned), with the embedder's threshold 0.9.
inline std::string write_fake_manifest(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* f : {"fake_det.onnx", "fake_emb.onnx"}) std::ofstream(fs::path(dir) / f) << "fake";
  const std::string path = (fs::path(dir) / "manifest.json").string();
  std::ofstream(path) << R"({"version": 1, "defaults": {"detector": "fake_det", "embedder": "fake_emb"}, "models": [
    {"id": "fake_det", "task": "detector", "family": "yolov5face", "source": {"file": ")" << dir << R"(/fake_det.onnx"},
     "licence": "test", "input": {"name": "data", "width": 64, "height": 64, "channels": "RGB", "mean": [0,0,0],
     "std": [255,255,255], "resize": "letterbox", "pad_value": 0}, "outputs": [{"name": "out", "dims": [1, 252, 16]}]},
    {"id": "fake_emb", "task": "embedder", "family": "arcface", "threshold": 0.9, "threshold_reason": "test",
     "source": {"file": ")" << dir << R"(/fake_emb.onnx"}, "licence": "test",
     "input": {"name": "input", "width": 112, "height": 112, "channels": "BGR", "mean": [0,0,0], "std": [255,255,255]},
     "outputs": [{"name": "emb", "dims": [-1, 6]}]}]})";
  return path;
}

// The fake Runtime, the fake manifest (written into `folder`) and a
// recognizer config over the gallery file `folder`/g.db: the offline fixture
// of the recogniser and video tests. make() creates a FaceRecognizer on them
// (tests may change `config` first).
struct FakeRecognizerEnv {
  FakeRuntime runtime;
  std::string dir;
  Manifest manifest;
  RecognizerConfig config;
  explicit FakeRecognizerEnv(std::string folder)
      : dir(std::move(folder)), manifest(Manifest::load(write_fake_manifest(dir)).value()) {
    config.db = dir + "/g.db";
  }
  Result<std::unique_ptr<FaceRecognizer>> make() { return FaceRecognizer::create(runtime, manifest, config); }
};

// A photo of one "person" for the fake embedder: a colour (B, G, R) with
// per-image noise (`seed`), so photos of one colour embed close together.
inline cv::Mat photo(cv::Scalar bgr, int seed, int size = 200) {
  cv::Mat m(size, size, CV_8UC3, bgr);
  cv::Mat noise(size, size, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 12);
  m += noise;
  return m;
}
inline const cv::Scalar kRed(30, 30, 220), kBlue(220, 40, 30), kGreen(30, 220, 40);

// The image as PNG file bytes.
inline std::string png(const cv::Mat& m) {
  std::vector<uchar> buf;
  cv::imencode(".png", m, buf);
  return std::string(buf.begin(), buf.end());
}

}  // namespace facerec::testing
