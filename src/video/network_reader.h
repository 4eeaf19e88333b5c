// A network stream (http(s), rtsp, rtmp, udp, tcp URLs) read with
// libavformat and decoded with libavcodec directly, not through OpenCV's
// VideoCapture: OpenCV 4.6 turns every end of input (a complete file, a
// connection reset, a timeout) into the same "no more frames", so a dropped
// connection to a file served over HTTP looked like its end. Here the end of
// a read is judged from what FFmpeg knows (see StreamEnd), and a cut file
// resumes exactly after the last frame delivered.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

namespace facerec::video {

// Why the last read() returned false.
struct StreamEnd {
  // A finite resource (see NetworkReader::finite) read to its declared end:
  // the demuxer said end of file, the I/O layer reported no error, FFmpeg
  // logged no premature end, and
  //  - with a declared byte size (HTTP Content-Length): the I/O layer did
  //    not meet its end before that many bytes (the demuxer may stop before
  //    the last byte, at the last frame its index lists);
  //  - with none, but a declared video duration: the last frame's end reaches
  //    it (within two frames).
  bool complete = false;
  // Otherwise, for a finite resource: what cut it, e.g. "Connection reset by
  // peer, at byte 51700 of 103424". For a live stream: how it ended.
  std::string why;
};

// Owns its FFmpeg contexts. Not thread-safe: open() and read() are called by
// one thread at a time (VideoSource opens on the caller's thread, then reads
// on its capture thread). `stop` may be set from any thread: a blocking open
// or read then returns at once.
class NetworkReader {
 public:
  // timeout_ms: the longest a connect, or a wait for the next packet, may take
  // (a stall longer than that is a cut, AVERROR(ETIMEDOUT)/AVERROR_EXIT).
  NetworkReader(std::string url, int timeout_ms, const std::atomic<bool>* stop);
  ~NetworkReader();
  NetworkReader(const NetworkReader&) = delete;
  NetworkReader& operator=(const NetworkReader&) = delete;

  // Opens, or reopens, the resource. With resume (used after a cut of a
  // finite resource), the next frame read() delivers is the one after the
  // last frame it delivered before: the reader seeks to that frame's pts when
  // the resource can seek (HTTP Range), landing on the keyframe at or before
  // it, or else decodes from the start; either way the frames up to and
  // including that pts are decoded but not delivered. So no frame is
  // delivered twice and none is skipped. false, with *why, on failure.
  bool open(bool resume, std::string* why);

  // The next frame: 8-bit BGR, turned by the stream's display matrix as
  // ffmpeg shows it. false at the end of this connection: see end().
  bool read(cv::Mat& bgr);
  const StreamEnd& end() const;

  // Known after the first successful open:
  // The resource declares its length (byte size, or a video duration): a
  // file served over the network, whose end ends the run. Live streams
  // declare neither.
  bool finite() const;
  double fps() const;      // the nominal frame rate; 0 when unknown
  cv::Size size() const;   // the display size (after rotation)
  long long byte_size() const;  // the declared size in bytes; -1 when none
  long delivered() const;  // frames delivered by read() over all opens
  long redecoded() const;  // frames decoded again (not delivered) to resume after cuts

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace facerec::video
