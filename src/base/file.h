// file.h — whole-file reads and writes with typed errors.
#pragma once

#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secure.h"

namespace cllm {

// ReadFile returns the file's bytes, or kNotFound / kPermission / kIo with the
// path and the OS reason. `max_size` guards against unexpectedly huge inputs.
Result<Bytes> ReadFile(const std::filesystem::path& path, uint64_t max_size = uint64_t{1} << 32);
Result<std::string> ReadTextFile(const std::filesystem::path& path,
                                 uint64_t max_size = uint64_t{1} << 30);
// WriteFileAtomic writes to a temporary file beside `path` and renames it over
// `path`, so readers never see a partial file. `mode` sets the permissions.
Status<> WriteFileAtomic(const std::filesystem::path& path, ByteSpan data, unsigned mode = 0644);

// WriteNewSecretFile creates `path` with mode 0600 and writes `data`; it never
// overwrites (kIo "exists" when the file is there): a key file may already
// protect something.
Status<> WriteNewSecretFile(const std::filesystem::path& path, ByteSpan data);
// ReadHexSecretFile reads a file of exactly `size` bytes written as hex
// (trailing whitespace allowed); kParse names the file otherwise. The text
// read is wiped.
Result<SecretBytes> ReadHexSecretFile(const std::filesystem::path& path, size_t size);

}  // namespace cllm
