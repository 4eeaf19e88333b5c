// The one hex encoder and SHA-256 helper against known answers (FIPS 180-2
// test vectors) and against the file hasher.
#include "facerec/sha256.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "facerec/models.h"

namespace facerec {
namespace {

TEST(Sha256, HexIsTwoLowercaseDigitsPerByte) {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
  EXPECT_EQ(to_hex(bytes), "000fa5ff10");
  EXPECT_EQ(to_hex({}), "");
}

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string with_nul("a\0b", 3);  // bytes, not a C string
  EXPECT_NE(sha256_hex(with_nul), sha256_hex("a"));
}

TEST(Sha256, AFileHashesLikeItsBytes) {
  const auto path = std::filesystem::temp_directory_path() / ("facerec_sha256_" + std::to_string(::getpid()));
  const std::string bytes("abc\n\0\xff", 6);
  std::ofstream(path, std::ios::binary) << bytes;
  auto file = sha256_file(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ(*file, sha256_hex(bytes));
}

}  // namespace
}  // namespace facerec
