// chat.h — turning chat messages into a prompt for the model family at hand.
//
// No template engine: the family is recognised from tokenizer.chat_template
// (ChatML markers → ChatML, as Qwen uses) and formatted by code. Models
// without a chat template (the story models) get plain text: the message
// contents joined by newlines.
//
// Only the template's own markers may become control tokens: RenderChat
// records where they are, and TokenizeChat tokenizes everything else (roles,
// message content) as plain text, so a message cannot close its turn and
// open a system turn by typing "<|im_end|><|im_start|>system".
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

// ChatText is a rendered prompt and the spans of it that are template
// markup (sorted, disjoint); the rest came from the messages.
struct ChatText {
  std::string text;
  std::vector<TextSpan> markup;
};

// RenderChat renders `turns`; with add_generation_prompt the text ends where
// the assistant's reply begins.
ChatText RenderChatAs(ChatFormat format, const std::vector<ChatTurn>& turns, bool add_generation_prompt);
TokenizerResult<ChatText> RenderChat(const GgufFile& file, const std::vector<ChatTurn>& turns,
                                     bool add_generation_prompt);

// TokenizeChat tokenizes a rendered prompt: control tokens from its markup
// only, BOS/EOS as the metadata says.
std::vector<TokenId> TokenizeChat(const Tokenizer& tokenizer, const ChatText& chat);

// FormatChat renders `turns` as text only (for tools that show or re-tokenize
// the prompt themselves; a server must use TokenizeChat).
std::string FormatChatAs(ChatFormat format, const std::vector<ChatTurn>& turns, bool add_generation_prompt);
TokenizerResult<std::string> FormatChat(const GgufFile& file, const std::vector<ChatTurn>& turns,
                                        bool add_generation_prompt);

}  // namespace cllm::engine
