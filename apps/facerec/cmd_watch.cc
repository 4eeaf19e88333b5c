// facerec watch --source <camera|file|url>: track every face in a video, name
// each track once the evidence allows, and report, draw and record it.
//
// Threads: VideoSource decodes on its own thread; detection, tracking,
// embedding and output run here, one frame at a time. Embedding happens per
// track (at its start, on a clearly better view, every N frames), not per
// frame, so its cost follows the number of people in view.
#include <algorithm>
#include <chrono>
#include <deque>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>
#include <opencv2/highgui.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "app.h"
#include "facerec/track.h"
#include "facerec/track_identity.h"
#include "facerec/video.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace facerec::cli {
namespace {

struct WatchArgs {
  CommonOptions o;
  std::string source;
  bool view = false;
  bool realtime = false;
  std::string save;
  int refresh_frames = 30;
  int track_buffer = 30;
  int reconnect = 8;
  long max_frames = 0;
  float cut_threshold = 20.f;
};

// Per-track state beside the tracker's.
struct TrackInfo {
  TrackIdentity identity;
  EmbedSchedule schedule;
  long first_frame = 0, last_frame = 0;  // frames with a matched detection
  double first_time = 0, last_time = 0;  // seconds
  int frames_seen = 0;
};

struct PersonSeen {
  double seconds = 0;
  int tracks = 0;
  double first_time = -1;
  float best_similarity = 0;
};

struct StageTimes {
  double detect = 0, track = 0, embed = 0, output = 0;  // seconds, summed over frames
};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string ascii_label(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) out += (c < 0x20 ? '?' : static_cast<char>(c));
    else if ((c & 0xC0) != 0x80) out += '?';  // one '?' per UTF-8 character: Hershey fonts are ASCII-only
  }
  return out;
}

void draw_track(cv::Mat& img, const TrackedFace& t, const TrackInfo& info) {
  const bool known = info.identity.known();
  const cv::Scalar colour = known ? cv::Scalar(0, 200, 0) : cv::Scalar(0, 0, 230);
  const int thick = std::max(1, img.cols / 500);
  cv::rectangle(img, t.box, colour, thick);
  char sim[32];
  std::snprintf(sim, sizeof sim, " %.2f", info.identity.similarity());
  const std::string label = "#" + std::to_string(t.id) + " " +
                            (known ? ascii_label(info.identity.identity()) : std::string("unknown")) +
                            (info.identity.votes() ? sim : "");
  const double scale = std::max(0.4, img.cols / 1400.0);
  int base = 0;
  const cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
  const cv::Point org(std::clamp(static_cast<int>(t.box.x), 0, std::max(0, img.cols - ts.width)),
                      std::max(ts.height + 2, static_cast<int>(t.box.y) - 3));
  cv::rectangle(img, org + cv::Point(0, base), org + cv::Point(ts.width, -ts.height - 2), colour, cv::FILLED);
  cv::putText(img, label, org, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), thick, cv::LINE_AA);
}

void draw_fps(cv::Mat& img, double fps) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f FPS", fps);
  const double scale = std::max(0.5, img.cols / 1200.0);
  cv::putText(img, text, {8, static_cast<int>(24 * scale / 0.5)}, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0),
              3, cv::LINE_AA);
  cv::putText(img, text, {8, static_cast<int>(24 * scale / 0.5)}, cv::FONT_HERSHEY_SIMPLEX, scale,
              cv::Scalar(0, 255, 255), 1, cv::LINE_AA);
}

