// FaceRecognizer on the fake Runtime: configuration precedence, identify /
// verify / enrol / remove / rename, per-call detection options, the live
// index against a rebuilt one, and readers and writers together. Offline: no
// ONNX Runtime session and no ../shared.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <opencv2/imgcodecs.hpp>

#include "facerec/json.h"
#include "facerec/recognizer.h"
#include "fake_runtime.h"
#include "random_unit.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

using testing::kBlue;
using testing::kGreen;
using testing::kRed;
using testing::photo;
using testing::png;

struct Env : testing::FakeRecognizerEnv {
  Env() : FakeRecognizerEnv(testing::temp_dir("recognizer")) {}
  std::unique_ptr<FaceRecognizer> make() {
    auto r = FakeRecognizerEnv::make();
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : nullptr;
  }
};

std::vector<EnrollInput> inputs_of(cv::Scalar colour, int first_seed, int n) {
  std::vector<EnrollInput> v;
  for (int i = 0; i < n; ++i)
    v.push_back({"seed" + std::to_string(first_seed + i) + ".png", png(photo(colour, first_seed + i))});
  return v;
}

TEST(RecognizerConfig, FlagsBeatTheFileWhichBeatsTheDefaults) {
  const std::string dir = testing::temp_dir("config");
  const std::string file = dir + "/c.json";
  std::ofstream(file) << R"({"detector": "from_file", "threshold": 0.4, "score_threshold": 0.3, "db": "file.db",
                             "max_pixels": 1000, "threads": 3})";
  ConfigLayer flags;
  flags.threshold = 0.55f;
  flags.db = "flag.db";
  auto c = resolve_config(flags, file);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->detector, "from_file");
  EXPECT_FLOAT_EQ(*c->threshold, 0.55f);
  EXPECT_EQ(c->db, "flag.db");
  EXPECT_FLOAT_EQ(c->detection.score_threshold, 0.3f);
  EXPECT_FLOAT_EQ(c->detection.nms_threshold, DetectOptions{}.nms_threshold);
  EXPECT_EQ(c->limits.max_pixels, 1000);
  EXPECT_EQ(c->threads, 3);
  auto d = resolve_config({}, "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->db, "gallery.db");
  EXPECT_FALSE(d->threshold.has_value());

  std::ofstream(dir + "/bad.json") << "{\"threshold\": ";
  EXPECT_EQ(resolve_config({}, dir + "/bad.json").status().code(), ErrorCode::kInvalidArgument);
  std::ofstream(dir + "/wrongtype.json") << R"({"threshold": "high"})";
  EXPECT_EQ(resolve_config({}, dir + "/wrongtype.json").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(resolve_config({}, dir + "/absent.json").status().code(), ErrorCode::kNotFound);
  ConfigLayer bad;
  bad.score_threshold = 1.5f;
  EXPECT_EQ(resolve_config(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = {};
  bad.threshold = std::nanf("");
  EXPECT_EQ(resolve_config(bad).status().code(), ErrorCode::kInvalidArgument);
}

// One range per setting (kConfigKeys): a flag and the same key in a config
// file are accepted and refused alike, and the flag's message names the flag.
TEST(RecognizerConfig, AFlagAndTheFileKeyShareOneRange) {
  const std::string dir = testing::temp_dir("config_ranges");
  struct Case {
    const char* key;
    const char* flag;
    double value;
    void (*set)(ConfigLayer&, double);
  };
  const Case cases[] = {
      {"max_pixels", "--max-pixels", 9.1e15, [](ConfigLayer& l, double v) { l.max_pixels = static_cast<int64_t>(v); }},
      {"max_pixels", "--max-pixels", 0, [](ConfigLayer& l, double v) { l.max_pixels = static_cast<int64_t>(v); }},
      {"threads", "--threads", 100000, [](ConfigLayer& l, double v) { l.threads = static_cast<int>(v); }},
      {"score_threshold", "--det-score", 1.5, [](ConfigLayer& l, double v) { l.score_threshold = static_cast<float>(v); }},
      {"nms_threshold", "--nms", 0, [](ConfigLayer& l, double v) { l.nms_threshold = static_cast<float>(v); }},
      {"threshold", "--threshold", -1.5, [](ConfigLayer& l, double v) { l.threshold = static_cast<float>(v); }},
      {"fpir", "--fpir", 1, [](ConfigLayer& l, double v) { l.fpir = v; }},
  };
  for (const Case& c : cases) {
    const std::string file = dir + "/" + c.key + ".json";
    const nlohmann::json v = c.value == std::floor(c.value) ? nlohmann::json(static_cast<int64_t>(c.value))
                                                            : nlohmann::json(c.value);
    std::ofstream(file) << "{\"" << c.key << "\": " << v.dump() << "}";
    auto from_file = resolve_config({}, file);
    ConfigLayer flags;
    c.set(flags, c.value);
    auto from_flag = resolve_config(flags);
    EXPECT_EQ(from_file.status().code(), ErrorCode::kInvalidArgument) << c.key << " " << c.value;
    EXPECT_EQ(from_flag.status().code(), ErrorCode::kInvalidArgument) << c.flag << " " << c.value;
    EXPECT_NE(from_flag.status().message().find(std::string(c.flag) + " must be within"), std::string::npos)
        << from_flag.status().to_string();
  }
  // The ends of each range are accepted both ways.
  ConfigLayer edge;
  edge.max_pixels = int64_t{9'000'000'000'000'000};
  edge.threads = 0;
  edge.score_threshold = 1.f;
  edge.nms_threshold = 1.f;
  edge.threshold = -1.f;
  auto ok = resolve_config(edge);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->limits.max_pixels, int64_t{9'000'000'000'000'000});
}

TEST(RecognizerConfig, ThresholdIsResolvedInOnePlace) {
  RecognizerConfig c;
  ModelSpec e;
  e.id = "emb";
  e.match_threshold = 0.33f;
  auto t = resolve_threshold(c, e, 10);
  ASSERT_TRUE(t.ok());
  EXPECT_FLOAT_EQ(t->value, 0.33f);
  // No calibration: the manifest's per-comparison threshold, and the reason says the FPIR is not controlled.
  EXPECT_EQ(t->policy.source, PolicySource::kFallback);
  EXPECT_NE(t->source.find("emb"), std::string::npos) << t->source;
  EXPECT_EQ(t->policy.gallery_people, 10);
  c.threshold = 0.5f;
  EXPECT_FLOAT_EQ(resolve_threshold(c, e, 10)->value, 0.5f);
  EXPECT_EQ(resolve_threshold(c, e, 10)->source, "given");
  // A bad FPIR for one call is refused.
  EXPECT_EQ(resolve_threshold(c, e, 10, 10, kDefaultTemplateRule, std::nullopt, 1.5).status().code(),
            ErrorCode::kInvalidArgument);
  c.threshold.reset();
  e.match_threshold = 0;
  EXPECT_EQ(resolve_threshold(c, e, 10).status().code(), ErrorCode::kInvalidArgument);
}

TEST(Recognizer, EnrolIdentifyRemoveRename) {
  Env env;
  auto rec = env.make();
  ASSERT_TRUE(rec);
  auto r = rec->enroll("Alice", inputs_of(kRed, 1, 3));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->added, 3);
  for (const auto& it : r->items) EXPECT_GT(it.template_id, 0);
  ASSERT_EQ(rec->enroll("Bob", inputs_of(kBlue, 10, 2))->added, 2);
  EXPECT_EQ(rec->template_count(), 5u);

  // The same bytes again: duplicates, nothing written.
  auto again = rec->enroll("Alice", inputs_of(kRed, 1, 3));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->duplicates, 3);
  EXPECT_EQ(rec->template_count(), 5u);

  auto id = rec->identify(photo(kRed, 99));
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  ASSERT_EQ(id->faces.size(), 1u);
  EXPECT_EQ(id->faces[0].decision.identity, "Alice");
  EXPECT_FLOAT_EQ(id->threshold.value, 0.9f);
  ASSERT_EQ(id->faces[0].decision.candidates.size(), 2u);
  EXPECT_EQ(id->faces[0].decision.candidates[1].identity, "Bob");
  // A stranger: unknown, with candidates kept.
  auto stranger = rec->identify(photo(kGreen, 5));
  ASSERT_TRUE(stranger.ok());
  ASSERT_EQ(stranger->faces.size(), 1u);
  EXPECT_FALSE(stranger->faces[0].decision.known());
  EXPECT_EQ(stranger->faces[0].decision.candidates.size(), 2u);
  // The JSON the CLI and the service print.
  const auto j = identify_json("p.png", *id);
  EXPECT_EQ(j["faces"][0]["identity"], "Alice");
  EXPECT_EQ(j["width"], 200);
  EXPECT_TRUE(identify_json("s", *stranger)["faces"][0]["identity"].is_null());

  ASSERT_TRUE(rec->rename("Alice", "Alicia").ok());
  EXPECT_EQ(rec->identify(photo(kRed, 98))->faces[0].decision.identity, "Alicia");
  EXPECT_EQ(rec->rename("Alicia", "Bob").code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(rec->rename("Nobody", "X").code(), ErrorCode::kNotFound);
  EXPECT_EQ(rec->rename("Bob", "").code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(rec->remove("Alicia").ok());
  EXPECT_EQ(rec->remove("Alicia").code(), ErrorCode::kNotFound);
  auto after = rec->identify(photo(kRed, 97));
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->faces[0].decision.known());
  ASSERT_EQ(rec->people().size(), 1u);
  EXPECT_EQ(rec->people()[0].name, "Bob");

  // A fresh recognizer on the same file sees the same gallery and decides
  // the same: the live index matches one built from the gallery.
  ASSERT_TRUE(rec->enroll("Carol", inputs_of(kGreen, 20, 2)).ok());
  auto fresh = env.make();
  ASSERT_TRUE(fresh);
  for (const cv::Scalar& c : {kRed, kBlue, kGreen}) {
    auto a = rec->identify(photo(c, 50)), b = fresh->identify(photo(c, 50));
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->faces[0].decision.candidates.size(), b->faces[0].decision.candidates.size());
    for (size_t k = 0; k < a->faces[0].decision.candidates.size(); ++k) {
      EXPECT_EQ(a->faces[0].decision.candidates[k].identity, b->faces[0].decision.candidates[k].identity);
      EXPECT_NEAR(a->faces[0].decision.candidates[k].similarity, b->faces[0].decision.candidates[k].similarity, 1e-6);
    }
  }
}

TEST(Recognizer, BadInputIsAStatusAndChangesNothing) {
  Env env;
  auto rec = env.make();
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->enroll("Alice", inputs_of(kRed, 1, 2))->added, 2);
  // No face, corrupt bytes, a missing file: skipped with the reason, nothing written.
  std::vector<EnrollInput> bad = {{"black.png", png(cv::Mat(100, 100, CV_8UC3, cv::Scalar(0, 0, 0)))},
                                  {"corrupt.jpg", std::string("\xff\xd8\xff\xe0garbage", 11)},
                                  {"empty.png", std::string()},
                                  {env.dir + "/absent.jpg", std::nullopt}};
  auto r = rec->enroll("Mallory", bad);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->added, 0);
  EXPECT_EQ(r->skipped, 4);
  EXPECT_EQ(r->items[0].status.code(), ErrorCode::kNoFace);
  EXPECT_EQ(r->items[1].status.code(), ErrorCode::kDecode);
  EXPECT_EQ(r->items[2].status.code(), ErrorCode::kDecode);
  EXPECT_EQ(r->items[3].skip, EnrollSkip::kUnreadable);
  EXPECT_EQ(rec->people().size(), 1u);
  EXPECT_EQ(rec->enroll("bad\nname", inputs_of(kBlue, 3, 1)).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rec->identify(cv::Mat()).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rec->identify(cv::Mat(10, 10, CV_32FC3)).status().code(), ErrorCode::kInvalidArgument);
  IdentifyOptions o;
  o.top_k = 0;
  EXPECT_EQ(rec->identify(photo(kRed, 1), o).status().code(), ErrorCode::kInvalidArgument);
  o.top_k = 5;
  o.threshold = 2.f;
  EXPECT_EQ(rec->identify(photo(kRed, 1), o).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rec->verify(photo(kRed, 1), cv::Mat(50, 50, CV_8UC3, cv::Scalar(0, 0, 0))).status().code(),
            ErrorCode::kNoFace);
  EXPECT_EQ(rec->decode("not an image", "x").status().code(), ErrorCode::kDecode);
  EXPECT_EQ(rec->template_count(), 2u);
}

TEST(Recognizer, DetectionOptionsTravelWithTheCall) {
  Env env;
  auto rec = env.make();
  ASSERT_TRUE(rec);
  const cv::Mat img = photo(kRed, 3);
  ASSERT_EQ(rec->detect(img)->size(), 1u);
  DetectOptions strict;
  strict.score_threshold = 0.99f;  // above the fake face's 0.95
  EXPECT_EQ(rec->detect(img, strict)->size(), 0u);
  IdentifyOptions io;
  io.detection = strict;
  EXPECT_EQ(rec->identify(img, io)->faces.size(), 0u);
  // The shared detector is unchanged by a call's options.
  EXPECT_EQ(rec->detect(img)->size(), 1u);
  DetectOptions bad;
  bad.score_threshold = -0.1f;
  EXPECT_EQ(rec->detect(img, bad).status().code(), ErrorCode::kInvalidArgument);
  // Two faces: verify uses the largest and reports how many there were.
  cv::Mat two = photo(kRed, 4);
  two(cv::Rect(100, 0, 100, 200)).setTo(cv::Scalar(0, 0, 0));
  ASSERT_EQ(rec->detect(two)->size(), 2u);
  auto v = rec->verify(two, photo(kRed, 5));
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->faces1, 2);
  EXPECT_EQ(v->faces2, 1);
}

