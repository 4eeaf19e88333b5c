// Image header sniffing and the full load: any bytes give a Status or an
// image, never a crash, a hang or a huge allocation.
#include <cstdint>
#include <string>

#include "facerec/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto header = facerec::read_image_header(bytes);
  if (header.ok() && header->width < 0) __builtin_trap();
  facerec::ImageLimits limits;
  limits.max_pixels = 4'000'000;  // keeps each run fast; the checks are the same
  auto img = facerec::decode_image(bytes, "fuzz", limits);
  if (img.ok() && (img->empty() || img->type() != CV_8UC3 || int64_t(img->cols) * img->rows > limits.max_pixels))
    __builtin_trap();
  return 0;
}
