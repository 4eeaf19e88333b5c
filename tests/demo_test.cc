// Issue 8's demo check, with the manifest's default models and decision:
// scripts/demo.sh enrols celeb5/train and identifies celeb5/val and
// crowd/obama_and_biden.jpg. Every val probe must be named as its person, and
// nobody in obama_and_biden.jpg (none of them is enrolled) may be named.
// This checks the defaults on the demo's photos; the defaults themselves were
// chosen on LFW (BENCHMARKS.md, "Issue 8 verdict").
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace facerec {
namespace {

TEST(Demo, NamesEveryCeleb5ProbeAndNobodyInObamaAndBiden) {
  FACEREC_REQUIRE_SHARED();
  const fs::path data = fs::path(testing::shared_dir()) / "data";
  const std::string db = testing::temp_dir("demo") + "/gallery.db";
  auto enrol = testing::run_cli({"enroll", (data / "celeb5" / "train").string(), "--db", db});
  ASSERT_EQ(enrol.exit_code, 0) << enrol.err;
  const std::map<std::string, std::string> val_to_train = {
      {"ben_afflek", "Ben Afflek"}, {"elton_john", "Elton John"}, {"jerry_seinfeld", "Jerry Seinfield"},
      {"madonna", "Madonna"}, {"mindy_kaling", "Mindy Kaling"}};
  const std::string crowd = (data / "crowd" / "obama_and_biden.jpg").string();
  auto r = testing::run_cli({"identify", (data / "celeb5" / "val").string(), crowd, "--db", db, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int probes = 0, named_right = 0, crowd_faces = 0;
  for (const json& img : testing::json_lines(r.out)) {
    ASSERT_TRUE(img.contains("faces")) << img.dump();
    const fs::path path = img["image"].get<std::string>();
    if (path.filename() == "obama_and_biden.jpg") {
      for (const json& f : img["faces"]) {
        ++crowd_faces;
        EXPECT_TRUE(f["identity"].is_null()) << "a stranger was named: " << f.dump();
      }
      continue;
    }
    const std::string person = path.parent_path().filename().string();
    ASSERT_TRUE(val_to_train.count(person)) << path;
    ++probes;
    // The probe's subject: the largest face.
    const json* best = nullptr;
    double best_area = -1;
    for (const json& f : img["faces"]) {
      const double area = (f["box"][2].get<double>() - f["box"][0].get<double>()) *
                          (f["box"][3].get<double>() - f["box"][1].get<double>());
      if (area > best_area) best_area = area, best = &f;
    }
    if (best && (*best)["identity"] == val_to_train.at(person)) ++named_right;
    else ADD_FAILURE() << path << " not named " << val_to_train.at(person) << ": " << (best ? best->dump() : "no face");
  }
  EXPECT_EQ(probes, 25);
  EXPECT_EQ(named_right, probes);
  EXPECT_GE(crowd_faces, 2) << "the detector should find Obama and Biden at least";
}

}  // namespace
}  // namespace facerec
