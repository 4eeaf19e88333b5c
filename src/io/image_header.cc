// Header readers for every format facerec accepts (and magic numbers for the
// ones it refuses). Each reads sizes and the EXIF orientation with bounds
// checks on every field, and decides whether the file ends before the image.
#include <algorithm>
#include <cstring>
#include <string_view>

#include <zlib.h>

#include "facerec/image.h"

namespace facerec {
namespace {

using Bytes = std::string_view;

uint32_t be16(const unsigned char* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t le16(const unsigned char* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }
uint32_t be32(const unsigned char* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint32_t le32(const unsigned char* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
uint32_t le24(const unsigned char* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16); }

const unsigned char* u8(Bytes b) { return reinterpret_cast<const unsigned char*>(b.data()); }
bool starts(Bytes b, const char* magic, size_t len) { return b.size() >= len && std::memcmp(b.data(), magic, len) == 0; }

Status corrupt(const char* fmt, const std::string& why) {
  return Status(ErrorCode::kDecode, std::string("corrupt ") + fmt + " header: " + why);
}

// A TIFF-structured block (a TIFF file, or an EXIF payload): IFD0's width,
// height and orientation. Offsets are relative to the block's start.
struct TiffFields {
  int64_t width = 0, height = 0;
  int orientation = 1;
  bool ok = false;
};
TiffFields parse_tiff_ifd0(Bytes b) {
  TiffFields t;
  const auto* p = u8(b);
  const size_t n = b.size();
  if (n < 8) return t;
  const bool le = p[0] == 'I' && p[1] == 'I';
  if (!le && !(p[0] == 'M' && p[1] == 'M')) return t;
  auto r16 = [&](size_t at) { return le ? le16(p + at) : be16(p + at); };
  auto r32 = [&](size_t at) { return le ? le32(p + at) : be32(p + at); };
  auto r64 = [&](size_t at) {
    return le ? (uint64_t(r32(at + 4)) << 32) | r32(at) : (uint64_t(r32(at)) << 32) | r32(at + 4);
  };
  const uint32_t version = r16(2);
  const bool big = version == 43;
  if (version != 42 && !big) return t;
  uint64_t ifd = 0;
  size_t entry_size = 12, count_size = 2;
  if (big) {
    if (n < 16 || r16(4) != 8) return t;
    ifd = r64(8);
    entry_size = 20;
    count_size = 8;
  } else {
    ifd = r32(4);
  }
  if (ifd < 8 || ifd > n || n - ifd < count_size) return t;
  const uint64_t count = big ? r64(ifd) : r16(ifd);
  if (count > (n - ifd - count_size) / entry_size) return t;
  for (uint64_t k = 0; k < count; ++k) {
    const size_t e = ifd + count_size + k * entry_size;
    const uint32_t tag = r16(e), type = r16(e + 2);
    // Only SHORT (3), LONG (4) and BigTIFF's LONG8 (16) inline values matter here.
    uint64_t value = 0;
    if (type == 3) value = r16(e + (big ? 12 : 8));
    else if (type == 4) value = r32(e + (big ? 12 : 8));
    else if (type == 16 && big) value = r64(e + 12);
    else continue;
    if (tag == 256) t.width = static_cast<int64_t>(value > (1ull << 40) ? (1ull << 40) : value);
    else if (tag == 257) t.height = static_cast<int64_t>(value > (1ull << 40) ? (1ull << 40) : value);
    else if (tag == 274 && value >= 1 && value <= 8) t.orientation = static_cast<int>(value);
  }
  t.ok = true;
  return t;
}

// An EXIF block: optionally prefixed with "Exif\0\0", then TIFF-structured.
int exif_orientation(Bytes b) {
  if (starts(b, "Exif\0\0", 6)) b.remove_prefix(6);
  TiffFields t = parse_tiff_ifd0(b);
  return t.ok ? t.orientation : 1;
}

// ---- JPEG ----------------------------------------------------------------------
// Walks the marker segments by their lengths (so APPn payloads, and an EXIF
// thumbnail with its own SOI..EOI inside APP1, are skipped whole) and the
// entropy-coded data after each SOS; the image is complete only when its own
// EOI follows its last scan.
Result<ImageHeader> jpeg_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kJpeg;
  const auto* p = u8(b);
  const size_t n = b.size();
  size_t i = 2;
  bool sof = false, complete = false, exif_seen = false;
  while (i + 1 < n) {
    if (p[i] != 0xFF) {  // stray bytes between segments: libjpeg skips them too
      const void* ff = std::memchr(p + i, 0xFF, n - i);
      if (!ff) break;
      i = static_cast<const unsigned char*>(ff) - p;
      continue;
    }
    const unsigned m = p[i + 1];
    if (m == 0xFF) { ++i; continue; }  // fill byte
    if (m == 0xD9) { complete = true; break; }
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
    if (i + 4 > n) break;
    const uint32_t len = be16(p + i + 2);
    if (len < 2) return corrupt("JPEG", "segment length below 2");
    if (i + 2 + len > n) break;  // the file ends inside a segment
    const Bytes seg(b.data() + i + 4, len - 2);
    const bool is_sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (is_sof && !sof) {
      if (seg.size() < 6) return corrupt("JPEG", "short SOF segment");
      h.height = be16(u8(seg) + 1);
      h.width = be16(u8(seg) + 3);
      sof = true;
    } else if (m == 0xE1 && !exif_seen && starts(seg, "Exif\0\0", 6)) {
      h.orientation = exif_orientation(seg);
      exif_seen = true;
    }
    i += 2 + len;
    if (m == 0xDA) {
      if (!sof) return corrupt("JPEG", "scan before any frame header");
      // Entropy-coded data: runs to the next marker that is not a stuffed
      // 0xFF00 or a restart marker.
      while (i + 1 < n) {
        const void* ff = std::memchr(p + i, 0xFF, n - i - 1);
        if (!ff) { i = n; break; }
        i = static_cast<const unsigned char*>(ff) - p;
        const unsigned next = p[i + 1];
        if (next == 0x00 || (next >= 0xD0 && next <= 0xD7) || next == 0xFF) { i += (next == 0xFF ? 1 : 2); continue; }
        break;
      }
    }
  }
  if (!sof) {
    if (!complete) { h.truncated = true; return h; }
    return corrupt("JPEG", "no frame header (SOF)");
  }
  h.truncated = !complete;
  return h;
}

// ---- PNG -----------------------------------------------------------------------
// ImageMagick stores EXIF in PNG as a text chunk "Raw profile type exif":
// "\nexif\n   <length>\n<hex digits, wrapped>".
int raw_profile_orientation(const std::string& text) {
  size_t at = 0;
  int newlines = 0;
  while (at < text.size() && newlines < 3) if (text[at++] == '\n') ++newlines;
  std::string bin;
  int hi = -1;
  for (; at < text.size() && bin.size() < 65536; ++at) {
    const char c = text[at];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) continue;
    if (hi < 0) hi = v;
    else { bin.push_back(static_cast<char>(hi * 16 + v)); hi = -1; }
  }
  return exif_orientation(bin);
}

std::string inflate_limited(Bytes in, size_t limit) {
  std::string out;
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return out;
  z.next_in = const_cast<Bytef*>(u8(in));
  z.avail_in = static_cast<uInt>(in.size());
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK && out.size() < limit) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (z.avail_out == sizeof buf && rc == Z_OK) break;  // no progress
  }
  inflateEnd(&z);
  return out;
}

