// Decoders facerec drives itself, where OpenCV's would hide a fault or has
// none: JPEG (libjpeg-turbo, with corrupt-data warnings made errors so missing
// data is never filled with grey), GIF (giflib) and HEIF/AVIF (libheif).
// Each returns 8-bit BGR (JPEG: 1-channel for greyscale) and never throws.
#pragma once

#include <string>
#include <string_view>

#include <opencv2/core/mat.hpp>

#include "facerec/image.h"

namespace facerec::io {

// The header has been read and its size checked against the limits.
Result<cv::Mat> decode_jpeg(const std::string& bytes);
Result<cv::Mat> decode_gif(const std::string& bytes, const ImageLimits& limits);
// Reads the primary image's size first and refuses it over limits.max_pixels
// before decoding; applies HEIF's own rotation/mirror transforms.
Result<cv::Mat> decode_heif(const std::string& bytes, ImageFormat format, const ImageLimits& limits);

// The HEIF item graph, checked before libheif sees the file. libheif 1.15
// decodes a derived image ('dimg': grid, iden, iovl) by decoding each input
// and an image's alpha/depth ('auxl') with it, recursively, each grid's tiles
// on std::async threads. A 'dimg' that names itself or a cycle recurses until
// the stack or the thread limit gives out (std::terminate: found by
// fuzz_image), and nested grids multiply the work. Refused here, kDecode:
//  - a cycle among 'dimg'/'auxl' references (a file that follows ISO/IEC
//    23008-12 never has one),
//  - derivations nested deeper than kMaxHeifDerivationDepth,
//  - more than kMaxHeifDecodes item decodes for the primary image (a grid
//    lists a tile once per cell; 65536 cells of 256x256 are 4.3 Gpixel).
// A malformed 'iref' or 'pitm' box is refused too. Files without one pass.
inline constexpr int kMaxHeifDerivationDepth = 4;
inline constexpr int64_t kMaxHeifDecodes = 65536;
Status check_heif_item_graph(std::string_view bytes, ImageFormat format);

// The one "too many pixels" message, so every format says the same.
Status too_many_pixels(int64_t width, int64_t height, const ImageLimits& limits);

}  // namespace facerec::io
