// Measures where an embedder's "same person" threshold should sit, on LFW.
//
//   build/bench/lfw_threshold <lfw_root> [--detector ID] [--embedder ID]
//
// Embeds every image named in pairs.txt (face nearest the centre; a miss is
// retried at detection confidence 0.2, then counted), then reports:
//  - 10-fold accuracy on the official pairs (threshold picked on 9 folds);
//  - impostor-score quantiles over ALL different-identity image pairs among
//    those images (millions of pairs, so FAR down to 1e-4 is measured, not
//    extrapolated), with the TAR over all same-identity pairs at each.
// The default threshold in models/manifest.json is the FAR = 1e-3 point.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include <cblas.h>

#include "facerec/eval.h"
#include "facerec/image.h"
#include "facerec/pipeline.h"

using namespace facerec;

int main(int argc, char** argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: lfw_threshold <lfw_root> [--detector ID] [--embedder ID]\n"); return 2; }
  std::string root = argv[1];
  PipelineConfig pc;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--detector") pc.detector = argv[i + 1];
    else if (k == "--embedder") pc.embedder = argv[i + 1];
  }
  auto rt = create_onnxruntime();
  auto man = Manifest::load(Manifest::default_path());
  if (!rt.ok() || !man.ok()) { std::fprintf(stderr, "setup failed\n"); return 1; }
  auto an = FaceAnalyzer::create(**rt, *man, pc);
  if (!an.ok()) { std::fprintf(stderr, "%s\n", an.status().to_string().c_str()); return 1; }
  FaceAnalyzer& a = **an;

  // The one LFW pairs reader (src/eval/datasets.cc), with its error checks.
  auto read = eval::read_lfw_pairs(root + "/pairs.txt");
  if (!read.ok()) { std::fprintf(stderr, "%s\n", read.status().to_string().c_str()); return 1; }
  struct P { std::string a, b; bool same; int fold; };
  std::vector<P> pairs;
  int nf = 0;  // folds
  for (const auto& p : *read) {
    pairs.push_back({p.image1, p.image2, p.same, p.fold});
    nf = std::max(nf, p.fold + 1);
  }
  std::set<std::string> files;
  for (const auto& p : pairs) { files.insert(p.a); files.insert(p.b); }
  std::vector<std::string> names(files.begin(), files.end());
  std::map<std::string, int> idx;
  const int dim = a.embedder().dim();
  std::vector<float> E(names.size() * dim, 0.f);
  std::vector<char> ok(names.size(), 0);
  int misses = 0, retried = 0;
  DetectorOptions base = a.detector().options();
  for (size_t i = 0; i < names.size(); ++i) {
    idx[names[i]] = static_cast<int>(i);
    auto im = load_image(root + "/images/" + names[i]);
    if (!im.ok()) { ++misses; continue; }
    auto faces = a.detect(*im);
    if (faces.ok() && faces->empty()) {
      DetectorOptions low = base;
      low.score_threshold = 0.2f;
      faces = a.detect(*im, low);
      ++retried;
    }
    if (!faces.ok() || faces->empty()) { ++misses; continue; }
    auto e = a.embed_faces(*im, {(*faces)[most_central_face(*faces, im->size())]});
    if (!e.ok()) { ++misses; continue; }
    std::copy((*e)[0].embedding.unit.begin(), (*e)[0].embedding.unit.end(), E.begin() + i * dim);
    ok[i] = 1;
    if (i % 1000 == 0) std::fprintf(stderr, "%zu/%zu\n", i, names.size());
  }
  // Official pairs: 10-fold accuracy.
  std::vector<float> s(pairs.size());
  for (size_t k = 0; k < pairs.size(); ++k) {
    int i = idx[pairs[k].a], j = idx[pairs[k].b];
    s[k] = (ok[i] && ok[j]) ? cblas_sdot(dim, &E[i * dim], 1, &E[j * dim], 1) : -1.f;  // a miss scores as "different"
  }
  auto acc = [&](float t, int fold, bool in_fold) {
    int c = 0, m = 0;
    for (size_t k = 0; k < pairs.size(); ++k) {
      if ((pairs[k].fold == fold) != in_fold) continue;
      ++m;
      c += ((s[k] >= t) == pairs[k].same);
    }
    return double(c) / m;
  };
  std::vector<double> accs, ths;
  for (int f = 0; f < nf; ++f) {
    float best_t = 0; double best = -1;
    for (float t = -0.2f; t <= 0.9f; t += 0.0025f) {
      double a9 = acc(t, f, false);
      if (a9 > best) { best = a9; best_t = t; }
    }
    accs.push_back(acc(best_t, f, true));
    ths.push_back(best_t);
  }
  double mean = 0, sd = 0, mt = 0;
  for (int f = 0; f < nf; ++f) { mean += accs[f] / nf; mt += ths[f] / nf; }
  for (int f = 0; f < nf; ++f) sd += (accs[f] - mean) * (accs[f] - mean) / nf;
  sd = std::sqrt(sd);
  // All image pairs: impostor quantiles and TAR.
  const int N = static_cast<int>(names.size());
  std::vector<float> G(static_cast<size_t>(N) * N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, dim, 1.f, E.data(), dim, E.data(), dim, 0.f, G.data(), N);
  auto person = [&](int i) { return names[i].substr(0, names[i].find('/')); };
  std::vector<float> imp, gen;
  for (int i = 0; i < N; ++i) {
    if (!ok[i]) continue;
    for (int j = i + 1; j < N; ++j) {
      if (!ok[j]) continue;
      (person(i) == person(j) ? gen : imp).push_back(G[static_cast<size_t>(i) * N + j]);
    }
  }
  std::sort(imp.begin(), imp.end());
  std::printf("{\"detector\": \"%s\", \"embedder\": \"%s\", \"images\": %d, \"no_face\": %d, \"retried_low_conf\": %d,\n",
              a.detector().spec().id.c_str(), a.embedder().spec().id.c_str(), N, misses, retried);
  std::printf(" \"lfw_10fold_accuracy\": %.4f, \"accuracy_std\": %.4f, \"mean_best_threshold\": %.4f,\n", mean, sd, mt);
  std::printf(" \"impostor_pairs\": %zu, \"genuine_pairs\": %zu, \"far\": {", imp.size(), gen.size());
  const double fars[] = {1e-2, 1e-3, 1e-4};
  for (int q = 0; q < 3; ++q) {
    float t = imp[static_cast<size_t>((1.0 - fars[q]) * (imp.size() - 1))];
    size_t tar = std::count_if(gen.begin(), gen.end(), [&](float g) { return g >= t; });
    std::printf("%s\"%g\": {\"threshold\": %.4f, \"tar\": %.4f}", q ? ", " : "", fars[q], t, double(tar) / gen.size());
  }
  std::printf("}}\n");
  return 0;
}
