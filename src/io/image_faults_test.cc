// Hostile and unusual image files (issue 11, faults 1, 2, 3, 15, 16, 19): each
// input is built here, with OpenCV, ImageMagick's `convert` or by hand.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>

#include "decoders.h"
#include "facerec/image.h"
#include "test_support.h"

namespace facerec {
namespace {

std::string dir() {
  static const std::string d = testing::temp_dir("imgfaults");
  return d;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string p = dir() + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string encode(const cv::Mat& m, const std::string& ext, const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, m, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

// A picture whose orientation is obvious: a gradient plus a bright block in
// the top-left corner.
cv::Mat asymmetric(int w = 120, int h = 80) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(2 * x), uchar(3 * y), 90);
  cv::rectangle(m, {0, 0, w / 4, h / 4}, cv::Scalar(255, 255, 255), cv::FILLED);
  return m;
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size()) return 1e9;
  return cv::norm(a, b, cv::NORM_L1) / (a.total() * a.channels());
}

bool have_convert(const std::string& format) {
  const std::string cmd = "convert -list format 2>/dev/null | grep -qiE '^ *" + format + "\\*? '";
  return std::system(cmd.c_str()) == 0;
}

// Converts a PNG written from `m` into another format with ImageMagick.
std::string magick(const cv::Mat& m, const std::string& ext, const std::string& extra = "") {
  const std::string src = write_file("src_for_" + ext + ".png", encode(m, ".png"));
  const std::string dst = dir() + "/converted." + ext;
  const std::string cmd = "convert " + src + " " + extra + " " + dst + " 2>/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return read_file(dst);
}

void put_be32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
}
void put_le16(std::string& s, size_t at, uint32_t v) {
  s[at] = static_cast<char>(v & 0xFF);
  s[at + 1] = static_cast<char>((v >> 8) & 0xFF);
}
void put_be16(std::string& s, size_t at, uint32_t v) {
  s[at] = static_cast<char>((v >> 8) & 0xFF);
  s[at + 1] = static_cast<char>(v & 0xFF);
}
std::string le32s(uint32_t v) { return {char(v & 0xFF), char((v >> 8) & 0xFF), char((v >> 16) & 0xFF), char(v >> 24)}; }
std::string be32s(uint32_t v) { return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)}; }

// The offset of a JPEG's SOF0/SOF2 segment.
size_t jpeg_sof(const std::string& j) {
  for (size_t i = 2; i + 4 < j.size();) {
    const unsigned m = static_cast<unsigned char>(j[i + 1]);
    if (m == 0xC0 || m == 0xC1 || m == 0xC2) return i;
    i += 2 + ((static_cast<unsigned char>(j[i + 2]) << 8) | static_cast<unsigned char>(j[i + 3]));
  }
  return std::string::npos;
}

// A big-endian EXIF block (TIFF structure) holding only Orientation.
std::string exif_orientation_block(int orientation, bool with_prefix) {
  std::string t = std::string("MM\0*", 4) + be32s(8);
  t += std::string("\0\x01", 2);                                     // one entry
  t += std::string("\x01\x12\0\x03", 4) + be32s(1);                  // 0x0112 SHORT x1
  t += std::string{char(0), char(orientation), char(0), char(0)};    // value, padded
  t += be32s(0);                                                      // no next IFD
  return with_prefix ? std::string("Exif\0\0", 6) + t : t;
}

std::string png_chunk(const std::string& type, const std::string& data) {
  std::string c = be32s(static_cast<uint32_t>(data.size())) + type + data;
  const uLong crc = crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(c.data() + 4), static_cast<uInt>(4 + data.size()));
  return c + be32s(static_cast<uint32_t>(crc));
}

// ---- Fault 1: pixel bombs in every format, refused from the header ----------------
struct Bomb {
  std::string name;
  std::string bytes;
};

