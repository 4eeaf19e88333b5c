// The eval embedding cache: a round trip, the key check, and load_any() (the
// reader bench/ann_index uses, whatever models made the file).
#include <fstream>

#include <gtest/gtest.h>

#include "facerec/eval_open_set.h"
#include "test_support.h"

namespace facerec::eval {
namespace {

TEST(EmbeddingCache, RoundTripsAndLoadAnyAcceptsTheFilesKey) {
  const std::string file = testing::temp_dir("embcache") + "/cache.bin";
  auto empty = EmbeddingCache::load(file, "models-a");
  ASSERT_TRUE(empty.ok());
  EmbeddingCache c = std::move(empty).value();
  c.put("lfw/Ann/1.jpg", {1, 12.5f, 0.7f, {0.6f, 0.8f}});
  c.put("lfw/Bob/1.jpg", {3, 0.f, 0.f, {}});
  ASSERT_TRUE(c.save(file).ok());

  auto same = EmbeddingCache::load(file, "models-a");
  ASSERT_TRUE(same.ok());
  ASSERT_NE(same->find("lfw/Ann/1.jpg"), nullptr);
  EXPECT_EQ(same->find("lfw/Ann/1.jpg")->unit, (std::vector<float>{0.6f, 0.8f}));
  EXPECT_EQ(EmbeddingCache::load(file, "models-b").status().code(), ErrorCode::kInvalidArgument);

  auto any = EmbeddingCache::load_any(file);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->key(), "models-a");
  ASSERT_EQ(any->items().size(), 2u);
  EXPECT_EQ(any->items().begin()->first, "lfw/Ann/1.jpg");  // sorted by path
  EXPECT_EQ(any->items().begin()->second.norm, 12.5f);
  EXPECT_TRUE(std::next(any->items().begin())->second.unit.empty());

  EXPECT_EQ(EmbeddingCache::load_any(file + ".missing").status().code(), ErrorCode::kNotFound);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "not a cache";
  EXPECT_EQ(EmbeddingCache::load_any(file).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace facerec::eval
