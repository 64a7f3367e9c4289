// Fuzzes OpenAI request validation (untrusted HTTP bodies).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/openai_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  cllm::server::ApiLimits limits;
  (void)cllm::server::ParseCompletionRequest(body, true, limits);
  (void)cllm::server::ParseCompletionRequest(body, false, limits);
  return 0;
}
