// facerec embed <image|dir>...: the embedding of one face per image.
//
// For checking a model outside the gallery: training/ compares these vectors
// with PyTorch's (export parity), and the norm is MagFace's quality. With
// --aligned the images are crops fed straight to the embedder (resized to its
// input size when they differ, as enroll --aligned does); otherwise the
// largest detected face is aligned first.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app.h"

namespace facerec::cli {
namespace {

struct EmbedArgs {
  CommonOptions o;
  std::vector<std::string> inputs;
  bool aligned = false;
};

int run_embed(const EmbedArgs& a) {
  auto ctx = make_context(a.o);
  if (!ctx.ok()) { std::cerr << "facerec embed: " << ctx.status().to_string() << "\n"; return kExitError; }
  const auto images = collect_images(a.inputs);
  if (images.empty()) { std::cerr << "facerec embed: no images under the given paths\n"; return kExitError; }
  int failed = 0;
  for (const auto& path : images) {
    if (g_interrupted) return kExitInterrupted;
    Result<std::vector<AnalyzedFace>> faces = Status(ErrorCode::kInternal, "unset");
    if (a.aligned) {
      auto img = load_image(path, ctx->limits);
      if (!img.ok()) faces = img.status();
      else faces = ctx->analyzer->embed_aligned({*img});
    } else {
      auto picked = pick_largest_face(*ctx, path);
      if (!picked.ok()) faces = picked.status();
      else faces = ctx->analyzer->embed_faces(picked->image, {picked->face});
    }
    if (!faces.ok()) {
      ++failed;
      if (a.o.json) std::cout << nlohmann::json({{"image", path}, {"error", faces.status().to_string()}}).dump() << "\n";
      else std::cerr << "facerec embed: " << path << ": " << faces.status().to_string() << "\n";
      continue;
    }
    const AnalyzedFace& f = (*faces)[0];
    if (a.o.json) {
      // "embedding" is the unit vector; unit * norm is the raw network output.
      std::cout << nlohmann::json({{"image", path}, {"embedding", f.embedding.unit}, {"norm", f.embedding.norm},
                                   {"quality", f.quality}, {"embedder", ctx->analyzer->embedder().spec().id}})
                       .dump()
                << "\n";
    } else {
      std::printf("%s: dim %zu norm %.4f quality %.4f\n", printable(path).c_str(), f.embedding.unit.size(),
                  f.embedding.norm, f.quality);
    }
  }
  // A batch command: bad files are reported and skipped; fail only when none worked.
  return failed == static_cast<int>(images.size()) ? kExitError : kExitOk;
}

}  // namespace

void register_embed(CLI::App& app, std::function<void(int)> set_rc) {
  static EmbedArgs a;
  auto* cmd = app.add_subcommand("embed", "print the embedding (unit vector), raw norm and quality of one face per image");
  cmd->add_option("inputs", a.inputs, "images or folders")->required();
  cmd->add_flag("--aligned", a.aligned, "the images are aligned crops (skip detection)");
  cmd->add_flag("--json", a.o.json, "one JSON object per image: image, embedding, norm, quality");
  add_model_options(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_embed(a)); });
}

}  // namespace facerec::cli
