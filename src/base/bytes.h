// bytes.h — byte containers and overflow-checked size arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace cllm {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsChars(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// CheckedAdd / CheckedMul store a+b (a*b) in *out and return true, or return
// false (leaving *out unspecified) when the result does not fit in uint64_t.
// Every size computed from untrusted input goes through these.
[[nodiscard]] inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
[[nodiscard]] inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// ConstantTimeEqual compares two byte strings without an early exit on the
// first difference (lengths are not secret).
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

}  // namespace cllm
