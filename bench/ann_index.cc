// The approximate index against exact search on galleries derived from real
// LFW embeddings (BENCHMARKS.md, "Approximate index (issue 10, part 3)").
//
//   build/bench/ann_index --cache build/lfwcache_ann_af4.bin --templates 1000000
//       [--queries 1000] [--exact-queries 100] [--sweep 10000,25000,50000,100000,200000] [--faiss]
//       [--threshold-only] [--no-search] [--no-hnsw] [--rounds R] [--lift DIM]
//
// --cache: the embedding cache `facerec eval identify --lfw-open-set --cache`
// writes, read with the library's reader (eval::EmbeddingCache); faces the
// eval detected (not its centre-crop fallbacks) are the real bases, labelled
// by their folder.
// The derived gallery: src/index/derived_set.h (method documented there).
//
// Prints, for the facerec index (SearchIndex, rule kMean: one HNSW point per
// person, candidates re-scored exactly): the exact index's and the graph's
// build time and heap bytes per template (mallinfo2), save and load time,
// p50/p99 query ms, recall@1/@10 against exact search (the oracle, run in the
// same process), the exact search's own p50/p99, and the in-place add and
// remove rates into the gallery, with the graph and exact only (medians of
// --rounds rounds of ~10k templates). --no-search: the build, memory and
// update figures only (no probes, no FAISS); --no-hnsw: the exact index's
// only. --lift 512: the real bases
// mapped isometrically into 512-D first (see lift()), for a 512-D gallery
// from a smaller default embedder. --sweep: the same at several sizes (for the auto
// threshold). --faiss: FAISS's IndexHNSWFlat, IndexIVFFlat and IndexIVFPQ on
// the same person points, including IVF-PQ's bytes per vector.
// Single-threaded throughout (OPENBLAS_NUM_THREADS=1, omp 1 thread), so that
// numbers on a shared machine are per core.
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "facerec/eval_open_set.h"
#include "facerec/search.h"
#include "index/derived_set.h"

#ifdef FACEREC_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <omp.h>
#endif

namespace {

using namespace facerec;
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// CPU time of this thread: on a machine shared by many builds, the wall clock
// of one query includes waiting for a core; this does not.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

// Heap bytes in use (malloc'd, including mmap'd chunks), in MB. Not the
// resident set: freed buffers (the oracle's score matrix) stay resident and
// are reused, which hid the graph's allocation in an RSS delta.
double rss_mb() {
  const struct mallinfo2 m = mallinfo2();
  return double(m.uordblks + m.hblkhd) / (1 << 20);
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * double(v.size())))];
}

derived::Bases load_cache(const std::string& file) {
  derived::Bases b;
  // The library's reader (src/eval/embedding_cache.cc), whatever models made the file.
  auto cache = eval::EmbeddingCache::load_any(file);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", cache.status().message().c_str());
    std::exit(2);
  }
  // Records by image path (sorted), so by folder = person.
  std::map<std::string, int> label;
  for (const auto& [path, t] : cache->items()) {
    if (t.unit.empty() || t.source > 1) continue;  // failed, or the eval's centre-crop fallback
    if (b.dim == 0) b.dim = static_cast<int>(t.unit.size());
    if (static_cast<int>(t.unit.size()) != b.dim) continue;
    const std::string name = std::filesystem::path(path).parent_path().filename().string();
    std::vector<float> v = t.unit;
    derived::normalize(v.data(), b.dim);
    b.unit.insert(b.unit.end(), v.begin(), v.end());
    b.label.push_back(label.emplace(name, static_cast<int>(label.size())).first->second);
  }
  std::printf("bases: %zu real LFW templates of %zu people, %d-D (%s)\n", b.size(), label.size(), b.dim, file.c_str());
  return b;
}

