// sealed_model.h — models encrypted at rest ("sealed"), decrypted only into
// locked memory inside the TEE.
//
// A sealed file is an authenticated header followed by AES-256-GCM chunks:
//
//   header   magic "CLLMSEAL", version, chunk size, plaintext size and SHA-256,
//            a random file id, key id, model name          (docs/sealed-models.md)
//   chunk i  ciphertext ‖ tag,  nonce = 0u32 ‖ u64be(i),
//            AAD = "cllm-chunk" ‖ SHA-256(header) ‖ u64be(i) ‖ u8(is_last)
//
// under a per-file key HKDF-SHA256(model key, salt = file id,
// info = "cllm-sealed-model-v1" ‖ SHA-256(header)). Changing any header byte
// changes the key and every AAD; chunks cannot be reordered (index), dropped
// at the end (is_last, sizes) or moved between files (header digest, file id);
// the plaintext SHA-256 is checked after decryption before anything uses it.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <string>

#include "base/bytes.h"
#include "base/locked_buffer.h"
#include "base/result.h"

namespace cllm::crypto {

enum class SealErrc {
  kIo = 1,             // cannot read or write a file
  kInvalidArgument,    // bad key size, chunk size, key id or name
  kMalformed,          // not a sealed file, or a header field out of range
  kUnsupportedVersion,
  kTruncated,          // the file is shorter or longer than its header says
  kAuthFailed,         // a chunk failed authentication: wrong key, or the file was altered
  kDigestMismatch,     // decrypted bytes do not hash to the header's plaintext digest
};
const char* SealErrcName(SealErrc code);

template <typename T>
using SealResult = Result<T, SealErrc>;
using SealStatus = Status<SealErrc>;

inline constexpr uint32_t kDefaultChunkSize = 4u << 20;
inline constexpr uint32_t kMinChunkSize = 4u << 10;
inline constexpr uint32_t kMaxChunkSize = 64u << 20;

struct SealedHeader {
  uint16_t version = 1;
  uint32_t chunk_size = kDefaultChunkSize;
  uint64_t plaintext_size = 0;
  std::array<uint8_t, 32> plaintext_digest{};
  std::array<uint8_t, 16> file_id{};
  std::string key_id;      // 1–64 printable ASCII characters
  std::string model_name;  // ≤ 256 bytes
  // Derived by ParseSealedHeader / SealFile:
  size_t header_size = 0;
  std::array<uint8_t, 32> header_digest{};
  uint64_t num_chunks() const;
  // SealedSize is the exact size of the whole file (0 on overflow).
  uint64_t SealedSize() const;
};

// Progress callback: bytes processed so far, total bytes.
using SealProgress = std::function<void(uint64_t done, uint64_t total)>;

struct SealOptions {
  std::string key_id;
  std::string model_name;
  uint32_t chunk_size = kDefaultChunkSize;
  SealProgress progress;
};

// SealFile encrypts `in` into `out` (written atomically) with the 32-byte
// model `key`, streaming chunk by chunk. Returns the header written.
SealResult<SealedHeader> SealFile(const std::filesystem::path& in, const std::filesystem::path& out,
                                  ByteSpan key, const SealOptions& options);

// ParseSealedHeader reads the header at the start of `data` (untrusted).
SealResult<SealedHeader> ParseSealedHeader(ByteSpan data);

// UnsealFile decrypts `in` into locked memory, streaming; nothing plaintext
// is ever written to disk. The result is returned only after every chunk
// authenticated and the plaintext digest matched; otherwise the buffer is
// wiped. With `expect_plaintext_digest`, a header naming another plaintext
// digest (the file was swapped since its header was inspected and attested)
// is kDigestMismatch before anything is decrypted.
SealResult<LockedBuffer> UnsealFile(const std::filesystem::path& in, ByteSpan key,
                                    const SealProgress& progress = nullptr,
                                    const std::array<uint8_t, 32>* expect_plaintext_digest = nullptr);
// Unseal is UnsealFile over bytes already in memory.
SealResult<LockedBuffer> Unseal(ByteSpan sealed, ByteSpan key);

}  // namespace cllm::crypto
