// Multi-object tracking of faces: a ByteTrack-style tracker.
//
// Each confirmed track keeps one id while its face stays in view. Per frame:
//   1. every track's box is predicted by a constant-velocity Kalman filter
//      over (cx, cy, aspect, height) and their velocities;
//   2. high-score detections are matched to the tracks by IoU;
//   3. low-score detections (a face half hidden or blurred) are matched to the
//      tracks still unmatched, so a track survives a weak detection instead of
//      being dropped;
//   4. unmatched high-score detections start tentative tracks, confirmed on
//      their second consecutive hit (or at once on the very first frame);
//   5. a confirmed track without a match is kept "lost" for track_buffer
//      frames, so a short occlusion does not change its id.
// Matching is greedy on IoU (highest first), which equals the optimal
// assignment whenever faces overlap little, as faces in one frame do.
//
// Units: pixels of the frame; time is counted in update() calls (frames).
// Thread safety: none; one tracker per video stream.
#pragma once

#include <memory>
#include <vector>

#include <opencv2/core/matx.hpp>
#include <opencv2/core/types.hpp>

namespace facerec {

struct TrackerOptions {
  // Detections at or above high_score go to the first association stage and
  // may start tracks; those in [low_score, high_score) only extend tracks.
  // 0.5 is what the detectors call a face by default (DetectorOptions).
  float high_score = 0.5f;
  float low_score = 0.2f;
  // A new track needs this much confidence (ByteTrack: high + 0.1), so that a
  // single borderline detection does not open an identity.
  float new_track_score = 0.6f;
  // Minimum IoU between a predicted box and a detection to match them, per
  // stage. The second stage is stricter because low-score boxes are noisier.
  float match_iou = 0.2f;
  float low_match_iou = 0.4f;
  // Frames a lost track is kept before it ends (ByteTrack: 30 at 30 fps).
  int track_buffer = 30;
};

struct TrackerDetection {
  cv::Rect2f box;  // pixels
  float score = 0.f;
};

// A confirmed track as seen after one update().
struct TrackedFace {
  int id = 0;              // stable, > 0, never reused within a tracker
  cv::Rect2f box;          // the matched detection's box, else the prediction
  int detection = -1;      // index into this frame's detections; -1 when lost
  int age = 0;             // frames since the track started
  int frames_seen = 0;     // frames with a matched detection
};

struct TrackerUpdate {
  std::vector<TrackedFace> tracks;  // confirmed tracks matched this frame (detection >= 0) and lost ones
  std::vector<int> started;         // ids confirmed in this update
  std::vector<int> ended;           // ids that ran out of buffer in this update
};

class ByteTracker {
 public:
  explicit ByteTracker(TrackerOptions options = {});
  ~ByteTracker();
  ByteTracker(ByteTracker&&) noexcept;
  ByteTracker& operator=(ByteTracker&&) noexcept;

  // Advances one frame. Detections may come in any order.
  TrackerUpdate update(const std::vector<TrackerDetection>& detections);
  // Ends every confirmed track (end of stream); returns their ids.
  std::vector<int> finish();
  const TrackerOptions& options() const { return options_; }

  struct Impl;

 private:
  TrackerOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Greedy IoU assignment: repeatedly takes the highest-IoU (row, col) pair
// whose IoU >= min_iou and whose row and column are both free. Returns, for
// every row, its column or -1. iou is rows x cols, row-major.
std::vector<int> greedy_assign(const std::vector<float>& iou, int rows, int cols, float min_iou);

// A constant-velocity Kalman filter over (cx, cy, a, h): centre in pixels,
// aspect ratio w/h, height in pixels, and their per-frame velocities, with
// noise proportional to the height, as in SORT/ByteTrack.
class BoxKalman {
 public:
  explicit BoxKalman(const cv::Rect2f& box);
  void predict();
  void correct(const cv::Rect2f& box);
  cv::Rect2f box() const;

 private:
  cv::Matx<float, 8, 1> x_;  // cx, cy, a, h, vcx, vcy, va, vh (per frame)
  cv::Matx<float, 8, 8> p_;  // state covariance
};

}  // namespace facerec
