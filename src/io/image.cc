#include "facerec/image.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace facerec {
namespace {

struct HeaderInfo {
  int64_t width = 0, height = 0;
  bool truncated = false;
  bool jpeg = false;
};

uint32_t be16(const unsigned char* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t be32(const unsigned char* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint32_t le32(const unsigned char* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }

// Reads the dimensions of the common formats from their headers so that a
// decompression bomb is refused before any pixel is allocated, and spots the
// truncation that libjpeg/libpng would otherwise paper over with grey rows.
// Returns nullopt for formats it does not parse (OpenCV then decides).
std::optional<HeaderInfo> sniff(const std::string& b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  const size_t n = b.size();
  if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {  // JPEG: walk markers to the SOF
    HeaderInfo h;
    h.jpeg = true;
    size_t i = 2;
    while (i + 9 < n) {
      if (p[i] != 0xFF) { ++i; continue; }
      unsigned m = p[i + 1];
      if (m == 0xFF) { ++i; continue; }
      if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
      uint32_t len = be16(p + i + 2);
      bool sof = (m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof) {
        h.height = be16(p + i + 5);
        h.width = be16(p + i + 7);
        break;
      }
      if (m == 0xDA) break;  // start of scan before any SOF: corrupt
      i += 2 + len;
    }
    // A complete JPEG ends with EOI (FFD9), possibly followed by padding.
    size_t end = n;
    while (end > 2 && (p[end - 1] == 0x00 || p[end - 1] == 0x0A || p[end - 1] == 0x0D || p[end - 1] == 0x20)) --end;
    h.truncated = !(end >= 2 && p[end - 2] == 0xFF && p[end - 1] == 0xD9);
    if (h.truncated) {
      // Some encoders append data after EOI (thumbnails, metadata). Accept an EOI in the last 64 KiB.
      const size_t from = n > 65536 ? n - 65536 : 0;
      for (size_t k = n - 1; k > from; --k)
        if (p[k - 1] == 0xFF && p[k] == 0xD9) { h.truncated = false; break; }
    }
    return h;
  }
  if (n >= 24 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
    HeaderInfo h;
    h.width = be32(p + 16);
    h.height = be32(p + 20);
    h.truncated = b.find("IEND", n > 64 ? n - 64 : 0) == std::string::npos;
    return h;
  }
  if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
    HeaderInfo h;
    h.width = static_cast<int32_t>(le32(p + 18));
    int32_t hh = static_cast<int32_t>(le32(p + 22));
    h.height = hh < 0 ? -int64_t(hh) : hh;
    h.truncated = le32(p + 2) > n;
    return h;
  }
  if (n >= 10 && std::memcmp(p, "GIF8", 4) == 0) {
    HeaderInfo h;
    h.width = p[6] | (p[7] << 8);
    h.height = p[8] | (p[9] << 8);
    return h;
  }
  return std::nullopt;
}

}  // namespace

cv::Mat to_bgr8(const cv::Mat& image) {
  cv::Mat img = image;
  if (img.depth() != CV_8U) {
    double scale = 1.0;
    if (img.depth() == CV_16U) scale = 1.0 / 257.0;
    else if (img.depth() == CV_16S) scale = 1.0 / 128.0;
    else if (img.depth() == CV_32F || img.depth() == CV_64F) scale = 255.0;
    img.convertTo(img, CV_8U, scale);
  }
  cv::Mat out;
  switch (img.channels()) {
    case 1: cv::cvtColor(img, out, cv::COLOR_GRAY2BGR); break;
    case 4: cv::cvtColor(img, out, cv::COLOR_BGRA2BGR); break;
    case 3: out = img; break;
    default: {
      std::vector<cv::Mat> ch;
      cv::split(img, ch);
      ch.resize(3, ch.empty() ? cv::Mat() : ch[0]);
      cv::merge(ch, out);
    }
  }
  return out;
}

Result<cv::Mat> decode_image(const std::string& bytes, const std::string& what, const ImageLimits& limits) {
  if (bytes.empty()) return Status(ErrorCode::kDecode, what + ": empty file (0 bytes), not an image");
  if (static_cast<int64_t>(bytes.size()) > limits.max_file_bytes)
    return Status(ErrorCode::kTooLarge, what + ": file of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                                            std::to_string(limits.max_file_bytes));
  auto header = sniff(bytes);
  if (header) {
    if (header->width <= 0 || header->height <= 0)
      return Status(ErrorCode::kDecode, what + ": corrupt image header");
    if (header->width * header->height > limits.max_pixels)
      return Status(ErrorCode::kTooLarge, what + ": " + std::to_string(header->width) + "x" + std::to_string(header->height) +
                                              " pixels exceeds the limit of " + std::to_string(limits.max_pixels) +
                                              " (raise it with --max-pixels)");
    if (header->truncated) return Status(ErrorCode::kDecode, what + ": truncated image file");
  }
  cv::Mat decoded;
  try {
    cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    // JPEGs are always 8-bit: decode to BGR honouring EXIF orientation, as a
    // photo viewer would. Everything else keeps depth and alpha for to_bgr8().
    decoded = cv::imdecode(buf, header && header->jpeg ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kDecode, what + ": cannot decode image: " + e.what());
  }
  if (decoded.empty()) return Status(ErrorCode::kDecode, what + ": not an image, or a corrupt one");
  if (static_cast<int64_t>(decoded.cols) * decoded.rows > limits.max_pixels)
    return Status(ErrorCode::kTooLarge, what + ": image exceeds the pixel limit");
  return to_bgr8(decoded);
}

Result<cv::Mat> load_image(const std::string& path, const ImageLimits& limits) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return Status(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, path + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return Status(ErrorCode::kInvalidArgument, path + ": is a directory, not an image");
  if (st.st_size > limits.max_file_bytes)
    return Status(ErrorCode::kTooLarge, path + ": file of " + std::to_string(st.st_size) + " bytes exceeds the limit");
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot open for reading (permissions?)");
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  f.read(bytes.data(), st.st_size);
  if (f.gcount() != st.st_size) return Status(ErrorCode::kIo, path + ": read error");
  return decode_image(bytes, path, limits);
}

}  // namespace facerec
