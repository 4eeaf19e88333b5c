#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <onnxruntime_cxx_api.h>

#include "facerec/runtime.h"
#include "runtime/onnx_batch.h"

namespace facerec {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Status InferenceSession::run_into(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs) const {
  FACEREC_ASSIGN_OR_RETURN(outputs, run(inputs));
  return Status::Ok();
}

namespace {

std::vector<int64_t> shape_of(const Ort::TypeInfo& info) {
  return info.GetTensorTypeAndShapeInfo().GetShape();
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kNotFound, "cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return Status(ErrorCode::kIo, "error reading " + path);
  return bytes;
}

// Flushes denormal floats to zero (x86 MXCSR FTZ|DAZ) on the calling thread
// for its lifetime, restoring the caller's mode afterwards. The session option
// session.set_denormal_as_zero covers ORT's pool threads, but the thread that
// calls Run() computes too, and ORT sets its flags only for the first session
// of a process. fr_feature's activations go denormal: flushing them makes it
// ~5x faster (97 -> 19 ms per face) with embeddings unchanged (cosine
// 0.9999999; bench/core_bench.cc checks it on every run).
class ScopedDenormalsAsZero {
 public:
#if defined(__x86_64__) || defined(__i386__)
  explicit ScopedDenormalsAsZero(bool on) : on_(on), saved_(_mm_getcsr()) {
    if (on_) _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
  }
  ~ScopedDenormalsAsZero() {
    if (on_) _mm_setcsr(saved_);
  }

 private:
  bool on_;
  unsigned saved_;
#else
  explicit ScopedDenormalsAsZero(bool) {}
#endif
};

class OrtSession final : public InferenceSession {
 public:
  // batch_is_dynamic: the runtime declared dim 0 dynamic (dynamic_batch), so
  // every output's dim 0 is the inputs' batch. out_bindable: see bind_output().
  OrtSession(Ort::Session session, std::vector<TensorInfo> in, std::vector<TensorInfo> out,
             std::vector<bool> out_bindable, bool denormals_as_zero, bool batch_is_dynamic)
      : session_(std::move(session)), inputs_(std::move(in)), outputs_(std::move(out)),
        out_bindable_(std::move(out_bindable)), denormals_as_zero_(denormals_as_zero),
        batch_is_dynamic_(batch_is_dynamic),
        mem_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    for (auto& t : inputs_) in_names_.push_back(t.name.c_str());
    for (auto& t : outputs_) out_names_.push_back(t.name.c_str());
  }
  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }

  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs) const override {
    std::vector<Tensor> out;
    FACEREC_RETURN_IF_ERROR(run_into(inputs, out));
    return out;
  }

  Status run_into(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs) const override {
    if (inputs.size() != inputs_.size())
      return Status(ErrorCode::kInvalidArgument, "model expects " + std::to_string(inputs_.size()) +
                                                     " inputs, got " + std::to_string(inputs.size()));
    try {
      std::vector<Ort::Value> in;
      in.reserve(inputs.size());
      for (const auto& v : inputs) {
        int64_t n = 1;
        for (auto d : v.shape) n *= d;
        in.push_back(Ort::Value::CreateTensor<float>(mem_, const_cast<float*>(v.data), static_cast<size_t>(n),
                                                     v.shape.data(), v.shape.size()));
      }
      outputs.resize(outputs_.size());
      ScopedDenormalsAsZero flush(denormals_as_zero_);
      // Outputs whose shape is known before the run are bound to the caller's
      // buffers (ONNX Runtime writes into them, no copy); the others stay
      // empty, ONNX Runtime allocates them and they are copied below.
      std::vector<Ort::Value> out;
      out.reserve(outputs.size());
      std::vector<bool> bound(outputs.size());
      for (size_t i = 0; i < outputs.size(); ++i) {
        bound[i] = bind_output(i, inputs, outputs[i]);
        Tensor& t = outputs[i];
        out.push_back(bound[i] ? Ort::Value::CreateTensor<float>(mem_, t.data.data(), t.data.size(),
                                                                  t.shape.data(), t.shape.size())
                               : Ort::Value(nullptr));
      }
      session_.Run(Ort::RunOptions{nullptr}, in_names_.data(), in.data(), in.size(), out_names_.data(), out.data(),
                   out.size());
      for (size_t i = 0; i < out.size(); ++i) {
        if (bound[i]) continue;
        auto info = out[i].GetTensorTypeAndShapeInfo();
        if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
          return Status(ErrorCode::kModel, "output '" + outputs_[i].name + "' is not float32");
        outputs[i].shape = info.GetShape();
        const float* p = out[i].GetTensorData<float>();
        outputs[i].data.assign(p, p + info.GetElementCount());
      }
      return Status::Ok();
    } catch (const Ort::Exception& e) {
      // ONNX Runtime's arena reports an allocation failure (e.g. under a
      // memory limit) as a kernel error; say what it is.
      const std::string what = e.what();
      if (what.find("Failed to allocate memory") != std::string::npos)
        return Status(ErrorCode::kModel, "inference failed: out of memory (" + what + ")");
      return Status(ErrorCode::kModel, "inference failed: " + what);
    }
  }

 private:
  // Sets output i's shape and sizes its buffer when the shape is known before
  // the run: every dim fixed in the model (ONNX Runtime reports a declared dim
  // that contradicts its own shape inference as -1), or a dynamic dim 0 that
  // the runtime itself declared (then it is the first input's batch). False
  // for outputs that cannot be bound (out_bindable_) or whose shape is open:
  // ONNX Runtime then allocates, and run_into copies.
  bool bind_output(size_t i, const std::vector<TensorView>& inputs, Tensor& t) const {
    if (!out_bindable_[i]) return false;
    const auto& declared = outputs_[i].shape;
    for (size_t d = 0; d < declared.size(); ++d) {
      if (declared[d] > 0) continue;
      if (!(d == 0 && batch_is_dynamic_ && !inputs.empty() && !inputs[0].shape.empty())) return false;
    }
    t.shape = declared;
    if (t.shape[0] <= 0) t.shape[0] = inputs[0].shape[0];
    const int64_t n = t.numel();
    if (n < 0) return false;
    t.data.resize(static_cast<size_t>(n));
    return true;
  }

  mutable Ort::Session session_;  // Run is const-safe per ORT's thread-safety guarantee
  std::vector<TensorInfo> inputs_, outputs_;
  std::vector<bool> out_bindable_;
  std::vector<const char*> in_names_, out_names_;
  bool denormals_as_zero_;
  bool batch_is_dynamic_;
  Ort::MemoryInfo mem_;  // describes caller memory only; created once, read by every run
};

