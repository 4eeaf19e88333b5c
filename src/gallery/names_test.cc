// Identity names (facerec/names.h) and how the gallery uses them: fault 8
// (Unicode normalisation) and fault 18's look-alike names (issue 11).
#include "facerec/names.h"

#include <sqlite3.h>

#include <gtest/gtest.h>

#include "facerec/gallery.h"
#include "random_unit.h"
#include "test_support.h"

namespace facerec {
namespace {

const std::string kNfc = "Jos\xC3\xA9";   // "José", U+00E9
const std::string kNfd = "Jose\xCC\x81";  // "José", e + U+0301
const EmbedderInfo kEmbedder{"test_embedder", std::string(64, '1'), 4};

NewTemplate tmpl(uint32_t seed) {
  NewTemplate t;
  t.unit = testing::random_unit(4, seed);
  t.norm = 20;
  t.source = "img" + std::to_string(seed);
  t.source_sha256 = "sha" + std::to_string(seed);
  return t;
}

TEST(IdentityNames, NfcIsTheStoredForm) {
  ASSERT_NE(kNfc, kNfd);
  EXPECT_EQ(to_nfc(kNfd), kNfc);
  EXPECT_EQ(to_nfc(kNfc), kNfc);
  EXPECT_EQ(normalize_identity_name(kNfd).value(), kNfc);
  EXPECT_EQ(to_nfc("\xFF\xFE"), "\xFF\xFE") << "invalid UTF-8 comes back unchanged";
  EXPECT_FALSE(normalize_identity_name("\xFF").ok());
}

TEST(IdentityNames, CaseStaysSignificantButIsDetected) {
  EXPECT_TRUE(differ_only_by_case("Anne", "anne"));
  EXPECT_TRUE(differ_only_by_case(kNfc, "JOS\xC3\x89"));  // JOSÉ
  EXPECT_TRUE(differ_only_by_case(kNfd, "JOS\xC3\x89"));
  EXPECT_FALSE(differ_only_by_case("Anne", "Anne"));
  EXPECT_FALSE(differ_only_by_case(kNfc, kNfd)) << "same name, not a case variant";
  EXPECT_FALSE(differ_only_by_case("Anne", "Ann"));
}

TEST(IdentityNames, InvisibleAndReorderingCharactersAreRefusedWithTheCodePoint) {
  const std::pair<std::string, std::string> bad[] = {
      {"Alice\xE2\x80\xAE" "ecilA", "U+202E"},  // right-to-left override
      {"Ali\xE2\x80\x8B" "ce", "U+200B"},       // zero-width space
      {"Ali\xE2\x80\x8D" "ce", "U+200D"},       // zero-width joiner
      {"Ali\xEF\xBB\xBF" "ce", "U+FEFF"},       // BOM / zero-width no-break space
      {"Ali\xE2\x81\xA6" "ce", "U+2066"},       // left-to-right isolate
      {"Ali\xE2\x80\xAA" "ce", "U+202A"},
      {"Ali\xE2\x81\xA9" "ce", "U+2069"},
  };
  for (const auto& [name, cp] : bad) {
    Status s = validate_identity_name(name);
    ASSERT_FALSE(s.ok()) << cp;
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(s.message().find(cp), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("look-alike"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(validate_identity_name("Zoë Saldaña").ok());
  EXPECT_TRUE(validate_identity_name("李小龙").ok());
}

// Fault 8: the NFC and NFD spellings are one person, on every way in.
TEST(IdentityNames, GalleryTreatsNfcAndNfdAsOnePerson) {
  const std::string path = testing::temp_dir("names") + "/g.db";
  auto g = Gallery::open(path, kEmbedder);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE((*g)->enroll(kNfc, {tmpl(1)}).ok());
  auto r = (*g)->enroll(kNfd, {tmpl(2)});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto people = (*g)->list_people();
  ASSERT_EQ(people->size(), 1u);
  EXPECT_EQ((*people)[0].name, kNfc);
  EXPECT_EQ((*people)[0].templates, 2);
  // Rename into NFD stores NFC; remove with NFD removes the person.
  ASSERT_TRUE((*g)->rename_person(kNfd, "Jos\xC3\xA9 2").ok());
  EXPECT_EQ((*g)->list_people()->at(0).name, "Jos\xC3\xA9 2");
  ASSERT_TRUE((*g)->remove_person("Jose\xCC\x81 2").ok());
  EXPECT_TRUE((*g)->list_people()->empty());
}

// A gallery written before normalisation holds NFD names (and maybe both
// forms): lookups compare NFC forms, lists show NFC, remove takes both.
TEST(IdentityNames, OldGalleriesWithNfdNamesStillWork) {
  const std::string path = testing::temp_dir("names") + "/old.db";
  {
    auto g = Gallery::open(path, kEmbedder);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->enroll("placeholder_nfd", {tmpl(1)}).ok());
    ASSERT_TRUE((*g)->enroll(kNfc, {tmpl(2)}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE people SET name = '" + kNfd + "' WHERE name = 'placeholder_nfd'";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  auto g = Gallery::open_existing(path);
  ASSERT_TRUE(g.ok());
  auto people = (*g)->list_people();
  ASSERT_EQ(people->size(), 2u) << "two stored rows";
  EXPECT_EQ((*people)[0].name, kNfc);
  EXPECT_EQ((*people)[1].name, kNfc);
  // Enrolling joins an existing row rather than making a third.
  ASSERT_TRUE((*g)->enroll(kNfd, {tmpl(3)}).ok());
  EXPECT_EQ((*g)->list_people()->size(), 2u);
  ASSERT_TRUE((*g)->remove_person(kNfc).ok());
  EXPECT_TRUE((*g)->list_people()->empty()) << "both stored forms removed";
  EXPECT_EQ((*g)->remove_person(kNfd).code(), ErrorCode::kNotFound);
}

// gallery copy writes names in NFC, so an old NFD row stays reachable in the
// copy; two spellings of one name in the source are refused, nothing written.
TEST(IdentityNames, GalleryCopyWritesNfcAndRefusesTwoSpellings) {
  const std::string dir = testing::temp_dir("names_copy");
  const std::string old = dir + "/old.db";
  {
    auto g = Gallery::open(old, kEmbedder);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->enroll("placeholder_nfd", {tmpl(1)}).ok());
  }
  auto set_nfd = [&] {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
    const std::string sql = "UPDATE people SET name = '" + kNfd + "' WHERE name = 'placeholder_nfd'";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  };
  set_nfd();
  auto r = copy_gallery(old, dir + "/copy.db");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir + "/copy.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT name FROM people", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), kNfc) << "stored as NFC";
    sqlite3_finalize(st);
    sqlite3_close(db);
  }

  // Both spellings in the source: refused, the target not created with people.
  {
    auto g = Gallery::open_existing(old);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->enroll("placeholder_nfd", {tmpl(2)}).ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
    const std::string sql = "UPDATE people SET name = '" + kNfc + "' WHERE name = 'placeholder_nfd'";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto twice = copy_gallery(old, dir + "/copy2.db");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), ErrorCode::kInvalidArgument) << twice.status().to_string();
  EXPECT_NE(twice.status().message().find("two Unicode spellings"), std::string::npos) << twice.status().to_string();
  auto empty = Gallery::open_existing(dir + "/copy2.db");
  if (empty.ok()) {
    EXPECT_TRUE((*empty)->list_people()->empty()) << "nothing written";
  }
}

// What reaches a terminal from a message quoting an input: control bytes and
// the bidirectional overrides escaped (a U+202E would reverse the rest of the
// line), and a huge input clipped at a character boundary.
TEST(IdentityNames, PrintableEscapesControlsAndBidiOverridesAndClips) {
  EXPECT_EQ(printable("Jos\xC3\xA9"), "Jos\xC3\xA9");
  EXPECT_EQ(printable(std::string("a\0b\n", 4)), "a\\x00b\\x0a");
  EXPECT_EQ(printable("x\xE2\x80\xAEy\xE2\x81\xA6z\xE2\x81\xA9"), "x\\u{202E}y\\u{2066}z\\u{2069}");
  EXPECT_EQ(printable("\xE2\x80\x94"), "\xE2\x80\x94");  // an em dash is not a control
  const std::string huge = std::string(79, 'a') + "\xC3\xA9" + std::string(40'000'000, 'b');
  const std::string c = printable_clipped(huge);
  EXPECT_LT(c.size(), 120u);
  EXPECT_EQ(c.substr(0, 79), std::string(79, 'a'));  // the two-byte character is not cut in half
  EXPECT_EQ(c.substr(79), "... (40000081 bytes)");
  EXPECT_EQ(printable_clipped("short\n"), "short\\x0a");
}

}  // namespace
}  // namespace facerec
