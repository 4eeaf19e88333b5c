// The enrolment workflow, in one function: every input of one person is
// hashed (the duplicate key), decoded, detected (largest face) or taken as an
// aligned crop, embedded in batches, checked against the minimum quality, and
// written to the gallery in ONE transaction, then added to the live index.
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <cstdio>

#include "facerec/align.h"
#include "facerec/sha256.h"
#include "recognizer/recognizer_impl.h"

namespace facerec {

Status add_to_index(FaceRecognizer::Impl& impl, const std::string& name, const std::vector<NewTemplate>& written);

namespace {

struct Prepared {
  size_t item = 0;  // index into the report
  NewTemplate t;
  Face face;
  cv::Mat crop;
  bool has_face = false;  // false for aligned crops
};

// An aligned crop must hold a face where alignment puts one (fault 10: blank,
// grey and noise crops were enrolled with quality 0 and then matched
// strangers). The crop is padded by half its size on every side, so the
// detector sees a whole face with a margin (a face filling the frame is
// what detectors miss, issue 11 fault 4), and detected with the configured
// options. It passes when a face's five landmarks lie on average within
// kMaxAlignedLandmarkError of the ArcFace template. The limit, in pixels of
// the crop (size 112), is a third of the template's 35 px inter-ocular
// distance: it refuses a face that is not aligned, and leaves room for crops
// aligned by other tools; the pass rate on real aligned LFW crops is in the
// README ("Enrolling aligned crops").
constexpr float kMaxAlignedLandmarkError = 12.f;

Result<Face> find_aligned_face(const FaceAnalyzer& analyzer, const DetectOptions& options, const cv::Mat& crop, int size) {
  const int pad = size / 2;
  cv::Mat padded;
  cv::copyMakeBorder(crop, padded, pad, pad, pad, pad, cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  FACEREC_ASSIGN_OR_RETURN(std::vector<Face> faces, analyzer.detect(padded, options));
  const float scale = static_cast<float>(size) / 112.f;
  float best_err = -1.f;
  const Face* best = nullptr;
  for (const Face& f : faces) {
    float err = 0;
    for (size_t k = 0; k < 5; ++k) {
      const cv::Point2f d = f.landmarks[k] - cv::Point2f(static_cast<float>(pad), static_cast<float>(pad)) -
                            kArcFaceTemplate112[k] * scale;
      err += std::sqrt(d.dot(d)) / 5.f;
    }
    if (!best || err < best_err) best = &f, best_err = err;
  }
  if (!best)
    return Status(ErrorCode::kNoFace, "no face in this aligned crop (blank, uniform, noise or not a face?); --aligned "
                                      "needs face crops aligned to the ArcFace template");
  if (best_err > kMaxAlignedLandmarkError * scale) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "holds a face, but not aligned: its landmarks are %.1f px from the ArcFace template on average "
                  "(limit %.0f); give the original photo without --aligned", best_err, kMaxAlignedLandmarkError * scale);
    return Status(ErrorCode::kInvalidArgument, buf);
  }
  Face out = *best;
  out.box.x -= static_cast<float>(pad);
  out.box.y -= static_cast<float>(pad);
  for (auto& l : out.landmarks) l -= cv::Point2f(static_cast<float>(pad), static_cast<float>(pad));
  return out;
}

}  // namespace

