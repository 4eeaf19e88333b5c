#include "facerec/video.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include <opencv2/videoio.hpp>

#include "network_reader.h"
#include "rotation.h"

namespace facerec {

using Clock = std::chrono::steady_clock;

SourceKind classify_source(const std::string& s) {
  if (!s.empty() && s.size() <= 2 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return SourceKind::kCamera;
  if (s.rfind("/dev/video", 0) == 0) return SourceKind::kCamera;
  static const char* kSchemes[] = {"rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://"};
  std::string lower = s.substr(0, 8);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* k : kSchemes)
    if (lower.rfind(k, 0) == 0) return SourceKind::kStream;
  return SourceKind::kFile;
}

struct VideoSource::Impl {
  std::string source;
  VideoSourceOptions options;
  SourceKind kind = SourceKind::kFile;
  cv::VideoCapture cap;                     // files and cameras
  std::unique_ptr<video::NetworkReader> net;  // network streams
  std::string open_error;                   // why the last open_capture() failed
  double fps = 0;
  cv::Size size;
  int rotation_cw = 0;      // files: the display rotation, as ffmpeg applies it
  size_t capacity = 2;
  bool drop_oldest = true;

  mutable std::mutex mu;
  std::condition_variable cv_frames, cv_space, cv_stop;
  std::deque<VideoFrame> queue;
  bool ended = false;
  std::atomic<bool> stopping{false};
  Status end_status;
  CaptureStats stats;
  std::thread thread;

  // Opens (or reopens) the capture. resume: a network file that was cut
  // continues after the last frame it delivered. Never throws.
  bool open_capture(bool resume) {
    if (kind == SourceKind::kStream) {
      if (!net) net = std::make_unique<video::NetworkReader>(source, options.timeout_ms, &stopping);
      open_error.clear();
      return net->open(resume, &open_error);
    }
    try {
      cap.release();
      if (kind == SourceKind::kCamera && classify_source(source) == SourceKind::kCamera &&
          source.rfind("/dev/", 0) != 0) {
        cap.open(std::stoi(source), cv::CAP_ANY);
      } else if (kind == SourceKind::kCamera) {
        cap.open(source, cv::CAP_V4L2);
      } else {
        cap.open(source, cv::CAP_FFMPEG);
      }
      // OpenCV 4.6 turns +-90 degree phone video the wrong way (it reads the
      // legacy "rotate" tag with the opposite sign to ffmpeg): switch its
      // rotation off and apply the display matrix ourselves (rotation.h).
      if (cap.isOpened()) cap.set(cv::CAP_PROP_ORIENTATION_AUTO, 0);
      return cap.isOpened();
    } catch (const std::exception&) {
      return false;
    }
  }

  // Sleeps up to `s` seconds; returns false when stop() interrupted it.
  bool sleep_unless_stopped(double s) {
    std::unique_lock<std::mutex> lk(mu);
    return !cv_stop.wait_for(lk, std::chrono::duration<double>(s), [&] { return stopping.load(); });
  }

  void push(VideoFrame f) {
    std::unique_lock<std::mutex> lk(mu);
    if (drop_oldest) {
      while (queue.size() >= capacity) { queue.pop_front(); ++stats.dropped; }
    } else {
      cv_space.wait(lk, [&] { return queue.size() < capacity || stopping.load(); });
      if (stopping) return;
    }
    queue.push_back(std::move(f));
    cv_frames.notify_one();
  }

  void finish(Status s) {
    std::lock_guard<std::mutex> lk(mu);
    ended = true;
    end_status = std::move(s);
    cv_frames.notify_all();
  }

  // The end of the frames: fine, unless the source never gave one (a corrupt
  // or empty file, a stream that sends nothing decodable).
  Status end_of_source() {
    std::lock_guard<std::mutex> lk(mu);
    if (stats.decoded > 0) return Status::Ok();
    return Status(ErrorCode::kDecode, std::string(kind == SourceKind::kFile ? "video file " : "source ") + source +
                                          " yielded no frame (corrupt, empty, or not a video)");
  }