// Maps unit bases of dimension d into `dim` > d dimensions by a fixed random
// matrix with orthonormal columns (Gram-Schmidt on Gaussian columns, seed 5):
// an isometry, so every cosine between two bases, and so the measured
// genuine / impostor spread, is exactly kept; the derived noise is then drawn
// in all `dim` dimensions. For measuring a 512-D gallery (the target)
// from a 192-D default embedder's real templates.
derived::Bases lift(const derived::Bases& b, int dim) {
  const size_t d = static_cast<size_t>(b.dim), D = static_cast<size_t>(dim);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g;
  std::vector<double> q(D * d);  // column j: q[j * D .. j * D + D)
  for (size_t j = 0; j < d; ++j) {
    double* c = q.data() + j * D;
    for (size_t i = 0; i < D; ++i) c[i] = g(rng);
    for (int pass = 0; pass < 2; ++pass)  // twice, for orthogonality in floating point
      for (size_t k = 0; k < j; ++k) {
        const double* o = q.data() + k * D;
        double dot = 0;
        for (size_t i = 0; i < D; ++i) dot += c[i] * o[i];
        for (size_t i = 0; i < D; ++i) c[i] -= dot * o[i];
      }
    double n2 = 0;
    for (size_t i = 0; i < D; ++i) n2 += c[i] * c[i];
    for (size_t i = 0; i < D; ++i) c[i] /= std::sqrt(n2);
  }
  derived::Bases out;
  out.dim = dim;
  out.label = b.label;
  out.unit.assign(b.size() * D, 0.f);
  for (size_t r = 0; r < b.size(); ++r) {
    std::vector<double> v(D, 0.0);
    for (size_t j = 0; j < d; ++j) {
      const double x = b.unit[r * d + j];
      const double* c = q.data() + j * D;
      for (size_t i = 0; i < D; ++i) v[i] += x * c[i];
    }
    for (size_t i = 0; i < D; ++i) out.unit[r * D + i] = static_cast<float>(v[i]);
    derived::normalize(out.unit.data() + r * D, dim);
  }
  return out;
}

struct Oracle {
  std::vector<std::vector<Candidate>> top;  // exact top-10 per query
};

