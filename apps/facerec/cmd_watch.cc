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
#include "facerec/json.h"
#include "facerec/track.h"
#include "facerec/track_identity.h"
#include "facerec/video.h"
#include "facerec/video_recognizer.h"

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

void draw_track(cv::Mat& img, const TrackView& t) {
  const bool known = !t.identity.empty();
  const cv::Scalar colour = known ? cv::Scalar(0, 200, 0) : cv::Scalar(0, 0, 230);
  const int thick = std::max(1, img.cols / 500);
  cv::rectangle(img, t.box, colour, thick);
  char sim[32];
  std::snprintf(sim, sizeof sim, " %.2f", t.similarity);
  const std::string label = "#" + std::to_string(t.id) + " " +
                            (known ? ascii_label(t.identity) : std::string("unknown")) + (t.votes ? sim : "");
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
  // The detection score from the flag or the config file, if any (the
  // library's VideoRecognizerOptions::detection_score says what it does).
  auto layers = given_layers(a.o);
  if (!layers.ok()) return fail(layers.status().to_string());
  auto ctx = make_context(a.o, true, GalleryMode::kReadOnly, &*layers);
  if (!ctx.ok()) return fail(ctx.status().to_string());
  if (Status s = ctx->require_threshold(); !s.ok()) return fail(s.to_string());

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
  auto policy = ctx->recognizer->threshold();
  if (!policy.ok()) return fail(policy.status().to_string());
  if (!json_out)
    std::cerr << "watching " << printable(a.source) << " (" << src.size().width << "x" << src.size().height << ", "
              << (src.fps() > 0 ? std::to_string(src.fps()) : std::string("unknown")) << " fps), "
              << decision_text(policy->policy) << "; Ctrl-C to stop\n";
  emit({{"event", "decision"}, {"decision", decision_json(policy->policy)}});

  VideoRecognizerOptions vopts;
  vopts.tracker.track_buffer = a.track_buffer;
  vopts.detection_score = layers->score_threshold;
  vopts.vote.threshold = policy->value;
  vopts.schedule.refresh_frames = a.refresh_frames;
  vopts.schedule.unknown_refresh_frames = std::max(1, a.refresh_frames / 3);
  vopts.cut_threshold = a.cut_threshold;
  auto video = VideoRecognizer::create(*ctx->recognizer, vopts, fps_nominal);
  if (!video.ok()) return fail(video.status().to_string());
  VideoRecognizer& vr = **video;
  double output_s = 0;
  double last_time = 0;
  long last_index = 0;
  Status failure;
  bool window = false;
  bool user_quit = false;

  // The library decides; this prints each event as a JSON line or text.
  const VideoEventSink sink = [&](const VideoEvent& e) {
    char buf[192];
    switch (e.kind) {
      case VideoEvent::Kind::kCut:
        emit({{"event", "cut"}, {"frame", e.frame}, {"time", e.time}, {"difference", e.difference}});
        break;
      case VideoEvent::Kind::kTrackStart: {
        const cv::Rect2f& b = e.box;
        emit({{"event", "track_start"}, {"track", e.track}, {"frame", e.frame}, {"time", e.time},
              {"box", {b.x, b.y, b.x + b.width, b.y + b.height}}});
        std::snprintf(buf, sizeof buf, "%8.2fs  track %d started (frame %ld)", e.time, e.track, e.frame);
        say(buf);
        break;
      }
      case VideoEvent::Kind::kIdentified: {
        emit({{"event", "identified"}, {"track", e.track}, {"identity", e.identity}, {"similarity", e.similarity},
              {"frame", e.frame}, {"time", e.time}, {"quality", e.quality},
              {"previous", e.previous.empty() ? json(nullptr) : json(e.previous)}});
        std::snprintf(buf, sizeof buf, "%8.2fs  track %d is ", e.time, e.track);
        char tail[48];
        std::snprintf(tail, sizeof tail, " (%.3f, frame %ld)", e.similarity, e.frame);
        say(buf + printable(e.identity) + tail);
        break;
      }
      case VideoEvent::Kind::kUnidentified:
        emit({{"event", "unidentified"}, {"track", e.track}, {"previous", e.previous}, {"frame", e.frame},
              {"time", e.time}});
        std::snprintf(buf, sizeof buf, "%8.2fs  track %d is unknown again", e.time, e.track);
        say(buf);
        break;
      case VideoEvent::Kind::kTrackEnd:
        emit({{"event", "track_end"}, {"track", e.track}, {"frame", e.frame}, {"time", e.time},
              {"duration", e.duration}, {"frames", e.frames},
              {"identity", e.identity.empty() ? json(nullptr) : json(e.identity)}, {"similarity", e.similarity},
              {"embeddings", e.embeddings}});
        std::snprintf(buf, sizeof buf, "%8.2fs  track %d ended after %.2fs: ", e.time, e.track, e.duration);
        say(buf + (e.identity.empty() ? std::string("unknown") : printable(e.identity)));
        break;
    }
  };

  // Rolling processing rate for the overlay, over the last second or so.
  std::deque<Clock::time_point> recent;
  const auto run_start = Clock::now();
  VideoFrame frame;
  try {
    while (!g_interrupted && !user_quit) {
      if (a.max_frames > 0 && vr.stats().frames >= a.max_frames) break;
      const NextResult r = src.next(frame, 100);
      if (r == NextResult::kTimeout) continue;
      if (r == NextResult::kEnd) {
        failure = src.end_status();
        break;
      }
      last_time = frame.time_s;
      last_index = frame.index;
      auto tracks = vr.process(frame.bgr, frame.index, frame.time_s, sink);
      if (!tracks.ok()) { failure = tracks.status(); break; }

      auto t0 = Clock::now();
      recent.push_back(Clock::now());
      while (recent.size() > 2 && std::chrono::duration<double>(recent.back() - recent.front()).count() > 1.0)
        recent.pop_front();
      if (a.view || !a.save.empty()) {
        cv::Mat canvas = frame.bgr.clone();
        for (const auto& t : *tracks)
          if (t.matched) draw_track(canvas, t);
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
      output_s += since(t0);
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
  vr.finish(sink);
  const VideoStats& vs = vr.stats();
  const long frames = vs.frames, embeddings = vs.embeddings, faces_total = vs.faces;
  const StageTimes st{vs.detect_s, vs.track_s, vs.embed_s, output_s};
  const auto& people = vs.people;

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
  add_index_option(*cmd, a.o);
  add_db_option(*cmd, a.o);
  add_threshold_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_watch(a)); });
}

}  // namespace facerec::cli
