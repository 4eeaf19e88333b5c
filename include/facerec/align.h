// Five-point face alignment onto the ArcFace 112x112 template.
#pragma once

#include <array>

#include <opencv2/core/mat.hpp>

#include "facerec/status.h"
#include "facerec/types.h"

namespace facerec {

// The standard ArcFace template for a 112x112 crop (insightface's arcface_dst).
extern const std::array<cv::Point2f, 5> kArcFaceTemplate112;

// Least-squares similarity transform (rotation, uniform scale, translation)
// mapping src onto dst, by Umeyama's method. Returns a 2x3 CV_64F matrix.
// Requires n >= 2 non-coincident points.
cv::Mat umeyama_similarity(const cv::Point2f* src, const cv::Point2f* dst, int n);

// The transform taking the face's landmarks onto the template scaled to `size`.
cv::Mat alignment_transform(const Face& face, int size = 112);

// One warp: the aligned size x size BGR crop of face. Pixels outside the
// image are black (constant 0), as insightface does.
cv::Mat align_face(const cv::Mat& bgr, const Face& face, int size = 112);

// Plain bilinear twin of the warp inside align_face (M from alignment_transform),
// for tests.
cv::Mat align_face_reference(const cv::Mat& bgr, const cv::Mat& M, int size = 112);

}  // namespace facerec
