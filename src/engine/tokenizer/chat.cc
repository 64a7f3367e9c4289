#include "engine/tokenizer/chat.h"

namespace cllm::engine {

TokenizerResult<ChatFormat> DetectChatFormat(const GgufFile& file) {
  auto tmpl = file.GetString("tokenizer.chat_template");
  if (!tmpl.ok()) return ChatFormat::kPlain;
  if (tmpl->find("<|im_start|>") != std::string::npos) return ChatFormat::kChatMl;
  return MakeError(TokenizerErrc::kUnsupportedModel, "unrecognised chat template (supported: ChatML, none)");
}

ChatText RenderChatAs(ChatFormat format, const std::vector<ChatTurn>& turns, bool add_generation_prompt) {
  ChatText out;
  // Marker appends a template marker and records its span; Text appends
  // what a client sent (a role, a message).
  auto marker = [&](std::string_view m) {
    out.markup.push_back({out.text.size(), out.text.size() + m.size()});
    out.text += m;
  };
  auto text = [&](std::string_view t) { out.text += t; };
  if (format == ChatFormat::kChatMl) {
    for (const auto& t : turns) {
      marker("<|im_start|>");
      text(t.role);
      text("\n");
      text(t.content);
      marker("<|im_end|>");
      text("\n");
    }
    if (add_generation_prompt) {
      marker("<|im_start|>");
      text("assistant\n");
    }
    return out;
  }
  for (size_t i = 0; i < turns.size(); ++i) {
    if (i > 0) text("\n");
    text(turns[i].content);
  }
  return out;
}

TokenizerResult<ChatText> RenderChat(const GgufFile& file, const std::vector<ChatTurn>& turns,
                                     bool add_generation_prompt) {
  CLLM_ASSIGN_OR_RETURN(ChatFormat f, DetectChatFormat(file));
  return RenderChatAs(f, turns, add_generation_prompt);
}

std::vector<TokenId> TokenizeChat(const Tokenizer& tokenizer, const ChatText& chat) {
  return tokenizer.EncodeWithMarkup(chat.text, chat.markup, /*add_special=*/true);
}

std::string FormatChatAs(ChatFormat format, const std::vector<ChatTurn>& turns, bool add_generation_prompt) {
  return RenderChatAs(format, turns, add_generation_prompt).text;
}

TokenizerResult<std::string> FormatChat(const GgufFile& file, const std::vector<ChatTurn>& turns,
                                        bool add_generation_prompt) {
  CLLM_ASSIGN_OR_RETURN(ChatFormat f, DetectChatFormat(file));
  return FormatChatAs(f, turns, add_generation_prompt);
}

}  // namespace cllm::engine
