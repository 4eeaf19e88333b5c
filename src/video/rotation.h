// The display rotation a video file asks for (phones store portrait video
// sideways with a display matrix), read with libavformat the way the ffmpeg
// tool reads it, so facerec shows frames as ffmpeg/ffplay do.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

namespace facerec::video {

// Clockwise degrees to turn each stored frame to display it: 0, 90, 180 or
// 270 (the nearest multiple of 90). 0 when the file has no display matrix or
// cannot be probed. Reads only the container header.
int display_rotation_cw(const std::string& path);

// The byte length a network resource announces (HTTP Content-Length), read
// by opening it and closing it again: > 0 for a finite file served over the
// network, -1 for a live stream (chunked, or no length), or on any failure.
// Gives up after timeout_ms.
long long network_resource_size(const std::string& url, int timeout_ms);

// Cut connections. FFmpeg's HTTP reader knows when a response ends before
// its announced Content-Length ("Stream ends prematurely at X, should be Y",
// libavformat/http.c), but OpenCV 4.6 turns that EIO into an ordinary end of
// stream. watch_premature_ends() installs (once per process; call it before
// opening) an av_log callback that counts those reports per thread and then
// logs as FFmpeg would (av_log_default_callback, at the level OpenCV set). A
// thread that opens or reads a capture compares
// premature_ends_on_this_thread() before and after: a change means the
// connection was cut, not that the resource was complete. FFmpeg reads on
// the thread that calls VideoCapture::open/read, so the count is exact per
// thread. (With OPENCV_FFMPEG_DEBUG set, OpenCV installs its own callback at
// its first open, and cuts are no longer told apart.)
void watch_premature_ends();
long premature_ends_on_this_thread();

// Turns a frame clockwise by 0/90/180/270 degrees.
cv::Mat rotate_cw(const cv::Mat& frame, int degrees);

}  // namespace facerec::video
