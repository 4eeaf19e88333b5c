#include "facerec/image.h"

#include <fstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "test_support.h"

namespace facerec {
namespace {

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string p = testing::temp_dir("img") + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string encode(const cv::Mat& m, const std::string& ext) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, m, buf));
  return std::string(buf.begin(), buf.end());
}

TEST(LoadImage, MissingFileIsNotFound) {
  auto r = load_image("/nonexistent/x.jpg");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

TEST(LoadImage, DirectoryIsRefused) {
  auto r = load_image(testing::temp_dir("dir"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

TEST(LoadImage, ZeroByteFileIsNotAnImage) {
  auto r = load_image(write_file("empty.jpg", ""));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDecode);
  EXPECT_NE(r.status().message().find("0 bytes"), std::string::npos);
}

TEST(LoadImage, TextFileIsNotAnImage) {
  auto r = load_image(write_file("notes.jpg", "hello, I am a text file\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDecode);
}

TEST(LoadImage, TruncatedJpegAndPngAreRefused) {
  cv::Mat m(200, 300, CV_8UC3);
  cv::randu(m, 0, 255);
  std::string jpg = encode(m, ".jpg"), png = encode(m, ".png");
  ASSERT_TRUE(load_image(write_file("ok.jpg", jpg)).ok());
  ASSERT_TRUE(load_image(write_file("ok.png", png)).ok());
  auto rj = load_image(write_file("cut.jpg", jpg.substr(0, jpg.size() / 2)));
  ASSERT_FALSE(rj.ok());
  EXPECT_EQ(rj.status().code(), ErrorCode::kDecode);
  EXPECT_NE(rj.status().message().find("truncated"), std::string::npos);
  auto rp = load_image(write_file("cut.png", png.substr(0, png.size() / 2)));
  ASSERT_FALSE(rp.ok());
  EXPECT_EQ(rp.status().code(), ErrorCode::kDecode);
}

TEST(LoadImage, HugeImageIsRefusedFromItsHeader) {
  // A PNG that claims 100000 x 100000 pixels: refused before decoding.
  std::string png = encode(cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)), ".png");
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  };
  put32(16, 100000);
  put32(20, 100000);
  auto r = load_image(write_file("bomb.png", png));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge);

  // A real image over a configured limit.
  std::string jpg = encode(cv::Mat(600, 800, CV_8UC3, cv::Scalar(9, 9, 9)), ".jpg");
  ImageLimits limits;
  limits.max_pixels = 100'000;
  auto r2 = load_image(write_file("big.jpg", jpg), limits);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), ErrorCode::kTooLarge);
  EXPECT_TRUE(load_image(write_file("big2.jpg", jpg)).ok());
}

TEST(LoadImage, GreyAlphaAnd16BitAreConvertedToBgr8) {
  cv::Mat grey(50, 60, CV_8UC1, cv::Scalar(77));
  auto g = load_image(write_file("g.png", encode(grey, ".png")));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->type(), CV_8UC3);
  EXPECT_EQ(g->at<cv::Vec3b>(10, 10), cv::Vec3b(77, 77, 77));

  cv::Mat rgba(50, 60, CV_8UC4, cv::Scalar(10, 20, 30, 128));
  auto a = load_image(write_file("a.png", encode(rgba, ".png")));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->type(), CV_8UC3);
  EXPECT_EQ(a->at<cv::Vec3b>(0, 0), cv::Vec3b(10, 20, 30));

  cv::Mat deep(50, 60, CV_16UC3, cv::Scalar(65535, 0, 257 * 100));
  auto d = load_image(write_file("d.png", encode(deep, ".png")));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->type(), CV_8UC3);
  EXPECT_EQ(d->at<cv::Vec3b>(5, 5), cv::Vec3b(255, 0, 100));

  cv::Mat grey16(50, 60, CV_16UC1, cv::Scalar(257 * 200));
  auto g16 = load_image(write_file("g16.png", encode(grey16, ".png")));
  ASSERT_TRUE(g16.ok());
  EXPECT_EQ(g16->at<cv::Vec3b>(1, 1), cv::Vec3b(200, 200, 200));
}

TEST(LoadImage, RealLfwPhoto) {
  FACEREC_REQUIRE_SHARED();
  auto r = load_image(testing::shared_dir() + "/data/lfw/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->size(), cv::Size(250, 250));
}

}  // namespace
}  // namespace facerec