Result<ImageHeader> png_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kPng;
  const auto* p = u8(b);
  const size_t n = b.size();
  if (n < 33 || std::memcmp(p + 12, "IHDR", 4) != 0) {
    if (n < 33) { h.truncated = true; return h; }
    return corrupt("PNG", "first chunk is not IHDR");
  }
  h.width = be32(p + 16);
  h.height = be32(p + 20);
  if (h.width > 0x7FFFFFFF || h.height > 0x7FFFFFFF) return corrupt("PNG", "size over 2^31 - 1");
  size_t i = 8;
  bool end = false, exif = false;
  while (i + 12 <= n) {
    const uint32_t len = be32(p + i);
    if (len > 0x7FFFFFFFu) return corrupt("PNG", "chunk length over 2^31");
    if (n - i - 12 < len) break;  // the file ends inside a chunk
    const Bytes type(b.data() + i + 4, 4), data(b.data() + i + 8, len);
    if (type == "IEND") { end = true; break; }
    if (!exif && type == "eXIf") { h.orientation = exif_orientation(data); exif = true; }
    if (!exif && (type == "tEXt" || type == "zTXt")) {
      const size_t nul = data.find('\0');
      if (nul != Bytes::npos && data.substr(0, nul) == "Raw profile type exif") {
        std::string text = type == "tEXt" ? std::string(data.substr(nul + 1))
                                          : (data.size() > nul + 2 ? inflate_limited(data.substr(nul + 2), 1 << 20) : "");
        h.orientation = raw_profile_orientation(text);
        exif = true;
      }
    }
    i += 12 + len;
  }
  h.truncated = !end;
  return h;
}

