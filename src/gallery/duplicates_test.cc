// Duplicate enrolments: the same photo (hash) and the same face (cosine at or
// above the threshold) under two names are flagged; one person's own photos
// never are; the blocked all_pairs() agrees with the plain check() loop.
#include "facerec/duplicates.h"

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "random_unit.h"
#include "test_support.h"

namespace facerec {
namespace {

constexpr int kDim = 16;

std::vector<float> unit(uint32_t seed) { return testing::random_unit(kDim, seed); }

// v nudged towards w and renormalised: cosine to v stays high.
std::vector<float> near(const std::vector<float>& v, uint32_t seed, float eps) {
  std::vector<float> w = unit(seed), out(kDim);
  double s = 0;
  for (int d = 0; d < kDim; ++d) { out[d] = v[d] + eps * w[d]; s += double(out[d]) * out[d]; }
  for (float& x : out) x = static_cast<float>(x / std::sqrt(s));
  return out;
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (int d = 0; d < kDim; ++d) s += a[d] * b[d];
  return s;
}

TEST(Duplicates, SamePhotoUnderAnotherNameIsFlaggedWhateverItsScore) {
  DuplicateFinder f(kDim, 0.9f);
  ASSERT_TRUE(f.add("Alice", 1, "a/1.jpg", "hash-1", unit(1)).ok());
  // Another embedding (e.g. another embedder run) but the same file content.
  const auto m = f.check("Bob", "hash-1", unit(2));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].person, "Alice");
  EXPECT_EQ(m[0].template_id, 1);
  EXPECT_EQ(m[0].kind, DuplicateKind::kSamePhoto);
  EXPECT_STREQ(to_string(m[0].kind), "same photo");
  // The same person enrolling the same photo again is not a duplicate of another name.
  EXPECT_TRUE(f.check("Alice", "hash-1", unit(1)).empty());
}

TEST(Duplicates, NearIdenticalFaceUnderAnotherNameIsFlaggedOnlyAboveTheThreshold) {
  const auto alice = unit(1);
  const auto close = near(alice, 7, 0.1f);
  const float s = dot(alice, close);
  ASSERT_GT(s, 0.95f);
  DuplicateFinder f(kDim, 0.9f);
  ASSERT_TRUE(f.add("Alice", 1, "a/1.jpg", "hash-1", alice).ok());
  ASSERT_TRUE(f.add("Carol", 2, "c/1.jpg", "hash-2", unit(3)).ok());
  const auto m = f.check("Bob", "hash-9", close);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].person, "Alice");
  EXPECT_EQ(m[0].kind, DuplicateKind::kSameFace);
  EXPECT_NEAR(m[0].similarity, s, 1e-5);
  // Just above the pair's similarity: no longer the same face.
  DuplicateFinder strict(kDim, s + 1e-4f);
  ASSERT_TRUE(strict.add("Alice", 1, "a/1.jpg", "hash-1", alice).ok());
  EXPECT_TRUE(strict.check("Bob", "hash-9", close).empty());
}

TEST(Duplicates, WrongDimensionIsRefused) {
  DuplicateFinder f(kDim, 0.5f);
  EXPECT_EQ(f.add("A", 1, "x", "h", std::vector<float>(3, 0.f)).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(f.size(), 0u);
}

TEST(Duplicates, AllPairsAgreesWithThePlainLoop) {
  // 700 templates of 100 people (more than one 512-row block); some near
  // copies across people, and one photo filed twice.
  DuplicateFinder f(kDim, 0.8f);
  std::vector<std::vector<float>> rows;
  std::vector<std::string> who, sha;
  std::mt19937 rng(3);
  for (int i = 0; i < 700; ++i) {
    std::vector<float> v = (i % 50 == 49) ? near(rows[static_cast<size_t>(i - 7)], 1000 + i, 0.2f) : unit(100 + i);
    rows.push_back(v);
    who.push_back("p" + std::to_string(i % 100));
    sha.push_back(i == 600 ? "h5" : "h" + std::to_string(i));
    ASSERT_TRUE(f.add(who.back(), i + 1, "s" + std::to_string(i), sha.back(), v).ok());
  }
  const auto pairs = f.all_pairs();
  std::set<std::pair<int64_t, int64_t>> fast;
  for (const auto& p : pairs) {
    EXPECT_LT(p.a.template_id, p.b.template_id);
    EXPECT_NE(p.a.person, p.b.person);
    fast.insert({p.a.template_id, p.b.template_id});
  }
  std::set<std::pair<int64_t, int64_t>> plain;
  DuplicateFinder g(kDim, 0.8f);
  for (int i = 0; i < 700; ++i) {
    for (const auto& m : g.check(who[i], sha[i], rows[i])) plain.insert({m.template_id, i + 1});
    ASSERT_TRUE(g.add(who[i], i + 1, "s" + std::to_string(i), sha[i], rows[i]).ok());
  }
  EXPECT_EQ(fast, plain);
  EXPECT_GE(plain.size(), 14u);  // the 14 near copies, at least
  ASSERT_FALSE(pairs.empty());
  EXPECT_EQ(pairs[0].kind, DuplicateKind::kSamePhoto);  // same photos first
  EXPECT_EQ(pairs[0].a.template_id, 6);
  EXPECT_EQ(pairs[0].b.template_id, 601);
}

TEST(Duplicates, FromGalleryReadsEveryTemplate) {
  const std::string db = testing::temp_dir("dup") + "/g.db";
  auto g = Gallery::open(db, {"m", std::string(64, '1'), kDim});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  NewTemplate a{unit(1), 1.f, "a/1.jpg", "hash-1", 0.9f}, b{unit(2), 1.f, "b/1.jpg", "hash-1", 0.9f};
  ASSERT_TRUE((*g)->enroll("Alice", {a}).ok());
  ASSERT_TRUE((*g)->enroll("Bob", {b}).ok());
  auto f = DuplicateFinder::from_gallery(**g, 0.9f);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const auto pairs = f->all_pairs();
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].a.person, "Alice");
  EXPECT_EQ(pairs[0].b.person, "Bob");
  EXPECT_EQ(pairs[0].kind, DuplicateKind::kSamePhoto);
}

