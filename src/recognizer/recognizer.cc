// FaceRecognizer: creation, identify, verify and the gallery edits. The
// enrolment workflow is in enroll.cc.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "recognizer/recognizer_impl.h"

namespace facerec {


namespace {

// Whole-call guard: a library call never lets an exception out.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string(what) + ": " + e.what());
  } catch (...) {
    return Status(ErrorCode::kInternal, std::string(what) + ": unknown exception");
  }
}

float index_weight(float norm) { return std::isfinite(norm) && norm > 1e-6f ? norm : 1e-6f; }

// Where the HNSW graph of a gallery file is kept; none for an in-memory
// gallery or a PostgreSQL one (a URI is no file path: the graph stays in memory).
std::string hnsw_path(const std::string& db) {
  if (db.empty() || db == ":memory:" || db.rfind("file:", 0) == 0 || is_postgres_uri(db)) return "";
  return db + ".hnsw";
}

}  // namespace

FaceRecognizer::FaceRecognizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceRecognizer::~FaceRecognizer() {
  if (!impl_) return;
  // The follower uses the whole Impl: stop it first.
  {
    std::lock_guard lock(impl_->follow_mu);
    impl_->follow_stop = true;
  }
  impl_->follow_cv.notify_all();
  if (impl_->follower.joinable()) impl_->follower.join();
  try {
    // Enrolment and removal updated the graph in place: keep it for the next
    // open (a failure only costs a rebuild then).
    std::unique_lock lock(impl_->mu);
    Status s = impl_->index.save_if_dirty();
    if (!s.ok()) impl_->log_info("search index not saved: " + s.message());
  } catch (...) {
  }
}

Result<std::unique_ptr<FaceRecognizer>> FaceRecognizer::create(const RecognizerConfig& config) {
  return guarded("creating the recognizer", [&]() -> Result<std::unique_ptr<FaceRecognizer>> {
    FACEREC_ASSIGN_OR_RETURN(Manifest manifest,
                             config.manifest.empty() ? Manifest::load_default() : Manifest::load(config.manifest));
    RuntimeOptions ro;
    ro.intra_op_threads = config.threads;
    FACEREC_ASSIGN_OR_RETURN(std::unique_ptr<Runtime> runtime, create_onnxruntime(ro));
    FACEREC_ASSIGN_OR_RETURN(std::unique_ptr<FaceRecognizer> rec, create(*runtime, manifest, config));
    rec->impl_->owned_runtime = std::move(runtime);
    return rec;
  });
}

