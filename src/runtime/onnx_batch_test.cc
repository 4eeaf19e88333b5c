// make_batch_dynamic() and run_into() on the real fr_landmark: the rewritten
// model loads, takes a batch, and gives per item what batch-1 runs give.
#include "runtime/onnx_batch.h"

#include <algorithm>
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

// A hand-encoded ONNX model (protobuf wire format, onnx.proto3's field
// numbers): x [1,4] -> Relu -> y, Flatten -> f; outputs y, f declared [1,2,2]
// (a rank that contradicts the [1,4] Flatten gives, so ONNX Runtime reports no
// shape for it) and x itself (a graph input that is also an output: the int8
// quantiser's calibration models are so).
std::string field(uint32_t number, const std::string& payload) {
  std::string out;
  auto varint = [&](uint64_t v) {
    for (; v >= 0x80; v >>= 7) out += static_cast<char>((v & 0x7f) | 0x80);
    out += static_cast<char>(v);
  };
  varint((static_cast<uint64_t>(number) << 3) | 2);
  varint(payload.size());
  return out + payload;
}
std::string value_field(uint32_t number, uint8_t v) { return {static_cast<char>(number << 3), static_cast<char>(v)}; }
std::string tensor_info(const std::string& name, const std::vector<uint8_t>& dims) {
  std::string shape;
  for (uint8_t d : dims) shape += field(1, value_field(1, d));
  return field(1, name) + field(2, field(1, value_field(1, 1) + field(2, shape)));  // float
}
std::string input_as_output_model() {
  const std::string relu = field(1, "x") + field(2, "y") + field(4, "Relu");
  const std::string flatten = field(1, "x") + field(2, "f") + field(4, "Flatten");
  const std::string graph = field(1, relu) + field(1, flatten) + field(2, "g") + field(11, tensor_info("x", {1, 4})) +
                            field(12, tensor_info("y", {1, 4})) + field(12, tensor_info("f", {1, 2, 2})) +
                            field(12, tensor_info("x", {1, 4}));
  return value_field(1, 8) + field(8, value_field(2, 13)) + field(7, graph);  // ir 8, opset 13
}

TEST(RunInto, OutputsThatAreInputsOrOfUnknownRankAreFilled) {
  const std::string path = testing::temp_dir("run_into") + "/input_as_output.onnx";
  std::ofstream(path, std::ios::binary) << input_as_output_model();
  auto s = runtime().load(path);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ((*s)->outputs().size(), 3u);
  std::vector<Tensor> out;
  // Two runs into the same buffers: each output holds this run's values.
  for (const std::vector<float>& in : {std::vector<float>{-1, 2, -3, 4}, std::vector<float>{5, -6, 7, -8}}) {
    ASSERT_TRUE((*s)->run_into({TensorView{in.data(), {1, 4}}}, out).ok());
    ASSERT_EQ(out.size(), 3u);
    std::vector<float> relu(in);
    for (float& v : relu) v = std::max(v, 0.f);
    EXPECT_EQ(out[0].data, relu);
    EXPECT_EQ(out[1].shape, (std::vector<int64_t>{1, 4}));
    EXPECT_EQ(out[1].data, in);
    EXPECT_EQ(out[2].shape, (std::vector<int64_t>{1, 4}));
    EXPECT_EQ(out[2].data, in);
  }
}

}  // namespace
}  // namespace facerec
