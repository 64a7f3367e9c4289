// secure.h — handling of secret bytes (keys, plaintext model weights).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"

namespace cllm {

// SecureZero overwrites `len` bytes at `p` with zeros in a way the compiler
// may not elide.
void SecureZero(void* p, size_t len);

// SecretBytes owns a buffer that is zeroed before its memory is released
// (destruction, reassignment, clear). Copying is explicit (Clone) so secrets
// are not duplicated by accident.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : data_(n) {}
  explicit SecretBytes(ByteSpan src) : data_(src.begin(), src.end()) {}
  ~SecretBytes() { clear(); }
  SecretBytes(SecretBytes&& other) noexcept : data_(std::move(other.data_)) {}
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      clear();
      data_ = std::move(other.data_);
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const { return SecretBytes(span()); }
  uint8_t* data() { return data_.data(); }
  const uint8_t* data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  ByteSpan span() const { return ByteSpan(data_.data(), data_.size()); }
  std::span<uint8_t> mutable_span() { return std::span<uint8_t>(data_.data(), data_.size()); }
  void clear() {
    SecureZero(data_.data(), data_.size());
    data_.clear();
  }

 private:
  std::vector<uint8_t> data_;
};

}  // namespace cllm
