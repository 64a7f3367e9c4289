// chat.h — a rendered chat prompt, and tokenizing it safely.
//
// The prompt is rendered by the model's chat template (chat_template.h),
// which records which bytes the template itself wrote. Only those may become
// control tokens: TokenizeChat tokenizes everything else (roles, message
// content, tool JSON) as plain text, so a message cannot close its turn and
// open a system turn by typing "<|im_end|><|im_start|>system".
#pragma once

#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine {

// ChatText is a rendered prompt and the spans of it that are template
// markup (sorted, disjoint); the rest came from the request.
struct ChatText {
  std::string text;
  std::vector<TextSpan> markup;
};

// TokenizeChat tokenizes a rendered prompt: control tokens from its markup
// only, BOS/EOS as the metadata says.
std::vector<TokenId> TokenizeChat(const Tokenizer& tokenizer, const ChatText& chat);

}  // namespace cllm::engine
