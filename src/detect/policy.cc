// Detection policies around any Detector: aspect ratio (letterbox or tiles),
// a padded retry for faces that fill the frame, and small-face tiles.
// See include/facerec/detect_policy.h for what each one is for.
#include "facerec/detect_policy.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <opencv2/imgproc.hpp>

namespace facerec {

namespace {

// How close to a window's edge (pixels) a box must come to count as cut by
// it: the detector clips boxes to its input, so a cut face ends on the edge;
// a little slack covers the regression noise of the box.
float edge_margin(cv::Size window) { return 1.f + 0.01f * static_cast<float>(std::min(window.width, window.height)); }

// Faces of a window at `r` (in the image) back in image coordinates, dropping
// those cut by an edge of the window that is not an edge of the image (their
// whole face lies in a neighbouring window or in the full view).
void keep_uncut(std::vector<Face>& faces, const cv::Rect& r, cv::Size image, std::vector<Face>& out) {
  const float m = edge_margin(r.size());
  const float x1 = static_cast<float>(r.x), y1 = static_cast<float>(r.y);
  const float x2 = static_cast<float>(r.x + r.width), y2 = static_cast<float>(r.y + r.height);
  for (Face f : faces) {
    f.box.x += x1;
    f.box.y += y1;
    for (auto& p : f.landmarks) p += cv::Point2f(x1, y1);
    const cv::Rect2f& b = f.box;
    const bool cut = (r.x > 0 && b.x <= x1 + m) || (r.y > 0 && b.y <= y1 + m) ||
                     (r.x + r.width < image.width && b.x + b.width >= x2 - m) ||
                     (r.y + r.height < image.height && b.y + b.height >= y2 - m);
    if (!cut) out.push_back(f);
  }
}

// One detector run on img that respects the aspect policy. Faces in img's
// coordinates, unclipped.
Result<std::vector<Face>> run_fitted(const Detector& det, const cv::Mat& img, const DetectPolicyOptions& opt,
                                     const DetectOptions& dopt) {
  const cv::Size net = planned_input_size(det);
  const bool stretches = det.spec().input.resize == ResizeMode::kStretch;
  if (!stretches || opt.aspect == AspectPolicy::kStretch || stretch_of(img.size(), net) <= opt.max_stretch * 1.0001f)
    return det.detect(img, dopt);
  if (opt.aspect == AspectPolicy::kLetterbox) {
    cv::Mat padded;
    pad_to_aspect(img, net, padded);
    return det.detect(padded, dopt);  // the photo sits at the origin, unscaled: no mapping
  }
  // kTile: windows of the input's aspect ratio along the long axis.
  const double n = static_cast<double>(net.width) / net.height;
  const bool wide = static_cast<double>(img.cols) / img.rows > n;
  const cv::Size tile = wide ? cv::Size(std::max(1, static_cast<int>(std::lround(img.rows * n))), img.rows)
                             : cv::Size(img.cols, std::max(1, static_cast<int>(std::lround(img.cols / n))));
  std::vector<Face> all;
  for (const cv::Rect& r : tile_grid(img.size(), tile, 0.5f)) {
    FACEREC_ASSIGN_OR_RETURN(auto faces, det.detect(img(r), dopt));
    keep_uncut(faces, r, img.size(), all);
  }
  return all;
}

Status check(const DetectPolicyOptions& o) {
  auto bad = [](const std::string& what) { return Status(ErrorCode::kInvalidArgument, "detect policy: " + what); };
  if (!(o.max_stretch >= 1.f && o.max_stretch <= 100.f)) return bad("max-stretch must be within 1..100");
  if (!(o.retry_trigger_score >= 0.f && o.retry_trigger_score <= 1.f)) return bad("retry-score must be within 0..1");
  if (!(o.retry_min_fill >= 0.f && o.retry_min_fill <= 1.f)) return bad("retry-min-fill must be within 0..1");
  if (!(o.retry_pad > 0.f && o.retry_pad <= 4.f)) return bad("retry-pad must be within (0, 4]");
  if (o.retry_max_side < 0 || o.retry_max_side > 16384) return bad("retry max side must be within 0..16384");
  if (!(o.tile_min_scale >= 0.f && o.tile_min_scale <= 8.f)) return bad("tile-scale must be within 0..8");
  if (!(o.tile_overlap >= 0.f && o.tile_overlap < 0.9f)) return bad("tile-overlap must be within [0, 0.9)");
  if (o.max_tiles < 1 || o.max_tiles > 256) return bad("max-tiles must be within 1..256");
  return Status::Ok();
}

}  // namespace

DetectPolicyOptions no_detect_policy() {
  DetectPolicyOptions o;
  o.aspect = AspectPolicy::kStretch;
  o.border_retry = false;
  o.tile_min_scale = 0.f;
  return o;
}

Result<DetectPolicyOptions> parse_detect_policy(const std::string& text) {
  if (text == "none") return no_detect_policy();
  DetectPolicyOptions o = default_detect_policy();
  if (text == "default" || text.empty()) return o;
  std::stringstream ss(text);
  std::string item;
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "detect policy '" + text + "': " + why +
                                                   " (expected none, default, or key=value,... with keys aspect, "
                                                   "max-stretch, retry, retry-pad, retry-min-fill, retry-score, "
                                                   "tile-scale, tile-overlap, max-tiles)");
  };
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) return bad("'" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    auto number = [&](double& out) {
      char* end = nullptr;
      out = std::strtod(val.c_str(), &end);
      return !val.empty() && end && *end == '\0' && std::isfinite(out);
    };
    double v = 0;
    if (key == "aspect") {
      if (val == "stretch") o.aspect = AspectPolicy::kStretch;
      else if (val == "letterbox") o.aspect = AspectPolicy::kLetterbox;
      else if (val == "tile") o.aspect = AspectPolicy::kTile;
      else return bad("aspect must be stretch, letterbox or tile");
    } else if (key == "retry") {
      if (val != "0" && val != "1") return bad("retry must be 0 or 1");
      o.border_retry = val == "1";
    } else if (!number(v)) {
      return bad("'" + key + "' needs a number, got '" + val + "'");
    } else if (key == "max-stretch") o.max_stretch = static_cast<float>(v);
    else if (key == "retry-pad") o.retry_pad = static_cast<float>(v);
    else if (key == "retry-min-fill") o.retry_min_fill = static_cast<float>(v);
    else if (key == "retry-score") o.retry_trigger_score = static_cast<float>(v);
    else if (key == "tile-scale") o.tile_min_scale = static_cast<float>(v);
    else if (key == "tile-overlap") o.tile_overlap = static_cast<float>(v);
    else if (key == "max-tiles") {
      if (v != std::floor(v) || v < 1 || v > 256) return bad("max-tiles must be a whole number within 1..256");
      o.max_tiles = static_cast<int>(v);
    } else return bad("unknown key '" + key + "'");
  }
  FACEREC_RETURN_IF_ERROR(check(o));
  return o;
}

