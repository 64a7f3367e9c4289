// prompt_embeds.h — prompts given as embedding rows (split inference, issue
// 16; docs/split-inference.md#server-side-the-api).
//
// A split client embeds its prompt itself and sends the rows, never token
// ids or text: `prompt_embeds` on /v1/completions, `{"type":
// "prompt_embeds"}` content parts on /v1/chat/completions. Here the
// untrusted base64 becomes the engine's float32 matrix (every byte counted
// before it is decoded, every value checked), a chat prompt's template
// text around the client's rows becomes rows of its own, and the server's
// --prompt-embeds setting decides who may send such prompts at all.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model/model.h"
#include "engine/tokenizer/chat.h"
#include "server/openai_api.h"

namespace cllm::server {

// --- permission --------------------------------------------------------------

// PromptEmbedsPolicy is cllm-server --prompt-embeds: who may send prompts as
// rows. Rows skip the tokenizer, so they reach the model with values no
// text prompt produces; the default keeps that to callers the operator chose.
enum class PromptEmbedsPolicy {
  kOff,     // nobody
  kApiKey,  // API keys whose keys-file entry has "prompt_embeds": true
  kMutual,  // those, and requests opened in e2e mutual mode (an attested client)
};
// ParsePromptEmbedsPolicy reads "off", "api-key" or "mutual"; false otherwise.
bool ParsePromptEmbedsPolicy(std::string_view text, PromptEmbedsPolicy* out);

// PromptEmbedsAllowed is the permission check: `key_allows` is the caller's
// keys-file flag, `e2e_mutual` whether the request was sealed in HPKE auth
// mode by a client the configured verifier accepted.
bool PromptEmbedsAllowed(PromptEmbedsPolicy policy, bool key_allows, bool e2e_mutual);

// --- parsing (no decoding yet: the row width is the model's) ------------------

// EmbedsInvalid is the 400 prompt_embeds_invalid naming `param`.
ApiError EmbedsInvalid(std::string message, std::string param);
// ParseEmbedsDtype reads the optional string field `key` of `obj`:
// "float32" (also when absent) or "float16".
ApiResult<EmbedsDtype> ParseEmbedsDtype(const nlohmann::json& obj, const std::string& key);
// ParseEmbedsPart reads a chat content part {"type": "prompt_embeds",
// "prompt_embeds": "<base64>", "prompt_embeds_dtype": ...}; `where` names it.
ApiResult<PromptEmbedsInput> ParseEmbedsPart(const nlohmann::json& part, const std::string& where);

// --- decoding -------------------------------------------------------------------

// MaxEmbedsBase64Chars is the longest base64 text accepted for `context`
// rows of `n_embd` values of `value_bytes` each (4: float32, 2: float16;
// padded base64). Longer text is refused unread.
size_t MaxEmbedsBase64Chars(int context, int n_embd, size_t value_bytes = 4);

// DecodePromptEmbeds appends `in`'s rows (n_embd floats each, float16
// widened exactly) to `out`, at most `context` of them. Checks, in order:
// base64 length within MaxEmbedsBase64Chars of the dtype's value size
// (kPromptEmbedsTooLong, before decoding: a float16 matrix never decodes to
// more than `context` rows); canonical
// padded standard base64 without whitespace, a whole non-zero number of rows,
// every value finite (kPromptEmbedsInvalid). `param` names the field in errors.
ApiResult<Ok> DecodePromptEmbeds(const PromptEmbedsInput& in, int n_embd, int context, const std::string& param,
                                 std::vector<float>* out);

// --- chat ------------------------------------------------------------------------

// ChatPromptEmbeds builds a chat prompt's matrix: `rendered` (the template's
// output, each of `placeholders` standing exactly once in it, in order) is
// cut at the placeholders; the text pieces are tokenized as TokenizeChat
// would (markup may become control tokens; BOS/EOS once, at the ends) and
// become rows by Model::TokenEmbedding; each part's decoded rows go where its
// placeholder was. Each part counts as a boundary between text runs, as a
// control token does. kPromptEmbedsInvalid when the template dropped,
// repeated or altered a placeholder; decoding errors as above; over the
// context, kPromptEmbedsTooLong.
ApiResult<std::shared_ptr<const std::vector<float>>> ChatPromptEmbeds(const engine::Model& model, int context,
                                                                      const engine::ChatText& rendered,
                                                                      const std::vector<std::string>& placeholders,
                                                                      const std::vector<PromptEmbedsInput>& parts);

}  // namespace cllm::server
