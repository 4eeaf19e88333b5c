// Helpers shared by the tests: where ../shared is, how to skip loudly without
// it, and how to run the built CLI.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace facerec {
class Runtime;
struct Manifest;
}  // namespace facerec

namespace facerec::testing {

// One ONNX Runtime and the repository's manifest, built once per test process.
Runtime& runtime();
const Manifest& manifest();

// ../shared (or $FACEREC_SHARED). Empty when absent.
std::string shared_dir();
// The built CLI, build/facerec, or $FACEREC_BIN when set.
std::string facerec_bin();
// A fresh empty temporary directory, removed at process exit.
std::string temp_dir(const std::string& tag);
// Reads LFW pairs.txt: fold f (0-based) as (img1, img2, same) with full paths.
struct Pair { std::string a, b; bool same; };
std::vector<Pair> lfw_fold(int fold);

struct CommandResult { int exit_code; std::string out; std::string err; };
// Runs build/facerec with args (no shell), capturing stdout and stderr.
CommandResult run_cli(const std::vector<std::string>& args);

// ../shared/data/celeb5/<split>/<person>.
std::filesystem::path celeb(const std::string& split, const std::string& person);
// The first n files of a folder, by name.
std::vector<std::filesystem::path> photos(const std::filesystem::path& dir, size_t n);
// One JSON value per non-empty line (the CLI's --json output).
std::vector<nlohmann::json> json_lines(const std::string& out);

}  // namespace facerec::testing

// Skips the current test with a loud banner when ../shared is absent.
#define FACEREC_REQUIRE_SHARED()                                                              \
  do {                                                                                        \
    if (::facerec::testing::shared_dir().empty()) {                                           \
      fprintf(stderr, "\n!!!!! SKIPPING %s: ../shared (real models and photos) is ABSENT. "   \
                      "Set FACEREC_SHARED. This test did NOT run. !!!!!\n\n",                 \
              ::testing::UnitTest::GetInstance()->current_test_info()->name());               \
      GTEST_SKIP() << "../shared is absent: real-data test NOT run";                          \
    }                                                                                         \
  } while (0)