// ---- BMP -----------------------------------------------------------------------
Result<ImageHeader> bmp_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kBmp;
  const auto* p = u8(b);
  const size_t n = b.size();
  if (n < 26) { h.truncated = true; return h; }
  const uint32_t dib = le32(p + 14);
  int64_t bpp = 0;
  uint32_t compression = 0;
  if (dib == 12) {
    h.width = le16(p + 18);
    h.height = le16(p + 20);
    if (n >= 26) bpp = le16(p + 24);
  } else if (dib >= 40) {
    if (n < 34) { h.truncated = true; return h; }
    h.width = static_cast<int32_t>(le32(p + 18));
    const int32_t hh = static_cast<int32_t>(le32(p + 22));
    h.height = hh < 0 ? -int64_t(hh) : hh;
    bpp = le16(p + 28);
    compression = le32(p + 30);
  } else {
    return corrupt("BMP", "unknown info header size " + std::to_string(dib));
  }
  if (h.width < 0) return corrupt("BMP", "negative width");
  if (h.width == 0 || h.height == 0) return h;
  if (compression == 0 && bpp > 0 && bpp <= 32 && h.width < (1 << 24) && h.height < (1 << 24)) {
    const int64_t row = ((h.width * bpp + 31) / 32) * 4;
    h.truncated = static_cast<int64_t>(le32(p + 10)) + row * h.height > static_cast<int64_t>(n);
  }
  return h;
}

// ---- PNM (P1..P7) ----------------------------------------------------------------
Result<ImageHeader> pnm_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kPnm;
  const char kind = b[1];
  size_t i = 2;
  auto skip_space = [&] {
    while (i < b.size()) {
      if (b[i] == '#') { while (i < b.size() && b[i] != '\n') ++i; }
      else if (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') ++i;
      else break;
    }
  };
  auto number = [&](int64_t& v) {
    skip_space();
    if (i >= b.size() || b[i] < '0' || b[i] > '9') return false;
    v = 0;
    while (i < b.size() && b[i] >= '0' && b[i] <= '9') { v = std::min<int64_t>(v * 10 + (b[i] - '0'), int64_t(1) << 40); ++i; }
    return true;
  };
  int64_t maxval = 1, depth = 1;
  if (kind == '7') {
    // PAM: "WIDTH w", "HEIGHT h", "DEPTH d", "MAXVAL m", ..., "ENDHDR".
    while (i < b.size()) {
      skip_space();
      size_t e = i;
      while (e < b.size() && b[e] != ' ' && b[e] != '\t' && b[e] != '\n' && b[e] != '\r') ++e;
      const Bytes key = b.substr(i, e - i);
      i = e;
      if (key == "ENDHDR") { while (i < b.size() && b[i] != '\n') ++i; ++i; break; }
      if (key.empty()) break;
      if (key == "WIDTH") number(h.width);
      else if (key == "HEIGHT") number(h.height);
      else if (key == "DEPTH") number(depth);
      else if (key == "MAXVAL") number(maxval);
      else { while (i < b.size() && b[i] != '\n') ++i; }
    }
    if (i > b.size()) { h.truncated = true; return h; }
  } else {
    if (!number(h.width) || !number(h.height)) { h.truncated = i >= b.size(); if (h.truncated) return h; return corrupt("PNM", "no size"); }
    if (kind != '1' && kind != '4' && !number(maxval)) { h.truncated = true; return h; }
    ++i;  // the single whitespace before the raster
    depth = (kind == '3' || kind == '6') ? 3 : 1;
  }
  if (h.width <= 0 || h.height <= 0 || maxval <= 0 || depth <= 0) return h;
  if (h.width >= (1 << 24) || h.height >= (1 << 24) || depth >= (1 << 16)) return h;  // the pixel limit refuses it
  int64_t need = -1;
  const int64_t bytes_per_sample = maxval > 255 ? 2 : 1;
  if (kind == '4') need = ((h.width + 7) / 8) * h.height;
  else if (kind == '5' || kind == '6' || kind == '7') need = h.width * h.height * depth * bytes_per_sample;
  if (need >= 0) h.truncated = static_cast<int64_t>(i) + need > static_cast<int64_t>(b.size());
  return h;
}

