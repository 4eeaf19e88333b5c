// FaceRecognizer: the product in one object. Configuration, the match
// threshold, enrolment, the gallery -> index -> decision chain and verify live
// here, so the CLI, the REST service (`facerec serve`) and any C++ program
// print or serialise the same results and never re-implement them.
//
//   auto config = facerec::resolve_config(flags, "config.json");   // flags > file > defaults
//   auto rec = facerec::FaceRecognizer::create(*config);
//   auto who = (*rec)->identify(image);                            // typed result or Status
//
// Ownership: a FaceRecognizer owns its models (loaded once), its gallery
// connection and its in-memory search index. create() either builds its own
// ONNX Runtime or borrows one (tests pass a fake Runtime); a borrowed Runtime
// must outlive the recognizer.
//
// Threads: every public call is safe from any number of threads at once.
// - analyze/detect/verify touch only immutable models.
// - identify and people() take the index lock shared; enroll, remove and rename
//   take it exclusively only for the moment they change the gallery and the
//   index (detection and embedding run outside any lock). Writers are also
//   serialised among themselves. An enrolment is visible to every identify
//   that starts after enroll() returns; the index is updated in place
//   (SearchIndex::add_person_rows), never rebuilt.
// - The gallery (a SQLite file or a PostgreSQL database) is the truth.
//   Changes other processes make are applied in place by sync_gallery(),
//   or continuously by follow_gallery() (PostgreSQL LISTEN/NOTIFY; SQLite
//   polling); without either they are not seen until the next create().
// Errors: every call returns a Status or Result; no exception escapes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/detect.h"
#include "facerec/detect_policy.h"
#include "facerec/duplicates.h"
#include "facerec/gallery.h"
#include "facerec/image.h"
#include "facerec/models.h"
#include "facerec/open_set.h"
#include "facerec/pipeline.h"
#include "facerec/runtime.h"
#include "facerec/search.h"
#include "facerec/status.h"

namespace spdlog {
class logger;
}

