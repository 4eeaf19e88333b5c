// VideoSource on small synthetic files: every frame in order for files, pacing
// with realtime, clear errors for sources that cannot be opened.
#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "facerec/video.h"
#include "test_support.h"

namespace facerec {
namespace {

// Writes `frames` MJPG frames at `fps`; frame i is filled with grey 8*i so
// its index can be read back despite JPEG loss.
std::string make_clip(int frames, double fps) {
  const std::string path = testing::temp_dir("video") + "/clip.avi";
  cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, {64, 48});
  EXPECT_TRUE(w.isOpened());
  for (int i = 0; i < frames; ++i) w.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(8 * i)));
  return path;
}

int grey_index(const cv::Mat& m) { return static_cast<int>(std::lround(cv::mean(m)[0] / 8.0)); }

TEST(ClassifySource, CamerasStreamsFiles) {
  EXPECT_EQ(classify_source("0"), SourceKind::kCamera);
  EXPECT_EQ(classify_source("/dev/video2"), SourceKind::kCamera);
  EXPECT_EQ(classify_source("rtsp://127.0.0.1:8554/live"), SourceKind::kStream);
  EXPECT_EQ(classify_source("HTTP://host/x.mjpg"), SourceKind::kStream);
  EXPECT_EQ(classify_source("clip.mp4"), SourceKind::kFile);
  EXPECT_EQ(classify_source("100"), SourceKind::kFile);  // not a plausible camera index: a file name
}

TEST(VideoSource, FileDeliversEveryFrameInOrderToASlowConsumer) {
  const auto path = make_clip(30, 30);
  VideoSourceOptions o;
  o.queue_frames = 2;
  auto src = VideoSource::open(path, o);
  ASSERT_TRUE(src.ok()) << src.status().to_string();
  EXPECT_EQ((*src)->kind(), SourceKind::kFile);
  EXPECT_EQ((*src)->size(), cv::Size(64, 48));
  int n = 0;
  VideoFrame f;
  for (;;) {
    const NextResult r = (*src)->next(f, 2000);
    ASSERT_NE(r, NextResult::kTimeout);
    if (r == NextResult::kEnd) break;
    EXPECT_EQ(f.index, n);
    EXPECT_EQ(grey_index(f.bgr), n);
    EXPECT_NEAR(f.time_s, n / 30.0, 1e-6);
    ++n;
    if (n % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // slower than the decoder
  }
  EXPECT_EQ(n, 30);
  EXPECT_TRUE((*src)->end_status().ok());
  EXPECT_EQ((*src)->stats().dropped, 0);
}

TEST(VideoSource, RealtimeKeepsFilePaceAndDropsForASlowConsumer) {
  const auto path = make_clip(30, 30);  // one second of video
  VideoSourceOptions o;
  o.realtime = true;
  auto src = VideoSource::open(path, o);
  ASSERT_TRUE(src.ok());
  const auto t0 = std::chrono::steady_clock::now();
  int n = 0;
  long last = -1;
  VideoFrame f;
  while ((*src)->next(f, 2000) == NextResult::kFrame) {
    EXPECT_GT(f.index, last);
    last = f.index;
    ++n;
    std::this_thread::sleep_for(std::chrono::milliseconds(70));  // ~14 fps of processing
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(s, 0.9);   // not faster than the file
  EXPECT_LT(s, 2.5);   // and not every frame at 70 ms each (2.1 s + slack)
  EXPECT_LT(n, 30);
  EXPECT_EQ(last, 29);  // the newest frame always gets through
  EXPECT_GT((*src)->stats().dropped, 0);
}

TEST(VideoSource, StopEndsAWaitingConsumer) {
  const auto path = make_clip(30, 30);
  auto src = VideoSource::open(path);
  ASSERT_TRUE(src.ok());
  VideoFrame f;
  ASSERT_EQ((*src)->next(f, 2000), NextResult::kFrame);
  (*src)->stop();
  int extra = 0;
  while ((*src)->next(f, 2000) == NextResult::kFrame) ++extra;
  EXPECT_LE(extra, 9);  // at most what was queued
}

TEST(VideoSource, UnopenableSourcesAreClearErrors) {
  auto missing = VideoSource::open("/nonexistent/clip.mp4");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  const std::string junk = testing::temp_dir("video") + "/junk.mp4";
  std::ofstream(junk) << "this is not a video";
  auto bad = VideoSource::open(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cannot open"), std::string::npos);
  // Port 9 on loopback: nobody listens, the connection is refused quickly.
  VideoSourceOptions o;
  o.timeout_ms = 2000;
  auto stream = VideoSource::open("rtsp://127.0.0.1:9/none", o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), ErrorCode::kIo);
  EXPECT_FALSE(VideoSource::open("").ok());
}

}  // namespace
}  // namespace facerec
