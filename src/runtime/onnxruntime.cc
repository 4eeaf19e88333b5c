#include <filesystem>
#include <mutex>

#include <onnxruntime_cxx_api.h>

#include "facerec/runtime.h"

namespace facerec {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

std::vector<int64_t> shape_of(const Ort::TypeInfo& info) {
  return info.GetTensorTypeAndShapeInfo().GetShape();
}

class OrtSession final : public InferenceSession {
 public:
  OrtSession(Ort::Session session, std::vector<TensorInfo> in, std::vector<TensorInfo> out)
      : session_(std::move(session)), inputs_(std::move(in)), outputs_(std::move(out)) {
    for (auto& t : inputs_) in_names_.push_back(t.name.c_str());
    for (auto& t : outputs_) out_names_.push_back(t.name.c_str());
  }
  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }

  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs) const override {
    if (inputs.size() != inputs_.size())
      return Status(ErrorCode::kInvalidArgument, "model expects " + std::to_string(inputs_.size()) +
                                                     " inputs, got " + std::to_string(inputs.size()));
    try {
      auto mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
      std::vector<Ort::Value> in;
      in.reserve(inputs.size());
      for (const auto& v : inputs) {
        int64_t n = 1;
        for (auto d : v.shape) n *= d;
        in.push_back(Ort::Value::CreateTensor<float>(mem, const_cast<float*>(v.data), static_cast<size_t>(n),
                                                     v.shape.data(), v.shape.size()));
      }
      auto out = session_.Run(Ort::RunOptions{nullptr}, in_names_.data(), in.data(), in.size(),
                              out_names_.data(), out_names_.size());
      std::vector<Tensor> result(out.size());
      for (size_t i = 0; i < out.size(); ++i) {
        auto info = out[i].GetTensorTypeAndShapeInfo();
        if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
          return Status(ErrorCode::kModel, "output '" + outputs_[i].name + "' is not float32");
        result[i].shape = info.GetShape();
        const float* p = out[i].GetTensorData<float>();
        result[i].data.assign(p, p + info.GetElementCount());
      }
      return result;
    } catch (const Ort::Exception& e) {
      return Status(ErrorCode::kModel, std::string("inference failed: ") + e.what());
    }
  }

 private:
  mutable Ort::Session session_;  // Run is const-safe per ORT's thread-safety guarantee
  std::vector<TensorInfo> inputs_, outputs_;
  std::vector<const char*> in_names_, out_names_;
};

class OrtRuntime final : public Runtime {
 public:
  // One thread pool for every session of this runtime: with a pool per
  // session, the detector's threads keep spinning while the embedder runs and
  // the two fight over the cores (measured: the embedder slowed ~10x on 2 cores).
  explicit OrtRuntime(const RuntimeOptions& opt) : env_(make_env(opt)) {
    opts_.DisablePerSessionThreads();
    opts_.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  }
  static Ort::Env make_env(const RuntimeOptions& opt) {
    Ort::ThreadingOptions t;
    t.SetGlobalIntraOpNumThreads(opt.intra_op_threads);
    t.SetGlobalInterOpNumThreads(1);
    return Ort::Env(t, ORT_LOGGING_LEVEL_ERROR, "facerec");
  }

  Result<std::unique_ptr<InferenceSession>> load(const std::string& path, const SessionConfig& config) override {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      return Status(ErrorCode::kNotFound, "model file not found: " + path);
    try {
      Ort::SessionOptions opts = opts_.Clone();
      opts.SetGraphOptimizationLevel(static_cast<GraphOptimizationLevel>(config.graph_optimization));
      Ort::Session s(env_, path.c_str(), opts);
      Ort::AllocatorWithDefaultOptions alloc;
      std::vector<TensorInfo> in, out;
      for (size_t i = 0; i < s.GetInputCount(); ++i)
        in.push_back({s.GetInputNameAllocated(i, alloc).get(), shape_of(s.GetInputTypeInfo(i))});
      for (size_t i = 0; i < s.GetOutputCount(); ++i)
        out.push_back({s.GetOutputNameAllocated(i, alloc).get(), shape_of(s.GetOutputTypeInfo(i))});
      return std::unique_ptr<InferenceSession>(new OrtSession(std::move(s), std::move(in), std::move(out)));
    } catch (const Ort::Exception& e) {
      return Status(ErrorCode::kModel, "cannot load model " + path + " (not a valid ONNX model?): " + e.what());
    }
  }
  std::string name() const override { return std::string("onnxruntime ") + Ort::GetVersionString(); }

 private:
  Ort::Env env_;
  Ort::SessionOptions opts_;
};

}  // namespace

Result<std::unique_ptr<Runtime>> create_onnxruntime(const RuntimeOptions& options) {
  try {
    return std::unique_ptr<Runtime>(new OrtRuntime(options));
  } catch (const Ort::Exception& e) {
    return Status(ErrorCode::kModel, std::string("cannot start ONNX Runtime: ") + e.what());
  }
}

}  // namespace facerec