class OrtRuntime final : public Runtime {
 public:
  // Each session keeps its own intra-op pool (ORT's Env is a process-wide
  // singleton, so a global pool would tie every Runtime in a process to the
  // first one's settings). Pool threads do not spin by default: on 2 cores a
  // spinning detector pool starves the embedder that runs right after it
  // (bench: end to end 55 ms spinning vs 13 ms not, BENCHMARKS.md).
  explicit OrtRuntime(const RuntimeOptions& opt)
      : env_(ORT_LOGGING_LEVEL_ERROR, "facerec"), denormals_as_zero_(opt.denormals_as_zero) {
    pool_threads_ = opt.intra_op_threads > 0 ? opt.intra_op_threads
                                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    opts_.SetIntraOpNumThreads(opt.intra_op_threads);
    opts_.SetInterOpNumThreads(1);
    opts_.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    opts_.AddConfigEntry("session.intra_op.allow_spinning", opt.allow_spinning ? "1" : "0");
    if (opt.denormals_as_zero) opts_.AddConfigEntry("session.set_denormal_as_zero", "1");
  }

  Result<std::unique_ptr<InferenceSession>> load(const std::string& path, const SessionConfig& config) override {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return Status(ErrorCode::kNotFound, "model file not found: " + path);
    if (!std::filesystem::is_regular_file(path, ec))
      return Status(ErrorCode::kModel, "model path " + path + " is not a regular file (a directory or a device?)");
    // ONNX Runtime starts the session's intra-op pool in a way that aborts
    // the process (std::system_error escaping a thread) when the OS refuses a
    // thread. Find out first, with threads we can catch.
    if (Status s = can_start_threads(pool_threads_ - 1); !s.ok()) return s;
    try {
      Ort::SessionOptions opts = opts_.Clone();
      opts.SetGraphOptimizationLevel(static_cast<GraphOptimizationLevel>(config.graph_optimization));
      std::optional<std::string> batched;
      if (config.dynamic_batch) {
        // Only when the rewrite succeeds; otherwise the model loads as it is.
        auto bytes = read_file(path);
        if (bytes.ok()) {
          auto b = runtime_internal::make_batch_dynamic(*bytes);
          if (b.ok()) batched = std::move(b).value();
        }
      }
      Ort::Session s = batched ? Ort::Session(env_, batched->data(), batched->size(), opts)
                               : Ort::Session(env_, path.c_str(), opts);
      Ort::AllocatorWithDefaultOptions alloc;
      std::vector<TensorInfo> in, out;
      std::vector<bool> out_bindable;
      for (size_t i = 0; i < s.GetInputCount(); ++i)
        in.push_back({s.GetInputNameAllocated(i, alloc).get(), shape_of(s.GetInputTypeInfo(i))});
      for (size_t i = 0; i < s.GetOutputCount(); ++i) {
        auto info = s.GetOutputTypeInfo(i);
        out.push_back({s.GetOutputNameAllocated(i, alloc).get(), shape_of(info)});
        // A pre-bound output must be a float tensor of known rank (ONNX
        // Runtime reports an unknown rank as no dims, like a scalar's), and not
        // also a graph input: ONNX Runtime returns such an output as the input
        // itself and never writes the bound buffer (the int8 quantiser's
        // calibration models list their input among the outputs).
        const bool is_input =
            std::any_of(in.begin(), in.end(), [&](const TensorInfo& t) { return t.name == out.back().name; });
        out_bindable.push_back(info.GetONNXType() == ONNX_TYPE_TENSOR &&
                               info.GetTensorTypeAndShapeInfo().GetElementType() ==
                                   ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT &&
                               !out.back().shape.empty() && !is_input);
      }
      return std::unique_ptr<InferenceSession>(new OrtSession(std::move(s), std::move(in), std::move(out),
                                                              std::move(out_bindable), denormals_as_zero_,
                                                              batched.has_value()));
    } catch (const Ort::Exception& e) {
      if (std::string(e.what()).find("bad_alloc") != std::string::npos)
        return Status(ErrorCode::kModel, "out of memory loading model " + path);
      return Status(ErrorCode::kModel, "cannot load model " + path + " (not a valid ONNX model?): " + e.what());
    } catch (const std::bad_alloc&) {
      return Status(ErrorCode::kModel, "out of memory loading model " + path);
    } catch (const std::system_error& e) {
      return Status(ErrorCode::kModel, "cannot start ONNX Runtime's threads for " + path + ": " + e.what() +
                                           " (a process/thread limit? lower --threads)");
    }
  }
  std::string name() const override { return std::string("onnxruntime ") + Ort::GetVersionString(); }