Result<std::unique_ptr<FaceRecognizer>> FaceRecognizer::create(Runtime& runtime, const Manifest& manifest,
                                                               const RecognizerConfig& config) {
  return guarded("creating the recognizer", [&]() -> Result<std::unique_ptr<FaceRecognizer>> {
    FACEREC_RETURN_IF_ERROR(validate_detect_options(config.detection));
    if (config.threshold && !(*config.threshold >= -1 && *config.threshold <= 1))
      return Status(ErrorCode::kInvalidArgument, "--threshold is a cosine similarity within -1..1");
    if (config.limits.max_pixels <= 0) return Status(ErrorCode::kInvalidArgument, "--max-pixels must be positive");
    auto impl = std::make_unique<Impl>();
    impl->manifest = manifest;
    impl->config = config;
    PipelineConfig pc;
    pc.detector = config.detector;
    pc.embedder = config.embedder;
    pc.detector_options = config.detection;
    pc.max_batch = config.max_batch;
    pc.detect_policy = config.detect_policy;
    FACEREC_ASSIGN_OR_RETURN(impl->analyzer, FaceAnalyzer::create(runtime, impl->manifest, pc));
    const ModelSpec& es = impl->analyzer->embedder().spec();
    impl->weighted = es.quality_magnitude;
    if (config.gallery != GalleryMode::kNone) {
      std::error_code ec;
      const bool must_exist = config.gallery == GalleryMode::kMustExist || config.gallery == GalleryMode::kReadOnly;
      if (must_exist && !is_postgres_uri(config.db) && !std::filesystem::exists(config.db, ec))
        return Status(ErrorCode::kNotFound, "no gallery at " + config.db + "; enrol people first (facerec enroll <dir> --db " +
                                                config.db + ")");
      const EmbedderInfo want = embedder_info_for(es, impl->analyzer->embedder().dim());
      if (config.gallery == GalleryMode::kReadOnly) {
        FACEREC_ASSIGN_OR_RETURN(impl->gallery, Gallery::open_read_only(config.db, &want));
      } else {
        FACEREC_ASSIGN_OR_RETURN(impl->gallery, Gallery::open(config.db, want));
      }
      // The index, the people and their photo hashes from ONE read
      // transaction, with the change log's head at that moment: a change
      // another process commits later is applied by the first sync, and none
      // is half in. (Separate reads let a person enrolled in between be
      // listed, with known photo hashes, but missing from the index; the
      // sync then took it as applied, see catch_up.)
      FACEREC_ASSIGN_OR_RETURN(GallerySnapshot snap, impl->gallery->snapshot());
      impl->applied_seq = snap.last_seq;
      impl->sync.backend = impl->gallery->store().backend();
      impl->sync.head_seq = impl->applied_seq;
      FACEREC_ASSIGN_OR_RETURN(impl->index, SearchIndex::from_stored(impl->gallery->embedder().dim, snap.people,
                                                                     snap.templates, kDefaultTemplateRule,
                                                                     impl->weighted));
      std::map<int64_t, std::string> names;
      for (const auto& p : snap.people) {
        names[p.id] = p.name;
        impl->people[p.name].templates += p.templates;  // += : two stored forms of one NFC name
        impl->templates += static_cast<size_t>(p.templates);
      }
      for (const auto& t : snap.templates) {
        auto it = names.find(t.person_id);
        if (it != names.end() && !t.source_sha256.empty()) impl->people[it->second].sources.insert(t.source_sha256);
      }
      std::vector<StoredTemplate>().swap(snap.templates);  // the index holds the rows now
      // The approximate index, when asked for or (auto) when the gallery is
      // large: loaded from beside the gallery when it is intact and current.
      std::string what;
      Status ms = impl->index.set_mode(config.index, hnsw_path(config.db), config.hnsw, &what);
      if (ms.code() == ErrorCode::kInvalidArgument) return ms;
      if (what != "exact") impl->log_info("search index: hnsw, " + what);
      if (!ms.ok()) impl->log_info("search index: " + ms.message() + " (searching with the graph built in memory)");
    }
    return std::unique_ptr<FaceRecognizer>(new FaceRecognizer(std::move(impl)));
  });
}

Result<cv::Mat> FaceRecognizer::load(const std::string& path) const { return load_image(path, impl_->config.limits); }

Result<cv::Mat> FaceRecognizer::decode(const std::string& bytes, const std::string& what) const {
  return decode_image(bytes, what, impl_->config.limits);
}

Result<std::vector<Face>> FaceRecognizer::detect(const cv::Mat& bgr, const std::optional<DetectOptions>& options) const {
  return guarded("detect", [&]() -> Result<std::vector<Face>> {
    return impl_->analyzer->detect(bgr, options ? *options : impl_->config.detection);
  });
}

Result<std::vector<AnalyzedFace>> FaceRecognizer::analyze(const cv::Mat& bgr,
                                                          const std::optional<DetectOptions>& options) const {
  return guarded("analyze", [&]() -> Result<std::vector<AnalyzedFace>> {
    return impl_->analyzer->analyze(bgr, options ? *options : impl_->config.detection);
  });
}