cv::Size planned_input_size(const Detector& detector) {
  const InputSpec& in = detector.spec().input;
  const DetectorOptions& o = detector.options();
  const int w = in.width > 0 ? in.width : (o.input_width > 0 ? o.input_width : 640);
  const int h = in.height > 0 ? in.height : (o.input_height > 0 ? o.input_height : 640);
  return {w, h};
}

float stretch_of(cv::Size image, cv::Size input) {
  if (image.width <= 0 || image.height <= 0 || input.width <= 0 || input.height <= 0) return 1.f;
  const double a = static_cast<double>(image.width) / image.height;
  const double n = static_cast<double>(input.width) / input.height;
  return static_cast<float>(std::max(a / n, n / a));
}

Letterbox pad_to_aspect(const cv::Mat& bgr, cv::Size aspect, cv::Mat& out) {
  FACEREC_ASSERT(!bgr.empty() && aspect.width > 0 && aspect.height > 0);
  const double n = static_cast<double>(aspect.width) / aspect.height;
  int w = bgr.cols, h = bgr.rows;
  if (static_cast<double>(w) / h > n)
    h = std::max(h, static_cast<int>(std::lround(w / n)));
  else
    w = std::max(w, static_cast<int>(std::lround(h * n)));
  cv::copyMakeBorder(bgr, out, 0, h - bgr.rows, 0, w - bgr.cols, cv::BORDER_CONSTANT | cv::BORDER_ISOLATED, cv::Scalar::all(0));
  return Letterbox{};
}

