// model_speed: forward-pass time of ONNX networks through facerec's engine
// (create_onnxruntime + InferenceSession::run, default RuntimeOptions, as the
// CLI uses them) next to the single-precision GEMM peak of this machine
// (OpenBLAS cblas_sgemm), measured in the same process, interleaved.
//
// Used by BENCHMARKS.md "Speed against the hardware" and "Speed against the
// original stack" (bench/run_speed.sh drives it; see bench/README.md).
//
//   build/bench/model_speed [--models all|none|id,id,...] [--onnx NAME=PATH:INPUT.raw:1x3xHxW]...
//       [--rounds 5] [--reps 5] [--gemm 2048] [--gemm-reps 3] [--json out.json] [--dump DIR] [--threads N]
//
// Manifest models get the blob they meet in the pipeline (the library's
// fit_image + to_blob, at the manifest input size; 640x640 for yunet): detectors
// from ../shared/data/crowd/insightface_t1.jpg, landmark and embedder networks
// from ../shared/data/celeb5/train/Madonna/6.jpg (not aligned: the forward time
// does not depend on the content, and denormals are flushed as in the CLI).
// --onnx networks read their float32 input from a raw file (written by
// bench/torch_original.py so that PyTorch and facerec see the same tensor).
//
// Each round runs the GEMM peak, then every network `reps` times in a shuffled
// order; a warm-up run per network precedes the rounds. Medians and minima
// over all rounds are printed and written as JSON with every sample.
//
// Besides wall-clock time, every run records the CPU time of the calling
// thread (CLOCK_THREAD_CPUTIME_ID). With --threads 1 (ONNX Runtime then runs
// each network on the calling thread) and OPENBLAS_NUM_THREADS=1, that is the
// whole computation's CPU time, which waiting for a core on a loaded machine
// does not inflate: the "cpu" figures are the ones to compare there.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "facerec/detect.h"
#include "facerec/image.h"
#include "facerec/models.h"
#include "facerec/runtime.h"
#include "python_converter.h"

using namespace facerec;
using clk = std::chrono::steady_clock;