  void run() {
    const auto start = Clock::now();
    long index = 0;
    int tries = 0;  // reconnect tries, counted across the whole run
    while (!stopping) {
      cv::Mat frame;
      const auto t0 = Clock::now();
      bool ok = false;
      try {
        ok = net ? net->read(frame) : cap.read(frame) && !frame.empty();
      } catch (const std::exception&) {
        ok = false;
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        stats.decode_s += std::chrono::duration<double>(Clock::now() - t0).count();
        if (net) stats.redecoded = net->redecoded();
      }
      if (!ok) {
        if (stopping) break;
        if (kind != SourceKind::kStream) { finish(end_of_source()); return; }  // end of file, camera gone
        // A file served over the network (its length or duration declared)
        // that was read to its declared end has ended, like a file. A cut one
        // (an I/O error such as a reset, a timeout, or fewer bytes than
        // declared: video::StreamEnd) resumes after the frames it delivered.
        // Live streams are reopened.
        const video::StreamEnd e = net->end();
        const bool finite = net->finite();
        if (finite && e.complete) { finish(end_of_source()); return; }
        // Reopen with exponential backoff. The tries are counted across the
        // run, so a source that keeps failing ends.
        bool reopened = false;
        double delay = options.backoff_s;
        while (!stopping && tries < options.reconnect_attempts) {
          ++tries;
          if (!sleep_unless_stopped(delay)) break;
          delay = std::min(delay * 2, options.max_backoff_s);
          if (open_capture(/*resume=*/finite)) { reopened = true; break; }
        }
        if (reopened) {
          std::lock_guard<std::mutex> lk(mu);
          ++stats.reconnects;
          continue;
        }
        if (stopping) break;
        const std::string gave_up = " and could not be reopened after " + std::to_string(options.reconnect_attempts) +
                                    " tries (counted over the run" +
                                    (open_error.empty() ? std::string() : "; last: " + open_error) + ")";
        if (finite)  // a file cut short is an error even with no tries allowed: frames are missing
          finish(Status(ErrorCode::kIo, "stream " + source + ": the connection was cut before the end of the file (" +
                                            e.why + ", after " + std::to_string(net->delivered()) + " frames)" +
                                            (options.reconnect_attempts > 0 ? gave_up : std::string(" (--reconnect 0)"))));
        else
          finish(options.reconnect_attempts > 0
                     ? Status(ErrorCode::kIo, "stream " + source + " dropped (" + e.why + ")" + gave_up)
                     : end_of_source());
        return;
      }
      if (rotation_cw) frame = video::rotate_cw(frame, rotation_cw);
      VideoFrame vf;
      vf.index = index++;
      if (kind == SourceKind::kFile && fps > 0) {
        vf.time_s = vf.index / fps;
        if (options.realtime) {
          // Keep file pace: a frame is not delivered before its time.
          const auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(vf.time_s));
          const double wait = std::chrono::duration<double>(due - Clock::now()).count();
          if (wait > 0 && !sleep_unless_stopped(wait)) break;
        }
      } else {
        vf.time_s = std::chrono::duration<double>(Clock::now() - start).count();
      }
      vf.bgr = std::move(frame);
      {
        std::lock_guard<std::mutex> lk(mu);
        ++stats.decoded;
      }
      push(std::move(vf));
    }
    finish(Status::Ok());
  }
};

VideoSource::VideoSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<VideoSource>> VideoSource::open(const std::string& source, const VideoSourceOptions& options) {
  if (source.empty()) return Status(ErrorCode::kInvalidArgument, "empty video source");
  if (options.queue_frames < 0 || options.reconnect_attempts < 0 || !(options.backoff_s >= 0))
    return Status(ErrorCode::kInvalidArgument, "negative queue size, reconnect count or backoff");
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  impl->options = options;
  impl->kind = classify_source(source);
  if (impl->kind == SourceKind::kFile) {
    std::error_code ec;
    if (!std::filesystem::exists(source, ec)) return Status(ErrorCode::kNotFound, "no such video file: " + source);
  }
  const bool http = impl->kind == SourceKind::kStream && [&] {
    std::string scheme = source.substr(0, 8);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return scheme.rfind("http://", 0) == 0 || scheme.rfind("https://", 0) == 0;
  }();
  if (http) video::watch_premature_ends();
  if (!impl->open_capture(/*resume=*/false)) {
    const char* what = impl->kind == SourceKind::kCamera ? "camera" : impl->kind == SourceKind::kStream ? "stream" : "video file";
    return Status(impl->kind == SourceKind::kFile ? ErrorCode::kDecode : ErrorCode::kIo,
                  std::string("cannot open ") + what + " " + source +
                      (impl->open_error.empty() ? std::string() : ": " + impl->open_error));
  }
  if (impl->net) {
    impl->fps = impl->net->fps();
    impl->size = impl->net->size();  // turned by its display matrix already
  } else {
    if (impl->kind == SourceKind::kFile) impl->rotation_cw = video::display_rotation_cw(source);
    impl->fps = impl->cap.get(cv::CAP_PROP_FPS);
    if (!(impl->fps > 0 && impl->fps < 1000)) impl->fps = 0;
    impl->size = {static_cast<int>(impl->cap.get(cv::CAP_PROP_FRAME_WIDTH)),
                  static_cast<int>(impl->cap.get(cv::CAP_PROP_FRAME_HEIGHT))};
    if (impl->rotation_cw == 90 || impl->rotation_cw == 270) impl->size = {impl->size.height, impl->size.width};
  }
  const bool live = impl->kind != SourceKind::kFile || options.realtime;
  impl->drop_oldest = live;
  impl->capacity = options.queue_frames > 0 ? options.queue_frames : (live ? 2 : 8);
  std::unique_ptr<VideoSource> vs(new VideoSource(std::move(impl)));
  Impl* raw = vs->impl_.get();
  vs->impl_->thread = std::thread([raw] { raw->run(); });
  return vs;
}

VideoSource::~VideoSource() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

NextResult VideoSource::next(VideoFrame& out, int timeout_ms) {
  std::unique_lock<std::mutex> lk(impl_->mu);
  const bool ready = impl_->cv_frames.wait_for(lk, std::chrono::milliseconds(timeout_ms),
                                               [&] { return !impl_->queue.empty() || impl_->ended; });
  if (!ready) return NextResult::kTimeout;
  if (impl_->queue.empty()) return NextResult::kEnd;
  out = std::move(impl_->queue.front());
  impl_->queue.pop_front();
  impl_->cv_space.notify_one();
  return NextResult::kFrame;
}

void VideoSource::stop() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv_stop.notify_all();
  impl_->cv_space.notify_all();
}

Status VideoSource::end_status() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->end_status;
}

SourceKind VideoSource::kind() const { return impl_->kind; }
double VideoSource::fps() const { return impl_->fps; }
cv::Size VideoSource::size() const { return impl_->size; }
CaptureStats VideoSource::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats;
}

}  // namespace facerec
