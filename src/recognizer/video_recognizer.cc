// VideoRecognizer (see facerec/video_recognizer.h): moved out of
// `facerec watch`, which now only reads frames, prints events and draws.
#include "facerec/video_recognizer.h"

#include <algorithm>
#include <chrono>

namespace facerec {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

struct VideoRecognizer::Impl {
  const FaceRecognizer& rec;
  VideoRecognizerOptions opt;
  double fps;
  DetectOptions detection;
  ByteTracker tracker;
  CutDetector cuts;
  struct TrackInfo {
    TrackIdentity identity;
    EmbedSchedule schedule;
    long first_frame = 0, last_frame = 0;
    double first_time = 0, last_time = 0;
    int frames_seen = 0;
  };
  std::map<int, TrackInfo> infos;
  VideoStats stats;

  Impl(const FaceRecognizer& r, const VideoRecognizerOptions& o, double f)
      : rec(r), opt(o), fps(f), tracker(o.tracker), cuts(o.cut_threshold) {}

  void end_track(int id, const VideoEventSink& sink) {
    auto it = infos.find(id);
    if (it == infos.end()) return;
    const TrackInfo& ti = it->second;
    VideoEvent e;
    e.kind = VideoEvent::Kind::kTrackEnd;
    e.track = id;
    e.frame = ti.last_frame;
    e.time = ti.last_time;
    // Seconds in view: from the first to the last matched frame, inclusive.
    e.duration = ti.last_time - ti.first_time + 1.0 / fps;
    e.frames = ti.frames_seen;
    e.identity = ti.identity.identity();
    e.similarity = ti.identity.similarity();
    e.embeddings = ti.schedule.count();
    sink(e);
    if (!e.identity.empty()) {
      PersonSeen& p = stats.people[e.identity];
      p.seconds += e.duration;
      ++p.tracks;
      if (p.first_time < 0 || ti.first_time < p.first_time) p.first_time = ti.first_time;
      p.best_similarity = std::max(p.best_similarity, e.similarity);
    }
    infos.erase(it);
  }
};

VideoRecognizer::VideoRecognizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VideoRecognizer::~VideoRecognizer() = default;

Result<std::unique_ptr<VideoRecognizer>> VideoRecognizer::create(const FaceRecognizer& recognizer,
                                                                 const VideoRecognizerOptions& options,
                                                                 double fps_nominal) {
  if (!recognizer.has_gallery()) return Status(ErrorCode::kInvalidArgument, "video recognition needs a gallery");
  VideoRecognizerOptions o = options;
  if (o.detection_score) {
    if (!(*o.detection_score >= 0.f && *o.detection_score <= 1.f))
      return Status(ErrorCode::kInvalidArgument, "the detection score must be within 0..1");
    o.tracker.low_score = *o.detection_score;
    o.tracker.high_score = std::max(o.tracker.high_score, o.tracker.low_score);
    o.tracker.new_track_score = std::max(o.tracker.new_track_score, o.tracker.high_score);
  }
  if (o.vote.threshold == 0.f) {
    FACEREC_ASSIGN_OR_RETURN(ThresholdChoice t, recognizer.threshold());
    o.vote.threshold = t.value;
  }
  auto impl = std::make_unique<Impl>(recognizer, o, fps_nominal > 0 ? fps_nominal : 25.0);
  // ByteTrack needs the weak detections too: the detector keeps everything
  // down to the tracker's low score, and the tracker decides what they mean.
  impl->detection = recognizer.config().detection;
  impl->detection.score_threshold = o.tracker.low_score;
  FACEREC_RETURN_IF_ERROR(validate_detect_options(impl->detection));
  return std::unique_ptr<VideoRecognizer>(new VideoRecognizer(std::move(impl)));
}

const VideoStats& VideoRecognizer::stats() const { return impl_->stats; }

void VideoRecognizer::finish(const VideoEventSink& sink) {
  for (int id : impl_->tracker.finish()) impl_->end_track(id, sink);
}

Result<std::vector<TrackView>> VideoRecognizer::process(const cv::Mat& bgr, long index, double time_s,
                                                        const VideoEventSink& sink) {
  try {
    Impl& m = *impl_;
    VideoStats& st = m.stats;
    ++st.frames;
    auto t0 = Clock::now();
    // A cut ends every track: nobody keeps a track id, or a name, across a
    // change of camera.
    const float diff = m.cuts.update(bgr);
    if (m.cuts.is_cut()) {
      VideoEvent e;
      e.kind = VideoEvent::Kind::kCut;
      e.frame = index;
      e.time = time_s;
      e.difference = diff;
      sink(e);
      for (int id : m.tracker.finish()) m.end_track(id, sink);
    }
    st.track_s += since(t0);
    t0 = Clock::now();
    FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, m.rec.detect(bgr, m.detection));
    st.detect_s += since(t0);

    t0 = Clock::now();
    std::vector<TrackerDetection> dets;
    dets.reserve(faces.size());
    for (const auto& f : faces) dets.push_back({f.box, f.score});
    const TrackerUpdate up = m.tracker.update(dets);
    st.track_s += since(t0);

    t0 = Clock::now();
    for (int id : up.started) {
      Impl::TrackInfo ti{TrackIdentity(m.opt.vote), EmbedSchedule(m.opt.schedule)};
      ti.first_frame = ti.last_frame = index;
      ti.first_time = ti.last_time = time_s;
      m.infos.emplace(id, std::move(ti));
    }
    std::vector<Face> to_embed;
    std::vector<int> to_embed_track;
    std::vector<float> to_embed_view;
    for (const auto& t : up.tracks) {
      if (t.detection < 0) continue;
      ++st.faces;
      Impl::TrackInfo& ti = m.infos.at(t.id);
      ti.last_frame = index;
      ti.last_time = time_s;
      ++ti.frames_seen;
      const Face& f = faces[static_cast<size_t>(t.detection)];
      const float v = view_score(f);
      if (ti.schedule.due(index, v, ti.identity.known())) {
        to_embed.push_back(f);
        to_embed_track.push_back(t.id);
        to_embed_view.push_back(v);
      }
    }
    for (int id : up.started) {
      const Impl::TrackInfo& ti = m.infos.at(id);
      const auto it = std::find_if(up.tracks.begin(), up.tracks.end(), [&](const TrackedFace& t) { return t.id == id; });
      VideoEvent e;
      e.kind = VideoEvent::Kind::kTrackStart;
      e.track = id;
      e.frame = ti.first_frame;
      e.time = ti.first_time;
      e.box = it != up.tracks.end() ? it->box : cv::Rect2f();
      sink(e);
    }
    if (!to_embed.empty()) {
      FACEREC_ASSIGN_OR_RETURN(std::vector<AnalyzedFace> embedded, m.rec.analyzer().embed_faces(bgr, to_embed));
      std::vector<std::span<const float>> queries;
      for (const auto& af : embedded) queries.emplace_back(af.embedding.unit);
      FACEREC_ASSIGN_OR_RETURN(auto results, m.rec.search(queries, 1));
      st.embeddings += static_cast<long>(embedded.size());
      for (size_t i = 0; i < embedded.size(); ++i) {
        Impl::TrackInfo& ti = m.infos.at(to_embed_track[i]);
        const std::string best = results[i].empty() ? std::string() : results[i][0].identity;
        const float sim = results[i].empty() ? 0.f : results[i][0].similarity;
        ti.schedule.embedded(index, to_embed_view[i]);
        // A face below the quality floor casts no vote: the track waits for a better view.
        if (!m.rec.analyzer().low_quality_reason(embedded[i]).empty()) continue;
        const IdentityChange c = ti.identity.add(best, sim, embedded[i].quality);
        if (!c.changed) continue;
        VideoEvent e;
        e.track = to_embed_track[i];
        e.frame = index;
        e.time = time_s;
        e.previous = c.previous;
        if (ti.identity.known()) {
          e.kind = VideoEvent::Kind::kIdentified;
          e.identity = ti.identity.identity();
          e.similarity = ti.identity.similarity();
          e.quality = embedded[i].quality;
        } else {
          e.kind = VideoEvent::Kind::kUnidentified;
        }
        sink(e);
      }
    }
    for (int id : up.ended) m.end_track(id, sink);
    st.embed_s += since(t0);

    std::vector<TrackView> views;
    for (const auto& t : up.tracks) {
      const auto it = m.infos.find(t.id);
      TrackView v;
      v.id = t.id;
      v.box = t.box;
      v.matched = t.detection >= 0;
      if (it != m.infos.end()) {
        v.identity = it->second.identity.identity();
        v.similarity = it->second.identity.similarity();
        v.votes = it->second.identity.votes();
      }
      views.push_back(std::move(v));
    }
    return views;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("video recognition: ") + e.what());
  }
}

}  // namespace facerec
