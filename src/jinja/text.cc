#include "jinja/text.h"

namespace cllm::jinja {
namespace {

// IsSpace: Python's str.isspace() for one code point.
bool IsSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
         c == 0x3000;
}

// Decode reads the (valid) UTF-8 code point at s[pos]; 0 length if invalid.
size_t Decode(std::string_view s, size_t pos, char32_t* out) {
  unsigned char c = static_cast<unsigned char>(s[pos]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || pos + n > s.size()) return 0;
  char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[pos + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  *out = cp;
  return n;
}

}  // namespace

size_t SpaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  char32_t cp = 0;
  size_t n = Decode(s, pos, &cp);
  return n != 0 && IsSpace(cp) ? n : 0;
}

size_t SpaceBefore(std::string_view s, size_t end) {
  // A code point is at most 4 bytes: try each start.
  for (size_t n = 1; n <= 4 && n <= end; ++n) {
    char32_t cp = 0;
    if (Decode(s, end - n, &cp) == n) return IsSpace(cp) ? n : 0;
  }
  return 0;
}

size_t LeadingSpace(std::string_view s) {
  size_t pos = 0;
  for (size_t n; (n = SpaceAt(s, pos)) != 0;) pos += n;
  return pos;
}

size_t TrailingSpace(std::string_view s) {
  size_t end = s.size();
  for (size_t n; (n = SpaceBefore(s, end)) != 0;) end -= n;
  return s.size() - end;
}

}  // namespace cllm::jinja
