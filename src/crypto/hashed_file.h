// hashed_file.h — reading a file once into locked memory and hashing the
// bytes that landed there, so a digest names exactly the bytes a caller goes
// on to use (the plain-GGUF model digest cllm-server attests).
//
// Hashing a path and then opening or mapping it again leaves a window: a host
// that controls the disk can serve other bytes the second time, or when an
// evicted page of a mapping is read back. Here the file is read once, into
// anonymous memory that is never backed by the file, and the hash is taken
// over that memory, not over what the file says now.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>

#include "base/locked_buffer.h"
#include "base/result.h"

namespace cllm::crypto {

struct HashedFile {
  LockedBuffer bytes;               // the file as read: locked where the OS allows, not in core dumps
  std::array<uint8_t, 32> sha256{};  // SHA-256 of exactly `bytes`
};

// ReadProgress is called after each piece with the bytes read so far.
using ReadProgress = std::function<void(uint64_t done, uint64_t total)>;

// ReadFileHashed reads the regular file `path` once into a LockedBuffer of
// its size at open time, hashing each piece after it is in memory. Errors:
// kNotFound / kIo with the path and the OS reason; kIo when the file ends
// before that size (it shrank while being read). Bytes appended after the
// open are not read; bytes changed during the read are served and hashed
// alike, so the digest always describes the buffer.
Result<HashedFile> ReadFileHashed(const std::filesystem::path& path, const ReadProgress& progress = nullptr);

}  // namespace cllm::crypto
