// Fuzzes sealed-model parsing and unsealing with a fixed key: arbitrary bytes
// must be rejected cleanly; nothing may be read out of bounds.
#include <cstddef>
#include <cstdint>

#include "crypto/sealed_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint8_t kKey[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  cllm::ByteSpan in(data, size);
  auto header = cllm::crypto::ParseSealedHeader(in);
  if (header.ok()) (void)header->SealedSize();
  (void)cllm::crypto::Unseal(in, kKey);
  return 0;
}
