#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "facerec/runtime.h"
#include "test_support.h"

namespace facerec {
namespace {

TEST(OnnxRuntime, LoadsRealModelAndRunsIt) {
  FACEREC_REQUIRE_SHARED();
  auto rt = create_onnxruntime();
  ASSERT_TRUE(rt.ok()) << rt.status().to_string();
  auto s = (*rt)->load(testing::shared_dir() + "/models/mobilefacenet_128.onnx");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ((*s)->inputs().size(), 1u);
  std::vector<float> x(2 * 3 * 112 * 112, 0.1f);
  auto out = (*s)->run({TensorView{x.data(), {2, 3, 112, 112}}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{2, 128}));
  // Both rows of a batch of identical inputs give identical outputs.
  for (int i = 0; i < 128; ++i) EXPECT_FLOAT_EQ((*out)[0].data[i], (*out)[0].data[128 + i]);
}

TEST(OnnxRuntime, CorruptModelIsAClearError) {
  auto rt = create_onnxruntime();
  ASSERT_TRUE(rt.ok());
  std::string path = testing::temp_dir("ort") + "/bad.onnx";
  std::ofstream(path) << "this is not an onnx file";
  auto s = (*rt)->load(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kModel);
  EXPECT_NE(s.status().message().find("bad.onnx"), std::string::npos);
  auto missing = (*rt)->load("/nonexistent/model.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace facerec
