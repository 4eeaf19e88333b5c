// VideoRecognizer: faces in a stream of frames become tracks, and each track
// is named once the evidence allows. The product logic of `facerec watch`,
// as a library: per frame it detects (the recognizer's detector, per-call
// options), ends every track on a hard cut, tracks (ByteTrack), embeds the
// tracks whose schedule is due (one batch), votes each track's identity
// against the recognizer's gallery, and reports what changed as events.
//
// Ownership: borrows a FaceRecognizer, which must outlive it. Threads: one
// VideoRecognizer per stream, used from one thread (it holds the tracker's
// state); the FaceRecognizer underneath may be shared with other streams and
// with enrolments, which become visible to the next embedded track.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/recognizer.h"
#include "facerec/track.h"
#include "facerec/track_identity.h"

namespace facerec {

struct VideoRecognizerOptions {
  TrackerOptions tracker;          // low_score is also the detection threshold
  // The detection score asked for (`watch --det-score`, or a config file's
  // score_threshold). Set: it becomes the tracker's low score, and the high
  // and new-track scores are raised to at least it, so no face below it is
  // detected, tracked or named. Unset: the tracker's own scores stand
  // (ByteTrack wants the weak detections too). Outside 0..1 is
  // kInvalidArgument.
  std::optional<float> detection_score;
  EmbedScheduleOptions schedule;
  IdentityVoteOptions vote;        // vote.threshold: 0 = the recognizer's threshold
  float cut_threshold = 20.f;      // mean grey-level change (0-255) that ends every track; 0: never
};

struct VideoEvent {
  enum class Kind { kTrackStart, kIdentified, kUnidentified, kCut, kTrackEnd };
  Kind kind = Kind::kTrackStart;
  int track = -1;
  long frame = 0;        // kTrackEnd: the track's last matched frame
  double time = 0;       // seconds in the stream
  cv::Rect2f box;        // kTrackStart
  std::string identity;  // kIdentified, kTrackEnd ("" = unknown)
  std::string previous;  // kIdentified, kUnidentified ("" = unknown)
  float similarity = 0;  // kIdentified, kTrackEnd
  float quality = 0;     // kIdentified: the face that decided it
  float difference = 0;  // kCut: the grey-level change
  double duration = 0;   // kTrackEnd: seconds from its first to its last frame, inclusive
  int frames = 0;        // kTrackEnd: frames with a matched detection
  int embeddings = 0;    // kTrackEnd
};
using VideoEventSink = std::function<void(const VideoEvent&)>;

// A track as drawn on the current frame.
struct TrackView {
  int id = 0;
  cv::Rect2f box;
  bool matched = false;  // a detection this frame (lost tracks are predictions)
  std::string identity;  // "" = unknown
  float similarity = 0;
  int votes = 0;
};

struct PersonSeen {
  double seconds = 0;
  int tracks = 0;
  double first_time = -1;
  float best_similarity = 0;
};

struct VideoStats {
  long frames = 0, embeddings = 0, faces = 0;
  double detect_s = 0, track_s = 0, embed_s = 0;  // summed over frames (track_s includes cut detection)
  std::map<std::string, PersonSeen> people;       // from ended tracks
};

class VideoRecognizer {
 public:
  // kInvalidArgument when the recognizer has no gallery or no threshold.
  static Result<std::unique_ptr<VideoRecognizer>> create(const FaceRecognizer& recognizer,
                                                         const VideoRecognizerOptions& options,
                                                         double fps_nominal);
  ~VideoRecognizer();

  // One frame (8-bit BGR) at stream position (index, time_s). Events go to
  // `sink` in order: cut, the ends it causes, starts, identity changes, ends.
  // Returns the tracks to draw. A detector/embedder failure is a Status.
  Result<std::vector<TrackView>> process(const cv::Mat& bgr, long index, double time_s, const VideoEventSink& sink);
  // Ends every open track (stream over, or interrupted).
  void finish(const VideoEventSink& sink);
  const VideoStats& stats() const;

  struct Impl;

 private:
  explicit VideoRecognizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace facerec
