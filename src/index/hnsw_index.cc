// The HNSW graph behind SearchIndex's approximate mode (see hnsw_index.h and
// facerec/search.h), its file format, and SearchIndex's mode switching.
//
// File (<gallery>.hnsw), little-endian:
//   "FRHNSW01"                       8 bytes
//   u32 meta length, meta JSON       what the graph indexes: dim, rule, points,
//                                    m, ef_construction, content_sha256, and
//                                    every label's person ("" = deleted)
//   u64 graph length, graph bytes    hnswlib's saveIndex() output
//   SHA-256 of everything above      32 bytes
// The checksum is verified before a byte of the graph is parsed; the meta is
// compared with the index at hand before the graph is used.
#include "index/hnsw_index.h"

#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include <hnswlib/hnswlib.h>

#include "facerec/sha256.h"
#include "json_headroom.h"

namespace facerec {

const size_t kAutoHnswTemplates = 50000;

// ---------------------------------------------------------------- kernels --

float inner_product_plain(const float* a, const float* b, size_t n) {
  float acc = 0.f;
  for (size_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) float ip_avx512(const float* a, const float* b, size_t n) {
  __m512 acc = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float s = 0.f;
  for (float v : lanes) s += v;
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) float ip_avx2(const float* a, const float* b, size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  float s = _mm_cvtss_f32(lo);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}
#endif

using IpFn = float (*)(const float*, const float*, size_t);

IpFn pick_ip() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) return ip_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ip_avx2;
#endif
  return inner_product_plain;
}

const IpFn kIp = pick_ip();

// hnswlib's distance: 1 - dot (its InnerProductSpace's convention).
float ip_distance(const void* a, const void* b, const void* dim) {
  return 1.f - kIp(static_cast<const float*>(a), static_cast<const float*>(b), *static_cast<const size_t*>(dim));
}

class IpSpace final : public hnswlib::SpaceInterface<float> {
 public:
  explicit IpSpace(size_t dim) : dim_(dim) {}
  size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return ip_distance; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  size_t dim_;
};

constexpr char kMagic[8] = {'F', 'R', 'H', 'N', 'S', 'W', '0', '1'};

// An anonymous in-memory file: hnswlib 0.6.2 saves and loads by path only.
struct MemFile {
  int fd = -1;
  MemFile() { fd = ::memfd_create("facerec-hnsw", 0); }
  ~MemFile() {
    if (fd >= 0) ::close(fd);
  }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

}  // namespace

float inner_product_fast(const float* a, const float* b, size_t n) { return kIp(a, b, n); }

// ------------------------------------------------------------ ApproxIndex --

struct ApproxIndex::Graph {
  IpSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
  explicit Graph(size_t dim) : space(dim) {}
};

ApproxIndex::~ApproxIndex() = default;

ApproxIndex::ApproxIndex(const SearchIndex& index, const HnswOptions& options)
    : dim_(index.dim_),
      people_points_(index.rule_ == TemplateRule::kMean || index.rule_ == TemplateRule::kMeanScore),
      rule_(index.rule_),
      options_(options),
      graph_(std::make_unique<Graph>(static_cast<size_t>(index.dim_))) {}

std::vector<uint64_t>& ApproxIndex::labels_of(int32_t slot) {
  if (labels_of_.size() <= static_cast<size_t>(slot)) labels_of_.resize(static_cast<size_t>(slot) + 1);
  return labels_of_[static_cast<size_t>(slot)];
}

std::vector<float> ApproxIndex::person_point(const SearchIndex& index, int32_t slot) const {
  // The vector whose dot product with a query is the person's exact score:
  // kMean sum_r w_r u_r / |sum_r w_r u_r|, kMeanScore sum_r w_r u_r / sum_r w_r
  // (person_inv_norm_ holds either scale).
  const size_t d = static_cast<size_t>(dim_);
  std::vector<double> sum(d, 0.0);
  for (uint32_t r : index.slot_rows_[static_cast<size_t>(slot)]) {
    const float* u = index.rows_.data() + size_t{r} * d;
    const double w = index.row_weight_[r];
    for (size_t i = 0; i < d; ++i) sum[i] += w * u[i];
  }
  std::vector<float> v(d);
  const double scale = index.person_inv_norm_[static_cast<size_t>(slot)];
  for (size_t i = 0; i < d; ++i) v[i] = static_cast<float>(sum[i] * scale);
  return v;
}