std::vector<Bomb> bombs_16000() {
  const cv::Mat small = asymmetric(32, 32);
  std::vector<Bomb> v;
  {
    std::string j = encode(small, ".jpg");
    const size_t sof = jpeg_sof(j);
    put_be16(j, sof + 5, 16000);
    put_be16(j, sof + 7, 16000);
    v.push_back({"bomb.jpg", j});
  }
  {
    std::string p = encode(small, ".png");
    put_be32(p, 16, 16000);
    put_be32(p, 20, 16000);
    v.push_back({"bomb.png", p});
  }
  {
    std::string b = encode(small, ".bmp");
    b.replace(18, 4, le32s(16000));
    b.replace(22, 4, le32s(16000));
    v.push_back({"bomb.bmp", b});
  }
  {
    // A strip TIFF declaring 16000x16000 8-bit grey, a few hundred bytes on disk.
    std::string t = std::string("II*\0", 4) + le32s(8);
    auto entry = [&](uint16_t tag, uint16_t type, uint32_t value) {
      std::string e;
      e += char(tag & 0xFF); e += char(tag >> 8); e += char(type & 0xFF); e += char(type >> 8);
      e += le32s(1) + le32s(value);
      return e;
    };
    t += std::string{char(8), char(0)};
    t += entry(256, 4, 16000) + entry(257, 4, 16000) + entry(258, 3, 8) + entry(259, 3, 1) + entry(262, 3, 1) +
         entry(273, 4, 200) + entry(278, 4, 16000) + entry(279, 4, 256000000);
    t += le32s(0);
    t += std::string(300, '\0');
    v.push_back({"bomb.tif", t});
  }
  {
    std::string w = encode(small, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80});
    // Lossy "VP8 " chunk: 14-bit sizes at chunk data + 6 and + 8.
    EXPECT_EQ(w.substr(12, 4), "VP8 ");
    put_le16(w, 20 + 6, 16000);
    put_le16(w, 20 + 8, 16000);
    v.push_back({"bomb.webp", w});
  }
  v.push_back({"bomb.ppm", "P6\n16000 16000\n255\n" + std::string(3000, '\x7f')});
  v.push_back({"bomb.pgm", "P5\n# comment\n16000 16000\n255\n" + std::string(3000, '\x7f')});
  v.push_back({"bomb.pam", "P7\nWIDTH 16000\nHEIGHT 16000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + std::string(300, 'x')});
  {
    // GIF: logical screen and the frame both 16000x16000.
    std::string g = "GIF89a";
    g += std::string{char(16000 & 0xFF), char(16000 >> 8), char(16000 & 0xFF), char(16000 >> 8)};
    g += std::string("\x80\x00\x00", 3) + std::string("\x00\x00\x00\xff\xff\xff", 6);
    g += std::string("\x2c\0\0\0\0", 5) + std::string{char(16000 & 0xFF), char(16000 >> 8), char(16000 & 0xFF), char(16000 >> 8)};
    g += std::string("\0\x02\x02\x44\x01\0\x3b", 7);
    v.push_back({"bomb.gif", g});
  }
  return v;
}

TEST(ImageFaults, PixelBombsInEveryFormatAreRefusedFromTheHeaderWithTheHint) {
  for (const auto& b : bombs_16000()) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = load_image(write_file(b.name, b.bytes));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_FALSE(r.ok()) << b.name;
    EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge) << b.name << ": " << r.status().message();
    EXPECT_NE(r.status().message().find("16000x16000"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("--max-pixels"), std::string::npos) << r.status().message();
    EXPECT_LT(s, 0.5) << b.name << " took " << s << " s: decoded before the check?";
  }
}

