// The detection policies' mapping maths, offline: a fake detector that "sees"
// white squares the way a real one sees faces (it loses squares that fill
// its input, that its stretch distorts, or that its input shrinks too far),
// so each policy's gain and its mapping back to the photo are checked exactly.
// The same faults on real photos and models: tests/detect_policy_test.cc.
#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "facerec/detect.h"
#include "facerec/detect_policy.h"

namespace facerec {
namespace {

// Finds white squares (value 255) in what its network input would show.
// A square is a face when, in network pixels, it is at least min_px on each
// side, its aspect ratio is within 0.75..1.33, and it does not touch the input's
// border. Landmarks are fixed fractions of the box, so their mapping can be
// checked.
class SquareDetector final : public Detector {
 public:
  SquareDetector(cv::Size input, ResizeMode mode, float min_px = 6.f) : min_px_(min_px) {
    spec_.id = "squares";
    spec_.input.width = input.width;
    spec_.input.height = input.height;
    spec_.input.resize = mode;
  }
  using Detector::detect;
  Result<std::vector<Face>> detect(const cv::Mat& bgr, const DetectOptions& opt) const override {
    if (bgr.empty()) return Status(ErrorCode::kInvalidArgument, "detect: empty image");
    ++calls;
    cv::Mat net, grey, mask;
    FACEREC_ASSIGN_OR_RETURN(const Letterbox lb,
                             fit_image(bgr, spec_.input.width, spec_.input.height, spec_.input.resize, 0.f, net));
    cv::cvtColor(net, grey, cv::COLOR_BGR2GRAY);
    cv::threshold(grey, mask, 200, 255, cv::THRESH_BINARY);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    std::vector<Face> faces;
    for (const auto& c : contours) {
      const cv::Rect r = cv::boundingRect(c);
      const float aspect = static_cast<float>(r.width) / static_cast<float>(r.height);
      if (r.width < min_px_ || r.height < min_px_ || aspect < 0.75f || aspect > 1.33f) continue;
      if (r.x <= 0 || r.y <= 0 || r.x + r.width >= net.cols || r.y + r.height >= net.rows) continue;
      Face f;
      f.box = cv::Rect2f(r);
      f.score = 0.9f;
      for (int k = 0; k < 5; ++k) f.landmarks[k] = {f.box.x + kFrac[k][0] * f.box.width, f.box.y + kFrac[k][1] * f.box.height};
      faces.push_back(f);
    }
    map_to_image(faces, lb, bgr.size());
    return nms(std::move(faces), opt.nms_threshold);
  }
  const ModelSpec& spec() const override { return spec_; }
  const DetectorOptions& options() const override { return options_; }

  static constexpr float kFrac[5][2] = {{0.3f, 0.4f}, {0.7f, 0.4f}, {0.5f, 0.6f}, {0.35f, 0.8f}, {0.65f, 0.8f}};
  mutable int calls = 0;