void ApproxIndex::add_point(const float* v, uint64_t label) {
  auto& h = *graph_->hnsw;
  if (h.cur_element_count >= h.max_elements_) h.resizeIndex(std::max<size_t>(1024, h.max_elements_ * 2));
  h.addPoint(v, static_cast<hnswlib::labeltype>(label));
}

std::unique_ptr<ApproxIndex> ApproxIndex::build(const SearchIndex& index, const HnswOptions& options) {
  std::unique_ptr<ApproxIndex> a(new ApproxIndex(index, options));
  const size_t n = a->people_points_ ? index.people() : index.size();
  a->graph_->hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      &a->graph_->space, std::max<size_t>(1024, n + n / 4), static_cast<size_t>(options.m),
      static_cast<size_t>(options.ef_construction));
  a->graph_->hnsw->setEf(static_cast<size_t>(options.ef_search));
  a->label_slot_.reserve(n);
  a->labels_of_.resize(index.slot_name_.size());
  auto new_label = [&](int32_t slot) {
    const uint64_t label = a->label_slot_.size();
    a->label_slot_.push_back(slot);
    a->labels_of_[static_cast<size_t>(slot)].push_back(label);
    return label;
  };
  if (a->people_points_) {
    for (const auto& [name, slot] : index.slot_of_) a->add_point(a->person_point(index, slot).data(), new_label(slot));
  } else {
    const size_t d = static_cast<size_t>(index.dim_);
    for (size_t r = 0; r < index.row_person_.size(); ++r)
      if (index.row_person_[r] >= 0) a->add_point(index.rows_.data() + r * d, new_label(index.row_person_[r]));
  }
  a->live_ = a->label_slot_.size();
  return a;
}

void ApproxIndex::on_add(const SearchIndex& index, int32_t slot, size_t first_row, size_t n) {
  auto& labels = labels_of(slot);
  auto new_label = [&] {
    const uint64_t label = label_slot_.size();
    label_slot_.push_back(slot);
    labels.push_back(label);
    ++live_;
    return label;
  };
  if (people_points_) {
    // A new person gets a label; an enrolled one moves their point (hnswlib
    // updates a label it already holds in place).
    const uint64_t label = labels.empty() ? new_label() : labels[0];
    add_point(person_point(index, slot).data(), label);
  } else {
    const size_t d = static_cast<size_t>(dim_);
    for (size_t r = first_row; r < first_row + n; ++r) add_point(index.rows_.data() + r * d, new_label());
  }
  dirty_ = true;
}

void ApproxIndex::on_remove(int32_t slot) {
  auto& labels = labels_of(slot);
  for (uint64_t label : labels) {
    graph_->hnsw->markDelete(static_cast<hnswlib::labeltype>(label));
    label_slot_[label] = -1;
    --live_;
  }
  std::vector<uint64_t>().swap(labels);
  dirty_ = true;
}

void ApproxIndex::on_rename() { dirty_ = true; }  // labels name slots; the slot keeps its labels

