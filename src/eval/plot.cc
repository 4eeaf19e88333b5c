// write_plot(): small line charts as PNG, drawn with OpenCV so that the eval
// commands need no plotting library.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "facerec/eval.h"

namespace facerec::eval {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kBlack(0, 0, 0), kGrid(225, 225, 225), kWhite(255, 255, 255);

// Ticks at 1, 2 or 5 times a power of ten, about 5..10 of them.
std::vector<double> linear_ticks(double lo, double hi, bool integer) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  double step = std::pow(10.0, std::floor(std::log10(span / 5)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (span / (step * m) <= 10) { step *= m; break; }
  if (integer) step = std::max(1.0, std::round(step));
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string tick_label(double v, bool log, bool integer) {
  char buf[32];
  if (log) {
    const int e = static_cast<int>(std::lround(std::log10(v)));
    if (e == 0) return "1";
    std::snprintf(buf, sizeof buf, "1e%d", e);
  }
  else if (integer) std::snprintf(buf, sizeof buf, "%d", static_cast<int>(std::lround(v)));
  else std::snprintf(buf, sizeof buf, "%g", std::round(v * 1e6) / 1e6);
  return buf;
}

void centred_text(cv::Mat& img, const std::string& s, cv::Point centre, double scale, int thick = 1) {
  int base = 0;
  const cv::Size ts = cv::getTextSize(s, kFont, scale, thick, &base);
  cv::putText(img, s, centre + cv::Point(-ts.width / 2, ts.height / 2), kFont, scale, kBlack, thick, cv::LINE_AA);
}

}  // namespace

cv::Scalar plot_colour(int i) {
  // Tableau-like hues, as BGR.
  static const cv::Scalar kColours[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214},
                                        {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {127, 127, 127}};
  return kColours[static_cast<size_t>(i) % (sizeof kColours / sizeof kColours[0])];
}

Status write_plot(const PlotSpec& spec, const std::string& path) {
  if (spec.width < 200 || spec.height < 150) return Status(ErrorCode::kInvalidArgument, "plot size under 200x150");
  if (!(spec.x_max > spec.x_min) || !(spec.y_max > spec.y_min) || (spec.log_x && !(spec.x_min > 0)))
    return Status(ErrorCode::kInvalidArgument, "plot axis range is empty (or not positive on a log axis)");
  cv::Mat img(spec.height, spec.width, CV_8UC3, kWhite);
  const cv::Rect area(80, 48, spec.width - 80 - 28, spec.height - 48 - 66);  // the plotting area, pixels

  const double lx0 = spec.log_x ? std::log10(spec.x_min) : spec.x_min;
  const double lx1 = spec.log_x ? std::log10(spec.x_max) : spec.x_max;
  // Data to pixel coordinates inside the area (origin at its top-left).
  const auto px = [&](double x) {
    double v = spec.log_x ? std::log10(std::max(x, spec.x_min)) : x;
    return (v - lx0) / (lx1 - lx0) * area.width;
  };
  const auto py = [&](double y) { return (1.0 - (y - spec.y_min) / (spec.y_max - spec.y_min)) * area.height; };

  // Grid and tick labels.
  std::vector<double> xt;
  if (spec.log_x) {
    for (int e = static_cast<int>(std::ceil(lx0 - 1e-9)); e <= static_cast<int>(std::floor(lx1 + 1e-9)); ++e)
      xt.push_back(std::pow(10.0, e));
  } else {
    xt = linear_ticks(spec.x_min, spec.x_max, spec.integer_x);
  }
  for (double x : xt) {
    const int X = area.x + static_cast<int>(std::lround(px(x)));
    cv::line(img, {X, area.y}, {X, area.br().y}, kGrid, 1);
    cv::line(img, {X, area.br().y}, {X, area.br().y + 5}, kBlack, 1);
    centred_text(img, tick_label(x, spec.log_x, spec.integer_x), {X, area.br().y + 16}, 0.42);
  }
  for (double y : linear_ticks(spec.y_min, spec.y_max, false)) {
    const int Y = area.y + static_cast<int>(std::lround(py(y)));
    cv::line(img, {area.x, Y}, {area.br().x, Y}, kGrid, 1);
    cv::line(img, {area.x - 5, Y}, {area.x, Y}, kBlack, 1);
    const std::string s = tick_label(y, false, false);
    int base = 0;
    const cv::Size ts = cv::getTextSize(s, kFont, 0.42, 1, &base);
    cv::putText(img, s, {area.x - 9 - ts.width, Y + ts.height / 2}, kFont, 0.42, kBlack, 1, cv::LINE_AA);
  }

  // The series, drawn into the area's own view so OpenCV clips them to it.
  cv::Mat inner = img(area);
  for (const auto& s : spec.series) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      // Sub-pixel precision (3 bits) keeps dense curves smooth.
      pts.emplace_back(static_cast<int>(std::lround(px(s.x[i]) * 8)), static_cast<int>(std::lround(py(s.y[i]) * 8)));
    }
    if (pts.size() == 1) cv::circle(inner, pts[0], 4 * 8, s.colour, cv::FILLED, cv::LINE_AA, 3);
    if (pts.size() > 1) cv::polylines(inner, pts, false, s.colour, 2, cv::LINE_AA, 3);
    if (spec.integer_x)
      for (const auto& p : pts) cv::circle(inner, p, 3 * 8, s.colour, cv::FILLED, cv::LINE_AA, 3);
  }
  cv::rectangle(img, area, kBlack, 1);