int run_watch(WatchArgs a) {
  const auto fail = [](const std::string& msg) {
    std::cerr << "facerec watch: " << msg << "\n";
    return kExitError;
  };
  // Before any model loads: a window needs a display.
  if (a.view) {
    const char* x = std::getenv("DISPLAY");
    const char* w = std::getenv("WAYLAND_DISPLAY");
    if ((!x || !*x) && (!w || !*w))
      return fail("--view needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set; "
                  "use --save out.mp4 to record the overlay instead");
  }
  if (!a.save.empty()) {
    const fs::path parent = fs::path(a.save).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec)) return fail("cannot save to " + a.save + ": no folder " + parent.string());
  }
  // ByteTrack needs the weak detections too: the detector keeps everything
  // down to the tracker's low score, and the tracker decides what they mean.
  TrackerOptions topt;
  topt.track_buffer = a.track_buffer;
  if (a.o.score_threshold) {
    topt.low_score = *a.o.score_threshold;
    topt.high_score = std::max(topt.high_score, topt.low_score);
    topt.new_track_score = std::max(topt.new_track_score, topt.high_score);
  } else {
    a.o.score_threshold = topt.low_score;
  }
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail(ctx.status().to_string());
  if (Status s = ctx->require_threshold(); !s.ok()) return fail(s.to_string());
  if (!fs::exists(ctx->db))
    return fail("no gallery at " + ctx->db + "; enrol people first (facerec enroll <dir> --db " + ctx->db + ")");
  auto gallery = Gallery::open(ctx->db, ctx->embedder_info());
  if (!gallery.ok()) return fail(gallery.status().to_string());
  auto index = SearchIndex::from_gallery(**gallery, kDefaultTemplateRule, ctx->analyzer->embedder().spec().quality_magnitude);
  if (!index.ok()) return fail(index.status().to_string());
  // Each embedding of a track is one search of the gallery: the threshold
  // holds the FPIR per search.
  auto policy = ctx->decision_policy(static_cast<int64_t>(index->people()), static_cast<int64_t>(index->size()), index->rule());
  if (!policy.ok()) return fail(policy.status().to_string());

  VideoSourceOptions vopt;
  vopt.realtime = a.realtime;
  vopt.reconnect_attempts = a.reconnect;
  auto source = VideoSource::open(a.source, vopt);
  if (!source.ok()) return fail(source.status().to_string());
  VideoSource& src = **source;
  const double fps_nominal = src.fps() > 0 ? src.fps() : 25.0;

  cv::VideoWriter writer;
  const auto open_writer = [&](cv::Size size) {
    const std::string ext = fs::path(a.save).extension().string();
    const int fourcc = (ext == ".avi" || ext == ".AVI") ? cv::VideoWriter::fourcc('M', 'J', 'P', 'G')
                                                        : cv::VideoWriter::fourcc('m', 'p', '4', 'v');
    try {
      writer.open(a.save, cv::CAP_FFMPEG, fourcc, fps_nominal, size);
    } catch (const cv::Exception&) {
    }
    return writer.isOpened();
  };
  if (!a.save.empty() && src.size().area() > 0 && !open_writer(src.size()))
    return fail("cannot write video " + a.save + " (use .mp4 or .avi)");

  const bool json_out = a.o.json;
  const auto emit = [&](const json& j) {
    if (json_out) std::cout << j.dump() << "\n" << std::flush;
  };
  const auto say = [&](const std::string& line) {
    if (!json_out) std::cout << line << "\n" << std::flush;
  };
  if (!json_out)
    std::cerr << "watching " << printable(a.source) << " (" << src.size().width << "x" << src.size().height << ", "
              << (src.fps() > 0 ? std::to_string(src.fps()) : std::string("unknown")) << " fps), "
              << decision_text(*policy) << "; Ctrl-C to stop\n";
  emit({{"event", "decision"}, {"decision", json::parse(decision_json(*policy))}});

  IdentityVoteOptions vote;
  vote.threshold = policy->threshold;
  EmbedScheduleOptions sched;
  sched.refresh_frames = a.refresh_frames;
  sched.unknown_refresh_frames = std::max(1, a.refresh_frames / 3);
  ByteTracker tracker(topt);
  CutDetector cuts(a.cut_threshold);
  std::map<int, TrackInfo> infos;
  std::map<std::string, PersonSeen> people;
  StageTimes st;
  long frames = 0, embeddings = 0, faces_total = 0;
  double last_time = 0;
  long last_index = 0;
  Status failure;
  bool window = false;
  bool user_quit = false;

  const auto end_track = [&](int id) {
    auto it = infos.find(id);
    if (it == infos.end()) return;
    const TrackInfo& ti = it->second;
    // Seconds in view: from the first to the last matched frame, inclusive.
    const double duration = ti.last_time - ti.first_time + 1.0 / fps_nominal;
    const std::string& who = ti.identity.identity();
    emit({{"event", "track_end"}, {"track", id}, {"frame", ti.last_frame}, {"time", ti.last_time},
          {"duration", duration}, {"frames", ti.frames_seen}, {"identity", who.empty() ? json(nullptr) : json(who)},
          {"similarity", ti.identity.similarity()}, {"embeddings", ti.schedule.count()}});
    char buf[160];
    std::snprintf(buf, sizeof buf, "%8.2fs  track %d ended after %.2fs: ", ti.last_time, id, duration);
    say(buf + (who.empty() ? std::string("unknown") : printable(who)));
    if (!who.empty()) {
      PersonSeen& p = people[who];
      p.seconds += duration;
      ++p.tracks;
      if (p.first_time < 0 || ti.first_time < p.first_time) p.first_time = ti.first_time;
      p.best_similarity = std::max(p.best_similarity, ti.identity.similarity());
    }
    infos.erase(it);
  };

  // Rolling processing rate for the overlay, over the last second or so.
  std::deque<Clock::time_point> recent;
  const auto run_start = Clock::now();
  VideoFrame frame;
  try {
    while (!g_interrupted && !user_quit) {
      if (a.max_frames > 0 && frames >= a.max_frames) break;
      const NextResult r = src.next(frame, 100);
      if (r == NextResult::kTimeout) continue;
      if (r == NextResult::kEnd) {
        failure = src.end_status();
        break;
      }
      ++frames;
      last_time = frame.time_s;
      last_index = frame.index;
      auto t0 = Clock::now();
      // A cut ends every track: nobody keeps a track id, or a name, across a
      // change of camera.
      const float diff = cuts.update(frame.bgr);
      if (cuts.is_cut()) {
        emit({{"event", "cut"}, {"frame", frame.index}, {"time", frame.time_s}, {"difference", diff}});
        for (int id : tracker.finish()) end_track(id);
      }
      st.track += since(t0);
      t0 = Clock::now();
      auto faces = ctx->analyzer->detect(frame.bgr);
      if (!faces.ok()) { failure = faces.status(); break; }
      st.detect += since(t0);

      t0 = Clock::now();
      std::vector<TrackerDetection> dets;
      dets.reserve(faces->size());
      for (const auto& f : *faces) dets.push_back({f.box, f.score});
      const TrackerUpdate up = tracker.update(dets);
      st.track += since(t0);

      t0 = Clock::now();
      for (int id : up.started) {
        TrackInfo ti{TrackIdentity(vote), EmbedSchedule(sched)};
        ti.first_frame = ti.last_frame = frame.index;
        ti.first_time = ti.last_time = frame.time_s;
        infos.emplace(id, std::move(ti));
      }
      std::vector<Face> to_embed;
      std::vector<int> to_embed_track;
      std::vector<float> to_embed_view;
      for (const auto& t : up.tracks) {
        if (t.detection < 0) continue;
        ++faces_total;
        TrackInfo& ti = infos.at(t.id);
        ti.last_frame = frame.index;
        ti.last_time = frame.time_s;
        ++ti.frames_seen;
        const Face& f = (*faces)[t.detection];
        const float v = view_score(f);
        if (ti.schedule.due(frame.index, v, ti.identity.known())) {
          to_embed.push_back(f);
          to_embed_track.push_back(t.id);
          to_embed_view.push_back(v);
        }
      }
      for (int id : up.started) {
        const TrackInfo& ti = infos.at(id);
        const auto it = std::find_if(up.tracks.begin(), up.tracks.end(), [&](const TrackedFace& t) { return t.id == id; });
        const cv::Rect2f b = it != up.tracks.end() ? it->box : cv::Rect2f();
        emit({{"event", "track_start"}, {"track", id}, {"frame", ti.first_frame}, {"time", ti.first_time},
              {"box", {b.x, b.y, b.x + b.width, b.y + b.height}}});
        char buf[96];
        std::snprintf(buf, sizeof buf, "%8.2fs  track %d started (frame %ld)", ti.first_time, id, ti.first_frame);
        say(buf);
      }
      if (!to_embed.empty()) {
        auto embedded = ctx->analyzer->embed_faces(frame.bgr, to_embed);
        if (!embedded.ok()) { failure = embedded.status(); break; }
        std::vector<const float*> queries;
        for (const auto& af : *embedded) queries.push_back(af.embedding.unit.data());
        const auto results = index->search_batch(queries, 1);
        embeddings += static_cast<long>(embedded->size());
        for (size_t i = 0; i < embedded->size(); ++i) {
          TrackInfo& ti = infos.at(to_embed_track[i]);
          const std::string best = results[i].empty() ? std::string() : results[i][0].identity;
          const float sim = results[i].empty() ? 0.f : results[i][0].similarity;
          ti.schedule.embedded(frame.index, to_embed_view[i]);
          const IdentityChange c = ti.identity.add(best, sim, (*embedded)[i].quality);
          if (!c.changed) continue;
          const int id = to_embed_track[i];
          if (ti.identity.known()) {
            emit({{"event", "identified"}, {"track", id}, {"identity", ti.identity.identity()},
                  {"similarity", ti.identity.similarity()}, {"frame", frame.index}, {"time", frame.time_s},
                  {"quality", (*embedded)[i].quality},
                  {"previous", c.previous.empty() ? json(nullptr) : json(c.previous)}});
            char buf[128];
            std::snprintf(buf, sizeof buf, "%8.2fs  track %d is ", frame.time_s, id);
            char tail[48];
            std::snprintf(tail, sizeof tail, " (%.3f, frame %ld)", ti.identity.similarity(), frame.index);
            say(buf + printable(ti.identity.identity()) + tail);
          } else {
            emit({{"event", "unidentified"}, {"track", id}, {"previous", c.previous}, {"frame", frame.index},
                  {"time", frame.time_s}});
            char buf[96];
            std::snprintf(buf, sizeof buf, "%8.2fs  track %d is unknown again", frame.time_s, id);
            say(buf);
          }
        }
      }
      for (int id : up.ended) end_track(id);
      st.embed += since(t0);

      t0 = Clock::now();
      recent.push_back(Clock::now());
      while (recent.size() > 2 && std::chrono::duration<double>(recent.back() - recent.front()).count() > 1.0)
        recent.pop_front();
      if (a.view || !a.save.empty()) {
        cv::Mat canvas = frame.bgr.clone();
        for (const auto& t : up.tracks)
          if (t.detection >= 0) draw_track(canvas, t, infos.at(t.id));
        const double span = std::chrono::duration<double>(recent.back() - recent.front()).count();
        draw_fps(canvas, span > 0 ? (recent.size() - 1) / span : 0.0);
        if (!a.save.empty()) {
          if (!writer.isOpened() && !open_writer(canvas.size())) {
            failure = Status(ErrorCode::kIo, "cannot write video " + a.save);
            break;
          }
          writer.write(canvas);
        }
        if (a.view) {
          cv::imshow("facerec watch", canvas);
          window = true;
          const int key = cv::waitKey(1);
          if (key == 'q' || key == 27) user_quit = true;
        }
      }
      st.output += since(t0);
    }
  } catch (const std::exception& e) {
    // OpenCV throws from imshow (no GUI backend) and from a failing writer.
    failure = Status(ErrorCode::kInternal, e.what());
  }
  const double wall = since(run_start);
  src.stop();
  // Close the video first: whatever happens below, the file must play.
  writer.release();
  if (window) cv::destroyAllWindows();
  for (int id : tracker.finish()) end_track(id);

  const CaptureStats cs = src.stats();
  const double n = std::max<long>(frames, 1);
  json stages = {
      {"decode", {{"ms_per_frame", cs.decoded ? 1e3 * cs.decode_s / cs.decoded : 0.0},
                  {"fps", cs.decode_s > 0 ? cs.decoded / cs.decode_s : 0.0}}},
      {"detect", {{"ms_per_frame", 1e3 * st.detect / n}, {"fps", st.detect > 0 ? frames / st.detect : 0.0}}},
      {"track", {{"ms_per_frame", 1e3 * st.track / n}, {"fps", st.track > 0 ? frames / st.track : 0.0}}},
      {"embed", {{"ms_per_frame", 1e3 * st.embed / n}, {"fps", st.embed > 0 ? frames / st.embed : 0.0},
                 {"ms_per_embedding", embeddings ? 1e3 * st.embed / embeddings : 0.0}}},
      {"output", {{"ms_per_frame", 1e3 * st.output / n}, {"fps", st.output > 0 ? frames / st.output : 0.0}}}};
  json jpeople = json::object();
  for (const auto& [who, p] : people)
    jpeople[who] = {{"seconds", p.seconds}, {"tracks", p.tracks}, {"first_time", p.first_time},
                    {"similarity", p.best_similarity}};
  const json summary = {{"event", "summary"},
                        {"frames", frames},
                        {"frames_decoded", cs.decoded},
                        {"frames_dropped", cs.dropped},
                        {"last_frame", last_index},
                        {"last_time", last_time},
                        {"seconds", wall},
                        {"fps", wall > 0 ? frames / wall : 0.0},
                        {"embeddings", embeddings},
                        {"embeddings_per_frame", embeddings / n},
                        {"faces_per_frame", faces_total / n},
                        {"reconnects", cs.reconnects},
                        {"people", jpeople},
                        {"stages", stages},
                        {"interrupted", g_interrupted.load()}};
  emit(summary);
  std::ostream& hs = json_out ? std::cerr : std::cout;
  char line[256];
  std::snprintf(line, sizeof line,
                "\n%ld frames in %.2fs: %.1f FPS end to end (%ld decoded, %ld dropped); %ld embeddings, %.3f per frame, "
                "%.2f faces per frame\n",
                frames, wall, wall > 0 ? frames / wall : 0.0, cs.decoded, cs.dropped, embeddings, embeddings / n,
                faces_total / n);
  hs << line;
  for (const char* stage : {"decode", "detect", "track", "embed", "output"}) {
    std::snprintf(line, sizeof line, "  %-7s %7.2f ms/frame  %8.1f FPS\n", stage,
                  stages[stage]["ms_per_frame"].get<double>(), stages[stage]["fps"].get<double>());
    hs << line;
  }
  if (people.empty()) hs << "nobody enrolled was seen\n";
  for (const auto& [who, p] : people) {
    std::snprintf(line, sizeof line, "  %.2fs in view (%d track%s, first at %.2fs, similarity %.3f): ", p.seconds,
                  p.tracks, p.tracks == 1 ? "" : "s", p.first_time, p.best_similarity);
    hs << line << printable(who) << "\n";
  }
  hs.flush();
  if (!failure.ok()) return fail(failure.to_string());
  return g_interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