std::vector<Candidate> ApproxIndex::search(const SearchIndex& index, const float* query, int top_k) const {
  if (live_ == 0 || top_k <= 0) return {};
  const size_t k = std::min(live_, static_cast<size_t>(std::max(top_k, options_.rerank)));
  auto found = graph_->hnsw->searchKnn(query, k);
  std::vector<int32_t> people;
  people.reserve(found.size());
  while (!found.empty()) {
    const int32_t slot = label_slot_[found.top().second];
    found.pop();
    if (slot >= 0) people.push_back(slot);
  }
  std::sort(people.begin(), people.end());
  people.erase(std::unique(people.begin(), people.end()), people.end());
  // Exact re-scoring with the index's rule, ranked as SearchIndex ranks
  // (higher first, ties by name; NaN last).
  std::vector<Candidate> out;
  out.reserve(people.size());
  for (int32_t slot : people) {
    const auto& rows = index.slot_rows_[static_cast<size_t>(slot)];
    float s = index.score_person_rows(static_cast<size_t>(slot), rows.data(), rows.size(), query);
    if (std::isnan(s)) s = -std::numeric_limits<float>::infinity();
    out.push_back({index.slot_name_[static_cast<size_t>(slot)], s});
  }
  const size_t keep = std::min(out.size(), static_cast<size_t>(top_k));
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(keep), out.end(),
                    [](const Candidate& a, const Candidate& b) {
                      return a.similarity > b.similarity || (a.similarity == b.similarity && a.identity < b.identity);
                    });
  out.resize(keep);
  return out;
}

size_t ApproxIndex::memory_bytes() const {
  const auto& h = *graph_->hnsw;
  size_t bytes = h.max_elements_ * h.size_data_per_element_;  // level 0: vectors, links, labels
  for (size_t i = 0; i < h.cur_element_count; ++i)
    if (h.element_levels_[i] > 0) bytes += h.size_links_per_element_ * static_cast<size_t>(h.element_levels_[i]);
  bytes += h.max_elements_ * (sizeof(void*) + sizeof(int) + sizeof(std::mutex));  // linkLists_, levels, locks
  bytes += h.label_lookup_.size() * (sizeof(hnswlib::labeltype) + sizeof(hnswlib::tableint) + 16);
  bytes += label_slot_.capacity() * sizeof(int32_t);
  for (const auto& labels : labels_of_) bytes += sizeof(labels) + labels.capacity() * sizeof(uint64_t);
  return bytes;
}

// ------------------------------------------------------------ persistence --

// Each label's person, "" once deleted: the file's "labels" (names, not slots,
// so a file stays valid for an index that gave the people other slots).
std::vector<std::string> ApproxIndex::label_names(const SearchIndex& index) const {
  std::vector<std::string> names(label_slot_.size());
  for (size_t label = 0; label < label_slot_.size(); ++label)
    if (label_slot_[label] >= 0) names[label] = index.slot_name_[static_cast<size_t>(label_slot_[label])];
  return names;
}

Status ApproxIndex::save(const SearchIndex& index, const std::string& path, const std::string& content_sha256) {
  try {
    return save_unguarded(index, path, content_sha256);
  } catch (const std::exception& e) {  // e.g. a label name that is not UTF-8 (JSON), out of memory
    return Status(ErrorCode::kInternal, std::string("saving the HNSW index: ") + e.what());
  }
}

