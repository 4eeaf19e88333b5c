// VideoRecognizer on the fake Runtime (offline: no ONNX Runtime session, no
// ../shared): a face held in view becomes one track that is named once, a
// cut ends it, finish() ends the rest, and the detection score given to a
// watch (flag or config file) decides which faces are tracked at all.
#include "facerec/video_recognizer.h"

#include <gtest/gtest.h>

#include "fake_runtime.h"
#include "test_support.h"

namespace facerec {
namespace {

using testing::kBlue;
using testing::kRed;
using testing::photo;
using testing::png;

struct Env : testing::FakeRecognizerEnv {
  std::unique_ptr<FaceRecognizer> rec;
  Env() : FakeRecognizerEnv(testing::temp_dir("video_recognizer")) {
    auto r = make();
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok()) return;
    rec = std::move(r).value();
    std::vector<EnrollInput> in;
    for (int i = 0; i < 3; ++i) in.push_back({"red" + std::to_string(i) + ".png", png(photo(kRed, i))});
    auto e = rec->enroll("Alice", in);
    EXPECT_TRUE(e.ok() && e->added == 3) << (e.ok() ? "" : e.status().to_string());
  }
};

struct Played {
  std::vector<VideoEvent> events;
  int count(VideoEvent::Kind k) const {
    int n = 0;
    for (const auto& e : events) n += e.kind == k;
    return n;
  }
  const VideoEvent* first(VideoEvent::Kind k) const {
    for (const auto& e : events)
      if (e.kind == k) return &e;
    return nullptr;
  }
};

// Feeds `frames` (at 25 fps) and finishes the stream.
Played play(VideoRecognizer& vr, const std::vector<cv::Mat>& frames) {
  Played run;
  const VideoEventSink sink = [&](const VideoEvent& e) { run.events.push_back(e); };
  for (size_t i = 0; i < frames.size(); ++i) {
    auto views = vr.process(frames[i], static_cast<long>(i), static_cast<double>(i) / 25.0, sink);
    EXPECT_TRUE(views.ok()) << views.status().to_string();
  }
  vr.finish(sink);
  return run;
}

TEST(VideoRecognizer, AFaceInViewIsOneTrackNamedOnce) {
  Env env;
  ASSERT_TRUE(env.rec);
  auto vr = VideoRecognizer::create(*env.rec, {}, 25.0);
  ASSERT_TRUE(vr.ok()) << vr.status().to_string();
  const Played run = play(**vr, std::vector<cv::Mat>(40, photo(kRed, 50)));
  EXPECT_EQ(run.count(VideoEvent::Kind::kTrackStart), 1);
  EXPECT_EQ(run.count(VideoEvent::Kind::kIdentified), 1);
  EXPECT_EQ(run.count(VideoEvent::Kind::kCut), 0);
  const VideoEvent* named = run.first(VideoEvent::Kind::kIdentified);
  ASSERT_NE(named, nullptr);
  EXPECT_EQ(named->identity, "Alice");
  ASSERT_EQ(run.count(VideoEvent::Kind::kTrackEnd), 1);
  const VideoEvent& end = run.events.back();
  EXPECT_EQ(end.kind, VideoEvent::Kind::kTrackEnd);
  EXPECT_EQ(end.identity, "Alice");
  EXPECT_EQ(end.frames, 40);
  EXPECT_NEAR(end.duration, 40 / 25.0, 1e-9);
  EXPECT_GE(end.embeddings, 1);
  EXPECT_LT(end.embeddings, 40);  // the schedule embeds a track now and then, not every frame
  const VideoStats& st = (*vr)->stats();
  EXPECT_EQ(st.frames, 40);
  EXPECT_EQ(st.faces, 40);
  ASSERT_EQ(st.people.count("Alice"), 1u);
  EXPECT_EQ(st.people.at("Alice").tracks, 1);
}

TEST(VideoRecognizer, ACutEndsEveryTrackAndAStrangerStaysUnknown) {
  Env env;
  ASSERT_TRUE(env.rec);
  auto vr = VideoRecognizer::create(*env.rec, {}, 25.0);
  ASSERT_TRUE(vr.ok()) << vr.status().to_string();
  std::vector<cv::Mat> frames(20, photo(kRed, 60));
  frames.insert(frames.end(), 20, photo(kBlue, 61));  // another scene: a person not enrolled
  const Played run = play(**vr, frames);
  ASSERT_EQ(run.count(VideoEvent::Kind::kCut), 1);
  EXPECT_EQ(run.first(VideoEvent::Kind::kCut)->frame, 20);
  EXPECT_EQ(run.count(VideoEvent::Kind::kTrackStart), 2);
  ASSERT_EQ(run.count(VideoEvent::Kind::kTrackEnd), 2);
  std::vector<std::string> ended;
  for (const auto& e : run.events)
    if (e.kind == VideoEvent::Kind::kTrackEnd) ended.push_back(e.identity);
  EXPECT_EQ(ended, (std::vector<std::string>{"Alice", ""}));
}

// `watch --det-score` / a config file's score_threshold: faces below it are
// never tracked (the fake detector scores every face 0.95).
TEST(VideoRecognizer, TheGivenDetectionScoreDecidesWhatIsTracked) {
  Env env;
  ASSERT_TRUE(env.rec);
  for (float score : {0.3f, 0.9f, 0.99f}) {
    VideoRecognizerOptions o;
    o.detection_score = score;
    auto vr = VideoRecognizer::create(*env.rec, o, 25.0);
    ASSERT_TRUE(vr.ok()) << vr.status().to_string();
    const Played run = play(**vr, std::vector<cv::Mat>(10, photo(kRed, 70)));
    EXPECT_EQ(run.count(VideoEvent::Kind::kTrackStart), score < 0.95f ? 1 : 0) << "score " << score;
  }
  VideoRecognizerOptions bad;
  bad.detection_score = 1.5f;
  EXPECT_EQ(VideoRecognizer::create(*env.rec, bad, 25.0).status().code(), ErrorCode::kInvalidArgument);
}

TEST(VideoRecognizer, NeedsAGallery) {
  testing::FakeRuntime runtime;
  const std::string dir = testing::temp_dir("video_recognizer_nogallery");
  Manifest manifest = Manifest::load(testing::write_fake_manifest(dir)).value();
  RecognizerConfig config;
  config.gallery = GalleryMode::kNone;
  auto rec = FaceRecognizer::create(runtime, manifest, config);
  ASSERT_TRUE(rec.ok()) << rec.status().to_string();
  EXPECT_EQ(VideoRecognizer::create(**rec, {}, 25.0).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace facerec