namespace facerec {

// ---- Configuration ------------------------------------------------------------

enum class GalleryMode {
  kNone,       // no gallery: analyze, detect and verify only
  kCreate,     // open the gallery at db, creating it when absent
  kMustExist,  // open the gallery at db; kNotFound when the file is absent
  kReadOnly,   // as kMustExist, opened read-only: works on read-only storage; edits are kIo "read-only"
};

struct RecognizerConfig {
  std::string manifest;   // model manifest; empty: Manifest::default_path()
  std::string detector;   // manifest id, .onnx path, or family:path; empty: the manifest default
  std::string embedder;   // same for the embedder
  // The gallery: a SQLite file path, or a postgresql:// (postgres://) URI
  // (facerec/gallery_store.h).
  std::string db = "gallery.db";
  GalleryMode gallery = GalleryMode::kCreate;
  int threads = 0;        // ONNX Runtime intra-op threads per session; 0: one per core
  int max_batch = 8;      // faces per embedder call
  DetectOptions detection;  // the default detection options (per call overridable)
  // What detection does around the detector: letterbox/tile for stretched
  // inputs, padded retry for frame-filling faces (facerec/detect_policy.h).
  DetectPolicyOptions detect_policy = default_detect_policy();
  // The open-set decision. fpir: the fraction of non-enrolled probes the
  // user accepts being named (FPIR), turned into a threshold for the gallery
  // at hand by the embedder's impostor calibration (facerec/open_set.h).
  // threshold, when set, overrides it: below this cosine similarity the
  // answer is unknown.
  double fpir = kDefaultFpir;
  std::optional<float> threshold;
  ImageLimits limits;     // pixels (checked from the header before decoding) and file bytes
  // Which search answers identify (facerec/search.h): exact, hnsw, or auto
  // (exact below kAutoHnswTemplates templates). For a SQLite gallery file the
  // HNSW graph is kept beside it in db + ".hnsw" (checksummed; rebuilt when
  // missing, damaged or stale) and saved on destruction when enrolment or
  // removal changed it; for PostgreSQL it is built in memory at each start.
  IndexMode index = IndexMode::kAuto;
  HnswOptions hnsw;
  // Where the library's messages go (e.g. "enrolled the largest of 3 faces").
  // Null: nowhere. The library never writes to stderr itself.
  std::shared_ptr<spdlog::logger> logger;
};

// One layer of settings, as given by flags or a JSON config file; an unset
// field says nothing. JSON keys: manifest, detector, embedder, db, threads,
// threshold, score_threshold, nms_threshold, max_pixels, detect_policy, fpir,
// index (unknown keys are ignored).
struct ConfigLayer {
  std::optional<std::string> manifest, detector, embedder, db;
  std::optional<int> threads;
  std::optional<float> threshold, score_threshold, nms_threshold;
  std::optional<double> fpir;
  std::optional<int64_t> max_pixels;
  std::optional<std::string> detect_policy;  // "none", "default" or "key=value,..." (parse_detect_policy)
  std::optional<std::string> index;          // "exact", "hnsw" or "auto" (parse_index_mode)
};
// kNotFound for a missing file, kInvalidArgument (naming the file and the
// key) for malformed JSON, a directory or device, a value of the wrong type
// or out of range, or an unknown key ("did you mean ...?" for a near miss).
// The keys, their types and ranges are one table, kConfigKeys in
// src/recognizer/config.cc: a new key is a new row there.
Result<ConfigLayer> load_config_file(const std::string& path);
// `top` wins field by field.
ConfigLayer overlay(const ConfigLayer& top, const ConfigLayer& below);
// The precedence the CLI and the service share: flags, then the config file
// (when config_file is not empty), then the defaults. Ranges are checked here
// (kInvalidArgument naming the flag: --det-score 0..1, --nms (0,1],
// --threshold -1..1, --max-pixels > 0, --threads >= 0).
Result<RecognizerConfig> resolve_config(const ConfigLayer& flags, const std::string& config_file = "");

// The match threshold actually used, and why. The ONE place the decision
// threshold is resolved (an FPIR-based policy plugs in here: it may depend on
// the gallery size). kInvalidArgument when nothing gives a threshold (an
// embedder without a measured default and none configured).
struct ThresholdChoice {
  float value = 0.f;
  std::string source;     // "given" for an override, else the policy's reason
  DecisionPolicy policy;  // the whole decision: fpir, N, rule, source, reason
};
// gallery_people: N (1 for verify); gallery_templates: every template (0 =
// N); threshold / fpir: this call's overrides of the config's.
Result<ThresholdChoice> resolve_threshold(const RecognizerConfig& config, const ModelSpec& embedder,
                                          size_t gallery_people, size_t gallery_templates = 0,
                                          TemplateRule rule = kDefaultTemplateRule,
                                          std::optional<float> threshold = {}, std::optional<double> fpir = {});

// ---- Results --------------------------------------------------------------------

struct IdentifyOptions {
  int top_k = 5;                          // candidates per face, 1..1000
  std::optional<float> threshold;         // this call only; -1..1; overrides fpir
  std::optional<double> fpir;             // this call only; (0, 1)
  std::optional<DetectOptions> detection; // this call only
};

struct IdentifiedFace {
  AnalyzedFace face;   // box, landmarks, score (original-image pixels), embedding, quality
  Decision decision;   // identity ("" = unknown), best similarity, top-k candidates
  // Non-empty when the face is too small, blurred or turned to be trusted
  // (FaceAnalyzer::low_quality_reason: the embedder's measured quality
  // floor). Such a face abstains: decision.identity is empty whatever it
  // matched; candidates are still reported.
  std::string low_quality;
  // Why the answer is what it is: "match", "below_threshold",
  // "empty_gallery" or "low_quality".
  const char* reason() const {
    return !low_quality.empty() ? "low_quality" : decision.known() ? "match"
           : decision.candidates.empty() ? "empty_gallery" : "below_threshold";
  }
};

struct IdentifyResult {
  int width = 0, height = 0;  // the image, pixels
  ThresholdChoice threshold;
  std::vector<IdentifiedFace> faces;  // by descending detection score
};

struct VerifyResult {
  float similarity = 0.f;  // cosine of the two largest faces, -1..1
  bool same = false;       // similarity >= threshold
  ThresholdChoice threshold;
  AnalyzedFace face1, face2;
  int faces1 = 0, faces2 = 0;  // faces found in each image (the largest is used)
};

// One image to enrol: a file path, or encoded bytes already in memory (an
// HTTP upload), named by `source` in messages and in the gallery.
struct EnrollInput {
  std::string source;
  std::optional<std::string> bytes;
};

struct EnrollOptions {
  // Inputs are crops of the embedder's input size, aligned on the ArcFace
  // template: no alignment. Each must still hold a face there (detected on
  // the padded crop, landmarks within 12 px of the template at 112x112), or
  // it is skipped: a blank or noise crop would otherwise be a template.
  bool aligned = false;
  // With `aligned`: skip that face check, for crops aligned another way
  // (e.g. a custom embedder's training crops). Nothing then stops a blank.
  bool skip_face_check = false;
  std::optional<float> min_quality;  // refuse faces below this quality
  const std::atomic<bool>* cancel = nullptr;  // set -> kCancelled, nothing written for this person
};

enum class EnrollState { kAdded, kDuplicate, kSkipped };
enum class EnrollSkip {
  kNone,
  kUnreadable,   // the file could not be read (hashing it failed)
  kImage,        // load/decode/detect failed: `status` says why (kDecode, kTooLarge, kNoFace, ...)
  kNotAligned,   // --aligned but not a size x size crop, or a face far from the ArcFace template (an aligned crop with no face is kImage, kNoFace)
  kLowQuality,   // below min_quality
};

struct EnrollItem {
  std::string source;
  EnrollState state = EnrollState::kSkipped;
  EnrollSkip skip = EnrollSkip::kNone;
  Status status;          // why it was skipped
  int faces_found = 0;    // raw photos: faces detected (the largest is enrolled)
  float quality = 0.f;
  int64_t template_id = 0;  // kAdded: the gallery row
  // kAdded: templates of OTHER people this one duplicates (the same photo by
  // content hash, or a face at or above the embedder's one-to-one
  // same-person threshold, ModelSpec::match_threshold). A warning: the
  // template is still enrolled. A common way galleries go wrong.
  std::vector<DuplicateMatch> duplicates_elsewhere;
};

struct EnrollReport {
  std::string name;  // as stored: NFC (facerec/names.h)
  // People already in the gallery whose names differ from this one only by
  // case ("anne" vs "Anne"): two people as far as facerec is concerned, but
  // often one person typed twice. A warning; enrolment goes ahead.
  std::vector<std::string> differs_only_by_case;
  std::vector<EnrollItem> items;  // one per input, in order
  int added = 0, duplicates = 0, skipped = 0;
};

struct PersonSummary {
  std::string name;
  int templates = 0;
};

// Where this recognizer's in-memory index stands against the gallery's
// change log (several processes on one gallery).
struct GallerySyncStatus {
  std::string backend;             // "sqlite" or "postgresql"; empty without a gallery
  bool following = false;          // follow_gallery() is running
  bool connected = true;           // the last look at the gallery succeeded
  int64_t applied_seq = 0;         // the newest change the index includes
  int64_t head_seq = 0;            // the newest change in the gallery, as last read
  double seconds_since_check = 0;  // since the change log was last read successfully
  std::string last_error;          // the last failure to read it ("" when none)
  int64_t behind() const { return head_seq > applied_seq ? head_seq - applied_seq : 0; }
};

// ---- The facade -------------------------------------------------------------------

class FaceRecognizer {
 public:
  // Loads the manifest, builds an ONNX Runtime, loads the models and opens
  // the gallery (per config.gallery). Any failure is a Status; nothing is
  // created on disk unless the gallery mode is kCreate.
  static Result<std::unique_ptr<FaceRecognizer>> create(const RecognizerConfig& config);
  // Same over a caller's runtime and manifest (e.g. a fake Runtime in tests).
  static Result<std::unique_ptr<FaceRecognizer>> create(Runtime& runtime, const Manifest& manifest,
                                                        const RecognizerConfig& config);
  ~FaceRecognizer();
  FaceRecognizer(const FaceRecognizer&) = delete;
  FaceRecognizer& operator=(const FaceRecognizer&) = delete;

