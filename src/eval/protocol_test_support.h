// Offline fixtures for the evaluation protocols' tests: the fake runtime
// (tests/fake_runtime.h) behind a FaceAnalyzer, and folder trees of
// synthetic photos, one colour per person (the fake embedder's "identity").
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "facerec/recognizer.h"
#include "fake_runtime.h"
#include "test_support.h"

namespace facerec::eval::testing_support {

// A FaceRecognizer on the fake runtime, with no gallery; analyzer() is what
// the protocols take.
struct EvalEnv : facerec::testing::FakeRecognizerEnv {
  std::unique_ptr<FaceRecognizer> recognizer;
  explicit EvalEnv(const std::string& tag) : FakeRecognizerEnv(facerec::testing::temp_dir(tag)) {
    config.gallery = GalleryMode::kNone;
    auto r = make();
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (r.ok()) recognizer = std::move(r).value();
  }
  const FaceAnalyzer& analyzer() const { return recognizer->analyzer(); }
};

// Person i's colour: hues spread around the circle, so different people's
// fake embeddings point in clearly different directions.
inline cv::Scalar person_colour(int i) {
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar((i * 47) % 180, 220, 230)), bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const auto p = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(p[0], p[1], p[2]);
}

// Writes a PNG of `colour` (with per-seed noise) at `path`, making folders.
inline void write_photo(const std::filesystem::path& path, cv::Scalar colour, int seed) {
  std::filesystem::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), facerec::testing::photo(colour, seed)));
}

// A black photo: the fake detector finds no face in it.
inline void write_black(const std::filesystem::path& path) {
  std::filesystem::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), cv::Mat(200, 200, CV_8UC3, cv::Scalar(0, 0, 0))));
}

}  // namespace facerec::eval::testing_support
