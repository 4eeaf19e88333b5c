// The one inference interface. Every network (detector, landmarks, embedder)
// runs through InferenceSession; OnnxRuntime is the production implementation,
// and tests may substitute their own.
//
// Ownership and threads: a Runtime owns the process-wide engine state (for ONNX
// Runtime, the Ort::Env) and must outlive every session it loaded. A loaded
// InferenceSession is immutable; run() is safe to call from several threads at
// once (ONNX Runtime guarantees this for Session::Run).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "facerec/status.h"

namespace facerec {

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // -1 for a dynamic dimension
};

// A float32 input that the caller owns for the duration of run().
struct TensorView {
  const float* data = nullptr;
  std::vector<int64_t> shape;
};

// A float32 output, owned.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  int64_t numel() const;
};

class InferenceSession {
 public:
  virtual ~InferenceSession() = default;
  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;
  // Runs the network on inputs given in the order of inputs(), and returns
  // every output in the order of outputs(). Shapes must be concrete.
  virtual Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs) const = 0;
  // The same as run(), into `outputs` (resized to outputs().size(), each
  // Tensor's shape and data replaced). The Tensors' buffers are reused: a
  // caller that keeps `outputs` between calls (one per thread) allocates no
  // output memory once they are large enough, and ONNX Runtime writes straight
  // into them when the output shapes are known before the run. On an error
  // the contents of `outputs` are unspecified. The default forwards to run().
  virtual Status run_into(const std::vector<TensorView>& inputs, std::vector<Tensor>& outputs) const;
};

// Per-model settings for load().
struct SessionConfig {
  // Graph optimisation level: 99 = all (ONNX Runtime's default here), 2 =
  // extended (no layout transforms). Some networks run slower with layout
  // transforms; the manifest says so per model (ModelSpec::graph_optimization).
  int graph_optimization = 99;
  // Declare dim 0 of every input and output dynamic: for a graph exported at
  // batch 1 that computes each batch item on its own (fr_landmark), so that
  // several faces go through one run. A model that cannot be rewritten so
  // (dim 0 not 1, recorded intermediate shapes) loads as it is; inputs() tells
  // which happened (-1 in dim 0 when dynamic).
  bool dynamic_batch = false;
};

// More intra-op threads than this is a typo, not a machine: refused.
constexpr int kMaxIntraOpThreads = 1024;

struct RuntimeOptions {
  int intra_op_threads = 0;  // 0: one per core; 0..kMaxIntraOpThreads
  // Busy-wait in pool threads between parallel sections. Off: with several
  // sessions on few cores, spinning pools starve each other (BENCHMARKS.md).
  bool allow_spinning = false;
  // Flush denormal floats to zero during inference. Some networks (fr_feature)
  // produce denormals and run ~5x slower without this; results are unchanged.
  bool denormals_as_zero = true;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Loads a model file. A missing, corrupt or non-ONNX file is a kModel error
  // naming the file.
  virtual Result<std::unique_ptr<InferenceSession>> load(const std::string& path,
                                                         const SessionConfig& config = {}) = 0;
  virtual std::string name() const = 0;
};

// ONNX Runtime through its C++ API.
// Whether the OS lets this process start n more threads right now: starts
// them (each waits, then exits) and joins them. kInvalidArgument, naming the
// limit to look at, when it cannot; ok for n <= 0.
Status can_start_threads(int n);

Result<std::unique_ptr<Runtime>> create_onnxruntime(const RuntimeOptions& options = {});

}  // namespace facerec