namespace {

struct Net {
  std::string name, path, kind;  // kind: manifest | onnx
  std::vector<float> input;
  std::vector<int64_t> shape;
  std::unique_ptr<InferenceSession> session;
  std::vector<double> ms;
  std::vector<double> cpu_ms;  // CPU time of the calling thread per run
};

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "model_speed: %s\n", msg.c_str());
  std::exit(1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, sep);)
    if (!t.empty()) out.push_back(t);
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string shared_dir() {
  if (const char* s = std::getenv("FACEREC_SHARED")) return s;
  return std::string(FACEREC_SOURCE_DIR) + "/../shared";
}

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string models = "all", json_out, dump_dir;
  std::vector<std::string> onnx_specs;
  int rounds = 5, reps = 5, gemm_n = 2048, gemm_reps = 3, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--models") models = next();
    else if (a == "--onnx") onnx_specs.push_back(next());
    else if (a == "--rounds") rounds = std::stoi(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--gemm") gemm_n = std::stoi(next());
    else if (a == "--gemm-reps") gemm_reps = std::stoi(next());
    else if (a == "--json") json_out = next();
    else if (a == "--dump") dump_dir = next();
    else if (a == "--threads") threads = std::stoi(next());
    else die("unknown argument " + a);
  }

  RuntimeOptions ro;
  ro.intra_op_threads = threads;
  auto rt = create_onnxruntime(ro);
  if (!rt.ok()) die(rt.status().to_string());
  std::vector<Net> nets;

  if (models != "none") {
    auto man = Manifest::load(Manifest::default_path());
    if (!man.ok()) die(man.status().to_string());
    auto photo = load_image(shared_dir() + "/data/crowd/insightface_t1.jpg");
    auto face = load_image(shared_dir() + "/data/celeb5/train/Madonna/6.jpg");
    if (!photo.ok() || !face.ok()) die("test photos missing under " + shared_dir() + "/data");
    std::vector<std::string> ids;
    if (models == "all")
      for (const auto& m : man->models()) ids.push_back(m.id);
    else
      ids = split(models, ',');
    for (const auto& id : ids) {
      const ModelSpec* s = man->find(id);
      if (!s) die("no model " + id + " in the manifest");
      facerec::cli::PythonModelConverter converter;
      FetchOptions fetch;
      fetch.converter = &converter;
      if (auto st = fetch_model(*s, fetch); !st.ok()) {
        std::fprintf(stderr, "model_speed: %s skipped: %s\n", id.c_str(), st.to_string().c_str());
        continue;
      }
      Net n;
      n.name = id;
      n.path = s->path;
      n.kind = "manifest";
      const int w = s->input.width > 0 ? s->input.width : 640, h = s->input.height > 0 ? s->input.height : 640;
      const int c = s->input.channels == "GRAY" ? 1 : 3;
      cv::Mat fitted;
      auto lb = fit_image(s->task == ModelTask::kDetector ? *photo : *face, w, h, s->input.resize, s->input.pad_value,
                          fitted);
      if (!lb.ok()) die(lb.status().to_string());
      n.input.resize(static_cast<size_t>(c) * w * h);
      if (Status st = to_blob(fitted, s->input, n.input.data()); !st.ok()) die(st.to_string());
      n.shape = {1, c, h, w};
      auto sess = (*rt)->load(s->path, s->session);
      if (!sess.ok()) die(sess.status().to_string());
      n.session = std::move(*sess);
      nets.push_back(std::move(n));
    }
  }
  for (const auto& spec : onnx_specs) {
    // NAME=PATH:INPUT.raw:1x3xHxW
    const auto eq = spec.find('=');
    if (eq == std::string::npos) die("--onnx wants NAME=PATH:INPUT.raw:1x3xHxW");
    auto parts = split(spec.substr(eq + 1), ':');
    if (parts.size() != 3) die("--onnx wants NAME=PATH:INPUT.raw:1x3xHxW");
    Net n;
    n.name = spec.substr(0, eq);
    n.path = parts[0];
    n.kind = "onnx";
    size_t numel = 1;
    for (const auto& d : split(parts[2], 'x')) {
      n.shape.push_back(std::stoll(d));
      numel *= static_cast<size_t>(n.shape.back());
    }
    const std::string raw = read_file(parts[1]);
    if (raw.size() != numel * sizeof(float)) die(parts[1] + ": size does not match " + parts[2]);
    n.input.resize(numel);
    std::memcpy(n.input.data(), raw.data(), raw.size());
    auto sess = (*rt)->load(n.path);
    if (!sess.ok()) die(sess.status().to_string());
    n.session = std::move(*sess);
    nets.push_back(std::move(n));
  }

  // Warm-up: ORT allocates its buffers on the first run. With --dump, each
  // --onnx network's outputs are written as DIR/<name>.out<k>.raw (float32), so
  // that bench/torch_original.py --check can compare them with PyTorch's.
  for (auto& n : nets) {
    auto r = n.session->run({TensorView{n.input.data(), n.shape}});
    if (!r.ok()) die(n.name + ": " + r.status().to_string());
    if (!dump_dir.empty() && n.kind == "onnx")
      for (size_t k = 0; k < r->size(); ++k) {
        std::string file = n.name;
        std::replace(file.begin(), file.end(), ':', '_');
        std::ofstream o(dump_dir + "/" + file + ".out" + std::to_string(k) + ".raw", std::ios::binary);
        o.write(reinterpret_cast<const char*>((*r)[k].data.data()),
                static_cast<std::streamsize>((*r)[k].data.size() * sizeof(float)));
      }
  }

  // GEMM peak: C = A * B, n x n x n, 2 n^3 flops, OpenBLAS's own threads (2 here).
  const size_t gn = static_cast<size_t>(gemm_n);
  std::vector<float> A(gn * gn), B(gn * gn), C(gn * gn);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  for (auto& v : A) v = U(rng);
  for (auto& v : B) v = U(rng);
  std::vector<double> gemm_cpu_gflops;  // over the calling thread's CPU time
  auto gemm_once = [&] {
    const auto t0 = clk::now();
    const double c0 = thread_cpu_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, gemm_n, gemm_n, gemm_n, 1.f, A.data(), gemm_n, B.data(),
                gemm_n, 0.f, C.data(), gemm_n);
    gemm_cpu_gflops.push_back(2.0 * gn * gn * gn / ((thread_cpu_ms() - c0) / 1e3) / 1e9);
    return std::chrono::duration<double>(clk::now() - t0).count();
  };
  gemm_once();  // warm-up
  gemm_cpu_gflops.clear();
  std::vector<double> gemm_gflops;

  std::vector<size_t> order(nets.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < gemm_reps; ++k) gemm_gflops.push_back(2.0 * gn * gn * gn / gemm_once() / 1e9);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      Net& n = nets[i];
      for (int k = 0; k < reps; ++k) {
        const auto t0 = clk::now();
        const double c0 = thread_cpu_ms();
        auto out = n.session->run({TensorView{n.input.data(), n.shape}});
        const double cpu = thread_cpu_ms() - c0;
        const double ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
        if (!out.ok()) die(n.name + ": " + out.status().to_string());
        n.ms.push_back(ms);
        n.cpu_ms.push_back(cpu);
      }
    }
  }

  double la[3] = {0, 0, 0};
  if (getloadavg(la, 3) < 0) la[0] = la[1] = la[2] = -1;
  nlohmann::json j;
  j["runtime"] = (*rt)->name();
  j["gemm"] = {{"n", gemm_n}, {"gflops", gemm_gflops}, {"median", median(gemm_gflops)},
               {"max", *std::max_element(gemm_gflops.begin(), gemm_gflops.end())},
               {"cpu_gflops", gemm_cpu_gflops}, {"cpu_median", median(gemm_cpu_gflops)}};
  j["intra_op_threads"] = threads;
  j["loadavg_after"] = {la[0], la[1], la[2]};
  std::printf("GEMM %dx%dx%d (OpenBLAS sgemm): median %.1f, best %.1f GFLOP/s over %zu runs (%.1f over the calling "
              "thread's CPU time)\n", gemm_n, gemm_n, gemm_n, median(gemm_gflops),
              *std::max_element(gemm_gflops.begin(), gemm_gflops.end()), gemm_gflops.size(), median(gemm_cpu_gflops));
  for (const auto& n : nets) {
    const double med = median(n.ms), best = *std::min_element(n.ms.begin(), n.ms.end());
    const double cmed = median(n.cpu_ms), cbest = *std::min_element(n.cpu_ms.begin(), n.cpu_ms.end());
    std::printf("%-26s %-8s median %8.2f ms  fastest %8.2f ms  thread CPU median %8.2f ms  (%zu runs)\n",
                n.name.c_str(), n.kind.c_str(), med, best, cmed, n.ms.size());
    j["nets"][n.name] = {{"path", n.path}, {"kind", n.kind}, {"shape", n.shape}, {"ms", n.ms}, {"median_ms", med},
                         {"min_ms", best}, {"cpu_ms", n.cpu_ms}, {"median_cpu_ms", cmed}, {"min_cpu_ms", cbest}};
  }
  std::printf("load average after: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(1) << "\n";
  return 0;
}
