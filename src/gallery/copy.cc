// copy_gallery (facerec/gallery.h): one gallery into another, either backend
// to either, in one write transaction, then every count checked.
#include <cstring>
#include <map>

#include "facerec/gallery.h"
#include "facerec/names.h"

namespace facerec {

Result<CopyReport> copy_gallery(const std::string& from, const std::string& to) {
  try {
    if (from == to) return Status(ErrorCode::kInvalidArgument, "gallery copy: --from and --to are the same gallery");
    FACEREC_ASSIGN_OR_RETURN(auto src, open_gallery_store(from, GalleryAccess::kReadOnly, nullptr));
    FACEREC_ASSIGN_OR_RETURN(GallerySnapshot snap, src->snapshot());
    const EmbedderInfo emb = src->embedder();
    // kMismatch when `to` exists with another embedder: nothing written.
    FACEREC_ASSIGN_OR_RETURN(auto dst, open_gallery_store(to, GalleryAccess::kCreate, &emb));
    FACEREC_ASSIGN_OR_RETURN(auto existing, dst->list_people());
    // Names are written in NFC, the form every way in stores (facerec/names.h):
    // a SQLite gallery made before normalisation may hold NFD names, and
    // copied as they are, no store lookup (which normalises its input) would
    // find them again.
    for (PersonInfo& p : snap.people) p.name = to_nfc(p.name);
    for (PersonInfo& e : existing) e.name = to_nfc(e.name);
    std::map<int64_t, size_t> person_index;
    std::map<std::string, int64_t> seen;
    std::vector<std::pair<std::string, std::vector<NewTemplate>>> batch;
    for (const PersonInfo& p : snap.people) {
      for (const PersonInfo& e : existing)
        if (e.name == p.name)
          return Status(ErrorCode::kAlreadyExists, "gallery copy: " + redact_uri(to) + " already has a person named '" +
                                                       p.name + "'; copy into an empty gallery (nothing was written)");
      if (!seen.emplace(p.name, p.id).second)
        return Status(ErrorCode::kInvalidArgument,
                      "gallery copy: " + redact_uri(from) + " holds '" + p.name +
                          "' twice, in two Unicode spellings (people " + std::to_string(seen[p.name]) + " and " +
                          std::to_string(p.id) + "); rename one of them there first (nothing was written)");
      person_index[p.id] = batch.size();
      batch.push_back({p.name, {}});
    }
    for (const StoredTemplate& t : snap.templates) {
      auto it = person_index.find(t.person_id);
      if (it == person_index.end())
        return Status(ErrorCode::kDatabase, "gallery copy: template " + std::to_string(t.id) + " of " + redact_uri(from) +
                                                " belongs to no person (corrupt); nothing was written");
      batch[it->second].second.push_back({t.unit, t.norm, t.source, t.source_sha256, t.det_score});
    }
    // People without templates are copied too (an empty list is fine here).
    if (!batch.empty()) {
      FACEREC_ASSIGN_OR_RETURN(auto outs, dst->enroll_batch(batch));
      for (size_t i = 0; i < outs.size(); ++i)
        if (outs[i].added != static_cast<int>(batch[i].second.size()))
          return Status(ErrorCode::kInternal, "gallery copy: '" + batch[i].first + "' got " +
                                                  std::to_string(outs[i].added) + " of " +
                                                  std::to_string(batch[i].second.size()) + " templates");
    }

    // Every count, and every vector byte for byte, read back from `to`.
    FACEREC_ASSIGN_OR_RETURN(GallerySnapshot back, dst->snapshot());
    if (back.people.size() != snap.people.size() + existing.size())
      return Status(ErrorCode::kInternal, "gallery copy: " + redact_uri(to) + " has " +
                                              std::to_string(back.people.size()) + " people after the copy, expected " +
                                              std::to_string(snap.people.size() + existing.size()));
    std::map<std::string, std::vector<const StoredTemplate*>> want, got;
    std::map<int64_t, std::string> src_name, dst_name;
    for (const PersonInfo& p : snap.people) src_name[p.id] = p.name;
    for (const PersonInfo& p : back.people) dst_name[p.id] = p.name;
    for (const StoredTemplate& t : snap.templates) want[src_name[t.person_id]].push_back(&t);
    for (const StoredTemplate& t : back.templates) got[dst_name[t.person_id]].push_back(&t);
    int64_t templates = 0;
    for (const auto& [name, ts] : want) {
      const auto& g = got[name];
      if (g.size() != ts.size())
        return Status(ErrorCode::kInternal, "gallery copy: '" + name + "' has " + std::to_string(g.size()) +
                                                " templates in " + redact_uri(to) + ", expected " +
                                                std::to_string(ts.size()));
      // Both are in id order, and the batch kept the source order.
      for (size_t i = 0; i < ts.size(); ++i) {
        if (g[i]->unit.size() != ts[i]->unit.size() ||
            std::memcmp(g[i]->unit.data(), ts[i]->unit.data(), ts[i]->unit.size() * sizeof(float)) != 0 ||
            g[i]->norm != ts[i]->norm || g[i]->source_sha256 != ts[i]->source_sha256)
          return Status(ErrorCode::kInternal, "gallery copy: template " + std::to_string(i + 1) + " of '" + name +
                                                  "' differs after the copy");
      }
      templates += static_cast<int64_t>(ts.size());
    }
    if (templates != static_cast<int64_t>(snap.templates.size()))
      return Status(ErrorCode::kInternal, "gallery copy: template count differs");
    return CopyReport{static_cast<int64_t>(snap.people.size()), templates, emb};
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("gallery copy: ") + e.what());
  }
}

}  // namespace facerec
