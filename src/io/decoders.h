// Decoders facerec drives itself, where OpenCV's would hide a fault or has
// none: JPEG (libjpeg-turbo, with corrupt-data warnings made errors so missing
// data is never filled with grey), GIF (giflib) and HEIF/AVIF (libheif).
// Each returns 8-bit BGR (JPEG: 1-channel for greyscale) and never throws.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

#include "facerec/image.h"

namespace facerec::io {

// The header has been read and its size checked against the limits.
Result<cv::Mat> decode_jpeg(const std::string& bytes);
Result<cv::Mat> decode_gif(const std::string& bytes, const ImageLimits& limits);
// Reads the primary image's size first and refuses it over limits.max_pixels
// before decoding; applies HEIF's own rotation/mirror transforms.
Result<cv::Mat> decode_heif(const std::string& bytes, ImageFormat format, const ImageLimits& limits);

// The one "too many pixels" message, so every format says the same.
Status too_many_pixels(int64_t width, int64_t height, const ImageLimits& limits);

}  // namespace facerec::io
