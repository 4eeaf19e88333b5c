// facerec align <raw_dir> <out_dir>: the replacement for align_data.py.
#include <filesystem>
#include <iostream>

#include <opencv2/imgcodecs.hpp>

#include "app.h"
#include "facerec/align.h"

namespace fs = std::filesystem;

namespace facerec::cli {
namespace {

struct AlignArgs {
  CommonOptions o;
  std::string raw_dir, out_dir;
  int size = 112;
};

// Writes img to path atomically (temporary name, then rename), so an
// interrupted run never leaves a half-written crop.
Status write_image_atomic(const fs::path& path, const cv::Mat& img) {
  fs::path tmp = path;
  tmp += ".part" + path.extension().string();
  try {
    if (!cv::imwrite(tmp.string(), img)) return Status(ErrorCode::kIo, "cannot write " + path.string());
  } catch (const cv::Exception& e) {
    return Status(ErrorCode::kIo, "cannot write " + path.string() + ": " + e.what());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) { fs::remove(tmp, ec); return Status(ErrorCode::kIo, "cannot write " + path.string()); }
  return Status::Ok();
}

int run_align(const AlignArgs& a) {
  std::error_code ec;
  if (!fs::is_directory(a.raw_dir, ec)) {
    std::cerr << "facerec align: " << a.raw_dir << " is not a folder\n";
    return kExitError;
  }
  auto ctx = make_context(a.o);
  if (!ctx.ok()) { std::cerr << "facerec align: " << ctx.status().to_string() << "\n"; return kExitError; }
  int done = 0, skipped = 0, multi = 0, people = 0;
  std::vector<fs::path> person_dirs;
  for (const auto& e : fs::directory_iterator(a.raw_dir, ec))
    if (e.is_directory()) person_dirs.push_back(e.path());
  std::sort(person_dirs.begin(), person_dirs.end());
  const fs::path out_root = fs::absolute(a.out_dir);
  for (const auto& pdir : person_dirs) {
    if (g_interrupted) break;
    const std::string person = pdir.filename().string();
    // Folder names come from the file system, so they cannot hold '/', but a
    // name like ".." is refused anyway: nothing is ever written outside out_dir.
    const fs::path out_dir = (out_root / person).lexically_normal();
    if (person == "." || person == ".." || out_dir.parent_path() != out_root.lexically_normal()) {
      std::cerr << "skip    " << printable(person) << ": unsafe folder name\n";
      continue;
    }
    ++people;
    for (const auto& img_path : collect_images({pdir.string()})) {
      if (g_interrupted) break;
      const std::string rel = fs::relative(img_path, a.raw_dir).string();
      auto picked = pick_largest_face(*ctx, img_path);
      if (!picked.ok()) {
        std::cerr << "skip    " << printable(rel) << ": " << picked.status().message() << "\n";
        ++skipped;
        continue;
      }
      fs::create_directories(out_dir, ec);
      fs::path out = out_dir / fs::path(img_path).filename();
      // Keep the name; formats OpenCV cannot write (e.g. .gif) become .png.
      if (!cv::haveImageWriter(out.string())) out.replace_extension(".png");
      Status w = write_image_atomic(out, align_face(picked->image, picked->face, a.size));
      if (!w.ok()) {
        std::cerr << "skip    " << printable(rel) << ": " << w.message() << "\n";
        ++skipped;
        continue;
      }
      ++done;
      if (picked->faces_found > 1) {
        ++multi;
        std::cerr << "note    " << printable(rel) << ": " << picked->faces_found << " faces, aligned the largest\n";
      }
    }
  }
  std::cout << "aligned " << done << " images of " << people << " people into " << a.out_dir << "; skipped " << skipped
            << "; " << multi << " had several faces (largest used)" << (g_interrupted ? "; INTERRUPTED" : "") << "\n";
  return g_interrupted ? kExitInterrupted : kExitOk;
}

}  // namespace

void register_align(CLI::App& app, std::function<void(int)> set_rc) {
  static AlignArgs a;
  auto* cmd = app.add_subcommand("align", "detect and align every <Person>/<image> into <out_dir>/<Person>/<image>");
  cmd->add_option("raw_dir", a.raw_dir, "folder with one sub-folder per person")->required();
  cmd->add_option("out_dir", a.out_dir, "where the aligned crops go")->required();
  cmd->add_option("--size", a.size, "output size in pixels (default 112, the ArcFace template)")->check(CLI::Range(32, 1024));
  add_model_options(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_align(a)); });
}

}  // namespace facerec::cli
