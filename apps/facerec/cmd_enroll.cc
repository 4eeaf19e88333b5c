// facerec enroll <dir>: one template per image of a folder-per-person tree.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "app.h"

namespace fs = std::filesystem;

namespace facerec::cli {
namespace {

struct EnrollArgs {
  CommonOptions o;
  std::string dir;
  bool aligned = false;
  std::optional<float> min_quality;
};

class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(isatty(STDERR_FILENO)) {}
  void step(const std::string& what) {
    ++done_;
    if (tty_) {
      std::fprintf(stderr, "\r\033[K[%zu/%zu] %s", done_, total_, printable(what).substr(0, 70).c_str());
    } else if (done_ == total_ || done_ % 25 == 0) {
      std::fprintf(stderr, "progress: %zu/%zu images\n", done_, total_);
    }
  }
  void line(const std::string& msg) {
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
  void finish() { if (tty_ && done_) std::fprintf(stderr, "\n"); }

 private:
  size_t total_, done_ = 0;
  bool tty_;
};

// The summary's reason for a skipped image.
std::string skip_reason(const EnrollItem& item) {
  switch (item.skip) {
    case EnrollSkip::kUnreadable: return "unreadable file";
    case EnrollSkip::kNotAligned: return "not an aligned crop";
    case EnrollSkip::kLowQuality: return "quality below --min-quality";
    default: return to_string(item.status.code());
  }
}

int run_enroll(const EnrollArgs& a) {
  std::error_code ec;
  if (!fs::is_directory(a.dir, ec)) {
    std::cerr << "facerec enroll: " << a.dir << " is not a folder (expected <dir>/<Person>/<images>)\n";
    return kExitError;
  }
  auto ctx = make_context(a.o, true, GalleryMode::kCreate);
  if (!ctx.ok()) { std::cerr << "facerec enroll: " << ctx.status().to_string() << "\n"; return kExitError; }
  FaceRecognizer& rec = *ctx->recognizer;

  // Duplicates under other names (same photo, or a face at or above the
  // same-person threshold) come back per item from the library: warned
  // about, still enrolled.
  int duplicate_warnings = 0;

  std::vector<std::pair<std::string, std::vector<std::string>>> work;
  size_t total = 0;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(a.dir, ec))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    auto imgs = collect_images({d.string()});
    total += imgs.size();
    work.emplace_back(d.filename().string(), std::move(imgs));
  }
  if (work.empty()) {
    std::cerr << "facerec enroll: no person folders in " << a.dir << " (expected <dir>/<Person>/<images>)\n";
    return kExitError;
  }

  Progress progress(total);
  std::map<std::string, int> skip_reasons;
  int people_enrolled = 0, added = 0, duplicates = 0, skipped = 0;
  EnrollOptions opt;
  opt.aligned = a.aligned;
  opt.min_quality = a.min_quality;
  opt.cancel = &g_interrupted;
  const auto rel = [&](const std::string& p) { return printable(fs::relative(p, a.dir).string()); };
  for (const auto& [person, images] : work) {
    if (g_interrupted) break;
    if (Status v = validate_identity_name(person); !v.ok()) {
      progress.line("skip    " + printable(person) + ": " + v.message());
      skipped += static_cast<int>(images.size());
      skip_reasons["invalid identity name"] += static_cast<int>(images.size());
      continue;
    }
    std::vector<EnrollInput> inputs;
    for (const auto& path : images) inputs.push_back({path, std::nullopt});
    // One library call per person: it is written in one transaction, whole
    // or (interrupted) not at all.
    auto r = rec.enroll(person, inputs, opt);
    if (!r.ok() && r.status().code() == ErrorCode::kCancelled) break;
    if (!r.ok()) { std::cerr << "facerec enroll: " << r.status().to_string() << "\n"; return kExitError; }
    for (const auto& item : r->items) {
      progress.step(person + "/" + fs::path(item.source).filename().string());
      if (item.state == EnrollState::kSkipped) {
        progress.line("skip    " + rel(item.source) + ": " + item.status.message());
        ++skip_reasons[skip_reason(item)];
      } else if (item.faces_found > 1) {
        progress.line("note    " + rel(item.source) + ": " + std::to_string(item.faces_found) +
                      " faces, enrolled the largest");
      }
      for (const auto& m : item.duplicates_elsewhere) {
        char sim[16];
        std::snprintf(sim, sizeof sim, "%.3f", m.similarity);
        progress.line("warning " + rel(item.source) + " (" + printable(person) + "): " + to_string(m.kind) + " as " +
                      printable(m.person) + (m.kind == DuplicateKind::kSameFace ? std::string(", similarity ") + sim : std::string()));
        ++duplicate_warnings;
      }
    }
    added += r->added;
    duplicates += r->duplicates;
    skipped += r->skipped;
    if (r->added > 0) ++people_enrolled;
  }
  progress.finish();
  std::cout << "enrolled " << added << " templates for " << people_enrolled << " people into " << ctx->db << "; "
            << duplicates << " already enrolled; " << skipped << " skipped";
  if (!skip_reasons.empty()) {
    std::cout << " (";
    bool first = true;
    for (const auto& [reason, n] : skip_reasons) { std::cout << (first ? "" : ", ") << reason << ": " << n; first = false; }
    std::cout << ")";
  }
  std::cout << "\n";
  if (duplicate_warnings)
    std::cout << "warning: " << duplicate_warnings << " enrolled face(s) duplicate another person's (same photo or same face); "
              << "list them with: facerec gallery duplicates --db " << ctx->db << "\n";
  if (g_interrupted) {
    std::cout << "interrupted: every person above was written whole; the one in progress was not written\n";
    return kExitInterrupted;
  }
  return kExitOk;
}

}  // namespace

void register_enroll(CLI::App& app, std::function<void(int)> set_rc) {
  static EnrollArgs a;
  auto* cmd = app.add_subcommand("enroll", "enrol a folder-per-person tree of photos (or aligned crops) into the gallery");
  cmd->add_option("dir", a.dir, "folder with one sub-folder per person")->required();
  cmd->add_flag("--aligned", a.aligned, "the images are already aligned 112x112 crops (skip detection)");
  cmd->add_option("--min-quality", a.min_quality, "refuse faces whose quality is below this");
  add_model_options(*cmd, a.o);
  add_index_option(*cmd, a.o);
  add_db_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_enroll(a)); });
}

}  // namespace facerec::cli
