// A reproducible random unit vector for tests: `dim` standard normal draws
// from std::mt19937(seed), divided by their L2 norm. The same seed gives the
// same vector in every test that uses it.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace facerec::testing {

inline std::vector<float> random_unit(int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(dim));
  double s = 0;
  for (float& x : v) {
    x = nd(rng);
    s += double(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(s));
  return v;
}

}  // namespace facerec::testing
