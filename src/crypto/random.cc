#include "crypto/random.h"

#include <openssl/rand.h>

#include "base/check.h"

namespace cllm::crypto {

void RandomBytes(std::span<uint8_t> out) {
  if (out.empty()) return;
  // A failing system RNG is not recoverable and not input-dependent.
  CLLM_CHECK_MSG(RAND_bytes(out.data(), static_cast<int>(out.size())) == 1, "RAND_bytes failed");
}

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  RandomBytes(std::span<uint8_t>(out));
  return out;
}

}  // namespace cllm::crypto
