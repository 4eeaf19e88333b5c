// Identity names (see facerec/names.h): validation, NFC, case comparison.
#include "facerec/names.h"

#include <utf8proc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace facerec {
namespace {

constexpr int kMaxNameBytes = 256;

// Decodes one UTF-8 code point at s[i]; advances i. Returns -1 on anything
// that is not well-formed UTF-8 (overlongs, surrogates, > U+10FFFF, truncation).
int32_t next_code_point(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  int len;
  int32_t cp;
  if (c < 0x80) { ++i; return c; }
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
  else return -1;
  if (i + len > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    unsigned char cc = b(i + k);
    if ((cc & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return -1;
  i += len;
  return cp;
}

// Unicode White_Space code points (the ASCII ones other than space are
// control characters and rejected anyway).
bool is_unicode_space(int32_t cp) {
  return cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Characters that draw nothing (or reorder what follows) and so let two
// different byte strings look like the same name, or one name look like
// another: after U+202E (right-to-left override) the rest of the name is
// drawn reversed.
const char* invisible_kind(int32_t cp) {
  if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069)) return "a bidirectional override";
  if (cp == 0x200E || cp == 0x200F) return "a bidirectional mark";
  if ((cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF) return "a zero-width character";
  return nullptr;
}

std::string hex_cp(int32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

// utf8proc_map with the given options; nullopt-like empty + false on failure.
bool map_utf8(const std::string& s, int options, std::string& out) {
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                    static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> hold(dst, &std::free);
  if (n < 0 || !dst) return false;
  out.assign(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  return true;
}

}  // namespace

Status validate_identity_name(const std::string& name) {
  if (name.empty()) return Status(ErrorCode::kInvalidArgument, "identity name is empty");
  if (name.size() > static_cast<size_t>(kMaxNameBytes))
    return Status(ErrorCode::kInvalidArgument, "identity name is " + std::to_string(name.size()) +
                                                   " bytes; the limit is " + std::to_string(kMaxNameBytes));
  size_t i = 0;
  int32_t first = -1, last = -1;
  while (i < name.size()) {
    size_t at = i;
    int32_t cp = next_code_point(name, i);
    if (cp < 0)
      return Status(ErrorCode::kInvalidArgument,
                    "identity name is not valid UTF-8 (byte " + std::to_string(at) + ")");
    // C0, DEL and C1 controls: invisible, and some (ESC, CSI) drive terminals.
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
      return Status(ErrorCode::kInvalidArgument,
                    "identity name contains a control character (byte " + std::to_string(at) + ")");
    if (const char* kind = invisible_kind(cp))
      return Status(ErrorCode::kInvalidArgument, "identity name contains " + std::string(kind) + " (" + hex_cp(cp) +
                                                     " at byte " + std::to_string(at) +
                                                     "), which makes look-alike names; remove it");
    if (first < 0) first = cp;
    last = cp;
  }
  if (is_unicode_space(first) || is_unicode_space(last))
    return Status(ErrorCode::kInvalidArgument, "identity name has leading or trailing whitespace");
  return Status::Ok();
}

std::string to_nfc(const std::string& s) {
  std::string out;
  if (!map_utf8(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE, out)) return s;
  return out;
}

Result<std::string> normalize_identity_name(const std::string& name) {
  FACEREC_RETURN_IF_ERROR(validate_identity_name(name));
  std::string nfc = to_nfc(name);
  if (nfc != name) FACEREC_RETURN_IF_ERROR(validate_identity_name(nfc));
  return nfc;
}

bool differ_only_by_case(const std::string& a, const std::string& b) {
  if (a == b) return false;
  std::string fa, fb;
  const int opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD;
  if (!map_utf8(a, opt, fa) || !map_utf8(b, opt, fb)) return false;
  return fa == fb && to_nfc(a) != to_nfc(b);
}

std::string printable(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      continue;
    }
    // U+202A..U+202E and U+2066..U+2069 are E2 80 AA..AE and E2 81 A6..A9.
    if (c == 0xE2 && i + 2 < s.size()) {
      const auto b1 = static_cast<unsigned char>(s[i + 1]), b2 = static_cast<unsigned char>(s[i + 2]);
      if ((b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE) || (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9)) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "\\u{%04X}", 0x2000u + ((b1 & 0x3Fu) << 6) + (b2 & 0x3Fu));
        out += buf;
        i += 2;
        continue;
      }
    }
    out += static_cast<char>(c);
  }
  return out;
}

std::string printable_clipped(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return printable(s);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return printable(s.substr(0, cut)) + "... (" + std::to_string(s.size()) + " bytes)";
}

}  // namespace facerec
