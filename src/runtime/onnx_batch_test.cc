// make_batch_dynamic() and run_into() on the real fr_landmark: the rewritten
// model loads, takes a batch, and gives per item what batch-1 runs give.
#include "runtime/onnx_batch.h"

#include <fstream>
#include <iterator>
#include <random>

#include <gtest/gtest.h>

#include "facerec/models.h"
#include "facerec/runtime.h"
#include "test_support.h"

namespace facerec {
namespace {

using runtime_internal::make_batch_dynamic;
using testing::manifest;
using testing::runtime;

const ModelSpec* usable(const char* id) {
  const ModelSpec* m = manifest().find(id);
  Status st = m ? verify_model_file(*m) : Status(ErrorCode::kNotFound, "not in the manifest");
  if (st.ok()) return m;
  fprintf(stderr, "\n!!!!! SKIPPING: model %s is not usable (%s). Run: facerec models fetch %s. "
                  "This test did NOT run. !!!!!\n\n", id, st.to_string().c_str(), id);
  return nullptr;
}

std::string bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(BatchDynamic, RefusesWhatIsNotAModel) {
  EXPECT_FALSE(make_batch_dynamic("").ok());
  EXPECT_FALSE(make_batch_dynamic("not a protobuf at all \xff\xff\xff").ok());
  // A well-formed protobuf with no graph (field 1, ir_version = 7).
  EXPECT_FALSE(make_batch_dynamic(std::string("\x08\x07", 2)).ok());
}

TEST(BatchDynamic, FrLandmarkRunsBatchedAsItRunsAlone) {
  const ModelSpec* spec = usable("fr_landmark");
  if (!spec) GTEST_SKIP() << "fr_landmark absent: test NOT run";
  const std::string model = bytes_of(spec->path);
  auto patched = make_batch_dynamic(model);
  ASSERT_TRUE(patched.ok()) << patched.status().to_string();
  EXPECT_NE(*patched, model);
  // Applying it twice is refused (dim 0 is no longer the value 1).
  EXPECT_FALSE(make_batch_dynamic(*patched).ok());
  // A truncated model is refused, not read past its end.
  EXPECT_FALSE(make_batch_dynamic(model.substr(0, model.size() / 2)).ok());

  SessionConfig dyn = spec->session;
  dyn.dynamic_batch = true;
  auto batched = runtime().load(spec->path, dyn);
  auto single = runtime().load(spec->path, spec->session);
  ASSERT_TRUE(batched.ok() && single.ok());
  EXPECT_EQ((*batched)->inputs()[0].shape[0], -1);
  EXPECT_EQ((*batched)->outputs()[0].shape[0], -1);
  EXPECT_EQ((*single)->inputs()[0].shape[0], 1);

  const int n = 5, plane = 64 * 64;
  std::vector<float> in(static_cast<size_t>(n) * plane);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : in) v = u(rng);
  std::vector<Tensor> out;
  ASSERT_TRUE((*batched)->run_into({TensorView{in.data(), {n, 1, 64, 64}}}, out).ok());
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape, (std::vector<int64_t>{n, 136}));
  const float* first_buffer = out[0].data.data();
  for (int i = 0; i < n; ++i) {
    auto one = (*single)->run({TensorView{in.data() + static_cast<size_t>(i) * plane, {1, 1, 64, 64}}});
    ASSERT_TRUE(one.ok()) << one.status().to_string();
    for (int k = 0; k < 136; ++k) EXPECT_NEAR(out[0].data[static_cast<size_t>(i) * 136 + k], (*one)[0].data[k], 1e-5f);
  }
  // The same call again reuses the caller's buffer and gives the same values.
  const std::vector<float> before = out[0].data;
  ASSERT_TRUE((*batched)->run_into({TensorView{in.data(), {n, 1, 64, 64}}}, out).ok());
  EXPECT_EQ(out[0].data.data(), first_buffer);
  EXPECT_EQ(out[0].data, before);
  // A smaller batch into the same outputs: shape follows, buffer kept.
  ASSERT_TRUE((*batched)->run_into({TensorView{in.data(), {2, 1, 64, 64}}}, out).ok());
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 136}));
  EXPECT_EQ(out[0].data.size(), 2u * 136);
  EXPECT_EQ(out[0].data.data(), first_buffer);
  for (size_t k = 0; k < 2 * 136; ++k) EXPECT_EQ(out[0].data[k], before[k]);
}

TEST(RunInto, MatchesRunForAFixedShapeModel) {
  const ModelSpec* spec = usable("fr_detect");
  if (!spec) GTEST_SKIP() << "fr_detect absent: test NOT run";
  auto s = runtime().load(spec->path, spec->session);
  ASSERT_TRUE(s.ok());
  std::vector<float> in(3 * 240 * 320);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& v : in) v = u(rng);
  const std::vector<TensorView> views = {TensorView{in.data(), {1, 3, 240, 320}}};
  auto ref = (*s)->run(views);
  ASSERT_TRUE(ref.ok());
  std::vector<Tensor> out;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE((*s)->run_into(views, out).ok());
    ASSERT_EQ(out.size(), ref->size());
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_EQ(out[i].shape, (*ref)[i].shape);
      EXPECT_EQ(out[i].data, (*ref)[i].data);
    }
  }
  // A wrong input count is an error, not a crash.
  EXPECT_EQ((*s)->run_into({}, out).code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace facerec