 private:
  Ort::Env env_;
  Ort::SessionOptions opts_;
  bool denormals_as_zero_;
  int pool_threads_ = 1;
};

}  // namespace

Status can_start_threads(int n) {
  if (n <= 0) return Status::Ok();
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::thread> started;
  started.reserve(static_cast<size_t>(n));
  Status result = Status::Ok();
  try {
    for (int i = 0; i < n; ++i)
      started.emplace_back([&] {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return release; });
      });
  } catch (const std::system_error& e) {
    result = Status(ErrorCode::kInvalidArgument,
                    "cannot start " + std::to_string(n + 1) + " inference threads (the OS refused thread " +
                        std::to_string(started.size() + 1) + ": " + e.what() +
                        "; a thread or memory limit: ulimit -u, ulimit -v, a pids cgroup?): lower --threads");
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : started) t.join();
  return result;
}

Result<std::unique_ptr<Runtime>> create_onnxruntime(const RuntimeOptions& options) {
  if (options.intra_op_threads < 0 || options.intra_op_threads > kMaxIntraOpThreads)
    return Status(ErrorCode::kInvalidArgument, "threads must be within 0.." + std::to_string(kMaxIntraOpThreads) +
                                                   " (0: one per core), not " + std::to_string(options.intra_op_threads));
  try {
    return std::unique_ptr<Runtime>(new OrtRuntime(options));
  } catch (const Ort::Exception& e) {
    if (std::string(e.what()).find("bad_alloc") != std::string::npos)
      return Status(ErrorCode::kModel, "out of memory starting ONNX Runtime");
    return Status(ErrorCode::kModel, std::string("cannot start ONNX Runtime: ") + e.what());
  } catch (const std::system_error& e) {
    return Status(ErrorCode::kModel, std::string("cannot start ONNX Runtime: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kModel, "out of memory starting ONNX Runtime");
  }
}

}  // namespace facerec