Status ApproxIndex::save_unguarded(const SearchIndex& index, const std::string& path,
                                   const std::string& content_sha256) {
  MemFile graph;
  if (graph.fd < 0) return Status(ErrorCode::kIo, "saving the HNSW index: memfd_create failed");
  try {
    graph_->hnsw->saveIndex(graph.path());
  } catch (const std::exception& e) {
    return Status(ErrorCode::kIo, std::string("saving the HNSW index: ") + e.what());
  }
  nlohmann::json meta = {{"dim", dim_},
                         {"rule", to_string(rule_)},
                         {"points", people_points_ ? "people" : "templates"},
                         {"m", options_.m},
                         {"ef_construction", options_.ef_construction},
                         {"content_sha256", content_sha256},
                         {"labels", label_names(index)}};
  const std::string meta_text = meta.dump();
  const off_t graph_len = ::lseek(graph.fd, 0, SEEK_END);
  ::lseek(graph.fd, 0, SEEK_SET);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status(ErrorCode::kIo, "cannot write " + tmp);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    auto put = [&](const void* p, size_t n) {
      out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
      EVP_DigestUpdate(ctx, p, n);
    };
    put(kMagic, 8);
    const uint32_t meta_len = static_cast<uint32_t>(meta_text.size());
    put(&meta_len, 4);
    put(meta_text.data(), meta_text.size());
    const uint64_t glen = static_cast<uint64_t>(graph_len);
    put(&glen, 8);
    std::vector<char> buf(size_t{1} << 20);
    for (uint64_t left = glen; left > 0;) {
      const ssize_t got = ::read(graph.fd, buf.data(), std::min<uint64_t>(left, buf.size()));
      if (got <= 0) {
        EVP_MD_CTX_free(ctx);
        return Status(ErrorCode::kIo, "saving the HNSW index: short read of the graph");
      }
      put(buf.data(), static_cast<size_t>(got));
      left -= static_cast<uint64_t>(got);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    out.write(reinterpret_cast<const char*>(md), md_len);
    out.close();
    if (!out) return Status(ErrorCode::kIo, "cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot rename " + tmp + " to " + path + ": " + ec.message());
  dirty_ = false;
  return Status::Ok();
}

Result<std::unique_ptr<ApproxIndex>> ApproxIndex::load(const std::string& path, const SearchIndex& index,
                                                       const HnswOptions& options, const std::string& content_sha256) {
  try {
    return load_unguarded(path, index, options, content_sha256);
  } catch (const std::exception& e) {  // out of memory, hnswlib
    return Status(ErrorCode::kInternal, "loading " + path + ": " + e.what());
  }
}

Result<std::unique_ptr<ApproxIndex>> ApproxIndex::load_unguarded(const std::string& path, const SearchIndex& index,
                                                                 const HnswOptions& options,
                                                                 const std::string& content_sha256) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status(ErrorCode::kNotFound, path + " is missing");
  const uintmax_t size = std::filesystem::file_size(path, ec);
  auto damaged = [&](const std::string& why) { return Status(ErrorCode::kHashMismatch, path + " is damaged (" + why + ")"); };
  if (ec || size < 8 + 4 + 8 + 32) return damaged("too short");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kIo, "cannot read " + path);
  // 1. The checksum, over everything before the last 32 bytes.
  {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    std::vector<char> buf(size_t{1} << 20);
    for (uintmax_t left = size - 32; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uintmax_t>(left, buf.size()));
      if (!in.read(buf.data(), static_cast<std::streamsize>(n))) {
        EVP_MD_CTX_free(ctx);
        return damaged("short read");
      }
      EVP_DigestUpdate(ctx, buf.data(), n);
      left -= n;
    }
    unsigned char md[EVP_MAX_MD_SIZE], stored[32];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (!in.read(reinterpret_cast<char*>(stored), 32) || md_len != 32 || std::memcmp(md, stored, 32) != 0)
      return damaged("SHA-256 mismatch");
  }
  // 2. The meta: is this the graph of the index at hand?
  in.clear();
  in.seekg(0);
  char magic[8];
  uint32_t meta_len = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return damaged("not a facerec HNSW index");
  if (!in.read(reinterpret_cast<char*>(&meta_len), 4) || meta_len > size) return damaged("meta length");
  std::string meta_text(meta_len, '\0');
  if (!in.read(meta_text.data(), meta_len)) return damaged("meta");
  std::unique_ptr<ApproxIndex> a(new ApproxIndex(index, options));
  std::vector<std::string> labels;  // each label's person, "" once deleted
  FACEREC_RETURN_IF_ERROR(internal::json_parse_headroom(meta_text.size(), ErrorCode::kTooLarge, path + "'s meta block"));
  try {
    const auto meta = nlohmann::json::parse(meta_text);
    auto stale = [&](const std::string& why) { return Status(ErrorCode::kMismatch, path + " is stale (" + why + ")"); };
    if (meta.at("dim").get<int>() != index.dim_) return stale("dimension");
    if (meta.at("rule").get<std::string>() != to_string(index.rule_)) return stale("template rule");
    if (meta.at("points").get<std::string>() != (a->people_points_ ? "people" : "templates")) return stale("points");
    if (meta.at("m").get<int>() != options.m || meta.at("ef_construction").get<int>() != options.ef_construction)
      return stale("build options");
    if (meta.at("content_sha256").get<std::string>() != content_sha256) return stale("the gallery changed");
    labels = meta.at("labels").get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    return damaged(std::string("meta: ") + e.what());
  }
  uint64_t glen = 0;
  if (!in.read(reinterpret_cast<char*>(&glen), 8) || glen != size - 8 - 4 - meta_len - 8 - 32) return damaged("graph length");
  // 3. The graph, through an in-memory file (hnswlib loads by path).
  MemFile graph;
  if (graph.fd < 0) return Status(ErrorCode::kIo, "loading the HNSW index: memfd_create failed");
  std::vector<char> buf(size_t{1} << 20);
  for (uint64_t left = glen; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    if (!in.read(buf.data(), static_cast<std::streamsize>(n)) || ::write(graph.fd, buf.data(), n) != static_cast<ssize_t>(n))
      return Status(ErrorCode::kIo, "loading the HNSW index: copy failed");
    left -= n;
  }
  try {
    a->graph_->hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(&a->graph_->space, graph.path());
  } catch (const std::exception& e) {
    return damaged(std::string("graph: ") + e.what());
  }
  auto& h = *a->graph_->hnsw;
  h.setEf(static_cast<size_t>(options.ef_search));
  // The labels the graph holds must be the meta's, live exactly where named.
  a->live_ = 0;
  a->label_slot_.assign(labels.size(), -1);
  a->labels_of_.resize(index.slot_name_.size());
  for (size_t label = 0; label < labels.size(); ++label) {
    const std::string& name = labels[label];
    if (name.empty()) continue;
    auto it = index.slot_of_.find(name);
    if (it == index.slot_of_.end()) return damaged("labels name unknown people");
    a->label_slot_[label] = it->second;
    a->labels_of_[static_cast<size_t>(it->second)].push_back(label);
    ++a->live_;
  }
  if (h.cur_element_count != labels.size() || h.label_lookup_.size() != labels.size())
    return damaged("label count");
  const size_t expect = a->people_points_ ? index.people() : index.size();
  if (a->live_ != expect) return damaged("point count");
  return a;
}

