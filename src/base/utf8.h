// utf8.h — UTF-8 validation and decoding of untrusted text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace cllm {

// IsValidUtf8 checks well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Utf8SequenceLength returns the length announced by lead byte `c`
// (1–4), or 0 for a continuation or invalid lead byte.
size_t Utf8SequenceLength(uint8_t c);

// DecodeUtf8 appends the code points of `s` to `out`; false (and nothing
// appended) if `s` is not valid UTF-8.
bool DecodeUtf8(std::string_view s, std::vector<uint32_t>* out);

}  // namespace cllm
