// Video input: one thread decodes while the caller processes. Files and
// cameras go through OpenCV's VideoCapture (FFmpeg, V4L2); network streams
// are read with libavformat/libavcodec directly, so that the end of a read
// can be judged (src/video/network_reader.h).
//
// - Live sources (cameras, rtsp://, http(s)://) keep only the newest frames:
//   a bounded queue whose oldest frame is dropped when full, so results never
//   lag behind reality.
// - Files deliver every frame by default (the decoder waits for the
//   consumer). With realtime they keep file pace instead and drop like a
//   live source.
// - A network stream that drops is reopened with exponential backoff. A file
//   served over the network (its byte size or duration declared) ends the
//   run when read to its declared end; cut short (a reset, an I/O error, a
//   stall past timeout_ms, fewer bytes than its Content-Length) it is
//   reopened and resumes after the last frame delivered, none twice, none
//   skipped. With no tries left, a cut is an error naming the source.
// Ownership: VideoSource owns its capture thread; the destructor stops and
// joins it. next() and stop() may be called from one consumer thread;
// stats() from any.
#pragma once

#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "facerec/status.h"

namespace facerec {

enum class SourceKind { kCamera, kStream, kFile };
// "0".."99" and /dev/video* are cameras; rtsp, rtsps, rtmp, http, https, udp
// and tcp URLs are streams; anything else is a file.
SourceKind classify_source(const std::string& source);

struct VideoSourceOptions {
  bool realtime = false;      // files only: keep file pace, dropping frames if processing is slower
  int queue_frames = 0;       // 0: 2 for live sources, 8 for files
  int reconnect_attempts = 8; // streams: reopen tries after a drop before giving up (0: none)
  double backoff_s = 0.5;     // first reconnect delay, doubled per failed try...
  double max_backoff_s = 8.0; // ...up to this
  int timeout_ms = 10000;     // streams: open and read timeouts
};

struct VideoFrame {
  cv::Mat bgr;       // 8-bit BGR
  long index = 0;    // position in the source, counting frames dropped before processing
  double time_s = 0; // files: index / fps; live: seconds since the source opened
};

struct CaptureStats {
  long decoded = 0;
  long dropped = 0;     // decoded but replaced in the queue by newer frames
  double decode_s = 0;  // seconds spent inside VideoCapture::read
  int reconnects = 0;
  // Network files: frames decoded again to resume after a cut, and not
  // delivered (a seek lands on the keyframe before the resume point; without
  // HTTP Range the file is decoded again from its start).
  long redecoded = 0;
};

enum class NextResult { kFrame, kEnd, kTimeout };

class VideoSource {
 public:
  // Opens the source (the first open happens here, so a source that cannot
  // be opened is an error now, not later) and starts decoding.
  static Result<std::unique_ptr<VideoSource>> open(const std::string& source, const VideoSourceOptions& options = {});
  ~VideoSource();

  // Waits up to timeout_ms for the next frame. kEnd: the file ended, stop()
  // was called, or a stream could not be reconnected (see end_status()).
  NextResult next(VideoFrame& out, int timeout_ms = 100);
  void stop();
  Status end_status() const;

  SourceKind kind() const;
  double fps() const;  // the source's nominal rate; 0 when unknown
  cv::Size size() const;
  CaptureStats stats() const;

  struct Impl;

 private:
  explicit VideoSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace facerec
