// The gallery (see facerec/gallery.h): the store-agnostic layer over a
// GalleryStore (sqlite_store.cc, postgres_store.cc). Names are validated and
// templates checked here, before any store sees them, so both backends give
// the same answers; the legacy face_embdding.txt format is read and written
// here through the store's batch enrolment and snapshot.
#include "facerec/gallery.h"

#include <cmath>
#include <map>
#include <new>

#include "facerec/models.h"
#include "facerec/names.h"
#include "gallery/legacy.h"
#include "gallery/store_common.h"

namespace facerec {

namespace {

// A stored or enrolled unit vector must have |v| within this of 1.
constexpr double kUnitTolerance = 1e-3;

double l2_norm(const float* v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

Status check_template(const NewTemplate& t, int dim, size_t index) {
  std::string where = "template " + std::to_string(index);
  if (static_cast<int>(t.unit.size()) != dim)
    return Status(ErrorCode::kInvalidArgument, where + " has " + std::to_string(t.unit.size()) +
                                                   " values; the gallery's embedder has dimension " +
                                                   std::to_string(dim));
  for (size_t i = 0; i < t.unit.size(); ++i)
    if (!std::isfinite(t.unit[i]))
      return Status(ErrorCode::kInvalidArgument, where + " has a non-finite value at " + std::to_string(i));
  double n = l2_norm(t.unit.data(), t.unit.size());
  if (std::abs(n - 1.0) > kUnitTolerance)
    return Status(ErrorCode::kInvalidArgument,
                  where + " is not L2-normalised (|v| = " + std::to_string(n) + ")");
  if (!std::isfinite(t.norm) || t.norm < 0)
    return Status(ErrorCode::kInvalidArgument, where + " has an invalid norm");
  if (!std::isfinite(t.det_score))
    return Status(ErrorCode::kInvalidArgument, where + " has a non-finite detection score");
  return Status::Ok();
}

}  // namespace

// ---- open ------------------------------------------------------------------------------

bool is_postgres_uri(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

std::string redact_uri(const std::string& location) {
  if (!is_postgres_uri(location)) return location;
  // scheme://user:password@host -> scheme://user:***@host
  const size_t scheme = location.find("://") + 3;
  const size_t at = location.find('@', scheme);
  const size_t slash = location.find('/', scheme);
  std::string out = location;
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    const size_t colon = location.find(':', scheme);
    if (colon != std::string::npos && colon < at) out = location.substr(0, colon + 1) + "***" + location.substr(at);
  }
  // ...?password=secret
  const size_t pw = out.find("password=");
  if (pw != std::string::npos) {
    const size_t end = out.find('&', pw);
    out = out.substr(0, pw + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
  }
  return out;
}

const char* to_string(GalleryChange::Kind kind) {
  switch (kind) {
    case GalleryChange::Kind::kEnroll: return "enroll";
    case GalleryChange::Kind::kRemove: return "remove";
    case GalleryChange::Kind::kRename: return "rename";
  }
  return "?";
}

Result<std::unique_ptr<GalleryStore>> open_gallery_store(const std::string& location, GalleryAccess access,
                                                         const EmbedderInfo* expected) {
  if (is_postgres_uri(location))
    return store::open_postgres_store(location, access, expected, kGallerySchemaVersion);
  return store::open_sqlite_store(location, access, expected);
}

Result<std::unique_ptr<GalleryListener>> open_gallery_listener(const std::string& location) {
  if (is_postgres_uri(location)) return store::open_postgres_listener(location);
  return store::open_sqlite_listener(location);
}

Gallery::Gallery(std::unique_ptr<GalleryStore> store) : store_(std::move(store)), embedder_(store_->embedder()) {}

Result<std::unique_ptr<Gallery>> Gallery::open_as(const std::string& path, GalleryAccess access,
                                                  const EmbedderInfo* expected) {
  try {
    FACEREC_ASSIGN_OR_RETURN(auto st, open_gallery_store(path, access, expected));
    return std::make_unique<Gallery>(std::move(st));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "opening gallery " + redact_uri(path) + ": " + e.what());
  }
}

Result<std::unique_ptr<Gallery>> Gallery::open(const std::string& path, const EmbedderInfo& embedder) {
  return open_as(path, GalleryAccess::kCreate, &embedder);
}

Result<std::unique_ptr<Gallery>> Gallery::open_existing(const std::string& path) {
  return open_as(path, GalleryAccess::kReadWrite, nullptr);
}

Result<std::unique_ptr<Gallery>> Gallery::open_read_only(const std::string& path, const EmbedderInfo* expected) {
  return open_as(path, GalleryAccess::kReadOnly, expected);
}

Gallery::~Gallery() = default;

// ---- writes ---------------------------------------------------------------------------

Result<EnrollOutcome> Gallery::enroll(const std::string& given_name, const std::vector<NewTemplate>& templates) {
  try {
    // Validated and NFC-normalised (facerec/names.h) before any store sees it.
    FACEREC_ASSIGN_OR_RETURN(const std::string name, normalize_identity_name(given_name));
    if (templates.empty())
      return Status(ErrorCode::kInvalidArgument, "nothing to enroll for " + store::quoted(name) + ": no templates");
    // Everything is checked before the transaction starts, so a bad template
    // costs no lock and writes nothing.
    for (size_t i = 0; i < templates.size(); ++i)
      FACEREC_RETURN_IF_ERROR(check_template(templates[i], embedder_.dim, i));
    return store_->enroll(name, templates);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "enrolling " + store::quoted(given_name) + ": " + e.what());
  }
}

Status Gallery::remove_person(const std::string& given_name) {
  try {
    // Not validated: a name stored before today's rules must stay removable.
    // Every stored form with this NFC goes (facerec/names.h).
    const std::string name = to_nfc(given_name);
    return store_->remove_person(name);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "removing " + store::quoted(given_name) + ": " + e.what());
  }
}