TEST(ImageFaults, HeifAndAvifBombsAreRefusedBeforeDecoding) {
  for (const char* fmt : {"HEIC", "AVIF"}) {
    if (!have_convert(fmt)) {
      ADD_FAILURE() << "ImageMagick cannot write " << fmt << " here: install imagemagick with libheif";
      continue;
    }
    std::string ext = fmt == std::string("HEIC") ? "heic" : "avif";
    std::string h = magick(asymmetric(64, 64), ext);
    // The primary image's size lives in its 'ispe' property: claim 16000x16000.
    const size_t at = h.find("ispe");
    ASSERT_NE(at, std::string::npos);
    put_be32(h, at + 8, 16000);
    put_be32(h, at + 12, 16000);
    auto r = load_image(write_file("bomb." + ext, h));
    ASSERT_FALSE(r.ok()) << fmt;
    EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge) << r.status().message();
    EXPECT_NE(r.status().message().find("--max-pixels"), std::string::npos) << r.status().message();
    // Over libheif's own limit (32768 per side): refused by libheif while
    // reading, still kTooLarge, on one line (libheif's text ends in '\n').
    put_be32(h, at + 8, 60000);
    put_be32(h, at + 12, 60000);
    auto big = load_image(write_file("bigger." + ext, h));
    ASSERT_FALSE(big.ok()) << fmt;
    EXPECT_EQ(big.status().code(), ErrorCode::kTooLarge) << big.status().message();
    EXPECT_EQ(big.status().message().find('\n'), std::string::npos) << big.status().message();
  }
}

// ---- HEIF item graphs (fuzz_image: a grid that lists itself killed the process) ----
std::string be16s(uint32_t v) { return std::string{char((v >> 8) & 0xFF), char(v & 0xFF)}; }
std::string box(const std::string& type, const std::string& body) { return be32s(uint32_t(8 + body.size())) + type + body; }
// An 'iref' (version 0) entry: `from` refers to `to`, e.g. a grid to its tiles.
std::string ref(const std::string& type, uint32_t from, const std::vector<uint32_t>& to) {
  std::string b = be16s(from) + be16s(uint32_t(to.size()));
  for (uint32_t t : to) b += be16s(t);
  return box(type, b);
}
// ftyp + meta{pitm, iref}: only the item graph, which is checked before libheif.
std::string heif_with(uint32_t primary, const std::string& refs) {
  const std::string ftyp = box("ftyp", "heic" + be32s(0) + "mif1heic");
  return ftyp + box("meta", be32s(0) + box("pitm", be32s(0) + be16s(primary)) + box("iref", be32s(0) + refs));
}

TEST(ImageFaults, HeifItemGraphsThatRecurseForeverOrExplodeAreRefused) {
  using io::check_heif_item_graph;
  const auto heic = ImageFormat::kHeif;
  // Accepted: a 2x2 grid of tiles (one tile used twice), with an alpha grid.
  EXPECT_TRUE(check_heif_item_graph(heif_with(1, ref("dimg", 1, {2, 3, 4, 4})), heic).ok());
  EXPECT_TRUE(check_heif_item_graph(
                  heif_with(1, ref("dimg", 1, {2, 3}) + ref("dimg", 5, {6, 7}) + ref("auxl", 5, {1}) + ref("thmb", 8, {1})),
                  heic)
                  .ok());
  const struct {
    const char* what;
    std::string file;
    const char* says;
  } bad[] = {
      {"a grid that lists itself (the fuzzer's file)", heif_with(2, ref("dimg", 2, {2})), "cycle through item 2"},
      {"a cycle through an alpha image", heif_with(1, ref("dimg", 1, {2}) + ref("auxl", 1, {2})), "cycle"},
      {"a cycle not reached from the primary", heif_with(1, ref("dimg", 3, {4}) + ref("dimg", 4, {3})), "cycle"},
      {"grids nested 6 deep",
       heif_with(1, ref("dimg", 1, {2}) + ref("dimg", 2, {3}) + ref("dimg", 3, {4}) + ref("dimg", 4, {5}) +
                        ref("dimg", 5, {6}) + ref("dimg", 6, {7})),
       "nests derived images"},
      {"a 300-cell grid of 300-cell grids (90300 decodes)",
       heif_with(1, ref("dimg", 1, std::vector<uint32_t>(300, 2)) + ref("dimg", 2, std::vector<uint32_t>(300, 3))),
       "item decodes"},
      {"an 'iref' entry shorter than its count", heif_with(1, box("dimg", be16s(1) + be16s(5) + be16s(2))), "'iref'"},
  };
  for (const auto& b : bad) {
    const Status s = check_heif_item_graph(b.file, heic);
    ASSERT_FALSE(s.ok()) << b.what;
    EXPECT_EQ(s.code(), ErrorCode::kDecode) << b.what;
    EXPECT_NE(s.message().find(b.says), std::string::npos) << b.what << ": " << s.message();
    EXPECT_NE(s.message().find("corrupt HEIC/HEIF"), std::string::npos) << s.message();
  }
  // Through the public loader, before libheif ever sees the file.
  auto r = decode_image(heif_with(2, ref("dimg", 2, {2})), "self.heic");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cycle"), std::string::npos) << r.status().message();
}

