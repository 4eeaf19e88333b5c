// A third-party program on the installed library: resolve a config, load
// the manifest from the installed search path, and build a recogniser.
#include <cstdio>
#include "facerec/recognizer.h"
int main() {
  facerec::ConfigLayer flags;
  flags.threshold = 0.4f;
  auto c = facerec::resolve_config(flags);
  if (!c.ok()) return 1;
  std::printf("manifest %s\n", facerec::Manifest::default_path().c_str());
  c->gallery = facerec::GalleryMode::kNone;
  auto rec = facerec::FaceRecognizer::create(*c);
  if (!rec.ok()) { std::printf("create: %s\n", rec.status().to_string().c_str()); return 2; }
  std::printf("embedder %s threshold %.2f\n", (*rec)->embedder_spec().id.c_str(), (*rec)->threshold()->value);
  return 0;
}