Result<AnalyzedFace> FaceRecognizer::analyze_largest(const cv::Mat& bgr, int* faces_found) const {
  return guarded("analyze", [&]() -> Result<AnalyzedFace> {
    FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, impl_->analyzer->detect(bgr, impl_->config.detection));
    if (faces_found) *faces_found = static_cast<int>(faces.size());
    if (faces.empty()) return Status(ErrorCode::kNoFace, "no face found");
    FACEREC_ASSIGN_OR_RETURN(auto embedded,
                             impl_->analyzer->embed_faces(bgr, {faces[static_cast<size_t>(largest_face(faces))]}));
    return std::move(embedded[0]);
  });
}

Result<IdentifyResult> FaceRecognizer::identify(const cv::Mat& bgr, const IdentifyOptions& options) const {
  return guarded("identify", [&]() -> Result<IdentifyResult> {
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "identify needs a gallery");
    if (options.top_k < 1 || options.top_k > 1000)
      return Status(ErrorCode::kInvalidArgument, "top_k must be within 1..1000");
    if (options.threshold && !(*options.threshold >= -1 && *options.threshold <= 1))
      return Status(ErrorCode::kInvalidArgument, "threshold is a cosine similarity within -1..1");
    FACEREC_ASSIGN_OR_RETURN(std::vector<AnalyzedFace> faces,
                             impl_->analyzer->analyze(bgr, options.detection ? *options.detection : impl_->config.detection));
    IdentifyResult r;
    r.width = bgr.cols;
    r.height = bgr.rows;
    std::shared_lock lock(impl_->mu);
    FACEREC_ASSIGN_OR_RETURN(r.threshold, resolve_threshold(impl_->config, impl_->analyzer->embedder().spec(),
                                                            impl_->index.people(), impl_->index.size(),
                                                            impl_->index.rule(), options.threshold, options.fpir));
    // Every face of the image against the gallery in one search (one sgemm).
    std::vector<std::span<const float>> queries;
    queries.reserve(faces.size());
    for (const auto& af : faces) {
      if (impl_->index.size() > 0 && af.embedding.unit.size() != static_cast<size_t>(impl_->index.dim()))
        return Status(ErrorCode::kInvalidArgument, "identify: an embedding has " +
                                                       std::to_string(af.embedding.unit.size()) +
                                                       " values, the gallery's index " +
                                                       std::to_string(impl_->index.dim()));
      queries.emplace_back(af.embedding.unit);
    }
    FACEREC_ASSIGN_OR_RETURN(std::vector<std::vector<Candidate>> found,
                             impl_->index.search_batch(queries, options.top_k));
    r.faces.reserve(faces.size());
    for (size_t i = 0; i < faces.size(); ++i) {
      IdentifiedFace f{std::move(faces[i]), decide(std::move(found[i]), r.threshold.value), {}};
      f.low_quality = impl_->analyzer->low_quality_reason(f.face);
      if (!f.low_quality.empty()) f.decision.identity.clear();
      r.faces.push_back(std::move(f));
    }
    return r;
  });
}

Result<std::vector<std::vector<Candidate>>> FaceRecognizer::search(const std::vector<std::span<const float>>& queries,
                                                                   int top_k) const {
  return guarded("search", [&]() -> Result<std::vector<std::vector<Candidate>>> {
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "search needs a gallery");
    const size_t dim = static_cast<size_t>(impl_->analyzer->embedder().dim());
    for (const auto& s : queries)
      if (s.size() != dim)
        return Status(ErrorCode::kInvalidArgument, "search: a query has " + std::to_string(s.size()) +
                                                       " values, the embedder gives " + std::to_string(dim));
    std::shared_lock lock(impl_->mu);
    return impl_->index.search_batch(queries, top_k);
  });
}

