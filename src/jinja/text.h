// text.h — Python's notion of whitespace over UTF-8 text (str.strip, \s).
#pragma once

#include <cstddef>
#include <string_view>

namespace cllm::jinja {

// SpaceAt: the byte length of the whitespace code point at s[pos], or 0.
size_t SpaceAt(std::string_view s, size_t pos);
// SpaceBefore: the byte length of the whitespace code point ending at s[end), or 0.
size_t SpaceBefore(std::string_view s, size_t end);
// LeadingSpace / TrailingSpace: bytes of whitespace at the start / end.
size_t LeadingSpace(std::string_view s);
size_t TrailingSpace(std::string_view s);

}  // namespace cllm::jinja
