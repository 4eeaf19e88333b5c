// The folder-per-person layout shared by the evaluation protocols
// (facerec/eval_protocol.h).
#include <algorithm>
#include <filesystem>

#include "facerec/eval_protocol.h"

namespace fs = std::filesystem;

namespace facerec::eval {

std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return found;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    // A symlink to a folder is kept (the loader names it), never followed.
    if (std::error_code e2; !it->is_directory(ec) || it->is_symlink(e2)) found.push_back(it->path().string());
  std::sort(found.begin(), found.end());
  return found;
}

Result<std::vector<PersonFolder>> person_folders(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status(ErrorCode::kNotFound, dir + " is not a folder (expected <dir>/<Person>/<images>)");
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (std::error_code e2; it->is_directory(e2)) names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<PersonFolder> out;
  for (const auto& n : names) {
    auto imgs = list_images((fs::path(dir) / n).string());
    if (!imgs.empty()) out.push_back({n, std::move(imgs)});
  }
  if (out.empty()) return Status(ErrorCode::kNotFound, dir + " has no person folders with images");
  return out;
}

}  // namespace facerec::eval