Result<VerifyResult> FaceRecognizer::verify(const cv::Mat& bgr1, const cv::Mat& bgr2,
                                            const std::optional<float>& threshold) const {
  return guarded("verify", [&]() -> Result<VerifyResult> {
    VerifyResult v;
    if (threshold && !(*threshold >= -1 && *threshold <= 1))
      return Status(ErrorCode::kInvalidArgument, "threshold is a cosine similarity within -1..1");
    // 1:1: a gallery of one person with one template.
    FACEREC_ASSIGN_OR_RETURN(v.threshold, resolve_threshold(impl_->config, impl_->analyzer->embedder().spec(), 1, 1,
                                                            kDefaultTemplateRule, threshold));
    const cv::Mat* images[2] = {&bgr1, &bgr2};
    AnalyzedFace* faces[2] = {&v.face1, &v.face2};
    int* found[2] = {&v.faces1, &v.faces2};
    for (int i = 0; i < 2; ++i) {
      auto f = analyze_largest(*images[i], found[i]);
      // "image 1: no face found": callers put their own name for the image.
      if (!f.ok()) return Status(f.status().code(), "image " + std::to_string(i + 1) + ": " + f.status().message());
      *faces[i] = std::move(f).value();
    }
    FACEREC_ASSIGN_OR_RETURN(v.similarity, cosine(v.face1.embedding, v.face2.embedding));
    v.same = v.similarity >= v.threshold.value;
    return v;
  });
}

Result<ThresholdChoice> FaceRecognizer::threshold() const {
  std::shared_lock lock(impl_->mu);
  return resolve_threshold(impl_->config, impl_->analyzer->embedder().spec(), impl_->index.people(),
                           impl_->index.size(), impl_->index.rule());
}

Status FaceRecognizer::remove(const std::string& given_name) {
  try {
    const std::string name = to_nfc(given_name);  // the gallery's key (facerec/names.h)
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "remove needs a gallery");
    std::lock_guard write(impl_->write_mu);
    std::unique_lock lock(impl_->mu);
    // The gallery first: if the write fails, the index still matches it.
    FACEREC_RETURN_IF_ERROR(impl_->gallery->remove_person(name));
    catch_up_to_own_write(*impl_);
    auto it = impl_->people.find(name);
    if (it != impl_->people.end()) {
      impl_->templates -= static_cast<size_t>(it->second.templates);
      impl_->people.erase(it);
    }
    Status s = impl_->index.remove_person(name);
    if (!s.ok() && s.code() != ErrorCode::kNotFound) return s;  // a person with no templates is not in the index
    impl_->log_info("removed '" + name + "'");
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("remove: ") + e.what());
  }
}

Status FaceRecognizer::rename(const std::string& given_from, const std::string& given_to) {
  try {
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "rename needs a gallery");
    FACEREC_ASSIGN_OR_RETURN(const std::string to, normalize_identity_name(given_to));
    const std::string from = to_nfc(given_from);
    std::lock_guard write(impl_->write_mu);
    std::unique_lock lock(impl_->mu);
    // The checks below read the people map: bring it up to date first.
    if (auto caught = catch_up(*impl_, 0, true); !caught.ok()) return caught.status();
    if (!impl_->people.count(from))
      return Status(ErrorCode::kNotFound, "no person named '" + from + "' in " + redact_uri(impl_->config.db));
    if (from == to) return Status::Ok();
    if (impl_->people.count(to))
      return Status(ErrorCode::kAlreadyExists,
                    "cannot rename '" + from + "' to '" + to + "': a person with that name already exists");
    FACEREC_RETURN_IF_ERROR(impl_->gallery->rename_person(from, to));
    catch_up_to_own_write(*impl_);
    if (!impl_->people.count(from)) return Status::Ok();  // removed meanwhile elsewhere; the gallery has the rename
    auto node = impl_->people.extract(from);
    node.key() = to;
    impl_->people.insert(std::move(node));
    Status s = impl_->index.rename_person(from, to);
    if (!s.ok() && s.code() != ErrorCode::kNotFound) return s;
    impl_->log_info("renamed '" + from + "' to '" + to + "'");
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("rename: ") + e.what());
  }
}

std::vector<PersonSummary> FaceRecognizer::people() const {
  std::shared_lock lock(impl_->mu);
  std::vector<PersonSummary> out;
  out.reserve(impl_->people.size());
  for (const auto& [name, p] : impl_->people) out.push_back({name, p.templates});
  return out;
}

