// The JSON forms of the recognizer's results: one definition, used by
// `identify --json`, `verify --json` and the REST service, so the CLI and the
// service give the same objects. Coordinates are original-image pixels;
// boxes are [x1, y1, x2, y2]; similarities are cosines.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "facerec/recognizer.h"

namespace facerec {

// {"box", "score", "landmarks": [[x,y] x5], "quality"}: a face, no identity.
nlohmann::json face_json(const AnalyzedFace& face);
// {"fpir", "threshold", "gallery_people", "comparisons", "rule", "source",
// "reason"}: how the threshold was chosen (facerec/open_set.h).
nlohmann::json decision_json(const DecisionPolicy& policy);
// {"image", "width", "height", "decision", "faces": [face_json + "identity" (null when
// unknown), "similarity" (the best candidate's, also when unknown),
// "candidates": [{"identity", "similarity"}]]}.
nlohmann::json identify_json(const std::string& image, const IdentifyResult& result);
// {"image1", "image2", "similarity", "same", "threshold", "decision", "faces1", "faces2",
// "quality1", "quality2", "detector", "embedder"}.
nlohmann::json verify_json(const std::string& image1, const std::string& image2, const VerifyResult& result,
                           const std::string& detector, const std::string& embedder);

}  // namespace facerec
