// The display rotation a video file asks for (phones store portrait video
// sideways with a display matrix), read with libavformat the way the ffmpeg
// tool reads it, so facerec shows frames as ffmpeg/ffplay do.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

struct AVStream;

namespace facerec::video {

// Clockwise degrees to turn each stored frame to display it: 0, 90, 180 or
// 270 (the nearest multiple of 90). 0 when the file has no display matrix or
// cannot be probed. Reads only the container header.
int display_rotation_cw(const std::string& path);
// The same for a stream already opened (the network reader's).
int stream_rotation_cw(const AVStream* stream);

// Cut connections, as FFmpeg's log tells them. FFmpeg's HTTP reader logs
// "Stream ends prematurely at X, should be Y" (libavformat/http.c) when a
// response ends before its announced Content-Length. watch_premature_ends()
// installs (once per process; call it before opening) an av_log callback
// that counts those reports per thread, then logs as FFmpeg would
// (av_log_default_callback). A thread that opens or reads compares
// premature_ends_on_this_thread() before and after: a change means the
// connection was cut. This is one sign among several: NetworkReader also
// judges the end from FFmpeg's error codes and byte counts, since a reset
// connection (RST) logs nothing. (With OPENCV_FFMPEG_DEBUG set, OpenCV
// installs its own callback at its first open, and this count stops.)
void watch_premature_ends();
long premature_ends_on_this_thread();

// Turns a frame clockwise by 0/90/180/270 degrees.
cv::Mat rotate_cw(const cv::Mat& frame, int degrees);

}  // namespace facerec::video
