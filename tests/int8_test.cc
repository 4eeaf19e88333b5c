// int8 models (manifest entries with source "quantize", made by
// `facerec models quantize` and rebuilt by fetch_model from their recipe)
// against their float models on real faces that calibration never saw:
// embedders within cosine 0.99 on the same aligned faces, detectors finding
// the same faces (IoU >= 0.8). Also: ONNX Runtime holds the kernel's AMX tile
// permission once a Runtime exists, so its int8 kernels can use AMX.
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "facerec/align.h"
#include "facerec/detect.h"
#include "facerec/embed.h"
#include "facerec/image.h"
#include "facerec/models.h"
#include "facerec/pipeline.h"
#include "facerec/runtime.h"
#include "python_converter.h"
#include "test_support.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace facerec {
namespace {

using testing::manifest;
using testing::runtime;

std::vector<const ModelSpec*> int8_models(ModelTask task) {
  std::vector<const ModelSpec*> out;
  for (const auto& m : manifest().models())
    if (!m.quantize_from.empty() && m.task == task) out.push_back(&m);
  return out;
}

// Fetches (rebuilds from its recipe) an int8 model; a missing float model or
// python3-onnx skips loudly, any other failure fails.
bool ready(const ModelSpec& m) {
  cli::PythonModelConverter converter;  // tools.quantize apply
  FetchOptions fetch;
  fetch.converter = &converter;
  Status s = fetch_model(m, fetch);
  if (s.ok()) return true;
  if (s.code() == ErrorCode::kNotFound) {
    fprintf(stderr, "\n!!!!! SKIPPING %s: %s !!!!!\n\n", m.id.c_str(), s.to_string().c_str());
    return false;
  }
  ADD_FAILURE() << s.to_string();
  return false;
}

// Photos no calibration used: celeb5 val (LFW DevTrain and celeb5 train calibrate) and the crowd photos.
std::vector<std::filesystem::path> probe_photos() {
  std::vector<std::filesystem::path> out;
  for (const char* who : {"madonna", "ben_afflek", "elton_john"})
    for (auto& p : testing::photos(testing::celeb("val", who), 3)) out.push_back(p);
  const auto crowd = std::filesystem::path(testing::shared_dir()) / "data" / "crowd";
  out.push_back(crowd / "insightface_t1.jpg");
  out.push_back(crowd / "obama_and_biden.jpg");
  return out;
}

TEST(Int8, EmbeddingsMatchFloatOnRealFaces) {
  FACEREC_REQUIRE_SHARED();
  auto models = int8_models(ModelTask::kEmbedder);
  ASSERT_FALSE(models.empty()) << "the manifest ships no int8 embedder";
  PipelineConfig pc;
  auto analyzer = FaceAnalyzer::create(runtime(), manifest(), pc);
  ASSERT_TRUE(analyzer.ok()) << analyzer.status().to_string();
  std::vector<cv::Mat> crops;
  std::vector<double> eye_px;
  for (const auto& path : probe_photos()) {
    auto img = load_image(path.string());
    ASSERT_TRUE(img.ok()) << img.status().to_string();
    auto faces = (*analyzer)->detect(*img);
    ASSERT_TRUE(faces.ok());
    for (const auto& f : *faces) {
      crops.push_back(align_face(*img, f, 112));
      eye_px.push_back(cv::norm(f.landmarks[0] - f.landmarks[1]));
    }
  }
  ASSERT_GE(crops.size(), 12u);
  for (const ModelSpec* q : models) {
    if (!ready(*q)) continue;
    const ModelSpec* f = manifest().find(q->quantize_from);
    ASSERT_NE(f, nullptr);
    if (!ready(*f)) continue;
    auto e8 = Embedder::create(runtime(), *q);
    auto e32 = Embedder::create(runtime(), *f);
    ASSERT_TRUE(e8.ok() && e32.ok()) << q->id;
    auto a = (*e8)->embed(crops);
    auto b = (*e32)->embed(crops);
    ASSERT_TRUE(a.ok() && b.ok()) << q->id;
    float worst = 1.f, sum = 0.f;
    for (size_t i = 0; i < crops.size(); ++i) {
      auto cr = cosine((*a)[i], (*b)[i]);
      ASSERT_TRUE(cr.ok()) << cr.status().to_string();
      const float c = *cr;
      fprintf(stderr, "  face %zu: %.1f px between the eyes, cosine %.5f\n", i, eye_px[i], c);
      worst = std::min(worst, c);
      sum += c;
    }
    EXPECT_GE(worst, 0.99f) << q->id << " vs " << f->id << " over " << crops.size() << " faces";
    EXPECT_LT(sum / crops.size(), 0.99999f) << q->id << ": identical to float; is it quantised at all?";
    fprintf(stderr, "%s vs %s: cosine min %.5f mean %.5f over %zu faces\n", q->id.c_str(), f->id.c_str(), worst,
            sum / crops.size(), crops.size());
  }
}

// Every confident face of one detector has a face of the other at IoU >= 0.8.
int unmatched(const std::vector<Face>& from, const std::vector<Face>& to, float min_score) {
  int missing = 0;
  for (const auto& a : from) {
    if (a.score < min_score) continue;
    float best = 0.f;
    for (const auto& b : to) best = std::max(best, iou(a.box, b.box));
    if (best < 0.8f) ++missing;
  }
  return missing;
}

TEST(Int8, DetectionsMatchFloatOnRealPhotos) {
  FACEREC_REQUIRE_SHARED();
  auto models = int8_models(ModelTask::kDetector);
  if (models.empty()) {
    // fr_detect-int8 is shipped (WIDER AP within 0.5 point, BENCHMARKS.md
    // int8 third pass); a manifest without it skips here.
    fprintf(stderr, "\n!!!!! SKIPPING %s: the manifest ships no int8 detector (none passed the WIDER AP "
                    "bar, BENCHMARKS.md int8). This test did NOT run. !!!!!\n\n",
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    GTEST_SKIP() << "no int8 detector in the manifest";
  }
  for (const ModelSpec* q : models) {
    if (!ready(*q)) continue;
    const ModelSpec* f = manifest().find(q->quantize_from);
    ASSERT_NE(f, nullptr);
    if (!ready(*f)) continue;
    const ModelSpec* lm = f->landmarks_model.empty() ? nullptr : manifest().find(f->landmarks_model);
    if (lm && !ready(*lm)) continue;
    auto d8 = create_detector(runtime(), *q, {}, lm);
    auto d32 = create_detector(runtime(), *f, {}, lm);
    ASSERT_TRUE(d8.ok() && d32.ok()) << q->id << ": " << (d8.ok() ? d32.status() : d8.status()).to_string();
    int faces = 0;
    for (const auto& path : probe_photos()) {
      auto img = load_image(path.string());
      ASSERT_TRUE(img.ok());
      auto a = (*d8)->detect(*img);
      auto b = (*d32)->detect(*img);
      ASSERT_TRUE(a.ok() && b.ok());
      for (const auto& x : *b) faces += x.score >= 0.8f;
      // Faces near the score threshold may appear in one and not the other;
      // confident ones (>= 0.8) must be found by both, in the same place.
      EXPECT_EQ(unmatched(*b, *a, 0.8f), 0) << q->id << " misses a confident float face in " << path;
      EXPECT_EQ(unmatched(*a, *b, 0.8f), 0) << q->id << " finds a confident face the float model lacks in " << path;
    }
    EXPECT_GE(faces, 10) << f->id;
  }
}

// An int8 landmark model (fr_landmark-int8) in the float detector it serves:
// on photos calibration never saw, every face's 5 alignment points stay
// within 5% of the inter-ocular distance of the float model's, and the
// default embedder's embeddings of the two alignments within cosine 0.99.
TEST(Int8, LandmarksMatchFloatOnRealFaces) {
  FACEREC_REQUIRE_SHARED();
  auto models = int8_models(ModelTask::kLandmarks);
  if (models.empty()) {
    fprintf(stderr, "\n!!!!! SKIPPING %s: the manifest ships no int8 landmark model. This test did NOT run. !!!!!\n\n",
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    GTEST_SKIP() << "no int8 landmark model in the manifest";
  }
  const ModelSpec* det = manifest().find(manifest().default_detector());
  const ModelSpec* emb = manifest().find(manifest().default_embedder());
  ASSERT_TRUE(det && emb);
  if (!ready(*det) || !ready(*emb)) return;
  auto embedder = Embedder::create(runtime(), *emb);
  ASSERT_TRUE(embedder.ok()) << embedder.status().to_string();
  for (const ModelSpec* q : models) {
    if (!ready(*q)) continue;
    const ModelSpec* f = manifest().find(q->quantize_from);
    ASSERT_NE(f, nullptr);
    if (!ready(*f)) continue;
    auto d8 = create_detector(runtime(), *det, {}, q);
    auto d32 = create_detector(runtime(), *det, {}, f);
    ASSERT_TRUE(d8.ok() && d32.ok()) << q->id << ": " << (d8.ok() ? d32.status() : d8.status()).to_string();
    int faces = 0;
    double worst_px = 0, worst_cos = 1;
    for (const auto& path : probe_photos()) {
      auto img = load_image(path.string());
      ASSERT_TRUE(img.ok());
      auto a = (*d8)->detect(*img);
      auto b = (*d32)->detect(*img);
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->size(), b->size()) << q->id << " changed the faces of " << path << " (boxes come from " << det->id << ")";
      for (size_t i = 0; i < a->size(); ++i) {
        const Face& x = (*a)[i];
        const Face& y = (*b)[i];
        ASSERT_GE(iou(x.box, y.box), 0.99f) << path;
        const double iod = cv::norm(y.landmarks[0] - y.landmarks[1]);
        if (iod < 8) continue;  // too small to align (the quality floor)
        double worst = 0;
        for (int k = 0; k < 5; ++k) worst = std::max(worst, cv::norm(x.landmarks[k] - y.landmarks[k]) / iod);
        std::vector<cv::Mat> crops = {align_face(*img, x, 112), align_face(*img, y, 112)};
        auto e = (*embedder)->embed(crops);
        ASSERT_TRUE(e.ok());
        auto c = cosine((*e)[0], (*e)[1]);
        ASSERT_TRUE(c.ok());
        fprintf(stderr, "  face %d: %.1f px between the eyes, worst point off by %.3f IOD, embedding cosine %.5f\n",
                faces, iod, worst, *c);
        EXPECT_LE(worst, 0.05) << q->id << " vs " << f->id << " in " << path;
        EXPECT_GE(*c, 0.99f) << q->id << " vs " << f->id << " in " << path;
        worst_px = std::max(worst_px, worst);
        worst_cos = std::min(worst_cos, static_cast<double>(*c));
        ++faces;
      }
    }
    EXPECT_GE(faces, 10) << q->id;
    fprintf(stderr, "%s vs %s: worst point %.3f IOD, embedding cosine min %.5f over %d faces\n", q->id.c_str(),
            f->id.c_str(), worst_px, worst_cos, faces);
  }
}

// An embedder converted with tools/prelu_split.py (tflite_import
// --split-prelu; mobilefacenet_192, the default) computes its source's
// function: on the same aligned real faces its embeddings match the unsplit
// conversion of the same npm file (mobilefacenet_192_plain, its plain twin)
// to cosine >= 0.99999, so the thresholds and calibrations measured with the
// plain file hold for it, and galleries enrolled with that file stay usable
// (the manifest's equivalent_sha256).
TEST(Int8, PreluSplitEmbedderMatchesItsSource) {
  FACEREC_REQUIRE_SHARED();
  int checked = 0;
  for (const auto& s : manifest().models()) {
    if (s.task != ModelTask::kEmbedder ||
        std::find(s.convert.begin(), s.convert.end(), "--split-prelu") == s.convert.end())
      continue;
    const ModelSpec* src = nullptr;
    for (const auto& o : manifest().models())
      if (o.id != s.id && o.task == ModelTask::kEmbedder && o.npm_package == s.npm_package && o.npm_path == s.npm_path &&
          std::find(o.convert.begin(), o.convert.end(), "--split-prelu") == o.convert.end())
        src = &o;
    ASSERT_NE(src, nullptr) << s.id << ": no unsplit conversion of " << s.npm_path << " in the manifest";
    if (!ready(s) || !ready(*src)) continue;
    PipelineConfig pc;
    auto analyzer = FaceAnalyzer::create(runtime(), manifest(), pc);
    ASSERT_TRUE(analyzer.ok()) << analyzer.status().to_string();
    std::vector<cv::Mat> crops;
    for (const auto& path : probe_photos()) {
      auto img = load_image(path.string());
      ASSERT_TRUE(img.ok());
      auto faces = (*analyzer)->detect(*img);
      ASSERT_TRUE(faces.ok());
      for (const auto& f : *faces) crops.push_back(align_face(*img, f, 112));
    }
    ASSERT_GE(crops.size(), 12u);
    auto a = Embedder::create(runtime(), s);
    auto b = Embedder::create(runtime(), *src);
    ASSERT_TRUE(a.ok() && b.ok());
    auto ea = (*a)->embed(crops);
    auto eb = (*b)->embed(crops);
    ASSERT_TRUE(ea.ok() && eb.ok());
    float worst = 1.f;
    for (size_t i = 0; i < crops.size(); ++i) {
      auto c = cosine((*ea)[i], (*eb)[i]);
      ASSERT_TRUE(c.ok());
      worst = std::min(worst, *c);
      EXPECT_NEAR((*ea)[i].norm, (*eb)[i].norm, 1e-3f * (*eb)[i].norm) << s.id << " face " << i;
    }
    EXPECT_GE(worst, 0.99999f) << s.id << " vs " << src->id;
    fprintf(stderr, "%s vs %s: cosine min %.7f over %zu faces\n", s.id.c_str(), src->id.c_str(), worst, crops.size());
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no --split-prelu embedder in the manifest";
}

// `--fpir` turns into a threshold through the embedder's own impostor
// calibration; an int8 entry without one falls back to the fixed FAR
// threshold, which on the LFW open set gave fr_feature-int8 an FPIR of 57% at
// 1000 people (BENCHMARKS.md, int8 second pass). So an int8 copy of a
// calibrated float model must carry a calibration, and, since its embeddings
// match the float ones (cosine >= 0.99), one close to the float model's: the
// measured FPIR-1% thresholds differed by at most 0.002 (fr_feature-int8 and
// mobilefacenet_192-int8); 0.02 is about 1/10 of the 1-to-1000-people spread.
TEST(Int8, EmbeddersCarryAnOpenSetCalibrationCloseToTheirFloatModel) {
  int checked = 0;
  for (const ModelSpec* q : int8_models(ModelTask::kEmbedder)) {
    const ModelSpec* f = manifest().find(q->quantize_from);
    ASSERT_NE(f, nullptr) << q->id;
    if (f->open_set_calibration.empty()) continue;  // nothing to carry over
    ++checked;
    ASSERT_FALSE(q->open_set_calibration.empty())
        << q->id << " has no open_set_calibration though " << f->id << " has one: measure it with `facerec eval "
        << "calibrate --embedder " << q->id << "` and bench/insert_calibration.py";
    EXPECT_TRUE(q->open_set_calibration.validate().ok()) << q->id;
    for (int64_t people : {1, 10, 100, 1000}) {
      const float t8 = q->open_set_calibration.threshold_for(0.01, people);
      const float t32 = f->open_set_calibration.threshold_for(0.01, people);
      EXPECT_NEAR(t8, t32, 0.02f) << q->id << " vs " << f->id << ", FPIR 1%, " << people << " people";
    }
  }
  if (checked == 0) GTEST_SKIP() << "no int8 embedder of a calibrated float model in the manifest";
}

#if defined(__x86_64__) && defined(__linux__)
TEST(Int8, OnnxRuntimeHoldsAmxTilePermission) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24))) GTEST_SKIP() << "no AMX on this CPU";
  (void)runtime();  // creating the Ort::Env initialises MLAS, which asks for it
  unsigned long bits = 0;
  ASSERT_EQ(syscall(SYS_arch_prctl, 0x1022 /* ARCH_GET_XCOMP_PERM */, &bits), 0);
  EXPECT_TRUE(bits & (1ul << 18)) << "XTILEDATA not permitted: ONNX Runtime's int8 kernels cannot use AMX";
}
#endif

}  // namespace
}  // namespace facerec