// A real HEIC (ImageMagick/libheif) with a self-referencing grid spliced into
// its 'meta': refused with a message, where libheif 1.15 would recurse until
// std::terminate.
TEST(ImageFaults, RealHeicWithASelfReferencingGridIsRefused) {
  if (!have_convert("HEIC")) {
    ADD_FAILURE() << "ImageMagick cannot write HEIC here: install imagemagick with libheif";
    return;
  }
  std::string h = magick(asymmetric(64, 64), "heic");
  const size_t meta = h.find("meta");
  ASSERT_NE(meta, std::string::npos);
  ASSERT_EQ(h.find("iref"), std::string::npos) << "expected a single-image HEIC";
  const uint32_t size = (uint32_t(uint8_t(h[meta - 4])) << 24) | (uint32_t(uint8_t(h[meta - 3])) << 16) |
                        (uint32_t(uint8_t(h[meta - 2])) << 8) | uint8_t(h[meta - 1]);
  const std::string iref = box("iref", be32s(0) + ref("dimg", 1, {1}));
  h.insert(meta - 4 + size, iref);
  put_be32(h, meta - 4, size + uint32_t(iref.size()));
  auto r = load_image(write_file("selfgrid.heic", h));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDecode);
  EXPECT_NE(r.status().message().find("cycle through item 1"), std::string::npos) << r.status().message();
}

// ---- Fault 2: formats decided deliberately ------------------------------------------
TEST(ImageFaults, GifHeicAndAvifAreRead) {
  const cv::Mat m = asymmetric();
  for (const char* fmt : {"GIF", "HEIC", "AVIF"}) {
    if (!have_convert(fmt)) {
      ADD_FAILURE() << "ImageMagick cannot write " << fmt << " here";
      continue;
    }
    std::string ext = fmt;
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // Upper-case extension, as an iPhone writes them: the format comes from the bytes.
    auto r = load_image(write_file("photo." + std::string(fmt), magick(m, ext)));
    ASSERT_TRUE(r.ok()) << fmt << ": " << r.status().to_string();
    EXPECT_EQ(r->size(), m.size()) << fmt;
    EXPECT_LT(mean_abs_diff(*r, m), 12.0) << fmt << ": not the same picture";
  }
}

TEST(ImageFaults, InterlacedAndTransparentGifFramesAreComposited) {
  if (!have_convert("GIF")) GTEST_SKIP() << "no ImageMagick GIF writer";
  const cv::Mat m = asymmetric();
  auto r = load_image(write_file("inter.gif", magick(m, "gif", "-interlace GIF")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_LT(mean_abs_diff(*r, m), 12.0);
  // A GIF cut in the middle of its frame is an error, not a grey-filled picture.
  const std::string g = magick(m, "gif");
  auto cut = load_image(write_file("cut.gif", g.substr(0, g.size() / 2)));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), ErrorCode::kDecode);
}

