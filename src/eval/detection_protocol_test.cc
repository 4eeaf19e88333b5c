// WIDER FACE AP (eval_detection.h) with the fake detector, whose one face is
// the central 60% square: a ground truth there is found (AP 1), one
// elsewhere is not (AP 0); subsets, max_faces, cancellation and bad input.
// Offline.
#include <filesystem>

#include <gtest/gtest.h>

#include "facerec/eval_detection.h"
#include "protocol_test_support.h"

namespace fs = std::filesystem;

namespace facerec::eval {
namespace {

using testing_support::EvalEnv;
using testing_support::person_colour;
using testing_support::write_photo;

// The face the fake detector reports in a 200x200 photo: the central square
// of side 0.6 x 200.
const cv::Rect2f kCentral(40, 40, 120, 120);

WiderGtImage gt_image(const std::string& path, std::vector<cv::Rect2f> boxes, std::array<uint8_t, 3> in_subset) {
  WiderGtImage g;
  g.path = path;
  g.boxes = std::move(boxes);
  for (size_t s = 0; s < 3; ++s) g.keep[s].assign(g.boxes.size(), in_subset[s]);
  return g;
}

TEST(WiderDetection, TheCentralFaceIsFoundAndScoredBySubset) {
  EvalEnv env("wider_ok");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("wider_tree");
  write_photo(root / "0--A" / "a.png", person_colour(0), 1);
  write_photo(root / "0--A" / "b.png", person_colour(1), 2);
  // a.png: its face is in every subset. b.png: the face is in the hard
  // subset only, and a second face in the corner is never detected.
  const std::vector<WiderGtImage> gt = {gt_image("0--A/a.png", {kCentral}, {1, 1, 1}),
                                        gt_image("0--A/b.png", {kCentral, cv::Rect2f(0, 0, 20, 20)}, {0, 0, 1})};
  WiderDetectionOptions opt;
  opt.images_dir = root.string();
  auto r = run_wider_detection(env.analyzer(), {}, gt, opt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->detections.size(), 2u);
  ASSERT_EQ(r->detections[0].size(), 1u);
  const cv::Rect2f& box = r->detections[0][0].box;
  EXPECT_NEAR(box.x, kCentral.x, 3);
  EXPECT_NEAR(box.y, kCentral.y, 3);
  EXPECT_NEAR(box.width, kCentral.width, 4);
  EXPECT_NEAR(box.height, kCentral.height, 4);
  EXPECT_EQ(r->total_detections, 2u);
  EXPECT_EQ(r->curves[kEasy].faces, 1);
  EXPECT_EQ(r->curves[kMedium].faces, 1);
  EXPECT_EQ(r->curves[kHard].faces, 3);
  EXPECT_NEAR(r->curves[kEasy].ap, 1.0, 1e-9);
  // Hard: two of three faces found, no false positive.
  EXPECT_NEAR(r->curves[kHard].ap, 2.0 / 3.0, 1e-9);
}

TEST(WiderDetection, AFaceElsewhereIsMissedAndMaxFacesKeepsTheBest) {
  EvalEnv env("wider_miss");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("wider_miss_tree");
  write_photo(root / "e" / "a.png", person_colour(0), 1);
  // Bright left half, dark right half: the fake detector finds two faces.
  cv::Mat two(200, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  two(cv::Rect(0, 0, 100, 200)).setTo(cv::Scalar(200, 200, 200));
  ASSERT_TRUE(cv::imwrite((root / "e" / "two.png").string(), two));
  const std::vector<WiderGtImage> gt = {gt_image("e/a.png", {cv::Rect2f(150, 150, 40, 40)}, {1, 1, 1}),
                                        gt_image("e/two.png", {}, {1, 1, 1})};
  WiderDetectionOptions opt;
  opt.images_dir = root.string();
  auto all = run_wider_detection(env.analyzer(), {}, gt, opt);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(all->detections[1].size(), 2u);
  EXPECT_DOUBLE_EQ(all->curves[kEasy].ap, 0.0);
  opt.max_faces = 1;
  auto one = run_wider_detection(env.analyzer(), {}, gt, opt);
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  ASSERT_EQ(one->detections[1].size(), 1u);
  EXPECT_FLOAT_EQ(one->detections[1][0].score, std::max(all->detections[1][0].score, all->detections[1][1].score));
}

TEST(WiderDetection, CancelledAndBadInputAreErrors) {
  EvalEnv env("wider_bad");
  ASSERT_TRUE(env.recognizer);
  const fs::path root = facerec::testing::temp_dir("wider_bad_tree");
  write_photo(root / "e" / "a.png", person_colour(0), 1);
  std::vector<WiderGtImage> gt = {gt_image("e/a.png", {kCentral}, {1, 1, 1})};
  WiderDetectionOptions opt;
  opt.images_dir = root.string();
  ProtocolHooks stop;
  stop.cancelled = [] { return true; };
  EXPECT_EQ(run_wider_detection(env.analyzer(), {}, gt, opt, stop).status().code(), ErrorCode::kCancelled);
  opt.max_faces = -1;
  EXPECT_EQ(run_wider_detection(env.analyzer(), {}, gt, opt).status().code(), ErrorCode::kInvalidArgument);
  opt.max_faces = 750;
  gt[0].keep[kHard].clear();  // subsets not read
  EXPECT_EQ(run_wider_detection(env.analyzer(), {}, gt, opt).status().code(), ErrorCode::kInvalidArgument);
  gt = {gt_image("e/missing.png", {kCentral}, {1, 1, 1})};
  auto missing = run_wider_detection(env.analyzer(), {}, gt, opt);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.png"), std::string::npos) << missing.status().to_string();
  EXPECT_FALSE(read_wider_ground_truth((root / "no_such_gt.txt").string()).ok());
}

}  // namespace
}  // namespace facerec::eval