  // Title and axis labels; the y label is drawn flat and rotated.
  centred_text(img, spec.title, {spec.width / 2, 24}, 0.62, 1);
  centred_text(img, spec.x_label, {area.x + area.width / 2, spec.height - 22}, 0.5);
  {
    int base = 0;
    const cv::Size ts = cv::getTextSize(spec.y_label, kFont, 0.5, 1, &base);
    cv::Mat flat(ts.height + base + 4, ts.width + 4, CV_8UC3, kWhite), up;
    cv::putText(flat, spec.y_label, {2, ts.height + 2}, kFont, 0.5, kBlack, 1, cv::LINE_AA);
    cv::rotate(flat, up, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int top = std::max(0, area.y + area.height / 2 - up.rows / 2);
    if (up.rows <= img.rows - top && up.cols < area.x) up.copyTo(img(cv::Rect(12, top, up.cols, up.rows)));
  }

  // Legend in the corner of the area that the curves cross least.
  if (!spec.series.empty()) {
    const double scale = 0.45;
    int w = 0, line_h = 0, base = 0;
    for (const auto& s : spec.series) {
      const cv::Size ts = cv::getTextSize(s.label, kFont, scale, 1, &base);
      w = std::max(w, ts.width);
      line_h = std::max(line_h, ts.height + base + 6);
    }
    const cv::Size box(w + 46, line_h * static_cast<int>(spec.series.size()) + 10);
    const cv::Point corners[4] = {{area.br().x - box.width - 10, area.br().y - box.height - 10},
                                  {area.x + 10, area.br().y - box.height - 10},
                                  {area.br().x - box.width - 10, area.y + 10},
                                  {area.x + 10, area.y + 10}};
    int best = 0;
    long fewest = -1;
    for (int c = 0; c < 4; ++c) {
      const cv::Rect r(corners[c], box);
      long n = 0;
      for (const auto& s : spec.series)
        for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
          if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
          n += r.contains(cv::Point(area.x + static_cast<int>(px(s.x[i])), area.y + static_cast<int>(py(s.y[i]))));
        }
      if (fewest < 0 || n < fewest) { fewest = n; best = c; }
    }
    const cv::Rect r(corners[best], box);
    cv::rectangle(img, r, kWhite, cv::FILLED);
    cv::rectangle(img, r, cv::Scalar(160, 160, 160), 1);
    for (size_t i = 0; i < spec.series.size(); ++i) {
      const int y = r.y + 5 + line_h * static_cast<int>(i) + line_h / 2;
      cv::line(img, {r.x + 8, y}, {r.x + 34, y}, spec.series[i].colour, 2, cv::LINE_AA);
      const cv::Size ts = cv::getTextSize(spec.series[i].label, kFont, scale, 1, &base);
      cv::putText(img, spec.series[i].label, {r.x + 40, y + ts.height / 2}, kFont, scale, kBlack, 1, cv::LINE_AA);
    }
  }

  try {
    if (!cv::imwrite(path, img)) return Status(ErrorCode::kIo, "cannot write plot " + path);
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kIo, "cannot write plot " + path + ": " + e.what());
  }
  return Status::Ok();
}

}  // namespace facerec::eval