Status Gallery::rename_person(const std::string& given_from, const std::string& given_to) {
  try {
    FACEREC_ASSIGN_OR_RETURN(const std::string to, normalize_identity_name(given_to));
    const std::string from = to_nfc(given_from);
    return store_->rename_person(from, to);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "renaming " + store::quoted(given_from) + ": " + e.what());
  }
}

// ---- reads ------------------------------------------------------------------------------

Result<std::vector<PersonInfo>> Gallery::list_people() const {
  try {
    FACEREC_ASSIGN_OR_RETURN(auto people, store_->list_people());
    // Names stored before normalisation may be NFD; callers always see NFC.
    for (PersonInfo& p : people) p.name = to_nfc(p.name);
    return people;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("listing people: ") + e.what());
  }
}

Result<GallerySnapshot> Gallery::snapshot() const {
  try {
    FACEREC_ASSIGN_OR_RETURN(auto snap, store_->snapshot());
    for (PersonInfo& p : snap.people) p.name = to_nfc(p.name);
    return snap;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading the gallery: ") + e.what());
  }
}

Result<std::vector<StoredTemplate>> Gallery::templates() const {
  try {
    return store_->templates();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading templates: ") + e.what());
  }
}

Result<std::vector<StoredTemplate>> Gallery::templates_by_id(const std::vector<int64_t>& ids) const {
  try {
    return store_->templates_by_id(ids);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("reading templates: ") + e.what());
  }
}

Result<std::string> Gallery::person_name(int64_t person_id) const {
  try {
    FACEREC_ASSIGN_OR_RETURN(auto name, store_->person_name(person_id));
    return to_nfc(name);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("looking up a person: ") + e.what());
  }
}

EmbedderInfo embedder_info_for(const ModelSpec& spec, int dim) {
  return {spec.id, spec.sha256, dim, spec.equivalent_sha256};
}

// ---- legacy format -----------------------------------------------------------------------

// Parsing, checks and the duplicate rule live in legacy.cc; here, only the
// one store transaction.
namespace {
// `step` with an out-of-memory or library exception turned into a Status
// that names the import.
template <class F>
auto import_step(const std::string& txt, const std::string& map, F&& step) -> decltype(step()) {
  try {
    return step();
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kTooLarge, "out of memory importing " + txt + " and " +
                                            (map.empty() ? std::string("its label map") : map) + "; nothing imported");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "importing " + txt + ": " + e.what());
  }
}
}  // namespace

Result<LegacyImportReport> Gallery::import_legacy(const std::string& embeddings_txt,
                                                  const std::string& label_map_json) {
  return import_step(embeddings_txt, label_map_json, [&]() -> Result<LegacyImportReport> {
    FACEREC_ASSIGN_OR_RETURN(legacy::Parsed parsed,
                             legacy::read_and_parse(embeddings_txt, label_map_json, embedder_.dim));
    return store_legacy(parsed);
  });
}

Result<LegacyImportReport> Gallery::import_legacy_into(const std::string& location, const EmbedderInfo& embedder,
                                                       const std::string& embeddings_txt,
                                                       const std::string& label_map_json) {
  return import_step(embeddings_txt, label_map_json, [&]() -> Result<LegacyImportReport> {
    FACEREC_ASSIGN_OR_RETURN(legacy::Parsed parsed,
                             legacy::read_and_parse(embeddings_txt, label_map_json, embedder.dim));
    FACEREC_ASSIGN_OR_RETURN(std::unique_ptr<Gallery> g, open(location, embedder));
    return g->store_legacy(parsed);
  });
}

Result<LegacyImportReport> Gallery::store_legacy(legacy::Parsed& parsed) {
  LegacyImportReport report;
  report.layout = parsed.layout;
  report.notes = std::move(parsed.notes);
  // Vectors already stored (under any name) are not added again; the store
  // also skips a repeated vector key per person inside its transaction.
  FACEREC_ASSIGN_OR_RETURN(auto stored, store_->templates());
  auto by_person = legacy::drop_stored_vectors(parsed.entries, stored, embedder_.dim, report.already_present);
  if (by_person.empty()) return report;
  // One store transaction for every person.
  FACEREC_ASSIGN_OR_RETURN(auto outs, store_->enroll_batch({by_person.begin(), by_person.end()}));
  for (const EnrollOutcome& out : outs) {
    report.added += out.added;
    report.already_present += out.duplicates;
  }
  return report;
}

Status Gallery::export_legacy(const std::string& embeddings_txt, const std::string& label_map_json) const {
  try {
    // One read transaction, so templates and names come from the same snapshot.
    FACEREC_ASSIGN_OR_RETURN(auto snap, snapshot());
    std::map<int64_t, std::string> names;
    for (const PersonInfo& p : snap.people) names[p.id] = p.name;
    std::string text, labels;
    Status s = legacy::format(snap.templates, names, text, labels);
    if (!s.ok()) return Status(s.code(), "gallery " + store_->location() + ": " + s.message());
    FACEREC_RETURN_IF_ERROR(legacy::write_file_atomically(embeddings_txt, text));
    return legacy::write_file_atomically(label_map_json, labels);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "exporting to " + embeddings_txt + ": " + e.what());
  }
}

}  // namespace facerec
