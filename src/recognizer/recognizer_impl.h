// Private to src/recognizer: FaceRecognizer's state, shared by recognizer.cc
// (creation, identify, verify, edits) and enroll.cc (the enrolment workflow).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>

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

  // Serialises writers (the gallery connection is used only under it).
  std::mutex write_mu;
  std::unique_ptr<Gallery> gallery;
  // The newest gallery change the index includes (written under write_mu;
  // atomic so /v1/health can read it without waiting for a writer).
  std::atomic<int64_t> applied_seq{0};

  // follow_gallery(): the follower thread and what it last saw.
  mutable std::mutex follow_mu;
  std::condition_variable follow_cv;
  bool follow_stop = false;
  std::thread follower;
  // Under follow_mu. Its applied_seq is not kept: gallery_sync_status() reads
  // applied_seq above, the one copy.
  GallerySyncStatus sync;
  std::chrono::steady_clock::time_point last_check = std::chrono::steady_clock::now();

  void log_info(const std::string& msg) const {
    if (config.logger) config.logger->info(msg);
  }
};

// Applies the gallery changes with applied_seq < seq < below (every one when
// below is 0) to the index and the people map, then sets applied_seq. Needs
// write_mu; takes mu exclusively unless mu_held. Returns how many.
Result<int> catch_up(FaceRecognizer::Impl& impl, int64_t below, bool mu_held);

// After this process's own gallery write (enrol, remove, rename; write_mu and
// mu held): applies the other processes' changes committed before it, then
// counts the write as applied (the caller applies it to the index itself).
// If the change log cannot be read, applied_seq stays put and the next sync
// re-reads our change too, which is harmless (catch_up skips what it has).
void catch_up_to_own_write(FaceRecognizer::Impl& impl);

}  // namespace facerec
