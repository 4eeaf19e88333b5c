#include "facerec/track_identity.h"

#include <algorithm>
#include <cmath>

namespace facerec {

IdentityChange TrackIdentity::add(const std::string& best_identity, float best_similarity, float quality) {
  // A zero-quality face still says something; a floor keeps it from vanishing
  // from the denominator altogether.
  const double w = std::max(static_cast<double>(quality), 1e-3);
  const bool match = !best_identity.empty() && best_similarity >= options_.threshold;
  Tally& t = tally_[match ? best_identity : std::string()];
  t.weight += w;
  t.weighted_sim += w * best_similarity;
  ++t.votes;
  t.best = std::max(t.best, best_similarity);
  total_weight_ += w;
  ++votes_;
  best_seen_ = votes_ == 1 ? best_similarity : std::max(best_seen_, best_similarity);

  // The leading named person.
  std::string leader;
  double leader_w = -1;
  for (const auto& [who, tl] : tally_)
    if (!who.empty() && tl.weight > leader_w) { leader = who; leader_w = tl.weight; }
  const auto share = [&](const std::string& who) {
    auto it = tally_.find(who);
    return it == tally_.end() ? 0.0 : it->second.weight / total_weight_;
  };

  IdentityChange change{false, identity_};
  if (identity_.empty()) {
    if (!leader.empty() && nameable(leader, share(leader))) identity_ = leader;
  } else {
    const double mine = share(identity_);
    if (leader != identity_ && !leader.empty() && share(leader) >= mine + options_.hysteresis &&
        nameable(leader, share(leader)))
      identity_ = leader;
    else if (mine < options_.min_share - options_.hysteresis)
      identity_.clear();
  }
  change.changed = change.previous != identity_;
  return change;
}

bool TrackIdentity::nameable(const std::string& who, double share) const {
  const Tally& t = tally_.at(who);
  const bool enough = t.votes >= options_.min_votes || t.best >= options_.threshold + options_.instant_margin;
  return enough && share >= options_.min_share;
}

float TrackIdentity::similarity() const {
  if (identity_.empty()) return best_seen_;
  const Tally& t = tally_.at(identity_);
  return static_cast<float>(t.weighted_sim / t.weight);
}

float view_score(const Face& face) {
  const cv::Point2f le = face.landmarks[kLeftEye], re = face.landmarks[kRightEye], nose = face.landmarks[kNose];
  const cv::Point2f axis = re - le;
  const float eye_dist = std::sqrt(axis.dot(axis));
  if (!(eye_dist > 0)) return 0.f;
  const float size_term = std::min(1.f, eye_dist / 40.f);
  // The nose projected on the eye line: 0.5 is frontal, 0 or 1 full profile.
  const float t = (nose - le).dot(axis) / (eye_dist * eye_dist);
  const float pose_term = std::clamp(1.f - 2.f * std::abs(t - 0.5f), 0.f, 1.f);
  return size_term * pose_term;
}

bool EmbedSchedule::due(long frame, float view, bool known) const {
  if (count_ == 0) return true;
  const long gap = frame - last_frame_;
  if (gap >= (known ? options_.refresh_frames : options_.unknown_refresh_frames)) return true;
  // The absolute step keeps near-zero views (profiles) from counting tiny
  // gains as "clearly better".
  return gap >= options_.min_gap_frames &&
         view > std::max(best_view_ * options_.better_view_ratio, best_view_ + 0.1f);
}

void EmbedSchedule::embedded(long frame, float view) {
  last_frame_ = frame;
  best_view_ = std::max(best_view_, view);
  ++count_;
}

}  // namespace facerec

#include <opencv2/imgproc.hpp>

namespace facerec {

float CutDetector::update(const cv::Mat& bgr) {
  cv::Mat small, grey;
  cv::resize(bgr, small, {64, 36}, 0, 0, cv::INTER_AREA);
  cv::cvtColor(small, grey, cv::COLOR_BGR2GRAY);
  last_ = prev_.empty() ? 0.f : static_cast<float>(cv::norm(grey, prev_, cv::NORM_L1) / grey.total());
  prev_ = grey;
  return last_;
}

}  // namespace facerec