// ------------------------------------------------------ SearchIndex modes --

SearchIndex::SearchIndex() = default;
SearchIndex::SearchIndex(TemplateRule rule) : rule_(rule) {}
SearchIndex::~SearchIndex() = default;
SearchIndex::SearchIndex(SearchIndex&&) noexcept = default;
SearchIndex& SearchIndex::operator=(SearchIndex&&) noexcept = default;

const char* to_string(IndexMode mode) {
  switch (mode) {
    case IndexMode::kExact: return "exact";
    case IndexMode::kHnsw: return "hnsw";
    case IndexMode::kAuto: return "auto";
  }
  return "?";
}

Result<IndexMode> parse_index_mode(const std::string& name) {
  if (name == "exact") return IndexMode::kExact;
  if (name == "hnsw") return IndexMode::kHnsw;
  if (name == "auto") return IndexMode::kAuto;
  return Status(ErrorCode::kInvalidArgument, "unknown index '" + name + "' (expected exact, hnsw or auto)");
}

bool SearchIndex::approximate() const { return ann_ != nullptr; }

std::string SearchIndex::content_sha256() const {
  // The bytes an index built from scratch over the live rows would hash:
  // names in order, each row's person as its rank in that order, the rows and
  // the weights (holes left out), so an index updated in place and a fresh one
  // over the same gallery agree.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  const int32_t head[2] = {dim_, static_cast<int32_t>(rule_)};
  EVP_DigestUpdate(ctx, head, sizeof head);
  std::vector<int32_t> rank(slot_name_.size(), -1);
  int32_t next = 0;
  for (const auto& [name, slot] : slot_of_) {
    const uint64_t len = name.size();
    EVP_DigestUpdate(ctx, &len, sizeof len);
    EVP_DigestUpdate(ctx, name.data(), name.size());
    rank[static_cast<size_t>(slot)] = next++;
  }
  std::vector<int32_t> ranks;
  ranks.reserve(live_rows_);
  for (int32_t p : row_person_)
    if (p >= 0) ranks.push_back(rank[static_cast<size_t>(p)]);
  EVP_DigestUpdate(ctx, ranks.data(), ranks.size() * sizeof(int32_t));
  const size_t d = static_cast<size_t>(dim_);
  auto live_runs = [&](const float* data, size_t per_row) {
    // Consecutive live rows in one update each.
    for (size_t r = 0; r < row_person_.size();) {
      if (row_person_[r] < 0) {
        ++r;
        continue;
      }
      size_t end = r;
      while (end < row_person_.size() && row_person_[end] >= 0) ++end;
      EVP_DigestUpdate(ctx, data + r * per_row, (end - r) * per_row * sizeof(float));
      r = end;
    }
  };
  live_runs(rows_.data(), d);
  if (!row_weight_.empty()) live_runs(row_weight_.data(), 1);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  return to_hex({md, n});
}