// The library's answer, or the program stops with its Status.
template <class T>
T or_die(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "ann_index: %s\n", r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

Oracle exact_oracle(const SearchIndex& index, const derived::Set& set, size_t queries) {
  std::vector<std::span<const float>> q;
  for (size_t i = 0; i < queries; ++i) q.emplace_back(set.queries.data() + i * set.dim, static_cast<size_t>(set.dim));
  return {or_die(index.search_batch(q, 10))};
}

struct Quality {
  double recall1 = 0, recall10 = 0, p50 = 0, p99 = 0;  // wall ms
  double cpu_p50 = 0, cpu_p99 = 0;                      // thread CPU ms
};

template <class Search>
Quality measure(const Oracle& oracle, const derived::Set& set, size_t queries, Search&& search) {
  Quality r;
  std::vector<double> times, cpu;
  size_t hit1 = 0, hit10 = 0;
  for (size_t i = 0; i < queries; ++i) {
    const auto t0 = Clock::now();
    const double c0 = thread_cpu_ms();
    const std::vector<std::string> got = search(set.queries.data() + i * set.dim);
    cpu.push_back(thread_cpu_ms() - c0);
    times.push_back(ms_since(t0));
    const auto& truth = oracle.top[i];
    if (!got.empty() && !truth.empty() && got[0] == truth[0].identity) ++hit1;
    std::set<std::string> t;
    for (const auto& c : truth) t.insert(c.identity);
    for (size_t k = 0; k < std::min<size_t>(10, got.size()); ++k) hit10 += t.count(got[k]);
  }
  r.recall1 = double(hit1) / double(queries);
  r.recall10 = double(hit10) / double(queries * 10);
  r.p50 = pct(times, 0.5);
  r.p99 = pct(times, 0.99);
  r.cpu_p50 = pct(cpu, 0.5);
  r.cpu_p99 = pct(cpu, 0.99);
  return r;
}

std::vector<std::string> names_of(Result<std::vector<Candidate>> c) {
  std::vector<std::string> out;
  for (const auto& x : or_die(std::move(c))) out.push_back(x.identity);
  return out;
}

// In-place enrolment and removal (SearchIndex::add_person_rows /
// remove_person, the calls FaceRecognizer makes after writing the gallery):
// each round adds ~10,000 templates of ~2,000 new derived identities (1-9
// templates each, as the gallery), one add_person_rows per person, then
// removes them again, so every round starts from the same gallery. Rates are
// templates per second (wall and this thread's CPU); the medians of the rounds.
struct UpdateRates {
  double add = 0, add_cpu = 0, remove = 0, remove_cpu = 0;
  size_t found = 0, people = 0;  // added people found (top-1) by their own first template, last round
};
UpdateRates measure_updates(SearchIndex& index, const derived::Bases& bases, const derived::Spread& spread, int rounds,
                            const char* label) {
  std::vector<double> add, add_cpu, rm, rm_cpu;
  UpdateRates out;
  for (int round = 0; round < rounds; ++round) {
    derived::Set more = derived::make_set(bases, spread, 10000, 5, 0, 0.0, 900 + static_cast<uint64_t>(round));
    std::map<std::string, std::vector<float>> by_person;
    for (size_t r = 0; r < more.row_identity.size(); ++r) {
      auto& v = by_person[std::string("add") + std::to_string(round) + "_" + more.row_identity[r]];
      v.insert(v.end(), more.rows.begin() + r * more.dim, more.rows.begin() + (r + 1) * more.dim);
    }
    const double n = double(more.row_identity.size());
    auto t0 = Clock::now();
    double c0 = thread_cpu_ms();
    for (const auto& [name, rows] : by_person) (void)index.add_person_rows(name, rows);
    add.push_back(n / ms_since(t0) * 1000);
    add_cpu.push_back(n / (thread_cpu_ms() - c0) * 1000);
    if (round == rounds - 1 && index.approximate()) {  // (exact search finds them by construction)
      out.people = by_person.size();
      for (const auto& [name, rows] : by_person) {
        // Their first template (rows holds all of theirs).
        const auto c = or_die(index.search(std::span<const float>(rows).first(static_cast<size_t>(more.dim)), 1));
        out.found += !c.empty() && c[0].identity == name;
      }
    }
    t0 = Clock::now();
    c0 = thread_cpu_ms();
    for (const auto& [name, rows] : by_person) (void)index.remove_person(name);
    rm.push_back(n / ms_since(t0) * 1000);
    rm_cpu.push_back(n / (thread_cpu_ms() - c0) * 1000);
    std::printf("  %s round %d: %.0f templates of %zu people: add %.0f/s (cpu %.0f/s), remove %.0f/s (cpu %.0f/s)\n",
                label, round, n, by_person.size(), add.back(), add_cpu.back(), rm.back(), rm_cpu.back());
  }
  out.add = pct(add, 0.5);
  out.add_cpu = pct(add_cpu, 0.5);
  out.remove = pct(rm, 0.5);
  out.remove_cpu = pct(rm_cpu, 0.5);
  return out;
}

// One gallery size: exact vs hnsw through SearchIndex.
void sweep_point(const derived::Bases& bases, const derived::Spread& spread, size_t templates) {
  derived::Set set = derived::make_set(bases, spread, templates, 5, 300, 0.1, 1000 + templates);
  SearchIndex index = or_die(SearchIndex::create(set.dim, std::move(set.row_identity), std::move(set.rows), TemplateRule::kMean));
  const Oracle oracle = exact_oracle(index, set, 300);
  const Quality exact = measure(oracle, set, 300, [&](const float* q) { return names_of(index.search_exact(std::span<const float>(q, static_cast<size_t>(set.dim)), 10)); });
  const auto t0 = Clock::now();
  (void)index.set_mode(IndexMode::kHnsw);
  const double build = ms_since(t0);
  const Quality ann = measure(oracle, set, 300, [&](const float* q) { return names_of(index.search(std::span<const float>(q, static_cast<size_t>(set.dim)), 10)); });
  std::printf("sweep %8zu templates %7zu people | exact p50 %7.3f p99 %7.3f ms (cpu p50 %7.3f) | hnsw build %8.0f ms, "
              "p50 %6.3f p99 %6.3f ms (cpu p50 %6.3f p99 %6.3f), recall@1 %.4f @10 %.4f\n",
              templates, index.people(), exact.p50, exact.p99, exact.cpu_p50, build, ann.p50, ann.p99, ann.cpu_p50,
              ann.cpu_p99, ann.recall1, ann.recall10);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as it comes (long runs)
  std::string cache;
  size_t templates = 1000000, queries = 1000, exact_queries = 100;
  std::vector<size_t> sweep;
  bool faiss_too = false, threshold_only = false, no_search = false;
  int rounds = 5;
  size_t max_bases = 0;
  int lift_dim = 0;
  bool no_hnsw = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--cache") cache = next();
    else if (a == "--templates") templates = std::stoul(next());
    else if (a == "--queries") queries = std::stoul(next());
    else if (a == "--exact-queries") exact_queries = std::stoul(next());
    else if (a == "--faiss") faiss_too = true;
    else if (a == "--max-bases") max_bases = std::stoul(next());
    else if (a == "--threshold-only") threshold_only = true;
    else if (a == "--no-search") no_search = true;
    else if (a == "--lift") lift_dim = std::stoi(next());
    else if (a == "--no-hnsw") no_hnsw = true;
    else if (a == "--rounds") rounds = std::max(1, std::stoi(next()));
    else if (a == "--sweep") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) sweep.push_back(std::stoul(item));
    } else {
      std::fprintf(stderr, "usage: ann_index --cache FILE [--templates N] [--queries Q] [--exact-queries E] "
                           "[--sweep N,N,...] [--threshold-only] [--faiss] [--max-bases N] [--no-search] [--no-hnsw] [--rounds R] [--lift DIM]\n");
      return 2;
    }
  }
  if (cache.empty()) {
    std::fprintf(stderr, "--cache is required\n");
    return 2;
  }
