// Fuzzes the attestation policy parser (operator-supplied JSON; a typo or a
// hostile file must give kPolicyInvalid, never a crash).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)cllm::attestation::ParsePolicy(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
