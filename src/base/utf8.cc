#include "base/utf8.h"

namespace cllm {

size_t Utf8SequenceLength(uint8_t c) {
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return 2;
  if (c >= 0xe0 && c <= 0xef) return 3;
  if (c >= 0xf0 && c <= 0xf4) return 4;
  return 0;
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    uint8_t c = p[i];
    size_t len = Utf8SequenceLength(c);
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
    }
    // Second-byte ranges exclude overlongs (E0, F0), surrogates (ED) and
    // code points above U+10FFFF (F4).
    if (len >= 3) {
      uint8_t c1 = p[i + 1];
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
          (c == 0xf4 && c1 > 0x8f)) {
        return false;
      }
    }
    i += len;
  }
  return true;
}

bool DecodeUtf8(std::string_view s, std::vector<uint32_t>* out) {
  if (!IsValidUtf8(s)) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t len = Utf8SequenceLength(p[i]);
    uint32_t cp = len == 1 ? p[i] : p[i] & (0x7Fu >> len);
    for (size_t k = 1; k < len; ++k) cp = cp << 6 | (p[i + k] & 0x3Fu);
    out->push_back(cp);
    i += len;
  }
  return true;
}

std::string EscapeForDisplay(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto escape = [&](uint8_t c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
        escape(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(c);
    if (n > 0 && i + n <= s.size() && IsValidUtf8(s.substr(i, n))) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      escape(c);
      ++i;
    }
  }
  return out;
}

}  // namespace cllm