// ---- WebP ------------------------------------------------------------------------
Result<ImageHeader> webp_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kWebp;
  const auto* p = u8(b);
  const size_t n = b.size();
  h.truncated = static_cast<uint64_t>(le32(p + 4)) + 8 > n;
  size_t i = 12;
  bool size_known = false, exif = false;
  while (i + 8 <= n) {
    const Bytes type(b.data() + i, 4);
    const uint32_t len = le32(p + i + 4);
    const size_t avail = n - i - 8;
    const Bytes data(b.data() + i + 8, std::min<size_t>(len, avail));
    const unsigned char* d = u8(data);
    if (!size_known && type == "VP8X" && data.size() >= 10) {
      h.width = int64_t(le24(d + 4)) + 1;
      h.height = int64_t(le24(d + 7)) + 1;
      size_known = true;
    } else if (!size_known && type == "VP8 " && data.size() >= 10) {
      if (!(d[3] == 0x9d && d[4] == 0x01 && d[5] == 0x2a)) return corrupt("WebP", "bad VP8 start code");
      h.width = le16(d + 6) & 0x3FFF;
      h.height = le16(d + 8) & 0x3FFF;
      size_known = true;
    } else if (!size_known && type == "VP8L" && data.size() >= 5) {
      if (d[0] != 0x2f) return corrupt("WebP", "bad VP8L signature");
      const uint32_t bits = le32(d + 1);
      h.width = int64_t(bits & 0x3FFF) + 1;
      h.height = int64_t((bits >> 14) & 0x3FFF) + 1;
      size_known = true;
    } else if (!exif && type == "EXIF") {
      h.orientation = exif_orientation(data);
      exif = true;
    }
    if (len > avail) { h.truncated = true; break; }
    i += 8 + len + (len & 1);
  }
  if (!size_known) {
    if (h.truncated) return h;
    return corrupt("WebP", "no VP8/VP8L/VP8X chunk");
  }
  return h;
}

// ---- TIFF ------------------------------------------------------------------------
Result<ImageHeader> tiff_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kTiff;
  TiffFields t = parse_tiff_ifd0(b);
  if (!t.ok) return corrupt("TIFF", "first directory (IFD0) missing or outside the file");
  h.width = t.width;
  h.height = t.height;
  h.orientation = t.orientation;
  return h;
}

// ---- GIF -------------------------------------------------------------------------
Result<ImageHeader> gif_header(Bytes b) {
  ImageHeader h;
  h.format = ImageFormat::kGif;
  const auto* p = u8(b);
  h.width = le16(p + 6);
  h.height = le16(p + 8);
  h.truncated = b.size() < 14;
  return h;
}

