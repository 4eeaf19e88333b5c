#include "rotation.h"

#include <cmath>
#include <cstdarg>
#include <cstring>
#include <mutex>

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/display.h>
}
#include <opencv2/core.hpp>

namespace facerec::video {

namespace {
thread_local long t_premature_ends = 0;

void log_callback(void* ptr, int level, const char* fmt, va_list args) {
  // The format string, not the formatted text: libavformat/http.c,
  // "Stream ends prematurely at %"PRIu64", should be %"PRIu64"\n".
  if (level <= AV_LOG_ERROR && fmt && std::strstr(fmt, "ends prematurely")) ++t_premature_ends;
  av_log_default_callback(ptr, level, fmt, args);
}
}  // namespace

void watch_premature_ends() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(log_callback); });
}

long premature_ends_on_this_thread() { return t_premature_ends; }

int stream_rotation_cw(const AVStream* stream) {
  if (!stream) return 0;
  size_t size = 0;
  const uint8_t* m = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (!m || size < 9 * sizeof(int32_t)) return 0;
  // av_display_rotation_get: counter-clockwise degrees. ffmpeg's autorotate
  // turns the frame by its negation (fftools get_rotation).
  const double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(m));
  if (!std::isfinite(ccw)) return 0;
  const int deg = static_cast<int>(std::lround(-ccw / 90.0)) * 90;
  return ((deg % 360) + 360) % 360;
}

int display_rotation_cw(const std::string& path) {
  AVFormatContext* fmt = nullptr;
  if (avformat_open_input(&fmt, path.c_str(), nullptr, nullptr) != 0) return 0;
  const int s = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  const int cw = s >= 0 ? stream_rotation_cw(fmt->streams[s]) : 0;
  avformat_close_input(&fmt);
  return cw;
}

cv::Mat rotate_cw(const cv::Mat& frame, int degrees) {
  cv::Mat out;
  switch (degrees) {
    case 90: cv::rotate(frame, out, cv::ROTATE_90_CLOCKWISE); return out;
    case 180: cv::rotate(frame, out, cv::ROTATE_180); return out;
    case 270: cv::rotate(frame, out, cv::ROTATE_90_COUNTERCLOCKWISE); return out;
    default: return frame;
  }
}

}  // namespace facerec::video
