#include "engine/tokenizer/chat.h"

namespace cllm::engine {

TokenizerResult<ChatFormat> DetectChatFormat(const GgufFile& file) {
  auto tmpl = file.GetString("tokenizer.chat_template");
  if (!tmpl.ok()) return ChatFormat::kPlain;
  if (tmpl->find("<|im_start|>") != std::string::npos) return ChatFormat::kChatMl;
  return MakeError(TokenizerErrc::kUnsupportedModel, "unrecognised chat template (supported: ChatML, none)");
}

std::string FormatChatAs(ChatFormat format, const std::vector<ChatTurn>& turns, bool add_generation_prompt) {
  std::string out;
  if (format == ChatFormat::kChatMl) {
    for (const auto& t : turns) out += "<|im_start|>" + t.role + "\n" + t.content + "<|im_end|>\n";
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }
  for (size_t i = 0; i < turns.size(); ++i) {
    if (i > 0) out += "\n";
    out += turns[i].content;
  }
  return out;
}

TokenizerResult<std::string> FormatChat(const GgufFile& file, const std::vector<ChatTurn>& turns,
                                        bool add_generation_prompt) {
  CLLM_ASSIGN_OR_RETURN(ChatFormat f, DetectChatFormat(file));
  return FormatChatAs(f, turns, add_generation_prompt);
}

}  // namespace cllm::engine
