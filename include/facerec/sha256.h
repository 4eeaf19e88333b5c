// SHA-256 digests as lowercase hex: the one encoder shared by the gallery
// (photo content hashes, the legacy import's duplicate key), the model
// registry (file hashes), the HNSW index file's checksum and the recognizer.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace facerec {

// Two lowercase hex digits per byte, most significant nibble first
// ({0x0f, 0xa5} -> "0fa5").
std::string to_hex(std::span<const unsigned char> bytes);
// The SHA-256 of `bytes` (OpenSSL EVP), as 64 lowercase hex digits.
// (sha256_file in facerec/models.h hashes a file the same way.)
std::string sha256_hex(std::string_view bytes);

}  // namespace facerec
