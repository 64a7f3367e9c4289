// mapped_file.h — ByteSources for the GGUF reader: a read-only file mapping
// and an owned in-memory buffer.
#pragma once

#include <filesystem>
#include <memory>

#include "base/result.h"
#include "engine/gguf/gguf.h"

namespace cllm::engine {

// MapFile maps `path` read-only (MAP_PRIVATE). Errors: kIo with the OS reason.
GgufResult<std::shared_ptr<const ByteSource>> MapFile(const std::filesystem::path& path);

// OwnedBytes keeps a copy of the bytes it is given.
class OwnedBytes : public ByteSource {
 public:
  explicit OwnedBytes(ByteSpan data) : data_(data.begin(), data.end()) {}
  ByteSpan bytes() const override { return data_; }

 private:
  Bytes data_;
};

}  // namespace cllm::engine
