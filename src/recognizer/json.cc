#include "facerec/json.h"

namespace facerec {

using nlohmann::json;

json face_json(const AnalyzedFace& af) {
  const auto& b = af.face.box;
  json lm = json::array();
  for (const auto& p : af.face.landmarks) lm.push_back({p.x, p.y});
  return {{"box", {b.x, b.y, b.x + b.width, b.y + b.height}}, {"score", af.face.score}, {"landmarks", lm},
          {"quality", af.quality}};
}

json decision_json(const DecisionPolicy& p) {
  return {{"fpir", p.fpir},          {"threshold", p.threshold},       {"gallery_people", p.gallery_people},
          {"comparisons", p.comparisons}, {"rule", to_string(p.rule)}, {"source", to_string(p.source)},
          {"reason", p.reason}};
}

json identify_json(const std::string& image, const IdentifyResult& r) {
  json faces = json::array();
  for (const auto& f : r.faces) {
    const Decision& d = f.decision;
    json j = face_json(f.face);
    json cands = json::array();
    for (const auto& c : d.candidates) cands.push_back({{"identity", c.identity}, {"similarity", c.similarity}});
    j["identity"] = d.known() ? json(d.identity) : json(nullptr);
    j["similarity"] = d.known() ? d.similarity : (d.candidates.empty() ? 0.f : d.candidates[0].similarity);
    j["reason"] = f.reason();
    j["low_quality"] = f.low_quality.empty() ? json(nullptr) : json(f.low_quality);
    j["candidates"] = cands;
    faces.push_back(std::move(j));
  }
  return {{"image", image}, {"width", r.width}, {"height", r.height}, {"decision", decision_json(r.threshold.policy)},
          {"faces", faces}};
}

json verify_json(const std::string& image1, const std::string& image2, const VerifyResult& v,
                 const std::string& detector, const std::string& embedder) {
  return {{"image1", image1},        {"image2", image2},         {"similarity", v.similarity},
          {"same", v.same},          {"threshold", v.threshold.value}, {"decision", decision_json(v.threshold.policy)}, {"faces1", v.faces1},
          {"faces2", v.faces2},      {"quality1", v.face1.quality},   {"quality2", v.face2.quality},
          {"detector", detector},    {"embedder", embedder}};
}

}  // namespace facerec