TEST(ImageFaults, UnsupportedFormatsAreNamedAsNotSupported) {
  const cv::Mat m = asymmetric();
  cv::Mat f;
  m.convertTo(f, CV_32FC3, 1.0 / 255);
  struct Case { std::string file, bytes, format; };
  std::vector<Case> cases = {
      {"x.hdr", encode(f, ".hdr"), "Radiance HDR"},
      {"x.pfm", encode(f, ".pfm"), "PFM"},
      {"x.ras", encode(m, ".ras"), "Sun raster"},
      {"notes.txt", "just some text\n", ""},
      {"x.jpg", "not a jpeg, despite the name", ""},
  };
  if (have_convert("JP2")) cases.push_back({"x.jp2", magick(m, "jp2"), "JPEG 2000"});
  for (const auto& c : cases) {
    auto r = load_image(write_file(c.file, c.bytes));
    ASSERT_FALSE(r.ok()) << c.file;
    EXPECT_EQ(r.status().code(), ErrorCode::kDecode) << c.file;
    const std::string& msg = r.status().message();
    EXPECT_NE(msg.find("format not supported"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.file), std::string::npos) << "the file is named: " << msg;
    if (!c.format.empty()) EXPECT_NE(msg.find(c.format), std::string::npos) << msg;
    EXPECT_EQ(msg.find("Assertion"), std::string::npos) << "raw OpenCV text: " << msg;
  }
}

// ---- Fault 3: EXIF orientation in every format that carries it ----------------------
// The stored picture is the upright one turned counter-clockwise; Orientation
// 6 says "turn it clockwise to view". Every format must give back upright.
TEST(ImageFaults, ExifOrientationIsAppliedInJpegPngWebpAndTiff) {
  const cv::Mat upright = asymmetric();
  cv::Mat stored;
  cv::rotate(upright, stored, cv::ROTATE_90_COUNTERCLOCKWISE);
  const std::string exif = exif_orientation_block(6, true);

  std::string jpg = encode(stored, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 98});
  const std::string app1 = std::string("\xFF\xE1", 2) + char((exif.size() + 2) >> 8) + char((exif.size() + 2) & 0xFF) + exif;
  jpg.insert(2, app1);

  std::string png = encode(stored, ".png");
  png.insert(33, png_chunk("eXIf", exif_orientation_block(6, false)));  // right after IHDR

  // ImageMagick's way: EXIF as hex text in a zTXt "Raw profile type exif" chunk.
  std::string png_im = encode(stored, ".png");
  {
    const std::string raw = exif_orientation_block(6, true);
    std::string hex = "\nexif\n" + std::to_string(raw.size()) + "\n";
    static const char* kHex = "0123456789abcdef";
    for (unsigned char c : raw) { hex += kHex[c >> 4]; hex += kHex[c & 15]; }
    hex += "\n";
    std::vector<Bytef> z(compressBound(hex.size()));
    uLongf zlen = z.size();
    ASSERT_EQ(compress(z.data(), &zlen, reinterpret_cast<const Bytef*>(hex.data()), hex.size()), Z_OK);
    std::string data = std::string("Raw profile type exif") + '\0' + '\0' + std::string(z.begin(), z.begin() + zlen);
    png_im.insert(33, png_chunk("zTXt", data));
  }

  // WebP: the extended (VP8X) container with an EXIF chunk.
  std::string webp;
  {
    const std::string lossless = encode(stored, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101});
    const std::string image_chunk = lossless.substr(12);
    std::string vp8x = "VP8X" + le32s(10);
    vp8x += char(0x08);  // EXIF present
    vp8x += std::string(3, '\0');
    const uint32_t w1 = stored.cols - 1, h1 = stored.rows - 1;
    vp8x += std::string{char(w1 & 0xFF), char((w1 >> 8) & 0xFF), char(w1 >> 16)};
    vp8x += std::string{char(h1 & 0xFF), char((h1 >> 8) & 0xFF), char(h1 >> 16)};
    std::string exif_chunk = "EXIF" + le32s(static_cast<uint32_t>(exif.size())) + exif;
    if (exif.size() & 1) exif_chunk += '\0';
    const std::string body = "WEBP" + vp8x + image_chunk + exif_chunk;
    webp = "RIFF" + le32s(static_cast<uint32_t>(body.size())) + body;
  }

  std::vector<std::pair<std::string, std::string>> files = {
      {"o6.jpg", jpg}, {"o6.png", png}, {"o6_magick.png", png_im}, {"o6.webp", webp}};
  if (have_convert("TIFF")) {
    files.push_back({"o6.tif", magick(stored, "tif", "-orient RightTop")});
    cv::Mat upside_down;
    cv::rotate(upright, upside_down, cv::ROTATE_180);
    files.push_back({"o3.tif", magick(upside_down, "tif", "-orient BottomRight")});
  }
  for (const auto& [name, bytes] : files) {
    auto r = load_image(write_file(name, bytes));
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().to_string();
    EXPECT_EQ(r->size(), upright.size()) << name << " was not turned";
    EXPECT_LT(mean_abs_diff(*r, upright), 6.0) << name << " is not upright";
  }
}