TEST(Recognizer, VerifyAndConfigErrors) {
  Env env;
  env.config.gallery = GalleryMode::kNone;
  auto rec = env.make();
  ASSERT_TRUE(rec);
  auto same = rec->verify(photo(kRed, 1), photo(kRed, 2));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->same);
  auto diff = rec->verify(photo(kRed, 1), photo(kBlue, 2));
  ASSERT_TRUE(diff.ok());
  EXPECT_FALSE(diff->same);
  EXPECT_LT(diff->similarity, 0.9f);
  EXPECT_EQ(rec->identify(photo(kRed, 1)).status().code(), ErrorCode::kInvalidArgument);  // no gallery
  EXPECT_FALSE(fs::exists(env.config.db));

  env.config.gallery = GalleryMode::kMustExist;
  EXPECT_EQ(FaceRecognizer::create(env.runtime, env.manifest, env.config).status().code(), ErrorCode::kNotFound);
  env.config.gallery = GalleryMode::kCreate;
  env.config.detector = "no_such_model";
  EXPECT_FALSE(FaceRecognizer::create(env.runtime, env.manifest, env.config).ok());
  env.config.detector = "";
  env.config.detection.nms_threshold = 7;
  EXPECT_EQ(FaceRecognizer::create(env.runtime, env.manifest, env.config).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(Recognizer, CancelledEnrolmentWritesNothing) {
  Env env;
  auto rec = env.make();
  ASSERT_TRUE(rec);
  std::atomic<bool> cancel{true};
  EnrollOptions o;
  o.cancel = &cancel;
  EXPECT_EQ(rec->enroll("Alice", inputs_of(kRed, 1, 2), o).status().code(), ErrorCode::kCancelled);
  EXPECT_TRUE(rec->people().empty());
  o.cancel = nullptr;
  o.min_quality = 2.f;  // fallback quality is within 0..1: every face is refused
  auto r = rec->enroll("Alice", inputs_of(kRed, 1, 2), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->added, 0);
  EXPECT_EQ(r->items[0].skip, EnrollSkip::kLowQuality);
  EXPECT_TRUE(rec->people().empty());
}

// 4 readers identify while one thread enrols and another removes: every
// answer names someone who was enrolled at some point and is not a partial
// person, and nothing fails.
// create() takes the index, the people and their photo hashes from ONE
// gallery snapshot. With another process enrolling all the while, every
// person people() lists (after a sync) must be in the index: a person
// enrolled between separate reads used to be listed, and its photo hashes
// known, without being in the index, so the sync took it as applied and
// identify never named it.
TEST(Recognizer, CreateWhileAnotherProcessEnrolsKeepsIndexAndPeopleTogether) {
  Env env;
  {
    auto rec = env.make();
    ASSERT_TRUE(rec);
    ASSERT_EQ(rec->enroll("Seed", inputs_of(kRed, 1, 1))->added, 1);
  }
  auto other = Gallery::open_existing(env.config.db);  // the other process's connection
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  const int dim = (*other)->embedder().dim;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint32_t i = 0; !stop && i < 990; ++i) {
      NewTemplate t{testing::random_unit(dim, i + 1), 1.f, "w" + std::to_string(i), "sha-w" + std::to_string(i), 0.9f};
      (void)(*other)->enroll("W" + std::to_string(i), {t});
    }
  });
  int rounds = 0, disagreements = 0;
  std::string example;
  for (; rounds < 150; ++rounds) {
    auto rec = env.make();
    ASSERT_TRUE(rec);
    ASSERT_TRUE(rec->sync_gallery().ok());
    std::set<std::string> listed, indexed;
    for (const auto& p : rec->people()) listed.insert(p.name);
    const std::vector<float> q = testing::random_unit(dim, 12345);
    auto found = rec->search({std::span<const float>(q)}, 1000);
    ASSERT_TRUE(found.ok()) << found.status().to_string();
    for (const auto& c : (*found)[0]) indexed.insert(c.identity);
    if (listed != indexed) {
      ++disagreements;
      for (const auto& n : listed)
        if (!indexed.count(n)) example = n + " is listed but not in the index";
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(disagreements, 0) << "in " << disagreements << " of " << rounds << " opens, e.g. " << example;
}

// The log sink: the library's messages go to the caller's spdlog logger,
// and nothing to stderr (issue 9: no direct stderr writes in the library).
TEST(Recognizer, MessagesGoToTheGivenLoggerNeverToStderr) {
  Env env;
  std::ostringstream out;
  env.config.logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  ::testing::internal::CaptureStderr();
  {
    auto rec = env.make();
    ASSERT_TRUE(rec);
    ASSERT_EQ(rec->enroll("Alice", inputs_of(kRed, 1, 1))->added, 1);
    ASSERT_TRUE(rec->rename("Alice", "Alicia").ok());
    ASSERT_TRUE(rec->remove("Alicia").ok());
    EXPECT_EQ(rec->remove("Alicia").code(), ErrorCode::kNotFound);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  env.config.logger->flush();
  EXPECT_NE(out.str().find("renamed 'Alice' to 'Alicia'"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("removed 'Alicia'"), std::string::npos) << out.str();
  EXPECT_EQ(err, "");
}

TEST(Recognizer, ReadersAndWritersTogether) {
  Env env;
  auto rec = env.make();
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->enroll("Alice", inputs_of(kRed, 1, 2))->added, 2);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, answers{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      int i = 0;
      while (!stop) {
        auto r = rec->identify(photo(i % 2 ? kRed : kBlue, 100 + t * 1000 + i));
        ++i;
        if (!r.ok() || r->faces.size() != 1) { ++failures; continue; }
        const std::string& who = r->faces[0].decision.identity;
        if (!who.empty() && who != "Alice" && who.rfind("Bob", 0) != 0) ++failures;
        ++answers;
      }
    });
  std::thread writer([&] {
    for (int k = 0; k < 15; ++k)
      if (!rec->enroll("Bob" + std::to_string(k), inputs_of(kBlue, 200 + 3 * k, 3)).ok()) ++failures;
  });
  std::thread remover([&] {
    for (int k = 0; k < 15; ++k) {
      Status s = rec->remove("Bob" + std::to_string(k));
      if (!s.ok() && s.code() != ErrorCode::kNotFound) ++failures;
      std::this_thread::yield();
    }
  });
  writer.join();
  remover.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(answers.load(), 0);
  // The index and the gallery still agree.
  auto fresh = env.make();
  ASSERT_TRUE(fresh);
  std::set<std::string> a, b;
  for (const auto& p : rec->people()) a.insert(p.name + ":" + std::to_string(p.templates));
  for (const auto& p : fresh->people()) b.insert(p.name + ":" + std::to_string(p.templates));
  EXPECT_EQ(a, b);
  EXPECT_EQ(rec->template_count(), fresh->template_count());
}

}  // namespace
}  // namespace facerec
