// random.h — cryptographically secure random bytes (OpenSSL DRBG).
#pragma once

#include <span>

#include "base/bytes.h"

namespace cllm::crypto {

// RandomBytes fills `out` (aborts only if the system RNG is broken, which is
// not an input-dependent condition).
void RandomBytes(std::span<uint8_t> out);
Bytes RandomBytes(size_t n);

}  // namespace cllm::crypto
