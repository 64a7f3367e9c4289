// logprob_render.cc — responses and stream chunks carrying logprobs, in
// OpenAI's two shapes:
//   chat:        "logprobs": {"content": [{"token", "logprob", "bytes",
//                 "top_logprobs": [{"token", "logprob", "bytes"}]}], "refusal": null}
//   completions: "logprobs": {"tokens", "token_logprobs",
//                 "top_logprobs": [{token: logprob}], "text_offset"}
// A token whose bytes are not valid UTF-8 on their own (part of a
// character) is named "bytes:\xNN…" as OpenAI names it; "bytes" always
// holds the raw bytes.
#include <nlohmann/json.hpp>

#include "base/utf8.h"
#include "server/openai_api.h"

namespace cllm::server {
namespace {

using nlohmann::json;

std::string TokenText(const std::string& bytes) {
  if (IsValidUtf8(bytes)) return bytes;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "bytes:";
  for (unsigned char b : bytes) {
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

json Bytes(const std::string& s) {
  json a = json::array();
  for (unsigned char b : s) a.push_back(static_cast<int>(b));
  return a;
}

json ChatLogprobs(const std::vector<LogprobEntry>& entries) {
  json content = json::array();
  for (const LogprobEntry& e : entries) {
    json top = json::array();
    for (const TopLogprob& t : e.top) {
      top.push_back({{"token", TokenText(t.token)}, {"logprob", t.logprob}, {"bytes", Bytes(t.token)}});
    }
    content.push_back(
        {{"token", TokenText(e.token)}, {"logprob", e.logprob}, {"bytes", Bytes(e.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json CompletionLogprobs(const std::vector<LogprobEntry>& entries) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  for (const LogprobEntry& e : entries) {
    tokens.push_back(TokenText(e.token));
    token_logprobs.push_back(e.logprob);
    json alternatives = json::object();
    for (const TopLogprob& t : e.top) alternatives[TokenText(t.token)] = t.logprob;
    top.push_back(alternatives);
    offsets.push_back(e.text_offset);
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

json Envelope(const ResponseMeta& meta, bool chunk) {
  const char* object = meta.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return json{{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string CompletionBodyWithLogprobs(const ResponseMeta& meta, std::string_view text, FinishReason finish,
                                       const Usage& usage, const std::vector<LogprobEntry>& logprobs) {
  json j = Envelope(meta, false);
  json choice = {{"index", 0}, {"finish_reason", FinishReasonName(finish)}};
  if (meta.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", std::string(text)}};
    choice["logprobs"] = ChatLogprobs(logprobs);
  } else {
    choice["text"] = std::string(text);
    choice["logprobs"] = CompletionLogprobs(logprobs);
  }
  j["choices"] = json::array({choice});
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string StreamTextEventWithLogprobs(const ResponseMeta& meta, std::string_view text,
                                        const std::vector<LogprobEntry>& logprobs) {
  json j = Envelope(meta, true);
  json choice = {{"index", 0}, {"finish_reason", nullptr}};
  if (meta.chat) {
    choice["delta"] = {{"content", std::string(text)}};
    choice["logprobs"] = ChatLogprobs(logprobs);
  } else {
    choice["text"] = std::string(text);
    choice["logprobs"] = CompletionLogprobs(logprobs);
  }
  j["choices"] = json::array({choice});
  return "data: " + Dump(j) + "\n\n";
}

}  // namespace cllm::server
