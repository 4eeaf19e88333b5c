// What every evaluation protocol shares: the hooks a caller passes in
// (progress, cancellation, notes) and the folder-per-person layout the
// datasets come in.
//
// The protocols themselves, one per header:
// - eval_lfw.h: LFW 10-fold verification;
// - eval_identification.h: 1:N identification on folder trees;
// - eval_lfw_open_set.h: the LFW open-set protocol at several gallery sizes;
// - eval_calibration.h: the impostor calibration on LFW's calibration people;
// - eval_detection.h: WIDER FACE average precision;
// - eval_erc_protocol.h: face-quality scores judged by error-versus-reject curves.
//
// Every protocol returns its numbers as a typed struct (or a Status); none
// prints, aborts or lets an exception out. Progress and notes go through the
// hooks.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "facerec/status.h"

namespace facerec::eval {

// Optional callbacks; any may be empty. They are called on the thread that
// runs the protocol.
struct ProtocolHooks {
  // A phase advanced: `what` names it ("embedding LFW images"), done counts
  // 1..total within the phase.
  std::function<void(const std::string& what, size_t done, size_t total)> progress;
  // Polled between images: true stops the protocol with kCancelled (work
  // already kept in a cache is saved first).
  std::function<bool()> cancelled;
  // Something the user may want to know that is not a result (e.g. "read N
  // cached measurements from F").
  std::function<void(const std::string& message)> note;

  void step(const std::string& what, size_t done, size_t total) const {
    if (progress) progress(what, done, total);
  }
  bool stop() const { return cancelled && cancelled(); }
  void tell(const std::string& message) const {
    if (note) note(message);
  }
};

// Every file under `dir`, recursively, sorted (what `facerec enroll` takes
// from a folder: the loader, not the name, decides what is an image, so
// nothing is dropped silently). A symlink to a folder is listed, not
// followed. A missing folder gives an empty list.
std::vector<std::string> list_images(const std::string& dir);

// One person's folder in a folder-per-person tree.
struct PersonFolder {
  std::string name;                 // the sub-folder's name
  std::vector<std::string> images;  // list_images(dir/name), never empty
};

// The sub-folders of `dir`, sorted by name, each with its images; folders
// without files are skipped. kNotFound when `dir` is not a folder or has no
// person folder with images.
Result<std::vector<PersonFolder>> person_folders(const std::string& dir);

}  // namespace facerec::eval