  // Image loading under the configured limits (8-bit BGR out).
  Result<cv::Mat> load(const std::string& path) const;
  Result<cv::Mat> decode(const std::string& bytes, const std::string& what) const;

  // Every face (8-bit BGR in), by descending score.
  Result<std::vector<Face>> detect(const cv::Mat& bgr, const std::optional<DetectOptions>& options = {}) const;
  // Detect, align and embed every face; quality per face.
  Result<std::vector<AnalyzedFace>> analyze(const cv::Mat& bgr,
                                            const std::optional<DetectOptions>& options = {}) const;
  // The largest face of an image, embedded; kNoFace when there is none.
  // faces_found (optional) receives how many faces there were.
  Result<AnalyzedFace> analyze_largest(const cv::Mat& bgr, int* faces_found = nullptr) const;

  // Every face named against the gallery, or unknown. An empty gallery names
  // nobody. Needs a gallery (kInvalidArgument without).
  Result<IdentifyResult> identify(const cv::Mat& bgr, const IdentifyOptions& options = {}) const;
  // The top-k gallery candidates of embeddings already made (a video track's),
  // one list per query, best first (one sgemm). A query whose length is not
  // the embedder's dimension is kInvalidArgument.
  Result<std::vector<std::vector<Candidate>>> search(const std::vector<std::span<const float>>& queries,
                                                     int top_k) const;
  // Are the largest faces of two images the same person? kNoFace when either
  // image has none.
  Result<VerifyResult> verify(const cv::Mat& bgr1, const cv::Mat& bgr2,
                              const std::optional<float>& threshold = {}) const;

