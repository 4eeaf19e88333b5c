// Identity names: what a name may be, and the one form it is stored in.
//
// A name is stored as given except for Unicode normalisation: every way in
// (enrol, rename, remove, legacy import, the REST API) turns it into NFC
// (Unicode Normalization Form C, via libutf8proc), so "José" typed as
// U+00E9 or as "e" + U+0301 is one person. Case stays significant ("jose"
// and "José" are two people); differ_only_by_case() lets callers warn.
// Galleries written before normalisation may hold NFD names: the gallery
// compares NFC forms on both sides when looking a name up, and returns names
// in NFC (see facerec/gallery.h).
#pragma once

#include <string>

#include "facerec/status.h"

namespace facerec {

// kInvalidArgument for what cannot be a name: empty, over 256 bytes, invalid
// UTF-8, control characters (C0, DEL, C1), invisible characters that make
// look-alike names (bidirectional embeddings/overrides/isolates U+202A-202E,
// U+2066-2069, marks U+200E/U+200F, zero-width U+200B-200D, U+2060, U+FEFF),
// or leading/trailing whitespace. The message names the byte offset.
Status validate_identity_name(const std::string& name);

// The stored form: validate_identity_name(), then NFC (validated again, in
// case composition changed the length).
Result<std::string> normalize_identity_name(const std::string& name);

// NFC of any string; a string that is not valid UTF-8 comes back unchanged
// (validation reports it where it matters).
std::string to_nfc(const std::string& s);

// True when a != b but their NFC case folds (Unicode full case folding) are
// equal, e.g. "Anne" and "anne".
bool differ_only_by_case(const std::string& a, const std::string& b);

// A name fit for a message or a terminal: control characters (< 0x20, 0x7f)
// written as \xNN, and the Unicode bidirectional controls (U+202A..U+202E,
// U+2066..U+2069: they reorder the rest of a terminal line) as \u{NNNN};
// every other byte as is.
std::string printable(const std::string& s);

// printable(s) cut to at most `max_bytes` bytes of s (at a UTF-8 character
// boundary), with "... (N bytes)" appended when cut: for quoting an input in
// an error message, where a 40 MB name must not become a 40 MB message.
std::string printable_clipped(const std::string& s, size_t max_bytes = 80);

}  // namespace facerec
