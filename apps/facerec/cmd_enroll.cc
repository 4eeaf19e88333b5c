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
  bool no_face_check = false;
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
  // Everything in the root that is not enrolled is listed in the summary,
  // with why: nothing is ignored silently.
  std::vector<std::pair<std::string, std::string>> ignored;  // (path relative to dir, reason)
  {
    std::vector<fs::directory_entry> entries;
    for (auto it = fs::directory_iterator(a.dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      entries.push_back(*it);
    // Real folders before links, each by name, so a folder reached twice (a
    // symlink to it) is enrolled once, under its own name.
    std::sort(entries.begin(), entries.end(), [](const fs::directory_entry& x, const fs::directory_entry& y) {
      std::error_code e1, e2;
      const bool lx = x.is_symlink(e1), ly = y.is_symlink(e2);
      return lx != ly ? ly : x.path() < y.path();
    });
    std::map<fs::path, std::string> seen;  // canonical folder -> person
    for (const auto& e : entries) {
      const std::string name = e.path().filename().string();
      std::error_code e1;
      const bool link = e.is_symlink(e1);
      if (!e.exists(e1)) {
        ignored.emplace_back(name, "broken symlink");
        continue;
      }
      if (!e.is_directory(e1)) {
        ignored.emplace_back(name, e.is_regular_file(e1) ? "a file outside any person folder (expected <dir>/<Person>/<images>)"
                                                         : "not a folder or a file (device, FIFO or socket)");
        continue;
      }
      const fs::path canon = fs::canonical(e.path(), e1);
      if (auto it = seen.find(canon); !e1 && it != seen.end()) {
        ignored.emplace_back(name, std::string(link ? "a symlink to" : "the same folder as") + " '" + it->second +
                                       "', enrolled once under that name");
        continue;
      }
      if (!e1) seen[canon] = name;
      auto imgs = collect_images({e.path().string()});
      if (imgs.empty()) {
        ignored.emplace_back(name, "empty person folder");
        continue;
      }
      total += imgs.size();
      work.emplace_back(name, std::move(imgs));
    }
    std::sort(work.begin(), work.end());
  }
  auto print_ignored = [&] {
    for (const auto& [path, why] : ignored) std::cout << "ignored " << printable(path) << ": " << why << "\n";
  };
  if (work.empty()) {
    print_ignored();
    std::cerr << "facerec enroll: no person folders with files in " << a.dir << " (expected <dir>/<Person>/<images>)\n";
    return kExitError;
  }

  Progress progress(total);
  std::map<std::string, int> skip_reasons;
  int people_enrolled = 0, added = 0, duplicates = 0, skipped = 0;
  EnrollOptions opt;
  opt.aligned = a.aligned;
  opt.skip_face_check = a.no_face_check;
  opt.min_quality = a.min_quality;
  opt.cancel = &g_interrupted;
  // Lexical: a symlink is shown where it is, not where it points.
  const auto rel = [&](const std::string& p) { return printable(fs::path(p).lexically_relative(a.dir).string()); };
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
    for (const auto& other : r->differs_only_by_case)
      progress.line("warning " + printable(r->name) + " and " + printable(other) +
                    " differ only by case: they are two people; if they are one person, keep one name (facerec gallery remove)");
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
  if (!ignored.empty()) std::cout << "; " << ignored.size() << " ignored";
  std::cout << "\n";
  print_ignored();
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
  cmd->add_flag("--aligned", a.aligned, "the images are already aligned 112x112 crops (skip alignment; each must still hold an aligned face)");
  cmd->add_flag("--no-face-check", a.no_face_check,
                "with --aligned: do not check that each crop holds an ArcFace-aligned face (crops aligned another way)");
  cmd->add_option("--min-quality", a.min_quality, "refuse faces whose quality is below this");
  add_model_options(*cmd, a.o);
  add_index_option(*cmd, a.o);
  add_db_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_enroll(a)); });
}

}  // namespace facerec::cli
