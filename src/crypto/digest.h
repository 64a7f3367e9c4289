// digest.h — SHA-2 and SM3 hashing (OpenSSL EVP underneath).
#pragma once

#include <array>
#include <filesystem>
#include <memory>

#include "base/bytes.h"
#include "crypto/error.h"

namespace cllm::crypto {

enum class HashAlg { kSha256, kSha384, kSha512, kSm3 };

// DigestSize returns the output length of `alg` in bytes.
size_t DigestSize(HashAlg alg);
const char* HashAlgName(HashAlg alg);

// Digest hashes `data` in one call.
Bytes Digest(HashAlg alg, ByteSpan data);
std::array<uint8_t, 32> Sha256(ByteSpan data);
std::array<uint8_t, 48> Sha384(ByteSpan data);
std::array<uint8_t, 64> Sha512(ByteSpan data);
std::array<uint8_t, 32> Sm3(ByteSpan data);

// Sha256File hashes a file in 1 MiB pieces (model and binary digests);
// kInvalidArgument with the OS reason when it cannot be read.
CryptoResult<std::array<uint8_t, 32>> Sha256File(const std::filesystem::path& path);

// Hasher hashes data fed in pieces (large model files, streamed input).
class Hasher {
 public:
  explicit Hasher(HashAlg alg);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(ByteSpan data);
  // Finish returns the digest; the Hasher is reset for reuse afterwards.
  Bytes Finish();
  HashAlg alg() const { return alg_; }

 private:
  struct Impl;
  HashAlg alg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cllm::crypto