TEST(ImageFaults, EveryExifOrientationValueTurnsUpright) {
  const cv::Mat upright = asymmetric(90, 60);
  // stored(o) is what a camera writes for orientation o.
  auto stored_for = [&](int o) {
    cv::Mat s;
    switch (o) {
      case 2: cv::flip(upright, s, 1); break;
      case 3: cv::rotate(upright, s, cv::ROTATE_180); break;
      case 4: cv::flip(upright, s, 0); break;
      case 5: cv::transpose(upright, s); break;
      case 6: cv::rotate(upright, s, cv::ROTATE_90_COUNTERCLOCKWISE); break;
      case 7: cv::transpose(upright, s); cv::flip(s, s, -1); break;  // transverse: its own inverse
      case 8: cv::rotate(upright, s, cv::ROTATE_90_CLOCKWISE); break;
      default: s = upright.clone();
    }
    return s;
  };
  for (int o = 1; o <= 8; ++o) {
    std::string png = encode(stored_for(o), ".png");
    png.insert(33, png_chunk("eXIf", exif_orientation_block(o, false)));
    auto r = load_image(write_file("o" + std::to_string(o) + ".png", png));
    ASSERT_TRUE(r.ok());
    std::string applied;
    for (int k = 1; k <= 8; ++k)
      if (mean_abs_diff(apply_orientation(stored_for(o), k), *r) == 0.0) applied += " " + std::to_string(k);
    EXPECT_EQ(mean_abs_diff(*r, upright), 0.0) << "orientation " << o << ": the result equals applying" << applied;
  }
}

// ---- Fault 15: truncation and grey fill -----------------------------------------------
TEST(ImageFaults, TruncatedJpegWithAnExifThumbnailIsRefused) {
  cv::Mat big(600, 800, CV_8UC3);
  cv::randu(big, 0, 255);
  std::string jpg = encode(big, ".jpg");
  // An EXIF APP1 carrying a complete thumbnail JPEG (its own SOI..EOI).
  const std::string thumb = encode(asymmetric(32, 24), ".jpg");
  std::string exif = exif_orientation_block(1, true) + thumb;
  const std::string app1 = std::string("\xFF\xE1", 2) + char((exif.size() + 2) >> 8) + char((exif.size() + 2) & 0xFF) + exif;
  jpg.insert(2, app1);
  ASSERT_TRUE(load_image(write_file("thumb_ok.jpg", jpg)).ok());
  for (double keep : {0.3, 0.6, 0.95}) {
    auto r = load_image(write_file("thumb_cut.jpg", jpg.substr(0, static_cast<size_t>(jpg.size() * keep))));
    ASSERT_FALSE(r.ok()) << "kept " << keep;
    EXPECT_EQ(r.status().code(), ErrorCode::kDecode);
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
  }
}

