// random.h — cryptographically secure random bytes (OpenSSL DRBG), and a
// deterministic keystream for reproducible tests and evaluation runs.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "base/bytes.h"

namespace cllm::crypto {

// RandomBytes fills `out` (aborts only if the system RNG is broken, which is
// not an input-dependent condition).
void RandomBytes(std::span<uint8_t> out);
Bytes RandomBytes(size_t n);

// SeededStream is the AES-256-CTR keystream of a 32-byte seed (key = seed,
// initial counter block all zero, 128-bit big-endian counter as in NIST SP
// 800-38A), i.e. AES-256-CTR encryption of zero bytes. The same seed gives
// the same bytes on every machine, which is what statistical tests and a
// rerunnable evaluation need. It is unpredictable only while the seed is
// secret: never use it where production randomness belongs (use RandomBytes).
// AES-CTR rather than ChaCha20: the 128-bit counter of OpenSSL's CTR mode never
// wraps in practice, and AES is available under every OpenSSL provider.
class SeededStream {
 public:
  explicit SeededStream(const std::array<uint8_t, 32>& seed);
  ~SeededStream();
  SeededStream(SeededStream&&) noexcept;
  SeededStream& operator=(SeededStream&&) noexcept;
  SeededStream(const SeededStream&) = delete;
  SeededStream& operator=(const SeededStream&) = delete;

  // Fill writes the next out.size() keystream bytes into `out`.
  void Fill(std::span<uint8_t> out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllm::crypto