#ifdef FACEREC_HAVE_FAISS
  omp_set_num_threads(1);
#endif
  std::printf("load before: %s", [] {
    std::ifstream f("/proc/loadavg");
    std::string s;
    std::getline(f, s);
    return s + "\n";
  }().c_str());
  derived::Bases bases = load_cache(cache);
  if (max_bases && max_bases < bases.size()) {  // fewer real bases: a more crowded derived set
    bases.label.resize(max_bases);
    bases.unit.resize(max_bases * static_cast<size_t>(bases.dim));
    std::printf("bases: the first %zu only\n", max_bases);
  }
  if (lift_dim > bases.dim) {
    bases = lift(bases, lift_dim);
    std::printf("bases: lifted isometrically to %d-D (a fixed random orthonormal map; cosines kept)\n", lift_dim);
  }
  const derived::Spread spread = derived::measure_spread(bases);
  std::printf("spread: genuine median cos %.4f, impostor p99 cos %.4f -> sigma_template %.5f, sigma_identity %.5f\n",
              spread.genuine, spread.impostor, spread.sigma_template, spread.sigma_identity);
  for (size_t n : sweep) sweep_point(bases, spread, n);
  if (threshold_only) return 0;

  // ---- the main gallery ------------------------------------------------
  auto t0 = Clock::now();
  derived::Set set = derived::make_set(bases, spread, templates, 5, queries, 0.1, 7);
  std::printf("derived set: %zu templates, %zu identities, %zu probes (%.0f ms)\n", set.row_identity.size(),
              set.centres.size() / set.dim, queries, ms_since(t0));
  // Person points for FAISS (the kMean vectors: normalised unweighted means).
  std::vector<float> person_points;
  std::vector<std::string> person_names;
  if (faiss_too) {
    std::map<std::string, std::vector<double>> sums;
    for (size_t r = 0; r < set.row_identity.size(); ++r) {
      auto& s = sums[set.row_identity[r]];
      s.resize(set.dim);
      for (int k = 0; k < set.dim; ++k) s[k] += set.rows[r * set.dim + k];
    }
    for (auto& [name, s] : sums) {
      std::vector<float> v(s.begin(), s.end());
      derived::normalize(v.data(), set.dim);
      person_points.insert(person_points.end(), v.begin(), v.end());
      person_names.push_back(name);
    }
  }
  // The exact index's heap: built from copies of the rows (everything it
  // holds is allocated here), then the set's own copies are freed.
  const double rss0 = rss_mb();
  t0 = Clock::now();
  SearchIndex index = or_die(SearchIndex::create(set.dim, set.row_identity, set.rows, TemplateRule::kMean));
  const double exact_build = ms_since(t0), exact_mb = rss_mb() - rss0;
  std::printf("exact index: %zu templates, %zu people, built in %.1f s, heap +%.0f MB = %.0f bytes per template\n",
              index.size(), index.people(), exact_build / 1000, exact_mb, exact_mb * (1 << 20) / double(index.size()));
  std::vector<std::string>().swap(set.row_identity);
  std::vector<float>().swap(set.rows);
  Oracle oracle;
  Quality exact, ann;
  if (!no_search) {
    t0 = Clock::now();
    oracle = exact_oracle(index, set, queries);
    std::printf("oracle: exact top-10 of %zu probes by search_batch (%.0f ms)\n", queries, ms_since(t0));
    exact = measure(oracle, set, exact_queries, [&](const float* q) { return names_of(index.search_exact(std::span<const float>(q, static_cast<size_t>(set.dim)), 10)); });
    std::printf("exact search (SearchIndex::search_exact, %zu probes): p50 %.2f ms, p99 %.2f ms (cpu p50 %.2f, p99 %.2f)\n",
                exact_queries, exact.p50, exact.p99, exact.cpu_p50, exact.cpu_p99);
  }

  if (no_hnsw) {
    const UpdateRates exact_updates = measure_updates(index, bases, spread, rounds, "exact");
    std::printf("in-place updates into %zu templates, medians of %d rounds of ~10k templates (templates/s, wall / cpu):\n"
                "  exact: add %.0f / %.0f, remove %.0f / %.0f\n",
                index.size(), rounds, exact_updates.add, exact_updates.add_cpu, exact_updates.remove,
                exact_updates.remove_cpu);
    return 0;
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / ("facerec_ann_bench_" + std::to_string(::getpid()) + ".hnsw")).string();
  std::filesystem::remove(path);
  const double rss1 = rss_mb();
  t0 = Clock::now();
  std::string what;
  const double bc0 = thread_cpu_ms();
  Status s = index.set_mode(IndexMode::kHnsw, path, {}, &what);
  const double build_save = ms_since(t0), build_cpu = thread_cpu_ms() - bc0;
  const double rss2 = rss_mb();
  std::printf("hnsw: %s, build + save %.1f s (cpu %.1f s), heap +%.0f MB = %.0f bytes per template (%.0f per person point), "
              "file %.0f MB (%s)\n",
              what.c_str(), build_save / 1000, build_cpu / 1000, rss2 - rss1, (rss2 - rss1) * (1 << 20) / double(index.size()),
              (rss2 - rss1) * (1 << 20) / double(index.people()), std::filesystem::file_size(path) / 1048576.0,
              s.ok() ? "saved" : s.message().c_str());
  t0 = Clock::now();
  s = index.set_mode(IndexMode::kHnsw, path, {}, &what);
  std::printf("hnsw reopen: %s in %.1f s (content hash + checksum + load)\n", what.c_str(), ms_since(t0) / 1000);
  if (!no_search) {
    ann = measure(oracle, set, queries, [&](const float* q) { return names_of(index.search(std::span<const float>(q, static_cast<size_t>(set.dim)), 10)); });
    std::printf("hnsw search (%zu probes): p50 %.3f ms, p99 %.3f ms (cpu p50 %.3f, p99 %.3f), recall@1 %.4f, recall@10 "
                "%.4f; exact/hnsw p50 ratio %.0fx (cpu %.0fx)\n",
                queries, ann.p50, ann.p99, ann.cpu_p50, ann.cpu_p99, ann.recall1, ann.recall10, exact.p50 / ann.p50,
                exact.cpu_p50 / ann.cpu_p50);
  }

  // In-place updates into the HNSW-mode index (the graph is updated too),
  // then the same into the exact-only index.
  const UpdateRates hnsw_updates = measure_updates(index, bases, spread, rounds, "hnsw");
  (void)index.set_mode(IndexMode::kExact);
  const UpdateRates exact_updates = measure_updates(index, bases, spread, rounds, "exact");
  std::printf("in-place updates into %zu templates, medians of %d rounds of ~10k templates (templates/s, wall / cpu):\n"
              "  exact: add %.0f / %.0f, remove %.0f / %.0f\n  hnsw:  add %.0f / %.0f, remove %.0f / %.0f; added people "
              "found by their own first template %zu / %zu\n",
              index.size(), rounds, exact_updates.add, exact_updates.add_cpu, exact_updates.remove,
              exact_updates.remove_cpu, hnsw_updates.add, hnsw_updates.add_cpu, hnsw_updates.remove,
              hnsw_updates.remove_cpu, hnsw_updates.found, hnsw_updates.people);
  std::filesystem::remove(path);