size_t FaceRecognizer::template_count() const {
  std::shared_lock lock(impl_->mu);
  return impl_->templates;
}

bool FaceRecognizer::has_gallery() const { return impl_->gallery != nullptr; }
const ModelSpec& FaceRecognizer::detector_spec() const { return impl_->analyzer->detector().spec(); }
const ModelSpec& FaceRecognizer::embedder_spec() const { return impl_->analyzer->embedder().spec(); }
EmbedderInfo FaceRecognizer::embedder_info() const {
  return embedder_info_for(impl_->analyzer->embedder().spec(), impl_->analyzer->embedder().dim());
}
const RecognizerConfig& FaceRecognizer::config() const { return impl_->config; }
const Manifest& FaceRecognizer::manifest() const { return impl_->manifest; }
const FaceAnalyzer& FaceRecognizer::analyzer() const { return *impl_->analyzer; }

Status add_to_index(FaceRecognizer::Impl& impl, const std::string& name, const std::vector<NewTemplate>& written);

Result<int> catch_up(FaceRecognizer::Impl& impl, int64_t below, bool mu_held) {
  Gallery& g = *impl.gallery;
  FACEREC_ASSIGN_OR_RETURN(std::vector<GalleryChange> changes, g.store().changes_since(impl.applied_seq));
  if (below > 0)
    changes.erase(std::remove_if(changes.begin(), changes.end(), [&](const GalleryChange& c) { return c.seq >= below; }),
                  changes.end());
  if (changes.empty()) return 0;
  // The vectors of every enrolment, in one read (rows removed since are absent).
  std::vector<int64_t> ids;
  for (const auto& c : changes)
    if (c.kind == GalleryChange::Kind::kEnroll) ids.insert(ids.end(), c.template_ids.begin(), c.template_ids.end());
  std::map<int64_t, StoredTemplate> rows;
  if (!ids.empty()) {
    FACEREC_ASSIGN_OR_RETURN(auto ts, g.templates_by_id(ids));
    for (auto& t : ts) rows.emplace(t.id, std::move(t));
  }
  std::unique_lock<std::shared_mutex> lock(impl.mu, std::defer_lock);
  if (!mu_held) lock.lock();
  for (const auto& c : changes) {
    switch (c.kind) {
      case GalleryChange::Kind::kEnroll: {
        FaceRecognizer::Impl::Person& person = impl.people[c.name];
        std::vector<NewTemplate> add;
        for (int64_t id : c.template_ids) {
          auto it = rows.find(id);
          if (it == rows.end()) continue;
          const StoredTemplate& t = it->second;
          // Already in the index (read at create() after this change): the
          // per-person duplicate key says so.
          if (!t.source_sha256.empty() && person.sources.count(t.source_sha256)) continue;
          if (!t.source_sha256.empty()) person.sources.insert(t.source_sha256);
          add.push_back({t.unit, t.norm, t.source, t.source_sha256, t.det_score});
        }
        person.templates += static_cast<int>(add.size());
        impl.templates += add.size();
        Status s = add_to_index(impl, c.name, add);
        if (!s.ok()) return Status(ErrorCode::kInternal, "applying gallery change " + std::to_string(c.seq) + ": " + s.message());
        break;
      }
      case GalleryChange::Kind::kRemove: {
        auto it = impl.people.find(c.name);
        if (it != impl.people.end()) {
          impl.templates -= static_cast<size_t>(it->second.templates);
          impl.people.erase(it);
        }
        (void)impl.index.remove_person(c.name);  // kNotFound: had no templates
        break;
      }
      case GalleryChange::Kind::kRename: {
        if (!impl.people.count(c.name) || impl.people.count(c.new_name)) break;  // already applied
        auto node = impl.people.extract(c.name);
        node.key() = c.new_name;
        impl.people.insert(std::move(node));
        (void)impl.index.rename_person(c.name, c.new_name);
        break;
      }
    }
    impl.applied_seq = c.seq;
    impl.log_info(std::string("applied gallery change ") + std::to_string(c.seq) + " (" + to_string(c.kind) + ")");
  }
  return static_cast<int>(changes.size());
}

