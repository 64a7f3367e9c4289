#include "engine/tokenizer/chat.h"

namespace cllm::engine {

std::vector<TokenId> TokenizeChat(const Tokenizer& tokenizer, const ChatText& chat) {
  return tokenizer.EncodeWithMarkup(chat.text, chat.markup, /*add_special=*/true);
}

}  // namespace cllm::engine