 private:
  ModelSpec spec_;
  DetectorOptions options_;
  float min_px_;
};

cv::Mat canvas(int w, int h) { return cv::Mat(h, w, CV_8UC3, cv::Scalar::all(0)); }
void square(cv::Mat& img, const cv::Rect& r) { img(r).setTo(cv::Scalar::all(255)); }

// The face whose box best overlaps `expected`, with its IoU.
float best_iou(const std::vector<Face>& faces, const cv::Rect2f& expected, const Face** which = nullptr) {
  float best = 0.f;
  for (const Face& f : faces) {
    const float v = iou(f.box, expected);
    if (v > best) { best = v; if (which) *which = &f; }
  }
  return best;
}

void expect_landmarks_of(const Face& f, const cv::Rect2f& box, float tol) {
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(f.landmarks[k].x, box.x + SquareDetector::kFrac[k][0] * box.width, tol) << k;
    EXPECT_NEAR(f.landmarks[k].y, box.y + SquareDetector::kFrac[k][1] * box.height, tol) << k;
  }
}

DetectPolicyOptions only(AspectPolicy aspect, bool retry, float tile_scale) {
  DetectPolicyOptions o = no_detect_policy();
  o.aspect = aspect;
  o.border_retry = retry;
  o.tile_min_scale = tile_scale;
  return o;
}

// ---- building blocks --------------------------------------------------------

TEST(DetectPolicyMaths, StretchOf) {
  EXPECT_FLOAT_EQ(stretch_of({640, 480}, {320, 240}), 1.f);
  EXPECT_NEAR(stretch_of({6000, 1200}, {320, 240}), 5.0 / (4.0 / 3.0), 1e-5);
  EXPECT_NEAR(stretch_of({480, 640}, {320, 240}), (4.0 / 3.0) / 0.75, 1e-5);
  EXPECT_FLOAT_EQ(stretch_of({0, 10}, {320, 240}), 1.f);
}

TEST(DetectPolicyMaths, TileGridCoversWithOverlap) {
  for (auto [image, tile, overlap] : {std::tuple{cv::Size(1024, 768), cv::Size(640, 480), 0.25f},
                                      std::tuple{cv::Size(6000, 1200), cv::Size(1600, 1200), 0.5f},
                                      std::tuple{cv::Size(1000, 3000), cv::Size(333, 250), 0.1f},
                                      std::tuple{cv::Size(641, 481), cv::Size(640, 480), 0.25f}}) {
    const auto grid = tile_grid(image, tile, overlap);
    ASSERT_FALSE(grid.empty());
    cv::Mat covered(image, CV_8U, cv::Scalar(0));
    for (const cv::Rect& r : grid) {
      EXPECT_EQ(r & cv::Rect(cv::Point(), image), r) << "inside the image";
      EXPECT_EQ(r.size(), cv::Size(std::min(tile.width, image.width), std::min(tile.height, image.height)));
      covered(r).setTo(1);
    }
    EXPECT_EQ(cv::countNonZero(covered), image.area()) << image << " " << tile;
    // Neighbours along x share at least overlap * tile.
    for (size_t i = 0; i + 1 < grid.size(); ++i)
      if (grid[i + 1].y == grid[i].y)
        EXPECT_GE(grid[i].x + grid[i].width - grid[i + 1].x, static_cast<int>(overlap * tile.width) - 1);
  }
  EXPECT_EQ(tile_grid({300, 200}, {640, 480}, 0.25f), std::vector<cv::Rect>{cv::Rect(0, 0, 300, 200)});
  EXPECT_TRUE(tile_grid({0, 200}, {640, 480}, 0.25f).empty());
}

TEST(DetectPolicyMaths, PadAndScaleMapsBack) {
  const cv::Mat img = canvas(400, 300);
  cv::Mat out;
  const Letterbox lb = pad_and_scale(img, 0.5, 100, 75, out);
  EXPECT_EQ(out.size(), cv::Size(200 + 200, 150 + 150));
  // A box in the photo, moved into the view by hand, comes back exactly.
  const cv::Rect2f box(40, 30, 120, 90);
  Face f;
  f.box = cv::Rect2f(box.x * 0.5f + 100, box.y * 0.5f + 75, box.width * 0.5f, box.height * 0.5f);
  f.landmarks[0] = {f.box.x, f.box.y};
  std::vector<Face> v{f};
  unmap_faces(v, lb);
  EXPECT_NEAR(v[0].box.x, box.x, 1e-3);
  EXPECT_NEAR(v[0].box.y, box.y, 1e-3);
  EXPECT_NEAR(v[0].box.width, box.width, 1e-3);
  EXPECT_NEAR(v[0].box.height, box.height, 1e-3);
  EXPECT_NEAR(v[0].landmarks[0].x, box.x, 1e-3);
  // A face reaching into the padding is clipped to the photo, or dropped
  // when nothing of it is left.
  std::vector<Face> c(2);
  c[0].box = cv::Rect2f(-50, -20, 100, 100);
  c[1].box = cv::Rect2f(-150, 10, 100, 100);
  clip_faces(c, img.size());
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].box, cv::Rect2f(0, 0, 50, 80));
}

TEST(DetectPolicyMaths, PadToAspect) {
  cv::Mat out;
  pad_to_aspect(canvas(6000, 1200), {320, 240}, out);
  EXPECT_EQ(out.size(), cv::Size(6000, 4500));
  pad_to_aspect(canvas(300, 800), {320, 240}, out);
  EXPECT_EQ(out.size(), cv::Size(1067, 800));
  // A tile (a view into a larger photo) is padded with black, not with its
  // neighbours' pixels.
  cv::Mat big(100, 100, CV_8UC3, cv::Scalar::all(255));
  pad_to_aspect(big(cv::Rect(0, 0, 40, 60)), {1, 1}, out);
  EXPECT_EQ(out.size(), cv::Size(60, 60));
  EXPECT_EQ(out.at<cv::Vec3b>(30, 50), cv::Vec3b(0, 0, 0));
}

TEST(DetectPolicyMaths, TouchesEdge) {
  const cv::Rect2f frame(0, 0, 100, 100);
  EXPECT_TRUE(touches_edge({0, 20, 30, 30}, frame, 1.f));
  EXPECT_TRUE(touches_edge({60, 20, 39.5f, 30}, frame, 1.f));
  EXPECT_FALSE(touches_edge({10, 10, 50, 50}, frame, 1.f));
}

