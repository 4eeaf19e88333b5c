#include "test_support.h"

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

std::string facerec_bin() { return FACEREC_BIN; }

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
  std::vector<Pair> pairs;
  std::string root = shared_dir() + "/data/lfw";
  std::ifstream in(root + "/pairs.txt");
  int nfolds = 0, n = 0;
  in >> nfolds >> n;
  auto img = [&](const std::string& name, int idx) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d", idx);
    return root + "/images/" + name + "/" + name + "_" + buf + ".jpg";
  };
  for (int f = 0; f < nfolds; ++f) {
    for (int i = 0; i < 2 * n; ++i) {
      std::string a, b;
      int i1, i2;
      bool same = i < n;
      if (same) { in >> a >> i1 >> i2; b = a; }
      else { in >> a >> i1 >> b >> i2; }
      if (f == fold) pairs.push_back({img(a, i1), img(b, i2), same});
    }
  }
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