  // Enrols every usable input as a template of `name`, in ONE gallery
  // transaction: the person is written whole or not at all (a crash or
  // cancel leaves nothing of this call). Inputs the person already has (same
  // content sha256) are duplicates; unusable ones are skipped with the
  // reason. An invalid name is kInvalidArgument; a call where nothing is
  // usable returns the report with added == 0 and writes nothing.
  Result<EnrollReport> enroll(const std::string& name, const std::vector<EnrollInput>& inputs,
                              const EnrollOptions& options = {});
  Status remove(const std::string& name);                           // kNotFound when absent
  Status rename(const std::string& from, const std::string& to);    // kNotFound / kAlreadyExists

  // Applies every change other processes made to the gallery since this
  // recognizer last looked (enrolments, removals, renames, read from the
  // change log in commit order), in place: nothing is reloaded. Returns how
  // many were applied. Safe from any thread.
  Result<int> sync_gallery();
  // Starts one background thread that waits for the gallery's change
  // notifications (PostgreSQL LISTEN/NOTIFY; SQLite: polling) and calls
  // sync_gallery(), looking at least every `poll` even without one (so a
  // lost notification or connection costs at most `poll`). A lost
  // connection is retried every `poll`; gallery_sync_status() says how far
  // behind the index is meanwhile. The destructor stops it (within `poll`).
  Status follow_gallery(std::chrono::milliseconds poll = std::chrono::milliseconds(500));
  GallerySyncStatus gallery_sync_status() const;

  // The gallery's people, by name.
  std::vector<PersonSummary> people() const;
  size_t template_count() const;
  bool has_gallery() const;

  // The threshold identify() would use now (see resolve_threshold).
  Result<ThresholdChoice> threshold() const;
  const ModelSpec& detector_spec() const;
  const ModelSpec& embedder_spec() const;
  EmbedderInfo embedder_info() const;
  const RecognizerConfig& config() const;
  const Manifest& manifest() const;
  // The stage chain (immutable, thread-safe): for tools that need the stages
  // themselves (alignment, evaluation).
  const FaceAnalyzer& analyzer() const;

  struct Impl;

 private:
  explicit FaceRecognizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace facerec