#ifdef FACEREC_HAVE_FAISS
  if (faiss_too && !no_search) {
    const int d = set.dim;
    const faiss::Index::idx_t n = static_cast<faiss::Index::idx_t>(person_names.size());
    auto run = [&](const char* label, faiss::Index& idx, bool train) {
      const double r0 = rss_mb();
      auto b0 = Clock::now();
      if (train) {
        const faiss::Index::idx_t nt = std::min<faiss::Index::idx_t>(n, 50000);
        idx.train(nt, person_points.data());
      }
      const double train_ms = ms_since(b0);
      b0 = Clock::now();
      idx.add(n, person_points.data());
      const double add_ms = ms_since(b0);
      const double r1 = rss_mb();
      std::vector<float> dist(64);
      std::vector<faiss::Index::idx_t> ids(64);
      const Quality q = measure(oracle, set, queries, [&](const float* query) {
        idx.search(1, query, 64, dist.data(), ids.data());
        std::vector<std::string> out;
        for (int k = 0; k < 64 && out.size() < 10; ++k)
          if (ids[k] >= 0) out.push_back(person_names[static_cast<size_t>(ids[k])]);
        return out;
      });
      std::printf("faiss %-28s train %6.1f s, add %6.1f s (%.0f points/s), heap +%.0f MB = %.0f bytes per point, "
                  "p50 %.3f ms, p99 %.3f ms (cpu p50 %.3f, p99 %.3f), recall@1 %.4f @10 %.4f\n",
                  label, train_ms / 1000, add_ms / 1000, double(n) / add_ms * 1000, r1 - r0,
                  (r1 - r0) * (1 << 20) / double(n), q.p50, q.p99, q.cpu_p50, q.cpu_p99, q.recall1, q.recall10);
      std::fflush(stdout);
    };
    std::printf("faiss on the %lld person points (kMean vectors), 64 asked per probe:\n", static_cast<long long>(n));
    {
      faiss::IndexHNSWFlat h(d, 16, faiss::METRIC_INNER_PRODUCT);
      h.hnsw.efConstruction = 100;
      h.hnsw.efSearch = 128;
      run("IndexHNSWFlat M16 efC100 ef128", h, false);
    }
    {
      faiss::IndexFlatIP coarse(d);
      faiss::IndexIVFFlat ivf(&coarse, d, 1024, faiss::METRIC_INNER_PRODUCT);
      ivf.nprobe = 32;
      run("IndexIVFFlat 1024 nprobe32", ivf, true);
    }
    {
      faiss::IndexFlatIP coarse(d);
      faiss::IndexIVFPQ pq(&coarse, d, 1024, 64, 8, faiss::METRIC_INNER_PRODUCT);
      pq.nprobe = 32;
      run("IndexIVFPQ 1024 m64x8 nprobe32", pq, true);
      std::printf("  IVF-PQ code: %zu bytes + 8-byte id per vector\n", pq.code_size);
    }
  }
#else
  if (faiss_too) std::printf("faiss: not built (libfaiss-dev missing at configure time)\n");
#endif
  return 0;
}
