// Naming a tracked face from several embeddings over time.
//
// TrackIdentity: each embedding of a track casts one vote, weighted by its
// face quality, for its best gallery match (when that clears the threshold)
// or for "unknown". A track is named only when one person holds the majority
// of the weight and has enough support; once named, a rival must win by a
// clear margin to take over, so names do not flicker between frames.
//
// EmbedSchedule: when a track is worth embedding again, so that embedding
// cost follows the number of tracks, not the number of frames.
//
// Thread safety: none; one object per track, used by the processing thread.
#pragma once

#include <map>
#include <string>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

#include "facerec/types.h"

namespace facerec {

struct IdentityVoteOptions {
  float threshold = 0.f;  // cosine; the embedder's measured match threshold
  // A name needs this many matching embeddings, so that one lucky frame does
  // not name a track...
  int min_votes = 2;
  // ...unless a single embedding clears the threshold by this much (cosine),
  // which on LFW-style thresholds is already far inside the same-person mass.
  float instant_margin = 0.10f;
  // The named person's share of all vote weight (unknown votes included)
  // must reach min_share to name, and may fall to min_share - hysteresis
  // before the track goes back to unknown; a rival needs a share larger by
  // `hysteresis` to take over.
  float min_share = 0.5f;
  float hysteresis = 0.2f;
};

struct IdentityChange {
  bool changed = false;
  std::string previous;  // empty = unknown
};

class TrackIdentity {
 public:
  explicit TrackIdentity(IdentityVoteOptions options) : options_(options) {}

  // One embedding's best gallery match (identity may be empty when the
  // gallery is empty) and its face quality (any non-negative scale: only
  // ratios matter).
  IdentityChange add(const std::string& best_identity, float best_similarity, float quality);

  const std::string& identity() const { return identity_; }  // empty = unknown
  bool known() const { return !identity_.empty(); }
  // Quality-weighted mean similarity of the votes for identity() (or, while
  // unknown, the best similarity seen).
  float similarity() const;
  int votes() const { return votes_; }

 private:
  struct Tally {
    double weight = 0, weighted_sim = 0;
    int votes = 0;
    float best = -1.f;
  };
  bool nameable(const std::string& who, double share) const;
  IdentityVoteOptions options_;
  std::map<std::string, Tally> tally_;  // "" = unknown
  double total_weight_ = 0;
  int votes_ = 0;
  float best_seen_ = 0.f;
  std::string identity_;
};

struct EmbedScheduleOptions {
  // Re-embed a track at least this often (frames), to catch a change of
  // person the tracker missed and to keep gathering votes.
  int refresh_frames = 30;
  // While a track is still unknown, re-embed this often instead (frames):
  // more evidence is worth more there.
  int unknown_refresh_frames = 10;
  // A view counts as clearly better when its view score is this many times
  // the best already embedded...
  float better_view_ratio = 1.3f;
  // ...and at least this many frames have passed since the last embedding.
  int min_gap_frames = 3;
};

// A cheap 0..1 score of how well a detected face shows the person, before
// embedding: inter-ocular distance in pixels (saturating at 40 px) times how
// centred the nose is between the eyes (1 frontal, 0 profile).
float view_score(const Face& face);

class EmbedSchedule {
 public:
  explicit EmbedSchedule(EmbedScheduleOptions options = {}) : options_(options) {}
  // frame: the stream's frame index; known: whether the track is named.
  bool due(long frame, float view, bool known) const;
  void embedded(long frame, float view);
  int count() const { return count_; }

 private:
  EmbedScheduleOptions options_;
  long last_frame_ = -1;
  float best_view_ = 0.f;
  int count_ = 0;
};

}  // namespace facerec

namespace facerec {

// Hard cuts in edited video (a change of camera): the tracker's motion model
// cannot see them, and a track carried across a cut would hand one person's
// name to another. The score is the mean absolute difference, in grey levels
// (0..255), between 64x36 grey thumbnails of consecutive frames; a camera
// pan or a person walking moves a small part of such a thumbnail, a cut
// changes most of it. Measured on the Hamilton clip (dark stage video):
// its three cuts score 27-30, in-shot motion (a close-up turning its head)
// at most 13.
class CutDetector {
 public:
  explicit CutDetector(float threshold = 20.f) : threshold_(threshold) {}
  // Returns the difference to the previous frame (0 for the first frame);
  // is_cut() tells whether it crossed the threshold.
  float update(const cv::Mat& bgr);
  bool is_cut() const { return threshold_ > 0 && last_ >= threshold_; }

 private:
  float threshold_;
  float last_ = 0.f;
  cv::Mat prev_;
};

}  // namespace facerec
