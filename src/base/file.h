// file.h — whole-file reads and writes with typed errors.
#pragma once

#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm {

// ReadFile returns the file's bytes, or kNotFound / kPermission / kIo with the
// path and the OS reason. `max_size` guards against unexpectedly huge inputs.
Result<Bytes> ReadFile(const std::filesystem::path& path, uint64_t max_size = uint64_t{1} << 32);
Result<std::string> ReadTextFile(const std::filesystem::path& path,
                                 uint64_t max_size = uint64_t{1} << 30);
// WriteFileAtomic writes to a temporary file beside `path` and renames it over
// `path`, so readers never see a partial file. `mode` sets the permissions.
Status<> WriteFileAtomic(const std::filesystem::path& path, ByteSpan data, unsigned mode = 0644);

}  // namespace cllm