Result<EnrollReport> FaceRecognizer::enroll(const std::string& given_name, const std::vector<EnrollInput>& inputs,
                                            const EnrollOptions& options) {
  try {
    Impl& impl = *impl_;
    if (!impl.gallery) return Status(ErrorCode::kInvalidArgument, "enroll needs a gallery");
    // NFC, so "José" typed either way is one person (facerec/names.h).
    FACEREC_ASSIGN_OR_RETURN(const std::string name, normalize_identity_name(given_name));
    const auto cancelled = [&] { return options.cancel && options.cancel->load(); };
    EnrollReport report;
    report.name = name;
    report.items.resize(inputs.size());
    std::set<std::string> stored;
    {
      std::shared_lock lock(impl.mu);
      auto it = impl.people.find(name);
      if (it != impl.people.end()) stored = it->second.sources;
      for (const auto& [other, p] : impl.people)
        if (differ_only_by_case(other, name)) report.differs_only_by_case.push_back(other);
    }
    const int size = impl.analyzer->embedder().spec().input.width;
    std::vector<Prepared> work;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (cancelled()) return Status(ErrorCode::kCancelled, "interrupted; nothing written for '" + name + "'");
      const EnrollInput& in = inputs[i];
      EnrollItem& item = report.items[i];
      item.source = in.source;
      const auto skip = [&](EnrollSkip why, Status s) {
        item.state = EnrollState::kSkipped;
        item.skip = why;
        item.status = std::move(s);
      };
      std::string sha;
      if (in.bytes) {
        sha = sha256_hex(*in.bytes);
      } else {
        // Named by type before hashing (hashing a folder says only "error reading").
        std::error_code ec;
        const auto st = std::filesystem::status(in.source, ec);
        if (std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
          skip(EnrollSkip::kImage, Status(ErrorCode::kInvalidArgument,
                                          in.source + ": " + (std::filesystem::is_directory(st) ? "a directory (links to folders are not followed)"
                                                                                                 : "not a regular file (a device, FIFO or socket)")));
          continue;
        }
        auto h = sha256_file(in.source);
        if (!h.ok()) { skip(EnrollSkip::kUnreadable, h.status()); continue; }
        sha = std::move(h).value();
      }
      if (stored.count(sha)) { item.state = EnrollState::kDuplicate; continue; }
      auto img = in.bytes ? decode(*in.bytes, in.source) : load(in.source);
      if (!img.ok()) { skip(EnrollSkip::kImage, img.status()); continue; }
      Prepared p;
      p.item = i;
      if (options.aligned) {
        if (img->cols != size || img->rows != size) {
          skip(EnrollSkip::kNotAligned,
               Status(ErrorCode::kInvalidArgument,
                      "is " + std::to_string(img->cols) + "x" + std::to_string(img->rows) + "; --aligned expects " +
                          std::to_string(size) + "x" + std::to_string(size) +
                          " crops aligned to the ArcFace template (without --aligned, photos are detected and aligned)"));
          continue;
        }
        p.face.score = 1.f;
        if (!options.skip_face_check) {
          auto face = find_aligned_face(*impl.analyzer, impl.config.detection, *img, size);
          if (!face.ok()) { skip(face.status().code() == ErrorCode::kNoFace ? EnrollSkip::kImage : EnrollSkip::kNotAligned, face.status()); continue; }
          p.face.score = face->score;
        }
        p.crop = std::move(img).value();
      } else {
        auto faces = impl.analyzer->detect(*img, impl.config.detection);
        if (!faces.ok()) { skip(EnrollSkip::kImage, faces.status()); continue; }
        if (faces->empty()) { skip(EnrollSkip::kImage, Status(ErrorCode::kNoFace, in.source + ": no face found")); continue; }
        item.faces_found = static_cast<int>(faces->size());
        p.face = (*faces)[static_cast<size_t>(largest_face(*faces))];
        p.has_face = true;
        p.crop = align_face(*img, p.face, size);
        if (item.faces_found > 1)
          impl.log_info(in.source + ": " + std::to_string(item.faces_found) + " faces, enrolled the largest");
      }
      p.t.source = in.source;
      p.t.source_sha256 = sha;
      p.t.det_score = p.face.score;
      stored.insert(sha);
      item.state = EnrollState::kAdded;  // provisional: embedding and quality still to come
      work.push_back(std::move(p));
    }
    if (cancelled()) return Status(ErrorCode::kCancelled, "interrupted; nothing written for '" + name + "'");

    std::vector<NewTemplate> keep;
    std::vector<size_t> keep_item;
    if (!work.empty()) {
      std::vector<cv::Mat> crops;
      crops.reserve(work.size());
      for (const auto& p : work) crops.push_back(p.crop);
      FACEREC_ASSIGN_OR_RETURN(std::vector<AnalyzedFace> embedded, impl.analyzer->embed_aligned(crops));
      for (size_t k = 0; k < work.size(); ++k) {
        AnalyzedFace& af = embedded[k];
        Prepared& p = work[k];
        EnrollItem& item = report.items[p.item];
        if (p.has_face) af.quality = impl.analyzer->quality(&p.face, p.crop, af.embedding);
        item.quality = af.quality;
        if (options.min_quality && af.quality < *options.min_quality) {
          item.state = EnrollState::kSkipped;
          item.skip = EnrollSkip::kLowQuality;
          item.status = Status(ErrorCode::kInvalidArgument, "face quality " + std::to_string(af.quality) +
                                                                " is below --min-quality " +
                                                                std::to_string(*options.min_quality));
          continue;
        }
        p.t.unit = std::move(af.embedding.unit);
        p.t.norm = af.embedding.norm;
        keep.push_back(std::move(p.t));
        keep_item.push_back(p.item);
      }
    }
    if (!keep.empty()) {
      // Duplicates under other names: the same photo (content hash) or the
      // same face (at or above the one-to-one same-person threshold).
      std::shared_lock read(impl.mu);
      const float same_face = impl.analyzer->embedder().spec().match_threshold;
      for (size_t k = 0; k < keep.size(); ++k) {
        EnrollItem& item = report.items[keep_item[k]];
        for (const auto& [other, p] : impl.people)
          if (other != name && p.sources.count(keep[k].source_sha256))
            item.duplicates_elsewhere.push_back({other, 0, "", 1.f, DuplicateKind::kSamePhoto});
        if (same_face <= 0.f) continue;
        auto cands = impl.index.search(std::span<const float>(keep[k].unit), 4);
        if (!cands.ok()) continue;
        for (const auto& c : *cands)
          if (c.identity != name && c.similarity >= same_face &&
              !(impl.people.count(c.identity) && impl.people.at(c.identity).sources.count(keep[k].source_sha256)))
            item.duplicates_elsewhere.push_back({c.identity, 0, "", c.similarity, DuplicateKind::kSameFace});
      }
    }
    if (!keep.empty()) {
      if (cancelled()) return Status(ErrorCode::kCancelled, "interrupted; nothing written for '" + name + "'");
      std::lock_guard write(impl.write_mu);
      std::unique_lock lock(impl.mu);
      FACEREC_ASSIGN_OR_RETURN(EnrollOutcome out, impl.gallery->enroll(name, keep));
      catch_up_to_own_write(impl);
      std::vector<NewTemplate> written;
      Impl::Person& person = impl.people[name];
      for (size_t k = 0; k < keep.size(); ++k) {
        EnrollItem& item = report.items[keep_item[k]];
        const int64_t id = k < out.template_ids.size() ? out.template_ids[k] : 0;
        if (id == 0) {  // written meanwhile by another call
          item.state = EnrollState::kDuplicate;
          continue;
        }
        item.template_id = id;
        person.sources.insert(keep[k].source_sha256);
        written.push_back(std::move(keep[k]));
      }
      person.templates += static_cast<int>(written.size());
      impl.templates += written.size();
      // The gallery has committed; an index that fails to follow is a bug.
      Status s = add_to_index(impl, name, written);
      if (!s.ok()) return Status(ErrorCode::kInternal, "index update after enrolment: " + s.message());
    }
    for (const auto& item : report.items) {
      if (item.state == EnrollState::kAdded) ++report.added;
      else if (item.state == EnrollState::kDuplicate) ++report.duplicates;
      else ++report.skipped;
    }
    return report;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "enrolling '" + given_name + "': " + e.what());
  }
}

}  // namespace facerec
