// Fuzzes JSON schema patterns (src/engine/grammar/regex.h) and the matcher
// that walks them: the input is a pattern, a NUL byte, then output bytes.
// Any pattern must compile or fail cleanly within its limits; if it compiles,
// the bytes are fed to the grammar of {"type":"string","pattern":P} (and a
// maxLength of 8), and whenever the walk says the output is complete, that
// output must be a JSON string of at most 8 code points whose decoded text
// the pattern's automaton matches — the guarantee structured output gives.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/check.h"
#include "engine/grammar/json_schema.h"
#include "engine/grammar/matcher.h"
#include "engine/grammar/regex.h"

using namespace cllm::engine::grammar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view pattern = in.substr(0, nul);
  const std::string_view output = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  auto dfa = CompileRegex(pattern);
  if (!dfa.ok()) return 0;
  nlohmann::json schema = {{"type", "string"}, {"maxLength", 8}};
  schema["pattern"] = std::string(pattern);
  auto g = CompileJsonSchema(schema);
  if (!g.ok()) return 0;  // e.g. no match within maxLength
  MatchState s = MatchState::Start(**g);
  for (size_t i = 0; i < output.size(); ++i) {
    if (!s.Advance(static_cast<uint8_t>(output[i]))) return 0;
    if (!s.Complete()) continue;
    auto v = nlohmann::json::parse(output.substr(0, i + 1), nullptr, false);
    CLLM_CHECK(v.is_string());
    const std::string text = v.get<std::string>();
    size_t code_points = 0;
    for (unsigned char c : text) code_points += (c & 0xC0) != 0x80;
    CLLM_CHECK(code_points <= 8);
    CLLM_CHECK((*dfa)->Matches(text));
  }
  return 0;
}
