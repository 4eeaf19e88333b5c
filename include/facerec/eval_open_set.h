// The LFW open-set identification protocol, the impostor calibration's data,
// and the embedding cache that lets both embed each image once.
//
// Protocol (issue 8): LFW's people are split once, by a hash of the name,
// into calibration people (one in three) and test people (the rest), so the
// thresholds are never measured on the people they are judged on. Among the
// test people:
// - gallery candidates: people with at least templates_per_person + 1 photos;
//   a trial draws `gallery_size` of them (seeded), enrols templates_per_person
//   photos of each (seeded) and keeps the rest as mated probes;
// - unknown probes: every photo of every test person outside that gallery,
//   single-photo people included.
// Small galleries are drawn many times (trials_for_size) and pooled, because
// one draw of 10 people says more about those 10 than about the rule.
//
// Thread safety: pure functions; EmbeddingCache is a plain value.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "facerec/eval.h"
#include "facerec/search.h"
#include "facerec/status.h"

namespace facerec::eval {

// ------------------------------ Embedding cache ------------------------------

// One image's template as the eval commands make it.
struct CachedTemplate {
  uint8_t source = 0;    // the eval's own code (detected, retried, centre crop, failed)
  float norm = 0.f;      // raw feature norm
  float quality = 0.f;   // face quality (facerec/pipeline.h), 0 when failed
  std::vector<float> unit;  // empty when failed
};

// Templates keyed by image path, valid for one `key` (detector + embedder ids
// and sha256s + how faces were picked). Binary file: "FRECEMB1", the key,
// then the records. A missing file is an empty cache; a file made with
// another key, or damaged, is an error naming the file (delete it).
class EmbeddingCache {
 public:
  static Result<EmbeddingCache> load(const std::string& file, const std::string& key);
  // Loads `file` whatever key it was made with (key() then names it), for
  // tools that only read the templates (bench/ann_index). A missing file is
  // kNotFound here; a damaged one an error naming it, as load() says.
  static Result<EmbeddingCache> load_any(const std::string& file);
  // Written to file + ".tmp" and renamed, so an interrupted write leaves the old file.
  Status save(const std::string& file) const;
  const CachedTemplate* find(const std::string& path) const;
  void put(const std::string& path, CachedTemplate t) { items_[path] = std::move(t); }
  size_t size() const { return items_.size(); }
  // Every record, by image path (sorted).
  const std::map<std::string, CachedTemplate>& items() const { return items_; }
  const std::string& key() const { return key_; }

 private:
  // key == nullptr: accept the file's key.
  static Result<EmbeddingCache> read(const std::string& file, const std::string* key);
  std::string key_;
  std::map<std::string, CachedTemplate> items_;
};

// ------------------------------ The LFW split --------------------------------

// True for the third of LFW's people whose names hash (FNV-1a 64) to 0 mod 3:
// they calibrate the thresholds; the others are the open-set test people.
bool is_calibration_person(const std::string& name);

// A person and their images (indices into the caller's image table).
struct PersonImages {
  std::string name;
  std::vector<int> images;
};

// One drawn gallery. gallery[p] = (person index into the people passed in,
// its enrolled images); mated = (probe image, slot in gallery); unknown =
// probe images of people outside the gallery.
struct OpenSetTrial {
  std::vector<std::pair<int, std::vector<int>>> gallery;
  std::vector<std::pair<int, int>> mated;
  std::vector<int> unknown;
};

// Draws one trial as the protocol above says. gallery_size 0 = every
// candidate. kInvalidArgument when fewer candidates than gallery_size, or
// templates_per_person < 1.
Result<OpenSetTrial> draw_open_set_trial(const std::vector<PersonImages>& people, int gallery_size,
                                         int templates_per_person, uint64_t seed);

// How many trials a gallery of this size is drawn (pooled): 100 for 10
// people, 10 for 100, 1 from 1000 on (every unknown probe is searched each time).
int trials_for_size(int gallery_size);

// An image's template for the protocol (empty unit = no template: a failed
// mated search is a miss, a failed unknown one a correct rejection).
struct ProbeTemplate {
  std::span<const float> unit;
  float quality = 1.f;
};

// Searches every probe of a trial against its gallery under `rule`
// (kMean weighted by quality when quality_weighted). outcomes[0..mated) are
// the mated searches in trial order, then the unknown ones.
// kInvalidArgument when dim <= 0 or a template is not dim long or not finite.
Result<std::vector<SearchOutcome>> run_open_set_trial(const OpenSetTrial& trial, std::span<const ProbeTemplate> templates,
                                                      int dim, TemplateRule rule, bool quality_weighted);

// Rates at a fixed threshold (NIST's open-set definitions at rank 1).
struct RatesAtThreshold {
  double fpir = 0.0, dir = 0.0;  // NaN without unknown / mated searches
  int64_t false_positives = 0, unknown = 0, hits = 0, mated = 0;
};
RatesAtThreshold rates_at_threshold(std::span<const SearchOutcome> searches, float threshold);

// --------------------------- Calibration data --------------------------------

// Impostor searches among calibration people: the pool holds one image per
// person (seeded pick), every image of these people is a probe, and
// scores[i] = probe i against every pool person but its own (input for
// calibrate_impostors()). Images with an empty template are skipped.
std::vector<std::vector<float>> impostor_scores(const std::vector<PersonImages>& people,
                                                std::span<const ProbeTemplate> templates, int dim, uint64_t seed,
                                                int64_t* pool_people = nullptr);

}  // namespace facerec::eval
