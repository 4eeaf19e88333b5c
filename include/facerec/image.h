// Safe image loading: every way a file can be bad becomes a clear Status.
//
// Supported formats (chosen, not whatever a decoder happens to accept):
//   JPEG (libjpeg-turbo), PNG, BMP, TIFF (incl. BigTIFF), WebP, PBM/PGM/PPM/PAM
//   (OpenCV), GIF (giflib: the first frame), HEIC/HEIF and AVIF (libheif).
// Each one's width and height are read from its header before any pixel is
// decoded, so a decompression bomb costs nothing. Anything else (JPEG 2000,
// OpenEXR, Radiance HDR, PFM, Sun raster, PSD, text, ...) is refused as
// "format not supported", by name.
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

enum class ImageFormat {
  kUnknown,
  // Read:
  kJpeg, kPng, kBmp, kTiff, kWebp, kPnm, kGif, kHeif, kAvif,
  // Recognised, and refused as not supported:
  kJpeg2000, kOpenExr, kRadianceHdr, kPfm, kSunRaster, kPsd,
};
const char* format_name(ImageFormat f);
bool is_supported(ImageFormat f);
// "JPEG, PNG, ..." for messages and the README.
std::string supported_image_formats();

// What the header says, without decoding pixels.
struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int64_t width = 0, height = 0;  // stored (pre-orientation) size in pixels; 0 when unknown
  // The file ends before the main image does (JPEG: no EOI after the main
  // image's last scan, whatever an embedded EXIF thumbnail holds; PNG: no
  // IEND; BMP/PNM/WebP: fewer bytes than the header promises).
  bool truncated = false;
  // EXIF Orientation 1..8 (1 = as stored), from JPEG APP1, PNG eXIf (or
  // ImageMagick's "Raw profile type exif" text chunk), WebP EXIF, TIFF IFD0.
  // HEIF's irot/imir transforms are applied by libheif and not reported here.
  int orientation = 1;
};

// Parses the header of a file held in memory. Never decodes pixels and never
// allocates more than a few bytes per header field. A format it cannot
// recognise gives format kUnknown, not an error; a recognised header that is
// inconsistent (zero size, chunk lengths past the end) gives kDecode.
Result<ImageHeader> read_image_header(const std::string& bytes);

// Reads an image file and returns it as 8-bit 3-channel BGR, upright (EXIF
// orientation applied for every format that carries it).
// - missing / unreadable file: kNotFound / kIo
// - a directory, FIFO, socket or device: kInvalidArgument naming its type, at
//   once (the file is opened non-blocking and never read)
// - 0-byte, not an image, a format not supported, truncated, corrupt, or a
//   decoder that would fill missing data with grey: kDecode
// - more pixels than limits.max_pixels (read from the header, before
//   decoding), or a file over limits.max_file_bytes: kTooLarge
// Greyscale, alpha, CMYK and 16-bit images are converted, not rejected.
// Thread-safe (no shared state).
Result<cv::Mat> load_image(const std::string& path, const ImageLimits& limits = {});

// Same, from bytes in memory (e.g. an HTTP upload). `what` names it in errors.
Result<cv::Mat> decode_image(const std::string& bytes, const std::string& what, const ImageLimits& limits = {});

// Converts any 1/3/4-channel, 8/16-bit or float Mat to 8-bit BGR.
cv::Mat to_bgr8(const cv::Mat& image);

// Turns an image stored with EXIF orientation 1..8 upright (other values:
// returned unchanged).
cv::Mat apply_orientation(const cv::Mat& image, int orientation);

}  // namespace facerec