void register_watch(CLI::App& app, std::function<void(int)> set_rc) {
  static WatchArgs a;
  auto* cmd = app.add_subcommand("watch", "track and name every face in a camera, video file or RTSP/HTTP stream");
  cmd->add_option("--source", a.source, "camera index (0), /dev/videoN, video file, or rtsp:// / http:// URL")->required();
  cmd->add_flag("--view", a.view, "show the overlay in a window (needs a display; q or Esc quits)");
  cmd->add_option("--save", a.save, "write the overlay video here (.mp4: mp4v, .avi: MJPG)");
  cmd->add_flag("--realtime", a.realtime, "files: keep the file's pace, dropping frames when processing is slower");
  cmd->add_option("--embed-every", a.refresh_frames, "re-embed a named track every N frames (default 30)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--track-buffer", a.track_buffer, "frames a lost track is kept before it ends (default 30)")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--reconnect", a.reconnect, "streams: reopen tries after a drop, with backoff (default 8)")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--max-frames", a.max_frames, "stop after this many processed frames (default: no limit)")
      ->check(CLI::Range(0L, 1L << 40));
  cmd->add_option("--cut-threshold", a.cut_threshold,
                  "mean grey-level change (0-255) between frames that counts as a cut and ends all tracks "
                  "(default 20; 0: never)")
      ->check(CLI::Range(0.f, 255.f));
  cmd->add_flag("--json", a.o.json, "JSON-lines events on stdout: track_start, identified, track_end, summary");
  add_model_options(*cmd, a.o);
  add_db_option(*cmd, a.o);
  add_threshold_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_watch(a)); });
}

}  // namespace facerec::cli
