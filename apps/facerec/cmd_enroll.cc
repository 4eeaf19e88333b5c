// facerec enroll <dir>: one template per image of a folder-per-person tree.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "app.h"
#include "facerec/align.h"
#include "facerec/duplicates.h"

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

int run_enroll(const EnrollArgs& a) {
  std::error_code ec;
  if (!fs::is_directory(a.dir, ec)) {
    std::cerr << "facerec enroll: " << a.dir << " is not a folder (expected <dir>/<Person>/<images>)\n";
    return kExitError;
  }
  auto ctx = make_context(a.o);
  if (!ctx.ok()) { std::cerr << "facerec enroll: " << ctx.status().to_string() << "\n"; return kExitError; }
  auto gallery = Gallery::open(ctx->db, ctx->embedder_info());
  if (!gallery.ok()) { std::cerr << "facerec enroll: " << gallery.status().to_string() << "\n"; return kExitError; }

  // (person, file hash) already stored: enrolling the same file again is a no-op.
  std::set<std::pair<std::string, std::string>> stored;
  {
    auto people = (*gallery)->list_people();
    auto templates = (*gallery)->templates();
    if (!people.ok() || !templates.ok()) {
      std::cerr << "facerec enroll: cannot read the gallery\n";
      return kExitError;
    }
    std::map<int64_t, std::string> names;
    for (const auto& p : *people) names[p.id] = p.name;
    for (const auto& t : *templates) stored.insert({names[t.person_id], t.source_sha256});
  }

  // Duplicates under other names (same photo, or a face at or above the
  // same-person threshold): warned about, still enrolled. Without a measured
  // threshold only the same photo is checked.
  auto finder = DuplicateFinder::from_gallery(**gallery, ctx->threshold_source.empty() ? 2.f : ctx->threshold);
  if (!finder.ok()) { std::cerr << "facerec enroll: " << finder.status().to_string() << "\n"; return kExitError; }
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
  const int size = ctx->analyzer->embedder().spec().input.width;
  for (const auto& [person, images] : work) {
    if (g_interrupted) break;
    if (Status v = validate_identity_name(person); !v.ok()) {
      progress.line("skip    " + printable(person) + ": " + v.message());
      skipped += static_cast<int>(images.size());
      skip_reasons["invalid identity name"] += static_cast<int>(images.size());
      continue;
    }
    std::vector<NewTemplate> batch;
    std::vector<cv::Mat> crops;
    std::vector<Face> faces;
    for (const auto& path : images) {
      if (g_interrupted) break;
      progress.step(person + "/" + fs::path(path).filename().string());
      auto skip = [&](const std::string& reason, const std::string& detail) {
        progress.line("skip    " + printable(fs::relative(path, a.dir).string()) + ": " + detail);
        ++skipped;
        ++skip_reasons[reason];
      };
      auto sha = sha256_file(path);
      if (!sha.ok()) { skip("unreadable file", sha.status().message()); continue; }
      if (stored.count({person, *sha})) { ++duplicates; continue; }
      if (a.aligned) {
        auto img = load_image(path, ctx->limits);
        if (!img.ok()) { skip(to_string(img.status().code()), img.status().message()); continue; }
        if (img->cols != img->rows) {
          skip("not an aligned crop", "is " + std::to_string(img->cols) + "x" + std::to_string(img->rows) +
                                          "; --aligned expects square aligned crops");
          continue;
        }
        Face f;
        f.score = 1.f;
        faces.push_back(f);
        crops.push_back(std::move(img).value());
      } else {
        auto picked = pick_largest_face(*ctx, path);
        if (!picked.ok()) { skip(to_string(picked.status().code()), picked.status().message()); continue; }
        if (picked->faces_found > 1)
          progress.line("note    " + printable(fs::relative(path, a.dir).string()) + ": " +
                        std::to_string(picked->faces_found) + " faces, enrolled the largest");
        faces.push_back(picked->face);
        crops.push_back(align_face(picked->image, picked->face, size));
      }
      NewTemplate t;
      t.source = path;
      t.source_sha256 = *sha;
      t.det_score = faces.back().score;
      batch.push_back(std::move(t));
      stored.insert({person, *sha});
    }
    if (g_interrupted) break;  // this person's batch is dropped whole: never half-written
    if (batch.empty()) continue;
    auto embedded = ctx->analyzer->embed_aligned(crops);
    if (!embedded.ok()) { std::cerr << "facerec enroll: " << embedded.status().to_string() << "\n"; return kExitError; }
    std::vector<NewTemplate> keep;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& af = (*embedded)[i];
      if (!a.aligned) af.quality = ctx->analyzer->quality(&faces[i], crops[i], af.embedding);
      if (a.min_quality && af.quality < *a.min_quality) {
        progress.line("skip    " + printable(fs::relative(batch[i].source, a.dir).string()) + ": face quality " +
                      std::to_string(af.quality) + " is below --min-quality " + std::to_string(*a.min_quality));
        ++skipped;
        ++skip_reasons["quality below --min-quality"];
        continue;
      }
      batch[i].unit = std::move(af.embedding.unit);
      batch[i].norm = af.embedding.norm;
      keep.push_back(std::move(batch[i]));
    }
    if (keep.empty()) continue;
    for (const auto& t : keep) {
      for (const auto& m : finder->check(person, t.source_sha256, t.unit)) {
        char sim[16];
        std::snprintf(sim, sizeof sim, "%.3f", m.similarity);
        progress.line("warning " + printable(fs::relative(t.source, a.dir).string()) + " (" + printable(person) + "): " +
                      to_string(m.kind) + " as " + printable(m.person) + "'s " +
                      (m.template_id ? "template #" + std::to_string(m.template_id) : std::string("photo")) + " (" +
                      printable(m.source) + "), similarity " + sim +
                      (m.kind == DuplicateKind::kSameFace ? " >= same-person threshold " + std::to_string(finder->threshold()).substr(0, 5) : ""));
        ++duplicate_warnings;
      }
    }
    auto r = (*gallery)->enroll(person, keep);
    if (!r.ok()) { std::cerr << "facerec enroll: " << r.status().to_string() << "\n"; return kExitError; }
    for (const auto& t : keep) (void)finder->add(person, 0, t.source, t.source_sha256, t.unit);
    added += r->added;
    duplicates += r->duplicates;
    ++people_enrolled;
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
  add_db_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_enroll(a)); });
}

}  // namespace facerec::cli