TEST(ImageFaults, JpegWhoseHeaderClaimsMorePixelsThanItsDataIsRefusedNotGreyFilled) {
  std::string j = encode(asymmetric(64, 64), ".jpg");
  const size_t sof = jpeg_sof(j);
  put_be16(j, sof + 5, 6000);
  put_be16(j, sof + 7, 6000);
  auto r = load_image(write_file("claims6000.jpg", j));
  ASSERT_FALSE(r.ok()) << "accepted: the missing data was filled with grey";
  EXPECT_EQ(r.status().code(), ErrorCode::kDecode);
  EXPECT_NE(r.status().message().find("corrupt JPEG data"), std::string::npos) << r.status().message();
}

TEST(ImageFaults, CorruptEntropyDataIsAnError) {
  std::string j = encode(asymmetric(256, 256), ".jpg");
  // Overwrite the middle of the scan with a marker-like run (FF D0..: restart
  // markers out of sequence) as a damaged transfer does.
  for (size_t i = j.size() / 2; i < j.size() / 2 + 40; i += 2) { j[i] = '\xFF'; j[i + 1] = '\xD3'; }
  auto r = load_image(write_file("damaged.jpg", j));
  EXPECT_FALSE(r.ok()) << "damaged entropy data accepted";
}

TEST(ImageFaults, TruncatedFilesOfEveryFormatAreRefused) {
  const cv::Mat m = asymmetric(200, 150);
  std::vector<std::pair<std::string, std::string>> files = {
      {"c.jpg", encode(m, ".jpg")}, {"c.png", encode(m, ".png")}, {"c.bmp", encode(m, ".bmp")},
      {"c.ppm", encode(m, ".ppm")}, {"c.webp", encode(m, ".webp")}, {"c.tif", encode(m, ".tiff")}};
  if (have_convert("GIF")) files.push_back({"c.gif", magick(m, "gif")});
  if (have_convert("HEIC")) files.push_back({"c.heic", magick(m, "heic")});
  for (const auto& [name, bytes] : files) {
    ASSERT_TRUE(load_image(write_file("full_" + name, bytes)).ok()) << name;
    auto r = load_image(write_file("cut_" + name, bytes.substr(0, bytes.size() * 6 / 10)));
    EXPECT_FALSE(r.ok()) << name << " cut to 60% was accepted";
    if (!r.ok()) { EXPECT_EQ(r.status().code(), ErrorCode::kDecode) << name; }
  }
}

// ---- Fault 16: things that are not regular files ----------------------------------------
TEST(ImageFaults, FifoIsRefusedAtOnceNamingItsType) {
  const std::string fifo = dir() + "/pipe.jpg";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = load_image(fifo);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("FIFO"), std::string::npos) << r.status().message();
  EXPECT_LT(s, 0.5);
  auto dev = load_image("/dev/null");
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.status().message().find("character device"), std::string::npos) << dev.status().message();
  const std::string link = dir() + "/dangling.jpg";
  ASSERT_EQ(::symlink((dir() + "/no-such-target.jpg").c_str(), link.c_str()), 0);
  auto broken = load_image(link);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("broken symbolic link"), std::string::npos) << broken.status().message();
}

TEST(ImageFaults, HeaderReaderSurvivesEveryPrefixOfEveryFormat) {
  // Each prefix of a real file: never a crash, never a size from bytes that
  // are not there, and a short one is truncated or unknown, never "ok".
  const cv::Mat m = asymmetric(40, 30);
  for (const char* ext : {".jpg", ".png", ".bmp", ".ppm", ".webp", ".tiff"}) {
    const std::string full = encode(m, ext);
    for (size_t n = 0; n < full.size(); n += std::max<size_t>(1, full.size() / 97)) {
      auto h = read_image_header(full.substr(0, n));
      if (h.ok()) EXPECT_TRUE(h->truncated || h->format == ImageFormat::kUnknown || h->format == ImageFormat::kTiff ||
                              h->width == 0)
          << ext << " prefix " << n << " of " << full.size();
    }
  }
}

}  // namespace
}  // namespace facerec
