// chat_response.h — the chat responses of a parsed reply: `content`,
// `reasoning_content` and `tool_calls`, whole and as stream deltas, in the
// shapes OpenAI's clients read.
#pragma once

#include <string>
#include <string_view>

#include "server/chat_output.h"
#include "server/openai_api.h"

namespace cllm::server {

// ChatCompletionBody renders a whole chat.completion: message.content is
// null when the reply is only tool calls; reasoning_content and tool_calls
// appear when there are some.
std::string ChatCompletionBody(const ResponseMeta& meta, const ParsedOutput& reply, FinishReason finish,
                               const Usage& usage);

// StreamChatTextEvent is one chunk with delta {"content"?, "reasoning_content"?}
// (each present when not empty).
std::string StreamChatTextEvent(const ResponseMeta& meta, std::string_view content, std::string_view reasoning);

// StreamToolCallEvent is one chunk with delta {"tool_calls": [one delta]}:
// {index, id, type, function {name, arguments: ""}} for a call's first
// delta, {index, function {arguments}} for the rest.
std::string StreamToolCallEvent(const ResponseMeta& meta, const ToolCallDelta& call);

}  // namespace cllm::server
