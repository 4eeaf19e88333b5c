// Test and benchmark support (header-only, not part of the library): large
// galleries derived from a few real embeddings, for measuring the HNSW index
// against exact search (tests: src/index/hnsw_index_test.cc; benchmark:
// bench/ann_bench.cc).
//
// Method. From real unit embeddings ("bases", with person labels) two
// numbers are measured:
//   genuine  = the median cosine of two photos of the same real person,
//   impostor = the 99th percentile cosine of two photos of different people.
// A synthetic identity is a base plus isotropic Gaussian noise, renormalised:
//   centre = normalize(base_b + N(0, s_id^2 I)),   b cycling over the bases,
// and each of its templates (and each probe of it) is
//   template = normalize(centre + N(0, s_t^2 I)).
// In D dimensions normalize(u + N(0, s^2 I)) has cosine about 1/sqrt(1+D s^2)
// with the unit u, so two noisy copies of one vector meet at about
// 1/(1+D s^2). s_t is set so that two templates of one identity meet at the
// real genuine cosine, and s_id so that two identities grown from one base
// meet at the real impostor 99th percentile: the crowd around each base is
// as close as real strangers' closest pairs, which is harder for a graph
// than random directions. Strangers (probes of no enrolled identity) are
// fresh identities from the same bases.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace facerec::derived {

struct Bases {
  int dim = 0;
  std::vector<float> unit;   // n x dim, unit rows
  std::vector<int> label;    // the real person of each row
  size_t size() const { return label.size(); }
};

struct Spread {
  double genuine = 0, impostor = 0;  // measured cosines (see above)
  double sigma_template = 0, sigma_identity = 0;
};

inline void normalize(float* v, int dim) {
  double n2 = 0;
  for (int i = 0; i < dim; ++i) n2 += double(v[i]) * v[i];
  const float inv = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.f;
  for (int i = 0; i < dim; ++i) v[i] *= inv;
}

// sigma such that two noisy copies of one unit vector meet at cosine c.
inline double sigma_for_cosine(double c, int dim) { return std::sqrt(std::max(0.0, 1.0 / c - 1.0) / dim); }

// Measures genuine (median) and impostor (99th percentile) cosines over at
// most max_pairs pairs of each kind, and the sigmas that reproduce them.
inline Spread measure_spread(const Bases& b, uint64_t seed = 1, size_t max_pairs = 200000) {
  std::vector<double> gen, imp;
  const size_t n = b.size();
  auto cos = [&](size_t i, size_t j) {
    double s = 0;
    for (int k = 0; k < b.dim; ++k) s += double(b.unit[i * b.dim + k]) * b.unit[j * b.dim + k];
    return s;
  };
  if (n * (n - 1) / 2 <= max_pairs) {
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j) (b.label[i] == b.label[j] ? gen : imp).push_back(cos(i, j));
  } else {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    // Genuine pairs are rare among random pairs: walk runs of one label.
    for (size_t i = 0; i + 1 < n && gen.size() < max_pairs; ++i)
      for (size_t j = i + 1; j < n && b.label[j] == b.label[i] && gen.size() < max_pairs; ++j) gen.push_back(cos(i, j));
    while (imp.size() < max_pairs) {
      const size_t i = pick(rng), j = pick(rng);
      if (b.label[i] != b.label[j]) imp.push_back(cos(i, j));
    }
  }
  Spread s;
  if (gen.empty() || imp.empty()) return s;
  std::sort(gen.begin(), gen.end());
  std::sort(imp.begin(), imp.end());
  s.genuine = gen[gen.size() / 2];
  s.impostor = imp[std::min(imp.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(imp.size())))];
  s.sigma_template = sigma_for_cosine(s.genuine, b.dim);
  s.sigma_identity = sigma_for_cosine(std::max(1e-3, s.impostor), b.dim);
  return s;
}

struct Set {
  int dim = 0;
  std::vector<std::string> row_identity;  // one per template
  std::vector<float> rows;                // templates, unit
  std::vector<float> centres;             // one per identity, unit
  std::vector<float> queries;             // probes, unit
  std::vector<int> query_identity;        // the identity probed, -1 for a stranger
};

inline std::string identity_name(size_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "id%08zu", i);
  return b;
}

// `templates` templates over identities with 1..2*mean_per_identity-1
// templates each (uniform; mean about mean_per_identity), and `queries`
// probes, a fraction `strangers` of them of no enrolled identity.
inline Set make_set(const Bases& b, const Spread& s, size_t templates, int mean_per_identity, size_t queries,
                    double strangers, uint64_t seed) {
  Set out;
  out.dim = b.dim;
  const int d = b.dim;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss(0.f, 1.f);
  std::uniform_int_distribution<int> per(1, std::max(1, 2 * mean_per_identity - 1));
  auto noisy = [&](const float* u, double sigma, float* dst) {
    for (int k = 0; k < d; ++k) dst[k] = u[k] + static_cast<float>(sigma) * gauss(rng);
    normalize(dst, d);
  };
  auto new_centre = [&](size_t i, float* dst) { noisy(b.unit.data() + (i % b.size()) * d, s.sigma_identity, dst); };
  out.rows.resize(templates * static_cast<size_t>(d));
  out.row_identity.reserve(templates);
  size_t identity = 0;
  std::vector<float> c(d);
  while (out.row_identity.size() < templates) {
    new_centre(identity, c.data());
    out.centres.insert(out.centres.end(), c.begin(), c.end());
    const std::string name = identity_name(identity);
    for (int t = per(rng); t > 0 && out.row_identity.size() < templates; --t) {
      noisy(c.data(), s.sigma_template, out.rows.data() + out.row_identity.size() * d);
      out.row_identity.push_back(name);
    }
    ++identity;
  }
  std::uniform_real_distribution<double> u01(0, 1);
  std::uniform_int_distribution<size_t> pick(0, identity - 1);
  out.queries.resize(queries * static_cast<size_t>(d));
  for (size_t q = 0; q < queries; ++q) {
    float* dst = out.queries.data() + q * d;
    if (u01(rng) < strangers) {
      new_centre(identity + q, c.data());
      noisy(c.data(), s.sigma_template, dst);
      out.query_identity.push_back(-1);
    } else {
      const size_t i = pick(rng);
      noisy(out.centres.data() + i * d, s.sigma_template, dst);
      out.query_identity.push_back(static_cast<int>(i));
    }
  }
  return out;
}

}  // namespace facerec::derived