void catch_up_to_own_write(FaceRecognizer::Impl& impl) {
  const int64_t seq = impl.gallery->last_write_seq();
  if (catch_up(impl, seq, true).ok()) impl.applied_seq = std::max<int64_t>(impl.applied_seq, seq);
}

Result<int> FaceRecognizer::sync_gallery() {
  return guarded("sync", [&]() -> Result<int> {
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "sync needs a gallery");
    std::lock_guard write(impl_->write_mu);
    auto n = catch_up(*impl_, 0, false);
    std::lock_guard lock(impl_->follow_mu);
    impl_->sync.connected = n.ok();
    if (n.ok()) {
      impl_->last_check = std::chrono::steady_clock::now();
      impl_->sync.last_error.clear();
      impl_->sync.head_seq = impl_->applied_seq;  // everything read was applied
    } else {
      impl_->sync.last_error = n.status().message();
    }
    return n;
  });
}

Status FaceRecognizer::follow_gallery(std::chrono::milliseconds poll) {
  if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "follow needs a gallery");
  if (poll.count() <= 0) return Status(ErrorCode::kInvalidArgument, "the follow poll interval must be positive");
  std::lock_guard lock(impl_->follow_mu);
  if (impl_->follower.joinable()) return Status(ErrorCode::kInvalidArgument, "already following the gallery");
  impl_->sync.following = true;
  impl_->follower = std::thread([this, poll] {
    std::unique_ptr<GalleryListener> listener;
    auto stopped = [&] {
      std::lock_guard l(impl_->follow_mu);
      return impl_->follow_stop;
    };
    while (!stopped()) {
      std::optional<int64_t> announced;
      if (!listener) {
        auto l = open_gallery_listener(impl_->config.db);
        if (l.ok()) listener = std::move(l).value();
      }
      if (listener) {
        auto w = listener->wait(poll);
        if (w.ok()) announced = *w;
        else {
          std::lock_guard l(impl_->follow_mu);
          impl_->sync.connected = false;
          impl_->sync.last_error = w.status().message();
        }
      } else {
        std::unique_lock l(impl_->follow_mu);
        impl_->follow_cv.wait_for(l, poll, [&] { return impl_->follow_stop; });
      }
      if (stopped()) break;
      if (announced) {
        std::lock_guard l(impl_->follow_mu);
        impl_->sync.head_seq = std::max(impl_->sync.head_seq, *announced);
      }
      (void)sync_gallery();  // records its own outcome
    }
  });
  return Status::Ok();
}

GallerySyncStatus FaceRecognizer::gallery_sync_status() const {
  std::lock_guard lock(impl_->follow_mu);
  GallerySyncStatus s = impl_->sync;
  s.applied_seq = impl_->applied_seq;
  s.head_seq = std::max(s.head_seq, s.applied_seq);
  s.seconds_since_check = std::chrono::duration<double>(std::chrono::steady_clock::now() - impl_->last_check).count();
  return s;
}

// Used by enroll.cc: adds a person's freshly written templates to the index.
Status add_to_index(FaceRecognizer::Impl& impl, const std::string& name, const std::vector<NewTemplate>& written) {
  if (written.empty()) return Status::Ok();
  const int dim = impl.analyzer->embedder().dim();
  std::vector<float> rows, weights;
  rows.reserve(written.size() * static_cast<size_t>(dim));
  for (const auto& t : written) {
    rows.insert(rows.end(), t.unit.begin(), t.unit.end());
    if (impl.weighted) weights.push_back(index_weight(t.norm));
  }
  return impl.index.add_person_rows(name, rows, weights, dim);
}

}  // namespace facerec