// ---- HEIF / AVIF (ISO BMFF "ftyp") ---------------------------------------------------
// The size lives in the 'ispe' property; libheif reads it (decoders.cc) before
// decoding. Here only the brand decides the format.
Result<ImageHeader> heif_header(Bytes b) {
  ImageHeader h;
  const auto* p = u8(b);
  const uint32_t box = be32(p);
  const size_t end = std::min<size_t>(b.size(), box >= 16 ? box : 16);
  bool avif = false, heif = false;
  auto brand = [&](Bytes x) {
    if (x == "avif" || x == "avis") avif = true;
    else if (x == "heic" || x == "heix" || x == "hevc" || x == "hevx" || x == "heim" || x == "heis" || x == "mif1" ||
             x == "msf1")
      heif = true;
  };
  brand(b.substr(8, 4));
  for (size_t i = 16; i + 4 <= end; i += 4) brand(b.substr(i, 4));
  h.format = avif && !(b.substr(8, 4) == "heic") ? ImageFormat::kAvif : heif ? ImageFormat::kHeif : ImageFormat::kUnknown;
  return h;
}

}  // namespace

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kTiff: return "TIFF";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kPnm: return "PBM/PGM/PPM/PAM";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kHeif: return "HEIC/HEIF";
    case ImageFormat::kAvif: return "AVIF";
    case ImageFormat::kJpeg2000: return "JPEG 2000";
    case ImageFormat::kOpenExr: return "OpenEXR";
    case ImageFormat::kRadianceHdr: return "Radiance HDR";
    case ImageFormat::kPfm: return "PFM";
    case ImageFormat::kSunRaster: return "Sun raster";
    case ImageFormat::kPsd: return "Photoshop PSD";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

bool is_supported(ImageFormat f) {
  return f == ImageFormat::kJpeg || f == ImageFormat::kPng || f == ImageFormat::kBmp || f == ImageFormat::kTiff ||
         f == ImageFormat::kWebp || f == ImageFormat::kPnm || f == ImageFormat::kGif || f == ImageFormat::kHeif ||
         f == ImageFormat::kAvif;
}

std::string supported_image_formats() {
  return "JPEG, PNG, BMP, TIFF, WebP, PBM/PGM/PPM/PAM, GIF, HEIC/HEIF, AVIF";
}

Result<ImageHeader> read_image_header(const std::string& bytes) {
  const Bytes b(bytes);
  const auto* p = u8(b);
  const size_t n = b.size();
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return jpeg_header(b);
  if (starts(b, "\x89PNG\r\n\x1a\n", 8)) return png_header(b);
  if (starts(b, "BM", 2) && n >= 18) return bmp_header(b);
  if (starts(b, "II*\0", 4) || starts(b, "MM\0*", 4) || starts(b, "II+\0", 4) || starts(b, "MM\0+", 4)) return tiff_header(b);
  if (n >= 16 && starts(b, "RIFF", 4) && b.substr(8, 4) == "WEBP") return webp_header(b);
  if (n >= 10 && (starts(b, "GIF87a", 6) || starts(b, "GIF89a", 6))) return gif_header(b);
  if (n >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7' &&
      (p[2] == ' ' || p[2] == '\n' || p[2] == '\r' || p[2] == '\t'))
    return pnm_header(b);
  ImageHeader h;
  if (n >= 16 && b.substr(4, 4) == "ftyp") {
    auto r = heif_header(b);
    if (r.ok() && r->format != ImageFormat::kUnknown) return r;
    if (b.substr(8, 4) == "jp2 ") h.format = ImageFormat::kJpeg2000;
    return h;
  }
  if (starts(b, "\0\0\0\x0cjP  \r\n\x87\n", 12) || starts(b, "\xFF\x4F\xFF\x51", 4)) h.format = ImageFormat::kJpeg2000;
  else if (starts(b, "\x76\x2f\x31\x01", 4)) h.format = ImageFormat::kOpenExr;
  else if (starts(b, "#?RADIANCE", 10) || starts(b, "#?RGBE", 6)) h.format = ImageFormat::kRadianceHdr;
  else if (starts(b, "PF\n", 3) || starts(b, "Pf\n", 3) || starts(b, "PF\r", 3) || starts(b, "Pf\r", 3)) h.format = ImageFormat::kPfm;
  else if (starts(b, "\x59\xa6\x6a\x95", 4)) h.format = ImageFormat::kSunRaster;
  else if (starts(b, "8BPS", 4)) h.format = ImageFormat::kPsd;
  return h;
}

}  // namespace facerec