// A store that lets another writer in right after the first read of a
// scan: what a second process enrolling meanwhile looks like.
class WriteAfterFirstRead : public GalleryStore {
 public:
  WriteAfterFirstRead(std::unique_ptr<GalleryStore> inner, std::function<void(GalleryStore&)> write)
      : inner_(std::move(inner)), write_(std::move(write)) {}
  const char* backend() const override { return inner_->backend(); }
  const std::string& location() const override { return inner_->location(); }
  const EmbedderInfo& embedder() const override { return inner_->embedder(); }
  int schema_version() const override { return inner_->schema_version(); }
  bool read_only() const override { return inner_->read_only(); }
  Result<EnrollOutcome> enroll(const std::string& name, const std::vector<NewTemplate>& t) override {
    return inner_->enroll(name, t);
  }
  Result<std::vector<EnrollOutcome>> enroll_batch(
      const std::vector<std::pair<std::string, std::vector<NewTemplate>>>& people) override {
    return inner_->enroll_batch(people);
  }
  Status remove_person(const std::string& name) override { return inner_->remove_person(name); }
  Status rename_person(const std::string& from, const std::string& to) override {
    return inner_->rename_person(from, to);
  }
  int64_t last_write_seq() const override { return inner_->last_write_seq(); }
  Result<std::vector<PersonInfo>> list_people() const override { return after(inner_->list_people()); }
  Result<std::vector<StoredTemplate>> templates() const override { return after(inner_->templates()); }
  Result<std::vector<StoredTemplate>> templates_by_id(const std::vector<int64_t>& ids) const override {
    return after(inner_->templates_by_id(ids));
  }
  Result<std::string> person_name(int64_t id) const override { return after(inner_->person_name(id)); }
  Result<GallerySnapshot> snapshot() const override { return after(inner_->snapshot()); }
  Result<std::vector<GalleryChange>> changes_since(int64_t a) const override { return inner_->changes_since(a); }
  Result<int64_t> head_seq() const override { return inner_->head_seq(); }

 private:
  template <class T>
  T after(T read) const {
    if (!written_) {
      written_ = true;
      write_(*inner_);
    }
    return read;
  }
  std::unique_ptr<GalleryStore> inner_;
  std::function<void(GalleryStore&)> write_;
  mutable bool written_ = false;
};

TEST(Duplicates, FromGalleryReadsOneSnapshot) {
  const std::string db = testing::temp_dir("dup_snapshot") + "/g.db";
  const EmbedderInfo e{"m", std::string(64, '1'), kDim};
  auto inner = open_gallery_store(db, GalleryAccess::kCreate, &e);
  ASSERT_TRUE(inner.ok()) << inner.status().to_string();
  ASSERT_TRUE((*inner)->enroll("Alice", {NewTemplate{unit(1), 1.f, "a/1.jpg", "hash-1", 0.9f}}).ok());
  Gallery g(std::make_unique<WriteAfterFirstRead>(std::move(inner).value(), [](GalleryStore& s) {
    // Another process enrols Carol, with Alice's photo, between the reads.
    ASSERT_TRUE(s.enroll("Carol", {NewTemplate{unit(1), 1.f, "c/1.jpg", "hash-1", 0.9f}}).ok());
  }));
  auto f = DuplicateFinder::from_gallery(g, 0.9f);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  // Carol is either wholly in the scan or wholly out of it; never a template
  // without its person's name.
  for (const DuplicatePair& p : f->all_pairs()) {
    EXPECT_FALSE(p.a.person.empty()) << "template " << p.a.template_id << " read without its person";
    EXPECT_FALSE(p.b.person.empty()) << "template " << p.b.template_id << " read without its person";
  }
  EXPECT_TRUE(f->size() == 1u || f->all_pairs().size() == 1u) << f->size();
}

}  // namespace
}  // namespace facerec
