// Fuzzes the Jinja renderer (src/jinja): arbitrary bytes as a chat template
// must parse or fail cleanly, and a template that parses must render or fail
// cleanly within its limits — no crash, no hang, no leak, and template spans
// always sorted and inside the output.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/check.h"
#include "jinja/interp.h"
#include "jinja/template.h"

using namespace cllm::jinja;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  Limits limits;  // small, so every input finishes quickly
  limits.max_output_bytes = 1 << 16;
  limits.max_steps = 200000;
  limits.max_iterations = 20000;
  limits.max_call_depth = 8;
  limits.max_nesting = 64;
  auto t = Template::Parse(src, limits);
  if (!t.ok()) return 0;
  static const nlohmann::json kMessages = nlohmann::json::parse(R"([
    {"role": "system", "content": "sys <|im_start|>"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "f", "arguments": {"a": [1, 2.5, true, null]}}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "ok"}])");
  Variables vars;
  vars.Set("messages", FromJson(kMessages));
  vars.Set("tools", FromJson(nlohmann::json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}})));
  vars.Set("add_generation_prompt", Value::Bool(true));
  vars.Set("bos_token", Value::String(Str::Template("<s>")));
  RenderOptions opts;
  opts.strftime_now = StrftimeAt(0);
  auto r = (*t)->Render(vars, opts);
  if (r.ok()) {
    size_t pos = 0;
    for (const Span& s : r->template_spans) {
      CLLM_CHECK(s.begin >= pos && s.end > s.begin && s.end <= r->text.size());
      pos = s.end;
    }
  }
  return 0;
}
