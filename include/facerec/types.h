// The typed results that flow between pipeline stages.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <opencv2/core/types.hpp>

namespace facerec {

// Index of each of the five alignment landmarks, from the subject's point of
// view as the ArcFace template orders them (image left eye first).
enum Landmark : int { kLeftEye = 0, kRightEye = 1, kNose = 2, kMouthLeft = 3, kMouthRight = 4 };

// One detected face. Coordinates are pixels in the original image (not the
// network input): box is x1,y1,x2,y2 corners as a cv::Rect2f (x, y, w, h).
struct Face {
  cv::Rect2f box;
  float score = 0.f;  // detector confidence, 0..1
  std::array<cv::Point2f, 5> landmarks{};
};

// An embedding: the unit vector for cosine similarity, and the raw L2 norm of
// the network output, which is MagFace's quality score.
struct Embedding {
  std::vector<float> unit;
  float norm = 0.f;
};

}  // namespace facerec
