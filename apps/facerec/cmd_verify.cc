// facerec verify <img1> <img2>: are the largest faces of two photos the same person?
#include <iostream>

#include <nlohmann/json.hpp>

#include "app.h"

namespace facerec::cli {
namespace {

struct VerifyArgs {
  CommonOptions o;
  std::string img1, img2;
};

int run_verify(const VerifyArgs& a) {
  auto ctx = make_context(a.o);
  if (!ctx.ok()) { std::cerr << "facerec verify: " << ctx.status().to_string() << "\n"; return kExitError; }
  if (Status s = ctx->require_threshold(); !s.ok()) { std::cerr << "facerec verify: " << s.to_string() << "\n"; return kExitError; }
  AnalyzedFace faces[2];
  int found[2];
  const std::string* paths[2] = {&a.img1, &a.img2};
  for (int i = 0; i < 2; ++i) {
    auto p = pick_largest_face(*ctx, *paths[i]);
    if (!p.ok()) { std::cerr << "facerec verify: " << p.status().to_string() << "\n"; return kExitError; }
    auto e = ctx->analyzer->embed_faces(p->image, {p->face});
    if (!e.ok()) { std::cerr << "facerec verify: " << e.status().to_string() << "\n"; return kExitError; }
    faces[i] = std::move((*e)[0]);
    found[i] = p->faces_found;
  }
  const float sim = cosine(faces[0].embedding, faces[1].embedding);
  // 1:1 is a gallery of one person with one template: N = 1.
  auto policy = ctx->decision_policy(1, 1, kDefaultTemplateRule);
  if (!policy.ok()) { std::cerr << "facerec verify: " << policy.status().to_string() << "\n"; return kExitError; }
  const bool same = sim >= policy->threshold;
  if (a.o.json) {
    std::cout << nlohmann::json({{"image1", a.img1}, {"image2", a.img2}, {"similarity", sim}, {"same", same},
                                 {"threshold", policy->threshold},
                                 {"decision", nlohmann::json::parse(decision_json(*policy))},
                                 {"faces1", found[0]}, {"faces2", found[1]},
                                 {"quality1", faces[0].quality}, {"quality2", faces[1].quality},
                                 {"detector", ctx->analyzer->detector().spec().id},
                                 {"embedder", ctx->analyzer->embedder().spec().id}}).dump() << "\n";
  } else {
    for (int i = 0; i < 2; ++i)
      if (found[i] > 1) std::cout << "note: " << *paths[i] << " has " << found[i] << " faces; used the largest\n";
    std::printf("similarity %.4f %s threshold %.3f: %s\n", sim, same ? ">=" : "<", policy->threshold,
                same ? "same person" : "different people");
    std::printf("decision: %s\n", decision_text(*policy).c_str());
  }
  return kExitOk;
}

}  // namespace

void register_verify(CLI::App& app, std::function<void(int)> set_rc) {
  static VerifyArgs a;
  auto* cmd = app.add_subcommand("verify", "compare the largest face of two images: same person or not");
  cmd->add_option("img1", a.img1, "first image")->required();
  cmd->add_option("img2", a.img2, "second image")->required();
  cmd->add_flag("--json", a.o.json, "print one JSON object");
  add_model_options(*cmd, a.o);
  add_threshold_option(*cmd, a.o);
  cmd->callback([set_rc] { set_rc(run_verify(a)); });
}

}  // namespace facerec::cli
