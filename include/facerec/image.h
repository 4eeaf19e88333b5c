// Safe image loading: every way a file can be bad becomes a clear Status.
#pragma once

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

#include "facerec/status.h"

namespace facerec {

struct ImageLimits {
  int64_t max_pixels = 40'000'000;          // width*height, checked from the header before decoding
  int64_t max_file_bytes = 200'000'000;
};

// Reads an image file and returns it as 8-bit 3-channel BGR.
// - missing / unreadable file: kNotFound / kIo
// - 0-byte, not an image, truncated (JPEG without EOI, PNG without IEND), corrupt: kDecode
// - more pixels than limits.max_pixels (read from the header, before decoding): kTooLarge
// Greyscale, alpha and 16-bit images are converted, not rejected.
Result<cv::Mat> load_image(const std::string& path, const ImageLimits& limits = {});

// Same, from bytes in memory (e.g. an HTTP upload). `what` names it in errors.
Result<cv::Mat> decode_image(const std::string& bytes, const std::string& what, const ImageLimits& limits = {});

// Converts any 1/3/4-channel, 8/16-bit or float Mat to 8-bit BGR.
cv::Mat to_bgr8(const cv::Mat& image);

}  // namespace facerec
