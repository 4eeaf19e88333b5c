// onnx_run MODEL.onnx OUT_DIR IN0.npy [IN1.npy ...]
// onnx_run --each MODEL.onnx OUT_DIR IN0.npy [IN1.npy ...]
// onnx_run --decode IMAGE OUT.npy
//
// Runs one ONNX model through facerec's runtime (ONNX Runtime, the same
// session settings as the library) on float32 .npy inputs, and writes every
// output as OUT_DIR/<k>.npy (k = output index). Used by the TFLite importer's
// parity tests (tools/tflite_import/tests), which have no onnxruntime Python
// module. --each runs the model once per sample: every input has one leading
// axis more than the model takes ([N, ...], the same N for all), and each
// output is written stacked as [N, ...] (the int8 quantiser's calibration,
// tools/quantize, which needs a batch-1 model's activations on N faces in one
// process). --decode writes an image as uint8 [H, W, 3] RGB .npy (the tests'
// Python has no image decoder). Exit 0 ok, 1 with a message on any error.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "facerec/runtime.h"

namespace {

bool read_npy(const std::string& path, std::vector<int64_t>& shape, std::vector<float>& data, std::string& err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) { err = "cannot open " + path; return false; }
  char magic[8];
  f.read(magic, 8);
  if (!f || std::string(magic, 6) != "\x93NUMPY") { err = path + ": not a .npy file"; return false; }
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  if (!f) { err = path + ": truncated header"; return false; }
  if (header.find("'descr': '<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    err = path + ": expected little-endian float32 in C order, header " + header;
    return false;
  }
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'shape': \\(([0-9, ]*)\\)"))) { err = path + ": no shape"; return false; }
  std::stringstream ss(m[1].str());
  std::string tok;
  int64_t n = 1;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(' ') == std::string::npos) continue;
    shape.push_back(std::stoll(tok));
    n *= shape.back();
  }
  data.resize(static_cast<size_t>(n));
  f.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(n * 4));
  if (!f) { err = path + ": truncated data"; return false; }
  return true;
}

bool write_npy(const std::string& path, const std::vector<int64_t>& dims, const char* descr, const void* data,
               size_t bytes) {
  std::string shape;
  for (size_t i = 0; i < dims.size(); ++i) shape += std::to_string(dims[i]) + (dims.size() == 1 || i + 1 < dims.size() ? "," : "");
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&hlen), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  return static_cast<bool>(f);
}

bool write_npy(const std::string& path, const facerec::Tensor& t) {
  return write_npy(path, t.shape, "<f4", t.data.data(), t.data.size() * 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--decode") {
    cv::Mat bgr = cv::imread(argv[2], cv::IMREAD_COLOR);
    if (bgr.empty()) { std::cerr << "onnx_run: cannot decode " << argv[2] << "\n"; return 1; }
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    if (!write_npy(argv[3], {rgb.rows, rgb.cols, 3}, "|u1", rgb.data, rgb.total() * 3)) return 1;
    return 0;
  }
  const bool each = argc > 1 && std::string(argv[1]) == "--each";
  if (each) { ++argv; --argc; }
  if (argc < 4) {
    std::cerr << "usage: onnx_run [--each] MODEL.onnx OUT_DIR IN0.npy [IN1.npy ...]\n";
    return 1;
  }
  facerec::RuntimeOptions ro;
  ro.intra_op_threads = 1;
  auto rt = facerec::create_onnxruntime(ro);
  if (!rt.ok()) { std::cerr << "onnx_run: " << rt.status().to_string() << "\n"; return 1; }
  auto session = (*rt)->load(argv[1]);
  if (!session.ok()) { std::cerr << "onnx_run: " << session.status().to_string() << "\n"; return 1; }
  std::vector<std::vector<int64_t>> shapes(static_cast<size_t>(argc - 3));
  std::vector<std::vector<float>> datas(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::string err;
    if (!read_npy(argv[3 + i], shapes[i], datas[i], err)) { std::cerr << "onnx_run: " << err << "\n"; return 1; }
  }
  int64_t samples = 1;
  if (each) {
    samples = shapes[0].empty() ? 0 : shapes[0][0];
    for (const auto& s : shapes)
      if (s.size() < 2 || s[0] != samples) {
        std::cerr << "onnx_run: --each wants every input as [N, ...] with the same N\n";
        return 1;
      }
  }
  std::vector<facerec::Tensor> stacked;
  for (int64_t n = 0; n < samples; ++n) {
    std::vector<facerec::TensorView> views;
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (!each) { views.push_back({datas[i].data(), shapes[i]}); continue; }
      std::vector<int64_t> one(shapes[i].begin() + 1, shapes[i].end());
      const size_t per = datas[i].size() / static_cast<size_t>(samples);
      views.push_back({datas[i].data() + static_cast<size_t>(n) * per, one});
    }
    auto out = (*session)->run(views);
    if (!out.ok()) { std::cerr << "onnx_run: " << out.status().to_string() << "\n"; return 1; }
    if (n == 0) {
      stacked.resize(out->size());
      for (size_t k = 0; k < out->size(); ++k) {
        stacked[k].shape = (*out)[k].shape;
        if (each) stacked[k].shape.insert(stacked[k].shape.begin(), samples);
        stacked[k].data.reserve((*out)[k].data.size() * static_cast<size_t>(samples));
      }
    }
    for (size_t k = 0; k < out->size(); ++k) {
      if ((*out)[k].data.size() * static_cast<size_t>(samples) != static_cast<size_t>(stacked[k].numel())) {
        std::cerr << "onnx_run: --each: output " << k << " changes shape between samples\n";
        return 1;
      }
      stacked[k].data.insert(stacked[k].data.end(), (*out)[k].data.begin(), (*out)[k].data.end());
    }
  }
  for (size_t k = 0; k < stacked.size(); ++k) {
    if (!write_npy(std::string(argv[2]) + "/" + std::to_string(k) + ".npy", stacked[k])) {
      std::cerr << "onnx_run: cannot write output " << k << "\n";
      return 1;
    }
  }
  return 0;
}
