#include "facerec/image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "decoders.h"

namespace facerec {

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

cv::Mat apply_orientation(const cv::Mat& image, int orientation) {
  // EXIF 2.3, tag 0x0112: how the stored rows/columns map onto the upright view.
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(image, out, 1); return out;
    case 3: cv::flip(image, out, -1); return out;
    case 4: cv::flip(image, out, 0); return out;
    case 5: cv::transpose(image, out); return out;
    case 6: cv::rotate(image, out, cv::ROTATE_90_CLOCKWISE); return out;
    case 7: cv::transpose(image, out); cv::flip(out, out, -1); return out;
    case 8: cv::rotate(image, out, cv::ROTATE_90_COUNTERCLOCKWISE); return out;
    default: return image;
  }
}

Result<cv::Mat> decode_image(const std::string& bytes, const std::string& what, const ImageLimits& limits) {
  auto fail = [&](const Status& s) { return Status(s.code(), what + ": " + s.message()); };
  if (bytes.empty()) return Status(ErrorCode::kDecode, what + ": empty file (0 bytes), not an image");
  if (static_cast<int64_t>(bytes.size()) > limits.max_file_bytes)
    return Status(ErrorCode::kTooLarge, what + ": file of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                                            std::to_string(limits.max_file_bytes));
  auto header = read_image_header(bytes);
  if (!header.ok()) return fail(header.status());
  const ImageFormat format = header->format;
  const char* name = format_name(format);
  if (format == ImageFormat::kUnknown)
    return Status(ErrorCode::kDecode, what + ": not an image, or a format not supported (facerec reads " +
                                          supported_image_formats() + ")");
  if (!is_supported(format))
    return Status(ErrorCode::kDecode, what + ": " + name + ": format not supported (facerec reads " +
                                          supported_image_formats() + ")");
  const bool heif = format == ImageFormat::kHeif || format == ImageFormat::kAvif;  // size read by libheif
  if (!heif) {
    if (header->width <= 0 || header->height <= 0) {
      if (header->truncated) return Status(ErrorCode::kDecode, what + ": truncated " + name + " file");
      return Status(ErrorCode::kDecode, what + ": corrupt " + name + " header (no image size)");
    }
    // Never decode first and check afterwards.
    // Division, not multiplication: 32-bit sizes from a header can overflow
    // the product (found by fuzz_image).
    if (header->width > limits.max_pixels / header->height)
      return fail(io::too_many_pixels(header->width, header->height, limits));
  }
  if (header->truncated) return Status(ErrorCode::kDecode, what + ": truncated " + name + " file (the image data ends early)");

  Result<cv::Mat> decoded = Status(ErrorCode::kInternal, "not decoded");
  try {
    if (format == ImageFormat::kJpeg) {
      decoded = io::decode_jpeg(bytes);
    } else if (format == ImageFormat::kGif) {
      decoded = io::decode_gif(bytes, limits);
    } else if (heif) {
      decoded = io::decode_heif(bytes, format, limits);
    } else {
      cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
      // IMREAD_UNCHANGED keeps depth and alpha for to_bgr8() and never
      // applies an orientation itself: that is done below, the same for all.
      cv::Mat m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
      if (m.empty()) decoded = Status(ErrorCode::kDecode, std::string("corrupt ") + name + " image (the decoder refused it)");
      else decoded = std::move(m);
    }
  } catch (const cv::Exception&) {
    // OpenCV's own text is an assertion ("(-215:Assertion failed) ..."): not
    // something a user can act on.
    decoded = Status(ErrorCode::kDecode, std::string("corrupt ") + name + " image (the decoder refused it)");
  } catch (const std::bad_alloc&) {
    decoded = Status(ErrorCode::kTooLarge, "out of memory decoding the image");
  } catch (const std::exception& e) {
    // libheif is C++ inside: a failed std::async (no threads left) surfaces
    // as an exception through its C API.
    decoded = Status(ErrorCode::kDecode, std::string("corrupt ") + name + " image (" + e.what() + ")");
  }
  if (!decoded.ok()) return fail(decoded.status());
  cv::Mat img = std::move(decoded).value();
  if (static_cast<int64_t>(img.cols) * img.rows > limits.max_pixels) return fail(io::too_many_pixels(img.cols, img.rows, limits));
  // OpenCV's TIFF reader turns the image upright itself (libtiff's RGBA
  // path honours the Orientation tag); every other format is turned here.
  const bool upright_already = format == ImageFormat::kTiff;
  const bool swapped = img.cols == header->height && img.rows == header->width;
  if (!heif && format != ImageFormat::kGif && (img.cols != header->width || img.rows != header->height) &&
      !(upright_already && swapped))
    return Status(ErrorCode::kDecode, what + ": corrupt " + name + " image (decoded " + std::to_string(img.cols) + "x" +
                                          std::to_string(img.rows) + ", the header says " +
                                          std::to_string(header->width) + "x" + std::to_string(header->height) + ")");
  return upright_already ? to_bgr8(img) : apply_orientation(to_bgr8(img), header->orientation);
}

namespace {
const char* file_type(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

Result<cv::Mat> load_image(const std::string& path, const ImageLimits& limits) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    struct stat lst {};
    if (err == ENOENT && ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
      return Status(ErrorCode::kNotFound, path + ": broken symbolic link (its target does not exist)");
    return Status(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode))
    return Status(ErrorCode::kInvalidArgument, path + ": is " + file_type(st.st_mode) + ", not an image file");
  if (st.st_size > limits.max_file_bytes)
    return Status(ErrorCode::kTooLarge, path + ": file of " + std::to_string(st.st_size) + " bytes exceeds the limit of " +
                                            std::to_string(limits.max_file_bytes));
  // Non-blocking, then checked again on the open file: a path swapped for a
  // FIFO after the stat() can still never block us.
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (f.fd < 0) {
    const int err = errno;
    return Status(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                  path + ": cannot open for reading: " + std::strerror(err));
  }
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return Status(ErrorCode::kInvalidArgument, path + ": is " + file_type(st.st_mode) + ", not an image file");
  if (st.st_size > limits.max_file_bytes)
    return Status(ErrorCode::kTooLarge, path + ": file of " + std::to_string(st.st_size) + " bytes exceeds the limit of " +
                                            std::to_string(limits.max_file_bytes));
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r = ::read(f.fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status(ErrorCode::kIo, path + ": read error: " + std::strerror(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  bytes.resize(got);  // a file that shrank while read is judged on what it holds
  return decode_image(bytes, path, limits);
}

}  // namespace facerec
