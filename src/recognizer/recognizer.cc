// FaceRecognizer: creation, identify, verify and the gallery edits. The
// enrolment workflow is in enroll.cc.
#include <openssl/evp.h>

#include <cmath>
#include <filesystem>

#include "recognizer/recognizer_impl.h"

namespace facerec {

std::string sha256_hex_of(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

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

// Where the HNSW graph of a gallery file is kept; none for an in-memory gallery.
std::string hnsw_path(const std::string& db) {
  if (db.empty() || db == ":memory:" || db.rfind("file:", 0) == 0) return "";
  return db + ".hnsw";
}

}  // namespace

FaceRecognizer::FaceRecognizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceRecognizer::~FaceRecognizer() {
  if (!impl_) return;
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
      if (config.gallery == GalleryMode::kMustExist && !std::filesystem::exists(config.db, ec))
        return Status(ErrorCode::kNotFound, "no gallery at " + config.db + "; enrol people first (facerec enroll <dir> --db " +
                                                config.db + ")");
      FACEREC_ASSIGN_OR_RETURN(impl->gallery,
                               Gallery::open(config.db, {es.id, es.sha256, impl->analyzer->embedder().dim()}));
      // MagFace-style models: a person is their quality (norm) weighted mean
      // template; other models keep best-template matching.
      FACEREC_ASSIGN_OR_RETURN(impl->index, SearchIndex::from_gallery(*impl->gallery, kDefaultTemplateRule, impl->weighted));
      // The approximate index, when asked for or (auto) when the gallery is
      // large: loaded from beside the gallery when it is intact and current.
      std::string what;
      Status ms = impl->index.set_mode(config.index, hnsw_path(config.db), config.hnsw, &what);
      if (ms.code() == ErrorCode::kInvalidArgument) return ms;
      if (what != "exact") impl->log_info("search index: hnsw, " + what);
      if (!ms.ok()) impl->log_info("search index: " + ms.message() + " (searching with the graph built in memory)");
      FACEREC_ASSIGN_OR_RETURN(auto people, impl->gallery->list_people());
      FACEREC_ASSIGN_OR_RETURN(auto templates, impl->gallery->templates());
      std::map<int64_t, std::string> names;
      for (const auto& p : people) {
        names[p.id] = p.name;
        impl->people[p.name].templates = p.templates;
        impl->templates += static_cast<size_t>(p.templates);
      }
      for (const auto& t : templates) {
        auto it = names.find(t.person_id);
        if (it != names.end() && !t.source_sha256.empty()) impl->people[it->second].sources.insert(t.source_sha256);
      }
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
    r.faces.reserve(faces.size());
    for (auto& af : faces) {
      FACEREC_ASSIGN_OR_RETURN(std::vector<Candidate> cands,
                               impl_->index.search(std::span<const float>(af.embedding.unit), options.top_k));
      IdentifiedFace f{std::move(af), decide(std::move(cands), r.threshold.value), {}};
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
    std::vector<const float*> q;
    q.reserve(queries.size());
    for (const auto& s : queries) {
      if (s.size() != dim)
        return Status(ErrorCode::kInvalidArgument, "search: a query has " + std::to_string(s.size()) +
                                                       " values, the embedder gives " + std::to_string(dim));
      q.push_back(s.data());
    }
    std::shared_lock lock(impl_->mu);
    return impl_->index.search_batch(q, top_k);
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
    v.similarity = cosine(v.face1.embedding, v.face2.embedding);
    v.same = v.similarity >= v.threshold.value;
    return v;
  });
}

Result<ThresholdChoice> FaceRecognizer::threshold() const {
  std::shared_lock lock(impl_->mu);
  return resolve_threshold(impl_->config, impl_->analyzer->embedder().spec(), impl_->index.people(),
                           impl_->index.size(), impl_->index.rule());
}

Status FaceRecognizer::remove(const std::string& name) {
  try {
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "remove needs a gallery");
    std::lock_guard write(impl_->write_mu);
    std::unique_lock lock(impl_->mu);
    // The gallery first: if the write fails, the index still matches it.
    FACEREC_RETURN_IF_ERROR(impl_->gallery->remove_person(name));
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

Status FaceRecognizer::rename(const std::string& from, const std::string& to) {
  try {
    if (!impl_->gallery) return Status(ErrorCode::kInvalidArgument, "rename needs a gallery");
    FACEREC_RETURN_IF_ERROR(validate_identity_name(to));
    std::lock_guard write(impl_->write_mu);
    std::unique_lock lock(impl_->mu);
    if (!impl_->people.count(from))
      return Status(ErrorCode::kNotFound, "no person named '" + from + "' in " + impl_->config.db);
    if (from == to) return Status::Ok();
    if (impl_->people.count(to))
      return Status(ErrorCode::kAlreadyExists,
                    "cannot rename '" + from + "' to '" + to + "': a person with that name already exists");
    FACEREC_RETURN_IF_ERROR(impl_->gallery->rename_person(from, to));
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
  const auto& s = impl_->analyzer->embedder().spec();
  return {s.id, s.sha256, impl_->analyzer->embedder().dim()};
}
const RecognizerConfig& FaceRecognizer::config() const { return impl_->config; }
const Manifest& FaceRecognizer::manifest() const { return impl_->manifest; }
const FaceAnalyzer& FaceRecognizer::analyzer() const { return *impl_->analyzer; }

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
