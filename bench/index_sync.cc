// Incremental add through the facade (BENCHMARKS.md, "Approximate index
// (issue 10, part 3)"): how fast a FaceRecognizer takes in templates that
// were enrolled in its gallery by another writer (another `facerec serve`
// node, `facerec enroll`, an import), i.e. FaceRecognizer::sync_gallery():
// read the change log, read the new templates by id, add them to the index
// (and the HNSW graph) under the exclusive lock.
//
//   build/bench/index_sync --db /tmp/sync.db --base 100000 [--add 10000] [--rounds 3] [--index exact|hnsw]
//
// The gallery (SQLite, created fresh at --db; the file must not exist) gets
// --base templates first (people of 5 templates each, random unit vectors of
// the default embedder's dimension; their content does not change the cost
// of exact bookkeeping), applied by one sync. Then each round writes --add
// templates of new people (5 each) through a second Gallery handle (one
// transaction per person: the "gallery write" rate), applies them with one
// sync_gallery() (the "sync add" rate, templates/s), removes those people
// through the handle and applies that (the "sync remove" rate). Medians of
// the rounds; wall clock and this thread's CPU time.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "facerec/gallery.h"
#include "facerec/recognizer.h"

namespace {

using namespace facerec;
using Clock = std::chrono::steady_clock;
double secs(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string s;
  std::getline(f, s);
  return s;
}

// Writes `people` people of 5 random unit templates each; returns seconds.
double write_people(Gallery& g, const std::string& prefix, size_t people, int dim, std::mt19937_64& rng) {
  std::normal_distribution<float> gauss;
  const auto t0 = Clock::now();
  for (size_t p = 0; p < people; ++p) {
    std::vector<NewTemplate> ts(5);
    for (size_t k = 0; k < ts.size(); ++k) {
      auto& t = ts[k];
      t.unit.resize(static_cast<size_t>(dim));
      double n2 = 0;
      for (float& v : t.unit) n2 += double(v = gauss(rng)) * v;
      for (float& v : t.unit) v = static_cast<float>(v / std::sqrt(n2));
      t.norm = 20.f;
      t.source = prefix + std::to_string(p) + "_" + std::to_string(k) + ".jpg";
      t.source_sha256 = t.source;  // a distinct duplicate key per template
    }
    auto r = g.enroll(prefix + std::to_string(p), ts);
    if (!r.ok()) {
      std::fprintf(stderr, "enroll: %s\n", r.status().message().c_str());
      std::exit(1);
    }
  }
  return secs(t0);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string db, index = "exact";
  size_t base = 100000, add = 10000;
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--db") db = next();
    else if (a == "--base") base = std::stoul(next());
    else if (a == "--add") add = std::stoul(next());
    else if (a == "--rounds") rounds = std::max(1, std::stoi(next()));
    else if (a == "--index") index = next();
    else {
      std::fprintf(stderr, "usage: index_sync --db FILE --base N [--add N] [--rounds R] [--index exact|hnsw]\n");
      return 2;
    }
  }
  if (db.empty() || std::filesystem::exists(db)) {
    std::fprintf(stderr, "--db must name a file that does not exist yet\n");
    return 2;
  }
  auto mode = parse_index_mode(index);
  if (!mode.ok()) {
    std::fprintf(stderr, "%s\n", mode.status().message().c_str());
    return 2;
  }
  std::printf("load before: %s\n", loadavg().c_str());
  RecognizerConfig config;
  config.db = db;
  config.gallery = GalleryMode::kCreate;
  config.index = *mode;
  config.threads = 1;
  auto rec = FaceRecognizer::create(config);
  if (!rec.ok()) {
    std::fprintf(stderr, "create: %s\n", rec.status().message().c_str());
    return 1;
  }
  const EmbedderInfo info = (*rec)->embedder_info();
  auto g = Gallery::open(db, info);
  if (!g.ok()) {
    std::fprintf(stderr, "open: %s\n", g.status().message().c_str());
    return 1;
  }
  std::mt19937_64 rng(1);
  const double w = write_people(**g, "base_", base / 5, info.dim, rng);
  auto t0 = Clock::now();
  auto n = (*rec)->sync_gallery();
  if (!n.ok()) {
    std::fprintf(stderr, "sync: %s\n", n.status().message().c_str());
    return 1;
  }
  std::printf("base: %zu templates written in %.1f s, applied by one sync in %.1f s; index %s, %zu templates\n",
              (*rec)->template_count(), w, secs(t0), index.c_str(), (*rec)->template_count());
  std::vector<double> write_rate, add_rate, add_cpu, rm_rate, rm_cpu;
  for (int round = 0; round < rounds; ++round) {
    const std::string prefix = "add" + std::to_string(round) + "_";
    const double ws = write_people(**g, prefix, add / 5, info.dim, rng);
    write_rate.push_back(double(add) / ws);
    t0 = Clock::now();
    double c0 = cpu_s();
    n = (*rec)->sync_gallery();
    if (!n.ok()) return 1;
    add_rate.push_back(double(add) / secs(t0));
    add_cpu.push_back(double(add) / (cpu_s() - c0));
    for (size_t p = 0; p < add / 5; ++p) (void)(*g)->remove_person(prefix + std::to_string(p));
    t0 = Clock::now();
    c0 = cpu_s();
    n = (*rec)->sync_gallery();
    if (!n.ok()) return 1;
    rm_rate.push_back(double(add) / secs(t0));
    rm_cpu.push_back(double(add) / (cpu_s() - c0));
    std::printf("round %d: gallery write %.0f templates/s; sync add %.0f/s (cpu %.0f/s); sync remove %.0f/s (cpu %.0f/s); "
                "index now %zu templates\n",
                round, write_rate.back(), add_rate.back(), add_cpu.back(), rm_rate.back(), rm_cpu.back(),
                (*rec)->template_count());
  }
  std::printf("medians of %d rounds of %zu templates into %zu (index %s): gallery write %.0f templates/s; "
              "sync add %.0f/s (cpu %.0f/s); sync remove %.0f/s (cpu %.0f/s)\nload after: %s\n",
              rounds, add, base, index.c_str(), median(write_rate), median(add_rate), median(add_cpu), median(rm_rate),
              median(rm_cpu), loadavg().c_str());
  return 0;
}