Letterbox pad_and_scale(const cv::Mat& bgr, double scale, int pad_x, int pad_y, cv::Mat& out) {
  FACEREC_ASSERT(!bgr.empty() && scale > 0 && scale <= 1.0 && pad_x >= 0 && pad_y >= 0);
  cv::Mat small = bgr;
  Letterbox lb;
  if (scale < 1.0) {
    const int w = std::max(1, static_cast<int>(std::lround(bgr.cols * scale)));
    const int h = std::max(1, static_cast<int>(std::lround(bgr.rows * scale)));
    cv::resize(bgr, small, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    // The scale actually applied per axis, so that mapping back is exact.
    lb.scale_x = static_cast<float>(w) / static_cast<float>(bgr.cols);
    lb.scale_y = static_cast<float>(h) / static_cast<float>(bgr.rows);
  }
  cv::copyMakeBorder(small, out, pad_y, pad_y, pad_x, pad_x, cv::BORDER_CONSTANT | cv::BORDER_ISOLATED, cv::Scalar::all(0));
  lb.pad_x = static_cast<float>(pad_x);
  lb.pad_y = static_cast<float>(pad_y);
  return lb;
}

std::vector<cv::Rect> tile_grid(cv::Size image, cv::Size tile, float overlap) {
  std::vector<cv::Rect> out;
  if (image.width <= 0 || image.height <= 0 || tile.width <= 0 || tile.height <= 0) return out;
  auto starts = [&](int length, int t) {
    std::vector<int> s;
    t = std::min(t, length);
    if (t >= length) return std::vector<int>{0};
    // n windows, evenly spread from 0 to length - t, with steps of at most
    // t * (1 - overlap).
    const double max_step = std::max(1.0, t * (1.0 - static_cast<double>(overlap)));
    const int n = 1 + static_cast<int>(std::ceil((length - t) / max_step - 1e-9));
    for (int i = 0; i < n; ++i) s.push_back(static_cast<int>(std::lround(static_cast<double>(length - t) * i / (n - 1))));
    return s;
  };
  const int tw = std::min(tile.width, image.width), th = std::min(tile.height, image.height);
  for (int y : starts(image.height, th))
    for (int x : starts(image.width, tw)) out.emplace_back(x, y, tw, th);
  return out;
}

void unmap_faces(std::vector<Face>& faces, const Letterbox& view) {
  for (Face& f : faces) {
    f.box = view.to_image(f.box);
    for (auto& p : f.landmarks) p = view.to_image(p);
  }
}

void clip_faces(std::vector<Face>& faces, cv::Size image) {
  const float W = static_cast<float>(image.width), H = static_cast<float>(image.height);
  for (Face& f : faces) {
    const float x1 = std::clamp(f.box.x, 0.f, W), y1 = std::clamp(f.box.y, 0.f, H);
    const float x2 = std::clamp(f.box.x + f.box.width, 0.f, W), y2 = std::clamp(f.box.y + f.box.height, 0.f, H);
    f.box = cv::Rect2f(x1, y1, x2 - x1, y2 - y1);
  }
  faces.erase(std::remove_if(faces.begin(), faces.end(),
                             [](const Face& f) { return !(f.box.width > 0.f && f.box.height > 0.f); }),
              faces.end());
}

bool touches_edge(const cv::Rect2f& box, const cv::Rect2f& region, float margin) {
  return box.x <= region.x + margin || box.y <= region.y + margin ||
         box.x + box.width >= region.x + region.width - margin ||
         box.y + box.height >= region.y + region.height - margin;
}

Result<std::vector<Face>> detect_with_policy(const Detector& detector, const cv::Mat& image,
                                             const DetectPolicyOptions& opt) {
  return detect_with_policy(detector, image, opt, detector.options());
}

Result<std::vector<Face>> detect_with_policy(const Detector& detector, const cv::Mat& image,
                                             const DetectPolicyOptions& opt, const DetectOptions& dopt) {
  FACEREC_RETURN_IF_ERROR(validate_detect_options(dopt));
  FACEREC_RETURN_IF_ERROR(check(opt));
  // The detector validates the image; the policy needs 3 channels to pad.
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 3 && image.channels() != 1 && image.channels() != 4))
    return detector.detect(image, dopt);
  const bool no_policy = opt.aspect == AspectPolicy::kStretch && !opt.border_retry && opt.tile_min_scale <= 0.f;
  if (no_policy) return detector.detect(image, dopt);
  try {
    cv::Mat bgr = image;
    if (image.channels() == 1) cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
    if (image.channels() == 4) cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
    const cv::Size size = bgr.size();
    const cv::Size net = planned_input_size(detector);

    FACEREC_ASSIGN_OR_RETURN(auto full, run_fitted(detector, bgr, opt, dopt));
    std::vector<Face> all = std::move(full);

    // Small faces: the full view shrinks the photo below tile_min_scale.
    const double full_scale = std::min(static_cast<double>(net.width) / size.width,
                                       static_cast<double>(net.height) / size.height);
    if (opt.tile_min_scale > 0.f && full_scale < opt.tile_min_scale) {
      cv::Size tile(static_cast<int>(std::ceil(net.width / opt.tile_min_scale)),
                    static_cast<int>(std::ceil(net.height / opt.tile_min_scale)));
      std::vector<cv::Rect> grid = tile_grid(size, tile, opt.tile_overlap);
      while (static_cast<int>(grid.size()) > opt.max_tiles) {
        tile = cv::Size(static_cast<int>(std::ceil(tile.width * 1.25)), static_cast<int>(std::ceil(tile.height * 1.25)));
        grid = tile_grid(size, tile, opt.tile_overlap);
      }
      for (const cv::Rect& r : grid) {
        FACEREC_ASSIGN_OR_RETURN(auto faces, run_fitted(detector, bgr(r), opt, dopt));
        keep_uncut(faces, r, size, all);
      }
    }

    const float nms_iou = dopt.nms_threshold;
    auto finish = [&](std::vector<Face> faces) {
      clip_faces(faces, size);
      faces = nms(std::move(faces), nms_iou);
      const int cap = dopt.max_faces;
      if (cap > 0 && faces.size() > static_cast<size_t>(cap)) faces.resize(static_cast<size_t>(cap));
      return faces;
    };
    all = finish(std::move(all));

    if (opt.border_retry) {
      const cv::Rect2f frame(0.f, 0.f, static_cast<float>(size.width), static_cast<float>(size.height));
      const float short_side = static_cast<float>(std::min(size.width, size.height));
      const float margin = edge_margin(size);
      bool found = false, big_on_border = false;
      for (const Face& f : all) {
        if (!(f.score >= opt.retry_trigger_score)) continue;
        found = true;
        if (std::max(f.box.width, f.box.height) >= opt.retry_min_fill * short_side && touches_edge(f.box, frame, margin))
          big_on_border = true;
      }
      if (!found || big_on_border) {
        const double pw = opt.retry_pad * size.width, ph = opt.retry_pad * size.height;
        const int max_side = opt.retry_max_side > 0 ? opt.retry_max_side : 2 * std::max(net.width, net.height);
        const double padded_long = std::max(size.width + 2 * pw, size.height + 2 * ph);
        const double s = std::min(1.0, max_side / padded_long);
        cv::Mat padded;
        const Letterbox view = pad_and_scale(bgr, s, static_cast<int>(std::lround(pw * s)),
                                             static_cast<int>(std::lround(ph * s)), padded);
        FACEREC_ASSIGN_OR_RETURN(auto retry, run_fitted(detector, padded, opt, dopt));
        unmap_faces(retry, view);
        all.insert(all.end(), retry.begin(), retry.end());
        all = finish(std::move(all));
      }
    }
    return all;
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kInternal, std::string("detect policy: OpenCV error: ") + e.what());
  }
}

}  // namespace facerec
