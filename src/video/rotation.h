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

// Turns a frame clockwise by 0/90/180/270 degrees.
cv::Mat rotate_cw(const cv::Mat& frame, int degrees);

}  // namespace facerec::video
