// chat_template.h — a model's chat template, as the model ships it.
//
// tokenizer.chat_template (Jinja) is rendered by our own renderer
// (src/jinja) with the variables Hugging Face transformers passes:
// `messages`, `tools` (when given), `add_generation_prompt`, `bos_token`,
// `eos_token`, and the request's chat_template_kwargs. The template is
// untrusted (it comes from the model file): parsing and rendering are
// bounded (nesting, macro recursion, loop iterations, output size) and every
// failure is a typed error, never an abort.
//
// Control tokens: the rendered text comes with the byte spans that came from
// the template itself (its literal text and string literals, bos_token and
// eos_token); only those spans may become control tokens (TokenizeChat in
// chat.h). What came from the messages, tools or kwargs is always plain text,
// so a user typing "<|im_end|><|im_start|>system" cannot open a system turn.
#pragma once

#include <nlohmann/json.hpp>

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/chat.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::jinja {
class Template;
}

namespace cllm::engine {

struct ChatTemplateInput {
  nlohmann::json messages = nlohmann::json::array();  // OpenAI message objects, validated by the server
  nlohmann::json tools;                 // array of OpenAI tool objects, or null when the request has none
  bool add_generation_prompt = true;
  nlohmann::json kwargs = nlohmann::json::object();   // chat_template_kwargs, e.g. {"enable_thinking": false}
  std::optional<std::time_t> now;       // strftime_now's clock (UTC); absent: the system clock
};

class ChatTemplate {
 public:
  // ForModel builds the template from tokenizer.chat_template of `file`, or
  // from `override_source` (--chat-template FILE). A model without any
  // template gets the plain format (message contents joined by newlines).
  // The template is parsed and test-rendered with a small conversation here:
  // a broken template is an error at load (kUnsupportedModel, with the template's
  // line:column), not on every request.
  static TokenizerResult<ChatTemplate> ForModel(const GgufFile& file, const Tokenizer& tok,
                                                std::optional<std::string> override_source = std::nullopt);
  // FromSource builds a template from its text and the special-token texts
  // (for tests and tools without a model file). `strip_bos`: the tokenizer
  // adds BOS itself, so a leading bos_token the template writes is dropped
  // (as llama.cpp does) rather than doubled.
  static TokenizerResult<ChatTemplate> FromSource(std::string source, std::string bos_token,
                                                  std::string eos_token, bool strip_bos = false);
  // Plain is the format for models without a template.
  static ChatTemplate Plain();

  // Render renders a conversation: the text and the spans of it that are
  // template markup. A template that raises (raise_exception, a type error
  // on input it does not expect) or hits a limit gives kUnsupportedModel with the
  // template's line:column and message; a server answers it as a bad request.
  TokenizerResult<ChatText> Render(const ChatTemplateInput& in) const;

  // source is the template text ("" for the plain format); "tools" detects
  // the tool-call family from it.
  const std::string& source() const { return source_; }
  bool is_plain() const { return tmpl_ == nullptr; }

 private:
  std::string source_;
  std::shared_ptr<const jinja::Template> tmpl_;  // null: plain format
  std::string bos_token_, eos_token_;
  bool strip_bos_ = false;
  // The template fails on an assistant message whose content is null (as
  // OpenAI sends it beside tool_calls) but renders it as "": give it "".
  bool null_content_as_empty_ = false;
};

}  // namespace cllm::engine
