#include <algorithm>
#include <utility>

#include <opencv2/core.hpp>  // Matx::inv

#include "facerec/detect.h"
#include "facerec/track.h"

namespace facerec {

// ---- Kalman filter -------------------------------------------------------------
namespace {
// ByteTrack's noise model: standard deviations are fractions of the box
// height, so a large face near the camera may move more pixels per frame.
constexpr float kStdPosition = 1.f / 20.f;
constexpr float kStdVelocity = 1.f / 160.f;

cv::Matx<float, 4, 1> measure(const cv::Rect2f& b) {
  const float h = std::max(b.height, 1e-3f);
  return {b.x + b.width / 2, b.y + b.height / 2, b.width / h, h};
}
}  // namespace

BoxKalman::BoxKalman(const cv::Rect2f& box) {
  const auto z = measure(box);
  x_ = cv::Matx<float, 8, 1>::zeros();
  for (int i = 0; i < 4; ++i) x_(i) = z(i);
  const float h = z(3);
  const float sd[8] = {2 * kStdPosition * h, 2 * kStdPosition * h, 1e-2f, 2 * kStdPosition * h,
                       10 * kStdVelocity * h, 10 * kStdVelocity * h, 1e-5f, 10 * kStdVelocity * h};
  p_ = cv::Matx<float, 8, 8>::zeros();
  for (int i = 0; i < 8; ++i) p_(i, i) = sd[i] * sd[i];
}

void BoxKalman::predict() {
  const float h = x_(3);
  const float sd[8] = {kStdPosition * h, kStdPosition * h, 1e-2f, kStdPosition * h,
                       kStdVelocity * h, kStdVelocity * h, 1e-5f, kStdVelocity * h};
  auto f = cv::Matx<float, 8, 8>::eye();
  for (int i = 0; i < 4; ++i) f(i, i + 4) = 1.f;  // one frame of constant velocity
  x_ = f * x_;
  p_ = f * p_ * f.t();
  for (int i = 0; i < 8; ++i) p_(i, i) += sd[i] * sd[i];
}

void BoxKalman::correct(const cv::Rect2f& box) {
  const auto z = measure(box);
  const float h = x_(3);
  const float sd[4] = {kStdPosition * h, kStdPosition * h, 1e-1f, kStdPosition * h};
  cv::Matx<float, 4, 8> hm = cv::Matx<float, 4, 8>::zeros();
  for (int i = 0; i < 4; ++i) hm(i, i) = 1.f;
  cv::Matx<float, 4, 4> s = hm * p_ * hm.t();
  for (int i = 0; i < 4; ++i) s(i, i) += sd[i] * sd[i];
  const cv::Matx<float, 8, 4> k = p_ * hm.t() * s.inv(cv::DECOMP_CHOLESKY);
  x_ = x_ + k * (z - hm * x_);
  p_ = p_ - k * s * k.t();
}

cv::Rect2f BoxKalman::box() const {
  const float h = std::max(x_(3), 1e-3f), w = x_(2) * h;
  return {x_(0) - w / 2, x_(1) - h / 2, w, h};
}

// ---- Assignment ------------------------------------------------------------------
std::vector<int> greedy_assign(const std::vector<float>& iou, int rows, int cols, float min_iou) {
  std::vector<std::pair<float, int>> pairs;  // (iou, row * cols + col)
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      if (iou[r * cols + c] >= min_iou) pairs.emplace_back(iou[r * cols + c], r * cols + c);
  // Ties broken by index so the result does not depend on sort stability.
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<int> row_to_col(rows, -1);
  std::vector<char> col_used(cols, 0);
  for (const auto& [v, rc] : pairs) {
    const int r = rc / cols, c = rc % cols;
    if (row_to_col[r] < 0 && !col_used[c]) { row_to_col[r] = c; col_used[c] = 1; }
  }
  return row_to_col;
}

// ---- Tracker ---------------------------------------------------------------------
namespace {
enum class TrackState { kTentative, kTracked, kLost };

struct Track {
  explicit Track(const cv::Rect2f& b) : kf(b), box(b) {}
  int id = 0;  // 0 while tentative: ids go to confirmed tracks only, so they stay dense
  BoxKalman kf;
  TrackState state = TrackState::kTentative;
  int age = 0;
  int frames_seen = 0;
  int lost_frames = 0;
  int detection = -1;
  cv::Rect2f box;
};
}  // namespace

struct ByteTracker::Impl {
  std::vector<Track> tracks;
  int next_id = 1;
  long frame = 0;
};

ByteTracker::ByteTracker(TrackerOptions options) : options_(options), impl_(std::make_unique<Impl>()) {}
ByteTracker::~ByteTracker() = default;
ByteTracker::ByteTracker(ByteTracker&&) noexcept = default;
ByteTracker& ByteTracker::operator=(ByteTracker&&) noexcept = default;

namespace {
// Matches tracks[track_ids] to dets[det_ids] by IoU of the predicted box;
// records matches into `matches` (track index, det index) and removes the
// matched entries from both lists.
void associate(std::vector<Track>& tracks, std::vector<int>& track_ids, const std::vector<TrackerDetection>& dets,
               std::vector<int>& det_ids, float min_iou, std::vector<std::pair<int, int>>& matches) {
  const int rows = static_cast<int>(track_ids.size()), cols = static_cast<int>(det_ids.size());
  if (rows == 0 || cols == 0) return;
  std::vector<float> m(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    const cv::Rect2f pred = tracks[track_ids[r]].kf.box();
    for (int c = 0; c < cols; ++c) m[r * cols + c] = iou(pred, dets[det_ids[c]].box);
  }
  const auto a = greedy_assign(m, rows, cols, min_iou);
  std::vector<int> rest_tracks;
  std::vector<char> det_taken(cols, 0);
  for (int r = 0; r < rows; ++r) {
    if (a[r] >= 0) {
      matches.emplace_back(track_ids[r], det_ids[a[r]]);
      det_taken[a[r]] = 1;
    } else {
      rest_tracks.push_back(track_ids[r]);
    }
  }
  std::vector<int> rest_dets;
  for (int c = 0; c < cols; ++c)
    if (!det_taken[c]) rest_dets.push_back(det_ids[c]);
  track_ids = std::move(rest_tracks);
  det_ids = std::move(rest_dets);
}
}  // namespace

TrackerUpdate ByteTracker::update(const std::vector<TrackerDetection>& dets) {
  auto& tracks = impl_->tracks;
  ++impl_->frame;
  for (auto& t : tracks) {
    t.detection = -1;
    ++t.age;
    t.kf.predict();
  }
  std::vector<int> high, low;
  for (int i = 0; i < static_cast<int>(dets.size()); ++i) {
    if (dets[i].score >= options_.high_score) high.push_back(i);
    else if (dets[i].score >= options_.low_score) low.push_back(i);
  }
  std::vector<int> confirmed, tentative;
  for (int i = 0; i < static_cast<int>(tracks.size()); ++i)
    (tracks[i].state == TrackState::kTentative ? tentative : confirmed).push_back(i);

  std::vector<std::pair<int, int>> matches;
  // Stage 1: every confirmed track (also the lost ones, so they can come back)
  // against the confident detections.
  associate(tracks, confirmed, dets, high, options_.match_iou, matches);
  // Stage 2: tracks that were in view last frame against the weak detections.
  std::vector<int> recent;
  for (int i : confirmed)
    if (tracks[i].state == TrackState::kTracked) recent.push_back(i);
  associate(tracks, recent, dets, low, options_.low_match_iou, matches);
  // Stage 3: tentative tracks against the confident detections left over.
  associate(tracks, tentative, dets, high, options_.match_iou, matches);

  TrackerUpdate out;
  for (const auto& [ti, di] : matches) {
    Track& t = tracks[ti];
    t.kf.correct(dets[di].box);
    t.box = dets[di].box;
    t.detection = di;
    ++t.frames_seen;
    t.lost_frames = 0;
    if (t.state == TrackState::kTentative) {
      t.id = impl_->next_id++;
      out.started.push_back(t.id);
    }
    t.state = TrackState::kTracked;
  }
  // Unmatched: tentative tracks die, confirmed ones are lost until the buffer runs out.
  std::vector<char> remove(tracks.size(), 0);
  for (int i : tentative) remove[i] = 1;
  for (int i = 0; i < static_cast<int>(tracks.size()); ++i) {
    Track& t = tracks[i];
    if (t.detection >= 0 || t.state == TrackState::kTentative) continue;
    t.state = TrackState::kLost;
    ++t.lost_frames;
    t.box = t.kf.box();
    if (t.lost_frames > options_.track_buffer) {
      out.ended.push_back(t.id);
      remove[i] = 1;
    }
  }
  std::vector<Track> kept;
  for (size_t i = 0; i < tracks.size(); ++i)
    if (!remove[i]) kept.push_back(std::move(tracks[i]));
  tracks = std::move(kept);
  // New tracks from confident detections nobody claimed. On the first frame
  // there is no history to confirm against, so they start at once.
  for (int di : high) {
    if (dets[di].score < options_.new_track_score) continue;
    Track t(dets[di].box);
    t.frames_seen = 1;
    if (impl_->frame == 1) {
      t.state = TrackState::kTracked;
      t.id = impl_->next_id++;
      t.detection = di;
      out.started.push_back(t.id);
    }
    tracks.push_back(std::move(t));
  }
  for (const auto& t : tracks)
    if (t.state != TrackState::kTentative)
      out.tracks.push_back({t.id, t.box, t.detection, t.age, t.frames_seen});
  return out;
}

std::vector<int> ByteTracker::finish() {
  std::vector<int> ended;
  for (const auto& t : impl_->tracks)
    if (t.state != TrackState::kTentative) ended.push_back(t.id);
  impl_->tracks.clear();
  return ended;
}

}  // namespace facerec
