// chat.h — turning chat messages into a prompt for the model family at hand.
//
// No template engine: the family is recognised from tokenizer.chat_template
// (ChatML markers → ChatML, as Qwen uses) and formatted by code. Models
// without a chat template (the story models) get plain text: the message
// contents joined by newlines.
#pragma once

#include <string>
#include <vector>

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine {

struct ChatTurn {
  std::string role;  // system, user, assistant
  std::string content;
};

enum class ChatFormat { kPlain, kChatMl };

// DetectChatFormat reads tokenizer.chat_template; an unrecognised template
// is kTokenizer-style error kUnsupportedModel.
TokenizerResult<ChatFormat> DetectChatFormat(const GgufFile& file);

// FormatChat renders `turns`; with add_generation_prompt the text ends where
// the assistant's reply begins.
std::string FormatChatAs(ChatFormat format, const std::vector<ChatTurn>& turns, bool add_generation_prompt);
TokenizerResult<std::string> FormatChat(const GgufFile& file, const std::vector<ChatTurn>& turns,
                                        bool add_generation_prompt);

}  // namespace cllm::engine
