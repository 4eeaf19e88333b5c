// Private to src/recognizer: FaceRecognizer's state, shared by recognizer.cc
// (creation, identify, verify, edits) and enroll.cc (the enrolment workflow).
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>

#include <spdlog/logger.h>

#include "facerec/recognizer.h"

namespace facerec {

struct FaceRecognizer::Impl {
  // Declared first so it is destroyed last: sessions need their runtime.
  std::unique_ptr<Runtime> owned_runtime;
  Manifest manifest;
  RecognizerConfig config;
  std::unique_ptr<FaceAnalyzer> analyzer;
  bool weighted = false;  // index rows weighted by norm (MagFace-style embedders)

  // Guards index and people: shared for identify/people(), exclusive while
  // an edit changes them. Lock order: write_mu, then mu.
  mutable std::shared_mutex mu;
  SearchIndex index;
  struct Person {
    int templates = 0;
    std::set<std::string> sources;  // content sha256 of each template's source
  };
  std::map<std::string, Person> people;
  size_t templates = 0;

  // Serialises writers (the SQLite connection is used only under it).
  std::mutex write_mu;
  std::unique_ptr<Gallery> gallery;

  void log_info(const std::string& msg) const {
    if (config.logger) config.logger->info(msg);
  }
};

// sha256 of bytes as lowercase hex.
std::string sha256_hex_of(const std::string& bytes);

}  // namespace facerec
