// facerec verify <img1> <img2>: are the largest faces of two photos the same person?
#include <iostream>

#include <nlohmann/json.hpp>

#include "app.h"
#include "facerec/json.h"

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
  const FaceRecognizer& rec = *ctx->recognizer;
  cv::Mat images[2];
  const std::string* paths[2] = {&a.img1, &a.img2};
  for (int i = 0; i < 2; ++i) {
    auto img = rec.load(*paths[i]);
    if (!img.ok()) { std::cerr << "facerec verify: " << img.status().to_string() << "\n"; return kExitError; }
    images[i] = std::move(img).value();
  }
  auto v = rec.verify(images[0], images[1]);
  if (!v.ok()) {
    Status s = v.status();
    // The library says "image N: ..."; name the file instead.
    for (int i = 0; i < 2; ++i) {
      const std::string tag = "image " + std::to_string(i + 1) + ": ";
      if (s.message().rfind(tag, 0) == 0) s = Status(s.code(), *paths[i] + ": " + s.message().substr(tag.size()));
    }
    std::cerr << "facerec verify: " << s.to_string() << "\n";
    return kExitError;
  }
  if (a.o.json) {
    std::cout << verify_json(a.img1, a.img2, *v, rec.detector_spec().id, rec.embedder_spec().id).dump() << "\n";
  } else {
    const int found[2] = {v->faces1, v->faces2};
    for (int i = 0; i < 2; ++i)
      if (found[i] > 1) std::cout << "note: " << *paths[i] << " has " << found[i] << " faces; used the largest\n";
    std::printf("similarity %.4f %s threshold %.3f: %s\n", v->similarity, v->same ? ">=" : "<", v->threshold.value,
                v->same ? "same person" : "different people");
    std::printf("decision: %s\n", decision_text(v->threshold.policy).c_str());
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
