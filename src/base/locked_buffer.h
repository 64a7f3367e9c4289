// locked_buffer.h — memory for plaintext secrets too large for SecretBytes
// (decrypted model weights): anonymous pages, locked in RAM where the OS
// allows (no swap), excluded from core dumps, zeroed before release.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm {

class LockedBuffer {
 public:
  // Allocate maps `size` bytes (zero-filled). mlock failing (RLIMIT_MEMLOCK)
  // is not an error — locked() reports it — because refusing to serve would
  // not make the plaintext safer than the TEE's encrypted memory already does.
  static Result<LockedBuffer> Allocate(size_t size);

  LockedBuffer() = default;
  ~LockedBuffer();
  LockedBuffer(LockedBuffer&& other) noexcept;
  LockedBuffer& operator=(LockedBuffer&& other) noexcept;
  LockedBuffer(const LockedBuffer&) = delete;
  LockedBuffer& operator=(const LockedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  ByteSpan span() const { return ByteSpan(data_, size_); }
  std::span<uint8_t> mutable_span() { return std::span<uint8_t>(data_, size_); }
  bool locked() const { return locked_; }
  bool excluded_from_dumps() const { return no_dump_; }

 private:
  void Release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  bool locked_ = false;
  bool no_dump_ = false;
};

}  // namespace cllm