TEST(DetectPolicyMaths, Parse) {
  auto none = parse_detect_policy("none");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->aspect, AspectPolicy::kStretch);
  EXPECT_FALSE(none->border_retry);
  auto p = parse_detect_policy("aspect=tile,retry=0,tile-scale=0.5,max-tiles=9,retry-pad=0.25");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->aspect, AspectPolicy::kTile);
  EXPECT_FALSE(p->border_retry);
  EXPECT_FLOAT_EQ(p->tile_min_scale, 0.5f);
  EXPECT_EQ(p->max_tiles, 9);
  EXPECT_FLOAT_EQ(p->retry_pad, 0.25f);
  for (const char* bad : {"aspect=squash", "retry=yes", "tile-scale=abc", "tile-scale=-1", "colour=1", "retry",
                          "max-tiles=2.5", "retry-pad=0", "tile-scale=nan"}) {
    auto r = parse_detect_policy(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  auto unknown = parse_detect_policy("colour=1");
  EXPECT_NE(unknown.status().message().find("unknown key 'colour'"), std::string::npos);
}

// ---- the policies on the fake detector ---------------------------------------

TEST(DetectPolicyFake, NoPolicyIsTheDetectorItself) {
  SquareDetector det({320, 240}, ResizeMode::kStretch);
  cv::Mat img = canvas(640, 480);
  square(img, {100, 100, 80, 80});
  auto a = det.detect(img);
  auto b = detect_with_policy(det, img, no_detect_policy());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), 1u);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*a)[0].box, (*b)[0].box);
}

TEST(DetectPolicyFake, FrameFillingFaceIsFoundByTheRetry) {
  for (ResizeMode mode : {ResizeMode::kLetterbox, ResizeMode::kStretch}) {
    SquareDetector det({640, 640}, mode);
    // The "face" fills the frame: the detector never sees its edges.
    cv::Mat img(300, 240, CV_8UC3, cv::Scalar::all(255));
    auto plain = detect_with_policy(det, img, no_detect_policy());
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(plain->empty());
    auto retried = detect_with_policy(det, img, only(AspectPolicy::kStretch, true, 0.f));
    ASSERT_TRUE(retried.ok());
    ASSERT_EQ(retried->size(), 1u);
    const cv::Rect2f whole(0, 0, 240, 300);
    EXPECT_GT(iou((*retried)[0].box, whole), 0.97f) << (*retried)[0].box;
    // Landmarks are mapped with the box (and may lie outside it, unclipped).
    expect_landmarks_of((*retried)[0], (*retried)[0].box, 3.f);
  }
}

TEST(DetectPolicyFake, RetryOnlyWhenNeeded) {
  SquareDetector det({320, 240}, ResizeMode::kLetterbox);
  cv::Mat img = canvas(640, 480);
  square(img, {200, 150, 100, 100});  // found, in the middle: no retry
  auto faces = detect_with_policy(det, img, only(AspectPolicy::kStretch, true, 0.f));
  ASSERT_TRUE(faces.ok());
  EXPECT_EQ(faces->size(), 1u);
  EXPECT_EQ(det.calls, 1);
  // A small face cut by the border does not trigger it either.
  cv::Mat cut = canvas(640, 480);
  square(cut, {0, 200, 30, 40});
  square(cut, {300, 200, 60, 60});
  det.calls = 0;
  faces = detect_with_policy(det, cut, only(AspectPolicy::kStretch, true, 0.f));
  ASSERT_TRUE(faces.ok());
  EXPECT_EQ(det.calls, 1);
  // Nothing at all: one retry, and still nothing.
  det.calls = 0;
  faces = detect_with_policy(det, canvas(640, 480), only(AspectPolicy::kStretch, true, 0.f));
  ASSERT_TRUE(faces.ok());
  EXPECT_TRUE(faces->empty());
  EXPECT_EQ(det.calls, 2);
}

TEST(DetectPolicyFake, RetryDownscalesLargePhotos) {
  SquareDetector det({320, 240}, ResizeMode::kLetterbox);
  // A 3600x3000 photo whose face fills it: the padded copy is capped at
  // 2 x 320 = 640 px on its longer side, and the box still maps back.
  cv::Mat img(3000, 3600, CV_8UC3, cv::Scalar::all(255));
  auto faces = detect_with_policy(det, img, only(AspectPolicy::kStretch, true, 0.f));
  ASSERT_TRUE(faces.ok());
  ASSERT_EQ(faces->size(), 1u);
  EXPECT_GT(iou((*faces)[0].box, cv::Rect2f(0, 0, 3600, 3000)), 0.95f) << (*faces)[0].box;
}

