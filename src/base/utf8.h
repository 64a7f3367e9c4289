// utf8.h — UTF-8 validation and decoding of untrusted text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cllm {

// IsValidUtf8 checks well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Utf8SequenceLength returns the length announced by lead byte `c`
// (1–4), or 0 for a continuation or invalid lead byte.
size_t Utf8SequenceLength(uint8_t c);

// EscapeForDisplay returns `s` with every byte a terminal or a JSON encoder
// should not get as is — C0 controls other than newline and tab, DEL, and
// bytes that are not part of valid UTF-8 — written as \xNN. For untrusted
// text (a peer's strings) that ends up in messages.
std::string EscapeForDisplay(std::string_view s);

// DecodeUtf8 appends the code points of `s` to `out`; false (and nothing
// appended) if `s` is not valid UTF-8.
bool DecodeUtf8(std::string_view s, std::vector<uint32_t>* out);

}  // namespace cllm