Status SearchIndex::set_mode(IndexMode mode, const std::string& persist_path, const HnswOptions& options,
                             std::string* what) {
  if (options.m < 2 || options.m > 256 || options.ef_construction < 1 || options.ef_search < 1 || options.rerank < 1)
    return Status(ErrorCode::kInvalidArgument, "HNSW options: m must be within 2..256, ef_construction, ef_search "
                                               "and rerank at least 1");
  ann_.reset();
  try {
    mode_ = mode;
    ann_path_ = persist_path;
    ann_options_ = options;
    const bool want = mode == IndexMode::kHnsw || (mode == IndexMode::kAuto && size() >= kAutoHnswTemplates);
    if (!want || size() == 0 || dim_ <= 0) {
      if (what) *what = "exact";
      return Status::Ok();
    }
    const std::string sha = content_sha256();
    std::string note = "built";
    if (!persist_path.empty()) {
      auto loaded = ApproxIndex::load(persist_path, *this, options, sha);
      if (loaded.ok()) {
        ann_ = std::move(loaded).value();
        if (what) *what = "loaded " + persist_path;
        return Status::Ok();
      }
      note = "rebuilt: " + loaded.status().message();
    }
    ann_ = ApproxIndex::build(*this, options);
    if (what) *what = note;
    if (persist_path.empty()) return Status::Ok();
    return ann_->save(*this, persist_path, sha);
  } catch (const std::exception& e) {  // hnswlib, out of memory: the index stays exact
    ann_.reset();
    mode_ = IndexMode::kExact;
    return Status(ErrorCode::kInternal, std::string("building the HNSW index: ") + e.what());
  }
}

// Called after every update; never throws: a graph that cannot be built is
// dropped (the index answers exactly) and built again after the next update.
void SearchIndex::update_auto_mode() noexcept {
  if (mode_ == IndexMode::kExact) return;
  const bool want = size() > 0 && (mode_ == IndexMode::kHnsw || size() >= kAutoHnswTemplates);
  try {
    if (want && !ann_) {
      ann_ = ApproxIndex::build(*this, ann_options_);
      ann_->set_dirty();
    } else if (!want) {
      ann_.reset();
    } else if (ann_->deleted_points() > ann_->live_points()) {
      // hnswlib 0.6.2 never reuses a deleted slot: past half dead, rebuild.
      ann_.reset();
      ann_ = ApproxIndex::build(*this, ann_options_);
      ann_->set_dirty();
    }
  } catch (const std::exception&) {
    ann_.reset();
  }
}

Status SearchIndex::save_if_dirty() {
  if (!ann_ || !ann_->dirty() || ann_path_.empty()) return Status::Ok();
  try {
    return ann_->save(*this, ann_path_, content_sha256());
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("saving the HNSW index: ") + e.what());
  }
}

}  // namespace facerec
