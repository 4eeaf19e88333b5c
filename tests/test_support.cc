#include "test_support.h"

#include "facerec/eval.h"

#include "facerec/models.h"
#include "facerec/runtime.h"
#include "facerec/status.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace facerec::testing {

Runtime& runtime() {
  static std::unique_ptr<Runtime> rt = [] {
    auto r = create_onnxruntime();
    FACEREC_ASSERT(r.ok());
    return std::move(r).value();
  }();
  return *rt;
}

const Manifest& manifest() {
  static Manifest m = [] {
    auto r = Manifest::load(Manifest::default_path());
    FACEREC_ASSERT(r.ok());
    return std::move(r).value();
  }();
  return m;
}

std::string shared_dir() {
  const char* env = std::getenv("FACEREC_SHARED");
  std::string d = env ? env : FACEREC_DEFAULT_SHARED;
  return fs::is_directory(fs::path(d) / "models") ? d : std::string();
}

std::string facerec_bin() {
  // $FACEREC_BIN (as tests/serve reads it) runs the CLI tests against another
  // build's binary, e.g. the sanitized build-asan/facerec (scripts/sanitize.sh).
  if (const char* bin = std::getenv("FACEREC_BIN"); bin && *bin) return bin;
  return FACEREC_BIN;
}

std::string temp_dir(const std::string& tag) {
  static const fs::path root = [] {
    char tmpl[] = "/tmp/facerec_test_XXXXXX";
    const char* d = mkdtemp(tmpl);
    return fs::path(d ? d : "/tmp/facerec_test");
  }();
  static struct Cleanup { ~Cleanup() { std::error_code ec; fs::remove_all(root, ec); } } cleanup;
  static int counter = 0;
  fs::path p = root / (tag + "_" + std::to_string(counter++));
  fs::create_directories(p);
  return p.string();
}

std::vector<Pair> lfw_fold(int fold) {
  // The library's pairs reader (the one parser of pairs.txt).
  const std::string root = shared_dir() + "/data/lfw";
  auto read = eval::read_lfw_pairs(root + "/pairs.txt");
  std::vector<Pair> pairs;
  if (!read.ok()) return pairs;  // callers check the count
  for (const auto& p : *read)
    if (p.fold == fold) pairs.push_back({root + "/images/" + p.image1, root + "/images/" + p.image2, p.same});
  return pairs;
}

static std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CommandResult run_cli(const std::vector<std::string>& args) {
  std::string dir = temp_dir("cli");
  std::string out = dir + "/out", err = dir + "/err";
  pid_t pid = fork();
  if (pid == 0) {
    FILE* o = std::freopen(out.c_str(), "w", stdout);
    FILE* e = std::freopen(err.c_str(), "w", stderr);
    (void)o; (void)e;
    std::vector<char*> argv;
    std::string bin = facerec_bin();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, slurp(out), slurp(err)};
}

fs::path celeb(const std::string& split, const std::string& person) {
  return fs::path(shared_dir()) / "data" / "celeb5" / split / person;
}

std::vector<fs::path> photos(const fs::path& dir, size_t n) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  if (v.size() > n) v.resize(n);
  return v;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

}  // namespace facerec::testing