TEST(DetectPolicyFake, PanoramaLetterboxAndTiles) {
  SquareDetector det({320, 240}, ResizeMode::kStretch);
  cv::Mat img = canvas(6000, 1200);
  const cv::Rect face(2300, 300, 600, 600);
  square(img, face);
  auto plain = detect_with_policy(det, img, no_detect_policy());
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->empty()) << "the stretch squeezes the square to 32x120 network pixels";
  for (AspectPolicy a : {AspectPolicy::kLetterbox, AspectPolicy::kTile}) {
    auto faces = detect_with_policy(det, img, only(a, false, 0.f));
    ASSERT_TRUE(faces.ok());
    ASSERT_EQ(faces->size(), 1u) << static_cast<int>(a);
    EXPECT_GT(iou((*faces)[0].box, cv::Rect2f(face)), 0.9f) << (*faces)[0].box;
    expect_landmarks_of((*faces)[0], (*faces)[0].box, 1.f);
  }
  // Tall photos too.
  cv::Mat tall = canvas(1000, 5000);
  square(tall, {200, 3000, 500, 500});
  for (AspectPolicy a : {AspectPolicy::kLetterbox, AspectPolicy::kTile}) {
    auto faces = detect_with_policy(det, tall, only(a, false, 0.f));
    ASSERT_TRUE(faces.ok());
    ASSERT_EQ(faces->size(), 1u) << static_cast<int>(a);
    EXPECT_GT(iou((*faces)[0].box, cv::Rect2f(200, 3000, 500, 500)), 0.9f);
  }
}

TEST(DetectPolicyFake, LetterboxingDetectorsAreLeftAlone) {
  SquareDetector det({640, 640}, ResizeMode::kLetterbox);
  cv::Mat img = canvas(6000, 1200);
  square(img, {2300, 300, 600, 600});
  auto faces = detect_with_policy(det, img, only(AspectPolicy::kTile, false, 0.f));
  ASSERT_TRUE(faces.ok());
  EXPECT_EQ(faces->size(), 1u);
  EXPECT_EQ(det.calls, 1);
}

TEST(DetectPolicyFake, SmallFacesFoundOnceByTiles) {
  SquareDetector det({320, 240}, ResizeMode::kStretch);
  cv::Mat img = canvas(1280, 960);
  // 16 px squares: 4 network pixels in the full view (below min_px 6), 8 in
  // tiles seen at scale 0.5. Some sit across the seams between tiles.
  std::vector<cv::Rect> squares;
  for (int y = 40; y < 920; y += 110)
    for (int x = 30; x < 1240; x += 137) squares.emplace_back(x, y, 16, 16);
  for (const auto& r : squares) square(img, r);
  auto plain = detect_with_policy(det, img, no_detect_policy());
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->empty());
  auto tiled = detect_with_policy(det, img, only(AspectPolicy::kLetterbox, false, 0.5f));
  ASSERT_TRUE(tiled.ok());
  EXPECT_EQ(tiled->size(), squares.size()) << "each square once: overlaps merged";
  for (const auto& r : squares) EXPECT_GT(best_iou(*tiled, cv::Rect2f(r)), 0.6f) << r;
  // A large face still comes from the full view, not cut up by tiles.
  cv::Mat big = canvas(1280, 960);
  square(big, {300, 200, 500, 500});
  auto one = detect_with_policy(det, big, only(AspectPolicy::kLetterbox, false, 0.5f));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_GT(iou((*one)[0].box, cv::Rect2f(300, 200, 500, 500)), 0.9f);
}

TEST(DetectPolicyFake, TilesCappedAndSkippedForSmallPhotos) {
  SquareDetector det({320, 240}, ResizeMode::kStretch);
  DetectPolicyOptions o = only(AspectPolicy::kLetterbox, false, 1.f);
  o.max_tiles = 4;
  auto r = detect_with_policy(det, canvas(4000, 3000), o);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(det.calls, 1 + 4);
  det.calls = 0;
  r = detect_with_policy(det, canvas(320, 240), o);  // already at scale 1: no tiles
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(det.calls, 1);
}

TEST(DetectPolicyFake, BadInputAndOptions) {
  SquareDetector det({320, 240}, ResizeMode::kStretch);
  auto empty = detect_with_policy(det, cv::Mat(), default_detect_policy());
  EXPECT_FALSE(empty.ok());
  DetectPolicyOptions o;
  o.max_tiles = 0;
  auto bad = detect_with_policy(det, canvas(64, 64), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  // Grey and BGRA photos work as BGR ones do.
  cv::Mat grey(480, 640, CV_8UC1, cv::Scalar(0));
  grey(cv::Rect(100, 100, 80, 80)).setTo(255);
  auto g = detect_with_policy(det, grey, default_detect_policy());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->size(), 1u);
}

}  // namespace
}  // namespace facerec
