// `--index hnsw` through the facade and the CLI: the graph is written beside
// the gallery, reused, and a damaged file is rebuilt (byte for byte the graph
// a fresh build gives: hnswlib's build is deterministic for one insertion
// order), with the same answers; enrolment through the facade updates it.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

using testing::celeb;
using testing::json_lines;
using testing::photos;
using testing::run_cli;

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string identity_of(const std::string& photo, const std::string& db, const std::string& index) {
  auto r = run_cli({"identify", photo, "--db", db, "--json", "--index", index});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const auto& j : json_lines(r.out))
    if (j.contains("faces") && !j["faces"].empty() && j["faces"][0]["identity"].is_string())
      return j["faces"][0]["identity"].get<std::string>();
  return "";
}

TEST(AnnCli, HnswIndexPersistsBesideTheGalleryAndSurvivesDamage) {
  FACEREC_REQUIRE_SHARED();
  const fs::path tree = testing::temp_dir("ann_tree");
  for (const char* who : {"Ben Afflek", "Madonna"}) {
    fs::create_directories(tree / who);
    for (const auto& p : photos(celeb("train", who), 3)) fs::copy_file(p, tree / who / p.filename());
  }
  const std::string db = testing::temp_dir("ann_db") + "/g.db";
  const std::string graph = db + ".hnsw";
  auto r = run_cli({"enroll", tree.string(), "--db", db});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(graph)) << "auto stays exact for a small gallery and writes no graph";

  const std::string probe = photos(celeb("val", "madonna"), 1)[0].string();
  EXPECT_EQ(identity_of(probe, db, "exact"), "Madonna");
  EXPECT_EQ(identity_of(probe, db, "hnsw"), "Madonna");
  ASSERT_TRUE(fs::exists(graph));
  const std::string built = bytes_of(graph);

  // Damaged: one byte flipped in the middle. Detected (SHA-256), rebuilt,
  // and the same answer.
  {
    std::string bad = built;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x5a);
    std::ofstream(graph, std::ios::binary | std::ios::trunc) << bad;
  }
  EXPECT_EQ(identity_of(probe, db, "hnsw"), "Madonna");
  EXPECT_EQ(bytes_of(graph), built) << "the damaged file was replaced by a rebuilt graph";

  // Garbage instead of a graph: the same.
  std::ofstream(graph, std::ios::binary | std::ios::trunc) << "not an index";
  EXPECT_EQ(identity_of(probe, db, "hnsw"), "Madonna");
  EXPECT_EQ(bytes_of(graph), built);

  // Enrolment through the facade with --index hnsw updates the graph in
  // place and saves it; the new person is then found through it.
  const fs::path more = testing::temp_dir("ann_more");
  fs::create_directories(more / "Elton John");
  for (const auto& p : photos(celeb("train", "Elton John"), 3)) fs::copy_file(p, more / "Elton John" / p.filename());
  r = run_cli({"enroll", more.string(), "--db", db, "--index", "hnsw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(bytes_of(graph), built) << "the graph saved after the enrolment";
  EXPECT_EQ(identity_of(photos(celeb("val", "elton_john"), 1)[0].string(), db, "hnsw"), "Elton John");

  // A bad value is a clear error.
  r = run_cli({"identify", probe, "--db", db, "--index", "ivf"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("expected exact, hnsw or auto"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace facerec
