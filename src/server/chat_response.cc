#include "server/chat_response.h"

#include <nlohmann/json.hpp>

namespace cllm::server {
namespace {

using nlohmann::json;

json Envelope(const ResponseMeta& meta, bool chunk) {
  return json{{"id", meta.id},
              {"object", chunk ? "chat.completion.chunk" : "chat.completion"},
              {"created", meta.created},
              {"model", meta.model}};
}

// Model output may hold invalid UTF-8 (a character cut by max_tokens): replaced, never a throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Chunk(const ResponseMeta& meta, json delta) {
  json j = Envelope(meta, true);
  j["choices"] = json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", nullptr}}});
  return "data: " + Dump(j) + "\n\n";
}

}  // namespace

std::string ChatCompletionBody(const ResponseMeta& meta, const ParsedOutput& reply, FinishReason finish,
                               const Usage& usage) {
  json message = {{"role", "assistant"}};
  // OpenAI: content is null when the assistant only calls tools.
  message["content"] = reply.tool_calls.empty() || !reply.content.empty() ? json(reply.content) : json(nullptr);
  if (!reply.reasoning.empty()) message["reasoning_content"] = reply.reasoning;
  if (!reply.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : reply.tool_calls) {
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  json j = Envelope(meta, false);
  j["choices"] = json::array(
      {{{"index", 0}, {"message", std::move(message)}, {"finish_reason", FinishReasonName(finish)}, {"logprobs", nullptr}}});
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string StreamChatTextEvent(const ResponseMeta& meta, std::string_view content, std::string_view reasoning) {
  json delta = json::object();
  if (!content.empty()) delta["content"] = std::string(content);
  if (!reasoning.empty()) delta["reasoning_content"] = std::string(reasoning);
  return Chunk(meta, std::move(delta));
}

std::string StreamToolCallEvent(const ResponseMeta& meta, const ToolCallDelta& call) {
  json d = {{"index", call.index}};
  if (!call.id.empty()) {
    d["id"] = call.id;
    d["type"] = "function";
    d["function"] = {{"name", call.name}, {"arguments", call.arguments}};
  } else {
    d["function"] = {{"arguments", call.arguments}};
  }
  return Chunk(meta, {{"tool_calls", json::array({std::move(d)})}});
}

}  // namespace cllm::server
